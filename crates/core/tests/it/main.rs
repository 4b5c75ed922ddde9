//! The integration tests of `auditlog-core`, one module per area (one test
//! binary for the crate, linked once).

mod guessing;
mod leaf_v2_independent;
