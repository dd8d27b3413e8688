//! The meta data a resource persists so that a restart resumes where it stopped: generation
//! UUIDs and state flags, the activity-log ring and the dirty bitmap (replication.md §6.1–6.2).
//!
//! The format is DRBD 8.4's external meta data ("v08", `meta_data_on_disk`), so `drbdmeta`
//! from drbd-utils reads a Keelson meta file as it is (`drbdmeta --force - v08 FILE
//! flex-external dump-md`) and Keelson reads one `drbdmeta create-md` / `restore-md` wrote.
//!
//! - [`layout`]: [`Layout`], where each area lies for a given device size, and the bitmap
//!   written back as whole 4 KiB blocks.
//! - [`superblock`]: the 4 KiB superblock as a zero-copy [`SuperblockView`] with a checked
//!   constructor and the [`Superblock`] `Repr` that parses and emits it, its [`MdFlags`], and the
//!   clean/unclean shutdown rules.
//!
//! # Areas (flex-external: the meta device holds nothing else)
//!
//! | area | byte offset | length |
//! | --- | --- | --- |
//! | superblock | 0 | 4096 |
//! | activity-log ring | 4096 | `al_stripes · al_stripe_size_4k · 4096` (default 8 records, 32 KiB) |
//! | bitmap | 4096 + AL | one bit per 4 KiB of device in little-endian 64-bit words, rounded up to whole 4 KiB blocks |
//!
//! `md_size_sect` in the superblock is the whole area in 512-byte sectors. The AL ring holds
//! the records [`super::activity_log`] writes (record `n` at ring position `n % ring_len`);
//! their layout is Keelson's own, so `drbdmeta apply-al` cannot replay them — Keelson replays
//! its own ring ([`super::activity_log::ActivityLog::recover`]) before it marks the superblock
//! clean, and `drbdmeta` only reads the AL of a superblock that says it is unclean.

pub mod layout;
pub mod superblock;

use core::fmt;

pub use layout::{BitmapWrite, Layout, BITMAP_BLOCK, FIXED_MD_SECTORS, MIN_MD_SECTORS};
pub use superblock::{Attach, MdFlags, Superblock, SuperblockView};

/// Bytes of the superblock (one 4 KiB block; DRBD's `meta_data_on_disk` is padded to it).
pub const SUPERBLOCK_LEN: usize = 4096;
/// `DRBD_MD_MAGIC_08`: v08 meta data, activity log clean.
pub const MAGIC_08: u32 = 0x8374_026B;
/// `DRBD_MD_MAGIC_84_UNCLEAN`: v08 meta data in use (or not shut down cleanly): the activity
/// log must be applied before the bitmap can be trusted.
pub const MAGIC_84_UNCLEAN: u32 = 0x8374_026C;
/// Bytes one bitmap bit covers (`bm_bytes_per_bit`; the only value 8.4 knows).
pub const BYTES_PER_BIT: u32 = 4096;
/// Sector of the AL relative to the superblock in external meta data (`MD_AL_OFFSET_07`).
pub const AL_OFFSET_SECT: u32 = 8;

/// Why meta data was refused. Every variant names the field or area and the values involved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum MetaError {
    /// A buffer shorter than the structure or area it should hold.
    Truncated {
        /// What was being read or written.
        what: &'static str,
        /// Bytes needed.
        need: u64,
        /// Bytes given.
        have: u64,
    },
    /// The superblock's magic (byte 60) is neither v08 clean nor v08 unclean.
    BadMagic {
        /// What was found.
        found: u32,
    },
    /// A geometry field differs from what external v08 meta data must hold.
    BadLayout {
        /// The field (DRBD's name).
        field: &'static str,
        /// The value it must have (or the least it may have).
        expected: u64,
        /// The value found.
        found: u64,
    },
    /// The device is larger than the bitmap area can track.
    SizeMismatch {
        /// Device size in sectors (`la_size_sect`).
        size_sectors: u64,
        /// The most the bitmap area covers, in sectors.
        fits_sectors: u64,
    },
    /// The Keelson extension's CRC32C does not match the superblock (a torn or altered write).
    BadCrc {
        /// The CRC stored at byte 108.
        stored: u32,
        /// The CRC of the bytes read.
        computed: u32,
    },
    /// A Keelson extension of a version this code does not know.
    BadExtension {
        /// The version found at byte 100.
        version: u32,
    },
    /// A device too large for v08 meta data (`md_size_sect` is 32 bits).
    TooLarge {
        /// Device size in sectors.
        size_sectors: u64,
    },
    /// A bitmap range that ends past the device's bits.
    OutOfRange {
        /// End of the range (exclusive), in bits.
        end_bit: u64,
        /// Bits the device has.
        bits: u64,
    },
}

impl fmt::Display for MetaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            MetaError::Truncated { what, need, have } => {
                write!(f, "{what}: need {need} bytes, have {have}")
            }
            MetaError::BadMagic { found } => write!(
                f,
                "meta data superblock: magic {found:#010x} at byte 60 is not DRBD v08 \
                 ({MAGIC_08:#010x} clean or {MAGIC_84_UNCLEAN:#010x} unclean)"
            ),
            MetaError::BadLayout {
                field,
                expected,
                found,
            } => write!(
                f,
                "meta data superblock: {field} is {found}, external v08 meta data needs {expected}"
            ),
            MetaError::SizeMismatch {
                size_sectors,
                fits_sectors,
            } => write!(
                f,
                "meta data superblock: la-size-sect {size_sectors} exceeds the {fits_sectors} \
                 sectors its bitmap area covers"
            ),
            MetaError::BadCrc { stored, computed } => write!(
                f,
                "meta data superblock: CRC32C {computed:#010x} does not match the stored \
                 {stored:#010x} (torn or altered write)"
            ),
            MetaError::BadExtension { version } => write!(
                f,
                "meta data superblock: Keelson extension version {version} is not known (1 is)"
            ),
            MetaError::TooLarge { size_sectors } => write!(
                f,
                "a device of {size_sectors} sectors needs more meta data than v08 can describe"
            ),
            MetaError::OutOfRange { end_bit, bits } => {
                write!(
                    f,
                    "bitmap range ends at bit {end_bit}, the device has {bits}"
                )
            }
        }
    }
}

pub(crate) fn need(what: &'static str, have: usize, need: u64) -> Result<(), MetaError> {
    if (have as u64) < need {
        return Err(MetaError::Truncated {
            what,
            need,
            have: have as u64,
        });
    }
    Ok(())
}
