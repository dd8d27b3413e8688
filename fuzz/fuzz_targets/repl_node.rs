//! The per-resource DRBD machine, two nodes under arbitrary commands, crashes and mutated
//! traffic; see `keelson_fuzz::repl_node::check`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| keelson_fuzz::repl_node::check(data));
