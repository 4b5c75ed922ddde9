//! The `--logs` file: the logs this witness cosigns, each known by its
//! origin line, with the verifier keys it trusts for that origin (a
//! checkpoint needs a valid signature by one of them). TOML, one `[[log]]`
//! table per log:
//!
//! ```toml
//! [[log]]
//! origin = "auditlog.example.com"
//! keys = ["auditlog.example.com+1a2b3c4d+AT…"]
//! ```
//!
//! Several keys for one origin let a log rotate its key: the witness
//! accepts either while both are listed. docs/WITNESS.md is the reference.

use auditlog_core::note::NoteVerifier;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum LogsError {
    #[error("cannot read the logs file {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        cause: std::io::Error,
    },
    #[error("the logs file {}: {message}", path.display())]
    Invalid { path: PathBuf, message: String },
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct LogsFile {
    #[serde(default)]
    log: Vec<LogEntry>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct LogEntry {
    origin: String,
    keys: Vec<String>,
}

/// The logs a witness knows, by origin.
#[derive(Debug, Clone, Default)]
pub struct Logs {
    by_origin: HashMap<String, Vec<NoteVerifier>>,
}

impl Logs {
    /// Reads and checks the logs file at `path`.
    pub fn load(path: &Path) -> Result<Self, LogsError> {
        let text = std::fs::read_to_string(path).map_err(|cause| LogsError::Read {
            path: path.to_path_buf(),
            cause,
        })?;
        Self::parse(&text).map_err(|message| LogsError::Invalid {
            path: path.to_path_buf(),
            message,
        })
    }

    /// Parses the file's text; the error names the entry and field at fault.
    pub fn parse(text: &str) -> Result<Self, String> {
        let file: LogsFile = toml::from_str(text).map_err(|e| e.to_string())?;
        if file.log.is_empty() {
            return Err("no [[log]] table: the witness would cosign nothing".into());
        }
        let mut by_origin = HashMap::new();
        for (index, entry) in file.log.into_iter().enumerate() {
            let at = format!("log[{index}]");
            let origin = entry.origin;
            if origin.is_empty() || origin.chars().any(char::is_control) {
                return Err(format!(
                    "{at}.origin: must be a non-empty line without control characters"
                ));
            }
            if entry.keys.is_empty() {
                return Err(format!("{at}.keys: list at least one verifier key"));
            }
            let keys = entry
                .keys
                .iter()
                .enumerate()
                .map(|(k, key)| {
                    NoteVerifier::parse(key).map_err(|e| format!("{at}.keys[{k}]: {e}"))
                })
                .collect::<Result<Vec<_>, _>>()?;
            if by_origin.insert(origin.clone(), keys).is_some() {
                return Err(format!(
                    "{at}.origin: {origin:?} is listed twice (list its keys in one entry)"
                ));
            }
        }
        Ok(Self { by_origin })
    }

    /// The keys trusted for `origin`, or `None` if this witness does not know it.
    pub fn keys(&self, origin: &str) -> Option<&[NoteVerifier]> {
        self.by_origin.get(origin).map(Vec::as_slice)
    }

    /// The known origins, sorted (for the start-up log line).
    pub fn origins(&self) -> Vec<&str> {
        let mut origins: Vec<&str> = self.by_origin.keys().map(String::as_str).collect();
        origins.sort_unstable();
        origins
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use auditlog_core::note::NoteSigner;

    fn key(name: &str, seed: u8) -> String {
        NoteSigner::from_seed(name, [seed; 32])
            .unwrap()
            .verifier()
            .to_text()
    }

    #[test]
    fn reads_logs_with_one_or_more_keys() {
        let text = format!(
            "# comment\n[[log]]\norigin = \"a.example\"\nkeys = [\"{}\"]\n\n[[log]]\norigin = \"b.example/x\"\nkeys = [\"{}\", \"{}\"]\n",
            key("a.example", 1),
            key("b.example/x", 2),
            key("b.example/x", 3)
        );
        let logs = Logs::parse(&text).unwrap();
        assert_eq!(logs.origins(), ["a.example", "b.example/x"]);
        assert_eq!(logs.keys("a.example").unwrap().len(), 1);
        assert_eq!(logs.keys("b.example/x").unwrap().len(), 2);
        assert!(logs.keys("c.example").is_none());
    }

    #[test]
    fn errors_name_the_entry_and_the_field() {
        let good = key("a.example", 1);
        let cases = [
            ("", "no [[log]]"),
            ("[[log]]\norigin = \"a\"\nkeys = []\n", "log[0].keys"),
            (
                "[[log]]\norigin = \"a\"\nkeys = [\"nonsense\"]\n",
                "log[0].keys[0]",
            ),
            (
                &format!("[[log]]\norigin = \"\"\nkeys = [\"{good}\"]\n"),
                "log[0].origin",
            ),
            (
                &format!("[[log]]\norigin = \"a\"\nkeys = [\"{good}\"]\n[[log]]\norigin = \"a\"\nkeys = [\"{good}\"]\n"),
                "log[1].origin",
            ),
            (
                &format!("[[log]]\norigin = \"a\"\nkey = [\"{good}\"]\n"),
                "unknown field `key`",
            ),
            ("[[log]]\nkeys = []\n", "missing field `origin`"),
        ];
        for (text, expected) in cases {
            let err = Logs::parse(text).unwrap_err();
            assert!(err.contains(expected), "{text:?}: {err}");
        }
    }
}
