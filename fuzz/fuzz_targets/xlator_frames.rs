//! GlusterFS translator graphs running fop sequences; see `keelson_fuzz::xlator`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| keelson_fuzz::xlator::check(data));
