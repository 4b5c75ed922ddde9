//! Export bundles as tar archives, written and read in memory with the
//! `tar` crate. `verify-export` reads archives that third parties made or
//! changed, so reading them is a parser's job; the crate handles what any
//! `tar` program may write (ustar, GNU and PAX headers, long names), which
//! the hand-written reader this replaced did not.
//!
//! The crate accepts an archive cut at a block boundary as complete, so
//! reading also asks for the end marker and for every file's full size:
//! a truncated download is named as such, not read as fewer files.

use std::io::Read;

const BLOCK: usize = 512;

/// Why an archive could not be written or read; the I/O error of the `tar`
/// crate, where there is one, is kept as the cause.
#[derive(Debug, thiserror::Error)]
pub enum TarError {
    #[error("cannot add {name:?} to the archive")]
    Add {
        name: String,
        #[source]
        cause: std::io::Error,
    },
    #[error("cannot finish the archive")]
    Finish(#[source] std::io::Error),
    #[error("the archive has no end marker: it was truncated")]
    NoEndMarker,
    #[error("the archive is damaged")]
    Damaged(#[source] std::io::Error),
    #[error("a file name in the archive is not UTF-8")]
    NameNotUtf8,
    #[error("{name:?} in the archive cannot be read")]
    ReadFile {
        name: String,
        #[source]
        cause: std::io::Error,
    },
    #[error("the archive ends inside {name:?}: it was truncated")]
    EndsInside { name: String },
}

/// A ustar archive of regular files (mode 0644, owner 0, `mtime`), in the
/// order given, ending with the end marker.
pub fn write_files<'a>(
    files: impl IntoIterator<Item = (&'a str, &'a [u8])>,
    mtime: u64,
) -> Result<Vec<u8>, TarError> {
    let mut builder = ::tar::Builder::new(Vec::new());
    for (name, contents) in files {
        let mut header = ::tar::Header::new_ustar();
        header.set_entry_type(::tar::EntryType::Regular);
        header.set_mode(0o644);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(mtime);
        header.set_size(contents.len() as u64);
        builder
            .append_data(&mut header, name, contents)
            .map_err(|cause| TarError::Add {
                name: name.to_string(),
                cause,
            })?;
    }
    builder.into_inner().map_err(TarError::Finish)
}

/// The regular files of an archive, in order, as (name, contents); other
/// entries (directories, links) are skipped.
pub fn read_files(archive: &[u8]) -> Result<Vec<(String, Vec<u8>)>, TarError> {
    if !has_end_marker(archive) {
        return Err(TarError::NoEndMarker);
    }
    let mut reader = ::tar::Archive::new(archive);
    let entries = reader.entries().map_err(TarError::Damaged)?;
    let mut files = Vec::new();
    for entry in entries {
        let mut entry = entry.map_err(TarError::Damaged)?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let name = entry
            .path()
            .map_err(TarError::Damaged)?
            .to_str()
            .ok_or(TarError::NameNotUtf8)?
            .to_string();
        // Not preallocated from the header's size: a damaged header must
        // not make us allocate what it claims.
        let mut contents = Vec::new();
        entry
            .read_to_end(&mut contents)
            .map_err(|cause| TarError::ReadFile {
                name: name.clone(),
                cause,
            })?;
        if contents.len() as u64 != entry.size() {
            return Err(TarError::EndsInside { name });
        }
        files.push((name, contents));
    }
    Ok(files)
}

/// Whether the archive ends with the two zero blocks that close it (and
/// possibly zero padding after them): whole blocks, the last two zero.
fn has_end_marker(archive: &[u8]) -> bool {
    archive.len() >= 2 * BLOCK
        && archive.len().is_multiple_of(BLOCK)
        && archive[archive.len() - 2 * BLOCK..].iter().all(|&b| b == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        let big = [7u8; 1500];
        let files: [(&str, &[u8]); 3] = [("a.txt", b"hello"), ("empty", b""), ("big", &big)];
        write_files(files, 1_700_000_000).unwrap()
    }

    #[test]
    fn round_trips_files() {
        let out = sample();
        assert_eq!(out.len() % BLOCK, 0);
        let files = read_files(&out).unwrap();
        assert_eq!(files.len(), 3);
        assert_eq!(files[0], ("a.txt".to_string(), b"hello".to_vec()));
        assert_eq!(files[1], ("empty".to_string(), Vec::new()));
        assert_eq!(files[2], ("big".to_string(), vec![7u8; 1500]));
    }

    #[test]
    fn writes_plain_ustar_headers() {
        let out = sample();
        let header = &out[..BLOCK];
        assert_eq!(&header[..5], b"a.txt");
        assert_eq!(&header[257..263], b"ustar\0", "ustar magic");
        assert_eq!(header[156], b'0', "a regular file");
    }

    #[test]
    fn damaged_and_truncated_archives_are_refused() {
        let out = sample();
        let mut damaged = out.clone();
        damaged[10] ^= 1;
        let error = read_files(&damaged).unwrap_err().to_string();
        assert!(error.contains("damaged"), "{error}");
        // Cut at a block boundary inside the big file, and cut mid-block.
        for cut in [3 * BLOCK + BLOCK, out.len() - 3 * BLOCK, 1000] {
            let error = read_files(&out[..cut]).unwrap_err().to_string();
            assert!(error.contains("truncated"), "cut at {cut}: {error}");
        }
        // A header whose body is shorter than it says, with zero blocks
        // after it that read as an end marker.
        let cut_body = [&out[3 * BLOCK..4 * BLOCK], &[0u8; 2 * BLOCK][..]].concat();
        let error = read_files(&cut_body).unwrap_err().to_string();
        assert!(error.contains("ends inside \"big\""), "{error}");
        // (File contents carry no checksum in tar: a body changed in place
        // is caught by the manifest's sha256 of each file, `bundle::verify`.)
    }

    #[test]
    fn reads_what_other_tar_writers_write() {
        // A GNU long name and a directory entry, as `tar` programs write them.
        let long_name = format!("{}/entries.jsonl", "d".repeat(120));
        let mut builder = ::tar::Builder::new(Vec::new());
        let mut dir = ::tar::Header::new_gnu();
        dir.set_entry_type(::tar::EntryType::Directory);
        dir.set_size(0);
        builder.append_data(&mut dir, "bundle/", &[][..]).unwrap();
        let mut file = ::tar::Header::new_gnu();
        file.set_size(3);
        builder
            .append_data(&mut file, &long_name, &b"abc"[..])
            .unwrap();
        let out = builder.into_inner().unwrap();
        assert_eq!(
            read_files(&out).unwrap(),
            vec![(long_name, b"abc".to_vec())]
        );
    }
}
