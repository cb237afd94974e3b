//! Single flight: on a miss in memory, the shared store; on a miss there, one container fetches
//! from IMS while the others wait for its token. Any store trouble sends the activation to IMS.

use super::envelope::{Envelope, random_id};
use super::{Claim, Session, Waited};
use crate::error::Error;
use crate::token::{AccessToken, CacheKey, TokenCache};

/// Claims in a row: a claimer that lets go without a token (its fetch failed) gets one more
/// round before this container fetches on its own.
const CLAIM_ROUNDS: usize = 2;

/// The token for `key` when memory has none fresh: from the shared store, from another
/// container's fetch, or from `fetch` (IMS). What comes back is kept in `local`. `refused` is a
/// token the API just refused, which must not come back from the store.
pub fn token(
    local: &TokenCache,
    key: &CacheKey,
    session: Option<&mut Session>,
    refused: Option<&AccessToken>,
    fetch: impl FnOnce() -> Result<AccessToken, Error>,
) -> Result<AccessToken, Error> {
    let keep = |token: AccessToken| {
        local.put(key, &token);
        token
    };
    // The envelope (key derivation) only when there is a store to use it with.
    let Some((session, env)) = session.and_then(|s| Some((s, Envelope::new(key)?))) else {
        return fetch().map(keep);
    };
    if let Some(token) = session.read(&env, refused) {
        return Ok(keep(token));
    }
    let owner = random_id();
    for _ in 0..CLAIM_ROUNDS {
        match session.claim(&env, &owner) {
            Claim::Ours => {
                // Another container may have fetched, stored and let go between our read and
                // our claim: look once more before asking IMS.
                if let Some(token) = session.read(&env, refused) {
                    session.release(&env, &owner);
                    return Ok(keep(token));
                }
                let fetched = fetch();
                if let Ok(token) = &fetched {
                    session.write(&env, token);
                }
                session.release(&env, &owner);
                return fetched.map(keep);
            }
            Claim::Taken => match session.wait(&env, refused) {
                Waited::Token(token) => return Ok(keep(token)),
                Waited::LockGone => continue,
                Waited::GaveUp => break,
            },
            Claim::Unavailable => break,
        }
    }
    let fetched = fetch()?;
    session.write(&env, &fetched);
    Ok(keep(fetched))
}

/// Drops a token the API refused from every layer: memory, the file, and the shared store (only
/// if it still holds that very token, so that a newer one another container stored stays).
pub fn forget(local: &TokenCache, key: &CacheKey, session: Option<&mut Session>, refused: &AccessToken) {
    local.remove(key);
    if let Some((session, env)) = session.and_then(|s| Some((s, Envelope::new(key)?))) {
        session.forget(&env, refused);
    }
}
