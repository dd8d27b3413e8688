//! Keelson's Linux shell: binds `keelson-core` to files, sockets and processes.
//!
//! - [`configcmd`]: `keelctl config` — format, query and convert config-tree files.
//! - [`source`]: reading a named file or standard input, and naming it in error messages.
//!
//! The binaries `keelctl` (operator tool) and `keelsond` (host agent) are thin `clap` front ends
//! over these modules.

pub mod configcmd;
pub mod source;
