//! A progress line on standard error while `verify` walks an account, shown
//! only when standard error is a terminal (never in logs or tests).

use std::io::{IsTerminal, Write};

pub(super) struct Progress {
    enabled: bool,
}

impl Progress {
    pub(super) fn on_terminal() -> Self {
        Self {
            enabled: std::io::stderr().is_terminal(),
        }
    }

    pub(super) fn show(&self, account: &str, done: u64, total: u64) {
        if self.enabled {
            let mut err = std::io::stderr();
            let _ = write!(err, "\r\x1b[Kverifying {account}: {done}/{total} events");
            let _ = err.flush();
        }
    }

    pub(super) fn clear(&self) {
        if self.enabled {
            let _ = write!(std::io::stderr(), "\r\x1b[K");
        }
    }
}
