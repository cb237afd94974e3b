//! Adobe Target's Admin API, the part `make demo` and the route tests call:
//! `GET /{tenant}/target/activities` and `POST /{tenant}/target/audiences` (Adobe's reference:
//! <https://developer.adobe.com/target/administer/admin-api/>). Like the gateway in front of
//! Target it wants an issued token and the credential's client id as `x-api-key`; like Target it
//! wants its versioned media type in `Accept` (activities) and `Content-Type` (audiences).

use serde_json::{Value, json};

use super::RecordedRequest;
use super::apis::{invalid_api_key, issued_token, method_not_allowed};
use super::form::media_type;
use super::response::{Response, not_found};
use super::state::State;

/// Target Admin API v3's media type.
pub const MEDIA_TYPE: &str = "application/vnd.adobe.target.v3+json";

/// The tenant of `/{tenant}/target/...` and what follows, for paths that have one.
pub(crate) fn split(path: &str) -> Option<(&str, &str)> {
    let rest = path.strip_prefix('/')?;
    let (tenant, rest) = rest.split_once('/')?;
    let resource = rest.strip_prefix("target/")?;
    let tenant_ok = !tenant.is_empty() && tenant.bytes().all(|b| b.is_ascii_alphanumeric());
    tenant_ok.then_some((tenant, resource))
}

fn target_error(status: u16, code: &str, message: &str) -> Response {
    Response::with_type(
        status,
        MEDIA_TYPE,
        json!({"errors": [{"errorCode": code, "message": message}]}).to_string(),
    )
}

/// Routes `/{tenant}/target/{resource}`.
pub(crate) fn handle(state: &State, request: &RecordedRequest, tenant: &str, resource: &str) -> Response {
    let Some(token) = issued_token(state, request) else {
        return Response::json(
            401,
            &json!({"error_code": "401013", "message": "Oauth token is not valid"}),
        );
    };
    if request.header("x-api-key") != Some(token.client_id.as_str()) {
        return invalid_api_key();
    }
    match resource {
        "activities" => activities(request, tenant),
        "audiences" => create_audience(state, request, tenant),
        _ => not_found(),
    }
}

const ACTIVITIES: [(u64, &str, &str, &str); 5] = [
    (168816, "ab", "approved", "Homepage hero test"),
    (168817, "xt", "approved", "Returning visitors offer"),
    (168818, "ab", "saved", "Checkout button colour"),
    (168819, "abt", "deactivated", "Auto-allocate banner"),
    (168820, "xt", "paused", "Spring campaign"),
];

/// `GET /{tenant}/target/activities?limit=&offset=&sortBy=`.
fn activities(request: &RecordedRequest, tenant: &str) -> Response {
    if request.method != "GET" {
        return method_not_allowed("GET");
    }
    if media_type(request.header("accept").unwrap_or("")) != MEDIA_TYPE {
        return target_error(
            406,
            "Unsupported.MediaType",
            &format!("Accept must be {MEDIA_TYPE}"),
        );
    }
    let number = |name: &str, default: usize| -> Result<usize, Response> {
        match request.query_param(name) {
            None => Ok(default),
            Some(v) => v
                .parse()
                .map_err(|_| target_error(400, "Request.Invalid", &format!("{name} must be a number"))),
        }
    };
    let (limit, offset) = match (number("limit", 2_147_483_647), number("offset", 0)) {
        (Ok(l), Ok(o)) => (l, o),
        (Err(r), _) | (_, Err(r)) => return r,
    };
    let mut all: Vec<_> = ACTIVITIES.to_vec();
    match request.query_param("sortBy").as_deref() {
        None | Some("id") => {}
        Some("name") => all.sort_by_key(|a| a.3),
        Some("-id") => all.reverse(),
        Some(_) => return target_error(400, "Request.Invalid", "sortBy must be id, -id or name"),
    }
    let activities: Vec<Value> = all
        .iter()
        .skip(offset)
        .take(limit)
        .map(|(id, kind, state, name)| {
            json!({
                "id": id, "type": kind, "state": state, "name": name, "priority": 0,
                "modifiedAt": "2026-11-02T10:15:00Z", "workspace": format!("{tenant}-default"),
            })
        })
        .collect();
    Response::with_type(
        200,
        MEDIA_TYPE,
        json!({"total": ACTIVITIES.len(), "offset": offset, "limit": limit, "activities": activities})
            .to_string(),
    )
}

/// `POST /{tenant}/target/audiences` with `{name, description?, definition}`.
fn create_audience(state: &State, request: &RecordedRequest, tenant: &str) -> Response {
    if request.method != "POST" {
        return method_not_allowed("POST");
    }
    let ct = media_type(request.header("content-type").unwrap_or(""));
    if ct != MEDIA_TYPE && ct != "application/json" {
        return target_error(
            415,
            "Unsupported.MediaType",
            &format!("Content-Type must be {MEDIA_TYPE}"),
        );
    }
    let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(&request.body) else {
        return target_error(400, "Request.Invalid", "the body must be a JSON object");
    };
    let Some(name) = body
        .get("name")
        .and_then(Value::as_str)
        .filter(|n| !n.trim().is_empty())
    else {
        return target_error(400, "Audience.Name.Required", "name is required");
    };
    if !body.get("definition").is_some_and(Value::is_object) {
        return target_error(
            400,
            "Audience.Definition.Required",
            "definition must be an object",
        );
    }
    let id = state
        .random_hex(3)
        .and_then(|h| u64::from_str_radix(&h, 16).ok())
        .unwrap_or(0)
        + 1_000_000;
    Response::with_type(
        200,
        MEDIA_TYPE,
        json!({
            "id": id,
            "name": name,
            "description": body.get("description").cloned().unwrap_or(Value::Null),
            "definition": body["definition"],
            "workspace": format!("{tenant}-default"),
            "modifiedAt": "2026-11-02T10:15:00Z",
        })
        .to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_tenant_target_paths_are_targets() {
        assert_eq!(split("/acme/target/activities"), Some(("acme", "activities")));
        assert_eq!(split("/acme/target/audiences"), Some(("acme", "audiences")));
        for other in [
            "/acme/activities",
            "/target/activities",
            "//target/x",
            "/a%2Fb/target/x",
            "/a.b/target/x",
        ] {
            assert_eq!(split(other), None, "{other}");
        }
    }
}
