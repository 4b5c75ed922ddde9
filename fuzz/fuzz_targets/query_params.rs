//! Query parameters and cursors: any bytes as the query string of
//! `GET /api/v1/events` (or, starting with `{`, an export's `filters`).
//! The properties are `auditlog_server::fuzzing::check_query_input`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| auditlog_server::fuzzing::check_query_input(data));
