//! Property tests: the fuzz targets' properties (`crate::fuzzing`) on seeded
//! generated inputs, and every committed corpus and regression input of the
//! `event_parse` target replayed, so that CI checks them on stable Rust in
//! seconds (the fuzzers themselves need nightly and minutes; `fuzz/`).

use crate::fuzzing::generate::{self, Rng};
use crate::fuzzing::{
    check_canonical, check_cursor_round_trip, check_cursor_text, check_event_json,
    check_filter_json, check_query_text, check_words, fixed_now, replay,
};
use crate::{EventFilter, NewEvent, Taxonomy};

/// Cases per property: enough to hit each generator branch many times,
/// few enough that the whole file runs in well under a second.
const CASES: u64 = 400;

#[test]
fn generated_events_keep_the_event_parse_properties() {
    let taxonomy = Taxonomy::default();
    let (mut accepted, mut refused) = (0, 0);
    for seed in 1..=CASES {
        let value = generate::event_value(&mut Rng::new(seed));
        match NewEvent::parse(&value, &taxonomy, fixed_now()) {
            Ok(_) => accepted += 1,
            Err(_) => refused += 1,
        }
        check_event_json(&serde_json::to_vec(&value).expect("a Value serialises"));
    }
    // The generator must exercise both answers, or the test proves little.
    assert!(
        accepted > CASES / 4 && refused > CASES / 20,
        "{accepted} accepted, {refused} refused"
    );
}

#[test]
fn canonical_json_is_idempotent_on_generated_values() {
    for seed in 1..=CASES {
        check_canonical(&generate::json_value(&mut Rng::new(seed), 4));
    }
}

#[test]
fn cursors_round_trip_and_junk_is_refused() {
    for seed in 1..=CASES {
        let mut rng = Rng::new(seed);
        check_cursor_round_trip(generate::cursor(&mut rng));
        check_cursor_text(&generate::cursor_text(&mut rng));
    }
}

#[test]
fn generated_export_filters_round_trip_through_json() {
    let taxonomy = Taxonomy::default();
    let mut accepted = 0;
    for seed in 1..=CASES {
        let value = generate::filter_value(&mut Rng::new(seed));
        accepted += usize::from(EventFilter::from_json(&value, &taxonomy).is_ok());
        check_filter_json(&value);
    }
    assert!(accepted > CASES as usize / 4, "only {accepted} accepted");
}

#[test]
fn the_event_parse_corpus_keeps_its_properties() {
    let replayed = replay("event_parse", check_event_json);
    assert!(replayed > 0, "no corpus for event_parse");
}

#[test]
fn generated_search_queries_keep_the_search_query_properties() {
    use crate::search::{Query, Zone};
    let (mut accepted, mut refused) = (0, 0);
    for seed in 1..=CASES * 3 {
        let text = generate::query_text(&mut Rng::new(seed));
        match Query::parse(&text, &Zone::utc()) {
            Ok(_) => accepted += 1,
            Err(_) => refused += 1,
        }
        check_query_text(text.as_bytes());
    }
    // Both answers, each often: the generator reaches the printer and the errors.
    assert!(
        accepted > CASES / 2 && refused > CASES / 5,
        "{accepted} accepted, {refused} refused"
    );
}

#[test]
fn the_table_of_search_cases_keeps_the_search_query_properties() {
    use crate::search::cases::{CASES as TABLE, ERRORS};
    for case in TABLE {
        check_query_text(case.query.as_bytes());
    }
    for case in ERRORS {
        check_query_text(case.query.as_bytes());
    }
}

#[test]
fn words_read_back_as_themselves() {
    for seed in 1..=CASES {
        check_words(&generate::text(&mut Rng::new(seed), 60));
    }
    for text in ["İstanbul", "ΟΔΟΣ Σ", "ǅemal", "ß ẞ", "Ⅻ ½ ²", "e\u{301}te"] {
        check_words(text);
    }
}

#[test]
fn the_search_query_corpus_keeps_its_properties() {
    let replayed = replay("search_query", check_query_text);
    assert!(replayed > 0, "no corpus for search_query");
}

/// Random queries over random events drawn from the same words: what the
/// backends' property tests are to compare with the reference; here the
/// reference's own laws, and that the queries do select (neither nothing
/// nor everything, most of the time).
#[test]
fn generated_queries_over_generated_events_keep_the_laws_and_select() {
    use crate::fuzzing::check_query_on;
    use crate::search::{Query, Zone};
    let mut rng = Rng::new(7);
    let events: Vec<_> = (1..=60)
        .map(|seq| generate::search_event(&mut rng, seq))
        .collect();
    let zone = Zone::parse("America/New_York").unwrap();
    let (mut some, mut parsed) = (0, 0);
    for seed in 1..=CASES {
        let text = generate::query_text(&mut Rng::new(seed));
        let Ok(query) = Query::parse(&text, &zone) else {
            continue;
        };
        parsed += 1;
        check_query_on(&query, &events);
        let hits = events
            .iter()
            .filter(|(e, s)| query.matches(e, s.as_ref()))
            .count();
        some += usize::from(hits > 0 && hits < events.len());
    }
    assert!(
        some > parsed / 4,
        "only {some} of {parsed} queries select some events"
    );
}
