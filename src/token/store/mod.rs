//! The shared token store: one IMS token per credential across every container, not one per
//! container. Layers, in order: this process's memory (and the one-shot file), then the shared
//! store (Redis or Adobe I/O State, chosen by [`setting`]), then IMS, single-flight
//! ([`flight`]).
//!
//! The store learns nothing: entries are sealed with a key only the credential's holder can
//! derive, under a name only it can compute ([`envelope`]). And it is never a new way to fail:
//! its own requests cost an activation at most [`STORE_ALLOWANCE`] in all (under 200 ms), any
//! failure sends the activation on to IMS, a failed store is left alone for [`COOL_OFF`] (or its
//! `Retry-After`), and that is logged once per process at WARN; waiting for another container's
//! fetch is bounded by that fetch ([`LOCK_TTL`]) and by the deadline.
//!
//! Timing-dependent rules (expiry, refresh) read the activation budget's clock, which tests can
//! hold; what the store's own requests cost is measured in real time.

pub mod adobe_state;
pub mod backend;
pub mod envelope;
pub mod flight;
pub mod redis;
pub mod resp;
pub mod setting;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use backend::{Backend, Call, ClaimOutcome, StoreError};
use envelope::Envelope;
use setting::Setting;

use crate::activation::Activation;
use crate::http::{Budget, HttpClient};
use crate::secret::Secret;
use crate::token::AccessToken;

/// The store's own requests may cost one activation this much in all (waiting for another
/// container's fetch aside). The promise is 200 ms; timers overshoot by a few ms, and trying
/// costs a little besides the requests (measured: a hung store adds 185-190 ms in all).
pub const STORE_ALLOWANCE: Duration = Duration::from_millis(180);
/// The process environment variable that changes [`STORE_ALLOWANCE`] (20 to 2,000 ms): for a store
/// further away than a data centre's neighbour, and for tests on a loaded machine.
pub const ALLOWANCE_ENV: &str = "IMS_ACTION_STORE_ALLOWANCE_MS";

/// [`STORE_ALLOWANCE`], or what the operator set in [`ALLOWANCE_ENV`].
fn allowance() -> Duration {
    static ALLOWANCE: std::sync::OnceLock<Duration> = std::sync::OnceLock::new();
    *ALLOWANCE.get_or_init(|| {
        std::env::var(ALLOWANCE_ENV)
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map_or(STORE_ALLOWANCE, |ms| Duration::from_millis(ms.clamp(20, 2000)))
    })
}
/// Below this much allowance or time left, no store request is started.
pub const MIN_STORE_ATTEMPT: Duration = Duration::from_millis(5);
/// How long a claim on fetching a token lasts: about one slow IMS round trip. A claimer that
/// dies holds the others up no longer than this.
pub const LOCK_TTL: Duration = Duration::from_secs(2);
/// The longest wait for another container's fetch (never more than half the time left).
pub const PEER_WAIT: Duration = LOCK_TTL;
/// How long a store that failed is left alone (unless it said `Retry-After`).
pub const COOL_OFF: Duration = Duration::from_secs(30);
/// The longest pause between two looks at the store while waiting.
const MAX_POLL_INTERVAL: Duration = Duration::from_millis(50);
/// Stores kept per process (one setting per deployment; a few in tests).
const MAX_STORES: usize = 4;

/// Counters, for tests and the store benchmark.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct StoreStats {
    /// Store operations attempted (a claim on Adobe I/O State is up to three requests).
    pub operations: u64,
    /// Operations that failed.
    pub failures: u64,
    /// Tokens found in the store.
    pub hits: u64,
    /// Values found that did not open (another credential, tampered with, not ours).
    pub rejected: u64,
    /// Waits for another container's fetch that ended with its token.
    pub waited_hits: u64,
}

#[derive(Default)]
struct Counters {
    operations: AtomicU64,
    failures: AtomicU64,
    hits: AtomicU64,
    rejected: AtomicU64,
    waited_hits: AtomicU64,
}

/// One configured store and its health.
struct Shared {
    backend: Box<dyn Backend>,
    /// `redis` or `adobe-state`.
    kind: &'static str,
    /// `redis://host:port/db` or `adobe-state:<region>` (never a password).
    describe: String,
    needs_auth: bool,
    /// What this store's setting holds that is secret (a Redis URL with a password, and the
    /// password): registered with every activation that uses the store, not only with the one
    /// that parsed the setting.
    secrets: Vec<Secret>,
    /// Until when (Unix ms on the activations' clock) the store is left alone; 0: in use.
    /// An atomic, not a lock: nothing can leave it poisoned.
    down_until_ms: AtomicU64,
    warned: AtomicBool,
}

impl Shared {
    /// Whether the store is cooling off at `now_ms` (the activation's clock).
    fn is_down(&self, now_ms: u64) -> bool {
        now_ms < self.down_until_ms.load(Ordering::Relaxed)
    }

    fn failed(&self, e: &StoreError, now_ms: u64) {
        let pause = match e {
            StoreError::Throttled(after) => after
                .unwrap_or(Duration::from_secs(1))
                .clamp(Duration::from_secs(1), Duration::from_secs(300)),
            // Too large is about one value, not the store.
            StoreError::TooLarge => Duration::ZERO,
            _ => COOL_OFF,
        };
        if !pause.is_zero() {
            let until = now_ms.saturating_add(pause.as_millis() as u64);
            self.down_until_ms.fetch_max(until, Ordering::Relaxed);
        }
        if !self.warned.swap(true, Ordering::Relaxed) {
            // ops: store-cool-off
            log::warn!(
                "token store {} {e}; going on without it (IMS directly) for {} s; \
                 further store failures are logged at debug",
                self.describe,
                pause.as_secs()
            );
        } else {
            log::debug!("token store {} {e}", self.describe);
        }
    }
}

/// The shared stores of a process, by setting.
pub struct SharedStores {
    stores: Mutex<Vec<(String, Arc<Shared>)>>,
    /// The store allowance: [`allowance`] unless set with [`SharedStores::with_allowance`].
    allowance: Duration,
    state_endpoint: Option<String>,
    in_runtime: bool,
    warned_setting: AtomicBool,
    warned_auth: AtomicBool,
    counters: Counters,
}

impl Default for SharedStores {
    fn default() -> Self {
        SharedStores::from_env()
    }
}

impl SharedStores {
    /// Stores as the process environment says: `AIO_STATE_ENDPOINT`, `__OW_CLOUD`.
    pub fn from_env() -> SharedStores {
        let var = |name| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        SharedStores {
            stores: Mutex::new(Vec::new()),
            allowance: allowance(),
            state_endpoint: var(adobe_state::ENDPOINT_ENV),
            in_runtime: var("__OW_CLOUD").is_some(),
            warned_setting: AtomicBool::new(false),
            warned_auth: AtomicBool::new(false),
            counters: Counters::default(),
        }
    }

    /// The same with Adobe I/O State at `endpoint`, as `AIO_STATE_ENDPOINT` would set it.
    pub fn with_state_endpoint(mut self, endpoint: &str) -> SharedStores {
        self.state_endpoint = Some(endpoint.to_string());
        self
    }

    /// The same with another store allowance (clamped to 20-2,000 ms like [`ALLOWANCE_ENV`]):
    /// what the allowance is charged is real time, so tests of counts on a loaded machine give
    /// themselves room, as an operator with a distant store would.
    pub fn with_allowance(mut self, allowance: Duration) -> SharedStores {
        self.allowance = allowance.clamp(Duration::from_millis(20), Duration::from_millis(2000));
        self
    }

    /// The counters so far.
    pub fn stats(&self) -> StoreStats {
        let c = &self.counters;
        StoreStats {
            operations: c.operations.load(Ordering::Relaxed),
            failures: c.failures.load(Ordering::Relaxed),
            hits: c.hits.load(Ordering::Relaxed),
            rejected: c.rejected.load(Ordering::Relaxed),
            waited_hits: c.waited_hits.load(Ordering::Relaxed),
        }
    }

    /// This activation's view of the store `setting` names, or `None` for none (unset, `memory`,
    /// a value that does not parse, Adobe I/O State without an API key). Nothing is connected
    /// until a token is missing from memory.
    pub fn session<'a>(
        &'a self,
        setting: Option<&str>,
        activation: &Activation,
        budget: &'a Budget,
        http: &'a HttpClient,
    ) -> Option<Session<'a>> {
        let setting = setting.map(str::trim).filter(|s| !s.is_empty())?;
        let shared = self.shared(setting)?;
        for secret in &shared.secrets {
            crate::scrub::register(secret.expose());
        }
        let auth = if shared.needs_auth {
            match activation.namespace_and_key() {
                Some(auth) => Some(auth),
                None => {
                    if !self.warned_auth.swap(true, Ordering::Relaxed) {
                        // ops: store-no-api-key
                        log::warn!(
                            "IMS_ACTION_TOKEN_STORE is {}, but this activation has no namespace API key \
                             (annotate the action provide-api-key); using memory only",
                            shared.describe
                        );
                    }
                    return None;
                }
            }
        } else {
            None
        };
        Some(Session {
            shared,
            http,
            budget,
            auth,
            allowance: self.allowance,
            counters: &self.counters,
        })
    }

    /// The store for `setting`, made on first use. The registry's lock is held only to look up
    /// and to add, never while the setting is parsed or the store made; a poisoned lock is
    /// recovered as is (it holds only whole entries).
    fn shared(&self, setting: &str) -> Option<Arc<Shared>> {
        let registry = || self.stores.lock().unwrap_or_else(PoisonError::into_inner);
        let find = |stores: &[(String, Arc<Shared>)]| {
            stores
                .iter()
                .find(|(s, _)| s == setting)
                .map(|(_, shared)| Arc::clone(shared))
        };
        if let Some(shared) = find(&registry()) {
            return Some(shared);
        }
        let made =
            setting::parse(setting).and_then(|parsed| self.make(setting, parsed).map_err(str::to_string));
        let shared = match made {
            Ok(Some(shared)) => Arc::new(shared),
            Ok(None) => return None,
            Err(why) => {
                if !self.warned_setting.swap(true, Ordering::Relaxed) {
                    // ops: store-setting-unusable
                    log::warn!("IMS_ACTION_TOKEN_STORE is not usable ({why}); using memory only");
                }
                return None;
            }
        };
        let mut stores = registry();
        // Another activation may have made it meanwhile: one store per setting.
        if let Some(shared) = find(&stores) {
            return Some(shared);
        }
        if stores.len() >= MAX_STORES {
            stores.remove(0);
        }
        stores.push((setting.to_string(), Arc::clone(&shared)));
        Some(shared)
    }

    fn make(&self, text: &str, setting: Setting) -> Result<Option<Shared>, &'static str> {
        let mut secrets = Vec::new();
        let (backend, kind, describe, needs_auth): (Box<dyn Backend>, _, String, bool) = match setting {
            Setting::Local => return Ok(None),
            Setting::Redis(url) => {
                if let Some(password) = &url.password {
                    secrets.push(Secret::private(text));
                    secrets.push(Secret::private(password.expose()));
                }
                let backend = Box::new(redis::RedisStore::new(&url)?);
                (backend, "redis", url.display(), false)
            }
            Setting::AdobeState { region } => {
                let base = adobe_state::base_url(region, self.state_endpoint.as_deref(), self.in_runtime)?;
                let describe = match &self.state_endpoint {
                    Some(_) => format!("adobe-state at {base}"),
                    None => format!("adobe-state:{region}"),
                };
                let backend = Box::new(adobe_state::StateStore::new(base));
                (backend, "adobe-state", describe, true)
            }
        };
        log::debug!("token store: {describe}");
        Ok(Some(Shared {
            backend,
            kind,
            describe,
            needs_auth,
            secrets,
            down_until_ms: AtomicU64::new(0),
            warned: AtomicBool::new(false),
        }))
    }
}

/// How a claim on fetching a token went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// Ours: fetch, write, release.
    Ours,
    /// Another container is fetching.
    Taken,
    /// The store cannot say (down, throttled, out of allowance).
    Unavailable,
}

/// How waiting for another container's fetch ended.
#[derive(Debug)]
pub enum Waited {
    /// Its token arrived.
    Token(AccessToken),
    /// It let go without a token (its fetch failed): claim again.
    LockGone,
    /// Too long, or the store failed: fetch ourselves.
    GaveUp,
}

/// One activation's use of a shared store: its allowance, its credentials.
pub struct Session<'a> {
    shared: Arc<Shared>,
    http: &'a HttpClient,
    budget: &'a Budget,
    auth: Option<(String, Secret)>,
    /// What is left of the allowance ([`STORE_ALLOWANCE`] unless configured).
    allowance: Duration,
    counters: &'a Counters,
}

impl Session<'_> {
    fn now_ms(&self) -> u64 {
        self.budget.clock().now_ms()
    }

    /// Runs one store operation within what is left of the allowance (and of `cap`). Its time is
    /// charged, except for a successful poll, which is waiting, not cost.
    fn op<T>(
        &mut self,
        cap: Option<Duration>,
        is_poll: bool,
        f: impl FnOnce(&dyn Backend, &Call) -> Result<T, StoreError>,
    ) -> Option<T> {
        if self.shared.is_down(self.now_ms()) {
            return None;
        }
        let max = cap.map_or(self.allowance, |c| c.min(self.allowance));
        if max < MIN_STORE_ATTEMPT || self.budget.left().is_some_and(|l| l < MIN_STORE_ATTEMPT) {
            return None;
        }
        let call = Call {
            budget: self.budget.slice(max, MIN_STORE_ATTEMPT),
            http: self.http,
            auth: self.auth.as_ref(),
        };
        self.counters.operations.fetch_add(1, Ordering::Relaxed);
        let started = Instant::now();
        let outcome = f(self.shared.backend.as_ref(), &call);
        let took = started.elapsed();
        match outcome {
            Ok(v) => {
                if !is_poll {
                    self.allowance = self.allowance.saturating_sub(took);
                }
                Some(v)
            }
            Err(e) => {
                self.allowance = self.allowance.saturating_sub(took);
                self.counters.failures.fetch_add(1, Ordering::Relaxed);
                self.shared.failed(&e, self.now_ms());
                None
            }
        }
    }

    /// Opens a stored value: a fresh token sealed by this credential, other than `refused`.
    fn open(&self, env: &Envelope, stored: &[u8], refused: Option<&AccessToken>) -> Option<AccessToken> {
        match env.open(stored) {
            Ok(t) if !t.is_fresh(self.now_ms()) => {
                log::debug!(
                    "token store {}: the stored token is due for refresh",
                    self.shared.describe
                );
                None
            }
            Ok(t) if refused.is_some_and(|r| r.token == t.token) => None,
            Ok(t) => Some(t),
            Err(e) => {
                self.counters.rejected.fetch_add(1, Ordering::Relaxed);
                log::debug!("token store {}: entry ignored: {e}", self.shared.describe);
                None
            }
        }
    }

    /// `redis` or `adobe-state`.
    pub fn kind(&self) -> &'static str {
        self.shared.kind
    }

    /// What the store holds for `env`, for the health view: `Some(Some(token))` when an entry
    /// sealed by this credential is there (fresh or not), `Some(None)` when none is, `None` when
    /// the store did not answer. Not a hit: nothing is counted or used.
    pub fn peek(&mut self, env: &Envelope) -> Option<Option<AccessToken>> {
        let stored = self.op(None, false, |b, c| b.get(&env.name, c))?;
        Some(stored.and_then(|bytes| env.open(&bytes).ok()))
    }

    /// The token stored for `env`, if fresh and not `refused`.
    pub fn read(&mut self, env: &Envelope, refused: Option<&AccessToken>) -> Option<AccessToken> {
        let stored = self.op(None, false, |b, c| b.get(&env.name, c))??;
        let token = self.open(env, &stored, refused)?;
        self.counters.hits.fetch_add(1, Ordering::Relaxed);
        log::debug!("token store {}: hit", self.shared.describe);
        Some(token)
    }

    /// Stores `token` until its refresh time.
    pub fn write(&mut self, env: &Envelope, token: &AccessToken) {
        let ttl = token.refresh_at_ms().saturating_sub(self.now_ms());
        if ttl < 1000 {
            return;
        }
        let Some(sealed) = env.seal(token) else {
            log::debug!("token store: not stored (no randomness for a nonce, or a token too large to store)");
            return;
        };
        let ttl = Duration::from_millis(ttl);
        if self
            .op(None, false, |b, c| b.put(&env.name, &sealed, ttl, c))
            .is_some()
        {
            log::debug!(
                "token store {}: stored for {} s",
                self.shared.describe,
                ttl.as_secs()
            );
        }
    }

    /// Claims fetching the token for `env`. A store without compare-and-set asks for a settle
    /// time before the claim is confirmed: that is waiting, not the store's cost.
    pub fn claim(&mut self, env: &Envelope, owner: &str) -> Claim {
        let settle = match self.op(None, false, |b, c| b.claim(&env.lock_name, owner, LOCK_TTL, c)) {
            Some(ClaimOutcome::Won) => return Claim::Ours,
            Some(ClaimOutcome::Lost) => return Claim::Taken,
            Some(ClaimOutcome::Settle(settle)) => settle,
            None => return Claim::Unavailable,
        };
        if self.budget.left().is_some_and(|left| left <= settle * 2) {
            return Claim::Unavailable;
        }
        std::thread::sleep(settle);
        match self.op(None, false, |b, c| b.confirm(&env.lock_name, owner, c)) {
            Some(true) => Claim::Ours,
            Some(false) => Claim::Taken,
            None => Claim::Unavailable,
        }
    }

    /// Lets go of a claim (best effort: it expires anyway).
    pub fn release(&mut self, env: &Envelope, owner: &str) {
        let _ = self.op(None, false, |b, c| b.release(&env.lock_name, owner, c));
    }

    /// Waits for another container's fetch: until its token is stored, its claim goes, or
    /// [`PEER_WAIT`] (at most half the time left) passes.
    pub fn wait(&mut self, env: &Envelope, refused: Option<&AccessToken>) -> Waited {
        let limit = match self.budget.left() {
            Some(left) => PEER_WAIT.min(left / 2),
            None => PEER_WAIT,
        };
        let started = Instant::now();
        let end = started + limit;
        let mut pause = Duration::from_millis(5);
        loop {
            let now = Instant::now();
            if now + pause >= end {
                log::debug!(
                    "token store {}: no token from the other fetch within {} ms",
                    self.shared.describe,
                    limit.as_millis()
                );
                return Waited::GaveUp;
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(MAX_POLL_INTERVAL);
            let cap = end.saturating_duration_since(Instant::now());
            let Some(poll) = self.op(Some(cap), true, |b, c| b.poll(&env.name, &env.lock_name, c)) else {
                return Waited::GaveUp;
            };
            if let Some(token) = poll.entry.and_then(|stored| self.open(env, &stored, refused)) {
                self.counters.waited_hits.fetch_add(1, Ordering::Relaxed);
                log::debug!(
                    "token store {}: token from another container's fetch after {} ms",
                    self.shared.describe,
                    started.elapsed().as_millis()
                );
                return Waited::Token(token);
            }
            if poll.locked == Some(false) {
                return Waited::LockGone;
            }
        }
    }

    /// Removes the stored token if it is `refused` (the API said 401), and nothing newer.
    pub fn forget(&mut self, env: &Envelope, refused: &AccessToken) {
        let Some(Some(stored)) = self.op(None, false, |b, c| b.get(&env.name, c)) else {
            return;
        };
        if env.open(&stored).is_ok_and(|t| t.token == refused.token) {
            let _ = self.op(None, false, |b, c| b.delete_if(&env.name, &stored, c));
            log::debug!("token store {}: refused token removed", self.shared.describe);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::Clock;

    #[test]
    fn a_redis_password_is_scrubbed_in_every_activation_not_only_the_first() {
        let stores = SharedStores::default();
        let http = HttpClient::offline();
        let activation = Activation::default();
        let budget = Budget::new(&activation, Duration::from_secs(1), &Clock::held(1_000));
        let setting = "redis://user:s3cret-Passw0rd@127.0.0.1:1/0";
        for n in 0..3 {
            let _scope = crate::scrub::Scope::begin();
            assert!(
                stores
                    .session(Some(setting), &activation, &budget, &http)
                    .is_some()
            );
            let text = crate::scrub::scrub_text(&format!("{setting} and s3cret-Passw0rd"));
            assert!(!text.contains("s3cret-Passw0rd"), "activation {n}: {text}");
        }
    }
}
