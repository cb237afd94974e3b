//! Shared emulator state: registered clients, issued tokens, the clock, queued faults and
//! request statistics. One mutex guards it all; the emulator is a test fixture, and a single
//! short critical section per request is far cheaper than the HTTP parsing around it.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ring::rand::{SecureRandom, SystemRandom};

use super::{Fault, JwtClient, MAX_RECORDED_REQUESTS, OAuthClient, RecordedRequest};

/// Default `expires_in` of token responses: 86 399 999 ms, which IMS reports as `86399` s on
/// `/ims/token/v3` and `86399999` ms on `/ims/exchange/jwt`.
const DEFAULT_HTTP_LIFETIME: Duration = Duration::from_millis(86_399_999);
/// Default `expires_in` inside the token payload (24 h).
const DEFAULT_PAYLOAD_LIFETIME: Duration = Duration::from_millis(86_400_000);

/// What the emulator remembers about an access token it issued.
#[derive(Clone, Debug)]
pub(crate) struct IssuedToken {
    pub client_id: String,
    pub org_id: String,
    /// Emulator-clock milliseconds after which the token is rejected.
    pub expires_at_ms: u64,
}

/// A fault waiting for matching requests.
#[derive(Debug)]
struct PendingFault {
    path_prefix: String,
    fault: Fault,
    remaining: u32,
}

#[derive(Default)]
struct Inner {
    oauth_clients: HashMap<String, OAuthClient>,
    jwt_clients: HashMap<String, JwtClient>,
    dev_tokens: HashSet<String>,
    tokens: HashMap<String, IssuedToken>,
    tokens_issued: BTreeMap<String, u64>,
    requests_by_path: BTreeMap<String, u64>,
    recorded: VecDeque<RecordedRequest>,
    faults: Vec<PendingFault>,
    last_jwt_claims: HashMap<String, serde_json::Value>,
    http_lifetime: Option<Duration>,
    payload_lifetime: Option<Duration>,
}

/// The state shared by the emulator handle and all connection threads.
pub(crate) struct State {
    /// Adobe I/O State's namespaces and values (its own lock).
    pub adobe_state: super::adobe_state::Store,
    inner: Mutex<Inner>,
    clock_offset_ms: AtomicU64,
    rng: SystemRandom,
    connections: ConnectionCounters,
}

/// TCP connections and TLS handshakes, control connections included: what a benchmark divides
/// by its activations to see who reuses connections.
#[derive(Default)]
struct ConnectionCounters {
    accepted: AtomicU64,
    tls_handshakes: AtomicU64,
    tls_resumed: AtomicU64,
    tls_failed: AtomicU64,
}

/// A snapshot of [`ConnectionCounters`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConnectionStats {
    /// TCP connections accepted.
    pub accepted: u64,
    /// TLS handshakes completed (resumed ones included).
    pub tls_handshakes: u64,
    /// Of those, resumed sessions (no certificate sent).
    pub tls_resumed: u64,
    /// TLS handshakes that failed.
    pub tls_failed: u64,
}

impl State {
    pub fn new() -> State {
        State {
            adobe_state: Default::default(),
            inner: Mutex::new(Inner::default()),
            clock_offset_ms: AtomicU64::new(0),
            rng: SystemRandom::new(),
            connections: ConnectionCounters::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panicking connection thread must not take the whole emulator down with it.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    // ---- clock -------------------------------------------------------------------------

    /// Emulator time: real time plus the offset tests moved it forward by, in Unix ms.
    pub fn now_ms(&self) -> u64 {
        let real = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        real.saturating_add(self.clock_offset_ms.load(Ordering::SeqCst))
    }

    pub fn advance_clock(&self, by: Duration) {
        self.clock_offset_ms
            .fetch_add(by.as_millis() as u64, Ordering::SeqCst);
    }

    // ---- randomness --------------------------------------------------------------------

    /// `n` bytes from the OS CSPRNG. `None` only if the OS refuses, which callers report as a
    /// 500 rather than hand out a guessable token.
    pub fn random_bytes(&self, n: usize) -> Option<Vec<u8>> {
        let mut buf = vec![0u8; n];
        self.rng.fill(&mut buf).ok()?;
        Some(buf)
    }

    /// `n` random bytes as lower-case hex.
    pub fn random_hex(&self, n: usize) -> Option<String> {
        Some(hex(&self.random_bytes(n)?))
    }

    // ---- clients -----------------------------------------------------------------------

    pub fn add_oauth_client(&self, client: OAuthClient) {
        self.lock().oauth_clients.insert(client.client_id.clone(), client);
    }

    pub fn add_jwt_client(&self, client: JwtClient) {
        self.lock().jwt_clients.insert(client.client_id.clone(), client);
    }

    pub fn add_dev_token(&self, token: &str) {
        self.lock().dev_tokens.insert(token.to_string());
    }

    pub fn oauth_client(&self, client_id: &str) -> Option<OAuthClient> {
        self.lock().oauth_clients.get(client_id).cloned()
    }

    pub fn jwt_client(&self, client_id: &str) -> Option<JwtClient> {
        self.lock().jwt_clients.get(client_id).cloned()
    }

    pub fn is_dev_token(&self, token: &str) -> bool {
        self.lock().dev_tokens.contains(token)
    }

    // ---- tokens ------------------------------------------------------------------------

    pub fn set_token_lifetime(&self, http: Duration, payload: Duration) {
        let mut inner = self.lock();
        inner.http_lifetime = Some(http);
        inner.payload_lifetime = Some(payload);
    }

    /// (lifetime announced in the HTTP response, lifetime written into the token payload).
    pub fn token_lifetimes(&self) -> (Duration, Duration) {
        let inner = self.lock();
        (
            inner.http_lifetime.unwrap_or(DEFAULT_HTTP_LIFETIME),
            inner.payload_lifetime.unwrap_or(DEFAULT_PAYLOAD_LIFETIME),
        )
    }

    /// Remembers an issued token and counts it for its client.
    pub fn store_token(&self, token: String, issued: IssuedToken) {
        let now = self.now_ms();
        let mut inner = self.lock();
        *inner.tokens_issued.entry(issued.client_id.clone()).or_insert(0) += 1;
        // Long benchmarks mint many tokens; sweep expired ones now and then.
        if inner.tokens.len() >= 4096 && inner.tokens.len().is_power_of_two() {
            inner.tokens.retain(|_, t| t.expires_at_ms > now);
        }
        inner.tokens.insert(token, issued);
    }

    /// The token's record if it was issued here and has not expired on the emulator clock.
    pub fn valid_token(&self, token: &str) -> Option<IssuedToken> {
        let now = self.now_ms();
        self.lock()
            .tokens
            .get(token)
            .filter(|t| t.expires_at_ms > now)
            .cloned()
    }

    pub fn tokens_issued(&self, client_id: &str) -> u64 {
        self.lock().tokens_issued.get(client_id).copied().unwrap_or(0)
    }

    pub fn tokens_issued_map(&self) -> BTreeMap<String, u64> {
        self.lock().tokens_issued.clone()
    }

    pub fn set_last_jwt_claims(&self, client_id: &str, claims: serde_json::Value) {
        self.lock().last_jwt_claims.insert(client_id.to_string(), claims);
    }

    pub fn last_jwt_claims(&self, client_id: &str) -> Option<serde_json::Value> {
        self.lock().last_jwt_claims.get(client_id).cloned()
    }

    // ---- requests and stats ------------------------------------------------------------

    pub fn record_request(&self, request: &RecordedRequest) {
        let mut inner = self.lock();
        *inner.requests_by_path.entry(request.path.clone()).or_insert(0) += 1;
        if inner.recorded.len() >= MAX_RECORDED_REQUESTS {
            inner.recorded.pop_front();
        }
        inner.recorded.push_back(request.clone());
    }

    pub fn request_count(&self, path_prefix: &str) -> u64 {
        self.lock()
            .requests_by_path
            .iter()
            .filter(|(path, _)| path.starts_with(path_prefix))
            .map(|(_, n)| n)
            .sum()
    }

    pub fn request_counts(&self) -> BTreeMap<String, u64> {
        self.lock().requests_by_path.clone()
    }

    pub fn requests(&self, path_prefix: &str) -> Vec<RecordedRequest> {
        self.lock()
            .recorded
            .iter()
            .filter(|r| r.path.starts_with(path_prefix))
            .cloned()
            .collect()
    }

    pub fn count_connection(&self) {
        self.connections.accepted.fetch_add(1, Ordering::Relaxed);
    }

    pub fn count_tls_handshake(&self, resumed: bool) {
        self.connections.tls_handshakes.fetch_add(1, Ordering::Relaxed);
        if resumed {
            self.connections.tls_resumed.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn count_tls_failure(&self) {
        self.connections.tls_failed.fetch_add(1, Ordering::Relaxed);
    }

    pub fn connection_stats(&self) -> ConnectionStats {
        let c = &self.connections;
        ConnectionStats {
            accepted: c.accepted.load(Ordering::Relaxed),
            tls_handshakes: c.tls_handshakes.load(Ordering::Relaxed),
            tls_resumed: c.tls_resumed.load(Ordering::Relaxed),
            tls_failed: c.tls_failed.load(Ordering::Relaxed),
        }
    }

    // ---- faults ------------------------------------------------------------------------

    pub fn inject_fault(&self, path_prefix: &str, fault: Fault, count: u32) {
        if count == 0 {
            return;
        }
        self.lock().faults.push(PendingFault {
            path_prefix: path_prefix.to_string(),
            fault,
            remaining: count,
        });
    }

    /// Consumes one use of the oldest fault matching `path`, if any.
    pub fn take_fault(&self, path: &str) -> Option<Fault> {
        let mut inner = self.lock();
        let index = inner
            .faults
            .iter()
            .position(|f| path.starts_with(&f.path_prefix))?;
        let pending = &mut inner.faults[index];
        let fault = pending.fault.clone();
        pending.remaining -= 1;
        if pending.remaining == 0 {
            inner.faults.remove(index);
        }
        Some(fault)
    }
}

/// Lower-case hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> State {
        State::new()
    }

    #[test]
    fn faults_count_down_in_order() {
        let s = state();
        s.inject_fault("/ims/token", Fault::Drop, 2);
        s.inject_fault("/ims", Fault::Malformed, 1);
        assert!(s.take_fault("/api/x/reports").is_none());
        assert!(matches!(s.take_fault("/ims/token/v3"), Some(Fault::Drop)));
        // The older fault still matches, so it goes first even though the newer one does too.
        assert!(matches!(
            s.take_fault("/ims/exchange/jwt"),
            Some(Fault::Malformed)
        ));
        assert!(matches!(s.take_fault("/ims/token/v3"), Some(Fault::Drop)));
        assert!(s.take_fault("/ims/token/v3").is_none());
        s.inject_fault("/x", Fault::Html, 0);
        assert!(s.take_fault("/x").is_none());
    }

    #[test]
    fn clock_advance_expires_tokens() {
        let s = state();
        let now = s.now_ms();
        s.store_token(
            "t".into(),
            IssuedToken {
                client_id: "c".into(),
                org_id: "o".into(),
                expires_at_ms: now + 60_000,
            },
        );
        assert!(s.valid_token("t").is_some());
        assert!(s.valid_token("u").is_none());
        s.advance_clock(Duration::from_secs(59));
        assert!(s.valid_token("t").is_some());
        s.advance_clock(Duration::from_secs(2));
        assert!(s.valid_token("t").is_none());
        assert_eq!(s.tokens_issued("c"), 1);
    }

    #[test]
    fn randomness_is_random() {
        let s = state();
        let a = s.random_hex(16);
        assert_eq!(a.as_ref().map(String::len), Some(32));
        assert_ne!(a, s.random_hex(16));
    }
}
