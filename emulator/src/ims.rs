//! Adobe IMS: `/ims/token/v3` (OAuth Server-to-Server) and `/ims/exchange/jwt` (Service
//! Account JWT), and the access tokens they mint.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::signature::{RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};
use serde_json::{Map, Value, json};

use super::form::{media_type, multipart_boundary, parse_multipart, parse_urlencoded};
use super::response::Response;
use super::state::{IssuedToken, State};
use super::{JwtClient, RecordedRequest};

/// IMS accepts JWTs whose `exp` is this far off the server clock.
const CLOCK_SKEW_MS: u64 = 30_000;
/// Longest JWT lifetime IMS accepts ("up to 24 hours from time of issue").
const MAX_JWT_LIFETIME_MS: u64 = 24 * 60 * 60 * 1000;

/// The OAuth2-style error body every IMS token endpoint uses.
pub(crate) fn ims_error(status: u16, error: &str, description: &str) -> Response {
    Response::json(status, &json!({"error": error, "error_description": description}))
}

fn field<'a>(form: &'a [(String, String)], name: &str) -> Option<&'a str> {
    form.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

fn method_not_allowed() -> Response {
    ims_error(405, "invalid_request", "Method not allowed; use POST.").header("allow", "POST")
}

/// `POST /ims/token/v3`, `grant_type=client_credentials`.
pub(crate) fn token_v3(state: &State, request: &RecordedRequest) -> Response {
    if request.method != "POST" {
        return method_not_allowed();
    }
    let content_type = media_type(request.header("content-type").unwrap_or(""));
    if content_type != "application/x-www-form-urlencoded" {
        return ims_error(
            400,
            "invalid_request",
            "Content-Type must be application/x-www-form-urlencoded",
        );
    }
    let form = parse_urlencoded(&request.body);
    if field(&form, "grant_type") != Some("client_credentials") {
        return ims_error(
            400,
            "unsupported_grant_type",
            "grant_type must be client_credentials",
        );
    }
    let Some(client) = field(&form, "client_id").and_then(|id| state.oauth_client(id)) else {
        return ims_error(400, "invalid_client", "invalid client_id parameter");
    };
    if field(&form, "client_secret") != Some(client.client_secret.as_str()) {
        return ims_error(401, "invalid_client", "invalid client_secret parameter");
    }
    let requested: Vec<&str> = field(&form, "scope")
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    if let Some(bad) = requested.iter().find(|s| !client.scopes.iter().any(|c| c == *s)) {
        return ims_error(
            400,
            "invalid_scope",
            &format!("Invalid scope ({bad}): not allowed for this client."),
        );
    }
    let minted = mint_token(
        state,
        &client.client_id,
        &client.org_id,
        &format!("{}@AdobeID", client.client_id),
        &requested.join(","),
    );
    match minted {
        Some((token, http_lifetime_ms)) => Response::json(
            200,
            &json!({
                "access_token": token,
                "token_type": "bearer",
                "expires_in": http_lifetime_ms / 1000,
            }),
        ),
        None => ims_error(500, "internal_error", "Please try again later"),
    }
}

/// `POST /ims/exchange/jwt` (with or without trailing slash), urlencoded or multipart.
pub(crate) fn exchange_jwt(state: &State, request: &RecordedRequest) -> Response {
    if request.method != "POST" {
        return method_not_allowed();
    }
    let raw_type = request.header("content-type").unwrap_or("");
    let form = match media_type(raw_type).as_str() {
        "application/x-www-form-urlencoded" => parse_urlencoded(&request.body),
        "multipart/form-data" => {
            let parsed =
                multipart_boundary(raw_type).and_then(|boundary| parse_multipart(&request.body, &boundary));
            match parsed {
                Some(form) => form,
                None => {
                    return ims_error(400, "invalid_request", "Malformed multipart/form-data body");
                }
            }
        }
        _ => {
            return ims_error(
                400,
                "invalid_request",
                "Content-Type must be application/x-www-form-urlencoded or multipart/form-data",
            );
        }
    };
    let Some(client) = field(&form, "client_id").and_then(|id| state.jwt_client(id)) else {
        return ims_error(400, "invalid_client", "invalid client_id parameter");
    };
    if field(&form, "client_secret") != Some(client.client_secret.as_str()) {
        return ims_error(401, "invalid_client", "invalid client_secret parameter");
    }
    let Some(jwt) = field(&form, "jwt_token").filter(|t| !t.is_empty()) else {
        return ims_error(400, "invalid_token", "missing jwt_token parameter");
    };
    let claims = match verify_jwt(jwt, &client, state.now_ms()) {
        Ok(claims) => claims,
        Err(rejection) => return ims_error(400, rejection.error, &rejection.description),
    };
    state.set_last_jwt_claims(&client.client_id, claims);
    let minted = mint_token(
        state,
        &client.client_id,
        &client.org_id,
        &client.technical_account_id,
        &client.metascopes.join(","),
    );
    match minted {
        Some((token, http_lifetime_ms)) => Response::json(
            200,
            &json!({
                "token_type": "bearer",
                "access_token": token,
                "expires_in": http_lifetime_ms,
            }),
        ),
        None => ims_error(500, "internal_error", "Please try again later"),
    }
}

/// Mints and stores an access token shaped like a real IMS one. Returns the token and the
/// lifetime (ms) the HTTP response should announce; `None` if the OS has no randomness.
fn mint_token(
    state: &State,
    client_id: &str,
    org_id: &str,
    user_id: &str,
    scope: &str,
) -> Option<(String, u64)> {
    let (http_lifetime, payload_lifetime) = state.token_lifetimes();
    let http_ms = http_lifetime.as_millis() as u64;
    let payload_ms = payload_lifetime.as_millis() as u64;
    let now = state.now_ms();
    let header = json!({
        "alg": "RS256",
        "x5u": "ims_na1-key-at-1.cer",
        "kid": "ims_na1-key-at-1",
        "itt": "at",
    });
    let payload = json!({
        "id": format!("{now}_{}_ue1", state.random_hex(16)?),
        "type": "access_token",
        "client_id": client_id,
        "user_id": user_id,
        "as": "ims-na1",
        "aa_id": user_id,
        "ctp": 0,
        "moi": state.random_hex(4)?,
        "sid": format!("{now}_{}", state.random_hex(8)?),
        "pba": "MedSecNoEV,LowSec",
        "org_id": org_id,
        "scope": scope,
        "created_at": now.to_string(),
        "expires_in": payload_ms.to_string(),
    });
    // The random "signature" is what makes the token unguessable; nothing verifies it.
    let signature = state.random_bytes(256)?;
    let token = format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(payload.to_string()),
        URL_SAFE_NO_PAD.encode(signature),
    );
    state.store_token(
        token.clone(),
        IssuedToken {
            client_id: client_id.to_string(),
            org_id: org_id.to_string(),
            // Reject after the earlier of the two lifetimes, so a client that trusts only the
            // later one gets a 401 and the test notices.
            expires_at_ms: now.saturating_add(http_ms.min(payload_ms)),
        },
    );
    Some((token, http_ms))
}

/// Why a JWT was rejected (always HTTP 400).
#[derive(Debug)]
pub(crate) struct JwtRejection {
    pub error: &'static str,
    pub description: String,
}

fn reject(error: &'static str, description: impl Into<String>) -> JwtRejection {
    JwtRejection {
        error,
        description: description.into(),
    }
}

fn decode_segment(segment: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(segment.trim_end_matches('=')).ok()
}

fn decode_json_object(segment: &str) -> Option<Map<String, Value>> {
    match serde_json::from_slice(&decode_segment(segment)?).ok()? {
        Value::Object(map) => Some(map),
        _ => None,
    }
}

/// Splits `scheme://host[:port]/path` into (origin, path). The path keeps its leading `/`.
fn split_origin(url: &str) -> Option<(&str, &str)> {
    let scheme_end = url.find("://")?;
    if scheme_end == 0 {
        return None;
    }
    let host_start = scheme_end + 3;
    let path_start = host_start + url[host_start..].find('/')?;
    if path_start == host_start {
        return None;
    }
    Some((&url[..path_start], &url[path_start..]))
}

/// The bare scope name of a binding entry (`ent_x` or `https://ims/s/ent_x`).
fn bare_scope(entry: &str) -> &str {
    let entry = entry.trim();
    match entry.rsplit_once("/s/") {
        Some((_, scope)) => scope,
        None => entry,
    }
}

/// Registered claim names that are not metascopes.
const REGISTERED_CLAIMS: &[&str] = &["exp", "iss", "sub", "aud", "iat", "nbf", "jti"];

/// Verifies a Service Account JWT the way IMS does and returns its claims.
pub(crate) fn verify_jwt(jwt: &str, client: &JwtClient, now_ms: u64) -> Result<Value, JwtRejection> {
    let jwt = jwt.trim();
    let segments: Vec<&str> = jwt.split('.').collect();
    let [header_b64, payload_b64, signature_b64] = segments[..] else {
        return Err(reject(
            "invalid_token",
            "The JWT is not a signed JWT (header.payload.signature).",
        ));
    };
    let header = decode_json_object(header_b64)
        .ok_or_else(|| reject("invalid_token", "The JWT header could not be decoded."))?;
    if header.get("alg").and_then(Value::as_str) != Some("RS256") {
        return Err(reject("invalid_token", "The JWT must be signed with RS256."));
    }
    let claims = decode_json_object(payload_b64)
        .ok_or_else(|| reject("invalid_token", "The JWT payload could not be decoded."))?;
    let signature = decode_segment(signature_b64)
        .ok_or_else(|| reject("invalid_token", "The JWT signature could not be decoded."))?;
    let signing_input = &jwt[..header_b64.len() + 1 + payload_b64.len()];
    UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, &client.public_key_der)
        .verify(signing_input.as_bytes(), &signature)
        .map_err(|_| {
            reject(
                "invalid_signature",
                "The signature of the JWT does not match any certificate of the integration.",
            )
        })?;

    // `exp`: an integer (a float is refused like IMS does), not past, at most 24 h ahead.
    let exp = match claims.get("exp") {
        Some(Value::Number(n)) if n.is_i64() || n.is_u64() => n.as_i64().unwrap_or(i64::MAX),
        Some(_) => {
            return Err(reject(
                "invalid_token",
                "The exp field of the JWT is not an integer.",
            ));
        }
        None => return Err(reject("invalid_token", "The JWT has no exp claim.")),
    };
    let exp_ms = u64::try_from(exp).unwrap_or(0).saturating_mul(1000);
    if exp_ms.saturating_add(CLOCK_SKEW_MS) <= now_ms {
        return Err(reject("invalid_token", "JWT token is expired."));
    }
    if exp_ms > now_ms + MAX_JWT_LIFETIME_MS + CLOCK_SKEW_MS {
        return Err(reject(
            "invalid_token",
            "The exp of the JWT is more than 24 hours in the future.",
        ));
    }
    let string_claim = |name: &str| claims.get(name).and_then(Value::as_str);
    if string_claim("iss") != Some(client.org_id.as_str()) {
        return Err(reject(
            "invalid_token",
            "The iss of the JWT is not the integration's organization.",
        ));
    }
    if string_claim("sub") != Some(client.technical_account_id.as_str()) {
        return Err(reject(
            "invalid_token",
            "The sub of the JWT is not the integration's technical account.",
        ));
    }
    let aud = string_claim("aud").ok_or_else(|| reject("invalid_token", "The JWT has no aud claim."))?;
    let expected_path = format!("/c/{}", client.client_id);
    let (ims_origin, _) = split_origin(aud)
        .filter(|(_, path)| *path == expected_path)
        .ok_or_else(|| reject("invalid_token", "The aud of the JWT is not {ims}/c/{client_id}."))?;

    let mut metascopes = 0;
    for (name, value) in &claims {
        if REGISTERED_CLAIMS.contains(&name.as_str()) {
            continue;
        }
        let Some((origin, path)) = split_origin(name) else {
            continue; // not a URL claim: IMS ignores unknown claims
        };
        let Some(scope) = path.strip_prefix("/s/") else {
            continue;
        };
        if origin != ims_origin {
            return Err(reject(
                "invalid_scope",
                format!("Metascope {name} is not on the IMS host of the aud claim."),
            ));
        }
        if *value != Value::Bool(true) {
            return Err(reject(
                "invalid_token",
                format!("Metascope claim {name} must be true."),
            ));
        }
        if !client.metascopes.iter().any(|m| bare_scope(m) == scope) {
            return Err(reject(
                "invalid_scope",
                "The metascopes in the JWT are not a subset of the metascopes in the binding.",
            ));
        }
        metascopes += 1;
    }
    if metascopes == 0 {
        return Err(reject("invalid_scope", "The JWT has no metascope claims."));
    }
    Ok(Value::Object(claims))
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

    use super::*;
    use crate::keys;
    use ring::signature::RsaKeyPair;

    const ORG: &str = "ORG1@AdobeOrg";
    const TECH: &str = "TECH1@techacct.adobe.com";
    const IMS: &str = "https://ims-na1.adobelogin.com";

    /// Signs `claims` as an RS256 JWT with the 2048-bit test key.
    pub(crate) fn sign(claims: &Value, key: &keys::TestKey) -> String {
        let pair = RsaKeyPair::from_pkcs8(&key.pkcs8_der()).unwrap();
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256","typ":"JWT"}"#),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let mut sig = vec![0; pair.public().modulus_len()];
        pair.sign(
            &ring::signature::RSA_PKCS1_SHA256,
            &ring::rand::SystemRandom::new(),
            input.as_bytes(),
            &mut sig,
        )
        .unwrap();
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
    }

    fn client(key: &keys::TestKey) -> JwtClient {
        JwtClient {
            client_id: "cid".into(),
            client_secret: "secret".into(),
            org_id: ORG.into(),
            technical_account_id: TECH.into(),
            metascopes: vec!["ent_a".into(), format!("{IMS}/s/ent_b")],
            public_key_der: key.public_der.clone(),
        }
    }

    fn good_claims(now_s: u64) -> Value {
        json!({
            "exp": now_s + 300,
            "iss": ORG,
            "sub": TECH,
            "aud": format!("{IMS}/c/cid"),
            format!("{IMS}/s/ent_a"): true,
            format!("{IMS}/s/ent_b"): true,
        })
    }

    fn check(claims: &Value) -> Result<Value, JwtRejection> {
        let key = keys::rsa(2048);
        let now_ms = 1_700_000_000_000;
        verify_jwt(&sign(claims, &key), &client(&key), now_ms)
    }

    fn error_of(claims: Value) -> &'static str {
        check(&claims).err().map(|r| r.error).unwrap_or("accepted")
    }

    #[test]
    fn accepts_a_good_jwt() {
        let claims = good_claims(1_700_000_000);
        assert_eq!(check(&claims).unwrap(), claims);
        // Any origin is fine as long as aud and metascopes agree.
        let local = json!({
            "exp": 1_700_000_000u64 + 3600 * 8, "iss": ORG, "sub": TECH,
            "aud": "http://127.0.0.1:1234/c/cid",
            "http://127.0.0.1:1234/s/ent_a": true,
        });
        assert!(check(&local).is_ok());
    }

    #[test]
    fn rejects_bad_jwts() {
        let now = 1_700_000_000u64;
        let with = |k: &str, v: Value| {
            let mut c = good_claims(now);
            c[k] = v;
            c
        };
        let without = |k: &str| {
            let mut c = good_claims(now);
            c.as_object_mut().unwrap().remove(k);
            c
        };
        assert_eq!(
            error_of(with("aud", json!(format!("{IMS}/c/other")))),
            "invalid_token"
        );
        assert_eq!(
            error_of(with("aud", json!(format!("{IMS}/c/cid/")))),
            "invalid_token"
        );
        assert_eq!(
            error_of(with("aud", json!("https://ims-na1-stg1.adobelogin.com/c/cid"))),
            "invalid_scope"
        );
        assert_eq!(
            error_of(with("exp", json!(now + 24 * 3600 + 31))),
            "invalid_token"
        );
        assert_eq!(error_of(with("exp", json!(now + 24 * 3600 + 29))), "accepted");
        assert_eq!(error_of(with("exp", json!(now - 31))), "invalid_token");
        assert_eq!(error_of(with("exp", json!(now - 29))), "accepted");
        assert_eq!(
            error_of(with("exp", json!((now + 60) as f64 + 0.5))),
            "invalid_token"
        );
        assert_eq!(
            error_of(with("exp", json!((now + 60).to_string()))),
            "invalid_token"
        );
        assert_eq!(error_of(without("exp")), "invalid_token");
        assert_eq!(error_of(with("iss", json!("OTHER@AdobeOrg"))), "invalid_token");
        assert_eq!(
            error_of(with("sub", json!("x@techacct.adobe.com"))),
            "invalid_token"
        );
        assert_eq!(
            error_of(with(&format!("{IMS}/s/ent_c"), json!(true))),
            "invalid_scope"
        );
        assert_eq!(
            error_of(with(&format!("{IMS}/s/{IMS}/s/ent_a"), json!(true))),
            "invalid_scope"
        );
        let mut none = good_claims(now);
        none.as_object_mut().unwrap().retain(|k, _| !k.contains("/s/"));
        assert_eq!(error_of(none), "invalid_scope");
    }

    #[test]
    fn rejects_bad_signatures_and_formats() {
        let key = keys::rsa(2048);
        let now_ms = 1_700_000_000_000;
        let jwt = sign(&good_claims(1_700_000_000), &key);
        // Signed by a different key.
        let mut other = client(&key);
        other.public_key_der = keys::rsa(3072).public_der;
        let err = verify_jwt(&jwt, &other, now_ms).unwrap_err();
        assert_eq!(err.error, "invalid_signature");
        // Tampered payload.
        let parts: Vec<&str> = jwt.split('.').collect();
        let mut claims = good_claims(1_700_000_000);
        claims["sub"] = json!("evil");
        let forged = format!(
            "{}.{}.{}",
            parts[0],
            URL_SAFE_NO_PAD.encode(claims.to_string()),
            parts[2]
        );
        let err = verify_jwt(&forged, &client(&key), now_ms).unwrap_err();
        assert_eq!(err.error, "invalid_signature");
        // alg none / HS256.
        let none = format!("{}.{}.", URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#), parts[1]);
        assert_eq!(
            verify_jwt(&none, &client(&key), now_ms).unwrap_err().error,
            "invalid_token"
        );
        assert_eq!(
            verify_jwt("a.b", &client(&key), now_ms).unwrap_err().error,
            "invalid_token"
        );
        assert_eq!(
            verify_jwt("garbage", &client(&key), now_ms).unwrap_err().error,
            "invalid_token"
        );
    }

    #[test]
    fn origin_splitting() {
        assert_eq!(
            split_origin("https://ims-na1.adobelogin.com/c/x"),
            Some(("https://ims-na1.adobelogin.com", "/c/x"))
        );
        assert_eq!(
            split_origin("http://127.0.0.1:9/s/a"),
            Some(("http://127.0.0.1:9", "/s/a"))
        );
        assert_eq!(split_origin("https:///c/x"), None);
        assert_eq!(split_origin("ims/c/x"), None);
        assert_eq!(bare_scope("https://x/s/ent_a"), "ent_a");
        assert_eq!(bare_scope(" ent_a "), "ent_a");
    }
}
