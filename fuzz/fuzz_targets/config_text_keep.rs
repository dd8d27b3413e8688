//! Text parsing in libdaemon (`dm_config_parse_without_dup_node_check`) mode; see `keelson_fuzz::text`.
#![no_main]

use keelson_core::config::ParseOptions;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| keelson_fuzz::text::check(data, ParseOptions::KEEP));
