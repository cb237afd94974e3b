//! The shared token store on Adobe I/O State, spoken over its REST API to the emulator's
//! (`AIO_STATE_ENDPOINT`, as aio-lib-state's own e2e tests do): how many IMS requests cold
//! containers make (State has no atomic operation, so this is measured and bounded, not
//! exact), what anyone with the namespace's key can read there (nothing), and every way State
//! can refuse or fail costing no activation.

mod common;
mod store_support;

use std::time::Duration;

use adobe_emulator::{Fault, StateEntry};
use common::*;
use ims_action::endpoint::AllowList;
use ims_action::secret::Secret;
use ims_action::token::TokenCache;
use ims_action::token::store::SharedStores;
use ims_action::{Action, Activation};
use serde_json::{Value, json};
use store_support::*;

const STORE: &str = "IMS_ACTION_TOKEN_STORE";
const NS: &str = "12345-imsaction-stage";
const API_KEY: &str =
    "23bc3a8e-5b8c-4b7e-9c55-0f3a4c9e1d2b:p8e-NamespaceSecretOf64Chars0123456789abcdef0123456789";

fn client(w: &World) -> String {
    w.env["OAUTHS2S_CLIENT_ID"].clone()
}

fn world() -> World {
    let w = World::new();
    w.emu.add_state_namespace(NS, API_KEY);
    w
}

fn slow_ims(w: &World, n: u32) {
    w.emu
        .inject_fault("/ims", Fault::Delay(Duration::from_millis(300)), n);
}

/// An in-process container talking to the emulator's State, with the store allowance a
/// deployment has (180 ms): for what a failing store costs.
fn deployed_container(w: &World) -> Action {
    Action::new(AllowList::parse(&w.emu.host_port()), TokenCache::in_memory())
        .with_shared_stores(SharedStores::from_env().with_state_endpoint(&w.emu.base_url()))
}

/// The same with a 1 s allowance, for tests of what is stored and read: the allowance is
/// charged in real time, and a loaded machine must not make State look slower than it.
fn container(w: &World) -> Action {
    Action::new(AllowList::parse(&w.emu.host_port()), TokenCache::in_memory()).with_shared_stores(
        SharedStores::from_env()
            .with_state_endpoint(&w.emu.base_url())
            .with_allowance(Duration::from_secs(1)),
    )
}

fn stored(params: Value) -> Value {
    with(params, json!({ STORE: "adobe-state" }))
}

/// An activation of the namespace, with its API key (`provide-api-key`), `ms` from its deadline.
fn activation(ms: u64) -> Activation {
    Activation {
        deadline_ms: Some(now_ms() + ms),
        namespace: Some(NS.into()),
        api_key: Some(Secret::new(API_KEY)),
        ..Activation::default()
    }
}

fn call(a: &Action, params: Value) -> Value {
    a.handle(params, &activation(30_000))
}

fn one_shot_env(w: &World) -> Vec<(&'static str, String)> {
    vec![
        (STORE, "adobe-state".into()),
        ("AIO_STATE_ENDPOINT", w.emu.base_url()),
        ("__OW_NAMESPACE", NS.into()),
        ("__OW_API_KEY", API_KEY.into()),
        ("IMS_ACTION_ALLOW_HOSTS", w.emu.host_port()),
    ]
}

fn status_fault(status: u16, retry_after: Option<&str>) -> Fault {
    Fault::Status {
        status,
        retry_after: retry_after.map(str::to_string),
        body: None,
    }
}

/// What anyone with the namespace's key reads: opaque names and sealed values, no secret in
/// any encoding (the namespace's own key included). Returns the entries.
fn assert_state_is_opaque(w: &World) -> Vec<StateEntry> {
    let entries = w.emu.state_entries(NS);
    let mut secrets: Vec<(String, String)> = vec![
        (
            "the OAuth client secret".into(),
            w.env["OAUTHS2S_CLIENT_SECRET"].clone(),
        ),
        ("the OAuth client id".into(), w.env["OAUTHS2S_CLIENT_ID"].clone()),
        ("the JWT client secret".into(), w.env["JWT_CLIENT_SECRET"].clone()),
        ("the IMS org".into(), w.env["IMS_ORG_ID"].clone()),
        ("the namespace's API key".into(), API_KEY.into()),
    ];
    for r in w.emu.requests("/adobe") {
        if let Some(t) = r.header("authorization").and_then(|a| a.strip_prefix("Bearer ")) {
            secrets.push(("a token's signature".into(), t.rsplit('.').next().unwrap().into()));
            secrets.push(("a token".into(), t.into()));
        }
    }
    assert!(secrets.iter().any(|(n, _)| n == "a token"));
    let secrets: Vec<(&str, &str)> = secrets.iter().map(|(n, s)| (n.as_str(), s.as_str())).collect();
    for e in &entries {
        assert!(e.key.starts_with("ims-action.v1."), "{}", e.key);
        assert_no_secret(&format!("the key {}", e.key), e.key.as_bytes(), &secrets);
        assert_no_secret(&format!("the value of {}", e.key), &e.value, &secrets);
        // A claim that a slow State cut short may outlive it until its TTL: it holds only its
        // owner's random id.
        assert!(
            e.key.ends_with(".lock") || e.value.starts_with(b"v1."),
            "{}",
            e.key
        );
    }
    // The token entries (claims aside).
    entries
        .into_iter()
        .filter(|e| !e.key.ends_with(".lock"))
        .collect()
}

/// Only State requests carry the namespace's key, and only in their `Authorization` header.
fn assert_key_went_to_state_only(w: &World) {
    let basic = format!(
        "Basic {}",
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, API_KEY)
    );
    for r in w.emu.requests("/") {
        let carries = r
            .headers
            .iter()
            .any(|(_, v)| v.contains("p8e-Namespace") || *v == basic)
            || String::from_utf8_lossy(&r.body).contains("p8e-Namespace")
            || r.query.contains("p8e-Namespace");
        assert_eq!(
            carries,
            r.path.starts_with("/containers/"),
            "{} {}",
            r.method,
            r.path
        );
        if r.path.starts_with("/containers/") {
            assert_eq!(r.header("authorization"), Some(basic.as_str()));
        }
    }
}

#[test]
fn twenty_cold_one_shot_containers_against_adobe_state() {
    let w = world();
    slow_ims(&w, 20);
    let containers: Vec<OneShot> = (0..20).map(|_| OneShot::new()).collect();
    let deadline = now_ms() + 60_000;
    let params = with(w.oauth(), json!({"LOG_LEVEL": "debug"}));
    // Counts, not speed: a loaded test machine must not push State past the store's 180 ms
    // allowance (that fallback has tests of its own).
    let mut env = one_shot_env(&w);
    env.push(("IMS_ACTION_STORE_ALLOWANCE_MS", "2000".into()));
    let children: Vec<_> = containers
        .iter()
        .map(|c| c.spawn(&params, deadline, &env))
        .collect();
    let (mut fetched, mut waited, mut read) = (0, 0, 0);
    for child in children {
        let (r, logs) = finish(child);
        assert_eq!(status(&r), 200, "{r}\n{logs}");
        // (A WARN is allowed: on a loaded machine State can take longer than the allowance, and
        // the container then rightly goes to IMS itself.)
        assert!(!logs.contains("p8e-Namespace"), "{logs}");
        fetched += logs.matches("getting a new access token").count();
        waited += logs.matches("token from another container's fetch").count();
        read += logs.matches(": hit").count();
    }
    let issued = w.emu.tokens_issued(&client(&w));
    eprintln!(
        "adobe-state, 20 cold one-shot containers: {issued} token request(s); \
         {waited} waited for a fetch, {read} read the entry; {} State requests",
        w.emu.request_count("/containers")
    );
    assert_eq!(fetched as u64, issued);
    assert_eq!(fetched + waited + read, 20);
    // No compare-and-set: claims whose writes land further apart than the settle time can both
    // win, and a State slower than the allowance sends a container to IMS itself; how many that
    // is depends on timing (1 on an idle machine; the README quotes measured numbers). What holds
    // whatever the timing: far fewer requests than containers.
    assert!((1..10).contains(&issued), "{issued} token requests");
    let entries = assert_state_is_opaque(&w);
    assert_eq!(entries.len(), 1, "one entry for the credential: {entries:?}");
    assert_key_went_to_state_only(&w);
}

#[test]
fn a_thousand_activations_over_ten_actionloop_containers_against_adobe_state() {
    let w = world();
    slow_ims(&w, 10);
    let params = stored(w.oauth());
    // The key and namespace come in each activation line, as OpenWhisk sends them.
    let env = vec![
        ("AIO_STATE_ENDPOINT", w.emu.base_url()),
        ("IMS_ACTION_ALLOW_HOSTS", w.emu.host_port()),
        ("IMS_ACTION_STORE_ALLOWANCE_MS", "2000".into()),
    ];
    let line = json!({"namespace": NS, "api_key": API_KEY});
    let mut loops: Vec<ActionLoop> = (0..10).map(|_| ActionLoop::start(&env)).collect();
    for (i, l) in loops.iter_mut().enumerate() {
        l.send(&params, &format!("c{i}-0"), &line);
    }
    for l in &loops {
        let r = l.reply();
        assert_eq!(status(&r), 200, "{r}\n{}", l.logs());
    }
    for (i, l) in loops.iter_mut().enumerate() {
        for n in 1..100 {
            l.send(&params, &format!("c{i}-{n}"), &line);
        }
    }
    for l in &loops {
        for _ in 1..100 {
            assert_eq!(status(&l.reply()), 200);
        }
        let logs = l.logs();
        assert!(!logs.contains("p8e-Namespace"), "{logs}");
    }
    let issued = w.emu.tokens_issued(&client(&w));
    eprintln!(
        "adobe-state, 1,000 activations over 10 actionloop containers: {issued} token request(s), \
         {} State requests",
        w.emu.request_count("/containers")
    );
    // Timing decides how many claims win on State (see above); fewer than one per container.
    assert!((1..10).contains(&issued), "{issued} token requests");
    assert_eq!(w.emu.request_count("/adobe/stats"), 1000);
    assert_eq!(assert_state_is_opaque(&w).len(), 1);
    assert_key_went_to_state_only(&w);
}

#[test]
fn the_entry_lives_until_the_tokens_refresh_time_on_states_clock() {
    let w = world();
    let a = container(&w);
    assert_eq!(status(&call(&a, stored(w.oauth()))), 200);
    let put = w
        .emu
        .requests("/containers")
        .into_iter()
        .find(|r| r.method == "PUT" && !r.path.ends_with(".lock"))
        .expect("the entry's PUT");
    assert_eq!(put.header("content-type"), Some("application/octet-stream"));
    // IMS says 86,399 s; refreshed 10 minutes early: 85,799 s, whole seconds, rounded down.
    let ttl: u64 = put.query_param("ttl").unwrap().parse().unwrap();
    assert!((85_790..=85_799).contains(&ttl), "ttl {ttl}");
    // A new container reads it; after the TTL, State has dropped it and IMS is asked again.
    let b = container(&w);
    assert_eq!(status(&call(&b, stored(w.oauth()))), 200);
    assert_eq!(b.shared_stores().stats().hits, 1);
    w.emu.advance_clock(Duration::from_secs(85_800));
    assert!(w.emu.state_entries(NS).is_empty());
    let c = container(&w);
    assert_eq!(status(&call(&c, stored(w.oauth()))), 200);
    assert_eq!(w.emu.tokens_issued(&client(&w)), 2);
}

#[test]
fn foreign_tampered_and_garbage_entries_are_ignored() {
    let w = world();
    assert_eq!(status(&call(&container(&w), stored(w.oauth()))), 200);
    let oauth = w.emu.state_entries(NS).remove(0);
    assert_eq!(status(&call(&container(&w), stored(w.jwt()))), 200);
    let jwt = w
        .emu
        .state_entries(NS)
        .into_iter()
        .find(|e| e.key != oauth.key)
        .unwrap();
    let mut issued = 1;
    let mut tampered = oauth.value.clone();
    let i = tampered.len() / 2;
    tampered[i] = if tampered[i] == b'A' { b'B' } else { b'A' };
    for forged in [
        jwt.value.clone(),
        tampered,
        b"{\"access_token\":\"forged\"}".to_vec(),
    ] {
        w.emu.put_state_entry(
            NS,
            StateEntry {
                value: forged,
                ..oauth.clone()
            },
        );
        let a = container(&w);
        assert_eq!(status(&call(&a, stored(w.oauth()))), 200);
        // Read before the claim and once more after it: ignored both times.
        assert_eq!(a.shared_stores().stats().rejected, 2);
        issued += 1;
        assert_eq!(w.emu.tokens_issued(&client(&w)), issued);
    }
    // The last fetch stored a good entry again, which opens.
    let a = container(&w);
    assert_eq!(status(&call(&a, stored(w.oauth()))), 200);
    assert_eq!(a.shared_stores().stats().hits, 1);
    assert_eq!(w.emu.tokens_issued(&client(&w)), issued);
}

#[test]
fn every_way_state_refuses_or_fails_costs_no_activation() {
    let faults: Vec<(&str, Fault)> = vec![
        ("throttled", status_fault(429, Some("30"))),
        ("bad credentials", status_fault(401, None)),
        ("quota", status_fault(403, None)),
        ("too large", status_fault(413, None)),
        ("down", status_fault(503, None)),
        ("gateway page", Fault::Html),
        ("dropped", Fault::Drop),
        ("garbage", Fault::Malformed),
        ("huge", Fault::Huge),
        // Slower than the whole activation: only the store's allowance keeps IMS in time.
        ("hung", Fault::Delay(Duration::from_secs(5))),
    ];
    for (what, fault) in faults {
        let w = world();
        w.emu.inject_fault("/containers", fault, 100);
        let a = deployed_container(&w);
        // 3 s before the deadline leaves 2 s of budget: a store that took them would leave
        // IMS none (504).
        let r = a.handle(stored(w.oauth()), &activation(3_000));
        assert_eq!(status(&r), 200, "{what}: {r}");
        let stats = a.shared_stores().stats();
        assert_eq!(stats.hits, 0, "{what}");
        assert!(stats.failures + stats.rejected >= 1, "{what}: {stats:?}");
        assert_eq!(w.emu.tokens_issued(&client(&w)), 1, "{what}");
        // Memory serves the next call, whatever the store does.
        let before = w.emu.request_count("/containers");
        assert_eq!(
            status(&a.handle(stored(w.oauth()), &activation(3_000))),
            200,
            "{what}"
        );
        assert_eq!(w.emu.request_count("/containers"), before, "{what}");
    }
}

#[test]
fn throttling_is_honoured_for_the_whole_container() {
    let w = world();
    w.emu
        .inject_fault("/containers", status_fault(429, Some("30")), 1);
    let a = container(&w);
    assert_eq!(status(&call(&a, stored(w.oauth()))), 200);
    assert_eq!(w.emu.request_count("/containers"), 1);
    // Another credential within the 30 s: State is not asked at all.
    assert_eq!(status(&call(&a, stored(w.jwt()))), 200);
    assert_eq!(w.emu.request_count("/containers"), 1);
    assert_eq!(a.shared_stores().stats().failures, 1);
}

#[test]
fn without_the_namespace_key_the_store_is_skipped_with_one_warning() {
    let w = world();
    let env = vec![
        ("AIO_STATE_ENDPOINT", w.emu.base_url()),
        ("IMS_ACTION_ALLOW_HOSTS", w.emu.host_port()),
    ];
    // No provide-api-key: the line has no api_key, the environment no __OW_API_KEY.
    let mut l = ActionLoop::start(&env);
    for n in 0..3 {
        l.send(&stored(w.oauth()), &format!("a{n}"), &json!({}));
        assert_eq!(status(&l.reply()), 200);
    }
    l.send(&stored(w.jwt()), "j", &json!({}));
    assert_eq!(status(&l.reply()), 200);
    let logs = l.logs();
    assert_eq!(logs.matches("provide-api-key").count(), 1, "{logs}");
    assert_eq!(w.emu.request_count("/containers"), 0);
}

#[test]
fn a_token_the_api_refuses_is_removed_from_state_too() {
    let w = world();
    let a = container(&w);
    assert_eq!(status(&call(&a, stored(w.oauth()))), 200);
    assert_eq!(w.emu.state_entries(NS).len(), 1);
    w.emu.inject_fault("/adobe/stats", status_fault(401, None), 1);
    w.emu.inject_fault("/ims", status_fault(503, None), 3);
    assert_eq!(status(&call(&a, stored(w.oauth()))), 502);
    assert!(w.emu.state_entries(NS).is_empty());
    assert_eq!(status(&call(&a, stored(w.oauth()))), 200);
    assert_eq!(w.emu.tokens_issued(&client(&w)), 2);
    assert_eq!(w.emu.state_entries(NS).len(), 1);
}

/// A State endpoint written here: every PUT acknowledged (200), every GET 404, as a store that
/// loses what it is given. Counts requests.
fn forgetful_state() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::sync::atomic::Ordering;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = std::sync::Arc::clone(&count);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let seen = std::sync::Arc::clone(&seen);
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut out = stream;
                loop {
                    let mut head = String::new();
                    let mut length = 0usize;
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                            length = v.trim().parse().unwrap_or(0);
                        }
                        if line == "\r\n" {
                            break;
                        }
                        head.push_str(&line);
                    }
                    let mut body = vec![0u8; length];
                    if reader.read_exact(&mut body).is_err() {
                        return;
                    }
                    seen.fetch_add(1, Ordering::SeqCst);
                    let answer: &[u8] = if head.starts_with("PUT ") {
                        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}"
                    } else {
                        b"HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}"
                    };
                    if out.write_all(answer).is_err() {
                        return;
                    }
                }
            });
        }
    });
    (url, count)
}

/// A State that acknowledges writes but never returns them is a failing store: the claim that
/// does not read back ends the look (get entry, get lock, put lock, get lock), not a wait of
/// about 45 polls for a fetch nobody makes; then the cool-off, and after it State is asked
/// again (the clock held by the test).
#[test]
fn a_state_whose_writes_do_not_read_back_fails_at_once_then_cools_off() {
    use std::sync::atomic::Ordering;
    let w = world();
    let (endpoint, requests) = forgetful_state();
    let clock = ims_action::time::Clock::held(now_ms());
    let a = Action::new(AllowList::parse(&w.emu.host_port()), TokenCache::in_memory())
        .with_shared_stores(
            SharedStores::from_env()
                .with_state_endpoint(&endpoint)
                .with_allowance(Duration::from_secs(1)),
        )
        .with_clock(clock.clone());
    let activation = || Activation {
        deadline_ms: Some(clock.now_ms() + 30_000),
        ..activation(0)
    };
    assert_eq!(status(&a.handle(stored(w.oauth()), &activation())), 200);
    assert_eq!(requests.load(Ordering::SeqCst), 4);
    assert_eq!(a.shared_stores().stats().failures, 1);
    assert_eq!(w.emu.tokens_issued(&client(&w)), 1);
    // Cooling off: another credential does not ask State.
    assert_eq!(status(&a.handle(stored(w.jwt()), &activation())), 200);
    assert_eq!(requests.load(Ordering::SeqCst), 4);
    // After the cool-off, State is asked again (and fails again the same way).
    clock.advance(Duration::from_secs(31));
    let with_scope = with(
        w.oauth(),
        json!({ "OAUTHS2S_CECREDENTIALS_METASCOPES": w.env["OAUTHS2S_CECREDENTIALS_METASCOPES"].split(',').next().unwrap() }),
    );
    assert_eq!(status(&a.handle(stored(with_scope), &activation())), 200);
    assert_eq!(requests.load(Ordering::SeqCst), 8);
}

/// A 500 from State is retried within the store's allowance, as `aio-lib-state` retries 5xx:
/// the store is used, not benched.
#[test]
fn a_5xx_from_state_is_retried_within_the_allowance() {
    let w = world();
    w.emu.inject_fault("/containers", status_fault(500, None), 1);
    let a = container(&w);
    assert_eq!(status(&call(&a, stored(w.oauth()))), 200);
    let stats = a.shared_stores().stats();
    assert_eq!(stats.failures, 0, "{stats:?}");
    assert_eq!(w.emu.state_entries(NS).len(), 1, "the token stored");
    // Another container finds it.
    let b = container(&w);
    assert_eq!(status(&call(&b, stored(w.oauth()))), 200);
    assert_eq!(b.shared_stores().stats().hits, 1);
    assert_eq!(w.emu.tokens_issued(&client(&w)), 1);
}
