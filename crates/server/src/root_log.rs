//! The log's side of witnessing (SPEC "Witnesses", issue 17): the root
//! checkpoints signed over the root log (whose leaves the store appends
//! with every account checkpoint), their submission to the configured
//! witnesses, the cosignatures stored, and the alarm.
//!
//! One server at a time signs root checkpoints and submits them: the
//! holder of the store's root-submitter lease (one row, taken and renewed
//! each round, given up on shutdown). Each round it signs a root checkpoint
//! if the root tree grew (after checking it extends the last one signed),
//! then sends the latest root checkpoint to every witness that has not
//! cosigned it, at once (one request per witness: bounded by the witness
//! list), with `auditlog_witness::submit`, which proves consistency from
//! the size the witness last cosigned and follows its 409s. A witness that
//! cannot be reached is retried with exponential backoff. A witness whose
//! answer contradicts the log (a larger size, another root at the same
//! size, a refused proof) raises the alarm: an error log line, `/readyz`
//! 503 `witness_refused`, the `auditlog_witness_alarm` gauge. The alarm
//! stays until the process is restarted, and nothing is ever signed to
//! please a witness. After a start, the latest root checkpoint is sent to
//! every witness once even if the store says it cosigned it: a restored
//! database is then caught without waiting for new events.
//!
//! Like the account signer's `signed-heads.json`, the last root checkpoint
//! signed is also remembered outside the database (`signed-root.json`
//! beside the signing key): a root tree that does not extend it (a restored
//! backup, a failover to a lagging replica) is refused before anything is
//! signed, loudly (`/readyz` 503 `signing_refused`, the alarm gauge), never
//! signed over again. The latest stored root checkpoint is still sent to
//! the witnesses, so that they see the rollback too.

use crate::signer::{read_heads, write_heads, Head, HeadsFileError, SignError};
use auditlog_core::checkpoint::Checkpoint;
use auditlog_core::cosignature::CosignatureVerifier;
use auditlog_core::merkle;
use auditlog_core::note::NoteSigner;
use auditlog_core::{ErrorChain, Timestamp};
use auditlog_store::root_log::{root_consistency_proof, root_inclusion_proof, root_tree_root};
use auditlog_store::{AccountId, Store, StoreError, StoredCheckpoint, StoredCosignature};
use auditlog_witness::{submit, Submitted, WitnessEndpoint};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How often the submitter looks for a grown root tree.
pub const ROUND_INTERVAL: Duration = Duration::from_secs(1);
/// How long the submitter's lease lasts without renewal: another server
/// takes over this long after the holder died.
pub const LEASE: Duration = Duration::from_secs(15);
/// The longest wait between attempts at an unreachable witness.
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// How long one request to a witness may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The witnesses the log submits to and how many must cosign.
#[derive(Debug, Clone, Default)]
pub struct WitnessSettings {
    pub witnesses: Vec<WitnessEndpoint>,
    /// How many of `witnesses` must cosign a root checkpoint before proofs
    /// and bundles use it.
    pub quorum: usize,
}

impl WitnessSettings {
    /// The witnesses' verifier keys, as the store keeps cosignatures by.
    pub fn keys(&self) -> Vec<String> {
        self.witnesses.iter().map(|w| w.key.to_text()).collect()
    }

    pub fn verifiers(&self) -> Vec<CosignatureVerifier> {
        self.witnesses.iter().map(|w| w.key.clone()).collect()
    }
}

/// What the submitter knows of one witness.
#[derive(Debug, Default)]
struct WitnessState {
    /// The root size it is known to have cosigned since this process
    /// started (`None`: not yet confirmed, so the next round sends it the
    /// latest root checkpoint whatever the store says).
    confirmed: Option<u64>,
    failures: u32,
    retry_at: Option<Instant>,
    /// Why it refused the log, once it did.
    alarm: Option<String>,
}

/// A root checkpoint with the cosignatures stored for it.
#[derive(Debug, Clone)]
pub struct CosignedRoot {
    pub checkpoint: StoredCheckpoint,
    /// The signed note followed by every stored cosignature line.
    pub note: String,
    /// How many cosignatures verify with the configured witnesses' keys.
    pub valid: usize,
}

/// An account checkpoint as witnessed: its root leaf and inclusion proof in
/// the latest root checkpoint that has its quorum.
#[derive(Debug, Clone)]
pub struct Witnessed {
    pub account_checkpoint: StoredCheckpoint,
    pub leaf_index: u64,
    pub hashes: Vec<merkle::Hash>,
    pub root: CosignedRoot,
}

pub struct RootLog {
    store: Arc<dyn Store>,
    key: NoteSigner,
    log_name: String,
    settings: WitnessSettings,
    /// This process's name in the lease.
    holder: String,
    http: reqwest::Client,
    witnesses: Mutex<Vec<WitnessState>>,
    /// The first alarm raised, for `/readyz`.
    alarm: Mutex<Option<String>>,
    /// Where the last root checkpoint signed is remembered outside the
    /// store, and what it holds.
    head_file: Option<PathBuf>,
    head: tokio::sync::Mutex<Option<Head>>,
    /// Why signing root checkpoints is refused, once it is (for `/readyz`).
    refusal: Mutex<Option<String>>,
}

/// Why the root log could not start.
#[derive(Debug, thiserror::Error)]
pub enum RootLogStartError {
    #[error("{0}")]
    Setup(String),
    #[error("cannot read the last signed root checkpoint")]
    HeadFile(#[source] HeadsFileError),
}

impl RootLog {
    /// `head_file` (if any) remembers the last root checkpoint signed
    /// outside the store; it is read now and rewritten after every signature.
    pub fn new(
        store: Arc<dyn Store>,
        key: NoteSigner,
        log_name: &str,
        settings: WitnessSettings,
        head_file: Option<PathBuf>,
    ) -> Result<Self, RootLogStartError> {
        let head = match &head_file {
            Some(path) => read_heads(path)
                .map_err(RootLogStartError::HeadFile)?
                .get(log_name)
                .copied(),
            None => None,
        };
        let mut id = [0u8; 8];
        getrandom::fill(&mut id)
            .map_err(|e| RootLogStartError::Setup(format!("cannot draw a lease holder id: {e}")))?;
        let holder = format!(
            "root-submitter-{}-{}",
            std::process::id(),
            id.iter().map(|b| format!("{b:02x}")).collect::<String>()
        );
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .user_agent(concat!("auditlog/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| {
                RootLogStartError::Setup(format!("cannot build the witness client: {e}"))
            })?;
        let witnesses = settings
            .witnesses
            .iter()
            .map(|_| WitnessState::default())
            .collect();
        Ok(Self {
            store,
            key,
            log_name: log_name.to_string(),
            settings,
            holder,
            http,
            witnesses: Mutex::new(witnesses),
            alarm: Mutex::new(None),
            head_file,
            head: tokio::sync::Mutex::new(head),
            refusal: Mutex::new(None),
        })
    }

    /// Why signing root checkpoints is refused, if it is (for `/readyz`).
    pub fn refusal(&self) -> Option<String> {
        self.refusal.lock().ok().and_then(|r| r.clone())
    }

    pub fn settings(&self) -> &WitnessSettings {
        &self.settings
    }

    /// The alarm, if a witness refused the log (for `/readyz`).
    pub fn alarm(&self) -> Option<String> {
        self.alarm.lock().ok().and_then(|a| a.clone())
    }

    fn raise(&self, witness: usize, reason: String) {
        let name = &self.settings.witnesses[witness].name;
        let message = format!("witness {name} refused the root log: {reason}");
        if let Ok(mut states) = self.witnesses.lock() {
            if states[witness].alarm.is_some() {
                return;
            }
            states[witness].alarm = Some(message.clone());
        }
        tracing::error!(witness = %name, %reason, "WITNESS ALARM: the log's history contradicts what a witness cosigned; the store was rolled back or forked. Nothing more is sent to this witness until an operator restarts the server");
        crate::metrics::witness_alarm(true);
        if let Ok(mut alarm) = self.alarm.lock() {
            alarm.get_or_insert(message);
        }
    }

    /// Signs a root checkpoint over the whole root tree if it grew since the
    /// last one, after checking that it extends both the last one stored
    /// and the last one remembered outside the store. Returns the latest.
    pub async fn sign_if_grown(&self) -> Result<Option<StoredCheckpoint>, SignError> {
        let mut remembered = self.head.lock().await;
        let store = self.store.as_ref();
        let size = store.root_size().await?;
        let latest = store.latest_root_checkpoint().await?;
        let mut signed: Vec<(&str, Head)> = latest
            .iter()
            .map(|c| {
                (
                    "stored",
                    Head {
                        size: c.size,
                        root: c.root,
                    },
                )
            })
            .collect();
        signed.extend(remembered.map(|head| ("remembered in signed-root.json", head)));
        for (what, head) in &signed {
            if size < head.size {
                return Err(SignError::Rollback(format!(
                    "the root log holds {size} leaves but a root checkpoint of size {} was signed ({what}); \
                     the store was rolled back (restored backup or failover?) and no root checkpoint will be signed",
                    head.size
                )));
            }
        }
        if size == 0 {
            return Ok(None);
        }
        if let Some(latest) = latest.as_ref().filter(|l| l.size == size) {
            let head = Head {
                size,
                root: latest.root,
            };
            if *remembered == Some(head) {
                // Nothing new since the last round, and both records agree.
                return Ok(Some(latest.clone()));
            }
        }
        let root = root_tree_root(store, size).await?;
        for (what, head) in &signed {
            let consistent = if head.size == size {
                head.root == root
            } else {
                let proof = root_consistency_proof(store, head.size, size).await?;
                merkle::check_tree(&proof, size as i64, &root, head.size as i64, &head.root).is_ok()
            };
            if !consistent {
                return Err(SignError::Rollback(format!(
                    "the root tree of size {size} does not extend the root checkpoint of size {} ({what}); \
                     the store was rolled back or altered and no root checkpoint will be signed",
                    head.size
                )));
            }
        }
        let stored = match latest.filter(|l| l.size == size) {
            Some(latest) => latest,
            None => self.sign_new(size, root).await?,
        };
        if *remembered != Some(Head { size, root }) {
            if let Some(path) = &self.head_file {
                let heads = HashMap::from([(self.log_name.clone(), Head { size, root })]);
                write_heads(path, &heads)?;
            }
            *remembered = Some(Head { size, root });
        }
        Ok(Some(stored))
    }

    /// Signs and stores the root checkpoint of `size` (another server on the
    /// same store may have stored it first: then that one).
    async fn sign_new(&self, size: u64, root: merkle::Hash) -> Result<StoredCheckpoint, SignError> {
        let store = self.store.as_ref();
        let note = Checkpoint {
            origin: self.log_name.clone(),
            size,
            root,
        }
        .sign(&self.key)
        .map_err(|e| StoreError::internal_caused_by("cannot sign the root checkpoint", e))?;
        let stored = StoredCheckpoint {
            size,
            root,
            note,
            created_at: Timestamp::now(),
        };
        match store.add_root_checkpoint(&stored).await {
            Ok(()) => Ok(stored),
            Err(StoreError::AlreadyExists(_)) => store
                .root_checkpoint_at(size)
                .await?
                .ok_or_else(|| StoreError::internal("root checkpoint vanished").into()),
            Err(e) => Err(e.into()),
        }
    }

    /// One round, if this process holds (or takes) the lease: sign, then
    /// submit to every witness that needs it.
    pub async fn round(&self) {
        let now = Timestamp::now();
        let until = Timestamp::from_micros(now.micros() + LEASE.as_micros() as i64);
        match self
            .store
            .claim_root_submitter(&self.holder, now, until)
            .await
        {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => {
                tracing::warn!(error = %ErrorChain(&e), "cannot take the root submitter's lease; will retry");
                return;
            }
        }
        let latest = match self.sign_if_grown().await {
            Ok(Some(latest)) => latest,
            Ok(None) => return,
            Err(SignError::Rollback(reason)) => {
                if let Ok(mut refusal) = self.refusal.lock() {
                    if refusal.is_none() {
                        tracing::error!(%reason, "REFUSING TO SIGN ROOT CHECKPOINTS: the store was rolled back or altered");
                        crate::metrics::witness_alarm(true);
                        *refusal = Some(format!("root log: {reason}"));
                    }
                }
                // Nothing new is signed, but the witnesses are shown what the
                // store holds, so that they see the rollback too.
                match self.store.latest_root_checkpoint().await {
                    Ok(Some(stored)) if !self.settings.witnesses.is_empty() => {
                        self.submit_all(&stored).await
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(error = %ErrorChain(&e), "cannot read the latest root checkpoint");
                    }
                }
                return;
            }
            Err(SignError::Store(e)) => {
                tracing::warn!(error = %ErrorChain(&e), "cannot sign a root checkpoint now; will retry");
                return;
            }
        };
        if self.settings.witnesses.is_empty() {
            return;
        }
        self.submit_all(&latest).await;
        if let Ok(cosigned) = self.cosigned(latest).await {
            crate::metrics::root_cosignatures(cosigned.valid);
        }
    }

    async fn submit_all(&self, latest: &StoredCheckpoint) {
        let stored_sizes: HashMap<String, u64> = match self.store.cosigned_sizes().await {
            Ok(sizes) => sizes.into_iter().collect(),
            Err(e) => {
                tracing::warn!(error = %ErrorChain(&e), "cannot read the witnesses' sizes; will retry");
                return;
            }
        };
        let due: Vec<(usize, u64)> = {
            let Ok(states) = self.witnesses.lock() else {
                return;
            };
            let now = Instant::now();
            states
                .iter()
                .enumerate()
                .filter(|(_, s)| s.alarm.is_none())
                .filter(|(_, s)| s.retry_at.is_none_or(|at| at <= now))
                .filter(|(_, s)| s.confirmed != Some(latest.size))
                .map(|(i, s)| {
                    let key = self.settings.witnesses[i].key.to_text();
                    let known = s
                        .confirmed
                        .or_else(|| stored_sizes.get(&key).copied())
                        .unwrap_or(0);
                    (i, known)
                })
                .collect()
        };
        if due.is_empty() {
            return;
        }
        let checkpoint = Checkpoint {
            origin: self.log_name.clone(),
            size: latest.size,
            root: latest.root,
        };
        let store = self.store.as_ref();
        let size = latest.size;
        let sends = due.iter().map(|&(i, known)| {
            let witness = &self.settings.witnesses[i];
            let checkpoint = &checkpoint;
            async move {
                let answer = submit(
                    &self.http,
                    witness,
                    &latest.note,
                    checkpoint,
                    known,
                    |from| async move {
                        root_consistency_proof(store, from, size)
                            .await
                            .map_err(|e| ErrorChain(&e).to_string())
                    },
                )
                .await;
                (i, answer)
            }
        });
        for (i, answer) in futures_util::future::join_all(sends).await {
            self.follow(i, latest, answer).await;
        }
    }

    /// Acts on one witness's answer.
    async fn follow(&self, i: usize, latest: &StoredCheckpoint, answer: Submitted) {
        let witness = &self.settings.witnesses[i];
        match answer {
            Submitted::Cosigned { line, timestamp } => {
                let stored = self
                    .store
                    .add_cosignature(&StoredCosignature {
                        size: latest.size,
                        witness: witness.key.to_text(),
                        line,
                        timestamp,
                    })
                    .await;
                if let Err(e) = stored {
                    tracing::warn!(witness = %witness.name, error = %ErrorChain(&e), "cannot store a cosignature; will ask again");
                    return;
                }
                tracing::debug!(witness = %witness.name, size = latest.size, "root checkpoint cosigned");
                if let Ok(mut states) = self.witnesses.lock() {
                    let state = &mut states[i];
                    if state.failures > 0 {
                        tracing::info!(witness = %witness.name, "witness reachable again");
                    }
                    state.confirmed = Some(latest.size);
                    state.failures = 0;
                    state.retry_at = None;
                }
            }
            Submitted::Alarm(alarm) => self.raise(i, alarm.to_string()),
            Submitted::Misconfigured(why) | Submitted::Unavailable(why) => {
                if let Ok(mut states) = self.witnesses.lock() {
                    let state = &mut states[i];
                    state.failures += 1;
                    let backoff = ROUND_INTERVAL
                        .saturating_mul(1 << state.failures.min(6))
                        .min(MAX_BACKOFF);
                    state.retry_at = Some(Instant::now() + backoff);
                    if state.failures == 1 {
                        tracing::warn!(witness = %witness.name, url = %witness.url, reason = %why, "cannot get a cosignature; retrying with backoff");
                    } else {
                        tracing::debug!(witness = %witness.name, reason = %why, failures = state.failures, "witness still failing");
                    }
                }
            }
        }
    }

    /// The root checkpoint with every stored cosignature.
    pub async fn cosigned(&self, checkpoint: StoredCheckpoint) -> Result<CosignedRoot, StoreError> {
        let cosignatures = self.store.cosignatures(checkpoint.size).await?;
        let body = Checkpoint {
            origin: self.log_name.clone(),
            size: checkpoint.size,
            root: checkpoint.root,
        }
        .body();
        let mut note = checkpoint.note.clone();
        let mut valid = 0;
        let mut counted: Vec<&CosignatureVerifier> = Vec::new();
        for cosignature in &cosignatures {
            note.push_str(&cosignature.line);
            if !cosignature.line.ends_with('\n') {
                note.push('\n');
            }
            for witness in &self.settings.witnesses {
                if !counted.contains(&&witness.key)
                    && witness.key.verify_line(&body, &cosignature.line).is_ok()
                {
                    counted.push(&witness.key);
                    valid += 1;
                }
            }
        }
        Ok(CosignedRoot {
            checkpoint,
            note,
            valid,
        })
    }

    /// The latest root checkpoint that has its quorum, with its
    /// cosignatures.
    pub async fn latest_witnessed_root(&self) -> Result<Option<CosignedRoot>, StoreError> {
        let size = self
            .store
            .latest_cosigned_root(&self.settings.keys(), self.settings.quorum)
            .await?;
        let Some(size) = size else { return Ok(None) };
        let Some(checkpoint) = self.store.root_checkpoint_at(size).await? else {
            return Ok(None);
        };
        Ok(Some(self.cosigned(checkpoint).await?))
    }

    /// The account's latest checkpoint covered by the latest root checkpoint
    /// that has its quorum, if that checkpoint's size is at least
    /// `min_size`, with its inclusion proof in the root tree.
    pub async fn witnessed(
        &self,
        account: AccountId,
        min_size: u64,
    ) -> Result<Option<Witnessed>, StoreError> {
        let Some(root) = self.latest_witnessed_root().await? else {
            return Ok(None);
        };
        let leaf = self
            .store
            .latest_root_leaf(account, root.checkpoint.size)
            .await?;
        let Some(leaf) = leaf.filter(|l| l.size >= min_size.max(1)) else {
            return Ok(None);
        };
        let Some(account_checkpoint) = self.store.checkpoint_at(account, leaf.size).await? else {
            return Ok(None);
        };
        let hashes =
            root_inclusion_proof(self.store.as_ref(), root.checkpoint.size, leaf.index).await?;
        Ok(Some(Witnessed {
            account_checkpoint,
            leaf_index: leaf.index,
            hashes,
            root,
        }))
    }

    /// The account's checkpoint of `size` with its inclusion proof in the
    /// latest root checkpoint that has its quorum, if that covers it.
    pub async fn witnessed_at(
        &self,
        account: AccountId,
        size: u64,
    ) -> Result<Option<Witnessed>, StoreError> {
        let Some(leaf) = self.store.root_leaf_of(account, size).await? else {
            return Ok(None);
        };
        let Some(root) = self.latest_witnessed_root().await? else {
            return Ok(None);
        };
        if leaf.index >= root.checkpoint.size {
            return Ok(None);
        }
        let Some(account_checkpoint) = self.store.checkpoint_at(account, size).await? else {
            return Ok(None);
        };
        let hashes =
            root_inclusion_proof(self.store.as_ref(), root.checkpoint.size, leaf.index).await?;
        Ok(Some(Witnessed {
            account_checkpoint,
            leaf_index: leaf.index,
            hashes,
            root,
        }))
    }

    /// The background task: a round every [`ROUND_INTERVAL`] until
    /// `shutdown` fires; then the lease is given up.
    pub async fn run(self: Arc<Self>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        crate::metrics::witness_alarm(false);
        let mut ticks = tokio::time::interval(ROUND_INTERVAL);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticks.tick() => {}
                _ = shutdown.changed() => break,
            }
            tokio::select! {
                _ = self.round() => {}
                _ = shutdown.changed() => break,
            }
        }
        if let Err(e) = self.store.release_root_submitter(&self.holder).await {
            tracing::warn!(error = %ErrorChain(&e), "cannot give up the root submitter's lease; another server takes over when it runs out");
        }
    }
}
