//! `auditlog monitor`: the customer's side of tamper evidence. Each round
//! it fetches the account's latest signed checkpoint, checks it against the
//! pinned verifier key, and proves that it extends the last one it verified
//! (remembered in the `--state` file): a smaller tree (rollback), the same
//! size with another root (fork), a bad signature or a bad proof stops it
//! with exit code 3 and a report carrying both signed notes. With
//! `--check-ids` it also proves that those events are in the log.
//!
//! # Layout
//!
//! - This root: the rounds and the loop.
//! - `api`: the server's proof endpoints over HTTP.
//! - `check`: the checks, without I/O, on core's note and Merkle code.
//! - `state`: the remembered checkpoint, replaced atomically.
//! - `alarm`: the evidence reported when a check fails.
//!
//! With `--witness` (and `--quorum`) each round checks the account's latest
//! witnessed checkpoint instead: its inclusion in the server's root log at
//! a root checkpoint that enough of the pinned witnesses cosigned.

mod alarm;
mod api;
mod check;
mod state;

pub use alarm::Alarm;

use crate::cli::MonitorCommand;
use crate::error::CliResult;
use alarm::AlarmKind;
use anyhow::{anyhow, bail, Context};
use api::{EventProof, LogApi};
use auditlog_core::cosignature::CosignatureVerifier;
use auditlog_core::note::NoteVerifier;
use auditlog_core::root_log::{check_covered, open_cosigned, RootLogError};
use auditlog_core::{checkpoint, AccountName};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use check::{Step, Verified};
use std::future::Future;
use std::path::{Path, PathBuf};

/// Runs rounds until an alarm, `--once` or `shutdown`.
pub async fn run(command: MonitorCommand, shutdown: impl Future<Output = ()>) -> CliResult {
    let verifiers = command
        .vkeys
        .iter()
        .map(|k| NoteVerifier::parse(k).map_err(|e| anyhow!("--vkey {k:?}: {e}")))
        .collect::<CliResult<Vec<_>>>()?;
    let Some(verifier) = verifiers.first().cloned() else {
        bail!("--vkey is required");
    };
    // The origin is `<key name>/<account>`: a rotated key keeps the log's name.
    if let Some(other) = verifiers.iter().find(|v| v.name() != verifier.name()) {
        bail!(
            "--vkey keys must all have the log's name: {} and {} differ (a key rotation keeps the log name, which is part of every origin)",
            verifier.name(),
            other.name()
        );
    }
    let account =
        AccountName::parse(&command.account).map_err(|e| anyhow!("--account: {}", e.message))?;
    let interval = auditlog_server::exports::parse_duration(&command.interval)
        .map_err(|e| anyhow!("--interval: {e}"))?;
    if interval.is_zero() {
        bail!("--interval must be at least 1s");
    }
    let ids = match &command.check_ids {
        Some(path) => read_ids(path)?,
        None => Vec::new(),
    };
    // The server signs with its log name as the key's name.
    let origin = checkpoint::origin(verifier.name(), account.as_ref());
    let witnesses = command
        .witnesses
        .iter()
        .map(|w| CosignatureVerifier::parse(w).map_err(|e| anyhow!("--witness {w:?}: {e}")))
        .collect::<CliResult<Vec<_>>>()?;
    let quorum = command
        .quorum
        .unwrap_or(witnesses.len() / 2 + usize::from(!witnesses.is_empty()));
    if quorum > witnesses.len() {
        bail!(
            "--quorum {quorum} is more than the {} --witness keys given",
            witnesses.len()
        );
    }
    let remembered = state::load(&command.state, &verifiers, &origin)?;
    let mut monitor = Monitor {
        api: LogApi::new(&command.url, &command.key, command.ca_file.as_deref())?,
        verifiers,
        origin,
        state: command.state,
        remembered,
        witnesses,
        quorum,
    };
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        match monitor.round(&ids).await {
            Ok(()) => {}
            Err(error) => {
                if let Some(alarm) = error.downcast_ref::<Alarm>() {
                    print!("{}", alarm.report());
                    return Err(error);
                }
                if command.once {
                    return Err(error);
                }
                // Not evidence of anything: the server or the network may
                // be down for a while; the next round tries again.
                tracing::warn!(
                    error = format!("{error:#}"),
                    "this round could not check the log"
                );
            }
        }
        if command.once {
            return Ok(());
        }
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            () = &mut shutdown => return Ok(()),
        }
    }
}

/// One event id per line; blank lines and `#` comments are skipped.
fn read_ids(path: &Path) -> anyhow::Result<Vec<String>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("--check-ids: cannot read {}", path.display()))?;
    let ids: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(str::to_string)
        .collect();
    if ids.is_empty() {
        bail!(
            "--check-ids {}: the file holds no event ids",
            path.display()
        );
    }
    Ok(ids)
}

struct Monitor {
    api: LogApi,
    /// The log's pinned keys (one, or the old and new ones of a rotation),
    /// all with the log's name.
    verifiers: Vec<NoteVerifier>,
    origin: String,
    state: PathBuf,
    /// The last checkpoint verified, as in the state file.
    remembered: Option<Verified>,
    /// The pinned witnesses (none: checkpoints are not required to be
    /// witnessed) and how many must have cosigned.
    witnesses: Vec<CosignatureVerifier>,
    quorum: usize,
}

impl Monitor {
    /// The account's checkpoint to check this round: the latest one, or
    /// with witnesses the latest witnessed one, whose root inclusion and
    /// cosignatures are checked here.
    async fn served(&self) -> anyhow::Result<Option<String>> {
        if self.witnesses.is_empty() {
            return self.api.checkpoint().await;
        }
        let Some(witnessed) = self.api.witnessed().await? else {
            if self.remembered.is_some() {
                bail!("the server has no witnessed checkpoint of this account now (404)");
            }
            return Ok(None);
        };
        let account = check::open(
            &witnessed.checkpoint,
            &self.verifiers,
            &self.origin,
            "witnessed checkpoint",
        )?;
        let root = &witnessed.root;
        // By whichever pinned key signed the root checkpoint.
        let signed_by = self
            .verifiers
            .iter()
            .find(|v| checkpoint::Checkpoint::open(&root.checkpoint, v).is_ok())
            .unwrap_or(&self.verifiers[0]);
        let opened = open_cosigned(
            &root.checkpoint,
            signed_by.name(),
            signed_by,
            &self.witnesses,
            self.quorum,
        );
        let opened = match opened {
            Ok(opened) => opened,
            Err(RootLogError::Note(e)) => {
                return Err(Alarm::new(
                    AlarmKind::BadSignature,
                    format!("the root checkpoint does not verify with --vkey: {e}"),
                )
                .with("root checkpoint", &root.checkpoint)
                .into())
            }
            // Too few of *these* witnesses: the server's quorum may be of
            // others. Not evidence against the log.
            Err(e) => bail!("the witnessed checkpoint cannot be accepted: {e}"),
        };
        let hashes = root
            .hashes
            .iter()
            .map(|h| {
                BASE64
                    .decode(h)
                    .ok()
                    .and_then(|h| <[u8; 32]>::try_from(h).ok())
                    .ok_or_else(|| anyhow!("GET /api/v1/proofs/root: {h:?} is not a base64 hash"))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        if opened.checkpoint.size != root.tree_size {
            bail!(
                "GET /api/v1/proofs/root: tree_size {} is not the root checkpoint's size {}",
                root.tree_size,
                opened.checkpoint.size
            );
        }
        if let Err(e) = check_covered(
            &account.checkpoint,
            root.leaf_index,
            &hashes,
            &opened.checkpoint,
        ) {
            return Err(Alarm::new(AlarmKind::BadProof, e.to_string())
                .with(
                    format!("account checkpoint ({})", account.describe()),
                    &account.note,
                )
                .with("root checkpoint", &root.checkpoint)
                .into());
        }
        Ok(Some(witnessed.checkpoint))
    }

    async fn round(&mut self, ids: &[String]) -> anyhow::Result<()> {
        match self.served().await? {
            Some(note) => {
                let served =
                    check::open(&note, &self.verifiers, &self.origin, "served checkpoint")?;
                let described = served.describe();
                let how = self.advance(served).await?;
                println!("{}: verified {described}, {how}", self.origin);
            }
            None => {
                if let Some(remembered) = &self.remembered {
                    return Err(Alarm::new(
                        AlarmKind::Rollback,
                        format!(
                            "the log now has no events, but signed size {} before",
                            remembered.size()
                        ),
                    )
                    .with(
                        format!("remembered checkpoint ({})", remembered.describe()),
                        &remembered.note,
                    )
                    .into());
                }
                println!("{}: no events yet, so no checkpoint", self.origin);
            }
        }
        for id in ids {
            self.check_event(id).await?;
        }
        if !ids.is_empty() {
            println!(
                "{}: verified the inclusion of {} events",
                self.origin,
                ids.len()
            );
        }
        Ok(())
    }

    /// Checks that `served` extends the remembered checkpoint, then
    /// remembers it; says how it relates.
    async fn advance(&mut self, served: Verified) -> anyhow::Result<String> {
        let how = match &self.remembered {
            None => "the first one remembered".to_string(),
            Some(remembered) => match check::step(remembered, &served)? {
                Step::Same => return Ok("unchanged".to_string()),
                Step::Grown { from, to } => {
                    let hashes = self.api.consistency(from, to).await?;
                    check::consistency(remembered, &served, &hashes)?;
                    format!("consistent with size {from}")
                }
            },
        };
        state::save(&self.state, &served)?;
        self.remembered = Some(served);
        Ok(how)
    }

    /// Proves event `id` is in a checkpoint consistent with the remembered one.
    async fn check_event(&mut self, id: &str) -> anyhow::Result<()> {
        let proof = match self.api.event_proof(id).await? {
            EventProof::Found(proof) => proof,
            EventProof::Missing => {
                let mut alarm = Alarm::new(
                    AlarmKind::MissingEvent,
                    format!("the log has no event {id:?} (404)"),
                );
                if let Some(remembered) = &self.remembered {
                    alarm = alarm.with(
                        format!("remembered checkpoint ({})", remembered.describe()),
                        &remembered.note,
                    );
                }
                return Err(alarm.into());
            }
        };
        let source = format!("checkpoint of event {id:?}'s proof");
        let checkpoint = check::open(&proof.checkpoint, &self.verifiers, &self.origin, &source)?;
        check::inclusion(id, &proof, &checkpoint)?;
        match &self.remembered {
            // An older checkpoint: the remembered one must extend it.
            Some(remembered) if checkpoint.size() < remembered.size() => {
                let hashes = self
                    .api
                    .consistency(checkpoint.size(), remembered.size())
                    .await?;
                check::consistency(&checkpoint, remembered, &hashes)?;
            }
            // The same (or a fork), or signed since this round's: as served.
            _ => {
                self.advance(checkpoint).await?;
            }
        }
        Ok(())
    }
}
