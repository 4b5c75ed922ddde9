//! The checkpoint signer: signs a C2SP checkpoint for each account whose
//! tree grew (a background task does it every second, well within SPEC's
//! 10 s; proof requests do it on demand), and never signs two checkpoints
//! that contradict each other.
//!
//! Before signing, the new root is checked for consistency with the last
//! checkpoint this log signed. "Last signed" is remembered twice: in the
//! store, and in a small heads file beside the signing key, outside the
//! database. A restored backup or a failover to a lagging replica rolls the
//! store's checkpoints back with its events, but not the heads file, so the
//! rollback is seen: the signer refuses, logs it at error level, and
//! `/readyz` reports it until an operator intervenes.

use auditlog_core::checkpoint::{self, Checkpoint};
use auditlog_core::merkle::{self, Hash};
use auditlog_core::note::{NoteSigner, NoteVerifier};
use auditlog_core::ErrorChain;
use auditlog_core::Timestamp;
use auditlog_store::{tree, Account, Store, StoreError, StoredCheckpoint};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How often the background task looks for grown trees.
pub const SIGN_INTERVAL: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The store no longer extends what was signed: refused.
    #[error("{0}")]
    Rollback(String),
}

/// The last checkpoint signed for one account (or for the root log).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Head {
    pub(crate) size: u64,
    pub(crate) root: Hash,
}

pub struct CheckpointSigner {
    store: Arc<dyn Store>,
    signer: NoteSigner,
    log_name: String,
    heads_file: Option<PathBuf>,
    /// Last signed heads by account name; the lock also serialises signing.
    heads: tokio::sync::Mutex<HashMap<String, Head>>,
    /// Accounts whose signing was refused, with the reason (for `/readyz`).
    refusals: std::sync::Mutex<HashMap<String, String>>,
    /// `created_at` (µs) of the newest checkpoint signed or found, over all
    /// accounts; 0 until there is one. For `/metrics`: a checkpoint that
    /// grows old while events arrive means signing has stalled.
    newest_checkpoint_micros: AtomicI64,
    /// Set while the heads file lags the heads signed (its write failed, on
    /// a full disk say); the next pass writes it again.
    heads_file_behind: AtomicBool,
}

impl CheckpointSigner {
    /// `heads_file` (if any) is read now and rewritten after every signature.
    pub fn new(
        store: Arc<dyn Store>,
        signer: NoteSigner,
        log_name: &str,
        heads_file: Option<PathBuf>,
    ) -> Result<Self, HeadsFileError> {
        let heads = match &heads_file {
            Some(path) => read_heads(path)?,
            None => HashMap::new(),
        };
        Ok(Self {
            store,
            signer,
            log_name: log_name.to_string(),
            heads_file,
            heads: tokio::sync::Mutex::new(heads),
            refusals: std::sync::Mutex::new(HashMap::new()),
            newest_checkpoint_micros: AtomicI64::new(0),
            heads_file_behind: AtomicBool::new(false),
        })
    }

    pub fn verifier(&self) -> NoteVerifier {
        self.signer.verifier()
    }

    /// The log's key, for other signed statements (bundle manifests).
    pub fn note_signer(&self) -> &NoteSigner {
        &self.signer
    }

    pub fn origin(&self, account: &str) -> String {
        checkpoint::origin(&self.log_name, account)
    }

    /// Why signing is refused, if it is for any account (for `/readyz`).
    pub fn refusal(&self) -> Option<String> {
        let refusals = self.refusals.lock().ok()?;
        let mut reasons: Vec<&String> = refusals.values().collect();
        reasons.sort();
        reasons.first().map(|r| r.to_string())
    }

    /// When the newest checkpoint this signer signed (or found already
    /// signed in the store) was signed; `None` before the first.
    pub fn newest_checkpoint_at(&self) -> Option<Timestamp> {
        match self.newest_checkpoint_micros.load(Ordering::Relaxed) {
            0 => None,
            micros => Some(Timestamp::from_micros(micros)),
        }
    }

    /// Makes sure a signed checkpoint covers the account's whole tree, signing
    /// one if the tree grew. Returns the latest checkpoint (None: empty tree).
    pub async fn sign_if_grown(
        &self,
        account: &Account,
    ) -> Result<Option<StoredCheckpoint>, SignError> {
        let mut heads = self.heads.lock().await;
        let result = self.sign_locked(account, &mut heads).await;
        if let Ok(Some(checkpoint)) = &result {
            self.newest_checkpoint_micros
                .fetch_max(checkpoint.created_at.micros(), Ordering::Relaxed);
        }
        if let Err(SignError::Rollback(reason)) = &result {
            let first_time = self
                .refusals
                .lock()
                .map(|mut r| r.insert(account.name.clone(), reason.clone()).is_none())
                .unwrap_or(true);
            if first_time {
                tracing::error!(account = %account.name, %reason, "REFUSING TO SIGN CHECKPOINTS: the store was rolled back or altered");
            }
        }
        result
    }

    async fn sign_locked(
        &self,
        account: &Account,
        heads: &mut HashMap<String, Head>,
    ) -> Result<Option<StoredCheckpoint>, SignError> {
        if self.heads_file_behind.load(Ordering::SeqCst) {
            self.save_heads(heads)?;
        }
        let store = self.store.as_ref();
        let size = store.last_seq(account.id).await?;
        let latest = store.latest_checkpoint(account.id).await?;
        let mut signed: Vec<Head> = latest
            .iter()
            .map(|c| Head {
                size: c.size,
                root: c.root,
            })
            .collect();
        signed.extend(heads.get(&account.name).copied());
        if let Some(biggest) = signed.iter().map(|h| h.size).max() {
            if size < biggest {
                return Err(SignError::Rollback(format!(
                    "account {}: the store holds {size} events but a checkpoint of size {biggest} was signed; \
                     the store was rolled back (restored backup or failover?) and no checkpoint will be signed for it",
                    account.name
                )));
            }
        }
        if let Some(latest) = &latest {
            if latest.size == size
                && signed
                    .iter()
                    .all(|h| h.size < size || h.root == latest.root)
            {
                return Ok(Some(latest.clone()));
            }
        }
        if size == 0 {
            return Ok(None);
        }
        let root = tree::tree_root(store, account.id, size).await?;
        for head in &signed {
            let consistent = if head.size == size {
                head.root == root
            } else {
                let proof = tree::consistency_proof(store, account.id, head.size, size).await?;
                merkle::check_tree(&proof, size as i64, &root, head.size as i64, &head.root).is_ok()
            };
            if !consistent {
                return Err(SignError::Rollback(format!(
                    "account {}: the tree of size {size} does not extend the signed checkpoint of size {}; \
                     the store was rolled back or altered and no checkpoint will be signed for it",
                    account.name, head.size
                )));
            }
        }
        if let Some(latest) = latest.filter(|l| l.size == size) {
            return Ok(Some(latest));
        }
        let body = Checkpoint {
            origin: self.origin(&account.name),
            size,
            root,
        };
        let note = body
            .sign(&self.signer)
            .map_err(|e| StoreError::internal_caused_by("cannot sign", e))?;
        let stored = StoredCheckpoint {
            size,
            root,
            note,
            created_at: Timestamp::now(),
        };
        let stored = match store.add_checkpoint(account.id, &stored).await {
            Ok(()) => stored,
            // Another process on the same store signed this size first.
            Err(StoreError::AlreadyExists(_)) => store
                .checkpoint_at(account.id, size)
                .await?
                .ok_or_else(|| StoreError::internal("checkpoint vanished"))?,
            Err(e) => return Err(e.into()),
        };
        heads.insert(
            account.name.clone(),
            Head {
                size,
                root: stored.root,
            },
        );
        self.heads_file_behind.store(true, Ordering::SeqCst);
        self.save_heads(heads)?;
        tracing::debug!(account = %account.name, size, "signed checkpoint");
        Ok(Some(stored))
    }

    /// Writes the heads file (if any) and notes whether it is up to date.
    fn save_heads(&self, heads: &HashMap<String, Head>) -> Result<(), StoreError> {
        if let Some(path) = &self.heads_file {
            write_heads(path, heads)?;
        }
        self.heads_file_behind.store(false, Ordering::SeqCst);
        Ok(())
    }

    /// Signs every grown tree once.
    pub async fn sign_all(&self) -> Result<(), StoreError> {
        for account in self.store.accounts().await? {
            match self.sign_if_grown(&account).await {
                Ok(_) | Err(SignError::Rollback(_)) => {}
                Err(SignError::Store(e)) => {
                    tracing::warn!(account = %account.name, error = %ErrorChain(&e), "cannot sign a checkpoint now; will retry");
                }
            }
        }
        Ok(())
    }

    /// The background task: signs grown trees every [`SIGN_INTERVAL`] until
    /// `shutdown` fires, then once more so that the last appends are covered.
    pub async fn run(self: Arc<Self>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        let mut ticks = tokio::time::interval(SIGN_INTERVAL);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticks.tick() => {}
                _ = shutdown.changed() => break,
            }
            if let Err(e) = self.sign_all().await {
                tracing::warn!(error = %ErrorChain(&e), "cannot list accounts to sign checkpoints");
            }
        }
        let _ = self.sign_all().await;
    }
}

/// Why the heads file (the last signed checkpoints) could not be read: the
/// signer refuses to start rather than forget what it signed.
#[derive(Debug, thiserror::Error)]
pub enum HeadsFileError {
    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        cause: std::io::Error,
    },
    #[error("{} is not valid JSON", path.display())]
    NotJson {
        path: PathBuf,
        #[source]
        cause: serde_json::Error,
    },
    #[error("{}: the head of {account} is malformed", path.display())]
    Malformed { path: PathBuf, account: String },
}

pub(crate) fn read_heads(path: &std::path::Path) -> Result<HashMap<String, Head>, HeadsFileError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(HashMap::new()),
        Err(cause) => {
            return Err(HeadsFileError::Read {
                path: path.to_path_buf(),
                cause,
            })
        }
    };
    let value: Value = serde_json::from_str(&text).map_err(|cause| HeadsFileError::NotJson {
        path: path.to_path_buf(),
        cause,
    })?;
    let mut heads = HashMap::new();
    for (account, head) in value.as_object().into_iter().flatten() {
        let size = head["size"].as_u64();
        let root = head["root"]
            .as_str()
            .and_then(|r| BASE64.decode(r).ok())
            .and_then(|r| Hash::try_from(r).ok());
        match (size, root) {
            (Some(size), Some(root)) => {
                heads.insert(account.clone(), Head { size, root });
            }
            _ => {
                return Err(HeadsFileError::Malformed {
                    path: path.to_path_buf(),
                    account: account.clone(),
                })
            }
        }
    }
    Ok(heads)
}

/// Replaces the heads file atomically (write, fsync, rename). On failure
/// the old file stays and the temporary one is removed; a full disk is
/// reported as such.
pub(crate) fn write_heads(
    path: &std::path::Path,
    heads: &HashMap<String, Head>,
) -> Result<(), StoreError> {
    use std::io::Write;
    let mut map = Map::new();
    for (account, head) in heads {
        map.insert(
            account.clone(),
            json!({"size": head.size, "root": BASE64.encode(head.root)}),
        );
    }
    let temp = path.with_extension("tmp");
    let write = || -> std::io::Result<()> {
        let mut file = std::fs::File::create(&temp)?;
        file.write_all(Value::Object(map).to_string().as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&temp, path)?;
        // The rename is durable only once the directory is: without this a
        // crash could bring back the previous heads, and with them a signed
        // checkpoint the rollback check no longer knows.
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&temp);
        let what = format!("cannot write {}", path.display());
        if e.kind() == std::io::ErrorKind::StorageFull {
            StoreError::full_caused_by(what, e)
        } else {
            StoreError::unavailable_caused_by(what, e)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use auditlog_store::conformance::sample_events;
    use auditlog_store_sqlite::SqliteStore;

    async fn store_with(
        dir: &std::path::Path,
        events: usize,
        prefix: &str,
    ) -> (Arc<dyn Store>, Account) {
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir).unwrap());
        let account = store.create_account("acme").await.unwrap();
        store
            .append(&account, sample_events(events, prefix))
            .await
            .unwrap();
        (store, account)
    }

    /// A failover to a store with another history (longer, but not an
    /// extension of what was signed) is refused, and reported.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn refuses_to_sign_a_tree_that_does_not_extend_the_last_signed_one() {
        let keys = tempfile::tempdir().unwrap();
        let heads = keys.path().join(crate::signing_key::HEADS_FILE);
        let key = NoteSigner::from_seed("auditlog", [4; 32]).unwrap();

        let primary_dir = tempfile::tempdir().unwrap();
        let (primary, account) = store_with(primary_dir.path(), 5, "p").await;
        let signer = CheckpointSigner::new(
            primary.clone(),
            key.clone(),
            "auditlog",
            Some(heads.clone()),
        )
        .unwrap();
        assert_eq!(signer.newest_checkpoint_at(), None);
        let first = signer.sign_if_grown(&account).await.unwrap().unwrap();
        assert_eq!(first.size, 5);
        assert_eq!(signer.newest_checkpoint_at(), Some(first.created_at));
        // Nothing new: the same checkpoint, not a second one.
        assert_eq!(
            signer.sign_if_grown(&account).await.unwrap().unwrap(),
            first
        );
        primary
            .append(&account, sample_events(2, "q"))
            .await
            .unwrap();
        assert_eq!(
            signer.sign_if_grown(&account).await.unwrap().unwrap().size,
            7
        );
        assert!(signer.refusal().is_none());
        // A restarted signer knows the age from the checkpoint it finds.
        let restarted = CheckpointSigner::new(
            primary.clone(),
            key.clone(),
            "auditlog",
            Some(heads.clone()),
        )
        .unwrap();
        let found = restarted.sign_if_grown(&account).await.unwrap().unwrap();
        assert_eq!(found.size, 7);
        assert_eq!(restarted.newest_checkpoint_at(), Some(found.created_at));
        primary.shutdown().await;

        let replica_dir = tempfile::tempdir().unwrap();
        let (replica, account) = store_with(replica_dir.path(), 9, "other").await;
        let signer = CheckpointSigner::new(replica.clone(), key, "auditlog", Some(heads)).unwrap();
        let refused = signer.sign_if_grown(&account).await.unwrap_err();
        assert!(
            matches!(refused, SignError::Rollback(ref m) if m.contains("does not extend")),
            "{refused}"
        );
        assert!(signer.refusal().unwrap().contains("size 7"));
        assert!(replica
            .latest_checkpoint(account.id)
            .await
            .unwrap()
            .is_none());
        replica.shutdown().await;
    }

    /// A heads file that could not be written (its directory is missing
    /// here; a full disk in life) fails the signing call with a storage
    /// error, leaves no temporary file, and is written by the next call even
    /// though the tree did not grow.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_heads_file_that_could_not_be_written_is_written_by_the_next_call() {
        let dir = tempfile::tempdir().unwrap();
        let (store, account) = store_with(dir.path(), 3, "h").await;
        let keys = tempfile::tempdir().unwrap();
        let heads_dir = keys.path().join("keys");
        let heads = heads_dir.join(crate::signing_key::HEADS_FILE);
        let key = NoteSigner::from_seed("auditlog", [5; 32]).unwrap();
        let signer =
            CheckpointSigner::new(store.clone(), key, "auditlog", Some(heads.clone())).unwrap();

        let failed = signer.sign_if_grown(&account).await.unwrap_err();
        assert!(
            matches!(&failed, SignError::Store(StoreError::Unavailable { what, cause: Some(_) }) if what.contains("cannot write")),
            "{failed}"
        );
        assert!(!heads.exists() && !heads.with_extension("tmp").exists());

        std::fs::create_dir(&heads_dir).unwrap();
        let signed = signer.sign_if_grown(&account).await.unwrap().unwrap();
        assert_eq!(signed.size, 3);
        let written = read_heads(&heads).unwrap();
        assert_eq!(written["acme"].size, 3);
        assert_eq!(written["acme"].root, signed.root);
        store.shutdown().await;
    }
}
