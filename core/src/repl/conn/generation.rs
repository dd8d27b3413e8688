//! Data-generation UUIDs of one volume (replication.md §6.1) and the rules that move them: a new
//! current UUID when a primary runs without its peer, and the rotations at resync start and end
//! (the pv < 110 flow: P_SYNC_UUID, two history slots as 8.4 keeps them).

use super::Entropy;

/// `UUID_JUST_CREATED`: fresh meta data (0 is treated the same by the compare table).
pub const UUID_JUST_CREATED: u64 = 4;
/// `UUID_PRIMARY`: the lowest bit of a UUID, set while the node was primary; comparisons ignore it.
pub const UUID_PRIMARY: u64 = 1;
/// `UUID_NEW_BM_OFFSET`: added to the bitmap UUID when a resync starts (pv < 110).
pub const UUID_NEW_BM_OFFSET: u64 = 1 << 48;

/// A UUID with the primary bit masked, as every comparison sees it.
pub const fn masked(uuid: u64) -> u64 {
    uuid & !UUID_PRIMARY
}

/// One volume's generation identifiers for its single peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Generation {
    /// The current data generation (bit 0: written while primary).
    pub current: u64,
    /// The generation at which this node started recording changes for the peer (0 = none).
    pub bitmap: u64,
    /// Older generations, newest first.
    pub history: [u64; 2],
    /// `MDF_CRASHED_PRIMARY`: the node was primary when it went down.
    pub crashed_primary: bool,
}

impl Default for Generation {
    fn default() -> Self {
        Generation::just_created()
    }
}

impl Generation {
    /// Fresh meta data (`drbdadm create-md`).
    pub const fn just_created() -> Generation {
        Generation {
            current: UUID_JUST_CREATED,
            bitmap: 0,
            history: [0; 2],
            crashed_primary: false,
        }
    }

    fn push_history(&mut self, uuid: u64) {
        self.history = [uuid, self.history[0]];
    }

    fn random(rng: &mut dyn Entropy) -> u64 {
        let mut b = [0u8; 8];
        rng.fill(&mut b);
        u64::from_le_bytes(b)
    }

    /// Starts a new data generation: when a node becomes primary without its peer, or a primary
    /// loses it. The old current UUID becomes the bitmap UUID (from now on changes are recorded
    /// for the peer) unless one is already set, in which case the bitmap keeps tracking since
    /// that older point and the old current goes to history. The new current is random, with
    /// the primary bit as `primary` says.
    pub fn new_current(&mut self, rng: &mut dyn Entropy, primary: bool) {
        let old = self.current;
        if self.bitmap == 0 {
            self.bitmap = old;
        } else {
            self.push_history(old);
        }
        self.current = Self::with_role(Self::random(rng), primary);
    }

    fn with_role(uuid: u64, primary: bool) -> u64 {
        if primary {
            uuid | UUID_PRIMARY
        } else {
            masked(uuid)
        }
    }

    /// Resync start on the source: the bitmap UUID moves on by 2^48 (a random one if there was
    /// none or it was just created) and is returned for P_SYNC_UUID.
    pub fn start_sync_as_source(&mut self, rng: &mut dyn Entropy) -> u64 {
        let uuid = if self.bitmap != 0 && self.bitmap != UUID_JUST_CREATED {
            self.bitmap.wrapping_add(UUID_NEW_BM_OFFSET)
        } else {
            Self::random(rng)
        };
        self.bitmap = uuid;
        uuid
    }

    /// Resync start on the target, from the source's P_SYNC_UUID: the current UUID becomes that
    /// value (with our primary bit), the bitmap UUID is cleared.
    pub fn start_sync_as_target(&mut self, sync_uuid: u64, primary: bool) {
        self.current = Self::with_role(sync_uuid, primary);
        self.bitmap = 0;
    }

    /// Successful resync end on the source: the bitmap UUID goes to history and is cleared.
    pub fn finish_sync_as_source(&mut self) {
        if self.bitmap != 0 {
            self.push_history(self.bitmap);
            self.bitmap = 0;
        }
    }

    /// Successful resync end on the target: adopt the source's current UUID and history; our
    /// old current UUID ends up newest in history.
    pub fn finish_sync_as_target(&mut self, source: &Generation, primary: bool) {
        let own = self.current;
        self.history = source.history;
        if source.bitmap != 0 {
            self.push_history(source.bitmap);
        }
        self.push_history(own);
        self.bitmap = 0;
        self.current = Self::with_role(source.current, primary);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repl::conn::SplitMix64;

    #[test]
    fn new_current_rotates_into_the_bitmap_once() {
        let mut rng = SplitMix64::new(1);
        let mut g = Generation {
            current: 0xAAAA_0000,
            ..Generation::just_created()
        };
        g.new_current(&mut rng, true);
        assert_eq!(g.bitmap, 0xAAAA_0000);
        assert_eq!(g.current & UUID_PRIMARY, 1);
        let second = g.current;
        g.new_current(&mut rng, false);
        assert_eq!(g.bitmap, 0xAAAA_0000, "the bitmap keeps its older start");
        assert_eq!(g.history[0], second);
        assert_eq!(g.current & UUID_PRIMARY, 0);
    }

    #[test]
    fn resync_rotations() {
        let mut rng = SplitMix64::new(2);
        let mut src = Generation {
            current: 0x2000,
            bitmap: 0x1000,
            history: [0x0F00, 0],
            crashed_primary: false,
        };
        let mut dst = Generation {
            current: 0x1000,
            bitmap: 0,
            history: [0x0F00, 0],
            crashed_primary: false,
        };
        let sync = src.start_sync_as_source(&mut rng);
        assert_eq!(sync, 0x1000 + UUID_NEW_BM_OFFSET);
        dst.start_sync_as_target(sync, false);
        assert_eq!((dst.current, dst.bitmap), (sync, 0));
        src.finish_sync_as_source();
        assert_eq!((src.bitmap, src.history), (0, [sync, 0x0F00]));
        dst.finish_sync_as_target(&src, false);
        assert_eq!(dst.current, src.current);
        assert_eq!(dst.bitmap, 0);
        assert_eq!(dst.history, [sync, sync]);
        let mut fresh = Generation::just_created();
        let r = fresh.start_sync_as_source(&mut rng);
        assert_ne!(r, UUID_JUST_CREATED + UUID_NEW_BM_OFFSET);
        assert_eq!(fresh.bitmap, r);
    }
}
