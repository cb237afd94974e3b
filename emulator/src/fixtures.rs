//! Test fixtures around the keys of [`crate::keys`]: PEM armour and the shapes people paste it
//! in, DER written by hand for what no pure-Rust generator makes (keys of other kinds, encrypted
//! keys, certificates with any validity encoding, damaged keys), and the fragments of a key that
//! must never show up in a message.
//!
//! One home for every test of the workspace (the emulator's, the action's unit tests and its
//! end-to-end tests), so that no test needs a tool such as `openssl` on the machine. Like
//! [`crate::keys`], these panic with a message instead of returning errors.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::rand::{SecureRandom, SystemRandom};

use crate::keys::{self, TestKey};

pub use crate::encoding::{
    base64_wrapped, oid, pem, pem_body_lines, pem_der, pem_label, pem_with_eol, seq, tag, tlv, tlv_bounds,
};

/// `pem` in every shape it arrives in through environment variables, `.env` files, JSON
/// downloads and consoles, each with a name for failure messages. Every shape is a different
/// text; the action must read the same key from each.
pub fn pasted_shapes(pem: &str) -> Vec<(&'static str, String)> {
    let crlf = pem.replace('\n', "\r\n");
    let mut shapes = vec![
        ("as is", pem.to_owned()),
        ("CRLF line ends", crlf.clone()),
        ("literal \\n escapes", pem.replace('\n', "\\n")),
        ("literal \\r\\n escapes", pem.replace('\n', "\\r\\n")),
        ("spaces for line breaks", pem.replace('\n', " ")),
        (
            "a JSON string with \\n escapes, padded",
            format!("  \"{}\"\n", pem.replace('\n', "\\n")),
        ),
        ("single-quoted", format!("'{pem}'")),
        ("base64 of the PEM", STANDARD.encode(pem)),
        (
            "base64 of the PEM wrapped at 76",
            base64_wrapped(pem.as_bytes(), 76),
        ),
        (
            "base64 of the PEM wrapped at 64, CRLF",
            base64_wrapped(pem.as_bytes(), 64).replace('\n', "\r\n"),
        ),
        (
            "double-quoted base64 of the PEM",
            format!("\"{}\"", STANDARD.encode(pem)),
        ),
        // base64 of PEM text never holds `+` or `/` (no PEM character ends a 3-byte group in
        // `>`, `?` or `~`), so base64url differs from base64 only by its missing padding, and
        // not at all when the PEM's length is a multiple of 3: that duplicate is dropped below.
        ("base64url of the PEM, no padding", URL_SAFE_NO_PAD.encode(pem)),
        ("base64 of the CRLF PEM", STANDARD.encode(&crlf)),
        (
            "base64 of the DER (the PEM body, unwrapped)",
            pem_body_lines(pem).concat(),
        ),
    ];
    let mut seen = std::collections::HashSet::new();
    shapes.retain(|(_, text)| seen.insert(text.clone()));
    shapes
}

/// Every 16-character window of every body line of `pem`: what a message leaking any part of
/// the key would contain.
pub fn key_fragments(pem: &str) -> Vec<String> {
    pem_body_lines(pem)
        .into_iter()
        .flat_map(|line| {
            let chars: Vec<char> = line.chars().collect();
            chars
                .windows(16.min(chars.len()))
                .map(|w| w.iter().collect::<String>())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// An AlgorithmIdentifier: the OID and, when given, its parameters.
fn algorithm(oid: &[u8], parameters: Option<Vec<u8>>) -> Vec<u8> {
    let mut parts = vec![tlv(tag::OID, oid)];
    parts.extend(parameters);
    seq(&parts)
}

/// A PKCS#8 v1 `PrivateKeyInfo` (RFC 5958) with this algorithm and private key octets.
fn private_key_info(algorithm: Vec<u8>, private_key: &[u8]) -> Vec<u8> {
    seq(&[
        tlv(tag::INTEGER, &[0]),
        algorithm,
        tlv(tag::OCTET_STRING, private_key),
    ])
}

/// `n` random bytes: material for look-alikes whose contents do not matter.
fn random(n: usize) -> Vec<u8> {
    let mut bytes = vec![0; n];
    if SystemRandom::new().fill(&mut bytes).is_err() {
        panic!("the OS random number generator failed");
    }
    bytes
}

/// An INTEGER of `n` random bytes, positive, with the top bit of its first byte set.
fn big_integer(n: usize) -> Vec<u8> {
    let mut value = random(n);
    value[0] |= 0x80;
    value.insert(0, 0);
    tlv(tag::INTEGER, &value)
}

// ---- certificates --------------------------------------------------------------------------

/// A certificate's `Time`: its tag (UTCTime, GeneralizedTime or anything else) and its text,
/// written as given, valid or not (`(tag::UTC_TIME, "300101000000Z")`).
pub type Time<'a> = (u8, &'a str);

/// A structurally valid X.509 v3 certificate (CN=test, a tiny RSA key) whose validity is
/// encoded exactly as given. Its signature is junk: only the shape matters to readers of its
/// dates. For well-formed, correctly signed certificates use [`keys::certificate_pem`].
pub fn certificate_der(not_before: Time, not_after: Time) -> Vec<u8> {
    certificate(true, not_before, not_after)
}

/// The same as [`certificate_der`], as an X.509 v1 certificate (no `[0] version`).
pub fn certificate_v1_der(not_before: Time, not_after: Time) -> Vec<u8> {
    certificate(false, not_before, not_after)
}

fn certificate(v3: bool, not_before: Time, not_after: Time) -> Vec<u8> {
    let sha256_rsa = algorithm(oid::SHA256_WITH_RSA, Some(tlv(tag::NULL, &[])));
    // Name: SEQUENCE { SET { SEQUENCE { commonName, UTF8String "test" } } }
    let name = seq(&[tlv(
        tag::SET,
        &seq(&[tlv(tag::OID, oid::COMMON_NAME), tlv(tag::UTF8_STRING, b"test")]),
    )]);
    let tiny_rsa_public = seq(&[tlv(tag::INTEGER, &[0x00, 0xc1]), tlv(tag::INTEGER, &[1, 0, 1])]);
    let spki = seq(&[
        algorithm(oid::RSA, Some(tlv(tag::NULL, &[]))),
        tlv(tag::BIT_STRING, &[&[0u8][..], &tiny_rsa_public].concat()),
    ]);
    let mut tbs = Vec::new();
    if v3 {
        tbs.push(tlv(tag::CONTEXT_0, &tlv(tag::INTEGER, &[2])));
    }
    tbs.extend([
        tlv(tag::INTEGER, &[0x01, 0x23, 0x45]),
        sha256_rsa.clone(),
        name.clone(),
        seq(&[
            tlv(not_before.0, not_before.1.as_bytes()),
            tlv(not_after.0, not_after.1.as_bytes()),
        ]),
        name,
        spki,
    ]);
    seq(&[
        seq(&tbs),
        sha256_rsa,
        tlv(tag::BIT_STRING, &[0, 0xde, 0xad, 0xbe, 0xef]),
    ])
}

// ---- keys that are not plain RSA private keys -----------------------------------------------

/// A P-256 key as `openssl ecparam -genkey -name prime256v1` writes it: an `EC PARAMETERS`
/// block (the curve's OID), then the SEC1 `EC PRIVATE KEY` (RFC 5915), here taken out of the
/// PKCS#8 that ring generates.
pub fn ec_sec1_pem() -> String {
    let pkcs8 = pem_der(&keys::ec_pkcs8_pem());
    // PrivateKeyInfo { version, AlgorithmIdentifier, OCTET STRING { ECPrivateKey } }
    let (info, _) = tlv_bounds(&pkcs8, 0);
    let (_, version_end) = tlv_bounds(&pkcs8, info);
    let (_, algorithm_end) = tlv_bounds(&pkcs8, version_end);
    let (sec1_start, sec1_end) = tlv_bounds(&pkcs8, algorithm_end);
    format!(
        "{}{}",
        pem("EC PARAMETERS", &tlv(tag::OID, oid::P256)),
        pem("EC PRIVATE KEY", &pkcs8[sec1_start..sec1_end])
    )
}

/// An RSA-PSS private key as `openssl genpkey -algorithm RSA-PSS` writes it: PKCS#8 whose
/// algorithm is id-RSASSA-PSS (no parameters) around an ordinary `RSAPrivateKey`.
pub fn rsa_pss_pkcs8_pem(key: &TestKey) -> String {
    pem(
        "PRIVATE KEY",
        &private_key_info(algorithm(oid::RSA_PSS, None), &key.pkcs1_der()),
    )
}

/// A DSA private key in PKCS#8, written by hand (no pure-Rust DSA generator): id-dsa with
/// `Dss-Parms { p, q, g }` and the private INTEGER x, all random numbers of the usual sizes.
/// Nothing can sign with it; it only has to look like DSA.
pub fn dsa_pkcs8_pem() -> String {
    let params = seq(&[big_integer(256), big_integer(32), big_integer(256)]);
    pem(
        "PRIVATE KEY",
        &private_key_info(algorithm(oid::DSA, Some(params)), &big_integer(32)),
    )
}

/// A DSA private key as OpenSSL's traditional format labels it (`DSA PRIVATE KEY`:
/// `SEQUENCE { 0, p, q, g, y, x }`), with random numbers, written by hand.
pub fn dsa_traditional_pem() -> String {
    let der = seq(&[
        tlv(tag::INTEGER, &[0]),
        big_integer(256),
        big_integer(32),
        big_integer(256),
        big_integer(256),
        big_integer(32),
    ]);
    pem("DSA PRIVATE KEY", &der)
}

/// An Ed448 private key in PKCS#8 (RFC 8410: id-Ed448, `OCTET STRING { 57 random bytes }`),
/// written by hand: ring does not do Ed448.
pub fn ed448_pkcs8_pem() -> String {
    pem(
        "PRIVATE KEY",
        &private_key_info(algorithm(oid::ED448, None), &tlv(tag::OCTET_STRING, &random(57))),
    )
}

/// An X25519 private key in PKCS#8 (RFC 8410), written by hand: a key of an algorithm that
/// is neither RSA nor any signature algorithm.
pub fn x25519_pkcs8_pem() -> String {
    pem(
        "PRIVATE KEY",
        &private_key_info(algorithm(oid::X25519, None), &tlv(tag::OCTET_STRING, &random(32))),
    )
}

/// The DER of an encrypted PKCS#8 key as `openssl pkcs8 -topk8 -v2 aes256` writes it
/// (`EncryptedPrivateKeyInfo`, RFC 5958: PBES2 with PBKDF2-HMAC-SHA256 and AES-256-CBC), written
/// by hand: the salt, IV and "ciphertext" are random bytes of the sizes OpenSSL uses for a
/// 2048-bit key, which nobody can decrypt. Readers must refuse it by its shape.
pub fn encrypted_pkcs8_der() -> Vec<u8> {
    let pbkdf2 = algorithm(
        oid::PBKDF2,
        Some(seq(&[
            tlv(tag::OCTET_STRING, &random(8)),
            tlv(tag::INTEGER, &[0x08, 0x00]),
            algorithm(oid::HMAC_SHA256, Some(tlv(tag::NULL, &[]))),
        ])),
    );
    let aes = algorithm(oid::AES256_CBC, Some(tlv(tag::OCTET_STRING, &random(16))));
    seq(&[
        algorithm(oid::PBES2, Some(seq(&[pbkdf2, aes]))),
        tlv(tag::OCTET_STRING, &random(1232)),
    ])
}

/// [`encrypted_pkcs8_der`] as PEM (`ENCRYPTED PRIVATE KEY`).
pub fn encrypted_pkcs8_pem() -> String {
    pem("ENCRYPTED PRIVATE KEY", &encrypted_pkcs8_der())
}

/// An RSA key in OpenSSL's legacy encrypted PEM (`openssl rsa -aes256`): the `RSA PRIVATE KEY`
/// label with RFC 1421 `Proc-Type` and `DEK-Info` headers, written by hand with a random IV and
/// random "ciphertext".
pub fn legacy_encrypted_pem() -> String {
    let iv: String = random(16).iter().map(|b| format!("{b:02X}")).collect();
    format!(
        "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-256-CBC,{iv}\n\n{}\n-----END RSA PRIVATE KEY-----\n",
        base64_wrapped(&random(1200), 64)
    )
}

/// A PKCS#1 `RSAPrivateKey` whose modulus has `bits` bits, written by hand: every other part
/// is a small junk number. For size checks that must come before anything else is read (an
/// 8192-bit key takes minutes to generate in a debug build).
pub fn rsa_pkcs1_der_of_size(bits: usize) -> Vec<u8> {
    let mut modulus = random(bits.div_ceil(8));
    modulus[0] = match bits % 8 {
        0 => modulus[0] | 0x80,
        top => (modulus[0] | (1 << (top - 1))) & ((1 << top) - 1),
    };
    if modulus[0] & 0x80 != 0 {
        modulus.insert(0, 0); // INTEGERs are signed
    }
    let mut parts = vec![tlv(tag::INTEGER, &[0]), tlv(tag::INTEGER, &modulus)];
    parts.extend((0..7).map(|_| tlv(tag::INTEGER, &[0x01, 0x01])));
    seq(&parts)
}

/// `der` (a PKCS#1 `RSAPrivateKey` or a PKCS#8 `PrivateKeyInfo` holding one) with one bit of
/// its CRT exponent dP flipped (bit 1 of its last byte, so dP stays odd as ring wants it):
/// it still parses (ring does not check dP against d) but cannot sign (ring verifies each
/// signature it makes).
pub fn with_damaged_dp(der: &[u8]) -> Vec<u8> {
    let (outer, _) = tlv_bounds(der, 0);
    let (_, first_end) = tlv_bounds(der, outer);
    // PKCS#8: version, then an AlgorithmIdentifier (a SEQUENCE) and the OCTET STRING.
    let pkcs1_at = if der[first_end] == tag::SEQUENCE {
        let (_, algorithm_end) = tlv_bounds(der, first_end);
        tlv_bounds(der, algorithm_end).0
    } else {
        0
    };
    // RSAPrivateKey { version, n, e, d, p, q, dP, dQ, qInv }
    let (mut at, _) = tlv_bounds(der, pkcs1_at);
    for _ in ["version", "n", "e", "d", "p", "q"] {
        at = tlv_bounds(der, at).1;
    }
    let (_, dp_end) = tlv_bounds(der, at);
    let mut damaged = der.to_vec();
    damaged[dp_end - 1] ^= 2;
    damaged
}

/// [`with_damaged_dp`] of a PEM key, armoured again with the same label.
pub fn damaged_dp_pem(key_pem: &str) -> String {
    pem(pem_label(key_pem), &with_damaged_dp(&pem_der(key_pem)))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;
    use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};

    #[test]
    fn pem_round_trips_in_every_line_ending() {
        let der: Vec<u8> = (0..=255).collect();
        for eol in ["\n", "\r\n"] {
            let text = pem_with_eol("THING", &der, eol);
            assert!(text.starts_with(&format!("-----BEGIN THING-----{eol}")));
            assert_eq!(pem_label(&text), "THING");
            assert_eq!(pem_der(&text), der);
            assert!(pem_body_lines(&text).iter().all(|l| l.len() <= 64));
        }
        assert_eq!(tlv(0x04, &[0; 0x80])[..3], [0x04, 0x81, 0x80]);
        assert_eq!(tlv(0x04, &[0; 0x1234])[..4], [0x04, 0x82, 0x12, 0x34]);
        assert_eq!(tlv(0x04, &[0; 0x12345])[..5], [0x04, 0x83, 0x01, 0x23, 0x45]);
    }

    #[test]
    fn pasted_shapes_are_different_texts_of_the_same_pem() {
        let key = keys::rsa(1024);
        for pem in [&key.pkcs1_pem, &key.pkcs8_pem] {
            let shapes = pasted_shapes(pem);
            // base64url is dropped only when it equals base64 (no padding to leave out).
            let padded = STANDARD.encode(pem).ends_with('=');
            assert_eq!(shapes.len(), if padded { 14 } else { 13 });
            let text = |name: &str| &shapes.iter().find(|(n, _)| *n == name).unwrap().1;
            assert_eq!(
                STANDARD.decode(text("base64 of the PEM")).unwrap(),
                pem.as_bytes()
            );
            assert_eq!(
                STANDARD
                    .decode(text("base64 of the DER (the PEM body, unwrapped)"))
                    .unwrap(),
                pem_der(pem)
            );
        }
        let fragments = key_fragments(&key.pkcs1_pem);
        assert_eq!(fragments[0], pem_body_lines(&key.pkcs1_pem)[0][..16]);
        assert!(fragments.iter().all(|f| f.len() == 16));
    }

    #[test]
    fn sizes_and_damage_are_where_they_say() {
        for bits in [8192, 8191, 2056] {
            let der = rsa_pkcs1_der_of_size(bits);
            // SEQUENCE (4-byte header), version (3 bytes), then the modulus INTEGER.
            let (start, end) = tlv_bounds(&der, 7);
            let n = &der[start..end];
            let n = &n[n.iter().take_while(|&&b| b == 0).count()..];
            assert_eq!(n.len() * 8 - n[0].leading_zeros() as usize, bits);
        }
        let key = keys::rsa(2048);
        for der in [key.pkcs1_der(), key.pkcs8_der()] {
            let damaged = with_damaged_dp(&der);
            assert_eq!(damaged.len(), der.len());
            assert_eq!(damaged.iter().zip(&der).filter(|(a, b)| a != b).count(), 1);
        }
        let damaged = RsaKeyPair::from_der(&with_damaged_dp(&key.pkcs1_der())).unwrap();
        let mut signature = vec![0; damaged.public().modulus_len()];
        let signed = damaged.sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), b"m", &mut signature);
        assert!(signed.is_err(), "a damaged dP must not sign");
        assert_eq!(pem_label(&damaged_dp_pem(&key.pkcs8_pem)), "PRIVATE KEY");
    }

    #[test]
    fn look_alikes_have_their_labels() {
        let ec = ec_sec1_pem();
        assert!(ec.starts_with("-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n"));
        assert!(ec.contains("-----BEGIN EC PRIVATE KEY-----"));
        assert_eq!(pem_label(&encrypted_pkcs8_pem()), "ENCRYPTED PRIVATE KEY");
        assert!(legacy_encrypted_pem().contains("Proc-Type: 4,ENCRYPTED"));
        assert_eq!(pem_label(&dsa_traditional_pem()), "DSA PRIVATE KEY");
        for pkcs8 in [
            dsa_pkcs8_pem(),
            ed448_pkcs8_pem(),
            x25519_pkcs8_pem(),
            rsa_pss_pkcs8_pem(&keys::rsa(1024)),
        ] {
            assert_eq!(pem_label(&pkcs8), "PRIVATE KEY");
            assert_eq!(pem_der(&pkcs8)[0], tag::SEQUENCE);
        }
        let v3 = certificate_der((tag::UTC_TIME, "240101000000Z"), (tag::UTC_TIME, "300101000000Z"));
        let v1 = certificate_v1_der((tag::UTC_TIME, "240101000000Z"), (tag::UTC_TIME, "300101000000Z"));
        assert_eq!(v3.len(), v1.len() + 5);
        assert!(v3.windows(13).any(|w| w == b"300101000000Z"));
    }
}
