//! The export writer as it was before rows were written from a borrowed
//! read of the leaf: each leaf read back into a `StoredEvent` (a JSON tree
//! and a `String` per field), each cell a `String`. Kept, unchanged in what
//! it writes, as the oracle that `format` must match byte for byte (tests
//! and the `csv_writer` fuzz target only; never in a release build).

use auditlog_core::{leaf, StoredEvent};
use auditlog_store::{EventRecord, ExportFormat};
use serde_json::Value;

/// One row as the previous writer wrote it, or why it refused the event.
pub fn row(format: ExportFormat, record: &EventRecord) -> Result<Vec<u8>, String> {
    match format {
        ExportFormat::Jsonl => {
            // The previous `api_json`, spliced here as it was.
            let mut out = Vec::with_capacity(record.leaf_bytes.len() + 80);
            let body = record
                .leaf_bytes
                .strip_suffix(b"}")
                .unwrap_or(&record.leaf_bytes);
            out.extend_from_slice(body);
            out.extend_from_slice(b",\"hash\":\"");
            out.extend_from_slice(leaf::to_hex(&record.leaf_hash).as_bytes());
            out.extend_from_slice(b"\"}");
            out.push(b'\n');
            Ok(out)
        }
        ExportFormat::Bundle => Err("bundles are not rows".into()),
        ExportFormat::Csv => {
            let stored = StoredEvent::from_leaf_bytes(&record.leaf_bytes)
                .map_err(|e| format!("event seq {} cannot be read back: {e}", record.seq))?;
            let cells = csv_values(&stored, &leaf::to_hex(&record.leaf_hash));
            let line: Vec<String> = cells.iter().map(|c| csv_cell(c)).collect();
            let mut out = line.join(",").into_bytes();
            out.extend_from_slice(b"\r\n");
            Ok(out)
        }
    }
}

/// The raw values of one event in `CSV_COLUMNS` order, before quoting.
fn csv_values(stored: &StoredEvent, hash_hex: &str) -> [String; 17] {
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

fn csv_cell(value: &str) -> String {
    let value = neutralise(value);
    if value.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.into_owned()
    }
}

fn neutralise(value: &str) -> std::borrow::Cow<'_, str> {
    if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{value}").into()
    } else {
        value.into()
    }
}
