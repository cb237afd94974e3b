//! What every shared store offers the token layer: named byte values with a lifetime, and a
//! claim on fetching one (the single-flight lock). Values arrive sealed ([`super::envelope`]);
//! a backend never sees a token.

use std::time::Duration;

use crate::http::{Budget, HttpClient};
use crate::secret::Secret;

/// What one store operation may use: a slice of the activation's budget (its end bounds every
/// request and retry), the HTTP client, and Adobe I/O State's namespace and API key.
pub struct Call<'a> {
    /// The time this operation may take, all requests included.
    pub budget: Budget,
    /// The action's HTTP client (Adobe I/O State speaks HTTP).
    pub http: &'a HttpClient,
    /// `namespace`, `api_key` of the activation (Adobe I/O State only).
    pub auth: Option<&'a (String, Secret)>,
}

impl Call<'_> {
    /// The time left for this operation (an unlimited budget gets `fallback`).
    pub fn time_left(&self, fallback: Duration) -> Duration {
        self.budget.left().unwrap_or(fallback)
    }
}

/// The entry and, where the store can tell in the same round trip, whether its lock is held.
#[derive(Debug, Default)]
pub struct Poll {
    /// The stored value.
    pub entry: Option<Vec<u8>>,
    /// `Some(held)` when the store said.
    pub locked: Option<bool>,
}

/// How a claim on a lock went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimOutcome {
    /// Ours.
    Won,
    /// Someone else's.
    Lost,
    /// Written, to be confirmed after this settle time (a store without compare-and-set).
    Settle(Duration),
}

/// Why a store operation failed. No variant carries anything the store sent back: a store at an
/// address a caller chose could echo a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreError {
    /// Not reachable, too slow, or the connection broke (the reason is ours, never the store's).
    Unavailable(&'static str),
    /// It refused our credentials (HTTP 401 or 403, or Redis `AUTH`).
    Refused(u16),
    /// The value is too large for it (HTTP 413).
    TooLarge,
    /// It asks us to slow down (HTTP 429), for this long when it said.
    Throttled(Option<Duration>),
    /// An answer that is not what the protocol allows.
    Garbage(&'static str),
    /// Any other HTTP error status (5xx, say).
    Status(u16),
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreError::Unavailable(why) => write!(f, "unavailable: {why}"),
            StoreError::Refused(status) => write!(
                f,
                "refused the credentials (HTTP {status}; the namespace's API key, or a full quota)"
            ),
            StoreError::TooLarge => f.write_str("refused the value as too large (HTTP 413)"),
            StoreError::Throttled(Some(d)) => {
                write!(f, "throttled (HTTP 429, retry after {} s)", d.as_secs())
            }
            StoreError::Throttled(None) => f.write_str("throttled (HTTP 429)"),
            StoreError::Garbage(what) => write!(f, "answered something unusable: {what}"),
            StoreError::Status(status) => write!(f, "answered HTTP {status}"),
        }
    }
}

/// A shared store.
pub trait Backend: Send + Sync {
    /// The value named `name`, if any.
    fn get(&self, name: &str, call: &Call) -> Result<Option<Vec<u8>>, StoreError>;
    /// Stores `value` under `name` for `ttl`.
    fn put(&self, name: &str, value: &[u8], ttl: Duration, call: &Call) -> Result<(), StoreError>;
    /// Removes `name` if it still holds `value` (Redis: atomically; Adobe I/O State: read, then
    /// delete).
    fn delete_if(&self, name: &str, value: &[u8], call: &Call) -> Result<(), StoreError>;
    /// Claims the lock `lock` for `owner` during `ttl`.
    fn claim(&self, lock: &str, owner: &str, ttl: Duration, call: &Call) -> Result<ClaimOutcome, StoreError>;
    /// After [`ClaimOutcome::Settle`] and its wait: whether the claim is still `owner`'s.
    fn confirm(&self, lock: &str, owner: &str, call: &Call) -> Result<bool, StoreError> {
        let _ = (lock, owner, call);
        Ok(true)
    }
    /// Releases `lock` if `owner` still holds it (best effort where the store cannot compare).
    fn release(&self, lock: &str, owner: &str, call: &Call) -> Result<(), StoreError>;
    /// The entry, and whether its lock is still held when the store can say in the same trip.
    fn poll(&self, name: &str, lock: &str, call: &Call) -> Result<Poll, StoreError>;
}
