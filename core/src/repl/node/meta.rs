//! What a node keeps on disk besides data, bitmap and activity log: [`MetaState`] (generation
//! UUIDs, DRBD's meta-data flags, the device size).
//!
//! The flags carry DRBD 8.4's `MDF_*` bit values so a dump reads like DRBD's. The start disk
//! state follows from them as DRBD's attach derives it with `fencing dont-care`: not CONSISTENT →
//! Inconsistent; CONSISTENT and WAS_UP_TO_DATE → UpToDate; CONSISTENT alone → Outdated.
//!
//! On disk it is the superblock of [`repl::meta`](crate::repl::meta) (DRBD 8.4's external
//! v08 layout, which `drbdmeta` reads): [`MetaState::from_superblock`] and
//! [`MetaState::store`] convert.

use super::super::conn::{DiskState, Generation};
use super::super::meta::{MdFlags, Superblock};

/// DRBD 8.4's meta-data flag bits (`MDF_*`).
pub mod md_flag {
    use super::MdFlags;

    /// The data is consistent (not in the middle of a resync as target).
    pub const CONSISTENT: u32 = MdFlags::CONSISTENT.bits();
    /// The node was primary: set on disk before the first write as primary, cleared on demotion.
    /// Found set at start, it means the primary crashed (→ crashed-primary).
    pub const PRIMARY_IND: u32 = MdFlags::PRIMARY_IND.bits();
    /// The node was connected.
    pub const CONNECTED_IND: u32 = MdFlags::CONNECTED_IND.bits();
    /// A full sync is due: every bitmap bit is set at start.
    pub const FULL_SYNC: u32 = MdFlags::FULL_SYNC.bits();
    /// The data was UpToDate (not merely consistent) when last changed.
    pub const WAS_UP_TO_DATE: u32 = MdFlags::WAS_UP_TO_DATE.bits();
    /// The peer's data is known to be outdated.
    pub const PEER_OUT_DATED: u32 = MdFlags::PEER_OUT_DATED.bits();
    /// The node was primary when it went down (kept until a handshake used it).
    pub const CRASHED_PRIMARY: u32 = MdFlags::CRASHED_PRIMARY.bits();
    /// The activity log is clean (orderly detach): no apply-al at start.
    pub const AL_CLEAN: u32 = MdFlags::AL_CLEAN.bits();
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

    /// The state a superblock records. A superblock still marked in use (the agent did not
    /// shut down cleanly) never counts as AL-clean, whatever its flags say: the activity log
    /// must be replayed.
    pub fn from_superblock(sb: &Superblock) -> MetaState {
        let mut flags = sb.flags.bits();
        if sb.in_use {
            flags &= !md_flag::AL_CLEAN;
        }
        MetaState {
            generation: sb.generation(),
            flags,
            size_sectors: sb.layout.size_sectors(),
        }
    }

    /// Records this state in `sb` (UUIDs, flags; in use unless AL-clean).
    pub fn store(&self, sb: &mut Superblock) {
        sb.flags = MdFlags(self.flags);
        sb.set_generation(&self.generation);
        sb.in_use = !self.has(md_flag::AL_CLEAN);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_superblock_round_trips_the_state() {
        use crate::repl::meta::Layout;
        let mut m = MetaState::new(1 << 21);
        assert_eq!(m.initial_disk(), DiskState::Inconsistent);
        m.set(md_flag::CONSISTENT | md_flag::WAS_UP_TO_DATE, true);
        assert_eq!(m.initial_disk(), DiskState::UpToDate);
        m.generation.current = 0x1234_5678_9ABC_DEF1;
        m.generation.history = [7, 8];
        m.generation.crashed_primary = true;
        m.set(md_flag::AL_CLEAN, false);
        let layout = Layout::new(m.size_sectors, 8).unwrap();
        let mut sb = Superblock::new(layout, 1237, Some(0));
        m.store(&mut sb);
        let mut block = [0u8; 4096];
        sb.emit(&mut block).unwrap();
        let back = MetaState::from_superblock(&Superblock::parse(&block).unwrap());
        assert_eq!(back.generation, m.generation);
        assert!(back.has(md_flag::CRASHED_PRIMARY));
        assert!(!back.has(md_flag::AL_CLEAN), "in use: the AL is replayed");
        m.set(md_flag::AL_CLEAN, true);
        m.store(&mut sb);
        sb.emit(&mut block).unwrap();
        let clean = MetaState::from_superblock(&Superblock::parse(&block).unwrap());
        assert!(clean.has(md_flag::AL_CLEAN));
        m.set(md_flag::WAS_UP_TO_DATE, false);
        assert_eq!(m.initial_disk(), DiskState::Outdated);
    }
}
