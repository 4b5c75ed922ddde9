//! The binary's integration tests: the real `auditlog` binary driven over
//! real HTTP and through its commands. One test binary with a module per
//! area, so that the tests link once instead of once per file (the way
//! zero-to-production's `tests/api/main.rs` is laid out); `helpers` holds
//! the shared [`helpers::TestServer`].
//!
//! The tests share this process, so none may change its environment or
//! working directory: each server is a child process with its own data
//! directory (or PostgreSQL database) and port, and settings go to the
//! child's command line or environment only.

mod helpers;

mod admin;
mod api;
mod cli;
mod client;
mod config;
mod console;
mod demo;
mod disk_full;
mod durability;
mod erasure;
mod event_types;
mod exports;
mod leaf_v2;
mod live_tail;
mod logs;
mod metrics;
mod monitor;
mod personal_paths;
mod postgres_copy;
mod postgres_scale_out;
mod postgres_verify;
mod proofs;
mod retention;
mod retention_ops;
mod search;
mod send;
mod streams;
mod streams_features;
mod streams_kinds;
mod tamper;
mod tiles;
mod two_factor;
mod users;
mod witness;
mod witnessed;
