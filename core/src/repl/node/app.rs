//! The application side of [`Node`] (replication.md §5, §6.2): writes enter the activity log
//! and the transfer log, their [P_BARRIER +] P_DATA is copied into the send queue at once but
//! held there — like the local write — until the activity-log record covering them is on disk;
//! completions follow the protocol's rule; flushes close the epoch.

use super::types::{Completion, FlushId, NodeError, ReadId, WriteId};
use super::{FlushRec, Held, Node, PendingIo, TL};
use crate::repl::activity_log::AlGrant;
use crate::repl::conn::{DiskState, Entropy, Role, WireProtocol};
use crate::repl::data_error::DataError;
use crate::repl::write::{check_io, max_bio_size, Link, WriteFlags};

/// Bytes a P_BARRIER and a P_DATA header take beyond the data (h100 headers).
const WRITE_OVERHEAD: usize = 2 * 16 + 8 + 24;

impl<R: Entropy, B: AsRef<[u8]> + AsMut<[u8]>, const AL: usize> Node<R, B, AL> {
    /// Application I/O needs a Primary with an UpToDate disk.
    fn check_app_io(&self) -> Result<(), NodeError> {
        if self.role() != Role::Primary {
            return Err(NodeError::NotPrimary);
        }
        if self.disk() != DiskState::UpToDate {
            return Err(NodeError::NoUpToDateDisk);
        }
        Ok(())
    }

    /// Largest write (and read) accepted now: 1 MiB, or less if the agreed protocol version
    /// carries less (32 KiB up to pv 94, 128 KiB below 100), or [`super::NodeConfig::max_write`].
    pub fn max_write(&self) -> usize {
        (max_bio_size(&self.primary.config().agreed) as usize).min(self.cfg.max_write as usize)
    }

    /// An application write of `data` (a multiple of 512 bytes, at most [`Self::max_write`])
    /// at `sector`. The node copies `data` into its send queue for the peer; keep it until
    /// [`super::Io::Write`] with [`super::WriteData::App`]`(id)` asks for the local write.
    /// The completion comes from [`Self::poll_completion`].
    pub fn submit_write(
        &mut self,
        now: u64,
        sector: u64,
        data: &[u8],
        flags: WriteFlags,
    ) -> Result<WriteId, NodeError> {
        self.now = now;
        self.check_app_io()?;
        let len = data.len() as u64;
        check_io(sector, len, self.max_write() as u32, self.size)?;
        if self.primary.transfer_log().is_full() || self.held.is_full() {
            // Barrier acks release the log; make sure one is on its way.
            self.close_epoch();
            self.pump(now);
            return Err(NodeError::Busy);
        }
        let link_up = self.primary.link() != Link::Disconnected;
        let need = if link_up {
            data.len() + WRITE_OVERHEAD
        } else {
            0
        };
        if link_up && self.sendq.free() < self.reserved + need {
            return Err(NodeError::Busy);
        }
        let grant = match self.al.begin_write(sector, len) {
            Ok(g) => g,
            Err(DataError::AlBusy { .. }) => {
                // Every slot is held by writes the peer has not confirmed yet.
                self.close_epoch();
                self.pump(now);
                return Err(NodeError::Busy);
            }
            Err(e) => return Err(e.into()),
        };
        let start = self.sendq.end_pos();
        let (bits, primary, sendq) = (&mut self.bits, &mut self.primary, &mut self.sendq);
        let r = bits.with(|bm| primary.write(sector, data, flags, bm, sendq.spare(need)));
        let s = match r {
            Ok(s) => s,
            Err(e) => {
                let _ = self.al.end_write(sector, len);
                return Err(e.into());
            }
        };
        self.sendq.commit(s.len);
        self.last_write = s.id;
        let held = Held {
            id: s.id,
            sector,
            flush: flags.flush,
            fua: flags.fua,
            al: match grant {
                AlGrant::Ready => None,
                AlGrant::AfterTransaction(n) => Some(n),
            },
            stream: (s.len > 0).then_some(start),
        };
        // Room was checked above.
        let _ = self.held.push_back(held);
        if self.primary.transfer_log().len() >= TL / 2 {
            self.close_epoch();
        }
        self.pump(now);
        Ok(s.id)
    }

    /// An application read of `len` bytes at `sector` from the local disk (Primary only):
    /// comes back as [`super::Io::Read`] with [`super::ReadFor::App`]; report it with
    /// [`Self::io_done`].
    pub fn submit_read(&mut self, now: u64, sector: u64, len: u32) -> Result<ReadId, NodeError> {
        self.now = now;
        self.check_app_io()?;
        check_io(sector, u64::from(len), self.max_write() as u32, self.size)?;
        if self.ios.is_full() {
            return Err(NodeError::Busy);
        }
        let id = self.next_read;
        self.next_read += 1;
        self.queue_io(PendingIo::AppRead { id, sector, len });
        self.pump(now);
        Ok(id)
    }

    /// An application flush: the local cache is flushed and the epoch closed; with protocol C
    /// on a live link it completes only once every earlier write is barrier-acked (on the
    /// peer's stable storage).
    pub fn submit_flush(&mut self, now: u64) -> Result<FlushId, NodeError> {
        self.now = now;
        self.check_app_io()?;
        if self.flushes.is_full() || self.ios.is_full() {
            return Err(NodeError::Busy);
        }
        let id = self.next_flush;
        self.next_flush += 1;
        self.close_epoch();
        let wait_peer =
            self.cfg.conn.protocol == WireProtocol::C && self.primary.link() != Link::Disconnected;
        let _ = self.flushes.push(FlushRec {
            id,
            local: None,
            until: wait_peer.then_some(self.last_write),
        });
        self.queue_io(PendingIo::AppFlush(id));
        self.pump(now);
        Ok(id)
    }

    /// The next finished application request.
    pub fn poll_completion(&mut self) -> Option<Completion> {
        let c = self.completions.pop_front().or_else(|| {
            let c = self.primary.poll_completion()?;
            if self.primary.close_due() {
                self.close_epoch();
            }
            Some(Completion::Write {
                id: c.id,
                ok: c.local_ok,
                replicated: c.replicated,
            })
        });
        if c.is_some() {
            let now = self.now;
            self.pump(now);
        }
        c
    }

    /// Writes that left the transfer log release their activity-log extents; held writes whose
    /// record is on disk go to the disk; finished flushes complete. True if anything moved.
    pub(super) fn step_app(&mut self) -> bool {
        let mut moved = false;
        while let Some(r) = self.primary.poll_retired() {
            let _ = self.al.end_write(r.sector, u64::from(r.size));
            moved = true;
        }
        while let Some(h) = self.held.front().copied() {
            let al_ok = h.al.is_none_or(|n| self.al.is_durable(n));
            if !al_ok || self.meta_done < self.meta_gate || self.ios.is_full() {
                break;
            }
            self.held.pop_front();
            self.queue_io(PendingIo::AppWrite {
                id: h.id,
                sector: h.sector,
                flush: h.flush,
                fua: h.fua,
            });
            moved = true;
        }
        let mut i = 0;
        while let Some(f) = self.flushes.get(i).copied() {
            let peer_ok = f.until.is_none_or(|u| {
                !self
                    .primary
                    .transfer_log()
                    .iter()
                    .any(|e| e.id <= u && e.awaits_barrier())
            });
            match f.local {
                Some(ok) if peer_ok && !self.completions.is_full() => {
                    let _ = self
                        .completions
                        .push_back(Completion::Flush { id: f.id, ok });
                    self.flushes.remove(i);
                    moved = true;
                }
                _ => i += 1,
            }
        }
        moved
    }
}
