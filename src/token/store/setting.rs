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
//! about it never quotes it.

use serde_json::Value;

use super::redis::RedisUrl;
use crate::params::Params;

/// The environment variable and input name.
pub const STORE_SETTING: &str = "IMS_ACTION_TOKEN_STORE";

/// Adobe I/O State regions (`aio-lib-state` `lib/constants.js`); the first is the default.
pub const REGIONS: [&str; 4] = ["amer", "emea", "apac", "aus"];

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
    if let Some(rest) = value.strip_prefix("adobe-state") {
        let region = match rest.strip_prefix(':') {
            None if rest.is_empty() => REGIONS[0],
            Some(r) => REGIONS
                .iter()
                .copied()
                .find(|known| known.eq_ignore_ascii_case(r))
                .ok_or_else(|| format!("adobe-state: the region must be one of {}", REGIONS.join(", ")))?,
            None => return Err(expected()),
        };
        return Ok(Setting::AdobeState { region });
    }
    let lower = value.get(..9).unwrap_or(value).to_ascii_lowercase();
    if !(lower.starts_with("redis://") || lower.starts_with("rediss://")) {
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

fn expected() -> String {
    "expected redis://…, rediss://…, adobe-state or adobe-state:<region>".into()
}

#[cfg(test)]
mod tests {
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
