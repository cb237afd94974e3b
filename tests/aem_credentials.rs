//! AEM as a Cloud Service service credentials (the AEM Developer Console JSON) → AEM content and
//! → AEM Data Service quota, end to end against the emulator.

mod common;

use std::io::Read;
use std::net::TcpListener;
use std::sync::mpsc;
use std::time::Duration;

use adobe_emulator::keys;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use common::*;
use ims_action::endpoint::AllowList;
use ims_action::token::TokenCache;
use ims_action::{Action, Activation};
use serde_json::{Value, json};

const AEM_CLIENT: &str = "cm-p12345-e67890-integration";
const QUOTA: &str = "/adobe/stats/statistics/contentRequestsQuota";

/// The AEM JSON (as an object) with `edit` applied to its `integration`.
fn creds_with(w: &World, edit: impl FnOnce(&mut serde_json::Map<String, Value>)) -> Value {
    let mut json = w.demo.aem_service_credentials(&w.emu);
    edit(json["integration"].as_object_mut().unwrap());
    json
}

/// Params: the credential given as `value`, the endpoints, and `OPERATION`.
fn params(w: &World, value: Value, operation: &str) -> Value {
    with(
        w.aem_credentials(),
        json!({ "AEM_SERVICE_CREDENTIALS": value, "OPERATION": operation }),
    )
}

/// The names a "missing parameter(s) '…'" message lists (whatever hint follows).
fn missing(r: &Value) -> Vec<String> {
    let m = message(r);
    let names = m
        .strip_prefix("missing parameter(s) '")
        .and_then(|rest| rest.split_once('\''))
        .map(|(names, _)| names)
        .unwrap_or_else(|| panic!("not a missing-inputs message: {m}"));
    names.split(',').map(String::from).collect()
}

fn now_unix() -> i64 {
    ims_action::time::Clock::system().now_unix()
}

#[test]
fn every_shape_of_the_json_gets_aem_content() {
    let w = World::new();
    let json = w.demo.aem_service_credentials(&w.emu);
    let integration = json["integration"].clone();
    let shapes = [
        ("object", json.clone()),
        ("JSON string", Value::String(json.to_string())),
        (
            "pretty JSON string",
            Value::String(serde_json::to_string_pretty(&json).unwrap()),
        ),
        ("base64", Value::String(STANDARD.encode(json.to_string()))),
        (
            "the .env value",
            Value::String(w.env["AEM_SERVICE_CREDENTIALS"].clone()),
        ),
        ("bare integration object", integration.clone()),
        ("bare integration string", Value::String(integration.to_string())),
    ];
    for (what, value) in shapes {
        // A fresh action each time, so that every shape really goes through IMS.
        let r = w.call(&w.action(), params(&w, value, "aem-get"));
        assert_eq!(status(&r), 200, "{what}: {r}");
        assert_eq!(r["body"]["jcr:primaryType"], "sling:Folder", "{what}");
    }
    assert_eq!(w.emu.tokens_issued(AEM_CLIENT), 7);
    let reqs = w.emu.requests("/content/");
    assert_eq!(reqs.len(), 7);
    assert!(reqs.iter().all(|r| r.path == "/content/dam.json"));
    assert!(
        reqs.iter()
            .all(|r| r.header("authorization").unwrap().starts_with("Bearer "))
    );
}

#[test]
fn the_json_gets_the_quota_of_its_own_org() {
    let w = World::new();
    let r = w.call(&w.action(), w.aem_credentials());
    assert_eq!(status(&r), 200, "{r}");
    assert_eq!(r["body"]["filters"]["imsOrgId"], w.demo.org_id.as_str());
    let req = &w.emu.requests(QUOTA)[0];
    assert_eq!(req.header("x-api-key"), Some(AEM_CLIENT));
    assert_eq!(req.header("x-gw-ims-org-id"), Some(w.demo.org_id.as_str()));
    assert_eq!(
        req.query_param("imsOrgId").as_deref(),
        Some(w.demo.org_id.as_str())
    );
}

#[test]
fn the_jwt_is_built_from_the_json() {
    let w = World::new();
    assert_eq!(status(&w.call(&w.action(), w.aem_credentials())), 200);
    let claims = w.emu.last_jwt_claims(AEM_CLIENT).expect("a JWT was exchanged");
    let base = w.emu.base_url();
    let keys: Vec<&str> = claims.as_object().unwrap().keys().map(String::as_str).collect();
    let mut want = vec!["aud", "exp", "iat", "iss", "sub"];
    let scope = format!("{base}/s/ent_aem_cloud_api");
    want.push(&scope);
    let mut got = keys.clone();
    got.sort();
    want.sort();
    assert_eq!(got, want);
    assert_eq!(claims["aud"], format!("{base}/c/{AEM_CLIENT}"));
    assert_eq!(claims["iss"], w.demo.org_id.as_str());
    assert_eq!(claims["sub"], w.demo.aem.technical_account_id.as_str());
    let form = w.emu.requests("/ims/exchange/jwt")[0].form();
    assert_eq!(
        form[1],
        ("client_secret".into(), w.demo.aem.client_secret.clone())
    );
}

#[test]
fn missing_fields_are_named_by_their_path() {
    let w = World::new();
    let json = creds_with(&w, |i| {
        i.remove("privateKey");
    });
    let r = w.call(&w.action(), params(&w, json, "aem-get"));
    assert_eq!(status(&r), 400, "{r}");
    assert_eq!(missing(&r), ["AEM_SERVICE_CREDENTIALS.integration.privateKey"]);

    let json = creds_with(&w, |i| {
        i.remove("org");
        i["technicalAccount"]
            .as_object_mut()
            .unwrap()
            .remove("clientSecret");
        i.insert("metascopes".into(), json!(""));
    });
    let r = w.call(
        &w.action(),
        params(&w, Value::String(json.to_string()), "aem-get"),
    );
    assert_eq!(status(&r), 400, "{r}");
    assert_eq!(
        missing(&r),
        [
            "AEM_SERVICE_CREDENTIALS.integration.org",
            "AEM_SERVICE_CREDENTIALS.integration.technicalAccount.clientSecret",
            "AEM_SERVICE_CREDENTIALS.integration.metascopes",
        ]
    );

    let json = creds_with(&w, |i| {
        i.remove("technicalAccount");
        i.remove("imsEndpoint");
    });
    let r = w.call(&w.action(), params(&w, json, "aem-get"));
    assert_eq!(status(&r), 400, "{r}");
    assert_eq!(
        missing(&r),
        [
            "AEM_SERVICE_CREDENTIALS.integration.imsEndpoint",
            "AEM_SERVICE_CREDENTIALS.integration.technicalAccount.clientId",
            "AEM_SERVICE_CREDENTIALS.integration.technicalAccount.clientSecret",
        ]
    );
    assert_eq!(w.emu.request_count("/"), 0);
}

#[test]
fn a_field_of_the_wrong_type_is_named() {
    let w = World::new();
    let json = creds_with(&w, |i| {
        i.insert("org".into(), json!(1234));
    });
    let r = w.call(&w.action(), params(&w, json, "aem-get"));
    assert_eq!(status(&r), 400, "{r}");
    assert_eq!(
        message(&r),
        "invalid parameter 'AEM_SERVICE_CREDENTIALS.integration.org': must be a string, not a number"
    );
}

#[test]
fn text_that_is_not_the_json_is_a_400() {
    let w = World::new();
    for (value, reason) in [
        (
            json!("this is not JSON"),
            "is neither the AEM Developer Console JSON nor base64 of it",
        ),
        (json!("{\"integration\": {"), "is not valid JSON"),
        (json!(STANDARD.encode("not json at all")), "is not valid JSON"),
        (
            json!("[1, 2]"),
            "is neither the AEM Developer Console JSON nor base64 of it",
        ),
        (
            json!(42),
            "must be the AEM Developer Console JSON (an object or a string), not a number",
        ),
        (
            json!({"ok": true, "integration": "x"}),
            "'integration' must be an object",
        ),
    ] {
        let r = w.call(&w.action(), params(&w, value.clone(), "aem-get"));
        assert_eq!(status(&r), 400, "{value}: {r}");
        let m = message(&r);
        assert!(
            m.starts_with("invalid parameter 'AEM_SERVICE_CREDENTIALS': "),
            "{m}"
        );
        assert!(m.contains(reason), "{value}: {m}");
    }
    assert_eq!(w.emu.request_count("/"), 0);
}

#[test]
fn an_expired_certificate_is_a_400_with_the_date_and_the_fix() {
    let w = World::new();
    let not_after = now_unix() - 10 * 86_400;
    let cert = keys::certificate_pem(&w.demo.jwt_key, not_after - 365 * 86_400, not_after);
    let json = creds_with(&w, |i| {
        i.insert("publicKey".into(), json!(cert.replace('\n', "\r\n")));
    });
    let r = w.call(&w.action(), params(&w, json, "aem-get"));
    assert_eq!(status(&r), 400, "{r}");
    let m = message(&r);
    assert!(
        m.starts_with("invalid parameter 'AEM_SERVICE_CREDENTIALS': "),
        "{m}"
    );
    let date = ims_action::time::format_date(not_after);
    assert!(m.contains(&format!("expired on {date}")), "{m}");
    assert!(m.contains("AEM Developer Console"), "{m}");
    assert!(m.to_lowercase().contains("refresh"), "{m}");
    assert_eq!(
        w.emu.request_count("/"),
        0,
        "no token is asked for with an expired certificate"
    );
}

#[test]
fn a_certificate_about_to_expire_still_works_with_a_warning() {
    let w = World::new();
    let not_after = now_unix() + 10 * 86_400;
    let cert = keys::certificate_pem(&w.demo.jwt_key, now_unix() - 355 * 86_400, not_after);
    let json = creds_with(&w, |i| {
        i.insert("publicKey".into(), json!(cert));
    });
    let p = params(&w, json, "aem-get");
    let r = w.call(&w.action(), p.clone());
    assert_eq!(status(&r), 200, "{r}");

    // The binary says so on stderr.
    let params_file = temp_path("params.json");
    std::fs::write(&params_file, p.to_string()).unwrap();
    let env = w.env_file();
    let out = run_bin(
        &[
            "invoke",
            "--params",
            params_file.to_str().unwrap(),
            "--env",
            env.to_str().unwrap(),
        ],
        &[],
        None,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(status(&last_line(&out)), 200);
    let date = ims_action::time::format_date(not_after);
    let warning = stderr
        .lines()
        .find(|l| l.contains("WARN") && l.contains("certificate expires on"))
        .unwrap_or_else(|| panic!("no warning in: {stderr}"));
    assert!(warning.contains(&date), "{warning}");
    assert!(warning.contains("days left"), "{warning}");
    let _ = std::fs::remove_file(params_file);
    let _ = std::fs::remove_file(env);
}

#[test]
fn a_certificate_with_a_year_left_gives_no_warning() {
    let w = World::new();
    let params_file = temp_path("params.json");
    std::fs::write(
        &params_file,
        params(&w, w.demo.aem_service_credentials(&w.emu), "aem-get").to_string(),
    )
    .unwrap();
    let env = w.env_file();
    let out = run_bin(
        &[
            "invoke",
            "--params",
            params_file.to_str().unwrap(),
            "--env",
            env.to_str().unwrap(),
        ],
        &[],
        None,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("certificate expires"), "{stderr}");
    let _ = std::fs::remove_file(params_file);
    let _ = std::fs::remove_file(env);
}

#[test]
fn an_ims_endpoint_url_is_used_as_given() {
    let w = World::new();
    // The demo JSON's imsEndpoint is `http://127.0.0.1:PORT`; with a trailing slash too.
    let json = creds_with(&w, |i| {
        i.insert("imsEndpoint".into(), json!(format!("{}/", w.emu.base_url())));
    });
    let r = w.call(&w.action(), params(&w, json, "aem-get"));
    assert_eq!(status(&r), 200, "{r}");
    assert_eq!(w.emu.request_count("/ims/exchange/jwt"), 1);
    let claims = w.emu.last_jwt_claims(AEM_CLIENT).unwrap();
    assert_eq!(claims["aud"], format!("{}/c/{AEM_CLIENT}", w.emu.base_url()));
}

#[test]
fn a_bare_ims_endpoint_host_means_https() {
    let w = World::new();
    // An allow-listed plain TCP listener that records the first bytes of each connection.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let host = listener.local_addr().unwrap().to_string();
    let (tx, rx) = mpsc::channel::<Vec<u8>>();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { break };
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let mut buf = [0u8; 16];
            let n = stream.read(&mut buf).unwrap_or(0);
            if tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let action = Action::new(
        AllowList::parse(&format!("{},{host}", w.emu.host_port())),
        TokenCache::in_memory(),
    );
    let json = creds_with(&w, |i| {
        i.insert("imsEndpoint".into(), json!(host));
    });
    let r = action.handle(params(&w, json, "aem-get"), &Activation::default());
    assert_eq!(status(&r), 502, "{r}");
    assert!(message(&r).starts_with("IMS "), "{r}");
    let first = rx.recv_timeout(Duration::from_secs(10)).expect("a connection");
    // A TLS handshake record (0x16, version 3.x), not "POST /ims/...".
    assert_eq!(&first[..2], &[0x16, 0x03], "{first:?}");
    assert_eq!(w.emu.request_count("/"), 0);
}

#[test]
fn an_ims_endpoint_host_outside_the_allowlist_is_refused() {
    let w = World::new();
    for endpoint in [
        "evil.example",
        "https://evil.example",
        "ims-na1.adobelogin.com.evil.example",
    ] {
        let json = creds_with(&w, |i| {
            i.insert("imsEndpoint".into(), json!(endpoint));
        });
        let r = w.call(&w.action(), params(&w, json, "aem-get"));
        assert_eq!(status(&r), 400, "{endpoint}: {r}");
        let m = message(&r);
        assert!(
            m.starts_with("invalid parameter 'AEM_SERVICE_CREDENTIALS.integration.imsEndpoint': host"),
            "{m}"
        );
        assert!(m.contains("is not allowed"), "{m}");
    }
    assert_eq!(w.emu.request_count("/"), 0);
}

#[test]
fn the_secret_and_key_never_come_back_in_an_error() {
    let w = World::new();
    // A wrong client secret: IMS refuses, and the answer holds none of the JSON's secrets.
    let json = creds_with(&w, |i| {
        i["technicalAccount"]["clientSecret"] = json!("p8e-not-the-right-secret-000");
    });
    let r = w.call(&w.action(), params(&w, json, "aem-get"));
    assert_eq!(status(&r), 502, "{r}");
    assert!(message(&r).contains("invalid_client"), "{r}");
    let text = r.to_string();
    assert!(!text.contains("p8e-not-the-right-secret-000"), "{text}");
    assert!(!text.contains("PRIVATE KEY"), "{text}");
    assert!(!text.contains("****"), "{text}");
}

/// Service credentials belong to one AEM environment (`cm-p<P>-e<E>-…`): their token is never
/// sent to another customer's instance, even when a caller overrides AEM_AUTHOR_URL.
#[test]
fn the_token_only_goes_to_the_credentials_own_environment() {
    let w = World::new();
    let creds = creds_with(&w, |integration| {
        integration["technicalAccount"]["clientId"] = json!("cm-p7603-e12614-integration");
    });
    let elsewhere = with(
        params(&w, creds.clone(), "aem-get"),
        json!({"AEM_AUTHOR_URL": "https://author-p1-e2.adobeaemcloud.com"}),
    );
    let r = w.call(&w.action(), elsewhere);
    assert_eq!(status(&r), 400, "{r}");
    assert!(
        message(&r).contains("'AEM_AUTHOR_URL'") && message(&r).contains("p7603-e12614"),
        "{r}"
    );
    assert_eq!(
        w.emu.request_count("/ims/"),
        0,
        "refused before any token request"
    );

    // Its own environment passes the check; the emulator then refuses the unknown client id.
    let home = with(
        params(&w, creds, "aem-get"),
        json!({"AEM_AUTHOR_URL": "https://author-p7603-e12614.adobeaemcloud.com"}),
    );
    let r = w.call(&w.action(), home);
    assert_eq!(status(&r), 502, "{r}");
    assert!(message(&r).contains("IMS refused"), "{r}");
}
