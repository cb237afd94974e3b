//! Credentials: which kind the caller gave, parsed and checked before any network call.
//!
//! | kind | inputs |
//! |---|---|
//! | OAuth server-to-server | `OAUTHS2S_CLIENT_ID`, `OAUTHS2S_CLIENT_SECRET`, `OAUTHS2S_CECREDENTIALS_METASCOPES`, or App Builder's `__ims_oauth_s2s` |
//! | Service Account (JWT) | `JWT_CLIENT_ID`, `JWT_CLIENT_SECRET`, `JWT_TECHNICAL_ACCOUNT_ID`, `JWT_IMS_ORG`, `JWT_METASCOPES`, `JWT_PRIVATE_KEY` |
//! | AEM as a Cloud Service service credentials | `AEM_SERVICE_CREDENTIALS` |
//! | developer token | `AEM_DEV_TOKEN` |

pub mod aem_service;
pub mod cert;
pub mod dev_token;
pub mod ims;
pub mod jwt;
mod jwt_ring;
pub mod oauth_s2s;
pub mod private_key;
pub mod service_account;

use std::collections::HashMap;
use std::fmt;
use std::sync::{Mutex, OnceLock};

use serde_json::Value;

use crate::access_token::AccessToken;
use crate::endpoint::{AllowList, BaseUrl, HostScope};
use crate::error::Error;
use crate::http::{Budget, HttpClient};
use crate::params::{InputCheck, Kind, Params};
use crate::time::Clock;

pub use dev_token::DevToken;
pub use oauth_s2s::OAuthS2sCredentials;
pub use service_account::ServiceAccountCredentials;

/// `IMS_BASE_URL`'s default.
pub const DEFAULT_IMS_BASE_URL: &str = "https://ims-na1.adobelogin.com";

/// Every input the credentials read, whichever kind wins.
pub const INPUTS: [&str; 15] = [
    "AUTH_METHOD",
    "IMS_BASE_URL",
    "IMS_ORG_ID",
    oauth_s2s::INPUTS[0],
    oauth_s2s::INPUTS[1],
    oauth_s2s::INPUTS[2],
    oauth_s2s::INJECTED,
    service_account::INPUTS[0],
    service_account::INPUTS[1],
    service_account::INPUTS[2],
    service_account::INPUTS[3],
    service_account::INPUTS[4],
    service_account::INPUTS[5],
    aem_service::INPUT,
    dev_token::INPUT,
];

/// The inputs holding secrets.
const SECRET_INPUTS: [&str; 6] = [
    "OAUTHS2S_CLIENT_SECRET",
    oauth_s2s::INJECTED,
    "JWT_CLIENT_SECRET",
    "JWT_PRIVATE_KEY",
    aem_service::INPUT,
    dev_token::INPUT,
];

/// The ways to get a token, as `AUTH_METHOD` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    /// OAuth server-to-server (client credentials).
    OAuthS2s,
    /// Service Account (JWT) from the Adobe Developer Console.
    Jwt,
    /// AEM as a Cloud Service service credentials (a JWT credential in AEM's JSON).
    AemServiceCredentials,
    /// A developer token, used as is.
    DevToken,
}

impl AuthMethod {
    /// Every method, in the order they win when several are present.
    pub const ALL: [AuthMethod; 4] = [
        AuthMethod::OAuthS2s,
        AuthMethod::Jwt,
        AuthMethod::AemServiceCredentials,
        AuthMethod::DevToken,
    ];

    /// The `AUTH_METHOD` value.
    pub fn name(self) -> &'static str {
        match self {
            AuthMethod::OAuthS2s => "oauth-s2s",
            AuthMethod::Jwt => "jwt",
            AuthMethod::AemServiceCredentials => "aem-service-credentials",
            AuthMethod::DevToken => "dev-token",
        }
    }

    /// The inputs this method reads, for messages.
    pub fn inputs(self) -> &'static str {
        match self {
            AuthMethod::OAuthS2s => {
                "OAUTHS2S_CLIENT_ID, OAUTHS2S_CLIENT_SECRET, OAUTHS2S_CECREDENTIALS_METASCOPES and IMS_ORG_ID (or App Builder's __ims_oauth_s2s)"
            }
            AuthMethod::Jwt => {
                "JWT_CLIENT_ID, JWT_CLIENT_SECRET, JWT_TECHNICAL_ACCOUNT_ID, JWT_IMS_ORG, JWT_METASCOPES and JWT_PRIVATE_KEY"
            }
            AuthMethod::AemServiceCredentials => "AEM_SERVICE_CREDENTIALS",
            AuthMethod::DevToken => "AEM_DEV_TOKEN",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<AuthMethod> {
        AuthMethod::ALL.into_iter().find(|m| m.name() == s)
    }

    /// Whether the caller gave any input of this method.
    pub(crate) fn is_present(self, params: &Params) -> bool {
        let any = |names: &[&str]| names.iter().any(|n| params.has(n));
        match self {
            AuthMethod::OAuthS2s => any(&oauth_s2s::INPUTS) || params.has(oauth_s2s::INJECTED),
            AuthMethod::Jwt => any(&service_account::INPUTS),
            AuthMethod::AemServiceCredentials => params.has(aem_service::INPUT),
            AuthMethod::DevToken => params.has(dev_token::INPUT),
        }
    }
}

impl fmt::Display for AuthMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A credential, parsed and checked.
#[derive(Debug)]
pub enum Credentials {
    /// OAuth server-to-server.
    OAuthS2s(OAuthS2sCredentials),
    /// Service Account (JWT), from `JWT_*` inputs or AEM service credentials.
    ServiceAccount(ServiceAccountCredentials),
    /// A developer token.
    DevToken(DevToken),
}

/// A SHA-256 fingerprint of everything that decides a credential's token (secrets included, so
/// that a rotated secret gets a new token): the key of the token caches, and the input key
/// material of the shared store's encryption. No secret is kept in clear, and the fingerprint
/// itself, key material, is zeroed on drop (hence not `Copy`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CacheKey(pub [u8; 32]);

impl Drop for CacheKey {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.0);
    }
}

impl CacheKey {
    /// The fingerprint of `method` and `fields`, each length-prefixed so that no two field lists
    /// run together the same way.
    pub fn of(method: AuthMethod, fields: &[&[u8]]) -> CacheKey {
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        for field in std::iter::once(method.name().as_bytes()).chain(fields.iter().copied()) {
            ctx.update(&(field.len() as u64).to_le_bytes());
            ctx.update(field);
        }
        let mut key = [0u8; 32];
        key.copy_from_slice(ctx.finish().as_ref());
        CacheKey(key)
    }

    /// Lower-case hex, for file names.
    pub fn hex(&self) -> String {
        crate::hex::lower(&self.0)
    }
}

impl Credentials {
    /// The key its token is cached under.
    pub fn cache_key(&self) -> CacheKey {
        match self {
            Credentials::OAuthS2s(c) => c.cache_key(),
            Credentials::ServiceAccount(c) => c.cache_key(),
            Credentials::DevToken(t) => t.cache_key(),
        }
    }

    /// A new token (no cache): from IMS, or the developer token itself.
    pub fn fetch(&self, http: &HttpClient, budget: &Budget) -> Result<AccessToken, Error> {
        match self {
            Credentials::OAuthS2s(c) => c.fetch(http, budget),
            Credentials::ServiceAccount(c) => c.fetch(http, budget),
            Credentials::DevToken(t) => Ok(t.fetch(budget.clock())),
        }
    }

    /// The IMS its token comes from; `None` for a developer token (no IMS call).
    pub fn ims(&self) -> Option<&BaseUrl> {
        match self {
            Credentials::OAuthS2s(c) => Some(&c.ims),
            Credentials::ServiceAccount(c) => Some(&c.ims),
            Credentials::DevToken(_) => None,
        }
    }

    /// Which method this is.
    pub fn method(&self) -> AuthMethod {
        match self {
            Credentials::OAuthS2s(_) => AuthMethod::OAuthS2s,
            Credentials::ServiceAccount(c) => c.method,
            Credentials::DevToken(_) => AuthMethod::DevToken,
        }
    }

    /// The client id, which Adobe APIs also take as `x-api-key`.
    pub fn client_id(&self) -> Option<&str> {
        match self {
            Credentials::OAuthS2s(c) => Some(&c.client_id),
            Credentials::ServiceAccount(c) => Some(&c.client_id),
            Credentials::DevToken(_) => None,
        }
    }

    /// The IMS organisation the credential belongs to, when it says.
    pub fn org_id(&self) -> Option<&str> {
        match self {
            Credentials::OAuthS2s(c) => Some(&c.org_id).filter(|o| !o.is_empty()).map(String::as_str),
            Credentials::ServiceAccount(c) => Some(&c.org_id),
            Credentials::DevToken(_) => None,
        }
    }
}

/// Finds the credential kind (forced by `AUTH_METHOD`, or the first present in
/// [`AuthMethod::ALL`] order) and parses it, recording problems in `check`.
/// `None` when the inputs are unusable (the check then holds why).
pub fn from_params(
    params: &Params,
    check: &mut InputCheck,
    allow: &AllowList,
    clock: &Clock,
) -> Option<Credentials> {
    let forced = match check.optional("AUTH_METHOD", Kind::Id) {
        Some(name) => match AuthMethod::parse(name) {
            Some(m) => Some(m),
            None => {
                check.invalid(Error::invalid(
                    "AUTH_METHOD",
                    "must be one of oauth-s2s, jwt, aem-service-credentials, dev-token",
                ));
                return None;
            }
        },
        None => None,
    };
    let present: Vec<AuthMethod> = AuthMethod::ALL
        .into_iter()
        .filter(|m| m.is_present(params))
        .collect();
    let method = forced
        .or_else(|| present.first().copied())
        .unwrap_or(AuthMethod::OAuthS2s);
    if forced.is_none() && present.len() > 1 {
        log::info!(
            "several credentials given ({}); using {method} (set AUTH_METHOD to choose)",
            present.iter().map(|m| m.name()).collect::<Vec<_>>().join(", ")
        );
    } else {
        log::debug!("credential: {method}");
    }
    let creds = parse(method, params, check, allow, clock);
    if present.is_empty() && forced.is_none() {
        // Nothing given at all: say what each method needs.
        check.hint(format!(
            "give one credential: {}",
            AuthMethod::ALL
                .iter()
                .map(|m| format!("{} ({})", m.name(), m.inputs()))
                .collect::<Vec<_>>()
                .join("; or ")
        ));
    }
    creds
}

/// Parses the credential of kind `method` from `params`, recording problems in `check`.
pub fn parse(
    method: AuthMethod,
    params: &Params,
    check: &mut InputCheck,
    allow: &AllowList,
    clock: &Clock,
) -> Option<Credentials> {
    match method {
        AuthMethod::OAuthS2s => {
            let ims = ims_base(check, allow)?;
            oauth_s2s::from_params(params, check, ims).map(Credentials::OAuthS2s)
        }
        AuthMethod::Jwt => {
            let ims = ims_base(check, allow)?;
            service_account::from_params(params, check, ims).map(Credentials::ServiceAccount)
        }
        AuthMethod::AemServiceCredentials => {
            aem_service::from_params(params, check, allow, clock).map(Credentials::ServiceAccount)
        }
        AuthMethod::DevToken => dev_token::from_params(params, check, clock).map(Credentials::DevToken),
    }
}

/// `IMS_BASE_URL`, checked against the allowlist.
fn ims_base(check: &mut InputCheck, allow: &AllowList) -> Option<BaseUrl> {
    let url = check
        .optional("IMS_BASE_URL", Kind::Id)
        .unwrap_or(DEFAULT_IMS_BASE_URL);
    match BaseUrl::parse("IMS_BASE_URL", url, allow, HostScope::Ims) {
        Ok(b) => Some(b),
        Err(e) => {
            check.invalid(e);
            None
        }
    }
}

/// Adds every configured secret to the activation's secret set ([`crate::scrub`]), whichever
/// credential wins: client secrets, private keys (as given, as PEM, and as their base64 body),
/// developer tokens, and the secrets inside AEM service credentials and `__ims_oauth_s2s`. Only
/// fixed fields are read, so what a caller adds never grows the set. The forms of each value
/// are worked out once per process.
pub fn register_secrets(params: &Params) {
    type Forms = HashMap<(&'static str, String), Vec<String>>;
    static FORMS: OnceLock<Mutex<Forms>> = OnceLock::new();
    let forms = FORMS.get_or_init(Default::default);
    for name in SECRET_INPUTS {
        let Some(value) = params.get(name).filter(|v| crate::params::is_given(v)) else {
            continue;
        };
        let text = match value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let key = (name, text);
        let cached = forms.lock().ok().and_then(|f| f.get(&key).cloned());
        let list = cached.unwrap_or_else(|| {
            let list = secret_forms(value);
            if let Ok(mut f) = forms.lock() {
                // A process serves one configuration; bound it anyway.
                if f.len() >= 32 {
                    f.clear();
                }
                f.insert(key, list.clone());
            }
            list
        });
        list.iter().for_each(|s| crate::scrub::register(s));
    }
}

/// The secrets inside one secret input.
fn secret_forms(value: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let doc = match value {
        Value::String(s) => {
            out.extend(key_forms(s));
            crate::document::json_object(s).ok().map(Value::Object)
        }
        other => Some(other.clone()),
    };
    if let Some(doc) = doc {
        for pointer in [
            "/client_secret",
            "/clientSecret",
            "/accessToken",
            "/privateKey",
            "/technicalAccount/clientSecret",
            "/integration/privateKey",
            "/integration/technicalAccount/clientSecret",
        ] {
            if let Some(Value::String(s)) = doc.pointer(pointer) {
                out.extend(key_forms(s));
            }
        }
    }
    out
}

/// A value as given, and when it is (or is base64 of) PEM text: the PEM and each block's base64
/// body on one line, which is how key material would be quoted.
fn key_forms(text: &str) -> Vec<String> {
    let mut out = vec![text.to_string()];
    let unpasted = crate::pem::unpaste(text).into_owned();
    let pem = if unpasted.contains("-----BEGIN ") {
        Some(unpasted.clone())
    } else {
        crate::document::base64_text(&unpasted).filter(|t| t.contains("-----BEGIN "))
    };
    out.push(unpasted);
    if let Some(pem) = pem {
        for block in crate::pem::pem_blocks(&pem) {
            out.push(block.body.chars().filter(|c| !c.is_whitespace()).collect());
        }
        out.push(pem);
    }
    out
}

/// Splits a comma-separated list, trimming items and dropping empties.
pub fn split_list(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(String::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn parse(v: Value) -> Result<Credentials, Error> {
        let Value::Object(map) = v else { panic!("object") };
        let params = Params::new(&map);
        let mut check = InputCheck::new(params);
        let creds = from_params(&params, &mut check, &AllowList::adobe_only(), &Clock::system());
        check.finish()?;
        creds.ok_or_else(|| Error::Internal("none".into()))
    }

    #[test]
    fn nothing_given_names_the_oauth_inputs_and_every_method() {
        let e = parse(json!({})).unwrap_err().to_string();
        assert!(
            e.starts_with(
                "missing parameter(s) 'OAUTHS2S_CLIENT_ID,OAUTHS2S_CLIENT_SECRET,OAUTHS2S_CECREDENTIALS_METASCOPES'"
            ),
            "{e}"
        );
        for m in AuthMethod::ALL {
            assert!(e.contains(m.name()), "{e}");
        }
    }

    #[test]
    fn oauth_wins_when_several_are_present_unless_forced() {
        let p = json!({
            "OAUTHS2S_CLIENT_ID": "id", "OAUTHS2S_CLIENT_SECRET": "s", "OAUTHS2S_CECREDENTIALS_METASCOPES": "a, b",
            "AEM_DEV_TOKEN": "tok"
        });
        assert_eq!(parse(p.clone()).unwrap().method(), AuthMethod::OAuthS2s);
        let mut forced = p;
        forced["AUTH_METHOD"] = json!("dev-token");
        assert_eq!(parse(forced).unwrap().method(), AuthMethod::DevToken);
    }

    #[test]
    fn an_unknown_auth_method_is_named() {
        let e = parse(json!({"AUTH_METHOD": "basic"})).unwrap_err();
        assert!(e.to_string().contains("'AUTH_METHOD'"), "{e}");
    }

    #[test]
    fn lists_are_trimmed() {
        assert_eq!(split_list(" a, ,b ,"), vec!["a", "b"]);
    }
}
