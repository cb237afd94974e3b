//! The AEM environment that AEM service credentials hold every token to: behind
//! `require-adobe-auth` callers can override a host input, and every other `*.adobeaemcloud.com`
//! host runs someone else's code. Used by the AEM content operation and by API routes alike.

use crate::credentials::{AuthMethod, Credentials, aem_service};
use crate::params::{InputCheck, Params};

/// The client id of the AEM service credentials configured (whichever credential wins), whose
/// environment every token is held to; `None` without them.
pub fn pinned_client_id(
    params: &Params,
    creds: Option<&Credentials>,
    check: &mut InputCheck,
) -> Option<String> {
    match creds {
        Some(Credentials::ServiceAccount(c)) if c.method == AuthMethod::AemServiceCredentials => {
            Some(c.client_id.clone())
        }
        _ => aem_service::client_id(params).unwrap_or_else(|e| {
            check.invalid(e);
            None
        }),
    }
}

/// Program and environment of AEM service credentials, from a client id `cm-p<P>-e<E>-…`.
/// A token minted with them is only sent to that environment's hosts: behind
/// `require-adobe-auth` callers can override `AEM_AUTHOR_URL`, and every other
/// `*.adobeaemcloud.com` host runs someone else's code.
pub fn environment_of(client_id: &str) -> Option<(&str, &str)> {
    let rest = client_id.strip_prefix("cm-p")?;
    let (program, rest) = rest.split_once("-e")?;
    let environment = rest.split('-').next()?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    (digits(program) && digits(environment)).then_some((program, environment))
}

/// Whether `host` is `author-p<P>-e<E>…` or `publish-p<P>-e<E>…` (e.g. `author-p1-e2.adobeaemcloud.com`,
/// `author-p1-e2-cmstg.adobeaemcloud.com`).
pub fn is_environment_host(host: &str, program: &str, environment: &str) -> bool {
    let tag = format!("p{program}-e{environment}");
    ["author-", "publish-"].iter().any(|tier| {
        host.strip_prefix(tier)
            .and_then(|rest| rest.strip_prefix(tag.as_str()))
            .is_some_and(|rest| rest.starts_with('.') || rest.starts_with('-'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_credentials_name_their_environment() {
        assert_eq!(
            environment_of("cm-p7603-e12614-integration"),
            Some(("7603", "12614"))
        );
        assert_eq!(environment_of("cm-p123-e1234"), Some(("123", "1234")));
        assert_eq!(environment_of("some-oauth-client"), None);
        assert_eq!(environment_of("cm-px-e1"), None);
        assert!(is_environment_host(
            "author-p7603-e12614.adobeaemcloud.com",
            "7603",
            "12614"
        ));
        assert!(is_environment_host(
            "publish-p7603-e12614-cmstg.adobeaemcloud.com",
            "7603",
            "12614"
        ));
        assert!(!is_environment_host(
            "author-p7603-e126140.adobeaemcloud.com",
            "7603",
            "12614"
        ));
        assert!(!is_environment_host(
            "author-p1-e2.adobeaemcloud.com",
            "7603",
            "12614"
        ));
        assert!(!is_environment_host(
            "evil-author-p7603-e12614.adobeaemcloud.com",
            "7603",
            "12614"
        ));
    }
}
