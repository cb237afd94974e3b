//! Web actions, end to end: the params OpenWhisk adds for an HTTP caller (`__ow_method`,
//! `__ow_headers`, `__ow_path`, `__ow_query`, `__ow_body`), the caller's org check, what a raw
//! body may and may not set, and what never reaches the logs. Every deployment here is sealed
//! (its bound params are the seal); an unsealed one refuses web calls.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use common::*;
use ims_action::action::seal::Sealing;
use ims_action::endpoint::AllowList;
use ims_action::token::TokenCache;
use ims_action::{Action, Activation};
use serde_json::{Value, json};

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// The bound params plus what OpenWhisk adds for a raw-http web request from `org`.
fn web(bound: Value, method: &str, org: Option<&str>, extra: Value) -> Value {
    let raw = json!({"__ow_method": method, "__ow_query": "", "__ow_body": ""});
    web_call(bound, org, with(raw, extra))
}

/// Accepts connections on an allow-listed port and counts them: where a secret must never go.
struct Trap {
    port: u16,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Trap {
    fn start() -> Trap {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&lines);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
                // The request head may come in pieces: read up to its blank line.
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
                    match stream.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let first = String::from_utf8_lossy(&head)
                    .lines()
                    .next()
                    .unwrap_or("<nothing>")
                    .to_string();
                seen.lock().unwrap().push(first);
                let _ = stream
                    .write_all(b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
            }
        });
        Trap { port, lines }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn seen(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }
}

/// Runs a web activation of the deployment that bound `bound`, with `extra` from the caller.
fn call_web(w: &World, bound: &Value, method: &str, org: Option<&str>, extra: Value) -> Value {
    w.sealed_action(bound)
        .handle(web(bound.clone(), method, org, extra), &activation())
}

#[test]
fn a_web_request_gets_status_headers_and_a_json_object_body() {
    let w = World::new();
    let bound = w.oauth();
    let a = w.sealed_action(&bound);
    let r = a.handle(
        web(
            bound.clone(),
            "get",
            Some(w.env["IMS_ORG_ID"].as_str()),
            json!({"__ow_path": "/quota", "__ow_query": "current=true"}),
        ),
        &activation(),
    );
    assert_eq!(r["statusCode"], 200, "{r}");
    assert_eq!(r["headers"]["content-type"], "application/json");
    assert!(r["body"].is_object(), "{r}");
    assert_eq!(r["body"]["filters"]["imsOrgId"], w.env["IMS_ORG_ID"].as_str());
    // The caller's own bearer token is not what the action sends upstream.
    for req in w.emu.requests("/") {
        if let Some(auth) = req.header("authorization") {
            assert!(!auth.contains(CALLER_TOKEN), "{} {}", req.method, req.path);
        }
    }
    // Nor does it come back.
    assert!(!r.to_string().contains(CALLER_TOKEN));
}

/// The bound params of a deployment that lets callers choose the operation and the path.
fn opted_in(w: &World) -> Value {
    with(w.oauth(), json!({"CALLER_INPUTS": "OPERATION,AEM_PATH"}))
}

#[test]
fn a_raw_json_body_base64_encoded_chooses_the_operation() {
    let w = World::new();
    let bound = opted_in(&w);
    let a = w.sealed_action(&bound);
    let body = b64(r#"{"OPERATION":"aem-get","AEM_PATH":"/content/dam/demo.json"}"#);
    let mut p = web(bound, "post", None, json!({"__ow_body": body}));
    p["__ow_headers"]["content-type"] = json!("application/json");
    let r = a.handle(p, &activation());
    assert_eq!(r["statusCode"], 200, "{r}");
    assert_eq!(r["body"]["jcr:title"], "Demo", "{r}");
    assert_eq!(w.emu.request_count("/content/dam/demo.json"), 1);
}

#[test]
fn a_form_body_and_a_query_string_choose_the_operation() {
    let w = World::new();
    let bound = opted_in(&w);
    let a = w.sealed_action(&bound);
    let mut p = web(
        bound.clone(),
        "post",
        None,
        json!({"__ow_body": "OPERATION=aem-get&AEM_PATH=%2Fcontent%2Fdam%2Fdemo.json"}),
    );
    p["__ow_headers"]["content-type"] = json!("application/x-www-form-urlencoded");
    let r = a.handle(p, &activation());
    assert_eq!(r["statusCode"], 200, "{r}");
    assert_eq!(r["body"]["jcr:title"], "Demo", "{r}");

    let p = web(
        bound,
        "get",
        None,
        json!({"__ow_query": "OPERATION=aem-get&AEM_PATH=/content/dam/projects.json"}),
    );
    let r = a.handle(p, &activation());
    assert_eq!(r["statusCode"], 200, "{r}");
    assert_eq!(r["body"]["jcr:primaryType"], "sling:Folder", "{r}");
    assert_eq!(w.emu.request_count("/content/dam/projects.json"), 1);

    // Without the opt-in, the same raw body changes nothing: the bound default operation runs.
    let plain = w.oauth();
    let mut p = web(
        plain.clone(),
        "post",
        None,
        json!({"__ow_body": "OPERATION=aem-get"}),
    );
    p["__ow_headers"]["content-type"] = json!("application/x-www-form-urlencoded");
    let r = w.sealed_action(&plain).handle(p, &activation());
    assert_eq!(r["statusCode"], 200, "{r}");
    assert!(r["body"]["data"]["contentRequestsQuota"].is_object(), "{r}");
}

#[test]
fn allowed_orgs_keep_other_callers_out_before_any_request() {
    let w = World::new();
    let org = w.env["IMS_ORG_ID"].clone();
    let bound = with(
        w.oauth(),
        json!({"ALLOWED_IMS_ORGS": format!("OTHER0000000000000000@AdobeOrg, {org}")}),
    );
    for (caller, why) in [
        (None, "no x-gw-ims-org-id header"),
        (Some("STRANGER000000000000@AdobeOrg"), "an unlisted org"),
        (Some(""), "an empty org"),
    ] {
        let r = call_web(&w, &bound, "get", caller, json!({}));
        assert_eq!(status(&r), 403, "{why}: {r}");
        assert_eq!(r["error"]["statusCode"], 403, "{why}: {r}");
        assert!(message(&r).contains("x-gw-ims-org-id"), "{why}: {r}");
        assert_eq!(w.emu.request_count("/ims"), 0, "{why}");
        assert_eq!(w.emu.request_count("/"), 0, "{why}");
    }
    let a = w.sealed_action(&bound);
    let r = a.handle(web(bound.clone(), "get", Some(&org), json!({})), &activation());
    assert_eq!(status(&r), 200, "{r}");
    assert_eq!(w.emu.request_count("/ims"), 1);

    // Header names arrive lower-cased from OpenWhisk, but a mixed-case one is matched too.
    let mut p = web(bound.clone(), "get", None, json!({}));
    p["__ow_headers"]["X-GW-IMS-ORG-ID"] = json!(org);
    assert_eq!(status(&a.handle(p, &activation())), 200);

    // A caller cannot widen or clear the list: it is sealed configuration.
    for (changed, why) in [
        (json!("STRANGER000000000000@AdobeOrg"), "replaced"),
        (json!(""), "cleared"),
    ] {
        let mut p = web(
            bound.clone(),
            "get",
            Some("STRANGER000000000000@AdobeOrg"),
            json!({}),
        );
        p["ALLOWED_IMS_ORGS"] = changed;
        let r = a.handle(p, &activation());
        // The list is unknown once it differs from the sealed one: nobody gets in, and the
        // refusal comes before any answer about the configuration.
        assert_eq!(status(&r), 403, "{why}: {r}");
    }
    assert_eq!(w.emu.request_count("/ims"), 1);
}

#[test]
fn a_raw_body_cannot_override_bound_params() {
    let w = World::new();
    let trap = Trap::start();
    let bound = with(opted_in(&w), json!({"OPERATION": "aem-quota"}));
    let a = Action::new(
        AllowList::parse(&format!("{},127.0.0.1:{}", w.emu.host_port(), trap.port)),
        TokenCache::in_memory(),
    )
    .with_sealing(Sealing::Sealed(seal_for(&bound)));
    let body = json!({
        "OPERATION": "aem-get",
        "AEM_PATH": "/content/dam/demo.json",
        "IMS_BASE_URL": trap.url(),
        "AEM_DATA_SERVICE_BASE_URL": trap.url(),
        "OAUTHS2S_CLIENT_ID": "attacker-client",
        "ALLOWED_IMS_ORGS": "ATTACKER@AdobeOrg",
    });
    for (where_, extra) in [
        ("json body", json!({"__ow_body": b64(&body.to_string())})),
        (
            "form body",
            json!({"__ow_body": format!("OPERATION=aem-get&IMS_BASE_URL={}", trap.url())}),
        ),
        (
            "query",
            json!({"__ow_query": format!("OPERATION=aem-get&AEM_DATA_SERVICE_BASE_URL={}", trap.url())}),
        ),
    ] {
        let r = a.handle(web(bound.clone(), "post", None, extra), &activation());
        assert_eq!(status(&r), 200, "{where_}: {r}");
        // The bound operation ran (the quota), with the bound endpoints.
        assert_eq!(
            r["body"]["filters"]["imsOrgId"],
            w.env["IMS_ORG_ID"].as_str(),
            "{where_}: {r}"
        );
    }
    assert_eq!(w.emu.request_count("/content"), 0);
    // Top-level (a non-raw web action merges query and body into params): refused, with the
    // same answer whatever the input (the log names it for the operator).
    for (name, value) in [
        ("IMS_BASE_URL", json!(trap.url())),
        ("AEM_DATA_SERVICE_BASE_URL", json!(trap.url())),
        ("OPERATION", json!("aem-get")),
        ("OAUTHS2S_CLIENT_ID", json!("attacker-client")),
        ("LOG_LEVEL", json!("trace")),
        ("HTTP_TIMEOUT_MS", json!(1)),
        ("AUTH_METHOD", json!("dev-token")),
    ] {
        let mut p = web(bound.clone(), "get", None, json!({}));
        p[name] = value;
        let r = a.handle(p, &activation());
        assert_eq!(status(&r), 400, "{name}: {r}");
        assert_eq!(message(&r), WEB_SEAL_ANSWER, "{name}: {r}");
    }
    assert!(trap.seen().is_empty(), "{:?}", trap.seen());
}

#[test]
fn an_unsealed_deployment_refuses_web_calls_but_serves_its_owner() {
    let w = World::new();
    let a = w.action();
    let r = a.handle(web(w.oauth(), "get", None, json!({})), &activation());
    assert_eq!(status(&r), 500, "{r}");
    // The why (no seal next to the binary) is the operator's, in the log.
    assert!(message(&r).contains("misconfigured"), "{r}");
    for only in ["__ow_body", "__ow_query", "__ow_headers", "__ow_path"] {
        let p = with(w.oauth(), json!({ only: "" }));
        assert_eq!(status(&a.handle(p, &activation())), 500, "{only}");
    }
    assert_eq!(w.emu.request_count("/"), 0);
    // A plain invoke (the namespace's key holder) is trusted as before.
    assert_eq!(status(&a.handle(w.oauth(), &activation())), 200);
}

#[test]
fn a_raw_body_cannot_supply_credentials() {
    let w = World::new();
    let secret = w.env["OAUTHS2S_CLIENT_SECRET"].clone();
    let body = b64(&json!({"OAUTHS2S_CLIENT_SECRET": secret}).to_string());
    let bound = without(opted_in(&w), &["OAUTHS2S_CLIENT_SECRET"]);
    let r = call_web(&w, &bound, "post", None, json!({"__ow_body": body}));
    assert_eq!(status(&r), 400, "{r}");
    assert!(message(&r).contains("OAUTHS2S_CLIENT_SECRET"), "{r}");
    assert!(message(&r).starts_with("missing parameter"), "{r}");
    assert_eq!(w.emu.request_count("/"), 0);
}

/// `IMS_BASE_URL` left unbound (so the default, Adobe's IMS, applies) and set by a raw body:
/// the body's value must be ignored. Run as the binary with an HTTPS proxy that catches the
/// request, so that nothing leaves the machine.
#[test]
fn a_raw_body_cannot_set_an_unbound_ims_base_url() {
    let w = World::new();
    let proxy = Trap::start();
    let tmp = temp_path("tmpdir");
    std::fs::create_dir_all(&tmp).unwrap();
    let body = b64(&json!({"IMS_BASE_URL": w.emu.base_url(), "OPERATION": "aem-quota"}).to_string());
    let bound = without(opted_in(&w), &["IMS_BASE_URL"]);
    let seal = w.seal_file(&bound);
    let params = web(bound, "post", None, json!({"__ow_body": body}));
    let out = run_oneshot(
        &params,
        &[
            ("IMS_ACTION_SEAL", seal.to_string_lossy().into_owned()),
            ("__OW_ACTION_NAME", ACTION_NAME.into()),
            ("HTTPS_PROXY", proxy.url()),
            ("TMPDIR", tmp.to_string_lossy().into_owned()),
            ("IMS_ACTION_ALLOW_HOSTS", w.emu.host_port()),
            ("__OW_DEADLINE", (now_ms() + 20_000).to_string()),
        ],
    );
    let _ = std::fs::remove_dir_all(&tmp);
    let r = last_line(&out);
    assert_eq!(status(&r), 502, "{r}");
    assert!(message(&r).contains("IMS"), "{r}");
    assert_eq!(w.emu.request_count("/ims"), 0, "the body's IMS_BASE_URL was used");
    let seen = proxy.seen();
    assert!(!seen.is_empty(), "the default IMS was not even tried");
    assert!(
        seen.iter().all(|l| l.contains("ims-na1.adobelogin.com")),
        "{seen:?}"
    );
}

fn run_oneshot(params: &Value, env: &[(&str, String)]) -> Output {
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c")
        .arg(r#"exec "$0" "$@" 3>&-"#)
        .arg(bin())
        .arg(params.to_string())
        .env_clear()
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd.output().expect("ims-action runs")
}

#[test]
fn the_authorization_header_never_reaches_the_logs_even_at_trace() {
    let w = World::new();
    let tmp = temp_path("tmpdir");
    std::fs::create_dir_all(&tmp).unwrap();
    let body = b64(r#"{"OPERATION":"aem-get","AEM_PATH":"/content/dam/demo.json"}"#);
    let bound = with(opted_in(&w), json!({"LOG_LEVEL": "trace"}));
    let seal = w.seal_file(&bound);
    let mut params = web(
        bound,
        "post",
        Some(w.env["IMS_ORG_ID"].as_str()),
        json!({"__ow_body": body}),
    );
    params["__ow_headers"]["cookie"] = json!("session=cookie-secret-0123456789");
    params["__ow_headers"]["x-require-whisk-auth"] = json!("whisk-shared-secret-0123456789");
    let env = [
        ("IMS_ACTION_SEAL", seal.to_string_lossy().into_owned()),
        ("__OW_ACTION_NAME", ACTION_NAME.into()),
        ("TMPDIR", tmp.to_string_lossy().into_owned()),
        ("IMS_ACTION_ALLOW_HOSTS", w.emu.host_port()),
        ("__OW_DEADLINE", (now_ms() + 60_000).to_string()),
        ("__OW_ACTIVATION_ID", "web-trace".into()),
    ];
    let first = run_oneshot(&params, &env);
    // A second process uses the cached token (another code path that could log it).
    let second = run_oneshot(&params, &env);
    let _ = std::fs::remove_dir_all(&tmp);
    for out in [&first, &second] {
        let r = last_line(out);
        assert_eq!(status(&r), 200, "{r}");
        assert_eq!(r["body"]["jcr:title"], "Demo");
    }
    let logs = format!(
        "{}{}{}{}",
        String::from_utf8_lossy(&first.stdout),
        String::from_utf8_lossy(&first.stderr),
        String::from_utf8_lossy(&second.stdout),
        String::from_utf8_lossy(&second.stderr),
    );
    // Trace logging was on: the (redacted) params and the web request were logged.
    assert!(logs.contains("web request: post"), "{logs}");
    assert!(logs.contains("params:"), "{logs}");
    assert!(logs.contains("x-gw-ims-org-id"), "{logs}");
    // ...but no secret: the caller's token, its cookie, our client secret, the IMS token.
    assert!(!logs.contains(CALLER_TOKEN), "{logs}");
    assert!(!logs.contains("cookie-secret-0123456789"), "{logs}");
    assert!(!logs.contains("whisk-shared-secret-0123456789"), "{logs}");
    assert!(!logs.contains(w.env["OAUTHS2S_CLIENT_SECRET"].as_str()), "{logs}");
    let issued: Vec<String> = w
        .emu
        .requests("/content")
        .iter()
        .filter_map(|r| {
            r.header("authorization")
                .map(|a| a.trim_start_matches("Bearer ").to_string())
        })
        .collect();
    assert_eq!(issued.len(), 2);
    for token in &issued {
        assert!(!logs.contains(token.as_str()), "the IMS token was logged");
    }
    assert_eq!(w.emu.tokens_issued(&w.env["OAUTHS2S_CLIENT_ID"]), 1);
}

#[test]
fn deadlines_apply_to_web_activations_too() {
    let w = World::new();
    let bound = w.oauth();
    let activation = Activation {
        deadline_ms: Some(now_ms() - 1),
        ..activation()
    };
    let r = w.sealed_action(&bound).handle(
        web(bound, "get", Some(w.env["IMS_ORG_ID"].as_str()), json!({})),
        &activation,
    );
    assert_eq!(status(&r), 504, "{r}");
    assert_eq!(w.emu.request_count("/"), 0);
}

/// `ALLOWED_IMS_ORGS` in the process environment (an init param under actionloop) wins over
/// the param, which a caller of a web action without `final` could otherwise widen.
#[test]
fn allowed_orgs_from_the_environment_cannot_be_widened_by_params() {
    let w = World::new();
    let tmp = temp_path("tmpdir");
    std::fs::create_dir_all(&tmp).unwrap();
    let org = w.env["IMS_ORG_ID"].clone();
    let stranger = "STRANGER000000000000@AdobeOrg";
    let env = [
        ("TMPDIR", tmp.to_string_lossy().into_owned()),
        ("IMS_ACTION_ALLOW_HOSTS", w.emu.host_port()),
        ("ALLOWED_IMS_ORGS", org.clone()),
        ("__OW_DEADLINE", (now_ms() + 60_000).to_string()),
    ];
    for param in [
        json!(null),
        json!(""),
        json!(stranger),
        json!(format!("{stranger},{org}")),
    ] {
        let bound = with(w.oauth(), json!({"ALLOWED_IMS_ORGS": param}));
        let seal = w.seal_file(&bound);
        let mut env = env.to_vec();
        env.push(("IMS_ACTION_SEAL", seal.to_string_lossy().into_owned()));
        env.push(("__OW_ACTION_NAME", ACTION_NAME.into()));
        let r = last_line(&run_oneshot(&web(bound, "get", Some(stranger), json!({})), &env));
        assert_eq!(status(&r), 403, "param {param}: {r}");
    }
    assert_eq!(w.emu.request_count("/"), 0);
    let seal = w.seal_file(&w.oauth());
    let mut env = env.to_vec();
    env.push(("IMS_ACTION_SEAL", seal.to_string_lossy().into_owned()));
    env.push(("__OW_ACTION_NAME", ACTION_NAME.into()));
    let r = last_line(&run_oneshot(&web(w.oauth(), "get", Some(&org), json!({})), &env));
    let _ = std::fs::remove_dir_all(&tmp);
    assert_eq!(status(&r), 200, "{r}");
}

/// What a web caller is told of any seal mismatch: the same words whatever the inputs.
const WEB_SEAL_ANSWER: &str = "this request's parameters differ from the deployment's sealed configuration: \
     callers may not set or change its inputs (the activation log names them for the operator)";

/// The operator's answer (a non-web call, and the log of a web one): one 400 naming every input
/// added, changed or missing, and the fix.
#[test]
fn the_seal_names_every_added_changed_and_missing_input_with_the_fix() {
    let w = World::new();
    let bound = with(w.oauth(), json!({"OPERATION": "aem-quota"}));
    let a = w.sealed_action(&bound);
    // As `aio rt action update --param LOG_LEVEL debug` and a `wsk action update -p` that
    // replaced the list (dropping IMS_ORG_ID) and changed OPERATION leave it.
    let mut deployed = without(bound.clone(), &["IMS_ORG_ID"]);
    deployed["LOG_LEVEL"] = json!("debug");
    deployed["HTTP_TIMEOUT_MS"] = json!(5000);
    deployed["OPERATION"] = json!("aem-get");
    let r = a.handle(deployed.clone(), &activation());
    assert_eq!(status(&r), 400, "{r}");
    assert_eq!(
        message(&r),
        "the deployment's parameters differ from what was sealed at build time: added \
         'HTTP_TIMEOUT_MS', 'LOG_LEVEL'; changed 'OPERATION'; missing 'IMS_ORG_ID'. On a non-web \
         call no caller can add an input: the deployment was changed after its build (an action \
         update, or aio app deploy --no-build after a .env edit). Rebuild and redeploy: `make \
         package` then `scripts/deploy-wsk.sh`, or `aio app deploy` (never --no-build)."
    );
    // One kind alone reads the same way.
    let r = a.handle(with(bound.clone(), json!({"LOG_LEVEL": "debug"})), &activation());
    assert!(
        message(&r).starts_with(
            "the deployment's parameters differ from what was sealed at build time: added 'LOG_LEVEL'. "
        ),
        "{r}"
    );
    assert_eq!(w.emu.request_count("/"), 0);

    // A web call of the same deployment: the caller is told nothing of the names; the log is.
    let tmp = temp_path("tmpdir");
    std::fs::create_dir_all(&tmp).unwrap();
    let seal = w.seal_file(&bound);
    let out = run_oneshot(
        &web(deployed, "get", None, json!({})),
        &[
            ("IMS_ACTION_SEAL", seal.to_string_lossy().into_owned()),
            ("__OW_ACTION_NAME", ACTION_NAME.into()),
            ("TMPDIR", tmp.to_string_lossy().into_owned()),
            ("IMS_ACTION_ALLOW_HOSTS", w.emu.host_port()),
        ],
    );
    let _ = std::fs::remove_dir_all(&tmp);
    let r = last_line(&out);
    assert_eq!(status(&r), 400, "{r}");
    assert_eq!(message(&r), WEB_SEAL_ANSWER);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        log.contains("added 'HTTP_TIMEOUT_MS', 'LOG_LEVEL'; changed 'OPERATION'; missing 'IMS_ORG_ID'"),
        "{log}"
    );
    assert_eq!(w.emu.request_count("/"), 0);
}

/// Where the platform merges a caller's params over the bound ones, a web caller guessing a
/// bound input's value wrongly is answered exactly as one adding an input that is not bound:
/// the answer does not tell which inputs a deployment binds (a right guess is, to the action,
/// the bound value itself: see docs/deploying-changes.md).
#[test]
fn a_web_caller_cannot_tell_a_wrong_guess_from_an_unbound_input() {
    let w = World::new();
    let org = w.env["IMS_ORG_ID"].clone();
    let bound = with(
        w.oauth(),
        json!({"IMS_ACTION_TOKEN_STORE": "redis://:weak-password@127.0.0.1:1/0"}),
    );
    let a = w.sealed_action(&bound);
    let mut answers = Vec::new();
    for (name, guess) in [
        ("IMS_ACTION_TOKEN_STORE", "redis://:guess@127.0.0.1:1/0"),
        ("LOG_LEVEL", "debug"),
        ("JWT_CLIENT_SECRET", "guess"),
    ] {
        let mut p = web(bound.clone(), "get", Some(&org), json!({}));
        p[name] = json!(guess);
        let r = a.handle(p, &activation());
        answers.push(r.to_string());
    }
    assert!(answers.iter().all(|r| *r == answers[0]), "{answers:#?}");
    assert!(answers[0].contains(WEB_SEAL_ANSWER), "{}", answers[0]);
    assert_eq!(w.emu.request_count("/"), 0);
}

/// A caller from a refused org is answered 403 before anything about the configuration, even
/// when it also sends configuration (or widens the org list).
#[test]
fn a_refused_org_gets_403_before_any_seal_answer() {
    let w = World::new();
    let org = w.env["IMS_ORG_ID"].clone();
    let stranger = "STRANGER000000000000@AdobeOrg";
    let bound = with(w.oauth(), json!({"ALLOWED_IMS_ORGS": org}));
    let a = w.sealed_action(&bound);
    for extra in [
        json!({"LOG_LEVEL": "debug"}),
        json!({"OPERATION": "aem-get"}),
        json!({"ALLOWED_IMS_ORGS": stranger, "LOG_LEVEL": "debug"}),
        json!({"ALLOWED_IMS_ORGS": null}),
    ] {
        let mut p = web(bound.clone(), "get", Some(stranger), json!({}));
        for (k, v) in extra.as_object().unwrap() {
            p[k] = v.clone();
        }
        let r = a.handle(p, &activation());
        assert_eq!(status(&r), 403, "{extra}: {r}");
    }
    // An action the seal does not know: still 403 first.
    let r = a.handle(
        web(bound.clone(), "get", Some(stranger), json!({})),
        &Activation {
            action_name: Some("/guest/ims-action/other".into()),
            ..activation()
        },
    );
    assert_eq!(status(&r), 403, "{r}");
    assert_eq!(w.emu.request_count("/"), 0);
}

/// A misconfigured deployment tells a web caller only that: no seal path, no other action's
/// name (the operator reads them in the log, and gets them on a non-web call).
#[test]
fn configuration_errors_name_no_path_or_action_to_web_callers() {
    let w = World::new();
    let bound = w.oauth();
    let a = w.sealed_action(&bound);
    let other = Activation {
        action_name: Some("/guest/ims-action/other".into()),
        ..activation()
    };
    let r = a.handle(web(bound.clone(), "get", None, json!({})), &other);
    assert_eq!(status(&r), 500, "{r}");
    assert_eq!(
        message(&r),
        "configuration error: this deployment is misconfigured; its operator finds the cause in \
         the activation log"
    );
    let operator = a.handle(bound.clone(), &other);
    assert!(message(&operator).contains("'other'"), "{operator}");

    // A seal path that is not a file (a directory here), through the binary.
    let dir = temp_path("seal-dir");
    std::fs::create_dir_all(&dir).unwrap();
    let dir_s = dir.to_string_lossy().into_owned();
    let env = [
        ("IMS_ACTION_SEAL", dir_s.clone()),
        ("__OW_ACTION_NAME", ACTION_NAME.into()),
        ("IMS_ACTION_ALLOW_HOSTS", w.emu.host_port()),
    ];
    let web_out = run_oneshot(&web(bound.clone(), "get", None, json!({})), &env);
    let plain_out = run_oneshot(&bound, &env);
    let _ = std::fs::remove_dir_all(&dir);
    let r = last_line(&web_out);
    assert_eq!(status(&r), 500, "{r}");
    assert!(!r.to_string().contains(&dir_s), "{r}");
    assert!(message(&r).contains("misconfigured"), "{r}");
    assert!(
        String::from_utf8_lossy(&web_out.stderr).contains("is not a regular file"),
        "the log says why"
    );
    let r = last_line(&plain_out);
    assert!(
        message(&r).contains(&dir_s) && message(&r).contains("not a regular file"),
        "{r}"
    );
    assert_eq!(w.emu.request_count("/"), 0);
}
