//! Why the data path refused an input: a range off the device, a full table, an ack that matches
//! nothing, a barrier ack with the wrong count, a torn activity-log record. Every variant names
//! the value that was wrong and, for full tables, the capacity to raise.

use core::fmt;

use super::wire::{self, Command};

/// A data-path failure (dirty bitmap, activity log, transfer log, write replication, resync).
/// Errors caused by the peer's packets are protocol errors: upstream disconnects on them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum DataError {
    /// The caller's bitmap slice is shorter than the device needs.
    BitmapTooSmall {
        /// Bytes needed (whole 64-bit words).
        needed: usize,
        /// Bytes given.
        have: usize,
    },
    /// A range that ends past the device.
    OutOfRange {
        /// First sector.
        sector: u64,
        /// Length in bytes.
        len: u64,
        /// Device size in sectors.
        capacity: u64,
    },
    /// A write or request size that is zero, not a multiple of 512, or above the agreed maximum
    /// (replication.md §1 "data size", §10.18).
    BadSize {
        /// The size in bytes.
        size: u64,
        /// The largest size allowed.
        max: u32,
    },
    /// A fixed-capacity table is full; the named const generic needs to be at least `capacity + 1`
    /// (or the caller must wait for completions).
    Full {
        /// What is full (`"transfer log"`, `"resync requests"`, …).
        what: &'static str,
        /// Its capacity.
        capacity: usize,
    },
    /// An ack or reply for a request that is not outstanding.
    UnknownRequest {
        /// The packet.
        command: Command,
        /// Its sector.
        sector: u64,
        /// Its block id (host order as [`wire::BlockId::to_host`] reads it).
        block_id: u64,
    },
    /// An ack or reply whose sector or size differs from the request it names.
    AckMismatch {
        /// The packet.
        command: Command,
        /// The request's sector.
        expected_sector: u64,
        /// The request's size.
        expected_size: u32,
        /// The packet's sector.
        sector: u64,
        /// The packet's size.
        size: u32,
    },
    /// A P_BARRIER_ACK that does not match the oldest unacknowledged epoch (replication.md §5).
    BarrierMismatch {
        /// The epoch number expected (`None` when no epoch awaits an ack).
        expected: Option<u32>,
        /// The number received.
        got: u32,
        /// Writes in that epoch.
        expected_size: u32,
        /// The set_size received.
        got_size: u32,
    },
    /// A packet this machine does not take, or not in its current state.
    Unexpected {
        /// The packet.
        command: Command,
    },
    /// A token that names no pending operation (already completed, or never issued).
    StaleToken,
    /// Every activity-log slot is held by in-flight writes: wait for one to complete.
    AlBusy {
        /// Slots in the log (`al-extents`).
        slots: usize,
    },
    /// The write touches more new extents than one AL transaction records (64): commit first.
    AlTransactionFull,
    /// An activity-log ring record that is well-formed but does not fit this log.
    AlRecord {
        /// Ring position of the record.
        index: usize,
        /// What is wrong.
        reason: &'static str,
    },
    /// The activity-log ring is too short to always hold every slot (needs `needed` records).
    AlRingTooShort {
        /// Records needed.
        needed: u32,
        /// Records configured.
        have: u32,
    },
    /// Encoding a packet failed (usually an output buffer that is too small: see `required`).
    Wire(wire::Error),
}

impl From<wire::Error> for DataError {
    fn from(e: wire::Error) -> Self {
        DataError::Wire(e)
    }
}

impl fmt::Display for DataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DataError::BitmapTooSmall { needed, have } => {
                write!(f, "bitmap slice has {have} bytes, the device needs {needed}")
            }
            DataError::OutOfRange {
                sector,
                len,
                capacity,
            } => write!(
                f,
                "{len} bytes at sector {sector} end past the device ({capacity} sectors)"
            ),
            DataError::BadSize { size, max } => write!(
                f,
                "size {size} is not a non-zero multiple of 512 up to {max} bytes"
            ),
            DataError::Full { what, capacity } => {
                write!(f, "{what} full ({capacity} entries): wait or raise its capacity")
            }
            DataError::UnknownRequest {
                command,
                sector,
                block_id,
            } => write!(
                f,
                "{} for sector {sector} (block id {block_id:#x}) matches no outstanding request",
                command.name()
            ),
            DataError::AckMismatch {
                command,
                expected_sector,
                expected_size,
                sector,
                size,
            } => write!(
                f,
                "{} says {size} bytes at sector {sector}, the request was {expected_size} at {expected_sector}",
                command.name()
            ),
            DataError::BarrierMismatch {
                expected: Some(e),
                got,
                expected_size,
                got_size,
            } => write!(
                f,
                "P_BARRIER_ACK for epoch {got} with {got_size} writes, expected epoch {e} with {expected_size}"
            ),
            DataError::BarrierMismatch {
                expected: None,
                got,
                ..
            } => write!(f, "P_BARRIER_ACK for epoch {got}, but no epoch awaits an ack"),
            DataError::Unexpected { command } => {
                write!(f, "{} is not expected here", command.name())
            }
            DataError::StaleToken => f.write_str("token names no pending operation"),
            DataError::AlBusy { slots } => write!(
                f,
                "all {slots} activity-log slots are in use by in-flight writes"
            ),
            DataError::AlTransactionFull => {
                f.write_str("activity-log transaction full (64 updates): commit it first")
            }
            DataError::AlRecord { index, reason } => {
                write!(f, "activity-log record {index}: {reason}")
            }
            DataError::AlRingTooShort { needed, have } => write!(
                f,
                "activity-log ring of {have} records cannot hold every slot; needs {needed}"
            ),
            DataError::Wire(e) => write!(f, "encoding a packet: {e}"),
        }
    }
}

impl core::error::Error for DataError {}
