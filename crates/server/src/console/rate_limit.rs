//! Failed sign-ins per (account, client IP), in memory: after
//! [`MAX_FAILURES`] failures within [`WINDOW`] the pair is refused until the
//! window has passed. Keyed by the account name as typed, so that probing
//! unknown accounts is limited the same way and reveals nothing. A restart
//! forgets the counts, which is acceptable for slowing down guessing.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const MAX_FAILURES: u32 = 5;
pub const WINDOW: Duration = Duration::from_secs(15 * 60);
/// Above this many tracked pairs, stale ones are dropped on the next failure.
const PRUNE_ABOVE: usize = 10_000;

#[derive(Default)]
pub struct LoginLimiter {
    failures: Mutex<HashMap<(String, Option<IpAddr>), Failures>>,
}

struct Failures {
    count: u32,
    first: Instant,
}

impl LoginLimiter {
    fn key(account: &str, ip: Option<IpAddr>) -> (String, Option<IpAddr>) {
        (account.trim().to_lowercase(), ip)
    }

    /// `Some(wait)` while the pair is blocked.
    pub fn blocked(&self, account: &str, ip: Option<IpAddr>) -> Option<Duration> {
        let map = self.failures.lock().ok()?;
        let entry = map.get(&Self::key(account, ip))?;
        let elapsed = entry.first.elapsed();
        (entry.count >= MAX_FAILURES && elapsed < WINDOW).then(|| WINDOW - elapsed)
    }

    pub fn record_failure(&self, account: &str, ip: Option<IpAddr>) {
        let Ok(mut map) = self.failures.lock() else {
            return;
        };
        if map.len() > PRUNE_ABOVE {
            map.retain(|_, f| f.first.elapsed() < WINDOW);
        }
        let entry = map.entry(Self::key(account, ip)).or_insert(Failures {
            count: 0,
            first: Instant::now(),
        });
        if entry.first.elapsed() >= WINDOW {
            *entry = Failures {
                count: 0,
                first: Instant::now(),
            };
        }
        entry.count += 1;
    }

    pub fn record_success(&self, account: &str, ip: Option<IpAddr>) {
        if let Ok(mut map) = self.failures.lock() {
            map.remove(&Self::key(account, ip));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_after_the_limit_per_account_and_ip() {
        let limiter = LoginLimiter::default();
        let ip: Option<IpAddr> = "203.0.113.7".parse().ok();
        let other_ip: Option<IpAddr> = "203.0.113.8".parse().ok();
        for _ in 0..MAX_FAILURES - 1 {
            limiter.record_failure("Acme", ip);
            assert!(limiter.blocked("acme", ip).is_none());
        }
        limiter.record_failure("acme ", ip);
        assert!(limiter.blocked("ACME", ip).is_some_and(|w| w <= WINDOW));
        assert!(limiter.blocked("acme", other_ip).is_none());
        assert!(limiter.blocked("other", ip).is_none());
        limiter.record_success("acme", ip);
        assert!(limiter.blocked("acme", ip).is_none());
    }
}
