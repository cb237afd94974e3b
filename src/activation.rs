//! What the platform tells us about one activation: its id and, above all, its deadline.
//! In actionloop mode these come with each activation line (the process environment belongs
//! to the first activation only and goes stale); in one-shot mode from `__OW_*` variables.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

/// The context of one activation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Activation {
    /// `activation_id`, for log lines.
    pub activation_id: Option<String>,
    /// `action_name`, e.g. `/ns/pkg/action`.
    pub action_name: Option<String>,
    /// When the platform kills the activation, as milliseconds since the Unix epoch.
    pub deadline_ms: Option<u64>,
}

impl Activation {
    /// The context of a one-shot process: `__OW_DEADLINE`, `__OW_ACTIVATION_ID`, `__OW_ACTION_NAME`.
    pub fn from_env() -> Activation {
        let var = |name| std::env::var(name).ok().filter(|v| !v.is_empty());
        Activation {
            activation_id: var("__OW_ACTIVATION_ID"),
            action_name: var("__OW_ACTION_NAME"),
            deadline_ms: var("__OW_DEADLINE").and_then(|d| parse_deadline(&Value::String(d))),
        }
    }

    /// The time left before the deadline, measured now; `None` without a deadline.
    pub fn time_left(&self) -> Option<Duration> {
        let deadline = UNIX_EPOCH + Duration::from_millis(self.deadline_ms?);
        Some(
            deadline
                .duration_since(SystemTime::now())
                .unwrap_or(Duration::ZERO),
        )
    }

    /// The deadline as an `Instant`, for timeout arithmetic.
    pub fn deadline_instant(&self) -> Option<Instant> {
        self.time_left().map(|left| Instant::now() + left)
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

    #[test]
    fn a_past_deadline_leaves_no_time() {
        let a = Activation {
            deadline_ms: Some(1),
            ..Activation::default()
        };
        assert_eq!(a.time_left(), Some(Duration::ZERO));
        assert_eq!(Activation::default().time_left(), None);
    }
}
