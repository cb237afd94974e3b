//! Redis, spoken directly: one connection per process (TCP, or TLS for `rediss://` with the same
//! roots as every HTTPS request), reopened after any error, every step bounded by the operation's
//! budget (DNS, connect, TLS and `AUTH` included). Five commands are all the token store needs,
//! so a client crate (redis-rs and its URL stack: about 400 KiB of the binary) does not earn its
//! place; the protocol is in [`super::resp`].
//!
//! | operation | command |
//! |---|---|
//! | get | `GET name` |
//! | put | `SET name value PX ttl` |
//! | claim | `SET lock owner NX PX ttl` (atomic: one owner) |
//! | release, delete_if | `EVAL` compare-and-delete (only our own lock, only the refused entry) |
//! | poll | `MGET name lock` |
//!
//! Errors are reduced to a kind: a Redis server's error text is never kept, since a server at a
//! wrong address could echo the password it was sent.

#![deny(clippy::string_slice, clippy::indexing_slicing)]

use std::io::{self, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustls::pki_types::{CertificateDer, ServerName};

use super::backend::{Backend, Call, ClaimOutcome, Poll, StoreError};
use super::resp::{Expect, Reply, read_reply, write_command};
use super::setting::RedisUrl;

/// Deletes KEYS[1] only while it holds ARGV[1].
const COMPARE_AND_DELETE: &str =
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end";

/// The most addresses of a host name tried in turn.
const MAX_ADDRESSES: usize = 8;

/// Used when the operation has no deadline (local CLI, tests): no step waits longer.
const UNBOUNDED_FALLBACK: Duration = Duration::from_secs(2);

/// A TCP connection with a deadline: every read and write first checks it and gives the socket
/// only the time left. A server that drips its reply a byte at a time costs no more than the
/// operation's time: each read alone returns within the socket timeout, the whole would not.
/// The TLS handshake runs over it too.
struct Timed {
    tcp: TcpStream,
    end: Instant,
}

impl Timed {
    fn left(&self) -> io::Result<Duration> {
        let left = self.end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "out of time"));
        }
        Ok(left)
    }
}

impl Read for Timed {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.left()?;
        self.tcp.set_read_timeout(Some(left))?;
        self.tcp.read(buf)
    }
}

impl Write for Timed {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let left = self.left()?;
        self.tcp.set_write_timeout(Some(left))?;
        self.tcp.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.tcp.flush()
    }
}

/// A connection: plain TCP, or TLS over it.
enum Stream {
    Plain(Timed),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, Timed>>),
}

impl Stream {
    /// The deadline of the operation that uses the connection now.
    fn set_end(&mut self, end: Instant) {
        match self {
            Stream::Plain(s) => s.end = end,
            Stream::Tls(s) => s.sock.end = end,
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

type Connection = BufReader<Stream>;

/// Why one attempt failed.
enum Failure {
    /// Out of time.
    TimedOut,
    /// The connection could not be made or broke: worth one reconnect when it was a kept one.
    Io(io::ErrorKind),
    /// The server answered, with an error or something else.
    Store(StoreError),
}

/// A Redis server.
pub struct RedisStore {
    url: RedisUrl,
    tls: Option<Arc<rustls::ClientConfig>>,
    /// The kept connection, when no operation is using it. An operation takes it out and puts
    /// it back after a whole reply was read: the lock is never held across network I/O or the
    /// parsing of what the server sent, so nothing a server sends can poison it.
    kept: Mutex<Option<Connection>>,
}

impl RedisStore {
    /// A client for `url`; nothing is connected yet.
    pub fn new(url: &RedisUrl) -> Result<RedisStore, &'static str> {
        let tls = match url.tls {
            true => Some(tls_config()?),
            false => None,
        };
        Ok(RedisStore {
            url: url.clone(),
            tls,
            kept: Mutex::new(None),
        })
    }

    /// The kept connection, if any. A poisoned lock (a panic elsewhere while it was held, which
    /// taking and putting cannot cause) is recovered with no connection: the next one is new.
    fn take_kept(&self) -> Option<Connection> {
        match self.kept.lock() {
            Ok(mut slot) => slot.take(),
            Err(poisoned) => {
                *poisoned.into_inner() = None;
                self.kept.clear_poison();
                None
            }
        }
    }

    /// Keeps `connection` for the next operation, unless another one already was.
    fn keep(&self, connection: Connection) {
        let mut slot = self.kept.lock().unwrap_or_else(|poisoned| {
            self.kept.clear_poison();
            poisoned.into_inner()
        });
        if slot.is_none() {
            *slot = Some(connection);
        }
    }

    /// Sends `args` and reads a reply of the type `expect`, every step bounded by the time left.
    fn command(&self, call: &Call, args: &[&[u8]], expect: Expect) -> Result<Reply, StoreError> {
        self.command_resent(call, args, expect).map(|(reply, _)| reply)
    }

    /// [`Self::command`], and whether the command was sent twice. A kept connection that turns
    /// out closed (the server's idle timeout, a restart: in actionloop mode the store is used
    /// once per token lifetime) is replaced once, within the same time; the command may then
    /// have reached the server on the broken connection too.
    fn command_resent(
        &self,
        call: &Call,
        args: &[&[u8]],
        expect: Expect,
    ) -> Result<(Reply, bool), StoreError> {
        let end = Instant::now() + call.time_left(UNBOUNDED_FALLBACK);
        let kept = self.take_kept();
        let was_kept = kept.is_some();
        let outcome = match self.attempt(kept, end, args, expect) {
            Err(Failure::Io(_)) if was_kept => {
                log::debug!("token store: the kept Redis connection is closed; reconnecting");
                self.attempt(None, end, args, expect).map(|reply| (reply, true))
            }
            other => other.map(|reply| (reply, false)),
        };
        match outcome {
            Ok(done) => Ok(done),
            Err(Failure::TimedOut) => Err(StoreError::Unavailable("timed out")),
            Err(Failure::Io(io::ErrorKind::ConnectionRefused)) => {
                Err(StoreError::Unavailable("connection refused"))
            }
            Err(Failure::Io(io::ErrorKind::InvalidData)) => {
                Err(StoreError::Garbage("not the Redis protocol"))
            }
            Err(Failure::Io(_)) => Err(StoreError::Unavailable("connection failed")),
            Err(Failure::Store(e)) => Err(e),
        }
    }

    /// One try on `connection` (or a new one), by `end`. The connection is kept only after a
    /// whole reply and nothing more was read; after any failure it is dropped.
    fn attempt(
        &self,
        connection: Option<Connection>,
        end: Instant,
        args: &[&[u8]],
        expect: Expect,
    ) -> Result<Reply, Failure> {
        let mut connection = match connection {
            Some(c) => c,
            None => self.connect(end)?,
        };
        connection.get_mut().set_end(end);
        write_command(connection.get_mut(), args).map_err(io_failure)?;
        let reply = read_reply(&mut connection, expect).map_err(io_failure)?;
        if connection.buffer().is_empty() {
            self.keep(connection);
        }
        match reply {
            Reply::Error(kind) => Err(Failure::Store(server_error(&kind))),
            reply => Ok(reply),
        }
    }

    /// Resolves, connects (to each address in turn, as a careful client does), shakes hands,
    /// authenticates and selects the database, by `end`.
    fn connect(&self, end: Instant) -> Result<Connection, Failure> {
        let addrs = resolve(&self.url.host, self.url.port, left(end)?)?;
        let tcp = connect_any(&addrs, end)?;
        let _ = tcp.set_nodelay(true);
        let timed = Timed { tcp, end };
        let stream = match &self.tls {
            None => Stream::Plain(timed),
            Some(config) => {
                let name = ServerName::try_from(self.url.host.clone())
                    .map_err(|_| Failure::Store(StoreError::Unavailable("a host name TLS cannot check")))?;
                let mut tls = rustls::ClientConnection::new(Arc::clone(config), name)
                    .map_err(|_| Failure::Store(StoreError::Unavailable("TLS could not start")))?;
                let mut timed = timed;
                while tls.is_handshaking() {
                    tls.complete_io(&mut timed).map_err(|e| match e.kind() {
                        io::ErrorKind::InvalidData => {
                            Failure::Store(StoreError::Unavailable("the TLS handshake failed"))
                        }
                        _ => io_failure(e),
                    })?;
                }
                Stream::Tls(Box::new(rustls::StreamOwned::new(tls, timed)))
            }
        };
        let mut connection = BufReader::new(stream);
        if let Some(password) = &self.url.password {
            let mut args: Vec<&[u8]> = vec![b"AUTH"];
            if let Some(user) = &self.url.user {
                args.push(user.as_bytes());
            }
            args.push(password.expose().as_bytes());
            setup(&mut connection, &args)?;
        }
        if self.url.db != 0 {
            let db = self.url.db.to_string();
            setup(&mut connection, &[b"SELECT", db.as_bytes()])?;
        }
        Ok(connection)
    }
}

/// Connects to the first of `addrs` that answers by `end`, each given its share of the time
/// left (a dead address must not use up what the next one needs).
fn connect_any(addrs: &[SocketAddr], end: Instant) -> Result<TcpStream, Failure> {
    let mut last = Failure::Store(StoreError::Unavailable("host not found"));
    for (i, addr) in addrs.iter().enumerate() {
        let remaining = u32::try_from(addrs.len() - i).unwrap_or(u32::MAX);
        let share = left(end)? / remaining;
        match TcpStream::connect_timeout(addr, share.max(Duration::from_millis(1))) {
            Ok(tcp) => return Ok(tcp),
            Err(e) => {
                log::debug!(
                    "token store: Redis address {} of {} did not connect",
                    i + 1,
                    addrs.len()
                );
                last = io_failure(e);
            }
        }
    }
    Err(last)
}

/// `AUTH` or `SELECT`: `+OK` or a failure.
fn setup(connection: &mut Connection, args: &[&[u8]]) -> Result<(), Failure> {
    write_command(connection.get_mut(), args).map_err(io_failure)?;
    match read_reply(connection, Expect::Status).map_err(io_failure)? {
        Reply::Status(s) if s == b"OK" => Ok(()),
        Reply::Error(kind) => Err(Failure::Store(server_error(&kind))),
        _ => Err(Failure::Store(StoreError::Garbage(
            "an unexpected reply to AUTH or SELECT",
        ))),
    }
}

impl Backend for RedisStore {
    fn get(&self, name: &str, call: &Call) -> Result<Option<Vec<u8>>, StoreError> {
        bytes_or_nil(self.command(call, &[b"GET", name.as_bytes()], Expect::Bulk)?)
    }

    fn put(&self, name: &str, value: &[u8], ttl: Duration, call: &Call) -> Result<(), StoreError> {
        let px = (ttl.as_millis().max(1) as u64).to_string();
        let args: [&[u8]; 5] = [b"SET", name.as_bytes(), value, b"PX", px.as_bytes()];
        expect_ok(self.command(call, &args, Expect::Status)?)
    }

    fn delete_if(&self, name: &str, value: &[u8], call: &Call) -> Result<(), StoreError> {
        let args: [&[u8]; 5] = [
            b"EVAL",
            COMPARE_AND_DELETE.as_bytes(),
            b"1",
            name.as_bytes(),
            value,
        ];
        expect_int(self.command(call, &args, Expect::Int)?)
    }

    fn claim(&self, lock: &str, owner: &str, ttl: Duration, call: &Call) -> Result<ClaimOutcome, StoreError> {
        let px = (ttl.as_millis().max(1) as u64).to_string();
        let args: [&[u8]; 6] = [
            b"SET",
            lock.as_bytes(),
            owner.as_bytes(),
            b"NX",
            b"PX",
            px.as_bytes(),
        ];
        match self.command_resent(call, &args, Expect::StatusOrNil)? {
            (Reply::Status(s), _) if s == b"OK" => Ok(ClaimOutcome::Won),
            // Sent twice: the first may have set the lock before the connection broke, and the
            // second then found it taken, by us. Ours if it holds our owner id.
            (Reply::Bulk(None), true) => {
                let holder = bytes_or_nil(self.command(call, &[b"GET", lock.as_bytes()], Expect::Bulk)?)?;
                match holder.as_deref() == Some(owner.as_bytes()) {
                    true => Ok(ClaimOutcome::Won),
                    false => Ok(ClaimOutcome::Lost),
                }
            }
            (Reply::Bulk(None), false) => Ok(ClaimOutcome::Lost),
            _ => Err(StoreError::Garbage("an unexpected reply to SET NX")),
        }
    }

    fn release(&self, lock: &str, owner: &str, call: &Call) -> Result<(), StoreError> {
        self.delete_if(lock, owner.as_bytes(), call)
    }

    fn poll(&self, name: &str, lock: &str, call: &Call) -> Result<Poll, StoreError> {
        let reply = self.command(
            call,
            &[b"MGET", name.as_bytes(), lock.as_bytes()],
            Expect::Array(2),
        )?;
        let Reply::Array(items) = reply else {
            return Err(StoreError::Garbage("an unexpected reply to MGET"));
        };
        let mut items = items.into_iter();
        let (Some(entry), Some(holder), None) = (items.next(), items.next(), items.next()) else {
            return Err(StoreError::Garbage("an unexpected reply to MGET"));
        };
        Ok(Poll {
            entry,
            locked: Some(holder.is_some()),
        })
    }
}

fn bytes_or_nil(reply: Reply) -> Result<Option<Vec<u8>>, StoreError> {
    match reply {
        Reply::Bulk(value) => Ok(value),
        _ => Err(StoreError::Garbage("a value that is not a string")),
    }
}

fn expect_ok(reply: Reply) -> Result<(), StoreError> {
    match reply {
        Reply::Status(s) if s == b"OK" => Ok(()),
        _ => Err(StoreError::Garbage("an unexpected reply to SET")),
    }
}

fn expect_int(reply: Reply) -> Result<(), StoreError> {
    match reply {
        Reply::Int(_) => Ok(()),
        _ => Err(StoreError::Garbage("an unexpected reply to EVAL")),
    }
}

/// A Redis error reply, by its first word only.
fn server_error(kind: &str) -> StoreError {
    match kind {
        "WRONGPASS" | "NOAUTH" | "INVALIDPASSWORD" => StoreError::Refused(401),
        "NOPERM" => StoreError::Refused(403),
        _ => StoreError::Garbage("an error reply"),
    }
}

fn io_failure(e: io::Error) -> Failure {
    match e.kind() {
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => Failure::TimedOut,
        kind => Failure::Io(kind),
    }
}

/// The time left before `end`, or a timeout.
fn left(end: Instant) -> Result<Duration, Failure> {
    let left = end.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(Failure::TimedOut);
    }
    Ok(left)
}

/// Looks `host` up on a thread of its own, waiting at most `timeout`: the system resolver has no
/// timeout, and a hanging DNS server must not hold the activation. An IP needs no lookup.
/// Every address found is returned (at most [`MAX_ADDRESSES`]), in the resolver's order.
fn resolve(host: &str, port: u16, timeout: Duration) -> Result<Vec<SocketAddr>, Failure> {
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let (tx, rx) = std::sync::mpsc::channel();
    let host = host.to_string();
    std::thread::Builder::new()
        .name("redis-dns".into())
        .spawn(move || {
            let found: Vec<SocketAddr> = (host.as_str(), port)
                .to_socket_addrs()
                .map(|addrs| addrs.take(MAX_ADDRESSES).collect())
                .unwrap_or_default();
            let _ = tx.send(found);
        })
        .map_err(|_| Failure::Io(io::ErrorKind::Other))?;
    match rx.recv_timeout(timeout) {
        Ok(addrs) if !addrs.is_empty() => Ok(addrs),
        Ok(_) => Err(Failure::Store(StoreError::Unavailable("host not found"))),
        Err(_) => Err(Failure::TimedOut),
    }
}

/// The roots `rediss://` trusts: the same as every HTTPS request's, Mozilla's plus the PEM
/// bundle in `SSL_CERT_FILE` (see [`crate::http`]).
fn tls_config() -> Result<Arc<rustls::ClientConfig>, &'static str> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in webpki_root_certs::TLS_SERVER_ROOT_CERTS {
        let _ = roots.add(cert.clone());
    }
    if let Some(path) = std::env::var_os("SSL_CERT_FILE").filter(|p| !p.is_empty())
        && let Ok(pem) = std::fs::read(path)
    {
        for item in ureq::tls::parse_pem(&pem).flatten() {
            if let ureq::tls::PemItem::Certificate(c) = item {
                let _ = roots.add(CertificateDer::from(c.der().to_vec()));
            }
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|_| "TLS cannot be set up")?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_are_checked_not_trusted() {
        assert_eq!(bytes_or_nil(Reply::Bulk(None)), Ok(None));
        assert_eq!(
            bytes_or_nil(Reply::Bulk(Some(b"v".to_vec()))),
            Ok(Some(b"v".to_vec()))
        );
        assert!(bytes_or_nil(Reply::Int(1)).is_err());
        assert!(expect_ok(Reply::Status(b"OK".to_vec())).is_ok());
        assert!(expect_ok(Reply::Bulk(None)).is_err());
        assert_eq!(server_error("WRONGPASS"), StoreError::Refused(401));
        assert_eq!(server_error("NOPERM"), StoreError::Refused(403));
        assert_eq!(server_error("ERR"), StoreError::Garbage("an error reply"));
    }

    #[test]
    fn a_poisoned_connection_lock_is_recovered_with_no_connection() {
        let store = RedisStore::new(&RedisUrl::parse("redis://127.0.0.1:9").unwrap()).unwrap();
        std::thread::scope(|s| {
            let poisoner = s.spawn(|| {
                let _held = store.kept.lock();
                panic!("a panic while the lock is held");
            });
            assert!(poisoner.join().is_err());
        });
        assert!(store.kept.is_poisoned());
        assert!(store.take_kept().is_none());
        assert!(!store.kept.is_poisoned());
    }

    #[test]
    fn the_tls_roots_load() {
        assert!(tls_config().is_ok());
    }
}
