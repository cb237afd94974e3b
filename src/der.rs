//! A minimal DER reader: single-byte tags, definite lengths up to 4 length bytes. Enough for the
//! few fixed structures the credentials code walks (X.509 validity, RSA keys), without an ASN.1
//! crate.

/// Tag of an INTEGER.
pub const INTEGER: u8 = 0x02;
/// Tag of a BIT STRING.
pub const BIT_STRING: u8 = 0x03;
/// Tag of an OCTET STRING.
pub const OCTET_STRING: u8 = 0x04;
/// Tag of an OBJECT IDENTIFIER.
pub const OID: u8 = 0x06;
/// Tag of a UTCTime.
pub const UTC_TIME: u8 = 0x17;
/// Tag of a GeneralizedTime.
pub const GENERALIZED_TIME: u8 = 0x18;
/// Tag of a SEQUENCE.
pub const SEQUENCE: u8 = 0x30;
/// `[0] EXPLICIT Version` in tbsCertificate.
pub const VERSION_TAG: u8 = 0xa0;

/// Reads consecutive TLVs from a byte slice.
pub struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A reader over `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        Reader { rest: bytes }
    }

    /// Whether everything was read.
    pub fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// The next tag, without reading it.
    pub fn peek_tag(&self) -> Option<u8> {
        self.rest.first().copied()
    }

    /// The next TLV's tag and contents; `None` if truncated or not DER-shaped.
    pub fn read(&mut self) -> Option<(u8, &'a [u8])> {
        let (&tag, rest) = self.rest.split_first()?;
        if tag & 0x1f == 0x1f {
            return None; // high tag numbers never occur in what we read
        }
        let (&first, mut rest) = rest.split_first()?;
        let len = if first < 0x80 {
            usize::from(first)
        } else {
            let n = usize::from(first & 0x7f);
            if n == 0 || n > 4 || rest.len() < n {
                return None; // indefinite length is BER, not DER
            }
            let (len_bytes, after) = rest.split_at(n);
            rest = after;
            len_bytes
                .iter()
                .fold(0usize, |acc, &b| (acc << 8) | usize::from(b))
        };
        if rest.len() < len {
            return None;
        }
        let (value, after) = rest.split_at(len);
        self.rest = after;
        Some((tag, value))
    }

    /// The next TLV's contents if its tag is `tag`.
    pub fn expect(&mut self, tag: u8) -> Option<&'a [u8]> {
        match self.read()? {
            (t, value) if t == tag => Some(value),
            _ => None,
        }
    }
}
