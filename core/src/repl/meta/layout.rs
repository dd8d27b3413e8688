//! Where the superblock, the activity-log ring and the bitmap lie in a meta area, for a device
//! of a given size, and the bitmap written back as whole 4 KiB blocks.
//!
//! The geometry is DRBD's external v08 layout (drbdmeta's `is_valid_md` for external meta
//! data): the AL starts 8 sectors after the superblock, the bitmap right after the AL. The
//! bitmap area is sized for the device (flex-external) unless a larger `md_size_sect` is asked
//! for, e.g. DRBD's fixed 128 MiB slot of indexed external meta data ([`Layout::fixed`]), and
//! never below [`MIN_MD_SECTORS`] (68 KiB), so drbdmeta reads any of them.
//!
//! The bitmap is written in 4 KiB blocks, the unit DRBD does its meta-data I/O in: one block
//! holds 32768 bits, i.e. 128 MiB of device. The bytes are the [`DirtyBitmap`] storage as it is
//! (little-endian 64-bit words), so a block is a plain copy; bytes past the device's last word
//! are zero.
//!
//! [`DirtyBitmap`]: crate::repl::bitmap::DirtyBitmap

use core::ops::Range;

use super::{need, MetaError, AL_OFFSET_SECT};
use crate::repl::activity_log::{DEFAULT_RING, EXTENT_SHIFT, RECORD_SIZE};
use crate::repl::bitmap::{bits_for, bytes_for, BLOCK_SHIFT, SECTORS_PER_BIT};

/// Bytes of one bitmap block (the unit the bitmap is written in).
pub const BITMAP_BLOCK: usize = 4096;
/// `md_size_sect` of DRBD's indexed external meta data (`meta-disk DEV[IDX]`): 128 MiB a slot.
pub const FIXED_MD_SECTORS: u32 = 128 << 11;
/// The smallest area [`Layout::new`] lays out: 68 KiB, below which drbdmeta refuses a meta
/// device ("That's not enough", its `SO_MUCH`).
pub const MIN_MD_SECTORS: u32 = 136;

const BITS_PER_BLOCK: u64 = BITMAP_BLOCK as u64 * 8;
const BITS_PER_EXTENT: u64 = 1 << (EXTENT_SHIFT - BLOCK_SHIFT);
const SECTORS_PER_4K: u64 = 8;

/// The geometry of one meta area.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Layout {
    size_sectors: u64,
    al_stripes: u32,
    al_stripe_size_4k: u32,
    md_size_sect: u32,
}

/// What [`Layout::emit_bitmap_range`] wrote into the caller's buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct BitmapWrite {
    /// Byte offset in the meta area to write the buffer's first `len` bytes at.
    pub offset: u64,
    /// Bytes written into the buffer (a multiple of 4096).
    pub len: usize,
    /// The bitmap blocks they are.
    pub blocks: Range<u64>,
}

/// Bytes of bitmap area a device needs: whole 64-bit words, rounded up to whole blocks
/// (drbdmeta's `bm_bytes`).
fn bitmap_area_for(size_sectors: u64) -> u64 {
    (bytes_for(size_sectors) as u64).div_ceil(BITMAP_BLOCK as u64) * BITMAP_BLOCK as u64
}

impl Layout {
    /// A flex-external area for a device of `size_sectors` with one AL stripe of `ring_len`
    /// records ([`DEFAULT_RING`], 8, is DRBD's 32 KiB), as large as it must be (at least
    /// [`MIN_MD_SECTORS`]).
    pub fn new(size_sectors: u64, ring_len: u32) -> Result<Layout, MetaError> {
        Layout::with_geometry(size_sectors, 1, ring_len, None)
    }

    /// DRBD's indexed external slot: the default AL and a fixed 128 MiB area (which bounds the
    /// device at a little under 4 TiB).
    pub fn fixed(size_sectors: u64) -> Result<Layout, MetaError> {
        Layout::with_geometry(size_sectors, 1, DEFAULT_RING, Some(FIXED_MD_SECTORS))
    }

    /// Any geometry: `al_stripes · al_stripe_size_4k` AL records, and an area of `md_size_sect`
    /// sectors (when `None`, the least the device needs but at least [`MIN_MD_SECTORS`]; a larger
    /// one leaves room to grow).
    pub fn with_geometry(
        size_sectors: u64,
        al_stripes: u32,
        al_stripe_size_4k: u32,
        md_size_sect: Option<u32>,
    ) -> Result<Layout, MetaError> {
        let records = u64::from(al_stripes) * u64::from(al_stripe_size_4k);
        if records == 0 {
            return Err(MetaError::BadLayout {
                field: "al-stripes * al-stripe-size-4k",
                expected: 1,
                found: 0,
            });
        }
        // bm_offset is a signed 32-bit sector count in the superblock.
        let bm_offset = records
            .saturating_mul(SECTORS_PER_4K)
            .saturating_add(u64::from(AL_OFFSET_SECT));
        if bm_offset > i32::MAX as u64 {
            return Err(MetaError::BadLayout {
                field: "al-stripes * al-stripe-size-4k",
                expected: (i32::MAX as u64 - u64::from(AL_OFFSET_SECT)) / SECTORS_PER_4K,
                found: records,
            });
        }
        let least = bm_offset + bitmap_area_for(size_sectors) / 512;
        let md = match md_size_sect {
            None => least.max(u64::from(MIN_MD_SECTORS)),
            Some(m) if u64::from(m) >= least => u64::from(m),
            Some(m) => {
                return Err(MetaError::SizeMismatch {
                    size_sectors,
                    fits_sectors: covered(u64::from(m).saturating_sub(bm_offset) * 512),
                })
            }
        };
        let md_size_sect = u32::try_from(md).map_err(|_| MetaError::TooLarge { size_sectors })?;
        Ok(Layout {
            size_sectors,
            al_stripes,
            al_stripe_size_4k,
            md_size_sect,
        })
    }

    /// The device size in sectors (the superblock's `la_size_sect`).
    pub const fn size_sectors(&self) -> u64 {
        self.size_sectors
    }
    /// AL stripes.
    pub const fn al_stripes(&self) -> u32 {
        self.al_stripes
    }
    /// AL records per stripe.
    pub const fn al_stripe_size_4k(&self) -> u32 {
        self.al_stripe_size_4k
    }
    /// The whole area in sectors.
    pub const fn md_size_sect(&self) -> u32 {
        self.md_size_sect
    }
    /// The whole area in bytes: the size of a meta file.
    pub const fn total_len(&self) -> u64 {
        self.md_size_sect as u64 * 512
    }

    /// Records in the AL ring (the `ring_len` [`super::super::activity_log`] takes).
    pub const fn ring_len(&self) -> u32 {
        self.al_stripes * self.al_stripe_size_4k
    }
    /// Byte offset of the AL ring.
    pub const fn al_offset(&self) -> u64 {
        AL_OFFSET_SECT as u64 * 512
    }
    /// Bytes of the AL ring.
    pub const fn al_len(&self) -> u64 {
        self.ring_len() as u64 * RECORD_SIZE as u64
    }
    /// Byte offset of AL record `ring_index` (the [`AlTransaction::offset`] plus
    /// [`Layout::al_offset`]), or `None` past the ring.
    ///
    /// [`AlTransaction::offset`]: crate::repl::activity_log::AlTransaction::offset
    pub fn al_record_offset(&self, ring_index: u32) -> Option<u64> {
        (ring_index < self.ring_len())
            .then(|| self.al_offset() + u64::from(ring_index) * RECORD_SIZE as u64)
    }

    /// The superblock's `bm_offset`: sectors from the superblock to the bitmap.
    pub const fn bm_offset_sect(&self) -> u32 {
        AL_OFFSET_SECT + self.ring_len() * SECTORS_PER_4K as u32
    }
    /// Byte offset of the bitmap.
    pub const fn bitmap_offset(&self) -> u64 {
        self.bm_offset_sect() as u64 * 512
    }
    /// Bytes from the bitmap to the end of the area.
    pub const fn bitmap_area_len(&self) -> u64 {
        self.total_len() - self.bitmap_offset()
    }
    /// Bits the device has.
    pub const fn bits(&self) -> u64 {
        bits_for(self.size_sectors)
    }
    /// Bytes of bitmap in use: whole 64-bit words, the length of the [`DirtyBitmap`] storage.
    ///
    /// [`DirtyBitmap`]: crate::repl::bitmap::DirtyBitmap
    pub fn bitmap_len(&self) -> u64 {
        bytes_for(self.size_sectors) as u64
    }
    /// Bitmap blocks in use.
    pub fn bitmap_blocks(&self) -> u64 {
        self.bitmap_len().div_ceil(BITMAP_BLOCK as u64)
    }
    /// The largest device the bitmap area covers, in sectors.
    pub const fn max_size_sectors(&self) -> u64 {
        covered(self.bitmap_area_len())
    }

    /// Byte offset of bitmap block `block`.
    pub const fn block_offset(&self, block: u64) -> u64 {
        self.bitmap_offset() + block * BITMAP_BLOCK as u64
    }

    /// The blocks holding bits `start..end`; `OutOfRange` past the device.
    pub fn blocks_for_bits(&self, start: u64, end: u64) -> Result<Range<u64>, MetaError> {
        if end > self.bits() {
            return Err(MetaError::OutOfRange {
                end_bit: end,
                bits: self.bits(),
            });
        }
        if start >= end {
            return Ok(0..0);
        }
        Ok(start / BITS_PER_BLOCK..(end - 1) / BITS_PER_BLOCK + 1)
    }

    /// The block holding AL extent `extent`'s bits (an extent's 1024 bits never straddle a
    /// block); empty when the extent lies past the device. This is what an evicted extent
    /// ([`AlTransaction::evicted`]) needs written before its AL record.
    ///
    /// [`AlTransaction::evicted`]: crate::repl::activity_log::AlTransaction::evicted
    pub fn blocks_for_extent(&self, extent: u32) -> Range<u64> {
        let start = u64::from(extent) * BITS_PER_EXTENT;
        let end = (start + BITS_PER_EXTENT).min(self.bits());
        self.blocks_for_bits(start.min(end), end).unwrap_or(0..0)
    }

    /// Copies bitmap block `block` from `bitmap` (the in-memory bitmap, at least
    /// [`Layout::bitmap_len`] bytes) into `out[..4096]`, zero past the bitmap's end; returns the
    /// byte offset to write it at.
    pub fn emit_bitmap_block(
        &self,
        bitmap: &[u8],
        block: u64,
        out: &mut [u8],
    ) -> Result<u64, MetaError> {
        let r = self.emit_bitmap_blocks(bitmap, block..block + 1, out)?;
        Ok(r.offset)
    }

    /// Copies the blocks that hold bits `start..end` into `out` (4096 bytes a block) and says
    /// where they go. An empty range writes nothing.
    pub fn emit_bitmap_range(
        &self,
        bitmap: &[u8],
        start: u64,
        end: u64,
        out: &mut [u8],
    ) -> Result<BitmapWrite, MetaError> {
        let blocks = self.blocks_for_bits(start, end)?;
        self.emit_bitmap_blocks(bitmap, blocks, out)
    }

    fn emit_bitmap_blocks(
        &self,
        bitmap: &[u8],
        blocks: Range<u64>,
        out: &mut [u8],
    ) -> Result<BitmapWrite, MetaError> {
        let used = self.bitmap_len();
        need("in-memory bitmap", bitmap.len(), used)?;
        if blocks.end > self.bitmap_blocks() {
            return Err(MetaError::OutOfRange {
                end_bit: blocks.end.saturating_mul(BITS_PER_BLOCK),
                bits: self.bits(),
            });
        }
        let count = blocks.end.saturating_sub(blocks.start);
        let len = count * BITMAP_BLOCK as u64;
        need("bitmap block buffer", out.len(), len)?;
        // `len` fits: it is at most `out.len()`.
        let len = len as usize;
        let from = (blocks.start * BITMAP_BLOCK as u64).min(used) as usize;
        let to = (blocks.end * BITMAP_BLOCK as u64).min(used) as usize;
        let src = bitmap.get(from..to).unwrap_or(&[]);
        let (data, pad) = out[..len].split_at_mut(src.len());
        data.copy_from_slice(src);
        pad.fill(0);
        Ok(BitmapWrite {
            offset: self.block_offset(blocks.start),
            len,
            blocks,
        })
    }

    /// Checks that a meta area of `len` bytes holds this layout.
    pub fn check_area(&self, len: u64) -> Result<(), MetaError> {
        if len < self.total_len() {
            return Err(MetaError::Truncated {
                what: "meta data area",
                need: self.total_len(),
                have: len,
            });
        }
        Ok(())
    }
}

/// Sectors a bitmap area of `bytes` covers.
const fn covered(bytes: u64) -> u64 {
    bytes.saturating_mul(8).saturating_mul(SECTORS_PER_BIT)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repl::bitmap::DirtyBitmap;

    #[test]
    fn drbd_default_geometry() {
        // 1 GiB: 262144 bits = 32 KiB of bitmap = 8 blocks; AL 8 records at sector 8, bitmap
        // at sector 72 (drbdmeta's "al_offset 4096 / bm_offset 36864").
        let l = Layout::new(2 << 20, DEFAULT_RING).unwrap();
        assert_eq!((l.al_offset(), l.al_len()), (4096, 32768));
        assert_eq!((l.bm_offset_sect(), l.bitmap_offset()), (72, 36864));
        assert_eq!(
            (l.bits(), l.bitmap_len(), l.bitmap_blocks()),
            (262144, 32768, 8)
        );
        assert_eq!(l.md_size_sect(), 72 + 64);
        assert_eq!(l.md_size_sect(), MIN_MD_SECTORS);
        assert_eq!(l.total_len(), 36864 + 32768);
        assert_eq!(l.max_size_sectors(), 2 << 20);
        assert_eq!(l.al_record_offset(7), Some(4096 + 7 * 4096));
        assert_eq!(l.al_record_offset(8), None);
        l.check_area(l.total_len()).unwrap();
        assert!(matches!(
            l.check_area(l.total_len() - 1),
            Err(MetaError::Truncated { .. })
        ));
        // A tiny device still gets one whole bitmap block; an empty one none.
        // (drbdmeta wants 68 KiB at least, so small areas are padded to that.)
        let t = Layout::new(9, 8).unwrap();
        assert_eq!((t.bits(), t.bitmap_len(), t.md_size_sect()), (2, 8, 136));
        assert_eq!(t.bitmap_area_len(), 32768);
        assert_eq!(Layout::new(0, 8).unwrap().md_size_sect(), 136);
        assert_eq!(Layout::new(4 << 21, 8).unwrap().md_size_sect(), 72 + 256);
    }

    #[test]
    fn fixed_and_oversized_areas() {
        let f = Layout::fixed(2048).unwrap();
        assert_eq!(f.md_size_sect(), 262_144);
        // 128 MiB less 36 KiB of bitmap: just under 4 TiB.
        assert_eq!(f.max_size_sectors(), (128 * 1024 * 1024 - 36864) * 64);
        assert!(matches!(
            Layout::fixed(f.max_size_sectors() + 8),
            Err(MetaError::SizeMismatch { .. })
        ));
        assert!(matches!(
            Layout::with_geometry(1, 0, 8, None),
            Err(MetaError::BadLayout { .. })
        ));
        assert!(matches!(
            Layout::with_geometry(1, u32::MAX, u32::MAX, None),
            Err(MetaError::BadLayout { .. })
        ));
        assert!(matches!(
            Layout::new(u64::MAX, 8),
            Err(MetaError::TooLarge { .. })
        ));
        let striped = Layout::with_geometry(2048, 4, 2, None).unwrap();
        assert_eq!((striped.ring_len(), striped.bm_offset_sect()), (8, 72));
    }

    #[test]
    fn bitmap_blocks_are_whole_and_zero_padded() {
        // 300 MiB: 76800 bits, 9600 bytes: blocks 0, 1 and a partial 2.
        let size = 300 << 11;
        let l = Layout::new(size, 8).unwrap();
        assert_eq!((l.bitmap_len(), l.bitmap_blocks()), (9600, 3));
        let mut store = [0u8; 9600];
        let mut bm = DirtyBitmap::new(&mut store, size).unwrap();
        bm.set_bits(0, 1);
        bm.set_bits(32768, 32770);
        bm.set_bits(76799, 76800);
        let bytes = bm.as_bytes();
        let mut out = [0xAAu8; 3 * 4096];
        let w = l.emit_bitmap_range(bytes, 1, 32769, &mut out).unwrap();
        assert_eq!(
            w,
            BitmapWrite {
                offset: l.bitmap_offset(),
                len: 8192,
                blocks: 0..2
            }
        );
        assert_eq!((out[0], out[4096], out[4097]), (1, 3, 0));
        assert_eq!(out[8192], 0xAA, "nothing past the two blocks");
        let off = l.emit_bitmap_block(bytes, 2, &mut out).unwrap();
        assert_eq!(off, l.bitmap_offset() + 8192);
        assert_eq!(out[9599 - 8192], 0x80);
        assert!(out[9600 - 8192..4096].iter().all(|&b| b == 0));
        // Extents map to one block; past the device to none.
        assert_eq!(l.blocks_for_extent(0), 0..1);
        assert_eq!(l.blocks_for_extent(32), 1..2);
        assert_eq!(l.blocks_for_extent(74), 2..3);
        assert_eq!(l.blocks_for_extent(75), 0..0);
        assert_eq!(l.blocks_for_bits(5, 5), Ok(0..0));
        assert!(matches!(
            l.blocks_for_bits(0, 76801),
            Err(MetaError::OutOfRange { .. })
        ));
        assert!(matches!(
            l.emit_bitmap_block(bytes, 3, &mut out),
            Err(MetaError::OutOfRange { .. })
        ));
        assert!(matches!(
            l.emit_bitmap_range(bytes, 0, 76800, &mut out[..8191]),
            Err(MetaError::Truncated { .. })
        ));
        assert!(matches!(
            l.emit_bitmap_block(&bytes[..100], 0, &mut out),
            Err(MetaError::Truncated { .. })
        ));
    }
}
