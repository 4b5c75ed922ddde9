//! The conformance cases of [`LogStreams`](crate::LogStreams): every
//! backend passes them (see `conformance`).

use crate::{BatchRecord, Delivery, NewStream, Store, StreamChange, StreamStatus};
use auditlog_core::Timestamp;
use serde_json::json;

fn at(seconds: i64) -> Timestamp {
    Timestamp::from_micros(1_800_000_000_000_000 + seconds * 1_000_000)
}

fn batch(first: u64, last: u64, status: &str) -> BatchRecord {
    BatchRecord {
        first_seq: first,
        last_seq: last,
        events: last - first + 1,
        attempts: 1,
        status: status.into(),
        response: format!("{status} {first}-{last}"),
        at: at(1),
    }
}

fn new_stream(account: i64, url: &str) -> NewStream {
    NewStream {
        account_id: account,
        kind: "webhook".into(),
        format: "native".into(),
        url: url.into(),
        filters: json!({"event_type": ["Test Case"]}),
        sealed_secret: vec![1, 2, 3],
        options: json!({"index": "main"}),
        sealed_client_key: Some(vec![4, 5]),
        cursor: 7,
        created_at: at(0),
    }
}

pub async fn streams_round_trip_and_stay_in_their_account(store: &dyn Store) {
    let a = store.create_account("conf-streams-a").await.unwrap();
    let b = store.create_account("conf-streams-b").await.unwrap();
    let one = store
        .create_stream(new_stream(a.id, "http://127.0.0.1:1/a"))
        .await
        .unwrap();
    assert_eq!(one.status, StreamStatus::Active);
    assert_eq!((one.cursor, one.pending, one.attempts), (7, None, 0));
    assert_eq!(one.filters, json!({"event_type": ["Test Case"]}));
    assert_eq!(one.sealed_secret, vec![1, 2, 3]);
    assert_eq!(one.options, json!({"index": "main"}));
    assert_eq!(one.sealed_client_key, Some(vec![4, 5]));
    let two = store
        .create_stream(new_stream(a.id, "http://127.0.0.1:1/b"))
        .await
        .unwrap();
    let ids: Vec<i64> = store
        .streams(a.id)
        .await
        .unwrap()
        .iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(ids, [one.id, two.id], "oldest first");
    assert!(store.streams(b.id).await.unwrap().is_empty());
    assert!(store.stream_by_id(b.id, one.id).await.unwrap().is_none());
    assert!(store
        .change_stream(b.id, one.id, StreamChange::default(), at(2))
        .await
        .unwrap()
        .is_none());
    assert!(!store.delete_stream(b.id, one.id).await.unwrap());

    let changed = store
        .change_stream(
            a.id,
            one.id,
            StreamChange {
                url: Some("http://127.0.0.1:1/c".into()),
                filters: Some(json!({})),
                sealed_secret: Some(vec![9]),
                options: Some(json!({"sourcetype": "st"})),
                sealed_client_key: Some(None),
                status: Some(StreamStatus::Paused),
                cursor: Some(3),
            },
            at(2),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(changed.url, "http://127.0.0.1:1/c");
    assert_eq!(changed.filters, json!({}));
    assert_eq!(changed.sealed_secret, vec![9]);
    assert_eq!(changed.options, json!({"sourcetype": "st"}));
    assert_eq!(changed.sealed_client_key, None);
    let keyed = store
        .change_stream(
            a.id,
            one.id,
            StreamChange {
                sealed_client_key: Some(Some(vec![6])),
                ..Default::default()
            },
            at(2),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(keyed.sealed_client_key, Some(vec![6]));
    assert_eq!(keyed.options, json!({"sourcetype": "st"}), "kept");
    assert_eq!(changed.status, StreamStatus::Paused);
    assert_eq!(changed.cursor, 3);
    assert_eq!(changed.updated_at, at(2));
    assert!(store.delete_stream(a.id, one.id).await.unwrap());
    assert!(store.stream_by_id(a.id, one.id).await.unwrap().is_none());
    assert_eq!(store.streams(a.id).await.unwrap().len(), 1);
    // Replay from a time: the lowest seq received at or after it.
    let events = crate::samples::sample_events(3, "since");
    store.append(&a, events).await.unwrap();
    let first = store
        .first_seq_received_since(a.id, at(-1_000_000_000))
        .await
        .unwrap();
    assert_eq!(first, Some(1));
    assert_eq!(
        store
            .first_seq_received_since(a.id, Timestamp::from_micros(i64::MAX))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store.first_seq_received_since(b.id, at(0)).await.unwrap(),
        None
    );
    // Leaves no stream to claim for the next case, when all run on one store.
    assert!(store.delete_stream(a.id, two.id).await.unwrap());
}

pub async fn stream_claims_are_exclusive_and_the_cursor_moves_on_acceptance(store: &dyn Store) {
    let a = store.create_account("conf-streams-claim").await.unwrap();
    let s = store
        .create_stream(new_stream(a.id, "http://127.0.0.1:1/x"))
        .await
        .unwrap();
    let paused = store
        .create_stream(new_stream(a.id, "http://127.0.0.1:1/y"))
        .await
        .unwrap();
    store
        .change_stream(
            a.id,
            paused.id,
            StreamChange {
                status: Some(StreamStatus::Paused),
                ..Default::default()
            },
            at(0),
        )
        .await
        .unwrap();
    let claimed = store
        .claim_stream("w1", at(10), at(40))
        .await
        .unwrap()
        .expect("the active stream");
    assert_eq!(claimed.id, s.id);
    assert_eq!(claimed.claimed_by.as_deref(), Some("w1"));
    assert!(
        store
            .claim_stream("w2", at(20), at(50))
            .await
            .unwrap()
            .is_none(),
        "held, and a paused stream is never claimed"
    );
    // A batch's bounds are kept until it is accepted.
    assert!(store.begin_batch(s.id, "w1", 8, 20).await.unwrap());
    assert!(!store.begin_batch(s.id, "w2", 8, 20).await.unwrap());
    let failed = Delivery::Failed {
        batch: batch(8, 20, "failed"),
        status: StreamStatus::Active,
        error: "500".into(),
    };
    assert!(store
        .record_delivery(s.id, "w1", failed, at(21))
        .await
        .unwrap());
    // w1 dies: its lease runs out and w2 takes over, with the same bounds.
    let taken = store
        .claim_stream("w2", at(41), at(70))
        .await
        .unwrap()
        .expect("the lease ran out");
    assert_eq!(taken.pending, Some((8, 20)));
    assert_eq!((taken.attempts, taken.cursor), (1, 7));
    assert_eq!(taken.last_error.as_deref(), Some("500"));
    assert_eq!(taken.failing_since, Some(at(21)));
    assert!(store
        .renew_stream(s.id, "w1", at(80))
        .await
        .unwrap()
        .is_none());
    let accepted = Delivery::Accepted {
        from: 7,
        through: 20,
        batch: Some(batch(8, 20, "delivered")),
        next: None,
    };
    assert!(!store
        .record_delivery(s.id, "w1", accepted.clone(), at(42))
        .await
        .unwrap());
    assert!(store
        .record_delivery(s.id, "w2", accepted.clone(), at(42))
        .await
        .unwrap());
    let now = store
        .renew_stream(s.id, "w2", at(90))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((now.cursor, now.pending, now.attempts), (20, None, 0));
    assert_eq!((now.last_error, now.failing_since), (None, None));
    // Paused while held: no new batch begins; resumed, it does.
    let pause = |status| StreamChange {
        status: Some(status),
        ..Default::default()
    };
    store
        .change_stream(a.id, s.id, pause(StreamStatus::Paused), at(90))
        .await
        .unwrap();
    assert!(!store.begin_batch(s.id, "w2", 21, 22).await.unwrap());
    store
        .change_stream(a.id, s.id, pause(StreamStatus::Active), at(90))
        .await
        .unwrap();
    assert!(store.begin_batch(s.id, "w2", 21, 22).await.unwrap());
    // An acceptance from a cursor that moved meanwhile (a replay) changes nothing.
    assert!(!store
        .record_delivery(s.id, "w2", accepted, at(43))
        .await
        .unwrap());
    let history = store.stream_batches(a.id, s.id, 10).await.unwrap();
    assert_eq!(
        history
            .iter()
            .map(|b| b.status.as_str())
            .collect::<Vec<_>>(),
        ["delivered", "failed"],
        "newest first"
    );
    assert!(store
        .stream_batches(a.id + 1_000, s.id, 10)
        .await
        .unwrap()
        .is_empty());
    // 410: disabled, never claimed again until resumed.
    let gone = Delivery::Failed {
        batch: batch(21, 22, "failed"),
        status: StreamStatus::Disabled,
        error: "410".into(),
    };
    assert!(store
        .record_delivery(s.id, "w2", gone, at(44))
        .await
        .unwrap());
    assert!(store.release_stream(s.id, "w2").await.unwrap());
    assert!(store
        .claim_stream("w3", at(100), at(130))
        .await
        .unwrap()
        .is_none());
    let resumed = store
        .change_stream(
            a.id,
            s.id,
            StreamChange {
                status: Some(StreamStatus::Active),
                ..Default::default()
            },
            at(101),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(resumed.last_error, None);
    assert_eq!(
        store
            .claim_stream("w3", at(102), at(130))
            .await
            .unwrap()
            .map(|s| s.id),
        Some(s.id)
    );
    // The history stays bounded.
    for i in 0..60 {
        let d = Delivery::Accepted {
            from: 20 + i,
            through: 21 + i,
            batch: Some(batch(21 + i, 21 + i, "delivered")),
            next: None,
        };
        assert!(store.record_delivery(s.id, "w3", d, at(103)).await.unwrap());
    }
    let history = store.stream_batches(a.id, s.id, 1_000).await.unwrap();
    assert_eq!(history.len(), crate::streams::BATCH_HISTORY);
    assert_eq!(history[0].first_seq, 80);
    // An acceptance that begins the next batch in the same commit.
    let with_next = |from: u64, through: u64, next: (u64, u64)| Delivery::Accepted {
        from,
        through,
        batch: Some(batch(from + 1, through, "delivered")),
        next: Some(next),
    };
    assert!(store
        .record_delivery(s.id, "w3", with_next(80, 90, (91, 95)), at(104))
        .await
        .unwrap());
    let now = store
        .renew_stream(s.id, "w3", at(130))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((now.cursor, now.pending), (90, Some((91, 95))));
    // Paused while that batch was in flight: its acceptance is recorded,
    // but the one after does not begin (false: the runner reads the stream).
    store
        .change_stream(a.id, s.id, pause(StreamStatus::Paused), at(105))
        .await
        .unwrap();
    assert!(!store
        .record_delivery(s.id, "w3", with_next(90, 95, (96, 99)), at(106))
        .await
        .unwrap());
    let now = store.stream_by_id(a.id, s.id).await.unwrap().unwrap();
    assert_eq!((now.cursor, now.pending), (95, None));
}
