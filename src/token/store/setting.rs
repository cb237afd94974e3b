//! `IMS_ACTION_TOKEN_STORE`: which shared token store, if any. Configuration, never caller data:
//! the process environment variable, else the action input of the same name (App Builder
//! delivers `.env` values to an action only as inputs; the seal verifies that input like any
//! other configuration).
//!
//! | value | store |
//! |---|---|
//! | unset, empty, `memory` | none shared: memory (and the one-shot file) only |
//! | `redis://[user:password@]host:port[/db]` | Redis |
//! | `rediss://[user:password@]host:port[/db]` | Redis over TLS (Mozilla's roots plus `SSL_CERT_FILE`) |
//! | `adobe-state`, `adobe-state:<region>` | Adobe I/O State; region `amer` (default), `emea`, `apac`, `aus` |
//!
//! A Redis URL may carry a password: the value is a secret. It is never logged, and an error
//! about it never quotes it. The value is read as printable ASCII only (anything else in a
//! password is percent-encoded), and never sliced where a character could be split.
#![deny(clippy::string_slice, clippy::indexing_slicing)]

use serde_json::Value;

use crate::params::Params;
use crate::secret::Secret;

/// The environment variable and input name.
pub const STORE_SETTING: &str = "IMS_ACTION_TOKEN_STORE";

/// Adobe I/O State regions (`aio-lib-state` `lib/constants.js`); the first is the default.
pub const REGIONS: [&str; 4] = [DEFAULT_REGION, "emea", "apac", "aus"];
/// The region when none is given.
pub const DEFAULT_REGION: &str = "amer";

/// The configured setting: the process environment's `IMS_ACTION_TOKEN_STORE`, else the input of
/// that name. The one place the setting is read, so that the seal check can sit here.
pub fn configured(params: &Params) -> Option<String> {
    static ENV: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    let env = ENV.get_or_init(|| std::env::var(STORE_SETTING).ok().filter(|v| !v.trim().is_empty()));
    env.clone().or_else(|| {
        params
            .get(STORE_SETTING)
            .and_then(Value::as_str)
            .filter(|v| !v.trim().is_empty())
            .map(str::to_string)
    })
}

/// A parsed setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Setting {
    /// No shared store.
    Local,
    /// Redis (its password, if any, is a secret).
    Redis(RedisUrl),
    /// Adobe I/O State in `region`.
    AdobeState {
        /// One of [`REGIONS`].
        region: &'static str,
    },
}

/// Parses a setting. The error says what is expected and never quotes the value.
pub fn parse(value: &str) -> Result<Setting, String> {
    let value = value.trim();
    if value.is_empty() || value.eq_ignore_ascii_case("memory") {
        return Ok(Setting::Local);
    }
    if !value.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("it holds a space, a control or a non-ASCII character; \
                    percent-encode such characters in a Redis user or password (%C3%A9 for é)"
            .into());
    }
    if let Some(rest) = value.strip_prefix("adobe-state") {
        let region = match rest.strip_prefix(':') {
            None if rest.is_empty() => DEFAULT_REGION,
            Some(r) => REGIONS
                .iter()
                .copied()
                .find(|known| known.eq_ignore_ascii_case(r))
                .ok_or_else(|| format!("adobe-state: the region must be one of {}", REGIONS.join(", ")))?,
            None => return Err(expected()),
        };
        return Ok(Setting::AdobeState { region });
    }
    if strip_prefix_ci(value, "redis://").is_none() && strip_prefix_ci(value, "rediss://").is_none() {
        return Err(expected());
    }
    let url = RedisUrl::parse(value)?;
    // The secret part is the password (registered as it parsed): the whole URL holding one is
    // scrubbed too; a URL without one is only a host, fine in a log line.
    if url.password.is_some() {
        crate::scrub::register(value);
    }
    Ok(Setting::Redis(url))
}

/// A parsed `redis://[user:password@]host:port[/db]` or `rediss://…`.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisUrl {
    /// TLS (`rediss://`).
    pub tls: bool,
    /// The host, without brackets for IPv6.
    pub host: String,
    /// The port (6379 when not given).
    pub port: u16,
    /// The database (0 when not given).
    pub db: u32,
    /// The ACL user, when given.
    pub user: Option<String>,
    /// The password, when given.
    pub password: Option<Secret>,
}

impl std::fmt::Debug for RedisUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.display())
    }
}

impl RedisUrl {
    /// Parses a URL; the error never quotes it.
    pub fn parse(url: &str) -> Result<RedisUrl, &'static str> {
        const BAD: &str = "the Redis URL does not parse (redis://[user:password@]host:port[/db])";
        if !url.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(BAD);
        }
        let (tls, rest) = if let Some(rest) = strip_prefix_ci(url, "rediss://") {
            (true, rest)
        } else if let Some(rest) = strip_prefix_ci(url, "redis://") {
            (false, rest)
        } else {
            return Err(BAD);
        };
        let (authority, path) = match rest.find(['/', '?', '#']) {
            Some(at) => (rest.get(..at).ok_or(BAD)?, rest.get(at..).ok_or(BAD)?),
            None => (rest, ""),
        };
        if path.contains(['?', '#']) {
            return Err(BAD);
        }
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8()
                .map(|c| c.into_owned())
                .map_err(|_| BAD)
        };
        let (user, password) = match userinfo {
            None => (None, None),
            Some(info) => {
                let (user, password) = info.split_once(':').unwrap_or((info, ""));
                let user = Some(decode(user)?).filter(|u| !u.is_empty());
                let password = Some(decode(password)?).filter(|p| !p.is_empty());
                (user, password.map(Secret::new))
            }
        };
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let (host, after) = v6.split_once(']').ok_or(BAD)?;
            (host, after.strip_prefix(':'))
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (hostport, None),
            }
        };
        if host.is_empty()
            || !host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '_'))
        {
            return Err(BAD);
        }
        let port = match port {
            None | Some("") => 6379,
            Some(p) => p.parse::<u16>().ok().filter(|p| *p != 0).ok_or(BAD)?,
        };
        let db = match path.trim_start_matches('/') {
            "" => 0,
            db => db.parse().map_err(|_| BAD)?,
        };
        Ok(RedisUrl {
            tls,
            host: host.to_ascii_lowercase(),
            port,
            db,
            user,
            password,
        })
    }

    /// `redis://host:port/db`: what logs may show (never the user or password).
    pub fn display(&self) -> String {
        let scheme = if self.tls { "rediss" } else { "redis" };
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        format!("{scheme}://{host}:{}/{}", self.port, self.db)
    }
}

/// `s` without `prefix` (ASCII, any case); `None` when it does not start so. Never splits a
/// character: `get` refuses a cut inside one.
fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| s.get(prefix.len()..))
        .flatten()
}

fn expected() -> String {
    "expected redis://…, rediss://…, adobe-state or adobe-state:<region>".into()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::indexing_slicing, reason = "tests")]

    use super::*;

    #[test]
    fn the_values_a_deployment_may_give() {
        assert_eq!(parse(""), Ok(Setting::Local));
        assert_eq!(parse("memory"), Ok(Setting::Local));
        assert_eq!(parse("adobe-state"), Ok(Setting::AdobeState { region: "amer" }));
        assert_eq!(
            parse("adobe-state:emea"),
            Ok(Setting::AdobeState { region: "emea" })
        );
        assert_eq!(
            parse(" adobe-state:AUS "),
            Ok(Setting::AdobeState { region: "aus" })
        );
        assert!(parse("adobe-state:mars").is_err());
        assert!(parse("adobe-statex").is_err());
        match parse("redis://user:p%40ss-word@cache.internal:6380/2") {
            Ok(Setting::Redis(url)) => {
                assert_eq!(url.display(), "redis://cache.internal:6380/2");
                assert_eq!(url.password.as_ref().map(|p| p.expose()), Some("p@ss-word"));
            }
            other => panic!("{other:?}"),
        }
        match parse("rediss://:pw@redis.example.com:6380") {
            Ok(Setting::Redis(url)) => assert_eq!(url.display(), "rediss://redis.example.com:6380/0"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn urls_parse_and_show_no_secret() {
        let u = RedisUrl::parse("rediss://user:p%40ss-word@Cache.Internal:6380/2").unwrap();
        assert!(u.tls);
        assert_eq!((u.host.as_str(), u.port, u.db), ("cache.internal", 6380, 2));
        assert_eq!(u.user.as_deref(), Some("user"));
        assert_eq!(u.password.as_ref().map(Secret::expose), Some("p@ss-word"));
        assert_eq!(u.display(), "rediss://cache.internal:6380/2");
        assert_eq!(format!("{u:?}"), "rediss://cache.internal:6380/2");
        let plain = RedisUrl::parse("redis://127.0.0.1").unwrap();
        assert_eq!((plain.port, plain.db, plain.password.is_none()), (6379, 0, true));
        assert_eq!(
            RedisUrl::parse("redis://:pw@[::1]:7000/0").unwrap().display(),
            "redis://[::1]:7000/0"
        );
        for bad in [
            "http://x",
            "redis://",
            "redis://host:0",
            "redis://host:99999",
            "redis://host/x",
            "redis://host?x=1",
            "redis://ho st",
            "redis://user:p8e-hunter2@/x",
            "redis://\u{e9}",
            "rediss://\u{e9}t\u{e9}:6379",
            "redis://h\u{e9}:\u{e9}",
            "redis://:p\u{e9}@host",
        ] {
            assert!(RedisUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_value_that_is_not_printable_ascii_is_a_clear_error_never_a_panic() {
        for bad in [
            "redis://\u{e9}",
            "redis\u{e9}://x",
            "rediss\u{e9}//x",
            "r\u{e9}",
            "redis://:p\u{e9}ssword@host:6379",
            "redis://host:6379/\u{1}",
            "adobe-state:\u{e9}",
        ] {
            let e = parse(bad).unwrap_err();
            assert!(e.contains("non-ASCII") || e.contains("expected"), "{bad}: {e}");
        }
        assert!(parse("redis://:p%C3%A9ssword@host:6379").is_ok());
    }

    #[test]
    fn the_setting_is_hidden_in_dumps_and_scrubbed_from_output() {
        let url = "redis://user:hunter2-secret-pw@redis.example.com:6379/0";
        let Value::Object(params) = serde_json::json!({ STORE_SETTING: url }) else {
            unreachable!()
        };
        assert!(!crate::action::dump::string_parameters(&params).contains("hunter2"));
        let _scope = crate::scrub::Scope::begin();
        assert!(parse(url).is_ok());
        assert_eq!(crate::scrub::scrub_text(&format!("x {url} y")), "x **** y");
        assert_eq!(
            crate::scrub::scrub_text("auth hunter2-secret-pw failed"),
            "auth **** failed"
        );
    }

    #[test]
    fn errors_never_quote_the_value() {
        for bad in [
            "redis://user:hunter2-secret@/x",
            "redis+unix:///tmp/hunter2-secret",
            "https://hunter2-secret@x",
            "hunter2-secret",
        ] {
            let e = parse(bad).unwrap_err();
            assert!(!e.contains("hunter2"), "{e}");
        }
    }
}
