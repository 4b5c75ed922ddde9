//! Turning a request's planned new events into what a backend writes: each
//! a version 2 leaf (SPEC "Leaf version 2") with its hash and the personal
//! values kept beside it. Shared so that both backends seal alike, and done
//! for the whole request before any of it is written, so that an event too
//! large for a log entry fails its request and leaves nothing half-written.

use crate::append_plan::Planned;
use crate::{Account, Result, StoreError};
use auditlog_core::leaf_v2::{self, DetailsPath, LeafV2Error, OsSalts, SaltSource, Source};
use auditlog_core::{leaf, NewEvent, StoredEvent, Timestamp};

/// One new event, sealed: what the backend stores for it.
#[derive(Debug, Clone)]
pub struct SealedEvent {
    pub seq: u64,
    pub leaf_bytes: Vec<u8>,
    pub hash: [u8; 32],
    pub personal: Vec<u8>,
}

/// Seals every event `plan` marks new (`None` for the others, in request
/// order), committing to the actor's and the context's personal values and
/// to the values at `personal_paths` (the account's declared paths, read
/// in the transaction that writes the events).
pub fn seal_request(
    account: &Account,
    source: &Source,
    received_at: Timestamp,
    events: &[NewEvent],
    plan: &[Planned],
    personal_paths: &[DetailsPath],
) -> Result<Vec<Option<SealedEvent>>> {
    seal_request_with(
        account,
        source,
        received_at,
        events,
        plan,
        personal_paths,
        &mut OsSalts,
    )
}

/// [`seal_request`] with the salts drawn from `salts`.
pub fn seal_request_with(
    account: &Account,
    source: &Source,
    received_at: Timestamp,
    events: &[NewEvent],
    plan: &[Planned],
    personal_paths: &[DetailsPath],
    salts: &mut dyn SaltSource,
) -> Result<Vec<Option<SealedEvent>>> {
    events
        .iter()
        .zip(plan)
        .enumerate()
        .map(|(index, (event, planned))| {
            let Planned::New(seq) = planned else {
                return Ok(None);
            };
            let stored = StoredEvent::new(account.name.clone(), *seq, received_at, event.clone());
            let sealed =
                leaf_v2::seal(&stored, source, personal_paths, salts).map_err(|e| match e {
                    LeafV2Error::TooLarge { bytes, limit } => StoreError::TooLarge {
                        index,
                        id: event.id().to_string(),
                        bytes,
                        limit,
                    },
                    LeafV2Error::Randomness(cause) => StoreError::unavailable_caused_by(
                        "cannot draw the salts of a new event",
                        cause,
                    ),
                    other => StoreError::internal_caused_by("cannot seal a new event", other),
                })?;
            Ok(Some(SealedEvent {
                seq: *seq,
                hash: leaf::leaf_hash(&sealed.leaf_bytes),
                leaf_bytes: sealed.leaf_bytes,
                personal: sealed.personal,
            }))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use auditlog_core::{StoredRecord, Taxonomy};
    use serde_json::json;

    fn account() -> Account {
        Account {
            id: 1,
            name: "acme".into(),
            taxonomy: Taxonomy::default(),
        }
    }

    fn event(details_bytes: usize) -> NewEvent {
        let now = Timestamp::now();
        NewEvent::parse(
            &json!({"event_type": "Test Case", "action": "Create", "actor": {"id": "u-1", "email": "a@b.c"},
                    "details": {"blob": "x".repeat(details_bytes)}}),
            &Taxonomy::default(),
            now,
        )
        .unwrap()
    }

    #[test]
    fn new_events_become_v2_leaves_and_repeats_are_left_out() {
        let events = [event(10), event(10)];
        let plan = [Planned::New(5), Planned::SameAs(0)];
        let sealed = seal_request(
            &account(),
            &Source::System,
            Timestamp::now(),
            &events,
            &plan,
            &[],
        )
        .unwrap();
        let first = sealed[0].as_ref().unwrap();
        assert!(sealed[1].is_none());
        assert_eq!(first.seq, 5);
        assert_eq!(first.hash, leaf::leaf_hash(&first.leaf_bytes));
        let record = StoredRecord::new(&first.leaf_bytes, Some(&first.personal));
        record.check().unwrap();
        assert!(events[0].same_content_as(record.stored_event().unwrap().event()));
        assert!(!String::from_utf8_lossy(&first.leaf_bytes).contains("a@b.c"));
    }

    #[test]
    fn a_declared_path_is_committed_with_its_own_opening() {
        let events = [event(10)];
        let declared = [DetailsPath::parse("details.blob").unwrap()];
        let sealed = seal_request(
            &account(),
            &Source::System,
            Timestamp::now(),
            &events,
            &[Planned::New(1)],
            &declared,
        )
        .unwrap();
        let first = sealed[0].as_ref().unwrap();
        let leaf: serde_json::Value = serde_json::from_slice(&first.leaf_bytes).unwrap();
        assert!(leaf["details"]["blob"]["c"].is_string(), "{leaf}");
        assert!(!String::from_utf8_lossy(&first.leaf_bytes).contains("xxxxxxxxxx"));
        let record = StoredRecord::new(&first.leaf_bytes, Some(&first.personal));
        record.check().unwrap();
        let served: serde_json::Value =
            serde_json::from_slice(&record.api_json(&first.hash).unwrap()).unwrap();
        assert_eq!(served["details"]["blob"], "x".repeat(10));
        assert!(served["openings"]["details.blob"].is_string(), "{served}");
    }

    #[test]
    fn an_event_over_the_entry_limit_names_its_index() {
        // details may hold 64 KiB; with the rest of the event the leaf passes 65,535 bytes.
        let events = [event(10), event(65_400)];
        let plan = [Planned::New(1), Planned::New(2)];
        let refused = seal_request(
            &account(),
            &Source::System,
            Timestamp::now(),
            &events,
            &plan,
            &[],
        )
        .unwrap_err();
        match refused {
            StoreError::TooLarge {
                index,
                bytes,
                limit,
                ..
            } => {
                assert_eq!(index, 1);
                assert!(bytes > limit && limit == leaf_v2::MAX_LEAF_BYTES);
            }
            other => panic!("expected TooLarge, got {other:?}"),
        }
    }
}
