//! The postcard form: decode, re-encode, decode again; see `keelson_fuzz::binary`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| keelson_fuzz::binary::check(data));
