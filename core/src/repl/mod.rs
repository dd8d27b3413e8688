//! DRBD replication (replication.md): the wire layer, the connection machine and the data path.
//!
//! - [`wire`]: headers, every packet layout, the command table and the bitmap RLE+VLI codec, as
//!   zero-copy views plus `Repr`s that parse from and emit into caller buffers.
//! - [`conn`]: the connection machine: socket pair, feature negotiation, CRAM-HMAC, P_PROTOCOL
//!   checks, per-volume introduction, the UUID compare table and keep-alive, up to Connected.
//! - Data path (§5, §6.2, §6.4), all sans-IO over caller storage:
//!   - [`bitmap`]: the dirty bitmap, 4 KiB per bit, and its half of the bitmap exchange.
//!   - [`activity_log`]: hot 4 MiB extents, their on-disk transaction records and crash
//!     recovery ("apply-al").
//!   - [`transfer_log`]: writes from submission to barrier ack; what a lost link marks dirty.
//!   - [`write`](mod@write): the primary: protocols A/B/C, epochs and barriers, completions.
//!   - [`secondary`]: the receiving side: local writes, acks per protocol, barrier acks after a
//!     flush.
//!   - [`resync`]: the SyncTarget driver and [`resync::route`] (which machine takes a packet);
//!     [`resync_source`]: the SyncSource; [`throttle`]: the resync rate and progress.
//!   - [`data_error`]: why any of them refused an input.
//! - [`admin`]: the control commands (drbdsetup's verbs) as one table shared by client and
//!   daemon, DRBD-style failures, the status model and its text / JSON renderers.
//! - [`meta`]: the on-disk meta data (DRBD 8.4's external v08 format): superblock with UUIDs and
//!   flags, the activity-log ring and the bitmap areas.
//! - [`node`]: all of the above composed into one machine per resource (one peer, one volume).
//!
//! Nothing here allocates or panics; the connection machine reads [`wire::Frame`]s from its
//! receive buffer and emits them into its send buffer under the [`wire::Agreed`] parameters, and
//! hands the data-path frames to the machines above. They take `now` in milliseconds and emit
//! their packets into caller buffers; disk I/O goes out as actions (a local write, a read, an
//! activity-log record, a flush) and comes back as completion calls.

pub mod activity_log;
pub mod admin;
pub mod bitmap;
pub mod conn;
pub mod data_error;
pub mod meta;
pub mod node;
pub mod resync;
pub mod resync_source;
pub mod secondary;
pub mod throttle;
pub mod transfer_log;
pub mod wire;
pub mod write;
