//! Search queries: any bytes as the `q` parameter.
//! The properties are `auditlog_core::fuzzing::check_query_text`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| auditlog_core::fuzzing::check_query_text(data));
