//! Tamper tests: an attacker with disk access edits the SQLite file directly
//! (dropping the append-only triggers first), once for each kind of change
//! to the event log (migration 0010: rows keyed `account << 40 | seq`, ids
//! of per-account values and actors, hashed keys, compressed leaves);
//! `auditlog verify` must fail and name the entry. An untouched store passes.

use crate::helpers::*;
use auditlog_core::checkpoint::Checkpoint;
use auditlog_core::{leaf, merkle, note::NoteSigner};
use rusqlite::{params, Connection};
use serde_json::{json, Value};
use std::path::Path;
use std::process::Command;

/// A data directory with two accounts: `acme` with 15 events and signed
/// checkpoints at sizes 10 and 15, and `beta` with 3 events.
async fn build_store() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let mut server = TestServer::start_on(dir.path(), &[]);
    let acme = server.account("acme");
    let beta = server.account("beta");
    let batch = |range: std::ops::Range<u32>, prefix: &str| -> Value {
        let events: Vec<Value> = range
            .map(|i| json!({"id": format!("{prefix}{i}"), "event_type": "Element", "action": if i % 2 == 0 { "Update" } else { "Create" },
                             "actor": {"id": format!("u-{}", i % 3), "name": "Ada"}, "project": "Checkout"}))
            .collect();
        json!({ "events": events })
    };
    assert_eq!(
        server
            .post("/api/v1/events", &acme.ingest, &batch(1..11, "a"))
            .await
            .0,
        201
    );
    assert_eq!(
        server.get("/api/v1/events/a10/proof", &acme.read).await.0,
        200
    );
    assert_eq!(
        server
            .post("/api/v1/events", &acme.ingest, &batch(11..16, "a"))
            .await
            .0,
        201
    );
    assert_eq!(
        server.get("/api/v1/events/a15/proof", &acme.read).await.0,
        200
    );
    assert_eq!(
        server
            .post("/api/v1/events", &beta.ingest, &batch(1..4, "b"))
            .await
            .0,
        201
    );
    assert_eq!(
        server.get("/api/v1/events/b3/proof", &beta.read).await.0,
        200
    );
    server.kill();
    dir
}

/// A copy of the store to tamper with, opened as an attacker would: the
/// triggers that refuse changes are dropped first.
fn attacker_copy(base: &Path) -> (tempfile::TempDir, Connection) {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(base).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dir.path().join(entry.file_name())).unwrap();
    }
    let conn = Connection::open(dir.path().join("auditlog.db")).unwrap();
    conn.execute_batch(
        "DROP TRIGGER event_log_refuse_update; DROP TRIGGER event_log_delete_only_covered;
         DROP TRIGGER log_values_refuse_update; DROP TRIGGER log_values_refuse_delete;
         DROP TRIGGER tree_hashes_refuse_update; DROP TRIGGER tree_hashes_refuse_delete;
         DROP TRIGGER checkpoints_refuse_update; DROP TRIGGER checkpoints_refuse_delete;
         DROP TRIGGER event_personal_refuse_update; DROP TRIGGER event_personal_delete_only_covered;
         DROP TRIGGER personal_objects_refuse_update; DROP TRIGGER personal_objects_delete_unused;
         DROP TRIGGER event_openings_refuse_update; DROP TRIGGER event_openings_delete_only_covered;",
    )
    .unwrap();
    (dir, conn)
}

fn verify(data_dir: &Path, extra: &[&str]) -> (bool, String) {
    let out = Command::new(BIN)
        .arg("--data-dir")
        .arg(data_dir)
        .arg("verify")
        .args(extra)
        .env_remove("AUDITLOG_DATABASE_URL")
        .env("AUDITLOG_LOG", "error")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Tampers with a copy of `base` and checks that verify fails naming `expect`.
fn assert_caught(base: &Path, tamper: impl FnOnce(&Connection), expect: &[&str]) {
    let (dir, conn) = attacker_copy(base);
    tamper(&conn);
    drop(conn);
    let (ok, out) = verify(dir.path(), &[]);
    assert!(!ok, "verify passed a tampered store:\n{out}");
    assert!(out.contains("FAIL  acme"), "{out}");
    for e in expect {
        assert!(out.contains(e), "expected {e:?} in:\n{out}");
    }
    // The other account is still reported intact.
    assert!(out.contains("ok    beta: 3 events"), "{out}");
}

/// The row key of `acme`'s (account 1) events: `1 << 40 | seq`.
const ACME: i64 = 1 << 40;

fn leaf_of(conn: &Connection, seq: i64) -> Vec<u8> {
    conn.query_row(
        "SELECT leaf FROM event_log WHERE key = ?1",
        [ACME + seq],
        |r| r.get(0),
    )
    .unwrap()
}

fn replace(bytes: &[u8], from: &str, to: &str) -> Vec<u8> {
    String::from_utf8(bytes.to_vec())
        .unwrap()
        .replacen(from, to, 1)
        .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_catches_every_kind_of_tampering_and_passes_an_intact_store() {
    let base = build_store().await;
    let base = base.path();

    // Untouched: passes, with the key from the data dir or pinned.
    let (ok, out) = verify(base, &[]);
    assert!(ok, "{out}");
    assert!(
        out.contains("ok    acme: 15 events, 2 checkpoints"),
        "{out}"
    );
    assert!(out.contains("intact: 2 accounts, 18 events"), "{out}");
    let key = auditlog_server::signing_key::load(&base.join("signing-key"))
        .unwrap()
        .verifier()
        .to_text();
    assert!(verify(base, &["--key", &key]).0);
    let stranger = NoteSigner::from_seed("auditlog", [2; 32]).unwrap();
    let (ok, out) = verify(base, &["--key", &stranger.verifier().to_text()]);
    assert!(!ok && out.contains("checkpoint of size 10"), "{out}");

    // An edited column (what queries filter on): the event's actor id
    // pointed at another actor.
    assert_caught(
        base,
        |c| {
            c.execute(
                "UPDATE event_log SET actor = (SELECT id FROM actors WHERE account_id = 1 AND actor_id = 'u-0') \
                 WHERE key = ?1",
                [ACME + 4],
            )
            .unwrap();
        },
        &["event seq 4", "column actor_id"],
    );

    // The event type and action id pointed at another pair.
    assert_caught(
        base,
        |c| {
            c.execute(
                "UPDATE event_log SET kind = (SELECT id FROM log_values WHERE account_id = 1 AND kind = 1 \
                 AND value = '[\"Element\",\"Update\"]') WHERE key = ?1",
                [ACME + 5],
            )
            .unwrap();
        },
        &["event seq 5", "column action"],
    );

    // A value of the dictionary edited: every event using it reads another
    // action; the first of them is named.
    assert_caught(
        base,
        |c| {
            c.execute(
                "UPDATE log_values SET value = '[\"Element\",\"Delete\"]' \
                 WHERE account_id = 1 AND value = '[\"Element\",\"Create\"]'",
                [],
            )
            .unwrap();
        },
        &["event seq 1", "column action"],
    );

    // A value pointed at another account's (the same text, so only its
    // account differs): queries of this account would no longer find it.
    assert_caught(
        base,
        |c| {
            c.execute(
                "UPDATE event_log SET place = (SELECT id FROM log_values WHERE account_id = 2 AND kind = 2) \
                 WHERE key = ?1",
                [ACME + 3],
            )
            .unwrap();
        },
        &["event seq 3", "column project"],
    );

    // An actor's id edited in the actors table.
    assert_caught(
        base,
        |c| {
            c.execute(
                "UPDATE actors SET actor_id = 'mallory' WHERE account_id = 1 AND actor_id = 'u-2'",
                [],
            )
            .unwrap();
        },
        &["event seq 2", "column actor_id"],
    );

    // The hashed event id of a row edited (GET /events/{id} would miss it).
    assert_caught(
        base,
        |c| {
            c.execute(
                "UPDATE event_log SET id_hash = id_hash + 1 WHERE key = ?1",
                [ACME + 11],
            )
            .unwrap();
        },
        &["event seq 11", "column event_id"],
    );

    // Edited leaf bytes, as they are (the tree holds the leaf hash).
    assert_caught(
        base,
        |c| {
            let edited = replace(&leaf_of(c, 6), "\"key\":\"key_", "\"key\":\"kex_");
            c.execute(
                "UPDATE event_log SET leaf = ?1 WHERE key = ?2",
                params![edited, ACME + 6],
            )
            .unwrap();
        },
        &["event seq 6", "leaf bytes were edited"],
    );

    // Edited leaf bytes with the leaf hash in the tree recomputed to match.
    assert_caught(
        base,
        |c| {
            let edited = replace(&leaf_of(c, 6), "\"key\":\"key_", "\"key\":\"kex_");
            let hash = leaf::leaf_hash(&edited);
            c.execute(
                "UPDATE event_log SET leaf = ?1 WHERE key = ?2",
                params![edited, ACME + 6],
            )
            .unwrap();
            c.execute(
                "UPDATE tree_hashes SET hash = ?1 WHERE account_id = 1 AND hash_index = ?2",
                params![&hash[..], merkle::stored_hash_index(0, 5)],
            )
            .unwrap();
        },
        &["event seq 6", "Merkle tree"],
    );

    // A removed event in the middle.
    assert_caught(
        base,
        |c| {
            c.execute("DELETE FROM event_log WHERE key = ?1", [ACME + 5])
                .unwrap();
        },
        &["event seq 5 is missing"],
    );

    // The newest events removed, with their tree hashes, as a careful attacker would.
    assert_caught(
        base,
        |c| {
            c.execute(
                "DELETE FROM event_log WHERE key >= ?1 AND key < ?2",
                [ACME + 13, 2 * ACME],
            )
            .unwrap();
            c.execute(
                "DELETE FROM tree_hashes WHERE account_id = 1 AND hash_index >= ?1",
                [merkle::stored_hash_count(12)],
            )
            .unwrap();
        },
        &["event seq 13 is missing", "newest events were removed"],
    );

    // Two events swapped (their keys exchanged).
    assert_caught(
        base,
        |c| {
            c.execute("UPDATE event_log SET key = -3 WHERE key = ?1", [ACME + 3])
                .unwrap();
            c.execute(
                "UPDATE event_log SET key = ?1 WHERE key = ?2",
                [ACME + 3, ACME + 7],
            )
            .unwrap();
            c.execute("UPDATE event_log SET key = ?1 WHERE key = -3", [ACME + 7])
                .unwrap();
        },
        &["event seq 3", "those of seq 7"],
    );

    // An event slipped in after the last one, well-formed and with matching columns.
    assert_caught(
        base,
        |c| {
            let forged = replace(
                &replace(&leaf_of(c, 15), "\"seq\":15", "\"seq\":16"),
                "\"id\":\"a15\"",
                "\"id\":\"forged\"",
            );
            c.execute(
                "INSERT INTO event_log (key, time, received_at, kind, place, actor, id_hash, target_hash, leaf_dict, leaf)
                 SELECT ?1, time, received_at, kind, place, actor, ?2, target_hash, leaf_dict, ?3
                 FROM event_log WHERE key = ?4",
                params![ACME + 16, auditlog_store::key_hash64("forged"), forged, ACME + 15],
            )
            .unwrap();
            // Its personal values too, so that its commitment opens.
            c.execute(
                "INSERT INTO event_openings SELECT account_id, 16, openings, object_id, details FROM event_openings WHERE account_id = 1 AND seq = 15",
                [],
            )
            .unwrap();
        },
        &["event seq 16", "inserted"],
    );

    // An edited personal value (kept beside the v2 leaf, so the leaf and its
    // hash are untouched): it no longer opens the leaf's commitment. The
    // object of actor u-2 is shared by every event of u-2 with the same
    // values; the first of them is seq 2.
    assert_caught(
        base,
        |c| {
            c.execute(
                "UPDATE personal_objects SET object = CAST(replace(CAST(object AS TEXT), '\"Ada\"', '\"Eve\"') AS BLOB) \
                 WHERE account_id = 1 AND CAST(object AS TEXT) LIKE '%\"u-2\"%'",
                [],
            )
            .unwrap();
        },
        &["event seq 2", "do not open its commitments"],
    );

    // Openings of one event pointed at another person's values.
    assert_caught(
        base,
        |c| {
            c.execute(
                "UPDATE event_openings SET object_id = (SELECT object_id FROM event_openings WHERE account_id = 1 AND seq = 1) \
                 WHERE account_id = 1 AND seq = 8",
                [],
            )
            .unwrap();
        },
        &["event seq 8", "do not open its commitments"],
    );

    // Leaf bytes replaced by a value of another type (SQLite lets a BLOB
    // column hold text): reported at its seq, not as a failed scan.
    assert_caught(
        base,
        |c| {
            c.execute(
                "UPDATE event_log SET leaf = 'not a leaf' WHERE key = ?1",
                [ACME + 10],
            )
            .unwrap();
        },
        &["event seq 10", "unreadable"],
    );

    // A removed personal row: the v2 leaf is left without its values.
    assert_caught(
        base,
        |c| {
            c.execute(
                "DELETE FROM event_openings WHERE account_id = 1 AND seq = 9",
                [],
            )
            .unwrap();
        },
        &["event seq 9", "no personal values are stored beside it"],
    );

    // (An event slipped in beside an existing one, with the same seq, is
    // no longer possible: the seq is part of the row's key, the table's
    // INTEGER PRIMARY KEY.)

    // A row outside the sequence (seq 0), which queries would still show.
    assert_caught(
        base,
        |c| {
            c.execute(
                "INSERT INTO event_log (key, time, received_at, kind, place, actor, id_hash, target_hash, leaf_dict, leaf)
                 SELECT ?1, time, received_at, kind, place, actor, ?2, target_hash, leaf_dict, leaf
                 FROM event_log WHERE key = ?3",
                params![ACME, auditlog_store::key_hash64("ghost"), ACME + 2],
            )
            .unwrap();
        },
        &["16 event rows", "inserted outside"],
    );

    // A checkpoint replaced by one signed with another key.
    assert_caught(
        base,
        |c| {
            let root: Vec<u8> = c
                .query_row(
                    "SELECT root FROM checkpoints WHERE account_id = 1 AND size = 10",
                    [],
                    |r| r.get(0),
                )
                .unwrap();
            let forged = Checkpoint {
                origin: "auditlog/acme".into(),
                size: 10,
                root: root.try_into().unwrap(),
            }
            .sign(&stranger)
            .unwrap();
            c.execute(
                "UPDATE checkpoints SET note = ?1 WHERE account_id = 1 AND size = 10",
                [forged],
            )
            .unwrap();
        },
        &["checkpoint of size 10", "replaced"],
    );

    // A checkpoint replaced by a genuine one of another size.
    assert_caught(
        base,
        |c| {
            let other: String = c
                .query_row(
                    "SELECT note FROM checkpoints WHERE account_id = 1 AND size = 15",
                    [],
                    |r| r.get(0),
                )
                .unwrap();
            c.execute(
                "UPDATE checkpoints SET note = ?1 WHERE account_id = 1 AND size = 10",
                [other],
            )
            .unwrap();
        },
        &["checkpoint of size 10"],
    );
}

/// On a store whose newest leaves are compressed with the account's
/// dictionary: verify passes as it is, and fails naming the seq when a
/// compressed leaf is edited, and when the dictionary itself is (its
/// entropy tables: an edit of content no leaf refers to changes no leaf,
/// and then every leaf still hashes as stored, which verify accepts).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_catches_an_edited_compressed_leaf_and_an_edited_dictionary() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = TestServer::start_on(dir.path(), &[]);
    let acme = server.account("acme");
    let _beta = server.account("beta");
    for batch in 0..3 {
        let events: Vec<Value> = (0..700)
            .map(|i| json!({"id": format!("z{batch}-{i}"), "event_type": "Test Case", "action": "Update",
                             "actor": {"id": format!("u-{}", i % 5), "name": "Ada"}, "project": "Checkout",
                             "details": {"changes": [{"field": "title", "old": format!("t{i}"), "new": format!("t{}", i + 1)}]}}))
            .collect();
        let (status, body) = server
            .post("/api/v1/events", &acme.ingest, &json!({ "events": events }))
            .await;
        assert_eq!(status, 201, "{body}");
    }
    server.kill();
    let compressed: Vec<i64> = {
        let conn = Connection::open(dir.path().join("auditlog.db")).unwrap();
        let mut stmt = conn
            .prepare("SELECT key - ?1 FROM event_log WHERE key BETWEEN ?1 AND ?1 + 99999 AND leaf_dict IS NOT NULL ORDER BY key")
            .unwrap();
        let rows = stmt.query_map([ACME], |r| r.get(0)).unwrap();
        rows.map(Result::unwrap).collect()
    };
    assert_eq!(
        compressed.len(),
        100,
        "2,100 events, the last 100 compressed"
    );
    let (ok, out) = verify(dir.path(), &[]);
    assert!(ok && out.contains("2100 events"), "{out}");

    let caught = |tamper: &dyn Fn(&Connection), expect: &str| {
        let (copy, conn) = attacker_copy(dir.path());
        conn.execute_batch(
            "DROP TRIGGER leaf_dictionaries_refuse_update; DROP TRIGGER leaf_dictionaries_refuse_delete;",
        )
        .unwrap();
        tamper(&conn);
        drop(conn);
        let (ok, out) = verify(copy.path(), &[]);
        assert!(!ok, "verify passed a tampered store:\n{out}");
        assert!(out.contains(expect), "expected {expect:?} in:\n{out}");
    };
    let target = compressed[40];
    caught(
        &|c| {
            c.execute(
                "UPDATE event_log SET leaf = CAST(substr(leaf, 1, 20) || X'00' || substr(leaf, 22) AS BLOB) \
                 WHERE key = ?1",
                [ACME + target],
            )
            .unwrap();
        },
        &format!("event seq {target}"),
    );
    caught(
        &|c| {
            c.execute(
                "UPDATE leaf_dictionaries SET dictionary = \
                 CAST(substr(dictionary, 1, 8) || zeroblob(256) || substr(dictionary, 265) AS BLOB)",
                [],
            )
            .unwrap();
        },
        &format!("event seq {}", compressed[0]),
    );
}
