//! The API's connection opened while the token is fetched (src/preconnect.rs), end to end. IMS
//! and the API get host:port pairs of their own (`localhost:P` and `127.0.0.1:P` of one
//! emulator), so each needs its own connection, as `ims-na1.adobelogin.com` and
//! `api.adobeaemcloud.com` do. The emulator holds the token request at a gate while a test
//! looks at the connections it has; nothing is timed.

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use adobe_emulator::{DemoCredentials, Emulator, Fault, Gate, OAuthClient, TestCa};
use common::*;
use ims_action::Action;
use ims_action::endpoint::AllowList;
use ims_action::token::TokenCache;
use serde_json::{Value, json};

/// Waits for `done`, polling every 10 ms; panics with `what` after 10 s.
fn wait_for(what: &str, done: impl Fn() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "never happened: {what}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Opens its gate when dropped, so that a failing test never leaves a request held.
struct OpenOnDrop(Gate);

impl Drop for OpenOnDrop {
    fn drop(&mut self) {
        self.0.open();
    }
}

/// A port nothing listens on (bound, then closed).
fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// An emulator with the demo credentials, and the OAuth params with IMS at `localhost:P` and the
/// AEM Data Service at `api` (by default `127.0.0.1:P`).
struct Split {
    emu: Emulator,
    ca: Option<TestCa>,
    oauth_client: String,
    params: Value,
}

impl Split {
    fn plain() -> Split {
        Split::start(None)
    }

    fn tls() -> Split {
        Split::start(Some(TestCa::generate(&[]).unwrap()))
    }

    fn start(ca: Option<TestCa>) -> Split {
        let emu = match &ca {
            Some(ca) => Emulator::start_tls_on("127.0.0.1:0", ca).unwrap(),
            None => Emulator::start().unwrap(),
        };
        let demo = DemoCredentials::generate();
        demo.register(&emu);
        let env = ims_action::runtime::dotenv::parse(&demo.to_env(&emu));
        let scheme = if ca.is_some() { "https" } else { "http" };
        let port = emu.host_port().rsplit_once(':').unwrap().1.to_string();
        let mut params = serde_json::Map::new();
        for n in OAUTH {
            params.insert(n.into(), json!(env[n]));
        }
        params.insert(
            "IMS_BASE_URL".into(),
            json!(format!("{scheme}://localhost:{port}")),
        );
        params.insert(
            "AEM_DATA_SERVICE_BASE_URL".into(),
            json!(format!("{scheme}://127.0.0.1:{port}")),
        );
        Split {
            oauth_client: env["OAUTHS2S_CLIENT_ID"].clone(),
            emu,
            ca,
            params: Value::Object(params),
        }
    }

    fn port(&self) -> String {
        self.emu.host_port().rsplit_once(':').unwrap().1.to_string()
    }

    /// The params with the API at `host_port` instead.
    fn api_at(&self, host_port: &str) -> Value {
        let scheme = if self.ca.is_some() { "https" } else { "http" };
        with(
            self.params.clone(),
            json!({"AEM_DATA_SERVICE_BASE_URL": format!("{scheme}://{host_port}")}),
        )
    }

    /// `IMS_ACTION_ALLOW_HOSTS`: both names of the emulator, and `extra`.
    fn allow(&self, extra: &[String]) -> String {
        let mut hosts = vec![format!("localhost:{}", self.port()), self.emu.host_port()];
        hosts.extend(extra.iter().cloned());
        hosts.join(",")
    }

    /// An in-process action (a warm container's: one agent, one token cache for every call).
    fn action(&self, extra: &[String]) -> Action {
        Action::new(AllowList::parse(&self.allow(extra)), TokenCache::in_memory())
    }

    /// Runs one cold activation as the one-shot binary (a fresh `TMPDIR`, so no token file),
    /// trusting the test CA: its result, and what it logged.
    fn run_oneshot(&self, params: &Value, extra: &[String]) -> (Value, String) {
        let tmp = temp_path("tmpdir");
        std::fs::create_dir_all(&tmp).unwrap();
        let ca_file = tmp.join("ca.pem");
        if let Some(ca) = &self.ca {
            std::fs::write(&ca_file, ca.ca_pem()).unwrap();
        }
        let deadline = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() + 30_000;
        let env = [
            ("TMPDIR", tmp.to_string_lossy().into_owned()),
            ("SSL_CERT_FILE", ca_file.to_string_lossy().into_owned()),
            ("IMS_ACTION_ALLOW_HOSTS", self.allow(extra)),
            ("__OW_DEADLINE", deadline.to_string()),
        ];
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let out = run_bin(&[&params.to_string()], &env, None);
        let _ = std::fs::remove_dir_all(&tmp);
        (last_line(&out), String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// A TCP relay to the emulator in front of the API: it counts the connections it accepts and
/// those the client closed, and may close the first one it accepts at once (a host that will
/// not talk).
struct Relay {
    port: u16,
    accepted: Arc<AtomicUsize>,
    closed_by_client: Arc<AtomicUsize>,
}

impl Relay {
    fn start(upstream: String, close_first: bool) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let closed_by_client = Arc::new(AtomicUsize::new(0));
        let (acc, closed) = (Arc::clone(&accepted), Arc::clone(&closed_by_client));
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                if acc.fetch_add(1, Ordering::SeqCst) == 0 && close_first {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(server) = TcpStream::connect(&upstream) else {
                    continue;
                };
                let closed = Arc::clone(&closed);
                let (mut c_in, mut s_out) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut c_in, &mut s_out);
                    closed.fetch_add(1, Ordering::SeqCst);
                    let _ = s_out.shutdown(Shutdown::Write);
                });
                let (mut s_in, mut c_out) = (server, client);
                std::thread::spawn(move || {
                    let mut buf = [0u8; 16 * 1024];
                    while let Ok(n) = s_in.read(&mut buf) {
                        if n == 0 || c_out.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    let _ = c_out.shutdown(Shutdown::Write);
                });
            }
        });
        Relay {
            port,
            accepted,
            closed_by_client,
        }
    }

    fn host_port(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

/// The one-shot binary, HTTPS: while IMS holds the token request, the API's TLS connection is
/// already open; the API request then goes over it. Two connections, two handshakes in all.
#[test]
fn a_cold_activation_opens_the_api_connection_while_the_token_is_fetched() {
    let s = Split::tls();
    let gate = OpenOnDrop(Gate::new());
    s.emu.inject_fault("/ims/token", Fault::Hold(gate.0.clone()), 1);
    let (result, _) = std::thread::scope(|scope| {
        let run = scope.spawn(|| s.run_oneshot(&s.params, &[]));
        wait_for("the API's TLS connection, the token request held", || {
            s.emu.request_count("/ims/token") == 1 && s.emu.connection_stats().tls_handshakes == 2
        });
        assert_eq!(s.emu.tokens_issued(&s.oauth_client), 0, "the token was held");
        assert_eq!(
            s.emu.request_count("/adobe"),
            0,
            "nothing was sent to the API yet"
        );
        gate.0.open();
        run.join().unwrap()
    });
    assert_eq!(status(&result), 200, "{result}");
    let stats = s.emu.connection_stats();
    assert_eq!((stats.accepted, stats.tls_handshakes), (2, 2), "{stats:?}");
    assert_eq!(s.emu.tokens_issued(&s.oauth_client), 1);
    assert_eq!(s.emu.request_count("/adobe/stats"), 1);
}

/// A warm container: the first activation opens two connections (IMS, API), the next ones
/// reuse the API's, with the token from memory, and open nothing early.
#[test]
fn warm_activations_open_no_connection() {
    let s = Split::plain();
    let action = s.action(&[]);
    assert_eq!(status(&action.handle(s.params.clone(), &Default::default())), 200);
    assert_eq!(s.emu.connection_stats().accepted, 2);
    for _ in 0..3 {
        let r = action.handle(s.params.clone(), &Default::default());
        assert_eq!(status(&r), 200, "{r}");
    }
    assert_eq!(s.emu.connection_stats().accepted, 2);
    assert_eq!(s.emu.tokens_issued(&s.oauth_client), 1);
    assert_eq!(s.emu.request_count("/adobe/stats"), 4);
}

/// A warm container asked for another credential: its token is fetched, and the API
/// connection the pool holds serves the call; none is opened early.
#[test]
fn a_new_credential_in_a_warm_container_uses_the_pooled_connection() {
    let s = Split::plain();
    let action = s.action(&[]);
    assert_eq!(status(&action.handle(s.params.clone(), &Default::default())), 200);
    assert_eq!(s.emu.connection_stats().accepted, 2);
    let scopes = s.params["OAUTHS2S_CECREDENTIALS_METASCOPES"].as_str().unwrap();
    s.emu.add_oauth_client(OAuthClient {
        client_id: "second-client-0123456789".into(),
        client_secret: "p8e-second-secret-0123456789".into(),
        scopes: scopes.split(',').map(String::from).collect(),
        org_id: s.params["IMS_ORG_ID"].as_str().unwrap().into(),
    });
    let second = with(
        s.params.clone(),
        json!({"OAUTHS2S_CLIENT_ID": "second-client-0123456789",
               "OAUTHS2S_CLIENT_SECRET": "p8e-second-secret-0123456789"}),
    );
    let r = action.handle(second, &Default::default());
    assert_eq!(status(&r), 200, "{r}");
    assert_eq!(s.emu.tokens_issued("second-client-0123456789"), 1);
    assert_eq!(
        s.emu.connection_stats().accepted,
        2,
        "the pooled ones served both"
    );
}

/// The API host closes the early connection during its TLS handshake: the request connects on
/// its own at once (not as a retry of a failed attempt) and the activation succeeds.
#[test]
fn a_failed_early_connection_leaves_the_request_to_connect() {
    let s = Split::tls();
    let relay = Relay::start(s.emu.host_port(), true);
    let (result, log) = s.run_oneshot(&s.api_at(&relay.host_port()), &[relay.host_port()]);
    assert_eq!(status(&result), 200, "{result}");
    assert!(!log.contains("retrying"), "{log}");
    assert_eq!(
        relay.accepted.load(Ordering::SeqCst),
        2,
        "the early one, then the request's"
    );
    let stats = s.emu.connection_stats();
    assert_eq!((stats.accepted, stats.tls_handshakes), (2, 2), "{stats:?}");
    assert_eq!(s.emu.request_count("/adobe/stats"), 1);
}

/// An API host that refuses connections fails the activation as it always did (the API is
/// unreachable), not sooner: the token is fetched and kept for the next call.
#[test]
fn a_refused_early_connection_changes_nothing_else() {
    let s = Split::plain();
    let api = format!("127.0.0.1:{}", closed_port());
    let action = s.action(std::slice::from_ref(&api));
    let r = action.handle(s.api_at(&api), &Default::default());
    assert_eq!(status(&r), 502, "{r}");
    assert!(message(&r).contains("AEM Data Service"), "{r}");
    assert_eq!(s.emu.tokens_issued(&s.oauth_client), 1);
    assert_eq!(s.emu.connection_stats().accepted, 1, "IMS only");
}

/// A token fetch that fails leaves the early connection unused: it is closed when the
/// activation ends, not kept for a later one.
#[test]
fn an_unused_early_connection_is_closed() {
    let s = Split::plain();
    let relay = Relay::start(s.emu.host_port(), false);
    let action = s.action(&[relay.host_port()]);
    let invalid = json!({"error": "invalid_client", "error_description": "invalid client_secret"});
    s.emu.inject_fault(
        "/ims/token",
        Fault::Status {
            status: 400,
            retry_after: None,
            body: Some(invalid.to_string()),
        },
        1,
    );
    let r = action.handle(s.api_at(&relay.host_port()), &Default::default());
    assert_eq!(status(&r), 502, "{r}");
    assert!(message(&r).contains("IMS refused the credentials"), "{r}");
    assert_eq!(relay.accepted.load(Ordering::SeqCst), 1, "the early connection");
    wait_for("the early connection closed", || {
        relay.closed_by_client.load(Ordering::SeqCst) == 1
    });
    assert_eq!(s.emu.request_count("/adobe"), 0);
}

/// IMS and the API at one origin (an emulator, a gateway in front of both): the token request's
/// connection goes back to the pool and serves the API, so none is opened early (no thread, no
/// connection to hand over). With an origin each, the same run opens one.
#[test]
fn one_origin_for_ims_and_the_api_opens_nothing_early() {
    let s = Split::plain();
    let debug = |params: Value| with(params, json!({"LOG_LEVEL": "debug"}));
    let same = with(
        s.params.clone(),
        json!({"IMS_BASE_URL": format!("http://{}", s.emu.host_port())}),
    );
    let (result, log) = s.run_oneshot(&debug(same), &[]);
    assert_eq!(status(&result), 200, "{result}");
    assert!(!log.contains("while the token is fetched"), "{log}");
    assert_eq!(s.emu.connection_stats().accepted, 1);

    let (result, log) = s.run_oneshot(&debug(s.params.clone()), &[]);
    assert_eq!(status(&result), 200, "{result}");
    assert!(log.contains("while the token is fetched"), "{log}");
    assert_eq!(s.emu.connection_stats().accepted, 3);
}
