//! Property tests: the fuzz targets' properties (`crate::fuzzing`) on seeded
//! generated inputs, and every committed corpus and regression input of the
//! `query_params` and `csv_writer` targets replayed, so that CI checks them
//! on stable Rust in seconds (the fuzzers need nightly and minutes; `fuzz/`).

use crate::fuzzing::generate::query_string;
use crate::fuzzing::{check_csv_input, check_query_input, query_pairs, MAX_ROWS};
use crate::query_params::parse_page_params;
use auditlog_core::fuzzing::generate::{self, Rng};
use auditlog_core::fuzzing::{fixed_now, replay};
use auditlog_core::{NewEvent, Taxonomy};

/// Cases per property: each generator branch is hit many times, and the
/// whole file runs in about a second.
const CASES: u64 = 300;

#[test]
fn generated_queries_keep_the_query_params_properties() {
    let taxonomy = Taxonomy::default();
    let (mut accepted, mut refused) = (0, 0);
    for seed in 1..=CASES {
        let query = query_string(&mut Rng::new(seed));
        if let Some(pairs) = query_pairs(query.as_bytes()) {
            match parse_page_params(&pairs, &taxonomy) {
                Ok(_) => accepted += 1,
                Err(_) => refused += 1,
            }
        }
        check_query_input(query.as_bytes());
    }
    // Both answers must be exercised, or the test proves little.
    assert!(
        accepted > CASES / 5 && refused > CASES / 5,
        "{accepted} accepted, {refused} refused"
    );
}

#[test]
fn generated_export_filters_keep_the_query_params_properties() {
    for seed in 1..=CASES {
        let filters = generate::filter_value(&mut Rng::new(seed));
        check_query_input(&serde_json::to_vec(&filters).expect("a Value serialises"));
    }
}

#[test]
fn generated_events_export_to_csv_keeping_every_cell() {
    let taxonomy = Taxonomy::default();
    let mut rows = 0;
    for seed in 1..=CASES / 3 {
        let mut rng = Rng::new(seed);
        let mut input = Vec::new();
        for _ in 0..rng.below(MAX_ROWS / 4) {
            let event = generate::event_value(&mut rng);
            rows += usize::from(NewEvent::parse(&event, &taxonomy, fixed_now()).is_ok());
            input.extend(serde_json::to_vec(&event).expect("a Value serialises"));
            input.push(b'\n');
        }
        check_csv_input(&input);
    }
    assert!(rows > CASES as usize, "only {rows} rows were exported");
}

#[test]
fn the_query_params_corpus_keeps_its_properties() {
    assert!(replay("query_params", check_query_input) > 0);
}

#[test]
fn the_csv_writer_corpus_keeps_its_properties() {
    assert!(replay("csv_writer", check_csv_input) > 0);
}
