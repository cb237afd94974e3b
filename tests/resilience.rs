//! Faults survived within the deadline: transient upstream errors retried, `Retry-After`
//! honoured when it fits and passed back when it does not, unreachable or slow upstreams
//! answered with a clear 502/504 before the platform's deadline, client errors not retried,
//! oversized bodies refused.
//!
//! Waits are tested on a held clock: a wait moves it instead of passing, and the test asserts
//! how far it moved. Deadlines against a slow upstream need real time (the HTTP timeouts are
//! real): those tests assert what the caller gets and how many attempts the emulator saw.

mod common;

use std::net::TcpListener;
use std::time::Duration;

use adobe_emulator::Fault;
use common::*;
use ims_action::endpoint::AllowList;
use ims_action::retry::{BACKOFF_BASE, MAX_ATTEMPTS};
use ims_action::time::Clock;
use ims_action::token::TokenCache;
use ims_action::{Action, Activation};
use serde_json::{Value, json};

fn status_fault(status: u16, retry_after: Option<&str>) -> Fault {
    Fault::Status {
        status,
        retry_after: retry_after.map(str::to_string),
        body: None,
    }
}

/// A clock held at the emulator's time (so that both agree on expiry), and the world's action
/// on it.
fn held(w: &World) -> (Action, Clock) {
    let clock = Clock::held(w.emu.now_ms());
    (w.action().with_clock(clock.clone()), clock)
}

/// The most that backing off between [`MAX_ATTEMPTS`] attempts can wait in all (full jitter:
/// attempt n waits up to `BACKOFF_BASE * 2^(n-1)`).
fn max_backoff_ms() -> u64 {
    (1..MAX_ATTEMPTS)
        .map(|n| BACKOFF_BASE.as_millis() as u64 * (1 << (n - 1)))
        .sum()
}

/// Runs one activation whose deadline is `ms` from now on `clock`; returns the result and how
/// far the clock moved meanwhile (on a held clock: the time spent waiting before retries).
fn call_within(a: &Action, clock: &Clock, params: Value, ms: u64) -> (Value, u64) {
    let start = clock.now_ms();
    let activation = Activation {
        deadline_ms: Some(start + ms),
        activation_id: Some("resilience".into()),
        ..Default::default()
    };
    let r = a.handle(params, &activation);
    (r, clock.now_ms() - start)
}

#[test]
fn ims_503_twice_then_ok() {
    let w = World::new();
    let (a, clock) = held(&w);
    w.emu.inject_fault("/ims/token/v3", status_fault(503, None), 2);
    let (r, waited) = call_within(&a, &clock, w.oauth(), 30_000);
    assert_eq!(status(&r), 200, "{r}");
    assert_eq!(w.emu.request_count("/ims/token/v3"), 3);
    assert_eq!(w.emu.tokens_issued(&w.env["OAUTHS2S_CLIENT_ID"]), 1);
    assert!(waited <= max_backoff_ms(), "backed off {waited} ms");
}

#[test]
fn api_503_and_502_then_ok() {
    let w = World::new();
    let (a, clock) = held(&w);
    w.emu.inject_fault("/adobe/stats", status_fault(503, None), 1);
    w.emu.inject_fault("/adobe/stats", Fault::Html, 1);
    let (r, waited) = call_within(&a, &clock, w.oauth(), 30_000);
    assert_eq!(status(&r), 200, "{r}");
    assert_eq!(w.emu.request_count("/adobe/stats"), 3);
    assert!(waited <= max_backoff_ms(), "backed off {waited} ms");
}

#[test]
fn a_503_that_does_not_go_away_is_a_502_after_three_attempts() {
    let w = World::new();
    let (a, clock) = held(&w);
    w.emu.inject_fault("/adobe/stats", status_fault(503, None), 10);
    let (r, waited) = call_within(&a, &clock, w.oauth(), 30_000);
    assert_eq!(status(&r), 502, "{r}");
    assert!(message(&r).contains("AEM Data Service"), "{r}");
    assert!(message(&r).contains("503"), "{r}");
    assert_eq!(w.emu.request_count("/adobe/stats"), 3);
    // Three attempts cost only the backoff between them, not the time left (30 s).
    assert!(waited <= max_backoff_ms(), "backed off {waited} ms");
}

#[test]
fn a_429_with_a_short_retry_after_is_waited_out() {
    let w = World::new();
    let (a, clock) = held(&w);
    assert_eq!(status(&w.call(&a, w.oauth())), 200);
    w.emu
        .inject_fault("/adobe/stats", status_fault(429, Some("1")), 1);
    let (r, waited) = call_within(&a, &clock, w.oauth(), 30_000);
    assert_eq!(status(&r), 200, "{r}");
    assert!(
        waited >= 1_000,
        "Retry-After: 1 was not honoured (waited {waited} ms)"
    );
    assert_eq!(w.emu.request_count("/adobe/stats"), 3);

    // The same from IMS.
    let w = World::new();
    let (a, clock) = held(&w);
    w.emu.inject_fault("/ims", status_fault(429, Some("1")), 1);
    let (r, waited) = call_within(&a, &clock, w.oauth(), 30_000);
    assert_eq!(status(&r), 200, "{r}");
    assert!(
        waited >= 1_000,
        "Retry-After: 1 was not honoured (waited {waited} ms)"
    );
    assert_eq!(w.emu.request_count("/ims"), 2);
}

#[test]
fn a_429_with_a_retry_after_beyond_the_deadline_comes_back_at_once() {
    let w = World::new();
    let (a, clock) = held(&w);
    assert_eq!(status(&w.call(&a, w.oauth())), 200);
    w.emu
        .inject_fault("/adobe/stats", status_fault(429, Some("120")), 1);
    let (r, waited) = call_within(&a, &clock, w.oauth(), 5_000);
    assert_eq!(status(&r), 429, "{r}");
    assert_eq!(r["error"]["headers"]["retry-after"], "120", "{r}");
    assert!(message(&r).contains("429"), "{r}");
    assert_eq!(waited, 0, "the 429 came back only after waiting");
    assert_eq!(w.emu.request_count("/adobe/stats"), 2, "no retry");

    // From IMS too: the caller learns when to come back.
    let w = World::new();
    let (a, clock) = held(&w);
    w.emu.inject_fault("/ims", status_fault(429, Some("120")), 1);
    let (r, waited) = call_within(&a, &clock, w.oauth(), 5_000);
    assert_eq!(status(&r), 429, "{r}");
    assert_eq!(r["error"]["headers"]["retry-after"], "120", "{r}");
    assert!(message(&r).contains("IMS"), "{r}");
    assert_eq!(waited, 0, "the 429 came back only after waiting");
    assert_eq!(w.emu.request_count("/ims"), 1);
}

#[test]
fn ims_down_is_a_502_naming_ims_well_before_the_deadline() {
    let w = World::new();
    // A port that was just free: nothing listens there.
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let clock = Clock::held(w.emu.now_ms());
    let a = Action::new(
        AllowList::parse(&format!("{},127.0.0.1:{port}", w.emu.host_port())),
        TokenCache::in_memory(),
    )
    .with_clock(clock.clone());
    let params = with(
        w.oauth(),
        json!({"IMS_BASE_URL": format!("http://127.0.0.1:{port}")}),
    );
    let (r, waited) = call_within(&a, &clock, params, 10_000);
    assert_eq!(status(&r), 502, "{r}");
    assert!(message(&r).contains("IMS could not be reached"), "{r}");
    // A refused connection is retried after a backoff, never waited on until the deadline.
    assert!(waited <= max_backoff_ms(), "backed off {waited} ms");
    assert_eq!(w.emu.request_count("/"), 0);
}

#[test]
fn a_delay_longer_than_the_time_left_is_a_504_before_the_deadline() {
    // Real time: the request's timeout, cut to the time left, is what ends the wait.
    let w = World::new();
    let a = w.action();
    w.emu
        .inject_fault("/ims", Fault::Delay(Duration::from_secs(10)), 1);
    let (r, _) = call_within(&a, &Clock::system(), w.oauth(), 2_500);
    assert_eq!(status(&r), 504, "{r}");
    let msg = message(&r);
    assert!(msg.contains("IMS did not answer in time"), "{r}");
    // The one attempt took the time left: none is started without time to finish.
    assert_eq!(w.emu.request_count("/ims"), 1);

    // The same when the API is the slow one.
    let w = World::new();
    let a = w.action();
    assert_eq!(status(&w.call(&a, w.oauth())), 200);
    w.emu
        .inject_fault("/adobe/stats", Fault::Delay(Duration::from_secs(10)), 1);
    let (r, _) = call_within(&a, &Clock::system(), w.oauth(), 2_500);
    assert_eq!(status(&r), 504, "{r}");
    assert!(
        message(&r).contains("AEM Data Service did not answer in time"),
        "{r}"
    );
    assert_eq!(w.emu.request_count("/adobe/stats"), 2);
    assert_eq!(w.emu.request_count("/ims"), 1);
}

#[test]
fn http_timeout_ms_bounds_each_attempt() {
    let w = World::new();
    let (a, clock) = held(&w);
    w.emu
        .inject_fault("/ims", Fault::Delay(Duration::from_secs(2)), 10);
    let params = with(w.oauth(), json!({"HTTP_TIMEOUT_MS": 500}));
    let (r, waited) = call_within(&a, &clock, params, 10_000);
    assert_eq!(status(&r), 504, "{r}");
    assert!(message(&r).contains("500 ms"), "{r}");
    assert_eq!(w.emu.request_count("/ims"), 3, "three attempts of 500 ms");
    assert!(waited <= max_backoff_ms(), "backed off {waited} ms");

    // One slow answer only: the retry gets through.
    let w = World::new();
    let (a, clock) = held(&w);
    w.emu
        .inject_fault("/ims", Fault::Delay(Duration::from_secs(2)), 1);
    let params = with(w.oauth(), json!({"HTTP_TIMEOUT_MS": "500"}));
    let (r, _) = call_within(&a, &clock, params, 10_000);
    assert_eq!(status(&r), 200, "{r}");
    assert_eq!(w.emu.request_count("/ims"), 2);
}

#[test]
fn client_errors_from_the_api_are_not_retried() {
    let w = World::new();
    let (a, clock) = held(&w);
    assert_eq!(status(&w.call(&a, w.oauth())), 200);
    for code in [400u16, 403, 404] {
        // One fault only: a retry would get a 200 and the test would see it.
        w.emu.inject_fault("/adobe/stats", status_fault(code, None), 1);
        let before = w.emu.request_count("/adobe/stats");
        let (r, _) = call_within(&a, &clock, w.oauth(), 30_000);
        assert_eq!(status(&r), u64::from(code), "{r}");
        assert!(message(&r).contains(&format!("HTTP {code}")), "{r}");
        assert_eq!(
            w.emu.request_count("/adobe/stats") - before,
            1,
            "{code} was retried"
        );
    }
    // A real 404 from AEM, not retried either.
    let before = w.emu.request_count("/content");
    let r = w.call(
        &a,
        with(
            w.oauth(),
            json!({"OPERATION": "aem-get", "AEM_PATH": "/content/nothing.json"}),
        ),
    );
    assert_eq!(status(&r), 404, "{r}");
    assert_eq!(w.emu.request_count("/content") - before, 1);
    assert_eq!(w.emu.tokens_issued(&w.env["OAUTHS2S_CLIENT_ID"]), 1);
}

#[test]
fn a_dropped_connection_is_retried() {
    let w = World::new();
    let (a, clock) = held(&w);
    w.emu.inject_fault("/ims", Fault::Drop, 1);
    w.emu.inject_fault("/adobe/stats", Fault::Drop, 1);
    let (r, _) = call_within(&a, &clock, w.oauth(), 30_000);
    assert_eq!(status(&r), 200, "{r}");
    assert_eq!(w.emu.request_count("/ims"), 2);
    assert_eq!(w.emu.request_count("/adobe/stats"), 2);
}

#[test]
fn a_huge_upstream_body_is_a_502_too_large() {
    let w = World::new();
    let (a, clock) = held(&w);
    w.emu.inject_fault("/adobe/stats", Fault::Huge, 1);
    let (r, _) = call_within(&a, &clock, w.oauth(), 30_000);
    assert_eq!(status(&r), 502, "{r}");
    assert!(message(&r).contains("too large"), "{r}");
    assert!(message(&r).contains("AEM Data Service"), "{r}");
    assert_eq!(w.emu.request_count("/adobe/stats"), 1, "not retried");
    // The process is fine and the next call works.
    assert_eq!(status(&w.call(&a, w.oauth())), 200);

    // From IMS too.
    let w = World::new();
    let (a, clock) = held(&w);
    w.emu.inject_fault("/ims", Fault::Huge, 1);
    let (r, _) = call_within(&a, &clock, w.oauth(), 30_000);
    assert_eq!(status(&r), 502, "{r}");
    assert!(message(&r).contains("too large"), "{r}");
    assert_eq!(w.emu.tokens_issued(&w.env["OAUTHS2S_CLIENT_ID"]), 0);
}

#[test]
fn malformed_ims_answers_are_a_502_naming_ims() {
    let w = World::new();
    let (a, clock) = held(&w);
    w.emu.inject_fault("/ims", Fault::Malformed, 1);
    let (r, _) = call_within(&a, &clock, w.oauth(), 30_000);
    assert_eq!(status(&r), 502, "{r}");
    assert!(message(&r).contains("IMS"), "{r}");
    assert_eq!(status(&w.call(&a, w.oauth())), 200);
}
