//! Leaf bytes at rest (issue 12, "Events stored in the order of the log"):
//! version 2 leaves compressed with zstd and a dictionary trained per account
//! on its own version 2 leaves. Small JSON records compress poorly on their
//! own (each leaf repeats the same member names and taxonomy words) and a
//! database's page compression (PostgreSQL's TOAST) skips rows this small;
//! with a dictionary each leaf is compressed alone, so a page of results
//! reads only its own rows.
//!
//! A v2 leaf holds no personal value in clear, so neither does a dictionary
//! trained on v2 leaves; version 1 leaves (which do) are never samples. An
//! account's first leaves are stored as they are; once [`TRAIN_AFTER`] more
//! have been appended the writer trains a dictionary from the latest of them,
//! stores it (ids unique across accounts, never changed) and compresses what
//! follows. Stored leaves are never rewritten.
//!
//! Shared by both backends: they store `(leaf_dict, leaf)` and call
//! [`DictionaryCache::decode`] when they read, so that every record a store
//! hands out holds the exact leaf bytes that were hashed.

use crate::{Result, StoreError};
use auditlog_core::leaf_v2::MAX_LEAF_BYTES;
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use zstd::zstd_safe::{self, CCtx, CDict, DCtx, DDict};

/// Version 2 leaves of an account stored as they are before its dictionary
/// is trained (and the samples it is trained on).
pub const TRAIN_AFTER: u64 = 2_000;
/// The largest dictionary: enough for the member names, taxonomy words and
/// common values of an account's events.
pub const DICTIONARY_BYTES: usize = 64 * 1024;
/// Fewer samples than this train nothing useful: wait for more.
const MIN_SAMPLES: usize = 200;
const LEVEL: i32 = 3;

/// Trains an account's dictionary on version 2 leaves; `None` if there are
/// too few samples or zstd finds nothing to learn from them.
pub fn train(samples: &[Vec<u8>]) -> Option<Vec<u8>> {
    if samples.len() < MIN_SAMPLES {
        return None;
    }
    match zstd::dict::from_samples(samples, DICTIONARY_BYTES) {
        Ok(dictionary) if !dictionary.is_empty() => Some(dictionary),
        Ok(_) => None,
        Err(e) => {
            tracing::warn!(error = %e, "cannot train a leaf dictionary; leaves stay uncompressed for now");
            None
        }
    }
}

/// The writer's side: compresses leaves with one account's dictionary.
pub struct LeafCompressor {
    /// The dictionary's id, stored beside each leaf it compressed.
    pub dictionary_id: i64,
    cdict: CDict<'static>,
    cctx: CCtx<'static>,
}

impl LeafCompressor {
    pub fn new(dictionary_id: i64, dictionary: &[u8]) -> Result<Self> {
        let cdict = CDict::try_create(dictionary, LEVEL).ok_or_else(|| {
            StoreError::internal(format!("leaf dictionary {dictionary_id} cannot be loaded"))
        })?;
        let cctx = CCtx::try_create()
            .ok_or_else(|| StoreError::internal("cannot create a zstd compression context"))?;
        Ok(Self {
            dictionary_id,
            cdict,
            cctx,
        })
    }

    pub fn compress(&mut self, leaf: &[u8]) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(zstd_safe::compress_bound(leaf.len()));
        self.cctx
            .compress_using_cdict(&mut out, leaf, &self.cdict)
            .map_err(|code| {
                StoreError::internal(format!(
                    "cannot compress a leaf: {}",
                    zstd_safe::get_error_name(code)
                ))
            })?;
        Ok(out)
    }
}

/// What a writer does with one account's new leaves: compress them with
/// its dictionary, or store them as they are until enough have been appended
/// to train one. Both backends' writers keep one per account and only read
/// and store dictionaries themselves.
pub enum AccountLeaves {
    Compressed(LeafCompressor),
    /// A dictionary is looked for (or trained) once `since_check` reaches
    /// [`TRAIN_AFTER`].
    AsTheyAre {
        since_check: u64,
    },
}

impl AccountLeaves {
    /// An account whose dictionary has not been looked for: look at once.
    pub fn unknown() -> Self {
        AccountLeaves::AsTheyAre {
            since_check: TRAIN_AFTER,
        }
    }

    /// An account with too few samples to train on: look again later.
    pub fn waiting() -> Self {
        AccountLeaves::AsTheyAre { since_check: 0 }
    }

    /// Whether the writer must look for (or train) the dictionary before
    /// the next leaf.
    pub fn dictionary_due(&self) -> bool {
        matches!(self, AccountLeaves::AsTheyAre { since_check } if *since_check >= TRAIN_AFTER)
    }

    /// The stored form of a new leaf: its dictionary (`None`: as it is) and bytes.
    pub fn encode(&mut self, leaf: Vec<u8>) -> Result<(Option<i64>, Vec<u8>)> {
        match self {
            AccountLeaves::Compressed(compressor) => {
                Ok((Some(compressor.dictionary_id), compressor.compress(&leaf)?))
            }
            AccountLeaves::AsTheyAre { since_check } => {
                *since_check += 1;
                Ok((None, leaf))
            }
        }
    }
}

thread_local! {
    /// One decompression context per thread (a context is ~100 KiB: too much
    /// to make per row, and not shareable between threads).
    static DCTX: RefCell<Option<DCtx<'static>>> = const { RefCell::new(None) };
}

/// The readers' side: every dictionary a store has used, loaded once.
#[derive(Default)]
pub struct DictionaryCache {
    loaded: RwLock<HashMap<i64, Arc<DDict<'static>>>>,
}

impl DictionaryCache {
    /// The exact leaf bytes of a stored leaf: `stored` itself when
    /// `dictionary` is `None`, else decompressed with that dictionary, which
    /// `load` reads from the store the first time it is needed.
    pub fn decode(
        &self,
        dictionary: Option<i64>,
        stored: Vec<u8>,
        load: impl FnOnce(i64) -> Result<Vec<u8>>,
    ) -> Result<Vec<u8>> {
        let Some(id) = dictionary else {
            return Ok(stored);
        };
        let ddict = self.ddict(id, load)?;
        let unreadable = |why: String| {
            StoreError::internal(format!(
                "a stored leaf compressed with dictionary {id} cannot be decompressed ({why}): the leaf or the dictionary was altered"
            ))
        };
        DCTX.with(|cell| {
            let mut cell = cell.borrow_mut();
            if cell.is_none() {
                *cell = DCtx::try_create();
            }
            let dctx = cell.as_mut().ok_or_else(|| {
                StoreError::internal("cannot create a zstd decompression context")
            })?;
            // The frame states its size (the writer's `compress_using_cdict`
            // sets it): a leaf's bytes take what they need, not the 64 KiB a
            // leaf may take at most (which made every record read hold, and
            // the allocator hand out and zero, 64 KiB).
            let capacity = match zstd_safe::get_frame_content_size(&stored) {
                Ok(Some(size)) if size <= MAX_LEAF_BYTES as u64 => size as usize,
                _ => MAX_LEAF_BYTES,
            };
            let mut out = Vec::with_capacity(capacity);
            dctx.decompress_using_ddict(&mut out, &stored, &ddict)
                .map_err(|code| unreadable(zstd_safe::get_error_name(code).to_string()))?;
            Ok(out)
        })
    }

    /// Of `ids`, those not loaded yet: what a backend whose reads are
    /// asynchronous fetches (and [`insert`](Self::insert)s) before decoding.
    pub fn missing(&self, ids: impl IntoIterator<Item = i64>) -> Vec<i64> {
        let loaded = self.loaded.read().ok();
        let mut missing: Vec<i64> = ids
            .into_iter()
            .filter(|id| !loaded.as_ref().is_some_and(|m| m.contains_key(id)))
            .collect();
        missing.sort_unstable();
        missing.dedup();
        missing
    }

    /// Loads dictionary `id` from its stored bytes.
    pub fn insert(&self, id: i64, dictionary: &[u8]) -> Result<()> {
        self.ddict(id, |_| Ok(dictionary.to_vec())).map(|_| ())
    }

    fn ddict(
        &self,
        id: i64,
        load: impl FnOnce(i64) -> Result<Vec<u8>>,
    ) -> Result<Arc<DDict<'static>>> {
        if let Some(ddict) = self.loaded.read().ok().and_then(|m| m.get(&id).cloned()) {
            return Ok(ddict);
        }
        let bytes = load(id)?;
        let ddict = Arc::new(DDict::try_create(&bytes).ok_or_else(|| {
            StoreError::internal(format!("leaf dictionary {id} cannot be loaded"))
        })?);
        if let Ok(mut loaded) = self.loaded.write() {
            loaded.insert(id, ddict.clone());
        }
        Ok(ddict)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaves(n: usize) -> Vec<Vec<u8>> {
        (0..n)
            .map(|i| {
                format!(
                    r#"{{"account":"acme","action":"Update","details":{{"changes":[{{"field":"title","new":"v{i}","old":"v{}"}}]}},"event_type":"Test Case","id":"0190-{i:08}","personal":{{"c":"{:044}"}},"project":"Checkout","received_at":"2026-11-25T15:00:00.{i:06}Z","seq":{i},"source":{{"kind":"api_key","key":"key_0123456789abcdef","name":""}},"target":{{"id":"TC-{i}","name":"Login"}},"time":"2026-11-25T14:03:07.123456Z","v":2}}"#,
                    i.saturating_sub(1),
                    i * 7919
                )
                .into_bytes()
            })
            .collect()
    }

    #[test]
    fn leaves_round_trip_and_shrink_with_a_trained_dictionary() {
        let samples = leaves(1_000);
        let dictionary = train(&samples).expect("enough samples");
        assert!(dictionary.len() <= DICTIONARY_BYTES);
        let mut compressor = LeafCompressor::new(7, &dictionary).unwrap();
        let cache = DictionaryCache::default();
        let mut loads = 0;
        let (mut raw, mut packed) = (0, 0);
        for leaf in leaves(1_100).iter().skip(1_000) {
            let stored = compressor.compress(leaf).unwrap();
            raw += leaf.len();
            packed += stored.len();
            let back = cache
                .decode(Some(7), stored, |id| {
                    loads += 1;
                    assert_eq!(id, 7);
                    Ok(dictionary.clone())
                })
                .unwrap();
            assert_eq!(&back, leaf);
            // Sized by the frame's content size, not the largest leaf.
            assert_eq!(back.capacity(), leaf.len());
        }
        assert_eq!(loads, 1, "the dictionary is loaded once");
        assert!(packed * 3 < raw, "{packed} bytes of {raw}");
        // Uncompressed leaves pass through.
        assert_eq!(
            cache
                .decode(None, b"{}".to_vec(), |_| unreachable!())
                .unwrap(),
            b"{}"
        );
    }

    #[test]
    fn too_few_samples_train_nothing_and_altered_bytes_are_refused() {
        assert!(train(&leaves(10)).is_none());
        let dictionary = train(&leaves(1_000)).unwrap();
        let mut compressor = LeafCompressor::new(1, &dictionary).unwrap();
        let leaf = &leaves(1_001)[1_000];
        let mut stored = compressor.compress(leaf).unwrap();
        let cache = DictionaryCache::default();
        let last = stored.len() - 1;
        stored[last / 2] ^= 0x55;
        match cache.decode(Some(1), stored, |_| Ok(dictionary.clone())) {
            Err(e) => assert!(e.to_string().contains("altered"), "{e}"),
            // zstd checks no checksum by default: a flipped byte may still
            // decode, but never to the same leaf (its hash then differs).
            Ok(back) => assert_ne!(&back, leaf),
        }
        // Another dictionary never yields the leaf either.
        let other = train(&leaves(600)).unwrap();
        let cache = DictionaryCache::default();
        let stored = compressor.compress(leaf).unwrap();
        if let Ok(back) = cache.decode(Some(1), stored, |_| Ok(other.clone())) {
            assert_ne!(&back, leaf);
        }
    }
}
