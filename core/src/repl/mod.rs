//! DRBD replication (replication.md): the wire layer now, the connection and resync machines later.
//!
//! - [`wire`]: headers, every packet layout, the command table and the bitmap RLE+VLI codec, as
//!   zero-copy views plus `Repr`s that parse from and emit into caller buffers.
//!
//! Nothing here allocates or panics; a sans-IO connection machine reads [`wire::Frame`]s from its
//! receive buffer and emits them into its send buffer under the [`wire::Agreed`] parameters.

pub mod activity_log;
pub mod bitmap;
pub mod data_error;
pub mod resync;
pub mod resync_source;
pub mod secondary;
pub mod throttle;
pub mod transfer_log;
pub mod wire;
pub mod write;
