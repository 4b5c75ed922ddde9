//! The conformance cases of [`Removals`](crate::Removals) and
//! [`Holds`](crate::Holds): bodies leave only under a stored record that
//! covers them, leaving their ids, leaf hashes and tree intact.

use crate::conformance::sample_events;
use crate::{NewHold, RemovalKind, RemovedBody, Store, StoreError};
use auditlog_core::coverage::{covers_json, SeqRange};
use auditlog_core::{EventFilter, NewEvent, Taxonomy, Timestamp};
use serde_json::json;

/// An `Auditlog Retention` / `Prune` record covering `ranges`.
pub fn prune_record(ranges: &[SeqRange]) -> NewEvent {
    let body = json!({
        "event_type": "Auditlog Retention", "action": "Prune",
        "actor": {"id": "auditlog"},
        "details": {"covers": covers_json(ranges)},
    });
    NewEvent::parse(
        &body,
        &Taxonomy::default().with_own_types(),
        Timestamp::now(),
    )
    .expect("a prune record parses")
}

fn body(seq: u64, prefix: &str) -> RemovedBody {
    RemovedBody {
        seq,
        event_id: format!("{prefix}{}", seq - 1),
    }
}

pub async fn bodies_leave_only_under_a_covering_record(store: &dyn Store) {
    let account = store.create_account("conf-removal").await.unwrap();
    let events = sample_events(10, "r");
    let ids: Vec<String> = events.iter().map(|e| e.id().to_string()).collect();
    assert_eq!(ids[0], "r0", "sample ids are the prefix and the index");
    store.append(&account, events.clone()).await.unwrap();
    let root_before = crate::tree::tree_root(store, account.id, 10).await.unwrap();

    // No record: no coverage can be added, nothing can be removed.
    let refused = store
        .add_coverage(account.id, 5, &[SeqRange::new(1, 4).unwrap()])
        .await;
    assert!(refused.is_err(), "seq 5 is not a removal record");
    let refused = store
        .remove_bodies(account.id, 11, RemovalKind::Pruned, &[body(1, "r")])
        .await;
    assert!(refused.is_err(), "no record covers seq 1");

    let receipts = store
        .append(
            &account,
            vec![prune_record(&[SeqRange::new(1, 4).unwrap()])],
        )
        .await
        .unwrap();
    assert_eq!(receipts[0].seq, 11);
    // A range reaching the record itself is refused.
    assert!(store
        .add_coverage(account.id, 11, &[SeqRange::new(5, 11).unwrap()])
        .await
        .is_err());
    store
        .add_coverage(account.id, 11, &[SeqRange::new(1, 4).unwrap()])
        .await
        .unwrap();
    store
        .add_coverage(account.id, 11, &[SeqRange::new(1, 4).unwrap()])
        .await
        .expect("adding the same coverage again is harmless");
    assert_eq!(store.coverage_records(account.id).await.unwrap(), vec![11]);

    // A batch with one uncovered seq removes nothing.
    let mixed = [body(2, "r"), body(6, "r")];
    assert!(store
        .remove_bodies(account.id, 11, RemovalKind::Pruned, &mixed)
        .await
        .is_err());
    assert_eq!(store.removed_count(account.id).await.unwrap(), 0);
    // A wrong id is refused.
    let wrong = [RemovedBody {
        seq: 2,
        event_id: "r7".into(),
    }];
    assert!(store
        .remove_bodies(account.id, 11, RemovalKind::Pruned, &wrong)
        .await
        .is_err());

    let removed = store
        .remove_bodies(
            account.id,
            11,
            RemovalKind::Pruned,
            &[body(1, "r"), body(2, "r"), body(3, "r")],
        )
        .await
        .unwrap();
    assert_eq!(removed, 3);
    // Again: nothing left to remove.
    let again = store
        .remove_bodies(account.id, 11, RemovalKind::Pruned, &[body(2, "r")])
        .await
        .unwrap();
    assert_eq!(again, 0);
    assert_eq!(store.removed_count(account.id).await.unwrap(), 3);
    // What a resumed job counts: only its range, only under its record.
    let under = |first, last, record| {
        store.removed_under(account.id, record, SeqRange::new(first, last).unwrap())
    };
    assert_eq!(under(1, 10, 11).await.unwrap(), 3);
    assert_eq!(under(3, 10, 11).await.unwrap(), 1);
    assert_eq!(under(1, 2, 11).await.unwrap(), 2);
    assert_eq!(under(1, 10, 10).await.unwrap(), 0);

    // Reads skip them; the id answers with its tombstone; the tree is whole.
    assert!(store.get(account.id, "r1").await.unwrap().is_none());
    let tombstone = store.tombstone(account.id, "r1").await.unwrap().unwrap();
    assert_eq!((tombstone.seq, tombstone.record_seq), (2, 11));
    assert_eq!(tombstone.kind, RemovalKind::Pruned);
    assert!(store.tombstone(account.id, "r4").await.unwrap().is_none());
    let page = store
        .query(account.id, &EventFilter::default(), None, 100)
        .await
        .unwrap();
    let mut seqs: Vec<u64> = page.events.iter().map(|e| e.seq).collect();
    seqs.sort_unstable();
    assert_eq!(seqs, vec![4, 5, 6, 7, 8, 9, 10, 11]);
    let window = store
        .events_in_seq_range(account.id, &EventFilter::default(), 0, 11)
        .await
        .unwrap();
    assert_eq!(window.len(), 8);
    let root_after = crate::tree::tree_root(store, account.id, 10).await.unwrap();
    assert_eq!(root_before, root_after);
    assert_eq!(store.last_seq(account.id).await.unwrap(), 11);
    assert_eq!(store.event_row_count(account.id).await.unwrap(), 11);

    // The scan shows the tombstones in place, with the tree's leaf hashes.
    let scanned = store.scan_events(account.id, 0, 100).await.unwrap();
    let scanned_seqs: Vec<u64> = scanned.iter().map(|e| e.columns.seq).collect();
    assert_eq!(scanned_seqs, (1..=11).collect::<Vec<u64>>());
    for event in &scanned[..3] {
        assert!(event.body_removed && event.leaf_bytes.is_empty());
        assert_eq!(event.stored_leaf_hash.as_ref().map(Vec::len), Some(32));
    }
    assert!(!scanned[3].body_removed);
    assert_eq!(
        store.scan_events(account.id, 1, 2).await.unwrap()[0]
            .columns
            .seq,
        2
    );

    // A resent removed event is a repeat: its original receipt, nothing new.
    let receipts = store
        .append(&account, vec![events[1].clone()])
        .await
        .unwrap();
    assert_eq!(receipts[0].seq, 2);
    assert!(!receipts[0].created);
    assert_eq!(receipts[0].hash, tombstone.leaf_hash);
    assert_eq!(store.last_seq(account.id).await.unwrap(), 11);

    // The record itself is never removed, even under a later record.
    store
        .append(
            &account,
            vec![prune_record(&[SeqRange::new(1, 11).unwrap()])],
        )
        .await
        .unwrap();
    store
        .add_coverage(account.id, 12, &[SeqRange::new(1, 11).unwrap()])
        .await
        .unwrap();
    let record = RemovedBody {
        seq: 11,
        event_id: page
            .events
            .iter()
            .find(|e| e.seq == 11)
            .and_then(|e| e.stored().stored_event().ok())
            .map(|e| e.event().id().to_string())
            .unwrap(),
    };
    let refused = store
        .remove_bodies(account.id, 12, RemovalKind::Pruned, &[record])
        .await;
    assert!(refused.is_err(), "a removal record is never removed");
}

pub async fn holds_are_kept_per_account_and_released_once(store: &dyn Store) {
    let a = store.create_account("conf-holds-a").await.unwrap();
    let b = store.create_account("conf-holds-b").await.unwrap();
    let new = |name: &str| NewHold {
        name: name.into(),
        reason: "litigation 2026-17".into(),
        filters: json!({"user": ["u-1"]}),
        q: Some("type:\"Test Case\"".into()),
        tz: "Europe/Paris".into(),
        created_by: "api-key:1".into(),
    };
    let first = store.create_hold(a.id, &new("case-17")).await.unwrap();
    assert!(first.is_active());
    assert_eq!(first.filters, json!({"user": ["u-1"]}));
    assert_eq!(first.q.as_deref(), Some("type:\"Test Case\""));
    match store.create_hold(a.id, &new("case-17")).await {
        Err(StoreError::AlreadyExists(_)) => {}
        other => panic!("a second active hold of one name: {other:?}"),
    }
    store.create_hold(b.id, &new("case-17")).await.unwrap();
    let second = store.create_hold(a.id, &new("case-18")).await.unwrap();
    let listed: Vec<i64> = store
        .holds(a.id, false)
        .await
        .unwrap()
        .iter()
        .map(|h| h.id)
        .collect();
    assert_eq!(listed, vec![second.id, first.id], "newest first");
    assert!(store.hold(b.id, first.id).await.unwrap().is_none());
    assert!(matches!(
        store.release_hold(b.id, first.id, "x").await,
        Err(StoreError::NotFound(_))
    ));

    let released = store.release_hold(a.id, first.id, "user:3").await.unwrap();
    assert!(!released.is_active());
    assert_eq!(released.released_by.as_deref(), Some("user:3"));
    assert!(matches!(
        store.release_hold(a.id, first.id, "user:3").await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(store.holds(a.id, false).await.unwrap().len(), 1);
    assert_eq!(store.holds(a.id, true).await.unwrap().len(), 2);
    // The name is free again once released.
    store.create_hold(a.id, &new("case-17")).await.unwrap();
}
