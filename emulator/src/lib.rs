//! `adobe-emulator`: a local stand-in for Adobe's servers (IMS, AEM Data Service, Analytics 2.0,
//! AEM author, Target's Admin API, Adobe I/O State) used by integration tests, `make demo` and benchmarks.
//!
//! Everything is served from one port: plain HTTP by default, HTTPS with a throwaway
//! [`TestCa`] when started with [`Emulator::start_tls_on`]. The checks mirror what Adobe documents (see
//! `docs/adobe-protocols.md` in the repository) closely enough that a client which passes against the emulator
//! sends the requests Adobe expects; the fake data behind them is deliberately thin.
//!
//! Tests drive it through [`Emulator`]; shell scripts and benchmarks through the control
//! endpoints (`/__stats`, `/__faults`, `/__clock`, `/__requests`).

mod adobe_state;
mod apis;
mod control;
mod demo;
pub mod encoding;
pub mod fixtures;
mod form;
mod ims;
pub mod keys;
mod response;
mod server;
mod state;
mod target;
#[cfg(test)]
mod tests;
mod tls;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

pub use adobe_state::StateEntry;
pub use demo::DemoCredentials;
pub use state::ConnectionStats;
pub use tls::TestCa;

use state::State;

/// Connections the kernel queues for `accept` before it drops SYNs: a burst of activations at
/// once (Adobe's default concurrency is 200) connects all at once, and std listens with a backlog
/// of 128. The kernel caps it at `net.core.somaxconn` (4096 by default since Linux 5.4).
const LISTEN_BACKLOG: i32 = 1024;

/// Listens again on `listener` with [`LISTEN_BACKLOG`]: on a socket already listening, Linux
/// only updates the backlog (`inet_listen` in net/ipv4/af_inet.c), so no connection is lost.
fn deepen_backlog(listener: &TcpListener) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: listen(2) on a socket this listener owns and keeps open for the call.
    if unsafe { libc::listen(listener.as_raw_fd(), LISTEN_BACKLOG) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// A running emulator. Dropping it stops accepting connections; connection threads that are
/// blocked on an idle keep-alive connection may linger until their client goes away.
pub struct Emulator {
    addr: SocketAddr,
    https: bool,
    state: Arc<State>,
    shutdown: Arc<AtomicBool>,
}

impl Emulator {
    /// Starts an emulator on `127.0.0.1` with a port chosen by the OS.
    pub fn start() -> std::io::Result<Emulator> {
        Self::start_on("127.0.0.1:0")
    }

    /// Starts an emulator listening on `addr` (e.g. `127.0.0.1:8080`).
    pub fn start_on(addr: &str) -> std::io::Result<Emulator> {
        Self::start_with(addr, None)
    }

    /// Starts an emulator serving HTTPS on `addr` with a certificate issued by `ca`.
    pub fn start_tls_on(addr: &str, ca: &TestCa) -> std::io::Result<Emulator> {
        Self::start_with(addr, Some(ca))
    }

    fn start_with(addr: &str, ca: Option<&TestCa>) -> std::io::Result<Emulator> {
        let listener = TcpListener::bind(addr)?;
        deepen_backlog(&listener)?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State::new());
        let shutdown = Arc::new(AtomicBool::new(false));
        server::spawn_accept_loop(
            listener,
            Arc::clone(&state),
            Arc::clone(&shutdown),
            ca.map(TestCa::server_config),
        )?;
        Ok(Emulator {
            addr,
            https: ca.is_some(),
            state,
            shutdown,
        })
    }

    /// The base URL of every emulated service, e.g. `http://127.0.0.1:41234` (`https://…` when
    /// started with TLS).
    pub fn base_url(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// `127.0.0.1:PORT`, for allow-lists.
    pub fn host_port(&self) -> String {
        self.addr.to_string()
    }

    /// Registers an OAuth Server-to-Server client for `/ims/token/v3` (replaces one with the
    /// same id).
    pub fn add_oauth_client(&self, client: OAuthClient) {
        self.state.add_oauth_client(client);
    }

    /// Registers a Service Account (JWT) client for `/ims/exchange/jwt` (replaces one with the
    /// same id).
    pub fn add_jwt_client(&self, client: JwtClient) {
        self.state.add_jwt_client(client);
    }

    /// Registers a local development token accepted by the AEM author endpoints.
    pub fn add_dev_token(&self, token: &str) {
        self.state.add_dev_token(token);
    }

    /// How many access tokens were issued to `client_id` (both flows).
    pub fn tokens_issued(&self, client_id: &str) -> u64 {
        self.state.tokens_issued(client_id)
    }

    /// How many requests arrived whose path starts with `path_prefix` (control endpoints are
    /// not counted). Faulted requests count too.
    pub fn request_count(&self, path_prefix: &str) -> u64 {
        self.state.request_count(path_prefix)
    }

    /// TCP connections accepted and TLS handshakes done so far (also in `GET /__stats`).
    pub fn connection_stats(&self) -> ConnectionStats {
        self.state.connection_stats()
    }

    /// The recorded requests whose path starts with `path_prefix`, oldest first. Only the most
    /// recent [`MAX_RECORDED_REQUESTS`] requests are kept so that benchmarks do not grow memory
    /// without bound.
    pub fn requests(&self, path_prefix: &str) -> Vec<RecordedRequest> {
        self.state.requests(path_prefix)
    }

    /// The decoded claims of the last JWT accepted for `client_id`.
    pub fn last_jwt_claims(&self, client_id: &str) -> Option<serde_json::Value> {
        self.state.last_jwt_claims(client_id)
    }

    /// Makes the next `count` requests whose path starts with `path_prefix` fail with `fault`.
    /// Faults are queued in the order injected and take precedence over normal handling.
    pub fn inject_fault(&self, path_prefix: &str, fault: Fault, count: u32) {
        self.state.inject_fault(path_prefix, fault, count);
    }

    /// Moves the emulator clock (used for every expiry check) forward.
    pub fn advance_clock(&self, by: Duration) {
        self.state.advance_clock(by);
    }

    /// Sets the lifetime of tokens issued from now on: `http_expires` is what the token
    /// response's `expires_in` says, `payload_expires` what the token's own payload says. The
    /// emulator rejects the token after the earlier of the two, so a client must honour both.
    /// Defaults: 86 399 999 ms and 86 400 000 ms (24 h), like IMS.
    pub fn set_token_lifetime(&self, http_expires: Duration, payload_expires: Duration) {
        self.state.set_token_lifetime(http_expires, payload_expires);
    }

    /// Registers an Adobe I/O State namespace and the API key (`uuid:secret`, as
    /// `__OW_API_KEY`) that may use it (replaces the key of a namespace already known).
    pub fn add_state_namespace(&self, namespace: &str, api_key: &str) {
        self.state.adobe_state.add_namespace(namespace, api_key);
    }

    /// The unexpired Adobe I/O State entries of `namespace`, raw, sorted by key: what anyone
    /// holding the namespace's key could read.
    pub fn state_entries(&self, namespace: &str) -> Vec<StateEntry> {
        self.state.adobe_state.entries(namespace, self.state.now_ms())
    }

    /// Writes an Adobe I/O State entry directly, bypassing the API (to tamper with one).
    pub fn put_state_entry(&self, namespace: &str, entry: StateEntry) {
        self.state.adobe_state.put(namespace, entry);
    }

    /// The emulator clock, Unix milliseconds (real time plus [`Emulator::advance_clock`]).
    pub fn now_ms(&self) -> u64 {
        self.state.now_ms()
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        self.shutdown.store(true, Ordering::SeqCst);
        // The accept loop is blocked in accept(); one connection wakes it so it can see the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(500));
    }
}

impl std::fmt::Debug for Emulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emulator").field("addr", &self.addr).finish()
    }
}

/// How many requests [`Emulator::requests`] and `/__requests` remember.
pub const MAX_RECORDED_REQUESTS: usize = 10_000;

/// An OAuth Server-to-Server credential as configured in the Developer Console.
#[derive(Clone, Debug)]
pub struct OAuthClient {
    /// Client id (also the `x-api-key` for API calls).
    pub client_id: String,
    /// Client secret.
    pub client_secret: String,
    /// Scopes the credential may request (bare names, e.g. `openid`, `AdobeID`).
    pub scopes: Vec<String>,
    /// IMS org the issued tokens belong to (`…@AdobeOrg`).
    pub org_id: String,
}

/// A Service Account (JWT) credential, also used for AEM service credentials.
#[derive(Clone, Debug)]
pub struct JwtClient {
    /// Client id (`aud` is `{ims}/c/{client_id}`).
    pub client_id: String,
    /// Client secret.
    pub client_secret: String,
    /// IMS org; the JWT `iss` must equal it.
    pub org_id: String,
    /// Technical account id; the JWT `sub` must equal it.
    pub technical_account_id: String,
    /// Metascopes bound to the credential, as bare names (`ent_aem_cloud_api`) or full URLs
    /// (only the part after `/s/` is compared).
    pub metascopes: Vec<String>,
    /// The public key that verifies the JWT signature, PKCS#1 `RSAPublicKey` DER.
    pub public_key_der: Vec<u8>,
}

/// A failure to inject with [`Emulator::inject_fault`] or `POST /__faults`.
#[derive(Clone, Debug)]
pub enum Fault {
    /// Answer with this status. `body` defaults to an IMS-style JSON error; `retry_after` adds
    /// a `Retry-After` header.
    Status {
        /// HTTP status code.
        status: u16,
        /// `Retry-After` header value, if any.
        retry_after: Option<String>,
        /// Response body, if not the default.
        body: Option<String>,
    },
    /// Wait this long, then answer normally.
    Delay(Duration),
    /// Hold the request until the gate opens (at most [`MAX_HOLD`]), then answer normally: a
    /// test sees what a client does while it waits for an answer, without timing anything.
    Hold(Gate),
    /// Close the connection without answering.
    Drop,
    /// Answer 200 with `content-type: application/json` and a truncated JSON body.
    Malformed,
    /// Answer 502 with an HTML error page, like a gateway in front of Adobe does.
    Html,
    /// Answer 200 with a valid JSON body of [`HUGE_BODY_BYTES`] bytes.
    Huge,
    /// Answer with this status and a body that quotes the whole request back (body first, then
    /// every header, `authorization` included), in the fields IMS errors (`error_description`)
    /// and API errors (`message`) use, and as `request`: a hostile or careless upstream that
    /// reflects what it was sent, form-encoded secrets and bearer tokens alike.
    Echo {
        /// HTTP status code.
        status: u16,
    },
    /// Like [`Fault::Echo`], but the quoted request (body, then every header, as one text) is
    /// passed through `encode` first and answered as `message` and `error_description`: an
    /// upstream that reflects the request base64-encoded, percent-encoded, wrapped or cut.
    EchoEncoded {
        /// HTTP status code.
        status: u16,
        /// What the upstream does to the text before quoting it.
        encode: fn(&str) -> String,
    },
}

/// The longest a [`Fault::Hold`] holds a request whose gate never opens.
pub const MAX_HOLD: Duration = Duration::from_secs(10);

/// Where [`Fault::Hold`] requests wait; clones share it. Closed until [`Gate::open`].
#[derive(Clone, Debug, Default)]
pub struct Gate(Arc<(Mutex<bool>, Condvar)>);

impl Gate {
    /// A closed gate.
    pub fn new() -> Gate {
        Gate::default()
    }

    /// Opens the gate: every request held at it goes on, and none is held from now on.
    pub fn open(&self) {
        let (open, changed) = &*self.0;
        *open.lock().unwrap_or_else(|e| e.into_inner()) = true;
        changed.notify_all();
    }

    /// Waits until the gate is open, at most `limit`.
    pub(crate) fn pass(&self, limit: Duration) {
        let (open, changed) = &*self.0;
        let guard = open.lock().unwrap_or_else(|e| e.into_inner());
        let _ = changed.wait_timeout_while(guard, limit, |open| !*open);
    }
}

/// Size of the body sent for [`Fault::Huge`].
pub const HUGE_BODY_BYTES: usize = 10 * 1024 * 1024;

/// One request as it arrived (header names lower-cased, body de-chunked).
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    /// Method, e.g. `POST`.
    pub method: String,
    /// Path without the query string.
    pub path: String,
    /// Raw query string without `?` (empty if none).
    pub query: String,
    /// Headers in arrival order, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// Body bytes (after transfer decoding).
    pub body: Vec<u8>,
    /// When it had arrived whole: a test measures a client's waits between requests with it.
    pub received: std::time::Instant,
}

impl RecordedRequest {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The decoded form fields of the body: `multipart/form-data` if the content type says so,
    /// otherwise `application/x-www-form-urlencoded`.
    pub fn form(&self) -> Vec<(String, String)> {
        let content_type = self.header("content-type").unwrap_or("");
        if let Some(boundary) = form::multipart_boundary(content_type) {
            form::parse_multipart(&self.body, &boundary).unwrap_or_default()
        } else {
            form::parse_urlencoded(&self.body)
        }
    }

    /// The first query parameter named `name`, percent-decoded.
    pub fn query_param(&self, name: &str) -> Option<String> {
        form::parse_urlencoded(self.query.as_bytes())
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }
}
