//! The signed JWT assertion of the Service Account (JWT) exchange, as `@adobe/jwt-auth` builds it.

use crate::credentials::private_key::RsaPrivateKey;
use crate::error::Error;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};

/// Lifetime of the assertion: 5 minutes, as @adobe/jwt-auth (IMS allows at most 24 h).
pub const ASSERTION_LIFETIME_SECS: u64 = 300;

/// base64url of `{"alg":"RS256","typ":"JWT"}`, the only header we ever send.
const HEADER_B64: &str = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9";

/// Normalises metascopes: split on commas, trim, drop empties; an item that is already a URL
/// (`https://…`, or `http://…` for an allow-listed local IMS) is used as is, anything else
/// becomes "{ims_base}/s/{item}". Never double-prefix.
///
/// A JSON array of strings (`["a","b"]`, which aio-lib-ims-jwt accepts) is read as its items.
/// Duplicates are dropped: each becomes a JSON object key.
pub fn metascope_claims(ims_base: &str, metascopes: &str) -> Vec<String> {
    let base = ims_base.trim_end_matches('/');
    let items: Vec<String> = match serde_json::from_str::<Vec<String>>(metascopes.trim()) {
        Ok(array) => array,
        Err(_) => metascopes.split(',').map(str::to_owned).collect(),
    };
    let mut claims: Vec<String> = Vec::new();
    for item in &items {
        let item = item.trim();
        if item.is_empty() {
            continue;
        }
        let claim = if item.starts_with("https://") || item.starts_with("http://") {
            item.to_owned()
        } else {
            format!("{base}/s/{item}")
        };
        if !claims.contains(&claim) {
            claims.push(claim);
        }
    }
    claims
}

/// The claims Adobe's @adobe/jwt-auth sends.
#[derive(Debug, Clone, Copy)]
pub struct AssertionClaims<'a> {
    /// IMS origin, no trailing slash, e.g. `https://ims-na1.adobelogin.com`.
    pub ims_base: &'a str,
    /// The integration's client id (API key); the audience is `{ims_base}/c/{client_id}`.
    pub client_id: &'a str,
    /// IMS organisation id, `…@AdobeOrg` (the issuer).
    pub org_id: &'a str,
    /// Technical account id, `…@techacct.adobe.com` (the subject).
    pub technical_account_id: &'a str,
    /// Full metascope claim names, from [`metascope_claims`].
    pub metascopes: &'a [String],
}

/// Builds and signs `base64url(header).base64url(claims).base64url(sig)`; header exactly
/// {"alg":"RS256","typ":"JWT"}; claims: exp = now + lifetime (integer), iat = now, iss = org,
/// sub = technical account, aud = "{ims_base}/c/{client_id}", and "{claim}": true for each
/// metascope. base64url without padding.
pub fn signed_assertion(
    key: &RsaPrivateKey,
    claims: &AssertionClaims,
    now_unix: u64,
) -> Result<String, Error> {
    let mut payload = Map::new();
    // IMS rejects a non-integer exp, so both times stay u64.
    payload.insert("exp".into(), (now_unix + ASSERTION_LIFETIME_SECS).into());
    payload.insert("iat".into(), now_unix.into());
    payload.insert("iss".into(), claims.org_id.into());
    payload.insert("sub".into(), claims.technical_account_id.into());
    payload.insert(
        "aud".into(),
        format!("{}/c/{}", claims.ims_base.trim_end_matches('/'), claims.client_id).into(),
    );
    for scope in claims.metascopes {
        payload.insert(scope.clone(), Value::Bool(true));
    }
    let payload = serde_json::to_vec(&Value::Object(payload))
        .map_err(|_| Error::Internal("could not serialise the JWT claims".into()))?;

    let mut jwt = String::with_capacity(HEADER_B64.len() + payload.len() * 4 / 3 + 360);
    jwt.push_str(HEADER_B64);
    jwt.push('.');
    URL_SAFE_NO_PAD.encode_string(&payload, &mut jwt);
    let signature = key.sign_rs256(jwt.as_bytes())?;
    jwt.push('.');
    URL_SAFE_NO_PAD.encode_string(&signature, &mut jwt);
    Ok(jwt)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::json;

    const PROD: &str = "https://ims-na1.adobelogin.com";
    const STAGE: &str = "https://ims-na1-stg1.adobelogin.com";

    #[test]
    fn header_constant_is_the_exact_header() {
        assert_eq!(
            URL_SAFE_NO_PAD.decode(HEADER_B64).unwrap(),
            br#"{"alg":"RS256","typ":"JWT"}"#
        );
    }

    #[test]
    fn metascopes_are_normalised() {
        let full = |s: &str| format!("{PROD}/s/{s}");
        assert_eq!(
            metascope_claims(PROD, "ent_aem_cloud_sdk"),
            [full("ent_aem_cloud_sdk")]
        );
        assert_eq!(
            metascope_claims(PROD, " ent_aem_cloud_sdk , ent_cloudmgr_sdk ,"),
            [full("ent_aem_cloud_sdk"), full("ent_cloudmgr_sdk")]
        );
        assert_eq!(
            metascope_claims(
                PROD,
                "https://ims-na1.adobelogin.com/s/ent_analytics_bulk_ingest_sdk,ent_x"
            ),
            [full("ent_analytics_bulk_ingest_sdk"), full("ent_x")]
        );
        assert_eq!(metascope_claims(PROD, ",, ,"), Vec::<String>::new());
        assert_eq!(metascope_claims(PROD, ""), Vec::<String>::new());
        assert_eq!(metascope_claims(STAGE, "ent_x,"), [format!("{STAGE}/s/ent_x")]);
        assert_eq!(
            metascope_claims(&format!("{STAGE}/"), "ent_x"),
            [format!("{STAGE}/s/ent_x")]
        );
        // A full URL for another host is the caller's choice; keep it verbatim.
        assert_eq!(
            metascope_claims(PROD, &format!("{STAGE}/s/ent_x")),
            [format!("{STAGE}/s/ent_x")]
        );
        assert_eq!(metascope_claims(PROD, "ent_x,ent_x, ent_x"), [full("ent_x")]);
        assert_eq!(
            metascope_claims(PROD, r#"["ent_x", " https://ims-na1.adobelogin.com/s/ent_y "]"#),
            [full("ent_x"), full("ent_y")]
        );
    }

    #[test]
    fn signed_assertion_verifies_and_carries_the_claims() {
        let Some(pem) = crate::credentials::private_key::tests::rsa2048_pkcs1() else {
            return;
        };
        let key = RsaPrivateKey::parse("JWT_PRIVATE_KEY", pem).unwrap();
        let scopes = metascope_claims(PROD, "ent_aem_cloud_sdk,ent_cloudmgr_sdk");
        let claims = AssertionClaims {
            ims_base: PROD,
            client_id: "cm-p123-e1234",
            org_id: "1234@AdobeOrg",
            technical_account_id: "ABCDAE10A495E8C@techacct.adobe.com",
            metascopes: &scopes,
        };
        let now = 1_767_225_300;
        let jwt = signed_assertion(&key, &claims, now).unwrap();

        let parts: Vec<&str> = jwt.split('.').collect();
        assert_eq!(parts.len(), 3);
        assert!(!jwt.contains('=') && !jwt.contains('+') && !jwt.contains('/'));
        let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
        assert_eq!(header, json!({"alg": "RS256", "typ": "JWT"}));

        let payload: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        assert_eq!(
            payload,
            json!({
                "exp": 1_767_225_600u64,
                "iat": 1_767_225_300u64,
                "iss": "1234@AdobeOrg",
                "sub": "ABCDAE10A495E8C@techacct.adobe.com",
                "aud": "https://ims-na1.adobelogin.com/c/cm-p123-e1234",
                "https://ims-na1.adobelogin.com/s/ent_aem_cloud_sdk": true,
                "https://ims-na1.adobelogin.com/s/ent_cloudmgr_sdk": true,
            })
        );
        assert!(payload["exp"].is_u64());
        assert_eq!(
            payload["exp"].as_u64().unwrap() - payload["iat"].as_u64().unwrap(),
            300
        );

        let signature = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
        let public = ring::signature::UnparsedPublicKey::new(
            &ring::signature::RSA_PKCS1_2048_8192_SHA256,
            key.public_key_der(),
        );
        let signed = &jwt[..parts[0].len() + 1 + parts[1].len()];
        public.verify(signed.as_bytes(), &signature).unwrap();
        // The signature covers the claims.
        let other = signed_assertion(&key, &claims, now + 1).unwrap();
        let other_signed = &other[..other.rfind('.').unwrap()];
        assert!(public.verify(other_signed.as_bytes(), &signature).is_err());
    }
}
