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
//! Short texts (log lines, header values) are searched pattern by pattern; long ones in one pass
//! of a multi-pattern automaton (Aho-Corasick, leftmost-longest, the same result), built once per
//! distinct secret set and reused by the next activations of a warm process. Either way the cost
//! is bounded by the text and the set, and caller-chosen keys never add patterns.
//!
//! The set lives in a thread-local scope ([`Scope`]): an activation runs on one thread, and the
//! logger must reach the set without it being passed through every call.

use std::cell::RefCell;
use std::sync::Arc;

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};
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

/// Texts up to this length are searched pattern by pattern; longer ones with the automaton.
/// Building an Aho-Corasick automaton costs more than searching a log line or a header for
/// each pattern directly (a cold activation scrubs a few dozen such short texts while its set
/// grows), while a long text (an upstream body in a result) is searched in one linear pass.
const DIRECT_MAX: usize = 2048;

thread_local! {
    static CURRENT: RefCell<Option<SecretSet>> = const { RefCell::new(None) };
    static MATCHER: RefCell<Option<Matcher>> = const { RefCell::new(None) };
}

/// The secrets of an activation and, computed once when each is registered, the forms to
/// search for.
#[derive(Default)]
struct SecretSet {
    /// Where each value's raw form is in `patterns` (its first form): the values themselves,
    /// without a second copy.
    raw: Vec<usize>,
    patterns: Vec<String>,
}

impl SecretSet {
    fn insert(&mut self, value: &str) {
        if !self.raw.iter().any(|&i| self.patterns[i] == value) {
            self.raw.push(self.patterns.len());
            self.patterns.extend(encodings(value));
        }
    }
}

/// The secret set of the activation running on this thread, from [`Scope::begin`] until the
/// scope is dropped. Outside a scope, [`register`] does nothing and nothing is scrubbed.
#[must_use = "the scope ends when this is dropped"]
pub struct Scope(());

impl Scope {
    /// Starts an activation's secret set (empty).
    pub fn begin() -> Scope {
        CURRENT.with(|c| *c.borrow_mut() = Some(SecretSet::default()));
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
        if let Some(set) = c.borrow_mut().as_mut() {
            set.insert(value);
        }
    });
}

/// How many values the current activation has registered (tests and diagnostics).
pub fn registered() -> usize {
    CURRENT.with(|c| c.borrow().as_ref().map_or(0, |s| s.raw.len()))
}

/// `text` with every registered secret, in every encoding, replaced by [`MASK`].
pub fn scrub_text(text: &str) -> String {
    with_finder(text.len(), |finder| finder.replace(text))
        .flatten()
        .unwrap_or_else(|| text.to_string())
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
    const PARTS: [&str; 4] = ["/body", "/error/body", "/headers", "/error/headers"];
    let text_len: usize = PARTS.iter().filter_map(|p| result.pointer(p)).map(text_len).sum();
    with_finder(text_len, |finder| {
        let mut changed = false;
        for pointer in PARTS {
            if let Some(part) = result.pointer_mut(pointer) {
                changed |= scrub_value(part, finder);
            }
        }
        changed
    })
    .unwrap_or(false)
}

/// The bytes of text (strings and keys) in `v`, which decides how it is searched.
fn text_len(v: &Value) -> usize {
    match v {
        Value::String(s) => s.len(),
        Value::Array(items) => items.iter().map(text_len).sum(),
        Value::Object(map) => map.iter().map(|(k, v)| k.len() + text_len(v)).sum(),
        _ => 0,
    }
}

fn scrub_value(v: &mut Value, finder: &Finder) -> bool {
    match v {
        Value::String(s) => match finder.replace(s) {
            Some(clean) => {
                *s = clean;
                true
            }
            None => false,
        },
        Value::Array(items) => items.iter_mut().fold(false, |c, v| scrub_value(v, finder) | c),
        Value::Object(map) => {
            let mut changed = false;
            if map.keys().any(|k| finder.replace(k).is_some()) {
                let old = std::mem::take(map);
                for (k, v) in old {
                    map.insert(finder.replace(&k).unwrap_or(k), v);
                }
                changed = true;
            }
            map.values_mut().fold(changed, |c, v| scrub_value(v, finder) | c)
        }
        _ => false,
    }
}

/// How a text is searched for the current set's patterns.
enum Finder<'a> {
    /// Pattern by pattern, for short texts: nothing to build.
    Direct(&'a [String]),
    /// One pass of the set's automaton, for long texts.
    Automaton(Matcher),
}

impl Finder<'_> {
    /// `text` with every match masked, or `None` when nothing matched.
    fn replace(&self, text: &str) -> Option<String> {
        match self {
            Finder::Direct(patterns) => replace_direct(text, patterns),
            Finder::Automaton(m) => m
                .automaton
                .is_match(text)
                .then(|| m.automaton.replace_all(text, &m.masks)),
        }
    }
}

/// Runs `f` with the finder fit for `text_len` bytes of text; `None` when there is no
/// activation or its set is empty (nothing to scrub).
fn with_finder<R>(text_len: usize, f: impl FnOnce(&Finder) -> R) -> Option<R> {
    CURRENT.with(|current| {
        let current = current.borrow();
        let set = current.as_ref().filter(|s| !s.patterns.is_empty())?;
        if text_len <= DIRECT_MAX {
            return Some(f(&Finder::Direct(&set.patterns)));
        }
        let m = matcher(set)?;
        Some(f(&Finder::Automaton(m)))
    })
}

/// Leftmost-longest replacement, the same result as the automaton's: of the matches that start
/// first, the longest is masked, and the search goes on after it.
fn replace_direct(text: &str, patterns: &[String]) -> Option<String> {
    let mut hits: Vec<(usize, usize)> = Vec::new();
    for pattern in patterns.iter().filter(|p| p.len() <= text.len()) {
        let mut from = 0;
        while let Some(i) = text.get(from..).and_then(|rest| rest.find(pattern.as_str())) {
            let start = from + i;
            hits.push((start, start + pattern.len()));
            // Overlapping occurrences count: the next search starts one character on.
            from = start + text[start..].chars().next().map_or(1, char::len_utf8);
        }
    }
    if hits.is_empty() {
        return None;
    }
    hits.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
    let mut out = String::with_capacity(text.len());
    let mut cursor = 0;
    for (start, end) in hits {
        if start >= cursor {
            out.push_str(&text[cursor..start]);
            out.push_str(MASK);
            cursor = end;
        }
    }
    out.push_str(&text[cursor..]);
    Some(out)
}

/// The automaton of a secret set: the set it was built from, and the automaton.
#[derive(Clone)]
struct Matcher {
    patterns: Arc<Vec<String>>,
    automaton: Arc<AhoCorasick>,
    masks: Arc<Vec<&'static str>>,
}

/// The automaton for `set`, built when the set changed since it was last built on this thread
/// (a warm process's activations share one set, so they share one automaton). A contiguous NFA:
/// linear in the text like a DFA, and built in a fraction of the time and memory for the long
/// patterns key material makes.
fn matcher(set: &SecretSet) -> Option<Matcher> {
    MATCHER.with(|cache| {
        let mut cache = cache.borrow_mut();
        if let Some(m) = cache.as_ref().filter(|m| *m.patterns == set.patterns) {
            return Some(m.clone());
        }
        let automaton = AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .kind(Some(AhoCorasickKind::ContiguousNFA))
            .build(&set.patterns)
            .ok()?;
        let m = Matcher {
            patterns: Arc::new(set.patterns.clone()),
            automaton: Arc::new(automaton),
            masks: Arc::new(vec![MASK; set.patterns.len()]),
        };
        *cache = Some(m.clone());
        Some(m)
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
        forms.push(crate::hex::upper(secret.as_bytes()));
        forms.push(crate::hex::lower(secret.as_bytes()));
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

    /// Short texts are searched pattern by pattern, long ones with the automaton: both must
    /// mask exactly the same spans, overlapping and nested secrets included.
    #[test]
    fn direct_search_and_automaton_mask_the_same_spans() {
        let patterns: Vec<String> = [
            "abcabcab",
            "cabcabca",
            "bcab",
            "xyzxyzxy",
            "abcabcabcabc",
            "é-secret-é",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let set = SecretSet {
            raw: (0..patterns.len()).collect(),
            patterns: patterns.clone(),
        };
        let automaton = Finder::Automaton(matcher(&set).unwrap());
        let direct = Finder::Direct(&patterns);
        // A fixed pseudo-random walk over an alphabet that makes the patterns overlap often.
        let alphabet: Vec<char> = "abcxyzé-secrt ".chars().collect();
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..2000 {
            let len = (state % 60) as usize;
            let text: String = (0..len)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    alphabet[(state % alphabet.len() as u64) as usize]
                })
                .collect();
            assert_eq!(direct.replace(&text), automaton.replace(&text), "{text:?}");
        }
        assert_eq!(direct.replace("xabcabcabcabcx").as_deref(), Some("x****x"));
        assert_eq!(direct.replace("nothing here"), None);
    }

    #[test]
    fn long_texts_and_results_are_scrubbed_by_the_automaton_too() {
        let _scope = Scope::begin();
        register(SECRET);
        let long = format!("{}{SECRET}{}", "x".repeat(DIRECT_MAX), "y".repeat(10));
        let out = scrub_text(&long);
        assert!(out.ends_with("****yyyyyyyyyy") && !out.contains(SECRET));
        let mut r = json!({"statusCode": 200, "body": {"big": long, "k": [SECRET]}});
        assert!(scrub_result(&mut r));
        assert!(!r.to_string().contains(SECRET));
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
