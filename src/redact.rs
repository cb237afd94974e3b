//! Param dumps that cannot leak: the App Builder template's `stringParameters`, extended to every
//! credential input and to any key whose name says it holds a secret, at any depth.

use serde_json::{Map, Value};

/// What a hidden value is replaced with (the template's word).
pub const HIDDEN: &str = "<hidden>";

/// Words that mark a key as secret, matched case-insensitively anywhere in the name.
const SECRET_WORDS: [&str; 7] = [
    "secret",
    "password",
    "token",
    "key",
    "authorization",
    "credential",
    "cookie",
];

/// Keys hidden whatever their name: raw web bodies and query strings may carry anything.
const OPAQUE_KEYS: [&str; 2] = ["__ow_body", "__ow_query"];

/// Whether a key's value must never be printed.
pub fn is_secret_key(key: &str) -> bool {
    let lower = key.to_ascii_lowercase();
    OPAQUE_KEYS.contains(&key) || SECRET_WORDS.iter().any(|w| lower.contains(w))
}

/// A copy of `value` with every secret-named key's value replaced by [`HIDDEN`], at any depth.
/// Objects given as JSON strings (`__ims_oauth_s2s` sometimes is) are hidden whole when their
/// key is secret, and otherwise inspected as objects.
pub fn redacted(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(redacted_map(map)),
        Value::Array(items) => Value::Array(items.iter().map(redacted).collect()),
        Value::String(s) if s.trim_start().starts_with('{') => match serde_json::from_str::<Value>(s) {
            Ok(v @ Value::Object(_)) => Value::String(redacted(&v).to_string()),
            _ => value.clone(),
        },
        other => other.clone(),
    }
}

fn redacted_map(map: &Map<String, Value>) -> Map<String, Value> {
    map.iter()
        .map(|(k, v)| {
            let v = if is_secret_key(k) && !v.is_null() {
                Value::String(HIDDEN.into())
            } else {
                redacted(v)
            };
            (k.clone(), v)
        })
        .collect()
}

/// The params as one JSON line, secrets hidden: what the debug log shows.
pub fn string_parameters(params: &Map<String, Value>) -> String {
    Value::Object(redacted_map(params)).to_string()
}

/// Every secret value found in `params`, for the last-line-of-defence check on results: strings
/// under secret-named keys at any depth. A secret-named key holding a whole JSON document (the AEM
/// service credentials, as an object, a JSON string or base64 of it) is searched by its own key
/// names instead, so that its org or host, which results may rightly contain, stay visible.
pub fn secret_values(params: &Map<String, Value>) -> Vec<String> {
    fn walk(v: &Value, secret: bool, out: &mut Vec<String>) {
        match v {
            Value::String(s) => {
                if let Some(inner) = embedded_json(s) {
                    walk(&inner, false, out);
                }
                if secret && s.len() >= 8 && !s.trim_start().starts_with('{') {
                    out.push(s.clone());
                }
            }
            Value::Object(m) => m.iter().for_each(|(k, v)| walk(v, is_secret_key(k), out)),
            Value::Array(items) => items.iter().for_each(|v| walk(v, secret, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    params
        .iter()
        .for_each(|(k, v)| walk(v, is_secret_key(k), &mut out));
    out
}

/// A JSON object inside a string, given as JSON or as base64 of JSON (`ey…`).
fn embedded_json(s: &str) -> Option<Value> {
    use base64::Engine;
    let t = s.trim();
    let text = if t.starts_with('{') {
        t.to_string()
    } else if t.len() > 16 && t.starts_with("ey") {
        let compact: String = t.chars().filter(|c| !c.is_ascii_whitespace()).collect();
        let bytes = base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(compact.trim_end_matches('='))
            .ok()?;
        String::from_utf8(bytes).ok()?
    } else {
        return None;
    };
    serde_json::from_str::<Value>(&text).ok().filter(Value::is_object)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_credential_input_and_nested_secret_is_hidden() {
        let p = json!({
            "OAUTHS2S_CLIENT_ID": "id", "OAUTHS2S_CLIENT_SECRET": "s3", "JWT_PRIVATE_KEY": "k",
            "AEM_SERVICE_CREDENTIALS": {"integration": {}}, "AEM_DEV_TOKEN": "t", "LOG_LEVEL": "debug",
            "__ims_oauth_s2s": {"client_id": "id", "client_secret": "s4"},
            "__ow_headers": {"authorization": "Bearer abc", "x-gw-ims-org-id": "O"},
            "__ow_body": "eyJ...", "nested": [{"password": "p"}], "absent_secret": null
        });
        let Value::Object(m) = p else { unreachable!() };
        let out = string_parameters(&m);
        for secret in ["s3", "\"k\"", "\"t\"", "s4", "Bearer abc", "eyJ", "\"p\""] {
            assert!(!out.contains(secret), "{secret} leaked: {out}");
        }
        for kept in [
            "\"OAUTHS2S_CLIENT_ID\":\"id\"",
            "\"x-gw-ims-org-id\":\"O\"",
            "\"LOG_LEVEL\":\"debug\"",
            "\"absent_secret\":null",
        ] {
            assert!(out.contains(kept), "{kept} missing: {out}");
        }
    }

    #[test]
    fn injected_credentials_as_a_json_string_are_inspected() {
        let m = json!({"__ims_oauth_s2s": "{\"client_id\":\"id\",\"client_secret\":\"very-secret-1\"}"});
        let Value::Object(m) = m else { unreachable!() };
        assert!(!string_parameters(&m).contains("very-secret-1"));
        assert_eq!(secret_values(&m), vec!["very-secret-1".to_string()]);
    }

    #[test]
    fn credential_documents_give_up_their_secrets_but_not_their_org() {
        use base64::Engine;
        let doc = json!({"integration": {"org": "ORG12345@AdobeOrg", "imsEndpoint": "ims-na1.adobelogin.com",
            "technicalAccount": {"clientId": "client-1234", "clientSecret": "p8e-secret-1"},
            "privateKey": "-----BEGIN RSA PRIVATE KEY-----x"}});
        let b64 = base64::engine::general_purpose::STANDARD.encode(doc.to_string());
        for v in [doc.clone(), Value::String(doc.to_string()), Value::String(b64)] {
            let Value::Object(m) = json!({ "AEM_SERVICE_CREDENTIALS": v }) else {
                unreachable!()
            };
            let secrets = secret_values(&m);
            assert!(secrets.contains(&"p8e-secret-1".to_string()), "{secrets:?}");
            assert!(
                secrets.contains(&"-----BEGIN RSA PRIVATE KEY-----x".to_string()),
                "{secrets:?}"
            );
            assert!(
                !secrets
                    .iter()
                    .any(|s| s == "ORG12345@AdobeOrg" || s == "client-1234"),
                "{secrets:?}"
            );
        }
    }
}
