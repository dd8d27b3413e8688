//! libdaemon framing and dispatch from arbitrary byte streams; see `keelson_fuzz::daemon`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| keelson_fuzz::daemon::check(data));
