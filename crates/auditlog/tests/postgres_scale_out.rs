//! Several `auditlog serve` processes on one PostgreSQL database: events for
//! one account sent to all of them at once get gapless seqs, and every
//! acknowledged event is stored exactly as acknowledged.

mod common;

use auditlog_store_postgres::test_support::TestDatabase;
use common::{get, post, TestServer};
use serde_json::json;
use std::collections::HashMap;

const CLIENTS_PER_SERVER: usize = 4;
const BATCHES_PER_CLIENT: usize = 15;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_on_one_database_keep_seq_gapless() {
    let Some(database) = TestDatabase::create("two_servers_on_one_database_keep_seq_gapless")
    else {
        return;
    };
    let scratch = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let servers = [
        TestServer::start_on_database(&database.url, scratch[0].path(), &[]),
        TestServer::start_on_database(&database.url, scratch[1].path(), &[]),
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
                let (status, body) =
                    post(server, "/api/v1/events", &key, &json!({ "events": events })).await;
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
        let (status, page) = get(&servers[1], &path, &account.read).await;
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
}
