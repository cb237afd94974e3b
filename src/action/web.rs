//! Web actions: what OpenWhisk adds to params for an HTTP caller (`__ow_method`, `__ow_headers`
//! with lower-cased names, `__ow_path`, `__ow_query` and `__ow_body` with `raw-http`), the caller
//! check (`ALLOWED_IMS_ORGS`), and the few request inputs a raw body may carry.

use serde_json::{Map, Value};

use crate::error::Error;
use crate::params::{Kind, check_string};

/// The request inputs: the only inputs a deployment may let callers set (through its sealed
/// `CALLER_INPUTS`). Credentials, endpoints and behaviour never come from a caller.
pub const REQUEST_INPUTS: [&str; 7] = [
    "OPERATION",
    "AEM_PATH",
    "ANALYTICS_RSID",
    "ANALYTICS_REPORT",
    "API_ROUTE",
    "API_PARAMS",
    "API_BODY",
];

/// Params OpenWhisk adds for a web request (a caller cannot set them: the platform refuses
/// reserved names). Any of them marks the activation as a web call.
const WEB_PARAMS: [&str; 6] = [
    "__ow_method",
    "__ow_headers",
    "__ow_path",
    "__ow_body",
    "__ow_query",
    "__ow_user",
];

/// Request headers that carry the caller's own secrets: the IMS token `require-adobe-auth`
/// checked, cookies, and the web action's shared secret (`require-whisk-auth`).
const SECRET_HEADERS: [&str; 3] = ["authorization", "cookie", "x-require-whisk-auth"];

/// Whether these params come from a web call.
pub fn is_web(params: &Map<String, Value>) -> bool {
    WEB_PARAMS.iter().any(|k| params.contains_key(*k))
}

/// The environment variable (which callers cannot override) that restricts callers' orgs;
/// the `ALLOWED_IMS_ORGS` param is used only when it is unset.
pub const ALLOWED_ORGS: &str = "ALLOWED_IMS_ORGS";

/// The HTTP request behind a web activation.
#[derive(Debug, Default)]
pub struct WebRequest {
    /// Lower-case method.
    pub method: String,
    /// Headers, names lower-cased by OpenWhisk.
    pub headers: Map<String, Value>,
    /// Path after the action name.
    pub path: String,
}

impl WebRequest {
    /// The web request, when these params come from one.
    pub fn from_params(params: &Map<String, Value>) -> Option<WebRequest> {
        let method = params.get("__ow_method")?.as_str()?.to_ascii_lowercase();
        let headers = match params.get("__ow_headers") {
            Some(Value::Object(h)) => h
                .iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
                .collect(),
            _ => Map::new(),
        };
        let path = params
            .get("__ow_path")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        Some(WebRequest {
            method,
            headers,
            path,
        })
    }

    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(Value::as_str)
    }

    /// Adds the caller's secret headers to the activation's secret set: they must never come
    /// back in a result or reach a log line.
    pub fn register_secrets(&self) {
        for name in SECRET_HEADERS {
            if let Some(value) = self.header(name) {
                crate::scrub::register(value);
                if let Some((_, credentials)) = value.split_once(' ') {
                    crate::scrub::register(credentials);
                }
            }
        }
    }
}

/// The orgs allowed to call, from the environment or else the param; `None` = anyone.
/// A setting that names no org (`","`, spaces) is a configuration error: it fails closed.
///
/// The org check comes before the seal's (a refused caller learns nothing of the
/// configuration), so the param is used only when `param_vouched` (the seal vouches for it):
/// otherwise the list is unknown and every caller is refused.
pub fn allowed_orgs(params: &Map<String, Value>, param_vouched: bool) -> Result<Option<Vec<String>>, Error> {
    let text = match std::env::var(ALLOWED_ORGS) {
        Ok(env) if !env.trim().is_empty() => env,
        _ if !param_vouched => {
            // ops: allowed-orgs-unsealed
            log::warn!("{ALLOWED_ORGS} differs from the sealed one: every web caller is refused");
            return Err(Error::Forbidden(
                "the caller's IMS org (x-gw-ims-org-id) is not allowed".into(),
            ));
        }
        _ => match params.get(ALLOWED_ORGS) {
            None | Some(Value::Null) => return Ok(None),
            Some(Value::String(s)) => s.clone(),
            Some(_) => {
                return Err(Error::invalid(
                    ALLOWED_ORGS,
                    "must be a comma-separated string of IMS org ids",
                ));
            }
        },
    };
    if text.trim().is_empty() {
        return Ok(None);
    }
    let orgs = crate::credentials::split_list(&text);
    if orgs.is_empty() {
        // ops: allowed-orgs-empty
        return Err(Error::Configuration(format!(
            "{ALLOWED_ORGS} is set but names no org: set it to comma-separated …@AdobeOrg ids, or \
             leave it empty to let any caller the platform admits in"
        )));
    }
    Ok(Some(orgs))
}

/// A web caller whose `x-gw-ims-org-id` is absent or not listed gets 403, before any credential
/// is used.
pub fn check_caller(web: &WebRequest, allowed: Option<&[String]>) -> Result<(), Error> {
    let Some(allowed) = allowed else { return Ok(()) };
    match web.header("x-gw-ims-org-id").map(str::trim) {
        Some(org) if allowed.iter().any(|a| a == org) => Ok(()),
        // ops: org-not-allowed
        Some(_) => Err(Error::Forbidden(
            "the caller's IMS org (x-gw-ims-org-id) is not allowed".into(),
        )),
        // ops: org-header-missing
        None => Err(Error::Forbidden(
            "this action requires an x-gw-ims-org-id header".into(),
        )),
    }
}

/// What a web caller is told of an error. A misconfigured deployment is only that (its message
/// names files, actions and settings: that is for the operator, in the log); a seal mismatch is
/// told the same way whatever the inputs, so a caller learns neither their names nor which are
/// bound.
pub fn answer_for_caller(e: Error, web: bool) -> Error {
    match e {
        _ if !web => e,
        // ops: misconfigured-web
        Error::Configuration(_) => Error::Configuration(
            "this deployment is misconfigured; its operator finds the cause in the activation log".into(),
        ),
        Error::SealMismatch { .. } => Error::SealMismatch {
            added: Vec::new(),
            changed: Vec::new(),
            missing: Vec::new(),
            for_web_caller: true,
        },
        other => other,
    }
}

/// Copies the request inputs in `allowed` (a deployment's `CALLER_INPUTS`) that a raw-http
/// caller sent in `__ow_query` or `__ow_body` (JSON or a form, base64 where OpenWhisk encodes it)
/// into `params`, unless already given.
pub fn merge_request_inputs(params: &mut Map<String, Value>, allowed: &[&str]) -> Result<(), Error> {
    if allowed.is_empty() {
        return Ok(());
    }
    let mut found: Vec<(String, Value)> = Vec::new();
    if let Some(Value::String(q)) = params.get("__ow_query") {
        found.extend(parse_form(q).into_iter().map(|(k, v)| (k, Value::String(v))));
    }
    if let Some(body) = params.get("__ow_body") {
        found.extend(parse_body(body)?);
    }
    for (k, v) in found {
        if allowed.contains(&k.as_str()) && !params.contains_key(&k) {
            params.insert(k, v);
        }
    }
    Ok(())
}

fn parse_body(body: &Value) -> Result<Vec<(String, Value)>, Error> {
    let text = match body {
        Value::Object(m) => return Ok(m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()),
        Value::String(s) if s.trim().is_empty() => return Ok(Vec::new()),
        Value::String(s) => s,
        _ => return Ok(Vec::new()),
    };
    check_string("__ow_body", text, Kind::Text(1024 * 1024))?;
    // OpenWhisk hands raw-http bodies over as text or as base64 (JSON bodies included).
    let plain = text.trim_start().starts_with('{') || text.contains('&') || text.contains('%');
    let decoded = match plain {
        true => text.clone(),
        false => crate::document::base64_text(text).unwrap_or_else(|| text.clone()),
    };
    if decoded.trim_start().starts_with('{') {
        match serde_json::from_str::<Value>(&decoded) {
            Ok(Value::Object(m)) => Ok(m.into_iter().collect()),
            _ => Err(Error::invalid("__ow_body", "is not a JSON object")),
        }
    } else {
        Ok(parse_form(&decoded)
            .into_iter()
            .map(|(k, v)| (k, Value::String(v)))
            .collect())
    }
}

/// Decodes `a=b&c=d` (`+` as space, `%XX`), as the `form_urlencoded` crate reads forms.
pub fn parse_form(s: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(s.as_bytes()).into_owned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    #[test]
    fn only_request_inputs_come_from_a_raw_body_and_bound_params_win() {
        let body = base64::engine::general_purpose::STANDARD.encode(
            r#"{"OPERATION":"aem-get","AEM_PATH":"/content/x.json","IMS_BASE_URL":"https://evil.example"}"#,
        );
        let mut p = map(json!({"__ow_method": "post", "__ow_body": body, "OPERATION": "aem-quota"}));
        merge_request_inputs(&mut p, &REQUEST_INPUTS).unwrap();
        assert_eq!(p["OPERATION"], "aem-quota");
        assert_eq!(p["AEM_PATH"], "/content/x.json");
        assert!(!p.contains_key("IMS_BASE_URL"));
    }

    #[test]
    fn forms_and_queries_merge_too() {
        let mut p =
            map(json!({"__ow_query": "AEM_PATH=%2Fcontent%2Fa.json&x=1", "__ow_body": "OPERATION=aem-get"}));
        let before = p.clone();
        merge_request_inputs(&mut p, &[]).unwrap();
        assert_eq!(p, before, "nothing opted in, nothing merged");
        merge_request_inputs(&mut p, &["AEM_PATH"]).unwrap();
        assert_eq!(p["AEM_PATH"], "/content/a.json");
        assert!(!p.contains_key("OPERATION"), "not opted in");
        assert!(!p.contains_key("x"));
    }

    #[test]
    fn an_org_list_of_separators_fails_closed() {
        for text in [",", " , ,", ",,,\t,"] {
            let e = allowed_orgs(&map(json!({ "ALLOWED_IMS_ORGS": text })), true).unwrap_err();
            assert_eq!(e.status_code(), 500, "{text:?}: {e}");
            assert!(e.to_string().contains("ALLOWED_IMS_ORGS"), "{e}");
        }
        // Blank is what aio makes of an unset variable: no restriction configured.
        assert_eq!(
            allowed_orgs(&map(json!({"ALLOWED_IMS_ORGS": "  "})), true).unwrap(),
            None
        );
        assert_eq!(
            allowed_orgs(&map(json!({"ALLOWED_IMS_ORGS": " A@AdobeOrg, "})), true).unwrap(),
            Some(vec!["A@AdobeOrg".to_string()])
        );
        assert_eq!(allowed_orgs(&map(json!({})), true).unwrap(), None);
        assert_eq!(
            allowed_orgs(&map(json!({})), false).unwrap_err().status_code(),
            403
        );
    }

    #[test]
    fn org_check() {
        let web = WebRequest::from_params(&map(
            json!({"__ow_method": "GET", "__ow_headers": {"x-gw-ims-org-id": "A@AdobeOrg"}}),
        ))
        .unwrap();
        let allowed = vec!["A@AdobeOrg".to_string()];
        assert!(check_caller(&web, Some(&allowed)).is_ok());
        assert_eq!(
            check_caller(&web, Some(&["B@AdobeOrg".to_string()]))
                .unwrap_err()
                .status_code(),
            403
        );
        let anon = WebRequest::from_params(&map(json!({"__ow_method": "get"}))).unwrap();
        assert_eq!(
            check_caller(&anon, Some(&allowed)).unwrap_err().status_code(),
            403
        );
        assert!(check_caller(&anon, None).is_ok());
    }

    #[test]
    fn forms_survive_junk() {
        assert_eq!(
            parse_form("a=%2Fb+c%zz%&&d"),
            vec![("a".into(), "/b c%zz%".into()), ("d".into(), String::new())]
        );
    }
}
