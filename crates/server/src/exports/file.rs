//! Writing one export file without holding the result in memory: an
//! [`EventWalk`] pages through the store (2,000 events at a time, newest
//! first, bounded by the `seq` at creation) and an [`ExportWriter`] appends
//! each page to a temporary file, optionally gzip-compressed, hashing what it
//! writes; `finish` syncs it and renames it into place. The worker and the
//! `auditlog export` command share both. [`write_all`] reads pages ahead
//! while earlier ones are formatted on blocking threads (two at a time) and
//! written in order, so that reading and formatting keep both cores busy; at most
//! [`READ_AHEAD`] + [`FORMATTING`] + 1 pages are in memory.

use crate::exports::error::ExportError;
use crate::exports::format;
use auditlog_core::{Cursor, EventFilter, Timestamp};
use auditlog_store::{AccountId, Compression, EventReader, EventRecord, ExportFormat, Result};
use flate2::write::GzEncoder;
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

/// Events read from the store per page. Each page is a query of its own,
/// and the read of one page ends with its last rows' decoding before the
/// next begins: 2,000 rather than 1,000 made both of the benchmark's CSV
/// exports about 7 % faster (BENCHMARKS.md, "Export: pages of 2,000"), for
/// about 10 MiB more at the peak.
pub const PAGE_SIZE: usize = 2_000;

/// A newest-first walk over the events of one account that match a filter
/// and were stored no later than `seq_bound`.
pub struct EventWalk {
    account: AccountId,
    filter: EventFilter,
    cursor: Option<Cursor>,
}

impl EventWalk {
    pub fn new(account: AccountId, filter: EventFilter, seq_bound: u64) -> Self {
        // Starting "after" an instant no event can have, with the snapshot at
        // the bound, makes the store apply `seq <= seq_bound` from page one.
        let cursor = (seq_bound > 0).then_some(Cursor {
            time: Timestamp::from_micros(i64::MAX),
            seq: seq_bound,
            snapshot_seq: seq_bound,
        });
        Self {
            account,
            filter,
            cursor,
        }
    }

    /// The next page, or `None` when the walk is over.
    pub async fn next_page(
        &mut self,
        reader: &dyn EventReader,
    ) -> Result<Option<Vec<EventRecord>>> {
        let Some(cursor) = self.cursor else {
            return Ok(None);
        };
        let page = reader
            .query(self.account, &self.filter, Some(cursor), PAGE_SIZE)
            .await?;
        self.cursor = page.next_cursor;
        if page.events.is_empty() {
            return Ok(None);
        }
        Ok(Some(page.events))
    }
}

/// The file name extension of an export: `csv`, `jsonl`, `csv.gz`, `jsonl.gz`, `tar`.
pub fn extension(format: ExportFormat, compression: Compression) -> String {
    if format == ExportFormat::Bundle {
        // A bundle is a tar file; it is never compressed (the API refuses gzip).
        return "tar".into();
    }
    match compression {
        Compression::None => format.as_str().to_string(),
        Compression::Gzip => format!("{}.gz", format.as_str()),
    }
}

/// What a finished file holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSummary {
    pub row_count: u64,
    pub size_bytes: u64,
    /// Lowercase hex SHA-256 of the bytes on disk.
    pub sha256: String,
}

/// Counts and hashes the bytes that reach the file.
struct Hashing<W> {
    inner: W,
    hasher: Sha256,
    bytes: u64,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

enum Sink {
    Plain(Hashing<BufWriter<File>>),
    Gzip(GzEncoder<Hashing<BufWriter<File>>>),
}

/// An export file being written. Blocking I/O: async callers run its
/// methods on a blocking thread (`tokio::task::spawn_blocking`).
pub struct ExportWriter {
    format: ExportFormat,
    sink: Sink,
    rows: u64,
    temp_path: PathBuf,
    final_path: PathBuf,
}

impl ExportWriter {
    /// Creates (truncating) `temp_path` and writes the header. The file
    /// appears at `final_path` only once `finish` succeeds.
    pub fn create(
        format: ExportFormat,
        compression: Compression,
        temp_path: PathBuf,
        final_path: PathBuf,
    ) -> io::Result<Self> {
        let file = File::create(&temp_path)?;
        let hashing = Hashing {
            inner: BufWriter::with_capacity(256 * 1024, file),
            hasher: Sha256::new(),
            bytes: 0,
        };
        let sink = match compression {
            Compression::None => Sink::Plain(hashing),
            Compression::Gzip => {
                Sink::Gzip(GzEncoder::new(hashing, flate2::Compression::default()))
            }
        };
        let mut writer = Self {
            format,
            sink,
            rows: 0,
            temp_path,
            final_path,
        };
        let format = writer.format;
        let mut out = writer.out();
        if let Err(e) = format::write_header(format, &mut out) {
            // A full disk can fail even the header: leave no partial file.
            writer.abandon();
            return Err(e);
        }
        Ok(writer)
    }

    fn out(&mut self) -> &mut dyn Write {
        match &mut self.sink {
            Sink::Plain(w) => w,
            Sink::Gzip(w) => w,
        }
    }

    pub fn rows(&self) -> u64 {
        self.rows
    }

    pub fn format(&self) -> ExportFormat {
        self.format
    }

    /// Appends one page that [`format_page`] formatted (in page order).
    fn write_formatted(&mut self, page: &[u8], rows: usize) -> io::Result<()> {
        self.out().write_all(page)?;
        self.rows += rows as u64;
        Ok(())
    }

    /// Completes the file: flushes, syncs, renames it into place.
    pub fn finish(self) -> io::Result<FileSummary> {
        let hashing = match self.sink {
            Sink::Plain(w) => w,
            Sink::Gzip(w) => w.finish()?,
        };
        let Hashing {
            inner,
            hasher,
            bytes,
        } = hashing;
        let file = inner.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&self.temp_path, &self.final_path)?;
        // Make the rename itself durable.
        if let Some(dir) = self.final_path.parent() {
            File::open(dir).and_then(|d| d.sync_all()).ok();
        }
        Ok(FileSummary {
            row_count: self.rows,
            size_bytes: bytes,
            sha256: auditlog_core::leaf::to_hex(&hasher.finalize()),
        })
    }

    /// Gives up: deletes the temporary file.
    pub fn abandon(self) {
        let path = self.temp_path.clone();
        drop(self);
        remove_if_present(&path);
    }
}

/// Deletes a file, ignoring one that is already gone.
pub fn remove_if_present(path: &Path) {
    if let Err(e) = std::fs::remove_file(path) {
        if e.kind() != io::ErrorKind::NotFound {
            tracing::warn!(path = %path.display(), error = %e, "cannot delete an export file");
        }
    }
}

/// The rows of one page, formatted into `out` (cleared first). Pure: pages
/// are formatted on several threads at once and written in page order.
pub fn format_page(
    format: ExportFormat,
    records: &[EventRecord],
    out: &mut Vec<u8>,
) -> io::Result<()> {
    out.clear();
    records
        .iter()
        .try_for_each(|record| format::write_row(format, record, out))
}

/// Pages read ahead of the ones being formatted. Reading a page and
/// formatting it take about as long, but each page's times vary: in
/// lockstep (read page n + 1 while page n is formatted, then wait for
/// both) every page cost the slower of the two, and in a profile of a
/// whole account's export each stage was busy for about two thirds of the
/// wall time (BENCHMARKS.md, "Export: pages read ahead"). A queue of a few
/// pages lets each stage run at its own pace.
const READ_AHEAD: usize = 3;

/// Pages formatted at once, each on a blocking thread. The walk reads its
/// pages one after another (each starts where the last ended); once the
/// embedded store decodes a page's leaves beside its read, formatting a
/// page takes longer than reading one, and a second formatting thread keeps
/// the reading from waiting for it (BENCHMARKS.md, "Export: pages
/// formatted two at a time"). At most `READ_AHEAD + FORMATTING + 1` pages
/// are in memory.
const FORMATTING: usize = 2;

/// A page being formatted: its buffer, row count and result, in page order.
type Formatting = tokio::task::JoinHandle<(Vec<u8>, usize, io::Result<()>)>;

/// What the writing side does next.
enum Step {
    /// The reading side's next page (`None`: the walk is over).
    Read(Option<Result<Vec<EventRecord>>>),
    /// The oldest page being formatted is done.
    Formatted(std::result::Result<(Vec<u8>, usize, io::Result<()>), tokio::task::JoinError>),
}

/// Writes every event of `walk` into `writer` page by page, calling
/// `after_page` (progress, lease renewal, shutdown checks) after each;
/// `after_page` answering false stops the walk early and returns `Ok(None)`
/// with the writer abandoned. Pages are read ahead (at most
/// [`READ_AHEAD`]) and formatted [`FORMATTING`] at a time, then written in
/// order, so that reading and formatting keep both cores busy.
pub async fn write_all<F, Fut>(
    reader: &dyn EventReader,
    mut walk: EventWalk,
    mut writer: ExportWriter,
    mut after_page: F,
) -> std::result::Result<Option<FileSummary>, ExportError>
where
    F: FnMut(u64) -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let (pages, mut next_pages) =
        tokio::sync::mpsc::channel::<Result<Vec<EventRecord>>>(READ_AHEAD);
    // Reads until the walk ends, a read fails, or the writing side stops
    // listening (an error, or `after_page` said stop).
    let read = async move {
        loop {
            let page = walk.next_page(reader).await;
            let last = !matches!(page, Ok(Some(_)));
            let Some(page) = page.transpose() else { break };
            if pages.send(page).await.is_err() || last {
                break;
            }
        }
    };
    let write = async move {
        let format = writer.format();
        let mut formatting: std::collections::VecDeque<Formatting> = Default::default();
        // Buffers of written pages, reused for the next ones.
        let mut spare: Vec<Vec<u8>> = Vec::new();
        let mut reading = true;
        loop {
            let take_more = reading && formatting.len() < FORMATTING;
            let step = match formatting.front_mut() {
                None if !take_more => break,
                None => Step::Read(next_pages.recv().await),
                Some(oldest) => tokio::select! {
                    biased;
                    done = oldest => Step::Formatted(done),
                    page = next_pages.recv(), if take_more => Step::Read(page),
                },
            };
            match step {
                Step::Read(None) => reading = false,
                Step::Read(Some(Ok(page))) => {
                    let mut out = spare.pop().unwrap_or_default();
                    formatting.push_back(tokio::task::spawn_blocking(move || {
                        let formatted = format_page(format, &page, &mut out);
                        (out, page.len(), formatted)
                    }));
                }
                Step::Read(Some(Err(e))) => {
                    tokio::task::spawn_blocking(move || writer.abandon())
                        .await
                        .ok();
                    return Err(ExportError::ReadEvents(e));
                }
                Step::Formatted(done) => {
                    formatting.pop_front();
                    let (out, rows, formatted) = done.map_err(ExportError::Task)?;
                    let (back, out, written) = tokio::task::spawn_blocking(move || {
                        let written = formatted.and_then(|()| writer.write_formatted(&out, rows));
                        (writer, out, written)
                    })
                    .await
                    .map_err(ExportError::Task)?;
                    writer = back;
                    spare.push(out);
                    if let Err(cause) = written {
                        let path = writer.temp_path.clone();
                        tokio::task::spawn_blocking(move || writer.abandon())
                            .await
                            .ok();
                        return Err(ExportError::Write { path, cause });
                    }
                    if !after_page(writer.rows()).await {
                        tokio::task::spawn_blocking(move || writer.abandon())
                            .await
                            .ok();
                        return Ok(None);
                    }
                }
            }
        }
        Ok(Some(writer))
    };
    let ((), written) = tokio::join!(read, write);
    let Some(writer) = written? else {
        return Ok(None);
    };
    let final_path = writer.final_path.clone();
    tokio::task::spawn_blocking(move || {
        let temp = writer.temp_path.clone();
        writer.finish().map_err(|cause| {
            remove_if_present(&temp);
            ExportError::Complete {
                path: final_path,
                cause,
            }
        })
    })
    .await
    .map_err(ExportError::Task)?
    .map(Some)
}
