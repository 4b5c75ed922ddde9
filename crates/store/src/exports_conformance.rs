//! Conformance cases for [`ExportJobs`](crate::ExportJobs), listed with the
//! others in `conformance` (one test per case per backend): claiming is
//! exclusive, a lease that runs out lets another worker take the job, lists
//! are newest first and per account, counts by status follow every change.

use crate::exports::MAX_EXPORT_ATTEMPTS;
use crate::{Compression, ExportFormat, ExportOutcome, ExportStatus, NewExportJob, Store};
use auditlog_core::Timestamp;

const T0: i64 = 1_764_000_000_000_000;
const SECOND: i64 = 1_000_000;

fn at(seconds: i64) -> Timestamp {
    Timestamp::from_micros(T0 + seconds * SECOND)
}

fn job(account: i64, created: i64, format: ExportFormat) -> NewExportJob {
    NewExportJob {
        account_id: account,
        requested_by: "api-key:1".into(),
        format,
        compression: Compression::None,
        filters: serde_json::json!({"event_type": ["Test Case"]}),
        seq_bound: 42,
        created_at: at(created),
    }
}

fn outcome(name: &str) -> ExportOutcome {
    ExportOutcome {
        row_count: 3,
        size_bytes: 120,
        sha256: "ab".repeat(32),
        file_name: name.into(),
        completed_at: at(50),
        expires_at: at(100),
    }
}

pub async fn jobs_round_trip_and_list_newest_first(store: &dyn Store) {
    let a = store.create_account("conf-exp-a").await.unwrap();
    let b = store.create_account("conf-exp-b").await.unwrap();
    let first = store
        .create_export(job(a.id, 1, ExportFormat::Csv))
        .await
        .unwrap();
    assert_eq!(first.status, ExportStatus::Queued);
    assert_eq!(first.seq_bound, 42);
    assert_eq!(
        first.filters,
        serde_json::json!({"event_type": ["Test Case"]})
    );
    assert_eq!(first.created_at, at(1));
    let mut gz = job(a.id, 2, ExportFormat::Jsonl);
    gz.compression = Compression::Gzip;
    let second = store.create_export(gz).await.unwrap();
    assert_eq!(second.compression, Compression::Gzip);
    assert_eq!(second.format, ExportFormat::Jsonl);
    let other = store
        .create_export(job(b.id, 3, ExportFormat::Csv))
        .await
        .unwrap();
    let listed: Vec<i64> = store
        .exports(a.id)
        .await
        .unwrap()
        .iter()
        .map(|j| j.id)
        .collect();
    assert_eq!(
        listed,
        vec![second.id, first.id],
        "newest first, own account only"
    );
    assert_eq!(
        store.export_by_id(a.id, first.id).await.unwrap().as_ref(),
        Some(&first)
    );
    assert!(
        store.export_by_id(a.id, other.id).await.unwrap().is_none(),
        "another account's export is invisible"
    );
    // Leave the queue empty for the next case.
    for id in [first.id, second.id, other.id] {
        let claimed = store
            .claim_export("cleaner", at(10), at(20))
            .await
            .unwrap()
            .expect("a queued job");
        assert_eq!(claimed.id, id, "oldest job first");
        assert!(store
            .fail_export(id, "cleaner", "test cleanup")
            .await
            .unwrap());
    }
}

pub async fn claiming_is_exclusive_and_leases_expire(store: &dyn Store) {
    let a = store.create_account("conf-exp-claim").await.unwrap();
    let created = store
        .create_export(job(a.id, 1, ExportFormat::Csv))
        .await
        .unwrap();
    let claimed = store
        .claim_export("w1", at(10), at(40))
        .await
        .unwrap()
        .expect("the queued job");
    assert_eq!(claimed.id, created.id);
    assert_eq!(claimed.status, ExportStatus::Running);
    assert_eq!(claimed.claimed_by.as_deref(), Some("w1"));
    assert_eq!(claimed.attempts, 1);
    assert!(
        store
            .claim_export("w2", at(20), at(50))
            .await
            .unwrap()
            .is_none(),
        "a job under lease is not handed out twice"
    );
    assert!(store
        .renew_export_lease(created.id, "w1", at(60))
        .await
        .unwrap());
    assert!(
        store
            .claim_export("w2", at(45), at(75))
            .await
            .unwrap()
            .is_none(),
        "a renewed lease holds"
    );
    // w1 dies: its lease runs out and w2 takes the job over.
    let taken = store
        .claim_export("w2", at(61), at(90))
        .await
        .unwrap()
        .expect("the abandoned job");
    assert_eq!(taken.id, created.id);
    assert_eq!(taken.attempts, 2);
    assert!(
        !store
            .renew_export_lease(created.id, "w1", at(100))
            .await
            .unwrap(),
        "the old worker learns that it lost the job"
    );
    assert!(!store
        .complete_export(created.id, "w1", outcome("x.csv"))
        .await
        .unwrap());
    // Abandoned again and again: given up with a reason, not retried forever.
    let mut now = 91;
    let mut attempts = taken.attempts;
    while attempts < MAX_EXPORT_ATTEMPTS {
        let again = store
            .claim_export("w3", at(now), at(now + 10))
            .await
            .unwrap()
            .expect("reclaimed");
        attempts = again.attempts;
        now += 11;
    }
    assert!(store
        .claim_export("w4", at(now), at(now + 10))
        .await
        .unwrap()
        .is_none());
    let failed = store.export_by_id(a.id, created.id).await.unwrap().unwrap();
    assert_eq!(failed.status, ExportStatus::Failed);
    assert!(failed.error.unwrap_or_default().contains("interrupted"));
}

pub async fn jobs_finish_expire_and_release(store: &dyn Store) {
    let a = store.create_account("conf-exp-done").await.unwrap();
    let one = store
        .create_export(job(a.id, 1, ExportFormat::Csv))
        .await
        .unwrap();
    let two = store
        .create_export(job(a.id, 2, ExportFormat::Csv))
        .await
        .unwrap();
    let claimed = store
        .claim_export("w", at(3), at(30))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(claimed.id, one.id);
    // Shutting down at a safe point gives the job back without using up an attempt.
    assert!(store.release_export(one.id, "w").await.unwrap());
    let back = store.export_by_id(a.id, one.id).await.unwrap().unwrap();
    assert_eq!((back.status, back.attempts), (ExportStatus::Queued, 0));
    let claimed = store
        .claim_export("w", at(4), at(30))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(claimed.id, one.id);
    assert!(store
        .complete_export(one.id, "w", outcome("one.csv"))
        .await
        .unwrap());
    let done = store.export_by_id(a.id, one.id).await.unwrap().unwrap();
    assert_eq!(done.status, ExportStatus::Completed);
    assert_eq!(done.row_count, Some(3));
    assert_eq!(done.size_bytes, Some(120));
    assert_eq!(done.file_name.as_deref(), Some("one.csv"));
    assert_eq!(done.expires_at, Some(at(100)));
    assert_eq!(done.claimed_by, None);
    let claimed = store
        .claim_export("w", at(5), at(30))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(claimed.id, two.id);
    assert!(store
        .fail_export(two.id, "w", "disk full: free space in the export directory")
        .await
        .unwrap());
    assert!(store.expire_exports(at(99)).await.unwrap().is_empty());
    let expired = store.expire_exports(at(100)).await.unwrap();
    assert_eq!(expired.len(), 1);
    assert_eq!(expired[0].id, one.id);
    assert_eq!(expired[0].file_name.as_deref(), Some("one.csv"));
    let listed = store.exports(a.id).await.unwrap();
    assert_eq!(listed[0].status, ExportStatus::Failed);
    assert!(listed[0]
        .error
        .as_deref()
        .unwrap_or("")
        .contains("disk full"));
    assert_eq!(listed[1].status, ExportStatus::Expired);
    assert!(store.expire_exports(at(200)).await.unwrap().is_empty());
}

/// Jobs per status over every account, with zeros for absent statuses.
async fn status_counts(store: &dyn Store) -> [u64; 5] {
    let mut counts = [0; 5];
    for (status, n) in store.count_exports_by_status().await.unwrap() {
        let slot = ExportStatus::ALL.iter().position(|s| *s == status).unwrap();
        assert_eq!(counts[slot], 0, "{status:?} listed twice");
        counts[slot] = n;
    }
    counts
}

/// The counts move with each status change, over every account (earlier
/// cases left jobs behind, so the case checks differences).
pub async fn counts_by_status_cover_every_account(store: &dyn Store) {
    let before = status_counts(store).await;
    let delta = |after: [u64; 5]| -> [i64; 5] {
        std::array::from_fn(|i| after[i] as i64 - before[i] as i64)
    };
    let a = store.create_account("conf-exp-count-a").await.unwrap();
    let b = store.create_account("conf-exp-count-b").await.unwrap();
    let one = store
        .create_export(job(a.id, 1, ExportFormat::Csv))
        .await
        .unwrap();
    let two = store
        .create_export(job(b.id, 2, ExportFormat::Jsonl))
        .await
        .unwrap();
    // [queued, running, completed, failed, expired]
    assert_eq!(delta(status_counts(store).await), [2, 0, 0, 0, 0]);
    let claimed = store
        .claim_export("w", at(3), at(30))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(claimed.id, one.id);
    assert_eq!(delta(status_counts(store).await), [1, 1, 0, 0, 0]);
    assert!(store
        .complete_export(one.id, "w", outcome("count.csv"))
        .await
        .unwrap());
    let claimed = store
        .claim_export("w", at(4), at(30))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(claimed.id, two.id);
    assert_eq!(delta(status_counts(store).await), [0, 1, 1, 0, 0]);
    assert!(store.fail_export(two.id, "w", "test").await.unwrap());
    assert_eq!(delta(status_counts(store).await), [0, 0, 1, 1, 0]);
    assert_eq!(store.expire_exports(at(100)).await.unwrap().len(), 1);
    assert_eq!(delta(status_counts(store).await), [0, 0, 0, 1, 1]);
}
