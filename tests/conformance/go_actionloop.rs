//! The Go ActionLoop proxy: one long-lived `exec` per container; per `/run` it writes the body
//! with its newlines removed, plus `\n`, to the binary's stdin and waits, with no timeout, for
//! exactly one line on fd 3. A reply missing or one too many desynchronises every later
//! activation of the container.

use serde_json::{Value, json};

use crate::common::*;
use crate::deployment::Deployment;
use crate::invoker::{self, Code, Container, plain_zip, run_body};
use crate::proxy::Proxy;
use crate::{assert_no_secrets, cases, then_a_good_one};

/// `/init`'s env: what the binary gets besides the proxy's `__OW_*` variables.
fn init_env(w: &World) -> Value {
    json!({"IMS_ACTION_ALLOW_HOSTS": w.emu.host_port()})
}

fn container(w: &World, proxy_env: &[(&str, &str)]) -> Container {
    Container::init(Proxy::actionloop(proxy_env), plain_zip(), init_env(w))
}

/// The one `exec` process of the container.
fn the_action_process(c: &Container) -> u32 {
    let children = c.proxy.children();
    assert_eq!(
        children.len(),
        1,
        "one action process per container: {children:?}"
    );
    children[0]
}

/// The names and values of a process's environment.
fn environ(pid: u32) -> Vec<(String, String)> {
    let raw = std::fs::read(format!("/proc/{pid}/environ")).expect("environ");
    raw.split(|b| *b == 0)
        .filter(|v| !v.is_empty())
        .map(|v| {
            let v = String::from_utf8_lossy(v);
            let (k, val) = v.split_once('=').unwrap_or((&v, ""));
            (k.to_string(), val.to_string())
        })
        .collect()
}

/// Many activations in one container, with and without the ack: each reply is its own
/// request's, in order, from one process that got one token; each activation's logs land
/// before the proxy's end-of-activation sentinel.
fn many_activations(ack: bool) {
    let w = World::new();
    let proxy_env: &[(&str, &str)] = if ack { &[("OW_WAIT_FOR_ACK", "1")] } else { &[] };
    let c = container(&w, proxy_env);
    let pid = the_action_process(&c);

    // The binary runs as the unpacked exec, with no arguments, and an environment of the
    // proxy's `__OW_*` variables and `/init`'s env only.
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).expect("exe");
    assert!(exe.ends_with("action/1/bin/exec"), "{exe:?}");
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).expect("cmdline");
    assert_eq!(cmdline.iter().filter(|b| **b == 0).count(), 1, "argv[0] only");
    let mut env = environ(pid);
    env.sort();
    let mut want = vec![
        ("IMS_ACTION_ALLOW_HOSTS".to_string(), w.emu.host_port()),
        ("__OW_PROXY_VERSION".to_string(), "1.17.1".to_string()),
    ];
    if ack {
        want.push(("__OW_WAIT_FOR_ACK".to_string(), "1".to_string()));
    }
    want.sort();
    assert_eq!(env, want);

    let cases = cases(&w);
    let n = 3 * cases.len();
    let mut results = String::new();
    for i in 0..n {
        let case = &cases[i % cases.len()];
        let id = format!("go-{i}");
        let params = with(case.params.clone(), json!({"LOG_LEVEL": "debug"}));
        let result = c.run(&params, &id);
        case.check(&result, &id);
        results.push_str(&result.to_string());
        assert_eq!(
            the_action_process(&c),
            pid,
            "the same process serves activation {i}"
        );
    }
    assert_eq!(w.emu.tokens_issued(&w.env["OAUTHS2S_CLIENT_ID"]), 1);
    assert_eq!(w.emu.request_count("/ims"), 1);

    c.proxy.wait_for_sentinels(n);
    let logs = c.proxy.stderr_per_activation();
    assert_eq!(logs.len(), n);
    for (i, segment) in logs.iter().enumerate() {
        let ids: Vec<&str> = segment
            .lines()
            .filter_map(|l| l.split_once("] activation ").map(|(_, id)| id))
            .collect();
        assert_eq!(ids, [format!("go-{i}")], "activation {i}'s logs:\n{segment}");
    }
    // Nothing on stdout but the sentinels: results go to fd 3 only.
    assert_eq!(
        c.proxy.stdout(),
        format!("{}\n", crate::proxy::SENTINEL).repeat(n)
    );
    assert_no_secrets(&w, &c.proxy.stderr(), "the logs");
    assert_no_secrets(&w, &results, "a result");

    // As upstream: a container is initialised once.
    // (A small body: the proxy answers without reading it.)
    let again = c
        .proxy
        .post("/init", &invoker::init_body(&Code::of(b"PK"), init_env(&w)));
    assert_eq!(again.status, 403, "{}", again.text());
}

#[test]
fn go_proxy_many_activations_per_container_without_ack() {
    many_activations(false);
}

#[test]
fn go_proxy_many_activations_per_container_with_ack() {
    many_activations(true);
}

/// What reaches the binary's stdin as a blank or whitespace-only line: the proxy strips `\n`
/// from the body and adds one, so an empty body, a body of newlines and a body of other
/// whitespace all do. Each must get an error reply (before the fix the action skipped them,
/// so the proxy waited forever and every later request got the previous one's answer).
#[test]
fn go_proxy_blank_and_whitespace_only_bodies_get_an_error_and_the_next_its_own_answer() {
    let w = World::new();
    let c = container(&w, &[]);
    let pid = the_action_process(&c);
    let cases = cases(&w);
    let blank: [&[u8]; 8] = [
        b"",
        b"\n",
        b"\n\n\n",
        b" ",
        b"   \t  ",
        b"\r",
        b"\r\n",
        b" \r\n\t\n \x0c ",
    ];
    for (i, body) in blank.iter().enumerate() {
        let result = c.result_of(c.run_raw(body));
        assert_eq!(status(&result), 400, "body {body:?}: {result}");
        assert!(message(&result).contains("blank line"), "body {body:?}: {result}");
        then_a_good_one(&c, &cases, i, &format!("{body:?}"));
    }
    // Values of only whitespace are not blank lines: ordinary bad input.
    for (i, params) in [json!("   "), json!({"OAUTHS2S_CLIENT_ID": "   "})]
        .iter()
        .enumerate()
    {
        let result = c.result_of(c.run_raw(&run_body(params, "spaces")));
        assert_eq!(status(&result), 400, "{params}: {result}");
        assert!(!message(&result).contains("blank line"), "{result}");
        then_a_good_one(&c, &cases, i + blank.len(), &params.to_string());
    }
    assert_eq!(the_action_process(&c), pid);
}

/// Bodies that are not activations: each gets a 400 reply from the action (which the proxy
/// passes on as its answer), and the next request its own answer from the same process.
#[test]
fn go_proxy_malformed_bodies_get_an_error_and_the_next_its_own_answer() {
    let w = World::new();
    let c = container(&w, &[]);
    let pid = the_action_process(&c);
    let cases = cases(&w);
    let deep = format!("{}1{}", "[".repeat(200), "]".repeat(200));
    let deep_value = format!(
        "{{\"value\":{{\"x\":{}1{}}}}}",
        "{\"a\":".repeat(200),
        "}".repeat(200)
    );
    let bad: Vec<(&str, Vec<u8>)> = vec![
        ("not JSON", b"not json".to_vec()),
        ("an array", b"[1,2]".to_vec()),
        ("a string", b"\"value\"".to_vec()),
        ("cut short", b"{\"value\":{\"OAUTHS2S_CLIENT_ID\":".to_vec()),
        ("trailing text", b"{\"value\":{}} trailing".to_vec()),
        ("invalid UTF-8", b"\xff\xfe\x80{\"value\":{}}".to_vec()),
        ("a NUL byte", b"{\"value\":{}}\x00".to_vec()),
        ("too deep", deep.into_bytes()),
        ("a too deep value", deep_value.into_bytes()),
        ("value an array", b"{\"value\":[1,2]}".to_vec()),
        ("value a number", b"{\"value\":42}".to_vec()),
        // Two activations in one body: the proxy strips the newline, so they arrive as one line.
        (
            "two objects",
            [
                run_body(&w.oauth(), "x"),
                b"\n".to_vec(),
                run_body(&w.oauth(), "y"),
            ]
            .concat(),
        ),
    ];
    for (i, (what, body)) in bad.iter().enumerate() {
        let result = c.result_of(c.run_raw(body));
        assert_eq!(status(&result), 400, "{what}: {result}");
        assert!(!message(&result).is_empty(), "{what}: {result}");
        then_a_good_one(&c, &cases, i, what);
    }
    // No params at all ({} or no value): the inputs are missing, named.
    for (i, body) in [&b"{}"[..], br#"{"activation_id":"a"}"#].iter().enumerate() {
        let result = c.result_of(c.run_raw(body));
        assert_eq!(status(&result), 400, "{result}");
        assert!(message(&result).contains("OAUTHS2S_CLIENT_ID"), "{result}");
        then_a_good_one(&c, &cases, i + bad.len(), "no params");
    }
    assert_eq!(the_action_process(&c), pid);
}

/// A param as large as OpenWhisk allows, and one over the action's 8 MiB line limit: the first
/// is served, the second refused, and the container goes on.
#[test]
fn go_proxy_huge_params() {
    let w = World::new();
    let c = container(&w, &[]);
    let pid = the_action_process(&c);
    let cases = cases(&w);
    for (i, size) in [1024 * 1024, 5 * 1024 * 1024].into_iter().enumerate() {
        let params = with(w.oauth(), json!({"NOTE": "n".repeat(size)}));
        let result = c.run(&params, &format!("big-{i}"));
        assert_eq!(status(&result), 200, "{size} bytes: {}", message(&result));
        then_a_good_one(&c, &cases, i, "a big param");
    }
    let params = with(w.oauth(), json!({"NOTE": "n".repeat(9 * 1024 * 1024)}));
    let result = c.run(&params, "too-big");
    assert_eq!(status(&result), 400, "{}", message(&result));
    assert!(message(&result).contains("larger than"), "{result}");
    then_a_good_one(&c, &cases, 7, "a param over the line limit");
    assert_eq!(the_action_process(&c), pid);
    assert_eq!(w.emu.tokens_issued(&w.env["OAUTHS2S_CLIENT_ID"]), 1);
}

/// Web activations of a sealed deployment (`ims-action.seal.json` beside `exec` in the zip):
/// what OpenWhisk adds for an HTTP caller (`__ow_method`, `__ow_headers`, `__ow_path`;
/// `__ow_query` and `__ow_body` with raw-http) reaches the action intact through the proxy;
/// callers of other orgs are refused, as is any input a caller adds or changes; the request
/// inputs the deployment opted in come from the caller; the caller's token never reaches the
/// logs. One container per action, as the platform runs them.
#[test]
fn go_proxy_sealed_web_activations() {
    let w = World::new();
    let d = Deployment::sealed(&w);
    let org = w.env["IMS_ORG_ID"].clone();
    let cases = cases(&w);
    let quota = d.bound("aem-quota");

    let c = Container::init(Proxy::actionloop(&[]), &d.code, init_env(&w));
    let run = |params: &Value, id: &str| c.run_as("aem-quota", params, id);
    let good = |id: &str| {
        let result = run(&web_call(quota.clone(), Some(&org), json!({})), id);
        cases[0].check(&result, &format!("allowed caller {id}"));
    };
    good("q-first");
    // Refused before anything is called: callers of another org or none (and a widened org
    // list, which cannot be believed), and inputs a caller adds or changes (a web action's query
    // and body params join the action's params), with one answer that names none of them (the
    // log does, for the operator). The next caller is served as usual.
    let mut refused = vec![
        (
            web_call(quota.clone(), Some("OTHER0000000000000000@AdobeOrg"), json!({})),
            403,
            "not allowed",
        ),
        (web_call(quota.clone(), None, json!({})), 403, "x-gw-ims-org-id"),
        (
            web_call(
                quota.clone(),
                Some(&org),
                json!({"ALLOWED_IMS_ORGS": "OTHER0000000000000000@AdobeOrg"}),
            ),
            403,
            "not allowed",
        ),
    ];
    for (name, value) in [
        ("HTTP_TIMEOUT_MS", json!(1)),
        ("IMS_BASE_URL", json!("http://127.0.0.1:9")),
        ("LOG_LEVEL", json!("trace")),
        ("AEM_PATH", json!("/content/dam/demo.json")),
    ] {
        refused.push((
            web_call(quota.clone(), Some(&org), json!({ name: value })),
            400,
            "differ from the deployment's sealed configuration",
        ));
    }
    for (i, (params, want, needle)) in refused.iter().enumerate() {
        let before = w.emu.request_count("/");
        let result = run(params, &format!("q-refused-{i}"));
        assert_eq!(status(&result), *want, "{needle}: {result}");
        assert!(message(&result).contains(needle), "{needle}: {result}");
        assert_eq!(w.emu.request_count("/"), before, "{needle}: something was called");
        good(&format!("q-after-{i}"));
    }
    c.proxy.wait_for_sentinels(1 + 2 * refused.len());
    let logs = c.proxy.stderr();
    assert!(logs.contains("web request: get "), "{logs}");
    assert_no_secrets(&w, &logs, "the logs");
    drop(c);

    // aem-get lets callers choose AEM_PATH (raw-http: in the query or the base64 body), and
    // nothing else.
    let get = d.bound("aem-get");
    let c = Container::init(Proxy::actionloop(&[]), &d.code, init_env(&w));
    let raw = |query: &str, body: &str| {
        web_call(
            get.clone(),
            Some(&org),
            json!({"__ow_path": "/assets", "__ow_query": query, "__ow_body": body_b64(body)}),
        )
    };
    let run = |params: &Value, id: &str| c.run_as("aem-get", params, id);
    let result = run(&raw("AEM_PATH=%2Fcontent%2Fdam%2Fdemo.json", ""), "g-1");
    cases[1].check(&result, "AEM_PATH in the query");
    let result = run(&raw("", r#"{"AEM_PATH":"/api/assets/demo.json"}"#), "g-2");
    cases[4].check(&result, "AEM_PATH in the body");
    let result = run(
        &raw(
            "OPERATION=aem-quota&IMS_BASE_URL=http%3A%2F%2F127.0.0.1%3A9&AEM_PATH=%2Fcontent%2Fdam%2Fdemo.json",
            r#"{"OAUTHS2S_CLIENT_ID":"caller-client","LOG_LEVEL":"trace"}"#,
        ),
        "g-3",
    );
    cases[1].check(&result, "a raw request also naming inputs it may not set");
    c.proxy.wait_for_sentinels(3);
    let logs = c.proxy.stderr();
    assert!(logs.contains("web request: get /assets"), "{logs}");
    assert!(!logs.contains("[TRACE"), "a caller raised the log level:\n{logs}");
    assert_no_secrets(&w, &logs, "the logs");
    assert_eq!(
        w.emu.tokens_issued(&w.env["OAUTHS2S_CLIENT_ID"]),
        2,
        "one per container"
    );
}

/// A zip without a seal refuses web activations, with a message saying why, and still serves
/// the namespace's own (non-web) invocations.
#[test]
fn go_proxy_refuses_an_unsealed_web_activation() {
    let w = World::new();
    let org = w.env["IMS_ORG_ID"].clone();
    let c = container(&w, &[]);
    let result = c.run(&web_call(w.oauth(), Some(&org), json!({})), "unsealed-web");
    assert_eq!(status(&result), 500, "{result}");
    // The caller is told only that; the log says why, for the operator.
    let why = message(&result);
    assert!(
        why.contains("misconfigured") && !why.contains("ims-action.seal.json"),
        "{why}"
    );
    c.proxy.wait_for_sentinels(1);
    let logs = c.proxy.stderr();
    assert!(
        logs.contains("ims-action.seal.json") && logs.contains("web calls are refused"),
        "{logs}"
    );
    assert_eq!(w.emu.request_count("/"), 0);
    cases(&w)[0].check(&c.run(&w.oauth(), "not-web"), "a non-web activation");
}

fn body_b64(body: &str) -> String {
    use base64::Engine;
    if body.is_empty() {
        return String::new();
    }
    base64::engine::general_purpose::STANDARD.encode(body)
}
