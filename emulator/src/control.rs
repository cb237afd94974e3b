//! Control endpoints for scripts and benchmarks that cannot hold an [`super::Emulator`]:
//! `/__stats`, `/__faults`, `/__clock`, `/__requests`. They are neither counted, recorded nor
//! subject to faults.

use std::time::Duration;

use serde_json::{Map, Value, json};

use super::response::{Response, not_found};
use super::state::State;
use super::{Fault, RecordedRequest};

pub(crate) fn handle(state: &State, request: &RecordedRequest) -> Response {
    match (request.method.as_str(), request.path.as_str()) {
        ("GET", "/__stats") => {
            let c = state.connection_stats();
            Response::json(
                200,
                &json!({
                    "tokens_issued": state.tokens_issued_map(),
                    "requests": state.request_counts(),
                    // Every connection, this one included.
                    "connections": {
                        "accepted": c.accepted,
                        "tls_handshakes": c.tls_handshakes,
                        "tls_resumed": c.tls_resumed,
                        "tls_failed": c.tls_failed,
                    },
                }),
            )
        }
        ("POST", "/__faults") => match parse_fault(&request.body) {
            Ok((path, fault, count)) => {
                state.inject_fault(&path, fault, count);
                Response::json(200, &json!({"ok": true}))
            }
            Err(message) => Response::json(400, &json!({"error": message})),
        },
        ("POST", "/__clock") => {
            let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
            match body.get("advance_secs").and_then(Value::as_u64) {
                Some(secs) => {
                    state.advance_clock(Duration::from_secs(secs));
                    Response::json(200, &json!({"ok": true, "now_ms": state.now_ms()}))
                }
                None => Response::json(
                    400,
                    &json!({"error": "expected {\"advance_secs\": <non-negative integer>}"}),
                ),
            }
        }
        ("GET", "/__requests") => {
            let prefix = request.query_param("path").unwrap_or_default();
            let list: Vec<Value> = state
                .requests(&prefix)
                .iter()
                .map(|r| {
                    let mut headers = Map::new();
                    for (k, v) in &r.headers {
                        // Repeated headers are joined like RFC 9110 §5.3 allows.
                        let joined = match headers.get(k).and_then(Value::as_str) {
                            Some(prev) => format!("{prev}, {v}"),
                            None => v.clone(),
                        };
                        headers.insert(k.clone(), Value::String(joined));
                    }
                    json!({
                        "method": r.method,
                        "path": r.path,
                        "query": r.query,
                        "headers": headers,
                        "body": String::from_utf8_lossy(&r.body),
                    })
                })
                .collect();
            Response::json(200, &Value::Array(list))
        }
        _ => not_found(),
    }
}

/// Parses `{"path": P, "count": N, <one of status | echo_status | delay_ms | kind>}`.
fn parse_fault(body: &[u8]) -> Result<(String, Fault, u32), String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("invalid JSON: {e}"))?;
    let path = v
        .get("path")
        .and_then(Value::as_str)
        .ok_or("\"path\" (string) is required")?
        .to_string();
    let count = match v.get("count") {
        None => 1,
        Some(c) => c
            .as_u64()
            .and_then(|c| u32::try_from(c).ok())
            .ok_or("\"count\" must be a non-negative integer")?,
    };
    let string_field = |name: &str| v.get(name).and_then(Value::as_str).map(str::to_string);
    let fault = if let Some(status) = v.get("status") {
        let status = status
            .as_u64()
            .and_then(|s| u16::try_from(s).ok())
            .filter(|s| (100..=999).contains(s))
            .ok_or("\"status\" must be an HTTP status code")?;
        // Accept a number for retry_after too; shell scripts write either.
        let retry_after = string_field("retry_after").or_else(|| {
            v.get("retry_after")
                .and_then(Value::as_u64)
                .map(|n| n.to_string())
        });
        Fault::Status {
            status,
            retry_after,
            body: string_field("body"),
        }
    } else if let Some(status) = v.get("echo_status") {
        let status = status
            .as_u64()
            .and_then(|s| u16::try_from(s).ok())
            .filter(|s| (100..=999).contains(s))
            .ok_or("\"echo_status\" must be an HTTP status code")?;
        Fault::Echo { status }
    } else if let Some(ms) = v.get("delay_ms") {
        let ms = ms.as_u64().ok_or("\"delay_ms\" must be a non-negative integer")?;
        Fault::Delay(Duration::from_millis(ms))
    } else {
        match v.get("kind").and_then(Value::as_str) {
            Some("drop") => Fault::Drop,
            Some("malformed") => Fault::Malformed,
            Some("html") => Fault::Html,
            Some("huge") => Fault::Huge,
            _ => {
                return Err(
                    "one of \"status\", \"echo_status\", \"delay_ms\" or \"kind\" (drop|malformed|html|huge) is required"
                        .into(),
                );
            }
        }
    };
    Ok((path, fault, count))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_json() {
        let parsed = parse_fault(br#"{"path":"/ims","count":2,"status":503,"retry_after":"1"}"#);
        assert!(matches!(
            parsed,
            Ok((ref p, Fault::Status { status: 503, retry_after: Some(ref r), body: None }, 2))
                if p == "/ims" && r == "1"
        ));
        assert!(matches!(
            parse_fault(br#"{"path":"/a","delay_ms":1500}"#),
            Ok((_, Fault::Delay(d), 1)) if d == Duration::from_millis(1500)
        ));
        assert!(matches!(
            parse_fault(br#"{"path":"/a","kind":"huge"}"#),
            Ok((_, Fault::Huge, 1))
        ));
        assert!(parse_fault(br#"{"path":"/a","kind":"nope"}"#).is_err());
        assert!(parse_fault(br#"{"kind":"drop"}"#).is_err());
        assert!(parse_fault(b"not json").is_err());
    }
}
