//! The node's public vocabulary: settings ([`NodeConfig`]), disk operations ([`Io`],
//! [`WriteData`], [`IoToken`]), application completions ([`Completion`]), notifications
//! ([`NodeEvent`]), refusals ([`NodeError`]), what `handle_recv` did ([`Received`]) and the
//! `status` snapshot ([`Status`]).

use core::fmt;

use super::meta::MetaState;
use crate::repl::conn::sync_handshake::Refusal;
use crate::repl::conn::{
    CommandError, Config, ConfigError, ConnState, DiskState, Event, Generation, ReplState, Role,
};
use crate::repl::data_error::DataError;
use crate::repl::resync::Segments;
use crate::repl::throttle::DEFAULT_RATE;
use crate::repl::write::DEFAULT_MAX_EPOCH_SIZE;

/// An application write's handle (also its block id on the wire).
pub type WriteId = u64;
/// An application read's handle.
pub type ReadId = u64;
/// An application flush's handle.
pub type FlushId = u64;

/// Largest application write (DRBD_MAX_BIO_SIZE at the versions the connection agrees).
pub const MAX_WRITE: usize = 1 << 20;

/// Settings of one resource: the connection's (`net` section) and the data path's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeConfig {
    /// Connection settings (node ids, protocol, policies, timers).
    pub conn: Config,
    /// `resync-rate` in bytes per second (0 = unlimited).
    pub resync_rate: u64,
    /// Resync requests in flight at most (capped at the node's table, 16).
    pub resync_in_flight: usize,
    /// Bytes per resync request at most (4 KiB multiple, ≤ 1 MiB).
    pub resync_request: u32,
    /// `max-epoch-size`: writes per epoch before a barrier is forced.
    pub max_epoch_size: u32,
    /// Records in the on-disk activity-log ring (DRBD's default 32 KiB area is 8).
    pub al_ring_records: u32,
    /// Largest application write accepted (bytes, ≤ [`MAX_WRITE`]); sizes the send queue.
    pub max_write: u32,
}

impl NodeConfig {
    /// DRBD's defaults around `conn`: 250 KiB/s resync in 8 requests of up to 128 KiB,
    /// max-epoch-size 2048, an 8-record activity-log ring.
    pub fn new(conn: Config) -> NodeConfig {
        NodeConfig {
            conn,
            resync_rate: DEFAULT_RATE,
            resync_in_flight: 8,
            resync_request: 128 << 10,
            max_epoch_size: DEFAULT_MAX_EPOCH_SIZE,
            al_ring_records: crate::repl::activity_log::DEFAULT_RING,
            max_write: MAX_WRITE as u32,
        }
    }

    /// The smallest send-queue storage [`super::Node::new`] accepts: one largest write and one
    /// resync reply with their headers, plus room for bitmap packets.
    pub fn min_send_buffer(&self) -> usize {
        (self.max_write as usize).min(MAX_WRITE) + 64 + self.resync_request as usize + 64 + 8192
    }
}

/// Names a disk operation from [`super::Node::poll_io`] until it is reported done.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct IoToken {
    pub(crate) index: u16,
    pub(crate) generation: u32,
}

/// Where a local write's bytes come from.
#[derive(Clone, Debug)]
pub enum WriteData<'a> {
    /// The data the application submitted as this write (the shell kept it).
    App(WriteId),
    /// These bytes (from the peer).
    Bytes(&'a [u8]),
    /// Resync data with blocks left out that an application write replaced meanwhile:
    /// write each `(sector, bytes)` piece (possibly none).
    Segments(Segments<'a>),
    /// Zeroes over this many bytes (P_ZEROES).
    Zeroes(u32),
    /// Discard this many bytes (P_TRIM).
    Discard(u32),
}

/// Who asked for a read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ReadFor {
    /// The application's read: fill its buffer, then [`super::Node::io_done`].
    App(ReadId),
    /// The peer's resync request: hand the bytes to [`super::Node::read_done`].
    Resync,
}

/// A disk operation for the shell. Operations may run concurrently, except that overlapping
/// writes must be applied in the order they are handed out (DRBD's receiver serialises them the
/// same way).
#[derive(Clone, Debug)]
pub enum Io<'a> {
    /// Write to the backing device.
    Write {
        /// Report completion with this.
        token: IoToken,
        /// First sector.
        sector: u64,
        /// What to write.
        data: WriteData<'a>,
        /// Flush the device cache before this write (REQ_PREFLUSH).
        flush: bool,
        /// Force unit access.
        fua: bool,
    },
    /// Read from the backing device.
    Read {
        /// Report completion with this.
        token: IoToken,
        /// First sector.
        sector: u64,
        /// Bytes.
        len: u32,
        /// Who asked.
        purpose: ReadFor,
    },
    /// Flush the backing device's cache.
    Flush {
        /// Report completion with this.
        token: IoToken,
    },
    /// Write the meta-data record ([`MetaState::store`] it into the superblock).
    PersistMeta {
        /// Report completion with this.
        token: IoToken,
        /// What to write.
        meta: MetaState,
    },
    /// Write part of the bitmap: `bytes` at byte `offset` of the on-disk bitmap area.
    PersistBitmap {
        /// Report completion with this.
        token: IoToken,
        /// Byte offset within the bitmap.
        offset: usize,
        /// The bytes (a copy of [`super::Node::bitmap_bytes`] at that range).
        bytes: &'a [u8],
    },
    /// Write one activity-log record (4096 bytes) at `offset` of the on-disk ring.
    AlTransaction {
        /// Report completion with this.
        token: IoToken,
        /// Byte offset within the ring.
        offset: u64,
        /// The record.
        record: &'a [u8],
    },
}

impl Io<'_> {
    /// The operation's token.
    pub fn token(&self) -> IoToken {
        match self {
            Io::Write { token, .. }
            | Io::Read { token, .. }
            | Io::Flush { token }
            | Io::PersistMeta { token, .. }
            | Io::PersistBitmap { token, .. }
            | Io::AlTransaction { token, .. } => *token,
        }
    }
}

/// An application request that finished.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Completion {
    /// A write: `ok` = the local write succeeded; `replicated` = the peer has it as the protocol
    /// promises (A: sent, B: received, C: written). Not replicated means its blocks are marked
    /// out of sync and will be resynced.
    Write {
        /// The write.
        id: WriteId,
        /// Local write succeeded.
        ok: bool,
        /// The peer has it.
        replicated: bool,
    },
    /// A read.
    Read {
        /// The read.
        id: ReadId,
        /// It succeeded.
        ok: bool,
    },
    /// A flush: local cache flushed and (protocol C, connected) the peer's barrier ack for every
    /// earlier write arrived.
    Flush {
        /// The flush.
        id: FlushId,
        /// The local flush succeeded.
        ok: bool,
    },
}

/// Which way a resync runs, from this node's side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum SyncSide {
    /// This node sends data.
    Source,
    /// This node receives data.
    Target,
}

/// A notification for the shell (log it, update status, run a helper).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum NodeEvent {
    /// From the connection machine (state changes, handshake decision, disconnect reasons, …).
    Conn(Event),
    /// Our role changed.
    RoleChanged {
        /// The new role.
        role: Role,
    },
    /// Our disk state changed.
    DiskChanged {
        /// The new state.
        disk: DiskState,
    },
    /// The handshake found a split brain it may not resolve: the connection is refused
    /// (StandAlone) and no data moved. Resolve with `connect(discard_my_data)` on the victim.
    SplitBrain {
        /// Both sides changed since a common bitmap UUID (an after-sb policy could decide).
        auto_recoverable: bool,
    },
    /// The handshake refused the connection for another reason (unrelated data, …).
    HandshakeRefused {
        /// Why.
        refusal: Refusal,
    },
    /// The bitmaps were exchanged and a resync started.
    ResyncStarted {
        /// Our side.
        side: SyncSide,
        /// Bits (4 KiB blocks) to resync.
        bits: u64,
    },
    /// The resync is over. `failed_bits` > 0: those blocks stay out of sync and the target
    /// stays Inconsistent.
    ResyncFinished {
        /// Our side.
        side: SyncSide,
        /// Blocks that failed.
        failed_bits: u64,
    },
    /// The resync was paused (by either side) or resumed.
    ResyncPaused {
        /// Paused now.
        paused: bool,
    },
    /// The peer refused our state-change request (invalidate, invalidate-remote).
    StateChangeRefused {
        /// DRBD's `SS_*` code.
        retcode: i32,
    },
    /// A local disk operation failed; the disk is Failed and application I/O stops.
    LocalIoError,
}

/// Why the node refused a request or command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum NodeError {
    /// Application I/O on a Secondary (the shell answers EROFS for writes, EPERM/EMEDIUMTYPE
    /// for reads as DRBD does).
    NotPrimary,
    /// The local disk is not UpToDate (application I/O, promotion, sync source).
    NoUpToDateDisk,
    /// A table or the send queue is full: retry after completions or transmits.
    Busy,
    /// The request is malformed (size, range).
    Data(DataError),
    /// The connection machine refused (two primaries, not StandAlone, …).
    Command(CommandError),
    /// The settings cannot work.
    Config(ConfigError),
    /// Only possible while not connected.
    Connected,
    /// Only possible while connected and in sync (Established).
    NotEstablished,
    /// A resync is running.
    ResyncRunning,
    /// Not possible while Primary.
    Primary,
    /// No disk is attached.
    Diskless,
    /// Neither connected nor trying to connect (`disconnect` has nothing to do).
    StandAlone,
    /// A disk is attached already.
    Attached,
    /// A state change is already waiting for the peer's reply.
    RequestPending,
    /// A storage slice is too short.
    BufferTooSmall {
        /// Which one (`"bitmap"`, `"send queue"`, `"activity-log ring"`).
        what: &'static str,
        /// Bytes needed.
        needed: usize,
        /// Bytes given.
        have: usize,
    },
    /// A token that names no pending operation.
    StaleToken,
}

impl From<DataError> for NodeError {
    fn from(e: DataError) -> Self {
        match e {
            DataError::Full { .. } | DataError::AlBusy { .. } | DataError::AlTransactionFull => {
                NodeError::Busy
            }
            e => NodeError::Data(e),
        }
    }
}

impl From<CommandError> for NodeError {
    fn from(e: CommandError) -> Self {
        match e {
            CommandError::NoUpToDateDisk => NodeError::NoUpToDateDisk,
            e => NodeError::Command(e),
        }
    }
}

impl fmt::Display for NodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NodeError::NotPrimary => f.write_str("not primary: application I/O refused"),
            NodeError::NoUpToDateDisk => f.write_str("need access to UpToDate data"),
            NodeError::Busy => f.write_str("busy: retry after completions"),
            NodeError::Data(e) => e.fmt(f),
            NodeError::Command(e) => e.fmt(f),
            NodeError::Config(e) => e.fmt(f),
            NodeError::Connected => f.write_str("not possible while connected"),
            NodeError::NotEstablished => f.write_str("needs an established connection"),
            NodeError::ResyncRunning => f.write_str("a resync is running"),
            NodeError::Primary => f.write_str("not possible while primary"),
            NodeError::Diskless => f.write_str("no disk attached"),
            NodeError::StandAlone => f.write_str("already StandAlone"),
            NodeError::Attached => f.write_str("a disk is attached"),
            NodeError::RequestPending => f.write_str("a state change awaits the peer's reply"),
            NodeError::BufferTooSmall { what, needed, have } => {
                write!(f, "{what} storage has {have} bytes, needs {needed}")
            }
            NodeError::StaleToken => f.write_str("token names no pending operation"),
        }
    }
}

impl core::error::Error for NodeError {}

/// What [`super::Node::handle_recv`] did with the bytes.
#[derive(Debug)]
pub struct Received<'a> {
    /// Bytes consumed from the front of the input.
    pub used: usize,
    /// Nothing consumed because the packet is incomplete: the total bytes it needs.
    pub need: Option<usize>,
    /// Nothing consumed because the node cannot take this packet now (writes or resync
    /// requests in flight at their limit): call again after `io_done` / `poll_transmit`.
    pub blocked: bool,
    /// A local write of the peer's bytes, borrowing the input: perform or copy it now.
    pub io: Option<Io<'a>>,
}

/// Resync progress for `status`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ResyncStatus {
    /// Our side.
    pub side: SyncSide,
    /// Bits (4 KiB) to resync when it started plus any added since.
    pub total_bits: u64,
    /// Bits still out of sync.
    pub left_bits: u64,
    /// Bits that failed.
    pub failed_bits: u64,
    /// Average rate while running (bytes per second).
    pub rate: u64,
    /// Milliseconds left at that rate.
    pub eta_ms: Option<u64>,
    /// Paused (by either side).
    pub paused: bool,
}

/// A `status` snapshot, plain data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Status {
    /// Our role.
    pub role: Role,
    /// The peer's role as last announced (Unknown when not connected).
    pub peer_role: Role,
    /// The connection state.
    pub conn: ConnState,
    /// The replication state of the volume.
    pub repl: ReplState,
    /// Our disk state.
    pub disk: DiskState,
    /// The peer's disk state (DUnknown when not connected).
    pub peer_disk: DiskState,
    /// Bits (4 KiB blocks) out of sync with the peer.
    pub out_of_sync_bits: u64,
    /// Resync progress while one runs.
    pub resync: Option<ResyncStatus>,
    /// Paused by `pause-sync` here.
    pub user_paused: bool,
    /// Paused by the peer.
    pub peer_paused: bool,
    /// Our generation UUIDs.
    pub generation: Generation,
    /// Application writes in the transfer log.
    pub writes_in_flight: usize,
    /// Device size in sectors.
    pub size_sectors: u64,
}
