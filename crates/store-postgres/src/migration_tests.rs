//! Migration 0010 on a database of the previous layout: every event, hash,
//! page and facet unchanged after the move; a tampered database refused,
//! naming the seq, and left as it was. Migration 0013 on a database stored
//! before it: the words of every stored event written and indexed.

use super::*;
use crate::test_support::TestDatabase;
use auditlog_store::conformance;
use auditlog_store::transfer::TransferSource;
use auditlog_store::{Facets, IndexedColumns, TreeStore};

/// A database at migration 8 holding `events` of account "moved", written
/// as the previous writer wrote them (columns copied from each leaf).
async fn previous_layout(test: &str) -> Option<(TestDatabase, Vec<EventRecord>, Vec<Hash>)> {
    let source_db = TestDatabase::create(&format!("{test}_source"))?;
    let source = PgStore::connect(&source_db.url).await.unwrap();
    let account = source.create_account("moved").await.unwrap();
    let mut events = conformance::sample_events(40, "m");
    events.extend(conformance::sample_events(20, "n"));
    source.append(&account, events).await.unwrap();
    let records = source.events_after(account.id, 0, 1_000).await.unwrap();
    let count = source.stored_hash_count(account.id).await.unwrap();
    let hashes = source
        .read_hashes(account.id, &(0..count).collect::<Vec<_>>())
        .await
        .unwrap();
    source.shutdown().await;

    let db = TestDatabase::create(test)?;
    let (mut client, connection) = tokio_postgres::connect(&db.url, NoTls).await.unwrap();
    let driver = tokio::spawn(connection);
    schema::migrate_through(&mut client, 8).await.unwrap();
    client
        .batch_execute(
            "INSERT INTO accounts (id, name, taxonomy, created_at) VALUES (1, 'moved', '{}', 0); \
             INSERT INTO account_sequencers (account_id, last_seq) VALUES (1, 0);",
        )
        .await
        .unwrap();
    let taxonomy = serde_json::to_string(&Taxonomy::default()).unwrap();
    client
        .execute("UPDATE accounts SET taxonomy = $1", &[&taxonomy])
        .await
        .unwrap();
    for record in &records {
        let stored = record.stored().stored_event().unwrap();
        let c = IndexedColumns::of(&stored);
        client
            .execute(
                "INSERT INTO events (account_id, seq, time, event_id, event_type, action, actor_id, project, \
                 app, version, target_id, received_at, leaf, leaf_hash) \
                 VALUES (1, $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
                &[
                    &(c.seq as i64),
                    &c.time,
                    &c.event_id.text(),
                    &c.event_type,
                    &c.action,
                    &c.actor_id,
                    &c.project,
                    &c.app,
                    &c.version,
                    &c.target_id.as_ref().and_then(|t| t.text()),
                    &c.received_at,
                    &record.leaf_bytes,
                    &&record.leaf_hash[..],
                ],
            )
            .await
            .unwrap();
        if let Some(personal) = &record.personal {
            client
                .execute(
                    "INSERT INTO event_personal (account_id, seq, personal) VALUES (1, $1, $2)",
                    &[&(record.seq as i64), personal],
                )
                .await
                .unwrap();
        }
    }
    for (index, hash) in hashes.iter().enumerate() {
        client
            .execute(
                "INSERT INTO tree_hashes (account_id, hash_index, hash) VALUES (1, $1, $2)",
                &[&(index as i64), &&hash[..]],
            )
            .await
            .unwrap();
    }
    client
        .execute(
            "UPDATE account_sequencers SET last_seq = $1",
            &[&(records.len() as i64)],
        )
        .await
        .unwrap();
    drop(client);
    let _ = driver.await;
    Some((db, records, hashes))
}

use auditlog_core::merkle::Hash;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_previous_layout_database_moves_to_the_event_log_unchanged() {
    let Some((db, records, hashes)) =
        previous_layout("a_previous_layout_database_moves_to_the_event_log_unchanged").await
    else {
        return;
    };
    let store = PgStore::connect(&db.url).await.unwrap();
    let account = store.account_by_name("moved").await.unwrap().unwrap();
    assert_eq!(
        store.events_after(account.id, 0, 1_000).await.unwrap(),
        records
    );
    let count = store.stored_hash_count(account.id).await.unwrap();
    assert_eq!(
        store
            .read_hashes(account.id, &(0..count).collect::<Vec<_>>())
            .await
            .unwrap(),
        hashes
    );
    // Every event is found by its id (the migration's SQL hash is the
    // writer's), and every page and facet reads as before.
    for record in &records {
        let stored = record.stored().stored_event().unwrap();
        let found = store.get(account.id, stored.event().id()).await.unwrap();
        assert_eq!(found.as_ref(), Some(record));
        let filter = EventFilter {
            users: vec![stored.event().actor().id.clone()],
            target_id: stored.event().target().and_then(|t| t.id.clone()),
            ..EventFilter::default()
        };
        let page = store.query(account.id, &filter, None, 100).await.unwrap();
        assert!(page.events.contains(record), "{filter:?}");
    }
    let page = store
        .query(account.id, &EventFilter::default(), None, 1_000)
        .await
        .unwrap();
    assert_eq!(page.events.len(), records.len());
    assert!(!store.actors(account.id, 100).await.unwrap().is_empty());
    // Appends continue the moved sequence and tree; a retried id is found.
    let first = records[0].stored().stored_event().unwrap();
    let receipts = store
        .append(&account, vec![first.event().clone()])
        .await
        .unwrap();
    assert_eq!((receipts[0].seq, receipts[0].created), (1, false));
    let more = store
        .append(&account, conformance::sample_events(3, "after"))
        .await
        .unwrap();
    assert_eq!(more[0].seq, records.len() as u64 + 1);
    assert_eq!(
        store.event_row_count(account.id).await.unwrap(),
        records.len() as u64 + 3
    );
    store.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_previous_layout_database_is_refused_naming_the_seq() {
    let Some((db, records, _)) =
        previous_layout("a_tampered_previous_layout_database_is_refused_naming_the_seq").await
    else {
        return;
    };
    let (client, connection) = tokio_postgres::connect(&db.url, NoTls).await.unwrap();
    let driver = tokio::spawn(connection);
    client
        .batch_execute(
            "ALTER TABLE events DISABLE TRIGGER events_refuse_update; \
             UPDATE events SET actor_id = 'mallory' WHERE seq = 7; \
             ALTER TABLE events ENABLE TRIGGER events_refuse_update;",
        )
        .await
        .unwrap();
    let refused = PgStore::connect(&db.url).await.err().expect("refused");
    let message = refused.to_string();
    assert!(
        message.contains("event seq 7") && message.contains("actor_id"),
        "{message}"
    );
    // Nothing moved: the old table is still there, whole, and 0010 is not applied.
    let old: i64 = client
        .query_one("SELECT COUNT(*) FROM events", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(old, records.len() as i64);
    let applied: i64 = client
        .query_one(
            "SELECT COUNT(*) FROM schema_migrations WHERE version = 10",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(applied, 0);
    drop(client);
    let _ = driver.await;
}

/// Migration 0013 on a database stored before it: every stored event's
/// words (its personal values included) are written and indexed, and free
/// text finds exactly the events it found by confirming each leaf.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migration_0013_indexes_the_words_of_the_events_already_stored() {
    let test = "migration_0013_indexes_the_words_of_the_events_already_stored";
    let Some(db) = TestDatabase::create(test) else {
        return;
    };
    let store = PgStore::connect(&db.url).await.unwrap();
    let account = store.create_account("words").await.unwrap();
    store
        .append(&account, conformance::sample_events(60, "w"))
        .await
        .unwrap();
    store.shutdown().await;
    // The database as migration 12 left it.
    let (client, connection) = tokio_postgres::connect(&db.url, NoTls).await.unwrap();
    let driver = tokio::spawn(connection);
    client
        .batch_execute(
            "ALTER TABLE event_log DROP COLUMN words; \
             DROP TRIGGER event_log_update_only_words ON event_log; \
             DROP FUNCTION event_log_update_check(); \
             DROP FUNCTION auditlog_replace_words(BIGINT, BIGINT, TEXT); \
             CREATE TRIGGER event_log_refuse_update BEFORE UPDATE ON event_log \
                 FOR EACH ROW EXECUTE FUNCTION events_refuse_change(); \
             DELETE FROM schema_migrations WHERE version = 13;",
        )
        .await
        .unwrap();
    let store = PgStore::connect(&db.url).await.unwrap();
    let records = store.events_after(account.id, 0, 1_000).await.unwrap();
    assert_eq!(records.len(), 60);
    for record in &records {
        let stored = record.stored().stored_event().unwrap();
        let words: Option<String> = client
            .query_one(
                "SELECT words FROM event_log WHERE key = $1",
                &[&auditlog_store::log_key::log_key(account.id, record.seq).unwrap()],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(words, crate::word_index::column_text(stored.event()));
        assert!(
            words.unwrap().contains("user"),
            "the actor's name is indexed"
        );
    }
    let index: bool = client
        .query_one("SELECT to_regclass('event_log_by_words') IS NOT NULL", &[])
        .await
        .unwrap()
        .get(0);
    assert!(index);
    // Free text, served by the index, finds what the reference finds.
    for text in ["user", "user 3", "t*", "p2 a0", "\"user 5\""] {
        let filter = EventFilter {
            query: auditlog_core::filter::parse_query(Some(text), None).unwrap(),
            ..EventFilter::default()
        };
        let page = store.query(account.id, &filter, None, 1_000).await.unwrap();
        let expected: Vec<u64> = records
            .iter()
            .rev()
            .filter(|r| filter.query.matches_record(&r.stored()).unwrap())
            .map(|r| r.seq)
            .collect();
        let mut found: Vec<u64> = page.events.iter().map(|e| e.seq).collect();
        found.sort_unstable_by(|a, b| b.cmp(a));
        let mut expected = expected;
        expected.sort_unstable_by(|a, b| b.cmp(a));
        assert!(!expected.is_empty(), "{text}");
        assert_eq!(found, expected, "{text}");
    }
    drop(client);
    let _ = driver.await;
    store.shutdown().await;
}
