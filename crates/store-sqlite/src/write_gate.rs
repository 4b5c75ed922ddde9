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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

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
