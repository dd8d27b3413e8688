//! Path lookups: `document NUL path NUL path …`; see `keelson_fuzz::lookup`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| keelson_fuzz::lookup::check(data));
