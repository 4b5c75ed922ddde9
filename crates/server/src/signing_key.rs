//! The log's Ed25519 signing key on disk: created on first start (mode 0600,
//! never overwritten) or supplied by the operator, in the C2SP signer-key
//! text form that Go's `note.NewSigner` also reads.

use auditlog_core::note::NoteSigner;
use std::path::Path;

/// The file name of the key inside the data directory, when none is configured.
pub const DEFAULT_FILE: &str = "signing-key";
/// The file beside the key that remembers the last signed checkpoints.
pub const HEADS_FILE: &str = "signed-heads.json";

/// Reads the signer key at `path`, creating one named `name` if the file does
/// not exist yet.
pub fn load_or_create(path: &Path, name: &str) -> Result<NoteSigner, String> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            NoteSigner::parse(&text).map_err(|e| format!("signing key {}: {e}", path.display()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => create(path, name),
        Err(e) => Err(format!(
            "cannot read the signing key {}: {e}",
            path.display()
        )),
    }
}

/// Reads an existing signer key.
pub fn load(path: &Path) -> Result<NoteSigner, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the signing key {}: {e}", path.display()))?;
    NoteSigner::parse(&text).map_err(|e| format!("signing key {}: {e}", path.display()))
}

fn create(path: &Path, name: &str) -> Result<NoteSigner, String> {
    use std::io::Write;
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| format!("the OS random source failed: {e}"))?;
    let signer = NoteSigner::from_seed(name, seed).map_err(|e| e.to_string())?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
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
        Err(e) => {
            return Err(format!(
                "cannot create the signing key {}: {e}",
                path.display()
            ))
        }
    };
    file.write_all(format!("{}\n", signer.to_secret_text()).as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| format!("cannot write the signing key {}: {e}", path.display()))?;
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
        assert!(load_or_create(&path, "auditlog").is_err());
    }
}
