//! Key and certificate fixtures, generated at run time so no private key is ever checked in.
//!
//! These are test fixtures: they panic (with a message) instead of returning errors, because
//! a failure here means a broken build environment, not a condition a test could handle.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use ring::rand::{SecureRandom, SystemRandom};
use rsa::pkcs1::{DecodeRsaPublicKey, EncodeRsaPrivateKey, EncodeRsaPublicKey};
use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
use rsa::rand_core::{CryptoRng, RngCore};
use rsa::{Pkcs1v15Sign, RsaPrivateKey, RsaPublicKey};

use crate::encoding;

/// An RSA key pair in the encodings the action has to read.
#[derive(Clone, Debug)]
pub struct TestKey {
    /// Modulus size in bits.
    pub bits: usize,
    /// `-----BEGIN RSA PRIVATE KEY-----` (PKCS#1), LF line ends.
    pub pkcs1_pem: String,
    /// `-----BEGIN PRIVATE KEY-----` (PKCS#8), LF line ends.
    pub pkcs8_pem: String,
    /// The public key as PKCS#1 `RSAPublicKey` DER (what [`super::JwtClient`] wants).
    pub public_der: Vec<u8>,
}

impl TestKey {
    /// The private key as PKCS#1 `RSAPrivateKey` DER.
    pub fn pkcs1_der(&self) -> Vec<u8> {
        encoding::pem_der(&self.pkcs1_pem)
    }

    /// The private key as PKCS#8 `PrivateKeyInfo` DER.
    pub fn pkcs8_der(&self) -> Vec<u8> {
        encoding::pem_der(&self.pkcs8_pem)
    }

    /// The public key as `-----BEGIN PUBLIC KEY-----` (SubjectPublicKeyInfo), what
    /// `openssl rsa -pubout` writes.
    pub fn public_pem(&self) -> String {
        let public = match RsaPublicKey::from_pkcs1_der(&self.public_der) {
            Ok(public) => public,
            Err(e) => panic!("reading a public key failed: {e}"),
        };
        match public.to_public_key_der() {
            Ok(der) => encoding::pem("PUBLIC KEY", der.as_bytes()),
            Err(e) => panic!("encoding a public key failed: {e}"),
        }
    }

    /// The public key as `-----BEGIN RSA PUBLIC KEY-----` (PKCS#1 `RSAPublicKey`), what
    /// `openssl rsa -RSAPublicKey_out` writes.
    pub fn rsa_public_pem(&self) -> String {
        encoding::pem("RSA PUBLIC KEY", &self.public_der)
    }
}

/// `rand_core` adapter over ring's OS RNG, so key generation needs no extra crate features.
struct OsRng(SystemRandom);

impl RngCore for OsRng {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        self.fill_bytes(&mut b);
        u32::from_le_bytes(b)
    }

    fn next_u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        self.fill_bytes(&mut b);
        u64::from_le_bytes(b)
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        if self.0.fill(dest).is_err() {
            panic!("the OS random number generator failed");
        }
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rsa::rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

impl CryptoRng for OsRng {}

/// Generated keys and the private halves, by size, so a test binary generates each size once.
fn cache() -> &'static Mutex<HashMap<usize, (TestKey, RsaPrivateKey)>> {
    static CACHE: OnceLock<Mutex<HashMap<usize, (TestKey, RsaPrivateKey)>>> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

fn rsa_with_private(bits: usize) -> (TestKey, RsaPrivateKey) {
    // The lock is held during generation on purpose: concurrent tests asking for the same
    // size wait for one key instead of each generating their own.
    let mut cache = cache().lock().unwrap_or_else(|e| e.into_inner());
    if let Some(entry) = cache.get(&bits) {
        return entry.clone();
    }
    let private = match RsaPrivateKey::new(&mut OsRng(SystemRandom::new()), bits) {
        Ok(k) => k,
        Err(e) => panic!("generating a {bits}-bit RSA key failed: {e}"),
    };
    let encoded = (
        private.to_pkcs1_pem(LineEnding::LF),
        private.to_pkcs8_pem(LineEnding::LF),
        RsaPublicKey::from(&private).to_pkcs1_der(),
    );
    let (Ok(pkcs1), Ok(pkcs8), Ok(public)) = encoded else {
        panic!("encoding a {bits}-bit RSA key failed");
    };
    let key = TestKey {
        bits,
        pkcs1_pem: pkcs1.to_string(),
        pkcs8_pem: pkcs8.to_string(),
        public_der: public.as_bytes().to_vec(),
    };
    cache.insert(bits, (key.clone(), private.clone()));
    (key, private)
}

/// An RSA key of `bits` bits (cached per size for the life of the process).
///
/// # Panics
/// If key generation fails (e.g. `bits` is absurd).
pub fn rsa(bits: usize) -> TestKey {
    rsa_with_private(bits).0
}

/// DER `DigestInfo` prefix for SHA-256 (RFC 8017 §9.2 note 1).
const SHA256_DIGEST_INFO: [u8; 19] = [
    0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00,
    0x04, 0x20,
];

/// Signs certificates with the `rsa` crate rather than ring, because ring refuses RSA keys
/// under 2048 bits and tests need certificates for small keys too.
struct RsaCertSigner {
    private: RsaPrivateKey,
    public_der: Vec<u8>,
}

impl rcgen::PublicKeyData for RsaCertSigner {
    fn der_bytes(&self) -> &[u8] {
        &self.public_der
    }

    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        &rcgen::PKCS_RSA_SHA256
    }
}

impl rcgen::SigningKey for RsaCertSigner {
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        let digest = ring::digest::digest(&ring::digest::SHA256, msg);
        let padding = Pkcs1v15Sign {
            hash_len: Some(32),
            prefix: SHA256_DIGEST_INFO.to_vec().into_boxed_slice(),
        };
        self.private
            .sign_with_rng(&mut OsRng(SystemRandom::new()), padding, digest.as_ref())
            .map_err(|_| rcgen::Error::RemoteKeyError)
    }
}

/// A self-signed X.509 certificate (PEM, LF line ends) for `key`, valid between the two Unix
/// times, like the one in AEM service credentials (`CN=ims-action demo`).
///
/// # Panics
/// If the certificate cannot be built (e.g. `key` was not made by [`rsa()`]).
pub fn certificate_pem(key: &TestKey, not_before_unix: i64, not_after_unix: i64) -> String {
    let (cached, private) = rsa_with_private(key.bits);
    let private = if cached.public_der == key.public_der {
        private
    } else {
        panic!("certificate_pem: key is not one generated by keys::rsa");
    };
    let signer = RsaCertSigner {
        private,
        public_der: key.public_der.clone(),
    };
    let mut params = match rcgen::CertificateParams::new(Vec::<String>::new()) {
        Ok(p) => p,
        Err(e) => panic!("certificate parameters: {e}"),
    };
    let mut dn = rcgen::DistinguishedName::new();
    dn.push(rcgen::DnType::CommonName, "ims-action demo");
    dn.push(rcgen::DnType::OrganizationName, "ims-action test fixtures");
    params.distinguished_name = dn;
    // rcgen's date type is `time::OffsetDateTime`, and `time` is not a direct dependency: a
    // closure lets the type be inferred. Start from the epoch and add a std `Duration`.
    let to_datetime = |unix: i64| {
        let epoch = rcgen::date_time_ymd(1970, 1, 1);
        let magnitude = std::time::Duration::from_secs(unix.unsigned_abs());
        if unix >= 0 {
            epoch + magnitude
        } else {
            epoch - magnitude
        }
    };
    params.not_before = to_datetime(not_before_unix);
    params.not_after = to_datetime(not_after_unix);
    match params.self_signed(&signer) {
        Ok(cert) => cert.pem(),
        Err(e) => panic!("self-signing the certificate failed: {e}"),
    }
}

/// A self-signed certificate for the DNS `names` and its P-256 private key, both PEM: what a
/// TLS server of a test (redis-server, say) is started with. Clients trust the certificate
/// itself.
///
/// # Panics
/// If a name is not a valid DNS name or key generation fails.
pub fn tls_server_pem(names: &[&str]) -> (String, String) {
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    match rcgen::generate_simple_self_signed(names) {
        Ok(c) => (c.cert.pem(), c.signing_key.serialize_pem()),
        Err(e) => panic!("a self-signed TLS certificate: {e}"),
    }
}

/// A P-256 private key as PKCS#8 PEM, for "this is not an RSA key" tests.
///
/// # Panics
/// If the OS random number generator fails.
pub fn ec_pkcs8_pem() -> String {
    let rng = SystemRandom::new();
    let doc = match ring::signature::EcdsaKeyPair::generate_pkcs8(
        &ring::signature::ECDSA_P256_SHA256_ASN1_SIGNING,
        &rng,
    ) {
        Ok(doc) => doc,
        Err(_) => panic!("generating a P-256 key failed"),
    };
    encoding::pem("PRIVATE KEY", doc.as_ref())
}

/// An Ed25519 private key as PKCS#8 PEM (v2, with the public key, as ring makes it), for
/// "this is not an RSA key" tests.
///
/// # Panics
/// If the OS random number generator fails.
pub fn ed25519_pkcs8_pem() -> String {
    match ring::signature::Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()) {
        Ok(doc) => encoding::pem("PRIVATE KEY", doc.as_ref()),
        Err(_) => panic!("generating an Ed25519 key failed"),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;
    use ring::signature::{RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY, UnparsedPublicKey};

    #[test]
    fn keys_and_certificates() {
        for bits in [1024, 2048] {
            let key = rsa(bits);
            assert!(key.pkcs1_pem.starts_with("-----BEGIN RSA PRIVATE KEY-----\n"));
            assert!(key.pkcs8_pem.starts_with("-----BEGIN PRIVATE KEY-----\n"));
            assert_eq!(rsa(bits).public_der, key.public_der, "cached");
            // PrivateKeyInfo ends with the OCTET STRING that holds the RSAPrivateKey.
            assert!(key.pkcs8_der().ends_with(&key.pkcs1_der()));
            if bits >= 2048 {
                let pair = ring::signature::RsaKeyPair::from_der(&key.pkcs1_der()).unwrap();
                assert_eq!(pair.public().as_ref(), key.public_der);
            }
            assert_eq!(encoding::pem_der(&key.rsa_public_pem()), key.public_der);
            // SubjectPublicKeyInfo { AlgorithmIdentifier, BIT STRING { 0 unused bits, RSAPublicKey } }
            let spki = encoding::pem_der(&key.public_pem());
            assert!(spki.ends_with(&key.public_der));
            assert_eq!(spki[spki.len() - key.public_der.len() - 1], 0);

            let pem = certificate_pem(&key, 1_700_000_000, 1_700_000_000 + 365 * 86_400);
            assert!(pem.starts_with("-----BEGIN CERTIFICATE-----\n"));
            let der = encoding::pem_der(&pem);
            // Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue }
            let (tbs, _) = encoding::tlv_bounds(&der, 0);
            let (_, tbs_end) = encoding::tlv_bounds(&der, tbs);
            let (_, algorithm_end) = encoding::tlv_bounds(&der, tbs_end);
            let (signature, signature_end) = encoding::tlv_bounds(&der, algorithm_end);
            UnparsedPublicKey::new(&RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY, &key.public_der)
                .verify(&der[tbs..tbs_end], &der[signature + 1..signature_end])
                .unwrap();
        }
        ring::signature::EcdsaKeyPair::from_pkcs8(
            &ring::signature::ECDSA_P256_SHA256_ASN1_SIGNING,
            &encoding::pem_der(&ec_pkcs8_pem()),
            &SystemRandom::new(),
        )
        .unwrap();
        ring::signature::Ed25519KeyPair::from_pkcs8(&encoding::pem_der(&ed25519_pkcs8_pem())).unwrap();
        let (cert, key) = tls_server_pem(&["localhost"]);
        assert_eq!(encoding::pem_label(&cert), "CERTIFICATE");
        assert_eq!(encoding::pem_label(&key), "PRIVATE KEY");
    }
}
