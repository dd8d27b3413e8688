//! The activity log (replication.md §6.2): the set of "hot" 4 MiB extents a primary may write to,
//! kept on disk so that after a crash only those extents need resyncing.
//!
//! A write may be submitted only once every extent it touches is active *and* the transaction
//! that made it active is on disk: [`ActivityLog::begin_write`] answers [`AlGrant::Ready`] or
//! [`AlGrant::AfterTransaction`]; the shell then takes the record from
//! [`ActivityLog::poll_transaction`], writes it (after flushing the bitmap of the extents it
//! evicts, so their dirty bits survive a crash), and reports [`ActivityLog::transaction_written`].
//! Slots are recycled least-recently-used among those with no write in flight; `al-extents`
//! (default 1237) is the const generic `N`.
//!
//! After a crash, [`ActivityLog::recover`] replays the ring of records and
//! [`ActivityLog::mark_active_dirty`] sets every active extent dirty in the bitmap ("apply-al").
//!
//! # On-disk transaction record (Keelson's own layout, version 1)
//!
//! Each record is 4096 bytes; record number `n` lives at ring position `n % ring_len` (byte offset
//! `4096 · (n % ring_len)` in the AL area). All integers big-endian.
//!
//! | off | size | field |
//! | --- | --- | --- |
//! | 0 | 4 | magic `0x69CB65A2` (DRBD's AL transaction magic, so a dump is recognisable) |
//! | 4 | 4 | format version = 1 (this layout; DRBD's `al_transaction_on_disk` differs) |
//! | 8 | 8 | transaction number (one more than the previous record) |
//! | 16 | 4 | slots in the log that wrote it (`N`) |
//! | 20 | 2 | updates used (≤ 64) |
//! | 22 | 2 | context entries used (≤ 888) |
//! | 24 | 4 | slot of the first context entry |
//! | 28 | 4 | CRC32C (Castagnoli) of all 4096 bytes with this field zero |
//! | 32 | 512 | 64 updates: u32 slot · u32 extent |
//! | 544 | 3552 | 888 context entries: u32 extent of consecutive slots (mod `N`) |
//!
//! Extent `0xFFFFFFFF` is an empty slot; unused entries are zero. Updates and context both
//! describe the log *after* the transaction, so replay order inside a record does not matter.
//! The context walks the slots round-robin, so the newest `ceil(N / 888)` records describe every
//! slot; the ring must hold one more than that (the newest may be torn), which
//! [`ActivityLog::new`] checks. DRBD's default 32 KiB AL area is 8 records.

use heapless::Vec;

use super::bitmap::{DirtyBitmap, BLOCK_SHIFT};
use super::data_error::DataError;

/// log2 of an extent's size (AL_EXTENT_SHIFT): 4 MiB.
pub const EXTENT_SHIFT: u32 = 22;
/// DRBD's default `al-extents`.
pub const DEFAULT_EXTENTS: usize = 1237;
/// Bytes of one transaction record.
pub const RECORD_SIZE: usize = 4096;
/// Slot updates one record carries.
pub const UPDATES_PER_RECORD: usize = 64;
/// Context entries one record carries.
pub const CONTEXT_PER_RECORD: usize = (RECORD_SIZE - CONTEXT_OFF) / 4;
/// The record magic.
pub const MAGIC: u32 = 0x69CB_65A2;
/// The record format version this module writes.
pub const VERSION: u32 = 1;
/// DRBD's default ring: 32 KiB of records.
pub const DEFAULT_RING: u32 = 8;

const NO_EXTENT: u32 = u32::MAX;
const UPDATES_OFF: usize = 32;
const CONTEXT_OFF: usize = UPDATES_OFF + UPDATES_PER_RECORD * 8;
const CRC_OFF: usize = 28;

/// CRC32C (Castagnoli, reflected 0x82F63B78), as DRBD uses for its AL records.
const fn crc_table() -> [u32; 256] {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0x82F6_3B78
            } else {
                c >> 1
            };
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
}
const CRC_TABLE: [u32; 256] = crc_table();

/// CRC32C of `data`.
pub fn crc32c(data: &[u8]) -> u32 {
    !data.iter().fold(!0u32, |c, &b| {
        CRC_TABLE[usize::from((c as u8) ^ b)] ^ (c >> 8)
    })
}

fn be32(b: &[u8], off: usize) -> u32 {
    b.get(off..off + 4)
        .and_then(|s| <[u8; 4]>::try_from(s).ok())
        .map_or(0, u32::from_be_bytes)
}

fn put32(b: &mut [u8], off: usize, v: u32) {
    if let Some(s) = b.get_mut(off..off + 4) {
        s.copy_from_slice(&v.to_be_bytes());
    }
}

/// Whether a write may be submitted now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AlGrant {
    /// Every extent is active on disk: submit.
    Ready,
    /// Submit once transaction `n` is written ([`ActivityLog::is_durable`]).
    AfterTransaction(u64),
}

/// A record [`ActivityLog::poll_transaction`] wrote; the shell persists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlTransaction {
    /// Its number (report it to [`ActivityLog::transaction_written`]).
    pub number: u64,
    /// Ring position.
    pub ring_index: u32,
    /// Byte offset in the AL area: `ring_index · 4096`.
    pub offset: u64,
    /// Extents this record drops: write their part of the bitmap to disk *before* the record.
    pub evicted: Vec<u32, UPDATES_PER_RECORD>,
}

/// What [`ActivityLog::recover`] found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Valid records replayed.
    pub replayed: u32,
    /// The newest record's number (`None` for a blank ring).
    pub newest: Option<u64>,
    /// Extents active after replay.
    pub active: usize,
}

#[derive(Clone, Copy, Debug)]
struct Slot {
    extent: u32,
    refs: u32,
    used: u64,
    /// The transaction that puts this slot's extent on disk, until it is written.
    durable_in: Option<u64>,
}

const EMPTY: Slot = Slot {
    extent: NO_EXTENT,
    refs: 0,
    used: 0,
    durable_in: None,
};

/// The activity log with `N` slots (`al-extents`).
#[derive(Clone, Debug)]
pub struct ActivityLog<const N: usize> {
    slots: [Slot; N],
    tick: u64,
    next_tr: u64,
    pending: Vec<u32, UPDATES_PER_RECORD>,
    evicted: Vec<u32, UPDATES_PER_RECORD>,
    in_flight: Option<u64>,
    cursor: usize,
    ring_len: u32,
}

fn extents_of(sector: u64, len: u64) -> Result<(u32, u32), DataError> {
    let start = sector.checked_mul(512);
    let last = start.and_then(|s| s.checked_add(len.max(1) - 1));
    let (Some(start), Some(last)) = (start, last) else {
        return Err(DataError::OutOfRange {
            sector,
            len,
            capacity: u64::MAX / 512,
        });
    };
    let (a, b) = (start >> EXTENT_SHIFT, last >> EXTENT_SHIFT);
    match (u32::try_from(a), u32::try_from(b)) {
        (Ok(a), Ok(b)) if b < NO_EXTENT => Ok((a, b)),
        _ => Err(DataError::OutOfRange {
            sector,
            len,
            capacity: u64::from(NO_EXTENT) << (EXTENT_SHIFT - 9),
        }),
    }
}

impl<const N: usize> ActivityLog<N> {
    /// An empty log writing a ring of `ring_len` records.
    pub fn new(ring_len: u32) -> Result<Self, DataError> {
        let needed = (N.div_ceil(CONTEXT_PER_RECORD) as u32).saturating_add(1);
        if ring_len < needed.max(2) || N == 0 || N >= NO_EXTENT as usize {
            return Err(DataError::AlRingTooShort {
                needed: needed.max(2),
                have: ring_len,
            });
        }
        Ok(ActivityLog {
            slots: [EMPTY; N],
            tick: 0,
            next_tr: 0,
            pending: Vec::new(),
            evicted: Vec::new(),
            in_flight: None,
            cursor: 0,
            ring_len,
        })
    }

    fn find(&self, extent: u32) -> Option<usize> {
        self.slots.iter().position(|s| s.extent == extent)
    }

    /// True if `extent` is in the log.
    pub fn is_active(&self, extent: u32) -> bool {
        self.find(extent).is_some()
    }

    /// The active extents, in slot order.
    pub fn active_extents(&self) -> impl Iterator<Item = u32> + '_ {
        self.slots
            .iter()
            .map(|s| s.extent)
            .filter(|&e| e != NO_EXTENT)
    }

    /// True once transaction `n` is on disk.
    pub fn is_durable(&self, n: u64) -> bool {
        n < self.next_tr && self.in_flight != Some(n)
    }

    /// The number the next record gets.
    pub fn next_transaction(&self) -> u64 {
        self.next_tr
    }

    /// Makes the extents of `len` bytes at `sector` active for one more in-flight write. On an
    /// error nothing changed: wait for writes to end ([`DataError::AlBusy`]) or for the pending
    /// transaction to be written ([`DataError::AlTransactionFull`]) and retry.
    pub fn begin_write(&mut self, sector: u64, len: u64) -> Result<AlGrant, DataError> {
        let (first, last) = extents_of(sector, len)?;
        let mut new = 0usize;
        for e in first..=last {
            if self.find(e).is_none() {
                new += 1;
            }
        }
        if new > 0 {
            let hot = |s: &Slot| s.extent >= first && s.extent <= last;
            let free = self.slots.iter().filter(|s| s.refs == 0 && !hot(s)).count();
            if free < new {
                return Err(DataError::AlBusy { slots: N });
            }
            if self.pending.len() + new > UPDATES_PER_RECORD {
                return Err(DataError::AlTransactionFull);
            }
        }
        let mut wait = None;
        for e in first..=last {
            self.tick += 1;
            let i = match self.find(e) {
                Some(i) => i,
                None => self.claim(e, first, last),
            };
            let Some(slot) = self.slots.get_mut(i) else {
                continue;
            };
            slot.refs += 1;
            slot.used = self.tick;
            if let Some(n) = slot.durable_in {
                wait = Some(wait.map_or(n, |w: u64| w.max(n)));
            }
        }
        Ok(wait.map_or(AlGrant::Ready, AlGrant::AfterTransaction))
    }

    /// Puts `extent` into a free or least-recently-used idle slot; the caller checked one exists.
    fn claim(&mut self, extent: u32, first: u32, last: u32) -> usize {
        let idle = |s: &Slot| s.refs == 0 && !(s.extent >= first && s.extent <= last);
        let i = self
            .slots
            .iter()
            .position(|s| s.extent == NO_EXTENT)
            .or_else(|| {
                self.slots
                    .iter()
                    .enumerate()
                    .filter(|(_, s)| idle(s))
                    .min_by_key(|(_, s)| s.used)
                    .map(|(i, _)| i)
            })
            .unwrap_or(0);
        let next = self.next_tr;
        if let Some(slot) = self.slots.get_mut(i) {
            if slot.extent != NO_EXTENT {
                // Capacity was checked in begin_write; a full list only loses an eviction notice
                // for an extent already named.
                let _ = self.evicted.push(slot.extent);
            }
            slot.extent = extent;
            slot.durable_in = Some(next);
        }
        if !self.pending.contains(&(i as u32)) {
            let _ = self.pending.push(i as u32);
        }
        i
    }

    /// One write on `len` bytes at `sector` has completed (locally and wherever it needed to).
    pub fn end_write(&mut self, sector: u64, len: u64) -> Result<(), DataError> {
        let (first, last) = extents_of(sector, len)?;
        for e in first..=last {
            if self.find(e).is_none_or(|i| self.slots[i].refs == 0) {
                return Err(DataError::StaleToken);
            }
        }
        for e in first..=last {
            if let Some(i) = self.find(e) {
                self.slots[i].refs -= 1;
            }
        }
        Ok(())
    }

    /// Writes the next record into `out` (4096 bytes) when slots changed and no record is being
    /// written; `None` otherwise.
    pub fn poll_transaction(&mut self, out: &mut [u8]) -> Result<Option<AlTransaction>, DataError> {
        if self.pending.is_empty() || self.in_flight.is_some() {
            return Ok(None);
        }
        let Some(rec) = out.get_mut(..RECORD_SIZE) else {
            return Err(crate::repl::wire::Error::NoRoom {
                required: RECORD_SIZE,
                have: out.len(),
            }
            .into());
        };
        let number = self.next_tr;
        rec.fill(0);
        put32(rec, 0, MAGIC);
        put32(rec, 4, VERSION);
        rec[8..16].copy_from_slice(&number.to_be_bytes());
        put32(rec, 16, N as u32);
        rec[20..22].copy_from_slice(&(self.pending.len() as u16).to_be_bytes());
        let count = N.min(CONTEXT_PER_RECORD);
        rec[22..24].copy_from_slice(&(count as u16).to_be_bytes());
        put32(rec, 24, self.cursor as u32);
        for (k, &i) in self.pending.iter().enumerate() {
            let extent = self.slots.get(i as usize).map_or(NO_EXTENT, |s| s.extent);
            put32(rec, UPDATES_OFF + 8 * k, i);
            put32(rec, UPDATES_OFF + 8 * k + 4, extent);
        }
        for k in 0..count {
            let extent = self.slots[(self.cursor + k) % N].extent;
            put32(rec, CONTEXT_OFF + 4 * k, extent);
        }
        let crc = crc32c(rec);
        put32(rec, CRC_OFF, crc);
        self.cursor = (self.cursor + count) % N;
        for &i in &self.pending {
            if let Some(s) = self.slots.get_mut(i as usize) {
                s.durable_in = Some(number);
            }
        }
        self.pending.clear();
        let evicted = core::mem::take(&mut self.evicted);
        self.next_tr += 1;
        self.in_flight = Some(number);
        let ring_index = (number % u64::from(self.ring_len)) as u32;
        Ok(Some(AlTransaction {
            number,
            ring_index,
            offset: u64::from(ring_index) * RECORD_SIZE as u64,
            evicted,
        }))
    }

    /// Record `number` is on disk: writes waiting for it may be submitted.
    pub fn transaction_written(&mut self, number: u64) -> Result<(), DataError> {
        if self.in_flight != Some(number) {
            return Err(DataError::StaleToken);
        }
        self.in_flight = None;
        for s in self.slots.iter_mut() {
            if s.durable_in == Some(number) {
                s.durable_in = None;
            }
        }
        Ok(())
    }

    /// Rebuilds the log from its on-disk ring (`ring_len` records of 4096 bytes; missing or
    /// torn records are skipped). The log is then idle: every slot durable, no write in flight.
    pub fn recover(ring_len: u32, ring: &[u8]) -> Result<(Self, Recovery), DataError> {
        let mut log = Self::new(ring_len)?;
        let mut newest: Option<u64> = None;
        for i in 0..ring_len as usize {
            if let Some(n) = log.record_number(ring, i)? {
                newest = Some(newest.map_or(n, |m| m.max(n)));
            }
        }
        let mut rec = Recovery {
            newest,
            ..Recovery::default()
        };
        let Some(newest) = newest else {
            return Ok((log, rec));
        };
        let oldest = newest.saturating_sub(u64::from(ring_len) - 1);
        for n in oldest..=newest {
            let i = (n % u64::from(ring_len)) as usize;
            if log.record_number(ring, i)? != Some(n) {
                continue;
            }
            let r = &ring[i * RECORD_SIZE..(i + 1) * RECORD_SIZE];
            let start = be32(r, 24) as usize;
            let count = usize::from(u16::from_be_bytes([r[22], r[23]]));
            for k in 0..count {
                log.slots[(start + k) % N].extent = be32(r, CONTEXT_OFF + 4 * k);
            }
            let updates = usize::from(u16::from_be_bytes([r[20], r[21]]));
            for k in 0..updates {
                let slot = be32(r, UPDATES_OFF + 8 * k) as usize;
                log.slots[slot].extent = be32(r, UPDATES_OFF + 8 * k + 4);
            }
            log.cursor = (start + count) % N;
            rec.replayed += 1;
        }
        log.next_tr = newest + 1;
        rec.active = log.active_extents().count();
        Ok((log, rec))
    }

    /// The number of a valid record at ring position `i`, `None` for blank, torn or stale ones,
    /// an error for a valid record this log cannot replay.
    fn record_number(&self, ring: &[u8], i: usize) -> Result<Option<u64>, DataError> {
        let Some(r) = ring.get(i * RECORD_SIZE..(i + 1) * RECORD_SIZE) else {
            return Ok(None);
        };
        if be32(r, 0) != MAGIC || be32(r, 4) != VERSION {
            return Ok(None);
        }
        let mut copy = [0u8; RECORD_SIZE];
        copy.copy_from_slice(r);
        put32(&mut copy, CRC_OFF, 0);
        if crc32c(&copy) != be32(r, CRC_OFF) {
            return Ok(None);
        }
        let n = u64::from_be_bytes(r[8..16].try_into().unwrap_or([0; 8]));
        if n % u64::from(self.ring_len) != i as u64 {
            return Ok(None);
        }
        let bad = |reason| Err(DataError::AlRecord { index: i, reason });
        if be32(r, 16) as usize != N {
            return bad("written by a log with a different number of slots");
        }
        let updates = usize::from(u16::from_be_bytes([r[20], r[21]]));
        let count = usize::from(u16::from_be_bytes([r[22], r[23]]));
        if updates > UPDATES_PER_RECORD || count > CONTEXT_PER_RECORD.min(N) {
            return bad("more updates or context entries than a record holds");
        }
        if be32(r, 24) as usize >= N
            || (0..updates).any(|k| be32(r, UPDATES_OFF + 8 * k) as usize >= N)
        {
            return bad("slot number past the log");
        }
        Ok(Some(n))
    }

    /// Marks every active extent dirty in `bitmap` (after a crash: "apply-al"); returns bits set.
    pub fn mark_active_dirty(&self, bitmap: &mut DirtyBitmap<'_>) -> u64 {
        let per = 1u64 << (EXTENT_SHIFT - BLOCK_SHIFT);
        self.active_extents()
            .map(|e| bitmap.set_bits(u64::from(e) * per, (u64::from(e) + 1) * per))
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec;

    const MIB4: u64 = 8192; // sectors per extent

    #[test]
    fn crc32c_check_value() {
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
    }

    #[test]
    fn ring_must_cover_every_slot() {
        assert!(ActivityLog::<DEFAULT_EXTENTS>::new(2).is_err());
        assert_eq!(
            ActivityLog::<DEFAULT_EXTENTS>::new(2).unwrap_err(),
            DataError::AlRingTooShort { needed: 3, have: 2 }
        );
        assert!(ActivityLog::<DEFAULT_EXTENTS>::new(DEFAULT_RING).is_ok());
    }

    #[test]
    fn write_waits_for_its_transaction() {
        let mut al = ActivityLog::<4>::new(2).unwrap();
        assert_eq!(al.begin_write(0, 4096), Ok(AlGrant::AfterTransaction(0)));
        // Same extent again: still waiting for record 0.
        assert_eq!(al.begin_write(8, 4096), Ok(AlGrant::AfterTransaction(0)));
        let mut rec = vec![0u8; RECORD_SIZE];
        let t = al.poll_transaction(&mut rec).unwrap().unwrap();
        assert_eq!((t.number, t.ring_index, t.offset), (0, 0, 0));
        assert!(t.evicted.is_empty());
        assert_eq!(al.poll_transaction(&mut rec), Ok(None));
        assert!(!al.is_durable(0));
        // A write spanning extents 1 and 2 while record 0 is in flight goes into record 1.
        assert_eq!(
            al.begin_write(MIB4 * 2 - 8, 8192),
            Ok(AlGrant::AfterTransaction(1))
        );
        assert_eq!(al.poll_transaction(&mut rec), Ok(None));
        al.transaction_written(0).unwrap();
        assert!(al.is_durable(0));
        assert_eq!(al.transaction_written(0), Err(DataError::StaleToken));
        assert_eq!(al.begin_write(16, 512), Ok(AlGrant::Ready));
        let t = al.poll_transaction(&mut rec).unwrap().unwrap();
        assert_eq!((t.number, t.ring_index, t.offset), (1, 1, 4096));
        al.transaction_written(1).unwrap();
        assert_eq!(al.begin_write(MIB4 * 2, 512), Ok(AlGrant::Ready));
        assert_eq!(al.active_extents().collect::<std::vec::Vec<_>>(), [0, 1, 2]);
    }

    #[test]
    fn lru_eviction_skips_busy_slots() {
        let mut al = ActivityLog::<2>::new(2).unwrap();
        let mut rec = vec![0u8; RECORD_SIZE];
        al.begin_write(0, 512).unwrap();
        al.begin_write(MIB4, 512).unwrap();
        al.poll_transaction(&mut rec).unwrap().unwrap();
        al.transaction_written(0).unwrap();
        // Both slots busy: a third extent must wait.
        assert_eq!(
            al.begin_write(MIB4 * 2, 512),
            Err(DataError::AlBusy { slots: 2 })
        );
        al.end_write(MIB4, 512).unwrap();
        al.end_write(0, 512).unwrap();
        assert_eq!(al.end_write(0, 512), Err(DataError::StaleToken));
        // Extent 0 was used first: it is evicted, and the record names it.
        assert_eq!(
            al.begin_write(MIB4 * 2, 512),
            Ok(AlGrant::AfterTransaction(1))
        );
        let t = al.poll_transaction(&mut rec).unwrap().unwrap();
        assert_eq!(t.evicted.as_slice(), [0]);
        assert!(!al.is_active(0) && al.is_active(1) && al.is_active(2));
    }

    #[test]
    fn record_bytes_and_recovery() {
        let ring_len = 3u32;
        let mut ring = vec![0u8; RECORD_SIZE * ring_len as usize];
        let mut al = ActivityLog::<DEFAULT_EXTENTS>::new(ring_len).unwrap();
        // Seven transactions, one new extent each; the ring keeps the last three.
        for e in 0..7u64 {
            al.begin_write(e * 3 * MIB4, 4096).unwrap();
            let mut rec = [0u8; RECORD_SIZE];
            let t = al.poll_transaction(&mut rec).unwrap().unwrap();
            let at = t.offset as usize;
            ring[at..at + RECORD_SIZE].copy_from_slice(&rec);
            al.transaction_written(t.number).unwrap();
            al.end_write(e * 3 * MIB4, 4096).unwrap();
        }
        let r6 = &ring[0..RECORD_SIZE]; // record 6 at position 0
        assert_eq!(&r6[0..8], &[0x69, 0xCB, 0x65, 0xA2, 0, 0, 0, 1]);
        assert_eq!(&r6[8..16], &6u64.to_be_bytes());
        assert_eq!(&r6[16..28], &[0, 0, 4, 0xD5, 0, 1, 3, 0x78, 0, 0, 1, 0x7C]);
        assert_eq!(&r6[32..40], &[0, 0, 0, 6, 0, 0, 0, 18]);

        let (back, rec) = ActivityLog::<DEFAULT_EXTENTS>::recover(ring_len, &ring).unwrap();
        assert_eq!(
            rec,
            Recovery {
                replayed: 3,
                newest: Some(6),
                active: 7
            }
        );
        assert_eq!(back.next_transaction(), 7);
        let mut store = vec![0u8; crate::repl::bitmap::bytes_for(64 * MIB4)];
        let mut bm = DirtyBitmap::new(&mut store, 64 * MIB4).unwrap();
        assert_eq!(back.mark_active_dirty(&mut bm), 7 * 1024);
        assert!(bm.test(18 * 1024) && bm.test(19 * 1024 - 1) && !bm.test(19 * 1024));

        // A torn newest record is skipped; the older ones still hold every slot.
        ring[100] ^= 1;
        let (_, rec) = ActivityLog::<DEFAULT_EXTENTS>::recover(ring_len, &ring).unwrap();
        assert_eq!((rec.replayed, rec.newest, rec.active), (2, Some(5), 6));

        // A blank ring recovers an empty log; a record from another log size is refused.
        let (_, rec) = ActivityLog::<DEFAULT_EXTENTS>::recover(ring_len, &[0; 100]).unwrap();
        assert_eq!(rec, Recovery::default());
        assert!(matches!(
            ActivityLog::<1000>::recover(ring_len, &ring),
            Err(DataError::AlRecord { index: 1, .. })
        ));
    }
}
