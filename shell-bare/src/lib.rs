//! Keelson's bare-metal shell (`no_std`, no allocator): binds `keelson-core` to firmware.
//!
//! - [`config`]: the controller's own configuration, parsed from text in static memory.
//!
//! Networking (smoltcp + embedded-io) arrives with the protocols that need it.
#![no_std]
#![forbid(unsafe_code)]

pub mod config;
