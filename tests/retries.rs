//! Throttling-aware retries (docs/retries.md), end to end against the emulator: a 429 without
//! `Retry-After` is retried a second later at the earliest, and only when the deadline allows;
//! otherwise it comes back at once with a `Retry-After` the caller can use. A server error is
//! retried on a GET, never on a POST.
//!
//! Waits are measured at the emulator (the times it received each request) when they must be
//! real, and on a held clock (a wait moves it instead of passing) everywhere else.

mod common;

use std::time::Duration;

use adobe_emulator::Fault;
use common::*;
use ims_action::credentials::ims::{ExpiresIn, request_token};
use ims_action::error::Service;
use ims_action::http::{Budget, DEFAULT_REQUEST_TIMEOUT, HttpClient, Method, Request};
use ims_action::retry::BACKOFF_BASE;
use ims_action::time::Clock;
use ims_action::{Action, Activation};
use serde_json::{Value, json};

const QUOTA: &str = "/adobe/stats";

/// Analytics' answer to a user over its 12 calls per 6 s: no `Retry-After`.
fn throttled() -> Fault {
    Fault::Status {
        status: 429,
        retry_after: None,
        body: Some(r#"{"error_code":"429050","message":"Too many requests"}"#.into()),
    }
}

fn server_error(status: u16) -> Fault {
    Fault::Status {
        status,
        retry_after: None,
        body: None,
    }
}

fn reports_path(w: &World) -> String {
    format!("/api/{}/reports", w.env["ANALYTICS_COMPANY_ID"])
}

/// The OAuth credential and the default Analytics report.
fn report(w: &World) -> Value {
    with(
        w.oauth(),
        json!({
            "OPERATION": "analytics-report",
            "ANALYTICS_COMPANY_ID": w.env["ANALYTICS_COMPANY_ID"],
            "ANALYTICS_RSID": w.env["ANALYTICS_RSID"],
        }),
    )
}

fn aem_get(w: &World) -> Value {
    with(w.oauth(), json!({"OPERATION": "aem-get"}))
}

/// A clock held at the emulator's time, and the world's action on it.
fn held(w: &World) -> (Action, Clock) {
    let clock = Clock::held(w.emu.now_ms());
    (w.action().with_clock(clock.clone()), clock)
}

/// Runs one activation whose deadline is `ms` from now on `clock`; returns the result and how
/// far the clock moved meanwhile (on a held clock: the time spent waiting before retries).
fn call_within(a: &Action, clock: &Clock, params: Value, ms: u64) -> (Value, u64) {
    let start = clock.now_ms();
    let activation = Activation {
        deadline_ms: Some(start + ms),
        activation_id: Some("retries".into()),
        ..Default::default()
    };
    let r = a.handle(params, &activation);
    (r, clock.now_ms() - start)
}

/// The `Retry-After` the caller got, as whole seconds.
fn retry_after_secs(r: &Value) -> u64 {
    r["error"]["headers"]["retry-after"]
        .as_str()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no Retry-After in seconds: {r}"))
}

#[test]
fn a_429_without_retry_after_is_retried_a_second_later_at_the_earliest() {
    // Real time: the wait is measured where it matters, between the requests Analytics receives.
    let w = World::new();
    let a = w.action();
    let path = reports_path(&w);
    w.emu.inject_fault(&path, throttled(), 1);
    let (r, _) = call_within(&a, &Clock::system(), report(&w), 30_000);
    assert_eq!(status(&r), 200, "{r}");
    let requests = w.emu.requests(&path);
    assert_eq!(requests.len(), 2, "one retry");
    let gap = requests[1].received - requests[0].received;
    assert!(
        gap >= Duration::from_secs(1),
        "retried {} ms after the 429: inside Analytics' window",
        gap.as_millis()
    );
    assert!(gap < Duration::from_secs(5), "waited {} ms", gap.as_millis());
}

#[test]
fn a_429_without_retry_after_waits_one_to_two_seconds_on_every_api() {
    for (params, path) in [
        (report as fn(&World) -> Value, "/api/"),
        (World::oauth, QUOTA),
        (aem_get, "/content/"),
    ] {
        let w = World::new();
        let (a, clock) = held(&w);
        w.emu.inject_fault(path, throttled(), 1);
        let (r, waited) = call_within(&a, &clock, params(&w), 30_000);
        assert_eq!(status(&r), 200, "{path}: {r}");
        assert_eq!(w.emu.request_count(path), 2, "{path}");
        assert!((1_000..=2_000).contains(&waited), "{path}: waited {waited} ms");
    }
}

#[test]
fn a_429_whose_retry_would_pass_the_deadline_comes_back_at_once_with_a_retry_after() {
    // 2 s before the deadline is 1 s before the action must answer: a wait of at least 1 s and
    // one more request do not fit.
    for (params, path) in [
        (report as fn(&World) -> Value, "/api/"),
        (World::oauth, QUOTA),
        (aem_get, "/content/"),
    ] {
        let w = World::new();
        let (a, clock) = held(&w);
        assert_eq!(status(&w.call(&a, params(&w))), 200, "{path}");
        w.emu.inject_fault(path, throttled(), 1);
        let (r, waited) = call_within(&a, &clock, params(&w), 2_000);
        assert_eq!(status(&r), 429, "{path}: {r}");
        assert!(message(&r).contains("HTTP 429"), "{r}");
        assert_eq!(waited, 0, "{path}: the 429 came back only after waiting");
        assert_eq!(w.emu.request_count(path), 2, "{path}: retried");
        // The wait the action would have made, in whole seconds.
        assert!((1..=2).contains(&retry_after_secs(&r)), "{path}: {r}");
    }

    // IMS had the same flaw: its 429 without Retry-After is handled the same way.
    let w = World::new();
    let (a, clock) = held(&w);
    w.emu.inject_fault("/ims", throttled(), 1);
    let (r, waited) = call_within(&a, &clock, w.oauth(), 2_000);
    assert_eq!(status(&r), 429, "{r}");
    assert!(message(&r).contains("IMS"), "{r}");
    assert_eq!(waited, 0);
    assert_eq!(w.emu.request_count("/ims"), 1);
    assert!((1..=2).contains(&retry_after_secs(&r)), "{r}");
}

#[test]
fn a_429_throttled_on_every_attempt_tells_the_caller_how_long_to_wait() {
    let w = World::new();
    let (a, clock) = held(&w);
    w.emu.inject_fault(QUOTA, throttled(), 3);
    let (r, waited) = call_within(&a, &clock, w.oauth(), 30_000);
    assert_eq!(status(&r), 429, "{r}");
    assert_eq!(w.emu.request_count(QUOTA), 3);
    // 1–2 s, then 2–4 s.
    assert!((3_000..=6_000).contains(&waited), "waited {waited} ms");
    // The next wait would have been 4–8 s.
    assert!((4..=8).contains(&retry_after_secs(&r)), "{r}");
}

#[test]
fn a_server_error_on_a_get_is_retried_within_the_deadline() {
    for (params, path) in [
        (World::oauth as fn(&World) -> Value, QUOTA),
        (aem_get, "/content/"),
    ] {
        for status_code in [500, 503] {
            let w = World::new();
            let (a, clock) = held(&w);
            w.emu.inject_fault(path, server_error(status_code), 1);
            let (r, waited) = call_within(&a, &clock, params(&w), 30_000);
            assert_eq!(status(&r), 200, "{path} {status_code}: {r}");
            assert_eq!(w.emu.request_count(path), 2, "{path} {status_code}");
            assert!(waited <= BACKOFF_BASE.as_millis() as u64, "waited {waited} ms");
        }
    }
}

#[test]
fn a_server_error_on_an_analytics_get_is_retried() {
    // The report is Analytics' only call the action makes today, and a POST: a GET (discovery)
    // is sent through the same client, as the API modules do.
    let w = World::new();
    let clock = Clock::held(w.emu.now_ms());
    let activation = Activation {
        deadline_ms: Some(clock.now_ms() + 30_000),
        ..Default::default()
    };
    let budget = Budget::new(&activation, DEFAULT_REQUEST_TIMEOUT, &clock);
    let http = HttpClient::new();
    let client_id = w.env["OAUTHS2S_CLIENT_ID"].clone();
    let form = form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", "client_credentials")
        .append_pair("client_id", &client_id)
        .append_pair("client_secret", &w.env["OAUTHS2S_CLIENT_SECRET"])
        .append_pair("scope", &w.env["OAUTHS2S_CECREDENTIALS_METASCOPES"])
        .finish();
    let url = format!("{}/ims/token/v3", w.env["IMS_BASE_URL"]);
    let token = request_token(&http, &budget, url, form, "token", ExpiresIn::Seconds).unwrap();
    let discovery = Request {
        service: Service::Analytics,
        method: Method::Get,
        url: format!("{}/discovery/me", w.env["ANALYTICS_BASE_URL"]),
        headers: vec![
            ("authorization".into(), format!("Bearer {}", token.token.expose())),
            ("x-api-key".into(), client_id),
        ],
        body: None,
        retryable: Method::Get.is_idempotent(),
        max_body: None,
        what: "discovery",
    };
    w.emu.inject_fault("/discovery", server_error(500), 1);
    let resp = http.send(&discovery, &budget).unwrap();
    assert_eq!(resp.status, 200, "{}", String::from_utf8_lossy(&resp.body));
    let requests = w.emu.requests("/discovery");
    assert_eq!(requests.len(), 2);
    assert!(requests.iter().all(|r| r.method == "GET"));
}

#[test]
fn a_post_is_never_retried_after_a_server_error() {
    let w = World::new();
    let (a, clock) = held(&w);
    let path = reports_path(&w);
    assert_eq!(status(&w.call(&a, report(&w))), 200);
    for (fault, says) in [
        (server_error(500), "Analytics answered HTTP 500"),
        (server_error(503), "Analytics answered HTTP 503"),
        (Fault::Html, "Analytics answered HTTP 502"),
        (Fault::Drop, "Analytics could not be reached"),
    ] {
        // One fault only: a retry would get a 200 and the test would see it.
        w.emu.inject_fault(&path, fault, 1);
        let before = w.emu.request_count(&path);
        let (r, waited) = call_within(&a, &clock, report(&w), 30_000);
        assert_eq!(status(&r), 502, "{says}: {r}");
        assert!(message(&r).contains(says), "{r}");
        assert_eq!(w.emu.request_count(&path) - before, 1, "{says}: retried");
        assert_eq!(waited, 0);
    }
}
