//! The JSON-RPC session under an arbitrary shell; see `keelson_fuzz::session`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| keelson_fuzz::session::check(data));
