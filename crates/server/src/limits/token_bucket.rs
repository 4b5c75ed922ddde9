//! Token buckets by key, in memory, for failed console sign-ins
//! (`limits::login_rate`). API keys are limited with `governor`
//! (`limits::api_rate`); sign-ins stay on these buckets because they need two
//! things governor's keyed limiter does not offer: looking at a pair without
//! taking a token (a blocked pair is refused before its password is hashed,
//! and only a failure takes one) and forgetting a pair when it signs in
//! (governor has no peek and no removal of a key; its pull requests #146 and
//! #211 for them are unmerged).
//!
//! A bucket holds at most `burst` tokens and gains `per_second` tokens a
//! second; an action takes one token, and is refused while none is left.
//! A bucket that has refilled to `burst` is the same as no bucket at all,
//! so such buckets are forgotten by a sweep: memory follows the keys active
//! in the last `burst / per_second` seconds, not every key ever seen.
//!
//! The map sits behind a plain mutex, held for a hash lookup and a few float
//! operations and never across an await.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// How fast a bucket refills and how much it holds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// Tokens gained per second (the sustained rate); must be above 0.
    pub per_second: f64,
    /// Most tokens a bucket holds (the largest burst); at least 1.
    pub burst: f64,
}

impl Rate {
    /// `count` actions per `period`, all of which may come at once.
    pub fn per_period(count: u32, period: Duration) -> Self {
        Self {
            per_second: f64::from(count) / period.as_secs_f64(),
            burst: f64::from(count),
        }
    }
}

/// Full buckets are swept out at least this often, when the map is used.
const SWEEP_EVERY: Duration = Duration::from_secs(60);
/// A sweep also runs when the map has grown to this many buckets (and then
/// again at twice what it kept, so that a map of busy keys is not swept on
/// every call).
const SWEEP_AT_LEAST: usize = 1_024;

pub struct TokenBuckets<K> {
    inner: Mutex<Inner<K>>,
}

struct Inner<K> {
    buckets: HashMap<K, Bucket>,
    last_sweep: Instant,
    sweep_at_len: usize,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

impl Bucket {
    fn full(rate: Rate, now: Instant) -> Self {
        Self {
            tokens: rate.burst,
            updated: now,
        }
    }

    fn refill(&mut self, rate: Rate, now: Instant) {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate.per_second).min(rate.burst);
        self.updated = now;
    }

    /// How long until one token is there; zero if it already is.
    fn wait_for_token(&self, rate: Rate) -> Duration {
        if self.tokens >= 1.0 {
            Duration::ZERO
        } else {
            // A tiny rate makes the wait too long for a Duration: "forever".
            Duration::try_from_secs_f64((1.0 - self.tokens) / rate.per_second)
                .unwrap_or(Duration::MAX)
        }
    }
}

impl<K> Default for TokenBuckets<K> {
    fn default() -> Self {
        Self {
            inner: Mutex::new(Inner {
                buckets: HashMap::new(),
                last_sweep: Instant::now(),
                sweep_at_len: SWEEP_AT_LEAST,
            }),
        }
    }
}

impl<K: Hash + Eq> TokenBuckets<K> {
    fn lock(&self) -> MutexGuard<'_, Inner<K>> {
        // The map holds only numbers that are valid at every instant, so a
        // panic elsewhere while it was held leaves nothing inconsistent.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes a token for `key`: `Ok` if there was one, else `Err` with how
    /// long until there is.
    pub fn take(&self, key: K, rate: Rate, now: Instant) -> Result<(), Duration> {
        let rate = sane(rate);
        let mut inner = self.lock();
        inner.sweep_if_due(rate, now);
        let bucket = inner
            .buckets
            .entry(key)
            .or_insert_with(|| Bucket::full(rate, now));
        bucket.refill(rate, now);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(bucket.wait_for_token(rate))
        }
    }

    /// `Some(wait)` while `key` has no token left, without taking one.
    pub fn empty_for(&self, key: &K, rate: Rate, now: Instant) -> Option<Duration> {
        let rate = sane(rate);
        let inner = self.lock();
        let mut bucket = *inner.buckets.get(key)?;
        bucket.refill(rate, now);
        let wait = bucket.wait_for_token(rate);
        (!wait.is_zero()).then_some(wait)
    }

    /// Forgets `key`'s bucket, as if it had refilled.
    pub fn forget(&self, key: &K) {
        self.lock().buckets.remove(key);
    }

    /// Buckets currently remembered.
    pub fn len(&self) -> usize {
        self.lock().buckets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<K> Inner<K> {
    fn sweep_if_due(&mut self, rate: Rate, now: Instant) {
        let due_by_time = now.saturating_duration_since(self.last_sweep) >= SWEEP_EVERY;
        if !due_by_time && self.buckets.len() < self.sweep_at_len {
            return;
        }
        self.buckets.retain(|_, bucket| {
            let mut bucket = *bucket;
            bucket.refill(rate, now);
            bucket.tokens < rate.burst
        });
        self.last_sweep = now;
        self.sweep_at_len = (self.buckets.len() * 2).max(SWEEP_AT_LEAST);
    }
}

/// A rate whose arithmetic cannot go wrong: a burst of at least one token
/// (else nothing could ever pass) and a positive refill.
fn sane(rate: Rate) -> Rate {
    Rate {
        per_second: if rate.per_second > 0.0 {
            rate.per_second
        } else {
            f64::MIN_POSITIVE
        },
        burst: rate.burst.max(1.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEN_PER_SECOND: Rate = Rate {
        per_second: 10.0,
        burst: 3.0,
    };

    #[test]
    fn a_burst_passes_then_the_sustained_rate() {
        let buckets = TokenBuckets::default();
        let start = Instant::now();
        for _ in 0..3 {
            assert_eq!(buckets.take("k", TEN_PER_SECOND, start), Ok(()));
        }
        let wait = buckets.take("k", TEN_PER_SECOND, start).unwrap_err();
        assert!(
            (wait.as_secs_f64() - 0.1).abs() < 1e-9,
            "one token takes 100 ms, told {wait:?}"
        );
        // 100 ms later exactly one more passes.
        let later = start + Duration::from_millis(100);
        assert_eq!(buckets.take("k", TEN_PER_SECOND, later), Ok(()));
        assert!(buckets.take("k", TEN_PER_SECOND, later).is_err());
    }

    #[test]
    fn keys_have_their_own_buckets() {
        let buckets = TokenBuckets::default();
        let now = Instant::now();
        let one = Rate {
            per_second: 1.0,
            burst: 1.0,
        };
        assert!(buckets.take(1, one, now).is_ok());
        assert!(buckets.take(1, one, now).is_err());
        assert!(buckets.take(2, one, now).is_ok());
    }

    #[test]
    fn empty_for_does_not_take_a_token() {
        let buckets = TokenBuckets::default();
        let now = Instant::now();
        assert_eq!(buckets.empty_for(&"k", TEN_PER_SECOND, now), None);
        for _ in 0..3 {
            assert!(buckets.take("k", TEN_PER_SECOND, now).is_ok());
            // Looking never changes the count.
            let _ = buckets.empty_for(&"k", TEN_PER_SECOND, now);
        }
        assert!(buckets.empty_for(&"k", TEN_PER_SECOND, now).is_some());
        buckets.forget(&"k");
        assert_eq!(buckets.empty_for(&"k", TEN_PER_SECOND, now), None);
    }

    #[test]
    fn refilled_buckets_are_swept_and_busy_ones_kept() {
        let buckets = TokenBuckets::default();
        let start = Instant::now();
        for key in 0..SWEEP_AT_LEAST as u64 - 1 {
            assert!(buckets.take(key, TEN_PER_SECOND, start).is_ok());
        }
        assert_eq!(buckets.len(), SWEEP_AT_LEAST - 1);
        // One second later every one of those has refilled; only the bucket
        // just used remains after the sweep the growth triggers.
        let later = start + Duration::from_secs(1);
        assert!(buckets.take(u64::MAX, TEN_PER_SECOND, later).is_ok());
        assert!(buckets.take(u64::MAX - 1, TEN_PER_SECOND, later).is_ok());
        assert_eq!(buckets.len(), 2);
    }

    #[test]
    fn the_map_is_swept_by_time_even_when_small() {
        let buckets = TokenBuckets::default();
        let start = Instant::now();
        assert!(buckets.take("old", TEN_PER_SECOND, start).is_ok());
        let later = start + SWEEP_EVERY;
        assert!(buckets.take("new", TEN_PER_SECOND, later).is_ok());
        assert_eq!(buckets.len(), 1);
    }

    #[test]
    fn busy_keys_are_not_swept_on_every_call() {
        let buckets = TokenBuckets::default();
        let now = Instant::now();
        // More busy keys than the sweep threshold: after one sweep keeps them
        // all, the next sweep waits until the map doubles.
        for key in 0..SWEEP_AT_LEAST as u64 + 10 {
            assert!(buckets.take(key, TEN_PER_SECOND, now).is_ok());
        }
        assert_eq!(buckets.len(), SWEEP_AT_LEAST + 10);
        assert!(buckets.lock().sweep_at_len >= 2 * SWEEP_AT_LEAST);
    }

    #[test]
    fn a_zero_rate_or_burst_is_made_safe() {
        let buckets = TokenBuckets::default();
        let now = Instant::now();
        let broken = Rate {
            per_second: 0.0,
            burst: 0.0,
        };
        assert!(buckets.take("k", broken, now).is_ok());
        assert!(buckets.take("k", broken, now).is_err());
    }

    #[test]
    fn per_period_spreads_the_count_over_the_period() {
        let rate = Rate::per_period(5, Duration::from_secs(15 * 60));
        assert_eq!(rate.burst, 5.0);
        assert!((rate.per_second - 5.0 / 900.0).abs() < 1e-12);
    }
}
