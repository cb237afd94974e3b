//! Redis through `redis-rs`' blocking client: one connection per process, reopened after any
//! error, every command bounded by the operation's budget (connect, TLS and `AUTH` included).
//!
//! | operation | command |
//! |---|---|
//! | get | `GET name` |
//! | put | `SET name value PX ttl` |
//! | claim | `SET lock owner NX PX ttl` (atomic: one owner) |
//! | release, delete_if | `EVAL` compare-and-delete (only our own lock, only the refused entry) |
//! | poll | `MGET name lock` |
//!
//! Errors are reduced to a kind: a Redis server's error text is never logged, since a server at
//! a caller-chosen address could echo the password it was sent.

use std::sync::Mutex;
use std::time::Duration;

use base64::Engine;
use redis::{Client, Connection, IntoConnectionInfo, Value as Reply};

use super::backend::{Backend, Call, ClaimOutcome, Poll, StoreError};
use crate::secret::Secret;

/// Deletes KEYS[1] only while it holds ARGV[1].
const COMPARE_AND_DELETE: &str =
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end";

/// Used when the operation has no deadline (local CLI, tests): no command waits longer.
const UNBOUNDED_FALLBACK: Duration = Duration::from_secs(2);

/// A Redis server.
pub struct RedisStore {
    client: Client,
    connection: Mutex<Option<Connection>>,
}

impl RedisStore {
    /// A client for `url` (`redis://` or `rediss://`); nothing is connected yet.
    pub fn new(url: &Secret) -> Result<RedisStore, &'static str> {
        let info = url
            .expose()
            .into_connection_info()
            .map_err(|_| "the Redis URL does not parse")?;
        // No CLIENT SETINFO on connect: one command less, and nothing about us in CLIENT LIST.
        let settings = info.redis_settings().clone().set_skip_set_lib_name();
        let info = info.set_redis_settings(settings);
        let tls = matches!(info.addr(), redis::ConnectionAddr::TcpTls { .. });
        let client = if tls {
            Client::build_with_tls(
                info,
                redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(root_pem()),
                },
            )
        } else {
            Client::open(info)
        }
        .map_err(|_| "the Redis client cannot be set up (TLS roots?)")?;
        Ok(RedisStore {
            client,
            connection: Mutex::new(None),
        })
    }

    /// Runs `f` on the connection (opened if needed) with every timeout set to the time left;
    /// drops the connection on any error, so that the next operation starts clean. A kept
    /// connection that turns out closed (the server's idle timeout, a restart: in actionloop
    /// mode the store is used once per token lifetime) is replaced once, within the same time.
    fn with_connection<T>(
        &self,
        call: &Call,
        f: impl Fn(&mut Connection) -> redis::RedisResult<T>,
    ) -> Result<T, StoreError> {
        let mut slot = self
            .connection
            .lock()
            .map_err(|_| StoreError::Unavailable("connection lock poisoned"))?;
        let kept = slot.is_some();
        match self.attempt(&mut slot, call, &f) {
            Err(e) if kept && !e.is_timeout() && (e.is_io_error() || e.is_connection_dropped()) => {
                log::debug!("token store: the kept Redis connection is closed; reconnecting");
                self.attempt(&mut slot, call, &f)
            }
            other => other,
        }
        .map_err(classify)
    }

    fn attempt<T>(
        &self,
        slot: &mut Option<Connection>,
        call: &Call,
        f: &impl Fn(&mut Connection) -> redis::RedisResult<T>,
    ) -> redis::RedisResult<T> {
        let left = call.time_left(UNBOUNDED_FALLBACK);
        if left.is_zero() {
            return Err(timed_out());
        }
        let connection = match slot {
            Some(c) => c,
            None => {
                resolve_within(self.client.get_connection_info().addr(), left)?;
                let left = call.time_left(UNBOUNDED_FALLBACK);
                slot.insert(self.client.get_connection_with_timeout(left)?)
            }
        };
        let left = call.time_left(UNBOUNDED_FALLBACK).max(Duration::from_millis(1));
        let outcome = connection
            .set_read_timeout(Some(left))
            .and_then(|()| connection.set_write_timeout(Some(left)))
            .and_then(|()| f(connection));
        if outcome.is_err() {
            *slot = None;
        }
        outcome
    }
}

impl Backend for RedisStore {
    fn get(&self, name: &str, call: &Call) -> Result<Option<Vec<u8>>, StoreError> {
        let reply: Reply = self.with_connection(call, |c| redis::cmd("GET").arg(name).query(c))?;
        bytes_or_nil(reply)
    }

    fn put(&self, name: &str, value: &[u8], ttl: Duration, call: &Call) -> Result<(), StoreError> {
        let reply: Reply = self.with_connection(call, |c| {
            redis::cmd("SET")
                .arg(name)
                .arg(value)
                .arg("PX")
                .arg(ttl.as_millis().max(1) as u64)
                .query(c)
        })?;
        expect_ok(reply)
    }

    fn delete_if(&self, name: &str, value: &[u8], call: &Call) -> Result<(), StoreError> {
        let reply: Reply = self.with_connection(call, |c| {
            redis::cmd("EVAL")
                .arg(COMPARE_AND_DELETE)
                .arg(1)
                .arg(name)
                .arg(value)
                .query(c)
        })?;
        expect_int(reply)
    }

    fn claim(&self, lock: &str, owner: &str, ttl: Duration, call: &Call) -> Result<ClaimOutcome, StoreError> {
        let reply: Reply = self.with_connection(call, |c| {
            redis::cmd("SET")
                .arg(lock)
                .arg(owner)
                .arg("NX")
                .arg("PX")
                .arg(ttl.as_millis().max(1) as u64)
                .query(c)
        })?;
        match reply {
            Reply::Okay => Ok(ClaimOutcome::Won),
            Reply::Nil => Ok(ClaimOutcome::Lost),
            Reply::SimpleString(s) if s == "OK" => Ok(ClaimOutcome::Won),
            _ => Err(StoreError::Garbage("an unexpected reply to SET NX")),
        }
    }

    fn release(&self, lock: &str, owner: &str, call: &Call) -> Result<(), StoreError> {
        self.delete_if(lock, owner.as_bytes(), call)
    }

    fn poll(&self, name: &str, lock: &str, call: &Call) -> Result<Poll, StoreError> {
        let reply: Reply = self.with_connection(call, |c| redis::cmd("MGET").arg(name).arg(lock).query(c))?;
        let Reply::Array(mut items) = reply else {
            return Err(StoreError::Garbage("an unexpected reply to MGET"));
        };
        if items.len() != 2 {
            return Err(StoreError::Garbage("an unexpected reply to MGET"));
        }
        let locked = !matches!(items.pop(), Some(Reply::Nil));
        let entry = bytes_or_nil(items.pop().unwrap_or(Reply::Nil))?;
        Ok(Poll {
            entry,
            locked: Some(locked),
        })
    }
}

fn bytes_or_nil(reply: Reply) -> Result<Option<Vec<u8>>, StoreError> {
    match reply {
        Reply::Nil => Ok(None),
        Reply::BulkString(b) => Ok(Some(b)),
        _ => Err(StoreError::Garbage("a value that is not a string")),
    }
}

fn expect_ok(reply: Reply) -> Result<(), StoreError> {
    match reply {
        Reply::Okay => Ok(()),
        Reply::SimpleString(s) if s == "OK" => Ok(()),
        _ => Err(StoreError::Garbage("an unexpected reply to SET")),
    }
}

fn expect_int(reply: Reply) -> Result<(), StoreError> {
    match reply {
        Reply::Int(_) => Ok(()),
        _ => Err(StoreError::Garbage("an unexpected reply to EVAL")),
    }
}

/// Looks the host name up on a thread of its own, waiting at most `timeout`: `redis-rs`
/// resolves without one, and a hanging DNS server must not hold the activation. (The lookup
/// it then makes itself is answered from the resolver's fresh state; an IP needs none.)
fn resolve_within(addr: &redis::ConnectionAddr, timeout: Duration) -> redis::RedisResult<()> {
    let (host, port) = match addr {
        redis::ConnectionAddr::Tcp(host, port) | redis::ConnectionAddr::TcpTls { host, port, .. } => {
            (host.clone(), *port)
        }
        _ => return Ok(()),
    };
    if host.trim_matches(['[', ']']).parse::<std::net::IpAddr>().is_ok() {
        return Ok(());
    }
    let (tx, rx) = std::sync::mpsc::channel();
    let spawned = std::thread::Builder::new()
        .name("redis-dns".into())
        .spawn(move || {
            let found = std::net::ToSocketAddrs::to_socket_addrs(&(host.as_str(), port))
                .map(|mut addrs| addrs.next().is_some())
                .unwrap_or(false);
            let _ = tx.send(found);
        });
    if spawned.is_err() {
        return Ok(());
    }
    match rx.recv_timeout(timeout) {
        Ok(true) => Ok(()),
        Ok(false) => Err(std::io::Error::new(std::io::ErrorKind::NotFound, "host not found").into()),
        Err(_) => Err(timed_out()),
    }
}

fn timed_out() -> redis::RedisError {
    std::io::Error::new(std::io::ErrorKind::TimedOut, "no time left").into()
}

/// The kind of a Redis error, in our words (see the module comment).
fn classify(e: redis::RedisError) -> StoreError {
    if e.is_timeout() {
        return StoreError::Unavailable("timed out");
    }
    if e.is_connection_refusal() {
        return StoreError::Unavailable("connection refused");
    }
    match e.kind() {
        redis::ErrorKind::AuthenticationFailed => StoreError::Refused(401),
        redis::ErrorKind::Io => StoreError::Unavailable("connection failed"),
        redis::ErrorKind::Parse | redis::ErrorKind::UnexpectedReturnType => {
            StoreError::Garbage("not the Redis protocol")
        }
        redis::ErrorKind::Server(redis::ServerErrorKind::NoPerm) => StoreError::Refused(403),
        redis::ErrorKind::Server(_) | redis::ErrorKind::Extension => StoreError::Garbage("an error reply"),
        _ => StoreError::Unavailable("client error"),
    }
}

/// The roots `rediss://` trusts: the same as every HTTPS request's, Mozilla's plus the PEM
/// bundle in `SSL_CERT_FILE` (see [`crate::http`]), as one PEM text for `redis-rs`.
fn root_pem() -> Vec<u8> {
    let mut pem = String::new();
    for cert in webpki_root_certs::TLS_SERVER_ROOT_CERTS {
        let b64 = base64::engine::general_purpose::STANDARD.encode(cert.as_ref());
        pem.push_str("-----BEGIN CERTIFICATE-----\n");
        for line in b64.as_bytes().chunks(64) {
            pem.push_str(&String::from_utf8_lossy(line));
            pem.push('\n');
        }
        pem.push_str("-----END CERTIFICATE-----\n");
    }
    let mut pem = pem.into_bytes();
    if let Some(path) = std::env::var_os("SSL_CERT_FILE").filter(|p| !p.is_empty())
        && let Ok(extra) = std::fs::read(path)
    {
        pem.push(b'\n');
        pem.extend_from_slice(&extra);
    }
    pem
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_are_checked_not_trusted() {
        assert_eq!(bytes_or_nil(Reply::Nil), Ok(None));
        assert_eq!(
            bytes_or_nil(Reply::BulkString(b"v".to_vec())),
            Ok(Some(b"v".to_vec()))
        );
        assert!(bytes_or_nil(Reply::Int(1)).is_err());
        assert!(expect_ok(Reply::Okay).is_ok());
        assert!(expect_ok(Reply::Nil).is_err());
    }

    #[test]
    fn the_roots_parse_as_pem() {
        let pem = root_pem();
        let text = String::from_utf8(pem).unwrap();
        assert!(text.matches("BEGIN CERTIFICATE").count() >= webpki_root_certs::TLS_SERVER_ROOT_CERTS.len());
    }
}
