//! AEM Data Service: `GET /adobe/stats/statistics/contentRequestsQuota` (the OAuth S2S seed's call).

use serde_json::{Value, json};

use crate::credentials::Credentials;
use crate::endpoint::{AllowList, BaseUrl, HostScope};
use crate::error::{Error, Service};
use crate::http::{Budget, HttpClient, Method};
use crate::params::{InputCheck, Kind, Params};
use crate::token::AccessToken;

use super::route::Route;
use super::{ApiKey, object};

/// The quota's path under the base URL.
const QUOTA_PATH: &str = "/adobe/stats/statistics/contentRequestsQuota";

/// `AEM_DATA_SERVICE_BASE_URL`'s default.
pub const DEFAULT_BASE_URL: &str = "https://api.adobeaemcloud.com";

/// The quota call, inputs checked.
#[derive(Debug)]
pub struct QuotaCall {
    base: BaseUrl,
    org_id: String,
}

/// Reads `AEM_DATA_SERVICE_BASE_URL` and the org (`IMS_ORG_ID`, else the credential's own).
pub fn from_params(
    params: &Params,
    check: &mut InputCheck,
    allow: &AllowList,
    creds: Option<&Credentials>,
) -> Option<QuotaCall> {
    let url = check
        .optional("AEM_DATA_SERVICE_BASE_URL", Kind::Id)
        .unwrap_or(DEFAULT_BASE_URL);
    let base = BaseUrl::parse("AEM_DATA_SERVICE_BASE_URL", url, allow, HostScope::AemDataService)
        .map_err(|e| check.invalid(e))
        .ok();
    let org_id = match check.optional("IMS_ORG_ID", Kind::Id) {
        Some(org) => org.to_string(),
        None => match creds.and_then(Credentials::org_id) {
            Some(org) => org.to_string(),
            None => {
                // When the credential did not parse at all, its own errors say enough; an
                // IMS_ORG_ID of the wrong type is already reported as invalid, not missing.
                if creds.is_some() && !params.has("IMS_ORG_ID") {
                    check.missing("IMS_ORG_ID");
                }
                String::new()
            }
        },
    };
    Some(QuotaCall { base: base?, org_id })
}

impl QuotaCall {
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
        let values = json!({"imsOrgId": self.org_id, "current": "true"});
        let call = Route::builtin(
            "contentRequestsQuota",
            Service::AemDataService,
            Method::Get,
            self.base.clone(),
            QUOTA_PATH,
            &[],
            &[("imsOrgId", ".+"), ("current", "true")],
        )?
        .header("x-gw-ims-org-id", self.org_id.clone())
        .header("x-adobe-accept-experimental", "1")
        .prepare(&object(values), None, ApiKey::IfAny, None)?;
        super::answer(call.send(http, token, creds, budget)?, Service::AemDataService)
    }
}
