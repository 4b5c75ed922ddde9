//! Failed sign-ins per (account, client IP), in memory, as token buckets
//! (`limits::token_bucket`, which says why these are not `governor`'s): a
//! pair may fail [`MAX_FAILURES`] times at once, and regains one attempt
//! every `WINDOW / MAX_FAILURES`, so it is held to [`MAX_FAILURES`] per
//! [`WINDOW`] sustained. A success forgets the pair. Keyed by the account
//! name as typed, so that probing unknown accounts is limited the same way
//! and reveals nothing. A restart forgets the counts, which is acceptable
//! for slowing down guessing.

use super::token_bucket::{Rate, TokenBuckets};
use std::net::IpAddr;
use std::time::{Duration, Instant};

pub const MAX_FAILURES: u32 = 5;
pub const WINDOW: Duration = Duration::from_secs(15 * 60);

type Pair = (String, Option<IpAddr>);

#[derive(Default)]
pub struct LoginLimiter {
    failures: TokenBuckets<Pair>,
}

impl LoginLimiter {
    fn key(account: &str, ip: Option<IpAddr>) -> Pair {
        (account.trim().to_lowercase(), ip)
    }

    fn rate() -> Rate {
        Rate::per_period(MAX_FAILURES, WINDOW)
    }

    /// `Some(wait)` while the pair is blocked.
    pub fn blocked(&self, account: &str, ip: Option<IpAddr>) -> Option<Duration> {
        self.failures
            .empty_for(&Self::key(account, ip), Self::rate(), Instant::now())
    }

    pub fn record_failure(&self, account: &str, ip: Option<IpAddr>) {
        // Already blocked pairs are refused before their password is
        // checked, so a failure always finds a token; if not, it stays empty.
        let _ = self
            .failures
            .take(Self::key(account, ip), Self::rate(), Instant::now());
    }

    pub fn record_success(&self, account: &str, ip: Option<IpAddr>) {
        self.failures.forget(&Self::key(account, ip));
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
        // One attempt comes back after WINDOW / MAX_FAILURES (3 minutes).
        let wait = limiter.blocked("ACME", ip).expect("blocked");
        assert!(wait <= WINDOW / MAX_FAILURES && wait > WINDOW / MAX_FAILURES / 2);
        assert!(limiter.blocked("acme", other_ip).is_none());
        assert!(limiter.blocked("other", ip).is_none());
        limiter.record_success("acme", ip);
        assert!(limiter.blocked("acme", ip).is_none());
    }
}
