//! The `health` operation, end to end against the emulator: one report per configured
//! credential (ok, warning, error), the AEM certificate's days left, token times from the
//! action's own cache, `check=true` through the cached token path, IMS's refusal, the quota,
//! and the same caller checks as every operation.

mod common;

use adobe_emulator::Fault;
use common::*;
use serde_json::{Value, json};

fn health(params: Value) -> Value {
    with(params, json!({"OPERATION": "health"}))
}

fn checked(params: Value) -> Value {
    with(params, json!({"OPERATION": "health", "check": true}))
}

/// The body of a 200, or a panic naming the result.
fn body(result: &Value) -> &Value {
    assert_eq!(status(result), 200, "{result}");
    &result["body"]
}

/// The report of one credential kind.
fn card<'a>(body: &'a Value, kind: &str) -> &'a Value {
    body["credentials"]
        .as_array()
        .and_then(|cards| cards.iter().find(|c| c["kind"] == kind))
        .unwrap_or_else(|| panic!("no {kind} in {body}"))
}

fn kinds(body: &Value) -> Vec<&str> {
    body["credentials"]
        .as_array()
        .map(|cards| cards.iter().filter_map(|c| c["kind"].as_str()).collect())
        .unwrap_or_default()
}

fn reasons(card: &Value) -> String {
    card["reasons"]
        .as_array()
        .map(|r| r.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(" | "))
        .unwrap_or_default()
}

fn is_datetime(v: &Value) -> bool {
    let s = v.as_str().unwrap_or("");
    s.len() == 20 && s.as_bytes()[10] == b'T' && s.ends_with('Z')
}

#[test]
fn an_oauth_credential_is_ok_and_says_who_it_is_without_a_secret() {
    let w = World::new();
    let action = w.action();
    let result = w.call(&action, health(w.oauth()));
    let body = body(&result);
    assert!(is_datetime(&body["generated_at"]), "{body}");
    assert_eq!(kinds(body), ["oauth-s2s"]);
    let oauth = card(body, "oauth-s2s");
    assert_eq!(oauth["state"], "ok", "{oauth}");
    assert_eq!(oauth["reasons"], json!([]));
    assert_eq!(oauth["active"], true);
    assert_eq!(oauth["title"], "OAuth Server-to-Server");
    assert_eq!(oauth["client_id"], w.demo.oauth.client_id.as_str());
    assert_eq!(oauth["org"], w.demo.org_id.as_str());
    assert_eq!(oauth["scopes"], json!(w.demo.oauth.scopes[..4]));
    for absent in ["technical_account", "certificate", "environment", "notice"] {
        assert!(oauth.get(absent).is_none(), "{absent} in {oauth}");
    }
    // Nothing asked of IMS without check=true: no token, no check, no quota.
    assert_eq!(
        oauth["token"],
        json!({"memory": {"present": false}, "store": null})
    );
    assert_eq!(oauth["check"], Value::Null);
    assert_eq!(body["quota"], Value::Null);
    assert_eq!(w.emu.request_count("/ims/"), 0);
    assert!(!result.to_string().contains(&w.demo.oauth.client_secret));
}

#[test]
fn every_kind_is_reported_in_order_and_the_first_is_active() {
    let w = World::new();
    let result = w.call(&w.action(), health(w.all_credentials()));
    let body = body(&result).clone();
    assert_eq!(
        kinds(&body),
        ["oauth-s2s", "jwt", "aem-service-credentials", "dev-token"]
    );
    let active: Vec<bool> = body["credentials"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["active"].as_bool().unwrap())
        .collect();
    assert_eq!(active, [true, false, false, false]);

    let jwt = card(&body, "jwt");
    assert_eq!(jwt["state"], "warning", "{jwt}");
    assert!(jwt["notice"].as_str().unwrap().contains("retired by Adobe"));
    assert!(reasons(jwt).contains("OAuth Server-to-Server"), "{jwt}");
    assert_eq!(jwt["technical_account"], w.demo.jwt.technical_account_id.as_str());
    // Metascopes by the names the Developer Console shows, not the claim URLs.
    assert_eq!(
        jwt["scopes"],
        json!(["ent_analytics_bulk_ingest_sdk", "ent_dataservices_sdk"])
    );

    let aem = card(&body, "aem-service-credentials");
    assert_eq!(aem["state"], "ok", "{aem}");
    assert_eq!(aem["client_id"], "cm-p12345-e67890-integration");
    assert_eq!(
        aem["environment"],
        json!({"program": "12345", "environment": "67890"})
    );
    assert_eq!(aem["technical_account"], w.demo.aem.technical_account_id.as_str());
    assert_eq!(aem["scopes"], json!(["ent_aem_cloud_api"]));
    let days = aem["certificate"]["days_left"].as_i64().unwrap();
    assert!((363..=365).contains(&days), "{aem}");
    assert!(is_datetime(&aem["certificate"]["not_after"]), "{aem}");

    let dev = card(&body, "dev-token");
    assert_eq!(dev["state"], "ok", "{dev}");
    for absent in ["client_id", "scopes", "org", "certificate"] {
        assert!(dev.get(absent).is_none(), "{absent} in {dev}");
    }
}

#[test]
fn an_aem_certificate_close_to_expiry_is_a_warning_with_the_days_left() {
    let w = World::new();
    let params = with(
        w.aem_credentials(),
        json!({"AEM_SERVICE_CREDENTIALS": w.aem_credentials_expiring_in(12)}),
    );
    let result = w.call(&w.action(), checked(params));
    let aem = card(body(&result), "aem-service-credentials").clone();
    assert_eq!(aem["state"], "warning", "{aem}");
    assert_eq!(aem["certificate"]["days_left"], 12);
    let why = reasons(&aem);
    assert!(why.contains("12 days left"), "{why}");
    assert!(why.contains("AEM Developer Console"), "{why}");
    // A warning, not a failure: the credential still gets its token and the quota.
    assert_eq!(aem["check"]["ok"], true, "{aem}");
    assert_eq!(result["body"]["quota"]["ok"], true, "{result}");
}

#[test]
fn an_expired_aem_certificate_is_an_error_and_hides_no_other_credential() {
    let w = World::new();
    let params = with(
        w.all_credentials(),
        json!({"AEM_SERVICE_CREDENTIALS": w.aem_credentials_expiring_in(-3)}),
    );
    let result = w.call(&w.action(), checked(params));
    let body = body(&result);
    let aem = card(body, "aem-service-credentials");
    assert_eq!(aem["state"], "error", "{aem}");
    assert_eq!(aem["certificate"]["days_left"], -3);
    let why = reasons(aem);
    assert!(why.contains("the certificate expired on"), "{why}");
    assert!(why.contains("refresh the certificate"), "{why}");
    // Its check is its 400, and IMS was not asked with it.
    assert_eq!(aem["check"]["ok"], false);
    assert_eq!(aem["check"]["status"], 400);
    assert_eq!(w.emu.tokens_issued(&w.demo.aem.client_id), 0);
    // The others are checked as usual.
    assert_eq!(card(body, "oauth-s2s")["state"], "ok");
    assert_eq!(card(body, "oauth-s2s")["check"]["ok"], true);
    assert_eq!(card(body, "dev-token")["check"]["ok"], true);
    assert_eq!(w.emu.tokens_issued(&w.demo.oauth.client_id), 1);
}

#[test]
fn check_gets_a_token_once_and_shows_its_times_but_never_the_token() {
    let w = World::new();
    let action = w.action();
    let first = w.call(&action, checked(w.oauth()));
    let oauth = card(body(&first), "oauth-s2s").clone();
    assert_eq!(oauth["check"]["ok"], true, "{oauth}");
    assert!(is_datetime(&oauth["check"]["obtained_at"]), "{oauth}");
    assert!(is_datetime(&oauth["check"]["expires_at"]), "{oauth}");
    let memory = &oauth["token"]["memory"];
    assert_eq!(memory["present"], true, "{oauth}");
    assert_eq!(memory["expires_at"], oauth["check"]["expires_at"]);
    assert_eq!(w.emu.tokens_issued(&w.demo.oauth.client_id), 1);

    // A second check uses the cached token: IMS is not asked again.
    let second = w.call(&action, checked(w.oauth()));
    assert_eq!(card(body(&second), "oauth-s2s")["check"]["ok"], true);
    assert_eq!(w.emu.tokens_issued(&w.demo.oauth.client_id), 1);
    // A plain report sees the token the checks cached, and so does the API call that follows:
    // it is the action's own cache.
    let plain = w.call(&action, health(w.oauth()));
    assert_eq!(
        card(body(&plain), "oauth-s2s")["token"]["memory"],
        oauth["token"]["memory"]
    );
    assert_eq!(status(&w.call(&action, w.oauth())), 200);
    assert_eq!(w.emu.tokens_issued(&w.demo.oauth.client_id), 1);

    let text = first.to_string();
    for req in w.emu.requests("/adobe/stats") {
        let bearer = req.header("authorization").unwrap().trim_start_matches("Bearer ");
        assert!(!text.contains(bearer), "the access token came back");
    }
}

#[test]
fn check_includes_the_quota_of_the_active_credential() {
    let w = World::new();
    let result = w.call(&w.action(), checked(w.all_credentials()));
    let quota = &body(&result)["quota"];
    assert_eq!(quota["ok"], true, "{quota}");
    let q = &quota["body"]["data"]["contentRequestsQuota"];
    assert_eq!(q["limit"], 50_000_000, "{quota}");
    assert_eq!(q["unit"], "contentRequests");
    assert_eq!(quota["body"]["filters"]["imsOrgId"], w.demo.org_id.as_str());
    // One quota call, with the OAuth token (the active credential's).
    let calls = w.emu.requests("/adobe/stats");
    assert_eq!(calls.len(), 1);
    assert_eq!(
        calls[0].header("x-api-key"),
        Some(w.demo.oauth.client_id.as_str())
    );
}

#[test]
fn a_developer_token_has_no_quota_and_others_follow_auth_method() {
    let w = World::new();
    let result = w.call(
        &w.action(),
        checked(with(w.all_credentials(), json!({"AUTH_METHOD": "dev-token"}))),
    );
    let forced = body(&result);
    assert_eq!(card(forced, "dev-token")["active"], true);
    assert_eq!(card(forced, "oauth-s2s")["active"], false);
    assert_eq!(forced["quota"], Value::Null);
    assert_eq!(w.emu.request_count("/adobe/stats"), 0);

    // A forced method whose inputs are absent is reported with what is missing.
    let result = w.call(
        &w.action(),
        health(with(w.oauth(), json!({"AUTH_METHOD": "jwt"}))),
    );
    let report = body(&result);
    assert_eq!(kinds(report), ["oauth-s2s", "jwt"]);
    let jwt = card(report, "jwt");
    assert_eq!(jwt["active"], true);
    assert_eq!(jwt["state"], "error");
    assert!(
        reasons(jwt).contains("missing parameter(s) 'JWT_CLIENT_ID,"),
        "{jwt}"
    );

    let bad = w.call(
        &w.action(),
        health(with(w.oauth(), json!({"AUTH_METHOD": "basic"}))),
    );
    assert_eq!(status(&bad), 400);
    assert!(message(&bad).contains("'AUTH_METHOD'"), "{bad}");
}

#[test]
fn an_ims_refusal_is_an_error_with_imss_reason_and_what_to_do() {
    let w = World::new();
    let wrong = with(
        w.oauth(),
        json!({"OAUTHS2S_CLIENT_SECRET": "p8e-rotated-0123456789abcdef"}),
    );
    let result = w.call(&w.action(), checked(wrong));
    let body = body(&result);
    let oauth = card(body, "oauth-s2s");
    assert_eq!(oauth["state"], "error", "{oauth}");
    assert_eq!(oauth["check"]["ok"], false);
    assert_eq!(oauth["check"]["status"], 502);
    assert_eq!(
        oauth["check"]["error"],
        "IMS refused the credentials (HTTP 401): invalid_client: invalid client_secret parameter"
    );
    let why = reasons(oauth);
    assert!(why.contains("invalid client_secret parameter"), "{why}");
    assert!(
        why.contains("copy both again from the Developer Console"),
        "{why}"
    );
    assert_eq!(oauth["token"]["memory"]["present"], false);
    assert!(
        body["quota"]["error"]
            .as_str()
            .unwrap()
            .starts_with("no access token: IMS refused"),
        "{body}"
    );
    assert!(!result.to_string().contains("p8e-rotated-0123456789abcdef"));
}

#[test]
fn ims_out_of_service_is_a_warning_not_a_verdict() {
    let w = World::new();
    w.emu.inject_fault(
        "/ims/",
        Fault::Status {
            status: 503,
            retry_after: None,
            body: None,
        },
        3,
    );
    let result = w.call(&w.action(), checked(w.oauth()));
    let oauth = card(body(&result), "oauth-s2s").clone();
    assert_eq!(oauth["state"], "warning", "{oauth}");
    assert_eq!(oauth["check"]["status"], 502);
    assert!(
        reasons(&oauth).starts_with("The check could not finish: IMS answered HTTP 503"),
        "{oauth}"
    );
}

#[test]
fn inputs_that_do_not_parse_are_that_credentials_error_only() {
    let w = World::new();
    let params = with(
        without(w.all_credentials(), &["OAUTHS2S_CLIENT_SECRET"]),
        json!({"AEM_DEV_TOKEN": "has spaces in it"}),
    );
    let result = w.call(&w.action(), checked(params));
    let body = body(&result);
    let oauth = card(body, "oauth-s2s");
    assert_eq!(oauth["state"], "error");
    assert_eq!(reasons(oauth), "missing parameter(s) 'OAUTHS2S_CLIENT_SECRET'");
    assert_eq!(oauth["check"]["status"], 400);
    // The client id is still shown: it helps to find the credential in the Developer Console.
    assert_eq!(oauth["client_id"], w.demo.oauth.client_id.as_str());
    assert_eq!(card(body, "dev-token")["state"], "error");
    assert_eq!(card(body, "aem-service-credentials")["check"]["ok"], true);
    // The active credential cannot be used: no quota call.
    assert_eq!(body["quota"], Value::Null);

    let none = w.call(&w.action(), json!({"OPERATION": "health"}));
    assert_eq!(body_of(&none), json!([]));

    let bad = w.call(&w.action(), with(health(w.oauth()), json!({"check": "maybe"})));
    assert_eq!(status(&bad), 400);
    assert_eq!(message(&bad), "invalid parameter 'check': must be true or false");
}

fn body_of(result: &Value) -> Value {
    body(result)["credentials"].clone()
}

#[test]
fn web_callers_pass_the_same_org_check_and_may_ask_for_a_check() {
    let w = World::new();
    let org = w.demo.org_id.clone();
    // A sealed deployment of the health action, as aio deploys it.
    let bound = with(health(w.oauth()), json!({"ALLOWED_IMS_ORGS": org}));
    let action = w.sealed_action(&bound);
    let web = |caller_org: &str, request: Value| {
        with(
            with(
                bound.clone(),
                json!({
                    "__ow_method": "get",
                    "__ow_headers": {"authorization": "Bearer caller-token-0123456789", "x-gw-ims-org-id": caller_org},
                    "__ow_path": "",
                }),
            ),
            request,
        )
    };
    let call = |params: Value| action.handle(params, &activation());
    let refused = call(web("OTHER@AdobeOrg", json!({"check": "true"})));
    assert_eq!(status(&refused), 403, "{refused}");
    assert_eq!(w.emu.request_count("/ims/"), 0);
    // `check` is a request input any caller may set: as a query param of a web action (merged
    // into the params) or in a raw-http query string.
    let allowed = call(web(&org, json!({"check": "true"})));
    assert_eq!(
        card(body(&allowed), "oauth-s2s")["check"]["ok"],
        true,
        "{allowed}"
    );
    let raw = call(web(&org, json!({"__ow_query": "check=true"})));
    assert_eq!(card(body(&raw), "oauth-s2s")["check"]["ok"], true, "{raw}");
    // Nothing else is: the caller cannot point health at another IMS.
    let moved = call(web(
        &org,
        json!({"IMS_BASE_URL": "https://ims-na2.adobelogin.com"}),
    ));
    assert_eq!(status(&moved), 400, "{moved}");
    // (A web caller is not told which input: the log names it for the operator.)
    assert!(message(&moved).contains("sealed configuration"), "{moved}");
    // Unsealed, a web call is refused before anything is read.
    let unsealed = w.call(&w.action(), web(&org, json!({"check": "true"})));
    assert_ne!(status(&unsealed), 200, "{unsealed}");
}

#[test]
fn the_binary_answers_health_in_one_shot_mode() {
    let w = World::new();
    let tmp = temp_path("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let tmp_s = tmp.to_string_lossy().into_owned();
    let allow = w.emu.host_port();
    let env = [
        ("TMPDIR", tmp_s.as_str()),
        ("IMS_ACTION_ALLOW_HOSTS", allow.as_str()),
    ];
    let params = checked(w.oauth()).to_string();
    let out = run_bin(&[&params], &env, None);
    let result = last_line(&out);
    assert_eq!(card(body(&result), "oauth-s2s")["check"]["ok"], true, "{result}");
    // A second process in the same container finds the token file: present, and IMS not asked.
    let out = run_bin(&[&health(w.oauth()).to_string()], &env, None);
    let result = last_line(&out);
    assert_eq!(
        card(body(&result), "oauth-s2s")["token"]["memory"]["present"],
        true,
        "{result}"
    );
    assert_eq!(w.emu.tokens_issued(&w.demo.oauth.client_id), 1);
    let _ = std::fs::remove_dir_all(&tmp);
}

#[test]
fn the_report_never_leans_on_the_secret_scrub() {
    // The scrub is the last line of defence; a report that needed it would be a bug here.
    let w = World::new();
    let tmp = temp_path("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let tmp_s = tmp.to_string_lossy().into_owned();
    let allow = w.emu.host_port();
    let params = with(checked(w.all_credentials()), json!({"LOG_LEVEL": "debug"}));
    let out = run_bin(
        &[&params.to_string()],
        &[
            ("TMPDIR", tmp_s.as_str()),
            ("IMS_ACTION_ALLOW_HOSTS", allow.as_str()),
        ],
        None,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stderr.contains("params: {"), "no debug output: {stderr}");
    assert!(!stderr.contains("a secret would have been returned"), "{stderr}");
    assert!(!stdout.contains("****"), "{stdout}");
    assert_eq!(last_line(&out)["body"]["quota"]["ok"], true, "{stdout}");
    let _ = std::fs::remove_dir_all(&tmp);
}
