//! The Go ActionLoop proxy: one long-lived `exec` per container; per `/run` it writes the body
//! with its newlines removed, plus `\n`, to the binary's stdin and waits, with no timeout, for
//! exactly one line on fd 3. A reply missing or one too many desynchronises every later
//! activation of the container.

use serde_json::{Value, json};

use crate::common::*;
use crate::invoker::{self, Code, Container, plain_zip, run_body};
use crate::proxy::Proxy;
use crate::{Case, aem_get, assert_no_secrets, cases, web};

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

/// After a request that is not a good activation, the next one gets its own answer, from the
/// same process.
fn then_a_good_one(c: &Container, cases: &[Case], i: usize, after: &str) {
    let case = &cases[i % cases.len()];
    let result = c.run(&case.params, &format!("good-{i}"));
    case.check(&result, &format!("the request after {after}"));
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
    for body in [&b"{}"[..], br#"{"activation_id":"a"}"#] {
        let result = c.result_of(c.run_raw(body));
        assert_eq!(status(&result), 400, "{result}");
        assert!(message(&result).contains("OAUTHS2S_CLIENT_ID"), "{result}");
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

/// Web activations: what OpenWhisk adds for an HTTP caller (`__ow_method`, `__ow_headers`,
/// `__ow_path`; `__ow_query` and `__ow_body` with raw-http) reaches the action intact through
/// the proxy; `ALLOWED_IMS_ORGS` from `/init`'s env (the environment, which callers cannot set)
/// refuses other orgs; the caller's token never reaches the logs.
#[test]
fn go_proxy_web_activations() {
    let w = World::new();
    let org = w.env["IMS_ORG_ID"].clone();
    let env = json!({"IMS_ACTION_ALLOW_HOSTS": w.emu.host_port(), "ALLOWED_IMS_ORGS": org});
    let c = Container::init(Proxy::actionloop(&[]), plain_zip(), env);
    let cases = cases(&w);

    let debug = json!({"LOG_LEVEL": "debug"});
    let result = c.run(&web(w.oauth(), Some(&org), debug.clone()), "web-1");
    cases[0].check(&result, "a web GET from the allowed org");

    let result = c.run(
        &web(w.oauth(), Some("OTHER0000000000000000@AdobeOrg"), debug.clone()),
        "web-2",
    );
    assert_eq!(status(&result), 403, "{result}");
    let result = c.run(&web(w.oauth(), None, debug.clone()), "web-3");
    assert_eq!(status(&result), 403, "{result}");
    assert!(message(&result).contains("x-gw-ims-org-id"), "{result}");

    // raw-http: the request inputs come from the caller's query or (base64) body.
    let raw = |query: &str, body: &str| {
        web(
            w.oauth(),
            Some(&org),
            json!({
                "LOG_LEVEL": "debug",
                "__ow_path": "/assets",
                "__ow_query": query,
                "__ow_body": body_b64(body),
            }),
        )
    };
    let result = c.run(
        &raw("OPERATION=aem-get&AEM_PATH=%2Fcontent%2Fdam%2Fdemo.json", ""),
        "web-4",
    );
    cases[1].check(&result, "raw-http query");
    let result = c.run(
        &raw(
            "",
            r#"{"OPERATION":"aem-get","AEM_PATH":"/api/assets/demo.json"}"#,
        ),
        "web-5",
    );
    cases[4].check(&result, "raw-http body");
    // Never an endpoint or a credential from the caller: the bound ones are used.
    let result = c.run(
        &raw(
            "IMS_BASE_URL=http%3A%2F%2F127.0.0.1%3A9",
            r#"{"OAUTHS2S_CLIENT_ID":"caller-client"}"#,
        ),
        "web-6",
    );
    cases[0].check(&result, "raw-http trying to set an endpoint and a credential");
    // A web caller after a refused one is served normally.
    let result = c.run(
        &web(aem_get(&w, "/content/dam/demo.json"), Some(&org), debug),
        "web-7",
    );
    cases[1].check(&result, "a web GET after the others");

    c.proxy.wait_for_sentinels(7);
    let logs = c.proxy.stderr();
    assert!(logs.contains("web request: get /assets"), "{logs}");
    assert_no_secrets(&w, &logs, "the logs");
    assert_eq!(w.emu.tokens_issued(&w.env["OAUTHS2S_CLIENT_ID"]), 1);
}

fn body_b64(body: &str) -> String {
    use base64::Engine;
    if body.is_empty() {
        return String::new();
    }
    base64::engine::general_purpose::STANDARD.encode(body)
}
