//! An access token and the rules of its life: when it expires (the earlier of what IMS said and
//! what the token's own payload says) and when it is refreshed (ten minutes early).

use base64::Engine;
use serde_json::Value;

use crate::secret::Secret;

/// Refresh this long before expiry (or at half the lifetime when that is shorter): Adobe's
/// `aio-lib-ims` uses the same 10 minutes, and a token must outlive the call it is sent with.
pub const REFRESH_MARGIN_MS: u64 = 10 * 60 * 1000;

/// An access token and when it stops being good.
#[derive(Clone, PartialEq, Eq)]
pub struct AccessToken {
    /// The bearer token.
    pub token: Secret,
    /// `bearer`, as IMS says.
    pub token_type: String,
    /// Expiry, Unix milliseconds.
    pub expires_at_ms: u64,
    /// When we got it, Unix milliseconds.
    pub obtained_at_ms: u64,
}

impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessToken")
            .field("token", &self.token)
            .field("expires_at_ms", &self.expires_at_ms)
            .finish_non_exhaustive()
    }
}

impl AccessToken {
    /// When the cache stops handing it out: 10 minutes before expiry, or half-way through
    /// its life when that comes first.
    pub fn refresh_at_ms(&self) -> u64 {
        let lifetime = self.expires_at_ms.saturating_sub(self.obtained_at_ms);
        self.expires_at_ms - REFRESH_MARGIN_MS.min(lifetime / 2).min(self.expires_at_ms)
    }

    /// Whether it may still be used at `now_ms`.
    pub fn is_fresh(&self, now_ms: u64) -> bool {
        now_ms < self.refresh_at_ms()
    }
}

/// Expiry from the access token's own payload (IMS tokens are JWTs carrying `created_at` and
/// `expires_in`, both milliseconds, as strings or numbers). `None` when it does not decode.
pub fn payload_expiry_ms(token: &str) -> Option<u64> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let v: Value = serde_json::from_slice(&bytes).ok()?;
    let num = |k: &str| match v.get(k)? {
        Value::String(s) => s.parse::<u64>().ok(),
        Value::Number(n) => n.as_u64(),
        _ => None,
    };
    num("created_at")?.checked_add(num("expires_in")?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(obtained: u64, expires: u64) -> AccessToken {
        AccessToken {
            token: Secret::new("t"),
            token_type: "bearer".into(),
            expires_at_ms: expires,
            obtained_at_ms: obtained,
        }
    }

    #[test]
    fn refresh_comes_ten_minutes_early_or_at_half_life() {
        let day = 86_400_000;
        assert_eq!(token(0, day).refresh_at_ms(), day - REFRESH_MARGIN_MS);
        assert_eq!(token(0, 60_000).refresh_at_ms(), 30_000);
        assert!(token(0, day).is_fresh(day - REFRESH_MARGIN_MS - 1));
        assert!(!token(0, day).is_fresh(day - REFRESH_MARGIN_MS));
    }

    #[test]
    fn the_payload_expiry_decodes_strings_and_numbers() {
        let enc = |v: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
        let t = format!(
            "{}.{}.sig",
            enc("{}"),
            enc(r#"{"created_at":"1000","expires_in":"86400000"}"#)
        );
        assert_eq!(payload_expiry_ms(&t), Some(86_401_000));
        let t = format!("h.{}.s", enc(r#"{"created_at":5,"expires_in":5}"#));
        assert_eq!(payload_expiry_ms(&t), Some(10));
        assert_eq!(payload_expiry_ms("opaque-token"), None);
    }
}
