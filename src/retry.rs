//! The retry policy of every upstream call, in one place: which answers are worth another
//! attempt, how long to wait before it, and what the caller is told when there is no time to.
//!
//! [`crate::http::HttpClient::send`] asks [`decide`] after every attempt; callers only say
//! whether their request may be repeated after a server error (`Request::retryable`, which an
//! API call sets from its method's idempotence). The rules (docs/retries.md has the reasons):
//! - **429, with `Retry-After`**: waited out when the wait and one more request fit before the
//!   deadline; otherwise the 429 goes back at once with that `Retry-After`.
//! - **429, without `Retry-After`**: retried only after [`throttle_wait`] (at least the API's
//!   [`throttle_step`], 1 s from Analytics' window, doubling, with jitter) when that fits;
//!   otherwise the 429 goes back at once with a `Retry-After` of that wait in whole seconds,
//!   which the caller can use. A 429 means the request was refused, not run: any method may be
//!   retried.
//! - **500, 502, 503, 504 and broken connections**: retried only when the request may be
//!   repeated (GET, PUT, DELETE; never an API's POST), after an exponential backoff with full
//!   jitter ([`BACKOFF_BASE`]), or the 503's `Retry-After`, within the deadline.
//! - At most [`MAX_ATTEMPTS`] attempts in all; anything else is the answer.
//!
//! Everything here is a pure function of what the attempt got, the time left and a random
//! number: tests choose the random number, and the waiting itself goes through the action's
//! [`crate::time::Clock`], which a test holds instead of sleeping.

use std::time::Duration;

use crate::error::Service;

/// Attempts in all, first one included.
pub const MAX_ATTEMPTS: u32 = 3;
/// Backoff base after a server error or a broken connection: retry n waits a random time up
/// to `BACKOFF_BASE * 2^(n-1)` (full jitter).
pub const BACKOFF_BASE: Duration = Duration::from_millis(100);
/// The least wait after a 429 without `Retry-After`, per API: what its documented window asks.
pub fn throttle_step(service: Service) -> Duration {
    match service {
        // 12 calls per 6 s per user (developer.adobe.com/analytics-apis/docs/2.0/guides/faq/): a
        // retry sooner than a second after being throttled is refused too, and spends another.
        Service::Analytics => Duration::from_secs(1),
        // No published window (the AEM Data Service lists a 429 and no limit; AEM, IMS and State
        // publish none; an API route's window is its own API's): the same second, not the
        // 100 ms of a server error.
        Service::AemDataService | Service::Aem | Service::Ims | Service::AdobeState | Service::Api => {
            Duration::from_secs(1)
        }
    }
}

/// What one attempt got, and the room left for another.
#[derive(Debug, Clone)]
pub struct Attempt {
    /// Who answered.
    pub service: Service,
    /// The HTTP status; `None` when the connection broke or timed out (no answer).
    pub status: Option<u16>,
    /// The answer's `Retry-After`, as a wait from now.
    pub retry_after: Option<Duration>,
    /// Whether the request may be repeated after a server error or a broken connection.
    pub repeatable: bool,
    /// Which attempt this was, from 1.
    pub number: u32,
    /// How long it took: the next one is expected to take as long.
    pub took: Duration,
    /// Time left before the activation must answer; `None` without a deadline.
    pub left: Option<Duration>,
    /// The least time a request may start with.
    pub min_attempt: Duration,
    /// The longest wait without a deadline (the request timeout).
    pub max_wait: Duration,
    /// A random number, for the jitter.
    pub random: u64,
}

/// What to do after an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Wait this long, then try again.
    Retry(Duration),
    /// This is the answer.
    Answer {
        /// Why a retryable answer was not retried, for the log; `None` when it is final anyway.
        why: Option<&'static str>,
        /// For a 429 without `Retry-After`: the seconds the caller should wait, to send back
        /// as its `Retry-After`.
        retry_after_secs: Option<u64>,
    },
}

impl Decision {
    fn answer(why: &'static str) -> Decision {
        Decision::Answer {
            why: Some(why),
            retry_after_secs: None,
        }
    }
}

/// Whether `status` is a server error worth a retry (501 and 505 never change).
pub fn is_transient(status: u16) -> bool {
    matches!(status, 500 | 502 | 503 | 504)
}

/// Decides what follows `attempt` (see the module's docs for the rules).
pub fn decide(attempt: &Attempt) -> Decision {
    let last = attempt.number >= MAX_ATTEMPTS;
    match attempt.status {
        Some(429) => {
            let (wait, computed) = match attempt.retry_after {
                // `Retry-After: 0` (or a date past) is no licence to ask again at once: the
                // API's window still holds.
                Some(wait) => (wait.max(throttle_step(attempt.service)), None),
                None => {
                    let wait = throttle_wait(attempt.service, attempt.number, attempt.random);
                    (wait, Some(whole_seconds(wait)))
                }
            };
            if !last && fits(attempt, wait) {
                return Decision::Retry(wait);
            }
            Decision::Answer {
                why: Some(if last {
                    "throttled on every attempt"
                } else {
                    "no time left before the deadline to wait and retry"
                }),
                retry_after_secs: computed,
            }
        }
        Some(status) if !is_transient(status) => Decision::Answer {
            why: None,
            retry_after_secs: None,
        },
        // A server error, or no answer at all.
        _ if !attempt.repeatable => Decision::answer("not repeated: the request may have taken effect"),
        _ if last => Decision::answer("failed on every attempt"),
        _ => {
            let wait = attempt
                .retry_after
                .filter(|_| attempt.status == Some(503))
                .unwrap_or_else(|| backoff(attempt.number, attempt.random));
            if fits(attempt, wait) {
                Decision::Retry(wait)
            } else {
                Decision::answer("no time left before the deadline to wait and retry")
            }
        }
    }
}

/// The wait before retry `number` after a 429 without `Retry-After`: the service's
/// [`throttle_step`] doubled for each retry, plus up to as much again of jitter (so that callers
/// throttled together do not come back together): 1–2 s, then 2–4 s. Two retries span about
/// the 6 s of Analytics' window.
pub fn throttle_wait(service: Service, number: u32, random: u64) -> Duration {
    let step = throttle_step(service).as_millis() as u64 * (1u64 << number.saturating_sub(1).min(10));
    Duration::from_millis(step + random % (step + 1))
}

/// Full jitter: a wait between 0 and `BACKOFF_BASE * 2^(number-1)`.
pub fn backoff(number: u32, random: u64) -> Duration {
    let cap = BACKOFF_BASE.as_millis() as u64 * (1u64 << number.saturating_sub(1).min(10));
    Duration::from_millis(random % (cap + 1))
}

/// Whether waiting `wait` still leaves time for one more request, expected to take as long as
/// the last one did (and at least the least time a request may start with).
fn fits(attempt: &Attempt, wait: Duration) -> bool {
    match attempt.left {
        None => wait <= attempt.max_wait,
        Some(left) => wait + attempt.took.max(attempt.min_attempt) <= left,
    }
}

/// `d` in whole seconds, rounded up, at least 1: a `Retry-After` never tells a caller to come
/// back sooner than the wait it stands for.
fn whole_seconds(d: Duration) -> u64 {
    d.as_millis().div_ceil(1000).max(1) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    /// The first attempt of a request, with `left` before the deadline.
    fn first(status: Option<u16>, left: Option<u64>) -> Attempt {
        Attempt {
            service: Service::Analytics,
            status,
            retry_after: None,
            repeatable: true,
            number: 1,
            took: ms(50),
            left: left.map(ms),
            min_attempt: ms(200),
            max_wait: ms(10_000),
            random: 0,
        }
    }

    #[test]
    fn a_429_without_retry_after_waits_at_least_a_second_with_jitter() {
        for random in [0, 1, 499, 1000, u64::MAX] {
            let a = Attempt {
                random,
                ..first(Some(429), Some(30_000))
            };
            let Decision::Retry(wait) = decide(&a) else {
                panic!("not retried: {:?}", decide(&a));
            };
            assert!(wait >= ms(1000) && wait <= ms(2000), "{wait:?}");
            let second = Attempt { number: 2, ..a };
            let Decision::Retry(wait) = decide(&second) else {
                panic!("not retried");
            };
            assert!(wait >= ms(2000) && wait <= ms(4000), "{wait:?}");
        }
        // Two random numbers, two waits: the jitter is there.
        let wait = |random| {
            decide(&Attempt {
                random,
                ..first(Some(429), Some(30_000))
            })
        };
        assert_ne!(wait(1), wait(700));
    }

    #[test]
    fn a_429_without_time_to_retry_goes_back_with_a_usable_retry_after() {
        // 1.1 s left: a 1 s wait and a 200 ms request do not fit.
        let a = first(Some(429), Some(1_100));
        assert_eq!(
            decide(&a),
            Decision::Answer {
                why: Some("no time left before the deadline to wait and retry"),
                retry_after_secs: Some(1),
            }
        );
        // The wait it would have made, rounded up: 1.5 s is 2 s.
        let a = Attempt {
            random: 500,
            ..first(Some(429), Some(1_100))
        };
        assert!(matches!(
            decide(&a),
            Decision::Answer {
                retry_after_secs: Some(2),
                ..
            }
        ));
        // A slow first attempt needs as much time again.
        let slow = Attempt {
            took: ms(3_000),
            ..first(Some(429), Some(3_500))
        };
        assert!(matches!(decide(&slow), Decision::Answer { .. }));
        // Throttled three times: the caller gets the wait a third retry would have made (4–8 s).
        let last = Attempt {
            number: 3,
            ..first(Some(429), Some(30_000))
        };
        assert_eq!(
            decide(&last),
            Decision::Answer {
                why: Some("throttled on every attempt"),
                retry_after_secs: Some(4),
            }
        );
    }

    #[test]
    fn a_retry_after_is_honoured_when_it_fits_and_passed_on_when_not() {
        let with = |secs, left| Attempt {
            retry_after: Some(Duration::from_secs(secs)),
            ..first(Some(429), Some(left))
        };
        assert_eq!(decide(&with(2, 5_000)), Decision::Retry(ms(2_000)));
        // `Retry-After: 0` waits the API's window all the same.
        assert_eq!(decide(&with(0, 5_000)), Decision::Retry(ms(1_000)));
        assert_eq!(
            decide(&with(120, 5_000)),
            Decision::Answer {
                why: Some("no time left before the deadline to wait and retry"),
                retry_after_secs: None,
            }
        );
        // Without a deadline, up to the request timeout.
        let unbounded = |secs| Attempt {
            left: None,
            ..with(secs, 0)
        };
        assert_eq!(decide(&unbounded(10)), Decision::Retry(ms(10_000)));
        assert!(matches!(decide(&unbounded(11)), Decision::Answer { .. }));
        // A POST throttled is retried too: it was refused, not run.
        let post = Attempt {
            repeatable: false,
            ..with(1, 5_000)
        };
        assert_eq!(decide(&post), Decision::Retry(ms(1_000)));
    }

    #[test]
    fn server_errors_are_retried_with_jittered_backoff_only_when_repeatable() {
        for status in [Some(500), Some(502), Some(503), Some(504), None] {
            for random in [0, 37, u64::MAX] {
                for number in 1..MAX_ATTEMPTS {
                    let a = Attempt {
                        number,
                        random,
                        ..first(status, Some(30_000))
                    };
                    let Decision::Retry(wait) = decide(&a) else {
                        panic!("{status:?} not retried");
                    };
                    assert!(wait <= BACKOFF_BASE * 2u32.pow(number - 1), "{wait:?}");
                }
            }
            let last = Attempt {
                number: MAX_ATTEMPTS,
                ..first(status, Some(30_000))
            };
            assert_eq!(decide(&last), Decision::answer("failed on every attempt"));
            let post = Attempt {
                repeatable: false,
                ..first(status, Some(30_000))
            };
            assert_eq!(
                decide(&post),
                Decision::answer("not repeated: the request may have taken effect")
            );
            let late = first(status, Some(250));
            assert!(matches!(decide(&late), Decision::Retry(_)), "200 ms + 50 ms fit");
            let too_late = Attempt {
                random: 100,
                ..first(status, Some(250))
            };
            assert!(matches!(decide(&too_late), Decision::Answer { .. }));
        }
        // A 503's Retry-After is the wait.
        let unavailable = Attempt {
            retry_after: Some(ms(1_000)),
            ..first(Some(503), Some(30_000))
        };
        assert_eq!(decide(&unavailable), Decision::Retry(ms(1_000)));
    }

    #[test]
    fn other_answers_are_final() {
        for status in [200, 201, 204, 400, 401, 403, 404, 413, 501, 505] {
            assert_eq!(
                decide(&first(Some(status), Some(30_000))),
                Decision::Answer {
                    why: None,
                    retry_after_secs: None
                },
                "{status}"
            );
        }
    }
}
