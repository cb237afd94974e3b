//! OAuth server-to-server → AEM Data Service, end to end against the emulator.

mod common;

use std::time::Duration;

use adobe_emulator::Fault;
use common::*;
use ims_action::access_token::payload_expiry_ms;
use ims_action::time::Clock;
use serde_json::{Value, json};

const QUOTA: &str = "/adobe/stats/statistics/contentRequestsQuota";

#[test]
fn a_good_credential_gets_the_quota() {
    let w = World::new();
    let r = w.call(&w.action(), w.oauth());
    assert_eq!(status(&r), 200, "{r}");
    assert_eq!(r["headers"]["content-type"], "application/json");
    assert_eq!(r["body"]["filters"]["imsOrgId"], w.env["IMS_ORG_ID"].as_str());
    assert!(r["body"]["data"]["contentRequestsQuota"].is_object(), "{r}");
    assert_eq!(w.emu.tokens_issued(&w.env["OAUTHS2S_CLIENT_ID"]), 1);
}

#[test]
fn the_success_body_is_the_apis_json_untouched() {
    let w = World::new();
    let r = w.call(&w.action(), w.oauth());
    assert_eq!(status(&r), 200, "{r}");
    assert_eq!(r.as_object().unwrap().len(), 3, "{r}");
    assert_eq!(
        r["body"]["filters"],
        json!({"imsOrgId": w.env["IMS_ORG_ID"], "current": true})
    );
    let quota = &r["body"]["data"]["contentRequestsQuota"];
    assert_eq!(quota["limit"], 50_000_000);
    assert_eq!(quota["unit"], "contentRequests");
    assert_eq!(quota["product"], "AEM Sites");
    assert!(r.get("error").is_none());
}

#[test]
fn ims_receives_exactly_the_documented_form() {
    let w = World::new();
    let secret = w.env["OAUTHS2S_CLIENT_SECRET"].clone();
    let r = w.call(
        &w.action(),
        with(
            w.oauth(),
            json!({"OAUTHS2S_CECREDENTIALS_METASCOPES": " AdobeID , openid,read_organizations "}),
        ),
    );
    assert_eq!(status(&r), 200, "{r}");
    let reqs = w.emu.requests("/ims/token/v3");
    assert_eq!(reqs.len(), 1);
    let req = &reqs[0];
    assert_eq!(req.method, "POST");
    assert_eq!(
        req.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    let form = req.form();
    let names: Vec<&str> = form.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(names, ["grant_type", "client_id", "client_secret", "scope"]);
    assert_eq!(form[0].1, "client_credentials");
    assert_eq!(form[2].1, secret);
    assert_eq!(form[3].1, "AdobeID,openid,read_organizations");
    // Every field is percent-encoded: the comma travels as %2C.
    let raw = String::from_utf8_lossy(&req.body);
    assert!(
        raw.contains("scope=AdobeID%2Copenid%2Cread_organizations"),
        "{raw}"
    );
}

#[test]
fn the_quota_api_receives_exactly_the_documented_request() {
    let w = World::new();
    let r = w.call(&w.action(), w.oauth());
    assert_eq!(status(&r), 200, "{r}");
    let reqs = w.emu.requests(QUOTA);
    assert_eq!(reqs.len(), 1);
    let req = &reqs[0];
    let org = w.env["IMS_ORG_ID"].as_str();
    assert_eq!(req.method, "GET");
    let auth = req.header("authorization").unwrap();
    let token = auth.strip_prefix("Bearer ").expect("a Bearer authorization");
    assert_eq!(
        token.split('.').count(),
        3,
        "an IMS access token (a JWT): {token}"
    );
    assert_eq!(
        req.header("x-api-key"),
        Some(w.env["OAUTHS2S_CLIENT_ID"].as_str())
    );
    assert_eq!(req.header("x-gw-ims-org-id"), Some(org));
    assert_eq!(req.header("x-adobe-accept-experimental"), Some("1"));
    assert_eq!(req.query_param("imsOrgId").as_deref(), Some(org));
    assert_eq!(req.query_param("current").as_deref(), Some("true"));
    assert_eq!(req.query, "imsOrgId=DEMO0000000000000000%40AdobeOrg&current=true");
    assert!(req.body.is_empty());
}

#[test]
fn a_second_call_reuses_the_cached_token() {
    let w = World::new();
    let action = w.action();
    for _ in 0..3 {
        assert_eq!(status(&w.call(&action, w.oauth())), 200);
    }
    assert_eq!(w.emu.tokens_issued(&w.env["OAUTHS2S_CLIENT_ID"]), 1);
    assert_eq!(w.emu.request_count(QUOTA), 3);
    let tokens: Vec<String> = w
        .emu
        .requests(QUOTA)
        .iter()
        .map(|r| r.header("authorization").unwrap().to_string())
        .collect();
    assert!(tokens.iter().all(|t| *t == tokens[0]));
}

// ---- missing inputs ------------------------------------------------------------------------

#[test]
fn missing_inputs_are_named_together_in_one_400() {
    let w = World::new();
    let r = w.call(
        &w.action(),
        without(w.oauth(), &["OAUTHS2S_CLIENT_ID", "IMS_ORG_ID"]),
    );
    assert_eq!(status(&r), 400, "{r}");
    assert_eq!(
        message(&r),
        "missing parameter(s) 'OAUTHS2S_CLIENT_ID,IMS_ORG_ID': aem-quota needs IMS_ORG_ID \
         (JWT and AEM credentials carry their own org)"
    );

    let r = w.call(
        &w.action(),
        without(
            w.oauth(),
            &["OAUTHS2S_CLIENT_SECRET", "OAUTHS2S_CECREDENTIALS_METASCOPES"],
        ),
    );
    assert_eq!(status(&r), 400, "{r}");
    assert_eq!(
        message(&r),
        // The operation's own inputs are fine, so no word on what it needs.
        "missing parameter(s) 'OAUTHS2S_CLIENT_SECRET,OAUTHS2S_CECREDENTIALS_METASCOPES'"
    );

    let r = w.call(&w.action(), without(w.oauth(), &["IMS_ORG_ID"]));
    assert_eq!(status(&r), 400, "{r}");
    assert!(
        message(&r).starts_with("missing parameter(s) 'IMS_ORG_ID'"),
        "{r}"
    );

    // Nothing was sent anywhere.
    assert_eq!(w.emu.request_count("/"), 0);
}

#[test]
fn empty_and_null_inputs_count_as_missing() {
    let w = World::new();
    let r = w.call(
        &w.action(),
        with(
            w.oauth(),
            json!({"OAUTHS2S_CLIENT_ID": "  ", "OAUTHS2S_CLIENT_SECRET": null}),
        ),
    );
    assert_eq!(status(&r), 400, "{r}");
    assert!(
        message(&r).starts_with("missing parameter(s) 'OAUTHS2S_CLIENT_ID,OAUTHS2S_CLIENT_SECRET'"),
        "{r}"
    );
}

#[test]
fn nothing_given_names_every_oauth_input_and_every_method() {
    let w = World::new();
    let r = w.call(&w.action(), w.params(&[]));
    assert_eq!(status(&r), 400, "{r}");
    let m = message(&r);
    assert!(
        m.starts_with(
            "missing parameter(s) \
             'OAUTHS2S_CLIENT_ID,OAUTHS2S_CLIENT_SECRET,OAUTHS2S_CECREDENTIALS_METASCOPES,IMS_ORG_ID'"
        ),
        "{m}"
    );
    for method in ["oauth-s2s", "jwt", "aem-service-credentials", "dev-token"] {
        assert!(m.contains(method), "{method} missing from: {m}");
    }
    for input in JWT
        .iter()
        .chain(&["AEM_SERVICE_CREDENTIALS", "AEM_DEV_TOKEN", "__ims_oauth_s2s"])
    {
        assert!(m.contains(input), "{input} missing from: {m}");
    }
    assert_eq!(w.emu.request_count("/"), 0);
}

// ---- wrong types ---------------------------------------------------------------------------

#[test]
fn wrong_types_are_a_400_naming_the_input() {
    let w = World::new();
    let action = w.action();
    for name in OAUTH {
        for (value, kind) in [
            (json!(42), "a number"),
            (json!({"a": 1}), "an object"),
            (json!(["x"]), "an array"),
            (json!(true), "a boolean"),
        ] {
            let r = w.call(&action, with(w.oauth(), json!({ name: value })));
            assert_eq!(status(&r), 400, "{name} as {kind}: {r}");
            assert_eq!(
                message(&r),
                format!("invalid parameter '{name}': must be a string, not {kind}"),
                "{name} as {kind}"
            );
        }
    }
    assert_eq!(w.emu.request_count("/"), 0);
}

#[test]
fn control_characters_in_an_id_are_refused() {
    let w = World::new();
    let r = w.call(
        &w.action(),
        with(w.oauth(), json!({"IMS_ORG_ID": "ORG@AdobeOrg\r\nX-Injected: 1"})),
    );
    assert_eq!(status(&r), 400, "{r}");
    assert_eq!(
        message(&r),
        "invalid parameter 'IMS_ORG_ID': must not contain spaces, line breaks or control characters"
    );
    assert_eq!(w.emu.request_count("/"), 0);
}

// ---- App Builder's __ims_oauth_s2s --------------------------------------------------------

fn injected(w: &World) -> Value {
    json!({
        "client_id": w.env["OAUTHS2S_CLIENT_ID"],
        "client_secret": w.env["OAUTHS2S_CLIENT_SECRET"],
        "org_id": w.env["IMS_ORG_ID"],
        "scopes": ["openid", "AdobeID", "read_organizations"],
    })
}

#[test]
fn the_injected_object_works_as_an_object() {
    let w = World::new();
    let r = w.call(
        &w.action(),
        with(w.params(&[]), json!({ "__ims_oauth_s2s": injected(&w) })),
    );
    assert_eq!(status(&r), 200, "{r}");
    assert_eq!(r["body"]["filters"]["imsOrgId"], w.env["IMS_ORG_ID"].as_str());
    let form = w.emu.requests("/ims/token/v3")[0].form();
    assert_eq!(form[1], ("client_id".into(), w.env["OAUTHS2S_CLIENT_ID"].clone()));
    assert_eq!(
        form[3],
        ("scope".into(), "openid,AdobeID,read_organizations".into())
    );
}

#[test]
fn the_injected_object_works_as_a_json_string_with_camel_case_keys() {
    let w = World::new();
    let camel = json!({
        "clientId": w.env["OAUTHS2S_CLIENT_ID"],
        "clientSecret": w.env["OAUTHS2S_CLIENT_SECRET"],
        "orgId": w.env["IMS_ORG_ID"],
        "scopes": ["openid", "AdobeID"],
    });
    for v in [injected(&w).to_string(), camel.to_string()] {
        let r = w.call(&w.action(), with(w.params(&[]), json!({ "__ims_oauth_s2s": v })));
        assert_eq!(status(&r), 200, "{r}");
    }
    assert_eq!(w.emu.tokens_issued(&w.env["OAUTHS2S_CLIENT_ID"]), 2);
}

#[test]
fn a_broken_injected_object_is_named() {
    let w = World::new();
    let mut partial = injected(&w);
    partial.as_object_mut().unwrap().remove("client_secret");
    let r = w.call(
        &w.action(),
        with(w.params(&[]), json!({ "__ims_oauth_s2s": partial })),
    );
    assert_eq!(status(&r), 400, "{r}");
    assert!(
        message(&r).starts_with("missing parameter(s) '__ims_oauth_s2s.client_secret'"),
        "{r}"
    );
    let r = w.call(
        &w.action(),
        with(w.params(&[]), json!({ "__ims_oauth_s2s": "{nope" })),
    );
    assert_eq!(status(&r), 400, "{r}");
    assert!(message(&r).contains("'__ims_oauth_s2s'"), "{r}");
    assert_eq!(w.emu.request_count("/"), 0);
}

// ---- IMS failures --------------------------------------------------------------------------

#[test]
fn a_wrong_secret_is_a_502_quoting_ims_without_the_secret() {
    let w = World::new();
    let wrong = "p8e-this-is-not-the-secret-0123456789";
    let r = w.call(
        &w.action(),
        with(w.oauth(), json!({"OAUTHS2S_CLIENT_SECRET": wrong})),
    );
    assert_eq!(status(&r), 502, "{r}");
    let m = message(&r);
    assert_eq!(
        m,
        "IMS refused the credentials (HTTP 401): invalid_client: invalid client_secret parameter"
    );
    let text = r.to_string();
    assert!(!text.contains(wrong), "{text}");
    assert!(!text.contains(&w.env["OAUTHS2S_CLIENT_SECRET"]), "{text}");
    // Not even scrubbed: the message never held it.
    assert!(!text.contains("****"), "{text}");
    assert_eq!(w.emu.request_count(QUOTA), 0);
}

#[test]
fn an_unknown_client_id_quotes_ims() {
    let w = World::new();
    let r = w.call(
        &w.action(),
        with(w.oauth(), json!({"OAUTHS2S_CLIENT_ID": "nobody"})),
    );
    assert_eq!(status(&r), 502, "{r}");
    assert_eq!(
        message(&r),
        "IMS refused the credentials (HTTP 400): invalid_client: invalid client_id parameter"
    );
}

#[test]
fn a_scope_the_client_may_not_have_quotes_ims() {
    let w = World::new();
    let r = w.call(
        &w.action(),
        with(
            w.oauth(),
            json!({"OAUTHS2S_CECREDENTIALS_METASCOPES": "openid,not_mine"}),
        ),
    );
    assert_eq!(status(&r), 502, "{r}");
    let m = message(&r);
    assert!(m.contains("invalid_scope") && m.contains("not_mine"), "{m}");
}

#[test]
fn malformed_json_from_ims_is_a_502_naming_ims() {
    let w = World::new();
    w.emu.inject_fault("/ims/token/v3", Fault::Malformed, 1);
    let r = w.call(&w.action(), w.oauth());
    assert_eq!(status(&r), 502, "{r}");
    let m = message(&r);
    assert!(m.starts_with("IMS answered HTTP 200"), "{m}");
    assert!(m.contains("not JSON"), "{m}");
    assert_eq!(w.emu.request_count(QUOTA), 0);
    // Nothing was cached: the next call gets a real token.
    let action = w.action();
    assert_eq!(status(&w.call(&action, w.oauth())), 200);
}

#[test]
fn an_html_error_page_from_ims_is_a_502_naming_ims() {
    let w = World::new();
    let action = w.action();
    w.emu.inject_fault("/ims/token/v3", Fault::Html, 3);
    let r = w.call(&action, w.oauth());
    assert_eq!(status(&r), 502, "{r}");
    let m = message(&r);
    assert!(m.starts_with("IMS answered HTTP 502"), "{m}");
    assert!(!m.contains("<html"), "{m}");
    assert_eq!(w.emu.request_count(QUOTA), 0);
    // A failed fetch leaves nothing cached.
    assert_eq!(status(&w.call(&action, w.oauth())), 200);
    assert_eq!(w.emu.tokens_issued(&w.env["OAUTHS2S_CLIENT_ID"]), 1);
}

// ---- API failures --------------------------------------------------------------------------

#[test]
fn another_orgs_id_is_a_403_from_the_api() {
    let w = World::new();
    let r = w.call(
        &w.action(),
        with(w.oauth(), json!({"IMS_ORG_ID": "OTHER0000@AdobeOrg"})),
    );
    assert_eq!(status(&r), 403, "{r}");
    let m = message(&r);
    assert!(m.starts_with("AEM Data Service answered HTTP 403: 403027"), "{m}");
}

#[test]
fn an_api_key_refusal_is_passed_through_as_403() {
    let w = World::new();
    w.emu.inject_fault(
        QUOTA,
        Fault::Status {
            status: 403,
            retry_after: None,
            body: Some(r#"{"error_code":"403003","message":"Api Key is invalid"}"#.into()),
        },
        1,
    );
    let r = w.call(&w.action(), w.oauth());
    assert_eq!(status(&r), 403, "{r}");
    assert_eq!(
        message(&r),
        "AEM Data Service answered HTTP 403: 403003: Api Key is invalid"
    );
}

#[test]
fn an_api_500_is_a_502_naming_the_service_and_its_status() {
    let w = World::new();
    w.emu.inject_fault(
        QUOTA,
        Fault::Status {
            status: 500,
            retry_after: None,
            body: None,
        },
        3,
    );
    let r = w.call(&w.action(), w.oauth());
    assert_eq!(status(&r), 502, "{r}");
    let m = message(&r);
    assert!(m.starts_with("AEM Data Service answered HTTP 500"), "{m}");
}

#[test]
fn an_api_404_is_passed_through() {
    let w = World::new();
    let base = format!("{}/no-such-prefix", w.emu.base_url());
    let r = w.call(
        &w.action(),
        with(w.oauth(), json!({"AEM_DATA_SERVICE_BASE_URL": base})),
    );
    assert_eq!(status(&r), 404, "{r}");
    assert_eq!(message(&r), "AEM Data Service answered HTTP 404: not found");
    assert_eq!(w.emu.request_count("/no-such-prefix/adobe/stats"), 1);
}

#[test]
fn a_token_the_api_refuses_is_replaced_once() {
    let w = World::new();
    let action = w.action();
    assert_eq!(status(&w.call(&action, w.oauth())), 200);
    // The emulator's clock passes the token's expiry; the action's own clock does not move, so
    // it still sends the cached token, gets a 401, and must fetch a new one.
    w.emu.advance_clock(Duration::from_secs(25 * 3600));
    let r = w.call(&action, w.oauth());
    assert_eq!(status(&r), 200, "{r}");
    assert_eq!(w.emu.tokens_issued(&w.env["OAUTHS2S_CLIENT_ID"]), 2);
    assert_eq!(w.emu.request_count(QUOTA), 3);
}

// ---- expiry: /ims/token/v3 says seconds ---------------------------------------------------

#[test]
fn oauth_expires_in_is_read_as_seconds() {
    let w = World::new();
    // 30 minutes: the response says `"expires_in": 1800`; the payload says 24 h.
    w.emu
        .set_token_lifetime(Duration::from_secs(30 * 60), Duration::from_secs(24 * 3600));
    let action = w.action();
    let token = action
        .access_token(w.oauth(), &ims_action::Activation::default())
        .unwrap();
    // Read as milliseconds it would be 1.8 s; read as seconds, exactly 30 min.
    assert_eq!(token.expires_at_ms - token.obtained_at_ms, 30 * 60 * 1000);
    // Refresh 10 minutes before expiry (half-life would be later): at 20 minutes.
    assert_eq!(token.refresh_at_ms(), token.obtained_at_ms + 20 * 60 * 1000);
    assert!(token.is_fresh(token.obtained_at_ms + 20 * 60 * 1000 - 1));
    assert!(!token.is_fresh(token.obtained_at_ms + 20 * 60 * 1000));
    // The token is used, not fetched again, while fresh.
    assert_eq!(status(&w.call(&action, w.oauth())), 200);
    assert_eq!(w.emu.tokens_issued(&w.env["OAUTHS2S_CLIENT_ID"]), 1);
}

#[test]
fn oauth_the_earlier_of_expires_in_and_the_payload_wins() {
    let w = World::new();
    let action = w.action().with_clock(Clock::held(w.emu.now_ms()));
    let activation = ims_action::Activation::default();
    // The payload says 20 minutes, the response an hour.
    w.emu
        .set_token_lifetime(Duration::from_secs(3600), Duration::from_secs(20 * 60));
    let t = action.access_token(w.oauth(), &activation).unwrap();
    // The action's clock is held at the emulator's time when the test began; IMS stamped the
    // payload a few ms later, so its expiry is exactly what the action took.
    let from_payload = payload_expiry_ms(t.token.expose()).unwrap();
    assert_eq!(t.expires_at_ms, from_payload);
    let life = t.expires_at_ms - t.obtained_at_ms;
    assert!((20 * 60 * 1000..60 * 60 * 1000).contains(&life), "{life} ms");

    // The response says 20 minutes, the payload an hour (a new secret-free credential key:
    // another scope set, so the cache does not answer).
    w.emu
        .set_token_lifetime(Duration::from_secs(20 * 60), Duration::from_secs(3600));
    let params = with(w.oauth(), json!({"OAUTHS2S_CECREDENTIALS_METASCOPES": "openid"}));
    let t = action.access_token(params, &activation).unwrap();
    assert_eq!(t.expires_at_ms - t.obtained_at_ms, 20 * 60 * 1000);
    assert_eq!(w.emu.tokens_issued(&w.env["OAUTHS2S_CLIENT_ID"]), 2);
}
