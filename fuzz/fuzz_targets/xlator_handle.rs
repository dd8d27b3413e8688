//! storage/posix's on-disk names; see `keelson_fuzz::handle::check`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| keelson_fuzz::handle::check(data));
