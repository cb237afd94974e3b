//! The signed JWT assertion of the Service Account (JWT) exchange, as `@adobe/jwt-auth` builds it.

use std::sync::Arc;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Header};
use serde_json::{Map, Value};

use super::jwt_ring;
use crate::credentials::private_key::RsaPrivateKey;
use crate::error::Error;

/// Lifetime of the assertion: 5 minutes, as @adobe/jwt-auth (IMS allows at most 24 h).
pub const ASSERTION_LIFETIME_SECS: u64 = 300;

/// `{"alg":"RS256","typ":"JWT"}`, in that order, as @adobe/jwt-auth (node-jsonwebtoken) writes
/// it. jsonwebtoken's `Header` writes `typ` first, so `typ` goes among the extras, which come
/// last.
fn header() -> Header {
    let mut header = Header::new(Algorithm::RS256);
    header.typ = None;
    header.extras.insert("typ", "JWT");
    header
}

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

/// Builds and signs `base64url(header).base64url(claims).base64url(sig)` with jsonwebtoken
/// (through the ring provider); header exactly {"alg":"RS256","typ":"JWT"}; claims: exp = now +
/// lifetime (integer), iat = now, iss = org, sub = technical account, aud =
/// "{ims_base}/c/{client_id}", and "{claim}": true for each metascope. base64url without padding.
pub fn signed_assertion(
    key: &Arc<RsaPrivateKey>,
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
    jwt_ring::install()?;
    let signed = jwt_ring::signing_with(key, || {
        jsonwebtoken::encode(&header(), &payload, key.encoding_key())
    });
    signed.map_err(|e| match e.kind() {
        ErrorKind::Signing(_) => key.signing_failed(),
        // No variant carries key material or claims: kinds and ring's fixed identifiers.
        _ => Error::Internal(format!("could not sign the JWT: {e}")),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use adobe_emulator::fixtures;
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use jsonwebtoken::EncodingKey;
    use ring::signature::{RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};
    use serde_json::json;

    const PROD: &str = "https://ims-na1.adobelogin.com";
    const STAGE: &str = "https://ims-na1-stg1.adobelogin.com";
    /// base64url of `{"alg":"RS256","typ":"JWT"}`, as @adobe/jwt-auth sends it.
    const ADOBE_HEADER_B64: &str = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9";

    /// A 2048-bit key generated in pure Rust (cached per test binary).
    fn test_key() -> Arc<RsaPrivateKey> {
        let pem = adobe_emulator::keys::rsa(2048).pkcs1_pem;
        Arc::new(RsaPrivateKey::parse("JWT_PRIVATE_KEY", &pem).unwrap())
    }

    /// The claims `assertion` signs at 1_767_225_300 with both AEM metascopes.
    fn expected_claims() -> Value {
        json!({
            "exp": 1_767_225_600u64,
            "iat": 1_767_225_300u64,
            "iss": "1234@AdobeOrg",
            "sub": "ABCDAE10A495E8C@techacct.adobe.com",
            "aud": "https://ims-na1.adobelogin.com/c/cm-p123-e1234",
            "https://ims-na1.adobelogin.com/s/ent_aem_cloud_sdk": true,
            "https://ims-na1.adobelogin.com/s/ent_cloudmgr_sdk": true,
        })
    }

    fn assertion<'a>(scopes: &'a [String]) -> AssertionClaims<'a> {
        AssertionClaims {
            ims_base: PROD,
            client_id: "cm-p123-e1234",
            org_id: "1234@AdobeOrg",
            technical_account_id: "ABCDAE10A495E8C@techacct.adobe.com",
            metascopes: scopes,
        }
    }

    fn verify(key: &RsaPrivateKey, jwt: &str) -> Result<(), ring::error::Unspecified> {
        let (signed, signature) = jwt.rsplit_once('.').unwrap();
        let signature = URL_SAFE_NO_PAD.decode(signature).unwrap();
        UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, key.public_key_der())
            .verify(signed.as_bytes(), &signature)
    }

    #[test]
    fn header_is_exactly_adobes() {
        assert_eq!(
            serde_json::to_vec(&header()).unwrap(),
            br#"{"alg":"RS256","typ":"JWT"}"#
        );
        assert_eq!(
            URL_SAFE_NO_PAD.decode(ADOBE_HEADER_B64).unwrap(),
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
        let key = test_key();
        let scopes = metascope_claims(PROD, "ent_aem_cloud_sdk,ent_cloudmgr_sdk");
        let claims = assertion(&scopes);
        let now = 1_767_225_300;
        let jwt = signed_assertion(&key, &claims, now).unwrap();

        let parts: Vec<&str> = jwt.split('.').collect();
        assert_eq!(parts.len(), 3);
        assert!(!jwt.contains('=') && !jwt.contains('+') && !jwt.contains('/'));
        assert_eq!(parts[0], ADOBE_HEADER_B64);

        let payload: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        assert_eq!(payload, expected_claims());
        assert!(payload["exp"].is_u64());
        assert_eq!(
            payload["exp"].as_u64().unwrap() - payload["iat"].as_u64().unwrap(),
            300
        );
        assert_eq!(URL_SAFE_NO_PAD.decode(parts[2]).unwrap().len(), 256);
    }

    /// Sign with jsonwebtoken, verify with ring's public key; any change to what was signed
    /// breaks the signature.
    #[test]
    fn round_trip_verifies_with_ring_and_tampering_fails() {
        let key = test_key();
        let scopes = metascope_claims(PROD, "ent_aem_cloud_sdk");
        let jwt = signed_assertion(&key, &assertion(&scopes), 1_767_225_300).unwrap();
        verify(&key, &jwt).unwrap();

        let [header, payload, signature] = jwt.split('.').collect::<Vec<_>>()[..] else {
            panic!("not three segments: {jwt}")
        };
        let mut claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
        claims["sub"] = json!("someone-else@techacct.adobe.com");
        let forged = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap());
        assert!(verify(&key, &format!("{header}.{forged}.{signature}")).is_err());
        let none = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
        assert!(verify(&key, &format!("{none}.{payload}.{signature}")).is_err());
        let mut sig = URL_SAFE_NO_PAD.decode(signature).unwrap();
        sig[100] ^= 1;
        let sig = URL_SAFE_NO_PAD.encode(sig);
        assert!(verify(&key, &format!("{header}.{payload}.{sig}")).is_err());
        // Another key's signature over the same claims does not verify either.
        let other = Arc::new(RsaPrivateKey::parse("k", &adobe_emulator::keys::rsa(3072).pkcs8_pem).unwrap());
        let theirs = signed_assertion(&other, &assertion(&scopes), 1_767_225_300).unwrap();
        verify(&other, &theirs).unwrap();
        assert!(verify(&key, &theirs).is_err());
    }

    /// The token is byte for byte what signing `header.claims` with ring by hand gives (RS256 is
    /// deterministic): moving to jsonwebtoken changed nothing IMS sees.
    #[test]
    fn same_bytes_as_signing_by_hand_with_ring() {
        let key = test_key();
        let scopes = metascope_claims(PROD, "ent_aem_cloud_sdk,ent_cloudmgr_sdk");
        let claims = assertion(&scopes);
        let jwt = signed_assertion(&key, &claims, 1_767_225_300).unwrap();
        let payload = expected_claims();
        let signed = format!(
            "{ADOBE_HEADER_B64}.{}",
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&payload).unwrap())
        );
        let signature = URL_SAFE_NO_PAD.encode(key.sign_rs256(signed.as_bytes()).unwrap());
        assert_eq!(jwt, format!("{signed}.{signature}"));
    }

    /// DER that was not lent by `signed_assertion` (a library user calling jsonwebtoken after
    /// ims-action installed its provider) is parsed by the provider: PKCS#1 or PKCS#8.
    #[test]
    fn provider_signs_der_it_was_not_lent() {
        let test = adobe_emulator::keys::rsa(2048);
        let key = Arc::new(RsaPrivateKey::parse("k", &test.pkcs8_pem).unwrap());
        let scopes = metascope_claims(PROD, "ent_x");
        let ours = signed_assertion(&key, &assertion(&scopes), 1_767_225_300).unwrap();
        let claims: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(ours.split('.').nth(1).unwrap()).unwrap())
                .unwrap();

        let pkcs8 = test.pkcs8_der();
        let pkcs1 = key.encoding_key().as_bytes().to_vec();
        assert_ne!(pkcs1, pkcs8);
        for der in [pkcs1, pkcs8] {
            let theirs = jsonwebtoken::encode(&header(), &claims, &EncodingKey::from_rsa_der(&der)).unwrap();
            assert_eq!(theirs, ours);
        }
    }

    /// What the provider does not do is an error, never a panic.
    #[test]
    fn provider_refuses_what_it_does_not_do() {
        jwt_ring::install().unwrap();
        jwt_ring::install().unwrap();
        let claims = json!({"sub": "x"});
        let rsa = test_key();

        let hs256 = EncodingKey::from_secret(b"secret").unwrap();
        let err = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &hs256).unwrap_err();
        assert_eq!(err.kind(), &ErrorKind::UnsupportedAlgorithm);
        let err =
            jsonwebtoken::encode(&Header::new(Algorithm::PS256), &claims, rsa.encoding_key()).unwrap_err();
        assert_eq!(err.kind(), &ErrorKind::UnsupportedAlgorithm);

        let garbage = EncodingKey::from_rsa_der(b"not DER at all");
        let err = jsonwebtoken::encode(&header(), &claims, &garbage).unwrap_err();
        assert!(
            matches!(err.kind(), ErrorKind::InvalidRsaKey(why) if why.contains("EncodingKey")),
            "{err}"
        );

        let jwt = signed_assertion(&rsa, &assertion(&[]), 1_767_225_300).unwrap();
        let public = jsonwebtoken::DecodingKey::from_rsa_der(rsa.public_key_der());
        let validation = jsonwebtoken::Validation::new(Algorithm::RS256);
        let err = jsonwebtoken::decode::<Value>(&jwt, &public, &validation).unwrap_err();
        assert!(matches!(err.kind(), ErrorKind::Provider(_)), "{err}");
        let err =
            jsonwebtoken::jwk::Jwk::from_encoding_key(rsa.encoding_key(), Algorithm::RS256).unwrap_err();
        assert!(matches!(err.kind(), ErrorKind::Provider(_)), "{err}");
    }

    /// A key that parses but cannot sign is the caller's input: a 400 naming it.
    #[test]
    fn a_key_that_cannot_sign_is_named() {
        let good = test_key();
        let damaged = fixtures::with_damaged_dp(good.encoding_key().as_bytes());
        let pem = fixtures::pem("RSA PRIVATE KEY", &damaged);
        let key = Arc::new(RsaPrivateKey::parse("JWT_PRIVATE_KEY", &pem).unwrap());
        let err = signed_assertion(&key, &assertion(&[]), 1_767_225_300).unwrap_err();
        assert_eq!(err.status_code(), 400);
        assert_eq!(
            err.to_string(),
            "invalid parameter 'JWT_PRIVATE_KEY': is damaged (its parts do not match: signing failed)"
        );
    }
}
