//! The RSA private key that signs Service Account JWTs, accepted in the shapes people paste it.
//!
//! Keys arrive through environment variables, `.env` files and JSON downloads, so the same key
//! shows up as PEM, PEM with CRLF, PEM on one line with literal `\n`, or base64 of the PEM. We
//! undo all of those, then say precisely what is wrong when it is still not a usable RSA key,
//! because "invalid key" alone sends people hunting. No message ever quotes the key.

use crate::der;
use crate::error::Error;
use crate::pem::{pem_blocks, unpaste};
use jsonwebtoken::EncodingKey;
use ring::rand::SystemRandom;
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use std::fmt;

const EMPTY: &str = "is empty";
const NOT_A_KEY: &str = "is not a PEM private key or base64 of one";
const ENCRYPTED: &str = "is an encrypted private key (ENCRYPTED PRIVATE KEY / Proc-Type: 4,ENCRYPTED); \
                         decrypt it first: openssl pkey -in key.pem -out plain.pem";
const EC: &str = "is an EC key, not RSA";
const ED25519: &str = "is an Ed25519 key, not RSA";
const NOT_RSA: &str = "is not an RSA key";
const PUBLIC: &str = "is a public key/certificate, not a private key";
const NO_END: &str = "is truncated or damaged (no END line)";
const BAD_BASE64: &str = "is truncated or damaged (base64 body invalid)";
const BAD_DER: &str = "is truncated or damaged (DER invalid)";

/// Smallest modulus accepted; `jsonwebtoken` (used by Adobe's Node libraries) has the same floor.
const MIN_BITS: usize = 2048;
/// Largest modulus ring signs with.
const MAX_BITS: usize = 4096;

// Algorithm OIDs (contents octets) found in PKCS#8 `privateKeyAlgorithm`.
const OID_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
const OID_RSA_PSS: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a];
const OID_EC: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const OID_DSA: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x38, 0x04, 0x01];
const OID_ED25519: &[u8] = &[0x2b, 0x65, 0x70];
const OID_ED448: &[u8] = &[0x2b, 0x65, 0x71];

/// An RSA private key, parsed once, ready to sign RS256 (RSASSA-PKCS1-v1_5 + SHA-256) with ring
/// (constant time).
pub struct RsaPrivateKey {
    key: RsaKeyPair,
    /// The same key as PKCS#1 `RSAPrivateKey` DER, the form jsonwebtoken takes (zeroed on drop).
    der: EncodingKey,
    bits: usize,
    /// The input it came from, for the one error signing can still give.
    input: String,
}

impl fmt::Debug for RsaPrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RsaPrivateKey(****)")
    }
}

/// The DER encodings we know how to turn into an RSA key.
enum Der {
    /// `RSAPrivateKey` (RFC 8017), PEM label `RSA PRIVATE KEY`.
    Pkcs1,
    /// `PrivateKeyInfo` (RFC 5958), PEM label `PRIVATE KEY`.
    Pkcs8,
}

impl RsaPrivateKey {
    /// Parses a PKCS#1 or PKCS#8 RSA private key given as PEM, PEM with CRLF or literal `\n`
    /// escapes, or base64 of the PEM, with surrounding whitespace or quotes.
    ///
    /// `input` is the parameter name to use in errors (e.g. "JWT_PRIVATE_KEY" or
    /// "AEM_SERVICE_CREDENTIALS").
    pub fn parse(input: &str, text: &str) -> Result<RsaPrivateKey, Error> {
        let bad = |reason: &str| Error::invalid(input, reason);
        let text = unpaste(text);
        if text.is_empty() {
            return Err(bad(EMPTY));
        }
        if text.contains("-----BEGIN ") {
            return Self::from_pem(input, &text);
        }
        // No PEM armour: base64 of the PEM (the App Builder `.env` recipe), or of bare DER.
        let decoded = crate::document::base64(&text).ok_or_else(|| bad(NOT_A_KEY))?;
        match String::from_utf8(decoded) {
            Ok(pem) if pem.contains("-----BEGIN ") => Self::from_pem(input, &unpaste(&pem)),
            Ok(other) => Self::from_sniffed_der(input, other.as_bytes()),
            Err(e) => Self::from_sniffed_der(input, e.as_bytes()),
        }
    }

    /// Parses DER without PEM armour: PKCS#1 `RSAPrivateKey` or PKCS#8 `PrivateKeyInfo`, with
    /// the same checks and messages as [`RsaPrivateKey::parse`].
    pub fn parse_der(input: &str, der: &[u8]) -> Result<RsaPrivateKey, Error> {
        Self::from_sniffed_der(input, der)
    }

    /// Signs `message` with RSASSA-PKCS1-v1_5 and SHA-256 (JWS `RS256`).
    pub fn sign_rs256(&self, message: &[u8]) -> Result<Vec<u8>, Error> {
        let mut signature = vec![0; self.key.public().modulus_len()];
        // The RNG is unused by PKCS#1 v1.5 padding, but ring's API asks for one.
        self.key
            .sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), message, &mut signature)
            .map_err(|_| self.signing_failed())?;
        Ok(signature)
    }

    /// The error for a key that parsed but cannot sign.
    ///
    /// ring checks each signature it makes, but not every CRT part when parsing: a key damaged
    /// in dP/dQ/qInv parses, then cannot sign (found by fuzz_main). That is the caller's input,
    /// so a 400 naming it, before any request is sent.
    pub fn signing_failed(&self) -> Error {
        Error::invalid(&self.input, "is damaged (its parts do not match: signing failed)")
    }

    /// The key as jsonwebtoken takes it: PKCS#1 DER, whichever form it was given in.
    pub fn encoding_key(&self) -> &EncodingKey {
        &self.der
    }

    /// The modulus size in bits (2048, 3072 or 4096 in practice).
    pub fn bits(&self) -> usize {
        self.bits
    }

    /// The public key as a DER `RSAPublicKey` (PKCS#1), the form ring's
    /// `UnparsedPublicKey` verifies with.
    pub fn public_key_der(&self) -> &[u8] {
        self.key.public().as_ref()
    }

    fn from_pem(input: &str, text: &str) -> Result<RsaPrivateKey, Error> {
        let bad = |reason: &str| Error::invalid(input, reason);
        let blocks = pem_blocks(text);
        // Key files may carry other blocks too: `openssl ecparam -genkey` writes EC PARAMETERS
        // first, and bundles put the certificate before the key.
        let block = blocks
            .iter()
            .find(|b| b.label.ends_with("PRIVATE KEY"))
            .or_else(|| blocks.first())
            .ok_or_else(|| bad(NOT_A_KEY))?;
        let kind = match block.label {
            "ENCRYPTED PRIVATE KEY" => return Err(bad(ENCRYPTED)),
            "RSA PRIVATE KEY" => Der::Pkcs1,
            "PRIVATE KEY" => Der::Pkcs8,
            "EC PRIVATE KEY" => return Err(bad(EC)),
            "DSA PRIVATE KEY" => return Err(bad("is a DSA key, not RSA")),
            "OPENSSH PRIVATE KEY" => {
                return Err(bad(
                    "is an OpenSSH private key; convert it to PEM: ssh-keygen -p -m PEM -f <file>",
                ));
            }
            "PUBLIC KEY"
            | "RSA PUBLIC KEY"
            | "CERTIFICATE"
            | "TRUSTED CERTIFICATE"
            | "X509 CERTIFICATE"
            | "CERTIFICATE REQUEST"
            | "NEW CERTIFICATE REQUEST" => {
                return Err(bad(PUBLIC));
            }
            _ => return Err(bad(NOT_A_KEY)),
        };
        // RFC 1421 headers only ever appear in OpenSSL's legacy encrypted keys.
        if block.body.contains("Proc-Type:") || block.body.contains("DEK-Info:") {
            return Err(bad(ENCRYPTED));
        }
        if !block.has_end {
            return Err(bad(NO_END));
        }
        let der = block.der().ok_or_else(|| bad(BAD_BASE64))?;
        Self::from_der(input, &der, kind)
    }

    /// DER without a PEM label: tell PKCS#1, PKCS#8 and the look-alikes apart by shape.
    fn from_sniffed_der(input: &str, der: &[u8]) -> Result<RsaPrivateKey, Error> {
        let bad = |reason: &str| Error::invalid(input, reason);
        let outer = der::Reader::new(der)
            .expect(der::SEQUENCE)
            .ok_or_else(|| bad(NOT_A_KEY))?;
        let mut r = der::Reader::new(outer);
        let kind = match (r.read(), r.read()) {
            // PrivateKeyInfo: version, AlgorithmIdentifier, ...
            (Some((der::INTEGER, _)), Some((der::SEQUENCE, _))) => Der::Pkcs8,
            // RSAPrivateKey has nine INTEGERs; RSAPublicKey only two.
            (Some((der::INTEGER, _)), Some((der::INTEGER, _))) if r.is_empty() => {
                return Err(bad(PUBLIC));
            }
            (Some((der::INTEGER, _)), Some((der::INTEGER, _))) => Der::Pkcs1,
            // EncryptedPrivateKeyInfo: AlgorithmIdentifier, OCTET STRING
            (Some((der::SEQUENCE, _)), Some((der::OCTET_STRING, _))) => return Err(bad(ENCRYPTED)),
            // SubjectPublicKeyInfo (BIT STRING) or Certificate (tbs, signatureAlgorithm, ...)
            (Some((der::SEQUENCE, _)), Some((der::BIT_STRING | der::SEQUENCE, _))) => {
                return Err(bad(PUBLIC));
            }
            _ => return Err(bad(NOT_A_KEY)),
        };
        Self::from_der(input, der, kind)
    }

    fn from_der(input: &str, der: &[u8], kind: Der) -> Result<RsaPrivateKey, Error> {
        let bad = |reason: &str| Error::invalid(input, reason);
        let pkcs1 = match kind {
            Der::Pkcs1 => der,
            Der::Pkcs8 => pkcs8_rsa_key(der).map_err(bad)?,
        };
        // Size first: ring's own rejection does not say how big the key is.
        let bits = modulus_bits(pkcs1).ok_or_else(|| bad(BAD_DER))?;
        if bits < MIN_BITS {
            return Err(bad(&format!(
                "is a {bits}-bit RSA key; at least {MIN_BITS} bits are required"
            )));
        }
        if bits > MAX_BITS {
            return Err(bad(&format!(
                "is a {bits}-bit RSA key; at most {MAX_BITS} bits are supported"
            )));
        }
        let parsed = match kind {
            Der::Pkcs1 => RsaKeyPair::from_der(der),
            // ring takes only PKCS#8 v1; v2 (with the public key attached) holds the same
            // RSAPrivateKey, so fall back to it.
            Der::Pkcs8 => RsaKeyPair::from_pkcs8(der).or_else(|e| {
                if e.to_string() == "VersionNotSupported" {
                    RsaKeyPair::from_der(pkcs1)
                } else {
                    Err(e)
                }
            }),
        };
        let key = parsed.map_err(|e| {
            // KeyRejected's text is one of ring's fixed identifiers, never key data.
            let why = e.to_string();
            bad(&match why.as_str() {
                "InvalidEncoding" => BAD_DER.to_owned(),
                "WrongAlgorithm" => NOT_RSA.to_owned(),
                "VersionNotSupported" => "is a multi-prime RSA key, which is not supported".to_owned(),
                "PrivateModulusLenNotMultipleOf512Bits" => {
                    // ring needs each prime to be a multiple of 512 bits.
                    format!("is a {bits}-bit RSA key; use 2048, 3072 or 4096 bits")
                }
                _ => format!("is not a usable RSA private key ({why})"),
            })
        })?;
        Ok(RsaPrivateKey {
            key,
            der: EncodingKey::from_rsa_der(pkcs1),
            bits,
            input: input.to_string(),
        })
    }
}

/// The `RSAPrivateKey` inside a PKCS#8 `PrivateKeyInfo`, or why there is none.
fn pkcs8_rsa_key(der: &[u8]) -> Result<&[u8], &'static str> {
    let mut info = der::Reader::new(der::Reader::new(der).expect(der::SEQUENCE).ok_or(BAD_DER)?);
    info.expect(der::INTEGER).ok_or(BAD_DER)?;
    let mut alg = der::Reader::new(info.expect(der::SEQUENCE).ok_or(BAD_DER)?);
    match alg.expect(der::OID).ok_or(BAD_DER)? {
        OID_RSA => info.expect(der::OCTET_STRING).ok_or(BAD_DER),
        OID_EC => Err(EC),
        OID_ED25519 => Err(ED25519),
        OID_ED448 => Err("is an Ed448 key, not RSA"),
        OID_DSA => Err("is a DSA key, not RSA"),
        OID_RSA_PSS => Err("is an RSA-PSS key; RS256 needs a plain RSA key (openssl genpkey -algorithm RSA)"),
        _ => Err(NOT_RSA),
    }
}

/// Bit length of the modulus of an `RSAPrivateKey { version, modulus, ... }`.
fn modulus_bits(pkcs1: &[u8]) -> Option<usize> {
    let mut key = der::Reader::new(der::Reader::new(pkcs1).expect(der::SEQUENCE)?);
    key.expect(der::INTEGER)?;
    let n = key.expect(der::INTEGER)?;
    let start = n.iter().position(|&b| b != 0)?;
    let n = &n[start..];
    Some(n.len() * 8 - n[0].leading_zeros() as usize)
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use base64::Engine as _;
    use std::io::Write as _;
    use std::process::{Command, Stdio};
    use std::sync::OnceLock;

    /// Runs the `openssl` CLI; `None` (with a note on stderr) when it is missing or fails, so
    /// key-based tests skip instead of failing on machines without it.
    pub(crate) fn openssl(args: &[&str], stdin: Option<&[u8]>) -> Option<Vec<u8>> {
        let child = Command::new("openssl")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn();
        let Ok(mut child) = child else {
            eprintln!("skipping: openssl is not on PATH");
            return None;
        };
        let mut pipe = child.stdin.take()?;
        pipe.write_all(stdin.unwrap_or_default()).ok()?;
        drop(pipe);
        let out = child.wait_with_output().ok()?;
        if !out.status.success() {
            eprintln!("skipping: openssl {} failed", args.join(" "));
            return None;
        }
        Some(out.stdout)
    }

    fn text(args: &[&str], stdin: Option<&str>) -> Option<String> {
        openssl(args, stdin.map(str::as_bytes)).map(|b| String::from_utf8(b).unwrap())
    }

    /// A 2048-bit PKCS#1 key, generated once per test run (never stored on disk).
    pub(crate) fn rsa2048_pkcs1() -> Option<&'static str> {
        static KEY: OnceLock<Option<String>> = OnceLock::new();
        KEY.get_or_init(|| text(&["genrsa", "-traditional", "2048"], None))
            .as_deref()
    }

    /// `pkcs1` with one bit of dP flipped (not the lowest: ring wants it odd): it still parses
    /// (ring does not check dP against d) but cannot sign (ring verifies each signature).
    pub(crate) fn with_damaged_dp(pkcs1: &[u8]) -> Vec<u8> {
        let mut key = der::Reader::new(der::Reader::new(pkcs1).expect(der::SEQUENCE).unwrap());
        for _ in ["version", "n", "e", "d", "p", "q"] {
            key.expect(der::INTEGER).unwrap();
        }
        let dp = key.expect(der::INTEGER).unwrap();
        let last = dp.as_ptr() as usize - pkcs1.as_ptr() as usize + dp.len() - 1;
        let mut damaged = pkcs1.to_vec();
        damaged[last] ^= 2;
        damaged
    }

    fn to_pkcs8(pem: &str) -> String {
        text(&["pkcs8", "-topk8", "-nocrypt"], Some(pem)).unwrap()
    }

    fn b64_lines(pem: &str) -> Vec<&str> {
        pem.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with("-----") && !l.contains(':'))
            .collect()
    }

    /// Asserts the error is a 400 for `JWT_PRIVATE_KEY` whose reason contains `want`, and that
    /// the message quotes no line of `secret`.
    fn rejects(text: &str, want: &str, secret: &str) {
        let err = RsaPrivateKey::parse("JWT_PRIVATE_KEY", text).unwrap_err();
        let msg = err.to_string();
        assert_eq!(err.status_code(), 400, "{msg}");
        assert!(msg.starts_with("invalid parameter 'JWT_PRIVATE_KEY': "), "{msg}");
        assert!(msg.contains(want), "{msg:?} should contain {want:?}");
        for line in b64_lines(secret) {
            assert!(!msg.contains(line), "message leaks key material: {msg}");
            assert!(
                !msg.contains(&line[..line.len().min(16)]),
                "message leaks key material: {msg}"
            );
        }
    }

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    #[test]
    fn accepts_pkcs1_and_pkcs8_in_pasted_shapes() {
        let Some(pkcs1) = rsa2048_pkcs1() else { return };
        let pkcs8 = to_pkcs8(pkcs1);
        assert!(pkcs8.starts_with("-----BEGIN PRIVATE KEY-----"));
        let reference = RsaPrivateKey::parse("k", pkcs1).unwrap();
        assert_eq!(reference.bits(), 2048);
        assert_eq!(format!("{reference:?}"), "RsaPrivateKey(****)");

        let wrapped_b64 = |s: &str| {
            let b = b64(s);
            b.as_bytes()
                .chunks(76)
                .map(|c| std::str::from_utf8(c).unwrap())
                .collect::<Vec<_>>()
                .join("\n")
        };
        let url_b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        for pem in [pkcs1, pkcs8.as_str()] {
            let shapes = [
                pem.to_owned(),
                pem.replace('\n', "\r\n"),
                pem.replace('\n', "\\n"),
                pem.replace('\n', "\\r\\n"),
                pem.replace('\n', " "),
                format!("  \"{}\"\n", pem.replace('\n', "\\n")),
                format!("'{pem}'"),
                b64(pem),
                wrapped_b64(pem),
                format!("\"{}\"", b64(pem)),
                url_b64(pem),
                b64(&pem.replace('\n', "\r\n")),
                // Certificate bundled before the key.
                format!(
                    "{}\n{pem}",
                    crate::credentials::cert::tests::pem("CERTIFICATE", &[0x30, 0], "\n")
                ),
            ];
            for (i, shape) in shapes.iter().enumerate() {
                let key = RsaPrivateKey::parse("k", shape).unwrap_or_else(|e| panic!("shape {i}: {e}"));
                assert_eq!(key.public_key_der(), reference.public_key_der(), "shape {i}");
            }
        }
        // Base64 of the bare DER (a PEM body without its armour).
        let body: String = b64_lines(&pkcs8).concat();
        RsaPrivateKey::parse("k", &body).unwrap();
        let body: String = b64_lines(pkcs1).concat();
        RsaPrivateKey::parse("k", &body).unwrap();
    }

    #[test]
    fn signature_verifies() {
        let Some(pkcs1) = rsa2048_pkcs1() else { return };
        let key = RsaPrivateKey::parse("k", pkcs1).unwrap();
        let sig = key.sign_rs256(b"hello").unwrap();
        assert_eq!(sig.len(), 256);
        let public = ring::signature::UnparsedPublicKey::new(
            &ring::signature::RSA_PKCS1_2048_8192_SHA256,
            key.public_key_der(),
        );
        public.verify(b"hello", &sig).unwrap();
        assert!(public.verify(b"hellO", &sig).is_err());
    }

    #[test]
    fn rejects_with_a_reason_and_without_the_key() {
        let Some(pkcs1) = rsa2048_pkcs1() else { return };
        let pkcs8 = to_pkcs8(pkcs1);

        rejects("", EMPTY, "");
        rejects("  \"\" ", EMPTY, "");
        rejects("not a key at all!", NOT_A_KEY, "");
        rejects("aGVsbG8gd29ybGQ=", NOT_A_KEY, "");
        rejects("-----BEGIN FOO-----\nAAAA\n-----END FOO-----\n", NOT_A_KEY, "");

        let half = &pkcs1[..pkcs1.len() / 2];
        rejects(half, NO_END, pkcs1);
        rejects(&b64(half), NO_END, pkcs1);
        rejects(&pkcs8[..pkcs8.len() / 2], NO_END, &pkcs8);

        // Body lines dropped from the middle: END present, DER too short.
        let lines: Vec<&str> = pkcs1.lines().collect();
        let cut = [&lines[..5], &lines[lines.len() - 3..]].concat().join("\n");
        rejects(&cut, "is truncated or damaged", pkcs1);
        let bad_b64 = pkcs1.replacen('M', "!", 1);
        rejects(&bad_b64, BAD_BASE64, pkcs1);
        // A body of valid base64 that is not DER.
        rejects(
            &format!(
                "-----BEGIN RSA PRIVATE KEY-----\n{}\n-----END RSA PRIVATE KEY-----",
                b64("hello")
            ),
            BAD_DER,
            pkcs1,
        );

        let enc = text(
            &["pkcs8", "-topk8", "-v2", "aes256", "-passout", "pass:x"],
            Some(pkcs1),
        )
        .unwrap();
        assert!(enc.contains("ENCRYPTED PRIVATE KEY"));
        rejects(&enc, ENCRYPTED, &enc);
        rejects(&b64(&enc), ENCRYPTED, &enc);
        rejects(&b64_lines(&enc).concat(), ENCRYPTED, &enc);
        if let Some(legacy) = text(
            &["rsa", "-traditional", "-aes256", "-passout", "pass:x"],
            Some(pkcs1),
        ) {
            assert!(legacy.contains("Proc-Type: 4,ENCRYPTED"));
            rejects(&legacy, ENCRYPTED, &legacy);
        }

        let ec = text(&["ecparam", "-genkey", "-name", "prime256v1"], None).unwrap();
        assert!(ec.contains("EC PARAMETERS") && ec.contains("EC PRIVATE KEY"));
        rejects(&ec, EC, &ec);
        let ec8 = text(&["pkcs8", "-topk8", "-nocrypt"], Some(&ec)).unwrap();
        rejects(&ec8, EC, &ec8);
        rejects(&b64(&ec8), EC, &ec8);

        if let Some(ed) = text(&["genpkey", "-algorithm", "ed25519"], None) {
            rejects(&ed, ED25519, &ed);
        }
        if let Some(pss) = text(
            &[
                "genpkey",
                "-algorithm",
                "RSA-PSS",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
            ],
            None,
        ) {
            rejects(&pss, "RSA-PSS", &pss);
        }

        let small = text(&["genrsa", "-traditional", "1024"], None).unwrap();
        rejects(
            &small,
            "is a 1024-bit RSA key; at least 2048 bits are required",
            &small,
        );
        rejects(&to_pkcs8(&small), "is a 1024-bit RSA key", &small);

        let public = text(&["rsa", "-pubout"], Some(pkcs1)).unwrap();
        rejects(&public, PUBLIC, &public);
        rejects(&b64_lines(&public).concat(), PUBLIC, &public);
        let rsa_public = text(&["rsa", "-RSAPublicKey_out"], Some(pkcs1)).unwrap();
        rejects(&rsa_public, PUBLIC, &rsa_public);
        rejects(&b64_lines(&rsa_public).concat(), PUBLIC, &rsa_public);
        let cert_der = crate::credentials::cert::tests::test_cert_der(
            (der::UTC_TIME, "240101000000Z"),
            (der::UTC_TIME, "300101000000Z"),
        );
        let cert = crate::credentials::cert::tests::pem("CERTIFICATE", &cert_der, "\n");
        rejects(&cert, PUBLIC, &cert);
        rejects(&b64_lines(&cert).concat(), PUBLIC, &cert);
    }

    #[test]
    fn sizes_other_than_2048() {
        for (bits, want) in [
            ("3072", Ok(3072)),
            ("4096", Ok(4096)),
            ("8192", Err("at most 4096")),
            ("2560", Err("use 2048, 3072 or 4096 bits")),
            ("2056", Err("use 2048, 3072 or 4096 bits")),
        ] {
            // genrsa for 8192 bits takes seconds; skip the slow one in debug builds.
            if bits == "8192" && cfg!(debug_assertions) {
                continue;
            }
            let Some(pem) = text(&["genrsa", "-traditional", bits], None) else {
                return;
            };
            match (RsaPrivateKey::parse("k", &pem), want) {
                (Ok(key), Ok(n)) => assert_eq!(key.bits(), n),
                (Err(e), Err(w)) => assert!(e.to_string().contains(w), "{e}"),
                (got, want) => panic!("{bits}: {:?} vs {want:?}", got.map(|k| k.bits())),
            }
        }
    }

    /// `cargo test --release --lib parse_and_first_sign_timing -- --nocapture`
    #[test]
    fn parse_and_first_sign_timing() {
        let Some(pkcs1) = rsa2048_pkcs1() else { return };
        let pkcs8 = to_pkcs8(pkcs1);
        for (name, pem) in [("pkcs1", pkcs1.to_owned()), ("pkcs8 base64", b64(&pkcs8))] {
            let start = std::time::Instant::now();
            let key = RsaPrivateKey::parse("k", &pem).unwrap();
            let parsed = start.elapsed();
            key.sign_rs256(b"header.claims").unwrap();
            let total = start.elapsed();
            let start = std::time::Instant::now();
            key.sign_rs256(b"header.claims").unwrap();
            eprintln!(
                "timing {name}: parse {parsed:?}, parse + first sign {total:?}, second sign {:?}",
                start.elapsed()
            );
        }
    }
}
