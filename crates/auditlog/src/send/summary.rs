//! The tally of a run and the report printed at its end: how many lines
//! were stored, already present (an earlier run or attempt stored them) or
//! rejected, each rejected line with its number and reason.

use super::lines::Rejection;
use super::post::Outcome;

#[derive(Debug, Default)]
pub struct Summary {
    /// Lines read that were not blank.
    pub lines: u64,
    pub stored: u64,
    pub present: u64,
    pub rejected: Vec<Rejection>,
    /// Requests sent again after a connection error, 429 or 503.
    pub retries: u64,
}

/// The run finished but some lines were rejected: exit code 2, so that a
/// script can tell it from a run that stopped (1).
#[derive(Debug, thiserror::Error)]
#[error("{count} of {lines} lines were rejected (listed above with their line numbers); the others are stored")]
pub struct LinesRejected {
    pub count: usize,
    pub lines: u64,
}

impl Summary {
    pub fn add(&mut self, outcome: Outcome) {
        self.stored += outcome.stored;
        self.present += outcome.present;
        self.retries += outcome.retries;
        self.rejected.extend(outcome.rejected);
    }

    /// One line for the progress bar.
    pub fn progress(&self) -> String {
        format!(
            "{} stored, {} already present, {} rejected",
            self.stored,
            self.present,
            self.rejected.len()
        )
    }

    /// The report: rejected lines in line order, then the counts.
    pub fn render(&mut self, source: &str, namespace: &str) -> String {
        self.rejected.sort_by_key(|r| r.line);
        let mut out = String::new();
        for rejection in &self.rejected {
            out.push_str(&format!(
                "line {}: rejected: {}\n",
                rejection.line, rejection.reason
            ));
        }
        out.push_str(&format!(
            "{source}: {} lines (namespace of derived ids: {namespace})\n\
             stored: {}\n\
             already present: {}\n\
             rejected: {}\n",
            self.lines,
            self.stored,
            self.present,
            self.rejected.len()
        ));
        if self.retries > 0 {
            out.push_str(&format!("retried requests: {}\n", self.retries));
        }
        out
    }

    /// `Err` when any line was rejected.
    pub fn verdict(&self) -> Result<(), LinesRejected> {
        if self.rejected.is_empty() {
            Ok(())
        } else {
            Err(LinesRejected {
                count: self.rejected.len(),
                lines: self.lines,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_lists_rejections_in_line_order_then_the_counts() {
        let mut summary = Summary {
            lines: 5,
            ..Summary::default()
        };
        summary.add(Outcome {
            stored: 2,
            present: 1,
            rejected: vec![Rejection {
                line: 4,
                reason: "actor.id is required".into(),
            }],
            retries: 0,
        });
        summary.rejected.push(Rejection {
            line: 2,
            reason: "not a JSON object".into(),
        });
        let text = summary.render("events.jsonl", "ns");
        assert_eq!(
            text,
            "line 2: rejected: not a JSON object\n\
             line 4: rejected: actor.id is required\n\
             events.jsonl: 5 lines (namespace of derived ids: ns)\n\
             stored: 2\nalready present: 1\nrejected: 2\n"
        );
        assert_eq!(summary.verdict().unwrap_err().count, 2);
        assert!(Summary::default().verdict().is_ok());
    }
}
