//! One activation line, as both loops read it: bounded in size (a longer line is consumed to its
//! end, so the loop stays in step with the proxy) and split into params and this activation's
//! context.

use std::io::{self, BufRead};

use serde_json::{Value, json};

use crate::activation::{Activation, parse_deadline};
use crate::error::Error;
use crate::secret::Secret;

/// The largest activation line read.
pub const MAX_LINE: usize = super::MAX_PARAMS_BYTES;

/// What [`read_line`] found.
pub(super) enum ReadLine {
    Eof,
    Line,
    TooLong,
}

/// How much of a line too long to serve is kept: its head, where a multiplexed line's id is.
const KEPT_HEAD: usize = 64;

/// Reads one line (without its `\n`) of at most [`MAX_LINE`] bytes; a longer one is consumed
/// to its end and reported (with its first [`KEPT_HEAD`] bytes), so the loop stays in step
/// with the proxy.
pub(super) fn read_line(input: &mut impl BufRead, line: &mut Vec<u8>) -> io::Result<ReadLine> {
    let mut too_long = false;
    let mut any = false;
    loop {
        let (done, used) = {
            let buf = input.fill_buf()?;
            if buf.is_empty() {
                return Ok(match (any, too_long) {
                    (false, _) => ReadLine::Eof,
                    (true, true) => ReadLine::TooLong,
                    (true, false) => ReadLine::Line,
                });
            }
            any = true;
            let (chunk, done) = match buf.iter().position(|b| *b == b'\n') {
                Some(i) => (&buf[..i], Some(i + 1)),
                None => (buf, None),
            };
            if !too_long && line.len() + chunk.len() > MAX_LINE {
                too_long = true;
                let head = KEPT_HEAD.saturating_sub(line.len()).min(chunk.len());
                line.extend_from_slice(&chunk[..head]);
                line.truncate(KEPT_HEAD);
            } else if !too_long {
                line.extend_from_slice(chunk);
            }
            (done.is_some(), done.unwrap_or(buf.len()))
        };
        input.consume(used);
        if done {
            return Ok(if too_long {
                ReadLine::TooLong
            } else {
                ReadLine::Line
            });
        }
    }
}

/// Splits an activation line into params (`value`) and this activation's context.
pub fn parse_activation(line: &[u8]) -> Result<(Value, Activation), Error> {
    if line.iter().all(u8::is_ascii_whitespace) {
        return Err(Error::invalid(
            "activation",
            "is a blank line (expected one JSON object per line)",
        ));
    }
    let v: Value = serde_json::from_slice(line).map_err(|e| {
        Error::invalid(
            "activation",
            format!("is not a JSON line ({} at column {})", classify(&e), e.column()),
        )
    })?;
    let Value::Object(mut fields) = v else {
        return Err(Error::invalid("activation", "must be a JSON object"));
    };
    let text = |fields: &serde_json::Map<String, Value>, k: &str| {
        fields
            .get(k)
            .and_then(Value::as_str)
            .map(|s| s.chars().take(256).collect())
    };
    let activation = Activation {
        activation_id: text(&fields, "activation_id"),
        action_name: text(&fields, "action_name"),
        deadline_ms: fields.get("deadline").and_then(parse_deadline),
        namespace: text(&fields, "namespace"),
        // Kept whole (a longer value is no key of ours) and never logged.
        api_key: fields
            .get("api_key")
            .and_then(Value::as_str)
            .filter(|k| !k.is_empty() && k.len() <= 1024)
            .map(Secret::new),
    };
    let params = fields.remove("value").unwrap_or_else(|| json!({}));
    Ok((params, activation))
}

fn classify(e: &serde_json::Error) -> &'static str {
    match e.classify() {
        serde_json::error::Category::Io => "read error",
        serde_json::error::Category::Syntax => "syntax error",
        serde_json::error::Category::Data => "data error",
        serde_json::error::Category::Eof => "unexpected end",
    }
}
