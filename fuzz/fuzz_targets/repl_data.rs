//! DRBD data path under arbitrary packet sequences; see `keelson_fuzz::repl_data::check_data`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| keelson_fuzz::repl_data::check_data(data));
