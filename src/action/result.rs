//! The action's answer: `{statusCode, headers, body}` on success; App Builder's
//! `{error: {statusCode, body: {error}}}` on failure, so that a web action answers with the
//! status and the activation is recorded as failed.

use serde_json::{Value, json};

use crate::api::Reply;
use crate::error::Error;

/// A success: the API's JSON as the body. The body is always an object or an array, never a
/// bare string: OpenWhisk may mistake a string body with a JSON content type for base64.
pub fn success(body: Value) -> Value {
    let body = match body {
        v @ (Value::Object(_) | Value::Array(_)) => v,
        other => json!({ "value": other }),
    };
    json!({
        "statusCode": 200,
        "headers": { "content-type": "application/json" },
        "body": body,
    })
}

/// An operation's reply. A 2xx is a success; a 4xx an API route passes on goes in the failure
/// shape, so that the activation is recorded as failed and a web caller gets the same status,
/// content type and body.
pub fn reply(reply: Reply) -> Value {
    if reply.status == 200 && reply.content_type == "application/json" {
        return success(reply.body);
    }
    let mut headers = json!({ "content-type": reply.content_type });
    if let Some(retry_after) = reply.retry_after.filter(|_| reply.status == 429) {
        headers["retry-after"] = json!(retry_after);
    }
    let answer = json!({
        "statusCode": reply.status,
        "headers": headers,
        "body": reply.body,
    });
    match reply.status {
        400.. => json!({ "error": answer }),
        _ => answer,
    }
}

/// A failure, with `Retry-After` passed on for a 429.
pub fn failure(e: &Error) -> Value {
    let mut error = json!({
        "statusCode": e.status_code(),
        "body": { "error": e.to_string() },
    });
    if let Some(retry_after) = e.retry_after() {
        error["headers"] = json!({ "retry-after": retry_after });
    }
    json!({ "error": error })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Service;

    #[test]
    fn replies_keep_the_apis_status_and_a_4xx_is_a_failure() {
        assert_eq!(reply(Reply::json(json!({"a": 1}))), success(json!({"a": 1})));
        let created = Reply {
            status: 201,
            content_type: "text/plain; charset=utf-8",
            body: json!("done"),
            retry_after: Some("5".into()),
        };
        assert_eq!(
            reply(created),
            json!({"statusCode": 201, "headers": {"content-type": "text/plain; charset=utf-8"}, "body": "done"})
        );
        let throttled = Reply {
            status: 429,
            content_type: "application/json",
            body: json!({"error_code": "429050"}),
            retry_after: Some("30".into()),
        };
        assert_eq!(
            reply(throttled),
            json!({"error": {"statusCode": 429, "headers": {"content-type": "application/json", "retry-after": "30"}, "body": {"error_code": "429050"}}})
        );
    }

    #[test]
    fn shapes() {
        assert_eq!(success(json!({"a": 1}))["statusCode"], 200);
        assert_eq!(success(json!("x"))["body"], json!({"value": "x"}));
        let e = Error::Upstream {
            service: Service::Analytics,
            status: 429,
            detail: "Too many requests".into(),
            retry_after: Some("30".into()),
        };
        assert_eq!(
            failure(&e),
            json!({"error": {"statusCode": 429, "headers": {"retry-after": "30"}, "body": {"error": "Analytics answered HTTP 429: Too many requests"}}})
        );
    }
}
