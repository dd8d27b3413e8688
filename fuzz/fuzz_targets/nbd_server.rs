//! Arbitrary client bytes into the NBD server session; see `keelson_fuzz::nbd::check`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| keelson_fuzz::nbd::check(data));
