//! jsonwebtoken's `CryptoProvider`, backed by ring: RS256 signing only.
//!
//! jsonwebtoken (10.3 and later) signs through whichever `CryptoProvider` the process installed.
//! Its own two backends would bring the `rsa` crate (RUSTSEC-2023-0071, a timing side channel)
//! or aws-lc-rs (a second crypto library, and a slow first signature). ring is linked anyway
//! through rustls, and its RSA signing is constant time.
//!
//! jsonwebtoken hands the provider only the key's DER, once per signature. Parsing it again
//! for every signature would undo the per-process key cache (`parse_key_cached`), so [`lend`]
//! lets the signer find the key the caller already parsed; DER from anyone else is parsed
//! here, with the project's own checks.

use std::cell::RefCell;
use std::sync::{Arc, Once};

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

thread_local! {
    /// The parsed key [`lend`] is running with on this thread.
    static LENT: RefCell<Option<Arc<RsaPrivateKey>>> = const { RefCell::new(None) };
}

/// Runs `sign` with `key` lent to the provider: a signer asked for `key.encoding_key()` signs
/// with the already parsed `key` instead of parsing its DER again.
pub fn lend<T>(key: &Arc<RsaPrivateKey>, sign: impl FnOnce() -> T) -> T {
    /// Puts back what was lent before, also when `sign` panics.
    struct Restore(Option<Arc<RsaPrivateKey>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            LENT.set(self.0.take());
        }
    }
    let _restore = Restore(LENT.replace(Some(Arc::clone(key))));
    sign()
}

/// The lent key, if `der` is its very `EncodingKey`. Identity, not equal bytes: comparing
/// private key bytes would not be constant time, and the same bytes elsewhere parse anyway.
fn lent_key(der: &EncodingKey) -> Option<Arc<RsaPrivateKey>> {
    LENT.with_borrow(|lent| {
        lent.as_ref()
            .filter(|key| std::ptr::eq(key.encoding_key().as_bytes(), der.as_bytes()))
            .cloned()
    })
}

struct Rs256Signer(Arc<RsaPrivateKey>);

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
    let key = match lent_key(key) {
        Some(parsed) => parsed,
        None => Arc::new(
            RsaPrivateKey::parse_der("EncodingKey", key.as_bytes())
                .map_err(|e| ErrorKind::InvalidRsaKey(e.to_string()))?,
        ),
    };
    Ok(Box::new(Rs256Signer(key)))
}

fn no_verifier(_: &Algorithm, _: &DecodingKey) -> JwtResult<Box<dyn JwtVerifier>> {
    Err(ErrorKind::Provider("ims-action's ring provider signs RS256 JWTs; it does not verify".into()).into())
}

fn no_jwk() -> JwtError {
    ErrorKind::Provider("ims-action's ring provider does not build JWKs".into()).into()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    /// The warm path signs with the key parsed once per process; a copy of its DER is not
    /// mistaken for it, and nothing stays lent afterwards.
    #[test]
    fn lend_hands_the_parsed_key_to_the_signer() {
        let pem = adobe_emulator::keys::rsa(2048).pkcs1_pem;
        let key = Arc::new(RsaPrivateKey::parse("k", &pem).unwrap());
        let copy = EncodingKey::from_rsa_der(key.encoding_key().as_bytes());
        assert!(lent_key(key.encoding_key()).is_none());
        lend(&key, || {
            let lent = lent_key(key.encoding_key()).unwrap();
            assert!(Arc::ptr_eq(&lent, &key));
            assert!(lent_key(&copy).is_none());
            let other = Arc::new(RsaPrivateKey::parse("k", &pem).unwrap());
            lend(&other, || {
                assert!(Arc::ptr_eq(&lent_key(other.encoding_key()).unwrap(), &other));
                assert!(lent_key(key.encoding_key()).is_none());
            });
            assert!(Arc::ptr_eq(&lent_key(key.encoding_key()).unwrap(), &key));
        });
        assert!(lent_key(key.encoding_key()).is_none());
    }
}
