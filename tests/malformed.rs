//! Bad input never brings the action down. One table of malformed inputs — wrong types for
//! every input, empty and 1 MB strings, broken keys, broken JSON lines, lone surrogates,
//! invalid UTF-8, 10,000-level nesting, header injection attempts, path traversal, and exotic
//! upstream answers (HTML, truncated or absurd IMS JSON, 10 MB bodies) — each with the exact
//! status it must get and the name its message must contain.
//!
//! The table runs twice: in-process through `Action::handle` (raw lines through
//! `actionloop::serve`), and through ONE long-lived actionloop process of the binary, driven
//! like the OpenWhisk proxy drives it (no arguments, results on file descriptor 3, an empty
//! environment but for the allowlist), checking after every case that the same process still
//! answers a good activation.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use adobe_emulator::{Fault, fixtures, keys};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use common::*;
use ims_action::runtime::actionloop::serve;
use ims_action::{Action, Activation};
use serde_json::{Value, json};

enum Input {
    /// The params object (or any JSON value) of one activation.
    Params(Value),
    /// A raw activation line, as the proxy would write it (without its `\n`).
    Line(Vec<u8>),
}

struct Case {
    name: String,
    input: Input,
    /// The exact status of the answer.
    status: u64,
    /// What the error message must contain (the input at fault, or the upstream).
    names: String,
    /// Faults to inject into the emulator just before the case runs.
    faults: Vec<(&'static str, Fault, u32)>,
}

struct Table {
    cases: Vec<Case>,
}

impl Table {
    fn params(&mut self, name: &str, params: Value, status: u64, names: &str) -> &mut Case {
        self.push(name, Input::Params(params), status, names)
    }

    fn line(&mut self, name: &str, line: impl Into<Vec<u8>>, status: u64, names: &str) -> &mut Case {
        self.push(name, Input::Line(line.into()), status, names)
    }

    fn push(&mut self, name: &str, input: Input, status: u64, names: &str) -> &mut Case {
        assert!(
            !self.cases.iter().any(|c| c.name == name),
            "duplicate case {name}"
        );
        self.cases.push(Case {
            name: name.to_string(),
            input,
            status,
            names: names.to_string(),
            faults: Vec::new(),
        });
        self.cases.last_mut().expect("just pushed")
    }
}

impl Case {
    fn fault(&mut self, path: &'static str, fault: Fault, count: u32) -> &mut Case {
        self.faults.push((path, fault, count));
        self
    }
}

/// The AEM service credentials of the demo as an object.
fn aem_json(w: &World) -> Value {
    let bytes = STANDARD
        .decode(&w.env["AEM_SERVICE_CREDENTIALS"])
        .expect("base64");
    serde_json::from_slice(&bytes).expect("JSON")
}

fn aem_with(w: &World, edit: impl FnOnce(&mut Value)) -> Value {
    let mut creds = aem_json(w);
    edit(&mut creds);
    with(w.aem_credentials(), json!({ "AEM_SERVICE_CREDENTIALS": creds }))
}

/// 10,000 levels of `open`…`close` around `inner`.
fn nested(open: &str, close: &str, inner: &str) -> String {
    format!("{}{inner}{}", open.repeat(10_000), close.repeat(10_000))
}

/// A developer token whose own payload says it expired an hour ago.
fn expired_dev_token() -> String {
    let now = ims_action::time::Clock::system().now_ms();
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256"}"#),
        URL_SAFE_NO_PAD.encode(
            json!({"created_at": (now - 7_200_000).to_string(), "expires_in": "3600000"}).to_string()
        ),
        URL_SAFE_NO_PAD.encode("signature-bytes"),
    )
}

/// An IMS token answer with this body (HTTP 200), for a credential no other case uses, so that
/// no cached token hides the fault.
fn ims_answer(t: &mut Table, w: &World, n: usize, name: &str, body: Value, needle: &str) {
    let params = with(w.oauth(), json!({"IMS_ORG_ID": format!("IMS{n:04}@AdobeOrg")}));
    t.params(name, params, 502, needle).fault(
        "/ims/",
        Fault::Status {
            status: 200,
            retry_after: None,
            body: Some(body.to_string()),
        },
        1,
    );
}

fn cases(w: &World) -> Vec<Case> {
    let mut t = Table { cases: Vec::new() };
    let oauth = w.oauth();
    let jwt = w.jwt();
    let dev = w.dev_token();
    let mb = "a".repeat(1024 * 1024);
    let analytics = |p: Value| {
        with(
            p,
            json!({"OPERATION": "analytics-report", "ANALYTICS_COMPANY_ID": "demoorg0", "ANALYTICS_RSID": "demo.rsid"}),
        )
    };
    let aem_get = |p: Value| with(p, json!({"OPERATION": "aem-get"}));

    // ---- the params themselves
    t.params("params: an array", json!([1, 2]), 400, "'params'");
    t.params("params: a string", json!("OAUTHS2S_CLIENT_ID"), 400, "'params'");
    t.params("params: null", Value::Null, 400, "'params'");
    t.params("params: a number", json!(42), 400, "'params'");
    t.params("params: empty", json!({}), 400, "OAUTHS2S_CLIENT_ID");

    // ---- wrong types, every input
    let wrong: [(&str, Value); 4] = [
        ("a number", json!(7)),
        ("an object", json!({"a": 1})),
        ("an array", json!(["x"])),
        ("a boolean", json!(true)),
    ];
    let inputs: Vec<(&str, Value)> = vec![
        ("OAUTHS2S_CLIENT_ID", oauth.clone()),
        ("OAUTHS2S_CLIENT_SECRET", oauth.clone()),
        ("OAUTHS2S_CECREDENTIALS_METASCOPES", oauth.clone()),
        ("IMS_ORG_ID", oauth.clone()),
        ("IMS_BASE_URL", oauth.clone()),
        ("AEM_DATA_SERVICE_BASE_URL", oauth.clone()),
        ("ANALYTICS_BASE_URL", analytics(oauth.clone())),
        ("ANALYTICS_COMPANY_ID", analytics(oauth.clone())),
        ("ANALYTICS_RSID", analytics(oauth.clone())),
        ("AEM_AUTHOR_URL", aem_get(oauth.clone())),
        ("AEM_PATH", aem_get(oauth.clone())),
        ("OPERATION", oauth.clone()),
        ("AUTH_METHOD", oauth.clone()),
        ("JWT_CLIENT_ID", jwt.clone()),
        ("JWT_CLIENT_SECRET", jwt.clone()),
        ("JWT_TECHNICAL_ACCOUNT_ID", jwt.clone()),
        ("JWT_IMS_ORG", jwt.clone()),
        ("JWT_METASCOPES", jwt.clone()),
        ("JWT_PRIVATE_KEY", jwt.clone()),
        ("AEM_DEV_TOKEN", aem_get(dev.clone())),
    ];
    for (i, (input, base)) in inputs.iter().enumerate() {
        // Two wrong types per input, rotating, keep the table readable; every type is used.
        for (kind, v) in [&wrong[i % 4], &wrong[(i + 1) % 4]] {
            // The developer token may be the Developer Console's JSON object.
            if *input == "AEM_DEV_TOKEN" && v.is_object() {
                continue;
            }
            t.params(
                &format!("{input}: {kind}"),
                with(base.clone(), json!({ *input: v })),
                400,
                &format!("'{input}'"),
            );
        }
    }
    t.params(
        "HTTP_TIMEOUT_MS: an object",
        with(oauth.clone(), json!({"HTTP_TIMEOUT_MS": {"ms": 5}})),
        400,
        "'HTTP_TIMEOUT_MS'",
    );
    t.params(
        "AEM_SERVICE_CREDENTIALS: a number",
        json!({"AEM_SERVICE_CREDENTIALS": 5}),
        400,
        "'AEM_SERVICE_CREDENTIALS'",
    );
    t.params(
        "AEM_SERVICE_CREDENTIALS: an array",
        json!({"AEM_SERVICE_CREDENTIALS": [{}]}),
        400,
        "'AEM_SERVICE_CREDENTIALS'",
    );
    t.params(
        "ANALYTICS_REPORT: a number",
        with(analytics(oauth.clone()), json!({"ANALYTICS_REPORT": 3})),
        400,
        "'ANALYTICS_REPORT'",
    );
    t.params(
        "__ims_oauth_s2s: a number",
        json!({"__ims_oauth_s2s": 12}),
        400,
        "'__ims_oauth_s2s'",
    );
    t.params(
        "ALLOWED_IMS_ORGS: a number",
        with(
            oauth.clone(),
            json!({"__ow_method": "get", "ALLOWED_IMS_ORGS": 1}),
        ),
        400,
        "'ALLOWED_IMS_ORGS'",
    );

    // ---- empty strings
    for input in ["OAUTHS2S_CLIENT_ID", "OAUTHS2S_CLIENT_SECRET", "IMS_ORG_ID"] {
        t.params(
            &format!("{input}: blank"),
            with(oauth.clone(), json!({ input: "   " })),
            400,
            input,
        );
    }
    t.params(
        "JWT_PRIVATE_KEY: empty",
        with(jwt.clone(), json!({"JWT_PRIVATE_KEY": ""})),
        400,
        "JWT_PRIVATE_KEY",
    );
    t.params(
        "AEM_AUTHOR_URL: empty",
        with(aem_get(oauth.clone()), json!({"AEM_AUTHOR_URL": ""})),
        400,
        "AEM_AUTHOR_URL",
    );

    // ---- 1 MB strings
    for (input, base) in [
        ("OAUTHS2S_CLIENT_ID", oauth.clone()),
        ("OAUTHS2S_CLIENT_SECRET", oauth.clone()),
        ("IMS_BASE_URL", oauth.clone()),
        ("JWT_PRIVATE_KEY", jwt.clone()),
        ("AEM_PATH", aem_get(oauth.clone())),
        ("ANALYTICS_REPORT", analytics(oauth.clone())),
        ("AEM_DEV_TOKEN", aem_get(dev.clone())),
    ] {
        t.params(
            &format!("{input}: 1 MB"),
            with(base, json!({ input: mb })),
            400,
            &format!("'{input}'"),
        );
    }
    t.params(
        "AEM_SERVICE_CREDENTIALS: 1 MB of base64 junk",
        json!({"AEM_SERVICE_CREDENTIALS": mb}),
        400,
        "'AEM_SERVICE_CREDENTIALS'",
    );

    // ---- keys
    let pkcs8 = &w.demo.jwt_key.pkcs8_pem;
    let key = |k: &str| with(jwt.clone(), json!({ "JWT_PRIVATE_KEY": k }));
    t.params(
        "key: not base64",
        key("!!!not-base64!!!"),
        400,
        "'JWT_PRIVATE_KEY'",
    );
    t.params(
        "key: base64 of junk",
        key(&STANDARD.encode("definitely not a key")),
        400,
        "'JWT_PRIVATE_KEY'",
    );
    t.params(
        "key: truncated PEM",
        key(&pkcs8[..pkcs8.len() / 2]),
        400,
        "'JWT_PRIVATE_KEY'",
    );
    let lines: Vec<&str> = pkcs8.lines().collect();
    let gutted = [&lines[..3], &lines[lines.len() - 2..]].concat().join("\n");
    t.params(
        "key: PEM with its middle cut out",
        key(&gutted),
        400,
        "'JWT_PRIVATE_KEY'",
    );
    t.params(
        "key: truncated base64 of PEM",
        key(&STANDARD.encode(pkcs8)[..300]),
        400,
        "'JWT_PRIVATE_KEY'",
    );
    t.params(
        "key: a damaged CRT part (parses, cannot sign)",
        key(&fixtures::damaged_dp_pem(pkcs8)),
        400,
        "'JWT_PRIVATE_KEY'",
    );
    t.params("key: EC", key(&keys::ec_pkcs8_pem()), 400, "EC key");
    t.params(
        "key: Ed25519",
        key(&keys::ed25519_pkcs8_pem()),
        400,
        "'JWT_PRIVATE_KEY'",
    );
    t.params(
        "key: RSA 1024 bits",
        key(&keys::rsa(1024).pkcs8_pem),
        400,
        "'JWT_PRIVATE_KEY'",
    );
    t.params(
        "key: a certificate",
        key(&w.demo.aem_certificate_pem),
        400,
        "'JWT_PRIVATE_KEY'",
    );
    t.params(
        "key: encrypted",
        key(&fixtures::encrypted_pkcs8_pem()),
        400,
        "'JWT_PRIVATE_KEY'",
    );

    // ---- AEM service credentials
    t.params(
        "AEM JSON: not JSON",
        json!({"AEM_SERVICE_CREDENTIALS": "{\"integration\": oops"}),
        400,
        "'AEM_SERVICE_CREDENTIALS'",
    );
    t.params(
        "AEM JSON: base64 of not JSON",
        json!({"AEM_SERVICE_CREDENTIALS": STANDARD.encode("integration: yaml?")}),
        400,
        "'AEM_SERVICE_CREDENTIALS'",
    );
    t.params(
        "AEM JSON: integration a string",
        aem_with(w, |c| c["integration"] = json!("x")),
        400,
        "'AEM_SERVICE_CREDENTIALS'",
    );
    t.params(
        "AEM JSON: no privateKey",
        aem_with(w, |c| {
            c["integration"]
                .as_object_mut()
                .expect("object")
                .remove("privateKey");
        }),
        400,
        "AEM_SERVICE_CREDENTIALS.integration.privateKey",
    );
    t.params(
        "AEM JSON: imsEndpoint a number",
        aem_with(w, |c| c["integration"]["imsEndpoint"] = json!(443)),
        400,
        "'AEM_SERVICE_CREDENTIALS.integration.imsEndpoint'",
    );
    t.params(
        "AEM JSON: a privateKey with a damaged CRT part",
        aem_with(w, |c| {
            c["integration"]["privateKey"] = json!(fixtures::damaged_dp_pem(&w.demo.jwt_key.pkcs1_pem))
        }),
        400,
        "'AEM_SERVICE_CREDENTIALS'",
    );
    t.params(
        "AEM JSON: an EC privateKey",
        aem_with(w, |c| {
            c["integration"]["privateKey"] = json!(keys::ec_pkcs8_pem())
        }),
        400,
        "EC key",
    );
    t.params(
        "AEM JSON: clientSecret with a line break",
        aem_with(w, |c| {
            c["integration"]["technicalAccount"]["clientSecret"] = json!("p8e-a\r\nb")
        }),
        400,
        "'AEM_SERVICE_CREDENTIALS.integration.technicalAccount.clientSecret'",
    );

    // ---- operations, paths, header injection
    t.params(
        "OPERATION: unknown",
        with(oauth.clone(), json!({"OPERATION": "delete-everything"})),
        400,
        "'OPERATION'",
    );
    t.params(
        "OPERATION: aem-quota with a developer token",
        with(dev.clone(), json!({"OPERATION": "aem-quota"})),
        400,
        "'OPERATION'",
    );
    t.params(
        "AUTH_METHOD: unknown",
        with(oauth.clone(), json!({"AUTH_METHOD": "basic"})),
        400,
        "'AUTH_METHOD'",
    );
    for (n, path) in [
        "/content/../etc/passwd",
        "/content/%2e%2e/%2E%2E/etc",
        "//evil.example/x",
        "/a\\..\\b",
        "content/dam.json",
        "/a\r\nX-Injected: 1",
        "/content/dam.json#frag",
    ]
    .into_iter()
    .enumerate()
    {
        t.params(
            &format!("AEM_PATH: bad #{n}"),
            with(aem_get(oauth.clone()), json!({ "AEM_PATH": path })),
            400,
            "'AEM_PATH'",
        );
    }
    let org = w.env["IMS_ORG_ID"].clone();
    for (input, base) in [
        ("IMS_ORG_ID", oauth.clone()),
        ("JWT_IMS_ORG", jwt.clone()),
        ("ANALYTICS_COMPANY_ID", analytics(oauth.clone())),
        ("OAUTHS2S_CLIENT_ID", oauth.clone()),
    ] {
        t.params(
            &format!("{input}: CR/LF header injection"),
            with(base, json!({ input: format!("{org}\r\nX-Evil: 1") })),
            400,
            &format!("'{input}'"),
        );
    }
    t.params(
        "OAUTHS2S_CLIENT_SECRET: a line break",
        with(oauth.clone(), json!({"OAUTHS2S_CLIENT_SECRET": "p8e-a\nb"})),
        400,
        "'OAUTHS2S_CLIENT_SECRET'",
    );
    t.params(
        "__ims_oauth_s2s.client_id: CR/LF",
        json!({"__ims_oauth_s2s": {"client_id": "a\r\nb", "client_secret": "s", "scopes": ["openid"]}}),
        400,
        "'__ims_oauth_s2s.client_id'",
    );
    t.params(
        "__ims_oauth_s2s: broken JSON text",
        json!({"__ims_oauth_s2s": "{\"client_id\": "}),
        400,
        "'__ims_oauth_s2s'",
    );
    t.params(
        "__ims_oauth_s2s.scopes: numbers",
        json!({"__ims_oauth_s2s": {"client_id": "i", "client_secret": "s", "scopes": [1, 2]}}),
        400,
        "'__ims_oauth_s2s.scopes'",
    );
    t.params(
        "ANALYTICS_COMPANY_ID: a path",
        with(
            analytics(oauth.clone()),
            json!({"ANALYTICS_COMPANY_ID": "../admin"}),
        ),
        400,
        "'ANALYTICS_COMPANY_ID'",
    );
    t.params(
        "ANALYTICS_REPORT: an array in a string",
        with(analytics(oauth.clone()), json!({"ANALYTICS_REPORT": "[1,2]"})),
        400,
        "'ANALYTICS_REPORT'",
    );
    t.params(
        "ANALYTICS_REPORT: no rsid",
        with(
            analytics(oauth.clone()),
            json!({"ANALYTICS_REPORT": {"dimension": "x"}}),
        ),
        400,
        "'ANALYTICS_REPORT'",
    );
    t.params(
        "AEM_DEV_TOKEN: spaces",
        with(aem_get(dev.clone()), json!({"AEM_DEV_TOKEN": "abc def ghi"})),
        400,
        "'AEM_DEV_TOKEN'",
    );
    t.params(
        "AEM_DEV_TOKEN: expired",
        with(
            aem_get(dev.clone()),
            json!({"AEM_DEV_TOKEN": expired_dev_token()}),
        ),
        400,
        "'AEM_DEV_TOKEN'",
    );
    t.params(
        "AEM_DEV_TOKEN: broken JSON",
        with(
            aem_get(dev.clone()),
            json!({"AEM_DEV_TOKEN": "{\"accessToken\": "}),
        ),
        400,
        "'AEM_DEV_TOKEN'",
    );
    for (v, n) in [
        (json!("abc"), "text"),
        (json!(-5), "negative"),
        (json!(0), "zero"),
    ] {
        t.params(
            &format!("HTTP_TIMEOUT_MS: {n}"),
            with(oauth.clone(), json!({ "HTTP_TIMEOUT_MS": v })),
            400,
            "'HTTP_TIMEOUT_MS'",
        );
    }
    t.params(
        "HTTP_TIMEOUT_MS: a trillion",
        with(oauth.clone(), json!({"HTTP_TIMEOUT_MS": 1_000_000_000_000u64})),
        400,
        "'HTTP_TIMEOUT_MS'",
    );

    // ---- web requests
    t.params(
        "__ow_body: broken JSON",
        with(
            oauth.clone(),
            json!({"__ow_method": "post", "CALLER_INPUTS": "OPERATION", "__ow_body": "{\"OPERATION\": "}),
        ),
        400,
        "'__ow_body'",
    );
    t.params(
        "__ow_body: base64 of broken JSON",
        with(
            oauth.clone(),
            json!({"__ow_method": "post", "CALLER_INPUTS": "OPERATION", "__ow_body": STANDARD.encode("{\"OPERATION\"")}),
        ),
        400,
        "'__ow_body'",
    );
    t.params(
        "__ow_body: a NUL",
        with(
            oauth.clone(),
            json!({"__ow_method": "post", "CALLER_INPUTS": "OPERATION", "__ow_body": "a=\u{0}"}),
        ),
        400,
        "'__ow_body'",
    );
    t.params(
        "__ow_body: broken JSON, no caller input opted in (the body is not read)",
        with(
            oauth.clone(),
            json!({"__ow_method": "post", "__ow_body": "{\"OPERATION\": "}),
        ),
        200,
        "",
    );
    t.params(
        "__ow_headers: a string, orgs restricted",
        with(
            oauth.clone(),
            json!({"__ow_method": "get", "__ow_headers": "x-gw-ims-org-id: x", "ALLOWED_IMS_ORGS": org}),
        ),
        403,
        "x-gw-ims-org-id",
    );

    // ---- tolerated oddities: ignored, the call succeeds
    t.params(
        "LOG_LEVEL: a number",
        with(oauth.clone(), json!({"LOG_LEVEL": 5})),
        200,
        "",
    );
    t.params(
        "LOG_LEVEL: junk",
        with(oauth.clone(), json!({"LOG_LEVEL": "\u{0}loud\u{202e}"})),
        200,
        "",
    );
    t.params(
        "__ow_method: a number",
        with(oauth.clone(), json!({"__ow_method": 1})),
        200,
        "",
    );
    t.params(
        "an unknown input, deeply nested (100 levels)",
        with(
            oauth.clone(),
            json!({"EXTRA": serde_json::from_str::<Value>(&format!("{}1{}", "[".repeat(100), "]".repeat(100))).expect("JSON")}),
        ),
        200,
        "",
    );

    // ---- exotic upstream answers
    t.params(
        "IMS: an HTML error page",
        with(oauth.clone(), json!({"IMS_ORG_ID": "HTML@AdobeOrg"})),
        502,
        "IMS",
    )
    .fault("/ims/", Fault::Html, 3);
    t.params(
        "IMS: truncated JSON",
        with(oauth.clone(), json!({"IMS_ORG_ID": "TRUNC@AdobeOrg"})),
        502,
        "IMS",
    )
    .fault("/ims/", Fault::Malformed, 1);
    t.params(
        "IMS: a 10 MB body",
        with(oauth.clone(), json!({"IMS_ORG_ID": "HUGE@AdobeOrg"})),
        502,
        "too large",
    )
    .fault("/ims/", Fault::Huge, 1);
    t.params("quota: a 10 MB body", oauth.clone(), 502, "too large")
        .fault("/adobe/stats", Fault::Huge, 1);
    t.params(
        "report: an HTML error page",
        analytics(oauth.clone()),
        502,
        "Analytics",
    )
    .fault("/api/", Fault::Html, 3);
    t.params("content: a 10 MB body", aem_get(oauth.clone()), 502, "too large")
        .fault("/content/", Fault::Huge, 1);
    let good_token = |payload: Value| {
        format!(
            "{}.{}.c2ln",
            URL_SAFE_NO_PAD.encode("{}"),
            URL_SAFE_NO_PAD.encode(payload.to_string())
        )
    };
    let answers = [
        (
            "IMS: expires_in negative",
            json!({"access_token": "tok-123456", "expires_in": -5}),
            "expires_in",
        ),
        (
            "IMS: expires_in zero",
            json!({"access_token": "tok-123456", "expires_in": 0}),
            "expires_in",
        ),
        (
            "IMS: expires_in absurd",
            json!({"access_token": "tok-123456", "expires_in": 9_007_199_254_740_993u64}),
            "expires_in",
        ),
        (
            "IMS: expires_in a float",
            json!({"access_token": "tok-123456", "expires_in": 1e30}),
            "expires_in",
        ),
        (
            "IMS: expires_in a word",
            json!({"access_token": "tok-123456", "expires_in": "soon"}),
            "expires_in",
        ),
        (
            "IMS: no expires_in",
            json!({"access_token": "tok-123456"}),
            "expires_in",
        ),
        (
            "IMS: no access_token",
            json!({"token_type": "bearer", "expires_in": 86399}),
            "access_token",
        ),
        (
            "IMS: an empty access_token",
            json!({"access_token": "", "expires_in": 86399}),
            "access_token",
        ),
        (
            "IMS: CR/LF in access_token",
            json!({"access_token": "tok\r\nX-Evil: 1", "expires_in": 86399}),
            "access_token",
        ),
        (
            "IMS: a numeric access_token",
            json!({"access_token": 12345, "expires_in": 86399}),
            "access_token",
        ),
        (
            "IMS: a JSON array",
            json!([{"access_token": "tok"}]),
            "access_token",
        ),
        (
            "IMS: a token expired by its own payload",
            json!({"access_token": good_token(json!({"created_at": "1000", "expires_in": "1000"})), "expires_in": 86399}),
            "expired",
        ),
        (
            "IMS: an error field with 200",
            json!({"error": "invalid_client", "error_description": "x"}),
            "invalid_client",
        ),
    ];
    for (n, (name, body, needle)) in answers.into_iter().enumerate() {
        ims_answer(&mut t, w, n, name, body, needle);
    }

    // ---- raw activation lines
    let good = json!({"value": oauth}).to_string();
    t.line(
        "line: a lone trailing surrogate",
        r#"{"value":{"OAUTHS2S_CLIENT_ID":"\udc00"}}"#,
        400,
        "'activation'",
    );
    t.line(
        "line: a lone leading surrogate",
        r#"{"value":{"IMS_ORG_ID":"\ud800x"}}"#,
        400,
        "'activation'",
    );
    t.line(
        "line: invalid UTF-8",
        b"{\"value\":{\"IMS_ORG_ID\":\"\xff\xfe\"}}".to_vec(),
        400,
        "'activation'",
    );
    t.line(
        "line: overlong UTF-8",
        b"{\"value\":{\"A\":\"\xc0\xaf\"}}".to_vec(),
        400,
        "'activation'",
    );
    t.line(
        "line: 10,000 nested arrays",
        format!("{{\"value\":{{\"X\":{}}}}}", nested("[", "]", "1")),
        400,
        "'activation'",
    );
    t.line(
        "line: 10,000 nested objects",
        format!("{{\"value\":{}}}", nested("{\"a\":", "}", "1")),
        400,
        "'activation'",
    );
    t.line("line: not JSON", "hello, proxy", 400, "'activation'");
    t.line("line: an array", "[1,2,3]", 400, "'activation'");
    t.line(
        "line: truncated",
        r#"{"value":{"OAUTHS2S_CLIENT_ID":"#,
        400,
        "'activation'",
    );
    t.line("line: trailing garbage", format!("{good} x"), 400, "'activation'");
    t.line("line: NUL bytes", b"\0\0\0{}".to_vec(), 400, "'activation'");
    t.line(
        "line: a number out of range",
        r#"{"value":{"HTTP_TIMEOUT_MS":1e400}}"#,
        400,
        "'activation'",
    );
    t.line("line: value a number", r#"{"value":5}"#, 400, "'params'");
    t.line("line: value null", r#"{"value":null}"#, 400, "'params'");
    t.line(
        "line: no value",
        r#"{"activation_id":"x"}"#,
        400,
        "OAUTHS2S_CLIENT_ID",
    );
    t.line(
        "line: duplicate keys, the last one bad",
        format!(r#"{{"value":{},"value":{{"OPERATION":7}}}}"#, w.oauth()),
        400,
        "'OPERATION'",
    );
    let mut big = String::from("{\"value\":{\"X\":\"");
    big.push_str(&"y".repeat(9 * 1024 * 1024));
    big.push_str("\"}}");
    t.line("line: 9 MB", big, 400, "'activation'");
    t.line(
        "line: a deadline in the past",
        json!({"value": w.oauth(), "deadline": "1"}).to_string(),
        504,
        "deadline",
    );
    for (n, deadline) in [
        json!("soon"),
        json!(-5),
        json!(1e300),
        json!(u64::MAX),
        json!({"ms": 1}),
    ]
    .into_iter()
    .enumerate()
    {
        t.line(
            &format!("line: an odd deadline #{n}"),
            json!({"value": w.oauth(), "deadline": deadline, "activation_id": [1]}).to_string(),
            200,
            "",
        );
    }
    t.cases
}

fn good_params(w: &World) -> Value {
    w.oauth()
}

/// For a web case (params carrying `__ow_*`), what its deployment bound: the params without
/// them. Web calls need a sealed deployment; the others run unsealed, as an invoker's would.
fn web_bound(input: &Input) -> Option<Value> {
    let Input::Params(Value::Object(m)) = input else {
        return None;
    };
    if !m.keys().any(|k| k.starts_with("__ow_")) {
        return None;
    }
    Some(Value::Object(
        m.iter()
            .filter(|(k, _)| !k.starts_with("__ow_"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    ))
}

fn check(case: &Case, result: &Value, how: &str) {
    assert_eq!(status(result), case.status, "{} [{how}]: {result}", case.name);
    if !case.names.is_empty() {
        let msg = message(result);
        assert!(
            msg.contains(&case.names),
            "{} [{how}]: message {msg:?} lacks {:?}",
            case.name,
            case.names
        );
    }
}

#[test]
fn the_table_is_big_enough() {
    let w = World::new();
    let cases = cases(&w);
    assert!(cases.len() >= 50, "{} cases", cases.len());
    let lines = cases.iter().filter(|c| matches!(c.input, Input::Line(_))).count();
    assert!(lines >= 15, "{lines} raw lines");
    eprintln!("{} cases, {lines} of them raw lines", cases.len());
}

#[test]
fn every_malformed_input_gets_its_status_in_process() {
    let w = World::new();
    let action: Action = w.action();
    for case in cases(&w) {
        for (path, fault, count) in &case.faults {
            w.emu.inject_fault(path, fault.clone(), *count);
        }
        let result = match &case.input {
            Input::Params(p) => match web_bound(&case.input) {
                Some(bound) => w.sealed_action(&bound).handle(p.clone(), &activation()),
                None => action.handle(p.clone(), &Activation::default()),
            },
            Input::Line(line) => {
                let mut input = line.clone();
                input.push(b'\n');
                let mut out = Vec::new();
                serve(&input[..], &mut out, false, |p, a| action.handle(p, a)).expect("in-memory I/O");
                let text = String::from_utf8(out).expect("UTF-8 replies");
                assert_eq!(text.lines().count(), 1, "{}: {text}", case.name);
                serde_json::from_str(text.trim_end()).expect("a JSON reply")
            }
        };
        check(&case, &result, "in-process");
        let next = action.handle(good_params(&w), &Activation::default());
        assert_eq!(status(&next), 200, "after {}: {next}", case.name);
    }
}

/// The binary in actionloop mode, started the way the OpenWhisk proxy starts it.
struct ActionLoop {
    child: Child,
    stdin: ChildStdin,
    replies: Receiver<String>,
    stderr: Arc<Mutex<Vec<u8>>>,
}

impl ActionLoop {
    fn start(allow: &str, seal: Option<&std::path::Path>) -> ActionLoop {
        // fd 3 becomes the stdout pipe (the results), fd 1 goes to stderr (the logs); the
        // environment is empty but for the allowlist and the seal, as under the proxy.
        let seal = seal.map(|p| p.to_string_lossy().into_owned()).unwrap_or_default();
        let mut child = Command::new("/bin/sh")
            .arg("-c")
            .arg(r#"exec env -i IMS_ACTION_ALLOW_HOSTS="$1" IMS_ACTION_SEAL="$2" "$0" 3>&1 1>&2"#)
            .arg(bin())
            .arg(allow)
            .arg(seal)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the actionloop starts");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = child.stdout.take().expect("stdout");
        let mut stderr_pipe = child.stderr.take().expect("stderr");
        let (tx, replies) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&stderr);
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            while let Ok(n) = std::io::Read::read(&mut stderr_pipe, &mut buf) {
                if n == 0 {
                    return;
                }
                if let Ok(mut s) = sink.lock() {
                    s.extend_from_slice(&buf[..n]);
                }
            }
        });
        ActionLoop {
            child,
            stdin,
            replies,
            stderr,
        }
    }

    fn send(&mut self, line: &[u8], what: &str) -> Value {
        self.stdin.write_all(line).expect("write the activation");
        self.stdin.write_all(b"\n").expect("write the newline");
        self.stdin.flush().expect("flush");
        let reply = self
            .replies
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("{what}: no reply; the process is {:?}", self.child.try_wait()));
        serde_json::from_str(&reply).unwrap_or_else(|_| panic!("{what}: reply is not JSON: {reply}"))
    }

    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().map(|s| s.clone()).unwrap_or_default()).into_owned()
    }
}

#[test]
fn every_malformed_input_gets_its_status_from_one_actionloop_process() {
    let w = World::new();
    let cases = cases(&w);
    // The web cases go to a second process deployed with a seal holding one action per case.
    let mut sealed = std::collections::BTreeMap::new();
    sealed.insert(
        "good".to_string(),
        good_params(&w).as_object().cloned().unwrap_or_default(),
    );
    for (n, case) in cases.iter().enumerate() {
        if let Some(Value::Object(bound)) = web_bound(&case.input) {
            sealed.insert(format!("case-{n}"), bound);
        }
    }
    let seal_path = temp_path("seal.json");
    std::fs::write(
        &seal_path,
        ims_action::action::seal::Seal::bind(&sealed)
            .expect("seal")
            .to_json(),
    )
    .expect("write the seal");
    let mut plain = ActionLoop::start(&w.emu.host_port(), None);
    let mut web = ActionLoop::start(&w.emu.host_port(), Some(&seal_path));
    let good = json!({"value": good_params(&w), "activation_id": "good",
                      "action_name": "/guest/ims-action/good"})
    .to_string();
    for al in [&mut plain, &mut web] {
        let first = al.send(good.as_bytes(), "the first good activation");
        assert_eq!(status(&first), 200, "{first}\n{}", al.stderr());
    }
    for (n, case) in cases.into_iter().enumerate() {
        for (path, fault, count) in &case.faults {
            w.emu.inject_fault(path, fault.clone(), *count);
        }
        let is_web = web_bound(&case.input).is_some();
        let line = match &case.input {
            Input::Params(p) => json!({"value": p, "activation_id": format!("case-{n}"),
                                       "action_name": format!("/guest/ims-action/case-{n}")})
            .to_string()
            .into_bytes(),
            Input::Line(line) => line.clone(),
        };
        let al = if is_web { &mut web } else { &mut plain };
        let result = al.send(&line, &case.name);
        check(&case, &result, "actionloop");
        let next = al.send(
            good.as_bytes(),
            &format!("the good activation after {}", case.name),
        );
        assert_eq!(status(&next), 200, "after {}: {next}", case.name);
    }
    for al in [plain, web] {
        drop(al.stdin);
        let mut child = al.child;
        let exit = child.wait().expect("the actionloop ends");
        assert!(exit.success(), "{exit}");
        let logs =
            String::from_utf8_lossy(&al.stderr.lock().map(|s| s.clone()).unwrap_or_default()).into_owned();
        assert!(!logs.contains("panic"), "{logs}");
    }
    let _ = std::fs::remove_file(&seal_path);
}

/// A library caller can hand `Action::handle` a `Value` deeper than serde_json would ever parse
/// (its limit is 128 levels). 1,000 levels in every place the action walks, copies or
/// serialises must not overflow the stack of an ordinary 2 MiB thread, debug build included.
/// (At 10,000 levels serde_json's own `clone` and `drop` of a `Value` overflow such a debug
/// thread before the action is even called; no platform input gets past the parser's limit.)
#[test]
fn a_deep_value_built_in_process_does_not_overflow() {
    let w = World::new();
    let action = w.action();
    type Build = fn(Value, Value) -> Value;
    let cases: [(&str, Build, u64); 6] = [
        (
            "a credential input",
            |p, deep| with(p, json!({"OAUTHS2S_CLIENT_ID": deep})),
            400,
        ),
        ("an unknown input", |p, deep| with(p, json!({"EXTRA": deep})), 200),
        (
            "a secret-named input",
            |p, deep| with(p, json!({"MY_SECRET": deep})),
            200,
        ),
        (
            "__ow_headers",
            |p, deep| with(p, json!({"__ow_method": "get", "__ow_headers": {"a": deep}})),
            200,
        ),
        (
            "__ow_body",
            |p, deep| with(p, json!({"__ow_method": "post", "__ow_body": {"x": deep}})),
            200,
        ),
        (
            "ANALYTICS_REPORT",
            |p, deep| {
                with(
                    p,
                    json!({"OPERATION": "analytics-report", "ANALYTICS_COMPANY_ID": "demoorg0",
                           "ANALYTICS_REPORT": {"rsid": "demo.rsid", "x": deep}}),
                )
            },
            // Sent whole; the emulator's own parser (128 levels, like most) refuses it.
            400,
        ),
    ];
    for (what, build, expected) in cases {
        for level in ["info", "debug"] {
            let params = with(w.oauth(), json!({"LOG_LEVEL": level}));
            // The web cases run as a deployment that bound exactly these params.
            let sealed = w.sealed_action(&params);
            let is_web = build(json!({}), json!(null))
                .as_object()
                .is_some_and(|m| m.keys().any(|k| k.starts_with("__ow_")));
            let (action, activation) = if is_web {
                (&sealed, activation())
            } else {
                (&action, Activation::default())
            };
            // A stack overflow aborts the whole test binary: that is the failure looked for.
            let r = std::thread::scope(|s| {
                std::thread::Builder::new()
                    .stack_size(2 * 1024 * 1024)
                    .spawn_scoped(s, || {
                        let mut deep = json!({"password": "p4ssw0rd-deep-down"});
                        for _ in 0..1_000 {
                            deep = json!([deep]);
                        }
                        action.handle(build(params, deep), &activation)
                    })
                    .expect("thread")
                    .join()
            });
            let r = r.unwrap_or_else(|_| panic!("{what}: the thread panicked"));
            assert_eq!(status(&r), expected, "{what}: {r}");
        }
    }
}
