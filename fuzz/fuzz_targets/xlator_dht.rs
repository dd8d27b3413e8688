//! cluster/distribute graphs running fop sequences; see `keelson_fuzz::xlator_dht`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| keelson_fuzz::xlator_dht::check(data));
