//! Service Account (JWT) credentials: the `JWT_*` inputs. AEM service credentials
//! ([`super::aem_service`]) become the same thing.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Once, OnceLock};

use crate::access_token::AccessToken;
use crate::endpoint::BaseUrl;
use crate::error::Error;
use crate::http::{Budget, HttpClient};
use crate::params::{InputCheck, Kind, Params};
use crate::secret::Secret;

use super::ims::{ExpiresIn, request_token};
use super::jwt::{AssertionClaims, metascope_claims, signed_assertion};
use super::private_key::RsaPrivateKey;
use super::{AuthMethod, CacheKey};

/// The inputs, in the order a missing-input message names them.
pub const INPUTS: [&str; 6] = [
    "JWT_CLIENT_ID",
    "JWT_CLIENT_SECRET",
    "JWT_TECHNICAL_ACCOUNT_ID",
    "JWT_IMS_ORG",
    "JWT_METASCOPES",
    "JWT_PRIVATE_KEY",
];

/// Private keys are at most this long (an 8192-bit PEM, base64-encoded, is about 9 KiB).
pub const MAX_KEY_TEXT: usize = 64 * 1024;

/// A Service Account (JWT) credential, key parsed.
pub struct ServiceAccountCredentials {
    /// `Jwt` or `AemServiceCredentials`.
    pub method: AuthMethod,
    /// IMS base URL (allow-listed); also the origin of the `aud` and metascope claims.
    pub ims: BaseUrl,
    /// Client id (also the APIs' `x-api-key`).
    pub client_id: String,
    /// Client secret.
    pub client_secret: Secret,
    /// IMS organisation (`iss`).
    pub org_id: String,
    /// Technical account id (`sub`).
    pub technical_account_id: String,
    /// Metascope claim names, full URLs.
    pub metascopes: Vec<String>,
    /// The signing key, parsed once per process.
    pub private_key: Arc<RsaPrivateKey>,
    /// SHA-256 of the key text, for the token cache key.
    pub private_key_fingerprint: [u8; 32],
}

impl std::fmt::Debug for ServiceAccountCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceAccountCredentials")
            .field("method", &self.method)
            .field("ims", &self.ims)
            .field("client_id", &self.client_id)
            .field("org_id", &self.org_id)
            .field("technical_account_id", &self.technical_account_id)
            .field("metascopes", &self.metascopes)
            .finish_non_exhaustive()
    }
}

impl ServiceAccountCredentials {
    /// What decides its token: IMS host, client id, org, technical account, metascopes, and the
    /// secret and private key themselves (so that a rotated one gets a new token).
    pub fn cache_key(&self) -> CacheKey {
        CacheKey::of(
            self.method,
            &[
                self.ims.to_string().as_bytes(),
                self.client_id.as_bytes(),
                self.org_id.as_bytes(),
                self.technical_account_id.as_bytes(),
                self.metascopes.join(",").as_bytes(),
                self.client_secret.expose().as_bytes(),
                &self.private_key_fingerprint,
            ],
        )
    }

    /// A new token: sign the assertion `@adobe/jwt-auth` would, and `POST
    /// {ims}/ims/exchange/jwt` with it.
    pub fn fetch(&self, http: &HttpClient, budget: &Budget) -> Result<AccessToken, Error> {
        let origin = self.ims.origin();
        let claims = AssertionClaims {
            ims_base: &origin,
            client_id: &self.client_id,
            org_id: &self.org_id,
            technical_account_id: &self.technical_account_id,
            metascopes: &self.metascopes,
        };
        let now = budget.clock().now_unix() as u64;
        let jwt = Secret::new(signed_assertion(&self.private_key, &claims, now)?);
        let form = form_urlencoded::Serializer::new(String::new())
            .append_pair("client_id", &self.client_id)
            .append_pair("client_secret", self.client_secret.expose())
            .append_pair("jwt_token", jwt.expose())
            .finish();
        let url = self.ims.join("/ims/exchange/jwt");
        request_token(http, budget, url, form, "exchange/jwt", ExpiresIn::Milliseconds)
    }
}

/// Reads the `JWT_*` inputs.
pub fn from_params(
    _params: &Params,
    check: &mut InputCheck,
    ims: BaseUrl,
) -> Option<ServiceAccountCredentials> {
    warn_retired_once();
    let client_id = check.required(INPUTS[0], Kind::Id).to_string();
    let client_secret = Secret::new(check.required(INPUTS[1], Kind::Secret));
    let technical_account_id = check.required(INPUTS[2], Kind::Id).to_string();
    let org_id = check.required(INPUTS[3], Kind::Id).to_string();
    let metascopes_text = check.required(INPUTS[4], Kind::Text(8192));
    let key_text = check.required(INPUTS[5], Kind::Text(MAX_KEY_TEXT));
    let metascopes = metascope_claims(&ims.origin(), metascopes_text);
    if !metascopes_text.is_empty() && metascopes.is_empty() {
        check.missing(INPUTS[4]);
    }
    if key_text.is_empty() {
        return None;
    }
    let (private_key, private_key_fingerprint) = match parse_key_cached(INPUTS[5], key_text) {
        Ok(k) => k,
        Err(e) => {
            check.invalid(e);
            return None;
        }
    };
    Some(ServiceAccountCredentials {
        method: AuthMethod::Jwt,
        ims,
        client_id,
        client_secret,
        org_id,
        technical_account_id,
        metascopes,
        private_key,
        private_key_fingerprint,
    })
}

/// Adobe retired Service Account (JWT) credentials in 2025–2026: say so once per process.
fn warn_retired_once() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // ops: jwt-retired
        log::warn!(
            "Service Account (JWT) credentials are retired by Adobe (end of life 2025-06-30, \
             disabled by 2026-03-01); move to OAuth server-to-server credentials"
        );
    });
}

/// Parses a key once per process: warm activations reuse the parsed key and its SHA-256
/// fingerprint (for the token cache key). The cache is keyed by the key text itself, which this
/// process holds anyway (as the param, and parsed): looking it up costs a SipHash, not the
/// SHA-256 of a 2 KiB text on every activation.
pub fn parse_key_cached(input: &str, text: &str) -> Result<(Arc<RsaPrivateKey>, [u8; 32]), Error> {
    type Parsed = (Arc<RsaPrivateKey>, [u8; 32]);
    static KEYS: OnceLock<Mutex<HashMap<KeyText, Parsed>>> = OnceLock::new();
    let keys = KEYS.get_or_init(Default::default);
    if let Some(parsed) = keys.lock().ok().and_then(|k| k.get(text).cloned()) {
        return Ok(parsed);
    }
    let parsed = (
        Arc::new(RsaPrivateKey::parse(input, text)?),
        sha256(text.as_bytes()),
    );
    if let Ok(mut keys) = keys.lock() {
        // A process serves one action; a handful of keys at most. Bound it anyway.
        if keys.len() >= 16 {
            keys.clear();
        }
        keys.insert(KeyText(text.to_string()), parsed.clone());
    }
    Ok(parsed)
}

/// A key's text as the cache holds it: overwritten when the entry is dropped.
#[derive(PartialEq, Eq, Hash)]
struct KeyText(String);

impl std::borrow::Borrow<str> for KeyText {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl Drop for KeyText {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.0);
    }
}

/// SHA-256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}
