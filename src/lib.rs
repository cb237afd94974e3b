//! ims-action: an Apache OpenWhisk / Adobe App Builder action that turns Adobe server-to-server
//! credentials into an IMS access token and calls an Adobe API with it.
//!
//! The flow reads top to bottom in [`Action::run`]:
//! params → [`credentials`] → [`token`] (cached) → [`api`] call → [`result`].
//! The runtimes in [`runtime`] (actionloop, one-shot, local CLI) only adapt input and output
//! around [`main`] / [`Action::handle`].
//!
//! ```no_run
//! let result = ims_action::main(serde_json::json!({
//!     "OAUTHS2S_CLIENT_ID": "…", "OAUTHS2S_CLIENT_SECRET": "…",
//!     "OAUTHS2S_CECREDENTIALS_METASCOPES": "AdobeID,openid", "IMS_ORG_ID": "…@AdobeOrg"
//! }));
//! assert!(result.get("statusCode").is_some() || result.get("error").is_some());
//! ```
#![forbid(unsafe_code)]
#![deny(clippy::unwrap_used, clippy::expect_used)]
#![warn(missing_docs)]

pub mod activation;
pub mod api;
pub mod credentials;
pub mod endpoint;
pub mod error;
pub mod http;
pub mod logging;
pub mod params;
pub mod redact;
pub mod resolver;
pub mod result;
pub mod runtime;
pub mod secret;
pub mod time;
pub mod token;
pub mod web;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::{Map, Value};

pub use activation::Activation;
pub use error::{Error, Service};

use api::Operation;
use credentials::Credentials;
use endpoint::AllowList;
use http::{Budget, HttpClient};
use params::{InputCheck, Params};
use token::{AccessToken, CacheKey, TokenCache};

/// The OpenWhisk action: params in, `{statusCode, headers, body}` or `{error: …}` out.
/// It never panics. Process-wide state (HTTP agent, token cache) is shared by every call.
pub fn main(params: Value) -> Value {
    static ACTION: OnceLock<Action> = OnceLock::new();
    ACTION
        .get_or_init(Action::from_env)
        .handle(params, &Activation::from_env())
}

/// The action and what it keeps between activations: the HTTP agent, the token cache and the
/// endpoint allowlist (from the process environment, never from params).
pub struct Action {
    allow: AllowList,
    http: HttpClient,
    tokens: TokenCache,
}

impl Action {
    /// An action with an explicit allowlist and token cache.
    pub fn new(allow: AllowList, tokens: TokenCache) -> Action {
        Action {
            allow,
            http: HttpClient::new(),
            tokens,
        }
    }

    /// The same action with another HTTP client (e.g. [`HttpClient::offline`] for fuzzing).
    pub fn with_http(mut self, http: HttpClient) -> Action {
        self.http = http;
        self
    }

    /// The allowlist from `IMS_ACTION_ALLOW_HOSTS`, tokens cached in memory.
    pub fn from_env() -> Action {
        Action::new(AllowList::from_env(), TokenCache::in_memory())
    }

    /// One activation. Any panic inside is caught here, at the activation boundary, and
    /// answered as a 500: in actionloop mode the process must live on for the next caller.
    pub fn handle(&self, params: Value, activation: &Activation) -> Value {
        let secrets = match &params {
            Value::Object(map) => redact::secret_values(map),
            _ => Vec::new(),
        };
        let outcome = catch_unwind(AssertUnwindSafe(|| self.run(params, activation)));
        let result = match outcome {
            Ok(Ok(body)) => result::success(body),
            Ok(Err(e)) => {
                log::info!("{}: {e}", e.status_code());
                result::failure(&e)
            }
            Err(_) => {
                log::error!("the action panicked; answering 500");
                result::failure(&Error::Internal("the action failed unexpectedly".into()))
            }
        };
        scrub(result, &secrets)
    }

    /// Params → credentials → token → API call.
    pub fn run(&self, params: Value, activation: &Activation) -> Result<Value, Error> {
        let mut map = into_object(params)?;
        logging::apply_level(map.get("LOG_LEVEL").and_then(Value::as_str));
        if let Some(id) = &activation.activation_id {
            log::debug!("activation {id}");
        }
        log::debug!("params: {}", redact::string_parameters(&map));
        if let Some(web) = web::WebRequest::from_params(&map) {
            // Caller text is escaped: a line break in it must not forge a log line.
            log::debug!(
                "web request: {} {}",
                web.method.escape_debug(),
                web.path.escape_debug()
            );
            web::check_caller(&web, web::allowed_orgs(&map)?.as_deref())?;
            web::merge_request_inputs(&mut map)?;
        }
        let params = Params::new(&map);
        // `health` reports on every credential, each with its own problems, so it is answered
        // before the one credential the API operations use is required to parse.
        if api::health::is_requested(&params) {
            return api::health::report(self, &params, activation);
        }
        let mut check = InputCheck::new(params);
        let creds = credentials::from_params(&params, &mut check, &self.allow);
        let operation = Operation::from_params(&params, &mut check, &self.allow, creds.as_ref());
        let timeout = request_timeout(&params, &mut check);
        check.finish()?;
        let (Some(creds), Some(operation)) = (creds, operation) else {
            return Err(Error::Internal(
                "inputs passed their check but did not parse".into(),
            ));
        };
        let budget = Budget::new(activation, timeout);
        let key = token::cache_key(&creds);
        let token = self.cached_token(&creds, &key, &budget)?;
        match operation.call(&self.http, &token, &creds, &budget) {
            // A token the API refuses is dropped, fetched again once, and the call retried once.
            Err(Error::Upstream { status: 401, .. }) if !matches!(creds, Credentials::DevToken(_)) => {
                log::info!(
                    "{} refused the cached token (401): getting a new one",
                    operation.service()
                );
                self.tokens.remove(&key);
                let token = self.fresh_token(&creds, &key, &budget)?;
                operation.call(&self.http, &token, &creds, &budget)
            }
            other => other,
        }
    }

    /// The access token for the credential in `params` (cached), without calling any API:
    /// what `ims-action token` prints. Never offered to web callers.
    pub fn access_token(&self, params: Value, activation: &Activation) -> Result<AccessToken, Error> {
        let map = into_object(params)?;
        logging::apply_level(map.get("LOG_LEVEL").and_then(Value::as_str));
        let params = Params::new(&map);
        let mut check = InputCheck::new(params);
        let creds = credentials::from_params(&params, &mut check, &self.allow);
        let timeout = request_timeout(&params, &mut check);
        check.finish()?;
        let creds = creds
            .ok_or_else(|| Error::Internal("credentials passed their check but did not parse".into()))?;
        let budget = Budget::new(activation, timeout);
        self.cached_token(&creds, &token::cache_key(&creds), &budget)
    }

    fn cached_token(
        &self,
        creds: &Credentials,
        key: &CacheKey,
        budget: &Budget,
    ) -> Result<AccessToken, Error> {
        if let Some(token) = self.tokens.get(key, time::now_unix_ms()) {
            log::debug!("using the cached {} token", creds.method());
            return Ok(token);
        }
        self.fresh_token(creds, key, budget)
    }

    fn fresh_token(
        &self,
        creds: &Credentials,
        key: &CacheKey,
        budget: &Budget,
    ) -> Result<AccessToken, Error> {
        match creds {
            Credentials::DevToken(_) => log::debug!("using the developer token as is (no IMS call)"),
            _ => log::info!("getting a new access token ({})", creds.method()),
        }
        // Only a success is stored: a failed fetch leaves nothing cached.
        let token = token::fetch(creds, &self.http, budget)?;
        self.tokens.put(key, &token);
        Ok(token)
    }
}

fn into_object(params: Value) -> Result<Map<String, Value>, Error> {
    match params {
        Value::Object(map) => Ok(map),
        other => Err(Error::invalid(
            "params",
            format!("must be a JSON object, not {}", params::json_type(&other)),
        )),
    }
}

/// `HTTP_TIMEOUT_MS`: total time for one request, default 10 s.
fn request_timeout(params: &Params, check: &mut InputCheck) -> Duration {
    match params.integer("HTTP_TIMEOUT_MS") {
        Ok(Some(ms)) if (1..=600_000).contains(&ms) => Duration::from_millis(ms),
        Ok(None) => http::DEFAULT_REQUEST_TIMEOUT,
        Ok(Some(_)) | Err(_) => {
            check.invalid(Error::invalid(
                "HTTP_TIMEOUT_MS",
                "must be a whole number of milliseconds from 1 to 600000",
            ));
            http::DEFAULT_REQUEST_TIMEOUT
        }
    }
}

/// The last line of defence: no secret the caller sent comes back in a result, whatever an
/// upstream echoed. Only the bodies (`body`, `error.body`) are searched, and only their string
/// values: the envelope is ours, and a "secret" such as `statusCode` must not break its shape
/// (found by fuzz_main). The common case, nothing to replace, walks the strings without copying.
fn scrub(mut result: Value, secrets: &[String]) -> Value {
    fn contains_any(v: &Value, secrets: &[String]) -> bool {
        match v {
            Value::String(s) => secrets.iter().any(|secret| s.contains(secret.as_str())),
            Value::Array(items) => items.iter().any(|v| contains_any(v, secrets)),
            Value::Object(m) => m.values().any(|v| contains_any(v, secrets)),
            _ => false,
        }
    }
    fn walk(v: &mut Value, secrets: &[String]) {
        match v {
            Value::String(s) => {
                for secret in secrets {
                    if s.contains(secret.as_str()) {
                        *s = s.replace(secret.as_str(), "****");
                    }
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|v| walk(v, secrets)),
            Value::Object(m) => m.values_mut().for_each(|v| walk(v, secrets)),
            _ => {}
        }
    }
    if secrets.is_empty() {
        return result;
    }
    for pointer in ["/body", "/error/body"] {
        if let Some(body) = result.pointer_mut(pointer)
            && contains_any(body, secrets)
        {
            log::warn!("a secret would have been returned; it was replaced by ****");
            walk(body, secrets);
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn scrub_replaces_echoed_secrets_in_bodies_only_when_present() {
        let secrets = vec!["p8e-secret-1".to_string()];
        let clean = json!({"statusCode": 200, "body": {"a": "nothing here", "n": [1, "x"]}});
        assert_eq!(scrub(clean.clone(), &secrets), clean);
        let echoed =
            json!({"statusCode": 200, "body": {"echo": "got p8e-secret-1!", "list": ["p8e-secret-1"]}});
        assert_eq!(
            scrub(echoed, &secrets),
            json!({"statusCode": 200, "body": {"echo": "got ****!", "list": ["****"]}})
        );
        let error = json!({"error": {"statusCode": 502, "body": {"error": "IMS said p8e-secret-1"}}});
        assert_eq!(scrub(error, &secrets)["error"]["body"]["error"], "IMS said ****");
    }

    #[test]
    fn a_secret_that_spells_part_of_the_envelope_leaves_it_intact() {
        let secrets = vec!["statusCode".to_string(), "application/json".to_string()];
        let result = json!({"statusCode": 200, "headers": {"content-type": "application/json"}, "body": {}});
        assert_eq!(scrub(result.clone(), &secrets), result);
        let error = json!({"error": {"statusCode": 400, "body": {"error": "missing parameter(s) 'X'"}}});
        assert_eq!(scrub(error.clone(), &secrets), error);
    }
}
