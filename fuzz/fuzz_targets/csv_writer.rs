//! The export writers: any bytes as JSON Lines of events, each accepted one
//! exported as a CSV row (and a JSON line) and read back.
//! The properties are `auditlog_server::fuzzing::check_csv_input`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| auditlog_server::fuzzing::check_csv_input(data));
