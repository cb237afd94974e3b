//! Operations (`OPERATION`: aem-quota, analytics-report, aem-get), credential choice
//! (`AUTH_METHOD`, precedence) and the endpoint allowlist, end to end against the emulator.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc::{self, Receiver};
use std::time::Duration;

use common::*;
use serde_json::{Value, json};

const QUOTA: &str = "/adobe/stats/statistics/contentRequestsQuota";
const AEM_CLIENT: &str = "cm-p12345-e67890-integration";

fn reports_path(w: &World) -> String {
    format!("/api/{}/reports", w.env["ANALYTICS_COMPANY_ID"])
}

/// JWT credential + analytics-report with the company id and `extra`.
fn report(w: &World, extra: Value) -> Value {
    with(
        with(
            w.jwt(),
            json!({
                "OPERATION": "analytics-report",
                "ANALYTICS_COMPANY_ID": w.env["ANALYTICS_COMPANY_ID"],
            }),
        ),
        extra,
    )
}

/// OAuth credential + aem-get with `extra`.
fn aem_get(w: &World, extra: Value) -> Value {
    with(with(w.oauth(), json!({"OPERATION": "aem-get"})), extra)
}

/// The JSON body the Analytics endpoint received last.
fn received_report(w: &World) -> Value {
    let reqs = w.emu.requests(&reports_path(w));
    let req = reqs.last().expect("a report request");
    serde_json::from_slice(&req.body).unwrap()
}

/// Every credential kind at once.
fn all_credentials(w: &World) -> Value {
    let mut names: Vec<&str> = OAUTH.to_vec();
    names.extend(JWT);
    names.extend(["AEM_SERVICE_CREDENTIALS", "AEM_DEV_TOKEN"]);
    w.params(&names)
}

// ---- OPERATION -----------------------------------------------------------------------------

#[test]
fn an_unknown_operation_is_a_400_listing_the_operations() {
    let w = World::new();
    for op in [json!("delete-everything"), json!("AEM-QUOTA")] {
        let r = w.call(&w.action(), with(w.oauth(), json!({ "OPERATION": op })));
        assert_eq!(status(&r), 400, "{r}");
        assert_eq!(
            message(&r),
            "invalid parameter 'OPERATION': must be one of aem-quota, analytics-report, aem-get, api, health"
        );
    }
    let r = w.call(&w.action(), with(w.oauth(), json!({"OPERATION": 3})));
    assert_eq!(status(&r), 400, "{r}");
    assert!(message(&r).contains("'OPERATION'"), "{r}");
    assert_eq!(w.emu.request_count("/"), 0);
}

#[test]
fn the_default_operation_is_the_quota() {
    let w = World::new();
    let r = w.call(&w.action(), w.oauth());
    assert_eq!(status(&r), 200, "{r}");
    assert_eq!(w.emu.request_count(QUOTA), 1);
    assert_eq!(w.emu.request_count("/api/"), 0);
    assert_eq!(w.emu.request_count("/content/"), 0);
}

// ---- analytics-report ----------------------------------------------------------------------

fn custom_report(w: &World) -> Value {
    json!({
        "rsid": w.env["ANALYTICS_RSID"],
        "globalFilters": [
            {"type": "dateRange", "dateRange": "2025-01-01T00:00:00.000/2025-01-08T00:00:00.000"}
        ],
        "metricContainer": {"metrics": [
            {"columnId": "0", "id": "metrics/visits"},
            {"columnId": "1", "id": "metrics/pageviews"}
        ]},
        "dimension": "variables/daterangeday",
        "settings": {"limit": 3, "page": 0, "dimensionSort": "asc"}
    })
}

#[test]
fn a_report_given_as_an_object_is_sent_as_is() {
    let w = World::new();
    let def = custom_report(&w);
    let r = w.call(&w.action(), report(&w, json!({ "ANALYTICS_REPORT": def })));
    assert_eq!(status(&r), 200, "{r}");
    assert_eq!(received_report(&w), def);
    assert_eq!(r["body"]["totalElements"], 7);
    assert_eq!(r["body"]["rows"].as_array().unwrap().len(), 3);
    assert_eq!(r["body"]["columns"]["columnIds"], json!(["0", "1"]));
}

#[test]
fn a_report_given_as_a_json_string_is_sent_as_the_object() {
    let w = World::new();
    let def = custom_report(&w);
    let text = serde_json::to_string_pretty(&def).unwrap();
    let r = w.call(&w.action(), report(&w, json!({ "ANALYTICS_REPORT": text })));
    assert_eq!(status(&r), 200, "{r}");
    assert_eq!(received_report(&w), def);
    // The report wins over ANALYTICS_RSID.
    let r = w.call(
        &w.action(),
        report(
            &w,
            json!({ "ANALYTICS_REPORT": def.to_string(), "ANALYTICS_RSID": "other.rsid" }),
        ),
    );
    assert_eq!(status(&r), 200, "{r}");
    assert_eq!(received_report(&w)["rsid"], w.env["ANALYTICS_RSID"].as_str());
}

#[test]
fn unusable_report_definitions_are_a_400_naming_the_input() {
    let w = World::new();
    for (value, reason) in [
        (json!("{not json"), "must be a JSON object (a report definition)"),
        (json!("[1, 2]"), "must be a JSON object (a report definition)"),
        (json!([1, 2]), "must be an object or a JSON string, not an array"),
        (json!(7), "must be an object or a JSON string, not a number"),
        (
            json!({"dimension": "variables/page"}),
            "must name its report suite in \"rsid\"",
        ),
    ] {
        let r = w.call(&w.action(), report(&w, json!({ "ANALYTICS_REPORT": value })));
        assert_eq!(status(&r), 400, "{value}: {r}");
        assert_eq!(
            message(&r),
            format!("invalid parameter 'ANALYTICS_REPORT': {reason}")
        );
    }
    assert_eq!(w.emu.request_count("/"), 0);
}

#[test]
fn the_default_report_covers_the_last_seven_whole_days_by_day() {
    let w = World::new();
    let day = 86_400;
    let before = ims_action::time::Clock::system().now_unix();
    let r = w.call(
        &w.action(),
        report(&w, json!({"ANALYTICS_RSID": w.env["ANALYTICS_RSID"]})),
    );
    let after = ims_action::time::Clock::system().now_unix();
    assert_eq!(status(&r), 200, "{r}");
    let body = received_report(&w);
    assert_eq!(body["rsid"], w.env["ANALYTICS_RSID"].as_str());
    assert_eq!(body["dimension"], "variables/daterangeday");
    assert_eq!(body["metricContainer"]["metrics"][0]["id"], "metrics/pageviews");
    let filters = body["globalFilters"].as_array().unwrap();
    assert_eq!(filters.len(), 1);
    assert_eq!(filters[0]["type"], "dateRange");
    let range = filters[0]["dateRange"].as_str().unwrap();
    let expect = |now: i64| {
        let d = |t: i64| format!("{}T00:00:00.000", ims_action::time::format_date(t));
        format!("{}/{}", d(now - 7 * day), d(now))
    };
    // (Computed on both sides of the call, in case it straddled midnight UTC.)
    assert!(range == expect(before) || range == expect(after), "{range}");
    assert_eq!(r["body"]["rows"].as_array().unwrap().len(), 7, "{r}");
}

#[test]
fn the_report_request_carries_the_documented_headers() {
    let w = World::new();
    let r = w.call(
        &w.action(),
        report(&w, json!({"ANALYTICS_RSID": w.env["ANALYTICS_RSID"]})),
    );
    assert_eq!(status(&r), 200, "{r}");
    let reqs = w.emu.requests("/api/");
    assert_eq!(reqs.len(), 1);
    let req = &reqs[0];
    assert_eq!(req.method, "POST");
    assert_eq!(req.path, reports_path(&w));
    assert!(req.header("authorization").unwrap().starts_with("Bearer ey"));
    assert_eq!(req.header("x-api-key"), Some(w.env["JWT_CLIENT_ID"].as_str()));
    assert_eq!(
        req.header("x-proxy-global-company-id"),
        Some(w.env["ANALYTICS_COMPANY_ID"].as_str())
    );
    assert_eq!(req.header("content-type"), Some("application/json"));
}

#[test]
fn an_oauth_credential_gets_a_report_too() {
    let w = World::new();
    let params = with(
        w.oauth(),
        json!({
            "OPERATION": "analytics-report",
            "ANALYTICS_COMPANY_ID": w.env["ANALYTICS_COMPANY_ID"],
            "ANALYTICS_RSID": w.env["ANALYTICS_RSID"],
        }),
    );
    let r = w.call(&w.action(), params);
    assert_eq!(status(&r), 200, "{r}");
    let req = &w.emu.requests("/api/")[0];
    assert_eq!(
        req.header("x-api-key"),
        Some(w.env["OAUTHS2S_CLIENT_ID"].as_str())
    );
}

#[test]
fn report_inputs_are_checked() {
    let w = World::new();
    let r = w.call(
        &w.action(),
        without(report(&w, json!({})), &["ANALYTICS_COMPANY_ID"]),
    );
    assert_eq!(status(&r), 400, "{r}");
    assert!(
        message(&r).starts_with("missing parameter(s) 'ANALYTICS_COMPANY_ID,ANALYTICS_RSID'"),
        "{r}"
    );
    assert!(
        message(&r)
            .contains("analytics-report needs ANALYTICS_COMPANY_ID, and ANALYTICS_RSID or ANALYTICS_REPORT"),
        "{r}"
    );
    // Each of these would change the path the token goes to: {base}/api/{company}/reports.
    for company in ["../x", ".", "..", "a/b", "%2e%2e", "x?y"] {
        let r = w.call(
            &w.action(),
            report(
                &w,
                json!({"ANALYTICS_COMPANY_ID": company, "ANALYTICS_RSID": "r"}),
            ),
        );
        assert_eq!(status(&r), 400, "{company}: {r}");
        assert_eq!(
            message(&r),
            "invalid parameter 'ANALYTICS_COMPANY_ID': must be a global company id: letters, digits, '_' \
             and '-' only (GET /discovery/me lists yours)",
            "{company}"
        );
    }
    assert_eq!(w.emu.request_count("/"), 0);
}

#[test]
fn an_analytics_error_is_passed_through() {
    let w = World::new();
    w.emu.inject_fault(
        &reports_path(&w),
        adobe_emulator::Fault::Status {
            status: 429,
            retry_after: Some("120".into()),
            body: Some(r#"{"errorCode":"429050","errorDescription":"Too many requests"}"#.into()),
        },
        1,
    );
    // Retry-After 120 s is longer than the request timeout allows waiting: answered at once.
    let r = w.call(
        &w.action(),
        report(
            &w,
            json!({"ANALYTICS_RSID": w.env["ANALYTICS_RSID"], "HTTP_TIMEOUT_MS": 2000}),
        ),
    );
    assert_eq!(status(&r), 429, "{r}");
    assert_eq!(
        message(&r),
        "Analytics answered HTTP 429: 429050: Too many requests"
    );
    assert_eq!(r["error"]["headers"]["retry-after"], "120");
}

// ---- aem-get -------------------------------------------------------------------------------

#[test]
fn aem_path_defaults_to_the_dam_root() {
    let w = World::new();
    let r = w.call(&w.action(), aem_get(&w, json!({})));
    assert_eq!(status(&r), 200, "{r}");
    let reqs = w.emu.requests("/content/");
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].method, "GET");
    assert_eq!(reqs[0].path, "/content/dam.json");
    assert_eq!(reqs[0].query, "");
    assert!(reqs[0].header("authorization").unwrap().starts_with("Bearer "));
    assert_eq!(r["body"]["demo"]["jcr:primaryType"], "sling:OrderedFolder");
}

#[test]
fn a_custom_aem_path_is_fetched() {
    let w = World::new();
    let action = w.action();
    let r = w.call(
        &action,
        aem_get(&w, json!({"AEM_PATH": "/content/dam/demo.json"})),
    );
    assert_eq!(status(&r), 200, "{r}");
    assert_eq!(r["body"]["jcr:title"], "Demo");
    let r = w.call(&action, aem_get(&w, json!({"AEM_PATH": "/api/assets/demo.json"})));
    assert_eq!(status(&r), 200, "{r}");
    assert_eq!(r["body"]["class"], json!(["assets/folder"]));
    assert_eq!(r["body"]["properties"]["elements"], 2);
    let r = w.call(
        &action,
        aem_get(&w, json!({"AEM_PATH": "/content/dam.1.json?x=y"})),
    );
    assert_eq!(status(&r), 200, "{r}");
    let last = w.emu.requests("/content/").pop().unwrap();
    assert_eq!(
        (last.path.as_str(), last.query.as_str()),
        ("/content/dam.1.json", "x=y")
    );
}

#[test]
fn path_traversal_and_odd_paths_are_refused_before_any_call() {
    let w = World::new();
    for path in [
        "/content/../etc/passwd",
        "/content/%2e%2e/etc/passwd",
        "/content/%2E%2E%2Fetc",
        "/content/./dam.json",
        "content/dam.json",
        "//evil.example/content/dam.json",
        "/content/dam.json#x",
        "/content/a b.json",
        "/content\\..\\etc",
    ] {
        let r = w.call(&w.action(), aem_get(&w, json!({ "AEM_PATH": path })));
        assert_eq!(status(&r), 400, "{path}: {r}");
        assert!(
            message(&r).starts_with("invalid parameter 'AEM_PATH': "),
            "{path}: {r}"
        );
    }
    assert_eq!(w.emu.request_count("/"), 0, "no token fetched, no GET sent");
}

#[test]
fn an_unknown_aem_path_is_a_404_passed_through() {
    let w = World::new();
    let r = w.call(
        &w.action(),
        aem_get(&w, json!({"AEM_PATH": "/content/dam/nope.json"})),
    );
    assert_eq!(status(&r), 404, "{r}");
    assert_eq!(message(&r), "AEM answered HTTP 404: not found");
    assert_eq!(w.emu.request_count("/content/dam/nope.json"), 1);
}

// ---- AUTH_METHOD and precedence -----------------------------------------------------------

#[test]
fn auth_method_forces_each_kind() {
    let w = World::new();
    let all = with(all_credentials(&w), json!({"OPERATION": "aem-get"}));
    let oauth_id = w.env["OAUTHS2S_CLIENT_ID"].clone();
    let jwt_id = w.env["JWT_CLIENT_ID"].clone();
    let issued = |w: &World| {
        [
            w.emu.tokens_issued(&oauth_id),
            w.emu.tokens_issued(&jwt_id),
            w.emu.tokens_issued(AEM_CLIENT),
        ]
    };
    for (method, want) in [
        ("oauth-s2s", [1, 0, 0]),
        ("jwt", [1, 1, 0]),
        ("aem-service-credentials", [1, 1, 1]),
        ("dev-token", [1, 1, 1]),
    ] {
        let r = w.call(&w.action(), with(all.clone(), json!({ "AUTH_METHOD": method })));
        assert_eq!(status(&r), 200, "{method}: {r}");
        assert_eq!(issued(&w), want, "{method}");
    }
    let last = w.emu.requests("/content/").pop().unwrap();
    assert_eq!(
        last.header("authorization"),
        Some(format!("Bearer {}", w.demo.dev_token).as_str())
    );
}

#[test]
fn with_several_credentials_oauth_wins_then_jwt_then_aem_then_dev_token() {
    let w = World::new();
    let all = with(all_credentials(&w), json!({"OPERATION": "aem-get"}));
    let r = w.call(&w.action(), all.clone());
    assert_eq!(status(&r), 200, "{r}");
    assert_eq!(w.emu.tokens_issued(&w.env["OAUTHS2S_CLIENT_ID"]), 1);
    assert_eq!(w.emu.request_count("/ims/exchange/jwt"), 0);

    let no_oauth = without(all.clone(), &OAUTH);
    assert_eq!(status(&w.call(&w.action(), no_oauth.clone())), 200);
    assert_eq!(w.emu.tokens_issued(&w.env["JWT_CLIENT_ID"]), 1);
    assert_eq!(w.emu.tokens_issued(AEM_CLIENT), 0);

    let aem_and_dev = without(no_oauth, &JWT);
    assert_eq!(status(&w.call(&w.action(), aem_and_dev)), 200);
    assert_eq!(w.emu.tokens_issued(AEM_CLIENT), 1);

    // The default operation (the quota) with everything present: OAuth again.
    let r = w.call(&w.action(), without(all, &["OPERATION"]));
    assert_eq!(status(&r), 200, "{r}");
    assert_eq!(w.emu.tokens_issued(&w.env["OAUTHS2S_CLIENT_ID"]), 2);
    assert_eq!(
        w.emu.requests(QUOTA)[0].header("x-api-key"),
        Some(w.env["OAUTHS2S_CLIENT_ID"].as_str())
    );
}

#[test]
fn a_forced_method_without_its_inputs_names_them() {
    let w = World::new();
    let r = w.call(&w.action(), with(w.oauth(), json!({"AUTH_METHOD": "jwt"})));
    assert_eq!(status(&r), 400, "{r}");
    assert!(
        message(&r).starts_with(&format!("missing parameter(s) '{}'", JWT.join(","))),
        "{r}"
    );
    let r = w.call(&w.action(), with(w.oauth(), json!({"AUTH_METHOD": "basic"})));
    assert_eq!(status(&r), 400, "{r}");
    assert_eq!(
        message(&r),
        "invalid parameter 'AUTH_METHOD': must be one of oauth-s2s, jwt, aem-service-credentials, dev-token"
    );
    assert_eq!(w.emu.request_count("/"), 0);
}

// ---- endpoints outside the allowlist -------------------------------------------------------

/// A plain TCP listener on 127.0.0.1 (a port the allowlist does not name) that reports the first
/// bytes of every connection it accepts.
struct Tripwire {
    addr: SocketAddr,
    seen: Receiver<Vec<u8>>,
}

impl Tripwire {
    fn start() -> Tripwire {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, seen) = mpsc::channel();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { break };
                let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
                let mut buf = [0u8; 64];
                let n = stream.read(&mut buf).unwrap_or(0);
                if tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        Tripwire { addr, seen }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// How many connections arrived before now. A sentinel connection is made last; the
    /// listener accepts in arrival order, so everything earlier is reported before it.
    fn connections_so_far(&self) -> usize {
        let mut sentinel = TcpStream::connect(self.addr).unwrap();
        sentinel.write_all(b"SENTINEL").unwrap();
        let mut earlier = 0;
        loop {
            let bytes = self
                .seen
                .recv_timeout(Duration::from_secs(10))
                .expect("the sentinel");
            if bytes == b"SENTINEL" {
                return earlier;
            }
            earlier += 1;
        }
    }
}

fn assert_refused(r: &Value, input: &str, trip: &Tripwire) {
    assert_eq!(status(r), 400, "{input}: {r}");
    let m = message(r);
    // Values inside AEM_SERVICE_CREDENTIALS count as secrets, so the host may come back as ****.
    let named = format!("invalid parameter '{input}': host '{}' is not allowed", trip.addr);
    let scrubbed = format!("invalid parameter '{input}': host '****' is not allowed");
    assert!(m.starts_with(&named) || m.starts_with(&scrubbed), "{m}");
    assert!(m.contains("IMS_ACTION_ALLOW_HOSTS"), "{m}");
}

#[test]
fn the_tripwire_does_see_connections() {
    // The proof below is only worth something if a connection would be counted.
    let trip = Tripwire::start();
    let mut s = TcpStream::connect(trip.addr).unwrap();
    s.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
    assert_eq!(trip.connections_so_far(), 1);
    assert_eq!(trip.connections_so_far(), 0);
}

#[test]
fn an_ims_base_url_outside_the_allowlist_is_never_contacted() {
    let w = World::new();
    let trip = Tripwire::start();
    let r = w.call(&w.action(), with(w.oauth(), json!({"IMS_BASE_URL": trip.url()})));
    assert_refused(&r, "IMS_BASE_URL", &trip);
    let r = w.call(&w.action(), with(w.jwt(), json!({"IMS_BASE_URL": trip.url()})));
    assert_refused(&r, "IMS_BASE_URL", &trip);
    assert_eq!(trip.connections_so_far(), 0);
    assert_eq!(w.emu.request_count("/"), 0);
}

#[test]
fn a_data_service_url_outside_the_allowlist_is_never_contacted() {
    let w = World::new();
    let trip = Tripwire::start();
    let r = w.call(
        &w.action(),
        with(w.oauth(), json!({"AEM_DATA_SERVICE_BASE_URL": trip.url()})),
    );
    assert_refused(&r, "AEM_DATA_SERVICE_BASE_URL", &trip);
    assert_eq!(trip.connections_so_far(), 0);
    assert_eq!(w.emu.request_count("/"), 0, "not even a token was fetched");
}

#[test]
fn an_analytics_url_outside_the_allowlist_is_never_contacted() {
    let w = World::new();
    let trip = Tripwire::start();
    let r = w.call(
        &w.action(),
        report(
            &w,
            json!({"ANALYTICS_RSID": w.env["ANALYTICS_RSID"], "ANALYTICS_BASE_URL": trip.url()}),
        ),
    );
    assert_refused(&r, "ANALYTICS_BASE_URL", &trip);
    assert_eq!(trip.connections_so_far(), 0);
    assert_eq!(w.emu.request_count("/"), 0);
}

#[test]
fn an_aem_author_url_outside_the_allowlist_is_never_contacted() {
    let w = World::new();
    let trip = Tripwire::start();
    for creds in [w.oauth(), w.dev_token()] {
        let r = w.call(
            &w.action(),
            with(
                creds,
                json!({"OPERATION": "aem-get", "AEM_AUTHOR_URL": trip.url()}),
            ),
        );
        assert_refused(&r, "AEM_AUTHOR_URL", &trip);
    }
    assert_eq!(trip.connections_so_far(), 0);
    assert_eq!(w.emu.request_count("/"), 0);
}

#[test]
fn an_aem_ims_endpoint_outside_the_allowlist_is_never_contacted() {
    let w = World::new();
    let trip = Tripwire::start();
    for endpoint in [trip.url(), trip.addr.to_string()] {
        let mut json = w.demo.aem_service_credentials(&w.emu);
        json["integration"]["imsEndpoint"] = json!(endpoint);
        let r = w.call(
            &w.action(),
            with(w.aem_credentials(), json!({ "AEM_SERVICE_CREDENTIALS": json })),
        );
        assert_refused(&r, "AEM_SERVICE_CREDENTIALS.integration.imsEndpoint", &trip);
    }
    assert_eq!(trip.connections_so_far(), 0);
    assert_eq!(w.emu.request_count("/"), 0);
}
