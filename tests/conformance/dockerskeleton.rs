//! The dockerskeleton proxy (`wsk action create --native`): a new `exec` process per `/run`,
//! params as `argv[1]` and on stdin (stdin only over 128 KiB), the activation's context as
//! `__OW_*` variables, the result on the last line of stdout. It ignores `/init`'s env: the
//! action sees the proxy's own environment.

use serde_json::{Value, json};

use crate::common::*;
use crate::deployment::Deployment;
use crate::invoker::{self, Code, Container, now_ms, plain_zip, run_body, run_envelope};
use crate::proxy::{Proxy, SENTINEL};
use crate::{assert_no_secrets, cases, then_a_good_one};

fn container(w: &World, extra_env: &[(&str, &str)]) -> Container {
    let host = w.emu.host_port();
    let mut env = vec![("IMS_ACTION_ALLOW_HOSTS", host.as_str())];
    env.extend_from_slice(extra_env);
    Container::init(Proxy::dockerskeleton(&env), plain_zip(), json!({}))
}

fn token_files(c: &Container) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(c.proxy.scratch().join("tmp/ims-action-tokens"))
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default()
}

/// Many activations per container: one process each (no action process outlives its `/run`),
/// each with its own activation context, all sharing one token through the one-shot file cache.
#[test]
fn dockerskeleton_one_process_per_activation_one_token_per_container() {
    let w = World::new();
    let c = container(&w, &[]);
    let cases = cases(&w);
    let n = 2 * cases.len();
    let mut results = String::new();
    for i in 0..n {
        let case = &cases[i % cases.len()];
        let id = format!("ds-{i}");
        let result = c.run(&with(case.params.clone(), json!({"LOG_LEVEL": "debug"})), &id);
        case.check(&result, &id);
        results.push_str(&result.to_string());
        assert!(c.proxy.children().is_empty(), "a process outlived activation {i}");
    }
    assert_eq!(w.emu.tokens_issued(&w.env["OAUTHS2S_CLIENT_ID"]), 1);
    assert_eq!(w.emu.request_count("/ims"), 1);
    assert_eq!(token_files(&c).len(), 1, "{:?}", token_files(&c));

    // Each activation's logs (its own process's stderr) carry its own id, from __OW_ACTIVATION_ID.
    c.proxy.wait_for_sentinels(n);
    let logs = c.proxy.stderr_per_activation();
    assert_eq!(logs.len(), n);
    for (i, segment) in logs.iter().enumerate() {
        let ids: Vec<&str> = segment
            .lines()
            .filter_map(|l| l.split_once("] activation ").map(|(_, id)| id))
            .collect();
        assert_eq!(ids, [format!("ds-{i}")], "activation {i}'s logs:\n{segment}");
    }
    // The result is the only line the action writes to stdout; the proxy keeps it.
    assert_eq!(c.proxy.stdout(), format!("{SENTINEL}\n").repeat(n));
    assert_no_secrets(&w, &c.proxy.stderr(), "the logs");
    assert_no_secrets(&w, &results, "a result");

    // (A small body: the proxy answers without reading it.)
    let again = c
        .proxy
        .post("/init", &invoker::init_body(&Code::of(b"PK"), json!({})));
    assert_eq!(again.status, 403, "{}", again.text());
}

/// The proxy passes params over 128 KiB (MAX_ARG_STRLEN) on stdin only, with no argument
/// and no final newline; smaller ones as `argv[1]` and on stdin.
#[test]
fn dockerskeleton_large_params_arrive_on_stdin_only() {
    let w = World::new();
    let c = container(&w, &[]);
    let cases = cases(&w);
    for (i, size) in [100 * 1024, 200 * 1024, 1024 * 1024].into_iter().enumerate() {
        let params = with(w.oauth(), json!({"NOTE": "n".repeat(size)}));
        let result = c.run(&params, &format!("big-{i}"));
        cases[0].check(&result, &format!("a {size}-byte param"));
    }
    // Non-ASCII grows under the proxy's json.dumps (\uXXXX escapes) past the limit too.
    let params = with(w.oauth(), json!({"NOTE": "é".repeat(40 * 1024)}));
    cases[0].check(&c.run(&params, "escaped"), "a param of escaped characters");
    assert_eq!(w.emu.tokens_issued(&w.env["OAUTHS2S_CLIENT_ID"]), 1);
}

/// What the proxy does with bodies that are not activations, and what the action answers for
/// the ones it passes on; the next activation is served either way.
#[test]
fn dockerskeleton_malformed_bodies() {
    let w = World::new();
    let c = container(&w, &[]);
    let cases = cases(&w);
    let envelope = |value: Value| serde_json::to_vec(&run_envelope(&value, "bad")).unwrap();

    // The proxy turns a body that is not JSON (or empty) into empty params: the action
    // answers that the inputs are missing.
    for (i, body) in [&b"not json"[..], b"", b"   ", b"\xff\xfe"].iter().enumerate() {
        let result = c.result_of(c.run_raw(body));
        assert_eq!(status(&result), 400, "{body:?}: {result}");
        assert!(message(&result).contains("OAUTHS2S_CLIENT_ID"), "{result}");
        then_a_good_one(&c, &cases, i, &format!("{body:?}"));
    }
    // The proxy refuses a body or value that is neither an object nor an array itself.
    for (i, body) in [b"[1,2]".to_vec(), envelope(json!("text")), envelope(json!(42))]
        .iter()
        .enumerate()
    {
        let reply = c.run_raw(body);
        assert_eq!(reply.status, 404, "{}", reply.text());
        then_a_good_one(&c, &cases, i + 4, "a body the proxy refused");
    }
    // It passes an array on; the action refuses it, naming the params.
    let result = c.result_of(c.run_raw(&envelope(json!([1, 2]))));
    assert_eq!(status(&result), 400, "{result}");
    assert!(message(&result).contains("params"), "{result}");
    // Too deep for the action's parser.
    let mut deep = json!(1);
    for _ in 0..200 {
        deep = json!({ "a": deep });
    }
    let result = c.result_of(c.run_raw(&run_body(&with(w.oauth(), json!({"x": deep})), "deep")));
    assert_eq!(status(&result), 400, "{result}");
    then_a_good_one(&c, &cases, 7, "too deep a value");
    // Control characters, NUL and non-ASCII in values travel escaped, in argv too.
    let params = with(w.oauth(), json!({"NOTE": "a\u{0}b\nc\r\"d\u{e9}\u{1f600}"}));
    cases[0].check(&c.run(&params, "escapes"), "control characters in a value");
}

/// Web activations of a sealed deployment under dockerskeleton: each new process finds the seal
/// beside its `exec` and the action's name in `__OW_ACTION_NAME`; callers of other orgs and added
/// inputs are refused; without a seal, web activations are refused and non-web ones served.
#[test]
fn dockerskeleton_sealed_web_activations() {
    let w = World::new();
    let d = Deployment::sealed(&w);
    let org = w.env["IMS_ORG_ID"].clone();
    let cases = cases(&w);
    let host = w.emu.host_port();
    let env = [("IMS_ACTION_ALLOW_HOSTS", host.as_str())];

    let c = Container::init(Proxy::dockerskeleton(&env), &d.code, json!({}));
    let quota = d.bound("aem-quota");
    let run = |params: &Value, id: &str| c.run_as("aem-quota", params, id);
    cases[0].check(
        &run(&web_call(quota.clone(), Some(&org), json!({})), "q-1"),
        "an allowed caller",
    );
    let other = run(
        &web_call(quota.clone(), Some("OTHER0000000000000000@AdobeOrg"), json!({})),
        "q-2",
    );
    assert_eq!(status(&other), 403, "{other}");
    let added = run(
        &web_call(quota.clone(), Some(&org), json!({"HTTP_TIMEOUT_MS": 1})),
        "q-3",
    );
    assert_eq!(status(&added), 400, "{added}");
    // One answer for any seal mismatch: the caller is not told which input (the log is).
    assert!(message(&added).contains("sealed configuration"), "{added}");
    assert!(!message(&added).contains("HTTP_TIMEOUT_MS"), "{added}");
    drop(c);

    let c = Container::init(Proxy::dockerskeleton(&env), &d.code, json!({}));
    let query = "AEM_PATH=%2Fcontent%2Fdam%2Fdemo.json";
    let raw = web_call(
        d.bound("aem-get"),
        Some(&org),
        json!({"__ow_query": query, "__ow_body": ""}),
    );
    cases[1].check(&c.run_as("aem-get", &raw, "g-1"), "AEM_PATH in the query");
    c.proxy.wait_for_sentinels(1);
    assert_no_secrets(&w, &c.proxy.stderr(), "the logs");
    drop(c);

    let c = container(&w, &[]);
    let result = c.run(&web_call(w.oauth(), Some(&org), json!({})), "unsealed");
    assert_eq!(status(&result), 500, "{result}");
    // The seal's file name is the operator's, in the log: the caller hears "misconfigured".
    assert!(message(&result).contains("misconfigured"), "{result}");
    assert!(!message(&result).contains("ims-action.seal.json"), "{result}");
    cases[0].check(&c.run(&w.oauth(), "not-web"), "a non-web activation");
    // One token per container: each has its own TMPDIR, so its own file cache.
    assert_eq!(w.emu.tokens_issued(&w.env["OAUTHS2S_CLIENT_ID"]), 3);
}

/// `/init`'s env never reaches the action under dockerskeleton: the emulator's host, allowed
/// only there, stays refused.
#[test]
fn dockerskeleton_ignores_init_env() {
    let w = World::new();
    let proxy = Proxy::dockerskeleton(&[]);
    let env = json!({"IMS_ACTION_ALLOW_HOSTS": w.emu.host_port()});
    let c = Container::init(proxy, plain_zip(), env);
    let result = c.run(&w.oauth(), "no-init-env");
    assert_eq!(status(&result), 400, "{result}");
    assert!(message(&result).contains("IMS_BASE_URL"), "{result}");
    assert_eq!(w.emu.request_count("/"), 0);
}

/// The proxy writes each activation's context into its own `os.environ`, so a field missing
/// from one `/run` keeps the previous activation's value (the invoker always sends them all),
/// and a field that is not a string makes the proxy itself fail with a 500.
#[test]
fn dockerskeleton_keeps_the_previous_activations_context() {
    let w = World::new();
    let c = container(&w, &[]);
    let past =
        json!({"value": w.oauth(), "activation_id": "late", "deadline": (now_ms() - 1_000).to_string()});
    let result = c.result_of(c.run_raw(&serde_json::to_vec(&past).unwrap()));
    assert_eq!(status(&result), 504, "{result}");
    // No deadline on this one: the past one is still in the environment.
    let result = c.result_of(c.run_raw(&serde_json::to_vec(&json!({"value": w.oauth()})).unwrap()));
    assert_eq!(status(&result), 504, "{result}");
    assert_eq!(w.emu.request_count("/"), 0);
    // A deadline as a number (what OpenWhisk's docs show) is not a string for os.environ.
    let number = json!({"value": w.oauth(), "deadline": now_ms() + 60_000});
    let reply = c.run_raw(&serde_json::to_vec(&number).unwrap());
    assert_eq!(reply.status, 500, "{}", reply.text());
    // A full context puts things right.
    cases(&w)[0].check(&c.run(&w.oauth(), "fresh"), "a full activation");
}
