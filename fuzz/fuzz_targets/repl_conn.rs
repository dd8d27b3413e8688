//! The DRBD connection machine under arbitrary events and mutated peers; see
//! `keelson_fuzz::repl_conn::check`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| keelson_fuzz::repl_conn::check(data));
