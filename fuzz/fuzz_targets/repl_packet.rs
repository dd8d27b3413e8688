//! DRBD headers and every packet layout, parse → emit → parse; see `keelson_fuzz::repl::check_packet`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| keelson_fuzz::repl::check_packet(data));
