//! The idempotency decision every backend's writer makes before it writes a
//! request: each event is new, a repeat of a stored event with the same id
//! and content, a repeat of an earlier event of the same request, or a
//! conflict that fails the whole request. Kept here so that the backends
//! cannot drift apart on SPEC's idempotency rules.

use crate::{Receipt, Result, StoreError};
use auditlog_core::{NewEvent, StoredRecord};
use std::collections::HashMap;

/// A stored event as far as idempotency needs it.
#[derive(Debug, Clone)]
pub struct KnownEvent {
    pub seq: u64,
    pub leaf_bytes: Vec<u8>,
    pub hash: [u8; 32],
    /// The personal values beside a version 2 leaf.
    pub personal: Option<Vec<u8>>,
    /// The event's body was removed (pruned or erased, `removal`): only its
    /// seq, hash and id are left, so a resent event with its id gets the
    /// original receipt without a comparison of content (there is none to
    /// compare with, and storing it again would give one id two seqs).
    pub removed: bool,
}

impl KnownEvent {
    /// An event whose body was removed: `leaf_bytes` empty.
    pub fn removed(seq: u64, hash: [u8; 32]) -> Self {
        KnownEvent {
            seq,
            leaf_bytes: Vec::new(),
            hash,
            personal: None,
            removed: true,
        }
    }
}

/// What the writer does with one event of a request.
#[derive(Debug)]
pub enum Planned {
    /// Store it with this `seq`.
    New(u64),
    /// Already stored with the same content: answer with the original receipt.
    Existing(Receipt),
    /// A repeat of an earlier event (this index) of the same request.
    SameAs(usize),
}

/// Plans one request without writing. New events get `first_seq`,
/// `first_seq + 1`, … in request order; `lookup` finds a stored event of the
/// request's account by id. A conflict fails the whole request.
pub fn plan_request(
    events: &[NewEvent],
    first_seq: u64,
    mut lookup: impl FnMut(&str) -> Result<Option<KnownEvent>>,
) -> Result<Vec<Planned>> {
    let mut plan = Vec::with_capacity(events.len());
    let mut in_request: HashMap<&str, usize> = HashMap::new();
    let mut assigned = first_seq;
    for (index, event) in events.iter().enumerate() {
        let conflict = || StoreError::Conflict {
            index,
            id: event.id().to_string(),
        };
        if let Some(&earlier) = in_request.get(event.id()) {
            if event.same_content_as(&events[earlier]) {
                plan.push(Planned::SameAs(earlier));
                continue;
            }
            return Err(conflict());
        }
        in_request.insert(event.id(), index);
        match lookup(event.id())? {
            Some(stored) if stored.removed => plan.push(Planned::Existing(Receipt {
                id: event.id().to_string(),
                seq: stored.seq,
                hash: stored.hash,
                created: false,
            })),
            Some(stored) => {
                let stored_event =
                    StoredRecord::new(&stored.leaf_bytes, stored.personal.as_deref())
                        .stored_event()
                        .map_err(|e| {
                            StoreError::internal_caused_by(
                                format!("the stored event with id {:?} cannot be read", event.id()),
                                e,
                            )
                        })?;
                if !event.same_content_as(stored_event.event()) {
                    return Err(conflict());
                }
                plan.push(Planned::Existing(Receipt {
                    id: event.id().to_string(),
                    seq: stored.seq,
                    hash: stored.hash,
                    created: false,
                }));
            }
            None => {
                plan.push(Planned::New(assigned));
                assigned += 1;
            }
        }
    }
    Ok(plan)
}

/// A stored 32-byte hash, checked.
pub fn hash_from_bytes(bytes: &[u8]) -> Result<[u8; 32]> {
    bytes
        .try_into()
        .map_err(|_| StoreError::internal(format!("stored hash has {} bytes, not 32", bytes.len())))
}
