//! jsonwebtoken's `CryptoProvider`, backed by ring: RS256 signing only.
//!
//! jsonwebtoken (10.3 and later) signs through whichever `CryptoProvider` the process installed.
//! Its own two backends would bring the `rsa` crate (RUSTSEC-2023-0071, a timing side channel)
//! or aws-lc-rs (a second crypto library, and a slow first signature). ring is linked anyway
//! through rustls, and its RSA signing is constant time.
//!
//! jsonwebtoken hands the provider only the key's DER, once per signature. Parsing it with ring
//! again costs about 0.3 M instructions, 2-3 % of a cold JWT activation, so [`signing_with`] lends
//! the provider the key already parsed for the signature it is about to make; the DER is parsed
//! only when it is some other key.

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
    /// The parsed key of the signature being made on this thread ([`signing_with`]).
    static LENT: RefCell<Option<Arc<RsaPrivateKey>>> = const { RefCell::new(None) };
}

/// Runs `sign` (a `jsonwebtoken::encode` with `key`'s encoding key) with `key` lent to the
/// provider, so that it need not parse the DER again.
pub fn signing_with<T>(key: &Arc<RsaPrivateKey>, sign: impl FnOnce() -> T) -> T {
    struct Return;
    impl Drop for Return {
        fn drop(&mut self) {
            LENT.with(|l| *l.borrow_mut() = None);
        }
    }
    LENT.with(|l| *l.borrow_mut() = Some(Arc::clone(key)));
    let _return = Return;
    sign()
}

/// The lent key, if `der` is its DER.
fn lent(der: &[u8]) -> Option<Arc<RsaPrivateKey>> {
    LENT.with(|l| {
        l.borrow()
            .as_ref()
            .filter(|k| k.encoding_key().as_bytes() == der)
            .map(Arc::clone)
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
    if let Some(parsed) = lent(key.as_bytes()) {
        return Ok(Box::new(Rs256Signer(parsed)));
    }
    let key = RsaPrivateKey::parse_der("EncodingKey", key.as_bytes())
        .map_err(|e| ErrorKind::InvalidRsaKey(e.to_string()))?;
    Ok(Box::new(Rs256Signer(Arc::new(key))))
}

fn no_verifier(_: &Algorithm, _: &DecodingKey) -> JwtResult<Box<dyn JwtVerifier>> {
    Err(ErrorKind::Provider("ims-action's ring provider signs RS256 JWTs; it does not verify".into()).into())
}

fn no_jwk() -> JwtError {
    ErrorKind::Provider("ims-action's ring provider does not build JWKs".into()).into()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn key(bits: usize) -> Arc<RsaPrivateKey> {
        Arc::new(RsaPrivateKey::parse("k", &adobe_emulator::keys::rsa(bits).pkcs8_pem).unwrap())
    }

    /// The key is lent for its own signature only: not outside [`signing_with`], not for
    /// another key's DER, and not after a signature that panicked.
    #[test]
    fn the_parsed_key_is_lent_only_for_its_own_signature() {
        let (mine, other) = (key(2048), key(3072));
        let der = mine.encoding_key().as_bytes();
        assert!(lent(der).is_none());
        signing_with(&mine, || {
            assert!(lent(der).is_some_and(|k| Arc::ptr_eq(&k, &mine)));
            assert!(lent(other.encoding_key().as_bytes()).is_none());
        });
        assert!(lent(der).is_none());
        let _ = std::panic::catch_unwind(|| signing_with(&mine, || panic!("signing failed")));
        assert!(lent(der).is_none());
    }
}
