//! DRBD replication (replication.md): the wire layer and the connection machine; the data-path
//! machines (bitmap, activity log, transfer log, resync) come next.
//!
//! - [`wire`]: headers, every packet layout, the command table and the bitmap RLE+VLI codec, as
//!   zero-copy views plus `Repr`s that parse from and emit into caller buffers.
//! - [`conn`]: the connection machine: socket pair, feature negotiation, CRAM-HMAC, P_PROTOCOL
//!   checks, per-volume introduction, the UUID compare table and keep-alive, up to Connected.
//!
//! Nothing here allocates or panics; the connection machine reads [`wire::Frame`]s from the
//! caller's receive buffers and emits them into its send buffers under the [`wire::Agreed`]
//! parameters.

pub mod conn;
pub mod wire;
