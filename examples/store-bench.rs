//! Measures the shared token store (issue 12), for `make bench`'s token store section. Prints one
//! JSON document on stdout; progress on stderr.
//!
//! ```text
//! make build   # dist/ims-action, the binary measured
//! cargo run --release --example store-bench -- [--bin dist/ims-action] [--containers 20]
//!     [--activations 100] [--ims-latency-ms 300] [--state-latency-ms 20] [--samples 30]
//! ```
//!
//! - `cold_burst`: IMS token requests when N cold containers start together, per store:
//!   one-shot (N processes, each its own `TMPDIR`) and actionloop (N processes, `--activations`
//!   each, the first of every container sent at once). IMS answers after `--ims-latency-ms`, so
//!   that the containers really overlap the first fetch.
//! - `warm_hit`: the cost of each store on a warm hit. In one-shot mode every activation is a new
//!   process, so the store is read each time: the wall time of one process whose token is in
//!   the store (a fresh `TMPDIR`) against one whose token is in its own file (the same
//!   `TMPDIR`). In actionloop mode a warm container answers from memory: store requests per
//!   warm activation are counted.
//!
//! - `failing_store`: what a store that is down (connection refused), hung (accepts, never
//!   answers) or failing (State answering 503) adds to a one-shot activation that must fetch
//!   its token anyway (a cold `TMPDIR`), against no store at all. The bound is 200 ms.
//!
//! Stores: `memory` (none shared), `redis` (a `redis-server` of its own on loopback, when one is
//! installed) and `adobe-state` (the emulator's, optionally with `--state-latency-ms` added to
//! every State request to stand in for a network round trip).

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use adobe_emulator::{DemoCredentials, Emulator, Fault};
use serde_json::{Map, Value, json};

const NS: &str = "12345-storebench-stage";
const API_KEY: &str =
    "0b7f4d8e-3c1a-4c55-9a0e-5f2b6d7c8e9f:store-bench-namespace-key-0123456789abcdef0123456789";

struct Options {
    bin: PathBuf,
    containers: usize,
    activations: usize,
    ims_latency: Duration,
    state_latency: Duration,
    samples: usize,
}

fn options() -> Result<Options, String> {
    let default_bin = ["dist/ims-action", "target/release/ims-action"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from("dist/ims-action"));
    let mut o = Options {
        bin: default_bin,
        containers: 20,
        activations: 100,
        ims_latency: Duration::from_millis(300),
        state_latency: Duration::from_millis(20),
        samples: 30,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("{flag} needs a value"));
        let number = |v: String| {
            v.parse::<u64>()
                .map_err(|_| format!("{flag} needs a whole number"))
        };
        match flag.as_str() {
            "--bin" => o.bin = PathBuf::from(value()?),
            "--containers" => o.containers = number(value()?)?.max(1) as usize,
            "--activations" => o.activations = number(value()?)?.max(1) as usize,
            "--ims-latency-ms" => o.ims_latency = Duration::from_millis(number(value()?)?),
            "--state-latency-ms" => o.state_latency = Duration::from_millis(number(value()?)?),
            "--samples" => o.samples = number(value()?)?.max(1) as usize,
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if !o.bin.exists() {
        return Err(format!(
            "{} does not exist: run `make build` first, or give --bin",
            o.bin.display()
        ));
    }
    Ok(o)
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn temp_dir(what: &str) -> PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    let p = std::env::temp_dir().join(format!(
        "ims-action-store-bench-{}-{}-{what}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::create_dir_all(&p);
    p
}

/// A store to measure: its name, the `IMS_ACTION_TOKEN_STORE` value, and extra environment.
#[derive(Clone)]
struct Store {
    name: String,
    setting: Option<String>,
    env: Vec<(String, String)>,
    state_latency: Option<Duration>,
}

/// A `redis-server` of our own, no persistence, killed on drop.
struct Redis {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl Redis {
    fn start() -> Option<Redis> {
        let dir = temp_dir("redis");
        let port = TcpListener::bind("127.0.0.1:0").ok()?.local_addr().ok()?.port();
        let mut child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .args(["--logfile", "", "--daemonize", "no"])
            .arg("--dir")
            .arg(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let stdout = child.stdout.take()?;
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.contains("Ready to accept connections") {
                    let _ = tx.send(());
                }
            }
        });
        rx.recv_timeout(Duration::from_secs(20)).ok()?;
        Some(Redis { child, port, dir })
    }

    /// Commands the server has run so far (`INFO commandstats`).
    fn commands(&self) -> u64 {
        let out = Command::new("redis-cli")
            .args(["-p", &self.port.to_string(), "INFO", "commandstats"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        out.lines()
            .filter(|l| {
                l.starts_with("cmdstat_")
                    && !l.starts_with("cmdstat_info")
                    && !l.starts_with("cmdstat_flushall")
            })
            .filter_map(|l| l.split("calls=").nth(1)?.split(',').next()?.parse::<u64>().ok())
            .sum()
    }

    fn flush(&self) {
        let _ = Command::new("redis-cli")
            .args(["-p", &self.port.to_string(), "FLUSHALL"])
            .output();
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A fresh emulator with the demo credentials and the State namespace; the OAuth params.
fn world(demo: &DemoCredentials, store: &Store) -> (Emulator, Value) {
    let emu = Emulator::start().expect("the emulator starts");
    demo.register(&emu);
    emu.add_state_namespace(NS, API_KEY);
    if let Some(latency) = store.state_latency.filter(|l| !l.is_zero()) {
        emu.inject_fault("/containers", Fault::Delay(latency), u32::MAX);
    }
    let env = ims_action::runtime::dotenv::parse(&demo.to_env(&emu));
    let mut params = Map::new();
    for k in [
        "OAUTHS2S_CLIENT_ID",
        "OAUTHS2S_CLIENT_SECRET",
        "OAUTHS2S_CECREDENTIALS_METASCOPES",
        "IMS_ORG_ID",
        "IMS_BASE_URL",
        "AEM_DATA_SERVICE_BASE_URL",
    ] {
        params.insert(k.into(), Value::String(env[k].clone()));
    }
    (emu, Value::Object(params))
}

fn base_env(emu: &Emulator, store: &Store) -> Vec<(String, String)> {
    let mut env = vec![
        ("PATH".to_string(), std::env::var("PATH").unwrap_or_default()),
        ("IMS_ACTION_ALLOW_HOSTS".to_string(), emu.host_port()),
        ("AIO_STATE_ENDPOINT".to_string(), emu.base_url()),
        ("__OW_NAMESPACE".to_string(), NS.to_string()),
        ("__OW_API_KEY".to_string(), API_KEY.to_string()),
        ("__OW_ACTION_NAME".to_string(), "/ns/pkg/a".to_string()),
        ("RUST_LOG".to_string(), "error".to_string()),
    ];
    if let Some(s) = &store.setting {
        env.push(("IMS_ACTION_TOKEN_STORE".into(), s.clone()));
    }
    env.extend(store.env.iter().cloned());
    env
}

fn one_shot(o: &Options, env: &[(String, String)], tmp: &Path, params: &Value) -> Child {
    Command::new("/bin/sh")
        .arg("-c")
        .arg("exec \"$0\" \"$@\" 3>&-")
        .arg(&o.bin)
        .arg(params.to_string())
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("TMPDIR", tmp)
        .env("__OW_DEADLINE", (now_ms() + 60_000).to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("ims-action starts")
}

fn succeeded(child: Child) -> bool {
    child
        .wait_with_output()
        .map(|out| {
            let stdout = String::from_utf8_lossy(&out.stdout);
            let last = stdout.lines().last().unwrap_or("");
            serde_json::from_str::<Value>(last)
                .map(|v| v["statusCode"] == 200)
                .unwrap_or(false)
        })
        .unwrap_or(false)
}

struct ActionLoop {
    child: Child,
    stdin: ChildStdin,
    results: Receiver<String>,
}

impl ActionLoop {
    fn start(o: &Options, env: &[(String, String)]) -> ActionLoop {
        let mut cmd = Command::new("/bin/sh");
        cmd.arg("-c")
            .arg(r#"exec /usr/bin/env -i "$@" 3>&1 1>&2"#)
            .arg("sh");
        for (k, v) in env {
            cmd.arg(format!("{k}={v}"));
        }
        let mut child = cmd
            .arg(&o.bin)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("ims-action starts");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = child.stdout.take().expect("fd 3");
        let (tx, results) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        ActionLoop {
            child,
            stdin,
            results,
        }
    }

    fn send(&mut self, params: &Value, id: usize) {
        let line = json!({
            "value": params, "namespace": NS, "api_key": API_KEY, "action_name": "/ns/pkg/a",
            "activation_id": format!("a{id}"), "deadline": (now_ms() + 60_000).to_string(),
        });
        let _ = writeln!(self.stdin, "{line}");
        let _ = self.stdin.flush();
    }

    fn ok(&self) -> bool {
        self.results
            .recv_timeout(Duration::from_secs(60))
            .ok()
            .and_then(|l| serde_json::from_str::<Value>(&l).ok())
            .is_some_and(|v| v["statusCode"] == 200)
    }
}

impl Drop for ActionLoop {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Requests the store has served so far: the emulator's State requests, or Redis commands.
fn store_requests(emu: &Emulator, redis: Option<&Redis>, store: &Store) -> u64 {
    match (store.name.as_str(), redis) {
        ("redis", Some(r)) => r.commands(),
        _ => emu.request_count("/containers"),
    }
}

fn cold_burst(o: &Options, demo: &DemoCredentials, store: &Store, redis: Option<&Redis>) -> Value {
    let client = demo.oauth.client_id.clone();
    // One-shot: N cold containers started together.
    let (emu, params) = world(demo, store);
    emu.inject_fault("/ims", Fault::Delay(o.ims_latency), o.containers as u32);
    let env = base_env(&emu, store);
    let before = store_requests(&emu, redis, store);
    let dirs: Vec<PathBuf> = (0..o.containers).map(|_| temp_dir("cold")).collect();
    let started = Instant::now();
    let children: Vec<Child> = dirs.iter().map(|d| one_shot(o, &env, d, &params)).collect();
    let ok = children.into_iter().map(succeeded).filter(|s| *s).count();
    let one_shot_ms = started.elapsed().as_secs_f64() * 1000.0;
    let one_shot = json!({
        "containers": o.containers, "ok": ok, "token_requests": emu.tokens_issued(&client),
        "store_requests": store_requests(&emu, redis, store) - before, "wall_ms": round(one_shot_ms),
    });
    for d in dirs {
        let _ = std::fs::remove_dir_all(d);
    }
    drop(emu);

    // Actionloop: N containers, the first activation of each at once, then the rest.
    let (emu, params) = world(demo, store);
    emu.inject_fault("/ims", Fault::Delay(o.ims_latency), o.containers as u32);
    let env = base_env(&emu, store);
    let before = store_requests(&emu, redis, store);
    let mut loops: Vec<ActionLoop> = (0..o.containers).map(|_| ActionLoop::start(o, &env)).collect();
    for (i, l) in loops.iter_mut().enumerate() {
        l.send(&params, i);
    }
    let mut ok = loops.iter().filter(|l| l.ok()).count();
    let store_after_cold = store_requests(&emu, redis, store);
    for l in loops.iter_mut() {
        for n in 1..o.activations {
            l.send(&params, n);
        }
    }
    for l in &loops {
        ok += (1..o.activations).filter(|_| l.ok()).count();
    }
    let warm = (o.containers * (o.activations - 1)) as f64;
    json!({
        "actionloop": {
            "containers": o.containers, "activations": o.containers * o.activations, "ok": ok,
            "token_requests": emu.tokens_issued(&client),
            "store_requests_cold": store_after_cold - before,
            "store_requests_per_warm_activation":
                (store_requests(&emu, redis, store) - store_after_cold) as f64 / warm,
        },
        "one_shot": one_shot,
    })
}

fn round(ms: f64) -> f64 {
    (ms * 100.0).round() / 100.0
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    round(sorted[i.min(sorted.len() - 1)])
}

/// One-shot processes with the token already in the store (fresh TMPDIR each) or in their own
/// file (one TMPDIR): median and p90 wall time.
fn warm_hit(o: &Options, demo: &DemoCredentials, store: &Store, redis: Option<&Redis>) -> Value {
    let (emu, params) = world(demo, store);
    let env = base_env(&emu, store);
    let before = store_requests(&emu, redis, store);
    let home = temp_dir("warm");
    // Prime the store (and this TMPDIR's file).
    if !succeeded(one_shot(o, &env, &home, &params)) {
        return json!({"error": "the priming activation failed"});
    }
    let mut times = Vec::new();
    for _ in 0..o.samples {
        let tmp = if store.setting.is_some() {
            temp_dir("hit")
        } else {
            home.clone()
        };
        let started = Instant::now();
        let ok = succeeded(one_shot(o, &env, &tmp, &params));
        times.push(started.elapsed().as_secs_f64() * 1000.0);
        if tmp != home {
            let _ = std::fs::remove_dir_all(&tmp);
        }
        if !ok {
            return json!({"error": "an activation failed"});
        }
    }
    times.sort_by(f64::total_cmp);
    let _ = std::fs::remove_dir_all(&home);
    json!({
        "from": if store.setting.is_some() { "the shared store (cold TMPDIR)" } else { "the container's own file" },
        "samples": o.samples, "median_ms": percentile(&times, 0.5), "p90_ms": percentile(&times, 0.9),
        "token_requests": emu.tokens_issued(&demo.oauth.client_id),
        "store_requests_per_activation":
            (store_requests(&emu, redis, store) - before) as f64 / (o.samples + 1) as f64,
    })
}

/// Cold one-shot activations (each must fetch from IMS) with a store that fails.
fn failing(o: &Options, demo: &DemoCredentials) -> Value {
    let samples = o.samples.min(15);
    let closed_port = TcpListener::bind("127.0.0.1:0")
        .ok()
        .and_then(|l| l.local_addr().ok())
        .map(|a| a.port())
        .unwrap_or(1);
    let hole = TcpListener::bind("127.0.0.1:0").expect("a listener");
    let hole_addr = hole.local_addr().expect("its address");
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in hole.incoming() {
            held.push(s);
        }
    });
    let cases: Vec<(&str, Option<String>, Option<Fault>)> = vec![
        ("none", None, None),
        (
            "redis refused",
            Some(format!("redis://127.0.0.1:{closed_port}")),
            None,
        ),
        ("redis hung", Some(format!("redis://{hole_addr}")), None),
        (
            "adobe-state 503",
            Some("adobe-state".into()),
            Some(Fault::Status {
                status: 503,
                retry_after: None,
                body: None,
            }),
        ),
        (
            "adobe-state hung",
            Some("adobe-state".into()),
            Some(Fault::Delay(Duration::from_secs(5))),
        ),
    ];
    let mut out = Map::new();
    let mut baseline = None;
    for (name, setting, fault) in cases {
        let store = Store {
            name: name.into(),
            setting,
            env: vec![],
            state_latency: None,
        };
        let (emu, params) = world(demo, &store);
        if let Some(f) = fault {
            emu.inject_fault("/containers", f, u32::MAX);
        }
        let env = base_env(&emu, &store);
        let mut times = Vec::new();
        let mut ok = 0;
        for _ in 0..samples {
            let tmp = temp_dir("failing");
            let started = Instant::now();
            ok += usize::from(succeeded(one_shot(o, &env, &tmp, &params)));
            times.push(started.elapsed().as_secs_f64() * 1000.0);
            let _ = std::fs::remove_dir_all(&tmp);
        }
        times.sort_by(f64::total_cmp);
        let median = percentile(&times, 0.5);
        let base = *baseline.get_or_insert(median);
        out.insert(
            name.into(),
            json!({
                "samples": samples, "ok": ok, "median_ms": median, "p90_ms": percentile(&times, 0.9),
                "max_ms": percentile(&times, 1.0), "added_median_ms": round(median - base),
                "token_requests": emu.tokens_issued(&demo.oauth.client_id),
            }),
        );
    }
    Value::Object(out)
}

fn main() {
    let o = match options() {
        Ok(o) => o,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("store-bench: {e}");
            }
            eprintln!(
                "usage: store-bench [--bin PATH] [--containers N] [--activations M] \
                 [--ims-latency-ms MS] [--state-latency-ms MS] [--samples K]"
            );
            std::process::exit(2);
        }
    };
    eprintln!("store-bench: generating demo credentials");
    let demo = DemoCredentials::generate();
    let redis = Redis::start();
    let mut stores = vec![Store {
        name: "memory".into(),
        setting: None,
        env: vec![],
        state_latency: None,
    }];
    match &redis {
        Some(r) => stores.push(Store {
            name: "redis".into(),
            setting: Some(format!("redis://127.0.0.1:{}", r.port)),
            env: vec![],
            state_latency: None,
        }),
        None => eprintln!("store-bench: redis-server is not installed; no Redis figures"),
    }
    stores.push(Store {
        name: "adobe-state".into(),
        setting: Some("adobe-state".into()),
        env: vec![],
        state_latency: None,
    });
    if !o.state_latency.is_zero() {
        stores.push(Store {
            name: format!("adobe-state+{}ms", o.state_latency.as_millis()),
            setting: Some("adobe-state".into()),
            env: vec![],
            state_latency: Some(o.state_latency),
        });
    }
    let mut cold = Map::new();
    let mut warm = Map::new();
    for store in &stores {
        eprintln!("store-bench: {}: cold burst", store.name);
        if let Some(r) = &redis {
            r.flush();
        }
        cold.insert(store.name.clone(), cold_burst(&o, &demo, store, redis.as_ref()));
        eprintln!("store-bench: {}: warm hits", store.name);
        if let Some(r) = &redis {
            r.flush();
        }
        warm.insert(store.name.clone(), warm_hit(&o, &demo, store, redis.as_ref()));
    }
    eprintln!("store-bench: failing stores");
    let failing = failing(&o, &demo);
    let report = json!({
        "binary": o.bin.display().to_string(),
        "ims_latency_ms": o.ims_latency.as_millis() as u64,
        "state_latency_ms": o.state_latency.as_millis() as u64,
        "cold_burst": cold,
        "warm_hit_one_shot": warm,
        "failing_store": failing,
    });
    println!("{}", serde_json::to_string_pretty(&report).unwrap_or_default());
}
