//! One DRBD resource as one sans-IO machine (replication.md §4–§6): the [`conn`](super::conn)
//! handshake and the data path ([`bitmap`](super::bitmap), [`activity_log`](super::activity_log),
//! [`write`](super::write), [`secondary`](super::secondary), [`resync`](super::resync),
//! [`resync_source`](super::resync_source)) composed for **one peer and one volume** (volume 0).
//! This is what keelsond (and later firmware) drives; it moves no bytes and reads no clock.
//!
//! # API sketch (work in progress: names are settled, details may move)
//!
//! ```text
//! Node<R: Entropy, B: AsRef<[u8]> + AsMut<[u8]>, const AL: usize = 1237>
//!
//! Node::new(config: NodeConfig, meta: MetaState, al_ring: &[u8], bitmap: B, send: B, rng: R)
//!     -> Result<Node, NodeError>
//!   meta     the persisted per-volume record (MetaState::{to_bytes, from_bytes} give a 64-byte
//!            on-disk form): generation UUIDs (conn::Generation, incl. crashed-primary), md flags
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
//!                           resync: Option<ResyncStatus{total_bits, left_bits, failed_bits,
//!                           rate (bytes/s), eta_ms, paused}>, generation, ... }
//! ```
