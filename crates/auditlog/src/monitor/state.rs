//! The state file: the last checkpoint the monitor verified, as the signed
//! note itself, so that it is evidence anyone can check with the log's
//! verifier key. Replaced atomically (temporary file, fsync, rename, fsync
//! of the directory): a crash leaves the old note or the new one, never a
//! torn one, and never forgets a checkpoint once the round reported it.

use super::alarm::Alarm;
use super::check::{self, Verified};
use anyhow::{anyhow, Context};
use auditlog_core::note::NoteVerifier;
use std::fs::File;
use std::io::Write;
use std::path::Path;

/// The remembered checkpoint, or `None` when the file does not exist yet.
/// A note that does not verify is refused: with the wrong `--vkey` or a
/// state file of another log, comparing would prove nothing.
pub fn load(
    path: &Path,
    verifiers: &[NoteVerifier],
    origin: &str,
) -> anyhow::Result<Option<Verified>> {
    let note = match std::fs::read_to_string(path) {
        Ok(note) => note,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(e).with_context(|| format!("cannot read the state file {}", path.display()))
        }
    };
    check::open(&note, verifiers, origin, "state file's checkpoint")
        .map(Some)
        .map_err(|alarm: Alarm| {
            anyhow!(
                "--state {}: {} (delete the file only if you mean to start over)",
                path.display(),
                alarm.summary
            )
        })
}

/// Replaces the state file with `checkpoint`'s signed note.
pub fn save(path: &Path, checkpoint: &Verified) -> anyhow::Result<()> {
    let name = path
        .file_name()
        .ok_or_else(|| anyhow!("--state {}: not a file name", path.display()))?;
    let mut temp_name = std::ffi::OsString::from(".");
    temp_name.push(name);
    temp_name.push(".tmp");
    let temp = path.with_file_name(temp_name);
    let directory = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let write = || -> std::io::Result<()> {
        let mut file = File::create(&temp)?;
        file.write_all(checkpoint.note.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&temp, path)?;
        // The rename itself is durable only once the directory is.
        File::open(directory)?.sync_all()
    };
    write().with_context(|| format!("cannot write the state file {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use auditlog_core::checkpoint::Checkpoint;
    use auditlog_core::note::NoteSigner;

    #[test]
    fn saves_reads_back_and_refuses_another_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("monitor.state");
        let signer = NoteSigner::from_seed("auditlog", [4; 32]).unwrap();
        let origin = "auditlog/acme";
        assert!(load(&path, &[signer.verifier()], origin).unwrap().is_none());
        let note = Checkpoint {
            origin: origin.into(),
            size: 9,
            root: [1; 32],
        }
        .sign(&signer)
        .unwrap();
        let verified = check::open(&note, &[signer.verifier()], origin, "test").unwrap();
        save(&path, &verified).unwrap();
        save(&path, &verified).unwrap();
        assert_eq!(
            load(&path, &[signer.verifier()], origin).unwrap(),
            Some(verified)
        );
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        let other = NoteSigner::from_seed("auditlog", [5; 32]).unwrap();
        let error = load(&path, &[other.verifier()], origin).unwrap_err();
        assert!(error.to_string().contains("--state"), "{error}");
    }
}
