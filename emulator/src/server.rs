//! A small HTTP/1.1 server: one thread per connection, keep-alive, `Content-Length` and chunked
//! request bodies, and the means to misbehave on purpose (delay, drop, malformed or huge
//! bodies). Plain HTTP, or HTTPS with a [`super::TestCa`].

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::response::{Response, not_found};
use super::state::State;
use super::{
    Fault, HUGE_BODY_BYTES, MAX_HOLD, RecordedRequest, adobe_state, apis, control, ims, target, tls,
};

/// Largest request head (request line + headers) accepted.
const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Largest request body accepted; anything bigger is a client bug in this project.
const MAX_BODY_BYTES: usize = 32 * 1024 * 1024;
/// Idle keep-alive connections are closed after this, so threads do not live forever.
const IDLE_TIMEOUT: Duration = Duration::from_secs(300);

/// What to do with a request.
enum Outcome {
    Respond(Response),
    /// Close the connection without a response.
    Drop,
}

/// Spawns the thread that accepts connections until `shutdown` is set; with `tls`, each
/// connection starts with a TLS handshake.
pub(crate) fn spawn_accept_loop(
    listener: TcpListener,
    state: Arc<State>,
    shutdown: Arc<AtomicBool>,
    tls: Option<Arc<rustls::ServerConfig>>,
) -> io::Result<()> {
    std::thread::Builder::new()
        .name("adobe-emulator-accept".into())
        .spawn(move || {
            for stream in listener.incoming() {
                if shutdown.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let state = Arc::clone(&state);
                let shutdown = Arc::clone(&shutdown);
                let tls = tls.clone();
                let spawned = std::thread::Builder::new()
                    .name("adobe-emulator-conn".into())
                    .spawn(move || serve(stream, &state, &shutdown, tls));
                if let Err(e) = spawned {
                    log::warn!("adobe-emulator: cannot spawn connection thread: {e}");
                }
            }
        })?;
    Ok(())
}

/// A connection requests are read from and responses written to: plain TCP or TLS over it.
trait Wire: Read + Write {
    /// Ends the connection (for TLS, with a close_notify first).
    fn close(&mut self);
}

impl Wire for TcpStream {
    fn close(&mut self) {
        let _ = self.shutdown(Shutdown::Both);
    }
}

impl Wire for tls::TlsStream {
    fn close(&mut self) {
        tls::close(self);
    }
}

/// Counts the connection, does the TLS handshake if any, then serves requests on it.
fn serve(stream: TcpStream, state: &State, shutdown: &AtomicBool, tls: Option<Arc<rustls::ServerConfig>>) {
    state.count_connection();
    let _ = stream.set_nodelay(true);
    let _ = stream.set_read_timeout(Some(IDLE_TIMEOUT));
    match tls {
        None => serve_connection(stream, state, shutdown),
        Some(config) => {
            if let Some(stream) = tls::accept(stream, config, state) {
                serve_connection(stream, state, shutdown);
            }
        }
    }
}

/// Serves requests on one connection until the client closes it, asks to close it, a fault
/// drops it, or the emulator shuts down.
fn serve_connection(stream: impl Wire, state: &State, shutdown: &AtomicBool) {
    let mut reader = BufReader::new(stream);
    loop {
        let parsed = match read_request(&mut reader) {
            Ok(Some(parsed)) => parsed,
            Ok(None) => return,
            Err(RequestError::Io) => return,
            Err(RequestError::Bad(status, message)) => {
                let response = Response::json(
                    status,
                    &serde_json::json!({"error": "invalid_request", "error_description": message}),
                );
                let _ = write_response(reader.get_mut(), &response, false);
                reader.get_mut().close();
                return;
            }
        };
        if shutdown.load(Ordering::SeqCst) {
            reader.get_mut().close();
            return;
        }
        let ParsedRequest { request, keep_alive } = parsed;
        match handle(state, &request) {
            Outcome::Drop => {
                log::info!("{} {} -> (dropped)", request.method, request.path);
                reader.get_mut().close();
                return;
            }
            Outcome::Respond(response) => {
                log::info!("{} {} -> {}", request.method, request.path, response.status);
                if write_response(reader.get_mut(), &response, keep_alive).is_err() || !keep_alive {
                    reader.get_mut().close();
                    return;
                }
            }
        }
    }
}

/// Routes one request: control endpoints first, then faults, then the emulated services.
fn handle(state: &State, request: &RecordedRequest) -> Outcome {
    if request.path.starts_with("/__") {
        return Outcome::Respond(control::handle(state, request));
    }
    state.record_request(request);
    if let Some(fault) = state.take_fault(&request.path) {
        match fault {
            Fault::Delay(d) => std::thread::sleep(d),
            Fault::Hold(gate) => gate.pass(MAX_HOLD),
            Fault::Echo { status } => return Outcome::Respond(echo(status, request)),
            Fault::EchoEncoded { status, encode } => {
                return Outcome::Respond(echo_encoded(status, encode, request));
            }
            other => return apply_fault(&other),
        }
    }
    Outcome::Respond(route(state, request))
}

fn route(state: &State, request: &RecordedRequest) -> Response {
    let path = request.path.as_str();
    match path {
        "/ims/token/v3" => ims::token_v3(state, request),
        "/ims/exchange/jwt" | "/ims/exchange/jwt/" => ims::exchange_jwt(state, request),
        "/adobe/stats/statistics/contentRequestsQuota" => apis::content_requests_quota(state, request),
        _ if path == "/api/assets.json" || path.starts_with("/api/assets/") => {
            apis::aem_content(state, request)
        }
        _ if path.starts_with("/content/") || path == "/content.json" => apis::aem_content(state, request),
        _ if path.starts_with("/containers/") => {
            adobe_state::handle(&state.adobe_state, state.now_ms(), request)
        }
        "/discovery/me" => apis::analytics_discovery(state, request),
        _ => match (analytics_company(path), target::split(path)) {
            (Some(company), _) => apis::analytics_report(state, request, company),
            (None, Some((tenant, resource))) => target::handle(state, request, tenant, resource),
            (None, None) => not_found(),
        },
    }
}

/// The company id of `/api/{companyId}/reports`.
fn analytics_company(path: &str) -> Option<&str> {
    let rest = path.strip_prefix("/api/")?;
    let company = rest.strip_suffix("/reports")?;
    (!company.is_empty() && !company.contains('/')).then_some(company)
}

/// A body quoting `request` back: its body first, then its headers.
/// The request as one text: body, then every header (`name: value`).
fn quoted(request: &RecordedRequest) -> String {
    let body = String::from_utf8_lossy(&request.body).into_owned();
    std::iter::once(body)
        .chain(request.headers.iter().map(|(k, v)| format!("{k}: {v}")))
        .collect::<Vec<_>>()
        .join(" | ")
}

fn echo_encoded(status: u16, encode: fn(&str) -> String, request: &RecordedRequest) -> Response {
    let text = encode(&quoted(request));
    Response::json(
        status,
        &serde_json::json!({
            "error": "echo",
            "error_description": text,
            "error_code": "echo",
            "message": text,
        }),
    )
}

fn echo(status: u16, request: &RecordedRequest) -> Response {
    let body = String::from_utf8_lossy(&request.body).into_owned();
    let headers: serde_json::Map<String, serde_json::Value> = request
        .headers
        .iter()
        .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
        .collect();
    let text = quoted(request);
    Response::json(
        status,
        &serde_json::json!({
            "error": "echo",
            "error_description": text,
            "error_code": "echo",
            "message": text,
            "request": {"method": request.method, "path": request.path, "query": request.query,
                        "headers": headers, "body": body},
        }),
    )
}

fn apply_fault(fault: &Fault) -> Outcome {
    match fault {
        Fault::Drop => Outcome::Drop,
        Fault::Delay(_) | Fault::Hold(_) | Fault::Echo { .. } | Fault::EchoEncoded { .. } => {
            Outcome::Respond(Response::json(200, &serde_json::json!({})))
        }
        Fault::Status {
            status,
            retry_after,
            body,
        } => {
            let mut response = match body {
                Some(body) => {
                    let is_json = serde_json::from_str::<serde_json::Value>(body).is_ok();
                    let ct = if is_json { "application/json" } else { "text/plain" };
                    Response::with_type(*status, ct, body.clone().into_bytes())
                }
                None => Response::json(
                    *status,
                    &serde_json::json!({
                        "error": if *status >= 500 { "internal_error" } else { "injected_fault" },
                        "error_description": "Please try again later",
                    }),
                ),
            };
            if let Some(retry_after) = retry_after {
                response = response.header("retry-after", retry_after);
            }
            Outcome::Respond(response)
        }
        Fault::Malformed => Outcome::Respond(Response::with_type(
            200,
            "application/json",
            &b"{\"access_token\":\"eyJ4NXUiOiJpbXNfbmExLWtleS1hdC0xLmNlciIs"[..],
        )),
        Fault::Html => Outcome::Respond(Response::with_type(
            502,
            "text/html",
            &b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n\
               <center><h1>502 Bad Gateway</h1></center>\r\n</body>\r\n</html>\r\n"[..],
        )),
        Fault::Huge => {
            // Valid JSON, so the only thing wrong with it is its size.
            let prefix = b"{\"padding\":\"";
            let suffix = b"\"}";
            let mut body = Vec::with_capacity(HUGE_BODY_BYTES);
            body.extend_from_slice(prefix);
            body.resize(HUGE_BODY_BYTES - suffix.len(), b'x');
            body.extend_from_slice(suffix);
            Outcome::Respond(Response::with_type(200, "application/json", body))
        }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Payload Too Large",
        415 => "Unsupported Media Type",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Unknown",
    }
}

fn write_response(w: &mut impl Write, response: &Response, keep_alive: bool) -> io::Result<()> {
    let mut head = format!("HTTP/1.1 {} {}\r\n", response.status, reason(response.status));
    for (name, value) in &response.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!("content-length: {}\r\n", response.body.len()));
    head.push_str(if keep_alive {
        "connection: keep-alive\r\n\r\n"
    } else {
        "connection: close\r\n\r\n"
    });
    // One buffer and one write for small responses: avoids a Nagle-style stall between head
    // and body on clients that read the head first.
    let mut out = Vec::with_capacity(head.len() + response.body.len());
    out.extend_from_slice(head.as_bytes());
    out.extend_from_slice(&response.body);
    w.write_all(&out)?;
    w.flush()
}

struct ParsedRequest {
    request: RecordedRequest,
    keep_alive: bool,
}

enum RequestError {
    /// The connection broke or closed mid-request; nothing can be answered.
    Io,
    /// The request is unparseable; answer with this status and close.
    Bad(u16, String),
}

impl From<io::Error> for RequestError {
    fn from(_: io::Error) -> Self {
        RequestError::Io
    }
}

fn bad(message: &str) -> RequestError {
    RequestError::Bad(400, message.to_string())
}

/// Reads one line (up to and excluding CRLF/LF), counting it against the head budget.
fn read_line(reader: &mut impl BufRead, budget: &mut usize) -> Result<Option<String>, RequestError> {
    let mut line = Vec::new();
    let n = reader
        .by_ref()
        .take(*budget as u64 + 1)
        .read_until(b'\n', &mut line)?;
    if n == 0 {
        return Ok(None);
    }
    if n > *budget {
        return Err(RequestError::Bad(431, "request head too large".into()));
    }
    *budget -= n;
    if line.last() != Some(&b'\n') {
        // EOF in the middle of a line.
        return Err(RequestError::Io);
    }
    line.pop();
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    String::from_utf8(line)
        .map(Some)
        .map_err(|_| bad("request head is not UTF-8"))
}

/// Reads one request. `Ok(None)` means the client closed the connection between requests.
fn read_request(reader: &mut BufReader<impl Read + Write>) -> Result<Option<ParsedRequest>, RequestError> {
    let mut budget = MAX_HEAD_BYTES;
    // Tolerate stray empty lines between keep-alive requests (RFC 9112 §2.2).
    let request_line = loop {
        match read_line(reader, &mut budget) {
            Ok(None) => return Ok(None),
            Ok(Some(line)) if line.is_empty() => continue,
            Ok(Some(line)) => break line,
            // An idle keep-alive connection timing out is an ordinary end.
            Err(e) => return Err(e),
        }
    };
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad("malformed request line"));
    };
    let http11 = match version {
        "HTTP/1.1" => true,
        "HTTP/1.0" => false,
        _ => return Err(RequestError::Bad(505, "HTTP version not supported".into())),
    };
    let mut headers = Vec::new();
    loop {
        let Some(line) = read_line(reader, &mut budget)? else {
            return Err(RequestError::Io);
        };
        if line.is_empty() {
            break;
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(bad("malformed header line"));
        };
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
    }
    let header = |name: &str| headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let connection = header("connection").unwrap_or("").to_ascii_lowercase();
    let keep_alive = if http11 {
        !connection.split(',').any(|t| t.trim() == "close")
    } else {
        connection.split(',').any(|t| t.trim() == "keep-alive")
    };
    let chunked = header("transfer-encoding")
        .map(|te| te.to_ascii_lowercase().contains("chunked"))
        .unwrap_or(false);
    let content_length = match header("content-length") {
        Some(v) if !chunked => Some(v.parse::<usize>().map_err(|_| bad("invalid content-length"))?),
        _ => None,
    };
    if content_length.is_some_and(|n| n > MAX_BODY_BYTES) {
        return Err(RequestError::Bad(413, "request body too large".into()));
    }
    if header("expect").is_some_and(|v| v.eq_ignore_ascii_case("100-continue")) {
        reader.get_mut().write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
    }
    let body = if chunked {
        read_chunked(reader)?
    } else if let Some(n) = content_length {
        let mut body = vec![0u8; n];
        reader.read_exact(&mut body)?;
        body
    } else {
        Vec::new()
    };
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p.to_string(), q.to_string()),
        None => (target.to_string(), String::new()),
    };
    Ok(Some(ParsedRequest {
        request: RecordedRequest {
            method: method.to_string(),
            path,
            query,
            headers,
            body,
            received: std::time::Instant::now(),
        },
        keep_alive,
    }))
}

/// Decodes a chunked body, discarding chunk extensions and trailers.
fn read_chunked(reader: &mut impl BufRead) -> Result<Vec<u8>, RequestError> {
    let mut body = Vec::new();
    loop {
        let mut budget = MAX_HEAD_BYTES;
        let Some(line) = read_line(reader, &mut budget)? else {
            return Err(RequestError::Io);
        };
        let size_text = line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16).map_err(|_| bad("invalid chunk size"))?;
        if body.len() + size > MAX_BODY_BYTES {
            return Err(RequestError::Bad(413, "request body too large".into()));
        }
        if size == 0 {
            // Trailer section, ended by an empty line.
            loop {
                let Some(line) = read_line(reader, &mut budget)? else {
                    return Err(RequestError::Io);
                };
                if line.is_empty() {
                    return Ok(body);
                }
            }
        }
        let start = body.len();
        body.resize(start + size, 0);
        reader.read_exact(&mut body[start..])?;
        let mut crlf = [0u8; 2];
        reader.read_exact(&mut crlf[..1])?;
        if crlf[0] == b'\r' {
            reader.read_exact(&mut crlf[1..])?;
        }
        if !(crlf == *b"\r\n" || crlf[0] == b'\n') {
            return Err(bad("chunk not followed by CRLF"));
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;

    #[test]
    fn chunked_decoding() {
        let raw = b"4;ext=1\r\nWiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nX-T: 1\r\n\r\n";
        let mut r = BufReader::new(&raw[..]);
        let body = read_chunked(&mut r).ok().unwrap();
        assert_eq!(body, b"Wikipedia in\r\n\r\nchunks.");
        let raw = b"zz\r\n";
        assert!(read_chunked(&mut BufReader::new(&raw[..])).is_err());
    }

    #[test]
    fn analytics_path() {
        assert_eq!(analytics_company("/api/demoorg0/reports"), Some("demoorg0"));
        assert_eq!(analytics_company("/api//reports"), None);
        assert_eq!(analytics_company("/api/a/b/reports"), None);
        assert_eq!(analytics_company("/api/a/reports/x"), None);
    }
}
