//! Developer token (AEM Developer Console → Local token) → AEM content, end to end against the
//! emulator. No IMS call: the token is used as is.

mod common;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::*;
use serde_json::{Value, json};

/// The dev token given as `value`, for `aem-get`.
fn get(w: &World, value: Value) -> Value {
    with(
        w.dev_token(),
        json!({ "AEM_DEV_TOKEN": value, "OPERATION": "aem-get" }),
    )
}

/// A token shaped like an IMS one whose payload says it was created at `created_ms` and lives
/// `life_ms`.
fn token_with_life(created_ms: u64, life_ms: u64) -> String {
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256","x5u":"ims_na1-key-at-1.cer"}"#),
        URL_SAFE_NO_PAD.encode(
            json!({
                "type": "access_token",
                "as": "ims-na1",
                "created_at": created_ms.to_string(),
                "expires_in": life_ms.to_string(),
            })
            .to_string()
        ),
        URL_SAFE_NO_PAD.encode("not-a-real-signature-but-long-enough"),
    )
}

fn authorizations(w: &World) -> Vec<String> {
    w.emu
        .requests("/content/")
        .iter()
        .map(|r| r.header("authorization").unwrap_or("").to_string())
        .collect()
}

#[test]
fn a_plain_token_gets_aem_content_without_ims() {
    let w = World::new();
    let r = w.call(&w.action(), get(&w, json!(w.demo.dev_token)));
    assert_eq!(status(&r), 200, "{r}");
    assert_eq!(r["body"]["jcr:primaryType"], "sling:Folder");
    assert_eq!(authorizations(&w), [format!("Bearer {}", w.demo.dev_token)]);
    assert_eq!(w.emu.request_count("/ims"), 0);
    // No API key goes with a developer token.
    assert_eq!(w.emu.requests("/content/")[0].header("x-api-key"), None);
}

#[test]
fn a_bearer_prefixed_token_is_sent_once_prefixed() {
    let w = World::new();
    let r = w.call(
        &w.action(),
        get(&w, json!(format!("Bearer {}", w.demo.dev_token))),
    );
    assert_eq!(status(&r), 200, "{r}");
    assert_eq!(authorizations(&w), [format!("Bearer {}", w.demo.dev_token)]);
}

#[test]
fn the_console_json_works_as_object_and_as_string() {
    let w = World::new();
    let console = json!({
        "accessToken": w.demo.dev_token,
        "expiresIn": 86_400_000,
        "integration": {"imsEndpoint": "ims-na1.adobelogin.com"},
    });
    for value in [console.clone(), Value::String(console.to_string())] {
        let r = w.call(&w.action(), get(&w, value.clone()));
        assert_eq!(status(&r), 200, "{value}: {r}");
    }
    assert_eq!(authorizations(&w).len(), 2);
    assert!(
        authorizations(&w)
            .iter()
            .all(|a| *a == format!("Bearer {}", w.demo.dev_token))
    );
    assert_eq!(w.emu.request_count("/ims"), 0);
}

#[test]
fn console_json_without_the_token_names_the_field() {
    let w = World::new();
    let r = w.call(&w.action(), get(&w, json!({"expiresIn": 86_400_000})));
    assert_eq!(status(&r), 400, "{r}");
    assert!(
        message(&r).starts_with("missing parameter(s) 'AEM_DEV_TOKEN.accessToken'"),
        "{r}"
    );
    let r = w.call(&w.action(), get(&w, json!("{\"accessToken\": ")));
    assert_eq!(status(&r), 400, "{r}");
    assert!(
        message(&r).starts_with("invalid parameter 'AEM_DEV_TOKEN'"),
        "{r}"
    );
    assert_eq!(w.emu.request_count("/"), 0);
}

#[test]
fn a_token_whose_payload_has_expired_is_a_400() {
    let w = World::new();
    let now = ims_action::time::Clock::system().now_ms();
    let expired = token_with_life(now - 25 * 3_600_000, 24 * 3_600_000);
    w.emu.add_dev_token(&expired);
    let r = w.call(&w.action(), get(&w, json!(expired)));
    assert_eq!(status(&r), 400, "{r}");
    let m = message(&r);
    assert!(
        m.starts_with("invalid parameter 'AEM_DEV_TOKEN': has expired"),
        "{m}"
    );
    assert!(m.contains("AEM Developer Console"), "{m}");
    assert!(!m.contains(&expired), "{m}");
    assert_eq!(w.emu.request_count("/"), 0);
}

#[test]
fn a_token_whose_payload_is_still_valid_works() {
    let w = World::new();
    let now = ims_action::time::Clock::system().now_ms();
    let fresh = token_with_life(now - 3_600_000, 24 * 3_600_000);
    w.emu.add_dev_token(&fresh);
    let r = w.call(&w.action(), get(&w, json!({ "accessToken": fresh })));
    assert_eq!(status(&r), 200, "{r}");
    assert_eq!(authorizations(&w), [format!("Bearer {fresh}")]);
}

#[test]
fn a_token_aem_does_not_know_is_a_401_passed_through_without_retry() {
    let w = World::new();
    let r = w.call(&w.action(), get(&w, json!("not-a-registered-token")));
    assert_eq!(status(&r), 401, "{r}");
    assert_eq!(message(&r), "AEM answered HTTP 401: unauthorized");
    // A developer token cannot be renewed: no second attempt, no IMS call.
    assert_eq!(w.emu.request_count("/content/"), 1);
    assert_eq!(w.emu.request_count("/ims"), 0);
}

#[test]
fn a_token_with_spaces_is_refused() {
    let w = World::new();
    let r = w.call(&w.action(), get(&w, json!("two words")));
    assert_eq!(status(&r), 400, "{r}");
    assert_eq!(
        message(&r),
        "invalid parameter 'AEM_DEV_TOKEN': must be a bearer token without spaces"
    );
}

#[test]
fn a_dev_token_cannot_get_the_quota_or_a_report() {
    let w = World::new();
    for op in ["aem-quota", "analytics-report"] {
        let r = w.call(
            &w.action(),
            with(
                w.dev_token(),
                json!({
                    "OPERATION": op,
                    "IMS_ORG_ID": w.demo.org_id,
                    "ANALYTICS_COMPANY_ID": w.env["ANALYTICS_COMPANY_ID"],
                    "ANALYTICS_RSID": w.env["ANALYTICS_RSID"],
                }),
            ),
        );
        assert_eq!(status(&r), 400, "{op}: {r}");
        assert_eq!(
            message(&r),
            format!(
                "invalid parameter 'OPERATION': {op} needs an API key (a client id); \
                 a developer token works with aem-get only"
            )
        );
    }
    // aem-quota is the default operation.
    let r = w.call(&w.action(), w.dev_token());
    assert_eq!(status(&r), 400, "{r}");
    assert!(
        message(&r).starts_with("invalid parameter 'OPERATION': aem-quota"),
        "{r}"
    );
    assert_eq!(w.emu.request_count("/"), 0);
}

#[test]
fn aem_get_without_an_author_url_names_it() {
    let w = World::new();
    let r = w.call(
        &w.action(),
        without(get(&w, json!(w.demo.dev_token)), &["AEM_AUTHOR_URL"]),
    );
    assert_eq!(status(&r), 400, "{r}");
    assert!(
        message(&r).starts_with("missing parameter(s) 'AEM_AUTHOR_URL'"),
        "{r}"
    );
    assert!(message(&r).contains("aem-get needs AEM_AUTHOR_URL"), "{r}");
}
