//! Text parsing in dup-check (`dm_config_from_string`) mode; see `keelson_fuzz::text`.
#![no_main]

use keelson_core::config::ParseOptions;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| keelson_fuzz::text::check(data, ParseOptions::MERGE));
