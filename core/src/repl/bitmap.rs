//! The dirty bitmap (replication.md §6.2): one bit per 4 KiB block of the device, set = "this
//! block may differ on the peer". It lives in a caller-provided slice so the shell can persist it
//! as-is in its meta data and firmware can size it statically.
//!
//! The slice holds whole 64-bit words in little-endian byte order — bit `i` is bit `i % 8` of
//! byte `i / 8` — which is DRBD's on-wire word order (§3.11), so the same bytes feed the wire
//! codec ([`super::wire::bitmap::BitmapXfer`]) and the disk without conversion (the core forbids
//! `unsafe`, so a `&[u64]` could not be handed to the byte-oriented codec).
//!
//! Setting a range marks every block it touches; clearing a range clears only blocks it covers
//! completely (DRBD's `set_in_sync` rule: a 512-byte ack says nothing about the rest of its
//! block). The number of set bits is kept up to date, so [`DirtyBitmap::count`] is free.

use super::data_error::DataError;
use super::wire::bitmap::{BitmapChunk, BitmapXfer, MAX_PACKET};
use super::wire::{Body, Command, Frame, HeaderKind};

/// log2 of the bytes one bit covers (BM_BLOCK_SHIFT).
pub const BLOCK_SHIFT: u32 = 12;
/// Bytes one bit covers.
pub const BLOCK_SIZE: u64 = 1 << BLOCK_SHIFT;
/// Sectors (512 bytes) one bit covers.
pub const SECTORS_PER_BIT: u64 = BLOCK_SIZE / 512;

/// Bits a device of `capacity_sectors` needs: ceil(sectors / 8) (§3.11).
pub const fn bits_for(capacity_sectors: u64) -> u64 {
    capacity_sectors.div_ceil(SECTORS_PER_BIT)
}

/// Bytes of bitmap storage a device of `capacity_sectors` needs (whole 64-bit words);
/// `usize::MAX` when that does not fit the address space (no slice is that long).
pub const fn bytes_for(capacity_sectors: u64) -> usize {
    let bytes = bits_for(capacity_sectors).div_ceil(64) * 8;
    if bytes > usize::MAX as u64 {
        usize::MAX
    } else {
        bytes as usize
    }
}

/// The dirty bitmap of one peer over `&mut [u8]` storage.
#[derive(Debug)]
pub struct DirtyBitmap<'a> {
    bytes: &'a mut [u8],
    bits: u64,
    capacity_sectors: u64,
    dirty: u64,
}

impl<'a> DirtyBitmap<'a> {
    /// A bitmap for a device of `capacity_sectors` over `storage`, keeping whatever bits it holds
    /// (a bitmap read back from disk). Bits past the device end are cleared.
    pub fn new(storage: &'a mut [u8], capacity_sectors: u64) -> Result<Self, DataError> {
        let needed = bytes_for(capacity_sectors);
        if storage.len() < needed {
            return Err(DataError::BitmapTooSmall {
                needed,
                have: storage.len(),
            });
        }
        let mut bm = DirtyBitmap {
            bytes: &mut storage[..needed],
            bits: bits_for(capacity_sectors),
            capacity_sectors,
            dirty: 0,
        };
        bm.clear_surplus();
        bm.dirty = bm.count_bytes(0, needed);
        Ok(bm)
    }

    /// A bitmap over storage it was built over before, trusting the set-bit count kept from
    /// then ([`Self::count`]) instead of recounting: an O(1) view for callers that own the
    /// storage. A short `storage` reads as clear past its end.
    pub fn resume(storage: &'a mut [u8], capacity_sectors: u64, dirty: u64) -> Self {
        let needed = bytes_for(capacity_sectors).min(storage.len());
        DirtyBitmap {
            bytes: &mut storage[..needed],
            bits: bits_for(capacity_sectors),
            capacity_sectors,
            dirty,
        }
    }

    /// Bits in the bitmap.
    pub fn bits(&self) -> u64 {
        self.bits
    }

    /// The device size in sectors.
    pub fn capacity_sectors(&self) -> u64 {
        self.capacity_sectors
    }

    /// Set bits.
    pub fn count(&self) -> u64 {
        self.dirty
    }

    /// Bytes the set bits cover (the last block counts whole, as DRBD's status does).
    pub fn dirty_bytes(&self) -> u64 {
        self.dirty << BLOCK_SHIFT
    }

    /// The storage: whole little-endian words, ready to persist or send.
    pub fn as_bytes(&self) -> &[u8] {
        self.bytes
    }

    /// True if bit `bit` is set (false past the end).
    pub fn test(&self, bit: u64) -> bool {
        let Some(byte) = usize::try_from(bit / 8)
            .ok()
            .and_then(|b| self.bytes.get(b))
        else {
            return false;
        };
        bit < self.bits && byte >> (bit % 8) & 1 == 1
    }

    fn word(&self, w: u64) -> u64 {
        let at = usize::try_from(w.saturating_mul(8)).unwrap_or(usize::MAX);
        self.bytes
            .get(at..at.saturating_add(8))
            .and_then(|s| <[u8; 8]>::try_from(s).ok())
            .map_or(0, u64::from_le_bytes)
    }

    fn put_word(&mut self, w: u64, v: u64) {
        let at = usize::try_from(w.saturating_mul(8)).unwrap_or(usize::MAX);
        if let Some(s) = self.bytes.get_mut(at..at.saturating_add(8)) {
            s.copy_from_slice(&v.to_le_bytes());
        }
    }

    fn count_bytes(&self, from: usize, to: usize) -> u64 {
        self.bytes
            .get(from..to.min(self.bytes.len()))
            .unwrap_or(&[])
            .iter()
            .map(|b| u64::from(b.count_ones()))
            .sum()
    }

    /// Bits past the device end are never set: a peer's plain P_BITMAP may carry them.
    fn clear_surplus(&mut self) {
        let rem = self.bits % 64;
        if rem != 0 {
            let w = self.bits / 64;
            let v = self.word(w) & ((1u64 << rem) - 1);
            self.put_word(w, v);
        }
    }

    /// Applies `f(old_word, mask) -> new_word` to bits `[start, end)` (clipped to the bitmap) and
    /// returns how many bits changed.
    fn update(&mut self, start: u64, end: u64, set: bool) -> u64 {
        let end = end.min(self.bits);
        let mut changed = 0;
        let mut bit = start;
        while bit < end {
            let w = bit / 64;
            let lo = bit % 64;
            let hi = (end - w * 64).min(64);
            let mask = if hi - lo == 64 {
                u64::MAX
            } else {
                ((1u64 << (hi - lo)) - 1) << lo
            };
            let old = self.word(w);
            let new = if set { old | mask } else { old & !mask };
            changed += u64::from((old ^ new).count_ones());
            self.put_word(w, new);
            bit = w * 64 + hi;
        }
        if set {
            self.dirty += changed;
        } else {
            self.dirty -= changed.min(self.dirty);
        }
        changed
    }

    /// Sets bits `[start, end)` (clipped to the bitmap); returns how many were newly set.
    pub fn set_bits(&mut self, start: u64, end: u64) -> u64 {
        self.update(start, end, true)
    }

    /// Clears bits `[start, end)` (clipped); returns how many were set before.
    pub fn clear_bits(&mut self, start: u64, end: u64) -> u64 {
        self.update(start, end, false)
    }

    fn check_range(&self, sector: u64, len: u64) -> Result<(), DataError> {
        let end = sector
            .checked_mul(512)
            .and_then(|b| b.checked_add(len))
            .filter(|&e| e <= self.capacity_sectors.saturating_mul(512));
        match end {
            Some(_) => Ok(()),
            None => Err(DataError::OutOfRange {
                sector,
                len,
                capacity: self.capacity_sectors,
            }),
        }
    }

    /// Bits a byte range touches: `[floor(off/4K), ceil((off+len)/4K))`.
    fn touched(offset: u64, len: u64) -> (u64, u64) {
        (
            offset >> BLOCK_SHIFT,
            offset.saturating_add(len).div_ceil(BLOCK_SIZE),
        )
    }

    /// Bits a byte range covers completely; a range that reaches the device end covers its last
    /// (possibly partial) block.
    fn covered(&self, offset: u64, len: u64) -> (u64, u64) {
        let end = offset.saturating_add(len);
        let last = if end >= self.capacity_sectors.saturating_mul(512) {
            self.bits
        } else {
            end >> BLOCK_SHIFT
        };
        (offset.div_ceil(BLOCK_SIZE), last)
    }

    /// Marks every block that `len` bytes at `sector` touch; returns bits newly set.
    pub fn set_sectors(&mut self, sector: u64, len: u64) -> Result<u64, DataError> {
        self.check_range(sector, len)?;
        let (s, e) = Self::touched(sector * 512, len);
        Ok(self.set_bits(s, e))
    }

    /// Clears every block that `len` bytes at `sector` cover completely; returns bits cleared.
    pub fn clear_sectors(&mut self, sector: u64, len: u64) -> Result<u64, DataError> {
        self.check_range(sector, len)?;
        let (s, e) = self.covered(sector * 512, len);
        Ok(self.clear_bits(s, e))
    }

    /// [`Self::set_sectors`] for a byte offset.
    pub fn set_bytes(&mut self, offset: u64, len: u64) -> Result<u64, DataError> {
        self.check_range(offset / 512, len + offset % 512)?;
        let (s, e) = Self::touched(offset, len);
        Ok(self.set_bits(s, e))
    }

    /// [`Self::clear_sectors`] for a byte offset.
    pub fn clear_bytes(&mut self, offset: u64, len: u64) -> Result<u64, DataError> {
        self.check_range(offset / 512, len + offset % 512)?;
        let (s, e) = self.covered(offset, len);
        Ok(self.clear_bits(s, e))
    }

    /// Sets every bit (a full sync, §6.3 "set bitmap").
    pub fn set_all(&mut self) {
        self.set_bits(0, self.bits);
    }

    /// Clears every bit.
    pub fn clear_all(&mut self) {
        self.clear_bits(0, self.bits);
    }

    /// Bits set among `[start, end)`.
    pub fn count_range(&self, start: u64, end: u64) -> u64 {
        let mut n = 0;
        let mut at = start;
        while let Some(b) = self.find_next_dirty(at).filter(|&b| b < end) {
            let stop = self.find_next_clean(b).min(end);
            n += stop - b;
            at = stop;
        }
        n
    }

    fn find(&self, from: u64, dirty: bool) -> Option<u64> {
        let mut w = from / 64;
        let words = self.bits.div_ceil(64);
        let mut skip_low = from % 64;
        while w < words {
            let raw = self.word(w);
            let v = if dirty { raw } else { !raw };
            let v = v & (u64::MAX << skip_low);
            if v != 0 {
                let bit = w * 64 + u64::from(v.trailing_zeros());
                return (bit < self.bits).then_some(bit);
            }
            skip_low = 0;
            w += 1;
        }
        None
    }

    /// The first set bit at or after `from`.
    pub fn find_next_dirty(&self, from: u64) -> Option<u64> {
        self.find(from, true)
    }

    /// The first clear bit at or after `from`, or [`Self::bits`] if none.
    pub fn find_next_clean(&self, from: u64) -> u64 {
        self.find(from, false).unwrap_or(self.bits).max(from)
    }

    /// Runs of set bits from bit `from`: `(first bit, bits)`.
    pub fn runs(&self, from: u64) -> DirtyRuns<'_, 'a> {
        DirtyRuns { bm: self, at: from }
    }

    /// ORs raw bitmap bytes (same layout) into this bitmap; returns bits newly set.
    pub fn merge(&mut self, other: &[u8]) -> u64 {
        let before = self.dirty;
        for (d, s) in self.bytes.iter_mut().zip(other) {
            *d |= *s;
        }
        self.clear_surplus();
        self.dirty = self.count_bytes(0, self.bytes.len());
        self.dirty - before.min(self.dirty)
    }

    /// A transfer cursor over this bitmap for the bitmap exchange (§3.11).
    pub fn xfer(&self, header: HeaderKind) -> BitmapXfer {
        BitmapXfer::new(self.bits, header)
    }

    /// Writes the next P_BITMAP / P_COMPRESSED_BITMAP payload of this bitmap into `out` (see
    /// [`BitmapXfer::next_packet`]); `None` once the whole bitmap went out.
    pub fn send_packet(
        &self,
        xfer: &mut BitmapXfer,
        use_rle: bool,
        out: &mut [u8],
    ) -> Result<Option<BitmapChunk>, DataError> {
        Ok(xfer.next_packet(self.bytes, use_rle, out)?)
    }

    /// OR-merges one received bitmap packet payload (the peer's bitmap, §3.11); returns true when
    /// the peer's whole bitmap has arrived.
    pub fn receive_packet(
        &mut self,
        xfer: &mut BitmapXfer,
        command: Command,
        payload: &[u8],
    ) -> Result<bool, DataError> {
        // A plain packet restarts at the word holding the cursor (§3.11), so count from there.
        let from = usize::try_from(xfer.bit_offset() / 64 * 8).unwrap_or(usize::MAX);
        let before = self.count_bytes(from, self.bytes.len());
        let done = xfer.receive(command, payload, self.bytes)?;
        self.clear_surplus();
        let after = self.count_bytes(from, self.bytes.len());
        self.dirty = self.dirty - before.min(self.dirty) + after;
        Ok(done)
    }

    /// [`Self::receive_packet`] for a parsed P_BITMAP / P_COMPRESSED_BITMAP frame.
    pub fn receive_frame(
        &mut self,
        xfer: &mut BitmapXfer,
        frame: &Frame<'_>,
    ) -> Result<bool, DataError> {
        match frame.body {
            Body::Bitmap(words) => self.receive_packet(xfer, Command::Bitmap, words),
            Body::CompressedBitmap(repr) => {
                let mut raw = [0u8; MAX_PACKET];
                let n = repr.emit(&mut raw)?;
                self.receive_packet(xfer, Command::CompressedBitmap, &raw[..n])
            }
            _ => Err(DataError::Unexpected {
                command: frame.command,
            }),
        }
    }
}

/// Iterator over runs of set bits, from [`DirtyBitmap::runs`].
#[derive(Debug)]
pub struct DirtyRuns<'b, 'a> {
    bm: &'b DirtyBitmap<'a>,
    at: u64,
}

impl Iterator for DirtyRuns<'_, '_> {
    type Item = (u64, u64);
    fn next(&mut self) -> Option<(u64, u64)> {
        let start = self.bm.find_next_dirty(self.at)?;
        let end = self.bm.find_next_clean(start);
        self.at = end;
        Some((start, end - start))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repl::wire::Agreed;
    use std::vec;
    use std::vec::Vec;

    #[test]
    fn sizes_follow_the_wire_rule() {
        assert_eq!(bits_for(0), 0);
        assert_eq!(bits_for(1), 1);
        assert_eq!(bits_for(8), 1);
        assert_eq!(bits_for(9), 2);
        // 1 TiB → 32 MiB of bitmap (§6.2).
        assert_eq!(bytes_for(1 << 31), 32 << 20);
        let mut short = [0u8; 7];
        assert_eq!(
            DirtyBitmap::new(&mut short, 8).unwrap_err(),
            DataError::BitmapTooSmall { needed: 8, have: 7 }
        );
    }

    #[test]
    fn set_touches_clear_covers() {
        let mut s = [0u8; 16];
        let mut bm = DirtyBitmap::new(&mut s, 100 * 8).unwrap();
        // 512 bytes at sector 9: inside block 1.
        assert_eq!(bm.set_sectors(9, 512), Ok(1));
        assert!(bm.test(1) && !bm.test(0) && !bm.test(2));
        // Clearing a partial block does nothing.
        assert_eq!(bm.clear_sectors(9, 512), Ok(0));
        assert_eq!(bm.count(), 1);
        // 8 KiB from sector 4 touches blocks 0, 1, 2 but covers only block 1.
        assert_eq!(bm.set_sectors(4, 8192), Ok(2));
        assert_eq!(bm.clear_sectors(4, 8192), Ok(1));
        assert_eq!(bm.runs(0).collect::<Vec<_>>(), [(0, 1), (2, 1)]);
        assert_eq!(bm.set_bytes(4096 * 60, 4096 * 8), Ok(8));
        assert_eq!(bm.count_range(0, 64), 6);
        assert_eq!(bm.count_range(0, 100), 10);
        assert_eq!(bm.as_bytes()[7], 0xF0);
        assert_eq!(bm.as_bytes()[8], 0x0F);
        assert_eq!(bm.clear_bytes(4096 * 61, 4096), Ok(1));
        assert_eq!(bm.find_next_dirty(3), Some(60));
        assert_eq!(bm.find_next_clean(60), 61);
        assert_eq!(bm.find_next_dirty(68), None);
        assert_eq!(
            bm.set_sectors(799, 1024),
            Err(DataError::OutOfRange {
                sector: 799,
                len: 1024,
                capacity: 800
            })
        );
        assert!(bm.set_sectors(u64::MAX / 2, 512).is_err());
        bm.set_all();
        assert_eq!(bm.count(), 100);
        assert_eq!(bm.find_next_clean(0), 100);
        bm.clear_all();
        assert_eq!(bm.count(), 0);
    }

    #[test]
    fn partial_last_block_clears_at_device_end() {
        let mut s = [0u8; 8];
        // 13 sectors: two bits, the second covering 5 sectors.
        let mut bm = DirtyBitmap::new(&mut s, 13).unwrap();
        assert_eq!(bm.bits(), 2);
        bm.set_all();
        assert_eq!(bm.as_bytes()[0], 0b11);
        assert_eq!(bm.clear_sectors(8, 5 * 512), Ok(1));
        assert_eq!(bm.count(), 1);
    }

    #[test]
    fn storage_from_disk_is_counted_and_trimmed() {
        let mut s = [0xFFu8; 16];
        let bm = DirtyBitmap::new(&mut s, 70 * 8).unwrap();
        assert_eq!(bm.count(), 70);
        assert_eq!(bm.as_bytes()[8], 0x3F);
    }

    #[test]
    fn wire_exchange_or_merges() {
        let sectors = 20_000 * 8;
        let mut a_store = vec![0u8; bytes_for(sectors)];
        let mut b_store = vec![0u8; bytes_for(sectors)];
        let mut a = DirtyBitmap::new(&mut a_store, sectors).unwrap();
        let mut b = DirtyBitmap::new(&mut b_store, sectors).unwrap();
        a.set_bits(10, 300);
        a.set_bits(19_990, 20_000);
        b.set_bits(200, 400);
        b.set_bits(7000, 7001);
        let agreed = Agreed::new(122, 0);
        for use_rle in [true, false] {
            let mut tx = a.xfer(HeaderKind::H100);
            let mut rx = b.xfer(HeaderKind::H100);
            let mut payload = [0u8; 4080];
            let mut frame_buf = [0u8; 4096];
            loop {
                let c = a
                    .send_packet(&mut tx, use_rle, &mut payload)
                    .unwrap()
                    .unwrap();
                let body = if c.command == Command::Bitmap {
                    Body::Bitmap(&payload[..c.len])
                } else {
                    Body::CompressedBitmap(
                        crate::repl::wire::bitmap::CompressedRepr::parse(&payload[..c.len])
                            .unwrap(),
                    )
                };
                let f = Frame::new(c.command, 0, body).unwrap();
                let n = f.emit(&agreed, &mut frame_buf).unwrap();
                let (parsed, _) = Frame::parse(&frame_buf[..n], &agreed).unwrap();
                if b.receive_frame(&mut rx, &parsed).unwrap() {
                    assert!(c.last);
                    break;
                }
            }
        }
        assert_eq!(
            b.runs(0).collect::<Vec<_>>(),
            [(10, 390), (7000, 1), (19_990, 10)]
        );
        assert_eq!(b.count(), 401);
        let ping = Frame::new(Command::Ping, 0, Body::Empty).unwrap();
        let mut rx = b.xfer(HeaderKind::H100);
        assert_eq!(
            b.receive_frame(&mut rx, &ping),
            Err(DataError::Unexpected {
                command: Command::Ping
            })
        );
    }

    proptest::proptest! {
        /// Against a plain `Vec<bool>`: the set/touch and clear/cover rules, the cached count,
        /// searches and runs.
        #[test]
        fn agrees_with_a_bool_model(
            sectors in 1u64..2000,
            ops in proptest::collection::vec((proptest::bool::ANY, 0u64..2100, 1u64..40_000), 0..40),
        ) {
            let mut store = vec![0u8; bytes_for(sectors)];
            let mut bm = DirtyBitmap::new(&mut store, sectors).unwrap();
            let bits = bits_for(sectors) as usize;
            let mut model = vec![false; bits];
            let cap = sectors * 512;
            for (set, sector, len) in ops {
                let r = if set { bm.set_sectors(sector, len) } else { bm.clear_sectors(sector, len) };
                let (start, end) = (sector * 512, sector * 512 + len);
                if end > cap {
                    proptest::prop_assert!(r.is_err());
                    continue;
                }
                let mut changed = 0;
                for (i, m) in model.iter_mut().enumerate() {
                    let (b0, b1) = (i as u64 * 4096, (i as u64 + 1) * 4096);
                    let hit = if set {
                        start < b1 && b0 < end
                    } else {
                        start <= b0 && (end >= b1 || end == cap)
                    };
                    if hit && *m != set {
                        *m = set;
                        changed += 1;
                    }
                }
                proptest::prop_assert_eq!(r, Ok(changed));
            }
            proptest::prop_assert_eq!(bm.count(), model.iter().filter(|&&b| b).count() as u64);
            for from in [0u64, 1, 63, 64, bits as u64 / 2] {
                let next = model.iter().skip(from as usize).position(|&b| b).map(|p| p as u64 + from);
                proptest::prop_assert_eq!(bm.find_next_dirty(from), next);
            }
            let runs: Vec<(u64, u64)> = bm.runs(0).collect();
            let mut expect = vec![];
            let mut i = 0;
            while i < bits {
                if model[i] {
                    let s = i;
                    while i < bits && model[i] {
                        i += 1;
                    }
                    expect.push((s as u64, (i - s) as u64));
                } else {
                    i += 1;
                }
            }
            proptest::prop_assert_eq!(runs, expect);
        }
    }

    #[test]
    fn plain_packet_surplus_bits_are_dropped() {
        let mut s = [0u8; 8];
        let mut bm = DirtyBitmap::new(&mut s, 8 * 3).unwrap();
        let mut rx = bm.xfer(HeaderKind::H80);
        assert_eq!(
            bm.receive_packet(&mut rx, Command::Bitmap, &[0xFF; 8]),
            Ok(true)
        );
        assert_eq!(bm.count(), 3);
        assert_eq!(bm.merge(&[0xF0; 8]), 0);
        assert_eq!(bm.as_bytes()[0], 0x07);
    }
}
