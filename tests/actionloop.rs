//! The actionloop runtime, end to end: the `ims-action` binary driven exactly as the OpenWhisk
//! actionloop proxy drives it (no arguments, results on fd 3, logs on stdout/stderr, an
//! environment made only of `__OW_*` values plus the host allowlist), against the emulator.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::*;
use serde_json::{Value, json};

/// How long one activation may take before the test gives up on it.
const REPLY_TIMEOUT: Duration = Duration::from_secs(60);

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// One actionloop process, started as the proxy starts it: `env -i` leaves only the given
/// variables, fd 3 is our stdout pipe (the results) and the binary's own stdout joins its
/// stderr on our stderr pipe (the logs).
struct ActionLoop {
    child: Child,
    stdin: Option<ChildStdin>,
    results: Receiver<String>,
    logs: Arc<Mutex<Vec<u8>>>,
    log_reader: Option<JoinHandle<()>>,
}

impl ActionLoop {
    fn start(env: &[(&str, String)]) -> ActionLoop {
        let mut cmd = Command::new("/bin/sh");
        cmd.arg("-c")
            .arg(r#"exec /usr/bin/env -i "$@" 3>&1 1>&2"#)
            .arg("sh");
        for (k, v) in env {
            cmd.arg(format!("{k}={v}"));
        }
        cmd.arg(bin())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("ims-action starts");
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("result pipe");
        let mut stderr = child.stderr.take().expect("log pipe");
        let (tx, results) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let logs = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&logs);
        let log_reader = std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            loop {
                match stderr.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => sink.lock().unwrap().extend_from_slice(&buf[..n]),
                }
            }
        });
        ActionLoop {
            child,
            stdin,
            results,
            logs,
            log_reader: Some(log_reader),
        }
    }

    /// The environment the proxy gives: `__OW_*` values and the allowlist, nothing else.
    fn proxy_env(w: &World) -> Vec<(&'static str, String)> {
        vec![
            ("__OW_PROXY_VERSION", "1.17.1".into()),
            ("__OW_NAMESPACE", "ns".into()),
            ("__OW_ACTION_NAME", "/ns/pkg/a".into()),
            ("__OW_ACTION_VERSION", "0.0.1".into()),
            ("__OW_ACTIVATION_ID", "cold-start".into()),
            ("__OW_TRANSACTION_ID", "tx-cold-start".into()),
            ("__OW_DEADLINE", (now_ms() + 60_000).to_string()),
            ("IMS_ACTION_ALLOW_HOSTS", w.emu.host_port()),
        ]
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn send_raw(&mut self, bytes: &[u8]) {
        let stdin = self.stdin.as_mut().expect("stdin still open");
        stdin.write_all(bytes).expect("write activation");
        stdin.flush().expect("flush activation");
    }

    fn send(&mut self, params: &Value, id: &str, deadline: Value) {
        let mut line = activation_line(params, id, deadline).into_bytes();
        line.push(b'\n');
        self.send_raw(&line);
    }

    /// The next line on fd 3, or `None` when none comes within `timeout`.
    fn next_line(&self, timeout: Duration) -> Option<String> {
        self.results.recv_timeout(timeout).ok()
    }

    /// The next fd-3 line, parsed; panics when none comes or it is not JSON.
    fn reply(&self) -> Value {
        let line = self.next_line(REPLY_TIMEOUT).expect("a reply on fd 3");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("fd 3 line is not JSON ({e}): {line}"))
    }

    /// One activation with a deadline a minute away (as a string, like the invoker sends it).
    fn call(&mut self, params: &Value, id: &str) -> Value {
        self.send(params, id, json!((now_ms() + 60_000).to_string()));
        self.reply()
    }

    fn is_running(&mut self) -> bool {
        self.child.try_wait().expect("try_wait").is_none()
    }

    fn logs(&self) -> String {
        String::from_utf8_lossy(&self.logs.lock().unwrap()).into_owned()
    }

    /// Closes stdin (EOF) and waits for the exit; returns the status, every fd-3 line written
    /// after the last one read, and the logs.
    fn finish(mut self) -> (ExitStatus, Vec<String>, String) {
        drop(self.stdin.take());
        let started = Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                break status;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the process did not exit after EOF on stdin"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut rest = Vec::new();
        while let Some(line) = self.next_line(Duration::from_secs(5)) {
            rest.push(line);
        }
        if let Some(reader) = self.log_reader.take() {
            let _ = reader.join();
        }
        let logs = self.logs();
        (status, rest, logs)
    }
}

impl Drop for ActionLoop {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// An activation line as the proxy writes it.
fn activation_line(params: &Value, id: &str, deadline: Value) -> String {
    json!({
        "value": params,
        "namespace": "ns",
        "action_name": "/ns/pkg/a",
        "activation_id": id,
        "transaction_id": format!("tx-{id}"),
        "deadline": deadline,
    })
    .to_string()
}

/// The executable of a process (a concurrent `cargo build` may have replaced the file since).
fn exe_of(pid: u32) -> Option<String> {
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).ok()?;
    let exe = exe.to_string_lossy();
    Some(exe.strip_suffix(" (deleted)").unwrap_or(&exe).to_string())
}

fn exe_of_bin() -> Option<String> {
    std::fs::canonicalize(bin())
        .ok()
        .map(|p| p.to_string_lossy().into_owned())
}

fn aem_get(w: &World, path: &str) -> Value {
    with(w.oauth(), json!({"OPERATION": "aem-get", "AEM_PATH": path}))
}

#[test]
fn the_process_runs_with_the_proxys_environment_and_no_arguments() {
    let w = World::new();
    let mut al = ActionLoop::start(&ActionLoop::proxy_env(&w));
    let r = al.call(&w.oauth(), "a1");
    assert_eq!(status(&r), 200, "{r}");
    let pid = al.pid();
    assert_eq!(exe_of(pid), exe_of_bin());
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    assert_eq!(
        cmdline.iter().filter(|b| **b == 0).count(),
        1,
        "argv is argv[0] only"
    );
    let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    let names: Vec<String> = environ
        .split(|b| *b == 0)
        .filter(|v| !v.is_empty())
        .map(|v| {
            String::from_utf8_lossy(v)
                .split('=')
                .next()
                .unwrap_or("")
                .to_string()
        })
        .collect();
    assert!(
        names
            .iter()
            .all(|n| n.starts_with("__OW_") || n == "IMS_ACTION_ALLOW_HOSTS"),
        "{names:?}"
    );
    assert!(!names.iter().any(|n| n == "PATH" || n == "HOME"), "{names:?}");
    let (code, rest, _) = al.finish();
    assert!(code.success());
    assert!(rest.is_empty(), "{rest:?}");
}

#[test]
fn the_ack_comes_first_when_asked_for() {
    let w = World::new();
    let mut env = ActionLoop::proxy_env(&w);
    env.push(("__OW_WAIT_FOR_ACK", "1".into()));
    let mut al = ActionLoop::start(&env);
    // The ack is written at start, before any activation is sent.
    let ack = al.next_line(REPLY_TIMEOUT).expect("an ack");
    assert_eq!(serde_json::from_str::<Value>(&ack).unwrap(), json!({"ok": true}));
    let r = al.call(&w.oauth(), "a1");
    assert_eq!(status(&r), 200, "{r}");
    let r = al.call(&w.oauth(), "a2");
    assert_eq!(status(&r), 200, "{r}");
    let (code, rest, _) = al.finish();
    assert!(code.success());
    assert!(rest.is_empty(), "{rest:?}");
}

#[test]
fn no_ack_unless_asked_for() {
    for ack in [None, Some("")] {
        let w = World::new();
        let mut env = ActionLoop::proxy_env(&w);
        if let Some(v) = ack {
            env.push(("__OW_WAIT_FOR_ACK", v.into()));
        }
        let mut al = ActionLoop::start(&env);
        // Nothing on fd 3 before the first activation...
        assert_eq!(al.next_line(Duration::from_millis(500)), None, "ack={ack:?}");
        // ...and the first line after it is that activation's result.
        let r = al.call(&w.oauth(), "a1");
        assert_eq!(status(&r), 200, "ack={ack:?}: {r}");
        assert!(r.get("ok").is_none(), "{r}");
        let (code, rest, _) = al.finish();
        assert!(code.success());
        assert!(rest.is_empty(), "{rest:?}");
    }
}

#[test]
fn many_activations_one_process_each_its_own_answer() {
    let w = World::new();
    let mut al = ActionLoop::start(&ActionLoop::proxy_env(&w));
    let pid = al.pid();
    let exe = || exe_of(pid);
    for i in 0..12 {
        let id = format!("act-{i}");
        match i % 4 {
            0 => {
                let r = al.call(&w.oauth(), &id);
                assert_eq!(status(&r), 200, "{r}");
                assert_eq!(r["body"]["filters"]["imsOrgId"], w.env["IMS_ORG_ID"].as_str());
            }
            1 => {
                let r = al.call(&aem_get(&w, "/content/dam/demo.json"), &id);
                assert_eq!(status(&r), 200, "{r}");
                assert_eq!(r["body"]["jcr:title"], "Demo", "{r}");
            }
            2 => {
                let r = al.call(&without(w.oauth(), &["OAUTHS2S_CLIENT_SECRET"]), &id);
                assert_eq!(status(&r), 400, "{r}");
                assert!(message(&r).contains("OAUTHS2S_CLIENT_SECRET"), "{r}");
            }
            _ => {
                let r = al.call(&aem_get(&w, "/content/dam/nothing-here.json"), &id);
                assert_eq!(status(&r), 404, "{r}");
            }
        }
        assert!(al.is_running(), "the process must live on after activation {i}");
        assert_eq!(exe(), exe_of_bin(), "same pid, same binary");
    }
    assert_eq!(al.pid(), pid);
    assert_eq!(w.emu.tokens_issued(&w.env["OAUTHS2S_CLIENT_ID"]), 1);
    let (code, rest, _) = al.finish();
    assert!(code.success());
    assert!(rest.is_empty(), "{rest:?}");
}

#[test]
fn a_stale_startup_environment_does_not_touch_later_activations() {
    let w = World::new();
    let mut env: Vec<(&str, String)> = ActionLoop::proxy_env(&w)
        .into_iter()
        .filter(|(k, _)| !matches!(*k, "__OW_DEADLINE" | "__OW_ACTIVATION_ID"))
        .collect();
    // The cold-start activation's values, long past.
    env.push(("__OW_DEADLINE", (now_ms() - 60_000).to_string()));
    env.push(("__OW_ACTIVATION_ID", "stale".into()));
    let mut al = ActionLoop::start(&env);
    // Deadline as a string (what the invoker sends)...
    al.send(&w.oauth(), "fresh-1", json!((now_ms() + 30_000).to_string()));
    let r = al.reply();
    assert_eq!(status(&r), 200, "{r}");
    // ...as a number (what the docs say)...
    al.send(
        &aem_get(&w, "/content/dam.json"),
        "fresh-2",
        json!(now_ms() + 30_000),
    );
    let r = al.reply();
    assert_eq!(status(&r), 200, "{r}");
    // ...and absent: no deadline, not the stale one.
    let mut line = serde_json::to_vec(&json!({"value": w.oauth(), "activation_id": "fresh-3"})).unwrap();
    line.push(b'\n');
    al.send_raw(&line);
    let r = al.reply();
    assert_eq!(status(&r), 200, "{r}");
    // A deadline on the line that *is* past is honoured: 504 without calling anyone.
    let before = w.emu.request_count("/");
    al.send(&aem_get(&w, "/content/dam.json"), "late", json!(now_ms() - 1_000));
    let r = al.reply();
    assert_eq!(status(&r), 504, "{r}");
    assert_eq!(w.emu.request_count("/"), before);
    let (code, rest, _) = al.finish();
    assert!(code.success());
    assert!(rest.is_empty(), "{rest:?}");
}

#[test]
fn malformed_lines_get_error_replies_and_the_loop_goes_on() {
    let w = World::new();
    let mut al = ActionLoop::start(&ActionLoop::proxy_env(&w));
    let pid = al.pid();
    let bad: [&[u8]; 5] = [
        b"not json\n",
        b"[1]\n",
        b"{}\n",
        b"\xff\xfe\x80{\"value\":{}}\n",
        b"{\"value\":{\"OAUTHS2S_CLIENT_ID\":\"\xc3\x28\"}}\n",
    ];
    for (i, line) in bad.iter().enumerate() {
        al.send_raw(line);
        let r = al.reply();
        assert_eq!(status(&r), 400, "line {i}: {r}");
        assert!(!message(&r).is_empty(), "line {i}: {r}");
        assert!(al.is_running(), "line {i} ended the process");
        // The next activation is served by the same process.
        let r = al.call(&w.oauth(), &format!("good-{i}"));
        assert_eq!(status(&r), 200, "after line {i}: {r}");
    }
    assert_eq!(al.pid(), pid);
    let (code, rest, _) = al.finish();
    assert!(code.success());
    assert!(rest.is_empty(), "{rest:?}");
}

#[test]
fn eof_on_stdin_ends_the_process_with_status_zero() {
    let w = World::new();
    let mut al = ActionLoop::start(&ActionLoop::proxy_env(&w));
    assert_eq!(status(&al.call(&w.oauth(), "a1")), 200);
    let (code, rest, _) = al.finish();
    assert_eq!(code.code(), Some(0));
    assert!(rest.is_empty(), "{rest:?}");

    // Also with nothing served at all.
    let al = ActionLoop::start(&ActionLoop::proxy_env(&w));
    let (code, rest, _) = al.finish();
    assert_eq!(code.code(), Some(0));
    assert!(rest.is_empty(), "{rest:?}");
}

#[test]
fn logs_never_reach_the_result_pipe() {
    let w = World::new();
    let mut al = ActionLoop::start(&ActionLoop::proxy_env(&w));
    let n = 6;
    let mut lines = Vec::new();
    for i in 0..n {
        let params = match i % 3 {
            0 => with(w.oauth(), json!({"LOG_LEVEL": "debug"})),
            1 => with(w.oauth(), json!({"LOG_LEVEL": "trace"})),
            _ => with(without(w.oauth(), &["IMS_ORG_ID"]), json!({"LOG_LEVEL": "debug"})),
        };
        al.send(&params, &format!("log-{i}"), json!(now_ms() + 60_000));
        lines.push(al.next_line(REPLY_TIMEOUT).expect("a reply"));
    }
    let (code, rest, logs) = al.finish();
    assert!(code.success());
    assert!(rest.is_empty(), "extra lines on fd 3: {rest:?}");
    assert_eq!(lines.len(), n);
    for line in &lines {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(v.is_object(), "{line}");
        assert!(matches!(status(&v), 200 | 400), "{line}");
    }
    // The logs went to stdout/stderr.
    assert!(logs.contains("getting a new access token"), "{logs}");
    assert!(logs.contains("params:"), "{logs}");
    assert!(!logs.contains("XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX"), "{logs}");
    for line in &lines {
        assert!(!logs.contains(line.as_str()), "a result was logged: {line}");
    }
}

#[test]
fn one_token_for_fifty_activations_and_one_more_after_expiry() {
    let w = World::new();
    let client = w.env["OAUTHS2S_CLIENT_ID"].clone();
    let mut al = ActionLoop::start(&ActionLoop::proxy_env(&w));
    for i in 0..50 {
        let r = al.call(&w.oauth(), &format!("a{i}"));
        assert_eq!(status(&r), 200, "{i}: {r}");
    }
    assert_eq!(w.emu.tokens_issued(&client), 1);
    assert_eq!(w.emu.request_count("/ims"), 1);

    // A day later (on the emulator's clock, which expires tokens) the token is refused: the
    // action gets exactly one new one and goes on with it.
    w.emu.advance_clock(Duration::from_secs(24 * 3600 + 60));
    for i in 0..10 {
        let r = al.call(&w.oauth(), &format!("b{i}"));
        assert_eq!(status(&r), 200, "{i}: {r}");
    }
    assert_eq!(w.emu.tokens_issued(&client), 2);
    assert_eq!(w.emu.request_count("/ims"), 2);
    let (code, _, logs) = al.finish();
    assert!(code.success());
    assert!(logs.contains("refused the cached token"), "{logs}");
}

#[test]
fn a_thousand_warm_activations_one_token() {
    let w = World::new();
    let client = w.env["OAUTHS2S_CLIENT_ID"].clone();
    let mut al = ActionLoop::start(&ActionLoop::proxy_env(&w));
    let params = w.oauth();
    // The cold activation: gets the token.
    assert_eq!(status(&al.call(&params, "cold")), 200);
    let mut times = Vec::with_capacity(1000);
    for i in 0..1000 {
        let line = format!(
            "{}\n",
            activation_line(&params, &format!("w{i}"), json!(now_ms() + 60_000))
        );
        let started = Instant::now();
        al.send_raw(line.as_bytes());
        let r = al.reply();
        times.push(started.elapsed());
        assert_eq!(status(&r), 200, "{i}: {r}");
    }
    times.sort();
    let median = times[times.len() / 2];
    let p99 = times[times.len() * 99 / 100];
    let tokens = w.emu.tokens_issued(&client);
    eprintln!(
        "actionloop warm activation ({} build): median {:.3} ms, p99 {:.3} ms over {} activations; tokens issued: {tokens}",
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        },
        median.as_secs_f64() * 1000.0,
        p99.as_secs_f64() * 1000.0,
        times.len()
    );
    assert_eq!(tokens, 1);
    assert_eq!(w.emu.request_count("/adobe/stats"), 1001);
    let (code, rest, _) = al.finish();
    assert!(code.success());
    assert!(rest.is_empty(), "{rest:?}");
}
