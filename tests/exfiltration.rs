//! No exfiltration, and nobody gets in who shouldn't.
//!
//! * Every input that names an endpoint (`IMS_BASE_URL`, `AEM_DATA_SERVICE_BASE_URL`,
//!   `ANALYTICS_BASE_URL`, `AEM_AUTHOR_URL`, and the AEM service credentials'
//!   `integration.imsEndpoint`) × every URL trick we know aims the action at a listener on
//!   127.0.0.2 (a loopback address the allowlist does not name) or at aliases of the allowed
//!   emulator: each must get a 400 naming the input, and neither the listener nor the emulator
//!   may see a single connection or request — in-process and through the binary.
//! * Redirects are not followed: an allow-listed server that answers 30x towards the listener
//!   gets the action to answer 502, and the listener sees nothing.
//! * `IMS_ACTION_ALLOW_HOSTS` given as a param changes nothing.
//! * `ALLOWED_IMS_ORGS` (param, or the environment, which wins) refuses other orgs' web callers
//!   with 403 before any credential is used.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::*;
use serde_json::{Value, json};

/// A listener that only counts the connections it accepts (and closes them).
struct Trap {
    port: u16,
    accepted: Arc<AtomicUsize>,
}

impl Trap {
    fn start() -> Trap {
        let listener = TcpListener::bind("127.0.0.2:0").expect("bind 127.0.0.2");
        let port = listener.local_addr().expect("addr").port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&accepted);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                counter.fetch_add(1, Ordering::SeqCst);
                drop(stream);
            }
        });
        Trap { port, accepted }
    }

    fn host_port(&self) -> String {
        format!("127.0.0.2:{}", self.port)
    }

    fn connections(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

/// Every trick, aimed at the trap (`T` = `127.0.0.2:PORT`, `P` = its port) or at aliases of the
/// allowed emulator (`E` = `127.0.0.1:PORT`, `Q` = its port).
fn tricks(trap: &Trap, w: &World) -> Vec<String> {
    let t = trap.host_port();
    let p = trap.port;
    let e = w.emu.host_port();
    let q = e.rsplit(':').next().unwrap_or_default().to_string();
    let list = [
        // another host
        "https://evil.example".to_string(),
        format!("http://evil.example:{p}"),
        "https://adobelogin.com.evil.example".into(),
        "https://ims-na1.adobelogin.com.evil.example".into(),
        "https://evil-adobelogin.com".into(),
        "https://adobelogin.com".into(),
        // the listener's IP literal, and other spellings of it
        format!("http://{t}"),
        format!("https://{t}"),
        format!("http://[::ffff:127.0.0.2]:{p}"),
        format!("http://[::ffff:7f00:2]:{p}"),
        format!("http://[::1]:{p}"),
        format!("http://2130706434:{p}"),
        format!("http://0x7f000002:{p}"),
        format!("http://0177.0.0.2:{p}"),
        format!("http://127.2:{p}"),
        // aliases of the allowed emulator
        format!("http://localhost:{q}"),
        format!("http://[::ffff:127.0.0.1]:{q}"),
        format!("http://2130706433:{q}"),
        format!("http://127.1:{q}"),
        format!("http://127.0.0.1.:{q}"),
        format!("http://127.0.0.1:{q}:{p}"),
        format!("http://127.0.0.1:{}", 65536 + q.parse::<u32>().unwrap_or(0)),
        // userinfo
        format!("https://ims-na1.adobelogin.com@{t}"),
        format!("http://{e}@{t}"),
        format!("https://user:pass@{t}"),
        format!("https://ims-na1.adobelogin.com%40{t}"),
        // trailing dot, mixed case, plain http on an Adobe host, other ports
        "https://ims-na1.adobelogin.com.".into(),
        "https://IMS-NA1.AdobeLogin.com".into(),
        "https://ims-na1.adobelogin.COM".into(),
        "http://ims-na1.adobelogin.com".into(),
        format!("https://ims-na1.adobelogin.com:{p}"),
        format!("HTTP://{e}"),
        // backslashes
        format!("https://ims-na1.adobelogin.com\\@{t}"),
        format!("http://{t}\\.adobelogin.com"),
        format!("http://{e}\\@{t}"),
        format!("http:\\\\{t}"),
        // fragments, queries and paths that hide the real host
        "https://evil.example#@ims-na1.adobelogin.com".into(),
        format!("http://{t}#@ims-na1.adobelogin.com"),
        format!("http://{t}?@ims-na1.adobelogin.com"),
        format!("http://{e}/x?@{t}"),
        format!("http://{e}/../{t}"),
        // control characters, spaces, non-ASCII look-alikes
        format!("https://ims-na1.adobelogin.com\t@{t}"),
        format!("http://{e}\r\n@{t}"),
        format!("http://{e} @{t}"),
        "https://ims-na1.adobelogin\u{3002}com".into(),
        format!("https://ims-na1.adobelogin.com\u{2044}@{t}"),
        // no scheme, a scheme-relative URL, an empty host
        format!("//{t}"),
        format!("http:/{t}"),
        format!("ftp://{t}"),
        format!("http://:{p}"),
    ];
    list.to_vec()
}

/// One endpoint input: how to set it on top of good params.
struct Target {
    input: &'static str,
    base: Value,
    set: fn(Value, &str) -> Value,
}

fn targets(w: &World) -> Vec<Target> {
    fn ims(p: Value, u: &str) -> Value {
        with(p, json!({"IMS_BASE_URL": u}))
    }
    fn quota(p: Value, u: &str) -> Value {
        with(p, json!({"AEM_DATA_SERVICE_BASE_URL": u}))
    }
    fn analytics(p: Value, u: &str) -> Value {
        with(p, json!({"ANALYTICS_BASE_URL": u}))
    }
    fn author(p: Value, u: &str) -> Value {
        with(p, json!({"AEM_AUTHOR_URL": u}))
    }
    fn ims_endpoint(mut p: Value, u: &str) -> Value {
        let mut creds = aem_json(&p);
        creds["integration"]["imsEndpoint"] = json!(u);
        p["AEM_SERVICE_CREDENTIALS"] = creds;
        p
    }
    vec![
        Target {
            input: "IMS_BASE_URL",
            base: w.oauth(),
            set: ims,
        },
        Target {
            input: "AEM_DATA_SERVICE_BASE_URL",
            base: w.oauth(),
            set: quota,
        },
        Target {
            input: "ANALYTICS_BASE_URL",
            base: with(
                w.oauth(),
                json!({"OPERATION": "analytics-report", "ANALYTICS_COMPANY_ID": "demoorg0", "ANALYTICS_RSID": "demo.rsid"}),
            ),
            set: analytics,
        },
        Target {
            input: "AEM_AUTHOR_URL",
            base: with(w.oauth(), json!({"OPERATION": "aem-get"})),
            set: author,
        },
        Target {
            input: "AEM_SERVICE_CREDENTIALS.integration.imsEndpoint",
            base: w.aem_credentials(),
            set: ims_endpoint,
        },
    ]
}

/// The AEM service credentials of `params` as an object (the demo gives them as base64).
fn aem_json(params: &Value) -> Value {
    use base64::Engine as _;
    let text = params["AEM_SERVICE_CREDENTIALS"].as_str().expect("base64 text");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .expect("base64");
    serde_json::from_slice(&bytes).expect("JSON")
}

fn assert_refused(result: &Value, input: &str, what: &str) {
    assert_eq!(status(result), 400, "{what}: {result}");
    let msg = message(result);
    assert!(msg.contains(&format!("'{input}'")), "{what}: {msg}");
}

#[test]
fn the_good_params_of_every_target_work() {
    // The baseline: without a trick each target's params succeed, so a 400 below is the trick's.
    let w = World::new();
    let action = w.action();
    for t in targets(&w) {
        let r = w.call(&action, t.base.clone());
        assert_eq!(status(&r), 200, "{}: {r}", t.input);
    }
}

#[test]
fn no_trick_reaches_another_host_in_process() {
    let w = World::new();
    let trap = Trap::start();
    let action = w.action();
    let tricks = tricks(&trap, &w);
    assert!(tricks.len() >= 45);
    for t in targets(&w) {
        for url in &tricks {
            let r = w.call(&action, (t.set)(t.base.clone(), url));
            assert_refused(&r, t.input, &format!("{} = {url:?}", t.input));
        }
    }
    assert_eq!(trap.connections(), 0, "the trap was reached");
    assert_eq!(w.emu.request_count("/"), 0, "the emulator was reached");
}

#[test]
fn no_trick_reaches_another_host_through_the_binary() {
    let w = World::new();
    let trap = Trap::start();
    let allow = w.emu.host_port();
    for t in targets(&w) {
        for url in tricks(&trap, &w) {
            let params = (t.set)(t.base.clone(), &url);
            let out = run_bin(
                &[&params.to_string()],
                &[("IMS_ACTION_ALLOW_HOSTS", &allow)],
                None,
            );
            assert_refused(&last_line(&out), t.input, &format!("{} = {url:?}", t.input));
        }
    }
    assert_eq!(trap.connections(), 0, "the trap was reached");
    assert_eq!(w.emu.request_count("/"), 0, "the emulator was reached");
}

#[test]
fn each_input_is_held_to_its_own_adobe_domain() {
    // Customers run their own code on *.adobeaemcloud.com: an AEM instance must never receive
    // the client secret or the signed JWT (IMS inputs), nor stand in for Analytics.
    let w = World::new();
    let action = w.action();
    let customer_aem = "https://author-p99999-e99999.adobeaemcloud.com";
    let targets = targets(&w);
    for t in &targets {
        let refused: &[&str] = match t.input {
            "IMS_BASE_URL" | "AEM_SERVICE_CREDENTIALS.integration.imsEndpoint" => &[
                customer_aem,
                "https://analytics.adobe.io",
                "https://adobeioruntime.adobe.io",
            ],
            "ANALYTICS_BASE_URL" => &[customer_aem, "https://ims-na1.adobelogin.com"],
            _ => &[],
        };
        for url in refused {
            let r = w.call(&action, (t.set)(t.base.clone(), url));
            assert_refused(&r, t.input, &format!("{} = {url}", t.input));
        }
    }
    // The bare host form of imsEndpoint (as Adobe writes it) is held to adobelogin.com too.
    let ims_endpoint = targets.last().expect("imsEndpoint target");
    let r = w.call(
        &action,
        (ims_endpoint.set)(ims_endpoint.base.clone(), "author-p1-e2.adobeaemcloud.com"),
    );
    assert_refused(&r, ims_endpoint.input, "bare AEM host as imsEndpoint");
    assert_eq!(w.emu.request_count("/"), 0);
}

#[test]
fn the_allowlist_cannot_come_from_params() {
    let w = World::new();
    let trap = Trap::start();
    let t = trap.host_port();
    let params = with(
        w.oauth(),
        json!({"IMS_ACTION_ALLOW_HOSTS": t, "IMS_BASE_URL": format!("http://{t}")}),
    );
    assert_refused(&w.call(&w.action(), params.clone()), "IMS_BASE_URL", "in-process");
    let allow = w.emu.host_port();
    let out = run_bin(
        &[&params.to_string()],
        &[("IMS_ACTION_ALLOW_HOSTS", &allow)],
        None,
    );
    assert_refused(&last_line(&out), "IMS_BASE_URL", "one-shot");
    // Nor from the params file of the local CLI (its --env file may extend it: that is the
    // developer's own machine).
    let file = temp_path("params.json");
    std::fs::write(&file, params.to_string()).expect("params file");
    let out = run_bin(
        &["invoke", "--params", &file.to_string_lossy()],
        &[("IMS_ACTION_ALLOW_HOSTS", &allow)],
        None,
    );
    let _ = std::fs::remove_file(&file);
    assert_refused(&last_line(&out), "IMS_BASE_URL", "invoke");
    assert_eq!(trap.connections(), 0);
    assert_eq!(w.emu.request_count("/"), 0);
}

/// An allow-listed server that answers every request with `status` and `Location: location`.
struct Redirector {
    port: u16,
    requests: Arc<AtomicUsize>,
}

impl Redirector {
    fn start(status: u16, location: String) -> Redirector {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let requests = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&requests);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                counter.fetch_add(1, Ordering::SeqCst);
                let location = location.clone();
                std::thread::spawn(move || answer_redirect(stream, status, &location));
            }
        });
        Redirector { port, requests }
    }

    fn host_port(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

fn answer_redirect(stream: TcpStream, status: u16, location: &str) {
    let mut reader = BufReader::new(&stream);
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0u8; length];
    let _ = reader.read_exact(&mut body);
    let reply = format!(
        "HTTP/1.1 {status} Redirect\r\nlocation: {location}\r\ncontent-type: application/json\r\n\
         content-length: 2\r\nconnection: close\r\n\r\n{{}}"
    );
    let mut stream = &stream;
    let _ = stream.write_all(reply.as_bytes());
    let _ = stream.flush();
}

#[test]
fn redirects_are_not_followed() {
    let w = World::new();
    let trap = Trap::start();
    let steal = format!("http://{}/steal", trap.host_port());
    let emulator_quota = format!(
        "{}/adobe/stats/statistics/contentRequestsQuota?imsOrgId=x",
        w.emu.base_url()
    );
    for (code, location) in [
        (302, steal.clone()),
        (301, steal.clone()),
        (303, steal.clone()),
        (307, steal.clone()),
        (308, steal.clone()),
        (302, emulator_quota),
    ] {
        let r = Redirector::start(code, location.clone());
        let base = format!("http://{}", r.host_port());
        let allow = format!("{},{}", w.emu.host_port(), r.host_port());
        let action = ims_action::Action::new(
            ims_action::endpoint::AllowList::parse(&allow),
            ims_action::token::TokenCache::in_memory(),
        );
        let cases = [
            (
                "quota",
                with(w.oauth(), json!({"AEM_DATA_SERVICE_BASE_URL": base})),
            ),
            ("token", with(w.oauth(), json!({"IMS_BASE_URL": base}))),
            ("JWT exchange", with(w.jwt(), json!({"IMS_BASE_URL": base}))),
            (
                "report",
                with(
                    w.oauth(),
                    json!({"OPERATION": "analytics-report", "ANALYTICS_COMPANY_ID": "demoorg0",
                           "ANALYTICS_RSID": "demo.rsid", "ANALYTICS_BASE_URL": base}),
                ),
            ),
            (
                "content",
                with(
                    w.dev_token(),
                    json!({"OPERATION": "aem-get", "AEM_AUTHOR_URL": base}),
                ),
            ),
        ];
        for (what, params) in cases {
            let label = format!("{what}, {code} to {location}");
            let got = w.call(&action, params.clone());
            assert_eq!(status(&got), 502, "{label} in-process: {got}");
            assert!(message(&got).contains("redirect"), "{label}: {got}");
            let out = run_bin(
                &[&params.to_string()],
                &[("IMS_ACTION_ALLOW_HOSTS", &allow)],
                None,
            );
            let got = last_line(&out);
            assert_eq!(status(&got), 502, "{label} one-shot: {got}");
        }
        assert!(
            r.requests.load(Ordering::SeqCst) >= 10,
            "the redirector was not asked"
        );
    }
    assert_eq!(trap.connections(), 0, "a redirect was followed to the trap");
    assert_eq!(
        w.emu.request_count("/adobe/"),
        0,
        "a redirect was followed to the emulator"
    );
}

// ---- caller checks ------------------------------------------------------------------------

const CALLER_ORG: &str = "CALLER000000000000000@AdobeOrg";

/// A deployment's bound params: `creds`, and `ALLOWED_IMS_ORGS` when given.
fn bound(creds: Value, allowed: Option<&str>) -> Value {
    match allowed {
        Some(allowed) => with(creds, json!({ "ALLOWED_IMS_ORGS": allowed })),
        None => creds,
    }
}

/// The bound params plus what OpenWhisk adds for a web caller from `org`.
fn web(bound: &Value, org: Option<&str>) -> Value {
    web_call(bound.clone(), org, json!({}))
}

#[test]
fn other_orgs_are_refused_before_any_credential_is_used() {
    let w = World::new();
    let org = w.env["IMS_ORG_ID"].clone();
    let allowed = format!("SOMEONE@AdobeOrg, {org}");
    // Every credential kind, even a broken one: the caller check comes first.
    let broken = with(w.jwt(), json!({"JWT_PRIVATE_KEY": "not a key"}));
    for creds in [w.oauth(), w.jwt(), w.aem_credentials(), w.dev_token(), broken] {
        let bound = bound(creds, Some(&allowed));
        let action = w.sealed_action(&bound);
        for (caller, why) in [
            (Some(CALLER_ORG), "another org"),
            (None, "no x-gw-ims-org-id"),
            (Some(""), "an empty x-gw-ims-org-id"),
            (Some("SOMEONE"), "a prefix of an allowed org"),
        ] {
            let r = action.handle(web(&bound, caller), &activation());
            assert_eq!(status(&r), 403, "{why}: {r}");
        }
    }
    // A header that is not a string is no org either.
    let bound = bound(w.oauth(), Some(&allowed));
    let action = w.sealed_action(&bound);
    let odd = with(
        web(&bound, None),
        json!({"__ow_headers": {"x-gw-ims-org-id": [org.clone()]}}),
    );
    assert_eq!(status(&action.handle(odd, &activation())), 403);
    assert_eq!(w.emu.request_count("/"), 0, "a credential was used");
    // The listed org gets through.
    let r = action.handle(web(&bound, Some(&org)), &activation());
    assert_eq!(status(&r), 200, "{r}");
}

#[test]
fn the_environment_list_wins_over_the_param() {
    let w = World::new();
    let org = w.env["IMS_ORG_ID"].clone();
    let allow = w.emu.host_port();
    let run = |bound: Value, caller: &str, env_orgs: &str| {
        let seal = w.seal_file(&bound);
        let out = run_bin(
            &[&web(&bound, Some(caller)).to_string()],
            &[
                ("IMS_ACTION_ALLOW_HOSTS", &allow),
                ("ALLOWED_IMS_ORGS", env_orgs),
                ("IMS_ACTION_SEAL", &seal.to_string_lossy()),
                ("__OW_ACTION_NAME", ACTION_NAME),
            ],
            None,
        );
        last_line(&out)
    };
    // A deployment whose bound param names the caller is still closed to it when the
    // environment (which no deployment input can change) does not list it.
    let r = run(bound(w.oauth(), Some(CALLER_ORG)), CALLER_ORG, &org);
    assert_eq!(status(&r), 403, "{r}");
    let r = run(bound(w.oauth(), None), CALLER_ORG, &org);
    assert_eq!(status(&r), 403, "{r}");
    assert_eq!(w.emu.request_count("/"), 0, "a credential was used");
    // The environment's org passes, whatever the param says.
    let r = run(bound(w.oauth(), Some("NOBODY@AdobeOrg")), &org, &org);
    assert_eq!(status(&r), 200, "{r}");
    // An empty environment variable leaves the param in charge.
    let r = run(bound(w.oauth(), Some(&org)), CALLER_ORG, "");
    assert_eq!(status(&r), 403, "{r}");
    // An environment list that names no org is a configuration error: nobody gets in.
    let r = run(bound(w.oauth(), None), &org, " , ");
    assert_eq!(status(&r), 500, "{r}");
    // A web caller is told only that; the log names the setting for the operator.
    assert!(
        message(&r).contains("misconfigured") && !message(&r).contains("ALLOWED_IMS_ORGS"),
        "{r}"
    );
}

#[test]
fn no_operation_returns_an_access_token() {
    let w = World::new();
    let action = w.action();
    let mut results = Vec::new();
    for creds in [w.oauth(), w.jwt(), w.aem_credentials()] {
        for op in [
            json!({}),
            json!({"OPERATION": "analytics-report", "ANALYTICS_COMPANY_ID": "demoorg0", "ANALYTICS_RSID": "demo.rsid"}),
            json!({"OPERATION": "aem-get"}),
            json!({"OPERATION": "aem-get", "AEM_PATH": "/content/dam/demo.json"}),
        ] {
            let r = w.call(&action, with(creds.clone(), op));
            assert_eq!(status(&r), 200, "{r}");
            results.push(r.to_string());
        }
    }
    let r = w.call(&action, with(w.dev_token(), json!({"OPERATION": "aem-get"})));
    assert_eq!(status(&r), 200, "{r}");
    results.push(r.to_string());
    let mut tokens = Vec::new();
    for req in w.emu.requests("/") {
        if let Some(auth) = req.header("authorization") {
            let token = auth.strip_prefix("Bearer ").unwrap_or(auth).to_string();
            if !tokens.contains(&token) {
                tokens.push(token);
            }
        }
    }
    assert!(tokens.len() >= 4, "{} tokens seen", tokens.len());
    for r in &results {
        for t in &tokens {
            assert!(!r.contains(t.as_str()), "a result carries an access token");
            let signature = t.rsplit('.').next().unwrap_or(t);
            assert!(!r.contains(signature), "a result carries a token's signature");
        }
    }
}
