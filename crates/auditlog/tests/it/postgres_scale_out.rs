//! Several `auditlog serve` processes on one PostgreSQL database: events for
//! one account sent to all of them at once get gapless seqs, every
//! acknowledged event is stored exactly as acknowledged, and an export
//! created through one server is completed and downloadable through the
//! other (the export directory is shared).

use crate::helpers::TestServer;
use auditlog_store_postgres::test_support::TestDatabase;
use serde_json::json;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::time::{Duration, Instant};

const CLIENTS_PER_SERVER: usize = 4;
const BATCHES_PER_CLIENT: usize = 15;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_on_one_database_share_seqs_and_exports() {
    let Some(database) = TestDatabase::create("two_servers_on_one_database_share_seqs_and_exports")
    else {
        return;
    };
    let scratch = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let shared_exports = tempfile::tempdir().unwrap();
    let export_dir = shared_exports.path().display().to_string();
    // One log, one signing key: every server signs checkpoints with it.
    let signing_key = shared_exports
        .path()
        .join("signing-key")
        .display()
        .to_string();
    let args = [
        "--export-dir",
        export_dir.as_str(),
        "--signing-key-file",
        signing_key.as_str(),
    ];
    let servers = [
        TestServer::start_on_database(&database.url, scratch[0].path(), &args),
        TestServer::start_on_database(&database.url, scratch[1].path(), &args),
    ];
    // Keys made through one server's store work on the other: one directory.
    let account = servers[0].account("scale");
    let servers = std::sync::Arc::new(servers);

    let mut clients = Vec::new();
    for client in 0..2 * CLIENTS_PER_SERVER {
        let (servers, key) = (servers.clone(), account.ingest.clone());
        clients.push(tokio::spawn(async move {
            let server = &servers[client % 2];
            let mut acknowledged = Vec::new();
            for batch in 0..BATCHES_PER_CLIENT {
                let events: Vec<_> = (0..1 + batch % 4)
                    .map(|i| {
                        json!({
                            "id": format!("c{client}-b{batch}-{i}"),
                            "event_type": "Test Case",
                            "action": "Update",
                            "actor": {"id": format!("u-{client}")},
                            "target": {"id": format!("TC-{batch}")},
                        })
                    })
                    .collect();
                let (status, body) = server
                    .post("/api/v1/events", &key, &json!({ "events": events }))
                    .await;
                assert_eq!(status, 201, "{body}");
                for receipt in body["events"].as_array().unwrap() {
                    acknowledged.push((
                        receipt["id"].as_str().unwrap().to_string(),
                        receipt["seq"].as_u64().unwrap(),
                        receipt["hash"].as_str().unwrap().to_string(),
                    ));
                }
            }
            acknowledged
        }));
    }
    let mut acknowledged = Vec::new();
    for client in clients {
        acknowledged.extend(client.await.unwrap());
    }

    let mut seqs: Vec<u64> = acknowledged.iter().map(|(_, seq, _)| *seq).collect();
    seqs.sort_unstable();
    let total = seqs.len() as u64;
    assert_eq!(
        seqs,
        (1..=total).collect::<Vec<_>>(),
        "seq without gaps or repeats"
    );

    // Read everything back through the other server, page by page.
    let mut stored: HashMap<String, (u64, String)> = HashMap::new();
    let mut path = "/api/v1/events?limit=100".to_string();
    loop {
        let (status, page) = servers[1].get(&path, &account.read).await;
        assert_eq!(status, 200, "{page}");
        for event in page["events"].as_array().unwrap() {
            stored.insert(
                event["id"].as_str().unwrap().to_string(),
                (
                    event["seq"].as_u64().unwrap(),
                    event["hash"].as_str().unwrap().to_string(),
                ),
            );
        }
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/api/v1/events?limit=100&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(stored.len() as u64, total);
    for (id, seq, hash) in &acknowledged {
        assert_eq!(stored.get(id), Some(&(*seq, hash.clone())), "event {id}");
    }

    // An export created through the first server ...
    let (status, created) = servers[0]
        .post(
            "/api/v1/exports",
            &account.read,
            &json!({"format": "jsonl"}),
        )
        .await;
    assert_eq!(status, 202, "{created}");
    let id = created["export"]["id"].clone();
    // ... is completed (by whichever server's worker claimed it) and
    // downloadable through the second.
    let deadline = Instant::now() + Duration::from_secs(60);
    let export = loop {
        let (status, body) = servers[1]
            .get(&format!("/api/v1/exports/{id}"), &account.read)
            .await;
        assert_eq!(status, 200, "{body}");
        let state = body["export"]["status"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if state != "queued" && state != "running" {
            break body["export"].clone();
        }
        assert!(Instant::now() < deadline, "export never finished: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(export["status"], "completed", "{export}");
    let response = servers[1]
        .http
        .get(servers[1].url(&format!("/api/v1/exports/{id}/download")))
        .bearer_auth(&account.read)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let file = response.bytes().await.unwrap();
    assert_eq!(
        export["sha256"].as_str().unwrap(),
        auditlog_core::leaf::to_hex(&Sha256::digest(&file))
    );
    let exported: HashMap<String, (u64, String)> = std::str::from_utf8(&file)
        .unwrap()
        .lines()
        .map(|line| {
            let event: serde_json::Value = serde_json::from_str(line).unwrap();
            (
                event["id"].as_str().unwrap().to_string(),
                (
                    event["seq"].as_u64().unwrap(),
                    event["hash"].as_str().unwrap().to_string(),
                ),
            )
        })
        .collect();
    for (id, seq, hash) in &acknowledged {
        assert_eq!(
            exported.get(id),
            Some(&(*seq, hash.clone())),
            "exported event {id}"
        );
    }

    // The whole log verifies: leaves, columns, one tree, signed checkpoints.
    let store_args = vec![
        "--database-url".to_string(),
        database.url.clone(),
        "--signing-key-file".to_string(),
        signing_key.clone(),
    ];
    let verified = crate::helpers::run_cli_on(&store_args, &["verify"], "");
    assert!(
        verified.status.success(),
        "verify failed: {}{}",
        String::from_utf8_lossy(&verified.stdout),
        String::from_utf8_lossy(&verified.stderr)
    );
}
