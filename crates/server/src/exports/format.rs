//! How one event becomes one row of an export file: CSV as SPEC.md fixes it
//! (RFC 4180, the column order, `details` as compact JSON, cells that a
//! spreadsheet would run as a formula neutralised with a leading `'`), or
//! JSON Lines with each event exactly as the API returns it.

use auditlog_core::event::api_json;
use auditlog_core::{leaf, StoredEvent};
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
            let cells: Vec<String> = CSV_COLUMNS.iter().map(|c| csv_cell(c)).collect();
            out.write_all(cells.join(",").as_bytes())?;
            out.write_all(CSV_LINE_END)
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

/// Writes one stored event as one row.
pub fn write_row(
    format: ExportFormat,
    record: &EventRecord,
    out: &mut impl Write,
) -> io::Result<()> {
    match format {
        ExportFormat::Jsonl => {
            out.write_all(&api_json(&record.leaf_bytes, &record.leaf_hash))?;
            out.write_all(b"\n")
        }
        ExportFormat::Bundle => Err(not_row_based()),
        ExportFormat::Csv => {
            let stored = StoredEvent::from_leaf_bytes(&record.leaf_bytes).map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("event seq {} cannot be read back: {e}", record.seq),
                )
            })?;
            let cells = csv_values(&stored, &leaf::to_hex(&record.leaf_hash));
            let line: Vec<String> = cells.iter().map(|c| csv_cell(c)).collect();
            out.write_all(line.join(",").as_bytes())?;
            out.write_all(CSV_LINE_END)
        }
    }
}

/// The raw values of one event in [`CSV_COLUMNS`] order, before quoting.
pub fn csv_values(stored: &StoredEvent, hash_hex: &str) -> [String; 17] {
    let e = stored.event();
    let text = |v: Option<&str>| v.unwrap_or_default().to_string();
    let actor = e.actor();
    let target = e.target();
    let context = e.context();
    let details = e
        .details()
        .map(|d| Value::Object(d.clone()).to_string())
        .unwrap_or_default();
    [
        e.time().to_rfc3339(),
        stored.seq().to_string(),
        e.event_type().to_string(),
        e.action().to_string(),
        text(e.project()),
        text(e.app()),
        text(e.version()),
        actor.id.clone(),
        text(actor.name.as_deref()),
        text(actor.email.as_deref()),
        text(target.and_then(|t| t.id.as_deref())),
        text(target.and_then(|t| t.name.as_deref())),
        details,
        text(context.and_then(|c| c.ip.as_deref())),
        text(context.and_then(|c| c.user_agent.as_deref())),
        e.id().to_string(),
        hash_hex.to_string(),
    ]
}

/// One CSV cell: neutralised against formula injection, then quoted as
/// RFC 4180 requires when it holds a comma, a quote or a line break.
pub fn csv_cell(value: &str) -> String {
    let value = neutralise(value);
    if value.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.into_owned()
    }
}

/// Spreadsheets run a cell that starts with one of these as a formula
/// (OWASP "CSV injection"); a leading `'` makes them show it as text.
fn neutralise(value: &str) -> std::borrow::Cow<'_, str> {
    if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{value}").into()
    } else {
        value.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use auditlog_core::{Taxonomy, Timestamp};
    use serde_json::json;

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
}
