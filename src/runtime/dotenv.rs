//! `.env` files exactly as `aio` reads them. aio loads `.env` through `@adobe/aio-lib-core-config`
//! (`src/dotenv.js`: the file read as UTF-8, then `dotenv.parse`), which pins dotenv 16.3.1. That
//! `parse` (dotenv's `lib/main.js`) is one regular expression run over the whole text, CRLF and CR
//! first turned into LF:
//!
//! ```text
//! /(?:^|^)\s*(?:export\s+)?([\w.-]+)(?:\s*=\s*?|:\s+?)(\s*'(?:\\'|[^'])*'|\s*"(?:\\"|[^"])*"|\s*`(?:\\`|[^`])*`|[^#\r\n]+)?\s*(?:#.*)?(?:$|$)/mg
//! ```
//!
//! then each value trimmed, one pair of surrounding quotes removed (`/^(['"`])([\s\S]*)\1$/mg`, so
//! per line), and `\n` / `\r` expanded when the value began with a double quote; a later
//! duplicate wins. This module follows that expression's backtracking step by step, without a
//! regex engine: which match JavaScript finds is decided by the order in which it tries the
//! alternatives, and the comments below say why each shortcut finds the same one. So `abc#def` is
//! `abc`, `"say \"hi\""` keeps its backslashes, `KEY: value` is read, backticks quote, and an
//! unterminated quote is kept and the next lines are read on. `tests/dotenv_parity.rs` checks it
//! against Node's dotenv 16.3.1.
//!
//! Works on chars with `get` only: any bytes parse, nothing panics.

#![deny(clippy::indexing_slicing, clippy::string_slice)]

use std::collections::HashMap;
use std::path::Path;

use crate::regular_file::{self, ReadError};

/// The largest `.env` file read: a deployment's variables fit in far less.
pub const MAX_DOTENV_BYTES: u64 = 1024 * 1024;

/// Reads and parses the `.env` file at `path`, at most [`MAX_DOTENV_BYTES`]; a larger file is an
/// error. Bytes that are not UTF-8 become U+FFFD, as Node's `readFileSync(file, 'utf-8')` makes
/// them.
pub fn read(path: &Path) -> std::io::Result<HashMap<String, String>> {
    let bytes = regular_file::read(path, MAX_DOTENV_BYTES).map_err(|e| match e {
        ReadError::NotRegular => std::io::Error::other("not a regular file"),
        ReadError::TooLarge => std::io::Error::other(format!("larger than {} KiB", MAX_DOTENV_BYTES / 1024)),
        ReadError::Io(e) => e,
    })?;
    Ok(parse_bytes(&bytes))
}

/// Parses `.env` bytes (invalid UTF-8 replaced as Node replaces it).
pub fn parse_bytes(bytes: &[u8]) -> HashMap<String, String> {
    parse(&String::from_utf8_lossy(bytes))
}

/// Parses `.env` text as dotenv 16.3.1's `parse` does.
pub fn parse(text: &str) -> HashMap<String, String> {
    let chars = normalise_newlines(text);
    let mut vars = HashMap::new();
    let mut from = 0;
    while from <= chars.len() {
        // exec() tries each position in turn; `(?:^|^)` admits only line starts.
        let Some(p) = (from..=chars.len()).find(|&p| line_start(&chars, p)) else {
            break;
        };
        match match_at(&chars, p) {
            Ok(m) => {
                let value = clean_value(&chars, m.value);
                let key: String = chars.get(m.key.0..m.key.1).unwrap_or_default().iter().collect();
                // `obj[key] = value` on a plain object: `__proto__` is the prototype setter,
                // which ignores a string, so that key never appears.
                if key != "__proto__" {
                    vars.insert(key, value);
                }
                // A match is never empty (the key has a char), so the search moves on.
                from = m.end.max(p + 1);
            }
            // A failed attempt depends only on where the leading `\s*` stops, and every line
            // start up to there stops at the same place: skip them (also keeps this linear).
            Err(Failed { skip_to }) => from = skip_to.max(p) + 1,
        }
    }
    vars
}

/// `\r\n?` → `\n`, as dotenv does first.
fn normalise_newlines(text: &str) -> Vec<char> {
    let mut out = Vec::with_capacity(text.len());
    let mut it = text.chars().peekable();
    while let Some(c) = it.next() {
        if c == '\r' {
            if it.peek() == Some(&'\n') {
                it.next();
            }
            out.push('\n');
        } else {
            out.push(c);
        }
    }
    out
}

/// JavaScript's `\s` (and what `String.prototype.trim` removes): WhiteSpace and LineTerminator.
/// Unlike `char::is_whitespace`, U+FEFF is one and U+0085 is not.
fn is_js_space(c: char) -> bool {
    matches!(
        c,
        '\t' | '\n' | '\u{0B}' | '\u{0C}' | '\r' | ' ' | '\u{A0}' | '\u{1680}' | '\u{2000}'
            ..='\u{200A}' | '\u{2028}' | '\u{2029}' | '\u{202F}' | '\u{205F}' | '\u{3000}' | '\u{FEFF}'
    )
}

/// What `^`, `$` and `.` treat as a line end in a JavaScript regex.
fn is_line_terminator(c: char) -> bool {
    matches!(c, '\n' | '\r' | '\u{2028}' | '\u{2029}')
}

/// `[\w.-]` without the `u` flag: ASCII only.
fn is_key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-'
}

fn at(chars: &[char], i: usize) -> Option<char> {
    chars.get(i).copied()
}

/// `^` with the `m` flag.
fn line_start(chars: &[char], p: usize) -> bool {
    p == 0
        || chars
            .get(p.wrapping_sub(1))
            .is_some_and(|&c| is_line_terminator(c))
}

/// The end of the run of `\s` from `i`.
fn skip_space(chars: &[char], mut i: usize) -> usize {
    while at(chars, i).is_some_and(is_js_space) {
        i += 1;
    }
    i
}

struct Match {
    key: (usize, usize),
    /// The value group's span; `None` when the optional group did not take part.
    value: Option<(usize, usize)>,
    end: usize,
}

struct Failed {
    skip_to: usize,
}

/// One attempt of the expression at line start `p`.
fn match_at(chars: &[char], p: usize) -> Result<Match, Failed> {
    // `\s*` is greedy; giving a char back leaves a space where `export` or the key must start,
    // which fails: only the longest run can succeed.
    let q = skip_space(chars, p);
    let failed = Failed { skip_to: q };
    // `(?:export\s+)?` tries the prefix first (with the longest `\s+`, for the same reason).
    let after_export = ['e', 'x', 'p', 'o', 'r', 't']
        .iter()
        .enumerate()
        .all(|(i, &c)| at(chars, q + i) == Some(c))
        .then(|| skip_space(chars, q + 6))
        .filter(|&r| r > q + 6);
    if let Some(r) = after_export
        && let Some(m) = rest(chars, r)
    {
        return Ok(m);
    }
    rest(chars, q).ok_or(failed)
}

/// From the key on.
fn rest(chars: &[char], r: usize) -> Option<Match> {
    // `([\w.-]+)` is greedy; a shorter key would leave a key char where `=`, `:` or a space
    // must follow.
    let mut k = r;
    while at(chars, k).is_some_and(is_key_char) {
        k += 1;
    }
    if k == r {
        return None;
    }
    // `\s*=\s*?` first (the `=` can only follow the whole run of spaces), else `:\s+?`. The lazy
    // quantifiers take the fewest spaces because the value part after them always succeeds
    // (see `value`).
    let s = skip_space(chars, k);
    let t = if at(chars, s) == Some('=') {
        s + 1
    } else if at(chars, k) == Some(':') && at(chars, k + 1).is_some_and(is_js_space) {
        k + 2
    } else {
        return None;
    };
    let (value, end) = value(chars, t);
    Some(Match {
        key: (r, k),
        value,
        end,
    })
}

/// The optional value group and what follows it, tried in the expression's order: each quoted
/// form, then `[^#\r\n]+`, then no value. It always succeeds: `[^#\r\n]+` stops at `#`, a line
/// end or the end, and the tail accepts each of those; without it, the tail accepts what stops it.
fn value(chars: &[char], t: usize) -> (Option<(usize, usize)>, usize) {
    for quote in ['\'', '"', '`'] {
        if let Some(found) = quoted(chars, t, quote) {
            return found;
        }
    }
    let mut d = t;
    while at(chars, d).is_some_and(|c| !matches!(c, '#' | '\r' | '\n')) {
        d += 1;
    }
    if d > t
        && let Some(end) = tail(chars, d)
    {
        return (Some((t, d)), end);
    }
    (None, tail(chars, t).unwrap_or(t))
}

/// `\s*Q(?:\\Q|[^Q])*Q` followed by the tail, with its backtracking: the body first runs as far
/// as it can (an escaped quote is taken as a pair), so the first candidate closing quote is the
/// first unescaped one; then, backing off, each escaped quote in turn from the last, read as a
/// backslash and a closing quote.
fn quoted(chars: &[char], t: usize, quote: char) -> Option<(Option<(usize, usize)>, usize)> {
    let u = skip_space(chars, t);
    if at(chars, u) != Some(quote) {
        return None;
    }
    let mut i = u + 1;
    let mut escaped_quotes = Vec::new();
    let close = loop {
        match at(chars, i) {
            None => break None,
            Some('\\') if at(chars, i + 1) == Some(quote) => {
                escaped_quotes.push(i + 1);
                i += 2;
            }
            Some(c) if c == quote => break Some(i),
            Some(_) => i += 1,
        }
    };
    close
        .into_iter()
        .chain(escaped_quotes.into_iter().rev())
        .find_map(|c| tail(chars, c + 1).map(|end| (Some((t, c + 1)), end)))
}

/// `\s*(?:#.*)?(?:$|$)` from `v`: where the match ends, if it can. The greedy `\s*` may run over
/// line ends; backing off, the first place that works is a `#` comment (to its line's end) or the
/// end of the text right after the run, else the last line end inside the run.
fn tail(chars: &[char], v: usize) -> Option<usize> {
    let x = skip_space(chars, v);
    match at(chars, x) {
        None => Some(x),
        Some('#') => {
            let mut y = x + 1;
            while at(chars, y).is_some_and(|c| !is_line_terminator(c)) {
                y += 1;
            }
            Some(y)
        }
        Some(_) => (v..x)
            .rev()
            .find(|&i| at(chars, i).is_some_and(is_line_terminator)),
    }
}

/// The value as `parse` stores it: trimmed, a pair of quotes removed per line, escapes expanded
/// when it began with a double quote.
fn clean_value(chars: &[char], span: Option<(usize, usize)>) -> String {
    let raw = span.and_then(|(a, b)| chars.get(a..b)).unwrap_or_default();
    let start = raw.iter().position(|&c| !is_js_space(c)).unwrap_or(raw.len());
    let end = raw
        .iter()
        .rposition(|&c| !is_js_space(c))
        .map_or(start, |e| e + 1);
    let trimmed = raw.get(start..end).unwrap_or_default();
    let double = trimmed.first() == Some(&'"');
    let unquoted = strip_quotes(trimmed);
    if double {
        unquoted.replace("\\n", "\n").replace("\\r", "\r")
    } else {
        unquoted
    }
}

/// `value.replace(/^(['"`])([\s\S]*)\1$/mg, '$2')`: at each line start (searching on after each
/// replacement) a quote, then the greedy `[\s\S]*` backs off to the last same quote that ends a
/// line or the text.
fn strip_quotes(v: &[char]) -> String {
    let ends_line = |j: usize| j + 1 == v.len() || at(v, j + 1).is_some_and(is_line_terminator);
    let last_closing = |q: char| (0..v.len()).rev().find(|&j| at(v, j) == Some(q) && ends_line(j));
    let closing = [
        ('\'', last_closing('\'')),
        ('"', last_closing('"')),
        ('`', last_closing('`')),
    ];
    let mut out = String::with_capacity(v.len());
    let mut copied = 0;
    let mut p = 0;
    while p < v.len() {
        let close = at(v, p).and_then(|c| {
            closing
                .iter()
                .find(|(q, _)| *q == c)
                .and_then(|(_, j)| *j)
                .filter(|&j| j > p)
        });
        match close {
            Some(j) if line_start(v, p) => {
                out.extend(v.get(copied..p).unwrap_or_default());
                out.extend(v.get(p + 1..j).unwrap_or_default());
                copied = j + 1;
                p = j + 1;
            }
            _ => p += 1,
        }
    }
    out.extend(v.get(copied..).unwrap_or_default());
    out
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn one(text: &str, key: &str) -> Option<String> {
        parse(text).get(key).cloned()
    }

    #[test]
    fn dotenv_forms() {
        let v = parse(
            "# comment\nA=1\nexport B = two # note\nC=\"x\\ny\"\nD='$NOT'\nE=\"multi\nline\"\nbad line\nF=\n",
        );
        assert_eq!(v["A"], "1");
        assert_eq!(v["B"], "two");
        assert_eq!(v["C"], "x\ny");
        assert_eq!(v["D"], "$NOT");
        assert_eq!(v["E"], "multi\nline");
        assert_eq!(v["F"], "");
        assert!(!v.contains_key("bad line"));
    }

    /// The lines the old parser read differently from dotenv 16.3.1 (checked against Node's in
    /// tests/dotenv_parity.rs).
    #[test]
    fn what_dotenv_16_3_1_makes_of_the_edge_cases() {
        assert_eq!(one("A=abc#def", "A").as_deref(), Some("abc"));
        assert_eq!(one(r#"A="say \"hi\"""#, "A").as_deref(), Some(r#"say \"hi\""#));
        assert_eq!(one("KEY: value", "KEY").as_deref(), Some("value"));
        assert_eq!(one("A=`tick`", "A").as_deref(), Some("tick"));
        let v = parse("A=\"open\nB=2\n");
        assert_eq!(v["A"], "\"open");
        assert_eq!(v["B"], "2");
        assert_eq!(one("A=1\nA=2", "A").as_deref(), Some("2"));
        assert_eq!(one("A=x\r\nB=y\r\n", "B").as_deref(), Some("y"));
        assert_eq!(one("__proto__=x", "__proto__"), None);
        // `:\s+?` may take a line end: the next line becomes the value.
        assert_eq!(one("K:\nL=1", "K").as_deref(), Some("L=1"));
    }

    /// Arbitrary bytes never panic, and every key is a dotenv key.
    #[test]
    fn random_bytes_never_panic() {
        let alphabet: &[&[u8]] = &[
            b"A",
            b"_",
            b".",
            b"-",
            b"=",
            b":",
            b" ",
            b"\t",
            b"\n",
            b"\r",
            b"#",
            b"'",
            b"\"",
            b"`",
            b"\\",
            b"n",
            b"export ",
            "\u{2028}".as_bytes(),
            "\u{FEFF}".as_bytes(),
            "é".as_bytes(),
            b"\xff",
            b"\xc3",
        ];
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..20_000 {
            let len = (next() % 40) as usize;
            let mut bytes = Vec::new();
            for _ in 0..len {
                let r = next();
                if r % 4 == 0 {
                    bytes.push((r >> 8) as u8);
                } else {
                    bytes.extend_from_slice(alphabet[(r >> 8) as usize % alphabet.len()]);
                }
            }
            for key in parse_bytes(&bytes).keys() {
                assert!(
                    !key.is_empty() && key.chars().all(is_key_char),
                    "{key:?} from {bytes:?}"
                );
            }
        }
    }

    #[test]
    fn a_large_file_is_linear() {
        // 200,000 blank lines and a line no key starts: each failed attempt skips the run.
        let text = "\n".repeat(200_000) + "!\n" + &"K='\\'x\n".repeat(20_000);
        let v = parse(&text);
        assert_eq!(v.get("K").map(String::as_str), Some("'\\'x"));
    }
}
