//! The OVS reconnect FSM under arbitrary event sequences; see `keelson_fuzz::reconnect`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| keelson_fuzz::reconnect::check(data));
