//! A Redis that is hostile or broken, written here as a plain TCP server, against the real
//! binary and in process: nothing it sends panics an activation, disables the store for good,
//! makes the process allocate what it does not have, or holds an activation past the store's
//! allowance. Every activation answers 200 with a token from IMS; the store is left alone for
//! its cool-off and used again after it.

mod common;
mod store_support;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use common::*;
use ims_action::endpoint::AllowList;
use ims_action::time::Clock;
use ims_action::token::TokenCache;
use ims_action::token::store::SharedStores;
use ims_action::{Action, Activation};
use serde_json::{Value, json};
use store_support::*;

const STORE: &str = "IMS_ACTION_TOKEN_STORE";

/// What a hostile server answers to every command.
#[derive(Clone, Copy, Debug)]
enum Hostile {
    /// A status line whose first byte is not ASCII (`éOK`).
    NonAscii,
    /// A bulk string whose length is not a number.
    NotANumber,
    /// A bulk string of 2^62 bytes (its header; the bytes never come).
    Huge,
    /// 100,000 nested one-element arrays.
    Deep,
    /// 16 arrays of 16 arrays of 16 bulk strings of 1 MiB each: 4 GiB, each part within the
    /// bounds a per-element reader would check. Streamed until the client stops reading.
    Bloated,
    /// A bulk string of 100 bytes, one byte every 100 ms.
    Drip,
    /// To a TLS ClientHello, a handshake record of 16 KiB, one byte every 100 ms (100 of them).
    TlsDrip,
}

impl Hostile {
    fn answer(self, s: &mut TcpStream) -> std::io::Result<()> {
        match self {
            Hostile::NonAscii => s.write_all(b"\xc3\xa9OK\r\n"),
            Hostile::NotANumber => s.write_all(b"$12a\r\nabc\r\n"),
            Hostile::Huge => s.write_all(b"$4611686018427387904\r\n"),
            Hostile::Deep => s.write_all(&b"*1\r\n".repeat(100_000)),
            Hostile::Bloated => {
                let mib = vec![b'x'; 1024 * 1024];
                s.write_all(b"*16\r\n")?;
                for _ in 0..16 {
                    s.write_all(b"*16\r\n")?;
                    for _ in 0..16 {
                        s.write_all(b"*16\r\n")?;
                        for _ in 0..16 {
                            s.write_all(b"$1048576\r\n")?;
                            s.write_all(&mib)?;
                            s.write_all(b"\r\n")?;
                        }
                    }
                }
                Ok(())
            }
            Hostile::Drip | Hostile::TlsDrip => {
                match self {
                    Hostile::Drip => s.write_all(b"$100\r\n")?,
                    _ => s.write_all(b"\x16\x03\x03\x40\x00")?,
                }
                for _ in 0..102 {
                    // The hostile server's own pace, not the test waiting for time.
                    std::thread::sleep(Duration::from_millis(100));
                    s.write_all(b"x")?;
                }
                Ok(())
            }
        }
    }
}

/// A server on 127.0.0.1 that answers every command as `mode` says, or, once switched with
/// [`Server::heal`], relays every connection to a real Redis. Counts connections.
struct Server {
    url: String,
    connections: Arc<AtomicUsize>,
    healed: Arc<AtomicBool>,
}

impl Server {
    fn start(mode: Hostile, redis_port: Option<u16>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("redis://{}", listener.local_addr().unwrap());
        let connections = Arc::new(AtomicUsize::new(0));
        let healed = Arc::new(AtomicBool::new(false));
        let (count, heal) = (Arc::clone(&connections), Arc::clone(&healed));
        std::thread::spawn(move || {
            for s in listener.incoming() {
                let Ok(mut s) = s else { continue };
                count.fetch_add(1, Ordering::SeqCst);
                let healed = heal.load(Ordering::SeqCst);
                std::thread::spawn(move || match (healed, redis_port) {
                    (true, Some(port)) => relay(s, port),
                    _ => {
                        let mut buf = [0u8; 4096];
                        let _ = s.read(&mut buf);
                        let _ = mode.answer(&mut s);
                        let _ = s.shutdown(Shutdown::Write);
                        // Drain until the client goes: its close is what the server sees.
                        while matches!(s.read(&mut buf), Ok(n) if n > 0) {}
                    }
                });
            }
        });
        Server {
            url,
            connections,
            healed,
        }
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    /// From now on, new connections reach the real Redis.
    fn heal(&self) {
        self.healed.store(true, Ordering::SeqCst);
    }
}

/// Copies bytes both ways between `client` and the Redis on `port`.
fn relay(client: TcpStream, port: u16) {
    let Ok(redis) = TcpStream::connect(("127.0.0.1", port)) else {
        return;
    };
    let (mut c2, mut r2) = (client.try_clone().unwrap(), redis.try_clone().unwrap());
    let (mut c, mut r) = (client, redis);
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut c2, &mut r2);
        let _ = r2.shutdown(Shutdown::Write);
    });
    let _ = std::io::copy(&mut r, &mut c);
    let _ = c.shutdown(Shutdown::Write);
}

/// The OAuth credential with its scopes in the `i`-th order (0 to 23): another cache key each,
/// so that every activation misses memory and goes to the store, for the same client.
fn credential(w: &World, i: usize) -> Value {
    let scopes: Vec<String> = w.env["OAUTHS2S_CECREDENTIALS_METASCOPES"]
        .split(',')
        .map(str::to_string)
        .collect();
    assert_eq!(scopes.len(), 4);
    let mut pool = scopes.clone();
    let mut order = Vec::new();
    let mut rest = i % 24;
    for n in (1..=4).rev() {
        let f: usize = (1..n).product();
        order.push(pool.remove(rest / f));
        rest %= f;
    }
    with(
        w.oauth(),
        json!({ "OAUTHS2S_CECREDENTIALS_METASCOPES": order.join(",") }),
    )
}

fn client(w: &World) -> String {
    w.env["OAUTHS2S_CLIENT_ID"].clone()
}

/// One actionloop process under a 1 GiB address-space limit (an action container's memory):
/// a store setting that does not parse, then each hostile server in turn. Every activation
/// answers 200 with a new token from IMS; each server sees one connection (then the store
/// cools off); the process lives on and answers after all of them.
#[test]
fn hostile_stores_behind_one_actionloop_process_cost_each_one_try_and_nothing_more() {
    let w = World::new();
    let env = vec![
        ("__OW_NAMESPACE", "ns".to_string()),
        ("__OW_ACTION_NAME", "/ns/pkg/a".into()),
        ("IMS_ACTION_ALLOW_HOSTS", w.emu.host_port()),
    ];
    let mut al = ActionLoop::start_limited(&env, 1 << 30);
    let mut n = 0;
    let mut call = |al: &mut ActionLoop, setting: &str| {
        al.send(
            &with(credential(&w, n), json!({ STORE: setting })),
            &format!("a{n}"),
            &json!({}),
        );
        let r = al.reply();
        n += 1;
        assert_eq!(status(&r), 200, "activation {n} with the store {setting:?}: {r}");
        assert_eq!(
            w.emu.tokens_issued(&client(&w)),
            n as u64,
            "activation {n}: a token from IMS"
        );
    };

    // Not ASCII: a configuration error, logged, memory only.
    call(&mut al, "redis://\u{e9}t\u{e9}:6379");
    call(&mut al, "redis://\u{e9}t\u{e9}:6379");

    let modes = [
        Hostile::NonAscii,
        Hostile::NotANumber,
        Hostile::Huge,
        Hostile::Deep,
        Hostile::Bloated,
    ];
    for mode in modes {
        let server = Server::start(mode, None);
        call(&mut al, &server.url);
        assert_eq!(server.connections(), 1, "{mode:?}");
        // Cooling off: the next activation does not touch it.
        call(&mut al, &server.url);
        assert_eq!(server.connections(), 1, "{mode:?}");
        assert!(al.is_running(), "{mode:?}");
    }
    call(&mut al, "memory");
    assert!(al.is_running());
    let logs = al.logs();
    assert!(!logs.contains("panic"), "{logs}");
    assert!(
        logs.contains(
            "IMS_ACTION_TOKEN_STORE is not usable (it holds a space, a control or a non-ASCII character"
        ),
        "{logs}"
    );
    assert!(
        logs.contains("answered something unusable: not the Redis protocol"),
        "{logs}"
    );
}

/// A Redis that drips its reply (a byte every 100 ms: each read returns in time, the whole
/// would take 10 s), or drips its TLS handshake, costs a one-shot activation with a 5 s
/// deadline only the store's allowance: it answers 200 with a token from IMS, in time.
#[test]
fn a_dripping_store_costs_only_the_allowance() {
    for (mode, scheme) in [(Hostile::Drip, "redis"), (Hostile::TlsDrip, "rediss")] {
        let w = World::new();
        let server = Server::start(mode, None);
        let container = OneShot::new();
        let env = vec![
            (STORE, server.url.replace("redis", scheme)),
            ("IMS_ACTION_ALLOW_HOSTS", w.emu.host_port()),
        ];
        let child = container.spawn(&w.oauth(), now_ms() + 5_000, &env);
        let (result, logs) = finish(child);
        assert_eq!(status(&result), 200, "{mode:?}: {result} {logs}");
        assert_eq!(server.connections(), 1, "{mode:?}");
        assert_eq!(w.emu.tokens_issued(&client(&w)), 1, "{mode:?}");
        assert!(logs.contains("unavailable: timed out"), "{mode:?}: {logs}");
    }
}

/// In process, on a held clock: a store that answers garbage is left alone for the cool-off
/// (no connection while it lasts, even once it is healthy again), and used again after it:
/// the token then written there serves another container.
#[test]
fn after_the_cool_off_a_healed_store_is_used_again() {
    let w = World::new();
    let redis = RedisServer::start();
    let server = Server::start(Hostile::NonAscii, Some(redis.port));
    let clock = Clock::held(now_ms());
    let container = || {
        Action::new(AllowList::parse(&w.emu.host_port()), TokenCache::in_memory())
            .with_shared_stores(SharedStores::from_env().with_allowance(Duration::from_secs(1)))
            .with_clock(clock.clone())
    };
    let activation = || Activation {
        deadline_ms: Some(clock.now_ms() + 30_000),
        ..Activation::default()
    };
    let stored = |i| with(credential(&w, i), json!({ STORE: server.url }));
    let a = container();

    assert_eq!(status(&a.handle(stored(0), &activation())), 200);
    assert_eq!(server.connections(), 1);
    assert_eq!(a.shared_stores().stats().failures, 1);

    server.heal();
    assert_eq!(status(&a.handle(stored(1), &activation())), 200);
    assert_eq!(server.connections(), 1, "cooling off");
    assert_eq!(w.emu.tokens_issued(&client(&w)), 2);

    clock.advance(Duration::from_secs(31));
    assert_eq!(status(&a.handle(stored(2), &activation())), 200);
    assert_eq!(server.connections(), 2, "used again after the cool-off");
    assert_eq!(w.emu.tokens_issued(&client(&w)), 3);
    assert_eq!(redis.dump().len(), 1, "the token stored, the claim released");

    // Another container finds it there: no IMS request.
    let b = container();
    assert_eq!(status(&b.handle(stored(2), &activation())), 200);
    assert_eq!(b.shared_stores().stats().hits, 1);
    assert_eq!(w.emu.tokens_issued(&client(&w)), 3);
}

/// A relay to a real Redis that, once, forwards `SET … NX` (the claim) and then breaks the
/// client's connection before its answer: the claim was made, the client cannot know. It
/// counts `MGET`s (waiting for another container's fetch).
struct BreakingClaim {
    url: String,
    mgets: Arc<AtomicUsize>,
}

impl BreakingClaim {
    fn start(redis_port: u16) -> BreakingClaim {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("redis://{}", listener.local_addr().unwrap());
        let mgets = Arc::new(AtomicUsize::new(0));
        let broke = Arc::new(AtomicBool::new(false));
        let count = Arc::clone(&mgets);
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(mut client) = client else { continue };
                let (count, broke) = (Arc::clone(&count), Arc::clone(&broke));
                std::thread::spawn(move || {
                    let mut redis = TcpStream::connect(("127.0.0.1", redis_port)).unwrap();
                    let mut buf = vec![0u8; 64 * 1024];
                    loop {
                        let n = match client.read(&mut buf) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => n,
                        };
                        let command = &buf[..n];
                        if command.windows(6).any(|w| w == b"\r\nMGET") {
                            count.fetch_add(1, Ordering::SeqCst);
                        }
                        let is_claim = command.windows(6).any(|w| w == b"\r\nNX\r\n");
                        if redis.write_all(command).is_err() {
                            return;
                        }
                        let n = match redis.read(&mut buf) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => n,
                        };
                        if is_claim && !broke.swap(true, Ordering::SeqCst) {
                            let _ = client.shutdown(Shutdown::Both);
                            return;
                        }
                        if client.write_all(&buf[..n]).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        BreakingClaim { url, mgets }
    }
}

/// A claim whose connection broke after it was sent is sent again on a new connection, and
/// finds the lock taken: by itself. It is recognised as ours (the lock holds our owner id),
/// not waited on as another container's fetch.
#[test]
fn a_claim_resent_after_a_broken_connection_is_recognised_as_ours() {
    let w = World::new();
    let redis = RedisServer::start();
    let relay = BreakingClaim::start(redis.port);
    let a = Action::new(AllowList::parse(&w.emu.host_port()), TokenCache::in_memory())
        .with_shared_stores(SharedStores::from_env().with_allowance(Duration::from_secs(1)));
    let activation = Activation {
        deadline_ms: Some(now_ms() + 30_000),
        ..Activation::default()
    };
    let r = a.handle(with(w.oauth(), json!({ STORE: relay.url })), &activation);
    assert_eq!(status(&r), 200, "{r}");
    assert_eq!(w.emu.tokens_issued(&client(&w)), 1);
    assert_eq!(relay.mgets.load(Ordering::SeqCst), 0, "waited on its own claim");
    let stats = a.shared_stores().stats();
    assert_eq!(stats.failures, 0, "{stats:?}");
    // Stored, and the claim released: only the entry is left.
    let dump = redis.dump();
    assert_eq!(
        dump.len(),
        1,
        "{:?}",
        dump.iter().map(|(k, _)| k).collect::<Vec<_>>()
    );
}
