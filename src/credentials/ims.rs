//! What the two IMS token endpoints share: OAuth server-to-server (`/ims/token/v3`,
//! `expires_in` in **seconds**) and the Service Account JWT exchange (`/ims/exchange/jwt`,
//! `expires_in` in **milliseconds**) both take a form POST, and both answer errors as
//! `{error, error_description}`. Each credential kind builds its own form.

use serde_json::Value;

use crate::access_token::{AccessToken, payload_expiry_ms};
use crate::error::{Error, Service};
use crate::http::{Budget, HttpClient, Method, Request, Response};
use crate::secret::Secret;

/// The largest lifetime we believe: IMS tokens live about 24 hours.
const MAX_LIFETIME_MS: u64 = 7 * 86_400_000;

/// The unit of `expires_in`, which differs per endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpiresIn {
    /// `/ims/token/v3`.
    Seconds,
    /// `/ims/exchange/jwt`.
    Milliseconds,
}

/// `POST {url}` with `form` (`application/x-www-form-urlencoded`), and the token IMS answers
/// with (its `expires_in` in `unit`), or its refusal.
pub fn request_token(
    http: &HttpClient,
    budget: &Budget,
    url: String,
    form: String,
    what: &str,
    unit: ExpiresIn,
) -> Result<AccessToken, Error> {
    let resp = http.send(
        &Request {
            service: Service::Ims,
            method: Method::Post,
            url,
            headers: vec![("accept".into(), "application/json".into())],
            body: Some(("application/x-www-form-urlencoded".into(), form.into_bytes())),
            // Asking for a token twice is harmless.
            retryable: true,
            max_body: None,
            what,
        },
        budget,
    )?;
    parse_token_response(&resp, unit, budget.clock().now_ms())
}

/// Turns an IMS answer into a token, or an error that quotes IMS's `error` and
/// `error_description` (never the request). Expiry is the earlier of `expires_in` (in `unit`)
/// and the token's own payload.
pub fn parse_token_response(resp: &Response, unit: ExpiresIn, now_ms: u64) -> Result<AccessToken, Error> {
    let bad = |reason: &str| Error::BadUpstreamResponse {
        service: Service::Ims,
        status: resp.status,
        reason: reason.to_string(),
    };
    let json = resp.json(Service::Ims);
    if let Ok(v) = &json
        && let Some(code) = v.get("error").and_then(Value::as_str)
    {
        let description = v.get("error_description").and_then(Value::as_str).unwrap_or("");
        if resp.status == 429 || resp.status >= 500 {
            return Err(upstream(resp, format!("{code}: {description}")));
        }
        return Err(Error::ImsRefused {
            status: resp.status,
            code: shorten(code),
            description: shorten(description),
        });
    }
    if resp.status != 200 {
        return Err(upstream(resp, String::new()));
    }
    let v = json?;
    let token = v
        .get("access_token")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty() && t.chars().all(|c| c.is_ascii_graphic()))
        .ok_or_else(|| bad("no usable access_token"))?;
    let expires_in = match v.get("expires_in") {
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) => s.parse().ok(),
        _ => None,
    }
    .ok_or_else(|| bad("no expires_in (or a negative one)"))?;
    let lifetime_ms = match unit {
        ExpiresIn::Seconds => expires_in.saturating_mul(1000),
        ExpiresIn::Milliseconds => expires_in,
    };
    if lifetime_ms == 0 || lifetime_ms > MAX_LIFETIME_MS {
        return Err(bad(&format!("absurd expires_in ({expires_in}, {unit:?})")));
    }
    let mut expires_at_ms = now_ms + lifetime_ms;
    if let Some(from_payload) = payload_expiry_ms(token)
        && from_payload < expires_at_ms
    {
        log::debug!(
            "token payload expires {} s before expires_in says",
            (expires_at_ms - from_payload) / 1000
        );
        expires_at_ms = from_payload;
    }
    if expires_at_ms <= now_ms {
        return Err(bad("the token is already expired"));
    }
    log::debug!(
        "IMS issued a token valid for {} s",
        (expires_at_ms - now_ms) / 1000
    );
    Ok(AccessToken {
        token: Secret::new(token),
        token_type: v
            .get("token_type")
            .and_then(Value::as_str)
            .unwrap_or("bearer")
            .to_string(),
        expires_at_ms,
        obtained_at_ms: now_ms,
    })
}

fn upstream(resp: &Response, detail: String) -> Error {
    Error::Upstream {
        service: Service::Ims,
        status: resp.status,
        detail: shorten(&detail),
        retry_after: resp.retry_after.clone(),
    }
}

/// IMS's texts, quoted scrubbed of the activation's secrets and cut to length.
fn shorten(s: &str) -> String {
    crate::scrub::excerpt(s, crate::error::MAX_QUOTE)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resp(status: u16, body: &str) -> Response {
        Response {
            status,
            body: body.as_bytes().to_vec(),
            retry_after: None,
            content_type: Some("application/json".into()),
            debug_id: None,
        }
    }

    #[test]
    fn seconds_and_milliseconds_are_told_apart() {
        let now = 1_000_000;
        let s = parse_token_response(
            &resp(
                200,
                r#"{"access_token":"t","token_type":"bearer","expires_in":86399}"#,
            ),
            ExpiresIn::Seconds,
            now,
        )
        .unwrap();
        assert_eq!(s.expires_at_ms, now + 86_399_000);
        let ms = parse_token_response(
            &resp(200, r#"{"access_token":"t","expires_in":86399999}"#),
            ExpiresIn::Milliseconds,
            now,
        )
        .unwrap();
        assert_eq!(ms.expires_at_ms, now + 86_399_999);
        // The exchange's milliseconds read as seconds would be 1000 days: refused, not cached.
        assert!(
            parse_token_response(
                &resp(200, r#"{"access_token":"t","expires_in":86399999}"#),
                ExpiresIn::Seconds,
                now
            )
            .is_err()
        );
    }

    #[test]
    fn ims_errors_quote_code_and_description() {
        let e = parse_token_response(
            &resp(
                401,
                r#"{"error":"invalid_client","error_description":"invalid client_secret parameter"}"#,
            ),
            ExpiresIn::Seconds,
            0,
        )
        .unwrap_err();
        assert_eq!(e.status_code(), 502);
        assert_eq!(
            e.to_string(),
            "IMS refused the credentials (HTTP 401): invalid_client: invalid client_secret parameter"
        );
    }

    #[test]
    fn odd_answers_are_502s() {
        for (status, body) in [
            (200, "<html>"),
            (200, r#"{"token_type":"bearer"}"#),
            (200, r#"{"access_token":"t","expires_in":-5}"#),
            (200, r#"{"access_token":"t","expires_in":0}"#),
            (500, "oops"),
            (
                503,
                r#"{"error":"internal_error","error_description":"Please try again later"}"#,
            ),
        ] {
            let e = parse_token_response(&resp(status, body), ExpiresIn::Seconds, 0).unwrap_err();
            assert_eq!(e.status_code(), 502, "{body}: {e}");
        }
    }
}
