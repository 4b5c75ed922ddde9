//! The few lines of POSIX ustar that export bundles need: regular files,
//! short names, written and read in memory. A crate would bring far more
//! than this; any `tar` program reads what this writes.

const BLOCK: usize = 512;

/// Appends one regular file to `out`.
pub fn append_file(out: &mut Vec<u8>, name: &str, contents: &[u8], mtime: u64) {
    let mut header = [0u8; BLOCK];
    let name = name.as_bytes();
    header[..name.len().min(100)].copy_from_slice(&name[..name.len().min(100)]);
    write_octal(&mut header[100..108], 0o644);
    write_octal(&mut header[108..116], 0);
    write_octal(&mut header[116..124], 0);
    write_octal(&mut header[124..136], contents.len() as u64);
    write_octal(&mut header[136..148], mtime);
    header[156] = b'0';
    header[257..263].copy_from_slice(b"ustar\0");
    header[263..265].copy_from_slice(b"00");
    // The checksum is computed with its own field read as spaces.
    header[148..156].copy_from_slice(b"        ");
    let sum: u32 = header.iter().map(|&b| b as u32).sum();
    let text = format!("{sum:06o}\0 ");
    header[148..156].copy_from_slice(text.as_bytes());
    out.extend_from_slice(&header);
    out.extend_from_slice(contents);
    let padding = (BLOCK - contents.len() % BLOCK) % BLOCK;
    out.extend(std::iter::repeat_n(0u8, padding));
}

/// Ends the archive (two zero blocks).
pub fn finish(out: &mut Vec<u8>) {
    out.extend(std::iter::repeat_n(0u8, 2 * BLOCK));
}

fn write_octal(field: &mut [u8], value: u64) {
    let digits = field.len() - 1;
    let text = format!("{value:0digits$o}");
    field[..digits].copy_from_slice(&text.as_bytes()[text.len() - digits..]);
    field[digits] = 0;
}

fn read_octal(field: &[u8]) -> Option<u64> {
    let text: String = field
        .iter()
        .take_while(|&&b| b != 0 && b != b' ')
        .map(|&b| b as char)
        .collect();
    let text = text.trim_start_matches(' ');
    if text.is_empty() {
        return Some(0);
    }
    u64::from_str_radix(text, 8).ok()
}

/// The regular files of an archive, in order, as (name, contents).
pub fn read_files(archive: &[u8]) -> Result<Vec<(String, Vec<u8>)>, String> {
    let mut files = Vec::new();
    let mut at = 0usize;
    while at + BLOCK <= archive.len() {
        let header = &archive[at..at + BLOCK];
        if header.iter().all(|&b| b == 0) {
            return Ok(files);
        }
        let stored_sum =
            read_octal(&header[148..156]).ok_or("a tar header has a bad checksum field")?;
        let sum: u64 = header
            .iter()
            .enumerate()
            .map(|(i, &b)| {
                if (148..156).contains(&i) {
                    b' ' as u64
                } else {
                    b as u64
                }
            })
            .sum();
        if sum != stored_sum {
            return Err(format!("the tar header at byte {at} is damaged (checksum)"));
        }
        let name_end = header[..100].iter().position(|&b| b == 0).unwrap_or(100);
        let name = String::from_utf8(header[..name_end].to_vec())
            .map_err(|_| "a file name in the archive is not UTF-8")?;
        let size =
            read_octal(&header[124..136]).ok_or("a tar header has a bad size field")? as usize;
        let start = at + BLOCK;
        let end = start
            .checked_add(size)
            .filter(|&e| e <= archive.len())
            .ok_or_else(|| format!("the archive ends inside {name:?}: it was truncated"))?;
        if matches!(header[156], b'0' | 0) {
            files.push((name, archive[start..end].to_vec()));
        }
        at = end + (BLOCK - size % BLOCK) % BLOCK;
    }
    Err("the archive has no end marker: it was truncated".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_files() {
        let mut out = Vec::new();
        append_file(&mut out, "a.txt", b"hello", 1_700_000_000);
        append_file(&mut out, "empty", b"", 0);
        append_file(&mut out, "big", &[7u8; 1500], 0);
        finish(&mut out);
        assert_eq!(out.len() % 512, 0);
        let files = read_files(&out).unwrap();
        assert_eq!(files[0], ("a.txt".to_string(), b"hello".to_vec()));
        assert_eq!(files[1].1, b"");
        assert_eq!(files[2].1, vec![7u8; 1500]);
        let mut damaged = out.clone();
        damaged[10] ^= 1;
        assert!(read_files(&damaged).is_err());
        assert!(read_files(&out[..1024]).is_err());
    }
}
