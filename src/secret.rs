//! A string that must never be printed: client secrets, access tokens, developer tokens.
//! Creating one or exposing it adds it to the running activation's secret set
//! ([`crate::scrub`]), so that whatever an upstream echoes of it is scrubbed from logs and results.

use std::fmt;

/// A secret value. `Debug` and `Display` print `****`; the value is reachable only through
/// [`Secret::expose`], which makes every use greppable.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value (and registers it with the running activation).
    pub fn new(value: impl Into<String>) -> Secret {
        let secret = Secret(value.into());
        crate::scrub::register(&secret.0);
        secret
    }

    /// The value itself, for the one place that must send it. A value cached by an earlier
    /// activation is registered with this one here.
    pub fn expose(&self) -> &str {
        crate::scrub::register(&self.0);
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(****)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("****")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formatting_never_shows_the_value() {
        let s = Secret::new("p8e-very-secret");
        assert_eq!(format!("{s:?} {s}"), "Secret(****) ****");
        assert_eq!(s.expose(), "p8e-very-secret");
    }
}
