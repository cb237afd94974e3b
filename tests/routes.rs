//! API routes (`OPERATION=api`, the sealed `API_ROUTES` table) end to end against the
//! emulator's Target Admin API: what a route sends (path, query, headers, body), what it refuses
//! before anything leaves the action, what it answers, and what a web caller may set.

mod common;

use adobe_emulator::Fault;
use common::*;
use serde_json::{Value, json};

const V3: &str = "application/vnd.adobe.target.v3+json";

/// The routes the tests call, on the emulator.
fn table(w: &World) -> Value {
    let base = w.emu.base_url();
    json!({
        "target-activities": {
            "url": format!("{base}/{{tenant}}/target/activities"),
            "params": {"tenant": "[a-z0-9]{1,32}"},
            "query": {"limit": "[0-9]{1,3}", "offset": "[0-9]{1,5}", "sortBy": "-?(id|name)"},
            "headers": {"Accept": V3}
        },
        "target-activities-bare": {
            "url": format!("{base}/{{tenant}}/target/activities"),
            "params": {"tenant": "[a-z0-9]{1,32}"},
            "headers": {"accept": V3},
            "adobe_headers": false
        },
        "target-audience-create": {
            "url": format!("{base}/{{tenant}}/target/audiences"),
            "method": "POST",
            "params": {"tenant": "[a-z0-9]{1,32}"},
            "body": true,
            "body_max_bytes": 2048,
            "headers": {"content-type": V3}
        },
        // A careless route: its regexes admit anything. The engine must hold all the same.
        "anything": {
            "url": format!("{base}/{{tenant}}/target/{{resource}}"),
            "params": {"tenant": ".*", "resource": "(?s).*"},
            "query": {"q": "(?s).*"},
            "headers": {"accept": V3}
        },
        "echo": {
            "url": format!("{base}/echo/{{id}}"),
            "method": "POST",
            "params": {"id": "[a-z]+"},
            "body": true
        }
    })
}

/// OAuth credential + the table + `OPERATION=api` + `extra`.
fn api(w: &World, extra: Value) -> Value {
    with(
        with(w.oauth(), json!({"OPERATION": "api", "API_ROUTES": table(w)})),
        extra,
    )
}

fn call_route(w: &World, route: &str, params: Value) -> Value {
    w.call(
        &w.action(),
        api(w, json!({"API_ROUTE": route, "API_PARAMS": params})),
    )
}

#[test]
fn a_get_route_fills_its_placeholder_and_declared_query() {
    let w = World::new();
    let r = call_route(
        &w,
        "target-activities",
        json!({"tenant": "acme", "limit": 2, "sortBy": "name"}),
    );
    assert_eq!(status(&r), 200, "{r}");
    assert_eq!(r["headers"]["content-type"], "application/json", "{r}");
    assert_eq!(r["body"]["total"], 5, "{r}");
    assert_eq!(r["body"]["activities"].as_array().map(Vec::len), Some(2), "{r}");
    assert_eq!(r["body"]["activities"][0]["name"], "Auto-allocate banner", "{r}");
    let reqs = w.emu.requests("/acme/target/");
    assert_eq!(reqs.len(), 1);
    let req = &reqs[0];
    assert_eq!(req.method, "GET");
    assert_eq!(req.path, "/acme/target/activities");
    assert_eq!(req.query, "limit=2&sortBy=name");
    assert_eq!(req.header("accept"), Some(V3));
    assert_eq!(
        req.header("x-api-key"),
        Some(w.env["OAUTHS2S_CLIENT_ID"].as_str())
    );
    assert_eq!(req.header("x-gw-ims-org-id"), Some(w.env["IMS_ORG_ID"].as_str()));
    assert!(
        req.header("authorization")
            .is_some_and(|a| a.starts_with("Bearer "))
    );
}

#[test]
fn a_post_route_sends_the_json_body_and_is_not_retried() {
    let w = World::new();
    let audience = json!({"name": "Returning buyers", "definition": {"and": [{"visitor": "returning"}]}});
    let r = w.call(
        &w.action(),
        api(
            &w,
            json!({"API_ROUTE": "target-audience-create", "API_PARAMS": {"tenant": "acme"}, "API_BODY": audience}),
        ),
    );
    assert_eq!(status(&r), 200, "{r}");
    assert_eq!(r["body"]["name"], "Returning buyers", "{r}");
    let reqs = w.emu.requests("/acme/target/audiences");
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].method, "POST");
    assert_eq!(reqs[0].header("content-type"), Some(V3));
    assert_eq!(serde_json::from_slice::<Value>(&reqs[0].body).unwrap(), audience);

    // The body as JSON text (what a web form or query carries) is the same body.
    let text = audience.to_string();
    let r = w.call(
        &w.action(),
        api(
            &w,
            json!({"API_ROUTE": "target-audience-create", "API_PARAMS": "{\"tenant\":\"acme\"}", "API_BODY": text}),
        ),
    );
    assert_eq!(status(&r), 200, "{r}");

    // A 503 to a POST is not retried (it may have created the audience): 502, one request.
    let before = w.emu.request_count("/acme/target/audiences");
    w.emu.inject_fault(
        "/acme/target/audiences",
        Fault::Status {
            status: 503,
            retry_after: None,
            body: None,
        },
        1,
    );
    let r = w.call(
        &w.action(),
        api(
            &w,
            json!({"API_ROUTE": "target-audience-create", "API_PARAMS": {"tenant": "acme"}, "API_BODY": audience}),
        ),
    );
    assert_eq!(status(&r), 502, "{r}");
    assert_eq!(w.emu.request_count("/acme/target/audiences") - before, 1);

    // The same fault on a GET is retried, and the retry answers.
    w.emu.inject_fault(
        "/acme/target/activities",
        Fault::Status {
            status: 503,
            retry_after: None,
            body: None,
        },
        1,
    );
    let r = call_route(&w, "target-activities", json!({"tenant": "acme"}));
    assert_eq!(status(&r), 200, "{r}");
    assert_eq!(w.emu.request_count("/acme/target/activities"), 2);
}

#[test]
fn adobe_headers_on_and_off_decide_what_reaches_the_api() {
    let w = World::new();
    let r = call_route(&w, "target-activities-bare", json!({"tenant": "acme"}));
    // Target's gateway wants x-api-key: its 403 comes back as a 403 with its body.
    assert_eq!(status(&r), 403, "{r}");
    assert_eq!(r["error"]["body"]["error_code"], "403003", "{r}");
    assert_eq!(r["error"]["headers"]["content-type"], "application/json", "{r}");
    let reqs = w.emu.requests("/acme/target/activities");
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].header("x-api-key"), None);
    assert_eq!(reqs[0].header("x-gw-ims-org-id"), None);
    assert!(reqs[0].header("authorization").is_some());

    let r = call_route(&w, "target-activities", json!({"tenant": "acme"}));
    assert_eq!(status(&r), 200, "{r}");
    let reqs = w.emu.requests("/acme/target/activities");
    assert_eq!(
        reqs[1].header("x-api-key"),
        Some(w.env["OAUTHS2S_CLIENT_ID"].as_str())
    );
    assert_eq!(
        reqs[1].header("x-gw-ims-org-id"),
        Some(w.env["IMS_ORG_ID"].as_str())
    );
}

#[test]
fn path_escapes_and_header_injection_are_refused_before_anything_is_sent() {
    let w = World::new();
    let bad = [
        "..",
        ".",
        "",
        "a/b",
        "../../ims/token/v3",
        "a\\b",
        "%2e%2e",
        "%2E%2e%2F",
        "a%2Fb",
        "%u002F",
        "100%",
        "%00",
        "a\0b",
        "a\r\nx-injected: 1",
        "a\nb",
        "a\rb",
    ];
    for value in bad {
        for field in ["tenant", "resource"] {
            let mut values = json!({"tenant": "acme", "resource": "activities"});
            values[field] = json!(value);
            let r = call_route(&w, "anything", values);
            assert_eq!(status(&r), 400, "{field}={value:?}: {r}");
            assert!(
                message(&r).contains(&format!("'API_PARAMS.{field}'")),
                "{field}={value:?}: {r}"
            );
        }
    }
    for value in ["a\r\nx-injected: 1", "a\0b", "x\n"] {
        let r = call_route(
            &w,
            "anything",
            json!({"tenant": "acme", "resource": "activities", "q": value}),
        );
        assert_eq!(status(&r), 400, "q={value:?}: {r}");
        assert!(message(&r).contains("'API_PARAMS.q'"), "{r}");
    }
    // Nothing reached the emulator: not the API, and not IMS either (no token was fetched).
    assert_eq!(w.emu.request_count("/"), 0);

    // What the engine does let through is one segment, percent-encoded, and a query value.
    let r = call_route(
        &w,
        "anything",
        json!({"tenant": "acme", "resource": "a b?#;..x", "q": "1/2&x=y#z"}),
    );
    assert_eq!(status(&r), 404, "{r}");
    let reqs = w.emu.requests("/acme/target/");
    assert_eq!(reqs.len(), 1, "{reqs:?}");
    assert_eq!(reqs[0].path, "/acme/target/a%20b%3F%23%3B..x");
    assert_eq!(reqs[0].query, "q=1%2F2%26x%3Dy%23z");
    assert_eq!(reqs[0].query_param("q").as_deref(), Some("1/2&x=y#z"));
}

#[test]
fn values_the_route_does_not_declare_or_match_are_refused_by_name() {
    let w = World::new();
    let cases = [
        (
            "target-activities",
            json!({"tenant": "acme", "foo": "1"}),
            None,
            "'API_PARAMS'",
            "'foo'",
        ),
        (
            "target-activities",
            json!({"limit": "5"}),
            None,
            "'API_PARAMS.tenant'",
            "is required",
        ),
        (
            "target-activities",
            json!({"tenant": "ACME"}),
            None,
            "'API_PARAMS.tenant'",
            "[a-z0-9]{1,32}",
        ),
        (
            "target-activities",
            json!({"tenant": "acme", "limit": "1000"}),
            None,
            "'API_PARAMS.limit'",
            "does not match",
        ),
        (
            "target-activities",
            json!({"tenant": {"x": 1}}),
            None,
            "'API_PARAMS.tenant'",
            "string or a number",
        ),
        (
            "target-activities",
            json!({"tenant": "acme"}),
            Some(json!({"x": 1})),
            "'API_BODY'",
            "takes no body",
        ),
        (
            "target-audience-create",
            json!({"tenant": "acme"}),
            Some(json!({"name": "x".repeat(3000)})),
            "'API_BODY'",
            "at most 2048 bytes",
        ),
        (
            "target-audience-create",
            json!({"tenant": "acme"}),
            Some(json!("{not json")),
            "'API_BODY'",
            "must be JSON",
        ),
        (
            "no-such-route",
            json!({}),
            None,
            "'API_ROUTE'",
            "target-activities",
        ),
    ];
    for (route, values, body, field, why) in cases {
        let mut extra = json!({"API_ROUTE": route, "API_PARAMS": values});
        if let Some(body) = body {
            extra["API_BODY"] = body;
        }
        let r = w.call(&w.action(), api(&w, extra));
        assert_eq!(status(&r), 400, "{route} {values}: {r}");
        assert!(message(&r).contains(field), "{route} {values}: {r}");
        assert!(message(&r).contains(why), "{route} {values}: {r}");
    }
    let r = w.call(&w.action(), api(&w, json!({})));
    assert_eq!(status(&r), 400, "{r}");
    assert!(message(&r).contains("API_ROUTE"), "{r}");
    assert_eq!(w.emu.request_count("/"), 0);
}

#[test]
fn a_route_to_a_host_outside_the_allowlist_is_refused_before_a_token_is_fetched() {
    let w = World::new();
    for url in [
        "https://evil.example/{tenant}/target/activities",
        "https://ims-na1.adobelogin.com/ims/profile/v1",
        "http://mc.adobe.io/{tenant}/target/activities",
        "https://mc.adobe.io.evil.example/x",
        "https://127.0.0.2/x",
    ] {
        let mut routes = table(&w);
        routes["elsewhere"] = json!({"url": url, "params": {"tenant": "[a-z]+"}});
        if !url.contains("{tenant}") {
            routes["elsewhere"] = json!({ "url": url });
        }
        // The request names a good route: the table is refused whole all the same.
        let r = w.call(
            &w.action(),
            with(
                api(
                    &w,
                    json!({"API_ROUTE": "target-activities", "API_PARAMS": {"tenant": "acme"}}),
                ),
                json!({ "API_ROUTES": routes }),
            ),
        );
        assert_eq!(status(&r), 500, "{url}: {r}");
        assert!(
            message(&r).starts_with("configuration error: API_ROUTES: route 'elsewhere': \"url\""),
            "{url}: {r}"
        );
    }
    for (name, spec, needle) in [
        (
            "auth",
            json!({"url": "https://mc.adobe.io/x", "headers": {"Authorization": "Bearer mine"}}),
            "'authorization'",
        ),
        (
            "org",
            json!({"url": "https://mc.adobe.io/x", "headers": {"x-gw-ims-org-id": "other@AdobeOrg"}}),
            "'x-gw-ims-org-id'",
        ),
        (
            "host",
            json!({"url": "https://mc.adobe.io/x", "headers": {"Host": "evil.example"}}),
            "'host'",
        ),
        (
            "te",
            json!({"url": "https://mc.adobe.io/x", "headers": {"transfer-encoding": "chunked"}}),
            "'transfer-encoding'",
        ),
    ] {
        let mut routes = table(&w);
        routes[name] = spec;
        let r = w.call(
            &w.action(),
            with(
                api(
                    &w,
                    json!({"API_ROUTE": "target-activities", "API_PARAMS": {"tenant": "acme"}}),
                ),
                json!({ "API_ROUTES": routes }),
            ),
        );
        assert_eq!(status(&r), 500, "{name}: {r}");
        assert!(message(&r).contains(&format!("route '{name}'")), "{r}");
        assert!(message(&r).contains(needle), "{r}");
    }
    assert_eq!(
        w.emu.request_count("/"),
        0,
        "no token was fetched, nothing was sent"
    );
}

#[test]
fn the_seal_refuses_a_callers_routes_and_admits_the_opted_in_request_inputs() {
    let w = World::new();
    let bound = with(
        w.oauth(),
        json!({
            "OPERATION": "api",
            "API_ROUTES": table(&w),
            "CALLER_INPUTS": "API_ROUTE,API_PARAMS",
        }),
    );
    let action = w.sealed_action(&bound);
    let query = |route: &str, values: &Value| {
        form_urlencoded::Serializer::new(String::new())
            .append_pair("API_ROUTE", route)
            .append_pair("API_PARAMS", &values.to_string())
            .finish()
    };
    // The opted-in inputs from the caller's query: the route is called.
    let r = action.handle(
        web_call(
            bound.clone(),
            None,
            json!({"__ow_query": query("target-activities", &json!({"tenant": "acme", "limit": 1}))}),
        ),
        &activation(),
    );
    assert_eq!(status(&r), 200, "{r}");
    assert_eq!(w.emu.request_count("/acme/target/activities"), 1);

    // A caller's own table, as a param: refused, nothing sent.
    let mut theirs = table(&w);
    theirs["target-activities"]["params"]["tenant"] = json!(".*");
    let before = w.emu.request_count("/");
    let r = action.handle(
        web_call(
            with(bound.clone(), json!({ "API_ROUTES": theirs })),
            None,
            json!({"__ow_query": query("target-activities", &json!({"tenant": "acme"}))}),
        ),
        &activation(),
    );
    assert_eq!(status(&r), 400, "{r}");
    // A web caller is told only that its request departs from the sealed configuration (the
    // activation log names the input for the operator): it learns nothing of what is bound.
    assert!(!message(&r).contains("API_ROUTES"), "{r}");
    assert!(message(&r).contains("sealed configuration"), "{r}");
    // In the raw body or the query, a table is not a request input: it is never merged.
    let r = action.handle(
        web_call(
            bound.clone(),
            None,
            json!({
                "__ow_method": "post",
                "__ow_body": json!({"API_ROUTES": theirs, "API_ROUTE": "target-activities", "API_PARAMS": {"tenant": "ACME"}}).to_string(),
            }),
        ),
        &activation(),
    );
    assert_eq!(status(&r), 400, "{r}");
    assert!(
        message(&r).contains("'API_PARAMS.tenant'"),
        "the sealed table judged it: {r}"
    );
    assert_eq!(w.emu.request_count("/"), before);

    // API_BODY is not opted in here: a caller's body is dropped, the route is called without.
    let r = action.handle(
        web_call(
            bound.clone(),
            None,
            json!({"__ow_query": query("target-activities", &json!({"tenant": "acme"})) + "&API_BODY=%7B%7D"}),
        ),
        &activation(),
    );
    assert_eq!(status(&r), 200, "{r}");
}

#[test]
fn an_api_that_echoes_the_request_answers_nothing_secret() {
    let w = World::new();
    let secret = w.env["OAUTHS2S_CLIENT_SECRET"].clone();
    w.emu.inject_fault("/echo/", Fault::Echo { status: 200 }, 1);
    let r = w.call(
        &w.action(),
        api(
            &w,
            json!({"API_ROUTE": "echo", "API_PARAMS": {"id": "abc"}, "API_BODY": {"note": secret}}),
        ),
    );
    assert_eq!(status(&r), 200, "{r}");
    assert_eq!(
        r["body"]["request"]["headers"]["authorization"], "Bearer ****",
        "{r}"
    );
    w.emu.inject_fault("/echo/", Fault::Echo { status: 400 }, 1);
    let e = w.call(
        &w.action(),
        api(
            &w,
            json!({"API_ROUTE": "echo", "API_PARAMS": {"id": "abc"}, "API_BODY": {"note": secret}}),
        ),
    );
    assert_eq!(status(&e), 400, "{e}");
    assert_eq!(e["error"]["body"]["request"]["path"], "/echo/abc", "{e}");
    let tokens: Vec<String> = w
        .emu
        .requests("/echo/")
        .iter()
        .filter_map(|r| r.header("authorization"))
        .map(|a| a.trim_start_matches("Bearer ").to_string())
        .collect();
    assert_eq!(tokens.len(), 2);
    let text = r.to_string() + &e.to_string();
    for s in tokens.iter().chain([&secret]) {
        assert!(!text.contains(s.as_str()), "a secret came back: {text}");
    }
}

#[test]
fn a_4xx_is_passed_on_with_its_body_and_a_5xx_becomes_a_502() {
    let w = World::new();
    w.emu.inject_fault(
        "/acme/target/activities",
        Fault::Status {
            status: 404,
            retry_after: None,
            body: Some(
                r#"{"errors":[{"errorCode":"Activity.NotFound","message":"no such activity"}]}"#.into(),
            ),
        },
        1,
    );
    let r = call_route(&w, "target-activities", json!({"tenant": "acme"}));
    assert_eq!(status(&r), 404, "{r}");
    assert_eq!(
        r["error"]["body"]["errors"][0]["errorCode"], "Activity.NotFound",
        "{r}"
    );
    // A 500 on a GET is retried (docs/retries.md); one that lasts every attempt is a 502.
    let before = w.emu.request_count("/acme/");
    w.emu.inject_fault(
        "/acme/target/activities",
        Fault::Status {
            status: 500,
            retry_after: None,
            body: None,
        },
        3,
    );
    let r = call_route(&w, "target-activities", json!({"tenant": "acme"}));
    assert_eq!(status(&r), 502, "{r}");
    assert!(message(&r).contains("the API answered HTTP 500"), "{r}");
    assert_eq!(w.emu.request_count("/acme/") - before, 3);
}

#[test]
fn health_lists_each_routes_name_method_and_host_only() {
    let w = World::new();
    let r = w.call(
        &w.action(),
        with(api(&w, json!({})), json!({"OPERATION": "health"})),
    );
    assert_eq!(status(&r), 200, "{r}");
    let host = w.emu.host_port();
    assert_eq!(
        r["body"]["routes"],
        json!([
            {"name": "anything", "method": "GET", "host": host},
            {"name": "echo", "method": "POST", "host": host},
            {"name": "target-activities", "method": "GET", "host": host},
            {"name": "target-activities-bare", "method": "GET", "host": host},
            {"name": "target-audience-create", "method": "POST", "host": host},
        ])
    );
    assert!(!r.to_string().contains("target/activities"), "no paths: {r}");
    assert!(!r.to_string().contains(V3), "no headers: {r}");
}

#[test]
fn every_example_table_is_a_route_table_of_adobe_hosts() {
    use ims_action::Action;
    use ims_action::endpoint::AllowList;
    use ims_action::token::TokenCache;
    // Adobe's hosts only, as a deployment without IMS_ACTION_ALLOW_HOSTS.
    let action = Action::new(AllowList::adobe_only(), TokenCache::in_memory());
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/routes");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let names: Vec<String> = files
        .iter()
        .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for api in [
        "aem-author.json",
        "aep.json",
        "analytics.json",
        "cja.json",
        "target.json",
    ] {
        assert!(
            names.iter().any(|n| n == api),
            "examples/routes/{api} is missing: {names:?}"
        );
    }
    for file in files {
        let example: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        assert!(
            example["reference"]
                .as_str()
                .is_some_and(|r| r.starts_with("https://developer.adobe.com/")),
            "{file:?}"
        );
        // As .env carries it: JSON text on one line.
        let text = example["routes"].to_string();
        let r = action.handle(
            json!({"OPERATION": "health", "API_ROUTES": text}),
            &ims_action::Activation::default(),
        );
        assert_eq!(status(&r), 200, "{file:?}: {r}");
        let routes = r["body"]["routes"].as_array().cloned().unwrap_or_default();
        assert_eq!(
            routes.len(),
            example["routes"].as_object().unwrap().len(),
            "{file:?}: {r}"
        );
    }
}

#[test]
fn aem_service_credentials_hold_every_route_to_their_own_environment() {
    let w = World::new();
    let mut routes = table(&w);
    routes["own-author"] = json!({"url": "https://author-p12345-e67890.adobeaemcloud.com/content/{p}", "params": {"p": "[a-z.]+"}});
    let call = |routes: &Value, creds: Value| {
        w.call(
            &w.action(),
            with(
                creds,
                json!({"OPERATION": "api", "API_ROUTES": routes, "API_ROUTE": "target-activities", "API_PARAMS": {"tenant": "acme"}}),
            ),
        )
    };
    let r = call(&routes, w.aem_credentials());
    assert_eq!(status(&r), 200, "their own environment is fine: {r}");
    routes["other-author"] =
        json!({"url": "https://author-p1-e2.adobeaemcloud.com/content/{p}", "params": {"p": "[a-z.]+"}});
    let before = w.emu.request_count("/");
    let r = call(&routes, w.aem_credentials());
    assert_eq!(status(&r), 500, "{r}");
    assert!(
        message(&r).contains(
            "route 'other-author': host 'author-p1-e2.adobeaemcloud.com' is not of the AEM environment"
        ),
        "{r}"
    );
    // Any other credential may call it (the deployment chose the host).
    assert_eq!(status(&call(&routes, w.oauth())), 200);
    // A developer token has no client id to send as x-api-key: said at configuration time.
    let r = call(&routes, w.dev_token());
    assert_eq!(status(&r), 500, "{r}");
    assert!(
        message(&r).contains("route 'target-activities': sends x-api-key (adobe_headers)"),
        "{r}"
    );
    assert_eq!(
        w.emu.request_count("/") - before,
        2,
        "only the OAuth token and call"
    );
}

#[test]
fn put_patch_and_delete_reach_the_api_as_such_and_only_put_and_delete_are_retried() {
    let w = World::new();
    let base = w.emu.base_url();
    let mut routes = table(&w);
    for (name, method, body) in [
        ("put", "PUT", true),
        ("patch", "PATCH", true),
        ("delete", "DELETE", false),
    ] {
        routes[name] = json!({"url": format!("{base}/echo/{name}"), "method": method, "body": body});
    }
    let call = |route: &str, body: Option<Value>| {
        let mut extra = json!({"API_ROUTES": routes, "API_ROUTE": route});
        if let Some(body) = body {
            extra["API_BODY"] = body;
        }
        w.call(&w.action(), api(&w, extra))
    };
    for (route, body) in [
        ("put", Some(json!({"a": 1}))),
        ("patch", Some(json!([1, 2]))),
        ("delete", None),
    ] {
        let path = format!("/echo/{route}");
        w.emu.inject_fault(&path, Fault::Echo { status: 200 }, 1);
        let r = call(route, body.clone());
        assert_eq!(status(&r), 200, "{route}: {r}");
        let reqs = w.emu.requests(&path);
        assert_eq!(reqs.len(), 1, "{route}");
        assert_eq!(reqs[0].method, route.to_ascii_uppercase());
        match &body {
            Some(b) => {
                assert_eq!(serde_json::from_slice::<Value>(&reqs[0].body).unwrap(), *b);
                assert_eq!(reqs[0].header("content-type"), Some("application/json"));
            }
            None => assert!(reqs[0].body.is_empty()),
        }
        // A 503, then the echo: an idempotent method is sent again, PATCH is not.
        w.emu.inject_fault(
            &path,
            Fault::Status {
                status: 503,
                retry_after: None,
                body: None,
            },
            1,
        );
        w.emu.inject_fault(&path, Fault::Echo { status: 200 }, 1);
        let r = call(route, body.clone());
        let sent = w.emu.requests(&path).len() - 1;
        match route {
            "patch" => assert_eq!((status(&r), sent), (502, 1), "{route}: {r}"),
            _ => assert_eq!((status(&r), sent), (200, 2), "{route}: {r}"),
        }
    }
}
