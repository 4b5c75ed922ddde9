//! The per-API-key rate limit: every request of a verified key takes a token
//! from that key's bucket ([`Limits::rate_limit_per_second`] sustained, up to
//! [`Limits::rate_limit_burst`] at once); without one it is answered 429
//! `rate_limited` with `Retry-After`. Limiting per key rather than per
//! account or address lets one runaway client be slowed down without
//! touching the account's other keys, and cannot be dodged by changing IP.

use super::token_bucket::{Rate, TokenBuckets};
use super::Limits;
use crate::error::ApiError;
use axum::http::StatusCode;
use serde_json::json;
use std::time::{Duration, Instant};

/// The buckets of the keys that made requests lately.
#[derive(Default)]
pub struct ApiKeyRateLimiter {
    buckets: TokenBuckets<i64>,
}

impl ApiKeyRateLimiter {
    /// Counts one request of key `key_id`; 429 if the key is over its limit.
    pub fn check(&self, key_id: i64, limits: &Limits) -> Result<(), ApiError> {
        self.check_at(key_id, limits, Instant::now())
    }

    fn check_at(&self, key_id: i64, limits: &Limits, now: Instant) -> Result<(), ApiError> {
        if limits.rate_limit_per_second == 0 {
            return Ok(());
        }
        let rate = Rate {
            per_second: f64::from(limits.rate_limit_per_second),
            burst: f64::from(limits.rate_limit_burst.max(1)),
        };
        self.buckets
            .take(key_id, rate, now)
            .map_err(|wait| rate_limited(limits, wait))
    }

    /// Keys with a bucket now (refilled ones are forgotten).
    pub fn tracked_keys(&self) -> usize {
        self.buckets.len()
    }
}

fn rate_limited(limits: &Limits, wait: Duration) -> ApiError {
    let seconds = retry_after_seconds(wait);
    ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        format!(
            "this API key is limited to {} requests per second (bursts of up to {}); \
             retry after {seconds} s, or spread the requests out or batch events",
            limits.rate_limit_per_second,
            limits.rate_limit_burst.max(1)
        ),
    )
    .with_details(json!({
        "limit_per_second": limits.rate_limit_per_second,
        "burst": limits.rate_limit_burst.max(1),
        "retry_after_seconds": seconds,
    }))
    .with_retry_after(seconds)
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

    fn limits(per_second: u32, burst: u32) -> Limits {
        Limits {
            rate_limit_per_second: per_second,
            rate_limit_burst: burst,
            ..Limits::default()
        }
    }

    #[test]
    fn over_the_burst_is_429_with_retry_after_and_details() {
        let limiter = ApiKeyRateLimiter::default();
        let limits = limits(2, 3);
        let now = Instant::now();
        for _ in 0..3 {
            assert!(limiter.check_at(7, &limits, now).is_ok());
        }
        let error = limiter.check_at(7, &limits, now).unwrap_err();
        assert_eq!(error.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(error.code, "rate_limited");
        assert_eq!(error.retry_after, Some(1));
        assert!(error.message.contains("2 requests per second"));
        assert_eq!(error.details.unwrap()["retry_after_seconds"], 1);
        // Half a second later a token is back (2 per second).
        assert!(limiter
            .check_at(7, &limits, now + Duration::from_millis(500))
            .is_ok());
    }

    #[test]
    fn zero_per_second_turns_the_limit_off() {
        let limiter = ApiKeyRateLimiter::default();
        let limits = limits(0, 0);
        let now = Instant::now();
        for _ in 0..10_000 {
            assert!(limiter.check_at(7, &limits, now).is_ok());
        }
        assert_eq!(limiter.tracked_keys(), 0);
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
