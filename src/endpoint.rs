//! Where credentials and tokens may be sent. Every base URL the action will send a secret to is
//! parsed strictly and checked against the host allowlist before any connection is made:
//! Adobe's own hosts over https, plus the hosts listed in the *process environment* variable
//! `IMS_ACTION_ALLOW_HOSTS`. Params can come from callers of a web action (and `final` does not
//! protect them behind `require-adobe-auth`); the environment cannot, so the allowlist lives there.

use std::fmt;

use crate::error::Error;

/// Adobe domains whose subdomains are trusted over https.
pub const ADOBE_DOMAINS: [&str; 3] = ["adobelogin.com", "adobe.io", "adobeaemcloud.com"];

/// The environment variable that extends the allowlist (comma-separated `host` or `host:port`).
pub const ALLOW_HOSTS_ENV: &str = "IMS_ACTION_ALLOW_HOSTS";

/// Which Adobe hosts an input may name, by the service it reaches. Adobe's domains are not one
/// trust zone: customers run their own code on `*.adobeaemcloud.com`, so a client secret (sent
/// only to IMS) or an access token must not be sendable there by overriding an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostScope {
    /// IMS, where client secrets and signed JWTs go: `*.adobelogin.com`.
    Ims,
    /// Analytics 2.0: `*.adobe.io`.
    Analytics,
    /// AEM Data Service: `api.adobeaemcloud.com` alone; its neighbours are customers' instances.
    AemDataService,
    /// A customer's AEM instance: `*.adobeaemcloud.com`.
    Aem,
    /// An `API_ROUTES` route, which only an access token reaches: Adobe's API gateway
    /// (`*.adobe.io`) and AEM (`*.adobeaemcloud.com`), never IMS, where client secrets go.
    Api,
}

impl HostScope {
    /// Whether `host` (lower case) is one this scope may name over https.
    fn admits(self, host: &str) -> bool {
        let under = |domain: &str| {
            host.strip_suffix(domain)
                .is_some_and(|sub| sub.len() > 1 && sub.ends_with('.'))
        };
        match self {
            HostScope::Ims => under("adobelogin.com"),
            HostScope::Analytics => under("adobe.io"),
            HostScope::AemDataService => host == "api.adobeaemcloud.com",
            HostScope::Aem => under("adobeaemcloud.com"),
            HostScope::Api => under("adobe.io") || under("adobeaemcloud.com"),
        }
    }

    /// The hosts it admits, for messages.
    fn describe(self) -> &'static str {
        match self {
            HostScope::Ims => "*.adobelogin.com",
            HostScope::Analytics => "*.adobe.io",
            HostScope::AemDataService => "api.adobeaemcloud.com",
            HostScope::Aem => "*.adobeaemcloud.com",
            HostScope::Api => "*.adobe.io and *.adobeaemcloud.com",
        }
    }
}

/// Extra hosts allowed besides Adobe's (http or https).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowList {
    extra: Vec<(String, Option<u16>)>,
}

impl AllowList {
    /// Only Adobe's hosts over https.
    pub fn adobe_only() -> AllowList {
        AllowList::default()
    }

    /// Adobe's hosts plus `IMS_ACTION_ALLOW_HOSTS` from the process environment.
    pub fn from_env() -> AllowList {
        AllowList::parse(&std::env::var(ALLOW_HOSTS_ENV).unwrap_or_default())
    }

    /// Adobe's hosts plus a comma-separated list of `host` (any port) or `host:port` entries.
    /// Entries that do not parse are ignored (and logged).
    pub fn parse(spec: &str) -> AllowList {
        let mut extra = Vec::new();
        for entry in spec.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            match split_host_port(&entry.to_ascii_lowercase()) {
                Some((host, port)) => extra.push((host.to_string(), port)),
                // ops: allow-hosts-unparsable
                None => log::warn!("{ALLOW_HOSTS_ENV}: ignoring unparsable entry '{entry}'"),
            }
        }
        AllowList { extra }
    }

    /// Whether `base` is one of the extra hosts (which the environment vouches for).
    pub fn lists(&self, base: &BaseUrl) -> bool {
        self.allows_extra(&base.host, base.port)
    }

    fn allows_extra(&self, host: &str, port: Option<u16>) -> bool {
        self.extra
            .iter()
            .any(|(h, p)| h == host && (p.is_none() || *p == port))
    }
}

/// A base URL that passed the allowlist: `scheme://host[:port][/path]`, no trailing slash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseUrl {
    https: bool,
    host: String,
    port: Option<u16>,
    path: String,
}

impl BaseUrl {
    /// Parses `url` given as input `input`: it must be a host of `scope` over https, or listed
    /// in `allow`.
    pub fn parse(input: &str, url: &str, allow: &AllowList, scope: HostScope) -> Result<BaseUrl, Error> {
        let bad = |reason: &str| Error::invalid(input, reason.to_string());
        let (https, rest) = if let Some(rest) = url.strip_prefix("https://") {
            (true, rest)
        } else if let Some(rest) = url.strip_prefix("http://") {
            (false, rest)
        } else {
            return Err(bad("must be an https:// URL"));
        };
        if url
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || c == '\\')
        {
            return Err(bad("must not contain spaces, backslashes or control characters"));
        }
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(end);
        if authority.contains('@') {
            return Err(bad("must not contain user info ('@') before the host"));
        }
        if path.contains(['?', '#']) {
            return Err(bad("must be a base URL without query or fragment"));
        }
        if path.split('/').any(|seg| seg == ".." || seg == ".") {
            return Err(bad("must not contain '.' or '..' path segments"));
        }
        let (host, port) = split_host_port(authority).ok_or_else(|| bad("has no valid host[:port]"))?;
        if host.ends_with('.') {
            return Err(bad("host must not end with a dot"));
        }
        if host.chars().any(|c| c.is_ascii_uppercase()) {
            return Err(bad("host must be written in lower case"));
        }
        let base = BaseUrl {
            https,
            host: host.to_string(),
            port,
            path: path.trim_end_matches('/').to_string(),
        };
        let adobe_https = https && matches!(base.port, None | Some(443));
        if allow.allows_extra(&base.host, base.port) || adobe_https && scope.admits(&base.host) {
            Ok(base)
        } else if adobe_https && base.is_adobe_host() {
            Err(bad(&format!(
                "host '{}' is not one this input may name (only {} over https)",
                base.host,
                scope.describe()
            )))
        } else if base.is_adobe_host() && !https {
            Err(bad("must use https"))
        } else {
            Err(Error::invalid(
                input,
                format!(
                    "host '{}' is not allowed: credentials are only sent to Adobe hosts over https \
                     (*.adobelogin.com, *.adobe.io, *.adobeaemcloud.com) or hosts listed in the \
                     action's {ALLOW_HOSTS_ENV} environment variable",
                    base.host_port()
                ),
            ))
        }
    }

    fn is_adobe_host(&self) -> bool {
        ADOBE_DOMAINS.iter().any(|d| {
            self.host
                .strip_suffix(d)
                .is_some_and(|sub| sub.len() > 1 && sub.ends_with('.'))
        })
    }

    /// `scheme://host[:port]`.
    pub fn origin(&self) -> String {
        format!(
            "{}://{}",
            if self.https { "https" } else { "http" },
            self.host_port()
        )
    }

    /// `host[:port]`.
    pub fn host_port(&self) -> String {
        match self.port {
            Some(p) => format!("{}:{p}", self.host),
            None => self.host.clone(),
        }
    }

    /// The host alone.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The full URL of `path_and_query` (which starts with `/`) under this base.
    pub fn join(&self, path_and_query: &str) -> String {
        format!("{}{}{}", self.origin(), self.path, path_and_query)
    }
}

impl fmt::Display for BaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.origin(), self.path)
    }
}

/// Splits `host[:port]` or `[v6]:port`; `None` when it does not parse.
fn split_host_port(authority: &str) -> Option<(&str, Option<u16>)> {
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let close = v6.find(']')?;
        let host = &authority[..close + 2];
        match &v6[close + 1..] {
            "" => (host, None),
            p => (host, Some(p.strip_prefix(':')?)),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    let valid_host = if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        !inner.is_empty()
            && inner
                .chars()
                .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.')
    } else {
        // A trailing dot parses here so that the caller can refuse it by name.
        let labels = host.strip_suffix('.').unwrap_or(host);
        !labels.is_empty()
            && labels
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
            && !labels.split('.').any(str::is_empty)
    };
    if !valid_host {
        return None;
    }
    let port = match port {
        None => None,
        Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
            Some(p.parse::<u16>().ok().filter(|p| *p != 0)?)
        }
        Some(_) => return None,
    };
    Some((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(url: &str, allow: &AllowList) -> Result<BaseUrl, Error> {
        BaseUrl::parse("IMS_BASE_URL", url, allow, HostScope::Ims)
    }

    #[test]
    fn adobe_hosts_over_https_pass() {
        let a = AllowList::adobe_only();
        for url in [
            "https://ims-na1.adobelogin.com",
            "https://ims-na1.adobelogin.com/",
            "https://ims-na1-stg1.adobelogin.com:443",
        ] {
            assert!(check(url, &a).is_ok(), "{url}");
        }
        for (scope, url) in [
            (HostScope::Analytics, "https://analytics.adobe.io"),
            (HostScope::Aem, "https://author-p1-e2.adobeaemcloud.com"),
            (HostScope::AemDataService, "https://api.adobeaemcloud.com"),
        ] {
            assert!(BaseUrl::parse("X", url, &a, scope).is_ok(), "{url}");
        }
        // The data service's neighbours are customers' AEM instances: never send a token there.
        for url in ["https://author-p1-e2.adobeaemcloud.com", "https://evil.adobe.io"] {
            assert!(
                BaseUrl::parse("X", url, &a, HostScope::AemDataService).is_err(),
                "{url}"
            );
        }
        assert_eq!(
            BaseUrl::parse(
                "ANALYTICS_BASE_URL",
                "https://analytics.adobe.io/",
                &a,
                HostScope::Analytics
            )
            .unwrap()
            .join("/api/x"),
            "https://analytics.adobe.io/api/x"
        );
    }

    #[test]
    fn everything_else_is_refused_with_the_input_named() {
        let a = AllowList::adobe_only();
        for url in [
            "https://evil.example",
            "https://adobelogin.com.evil.example",
            "https://evil-adobelogin.com",
            "https://adobelogin.com",
            "https://ims-na1.adobelogin.com@evil.example",
            "https://user:pw@ims-na1.adobelogin.com",
            "https://ims-na1.adobelogin.com.",
            "https://IMS-NA1.adobelogin.com",
            "http://ims-na1.adobelogin.com",
            "https://ims-na1.adobelogin.com:8443",
            "https://127.0.0.1",
            "https://[::1]",
            "https://2130706433",
            "ftp://ims-na1.adobelogin.com",
            "ims-na1.adobelogin.com",
            "https://ims-na1.adobelogin.com\\@evil.example",
            "https://ims-na1.adobelogin.com/../x",
            "https://ims-na1.adobelogin.com?x=1",
            // Adobe hosts, but not IMS: customers run code on their AEM instances.
            "https://author-p1-e2.adobeaemcloud.com",
            "https://analytics.adobe.io",
            "https://",
            "https://:443",
        ] {
            let e = check(url, &a).unwrap_err();
            assert_eq!(e.status_code(), 400, "{url}");
            assert!(e.to_string().contains("'IMS_BASE_URL'"), "{url}: {e}");
        }
    }

    #[test]
    fn the_environment_allowlist_admits_exact_hosts_and_ports() {
        let a = AllowList::parse("127.0.0.1:8080, localhost ,[::1]:9000");
        assert_eq!(
            check("http://127.0.0.1:8080", &a).unwrap().origin(),
            "http://127.0.0.1:8080"
        );
        assert!(check("http://127.0.0.1:8081", &a).is_err());
        assert!(check("http://127.0.0.2:8080", &a).is_err());
        assert!(check("http://localhost:1234/base/", &a).is_ok());
        assert_eq!(check("http://[::1]:9000", &a).unwrap().host_port(), "[::1]:9000");
    }
}
