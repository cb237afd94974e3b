//! API routes: `OPERATION=api` calls one route of the deployment's sealed `API_ROUTES` table
//! (see `docs/routes.md`). The table is read and checked whole, hosts against the endpoint
//! allowlist, before any token is fetched; then the request's `API_ROUTE`, `API_PARAMS` and
//! `API_BODY` are checked against the route. A caller's value fills one path segment only: it
//! is matched whole against the route's regex, refused outright when it holds a `/`, `\`, a dot
//! segment, a '%' or a control character, and percent-encoded all the same, so that
//! nothing a caller sends can change the path, reach another host or add a header.

use std::borrow::Cow;
use std::collections::BTreeMap;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::{Map, Value};

use crate::credentials::Credentials;
use crate::endpoint::{AllowList, BaseUrl, HostScope};
use crate::error::{Error, Service};
use crate::http::{Budget, HttpClient, Method, Request, Response};
use crate::params::{InputCheck, Kind, Params, json_type};
use crate::token::AccessToken;

use super::{ApiKey, Reply, aem_environment};

/// The sealed route table.
pub const ROUTES_INPUT: &str = "API_ROUTES";
/// The route a request calls.
pub const ROUTE_INPUT: &str = "API_ROUTE";
/// The request's placeholder and query values.
pub const PARAMS_INPUT: &str = "API_PARAMS";
/// The request's JSON body.
pub const BODY_INPUT: &str = "API_BODY";

/// `body_max_bytes`' default.
pub const DEFAULT_BODY_MAX: usize = 64 * 1024;
/// The largest `body_max_bytes` a route may set: OpenWhisk's own limit on a request's params.
pub const MAX_BODY_MAX: usize = 1024 * 1024;
/// The largest `API_ROUTES` given as a JSON string, and the largest `API_PARAMS`.
const MAX_TABLE_TEXT: usize = 256 * 1024;
const MAX_PARAMS_TEXT: usize = 64 * 1024;
/// The longest value of one placeholder or query parameter.
pub const MAX_VALUE: usize = 1024;
/// The longest regex, and the most a compiled one may take: a table is configuration, but a
/// careless pattern must not cost every activation megabytes.
const MAX_PATTERN: usize = 1024;
const PATTERN_SIZE_LIMIT: usize = 256 * 1024;

/// Headers a route may never set: the credential's (the action sets them from the credential
/// itself), the host, framing, and hop-by-hop headers (RFC 9110 7.6.1).
const FORBIDDEN_HEADERS: [&str; 15] = [
    "authorization",
    "proxy-authorization",
    "x-api-key",
    "x-gw-ims-org-id",
    "host",
    "cookie",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "upgrade",
    "expect",
];

/// What a value in one path segment keeps as is: RFC 3986's unreserved characters. Everything
/// else (`/`, `?`, `#`, `%`, `;`, spaces, non-ASCII…) is percent-encoded.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// One route of the table.
#[derive(Debug)]
pub struct Route {
    name: String,
    service: Service,
    method: Method,
    base: BaseUrl,
    path: Vec<Segment>,
    fixed_query: Option<String>,
    params: BTreeMap<String, Pattern>,
    query: BTreeMap<String, Pattern>,
    /// The query parameters' order in the URL: a table's sorted, a built-in's as declared.
    query_order: Vec<String>,
    body: bool,
    body_max: usize,
    headers: Vec<(String, String)>,
    adobe_headers: bool,
    retryable: bool,
}

#[derive(Debug)]
enum Segment {
    Literal(String),
    Placeholder(String),
    /// A built-in operation's path, checked by the operation (`AEM_PATH`): as is.
    Verbatim(String),
}

/// A regex matched against a whole value.
#[derive(Debug)]
struct Pattern {
    source: String,
    regex: regex_lite::Regex,
}

/// The table: route name → route.
#[derive(Debug, Default)]
pub struct Table {
    routes: BTreeMap<String, Route>,
}

/// A configuration error of one route.
fn bad_route(route: &str, what: impl std::fmt::Display) -> Error {
    // ops: api-routes
    Error::Configuration(format!(
        "{ROUTES_INPUT}: route '{}': {what}",
        route.escape_debug()
    ))
}

impl Table {
    /// The table in `API_ROUTES` (an object, or one as a JSON string); `Ok(None)` when absent.
    /// Every route is checked, whichever one a request names: a table with one bad route is a
    /// configuration error, found before any token is fetched.
    pub fn from_params(params: &Params, allow: &AllowList) -> Result<Option<Table>, Error> {
        let parsed;
        let object = match params.get(ROUTES_INPUT) {
            None | Some(Value::Null) => return Ok(None),
            Some(Value::String(s)) if s.trim().is_empty() => return Ok(None),
            Some(Value::Object(o)) => o,
            Some(Value::String(s)) => {
                if s.len() > MAX_TABLE_TEXT {
                    // ops: api-routes
                    return Err(Error::Configuration(format!(
                        "{ROUTES_INPUT} is too long (at most {MAX_TABLE_TEXT} bytes)"
                    )));
                }
                parsed = serde_json::from_str::<Value>(s).map_err(|e| {
                    // ops: api-routes
                    Error::Configuration(format!(
                        "{ROUTES_INPUT} is not valid JSON (line {}, column {})",
                        e.line(),
                        e.column()
                    ))
                })?;
                match &parsed {
                    Value::Object(o) => o,
                    other => return Err(table_type(other)),
                }
            }
            Some(other) => return Err(table_type(other)),
        };
        let mut routes = BTreeMap::new();
        for (name, spec) in object {
            routes.insert(name.clone(), Route::parse(name, spec, allow)?);
        }
        Ok(Some(Table { routes }))
    }

    /// The routes, by name.
    pub fn routes(&self) -> impl Iterator<Item = &Route> {
        self.routes.values()
    }

    fn names(&self) -> String {
        self.routes.keys().cloned().collect::<Vec<_>>().join(", ")
    }
}

fn table_type(v: &Value) -> Error {
    // ops: api-routes
    Error::Configuration(format!(
        "{ROUTES_INPUT} must be an object mapping route names to routes (or that object as a JSON \
         string), not {}",
        json_type(v)
    ))
}

impl Route {
    fn parse(name: &str, spec: &Value, allow: &AllowList) -> Result<Route, Error> {
        let bad = |what: String| bad_route(name, what);
        if name.is_empty()
            || name.len() > 64
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        {
            // ops: api-routes
            return Err(Error::Configuration(format!(
                "{ROUTES_INPUT}: route names are 1 to 64 letters, digits, '-', '_' or '.' ('{}' is not)",
                name.escape_debug()
            )));
        }
        let Value::Object(spec) = spec else {
            return Err(bad(format!("must be an object, not {}", json_type(spec))));
        };
        for key in spec.keys() {
            if ![
                "url",
                "method",
                "params",
                "query",
                "body",
                "body_max_bytes",
                "headers",
                "adobe_headers",
            ]
            .contains(&key.as_str())
            {
                return Err(bad(format!(
                    "has an unknown field '{}' (a route has url, method, params, query, body, \
                     body_max_bytes, headers, adobe_headers)",
                    key.escape_debug()
                )));
            }
        }
        let url = match spec.get("url") {
            Some(Value::String(s)) if !s.trim().is_empty() => s.as_str(),
            _ => return Err(bad("needs a \"url\" (an absolute https URL)".into())),
        };
        let (base, path, fixed_query) = parse_url(url, allow).map_err(bad)?;
        let method = match spec.get("method") {
            None | Some(Value::Null) => Method::Get,
            Some(Value::String(m)) => match m.to_ascii_uppercase().as_str() {
                "GET" => Method::Get,
                "POST" => Method::Post,
                "PUT" => Method::Put,
                "PATCH" => Method::Patch,
                "DELETE" => Method::Delete,
                _ => return Err(bad("\"method\" must be GET, POST, PUT, PATCH or DELETE".into())),
            },
            Some(other) => {
                return Err(bad(format!(
                    "\"method\" must be a string, not {}",
                    json_type(other)
                )));
            }
        };
        let params = patterns(spec.get("params"), "params").map_err(bad)?;
        let query = patterns(spec.get("query"), "query").map_err(bad)?;
        let placeholders: Vec<&str> = path
            .iter()
            .filter_map(|s| match s {
                Segment::Placeholder(p) => Some(p.as_str()),
                Segment::Literal(_) | Segment::Verbatim(_) => None,
            })
            .collect();
        for p in &placeholders {
            if !params.contains_key(*p) {
                return Err(bad(format!(
                    "placeholder {{{p}}} of its url needs a regex in \"params\""
                )));
            }
        }
        if let Some(extra) = params.keys().find(|k| !placeholders.contains(&k.as_str())) {
            return Err(bad(format!(
                "\"params\" names '{}', which is no placeholder of its url",
                extra.escape_debug()
            )));
        }
        // A name fixed in the url's query cannot also be a caller's: `?limit=10&limit=<theirs>`
        // lets many servers take the last.
        let fixed = fixed_query
            .as_deref()
            .and_then(|q| form_urlencoded::parse(q.as_bytes()).find(|(k, _)| query.contains_key(k.as_ref())));
        if let Some((fixed, _)) = fixed {
            return Err(bad(format!(
                "'{}' is fixed in its url's query and cannot also be in \"query\"",
                fixed.escape_debug()
            )));
        }
        if let Some(both) = query.keys().find(|k| params.contains_key(*k)) {
            return Err(bad(format!(
                "'{}' is both a placeholder and a query parameter",
                both.escape_debug()
            )));
        }
        let body = flag(spec.get("body"), "body", false).map_err(bad)?;
        if body && matches!(method, Method::Get | Method::Delete) {
            return Err(bad("\"body\": true needs method POST, PUT or PATCH".into()));
        }
        let body_max = match spec.get("body_max_bytes") {
            None | Some(Value::Null) => DEFAULT_BODY_MAX,
            Some(v) => match v.as_u64() {
                Some(n) if (1..=MAX_BODY_MAX as u64).contains(&n) => n as usize,
                _ => {
                    return Err(bad(format!(
                        "\"body_max_bytes\" must be a whole number from 1 to {MAX_BODY_MAX}"
                    )));
                }
            },
        };
        let headers = fixed_headers(spec.get("headers")).map_err(bad)?;
        let adobe_headers = flag(spec.get("adobe_headers"), "adobe_headers", true).map_err(bad)?;
        Ok(Route {
            name: name.to_string(),
            service: Service::Api,
            method,
            base,
            path,
            fixed_query,
            params,
            query_order: query.keys().cloned().collect(),
            query,
            body,
            body_max,
            headers,
            adobe_headers,
            retryable: idempotent(method),
        })
    }

    /// A built-in operation as a route of the engine: `base` is allow-listed for `service`
    /// already, `template` a path as in a table's `url`, `params` and `query` its regexes.
    /// Its headers may be the gateway's own (`x-gw-ims-org-id`): they come from the operation's
    /// inputs, never from a caller's table.
    pub(crate) fn builtin(
        name: &str,
        service: Service,
        method: Method,
        base: BaseUrl,
        template: &str,
        params: &[(&str, &str)],
        query: &[(&str, &str)],
    ) -> Result<Route, Error> {
        let internal = |why: String| Error::Internal(format!("built-in route {name}: {why}"));
        let (path, fixed_query) = parse_path(template).map_err(internal)?;
        let compile = |list: &[(&str, &str)]| -> Result<BTreeMap<String, Pattern>, Error> {
            list.iter()
                .map(|(n, re)| Ok((n.to_string(), Pattern::new(re).map_err(internal)?)))
                .collect()
        };
        Ok(Route {
            name: name.to_string(),
            service,
            method,
            base,
            path,
            fixed_query,
            params: compile(params)?,
            query: compile(query)?,
            query_order: query.iter().map(|(n, _)| n.to_string()).collect(),
            body: matches!(method, Method::Post | Method::Put | Method::Patch),
            body_max: MAX_BODY_MAX,
            headers: Vec::new(),
            adobe_headers: false,
            retryable: idempotent(method),
        })
    }

    /// Adds a fixed header (built-in routes).
    pub(crate) fn header(mut self, name: &str, value: impl Into<String>) -> Route {
        self.headers.push((name.to_string(), value.into()));
        self
    }

    /// Marks a non-idempotent request as safe to repeat (a report POST that only reads).
    pub(crate) fn retryable(mut self, retryable: bool) -> Route {
        self.retryable = retryable;
        self
    }

    /// Appends a path the operation checked itself (`AEM_PATH`, which may hold a query).
    pub(crate) fn verbatim(mut self, path_and_query: &str) -> Route {
        self.path.push(Segment::Verbatim(path_and_query.to_string()));
        self
    }

    /// The call of this route with `values` (placeholders and query, checked as a caller's
    /// are) and `body`; `api_key` and `org` are the gateway headers to add.
    pub(crate) fn prepare(
        self,
        values: &Map<String, Value>,
        body: Option<Vec<u8>>,
        api_key: ApiKey,
        org: Option<String>,
    ) -> Result<RouteCall, Error> {
        let path_and_query = self.path_and_query(values)?;
        Ok(RouteCall {
            route: self,
            path_and_query,
            body,
            api_key,
            org,
        })
    }

    /// The route's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The method's name.
    pub fn method_name(&self) -> &'static str {
        match self.method {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
        }
    }

    /// Where it goes: `host[:port]`.
    pub fn host(&self) -> String {
        self.base.host_port()
    }

    /// The path and query for `values`, each checked: placeholders fill one segment each.
    fn path_and_query(&self, values: &Map<String, Value>) -> Result<String, Error> {
        let mut path = String::new();
        for segment in &self.path {
            if let Segment::Verbatim(v) = segment {
                path.push_str(v);
                continue;
            }
            path.push('/');
            match segment {
                Segment::Literal(l) | Segment::Verbatim(l) => path.push_str(l),
                Segment::Placeholder(p) => {
                    let field = format!("{PARAMS_INPUT}.{p}");
                    let value = match values.get(p) {
                        Some(v) => scalar(&field, v)?,
                        None => {
                            return Err(Error::invalid(
                                field,
                                format!("is required by route '{}'", self.name),
                            ));
                        }
                    };
                    check_segment(&field, &value)?;
                    let pattern = self.params.get(p).ok_or_else(|| {
                        Error::Internal(format!("route {} has no regex for {{{p}}}", self.name))
                    })?;
                    pattern.check(&field, &value, &self.name)?;
                    path.extend(utf8_percent_encode(&value, SEGMENT));
                }
            }
        }
        if path.is_empty() {
            path.push('/');
        }
        let mut query = form_urlencoded::Serializer::new(String::new());
        let mut any = false;
        for name in &self.query_order {
            if let (Some(v), Some(pattern)) = (values.get(name), self.query.get(name)) {
                let field = format!("{PARAMS_INPUT}.{name}");
                let value = scalar(&field, v)?;
                check_text(&field, &value)?;
                pattern.check(&field, &value, &self.name)?;
                query.append_pair(name, &value);
                any = true;
            }
        }
        let query = query.finish();
        match (&self.fixed_query, any) {
            (Some(fixed), true) => Ok(format!("{path}?{fixed}&{query}")),
            (Some(fixed), false) => Ok(format!("{path}?{fixed}")),
            (None, true) => Ok(format!("{path}?{query}")),
            (None, false) => Ok(path),
        }
    }
}

impl Pattern {
    fn new(source: &str) -> Result<Pattern, String> {
        if source.len() > MAX_PATTERN {
            return Err(format!("is longer than {MAX_PATTERN} bytes"));
        }
        // The pattern must stand on its own first: `a)|(?:.*` would otherwise close the group
        // and unanchor the wrapped regex. Then \A and \z outside it: a flag or alternation
        // inside cannot unanchor it.
        regex_lite::RegexBuilder::new(source)
            .size_limit(PATTERN_SIZE_LIMIT)
            .build()
            .map_err(|e| format!("is not a valid regex: {}", first_line(&e.to_string())))?;
        let regex = regex_lite::RegexBuilder::new(&format!(r"\A(?:{source})\z"))
            .size_limit(PATTERN_SIZE_LIMIT)
            .build()
            .map_err(|e| format!("is not a valid regex: {}", first_line(&e.to_string())))?;
        Ok(Pattern {
            source: source.to_string(),
            regex,
        })
    }

    /// The value, matched whole. The message quotes the pattern (configuration), never the value.
    fn check(&self, field: &str, value: &str, route: &str) -> Result<(), Error> {
        if self.regex.is_match(value) {
            Ok(())
        } else {
            Err(Error::invalid(
                field,
                format!(
                    "does not match route '{route}' (the whole value must match {})",
                    self.source
                ),
            ))
        }
    }
}

fn first_line(s: &str) -> String {
    s.lines().last().unwrap_or("").trim().to_string()
}

/// `{name: regex}` of `params` or `query`.
fn patterns(v: Option<&Value>, field: &str) -> Result<BTreeMap<String, Pattern>, String> {
    let map = match v {
        None | Some(Value::Null) => return Ok(BTreeMap::new()),
        Some(Value::Object(m)) => m,
        Some(other) => {
            return Err(format!(
                "\"{field}\" must be an object of name: regex, not {}",
                json_type(other)
            ));
        }
    };
    let mut out = BTreeMap::new();
    for (name, regex) in map {
        if !is_name(name) {
            return Err(format!(
                "\"{field}\" names '{}': names are letters, digits, '_', '-' and '.', at most 128",
                name.escape_debug()
            ));
        }
        let Value::String(source) = regex else {
            return Err(format!("\"{field}\".{name} must be a regex (a string)"));
        };
        let pattern = Pattern::new(source).map_err(|why| format!("\"{field}\".{name} {why}"))?;
        out.insert(name.clone(), pattern);
    }
    Ok(out)
}

fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

fn flag(v: Option<&Value>, field: &str, default: bool) -> Result<bool, String> {
    match v {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(other) => Err(format!(
            "\"{field}\" must be true or false, not {}",
            json_type(other)
        )),
    }
}

/// The route's fixed `headers`, names lower-cased.
fn fixed_headers(v: Option<&Value>) -> Result<Vec<(String, String)>, String> {
    let map = match v {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Object(m)) => m,
        Some(other) => return Err(format!("\"headers\" must be an object, not {}", json_type(other))),
    };
    let mut out = Vec::new();
    for (name, value) in map {
        let lower = name.to_ascii_lowercase();
        // RFC 9110 5.1: a header name is a token.
        let token = !lower.is_empty()
            && lower.len() <= 128
            && lower
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
        if !token {
            return Err(format!(
                "\"headers\" names '{}', which is not a header name",
                name.escape_debug()
            ));
        }
        if FORBIDDEN_HEADERS.contains(&lower.as_str()) || lower.starts_with("proxy-") {
            return Err(format!(
                "\"headers\" may not set '{lower}': the action sets the credential's headers \
                 (authorization, x-api-key, x-gw-ims-org-id: see adobe_headers), the host and the \
                 framing itself"
            ));
        }
        let Value::String(value) = value else {
            return Err(format!("\"headers\".{lower} must be a string"));
        };
        if value.len() > MAX_VALUE || value.chars().any(|c| c.is_control() && c != '\t') {
            return Err(format!(
                "\"headers\".{lower} must be at most {MAX_VALUE} bytes without line breaks or control characters"
            ));
        }
        // `Accept` and `accept` are two JSON keys but one header: sent twice, which wins is the
        // server's guess.
        if out.iter().any(|(n, _)| *n == lower) {
            return Err(format!(
                "\"headers\" names '{lower}' twice (header names ignore case)"
            ));
        }
        out.push((lower, value.clone()));
    }
    Ok(out)
}

/// Splits a route's `url` into its allow-listed base, path template and fixed query.
fn parse_url(url: &str, allow: &AllowList) -> Result<(BaseUrl, Vec<Segment>, Option<String>), String> {
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err("\"url\" must be an absolute https:// URL".into());
    };
    if url.contains('#') {
        return Err("\"url\" must not have a fragment ('#')".into());
    }
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path_and_query) = rest.split_at(end);
    if authority.contains(['{', '}']) {
        return Err("\"url\": placeholders may stand only for whole path segments, not in the host".into());
    }
    let base = BaseUrl::parse(
        ROUTES_INPUT,
        &format!("{scheme}://{authority}"),
        allow,
        HostScope::Api,
    )
    .map_err(|e| match e {
        Error::InvalidInput { reason, .. } => format!("\"url\" {reason}"),
        other => other.to_string(),
    })?;
    let (segments, fixed_query) = parse_path(path_and_query)?;
    Ok((base, segments, fixed_query))
}

/// A path template (`/{tenant}/target/activities`, with an optional fixed query) into segments.
fn parse_path(path_and_query: &str) -> Result<(Vec<Segment>, Option<String>), String> {
    let (path, query) = match path_and_query.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (path_and_query, None),
    };
    if path_and_query
        .chars()
        .any(|c| c.is_control() || c.is_whitespace() || c == '\\')
    {
        return Err("\"url\" must not contain spaces, backslashes or control characters".into());
    }
    let fixed_query = match query {
        Some(q) if q.contains(['{', '}']) => {
            return Err(
                "\"url\": placeholders may stand only for whole path segments; declare query \
                        parameters in \"query\""
                    .into(),
            );
        }
        Some("") | None => None,
        Some(q) => Some(q.to_string()),
    };
    let mut segments = Vec::new();
    let mut seen = Vec::new();
    let parts: Vec<&str> = match path.strip_prefix('/') {
        Some(p) if !p.is_empty() => p.split('/').collect(),
        _ => Vec::new(),
    };
    let last = parts.len().saturating_sub(1);
    for (i, part) in parts.iter().enumerate() {
        if let Some(inner) = part.strip_prefix('{') {
            let name = inner
                .strip_suffix('}')
                .filter(|n| is_name(n) && !n.contains(['{', '}']));
            let Some(name) = name else {
                return Err(format!(
                    "\"url\": '{}' is not a placeholder: a placeholder is a whole segment, {{name}}",
                    part.escape_debug()
                ));
            };
            if seen.contains(&name) {
                return Err(format!("\"url\" has placeholder {{{name}}} twice"));
            }
            seen.push(name);
            segments.push(Segment::Placeholder(name.to_string()));
            continue;
        }
        if part.contains(['{', '}']) {
            return Err(format!(
                "\"url\": placeholders may stand only for whole path segments ('{}')",
                part.escape_debug()
            ));
        }
        // An empty last segment is a trailing slash; an empty one inside is a '//'.
        if part.is_empty() && i != last {
            return Err("\"url\" must not contain '//' in its path".into());
        }
        let decoded = part.to_ascii_lowercase().replace("%2e", ".");
        if decoded == "." || decoded == ".." || decoded.contains("%2f") || decoded.contains("%5c") {
            return Err("\"url\" must not contain '.' or '..' segments or encoded slashes".into());
        }
        segments.push(Segment::Literal(part.to_string()));
    }
    Ok((segments, fixed_query))
}

/// A placeholder or query value: a string, number or boolean, as text.
fn scalar(field: &str, v: &Value) -> Result<String, Error> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        other => Err(Error::invalid(
            field,
            format!("must be a string or a number, not {}", json_type(other)),
        )),
    }
}

/// Any value: bounded, no control characters (NUL, CR, LF…), which have no business in a URL.
fn check_text(field: &str, value: &str) -> Result<(), Error> {
    if value.len() > MAX_VALUE {
        return Err(Error::invalid(
            field,
            format!("is too long (at most {MAX_VALUE} bytes)"),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(Error::invalid(
            field,
            "must not contain line breaks, NUL or other control characters",
        ));
    }
    Ok(())
}

/// A path value is one segment, whatever the route's regex admits: no separator, no dot
/// segment, and no '%' at all (an escape such as `%2F` or `%2e%2e`, or `%u002f`, might be
/// decoded into either by a server or a proxy on the way).
fn check_segment(field: &str, value: &str) -> Result<(), Error> {
    check_text(field, value)?;
    if value.is_empty() || value == "." || value == ".." || value.contains(['/', '\\', '%']) {
        return Err(Error::invalid(
            field,
            "must be one path segment: not empty, '.' or '..', without '/', '\\' or '%'",
        ));
    }
    Ok(())
}

/// `API_PARAMS`: an object, or one as a JSON string.
fn request_values(params: &Params) -> Result<Map<String, Value>, Error> {
    match params.get(PARAMS_INPUT) {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(Map::new()),
        Some(Value::Object(o)) => Ok(o.clone()),
        Some(Value::String(s)) => {
            if s.len() > MAX_PARAMS_TEXT {
                return Err(Error::invalid(
                    PARAMS_INPUT,
                    format!("is too long (at most {MAX_PARAMS_TEXT} bytes)"),
                ));
            }
            match serde_json::from_str::<Value>(s) {
                Ok(Value::Object(o)) => Ok(o),
                _ => Err(Error::invalid(
                    PARAMS_INPUT,
                    "must be a JSON object of placeholder and query values",
                )),
            }
        }
        Some(other) => Err(Error::invalid(
            PARAMS_INPUT,
            format!(
                "must be an object (or a JSON string of one), not {}",
                json_type(other)
            ),
        )),
    }
}

/// `API_BODY` as the bytes to send: any JSON value, or JSON text in a string.
fn request_body(params: &Params, route: &Route) -> Result<Option<Vec<u8>>, Error> {
    let given = params.get(BODY_INPUT).filter(|v| crate::params::is_given(v));
    let Some(body) = given else { return Ok(None) };
    if !route.body {
        return Err(Error::invalid(
            BODY_INPUT,
            format!("route '{}' takes no body", route.name),
        ));
    }
    let bytes = match body {
        Value::String(text) => {
            if text.len() > route.body_max {
                return Err(too_big(route));
            }
            match serde_json::from_str::<Value>(text) {
                Ok(v) => v.to_string().into_bytes(),
                Err(_) => {
                    return Err(Error::invalid(
                        BODY_INPUT,
                        "must be JSON (an object, or JSON text)",
                    ));
                }
            }
        }
        other => other.to_string().into_bytes(),
    };
    if bytes.len() > route.body_max {
        return Err(too_big(route));
    }
    Ok(Some(bytes))
}

fn too_big(route: &Route) -> Error {
    Error::invalid(
        BODY_INPUT,
        format!(
            "is too large: route '{}' takes at most {} bytes",
            route.name, route.body_max
        ),
    )
}

/// One route call, checked: everything it sends is decided here, before any token exists.
#[derive(Debug)]
pub struct RouteCall {
    route: Route,
    path_and_query: String,
    body: Option<Vec<u8>>,
    api_key: ApiKey,
    org: Option<String>,
}

/// Reads `API_ROUTES` (every route: hosts allow-listed, and held to the AEM environment of
/// service credentials when they are configured), then the request's route and values.
pub fn from_params(
    params: &Params,
    check: &mut InputCheck,
    allow: &AllowList,
    creds: Option<&Credentials>,
) -> Option<RouteCall> {
    let table = match Table::from_params(params, allow) {
        Ok(Some(table)) => table,
        Ok(None) => {
            check.missing(ROUTES_INPUT);
            return None;
        }
        Err(e) => {
            check.invalid(e);
            return None;
        }
    };
    if let Some(client_id) = aem_environment::pinned_client_id(params, creds, check) {
        pin_to_environment(&table, &client_id, allow, check);
    }
    let name = check.required(ROUTE_INPUT, Kind::Id);
    if name.is_empty() {
        return None;
    }
    let names = table.names();
    let Some(route) = table
        .routes
        .into_iter()
        .find_map(|(n, r)| (n == name).then_some(r))
    else {
        check.invalid(Error::invalid(
            ROUTE_INPUT,
            format!("names no route of this deployment (it has: {names})"),
        ));
        return None;
    };
    let values = request_values(params).map_err(|e| check.invalid(e)).ok()?;
    if let Some(unknown) = values
        .keys()
        .find(|k| !route.params.contains_key(*k) && !route.query.contains_key(*k))
    {
        let mut takes: Vec<&str> = route.params.keys().map(String::as_str).collect();
        takes.extend(route.query.keys().map(String::as_str));
        check.invalid(Error::invalid(
            PARAMS_INPUT,
            format!(
                "'{}' is neither a placeholder nor a declared query parameter of route '{}' (it takes: {})",
                unknown.escape_debug(),
                route.name,
                if takes.is_empty() {
                    "none".to_string()
                } else {
                    takes.join(", ")
                }
            ),
        ));
        return None;
    }
    let path_and_query = route.path_and_query(&values).map_err(|e| check.invalid(e)).ok()?;
    let body = request_body(params, &route).map_err(|e| check.invalid(e)).ok()?;
    let (api_key, org) = match route.adobe_headers {
        true => {
            let (client_id, org) = adobe_headers(params, check, creds, &route)?;
            (ApiKey::Send(client_id), Some(org))
        }
        false => (ApiKey::Omit, None),
    };
    Some(RouteCall {
        route,
        path_and_query,
        body,
        api_key,
        org,
    })
}

/// `x-api-key` (the credential's client id) and `x-gw-ims-org-id` (`IMS_ORG_ID`, else the
/// credential's org), as Adobe's API gateway expects.
fn adobe_headers(
    params: &Params,
    check: &mut InputCheck,
    creds: Option<&Credentials>,
    route: &Route,
) -> Option<(String, String)> {
    let creds = creds?;
    let Some(client_id) = creds.client_id() else {
        check.invalid(bad_route(
            &route.name,
            "sends x-api-key (adobe_headers), but a developer token has no client id: set \
             \"adobe_headers\": false on routes a developer token calls",
        ));
        return None;
    };
    let org = match check.optional("IMS_ORG_ID", Kind::Id) {
        Some(org) => org.to_string(),
        None => match creds.org_id() {
            Some(org) => org.to_string(),
            None => {
                if !params.has("IMS_ORG_ID") {
                    check.missing("IMS_ORG_ID");
                }
                return None;
            }
        },
    };
    Some((client_id.to_string(), org))
}

/// With AEM service credentials configured, their token goes only to their own environment:
/// every other `*.adobeaemcloud.com` host runs someone else's code.
fn pin_to_environment(table: &Table, client_id: &str, allow: &AllowList, check: &mut InputCheck) {
    let environment = aem_environment::environment_of(client_id);
    for route in table.routes() {
        let host = route.base.host();
        let customer = host.ends_with(".adobeaemcloud.com") && host != "api.adobeaemcloud.com";
        if !customer || allow.lists(&route.base) {
            continue;
        }
        let why = match environment {
            Some((program, env)) if aem_environment::is_environment_host(host, program, env) => continue,
            Some((program, env)) => format!(
                "host '{host}' is not of the AEM environment the service credentials belong to \
                 (author-p{program}-e{env}… or publish-p{program}-e{env}…)"
            ),
            None => format!(
                "host '{host}' is an AEM host, and the service credentials' client id names no AEM \
                 environment, so their token may go to none"
            ),
        };
        check.invalid(bad_route(&route.name, why));
    }
}

/// Whether repeating a request of this method is harmless (RFC 9110 9.2.2): only those are
/// retried.
fn idempotent(method: Method) -> bool {
    method.is_idempotent()
}

impl RouteCall {
    /// Where the call goes.
    pub fn base(&self) -> &BaseUrl {
        &self.route.base
    }

    /// Calls the route: its answer passed on ([`super::reply`]).
    pub fn call(
        &self,
        http: &HttpClient,
        token: &AccessToken,
        creds: &Credentials,
        budget: &Budget,
    ) -> Result<Reply, Error> {
        super::reply(self.send(http, token, creds, budget)?, self.route.service)
    }

    /// Sends the request through the engine's one exchange ([`super::exchange`]).
    pub fn send(
        &self,
        http: &HttpClient,
        token: &AccessToken,
        creds: &Credentials,
        budget: &Budget,
    ) -> Result<Response, Error> {
        let route = &self.route;
        let mut headers: Vec<(Cow<'static, str>, String)> = route
            .headers
            .iter()
            .map(|(k, v)| (Cow::Owned(k.clone()), v.clone()))
            .collect();
        let content_type = headers
            .iter()
            .position(|(k, _)| k == "content-type")
            .map(|i| headers.remove(i).1);
        if let Some(org) = &self.org {
            headers.push(("x-gw-ims-org-id".into(), org.clone()));
        }
        let request = Request {
            service: route.service,
            method: route.method,
            url: route.base.join(&self.path_and_query),
            headers,
            body: self.body.clone().map(|b| {
                (
                    content_type.map_or(Cow::Borrowed("application/json"), Cow::Owned),
                    b,
                )
            }),
            retryable: route.retryable,
            max_body: None,
            what: &route.name,
        };
        super::exchange(http, budget, token, creds, request, &self.api_key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn table(v: Value) -> Result<Option<Table>, Error> {
        let m = match json!({ "API_ROUTES": v }) {
            Value::Object(m) => m,
            _ => unreachable!(),
        };
        Table::from_params(&Params::new(&m), &AllowList::adobe_only())
    }

    #[test]
    fn a_good_table_reads() {
        let t = table(json!({"activities": {
            "url": "https://mc.adobe.io/{tenant}/target/activities",
            "params": {"tenant": "[a-z0-9]+"},
            "query": {"limit": "[0-9]{1,3}"},
            "headers": {"Accept": "application/vnd.adobe.target.v3+json"}
        }}))
        .unwrap()
        .unwrap();
        let r = t.routes().next().unwrap();
        assert_eq!(
            (r.name(), r.method_name(), r.host().as_str()),
            ("activities", "GET", "mc.adobe.io")
        );
        let v = match json!({"tenant": "acme", "limit": 5}) {
            Value::Object(m) => m,
            _ => unreachable!(),
        };
        assert_eq!(r.path_and_query(&v).unwrap(), "/acme/target/activities?limit=5");
    }

    #[test]
    fn bad_tables_are_configuration_errors_naming_route_and_field() {
        for (spec, needle) in [
            (json!({"url": "https://evil.example/x"}), "not allowed"),
            (
                json!({"url": "https://ims-na1.adobelogin.com/ims/profile"}),
                "not one this input may name",
            ),
            (json!({"url": "http://mc.adobe.io/x"}), "https"),
            (json!({"url": "https://mc.adobe.io/a{b}"}), "whole path segments"),
            (json!({"url": "https://mc.adobe.io/{b}"}), "needs a regex"),
            (
                json!({"url": "https://mc.adobe.io/x", "params": {"y": "."}}),
                "no placeholder",
            ),
            (
                json!({"url": "https://mc.adobe.io/x", "headers": {"Authorization": "x"}}),
                "'authorization'",
            ),
            (
                json!({"url": "https://mc.adobe.io/x", "headers": {"X-Api-Key": "x"}}),
                "'x-api-key'",
            ),
            (
                json!({"url": "https://mc.adobe.io/x", "headers": {"transfer-encoding": "chunked"}}),
                "'transfer-encoding'",
            ),
            (
                json!({"url": "https://mc.adobe.io/x", "headers": {"x-a": "1\r\nx-b: 2"}}),
                "line breaks",
            ),
            (
                json!({"url": "https://mc.adobe.io/x", "method": "TRACE"}),
                "method",
            ),
            (
                json!({"url": "https://mc.adobe.io/x", "body": true}),
                "POST, PUT or PATCH",
            ),
            (
                json!({"url": "https://mc.adobe.io/x", "query": {"a": "("}}),
                "regex",
            ),
            (json!({"url": "https://mc.adobe.io/../x"}), "'..'"),
            (
                json!({"url": "https://mc.adobe.io/x", "bdy": true}),
                "unknown field 'bdy'",
            ),
            // A pattern that would close the anchoring group and admit anything.
            (
                json!({"url": "https://mc.adobe.io/x", "query": {"a": "a)|(?:.*"}}),
                "regex",
            ),
            // One header twice, in two cases.
            (
                json!({"url": "https://mc.adobe.io/x", "headers": {"Accept": "a", "accept": "b"}}),
                "twice",
            ),
            // A fixed query name a caller could send again.
            (
                json!({"url": "https://mc.adobe.io/x?limit=10", "query": {"limit": "[0-9]+"}}),
                "fixed in its url's query",
            ),
        ] {
            let e = table(json!({ "r1": spec })).unwrap_err();
            assert_eq!(e.status_code(), 500, "{spec}: {e}");
            let text = e.to_string();
            assert!(text.contains("API_ROUTES: route 'r1'"), "{text}");
            assert!(text.contains(needle), "{spec}: {text}");
        }
    }

    #[test]
    fn segments_refuse_escapes_whatever_the_regex() {
        for bad in [
            "",
            ".",
            "..",
            "a/b",
            "a\\b",
            "%2e%2e",
            "%2F",
            "%u002f",
            "50%",
            "a\0",
            "a\r\nx-injected: 1",
            "a\n",
        ] {
            assert!(check_segment("F", bad).is_err(), "{bad:?}");
        }
        for ok in ["acme", "a.b", "...", "a b", "ü"] {
            assert!(check_segment("F", ok).is_ok(), "{ok:?}");
        }
        assert_eq!(
            utf8_percent_encode("a b?#;ü", SEGMENT).to_string(),
            "a%20b%3F%23%3B%C3%BC"
        );
    }

    #[test]
    fn patterns_are_anchored_even_against_their_own_flags() {
        let p = Pattern::new("(?m)abc|x").unwrap();
        assert!(p.regex.is_match("abc") && p.regex.is_match("x"));
        for v in ["abcd", "zabc", "abc\n", "x\nabc", "xx"] {
            assert!(!p.regex.is_match(v), "{v:?}");
        }
    }
}
