//! Recently verified API keys, so that a request does not cost a storage
//! round trip just to authenticate. Held by the shared state and filled by
//! the `auth` extractor. Also remembers the minute of each key's last
//! recorded use, so that the store is written at most once a minute per key.

use auditlog_core::Timestamp;
use auditlog_store::ApiKeyGrant;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a verified key (and its account, taxonomy included) is trusted
/// without asking the store again: the bound within which a key revoked,
/// or a taxonomy changed, on another server sharing the database takes
/// effect here (issue 18 promises 5 s). The server that revokes a key
/// forgets it at once ([`KeyCache::forget`]), and an expired key is refused
/// from its expiry on, cached or not.
pub const KEY_CACHE_TTL: Duration = Duration::from_secs(4);
/// Most keys remembered; beyond that the cache starts afresh (keys are few).
const KEY_CACHE_MAX: usize = 10_000;

/// Recently verified API keys by hash. Only keys the store knows are kept,
/// so a key created a moment ago by the CLI is looked up (and usable) at once.
#[derive(Default)]
pub struct KeyCache {
    entries: Mutex<HashMap<[u8; 32], (Instant, ApiKeyGrant)>>,
    /// Key id → the minute (micros) of its last use this server recorded.
    touched: Mutex<HashMap<i64, i64>>,
}

/// The start of the minute `at` falls in.
pub fn minute_of(at: Timestamp) -> Timestamp {
    Timestamp::from_micros(at.micros().div_euclid(60_000_000) * 60_000_000)
}

impl KeyCache {
    /// The grant of a key verified within the last [`KEY_CACHE_TTL`] that
    /// has not expired at `now`.
    pub fn get(&self, key_hash: &[u8; 32], now: Timestamp) -> Option<ApiKeyGrant> {
        let entries = self.entries.lock().ok()?;
        match entries.get(key_hash) {
            Some((at, grant))
                if at.elapsed() < KEY_CACHE_TTL
                    && grant.expires_at.is_none_or(|expiry| expiry > now) =>
            {
                Some(grant.clone())
            }
            _ => None,
        }
    }

    /// Forgets the key with this id (revoked on this server).
    pub fn forget(&self, key_id: i64) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.retain(|_, (_, grant)| grant.key_id != key_id);
        }
    }

    /// Forgets every key of `account` (its taxonomy changed on this
    /// server), so that its next request reads the account afresh.
    pub fn forget_account(&self, account: auditlog_store::AccountId) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.retain(|_, (_, grant)| grant.account.id != account);
        }
    }

    /// Whether a use of `key_id` at `now` should be written to the store:
    /// true once per key and minute on this server.
    pub fn first_use_in_minute(&self, key_id: i64, now: Timestamp) -> Option<Timestamp> {
        let minute = minute_of(now);
        let mut touched = self.touched.lock().ok()?;
        if touched.len() >= KEY_CACHE_MAX {
            touched.clear();
        }
        match touched.insert(key_id, minute.micros()) {
            Some(previous) if previous >= minute.micros() => None,
            _ => Some(minute),
        }
    }

    /// Remembers a key the store has just confirmed.
    pub fn put(&self, key_hash: [u8; 32], grant: ApiKeyGrant) {
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= KEY_CACHE_MAX {
                entries.clear();
            }
            entries.insert(key_hash, (Instant::now(), grant));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokens::hash_api_key;
    use auditlog_store::{Account, Scope};

    fn grant(key_id: i64) -> ApiKeyGrant {
        ApiKeyGrant {
            key_id,
            public_id: format!("key_{key_id}"),
            name: String::new(),
            account: Account {
                id: 1,
                name: "acme".into(),
                taxonomy: Default::default(),
            },
            scopes: vec![Scope::Read],
            expires_at: None,
        }
    }

    #[test]
    fn the_key_cache_answers_only_for_keys_it_was_given() {
        let cache = KeyCache::default();
        let (a, b) = (hash_api_key("alk_a"), hash_api_key("alk_b"));
        let now = Timestamp::now();
        assert!(cache.get(&a, now).is_none());
        cache.put(a, grant(7));
        assert_eq!(cache.get(&a, now).map(|g| g.key_id), Some(7));
        assert!(cache.get(&b, now).is_none());
        cache.forget(7);
        assert!(
            cache.get(&a, now).is_none(),
            "a revoked key is forgotten at once"
        );
        cache.put(a, grant(7));
        cache.put(b, grant(8));
        cache.forget_account(2);
        assert!(cache.get(&a, now).is_some(), "another account's keys stay");
        cache.forget_account(1);
        assert!(
            cache.get(&a, now).is_none() && cache.get(&b, now).is_none(),
            "an account whose taxonomy changed is read afresh"
        );
    }

    #[test]
    fn an_expired_key_is_not_answered_from_the_cache() {
        let cache = KeyCache::default();
        let a = hash_api_key("alk_a");
        let mut expiring = grant(7);
        expiring.expires_at = Some(Timestamp::from_micros(1_000));
        cache.put(a, expiring);
        assert!(cache.get(&a, Timestamp::from_micros(999)).is_some());
        assert!(cache.get(&a, Timestamp::from_micros(1_000)).is_none());
    }

    #[test]
    fn a_use_is_recorded_once_per_key_and_minute() {
        let cache = KeyCache::default();
        let t = |s: i64| Timestamp::from_micros(s * 1_000_000);
        assert_eq!(cache.first_use_in_minute(1, t(125)), Some(t(120)));
        assert_eq!(cache.first_use_in_minute(1, t(179)), None);
        assert_eq!(cache.first_use_in_minute(2, t(130)), Some(t(120)));
        assert_eq!(cache.first_use_in_minute(1, t(180)), Some(t(180)));
    }

    #[test]
    fn cached_keys_expire_after_the_ttl() {
        let cache = KeyCache::default();
        let a = hash_api_key("alk_a");
        cache.put(a, grant(7));
        // Age the entry instead of sleeping.
        if let Some(entry) = cache.entries.lock().unwrap().get_mut(&a) {
            entry.0 = entry.0.checked_sub(KEY_CACHE_TTL).unwrap();
        }
        assert!(cache.get(&a, Timestamp::now()).is_none());
    }
}
