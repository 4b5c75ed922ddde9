//! An event as a store keeps it: its leaf bytes and, for a version 2 leaf,
//! the personal values kept beside it (`leaf_v2::personal`). Everything that
//! serves or reads a stored event goes through here, so that version 1 and
//! version 2 events are told apart in one place.
//!
//! A version 1 leaf is the stored event itself: it is served as its bytes
//! with `hash` spliced in. A version 2 leaf hides the personal values behind
//! commitments: it is served opened, with the plain values and `openings`.

use crate::event::LeafError;
use crate::leaf_v2::{self, LeafV2Error};
use crate::leaf_view::LeafView;
use crate::{leaf, StoredEvent};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// Why a stored event cannot be read or served.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error(transparent)]
    Leaf(#[from] LeafError),
    #[error(transparent)]
    LeafV2(#[from] LeafV2Error),
    #[error("a version 1 leaf has no personal values, but some are stored beside it")]
    PersonalBesideV1,
    #[error("the leaf is version 2 but no personal values are stored beside it")]
    PersonalMissing,
    #[error("the personal values stored beside the leaf do not open its commitments")]
    PersonalAltered,
}

/// Borrowed parts of one stored event.
#[derive(Debug, Clone, Copy)]
pub struct StoredRecord<'a> {
    pub leaf_bytes: &'a [u8],
    /// The stored personal values of a version 2 leaf; `None` for version 1.
    pub personal: Option<&'a [u8]>,
}

impl<'a> StoredRecord<'a> {
    pub fn new(leaf_bytes: &'a [u8], personal: Option<&'a [u8]>) -> Self {
        Self {
            leaf_bytes,
            personal,
        }
    }

    /// Whether this is a version 2 event whose personal values were erased
    /// (`leaf_v2::erased`): served with `"[erased]"` and `"erased": true`.
    pub fn is_erased(&self) -> bool {
        self.personal.is_some_and(leaf_v2::erased::is_erased_form)
    }

    /// The served event without `hash`: the leaf's JSON for version 1, the
    /// opened leaf for version 2 (for an erased one, its values replaced).
    pub fn served_map(&self) -> Result<Map<String, Value>, RecordError> {
        match self.personal {
            Some(erased) if leaf_v2::erased::is_erased_form(erased) => {
                Ok(leaf_v2::erased::open_erased(self.leaf_bytes, erased)?)
            }
            Some(personal) => Ok(leaf_v2::open(self.leaf_bytes, personal)?),
            None => match serde_json::from_slice(self.leaf_bytes).map_err(LeafError::NotJson)? {
                Value::Object(map) => Ok(map),
                _ => Err(LeafError::NotAnObject.into()),
            },
        }
    }

    /// The event with its plain values (what idempotency compares, filters
    /// match and the console shows).
    pub fn stored_event(&self) -> Result<StoredEvent, RecordError> {
        match self.personal {
            Some(_) => Ok(StoredEvent::from_json_map(&self.served_map()?)?),
            None => Ok(StoredEvent::from_leaf_bytes(self.leaf_bytes)?),
        }
    }

    /// Appends the API's JSON of this event to `out`: its members and
    /// `hash`. A version 1 leaf is spliced, byte for byte as hashed.
    pub fn write_api_json(&self, leaf_hash: &[u8], out: &mut Vec<u8>) -> Result<(), RecordError> {
        match self.personal {
            None => {
                crate::event::write_api_json(self.leaf_bytes, leaf_hash, out);
                Ok(())
            }
            Some(_) => {
                let mut served = self.served_map()?;
                served.insert("hash".into(), Value::String(leaf::to_hex(leaf_hash)));
                // Writing a `Map` of `Value`s into a Vec cannot fail.
                serde_json::to_writer(&mut *out, &served).map_err(LeafError::NotJson)?;
                Ok(())
            }
        }
    }

    /// The same bytes as [`write_api_json`](Self::write_api_json), written
    /// without a `Value` tree where it can be (`leaf_v2::write_opened`: the
    /// members spliced from the stored bytes; `leaf_v2::splice`'s tests
    /// compare the two byte for byte): what the API's pages, JSON Lines
    /// exports and log streams serve. Building the tree was a fifth of a
    /// first page's CPU (BENCHMARKS.md, "First pages").
    pub fn write_served_json(
        &self,
        leaf_hash: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), RecordError> {
        if let Some(personal) = self.personal {
            if leaf_v2::write_opened(self.leaf_bytes, personal, leaf_hash, out).is_some() {
                return Ok(());
            }
        }
        self.write_api_json(leaf_hash, out)
    }

    /// [`write_api_json`](Self::write_api_json) into a buffer of its own.
    pub fn api_json(&self, leaf_hash: &[u8]) -> Result<Vec<u8>, RecordError> {
        let mut out = Vec::with_capacity(self.leaf_bytes.len() + 200);
        self.write_api_json(leaf_hash, &mut out)?;
        Ok(out)
    }

    /// Whether the leaf's version and the stored personal values fit: a
    /// version 2 leaf has personal values that open every commitment (the
    /// leaf rebuilt from the opened event is byte for byte the stored leaf),
    /// a version 1 leaf has none. What `verify` checks of each event.
    pub fn check(&self) -> Result<(), RecordError> {
        let is_v2 = is_version_2(self.leaf_bytes);
        match (is_v2, self.personal) {
            (false, None) => Ok(()),
            (false, Some(_)) => Err(RecordError::PersonalBesideV1),
            (true, None) => Err(RecordError::PersonalMissing),
            (true, Some(_)) if self.is_erased() => Err(RecordError::PersonalMissing),
            (true, Some(_)) => {
                let served = self.served_map()?;
                let rebuilt = leaf_v2::rebuild_leaf(&Value::Object(served))?;
                if rebuilt == self.leaf_bytes {
                    Ok(())
                } else {
                    Err(RecordError::PersonalAltered)
                }
            }
        }
    }
}

impl StoredRecord<'_> {
    /// [`check`](Self::check) of a record already read into `view` (with
    /// its personal values): when `personal` is the leaf's only commitment,
    /// it is recomputed from the stored bytes of the personal object, which
    /// is what sealing hashed, without building the opened event; anything
    /// else takes the full check. What `verify` runs per event.
    pub fn check_with_view(&self, view: &LeafView<'_>) -> Result<(), RecordError> {
        match (view.is_version_2(), self.personal.is_some()) {
            (false, false) => Ok(()),
            (false, true) => Err(RecordError::PersonalBesideV1),
            (true, false) => Err(RecordError::PersonalMissing),
            (true, true) if self.is_erased() => Err(RecordError::PersonalMissing),
            (true, true) => {
                let quick = match (view.personal_commitment(), view.only_personal_opening()) {
                    (Some(committed), Some((object, salt))) if !view.details_committed() => {
                        Some((committed, object, salt))
                    }
                    _ => None,
                };
                let Some((committed, object, salt)) = quick else {
                    return self.check();
                };
                let salt = BASE64
                    .decode(salt.as_str())
                    .map_err(|_| RecordError::PersonalAltered)?;
                let mut hasher = Sha256::new();
                hasher.update(&salt);
                hasher.update(object.as_bytes());
                if salt.len() == leaf_v2::SALT_BYTES
                    && BASE64.encode(hasher.finalize()) == committed
                {
                    Ok(())
                } else {
                    Err(RecordError::PersonalAltered)
                }
            }
        }
    }
}

/// Whether leaf bytes are a version 2 leaf. Canonical JSON sorts members by
/// name, so `"v":2` is found as a member of the top-level object only when
/// it is one: checked on the parsed object, not by a substring search.
pub fn is_version_2(leaf_bytes: &[u8]) -> bool {
    #[derive(serde::Deserialize)]
    struct Version {
        #[serde(default)]
        v: Option<u64>,
    }
    serde_json::from_slice::<Version>(leaf_bytes)
        .map(|version| version.v == Some(leaf_v2::VERSION))
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::leaf_v2::{seal, DetailsPath, OsSalts, Source};
    use crate::{NewEvent, Taxonomy, Timestamp};
    use serde_json::json;

    fn stored() -> StoredEvent {
        let now = Timestamp::parse("now", "2026-11-25T15:00:00Z").unwrap();
        let body = json!({
            "id": "e-1", "time": "2026-11-25T14:03:07.123456Z", "event_type": "Test Case", "action": "Update",
            "actor": {"id": "u-17", "name": "Ada Lovelace", "email": "ada@example.com"},
            "project": "Checkout", "target": {"id": "TC-1042"},
            "details": {"assignee": "Grace", "changes": [{"field": "title", "old": "a", "new": "b"}]},
            "context": {"ip": "203.0.113.7", "request_id": "r-88"}
        });
        StoredEvent::new(
            "acme",
            7,
            now,
            NewEvent::parse(&body, &Taxonomy::default(), now).unwrap(),
        )
    }

    fn sealed(paths: &[&str]) -> crate::leaf_v2::SealedLeaf {
        let paths: Vec<DetailsPath> = paths
            .iter()
            .map(|p| DetailsPath::parse(p).unwrap())
            .collect();
        let source = Source::ApiKey {
            key: "key_1".into(),
            name: String::new(),
        };
        seal(&stored(), &source, &paths, &mut OsSalts).unwrap()
    }

    #[test]
    fn a_v2_record_serves_the_plain_event_and_reads_back_the_same_event() {
        let leaf = sealed(&["details.assignee"]);
        let text = String::from_utf8(leaf.leaf_bytes.clone()).unwrap();
        for secret in [
            "Ada Lovelace",
            "ada@example.com",
            "203.0.113.7",
            "u-17",
            "Grace",
        ] {
            assert!(!text.contains(secret), "{secret} in the leaf {text}");
        }
        let record = StoredRecord::new(&leaf.leaf_bytes, Some(&leaf.personal));
        record.check().unwrap();
        let event = record.stored_event().unwrap();
        assert_eq!(event.event(), stored().event());
        let hash = leaf::leaf_hash(&leaf.leaf_bytes);
        let served: Value = serde_json::from_slice(&record.api_json(&hash).unwrap()).unwrap();
        assert_eq!(served["actor"]["email"], "ada@example.com");
        assert_eq!(served["context"]["ip"], "203.0.113.7");
        assert_eq!(served["context"]["request_id"], "r-88");
        assert_eq!(served["details"]["assignee"], "Grace");
        assert_eq!(served["v"], 2);
        assert_eq!(served["source"]["kind"], "api_key");
        assert_eq!(served["hash"], leaf::to_hex(&hash));
        assert!(served["openings"]["personal"].is_string());
        assert!(served["openings"]["details.assignee"].is_string());
        // The served event rebuilds the leaf.
        assert_eq!(
            leaf_v2::rebuild_leaf(&served).unwrap(),
            leaf.leaf_bytes,
            "rebuilt from {served}"
        );
    }

    #[test]
    fn altered_personal_values_or_a_missing_table_row_are_caught() {
        let leaf = sealed(&[]);
        let altered = String::from_utf8(leaf.personal.clone())
            .unwrap()
            .replace("Ada Lovelace", "Eve");
        let record = StoredRecord::new(&leaf.leaf_bytes, Some(altered.as_bytes()));
        assert!(matches!(record.check(), Err(RecordError::PersonalAltered)));
        let missing = StoredRecord::new(&leaf.leaf_bytes, None);
        assert!(matches!(missing.check(), Err(RecordError::PersonalMissing)));
        let v1 = stored().leaf_bytes();
        assert!(StoredRecord::new(&v1, None).check().is_ok());
        assert!(matches!(
            StoredRecord::new(&v1, Some(&leaf.personal)).check(),
            Err(RecordError::PersonalBesideV1)
        ));
    }

    /// The quick check (`verify`'s) and the full check agree, on intact and
    /// altered personal values, with and without committed details.
    #[test]
    fn the_quick_check_agrees_with_the_full_check() {
        for declared in [&[][..], &["details.assignee"][..]] {
            let leaf = sealed(declared);
            let text = String::from_utf8(leaf.personal.clone()).unwrap();
            let altered = [
                text.clone(),
                text.replace("Ada Lovelace", "Eve"),
                text.replace("203.0.113.7", "203.0.113.8"),
                text.replace(
                    "\"openings\":{",
                    "\"openings\":{\"details.x\":\"AAAAAAAAAAAAAAAAAAAAAA==\",",
                ),
            ];
            for (i, personal) in altered.iter().enumerate() {
                let record = StoredRecord::new(&leaf.leaf_bytes, Some(personal.as_bytes()));
                let view = LeafView::parse(&leaf.leaf_bytes)
                    .unwrap()
                    .with_personal(personal.as_bytes())
                    .unwrap();
                let quick = record.check_with_view(&view);
                assert_eq!(
                    quick.is_ok(),
                    record.check().is_ok(),
                    "case {i} {declared:?}"
                );
                assert_eq!(quick.is_ok(), i == 0, "case {i} {declared:?}: {quick:?}");
            }
        }
    }

    #[test]
    fn a_v1_record_is_served_as_its_bytes_with_the_hash() {
        let v1 = stored().leaf_bytes();
        let hash = leaf::leaf_hash(&v1);
        let record = StoredRecord::new(&v1, None);
        assert_eq!(
            record.api_json(&hash).unwrap(),
            crate::event::api_json(&v1, &hash)
        );
        assert!(!is_version_2(&v1));
        assert_eq!(record.stored_event().unwrap(), stored());
    }
}
