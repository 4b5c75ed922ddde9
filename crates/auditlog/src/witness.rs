//! `auditlog witness`: runs a C2SP witness (the `auditlog-witness` crate)
//! and makes its key. It shares nothing with the log server but the binary:
//! no store, no settings beyond its own flags.

use crate::cli::{WitnessCommand, WitnessKeyCommand};
use crate::error::CliResult;
use anyhow::Context;
use auditlog_witness::{key_file, Logs, Witness};
use std::future::Future;
use std::sync::Arc;

/// Runs a witness command; `serve` stops when `shutdown` completes.
pub async fn run(
    command: WitnessCommand,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> CliResult {
    match command {
        WitnessCommand::Key {
            command: WitnessKeyCommand::Create { key_file, name },
        } => {
            let signer = key_file::create(&key_file, &name)?;
            println!("{}", signer.verifier().to_text());
            Ok(())
        }
        WitnessCommand::Key {
            command: WitnessKeyCommand::Show { key_file },
        } => {
            println!("{}", key_file::load(&key_file)?.verifier().to_text());
            Ok(())
        }
        WitnessCommand::Serve {
            listen,
            key_file,
            logs,
            state,
        } => {
            let logs = Logs::load(&logs)?;
            let signer = key_file::load(&key_file)?;
            let witness = Arc::new(Witness::open(logs, signer, &state)?);
            let listener = tokio::net::TcpListener::bind(&listen)
                .await
                .with_context(|| format!("cannot listen on {listen}"))?;
            let address = listener
                .local_addr()
                .context("cannot read the listening address")?;
            println!("witness verifier key: {}", witness.verifier().to_text());
            // Tests and scripts read this line to find a port chosen with :0.
            println!("auditlog listening on http://{address}");
            tracing::info!(
                %address,
                verifier_key = witness.verifier().to_text(),
                origins = ?witness.logs().origins(),
                state = %state.display(),
                "witness serving"
            );
            auditlog_witness::serve(listener, witness, shutdown)
                .await
                .context("the witness server failed")
        }
    }
}
