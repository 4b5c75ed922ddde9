//! `serve --demo` on a fresh data directory gives a working account: the
//! printed read key returns demo events.

use crate::helpers::TestServer;

fn printed_key(output: &str, label: &str) -> String {
    output
        .lines()
        .find_map(|l| l.trim().strip_prefix(label))
        .unwrap_or_else(|| panic!("{label} not printed in {output}"))
        .trim()
        .to_string()
}

#[tokio::test]
async fn demo_prints_working_keys_and_serves_demo_events() {
    let temp = tempfile::tempdir().unwrap();
    let server = TestServer::start_on(temp.path(), &["--demo"]);
    let output = server.startup_output();
    assert!(output.contains("admin@demo.local / "), "{output}");
    let read = printed_key(&output, "read key:");
    let (status, page) = server.get("/api/v1/events", &read).await;
    assert_eq!(status, 200);
    let events = page["events"].as_array().unwrap();
    assert_eq!(events.len(), 50);
    assert!(events.iter().all(|e| e["account"] == "demo"));
    let (_, hist) = server.get("/api/v1/events/histogram", &read).await;
    assert_eq!(hist["total"], 10_000);
    let (_, updates) = server
        .get("/api/v1/events?action=Update&limit=1", &read)
        .await;
    assert!(updates["events"][0]["details"]["changes"]
        .as_array()
        .is_some_and(|c| !c.is_empty()));
    drop(server);

    // A second start keeps the data and prints fresh keys that work.
    let server = TestServer::start_on(temp.path(), &["--demo"]);
    let output = server.startup_output();
    assert!(output.contains("already exists"), "{output}");
    let (_, hist) = server
        .get(
            "/api/v1/events/histogram",
            &printed_key(&output, "read key:"),
        )
        .await;
    assert_eq!(hist["total"], 10_000);
}
