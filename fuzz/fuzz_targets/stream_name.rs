//! OVS stream names: no panic, canonical round trip; see `keelson_fuzz::stream::check`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| keelson_fuzz::stream::check(data));
