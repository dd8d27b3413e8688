//! The 4 KiB superblock: DRBD 8.4's `meta_data_on_disk` (all integers big-endian) with a small
//! Keelson extension in its reserved tail, and the rules that move its flags.
//!
//! | off | size | field (DRBD's name) |
//! | --- | --- | --- |
//! | 0 | 8 | `la_size_sect`: device size in sectors |
//! | 8 | 32 | `uuid[4]`: current, bitmap, history (newest), history (older) |
//! | 40 | 8 | `device_uuid` |
//! | 48 | 8 | reserved |
//! | 56 | 4 | `flags` ([`MdFlags`]) |
//! | 60 | 4 | `magic`: [`MAGIC_08`] (clean) or [`MAGIC_84_UNCLEAN`] (in use) |
//! | 64 | 4 | `md_size_sect`: the whole meta area |
//! | 68 | 4 | `al_offset`: 8 (signed sectors from the superblock) |
//! | 72 | 4 | `al_nr_extents`: `al-extents` |
//! | 76 | 4 | `bm_offset`: 8 + AL sectors (signed) |
//! | 80 | 4 | `bm_bytes_per_bit`: 4096 |
//! | 84 | 4 | `la_peer_max_bio_size` |
//! | 88 | 4 | `al_stripes` |
//! | 92 | 4 | `al_stripe_size_4k` (both 0 in pre-8.4 superblocks: read as 1 × 8) |
//! | 96 | 4 | Keelson: extension magic `KLSN` (0x4B4C534E) |
//! | 100 | 4 | Keelson: extension version, 1 |
//! | 104 | 4 | Keelson: node id (0xFFFFFFFF: none) |
//! | 108 | 4 | Keelson: CRC32C (Castagnoli) of bytes 0..108 |
//! | 112 | 3984 | reserved, zero |
//!
//! v08 has no node id and no checksum; the extension adds both where DRBD leaves zeros, so
//! drbdmeta ignores it. drbdmeta rewrites the whole block when it changes anything, which drops
//! the extension: a superblock without one parses with no node id and no CRC check.
//!
//! # Flags over a resource's life (DRBD 8.4's rules)
//!
//! - [`Superblock::attach`] when a resource opens its meta data: it reports whether the
//!   activity log must be replayed (the last shutdown was not clean) and whether the node went
//!   down as primary (`MDF_CRASHED_PRIMARY`, or `MDF_PRIMARY_IND` still set), then marks the
//!   superblock in use (magic unclean, `MDF_AL_CLEAN` off). Write it before the first data write.
//! - [`Superblock::record_state`] after every role, disk or connection change.
//! - [`Superblock::shutdown_clean`] after the last write is on disk and the AL is empty; demote
//!   first: a superblock left with `MDF_PRIMARY_IND` counts as a crashed primary next time.

use super::layout::Layout;
use super::SUPERBLOCK_LEN;
use super::{need, MetaError, AL_OFFSET_SECT, BYTES_PER_BIT, MAGIC_08, MAGIC_84_UNCLEAN};
use crate::repl::activity_log::{crc32c, DEFAULT_RING};
use crate::repl::conn::generation::{Generation, UUID_JUST_CREATED};
use crate::repl::conn::state::{DiskState, Role};
use crate::repl::wire::field::Field;

/// Magic of the Keelson extension (`KLSN`).
pub const EXT_MAGIC: u32 = 0x4B4C_534E;
/// The extension version this module writes.
pub const EXT_VERSION: u32 = 1;
/// Byte offset of the extension.
pub const EXT_OFF: usize = 96;
/// Byte offset of the CRC32C; it covers everything before it.
pub const CRC_OFF: usize = 108;
const NO_NODE: u32 = u32::MAX;

/// The superblock's `flags` (`MDF_*`, 8.4 numbering).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct MdFlags(pub u32);

impl MdFlags {
    /// `MDF_CONSISTENT`: the data is consistent (not a resync target midway).
    pub const CONSISTENT: MdFlags = MdFlags(1 << 0);
    /// `MDF_PRIMARY_IND`: the node was (is) primary.
    pub const PRIMARY_IND: MdFlags = MdFlags(1 << 1);
    /// `MDF_CONNECTED_IND`: the node was (is) connected.
    pub const CONNECTED_IND: MdFlags = MdFlags(1 << 2);
    /// `MDF_FULL_SYNC`: setting every bit for a full sync was in progress.
    pub const FULL_SYNC: MdFlags = MdFlags(1 << 3);
    /// `MDF_WAS_UP_TO_DATE`: the data was (is) UpToDate.
    pub const WAS_UP_TO_DATE: MdFlags = MdFlags(1 << 4);
    /// `MDF_PEER_OUT_DATED`: the peer's disk was Outdated or Inconsistent.
    pub const PEER_OUT_DATED: MdFlags = MdFlags(1 << 5);
    /// `MDF_CRASHED_PRIMARY`: the node went down as primary and has not seen its peer since.
    pub const CRASHED_PRIMARY: MdFlags = MdFlags(1 << 6);
    /// `MDF_AL_CLEAN`: the activity log was emptied at shutdown.
    pub const AL_CLEAN: MdFlags = MdFlags(1 << 7);
    /// `MDF_AL_DISABLED`: the activity log is not used.
    pub const AL_DISABLED: MdFlags = MdFlags(1 << 8);

    /// The raw bits.
    pub const fn bits(self) -> u32 {
        self.0
    }
    /// True if every bit of `other` is set.
    pub const fn contains(self, other: MdFlags) -> bool {
        self.0 & other.0 == other.0
    }
    /// Sets or clears the bits of `other`.
    pub fn set(&mut self, other: MdFlags, on: bool) {
        if on {
            self.0 |= other.0;
        } else {
            self.0 &= !other.0;
        }
    }
}

impl core::ops::BitOr for MdFlags {
    type Output = MdFlags;
    fn bitor(self, rhs: MdFlags) -> MdFlags {
        MdFlags(self.0 | rhs.0)
    }
}

/// A zero-copy view of a superblock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SuperblockView<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> SuperblockView<T> {
    /// Wraps `buffer` unchecked: missing bytes read as zero.
    pub const fn new_unchecked(buffer: T) -> Self {
        SuperblockView { buffer }
    }

    /// Wraps `buffer` after [`SuperblockView::check`].
    pub fn new_checked(buffer: T) -> Result<Self, MetaError> {
        let v = Self::new_unchecked(buffer);
        v.check()?;
        Ok(v)
    }

    /// Checks what drbdmeta checks for external v08 meta data (length, magic, 4 KiB per bit,
    /// AL at sector 8, bitmap right after it, a bitmap area that covers the device) and, when
    /// the Keelson extension is there, its version and CRC; returns the layout.
    pub fn check(&self) -> Result<Layout, MetaError> {
        let b = self.buffer.as_ref();
        need("meta data superblock", b.len(), SUPERBLOCK_LEN as u64)?;
        let magic = self.magic();
        if magic != MAGIC_08 && magic != MAGIC_84_UNCLEAN {
            return Err(MetaError::BadMagic { found: magic });
        }
        if self.bm_bytes_per_bit() != BYTES_PER_BIT {
            return Err(MetaError::BadLayout {
                field: "bm-byte-per-bit",
                expected: u64::from(BYTES_PER_BIT),
                found: u64::from(self.bm_bytes_per_bit()),
            });
        }
        let (stripes, size) = self.al_geometry();
        let layout = Layout::with_geometry(
            self.la_size_sect(),
            stripes,
            size,
            Some(self.md_size_sect()),
        )?;
        let fields = [
            ("al_offset", self.al_offset(), AL_OFFSET_SECT),
            ("bm_offset", self.bm_offset(), layout.bm_offset_sect()),
        ];
        for (field, found, expected) in fields {
            if i64::from(found) != i64::from(expected) {
                return Err(MetaError::BadLayout {
                    field,
                    expected: u64::from(expected),
                    // Shown as the 32-bit pattern: a negative offset is internal meta data.
                    found: u64::from(found as u32),
                });
            }
        }
        if self.ext_magic() == EXT_MAGIC {
            if self.ext_version() != EXT_VERSION {
                return Err(MetaError::BadExtension {
                    version: self.ext_version(),
                });
            }
            let computed = crc32c(&b[..CRC_OFF]);
            if computed != self.crc() {
                return Err(MetaError::BadCrc {
                    stored: self.crc(),
                    computed,
                });
            }
        }
        Ok(layout)
    }

    fn u64_at(&self, off: usize) -> u64 {
        u64::read(self.buffer.as_ref(), off)
    }
    fn u32_at(&self, off: usize) -> u32 {
        u32::read(self.buffer.as_ref(), off)
    }

    /// `la_size_sect`.
    pub fn la_size_sect(&self) -> u64 {
        self.u64_at(0)
    }
    /// `uuid[i]` (0 current, 1 bitmap, 2–3 history); 0 for `i > 3`.
    pub fn uuid(&self, i: usize) -> u64 {
        if i < 4 {
            self.u64_at(8 + 8 * i)
        } else {
            0
        }
    }
    /// `device_uuid`.
    pub fn device_uuid(&self) -> u64 {
        self.u64_at(40)
    }
    /// `flags`.
    pub fn flags(&self) -> MdFlags {
        MdFlags(self.u32_at(56))
    }
    /// `magic`.
    pub fn magic(&self) -> u32 {
        self.u32_at(60)
    }
    /// `md_size_sect`.
    pub fn md_size_sect(&self) -> u32 {
        self.u32_at(64)
    }
    /// `al_offset` (signed sectors).
    pub fn al_offset(&self) -> i32 {
        i32::read(self.buffer.as_ref(), 68)
    }
    /// `al_nr_extents`.
    pub fn al_nr_extents(&self) -> u32 {
        self.u32_at(72)
    }
    /// `bm_offset` (signed sectors).
    pub fn bm_offset(&self) -> i32 {
        i32::read(self.buffer.as_ref(), 76)
    }
    /// `bm_bytes_per_bit`.
    pub fn bm_bytes_per_bit(&self) -> u32 {
        self.u32_at(80)
    }
    /// `la_peer_max_bio_size`.
    pub fn la_peer_max_bio_size(&self) -> u32 {
        self.u32_at(84)
    }
    /// `al_stripes` as stored.
    pub fn al_stripes(&self) -> u32 {
        self.u32_at(88)
    }
    /// `al_stripe_size_4k` as stored.
    pub fn al_stripe_size_4k(&self) -> u32 {
        self.u32_at(92)
    }
    /// The AL geometry in force: pre-8.4 superblocks store 0 / 0 for the fixed 1 × 8.
    pub fn al_geometry(&self) -> (u32, u32) {
        match (self.al_stripes(), self.al_stripe_size_4k()) {
            (0, 0) => (1, DEFAULT_RING),
            g => g,
        }
    }
    /// The extension's magic (0 when drbdmeta wrote the block).
    pub fn ext_magic(&self) -> u32 {
        self.u32_at(EXT_OFF)
    }
    /// The extension's version.
    pub fn ext_version(&self) -> u32 {
        self.u32_at(EXT_OFF + 4)
    }
    /// The node id, if the extension is there and names one.
    pub fn node_id(&self) -> Option<u32> {
        let id = self.u32_at(EXT_OFF + 8);
        (self.ext_magic() == EXT_MAGIC && id != NO_NODE).then_some(id)
    }
    /// The stored CRC32C.
    pub fn crc(&self) -> u32 {
        self.u32_at(CRC_OFF)
    }
    /// The wrapped buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }
}

/// The parsed superblock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Superblock {
    /// Device size and where the areas lie.
    pub layout: Layout,
    /// The current data generation (bit 0: written while primary).
    pub current: u64,
    /// The bitmap UUID (0: the bitmap tracks nothing).
    pub bitmap: u64,
    /// Older generations, newest first.
    pub history: [u64; 2],
    /// `device_uuid`: identifies the backing device (informational).
    pub device_uuid: u64,
    /// State flags.
    pub flags: MdFlags,
    /// Magic [`MAGIC_84_UNCLEAN`]: the meta data is in use or was not shut down cleanly.
    pub in_use: bool,
    /// `al-extents` of the log that writes the AL ring.
    pub al_extents: u32,
    /// The largest request the peer last accepted (`la_peer_max_bio_size`, bytes).
    pub peer_max_bio_size: u32,
    /// This node's id (Keelson extension; `None` when drbdmeta wrote the block).
    pub node_id: Option<u32>,
}

/// What [`Superblock::attach`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Attach {
    /// The last shutdown was not clean: replay the AL ring and mark its extents dirty
    /// ("apply-al") before trusting the bitmap.
    pub apply_al: bool,
    /// The node went down as primary (it may hold writes the peer never got; replication.md
    /// §6.3 rule 4).
    pub crashed_primary: bool,
    /// A full sync was being set up: set every bit again.
    pub full_sync: bool,
}

impl Superblock {
    /// Fresh meta data as `drbdmeta create-md` writes it: UUID `JUST_CREATED`, AL clean.
    pub const fn new(layout: Layout, al_extents: u32, node_id: Option<u32>) -> Superblock {
        Superblock {
            layout,
            current: UUID_JUST_CREATED,
            bitmap: 0,
            history: [0; 2],
            device_uuid: 0,
            flags: MdFlags::AL_CLEAN,
            in_use: false,
            al_extents,
            peer_max_bio_size: 0,
            node_id,
        }
    }

    /// Parses and checks a superblock (`buf` may be longer: the rest is ignored).
    pub fn parse(buf: &[u8]) -> Result<Superblock, MetaError> {
        let v = SuperblockView::new_unchecked(buf);
        let layout = v.check()?;
        Ok(Superblock {
            layout,
            current: v.uuid(0),
            bitmap: v.uuid(1),
            history: [v.uuid(2), v.uuid(3)],
            device_uuid: v.device_uuid(),
            flags: v.flags(),
            in_use: v.magic() == MAGIC_84_UNCLEAN,
            al_extents: v.al_nr_extents(),
            peer_max_bio_size: v.la_peer_max_bio_size(),
            node_id: v.node_id(),
        })
    }

    /// Bytes [`Superblock::emit`] writes.
    pub const fn buffer_len(&self) -> usize {
        SUPERBLOCK_LEN
    }

    /// Writes the 4 KiB block, extension and CRC included, at the start of `buf`.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, MetaError> {
        need("superblock buffer", buf.len(), SUPERBLOCK_LEN as u64)?;
        let out = &mut buf[..SUPERBLOCK_LEN];
        out.fill(0);
        let l = &self.layout;
        self.layout.size_sectors().write(out, 0);
        for (i, u) in [self.current, self.bitmap, self.history[0], self.history[1]]
            .into_iter()
            .enumerate()
        {
            u.write(out, 8 + 8 * i);
        }
        self.device_uuid.write(out, 40);
        self.flags.0.write(out, 56);
        let magic = if self.in_use {
            MAGIC_84_UNCLEAN
        } else {
            MAGIC_08
        };
        magic.write(out, 60);
        l.md_size_sect().write(out, 64);
        AL_OFFSET_SECT.write(out, 68);
        self.al_extents.write(out, 72);
        l.bm_offset_sect().write(out, 76);
        BYTES_PER_BIT.write(out, 80);
        self.peer_max_bio_size.write(out, 84);
        l.al_stripes().write(out, 88);
        l.al_stripe_size_4k().write(out, 92);
        EXT_MAGIC.write(out, EXT_OFF);
        EXT_VERSION.write(out, EXT_OFF + 4);
        self.node_id.unwrap_or(NO_NODE).write(out, EXT_OFF + 8);
        crc32c(&out[..CRC_OFF]).write(out, CRC_OFF);
        Ok(SUPERBLOCK_LEN)
    }

    /// Clean: the magic says clean and `MDF_AL_CLEAN` is set (what drbdmeta requires before it
    /// dumps the meta data).
    pub const fn is_clean(&self) -> bool {
        !self.in_use && self.flags.contains(MdFlags::AL_CLEAN)
    }

    /// Opens the meta data for use; see the module docs. A superblock still marked primary
    /// means the node went down as primary, as DRBD's attach concludes.
    pub fn attach(&mut self) -> Attach {
        let crashed = self.flags.contains(MdFlags::CRASHED_PRIMARY)
            || self.flags.contains(MdFlags::PRIMARY_IND);
        let found = Attach {
            apply_al: !self.is_clean(),
            crashed_primary: crashed,
            full_sync: self.flags.contains(MdFlags::FULL_SYNC),
        };
        self.flags.set(MdFlags::CRASHED_PRIMARY, crashed);
        self.flags.set(MdFlags::AL_CLEAN, false);
        self.in_use = true;
        found
    }

    /// Records the current states as DRBD's state-change hook does: primary, connected, the
    /// local disk's consistency (left alone while the disk is below Inconsistent, e.g. Failed)
    /// and whether the peer is known Outdated or Inconsistent. The superblock stays in use.
    pub fn record_state(
        &mut self,
        role: Role,
        disk: DiskState,
        peer_disk: DiskState,
        connected: bool,
    ) {
        let f = &mut self.flags;
        f.set(MdFlags::PRIMARY_IND, role == Role::Primary);
        f.set(MdFlags::CONNECTED_IND, connected);
        if disk >= DiskState::Inconsistent {
            f.set(MdFlags::CONSISTENT, disk > DiskState::Inconsistent);
            f.set(MdFlags::WAS_UP_TO_DATE, disk == DiskState::UpToDate);
        }
        f.set(
            MdFlags::PEER_OUT_DATED,
            (DiskState::Inconsistent..=DiskState::Outdated).contains(&peer_disk),
        );
        f.set(MdFlags::AL_CLEAN, false);
        self.in_use = true;
    }

    /// Sets or clears `MDF_CRASHED_PRIMARY` (cleared once the peer has been seen again).
    pub fn set_crashed_primary(&mut self, crashed: bool) {
        self.flags.set(MdFlags::CRASHED_PRIMARY, crashed);
    }

    /// Marks a clean shutdown: magic clean, `MDF_AL_CLEAN` set.
    pub fn shutdown_clean(&mut self) {
        self.in_use = false;
        self.flags.set(MdFlags::AL_CLEAN, true);
    }

    /// The disk state DRBD assumes when it attaches this meta data (what `drbdmeta dstate`
    /// prints): Inconsistent unless consistent; Outdated unless it was UpToDate; UpToDate only
    /// if the peer was known Outdated, else Consistent (the peer decides).
    pub const fn disk_state_at_attach(&self) -> DiskState {
        let f = self.flags;
        if !f.contains(MdFlags::CONSISTENT) {
            DiskState::Inconsistent
        } else if !f.contains(MdFlags::WAS_UP_TO_DATE) {
            DiskState::Outdated
        } else if f.contains(MdFlags::PEER_OUT_DATED) {
            DiskState::UpToDate
        } else {
            DiskState::Consistent
        }
    }

    /// The peer's disk state as far as this meta data knows.
    pub const fn peer_disk_at_attach(&self) -> DiskState {
        if self.flags.contains(MdFlags::PEER_OUT_DATED) {
            DiskState::Outdated
        } else {
            DiskState::DUnknown
        }
    }

    /// The generation UUIDs (with the crashed-primary flag).
    pub const fn generation(&self) -> Generation {
        Generation {
            current: self.current,
            bitmap: self.bitmap,
            history: self.history,
            crashed_primary: self.flags.contains(MdFlags::CRASHED_PRIMARY),
        }
    }

    /// Stores generation UUIDs (and the crashed-primary flag).
    pub fn set_generation(&mut self, g: &Generation) {
        self.current = g.current;
        self.bitmap = g.bitmap;
        self.history = g.history;
        self.set_crashed_primary(g.crashed_primary);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first 96 bytes `drbdmeta --force - v08 FILE flex-external create-md` wrote on a
    /// 1 MiB file (drbd-utils 9.22); the rest of the 4 KiB block is zero.
    const DRBDMETA_CREATE_MD: [u8; 96] = [
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, // la_size_sect 0, current 4
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // bitmap, history[0]
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // history[1], device uuid
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x80, 0x83, 0x74, 0x02,
        0x6B, // flags AL_CLEAN, magic
        0, 0, 0x08, 0, 0, 0, 0, 0x08, 0, 0, 0x01, 0x01, 0, 0, 0,
        0x48, // md 2048, al 8, 257, bm 72
        0, 0, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0, 0, 0, 0x08, // 4096/bit, bio 0, 1 × 8
    ];

    fn block(prefix: &[u8]) -> [u8; 4096] {
        let mut b = [0u8; 4096];
        b[..prefix.len()].copy_from_slice(prefix);
        b
    }

    #[test]
    fn reads_what_drbdmeta_wrote() {
        let sb = Superblock::parse(&block(&DRBDMETA_CREATE_MD)).unwrap();
        let layout = Layout::with_geometry(0, 1, 8, Some(2048)).unwrap();
        assert_eq!(sb, Superblock::new(layout, 257, None));
        assert!(sb.is_clean());
        assert_eq!(sb.layout.bitmap_offset(), 36864);
        // Ours differs only by the extension after byte 96.
        let mut out = [0xEEu8; 4100];
        assert_eq!(sb.emit(&mut out), Ok(4096));
        assert_eq!(&out[..96], &DRBDMETA_CREATE_MD[..]);
        assert_eq!(
            &out[96..112],
            &[
                0x4B, 0x4C, 0x53, 0x4E, 0, 0, 0, 1, 0xFF, 0xFF, 0xFF, 0xFF,
                // CRC32C of bytes 0..108
                out[108], out[109], out[110], out[111]
            ]
        );
        assert_eq!(
            u32::from_be_bytes([out[108], out[109], out[110], out[111]]),
            crc32c(&out[..108])
        );
        assert!(out[112..4096].iter().all(|&b| b == 0));
        assert_eq!(out[4096], 0xEE);
        assert_eq!(Superblock::parse(&out), Ok(sb));
    }

    #[test]
    fn every_field_round_trips() {
        let mut sb = Superblock::new(Layout::new(2 << 20, 16).unwrap(), 1237, Some(3));
        sb.current = 0x1111_2222_3333_4445;
        sb.bitmap = 0xAAAA;
        sb.history = [0xBBBB, 0xCCCC];
        sb.device_uuid = 0xDEAD_BEEF_0000_0001;
        sb.flags = MdFlags::CONSISTENT | MdFlags::WAS_UP_TO_DATE | MdFlags::AL_CLEAN;
        sb.peer_max_bio_size = 1 << 20;
        let mut out = [0u8; 4096];
        sb.emit(&mut out).unwrap();
        let v = SuperblockView::new_checked(&out[..]).unwrap();
        assert_eq!((v.uuid(0), v.uuid(3), v.uuid(4)), (sb.current, 0xCCCC, 0));
        assert_eq!(
            (v.al_offset(), v.bm_offset(), v.md_size_sect()),
            (8, 8 + 128, 136 + 64)
        );
        assert_eq!(
            (v.al_stripes(), v.al_stripe_size_4k(), v.al_nr_extents()),
            (1, 16, 1237)
        );
        assert_eq!((v.node_id(), v.magic()), (Some(3), MAGIC_08));
        assert_eq!(Superblock::parse(&out), Ok(sb));
        sb.in_use = true;
        sb.node_id = None;
        sb.emit(&mut out).unwrap();
        assert_eq!(&out[60..64], &MAGIC_84_UNCLEAN.to_be_bytes());
        assert_eq!(Superblock::parse(&out), Ok(sb));
    }

    #[test]
    fn refusals_name_the_field() {
        let good = block(&DRBDMETA_CREATE_MD);
        let with = |off: usize, bytes: &[u8]| {
            let mut b = good;
            b[off..off + bytes.len()].copy_from_slice(bytes);
            Superblock::parse(&b)
        };
        assert_eq!(
            Superblock::parse(&good[..4095]),
            Err(MetaError::Truncated {
                what: "meta data superblock",
                need: 4096,
                have: 4095
            })
        );
        assert_eq!(
            with(60, &0x8374_026Du32.to_be_bytes()),
            Err(MetaError::BadMagic { found: 0x8374_026D })
        );
        assert_eq!(
            with(80, &512u32.to_be_bytes()),
            Err(MetaError::BadLayout {
                field: "bm-byte-per-bit",
                expected: 4096,
                found: 512
            })
        );
        // Internal meta data (negative offsets) is not ours.
        assert_eq!(
            with(68, &(-64i32).to_be_bytes()),
            Err(MetaError::BadLayout {
                field: "al_offset",
                expected: 8,
                found: 0xFFFF_FFC0
            })
        );
        assert_eq!(
            with(76, &80u32.to_be_bytes()),
            Err(MetaError::BadLayout {
                field: "bm_offset",
                expected: 72,
                found: 80
            })
        );
        // 2048 sectors leave 1976 for the bitmap: 1976·512·8 bits of 8 sectors.
        let fits: u64 = 1976 * 512 * 8 * 8;
        assert!(with(0, &fits.to_be_bytes()).is_ok());
        assert_eq!(
            with(0, &(fits + 1).to_be_bytes()),
            Err(MetaError::SizeMismatch {
                size_sectors: fits + 1,
                fits_sectors: fits
            })
        );
        // Pre-8.4: no AL geometry stored means 1 × 8.
        assert_eq!(with(88, &[0; 8]).unwrap().layout.ring_len(), 8);
        // With the extension, any flipped bit before the CRC is caught, and unknown versions are refused.
        let mut ours = [0u8; 4096];
        Superblock::parse(&good).unwrap().emit(&mut ours).unwrap();
        let mut torn = ours;
        torn[15] ^= 1;
        assert!(matches!(
            Superblock::parse(&torn),
            Err(MetaError::BadCrc { .. })
        ));
        let mut v2 = ours;
        v2[103] = 2;
        assert_eq!(
            Superblock::parse(&v2),
            Err(MetaError::BadExtension { version: 2 })
        );
        let mut reserved = ours;
        reserved[4000] = 1;
        assert!(
            Superblock::parse(&reserved).is_ok(),
            "the reserved tail is not covered"
        );
        assert!(matches!(
            Superblock::parse(&good).unwrap().emit(&mut [0u8; 4095]),
            Err(MetaError::Truncated { .. })
        ));
    }

    #[test]
    fn shutdown_and_attach() {
        let mut sb = Superblock::new(Layout::new(2048, 8).unwrap(), 1237, Some(0));
        // Fresh: clean, nothing to replay, not a crashed primary.
        let a = sb.attach();
        assert_eq!(
            a,
            Attach {
                apply_al: false,
                crashed_primary: false,
                full_sync: false
            }
        );
        assert!(sb.in_use && !sb.is_clean());
        sb.record_state(
            Role::Primary,
            DiskState::UpToDate,
            DiskState::Outdated,
            false,
        );
        assert_eq!(
            sb.flags,
            MdFlags::PRIMARY_IND
                | MdFlags::CONSISTENT
                | MdFlags::WAS_UP_TO_DATE
                | MdFlags::PEER_OUT_DATED
        );
        assert_eq!(sb.disk_state_at_attach(), DiskState::UpToDate);
        // Power loss while primary: the next attach replays the AL and counts a crashed primary.
        let mut after_crash = sb;
        let a = after_crash.attach();
        assert_eq!(
            a,
            Attach {
                apply_al: true,
                crashed_primary: true,
                full_sync: false
            }
        );
        assert!(after_crash.flags.contains(MdFlags::CRASHED_PRIMARY));
        assert!(after_crash.generation().crashed_primary);
        // Demote, shut down cleanly: nothing to replay, no crash.
        sb.record_state(
            Role::Secondary,
            DiskState::UpToDate,
            DiskState::UpToDate,
            true,
        );
        sb.shutdown_clean();
        assert!(sb.is_clean());
        assert_eq!(sb.disk_state_at_attach(), DiskState::Consistent);
        assert_eq!(sb.peer_disk_at_attach(), DiskState::DUnknown);
        let a = sb.attach();
        assert_eq!(
            a,
            Attach {
                apply_al: false,
                crashed_primary: false,
                full_sync: false
            }
        );
        // A failed disk leaves the consistency bits alone; Inconsistent clears them.
        sb.record_state(
            Role::Secondary,
            DiskState::Failed,
            DiskState::DUnknown,
            false,
        );
        assert!(sb.flags.contains(MdFlags::WAS_UP_TO_DATE));
        sb.record_state(
            Role::Secondary,
            DiskState::Inconsistent,
            DiskState::UpToDate,
            true,
        );
        assert_eq!(sb.disk_state_at_attach(), DiskState::Inconsistent);
        sb.flags.set(MdFlags::FULL_SYNC, true);
        assert!(sb.attach().full_sync);
        // Generations round-trip through the superblock.
        let g = Generation {
            current: 9,
            bitmap: 7,
            history: [5, 3],
            crashed_primary: false,
        };
        sb.set_generation(&g);
        assert_eq!(sb.generation(), g);
        assert!(!sb.flags.contains(MdFlags::CRASHED_PRIMARY));
    }
}
