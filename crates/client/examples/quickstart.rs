//! The README's example: run it against `auditlog serve --demo` with the
//! printed keys in AUDITLOG_INGEST_KEY and AUDITLOG_READ_KEY.

use auditlog_client::{Actor, Batcher, Client, Event, Target, VerifierKey};
use std::time::Duration;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("AUDITLOG_URL").unwrap_or_else(|_| "http://127.0.0.1:8080".into());
    let client = Client::builder(url, std::env::var("AUDITLOG_INGEST_KEY")?)
        .read_key(std::env::var("AUDITLOG_READ_KEY")?)
        .build()?;

    // One event, awaited until it is durable.
    let event = Event::builder(
        "Test Case",
        "Update",
        Actor::new("u-17").name("Ada Lovelace"),
    )
    .project("Checkout")
    .app("Web")
    .version("2.3")
    .target(Target::new("TC-1042").name("Login with SSO"))
    .change("title", "Login", "Login with SSO")
    .build()?;
    let receipt = client.send(event).await?;
    println!("stored as seq {} (hash {})", receipt.seq, receipt.hash);

    // Trust, but verify: pin the key out of band in real use (here it is
    // fetched from the same server, which proves nothing by itself).
    let key: VerifierKey = client.fetch_public_key().await?.parse()?;
    let verified = client.verify_receipt(&receipt, &key).await?;
    println!(
        "included in {} at size {}",
        verified.origin, verified.tree_size
    );

    // Many events: batched in the background, kept in a spool until delivered.
    let batcher = Batcher::builder(client.clone())
        .spool(std::env::temp_dir().join("auditlog-quickstart-spool"))
        .on_rejected(|rejection| eprintln!("{rejection}"))
        .start()?;
    for n in 0..100 {
        let event = Event::builder("Test Case", "Create", "u-17")
            .target(Target::new(format!("TC-{n}")))
            .build()?;
        batcher.add(event).await?;
    }
    batcher.shutdown(Duration::from_secs(10)).await?;
    println!("delivered {} events in batches", batcher.stats().delivered);
    Ok(())
}
