//! OVS JSON-RPC framing under arbitrary chunkings; see `keelson_fuzz::jsonrpc::check_frame`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| keelson_fuzz::jsonrpc::check_frame(data));
