//! What the monitor reports when the log misbehaves: evidence, not an
//! error to retry. An alarm names the checkpoints involved and carries
//! their signed notes, so that a third party holding the log's verifier
//! key can check the claim without trusting the monitor.

use std::fmt;

/// The ways a log can be caught out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlarmKind {
    /// The log served a smaller tree than one it signed before.
    Rollback,
    /// Two checkpoints of the same size with different roots.
    Fork,
    /// A checkpoint that the pinned key did not sign, or for another log.
    BadSignature,
    /// A consistency or inclusion proof that does not verify.
    BadProof,
    /// An event the customer recorded that the log no longer has.
    MissingEvent,
}

impl AlarmKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rollback => "rollback",
            Self::Fork => "fork",
            Self::BadSignature => "bad signature",
            Self::BadProof => "bad proof",
            Self::MissingEvent => "missing event",
        }
    }
}

/// One signed note kept as evidence, with what it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evidence {
    pub label: String,
    pub note: String,
}

/// Evidence that the log broke its append-only promise (or that the
/// monitor was pointed at another log): the run stops with exit code 3.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alarm {
    pub kind: AlarmKind,
    /// One line naming what was compared (sizes, roots, the event id).
    pub summary: String,
    pub evidence: Vec<Evidence>,
}

impl Alarm {
    pub fn new(kind: AlarmKind, summary: impl Into<String>) -> Self {
        Self {
            kind,
            summary: summary.into(),
            evidence: Vec::new(),
        }
    }

    pub fn with(mut self, label: impl Into<String>, note: &str) -> Self {
        self.evidence.push(Evidence {
            label: label.into(),
            note: note.to_string(),
        });
        self
    }

    /// The whole report: the summary, then each signed note verbatim
    /// between marker lines (a note ends with a newline).
    pub fn report(&self) -> String {
        let mut report = format!("ALARM: {self}\n");
        for evidence in &self.evidence {
            report.push_str(&format!(
                "\n----- {} -----\n{}----- end -----\n",
                evidence.label, evidence.note
            ));
        }
        report
    }
}

impl fmt::Display for Alarm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.as_str(), self.summary)
    }
}

impl std::error::Error for Alarm {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_names_the_kind_and_keeps_each_note_verbatim() {
        let alarm = Alarm::new(AlarmKind::Fork, "size 3 has two roots")
            .with("remembered", "a\n3\nAA==\n\n— k x\n")
            .with("served", "a\n3\nAQ==\n\n— k y\n");
        let report = alarm.report();
        assert!(report.starts_with("ALARM: fork: size 3 has two roots\n"));
        assert!(report.contains("----- remembered -----\na\n3\nAA==\n\n— k x\n----- end -----"));
        assert!(report.contains("----- served -----\na\n3\nAQ==\n\n— k y\n----- end -----"));
    }
}
