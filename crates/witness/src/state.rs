//! The witness's memory: for each origin, the signed checkpoint it last
//! cosigned, in a file of its own named by the SHA-256 of the origin
//! (`<64 hex>.checkpoint`, the note exactly as the log sent it, so that an
//! operator can read it and show it as evidence).
//!
//! Durability is the whole point: a witness that forgets would cosign a
//! rolled-back or forked checkpoint after a restart. A file is replaced by
//! writing a temporary file, fsync, rename over the old one, fsync of the
//! directory; the answer with the cosignature is sent only after that. A
//! crash leaves the old file or the new one, never a mix, and the new one
//! was either cosigned or at least checked consistent with the old one.
//! A state that cannot be read stops the witness from starting rather than
//! letting it start blank. An exclusive lock on `lock` keeps a second
//! witness process off the same directory (the OS drops it with the process).

use auditlog_core::checkpoint::Checkpoint;
use auditlog_core::witness::WitnessedHead;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

const EXTENSION: &str = "checkpoint";
const TEMP_EXTENSION: &str = "tmp";
const LOCK_FILE: &str = "lock";

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot use the state directory {}", path.display())]
    Directory {
        path: PathBuf,
        #[source]
        cause: std::io::Error,
    },
    #[error("another witness process is using the state directory {}", path.display())]
    Locked { path: PathBuf },
    #[error("the state file {} is unreadable: {why}; refusing to start without knowing what was cosigned", path.display())]
    Corrupt { path: PathBuf, why: String },
    #[error("cannot store the state file {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        cause: std::io::Error,
    },
}

/// The state directory, locked for this process.
#[derive(Debug)]
pub struct StateDir {
    dir: PathBuf,
    /// Held for the process's lifetime: the lock lives as long as the handle.
    _lock: File,
}

/// The file name of an origin's state.
fn file_name(origin: &str) -> String {
    let digest = Sha256::digest(origin.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("{hex}.{EXTENSION}")
}

/// The checkpoint a stored note carries (its text, before the blank line).
fn parse_note(note: &str) -> Result<Checkpoint, String> {
    let end = note
        .find("\n\n")
        .ok_or("no blank line after the checkpoint")?;
    Checkpoint::parse(&note[..=end]).map_err(|e| e.to_string())
}

impl StateDir {
    /// Opens (creating it if needed) and locks `dir`, removes temporary
    /// files of an interrupted write, and reads every origin's head.
    pub fn open(dir: &Path) -> Result<(Self, HashMap<String, WitnessedHead>), StateError> {
        let dir_error = |cause| StateError::Directory {
            path: dir.to_path_buf(),
            cause,
        };
        std::fs::create_dir_all(dir).map_err(dir_error)?;
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(LOCK_FILE))
            .map_err(dir_error)?;
        if lock.try_lock().is_err() {
            return Err(StateError::Locked {
                path: dir.to_path_buf(),
            });
        }
        let mut heads = HashMap::new();
        for entry in std::fs::read_dir(dir).map_err(dir_error)? {
            let path = entry.map_err(dir_error)?.path();
            match path.extension().and_then(|e| e.to_str()) {
                Some(TEMP_EXTENSION) => {
                    // Never renamed into place: its request got no cosignature.
                    std::fs::remove_file(&path).map_err(dir_error)?;
                }
                Some(EXTENSION) => {
                    let corrupt = |why: String| StateError::Corrupt {
                        path: path.clone(),
                        why,
                    };
                    let note =
                        std::fs::read_to_string(&path).map_err(|e| corrupt(e.to_string()))?;
                    let checkpoint = parse_note(&note).map_err(corrupt)?;
                    let expected = file_name(&checkpoint.origin);
                    if path.file_name().and_then(|n| n.to_str()) != Some(expected.as_str()) {
                        return Err(corrupt(format!(
                            "it holds origin {:?}, whose file is {expected}",
                            checkpoint.origin
                        )));
                    }
                    heads.insert(
                        checkpoint.origin,
                        WitnessedHead {
                            size: checkpoint.size,
                            root: checkpoint.root,
                        },
                    );
                }
                _ => {}
            }
        }
        Ok((
            Self {
                dir: dir.to_path_buf(),
                _lock: lock,
            },
            heads,
        ))
    }

    /// Replaces `origin`'s state with `note` (the signed checkpoint about to
    /// be cosigned), durably, before returning. Blocking: call it off the
    /// async threads.
    pub fn save(&self, origin: &str, note: &str) -> Result<(), StateError> {
        let path = self.dir.join(file_name(origin));
        let temp = path.with_extension(TEMP_EXTENSION);
        let write = || -> std::io::Result<()> {
            let mut file = File::create(&temp)?;
            file.write_all(note.as_bytes())?;
            file.sync_all()?;
            std::fs::rename(&temp, &path)?;
            // The rename itself is durable only once the directory is.
            File::open(&self.dir)?.sync_all()
        };
        write().map_err(|cause| {
            let _ = std::fs::remove_file(&temp);
            StateError::Write {
                path: path.clone(),
                cause,
            }
        })
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use auditlog_core::note::NoteSigner;

    fn note(origin: &str, size: u64, root: u8) -> String {
        let signer = NoteSigner::from_seed("log", [1; 32]).unwrap();
        Checkpoint {
            origin: origin.into(),
            size,
            root: [root; 32],
        }
        .sign(&signer)
        .unwrap()
    }

    #[test]
    fn saves_and_reads_back_each_origin() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (state, heads) = StateDir::open(dir.path()).unwrap();
            assert!(heads.is_empty());
            state
                .save("a.example/log", &note("a.example/log", 3, 1))
                .unwrap();
            state.save("b.example", &note("b.example", 9, 2)).unwrap();
            state
                .save("a.example/log", &note("a.example/log", 5, 3))
                .unwrap();
        }
        // A leftover temporary file of an interrupted write is removed.
        std::fs::write(dir.path().join("x.tmp"), "half").unwrap();
        let (_state, heads) = StateDir::open(dir.path()).unwrap();
        assert_eq!(
            heads["a.example/log"],
            WitnessedHead {
                size: 5,
                root: [3; 32]
            }
        );
        assert_eq!(heads["b.example"].size, 9);
        assert_eq!(heads.len(), 2);
        assert!(!dir.path().join("x.tmp").exists());
    }

    #[test]
    fn a_second_process_and_corrupt_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (state, _) = StateDir::open(dir.path()).unwrap();
        assert!(matches!(
            StateDir::open(dir.path()),
            Err(StateError::Locked { .. })
        ));
        state.save("a", &note("a", 1, 1)).unwrap();
        drop(state);

        let file = dir.path().join(file_name("a"));
        std::fs::write(&file, "garbage").unwrap();
        let err = StateDir::open(dir.path()).unwrap_err();
        assert!(matches!(err, StateError::Corrupt { .. }), "{err}");

        // A file moved to another origin's name is refused too.
        std::fs::write(&file, note("b", 1, 1)).unwrap();
        let err = StateDir::open(dir.path()).unwrap_err();
        assert!(err.to_string().contains("holds origin \"b\""), "{err}");
    }
}
