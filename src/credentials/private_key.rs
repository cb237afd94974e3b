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
use zeroize::Zeroizing;

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
/// (constant time). The DER copy is zeroed on drop (jsonwebtoken's `EncodingKey` does it), and so
/// is every copy made while parsing; ring's `RsaKeyPair` offers no way to zero its own.
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
        // Every copy of the key made here is overwritten when dropped (`Zeroizing`).
        let text = Zeroizing::new(unpaste(text).into_owned());
        if text.is_empty() {
            return Err(bad(EMPTY));
        }
        if text.contains("-----BEGIN ") {
            return Self::from_pem(input, &text);
        }
        // No PEM armour: base64 of the PEM (the App Builder `.env` recipe), or of bare DER.
        let decoded = Zeroizing::new(crate::document::base64(&text).ok_or_else(|| bad(NOT_A_KEY))?);
        match std::str::from_utf8(&decoded) {
            Ok(pem) if pem.contains("-----BEGIN ") => {
                Self::from_pem(input, &Zeroizing::new(unpaste(pem).into_owned()))
            }
            _ => Self::from_sniffed_der(input, &decoded),
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
        let der = Zeroizing::new(block.der().ok_or_else(|| bad(BAD_BASE64))?);
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
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use adobe_emulator::{fixtures, keys};
    use base64::Engine as _;

    /// Asserts the error is a 400 for `JWT_PRIVATE_KEY` whose reason contains `want`, and that
    /// the message quotes no part of `secret`.
    fn rejects(text: &str, want: &str, secret: &str) {
        let err = RsaPrivateKey::parse("JWT_PRIVATE_KEY", text).unwrap_err();
        let msg = err.to_string();
        assert_eq!(err.status_code(), 400, "{msg}");
        assert!(msg.starts_with("invalid parameter 'JWT_PRIVATE_KEY': "), "{msg}");
        assert!(msg.contains(want), "{msg:?} should contain {want:?}");
        for fragment in fixtures::key_fragments(secret) {
            assert!(!msg.contains(&fragment), "message leaks key material: {msg}");
        }
    }

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    /// The PEM body without its armour, on one line: base64 of the bare DER.
    fn bare(pem: &str) -> String {
        fixtures::pem_body_lines(pem).concat()
    }

    #[test]
    fn accepts_pkcs1_and_pkcs8_in_pasted_shapes() {
        let key = keys::rsa(2048);
        let (pkcs1, pkcs8) = (key.pkcs1_pem.as_str(), key.pkcs8_pem.as_str());
        assert!(pkcs8.starts_with("-----BEGIN PRIVATE KEY-----"));
        let reference = RsaPrivateKey::parse("k", pkcs1).unwrap();
        assert_eq!(reference.bits(), 2048);
        assert_eq!(reference.public_key_der(), key.public_der);
        assert_eq!(format!("{reference:?}"), "RsaPrivateKey(****)");

        for pem in [pkcs1, pkcs8] {
            let mut shapes = fixtures::pasted_shapes(pem);
            assert!(shapes.len() >= 13, "{}", shapes.len());
            shapes.push((
                "a certificate bundled before the key",
                format!("{}\n{pem}", fixtures::pem("CERTIFICATE", &[0x30, 0])),
            ));
            for (name, shape) in &shapes {
                let key = RsaPrivateKey::parse("k", shape).unwrap_or_else(|e| panic!("{name}: {e}"));
                assert_eq!(key.public_key_der(), reference.public_key_der(), "{name}");
            }
        }
        // Bare DER, as parse_der takes it.
        for der in [key.pkcs1_der(), key.pkcs8_der()] {
            let parsed = RsaPrivateKey::parse_der("k", &der).unwrap();
            assert_eq!(parsed.public_key_der(), reference.public_key_der());
        }
    }

    #[test]
    fn signature_verifies() {
        let key = RsaPrivateKey::parse("k", &keys::rsa(2048).pkcs1_pem).unwrap();
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
        let key = keys::rsa(2048);
        let (pkcs1, pkcs8) = (key.pkcs1_pem.as_str(), key.pkcs8_pem.as_str());

        rejects("", EMPTY, "");
        rejects("  \"\" ", EMPTY, "");
        rejects("not a key at all!", NOT_A_KEY, "");
        rejects("aGVsbG8gd29ybGQ=", NOT_A_KEY, "");
        rejects("-----BEGIN FOO-----\nAAAA\n-----END FOO-----\n", NOT_A_KEY, "");

        let half = &pkcs1[..pkcs1.len() / 2];
        rejects(half, NO_END, pkcs1);
        rejects(&b64(half), NO_END, pkcs1);
        rejects(&pkcs8[..pkcs8.len() / 2], NO_END, pkcs8);

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

        // Encrypted: PKCS#8 (openssl pkcs8 -topk8 -v2 aes256) and the legacy RFC 1421 headers
        // (openssl rsa -aes256).
        let enc = fixtures::encrypted_pkcs8_pem();
        assert!(enc.contains("ENCRYPTED PRIVATE KEY"));
        rejects(&enc, ENCRYPTED, &enc);
        rejects(&b64(&enc), ENCRYPTED, &enc);
        rejects(&bare(&enc), ENCRYPTED, &enc);
        let legacy = fixtures::legacy_encrypted_pem();
        assert!(legacy.contains("Proc-Type: 4,ENCRYPTED"));
        rejects(&legacy, ENCRYPTED, &legacy);
        rejects(&b64(&legacy), ENCRYPTED, &legacy);

        // Other algorithms, under their own labels and in PKCS#8.
        let ec = fixtures::ec_sec1_pem();
        assert!(ec.contains("EC PARAMETERS") && ec.contains("EC PRIVATE KEY"));
        rejects(&ec, EC, &ec);
        let ec8 = keys::ec_pkcs8_pem();
        rejects(&ec8, EC, &ec8);
        rejects(&b64(&ec8), EC, &ec8);
        rejects(&bare(&ec8), EC, &ec8);
        let ed = keys::ed25519_pkcs8_pem();
        rejects(&ed, ED25519, &ed);
        let ed448 = fixtures::ed448_pkcs8_pem();
        rejects(&ed448, "is an Ed448 key, not RSA", &ed448);
        let pss = fixtures::rsa_pss_pkcs8_pem(&key);
        rejects(&pss, "RSA-PSS", &pss);
        for dsa in [fixtures::dsa_pkcs8_pem(), fixtures::dsa_traditional_pem()] {
            rejects(&dsa, "is a DSA key, not RSA", &dsa);
        }
        let x25519 = fixtures::x25519_pkcs8_pem();
        rejects(&x25519, NOT_RSA, &x25519);
        let openssh = fixtures::pem("OPENSSH PRIVATE KEY", b"openssh-key-v1\0");
        rejects(&openssh, "ssh-keygen -p -m PEM", &openssh);

        let small = keys::rsa(1024);
        rejects(
            &small.pkcs1_pem,
            "is a 1024-bit RSA key; at least 2048 bits are required",
            &small.pkcs1_pem,
        );
        rejects(&small.pkcs8_pem, "is a 1024-bit RSA key", &small.pkcs8_pem);

        // Public halves and certificates: as PEM and as bare DER.
        let public = key.public_pem();
        rejects(&public, PUBLIC, &public);
        rejects(&bare(&public), PUBLIC, &public);
        let rsa_public = key.rsa_public_pem();
        rejects(&rsa_public, PUBLIC, &rsa_public);
        rejects(&bare(&rsa_public), PUBLIC, &rsa_public);
        let cert_der =
            fixtures::certificate_der((der::UTC_TIME, "240101000000Z"), (der::UTC_TIME, "300101000000Z"));
        let cert = fixtures::pem("CERTIFICATE", &cert_der);
        rejects(&cert, PUBLIC, &cert);
        rejects(&bare(&cert), PUBLIC, &cert);
        let signed = keys::certificate_pem(&key, 1_700_000_000, 1_800_000_000);
        rejects(&signed, PUBLIC, &signed);
        rejects(&bare(&signed), PUBLIC, &signed);
    }

    #[test]
    fn sizes_other_than_2048() {
        // An 8192-bit modulus is refused by its size before anything else is read, so a
        // hand-written key with that modulus stands in for one that takes minutes to generate.
        let huge = fixtures::pem("RSA PRIVATE KEY", &fixtures::rsa_pkcs1_der_of_size(8192));
        let err = RsaPrivateKey::parse("k", &huge).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid parameter 'k': is a 8192-bit RSA key; at most 4096 bits are supported"
        );
        for (bits, want) in [
            (3072, Ok(3072)),
            (4096, Ok(4096)),
            (2560, Err("use 2048, 3072 or 4096 bits")),
            (2056, Err("use 2048, 3072 or 4096 bits")),
        ] {
            let pem = keys::rsa(bits).pkcs1_pem;
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
        let key = keys::rsa(2048);
        for (name, pem) in [
            ("pkcs1", key.pkcs1_pem.clone()),
            ("pkcs8 base64", b64(&key.pkcs8_pem)),
        ] {
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
