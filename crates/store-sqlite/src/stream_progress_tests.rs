//! Tests of `stream_progress` through the whole store (kept apart: they
//! use the crate root, which uses `stream_progress`).

use crate::{SqliteStore, DB_FILE};
use auditlog_core::Timestamp;
use auditlog_store::{Delivery, Directory, LogStreams, NewStream, Store, StreamChange};
use rusqlite::Connection;
use std::time::Duration;

fn at(seconds: i64) -> Timestamp {
    Timestamp::from_micros(1_800_000_000_000_000 + seconds * 1_000_000)
}

fn accepted(from: u64, through: u64, next: Option<(u64, u64)>) -> Delivery {
    Delivery::Accepted {
        from,
        through,
        batch: None,
        next,
    }
}

/// What `auditlog.db` itself holds of the stream's progress.
fn main_row(dir: &std::path::Path, id: i64) -> (i64, Option<i64>) {
    Connection::open(dir.join(DB_FILE))
        .unwrap()
        .query_row(
            "SELECT cursor, batch_first FROM log_streams WHERE id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_is_kept_beside_the_event_store_and_a_replay_wins_over_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    let account = store.create_account("side").await.unwrap();
    let stream = store
        .create_stream(NewStream {
            account_id: account.id,
            kind: "webhook".into(),
            format: "native".into(),
            url: "http://127.0.0.1:1/".into(),
            filters: serde_json::json!({}),
            sealed_secret: vec![1],
            options: serde_json::json!({}),
            sealed_client_key: None,
            cursor: 0,
            created_at: at(0),
        })
        .await
        .unwrap();
    let id = stream.id;
    assert!(store
        .claim_stream("w", at(1), at(1_000))
        .await
        .unwrap()
        .is_some());

    // Ingest holds auditlog.db's write lock: recording batches does not wait for it.
    let mut blocker = Connection::open(dir.path().join(DB_FILE)).unwrap();
    let held = blocker
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .unwrap();
    let progress = async {
        assert!(store.begin_batch(id, "w", 1, 10).await.unwrap());
        assert!(store
            .record_delivery(id, "w", accepted(0, 10, Some((11, 20))), at(2))
            .await
            .unwrap());
    };
    tokio::time::timeout(Duration::from_secs(5), progress)
        .await
        .expect("recorded while auditlog.db's write lock was held");
    held.rollback().unwrap();

    // Every read of the stream sees the side database's progress;
    // auditlog.db keeps the cursor the stream was created with.
    let now = store.stream_by_id(account.id, id).await.unwrap().unwrap();
    assert_eq!((now.cursor, now.pending), (10, Some((11, 20))));
    assert_eq!(store.streams(account.id).await.unwrap()[0].cursor, 10);
    assert_eq!(main_row(dir.path(), id), (0, None));

    // It survives a restart.
    store.shutdown().await;
    drop(store);
    let store = SqliteStore::open(dir.path()).unwrap();
    let now = store.stream_by_id(account.id, id).await.unwrap().unwrap();
    assert_eq!((now.cursor, now.pending), (10, Some((11, 20))));

    // A replay wins over it, now and after a restart: the side row,
    // of the epoch before the replay, no longer counts.
    let replayed = store
        .change_stream(
            account.id,
            id,
            StreamChange {
                cursor: Some(5),
                ..Default::default()
            },
            at(3),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!((replayed.cursor, replayed.pending), (5, None));
    assert!(
        !store
            .record_delivery(id, "w", accepted(10, 20, None), at(4))
            .await
            .unwrap(),
        "an acceptance from before the replay is refused"
    );
    store.shutdown().await;
    drop(store);
    let side_cursor: i64 = Connection::open(dir.path().join(crate::PROGRESS_FILE))
        .unwrap()
        .query_row(
            "SELECT cursor FROM stream_progress WHERE stream_id = ?1",
            [id],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(side_cursor, 10, "the stale row is still there");
    let store = SqliteStore::open(dir.path()).unwrap();
    let now = store.stream_by_id(account.id, id).await.unwrap().unwrap();
    assert_eq!((now.cursor, now.pending), (5, None));
    // Delivery goes on from the replay point.
    assert!(store
        .record_delivery(id, "w", accepted(5, 12, None), at(5))
        .await
        .unwrap());
    let now = store.stream_by_id(account.id, id).await.unwrap().unwrap();
    assert_eq!(now.cursor, 12);

    // Deleted, its id given again: the new stream inherits nothing.
    assert!(store.delete_stream(account.id, id).await.unwrap());
    let again = store
        .create_stream(NewStream {
            account_id: account.id,
            kind: "webhook".into(),
            format: "native".into(),
            url: "http://127.0.0.1:1/".into(),
            filters: serde_json::json!({}),
            sealed_secret: vec![1],
            options: serde_json::json!({}),
            sealed_client_key: None,
            cursor: 3,
            created_at: at(6),
        })
        .await
        .unwrap();
    assert_eq!(again.id, id, "SQLite reuses the highest id");
    let now = store.stream_by_id(account.id, id).await.unwrap().unwrap();
    assert_eq!((now.cursor, now.pending), (3, None));
    assert!(store
        .stream_batches(account.id, id, 10)
        .await
        .unwrap()
        .is_empty());
    store.shutdown().await;
}

/// No checkpointer watches the progress file: its own commits keep its WAL
/// bounded (without them it would hold every frame: about 9,000 here).
#[test]
fn the_progress_files_wal_stays_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let progress = crate::stream_progress::ProgressDb::open(dir.path()).unwrap();
    let conn = progress.lock().unwrap();
    conn.execute_batch("CREATE TABLE filler (v BLOB)").unwrap();
    for _ in 0..3_000 {
        conn.execute("INSERT INTO filler VALUES (zeroblob(3000))", [])
            .unwrap();
    }
    let wal = std::fs::metadata(dir.path().join(format!("{}-wal", crate::PROGRESS_FILE)))
        .unwrap()
        .len();
    assert!(
        wal < 1_500 * (4_096 + 24),
        "the progress file's WAL grew to {wal} bytes"
    );
}
