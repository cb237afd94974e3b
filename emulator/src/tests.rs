//! End-to-end tests of the emulator over real sockets, with a deliberately dumb raw HTTP client
//! so that keep-alive and framing are tested as bytes.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use super::ims::tests::sign;
use super::*;

const ORG: &str = "ORG1@AdobeOrg";
const TECH: &str = "TECH1@techacct.adobe.com";

struct Conn {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

#[derive(Debug)]
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Resp {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

impl Conn {
    fn open(emulator: &Emulator) -> Conn {
        let stream = TcpStream::connect(emulator.host_port()).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        Conn {
            writer: stream.try_clone().unwrap(),
            reader: BufReader::new(stream),
        }
    }

    fn send_raw(&mut self, raw: &[u8]) -> Option<Resp> {
        self.writer.write_all(raw).unwrap();
        self.read_response()
    }

    fn send(&mut self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Option<Resp> {
        let mut req = format!("{method} {path} HTTP/1.1\r\nhost: test\r\n");
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str(&format!("content-length: {}\r\n\r\n", body.len()));
        let mut raw = req.into_bytes();
        raw.extend_from_slice(body);
        self.send_raw(&raw)
    }

    /// `None` when the server closed the connection without answering.
    fn read_response(&mut self) -> Option<Resp> {
        let mut line = String::new();
        if self.reader.read_line(&mut line).unwrap_or(0) == 0 {
            return None;
        }
        let status: u16 = line.split(' ').nth(1).unwrap().parse().unwrap();
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            self.reader.read_line(&mut h).unwrap();
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            let (k, v) = h.split_once(':').unwrap();
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
        let len: usize = headers
            .iter()
            .find(|(k, _)| k == "content-length")
            .map(|(_, v)| v.parse().unwrap())
            .unwrap();
        let mut body = vec![0; len];
        self.reader.read_exact(&mut body).unwrap();
        Some(Resp {
            status,
            headers,
            body,
        })
    }
}

fn form_ct() -> (&'static str, &'static str) {
    ("content-type", "application/x-www-form-urlencoded")
}

fn oauth_client() -> OAuthClient {
    OAuthClient {
        client_id: "s2s-client".into(),
        client_secret: "s2s secret+&=".into(),
        scopes: vec!["openid".into(), "AdobeID".into(), "read_organizations".into()],
        org_id: ORG.into(),
    }
}

fn jwt_client() -> JwtClient {
    JwtClient {
        client_id: "jwt-client".into(),
        client_secret: "jwt-secret".into(),
        org_id: ORG.into(),
        technical_account_id: TECH.into(),
        metascopes: vec!["ent_aem_cloud_api".into()],
        public_key_der: keys::rsa(2048).public_der,
    }
}

fn emulator() -> Emulator {
    let e = Emulator::start().unwrap();
    e.add_oauth_client(oauth_client());
    e.add_jwt_client(jwt_client());
    e
}

const S2S_BODY: &[u8] =
    b"grant_type=client_credentials&client_id=s2s-client&client_secret=s2s+secret%2B%26%3D&scope=openid,AdobeID";

fn s2s_token(conn: &mut Conn) -> String {
    let r = conn
        .send("POST", "/ims/token/v3", &[form_ct()], S2S_BODY)
        .unwrap();
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    r.json()["access_token"].as_str().unwrap().to_string()
}

fn quota(conn: &mut Conn, token: &str, api_key: &str, org: &str, experimental: bool) -> Resp {
    let auth = format!("Bearer {token}");
    let mut headers = vec![
        ("authorization", auth.as_str()),
        ("x-api-key", api_key),
        ("x-gw-ims-org-id", org),
    ];
    if experimental {
        headers.push(("x-adobe-accept-experimental", "1"));
    }
    let path = format!(
        "/adobe/stats/statistics/contentRequestsQuota?imsOrgId={}&current=true",
        org.replace('@', "%40")
    );
    conn.send("GET", &path, &headers, b"").unwrap()
}

fn payload_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

#[test]
fn oauth_token_issue_and_checks() {
    let e = emulator();
    let mut c = Conn::open(&e);
    let r = c.send("POST", "/ims/token/v3", &[form_ct()], S2S_BODY).unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let body = r.json();
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["expires_in"], 86399);
    let token = body["access_token"].as_str().unwrap();
    let payload = payload_of(token);
    assert_eq!(payload["client_id"], "s2s-client");
    assert_eq!(payload["type"], "access_token");
    assert_eq!(payload["as"], "ims-na1");
    assert_eq!(payload["expires_in"], "86400000");
    let created: u64 = payload["created_at"].as_str().unwrap().parse().unwrap();
    assert!(created.abs_diff(e.state.now_ms()) < 60_000);
    assert_eq!(e.tokens_issued("s2s-client"), 1);
    // A second token differs.
    assert_ne!(s2s_token(&mut c), token);

    let err = |c: &mut Conn, headers: &[(&str, &str)], body: &[u8]| {
        let r = c.send("POST", "/ims/token/v3", headers, body).unwrap();
        (r.status, r.json()["error"].as_str().unwrap().to_string())
    };
    let json_ct = [("content-type", "application/json")];
    assert_eq!(err(&mut c, &json_ct, b"{}"), (400, "invalid_request".into()));
    assert_eq!(
        err(&mut c, &[form_ct()], b"grant_type=password&client_id=s2s-client"),
        (400, "unsupported_grant_type".into())
    );
    assert_eq!(
        err(
            &mut c,
            &[form_ct()],
            b"grant_type=client_credentials&client_id=nope&client_secret=x"
        ),
        (400, "invalid_client".into())
    );
    assert_eq!(
        err(
            &mut c,
            &[form_ct()],
            b"grant_type=client_credentials&client_id=s2s-client&client_secret=s2s secret"
        ),
        (401, "invalid_client".into())
    );
    assert_eq!(
        err(
            &mut c,
            &[form_ct()],
            b"grant_type=client_credentials&client_id=s2s-client&client_secret=s2s+secret%2B%26%3D&scope=openid,admin"
        ),
        (400, "invalid_scope".into())
    );
    // Space-separated scopes are one (unknown) scope: IMS v3 wants commas.
    assert_eq!(
        err(
            &mut c,
            &[form_ct()],
            b"grant_type=client_credentials&client_id=s2s-client&client_secret=s2s+secret%2B%26%3D&scope=openid+AdobeID"
        ),
        (400, "invalid_scope".into())
    );
    assert_eq!(e.tokens_issued("s2s-client"), 2);
    assert_eq!(e.request_count("/ims/token/v3"), 8);
    let recorded = e.requests("/ims/token");
    assert_eq!(recorded.len(), 8);
    assert!(
        recorded[0]
            .form()
            .contains(&("client_secret".into(), "s2s secret+&=".into()))
    );
    assert_eq!(
        recorded[0].header("Content-Type"),
        Some("application/x-www-form-urlencoded")
    );
}

#[test]
fn keep_alive_and_chunked_bodies() {
    let e = emulator();
    let mut c = Conn::open(&e);
    let token = s2s_token(&mut c);
    // Second request on the same stream, with a chunked body.
    let mut raw = b"POST /ims/token/v3 HTTP/1.1\r\nhost: x\r\ncontent-type: application/x-www-form-urlencoded\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
    for chunk in S2S_BODY.chunks(10) {
        raw.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        raw.extend_from_slice(chunk);
        raw.extend_from_slice(b"\r\n");
    }
    raw.extend_from_slice(b"0\r\n\r\n");
    let r = c.send_raw(&raw).unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("connection"), Some("keep-alive"));
    // Third request, a different endpoint, still the same stream.
    assert_eq!(quota(&mut c, &token, "s2s-client", ORG, true).status, 200);
    // Pipelined: two requests in one write, two answers.
    c.writer
        .write_all(b"GET /nope HTTP/1.1\r\nhost: x\r\n\r\nGET /__stats HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .unwrap();
    assert_eq!(c.read_response().unwrap().status, 404);
    let last = c.read_response().unwrap();
    assert_eq!(last.status, 200);
    assert_eq!(last.header("connection"), Some("close"));
    assert!(c.read_response().is_none());
    assert_eq!(e.tokens_issued("s2s-client"), 2);
}

#[test]
fn jwt_exchange_urlencoded_and_multipart() {
    let e = emulator();
    let base = e.base_url();
    let key = keys::rsa(2048);
    let now = e.state.now_ms() / 1000;
    let claims = json!({
        "exp": now + 300, "iss": ORG, "sub": TECH,
        "aud": format!("{base}/c/jwt-client"),
        format!("{base}/s/ent_aem_cloud_api"): true,
    });
    let jwt = sign(&claims, &key);
    let mut c = Conn::open(&e);
    let body = format!("client_id=jwt-client&client_secret=jwt-secret&jwt_token={jwt}");
    let r = c
        .send("POST", "/ims/exchange/jwt", &[form_ct()], body.as_bytes())
        .unwrap();
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let j = r.json();
    assert_eq!(j["token_type"], "bearer");
    assert_eq!(j["expires_in"], 86_399_999);
    assert_eq!(
        payload_of(j["access_token"].as_str().unwrap())["client_id"],
        "jwt-client"
    );
    assert_eq!(e.last_jwt_claims("jwt-client"), Some(claims.clone()));

    // multipart, as npm form-data sends it, to the trailing-slash URL.
    let boundary = "--------------------------585652829624371947066340";
    let mut mp = String::new();
    for (name, value) in [
        ("client_id", "jwt-client"),
        ("client_secret", "jwt-secret"),
        ("jwt_token", jwt.as_str()),
    ] {
        mp.push_str(&format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
        ));
    }
    mp.push_str(&format!("--{boundary}--\r\n"));
    let ct = format!("multipart/form-data; boundary={boundary}");
    let r = c
        .send(
            "POST",
            "/ims/exchange/jwt/",
            &[("content-type", ct.as_str())],
            mp.as_bytes(),
        )
        .unwrap();
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(e.tokens_issued("jwt-client"), 2);

    // Errors.
    let post = |c: &mut Conn, body: String| {
        let r = c
            .send("POST", "/ims/exchange/jwt", &[form_ct()], body.as_bytes())
            .unwrap();
        (r.status, r.json()["error"].as_str().unwrap().to_string())
    };
    assert_eq!(
        post(
            &mut c,
            format!("client_id=jwt-client&client_secret=bad&jwt_token={jwt}")
        ),
        (401, "invalid_client".into())
    );
    assert_eq!(
        post(
            &mut c,
            format!("client_id=who&client_secret=jwt-secret&jwt_token={jwt}")
        ),
        (400, "invalid_client".into())
    );
    let mut expired = claims.clone();
    expired["exp"] = json!(now - 60);
    assert_eq!(
        post(
            &mut c,
            format!(
                "client_id=jwt-client&client_secret=jwt-secret&jwt_token={}",
                sign(&expired, &key)
            )
        ),
        (400, "invalid_token".into())
    );
    let other_key = keys::rsa(3072);
    assert_eq!(
        post(
            &mut c,
            format!(
                "client_id=jwt-client&client_secret=jwt-secret&jwt_token={}",
                sign(&claims, &other_key)
            )
        ),
        (400, "invalid_signature".into())
    );
    let mut outside = claims.clone();
    outside[format!("{base}/s/ent_cloudmgr_sdk")] = json!(true);
    let r = c
        .send(
            "POST",
            "/ims/exchange/jwt",
            &[form_ct()],
            format!(
                "client_id=jwt-client&client_secret=jwt-secret&jwt_token={}",
                sign(&outside, &key)
            )
            .as_bytes(),
        )
        .unwrap();
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json(),
        json!({"error": "invalid_scope", "error_description": "The metascopes in the JWT are not a subset of the metascopes in the binding."})
    );
    let r = c
        .send(
            "POST",
            "/ims/exchange/jwt",
            &[("content-type", "text/plain")],
            b"x",
        )
        .unwrap();
    assert_eq!(
        (r.status, r.json()["error"].clone()),
        (400, json!("invalid_request"))
    );
    assert_eq!(e.tokens_issued("jwt-client"), 2);
}

#[test]
fn data_service_checks() {
    let e = emulator();
    let mut c = Conn::open(&e);
    let token = s2s_token(&mut c);
    let ok = quota(&mut c, &token, "s2s-client", ORG, true);
    assert_eq!(ok.status, 200);
    let body = ok.json();
    assert_eq!(body["filters"], json!({"imsOrgId": ORG, "current": true}));
    assert_eq!(body["data"]["contentRequestsQuota"]["unit"], "contentRequests");

    let r = quota(&mut c, "forged", "s2s-client", ORG, true);
    assert_eq!(r.status, 401);
    assert_eq!(
        r.json(),
        json!({"error_code": "401013", "message": "Oauth token is not valid"})
    );
    let r = quota(&mut c, &token, "other", ORG, true);
    assert_eq!(r.status, 403);
    assert_eq!(
        r.json(),
        json!({"error_code": "403003", "message": "Api Key is invalid"})
    );
    assert_eq!(
        quota(&mut c, &token, "s2s-client", "OTHER@AdobeOrg", true).status,
        403
    );
    let r = quota(&mut c, &token, "s2s-client", ORG, false);
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json(),
        json!({"type": "about:blank", "title": "Bad Request", "status": 400,
               "detail": "X-Adobe-Accept-Experimental header is required"})
    );
    let auth = format!("Bearer {token}");
    let r = c
        .send(
            "GET",
            "/adobe/stats/statistics/contentRequestsQuota?current=true",
            &[
                ("authorization", &auth),
                ("x-api-key", "s2s-client"),
                ("x-gw-ims-org-id", ORG),
                ("x-adobe-accept-experimental", "1"),
            ],
            b"",
        )
        .unwrap();
    assert_eq!(r.status, 400);
}

#[test]
fn clock_and_token_lifetime() {
    let e = emulator();
    e.set_token_lifetime(Duration::from_secs(3600), Duration::from_secs(7200));
    let mut c = Conn::open(&e);
    let r = c.send("POST", "/ims/token/v3", &[form_ct()], S2S_BODY).unwrap();
    let j = r.json();
    assert_eq!(j["expires_in"], 3600);
    let token = j["access_token"].as_str().unwrap().to_string();
    assert_eq!(payload_of(&token)["expires_in"], "7200000");
    e.advance_clock(Duration::from_secs(3590));
    assert_eq!(quota(&mut c, &token, "s2s-client", ORG, true).status, 200);
    // The earlier (HTTP) lifetime wins.
    let r = c
        .send(
            "POST",
            "/__clock",
            &[("content-type", "application/json")],
            br#"{"advance_secs":11}"#,
        )
        .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(quota(&mut c, &token, "s2s-client", ORG, true).status, 401);
}

#[test]
fn analytics_reports() {
    let e = emulator();
    let mut c = Conn::open(&e);
    let token = s2s_token(&mut c);
    let auth = format!("Bearer {token}");
    let headers = [
        ("authorization", auth.as_str()),
        ("x-api-key", "s2s-client"),
        ("x-proxy-global-company-id", "demoorg0"),
        ("content-type", "application/json"),
    ];
    let body = json!({
        "rsid": "demo.rsid",
        "globalFilters": [{"type": "dateRange", "dateRange": "2025-11-01T00:00:00.000/2025-11-29T00:00:00.000"}],
        "metricContainer": {"metrics": [{"columnId": "0", "id": "metrics/visits"}, {"columnId": "1", "id": "metrics/pageviews"}]},
        "dimension": "variables/daterangeday",
        "settings": {"limit": 50, "page": 0},
    });
    let r = c
        .send(
            "POST",
            "/api/demoorg0/reports",
            &headers,
            body.to_string().as_bytes(),
        )
        .unwrap();
    assert_eq!(r.status, 200);
    let j = r.json();
    let rows = j["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 28);
    assert_eq!(rows[27]["itemId"], "1251028");
    assert_eq!(rows[27]["value"], "Nov 28, 2025");
    assert_eq!(rows[0]["data"].as_array().unwrap().len(), 2);
    assert_eq!(j["totalPages"], 1);
    assert_eq!(j["summaryData"]["totals"].as_array().unwrap().len(), 2);

    let r = c
        .send(
            "POST",
            "/api/demoorg0/reports",
            &headers,
            br#"{"rsid":"x","globalFilters":[{"type":"dateRange","dateRange":"td-7d/td"}]}"#,
        )
        .unwrap();
    assert_eq!(r.json()["rows"].as_array().unwrap().len(), 7);
    let r = c
        .send("POST", "/api/demoorg0/reports", &headers, br#"{"rsid":""}"#)
        .unwrap();
    assert_eq!(
        (r.status, r.json()["errorCode"].clone()),
        (400, json!("invalid_request"))
    );
    let r = c
        .send("POST", "/api/other/reports", &headers, br#"{"rsid":"x"}"#)
        .unwrap();
    assert_eq!(r.status, 400);
    let mut bad = headers;
    bad[0] = ("authorization", "Bearer nope");
    let r = c
        .send("POST", "/api/demoorg0/reports", &bad, br#"{"rsid":"x"}"#)
        .unwrap();
    assert_eq!(r.status, 401);
    let j = r.json();
    assert_eq!(j["errorCode"], "invalid_token");
    assert_eq!(
        j["errorDescription"],
        "IMS token failed IMS Facade token validation"
    );
    let mut bad = headers;
    bad[1] = ("x-api-key", "nope");
    assert_eq!(
        c.send("POST", "/api/demoorg0/reports", &bad, br#"{"rsid":"x"}"#)
            .unwrap()
            .status,
        403
    );
    let mut bad = headers;
    bad[3] = ("content-type", "text/plain");
    assert_eq!(
        c.send("POST", "/api/demoorg0/reports", &bad, br#"{"rsid":"x"}"#)
            .unwrap()
            .status,
        400
    );
}

#[test]
fn aem_content() {
    let e = emulator();
    e.add_dev_token("dev-token-1");
    let mut c = Conn::open(&e);
    let r = c
        .send(
            "GET",
            "/content/dam.json",
            &[("authorization", "Bearer dev-token-1")],
            b"",
        )
        .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["jcr:primaryType"], "sling:Folder");
    let token = s2s_token(&mut c);
    let auth = format!("Bearer {token}");
    let r = c
        .send("GET", "/api/assets/demo.json", &[("authorization", &auth)], b"")
        .unwrap();
    assert_eq!(r.status, 200);
    let r = c
        .send("GET", "/content/dam/nope.json", &[("authorization", &auth)], b"")
        .unwrap();
    assert_eq!((r.status, r.json()), (404, json!({"error": "not found"})));
    let r = c
        .send(
            "GET",
            "/content/dam.json",
            &[("authorization", "Bearer nope")],
            b"",
        )
        .unwrap();
    assert_eq!(r.status, 401);
    assert_eq!(c.send("GET", "/content/dam.json", &[], b"").unwrap().status, 401);
}

#[test]
fn faults() {
    let e = emulator();
    e.inject_fault(
        "/ims/token",
        Fault::Status {
            status: 503,
            retry_after: Some("1".into()),
            body: None,
        },
        2,
    );
    let mut c = Conn::open(&e);
    for _ in 0..2 {
        let r = c.send("POST", "/ims/token/v3", &[form_ct()], S2S_BODY).unwrap();
        assert_eq!(r.status, 503);
        assert_eq!(r.header("retry-after"), Some("1"));
    }
    s2s_token(&mut c);
    assert_eq!(e.tokens_issued("s2s-client"), 1);
    assert_eq!(e.request_count("/ims/token/v3"), 3);

    e.inject_fault("/ims/token/v3", Fault::Malformed, 1);
    e.inject_fault("/ims/token/v3", Fault::Html, 1);
    e.inject_fault("/ims/token/v3", Fault::Huge, 1);
    e.inject_fault("/ims/token/v3", Fault::Delay(Duration::from_millis(300)), 1);
    e.inject_fault("/ims/token/v3", Fault::Drop, 1);
    let r = c.send("POST", "/ims/token/v3", &[form_ct()], S2S_BODY).unwrap();
    assert_eq!(r.status, 200);
    assert!(serde_json::from_slice::<Value>(&r.body).is_err());
    let r = c.send("POST", "/ims/token/v3", &[form_ct()], S2S_BODY).unwrap();
    assert_eq!((r.status, r.header("content-type")), (502, Some("text/html")));
    let r = c.send("POST", "/ims/token/v3", &[form_ct()], S2S_BODY).unwrap();
    assert_eq!(r.body.len(), HUGE_BODY_BYTES);
    let started = Instant::now();
    let r = c.send("POST", "/ims/token/v3", &[form_ct()], S2S_BODY).unwrap();
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(r.status, 200);
    assert!(c.send("POST", "/ims/token/v3", &[form_ct()], S2S_BODY).is_none());

    // The same over the control endpoint; other paths are unaffected.
    let mut c = Conn::open(&e);
    let r = c
        .send(
            "POST",
            "/__faults",
            &[],
            br#"{"path":"/ims/exchange","count":1,"status":500,"body":"oops"}"#,
        )
        .unwrap();
    assert_eq!(r.status, 200);
    s2s_token(&mut c);
    let r = c.send("POST", "/ims/exchange/jwt", &[form_ct()], b"").unwrap();
    assert_eq!((r.status, r.body.as_slice()), (500, &b"oops"[..]));
    let r = c.send("POST", "/ims/exchange/jwt", &[form_ct()], b"").unwrap();
    assert_eq!(r.status, 400);
}

#[test]
fn control_endpoints() {
    let e = emulator();
    let mut c = Conn::open(&e);
    s2s_token(&mut c);
    let stats = c.send("GET", "/__stats", &[], b"").unwrap().json();
    assert_eq!(stats["tokens_issued"]["s2s-client"], 1);
    assert_eq!(stats["requests"]["/ims/token/v3"], 1);
    assert!(stats["requests"].get("/__stats").is_none());
    let list = c
        .send("GET", "/__requests?path=/ims/token/v3", &[], b"")
        .unwrap()
        .json();
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["method"], "POST");
    assert_eq!(
        list[0]["headers"]["content-type"],
        "application/x-www-form-urlencoded"
    );
    assert_eq!(list[0]["body"], String::from_utf8_lossy(S2S_BODY).as_ref());
    assert_eq!(c.send("GET", "/__nope", &[], b"").unwrap().status, 404);
}

#[test]
fn drop_stops_accepting() {
    let e = Emulator::start().unwrap();
    let addr = e.host_port();
    drop(e);
    let deadline = Instant::now() + Duration::from_secs(5);
    while TcpStream::connect(&addr).is_ok() {
        assert!(Instant::now() < deadline, "still accepting after drop");
        std::thread::sleep(Duration::from_millis(20));
    }
}
