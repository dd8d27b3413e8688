//! The resync around the connection (replication.md §3.11, §6.1, §6.4): after the handshake the
//! source sends its bitmap first and the target answers with its own (both OR-merged); the
//! source then starts with a new sync UUID (P_SYNC_UUID, 8.4's pv < 110 flow) and the target
//! adopts it; at the end each side takes its UUID step and announces P_UUIDS and P_STATE.
//! Also the full syncs that invalidate / invalidate-remote start, and pausing.

use super::types::{NodeEvent, SyncSide};
use super::{Node, Request, VOLUME};
use crate::repl::conn::sync_handshake::SyncOutcome;
use crate::repl::conn::{DiskState, Entropy, Generation, ReplState, Role};
use crate::repl::data_error::DataError;
use crate::repl::resync::ResyncEvent;
use crate::repl::wire::bitmap::{BitmapXfer, CompressedRepr, MAX_PACKET};
use crate::repl::wire::uuid::SyncUuidFields;
use crate::repl::wire::{Body, Command, Frame, HeaderKind};

impl<R: Entropy, B: AsRef<[u8]> + AsMut<[u8]>, const AL: usize> Node<R, B, AL> {
    fn xfer(&self) -> BitmapXfer {
        let header = HeaderKind::for_send(self.agreed().pv, MAX_PACKET);
        BitmapXfer::new(crate::repl::bitmap::bits_for(self.size), header)
    }

    /// Paused by either side.
    pub(super) fn paused(&self) -> bool {
        self.peer_paused || self.conn.volume(VOLUME).is_some_and(|v| v.user_isp())
    }

    /// Right after Connected: a full sync sets every bit on both sides; the source sends its
    /// bitmap first, the target waits for it (§3.11).
    pub(super) fn start_bitmap_exchange(&mut self, _now: u64) {
        let repl = self.repl();
        let full = matches!(
            self.outcome,
            Some(SyncOutcome::Source { full: true } | SyncOutcome::Target { full: true })
        );
        if !matches!(repl, ReplState::WFBitMapS | ReplState::WFBitMapT) {
            return;
        }
        if full {
            self.bits.with(|bm| bm.set_all());
            self.persist_bitmap_all();
        }
        let x = self.xfer();
        self.xfer_rx = Some(x);
        if repl == ReplState::WFBitMapS {
            self.xfer_tx = Some(x);
        }
    }

    /// Emits bitmap packets while the send queue has room; true if any went out.
    pub(super) fn step_bitmap(&mut self, now: u64) -> bool {
        let Some(mut x) = self.xfer_tx else {
            return false;
        };
        let agreed = self.agreed();
        let use_rle = agreed.pv.is_some_and(|pv| pv >= 90);
        let cap = MAX_PACKET - HeaderKind::for_send(agreed.pv, MAX_PACKET).size();
        let mut moved = false;
        let mut done = x.is_complete();
        while !done && self.sendq.free() >= self.reserved + MAX_PACKET {
            let mut payload = [0u8; MAX_PACKET];
            let out = payload.get_mut(..cap).unwrap_or(&mut []);
            let chunk = match self.bits.with(|bm| bm.send_packet(&mut x, use_rle, out)) {
                Ok(Some(c)) => c,
                Ok(None) => {
                    done = true;
                    break;
                }
                Err(e) => {
                    self.data_path_error(now, e);
                    return true;
                }
            };
            let bytes = payload.get(..chunk.len).unwrap_or(&[]);
            let body = if chunk.command == Command::CompressedBitmap {
                match CompressedRepr::parse(bytes) {
                    Ok(c) => Body::CompressedBitmap(c),
                    Err(e) => {
                        self.data_path_error(now, e.into());
                        return true;
                    }
                }
            } else {
                Body::Bitmap(bytes)
            };
            let sent = Frame::new(chunk.command, VOLUME, body)
                .map(|f| self.send_data(&f))
                .unwrap_or(false);
            if !sent {
                // Cannot happen with the room checked above; keep the cursor consistent anyway.
                self.data_path_error(
                    now,
                    DataError::Unexpected {
                        command: chunk.command,
                    },
                );
                return true;
            }
            moved = true;
            done = chunk.last;
        }
        if done {
            self.xfer_tx = None;
            if self.repl() == ReplState::WFBitMapT {
                // 8.4 (pv < 110): the target now waits for the source's P_SYNC_UUID.
                self.set_repl(ReplState::WFSyncUUID);
            }
            moved = true;
        } else {
            self.xfer_tx = Some(x);
        }
        moved
    }

    /// A P_BITMAP / P_COMPRESSED_BITMAP from the peer: OR-merged into ours.
    pub(super) fn on_bitmap(&mut self, now: u64, frame: &Frame<'_>) -> Result<(), DataError> {
        let unexpected = DataError::Unexpected {
            command: frame.command,
        };
        let repl = self.repl();
        // The source hears the target's bitmap only after sending all of its own.
        let Some(mut x) = self.xfer_rx.filter(|_| {
            repl == ReplState::WFBitMapT || (repl == ReplState::WFBitMapS && self.xfer_tx.is_none())
        }) else {
            return Err(unexpected);
        };
        let done = self.bits.with(|bm| bm.receive_frame(&mut x, frame))?;
        if !done {
            self.xfer_rx = Some(x);
            return Ok(());
        }
        self.xfer_rx = None;
        if repl == ReplState::WFBitMapT {
            self.xfer_tx = Some(self.xfer());
        } else {
            self.start_source(now);
        }
        Ok(())
    }

    /// Becomes SyncSource: a new sync UUID goes out before the P_STATE that announces the
    /// state (8.4 sends it first so the target is never paused without it).
    fn start_source(&mut self, now: u64) {
        self.drain_conn_tx();
        let mut g = self.generation();
        let uuid = g.start_sync_as_source(self.conn.entropy());
        self.set_generation(g);
        if let Ok(f) = Frame::new(
            Command::SyncUuid,
            VOLUME,
            Body::SyncUuid(SyncUuidFields { uuid }),
        ) {
            self.send_data(&f);
        }
        let repl = if self.paused() {
            ReplState::PausedSyncS
        } else {
            ReplState::SyncSource
        };
        self.set_repl(repl);
        self.source.start(now);
        self.source_done_by_peer = false;
        self.primary.set_syncing(true);
        self.secondary.set_syncing(true);
        self.resync_side = Some(SyncSide::Source);
        let bits = self.bits.dirty;
        self.event(NodeEvent::ResyncStarted {
            side: SyncSide::Source,
            bits,
        });
    }

    /// P_SYNC_UUID: become SyncTarget (§6.1: current := the sync UUID, bitmap UUID cleared).
    pub(super) fn on_sync_uuid(&mut self, now: u64, uuid: u64) -> Result<(), DataError> {
        if self.repl() == ReplState::Established && self.request == Some(Request::Invalidate) {
            // The source's reaction overtook its reply to our invalidate on the other socket.
            self.request = None;
            self.start_full_target(now);
        }
        if self.repl() != ReplState::WFSyncUUID {
            return Err(DataError::Unexpected {
                command: Command::SyncUuid,
            });
        }
        let mut g = self.generation();
        g.start_sync_as_target(uuid, self.role() == Role::Primary);
        self.set_generation(g);
        self.set_disk(DiskState::Inconsistent);
        // No resync write before the meta data says Inconsistent (a crash mid-resync must not
        // leave a half-written disk that claims to be consistent).
        self.target_gate = self.persist_meta();
        let paused = self.paused();
        self.set_repl(if paused {
            ReplState::PausedSyncT
        } else {
            ReplState::SyncTarget
        });
        self.target.start(now);
        if paused {
            self.target.pause(now);
        }
        self.primary.set_syncing(true);
        self.secondary.set_syncing(true);
        self.resync_side = Some(SyncSide::Target);
        let bits = self.bits.dirty;
        self.event(NodeEvent::ResyncStarted {
            side: SyncSide::Target,
            bits,
        });
        Ok(())
    }

    /// Full sync with us as target (our invalidate, or the peer's invalidate-remote).
    pub(super) fn start_full_target(&mut self, _now: u64) {
        self.bits.with(|bm| bm.set_all());
        self.persist_bitmap_all();
        self.set_disk(DiskState::Inconsistent);
        self.set_repl(ReplState::WFSyncUUID);
    }

    /// Full sync with us as source (our invalidate-remote, or the peer's invalidate).
    pub(super) fn start_full_source(&mut self, now: u64) {
        self.bits.with(|bm| bm.set_all());
        self.persist_bitmap_all();
        self.start_source(now);
    }

    /// Pauses or resumes the running resync after either side's pause flag moved.
    pub(super) fn apply_pause(&mut self, now: u64) {
        let paused = self.paused();
        let next = match (self.repl(), paused) {
            (ReplState::SyncTarget, true) => {
                self.target.pause(now);
                ReplState::PausedSyncT
            }
            (ReplState::PausedSyncT, false) => {
                self.target.resume(now);
                ReplState::SyncTarget
            }
            (ReplState::SyncSource, true) => ReplState::PausedSyncS,
            (ReplState::PausedSyncS, false) => ReplState::SyncSource,
            _ => return,
        };
        self.set_repl(next);
        self.event(NodeEvent::ResyncPaused { paused });
    }

    /// Whether the SyncTarget may send requests now.
    pub(super) fn target_may_request(&self) -> bool {
        self.repl() == ReplState::SyncTarget
            && self.meta_done >= self.target_gate
            && self.data_sock.is_some()
    }

    /// Sends resync requests the rate and limits allow; true if any went out.
    pub(super) fn step_requests(&mut self, now: u64) -> bool {
        if !self.target_may_request() {
            return false;
        }
        let mut moved = false;
        while self.sendq.free() >= self.reserved + 64 {
            let (bits, target, sendq) = (&mut self.bits, &mut self.target, &mut self.sendq);
            match bits.with(|bm| target.poll_request(now, bm, sendq.spare(64))) {
                Ok(Some(n)) => {
                    self.sendq.commit(n);
                    moved = true;
                }
                Ok(None) => break,
                Err(e) => {
                    self.data_path_error(now, e);
                    return true;
                }
            }
        }
        moved
    }

    /// Ends the resync on either side when it is over; true if it did.
    pub(super) fn step_finish(&mut self, now: u64) -> bool {
        match self.repl() {
            ReplState::SyncTarget | ReplState::PausedSyncT => {
                let (bits, target) = (&mut self.bits, &mut self.target);
                if let Some(ResyncEvent::Finished {
                    remaining_bits,
                    failed_bits,
                }) = bits.with(|bm| target.poll_event(bm))
                {
                    self.finish_target(now, remaining_bits, failed_bits);
                    return true;
                }
                false
            }
            ReplState::SyncSource | ReplState::PausedSyncS => {
                let (bits, source) = (&mut self.bits, &self.source);
                let failed = bits.with(|bm| source.progress(now, bm)).failed_bytes
                    >> crate::repl::bitmap::BLOCK_SHIFT;
                let idle = self.source.in_flight() == 0 && self.source_reads.is_empty();
                if idle && (self.bits.dirty <= failed || self.source_done_by_peer) {
                    self.finish_source(failed);
                    return true;
                }
                false
            }
            _ => false,
        }
    }

    fn finish_target(&mut self, _now: u64, remaining: u64, failed: u64) {
        if remaining == 0 {
            // §6.1: adopt the source's generation (its UUIDs as the handshake saw them).
            let source = self
                .conn
                .volume(VOLUME)
                .and_then(|v| v.peer_uuids().copied())
                .map(|p| Generation {
                    current: p.current,
                    bitmap: p.bitmap,
                    history: p.history,
                    crashed_primary: false,
                });
            if let Some(source) = source {
                let mut g = self.generation();
                g.finish_sync_as_target(&source, self.role() == Role::Primary);
                self.set_generation(g);
            }
            self.set_disk(DiskState::UpToDate);
        }
        self.end_resync(SyncSide::Target, failed.max(remaining));
    }

    fn finish_source(&mut self, failed: u64) {
        if self.bits.dirty == 0 {
            let mut g = self.generation();
            g.finish_sync_as_source();
            self.set_generation(g);
        }
        self.end_resync(SyncSide::Source, failed.max(self.bits.dirty));
    }

    fn end_resync(&mut self, side: SyncSide, failed_bits: u64) {
        self.set_repl(ReplState::Established);
        self.primary.set_syncing(false);
        self.secondary.set_syncing(false);
        self.persist_bitmap_all();
        self.persist_meta();
        let _ = self.conn.announce_uuids(VOLUME);
        self.resync_side = None;
        self.source_done_by_peer = false;
        self.event(NodeEvent::ResyncFinished { side, failed_bits });
    }
}
