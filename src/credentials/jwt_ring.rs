//! jsonwebtoken's `CryptoProvider`, backed by ring: RS256 signing only.
//!
//! jsonwebtoken (10.3 and later) signs through whichever `CryptoProvider` the process installed.
//! Its own two backends would bring the `rsa` crate (RUSTSEC-2023-0071, a timing side channel)
//! or aws-lc-rs (a second crypto library, and a slow first signature). ring is linked anyway
//! through rustls, and its RSA signing is constant time.
//!
//! jsonwebtoken hands the provider only the key's DER, once per signature: it is parsed here with
//! ring again. A signature happens once per token fetch (a day per credential with the cache),
//! so the ~10 µs that costs is not worth any cleverness.

use std::sync::Once;

use jsonwebtoken::crypto::{CryptoProvider, JwtSigner, JwtVerifier, KeyUtils};
use jsonwebtoken::errors::{Error as JwtError, ErrorKind, Result as JwtResult};
use jsonwebtoken::signature::{Error as SignatureError, Signer};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, EncodingKey};

use crate::credentials::private_key::RsaPrivateKey;
use crate::error::Error;

static RING_RS256: CryptoProvider = CryptoProvider {
    signer_factory: rs256_signer,
    verifier_factory: no_verifier,
    key_utils: KeyUtils {
        rsa_pub_components_from_private_key: |_| Err(no_jwk()),
        rsa_pub_components_from_public_key: |_| Err(no_jwk()),
        ec_pub_components_from_private_key: |_, _| Err(no_jwk()),
        ed_pub_components_from_private_key: |_, _| Err(no_jwk()),
        compute_digest: |_, _| Err(no_jwk()),
    },
};

/// Installs the ring provider as the process's jsonwebtoken provider (the first call tries,
/// later calls only check). Call before any `jsonwebtoken::encode`.
///
/// Fails if another provider got there first: it might not sign in constant time.
pub fn install() -> Result<(), Error> {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        // An Err here means another provider is installed; the check below reports it.
        let _ = RING_RS256.install_default();
    });
    match CryptoProvider::try_get_default() {
        Some(installed) if std::ptr::eq(installed, &RING_RS256) => Ok(()),
        _ => Err(Error::Internal(
            "another jsonwebtoken CryptoProvider is installed in this process; \
             ims-action signs JWTs only with its own (ring, constant time)"
                .into(),
        )),
    }
}

struct Rs256Signer(RsaPrivateKey);

impl Signer<Vec<u8>> for Rs256Signer {
    fn try_sign(&self, message: &[u8]) -> Result<Vec<u8>, SignatureError> {
        // jsonwebtoken reports any signer failure as `ErrorKind::Signing`; the caller, who
        // knows the key's input name, turns that into `RsaPrivateKey::signing_failed`.
        self.0.sign_rs256(message).map_err(|_| SignatureError::new())
    }
}

impl JwtSigner for Rs256Signer {
    fn algorithm(&self) -> Algorithm {
        Algorithm::RS256
    }
}

fn rs256_signer(alg: &Algorithm, key: &EncodingKey) -> JwtResult<Box<dyn JwtSigner>> {
    if *alg != Algorithm::RS256 {
        return Err(ErrorKind::UnsupportedAlgorithm.into());
    }
    if key.family() != AlgorithmFamily::Rsa {
        return Err(ErrorKind::InvalidKeyFormat.into());
    }
    let key = RsaPrivateKey::parse_der("EncodingKey", key.as_bytes())
        .map_err(|e| ErrorKind::InvalidRsaKey(e.to_string()))?;
    Ok(Box::new(Rs256Signer(key)))
}

fn no_verifier(_: &Algorithm, _: &DecodingKey) -> JwtResult<Box<dyn JwtVerifier>> {
    Err(ErrorKind::Provider("ims-action's ring provider signs RS256 JWTs; it does not verify".into()).into())
}

fn no_jwk() -> JwtError {
    ErrorKind::Provider("ims-action's ring provider does not build JWKs".into()).into()
}
