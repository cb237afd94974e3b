//! Form bodies: `application/x-www-form-urlencoded` and `multipart/form-data`.

/// The media type of a `content-type` value, lower-cased and without parameters.
pub(crate) fn media_type(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// Decodes `a=1&b=x+y%21` into pairs (the `form_urlencoded` crate: `+` is a space, malformed
/// `%` escapes are kept literally, as browsers do).
pub(crate) fn parse_urlencoded(body: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(body).into_owned().collect()
}

/// The `boundary` parameter of a `multipart/form-data` content type, if it is one.
pub(crate) fn multipart_boundary(content_type: &str) -> Option<String> {
    if media_type(content_type) != "multipart/form-data" {
        return None;
    }
    content_type.split(';').skip(1).find_map(|param| {
        let (name, value) = param.split_once('=')?;
        if !name.trim().eq_ignore_ascii_case("boundary") {
            return None;
        }
        let value = value.trim();
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(value);
        (!value.is_empty()).then(|| value.to_string())
    })
}

/// Parses a `multipart/form-data` body into (field name, value) pairs. Returns `None` when the
/// body is not framed by `boundary` at all.
pub(crate) fn parse_multipart(body: &[u8], boundary: &str) -> Option<Vec<(String, String)>> {
    let delimiter = format!("--{boundary}").into_bytes();
    let mut fields = Vec::new();
    // The body is: [preamble] --B CRLF part CRLF --B CRLF part CRLF --B-- [epilogue].
    let mut pos = find(body, &delimiter, 0)?;
    loop {
        pos += delimiter.len();
        if body[pos..].starts_with(b"--") {
            return Some(fields);
        }
        // Skip transport padding and the CRLF after the delimiter.
        while pos < body.len() && (body[pos] == b' ' || body[pos] == b'\t') {
            pos += 1;
        }
        pos = skip_newline(body, pos)?;
        let next = find(body, &delimiter, pos)?;
        // The CRLF before the next delimiter belongs to the delimiter, not to the part.
        let mut end = next;
        if end >= pos + 2 && &body[end - 2..end] == b"\r\n" {
            end -= 2;
        } else if end > pos && body[end - 1] == b'\n' {
            end -= 1;
        }
        let part = &body[pos..end];
        let (head, content) = split_part(part)?;
        if let Some(name) = part_field_name(head) {
            fields.push((name, String::from_utf8_lossy(content).into_owned()));
        }
        pos = next;
    }
}

fn skip_newline(body: &[u8], pos: usize) -> Option<usize> {
    if body[pos..].starts_with(b"\r\n") {
        Some(pos + 2)
    } else if body[pos..].starts_with(b"\n") {
        Some(pos + 1)
    } else {
        None
    }
}

/// Splits a part into its header block and its content.
fn split_part(part: &[u8]) -> Option<(&[u8], &[u8])> {
    if let Some(i) = find(part, b"\r\n\r\n", 0) {
        return Some((&part[..i], &part[i + 4..]));
    }
    if let Some(i) = find(part, b"\n\n", 0) {
        return Some((&part[..i], &part[i + 2..]));
    }
    // A part with headers and no content at all.
    Some((part, &[]))
}

/// The `name` parameter of the part's `Content-Disposition: form-data` header.
fn part_field_name(head: &[u8]) -> Option<String> {
    let head = String::from_utf8_lossy(head);
    head.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        if !name.trim().eq_ignore_ascii_case("content-disposition") {
            return None;
        }
        value.split(';').skip(1).find_map(|param| {
            let (k, v) = param.split_once('=')?;
            if !k.trim().eq_ignore_ascii_case("name") {
                return None;
            }
            let v = v.trim();
            Some(
                v.strip_prefix('"')
                    .and_then(|v| v.strip_suffix('"'))
                    .unwrap_or(v)
                    .to_string(),
            )
        })
    })
}

/// The first index of `needle` in `haystack` at or after `from`.
pub(crate) fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if needle.is_empty() || from > haystack.len() {
        return None;
    }
    haystack[from..]
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|i| i + from)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
    }

    #[test]
    fn urlencoded_decoding() {
        assert_eq!(
            parse_urlencoded(b"grant_type=client_credentials&scope=openid%2CAdobeID&x=a+b%20c"),
            pairs(&[
                ("grant_type", "client_credentials"),
                ("scope", "openid,AdobeID"),
                ("x", "a b c")
            ])
        );
        assert_eq!(
            parse_urlencoded(b"a=%zz&b=%4&c&&d=%e2%82%ac%2B"),
            pairs(&[("a", "%zz"), ("b", "%4"), ("c", ""), ("d", "€+")])
        );
        assert_eq!(parse_urlencoded(b"k=%"), pairs(&[("k", "%")]));
        assert_eq!(parse_urlencoded(b"k=1%3"), pairs(&[("k", "1%3")]));
        assert_eq!(parse_urlencoded(b"k=%41"), pairs(&[("k", "A")]));
        assert!(parse_urlencoded(b"").is_empty());
    }

    #[test]
    fn boundary_extraction() {
        assert_eq!(
            multipart_boundary("multipart/form-data; boundary=----abc123"),
            Some("----abc123".to_string())
        );
        assert_eq!(
            multipart_boundary("Multipart/Form-Data;charset=utf-8; BOUNDARY=\"q r\""),
            Some("q r".to_string())
        );
        assert_eq!(multipart_boundary("application/x-www-form-urlencoded"), None);
        assert_eq!(multipart_boundary("multipart/form-data"), None);
        assert_eq!(
            media_type(" Application/JSON ; charset=utf-8"),
            "application/json"
        );
    }

    #[test]
    fn multipart_parsing() {
        // What npm `form-data` (jwt-auth, aio-lib-ims) sends.
        let body = "--------------------------123\r\n\
            Content-Disposition: form-data; name=\"client_id\"\r\n\r\n\
            abc\r\n\
            --------------------------123\r\n\
            Content-Disposition: form-data; name=\"jwt_token\"\r\n\
            Content-Type: text/plain\r\n\r\n\
            a.b.c\r\nline2\r\n\
            --------------------------123\r\n\
            Content-Disposition: form-data; name=\"empty\"\r\n\r\n\
            \r\n\
            --------------------------123--\r\n";
        let fields = parse_multipart(body.as_bytes(), "------------------------123");
        assert_eq!(
            fields,
            Some(pairs(&[
                ("client_id", "abc"),
                ("jwt_token", "a.b.c\r\nline2"),
                ("empty", "")
            ]))
        );
        // LF-only framing and a preamble.
        let body = "preamble\n--XY\ncontent-disposition: form-data; name=a\n\n1\n--XY--";
        assert_eq!(parse_multipart(body.as_bytes(), "XY"), Some(pairs(&[("a", "1")])));
        assert_eq!(parse_multipart(b"no boundary here", "XY"), None);
        assert_eq!(
            parse_multipart(b"--XY\r\nContent-Disposition: form-data; name=a\r\n\r\n1", "XY"),
            None
        );
    }
}
