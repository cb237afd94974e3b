//! The Adobe APIs the action calls, chosen by `OPERATION`: the route engine ([`route`], any API
//! a deployment's sealed `API_ROUTES` names) and three built-in calls that go through the same
//! engine ([`exchange`]: the token, the Adobe gateway headers, the retry policy).

pub mod aem_content;
pub mod aem_environment;
pub mod aem_quota;
pub mod analytics;
pub mod route;

use std::borrow::Cow;

use serde_json::{Map, Value, json};

use crate::credentials::Credentials;
use crate::endpoint::{AllowList, BaseUrl};
use crate::error::{Error, Service};
use crate::http::{Budget, HttpClient, Request, Response};
use crate::params::{InputCheck, Kind, Params};
use crate::time::Clock;
use crate::token::AccessToken;

/// Every input the operations read.
pub const INPUTS: [&str; 13] = [
    "OPERATION",
    "IMS_ORG_ID",
    "AEM_DATA_SERVICE_BASE_URL",
    "ANALYTICS_BASE_URL",
    "ANALYTICS_COMPANY_ID",
    "ANALYTICS_RSID",
    "ANALYTICS_REPORT",
    "AEM_AUTHOR_URL",
    "AEM_PATH",
    route::ROUTES_INPUT,
    route::ROUTE_INPUT,
    route::PARAMS_INPUT,
    route::BODY_INPUT,
];

/// The `OPERATION` that reports on every credential instead of calling an API (answered by
/// [`crate::action::health`]).
pub const HEALTH: &str = "health";

/// What `OPERATION` may be, and what each needs.
pub const OPERATIONS: [(&str, &str); 5] = [
    (
        "aem-quota",
        "IMS_ORG_ID (JWT and AEM credentials carry their own org)",
    ),
    (
        "analytics-report",
        "ANALYTICS_COMPANY_ID, and ANALYTICS_RSID or ANALYTICS_REPORT",
    ),
    ("aem-get", "AEM_AUTHOR_URL (and optionally AEM_PATH)"),
    (
        "api",
        "API_ROUTES (the deployment's route table) and API_ROUTE, with API_PARAMS and API_BODY as the route takes them",
    ),
    (HEALTH, "nothing more: it reports on every credential given"),
];

/// One API call, its inputs checked.
#[derive(Debug)]
pub enum Operation {
    /// AEM Data Service content-requests quota.
    AemQuota(aem_quota::QuotaCall),
    /// Analytics 2.0 report.
    AnalyticsReport(analytics::ReportCall),
    /// AEM author/publish GET.
    AemGet(aem_content::ContentCall),
    /// One route of `API_ROUTES` (boxed: a route is large, and most calls are not one).
    Api(Box<route::RouteCall>),
}

impl Operation {
    /// Reads `OPERATION` (default `aem-quota`) and that operation's inputs.
    pub fn from_params(
        params: &Params,
        check: &mut InputCheck,
        allow: &AllowList,
        creds: Option<&Credentials>,
        clock: &Clock,
    ) -> Option<Operation> {
        let before = check.problems();
        let name = check.optional("OPERATION", Kind::Id).unwrap_or("aem-quota");
        let dev_token = matches!(creds, Some(Credentials::DevToken(_)));
        let op = match name {
            "aem-quota" if dev_token => None,
            "analytics-report" if dev_token => None,
            "aem-quota" => aem_quota::from_params(params, check, allow, creds).map(Operation::AemQuota),
            "analytics-report" => {
                analytics::from_params(params, check, allow, clock).map(Operation::AnalyticsReport)
            }
            "aem-get" => aem_content::from_params(params, check, allow, creds).map(Operation::AemGet),
            "api" => route::from_params(params, check, allow, creds).map(|c| Operation::Api(Box::new(c))),
            // Answered by the action before any credential is required: it reports on each
            // credential instead of failing on the first that does not parse.
            HEALTH => {
                check.invalid(Error::Internal("the health operation is not an API call".into()));
                return None;
            }
            _ => {
                check.invalid(Error::invalid(
                    "OPERATION",
                    format!(
                        "must be one of {}",
                        OPERATIONS.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
                    ),
                ));
                return None;
            }
        };
        if dev_token && op.is_none() {
            check.invalid(Error::invalid(
                "OPERATION",
                format!("{name} needs an API key (a client id); a developer token works with aem-get only"),
            ));
        }
        // Say what the operation needs only when its own inputs are at fault.
        if check.problems() > before
            && let Some((_, needs)) = OPERATIONS.iter().find(|(n, _)| *n == name)
        {
            check.hint(format!("{name} needs {needs}"));
        }
        op
    }

    /// Makes the call with `token`.
    pub fn call(
        &self,
        http: &HttpClient,
        token: &AccessToken,
        creds: &Credentials,
        budget: &Budget,
    ) -> Result<Reply, Error> {
        match self {
            Operation::AemQuota(c) => c.call(http, token, creds, budget).map(Reply::json),
            Operation::AnalyticsReport(c) => c.call(http, token, creds, budget).map(Reply::json),
            Operation::AemGet(c) => c.call(http, token, creds, budget).map(Reply::json),
            Operation::Api(c) => c.call(http, token, creds, budget),
        }
    }

    /// Where the call goes: its base URL.
    pub fn base(&self) -> &BaseUrl {
        match self {
            Operation::AemQuota(c) => c.base(),
            Operation::AnalyticsReport(c) => c.base(),
            Operation::AemGet(c) => c.base(),
            Operation::Api(c) => c.base(),
        }
    }

    /// Which service the call goes to.
    pub fn service(&self) -> Service {
        match self {
            Operation::AemQuota(_) => Service::AemDataService,
            Operation::AnalyticsReport(_) => Service::Analytics,
            Operation::AemGet(_) => Service::Aem,
            Operation::Api(_) => Service::Api,
        }
    }
}

/// What an operation answers: a status, a content type and a body. The built-in operations
/// answer 200 with the API's JSON; a route answers the API's own 2xx or 4xx.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// The HTTP status.
    pub status: u16,
    /// `application/json`, or `text/plain; charset=utf-8` for a text body.
    pub content_type: &'static str,
    /// The body: JSON, or a string for a text body.
    pub body: Value,
    /// The API's `Retry-After`, passed on with a 429.
    pub retry_after: Option<String>,
}

impl Reply {
    /// A 200 with a JSON body.
    pub fn json(body: Value) -> Reply {
        Reply {
            status: 200,
            content_type: JSON,
            body,
            retry_after: None,
        }
    }
}

const JSON: &str = "application/json";
const TEXT: &str = "text/plain; charset=utf-8";

/// Whether to send `x-api-key` (a client id is no secret: Adobe's gateway wants it in clear).
#[derive(Debug, Clone)]
pub enum ApiKey {
    /// When the credential has a client id (the built-in operations).
    IfAny,
    /// This one (a route with `adobe_headers`).
    Send(String),
    /// Never (a route without `adobe_headers`).
    Omit,
}

/// The engine's one exchange with an API: the bearer token, `accept: application/json` unless
/// the request names another, `x-api-key` as `api_key` says, then the HTTP client's retry policy
/// (transient faults and throttling, for requests marked `retryable`). Every operation and every
/// route goes through here.
pub fn exchange(
    http: &HttpClient,
    budget: &Budget,
    token: &AccessToken,
    creds: &Credentials,
    mut req: Request,
    api_key: &ApiKey,
) -> Result<Response, Error> {
    req.headers
        .push(("authorization".into(), format!("Bearer {}", token.token.expose())));
    if !req.headers.iter().any(|(k, _)| k == "accept") {
        req.headers.push(("accept".into(), JSON.into()));
    }
    let key = match api_key {
        ApiKey::IfAny => creds.client_id().map(str::to_string),
        ApiKey::Send(key) => Some(key.clone()),
        ApiKey::Omit => None,
    };
    if let Some(key) = key {
        req.headers.push((Cow::Borrowed("x-api-key"), key));
    }
    http.send(&req, budget)
}

/// The object inside `v` (a built-in route's values), or an empty one.
fn object(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// Maps a route's answer: a 2xx or a 4xx other than 401 is passed on with its status and its
/// body (JSON, else text); a 401 is an error (the token is fetched again once); a 5xx is a 502.
pub fn reply(resp: Response, service: Service) -> Result<Reply, Error> {
    let passed_on =
        (200..300).contains(&resp.status) || (400..500).contains(&resp.status) && resp.status != 401;
    if !passed_on {
        return Err(upstream_error(&resp, service));
    }
    let media = resp
        .content_type
        .as_deref()
        .and_then(|ct| ct.split(';').next())
        .map(|m| m.trim().to_ascii_lowercase())
        .unwrap_or_default();
    let json_media = media == JSON || media.ends_with("+json");
    let (content_type, body) = if resp.body.is_empty() {
        (JSON, json!({}))
    } else if json_media || media.is_empty() {
        match serde_json::from_slice::<Value>(&resp.body) {
            // An object or array as is; OpenWhisk may take a bare string for base64.
            Ok(v @ (Value::Object(_) | Value::Array(_))) => (JSON, v),
            Ok(other) => (JSON, json!({ "value": other })),
            Err(_) if json_media => {
                return Err(Error::BadUpstreamResponse {
                    service,
                    status: resp.status,
                    reason: format!("not JSON ({media})"),
                });
            }
            Err(_) => text_body(&resp, service)?,
        }
    } else {
        text_body(&resp, service)?
    };
    Ok(Reply {
        status: resp.status,
        content_type,
        body,
        retry_after: resp.retry_after.clone(),
    })
}

fn text_body(resp: &Response, service: Service) -> Result<(&'static str, Value), Error> {
    match std::str::from_utf8(&resp.body) {
        Ok(text) => Ok((TEXT, Value::String(text.to_string()))),
        Err(_) => Err(not_text(resp, service)),
    }
}

fn not_text(resp: &Response, service: Service) -> Error {
    Error::BadUpstreamResponse {
        service,
        status: resp.status,
        reason: format!(
            "neither JSON nor UTF-8 text ({})",
            resp.content_type.as_deref().unwrap_or("no content type")
        ),
    }
}

/// Maps an API answer: 2xx → its JSON; 4xx → that status with the API's error text;
/// 5xx → 502; anything that is not JSON → 502.
pub fn answer(resp: Response, service: Service) -> Result<Value, Error> {
    if (200..300).contains(&resp.status) {
        if resp.body.is_empty() {
            return Ok(Value::Object(Default::default()));
        }
        return resp.json(service);
    }
    Err(upstream_error(&resp, service))
}

/// An error status as an error: the API's error text, its `x-debug-id` and `Retry-After`.
fn upstream_error(resp: &Response, service: Service) -> Error {
    let detail = serde_json::from_slice::<Value>(&resp.body)
        .ok()
        .map(|v| error_text(&v))
        .unwrap_or_default();
    let detail = match &resp.debug_id {
        Some(id) if !detail.is_empty() => format!("{detail} (x-debug-id {id})"),
        _ => detail,
    };
    Error::Upstream {
        service,
        status: resp.status,
        detail: crate::scrub::excerpt(&detail, crate::error::MAX_QUOTE),
        retry_after: resp.retry_after.clone(),
    }
}

/// The error text of the many shapes Adobe APIs use: `{error_code, message}`,
/// `{errorCode, errorDescription}`, problem details `{title, detail}`, `{error: {message}}`…
pub fn error_text(v: &Value) -> String {
    let s = |k: &str| v.get(k).and_then(Value::as_str).filter(|s| !s.is_empty());
    let code = s("error_code").or(s("errorCode")).or(s("code")).or(s("error"));
    let message = s("message")
        .or(s("errorDescription"))
        .or(s("error_description"))
        .or(s("detail"))
        .or(s("title"))
        .or_else(|| {
            v.get("error")
                .and_then(|e| e.get("message"))
                .and_then(Value::as_str)
        });
    match (code, message) {
        (Some(c), Some(m)) => format!("{c}: {m}"),
        (Some(x), None) | (None, Some(x)) => x.to_string(),
        (None, None) => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn error_texts_of_every_shape() {
        assert_eq!(
            error_text(&json!({"error_code": "403003", "message": "Api Key is invalid"})),
            "403003: Api Key is invalid"
        );
        assert_eq!(
            error_text(&json!({"errorCode": "invalid_token", "errorDescription": "IMS token failed"})),
            "invalid_token: IMS token failed"
        );
        assert_eq!(
            error_text(&json!({"type": "about:blank", "title": "Bad Request", "detail": "x"})),
            "x"
        );
        assert_eq!(error_text(&json!([1])), "");
    }
}
