//! One secret set per activation, scrubbed from everything that leaves the action.
//!
//! Whatever the action knows to be secret during an activation (configured secrets and key
//! material, the access token it fetched or took from a cache, the signed JWT assertion, a
//! developer token, the caller's `authorization`, `cookie` and `x-require-whisk-auth` headers) is
//! [`register`]ed while the activation runs. Every log line ([`crate::logging`]) and the result
//! ([`scrub_result`]) are then searched for each of those values in the encodings an upstream or a
//! log could produce: raw, JSON-escaped, percent/form-encoded, hex, and base64/base64url at each
//! of the three byte alignments (so a secret inside a longer base64 text is found too).
//!
//! One pass with a multi-pattern matcher (Aho-Corasick, leftmost-longest): the cost is linear in
//! the text, whatever a caller sends, since caller-chosen keys never add patterns. The matcher is
//! built once per distinct secret set and reused by the next activations of a warm process.
//!
//! The set lives in a thread-local scope ([`Scope`]): an activation runs on one thread, and the
//! logger must reach the set without it being passed through every call.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::sync::Arc;

use aho_corasick::{AhoCorasick, MatchKind};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::Value;

/// What a secret is replaced with.
pub const MASK: &str = "****";

/// Values shorter than this are not searched for: a short value would match innocent text, and
/// no credential, token or key is this short.
pub const MIN_SECRET_LEN: usize = 8;

/// Values longer than this are not registered: no input that long is accepted (private keys,
/// the longest, are capped at 64 KiB), so none is ever sent anywhere to be echoed.
pub const MAX_SECRET_LEN: usize = 64 * 1024;

/// Above this length only the raw and JSON-escaped forms are searched for: long values are key
/// material, which is never sent to an upstream (only signatures are), so only our own output
/// could quote it, and that never encodes it.
const MAX_ENCODED_LEN: usize = 1024;

thread_local! {
    static CURRENT: RefCell<Option<BTreeSet<String>>> = const { RefCell::new(None) };
    static MATCHER: RefCell<Option<Matcher>> = const { RefCell::new(None) };
}

/// The secret set of the activation running on this thread, from [`Scope::begin`] until the
/// scope is dropped. Outside a scope, [`register`] does nothing and nothing is scrubbed.
#[must_use = "the scope ends when this is dropped"]
pub struct Scope(());

impl Scope {
    /// Starts an activation's secret set (empty).
    pub fn begin() -> Scope {
        CURRENT.with(|c| *c.borrow_mut() = Some(BTreeSet::new()));
        Scope(())
    }
}

impl Drop for Scope {
    fn drop(&mut self) {
        CURRENT.with(|c| *c.borrow_mut() = None);
    }
}

/// Adds a value to the current activation's secret set (no-op outside an activation, or for
/// values shorter than [`MIN_SECRET_LEN`]).
pub fn register(value: &str) {
    let value = value.trim();
    if !(MIN_SECRET_LEN..=MAX_SECRET_LEN).contains(&value.len()) {
        return;
    }
    CURRENT.with(|c| {
        if let Some(set) = c.borrow_mut().as_mut()
            && !set.contains(value)
        {
            set.insert(value.to_string());
        }
    });
}

/// How many values the current activation has registered (tests and diagnostics).
pub fn registered() -> usize {
    CURRENT.with(|c| c.borrow().as_ref().map_or(0, BTreeSet::len))
}

/// `text` with every registered secret, in every encoding, replaced by [`MASK`].
pub fn scrub_text(text: &str) -> String {
    match matcher() {
        Some(m) if m.automaton.is_match(text) => m.automaton.replace_all(text, &m.masks),
        _ => text.to_string(),
    }
}

/// Upstream text fit to quote: secrets scrubbed *first* (cutting first could leave a secret's
/// prefix that no pattern matches), control characters dropped, at most `max` characters.
pub fn excerpt(text: &str, max: usize) -> String {
    let clean: String = scrub_text(text)
        .chars()
        .filter(|c| !c.is_control())
        .take(max)
        .collect();
    clean.trim().to_string()
}

/// Scrubs the parts of a result that can carry upstream text: `body`, `error.body` (every string
/// and every object key, at any depth) and every `headers` / `error.headers` value. The envelope
/// itself (`statusCode`, `headers`, `body`, `error`) is ours and keeps its shape. Returns whether
/// anything was replaced.
pub fn scrub_result(result: &mut Value) -> bool {
    let Some(m) = matcher() else { return false };
    let mut changed = false;
    for pointer in ["/body", "/error/body", "/headers", "/error/headers"] {
        if let Some(part) = result.pointer_mut(pointer) {
            changed |= scrub_value(part, &m);
        }
    }
    changed
}

fn scrub_value(v: &mut Value, m: &Matcher) -> bool {
    match v {
        Value::String(s) if m.automaton.is_match(s.as_str()) => {
            *s = m.automaton.replace_all(s, &m.masks);
            true
        }
        Value::Array(items) => items.iter_mut().fold(false, |c, v| scrub_value(v, m) | c),
        Value::Object(map) => {
            let mut changed = false;
            if map.keys().any(|k| m.automaton.is_match(k.as_str())) {
                let old = std::mem::take(map);
                for (k, v) in old {
                    map.insert(m.automaton.replace_all(&k, &m.masks), v);
                }
                changed = true;
            }
            map.values_mut().fold(changed, |c, v| scrub_value(v, m) | c)
        }
        _ => false,
    }
}

/// The matcher of a secret set: the set it was built from, and the automaton.
#[derive(Clone)]
struct Matcher {
    secrets: BTreeSet<String>,
    automaton: Arc<AhoCorasick>,
    masks: Arc<Vec<&'static str>>,
}

/// The matcher for the current set, built when the set changed since the last activation on
/// this thread; `None` when the set is empty or there is no activation.
fn matcher() -> Option<Matcher> {
    CURRENT.with(|current| {
        let current = current.borrow();
        let set = current.as_ref().filter(|s| !s.is_empty())?;
        MATCHER.with(|cache| {
            let mut cache = cache.borrow_mut();
            if let Some(m) = cache.as_ref().filter(|m| &m.secrets == set) {
                return Some(m.clone());
            }
            let patterns: Vec<String> = set.iter().flat_map(|s| encodings(s)).collect();
            let automaton = AhoCorasick::builder()
                .match_kind(MatchKind::LeftmostLongest)
                .build(&patterns)
                .ok()?;
            let m = Matcher {
                secrets: set.clone(),
                automaton: Arc::new(automaton),
                masks: Arc::new(vec![MASK; patterns.len()]),
            };
            *cache = Some(m.clone());
            Some(m)
        })
    })
}

/// The forms in which `secret` could appear in a response or a log line.
pub fn encodings(secret: &str) -> Vec<String> {
    let mut forms: Vec<String> = vec![secret.to_string()];
    if let Ok(json) = serde_json::to_string(secret) {
        forms.push(json[1..json.len() - 1].to_string());
    }
    if secret.len() <= MAX_ENCODED_LEN {
        // RFC 3986's percent-encoding in both cases of hex, JavaScript's encodeURIComponent, and
        // a form body (what IMS requests are: '+' for a space).
        let rfc3986 = utf8_percent_encode(secret, UNRESERVED).to_string();
        forms.push(lower_hex_escapes(&rfc3986));
        forms.push(rfc3986);
        forms.push(utf8_percent_encode(secret, URI_COMPONENT).to_string());
        forms.push(form_urlencoded::byte_serialize(secret.as_bytes()).collect());
        let hex: String = secret.bytes().map(|b| format!("{b:02x}")).collect();
        forms.push(hex.to_ascii_uppercase());
        forms.push(hex);
        for engine in [&STANDARD_NO_PAD, &URL_SAFE_NO_PAD] {
            for offset in 0..3usize {
                forms.push(base64_at(engine, secret.as_bytes(), offset));
            }
        }
    }
    let min = MIN_SECRET_LEN.min(secret.len());
    let mut out: Vec<String> = Vec::with_capacity(forms.len());
    for form in forms {
        if form.len() >= min && !out.contains(&form) {
            out.push(form);
        }
    }
    out
}

/// The characters of base64(`offset` unknown bytes + `bytes` + unknown bytes) that depend on
/// `bytes` alone: what any base64 text containing `bytes` at that alignment must contain.
fn base64_at(engine: &base64::engine::GeneralPurpose, bytes: &[u8], offset: usize) -> String {
    let mut padded = vec![0u8; offset];
    padded.extend_from_slice(bytes);
    let encoded = engine.encode(&padded);
    let first = (offset * 8).div_ceil(6);
    let last = padded.len() * 8 / 6;
    encoded.get(first..last).unwrap_or("").to_string()
}

/// RFC 3986's unreserved characters stay; everything else is escaped.
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');
/// What JavaScript's `encodeURIComponent` leaves alone.
const URI_COMPONENT: &AsciiSet = &UNRESERVED
    .remove(b'!')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')')
    .remove(b'*');

/// `%2F` → `%2f`: some encoders write lower-case hex.
fn lower_hex_escapes(encoded: &str) -> String {
    let mut out = String::with_capacity(encoded.len());
    let mut escape = 0;
    for c in encoded.chars() {
        if c == '%' {
            escape = 2;
            out.push(c);
        } else if escape > 0 {
            escape -= 1;
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE};
    use serde_json::json;

    const SECRET: &str = "p8e-Ab+c/d=e f\"g";

    #[test]
    fn every_encoding_of_a_registered_secret_is_masked() {
        let _scope = Scope::begin();
        register(SECRET);
        let prefixed = |p: &str| format!("{p}{SECRET}");
        let texts = [
            SECRET.to_string(),
            serde_json::to_string(SECRET).unwrap(),
            "client_secret=p8e-Ab%2Bc%2Fd%3De%20f%22g&x=1".to_string(),
            "client_secret=p8e-Ab%2bc%2fd%3de%20f%22g".to_string(),
            "p8e-Ab%2Bc%2Fd%3De+f%22g".to_string(),
            SECRET.bytes().map(|b| format!("{b:02x}")).collect(),
            STANDARD.encode(SECRET),
            URL_SAFE.encode(SECRET),
            // Inside a longer base64 text, at each alignment.
            STANDARD.encode(prefixed("x")),
            STANDARD.encode(prefixed("xy")),
            URL_SAFE_NO_PAD.encode(format!("{{\"client_secret\":\"{SECRET}\"}}")),
        ];
        for text in texts {
            let out = scrub_text(&format!("before {text} after"));
            assert!(out.contains(MASK), "{text} -> {out}");
            assert!(!out.contains(SECRET), "{out}");
        }
    }

    #[test]
    fn nothing_is_scrubbed_outside_an_activation_or_for_short_values() {
        register(SECRET);
        assert_eq!(scrub_text(SECRET), SECRET);
        let _scope = Scope::begin();
        register("short");
        assert_eq!(registered(), 0);
        assert_eq!(scrub_text("short and sweet"), "short and sweet");
    }

    #[test]
    fn results_keep_their_envelope_and_lose_secrets_in_values_keys_and_headers() {
        let _scope = Scope::begin();
        register("tok-0123456789");
        let mut r = json!({
            "statusCode": 200,
            "headers": {"content-type": "application/json", "retry-after": "tok-0123456789"},
            "body": {"echo": "Bearer tok-0123456789", "tok-0123456789": [1, "x tok-0123456789"]}
        });
        assert!(scrub_result(&mut r));
        assert_eq!(
            r,
            json!({
                "statusCode": 200,
                "headers": {"content-type": "application/json", "retry-after": "****"},
                "body": {"echo": "Bearer ****", "****": [1, "x ****"]}
            })
        );
        let mut e = json!({"error": {"statusCode": 502, "body": {"error": "IMS said tok-0123456789"}}});
        assert!(scrub_result(&mut e));
        assert_eq!(e["error"]["body"]["error"], "IMS said ****");
        let clean = json!({"statusCode": 200, "body": {"a": "b"}});
        let mut same = clean.clone();
        assert!(!scrub_result(&mut same));
        assert_eq!(same, clean);
    }

    #[test]
    fn excerpts_scrub_before_they_cut() {
        let _scope = Scope::begin();
        register("p8e-abcdefghijklmnopqrstuvwxyz");
        let text = format!("{}p8e-abcdefghijklmnopqrstuvwxyz", "x".repeat(290));
        let cut = excerpt(&text, 300);
        assert!(!cut.contains("p8e-abcdefg"), "{cut}");
        assert_eq!(excerpt("a\r\nb ", 10), "ab");
    }

    #[test]
    fn the_matcher_follows_the_set() {
        let _scope = Scope::begin();
        register("first-secret-1");
        assert_eq!(scrub_text("first-secret-1"), MASK);
        register("second-secret-2");
        assert_eq!(scrub_text("first-secret-1 second-secret-2"), "**** ****");
        drop(_scope);
        let _scope = Scope::begin();
        assert_eq!(scrub_text("first-secret-1"), "first-secret-1");
    }
}
