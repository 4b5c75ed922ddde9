//! The stored bodies (leaf bytes) of a run of an account's entries, in
//! leaf order: what a C2SP entry bundle (`/tiles/<account>/tile/entries/…`)
//! serves. This is the one place that decides whether an entry's body is
//! still present: pruning (SPEC "Retention") removes bodies but keeps every
//! tree hash, so a seq inside the tree whose event the store no longer
//! returns is an absent body, and the bundle that needs it answers 410.
//! Whoever changes how a removed body looks to the readers (a row kept
//! without its leaf, say) changes it here.

use crate::{AccountId, EventReader, Result, StoreError};
use auditlog_core::EventFilter;

/// The entries of one run of seqs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryBodies {
    /// Every entry's leaf bytes, exactly as hashed into the tree, in seq order.
    Present(Vec<Vec<u8>>),
    /// The body of this seq (the lowest such) is no longer stored.
    Absent { seq: u64 },
}

/// The leaf bytes of seqs `after_seq + 1 ..= through_seq`. The caller takes
/// `through_seq` from the tree's size (`last_seq`), so every seq of the run
/// is committed and has its tree hashes.
pub async fn entry_bodies(
    reader: &dyn EventReader,
    account: AccountId,
    after_seq: u64,
    through_seq: u64,
) -> Result<EntryBodies> {
    let records = reader
        .events_in_seq_range(account, &EventFilter::default(), after_seq, through_seq)
        .await?;
    let mut bodies = Vec::with_capacity(records.len());
    let mut expected = after_seq + 1;
    for record in records {
        if record.seq < expected {
            return Err(StoreError::internal(format!(
                "the seq-range read returned seq {} twice or out of order",
                record.seq
            )));
        }
        if record.seq > expected {
            return Ok(EntryBodies::Absent { seq: expected });
        }
        bodies.push(record.leaf_bytes);
        expected += 1;
    }
    if expected <= through_seq {
        return Ok(EntryBodies::Absent { seq: expected });
    }
    Ok(EntryBodies::Present(bodies))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Bucket, EventRecord, Page};
    use async_trait::async_trait;
    use auditlog_core::{Cursor, Interval, Timestamp};

    /// A reader whose seq-range read returns the seqs it holds (a store
    /// whose pruned bodies are no longer returned).
    struct Holding(Vec<u64>);

    #[async_trait]
    impl EventReader for Holding {
        async fn query(
            &self,
            _: AccountId,
            _: &EventFilter,
            _: Option<Cursor>,
            _: usize,
        ) -> Result<Page> {
            unreachable!("bundles read by seq only")
        }
        async fn get(&self, _: AccountId, _: &str) -> Result<Option<EventRecord>> {
            unreachable!("bundles read by seq only")
        }
        async fn histogram(
            &self,
            _: AccountId,
            _: &EventFilter,
            _: Interval,
        ) -> Result<Vec<Bucket>> {
            unreachable!("bundles read by seq only")
        }
        async fn last_seq(&self, _: AccountId) -> Result<u64> {
            Ok(self.0.iter().copied().max().unwrap_or(0))
        }
        async fn events_in_seq_range(
            &self,
            _: AccountId,
            _: &EventFilter,
            after_seq: u64,
            through_seq: u64,
        ) -> Result<Vec<EventRecord>> {
            Ok(self
                .0
                .iter()
                .filter(|&&seq| seq > after_seq && seq <= through_seq)
                .map(|&seq| EventRecord {
                    seq,
                    time: Timestamp::from_micros(0),
                    leaf_bytes: format!("leaf {seq}").into_bytes(),
                    leaf_hash: [0; 32],
                    personal: None,
                })
                .collect())
        }
    }

    #[tokio::test]
    async fn every_body_of_the_run_or_the_first_absent_seq() {
        let all = Holding((1..=10).collect());
        assert_eq!(
            entry_bodies(&all, 1, 2, 5).await.unwrap(),
            EntryBodies::Present(vec![
                b"leaf 3".to_vec(),
                b"leaf 4".to_vec(),
                b"leaf 5".to_vec()
            ])
        );
        // Pruned seqs 1..=4: a run that touches them has an absent body.
        let pruned = Holding((5..=10).collect());
        assert_eq!(
            entry_bodies(&pruned, 1, 0, 6).await.unwrap(),
            EntryBodies::Absent { seq: 1 }
        );
        assert_eq!(
            entry_bodies(&pruned, 1, 4, 6).await.unwrap(),
            EntryBodies::Present(vec![b"leaf 5".to_vec(), b"leaf 6".to_vec()])
        );
        // A hole inside the run, and one at its end.
        let holes = Holding(vec![1, 2, 4, 5]);
        assert_eq!(
            entry_bodies(&holes, 1, 0, 5).await.unwrap(),
            EntryBodies::Absent { seq: 3 }
        );
        assert_eq!(
            entry_bodies(&holes, 1, 3, 6).await.unwrap(),
            EntryBodies::Absent { seq: 6 }
        );
    }
}
