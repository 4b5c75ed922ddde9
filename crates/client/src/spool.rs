//! The spool: each batch the [`crate::Batcher`] has accepted but not yet
//! delivered is a file of its own in the spool directory, one event JSON per
//! line, removed once the server has answered for every event in it. A crash
//! or restart therefore leaves exactly the undelivered batches behind, and
//! the next batcher on the same directory sends them first (same ids, so a
//! batch that was in fact stored just before the crash is not stored twice).
//!
//! A line is written with one `write` call before `add` returns, so a killed
//! process loses nothing it acknowledged; `add_synced` also waits for
//! `fdatasync`, so that a power loss loses nothing either.

use crate::event::Event;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

const EXTENSION: &str = "jsonl";

/// The spool directory and the number of the next batch file.
#[derive(Debug)]
pub(crate) struct Spool {
    dir: PathBuf,
    next: u64,
    /// Holds an exclusive lock on `dir/lock` while the spool is open, so
    /// that two batchers never send (and remove) the same batch files. The
    /// operating system releases it when the process dies, however it dies.
    _lock: File,
}

/// The file of one batch.
#[derive(Debug)]
pub(crate) struct Segment {
    path: PathBuf,
    file: Arc<File>,
}

/// A batch a crash left behind, to send first.
#[derive(Debug)]
pub(crate) struct LeftBatch {
    pub segment: Segment,
    pub events: Vec<Event>,
}

/// What a spool held at start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SpoolRecovery {
    /// Batch files found (each is sent again as a batch).
    pub batches: usize,
    pub events: usize,
    /// Lines that were not an event (cut short by a crash of the machine
    /// during their write, so never acknowledged, or damaged); skipped.
    pub unreadable_lines: usize,
}

impl Spool {
    /// Opens (creating it if needed) `dir` and reads the batches left there.
    pub fn open(dir: &Path) -> io::Result<(Self, Vec<LeftBatch>, SpoolRecovery)> {
        fs::create_dir_all(dir)?;
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join("lock"))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                return Err(io::Error::new(
                    io::ErrorKind::WouldBlock,
                    "another batcher has this spool directory open",
                ))
            }
            Err(fs::TryLockError::Error(e)) => return Err(e),
        }
        let mut numbered: Vec<(u64, PathBuf)> = Vec::new();
        for entry in fs::read_dir(dir)? {
            let path = entry?.path();
            let number = path
                .extension()
                .filter(|e| *e == EXTENSION)
                .and(path.file_stem())
                .and_then(|s| s.to_str())
                .and_then(|s| s.parse::<u64>().ok());
            if let Some(number) = number {
                numbered.push((number, path));
            }
        }
        numbered.sort();
        let mut recovery = SpoolRecovery::default();
        let mut batches = Vec::new();
        for (_, path) in &numbered {
            let text = fs::read(path)?;
            let mut events = Vec::new();
            for line in text.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                match serde_json::from_slice::<Event>(line) {
                    Ok(event) => events.push(event),
                    Err(_) => recovery.unreadable_lines += 1,
                }
            }
            recovery.batches += 1;
            recovery.events += events.len();
            let file = OpenOptions::new().append(true).open(path)?;
            let segment = Segment {
                path: path.clone(),
                file: Arc::new(file),
            };
            batches.push(LeftBatch { segment, events });
        }
        let next = numbered.last().map_or(0, |(n, _)| n + 1);
        Ok((
            Self {
                dir: dir.to_path_buf(),
                next,
                _lock: lock,
            },
            batches,
            recovery,
        ))
    }

    /// A new, empty batch file; its directory entry is made durable too.
    pub fn new_segment(&mut self) -> io::Result<Segment> {
        let path = self.dir.join(format!("{:020}.{EXTENSION}", self.next));
        self.next += 1;
        let file = OpenOptions::new()
            .append(true)
            .create_new(true)
            .open(&path)?;
        File::open(&self.dir)?.sync_all()?;
        Ok(Segment {
            path,
            file: Arc::new(file),
        })
    }
}

impl Segment {
    /// Appends one event's line with a single `write` (no user-space buffer).
    pub fn append(&self, event_json: &[u8]) -> io::Result<()> {
        let mut line = Vec::with_capacity(event_json.len() + 1);
        line.extend_from_slice(event_json);
        line.push(b'\n');
        (&*self.file).write_all(&line)
    }

    /// A handle for `fdatasync` outside the batcher's lock.
    pub fn file(&self) -> Arc<File> {
        self.file.clone()
    }

    /// The batch is delivered: forget it.
    pub fn remove(self) -> io::Result<()> {
        fs::remove_file(&self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_left_behind_are_read_back_in_order_and_removed_ones_are_gone() {
        let dir = tempfile::tempdir().unwrap();
        let events: Vec<Event> = (0..5)
            .map(|i| {
                Event::builder("T", "A", format!("u{i}").as_str())
                    .build()
                    .unwrap()
            })
            .collect();
        {
            let (mut spool, left, recovery) = Spool::open(dir.path()).unwrap();
            assert!(left.is_empty());
            assert_eq!(recovery, SpoolRecovery::default());
            let first = spool.new_segment().unwrap();
            let second = spool.new_segment().unwrap();
            let third = spool.new_segment().unwrap();
            first.append(&events[0].to_json()).unwrap();
            first.append(&events[1].to_json()).unwrap();
            second.append(&events[2].to_json()).unwrap();
            third.append(&events[3].to_json()).unwrap();
            third.append(&events[4].to_json()).unwrap();
            // A line cut short by a machine crash.
            (&*third.file()).write_all(b"{\"id\":\"cut").unwrap();
            second.remove().unwrap();
        }
        let (mut spool, left, recovery) = Spool::open(dir.path()).unwrap();
        assert_eq!(
            recovery,
            SpoolRecovery {
                batches: 2,
                events: 4,
                unreadable_lines: 1
            }
        );
        let read: Vec<Vec<Event>> = left.into_iter().map(|b| b.events).collect();
        assert_eq!(read, [events[0..2].to_vec(), events[3..5].to_vec()]);
        // New batches are numbered after the ones found.
        let next = spool.new_segment().unwrap();
        assert!(
            next.path.ends_with("00000000000000000003.jsonl"),
            "{:?}",
            next.path
        );
    }
}
