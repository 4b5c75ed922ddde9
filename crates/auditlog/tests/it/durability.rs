//! Durability: every event acknowledged to a client survives SIGKILL of the
//! server and a restart, and `seq` stays gapless.

use crate::helpers::TestServer;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};

fn event(id: String) -> Value {
    json!({"id": id, "event_type": "Test Suite", "action": "Update", "actor": {"id": "u-1"},
           "details": {"changes": [{"field": "name", "old": "a", "new": "b"}]}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_events_survive_sigkill_and_seq_has_no_gaps() {
    let temp = tempfile::tempdir().unwrap();
    let mut server = TestServer::start_on(temp.path(), &[]);
    let account = server.account("durable");
    let acknowledged: Arc<Mutex<HashSet<String>>> = Arc::default();
    let mut clients = Vec::new();
    for client in 0..8 {
        let (http, url, key, acked) = (
            server.http.clone(),
            server.url("/api/v1/events"),
            account.ingest.clone(),
            acknowledged.clone(),
        );
        clients.push(tokio::spawn(async move {
            for n in 0.. {
                // Half the clients send single events, half send batches of 50.
                let body = if client % 2 == 0 {
                    event(format!("c{client}-{n}"))
                } else {
                    json!({"events": (0..50).map(|i| event(format!("c{client}-{n}-{i}"))).collect::<Vec<_>>()})
                };
                let Ok(response) = http.post(&url).bearer_auth(&key).json(&body).send().await else { break };
                if response.status().as_u16() != 201 {
                    break;
                }
                let Ok(answer) = response.json::<Value>().await else { break };
                let mut acked = acked.lock().unwrap();
                for receipt in answer["events"].as_array().unwrap() {
                    acked.insert(receipt["id"].as_str().unwrap().to_string());
                }
            }
        }));
    }
    // Let the clients get going, then kill the server mid-stream.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while acknowledged.lock().unwrap().len() < 2_000 && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    server.kill();
    for c in clients {
        c.await.unwrap();
    }
    let acked = acknowledged.lock().unwrap().clone();
    assert!(
        acked.len() >= 2_000,
        "clients were acknowledged before the kill ({})",
        acked.len()
    );

    let server = TestServer::start_on(temp.path(), &[]);
    let mut stored: Vec<(u64, String)> = Vec::new();
    let mut cursor = String::new();
    loop {
        let (status, page) = server
            .get(&format!("/api/v1/events?limit=1000{cursor}"), &account.read)
            .await;
        assert_eq!(status, 200);
        for e in page["events"].as_array().unwrap() {
            stored.push((
                e["seq"].as_u64().unwrap(),
                e["id"].as_str().unwrap().to_string(),
            ));
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => break,
        }
    }
    let ids: HashSet<&str> = stored.iter().map(|(_, id)| id.as_str()).collect();
    for id in &acked {
        assert!(
            ids.contains(id.as_str()),
            "acknowledged event {id} was lost"
        );
    }
    let mut seqs: Vec<u64> = stored.iter().map(|(seq, _)| *seq).collect();
    seqs.sort_unstable();
    assert_eq!(
        seqs,
        (1..=stored.len() as u64).collect::<Vec<_>>(),
        "seq must be 1..=n without gaps"
    );
}
