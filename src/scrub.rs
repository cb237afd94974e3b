//! One secret set per activation, scrubbed from everything that leaves the action.
//!
//! Whatever the action knows to be secret during an activation (configured secrets and key
//! material, the access token it fetched or took from a cache, the signed JWT assertion, a
//! developer token, the caller's `authorization`, `cookie` and `x-require-whisk-auth` headers) is
//! [`register`]ed while the activation runs. Every log line ([`crate::logging`]) and the result
//! ([`scrub_result`]) are then searched for each of those values, of any length, in every form
//! an upstream or a log could give it:
//! - raw and JSON-escaped;
//! - percent-encoded the ways encoders do it (RFC 3986's, `encodeURIComponent`'s, a path's, a
//!   form body's, all but letters and digits, every byte), in upper- and lower-case hex, and
//!   each of those percent-encoded a second time;
//! - hex, upper and lower case;
//! - base64 and base64url at each of the three byte alignments (so a secret inside a longer
//!   base64 text is found too), with or without line breaks inside (MIME's 76 columns, PEM's 64,
//!   `\n` or `\r\n`, real or JSON-escaped): line breaks are ignored when texts are compared;
//! - cut short: any run of text equal to the start of a form, at least [`prefix_rule`] long, is
//!   masked as far as it goes on matching (an upstream that quotes only the first 90 % of a
//!   token gives it away no more than one that quotes all of it).
//!
//! The search looks for the first [`KEY_LEN`] bytes of every form (a log line position by
//! position, a long text in one pass of an Aho-Corasick automaton, built once per state of the
//! set); each hit is then compared with the forms that start that way, and a masked run is
//! skipped, so the cost stays linear in the text (times the few forms that share a start).
//! Registering a value computes only the start of each form; the rest is computed when a text
//! holds that start, so a value costs the same to register whatever its length.
//!
//! The set belongs to the activation, not to a thread: [`Scope::begin`] makes a new one and
//! installs it on the current thread (the logger reaches it there without it being passed
//! through every call), [`Secrets::current`] is a handle to it that a thread the activation
//! starts installs in turn ([`Secrets::install`]), and ending a scope puts back whatever set
//! the thread had before. Activations running side by side on worker threads each have their
//! own set.

use std::cell::{OnceCell, RefCell};
use std::marker::PhantomData;
use std::sync::{Arc, Mutex, MutexGuard};

use aho_corasick::{AhoCorasick, AhoCorasickKind, Input, MatchKind};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use serde_json::Value;
use zeroize::Zeroize;

/// What a secret is replaced with.
pub const MASK: &str = "****";

/// Values shorter than this are not searched for: a short value would match innocent text, and
/// no credential, token or key is this short.
pub const MIN_SECRET_LEN: usize = 8;

/// Values longer than this are not registered: no input that long is accepted (private keys,
/// the longest, are capped at 64 KiB), so none is ever sent anywhere to be echoed.
pub const MAX_SECRET_LEN: usize = 64 * 1024;

/// How many bytes of each form the automaton looks for: every form is at least this long, and
/// every hit is then checked against the whole form.
const KEY_LEN: usize = MIN_SECRET_LEN;

/// A run that is the start of a form is masked once it is this long: at least half the form
/// (and [`MIN_SECRET_LEN`]), at most 16 bytes, never more than the form. What gets through
/// unmasked is less than half of a short secret and less than 16 bytes of a long one, whose
/// rest no one can guess.
pub fn prefix_rule(form_len: usize) -> usize {
    form_len.div_ceil(2).clamp(MIN_SECRET_LEN, 16).min(form_len)
}

thread_local! {
    static CURRENT: RefCell<Option<Secrets>> = const { RefCell::new(None) };
}

/// A handle to an activation's secret set; clones share the set. Installed on a thread with
/// [`Secrets::install`], it is the set [`register`] adds to and every log line written on that
/// thread is scrubbed of.
#[derive(Clone, Default)]
pub struct Secrets(Arc<Mutex<SecretSet>>);

impl Secrets {
    /// The set installed on this thread, to hand to a thread the activation starts.
    pub fn current() -> Option<Secrets> {
        CURRENT.with(|c| c.borrow().clone())
    }

    /// Makes this the set of the current thread until the returned scope is dropped.
    pub fn install(&self) -> Scope {
        let previous = CURRENT.with(|c| c.borrow_mut().replace(self.clone()));
        Scope {
            previous,
            _same_thread: PhantomData,
        }
    }

    /// The set, even if a thread panicked while holding it: every change to it is a complete
    /// push, so what it holds is always usable.
    fn lock(&self) -> MutexGuard<'_, SecretSet> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A secret set installed on this thread, from [`Scope::begin`] (or [`Secrets::install`])
/// until the scope is dropped, which puts back the set the thread had before. Outside any
/// scope, [`register`] does nothing and nothing is scrubbed.
#[must_use = "the scope ends when this is dropped"]
pub struct Scope {
    previous: Option<Secrets>,
    /// Dropped where it was made: it restores that thread's set.
    _same_thread: PhantomData<*const ()>,
}

impl Scope {
    /// Starts an activation's secret set (empty) on this thread.
    pub fn begin() -> Scope {
        Secrets::default().install()
    }
}

impl Drop for Scope {
    fn drop(&mut self) {
        let previous = self.previous.take();
        CURRENT.with(|c| *c.borrow_mut() = previous);
    }
}

/// The secrets of an activation and, computed once when each is registered, the starts of
/// their forms; a whole form is computed only when a text holds its start.
#[derive(Default)]
struct SecretSet {
    /// The values registered, as given (trimmed).
    values: Vec<String>,
    forms: Vec<Form>,
    /// The distinct first [`KEY_LEN`] bytes of the forms, and for each the forms that start so.
    keys: Vec<[u8; KEY_LEN]>,
    forms_by_key: Vec<Vec<usize>>,
    /// `(key as a number, its index in keys)`, sorted: the short texts' search.
    key_index: Vec<(u64, usize)>,
    /// Whether some key starts with this byte.
    key_starts: Vec<bool>,
    /// The automaton over `keys` (long texts), built when needed, dropped when a key is added.
    automaton: Option<AhoCorasick>,
}

/// One form of one value: which, and its start (folded), computed when the value is registered.
/// The rest is computed when a text holds the start, which is rare: registering a value costs
/// the same whatever its length, and a long value's many forms take no memory until then.
struct Form {
    value: usize,
    kind: usize,
    /// The first [`HEAD_LEN`] bytes of the folded form, or all of it if `whole`.
    head: Vec<u8>,
    whole: bool,
    /// The whole folded form, once needed.
    full: OnceCell<Vec<u8>>,
}

/// How much of each form is computed when a value is registered: more than any prefix rule
/// asks for (16), so that a start that matches less than this is decided on the head alone.
const HEAD_LEN: usize = 32;

impl SecretSet {
    fn insert(&mut self, value: &str) {
        if !folds_to_at_least(value, MIN_SECRET_LEN) || self.values.iter().any(|v| v == value) {
            return;
        }
        let v = self.values.len();
        self.values.push(value.to_string());
        for kind in 0..KINDS {
            let Some((head, whole)) = head_of(kind, value) else {
                continue;
            };
            // This value's forms are the last ones added.
            let repeated = self
                .forms
                .iter()
                .rev()
                .take_while(|f| f.value == v)
                .any(|f| f.whole && whole && f.head == head);
            if (whole && head.len() < MIN_SECRET_LEN) || repeated {
                continue;
            }
            self.add_form(Form {
                value: v,
                kind,
                head,
                whole,
                full: OnceCell::new(),
            });
        }
    }

    fn add_form(&mut self, form: Form) {
        let i = self.forms.len();
        let Some(key) = form
            .head
            .get(..KEY_LEN)
            .and_then(|k| <[u8; KEY_LEN]>::try_from(k).ok())
        else {
            return;
        };
        self.forms.push(form);
        let number = u64::from_le_bytes(key);
        match self.key_index.binary_search_by_key(&number, |e| e.0) {
            Ok(at) => {
                if let Some(forms) = self
                    .key_index
                    .get(at)
                    .and_then(|e| self.forms_by_key.get_mut(e.1))
                {
                    forms.push(i);
                }
            }
            Err(at) => {
                self.key_index.insert(at, (number, self.keys.len()));
                self.keys.push(key);
                self.forms_by_key.push(vec![i]);
                self.key_starts.resize(256, false);
                if let Some(start) = self.key_starts.get_mut(usize::from(key[0])) {
                    *start = true;
                }
                self.automaton = None;
            }
        }
    }

    /// How many bytes of `rest` are the start of `form`, if that is enough to mask.
    fn matched(&self, form: &Form, rest: &[u8]) -> usize {
        let mut same = common_prefix(rest, &form.head);
        let len = if form.whole {
            form.head.len()
        } else {
            if same == form.head.len() {
                let full = form.full.get_or_init(|| {
                    let value = self.values.get(form.value).map_or("", String::as_str);
                    fold_owned(encoding(form.kind, value).unwrap_or_default()).into_bytes()
                });
                same = common_prefix(rest, full);
            }
            // Longer than the head, so the rule's upper bound applies.
            usize::MAX
        };
        if same >= prefix_rule(len) { same } else { 0 }
    }

    /// Masks every form in `text`; `None` when nothing matched (or there is nothing to find).
    fn replace(&mut self, text: &str) -> Option<String> {
        if self.forms.is_empty() || text.len() < MIN_SECRET_LEN {
            return None;
        }
        let (folded, shifts) = fold_with_shifts(text);
        let spans = if folded.len() <= DIRECT_MAX {
            self.spans(&folded, |at| self.direct_hit(&folded, at))
        } else {
            if self.automaton.is_none() {
                self.automaton = build_automaton(&self.keys);
            }
            match self.automaton.as_ref() {
                Some(automaton) => self.spans(&folded, |at| {
                    automaton
                        .find(Input::new(&*folded).range(at..))
                        .map(|m| (m.start(), m.pattern().as_usize()))
                }),
                // An automaton that could not be built is no licence to send the text out
                // unmasked: the direct search finds the same spans, only slower.
                None => self.spans(&folded, |at| self.direct_hit(&folded, at)),
            }
        };
        if spans.is_empty() {
            return None;
        }
        let mut out = String::with_capacity(text.len());
        let mut cursor = 0;
        let mut shift = Shift::new(&shifts);
        for (start, end) in spans {
            let start = shift.original(start);
            let mut end = shift.original(end - 1) + 1;
            // A match that ends inside a character masks all of it.
            while !text.is_char_boundary(end) {
                end += 1;
            }
            out.push_str(text.get(cursor..start).unwrap_or(""));
            out.push_str(MASK);
            cursor = end;
        }
        out.push_str(text.get(cursor..).unwrap_or(""));
        Some(out)
    }

    /// The first key in `hay` at or after `at` (where, which), looking each position up: for
    /// short texts, where building an automaton would cost more than the search.
    fn direct_hit(&self, hay: &[u8], at: usize) -> Option<(usize, usize)> {
        let last = hay.len().checked_sub(KEY_LEN)?;
        (at..=last).find_map(|i| {
            let first = *hay.get(i)?;
            if !self.key_starts.get(usize::from(first)).copied().unwrap_or(false) {
                return None;
            }
            let window = <[u8; KEY_LEN]>::try_from(hay.get(i..i + KEY_LEN)?).ok()?;
            let found = self
                .key_index
                .binary_search_by_key(&u64::from_le_bytes(window), |e| e.0)
                .ok()?;
            self.key_index.get(found).map(|e| (i, e.1))
        })
    }

    /// The runs of `hay` to mask, in order and apart: at each hit of a key (`next_hit(at)`, the
    /// first at or after `at`), the longest start of a form with that key that the text goes on
    /// matching, if it is long enough ([`prefix_rule`]). The search goes on after a masked run,
    /// or one byte on from a hit that was not: each byte is looked at a bounded number of times,
    /// and compared with at most the forms that share its key.
    fn spans(
        &self,
        hay: &[u8],
        mut next_hit: impl FnMut(usize) -> Option<(usize, usize)>,
    ) -> Vec<(usize, usize)> {
        let mut spans = Vec::new();
        let mut at = 0;
        while at < hay.len() {
            let Some((start, key)) = next_hit(at) else {
                break;
            };
            let rest = hay.get(start..).unwrap_or(&[]);
            let longest = self
                .forms_by_key
                .get(key)
                .into_iter()
                .flatten()
                .filter_map(|&i| self.forms.get(i))
                .map(|form| self.matched(form, rest))
                .max()
                .unwrap_or(0);
            if longest > 0 {
                spans.push((start, start + longest));
                at = start + longest;
            } else {
                at = start + 1;
            }
        }
        spans
    }
}

impl Drop for SecretSet {
    fn drop(&mut self) {
        self.values.zeroize();
        for form in &mut self.forms {
            form.head.zeroize();
            if let Some(mut full) = form.full.take() {
                full.zeroize();
            }
        }
        self.keys.zeroize();
        for entry in &mut self.key_index {
            entry.0.zeroize();
        }
    }
}

/// Texts up to this length are searched by looking each position up among the keys; longer
/// ones with an automaton, built once per state of the set: building it costs more than
/// searching a log line or a header that way (a cold activation scrubs a few dozen such short
/// texts while its set grows), while a long text (an upstream body) is searched in one pass.
const DIRECT_MAX: usize = 2048;

/// The automaton over `keys`. All keys have the same length, so leftmost-first finds the
/// earliest hit. A contiguous NFA: linear in the text like a DFA, and built in a fraction of
/// the time.
fn build_automaton(keys: &[[u8; KEY_LEN]]) -> Option<AhoCorasick> {
    AhoCorasick::builder()
        .match_kind(MatchKind::LeftmostFirst)
        .kind(Some(AhoCorasickKind::ContiguousNFA))
        .build(keys)
        .ok()
}

fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// Whether `bytes` starts with a line break, real or JSON-escaped, and how long it is.
fn line_break(bytes: &[u8]) -> usize {
    match bytes {
        [b'\r' | b'\n', ..] => 1,
        [b'\\', b'r' | b'n', ..] => 2,
        _ => 0,
    }
}

/// `text` without its line breaks (`\r`, `\n`, and the JSON escapes `\\r`, `\\n`): base64 is
/// often wrapped (MIME at 76 columns, PEM at 64), and a break may fall anywhere in a secret.
/// Forms and texts are folded alike, so a secret is found however it is wrapped.
fn fold(text: &str) -> std::borrow::Cow<'_, str> {
    let (folded, shifts) = fold_with_shifts(text);
    if shifts.is_empty() {
        return std::borrow::Cow::Borrowed(text);
    }
    std::borrow::Cow::Owned(String::from_utf8_lossy(&folded).into_owned())
}

/// Whether [`fold`]`(text)` is at least `n` bytes long, looking no further than it must (a
/// private key is kilobytes).
fn folds_to_at_least(text: &str, n: usize) -> bool {
    let bytes = text.as_bytes();
    let (mut i, mut kept) = (0, 0);
    while kept < n {
        match bytes.get(i..) {
            None | Some([]) => return false,
            Some(rest) => match line_break(rest) {
                0 => {
                    kept += 1;
                    i += 1;
                }
                skip => i += skip,
            },
        }
    }
    true
}

/// [`fold`], reusing `text` when it has no line break.
fn fold_owned(mut text: String) -> String {
    let folded = match fold(&text) {
        std::borrow::Cow::Borrowed(_) => return text,
        std::borrow::Cow::Owned(folded) => folded,
    };
    text.zeroize();
    folded
}

/// [`fold`] as bytes, with where the removed runs were: `(i, n)` means that `n` bytes in all
/// were removed before the folded text's byte `i`.
fn fold_with_shifts(text: &str) -> (std::borrow::Cow<'_, [u8]>, Vec<(usize, usize)>) {
    let bytes = text.as_bytes();
    let Some((mut at, mut skip)) = next_break(bytes, 0) else {
        return (std::borrow::Cow::Borrowed(bytes), Vec::new());
    };
    // Never more than the text: no reallocation leaves a copy of a secret behind.
    let mut out = Vec::with_capacity(bytes.len());
    let mut shifts: Vec<(usize, usize)> = Vec::new();
    let mut removed = 0;
    let mut cursor = 0;
    loop {
        out.extend_from_slice(bytes.get(cursor..at).unwrap_or(&[]));
        removed += skip;
        cursor = at + skip;
        match shifts.last_mut() {
            Some(last) if last.0 == out.len() => last.1 = removed,
            _ => shifts.push((out.len(), removed)),
        }
        match next_break(bytes, cursor) {
            Some(next) => (at, skip) = next,
            None => break,
        }
    }
    out.extend_from_slice(bytes.get(cursor..).unwrap_or(&[]));
    (std::borrow::Cow::Owned(out), shifts)
}

/// The first line break in `bytes` at or after `from`: where, and how long ([`line_break`]).
/// Runs between the bytes a break starts with are copied whole, not looked at byte by byte:
/// every value registered is folded, and a private key is kilobytes.
fn next_break(bytes: &[u8], from: usize) -> Option<(usize, usize)> {
    let mut i = from;
    loop {
        i += bytes
            .get(i..)?
            .iter()
            .position(|&b| matches!(b, b'\r' | b'\n' | b'\\'))?;
        match line_break(bytes.get(i..).unwrap_or(&[])) {
            0 => i += 1,
            skip => return Some((i, skip)),
        }
    }
}

/// Maps positions in a folded text back to the text, for positions that only grow.
struct Shift<'a> {
    shifts: &'a [(usize, usize)],
    next: usize,
    removed: usize,
}

impl Shift<'_> {
    fn new(shifts: &[(usize, usize)]) -> Shift<'_> {
        Shift {
            shifts,
            next: 0,
            removed: 0,
        }
    }

    /// Where the folded text's byte `i` is in the text.
    fn original(&mut self, i: usize) -> usize {
        while let Some(&(at, removed)) = self.shifts.get(self.next) {
            if at > i {
                break;
            }
            self.removed = removed;
            self.next += 1;
        }
        i + self.removed
    }
}

/// Adds a value to the current activation's secret set (no-op outside an activation, or for
/// values shorter than [`MIN_SECRET_LEN`]).
pub fn register(value: &str) {
    let value = value.trim();
    if !(MIN_SECRET_LEN..=MAX_SECRET_LEN).contains(&value.len()) {
        return;
    }
    if let Some(secrets) = Secrets::current() {
        secrets.lock().insert(value);
    }
}

/// How many values the current activation has registered (tests and diagnostics).
pub fn registered() -> usize {
    Secrets::current().map_or(0, |s| s.lock().values.len())
}

/// `text` with every registered secret, in every form, replaced by [`MASK`].
pub fn scrub_text(text: &str) -> String {
    Secrets::current()
        .and_then(|s| s.lock().replace(text))
        .unwrap_or_else(|| text.to_string())
}

/// Upstream text fit to quote: secrets scrubbed *first* (cutting first could leave a piece of a
/// secret too short to be recognised), control characters dropped, at most `max` characters.
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
    let Some(secrets) = Secrets::current() else {
        return false;
    };
    let mut set = secrets.lock();
    let mut changed = false;
    for pointer in PARTS {
        if let Some(part) = result.pointer_mut(pointer) {
            changed |= scrub_value(part, &mut set);
        }
    }
    changed
}

fn scrub_value(v: &mut Value, set: &mut SecretSet) -> bool {
    match v {
        Value::String(s) => match set.replace(s) {
            Some(clean) => {
                *s = clean;
                true
            }
            None => false,
        },
        Value::Array(items) => items.iter_mut().fold(false, |c, v| scrub_value(v, set) | c),
        Value::Object(map) => {
            let mut changed = false;
            if map.keys().any(|k| set.replace(k).is_some()) {
                let old = std::mem::take(map);
                for (k, v) in old {
                    let k = set.replace(&k).unwrap_or(k);
                    map.insert(k, v);
                }
                changed = true;
            }
            map.values_mut().fold(changed, |c, v| scrub_value(v, set) | c)
        }
        _ => false,
    }
}

/// How many forms each value is searched in (see [`encoding`]).
const KINDS: usize = 37;

/// Form number `kind` (0 to [`KINDS`] − 1) of `secret`, the forms in which it could appear in
/// a response or a log line: raw, JSON-escaped; percent-encoded in 9 ways (RFC 3986's in both
/// cases of hex, JavaScript's encodeURIComponent, a path's (Python's `quote`: '/' kept), a form
/// body ('+' for a space), all but letters and digits escaped in both cases, every byte escaped
/// in both cases), each also escaped again as a URL inside a URL is (in both cases); hex in
/// both cases; base64 and base64url at each of the three alignments. Every form of a prefix of
/// `secret` is a prefix of the same form of `secret`.
fn encoding(kind: usize, secret: &str) -> Option<String> {
    encoding_upto(kind, secret, usize::MAX)
}

/// [`encoding`], but a percent-encoded form may stop once it is `limit` bytes long: it is
/// then the start of the whole form (each byte is encoded on its own, in order). A head needs
/// a few dozen bytes of a form that every-byte escaping twice makes five times the value.
fn encoding_upto(kind: usize, secret: &str, limit: usize) -> Option<String> {
    match kind {
        0 => Some(secret.to_string()),
        1 => serde_json::to_string(secret).ok().map(|json| {
            json.get(1..json.len().saturating_sub(1))
                .unwrap_or("")
                .to_string()
        }),
        2..=28 => {
            let (keep, upper) = match (kind - 2) / 3 {
                0 => (Keep::Unreserved, false),
                1 => (Keep::Unreserved, true),
                2 => (Keep::UriComponent, true),
                3 => (Keep::Path, true),
                4 => (Keep::Form, true),
                5 => (Keep::Alphanumeric, false),
                6 => (Keep::Alphanumeric, true),
                7 => (Keep::Nothing, false),
                _ => (Keep::Nothing, true),
            };
            let once = escape_upto(secret.as_bytes(), keep, upper, limit);
            match (kind - 2) % 3 {
                0 => Some(once),
                twice => {
                    let mut once = once;
                    let twice = escape_upto(once.as_bytes(), Keep::Unreserved, twice == 1, limit);
                    once.zeroize();
                    Some(twice)
                }
            }
        }
        29 => Some(crate::hex::upper(secret.as_bytes())),
        30 => Some(crate::hex::lower(secret.as_bytes())),
        31..=36 => {
            let engine = if kind < 34 {
                &STANDARD_NO_PAD
            } else {
                &URL_SAFE_NO_PAD
            };
            Some(base64_at(engine, secret.as_bytes(), (kind - 31) % 3))
        }
        _ => None,
    }
}

/// The start of form `kind` of `value`, folded: at most [`HEAD_LEN`] bytes, and whether that
/// is the whole form. Computed from a prefix of the value long enough to give that many bytes.
fn head_of(kind: usize, value: &str) -> Option<(Vec<u8>, bool)> {
    let mut take = HEAD_LEN + 8;
    loop {
        let whole = take >= value.len();
        let mut end = take.min(value.len());
        while !value.is_char_boundary(end) {
            end -= 1;
        }
        // Not the whole form: only the head is kept, so a percent form may stop there.
        let limit = if whole { usize::MAX } else { HEAD_LEN + 4 };
        let mut head = fold_owned(encoding_upto(kind, value.get(..end)?, limit)?).into_bytes();
        if whole {
            return Some((head, true));
        }
        // A few bytes to spare: the last ones of a prefix's form may differ from the value's
        // (base64 of a cut, a line-break escape cut in two).
        if head.len() >= HEAD_LEN + 4 {
            if let Some(rest) = head.get_mut(HEAD_LEN..) {
                rest.zeroize();
            }
            head.truncate(HEAD_LEN);
            return Some((head, false));
        }
        head.zeroize();
        take *= 2;
    }
}

/// The distinct forms of `secret` long enough to search for, raw first (see [`encoding`]).
pub fn encodings(secret: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(KINDS);
    for form in (0..KINDS).filter_map(|kind| encoding(kind, secret)) {
        if form.len() >= MIN_SECRET_LEN && !out.contains(&form) {
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
    let mut encoded = engine.encode(&padded);
    let first = (offset * 8).div_ceil(6);
    let last = padded.len() * 8 / 6;
    let form = encoded.get(first..last).unwrap_or("").to_string();
    padded.zeroize();
    encoded.zeroize();
    form
}

/// What a percent-encoder leaves as it is.
#[derive(Clone, Copy)]
enum Keep {
    /// RFC 3986's unreserved characters.
    Unreserved,
    /// What JavaScript's `encodeURIComponent` leaves alone.
    UriComponent,
    /// A path encoder's (Python's `quote`): the unreserved characters and '/'.
    Path,
    /// A form body's (`application/x-www-form-urlencoded`): '+' for a space.
    Form,
    /// Letters and digits only.
    Alphanumeric,
    /// Nothing: every byte escaped, as some encoders do to a value they do not look into.
    Nothing,
}

impl Keep {
    fn keeps(self, b: u8) -> bool {
        match self {
            Keep::Unreserved => b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'),
            Keep::UriComponent => {
                b.is_ascii_alphanumeric()
                    || matches!(b, b'-' | b'.' | b'_' | b'~' | b'!' | b'\'' | b'(' | b')' | b'*')
            }
            Keep::Path => b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/'),
            Keep::Form => b.is_ascii_alphanumeric() || matches!(b, b'*' | b'-' | b'.' | b'_'),
            Keep::Alphanumeric => b.is_ascii_alphanumeric(),
            Keep::Nothing => false,
        }
    }
}

/// `bytes` percent-encoded, keeping what `keep` keeps, in upper- or lower-case hex.
#[cfg(test)]
fn escape(bytes: &[u8], keep: Keep, upper: bool) -> String {
    escape_upto(bytes, keep, upper, usize::MAX)
}

/// [`escape`], stopped after the byte that makes it `limit` bytes long or more.
fn escape_upto(bytes: &[u8], keep: Keep, upper: bool, limit: usize) -> String {
    let digits: &[u8; 16] = if upper {
        b"0123456789ABCDEF"
    } else {
        b"0123456789abcdef"
    };
    let hex = |nibble: u8| digits.get(usize::from(nibble & 0x0f)).copied().unwrap_or(b'0');
    // Bytes, not chars: every byte pushed is ASCII. Three per byte at most, so the buffer is
    // never reallocated (no copy of a secret left behind).
    let mut out = Vec::with_capacity(bytes.len().saturating_mul(3).min(limit.saturating_add(3)));
    for &b in bytes {
        if out.len() >= limit {
            break;
        }
        if keep.keeps(b) {
            out.push(b);
        } else if b == b' ' && matches!(keep, Keep::Form) {
            out.push(b'+');
        } else {
            out.push(b'%');
            out.push(hex(b >> 4));
            out.push(hex(b));
        }
    }
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE};
    use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
    use serde_json::json;

    // The percent-encoding crate and form_urlencoded as the oracle for our own encoders.
    /// RFC 3986's unreserved characters stay; everything else is escaped.
    const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    /// What a path encoder (Python's `quote`) leaves alone: the unreserved characters and '/'.
    const PATH: &AsciiSet = &UNRESERVED.remove(b'/');
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

    #[test]
    fn our_percent_encoders_agree_with_the_crates() {
        let every: String = (1u8..128).map(char::from).chain("é€😀".chars()).collect();
        assert_eq!(
            escape(every.as_bytes(), Keep::Unreserved, true),
            utf8_percent_encode(&every, UNRESERVED).to_string()
        );
        assert_eq!(
            escape(every.as_bytes(), Keep::Unreserved, false),
            lower_hex_escapes(&utf8_percent_encode(&every, UNRESERVED).to_string())
        );
        assert_eq!(
            escape(every.as_bytes(), Keep::UriComponent, true),
            utf8_percent_encode(&every, URI_COMPONENT).to_string()
        );
        assert_eq!(
            escape(every.as_bytes(), Keep::Path, true),
            utf8_percent_encode(&every, PATH).to_string()
        );
        assert_eq!(
            escape(every.as_bytes(), Keep::Alphanumeric, true),
            utf8_percent_encode(&every, NON_ALPHANUMERIC).to_string()
        );
        assert_eq!(
            escape(every.as_bytes(), Keep::Form, true),
            form_urlencoded::byte_serialize(every.as_bytes()).collect::<String>()
        );
        assert_eq!(escape(b"Az", Keep::Nothing, false), "%41%7a");
    }

    const SECRET: &str = "p8e-Ab+c/d=e f\"g";

    /// `text` cut into `width`-column lines ending in `eol`.
    fn wrapped(text: &str, width: usize, eol: &str) -> String {
        let lines: Vec<&str> = text
            .as_bytes()
            .chunks(width)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        lines.join(eol)
    }

    fn every_byte(s: &str) -> String {
        s.bytes().map(|b| format!("%{b:02X}")).collect()
    }

    fn percent(s: &str) -> String {
        utf8_percent_encode(s, UNRESERVED).to_string()
    }

    /// What a secret of `len` bytes looks like: a JWT's alphabet.
    fn token(len: usize) -> String {
        let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.";
        let mut state = 0x9e37_79b9_7f4a_7c15u64 ^ len as u64;
        (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                char::from(alphabet[(state % alphabet.len() as u64) as usize])
            })
            .collect()
    }

    /// Every way a secret must be found, each inside other text.
    fn disguises(secret: &str) -> Vec<(&'static str, String)> {
        let cut = &secret[..secret.len() * 9 / 10];
        vec![
            ("raw", secret.to_string()),
            ("JSON", serde_json::to_string(secret).unwrap()),
            ("percent", percent(secret)),
            ("percent, lower-case hex", lower_hex_escapes(&percent(secret))),
            (
                "form",
                form_urlencoded::byte_serialize(secret.as_bytes()).collect(),
            ),
            ("every byte", every_byte(secret)),
            ("every byte, lower case", every_byte(secret).to_lowercase()),
            ("percent twice", percent(&percent(secret))),
            ("all but letters and digits, twice", {
                let once = utf8_percent_encode(secret, NON_ALPHANUMERIC).to_string();
                utf8_percent_encode(&once, NON_ALPHANUMERIC).to_string()
            }),
            ("every byte twice", percent(&every_byte(secret))),
            (
                "every byte twice, lower",
                percent(&every_byte(secret)).to_lowercase(),
            ),
            ("hex", crate::hex::lower(secret.as_bytes())),
            ("HEX", crate::hex::upper(secret.as_bytes())),
            ("base64", STANDARD.encode(secret)),
            ("base64url", URL_SAFE.encode(secret)),
            ("base64 at 1", STANDARD.encode(format!("x{secret}"))),
            ("base64 at 2", STANDARD.encode(format!("Bearer {secret}"))),
            (
                "MIME base64",
                wrapped(&STANDARD.encode(format!("Bearer {secret}")), 76, "\r\n"),
            ),
            (
                "PEM base64",
                wrapped(&STANDARD.encode(format!("xy{secret}")), 64, "\n"),
            ),
            (
                "PEM base64 in JSON",
                serde_json::to_string(&wrapped(&STANDARD.encode(secret), 64, "\n")).unwrap(),
            ),
            ("90 %", cut.to_string()),
            ("90 %, base64", STANDARD.encode(format!("Bearer {cut}"))),
            ("90 %, percent", percent(cut)),
        ]
    }

    fn assert_masked(secret: &str) {
        let _scope = Scope::begin();
        register(secret);
        for (what, text) in disguises(secret) {
            let out = scrub_text(&format!("before {text} after"));
            // All of it masked but what does not depend on the secret: quotes, the base64 of
            // "Bearer " and of the bytes around it.
            assert!(
                out.starts_with("before ")
                    && out.ends_with(" after")
                    && out.contains(MASK)
                    && out.len() <= 40,
                "{} bytes, {what}: {out}",
                secret.len()
            );
        }
    }

    #[test]
    fn every_form_of_a_secret_is_masked_whatever_its_length() {
        assert_masked(SECRET);
        assert_masked("p8e-0123456789abcdef0123456789ab");
        // IMS access tokens are often longer than 1 KiB; key material longer still.
        assert_masked(&token(1100));
        assert_masked(&token(2500));
        assert_masked(&format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END",
            wrapped(&token(1600), 64, "\n")
        ));
    }

    #[test]
    fn the_start_of_a_secret_is_masked_from_half_its_length_or_16_bytes() {
        let _scope = Scope::begin();
        let secret = token(2500);
        register(&secret);
        let quoted = |n: usize| scrub_text(&format!("<{}>", &secret[..n]));
        assert_eq!(quoted(16), "<****>");
        assert_eq!(quoted(2000), "<****>");
        assert_eq!(quoted(15), format!("<{}>", &secret[..15]));
        // A run that starts like the secret is masked as far as it goes on matching.
        assert_eq!(
            scrub_text(&format!("{}!{}", &secret[..40], &secret[40..60])),
            format!("****!{}", &secret[40..60])
        );
        assert_eq!(prefix_rule(8), 8);
        assert_eq!(prefix_rule(20), 10);
        assert_eq!(prefix_rule(4000), 16);
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
    fn a_nested_scope_gives_back_the_outer_set() {
        let _outer = Scope::begin();
        register("outer-secret-1");
        {
            let _inner = Scope::begin();
            register("inner-secret-2");
            assert_eq!(scrub_text("outer-secret-1 inner-secret-2"), "outer-secret-1 ****");
        }
        assert_eq!(registered(), 1);
        assert_eq!(scrub_text("outer-secret-1 inner-secret-2"), "**** inner-secret-2");
    }

    #[test]
    fn a_thread_the_activation_starts_shares_its_set_and_another_activation_does_not() {
        let _scope = Scope::begin();
        register("first-activation-secret");
        let secrets = Secrets::current().unwrap();
        let seen = std::thread::spawn(move || {
            let _installed = secrets.install();
            register("found-on-the-thread");
            scrub_text("first-activation-secret")
        })
        .join()
        .unwrap();
        assert_eq!(seen, MASK);
        assert_eq!(scrub_text("found-on-the-thread"), MASK);
        // Another activation, on another thread, with its own set.
        let other = std::thread::spawn(|| {
            let _scope = Scope::begin();
            register("second-activation-secret");
            scrub_text("first-activation-secret second-activation-secret")
        })
        .join()
        .unwrap();
        assert_eq!(other, "first-activation-secret ****");
        assert_eq!(scrub_text("second-activation-secret"), "second-activation-secret");
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

    /// The automaton's answer is the plain one: at each position, mask the longest start of a
    /// form the text matches (if long enough) and go on after it. Line breaks are ignored
    /// inside a match and kept outside.
    #[test]
    fn the_automaton_masks_what_a_plain_search_would() {
        // Short values (whole forms computed when registered) and a long one (only the starts).
        let long = format!("{}é{}", "xyzabc-secret-".repeat(8), "cba".repeat(40));
        let secrets = [
            "abcabcab",
            "cabcabcabcabcabcabc",
            "xyzxyzxyzxyzxyz-é-xyzxyz",
            "é-secret-é",
            long.as_str(),
        ];
        let mut set = SecretSet::default();
        secrets.iter().for_each(|s| set.insert(s));
        let forms: Vec<String> = secrets
            .iter()
            .flat_map(|s| encodings(s))
            .map(|f| fold(&f).into_owned())
            .collect();
        let plain = |text: &str| -> Option<String> {
            let bytes = text.as_bytes();
            let mut out = String::new();
            let (mut i, mut copied, mut any) = (0, 0, false);
            while i < bytes.len() {
                let mut best = 0;
                for form in &forms {
                    // Compare, skipping line breaks in the text inside a match.
                    let (mut t, mut f, mut end) = (i, 0, i);
                    while f < form.len() && t < bytes.len() {
                        if f > 0 && bytes[t] == b'\n' {
                            t += 1;
                            continue;
                        }
                        if bytes[t] != form.as_bytes()[f] {
                            break;
                        }
                        t += 1;
                        f += 1;
                        end = t;
                    }
                    if f >= prefix_rule(form.len()) && end > best {
                        best = end;
                    }
                }
                if best > 0 {
                    while !text.is_char_boundary(best) {
                        best += 1;
                    }
                    out.push_str(&text[copied..i]);
                    out.push_str(MASK);
                    copied = best;
                    i = best;
                    any = true;
                } else {
                    i += 1;
                }
            }
            out.push_str(&text[copied..]);
            any.then_some(out)
        };
        let pad = " ".repeat(DIRECT_MAX);
        let alphabet: Vec<char> = "abcxyzé-secrt \n".chars().collect();
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..3000 {
            let len = (state % 80) as usize;
            let text: String = (0..len)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    alphabet[(state % alphabet.len() as u64) as usize]
                })
                .collect();
            let expected = plain(&text);
            assert_eq!(set.replace(&text), expected, "{text:?}");
            // Long texts are searched with the automaton: the same answer.
            let long = format!("{text}{pad}");
            assert_eq!(set.replace(&long), expected.map(|e| e + &pad), "{text:?} (long)");
        }
        // Pieces of the long value's forms, cut anywhere, between random text.
        let long_forms: Vec<String> = encodings(&long);
        for _ in 0..3000 {
            let mut text = String::new();
            for _ in 0..3 {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let form = &long_forms[(state % long_forms.len() as u64) as usize];
                let mut cut = (state >> 8) as usize % (form.len() + 1);
                while !form.is_char_boundary(cut) {
                    cut -= 1;
                }
                text.push_str(&form[..cut]);
                text.push(alphabet[(state >> 20) as usize % alphabet.len()]);
            }
            let expected = plain(&text);
            assert_eq!(set.replace(&text), expected, "{text:?}");
            let long_text = format!("{text}{pad}");
            assert_eq!(
                set.replace(&long_text),
                expected.map(|e| e + &pad),
                "{text:?} (long)"
            );
        }
        assert_eq!(set.replace("xabcabcabx").as_deref(), Some("x****x"));
        assert_eq!(set.replace("xyzxyz\nxyzx\r\nyzxyz!").as_deref(), Some("****!"));
        assert_eq!(set.replace("nothing here"), None);
    }

    #[test]
    fn long_texts_and_results_are_scrubbed() {
        let _scope = Scope::begin();
        register(SECRET);
        let long = format!("{}{SECRET}{}", "x".repeat(100_000), "y".repeat(10));
        let out = scrub_text(&long);
        assert!(out.ends_with("****yyyyyyyyyy") && !out.contains(SECRET));
        let mut r = json!({"statusCode": 200, "body": {"big": long, "k": [SECRET]}});
        assert!(scrub_result(&mut r));
        assert!(!r.to_string().contains(SECRET));
        // Text that keeps almost matching costs a bounded number of comparisons per byte.
        let near = SECRET[..15].repeat(20_000);
        assert_eq!(scrub_text(&near).matches(MASK).count(), 20_000);
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

    #[test]
    fn a_head_is_the_start_of_the_whole_form_of_every_kind() {
        // Heads are computed from a prefix of the value, percent forms stopped early: each must
        // be exactly the start of the whole form (or all of it), whatever the value holds.
        let every: String = (1u8..=127).map(char::from).collect();
        let values = [
            "k".repeat(41),
            format!("{every}{every}"),
            "é€😀\r\n-line\nbreak ".repeat(9),
            format!("-----BEGIN KEY-----\r\n{}\r\n", "QUJD+/z=".repeat(40)),
            "a b%2F~!*'()/ ".repeat(5),
        ];
        for value in &values {
            for len in [8, 31, 32, 33, 40, 41, 47, 80, 81, value.len()] {
                let mut end = len.min(value.len());
                while !value.is_char_boundary(end) {
                    end -= 1;
                }
                let Some(v) = value.get(..end) else { continue };
                for kind in 0..KINDS {
                    let whole = fold(&encoding(kind, v).unwrap()).into_owned().into_bytes();
                    let Some((head, is_whole)) = head_of(kind, v) else {
                        panic!("no head for kind {kind}");
                    };
                    if is_whole {
                        assert_eq!(head, whole, "kind {kind}, {v:?}");
                    } else {
                        assert_eq!(head.len(), HEAD_LEN, "kind {kind}, {v:?}");
                        assert_eq!(&head[..], &whole[..HEAD_LEN], "kind {kind}, {v:?}");
                    }
                }
            }
        }
    }
}
