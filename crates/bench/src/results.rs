//! Measured figures: each is one JSON line in `<work-dir>/results.jsonl`
//! (appended as scenarios finish, so a partial run keeps what it measured),
//! and the percentile helper every latency figure goes through.

use crate::error::BenchResult;
use serde_json::{json, Value};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// One figure: `section` (ingest, page, count, export, verify, disk), `case`
/// (what was measured, e.g. a filter combination), `system` (auditlog,
/// sqlite, postgres), `metric` and its value.
pub struct Recorder {
    path: PathBuf,
    events: usize,
}

impl Recorder {
    pub fn new(work_dir: &Path, events: usize) -> Self {
        Self {
            path: work_dir.join("results.jsonl"),
            events,
        }
    }

    pub fn record(
        &self,
        section: &str,
        case: &str,
        system: &str,
        metric: &str,
        value: f64,
    ) -> BenchResult<()> {
        println!("{section:8} {system:9} {case:32} {metric:12} {value:>14.3}");
        let line = json!({
            "section": section, "case": case, "system": system,
            "metric": metric, "value": value, "events": self.events,
        });
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        writeln!(file, "{line}")?;
        Ok(())
    }

    /// p50, p95 and p99 in milliseconds.
    pub fn latencies(
        &self,
        section: &str,
        case: &str,
        system: &str,
        samples: &mut [Duration],
    ) -> BenchResult<()> {
        for (metric, q) in [("p50_ms", 0.50), ("p95_ms", 0.95), ("p99_ms", 0.99)] {
            self.record(section, case, system, metric, percentile_ms(samples, q))?;
        }
        Ok(())
    }
}

/// The `q` quantile (nearest rank) in milliseconds.
pub fn percentile_ms(samples: &mut [Duration], q: f64) -> f64 {
    if samples.is_empty() {
        return f64::NAN;
    }
    samples.sort_unstable();
    let rank = ((q * samples.len() as f64).ceil() as usize).clamp(1, samples.len());
    samples[rank - 1].as_secs_f64() * 1_000.0
}

/// Every record of a results file, the last value winning for a repeated key.
pub fn load(path: &Path) -> BenchResult<Vec<Value>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    Ok(text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let mut samples: Vec<Duration> = (1..=100).rev().map(Duration::from_millis).collect();
        assert_eq!(percentile_ms(&mut samples, 0.50), 50.0);
        assert_eq!(percentile_ms(&mut samples, 0.95), 95.0);
        assert_eq!(percentile_ms(&mut samples, 0.99), 99.0);
        assert!(percentile_ms(&mut [], 0.5).is_nan());
    }
}
