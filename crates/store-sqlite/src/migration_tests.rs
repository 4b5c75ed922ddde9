//! Migration 0010 on stores of the previous layout (migrations 1–9, the
//! `events` table), built here from a current store's records: each event's
//! exact stored leaf (compressed or not), its text columns as the leaf says
//! and its leaf hash, with the tree hashes, checkpoints, dictionaries and
//! personal values as they were.

use super::*;
use auditlog_core::merkle;
use auditlog_core::Timestamp;
use auditlog_store::transfer::TransferSource;
use auditlog_store::{conformance, IndexedColumns, KeyColumn, StoredCheckpoint, TreeStore};

/// A row of the log as the old table is written from: key, dictionary,
/// stored leaf, personal values.
type LogRow = (i64, Option<i64>, Vec<u8>, Option<Vec<u8>>);

/// An edit of a store and what the refusal must say.
type Tamper = (
    &'static str,
    Box<dyn Fn(&Connection)>,
    &'static [&'static str],
);

/// Writes the store at `new_dir` (the current layout) as a store of the
/// previous layout at `old_dir`.
pub(crate) fn write_old_layout(new_dir: &Path, old_dir: &Path) {
    let mut old = Connection::open(old_dir.join(DB_FILE)).unwrap();
    schema::configure(&old, true).unwrap();
    crate::migrate::migrate_to(&mut old, 9).unwrap();
    old.execute(
        "ATTACH DATABASE ?1 AS new",
        [new_dir.join(DB_FILE).to_str().unwrap()],
    )
    .unwrap();
    old.execute_batch(
        "INSERT INTO main.accounts SELECT id, name, taxonomy, created_at FROM new.accounts;
         INSERT INTO main.api_keys SELECT id, account_id, key_hash, scopes, created_at, public_id, name FROM new.api_keys;
         INSERT INTO main.tree_hashes SELECT * FROM new.tree_hashes;
         INSERT INTO main.checkpoints SELECT * FROM new.checkpoints;
         INSERT INTO main.leaf_dictionaries SELECT * FROM new.leaf_dictionaries;
         INSERT INTO main.personal_objects SELECT * FROM new.personal_objects;
         INSERT INTO main.event_openings SELECT * FROM new.event_openings;
         INSERT INTO main.event_rollups SELECT * FROM new.event_rollups;
         INSERT OR REPLACE INTO main.event_actors (account_id, actor_id, name, email)
           SELECT account_id, actor_id, name, email FROM new.actors;",
    )
    .unwrap();
    let rows: Vec<LogRow> = {
        let mut stmt = old
            .prepare(&format!(
                "SELECT key, leaf_dict, leaf, {} FROM new.event_log ORDER BY key",
                crate::sql::personal_of_log_row!().replace("event_log.", "new.event_log.")
            ))
            .unwrap();
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap();
        rows.map(Result::unwrap).collect()
    };
    let cache = auditlog_store::leaf_codec::DictionaryCache::default();
    let leaves = LeafDecoder {
        cache: &cache,
        conn: &old,
        objects: None,
    };
    let mut insert = old
        .prepare(
            "INSERT INTO main.events (account_id, seq, time, event_id, event_type, action, actor_id, \
             project, app, version, target_id, received_at, leaf, leaf_hash, leaf_dict) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
        )
        .unwrap();
    for (key, dictionary, stored, personal) in rows {
        let leaf = leaves.decode(dictionary, stored.clone()).unwrap();
        let event = auditlog_core::StoredRecord::new(&leaf, personal.as_deref())
            .stored_event()
            .unwrap();
        let c = IndexedColumns::of(&event);
        let text = |k: &KeyColumn| k.text().unwrap().to_string();
        insert
            .execute(params![
                key >> 40,
                c.seq as i64,
                c.time,
                text(&c.event_id),
                c.event_type,
                c.action,
                c.actor_id,
                c.project,
                c.app,
                c.version,
                c.target_id.as_ref().map(text),
                c.received_at,
                stored,
                &auditlog_core::leaf::leaf_hash(&leaf)[..],
                dictionary,
            ])
            .unwrap();
    }
}

/// A store of the current layout with two accounts: `big`, whose newest
/// events are compressed, with checkpoints; and `small`.
async fn current_store() -> (tempfile::TempDir, Vec<Account>) {
    use auditlog_store::leaf_codec::TRAIN_AFTER;
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    let big = store.create_account("big").await.unwrap();
    let small = store.create_account("small").await.unwrap();
    let events = conformance::sample_events(TRAIN_AFTER as usize + 300, "b");
    for chunk in events.chunks(700) {
        store.append(&big, chunk.to_vec()).await.unwrap();
    }
    store
        .append(&small, conformance::sample_events(12, "s"))
        .await
        .unwrap();
    for size in [5u64, 1_000, events.len() as u64] {
        let root = auditlog_store::tree::tree_root(&store, big.id, size)
            .await
            .unwrap();
        store
            .add_checkpoint(
                big.id,
                &StoredCheckpoint {
                    size,
                    root,
                    note: format!("note {size}"),
                    created_at: Timestamp::from_micros(size as i64),
                },
            )
            .await
            .unwrap();
    }
    store.shutdown().await;
    (dir, vec![big, small])
}

/// Everything a store answers about an account that the migration must keep.
#[derive(Debug, PartialEq)]
struct Answers {
    records: Vec<EventRecord>,
    tree_hashes: Vec<merkle::Hash>,
    checkpoints: Vec<StoredCheckpoint>,
    proofs: Vec<Vec<merkle::Hash>>,
    pages: Vec<Vec<u64>>,
    by_id: Vec<Option<u64>>,
    actors: Vec<auditlog_store::ActorSummary>,
    projects: Vec<String>,
}

async fn answers(store: &SqliteStore, account: AccountId) -> Answers {
    use auditlog_store::tree::{consistency_proof, inclusion_proof};
    use auditlog_store::Facets;
    let mut records = Vec::new();
    loop {
        let after = records.last().map_or(0, |r: &EventRecord| r.seq);
        let page = store.events_after(account, after, 500).await.unwrap();
        if page.is_empty() {
            break;
        }
        records.extend(page);
    }
    let size = records.len() as u64;
    let count = store.stored_hash_count(account).await.unwrap();
    let mut proofs = Vec::new();
    for (tree, leaf) in [(size, 0), (size, size - 1), (size / 2 + 1, size / 3)] {
        proofs.push(inclusion_proof(store, account, tree, leaf).await.unwrap());
    }
    proofs.push(
        consistency_proof(store, account, size / 3, size)
            .await
            .unwrap(),
    );
    let mut pages = Vec::new();
    for filter in conformance::filter_cases() {
        let page = store.query(account, &filter, None, 40).await.unwrap();
        let mut seqs: Vec<u64> = page.events.iter().map(|e| e.seq).collect();
        if let Some(cursor) = page.next_cursor {
            let next = store
                .query(account, &filter, Some(cursor), 40)
                .await
                .unwrap();
            seqs.extend(next.events.iter().map(|e| e.seq));
        }
        pages.push(seqs);
    }
    let mut by_id = Vec::new();
    for id in ["b0", "b1999", "b2100", "s3", "nope"] {
        by_id.push(store.get(account, id).await.unwrap().map(|r| r.seq));
    }
    Answers {
        records,
        tree_hashes: store.read_hash_range(account, 0, count).await.unwrap(),
        checkpoints: store.checkpoints(account).await.unwrap(),
        proofs,
        pages,
        by_id,
        actors: store.actors(account, 100).await.unwrap(),
        projects: store.projects(account, 100).await.unwrap(),
    }
}

fn schema_version(dir: &Path) -> i64 {
    let conn = Connection::open(dir.join(DB_FILE)).unwrap();
    conn.query_row("SELECT MAX(version) FROM schema_migrations", [], |r| {
        r.get(0)
    })
    .unwrap()
}

/// A store of the previous layout opens migrated: every event (leaf bytes,
/// hash, personal values), tree hash, checkpoint, proof, page, lookup by id
/// and facet is what the store answered before it was written in the old
/// layout; the old table is gone; and appends go on from the last seq.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_previous_layout_migrates_with_everything_unchanged() {
    let (new_dir, accounts) = current_store().await;
    let store = SqliteStore::open(new_dir.path()).unwrap();
    let mut before = Vec::new();
    for account in &accounts {
        before.push(answers(&store, account.id).await);
    }
    store.shutdown().await;
    assert!(before[0].records.iter().any(|r| r.personal.is_some()));
    assert_eq!(before[0].checkpoints.len(), 3);
    assert!(before[0].pages.iter().any(|p| p.len() > 40));

    let old_dir = tempfile::tempdir().unwrap();
    write_old_layout(new_dir.path(), old_dir.path());
    assert_eq!(schema_version(old_dir.path()), 9);
    let store = SqliteStore::open(old_dir.path()).unwrap();
    assert_eq!(schema_version(old_dir.path()), crate::migrate::LATEST);
    for (account, before) in accounts.iter().zip(&before) {
        let after = answers(&store, account.id).await;
        assert_eq!(after.records.len(), before.records.len());
        for (a, b) in after.records.iter().zip(&before.records) {
            assert_eq!(a, b, "event seq {}", b.seq);
        }
        assert_eq!(&after, before, "account {}", account.name);
    }
    let old_tables: i64 = store
        .with_conn(|c| {
            c.query_row(
                "SELECT COUNT(*) FROM sqlite_schema WHERE name IN ('events', 'event_actors', 'event_projects')",
                [],
                |r| r.get(0),
            )
            .map_err(sql_error)
        })
        .await
        .unwrap();
    assert_eq!(old_tables, 0);
    // Compressed leaves moved as they were stored.
    let compressed: i64 = store
        .with_conn(|c| {
            c.query_row(
                "SELECT COUNT(*) FROM event_log WHERE leaf_dict IS NOT NULL",
                [],
                |r| r.get(0),
            )
            .map_err(sql_error)
        })
        .await
        .unwrap();
    assert_eq!(compressed, 300);
    let receipts = store
        .append(&accounts[1], conformance::sample_events(2, "after-"))
        .await
        .unwrap();
    assert_eq!(receipts[0].seq, 13);
    assert!(receipts.iter().all(|r| r.created));
    // A retry of a migrated event is idempotent.
    let retried = store
        .append(&accounts[1], conformance::sample_events(1, "s"))
        .await
        .unwrap();
    assert_eq!((retried[0].seq, retried[0].created), (1, false));
    store.shutdown().await;
}

/// A store of the previous layout that fails verification is refused,
/// naming the account and the seq, and left exactly as it was: an edited
/// column, an edited leaf, a leaf with its hash column recomputed (the tree
/// disagrees), a removed event, a checkpoint whose root is not the tree's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_previous_layout_store_that_fails_verification_is_refused_naming_the_seq() {
    let (new_dir, _) = current_store().await;
    let base = tempfile::tempdir().unwrap();
    write_old_layout(new_dir.path(), base.path());
    // A change no column shows: a member slipped into `source`.
    let edited_leaf = "UPDATE events SET leaf = CAST(replace(CAST(leaf AS TEXT), '\"source\":{', '\"source\":{\"x\":1,') AS BLOB) \
                       WHERE account_id = 1 AND seq = 8";
    let sql = |sql: &'static str| -> Box<dyn Fn(&Connection)> {
        Box::new(move |c: &Connection| c.execute_batch(sql).unwrap())
    };
    let cases: [Tamper; 6] = [
        (
            "an edited column",
            sql("UPDATE events SET actor_id = 'mallory' WHERE account_id = 1 AND seq = 5"),
            &["\"big\"", "event seq 5 ", "column actor_id"],
        ),
        (
            "an edited text column of the other account",
            sql("UPDATE events SET project = 'P9' WHERE account_id = 2 AND seq = 4"),
            &["\"small\"", "event seq 4 ", "column project"],
        ),
        (
            "an edited leaf",
            sql(edited_leaf),
            &["event seq 8 ", "leaf bytes were edited"],
        ),
        (
            "an edited leaf with its hash column recomputed",
            Box::new(move |c: &Connection| {
                c.execute_batch(edited_leaf).unwrap();
                let leaf: Vec<u8> = c
                    .query_row(
                        "SELECT leaf FROM events WHERE account_id = 1 AND seq = 8",
                        [],
                        |r| r.get(0),
                    )
                    .unwrap();
                c.execute(
                    "UPDATE events SET leaf_hash = ?1 WHERE account_id = 1 AND seq = 8",
                    [&auditlog_core::leaf::leaf_hash(&leaf)[..]],
                )
                .unwrap();
            }),
            &["event seq 8:", "Merkle tree"],
        ),
        (
            "a removed event",
            sql("DELETE FROM events WHERE account_id = 1 AND seq = 77"),
            &["event seq 77 is missing"],
        ),
        (
            "a checkpoint of another root",
            sql("UPDATE checkpoints SET root = zeroblob(32) WHERE account_id = 1 AND size = 1000"),
            &["checkpoint of size 1000"],
        ),
    ];
    for (what, tamper, expected) in cases {
        let dir = tempfile::tempdir().unwrap();
        std::fs::copy(base.path().join(DB_FILE), dir.path().join(DB_FILE)).unwrap();
        {
            let conn = Connection::open(dir.path().join(DB_FILE)).unwrap();
            conn.execute_batch(
                "DROP TRIGGER events_refuse_update; DROP TRIGGER events_refuse_delete;
                 DROP TRIGGER checkpoints_refuse_update;",
            )
            .unwrap();
            tamper(&conn);
        }
        let before = std::fs::read(dir.path().join(DB_FILE)).unwrap();
        let refused = match SqliteStore::open(dir.path()) {
            Ok(_) => panic!("{what}: the store was migrated"),
            Err(e) => auditlog_core::ErrorChain(&e).to_string(),
        };
        assert!(refused.contains("refuses this store"), "{what}: {refused}");
        for e in expected {
            assert!(refused.contains(e), "{what}: expected {e:?} in {refused}");
        }
        // Nothing was changed: still the previous layout, byte for byte.
        let wal = dir.path().join(format!("{DB_FILE}-wal"));
        let conn = Connection::open(dir.path().join(DB_FILE)).unwrap();
        conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
            .unwrap();
        drop(conn);
        assert!(!wal.exists() || std::fs::metadata(&wal).unwrap().len() == 0);
        assert_eq!(schema_version(dir.path()), 9, "{what}");
        assert!(
            std::fs::read(dir.path().join(DB_FILE)).unwrap() == before,
            "{what}: the file changed"
        );
    }
}

/// A store written before the tree existed (no tree hashes) gets its tree
/// in the migration, from its leaf hashes, before the checks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_stored_before_the_tree_existed_are_added_to_it() {
    let (new_dir, accounts) = current_store().await;
    let store = SqliteStore::open(new_dir.path()).unwrap();
    let expected = answers(&store, accounts[1].id).await.tree_hashes;
    store.shutdown().await;
    let old_dir = tempfile::tempdir().unwrap();
    write_old_layout(new_dir.path(), old_dir.path());
    let conn = Connection::open(old_dir.path().join(DB_FILE)).unwrap();
    conn.execute_batch(
        "DROP TRIGGER tree_hashes_refuse_delete; DELETE FROM tree_hashes WHERE account_id = 2;",
    )
    .unwrap();
    drop(conn);
    let store = SqliteStore::open(old_dir.path()).unwrap();
    assert_eq!(answers(&store, accounts[1].id).await.tree_hashes, expected);
    // And appends go on from there.
    store
        .append(&accounts[1], conformance::sample_events(2, "f"))
        .await
        .unwrap();
    assert_eq!(
        store.stored_hash_count(accounts[1].id).await.unwrap(),
        merkle::stored_hash_count(14)
    );
    store.shutdown().await;
}
