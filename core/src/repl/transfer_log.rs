//! The transfer log (replication.md §5): every application write from submission until it is
//! complete *and* its epoch's P_BARRIER_ACK arrived, in submission order.
//!
//! Each entry carries the conditions still open: the local disk write, the peer's ack the
//! protocol waits for, the barrier ack, and whether the application was told. A write completes
//! for the application when the local write is done and the peer is "net OK" (or unreachable);
//! it leaves the log only when the barrier ack says the peer has it on stable storage, because
//! until then a lost connection must mark it dirty (even an acked protocol C write: the peer's
//! disk cache may lose it). Ids are consecutive, so an id is found by its distance from the
//! oldest entry.

use heapless::Deque;

use super::bitmap::DirtyBitmap;
use super::data_error::DataError;

/// An application write's handle; also its `block_id` on the wire ([`super::wire::BlockId::from_host`]).
pub type RequestId = u64;

/// What a completed application write reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Completion {
    /// The write.
    pub id: RequestId,
    /// The local disk write succeeded.
    pub local_ok: bool,
    /// The peer has it as the protocol promises (sent for A, received for B, written for C);
    /// false when it completed because the peer was unreachable or refused it (its blocks are
    /// dirty in the bitmap then).
    pub replicated: bool,
}

pub(crate) mod flag {
    pub const LOCAL_PENDING: u8 = 1;
    pub const NET_PENDING: u8 = 2;
    pub const BARRIER_PENDING: u8 = 4;
    pub const REPORTED: u8 = 8;
    pub const LOCAL_FAILED: u8 = 16;
    pub const REPLICATED: u8 = 32;
}

/// A write that left the log: the peer has it on stable storage (or it is marked dirty), and
/// the application was told. Its activity-log reference may go now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retired {
    /// The write.
    pub id: RequestId,
    /// First sector.
    pub sector: u64,
    /// Bytes.
    pub size: u32,
}

/// One write in the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TlEntry {
    /// Its id.
    pub id: RequestId,
    /// First sector.
    pub sector: u64,
    /// Bytes.
    pub size: u32,
    /// The epoch it was sent in.
    pub epoch: u32,
    pub(crate) flags: u8,
}

impl TlEntry {
    fn ready(&self) -> bool {
        self.flags & (flag::LOCAL_PENDING | flag::NET_PENDING | flag::REPORTED) == 0
    }
    fn removable(&self) -> bool {
        self.flags & flag::REPORTED != 0
            && self.flags & (flag::LOCAL_PENDING | flag::NET_PENDING | flag::BARRIER_PENDING) == 0
    }
    /// True while the epoch's barrier ack is outstanding.
    pub fn awaits_barrier(&self) -> bool {
        self.flags & flag::BARRIER_PENDING != 0
    }
}

/// The transfer log, holding up to `N` writes.
#[derive(Clone, Debug, Default)]
pub struct TransferLog<const N: usize> {
    entries: Deque<TlEntry, N>,
    retired: Deque<Retired, N>,
    ready: usize,
}

impl<const N: usize> TransferLog<N> {
    /// An empty log.
    pub const fn new() -> Self {
        TransferLog {
            entries: Deque::new(),
            retired: Deque::new(),
            ready: 0,
        }
    }

    /// Writes in the log.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// True when no write can be added.
    pub fn is_full(&self) -> bool {
        self.entries.is_full()
    }

    /// The entries, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = &TlEntry> {
        self.entries.iter()
    }

    /// Adds a write; its id must follow the newest entry's.
    pub(crate) fn push(&mut self, e: TlEntry) -> Result<(), DataError> {
        if self.entries.push_back(e).is_err() {
            return Err(DataError::Full {
                what: "transfer log",
                capacity: N,
            });
        }
        if e.ready() {
            self.ready += 1;
        }
        Ok(())
    }

    fn index(&self, id: RequestId) -> Option<usize> {
        let front = self.entries.front()?.id;
        let i = usize::try_from(id.checked_sub(front)?).ok()?;
        (i < self.entries.len()).then_some(i)
    }

    /// The entry for `id`.
    pub fn get(&self, id: RequestId) -> Option<&TlEntry> {
        self.entries.get(self.index(id)?)
    }

    /// Changes an entry's flags, keeping the count of entries ready to report.
    pub(crate) fn modify(&mut self, id: RequestId, set: u8, clear: u8) -> Option<TlEntry> {
        let i = self.index(id)?;
        let e = self.entries.get_mut(i)?;
        let was = e.ready();
        e.flags = (e.flags | set) & !clear;
        let now = e.ready();
        let copy = *e;
        match (was, now) {
            (false, true) => self.ready += 1,
            (true, false) => self.ready -= 1,
            _ => {}
        }
        self.prune();
        Some(copy)
    }

    /// Moves finished entries from the front to the retired queue; while that is full they stay
    /// (and hold their place in the log) until [`Self::poll_retired`] drains it.
    fn prune(&mut self) {
        while !self.retired.is_full() && self.entries.front().is_some_and(TlEntry::removable) {
            if let Some(e) = self.entries.pop_front() {
                let _ = self.retired.push_back(Retired {
                    id: e.id,
                    sector: e.sector,
                    size: e.size,
                });
            }
        }
    }

    /// The next write that left the log, oldest first.
    pub fn poll_retired(&mut self) -> Option<Retired> {
        let r = self.retired.pop_front();
        self.prune();
        r
    }

    /// The next completed write the application has not been told about.
    pub fn poll_completion(&mut self) -> Option<Completion> {
        if self.ready == 0 {
            return None;
        }
        let e = *self.entries.iter().find(|e| e.ready())?;
        self.modify(e.id, flag::REPORTED, 0);
        Some(Completion {
            id: e.id,
            local_ok: e.flags & flag::LOCAL_FAILED == 0,
            replicated: e.flags & flag::REPLICATED != 0,
        })
    }

    /// The oldest epoch still waiting for its barrier ack, and how many writes it holds.
    pub fn oldest_unacked(&self) -> Option<(u32, u32)> {
        let mut it = self.entries.iter().filter(|e| e.awaits_barrier());
        let epoch = it.next()?.epoch;
        let more = it.take_while(|e| e.epoch == epoch).count();
        Some((epoch, more as u32 + 1))
    }

    /// Clears the barrier wait of the oldest epoch after checking the ack names it and its size.
    pub(crate) fn barrier_acked(&mut self, epoch: u32, set_size: u32) -> Result<(), DataError> {
        match self.oldest_unacked() {
            Some((e, n)) if e == epoch && n == set_size => {}
            other => {
                return Err(DataError::BarrierMismatch {
                    expected: other.map(|o| o.0),
                    got: epoch,
                    expected_size: other.map_or(0, |o| o.1),
                    got_size: set_size,
                })
            }
        }
        for e in self.entries.iter_mut() {
            if e.awaits_barrier() && e.epoch == epoch {
                e.flags &= !flag::BARRIER_PENDING;
            }
        }
        self.prune();
        Ok(())
    }

    /// The connection is gone: every write not yet barrier-acked is marked dirty in `bitmap`
    /// and stops waiting for the peer (§5, §10.12). Returns bits newly set.
    pub(crate) fn connection_lost(&mut self, bitmap: &mut DirtyBitmap<'_>) -> u64 {
        let mut bits = 0;
        let mut ready = 0;
        for e in self.entries.iter_mut() {
            if e.awaits_barrier() {
                bits += bitmap.set_sectors(e.sector, u64::from(e.size)).unwrap_or(0);
            }
            if e.flags & flag::NET_PENDING != 0 {
                e.flags &= !flag::REPLICATED;
            }
            e.flags &= !(flag::BARRIER_PENDING | flag::NET_PENDING);
            if e.ready() {
                ready += 1;
            }
        }
        self.ready = ready;
        self.prune();
        bits
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec;

    fn entry(id: u64, epoch: u32, flags: u8) -> TlEntry {
        TlEntry {
            id,
            sector: id * 8,
            size: 4096,
            epoch,
            flags,
        }
    }

    #[test]
    fn completes_then_leaves_on_barrier_ack() {
        let mut tl = TransferLog::<3>::new();
        let sent = flag::LOCAL_PENDING | flag::NET_PENDING | flag::BARRIER_PENDING;
        tl.push(entry(1, 7, sent)).unwrap();
        tl.push(entry(2, 7, sent)).unwrap();
        tl.push(entry(3, 8, sent)).unwrap();
        assert_eq!(
            tl.push(entry(4, 8, sent)),
            Err(DataError::Full {
                what: "transfer log",
                capacity: 3
            })
        );
        assert_eq!(tl.oldest_unacked(), Some((7, 2)));
        assert_eq!(tl.poll_completion(), None);
        tl.modify(2, flag::REPLICATED, flag::NET_PENDING | flag::LOCAL_PENDING);
        let c = tl.poll_completion().unwrap();
        assert_eq!(
            c,
            Completion {
                id: 2,
                local_ok: true,
                replicated: true
            }
        );
        assert_eq!(tl.poll_completion(), None);
        assert_eq!(
            tl.barrier_acked(7, 1),
            Err(DataError::BarrierMismatch {
                expected: Some(7),
                got: 7,
                expected_size: 2,
                got_size: 1
            })
        );
        tl.barrier_acked(7, 2).unwrap();
        // Entry 1 still waits for its local write and ack, so nothing leaves yet.
        assert_eq!(tl.len(), 3);
        tl.modify(1, 0, flag::NET_PENDING | flag::LOCAL_PENDING);
        assert_eq!(tl.poll_completion().map(|c| c.id), Some(1));
        assert_eq!(tl.len(), 1);
        assert_eq!(tl.poll_retired().map(|r| (r.id, r.sector)), Some((1, 8)));
        assert_eq!(tl.poll_retired().map(|r| r.id), Some(2));
        assert_eq!(tl.poll_retired(), None);
        assert_eq!(tl.get(3).map(|e| e.epoch), Some(8));
        assert!(tl.get(1).is_none() && tl.get(4).is_none());
    }

    #[test]
    fn connection_loss_marks_unacked_dirty() {
        let mut store = vec![0u8; 8];
        let mut bm = DirtyBitmap::new(&mut store, 64 * 8).unwrap();
        let mut tl = TransferLog::<4>::new();
        let c_acked = flag::LOCAL_PENDING | flag::BARRIER_PENDING | flag::REPLICATED;
        tl.push(entry(1, 1, c_acked)).unwrap();
        tl.push(entry(
            2,
            1,
            flag::LOCAL_PENDING | flag::NET_PENDING | flag::BARRIER_PENDING | flag::REPLICATED,
        ))
        .unwrap();
        assert_eq!(tl.connection_lost(&mut bm), 2);
        assert!(bm.test(1) && bm.test(2) && !bm.test(0));
        tl.modify(1, 0, flag::LOCAL_PENDING);
        tl.modify(2, 0, flag::LOCAL_PENDING);
        assert!(tl.poll_completion().unwrap().replicated);
        assert!(!tl.poll_completion().unwrap().replicated);
        assert!(tl.is_empty());
        assert_eq!(
            tl.barrier_acked(1, 1),
            Err(DataError::BarrierMismatch {
                expected: None,
                got: 1,
                expected_size: 0,
                got_size: 1
            })
        );
    }
}
