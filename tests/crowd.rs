//! Many activations at once in one container, end to end: the Node launcher
//! (actions/ims-action/index.js), driven as the Node.js runtime drives it with
//! `limits.concurrency` > 1 (actions/ims-action/test/fixtures/drive: every activation at once),
//! the real binary in its multiplexed mode, and the emulator. Needs `node` on the PATH.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use adobe_emulator::{DemoCredentials, Emulator, Fault, Gate, OAuthClient, TestCa};
use common::*;
use serde_json::{Value, json};

/// How long the test waits for one answer, or for the emulator to see what it waits for.
const PATIENCE: Duration = Duration::from_secs(60);

/// Adobe I/O Runtime's default `limits.concurrency`: what one container may be sent at once.
const CROWD: usize = 200;

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The binary under test and the most RSS it may have with [`CROWD`] activations in flight, in
/// MiB: the release binary (`IMS_ACTION_RELEASE_BIN`, set by `make test`) as deployed, under
/// the 32 MiB promise (measured: 18 MiB, 28 MiB over TLS); else the debug one, whose frames
/// are larger (each thread touches 120 to 160 KiB of stack, against 50 to 70 in release) and
/// whose glibc heap keeps an arena per core (measured: 41 MiB, 57 MiB over TLS).
fn under_test() -> (PathBuf, u64) {
    match std::env::var_os("IMS_ACTION_RELEASE_BIN") {
        Some(release) => (PathBuf::from(release), 32),
        None => (bin(), 80),
    }
}

/// The launcher with one child, driven through `drive`'s stdin and stdout.
struct Crowd {
    node: Child,
    stdin: Option<ChildStdin>,
    answers: Receiver<Value>,
    pids: Receiver<Value>,
    logs: Arc<Mutex<Vec<u8>>>,
}

impl Crowd {
    fn start(w: &World) -> Crowd {
        Crowd::start_with(&[("IMS_ACTION_ALLOW_HOSTS", w.emu.host_port())])
    }

    /// With `env` on top of this process's environment.
    fn start_with(env: &[(&str, String)]) -> Crowd {
        let drive = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("actions/ims-action/test/fixtures/drive");
        let mut node = Command::new("node")
            .arg(drive)
            .arg(under_test().0)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .env_remove("RUST_LOG")
            .env_remove("IMS_ACTION_MAX_IN_FLIGHT")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("node runs (install Node.js 20 or later)");
        let stdin = node.stdin.take();
        let stdout = node.stdout.take().expect("stdout");
        let mut stderr = node.stderr.take().expect("stderr");
        let (answer_tx, answers) = channel();
        let (pid_tx, pids) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let v: Value = serde_json::from_str(&line).expect("drive writes JSON lines");
                let sent = if v.get("pid").is_some() {
                    pid_tx.send(v)
                } else {
                    answer_tx.send(v)
                };
                if sent.is_err() {
                    break;
                }
            }
        });
        let logs = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&logs);
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            while let Ok(n @ 1..) = stderr.read(&mut buf) {
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        Crowd {
            node,
            stdin,
            answers,
            pids,
            logs,
        }
    }

    fn write(&mut self, request: &Value) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "{request}").expect("write to drive");
        stdin.flush().expect("flush");
    }

    /// Starts activation `n` now (its deadline a minute away unless `context` says otherwise).
    fn send(&mut self, n: &str, params: &Value, context: Value) {
        self.write(&json!({"n": n, "params": params, "context": context}));
    }

    /// The next answer: `(n, result)`.
    fn next(&self) -> (String, Value) {
        let v = self.answers.recv_timeout(PATIENCE).expect("an answer in time");
        (v["n"].as_str().expect("n").to_string(), v["result"].clone())
    }

    /// The next `count` answers by `n`, each `n` answered once.
    fn collect(&self, count: usize) -> BTreeMap<String, Value> {
        let mut got = BTreeMap::new();
        for _ in 0..count {
            let (n, result) = self.next();
            assert!(got.insert(n.clone(), result).is_none(), "{n} answered twice");
        }
        got
    }

    /// The pid of the launcher's child.
    fn pid(&mut self) -> u32 {
        self.write(&json!({"pid": true}));
        let v = self.pids.recv_timeout(PATIENCE).expect("the pid");
        v["pid"].as_u64().expect("a child runs") as u32
    }

    fn logs(&self) -> String {
        String::from_utf8_lossy(&self.logs.lock().unwrap()).into_owned()
    }
}

impl Drop for Crowd {
    fn drop(&mut self) {
        // stdin's end: drive waits for what is in flight, then exits, and the child with it.
        self.stdin.take();
        let _ = self.node.kill();
        let _ = self.node.wait();
    }
}

/// Waits until `emu` has seen `count` requests under `prefix` (held ones included).
fn wait_at(emu: &Emulator, prefix: &str, count: u64) {
    let started = Instant::now();
    while emu.request_count(prefix) < count {
        assert!(
            started.elapsed() < PATIENCE,
            "the emulator saw {} of {count} requests to {prefix}",
            emu.request_count(prefix)
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Waits until the emulator has seen `count` requests under `prefix` (held ones included).
fn wait_for_requests(w: &World, prefix: &str, count: u64) {
    wait_at(&w.emu, prefix, count);
}

/// An `aem-get` of `path` with the demo OAuth credential.
fn aem_get(w: &World, path: &str) -> Value {
    with(w.oauth(), json!({"OPERATION": "aem-get", "AEM_PATH": path}))
}

/// The largest resident set process `pid` has had so far, in KiB (`VmHWM` in
/// /proc/<pid>/status): read with every activation in flight, it covers their TLS handshakes too.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("the child's status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM")
}

/// The bearer token of each request to `prefix` the emulator saw, by path.
fn tokens_by_path(w: &World, prefix: &str) -> BTreeMap<String, String> {
    w.emu
        .requests(prefix)
        .into_iter()
        .map(|r| {
            let token = r
                .header("authorization")
                .unwrap_or("")
                .trim_start_matches("Bearer ");
            (r.path.clone(), token.to_string())
        })
        .collect()
}

#[test]
fn two_hundred_activations_at_once_share_one_token_stay_small_and_each_get_their_own_answer() {
    let w = World::new();
    let mut crowd = Crowd::start(&w);
    // First burst, cold: every API request is held at the emulator until all 200 are there,
    // which they can only be if the binary runs them at once.
    let gate = Gate::new();
    w.emu
        .inject_fault("/content/dam.json", Fault::Hold(gate.clone()), CROWD as u32);
    for i in 0..CROWD {
        crowd.send(
            &format!("a{i}"),
            &aem_get(&w, &format!("/content/dam.json?n={i}")),
            json!({}),
        );
    }
    wait_for_requests(&w, "/content/dam.json", CROWD as u64);
    let rss = rss_kib(crowd.pid());
    let (binary, limit_mib) = under_test();
    eprintln!(
        "RSS of {} with {CROWD} activations in flight: {rss} KiB",
        binary.display()
    );
    assert!(rss < limit_mib * 1024, "{rss} KiB with {CROWD} in flight");
    gate.open();
    let first = crowd.collect(CROWD);
    for (n, r) in &first {
        assert_eq!(status(r), 200, "{n}: {r}");
    }
    assert_eq!(
        w.emu.request_count("/ims/token/v3"),
        1,
        "one IMS token for the burst"
    );
    assert_eq!(w.emu.tokens_issued(&w.env["OAUTHS2S_CLIENT_ID"]), 1);
    let opened = w.emu.connection_stats().accepted;

    // Second burst, right after: each its own path, echoed back by the emulator, so that an
    // answer paired with the wrong activation shows. The first burst's connections are still
    // open: none is opened, and no token fetched.
    w.emu
        .inject_fault("/content/crowd/", Fault::Echo { status: 200 }, CROWD as u32);
    for i in 0..CROWD {
        crowd.send(
            &format!("b{i}"),
            &aem_get(&w, &format!("/content/crowd/{i}.json")),
            json!({}),
        );
    }
    let second = crowd.collect(CROWD);
    let tokens = tokens_by_path(&w, "/content/crowd/");
    for i in 0..CROWD {
        let r = &second[&format!("b{i}")];
        assert_eq!(status(r), 200, "b{i}: {r}");
        assert_eq!(
            r["body"]["request"]["path"],
            format!("/content/crowd/{i}.json"),
            "b{i}"
        );
        // The echoed bearer token is this activation's secret: scrubbed from its result.
        let token = &tokens[&format!("/content/crowd/{i}.json")];
        assert!(token.len() > 20);
        assert!(!r.to_string().contains(token.as_str()), "b{i} returned its token");
    }
    assert_eq!(w.emu.request_count("/ims/token/v3"), 1);
    assert_eq!(
        w.emu.connection_stats().accepted,
        opened,
        "the second burst found the first one's connections open"
    );
}

#[test]
fn one_activation_held_at_the_emulator_holds_none_of_the_other_199() {
    let w = World::new();
    let mut crowd = Crowd::start(&w);
    let gate = Gate::new();
    w.emu
        .inject_fault("/content/dam/demo.json", Fault::Hold(gate.clone()), 1);
    crowd.send("held", &aem_get(&w, "/content/dam/demo.json"), json!({}));
    wait_for_requests(&w, "/content/dam/demo.json", 1);
    for i in 1..CROWD {
        crowd.send(
            &format!("{i}"),
            &aem_get(&w, &format!("/content/dam.json?n={i}")),
            json!({}),
        );
    }
    let others = crowd.collect(CROWD - 1);
    assert!(
        !others.contains_key("held"),
        "the held one answered before its gate opened"
    );
    for (n, r) in &others {
        assert_eq!(status(r), 200, "{n}: {r}");
    }
    gate.open();
    let (n, held) = crowd.next();
    assert_eq!(n, "held");
    assert_eq!(status(&held), 200, "{held}");
    assert_eq!(held["body"]["jcr:title"], "Demo");
    assert_eq!(w.emu.request_count("/ims/token/v3"), 1);
}

#[test]
fn two_credentials_at_once_keep_their_secrets_apart_in_results_and_log_lines() {
    let w = World::new();
    let second = OAuthClient {
        client_id: "crowd-second-client".into(),
        client_secret: "p8e-crowd-second-SECRET-0123456789".into(),
        scopes: w.demo.oauth.scopes.clone(),
        org_id: w.demo.oauth.org_id.clone(),
    };
    w.emu.add_oauth_client(second.clone());
    let first_secret = w.env["OAUTHS2S_CLIENT_SECRET"].clone();
    let mut crowd = Crowd::start(&w);
    w.emu
        .inject_fault("/content/crowd/", Fault::Echo { status: 200 }, 100);
    for i in 0..50 {
        let a = with(
            aem_get(&w, &format!("/content/crowd/a{i}.json")),
            json!({"LOG_LEVEL": "debug"}),
        );
        // (The second credential's params, secret included, differ from the first's.)
        let b = with(
            aem_get(&w, &format!("/content/crowd/b{i}.json")),
            json!({"LOG_LEVEL": "info", "OAUTHS2S_CLIENT_ID": second.client_id,
                   "OAUTHS2S_CLIENT_SECRET": second.client_secret}),
        );
        crowd.send(&format!("a{i}"), &a, json!({}));
        crowd.send(&format!("b{i}"), &b, json!({}));
    }
    let results = crowd.collect(100);
    assert_eq!(w.emu.tokens_issued(&w.env["OAUTHS2S_CLIENT_ID"]), 1);
    assert_eq!(w.emu.tokens_issued(&second.client_id), 1);
    let tokens = tokens_by_path(&w, "/content/crowd/");
    let token_of = |who: char| {
        let set: std::collections::BTreeSet<_> = tokens
            .iter()
            .filter(|(path, _)| path.starts_with(&format!("/content/crowd/{who}")))
            .map(|(_, t)| t.clone())
            .collect();
        assert_eq!(set.len(), 1, "one token per credential: {set:?}");
        set.into_iter().next().unwrap()
    };
    let (token_a, token_b) = (token_of('a'), token_of('b'));
    assert_ne!(token_a, token_b);
    let secrets = [
        ("a", [first_secret.as_str(), token_a.as_str()]),
        ("b", [second.client_secret.as_str(), token_b.as_str()]),
    ];
    for (n, r) in &results {
        assert_eq!(status(r), 200, "{n}: {r}");
        assert_eq!(r["body"]["request"]["path"], format!("/content/crowd/{n}.json"));
        // Neither credential's secrets, its own (scrubbed) or the other's (never seen).
        for (_, values) in &secrets {
            for s in values {
                assert!(!r.to_string().contains(s), "{n}'s result holds a secret");
            }
        }
    }
    // Each line says whose it is, and each activation logs at its own LOG_LEVEL: the first
    // credential's at debug, the second's at info, at the same time.
    let logs = crowd.logs();
    for i in 0..50 {
        let tag = format!("[crowd-a{i}] ");
        assert!(
            logs.lines().any(|l| l.contains("DEBUG ") && l.contains(&tag)),
            "no debug line says it is a{i}'s:\n{logs}"
        );
    }
    for line in logs.lines().filter(|l| l.contains("DEBUG ")) {
        assert!(
            line.contains("[crowd-a"),
            "a debug line not of a debug activation: {line}"
        );
    }
    for line in logs.lines() {
        for (_, values) in &secrets {
            for s in values {
                assert!(!line.contains(s), "a secret in a log line: {line}");
            }
        }
    }
}

#[test]
fn a_child_killed_with_activations_in_flight_fails_each_with_a_502_and_the_next_starts_afresh() {
    let w = World::new();
    let mut crowd = Crowd::start(&w);
    crowd.send("warm", &aem_get(&w, "/content/dam/demo.json"), json!({}));
    assert_eq!(status(&crowd.next().1), 200);
    let pid = crowd.pid();
    let gate = Gate::new();
    w.emu
        .inject_fault("/content/dam.json", Fault::Hold(gate.clone()), 20);
    for i in 0..20 {
        crowd.send(
            &format!("{i}"),
            &aem_get(&w, &format!("/content/dam.json?n={i}")),
            json!({}),
        );
    }
    wait_for_requests(&w, "/content/dam.json", 20);
    let killed = Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    let answers = crowd.collect(20);
    for (n, r) in &answers {
        assert_eq!(status(r), 502, "{n}: {r}");
        assert_eq!(
            message(r),
            "ims-action binary exited unexpectedly (code null, signal SIGKILL); it will be restarted"
        );
    }
    gate.open();
    crowd.send("next", &aem_get(&w, "/content/dam/demo.json"), json!({}));
    let (_, next) = crowd.next();
    assert_eq!(status(&next), 200, "{next}");
    assert_ne!(crowd.pid(), pid, "a fresh child");
}

#[test]
fn an_activation_whose_deadline_passes_is_answered_504_without_holding_the_rest() {
    let w = World::new();
    let mut crowd = Crowd::start(&w);
    let gate = Gate::new();
    w.emu
        .inject_fault("/content/dam/demo.json", Fault::Hold(gate.clone()), 1);
    // The emulator holds it (the gate opens only at the end), so it can only end at its deadline.
    let deadline = (now_ms() + 8_000).to_string();
    crowd.send(
        "doomed",
        &aem_get(&w, "/content/dam/demo.json"),
        json!({"deadline": deadline}),
    );
    wait_for_requests(&w, "/content/dam/demo.json", 1);
    for i in 0..20 {
        crowd.send(
            &format!("{i}"),
            &aem_get(&w, &format!("/content/dam.json?n={i}")),
            json!({}),
        );
    }
    let others = crowd.collect(20);
    assert!(!others.contains_key("doomed"), "the others were answered first");
    for (n, r) in &others {
        assert_eq!(status(r), 200, "{n}: {r}");
    }
    let (n, doomed) = crowd.next();
    assert_eq!(n, "doomed");
    assert_eq!(status(&doomed), 504, "{doomed}");
    gate.open();
}

#[test]
fn two_hundred_at_once_over_tls_fit_their_small_stacks_and_the_memory_bound() {
    // The deepest path: IMS and the API on two origins over TLS, so each activation also opens
    // the API's connection while the token is fetched. A stack too small for it would abort the
    // whole process (and every activation in flight).
    let ca = TestCa::generate(&[]).expect("a test CA");
    let emu = Emulator::start_tls_on("127.0.0.1:0", &ca).expect("emulator over TLS");
    let (params, allow) = two_origins(&emu, "https");
    let ca_file = temp_path("ca.pem");
    std::fs::write(&ca_file, ca.ca_pem()).expect("write the CA");
    let mut crowd = Crowd::start_with(&[
        ("IMS_ACTION_ALLOW_HOSTS", allow),
        ("SSL_CERT_FILE", ca_file.display().to_string()),
    ]);
    let gate = Gate::new();
    emu.inject_fault("/adobe/stats", Fault::Hold(gate.clone()), CROWD as u32);
    for i in 0..CROWD {
        crowd.send(&format!("{i}"), &params, json!({}));
    }
    wait_at(&emu, "/adobe/stats", CROWD as u64);
    let rss = rss_kib(crowd.pid());
    let (binary, limit_mib) = under_test();
    eprintln!(
        "RSS of {} with {CROWD} activations in flight over TLS: {rss} KiB",
        binary.display()
    );
    assert!(
        rss < limit_mib * 1024,
        "{rss} KiB with {CROWD} in flight over TLS"
    );
    gate.open();
    for (n, r) in crowd.collect(CROWD) {
        assert_eq!(status(&r), 200, "{n}: {r}");
    }
    assert_eq!(emu.request_count("/ims/token/v3"), 1);
    let _ = std::fs::remove_file(ca_file);
}

/// `aem-quota` params with the demo OAuth credential registered at `emu`, IMS at
/// `<scheme>://localhost:P` and the API at `<scheme>://127.0.0.1:P`: two origins, so that each
/// needs its own connections (as `ims-na1.adobelogin.com` and `api.adobeaemcloud.com` do) and a
/// cold activation opens the API's while the token is fetched. Also the allow-list for both.
fn two_origins(emu: &Emulator, scheme: &str) -> (Value, String) {
    let demo = DemoCredentials::generate();
    demo.register(emu);
    let env = ims_action::runtime::dotenv::parse(&demo.to_env(emu));
    let port = emu.host_port().rsplit_once(':').expect("host:port").1.to_string();
    let mut params = serde_json::Map::new();
    for n in OAUTH {
        params.insert(n.into(), json!(env[n]));
    }
    params.insert("OPERATION".into(), json!("aem-quota"));
    params.insert(
        "IMS_BASE_URL".into(),
        json!(format!("{scheme}://localhost:{port}")),
    );
    params.insert(
        "AEM_DATA_SERVICE_BASE_URL".into(),
        json!(format!("{scheme}://127.0.0.1:{port}")),
    );
    (
        Value::Object(params),
        format!("localhost:{port},127.0.0.1:{port}"),
    )
}

/// Waits until `emu` has accepted `count` connections.
fn wait_for_connections(emu: &Emulator, count: u64) {
    let started = Instant::now();
    while emu.connection_stats().accepted < count {
        assert!(
            started.elapsed() < PATIENCE,
            "the emulator accepted {} of {count} connections",
            emu.connection_stats().accepted
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_cold_burst_opens_one_api_connection_per_activation_and_the_next_burst_none() {
    // IMS and the API on two origins: every cold activation opens the API's connection while the
    // one token is fetched, and its API request must then go over that one. The token request is
    // held until all of them are open (one IMS connection, then one per activation), and the
    // API requests until all are in: each needs a connection of its own at once.
    let emu = Emulator::start().expect("emulator");
    let (params, allow) = two_origins(&emu, "http");
    let mut crowd = Crowd::start_with(&[("IMS_ACTION_ALLOW_HOSTS", allow)]);
    let token_gate = Gate::new();
    emu.inject_fault("/ims/token/v3", Fault::Hold(token_gate.clone()), 1);
    let api_gate = Gate::new();
    emu.inject_fault("/adobe/stats", Fault::Hold(api_gate.clone()), CROWD as u32);
    for i in 0..CROWD {
        crowd.send(&format!("a{i}"), &params, json!({}));
    }
    wait_at(&emu, "/ims/token/v3", 1);
    wait_for_connections(&emu, 1 + CROWD as u64);
    token_gate.open();
    wait_at(&emu, "/adobe/stats", CROWD as u64);
    api_gate.open();
    for (n, r) in crowd.collect(CROWD) {
        assert_eq!(status(&r), 200, "{n}: {r}");
    }
    assert_eq!(emu.request_count("/ims/token/v3"), 1);
    let opened = emu.connection_stats().accepted;
    assert_eq!(
        opened,
        1 + CROWD as u64,
        "one to IMS and one to the API per activation: each used the one it opened early"
    );

    // Right after: the token is in memory, nothing is opened early, and the pool holds every
    // connection of the first burst.
    for i in 0..CROWD {
        crowd.send(&format!("b{i}"), &params, json!({}));
    }
    for (n, r) in crowd.collect(CROWD) {
        assert_eq!(status(&r), 200, "{n}: {r}");
    }
    assert_eq!(
        emu.connection_stats().accepted,
        opened,
        "the second burst found the first one's connections open"
    );
    assert_eq!(emu.request_count("/adobe/stats"), 2 * CROWD as u64);
}
