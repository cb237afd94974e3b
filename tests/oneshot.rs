//! The one-shot runtime (dockerskeleton `--native`), end to end: one process per activation,
//! params as `argv[1]` or one JSON line on stdin, the result on the last line of stdout, tokens
//! shared between processes through a private file cache.

mod common;

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use adobe_emulator::Fault;
use common::*;
use serde_json::{Value, json};

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A fresh, empty `TMPDIR` for one test.
struct TmpDir(PathBuf);

impl TmpDir {
    fn new() -> TmpDir {
        let p = temp_path("tmpdir");
        std::fs::create_dir_all(&p).unwrap();
        TmpDir(p)
    }

    fn cache_dir(&self) -> PathBuf {
        self.0.join("ims-action-tokens")
    }

    fn cache_files(&self) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.cache_dir())
            .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        files.sort();
        files
    }
}

impl Drop for TmpDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The environment dockerskeleton gives one activation (minus the proxy's own variables): the
/// activation's `__OW_*` values, `TMPDIR` and the allowlist.
fn env(w: &World, tmp: &Path, deadline_ms: u64) -> Vec<(&'static str, String)> {
    vec![
        ("__OW_NAMESPACE", "ns".into()),
        ("__OW_ACTION_NAME", "/ns/pkg/a".into()),
        ("__OW_ACTIVATION_ID", "one-shot".into()),
        ("__OW_TRANSACTION_ID", "tx-one-shot".into()),
        ("__OW_DEADLINE", deadline_ms.to_string()),
        ("TMPDIR", tmp.to_string_lossy().into_owned()),
        ("IMS_ACTION_ALLOW_HOSTS", w.emu.host_port()),
    ]
}

/// Runs one activation: `args` after the binary, `stdin` fed in (else /dev/null), fd 3 closed
/// whatever the test harness inherited, and only `env` in the environment.
fn run(args: &[&str], env: &[(&str, String)], stdin: Option<&str>) -> Output {
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c")
        .arg(r#"exec "$0" "$@" 3>&-"#)
        .arg(bin())
        .args(args)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("ims-action starts");
    if let Some(input) = stdin {
        let mut s = child.stdin.take().expect("stdin");
        // The process may not read stdin at all (params in argv): ignore a broken pipe.
        let _ = s.write_all(input.as_bytes());
    }
    child.wait_with_output().expect("ims-action ends")
}

/// The params as dockerskeleton passes them: argv[1], and the same JSON on stdin.
fn run_params(params: &Value, env: &[(&str, String)]) -> Output {
    let text = params.to_string();
    run(&[&text], env, Some(&format!("{text}\n")))
}

fn stdout_lines(out: &Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn params_in_argv_result_on_the_last_stdout_line() {
    let w = World::new();
    let tmp = TmpDir::new();
    let out = run_params(
        &with(w.oauth(), json!({"LOG_LEVEL": "debug"})),
        &env(&w, &tmp.0, now_ms() + 60_000),
    );
    let r = last_line(&out);
    assert_eq!(status(&r), 200, "{r}");
    assert_eq!(r["headers"]["content-type"], "application/json");
    assert_eq!(r["body"]["filters"]["imsOrgId"], w.env["IMS_ORG_ID"].as_str());
    assert!(out.status.success());
    // Logs went to stderr; the result is the only stdout line.
    assert_eq!(stdout_lines(&out).len(), 1, "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("getting a new access token"));
}

#[test]
fn params_as_one_stdin_line_without_an_argument() {
    let w = World::new();
    let tmp = TmpDir::new();
    let params = with(
        w.oauth(),
        json!({"OPERATION": "aem-get", "AEM_PATH": "/content/dam/demo.json"}),
    );
    let out = run(
        &[],
        &env(&w, &tmp.0, now_ms() + 60_000),
        Some(&format!("{params}\n")),
    );
    let r = last_line(&out);
    assert_eq!(status(&r), 200, "{r} {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(r["body"]["jcr:title"], "Demo");

    // Without a final newline too.
    let out = run(
        &[],
        &env(&w, &tmp.0, now_ms() + 60_000),
        Some(&w.oauth().to_string()),
    );
    assert_eq!(status(&last_line(&out)), 200);
}

#[test]
fn the_deadline_from_the_environment_is_honoured() {
    let w = World::new();
    let tmp = TmpDir::new();
    // Already past: 504 without a single request.
    let out = run_params(&w.oauth(), &env(&w, &tmp.0, now_ms() - 1_000));
    let r = last_line(&out);
    assert_eq!(status(&r), 504, "{r}");
    assert_eq!(w.emu.request_count("/"), 0);

    // 2.5 s away while IMS takes 10 s: a 504 naming IMS, after the one attempt that fitted.
    w.emu
        .inject_fault("/ims", Fault::Delay(Duration::from_secs(10)), 1);
    let out = run_params(&w.oauth(), &env(&w, &tmp.0, now_ms() + 2_500));
    let r = last_line(&out);
    assert_eq!(status(&r), 504, "{r}");
    assert!(message(&r).contains("IMS did not answer in time"), "{r}");
    assert_eq!(w.emu.request_count("/ims"), 1);
    assert_eq!(w.emu.request_count("/adobe"), 0);
}

#[test]
fn two_processes_share_one_token_through_a_private_file() {
    let w = World::new();
    let tmp = TmpDir::new();
    let client = w.env["OAUTHS2S_CLIENT_ID"].clone();
    for i in 0..2 {
        let out = run_params(&w.oauth(), &env(&w, &tmp.0, now_ms() + 60_000));
        assert_eq!(status(&last_line(&out)), 200, "run {i}");
    }
    assert_eq!(w.emu.tokens_issued(&client), 1);
    assert_eq!(w.emu.request_count("/ims"), 1);
    assert_eq!(w.emu.request_count("/adobe/stats"), 2);

    let dir = tmp.cache_dir();
    let dir_mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
    assert_eq!(dir_mode, 0o700, "{dir:?}");
    let files = tmp.cache_files();
    assert_eq!(files.len(), 1, "{files:?}");
    for f in &files {
        assert!(f.extension().is_some_and(|e| e == "json"), "leftover {f:?}");
        let mode = std::fs::metadata(f).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{f:?}");
        // The file holds the token, never the client secret.
        let text = std::fs::read_to_string(f).unwrap();
        assert!(!text.contains(w.env["OAUTHS2S_CLIENT_SECRET"].as_str()));
    }
}

/// A token a process left in the file that has since expired for IMS and the API (the
/// emulator's clock moves; the processes run on the system clock, which does not): the next
/// process gets the 401, fetches once, and leaves the new token for the one after.
#[test]
fn a_cached_token_that_expired_upstream_is_replaced_in_the_file() {
    let w = World::new();
    let tmp = TmpDir::new();
    let client = w.env["OAUTHS2S_CLIENT_ID"].clone();
    let out = run_params(&w.oauth(), &env(&w, &tmp.0, now_ms() + 60_000));
    assert_eq!(status(&last_line(&out)), 200);
    let first = std::fs::read(&tmp.cache_files()[0]).unwrap();

    w.emu.advance_clock(Duration::from_secs(25 * 3600));
    let out = run_params(&w.oauth(), &env(&w, &tmp.0, now_ms() + 60_000));
    assert_eq!(
        status(&last_line(&out)),
        200,
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("refused the cached token"));
    assert_eq!(w.emu.tokens_issued(&client), 2);
    let files = tmp.cache_files();
    assert_eq!(files.len(), 1, "{files:?}");
    assert_ne!(
        std::fs::read(&files[0]).unwrap(),
        first,
        "the new token replaced the old"
    );

    let out = run_params(&w.oauth(), &env(&w, &tmp.0, now_ms() + 60_000));
    assert_eq!(status(&last_line(&out)), 200);
    assert_eq!(w.emu.tokens_issued(&client), 2);
    // Each API saw: a good call, the refused one and its retry, a good call.
    assert_eq!(w.emu.request_count("/adobe/stats"), 4);
}

#[test]
fn a_corrupt_cache_file_is_ignored() {
    let w = World::new();
    let tmp = TmpDir::new();
    let client = w.env["OAUTHS2S_CLIENT_ID"].clone();
    let out = run_params(&w.oauth(), &env(&w, &tmp.0, now_ms() + 60_000));
    assert_eq!(status(&last_line(&out)), 200);
    assert_eq!(w.emu.tokens_issued(&client), 1);

    let files = tmp.cache_files();
    assert!(!files.is_empty());
    for f in &files {
        std::fs::write(f, b"\x00garbage{\"access_token\":").unwrap();
    }
    let out = run_params(&w.oauth(), &env(&w, &tmp.0, now_ms() + 60_000));
    let r = last_line(&out);
    assert_eq!(status(&r), 200, "{r}");
    assert_eq!(
        w.emu.tokens_issued(&client),
        2,
        "a corrupt file must cause a re-fetch"
    );

    // The new token replaced the garbage: the next process uses it.
    let out = run_params(&w.oauth(), &env(&w, &tmp.0, now_ms() + 60_000));
    assert_eq!(status(&last_line(&out)), 200);
    assert_eq!(w.emu.tokens_issued(&client), 2);

    // A file of valid JSON with the wrong shape is no better than garbage.
    for f in &tmp.cache_files() {
        std::fs::write(f, br#"{"key":"nope","access_token":"x"}"#).unwrap();
    }
    let out = run_params(&w.oauth(), &env(&w, &tmp.0, now_ms() + 60_000));
    assert_eq!(status(&last_line(&out)), 200);
    assert_eq!(w.emu.tokens_issued(&client), 3);
}

#[test]
fn an_error_result_is_still_one_json_line() {
    let w = World::new();
    let tmp = TmpDir::new();
    let e = env(&w, &tmp.0, now_ms() + 60_000);
    let cases: Vec<(Output, u64)> = vec![
        // A missing input.
        (
            run_params(&without(w.oauth(), &["OAUTHS2S_CLIENT_SECRET"]), &e),
            400,
        ),
        // IMS refuses the secret (with logs at debug, which must stay off stdout).
        (
            run_params(
                &with(
                    w.oauth(),
                    json!({"OAUTHS2S_CLIENT_SECRET": "p8e-wrong-secret-000", "LOG_LEVEL": "debug"}),
                ),
                &e,
            ),
            502,
        ),
        // Params that are not JSON.
        (run(&["{not json"], &e, None), 400),
        // Params that are JSON but not an object.
        (run(&["[1,2]"], &e, None), 400),
        // No params at all (stdin is empty).
        (run(&[], &e, None), 400),
    ];
    for (i, (out, want)) in cases.iter().enumerate() {
        let lines = stdout_lines(out);
        assert_eq!(lines.len(), 1, "case {i}: {lines:?}");
        let r: Value = serde_json::from_str(&lines[0]).unwrap_or_else(|err| panic!("case {i}: {err}"));
        assert_eq!(status(&r), *want, "case {i}: {r}");
        assert!(!message(&r).is_empty(), "case {i}: {r}");
        assert!(!out.status.success(), "case {i}: an error exits non-zero");
    }
    assert_eq!(w.emu.tokens_issued(&w.env["OAUTHS2S_CLIENT_ID"]), 0);
}
