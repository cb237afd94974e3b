//! Adobe I/O State (the store behind `@adobe/aio-lib-state` v5) over its REST API, as that
//! library speaks it (`lib/AdobeState.js`, `lib/constants.js` in adobe/aio-lib-state; the facts
//! we rely on are kept in `docs/token-store.md`):
//!
//! - base URL `https://storage-state-<region>.app-builder.adp.adobe.io`; inside Adobe I/O Runtime
//!   (`__OW_CLOUD` set) the `.int.` host; `AIO_STATE_ENDPOINT` in the process environment
//!   replaces the endpoint entirely (region ignored), as the library does;
//! - `{base}/containers/{namespace}/data/{key}`, `Authorization: Basic base64(api key)`;
//! - `GET` 200 with the raw value (and `x-key-expires-ms`, which we do not need: the sealed value
//!   carries its own expiry) or 404; `PUT ?ttl=<seconds>` with `application/octet-stream`;
//!   `DELETE`;
//! - 401/403 credentials (403 also a full quota), 413 too large, 429 throttled with `Retry-After`.
//!
//! The API key is sent to that endpoint only: Adobe's host over https, or the endpoint the
//! operator set in the process environment. Callers cannot choose it.
//!
//! State has no atomic operation, so the single-flight claim is a last-writer-wins lock read back
//! after a settle time (see [`StateStore::claim`]). A claim that does not read back at all is a
//! store that loses writes: a failure (the cool-off), not a claim of someone else's to wait on.
//!
//! Every answer is bounded as a whole: in time by the operation's slice of the budget (the HTTP
//! client's timeout covers connecting, TLS, headers and body), in size by [`MAX_SEALED`], the
//! body limit the client reads State's answers with (a larger value is not ours: it is refused
//! before it is read whole, not after a megabyte). 5xx answers are retried
//! within the same time, as `aio-lib-state` does (three retries, exponential backoff).
#![deny(clippy::string_slice, clippy::indexing_slicing)]

use std::time::{Duration, Instant};

use base64::Engine;

use super::backend::{Backend, Call, ClaimOutcome, Poll, StoreError};
use super::envelope::MAX_SEALED;
use crate::error::{Error, Service};
use crate::http::{Method, Request, Response};

/// The process environment variable that replaces the endpoint (as in `aio-lib-state`).
pub const ENDPOINT_ENV: &str = "AIO_STATE_ENDPOINT";
/// Adobe I/O State's longest TTL (`MAX_TTL`, 365 days).
pub const MAX_TTL_SECS: u64 = 31_536_000;
/// The settle time of a claim: our own read and write's time, within these bounds.
const MIN_SETTLE: Duration = Duration::from_millis(10);
const MAX_SETTLE: Duration = Duration::from_millis(100);
/// Tries of one request answered 5xx: `aio-lib-state` retries 5xx three times.
const MAX_TRIES: u32 = 4;
/// The first pause before retrying a 5xx, doubled each time: small, as the store's whole
/// allowance is (180 ms); a retry that does not fit in what is left is not made.
const RETRY_PAUSE: Duration = Duration::from_millis(10);

/// The State endpoint for `region`: `AIO_STATE_ENDPOINT` when set (`override_endpoint` stands in
/// for it), else Adobe's public host, or the internal one inside Adobe I/O Runtime.
pub fn base_url(
    region: &str,
    override_endpoint: Option<&str>,
    in_runtime: bool,
) -> Result<String, &'static str> {
    if let Some(endpoint) = override_endpoint.map(str::trim).filter(|e| !e.is_empty()) {
        let lower = endpoint.to_ascii_lowercase();
        if !(lower.starts_with("https://") || lower.starts_with("http://"))
            || endpoint.contains(['?', '#', '@'])
        {
            return Err("AIO_STATE_ENDPOINT must be an http(s) URL without credentials, query or fragment");
        }
        return Ok(endpoint.trim_end_matches('/').to_string());
    }
    let internal = if in_runtime { ".int" } else { "" };
    Ok(format!(
        "https://storage-state-{region}.app-builder{internal}.adp.adobe.io"
    ))
}

/// Adobe I/O State at one endpoint.
pub struct StateStore {
    base: String,
}

impl StateStore {
    /// A store at `base` (from [`base_url`]).
    pub fn new(base: String) -> StateStore {
        StateStore { base }
    }

    fn send(
        &self,
        method: Method,
        key: &str,
        body: Option<(Vec<u8>, u64)>,
        call: &Call,
    ) -> Result<Response, StoreError> {
        let Some((namespace, api_key)) = call.auth else {
            return Err(StoreError::Refused(401));
        };
        if !valid_key(key) {
            return Err(StoreError::Unavailable("an entry name State does not allow"));
        }
        if !valid_namespace(namespace) {
            return Err(StoreError::Unavailable(
                "a namespace that cannot be a URL path segment",
            ));
        }
        let mut url = format!("{}/containers/{namespace}/data/{key}", self.base);
        let body = body.map(|(bytes, ttl)| {
            url.push_str(&format!("?ttl={}", ttl.clamp(1, MAX_TTL_SECS)));
            ("application/octet-stream".into(), bytes)
        });
        let auth = base64::engine::general_purpose::STANDARD.encode(api_key.expose());
        let request = Request {
            service: Service::AdobeState,
            method,
            url,
            headers: vec![("authorization".into(), format!("Basic {auth}"))],
            body,
            // GET, PUT and DELETE of one key are idempotent, but the loop below retries a 5xx
            // itself within the store's allowance: the client's retries on top would multiply them.
            retryable: false,
            max_body: Some(MAX_SEALED as u64),
            what: match method {
                Method::Get => "get",
                Method::Put => "put",
                Method::Delete => "delete",
                Method::Post => "post",
                Method::Patch => "patch",
            },
        };
        let mut pause = RETRY_PAUSE;
        for tried in 1.. {
            let resp = call.http.send(&request, &call.budget).map_err(|e| match e {
                Error::Timeout { .. } => StoreError::Unavailable("timed out"),
                Error::BadUpstreamResponse { .. } => StoreError::Garbage("an unusable answer"),
                _ => StoreError::Unavailable("could not connect"),
            })?;
            let fits = || {
                call.budget
                    .left()
                    .is_none_or(|left| left > pause + super::MIN_STORE_ATTEMPT)
            };
            match resp.status {
                200..=299 | 404 => return Ok(resp),
                401 | 403 => return Err(StoreError::Refused(resp.status)),
                413 => return Err(StoreError::TooLarge),
                429 => {
                    return Err(StoreError::Throttled(resp.retry_after.as_deref().and_then(|v| {
                        crate::http::parse_retry_after(v, call.budget.clock().now_ms())
                    })));
                }
                500..=599 if tried < MAX_TRIES && fits() => {
                    log::debug!(
                        "token store adobe-state {}: HTTP {}, retrying in {} ms",
                        request.what,
                        resp.status,
                        pause.as_millis()
                    );
                    call.budget.clock().sleep(pause);
                    pause *= 2;
                }
                status => return Err(StoreError::Status(status)),
            }
        }
        Err(StoreError::Unavailable("retries exhausted"))
    }
}

impl Backend for StateStore {
    fn get(&self, name: &str, call: &Call) -> Result<Option<Vec<u8>>, StoreError> {
        let resp = self.send(Method::Get, name, None, call)?;
        match resp.status {
            404 => Ok(None),
            // Nothing we store is larger: what is, is not ours, whatever it holds.
            200 if resp.body.len() > MAX_SEALED => Err(StoreError::Garbage("a value larger than any entry")),
            200 => Ok(Some(resp.body)),
            _ => Err(StoreError::Garbage("a success other than 200 to a read")),
        }
    }

    fn put(&self, name: &str, value: &[u8], ttl: Duration, call: &Call) -> Result<(), StoreError> {
        // State's expiry is in whole seconds: round down, so that the entry never outlives the
        // token's refresh time (and at least 1 s: a TTL of 0 would mean a day).
        let resp = self.send(Method::Put, name, Some((value.to_vec(), ttl.as_secs())), call)?;
        match resp.status {
            404 => Err(StoreError::Status(404)),
            _ => Ok(()),
        }
    }

    fn delete_if(&self, name: &str, value: &[u8], call: &Call) -> Result<(), StoreError> {
        if self.get(name, call)?.as_deref() == Some(value) {
            self.send(Method::Delete, name, None, call)?;
        }
        Ok(())
    }

    /// State has no compare-and-set: a free lock is written, and read back ([`Self::confirm`])
    /// after a settle time as long as our own read and write took (10 to 100 ms); the claim is
    /// ours only if our value is still there. Claimers whose writes land within that time of
    /// each other all read the last one's value, so exactly one goes on. One whose read came
    /// before another's write and whose write came more than a settle time after it goes on
    /// too: then two fetch.
    fn claim(&self, lock: &str, owner: &str, ttl: Duration, call: &Call) -> Result<ClaimOutcome, StoreError> {
        let started = Instant::now();
        if self.get(lock, call)?.is_some() {
            return Ok(ClaimOutcome::Lost);
        }
        // Rounded up: State's expiry is coarse (about a second), and a lock must outlive the claim.
        let ttl_secs = ttl.as_millis().div_ceil(1000).max(1) as u64;
        let value = Some((owner.as_bytes().to_vec(), ttl_secs));
        if self.send(Method::Put, lock, value, call)?.status == 404 {
            return Err(StoreError::Status(404));
        }
        Ok(ClaimOutcome::Settle(
            started.elapsed().clamp(MIN_SETTLE, MAX_SETTLE),
        ))
    }

    /// Our claim still holds our value: ours; another claimer's: theirs. None at all, a moment
    /// after State acknowledged our write (and long before its TTL): a store that does not keep
    /// what it is given, which would have every cold activation wait for a fetch nobody makes.
    fn confirm(&self, lock: &str, owner: &str, call: &Call) -> Result<bool, StoreError> {
        match self.get(lock, call)? {
            Some(holder) => Ok(holder == owner.as_bytes()),
            None => Err(StoreError::Garbage("a write that does not read back")),
        }
    }

    fn release(&self, lock: &str, owner: &str, call: &Call) -> Result<(), StoreError> {
        // Read, then delete: another claimer's lock may land in between (State cannot compare
        // and delete at once); the worst that does is one more fetch.
        self.delete_if(lock, owner.as_bytes(), call)
    }

    fn poll(&self, name: &str, _lock: &str, call: &Call) -> Result<Poll, StoreError> {
        Ok(Poll {
            entry: self.get(name, call)?,
            locked: None,
        })
    }
}

/// `^[a-zA-Z0-9-_.]{1,1024}$`, State's key pattern.
pub fn valid_key(key: &str) -> bool {
    (1..=1024).contains(&key.len())
        && key
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

/// A namespace that is safe as one URL path segment.
fn valid_namespace(ns: &str) -> bool {
    (1..=256).contains(&ns.len())
        && ns
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.' | b'@'))
        && ns != "."
        && ns != ".."
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_by_region_runtime_and_override() {
        assert_eq!(
            base_url("amer", None, false).unwrap(),
            "https://storage-state-amer.app-builder.adp.adobe.io"
        );
        assert_eq!(
            base_url("emea", None, true).unwrap(),
            "https://storage-state-emea.app-builder.int.adp.adobe.io"
        );
        assert_eq!(
            base_url("apac", Some("http://127.0.0.1:8080/"), true).unwrap(),
            "http://127.0.0.1:8080"
        );
        assert_eq!(
            base_url("aus", Some("  "), false).unwrap(),
            "https://storage-state-aus.app-builder.adp.adobe.io"
        );
        assert!(base_url("amer", Some("ftp://x"), false).is_err());
        assert!(base_url("amer", Some("https://u:p@x"), false).is_err());
    }

    #[test]
    fn keys_and_namespaces() {
        assert!(valid_key("ims-action.v1.abc_DEF-09"));
        assert!(!valid_key(""));
        assert!(!valid_key("a/b"));
        assert!(!valid_key(&"a".repeat(1025)));
        assert!(valid_namespace("12345-myproject-stage"));
        assert!(!valid_namespace("a/b"));
        assert!(!valid_namespace(".."));
    }
}
