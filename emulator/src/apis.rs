//! The Adobe APIs behind the tokens: AEM Data Service `contentRequestsQuota`, Analytics 2.0
//! `/reports` and `/discovery/me`, and a tiny read-only AEM author (`/content/...`,
//! `/api/assets/...`); Target's Admin API is in `target.rs`, with the gateway checks below.

use serde_json::{Value, json};

use super::RecordedRequest;
use super::form::media_type;
use super::response::{Response, not_found};
use super::state::{IssuedToken, State};

/// The bearer token of the `authorization` header (scheme matched case-insensitively, as the
/// Adobe gateway does).
fn bearer(request: &RecordedRequest) -> Option<&str> {
    let value = request.header("authorization")?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The issued, unexpired token the request carries.
pub(crate) fn issued_token(state: &State, request: &RecordedRequest) -> Option<IssuedToken> {
    bearer(request).and_then(|t| state.valid_token(t))
}

pub(crate) fn method_not_allowed(allow: &str) -> Response {
    Response::json(405, &json!({"error": "method not allowed"})).header("allow", allow)
}

/// The Adobe I/O gateway's answer to a wrong or missing `x-api-key`.
pub(crate) fn invalid_api_key() -> Response {
    Response::json(
        403,
        &json!({"error_code": "403003", "message": "Api Key is invalid"}),
    )
}

// ---- AEM Data Service ----------------------------------------------------------------------

fn problem(status: u16, title: &str, detail: &str) -> Response {
    Response::json(
        status,
        &json!({"type": "about:blank", "title": title, "status": status, "detail": detail}),
    )
}

/// `GET /adobe/stats/statistics/contentRequestsQuota?imsOrgId=ORG&current=true`.
pub(crate) fn content_requests_quota(state: &State, request: &RecordedRequest) -> Response {
    if request.method != "GET" {
        return method_not_allowed("GET");
    }
    let Some(token) = issued_token(state, request) else {
        return Response::json(
            401,
            &json!({"error_code": "401013", "message": "Oauth token is not valid"}),
        );
    };
    if request.header("x-api-key") != Some(token.client_id.as_str()) {
        return invalid_api_key();
    }
    if request.header("x-adobe-accept-experimental") != Some("1") {
        return problem(
            400,
            "Bad Request",
            "X-Adobe-Accept-Experimental header is required",
        );
    }
    let Some(org) = request.query_param("imsOrgId").filter(|o| !o.is_empty()) else {
        return problem(400, "Bad Request", "imsOrgId query parameter is required");
    };
    let header_org = request.header("x-gw-ims-org-id");
    if header_org != Some(org.as_str()) || org != token.org_id {
        return Response::json(
            403,
            &json!({
                "error_code": "403027",
                "message": "x-gw-ims-org-id, imsOrgId and the token's organization must match",
            }),
        );
    }
    let current = request
        .query_param("current")
        .map(|c| c != "false")
        .unwrap_or(true);
    let (year, _, _) = civil_from_days(state.now_ms() / 86_400_000);
    Response::json(
        200,
        &json!({
            "filters": {"imsOrgId": org, "current": current},
            "data": {
                "contentRequestsQuota": {
                    "limit": 50_000_000,
                    "period": "annual",
                    "unit": "contentRequests",
                    "startDate": format!("{year}-01-01"),
                    "endDate": format!("{year}-12-31"),
                    "product": "AEM Sites",
                }
            }
        }),
    )
}

// ---- Analytics 2.0 -------------------------------------------------------------------------

fn analytics_error(status: u16, code: &str, description: &str) -> Response {
    Response::json(
        status,
        &json!({"errorCode": code, "errorDescription": description}),
    )
}

/// `POST /api/{companyId}/reports`.
pub(crate) fn analytics_report(state: &State, request: &RecordedRequest, company: &str) -> Response {
    if request.method != "POST" {
        return method_not_allowed("POST");
    }
    let Some(token) = issued_token(state, request) else {
        let error_id = state.random_hex(8).unwrap_or_default();
        return Response::json(
            401,
            &json!({
                "errorCode": "invalid_token",
                "errorDescription": "IMS token failed IMS Facade token validation",
                "errorId": format!("auth-{error_id}"),
            }),
        );
    };
    if request.header("x-api-key") != Some(token.client_id.as_str()) {
        return invalid_api_key();
    }
    if request.header("x-proxy-global-company-id") != Some(company) {
        return analytics_error(
            400,
            "invalid_request",
            "x-proxy-global-company-id header must name the company in the path",
        );
    }
    if media_type(request.header("content-type").unwrap_or("")) != "application/json" {
        return analytics_error(400, "invalid_request", "Content-Type must be application/json");
    }
    let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(&request.body) else {
        return analytics_error(400, "invalid_request", "Request body must be a JSON object");
    };
    let Some(rsid) = body.get("rsid").and_then(Value::as_str).filter(|r| !r.is_empty()) else {
        return analytics_error(400, "invalid_request", "rsid is required");
    };
    let today = state.now_ms() / 86_400_000;
    let days = body
        .get("globalFilters")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|f| f.get("type").and_then(Value::as_str) == Some("dateRange"))
        .find_map(|f| f.get("dateRange").and_then(Value::as_str))
        .and_then(parse_date_range)
        .unwrap_or_else(|| (today - 7..today).collect());
    let metrics = body
        .get("metricContainer")
        .and_then(|m| m.get("metrics"))
        .and_then(Value::as_array)
        .map(|m| m.len())
        .unwrap_or(1)
        .max(1);
    let settings = body.get("settings");
    let setting = |name: &str, default: u64| {
        settings
            .and_then(|s| s.get(name))
            .and_then(Value::as_u64)
            .unwrap_or(default)
    };
    let limit = setting("limit", 50).clamp(1, 50_000) as usize;
    let page = setting("page", 0) as usize;

    let rsid_seed = rsid
        .bytes()
        .fold(17u64, |h, b| h.wrapping_mul(31).wrapping_add(b.into()));
    let mut totals = vec![0u64; metrics];
    let all_rows: Vec<Value> = days
        .iter()
        .map(|&day| {
            let data: Vec<u64> = (0..metrics)
                .map(|col| fake_metric(rsid_seed, day, col as u64))
                .collect();
            for (t, v) in totals.iter_mut().zip(&data) {
                *t += v;
            }
            let (y, m, d) = civil_from_days(day);
            json!({
                "itemId": format!("{}{:02}{:02}", y - 1900, m - 1, d),
                "value": format!("{} {d}, {y}", MONTHS[(m - 1) as usize]),
                "data": data,
            })
        })
        .collect();
    let total_elements = all_rows.len();
    let total_pages = total_elements.div_ceil(limit).max(1);
    let rows: Vec<Value> = all_rows.into_iter().skip(page * limit).take(limit).collect();
    Response::json(
        200,
        &json!({
            "totalPages": total_pages,
            "firstPage": page == 0,
            "lastPage": page + 1 >= total_pages,
            "numberOfElements": rows.len(),
            "number": page,
            "totalElements": total_elements,
            "columns": {
                "dimension": {"id": "variables/daterangeday", "type": "time"},
                "columnIds": (0..metrics).map(|c| c.to_string()).collect::<Vec<_>>(),
            },
            "rows": rows,
            "summaryData": {"filteredTotals": totals, "totals": totals},
        }),
    )
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// A stable, plausible metric value, so repeated reports agree.
fn fake_metric(seed: u64, day: u64, col: u64) -> u64 {
    let mut x = seed ^ day.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ col.wrapping_mul(0xBF58_476D);
    x ^= x >> 31;
    x = x.wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^= x >> 29;
    1_000 + x % 50_000 / (col + 1)
}

/// Days (since 1970-01-01) covered by `start/end` ISO dates; the end is exclusive when it is
/// midnight, inclusive otherwise. Formulas (`td-7d/td`) are not supported: `None`.
fn parse_date_range(range: &str) -> Option<Vec<u64>> {
    let (start, end) = range.split_once('/')?;
    let (start_day, _) = parse_instant(start)?;
    let (end_day, end_is_midnight) = parse_instant(end)?;
    let end_excl = if end_is_midnight { end_day } else { end_day + 1 };
    // A year and a bit is plenty for a fake; keeps a silly range from allocating gigabytes.
    (start_day < end_excl && end_excl - start_day <= 400).then(|| (start_day..end_excl).collect())
}

/// `YYYY-MM-DD[THH:MM[:SS[.fff]]]` → (days since epoch, is midnight).
fn parse_instant(text: &str) -> Option<(u64, bool)> {
    let text = text.trim();
    let (date, time) = text.split_once('T').unwrap_or((text, ""));
    let mut parts = date.split('-');
    let y: i64 = parts.next()?.parse().ok()?;
    let m: u32 = parts.next()?.parse().ok()?;
    let d: u32 = parts.next()?.parse().ok()?;
    if parts.next().is_some() || !(1..=12).contains(&m) || !(1..=31).contains(&d) || y < 1970 {
        return None;
    }
    let midnight = time.chars().all(|c| matches!(c, '0' | ':' | '.' | 'Z'));
    Some((days_from_civil(y, m, d), midnight))
}

/// The `time` crate's Julian day of 1970-01-01: the emulator judges the action's calendar
/// arithmetic, so it uses its own.
const UNIX_EPOCH_JULIAN_DAY: i32 = 2_440_588;

/// Days since 1970-01-01 of a civil date, never before the epoch; 0 for a date that does not exist.
fn days_from_civil(y: i64, m: u32, d: u32) -> u64 {
    let date = i32::try_from(y).ok().and_then(|y| {
        let month = time::Month::try_from(u8::try_from(m).ok()?).ok()?;
        time::Date::from_calendar_date(y, month, u8::try_from(d).ok()?).ok()
    });
    date.map_or(0, |d| (d.to_julian_day() - UNIX_EPOCH_JULIAN_DAY).max(0) as u64)
}

/// (year, month, day) of a day number since 1970-01-01.
fn civil_from_days(days: u64) -> (i64, u32, u32) {
    let julian = i32::try_from(days).map_or(i32::MAX, |d| d.saturating_add(UNIX_EPOCH_JULIAN_DAY));
    match time::Date::from_julian_day(julian) {
        Ok(date) => (
            i64::from(date.year()),
            u8::from(date.month()) as u32,
            date.day() as u32,
        ),
        Err(_) => (9999, 12, 31),
    }
}

/// `GET /discovery/me`: the companies the token's user may query (the demo's only).
pub(crate) fn analytics_discovery(state: &State, request: &RecordedRequest) -> Response {
    if request.method != "GET" {
        return method_not_allowed("GET");
    }
    let Some(token) = issued_token(state, request) else {
        return analytics_error(
            401,
            "invalid_token",
            "IMS token failed IMS Facade token validation",
        );
    };
    if request.header("x-api-key") != Some(token.client_id.as_str()) {
        return invalid_api_key();
    }
    Response::json(
        200,
        &json!({
            "imsUserId": format!("{}@techacct.adobe.com", token.client_id),
            "imsOrgs": [{
                "imsOrgId": token.org_id,
                "companies": [{"globalCompanyId": "demoorg0", "companyName": "Demo Company",
                               "apiRateLimitPolicy": "aa_api_tier10_tp"}],
            }],
        }),
    )
}

// ---- AEM author ----------------------------------------------------------------------------

/// `GET /content/...` and `/api/assets/...`: a read-only demo DAM. Accepts any unexpired
/// issued token or a registered local development token; no `x-api-key`.
pub(crate) fn aem_content(state: &State, request: &RecordedRequest) -> Response {
    if request.method != "GET" {
        return method_not_allowed("GET");
    }
    let authorised = bearer(request).is_some_and(|t| state.valid_token(t).is_some() || state.is_dev_token(t));
    if !authorised {
        return Response::json(401, &json!({"error": "unauthorized"}))
            .header("www-authenticate", "Bearer realm=\"AEM\"");
    }
    let body = match request.path.as_str() {
        "/content/dam.json" | "/content/dam.1.json" => json!({
            "jcr:primaryType": "sling:Folder",
            "jcr:createdBy": "admin",
            "jcr:created": "Tue Jan 07 2025 10:00:00 GMT+0000",
            "demo": {"jcr:primaryType": "sling:OrderedFolder"},
            "projects": {"jcr:primaryType": "sling:Folder"},
        }),
        "/content/dam/demo.json" | "/content/dam/demo.1.json" => json!({
            "jcr:primaryType": "sling:OrderedFolder",
            "jcr:title": "Demo",
            "hero.jpg": {"jcr:primaryType": "dam:Asset"},
            "logo.png": {"jcr:primaryType": "dam:Asset"},
        }),
        "/content/dam/demo/hero.jpg.json" => json!({
            "jcr:primaryType": "dam:Asset",
            "jcr:createdBy": "admin",
            "jcr:uuid": "5c0d2b9e-7d43-4e0a-9d6f-2b8f3f5f7a11",
        }),
        "/content/dam/projects.json" => json!({"jcr:primaryType": "sling:Folder"}),
        "/api/assets.json" => assets_folder("", &["demo", "projects"]),
        "/api/assets/demo.json" => assets_folder("demo", &["hero.jpg", "logo.png"]),
        _ => return not_found(),
    };
    Response::json(200, &body)
}

/// A Siren document as the Assets HTTP API returns for a folder.
fn assets_folder(path: &str, children: &[&str]) -> Value {
    let name = path.rsplit('/').next().unwrap_or(path);
    let entities: Vec<Value> = children
        .iter()
        .map(|child| {
            let is_asset = child.contains('.');
            json!({
                "class": [if is_asset { "assets/asset" } else { "assets/folder" }],
                "properties": {"name": child},
                "links": [{"rel": ["self"], "href": format!("/api/assets/{}{child}.json",
                    if path.is_empty() { String::new() } else { format!("{path}/") })}],
            })
        })
        .collect();
    json!({
        "class": ["assets/folder"],
        "properties": {"name": name, "elements": children.len()},
        "entities": entities,
        "links": [{"rel": ["self"], "href": format!("/api/assets{}.json",
            if path.is_empty() { String::new() } else { format!("/{path}") })}],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(civil_from_days(days_from_civil(2025, 11, 28)), (2025, 11, 28));
        assert_eq!(civil_from_days(days_from_civil(2024, 2, 29)), (2024, 2, 29));
        let days = parse_date_range("2025-11-01T00:00:00.000/2025-12-01T00:00:00.000");
        assert_eq!(days.map(|d| d.len()), Some(30));
        let days = parse_date_range("2025-11-01T00:00:00/2025-11-03T23:59:59.999");
        assert_eq!(days.map(|d| d.len()), Some(3));
        assert_eq!(parse_date_range("td-7d/td"), None);
        assert_eq!(parse_date_range("2025-12-01/2025-11-01"), None);
    }
}
