//! The encodings every fixture is written in: PEM armour (RFC 7468) and DER TLVs (X.690),
//! written out by hand so that a test can build or take apart any structure, valid or not.
//!
//! A leaf: [`crate::keys`] and [`crate::fixtures`] both build on it.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

// ---- PEM -----------------------------------------------------------------------------------

/// PEM-armours `der` as OpenSSL writes it: 64-column lines, LF line ends.
pub fn pem(label: &str, der: &[u8]) -> String {
    pem_with_eol(label, der, "\n")
}

/// PEM-armours `der` with 64-column lines ending in `eol` (`"\r\n"`, or a literal `"\\n"`).
pub fn pem_with_eol(label: &str, der: &[u8], eol: &str) -> String {
    let mut out = format!("-----BEGIN {label}-----{eol}");
    for line in STANDARD.encode(der).as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push_str(eol);
    }
    out.push_str(&format!("-----END {label}-----{eol}"));
    out
}

/// The label of the first PEM block of `pem` (`RSA PRIVATE KEY`, say).
///
/// # Panics
/// If `pem` has no BEGIN line.
pub fn pem_label(pem: &str) -> &str {
    pem.lines()
        .find_map(|l| l.trim().strip_prefix("-----BEGIN ")?.strip_suffix("-----"))
        .unwrap_or_else(|| panic!("not PEM: no BEGIN line"))
}

/// The base64 lines of the body of `pem`: no BEGIN/END lines, no RFC 1421 headers
/// (`Proc-Type: …`, `DEK-Info: …`), no blank lines.
pub fn pem_body_lines(pem: &str) -> Vec<&str> {
    pem.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("-----") && !l.contains(':'))
        .collect()
}

/// The DER inside `pem` (its body lines, decoded).
///
/// # Panics
/// If the body is not base64.
pub fn pem_der(pem: &str) -> Vec<u8> {
    match STANDARD.decode(pem_body_lines(pem).concat()) {
        Ok(der) => der,
        Err(e) => panic!("PEM body is not base64: {e}"),
    }
}

/// Base64 of `bytes` wrapped at `width` columns, lines joined with `\n`.
pub fn base64_wrapped(bytes: &[u8], width: usize) -> String {
    STANDARD
        .encode(bytes)
        .as_bytes()
        .chunks(width)
        .map(String::from_utf8_lossy)
        .collect::<Vec<_>>()
        .join("\n")
}

// ---- DER -----------------------------------------------------------------------------------

/// DER tags used below.
pub mod tag {
    /// INTEGER.
    pub const INTEGER: u8 = 0x02;
    /// BIT STRING.
    pub const BIT_STRING: u8 = 0x03;
    /// OCTET STRING.
    pub const OCTET_STRING: u8 = 0x04;
    /// NULL.
    pub const NULL: u8 = 0x05;
    /// OBJECT IDENTIFIER.
    pub const OID: u8 = 0x06;
    /// UTF8String.
    pub const UTF8_STRING: u8 = 0x0c;
    /// UTCTime.
    pub const UTC_TIME: u8 = 0x17;
    /// GeneralizedTime.
    pub const GENERALIZED_TIME: u8 = 0x18;
    /// SEQUENCE.
    pub const SEQUENCE: u8 = 0x30;
    /// SET.
    pub const SET: u8 = 0x31;
    /// `[0] EXPLICIT` (a certificate's version).
    pub const CONTEXT_0: u8 = 0xa0;
}

/// Object identifiers (contents octets) used below.
pub mod oid {
    /// rsaEncryption, 1.2.840.113549.1.1.1.
    pub const RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
    /// sha256WithRSAEncryption, 1.2.840.113549.1.1.11.
    pub const SHA256_WITH_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b];
    /// id-RSASSA-PSS, 1.2.840.113549.1.1.10.
    pub const RSA_PSS: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a];
    /// id-dsa, 1.2.840.10040.4.1.
    pub const DSA: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x38, 0x04, 0x01];
    /// id-Ed448, 1.3.101.113.
    pub const ED448: &[u8] = &[0x2b, 0x65, 0x71];
    /// id-X25519, 1.3.101.110 (a key-agreement key: neither RSA nor a signing key).
    pub const X25519: &[u8] = &[0x2b, 0x65, 0x6e];
    /// prime256v1 (P-256), 1.2.840.10045.3.1.7.
    pub const P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
    /// id-PBES2, 1.2.840.113549.1.5.13.
    pub const PBES2: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x05, 0x0d];
    /// id-PBKDF2, 1.2.840.113549.1.5.12.
    pub const PBKDF2: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x05, 0x0c];
    /// hmacWithSHA256, 1.2.840.113549.2.9.
    pub const HMAC_SHA256: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x02, 0x09];
    /// aes256-CBC, 2.16.840.1.101.3.4.1.42.
    pub const AES256_CBC: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01, 0x2a];
    /// commonName, 2.5.4.3.
    pub const COMMON_NAME: &[u8] = &[0x55, 0x04, 0x03];
}

/// One DER TLV: `tag`, the definite length of `value`, `value`.
pub fn tlv(tag: u8, value: &[u8]) -> Vec<u8> {
    let len = value.len();
    let mut out = vec![tag];
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|&&b| b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(value);
    out
}

/// A SEQUENCE of the given encoded parts.
pub fn seq(parts: &[Vec<u8>]) -> Vec<u8> {
    tlv(tag::SEQUENCE, &parts.concat())
}

/// Where the value of the DER TLV at offset `at` of `der` starts, and where the TLV ends: the
/// TLV is `der[at..end]`, its value `der[start..end]`.
///
/// # Panics
/// If `der` is too short for what its length bytes say.
pub fn tlv_bounds(der: &[u8], at: usize) -> (usize, usize) {
    let first = der[at + 1];
    let (start, len) = if first < 0x80 {
        (at + 2, usize::from(first))
    } else {
        let n = usize::from(first & 0x7f);
        let len = der[at + 2..at + 2 + n]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (at + 2 + n, len)
    };
    (start, start + len)
}
