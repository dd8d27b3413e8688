//! What a node keeps on disk besides data, bitmap and activity log: [`MetaState`] (generation
//! UUIDs, DRBD's meta-data flags, the device size) and its fixed 64-byte on-disk record.
//!
//! The flags carry DRBD 8.4's `MDF_*` bit values so a dump reads like DRBD's. The start disk
//! state follows from them as DRBD's attach derives it with `fencing dont-care`: not CONSISTENT →
//! Inconsistent; CONSISTENT and WAS_UP_TO_DATE → UpToDate; CONSISTENT alone → Outdated.
//!
//! # On-disk record (Keelson's own layout, version 1; 64 bytes, big-endian)
//!
//! | off | size | field |
//! | --- | --- | --- |
//! | 0 | 4 | magic `0x4B4C4D44` ("KLMD") |
//! | 4 | 4 | version = 1 |
//! | 8 | 8 | size in sectors |
//! | 16 | 8 | current UUID |
//! | 24 | 8 | bitmap UUID |
//! | 32 | 8 | history UUID 0 |
//! | 40 | 8 | history UUID 1 |
//! | 48 | 4 | flags (`MDF_*`) |
//! | 52 | 8 | reserved (0) |
//! | 60 | 4 | CRC32C of bytes 0–59 |

use super::super::activity_log::crc32c;
use super::super::conn::{DiskState, Generation};

/// DRBD 8.4's meta-data flag bits (`MDF_*`).
pub mod md_flag {
    /// The data is consistent (not in the middle of a resync as target).
    pub const CONSISTENT: u32 = 1 << 0;
    /// The node was primary: set on disk before the first write as primary, cleared on demotion.
    /// Found set at start, it means the primary crashed (→ crashed-primary).
    pub const PRIMARY_IND: u32 = 1 << 1;
    /// The node was connected.
    pub const CONNECTED_IND: u32 = 1 << 2;
    /// A full sync is due: every bitmap bit is set at start.
    pub const FULL_SYNC: u32 = 1 << 3;
    /// The data was UpToDate (not merely consistent) when last changed.
    pub const WAS_UP_TO_DATE: u32 = 1 << 4;
    /// The peer's data is known to be outdated.
    pub const PEER_OUT_DATED: u32 = 1 << 5;
    /// The node was primary when it went down (kept until a handshake used it).
    pub const CRASHED_PRIMARY: u32 = 1 << 6;
    /// The activity log is clean (orderly detach): no apply-al at start.
    pub const AL_CLEAN: u32 = 1 << 7;
}

/// Bytes of the on-disk [`MetaState`] record.
pub const META_LEN: usize = 64;
/// Magic of the on-disk record ("KLMD").
pub const META_MAGIC: u32 = 0x4B4C_4D44;
/// Version of the on-disk record.
pub const META_VERSION: u32 = 1;

/// Why a meta-data record was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum MetaError {
    /// Fewer than [`META_LEN`] bytes.
    Short {
        /// Bytes given.
        have: usize,
    },
    /// Not a Keelson meta-data record.
    BadMagic {
        /// The magic found.
        magic: u32,
    },
    /// A version this code does not read.
    Version {
        /// The version found.
        version: u32,
    },
    /// The checksum does not match (torn or corrupted record).
    Checksum,
}

impl core::fmt::Display for MetaError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            MetaError::Short { have } => {
                write!(f, "meta-data record has {have} bytes, needs {META_LEN}")
            }
            MetaError::BadMagic { magic } => {
                write!(f, "meta-data magic {magic:#010x} is not {META_MAGIC:#010x}")
            }
            MetaError::Version { version } => {
                write!(
                    f,
                    "meta-data record version {version} is not {META_VERSION}"
                )
            }
            MetaError::Checksum => f.write_str("meta-data record checksum mismatch"),
        }
    }
}

/// The persisted per-volume state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct MetaState {
    /// Generation UUIDs; `crashed_primary` mirrors [`md_flag::CRASHED_PRIMARY`].
    pub generation: Generation,
    /// `MDF_*` bits ([`md_flag`]).
    pub flags: u32,
    /// Device size in sectors (512 bytes).
    pub size_sectors: u64,
}

impl MetaState {
    /// Fresh meta data for a device of `size_sectors` (`drbdadm create-md`): just-created UUID,
    /// Inconsistent, clean activity log.
    pub const fn new(size_sectors: u64) -> MetaState {
        MetaState {
            generation: Generation::just_created(),
            flags: md_flag::AL_CLEAN,
            size_sectors,
        }
    }

    /// True if every bit of `flag` is set.
    pub const fn has(&self, flag: u32) -> bool {
        self.flags & flag == flag
    }

    /// Sets or clears `flag`.
    pub fn set(&mut self, flag: u32, on: bool) {
        if on {
            self.flags |= flag;
        } else {
            self.flags &= !flag;
        }
    }

    /// The disk state a node attaches with (DRBD's attach rules, `fencing dont-care`).
    pub const fn initial_disk(&self) -> DiskState {
        if !self.has(md_flag::CONSISTENT) {
            DiskState::Inconsistent
        } else if self.has(md_flag::WAS_UP_TO_DATE) {
            DiskState::UpToDate
        } else {
            DiskState::Outdated
        }
    }

    /// The 64-byte on-disk record.
    pub fn to_bytes(&self) -> [u8; META_LEN] {
        let mut b = [0u8; META_LEN];
        let g = &self.generation;
        let mut flags = self.flags;
        if g.crashed_primary {
            flags |= md_flag::CRASHED_PRIMARY;
        } else {
            flags &= !md_flag::CRASHED_PRIMARY;
        }
        b[0..4].copy_from_slice(&META_MAGIC.to_be_bytes());
        b[4..8].copy_from_slice(&META_VERSION.to_be_bytes());
        b[8..16].copy_from_slice(&self.size_sectors.to_be_bytes());
        b[16..24].copy_from_slice(&g.current.to_be_bytes());
        b[24..32].copy_from_slice(&g.bitmap.to_be_bytes());
        b[32..40].copy_from_slice(&g.history[0].to_be_bytes());
        b[40..48].copy_from_slice(&g.history[1].to_be_bytes());
        b[48..52].copy_from_slice(&flags.to_be_bytes());
        let crc = crc32c(&b[..60]);
        b[60..64].copy_from_slice(&crc.to_be_bytes());
        b
    }

    /// Reads the record [`Self::to_bytes`] wrote.
    pub fn from_bytes(b: &[u8]) -> Result<MetaState, MetaError> {
        let b = b
            .get(..META_LEN)
            .ok_or(MetaError::Short { have: b.len() })?;
        let u32_at = |o: usize| {
            let mut w = [0u8; 4];
            w.copy_from_slice(&b[o..o + 4]);
            u32::from_be_bytes(w)
        };
        let u64_at = |o: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&b[o..o + 8]);
            u64::from_be_bytes(w)
        };
        let magic = u32_at(0);
        if magic != META_MAGIC {
            return Err(MetaError::BadMagic { magic });
        }
        let version = u32_at(4);
        if version != META_VERSION {
            return Err(MetaError::Version { version });
        }
        if crc32c(&b[..60]) != u32_at(60) {
            return Err(MetaError::Checksum);
        }
        let flags = u32_at(48);
        Ok(MetaState {
            generation: Generation {
                current: u64_at(16),
                bitmap: u64_at(24),
                history: [u64_at(32), u64_at(40)],
                crashed_primary: flags & md_flag::CRASHED_PRIMARY != 0,
            },
            flags,
            size_sectors: u64_at(8),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_round_trips_and_rejects_damage() {
        let mut m = MetaState::new(1 << 21);
        assert_eq!(m.initial_disk(), DiskState::Inconsistent);
        m.set(md_flag::CONSISTENT | md_flag::WAS_UP_TO_DATE, true);
        assert_eq!(m.initial_disk(), DiskState::UpToDate);
        m.generation.current = 0x1234_5678_9ABC_DEF1;
        m.generation.history = [7, 8];
        m.generation.crashed_primary = true;
        let b = m.to_bytes();
        let back = MetaState::from_bytes(&b).unwrap();
        assert_eq!(back.generation, m.generation);
        assert!(back.has(md_flag::CRASHED_PRIMARY));
        let mut torn = b;
        torn[20] ^= 1;
        assert_eq!(MetaState::from_bytes(&torn), Err(MetaError::Checksum));
        assert_eq!(
            MetaState::from_bytes(&b[..10]),
            Err(MetaError::Short { have: 10 })
        );
        assert!(matches!(
            MetaState::from_bytes(&[0; 64]),
            Err(MetaError::BadMagic { magic: 0 })
        ));
        m.set(md_flag::WAS_UP_TO_DATE, false);
        assert_eq!(m.initial_disk(), DiskState::Outdated);
    }
}
