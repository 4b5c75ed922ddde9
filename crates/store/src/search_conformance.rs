//! The conformance cases of `q` (SPEC "Search"): the table of queries in
//! `auditlog_core::search::cases` and random queries over random events
//! (the generators of core's property checks), each answered by the store
//! (pages walked with cursors, the histogram's total, seq windows) exactly
//! as the reference `Query::matches` answers.
//!
//! The store seals every event as a version 2 leaf naming a source, so an
//! event the table stores without one (`e5`, a version 1 leaf there) is
//! stored here by the system, and the reference is asked with the source
//! the store recorded; every query of the table that does not name
//! `source` must still return exactly the table's events.

use crate::{Account, Store};
use auditlog_core::fuzzing::generate::{self, Rng};
use auditlog_core::leaf_v2::Source;
use auditlog_core::search::cases::{events as case_events, CASES};
use auditlog_core::search::{Query, Zone};
use auditlog_core::{EventFilter, Interval, StoredEvent};

/// Appends `events` one by one (so seq n is the n-th), each from its
/// source (the system when it has none); returns the sources stored.
async fn store_events(
    store: &dyn Store,
    account: &Account,
    events: &[(StoredEvent, Option<Source>)],
) -> Vec<(StoredEvent, Option<Source>)> {
    let mut stored = Vec::new();
    for (event, source) in events {
        let source = source.clone().unwrap_or(Source::System);
        let receipts = store
            .append_from(account, &source, vec![event.event().clone()])
            .await
            .unwrap();
        assert_eq!(receipts[0].seq, event.seq(), "stored in order");
        stored.push((event.clone(), Some(source)));
    }
    stored
}

/// What the store answers for `query`, every way it can be asked, checked
/// against `want` (seqs, newest first by time then seq).
async fn check_query(
    store: &dyn Store,
    account: &Account,
    query: &Query,
    want: &[u64],
    what: &str,
) {
    let filter = EventFilter {
        query: query.clone(),
        ..Default::default()
    };
    // Pages of 2 with cursors: every match once, in order.
    let mut got = Vec::new();
    let mut cursor = None;
    for _ in 0..1_000 {
        let page = store.query(account.id, &filter, cursor, 2).await.unwrap();
        assert!(page.events.len() <= 2, "{what}: a page holds at most 2");
        got.extend(page.events.iter().map(|e| e.seq));
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(got, want, "{what}: pages");
    let one_page = store.query(account.id, &filter, None, 1_000).await.unwrap();
    let all: Vec<u64> = one_page.events.iter().map(|e| e.seq).collect();
    assert_eq!(all, want, "{what}: one page");
    for record in &one_page.events {
        assert!(
            auditlog_core::leaf_view::LeafView::parse(&record.leaf_bytes)
                .map(|v| v.account() == account.name)
                .unwrap_or(false),
            "{what}: only the account's events"
        );
    }
    for interval in [Interval::Hour, Interval::Day, Interval::Week] {
        let buckets = store
            .histogram(account.id, &filter, interval)
            .await
            .unwrap();
        let total: u64 = buckets.iter().map(|b| b.count).sum();
        assert_eq!(total as usize, want.len(), "{what}: histogram total");
    }
    let last = store.last_seq(account.id).await.unwrap();
    let window: Vec<u64> = store
        .events_in_seq_range(account.id, &filter, 0, last)
        .await
        .unwrap()
        .iter()
        .map(|r| r.seq)
        .collect();
    let mut by_seq = want.to_vec();
    by_seq.sort_unstable();
    assert_eq!(window, by_seq, "{what}: seq window");
}

/// The reference's answer: matching seqs, newest first.
fn reference(query: &Query, events: &[(StoredEvent, Option<Source>)]) -> Vec<u64> {
    let mut want: Vec<(auditlog_core::Timestamp, u64)> = events
        .iter()
        .filter(|(e, s)| query.matches(e, s.as_ref()))
        .map(|(e, _)| (e.event().time(), e.seq()))
        .collect();
    want.sort_by(|a, b| b.cmp(a));
    want.into_iter().map(|(_, seq)| seq).collect()
}

/// Every query of the table, on the table's events, in an account beside
/// another holding the same events (which no query may reach).
pub async fn search_cases_agree_with_the_table(store: &dyn Store) {
    let account = store.create_account("acme").await.unwrap();
    let other = store.create_account("conf-search-other").await.unwrap();
    let events = case_events();
    store_events(store, &other, &events).await;
    let stored = store_events(store, &account, &events).await;
    assert!(CASES.len() >= 40);
    for case in CASES {
        let zone = Zone::parse(case.tz).unwrap();
        let query = Query::parse(case.query, &zone).unwrap();
        let want = reference(&query, &stored);
        if !case.query.contains("source") {
            // The table's own answer (ids in seq order).
            let mut ids: Vec<String> = want.iter().map(|seq| format!("e{seq}")).collect();
            ids.sort();
            assert_eq!(ids, case.expect, "{:?} in {}", case.query, case.tz);
        }
        check_query(
            store,
            &account,
            &query,
            &want,
            &format!("{:?} (tz {})", case.query, case.tz),
        )
        .await;
    }
}

/// Random queries over random events (core's generators, drawn from the
/// same words so that most queries select some but not all): the store's
/// answer is the reference's.
pub async fn random_queries_agree_with_the_reference(store: &dyn Store) {
    let account = store.create_account("conf-search-random").await.unwrap();
    let mut rng = Rng::new(14);
    let events: Vec<_> = (1..=60)
        .map(|seq| generate::search_event(&mut rng, seq))
        .collect();
    let stored = store_events(store, &account, &events).await;
    let zone = Zone::parse("America/New_York").unwrap();
    let mut checked = 0;
    for seed in 1..=150 {
        let text = generate::query_text(&mut Rng::new(seed));
        let Ok(query) = Query::parse(&text, &zone) else {
            continue;
        };
        let want = reference(&query, &stored);
        check_query(store, &account, &query, &want, &format!("{text:?}")).await;
        checked += 1;
    }
    assert!(checked >= 50, "only {checked} generated queries parsed");
}
