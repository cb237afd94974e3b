//! The Adobe APIs the action calls, one module each, chosen by `OPERATION`.

pub mod aem_content;
pub mod aem_quota;
pub mod analytics;

use serde_json::Value;

use crate::credentials::Credentials;
use crate::endpoint::{AllowList, BaseUrl};
use crate::error::{Error, Service};
use crate::http::{Budget, HttpClient, Request, Response};
use crate::params::{InputCheck, Kind, Params};
use crate::time::Clock;
use crate::token::AccessToken;

/// Every input the operations read.
pub const INPUTS: [&str; 9] = [
    "OPERATION",
    "IMS_ORG_ID",
    "AEM_DATA_SERVICE_BASE_URL",
    "ANALYTICS_BASE_URL",
    "ANALYTICS_COMPANY_ID",
    "ANALYTICS_RSID",
    "ANALYTICS_REPORT",
    "AEM_AUTHOR_URL",
    "AEM_PATH",
];

/// The `OPERATION` that reports on every credential instead of calling an API (answered by
/// [`crate::action::health`]).
pub const HEALTH: &str = "health";

/// What `OPERATION` may be, and what each needs.
pub const OPERATIONS: [(&str, &str); 4] = [
    (
        "aem-quota",
        "IMS_ORG_ID (JWT and AEM credentials carry their own org)",
    ),
    (
        "analytics-report",
        "ANALYTICS_COMPANY_ID, and ANALYTICS_RSID or ANALYTICS_REPORT",
    ),
    ("aem-get", "AEM_AUTHOR_URL (and optionally AEM_PATH)"),
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
    ) -> Result<Value, Error> {
        match self {
            Operation::AemQuota(c) => c.call(http, token, creds, budget),
            Operation::AnalyticsReport(c) => c.call(http, token, creds, budget),
            Operation::AemGet(c) => c.call(http, token, creds, budget),
        }
    }

    /// Where the call goes: its base URL.
    pub fn base(&self) -> &BaseUrl {
        match self {
            Operation::AemQuota(c) => c.base(),
            Operation::AnalyticsReport(c) => c.base(),
            Operation::AemGet(c) => c.base(),
        }
    }

    /// Which service the call goes to.
    pub fn service(&self) -> Service {
        match self {
            Operation::AemQuota(_) => Service::AemDataService,
            Operation::AnalyticsReport(_) => Service::Analytics,
            Operation::AemGet(_) => Service::Aem,
        }
    }
}

/// Sends an API request with the bearer token, `accept: application/json` and, when the
/// credential has a client id, `x-api-key`; then maps the answer with [`answer`].
pub fn send(
    http: &HttpClient,
    budget: &Budget,
    token: &AccessToken,
    creds: &Credentials,
    mut req: Request,
) -> Result<Value, Error> {
    req.headers
        .push(("authorization", format!("Bearer {}", token.token.expose())));
    req.headers.push(("accept", "application/json".into()));
    if let Some(client_id) = creds.client_id() {
        req.headers.push(("x-api-key", client_id.to_string()));
    }
    let service = req.service;
    answer(http.send(&req, budget)?, service)
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
    let detail = serde_json::from_slice::<Value>(&resp.body)
        .ok()
        .map(|v| error_text(&v))
        .unwrap_or_default();
    let detail = match &resp.debug_id {
        Some(id) if !detail.is_empty() => format!("{detail} (x-debug-id {id})"),
        _ => detail,
    };
    Err(Error::Upstream {
        service,
        status: resp.status,
        detail: crate::scrub::excerpt(&detail, crate::error::MAX_QUOTE),
        retry_after: resp.retry_after,
    })
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
