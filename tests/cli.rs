//! The local CLI (`ims-action invoke` / `ims-action token`) as a developer runs it: params file,
//! `.env` file, `ext.config.yaml` inputs with `$VAR` / `${VAR}`, exit codes and output shape.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use base64::Engine as _;
use common::*;
use ims_action::time::{Clock, format_datetime};
use serde_json::{Value, json};

/// An ext.config.yaml in the style `aio app init` writes, inputs taken from the `.env`.
const EXT_CONFIG: &str = r#"operations:
  view:
    - type: web
      impl: index.html
runtimeManifest:
  packages:
    ims-action:
      license: Apache-2.0
      inputs:
        LOG_LEVEL: info
      actions:
        quota:
          function: actions/ims-action/index.js
          runtime: nodejs:22
          web: 'no'
          inputs:
            OAUTHS2S_CLIENT_ID: $OAUTHS2S_CLIENT_ID
            OAUTHS2S_CLIENT_SECRET: ${OAUTHS2S_CLIENT_SECRET}
            OAUTHS2S_CECREDENTIALS_METASCOPES: ${ OAUTHS2S_CECREDENTIALS_METASCOPES }
            IMS_ORG_ID: $IMS_ORG_ID
            IMS_BASE_URL: $IMS_BASE_URL
            AEM_DATA_SERVICE_BASE_URL: $AEM_DATA_SERVICE_BASE_URL
          annotations:
            require-adobe-auth: false
            final: true
        report:
          function: actions/ims-action/index.js
          runtime: nodejs:22
          inputs:
            OPERATION: analytics-report
            JWT_CLIENT_ID: $JWT_CLIENT_ID
            JWT_CLIENT_SECRET: $JWT_CLIENT_SECRET
            JWT_TECHNICAL_ACCOUNT_ID: $JWT_TECHNICAL_ACCOUNT_ID
            JWT_IMS_ORG: $JWT_IMS_ORG
            JWT_METASCOPES: $JWT_METASCOPES
            JWT_PRIVATE_KEY: $JWT_PRIVATE_KEY
            IMS_BASE_URL: $IMS_BASE_URL
            ANALYTICS_BASE_URL: ${ANALYTICS_BASE_URL}
            ANALYTICS_COMPANY_ID: $ANALYTICS_COMPANY_ID
            ANALYTICS_RSID: $ANALYTICS_RSID
        undefined-var:
          function: actions/ims-action/index.js
          inputs:
            OAUTHS2S_CLIENT_ID: $OAUTHS2S_CLIENT_ID
            OAUTHS2S_CLIENT_SECRET: $IMS_ACTION_TEST_NOT_DEFINED_ANYWHERE
            OAUTHS2S_CECREDENTIALS_METASCOPES: $OAUTHS2S_CECREDENTIALS_METASCOPES
            IMS_ORG_ID: $IMS_ORG_ID
            IMS_BASE_URL: $IMS_BASE_URL
            AEM_DATA_SERVICE_BASE_URL: $AEM_DATA_SERVICE_BASE_URL
        other-org:
          function: actions/ims-action/index.js
          inputs:
            OAUTHS2S_CLIENT_ID: $OAUTHS2S_CLIENT_ID
            OAUTHS2S_CLIENT_SECRET: $OAUTHS2S_CLIENT_SECRET
            OAUTHS2S_CECREDENTIALS_METASCOPES: $OAUTHS2S_CECREDENTIALS_METASCOPES
            IMS_ORG_ID: OTHER0000000000000000@AdobeOrg
            IMS_BASE_URL: $IMS_BASE_URL
            AEM_DATA_SERVICE_BASE_URL: $AEM_DATA_SERVICE_BASE_URL
"#;

/// A temp folder with the demo `.env`, an ext.config.yaml and a params file.
struct Project {
    dir: PathBuf,
}

impl Project {
    fn new(w: &World, params: &Value) -> Project {
        let dir = temp_path("project");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(".env"), &w.env_text).unwrap();
        std::fs::write(dir.join("ext.config.yaml"), EXT_CONFIG).unwrap();
        std::fs::write(dir.join("params.json"), params.to_string()).unwrap();
        Project { dir }
    }

    fn path(&self, name: &str) -> String {
        self.dir.join(name).to_str().unwrap().to_string()
    }

    fn write(&self, name: &str, text: &str) -> String {
        std::fs::write(self.dir.join(name), text).unwrap();
        self.path(name)
    }

    /// `ims-action COMMAND --params params.json --env .env`, with `env` on a clean environment.
    fn run(&self, command: &str, env: &[(&str, &str)]) -> Output {
        let (params, dotenv) = (self.path("params.json"), self.path(".env"));
        run_bin(&[command, "--params", &params, "--env", &dotenv], env, None)
    }

    /// `ims-action invoke --params params.json --env .env --config ext.config.yaml --action ACTION`.
    fn invoke_action(&self, action: &str) -> Output {
        let (params, dotenv, config) = (
            self.path("params.json"),
            self.path(".env"),
            self.path("ext.config.yaml"),
        );
        run_bin(
            &[
                "invoke", "--params", &params, "--env", &dotenv, "--config", &config, "--action", action,
            ],
            &[],
            None,
        )
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Exactly one line on stdout, parsed.
fn one_json_line(out: &Output) -> Value {
    let text = stdout(out);
    assert_eq!(text.lines().count(), 1, "stdout: {text}\nstderr: {}", stderr(out));
    assert!(text.ends_with('\n'));
    serde_json::from_str(text.trim_end()).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// Exit 2, nothing on stdout, one line on stderr; returns that line.
fn usage_error(out: &Output) -> String {
    assert_eq!(
        out.status.code(),
        Some(2),
        "stdout: {}\nstderr: {}",
        stdout(out),
        stderr(out)
    );
    assert_eq!(stdout(out), "");
    let err = stderr(out);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    err.trim_end().to_string()
}

fn exists(p: &str) -> bool {
    Path::new(p).exists()
}

// ---- invoke with ext.config.yaml ----------------------------------------------------------

#[test]
fn invoke_resolves_the_config_inputs_from_the_env_file() {
    let w = World::new();
    let p = Project::new(&w, &json!({}));
    let out = p.invoke_action("quota");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v = one_json_line(&out);
    assert_eq!(status(&v), 200, "{v}");
    assert_eq!(v["body"]["filters"]["imsOrgId"], w.demo.org_id.as_str());
    // Logs go to stderr, and hold no secret.
    let err = stderr(&out);
    assert!(err.contains("getting a new access token (oauth-s2s)"), "{err}");
    assert!(!err.contains(&w.env["OAUTHS2S_CLIENT_SECRET"]), "{err}");
    // `$VAR`, `${VAR}` and `${ VAR }` were all substituted: IMS got the whole form.
    let form = w.emu.requests("/ims/token/v3")[0].form();
    assert_eq!(form[1].1, w.env["OAUTHS2S_CLIENT_ID"]);
    assert_eq!(form[2].1, w.env["OAUTHS2S_CLIENT_SECRET"]);
    assert_eq!(form[3].1, w.env["OAUTHS2S_CECREDENTIALS_METASCOPES"]);
}

#[test]
fn invoke_runs_another_action_of_the_same_config() {
    let w = World::new();
    let p = Project::new(&w, &json!({}));
    let out = p.invoke_action("report");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v = one_json_line(&out);
    assert_eq!(status(&v), 200, "{v}");
    assert_eq!(v["body"]["columns"]["dimension"]["id"], "variables/daterangeday");
    assert_eq!(w.emu.tokens_issued(&w.env["JWT_CLIENT_ID"]), 1);
}

#[test]
fn an_undefined_variable_becomes_empty_and_is_reported_missing() {
    let w = World::new();
    let p = Project::new(&w, &json!({}));
    let out = p.invoke_action("undefined-var");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let v = one_json_line(&out);
    assert_eq!(status(&v), 400, "{v}");
    assert!(
        message(&v).starts_with("missing parameter(s) 'OAUTHS2S_CLIENT_SECRET'"),
        "{v}"
    );
    assert_eq!(w.emu.request_count("/"), 0);
}

#[test]
fn the_params_file_overrides_config_inputs() {
    let w = World::new();
    // Without the override, the config's IMS_ORG_ID is another org's: 403.
    let p = Project::new(&w, &json!({}));
    let out = p.invoke_action("other-org");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(status(&one_json_line(&out)), 403);
    // With it, the right org: 200.
    let p = Project::new(&w, &json!({ "IMS_ORG_ID": w.demo.org_id }));
    let out = p.invoke_action("other-org");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v = one_json_line(&out);
    assert_eq!(v["body"]["filters"]["imsOrgId"], w.demo.org_id.as_str());
}

#[test]
fn invoke_with_only_a_params_file_works() {
    let w = World::new();
    let p = Project::new(&w, &w.oauth());
    let params = format!("--params={}", p.path("params.json"));
    let out = run_bin(&["invoke", &params, "--env", &p.path(".env")], &[], None);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(status(&one_json_line(&out)), 200);
}

#[test]
fn an_error_result_exits_1_with_the_error_on_stdout() {
    let w = World::new();
    let p = Project::new(
        &w,
        &with(
            w.oauth(),
            json!({"OAUTHS2S_CLIENT_SECRET": "p8e-wrong-secret-0000"}),
        ),
    );
    let out = p.run("invoke", &[]);
    assert_eq!(out.status.code(), Some(1));
    let v = one_json_line(&out);
    assert_eq!(status(&v), 502);
    assert!(message(&v).contains("invalid_client"), "{v}");
    assert!(!stdout(&out).contains("p8e-wrong-secret-0000"));
    assert!(!stderr(&out).contains("p8e-wrong-secret-0000"));
}

// ---- IMS_ACTION_ALLOW_HOSTS ----------------------------------------------------------------

#[test]
fn the_allowlist_comes_from_the_env_file() {
    let w = World::new();
    let p = Project::new(&w, &w.oauth());
    // With the .env's IMS_ACTION_ALLOW_HOSTS (and a clean process environment): allowed.
    let out = p.run("invoke", &[]);
    assert_eq!(status(&one_json_line(&out)), 200, "{}", stderr(&out));

    // Without it: the emulator is not an allowed host.
    let env: String = w
        .env_text
        .lines()
        .filter(|l| !l.starts_with("IMS_ACTION_ALLOW_HOSTS="))
        .map(|l| format!("{l}\n"))
        .collect();
    let bare_env = p.write("bare.env", &env);
    let out = run_bin(
        &["invoke", "--params", &p.path("params.json"), "--env", &bare_env],
        &[],
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    let v = one_json_line(&out);
    assert_eq!(status(&v), 400, "{v}");
    assert!(
        message(&v).starts_with(&format!(
            "invalid parameter 'IMS_BASE_URL': host '{}' is not allowed",
            w.emu.host_port()
        )),
        "{v}"
    );
    assert_eq!(w.emu.request_count("/ims"), 1, "only the first run reached IMS");
}

#[test]
fn the_process_environment_comes_before_the_env_file() {
    let w = World::new();
    let p = Project::new(&w, &w.oauth());
    let out = p.run("invoke", &[("IMS_ACTION_ALLOW_HOSTS", "somewhere-else.example")]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(status(&one_json_line(&out)), 400);
    assert_eq!(w.emu.request_count("/"), 0);
}

// ---- token ---------------------------------------------------------------------------------

#[test]
fn token_prints_the_token_and_its_expiry() {
    let w = World::new();
    let p = Project::new(&w, &w.oauth());
    // The process runs on the system clock: what it prints is bracketed by the time before and
    // after it ran, however long that took.
    let before = Clock::system().now_unix();
    let out = p.run("token", &[]);
    let after = Clock::system().now_unix();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v = one_json_line(&out);
    let mut keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(keys, ["access_token", "expires_at", "expires_in", "token_type"]);
    assert_eq!(v["token_type"], "bearer");
    // The emulator's default: 86 399 s in the response, 24 h in the payload: the response wins.
    let expires_in = v["expires_in"].as_i64().unwrap();
    assert!(
        (86_399 - (after - before) - 1..=86_399).contains(&expires_in),
        "{v}"
    );
    let expires_at = v["expires_at"].as_str().unwrap();
    assert_eq!(expires_at.len(), 20, "{expires_at}");
    assert!(
        (before..=after).any(|obtained| expires_at == format_datetime(obtained + 86_399)),
        "{expires_at} is not 86,399 s after a time between {before} and {after}"
    );
    // The token is the one IMS issued to this client, and no API was called.
    let token = v["access_token"].as_str().unwrap();
    let payload = token.split('.').nth(1).unwrap();
    let payload: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(payload["client_id"], w.env["OAUTHS2S_CLIENT_ID"].as_str());
    assert_eq!(w.emu.tokens_issued(&w.env["OAUTHS2S_CLIENT_ID"]), 1);
    assert_eq!(w.emu.request_count("/adobe"), 0);
}

#[test]
fn token_with_bad_credentials_exits_1_with_the_error() {
    let w = World::new();
    let p = Project::new(&w, &without(w.oauth(), &["OAUTHS2S_CLIENT_ID"]));
    let out = p.run("token", &[]);
    assert_eq!(out.status.code(), Some(1));
    let v = one_json_line(&out);
    assert_eq!(status(&v), 400);
    assert!(
        message(&v).starts_with("missing parameter(s) 'OAUTHS2S_CLIENT_ID'"),
        "{v}"
    );
}

// ---- usage ---------------------------------------------------------------------------------

#[test]
fn help_exits_0_with_the_usage() {
    for flag in ["--help", "-h", "help"] {
        let out = run_bin(&[flag], &[], None);
        assert_eq!(out.status.code(), Some(0), "{flag}");
        let text = stdout(&out);
        assert!(text.contains("Usage:"), "{text}");
        assert!(text.contains("ims-action invoke --params FILE"), "{text}");
        assert!(text.contains("ims-action token"), "{text}");
    }
}

#[test]
fn an_unreadable_params_file_is_a_usage_error() {
    let w = World::new();
    let p = Project::new(&w, &json!({}));
    let missing = p.path("no-such-params.json");
    assert!(!exists(&missing));
    let out = run_bin(
        &["invoke", "--params", &missing, "--env", &p.path(".env")],
        &[],
        None,
    );
    let line = usage_error(&out);
    assert!(
        line.starts_with("ims-action invoke: cannot read params file"),
        "{line}"
    );
    assert!(line.contains("no-such-params.json"), "{line}");
}

#[test]
fn a_params_file_that_is_not_a_json_object_is_a_usage_error() {
    let w = World::new();
    let p = Project::new(&w, &json!({}));
    for (text, want) in [
        ("{\"OAUTHS2S_CLIENT_ID\": ", "is not valid JSON"),
        ("[1, 2, 3]", "must hold a JSON object"),
    ] {
        let file = p.write("bad.json", text);
        let out = run_bin(
            &["invoke", "--params", &file, "--env", &p.path(".env")],
            &[],
            None,
        );
        let line = usage_error(&out);
        assert!(line.contains(want), "{line}");
    }
    assert_eq!(w.emu.request_count("/"), 0);
}

#[test]
fn an_unknown_action_is_a_usage_error_listing_the_actions() {
    let w = World::new();
    let p = Project::new(&w, &json!({}));
    let out = p.invoke_action("nope");
    let line = usage_error(&out);
    assert!(line.contains("unknown action 'nope'"), "{line}");
    for action in ["quota", "report", "undefined-var", "other-org"] {
        assert!(line.contains(action), "{action} not listed: {line}");
    }
}

#[test]
fn option_problems_are_usage_errors() {
    let w = World::new();
    let p = Project::new(&w, &json!({}));
    let params = p.path("params.json");
    let config = p.path("ext.config.yaml");
    let env = p.path(".env");
    for (args, want) in [
        (
            vec!["invoke", "--params", &params, "--bogus"],
            "unknown option '--bogus'",
        ),
        (
            vec!["invoke", "--params", &params, "--config", &config],
            "--config and --action go together",
        ),
        (
            vec!["invoke", "--params", &params, "--action", "quota"],
            "--config and --action go together",
        ),
        (vec!["invoke", "--params"], "--params needs a value"),
        (vec!["invoke"], "--params FILE is required"),
        (
            vec!["invoke", "--params", &params, "--env", "/no/such/.env"],
            "cannot read env file",
        ),
        (
            vec!["token", "--params", &params, "--env", &env, "--config", &config],
            "--config and --action",
        ),
    ] {
        let out = run_bin(&args, &[], None);
        let line = usage_error(&out);
        assert!(line.contains(want), "{args:?}: {line}");
    }
    assert_eq!(w.emu.request_count("/"), 0);
}

// ---- the .env file, read as aio reads it ---------------------------------------------------

/// `inputs` (and so `seal` and `invoke --env`, which read the same way) sees what aio's dotenv
/// 16.3.1 sees: a comment right after a value, escaped quotes kept, `KEY: value`, backticks,
/// and bytes that are not UTF-8 (replaced, not refused).
#[test]
fn inputs_read_the_env_file_as_aio_does() {
    let dir = temp_path("dotenv-cli");
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("ext.config.yaml");
    std::fs::write(
        &config,
        "runtimeManifest:\n  packages:\n    p:\n      actions:\n        a:\n          inputs:\n            A: $A\n            B: $B\n            C: $C\n            D: $D\n            E: $E\n",
    )
    .unwrap();
    let env = dir.join(".env");
    std::fs::write(
        &env,
        b"A=abc#def\nB=\"say \\\"hi\\\"\"\nC: colon\nD=`tick`\nE=caf\xe9\n".as_slice(),
    )
    .unwrap();
    let out = run_bin(
        &[
            "inputs",
            "--config",
            config.to_str().unwrap(),
            "--action",
            "a",
            "--env",
            env.to_str().unwrap(),
        ],
        &[],
        None,
    );
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        one_json_line(&out),
        json!({"A": "abc", "B": "say \\\"hi\\\"", "C": "colon", "D": "tick", "E": "caf\u{FFFD}"})
    );
}

/// A `--env` path that is a FIFO is refused at once (opening it would wait for a writer).
#[test]
fn an_env_file_that_is_not_a_regular_file_is_refused_unread() {
    let dir = temp_path("dotenv-fifo");
    std::fs::create_dir_all(&dir).unwrap();
    let fifo = dir.join(".env");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let fifo_s = fifo.to_string_lossy().into_owned();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(run_bin(
            &["seal", "--config", "/nonexistent.yaml", "--env", &fifo_s],
            &[],
            None,
        ));
    });
    let out = rx.recv_timeout(std::time::Duration::from_secs(20));
    if out.is_err() {
        // Unblock the binary that waits on the FIFO, so nothing is left behind.
        let _ = std::fs::OpenOptions::new().write(true).open(&fifo);
    }
    let _ = std::fs::remove_dir_all(&dir);
    let out = out.expect("the binary waited on the FIFO");
    let err = usage_error(&out);
    assert!(err.contains("not a regular file"), "{err}");
}
