//! The background export worker: `concurrency` runners, each claiming one
//! job at a time from the store's queue (atomically, with a lease that it
//! renews while it writes), plus a sweeper that expires old exports and
//! deletes their files. On shutdown a runner stops at the next page
//! boundary, deletes its partial file and puts the job back in the queue.

use crate::bundle::write_bundle;
use crate::exports::error::ExportError;
use crate::exports::file::{self, EventWalk, ExportWriter};
use crate::exports::settings::ExportSettings;
use crate::root_log::RootLog;
use crate::signer::CheckpointSigner;
use auditlog_core::{ErrorChain, EventFilter, Timestamp};
use auditlog_store::{ExportFormat, ExportJob, ExportOutcome, Store};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{watch, Notify};
use tokio::task::JoinSet;

/// How often an idle runner looks for work it was not woken for (jobs
/// created by another server, leases that ran out).
const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// The file name of export `id` inside the export directory.
pub fn file_name(job: &ExportJob) -> String {
    format!(
        "export-{}.{}",
        job.id,
        file::extension(job.format, job.compression)
    )
}

fn later(now: Timestamp, by: Duration) -> Timestamp {
    Timestamp::from_micros(now.micros().saturating_add(by.as_micros() as i64))
}

/// Starts the runners and the sweeper; they stop when `shutdown` turns true
/// (each at a safe point), and the returned set finishes when all have.
/// `signer` makes `bundle` exports possible; without it they fail with a
/// message saying so. With `root_log`, bundles carry the witnessed root
/// checkpoint that covers them.
pub fn spawn(
    store: Arc<dyn Store>,
    settings: ExportSettings,
    signer: Option<Arc<CheckpointSigner>>,
    root_log: Option<Arc<RootLog>>,
    wakeup: Arc<Notify>,
    shutdown: watch::Receiver<bool>,
) -> JoinSet<()> {
    let mut tasks = JoinSet::new();
    let settings = Arc::new(settings);
    // One id per process and runner; leases name it, so a runner can tell
    // when another took its job over.
    let process = format!("{}-{}", std::process::id(), crate::tokens::random_token(6));
    for n in 0..settings.concurrency.max(1) {
        let runner = Runner {
            id: format!("{process}-{n}"),
            store: store.clone(),
            settings: settings.clone(),
            signer: signer.clone(),
            root_log: root_log.clone(),
            shutdown: shutdown.clone(),
        };
        let wakeup = wakeup.clone();
        tasks.spawn(async move { runner.run(wakeup).await });
    }
    tasks.spawn(sweep(store, settings, shutdown));
    tasks
}

struct Runner {
    id: String,
    store: Arc<dyn Store>,
    settings: Arc<ExportSettings>,
    signer: Option<Arc<CheckpointSigner>>,
    root_log: Option<Arc<RootLog>>,
    shutdown: watch::Receiver<bool>,
}

impl Runner {
    async fn run(mut self, wakeup: Arc<Notify>) {
        while !*self.shutdown.borrow() {
            let now = Timestamp::now();
            match self
                .store
                .claim_export(&self.id, now, later(now, self.settings.lease))
                .await
            {
                Ok(Some(job)) => {
                    self.run_job(job).await;
                    continue;
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(error = %ErrorChain(&e), "cannot claim export jobs; retrying")
                }
            }
            tokio::select! {
                _ = wakeup.notified() => {}
                _ = tokio::time::sleep(POLL_INTERVAL) => {}
                _ = self.shutdown.changed() => {}
            }
        }
    }

    async fn run_job(&mut self, job: ExportJob) {
        let id = job.id;
        tracing::info!(export = id, attempt = job.attempts, "export started");
        match self.write(&job).await {
            Ok(Some(outcome)) => {
                let rows = outcome.row_count;
                match self.store.complete_export(id, &self.id, outcome).await {
                    Ok(true) => {
                        tracing::info!(export = id, rows, "export completed");
                        self.remove_leftovers(&job);
                    }
                    Ok(false) => tracing::warn!(
                        export = id,
                        "export finished after its lease was taken over"
                    ),
                    Err(e) => {
                        tracing::error!(export = id, error = %ErrorChain(&e), "cannot record a completed export")
                    }
                }
            }
            Ok(None) => {}
            Err(error) => {
                // What the user reads on the failed job: the failure with its causes.
                let message = ErrorChain(&error).to_string();
                tracing::warn!(export = id, error = %message, "export failed");
                if let Err(e) = self.store.fail_export(id, &self.id, &message).await {
                    tracing::error!(export = id, error = %ErrorChain(&e), "cannot record a failed export");
                }
                self.remove_leftovers(&job);
            }
        }
    }

    /// Writes the file. `Ok(None)`: stopped early (shutdown or lost lease),
    /// the job handed back or left to its new owner.
    async fn write(&mut self, job: &ExportJob) -> Result<Option<ExportOutcome>, ExportError> {
        let account = self
            .store
            .account_by_id(job.account_id)
            .await
            .map_err(ExportError::ReadAccount)?
            .ok_or(ExportError::AccountGone)?;
        let filter = EventFilter::from_json(&job.filters, &account.taxonomy)
            .map_err(ExportError::Filters)?;
        let dir = self.settings.dir.clone();
        std::fs::create_dir_all(&dir).map_err(|cause| ExportError::CreateDir {
            path: dir.clone(),
            cause,
        })?;
        let final_name = file_name(job);
        let temp_path = dir.join(format!("{final_name}.{}.part", self.id));
        let final_path = dir.join(&final_name);
        if job.format == ExportFormat::Bundle {
            return self
                .write_bundle(job, &account, &filter, &temp_path, &final_path, final_name)
                .await
                .map(Some);
        }
        let writer =
            ExportWriter::create(job.format, job.compression, temp_path.clone(), final_path)
                .map_err(|cause| ExportError::CreateFile {
                    path: temp_path.clone(),
                    cause,
                })?;
        let walk = EventWalk::new(job.account_id, filter, job.seq_bound);
        let lease = self.settings.lease;
        let page_delay = self.settings.page_delay;
        let mut renewed = Instant::now();
        let store = self.store.clone();
        let worker = self.id.clone();
        let shutdown = self.shutdown.clone();
        let summary = file::write_all(store.as_ref(), walk, writer, |_rows| {
            let store = store.clone();
            let worker = worker.clone();
            let shutdown = shutdown.clone();
            let due = renewed.elapsed() >= lease / 3;
            if due {
                renewed = Instant::now();
            }
            async move {
                if !page_delay.is_zero() {
                    tokio::time::sleep(page_delay).await;
                }
                if *shutdown.borrow() {
                    return false;
                }
                if due {
                    let now = Timestamp::now();
                    match store
                        .renew_export_lease(job.id, &worker, later(now, lease))
                        .await
                    {
                        Ok(true) => {}
                        Ok(false) => {
                            tracing::warn!(
                                export = job.id,
                                "lease lost to another worker; stopping"
                            );
                            return false;
                        }
                        Err(e) => {
                            tracing::warn!(export = job.id, error = %ErrorChain(&e), "cannot renew the lease")
                        }
                    }
                }
                true
            }
        })
        .await?;
        let Some(summary) = summary else {
            if *self.shutdown.borrow() {
                tracing::info!(
                    export = job.id,
                    "shutting down: export handed back to the queue"
                );
                if let Err(e) = self.store.release_export(job.id, &self.id).await {
                    tracing::warn!(export = job.id, error = %ErrorChain(&e), "cannot hand the export back; its lease will run out");
                }
            }
            return Ok(None);
        };
        let completed_at = Timestamp::now();
        Ok(Some(ExportOutcome {
            row_count: summary.row_count,
            size_bytes: summary.size_bytes,
            sha256: summary.sha256,
            file_name: final_name,
            completed_at,
            expires_at: later(completed_at, self.settings.expiry),
        }))
    }

    /// Writes a verifiable bundle: built whole (each entry's proof is against
    /// one checkpoint), then written, synced and renamed into place.
    async fn write_bundle(
        &self,
        job: &ExportJob,
        account: &auditlog_store::Account,
        filter: &EventFilter,
        temp_path: &std::path::Path,
        final_path: &std::path::Path,
        final_name: String,
    ) -> Result<ExportOutcome, ExportError> {
        use sha2::{Digest, Sha256};
        use std::io::Write;
        let signer = self.signer.as_ref().ok_or(ExportError::NoSigningKey)?;
        let bundle = write_bundle(
            self.store.as_ref(),
            signer,
            self.root_log.as_deref(),
            // The bundle writer does not renew the job's lease: wait for
            // the witnesses well within it.
            crate::bundle::ROOT_WAIT.min(self.settings.lease / 2),
            account,
            filter,
            Some(job.seq_bound),
        )
        .await
        .map_err(ExportError::Bundle)?;
        let write = || -> std::io::Result<()> {
            let mut file = std::fs::File::create(temp_path)?;
            file.write_all(&bundle.bytes)?;
            file.sync_all()?;
            std::fs::rename(temp_path, final_path)
        };
        write().map_err(|cause| {
            file::remove_if_present(temp_path);
            ExportError::WriteBundle {
                path: temp_path.to_path_buf(),
                cause,
            }
        })?;
        let completed_at = Timestamp::now();
        Ok(ExportOutcome {
            row_count: bundle.entries as u64,
            size_bytes: bundle.bytes.len() as u64,
            sha256: auditlog_core::leaf::to_hex(&Sha256::digest(&bundle.bytes)),
            file_name: final_name,
            completed_at,
            expires_at: later(completed_at, self.settings.expiry),
        })
    }

    /// Deletes partial files of this job left by runners that died.
    fn remove_leftovers(&self, job: &ExportJob) {
        let prefix = format!("{}.", file_name(job));
        let Ok(entries) = std::fs::read_dir(&self.settings.dir) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(&prefix) && name.ends_with(".part") {
                file::remove_if_present(&entry.path());
            }
        }
    }
}

/// Expires completed exports whose time is up and deletes their files.
async fn sweep(
    store: Arc<dyn Store>,
    settings: Arc<ExportSettings>,
    mut shutdown: watch::Receiver<bool>,
) {
    // Often enough that an export is gone soon after it expires, rarely
    // enough to cost nothing.
    let interval = (settings.expiry / 4).clamp(Duration::from_millis(250), Duration::from_secs(60));
    while !*shutdown.borrow() {
        match store.expire_exports(Timestamp::now()).await {
            Ok(expired) => {
                for job in expired {
                    if let Some(name) = &job.file_name {
                        let path: PathBuf = settings.dir.join(name);
                        file::remove_if_present(&path);
                    }
                    tracing::info!(export = job.id, "export expired; file deleted");
                }
            }
            Err(e) => tracing::warn!(error = %ErrorChain(&e), "cannot expire exports; retrying"),
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = shutdown.changed() => {}
        }
    }
}
