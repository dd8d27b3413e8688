//! OVS JSON-RPC message parse → write → parse; see `keelson_fuzz::jsonrpc::check_message`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| keelson_fuzz::jsonrpc::check_message(data));
