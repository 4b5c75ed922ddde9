//! The witness's private key on disk: `PRIVATE+KEY+<name>+<hex key id>+<base64(0x04 ‖ seed)>`
//! (the signed-note signer-key form with the cosignature algorithm byte),
//! one line, mode 0600. Created once by `auditlog witness key create`, which
//! never overwrites a key: a witness that lost its key is a new witness.

use auditlog_core::cosignature::CosignatureSigner;
use auditlog_core::note::NoteError;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error("cannot read the witness key {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        cause: std::io::Error,
    },
    #[error("the witness key {} is not a cosigner key", path.display())]
    Malformed {
        path: PathBuf,
        #[source]
        cause: NoteError,
    },
    #[error("cannot name a witness key {name:?}")]
    Name {
        name: String,
        #[source]
        cause: NoteError,
    },
    #[error("the OS random source failed")]
    Random(#[source] getrandom::Error),
    #[error("{} already exists; a witness key is never overwritten", path.display())]
    Exists { path: PathBuf },
    #[error("cannot write the witness key {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        cause: std::io::Error,
    },
}

/// Reads the witness key at `path`.
pub fn load(path: &Path) -> Result<CosignatureSigner, KeyFileError> {
    let text = std::fs::read_to_string(path).map_err(|cause| KeyFileError::Read {
        path: path.to_path_buf(),
        cause,
    })?;
    CosignatureSigner::parse(&text).map_err(|cause| KeyFileError::Malformed {
        path: path.to_path_buf(),
        cause,
    })
}

/// Creates a new key named `name` at `path` (which must not exist yet).
pub fn create(path: &Path, name: &str) -> Result<CosignatureSigner, KeyFileError> {
    use std::io::Write;
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(KeyFileError::Random)?;
    let signer = CosignatureSigner::from_seed(name, seed).map_err(|cause| KeyFileError::Name {
        name: name.to_string(),
        cause,
    })?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let write_error = |cause| KeyFileError::Write {
        path: path.to_path_buf(),
        cause,
    };
    let mut file = match options.open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(KeyFileError::Exists {
                path: path.to_path_buf(),
            })
        }
        Err(cause) => return Err(write_error(cause)),
    };
    let written = file
        .write_all(format!("{}\n", signer.to_secret_text()).as_bytes())
        .and_then(|()| file.sync_all());
    if let Err(cause) = written {
        // A half-written key must not be found by the next attempt.
        let _ = std::fs::remove_file(path);
        return Err(write_error(cause));
    }
    Ok(signer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_once_and_loads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("witness-key");
        let created = create(&path, "witness.example/w1").unwrap();
        assert_eq!(load(&path).unwrap().verifier(), created.verifier());
        assert!(matches!(
            create(&path, "witness.example/w1"),
            Err(KeyFileError::Exists { .. })
        ));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(matches!(
            create(&dir.path().join("other"), "no spaces allowed"),
            Err(KeyFileError::Name { .. })
        ));
        std::fs::write(dir.path().join("bad"), "PRIVATE+KEY+x+00000000+AQ==\n").unwrap();
        assert!(matches!(
            load(&dir.path().join("bad")),
            Err(KeyFileError::Malformed { .. })
        ));
    }
}
