//! How one event becomes one row of an export file: CSV as SPEC.md fixes it
//! (RFC 4180, the column order, `details` as compact JSON, cells that a
//! spreadsheet would run as a formula neutralised with a leading `'`), or
//! JSON Lines with each event exactly as the API returns it.
//!
//! Rows are written straight into the caller's buffer from a borrowed read
//! of the leaf bytes (`auditlog_core::leaf_view`): no JSON tree and no
//! `String` per cell, which is what bounded exports (BENCHMARKS.md). The
//! previous writer, which read each leaf into a `StoredEvent`, is kept as
//! the oracle of the tests (`format_oracle`).

use crate::exports::details_json;
use auditlog_core::canonical;
use auditlog_core::leaf::write_hex;
use auditlog_core::leaf_view::LeafView;
use auditlog_core::{FieldError, RecordError, Timestamp};
use auditlog_store::{EventRecord, ExportFormat};
use serde_json::Value;
use std::io::{self, Write};

/// The CSV columns, in order.
pub const CSV_COLUMNS: [&str; 17] = [
    "time",
    "seq",
    "event_type",
    "action",
    "project",
    "app",
    "version",
    "user_id",
    "user_name",
    "user_email",
    "target_id",
    "target_name",
    "details",
    "ip",
    "user_agent",
    "id",
    "hash",
];

/// RFC 4180 ends every record with CRLF.
const CSV_LINE_END: &[u8] = b"\r\n";

/// What comes before the first row: the CSV header, nothing for JSON Lines.
pub fn write_header(format: ExportFormat, out: &mut impl Write) -> io::Result<()> {
    match format {
        ExportFormat::Csv => {
            let mut line = Vec::new();
            for (i, column) in CSV_COLUMNS.iter().enumerate() {
                if i > 0 {
                    line.push(b',');
                }
                write_cell(column, &mut line);
            }
            line.extend_from_slice(CSV_LINE_END);
            out.write_all(&line)
        }
        ExportFormat::Jsonl => Ok(()),
        ExportFormat::Bundle => Err(not_row_based()),
    }
}

/// Bundles are not written row by row (each entry needs its proof against
/// one checkpoint): `crate::bundle::write_bundle` makes them.
fn not_row_based() -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        "bundle exports are written whole by bundle::write_bundle, not row by row",
    )
}

/// Why a stored event cannot be written as a CSV row: its leaf bytes are
/// not the JSON of a stored event, or a time in them is not RFC 3339.
#[derive(Debug, thiserror::Error)]
enum UnreadableLeaf {
    #[error("leaf bytes are not a stored event: {0}")]
    Json(#[from] serde_json::Error),
    #[error("leaf holds an invalid time: {0}")]
    Time(#[from] FieldError),
    #[error("{0}")]
    Record(#[from] RecordError),
}

/// Appends one stored event as one row to `out` (nothing on error).
pub fn write_row(format: ExportFormat, record: &EventRecord, out: &mut Vec<u8>) -> io::Result<()> {
    match format {
        ExportFormat::Jsonl => {
            let start = out.len();
            record
                .stored()
                .write_served_json(&record.leaf_hash, out)
                .map_err(|e| {
                    out.truncate(start);
                    io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("event seq {} cannot be read back: {e}", record.seq),
                    )
                })?;
            out.push(b'\n');
            Ok(())
        }
        ExportFormat::Bundle => Err(not_row_based()),
        ExportFormat::Csv => {
            let start = out.len();
            write_csv_row(record, out).map_err(|e| {
                out.truncate(start);
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("event seq {} cannot be read back: {e}", record.seq),
                )
            })
        }
    }
}

/// The cells in [`CSV_COLUMNS`] order, each written in place.
fn write_csv_row(record: &EventRecord, out: &mut Vec<u8>) -> Result<(), UnreadableLeaf> {
    let leaf = LeafView::parse(&record.leaf_bytes)?;
    let Some(personal) = &record.personal else {
        return write_csv_cells(&leaf, &record.leaf_hash, out);
    };
    if !record.stored().is_erased() {
        let leaf = leaf.with_personal(personal)?;
        if !leaf.details_committed() {
            return write_csv_cells(&leaf, &record.leaf_hash, out);
        }
    }
    // Declared personal details: the leaf's `details` holds commitments, so
    // the row comes from the opened event (rare, and slower); an erased
    // event's row too (its values are `[erased]`).
    let opened = canonical::to_vec(&Value::Object(record.stored().served_map()?));
    write_csv_cells(&LeafView::parse(&opened)?, &record.leaf_hash, out)
}

/// The cells of one row, read from `leaf`.
fn write_csv_cells(
    leaf: &LeafView<'_>,
    leaf_hash: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), UnreadableLeaf> {
    // Stored times are canonical text, copied as they are; anything else is
    // read and printed as the API would (or refused, as before).
    if !Timestamp::is_canonical_text(leaf.received_at()) {
        Timestamp::parse("received_at", leaf.received_at())?;
    }
    if Timestamp::is_canonical_text(leaf.time()) {
        write_cell(leaf.time(), out);
    } else {
        write_cell(&Timestamp::parse("time", leaf.time())?.to_rfc3339(), out);
    }
    out.push(b',');
    // Writing into a Vec cannot fail; digits need no quoting.
    let _ = write!(out, "{}", leaf.seq());
    let cells = [
        Some(leaf.event_type()),
        Some(leaf.action()),
        leaf.project(),
        leaf.app(),
        leaf.version(),
        Some(leaf.actor_id()),
        leaf.actor_name(),
        leaf.actor_email(),
        leaf.target_id(),
        leaf.target_name(),
    ];
    for cell in cells {
        out.push(b',');
        write_cell(cell.unwrap_or_default(), out);
    }
    out.push(b',');
    // `details` is an object in every stored event; anything else is an
    // empty cell, as it always was.
    if let Some(raw) = leaf.details_json().filter(|raw| raw.starts_with('{')) {
        let start = out.len();
        details_json::write_compact(raw, out)?;
        close_cell(out, start);
    }
    for cell in [leaf.ip(), leaf.user_agent(), Some(leaf.id())] {
        out.push(b',');
        write_cell(cell.unwrap_or_default(), out);
    }
    out.push(b',');
    write_hex(leaf_hash, out);
    out.extend_from_slice(CSV_LINE_END);
    Ok(())
}

/// One CSV cell: neutralised against formula injection, then quoted as
/// RFC 4180 requires when it holds a comma, a quote or a line break.
pub fn csv_cell(value: &str) -> String {
    let mut out = Vec::with_capacity(value.len() + 2);
    write_cell(value, &mut out);
    String::from_utf8(out).unwrap_or_default()
}

/// Appends `value` to `out` as one CSV cell.
fn write_cell(value: &str, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(value.as_bytes());
    close_cell(out, start);
}

/// Turns the raw text of a cell, already at `out[start..]`, into the cell:
/// spreadsheets run a cell that starts with `=`, `+`, `-`, `@`, tab or
/// carriage return as a formula (OWASP "CSV injection"), so a leading `'`
/// makes them show it as text; a comma, a quote or a line break makes it
/// quoted, with quotes doubled. The common cell (nothing to change) costs
/// two vectorised scans (`memchr`: a byte-at-a-time loop here was 8 % of a
/// whole account's export; BENCHMARKS.md, "Export: personal values a batch
/// at a time").
fn close_cell(out: &mut Vec<u8>, start: usize) {
    let cell = &out[start..];
    let neutralise = matches!(
        cell.first(),
        Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r')
    );
    let quote =
        memchr::memchr(b'"', cell).is_some() || memchr::memchr3(b',', b'\r', b'\n', cell).is_some();
    if !neutralise && !quote {
        return;
    }
    if !quote {
        out.insert(start, b'\'');
        return;
    }
    // Written again after the cell, a run between quotes at a time, then
    // moved into place: one pass over the quotes (`details` cells hold JSON,
    // with a quote every few bytes; counting them first, then moving the
    // cell right byte by byte, was a tenth of an export's profile).
    let end = out.len();
    out.push(b'"');
    if neutralise {
        out.push(b'\'');
    }
    let mut run = start;
    while let Some(at) = memchr::memchr(b'"', &out[run..end]) {
        let quote_at = run + at;
        out.extend_from_within(run..=quote_at);
        out.push(b'"');
        run = quote_at + 1;
    }
    out.extend_from_within(run..end);
    out.push(b'"');
    out.drain(start..end);
}

#[cfg(test)]
mod tests {
    use super::*;
    use auditlog_core::event::api_json;
    use auditlog_core::{leaf, StoredEvent, Taxonomy};
    use serde_json::{json, Value};

    fn record(event: Value, seq: u64) -> EventRecord {
        let parsed = auditlog_core::NewEvent::parse(
            &event,
            &Taxonomy::default(),
            Timestamp::parse("now", "2026-11-25T15:00:00Z").unwrap(),
        )
        .unwrap();
        let stored = StoredEvent::new(
            "acme",
            seq,
            Timestamp::parse("r", "2026-11-25T15:00:01Z").unwrap(),
            parsed,
        );
        EventRecord {
            seq,
            time: stored.event().time(),
            leaf_hash: stored.leaf_hash(),
            leaf_bytes: stored.leaf_bytes(),
            personal: None,
        }
    }

    fn tricky() -> Value {
        json!({
            "id": "e,1",
            "time": "2026-11-25T14:03:07.123456Z",
            "event_type": "Test Case",
            "action": "Update",
            "actor": {"id": "=HYPERLINK(\"x\")", "name": "Ada, \"the\" Countess", "email": "@ada"},
            "project": "+Checkout\r\nline two",
            "app": "-Web",
            "version": "\tv2",
            "target": {"id": "TC-1", "name": "Ünïcödé ✓ 日本"},
            "details": {"changes": [{"field": "title", "old": "a,b", "new": "say \"hi\"\n"}]},
            "context": {"ip": "203.0.113.7", "user_agent": "Mozilla/5.0 (X11; Linux)"}
        })
    }

    #[test]
    fn cells_are_quoted_and_neutralised() {
        assert_eq!(csv_cell("plain"), "plain");
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
        assert_eq!(csv_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_cell("two\nlines"), "\"two\nlines\"");
        assert_eq!(csv_cell("=1+1"), "'=1+1");
        assert_eq!(csv_cell("+1"), "'+1");
        assert_eq!(csv_cell("-1"), "'-1");
        assert_eq!(csv_cell("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(csv_cell("\tx"), "'\tx");
        assert_eq!(csv_cell("\rx"), "\"'\rx\"");
        assert_eq!(csv_cell("=a,b"), "\"'=a,b\"");
        assert_eq!(csv_cell("a=b"), "a=b");
        assert_eq!(csv_cell("Ünïcödé"), "Ünïcödé");
        assert_eq!(csv_cell("\""), "\"\"\"\"");
        assert_eq!(csv_cell("\"\"a\""), "\"\"\"\"\"a\"\"\"");
        assert_eq!(csv_cell("=\"x\""), "\"'=\"\"x\"\"\"");
        assert_eq!(csv_cell(""), "");
    }

    /// RFC 4180 quoting and the formula guard, written the plain way.
    fn reference_cell(value: &str) -> String {
        let neutralise = value.starts_with(['=', '+', '-', '@', '\t', '\r']);
        let text = if neutralise {
            format!("'{value}")
        } else {
            value.to_string()
        };
        if text.contains([',', '"', '\r', '\n']) {
            format!("\"{}\"", text.replace('"', "\"\""))
        } else {
            text
        }
    }

    #[test]
    fn cells_match_the_plain_rule_for_every_mix_of_quotes_and_separators() {
        // Every string of up to five of these characters: quotes at the
        // start, the end, side by side, beside separators.
        let alphabet = ['"', 'a', ',', '=', '\n', 'é'];
        let mut strings = vec![String::new()];
        for _ in 0..5 {
            let longer: Vec<String> = strings
                .iter()
                .filter(|s| s.chars().count() == strings.last().map_or(0, |l| l.chars().count()))
                .flat_map(|s| alphabet.iter().map(move |c| format!("{s}{c}")))
                .collect();
            strings.extend(longer);
        }
        assert!(strings.len() > 9_000);
        for value in &strings {
            assert_eq!(csv_cell(value), reference_cell(value), "cell of {value:?}");
            // Appended after other bytes, as rows write their cells.
            let mut out = b"x,".to_vec();
            write_cell(value, &mut out);
            assert_eq!(out, format!("x,{}", reference_cell(value)).into_bytes());
        }
    }

    #[test]
    fn a_csv_row_reads_back_with_a_csv_parser() {
        let rec = record(tricky(), 7);
        let mut out = Vec::new();
        write_header(ExportFormat::Csv, &mut out).unwrap();
        write_row(ExportFormat::Csv, &rec, &mut out).unwrap();
        let mut reader = csv::ReaderBuilder::new().from_reader(&out[..]);
        let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
        assert_eq!(header, CSV_COLUMNS);
        let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
        assert_eq!(rows.len(), 1);
        let row: Vec<&str> = rows[0].iter().collect();
        assert_eq!(
            row,
            vec![
                "2026-11-25T14:03:07.123456Z",
                "7",
                "Test Case",
                "Update",
                "'+Checkout\r\nline two",
                "'-Web",
                "'\tv2",
                "'=HYPERLINK(\"x\")",
                "Ada, \"the\" Countess",
                "'@ada",
                "TC-1",
                "Ünïcödé ✓ 日本",
                r#"{"changes":[{"field":"title","new":"say \"hi\"\n","old":"a,b"}]}"#,
                "203.0.113.7",
                "Mozilla/5.0 (X11; Linux)",
                "e,1",
                &leaf::to_hex(&rec.leaf_hash),
            ]
        );
        let details: Value = serde_json::from_str(row[12]).unwrap();
        assert_eq!(details, tricky()["details"]);
        assert!(out.ends_with(b"\r\n"));
    }

    #[test]
    fn a_jsonl_row_is_the_api_json_of_the_event() {
        let rec = record(tricky(), 3);
        let mut out = Vec::new();
        write_header(ExportFormat::Jsonl, &mut out).unwrap();
        write_row(ExportFormat::Jsonl, &rec, &mut out).unwrap();
        assert_eq!(out.last(), Some(&b'\n'));
        let line: Value = serde_json::from_slice(&out[..out.len() - 1]).unwrap();
        assert_eq!(line["seq"], 3);
        assert_eq!(line["hash"], leaf::to_hex(&rec.leaf_hash));
        assert_eq!(line["details"], tricky()["details"]);
        assert_eq!(line["account"], "acme");
        assert_eq!(
            &out[..out.len() - 1],
            &api_json(&rec.leaf_bytes, &rec.leaf_hash)[..]
        );
    }

    /// Rows of the new writer against the previous one's (`format_oracle`),
    /// byte for byte, on events chosen to hit every special case.
    #[test]
    fn rows_are_byte_identical_to_the_previous_writer() {
        let events = [
            tricky(),
            // Missing optional members, and an empty `target` and `context`.
            json!({"event_type": "Authentication", "action": "Login", "actor": {"id": "u1"}}),
            json!({"event_type": "Element", "action": "Create", "actor": {"id": "u1", "email": "a@b.c"},
                   "target": {"name": "only a name"}, "context": {"request_id": "r-1"}}),
            // Numbers that RFC 8785 and serde_json print differently, and -0.
            json!({"event_type": "Element", "action": "Update", "actor": {"id": "u1"},
                   "details": {"big": 1e21, "tiny": 1e-7, "f": 0.1, "g": 4.35, "u": 18446744073709551615u64,
                               "beyond_2_53": 9007199254740993i64, "neg": -42, "zero": -0.0, "one": 1.0,
                               "list": [1.5e300, -2e-300, 123456789012345678u64]}}),
            // Member names RFC 8785 sorts differently (UTF-16) from serde_json (bytes),
            // escapes in names and values, control characters, unicode everywhere.
            json!({"event_type": "Element", "action": "Update", "actor": {"id": "ü-\u{1F600}", "name": "\u{2028}line"},
                   "project": "日本", "target": {"id": "@x", "name": "\u{feff}bom"},
                   "details": {"\u{feff}": 1, "\u{1F600}": 2, "a\"b": {"\u{fffd}": "\u{1}\u{1f}\u{7f}", "\u{10000}": [null, true]},
                               "x,y": "=1+1", "empty": {}, "list": []},
                   "context": {"ip": "::1", "user_agent": "-agent, \"quoted\"\r\n"}}),
            // Every cell that needs neutralising or quoting, and a cell of only a quote.
            json!({"id": "-1", "time": "2026-11-25T14:03:07Z", "event_type": "Test Case", "action": "Delete",
                   "actor": {"id": "\"", "name": "\r", "email": "\t"}, "project": "=", "app": "+", "version": "@",
                   "target": {"id": ",", "name": "\n"}, "details": {}}),
        ];
        let mut records: Vec<EventRecord> = events
            .into_iter()
            .enumerate()
            .map(|(i, event)| record(event, i as u64 + 1))
            .collect();
        // A store written before U+0000 was refused at ingest may hold it in
        // a leaf (escaped, as RFC 8785 writes it); such rows still export.
        let mut old = record(
            json!({"event_type": "Element", "action": "Update", "actor": {"id": "u-NUL-"},
                   "details": {"k-NUL-": "x-NUL-y"}}),
            records.len() as u64 + 1,
        );
        old.leaf_bytes = String::from_utf8(old.leaf_bytes)
            .unwrap()
            .replace("-NUL-", "\\u0000")
            .into_bytes();
        old.leaf_hash = leaf::leaf_hash(&old.leaf_bytes);
        records.push(old);
        for (i, rec) in records.iter().enumerate() {
            for format in [ExportFormat::Csv, ExportFormat::Jsonl] {
                let mut out = Vec::new();
                write_row(format, rec, &mut out).unwrap();
                let oracle = crate::exports::format_oracle::row(format, rec).unwrap();
                assert_eq!(
                    String::from_utf8(out).unwrap(),
                    String::from_utf8(oracle).unwrap(),
                    "event {i}, {format:?}"
                );
            }
        }
        let mut header = Vec::new();
        write_header(ExportFormat::Csv, &mut header).unwrap();
        let old_header: Vec<String> = CSV_COLUMNS.iter().map(|c| c.to_string()).collect();
        assert_eq!(header, format!("{}\r\n", old_header.join(",")).into_bytes());
    }

    #[test]
    fn an_unreadable_leaf_is_refused_naming_its_seq() {
        let mut rec = record(tricky(), 9);
        rec.leaf_bytes = b"{\"seq\":9".to_vec();
        let mut out = b"kept".to_vec();
        let e = write_row(ExportFormat::Csv, &rec, &mut out).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert!(
            e.to_string().starts_with("event seq 9 cannot be read back"),
            "{e}"
        );
        assert_eq!(out, b"kept", "nothing of the row is left behind");
        let good = record(tricky(), 9);
        let text = String::from_utf8(good.leaf_bytes.clone()).unwrap();
        rec.leaf_bytes = text
            .replacen("\"time\":\"2026", "\"time\":\"x026", 1)
            .into_bytes();
        let e = write_row(ExportFormat::Csv, &rec, &mut out).unwrap_err();
        assert!(e.to_string().contains("invalid time"), "{e}");
        assert!(crate::exports::format_oracle::row(ExportFormat::Csv, &rec).is_err());
    }

    #[test]
    fn optional_fields_are_empty_cells() {
        let rec = record(
            json!({"event_type": "Authentication", "action": "Login", "actor": {"id": "u1"}}),
            1,
        );
        let mut out = Vec::new();
        write_row(ExportFormat::Csv, &rec, &mut out).unwrap();
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .from_reader(&out[..]);
        let row = reader.records().next().unwrap().unwrap();
        assert_eq!(row.len(), 17);
        assert_eq!(&row[7], "u1");
        assert_eq!(&row[12], "");
        assert_eq!(&row[4], "");
    }

    /// A version 2 record (with its personal values beside the leaf, and
    /// with a declared personal `details` path) gives the same CSV row as
    /// the version 1 leaf of the same event, but for the hash, and its JSON
    /// Lines row is the API's opened event.
    #[test]
    fn a_v2_row_holds_the_plain_values() {
        use auditlog_core::leaf_v2::{seal, DetailsPath, OsSalts, Source};
        let v1 = record(tricky(), 9);
        let stored = StoredEvent::from_leaf_bytes(&v1.leaf_bytes).unwrap();
        for declared in [vec![], vec![DetailsPath::parse("details.changes").unwrap()]] {
            let sealed = seal(&stored, &Source::System, &declared, &mut OsSalts).unwrap();
            let v2 = EventRecord {
                seq: 9,
                time: v1.time,
                leaf_hash: leaf::leaf_hash(&sealed.leaf_bytes),
                leaf_bytes: sealed.leaf_bytes.clone(),
                personal: Some(sealed.personal.clone()),
            };
            let row = |r: &EventRecord| {
                let mut out = Vec::new();
                write_row(ExportFormat::Csv, r, &mut out).unwrap();
                String::from_utf8(out).unwrap()
            };
            let without_hash = |row: String| row.rsplit_once(',').unwrap().0.to_string();
            assert_eq!(
                without_hash(row(&v2)),
                without_hash(row(&v1)),
                "declared {declared:?}"
            );
            let mut jsonl = Vec::new();
            write_row(ExportFormat::Jsonl, &v2, &mut jsonl).unwrap();
            let served: Value = serde_json::from_slice(&jsonl).unwrap();
            assert_eq!(served["actor"]["name"], "Ada, \"the\" Countess");
            assert_eq!(served["details"], tricky()["details"]);
            assert_eq!(served["hash"], leaf::to_hex(&v2.leaf_hash));
        }
    }
}
