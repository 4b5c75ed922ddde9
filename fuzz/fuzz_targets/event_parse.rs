//! Event parsing and validation: any bytes as a request's event JSON.
//! The properties are `auditlog_core::fuzzing::check_event_json`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| auditlog_core::fuzzing::check_event_json(data));
