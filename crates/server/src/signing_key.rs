//! The log's Ed25519 signing key on disk: created on first start (mode 0600,
//! never overwritten) or supplied by the operator, in the C2SP signer-key
//! text form that Go's `note.NewSigner` also reads.

use auditlog_core::note::{NoteError, NoteSigner};
use std::path::{Path, PathBuf};

/// The file name of the key inside the data directory, when none is configured.
pub const DEFAULT_FILE: &str = "signing-key";
/// The file beside the key that remembers the last signed checkpoints.
pub const HEADS_FILE: &str = "signed-heads.json";
/// The file beside the key that remembers the last signed root checkpoint.
pub const ROOT_HEAD_FILE: &str = "signed-root.json";

/// Why the log's signing key could not be read or made.
#[derive(Debug, thiserror::Error)]
pub enum SigningKeyError {
    #[error("cannot read the signing key {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        cause: std::io::Error,
    },
    #[error("the signing key {} is not a signer key", path.display())]
    Malformed {
        path: PathBuf,
        #[source]
        cause: NoteError,
    },
    #[error("the OS random source failed")]
    Random(#[source] getrandom::Error),
    #[error("cannot make a signing key named {name:?}")]
    Name {
        name: String,
        #[source]
        cause: NoteError,
    },
    #[error("cannot create {}", path.display())]
    CreateDir {
        path: PathBuf,
        #[source]
        cause: std::io::Error,
    },
    #[error("cannot create the signing key {}", path.display())]
    Create {
        path: PathBuf,
        #[source]
        cause: std::io::Error,
    },
    #[error("cannot write the signing key {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        cause: std::io::Error,
    },
}

/// Reads the signer key at `path`, creating one named `name` if the file does
/// not exist yet.
pub fn load_or_create(path: &Path, name: &str) -> Result<NoteSigner, SigningKeyError> {
    match std::fs::read_to_string(path) {
        Ok(text) => parse(path, &text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => create(path, name),
        Err(cause) => Err(SigningKeyError::Read {
            path: path.to_path_buf(),
            cause,
        }),
    }
}

/// Reads an existing signer key.
pub fn load(path: &Path) -> Result<NoteSigner, SigningKeyError> {
    let text = std::fs::read_to_string(path).map_err(|cause| SigningKeyError::Read {
        path: path.to_path_buf(),
        cause,
    })?;
    parse(path, &text)
}

fn parse(path: &Path, text: &str) -> Result<NoteSigner, SigningKeyError> {
    NoteSigner::parse(text).map_err(|cause| SigningKeyError::Malformed {
        path: path.to_path_buf(),
        cause,
    })
}

fn create(path: &Path, name: &str) -> Result<NoteSigner, SigningKeyError> {
    use std::io::Write;
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(SigningKeyError::Random)?;
    let signer = NoteSigner::from_seed(name, seed).map_err(|cause| SigningKeyError::Name {
        name: name.to_string(),
        cause,
    })?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|cause| SigningKeyError::CreateDir {
            path: dir.to_path_buf(),
            cause,
        })?;
    }
    let mut options = std::fs::OpenOptions::new();
    // create_new: two processes starting at once must not overwrite each other's key.
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = match options.open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return load(path),
        Err(cause) => {
            return Err(SigningKeyError::Create {
                path: path.to_path_buf(),
                cause,
            })
        }
    };
    file.write_all(format!("{}\n", signer.to_secret_text()).as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|cause| SigningKeyError::Write {
            path: path.to_path_buf(),
            cause,
        })?;
    tracing::info!(path = %path.display(), key = %signer.verifier().to_text(), "created the log's signing key");
    Ok(signer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_once_with_owner_only_permissions_then_reads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(DEFAULT_FILE);
        let first = load_or_create(&path, "auditlog").unwrap();
        let again = load_or_create(&path, "auditlog").unwrap();
        assert_eq!(first.verifier(), again.verifier());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::write(&path, "garbage").unwrap();
        assert!(matches!(
            load_or_create(&path, "auditlog"),
            Err(SigningKeyError::Malformed { .. })
        ));
    }
}
