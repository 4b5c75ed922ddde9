//! The properties of the server's parsers and writers that the fuzz targets
//! (`fuzz/`) and the property tests check, defined once so that they cannot
//! drift apart: query strings of `GET /api/v1/events` (filters, limit,
//! cursor) and the export rows (CSV and JSON Lines).
//!
//! Each `check_*` function takes input as a fuzzer would give it and panics
//! with a message naming the broken property. Compiled for this crate's tests
//! and behind the `fuzzing` feature; never part of a release build.

use crate::console::url::with_query;
use crate::error::ApiError;
use crate::exports::format::{csv_cell, write_header, write_row, CSV_COLUMNS};
use crate::exports::format_oracle;
use crate::query_params::{filter_pairs, parse_limit, parse_page_params};
use auditlog_core::event::api_json;
use auditlog_core::filter::MAX_LIMIT;
use auditlog_core::fuzzing::{
    check_cursor_round_trip, check_cursor_text, check_filter, check_filter_json, fixed_now,
    store_as,
};
use auditlog_core::{leaf, Cursor, EventFilter, NewEvent, Taxonomy, Timestamp};
use auditlog_store::{EventRecord, ExportFormat};
use axum::extract::Query;
use axum::http::{StatusCode, Uri};
use serde_json::Value;

/// Most rows one CSV input makes: enough for every interaction between rows.
pub const MAX_ROWS: usize = 64;

/// Query parameters (`fuzz_targets/query_params.rs`). Input starting with
/// `{` is an export request's `filters` object; anything else is the query
/// string of `GET /api/v1/events`, extracted as the handler extracts it.
/// A query is either refused with a 400 that names the field and the rule,
/// or gives a consistent filter, a limit in range and a cursor, which the
/// console's links (`filter_pairs`) and the stored filter JSON give back.
pub fn check_query_input(input: &[u8]) {
    if input.first() == Some(&b'{') {
        if let Ok(value) = serde_json::from_slice::<Value>(input) {
            check_filter_json(&value);
        }
        return;
    }
    let Some(pairs) = query_pairs(input) else {
        return;
    };
    for (name, value) in &pairs {
        match name.as_str() {
            "cursor" => check_cursor_text(value),
            "limit" => check_limit_text(value),
            _ => {}
        }
    }
    let taxonomy = Taxonomy::default();
    match parse_page_params(&pairs, &taxonomy) {
        Ok((filter, limit, cursor)) => {
            assert!((1..=MAX_LIMIT).contains(&limit), "accepted limit {limit}");
            check_filter(&filter, &taxonomy);
            if let Some(cursor) = cursor {
                check_cursor_round_trip(cursor);
            }
            check_single_values(&pairs, &filter);
            check_link_round_trip(&filter, limit, cursor, &taxonomy);
        }
        Err(e) => check_bad_parameter(&e),
    }
}

/// The pairs that `Query<Vec<(String, String)>>` extracts from
/// `/api/v1/events?<input>`, or `None` where no request could carry it.
pub fn query_pairs(query: &[u8]) -> Option<Vec<(String, String)>> {
    let mut target = b"/api/v1/events?".to_vec();
    target.extend_from_slice(query);
    let uri = Uri::try_from(target).ok()?;
    Query::<Vec<(String, String)>>::try_from_uri(&uri)
        .ok()
        .map(|Query(pairs)| pairs)
}

/// A page size is accepted only in range, and then as its plain decimal too.
fn check_limit_text(text: &str) {
    match parse_limit(Some(text)) {
        Ok(n) => {
            assert!((1..=MAX_LIMIT).contains(&n), "accepted limit {n}");
            assert_eq!(parse_limit(Some(&n.to_string())).ok(), Some(n));
        }
        Err(e) => check_bad_parameter(&e),
    }
}

/// SPEC: a bad parameter is a 400 that says which parameter and which rule.
fn check_bad_parameter(e: &ApiError) {
    assert_eq!(e.status, StatusCode::BAD_REQUEST, "{e:?}");
    assert!(!e.message.is_empty(), "{e:?}");
    let detail = |key: &str| {
        e.details
            .as_ref()
            .and_then(|d| d.get(key))
            .and_then(Value::as_str)
    };
    let rule = detail("rule").unwrap_or_default();
    // Only an unknown parameter may have an empty name (`?=x`); the
    // message quotes it.
    let field_named = detail("field").is_some_and(|f| !f.is_empty() || rule == "unknown_parameter");
    assert!(
        field_named && !rule.is_empty(),
        "a 400 must name the field and the rule in details: {e:?}"
    );
}

/// A parameter that is not a list (`app`, `version`, `target_id`, `from`,
/// `to`) is either refused when repeated, or every value given is the one
/// the filter holds: a query never silently drops a condition.
fn check_single_values(pairs: &[(String, String)], filter: &EventFilter) {
    for (name, value) in pairs {
        let held = match name.as_str() {
            "app" => filter.app.clone(),
            "version" => filter.version.clone(),
            "target_id" => filter.target_id.clone(),
            "from" | "to" => {
                let held = if name == "from" {
                    filter.from
                } else {
                    filter.to
                };
                assert_eq!(
                    Timestamp::parse(name, value).ok(),
                    held,
                    "{name}={value:?} is not the filter's {name}"
                );
                continue;
            }
            _ => continue,
        };
        assert_eq!(
            held.as_deref(),
            Some(value.as_str()),
            "{name}={value:?} was dropped"
        );
    }
}

/// The console builds links from `filter_pairs`; the query string they make
/// must give the handler the same filter, limit and cursor again.
fn check_link_round_trip(
    filter: &EventFilter,
    limit: usize,
    cursor: Option<Cursor>,
    taxonomy: &Taxonomy,
) {
    let mut pairs = filter_pairs(filter);
    pairs.push(("limit".into(), limit.to_string()));
    if let Some(cursor) = cursor {
        pairs.push(("cursor".into(), cursor.encode()));
    }
    let link = with_query("", &pairs);
    let query = link.trim_start_matches('?');
    let extracted = query_pairs(query.as_bytes())
        .unwrap_or_else(|| panic!("the console's link {link:?} is not a valid request"));
    let again = parse_page_params(&extracted, taxonomy)
        .unwrap_or_else(|e| panic!("the query {query:?} of an accepted filter is refused: {e:?}"));
    assert_eq!(again, (filter.clone(), limit, cursor), "query {query:?}");
}

/// SPEC "Exports": a cell that starts with `=`, `+`, `-`, `@`, tab or
/// carriage return is prefixed with `'`. Restated here, independently of
/// the writer, as the expectation the writer is checked against.
pub fn spec_cell(value: &str) -> String {
    if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{value}")
    } else {
        value.to_string()
    }
}

/// The CSV writer (`fuzz_targets/csv_writer.rs`). The input is JSON Lines of
/// events as clients send them; every accepted one (up to [`MAX_ROWS`]) is
/// stored and exported. Read back with the `csv` crate, the file has the
/// header, one row per event, and in each row the event's values with
/// SPEC's formula rule applied; the JSON Lines export has one line per event,
/// exactly as the API serves it. Also: any text as one cell reads back as
/// that text, neutralised.
pub fn check_csv_input(input: &[u8]) {
    check_one_cell(&String::from_utf8_lossy(input));
    let taxonomy = Taxonomy::default();
    let events: Vec<NewEvent> = input
        .split(|b| *b == b'\n')
        .filter_map(|line| serde_json::from_slice::<Value>(line).ok())
        .filter_map(|value| NewEvent::parse(&value, &taxonomy, fixed_now()).ok())
        .take(MAX_ROWS)
        .collect();
    let records: Vec<EventRecord> = events
        .iter()
        .enumerate()
        .map(|(i, event)| {
            let stored = store_as(event.clone(), i as u64 + 1);
            EventRecord {
                seq: stored.seq(),
                time: event.time(),
                leaf_hash: stored.leaf_hash(),
                leaf_bytes: stored.leaf_bytes(),
                personal: None,
            }
        })
        .collect();
    check_csv_rows(&events, &records);
    check_jsonl_rows(&records);
    check_rows_match_the_oracle(&records);
}

/// Each row, CSV and JSON Lines, is byte for byte what the previous writer
/// (`format_oracle`: a `StoredEvent` and a `String` per cell) wrote.
pub fn check_rows_match_the_oracle(records: &[EventRecord]) {
    for format in [ExportFormat::Csv, ExportFormat::Jsonl] {
        for record in records {
            let mut row = b"before".to_vec();
            write_row(format, record, &mut row)
                .unwrap_or_else(|e| panic!("an accepted event cannot be exported: {e}"));
            let oracle = format_oracle::row(format, record)
                .unwrap_or_else(|e| panic!("the oracle cannot export an accepted event: {e}"));
            assert!(
                row[6..] == oracle[..],
                "{format:?} row of seq {} differs from the previous writer's:\n{}\n{}",
                record.seq,
                String::from_utf8_lossy(&row[6..]),
                String::from_utf8_lossy(&oracle),
            );
        }
    }
}

fn check_one_cell(text: &str) {
    let line = format!("x,{}\r\n", csv_cell(text));
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(line.as_bytes());
    let rows: Vec<csv::StringRecord> = reader
        .records()
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("a cell does not read back ({e}): {line:?}"));
    assert_eq!(rows.len(), 1, "one cell made {} rows: {line:?}", rows.len());
    let cells: Vec<&str> = rows[0].iter().collect();
    assert_eq!(cells, ["x", spec_cell(text).as_str()], "{line:?}");
}

fn check_csv_rows(events: &[NewEvent], records: &[EventRecord]) {
    let mut out = Vec::new();
    write_header(ExportFormat::Csv, &mut out).expect("writing to memory");
    for record in records {
        write_row(ExportFormat::Csv, record, &mut out)
            .unwrap_or_else(|e| panic!("an accepted event cannot be exported: {e}"));
    }
    let mut reader = csv::ReaderBuilder::new().from_reader(&out[..]);
    let header: Vec<String> = reader
        .headers()
        .expect("the CSV header reads back")
        .iter()
        .map(String::from)
        .collect();
    assert_eq!(header, CSV_COLUMNS);
    let rows: Vec<csv::StringRecord> = reader
        .records()
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("the CSV does not read back: {e}"));
    assert_eq!(rows.len(), records.len(), "one row per event");
    for ((row, event), record) in rows.iter().zip(events).zip(records) {
        let cells: Vec<&str> = row.iter().collect();
        let expected = expected_cells(event, record);
        for (column, (cell, want)) in CSV_COLUMNS.iter().zip(cells.iter().zip(&expected)) {
            if *column == "details" {
                // Compact JSON of `details`: compared as JSON, not as text.
                let got: Option<Value> = (!cell.is_empty())
                    .then(|| serde_json::from_str(cell).expect("details cell is JSON"));
                let want = event.details().cloned().map(Value::Object);
                assert_eq!(got, want, "details cell");
            } else {
                assert_eq!(cell, &spec_cell(want), "column {column}");
            }
        }
        let time = cells[0].strip_prefix('\'').unwrap_or(cells[0]);
        assert_eq!(
            Timestamp::parse("time", time).ok(),
            Some(event.time()),
            "the time cell {time:?} does not read back as the event's time"
        );
    }
}

/// The values of one row, in column order, taken from the event itself
/// (not from the writer's own helper).
fn expected_cells(event: &NewEvent, record: &EventRecord) -> Vec<String> {
    let text = |v: Option<&str>| v.unwrap_or_default().to_string();
    let actor = event.actor();
    let target = event.target();
    let context = event.context();
    vec![
        event.time().to_rfc3339(),
        record.seq.to_string(),
        event.event_type().to_string(),
        event.action().to_string(),
        text(event.project()),
        text(event.app()),
        text(event.version()),
        actor.id.clone(),
        text(actor.name.as_deref()),
        text(actor.email.as_deref()),
        text(target.and_then(|t| t.id.as_deref())),
        text(target.and_then(|t| t.name.as_deref())),
        String::new(), // details: compared as JSON above
        text(context.and_then(|c| c.ip.as_deref())),
        text(context.and_then(|c| c.user_agent.as_deref())),
        event.id().to_string(),
        leaf::to_hex(&record.leaf_hash),
    ]
}

fn check_jsonl_rows(records: &[EventRecord]) {
    let mut out = Vec::new();
    write_header(ExportFormat::Jsonl, &mut out).expect("writing to memory");
    for record in records {
        write_row(ExportFormat::Jsonl, record, &mut out).expect("writing to memory");
    }
    let text = String::from_utf8(out).expect("JSON Lines are UTF-8");
    let lines: Vec<&str> = text.split_terminator('\n').collect();
    assert_eq!(lines.len(), records.len(), "one line per event");
    for (line, record) in lines.iter().zip(records) {
        assert_eq!(
            line.as_bytes(),
            &api_json(&record.leaf_bytes, &record.leaf_hash)[..]
        );
        let value: Value = serde_json::from_str(line).expect("each line is JSON");
        assert_eq!(value["seq"], record.seq);
    }
}

/// Seeded generators for the property tests of this crate.
pub mod generate {
    use auditlog_core::filter::FILTER_PARAMS;
    use auditlog_core::fuzzing::generate::{cursor_text, filter_param_value, text, Rng};

    /// A query string of `GET /api/v1/events` as browsers and clients send
    /// it: known parameters (repeated at times), page sizes in and out of
    /// range, cursors issued, damaged or made up; usually percent-encoded,
    /// sometimes raw.
    pub fn query_string(rng: &mut Rng) -> String {
        let mut pairs = Vec::new();
        for _ in 0..rng.below(6) {
            let name = match rng.below(20) {
                0..=13 => rng.pick(FILTER_PARAMS).to_string(),
                14 | 15 => "limit".to_string(),
                16 | 17 => "cursor".to_string(),
                18 => "interval".to_string(),
                _ => text(rng, 8),
            };
            let value = match name.as_str() {
                "limit" => rng
                    .pick(&["0", "1", "50", "1000", "1001", "-1", "+7", " 5", "1e3", "x"])
                    .to_string(),
                "cursor" => cursor_text(rng),
                _ => filter_param_value(rng, &name),
            };
            pairs.push((name, value));
        }
        if rng.chance(85) {
            crate::console::url::with_query("", &pairs)
                .trim_start_matches('?')
                .to_string()
        } else {
            pairs
                .iter()
                .map(|(n, v)| format!("{n}={v}"))
                .collect::<Vec<_>>()
                .join("&")
        }
    }
}
