//! DRBD v08 meta data: superblocks and area geometry; see `keelson_fuzz::repl_meta::check_meta`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| keelson_fuzz::repl_meta::check_meta(data));
