//! Which origins ureq's pool can serve: every connection the agent's connector hands ureq is
//! wrapped so that it is counted, by origin, for as long as ureq holds it (in use or idle in its
//! pool), with when it last carried bytes. ureq's pool itself has no public view.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use ureq::http::Uri;
use ureq::unversioned::transport::{Buffers, NextTimeout, Transport};

use super::origin_of;

/// The connections ureq holds (in use, or idle in its pool) by origin, each with when it last
/// carried bytes: a connection ureq drops (closed, evicted) drops out of here too.
#[derive(Default)]
pub(super) struct Held(Mutex<HashMap<String, Vec<Weak<LastIo>>>>);

/// When a connection last carried bytes.
struct LastIo(Mutex<Instant>);

impl LastIo {
    fn touch(&self) {
        if let Ok(mut at) = self.0.lock() {
            *at = Instant::now();
        }
    }

    fn idle(&self) -> Duration {
        self.0.lock().map_or(Duration::MAX, |at| at.elapsed())
    }
}

impl Held {
    /// `transport`, a new connection to `uri`'s origin, counted until ureq drops it.
    pub(super) fn track(&self, uri: &Uri, transport: Box<dyn Transport>) -> Box<dyn Transport> {
        let last_io = Arc::new(LastIo(Mutex::new(Instant::now())));
        if let (Ok(mut held), Some(origin)) = (self.0.lock(), origin_of(uri)) {
            held.retain(|_, conns| {
                conns.retain(|c| c.strong_count() > 0);
                !conns.is_empty()
            });
            held.entry(origin).or_default().push(Arc::downgrade(&last_io));
        }
        Box::new(Tracked {
            inner: transport,
            last_io,
        })
    }

    /// Whether ureq holds a connection to `origin` that carried bytes less than `fresh` ago.
    pub(super) fn serves(&self, origin: &str, fresh: Duration) -> bool {
        let Ok(held) = self.0.lock() else { return false };
        held.get(origin)
            .is_some_and(|conns| conns.iter().filter_map(Weak::upgrade).any(|c| c.idle() < fresh))
    }
}

/// A connection as ureq holds it, noting when it carries bytes.
struct Tracked {
    inner: Box<dyn Transport>,
    last_io: Arc<LastIo>,
}

impl std::fmt::Debug for Tracked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.inner.fmt(f)
    }
}

impl Transport for Tracked {
    fn buffers(&mut self) -> &mut dyn Buffers {
        self.inner.buffers()
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), ureq::Error> {
        self.last_io.touch();
        self.inner.transmit_output(amount, timeout)
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        let got = self.inner.await_input(timeout);
        self.last_io.touch();
        got
    }

    fn is_open(&mut self) -> bool {
        self.inner.is_open()
    }

    fn is_tls(&self) -> bool {
        self.inner.is_tls()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ureq::unversioned::transport::LazyBuffers;

    #[derive(Debug)]
    struct Idle(LazyBuffers);

    impl Transport for Idle {
        fn buffers(&mut self) -> &mut dyn Buffers {
            &mut self.0
        }
        fn transmit_output(&mut self, _: usize, _: NextTimeout) -> Result<(), ureq::Error> {
            Ok(())
        }
        fn await_input(&mut self, _: NextTimeout) -> Result<bool, ureq::Error> {
            Ok(false)
        }
        fn is_open(&mut self) -> bool {
            true
        }
    }

    #[test]
    fn an_origin_is_served_while_ureq_holds_a_recent_connection_to_it() {
        let held = Held::default();
        let api: Uri = "https://api.example:8443/path?q".parse().unwrap();
        let conn = held.track(&api, Box::new(Idle(LazyBuffers::new(64, 64))));
        assert!(held.serves("https://api.example:8443", Duration::from_secs(60)));
        assert!(
            !held.serves("https://api.example", Duration::from_secs(60)),
            "another origin"
        );
        assert!(
            !held.serves("https://api.example:8443", Duration::ZERO),
            "idle too long"
        );
        drop(conn);
        assert!(
            !held.serves("https://api.example:8443", Duration::from_secs(60)),
            "dropped by ureq"
        );
    }
}
