//! The HTTP client: one `ureq` agent per process (keep-alive pays off in actionloop mode), every
//! timeout capped by the activation deadline, bodies read up to a cap, no redirects, and the
//! retry policy for transient faults.
//!
//! Retries follow [`crate::retry`]: a throttled request is retried only after a wait that fits
//! the API's window, a server error or broken connection only when the request may be
//! repeated, and never without time left to finish.

use std::borrow::Cow;
use std::time::{Duration, Instant};

use ureq::tls::{Certificate, RootCerts, TlsConfig};

use crate::activation::Activation;
use crate::endpoint::BaseUrl;
use crate::error::{Error, Service};
use crate::preconnect::{Preconnection, Preconnector};
use crate::resolver::CachingResolver;
use crate::retry::{self, Decision, MAX_ATTEMPTS};
use crate::time::Clock;

/// Connect timeout (TLS handshake included), before the deadline cap.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Default total time for one request (`HTTP_TIMEOUT_MS`).
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// What we keep in hand before the platform's deadline, to answer 504 ourselves: the promise is
/// an answer at least 0.5 s before the kill, and the rest is slack for a loaded machine.
pub const DEADLINE_MARGIN: Duration = Duration::from_millis(1000);
/// Below this much time left, no request (or retry) is started.
pub const MIN_ATTEMPT_TIME: Duration = Duration::from_millis(200);
/// Upstream bodies are read up to this size: OpenWhisk results are limited to 1 MB anyway.
pub const MAX_BODY: u64 = 1024 * 1024;
/// Idle connections kept per host (and in all): one per activation the process may run at once
/// (the launcher's multiplexed mode, up to Adobe's default concurrency of 200), so that a burst's
/// connections are all still open for the next one. ureq keeps 3 per host by default.
pub const MAX_IDLE_CONNECTIONS: usize = 200;
/// Each connection's read and write buffers (twice over TLS: one pair below it, one above).
/// ureq's default is 128 KiB each, written in full when the connection opens: 200 connections
/// held 51 MiB; 16 KiB in held 200 TLS activations at 31-33 MiB, 8 KiB at 29. A response head
/// must fit the read buffer and a request head the write buffer: Adobe's are a few KiB (a bearer
/// token is about 2), and the NGINX-based gateways in front of Adobe's APIs refuse upstream heads
/// over their own 4-8 KiB buffers (`proxy_buffer_size`) anyway; bodies stream through.
pub const CONNECTION_BUFFERS: (usize, usize) = (8 * 1024, 8 * 1024);

/// The time one activation may spend on HTTP.
#[derive(Debug, Clone)]
pub struct Budget {
    /// The deadline minus [`DEADLINE_MARGIN`], Unix milliseconds by `clock`.
    end_ms: Option<u64>,
    /// Total time for one request.
    pub request_timeout: Duration,
    /// Below this much time left, no request (or retry) is started.
    min_attempt: Duration,
    /// The action's clock: what "now" is, and how a wait passes.
    clock: Clock,
}

impl Budget {
    /// The budget of an activation.
    pub fn new(activation: &Activation, request_timeout: Duration, clock: &Clock) -> Budget {
        Budget {
            end_ms: activation
                .deadline_ms
                .map(|d| d.saturating_sub(DEADLINE_MARGIN.as_millis() as u64)),
            request_timeout,
            min_attempt: MIN_ATTEMPT_TIME,
            clock: clock.clone(),
        }
    }

    /// A slice of this budget for requests that must cost little (the token store's): it ends
    /// `max` from now or when this one does, whichever comes first, and a request may start
    /// with as little as `min_attempt` left.
    pub fn slice(&self, max: Duration, min_attempt: Duration) -> Budget {
        let cap = self.clock.now_ms() + max.as_millis() as u64;
        Budget {
            end_ms: Some(self.end_ms.map_or(cap, |end| end.min(cap))),
            request_timeout: self.request_timeout.min(max),
            min_attempt,
            clock: self.clock.clone(),
        }
    }

    /// Time left before we must answer; `None` when there is no deadline.
    pub fn left(&self) -> Option<Duration> {
        self.end_ms
            .map(|end| Duration::from_millis(end.saturating_sub(self.clock.now_ms())))
    }

    /// The clock this budget runs on.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// How long the next attempt may take, or a timeout error when too little time is left.
    fn next_attempt(&self, service: Service) -> Result<Duration, Error> {
        match self.left() {
            None => Ok(self.request_timeout),
            Some(left) if left >= self.min_attempt => Ok(left.min(self.request_timeout)),
            Some(_) => Err(Error::Timeout {
                service,
                detail: "no time left before the activation deadline".into(),
            }),
        }
    }
}

/// HTTP methods we use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// GET
    Get,
    /// POST
    Post,
    /// PUT (the token store's writes)
    Put,
    /// DELETE (the token store's removals)
    Delete,
    /// PATCH (API routes)
    Patch,
}

impl Method {
    /// Whether sending the request twice has the effect of sending it once (RFC 9110,
    /// section 9.2.2): GET, PUT and DELETE are; POST and PATCH are not. An API call may be repeated after
    /// a server error only when it is ([`crate::retry`]).
    pub fn is_idempotent(self) -> bool {
        matches!(self, Method::Get | Method::Put | Method::Delete)
    }
}

/// One request to an upstream.
pub struct Request<'a> {
    /// Who answers, for messages.
    pub service: Service,
    /// The method.
    pub method: Method,
    /// Full URL, built from an allow-listed [`crate::endpoint::BaseUrl`].
    pub url: String,
    /// Extra headers (names: ours, or an API route's, checked when its table was read). Values
    /// may be secrets: they are never logged.
    pub headers: Vec<(Cow<'static, str>, String)>,
    /// Content type and body, for POST, PUT and PATCH.
    pub body: Option<(Cow<'static, str>, Vec<u8>)>,
    /// Whether repeating the request after a server error or a broken connection is harmless:
    /// [`Method::is_idempotent`] for an API call; a POST only when its API says so (asking IMS
    /// for a token twice is harmless). A 429 is retried either way ([`crate::retry`]).
    pub retryable: bool,
    /// The most body bytes read, when less than [`MAX_BODY`] is all an answer may hold (a token
    /// store's entry): a larger one is refused before it is read whole.
    pub max_body: Option<u64>,
    /// A short name of the call for logs (never the URL's query, never a header).
    pub what: &'a str,
}

/// An upstream answer, read up to [`MAX_BODY`].
#[derive(Debug)]
pub struct Response {
    /// HTTP status.
    pub status: u16,
    /// The body.
    pub body: Vec<u8>,
    /// `Retry-After`: the upstream's, verbatim, when it is seconds or a date; on a 429 without
    /// one that was not retried, the wait the retry policy would have made, in seconds.
    pub retry_after: Option<String>,
    /// `Content-Type`.
    pub content_type: Option<String>,
    /// Adobe's `x-debug-id`, worth quoting to Adobe support.
    pub debug_id: Option<String>,
}

impl Response {
    /// The body parsed as JSON, or a 502-class error naming the upstream.
    pub fn json(&self, service: Service) -> Result<serde_json::Value, Error> {
        serde_json::from_slice(&self.body).map_err(|_| Error::BadUpstreamResponse {
            service,
            status: self.status,
            reason: format!(
                "not JSON ({})",
                self.content_type.as_deref().unwrap_or("no content type")
            ),
        })
    }
}

/// What went wrong with one attempt, before deciding whether to retry.
enum Failure {
    Transient(Error),
    Final(Error),
}

/// The process-wide HTTP client.
pub struct HttpClient {
    agent: ureq::Agent,
    /// The agent's connector, kept to open a connection ahead of its request.
    preconnector: Preconnector,
    /// The agent's resolver (clones share its cache).
    resolver: CachingResolver,
    /// Set by [`HttpClient::offline`]: every request fails at once, without any I/O.
    offline: bool,
}

impl Default for HttpClient {
    fn default() -> Self {
        HttpClient::new()
    }
}

impl HttpClient {
    /// Builds the agent: proxies from `HTTPS_PROXY`/`NO_PROXY`, an extra CA bundle from
    /// `SSL_CERT_FILE` trusted besides the built-in Mozilla roots, redirects not followed
    /// (an `Authorization` header must never follow a redirect to another host).
    pub fn new() -> HttpClient {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .save_redirect_history(false)
            .user_agent(concat!("ims-action/", env!("CARGO_PKG_VERSION")))
            .proxy(ureq::Proxy::try_from_env())
            .timeout_connect(Some(CONNECT_TIMEOUT))
            .max_idle_connections(MAX_IDLE_CONNECTIONS)
            .max_idle_connections_per_host(MAX_IDLE_CONNECTIONS)
            .input_buffer_size(CONNECTION_BUFFERS.0)
            .output_buffer_size(CONNECTION_BUFFERS.1)
            .tls_config(tls_config())
            .build();
        let preconnector = Preconnector::default();
        let resolver = CachingResolver::default();
        HttpClient {
            agent: ureq::Agent::with_parts(config, preconnector.clone(), resolver.clone()),
            preconnector,
            resolver,
            offline: false,
        }
    }

    /// A client that fails every request immediately without any I/O (fuzzing, tests).
    pub fn offline() -> HttpClient {
        HttpClient {
            offline: true,
            ..HttpClient::new()
        }
    }

    /// Starts opening the connection a request to `base` will need, in a thread, while the
    /// caller does something else (fetches the token): the caller's next request (on this
    /// thread) to `base`'s origin that needs a new connection waits for it and uses it, or
    /// connects as usual if it failed (see [`crate::preconnect`]). Dropping the guard drops a connection no request took. `None`
    /// offline, when too little time is left for a request, or when no thread can be started.
    pub fn preconnect(&self, base: &BaseUrl, budget: &Budget) -> Option<Preconnection> {
        if self.offline {
            return None;
        }
        let timeout = budget.next_attempt(Service::Ims).ok()?.min(CONNECT_TIMEOUT);
        log::debug!(
            "opening the connection to {} while the token is fetched",
            base.origin()
        );
        self.preconnector
            .start(&base.origin(), self.agent.config(), &self.resolver, timeout)
    }

    /// Sends `req` within `budget`, retrying transient faults when `req.retryable`.
    /// An HTTP error status is an `Ok` response: the caller maps it, knowing the API.
    pub fn send(&self, req: &Request, budget: &Budget) -> Result<Response, Error> {
        if self.offline {
            return Err(Error::Unreachable {
                service: req.service,
                detail: "the HTTP client is offline".into(),
            });
        }
        let mut attempt = 1;
        loop {
            let timeout = budget.next_attempt(req.service)?;
            let started = Instant::now();
            let outcome = match self.attempt(req, timeout) {
                Err(Failure::Final(e)) => return Err(e),
                Err(Failure::Transient(e)) => Err(e),
                Ok(resp) => Ok(resp),
            };
            let took = started.elapsed();
            let (status, retry_after) = match &outcome {
                Ok(resp) => {
                    log::debug!(
                        "{} {}: HTTP {} in {} ms",
                        req.service,
                        req.what,
                        resp.status,
                        took.as_millis()
                    );
                    let now = budget.clock().now_ms();
                    let wait = resp
                        .retry_after
                        .as_deref()
                        .and_then(|v| parse_retry_after(v, now));
                    (Some(resp.status), wait)
                }
                Err(_) => (None, None),
            };
            let decision = retry::decide(&retry::Attempt {
                service: req.service,
                status,
                retry_after,
                repeatable: req.retryable,
                number: attempt,
                took,
                left: budget.left(),
                min_attempt: budget.min_attempt,
                max_wait: budget.request_timeout,
                random: random_u64(),
            });
            let what = || match &outcome {
                Ok(resp) => format!("HTTP {}", resp.status),
                Err(e) => format!("{e} after {} ms", took.as_millis()),
            };
            match decision {
                Decision::Retry(wait) => {
                    log::info!(
                        "{} {}: {}, retrying in {} ms (attempt {} of {MAX_ATTEMPTS})",
                        req.service,
                        req.what,
                        what(),
                        wait.as_millis(),
                        attempt + 1
                    );
                    budget.clock().sleep(wait);
                }
                Decision::Answer {
                    why,
                    retry_after_secs,
                } => {
                    if let Some(why) = why {
                        let tell = retry_after_secs
                            .map(|secs| format!("; the caller is told Retry-After: {secs}"))
                            .unwrap_or_default();
                        log::info!("{} {}: {}, {why}{tell}", req.service, req.what, what());
                    }
                    let mut resp = outcome?;
                    // A 429 without Retry-After goes back with the wait we would have made,
                    // so that the caller does not come back too soon either.
                    if let Some(secs) = retry_after_secs {
                        resp.retry_after = Some(secs.to_string());
                    }
                    return Ok(resp);
                }
            }
            attempt += 1;
        }
    }

    fn attempt(&self, req: &Request, timeout: Duration) -> Result<Response, Failure> {
        let service = req.service;
        let result = match req.method {
            Method::Get => call_without_body(self.agent.get(&req.url), req, timeout),
            Method::Delete => call_without_body(self.agent.delete(&req.url), req, timeout),
            Method::Post => send_with_body(self.agent.post(&req.url), req, timeout),
            Method::Put => send_with_body(self.agent.put(&req.url), req, timeout),
            Method::Patch => send_with_body(self.agent.patch(&req.url), req, timeout),
        };
        let mut resp = result.map_err(|e| classify(service, e, timeout))?;
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(|v| crate::scrub::excerpt(v, 200))
        };
        // Only a Retry-After that means something is kept (it goes back to the caller): seconds
        // or an HTTP date, never whatever else an upstream put there.
        let retry_after = header("retry-after").filter(|v| parse_retry_after(v, 0).is_some());
        let content_type = header("content-type");
        let debug_id = header("x-debug-id");
        let status = resp.status().as_u16();
        if (300..400).contains(&status) {
            return Err(Failure::Final(Error::BadUpstreamResponse {
                service,
                status,
                reason: "a redirect, which the action does not follow (check the base URL)".into(),
            }));
        }
        let limit = req.max_body.unwrap_or(MAX_BODY);
        let body = resp
            .body_mut()
            .with_config()
            .limit(limit)
            .read_to_vec()
            .map_err(|e| match e {
                ureq::Error::BodyExceedsLimit(_) => Failure::Final(Error::BadUpstreamResponse {
                    service,
                    status,
                    reason: format!("upstream response too large (more than {limit} bytes)"),
                }),
                other => classify(service, other, timeout),
            })?;
        Ok(Response {
            status,
            body,
            retry_after,
            content_type,
            debug_id,
        })
    }
}

fn call_without_body(
    mut builder: ureq::RequestBuilder<ureq::typestate::WithoutBody>,
    req: &Request,
    timeout: Duration,
) -> Result<ureq::http::Response<ureq::Body>, ureq::Error> {
    for (name, value) in &req.headers {
        builder = builder.header(name.as_ref(), value);
    }
    builder
        .config()
        .timeout_global(Some(timeout))
        .timeout_connect(Some(timeout.min(CONNECT_TIMEOUT)))
        .build()
        .call()
}

fn send_with_body(
    mut builder: ureq::RequestBuilder<ureq::typestate::WithBody>,
    req: &Request,
    timeout: Duration,
) -> Result<ureq::http::Response<ureq::Body>, ureq::Error> {
    for (name, value) in &req.headers {
        builder = builder.header(name.as_ref(), value);
    }
    let (content_type, body) = match &req.body {
        Some((ct, body)) => (ct.as_ref(), body.as_slice()),
        None => ("application/octet-stream", &[][..]),
    };
    builder
        .header("content-type", content_type)
        .config()
        .timeout_global(Some(timeout))
        .timeout_connect(Some(timeout.min(CONNECT_TIMEOUT)))
        .build()
        .send(body)
}

/// Sorts a transport error into transient (worth a retry) or final.
fn classify(service: Service, e: ureq::Error, timeout: Duration) -> Failure {
    match e {
        ureq::Error::Timeout(_) => Failure::Transient(Error::Timeout {
            service,
            detail: format!("no answer within {} ms", timeout.as_millis()),
        }),
        ureq::Error::Io(_)
        | ureq::Error::ConnectionFailed
        | ureq::Error::HostNotFound
        | ureq::Error::Protocol(_)
        | ureq::Error::Tls(_)
        | ureq::Error::Rustls(_) => Failure::Transient(Error::Unreachable {
            service,
            detail: e.to_string(),
        }),
        other => Failure::Final(Error::Unreachable {
            service,
            detail: other.to_string(),
        }),
    }
}

/// A random number for the retry policy's jitter, from the OS (ring is linked anyway).
fn random_u64() -> u64 {
    let mut bytes = [0u8; 8];
    // SystemRandom only fails when the OS has no randomness; then no jitter is no harm.
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes);
    u64::from_le_bytes(bytes)
}

/// `Retry-After` as seconds or an HTTP date (any of RFC 9110's three formats), as a wait from
/// `now_ms`; `None` for anything else.
pub fn parse_retry_after(value: &str, now_ms: u64) -> Option<Duration> {
    let value = value.trim();
    if value.len() <= 10 && !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        return value.parse::<u64>().ok().map(Duration::from_secs);
    }
    let at = httpdate::parse_http_date(value).ok()?;
    let at_ms = at.duration_since(std::time::UNIX_EPOCH).ok()?.as_millis() as u64;
    Some(Duration::from_millis(at_ms.saturating_sub(now_ms)))
}

/// Root certificates: Mozilla's, plus the PEM bundle in `SSL_CERT_FILE` when set (corporate
/// TLS interception).
fn tls_config() -> TlsConfig {
    tls_config_with(
        std::env::var_os("SSL_CERT_FILE")
            .filter(|p| !p.is_empty())
            .as_deref(),
    )
}

/// Mozilla's roots, plus the certificates of the PEM bundle at `extra` trusted *besides* them.
/// An unreadable bundle is logged and ignored.
fn tls_config_with(extra: Option<&std::ffi::OsStr>) -> TlsConfig {
    let builder = TlsConfig::builder();
    let Some(path) = extra else {
        return builder.build();
    };
    let extra: Vec<Certificate<'static>> = match std::fs::read(path) {
        Ok(pem) => ureq::tls::parse_pem(&pem)
            .filter_map(|item| match item {
                Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
                _ => None,
            })
            .collect(),
        Err(e) => {
            // ops: ssl-cert-file-unreadable
            log::warn!(
                "SSL_CERT_FILE {}: {e}; using the built-in roots only",
                path.to_string_lossy()
            );
            return builder.build();
        }
    };
    log::debug!(
        "trusting {} extra root certificate(s) from SSL_CERT_FILE",
        extra.len()
    );
    let roots = webpki_root_certs::TLS_SERVER_ROOT_CERTS
        .iter()
        .map(|c| Certificate::from_der(c.as_ref()))
        .chain(extra);
    builder.root_certs(RootCerts::from(roots)).build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_takes_seconds_and_each_of_the_three_date_formats() {
        let now = 1_445_412_470_000; // 10 s before the dates below
        assert_eq!(parse_retry_after("2", now), Some(Duration::from_secs(2)));
        for date in [
            "Wed, 21 Oct 2015 07:28:00 GMT",
            "Wednesday, 21-Oct-15 07:28:00 GMT",
            "Wed Oct 21 07:28:00 2015",
        ] {
            assert_eq!(
                parse_retry_after(date, now),
                Some(Duration::from_secs(10)),
                "{date}"
            );
        }
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now + 60_000),
            Some(Duration::ZERO)
        );
        for junk in [
            "soon",
            "31 Feb 2015",
            "Sat, 31 Feb 2015 07:28:00 GMT",
            "-1",
            "99999999999",
            "Bearer abc",
        ] {
            assert_eq!(parse_retry_after(junk, now), None, "{junk}");
        }
    }

    #[test]
    fn an_extra_ca_bundle_is_trusted_besides_the_built_in_roots() {
        let builtin = webpki_root_certs::TLS_SERVER_ROOT_CERTS.len();
        assert!(matches!(tls_config_with(None).root_certs(), RootCerts::WebPki));
        let missing = tls_config_with(Some(std::ffi::OsStr::new("/nonexistent/bundle.pem")));
        assert!(matches!(missing.root_certs(), RootCerts::WebPki));
        {
            use adobe_emulator::keys;
            let key = keys::rsa(2048);
            let pem = keys::certificate_pem(&key, 0, 4_000_000_000);
            let path = std::env::temp_dir().join(format!("ims-action-ca-{}.pem", std::process::id()));
            std::fs::write(&path, format!("{pem}\n{pem}")).unwrap();
            let config = tls_config_with(Some(path.as_os_str()));
            let _ = std::fs::remove_file(&path);
            match config.root_certs() {
                RootCerts::Specific(certs) => assert_eq!(certs.len(), builtin + 2),
                _ => panic!("expected the built-in roots plus the bundle"),
            }
        }
    }

    #[test]
    fn a_slice_ends_first_and_may_start_with_little_time() {
        let clock = Clock::held(1_000_000);
        let whole = Budget::new(&Activation::default(), DEFAULT_REQUEST_TIMEOUT, &clock);
        let slice = whole.slice(Duration::from_millis(150), Duration::from_millis(5));
        assert_eq!(slice.left(), Some(Duration::from_millis(150)));
        clock.advance(Duration::from_millis(100));
        assert_eq!(slice.left(), Some(Duration::from_millis(50)));
        assert_eq!(slice.request_timeout, Duration::from_millis(150));
        assert!(slice.next_attempt(Service::AdobeState).is_ok());
        // A slice of a spent budget is spent too.
        let spent = Budget::new(
            &Activation {
                deadline_ms: Some(1),
                ..Activation::default()
            },
            DEFAULT_REQUEST_TIMEOUT,
            &clock,
        );
        let slice = spent.slice(Duration::from_millis(150), Duration::from_millis(5));
        assert!(matches!(
            slice.next_attempt(Service::AdobeState),
            Err(Error::Timeout { .. })
        ));
    }

    #[test]
    fn a_spent_budget_refuses_to_start() {
        let a = Activation {
            deadline_ms: Some(1),
            ..Activation::default()
        };
        let b = Budget::new(&a, DEFAULT_REQUEST_TIMEOUT, &Clock::system());
        assert!(matches!(b.next_attempt(Service::Ims), Err(Error::Timeout { .. })));
        let unlimited = Budget::new(&Activation::default(), Duration::from_secs(1), &Clock::system());
        assert_eq!(
            unlimited.next_attempt(Service::Ims).ok(),
            Some(Duration::from_secs(1))
        );
    }
}
