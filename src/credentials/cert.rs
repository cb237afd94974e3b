//! The expiry date of an X.509 certificate, read with a minimal DER walk.
//!
//! AEM service credentials carry the certificate whose key signs the JWT; when it has expired,
//! IMS answers with an opaque `invalid_signature`, so we read `notAfter` to say so plainly. Only
//! the path to `validity` is parsed: pulling in an X.509 crate for one date is not worth it.

use crate::der;
use crate::error::Error;
use crate::pem::{pem_blocks, unpaste};

const NOT_PEM: &str = "publicKey is not a PEM certificate";
const DAMAGED: &str = "certificate is damaged";

/// Unix time (seconds) of a PEM X.509 certificate's notAfter. `input` names the parameter in errors.
pub fn certificate_not_after(input: &str, pem: &str) -> Result<i64, Error> {
    let text = unpaste(pem);
    let block = pem_blocks(&text)
        .into_iter()
        .find(|b| b.label == "CERTIFICATE")
        .ok_or_else(|| Error::invalid(input, NOT_PEM))?;
    if !block.has_end {
        return Err(Error::invalid(input, DAMAGED));
    }
    let der = block.der().ok_or_else(|| Error::invalid(input, DAMAGED))?;
    not_after_der(&der).ok_or_else(|| Error::invalid(input, DAMAGED))
}

/// Certificate → tbsCertificate → (skip [0] version, serialNumber, signature, issuer) →
/// validity → notAfter.
fn not_after_der(der: &[u8]) -> Option<i64> {
    let cert = der::Reader::new(der).expect(der::SEQUENCE)?;
    let mut tbs = der::Reader::new(der::Reader::new(cert).expect(der::SEQUENCE)?);
    if tbs.peek_tag() == Some(der::VERSION_TAG) {
        tbs.read()?;
    }
    tbs.expect(der::INTEGER)?; // serialNumber
    tbs.expect(der::SEQUENCE)?; // signature AlgorithmIdentifier
    tbs.expect(der::SEQUENCE)?; // issuer Name
    let mut validity = der::Reader::new(tbs.expect(der::SEQUENCE)?);
    let (tag, _) = validity.read()?; // notBefore
    if tag != der::UTC_TIME && tag != der::GENERALIZED_TIME {
        return None;
    }
    let (tag, value) = validity.read()?;
    parse_time(tag, value)
}

/// UTCTime `YYMMDDHHMMSSZ` (RFC 5280 pivot: YY ≥ 50 is 19YY) or GeneralizedTime
/// `YYYYMMDDHHMMSSZ`, to Unix seconds.
fn parse_time(tag: u8, value: &[u8]) -> Option<i64> {
    let (year, rest) = match (tag, value.len()) {
        (der::UTC_TIME, 13) => {
            let yy = digits(&value[..2])?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, &value[2..])
        }
        (der::GENERALIZED_TIME, 15) => (digits(&value[..4])?, &value[4..]),
        _ => return None,
    };
    if rest[10] != b'Z' {
        return None;
    }
    let month = digits(&rest[0..2])?;
    let day = digits(&rest[2..4])?;
    let hour = digits(&rest[4..6])?;
    let minute = digits(&rest[6..8])?;
    let second = digits(&rest[8..10])?;
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + hour * 3_600 + minute * 60 + second)
}

/// ASCII decimal digits to a number; `None` on anything else.
fn digits(s: &[u8]) -> Option<i64> {
    s.iter().try_fold(0i64, |acc, &b| {
        b.is_ascii_digit().then(|| acc * 10 + i64::from(b - b'0'))
    })
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a date whose month and day were checked by the caller.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    crate::time::days_from_civil(year, month as u32, day as u32)
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use base64::Engine as _;

    pub(crate) fn tlv(tag: u8, value: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        let len = value.len();
        if len < 0x80 {
            out.push(len as u8);
        } else if len < 0x100 {
            out.extend([0x81, len as u8]);
        } else {
            out.extend([0x82, (len >> 8) as u8, len as u8]);
        }
        out.extend_from_slice(value);
        out
    }

    fn seq(parts: &[Vec<u8>]) -> Vec<u8> {
        tlv(der::SEQUENCE, &parts.concat())
    }

    /// A structurally valid self-signed-looking certificate (the signature is junk: only the
    /// shape matters here).
    pub(crate) fn test_cert_der(not_before: (u8, &str), not_after: (u8, &str)) -> Vec<u8> {
        let sha256_rsa = seq(&[
            tlv(der::OID, &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b]),
            tlv(0x05, &[]),
        ]);
        // Name: SEQUENCE { SET { SEQUENCE { OID commonName, UTF8String "test" } } }
        let name = seq(&[tlv(
            0x31,
            &seq(&[tlv(der::OID, &[0x55, 0x04, 0x03]), tlv(0x0c, b"test")]),
        )]);
        let spki = seq(&[
            seq(&[
                tlv(der::OID, &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01]),
                tlv(0x05, &[]),
            ]),
            tlv(
                der::BIT_STRING,
                &[
                    &[0u8][..],
                    &seq(&[tlv(der::INTEGER, &[0x00, 0xc1]), tlv(der::INTEGER, &[1, 0, 1])]),
                ]
                .concat(),
            ),
        ]);
        let tbs = seq(&[
            tlv(der::VERSION_TAG, &tlv(der::INTEGER, &[2])),
            tlv(der::INTEGER, &[0x01, 0x23, 0x45]),
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
            tbs,
            sha256_rsa,
            tlv(der::BIT_STRING, &[0, 0xde, 0xad, 0xbe, 0xef]),
        ])
    }

    pub(crate) fn pem(label: &str, der: &[u8], eol: &str) -> String {
        let b64 = base64::engine::general_purpose::STANDARD.encode(der);
        let mut out = format!("-----BEGIN {label}-----{eol}");
        for chunk in b64.as_bytes().chunks(64) {
            out.push_str(std::str::from_utf8(chunk).unwrap());
            out.push_str(eol);
        }
        out.push_str(&format!("-----END {label}-----{eol}"));
        out
    }

    fn cert_pem(not_after: (u8, &str)) -> String {
        pem(
            "CERTIFICATE",
            &test_cert_der((der::UTC_TIME, "240101000000Z"), not_after),
            "\n",
        )
    }

    #[test]
    fn utc_time() {
        let t = certificate_not_after("p", &cert_pem((der::UTC_TIME, "300101000000Z"))).unwrap();
        assert_eq!(t, 1_893_456_000);
        let t = certificate_not_after("p", &cert_pem((der::UTC_TIME, "491231235959Z"))).unwrap();
        assert_eq!(t, 2_524_607_999);
        // 50-year pivot: 50 is 1950.
        let t = certificate_not_after("p", &cert_pem((der::UTC_TIME, "500101000000Z"))).unwrap();
        assert_eq!(t, -631_152_000);
        let t = certificate_not_after("p", &cert_pem((der::UTC_TIME, "240229120000Z"))).unwrap();
        assert_eq!(t, 1_709_208_000);
    }

    #[test]
    fn generalized_time_past_2050() {
        let t = certificate_not_after("p", &cert_pem((der::GENERALIZED_TIME, "20500101000000Z"))).unwrap();
        assert_eq!(t, 2_524_608_000);
        let t = certificate_not_after("p", &cert_pem((der::GENERALIZED_TIME, "99991231235959Z"))).unwrap();
        assert_eq!(t, 253_402_300_799);
    }

    #[test]
    fn crlf_escapes_and_no_version() {
        let der = test_cert_der((der::UTC_TIME, "240101000000Z"), (der::UTC_TIME, "300101000000Z"));
        let crlf = pem("CERTIFICATE", &der, "\r\n");
        assert_eq!(certificate_not_after("p", &crlf).unwrap(), 1_893_456_000);
        let escaped = pem("CERTIFICATE", &der, "\\n");
        assert_eq!(certificate_not_after("p", &escaped).unwrap(), 1_893_456_000);

        // v1 certificate: no [0] version.
        let mut r = der::Reader::new(&der);
        let mut cert = der::Reader::new(r.expect(der::SEQUENCE).unwrap());
        let mut tbs = der::Reader::new(cert.expect(der::SEQUENCE).unwrap());
        tbs.read().unwrap();
        let mut rest = Vec::new();
        while let Some((tag, v)) = tbs.read() {
            rest.push(tlv(tag, v));
        }
        let v1 = seq(&[seq(&rest), tlv(der::SEQUENCE, &[]), tlv(der::BIT_STRING, &[0])]);
        assert_eq!(
            certificate_not_after("p", &pem("CERTIFICATE", &v1, "\n")).unwrap(),
            1_893_456_000
        );
    }

    #[test]
    fn garbage() {
        let not_pem = |s: &str| {
            let e = certificate_not_after("AEM_SERVICE_CREDENTIALS", s).unwrap_err();
            assert_eq!(e, Error::invalid("AEM_SERVICE_CREDENTIALS", NOT_PEM), "{s:?}");
        };
        not_pem("");
        not_pem("hello");
        not_pem(&pem("PUBLIC KEY", &[0x30, 0], "\n"));

        let damaged = |s: &str| {
            let e = certificate_not_after("p", s).unwrap_err();
            assert_eq!(e, Error::invalid("p", DAMAGED), "{s:?}");
        };
        let good = cert_pem((der::UTC_TIME, "300101000000Z"));
        damaged(&good[..good.len() / 2]);
        damaged("-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n");
        damaged(&pem("CERTIFICATE", b"\x30\x03\x02\x01\x00", "\n"));
        damaged(&pem("CERTIFICATE", &[0x30, 0x84, 0xff, 0xff, 0xff, 0xff], "\n"));
        damaged(&cert_pem((der::UTC_TIME, "301301000000Z"))); // month 13
        damaged(&cert_pem((der::UTC_TIME, "230229000000Z"))); // not a leap year
        damaged(&cert_pem((der::UTC_TIME, "3001010000Z"))); // no seconds
        damaged(&cert_pem((der::GENERALIZED_TIME, "20300101000000+0100")));
        damaged(&cert_pem((der::OCTET_STRING, "300101000000Z")));
    }

    #[test]
    fn days_from_civil_matches_known_dates() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 951_868_800 / 86_400);
        assert_eq!(days_from_civil(1969, 12, 31), -1);
    }

    /// Cross-check against OpenSSL when it is installed.
    #[test]
    fn openssl_certificate() {
        let Some(pem) = crate::credentials::private_key::tests::openssl(
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                "/dev/null",
                "-subj",
                "/CN=t",
                "-days",
                "1",
            ],
            None,
        ) else {
            return;
        };
        let pem = String::from_utf8(pem).unwrap();
        let not_after = certificate_not_after("p", &pem).unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        assert!((not_after - now - 86_400).abs() < 120, "{not_after} vs {now}");
    }
}
