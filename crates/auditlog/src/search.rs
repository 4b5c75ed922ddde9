//! `auditlog search`: an operator searches an account's events with the
//! query language of `q` (SPEC "Search", docs/SEARCH.md), on the store
//! directly like the other commands, newest first, as a table, JSON Lines
//! (the API's event JSON) or CSV (the export's columns).

use crate::admin::find_account;
use crate::cli::SearchCommand;
use crate::error::CliResult;
use anyhow::{anyhow, bail, Context};
use auditlog_core::filter::{parse_query, FilterError};
use auditlog_core::EventFilter;
use auditlog_server::exports::format::{write_header, write_row};
use auditlog_store::{EventRecord, ExportFormat, Store};
use std::io::Write;
use std::sync::Arc;

/// Most events one run prints.
const MAX_LIMIT: usize = 100_000;

pub async fn run(store: Arc<dyn Store>, command: SearchCommand) -> CliResult {
    let account = find_account(store.as_ref(), &command.account).await?;
    if !(1..=MAX_LIMIT).contains(&command.limit) {
        bail!(
            "--limit must be from 1 to {MAX_LIMIT}; got {}",
            command.limit
        );
    }
    let query = parse_query(Some(&command.query), command.tz.as_deref()).map_err(|e| match e {
        // Where the query goes wrong, under it, as the API's 400 says.
        FilterError::Query(q) => {
            let marker: String = " ".repeat(q.position);
            anyhow!(
                "{}\n  {}\n  {marker}^ expected {}",
                q,
                command.query,
                q.expected
            )
        }
        FilterError::Field(f) => anyhow!("--{}: {}", f.field, f.message),
    })?;
    let filter = EventFilter {
        query,
        ..Default::default()
    };
    let mut records: Vec<EventRecord> = Vec::new();
    let mut cursor = None;
    while records.len() < command.limit {
        let want = (command.limit - records.len()).min(1_000);
        let page = store.query(account.id, &filter, cursor, want).await?;
        records.extend(page.events);
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    let mut out = Vec::new();
    match command.format.as_str() {
        "jsonl" | "csv" => {
            let format = ExportFormat::parse(&command.format)
                .ok_or_else(|| anyhow!("--format {:?} is not supported", command.format))?;
            write_header(format, &mut out)?;
            for record in &records {
                write_row(format, record, &mut out)?;
            }
        }
        "table" => table(&records, &mut out)?,
        other => bail!("--format {other:?} is not supported; use table, jsonl or csv"),
    }
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(&out)
        .and_then(|()| stdout.flush())
        .context("cannot write to standard output")?;
    Ok(())
}

/// One line per event: time, seq, type, action, user, project, target, id.
fn table(records: &[EventRecord], out: &mut Vec<u8>) -> CliResult {
    let mut rows = vec![[
        "time",
        "seq",
        "event_type",
        "action",
        "user",
        "project",
        "target",
        "id",
    ]
    .map(String::from)];
    for record in records {
        let stored = record
            .stored()
            .stored_event()
            .map_err(|e| anyhow!("event seq {} cannot be read: {e}", record.seq))?;
        let event = stored.event();
        rows.push([
            event.time().to_rfc3339(),
            record.seq.to_string(),
            event.event_type().to_string(),
            event.action().to_string(),
            event.actor().id.clone(),
            event.project().unwrap_or_default().to_string(),
            event
                .target()
                .and_then(|t| t.id.clone())
                .unwrap_or_default(),
            event.id().to_string(),
        ]);
    }
    let mut widths = [0usize; 8];
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    for row in &rows {
        let cells: Vec<String> = row
            .iter()
            .zip(widths)
            // Control characters would break the table (and the terminal).
            .map(|(cell, width)| {
                let clean: String = cell
                    .chars()
                    .map(|c| if c.is_control() { ' ' } else { c })
                    .collect();
                format!("{clean:<width$}")
            })
            .collect();
        writeln!(out, "{}", cells.join("  ").trim_end())?;
    }
    Ok(())
}
