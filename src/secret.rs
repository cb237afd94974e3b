//! A string that must never be printed: client secrets, access tokens, developer tokens.
//! Creating one or exposing it adds it to the running activation's secret set
//! ([`crate::scrub`]), so that whatever an upstream echoes of it is scrubbed from logs and results.
//! Dropping one overwrites the value, so that it does not linger in freed memory.

use std::fmt;

use zeroize::Zeroize;

/// A secret value. `Debug` and `Display` print `****`; the value is reachable only through
/// [`Secret::expose`], which makes every use greppable.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret {
    value: String,
    /// Whether the value as a whole is scrubbed (see [`Secret::private`]).
    scrubbed: bool,
}

impl Secret {
    /// Wraps a value (and registers it with the running activation).
    pub fn new(value: impl Into<String>) -> Secret {
        let secret = Secret {
            value: value.into(),
            scrubbed: true,
        };
        crate::scrub::register(&secret.value);
        secret
    }

    /// Wraps a value that is secret only when it holds a secret part, registered on its own (a
    /// Redis URL and its password): never printed, but not scrubbed as a whole, so that the
    /// harmless rest (a host in a log line) stays readable.
    pub fn private(value: impl Into<String>) -> Secret {
        Secret {
            value: value.into(),
            scrubbed: false,
        }
    }

    /// The value itself, for the one place that must send it. A value cached by an earlier
    /// activation is registered with this one here.
    pub fn expose(&self) -> &str {
        if self.scrubbed {
            crate::scrub::register(&self.value);
        }
        &self.value
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        self.value.zeroize();
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
