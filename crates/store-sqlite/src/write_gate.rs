//! Turns at SQLite's one write lock inside this process.
//!
//! The writer thread commits group after group; as soon as one commits it
//! takes the lock again for the next. A pooled connection that wants to
//! write between two groups (a log stream's lease, a checkpoint) waits in
//! SQLite's busy handler, which sleeps and polls: it rarely finds the lock
//! free and, under full ingest, could run out its busy timeout ("database is
//! locked"). So every writer of this process takes a turn here first: the
//! occasional writers announce themselves, and the writer thread lets each
//! one that is waiting go before it begins its next group. Their
//! transactions are single short statements, so ingest waits little; other
//! processes (the CLI on the same file) still meet SQLite's busy timeout.

use crate::sql::sql_error;
use auditlog_store::Result;
use rusqlite::Connection;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The longest the writer thread lets occasional writers go first before
/// it takes its turn anyway (a stuck one must not stop ingest).
const MAX_YIELD: Duration = Duration::from_millis(200);

#[derive(Default)]
pub struct WriteGate {
    /// Occasional writers waiting for or holding their turn.
    waiting: AtomicUsize,
    turn: Mutex<()>,
}

/// One writer's turn; the next may go when it is dropped.
pub struct Turn<'g> {
    gate: &'g WriteGate,
    _held: Option<MutexGuard<'g, ()>>,
    occasional: bool,
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        if self.occasional {
            self.gate.waiting.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

impl WriteGate {
    /// An occasional writer's turn (blocks until it is its turn).
    pub fn occasional(&self) -> Turn<'_> {
        self.waiting.fetch_add(1, Ordering::AcqRel);
        Turn {
            gate: self,
            // A writer that panicked holding the turn poisons nothing that
            // matters here: the lock guards no data.
            _held: Some(self.turn.lock().unwrap_or_else(|e| e.into_inner())),
            occasional: true,
        }
    }

    /// The writer thread's turn for its next group: after every occasional
    /// writer already waiting (for at most [`MAX_YIELD`]).
    pub fn writer(&self) -> Turn<'_> {
        let deadline = Instant::now() + MAX_YIELD;
        while self.waiting.load(Ordering::Acquire) > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_micros(100));
        }
        Turn {
            gate: self,
            _held: Some(self.turn.lock().unwrap_or_else(|e| e.into_inner())),
            occasional: false,
        }
    }
}

/// Makes `conn` a pooled reader: `query_only`, so that a write that did
/// not take its turn through [`write_in_turn`] fails at once (and in every
/// test that reaches it) instead of waiting out SQLite's busy timeout
/// behind the writer thread under full ingest ("database is locked").
pub fn make_reader(conn: &Connection) -> Result<()> {
    conn.pragma_update(None, "query_only", true)
        .map_err(sql_error)
}

/// Runs `f`, which writes with the pooled connection `conn`, in an
/// occasional turn of `gate`, with `query_only` off for its duration.
pub fn write_in_turn<T>(
    gate: &WriteGate,
    conn: &mut Connection,
    f: impl FnOnce(&mut Connection) -> Result<T>,
) -> Result<T> {
    let _turn = gate.occasional();
    conn.pragma_update(None, "query_only", false)
        .map_err(sql_error)?;
    let result = f(conn);
    // Back to a reader before the connection returns to the pool; if that
    // fails, the error is the caller's (the pool keeps only connections
    // outside a transaction, and a reader that could write is a bug).
    let restored = make_reader(conn);
    let value = result?;
    restored?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use auditlog_store::StoreError;
    use std::sync::Arc;

    /// A pooled reader refuses every write until it takes a turn, and is a
    /// reader again after the turn, whether the write succeeded or failed.
    #[test]
    fn a_reader_writes_only_in_a_turn_and_is_a_reader_again_after_it() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (x INTEGER)").unwrap();
        make_reader(&conn).unwrap();
        let insert = |conn: &Connection| conn.execute("INSERT INTO t VALUES (1)", []);
        let refused = insert(&conn).unwrap_err();
        assert!(refused.to_string().contains("readonly"), "{refused}");

        let gate = WriteGate::default();
        write_in_turn(&gate, &mut conn, |conn| insert(conn).map_err(sql_error)).unwrap();
        assert!(insert(&conn).is_err(), "a reader again after a turn");

        let failed: Result<()> = write_in_turn(&gate, &mut conn, |conn| {
            insert(conn).map_err(sql_error)?;
            Err(StoreError::internal("the caller's own failure"))
        });
        assert!(failed.is_err());
        assert!(insert(&conn).is_err(), "a reader again after a failed turn");
        let rows: i64 = conn
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 2, "reads go on as before");
    }

    #[test]
    fn the_writer_lets_a_waiting_occasional_writer_go_first() {
        let gate = Arc::new(WriteGate::default());
        let order = Arc::new(Mutex::new(Vec::new()));
        // The writer holds its turn (a group in progress) while an
        // occasional writer arrives.
        let first = gate.writer();
        let occasional = {
            let (gate, order) = (gate.clone(), order.clone());
            std::thread::spawn(move || {
                let _turn = gate.occasional();
                order.lock().unwrap().push("occasional");
                std::thread::sleep(Duration::from_millis(20));
            })
        };
        while gate.waiting.load(Ordering::Acquire) == 0 {
            std::thread::yield_now();
        }
        drop(first);
        // The writer's next turn comes after the waiting one's.
        let _next = gate.writer();
        order.lock().unwrap().push("writer");
        occasional.join().unwrap();
        assert_eq!(*order.lock().unwrap(), ["occasional", "writer"]);
    }

    #[test]
    fn the_writer_does_not_wait_forever_for_an_occasional_writer() {
        let gate = WriteGate::default();
        // Announced but never done (as if stuck): the writer goes after MAX_YIELD.
        gate.waiting.fetch_add(1, Ordering::AcqRel);
        let started = Instant::now();
        let _turn = gate.writer();
        assert!(started.elapsed() >= MAX_YIELD);
    }
}
