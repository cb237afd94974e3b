//! The API's connection, opened while the token is fetched. A cold activation needs two
//! connections, IMS's and then the API's, each a TCP handshake, a TLS 1.3 handshake and the
//! request (≈ 3 round trips). Opening the API's does not need the token, so it is opened in a
//! thread meanwhile and handed to the API request: ≈ 4 round trips instead of 6.
//!
//! The seam is ureq's connector chain. [`Preconnector`] stands in front of ureq's default chain
//! (CONNECT proxy, TCP, rustls): when ureq needs a new connection (its pool has none) to the
//! origin a pre-connection was started for by the same thread, it waits for that one, within the
//! request's own connect timeout, and hands it over; if it failed, the request connects as usual.
//! Any other origin goes straight to the default chain.
//!
//! Pre-connections are kept per thread, because an activation runs wholly on one (the launcher's
//! multiplexed mode runs many at once, each on its own): in a cold burst every activation opens
//! the API's connection while the one token is fetched, and each request then takes the one its
//! own activation opened. (With one slot for the process, each new pre-connection replaced the
//! last and only one was ever used: a burst of N opened 2N − 1 API connections.) The thread runs that same chain with the agent's
//! configuration, so the connection is the one the request would have opened: same host, same
//! TLS checks. Nothing but the handshakes is sent on it before the request, and a connection no
//! request took is dropped with its [`Preconnection`] guard.
//!
//! Nothing is opened early to an origin ureq's pool already holds a live connection to (a new
//! credential in a warm container, a token fetched again), nor through a proxy (`HTTPS_PROXY`):
//! what a proxy sees stays the requests' own connections, and the request path keeps ureq's
//! proxy handling to itself.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, Weak};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use ureq::config::Config;
use ureq::http::Uri;
use ureq::unversioned::resolver::Resolver;
use ureq::unversioned::transport::time::{Duration as UreqDuration, Instant as UreqInstant};
use ureq::unversioned::transport::{ConnectionDetails, Connector, DefaultConnector, NextTimeout, Transport};

use crate::resolver::CachingResolver;
use held::Held;

mod held;

/// What the thread hands back: the connection, TLS done, or why there is none.
type Opened = Result<Box<dyn Transport>, ureq::Error>;

/// How long a token fetch may take before its API request asks ureq's pool: a pooled
/// connection idle for less than the pool's `max_idle_age` minus this still serves it.
const FETCH_ALLOWANCE: Duration = Duration::from_secs(3);

/// ureq's default connector chain, and the connections being opened ahead of their requests
/// (at most one per thread). Clones share both: one is the agent's connector, one stays with the
/// HTTP client to start pre-connections.
#[derive(Clone)]
pub struct Preconnector {
    chain: Arc<DefaultConnector>,
    pending: Arc<Mutex<Vec<Pending>>>,
    held: Arc<Held>,
}

/// A connection being opened (or opened) for `origin`, for the requests of `thread`.
struct Pending {
    /// The thread that started it: the activation's, whose requests alone may take it.
    thread: ThreadId,
    /// The [`Preconnection`] guard it belongs to: an old guard never drops a newer one, and a
    /// guard gone takes its connection with it.
    owner: Weak<()>,
    /// `scheme://authority`, as the request's URI will have it.
    origin: String,
    /// When it was started: a connection older than the agent's `max_idle_age` is not used,
    /// exactly as an idle pooled one would not be.
    started: Instant,
    max_age: Duration,
    handoff: Arc<Handoff>,
}

/// Where the thread leaves what it opened, for the request to pick up.
#[derive(Default)]
struct Handoff {
    opened: Mutex<Option<Opened>>,
    ready: Condvar,
}

impl Handoff {
    fn put(&self, opened: Opened) {
        {
            let mut slot = lock(&self.opened);
            *slot = Some(opened);
            self.ready.notify_all();
        }
    }

    /// What the thread opened, waiting at most `limit` for it; `None` if it is not done by then.
    fn take(&self, limit: Duration) -> Option<Opened> {
        let slot = lock(&self.opened);
        let (mut slot, _) = self
            .ready
            .wait_timeout_while(slot, limit, |s| s.is_none())
            .unwrap_or_else(PoisonError::into_inner);
        slot.take()
    }
}

/// Keeps a pre-connection on offer to the requests of its activation; dropping it drops the
/// connection if no request took it (a thread still opening it drops it when done).
#[must_use = "the pre-connection is dropped with its guard"]
pub struct Preconnection {
    pending: Arc<Mutex<Vec<Pending>>>,
    owner: Arc<()>,
}

impl Drop for Preconnection {
    fn drop(&mut self) {
        {
            let mut pending = lock(&self.pending);
            let mine = Arc::downgrade(&self.owner);
            pending.retain(|p| !p.owner.ptr_eq(&mine));
            // Gone under the lock: a request that has it in hand cannot offer it again after this.
            self.owner = Arc::new(());
        }
    }
}

impl Default for Preconnector {
    fn default() -> Self {
        Preconnector {
            chain: Arc::new(DefaultConnector::new()),
            pending: Arc::new(Mutex::new(Vec::new())),
            held: Arc::default(),
        }
    }
}

impl std::fmt::Debug for Preconnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Preconnector").finish_non_exhaustive()
    }
}

impl Preconnector {
    /// Starts opening a connection to `origin` (`scheme://host[:port]`) in a thread, giving up
    /// after `timeout`; the next request to `origin` that needs a new connection gets it. `None`
    /// when the pool has a connection to `origin` that will do, a proxy would carry the
    /// connection, `origin` does not parse or no thread can be started.
    pub fn start(
        &self,
        origin: &str,
        config: &Config,
        resolver: &CachingResolver,
        timeout: Duration,
    ) -> Option<Preconnection> {
        let uri: Uri = origin.parse().ok()?;
        let key = origin_of(&uri)?;
        if config.proxy().is_some_and(|p| !p.is_no_proxy(&uri)) {
            return None;
        }
        let fresh = config.max_idle_age().saturating_sub(FETCH_ALLOWANCE);
        if self.held.serves(&key, fresh) {
            log::debug!("the pool has a connection to {key}: none opened early");
            return None;
        }
        let handoff = Arc::new(Handoff::default());
        let (chain, agent_config, resolver) = (Arc::clone(&self.chain), config.clone(), resolver.clone());
        let put = Arc::clone(&handoff);
        // The thread works for this activation: what it logs is scrubbed of the same secrets.
        let secrets = crate::scrub::Secrets::current();
        let spawned = std::thread::Builder::new()
            .name("ims-preconnect".into())
            .spawn(move || {
                let _secrets = secrets.as_ref().map(crate::scrub::Secrets::install);
                let opened = catch_unwind(AssertUnwindSafe(|| {
                    open(&chain, &uri, &agent_config, &resolver, timeout)
                }))
                .unwrap_or(Err(ureq::Error::ConnectionFailed));
                // If the activation went on without it, this is the last reference: the
                // connection is dropped with it, here.
                put.put(opened);
            });
        if let Err(e) = spawned {
            log::debug!("cannot start a thread to open the API's connection early: {e}");
            return None;
        }
        let owner = Arc::new(());
        let thread = std::thread::current().id();
        let pending = Pending {
            thread,
            owner: Arc::downgrade(&owner),
            origin: key,
            started: Instant::now(),
            max_age: config.max_idle_age(),
            handoff,
        };
        // One per thread: a newer one replaces (and drops) any other this thread still has on
        // offer; other threads' stay theirs.
        let mut all = lock(&self.pending);
        all.retain(|p| p.thread != thread);
        all.push(pending);
        drop(all);
        Some(Preconnection {
            pending: Arc::clone(&self.pending),
            owner,
        })
    }

    /// This thread's pending pre-connection, taken, if it is for the connection `details` asks
    /// for. Another thread's is never taken: its own request is on its way to it.
    fn take_for(&self, details: &ConnectionDetails) -> Option<Pending> {
        let origin = origin_of(details.uri)?;
        let thread = std::thread::current().id();
        let mut pending = lock(&self.pending);
        // The request's configuration is the agent's but for timeouts (see `crate::http`), so
        // the same origin means the same connection, as ureq's pool sees it.
        let at = pending
            .iter()
            .position(|p| p.thread == thread && p.origin == origin)?;
        Some(pending.swap_remove(at))
    }

    /// Offers `taken` again, unless its guard is gone or its thread has started another since.
    fn put_back(&self, taken: Pending) {
        let mut pending = lock(&self.pending);
        if !pending.iter().any(|p| p.thread == taken.thread) && taken.owner.strong_count() > 0 {
            pending.push(taken);
        }
    }
}

impl Connector<()> for Preconnector {
    type Out = Box<dyn Transport>;

    fn connect(
        &self,
        details: &ConnectionDetails,
        chained: Option<()>,
    ) -> Result<Option<Self::Out>, ureq::Error> {
        let Some(pending) = self.take_for(details) else {
            let opened = self.chain.connect(details, chained)?;
            return Ok(opened.map(|t| self.held.track(details.uri, t)));
        };
        // It started earlier than a connection this request would open now, so it is waited
        // for, as long as this request may take to connect.
        let waited = Instant::now();
        let outcome = pending.handoff.take(*details.timeout.after);
        let age = pending.started.elapsed();
        match outcome {
            Some(Ok(transport)) if age <= pending.max_age => {
                log::debug!(
                    "using the connection to {} opened early (waited {} ms for it)",
                    pending.origin,
                    waited.elapsed().as_millis()
                );
                return Ok(Some(self.held.track(details.uri, transport)));
            }
            Some(Ok(_)) => log::debug!(
                "the connection to {} opened early is {} s old: connecting anew",
                pending.origin,
                age.as_secs()
            ),
            Some(Err(e)) => log::debug!(
                "opening the connection to {} early failed ({e}): connecting now",
                pending.origin
            ),
            None => {
                // A request on a short leash (the token store's) gave up: the connection may
                // still serve the next request to this origin.
                self.put_back(pending);
                return Err(ureq::Error::Timeout(details.timeout.reason));
            }
        }
        let left = match details.timeout.after {
            UreqDuration::Exact(d) => match d.checked_sub(waited.elapsed()) {
                Some(left) if !left.is_zero() => UreqDuration::Exact(left),
                _ => return Err(ureq::Error::Timeout(details.timeout.reason)),
            },
            not_happening => not_happening,
        };
        let now = (details.current_time)();
        let opened = self.chain.connect(
            &ConnectionDetails {
                uri: details.uri,
                addrs: details.addrs.clone(),
                config: details.config,
                request_level: details.request_level,
                resolver: details.resolver,
                now,
                timeout: NextTimeout {
                    after: left,
                    ..details.timeout
                },
                current_time: Arc::clone(&details.current_time),
                run_connector: Arc::clone(&details.run_connector),
                register_shutdown: Arc::clone(&details.register_shutdown),
            },
            chained,
        )?;
        Ok(opened.map(|t| self.held.track(details.uri, t)))
    }
}

/// `scheme://authority` of `uri`, the part of ureq's pool key a URI gives.
fn origin_of(uri: &Uri) -> Option<String> {
    Some(format!("{}://{}", uri.scheme_str()?, uri.authority()?))
}

/// Resolves and connects as a request to `uri` would (TCP, then the TLS handshake), within
/// `timeout`.
fn open(
    chain: &Arc<DefaultConnector>,
    uri: &Uri,
    config: &Config,
    resolver: &CachingResolver,
    timeout: Duration,
) -> Opened {
    let deadline = Instant::now() + timeout;
    let left = || UreqDuration::Exact(deadline.saturating_duration_since(Instant::now()));
    let addrs = resolver.resolve(
        uri,
        config,
        NextTimeout {
            after: left(),
            reason: ureq::Timeout::Resolve,
            ..NextTimeout::default()
        },
    )?;
    let run_chain = Arc::clone(chain);
    let details = ConnectionDetails {
        uri,
        addrs,
        config,
        request_level: false,
        resolver,
        now: UreqInstant::now(),
        timeout: NextTimeout {
            after: left(),
            reason: ureq::Timeout::Connect,
            ..NextTimeout::default()
        },
        current_time: Arc::new(UreqInstant::now),
        // Only a CONNECT proxy uses it, and none applies here; the agent's would do the same.
        run_connector: Arc::new(move |d: &ConnectionDetails| {
            run_chain.connect(d, None)?.ok_or(ureq::Error::ConnectionFailed)
        }),
        // Nothing to register: the agent's shutdown is never used, and the connection's owner
        // (the guard, then the request) drops it.
        register_shutdown: Arc::new(|_| Ok(())),
    };
    chain
        .connect(&details, None)?
        .ok_or(ureq::Error::ConnectionFailed)
}

/// The guarded value even after a panic elsewhere: what these locks guard is whole after every
/// step, so poisoning is only a flag, and a caught panic in one activation must not switch the
/// part off for every later one.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
