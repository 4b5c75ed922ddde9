//! Renders `results.jsonl` as the Markdown tables of BENCHMARKS.md, every
//! Auditlog figure next to its baselines and the Auditlog ÷ baseline ratio.

use serde_json::Value;
use std::fmt::Write;

pub const INGEST_BATCH: &str = "HTTP batches of 500, 4 clients";
pub const INGEST_SINGLE: &str = "HTTP one event per request, 64 clients";
pub const ROWS_1: &str = "one INSERT per transaction, 1 client";
pub const ROWS_64: &str = "one INSERT per transaction, 64 clients";
pub const BATCHES: &str = "1,000-row transactions";
pub const COPY: &str = "COPY, one transaction";
pub const ONE_TXN: &str = "all rows in one transaction";
pub const EXPORT_ACCOUNT: &str = "whole account";
pub const EXPORT_PROJECT: &str = "one project";

struct Results<'a>(&'a [Value]);

impl Results<'_> {
    /// The last value recorded for the key.
    fn get(&self, section: &str, case: &str, system: &str, metric: &str) -> Option<f64> {
        self.0
            .iter()
            .rev()
            .find(|r| {
                r["section"] == section
                    && r["case"] == case
                    && r["system"] == system
                    && r["metric"] == metric
            })
            .and_then(|r| r["value"].as_f64())
    }

    fn cases(&self, section: &str) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for r in self.0.iter().filter(|r| r["section"] == section) {
            if let Some(case) = r["case"].as_str() {
                if !out.iter().any(|c| c == case) {
                    out.push(case.to_string());
                }
            }
        }
        out
    }
}

fn num(value: Option<f64>) -> String {
    match value {
        None => "–".into(),
        Some(v) if v.is_nan() => "–".into(),
        Some(v) if v >= 1_000.0 => group_thousands(v.round() as u64),
        Some(v) if v >= 100.0 => format!("{v:.0}"),
        Some(v) if v >= 10.0 => format!("{v:.1}"),
        Some(v) => format!("{v:.2}"),
    }
}

fn group_thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 && a.is_finite() && b.is_finite() => format!("{:.2}×", a / b),
        _ => "–".into(),
    }
}

fn verdict(ok: Option<bool>) -> &'static str {
    match ok {
        Some(true) => "met",
        Some(false) => "**missed**",
        None => "–",
    }
}

pub fn render(records: &[Value]) -> String {
    let r = Results(records);
    let events = records
        .iter()
        .filter_map(|r| r["events"].as_u64())
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Dataset: {} generated events (seed in the command line).\n",
        group_thousands(events)
    );

    // Ingest.
    let _ = writeln!(out, "### Durable ingest (events/s)\n");
    let _ = writeln!(out, "| system | mode | events loaded | events/s | compared with Auditlog | Auditlog ÷ baseline |");
    let _ = writeln!(out, "|---|---|---:|---:|---|---:|");
    let batch = r.get("ingest", INGEST_BATCH, "auditlog", "events_per_s");
    let single = r.get("ingest", INGEST_SINGLE, "auditlog", "events_per_s");
    for (case, _) in [(INGEST_BATCH, ()), (INGEST_SINGLE, ())] {
        let _ = writeln!(
            out,
            "| Auditlog | {case} | {} | {} | target {} | |",
            num(r.get("ingest", case, "auditlog", "events")),
            num(r.get("ingest", case, "auditlog", "events_per_s")),
            if case == INGEST_BATCH {
                "≥ 100,000/s"
            } else {
                "≥ 20,000/s"
            }
        );
    }
    for system in ["sqlite", "postgres"] {
        for case in [ROWS_1, ROWS_64, BATCHES, COPY, ONE_TXN] {
            let Some(rate) = r.get("ingest", case, system, "events_per_s") else {
                continue;
            };
            let (ours, against) = if case.starts_with("one INSERT") {
                (single, "one per request")
            } else {
                (batch, "batches of 500")
            };
            let _ = writeln!(
                out,
                "| {} | {case} | {} | {} | {against} | {} |",
                system_name(system),
                num(r.get("ingest", case, system, "events")),
                num(Some(rate)),
                ratio(ours, Some(rate))
            );
        }
    }
    let group = |case: &str| {
        let per_commit = r.get("ingest", case, "auditlog", "events_per_commit");
        let lingers = r.get("ingest", case, "auditlog", "lingers");
        match (per_commit, lingers) {
            (Some(p), Some(l)) => {
                format!("{p:.1} events per group commit ({} lingers)", num(Some(l)))
            }
            (Some(p), None) => format!("{p:.1} events per group commit"),
            _ => "group size not measured".to_string(),
        }
    };
    let _ = writeln!(
        out,
        "\nAuditlog's group commits: batches {}; one per request {}.",
        group(INGEST_BATCH),
        group(INGEST_SINGLE)
    );
    let _ = writeln!(
        out,
        "\nTargets: batches {} (≥ 100,000/s), one per request {} (≥ 20,000/s).\n",
        verdict(batch.map(|v| v >= 100_000.0)),
        verdict(single.map(|v| v >= 20_000.0))
    );

    // First pages.
    let _ = writeln!(out, "### First page of 50 (ms; Auditlog over HTTP keep-alive, PostgreSQL over localhost, SQLite in-process)\n");
    let _ = writeln!(out, "| filter | Auditlog p50 / p95 / p99 | SQLite p50 / p95 / p99 | PostgreSQL p50 / p95 / p99 | p95 ÷ SQLite | p95 ÷ PostgreSQL | p95 ≤ 2 ms |");
    let _ = writeln!(out, "|---|---|---|---|---:|---:|---|");
    for case in r.cases("page") {
        let triple = |system: &str| {
            format!(
                "{} / {} / {}",
                num(r.get("page", &case, system, "p50_ms")),
                num(r.get("page", &case, system, "p95_ms")),
                num(r.get("page", &case, system, "p99_ms"))
            )
        };
        let ours = r.get("page", &case, "auditlog", "p95_ms");
        let _ = writeln!(
            out,
            "| {case} | {} | {} | {} | {} | {} | {} |",
            triple("auditlog"),
            triple("sqlite"),
            triple("postgres"),
            ratio(ours, r.get("page", &case, "sqlite", "p95_ms")),
            ratio(ours, r.get("page", &case, "postgres", "p95_ms")),
            verdict(ours.map(|v| v <= 2.0))
        );
    }

    // Counts.
    let _ = writeln!(
        out,
        "\n### Total count and per-day histogram (ms, median of repeats)\n"
    );
    let _ = writeln!(out, "| filter | matching | Auditlog histogram (with total) | SQLite count(*) | SQLite per-day | PostgreSQL count(*) | PostgreSQL per-day | ÷ SQLite per-day | ÷ PostgreSQL per-day | ≤ 50 ms |");
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|");
    for case in r.cases("count") {
        let ours = r.get("count", &case, "auditlog", "histogram_ms");
        let totals: Vec<f64> = ["auditlog", "sqlite", "postgres"]
            .iter()
            .filter_map(|s| r.get("count", &case, s, "total"))
            .collect();
        let agree = totals.windows(2).all(|w| w[0] == w[1]);
        let _ = writeln!(
            out,
            "| {case} | {}{} | {} | {} | {} | {} | {} | {} | {} | {} |",
            num(totals.first().copied()),
            if agree { "" } else { " (**totals differ**)" },
            num(ours),
            num(r.get("count", &case, "sqlite", "count_ms")),
            num(r.get("count", &case, "sqlite", "histogram_ms")),
            num(r.get("count", &case, "postgres", "count_ms")),
            num(r.get("count", &case, "postgres", "histogram_ms")),
            ratio(ours, r.get("count", &case, "sqlite", "histogram_ms")),
            ratio(ours, r.get("count", &case, "postgres", "histogram_ms")),
            verdict(ours.map(|v| v <= 50.0))
        );
    }

    // Exports.
    let _ = writeln!(out, "\n### CSV export\n");
    let _ = writeln!(out, "| export | system | rows | rows/s | MB/s | server peak RSS (MiB) | Auditlog ÷ baseline (rows/s) | target |");
    let _ = writeln!(out, "|---|---|---:|---:|---:|---:|---:|---|");
    for (case, target) in [(EXPORT_ACCOUNT, 1_000_000.0), (EXPORT_PROJECT, 500_000.0)] {
        let ours = r.get("export", case, "auditlog", "rows_per_s");
        for system in ["auditlog", "sqlite", "postgres"] {
            let rate = r.get("export", case, system, "rows_per_s");
            if rate.is_none() && system != "auditlog" {
                continue;
            }
            let _ = writeln!(
                out,
                "| {case} | {} | {} | {} | {} | {} | {} | {} |",
                system_name(system),
                num(r.get("export", case, system, "rows")),
                num(rate),
                num(r.get("export", case, system, "mb_per_s")),
                num(r.get("export", case, system, "peak_rss_mib")),
                if system == "auditlog" {
                    String::new()
                } else {
                    ratio(ours, rate)
                },
                if system == "auditlog" {
                    format!(
                        "≥ {} rows/s: {}",
                        group_thousands(target as u64),
                        verdict(ours.map(|v| v >= target))
                    )
                } else {
                    String::new()
                }
            );
        }
    }

    // Verify and disk.
    let _ = writeln!(out, "\n### `auditlog verify`\n");
    let verify = r.get("verify", "whole store", "auditlog", "events_per_s");
    let _ = writeln!(
        out,
        "{} events/s over {} events (target ≥ 1,000,000/s: {}).\n",
        num(verify),
        num(r.get("verify", "whole store", "auditlog", "events")),
        verdict(verify.map(|v| v >= 1_000_000.0))
    );
    let _ = writeln!(out, "### Bytes on disk per event (indexes included)\n");
    let _ = writeln!(out, "| system | bytes/event | Auditlog ÷ baseline |");
    let _ = writeln!(out, "|---|---:|---:|");
    let ours = r.get("disk", "bytes per event", "auditlog", "bytes_per_event");
    for system in ["auditlog", "sqlite", "postgres"] {
        let value = r.get("disk", "bytes per event", system, "bytes_per_event");
        let _ = writeln!(
            out,
            "| {} | {} | {} |",
            system_name(system),
            num(value),
            if system == "auditlog" {
                format!("target ≤ 600: {}", verdict(ours.map(|v| v <= 600.0)))
            } else {
                ratio(ours, value)
            }
        );
    }
    render_send(&r, &mut out);
    render_streams(&r, &mut out);
    out
}

/// Log stream delivery (the `streams` scenario, when it ran).
fn render_streams(r: &Results, out: &mut String) {
    use crate::streams::*;
    let get = |case: &str, metric: &str| r.get(SECTION, case, "auditlog", metric);
    if get(INGEST_ALONE, "events_per_s").is_none() {
        return;
    }
    let _ = writeln!(
        out,
        "\n### Log stream delivery to a local webhook receiver\n"
    );
    let _ = writeln!(out, "| measured | events/s | notes |");
    let _ = writeln!(out, "|---|---:|---|");
    let _ = writeln!(
        out,
        "| {INGEST_ALONE} | {} | |",
        num(get(INGEST_ALONE, "events_per_s"))
    );
    let _ = writeln!(
        out,
        "| {INGEST_DELIVERING} | {} | cost to ingest: {} % |",
        num(get(INGEST_DELIVERING, "events_per_s")),
        num(get(INGEST_DELIVERING, "ingest_cost_pct"))
    );
    let _ = writeln!(
        out,
        "| {DELIVERY_DURING_INGEST} | {} | {} s behind when ingest ended; {} events per batch; {} duplicates |",
        num(get(DELIVERY_DURING_INGEST, "events_per_s")),
        num(get(DELIVERY_DURING_INGEST, "lag_after_ingest_s")),
        num(get(DELIVERY_DURING_INGEST, "events_per_batch")),
        num(get(DELIVERY_DURING_INGEST, "duplicates"))
    );
    let backlog = get(DELIVERY_BACKLOG, "events_per_s");
    let _ = writeln!(
        out,
        "| {DELIVERY_BACKLOG} | {} | target ≥ 50,000: {}; peak RSS {} MiB |",
        num(backlog),
        verdict(backlog.map(|v| v >= 50_000.0)),
        num(get(DELIVERY_BACKLOG, "peak_rss_mib"))
    );
    let _ = writeln!(
        out,
        "| {DELIVERY_ONE_STREAM} | {} | |",
        num(get(DELIVERY_ONE_STREAM, "events_per_s"))
    );
}

/// `auditlog send` beside HTTP batches of the same events (the `send`
/// scenario, when it ran).
fn render_send(r: &Results, out: &mut String) {
    use crate::send::{SEND_CLI, SEND_HTTP, SEND_RERUN};
    let http = r.get("send", SEND_HTTP, "auditlog", "events_per_s");
    if http.is_none() {
        return;
    }
    let cli = r.get("send", SEND_CLI, "auditlog", "events_per_s");
    let _ = writeln!(
        out,
        "\n### `auditlog send` (JSON Lines file, ids derived)\n"
    );
    let _ = writeln!(out, "| mode | events | events/s | ÷ HTTP batches |");
    let _ = writeln!(out, "|---|---:|---:|---:|");
    for (case, rate) in [(SEND_HTTP, http), (SEND_CLI, cli)] {
        let _ = writeln!(
            out,
            "| {case} | {} | {} | {} |",
            num(r.get("send", case, "auditlog", "events")),
            num(rate),
            ratio(rate, http)
        );
    }
    let rerun = r.get("send", SEND_RERUN, "auditlog", "events_per_s");
    let _ = writeln!(
        out,
        "| {SEND_RERUN} (killed at {} stored; {} found present) | {} | {} | {} |",
        num(r.get("send", SEND_RERUN, "auditlog", "events_at_kill")),
        num(r.get("send", SEND_RERUN, "auditlog", "already_present")),
        num(r.get("send", SEND_RERUN, "auditlog", "events_after")),
        num(rerun),
        ratio(rerun, http)
    );
    let _ = writeln!(
        out,
        "\nTarget: `auditlog send` within 10 % of HTTP batches: {}.",
        verdict(cli.zip(http).map(|(c, h)| c >= 0.9 * h))
    );
}

fn system_name(system: &str) -> &'static str {
    match system {
        "auditlog" => "Auditlog",
        "sqlite" => "SQLite table",
        "postgres" => "PostgreSQL table",
        _ => "?",
    }
}
