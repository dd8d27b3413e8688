//! GlusterFS volfile text; see `keelson_fuzz::volfile`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| keelson_fuzz::volfile::check(data));
