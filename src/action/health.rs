//! `OPERATION=health`: every configured credential's state at a glance, for the web view
//! (`web-src/`) and for scripts. The JSON contract is in `docs/health.md`.
//!
//! Each credential kind whose inputs are present is parsed on its own, so that one broken
//! credential does not hide the others: a credential that does not parse is reported with its
//! 400 message instead of failing the call. That is why [`crate::Action::run`] answers `health`
//! before it requires the active credential to parse.
//!
//! Nothing secret is returned: client ids, orgs, scopes, certificate dates and token *times*
//! only. With `check=true` each credential gets a token through the action's own cached path
//! (a cached token counts), and IMS's refusal, if any, is quoted as the action quotes it
//! everywhere else. The whole result goes through the action's secret scrub like any other.

use serde_json::{Map, Value, json};

use crate::activation::Activation;
use crate::credentials::{self, AuthMethod, Credentials, aem_service, cert, dev_token};
use crate::error::{Error, Service};
use crate::http::Budget;
use crate::params::{InputCheck, Kind, Params};
use crate::time;
use crate::token::store::envelope::Envelope;
use crate::token::{AccessToken, CacheKey};

use super::{Action, web};

use crate::api::aem_environment::environment_of;
use crate::api::{aem_quota, route};

/// The request input that asks for a live check; a caller may always set it.
pub const CHECK_INPUT: &str = "check";

/// What Adobe says about Service Account (JWT) credentials, and what to do.
pub const JWT_NOTICE: &str = "Service Account (JWT) credentials are retired by Adobe (end of life \
    2025-06-30, switched off from 2026-03-01): add an OAuth Server-to-Server credential to the \
    project in the Developer Console and move to it.";

/// A developer token this close to its expiry is a warning.
const DEV_TOKEN_WARNING_MS: u64 = 60 * 60 * 1000;

/// Whether these params ask for the health operation.
pub fn is_requested(params: &Params) -> bool {
    matches!(params.get("OPERATION"), Some(Value::String(s)) if s.trim() == crate::api::HEALTH)
}

/// A credential's state, worst wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum State {
    Ok,
    Warning,
    Error,
}

impl State {
    fn name(self) -> &'static str {
        match self {
            State::Ok => "ok",
            State::Warning => "warning",
            State::Error => "error",
        }
    }
}

/// One credential's report while it is being put together.
struct Report {
    entry: Map<String, Value>,
    state: State,
    reasons: Vec<String>,
}

impl Report {
    fn raise(&mut self, state: State, reason: impl Into<String>) {
        self.state = self.state.max(state);
        self.reasons.push(reason.into());
    }

    fn put(&mut self, key: &str, value: Value) {
        self.entry.insert(key.to_string(), value);
    }

    /// Strings only when they say something: a field that does not apply is absent.
    fn put_text(&mut self, key: &str, value: &str) {
        if !value.is_empty() {
            self.put(key, Value::String(value.to_string()));
        }
    }

    fn finish(mut self) -> Value {
        self.put("state", Value::String(self.state.name().into()));
        let reasons = self.reasons.into_iter().map(Value::String).collect();
        self.entry.insert("reasons".into(), Value::Array(reasons));
        Value::Object(self.entry)
    }
}

/// The health report (the body of a 200). Only a malformed `check`, `AUTH_METHOD` or
/// `HTTP_TIMEOUT_MS` is an error: everything wrong with a credential is part of the report.
pub fn report(action: &Action, params: &Params, activation: &Activation) -> Result<Value, Error> {
    let mut inputs = InputCheck::new(*params);
    let wanted = check_flag(params, &mut inputs);
    let timeout = super::request_timeout(params, &mut inputs);
    let forced = match inputs.optional("AUTH_METHOD", Kind::Id) {
        Some(name) => AuthMethod::parse(name).or_else(|| {
            inputs.invalid(Error::invalid(
                "AUTH_METHOD",
                "must be one of oauth-s2s, jwt, aem-service-credentials, dev-token",
            ));
            None
        }),
        None => None,
    };
    inputs.finish()?;
    let budget = Budget::new(activation, timeout, &action.clock);
    // The forced method counts as configured even when its inputs are missing: it is the one
    // the action would use, so its missing inputs are the news.
    let configured: Vec<AuthMethod> = AuthMethod::ALL
        .into_iter()
        .filter(|m| forced == Some(*m) || m.is_present(params))
        .collect();
    let active = forced.or_else(|| configured.first().copied());

    let mut entries = Vec::new();
    let mut quota = Value::Null;
    for method in configured {
        let is_active = Some(method) == active;
        let (entry, checked) = credential(action, params, activation, method, is_active, wanted, &budget);
        if is_active && wanted {
            quota = quota_report(action, params, activation, checked, &budget);
        }
        entries.push(entry);
    }
    let mut report = json!({
        "generated_at": time::format_datetime(action.clock.now_unix()),
        "credentials": entries,
        "quota": quota,
    });
    if let Some(routes) = routes(params, &action.allow) {
        report["routes"] = routes;
    }
    Ok(report)
}

/// What the deployment's `API_ROUTES` exposes: each route's name, method and host (never its
/// query, headers or body), or why the table is refused; `None` without a table.
fn routes(params: &Params, allow: &crate::endpoint::AllowList) -> Option<Value> {
    match route::Table::from_params(params, allow) {
        Ok(None) => None,
        Ok(Some(table)) => Some(Value::Array(
            table
                .routes()
                .map(|r| json!({"name": r.name(), "method": r.method_name(), "host": r.host()}))
                .collect(),
        )),
        Err(e) => Some(json!({ "error": e.to_string() })),
    }
}

/// The parsed credential and the outcome of its check, for the quota call.
type Checked = Option<(Credentials, Result<AccessToken, Error>)>;

fn credential(
    action: &Action,
    params: &Params,
    activation: &Activation,
    method: AuthMethod,
    active: bool,
    wanted: bool,
    budget: &Budget,
) -> (Value, Checked) {
    let mut report = Report {
        entry: Map::new(),
        state: State::Ok,
        reasons: Vec::new(),
    };
    report.put("kind", json!(method.name()));
    report.put("title", json!(title(method)));
    report.put("active", json!(active));

    let mut inputs = InputCheck::new(*params);
    let creds = credentials::parse(method, params, &mut inputs, &action.allow, &action.clock);
    let problem = inputs.finish().err();
    if let Some(problem) = &problem {
        report.raise(State::Error, problem.to_string());
    }
    if let Some(creds) = &creds {
        describe(creds, &mut report);
    }
    match method {
        AuthMethod::Jwt => {
            report.put("notice", json!(JWT_NOTICE));
            report.raise(State::Warning, JWT_NOTICE);
        }
        AuthMethod::AemServiceCredentials => certificate(params, action.clock.now_unix(), &mut report),
        AuthMethod::DevToken => {
            if let Some(Credentials::DevToken(t)) = &creds {
                dev_token_expiry(t, action.clock.now_ms(), &mut report);
            }
        }
        AuthMethod::OAuthS2s => {}
    }

    let key = creds.as_ref().map(Credentials::cache_key);
    let mut outcome = None;
    let check = match (wanted, &creds, &key, &problem) {
        (false, ..) => Value::Null,
        (true, _, _, Some(problem)) => failed_check(problem),
        (true, Some(creds), Some(_), None) => {
            let result = action.token_for(params, creds, activation, budget);
            let value = check_report(&result, &mut report);
            outcome = Some(result);
            value
        }
        (true, ..) => failed_check(&Error::Internal("the credential did not parse".into())),
    };
    report.put(
        "token",
        token_state(action, params, creds.as_ref(), activation, budget),
    );
    report.put("check", check);
    let checked = match (creds, outcome) {
        (Some(creds), Some(outcome)) => Some((creds, outcome)),
        _ => None,
    };
    (report.finish(), checked)
}

/// The `check` field for a token fetch's outcome; a refusal is an error, a fetch that could not
/// finish a warning.
fn check_report(outcome: &Result<AccessToken, Error>, report: &mut Report) -> Value {
    match outcome {
        Ok(t) => json!({
            "ok": true,
            "obtained_at": datetime_ms(t.obtained_at_ms),
            "expires_at": datetime_ms(t.expires_at_ms),
        }),
        Err(e) => {
            match e {
                Error::ImsRefused { code, .. } => {
                    report.raise(State::Error, format!("{e}. {}.", ims_advice(code)));
                }
                _ => report.raise(
                    State::Warning,
                    format!("The check could not finish: {e}. Try again later."),
                ),
            }
            failed_check(e)
        }
    }
}

/// Parses one kind exactly as the action would if it were the active one.
fn title(method: AuthMethod) -> &'static str {
    match method {
        AuthMethod::OAuthS2s => "OAuth Server-to-Server",
        AuthMethod::Jwt => "Service Account (JWT)",
        AuthMethod::AemServiceCredentials => "AEM service credentials",
        AuthMethod::DevToken => "Developer token",
    }
}

/// What identifies the credential; none of it is secret (the client id is sent as `x-api-key`).
fn describe(creds: &Credentials, report: &mut Report) {
    match creds {
        Credentials::OAuthS2s(c) => {
            report.put_text("client_id", &c.client_id);
            report.put_text("org", &c.org_id);
            report.put("scopes", json!(c.scopes));
        }
        Credentials::ServiceAccount(c) => {
            report.put_text("client_id", &c.client_id);
            report.put_text("org", &c.org_id);
            // Metascope claims are `{ims}/s/{name}`: the name is what the Developer Console shows.
            let names: Vec<&str> = c
                .metascopes
                .iter()
                .map(|m| m.rsplit("/s/").next().unwrap_or(m))
                .collect();
            report.put("scopes", json!(names));
            report.put_text("technical_account", &c.technical_account_id);
            if c.method == AuthMethod::AemServiceCredentials
                && let Some((program, environment)) = environment_of(&c.client_id)
            {
                report.put(
                    "environment",
                    json!({"program": program, "environment": environment}),
                );
            }
        }
        Credentials::DevToken(_) => {}
    }
}

/// The AEM certificate's notAfter and days left. An expired or damaged certificate is already
/// the credential's 400 (see [`aem_service`]); under 30 days left is a warning.
fn certificate(params: &Params, now: i64, report: &mut Report) {
    let Some(pem) = aem_certificate_pem(params) else {
        return;
    };
    let Ok(not_after) = cert::certificate_not_after(aem_service::INPUT, &pem) else {
        return;
    };
    let days_left = (not_after - now).div_euclid(86_400);
    report.put(
        "certificate",
        json!({"not_after": time::format_datetime(not_after), "days_left": days_left}),
    );
    if not_after > now && not_after - now < aem_service::EXPIRY_WARNING_DAYS * 86_400 {
        report.raise(
            State::Warning,
            format!(
                "The certificate expires on {} ({days_left} days left). In the AEM Developer Console \
                 open Integrations → Technical Accounts, refresh the certificate, and deploy the new \
                 JSON before then.",
                time::format_date(not_after)
            ),
        );
    }
}

/// `integration.publicKey` of the AEM service credentials (object, JSON text or base64 of it).
fn aem_certificate_pem(params: &Params) -> Option<String> {
    let decoded;
    let root = match params.get(aem_service::INPUT)? {
        Value::Object(m) => m,
        Value::String(s) => {
            decoded = aem_service::decode_text(s).ok()?;
            &decoded
        }
        _ => return None,
    };
    let integration = root.get("integration").and_then(Value::as_object).unwrap_or(root);
    integration
        .get("publicKey")
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
        .map(String::from)
}

fn dev_token_expiry(token: &dev_token::DevToken, now: u64, report: &mut Report) {
    let Some(expires_at) = token.expires_at_ms else {
        return;
    };
    if expires_at > now && expires_at - now < DEV_TOKEN_WARNING_MS {
        report.raise(
            State::Warning,
            format!(
                "The developer token expires at {} (in {} minutes): get a new one in the AEM \
                 Developer Console, or use AEM service credentials for anything that runs unattended.",
                datetime_ms(expires_at),
                (expires_at - now) / 60_000
            ),
        );
    }
}

/// What to do about an IMS refusal, by its `error` code.
fn ims_advice(code: &str) -> &'static str {
    match code {
        "invalid_client" => {
            "The client id or secret is wrong, or the secret was rotated: copy both again from the \
             Developer Console (project → Credentials) and redeploy"
        }
        "invalid_scope" => {
            "A scope is not granted to this credential: compare the scopes with the Developer \
             Console and check the product profiles"
        }
        "invalid_token" | "invalid_signature" | "invalid_grant" => {
            "IMS did not accept the signed assertion: check the private key, the technical account \
             and the certificate in the Developer Console"
        }
        _ => "Check the credential in the Developer Console",
    }
}

fn failed_check(e: &Error) -> Value {
    json!({"ok": false, "status": e.status_code(), "error": e.to_string()})
}

/// The cached token's times in this process and, when a shared token store is configured, in
/// the store (never the token).
fn token_state(
    action: &Action,
    params: &Params,
    creds: Option<&Credentials>,
    activation: &Activation,
    budget: &Budget,
) -> Value {
    let key = creds.map(Credentials::cache_key);
    let memory = match key
        .as_ref()
        .and_then(|k| action.tokens.peek(k, action.clock.now_ms()))
    {
        Some(t) => json!({
            "present": true,
            "obtained_at": datetime_ms(t.obtained_at_ms),
            "expires_at": datetime_ms(t.expires_at_ms),
        }),
        None => json!({"present": false}),
    };
    let store = match (creds, &key) {
        (Some(creds), Some(key)) => store_state(action, params, creds, key, activation, budget),
        _ => Value::Null,
    };
    json!({"memory": memory, "store": store})
}

/// The shared store's entry for the credential: null when no store is configured (or a
/// developer token, which is never shared).
fn store_state(
    action: &Action,
    params: &Params,
    creds: &Credentials,
    key: &CacheKey,
    activation: &Activation,
    budget: &Budget,
) -> Value {
    let Some(mut store) = action.token_store(params, creds, activation, budget) else {
        return Value::Null;
    };
    let Some(env) = Envelope::new(key) else {
        return Value::Null;
    };
    let kind = store.kind();
    match store.peek(&env) {
        Some(Some(t)) => json!({
            "kind": kind,
            "present": true,
            "expires_at": datetime_ms(t.expires_at_ms),
        }),
        Some(None) => json!({"kind": kind, "present": false}),
        None => json!({
            "kind": kind,
            "present": false,
            "error": "the token store did not answer in time; activations use memory and IMS until it does",
        }),
    }
}

/// The content-requests quota with the active credential's token, when it can ask for it (not
/// a developer token; an org known). A token the API refuses is dropped and fetched again once,
/// as in [`crate::Action::run`].
fn quota_report(
    action: &Action,
    params: &Params,
    activation: &Activation,
    checked: Checked,
    budget: &Budget,
) -> Value {
    let Some((creds, outcome)) = checked else {
        return Value::Null;
    };
    if matches!(creds, Credentials::DevToken(_)) || (creds.org_id().is_none() && !params.has("IMS_ORG_ID")) {
        return Value::Null;
    }
    if let Err(e) = outcome {
        return json!({"ok": false, "error": format!("no access token: {e}")});
    }
    let mut inputs = InputCheck::new(*params);
    let call = aem_quota::from_params(params, &mut inputs, &action.allow, Some(&creds));
    let call = match (inputs.finish(), call) {
        (Ok(()), Some(call)) => call,
        (Err(e), _) => return json!({"ok": false, "error": e.to_string()}),
        (Ok(()), None) => return Value::Null,
    };
    let answer = action.call_with_token(
        params,
        &creds,
        activation,
        budget,
        (Service::AemDataService, call.base()),
        |token| call.call(&action.http, token, &creds, budget),
    );
    match answer {
        Ok(body) => json!({"ok": true, "body": body}),
        Err(e) => json!({"ok": false, "error": e.to_string()}),
    }
}

/// `check`: a boolean or "true"/"false", from the params or a raw-http query string.
fn check_flag(params: &Params, inputs: &mut InputCheck) -> bool {
    let from_query = || match params.get("__ow_query") {
        Some(Value::String(q)) => web::parse_form(q)
            .into_iter()
            .find(|(k, _)| k == CHECK_INPUT)
            .map(|(_, v)| Value::String(v)),
        _ => None,
    };
    let value = params.get(CHECK_INPUT).cloned().or_else(from_query);
    match value {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => b,
        Some(Value::String(s)) if s.trim().eq_ignore_ascii_case("true") => true,
        Some(Value::String(s)) if s.trim().eq_ignore_ascii_case("false") || s.trim().is_empty() => false,
        Some(_) => {
            inputs.invalid(Error::invalid(CHECK_INPUT, "must be true or false"));
            false
        }
    }
}

fn datetime_ms(ms: u64) -> String {
    time::format_datetime((ms / 1000) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn flag(v: Value) -> Result<bool, Error> {
        let Value::Object(map) = v else { panic!("object") };
        let params = Params::new(&map);
        let mut inputs = InputCheck::new(params);
        let wanted = check_flag(&params, &mut inputs);
        inputs.finish().map(|()| wanted)
    }

    #[test]
    fn check_is_a_boolean_or_its_words() {
        assert!(!flag(json!({})).unwrap());
        assert!(flag(json!({"check": true})).unwrap());
        assert!(flag(json!({"check": " TRUE "})).unwrap());
        assert!(!flag(json!({"check": "false"})).unwrap());
        assert!(flag(json!({"__ow_query": "x=1&check=true"})).unwrap());
        assert!(!flag(json!({"check": false, "__ow_query": "check=true"})).unwrap());
        let e = flag(json!({"check": "yes"})).unwrap_err();
        assert_eq!(e.to_string(), "invalid parameter 'check': must be true or false");
        assert!(flag(json!({"check": 1})).is_err());
    }

    #[test]
    fn the_worst_state_wins_and_every_reason_is_kept() {
        let mut r = Report {
            entry: Map::new(),
            state: State::Ok,
            reasons: Vec::new(),
        };
        r.raise(State::Error, "a");
        r.raise(State::Warning, "b");
        let v = r.finish();
        assert_eq!(v["state"], "error");
        assert_eq!(v["reasons"], json!(["a", "b"]));
    }

    #[test]
    fn only_the_health_operation_is_recognised() {
        let m = json!({"OPERATION": " health "});
        let Value::Object(m) = m else { unreachable!() };
        assert!(is_requested(&Params::new(&m)));
        let m = json!({"OPERATION": "aem-quota"});
        let Value::Object(m) = m else { unreachable!() };
        assert!(!is_requested(&Params::new(&m)));
    }
}
