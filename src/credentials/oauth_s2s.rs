//! OAuth server-to-server credentials: `OAUTHS2S_*` inputs, or the `__ims_oauth_s2s` object App
//! Builder injects with the `include-ims-credentials` annotation.

use serde_json::{Map, Value};

use crate::access_token::AccessToken;
use crate::endpoint::BaseUrl;
use crate::error::Error;
use crate::http::{Budget, HttpClient};
use crate::params::{InputCheck, Kind, check_string, json_type};
use crate::secret::Secret;

use super::ims::{ExpiresIn, request_token};
use super::{AuthMethod, CacheKey, split_list};

/// The inputs, in the order a missing-input message names them.
pub const INPUTS: [&str; 3] = [
    "OAUTHS2S_CLIENT_ID",
    "OAUTHS2S_CLIENT_SECRET",
    "OAUTHS2S_CECREDENTIALS_METASCOPES",
];

/// The param App Builder injects (an object, or the same object as a JSON string).
pub const INJECTED: &str = "__ims_oauth_s2s";

/// An OAuth server-to-server credential.
#[derive(Debug)]
pub struct OAuthS2sCredentials {
    /// IMS base URL (allow-listed).
    pub ims: BaseUrl,
    /// Client id (also the APIs' `x-api-key`).
    pub client_id: String,
    /// Client secret.
    pub client_secret: Secret,
    /// Scopes, trimmed.
    pub scopes: Vec<String>,
    /// `IMS_ORG_ID` (or the injected `org_id`); empty when not given (only some operations need it).
    pub org_id: String,
}

impl OAuthS2sCredentials {
    /// What decides its token: IMS host, client id, org, scopes, and the secret itself (so that a
    /// rotated secret gets a new token).
    pub fn cache_key(&self) -> CacheKey {
        CacheKey::of(
            AuthMethod::OAuthS2s,
            &[
                self.ims.to_string().as_bytes(),
                self.client_id.as_bytes(),
                self.org_id.as_bytes(),
                self.scopes.join(",").as_bytes(),
                self.client_secret.expose().as_bytes(),
            ],
        )
    }

    /// A new token: `POST {ims}/ims/token/v3` with the client credentials.
    pub fn fetch(&self, http: &HttpClient, budget: &Budget) -> Result<AccessToken, Error> {
        let form = form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "client_credentials")
            .append_pair("client_id", &self.client_id)
            .append_pair("client_secret", self.client_secret.expose())
            .append_pair("scope", &self.scopes.join(","))
            .finish();
        let url = self.ims.join("/ims/token/v3");
        request_token(http, budget, url, form, "token/v3", ExpiresIn::Seconds)
    }
}

/// Reads the credential from `OAUTHS2S_*` inputs, or from `__ims_oauth_s2s` when none of those is given.
pub fn from_params(
    params: &crate::params::Params,
    check: &mut InputCheck,
    ims: BaseUrl,
) -> Option<OAuthS2sCredentials> {
    let org_param = check.optional("IMS_ORG_ID", Kind::Id).map(String::from);
    if !INPUTS.iter().any(|n| params.has(n)) && params.has(INJECTED) {
        return from_injected(params.get(INJECTED)?, check, ims, org_param);
    }
    let client_id = check.required(INPUTS[0], Kind::Id).to_string();
    let client_secret = Secret::new(check.required(INPUTS[1], Kind::Secret));
    let scopes = split_list(check.required(INPUTS[2], Kind::Text(4096)));
    Some(OAuthS2sCredentials {
        ims,
        client_id,
        client_secret,
        scopes,
        org_id: org_param.unwrap_or_default(),
    })
}

/// The injected object: keys `client_id`/`clientId`, `client_secret`/`clientSecret`,
/// `org_id`/`orgId`, and `scopes` as an array (a comma-separated string is accepted too).
fn from_injected(
    value: &Value,
    check: &mut InputCheck,
    ims: BaseUrl,
    org_param: Option<String>,
) -> Option<OAuthS2sCredentials> {
    let parsed;
    let obj: &Map<String, Value> = match value {
        Value::Object(m) => m,
        Value::String(s) => match serde_json::from_str::<Value>(s) {
            Ok(Value::Object(m)) => {
                parsed = m;
                &parsed
            }
            _ => {
                check.invalid(Error::invalid(
                    INJECTED,
                    "must be an object or a JSON object string",
                ));
                return None;
            }
        },
        other => {
            check.invalid(Error::invalid(
                INJECTED,
                format!("must be an object, not {}", json_type(other)),
            ));
            return None;
        }
    };
    let mut field = |names: [&str; 2], kind: Kind| -> String {
        let label = format!("{INJECTED}.{}", names[0]);
        let value = names.iter().find_map(|n| obj.get(*n).filter(|v| !v.is_null()));
        match value {
            Some(Value::String(s)) => match check_string(&label, s, kind) {
                Ok(Some(s)) => return s.to_string(),
                Ok(None) => check.missing(label),
                Err(e) => check.invalid(e),
            },
            Some(other) => check.invalid(Error::invalid(
                label,
                format!("must be a string, not {}", json_type(other)),
            )),
            None => check.missing(label),
        }
        String::new()
    };
    let client_id = field(["client_id", "clientId"], Kind::Id);
    let client_secret = Secret::new(field(["client_secret", "clientSecret"], Kind::Secret));
    let injected_org = match obj.get("org_id").or_else(|| obj.get("orgId")) {
        Some(Value::String(s)) => check_string(&format!("{INJECTED}.org_id"), s, Kind::Id)
            .ok()
            .flatten()
            .map(String::from),
        _ => None,
    };
    let scopes = match obj.get("scopes") {
        Some(Value::Array(items)) => {
            let mut scopes = Vec::new();
            for item in items {
                match item.as_str() {
                    Some(s) if !s.trim().is_empty() => scopes.push(s.trim().to_string()),
                    Some(_) => {}
                    None => {
                        check.invalid(Error::invalid(
                            format!("{INJECTED}.scopes"),
                            "must be an array of strings",
                        ));
                        return None;
                    }
                }
            }
            scopes
        }
        Some(Value::String(s)) => split_list(s),
        Some(Value::Null) | None => Vec::new(),
        Some(other) => {
            check.invalid(Error::invalid(
                format!("{INJECTED}.scopes"),
                format!("must be an array of strings, not {}", json_type(other)),
            ));
            return None;
        }
    };
    if scopes.is_empty() {
        check.missing(format!("{INJECTED}.scopes"));
    }
    Some(OAuthS2sCredentials {
        ims,
        client_id,
        client_secret,
        scopes,
        org_id: org_param.or(injected_org).unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoint::AllowList;
    use crate::params::Params;
    use serde_json::json;

    fn parse(v: Value) -> Result<OAuthS2sCredentials, Error> {
        let Value::Object(map) = v else { panic!("object") };
        let params = Params::new(&map);
        let mut check = InputCheck::new(params);
        let ims = BaseUrl::parse(
            "IMS_BASE_URL",
            "https://ims-na1.adobelogin.com",
            &AllowList::adobe_only(),
            crate::endpoint::HostScope::Ims,
        )?;
        let c = from_params(&params, &mut check, ims);
        check.finish()?;
        c.ok_or_else(|| Error::Internal("none".into()))
    }

    #[test]
    fn scopes_are_split_and_trimmed() {
        let c = parse(json!({
            "OAUTHS2S_CLIENT_ID": "id", "OAUTHS2S_CLIENT_SECRET": "s",
            "OAUTHS2S_CECREDENTIALS_METASCOPES": " AdobeID, openid ,,read_organizations ", "IMS_ORG_ID": "O@AdobeOrg"
        }))
        .unwrap();
        assert_eq!(c.scopes, ["AdobeID", "openid", "read_organizations"]);
        assert_eq!(c.org_id, "O@AdobeOrg");
    }

    #[test]
    fn the_injected_object_works_as_object_or_string_with_either_spelling() {
        let obj =
            json!({"clientId": "id", "client_secret": "s", "orgId": "O@AdobeOrg", "scopes": ["a", "b"]});
        for v in [obj.clone(), Value::String(obj.to_string())] {
            let c = parse(json!({ "__ims_oauth_s2s": v })).unwrap();
            assert_eq!((c.client_id.as_str(), c.org_id.as_str()), ("id", "O@AdobeOrg"));
            assert_eq!(c.client_secret.expose(), "s");
            assert_eq!(c.scopes, ["a", "b"]);
        }
    }

    #[test]
    fn a_broken_injected_object_is_named() {
        let e = parse(json!({"__ims_oauth_s2s": {"client_id": "id", "scopes": "x"}})).unwrap_err();
        assert_eq!(
            e.to_string(),
            "missing parameter(s) '__ims_oauth_s2s.client_secret'"
        );
        let e = parse(json!({"__ims_oauth_s2s": "{not json"})).unwrap_err();
        assert!(e.to_string().contains("'__ims_oauth_s2s'"));
        let e = parse(json!({"__ims_oauth_s2s": {"client_id": "i", "client_secret": "s", "scopes": [1]}}))
            .unwrap_err();
        assert!(e.to_string().contains("__ims_oauth_s2s.scopes"));
    }

    #[test]
    fn wrong_types_are_named() {
        let e = parse(json!({
            "OAUTHS2S_CLIENT_ID": 42, "OAUTHS2S_CLIENT_SECRET": "s", "OAUTHS2S_CECREDENTIALS_METASCOPES": "a"
        }))
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid parameter 'OAUTHS2S_CLIENT_ID': must be a string, not a number"
        );
    }
}
