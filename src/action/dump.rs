//! The DEBUG params dump, deny-by-default: a value is shown only when its input is known to be
//! harmless (ids, endpoints, the operation); every other value, whatever its key is called, is
//! `<hidden>`. Web headers likewise: only a few known harmless ones show their values. (Every log
//! line is also scrubbed of the activation's secrets by [`crate::logging`]; this is the first
//! line of defence, not the only one.)

use serde_json::{Map, Value};

/// What a hidden value is replaced with (the App Builder template's word).
pub const HIDDEN: &str = "<hidden>";

/// Inputs whose values may be logged: identifiers (a client id is sent as `x-api-key` in clear),
/// endpoints, and behaviour.
const SHOWN: [&str; 23] = [
    "AUTH_METHOD",
    "OPERATION",
    "IMS_ORG_ID",
    "OAUTHS2S_CLIENT_ID",
    "OAUTHS2S_CECREDENTIALS_METASCOPES",
    "JWT_CLIENT_ID",
    "JWT_TECHNICAL_ACCOUNT_ID",
    "JWT_IMS_ORG",
    "JWT_METASCOPES",
    "ANALYTICS_COMPANY_ID",
    "ANALYTICS_RSID",
    "AEM_AUTHOR_URL",
    "AEM_PATH",
    "IMS_BASE_URL",
    "AEM_DATA_SERVICE_BASE_URL",
    "ANALYTICS_BASE_URL",
    "LOG_LEVEL",
    "HTTP_TIMEOUT_MS",
    "ALLOWED_IMS_ORGS",
    "CALLER_INPUTS",
    "__ow_method",
    "__ow_path",
    "__ow_user",
];

/// Web request headers whose values may be logged.
const SHOWN_HEADERS: [&str; 7] = [
    "x-gw-ims-org-id",
    "content-type",
    "content-length",
    "accept",
    "user-agent",
    "x-request-id",
    "x-forwarded-for",
];

/// At most this many entries are listed (a caller can send many headers).
const MAX_ENTRIES: usize = 64;
/// A shown value is cut to this many characters.
const MAX_VALUE: usize = 200;

/// The params as one JSON line, every value not known to be harmless hidden: what the DEBUG log
/// shows.
pub fn string_parameters(params: &Map<String, Value>) -> String {
    let mut out = Map::new();
    for (k, v) in params.iter().take(MAX_ENTRIES) {
        let shown = if k == "__ow_headers" {
            headers(v)
        } else if SHOWN.contains(&k.as_str()) {
            shown_value(v)
        } else {
            hidden(v)
        };
        out.insert(k.clone(), shown);
    }
    if params.len() > MAX_ENTRIES {
        out.insert(
            "…".into(),
            Value::String(format!("{} more", params.len() - MAX_ENTRIES)),
        );
    }
    json_escape_controls(&Value::Object(out).to_string())
}

/// JSON text with the characters a log line must not carry raw (see
/// [`crate::logging::is_escaped`]) written as `\uXXXX`: JSON escapes C0 controls itself, but
/// not C1 (U+0085 and the rest), U+2028, U+2029 or the bidirectional controls. Such characters
/// can only be inside strings, where `\uXXXX` means the same.
fn json_escape_controls(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        if crate::logging::is_escaped(c) {
            out.push_str(&format!("\\u{:04x}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    out
}

fn headers(v: &Value) -> Value {
    let Value::Object(h) = v else { return hidden(v) };
    let mut out = Map::new();
    for (name, value) in h.iter().take(MAX_ENTRIES) {
        let lower = name.to_ascii_lowercase();
        let shown = if SHOWN_HEADERS.contains(&lower.as_str()) {
            shown_value(value)
        } else {
            hidden(value)
        };
        out.insert(name.clone(), shown);
    }
    if h.len() > MAX_ENTRIES {
        out.insert(
            "…".into(),
            Value::String(format!("{} more", h.len() - MAX_ENTRIES)),
        );
    }
    Value::Object(out)
}

fn shown_value(v: &Value) -> Value {
    match v {
        Value::String(s) if s.chars().count() > MAX_VALUE => {
            Value::String(format!("{}…", s.chars().take(MAX_VALUE).collect::<String>()))
        }
        Value::String(_) | Value::Number(_) | Value::Bool(_) | Value::Null => v.clone(),
        _ => hidden(v),
    }
}

/// Absent and null values stay visible as such: "not given" is worth seeing.
fn hidden(v: &Value) -> Value {
    match v {
        Value::Null => Value::Null,
        Value::String(s) if s.is_empty() => Value::String(String::new()),
        _ => Value::String(HIDDEN.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn dump(v: Value) -> String {
        let Value::Object(m) = v else { unreachable!() };
        string_parameters(&m)
    }

    #[test]
    fn only_known_harmless_values_show() {
        let out = dump(json!({
            "OAUTHS2S_CLIENT_ID": "id", "OAUTHS2S_CLIENT_SECRET": "s3", "JWT_PRIVATE_KEY": "k",
            "AEM_SERVICE_CREDENTIALS": {"integration": {}}, "AEM_DEV_TOKEN": "t", "LOG_LEVEL": "debug",
            "__ims_oauth_s2s": {"client_id": "id", "client_secret": "s4"},
            "__ow_headers": {"authorization": "Bearer abc", "x-require-whisk-auth": "shh",
                             "cookie": "c=1", "x-gw-ims-org-id": "O", "x-innocent-looking": "v"},
            "__ow_body": "eyJ...", "something_new": "p", "absent_secret": null, "empty": ""
        }));
        for secret in [
            "s3",
            "\"k\"",
            "\"t\"",
            "s4",
            "Bearer abc",
            "shh",
            "c=1",
            "eyJ",
            "\"p\"",
            "\"v\"",
        ] {
            assert!(!out.contains(secret), "{secret} leaked: {out}");
        }
        for kept in [
            "\"OAUTHS2S_CLIENT_ID\":\"id\"",
            "\"x-gw-ims-org-id\":\"O\"",
            "\"LOG_LEVEL\":\"debug\"",
            "\"absent_secret\":null",
            "\"something_new\":\"<hidden>\"",
            "\"x-require-whisk-auth\":\"<hidden>\"",
        ] {
            assert!(out.contains(kept), "{kept} missing: {out}");
        }
    }

    #[test]
    fn caller_text_cannot_break_the_dump_line() {
        let out = dump(json!({
            "OPERATION": "x\u{2028}y\u{2029}z\u{85}w\u{9b}v\nu\u{202e}",
            "k\u{2028}ey": "v",
            "__ow_headers": {"user-agent": "ua\u{2028}\r\n[INFO] forged"}
        }));
        assert!(!out.chars().any(crate::logging::is_escaped), "{out}");
        assert!(
            out.contains("x\\u2028y\\u2029z\\u0085w\\u009bv\\nu\\u202e"),
            "{out}"
        );
        let back: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(back["OPERATION"], "x\u{2028}y\u{2029}z\u{85}w\u{9b}v\nu\u{202e}");
        assert_eq!(back["k\u{2028}ey"], "<hidden>");
    }

    #[test]
    fn the_dump_stays_bounded() {
        let mut m = Map::new();
        for i in 0..10_000 {
            m.insert(format!("k{i}"), json!("v"));
        }
        let out = dump(Value::Object(m));
        assert!(out.len() < 4096, "{} bytes", out.len());
        assert!(out.contains("9936 more"), "{out}");
    }
}
