//! What the platform tells us about one activation: its id and, above all, its deadline.
//! In actionloop mode these come with each activation line (the process environment belongs
//! to the first activation only and goes stale); in one-shot mode from `__OW_*` variables.
//! The namespace and its API key (OpenWhisk sends the key only to actions annotated
//! `provide-api-key`) are what Adobe I/O State, the shared token store, authenticates with.

use serde_json::Value;

use crate::secret::Secret;

/// The context of one activation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Activation {
    /// `activation_id`, for log lines.
    pub activation_id: Option<String>,
    /// `action_name`, e.g. `/ns/pkg/action`.
    pub action_name: Option<String>,
    /// When the platform kills the activation, as milliseconds since the Unix epoch.
    pub deadline_ms: Option<u64>,
    /// `namespace` (`__OW_NAMESPACE`).
    pub namespace: Option<String>,
    /// `api_key` (`__OW_API_KEY`): `uuid:secret`, present only with `provide-api-key`.
    pub api_key: Option<Secret>,
}

impl Activation {
    /// The context of a one-shot process: `__OW_DEADLINE`, `__OW_ACTIVATION_ID`,
    /// `__OW_ACTION_NAME`, `__OW_NAMESPACE`, `__OW_API_KEY`.
    pub fn from_env() -> Activation {
        let var = |name| std::env::var(name).ok().filter(|v| !v.is_empty());
        Activation {
            activation_id: var("__OW_ACTIVATION_ID"),
            action_name: var("__OW_ACTION_NAME"),
            deadline_ms: var("__OW_DEADLINE").and_then(|d| parse_deadline(&Value::String(d))),
            namespace: var("__OW_NAMESPACE"),
            api_key: var("__OW_API_KEY").map(Secret::new),
        }
    }

    /// This activation's namespace and API key, else the process environment's (`__OW_NAMESPACE`,
    /// `__OW_API_KEY`): an actionloop line carries them only when the platform sends them, and
    /// they never change within a container, so the environment the process started with holds.
    pub fn namespace_and_key(&self) -> Option<(String, Secret)> {
        let var = |name| std::env::var(name).ok().filter(|v| !v.is_empty());
        let namespace = self.namespace.clone().or_else(|| var("__OW_NAMESPACE"))?;
        let key = self
            .api_key
            .clone()
            .or_else(|| var("__OW_API_KEY").map(Secret::new))?;
        Some((namespace, key))
    }
}

/// A deadline as OpenWhisk sends it: epoch milliseconds as a string (what the invoker sends)
/// or a number (what the docs say).
pub fn parse_deadline(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n
            .as_u64()
            .or_else(|| n.as_f64().filter(|f| *f > 0.0).map(|f| f as u64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn deadlines_come_as_strings_or_numbers() {
        assert_eq!(parse_deadline(&json!("1700000000000")), Some(1_700_000_000_000));
        assert_eq!(
            parse_deadline(&json!(1_700_000_000_000u64)),
            Some(1_700_000_000_000)
        );
        assert_eq!(parse_deadline(&json!("soon")), None);
        assert_eq!(parse_deadline(&json!(null)), None);
    }
}
