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

use std::io::{self, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustls::pki_types::{CertificateDer, ServerName};

use super::backend::{Backend, Call, ClaimOutcome, Poll, StoreError};
use super::resp::{Reply, read_reply, write_command};
use crate::secret::Secret;

/// Deletes KEYS[1] only while it holds ARGV[1].
const COMPARE_AND_DELETE: &str =
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end";

/// Used when the operation has no deadline (local CLI, tests): no step waits longer.
const UNBOUNDED_FALLBACK: Duration = Duration::from_secs(2);

/// A parsed `redis://[user:password@]host:port[/db]` or `rediss://…`.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisUrl {
    /// TLS (`rediss://`).
    pub tls: bool,
    /// The host, without brackets for IPv6.
    pub host: String,
    /// The port (6379 when not given).
    pub port: u16,
    /// The database (0 when not given).
    pub db: u32,
    /// The ACL user, when given.
    pub user: Option<String>,
    /// The password, when given.
    pub password: Option<Secret>,
}

impl std::fmt::Debug for RedisUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.display())
    }
}

impl RedisUrl {
    /// Parses a URL; the error never quotes it.
    pub fn parse(url: &str) -> Result<RedisUrl, &'static str> {
        const BAD: &str = "the Redis URL does not parse (redis://[user:password@]host:port[/db])";
        let (tls, rest) = if let Some(rest) = strip_prefix_ci(url, "rediss://") {
            (true, rest)
        } else if let Some(rest) = strip_prefix_ci(url, "redis://") {
            (false, rest)
        } else {
            return Err(BAD);
        };
        let (authority, path) = rest.split_at(rest.find(['/', '?', '#']).unwrap_or(rest.len()));
        if path.contains(['?', '#']) {
            return Err(BAD);
        }
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8()
                .map(|c| c.into_owned())
                .map_err(|_| BAD)
        };
        let (user, password) = match userinfo {
            None => (None, None),
            Some(info) => {
                let (user, password) = info.split_once(':').unwrap_or((info, ""));
                let user = Some(decode(user)?).filter(|u| !u.is_empty());
                let password = Some(decode(password)?).filter(|p| !p.is_empty());
                (user, password.map(Secret::new))
            }
        };
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let (host, after) = v6.split_once(']').ok_or(BAD)?;
            (host, after.strip_prefix(':'))
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (hostport, None),
            }
        };
        if host.is_empty()
            || !host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '_'))
        {
            return Err(BAD);
        }
        let port = match port {
            None | Some("") => 6379,
            Some(p) => p.parse::<u16>().ok().filter(|p| *p != 0).ok_or(BAD)?,
        };
        let db = match path.trim_start_matches('/') {
            "" => 0,
            db => db.parse().map_err(|_| BAD)?,
        };
        Ok(RedisUrl {
            tls,
            host: host.to_ascii_lowercase(),
            port,
            db,
            user,
            password,
        })
    }

    /// `redis://host:port/db`: what logs may show (never the user or password).
    pub fn display(&self) -> String {
        let scheme = if self.tls { "rediss" } else { "redis" };
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        format!("{scheme}://{host}:{}/{}", self.port, self.db)
    }
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    (s.len() >= prefix.len() && s[..prefix.len()].eq_ignore_ascii_case(prefix)).then(|| &s[prefix.len()..])
}

/// A connection: plain TCP, or TLS over it.
enum Stream {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Stream {
    fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(s) => &s.sock,
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
    connection: Mutex<Option<BufReader<Stream>>>,
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
            connection: Mutex::new(None),
        })
    }

    /// Sends `args` on the connection (opened if needed) and reads the reply, every step bounded
    /// by the time left; drops the connection on any error. A kept connection that turns out
    /// closed (the server's idle timeout, a restart: in actionloop mode the store is used once
    /// per token lifetime) is replaced once, within the same time.
    fn command(&self, call: &Call, args: &[&[u8]]) -> Result<Reply, StoreError> {
        let mut slot = self
            .connection
            .lock()
            .map_err(|_| StoreError::Unavailable("connection lock poisoned"))?;
        let kept = slot.is_some();
        let outcome = match self.attempt(&mut slot, call, args) {
            Err(Failure::Io(_)) if kept => {
                log::debug!("token store: the kept Redis connection is closed; reconnecting");
                self.attempt(&mut slot, call, args)
            }
            other => other,
        };
        match outcome {
            Ok(reply) => Ok(reply),
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

    fn attempt(
        &self,
        slot: &mut Option<BufReader<Stream>>,
        call: &Call,
        args: &[&[u8]],
    ) -> Result<Reply, Failure> {
        let end = Instant::now() + call.time_left(UNBOUNDED_FALLBACK);
        let outcome = self.attempt_until(slot, end, args);
        if outcome.is_err() {
            *slot = None;
        }
        outcome
    }

    fn attempt_until(
        &self,
        slot: &mut Option<BufReader<Stream>>,
        end: Instant,
        args: &[&[u8]],
    ) -> Result<Reply, Failure> {
        let connection = match slot {
            Some(c) => c,
            None => slot.insert(self.connect(end)?),
        };
        set_timeouts(connection.get_ref().tcp(), end)?;
        write_command(connection.get_mut(), args).map_err(io_failure)?;
        match read_reply(connection).map_err(io_failure)? {
            Reply::Error(kind) => Err(Failure::Store(server_error(&kind))),
            reply => Ok(reply),
        }
    }

    /// Resolves, connects, shakes hands, authenticates and selects the database, by `end`.
    fn connect(&self, end: Instant) -> Result<BufReader<Stream>, Failure> {
        let addr = resolve(&self.url.host, self.url.port, left(end)?)?;
        let tcp = TcpStream::connect_timeout(&addr, left(end)?).map_err(io_failure)?;
        let _ = tcp.set_nodelay(true);
        set_timeouts(&tcp, end)?;
        let stream = match &self.tls {
            None => Stream::Plain(tcp),
            Some(config) => {
                let name = ServerName::try_from(self.url.host.clone())
                    .map_err(|_| Failure::Store(StoreError::Unavailable("a host name TLS cannot check")))?;
                let mut tls = rustls::ClientConnection::new(Arc::clone(config), name)
                    .map_err(|_| Failure::Store(StoreError::Unavailable("TLS could not start")))?;
                let mut tcp = tcp;
                while tls.is_handshaking() {
                    tls.complete_io(&mut tcp).map_err(|e| match e.kind() {
                        io::ErrorKind::InvalidData => {
                            Failure::Store(StoreError::Unavailable("the TLS handshake failed"))
                        }
                        kind => Failure::Io(kind),
                    })?;
                }
                Stream::Tls(Box::new(rustls::StreamOwned::new(tls, tcp)))
            }
        };
        let mut connection = BufReader::new(stream);
        if let Some(password) = &self.url.password {
            let mut args: Vec<&[u8]> = vec![b"AUTH"];
            if let Some(user) = &self.url.user {
                args.push(user.as_bytes());
            }
            args.push(password.expose().as_bytes());
            self.setup(&mut connection, &args)?;
        }
        if self.url.db != 0 {
            let db = self.url.db.to_string();
            self.setup(&mut connection, &[b"SELECT", db.as_bytes()])?;
        }
        Ok(connection)
    }

    fn setup(&self, connection: &mut BufReader<Stream>, args: &[&[u8]]) -> Result<(), Failure> {
        write_command(connection.get_mut(), args).map_err(io_failure)?;
        match read_reply(connection).map_err(io_failure)? {
            Reply::Status(s) if s == "OK" => Ok(()),
            Reply::Error(kind) => Err(Failure::Store(server_error(&kind))),
            _ => Err(Failure::Store(StoreError::Garbage(
                "an unexpected reply to AUTH or SELECT",
            ))),
        }
    }
}

impl Backend for RedisStore {
    fn get(&self, name: &str, call: &Call) -> Result<Option<Vec<u8>>, StoreError> {
        bytes_or_nil(self.command(call, &[b"GET", name.as_bytes()])?)
    }

    fn put(&self, name: &str, value: &[u8], ttl: Duration, call: &Call) -> Result<(), StoreError> {
        let px = (ttl.as_millis().max(1) as u64).to_string();
        expect_ok(self.command(call, &[b"SET", name.as_bytes(), value, b"PX", px.as_bytes()])?)
    }

    fn delete_if(&self, name: &str, value: &[u8], call: &Call) -> Result<(), StoreError> {
        let reply = self.command(
            call,
            &[
                b"EVAL",
                COMPARE_AND_DELETE.as_bytes(),
                b"1",
                name.as_bytes(),
                value,
            ],
        )?;
        expect_int(reply)
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
        match self.command(call, &args)? {
            Reply::Status(s) if s == "OK" => Ok(ClaimOutcome::Won),
            Reply::Bulk(None) => Ok(ClaimOutcome::Lost),
            _ => Err(StoreError::Garbage("an unexpected reply to SET NX")),
        }
    }

    fn release(&self, lock: &str, owner: &str, call: &Call) -> Result<(), StoreError> {
        self.delete_if(lock, owner.as_bytes(), call)
    }

    fn poll(&self, name: &str, lock: &str, call: &Call) -> Result<Poll, StoreError> {
        let reply = self.command(call, &[b"MGET", name.as_bytes(), lock.as_bytes()])?;
        let Reply::Array(Some(mut items)) = reply else {
            return Err(StoreError::Garbage("an unexpected reply to MGET"));
        };
        if items.len() != 2 {
            return Err(StoreError::Garbage("an unexpected reply to MGET"));
        }
        let locked = !matches!(items.pop(), Some(Reply::Bulk(None)));
        let entry = bytes_or_nil(items.pop().unwrap_or(Reply::Bulk(None)))?;
        Ok(Poll {
            entry,
            locked: Some(locked),
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
        Reply::Status(s) if s == "OK" => Ok(()),
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

fn set_timeouts(tcp: &TcpStream, end: Instant) -> Result<(), Failure> {
    let left = left(end)?;
    tcp.set_read_timeout(Some(left))
        .and_then(|()| tcp.set_write_timeout(Some(left)))
        .map_err(io_failure)
}

/// Looks `host` up on a thread of its own, waiting at most `timeout`: the system resolver has no
/// timeout, and a hanging DNS server must not hold the activation. An IP needs no lookup.
fn resolve(host: &str, port: u16, timeout: Duration) -> Result<SocketAddr, Failure> {
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    let (tx, rx) = std::sync::mpsc::channel();
    let host = host.to_string();
    std::thread::Builder::new()
        .name("redis-dns".into())
        .spawn(move || {
            let found = (host.as_str(), port)
                .to_socket_addrs()
                .ok()
                .and_then(|mut a| a.next());
            let _ = tx.send(found);
        })
        .map_err(|_| Failure::Io(io::ErrorKind::Other))?;
    match rx.recv_timeout(timeout) {
        Ok(Some(addr)) => Ok(addr),
        Ok(None) => Err(Failure::Store(StoreError::Unavailable("host not found"))),
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
    fn urls_parse_and_show_no_secret() {
        let u = RedisUrl::parse("rediss://user:p%40ss-word@Cache.Internal:6380/2").unwrap();
        assert!(u.tls);
        assert_eq!((u.host.as_str(), u.port, u.db), ("cache.internal", 6380, 2));
        assert_eq!(u.user.as_deref(), Some("user"));
        assert_eq!(u.password.as_ref().map(Secret::expose), Some("p@ss-word"));
        assert_eq!(u.display(), "rediss://cache.internal:6380/2");
        assert_eq!(format!("{u:?}"), "rediss://cache.internal:6380/2");
        let plain = RedisUrl::parse("redis://127.0.0.1").unwrap();
        assert_eq!((plain.port, plain.db, plain.password.is_none()), (6379, 0, true));
        assert_eq!(
            RedisUrl::parse("redis://:pw@[::1]:7000/0").unwrap().display(),
            "redis://[::1]:7000/0"
        );
        for bad in [
            "http://x",
            "redis://",
            "redis://host:0",
            "redis://host:99999",
            "redis://host/x",
            "redis://host?x=1",
            "redis://ho st",
            "redis://user:p8e-hunter2@/x",
        ] {
            assert!(RedisUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn replies_are_checked_not_trusted() {
        assert_eq!(bytes_or_nil(Reply::Bulk(None)), Ok(None));
        assert_eq!(
            bytes_or_nil(Reply::Bulk(Some(b"v".to_vec()))),
            Ok(Some(b"v".to_vec()))
        );
        assert!(bytes_or_nil(Reply::Int(1)).is_err());
        assert!(expect_ok(Reply::Status("OK".into())).is_ok());
        assert!(expect_ok(Reply::Bulk(None)).is_err());
        assert_eq!(server_error("WRONGPASS"), StoreError::Refused(401));
        assert_eq!(server_error("NOPERM"), StoreError::Refused(403));
        assert_eq!(server_error("ERR"), StoreError::Garbage("an error reply"));
    }

    #[test]
    fn the_tls_roots_load() {
        assert!(tls_config().is_ok());
    }
}
