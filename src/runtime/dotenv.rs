//! `.env` files as `aio` reads them (dotenv): `KEY=value` lines, `#` comments, optional `export `,
//! single- or double-quoted values (double quotes expand `\n`, and may span lines).

use std::collections::HashMap;

/// Parses `.env` text. Malformed lines are skipped.
pub fn parse(text: &str) -> HashMap<String, String> {
    let mut vars = HashMap::new();
    let mut lines = text.lines();
    while let Some(raw) = lines.next() {
        let line = raw.trim_start();
        let line = line.strip_prefix("export ").unwrap_or(line);
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let key = key.trim();
        if key.is_empty()
            || !key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-')
        {
            continue;
        }
        let value = value.trim();
        let parsed = if let Some(rest) = value.strip_prefix('"') {
            let mut buf = rest.to_string();
            while !closes(&buf, '"') {
                match lines.next() {
                    Some(next) => {
                        buf.push('\n');
                        buf.push_str(next);
                    }
                    None => break,
                }
            }
            let inner = buf.rfind('"').map_or(buf.as_str(), |end| &buf[..end]);
            inner
                .replace("\\n", "\n")
                .replace("\\r", "\r")
                .replace("\\\"", "\"")
        } else if let Some(rest) = value.strip_prefix('\'') {
            rest.rfind('\'').map_or(rest, |end| &rest[..end]).to_string()
        } else {
            // An unquoted value ends at ` #` (a comment).
            value.split(" #").next().unwrap_or("").trim().to_string()
        };
        vars.insert(key.to_string(), parsed);
    }
    vars
}

fn closes(buf: &str, quote: char) -> bool {
    let mut escaped = false;
    for c in buf.chars() {
        match c {
            '\\' if !escaped => escaped = true,
            c if c == quote && !escaped => return true,
            _ => escaped = false,
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
