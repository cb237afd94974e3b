//! Secrets stay secret. Every end-to-end scenario (each credential kind × each operation it
//! supports, and the error paths: IMS refusals, API 401 → refresh, 403, 500, malformed IMS
//! JSON, timeouts, retries, web requests carrying the caller's own `Authorization`) runs through
//! the `ims-action` binary, in one-shot mode and through the local `invoke` CLI, with TRACE
//! logging switched on by the `LOG_LEVEL` param and, separately, by `RUST_LOG` in the
//! environment. Tests run debug builds, where TRACE is compiled in (release builds drop it), so
//! this is the strong case: ureq-proto would hexdump raw requests there if it were let through.
//!
//! Then stdout, stderr and the result are searched for every secret the run involved: client
//! secrets, each base64 line of the private keys and the whole base64-of-PEM input, the AEM
//! service-credential JSON, the signed JWT assertions and every access token the emulator saw
//! (taken from its recorded requests), the developer token, the caller's authorization header
//! and cookie. Each is looked for raw, base64 (standard and URL-safe, padded or not),
//! percent-encoded and hex, in the text as printed, with whitespace removed, and inside
//! hexdumps decoded back to bytes (ureq-proto's TRACE dump splits a token over 16-byte lines).

mod common;

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Output;
use std::time::Duration;

use adobe_emulator::{Fault, fixtures};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use common::*;
use serde_json::{Value, json};

/// Strings that must never be printed or returned, each in every encoding we look for.
#[derive(Default)]
struct Secrets {
    needles: Vec<(String, String)>,
}

impl Secrets {
    fn add(&mut self, label: &str, secret: &str) {
        assert!(
            secret.len() >= PREFIX,
            "{label}: too short to search for reliably"
        );
        // As a form body carries it (what IMS requests are).
        let percent: String = form_urlencoded::byte_serialize(secret.as_bytes()).collect();
        let forms = [
            ("raw", secret.to_string()),
            ("base64", STANDARD.encode(secret)),
            ("base64, no padding", STANDARD_NO_PAD.encode(secret)),
            ("base64url", URL_SAFE.encode(secret)),
            ("base64url, no padding", URL_SAFE_NO_PAD.encode(secret)),
            ("percent-encoded", percent.clone()),
            (
                "hex",
                secret.bytes().map(|b| format!("{b:02x}")).collect::<String>(),
            ),
            ("form-encoded", percent.replace("%20", "+")),
        ];
        for (form, needle) in forms {
            if !self.needles.iter().any(|(_, n)| *n == needle) {
                self.needles.push((format!("{label} ({form})"), needle));
            }
        }
    }

    /// Each base64 body line of a PEM block (short last lines are too common to search for).
    fn add_pem_body(&mut self, label: &str, pem: &str) {
        let lines: Vec<&str> = fixtures::pem_body_lines(pem)
            .into_iter()
            .filter(|l| l.len() >= 16)
            .collect();
        assert!(lines.len() >= 10, "{label}: not a PEM key");
        for (i, line) in lines.into_iter().enumerate() {
            self.add(&format!("{label} line {}", i + 1), line);
        }
    }

    /// A JWT-shaped token: the whole of it, and its signature alone.
    fn add_jwt(&mut self, label: &str, token: &str) {
        self.add(label, token);
        if let Some(signature) = token
            .rsplit('.')
            .next()
            .filter(|s| s.len() >= PREFIX && *s != token)
        {
            self.add(&format!("{label} signature"), signature);
        }
    }

    /// Needles by their first [`PREFIX`] bytes, so that a text is scanned once for all of them.
    fn index(&self) -> HashMap<&[u8], Vec<usize>> {
        let mut index: HashMap<&[u8], Vec<usize>> = HashMap::new();
        for (i, (_, needle)) in self.needles.iter().enumerate() {
            index.entry(&needle.as_bytes()[..PREFIX]).or_default().push(i);
        }
        index
    }

    /// Panics naming every secret found in `text` (never the secret itself), as printed, with
    /// hexdumps decoded back to bytes, and with all whitespace removed (wrapped lines).
    fn assert_absent(&self, index: &HashMap<&[u8], Vec<usize>>, what: &str, text: &str) {
        let squeezed: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        let mut views = vec![
            (String::new(), text.as_bytes().to_vec()),
            (" (whitespace removed)".to_string(), squeezed.into_bytes()),
        ];
        views.extend(
            undump(text)
                .into_iter()
                .map(|bytes| (" (in a hexdump)".to_string(), bytes)),
        );
        for (how, bytes) in &views {
            self.assert_absent_in(index, &format!("{what}{how}"), bytes);
        }
    }

    fn assert_absent_in(&self, index: &HashMap<&[u8], Vec<usize>>, what: &str, text: &[u8]) {
        let mut found: Vec<&str> = Vec::new();
        for start in 0..text.len().saturating_sub(PREFIX - 1) {
            let Some(candidates) = index.get(&text[start..start + PREFIX]) else {
                continue;
            };
            for &i in candidates {
                let (label, needle) = &self.needles[i];
                if text[start..].starts_with(needle.as_bytes()) && !found.contains(&label.as_str()) {
                    found.push(label);
                }
            }
        }
        assert!(found.is_empty(), "{what} leaks: {}", found.join(", "));
    }
}

/// The bytes behind hexdumps, one buffer per run of dump lines: ureq-proto logs raw traffic
/// at TRACE as `[TRACE ureq_proto::util] 504f 5354 202f …  POST./…`, 16 bytes a line, so a
/// token in it never appears whole in the text. A dump line is an optional `[…]` log prefix,
/// then groups of hex digits (`-` for padding) of 2 or 4 characters, then anything.
fn undump(text: &str) -> Vec<Vec<u8>> {
    let mut streams = Vec::new();
    let mut current: Vec<u8> = Vec::new();
    for line in text.lines() {
        let rest = match line.find("] ") {
            Some(i) if line.starts_with('[') => &line[i + 2..],
            _ => line,
        };
        let mut bytes = Vec::new();
        for group in rest.split(' ') {
            let is_group =
                matches!(group.len(), 2 | 4) && group.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-');
            if !is_group {
                break;
            }
            for pair in group.as_bytes().chunks(2) {
                if let Ok(b) = u8::from_str_radix(std::str::from_utf8(pair).unwrap_or("--"), 16) {
                    bytes.push(b);
                }
            }
        }
        if bytes.len() >= 4 {
            current.extend(bytes);
        } else if !current.is_empty() {
            streams.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        streams.push(current);
    }
    streams
}

/// Needles are at least this long; the index keys on their first bytes.
const PREFIX: usize = 12;

/// What every world's credentials hold.
fn static_secrets(w: &World) -> Secrets {
    let mut s = Secrets::default();
    s.add("OAuth client secret", &w.demo.oauth.client_secret);
    s.add("JWT client secret", &w.demo.jwt.client_secret);
    s.add("AEM client secret", &w.demo.aem.client_secret);
    s.add_pem_body("PKCS#8 private key", &w.demo.jwt_key.pkcs8_pem);
    s.add_pem_body("PKCS#1 private key", &w.demo.jwt_key.pkcs1_pem);
    s.add("JWT_PRIVATE_KEY input", &w.env["JWT_PRIVATE_KEY"]);
    s.add("AEM_SERVICE_CREDENTIALS input", &w.env["AEM_SERVICE_CREDENTIALS"]);
    s.add_jwt("developer token", &w.demo.dev_token);
    s.add(
        "the truncated token of Fault::Malformed",
        "eyJ4NXUiOiJpbXNfbmExLWtleS1hdC0xLmNlciIs",
    );
    s
}

/// What the emulator saw: every bearer token sent to it, every JWT assertion and client secret
/// posted to IMS.
fn harvested_secrets(w: &World, s: &mut Secrets) -> (usize, usize) {
    let mut tokens = 0;
    let mut assertions = 0;
    for req in w.emu.requests("/") {
        if let Some(auth) = req.header("authorization") {
            let token = auth.strip_prefix("Bearer ").unwrap_or(auth);
            s.add(&format!("authorization header sent to {}", req.path), auth);
            s.add_jwt(&format!("access token sent to {}", req.path), token);
            tokens += 1;
        }
        if req.path.starts_with("/ims/") {
            for (k, v) in req.form() {
                match k.as_str() {
                    "jwt_token" => {
                        s.add_jwt("signed JWT assertion", &v);
                        assertions += 1;
                    }
                    "client_secret" => s.add("client secret posted to IMS", &v),
                    _ => {}
                }
            }
        }
    }
    (tokens, assertions)
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Mode {
    /// `ims-action '<params>'`, as dockerskeleton runs it.
    OneShot,
    /// `ims-action invoke --params FILE --env FILE`.
    Invoke,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Trace {
    /// `LOG_LEVEL: "trace"` in the params.
    Param,
    /// `RUST_LOG=trace` in the process environment.
    Env,
}

struct Scenario {
    name: String,
    params: Value,
    faults: Vec<(&'static str, Fault, u32)>,
    status: u64,
}

fn scenario(name: &str, params: Value, status: u64) -> Scenario {
    Scenario {
        name: name.to_string(),
        params,
        faults: Vec::new(),
        status,
    }
}

impl Scenario {
    fn fault(mut self, path: &'static str, fault: Fault, count: u32) -> Scenario {
        self.faults.push((path, fault, count));
        self
    }
}

fn status_fault(status: u16) -> Fault {
    Fault::Status {
        status,
        retry_after: None,
        body: None,
    }
}

fn fresh_dir(what: &str) -> PathBuf {
    let dir = temp_path(what);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn run(w: &World, env_file: &str, params: &Value, mode: Mode, trace: Trace) -> Output {
    let params = match trace {
        Trace::Param => with(params.clone(), json!({"LOG_LEVEL": "trace"})),
        Trace::Env => params.clone(),
    };
    // A fresh token-file folder per run: every run fetches its own tokens.
    let tmp = fresh_dir("tmp");
    let tmp_s = tmp.to_string_lossy().into_owned();
    let allow = w.emu.host_port();
    let mut env: Vec<(&str, &str)> = vec![("TMPDIR", tmp_s.as_str())];
    if trace == Trace::Env {
        env.push(("RUST_LOG", "trace"));
    }
    // A web call needs a sealed deployment: it bound everything but the web params.
    let seal = is_web(&params).then(|| w.seal_file(&bound(&params)));
    let seal_s = seal
        .as_ref()
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    let out = match mode {
        Mode::OneShot => {
            env.push(("IMS_ACTION_ALLOW_HOSTS", allow.as_str()));
            if seal.is_some() {
                env.push(("IMS_ACTION_SEAL", seal_s.as_str()));
                env.push(("__OW_ACTION_NAME", ACTION_NAME));
            }
            run_bin(&[&params.to_string()], &env, None)
        }
        Mode::Invoke => {
            let file = temp_path("params.json");
            std::fs::write(&file, params.to_string()).expect("params file");
            let file_s = file.to_string_lossy().into_owned();
            let out = run_bin(&["invoke", "--params", &file_s, "--env", env_file], &env, None);
            let _ = std::fs::remove_file(&file);
            out
        }
    };
    let _ = std::fs::remove_dir_all(&tmp);
    out
}

/// Runs every scenario in both modes with both ways of asking for TRACE, and in-process; then
/// searches everything printed and returned.
fn check_scenarios(w: &World, scenarios: Vec<Scenario>, mut extra: Secrets) {
    let env_file = w.env_file();
    let env_file_s = env_file.to_string_lossy().into_owned();
    let mut printed: Vec<(String, String)> = Vec::new();
    for s in &scenarios {
        for mode in [Mode::OneShot, Mode::Invoke] {
            for trace in [Trace::Param, Trace::Env] {
                let label = format!("{} [{mode:?}, trace via {trace:?}]", s.name);
                for (path, fault, count) in &s.faults {
                    w.emu.inject_fault(path, fault.clone(), *count);
                }
                let out = run(w, &env_file_s, &s.params, mode, trace);
                let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
                let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
                let result = last_line(&out);
                assert_eq!(status(&result), s.status, "{label}: {result}\n{stderr}");
                // Proof that verbose logging was live: the redacted params dump is a DEBUG line.
                // (A refused org is answered before any param is believed or dumped.)
                if s.status != 403 {
                    assert!(stderr.contains("params: {"), "{label}: no debug output\n{stderr}");
                }
                printed.push((format!("{label} stdout"), stdout));
                printed.push((format!("{label} stderr"), stderr));
            }
        }
        // In-process too: the result alone (logs there go to the test's own, absent, logger).
        for (path, fault, count) in &s.faults {
            w.emu.inject_fault(path, fault.clone(), *count);
        }
        // A fresh action (and token cache) per scenario: each one fetches its own token.
        let params = with(s.params.clone(), json!({"LOG_LEVEL": "trace"}));
        let result = w.sealed_action(&bound(&params)).handle(params, &activation());
        assert_eq!(status(&result), s.status, "{} [in-process]: {result}", s.name);
        printed.push((format!("{} [in-process] result", s.name), result.to_string()));
    }
    let _ = std::fs::remove_file(&env_file);

    let mut secrets = static_secrets(w);
    secrets.needles.append(&mut extra.needles);
    let (tokens, _) = harvested_secrets(w, &mut secrets);
    assert!(
        tokens > 0,
        "no bearer token reached the emulator: the scenarios did not run"
    );
    let index = secrets.index();
    for (what, text) in &printed {
        secrets.assert_absent(&index, what, text);
    }
}

fn health(params: Value, check: bool) -> Value {
    with(params, json!({"OPERATION": "health", "check": check}))
}

fn is_web(params: &Value) -> bool {
    params
        .as_object()
        .is_some_and(|m| m.keys().any(|k| k.starts_with("__ow_")))
}

/// What a deployment bound: the params without the web ones.
fn bound(params: &Value) -> Value {
    let mut b = params.clone();
    if let Value::Object(m) = &mut b {
        m.retain(|k, _| !k.starts_with("__ow_"));
    }
    b
}

fn analytics(params: Value) -> Value {
    with(
        params,
        json!({"OPERATION": "analytics-report", "ANALYTICS_COMPANY_ID": "demoorg0", "ANALYTICS_RSID": "demo.rsid"}),
    )
}

fn aem_get(params: Value) -> Value {
    with(
        params,
        json!({"OPERATION": "aem-get", "AEM_PATH": "/content/dam.json"}),
    )
}

/// The OAuth credential as App Builder injects it (`include-ims-credentials`).
fn injected(w: &World) -> Value {
    let o = &w.demo.oauth;
    with(
        without(w.oauth(), &OAUTH),
        json!({"__ims_oauth_s2s": {
            "client_id": o.client_id, "client_secret": o.client_secret,
            "org_id": o.org_id, "scopes": o.scopes[..4],
        }}),
    )
}

#[test]
fn no_credential_kind_leaks_a_secret_at_trace_level() {
    let w = World::new();
    let kinds = [
        ("OAuth S2S", w.oauth()),
        ("__ims_oauth_s2s", injected(&w)),
        ("JWT", w.jwt()),
        ("AEM service credentials", w.aem_credentials()),
    ];
    let mut scenarios = Vec::new();
    for (kind, params) in kinds {
        scenarios.push(scenario(&format!("{kind} aem-quota"), params.clone(), 200));
        scenarios.push(scenario(
            &format!("{kind} analytics-report"),
            analytics(params.clone()),
            200,
        ));
        scenarios.push(scenario(&format!("{kind} aem-get"), aem_get(params), 200));
    }
    scenarios.push(scenario("dev token aem-get", aem_get(w.dev_token()), 200));
    // The health report names every credential and, with check, gets every token and the quota.
    scenarios.push(scenario("health", health(w.all_credentials(), false), 200));
    scenarios.push(scenario("health, check", health(w.all_credentials(), true), 200));
    check_scenarios(&w, scenarios, Secrets::default());
    // Each kind fetched its own tokens: the JWT kinds signed assertions that were searched for.
    let mut s = Secrets::default();
    let (_, assertions) = harvested_secrets(&w, &mut s);
    assert!(assertions >= 6, "{assertions} JWT assertions");
}

#[test]
fn no_error_path_leaks_a_secret_at_trace_level() {
    let w = World::new();
    let wrong_secret = "p8e-wrong-0123456789abcdef0123";
    let caller_token = "caller-eyJ0eXAiOiJKV1QifQ.c2VjcmV0LWNhbGxlci10b2tlbg";
    let cookie = "session=caller-cookie-2f0b7c1d9e";
    let org = w.env["IMS_ORG_ID"].clone();
    let web = |allowed: &str| {
        with(
            w.oauth(),
            json!({
                "__ow_method": "post",
                "__ow_path": "/quota",
                "__ow_headers": {
                    "authorization": format!("Bearer {caller_token}"),
                    "cookie": cookie,
                    "x-gw-ims-org-id": org,
                },
                "__ow_query": "OPERATION=aem-quota",
                "ALLOWED_IMS_ORGS": allowed,
            }),
        )
    };
    let slow = Fault::Delay(Duration::from_millis(1500));
    // The JWT key with its middle cut out: still PEM-shaped, no longer a key.
    let key = &w.env["JWT_PRIVATE_KEY"];
    let damaged_key = format!("{}{}", &key[..key.len() / 3], &key[2 * key.len() / 3..]);
    let expired_aem = w.aem_credentials_expiring_in(-3);
    let scenarios = vec![
        scenario(
            "IMS 401 (OAuth, wrong secret)",
            with(w.oauth(), json!({"OAUTHS2S_CLIENT_SECRET": wrong_secret})),
            502,
        ),
        scenario(
            "IMS 401 (JWT, wrong secret)",
            with(w.jwt(), json!({"JWT_CLIENT_SECRET": wrong_secret})),
            502,
        ),
        scenario("quota 401 → refresh (OAuth)", w.oauth(), 200).fault("/adobe/stats", status_fault(401), 1),
        scenario("report 401 → refresh (JWT)", analytics(w.jwt()), 200).fault("/api/", status_fault(401), 1),
        scenario(
            "content 401 → refresh (AEM credentials)",
            aem_get(w.aem_credentials()),
            200,
        )
        .fault("/content/", status_fault(401), 1),
        scenario("content 401 (dev token, no refresh)", aem_get(w.dev_token()), 401).fault(
            "/content/",
            status_fault(401),
            1,
        ),
        scenario("quota 403", w.oauth(), 403).fault("/adobe/stats", status_fault(403), 1),
        scenario("report 500", analytics(w.oauth()), 502).fault("/api/", status_fault(500), 1),
        scenario("malformed IMS JSON", w.oauth(), 502).fault("/ims/", Fault::Malformed, 1),
        scenario("IMS timeout", with(w.jwt(), json!({"HTTP_TIMEOUT_MS": 300})), 504).fault(
            "/ims/",
            slow.clone(),
            3,
        ),
        scenario(
            "quota timeout",
            with(w.oauth(), json!({"HTTP_TIMEOUT_MS": 300})),
            504,
        )
        .fault("/adobe/stats", slow, 3),
        scenario("IMS 503, retried", w.oauth(), 200).fault("/ims/", status_fault(503), 2),
        scenario("quota 503, retried", w.oauth(), 200).fault("/adobe/stats", status_fault(503), 2),
        // Health reports a refusal, an expired certificate and a broken key as a 200.
        scenario(
            "health: IMS refusal, expired certificate, damaged key",
            health(
                with(
                    w.all_credentials(),
                    json!({
                        "OAUTHS2S_CLIENT_SECRET": wrong_secret,
                        "AEM_SERVICE_CREDENTIALS": expired_aem,
                        "JWT_PRIVATE_KEY": damaged_key,
                    }),
                ),
                true,
            ),
            200,
        ),
        scenario("health: IMS 503", health(w.all_credentials(), true), 200).fault(
            "/ims/",
            status_fault(503),
            3,
        ),
        scenario("web request, caller allowed", web(&org), 200),
        scenario("web request, caller refused", web("OTHER@AdobeOrg"), 403),
    ];
    let mut extra = Secrets::default();
    extra.add("wrong client secret", wrong_secret);
    extra.add("damaged JWT_PRIVATE_KEY input", &damaged_key);
    extra.add(
        "AEM_SERVICE_CREDENTIALS with an expired certificate",
        &expired_aem,
    );
    extra.add("caller's authorization header", &format!("Bearer {caller_token}"));
    extra.add("caller's bearer token", caller_token);
    extra.add("caller's cookie", cookie);
    check_scenarios(&w, scenarios, extra);
}

// ---- What an upstream sends back, however it encodes or cuts it --------------------------------

/// `text` without line breaks, real or JSON-escaped: how wrapped base64 is read back.
fn unwrapped(text: &str) -> String {
    text.replace("\\r", "")
        .replace("\\n", "")
        .replace(['\r', '\n'], "")
}

/// The characters of base64(`k` bytes + `secret` + …) that depend on `secret` alone.
fn base64_at(engine: &base64::engine::GeneralPurpose, secret: &str, k: usize) -> String {
    let mut padded = vec![b'x'; k];
    padded.extend_from_slice(secret.as_bytes());
    let encoded = engine.encode(&padded);
    encoded[(k * 8).div_ceil(6)..padded.len() * 8 / 6].to_string()
}

/// Asserts that no piece of `secret` can be read back from `text`: in it as printed, with line
/// breaks removed, percent-decoded once and twice, each searched for the secret raw and base64 at
/// each alignment, by a 24-character window from the middle of each form and by its last 24
/// characters (a quote of only its first 90 % still holds the middle).
fn unreadable(what: &str, text: &str, secret: &str) -> Result<(), String> {
    let flat = unwrapped(text);
    let decoded = percent_encoding::percent_decode_str(&flat)
        .decode_utf8_lossy()
        .into_owned();
    let twice = percent_encoding::percent_decode_str(&decoded)
        .decode_utf8_lossy()
        .into_owned();
    let mut forms = vec![secret.to_string()];
    for engine in [&STANDARD, &URL_SAFE] {
        for k in 0..3 {
            forms.push(base64_at(engine, secret, k));
        }
    }
    let views = [
        ("as printed", text),
        ("unwrapped", &flat),
        ("percent-decoded", &decoded),
        ("percent-decoded twice", &twice),
    ];
    for (how, seen) in views {
        for form in &forms {
            let mid = form.len() / 2;
            for needle in [&form[mid..mid + 24], &form[form.len() - 24..]] {
                if seen.contains(needle) {
                    return Err(format!("{what}: the token can be read back ({how}): {needle}"));
                }
            }
        }
    }
    Ok(())
}

/// An OAuth credential whose tokens are about `len` characters long: IMS tokens grow with the
/// scopes they carry, and real ones often pass 1 KiB.
fn oauth_with_token_of(w: &World, len: usize) -> Value {
    // The emulator's token with the demo scopes is about 1,000 characters; each of these scopes
    // adds 29 (22 characters in the payload, base64url-encoded).
    let scopes: Vec<String> = (0..len.saturating_sub(1000) / 29 + 1)
        .map(|i| format!("additional_scope_{i:04}"))
        .collect();
    let id = format!("long-token-client-{len}");
    w.emu.add_oauth_client(adobe_emulator::OAuthClient {
        client_id: id.clone(),
        scopes: scopes.clone(),
        ..w.demo.oauth.clone()
    });
    with(
        w.oauth(),
        json!({"OAUTHS2S_CLIENT_ID": id, "OAUTHS2S_CECREDENTIALS_METASCOPES": scopes.join(",")}),
    )
}

/// Runs `params` once (one-shot, TRACE via the param) with the AEM content API answering 200
/// with the request reflected through `encode`; returns (result, stderr, the token it sent).
fn echoed(w: &World, params: &Value, encode: fn(&str) -> String) -> (Value, String, String) {
    let content = "/content/";
    let before = w.emu.requests(content).len();
    w.emu
        .inject_fault(content, Fault::EchoEncoded { status: 200, encode }, 1);
    let out = run(w, "", &aem_get(params.clone()), Mode::OneShot, Trace::Param);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let result = last_line(&out);
    assert_eq!(status(&result), 200, "{result}\n{stderr}");
    assert!(stderr.contains("params: {"), "no TRACE output:\n{stderr}");
    let requests = w.emu.requests(content);
    assert_eq!(requests.len(), before + 1, "{result}");
    let token = requests[before]
        .header("authorization")
        .and_then(|a| a.strip_prefix("Bearer "))
        .expect("a bearer token")
        .to_string();
    (result, stderr, token)
}

/// Whether the echo came back in the result, masked (the test did not pass by missing it),
/// and nothing of the token can be read back from the result or the logs.
fn check_echo(what: &str, (result, stderr, token): (Value, String, String)) -> Result<(), String> {
    unreadable(&format!("{what}: result"), &result.to_string(), &token)?;
    unreadable(&format!("{what}: logs"), &stderr, &token)?;
    match result["body"]["message"].as_str() {
        Some(m) if m.contains("****") => Ok(()),
        _ => Err(format!("{what}: the echo did not come back masked: {result}")),
    }
}

#[test]
fn a_long_token_echoed_base64_encoded_never_comes_back() {
    let w = World::new();
    let mut failures = Vec::new();
    for len in [1100, 2500] {
        let params = oauth_with_token_of(&w, len);
        let echo = echoed(&w, &params, |t| STANDARD.encode(t));
        assert!(
            (len..len + 200).contains(&echo.2.len()),
            "a {}-character token",
            echo.2.len()
        );
        failures.extend(check_echo(&format!("a {len}-character token"), echo).err());
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn a_token_echoed_in_any_encoding_or_cut_short_never_comes_back() {
    fn every_byte(t: &str) -> String {
        t.bytes().map(|b| format!("%{b:02X}")).collect()
    }
    fn percent(t: &str) -> String {
        percent_encoding::utf8_percent_encode(t, percent_encoding::NON_ALPHANUMERIC).to_string()
    }
    fn wrapped(t: &str, width: usize, eol: &str) -> String {
        let lines: Vec<String> = t
            .as_bytes()
            .chunks(width)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect();
        lines.join(eol)
    }
    /// The text with the bearer token cut to its first 90 %.
    fn cut(t: &str) -> String {
        let start = t.find("Bearer ").expect("a bearer token") + 7;
        let end = t[start..].find(" |").map_or(t.len(), |e| start + e);
        format!("{}{}", &t[..start + (end - start) * 9 / 10], &t[end..])
    }
    type Encode = fn(&str) -> String;
    let encodings: [(&str, Encode); 8] = [
        ("every byte percent-encoded", every_byte),
        ("every byte, lower-case hex", |t| every_byte(t).to_lowercase()),
        ("percent-encoded twice", |t| percent(&percent(t))),
        ("every byte percent-encoded twice", |t| percent(&every_byte(t))),
        ("base64, MIME (76 columns, CRLF)", |t| {
            wrapped(&STANDARD.encode(t), 76, "\r\n")
        }),
        ("base64, PEM (64 columns, LF)", |t| {
            wrapped(&STANDARD.encode(t), 64, "\n")
        }),
        ("the first 90 %", cut),
        ("the first 90 %, base64", |t| STANDARD.encode(cut(t))),
    ];
    let w = World::new();
    // A token under 1 KiB (a short client id, one scope), whose encoded forms were searched
    // for before: what is new is only the encoding.
    w.emu.add_oauth_client(adobe_emulator::OAuthClient {
        client_id: "short-client".into(),
        scopes: vec!["openid".into()],
        ..w.demo.oauth.clone()
    });
    let params = with(
        w.oauth(),
        json!({"OAUTHS2S_CLIENT_ID": "short-client", "OAUTHS2S_CECREDENTIALS_METASCOPES": "openid"}),
    );
    let mut failures = Vec::new();
    for (what, encode) in encodings {
        let echo = echoed(&w, &params, encode);
        assert!(echo.2.len() < 1024, "{what}: a {}-character token", echo.2.len());
        failures.extend(check_echo(what, echo).err());
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn caller_text_cannot_break_a_log_line() {
    let w = World::new();
    let org = w.env["IMS_ORG_ID"].clone();
    let hostile = "a\u{2028}b\u{2029}c\u{85}d\u{9b}e\u{202e}f\r\n[ERROR] forged";
    let params = with(
        w.oauth(),
        json!({
            "__ow_method": "get",
            "__ow_path": format!("/quota{hostile}"),
            "__ow_headers": {"x-gw-ims-org-id": org, "user-agent": hostile, "x-request-id": hostile},
            "__ow_query": "OPERATION=aem-quota",
        }),
    );
    let out = run(&w, "", &params, Mode::OneShot, Trace::Param);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(stderr.contains("params: {"), "no DEBUG output:\n{stderr}");
    assert!(
        stderr.contains("user-agent"),
        "the dump lost the header:\n{stderr}"
    );
    for c in ['\u{2028}', '\u{2029}', '\u{85}', '\u{9b}', '\u{202e}', '\r'] {
        assert!(
            !stderr.contains(c),
            "U+{:04X} reached the log:\n{stderr:?}",
            u32::from(c)
        );
    }
    assert!(
        !stderr.lines().any(|l| l.starts_with("[ERROR] forged")),
        "{stderr}"
    );
}
