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
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use adobe_emulator::fixtures::{self, certificate_der, pem, pem_with_eol};
    use adobe_emulator::keys;

    fn cert_pem(not_after: (u8, &str)) -> String {
        pem(
            "CERTIFICATE",
            &certificate_der((der::UTC_TIME, "240101000000Z"), not_after),
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
        let der = certificate_der((der::UTC_TIME, "240101000000Z"), (der::UTC_TIME, "300101000000Z"));
        let crlf = pem_with_eol("CERTIFICATE", &der, "\r\n");
        assert_eq!(certificate_not_after("p", &crlf).unwrap(), 1_893_456_000);
        let escaped = pem_with_eol("CERTIFICATE", &der, "\\n");
        assert_eq!(certificate_not_after("p", &escaped).unwrap(), 1_893_456_000);

        // v1 certificate: no [0] version.
        let v1 =
            fixtures::certificate_v1_der((der::UTC_TIME, "240101000000Z"), (der::UTC_TIME, "300101000000Z"));
        assert_eq!(
            certificate_not_after("p", &pem("CERTIFICATE", &v1)).unwrap(),
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
        not_pem(&pem("PUBLIC KEY", &[0x30, 0]));

        let damaged = |s: &str| {
            let e = certificate_not_after("p", s).unwrap_err();
            assert_eq!(e, Error::invalid("p", DAMAGED), "{s:?}");
        };
        let good = cert_pem((der::UTC_TIME, "300101000000Z"));
        damaged(&good[..good.len() / 2]);
        damaged("-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n");
        damaged(&pem("CERTIFICATE", b"\x30\x03\x02\x01\x00"));
        damaged(&pem("CERTIFICATE", &[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]));
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

    /// Cross-check against certificates another encoder wrote (rcgen, correctly signed): UTCTime
    /// before 2050, GeneralizedTime from 2050 on (RFC 5280 §4.1.2.5), to the second.
    #[test]
    fn certificates_from_another_encoder() {
        let key = keys::rsa(2048);
        for not_after in [
            1_767_225_600,     // 2026-01-01T00:00:00Z
            1_893_455_999,     // 2029-12-31T23:59:59Z
            2_524_607_999,     // 2049-12-31T23:59:59Z, the last UTCTime
            2_524_608_000,     // 2050-01-01T00:00:00Z, GeneralizedTime
            4_102_444_800 + 1, // 2100-01-01T00:00:01Z
        ] {
            let pem = keys::certificate_pem(&key, 1_700_000_000, not_after);
            assert_eq!(
                certificate_not_after("p", &pem).unwrap(),
                not_after,
                "{not_after}"
            );
            // The notAfter's tag, found by walking the DER (searching the bytes could match
            // inside the key or the signature).
            let der = fixtures::pem_der(&pem);
            let (tbs, _) = fixtures::tlv_bounds(&der, 0);
            let (first, _) = fixtures::tlv_bounds(&der, tbs);
            let (_, mut at) = fixtures::tlv_bounds(&der, first);
            let at_version = der[first] == 0xa0;
            for _ in 0..(if at_version { 3 } else { 2 }) {
                at = fixtures::tlv_bounds(&der, at).1; // serial, signature algorithm, issuer
            }
            let (validity, _) = fixtures::tlv_bounds(&der, at);
            let (_, not_after_at) = fixtures::tlv_bounds(&der, validity);
            let expected = if not_after >= 2_524_608_000 {
                der::GENERALIZED_TIME
            } else {
                der::UTC_TIME
            };
            assert_eq!(der[not_after_at], expected, "{not_after}");
        }
    }
}
