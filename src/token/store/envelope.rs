//! Sealed entries: what a shared store holds, and all it holds.
//!
//! Everything derives from the credential's [`CacheKey`], a SHA-256 of its secret material (client
//! secret, private key) and identity, kept only in memory. HKDF-SHA256 turns it into two keys:
//! an HMAC key that names the entry (so the name reveals neither client id nor secret, and other
//! credentials' entries cannot be found from it) and an AES-256-GCM key that seals it. Each write
//! takes a fresh random nonce; the associated data binds the format version and the entry's name,
//! so an entry copied under another name fails too. A reader without the credential gets
//! nothing; an entry written with another credential, a rotated secret or tampered with fails
//! authentication and is treated as absent.
//!
//! Stored value: `v1.` + base64url(nonce ‖ ciphertext ‖ tag). Plain text inside: the token, its
//! type, and when it was obtained and expires (JSON), at most [`MAX_SEALED`] bytes sealed: a
//! reader of the store never needs to read more than that.
#![deny(clippy::string_slice, clippy::indexing_slicing)]

use base64::Engine;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::hkdf::{HKDF_SHA256, Salt};
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use serde_json::{Value, json};
use zeroize::Zeroizing;

use crate::secret::Secret;
use crate::token::{AccessToken, CacheKey};

/// The format version, in the stored value's prefix and in the associated data.
const VERSION: &str = "v1";
/// HKDF salt: fixed, so that every container derives the same keys from the same credential.
const SALT: &[u8] = b"ims-action token store v1";
/// The largest stored value: an IMS access token is 1 to 3 KiB; this holds one of about 6 KiB.
/// A larger token is not stored (memory still serves it), and a larger value read is not ours.
pub const MAX_SEALED: usize = 8 * 1024;
/// Prefix of every entry name (`^[a-zA-Z0-9-_.]{1,1024}$` allows it, in Redis and Adobe I/O State).
const NAME_PREFIX: &str = "ims-action.v1.";

/// The keys and names of one credential's entry.
pub struct Envelope {
    /// The entry's name: `ims-action.v1.<hex HMAC>`.
    pub name: String,
    /// The name of the single-flight lock beside it.
    pub lock_name: String,
    key: LessSafeKey,
}

impl Envelope {
    /// Derives names and keys from the credential's fingerprint. `None` only if ring refuses
    /// lengths it always accepts (then the shared store is not used).
    pub fn new(key: &CacheKey) -> Option<Envelope> {
        let prk = Salt::new(HKDF_SHA256, SALT).extract(&key.0);
        let name_key: hmac::Key = prk.expand(&[b"entry name"], hmac::HMAC_SHA256).ok()?.into();
        let tag = hmac::sign(&name_key, b"access token");
        let name = format!("{NAME_PREFIX}{}", hex(tag.as_ref()));
        let aes: UnboundKey = prk.expand(&[b"entry key"], &AES_256_GCM).ok()?.into();
        Some(Envelope {
            lock_name: format!("{name}.lock"),
            name,
            key: LessSafeKey::new(aes),
        })
    }

    /// The stored value for `token`, or `None` when the OS has no randomness for a nonce (then
    /// nothing is stored: a repeated nonce would break the cipher) or the token is too large
    /// to store ([`MAX_SEALED`]).
    pub fn seal(&self, token: &AccessToken) -> Option<Vec<u8>> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new().fill(&mut nonce).ok()?;
        // The plaintext holds the token: zeroed when dropped, with room for the tag reserved so
        // that appending it leaves no copy behind in freed memory.
        let plain = json!({
            "access_token": token.token.expose(),
            "token_type": token.token_type,
            "obtained_at_ms": token.obtained_at_ms,
            "expires_at_ms": token.expires_at_ms,
        })
        .to_string();
        let mut data = Zeroizing::new(Vec::with_capacity(plain.len() + AES_256_GCM.tag_len()));
        data.extend_from_slice(plain.as_bytes());
        drop(Zeroizing::new(plain));
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(self.aad()),
                &mut *data,
            )
            .ok()?;
        let mut raw = nonce.to_vec();
        raw.extend_from_slice(&data);
        let mut out = format!("{VERSION}.").into_bytes();
        out.extend_from_slice(
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(raw)
                .as_bytes(),
        );
        (out.len() <= MAX_SEALED).then_some(out)
    }

    /// The token in a stored value, if the value is one this credential sealed under this name.
    pub fn open(&self, stored: &[u8]) -> Result<AccessToken, OpenError> {
        if stored.len() > MAX_SEALED {
            return Err(OpenError::Format);
        }
        let body = stored
            .strip_prefix(format!("{VERSION}.").as_bytes())
            .ok_or(OpenError::Format)?;
        // Opened in place: the plaintext (the token) is zeroed with the buffer.
        let mut raw = Zeroizing::new(
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(body)
                .map_err(|_| OpenError::Format)?,
        );
        if raw.len() < NONCE_LEN + AES_256_GCM.tag_len() {
            return Err(OpenError::Format);
        }
        let (nonce, sealed) = raw.split_at_mut(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| OpenError::Format)?;
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(self.aad()), sealed)
            .map_err(|_| OpenError::Authentication)?;
        let v: Value = serde_json::from_slice(plain).map_err(|_| OpenError::Format)?;
        let field = |name: &str| v.get(name).ok_or(OpenError::Format);
        let token = AccessToken {
            token: Secret::new(field("access_token")?.as_str().ok_or(OpenError::Format)?),
            token_type: field("token_type")?
                .as_str()
                .ok_or(OpenError::Format)?
                .to_string(),
            obtained_at_ms: field("obtained_at_ms")?.as_u64().ok_or(OpenError::Format)?,
            expires_at_ms: field("expires_at_ms")?.as_u64().ok_or(OpenError::Format)?,
        };
        if token.token.expose().is_empty() || token.expires_at_ms <= token.obtained_at_ms {
            return Err(OpenError::Format);
        }
        Ok(token)
    }

    fn aad(&self) -> Vec<u8> {
        format!("ims-action token {VERSION}\0{}", self.name).into_bytes()
    }
}

/// Why a stored value was not accepted. Neither says anything about the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenError {
    /// Not an entry of ours at all.
    Format,
    /// Sealed with another key (another credential, a rotated secret) or tampered with.
    Authentication,
}

impl std::fmt::Display for OpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            OpenError::Format => "not a sealed token entry",
            OpenError::Authentication => {
                "it does not authenticate (another credential, a rotated secret, or tampered with)"
            }
        })
    }
}

/// A random id for a lock owner: 128 bits, hex.
pub fn random_id() -> String {
    let mut bytes = [0u8; 16];
    if SystemRandom::new().fill(&mut bytes).is_err() {
        // No randomness: a clock-derived id still tells owners apart in practice.
        let now = crate::time::Clock::system().now_ms().to_le_bytes();
        let pid = std::process::id().to_le_bytes();
        for (slot, byte) in bytes.iter_mut().zip(now.iter().chain(pid.iter())) {
            *slot = *byte;
        }
    }
    hex(&bytes)
}

fn hex(bytes: &[u8]) -> String {
    crate::hex::lower(bytes)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::indexing_slicing, reason = "tests")]

    use super::*;

    fn token() -> AccessToken {
        AccessToken {
            token: Secret::new("eyJhbGciOi.secret-token-body.sig"),
            token_type: "bearer".into(),
            obtained_at_ms: 1_000,
            expires_at_ms: 86_401_000,
        }
    }

    #[test]
    fn a_sealed_token_opens_with_the_same_credential_only() {
        let e = Envelope::new(&CacheKey([7; 32])).unwrap();
        let sealed = e.seal(&token()).unwrap();
        assert_eq!(e.open(&sealed).unwrap(), token());
        let other = Envelope::new(&CacheKey([8; 32])).unwrap();
        assert_ne!(other.name, e.name);
        assert_eq!(other.open(&sealed), Err(OpenError::Authentication));
    }

    #[test]
    fn names_are_stable_keyed_and_store_safe() {
        let a = Envelope::new(&CacheKey([7; 32])).unwrap();
        let b = Envelope::new(&CacheKey([7; 32])).unwrap();
        assert_eq!(a.name, b.name);
        assert_eq!(a.lock_name, format!("{}.lock", a.name));
        assert!(a.name.len() <= 1024);
        assert!(
            a.name
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || b"-_.".contains(&c))
        );
        // The name is not the fingerprint itself (which is a plain SHA-256 of the credential).
        assert!(!a.name.contains(&CacheKey([7; 32]).hex()));
    }

    #[test]
    fn each_write_has_its_own_nonce_and_hides_the_token() {
        let e = Envelope::new(&CacheKey([7; 32])).unwrap();
        let (x, y) = (e.seal(&token()).unwrap(), e.seal(&token()).unwrap());
        assert_ne!(x, y);
        let text = String::from_utf8(x).unwrap();
        assert!(text.starts_with("v1."));
        assert!(!text.contains("secret-token-body"));
    }

    #[test]
    fn tampering_anywhere_fails_authentication() {
        let e = Envelope::new(&CacheKey([7; 32])).unwrap();
        let sealed = e.seal(&token()).unwrap();
        for i in 3..sealed.len() {
            let mut t = sealed.clone();
            t[i] = if t[i] == b'A' { b'B' } else { b'A' };
            assert!(e.open(&t).is_err(), "byte {i}");
        }
        assert_eq!(e.open(b"v2.abc"), Err(OpenError::Format));
        assert_eq!(e.open(b""), Err(OpenError::Format));
        assert_eq!(e.open(b"v1.!!!"), Err(OpenError::Format));
    }

    #[test]
    fn a_token_too_large_to_store_is_not_stored_and_a_large_value_not_read() {
        let e = Envelope::new(&CacheKey([7; 32])).unwrap();
        let mut big = token();
        big.token = Secret::new("t".repeat(MAX_SEALED));
        assert_eq!(e.seal(&big), None);
        let mut jwt = token();
        jwt.token = Secret::new("t".repeat(5_000));
        assert!(e.seal(&jwt).is_some_and(|s| s.len() <= MAX_SEALED));
        let mut long = b"v1.".to_vec();
        long.resize(MAX_SEALED + 1, b'A');
        assert_eq!(e.open(&long), Err(OpenError::Format));
    }

    #[test]
    fn an_entry_moved_under_another_name_fails() {
        // Same key material, another name: the associated data differs.
        let e = Envelope::new(&CacheKey([7; 32])).unwrap();
        let sealed = e.seal(&token()).unwrap();
        let mut moved = Envelope::new(&CacheKey([7; 32])).unwrap();
        moved.name.push('x');
        assert_eq!(moved.open(&sealed), Err(OpenError::Authentication));
    }
}
