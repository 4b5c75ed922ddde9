//! The cases every backend must pass, each against a fresh, empty store.
//! They use only the traits, so a new backend proves itself by invoking
//! [`conformance_tests!`](crate::conformance_tests) in its tests, which makes
//! one `#[test]` per case (so that a failure names its case), and
//! [`run_all`] where one store must pass them all (the PostgreSQL service
//! role). The cases of [`ExportJobs`](crate::ExportJobs) live in
//! `exports_conformance`. Compiled only with the `test-support` feature,
//! which the backends enable in their dev-dependencies: never in the product.

use crate::samples::edited;
pub use crate::samples::sample_events;
use crate::samples::BASE;
use crate::{ActorSummary, NewApiKey, NewSession, Role, Scope, Store, StoreError};
use auditlog_core::{EventFilter, Interval, NewEvent, Taxonomy, Timestamp};
use serde_json::json;

/// The one list of conformance cases, as `module::case` paths under this
/// crate; it hands them to `$callback` after `$args`, so that the per-case
/// tests and [`run_all`] cannot disagree about which cases exist.
#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_cases {
    ($callback:ident!($($args:tt)*)) => {
        $crate::$callback! {
            $($args)*;
            conformance::appends_with_gapless_seq,
            conformance::idempotent_retries_and_conflicts,
            conformance::a_conflicting_batch_stores_nothing,
            conformance::filters_agree_with_the_reference,
            conformance::paging_visits_each_event_once,
            conformance::seq_windows_agree_with_the_reference,
            conformance::directory_round_trips,
            conformance::api_keys_expire_revoke_and_note_their_use,
            conformance::accounts_are_isolated,
            conformance::tree_hashes_match_a_recomputation,
            conformance::checkpoints_are_retained,
            conformance::scan_returns_leaves_and_columns,
            conformance::leaves_read_back_exactly_past_the_dictionary,
            conformance::sessions_expire_and_end,
            conformance::facets_list_each_actor_and_project_once,
            conformance::declared_personal_paths_apply_from_the_next_event,
            exports_conformance::jobs_round_trip_and_list_newest_first,
            exports_conformance::claiming_is_exclusive_and_leases_expire,
            exports_conformance::jobs_finish_expire_and_release,
            exports_conformance::counts_by_status_cover_every_account,
            streams_conformance::streams_round_trip_and_stay_in_their_account,
            streams_conformance::stream_claims_are_exclusive_and_the_cursor_moves_on_acceptance,
            root_log_conformance::root_leaves_follow_checkpoints_and_prove,
            root_log_conformance::the_root_submitter_lease_has_one_holder,
            search_conformance::search_cases_agree_with_the_table,
            search_conformance::random_queries_agree_with_the_reference,
            removal_conformance::bodies_leave_only_under_a_covering_record,
            removal_conformance::holds_are_kept_per_account_and_released_once,
            admin_conformance::taxonomy_edits_persist_in_their_account_and_lose_none,
            admin_conformance::two_factor_codes_are_accepted_once_per_step,
        }
    };
}

/// One `#[tokio::test]` per conformance case, each on a store of its own:
/// `$fresh` is an `async fn(case: &'static str) -> Option<(Guard, S)>` with
/// `S: Store`, giving a fresh, empty store and whatever must live as long as
/// it (a temporary directory, a throwaway database), or `None` when the
/// backend's tests are skipped. The store is shut down after its case.
///
/// ```ignore
/// mod conformance {
///     auditlog_store::conformance_tests!(super::fresh_store);
/// }
/// ```
#[macro_export]
macro_rules! conformance_tests {
    ($fresh:path) => {
        $crate::__conformance_cases! { __conformance_tests_of!($fresh) }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_tests_of {
    ($fresh:path; $($module:ident::$case:ident),* $(,)?) => {
        $(
            #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let Some((_guard, store)) = $fresh(stringify!($case)).await else {
                    return;
                };
                $crate::$module::$case(&store).await;
                $crate::Store::shutdown(&store).await;
            }
        )*
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_run_each {
    ($store:expr; $($module:ident::$case:ident),* $(,)?) => {
        $( $crate::$module::$case($store).await; )*
    };
}

/// Runs every case on one store; panics (failing the calling test) on the
/// first broken one. Prefer [`conformance_tests!`](crate::conformance_tests),
/// which names the failing case.
pub async fn run_all(store: &dyn Store) {
    crate::__conformance_cases!(__conformance_run_each!(store));
}

pub async fn appends_with_gapless_seq(store: &dyn Store) {
    let account = store
        .create_account("conf-seq")
        .await
        .expect("create account");
    let mut expected = 1;
    for chunk in sample_events(25, "s").chunks(7) {
        let receipts = store
            .append(&account, chunk.to_vec())
            .await
            .expect("append");
        for r in receipts {
            assert_eq!(r.seq, expected, "seq must be gapless");
            assert!(r.created);
            expected += 1;
        }
    }
    assert_eq!(store.last_seq(account.id).await.unwrap(), 25);
    let got = store
        .get(account.id, "s3")
        .await
        .unwrap()
        .expect("event s3");
    assert_eq!(got.seq, 4);
    assert_eq!(
        got.leaf_hash,
        auditlog_core::leaf::leaf_hash(&got.leaf_bytes)
    );
}

pub async fn idempotent_retries_and_conflicts(store: &dyn Store) {
    let account = store.create_account("conf-idem").await.unwrap();
    let events = sample_events(3, "i");
    let first = store.append(&account, events.clone()).await.unwrap();
    let again = store.append(&account, events.clone()).await.unwrap();
    assert_eq!(
        first.iter().map(|r| (r.seq, r.hash)).collect::<Vec<_>>(),
        again.iter().map(|r| (r.seq, r.hash)).collect::<Vec<_>>()
    );
    assert!(again.iter().all(|r| !r.created));
    let changed = edited(&events[1], |e| {
        e.insert("action".into(), json!("Delete"));
    });
    match store.append(&account, vec![changed]).await {
        Err(StoreError::Conflict { index: 0, id }) => assert_eq!(id, "i1"),
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(store.last_seq(account.id).await.unwrap(), 3);
}

pub async fn a_conflicting_batch_stores_nothing(store: &dyn Store) {
    let account = store.create_account("conf-batch").await.unwrap();
    store.append(&account, sample_events(2, "b")).await.unwrap();
    let mut batch = sample_events(5, "c");
    batch[3] = edited(&sample_events(2, "b")[1], |e| {
        e.insert("project".into(), json!("different"));
    });
    assert!(matches!(
        store.append(&account, batch).await,
        Err(StoreError::Conflict { index: 3, .. })
    ));
    assert_eq!(store.last_seq(account.id).await.unwrap(), 2);
    assert!(store.get(account.id, "c0").await.unwrap().is_none());
}

/// Filters that cover each parameter and several combinations.
pub fn filter_cases() -> Vec<EventFilter> {
    let t = |s: &str| Timestamp::from_micros(BASE + s.parse::<i64>().unwrap_or(0) * 3_600_000_000);
    let mut cases = vec![EventFilter::default()];
    let mut f = EventFilter {
        event_types: vec!["Test Case".into()],
        ..Default::default()
    };
    cases.push(f.clone());
    f.actions = vec!["Update".into(), "Delete".into()];
    cases.push(f.clone());
    f.projects = vec!["P1".into()];
    cases.push(f);
    cases.push(EventFilter {
        users: vec!["u-3".into()],
        ..Default::default()
    });
    cases.push(EventFilter {
        users: vec!["u-3".into(), "u-5".into()],
        from: Some(t("10")),
        to: Some(t("40")),
        ..Default::default()
    });
    cases.push(EventFilter {
        projects: vec!["P2".into(), "P3".into()],
        ..Default::default()
    });
    cases.push(EventFilter {
        app: Some("A1".into()),
        version: Some("2.0".into()),
        ..Default::default()
    });
    cases.push(EventFilter {
        target_id: Some("T-4".into()),
        ..Default::default()
    });
    cases.push(EventFilter {
        from: Some(t("20")),
        ..Default::default()
    });
    cases.push(EventFilter {
        to: Some(t("20")),
        ..Default::default()
    });
    cases.push(EventFilter {
        actions: vec!["Login".into()],
        users: vec!["nobody".into()],
        ..Default::default()
    });
    cases
}

pub async fn filters_agree_with_the_reference(store: &dyn Store) {
    let account = store.create_account("conf-filter").await.unwrap();
    let events = sample_events(200, "f");
    store.append(&account, events.clone()).await.unwrap();
    for filter in filter_cases() {
        let mut want: Vec<(Timestamp, u64)> = events
            .iter()
            .enumerate()
            .filter(|(_, e)| filter.matches(e))
            .map(|(i, e)| (e.time(), i as u64 + 1))
            .collect();
        want.sort_by(|a, b| b.cmp(a));
        let page = store.query(account.id, &filter, None, 1_000).await.unwrap();
        let got: Vec<(Timestamp, u64)> = page.events.iter().map(|e| (e.time, e.seq)).collect();
        assert_eq!(got, want, "filter {filter:?}");
        let buckets = store
            .histogram(account.id, &filter, Interval::Day)
            .await
            .unwrap();
        let total: u64 = buckets.iter().map(|b| b.count).sum();
        assert_eq!(total as usize, want.len(), "histogram total for {filter:?}");
        assert!(
            buckets.windows(2).all(|w| w[0].start < w[1].start),
            "buckets oldest first"
        );
    }
}

/// Walking the log by seq windows (as the live tail does) yields exactly
/// the matching events, in seq order, whatever the window's size.
pub async fn seq_windows_agree_with_the_reference(store: &dyn Store) {
    let account = store.create_account("conf-window").await.unwrap();
    let other = store.create_account("conf-window-other").await.unwrap();
    let events = sample_events(200, "w");
    store.append(&account, events.clone()).await.unwrap();
    store.append(&other, sample_events(50, "w")).await.unwrap();
    let last = store.last_seq(account.id).await.unwrap();
    assert_eq!(last, 200);
    for filter in filter_cases() {
        let want: Vec<u64> = events
            .iter()
            .enumerate()
            .filter(|(_, e)| filter.matches(e))
            .map(|(i, _)| i as u64 + 1)
            .collect();
        for window in [1, 17, 200] {
            let mut got = Vec::new();
            let mut after = 0;
            while after < last {
                let through = (after + window).min(last);
                let records = store
                    .events_in_seq_range(account.id, &filter, after, through)
                    .await
                    .unwrap();
                assert!(
                    records.iter().all(|r| r.seq > after && r.seq <= through),
                    "every event inside the window ({after}, {through}]"
                );
                got.extend(records.iter().map(|r| r.seq));
                after = through;
            }
            assert_eq!(got, want, "filter {filter:?}, window {window}");
        }
    }
    let all = EventFilter::default();
    let record = store
        .events_in_seq_range(account.id, &all, 3, 4)
        .await
        .unwrap();
    let by_id = store.get(account.id, "w3").await.unwrap().unwrap();
    assert_eq!(record, vec![by_id], "the same record as a read by id");
    assert!(store
        .events_in_seq_range(account.id, &all, 5, 5)
        .await
        .unwrap()
        .is_empty());
    assert!(store
        .events_in_seq_range(account.id, &all, 200, 400)
        .await
        .unwrap()
        .is_empty());
}

pub async fn paging_visits_each_event_once(store: &dyn Store) {
    let account = store.create_account("conf-page").await.unwrap();
    store
        .append(&account, sample_events(95, "p"))
        .await
        .unwrap();
    let filter = EventFilter::default();
    let mut seen = Vec::new();
    let mut cursor = None;
    let mut extra = sample_events(30, "late").into_iter();
    loop {
        let page = store.query(account.id, &filter, cursor, 10).await.unwrap();
        seen.extend(page.events.iter().map(|e| e.seq));
        // New events arrive between pages, some with old times.
        if let Some(e) = extra.next() {
            store.append(&account, vec![e]).await.unwrap();
        }
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    let mut sorted = seen.clone();
    sorted.sort_unstable();
    assert_eq!(
        sorted,
        (1..=95).collect::<Vec<_>>(),
        "each earlier event exactly once"
    );
}

pub async fn directory_round_trips(store: &dyn Store) {
    let account = store.create_account("conf-dir").await.unwrap();
    assert!(matches!(
        store.create_account("conf-dir").await,
        Err(StoreError::AlreadyExists(_))
    ));
    assert_eq!(
        store.account_by_name("conf-dir").await.unwrap().unwrap().id,
        account.id
    );
    assert_eq!(
        store
            .account_by_id(account.id)
            .await
            .unwrap()
            .unwrap()
            .taxonomy,
        Taxonomy::default()
    );
    store
        .create_api_key(account.id, [7; 32], &[Scope::Read, Scope::Ingest])
        .await
        .unwrap();
    let grant = store.api_key_by_hash([7; 32]).await.unwrap().unwrap();
    assert_eq!(grant.account.id, account.id);
    assert!(grant.scopes.contains(&Scope::Read) && grant.scopes.contains(&Scope::Ingest));
    assert!(store.api_key_by_hash([8; 32]).await.unwrap().is_none());
    let user = store
        .create_user(account.id, "a@x.test", "$argon2id$fake", Role::Admin)
        .await
        .unwrap();
    assert_eq!(
        store
            .user_by_email(account.id, "a@x.test")
            .await
            .unwrap()
            .unwrap()
            .id,
        user.id
    );
    assert!(matches!(
        store
            .create_user(account.id, "a@x.test", "h", Role::Member)
            .await,
        Err(StoreError::AlreadyExists(_))
    ));
}

pub async fn api_keys_expire_revoke_and_note_their_use(store: &dyn Store) {
    let account = store.create_account("keys").await.unwrap();
    let other = store.create_account("other").await.unwrap();
    let now = Timestamp::now();
    let new = |hash: u8, expires_at: Option<Timestamp>| NewApiKey {
        account_id: account.id,
        key_hash: [hash; 32],
        prefix: format!("alk_{hash}"),
        name: format!("key {hash}"),
        scopes: vec![Scope::Ingest, Scope::Read],
        expires_at,
        created_by: "user:1".into(),
        created_at: now,
    };
    let live = store
        .create_named_api_key(new(
            1,
            Some(Timestamp::from_micros(now.micros() + 3_600_000_000)),
        ))
        .await
        .unwrap();
    let expired = store
        .create_named_api_key(new(2, Some(Timestamp::from_micros(now.micros() - 1))))
        .await
        .unwrap();
    assert_eq!(live.name, "key 1");
    assert_eq!(live.prefix, "alk_1");
    assert_eq!(live.created_by, "user:1");
    assert_eq!(live.scopes, vec![Scope::Ingest, Scope::Read]);
    assert!(live.public_id.starts_with("key_"));
    assert_eq!((live.last_used_at, live.revoked_at), (None, None));
    let grant = store.api_key_by_hash([1; 32]).await.unwrap().unwrap();
    assert_eq!(grant.expires_at, live.expires_at);
    assert!(
        store.api_key_by_hash([2; 32]).await.unwrap().is_none(),
        "an expired key is refused by the query that authenticates"
    );
    let minute = Timestamp::from_micros(now.micros() / 60_000_000 * 60_000_000);
    store.touch_api_key(live.id, minute).await.unwrap();
    let earlier = Timestamp::from_micros(minute.micros() - 60_000_000);
    store.touch_api_key(live.id, earlier).await.unwrap();
    let listed = store.list_api_keys(account.id).await.unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0].last_used_at, Some(minute), "never moves back");
    assert_eq!(listed[1], expired);
    assert!(store.list_api_keys(other.id).await.unwrap().is_empty());
    assert!(
        store
            .revoke_api_key(other.id, &live.public_id, now)
            .await
            .unwrap()
            .is_none(),
        "another account cannot revoke it"
    );
    let revoked = store
        .revoke_api_key(account.id, &live.public_id, now)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(revoked.revoked_at, Some(now));
    assert!(store.api_key_by_hash([1; 32]).await.unwrap().is_none());
    let again = Timestamp::from_micros(now.micros() + 5);
    let twice = store
        .revoke_api_key(account.id, &live.public_id, again)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        twice.revoked_at,
        Some(now),
        "the first revocation time stays"
    );
    assert!(store
        .revoke_api_key(account.id, "key_nope", now)
        .await
        .unwrap()
        .is_none());
}

pub async fn accounts_are_isolated(store: &dyn Store) {
    let a = store.create_account("conf-iso-a").await.unwrap();
    let b = store.create_account("conf-iso-b").await.unwrap();
    store.append(&a, sample_events(4, "x")).await.unwrap();
    // The same ids in another account are a different event, not a conflict.
    let mut other = sample_events(4, "x");
    other[0] = edited(&other[0], |e| {
        e.insert("project".into(), json!("elsewhere"));
    });
    let receipts = store.append(&b, other).await.unwrap();
    assert_eq!(receipts[0].seq, 1);
    assert!(
        store.get(b.id, "x0").await.unwrap().unwrap().leaf_bytes
            != store.get(a.id, "x0").await.unwrap().unwrap().leaf_bytes
    );
    assert_eq!(
        store
            .query(b.id, &EventFilter::default(), None, 100)
            .await
            .unwrap()
            .events
            .len(),
        4
    );
    assert!(store
        .user_by_email(b.id, "a@x.test")
        .await
        .unwrap()
        .is_none());
}

/// The stored tree hashes, written by the append path, give the same roots
/// and valid proofs as a tree rebuilt from the leaf hashes alone.
pub async fn tree_hashes_match_a_recomputation(store: &dyn Store) {
    use auditlog_core::merkle;
    let account = store
        .create_account("conf-tree")
        .await
        .expect("create account");
    let other = store
        .create_account("conf-tree-other")
        .await
        .expect("create account");
    let mut rebuilt = merkle::MemoryHashes::default();
    let mut roots = vec![merkle::empty_root()];
    // Batches of several sizes, interleaved with another account's appends.
    for (round, size) in [1usize, 2, 5, 1, 13, 7, 40].into_iter().enumerate() {
        let receipts = store
            .append(&account, sample_events(size, &format!("t{round}-")))
            .await
            .expect("append");
        store
            .append(&other, sample_events(3, &format!("o{round}-")))
            .await
            .expect("append other");
        for r in receipts {
            rebuilt.append_leaf(r.hash).unwrap();
            roots.push(merkle::tree_hash(rebuilt.leaf_count(), &rebuilt).unwrap());
        }
    }
    let total = rebuilt.leaf_count() as u64;
    assert_eq!(store.last_seq(account.id).await.unwrap(), total);
    assert_eq!(
        store.stored_hash_count(account.id).await.unwrap(),
        merkle::stored_hash_count(total as i64)
    );
    for size in 1..=total {
        let root = crate::tree::tree_root(store, account.id, size)
            .await
            .unwrap();
        assert_eq!(root, roots[size as usize], "root at size {size}");
    }
    for (size, index) in [(total, 0), (total, total - 1), (37, 20), (1, 0), (64, 63)] {
        let proof = crate::tree::inclusion_proof(store, account.id, size, index)
            .await
            .unwrap();
        let leaf = rebuilt.leaf_hash_at(index);
        merkle::check_record(
            &proof,
            size as i64,
            &roots[size as usize],
            index as i64,
            &leaf,
        )
        .expect("inclusion proof verifies");
    }
    for (from, to) in [(1, total), (7, 8), (8, 8), (16, 50), (33, total)] {
        let proof = crate::tree::consistency_proof(store, account.id, from, to)
            .await
            .unwrap();
        merkle::check_tree(
            &proof,
            to as i64,
            &roots[to as usize],
            from as i64,
            &roots[from as usize],
        )
        .expect("consistency proof verifies");
    }
    // Beyond the tree: not found, not a wrong answer.
    assert!(matches!(
        crate::tree::inclusion_proof(store, account.id, total, total).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(crate::tree::tree_root(store, account.id, total + 1)
        .await
        .is_err());
}

pub async fn checkpoints_are_retained(store: &dyn Store) {
    use crate::StoredCheckpoint;
    let account = store
        .create_account("conf-checkpoints")
        .await
        .expect("create account");
    let other = store
        .create_account("conf-checkpoints-b")
        .await
        .expect("create account");
    assert!(store.latest_checkpoint(account.id).await.unwrap().is_none());
    let checkpoint = |size: u64| StoredCheckpoint {
        size,
        root: [size as u8; 32],
        note: format!("log/a\n{size}\n"),
        created_at: Timestamp::from_micros(BASE + size as i64),
    };
    for size in [3, 1, 7] {
        store
            .add_checkpoint(account.id, &checkpoint(size))
            .await
            .unwrap();
    }
    assert!(matches!(
        store.add_checkpoint(account.id, &checkpoint(3)).await,
        Err(StoreError::AlreadyExists(_))
    ));
    assert_eq!(
        store.latest_checkpoint(account.id).await.unwrap(),
        Some(checkpoint(7))
    );
    assert_eq!(
        store.checkpoint_at(account.id, 3).await.unwrap(),
        Some(checkpoint(3))
    );
    assert_eq!(store.checkpoint_at(account.id, 4).await.unwrap(), None);
    let sizes: Vec<u64> = store
        .checkpoints(account.id)
        .await
        .unwrap()
        .iter()
        .map(|c| c.size)
        .collect();
    assert_eq!(sizes, [1, 3, 7]);
    assert!(store.checkpoints(other.id).await.unwrap().is_empty());
}

pub async fn scan_returns_leaves_and_columns(store: &dyn Store) {
    use crate::IndexedColumns;
    let account = store
        .create_account("conf-scan")
        .await
        .expect("create account");
    store
        .append(&account, sample_events(9, "sc"))
        .await
        .expect("append");
    let first = store.scan_events(account.id, 0, 4).await.unwrap();
    let rest = store.scan_events(account.id, 4, 100).await.unwrap();
    assert_eq!(first.len(), 4);
    assert_eq!(rest.len(), 5);
    assert_eq!(store.event_row_count(account.id).await.unwrap(), 9);
    for (i, scanned) in first.iter().chain(&rest).enumerate() {
        let record =
            auditlog_core::StoredRecord::new(&scanned.leaf_bytes, scanned.personal.as_deref());
        record
            .check()
            .expect("a stored v2 leaf opens with its personal values");
        let stored = record.stored_event().unwrap();
        assert_eq!(stored.seq(), i as u64 + 1);
        // A backend may keep a key only as its hash, or a value in a
        // dictionary: the columns must still hold what the leaf says.
        assert_eq!(
            scanned
                .columns
                .first_difference(&IndexedColumns::of(&stored)),
            None,
            "{:?}",
            scanned.columns
        );
        assert_eq!(
            scanned.stored_leaf_hash,
            Some(auditlog_core::leaf::leaf_hash(&scanned.leaf_bytes).to_vec())
        );
    }
    // A range of stored tree hashes is the same as asking for each index,
    // and a range past the tree's end is NotFound, not shorter.
    let count = store.stored_hash_count(account.id).await.unwrap();
    let range = store.read_hash_range(account.id, 3, count).await.unwrap();
    let indexes: Vec<i64> = (3..count).collect();
    assert_eq!(
        range,
        store.read_hashes(account.id, &indexes).await.unwrap()
    );
    assert_eq!(range.len() as i64, count - 3);
    assert!(matches!(
        store
            .read_hash_range(account.id, count - 1, count + 1)
            .await,
        Err(StoreError::NotFound(_))
    ));
}

pub async fn sessions_expire_and_end(store: &dyn Store) {
    let account = store.create_account("conf-sessions").await.unwrap();
    let user = store
        .create_user(account.id, "s@x.test", "$argon2id$fake", Role::Member)
        .await
        .unwrap();
    let now = Timestamp::from_micros(BASE);
    let hour = 3_600_000_000;
    for (hash, expires) in [([1u8; 32], BASE + hour), ([2u8; 32], BASE - 1)] {
        store
            .create_session(NewSession {
                token_hash: hash,
                user_id: user.id,
                csrf_token: format!("csrf-{}", hash[0]),
                created_at: Timestamp::from_micros(BASE - hour),
                expires_at: Timestamp::from_micros(expires),
            })
            .await
            .unwrap();
    }
    let live = store
        .session_by_token_hash([1; 32], now)
        .await
        .unwrap()
        .expect("a live session is found");
    assert_eq!(live.user.id, user.id);
    assert_eq!(live.user.role, Role::Member);
    assert_eq!(live.account.id, account.id);
    assert_eq!(live.csrf_token, "csrf-1");
    assert_eq!(live.expires_at, Timestamp::from_micros(BASE + hour));
    assert!(
        store
            .session_by_token_hash([2; 32], now)
            .await
            .unwrap()
            .is_none(),
        "an expired session is not found"
    );
    assert!(store
        .session_by_token_hash([3; 32], now)
        .await
        .unwrap()
        .is_none());
    assert_eq!(store.delete_expired_sessions(now).await.unwrap(), 1);
    store.delete_session([1; 32]).await.unwrap();
    store.delete_session([1; 32]).await.unwrap();
    assert!(store
        .session_by_token_hash([1; 32], now)
        .await
        .unwrap()
        .is_none());
}

pub async fn facets_list_each_actor_and_project_once(store: &dyn Store) {
    let account = store.create_account("conf-facets").await.unwrap();
    let other = store.create_account("conf-facets-other").await.unwrap();
    let events = sample_events(40, "f");
    store.append(&account, events.clone()).await.unwrap();
    let elsewhere = vec![edited(&sample_events(1, "g")[0], |e| {
        e.insert("actor".into(), json!({"id": "only-elsewhere"}));
        e.insert("project".into(), json!("only-elsewhere"));
    })];
    store.append(&other, elsewhere).await.unwrap();

    let mut expected_actors: Vec<ActorSummary> = Vec::new();
    for e in &events {
        let actor = e.actor();
        match expected_actors.iter_mut().find(|a| a.id == actor.id) {
            Some(a) => {
                a.name = actor.name.clone();
                a.email = actor.email.clone();
            }
            None => expected_actors.push(ActorSummary {
                id: actor.id.clone(),
                name: actor.name.clone(),
                email: actor.email.clone(),
            }),
        }
    }
    expected_actors.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(
        store.actors(account.id, 100).await.unwrap(),
        expected_actors
    );
    assert_eq!(store.actors(account.id, 2).await.unwrap().len(), 2);

    let mut expected_projects: Vec<String> = events
        .iter()
        .filter_map(|e| e.project().map(str::to_string))
        .collect();
    expected_projects.sort();
    expected_projects.dedup();
    assert_eq!(
        store.projects(account.id, 100).await.unwrap(),
        expected_projects
    );

    // The latest name and email of an actor win.
    let renamed = vec![edited(&sample_events(1, "h")[0], |e| {
        let actor = json!({"id": "u-0", "name": "Renamed", "email": "renamed@x.test"});
        e.insert("actor".into(), actor);
    })];
    store.append(&account, renamed).await.unwrap();
    let actors = store.actors(account.id, 100).await.unwrap();
    let u0 = actors.iter().find(|a| a.id == "u-0").unwrap();
    assert_eq!(u0.name.as_deref(), Some("Renamed"));
    assert_eq!(u0.email.as_deref(), Some("renamed@x.test"));
    assert_eq!(actors.len(), expected_actors.len());
}

/// Past `TRAIN_AFTER` version 2 leaves the backend compresses new leaves
/// with the account's dictionary (`leaf_codec`): every read (pages, one
/// event, the verification scan) still hands out the exact leaf bytes,
/// whose hash is the stored hash, with personal values that open them; a
/// retry of a compressed event is idempotent. (Each backend's own test
/// checks that its leaves are in fact stored compressed.)
pub async fn leaves_read_back_exactly_past_the_dictionary(store: &dyn Store) {
    let account = store.create_account("conf-packed").await.unwrap();
    let total = crate::leaf_codec::TRAIN_AFTER as usize + 300;
    let events = sample_events(total, "pk");
    for chunk in events.chunks(600) {
        store.append(&account, chunk.to_vec()).await.unwrap();
    }
    let mut cursor = None;
    let mut seen = 0;
    loop {
        let page = store
            .query(account.id, &EventFilter::default(), cursor, 1_000)
            .await
            .unwrap();
        for record in &page.events {
            assert_eq!(
                auditlog_core::leaf::leaf_hash(&record.leaf_bytes),
                record.leaf_hash,
                "seq {}",
                record.seq
            );
            record.stored().check().unwrap();
            seen += 1;
        }
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(seen, total);
    let scanned = store
        .scan_events(account.id, total as u64 - 5, 10)
        .await
        .unwrap();
    let newest = store
        .get(account.id, events[total - 1].id())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(scanned.last().unwrap().leaf_bytes, newest.leaf_bytes);
    let retried = store
        .append(&account, events[total - 3..].to_vec())
        .await
        .unwrap();
    assert!(retried.iter().all(|r| !r.created));
}

/// An account's declared personal `details` paths read back as set, stay
/// in their account, and apply to the events appended after the
/// declaration: the value at a declared path is a commitment in the leaf
/// (not in clear), opened by the stored personal values; an event
/// appended before keeps its value in the leaf.
pub async fn declared_personal_paths_apply_from_the_next_event(store: &dyn Store) {
    use auditlog_core::leaf_v2::DetailsPath;
    let account = store.create_account("conf-paths").await.unwrap();
    let other = store.create_account("conf-paths-other").await.unwrap();
    let event = |id: &str| {
        NewEvent::parse(
            &serde_json::json!({"id": id, "event_type": "Test Case", "action": "Update",
                "actor": {"id": "u-1"}, "details": {"assignee": "Grace Hopper", "state": "open"}}),
            &Taxonomy::default(),
            Timestamp::now(),
        )
        .unwrap()
    };
    store.append(&account, vec![event("before")]).await.unwrap();
    assert!(store.personal_paths(account.id).await.unwrap().is_empty());
    let declared = vec![
        DetailsPath::parse("details.assignee").unwrap(),
        DetailsPath::parse("details.ticket.owner").unwrap(),
    ];
    let old = store
        .set_personal_paths(account.id, &declared)
        .await
        .unwrap();
    assert!(old.is_empty());
    assert_eq!(store.personal_paths(account.id).await.unwrap(), declared);
    assert!(store.personal_paths(other.id).await.unwrap().is_empty());
    store.append(&account, vec![event("after")]).await.unwrap();
    let before = store.get(account.id, "before").await.unwrap().unwrap();
    let after = store.get(account.id, "after").await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&before.leaf_bytes).contains("Grace Hopper"));
    let leaf = String::from_utf8_lossy(&after.leaf_bytes).to_string();
    assert!(!leaf.contains("Grace Hopper"), "{leaf}");
    assert!(leaf.contains("\"state\":\"open\""), "{leaf}");
    after.stored().check().unwrap();
    let served: serde_json::Value =
        serde_json::from_slice(&after.stored().api_json(&after.leaf_hash).unwrap()).unwrap();
    assert_eq!(served["details"]["assignee"], "Grace Hopper");
    assert!(
        served["openings"]["details.assignee"].is_string(),
        "{served}"
    );
    let replaced = store.set_personal_paths(account.id, &[]).await.unwrap();
    assert_eq!(replaced, declared);
    assert!(store.personal_paths(account.id).await.unwrap().is_empty());
}

/// The cases of a store that `auditlog copy` reads from: keys, users and
/// events come out unchanged, events in seq order.
pub async fn transfer_source_round_trips(store: &dyn crate::transfer::TransferSource) {
    let account = store.create_account("conf-transfer").await.unwrap();
    store
        .create_api_key(account.id, [9; 32], &[Scope::Ingest])
        .await
        .unwrap();
    store
        .create_user(account.id, "t@x.test", "$argon2id$fake", Role::Member)
        .await
        .unwrap();
    let keys = store.api_keys(account.id).await.unwrap();
    let grant = store.api_key_by_hash([9; 32]).await.unwrap().unwrap();
    assert!(grant.public_id.starts_with("key_") && grant.public_id.len() == 20);
    assert_eq!(
        keys,
        vec![crate::transfer::ApiKeyRecord {
            key_hash: [9; 32],
            scopes: vec![Scope::Ingest],
            public_id: grant.public_id.clone(),
            name: String::new(),
            prefix: String::new(),
            expires_at: None,
            created_by: String::new(),
            created_at: keys[0].created_at,
            revoked_at: None,
        }]
    );
    let users = store.users(account.id).await.unwrap();
    assert_eq!(users.len(), 1);
    assert_eq!(users[0].password_hash, "$argon2id$fake");
    // Times out of seq order, so that seq order is not time order.
    let mut events = sample_events(12, "t");
    events.reverse();
    store.append(&account, events).await.unwrap();
    let all = store
        .query(account.id, &EventFilter::default(), None, 100)
        .await
        .unwrap()
        .events;
    let mut after = 0;
    let mut seen = Vec::new();
    loop {
        let chunk = store.events_after(account.id, after, 5).await.unwrap();
        let Some(last) = chunk.last() else { break };
        after = last.seq;
        for event in &chunk {
            assert!(all.contains(event), "the same record as a query gives");
        }
        seen.extend(chunk.iter().map(|e| e.seq));
    }
    assert_eq!(seen, (1..=12).collect::<Vec<_>>());
}
