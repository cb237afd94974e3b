//! Adobe I/O State's REST API, as `@adobe/aio-lib-state` v5 speaks it (adobe/aio-lib-state
//! `lib/AdobeState.js`; summarised in the repository's `docs/token-store.md`):
//!
//! - `GET|PUT|DELETE /containers/{namespace}/data/{key}`, key `^[a-zA-Z0-9-_.]{1,1024}$`;
//! - `Authorization: Basic base64(<namespace API key>)`: none or unreadable → 401, a key the
//!   emulator does not know → 403, a known key for another namespace → 401;
//! - `GET` → 200 with the raw value and `x-key-expires-ms` (epoch ms), or 404 when absent or
//!   expired; `PUT ?ttl=<s>` (absent or 0: 86 400; above 31 536 000 or not a whole number: 400)
//!   with `Content-Type: application/octet-stream` (else 415), values up to 1 MB (else 413);
//!   `DELETE` → 200, or 404 when absent;
//! - expiry runs on the emulator's clock ([`super::Emulator::advance_clock`]);
//! - 429 (with `Retry-After`) and other faults come from [`super::Emulator::inject_fault`] on the
//!   `/containers` prefix.

use std::collections::HashMap;
use std::sync::Mutex;

use base64::Engine;
use serde_json::json;

use super::RecordedRequest;
use super::response::Response;

/// Default TTL when none (or 0) is given: one day.
pub const DEFAULT_TTL_SECS: u64 = 86_400;
/// Longest TTL: 365 days.
pub const MAX_TTL_SECS: u64 = 31_536_000;
/// Largest value: 1 MB.
pub const MAX_VALUE_BYTES: usize = 1024 * 1024;

/// One stored value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateEntry {
    /// Its key.
    pub key: String,
    /// The raw value.
    pub value: Vec<u8>,
    /// Expiry on the emulator clock, Unix milliseconds.
    pub expires_at_ms: u64,
}

/// Namespaces, their API keys, and their values.
#[derive(Default)]
pub(crate) struct Store {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// namespace → API key.
    namespaces: HashMap<String, String>,
    /// (namespace, key) → entry.
    entries: HashMap<(String, String), StateEntry>,
}

impl Store {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn add_namespace(&self, namespace: &str, api_key: &str) {
        self.lock()
            .namespaces
            .insert(namespace.to_string(), api_key.to_string());
    }

    /// The live entries of `namespace` at `now_ms`, sorted by key.
    pub fn entries(&self, namespace: &str, now_ms: u64) -> Vec<StateEntry> {
        let mut out: Vec<StateEntry> = self
            .lock()
            .entries
            .iter()
            .filter(|((ns, _), e)| ns == namespace && e.expires_at_ms > now_ms)
            .map(|(_, e)| e.clone())
            .collect();
        out.sort_by(|a, b| a.key.cmp(&b.key));
        out
    }

    /// Writes a value directly (tests tamper with entries this way).
    pub fn put(&self, namespace: &str, entry: StateEntry) {
        self.lock()
            .entries
            .insert((namespace.to_string(), entry.key.clone()), entry);
    }
}

/// `/containers/{namespace}/data/{key}`, split.
fn parse_path(path: &str) -> Option<(&str, &str)> {
    let rest = path.strip_prefix("/containers/")?;
    let (namespace, rest) = rest.split_once('/')?;
    let key = rest.strip_prefix("data/")?;
    (!namespace.is_empty()).then_some((namespace, key))
}

fn valid_key(key: &str) -> bool {
    (1..=1024).contains(&key.len())
        && key
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

fn error(status: u16, message: &str) -> Response {
    Response::json(status, &json!({"error": message}))
}

/// The API key of `Authorization: Basic …`.
fn api_key(request: &RecordedRequest) -> Option<String> {
    let value = request.header("authorization")?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    String::from_utf8(bytes).ok().filter(|k| !k.is_empty())
}

/// Routes `/containers/...` against `store`, at `now` (the emulator's clock, Unix ms).
pub(crate) fn handle(store: &Store, now: u64, request: &RecordedRequest) -> Response {
    let Some((namespace, key)) = parse_path(&request.path) else {
        return error(404, "not found");
    };
    let Some(presented) = api_key(request) else {
        return error(401, "missing or malformed Authorization header");
    };
    {
        let inner = store.lock();
        match inner.namespaces.get(namespace) {
            Some(k) if *k == presented => {}
            _ if inner.namespaces.values().any(|k| *k == presented) => {
                return error(401, "the key is not valid for this namespace");
            }
            _ => return error(403, "bad credentials"),
        }
    }
    if !valid_key(key) {
        return error(400, "invalid key: must match ^[a-zA-Z0-9-_.]{1,1024}$");
    }
    let id = (namespace.to_string(), key.to_string());
    match request.method.as_str() {
        "GET" => {
            let mut inner = store.lock();
            match inner.entries.get(&id) {
                Some(e) if e.expires_at_ms > now => {
                    Response::with_type(200, "application/octet-stream", e.value.clone())
                        .header("x-key-expires-ms", &e.expires_at_ms.to_string())
                }
                Some(_) => {
                    inner.entries.remove(&id);
                    error(404, "not found")
                }
                None => error(404, "not found"),
            }
        }
        "PUT" => {
            let content_type = request.header("content-type").unwrap_or("");
            if !content_type
                .to_ascii_lowercase()
                .starts_with("application/octet-stream")
            {
                return error(415, "Content-Type must be application/octet-stream");
            }
            if request.body.len() > MAX_VALUE_BYTES {
                return error(413, "value too large (more than 1 MB)");
            }
            let ttl = match request.query_param("ttl") {
                None => DEFAULT_TTL_SECS,
                Some(t) => match t.parse::<u64>() {
                    Ok(0) => DEFAULT_TTL_SECS,
                    Ok(t) if t <= MAX_TTL_SECS => t,
                    _ => return error(400, "ttl must be a whole number of seconds up to 31536000"),
                },
            };
            store.lock().entries.insert(
                id,
                StateEntry {
                    key: key.to_string(),
                    value: request.body.clone(),
                    expires_at_ms: now + ttl * 1000,
                },
            );
            Response::with_type(200, "application/json", &b"{}"[..])
        }
        "DELETE" => match store.lock().entries.remove(&id) {
            Some(e) if e.expires_at_ms > now => Response::with_type(200, "application/json", &b"{}"[..]),
            _ => error(404, "not found"),
        },
        _ => error(405, "method not allowed").header("allow", "GET, PUT, DELETE"),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use std::io::{Read, Write};
    use std::time::Duration;

    use super::*;
    use crate::{Emulator, Fault};

    struct Resp {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    }

    /// One request on its own connection (`connection: close`), answer read to the end.
    fn send(
        emu: &Emulator,
        method: &str,
        target: &str,
        key: Option<&str>,
        ct: Option<&str>,
        body: &[u8],
    ) -> Resp {
        let mut s = std::net::TcpStream::connect(emu.host_port()).unwrap();
        let mut head = format!("{method} {target} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n");
        if let Some(k) = key {
            head.push_str(&format!(
                "authorization: Basic {}\r\n",
                base64::engine::general_purpose::STANDARD.encode(k)
            ));
        }
        if let Some(ct) = ct {
            head.push_str(&format!("content-type: {ct}\r\n"));
        }
        head.push_str(&format!("content-length: {}\r\n\r\n", body.len()));
        s.write_all(head.as_bytes()).unwrap();
        s.write_all(body).unwrap();
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).unwrap();
        let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        let head = String::from_utf8_lossy(&raw[..split]).into_owned();
        let mut lines = head.lines();
        let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        Resp {
            status,
            headers,
            body: raw[split + 4..].to_vec(),
        }
    }

    fn header<'a>(r: &'a Resp, name: &str) -> Option<&'a str> {
        r.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    const OCTETS: Option<&str> = Some("application/octet-stream");

    #[test]
    fn the_rest_api_as_aio_lib_state_speaks_it() {
        let emu = Emulator::start().unwrap();
        let key = "23bc-uuid:p8e-namespace-secret";
        emu.add_state_namespace("123-proj-stage", key);
        emu.add_state_namespace("456-other", "other-uuid:other-secret");
        let url = "/containers/123-proj-stage/data/k.1";

        // Authentication.
        assert_eq!(send(&emu, "GET", url, None, None, b"").status, 401);
        assert_eq!(
            send(&emu, "GET", url, Some("nobody:nothing"), None, b"").status,
            403
        );
        assert_eq!(
            send(&emu, "GET", url, Some("other-uuid:other-secret"), None, b"").status,
            401
        );

        // Absent, written, read with its expiry, deleted.
        assert_eq!(send(&emu, "GET", url, Some(key), None, b"").status, 404);
        let put = send(
            &emu,
            "PUT",
            &format!("{url}?ttl=60"),
            Some(key),
            OCTETS,
            b"v\x00\xffalue",
        );
        assert_eq!(put.status, 200);
        let got = send(&emu, "GET", url, Some(key), None, b"");
        assert_eq!((got.status, got.body.as_slice()), (200, &b"v\x00\xffalue"[..]));
        let expires: u64 = header(&got, "x-key-expires-ms").unwrap().parse().unwrap();
        assert!(expires.abs_diff(emu.now_ms() + 60_000) < 5_000, "{expires}");
        assert_eq!(emu.state_entries("123-proj-stage").len(), 1);
        assert!(emu.state_entries("456-other").is_empty());
        assert_eq!(send(&emu, "DELETE", url, Some(key), None, b"").status, 200);
        assert_eq!(send(&emu, "DELETE", url, Some(key), None, b"").status, 404);
        assert_eq!(send(&emu, "GET", url, Some(key), None, b"").status, 404);

        // TTL on the emulator's clock; none (or 0) is a day.
        send(&emu, "PUT", &format!("{url}?ttl=2"), Some(key), OCTETS, b"short");
        send(
            &emu,
            "PUT",
            "/containers/123-proj-stage/data/day",
            Some(key),
            OCTETS,
            b"day",
        );
        emu.advance_clock(Duration::from_secs(3));
        assert_eq!(send(&emu, "GET", url, Some(key), None, b"").status, 404);
        let day = send(
            &emu,
            "GET",
            "/containers/123-proj-stage/data/day",
            Some(key),
            None,
            b"",
        );
        assert_eq!(day.status, 200);
        let expires: u64 = header(&day, "x-key-expires-ms").unwrap().parse().unwrap();
        assert!(expires.abs_diff(emu.now_ms() + 86_397_000) < 5_000, "{expires}");

        // What the API refuses.
        let big = vec![b'x'; MAX_VALUE_BYTES + 1];
        assert_eq!(send(&emu, "PUT", url, Some(key), OCTETS, &big).status, 413);
        assert_eq!(
            send(&emu, "PUT", url, Some(key), OCTETS, &big[..MAX_VALUE_BYTES]).status,
            200
        );
        assert_eq!(
            send(&emu, "PUT", url, Some(key), Some("text/plain"), b"v").status,
            415
        );
        for ttl in ["-1", "x", "31536001"] {
            assert_eq!(
                send(&emu, "PUT", &format!("{url}?ttl={ttl}"), Some(key), OCTETS, b"v").status,
                400
            );
        }
        assert_eq!(
            send(
                &emu,
                "PUT",
                &format!("{url}?ttl=31536000"),
                Some(key),
                OCTETS,
                b"v"
            )
            .status,
            200
        );
        assert_eq!(
            send(
                &emu,
                "GET",
                "/containers/123-proj-stage/data/a%2Fb",
                Some(key),
                None,
                b""
            )
            .status,
            400
        );
        assert_eq!(send(&emu, "POST", url, Some(key), OCTETS, b"v").status, 405);

        // Throttling, injected.
        emu.inject_fault(
            "/containers",
            Fault::Status {
                status: 429,
                retry_after: Some("7".into()),
                body: None,
            },
            1,
        );
        let throttled = send(&emu, "GET", url, Some(key), None, b"");
        assert_eq!(
            (throttled.status, header(&throttled, "retry-after")),
            (429, Some("7"))
        );
        assert_eq!(send(&emu, "GET", url, Some(key), None, b"").status, 200);
        assert!(emu.request_count("/containers/123-proj-stage") > 10);
    }

    #[test]
    fn paths_and_keys() {
        assert_eq!(parse_path("/containers/ns/data/k.1"), Some(("ns", "k.1")));
        assert_eq!(parse_path("/containers//data/k"), None);
        assert_eq!(parse_path("/containers/ns/k"), None);
        assert!(valid_key("a-b_c.D9"));
        assert!(!valid_key("a/b"));
        assert!(!valid_key(""));
    }
}
