//! Text that is a JSON document, or base64 of one: how credentials arrive in `.env` values
//! (`base64 -w0 creds.json`), in App Builder inputs (objects, or JSON strings), and in web
//! bodies (OpenWhisk encodes some as base64). One decoder for every place that accepts them.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD_PAD_INDIFFERENT, URL_SAFE_PAD_INDIFFERENT};
use serde_json::{Map, Value};

/// Base64 in either alphabet, padded or not, wrapped or not; `None` when it is not base64.
pub fn base64(text: &str) -> Option<Vec<u8>> {
    let compact: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    let engine = if compact.iter().any(|&b| b == b'-' || b == b'_') {
        &URL_SAFE_PAD_INDIFFERENT
    } else {
        &STANDARD_PAD_INDIFFERENT
    };
    engine.decode(compact).ok()
}

/// A JSON object given as its text or as base64 of its text (pretty-printed or not). The error
/// says which it is not, for a message naming the input.
pub fn json_object(text: &str) -> Result<Map<String, Value>, &'static str> {
    let text = text.trim();
    let decoded;
    let json = if text.starts_with('{') {
        text
    } else {
        let bytes = base64(text).ok_or("is neither JSON nor base64 of JSON")?;
        decoded = String::from_utf8(bytes).map_err(|_| "is base64, but not of JSON text")?;
        decoded.as_str()
    };
    match serde_json::from_str::<Value>(json) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err("must be a JSON object"),
        Err(_) => Err("is not valid JSON"),
    }
}

/// Text given as is or as base64 of UTF-8 text: the decoded text when `text` is base64 of text,
/// else `None`.
pub fn base64_text(text: &str) -> Option<String> {
    base64(text).and_then(|bytes| String::from_utf8(bytes).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

    #[test]
    fn json_objects_come_as_text_or_base64_of_it_in_any_alphabet() {
        let compact = r#"{"integration":{"org":"O"}}"#;
        let pretty = "{\n  \"integration\": {\n    \"org\": \"O\"\n  }\n}\n";
        let expected = json_object(compact).unwrap();
        for text in [
            compact.to_string(),
            pretty.to_string(),
            STANDARD.encode(compact),
            // Pretty-printed JSON's base64 starts "ewog", not "ey".
            STANDARD.encode(pretty),
            URL_SAFE_NO_PAD.encode(pretty),
            // Wrapped as `base64` wraps it.
            STANDARD
                .encode(pretty)
                .as_bytes()
                .chunks(16)
                .map(|c| std::str::from_utf8(c).unwrap())
                .collect::<Vec<_>>()
                .join("\n"),
        ] {
            assert_eq!(json_object(&text), Ok(expected.clone()), "{text}");
        }
        assert_eq!(json_object("%%%"), Err("is neither JSON nor base64 of JSON"));
        assert_eq!(json_object("{oops"), Err("is not valid JSON"));
        assert_eq!(json_object("[1]"), Err("is neither JSON nor base64 of JSON"));
        assert_eq!(json_object(&STANDARD.encode("[1]")), Err("must be a JSON object"));
        assert_eq!(base64_text(&STANDARD.encode("a=b")).as_deref(), Some("a=b"));
        assert_eq!(base64_text("not base64!"), None);
    }
}
