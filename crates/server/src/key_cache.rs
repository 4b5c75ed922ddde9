//! Recently verified API keys, so that a request does not cost a storage
//! round trip just to authenticate. Held by the shared state and filled by
//! the `auth` extractor.

use auditlog_store::ApiKeyGrant;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a verified key is trusted without asking the store again. Keys
/// cannot be revoked yet; when they can, this bounds how long a revoked key
/// still works on one server.
pub const KEY_CACHE_TTL: Duration = Duration::from_secs(10);
/// Most keys remembered; beyond that the cache starts afresh (keys are few).
const KEY_CACHE_MAX: usize = 10_000;

/// Recently verified API keys by hash. Only keys the store knows are kept,
/// so a key created a moment ago by the CLI is looked up (and usable) at once.
#[derive(Default)]
pub struct KeyCache {
    entries: Mutex<HashMap<[u8; 32], (Instant, ApiKeyGrant)>>,
}

impl KeyCache {
    /// The grant of a key verified within the last [`KEY_CACHE_TTL`].
    pub fn get(&self, key_hash: &[u8; 32]) -> Option<ApiKeyGrant> {
        let entries = self.entries.lock().ok()?;
        match entries.get(key_hash) {
            Some((at, grant)) if at.elapsed() < KEY_CACHE_TTL => Some(grant.clone()),
            _ => None,
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
        }
    }

    #[test]
    fn the_key_cache_answers_only_for_keys_it_was_given() {
        let cache = KeyCache::default();
        let (a, b) = (hash_api_key("alk_a"), hash_api_key("alk_b"));
        assert!(cache.get(&a).is_none());
        cache.put(a, grant(7));
        assert_eq!(cache.get(&a).map(|g| g.key_id), Some(7));
        assert!(cache.get(&b).is_none());
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
        assert!(cache.get(&a).is_none());
    }
}
