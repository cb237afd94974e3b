//! AEM as a Cloud Service content: `GET {AEM_AUTHOR_URL}{AEM_PATH}` with the bearer token.

use serde_json::{Map, Value};

use crate::credentials::{Credentials, aem_service};
use crate::endpoint::{AllowList, BaseUrl, HostScope};
use crate::error::{Error, Service};
use crate::http::{Budget, HttpClient, Method};
use crate::params::{InputCheck, Kind, Params};
use crate::token::AccessToken;

use super::ApiKey;
use super::aem_environment::{environment_of, is_environment_host, pinned_client_id};
use super::route::Route;

/// `AEM_PATH`'s default: the DAM root as JSON.
pub const DEFAULT_PATH: &str = "/content/dam.json";

/// The GET, inputs checked.
#[derive(Debug)]
pub struct ContentCall {
    base: BaseUrl,
    path: String,
}

/// Reads `AEM_AUTHOR_URL` (allow-listed, and held to the AEM environment of the service
/// credentials whenever they are configured, whichever credential wins) and `AEM_PATH`.
pub fn from_params(
    params: &Params,
    check: &mut InputCheck,
    allow: &AllowList,
    creds: Option<&Credentials>,
) -> Option<ContentCall> {
    let url = check.required("AEM_AUTHOR_URL", Kind::Id);
    let base = if url.is_empty() {
        None
    } else {
        BaseUrl::parse("AEM_AUTHOR_URL", url, allow, HostScope::Aem)
            .map_err(|e| check.invalid(e))
            .ok()
    };
    // Fail closed: with AEM service credentials configured, a token only goes to their own
    // environment, even when OAuth (say, App Builder's injected __ims_oauth_s2s) or JWT wins;
    // every other *.adobeaemcloud.com host runs someone else's code.
    if let Some(client_id) = pinned_client_id(params, creds, check) {
        match environment_of(&client_id) {
            None => check.invalid(Error::invalid(
                aem_service::INPUT,
                "its client id (integration.technicalAccount.clientId) names no AEM environment \
                 (cm-p<program>-e<environment>-…), so the host its token may go to is unknown: use the \
                 service credentials the AEM Developer Console gives for one environment",
            )),
            Some((program, environment)) => {
                if let Some(base) = &base
                    && !allow.lists(base)
                    && !is_environment_host(base.host(), program, environment)
                {
                    check.invalid(Error::invalid(
                        "AEM_AUTHOR_URL",
                        format!(
                            "is not a host of the AEM environment the service credentials belong to \
                             (author-p{program}-e{environment}.adobeaemcloud.com or publish-p{program}-e{environment}…)"
                        ),
                    ));
                }
            }
        }
    }
    let path = check
        .optional("AEM_PATH", Kind::Text(2048))
        .unwrap_or(DEFAULT_PATH);
    if let Err(reason) = check_path(path) {
        check.invalid(Error::invalid("AEM_PATH", reason));
        return None;
    }
    Some(ContentCall {
        base: base?,
        path: path.to_string(),
    })
}

/// A path on the AEM host: starts with one `/`, no `.`/`..` segments (plain or percent-encoded),
/// no backslashes, control characters, spaces or fragments.
pub fn check_path(path: &str) -> Result<(), &'static str> {
    if !path.starts_with('/') || path.starts_with("//") {
        return Err("must start with a single '/'");
    }
    if path
        .chars()
        .any(|c| c.is_control() || c.is_whitespace() || c == '\\' || c == '#')
    {
        return Err("must not contain spaces, backslashes, '#' or control characters");
    }
    let decoded = path
        .to_ascii_lowercase()
        .replace("%2e", ".")
        .replace("%2f", "/")
        .replace("%5c", "/");
    let without_query = decoded.split('?').next().unwrap_or("");
    if without_query.split('/').any(|seg| seg == ".." || seg == ".") {
        return Err("must not contain '.' or '..' segments");
    }
    Ok(())
}

impl ContentCall {
    /// Where the call goes.
    pub fn base(&self) -> &BaseUrl {
        &self.base
    }

    /// Calls AEM, as a built-in route of the engine.
    pub fn call(
        &self,
        http: &HttpClient,
        token: &AccessToken,
        creds: &Credentials,
        budget: &Budget,
    ) -> Result<Value, Error> {
        // AEM_PATH passed check_path: one path (and query) on the host, sent as given.
        let call = Route::builtin(
            "content GET",
            Service::Aem,
            Method::Get,
            self.base.clone(),
            "",
            &[],
            &[],
        )?
        .verbatim(&self.path)
        .prepare(&Map::new(), None, ApiKey::IfAny, None)?;
        super::answer(call.send(http, token, creds, budget)?, Service::Aem)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traversal_and_oddities_are_refused() {
        for ok in [
            "/content/dam.json",
            "/api/assets/wknd.json",
            "/content/dam.1.json?x=y",
        ] {
            assert!(check_path(ok).is_ok(), "{ok}");
        }
        for bad in [
            "content/dam.json",
            "//evil.example/x",
            "/content/../etc/passwd",
            "/content/%2e%2e/etc",
            "/content/%2E%2E%2Fetc",
            "/a\\..\\b",
            "/a\r\nX-Injected: 1",
            "/a b",
            "/a#frag",
            "/..",
        ] {
            assert!(check_path(bad).is_err(), "{bad}");
        }
    }
}
