//! Hexadecimal text of bytes: cache file names, store entry names, the scrub's hex forms.
//! A table lookup, not `format!("{b:02x}")` per byte, which costs a cold start measurably.

const LOWER: &[u8; 16] = b"0123456789abcdef";
const UPPER: &[u8; 16] = b"0123456789ABCDEF";

/// `bytes` as lower-case hex.
pub fn lower(bytes: &[u8]) -> String {
    encode(bytes, LOWER)
}

/// `bytes` as upper-case hex.
pub fn upper(bytes: &[u8]) -> String {
    encode(bytes, UPPER)
}

fn encode(bytes: &[u8], digits: &[u8; 16]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(char::from(digits[usize::from(b >> 4)]));
        out.push(char::from(digits[usize::from(b & 0x0f)]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_as_the_formatter() {
        let bytes: Vec<u8> = (0..=255).collect();
        let formatted: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(lower(&bytes), formatted);
        assert_eq!(upper(&bytes), formatted.to_ascii_uppercase());
        assert_eq!(lower(&[]), "");
    }
}
