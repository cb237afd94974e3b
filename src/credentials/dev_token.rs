//! A developer token (AEM Developer Console → Local token): a bearer token used as is, for at
//! most 24 hours, with no IMS call.

use serde_json::Value;

use crate::access_token::{AccessToken, payload_expiry_ms};
use crate::error::Error;
use crate::params::{InputCheck, Kind, check_string};
use crate::secret::Secret;
use crate::time::Clock;

use super::{AuthMethod, CacheKey};

/// The input.
pub const INPUT: &str = "AEM_DEV_TOKEN";

/// A developer token.
#[derive(Debug)]
pub struct DevToken {
    /// The bearer token.
    pub token: Secret,
    /// Its expiry from its own payload, in Unix milliseconds, when it says.
    pub expires_at_ms: Option<u64>,
}

/// Developer tokens last 24 hours at most; one whose payload does not say is given an hour.
const UNKNOWN_LIFETIME_MS: u64 = 3_600_000;

impl DevToken {
    /// The token itself decides the token.
    pub fn cache_key(&self) -> CacheKey {
        CacheKey::of(AuthMethod::DevToken, &[self.token.expose().as_bytes()])
    }

    /// The token as an access token: no IMS call.
    pub fn fetch(&self, clock: &Clock) -> AccessToken {
        let now = clock.now_ms();
        AccessToken {
            token: self.token.clone(),
            token_type: "bearer".into(),
            expires_at_ms: self.expires_at_ms.unwrap_or(now + UNKNOWN_LIFETIME_MS),
            obtained_at_ms: now,
        }
    }
}

/// Reads `AEM_DEV_TOKEN`: the token itself (optionally prefixed `Bearer `), or the Developer
/// Console's JSON holding `accessToken` (as an object or a JSON string). One that has expired by
/// `clock` is refused by name.
pub fn from_params(
    params: &crate::params::Params,
    check: &mut InputCheck,
    clock: &Clock,
) -> Option<DevToken> {
    let text = match params.get(INPUT) {
        Some(Value::Object(obj)) => access_token(obj, check)?,
        Some(Value::String(s)) if s.trim_start().starts_with('{') => match serde_json::from_str::<Value>(s) {
            Ok(Value::Object(obj)) => access_token(&obj, check)?,
            _ => {
                check.invalid(Error::invalid(
                    INPUT,
                    "looks like JSON but does not parse as an object",
                ));
                return None;
            }
        },
        _ => check.required(INPUT, Kind::Secret).to_string(),
    };
    if text.is_empty() {
        return None;
    }
    let token = text.strip_prefix("Bearer ").unwrap_or(&text).trim().to_string();
    if token.chars().any(|c| c.is_whitespace()) {
        check.invalid(Error::invalid(INPUT, "must be a bearer token without spaces"));
        return None;
    }
    let expires_at_ms = payload_expiry_ms(&token);
    if expires_at_ms.is_some_and(|at| at <= clock.now_ms()) {
        check.invalid(Error::invalid(
            INPUT,
            "has expired (developer tokens last 24 hours): get a new one from the AEM Developer Console",
        ));
        return None;
    }
    Some(DevToken {
        token: Secret::new(token),
        expires_at_ms,
    })
}

fn access_token(obj: &serde_json::Map<String, Value>, check: &mut InputCheck) -> Option<String> {
    let label = format!("{INPUT}.accessToken");
    match obj.get("accessToken") {
        Some(Value::String(s)) => match check_string(&label, s, Kind::Secret) {
            Ok(Some(s)) => Some(s.to_string()),
            Ok(None) => {
                check.missing(label);
                None
            }
            Err(e) => {
                check.invalid(e);
                None
            }
        },
        Some(_) => {
            check.invalid(Error::invalid(label, "must be a string"));
            None
        }
        None => {
            check.missing(label);
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::Params;
    use serde_json::json;

    fn parse(v: Value) -> Result<DevToken, Error> {
        let Value::Object(map) = v else { panic!("object") };
        let params = Params::new(&map);
        let mut check = InputCheck::new(params);
        let t = from_params(&params, &mut check, &Clock::system());
        check.finish()?;
        t.ok_or_else(|| Error::Internal("none".into()))
    }

    #[test]
    fn plain_bearer_and_console_json_all_work() {
        for v in [
            json!("tok123"),
            json!("Bearer tok123"),
            json!({"accessToken": "tok123", "expiresIn": 86400}),
            json!("{\"accessToken\":\"tok123\"}"),
        ] {
            assert_eq!(
                parse(json!({ "AEM_DEV_TOKEN": v })).unwrap().token.expose(),
                "tok123"
            );
        }
    }

    #[test]
    fn json_without_the_token_names_the_field() {
        let e = parse(json!({"AEM_DEV_TOKEN": {"integration": {}}})).unwrap_err();
        assert_eq!(e.to_string(), "missing parameter(s) 'AEM_DEV_TOKEN.accessToken'");
    }
}
