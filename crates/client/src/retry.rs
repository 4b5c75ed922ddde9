//! When to try again: exponential backoff with jitter, never sooner than the
//! server's `Retry-After`. Every retry resends the same ids, so a request
//! that was stored but whose answer was lost is not stored twice.

use std::time::{Duration, SystemTime};

/// How retries of connection errors, timeouts, 429 and 5xx answers are spaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The first wait; each retry doubles the ceiling up to `max_delay`.
    pub initial_delay: Duration,
    /// The longest wait this policy chooses (a longer `Retry-After` wins).
    pub max_delay: Duration,
    /// How long [`crate::Client::send`] and
    /// [`crate::Client::send_batch`] keep trying before they return
    /// [`crate::SendError::GaveUp`]. The [`crate::Batcher`] ignores it: it
    /// keeps buffered events until they are delivered or its shutdown
    /// deadline passes.
    pub give_up_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(10),
            give_up_after: Duration::from_secs(120),
        }
    }
}

impl RetryPolicy {
    /// The wait before retry number `attempt` (1 for the first retry):
    /// "equal jitter", half the ceiling plus a random part of the other
    /// half, so that waits grow for sure while clients that failed together
    /// do not retry together; when the server gave a `Retry-After`, that
    /// (plus up to a tenth), however long.
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let doublings = attempt.saturating_sub(1).min(30);
        let ceiling = self
            .initial_delay
            .saturating_mul(1 << doublings)
            .min(self.max_delay);
        let half = ceiling / 2;
        let jitter = half.mul_f64(fastrand::f64());
        match retry_after {
            // Up to a tenth later than asked, so that clients told the same
            // time do not all come back in the same instant.
            Some(server) => server + server.mul_f64(fastrand::f64() / 10.0),
            None => half + jitter,
        }
    }
}

/// `Retry-After`: delay-seconds or an HTTP-date (RFC 9110 10.2.3).
pub(crate) fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_grow_exponentially_within_their_jitter_band_up_to_the_cap() {
        let policy = RetryPolicy {
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(2),
            give_up_after: Duration::from_secs(60),
        };
        for _ in 0..200 {
            for (attempt, ceiling_ms) in [
                (1, 100),
                (2, 200),
                (3, 400),
                (4, 800),
                (5, 1600),
                (6, 2000),
                (40, 2000),
            ] {
                let delay = policy.delay(attempt, None);
                let ceiling = Duration::from_millis(ceiling_ms);
                assert!(
                    delay >= ceiling / 2 && delay <= ceiling,
                    "attempt {attempt}: {delay:?} outside [{:?}, {ceiling:?}]",
                    ceiling / 2
                );
            }
        }
        // Jitter: 50 draws of the same attempt are not all equal.
        let draws: std::collections::HashSet<Duration> =
            (0..50).map(|_| policy.delay(3, None)).collect();
        assert!(draws.len() > 1);
    }

    #[test]
    fn never_sooner_than_retry_after() {
        let policy = RetryPolicy::default();
        for attempt in 1..10 {
            let delay = policy.delay(attempt, Some(Duration::from_secs(3)));
            assert!(delay >= Duration::from_secs(3), "{delay:?}");
            assert!(delay <= Duration::from_millis(3_300), "{delay:?}");
        }
    }

    #[test]
    fn reads_both_forms_of_retry_after() {
        let now = httpdate::parse_http_date("Sun, 06 Dec 2026 07:13:36 GMT").unwrap();
        assert_eq!(parse_retry_after("5", now), Some(Duration::from_secs(5)));
        assert_eq!(
            parse_retry_after("Sun, 06 Dec 2026 07:13:46 GMT", now),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Dec 2026 07:13:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }
}
