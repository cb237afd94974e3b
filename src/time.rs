//! Time: one clock for the whole action, and the calendar for dates in messages.
//!
//! Everything that depends on the time (token expiry and refresh, certificate and developer
//! token expiry, the activation deadline, waiting before a retry) reads the action's [`Clock`].
//! It is the system clock, or, in tests, a held clock that stands still until moved: expiry,
//! refresh margins, `Retry-After` and deadlines are then tested by moving it, not by sleeping.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The action's clock: the system's, or a held one (see the module's docs).
#[derive(Clone, Default)]
pub struct Clock {
    held: Option<Arc<AtomicU64>>,
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.held {
            None => f.write_str("Clock::system"),
            Some(ms) => write!(f, "Clock::held({})", ms.load(Ordering::Relaxed)),
        }
    }
}

impl Clock {
    /// The system clock.
    pub fn system() -> Clock {
        Clock { held: None }
    }

    /// A clock that reads `start_ms` (Unix milliseconds) until it is moved; clones share it.
    pub fn held(start_ms: u64) -> Clock {
        Clock {
            held: Some(Arc::new(AtomicU64::new(start_ms))),
        }
    }

    /// Unix milliseconds, now.
    pub fn now_ms(&self) -> u64 {
        match &self.held {
            Some(ms) => ms.load(Ordering::SeqCst),
            None => SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or(0),
        }
    }

    /// Unix seconds, now.
    pub fn now_unix(&self) -> i64 {
        (self.now_ms() / 1000) as i64
    }

    /// Waits `d`: sleeps on the system clock; a held clock just moves forward.
    pub fn sleep(&self, d: Duration) {
        match &self.held {
            Some(_) => self.advance(d),
            None => std::thread::sleep(d),
        }
    }

    /// Moves a held clock forward (the system clock moves on its own: nothing to do).
    pub fn advance(&self, d: Duration) {
        if let Some(ms) = &self.held {
            ms.fetch_add(d.as_millis() as u64, Ordering::SeqCst);
        }
    }
}

/// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date (year, month, day) of a day count since 1970-01-01.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// `YYYY-MM-DD` of a Unix time in seconds.
pub fn format_date(unix: i64) -> String {
    let (y, m, d) = civil_from_days(unix.div_euclid(86_400));
    format!("{y:04}-{m:02}-{d:02}")
}

/// `YYYY-MM-DDTHH:MM:SSZ` of a Unix time in seconds.
pub fn format_datetime(unix: i64) -> String {
    let secs = unix.rem_euclid(86_400);
    format!(
        "{}T{:02}:{:02}:{:02}Z",
        format_date(unix),
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_calendar_round_trips() {
        for days in [-1000, 0, 1, 59, 10_956, 20_000, 30_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(days_from_civil(2024, 2, 29) + 1, days_from_civil(2024, 3, 1));
        assert_eq!(format_date(1_445_412_480), "2015-10-21");
        assert_eq!(format_datetime(1_445_412_480), "2015-10-21T07:28:00Z");
    }

    #[test]
    fn a_held_clock_moves_only_when_told_and_clones_share_it() {
        let clock = Clock::held(1_000);
        let other = clock.clone();
        assert_eq!(clock.now_ms(), 1_000);
        clock.sleep(Duration::from_millis(250));
        other.advance(Duration::from_secs(2));
        assert_eq!((clock.now_ms(), other.now_unix()), (3_250, 3));
        let system = Clock::system();
        system.advance(Duration::from_secs(3600));
        assert!(
            system
                .now_ms()
                .abs_diff(SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64)
                < 60_000
        );
    }
}
