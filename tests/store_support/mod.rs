//! Harness for the shared token store tests: a real `redis-server` per test on an ephemeral
//! port (no persistence), the `ims-action` binary started as cold one-shot and actionloop
//! containers (each its own `TMPDIR`), and a check that raw store contents hold no secret in any
//! encoding.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use serde_json::{Value, json};

use crate::common::{bin, temp_path};

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A `redis-server` of our own, killed on drop.
pub struct RedisServer {
    child: Option<Child>,
    pub port: u16,
    dir: PathBuf,
    tls: Option<PathBuf>,
    password: Option<String>,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("an ephemeral port")
}

impl RedisServer {
    /// Starts a plain server.
    pub fn start() -> RedisServer {
        Self::start_with(None, &[])
    }

    /// Starts a plain server with extra arguments (`--requirepass X`, say).
    pub fn start_args(args: &[&str]) -> RedisServer {
        Self::start_with(None, args)
    }

    /// Starts a TLS-only server with this certificate chain and key (PEM).
    pub fn start_tls(cert_pem: &str, key_pem: &str) -> RedisServer {
        Self::start_with(Some((cert_pem, key_pem)), &[])
    }

    fn start_with(tls: Option<(&str, &str)>, extra: &[&str]) -> RedisServer {
        let dir = temp_path("redis");
        std::fs::create_dir_all(&dir).expect("redis dir");
        let tls_dir = tls.map(|(cert, key)| {
            std::fs::write(dir.join("cert.pem"), cert).expect("cert");
            std::fs::write(dir.join("key.pem"), key).expect("key");
            dir.clone()
        });
        // The port is free when chosen; another process may take it before redis binds: retry.
        for _ in 0..5 {
            let port = free_port();
            let mut cmd = Command::new("redis-server");
            let port_args: Vec<String> = match &tls_dir {
                None => vec!["--port".into(), port.to_string()],
                Some(d) => vec![
                    "--port".into(),
                    "0".into(),
                    "--tls-port".into(),
                    port.to_string(),
                    "--tls-cert-file".into(),
                    d.join("cert.pem").to_string_lossy().into_owned(),
                    "--tls-key-file".into(),
                    d.join("key.pem").to_string_lossy().into_owned(),
                    "--tls-auth-clients".into(),
                    "no".into(),
                ],
            };
            cmd.args(&port_args)
                .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
                .args(["--logfile", "", "--daemonize", "no"])
                .arg("--dir")
                .arg(&dir)
                .args(extra)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::null());
            let mut child = cmd.spawn().unwrap_or_else(|e| {
                panic!("redis-server does not start ({e}): install it (apt-get install redis-server; .ci/run does)")
            });
            let stdout = child.stdout.take().expect("redis stdout");
            let (tx, rx) = channel();
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    if line.contains("Ready to accept connections") {
                        let _ = tx.send(true);
                    }
                }
                let _ = tx.send(false);
            });
            if rx.recv_timeout(Duration::from_secs(20)) == Ok(true) {
                let password = extra
                    .iter()
                    .position(|a| *a == "--requirepass")
                    .and_then(|i| extra.get(i + 1))
                    .map(|p| p.to_string());
                return RedisServer {
                    child: Some(child),
                    port,
                    dir,
                    tls: tls_dir,
                    password,
                };
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("redis-server did not become ready");
    }

    pub fn url(&self) -> String {
        match self.tls {
            None => format!("redis://127.0.0.1:{}", self.port),
            Some(_) => format!("rediss://localhost:{}", self.port),
        }
    }

    /// Kills the server at once (SIGKILL), as a crash or a network partition would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// `redis-cli` against this server.
    pub fn cli(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new("redis-cli");
        cmd.args(["-h", "127.0.0.1", "-p", &self.port.to_string()]);
        if let Some(d) = &self.tls {
            cmd.arg("--tls").arg("--cacert").arg(d.join("cert.pem"));
            cmd.args(["--sni", "localhost"]);
        }
        if let Some(p) = &self.password {
            cmd.args(["--no-auth-warning", "-a", p]);
        }
        cmd.arg("--raw").args(args).output().expect("redis-cli runs")
    }

    /// Every key and its raw value, read with `redis-cli` (what any client of this Redis sees).
    pub fn dump(&self) -> Vec<(String, Vec<u8>)> {
        let keys = self.cli(&["KEYS", "*"]);
        let mut keys: Vec<String> = String::from_utf8_lossy(&keys.stdout)
            .lines()
            .filter(|k| !k.is_empty())
            .map(str::to_string)
            .collect();
        keys.sort();
        keys.into_iter()
            .map(|k| {
                let mut v = self.cli(&["GET", &k]).stdout;
                if v.last() == Some(&b'\n') {
                    v.pop();
                }
                (k, v)
            })
            .collect()
    }

    /// Writes a raw value under `key`, keeping no TTL.
    pub fn set_raw(&self, key: &str, value: &[u8]) {
        let out = self.cli(&["SET", key, &String::from_utf8_lossy(value)]);
        assert!(out.status.success(), "redis-cli SET failed");
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Every way a secret could be written down that we look for: as is, base64 (standard and
/// URL-safe, at each of the three alignments), hex in both cases.
pub fn encodings(secret: &str) -> Vec<Vec<u8>> {
    let bytes = secret.as_bytes();
    let mut out = vec![bytes.to_vec()];
    for engine in [
        base64::engine::general_purpose::STANDARD,
        base64::engine::general_purpose::URL_SAFE,
    ] {
        for skip in 0..3.min(bytes.len()) {
            let enc = engine.encode(&bytes[skip..]);
            // The last group depends on what follows; the rest is what any encoder writes.
            let stable = &enc[..enc.len().saturating_sub(4)];
            if stable.len() >= 8 {
                out.push(stable.as_bytes().to_vec());
            }
        }
    }
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    out.push(hex.as_bytes().to_vec());
    out.push(hex.to_uppercase().into_bytes());
    out
}

/// Panics when `haystack` holds any of `secrets` in any of [`encodings`].
pub fn assert_no_secret(what: &str, haystack: &[u8], secrets: &[(&str, &str)]) {
    for (name, secret) in secrets {
        assert!(secret.len() >= 8, "{name} is too short to look for");
        for form in encodings(secret) {
            assert!(
                !haystack.windows(form.len()).any(|w| w == form.as_slice()),
                "{what} holds {name} (as {})",
                String::from_utf8_lossy(&form)
            );
        }
    }
}

/// A cold one-shot container: its own `TMPDIR`, the activation's `__OW_*` values, and `extra`.
pub struct OneShot {
    pub tmp: PathBuf,
}

impl OneShot {
    pub fn new() -> OneShot {
        let tmp = temp_path("oneshot");
        std::fs::create_dir_all(&tmp).expect("tmpdir");
        OneShot { tmp }
    }

    /// Starts the binary with `params` as argv[1]; collect with [`finish`].
    pub fn spawn(&self, params: &Value, deadline_ms: u64, extra: &[(&str, String)]) -> Child {
        Command::new("/bin/sh")
            .arg("-c")
            .arg("exec \"$0\" \"$@\" 3>&-")
            .arg(bin())
            .arg(params.to_string())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("TMPDIR", &self.tmp)
            .env("__OW_ACTION_NAME", "/ns/pkg/a")
            .env("__OW_ACTIVATION_ID", "one-shot")
            .env("__OW_DEADLINE", deadline_ms.to_string())
            .envs(extra.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("ims-action starts")
    }
}

impl Drop for OneShot {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.tmp);
    }
}

/// The result (last stdout line) and the logs of a finished one-shot process.
pub fn finish(child: Child) -> (Value, String) {
    let out = child.wait_with_output().expect("ims-action ends");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().last().unwrap_or("");
    let result = serde_json::from_str(line).unwrap_or_else(|_| json!({ "unparsable": line }));
    (result, String::from_utf8_lossy(&out.stderr).into_owned())
}

/// An actionloop container: the binary with fd 3 as its result pipe, as the proxy runs it.
pub struct ActionLoop {
    child: Child,
    stdin: Option<ChildStdin>,
    results: Receiver<String>,
    logs: PathBuf,
}

impl ActionLoop {
    pub fn start(env: &[(&str, String)]) -> ActionLoop {
        Self::start_with_limit(env, None)
    }

    /// The same, with the process's address space limited to `bytes` (`prlimit --as`), as an
    /// action container's memory limit does: an allocation beyond it aborts the process.
    pub fn start_limited(env: &[(&str, String)], bytes: u64) -> ActionLoop {
        Self::start_with_limit(env, Some(bytes))
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    fn start_with_limit(env: &[(&str, String)], limit: Option<u64>) -> ActionLoop {
        let logs = temp_path("actionloop-logs");
        let log_file = std::fs::File::create(&logs).expect("log file");
        let mut cmd = Command::new("/bin/sh");
        cmd.arg("-c")
            .arg(r#"exec /usr/bin/env -i "$@" 3>&1 1>&2"#)
            .arg("sh");
        for (k, v) in env {
            cmd.arg(format!("{k}={v}"));
        }
        if let Some(bytes) = limit {
            cmd.arg("/usr/bin/prlimit").arg(format!("--as={bytes}")).arg("--");
        }
        let mut child = cmd
            .arg(bin())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log_file))
            .spawn()
            .expect("ims-action starts");
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("result pipe");
        let (tx, results) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        ActionLoop {
            child,
            stdin,
            results,
            logs,
        }
    }

    /// Sends one activation line.
    pub fn send(&mut self, params: &Value, id: &str, extra: &Value) {
        let mut line = json!({
            "value": params,
            "namespace": "ns",
            "action_name": "/ns/pkg/a",
            "activation_id": id,
            "transaction_id": format!("tx-{id}"),
            "deadline": (now_ms() + 60_000).to_string(),
        });
        if let (Value::Object(l), Value::Object(e)) = (&mut line, extra) {
            l.extend(e.clone());
        }
        let stdin = self.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "{line}").expect("write activation");
        stdin.flush().expect("flush");
    }

    /// The next result, parsed.
    pub fn reply(&self) -> Value {
        let line = self
            .results
            .recv_timeout(Duration::from_secs(60))
            .expect("a reply on fd 3");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("fd 3 line is not JSON ({e}): {line}"))
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.logs).unwrap_or_default()
    }

    pub fn log_path(&self) -> &Path {
        &self.logs
    }
}

impl Drop for ActionLoop {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.logs);
    }
}
