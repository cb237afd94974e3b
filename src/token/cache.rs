//! The token cache: one token per credential for its whole life, not one per call.
//!
//! In memory for actionloop and the Node launcher (one process, many activations). In one-shot
//! mode (one process per activation in a warm dockerskeleton container) also in a file under the
//! temp directory: mode 0600 in a 0700 folder, written atomically, and ignored when corrupt,
//! unreadable or not ours. Only successful fetches are stored.
//!
//! A miss is fetched once per credential in the process ([`TokenCache::single_flight`]): when a
//! burst of activations finds no token, the first fetches it and the others wait for that fetch,
//! each within its own deadline.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::access_token::AccessToken;
use crate::credentials::CacheKey;
use crate::error::{Error, Service};
use crate::http::Budget;
use crate::secret::Secret;

/// A token file: the token and its times, under the key that names the file.
#[derive(Serialize, Deserialize)]
struct TokenFile {
    key: String,
    access_token: String,
    token_type: String,
    expires_at_ms: u64,
    obtained_at_ms: u64,
}

/// When a cached token was obtained and when it expires (Unix milliseconds), without the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenTimes {
    /// When it was fetched.
    pub obtained_at_ms: u64,
    /// When it expires.
    pub expires_at_ms: u64,
}

impl TokenTimes {
    fn of(token: &AccessToken) -> TokenTimes {
        TokenTimes {
            obtained_at_ms: token.obtained_at_ms,
            expires_at_ms: token.expires_at_ms,
        }
    }
}

/// Tokens by credential fingerprint.
pub struct TokenCache {
    memory: Mutex<HashMap<CacheKey, AccessToken>>,
    dir: Option<PathBuf>,
    /// Fetches under way, by credential: who comes while one is in flight waits for it.
    flights: Mutex<HashMap<CacheKey, Arc<Flight>>>,
}

/// One fetch under way, and its outcome once it has landed.
#[derive(Default)]
struct Flight {
    outcome: Mutex<Option<Result<AccessToken, Error>>>,
    landed: Condvar,
}

impl Flight {
    fn land(&self, outcome: Result<AccessToken, Error>) {
        {
            let mut slot = lock(&self.outcome);
            slot.get_or_insert(outcome);
        }
        self.landed.notify_all();
    }

    /// The outcome once landed; `None` when `budget` runs out first.
    fn wait(&self, budget: &Budget) -> Option<Result<AccessToken, Error>> {
        let mut slot = lock(&self.outcome);
        loop {
            if let Some(outcome) = slot.as_ref() {
                return Some(outcome.clone());
            }
            // Without a deadline, the fetch waited for ends on its own HTTP timeouts; the wait
            // wakes now and then only to look again.
            let wait = match budget.left() {
                Some(left) if left.is_zero() => return None,
                Some(left) => left.min(Duration::from_secs(1)),
                None => Duration::from_secs(1),
            };
            slot = self
                .landed
                .wait_timeout(slot, wait)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

/// The fetch a leader runs: landed and forgotten however the leader leaves, a panic included,
/// so that no one waits for a fetch that will never land.
struct Lead<'a> {
    flights: &'a Mutex<HashMap<CacheKey, Arc<Flight>>>,
    key: CacheKey,
    flight: Arc<Flight>,
}

impl Drop for Lead<'_> {
    fn drop(&mut self) {
        self.flight.land(Err(Error::Internal(
            "the token request this activation waited for failed unexpectedly".into(),
        )));
        let mut flights = lock(self.flights);
        if flights
            .get(&self.key)
            .is_some_and(|f| Arc::ptr_eq(f, &self.flight))
        {
            flights.remove(&self.key);
        }
    }
}

impl TokenCache {
    /// A cache that lives as long as the process.
    pub fn in_memory() -> TokenCache {
        TokenCache {
            memory: Mutex::new(HashMap::new()),
            dir: None,
            flights: Mutex::new(HashMap::new()),
        }
    }

    /// A cache that also keeps tokens in files under `dir` (created 0700 when missing).
    pub fn with_dir(dir: PathBuf) -> TokenCache {
        TokenCache {
            memory: Mutex::new(HashMap::new()),
            dir: Some(dir),
            flights: Mutex::new(HashMap::new()),
        }
    }

    /// The default folder of the file store: `$TMPDIR/ims-action-tokens`.
    pub fn default_dir() -> PathBuf {
        std::env::temp_dir().join("ims-action-tokens")
    }

    /// A fresh token for `key` at `now_ms`, if one is cached.
    pub fn get(&self, key: &CacheKey, now_ms: u64) -> Option<AccessToken> {
        if let Some(t) = lock(&self.memory).get(key).filter(|t| t.is_fresh(now_ms)) {
            return Some(t.clone());
        }
        let dir = self.dir.as_ref()?;
        let token = read_file(&dir.join(file_name(key)), key)?;
        if !token.is_fresh(now_ms) {
            return None;
        }
        {
            let mut m = lock(&self.memory);
            m.insert(key.clone(), token.clone());
        }
        Some(token)
    }

    /// When the token cached for `key` was obtained and when it expires, if one is fresh at
    /// `now_ms`: what the health operation shows. It never hands out the token itself, and never
    /// promotes a file entry into memory (a look must not change what it looks at).
    pub fn peek(&self, key: &CacheKey, now_ms: u64) -> Option<TokenTimes> {
        let fresh = |t: &AccessToken| t.is_fresh(now_ms).then(|| TokenTimes::of(t));
        if let Some(times) = lock(&self.memory).get(key).and_then(fresh) {
            return Some(times);
        }
        let dir = self.dir.as_ref()?;
        read_file(&dir.join(file_name(key)), key).as_ref().and_then(fresh)
    }

    /// Stores a token just fetched.
    pub fn put(&self, key: &CacheKey, token: &AccessToken) {
        {
            let mut m = lock(&self.memory);
            // Expired entries go when a new one comes in; a process serves few credentials.
            let now = token.obtained_at_ms;
            m.retain(|_, t| t.expires_at_ms > now);
            // Callers can send a new credential per activation (a developer token, say): bound
            // the map so that a warm container's memory cannot be grown without end.
            const MAX_ENTRIES: usize = 256;
            if m.len() >= MAX_ENTRIES {
                m.clear();
            }
            m.insert(key.clone(), token.clone());
        }
        if let Some(dir) = &self.dir
            && let Err(e) = write_file(dir, key, token)
        {
            log::debug!("token cache file not written: {e}");
        }
    }

    /// Runs `fetch` for `key` unless a fetch for it is already under way in this process, in
    /// which case this waits for that one's outcome (a token, or the error it ended with) within
    /// `budget`. A fetch that ran out of its own activation's time is not shared: the waiters
    /// still have theirs, and the next of them fetches. A token cached meanwhile (by a fetch
    /// that ended between the caller's look and this call) is used, unless it is `refused`.
    pub fn single_flight(
        &self,
        key: &CacheKey,
        budget: &Budget,
        refused: Option<&AccessToken>,
        fetch: impl FnOnce() -> Result<AccessToken, Error>,
    ) -> Result<AccessToken, Error> {
        let mut fetch = Some(fetch);
        loop {
            let mut flights = lock(&self.flights);
            let joined = flights.get(key).cloned();
            let Some(flight) = joined else {
                let flight = Arc::new(Flight::default());
                flights.insert(key.clone(), Arc::clone(&flight));
                drop(flights);
                let lead = Lead {
                    flights: &self.flights,
                    key: key.clone(),
                    flight,
                };
                let cached = self
                    .get(key, budget.clock().now_ms())
                    .filter(|t| refused.is_none_or(|r| r.token != t.token));
                let outcome = match (cached, fetch.take()) {
                    (Some(token), _) => Ok(token),
                    (None, Some(f)) => f(),
                    (None, None) => Err(Error::Internal("a token fetch ran twice".into())),
                };
                lead.flight.land(outcome.clone());
                return outcome;
            };
            drop(flights);
            log::debug!("waiting for another activation's token request");
            match flight.wait(budget) {
                Some(Err(Error::Timeout { .. })) => continue,
                Some(outcome) => return outcome,
                None => {
                    return Err(Error::Timeout {
                        service: Service::Ims,
                        detail: "no time left before the activation deadline while another \
                                 activation's token request was under way"
                            .into(),
                    });
                }
            }
        }
    }

    /// Drops a token (the API refused it).
    pub fn remove(&self, key: &CacheKey) {
        {
            let mut m = lock(&self.memory);
            m.remove(key);
        }
        if let Some(dir) = &self.dir {
            let _ = fs::remove_file(dir.join(file_name(key)));
        }
    }
}

fn file_name(key: &CacheKey) -> String {
    format!("{}.json", key.hex())
}

/// Our effective uid: the owner of `/proc/self`.
fn my_uid() -> Option<u32> {
    fs::metadata("/proc/self").ok().map(|m| m.uid())
}

/// A file we may trust: a regular file, ours, readable by nobody else.
fn is_ours(meta: &fs::Metadata, dir: bool) -> bool {
    let kind_ok = if dir { meta.is_dir() } else { meta.is_file() };
    kind_ok && Some(meta.uid()) == my_uid() && meta.mode() & 0o077 == 0
}

fn read_file(path: &Path, key: &CacheKey) -> Option<AccessToken> {
    let meta = fs::symlink_metadata(path).ok()?;
    if !is_ours(&meta, false) || meta.len() > 64 * 1024 {
        log::debug!("token cache file ignored: not ours or not private");
        return None;
    }
    let dir_meta = fs::symlink_metadata(path.parent()?).ok()?;
    if !is_ours(&dir_meta, true) {
        return None;
    }
    let bytes = fs::read(path).ok()?;
    let Ok(file) = serde_json::from_slice::<TokenFile>(&bytes) else {
        log::debug!("token cache file ignored: unreadable or corrupt");
        return None;
    };
    if file.key != key.hex() || file.expires_at_ms <= file.obtained_at_ms || file.access_token.is_empty() {
        return None;
    }
    Some(AccessToken {
        token: Secret::new(file.access_token),
        token_type: file.token_type,
        expires_at_ms: file.expires_at_ms,
        obtained_at_ms: file.obtained_at_ms,
    })
}

/// Files kept at most: callers can vary credentials per activation, and a warm container's disk
/// must not fill up with their tokens.
pub const MAX_FILES: usize = 256;

/// Empties the folder when it holds [`MAX_FILES`] entries: it is a cache, so losing entries
/// costs one token request each, and counting is all a write may afford.
fn prune(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else { return };
    let entries: Vec<_> = entries.filter_map(Result::ok).collect();
    if entries.len() >= MAX_FILES {
        log::debug!("token cache folder full ({} files): emptying it", entries.len());
        for entry in entries {
            let _ = fs::remove_file(entry.path());
        }
    }
}

fn write_file(dir: &Path, key: &CacheKey, token: &AccessToken) -> std::io::Result<()> {
    match fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    if !is_ours(&fs::symlink_metadata(dir)?, true) {
        return Err(std::io::Error::other("cache folder is not ours or not private"));
    }
    prune(dir);
    let body = serde_json::to_vec(&TokenFile {
        key: key.hex(),
        access_token: token.token.expose().to_string(),
        token_type: token.token_type.clone(),
        expires_at_ms: token.expires_at_ms,
        obtained_at_ms: token.obtained_at_ms,
    })
    .map_err(std::io::Error::other)?;
    let tmp = dir.join(format!("{}.{}.tmp", key.hex(), std::process::id()));
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)?;
    // No fsync: it cost more than the rest of a cold start, and a file torn by a crash is
    // ignored as corrupt on the next read; the rename keeps readers from seeing partial writes.
    let written = f.write_all(&body);
    if let Err(e) = written.and_then(|()| fs::rename(&tmp, dir.join(file_name(key)))) {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    Ok(())
}

/// The guarded value even after a panic elsewhere: what these locks guard is whole after every
/// step, so poisoning is only a flag, and a caught panic in one activation must not switch the
/// part off for every later one.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(expires: u64) -> AccessToken {
        AccessToken {
            token: Secret::new("tok"),
            token_type: "bearer".into(),
            expires_at_ms: expires,
            obtained_at_ms: 0,
        }
    }

    fn temp_dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("ims-action-test-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }

    use crate::activation::Activation;
    use crate::time::Clock;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn budget(deadline_ms: Option<u64>) -> Budget {
        let activation = Activation {
            deadline_ms,
            ..Activation::default()
        };
        Budget::new(&activation, Duration::from_secs(10), &Clock::system())
    }

    /// Runs `fetch` as the leader for `key` once `waiters` others wait for its flight.
    fn lead_after(c: &TokenCache, key: &CacheKey, waiters: usize) {
        loop {
            let joined = c.flights.lock().unwrap().get(key).map(Arc::strong_count);
            // The map's, the leader's, and one per waiter.
            if joined == Some(2 + waiters) {
                return;
            }
            std::thread::yield_now();
        }
    }

    #[test]
    fn a_burst_makes_one_fetch_and_everyone_gets_its_outcome() {
        let c = TokenCache::in_memory();
        let k = CacheKey([7; 32]);
        let fetches = AtomicUsize::new(0);
        let fetch = || {
            fetches.fetch_add(1, Ordering::SeqCst);
            lead_after(&c, &k, 15);
            Ok(token(86_400_000))
        };
        let tokens: Vec<_> = std::thread::scope(|s| {
            let all: Vec<_> = (0..16)
                .map(|_| s.spawn(|| c.single_flight(&k, &budget(None), None, fetch)))
                .collect();
            all.into_iter().map(|t| t.join().unwrap()).collect()
        });
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
        assert!(
            tokens
                .iter()
                .all(|t| t.as_ref().map(|t| t.token.expose()) == Ok("tok"))
        );
        assert!(c.flights.lock().unwrap().is_empty());

        // A refusal is shared too (same credential, same answer)...
        let refused = Error::ImsRefused {
            status: 401,
            code: "invalid_client".into(),
            description: "no".into(),
        };
        let outcomes: Vec<_> = std::thread::scope(|s| {
            let all: Vec<_> = (0..4)
                .map(|_| {
                    s.spawn(|| {
                        c.single_flight(&k, &budget(None), None, || {
                            lead_after(&c, &k, 3);
                            Err(refused.clone())
                        })
                    })
                })
                .collect();
            all.into_iter().map(|t| t.join().unwrap()).collect()
        });
        assert!(outcomes.iter().all(|o| o == &Err(refused.clone())));
    }

    #[test]
    fn a_leader_out_of_time_is_not_shared_and_a_waiter_out_of_time_does_not_wait() {
        let c = TokenCache::in_memory();
        let k = CacheKey([8; 32]);
        let fetches = AtomicUsize::new(0);
        let outcomes: Vec<_> = std::thread::scope(|s| {
            let leader = s.spawn(|| {
                c.single_flight(&k, &budget(None), None, || {
                    fetches.fetch_add(1, Ordering::SeqCst);
                    lead_after(&c, &k, 1);
                    Err(Error::Timeout {
                        service: Service::Ims,
                        detail: "no time left".into(),
                    })
                })
            });
            let waiter = s.spawn(|| {
                // Joins the leader's flight (or leads a new one): it has time for its own fetch.
                while c.flights.lock().unwrap().is_empty() {
                    std::thread::yield_now();
                }
                c.single_flight(&k, &budget(None), None, || {
                    fetches.fetch_add(1, Ordering::SeqCst);
                    Ok(token(86_400_000))
                })
            });
            vec![leader.join().unwrap(), waiter.join().unwrap()]
        });
        assert!(matches!(outcomes[0], Err(Error::Timeout { .. })));
        assert!(outcomes[1].is_ok(), "{:?}", outcomes[1]);
        assert_eq!(fetches.load(Ordering::SeqCst), 2);

        // A waiter whose deadline has passed gives up at once, and never fetches.
        let held = std::sync::Barrier::new(2);
        std::thread::scope(|s| {
            let leader = s.spawn(|| {
                c.single_flight(&k, &budget(None), None, || {
                    held.wait();
                    held.wait();
                    Ok(token(86_400_000))
                })
            });
            held.wait();
            let late = c.single_flight(&k, &budget(Some(1)), None, || panic!("must not fetch"));
            assert!(matches!(late, Err(Error::Timeout { .. })), "{late:?}");
            held.wait();
            assert!(leader.join().unwrap().is_ok());
        });
    }

    #[test]
    fn a_token_cached_since_the_callers_look_is_used_unless_it_was_refused() {
        // The look in memory and the flight are apart: a fetch may end in between.
        const FAR: u64 = 4_000_000_000_000; // year 2096: fresh by the system clock
        let c = TokenCache::in_memory();
        let k = CacheKey([10; 32]);
        c.put(&k, &token(FAR));
        let got = c.single_flight(&k, &budget(None), None, || panic!("must not fetch"));
        assert_eq!(got.map(|t| t.token), Ok(Secret::new("tok")));
        let refused = token(FAR);
        let fresh = AccessToken {
            token: Secret::new("fresh"),
            ..token(FAR)
        };
        let got = c.single_flight(&k, &budget(None), Some(&refused), || Ok(fresh));
        assert_eq!(got.map(|t| t.token), Ok(Secret::new("fresh")));
    }

    #[test]
    fn a_leader_that_panics_fails_its_waiters_and_leaves_no_flight() {
        let c = TokenCache::in_memory();
        let k = CacheKey([9; 32]);
        let outcomes: Vec<_> = std::thread::scope(|s| {
            let leader = s.spawn(|| {
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    c.single_flight(&k, &budget(None), None, || {
                        lead_after(&c, &k, 2);
                        panic!("boom")
                    })
                }));
            });
            let waiters: Vec<_> = (0..2)
                .map(|_| {
                    s.spawn(|| {
                        while c.flights.lock().unwrap().is_empty() {
                            std::thread::yield_now();
                        }
                        c.single_flight(&k, &budget(None), None, || {
                            panic!("the leader's flight was joined")
                        })
                    })
                })
                .collect();
            leader.join().unwrap();
            waiters.into_iter().map(|t| t.join().unwrap()).collect()
        });
        assert!(
            outcomes.iter().all(|o| matches!(o, Err(Error::Internal(_)))),
            "{outcomes:?}"
        );
        assert!(c.flights.lock().unwrap().is_empty());
    }

    #[test]
    fn memory_cache_hands_out_fresh_tokens_only() {
        let c = TokenCache::in_memory();
        let k = CacheKey([1; 32]);
        c.put(&k, &token(86_400_000));
        assert!(c.get(&k, 1000).is_some());
        assert!(c.get(&k, 86_400_000 - 1000).is_none());
        c.remove(&k);
        assert!(c.get(&k, 1000).is_none());
    }

    #[test]
    fn peek_shows_times_of_fresh_tokens_only_and_leaves_the_file_in_the_file() {
        let dir = temp_dir("peek");
        let k = CacheKey([4; 32]);
        TokenCache::with_dir(dir.clone()).put(&k, &token(86_400_000));
        let c = TokenCache::with_dir(dir.clone());
        let times = TokenTimes {
            obtained_at_ms: 0,
            expires_at_ms: 86_400_000,
        };
        assert_eq!(c.peek(&k, 1000), Some(times));
        assert!(c.memory.lock().unwrap().is_empty());
        assert_eq!(c.peek(&k, 86_400_000 - 1000), None);
        assert_eq!(c.peek(&CacheKey([5; 32]), 1000), None);
        let m = TokenCache::in_memory();
        m.put(&k, &token(86_400_000));
        assert_eq!(m.peek(&k, 1000), Some(times));
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn file_cache_survives_the_process_and_is_private() {
        let dir = temp_dir("file");
        let k = CacheKey([2; 32]);
        TokenCache::with_dir(dir.clone()).put(&k, &token(86_400_000));
        let again = TokenCache::with_dir(dir.clone());
        assert_eq!(again.get(&k, 1000).map(|t| t.token), Some(Secret::new("tok")));
        let meta = fs::metadata(dir.join(file_name(&k))).unwrap();
        assert_eq!(meta.mode() & 0o777, 0o600);
        assert_eq!(fs::metadata(&dir).unwrap().mode() & 0o777, 0o700);
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_file_store_stays_bounded() {
        let dir = temp_dir("bounded");
        let c = TokenCache::with_dir(dir.clone());
        for i in 0..(MAX_FILES + 10) {
            let mut k = [0u8; 32];
            k[..8].copy_from_slice(&(i as u64).to_le_bytes());
            c.put(&CacheKey(k), &token(86_400_000));
        }
        assert!(fs::read_dir(&dir).unwrap().count() <= MAX_FILES);
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn corrupt_or_loose_files_are_ignored() {
        let dir = temp_dir("corrupt");
        let k = CacheKey([3; 32]);
        let c = TokenCache::with_dir(dir.clone());
        c.put(&k, &token(86_400_000));
        let path = dir.join(file_name(&k));
        fs::write(&path, b"{not json").unwrap();
        assert!(TokenCache::with_dir(dir.clone()).get(&k, 1000).is_none());
        c.put(&k, &token(86_400_000));
        fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
        assert!(TokenCache::with_dir(dir.clone()).get(&k, 1000).is_none());
        let _ = fs::remove_dir_all(&dir);
    }
}
