//! The shared token store on a real Redis (Debian's `redis-server`, one per test on an
//! ephemeral port): one IMS token for many cold containers, single-flight refreshes, nothing
//! readable in the store, foreign and tampered entries ignored, a 401 removed everywhere, and a
//! store that dies, hangs or talks nonsense costing no activation.

mod common;
mod store_support;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Barrier;
use std::time::Duration;

use adobe_emulator::{Fault, OAuthClient};
use base64::Engine;
use common::*;
use ims_action::endpoint::AllowList;
use ims_action::time::Clock;
use ims_action::token::TokenCache;
use ims_action::token::store::{SharedStores, StoreStats};
use ims_action::{Action, Activation};
use serde_json::{Value, json};
use store_support::*;

const STORE: &str = "IMS_ACTION_TOKEN_STORE";

fn client(w: &World) -> String {
    w.env["OAUTHS2S_CLIENT_ID"].clone()
}

/// IMS takes a while to answer the next `n` requests, so that containers started together
/// really do overlap the first one's fetch (the emulator waits; the test does not).
fn slow_ims(w: &World, n: u32) {
    w.emu
        .inject_fault("/ims", Fault::Delay(Duration::from_millis(300)), n);
}

/// An in-process container: its own memory, its own connection to the store.
///
/// Its store allowance is 1 s, not a deployment's 180 ms: the allowance is charged in real time,
/// and the counts these tests assert must not depend on how loaded the machine is. What a
/// failing store costs is tested with the deployed allowance ([`deployed_container`]).
fn container(w: &World) -> Action {
    Action::new(AllowList::parse(&w.emu.host_port()), TokenCache::in_memory())
        .with_shared_stores(SharedStores::from_env().with_allowance(Duration::from_secs(1)))
}

/// An in-process container with the store allowance a deployment has.
fn deployed_container(w: &World) -> Action {
    Action::new(AllowList::parse(&w.emu.host_port()), TokenCache::in_memory())
}

fn stored(params: Value, url: &str) -> Value {
    with(params, json!({ STORE: url }))
}

/// An activation with a deadline `ms` away.
fn activation_in(ms: u64) -> Activation {
    Activation {
        deadline_ms: Some(now_ms() + ms),
        ..Activation::default()
    }
}

/// The bearer tokens the API saw.
fn tokens_sent(w: &World) -> Vec<String> {
    let mut t: Vec<String> = w
        .emu
        .requests("/")
        .iter()
        .filter_map(|r| r.header("authorization"))
        .filter_map(|a| a.strip_prefix("Bearer ").map(str::to_string))
        .collect();
    t.sort();
    t.dedup();
    t
}

/// Every secret of the demo credentials, the tokens issued, and the identifiers an entry name
/// must not reveal.
fn everything_secret(w: &World) -> Vec<(String, String)> {
    let pem = String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(&w.env["JWT_PRIVATE_KEY"])
            .unwrap(),
    )
    .unwrap();
    let mut all = vec![
        (
            "the OAuth client secret".into(),
            w.env["OAUTHS2S_CLIENT_SECRET"].clone(),
        ),
        ("the OAuth client id".into(), w.env["OAUTHS2S_CLIENT_ID"].clone()),
        ("the JWT client secret".into(), w.env["JWT_CLIENT_SECRET"].clone()),
        ("the JWT client id".into(), w.env["JWT_CLIENT_ID"].clone()),
        ("the IMS org".into(), w.env["IMS_ORG_ID"].clone()),
        (
            "a line of the private key".into(),
            pem.lines().nth(3).unwrap().to_string(),
        ),
    ];
    for t in tokens_sent(w) {
        all.push((
            "a token's signature".into(),
            t.rsplit('.').next().unwrap().to_string(),
        ));
        all.push(("a token".into(), t));
    }
    all
}

/// Reads the raw store with `redis-cli`: entries only under opaque names, sealed, holding no
/// secret in any encoding. Returns how many there are.
fn assert_store_is_opaque(redis: &RedisServer, w: &World) -> usize {
    let dump = redis.dump();
    let all = everything_secret(w);
    let all: Vec<(&str, &str)> = all.iter().map(|(n, s)| (n.as_str(), s.as_str())).collect();
    assert!(all.iter().filter(|(n, _)| *n == "a token").count() >= 1);
    for (key, value) in &dump {
        assert!(key.starts_with("ims-action.v1."), "{key}");
        assert_no_secret(&format!("the name {key}"), key.as_bytes(), &all);
        assert_no_secret(&format!("the value of {key}"), value, &all);
        assert!(value.starts_with(b"v1."), "{key}");
    }
    dump.len()
}

#[test]
fn twenty_cold_one_shot_containers_make_one_token_request() {
    let w = World::new();
    let redis = RedisServer::start();
    slow_ims(&w, 20);
    let containers: Vec<OneShot> = (0..20).map(|_| OneShot::new()).collect();
    let env = vec![
        (STORE, redis.url()),
        ("IMS_ACTION_ALLOW_HOSTS", w.emu.host_port()),
        // Counts, not speed: a loaded machine must not push Redis past the 180 ms allowance.
        ("IMS_ACTION_STORE_ALLOWANCE_MS", "2000".into()),
    ];
    let deadline = now_ms() + 60_000;
    let params = with(w.oauth(), json!({"LOG_LEVEL": "debug"}));
    let children: Vec<_> = containers
        .iter()
        .map(|c| c.spawn(&params, deadline, &env))
        .collect();
    let (mut fetched, mut waited, mut read) = (0, 0, 0);
    for child in children {
        let (r, logs) = finish(child);
        assert_eq!(status(&r), 200, "{r}\n{logs}");
        assert!(!logs.contains("WARN"), "{logs}");
        fetched += logs.matches("getting a new access token").count();
        waited += logs.matches("token from another container's fetch").count();
        read += logs.matches(": hit").count();
    }
    eprintln!("20 cold one-shot containers: {fetched} fetched, {waited} waited for it, {read} read it");
    assert_eq!((fetched, waited + read), (1, 19));
    assert!(waited > 0, "containers that overlapped the fetch waited for it");
    assert_eq!(w.emu.tokens_issued(&client(&w)), 1);
    assert_eq!(w.emu.request_count("/ims"), 1);
    assert_eq!(w.emu.request_count("/adobe/stats"), 20);
    // Only the entry: the lock is gone.
    assert_eq!(assert_store_is_opaque(&redis, &w), 1);
}

#[test]
fn a_thousand_activations_over_ten_actionloop_containers_make_one_token_request() {
    let w = World::new();
    let redis = RedisServer::start();
    slow_ims(&w, 10);
    // The App Builder way: the setting arrives as an input, the environment has only __OW_*.
    let params = stored(w.oauth(), &redis.url());
    let env = vec![
        ("__OW_NAMESPACE", "ns".to_string()),
        ("IMS_ACTION_ALLOW_HOSTS", w.emu.host_port()),
        ("IMS_ACTION_STORE_ALLOWANCE_MS", "2000".to_string()),
    ];
    let mut loops: Vec<ActionLoop> = (0..10).map(|_| ActionLoop::start(&env)).collect();
    // The first activation of every container at once, then 99 more each.
    for (i, l) in loops.iter_mut().enumerate() {
        l.send(&params, &format!("c{i}-0"), &json!({}));
    }
    for l in &loops {
        let r = l.reply();
        assert_eq!(status(&r), 200, "{r}\n{}", l.logs());
    }
    for (i, l) in loops.iter_mut().enumerate() {
        for n in 1..100 {
            l.send(&params, &format!("c{i}-{n}"), &json!({}));
        }
    }
    let mut ok = 10;
    for l in &loops {
        for _ in 1..100 {
            let r = l.reply();
            assert_eq!(status(&r), 200, "{r}");
            ok += 1;
        }
    }
    assert_eq!(ok, 1000);
    assert_eq!(w.emu.tokens_issued(&client(&w)), 1);
    assert_eq!(w.emu.request_count("/adobe/stats"), 1000);
    for l in &loops {
        let logs = l.logs();
        assert!(!logs.contains("WARN"), "{logs}");
        assert!(!logs.contains(&redis.url()), "the setting is not logged");
    }
    assert_eq!(assert_store_is_opaque(&redis, &w), 1);
}

/// Ten containers refresh a token that reaches its refresh time (10 minutes before expiry, or
/// half-life): one IMS request, not ten. Their clock is held by the test.
#[test]
fn a_refresh_ahead_of_expiry_happens_once_not_once_per_container() {
    let w = World::new();
    let redis = RedisServer::start();
    let clock = Clock::held(now_ms());
    let containers: Vec<Action> = (0..10).map(|_| container(&w).with_clock(clock.clone())).collect();
    let params = stored(w.oauth(), &redis.url());
    let round = |containers: &[Action]| {
        let barrier = Barrier::new(containers.len());
        std::thread::scope(|s| {
            for a in containers {
                let (barrier, params, clock) = (&barrier, params.clone(), &clock);
                s.spawn(move || {
                    barrier.wait();
                    let activation = Activation {
                        deadline_ms: Some(clock.now_ms() + 60_000),
                        ..Activation::default()
                    };
                    let r = a.handle(params, &activation);
                    assert_eq!(status(&r), 200, "{r}");
                });
            }
        });
    };
    // Tokens of 30 minutes: due for refresh after 20 (10 minutes before they expire).
    w.emu
        .set_token_lifetime(Duration::from_secs(1800), Duration::from_secs(1800));
    slow_ims(&w, 10);
    round(&containers);
    assert_eq!(w.emu.tokens_issued(&client(&w)), 1);
    round(&containers);
    assert_eq!(w.emu.tokens_issued(&client(&w)), 1, "fresh: memory");

    // 21 minutes later by the containers' clock: every one of them finds its token due.
    w.emu
        .set_token_lifetime(Duration::from_secs(86_400), Duration::from_secs(86_400));
    clock.advance(Duration::from_secs(21 * 60));
    slow_ims(&w, 10);
    round(&containers);
    assert_eq!(w.emu.tokens_issued(&client(&w)), 2, "one refresh for all ten");
    round(&containers);
    assert_eq!(w.emu.tokens_issued(&client(&w)), 2);
    let waited: u64 = containers
        .iter()
        .map(|a| a.shared_stores().stats().waited_hits)
        .sum();
    let hits: u64 = containers.iter().map(|a| a.shared_stores().stats().hits).sum();
    // Per round, the nine others got the token from the store, by waiting or reading.
    assert_eq!(waited + hits, 18, "waited {waited}, read {hits}");
    assert_eq!(assert_store_is_opaque(&redis, &w), 1);
}

#[test]
fn foreign_tampered_and_rotated_entries_are_ignored() {
    let w = World::new();
    let redis = RedisServer::start();
    let oauth = stored(w.oauth(), &redis.url());
    let jwt = stored(w.jwt(), &redis.url());
    // Each credential's entry, written by a container of its own.
    assert_eq!(status(&w.call(&container(&w), oauth.clone())), 200);
    let oauth_entry = redis.dump();
    assert_eq!(oauth_entry.len(), 1);
    assert_eq!(status(&w.call(&container(&w), jwt.clone())), 200);
    let both = redis.dump();
    let jwt_entry = both.iter().find(|(k, _)| *k != oauth_entry[0].0).unwrap().clone();

    // A new container reads the OAuth entry: no IMS request.
    let a = container(&w);
    assert_eq!(status(&w.call(&a, oauth.clone())), 200);
    assert_eq!(a.shared_stores().stats().hits, 1);
    assert_eq!(w.emu.tokens_issued(&client(&w)), 1);

    // The JWT credential's entry copied under the OAuth entry's name: it does not open.
    redis.set_raw(&oauth_entry[0].0, &jwt_entry.1);
    let b = container(&w);
    assert_eq!(status(&w.call(&b, oauth.clone())), 200);
    assert_eq!(
        b.shared_stores().stats(),
        StoreStats {
            operations: 5,
            failures: 0,
            hits: 0,
            rejected: 2,
            waited_hits: 0
        },
        "read (rejected), claim, read again (rejected), write, release"
    );
    assert_eq!(w.emu.tokens_issued(&client(&w)), 2);

    // One byte of the ciphertext changed: it does not open either.
    let mut tampered = redis
        .dump()
        .into_iter()
        .find(|(k, _)| *k == oauth_entry[0].0)
        .unwrap()
        .1;
    let i = tampered.len() / 2;
    tampered[i] = if tampered[i] == b'A' { b'B' } else { b'A' };
    redis.set_raw(&oauth_entry[0].0, &tampered);
    let c = container(&w);
    assert_eq!(status(&w.call(&c, oauth.clone())), 200);
    assert_eq!(c.shared_stores().stats().rejected, 2);
    assert_eq!(w.emu.tokens_issued(&client(&w)), 3);

    // Not even ours: anything else under the name is ignored too.
    redis.set_raw(&oauth_entry[0].0, b"{\"access_token\":\"forged\"}");
    let d = container(&w);
    assert_eq!(status(&w.call(&d, oauth.clone())), 200);
    assert_eq!(d.shared_stores().stats().rejected, 2);
    assert_eq!(w.emu.tokens_issued(&client(&w)), 4);
    assert!(!tokens_sent(&w).iter().any(|t| t == "forged"));

    // The secret is rotated: the old entry is never read (another name, another key).
    let new_secret = "p8e-rotated-0123456789abcdef0123".to_string();
    w.emu.add_oauth_client(OAuthClient {
        client_secret: new_secret.clone(),
        ..w.demo.oauth.clone()
    });
    let rotated = with(oauth.clone(), json!({"OAUTHS2S_CLIENT_SECRET": new_secret}));
    let e = container(&w);
    assert_eq!(status(&w.call(&e, rotated)), 200);
    assert_eq!(
        e.shared_stores().stats().hits + e.shared_stores().stats().rejected,
        0
    );
    assert_eq!(w.emu.tokens_issued(&client(&w)), 5);
    assert_eq!(
        redis.dump().len(),
        3,
        "the JWT, old OAuth and rotated OAuth entries"
    );
    assert_store_is_opaque(&redis, &w);
}

#[test]
fn a_token_the_api_refuses_is_removed_from_every_layer() {
    let w = World::new();
    let redis = RedisServer::start();
    let params = stored(w.oauth(), &redis.url());
    let (a, b) = (container(&w), container(&w));
    assert_eq!(status(&w.call(&a, params.clone())), 200);
    assert_eq!(status(&w.call(&b, params.clone())), 200);
    assert_eq!(w.emu.tokens_issued(&client(&w)), 1, "b read a's token");
    let first = redis.dump();

    // The API refuses the token once: a drops it everywhere, fetches a new one and stores it.
    let refuse = |n| {
        w.emu.inject_fault(
            "/adobe/stats",
            Fault::Status {
                status: 401,
                retry_after: None,
                body: None,
            },
            n,
        )
    };
    refuse(1);
    assert_eq!(status(&w.call(&a, params.clone())), 200);
    assert_eq!(w.emu.tokens_issued(&client(&w)), 2);
    let second = redis.dump();
    assert_eq!(second.len(), 1);
    assert_ne!(first[0].1, second[0].1, "the store holds the new token");

    // b still holds the refused token in memory: the API refuses it, and b takes the new one
    // from the store instead of asking IMS (the store's newer token is left alone).
    refuse(1);
    assert_eq!(status(&w.call(&b, params.clone())), 200);
    assert_eq!(w.emu.tokens_issued(&client(&w)), 2);
    assert_eq!(redis.dump(), second);

    // Refused again, and IMS cannot give a new one: the refused token is gone from the store.
    refuse(1);
    w.emu.inject_fault(
        "/ims",
        Fault::Status {
            status: 503,
            retry_after: None,
            body: None,
        },
        3,
    );
    let r = w.call(&a, params.clone());
    assert_eq!(status(&r), 502, "{r}");
    assert!(redis.dump().is_empty(), "{:?}", redis.dump());
    // And from memory: the next call fetches.
    assert_eq!(status(&w.call(&a, params)), 200);
    assert_eq!(w.emu.tokens_issued(&client(&w)), 3);
}

#[test]
fn killing_the_store_mid_run_loses_no_activation() {
    let w = World::new();
    let mut redis = RedisServer::start();
    let env = vec![
        (STORE, redis.url()),
        ("IMS_ACTION_ALLOW_HOSTS", w.emu.host_port()),
    ];
    // Warm actionloop containers, and a wave of cold one-shot ones, while the store is up.
    let mut loops: Vec<ActionLoop> = (0..3).map(|_| ActionLoop::start(&env)).collect();
    for (i, l) in loops.iter_mut().enumerate() {
        l.send(&w.oauth(), &format!("warm-{i}"), &json!({}));
    }
    for l in &loops {
        assert_eq!(status(&l.reply()), 200);
    }
    let wave = |n: usize| -> Vec<String> {
        let containers: Vec<OneShot> = (0..n).map(|_| OneShot::new()).collect();
        let deadline = now_ms() + 10_000;
        let children: Vec<_> = containers
            .iter()
            .map(|c| c.spawn(&w.oauth(), deadline, &env))
            .collect();
        children
            .into_iter()
            .map(|child| {
                let (r, logs) = finish(child);
                assert_eq!(status(&r), 200, "{r}\n{logs}");
                logs
            })
            .collect()
    };
    wave(5);
    assert_eq!(w.emu.tokens_issued(&client(&w)), 1);

    redis.kill();

    // Cold containers now: each goes to IMS after one failed look at the store.
    for logs in wave(5) {
        assert_eq!(logs.matches("WARN").count(), 1, "{logs}");
        assert!(logs.contains("token store redis://127.0.0.1"), "{logs}");
        assert!(logs.contains("connection refused"), "{logs}");
    }
    assert_eq!(w.emu.tokens_issued(&client(&w)), 6);
    // The warm ones go on from memory.
    for (i, l) in loops.iter_mut().enumerate() {
        for n in 0..20 {
            l.send(&w.oauth(), &format!("after-{i}-{n}"), &json!({}));
        }
    }
    for l in &loops {
        for _ in 0..20 {
            assert_eq!(status(&l.reply()), 200);
        }
    }
    assert_eq!(w.emu.tokens_issued(&client(&w)), 6);
}

/// A listener that accepts connections and never answers: a hung Redis.
fn black_hole() -> (TcpListener, String) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("redis://{}", l.local_addr().unwrap());
    (l, url)
}

#[test]
fn a_hung_store_costs_one_bounded_try_and_then_nothing() {
    let w = World::new();
    let (listener, url) = black_hole();
    let held = std::thread::spawn(move || {
        // Hold every connection open, unanswered, until the test ends.
        let mut held = Vec::new();
        for s in listener.incoming().take(4) {
            held.push(s);
        }
    });
    let a = deployed_container(&w);
    // 3 s before the deadline: 2 s of budget. A store that waited for its answer would leave
    // IMS no time (504); the store gives up after its allowance.
    let r = a.handle(stored(w.oauth(), &url), &activation_in(3_000));
    assert_eq!(status(&r), 200, "{r}");
    assert_eq!(
        a.shared_stores().stats(),
        StoreStats {
            operations: 1,
            failures: 1,
            ..StoreStats::default()
        }
    );
    // Cooling off: another credential in this container does not touch the store at all.
    let r = a.handle(stored(w.jwt(), &url), &activation_in(3_000));
    assert_eq!(status(&r), 200, "{r}");
    assert_eq!(a.shared_stores().stats().operations, 1);
    assert_eq!(w.emu.tokens_issued(&client(&w)), 1);
    drop(a);
    // Unblock the acceptor so the thread ends.
    for _ in 0..4 {
        let _ = std::net::TcpStream::connect(url.trim_start_matches("redis://"));
    }
    let _ = held.join();
}

#[test]
fn a_store_that_talks_nonsense_is_ignored() {
    let w = World::new();
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("redis://{}", l.local_addr().unwrap());
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let mut buf = [0u8; 512];
            let _ = s.read(&mut buf);
            let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n");
        }
    });
    let a = container(&w);
    let r = a.handle(stored(w.oauth(), &url), &activation_in(30_000));
    assert_eq!(status(&r), 200, "{r}");
    let stats = a.shared_stores().stats();
    assert_eq!((stats.operations, stats.failures, stats.hits), (1, 1, 0));
    assert_eq!(w.emu.tokens_issued(&client(&w)), 1);
}

#[test]
fn a_password_in_the_url_is_used_and_never_shown() {
    let w = World::new();
    let password = "p8e-redis-password-4711";
    let redis = RedisServer::start_args(&["--requirepass", password]);
    let good = format!("redis://:{password}@127.0.0.1:{}/3", redis.port);
    let wrong = format!("redis://default:p8e-wrong-password-0815@127.0.0.1:{}", redis.port);
    let env = vec![("IMS_ACTION_ALLOW_HOSTS", w.emu.host_port())];
    let mut l = ActionLoop::start(&env);
    for (i, url) in [&good, &good, &wrong, &wrong].iter().enumerate() {
        let params = with(stored(w.oauth(), url), json!({"LOG_LEVEL": "debug"}));
        l.send(&params, &format!("a{i}"), &json!({}));
        let r = l.reply();
        assert_eq!(status(&r), 200, "{r}");
        assert!(!r.to_string().contains("p8e-"), "{r}");
    }
    // Database 3, behind the password: a cold container reads it there.
    assert_eq!(redis.cli(&["-n", "3", "DBSIZE"]).stdout, b"1\n");
    let cold = container(&w);
    assert_eq!(status(&w.call(&cold, stored(w.oauth(), &good))), 200);
    assert_eq!(cold.shared_stores().stats().hits, 1);
    // The wrong password: refused, IMS instead (its own container has no token in memory).
    let other = container(&w);
    assert_eq!(status(&w.call(&other, stored(w.oauth(), &wrong))), 200);
    assert_eq!(other.shared_stores().stats().failures, 1);
    assert_eq!(w.emu.tokens_issued(&client(&w)), 2);
    let logs = l.logs();
    assert!(logs.contains("redis://127.0.0.1"), "{logs}");
    for secret in [password, "p8e-wrong-password-0815"] {
        assert_no_secret("the logs", logs.as_bytes(), &[("a Redis password", secret)]);
    }
}

#[test]
fn a_setting_that_does_not_parse_falls_back_to_memory_and_is_logged_once_unquoted() {
    let w = World::new();
    let env = vec![("IMS_ACTION_ALLOW_HOSTS", w.emu.host_port())];
    let mut l = ActionLoop::start(&env);
    for (i, bad) in [
        "redis://user:p8e-hunter2-pass@",
        "rediss//nope:p8e-hunter2-pass",
        "adobe-state:moon",
    ]
    .iter()
    .enumerate()
    {
        for n in 0..2 {
            l.send(&stored(w.oauth(), bad), &format!("a{i}-{n}"), &json!({}));
            let r = l.reply();
            assert_eq!(status(&r), 200, "{r}");
        }
    }
    assert_eq!(w.emu.tokens_issued(&client(&w)), 1, "memory");
    let logs = l.logs();
    assert_eq!(
        logs.matches("IMS_ACTION_TOKEN_STORE is not usable").count(),
        1,
        "{logs}"
    );
    assert!(!logs.contains("hunter2"), "{logs}");
}

#[test]
fn rediss_with_the_operators_ca() {
    let w = World::new();
    let (cert_pem, key_pem) = adobe_emulator::keys::tls_server_pem(&["localhost"]);
    let redis = RedisServer::start_tls(&cert_pem, &key_pem);
    let ca_file = temp_path("ca.pem");
    std::fs::write(&ca_file, &cert_pem).unwrap();
    let ca = ca_file.to_string_lossy().into_owned();
    let env = |with_ca: bool| {
        let mut e = vec![
            (STORE, redis.url()),
            ("IMS_ACTION_ALLOW_HOSTS", w.emu.host_port()),
        ];
        if with_ca {
            e.push(("SSL_CERT_FILE", ca.clone()));
        }
        e
    };
    let deadline = now_ms() + 30_000;
    for _ in 0..3 {
        let c = OneShot::new();
        let (r, logs) = finish(c.spawn(&w.oauth(), deadline, &env(true)));
        assert_eq!(status(&r), 200, "{r}\n{logs}");
        assert!(!logs.contains("WARN"), "{logs}");
    }
    assert_eq!(
        w.emu.tokens_issued(&client(&w)),
        1,
        "three cold containers, one token, over TLS"
    );
    assert_eq!(redis.dump().len(), 1);
    // Without the operator's CA the server is not trusted: no store, IMS instead.
    let c = OneShot::new();
    let (r, logs) = finish(c.spawn(&w.oauth(), deadline, &env(false)));
    assert_eq!(status(&r), 200, "{r}\n{logs}");
    assert!(logs.contains("WARN"), "{logs}");
    assert_eq!(w.emu.tokens_issued(&client(&w)), 2);
    let _ = std::fs::remove_file(&ca_file);
}

/// In actionloop mode the store is used about once per token lifetime, so a kept connection is
/// usually one the server has closed since: it is replaced at once, not counted as a failure.
#[test]
fn a_kept_connection_the_server_closed_is_replaced_not_a_failure() {
    let w = World::new();
    let redis = RedisServer::start();
    let a = container(&w);
    assert_eq!(status(&w.call(&a, stored(w.oauth(), &redis.url()))), 200);
    // Another container stores the JWT credential's token.
    assert_eq!(
        status(&w.call(&container(&w), stored(w.jwt(), &redis.url()))),
        200
    );
    let killed = redis.cli(&["CLIENT", "KILL", "TYPE", "normal"]);
    assert_eq!(
        String::from_utf8_lossy(&killed.stdout).trim(),
        "1",
        "a's connection"
    );
    assert_eq!(status(&w.call(&a, stored(w.jwt(), &redis.url()))), 200);
    let stats = a.shared_stores().stats();
    assert_eq!((stats.failures, stats.hits), (0, 1), "{stats:?}");
    assert_eq!(w.emu.tokens_issued(&w.demo.jwt.client_id), 1);
}

/// The health view shows what the shared store holds for each credential (never the token):
/// nothing before the first fetch, the entry's expiry once a container stored one (seen by a
/// container whose memory is empty), and in words when the store does not answer.
#[test]
fn health_reports_the_shared_stores_entry_without_the_token() {
    let w = World::new();
    let redis = RedisServer::start();
    let health = |params: Value| with(params, json!({"OPERATION": "health"}));
    let token_of = |result: &Value| {
        assert_eq!(status(result), 200, "{result}");
        result["body"]["credentials"][0]["token"].clone()
    };
    let oauth = stored(w.oauth(), &redis.url());

    let before = token_of(&w.call(&container(&w), health(oauth.clone())));
    assert_eq!(
        before,
        json!({"memory": {"present": false}, "store": {"kind": "redis", "present": false}})
    );
    assert_eq!(w.emu.tokens_issued(&client(&w)), 0);

    assert_eq!(status(&w.call(&container(&w), oauth.clone())), 200);
    let fresh = container(&w);
    let after = w.call(&fresh, health(oauth.clone()));
    let token = token_of(&after);
    assert_eq!(token["memory"], json!({"present": false}), "{token}");
    assert_eq!(token["store"]["kind"], "redis");
    assert_eq!(token["store"]["present"], true, "{token}");
    let expires = token["store"]["expires_at"].as_str().unwrap_or("");
    assert!(expires.len() == 20 && expires.ends_with('Z'), "{token}");
    // Looking is not using: no hit counted, no token taken into memory, IMS not asked.
    assert_eq!(fresh.shared_stores().stats().hits, 0);
    assert_eq!(w.emu.tokens_issued(&client(&w)), 1);
    let text = after.to_string();
    for t in tokens_sent(&w) {
        assert!(!text.contains(&t), "the token came back: {text}");
    }
    // The same container's memory, after a call, and the store agree on the expiry.
    assert_eq!(status(&w.call(&fresh, oauth.clone())), 200);
    let both = token_of(&w.call(&fresh, health(oauth.clone())));
    assert_eq!(
        both["memory"]["expires_at"], both["store"]["expires_at"],
        "{both}"
    );

    // Without a store: null. A developer token is never shared: null as well.
    assert_eq!(
        token_of(&w.call(&container(&w), health(w.oauth())))["store"],
        Value::Null
    );
    let dev = stored(w.dev_token(), &redis.url());
    assert_eq!(
        token_of(&w.call(&container(&w), health(dev)))["store"],
        Value::Null
    );

    let mut redis = redis;
    redis.kill();
    let down = token_of(&w.call(&container(&w), health(oauth.clone())));
    assert_eq!(down["store"]["kind"], "redis");
    assert_eq!(down["store"]["present"], false);
    assert!(
        down["store"]["error"]
            .as_str()
            .unwrap_or("")
            .contains("did not answer"),
        "{down}"
    );
}
