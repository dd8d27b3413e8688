//! One DRBD resource as one sans-IO machine (replication.md §4–§6): the [`conn`](super::conn)
//! handshake and the data path ([`bitmap`](super::bitmap), [`activity_log`](super::activity_log),
//! [`write`](super::write), [`secondary`](super::secondary), [`resync`](super::resync),
//! [`resync_source`](super::resync_source)) composed for **one peer and one volume** (volume 0).
//! This is what keelsond (and later firmware) drives; it moves no bytes and reads no clock.
//!
//! # API at a glance
//!
//! ```text
//! Node<R: Entropy, B: AsRef<[u8]> + AsMut<[u8]>, const AL: usize = 1237>
//!
//! Node::new(config: NodeConfig, meta: MetaState, al_ring: &[u8], bitmap: B, send: B, rng: R)
//!     -> Result<Node, NodeError>
//!   meta     the persisted per-volume record (on disk: repl::meta's v08 superblock, via
//!            MetaState::{from_superblock, store}): generation UUIDs (conn::Generation, incl. crashed-primary), md flags
//!            (CONSISTENT, PRIMARY_IND, FULL_SYNC, WAS_UP_TO_DATE, AL_CLEAN, ... DRBD 8.4 bit
//!            values), size in sectors. The start disk state follows from the flags.
//!   al_ring  the on-disk activity-log ring (config.al_ring_records × 4096 bytes, blank = zeros);
//!            replayed and applied to the bitmap ("apply-al") unless AL_CLEAN is set.
//!   bitmap   the caller's bitmap storage (bitmap::bytes_for(size) bytes, persisted bits as read
//!            back from disk); the node owns it, the shell reads it through bitmap_bytes().
//!   send     the data-socket send queue storage (>= NodeConfig::min_send_buffer()): P_DATA and
//!            resync replies are *copied* into it, so the caller's write buffer is only needed
//!            again for the local write (Io::Write with WriteData::App(id)).
//!
//! Network side (same contract as conn::Connection):
//!   handle_connected(now, id) / handle_connect_failed(now) / handle_accepted(now, id) /
//!   handle_closed(now, id)
//!   handle_recv(now, id, bytes) -> Received<'_> { used, need, blocked, io: Option<Io<'_>> }
//!       one packet per call; data-path frames are routed internally. `blocked`: the node cannot
//!       take this packet now (max-buffers back-pressure): retry after io_done / poll_transmit.
//!       `io` is a local write carrying the peer's bytes (borrowed from `bytes`): submit or copy
//!       it before dropping the input.
//!   handle_timeout(now); poll_timeout() -> Option<u64>
//!   poll_action() -> Option<conn::Action>           Connect / Close(id)
//!   poll_transmit(now, buf) -> Option<(SocketId, usize)>   a byte stream: any buf size works
//!   poll_event() -> Option<NodeEvent>               conn events passed through + role, disk,
//!                                                   split brain, resync started/finished, ...
//! Application side (Primary only; a Secondary gets NodeError::NotPrimary -> EROFS):
//!   submit_write(now, sector, data, WriteFlags) -> Result<WriteId, NodeError>
//!   submit_read(now, sector, len) -> Result<ReadId, NodeError>
//!   submit_flush(now) -> Result<FlushId, NodeError>
//!   poll_completion() -> Option<Completion>   Write{id, ok, replicated} per protocol A/B/C (§5),
//!                                             Read{id, ok}, Flush{id, ok}
//!   NodeError::Busy = a full table / send queue: retry after completions or transmits.
//! Disk side, polled:
//!   poll_io() -> Option<Io<'_>>
//!     Io::Write{token, sector, data: WriteData::{App(id) | Bytes | Segments | Zeroes | Discard},
//!               flush, fua}
//!     Io::Read{token, sector, len, purpose: ReadFor::{App(id) | Resync}}
//!     Io::Flush{token}
//!     Io::PersistMeta{token, meta}               write MetaState (UUIDs / flags changed)
//!     Io::PersistBitmap{token, offset, bytes}    write these bitmap bytes at this offset
//!     Io::AlTransaction{token, offset, record}   a 4096-byte AL record at this ring offset
//!   io_done(now, token, ok) ; read_done(now, token, data) (resync reads hand the bytes back)
//!   Writes wait for their AL record (and, after promotion, the PRIMARY_IND meta write) before
//!   either the local write or P_DATA goes out.
//! Commands (drbdsetup-like):
//!   primary(now, force), secondary(now), connect(now, discard_my_data), disconnect(now),
//!   attach(now, meta, al_ring), detach(now), invalidate(now), invalidate_remote(now),
//!   pause_sync(now), resume_sync(now), new_current_uuid(now, clear_bitmap),
//!   status(now) -> Status { role, peer_role, conn, repl, disk, peer_disk, out_of_sync_bits,
//!                           resync: Option<ResyncStatus{side, total_bits, left_bits,
//!                           failed_bits, rate (bytes/s), eta_ms, paused}>, user_paused,
//!                           peer_paused, generation, writes_in_flight, size_sectors }
//!   All return Result<(), NodeError> except disconnect and status.
//! Queries: role(), disk(), repl(), meta(), bitmap_bytes(), out_of_sync_bits(), max_write(),
//!   io_in_flight(), connection() (the conn::Connection, read-only), lost() (must stay 0).
//! ```
//!
//! # Driving it
//!
//! After every input (a `handle_*`, `submit_*`, `io_done` / `read_done` or command call) the
//! shell drains, in any order: [`Node::poll_action`], [`Node::poll_transmit`] until `None`,
//! [`Node::poll_io`] until `None`, [`Node::poll_event`], [`Node::poll_completion`]; and calls
//! [`Node::handle_timeout`] when [`Node::poll_timeout`] passes. A `blocked` receive is retried
//! after the next completion or transmit. `now` is milliseconds on any monotonic clock.
//!
//! # What lives where
//!
//! - here: [`Node`], its construction from persisted state and the queries.
//! - [`meta`]: [`MetaState`], DRBD's `MDF_*` flags and its conversion to and from the v08 superblock.
//! - [`types`]: the public vocabulary: [`NodeConfig`], [`Io`], [`Completion`], [`NodeEvent`],
//!   [`NodeError`], [`Received`], [`Status`].
//! - `queue`: the send queues (data socket in caller storage, meta socket inline).
//! - `net`: the socket events, `handle_recv`, timers, `poll_transmit` and the pump that moves
//!   the connection machine's output and events into the data path.
//! - `frames`: which machine takes each data-path packet (§5, §6.4), and the state-change
//!   requests.
//! - `sync`: bitmap exchange, resync start (P_SYNC_UUID) and finish (UUID step §6.1), pausing.
//! - `app`: application writes, reads and flushes (activity log first, §6.2), completions.
//! - `disk`: `poll_io`, `io_done`, `read_done`.
//! - `commands`: primary/secondary, connect/disconnect, attach/detach, invalidate(-remote),
//!   pause/resume, new-current-uuid and `status`.
//!
//! # Choices
//!
//! - The connection runs the 8.4 flow (see [`conn`](super::conn)): P_SYNC_UUID starts a resync,
//!   state changes the peer must agree to (invalidate, invalidate-remote) use
//!   P_STATE_CHG_REQ / P_STATE_CHG_REPLY, and promotion is announced with P_STATE only (a
//!   concurrent promotion of both nodes while connected is caught as a protocol error on the
//!   first replicated write, not by a cluster-wide request).
//! - A Primary never becomes SyncTarget (the handshake's rr-conflict refuses it, invalidate is
//!   refused while Primary), so application I/O always has a local UpToDate disk.
//! - Crash safety: a write's extent is in the on-disk activity log before P_DATA or the local
//!   write go out; PRIMARY_IND is on disk before the first write after promotion; bits of
//!   evicted extents are written before the record that evicts them. Bits cleared by a resync
//!   are written lazily (a crash resyncs more, never less).
//! - Capacities are fixed here: 128 writes in the transfer log, 64 replicated writes and 16
//!   epochs on the receiving side, 16 resync requests; only the activity log's size (`AL`) is a
//!   const generic. The node is ~100 KiB: box it on small stacks.

mod app;
mod commands;
mod disk;
mod frames;
pub mod meta;
mod net;
mod queue;
mod sync;
pub mod types;

use heapless::{Deque, Vec};

pub use meta::{md_flag, MetaState};
pub use types::{
    Completion, FlushId, Io, IoToken, NodeConfig, NodeError, NodeEvent, ReadFor, ReadId, Received,
    ResyncStatus, Status, SyncSide, WriteData, WriteId, MAX_WRITE,
};

use super::activity_log::{ActivityLog, DEFAULT_EXTENTS, RECORD_SIZE};
use super::bitmap::{bytes_for, DirtyBitmap};
use super::conn::sync_handshake::SyncOutcome;
use super::conn::{Connection, DiskState, Entropy, ReplState, Role, SocketId, VolumeConfig};
use super::resync::{ResyncConfig, ResyncToken, SyncTarget};
use super::resync_source::{ReadRequest, ReadToken, SyncSource};
use super::secondary::{FlushToken, Secondary, SecondaryConfig, WriteToken};
use super::wire::bitmap::BitmapXfer;
use super::wire::Agreed;
use super::write::{Primary, PrimaryConfig, Protocol};
use queue::ByteQueue;

/// Writes in the transfer log.
pub const TL: usize = 128;
/// Replicated writes in flight on the receiving side.
const SEC_WRITES: usize = 64;
/// Epochs awaiting their barrier ack on the receiving side.
const SEC_EPOCHS: usize = 16;
/// Resync requests in flight (either side).
const RS: usize = 16;
/// Disk operations queued but not yet handed out.
const IO_QUEUE: usize = 320;
/// Disk operations handed out and not yet done.
const SLOTS: usize = 384;
const EVENTS: usize = 64;
const COMPLETIONS: usize = 64;
const FLUSHES: usize = 16;
/// The meta socket's queue: every ack the writes and resync requests in flight can cause.
const META_QUEUE: usize = 16 << 10;
/// The volume this node runs.
const VOLUME: u16 = 0;

/// The bitmap over caller storage, with its set-bit count kept between views.
#[derive(Debug)]
struct Bits<B> {
    store: B,
    capacity: u64,
    dirty: u64,
}

impl<B: AsRef<[u8]> + AsMut<[u8]>> Bits<B> {
    /// Runs `f` on a [`DirtyBitmap`] view and keeps its count.
    fn with<T>(&mut self, f: impl FnOnce(&mut DirtyBitmap<'_>) -> T) -> T {
        let mut bm = DirtyBitmap::resume(self.store.as_mut(), self.capacity, self.dirty);
        let r = f(&mut bm);
        self.dirty = bm.count();
        r
    }

    fn bytes(&self) -> &[u8] {
        let n = bytes_for(self.capacity).min(self.store.as_ref().len());
        self.store.as_ref().get(..n).unwrap_or(&[])
    }
}

/// An application write waiting for its activity-log record or the PRIMARY_IND meta write.
#[derive(Clone, Copy, Debug)]
struct Held {
    id: WriteId,
    sector: u64,
    flush: bool,
    fua: bool,
    /// The AL transaction it waits for.
    al: Option<u64>,
    /// Stream position of its [P_BARRIER +] P_DATA in the send queue (None: nothing sent).
    stream: Option<u64>,
}

/// A disk operation queued for [`Node::poll_io`].
#[derive(Clone, Copy, Debug)]
enum PendingIo {
    AppWrite {
        id: WriteId,
        sector: u64,
        flush: bool,
        fua: bool,
    },
    AppRead {
        id: ReadId,
        sector: u64,
        len: u32,
    },
    SourceRead(ReadRequest),
    AppFlush(FlushId),
    SecFlush(FlushToken),
    Meta,
    Bitmap {
        offset: usize,
        len: usize,
        for_al: bool,
    },
}

/// What a handed-out token stands for.
#[derive(Clone, Copy, Debug)]
enum Op {
    AppWrite(WriteId),
    AppRead(ReadId),
    AppFlush(FlushId),
    SecWrite(WriteToken),
    SecFlush(FlushToken),
    Resync(ResyncToken),
    SourceRead { token: ReadToken, size: u32 },
    Meta { seq: u64 },
    Bitmap { for_al: bool },
    Al(u64),
}

#[derive(Clone, Copy, Debug)]
struct Slot {
    generation: u32,
    /// Connection epoch the operation belongs to (data-path tokens of an old connection are
    /// dropped on completion).
    epoch: u32,
    op: Op,
}

/// The activity-log record being written.
#[derive(Clone, Copy, Debug)]
struct AlIo {
    number: u64,
    offset: u64,
    /// Bitmap writes of evicted extents that must land first.
    waits: u32,
    handed: bool,
}

/// An application flush until it completes.
#[derive(Clone, Copy, Debug)]
struct FlushRec {
    id: FlushId,
    local: Option<bool>,
    /// Writes up to this id must be barrier-acked first (protocol C while connected).
    until: Option<WriteId>,
}

/// Our state-change request waiting for the peer's reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Request {
    Invalidate,
    InvalidateRemote,
}

/// One DRBD resource: one peer, one volume (number 0). See the module docs.
pub struct Node<R: Entropy, B: AsRef<[u8]> + AsMut<[u8]>, const AL: usize = DEFAULT_EXTENTS> {
    cfg: NodeConfig,
    conn: Connection<R, 1>,
    flags: u32,
    size: u64,
    bits: Bits<B>,
    sendq: ByteQueue<B>,
    metaq: ByteQueue<[u8; META_QUEUE]>,
    data_sock: Option<SocketId>,
    meta_sock: Option<SocketId>,
    al: ActivityLog<AL>,
    al_record: [u8; RECORD_SIZE],
    al_io: Option<AlIo>,
    primary: Primary<TL>,
    secondary: Secondary<SEC_WRITES, SEC_EPOCHS>,
    target: SyncTarget<RS>,
    source: SyncSource<RS>,
    xfer_tx: Option<BitmapXfer>,
    xfer_rx: Option<BitmapXfer>,
    outcome: Option<SyncOutcome>,
    held: Deque<Held, TL>,
    source_reads: Deque<ReadRequest, RS>,
    /// Send-queue bytes kept for resync replies being read.
    reserved: usize,
    ios: Deque<PendingIo, IO_QUEUE>,
    slots: [Option<Slot>; SLOTS],
    slot_generation: u32,
    flushes: Vec<FlushRec, FLUSHES>,
    completions: Deque<Completion, COMPLETIONS>,
    events: Deque<NodeEvent, EVENTS>,
    epoch: u32,
    now: u64,
    next_read: ReadId,
    next_flush: FlushId,
    last_write: WriteId,
    /// Meta writes asked for / completed (sequence numbers).
    meta_want: u64,
    meta_done: u64,
    meta_queued: bool,
    /// Writes wait until this meta write is done (PRIMARY_IND after promotion).
    meta_gate: u64,
    /// Resync requests wait until this meta write is done (CONSISTENT cleared).
    target_gate: u64,
    request: Option<Request>,
    peer_word: u32,
    peer_paused: bool,
    resync_side: Option<SyncSide>,
    /// The peer (SyncTarget) announced Established: our resync is over once idle.
    source_done_by_peer: bool,
    lost: u32,
}

impl<R: Entropy, B: AsRef<[u8]> + AsMut<[u8]>, const AL: usize> Node<R, B, AL> {
    /// A node from its persisted state: `meta` (see [`MetaState`]), the activity-log ring as
    /// read from disk (`al_ring`, `config.al_ring_records` records; zeros or empty = blank),
    /// the bitmap storage holding the persisted bits (`bitmap`, at least
    /// [`bytes_for`]`(meta.size_sectors)` bytes) and the send-queue storage (`send`, at least
    /// [`NodeConfig::min_send_buffer`]). Starts Secondary and StandAlone.
    ///
    /// A PRIMARY_IND flag means the node crashed as primary (crashed-primary); without AL_CLEAN
    /// the ring is replayed and its extents marked out of sync ("apply-al"); FULL_SYNC sets
    /// every bit. The updated meta data and bits go out as the first [`Io`]s.
    pub fn new(
        config: NodeConfig,
        meta: MetaState,
        al_ring: &[u8],
        bitmap: B,
        send: B,
        rng: R,
    ) -> Result<Self, NodeError> {
        let needed = config.min_send_buffer();
        if send.as_ref().len() < needed {
            return Err(NodeError::BufferTooSmall {
                what: "send queue",
                needed,
                have: send.as_ref().len(),
            });
        }
        let al = ActivityLog::<AL>::new(config.al_ring_records)?;
        let mut conn = Connection::new(config.conn.clone(), rng).map_err(NodeError::Config)?;
        conn.add_volume(VolumeConfig::new(
            VOLUME,
            meta.generation,
            DiskState::Diskless,
            0,
        ))?;
        let protocol = Protocol::from_wire(config.conn.protocol as u32).unwrap_or(Protocol::C);
        let agreed = Agreed::default();
        // Sizes writes by the highest version the connection offers until one is agreed.
        let mut pcfg = PrimaryConfig::new(protocol, Agreed::new(config.conn.pv_max, 0));
        pcfg.max_epoch_size = config.max_epoch_size.max(1);
        let resync = resync_config(&config, agreed);
        let mut node = Node {
            conn,
            flags: 0,
            size: 0,
            bits: Bits {
                store: bitmap,
                capacity: 0,
                dirty: 0,
            },
            sendq: ByteQueue::new(send),
            metaq: ByteQueue::new([0; META_QUEUE]),
            data_sock: None,
            meta_sock: None,
            al,
            al_record: [0; RECORD_SIZE],
            al_io: None,
            primary: Primary::new(pcfg),
            secondary: Secondary::new(SecondaryConfig {
                protocol,
                volume: VOLUME,
                agreed,
            }),
            target: SyncTarget::new(resync),
            source: SyncSource::new(agreed, VOLUME),
            xfer_tx: None,
            xfer_rx: None,
            outcome: None,
            held: Deque::new(),
            source_reads: Deque::new(),
            reserved: 0,
            ios: Deque::new(),
            slots: [None; SLOTS],
            slot_generation: 0,
            flushes: Vec::new(),
            completions: Deque::new(),
            events: Deque::new(),
            epoch: 0,
            now: 0,
            next_read: 1,
            next_flush: 1,
            last_write: 0,
            meta_want: 0,
            meta_done: 0,
            meta_queued: false,
            meta_gate: 0,
            target_gate: 0,
            request: None,
            peer_word: 0,
            peer_paused: false,
            resync_side: None,
            source_done_by_peer: false,
            lost: 0,
            cfg: config,
        };
        node.load_disk(meta, al_ring)?;
        Ok(node)
    }

    /// Takes a disk's persisted state (construction and `attach`): crash recovery, bitmap,
    /// the connection's volume.
    fn load_disk(&mut self, meta: MetaState, al_ring: &[u8]) -> Result<(), NodeError> {
        let needed = bytes_for(meta.size_sectors);
        let have = self.bits.store.as_ref().len();
        if have < needed {
            return Err(NodeError::BufferTooSmall {
                what: "bitmap",
                needed,
                have,
            });
        }
        let ring_len = self.cfg.al_ring_records;
        let (al, recovered) = if meta.has(md_flag::AL_CLEAN) {
            (ActivityLog::<AL>::new(ring_len)?, None)
        } else {
            let (al, r) = ActivityLog::<AL>::recover(ring_len, al_ring)?;
            (al, Some(r))
        };
        // Count what the persisted bits hold (bits past the end are cleared).
        let dirty = DirtyBitmap::new(self.bits.store.as_mut(), meta.size_sectors)?.count();
        self.bits.capacity = meta.size_sectors;
        self.bits.dirty = dirty;
        self.size = meta.size_sectors;
        let mut generation = meta.generation;
        let mut flags = meta.flags;
        if flags & md_flag::PRIMARY_IND != 0 {
            // Went down as primary without demoting: it may hold writes the peer lacks.
            generation.crashed_primary = true;
        }
        flags &= !(md_flag::PRIMARY_IND | md_flag::AL_CLEAN);
        if generation.crashed_primary {
            flags |= md_flag::CRASHED_PRIMARY;
        }
        let mut persist_bits = false;
        if recovered.is_some_and(|r| r.active > 0) {
            let al = &al;
            self.bits.with(|bm| al.mark_active_dirty(bm));
            persist_bits = true;
        }
        if flags & md_flag::FULL_SYNC != 0 {
            self.bits.with(|bm| bm.set_all());
            flags &= !md_flag::FULL_SYNC;
            persist_bits = true;
        }
        self.al = al;
        self.flags = flags;
        let disk = MetaState { flags, ..meta }.initial_disk();
        let mut vcfg = VolumeConfig::new(VOLUME, generation, disk, meta.size_sectors);
        vcfg.dirty_bits = self.bits.dirty;
        self.conn.replace_volume(vcfg)?;
        if persist_bits {
            self.persist_bitmap_all();
        }
        self.persist_meta();
        self.event(NodeEvent::DiskChanged { disk });
        Ok(())
    }

    // ---- queries -------------------------------------------------------------------------

    /// The connection machine (read-only: its state, agreed version, volume view).
    pub fn connection(&self) -> &Connection<R, 1> {
        &self.conn
    }
    /// Our role.
    pub fn role(&self) -> Role {
        self.conn.role()
    }
    /// The local disk state.
    pub fn disk(&self) -> DiskState {
        self.conn
            .volume(VOLUME)
            .map_or(DiskState::Diskless, |v| v.disk())
    }
    /// The volume's replication state.
    pub fn repl(&self) -> ReplState {
        self.conn
            .volume(VOLUME)
            .map_or(ReplState::Off, |v| v.repl())
    }
    /// The bitmap storage (persist ranges of it when [`Io::PersistBitmap`] says so; it is
    /// also handed out in that operation).
    pub fn bitmap_bytes(&self) -> &[u8] {
        self.bits.bytes()
    }
    /// Bits (4 KiB blocks) out of sync with the peer.
    pub fn out_of_sync_bits(&self) -> u64 {
        self.bits.dirty
    }
    /// The meta data as it would be persisted now.
    pub fn meta(&self) -> MetaState {
        let generation = self
            .conn
            .volume(VOLUME)
            .map(|v| *v.generation())
            .unwrap_or_default();
        let mut flags = self.flags;
        if self.role() == Role::Primary {
            flags |= md_flag::PRIMARY_IND;
        }
        if generation.crashed_primary {
            flags |= md_flag::CRASHED_PRIMARY;
        } else {
            flags &= !md_flag::CRASHED_PRIMARY;
        }
        MetaState {
            generation,
            flags,
            size_sectors: self.size,
        }
    }
    /// Events and completions dropped because the shell did not drain the queues (should stay 0).
    pub fn lost(&self) -> u32 {
        self.lost.saturating_add(self.conn.lost_events())
    }

    // ---- internals shared by the parts ---------------------------------------------------

    fn event(&mut self, e: NodeEvent) {
        if self.events.push_back(e).is_err() {
            self.lost = self.lost.saturating_add(1);
        }
    }

    fn queue_io(&mut self, io: PendingIo) {
        if self.ios.push_back(io).is_err() {
            self.lost = self.lost.saturating_add(1);
        }
    }

    /// Asks for the meta data to be written (one queued write covers every change until it is
    /// handed out).
    fn persist_meta(&mut self) -> u64 {
        self.meta_want += 1;
        if !self.meta_queued {
            self.meta_queued = true;
            self.queue_io(PendingIo::Meta);
        }
        self.meta_want
    }

    fn persist_bitmap_all(&mut self) {
        let len = self.bits.bytes().len();
        if len > 0 {
            self.queue_io(PendingIo::Bitmap {
                offset: 0,
                len,
                for_al: false,
            });
        }
    }

    fn set_disk(&mut self, disk: DiskState) {
        if self.disk() != disk {
            let _ = self.conn.set_disk(VOLUME, disk);
            match disk {
                DiskState::UpToDate => {
                    self.flags |= md_flag::CONSISTENT | md_flag::WAS_UP_TO_DATE;
                }
                DiskState::Inconsistent => {
                    self.flags &= !(md_flag::CONSISTENT | md_flag::WAS_UP_TO_DATE);
                }
                DiskState::Outdated => {
                    self.flags |= md_flag::CONSISTENT;
                    self.flags &= !md_flag::WAS_UP_TO_DATE;
                }
                _ => {}
            }
            self.persist_meta();
            self.event(NodeEvent::DiskChanged { disk });
        }
    }

    fn set_repl(&mut self, repl: ReplState) {
        let _ = self.conn.set_repl(VOLUME, repl);
    }

    fn generation(&self) -> super::conn::Generation {
        self.conn
            .volume(VOLUME)
            .map(|v| *v.generation())
            .unwrap_or_default()
    }

    fn set_generation(&mut self, g: super::conn::Generation) {
        if let Some(cur) = self.conn.generation_mut(VOLUME) {
            if *cur != g {
                *cur = g;
                self.persist_meta();
            }
        }
    }

    fn agreed(&self) -> Agreed {
        self.conn.agreed()
    }
}

fn resync_config(cfg: &NodeConfig, agreed: Agreed) -> ResyncConfig {
    let mut r = ResyncConfig::new(agreed);
    r.rate = cfg.resync_rate;
    r.max_in_flight = cfg.resync_in_flight.clamp(1, RS);
    r.max_request = cfg.resync_request.max(4096);
    r.volume = VOLUME;
    r
}
