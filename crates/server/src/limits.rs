//! The protective limits of a serving process. One struct, filled from the
//! configuration by the binary and read by the layers that enforce it.

use std::time::Duration;

/// How much one API key, one request and all connections together may take.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Requests per second one API key may make, sustained; 0 turns the
    /// per-key rate limit off.
    pub rate_limit_per_second: u32,
    /// Requests one API key may make at once above the sustained rate.
    pub rate_limit_burst: u32,
    /// Longest a request may take before it is answered with an error.
    pub request_timeout: Duration,
    /// Most TCP connections served at once; further ones wait to be accepted.
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            // Far above one busy product's traffic, low enough that one
            // runaway client cannot take the whole writer.
            rate_limit_per_second: 5_000,
            rate_limit_burst: 10_000,
            request_timeout: Duration::from_secs(30),
            max_connections: 1_024,
        }
    }
}
