//! Analytics 2.0: `POST /api/{company}/reports` (the JWT seed's call).

use serde_json::{Value, json};

use crate::credentials::Credentials;
use crate::endpoint::{AllowList, BaseUrl, HostScope};
use crate::error::{Error, Service};
use crate::http::{Budget, HttpClient, Method};
use crate::params::{InputCheck, Kind, Params, json_type};
use crate::time::Clock;
use crate::token::AccessToken;

use super::route::Route;
use super::{ApiKey, object};

/// `ANALYTICS_BASE_URL`'s default.
pub const DEFAULT_BASE_URL: &str = "https://analytics.adobe.io";
/// The largest report definition we send.
pub const MAX_REPORT: usize = 256 * 1024;

/// The report call, inputs checked.
#[derive(Debug)]
pub struct ReportCall {
    base: BaseUrl,
    company_id: String,
    report: Value,
}

/// Reads `ANALYTICS_BASE_URL`, `ANALYTICS_COMPANY_ID`, and `ANALYTICS_REPORT` (an object or a JSON
/// string) or, without it, `ANALYTICS_RSID` for the default report.
pub fn from_params(
    params: &Params,
    check: &mut InputCheck,
    allow: &AllowList,
    clock: &Clock,
) -> Option<ReportCall> {
    let url = check
        .optional("ANALYTICS_BASE_URL", Kind::Id)
        .unwrap_or(DEFAULT_BASE_URL);
    let base = BaseUrl::parse("ANALYTICS_BASE_URL", url, allow, HostScope::Analytics)
        .map_err(|e| check.invalid(e))
        .ok();
    let company_id = check.required("ANALYTICS_COMPANY_ID", Kind::Id).to_string();
    if !company_id.is_empty() && !is_company_id(&company_id) {
        check.invalid(Error::invalid(
            "ANALYTICS_COMPANY_ID",
            "must be a global company id: letters, digits, '_' and '-' only (GET /discovery/me lists yours)",
        ));
    }
    let report = match params.get("ANALYTICS_REPORT") {
        Some(Value::Object(o)) => Some(Value::Object(o.clone())),
        Some(Value::String(s)) if !s.trim().is_empty() => {
            if s.len() > MAX_REPORT {
                check.invalid(Error::invalid(
                    "ANALYTICS_REPORT",
                    format!("is too long (at most {MAX_REPORT} bytes)"),
                ));
                None
            } else {
                match serde_json::from_str::<Value>(s) {
                    Ok(v @ Value::Object(_)) => Some(v),
                    _ => {
                        check.invalid(Error::invalid(
                            "ANALYTICS_REPORT",
                            "must be a JSON object (a report definition)",
                        ));
                        None
                    }
                }
            }
        }
        None | Some(Value::Null) | Some(Value::String(_)) => None,
        Some(other) => {
            check.invalid(Error::invalid(
                "ANALYTICS_REPORT",
                format!("must be an object or a JSON string, not {}", json_type(other)),
            ));
            return None;
        }
    };
    let report = match report {
        Some(r) => {
            if r.get("rsid")
                .and_then(Value::as_str)
                .is_none_or(|s| s.trim().is_empty())
            {
                check.invalid(Error::invalid(
                    "ANALYTICS_REPORT",
                    "must name its report suite in \"rsid\"",
                ));
            }
            r
        }
        // Given but unusable (already reported): ANALYTICS_RSID is not what is missing.
        None if params.has("ANALYTICS_REPORT") => Value::Null,
        None => {
            let rsid = check.required("ANALYTICS_RSID", Kind::Id);
            default_report(rsid, clock.now_unix())
        }
    };
    Some(ReportCall {
        base: base?,
        company_id,
        report,
    })
}

/// A global company id (`exampl5`): it becomes a path segment of `/api/{company}/reports`, so
/// nothing that could change the path (no '.', '..', '/', '%') gets through.
fn is_company_id(s: &str) -> bool {
    s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'))
}

/// Page views by day over the last 7 days (whole days, ending today at midnight UTC).
pub fn default_report(rsid: &str, now_unix: i64) -> Value {
    let today = now_unix.div_euclid(86_400) * 86_400;
    let day = |t: i64| format!("{}T00:00:00.000", crate::time::format_date(t));
    json!({
        "rsid": rsid,
        "globalFilters": [{ "type": "dateRange", "dateRange": format!("{}/{}", day(today - 7 * 86_400), day(today)) }],
        "metricContainer": { "metrics": [{ "columnId": "0", "id": "metrics/pageviews" }] },
        "dimension": "variables/daterangeday",
        "settings": { "limit": 7, "page": 0, "dimensionSort": "asc" }
    })
}

impl ReportCall {
    /// Where the call goes.
    pub fn base(&self) -> &BaseUrl {
        &self.base
    }

    /// Calls the API, as a built-in route of the engine.
    pub fn call(
        &self,
        http: &HttpClient,
        token: &AccessToken,
        creds: &Credentials,
        budget: &Budget,
    ) -> Result<Value, Error> {
        // The company id passed is_company_id already; the route holds it to one segment too.
        let call = Route::builtin(
            "reports",
            Service::Analytics,
            Method::Post,
            self.base.clone(),
            "/api/{company}/reports",
            &[("company", "[A-Za-z0-9_-]+")],
            &[],
        )?
        .header("x-proxy-global-company-id", self.company_id.clone())
        // A POST is not repeated after a server error: it may have run, and spent one of the
        // user's 12 calls per 6 s. A 429 is retried all the same (docs/retries.md).
        .retryable(Method::Post.is_idempotent())
        .prepare(
            &object(json!({ "company": self.company_id })),
            Some(self.report.to_string().into_bytes()),
            ApiKey::IfAny,
            None,
        )?;
        super::answer(call.send(http, token, creds, budget)?, Service::Analytics)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn company_ids_are_single_safe_segments() {
        for ok in ["exampl5", "demoorg0", "ACME_co-1"] {
            assert!(is_company_id(ok), "{ok}");
        }
        for bad in [".", "..", "a.b", "a/b", "%2e%2e", "a b", ""] {
            assert!(bad.is_empty() || !is_company_id(bad), "{bad}");
        }
    }

    #[test]
    fn the_default_report_covers_the_last_seven_days() {
        let r = default_report("rs1", 1_445_412_480);
        assert_eq!(r["rsid"], "rs1");
        assert_eq!(
            r["globalFilters"][0]["dateRange"],
            "2015-10-14T00:00:00.000/2015-10-21T00:00:00.000"
        );
        assert_eq!(r["dimension"], "variables/daterangeday");
    }
}
