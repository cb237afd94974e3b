//! PEM text as people paste it: blocks found by their markers, whatever became of the line
//! breaks (CRLF, spaces, literal `\n` escapes from single-line `.env` values).

use std::borrow::Cow;

/// Undoes what pasting does to PEM text: surrounding whitespace, a BOM, one pair of quotes
/// (from `.env` files), and literal `\n` / `\r\n` escapes (single-line env values). CRLF
/// needs no work: PEM bodies are read whitespace-insensitively.
pub fn unpaste(text: &str) -> Cow<'_, str> {
    fn trim(s: &str) -> &str {
        s.trim_matches(|c: char| c.is_whitespace() || c == '\u{feff}')
    }
    let mut t = trim(text);
    for quote in ['"', '\''] {
        if t.len() >= 2 && t.starts_with(quote) && t.ends_with(quote) {
            t = trim(&t[1..t.len() - 1]);
            break;
        }
    }
    if t.contains('\\') {
        Cow::Owned(
            t.replace("\\r\\n", "\n")
                .replace("\\n", "\n")
                .replace("\\r", "\n"),
        )
    } else {
        Cow::Borrowed(t)
    }
}

/// One `-----BEGIN label-----` … `-----END label-----` block.
pub struct PemBlock<'a> {
    /// The label, e.g. `RSA PRIVATE KEY`.
    pub label: &'a str,
    /// Everything between the BEGIN and END lines (to the end of the text when there is no END).
    pub body: &'a str,
    /// Whether the END marker was found.
    pub has_end: bool,
}

/// The PEM blocks in `text`, in order. Markers are found by text, not by line, so a PEM whose
/// newlines became spaces still parses.
pub fn pem_blocks(text: &str) -> Vec<PemBlock<'_>> {
    const BEGIN: &str = "-----BEGIN ";
    let mut blocks = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find(BEGIN) {
        let after_begin = &rest[at + BEGIN.len()..];
        let Some(label_len) = after_begin.find("-----") else {
            break;
        };
        let label = after_begin[..label_len].trim();
        let after_label = &after_begin[label_len + 5..];
        let end = format!("-----END {label}-----");
        match after_label.find(&end) {
            Some(end_at) => {
                blocks.push(PemBlock {
                    label,
                    body: &after_label[..end_at],
                    has_end: true,
                });
                rest = &after_label[end_at + end.len()..];
            }
            None => {
                blocks.push(PemBlock {
                    label,
                    body: after_label,
                    has_end: false,
                });
                break;
            }
        }
    }
    blocks
}

impl PemBlock<'_> {
    /// The block's DER: its body, base64 read whitespace-insensitively; `None` when that fails.
    pub fn der(&self) -> Option<Vec<u8>> {
        crate::document::base64(self.body)
    }
}
