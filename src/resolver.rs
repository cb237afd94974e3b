//! Name resolution without a thread per request. ureq's default resolver spawns a thread for
//! every request that has a timeout (so that a hanging DNS server cannot outlast it), even for
//! an IP address and even when a pooled connection is then reused: a warm activation paid for a
//! thread start and a 2 MiB stack each time. Here IP literals need no lookup at all, and a host
//! name is looked up through ureq's resolver (timeout and all) once a minute, then cached.
//! Clones share the cache: the API's early connection ([`crate::preconnect`]) resolves its host
//! once for the request that then uses it.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ureq::config::Config;
use ureq::http::Uri;
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::NextTimeout;

/// How long a looked-up address is reused. Adobe's hosts sit behind CDNs whose records change,
/// so not long; long enough that a warm container resolves once per minute at most.
pub const TTL: Duration = Duration::from_secs(60);

/// A resolver that answers IP literals itself and caches host names for [`TTL`].
#[derive(Debug, Default)]
pub struct CachingResolver {
    inner: DefaultResolver,
    cache: Arc<Mutex<HashMap<String, (Instant, ResolvedSocketAddrs)>>>,
}

impl Clone for CachingResolver {
    fn clone(&self) -> Self {
        CachingResolver {
            inner: DefaultResolver::default(),
            cache: Arc::clone(&self.cache),
        }
    }
}

impl CachingResolver {
    /// The cache. The lock is held for a map lookup or insert only (the lookup itself runs
    /// outside it); a poisoned one is recovered as it is, since it only ever holds whole entries
    /// (a panic elsewhere must not turn caching off for the life of the process).
    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Instant, ResolvedSocketAddrs)>> {
        self.cache.lock().unwrap_or_else(|poisoned| {
            self.cache.clear_poison();
            poisoned.into_inner()
        })
    }
}

impl Resolver for CachingResolver {
    fn resolve(
        &self,
        uri: &Uri,
        config: &Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let (Some(host), Some(port)) = (uri.host(), port_of(uri)) else {
            return self.inner.resolve(uri, config, timeout);
        };
        if let Ok(ip) = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
        {
            let mut addrs = self.empty();
            addrs.push(SocketAddr::new(ip, port));
            return Ok(addrs);
        }
        let key = format!("{host}:{port}");
        if let Some((at, addrs)) = self.cache().get(&key)
            && at.elapsed() < TTL
        {
            return Ok(addrs.clone());
        }
        let addrs = self.inner.resolve(uri, config, timeout)?;
        let mut cache = self.cache();
        cache.retain(|_, (at, _)| at.elapsed() < TTL);
        cache.insert(key, (Instant::now(), addrs.clone()));
        Ok(addrs)
    }
}

fn port_of(uri: &Uri) -> Option<u16> {
    uri.port_u16().or(match uri.scheme_str() {
        Some("https") => Some(443),
        Some("http") => Some(80),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(r: &CachingResolver, url: &str) -> Vec<SocketAddr> {
        let uri: Uri = url.parse().unwrap();
        let config = Config::default();
        let timeout = NextTimeout {
            after: ureq::unversioned::transport::time::Duration::from_secs(1),
            reason: ureq::Timeout::Resolve,
            ..NextTimeout::default()
        };
        r.resolve(&uri, &config, timeout)
            .map(|a| a.iter().copied().collect())
            .unwrap()
    }

    #[test]
    fn ip_literals_need_no_lookup() {
        let r = CachingResolver::default();
        assert_eq!(
            resolve(&r, "http://127.0.0.1:8080/x"),
            ["127.0.0.1:8080".parse().unwrap()]
        );
        assert_eq!(resolve(&r, "https://[::1]/x"), ["[::1]:443".parse().unwrap()]);
        assert!(r.cache.lock().unwrap().is_empty());
    }

    #[test]
    fn names_are_looked_up_once_then_cached() {
        let r = CachingResolver::default();
        let first = resolve(&r, "http://localhost:9/");
        assert!(!first.is_empty());
        assert_eq!(r.cache.lock().unwrap().len(), 1);
        assert_eq!(resolve(&r, "http://localhost:9/other"), first);
    }
}
