//! AEM as a Cloud Service service credentials: the JSON the AEM Developer Console produces
//! (`{ok, integration: {imsEndpoint, metascopes, technicalAccount: {clientId, clientSecret},
//! email, id, org, privateKey, publicKey}, statusCode}`), given as an object, a JSON string or
//! base64 of the JSON; the bare `integration` object is accepted too. It is a Service Account
//! (JWT) credential in another shape.

use serde_json::{Map, Value};

use crate::endpoint::{AllowList, BaseUrl, HostScope};
use crate::error::Error;
use crate::params::{InputCheck, Kind, check_string, json_type};
use crate::secret::Secret;
use crate::time::Clock;

use super::jwt::metascope_claims;

use super::AuthMethod;
use super::cert::certificate_not_after;
use super::service_account::{MAX_KEY_TEXT, ServiceAccountCredentials, parse_key_cached};

/// The input.
pub const INPUT: &str = "AEM_SERVICE_CREDENTIALS";
/// Warn this long before the certificate expires.
pub const EXPIRY_WARNING_DAYS: i64 = 30;

/// Reads `AEM_SERVICE_CREDENTIALS`.
pub fn from_params(
    params: &crate::params::Params,
    check: &mut InputCheck,
    allow: &AllowList,
    clock: &Clock,
) -> Option<ServiceAccountCredentials> {
    let decoded;
    let root: &Map<String, Value> = match params.get(INPUT) {
        Some(Value::Object(m)) => m,
        Some(Value::String(s)) => match decode_text(s) {
            Ok(m) => {
                decoded = m;
                &decoded
            }
            Err(reason) => {
                check.invalid(Error::invalid(INPUT, reason));
                return None;
            }
        },
        Some(Value::Null) | None => {
            check.missing(INPUT);
            return None;
        }
        Some(other) => {
            check.invalid(Error::invalid(
                INPUT,
                format!(
                    "must be the AEM Developer Console JSON (an object or a string), not {}",
                    json_type(other)
                ),
            ));
            return None;
        }
    };
    let integration = match root.get("integration") {
        Some(Value::Object(m)) => m,
        Some(_) => {
            check.invalid(Error::invalid(INPUT, "'integration' must be an object"));
            return None;
        }
        None => root,
    };
    let technical = integration.get("technicalAccount").and_then(Value::as_object);
    let mut field = |obj: Option<&Map<String, Value>>, path: &str, key: &str, kind: Kind| -> String {
        let label = format!("{INPUT}.{path}");
        match obj.and_then(|o| o.get(key)) {
            Some(Value::String(s)) => match check_string(&label, s, kind) {
                Ok(Some(v)) => return v.to_string(),
                Ok(None) => check.missing(label),
                Err(e) => check.invalid(e),
            },
            Some(Value::Null) | None => check.missing(label),
            Some(other) => check.invalid(Error::invalid(
                label,
                format!("must be a string, not {}", json_type(other)),
            )),
        }
        String::new()
    };
    let ims_endpoint = field(
        Some(integration),
        "integration.imsEndpoint",
        "imsEndpoint",
        Kind::Id,
    );
    let org_id = field(Some(integration), "integration.org", "org", Kind::Id);
    let technical_account_id = field(Some(integration), "integration.id", "id", Kind::Id);
    let client_id = field(
        technical,
        "integration.technicalAccount.clientId",
        "clientId",
        Kind::Id,
    );
    let client_secret = Secret::new(field(
        technical,
        "integration.technicalAccount.clientSecret",
        "clientSecret",
        Kind::Secret,
    ));
    let metascopes_text = field(
        Some(integration),
        "integration.metascopes",
        "metascopes",
        Kind::Text(8192),
    );
    let key_text = field(
        Some(integration),
        "integration.privateKey",
        "privateKey",
        Kind::Text(MAX_KEY_TEXT),
    );
    let certificate = match integration.get("publicKey") {
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.as_str()),
        _ => None,
    };
    if ims_endpoint.is_empty() || key_text.is_empty() {
        return None;
    }
    // imsEndpoint is a bare host in Adobe's JSON; a URL is accepted too.
    let ims_url = if ims_endpoint.contains("://") {
        ims_endpoint
    } else {
        format!("https://{ims_endpoint}")
    };
    let ims = match BaseUrl::parse(
        &format!("{INPUT}.integration.imsEndpoint"),
        &ims_url,
        allow,
        HostScope::Ims,
    ) {
        Ok(b) => b,
        Err(e) => {
            check.invalid(e);
            return None;
        }
    };
    if let Some(pem) = certificate {
        match certificate_not_after(INPUT, pem) {
            Ok(not_after) => check_certificate_expiry(not_after, clock.now_unix(), check),
            Err(e) => check.invalid(e),
        }
    }
    let (private_key, private_key_fingerprint) = match parse_key_cached(INPUT, &key_text) {
        Ok(k) => k,
        Err(e) => {
            check.invalid(e);
            return None;
        }
    };
    Some(ServiceAccountCredentials {
        method: AuthMethod::AemServiceCredentials,
        metascopes: metascope_claims(&ims.origin(), &metascopes_text),
        ims,
        client_id,
        client_secret,
        org_id,
        technical_account_id,
        private_key,
        private_key_fingerprint,
    })
}

/// The client id of the AEM service credentials in `params`, when they are given, whichever
/// credential wins (the AEM host pin needs it). A document that does not decode, or has no
/// client id, is an error naming the input.
pub fn client_id(params: &crate::params::Params) -> Result<Option<String>, Error> {
    let decoded;
    let root = match params.get(INPUT) {
        Some(Value::Object(m)) => m,
        Some(Value::String(s)) if !s.trim().is_empty() => {
            decoded = decode_text(s).map_err(|reason| Error::invalid(INPUT, reason))?;
            &decoded
        }
        _ => return Ok(None),
    };
    let integration = root.get("integration").and_then(Value::as_object).unwrap_or(root);
    integration
        .get("technicalAccount")
        .and_then(|t| t.get("clientId"))
        .and_then(Value::as_str)
        .map(|id| Some(id.trim().to_string()))
        .ok_or_else(|| Error::invalid(INPUT, "has no integration.technicalAccount.clientId"))
}

/// The JSON as text, or base64 of it.
pub(crate) fn decode_text(s: &str) -> Result<Map<String, Value>, String> {
    crate::document::json_object(s).map_err(|why| {
        match why {
            "is neither JSON nor base64 of JSON" => {
                "is neither the AEM Developer Console JSON nor base64 of it"
            }
            "is not valid JSON" => {
                "is not valid JSON (expected the AEM Developer Console service credentials)"
            }
            other => other,
        }
        .to_string()
    })
}

fn check_certificate_expiry(not_after: i64, now: i64, check: &mut InputCheck) {
    let date = crate::time::format_date(not_after);
    if not_after <= now {
        check.invalid(Error::invalid(
            INPUT,
            format!(
                "the certificate expired on {date}: in the AEM Developer Console open Integrations → \
                 Technical Accounts and refresh the certificate (Refresh / Add certificate), then use the new JSON"
            ),
        ));
    } else if not_after - now < EXPIRY_WARNING_DAYS * 86_400 {
        // ops: aem-cert-expiring
        log::warn!(
            "{INPUT}: the certificate expires on {date} ({} days left); refresh it in the AEM Developer Console",
            (not_after - now) / 86_400
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;

    #[test]
    fn text_decodes_from_json_or_base64() {
        let json = r#"{"integration":{"org":"O"}}"#;
        let b64 = base64::engine::general_purpose::STANDARD.encode(json);
        assert_eq!(decode_text(json).unwrap(), decode_text(&b64).unwrap());
        assert!(decode_text("%%%").unwrap_err().contains("neither"));
        assert!(decode_text("{oops").unwrap_err().contains("not valid JSON"));
    }
}
