//! The submitter against three real witnesses (quorum 2) for a simulated
//! root log whose leaves are account checkpoints: every root checkpoint
//! gets its quorum, each account checkpoint is covered by one, a killed
//! witness leaves the quorum standing, a restarted one continues from its
//! state, and a rolled-back or forked log raises the alarm at every witness.

use crate::TestWitness;
use auditlog_core::checkpoint::Checkpoint;
use auditlog_core::cosignature::{CosignatureSigner, CosignatureVerifier};
use auditlog_core::merkle::{leaf_hash, prove_record, prove_tree, tree_hash, MemoryHashes};
use auditlog_core::note::NoteSigner;
use auditlog_core::root_log::{check_covered, leaf_bytes, open_cosigned};
use auditlog_core::submission::Alarm;
use auditlog_witness::{submit, Submitted, WitnessEndpoint};

const LOG_NAME: &str = "auditlog.test";

fn root_key() -> NoteSigner {
    NoteSigner::from_seed(LOG_NAME, [7; 32]).unwrap()
}

fn witness_keys() -> Vec<CosignatureSigner> {
    (0..3)
        .map(|i| CosignatureSigner::from_seed(&format!("witness.test/w{i}"), [20 + i; 32]).unwrap())
        .collect()
}

/// The log: a root tree of account checkpoints, in signing order.
struct RootLog {
    tree: MemoryHashes,
    leaves: Vec<Checkpoint>,
}

impl RootLog {
    fn new() -> Self {
        Self {
            tree: MemoryHashes::default(),
            leaves: Vec::new(),
        }
    }

    /// Signs (records) an account checkpoint: one more root leaf.
    fn add(&mut self, account: &str, size: u64, tag: &str) {
        let checkpoint = Checkpoint {
            origin: format!("{LOG_NAME}/{account}"),
            size,
            root: auditlog_core::leaf::leaf_hash(format!("{tag} {account} {size}").as_bytes()),
        };
        self.tree
            .append_leaf(leaf_hash(&leaf_bytes(&checkpoint)))
            .unwrap();
        self.leaves.push(checkpoint);
    }

    fn checkpoint(&self) -> Checkpoint {
        Checkpoint {
            origin: LOG_NAME.into(),
            size: self.tree.leaf_count() as u64,
            root: tree_hash(self.tree.leaf_count(), &self.tree).unwrap(),
        }
    }

    /// Sends the current root checkpoint to each witness (from the size the
    /// log last saw it cosign) and returns each one's answer.
    async fn submit_to(
        &self,
        witnesses: &[WitnessEndpoint],
        known: &mut [u64],
    ) -> (String, Vec<Submitted>) {
        let checkpoint = self.checkpoint();
        let note = checkpoint.sign(&root_key()).unwrap();
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(5))
            .build()
            .unwrap();
        let mut answers = Vec::new();
        for (witness, known) in witnesses.iter().zip(known.iter_mut()) {
            let tree = &self.tree;
            let answer = submit(
                &http,
                witness,
                &note,
                &checkpoint,
                *known,
                |from| async move {
                    prove_tree(tree.leaf_count(), from as i64, tree).map_err(|e| e.to_string())
                },
            )
            .await;
            if matches!(answer, Submitted::Cosigned { .. }) {
                *known = checkpoint.size;
            }
            answers.push(answer);
        }
        (note, answers)
    }
}

/// The note with every cosignature line received.
fn cosigned(note: &str, answers: &[Submitted]) -> String {
    let mut note = note.to_string();
    for answer in answers {
        if let Submitted::Cosigned { line, .. } = answer {
            note.push_str(line);
        }
    }
    note
}

#[tokio::test]
async fn root_checkpoints_get_their_quorum_and_rollbacks_raise_the_alarm() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let keys = witness_keys();
    let mut running = Vec::new();
    for (dir, key) in dirs.iter().zip(&keys) {
        running.push(Some(
            TestWitness::start_for(dir.path(), &root_key(), key.clone()).await,
        ));
    }
    // A stopped witness keeps its address: a closed port on 127.0.0.1.
    let mut last_base: Vec<String> = running.iter().flatten().map(|w| w.base.clone()).collect();
    let mut endpoints = |running: &[Option<TestWitness>]| -> Vec<WitnessEndpoint> {
        running
            .iter()
            .zip(&keys)
            .enumerate()
            .map(|(i, (witness, key))| {
                if let Some(witness) = witness {
                    last_base[i] = witness.base.clone();
                }
                WitnessEndpoint {
                    name: key.name().to_string(),
                    url: last_base[i].clone(),
                    key: key.verifier(),
                }
            })
            .collect()
    };
    let verifiers: Vec<CosignatureVerifier> = keys.iter().map(|k| k.verifier()).collect();
    let mut known = [0u64; 3];
    let mut log = RootLog::new();

    // Several accounts, several rounds: every root checkpoint is cosigned by
    // all three, and each account checkpoint is covered by it.
    for round in 0..4u64 {
        for account in ["acme", "globex", "initech"] {
            log.add(account, round * 10 + 1, "events");
        }
        if round == 2 {
            // A new account appears: no witness is told about it.
            log.add("newcorp", 1, "events");
        }
        let (note, answers) = log.submit_to(&endpoints(&running), &mut known).await;
        assert!(
            answers
                .iter()
                .all(|a| matches!(a, Submitted::Cosigned { .. })),
            "{answers:?}"
        );
        let opened = open_cosigned(
            &cosigned(&note, &answers),
            LOG_NAME,
            &root_key().verifier(),
            &verifiers,
            2,
        )
        .unwrap();
        assert_eq!(opened.cosigners.len(), 3);
        let root = opened.checkpoint;
        for (index, leaf) in log.leaves.iter().enumerate() {
            let proof = prove_record(root.size as i64, index as i64, &log.tree).unwrap();
            check_covered(leaf, index as u64, &proof, &root).unwrap();
        }
    }

    // One witness killed: the quorum of 2 holds.
    running[1].take().unwrap().stop().await;
    log.add("acme", 50, "events");
    let (note, answers) = log.submit_to(&endpoints(&running), &mut known).await;
    assert!(
        matches!(answers[1], Submitted::Unavailable(_)),
        "{:?}",
        answers[1]
    );
    open_cosigned(
        &cosigned(&note, &answers),
        LOG_NAME,
        &root_key().verifier(),
        &verifiers,
        2,
    )
    .unwrap();

    // Restarted from its state, it is behind; the 409 tells the log its
    // size, the log proves from there, and it cosigns again.
    running[1] = Some(TestWitness::start_for(dirs[1].path(), &root_key(), keys[1].clone()).await);
    known[1] = 0;
    log.add("globex", 51, "events");
    let (note, answers) = log.submit_to(&endpoints(&running), &mut known).await;
    assert!(
        answers
            .iter()
            .all(|a| matches!(a, Submitted::Cosigned { .. })),
        "{answers:?}"
    );
    open_cosigned(
        &cosigned(&note, &answers),
        LOG_NAME,
        &root_key().verifier(),
        &verifiers,
        3,
    )
    .unwrap();
    let witnessed = log.leaves.len();

    // The operator restores an old backup and signs again from there (new
    // events after the restore): every witness has a larger size: alarm.
    let mut rolled_back = RootLog::new();
    for leaf in &log.leaves[..witnessed - 4] {
        rolled_back.add(leaf.origin.rsplit('/').next().unwrap(), leaf.size, "events");
    }
    // (the rebuilt leaves equal the originals: same account checkpoints)
    assert_eq!(rolled_back.leaves, log.leaves[..witnessed - 4]);
    rolled_back.add("acme", 52, "after-restore");
    let mut from_backup = [rolled_back.tree.leaf_count() as u64 - 1; 3];
    let (_, answers) = rolled_back
        .submit_to(&endpoints(&running), &mut from_backup)
        .await;
    for answer in &answers {
        assert!(
            matches!(answer, Submitted::Alarm(Alarm::WitnessAhead { witness_size, .. }) if *witness_size == witnessed as u64),
            "{answer:?}"
        );
    }

    // A forked view: another history of the same size as the witnessed one.
    let mut forked = RootLog::new();
    for leaf in &log.leaves[..witnessed - 1] {
        forked.add(leaf.origin.rsplit('/').next().unwrap(), leaf.size, "events");
    }
    forked.add("globex", 51, "forked");
    let mut same_size = [witnessed as u64; 3];
    let (_, answers) = forked.submit_to(&endpoints(&running), &mut same_size).await;
    for answer in &answers {
        assert_eq!(
            answer,
            &Submitted::Alarm(Alarm::Fork {
                size: witnessed as u64
            })
        );
    }
    // The fork grown past the witnessed size: the proof is refused (422).
    forked.add("acme", 60, "forked");
    let (_, answers) = forked.submit_to(&endpoints(&running), &mut same_size).await;
    for answer in &answers {
        assert!(
            matches!(answer, Submitted::Alarm(Alarm::ProofRefused(_))),
            "{answer:?}"
        );
    }

    // The honest log continues, unaffected.
    log.add("initech", 70, "events");
    let (_, answers) = log.submit_to(&endpoints(&running), &mut known).await;
    assert!(
        answers
            .iter()
            .all(|a| matches!(a, Submitted::Cosigned { .. })),
        "{answers:?}"
    );
    for witness in running.into_iter().flatten() {
        witness.stop().await;
    }
}
