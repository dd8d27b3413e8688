//! The disk side of [`Node`]: operations handed out by [`Node::poll_io`] under a token, their
//! completions ([`Node::io_done`], [`Node::read_done`]) routed back to the machine that asked,
//! and the activity-log record's ordering (bits of evicted extents first, §6.2).
//!
//! Tokens of the data path (replicated writes, resync writes and reads, the receiving side's
//! flushes) belong to one connection: completions that arrive after it ended are accepted and
//! dropped (their blocks stay out of sync, so a later resync covers them).

use super::types::{Completion, Io, IoToken, NodeError, NodeEvent, ReadFor, WriteData};
use super::{AlIo, Node, Op, PendingIo, Slot, SLOTS};
use crate::repl::activity_log::EXTENT_SHIFT;
use crate::repl::bitmap::BLOCK_SHIFT;
use crate::repl::conn::{DiskState, Entropy};

/// Send-queue bytes a resync reply takes beyond its data.
pub(super) const REPLY_OVERHEAD: usize = 64;

impl<R: Entropy, B: AsRef<[u8]> + AsMut<[u8]>, const AL: usize> Node<R, B, AL> {
    pub(super) fn alloc(&mut self, op: Op) -> Option<IoToken> {
        let index = self.slots.iter().position(Option::is_none)?;
        self.slot_generation = self.slot_generation.wrapping_add(1);
        let generation = self.slot_generation;
        *self.slots.get_mut(index)? = Some(Slot {
            generation,
            epoch: self.epoch,
            op,
        });
        Some(IoToken {
            index: index as u16,
            generation,
        })
    }

    fn take_slot(&mut self, token: IoToken) -> Option<Slot> {
        let s = self.slots.get_mut(usize::from(token.index))?;
        if s.is_some_and(|s| s.generation == token.generation) {
            s.take()
        } else {
            None
        }
    }

    /// Disk operations handed out and not yet reported.
    pub fn io_in_flight(&self) -> usize {
        self.slots.iter().flatten().count()
    }

    /// The next disk operation. `None` when nothing is due (or every token is in use: report
    /// some completions first).
    pub fn poll_io(&mut self) -> Option<Io<'_>> {
        if let Some(a) = self.al_io.filter(|a| a.waits == 0 && !a.handed) {
            let token = self.alloc(Op::Al(a.number))?;
            self.al_io = Some(AlIo { handed: true, ..a });
            return Some(Io::AlTransaction {
                token,
                offset: a.offset,
                record: &self.al_record,
            });
        }
        let item = self.ios.pop_front()?;
        let op = match item {
            PendingIo::AppWrite { id, .. } => Op::AppWrite(id),
            PendingIo::AppRead { id, .. } => Op::AppRead(id),
            PendingIo::SourceRead(r) => Op::SourceRead {
                token: r.token,
                size: r.size,
            },
            PendingIo::AppFlush(id) => Op::AppFlush(id),
            PendingIo::SecFlush(t) => Op::SecFlush(t),
            PendingIo::Meta => Op::Meta {
                seq: self.meta_want,
            },
            PendingIo::Bitmap { for_al, .. } => Op::Bitmap { for_al },
        };
        let Some(token) = self.alloc(op) else {
            let _ = self.ios.push_front(item);
            return None;
        };
        Some(match item {
            PendingIo::AppWrite {
                id,
                sector,
                flush,
                fua,
            } => Io::Write {
                token,
                sector,
                data: WriteData::App(id),
                flush,
                fua,
            },
            PendingIo::AppRead { id, sector, len } => Io::Read {
                token,
                sector,
                len,
                purpose: ReadFor::App(id),
            },
            PendingIo::SourceRead(r) => Io::Read {
                token,
                sector: r.sector,
                len: r.size,
                purpose: ReadFor::Resync,
            },
            PendingIo::AppFlush(_) | PendingIo::SecFlush(_) => Io::Flush { token },
            PendingIo::Meta => {
                self.meta_queued = false;
                Io::PersistMeta {
                    token,
                    meta: self.meta(),
                }
            }
            PendingIo::Bitmap { offset, len, .. } => {
                let bytes = self.bits.bytes();
                let end = offset.saturating_add(len).min(bytes.len());
                Io::PersistBitmap {
                    token,
                    offset,
                    bytes: bytes.get(offset.min(end)..end).unwrap_or(&[]),
                }
            }
        })
    }

    /// A disk operation finished (`ok` = it succeeded). Resync reads report their data with
    /// [`Self::read_done`] instead; `io_done` on one means the read failed.
    pub fn io_done(&mut self, now: u64, token: IoToken, ok: bool) -> Result<(), NodeError> {
        self.now = now;
        let slot = self.take_slot(token).ok_or(NodeError::StaleToken)?;
        let current = slot.epoch == self.epoch;
        let mut failed = !ok;
        match slot.op {
            Op::AppWrite(id) => {
                self.primary.local_done(id, ok)?;
            }
            Op::AppRead(id) => {
                self.complete(Completion::Read { id, ok });
            }
            Op::AppFlush(id) => {
                if let Some(f) = self.flushes.iter_mut().find(|f| f.id == id) {
                    f.local = Some(ok);
                }
            }
            Op::SecWrite(t) if current => {
                let (bits, secondary, metaq) =
                    (&mut self.bits, &mut self.secondary, &mut self.metaq);
                let n = bits.with(|bm| secondary.write_done(t, ok, bm, metaq.spare(64)));
                self.commit_meta(now, n);
            }
            Op::SecFlush(t) if current => {
                let _ = self.secondary.flushed(t);
            }
            Op::Resync(t) if current => {
                let (bits, target, metaq) = (&mut self.bits, &mut self.target, &mut self.metaq);
                let n = bits.with(|bm| target.write_done(t, ok, bm, metaq.spare(64)));
                self.commit_meta(now, n);
            }
            Op::SourceRead { token: t, size } => {
                // A resync read reported without data failed.
                failed = true;
                if current {
                    self.reserved = self.reserved.saturating_sub(size as usize + REPLY_OVERHEAD);
                    let (bits, source, metaq) = (&mut self.bits, &mut self.source, &mut self.metaq);
                    let n = bits.with(|bm| source.read_failed(t, bm, metaq.spare(64)));
                    self.commit_meta(now, n);
                }
            }
            Op::Meta { seq } => {
                // A failed meta write fails the disk; the gates open anyway so nothing hangs.
                self.meta_done = self.meta_done.max(seq);
            }
            Op::Bitmap { for_al } => {
                if for_al {
                    if let Some(a) = self.al_io.as_mut() {
                        a.waits = a.waits.saturating_sub(1);
                    }
                }
            }
            Op::Al(n) => {
                let _ = self.al.transaction_written(n);
                self.al_io = None;
            }
            // Data-path completions of a connection that is gone.
            Op::SecWrite(_) | Op::SecFlush(_) | Op::Resync(_) => {}
        }
        if failed {
            self.local_error();
        }
        self.pump(now);
        Ok(())
    }

    /// A read finished with `data` (exactly the length asked for): a resync read's bytes go to
    /// the peer in P_RS_DATA_REPLY; an application read completes.
    pub fn read_done(&mut self, now: u64, token: IoToken, data: &[u8]) -> Result<(), NodeError> {
        self.now = now;
        let slot = self.take_slot(token).ok_or(NodeError::StaleToken)?;
        let current = slot.epoch == self.epoch;
        match slot.op {
            Op::SourceRead { token: t, size } => {
                if current {
                    self.reserved = self.reserved.saturating_sub(size as usize + REPLY_OVERHEAD);
                    let (source, sendq) = (&mut self.source, &mut self.sendq);
                    let r = source.reply(t, data, sendq.spare(data.len() + REPLY_OVERHEAD));
                    match r {
                        Ok(n) => self.sendq.commit(n),
                        Err(e) => {
                            self.pump(now);
                            return Err(e.into());
                        }
                    }
                }
            }
            Op::AppRead(id) => self.complete(Completion::Read { id, ok: true }),
            other => {
                // Not a read: put it back untouched.
                if let Some(s) = self.slots.get_mut(usize::from(token.index)) {
                    *s = Some(Slot { op: other, ..slot });
                }
                return Err(NodeError::StaleToken);
            }
        }
        self.pump(now);
        Ok(())
    }

    fn complete(&mut self, c: Completion) {
        if self.completions.push_back(c).is_err() {
            self.lost = self.lost.saturating_add(1);
        }
    }

    /// An ack emitted into the meta queue (or why it could not be).
    fn commit_meta(&mut self, now: u64, n: Result<usize, crate::repl::data_error::DataError>) {
        match n {
            Ok(n) => self.metaq.commit(n),
            Err(crate::repl::data_error::DataError::StaleToken) => {}
            Err(e) => self.data_path_error(now, e),
        }
    }

    /// A local disk operation failed: the disk is Failed (announced to the peer) and
    /// application I/O stops (DRBD's on-io-error detach, minus the detach).
    fn local_error(&mut self) {
        if !matches!(self.disk(), DiskState::Failed | DiskState::Diskless) {
            self.set_disk(DiskState::Failed);
            self.event(NodeEvent::LocalIoError);
        }
    }

    /// The activity log's next record, and resync reads that may start; true if anything moved.
    pub(super) fn step_disk(&mut self) -> bool {
        let mut moved = false;
        if self.al_io.is_none() {
            if let Ok(Some(t)) = self.al.poll_transaction(&mut self.al_record) {
                // Bits of evicted extents go to disk before the record that drops them.
                let per = 1usize << (EXTENT_SHIFT - BLOCK_SHIFT - 3);
                let mut waits = 0;
                for &e in t.evicted.iter() {
                    self.queue_io(PendingIo::Bitmap {
                        offset: (e as usize).saturating_mul(per),
                        len: per,
                        for_al: true,
                    });
                    waits += 1;
                }
                self.al_io = Some(AlIo {
                    number: t.number,
                    offset: t.offset,
                    waits,
                    handed: false,
                });
                moved = true;
            }
        }
        while let Some(r) = self.source_reads.front().copied() {
            // The reply must not be older than a local write already sent to the peer.
            let pending = self
                .primary
                .local_write_pending(r.sector, u64::from(r.size));
            let need = r.size as usize + REPLY_OVERHEAD;
            if pending || self.sendq.free() < self.reserved + need || self.ios.is_full() {
                break;
            }
            self.source_reads.pop_front();
            self.reserved += need;
            self.queue_io(PendingIo::SourceRead(r));
            moved = true;
        }
        if let Some(t) = self.secondary.poll_flush() {
            self.queue_io(PendingIo::SecFlush(t));
            moved = true;
        }
        loop {
            let (secondary, metaq) = (&mut self.secondary, &mut self.metaq);
            match secondary.poll_transmit(metaq.spare(64)) {
                Ok(Some(n)) => {
                    self.metaq.commit(n);
                    moved = true;
                }
                _ => break,
            }
        }
        moved
    }

    /// Drops queued data-path operations of a connection that ended.
    pub(super) fn purge_connection_ios(&mut self) {
        let n = self.ios.len();
        for _ in 0..n {
            if let Some(io) = self.ios.pop_front() {
                if !matches!(io, PendingIo::SourceRead(_) | PendingIo::SecFlush(_)) {
                    let _ = self.ios.push_back(io);
                }
            }
        }
    }
}

const _: () = assert!(SLOTS <= u16::MAX as usize);
