//! The one error type of the action. Every message is written for the person who called the
//! action, names the input or upstream at fault, and never carries a secret: messages are
//! built from input *names*, upstream status codes and upstream error codes, never from values
//! the caller sent as credentials.

use std::fmt;

/// Upstream text quoted in an error message is cut to this many characters.
pub const MAX_QUOTE: usize = 300;

/// The upstream service a request went to, for messages and status mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// Adobe Identity Management (token endpoints).
    Ims,
    /// AEM Data Service (`api.adobeaemcloud.com`).
    AemDataService,
    /// Adobe Analytics 2.0 API.
    Analytics,
    /// An AEM as a Cloud Service author or publish instance.
    Aem,
    /// Adobe I/O State, when it holds the shared token store (never named to callers).
    AdobeState,
    /// The API an `API_ROUTES` route names.
    Api,
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Service::Ims => "IMS",
            Service::AemDataService => "AEM Data Service",
            Service::Analytics => "Analytics",
            Service::Aem => "AEM",
            Service::AdobeState => "Adobe I/O State",
            Service::Api => "the API",
        })
    }
}

/// Everything that can go wrong in one activation.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// Required inputs are absent or empty. `hint` says what each method or operation needs.
    MissingInputs {
        /// Input names, in the order they were checked.
        names: Vec<String>,
        /// Extra guidance appended to the message.
        hint: Option<String>,
    },
    /// An input is present but cannot be used. `reason` never quotes the value.
    InvalidInput {
        /// The input's name, e.g. `JWT_PRIVATE_KEY`.
        name: String,
        /// What is wrong with it, for a human.
        reason: String,
    },
    /// The params differ from the deployment's seal (`action::seal`): every input added, changed
    /// or missing, named for the operator. A web caller's answer names none (`for_web_caller`).
    SealMismatch {
        /// Inputs present but not sealed.
        added: Vec<String>,
        /// Inputs present with another value than the sealed one.
        changed: Vec<String>,
        /// Inputs sealed but absent.
        missing: Vec<String>,
        /// The answer a web caller gets: the same whatever was wrong, no name in it.
        for_web_caller: bool,
    },
    /// The caller is not allowed to use this action.
    Forbidden(String),
    /// IMS refused to issue a token (its `error` / `error_description`).
    ImsRefused {
        /// HTTP status IMS answered with.
        status: u16,
        /// IMS `error` code, e.g. `invalid_client`.
        code: String,
        /// IMS `error_description`.
        description: String,
    },
    /// An Adobe API answered with an error status.
    Upstream {
        /// Which API.
        service: Service,
        /// Its HTTP status.
        status: u16,
        /// Its error text (already shortened and free of secrets).
        detail: String,
        /// Its `Retry-After` header, passed back to the caller on 429.
        retry_after: Option<String>,
    },
    /// An upstream answer that cannot be used: not JSON, wrong shape, or too large.
    BadUpstreamResponse {
        /// Which upstream.
        service: Service,
        /// Its HTTP status.
        status: u16,
        /// What is wrong with it.
        reason: String,
    },
    /// The upstream could not be reached (DNS, connect, TLS, dropped connection).
    Unreachable {
        /// Which upstream.
        service: Service,
        /// The transport error, without URLs' secrets (there are none in our URLs).
        detail: String,
    },
    /// The upstream did not answer in time, or no time was left before the activation deadline.
    Timeout {
        /// Which upstream.
        service: Service,
        /// What ran out: the per-request timeout or the activation deadline.
        detail: String,
    },
    /// The deployment is misconfigured (a damaged or missing seal, an `ALLOWED_IMS_ORGS` that
    /// names no org): nothing is done until the operator fixes it. The message names the setting,
    /// never a value.
    Configuration(String),
    /// A bug of ours (a caught panic, say). The message is generic on purpose.
    Internal(String),
}

impl Error {
    /// A 400 that names one input.
    pub fn invalid(name: impl Into<String>, reason: impl Into<String>) -> Error {
        Error::InvalidInput {
            name: name.into(),
            reason: reason.into(),
        }
    }

    /// The HTTP status the caller gets for this error.
    pub fn status_code(&self) -> u16 {
        match self {
            Error::MissingInputs { .. } | Error::InvalidInput { .. } | Error::SealMismatch { .. } => 400,
            Error::Forbidden(_) => 403,
            Error::ImsRefused { .. } => 502,
            // The API's own 4xx goes back as is (401, 403, 404, 429...); its 5xx is a bad gateway.
            Error::Upstream { status, .. } if (400..500).contains(status) => *status,
            Error::Upstream { .. } => 502,
            Error::BadUpstreamResponse { .. } | Error::Unreachable { .. } => 502,
            Error::Timeout { .. } => 504,
            Error::Configuration(_) | Error::Internal(_) => 500,
        }
    }

    /// The `Retry-After` value to hand back to the caller, if any.
    pub fn retry_after(&self) -> Option<&str> {
        match self {
            Error::Upstream { retry_after, .. } => retry_after.as_deref(),
            _ => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::MissingInputs { names, hint } => {
                write!(f, "missing parameter(s) '{}'", names.join(","))?;
                if let Some(hint) = hint {
                    write!(f, ": {hint}")?;
                }
                Ok(())
            }
            Error::InvalidInput { name, reason } => write!(f, "invalid parameter '{name}': {reason}"),
            Error::SealMismatch {
                for_web_caller: true, ..
            } => f.write_str(
                "this request's parameters differ from the deployment's sealed configuration: \
                 callers may not set or change its inputs (the activation log names them for the \
                 operator)",
            ),
            Error::SealMismatch {
                added,
                changed,
                missing,
                ..
            } => {
                f.write_str("the deployment's parameters differ from what was sealed at build time:")?;
                let mut sep = " ";
                for (what, names) in [("added", added), ("changed", changed), ("missing", missing)] {
                    if !names.is_empty() {
                        let quoted: Vec<String> = names.iter().map(|n| format!("'{n}'")).collect();
                        write!(f, "{sep}{what} {}", quoted.join(", "))?;
                        sep = "; ";
                    }
                }
                f.write_str(
                    ". On a non-web call no caller can add an input: the deployment was changed \
                     after its build (an action update, or aio app deploy --no-build after a .env \
                     edit). Rebuild and redeploy: `make package` then `scripts/deploy-wsk.sh`, or \
                     `aio app deploy` (never --no-build).",
                )
            }
            Error::Forbidden(why) => write!(f, "forbidden: {why}"),
            Error::ImsRefused {
                status,
                code,
                description,
            } => {
                write!(f, "IMS refused the credentials (HTTP {status}): {code}")?;
                if !description.is_empty() {
                    write!(f, ": {description}")?;
                }
                Ok(())
            }
            Error::Upstream {
                service,
                status,
                detail,
                ..
            } => {
                write!(f, "{service} answered HTTP {status}")?;
                if !detail.is_empty() {
                    write!(f, ": {detail}")?;
                }
                Ok(())
            }
            Error::BadUpstreamResponse {
                service,
                status,
                reason,
            } => write!(
                f,
                "{service} answered HTTP {status} with an unusable body: {reason}"
            ),
            Error::Unreachable { service, detail } => write!(f, "{service} could not be reached: {detail}"),
            Error::Timeout { service, detail } => write!(f, "{service} did not answer in time: {detail}"),
            Error::Configuration(what) => write!(f, "configuration error: {what}"),
            Error::Internal(what) => write!(f, "internal error: {what}"),
        }
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_inputs_read_like_the_app_builder_template() {
        let e = Error::MissingInputs {
            names: vec!["OAUTHS2S_CLIENT_ID".into(), "IMS_ORG_ID".into()],
            hint: None,
        };
        assert_eq!(
            e.to_string(),
            "missing parameter(s) 'OAUTHS2S_CLIENT_ID,IMS_ORG_ID'"
        );
        assert_eq!(e.status_code(), 400);
    }

    #[test]
    fn upstream_4xx_keeps_its_status_and_5xx_becomes_502() {
        let e = |status| Error::Upstream {
            service: Service::Analytics,
            status,
            detail: String::new(),
            retry_after: None,
        };
        assert_eq!(e(404).status_code(), 404);
        assert_eq!(e(429).status_code(), 429);
        assert_eq!(e(500).status_code(), 502);
        assert_eq!(e(503).status_code(), 502);
    }
}
