//! AEM as a Cloud Service content: `GET {AEM_AUTHOR_URL}{AEM_PATH}` with the bearer token.

use serde_json::Value;

use crate::credentials::Credentials;
use crate::endpoint::{AllowList, BaseUrl};
use crate::error::{Error, Service};
use crate::http::{Budget, HttpClient, Method, Request};
use crate::params::{InputCheck, Kind, Params};
use crate::token::AccessToken;

/// `AEM_PATH`'s default: the DAM root as JSON.
pub const DEFAULT_PATH: &str = "/content/dam.json";

/// The GET, inputs checked.
#[derive(Debug)]
pub struct ContentCall {
    base: BaseUrl,
    path: String,
}

/// Reads `AEM_AUTHOR_URL` (allow-listed) and `AEM_PATH`.
pub fn from_params(_params: &Params, check: &mut InputCheck, allow: &AllowList) -> Option<ContentCall> {
    let url = check.required("AEM_AUTHOR_URL", Kind::Id);
    let base = if url.is_empty() {
        None
    } else {
        BaseUrl::parse("AEM_AUTHOR_URL", url, allow)
            .map_err(|e| check.invalid(e))
            .ok()
    };
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
    /// Calls AEM.
    pub fn call(
        &self,
        http: &HttpClient,
        token: &AccessToken,
        creds: &Credentials,
        budget: &Budget,
    ) -> Result<Value, Error> {
        let request = Request {
            service: Service::Aem,
            method: Method::Get,
            url: self.base.join(&self.path),
            headers: Vec::new(),
            body: None,
            retryable: true,
            what: "content GET",
        };
        super::send(http, budget, token, creds, request)
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
