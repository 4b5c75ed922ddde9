//! The example service's binary: settings from the environment, the audit
//! batcher (with a spool, so that a crash loses no audit record), and a
//! graceful shutdown that delivers what is buffered.
//!
//! ```sh
//! AUDITLOG_INGEST_KEY=alk_... cargo run -p testcase-service
//! ```
//!
//! - `AUDITLOG_URL`: the Auditlog server (default `http://127.0.0.1:8080`)
//! - `AUDITLOG_INGEST_KEY`: an API key with the `ingest` scope (required)
//! - `AUDITLOG_SPOOL_DIR`: the batcher's spool (default `./testcase-service-spool`)
//! - `LISTEN`: this service's address (default `127.0.0.1:3000`)

use auditlog_client::{Batcher, Client};
use std::sync::Arc;
use std::time::Duration;
use testcase_service::{router, Service};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let env = |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.into());
    let key = std::env::var("AUDITLOG_INGEST_KEY").map_err(|_| {
        "set AUDITLOG_INGEST_KEY to an ingest key (`auditlog serve --demo` prints one)"
    })?;
    let client = Client::new(env("AUDITLOG_URL", "http://127.0.0.1:8080"), key)?;
    let batcher = Batcher::builder(client)
        .spool(env("AUDITLOG_SPOOL_DIR", "./testcase-service-spool"))
        .flush_interval(Duration::from_millis(200))
        .on_rejected(|rejection| eprintln!("audit event refused: {rejection}"))
        .start()?;
    let recovered = batcher.recovered();
    if recovered.events > 0 {
        eprintln!(
            "resending {} audit events left in the spool",
            recovered.events
        );
    }
    let audit = Arc::new(batcher);
    let listener = tokio::net::TcpListener::bind(env("LISTEN", "127.0.0.1:3000")).await?;
    println!(
        "testcase-service listening on http://{}",
        listener.local_addr()?
    );
    axum::serve(listener, router(Service::new(audit.clone())))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    // Deliver what is buffered; anything left stays in the spool for the next start.
    if let Err(e) = audit.shutdown(Duration::from_secs(10)).await {
        eprintln!("{e}");
    }
    Ok(())
}
