//! The per-API-key rate limit: every request of a verified key is checked
//! against that key's allowance ([`Limits::rate_limit_per_second`]
//! sustained, up to [`Limits::rate_limit_burst`] at once); over it, it is
//! answered 429 `rate_limited` with `Retry-After`. Limiting per key rather
//! than per account or address lets one runaway client be slowed down
//! without touching the account's other keys, and cannot be dodged by
//! changing IP.
//!
//! The mechanism is `governor`'s keyed GCRA limiter, which behaves as a
//! token bucket of `burst` tokens refilled at `per_second`.

use super::Limits;
use crate::error::ApiError;
use axum::http::StatusCode;
use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use serde_json::json;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Keys whose allowance has refilled are forgotten every this many checks,
/// so that memory follows the keys active lately. Only verified keys are
/// checked, so the map can never hold more keys than the store has.
const SWEEP_EVERY_CHECKS: u64 = 4_096;

/// governor's limiter keyed by API key id, in a mutex-guarded map.
type KeyedLimiter<C> =
    RateLimiter<i64, DefaultKeyedStateStore<i64>, C, NoOpMiddleware<<C as Clock>::Instant>>;

/// The allowances of the keys that made requests lately.
pub struct ApiKeyRateLimiter<C: Clock = DefaultClock> {
    /// `None` when the limit is off (0 per second).
    limiter: Option<KeyedLimiter<C>>,
    per_second: u32,
    burst: u32,
    /// Checks so far, to sweep every [`SWEEP_EVERY_CHECKS`].
    checks: AtomicU64,
}

impl ApiKeyRateLimiter {
    pub fn new(limits: &Limits) -> Self {
        Self::with_clock(limits, DefaultClock::default())
    }
}

impl Default for ApiKeyRateLimiter {
    fn default() -> Self {
        Self::new(&Limits::default())
    }
}

impl<C: Clock> ApiKeyRateLimiter<C> {
    /// A limiter reading time from `clock` (tests pass a fake one).
    pub fn with_clock(limits: &Limits, clock: C) -> Self {
        // A burst of at least one request, else nothing could ever pass.
        let burst = limits.rate_limit_burst.max(1);
        let limiter = NonZeroU32::new(limits.rate_limit_per_second).map(|per_second| {
            let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
            let quota = Quota::per_second(per_second).allow_burst(burst);
            RateLimiter::new(quota, DefaultKeyedStateStore::default(), clock)
        });
        Self {
            limiter,
            per_second: limits.rate_limit_per_second,
            burst,
            checks: AtomicU64::new(0),
        }
    }

    /// Counts one request of key `key_id`; 429 if the key is over its limit.
    pub fn check(&self, key_id: i64) -> Result<(), ApiError> {
        let Some(limiter) = &self.limiter else {
            return Ok(());
        };
        if self.checks.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY_CHECKS
            == SWEEP_EVERY_CHECKS - 1
        {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
        limiter.check_key(&key_id).map_err(|not_until| {
            let wait = not_until.wait_time_from(limiter.clock().now());
            self.rate_limited(wait)
        })
    }

    /// Keys with an allowance in use now (refilled ones are forgotten by
    /// the sweep).
    pub fn tracked_keys(&self) -> usize {
        self.limiter.as_ref().map_or(0, RateLimiter::len)
    }

    fn rate_limited(&self, wait: Duration) -> ApiError {
        let seconds = retry_after_seconds(wait);
        ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!(
                "this API key is limited to {} requests per second (bursts of up to {}); \
                 retry after {seconds} s, or spread the requests out or batch events",
                self.per_second, self.burst
            ),
        )
        .with_details(json!({
            "limit_per_second": self.per_second,
            "burst": self.burst,
            "retry_after_seconds": seconds,
        }))
        .with_retry_after(seconds)
    }
}

/// `Retry-After` takes whole seconds: round up, and never say 0 (which
/// invites an immediate retry that would be refused again).
pub fn retry_after_seconds(wait: Duration) -> u32 {
    let whole = wait
        .as_secs()
        .saturating_add(u64::from(wait.subsec_nanos() > 0));
    u32::try_from(whole).unwrap_or(u32::MAX).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use governor::clock::FakeRelativeClock;

    fn limits(per_second: u32, burst: u32) -> Limits {
        Limits {
            rate_limit_per_second: per_second,
            rate_limit_burst: burst,
            ..Limits::default()
        }
    }

    #[test]
    fn over_the_burst_is_429_with_retry_after_and_details() {
        let clock = FakeRelativeClock::default();
        let limiter = ApiKeyRateLimiter::with_clock(&limits(2, 3), clock.clone());
        for _ in 0..3 {
            assert!(limiter.check(7).is_ok());
        }
        let error = limiter.check(7).unwrap_err();
        assert_eq!(error.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(error.code, "rate_limited");
        assert_eq!(error.retry_after, Some(1));
        assert!(error.message.contains("2 requests per second"));
        assert_eq!(error.details.unwrap()["retry_after_seconds"], 1);
        // Another key has its own allowance.
        assert!(limiter.check(8).is_ok());
        // Half a second later one request is allowed again (2 per second).
        clock.advance(Duration::from_millis(500));
        assert!(limiter.check(7).is_ok());
        assert!(limiter.check(7).is_err());
    }

    #[test]
    fn a_slow_rate_says_how_long_to_wait() {
        let clock = FakeRelativeClock::default();
        let limiter = ApiKeyRateLimiter::with_clock(&limits(1, 1), clock.clone());
        assert!(limiter.check(7).is_ok());
        clock.advance(Duration::from_millis(200));
        // 800 ms left: rounded up to a whole second.
        assert_eq!(limiter.check(7).unwrap_err().retry_after, Some(1));
    }

    #[test]
    fn zero_per_second_turns_the_limit_off() {
        let limiter = ApiKeyRateLimiter::new(&limits(0, 0));
        for _ in 0..10_000 {
            assert!(limiter.check(7).is_ok());
        }
        assert_eq!(limiter.tracked_keys(), 0);
    }

    #[test]
    fn a_zero_burst_still_lets_one_request_through() {
        let limiter = ApiKeyRateLimiter::with_clock(&limits(1, 0), FakeRelativeClock::default());
        assert!(limiter.check(7).is_ok());
        assert!(limiter.check(7).is_err());
    }

    #[test]
    fn refilled_keys_are_swept() {
        let clock = FakeRelativeClock::default();
        let limiter = ApiKeyRateLimiter::with_clock(&limits(10, 3), clock.clone());
        for key in 0..100 {
            assert!(limiter.check(key).is_ok());
        }
        assert_eq!(limiter.tracked_keys(), 100);
        // A second later every one has refilled; the next sweep forgets them
        // all but the key that keeps being used.
        clock.advance(Duration::from_secs(1));
        for _ in 0..SWEEP_EVERY_CHECKS {
            let _ = limiter.check(1_000);
        }
        assert_eq!(limiter.tracked_keys(), 1);
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds_and_at_least_one() {
        assert_eq!(retry_after_seconds(Duration::ZERO), 1);
        assert_eq!(retry_after_seconds(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_seconds(Duration::from_secs(2)), 2);
        assert_eq!(retry_after_seconds(Duration::from_millis(2_001)), 3);
        assert_eq!(retry_after_seconds(Duration::MAX), u32::MAX);
    }
}
