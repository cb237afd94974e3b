//! The token cache, end to end in-process: one token per credential for its whole life, a new
//! one when the secret rotates or the API refuses it, nothing cached from a failure, and the
//! earlier of the two expiries (the response's `expires_in`, the token's own payload) wins.

mod common;

use std::time::Duration;

use adobe_emulator::{Fault, OAuthClient};
use common::*;
use ims_action::Activation;
use ims_action::access_token::payload_expiry_ms;
use ims_action::time::Clock;
use serde_json::json;

fn client(w: &World) -> String {
    w.env["OAUTHS2S_CLIENT_ID"].clone()
}

#[test]
fn many_calls_one_token() {
    let w = World::new();
    let a = w.action();
    for i in 0..25 {
        let r = w.call(&a, w.oauth());
        assert_eq!(status(&r), 200, "{i}: {r}");
    }
    // Other operations with the same credential share the token.
    for path in ["/content/dam.json", "/content/dam/demo.json"] {
        let r = w.call(
            &a,
            with(w.oauth(), json!({"OPERATION": "aem-get", "AEM_PATH": path})),
        );
        assert_eq!(status(&r), 200, "{r}");
    }
    assert_eq!(w.emu.tokens_issued(&client(&w)), 1);
    assert_eq!(w.emu.request_count("/ims"), 1);
    assert_eq!(w.emu.request_count("/adobe/stats"), 25);

    // Another action instance (another process) has its own cache.
    let r = w.call(&w.action(), w.oauth());
    assert_eq!(status(&r), 200);
    assert_eq!(w.emu.tokens_issued(&client(&w)), 2);
}

#[test]
fn every_credential_kind_is_fetched_once() {
    let w = World::new();
    let a = w.action();
    for _ in 0..10 {
        let r = w.call(&a, w.jwt());
        assert_eq!(status(&r), 200, "{r}");
        let r = w.call(&a, with(w.aem_credentials(), json!({"OPERATION": "aem-get"})));
        assert_eq!(status(&r), 200, "{r}");
    }
    assert_eq!(w.emu.tokens_issued(&w.demo.jwt.client_id), 1);
    assert_eq!(w.emu.tokens_issued(&w.demo.aem.client_id), 1);
    assert_eq!(w.emu.request_count("/ims/exchange/jwt"), 2);
}

#[test]
fn different_credentials_get_different_tokens() {
    let w = World::new();
    let a = w.action();
    // The same client with a narrower scope list is another credential.
    let narrow = with(
        w.oauth(),
        json!({"OAUTHS2S_CECREDENTIALS_METASCOPES": "openid,AdobeID"}),
    );
    for _ in 0..3 {
        assert_eq!(status(&w.call(&a, w.oauth())), 200);
        assert_eq!(status(&w.call(&a, narrow.clone())), 200);
    }
    assert_eq!(w.emu.tokens_issued(&client(&w)), 2);
}

#[test]
fn a_rotated_secret_gets_a_new_token() {
    let w = World::new();
    let a = w.action();
    for _ in 0..3 {
        assert_eq!(status(&w.call(&a, w.oauth())), 200);
    }
    assert_eq!(w.emu.tokens_issued(&client(&w)), 1);

    // The secret is rotated in the Developer Console: same client id, new secret.
    let new_secret = "p8e-rotated-0123456789abcdef0123".to_string();
    w.emu.add_oauth_client(OAuthClient {
        client_secret: new_secret.clone(),
        ..w.demo.oauth.clone()
    });
    let rotated = with(w.oauth(), json!({"OAUTHS2S_CLIENT_SECRET": new_secret}));
    for i in 0..3 {
        let r = w.call(&a, rotated.clone());
        assert_eq!(status(&r), 200, "{i}: {r}");
    }
    assert_eq!(
        w.emu.tokens_issued(&client(&w)),
        2,
        "one new token for the new secret"
    );
    let form = w.emu.requests("/ims/token/v3")[1].form();
    assert!(form.iter().any(|(k, v)| k == "client_secret" && v == &new_secret));
}

#[test]
fn a_refused_exchange_leaves_nothing_cached() {
    let w = World::new();
    let a = w.action();
    let good_secret = w.demo.oauth.client_secret.clone();
    // IMS does not know this secret yet (say, the rotation has not reached it).
    w.emu.add_oauth_client(OAuthClient {
        client_secret: "p8e-something-else-0000000000000".into(),
        ..w.demo.oauth.clone()
    });
    for _ in 0..2 {
        let r = w.call(&a, w.oauth());
        assert_eq!(status(&r), 502, "{r}");
        assert!(message(&r).contains("invalid_client"), "{r}");
        assert!(!message(&r).contains(good_secret.as_str()), "{r}");
    }
    assert_eq!(w.emu.request_count("/ims"), 2, "a refusal is not cached");
    assert_eq!(w.emu.request_count("/adobe"), 0);
    assert_eq!(w.emu.tokens_issued(&client(&w)), 0);

    // Now IMS accepts it: the very same params fetch a token.
    w.emu.add_oauth_client(w.demo.oauth.clone());
    let r = w.call(&a, w.oauth());
    assert_eq!(status(&r), 200, "{r}");
    assert_eq!(w.emu.request_count("/ims"), 3);
    assert_eq!(w.emu.tokens_issued(&client(&w)), 1);
    assert_eq!(status(&w.call(&a, w.oauth())), 200);
    assert_eq!(w.emu.tokens_issued(&client(&w)), 1);
}

#[test]
fn a_failed_fetch_leaves_nothing_cached() {
    let w = World::new();
    let a = w.action();
    // IMS is down for every attempt of the first call.
    w.emu.inject_fault(
        "/ims",
        Fault::Status {
            status: 503,
            retry_after: None,
            body: None,
        },
        3,
    );
    let r = w.call(&a, w.oauth());
    assert_eq!(status(&r), 502, "{r}");
    assert!(message(&r).contains("IMS"), "{r}");
    assert_eq!(w.emu.request_count("/ims"), 3);
    // Garbage from IMS is not cached either.
    w.emu.inject_fault("/ims", Fault::Malformed, 1);
    let r = w.call(&a, w.oauth());
    assert_eq!(status(&r), 502, "{r}");
    assert_eq!(w.emu.request_count("/ims"), 4);
    assert_eq!(w.emu.tokens_issued(&client(&w)), 0);

    let r = w.call(&a, w.oauth());
    assert_eq!(status(&r), 200, "{r}");
    assert_eq!(w.emu.request_count("/ims"), 5);
    assert_eq!(w.emu.tokens_issued(&client(&w)), 1);
}

#[test]
fn a_token_the_api_refuses_is_refreshed_exactly_once() {
    let w = World::new();
    let a = w.action();
    assert_eq!(status(&w.call(&a, w.oauth())), 200);
    assert_eq!(w.emu.tokens_issued(&client(&w)), 1);

    // The API refuses the (still fresh-looking) token once.
    w.emu.inject_fault(
        "/adobe/stats",
        Fault::Status {
            status: 401,
            retry_after: None,
            body: Some(r#"{"error_code":"401013","message":"Oauth token is not valid"}"#.into()),
        },
        1,
    );
    let r = w.call(&a, w.oauth());
    assert_eq!(status(&r), 200, "{r}");
    assert_eq!(w.emu.tokens_issued(&client(&w)), 2);
    assert_eq!(w.emu.request_count("/adobe/stats"), 3);
    // The new token is kept.
    assert_eq!(status(&w.call(&a, w.oauth())), 200);
    assert_eq!(w.emu.tokens_issued(&client(&w)), 2);

    // An API that refuses every token: one refresh, one retry, then its 401 comes back.
    w.emu.inject_fault(
        "/adobe/stats",
        Fault::Status {
            status: 401,
            retry_after: None,
            body: None,
        },
        10,
    );
    let before = w.emu.request_count("/adobe/stats");
    let r = w.call(&a, w.oauth());
    assert_eq!(status(&r), 401, "{r}");
    assert_eq!(w.emu.tokens_issued(&client(&w)), 3);
    assert_eq!(w.emu.request_count("/adobe/stats") - before, 2);
}

#[test]
fn a_token_expired_upstream_is_replaced() {
    let w = World::new();
    let a = w.action();
    for op in ["aem-quota", "aem-get"] {
        let params = with(w.oauth(), json!({"OPERATION": op}));
        assert_eq!(status(&w.call(&a, params.clone())), 200);
        // A day passes for IMS and the API, not for the action, which still thinks it fresh.
        w.emu.advance_clock(Duration::from_secs(24 * 3600 + 60));
        let r = w.call(&a, params.clone());
        assert_eq!(status(&r), 200, "{op}: {r}");
        assert_eq!(status(&w.call(&a, params)), 200);
    }
    // First op: 1 token, expired, 1 refresh. Second op: its first call reuses the refreshed
    // token, the second (after another day) refreshes once more.
    assert_eq!(w.emu.tokens_issued(&client(&w)), 3);
    // Each API saw: a good call, the refused one and its retry, a good call.
    assert_eq!(w.emu.request_count("/adobe/stats"), 4);
    assert_eq!(w.emu.request_count("/content"), 4);
}

/// The response says 24 h but the token's own payload says 10 minutes (or the other way round):
/// the action must go by the earlier, refreshing at half-life (5 minutes, before the usual 10
/// minutes early) without ever sending a token the API would refuse. The action's clock is held
/// and moved together with the emulator's; the real time a test takes (milliseconds, seconds on
/// a loaded machine) is small beside those minutes.
#[test]
fn the_earlier_expiry_wins() {
    for (http, payload) in [
        (Duration::from_secs(86_400), Duration::from_secs(600)),
        (Duration::from_secs(600), Duration::from_secs(86_400)),
    ] {
        let w = World::new();
        w.emu.set_token_lifetime(http, payload);
        let clock = Clock::held(w.emu.now_ms());
        let a = w.action().with_clock(clock.clone());
        let token = a
            .access_token(w.oauth(), &Activation::default())
            .expect("a token");
        // Held, so the token was obtained exactly at the clock's time; the payload's expiry is
        // on the emulator's clock, which has moved on by the few ms the request took.
        assert_eq!(token.obtained_at_ms, clock.now_ms());
        let from_http = token.obtained_at_ms + http.as_millis() as u64;
        let from_payload = payload_expiry_ms(token.token.expose()).expect("an IMS token carries its expiry");
        assert_eq!(
            token.expires_at_ms,
            from_http.min(from_payload),
            "http {http:?}, payload {payload:?}"
        );
        let lifetime = token.expires_at_ms - token.obtained_at_ms;
        assert!(
            (600_000..86_400_000 / 2).contains(&lifetime),
            "http {http:?}, payload {payload:?}: lifetime {lifetime} ms, not the 10 minutes"
        );
        assert_eq!(token.refresh_at_ms(), token.expires_at_ms - lifetime / 2);
        assert_eq!(w.emu.tokens_issued(&client(&w)), 1);

        assert_eq!(status(&w.call(&a, w.oauth())), 200);
        assert_eq!(w.emu.tokens_issued(&client(&w)), 1, "still fresh");
        // Just before half-life: still fresh. Just after: refreshed before the API (on the
        // emulator's clock, moved alike) would refuse it.
        let to_refresh = Duration::from_millis(token.refresh_at_ms() - clock.now_ms());
        clock.advance(to_refresh - Duration::from_millis(1));
        w.emu.advance_clock(to_refresh - Duration::from_millis(1));
        assert_eq!(status(&w.call(&a, w.oauth())), 200);
        assert_eq!(
            w.emu.tokens_issued(&client(&w)),
            1,
            "fresh until its refresh time"
        );
        clock.advance(Duration::from_millis(1));
        w.emu.advance_clock(Duration::from_millis(1));
        let r = w.call(&a, w.oauth());
        assert_eq!(status(&r), 200, "{r}");
        assert_eq!(
            w.emu.tokens_issued(&client(&w)),
            2,
            "refreshed by the earlier clock"
        );
        // Refreshed before the API refused anything: one API request per call.
        assert_eq!(w.emu.request_count("/adobe/stats"), 3);
    }
}

/// With IMS's real lifetimes (24 h both ways) the token is good for nearly a day and
/// refreshed 10 minutes before it ends.
#[test]
fn a_day_long_token_is_refreshed_ten_minutes_early() {
    let w = World::new();
    // Held at the emulator's time, which moves on while IMS answers: the payload (24 h from
    // then) ends after what the response says (86,399 s from the held time), which wins.
    let token = w
        .action()
        .with_clock(Clock::held(w.emu.now_ms()))
        .access_token(w.oauth(), &Activation::default())
        .expect("a token");
    assert_eq!(token.expires_at_ms - token.obtained_at_ms, 86_399_000);
    assert_eq!(token.expires_at_ms - token.refresh_at_ms(), 10 * 60 * 1000);
}
