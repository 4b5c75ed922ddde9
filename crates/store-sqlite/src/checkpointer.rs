//! WAL checkpoints off the writer's commit path.
//!
//! A checkpoint copies the pages that commits appended to the WAL back into
//! the database file. SQLite runs it inside the commit that crosses the
//! `wal_autocheckpoint` threshold, so the writer thread used to stop taking
//! groups while it copied: 17.7 % of the server's CPU at 10M events
//! (BENCHMARKS.md, "WAL checkpoints off the writer's commit path"). Here the
//! writer only counts the WAL's frames after each commit (a WAL hook, which
//! also turns SQLite's own automatic checkpoints off) and a thread of its own,
//! with its own connection, copies them in `PASSIVE` mode, which never takes
//! the write lock and so runs beside the next commits.
//!
//! A `PASSIVE` checkpoint copies the frames committed before it started. The
//! WAL starts again from its beginning only when a write transaction begins
//! with every frame copied, which a checkpoint running beside a busy writer
//! rarely leaves behind. So once the WAL holds [`WalPolicy::restart_frames`],
//! the writer runs one `PASSIVE` checkpoint itself between two groups: it
//! copies only what was committed since the background's last one, and the
//! next group's transaction restarts the WAL. While the background is
//! copying, the writer's attempt finds it busy and the next commit tries
//! again; at twice the threshold the writer waits for the background to
//! finish first. That bounds the WAL file.
//!
//! Durability does not depend on any of this: a commit is durable once its
//! frames are synced to the WAL, and a crash before a checkpoint replays them
//! at the next open.

use crate::sql::open_connection;
use rusqlite::hooks::Wal;
use rusqlite::Connection;
use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// When checkpoints run, in WAL frames (one page of 4 KiB each).
#[derive(Clone, Copy, Debug)]
pub(crate) struct WalPolicy {
    /// The background checkpoints each time the WAL has grown by this many
    /// frames since it was last asked to.
    pub background_frames: i64,
    /// At this many frames the writer copies the rest itself, so that the
    /// WAL restarts.
    pub restart_frames: i64,
    /// After this long without a commit, the background copies what is left,
    /// so that readers of a quiet store find their pages in the database file.
    pub idle: Duration,
    /// The background also copies at least this often, for what other
    /// connections commit (the pooled connections' small writes: no
    /// connection checkpoints by itself, `schema::configure`).
    pub periodic: Duration,
}

impl Default for WalPolicy {
    /// A copy every 64 MiB of WAL, a restart at 256 MiB (the threshold the
    /// writer's own checkpoints had: random-key indexes dirty a page per
    /// event, and a larger WAL copies a page once for many commits).
    fn default() -> Self {
        Self {
            background_frames: 16_384,
            restart_frames: 65_536,
            idle: Duration::from_secs(1),
            periodic: Duration::from_secs(60),
        }
    }
}

/// How long the writer waits for the background at twice the restart
/// threshold.
const LONGEST_WAIT: Duration = Duration::from_secs(10);

thread_local! {
    /// Frames in the WAL after the last commit of this thread's connection
    /// (the writer's): SQLite's WAL hook runs on the committing thread.
    static WAL_FRAMES: Cell<i64> = const { Cell::new(0) };
}

fn record_wal_frames(_: &Wal, frames: std::os::raw::c_int) -> rusqlite::Result<()> {
    WAL_FRAMES.with(|cell| cell.set(i64::from(frames)));
    Ok(())
}

/// Makes `conn` report its WAL's size after each commit instead of
/// checkpointing by itself (a WAL hook replaces SQLite's automatic
/// checkpoints). The writer's connection, each time it is opened.
pub(crate) fn watch_commits(conn: &Connection) {
    conn.wal_hook(Some(record_wal_frames));
}

/// What the writer and the background thread share.
#[derive(Default)]
struct Shared {
    /// A checkpoint is wanted now (the WAL grew by `background_frames`).
    requested: bool,
    /// Commits since the background's last checkpoint began.
    commits_since: u64,
    last_commit: Option<Instant>,
    /// The background is copying.
    running: bool,
    closing: bool,
    /// What ran, for tests and logs.
    counts: CheckpointCounts,
}

/// How many checkpoints ran where.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct CheckpointCounts {
    pub background: u64,
    pub by_writer: u64,
}

type Signal = Arc<(Mutex<Shared>, Condvar)>;

fn lock(signal: &Signal) -> MutexGuard<'_, Shared> {
    // A poisoned lock only means a panic elsewhere; its plain flags are fine.
    signal
        .0
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Waits on `signal` for at most `timeout`, giving the lock back.
fn wait<'s>(
    signal: &'s Signal,
    shared: MutexGuard<'s, Shared>,
    timeout: Duration,
) -> MutexGuard<'s, Shared> {
    signal
        .1
        .wait_timeout(shared, timeout)
        .map(|(guard, _)| guard)
        .unwrap_or_else(|poisoned| poisoned.into_inner().0)
}

/// The writer's side: told after each commit, it asks the background thread
/// for checkpoints and, at the restart threshold, runs one itself.
pub(crate) struct Checkpoints {
    policy: WalPolicy,
    signal: Signal,
    /// The WAL's frames when the background was last asked.
    asked_at_frames: i64,
    thread: Option<JoinHandle<()>>,
}

impl Checkpoints {
    /// Starts the background thread for the database at `path`.
    pub(crate) fn start(path: &Path, policy: WalPolicy) -> Self {
        let signal: Signal = Arc::default();
        let background = Background {
            path: path.to_path_buf(),
            policy,
            signal: signal.clone(),
        };
        let thread = std::thread::Builder::new()
            .name("auditlog-checkpoint".into())
            .spawn(move || background.run())
            .map_err(|e| {
                tracing::warn!(error = %e, "cannot start the checkpoint thread; the writer checkpoints by itself");
            })
            .ok();
        Self {
            policy,
            signal,
            asked_at_frames: 0,
            thread,
        }
    }

    /// After the writer's commit on `conn`, whose WAL now holds the frames
    /// its hook recorded.
    pub(crate) fn after_commit(&mut self, conn: &Connection) {
        let frames = WAL_FRAMES.with(Cell::get);
        if frames < self.asked_at_frames {
            // The WAL restarted from its beginning.
            self.asked_at_frames = 0;
        }
        let wanted = frames - self.asked_at_frames >= self.policy.background_frames;
        let wake = {
            let mut shared = lock(&self.signal);
            shared.commits_since += 1;
            shared.last_commit = Some(Instant::now());
            if wanted && self.thread.is_some() {
                shared.requested = true;
            }
            // The first commit since a checkpoint starts the quiet clock.
            wanted || shared.commits_since == 1
        };
        if wanted {
            self.asked_at_frames = frames;
        }
        if wake {
            self.signal.1.notify_all();
        }
        if frames >= self.policy.restart_frames {
            if frames >= 2 * self.policy.restart_frames {
                self.wait_for_background();
            }
            // Busy (the background is copying) is not an error: the next
            // commit tries again.
            match passive_checkpoint(conn) {
                Ok(true) => lock(&self.signal).counts.by_writer += 1,
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %e, "the writer's WAL checkpoint failed"),
            }
        }
    }

    /// Blocks until the background is not copying, for at most
    /// [`LONGEST_WAIT`] (a background that never finished must not stop
    /// ingest: the writer's own attempt then finds it busy and moves on).
    fn wait_for_background(&self) {
        let deadline = Instant::now() + LONGEST_WAIT;
        let mut shared = lock(&self.signal);
        while shared.running && !shared.closing {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                tracing::warn!(
                    "the background WAL checkpoint has run for over 10 s; the writer goes on"
                );
                return;
            }
            shared = wait(&self.signal, shared, left);
        }
    }

    #[cfg(test)]
    pub(crate) fn counts(&self) -> CheckpointCounts {
        lock(&self.signal).counts
    }
}

impl Drop for Checkpoints {
    fn drop(&mut self) {
        lock(&self.signal).closing = true;
        self.signal.1.notify_all();
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                tracing::warn!("the checkpoint thread panicked");
            }
        }
    }
}

/// Runs a `PASSIVE` checkpoint on `conn`: true when it ran, false when
/// another connection was checkpointing (SQLite answers busy = 1 then).
fn passive_checkpoint(conn: &Connection) -> rusqlite::Result<bool> {
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
        row.get::<_, i64>(0)
    })
    .map(|busy| busy == 0)
}

/// The background thread: its own connection, woken by the writer.
struct Background {
    path: PathBuf,
    policy: WalPolicy,
    signal: Signal,
}

impl Background {
    fn run(self) {
        let conn = match open_connection(&self.path) {
            Ok(conn) => conn,
            Err(e) => {
                tracing::warn!(error = %e, "the checkpoint thread cannot open the database; the writer checkpoints by itself");
                return;
            }
        };
        let mut last_run = Instant::now();
        while self.next_turn(last_run) {
            last_run = Instant::now();
            let checkpoint = passive_checkpoint(&conn);
            let mut shared = lock(&self.signal);
            shared.running = false;
            match checkpoint {
                Ok(true) => shared.counts.background += 1,
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %e, "a background WAL checkpoint failed"),
            }
            drop(shared);
            self.signal.1.notify_all();
        }
    }

    /// Waits until a checkpoint is wanted (asked for, the store went quiet
    /// with commits not yet copied, or the periodic pass is due); false when
    /// the writer is gone.
    fn next_turn(&self, last_run: Instant) -> bool {
        let mut shared = lock(&self.signal);
        loop {
            if shared.closing {
                return false;
            }
            let quiet = shared.commits_since > 0
                && shared
                    .last_commit
                    .is_some_and(|at| at.elapsed() >= self.policy.idle);
            let due = last_run.elapsed() >= self.policy.periodic;
            if shared.requested || quiet || due {
                shared.requested = false;
                shared.commits_since = 0;
                shared.running = true;
                return true;
            }
            let timeout = if shared.commits_since > 0 {
                self.policy.idle
            } else {
                // Nothing the writer committed: sleep until it asks, or
                // until the periodic pass.
                self.policy.periodic.saturating_sub(last_run.elapsed())
            };
            shared = wait(&self.signal, shared, timeout);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A database in WAL mode with a table whose random keys dirty a page
    /// per row, and the writer's connection watching its commits.
    fn writer_db(dir: &Path) -> Connection {
        let conn = crate::sql::open_writer_connection(&dir.join("t.db")).expect("open");
        conn.execute_batch("CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB)")
            .expect("table");
        watch_commits(&conn);
        conn
    }

    fn commit_rows(conn: &Connection, checkpoints: &mut Checkpoints, round: u64) {
        conn.execute_batch("BEGIN IMMEDIATE").expect("begin");
        for i in 0..50u64 {
            // Spread over the key space, so that each row lands on its own page.
            let key = (round * 50 + i).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 2;
            conn.execute(
                "INSERT INTO t (k, v) VALUES (?1, zeroblob(600))",
                [key as i64],
            )
            .expect("insert");
        }
        conn.execute_batch("COMMIT").expect("commit");
        checkpoints.after_commit(conn);
    }

    fn wal_bytes(dir: &Path) -> u64 {
        std::fs::metadata(dir.join("t.db-wal")).map_or(0, |m| m.len())
    }

    fn wait_for(mut done: impl FnMut() -> bool) -> bool {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if done() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    }

    /// Thresholds that a few of [`commit_rows`]' commits cross.
    const SMALL: WalPolicy = WalPolicy {
        background_frames: 64,
        restart_frames: 256,
        idle: Duration::from_secs(3600),
        periodic: Duration::from_secs(3600),
    };

    /// Commits `rounds` groups of rows and checks that the WAL file never
    /// grew beyond twice the restart threshold, with room for the commits
    /// that land while the background copies. Without restarts it would
    /// hold every frame: about 100 per commit.
    fn commit_within_the_bound(
        dir: &Path,
        conn: &Connection,
        checkpoints: &mut Checkpoints,
        rounds: u64,
    ) {
        let mut largest_wal = 0;
        for round in 0..rounds {
            commit_rows(conn, checkpoints, round);
            largest_wal = largest_wal.max(wal_bytes(dir));
        }
        let bound = (2 * SMALL.restart_frames + 2_000) as u64 * (4096 + 24);
        assert!(
            largest_wal <= bound,
            "the WAL grew to {largest_wal} bytes, more than {bound}"
        );
        let rows: i64 = conn
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .expect("count");
        assert_eq!(rows, rounds as i64 * 50);
    }

    #[test]
    fn the_background_copies_the_wal_and_the_writer_keeps_it_bounded() {
        let dir = tempfile::tempdir().expect("dir");
        let conn = writer_db(dir.path());
        let mut checkpoints = Checkpoints::start(&dir.path().join("t.db"), SMALL);
        // 200 commits, 20,000 frames (80 MiB) in all.
        commit_within_the_bound(dir.path(), &conn, &mut checkpoints, 200);
        assert!(
            wait_for(|| checkpoints.counts().background > 0),
            "no background checkpoint ran: {:?}",
            checkpoints.counts()
        );
    }

    #[test]
    fn a_quiet_store_gets_its_wal_copied_and_nothing_else_does() {
        let dir = tempfile::tempdir().expect("dir");
        let conn = writer_db(dir.path());
        let policy = WalPolicy {
            background_frames: 1 << 30,
            restart_frames: 1 << 30,
            idle: Duration::from_millis(50),
            periodic: Duration::from_secs(3600),
        };
        let mut checkpoints = Checkpoints::start(&dir.path().join("t.db"), policy);
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(
            checkpoints.counts(),
            CheckpointCounts::default(),
            "nothing was committed"
        );
        commit_rows(&conn, &mut checkpoints, 0);
        assert!(
            wait_for(|| checkpoints.counts().background == 1),
            "the quiet store's WAL was not copied: {:?}",
            checkpoints.counts()
        );
        // Every frame is in the database now: a checkpoint has nothing left.
        let (log, copied): (i64, i64) = conn
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
                Ok((r.get(1)?, r.get(2)?))
            })
            .expect("checkpoint");
        assert_eq!(log, copied);
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(checkpoints.counts().background, 1, "it copied once");
        assert_eq!(checkpoints.counts().by_writer, 0);
    }

    /// Another connection's commits (no connection checkpoints by itself)
    /// reach the database file by the periodic pass, with no writer commit.
    #[test]
    fn the_periodic_pass_copies_what_other_connections_commit() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("t.db");
        drop(writer_db(dir.path()));
        let policy = WalPolicy {
            periodic: Duration::from_millis(100),
            ..SMALL
        };
        let checkpoints = Checkpoints::start(&path, policy);
        let other = crate::sql::open_connection(&path).expect("open");
        let before = std::fs::metadata(&path).expect("db").len();
        other
            .execute_batch(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100) \
                 INSERT INTO t (k, v) SELECT i, zeroblob(4000) FROM n",
            )
            .expect("insert");
        assert!(
            wait_for(|| std::fs::metadata(&path).expect("db").len() > before + 100 * 4_000),
            "the other connection's pages never reached the database: {:?}",
            checkpoints.counts()
        );
    }

    #[test]
    fn without_the_background_the_writer_still_restarts_the_wal() {
        let dir = tempfile::tempdir().expect("dir");
        let conn = writer_db(dir.path());
        // The background's database cannot be opened: it gives up at once.
        let mut checkpoints = Checkpoints::start(&dir.path().join("missing/t.db"), SMALL);
        commit_within_the_bound(dir.path(), &conn, &mut checkpoints, 100);
        let counts = checkpoints.counts();
        assert_eq!(counts.background, 0);
        assert!(counts.by_writer > 0, "{counts:?}");
    }
}
