//! Service Account (JWT) → Analytics 2.0 report, end to end against the emulator: the JWT the
//! action signs, the key shapes it reads, the keys it refuses, and the exchange's expiry unit.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use adobe_emulator::{JwtClient, fixtures, keys};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use common::*;
use ims_action::Activation;
use ims_action::access_token::payload_expiry_ms;
use ims_action::time::Clock;
use ims_action::token::{CacheKey, TokenCache};
use serde_json::{Value, json};

/// JWT credential + the Analytics report operation.
fn report(w: &World) -> Value {
    with(
        w.jwt(),
        json!({
            "OPERATION": "analytics-report",
            "ANALYTICS_COMPANY_ID": w.env["ANALYTICS_COMPANY_ID"],
            "ANALYTICS_RSID": w.env["ANALYTICS_RSID"],
        }),
    )
}

fn reports_path(w: &World) -> String {
    format!("/api/{}/reports", w.env["ANALYTICS_COMPANY_ID"])
}

/// The claims of the last JWT the emulator accepted for the demo JWT client.
fn claims(w: &World) -> serde_json::Map<String, Value> {
    match w.emu.last_jwt_claims(&w.env["JWT_CLIENT_ID"]) {
        Some(Value::Object(m)) => m,
        other => panic!("no JWT claims recorded: {other:?}"),
    }
}

fn metascope_claims(w: &World) -> BTreeSet<String> {
    claims(w).keys().filter(|k| k.contains("/s/")).cloned().collect()
}

fn expected_metascopes(w: &World) -> BTreeSet<String> {
    let base = w.emu.base_url();
    [
        format!("{base}/s/ent_analytics_bulk_ingest_sdk"),
        format!("{base}/s/ent_dataservices_sdk"),
    ]
    .into()
}

#[test]
fn a_good_credential_gets_the_report() {
    let w = World::new();
    let r = w.call(&w.action(), report(&w));
    assert_eq!(status(&r), 200, "{r}");
    assert_eq!(r["body"]["columns"]["dimension"]["id"], "variables/daterangeday");
    assert_eq!(r["body"]["rows"].as_array().unwrap().len(), 7, "{r}");
    assert_eq!(w.emu.tokens_issued(&w.env["JWT_CLIENT_ID"]), 1);
    assert_eq!(w.emu.request_count(&reports_path(&w)), 1);
}

#[test]
fn ims_receives_the_documented_exchange_form() {
    let w = World::new();
    assert_eq!(status(&w.call(&w.action(), report(&w))), 200);
    let reqs = w.emu.requests("/ims/exchange/jwt");
    assert_eq!(reqs.len(), 1);
    let req = &reqs[0];
    assert_eq!(req.method, "POST");
    assert_eq!(
        req.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    let form = req.form();
    let names: Vec<&str> = form.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(names, ["client_id", "client_secret", "jwt_token"]);
    assert_eq!(form[0].1, w.env["JWT_CLIENT_ID"]);
    assert_eq!(form[1].1, w.env["JWT_CLIENT_SECRET"]);
    let header = form[2].1.split('.').next().unwrap();
    assert_eq!(
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(header)
            .unwrap(),
        br#"{"alg":"RS256","typ":"JWT"}"#
    );
    assert_eq!(w.emu.request_count("/ims/token/v3"), 0);
}

#[test]
fn the_jwt_carries_exactly_the_documented_claims() {
    let w = World::new();
    assert_eq!(status(&w.call(&w.action(), report(&w))), 200);
    let c = claims(&w);
    let base = w.emu.base_url();
    let mut expected: BTreeSet<String> = ["exp", "iat", "iss", "sub", "aud"].map(String::from).into();
    expected.extend(expected_metascopes(&w));
    assert_eq!(c.keys().cloned().collect::<BTreeSet<_>>(), expected);
    assert!(c["exp"].is_u64() && c["iat"].is_u64(), "integer times: {c:?}");
    assert_eq!(c["exp"].as_u64().unwrap() - c["iat"].as_u64().unwrap(), 300);
    assert_eq!(c["iss"], w.env["JWT_IMS_ORG"].as_str());
    assert_eq!(c["sub"], w.env["JWT_TECHNICAL_ACCOUNT_ID"].as_str());
    assert_eq!(c["aud"], format!("{base}/c/{}", w.env["JWT_CLIENT_ID"]));
    for scope in expected_metascopes(&w) {
        assert_eq!(c[&scope], json!(true));
    }
}

#[test]
fn metascopes_as_bare_names_urls_mixed_spaced_or_with_empties_are_never_double_prefixed() {
    let w = World::new();
    let base = w.emu.base_url();
    let forms = [
        "ent_analytics_bulk_ingest_sdk,ent_dataservices_sdk".to_string(),
        format!("{base}/s/ent_analytics_bulk_ingest_sdk,{base}/s/ent_dataservices_sdk"),
        format!("ent_analytics_bulk_ingest_sdk,{base}/s/ent_dataservices_sdk"),
        format!(" ent_analytics_bulk_ingest_sdk , ,  {base}/s/ent_dataservices_sdk ,,"),
        format!(",{base}/s/ent_analytics_bulk_ingest_sdk , ent_dataservices_sdk,ent_dataservices_sdk"),
    ];
    for (i, form) in forms.iter().enumerate() {
        let r = w.call(&w.action(), with(report(&w), json!({ "JWT_METASCOPES": form })));
        assert_eq!(status(&r), 200, "form {i}: {r}");
        assert_eq!(w.emu.tokens_issued(&w.env["JWT_CLIENT_ID"]), i as u64 + 1);
        let scopes = metascope_claims(&w);
        assert_eq!(scopes, expected_metascopes(&w), "form {i}");
        assert!(scopes.iter().all(|s| s.matches("/s/").count() == 1), "{scopes:?}");
    }
    // A single scope makes a single claim.
    let r = w.call(
        &w.action(),
        with(report(&w), json!({"JWT_METASCOPES": "ent_dataservices_sdk"})),
    );
    assert_eq!(status(&r), 200, "{r}");
    assert_eq!(
        metascope_claims(&w),
        [format!("{base}/s/ent_dataservices_sdk")].into()
    );
}

#[test]
fn metascopes_made_only_of_separators_are_missing() {
    let w = World::new();
    let r = w.call(&w.action(), with(report(&w), json!({"JWT_METASCOPES": " , ,, "})));
    assert_eq!(status(&r), 400, "{r}");
    assert!(
        message(&r).starts_with("missing parameter(s) 'JWT_METASCOPES'"),
        "{r}"
    );
    assert_eq!(w.emu.request_count("/"), 0);
}

#[test]
fn a_metascope_the_binding_lacks_is_a_502_quoting_ims() {
    let w = World::new();
    let r = w.call(
        &w.action(),
        with(
            report(&w),
            json!({"JWT_METASCOPES": "ent_dataservices_sdk,ent_not_bound"}),
        ),
    );
    assert_eq!(status(&r), 502, "{r}");
    let m = message(&r);
    assert!(
        m.starts_with("IMS refused the credentials (HTTP 400): invalid_scope"),
        "{m}"
    );
}

#[test]
fn missing_jwt_inputs_are_named_together() {
    let w = World::new();
    let r = w.call(
        &w.action(),
        without(
            report(&w),
            &["JWT_CLIENT_SECRET", "JWT_IMS_ORG", "JWT_PRIVATE_KEY"],
        ),
    );
    assert_eq!(status(&r), 400, "{r}");
    assert!(
        message(&r).starts_with("missing parameter(s) 'JWT_CLIENT_SECRET,JWT_IMS_ORG,JWT_PRIVATE_KEY'"),
        "{r}"
    );
    assert_eq!(w.emu.request_count("/"), 0);
}

#[test]
fn wrong_iss_or_sub_or_secret_are_502s_quoting_ims() {
    let w = World::new();
    for (input, value, want) in [
        (
            "JWT_IMS_ORG",
            "OTHER@AdobeOrg",
            "invalid_token: The iss of the JWT",
        ),
        (
            "JWT_TECHNICAL_ACCOUNT_ID",
            "NOBODY@techacct.adobe.com",
            "invalid_token: The sub of the JWT",
        ),
        (
            "JWT_CLIENT_SECRET",
            "p8e-wrong-wrong-wrong",
            "invalid_client: invalid client_secret parameter",
        ),
    ] {
        let r = w.call(&w.action(), with(report(&w), json!({ input: value })));
        assert_eq!(status(&r), 502, "{input}: {r}");
        let m = message(&r);
        assert!(m.starts_with("IMS refused the credentials (HTTP 40"), "{m}");
        assert!(m.contains(want), "{input}: {m}");
    }
    assert_eq!(w.emu.request_count(&reports_path(&w)), 0);
}

// ---- key shapes ----------------------------------------------------------------------------

#[test]
fn every_pasted_shape_of_the_key_works() {
    let w = World::new();
    let key = &w.demo.jwt_key;
    let shapes: Vec<(&str, String)> = [&key.pkcs1_pem, &key.pkcs8_pem]
        .into_iter()
        .flat_map(|pem| fixtures::pasted_shapes(pem))
        .collect();
    let action = w.action();
    for (i, (name, shape)) in shapes.iter().enumerate() {
        let r = w.call(&action, with(report(&w), json!({ "JWT_PRIVATE_KEY": shape })));
        assert_eq!(status(&r), 200, "shape {i} ({name}): {r}");
    }
    // Every shape is a different key text, so a different cache entry: one exchange each,
    // each one signed correctly.
    assert_eq!(w.emu.tokens_issued(&w.env["JWT_CLIENT_ID"]), shapes.len() as u64);
}

#[test]
fn a_3072_bit_key_of_another_client_works() {
    let w = World::new();
    let key = keys::rsa(3072);
    let client = JwtClient {
        client_id: "another-jwt-client".into(),
        client_secret: "p8e-another-secret".into(),
        org_id: w.demo.org_id.clone(),
        technical_account_id: "ANOTHER0001@techacct.adobe.com".into(),
        metascopes: vec!["ent_analytics_bulk_ingest_sdk".into()],
        public_key_der: key.public_der.clone(),
    };
    w.emu.add_jwt_client(client.clone());
    let params = with(
        report(&w),
        json!({
            "JWT_CLIENT_ID": client.client_id,
            "JWT_CLIENT_SECRET": client.client_secret,
            "JWT_TECHNICAL_ACCOUNT_ID": client.technical_account_id,
            "JWT_METASCOPES": "ent_analytics_bulk_ingest_sdk",
            "JWT_PRIVATE_KEY": key.pkcs8_pem,
        }),
    );
    let r = w.call(&w.action(), params.clone());
    assert_eq!(status(&r), 200, "{r}");
    assert_eq!(w.emu.tokens_issued("another-jwt-client"), 1);
    assert_eq!(
        w.emu.requests(&reports_path(&w))[0].header("x-api-key"),
        Some("another-jwt-client")
    );
    // The demo key is not this client's: IMS says the signature does not match.
    let r = w.call(
        &w.action(),
        with(params, json!({"JWT_PRIVATE_KEY": w.demo.jwt_key.pkcs1_pem})),
    );
    assert_eq!(status(&r), 502, "{r}");
    assert!(message(&r).contains("invalid_signature"), "{r}");
}

#[test]
fn unusable_keys_are_a_400_naming_the_input_with_a_reason_and_no_key_material() {
    let w = World::new();
    let encrypted = fixtures::encrypted_pkcs8_pem();
    let ec = keys::ec_pkcs8_pem();
    let small = keys::rsa(1024);
    let pkcs8 = &w.demo.jwt_key.pkcs8_pem;
    let truncated = pkcs8[..pkcs8.len() / 2].to_string();
    let cases = [
        (encrypted.clone(), "is an encrypted private key"),
        (STANDARD.encode(&encrypted), "is an encrypted private key"),
        (ec.clone(), "is an EC key, not RSA"),
        (
            small.pkcs1_pem.clone(),
            "is a 1024-bit RSA key; at least 2048 bits are required",
        ),
        (
            small.pkcs8_pem.clone(),
            "is a 1024-bit RSA key; at least 2048 bits are required",
        ),
        (truncated.clone(), "is truncated or damaged"),
        (STANDARD.encode(&truncated), "is truncated or damaged"),
        (
            "this is not a key at all".to_string(),
            "is not a PEM private key or base64 of one",
        ),
        (
            w.demo.aem_certificate_pem.clone(),
            "is a public key/certificate, not a private key",
        ),
    ];
    let action = w.action();
    for (text, reason) in &cases {
        let r = w.call(&action, with(report(&w), json!({ "JWT_PRIVATE_KEY": text })));
        assert_eq!(status(&r), 400, "{reason}: {r}");
        let m = message(&r);
        assert!(m.starts_with("invalid parameter 'JWT_PRIVATE_KEY': "), "{m}");
        assert!(m.contains(reason), "{m:?} should say {reason:?}");
        for pem in [text.as_str(), &encrypted, &ec, &small.pkcs1_pem, pkcs8] {
            for fragment in fixtures::key_fragments(pem) {
                assert!(!m.contains(&fragment), "key material in: {m}");
            }
        }
        assert!(!r.to_string().contains("****"), "scrubbed, so it was there: {r}");
    }
    // Empty: missing, named.
    let r = w.call(&action, with(report(&w), json!({"JWT_PRIVATE_KEY": ""})));
    assert_eq!(status(&r), 400, "{r}");
    assert!(
        message(&r).starts_with("missing parameter(s) 'JWT_PRIVATE_KEY'"),
        "{r}"
    );
    assert_eq!(
        w.emu.request_count("/"),
        0,
        "nothing is sent with an unusable key"
    );
}

// ---- expiry: /ims/exchange/jwt says milliseconds ------------------------------------------

#[test]
fn the_exchanges_expires_in_is_read_as_milliseconds() {
    let w = World::new();
    // The exchange answers `"expires_in": 600000` (10 minutes in ms). Read as seconds that is
    // 6.9 days, which would still look plausible and (capped by the 24 h payload) give a
    // 24-hour token; read as milliseconds it is 10 minutes.
    w.emu
        .set_token_lifetime(Duration::from_secs(10 * 60), Duration::from_secs(24 * 3600));
    let action = w.action();
    let token = action.access_token(report(&w), &Activation::default()).unwrap();
    assert_eq!(token.expires_at_ms - token.obtained_at_ms, 10 * 60 * 1000);
    // Refresh at half-life (5 min), which comes before "10 minutes before expiry" (0 min).
    let refresh = token.obtained_at_ms + 5 * 60 * 1000;
    assert_eq!(token.refresh_at_ms(), refresh);
    // The cache the action uses hands it out until then, and not after.
    let cache = TokenCache::in_memory();
    let key = CacheKey([7; 32]);
    cache.put(&key, &token);
    assert!(cache.get(&key, refresh - 1).is_some());
    assert!(cache.get(&key, refresh).is_none());
    // Within its life the action reuses it.
    assert_eq!(status(&w.call(&action, report(&w))), 200);
    assert_eq!(w.emu.tokens_issued(&w.env["JWT_CLIENT_ID"]), 1);
}

#[test]
fn the_token_command_reports_the_exchanges_lifetime_in_seconds() {
    let w = World::new();
    w.emu
        .set_token_lifetime(Duration::from_secs(10 * 60), Duration::from_secs(24 * 3600));
    let params = temp_path("params.json");
    std::fs::write(&params, report(&w).to_string()).unwrap();
    let env = w.env_file();
    // The process runs on the system clock: bracket what it prints by the time it took.
    let before = Clock::system().now_unix();
    let out = run_bin(
        &[
            "token",
            "--params",
            params.to_str().unwrap(),
            "--env",
            env.to_str().unwrap(),
        ],
        &[],
        None,
    );
    let took = Clock::system().now_unix() - before;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v = last_line(&out);
    // Read as seconds, 600,000 would be capped by the 24 h payload: 86,399.
    let expires_in = v["expires_in"].as_i64().unwrap_or(0);
    assert!((600 - took - 1..=600).contains(&expires_in), "{v}");
    assert_eq!(w.emu.tokens_issued(&w.env["JWT_CLIENT_ID"]), 1);
    let _ = std::fs::remove_file(params);
    let _ = std::fs::remove_file(env);
}

#[test]
fn jwt_the_earlier_of_expires_in_and_the_payload_wins() {
    let w = World::new();
    let action = w.action().with_clock(Clock::held(w.emu.now_ms()));
    let activation = Activation::default();
    // The payload says 20 minutes, the response an hour.
    w.emu
        .set_token_lifetime(Duration::from_secs(3600), Duration::from_secs(20 * 60));
    let t = action.access_token(report(&w), &activation).unwrap();
    // The action's clock is held at the emulator's time when the test began; IMS stamped the
    // payload a few ms later, so its expiry is exactly what the action took.
    let from_payload = payload_expiry_ms(t.token.expose()).unwrap();
    assert_eq!(t.expires_at_ms, from_payload);
    let life = t.expires_at_ms - t.obtained_at_ms;
    assert!((20 * 60 * 1000..60 * 60 * 1000).contains(&life), "{life} ms");
    // The response says 20 minutes, the payload an hour (another key text: a new cache entry).
    w.emu
        .set_token_lifetime(Duration::from_secs(20 * 60), Duration::from_secs(3600));
    let params = with(report(&w), json!({"JWT_PRIVATE_KEY": w.demo.jwt_key.pkcs1_pem}));
    let t = action.access_token(params, &activation).unwrap();
    assert_eq!(t.expires_at_ms - t.obtained_at_ms, 20 * 60 * 1000);
    assert_eq!(w.emu.tokens_issued(&w.env["JWT_CLIENT_ID"]), 2);
}

#[test]
fn an_expired_jwt_token_is_replaced_when_the_api_refuses_it() {
    let w = World::new();
    w.emu
        .set_token_lifetime(Duration::from_secs(4 * 60), Duration::from_secs(24 * 3600));
    let action = w.action();
    assert_eq!(status(&w.call(&action, report(&w))), 200);
    // 4.5 minutes on the emulator's clock: past the token's 4 minutes, so Analytics refuses it
    // (401) and the action fetches a new one once; still inside the new JWT's 5-minute `exp`
    // (the action signs with its own clock, which did not move).
    w.emu.advance_clock(Duration::from_secs(270));
    let r = w.call(&action, report(&w));
    assert_eq!(status(&r), 200, "{r}");
    assert_eq!(w.emu.tokens_issued(&w.env["JWT_CLIENT_ID"]), 2);
    assert_eq!(w.emu.request_count(&reports_path(&w)), 3);
}
