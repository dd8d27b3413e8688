//! DRBD compressed bitmaps decoded, and bitmaps carried across; see `keelson_fuzz::repl::check_bitmap`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| keelson_fuzz::repl::check_bitmap(data));
