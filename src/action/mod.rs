//! The action: one activation from params to result. Configuration is sealed ([`seal`]), web
//! callers are checked ([`web`]), the credential is parsed and its token found (memory, shared
//! store, IMS), the API called, and whatever the activation knows to be secret scrubbed from the
//! result ([`result`]) and every log line. The `health` operation ([`health`]) reports on every
//! configured credential instead of calling an API.

pub mod dump;
pub mod health;
pub mod result;
pub mod seal;
pub mod web;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::{Map, Value};

use crate::access_token::AccessToken;
use crate::activation::Activation;
use crate::api::{self, Operation};
use crate::credentials::{self, CacheKey, Credentials};
use crate::endpoint::{AllowList, BaseUrl};
use crate::error::{Error, Service};
use crate::http::{self, Budget, HttpClient};
use crate::params::{self, InputCheck, Params};
use crate::time::Clock;
use crate::token::TokenCache;
use crate::token::store::{Session, SharedStores, flight, setting};
use crate::{logging, scrub};
use seal::Sealing;

/// Inputs the action itself reads, besides the credentials' and the operations'.
const ACTION_INPUTS: [&str; 5] = [
    "LOG_LEVEL",
    "HTTP_TIMEOUT_MS",
    web::ALLOWED_ORGS,
    seal::CALLER_INPUTS,
    setting::STORE_SETTING,
];

/// Inputs a caller may always set (harmless, and meaningful only as a request): the health
/// operation's `check` only gets tokens through the cache and asks for the quota.
const ALWAYS_CALLER_INPUTS: [&str; 1] = [health::CHECK_INPUT];

/// Every input the action reads: all of them are configuration, sealed in a deployment, except
/// the request inputs a deployment opts in.
pub fn known_inputs() -> &'static [&'static str] {
    static KNOWN: OnceLock<Vec<&'static str>> = OnceLock::new();
    KNOWN.get_or_init(|| {
        let mut all: Vec<&'static str> = credentials::INPUTS.to_vec();
        all.extend(api::INPUTS);
        all.extend(ACTION_INPUTS);
        all.extend(ALWAYS_CALLER_INPUTS);
        all.sort_unstable();
        all.dedup();
        all
    })
}

/// The action and what it keeps between activations: the HTTP agent, the token cache, the
/// shared token stores, the endpoint allowlist (from the process environment, never from params)
/// and the deployment's seal.
pub struct Action {
    allow: AllowList,
    http: HttpClient,
    tokens: TokenCache,
    sealing: Sealing,
    shared: SharedStores,
    clock: Clock,
}

impl Action {
    /// An action with an explicit allowlist and token cache, and no seal (web calls refused).
    pub fn new(allow: AllowList, tokens: TokenCache) -> Action {
        Action {
            allow,
            http: HttpClient::new(),
            tokens,
            sealing: Sealing::Unsealed,
            shared: SharedStores::from_env(),
            clock: Clock::system(),
        }
    }

    /// The same action on another clock (tests hold one still and move it).
    pub fn with_clock(mut self, clock: Clock) -> Action {
        self.clock = clock;
        self
    }

    /// The same action under a seal (see [`seal`]).
    pub fn with_sealing(mut self, sealing: Sealing) -> Action {
        self.sealing = sealing;
        self
    }

    /// The same action with other shared token stores (another State endpoint).
    pub fn with_shared_stores(mut self, shared: SharedStores) -> Action {
        self.shared = shared;
        self
    }

    /// The shared token stores, for their counters.
    pub fn shared_stores(&self) -> &SharedStores {
        &self.shared
    }

    /// The same action with another HTTP client (e.g. [`HttpClient::offline`] for fuzzing).
    pub fn with_http(mut self, http: HttpClient) -> Action {
        self.http = http;
        self
    }

    /// The allowlist from `IMS_ACTION_ALLOW_HOSTS`, tokens cached in memory, the seal next to
    /// the binary (or at `IMS_ACTION_SEAL`).
    pub fn from_env() -> Action {
        Action::new(AllowList::from_env(), TokenCache::in_memory()).with_sealing(Sealing::from_env())
    }

    /// One activation. Any panic inside is caught here, at the activation boundary, and
    /// answered as a 500: in actionloop mode the process must live on for the next caller.
    /// Everything the activation knows to be secret is scrubbed from the result (and from every
    /// log line) whatever an upstream echoed.
    pub fn handle(&self, params: Value, activation: &Activation) -> Value {
        let _secrets = scrub::Scope::begin();
        let web_call = params.as_object().is_some_and(web::is_web);
        let outcome = catch_unwind(AssertUnwindSafe(|| self.run(params, activation)));
        let mut result = match outcome {
            Ok(Ok(reply)) => result::reply(reply),
            Ok(Err(e)) => {
                // The operator's full text goes to the log; a web caller gets its own answer.
                match e {
                    // ops: configuration-error-logged
                    Error::Configuration(_) => log::error!("{}: {e}", e.status_code()),
                    // ops: seal-mismatch
                    Error::SealMismatch { .. } => log::warn!("{}: {e}", e.status_code()),
                    _ => log::info!("{}: {e}", e.status_code()),
                }
                result::failure(&web::answer_for_caller(e, web_call))
            }
            Err(_) => {
                // ops: panic
                log::error!("the action panicked; answering 500");
                result::failure(&Error::Internal("the action failed unexpectedly".into()))
            }
        };
        if scrub::scrub_result(&mut result) {
            // ops: secret-replaced
            log::warn!(
                "a secret would have been returned; it was replaced by {}",
                scrub::MASK
            );
        }
        result
    }

    /// Params → sealed configuration → credentials → token → API call.
    pub fn run(&self, params: Value, activation: &Activation) -> Result<api::Reply, Error> {
        let (mut map, web) = self.admit(params, activation)?;
        logging::apply_level(map.get("LOG_LEVEL").and_then(Value::as_str));
        if let Some(id) = &activation.activation_id {
            log::debug!("activation {}", id.escape_debug());
        }
        log::debug!("params: {}", dump::string_parameters(&map));
        if let Some(web) = web {
            // Caller text is escaped: a line break in it must not forge a log line.
            log::debug!(
                "web request: {} {}",
                web.method.escape_debug(),
                web.path.escape_debug()
            );
            let allowed = caller_inputs(&map);
            web::merge_request_inputs(&mut map, &allowed)?;
        }
        let params = Params::new(&map);
        // `health` reports on every credential, each with its own problems, so it is answered
        // before the one credential the API operations use is required to parse.
        if health::is_requested(&params) {
            return health::report(self, &params, activation).map(api::Reply::json);
        }
        let mut check = InputCheck::new(params);
        let creds = credentials::from_params(&params, &mut check, &self.allow, &self.clock);
        let operation = Operation::from_params(&params, &mut check, &self.allow, creds.as_ref(), &self.clock);
        let timeout = request_timeout(&params, &mut check);
        check.finish()?;
        let (Some(creds), Some(operation)) = (creds, operation) else {
            return Err(Error::Internal(
                "inputs passed their check but did not parse".into(),
            ));
        };
        let budget = Budget::new(activation, timeout, &self.clock);
        self.call_with_token(
            &params,
            &creds,
            activation,
            &budget,
            (operation.service(), operation.base()),
            |token| operation.call(&self.http, token, &creds, &budget),
        )
    }

    /// Runs `call` to `api` with a token for `creds` (memory, shared store, else IMS). When the
    /// token is not in memory, `api`'s connection is opened meanwhile (it does not need the
    /// token). A token the API refuses (401) is dropped from every layer, fetched again once,
    /// and the call retried once.
    pub(crate) fn call_with_token<T>(
        &self,
        params: &Params,
        creds: &Credentials,
        activation: &Activation,
        budget: &Budget,
        (service, api): (Service, &BaseUrl),
        call: impl Fn(&AccessToken) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let key = creds.cache_key();
        let in_memory = self.memory_token(creds, &key, budget);
        // Only a token fetch leaves time to overlap (a developer token is never fetched), and
        // only a connection of its own: when IMS and the API share an origin (an emulator, a
        // proxy), the token request's pooled connection serves the API. Kept until the call is
        // done.
        let _api_connection = match (&in_memory, creds.ims()) {
            (None, Some(ims)) if ims.origin() != api.origin() => self.http.preconnect(api, budget),
            _ => None,
        };
        let mut store = self.token_store(params, creds, activation, budget);
        let token = match in_memory {
            Some(token) => token,
            None => self.fresh_token(creds, &key, budget, store.as_mut(), None)?,
        };
        match call(&token) {
            Err(Error::Upstream { status: 401, .. }) if !matches!(creds, Credentials::DevToken(_)) => {
                log::info!("{service} refused the cached token (401): getting a new one");
                flight::forget(&self.tokens, &key, store.as_mut(), &token);
                let token = self.fresh_token(creds, &key, budget, store.as_mut(), Some(&token))?;
                call(&token)
            }
            other => other,
        }
    }

    /// A token for `creds`, through the same layers as every call (a cached one counts).
    pub(crate) fn token_for(
        &self,
        params: &Params,
        creds: &Credentials,
        activation: &Activation,
        budget: &Budget,
    ) -> Result<AccessToken, Error> {
        let mut store = self.token_store(params, creds, activation, budget);
        self.cached_token(creds, &creds.cache_key(), budget, store.as_mut())
    }

    /// The access token for the credential in `params` (cached), without calling any API:
    /// what `ims-action token` prints. Never offered to web callers.
    pub fn access_token(&self, params: Value, activation: &Activation) -> Result<AccessToken, Error> {
        let map = into_object(params)?;
        self.check_sealed(&map, activation)?;
        logging::apply_level(map.get("LOG_LEVEL").and_then(Value::as_str));
        let params = Params::new(&map);
        let mut check = InputCheck::new(params);
        let creds = credentials::from_params(&params, &mut check, &self.allow, &self.clock);
        let timeout = request_timeout(&params, &mut check);
        check.finish()?;
        let creds = creds
            .ok_or_else(|| Error::Internal("credentials passed their check but did not parse".into()))?;
        let budget = Budget::new(activation, timeout, &self.clock);
        self.token_for(&params, &creds, activation, &budget)
    }

    /// The params the activation may use: the caller's secret headers and the configured secrets
    /// registered with the activation's secret set, the seal checked, and whatever the action does
    /// not read dropped, so that nothing below can read an input the seal did not vouch for (and
    /// nothing a caller adds can grow the secret set).
    fn admit(
        &self,
        params: Value,
        activation: &Activation,
    ) -> Result<(Map<String, Value>, Option<web::WebRequest>), Error> {
        let mut map = into_object(params)?;
        let web = web::WebRequest::from_params(&map);
        if let Some(web) = &web {
            web.register_secrets();
            // A refused org gets its 403 before any answer about the configuration.
            let vouched = match &self.sealing {
                Sealing::Sealed(seal) => seal.vouches_for(
                    activation.action_name.as_deref(),
                    web::ALLOWED_ORGS,
                    map.get(web::ALLOWED_ORGS),
                ),
                _ => true,
            };
            web::check_caller(web, web::allowed_orgs(&map, vouched)?.as_deref())?;
        }
        self.check_sealed(&map, activation)?;
        let known = known_inputs();
        map.retain(|k, _| k.starts_with("__ow_") || known.contains(&k.as_str()));
        credentials::register_secrets(&Params::new(&map));
        Ok((map, web))
    }

    /// Configuration is sealed: with a seal, every known input must be what the deployment bound;
    /// without one, a web call is refused.
    fn check_sealed(&self, map: &Map<String, Value>, activation: &Activation) -> Result<(), Error> {
        match &self.sealing {
            // ops: seal-damaged
            Sealing::Broken(why) => Err(Error::Configuration(why.clone())),
            Sealing::Sealed(seal) => seal.verify(
                activation.action_name.as_deref(),
                map,
                known_inputs(),
                &web::REQUEST_INPUTS,
                &ALWAYS_CALLER_INPUTS,
            ),
            // ops: seal-missing
            Sealing::Unsealed if web::is_web(map) => Err(Error::Configuration(format!(
                "this deployment carries no sealed configuration ({} next to the binary), so web \
                 calls are refused: deploy an artifact built by `make package` or the pre-app-build \
                 hook (see docs/security.md)",
                seal::SEAL_FILE
            ))),
            Sealing::Unsealed => Ok(()),
        }
    }

    /// This activation's shared token store, if one is configured (`IMS_ACTION_TOKEN_STORE`).
    /// A developer token needs no IMS call, so it is never shared.
    fn token_store<'a>(
        &'a self,
        params: &Params,
        creds: &Credentials,
        activation: &Activation,
        budget: &'a Budget,
    ) -> Option<Session<'a>> {
        if matches!(creds, Credentials::DevToken(_)) {
            return None;
        }
        let configured = setting::configured(params);
        self.shared
            .session(configured.as_deref(), activation, budget, &self.http)
    }

    /// Memory (and the one-shot file), then the shared store, then IMS.
    fn cached_token(
        &self,
        creds: &Credentials,
        key: &CacheKey,
        budget: &Budget,
        store: Option<&mut Session>,
    ) -> Result<AccessToken, Error> {
        match self.memory_token(creds, key, budget) {
            Some(token) => Ok(token),
            None => self.fresh_token(creds, key, budget, store, None),
        }
    }

    /// A fresh token from memory (or the one-shot file).
    fn memory_token(&self, creds: &Credentials, key: &CacheKey, budget: &Budget) -> Option<AccessToken> {
        let token = self.tokens.get(key, budget.clock().now_ms())?;
        log::debug!("using the cached {} token", creds.method());
        Some(token)
    }

    /// A token not from memory: from the shared store, another container's fetch, or IMS
    /// (single-flight). `refused` is one the API just refused, which must not come back.
    fn fresh_token(
        &self,
        creds: &Credentials,
        key: &CacheKey,
        budget: &Budget,
        store: Option<&mut Session>,
        refused: Option<&AccessToken>,
    ) -> Result<AccessToken, Error> {
        // Only a success is stored: a failed fetch leaves nothing cached. Activations at once
        // (multiplexed mode) share one fetch per credential: the others wait for it.
        self.tokens.single_flight(key, budget, refused, || {
            flight::token(&self.tokens, key, store, refused, || {
                match creds {
                    Credentials::DevToken(_) => log::debug!("using the developer token as is (no IMS call)"),
                    _ => log::info!("getting a new access token ({})", creds.method()),
                }
                creds.fetch(&self.http, budget)
            })
        })
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
pub(crate) fn request_timeout(params: &Params, check: &mut InputCheck) -> Duration {
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

/// The request inputs this deployment lets callers set: its (sealed) `CALLER_INPUTS`.
fn caller_inputs(map: &Map<String, Value>) -> Vec<&'static str> {
    let list = map.get(seal::CALLER_INPUTS).and_then(Value::as_str).unwrap_or("");
    web::REQUEST_INPUTS
        .into_iter()
        .filter(|r| list.split(',').any(|n| n.trim() == *r))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The scrub's cost must not depend on what a caller sends: 50,000 secret-named keys, at the
    /// top level, in headers and in a raw body, add nothing to the activation's secret set.
    #[test]
    fn caller_keys_never_grow_the_secret_set() {
        let bound = json!({"OAUTHS2S_CLIENT_ID": "client-0123456789", "OAUTHS2S_CLIENT_SECRET": "p8e-bound-secret-0123"});
        let Value::Object(bound_map) = bound.clone() else {
            unreachable!()
        };
        let seal =
            seal::Seal::bind(&std::collections::BTreeMap::from([("a".to_string(), bound_map)])).unwrap();
        let action =
            Action::new(AllowList::adobe_only(), TokenCache::in_memory()).with_sealing(Sealing::Sealed(seal));
        let activation = Activation {
            action_name: Some("/ns/pkg/a".into()),
            ..Activation::default()
        };
        let web = json!({"__ow_method": "post", "__ow_headers": {"authorization": "Bearer caller-token-0123456789"}});
        let count = |params: Value| {
            let _scope = scrub::Scope::begin();
            action.admit(params, &activation).map(|_| scrub::registered())
        };
        let mut request = bound.clone();
        request
            .as_object_mut()
            .unwrap()
            .extend(web.as_object().unwrap().clone());
        let baseline = count(request.clone()).unwrap();
        assert!(
            baseline >= 3,
            "the bound secret and the caller's token: {baseline}"
        );
        let mut flood = request;
        let m = flood.as_object_mut().unwrap();
        let mut body = Map::new();
        for i in 0..50_000 {
            body.insert(
                format!("client_secret_{i}"),
                json!(format!("value-{i}-0123456789")),
            );
            m["__ow_headers"][format!("x-token-{i}")] = json!(format!("header-{i}-0123456789"));
        }
        m.insert("__ow_body".into(), Value::Object(body));
        for i in 0..50_000 {
            m.insert(format!("SECRET_TOKEN_{i}"), json!(format!("top-{i}-0123456789")));
        }
        assert_eq!(count(flood.clone()), Ok(baseline));
        // A known secret input a caller adds is refused outright: configuration is sealed.
        flood["JWT_CLIENT_SECRET"] = json!("added-by-a-caller-0123456789");
        assert!(count(flood).is_err());
    }

    #[test]
    fn every_input_read_anywhere_is_known() {
        let known = known_inputs();
        for name in credentials::INPUTS
            .iter()
            .chain(api::INPUTS.iter())
            .chain(web::REQUEST_INPUTS.iter())
            .chain(ACTION_INPUTS.iter())
        {
            assert!(known.contains(name), "{name}");
        }
    }
}
