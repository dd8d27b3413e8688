//! The UUID compare table (replication.md §6.3), rule by rule as 8.4's `drbd_uuid_compare`
//! evaluates it, rule numbers kept: which side has newer data, whether a bitmap or a full sync
//! fixes it, or whether the histories split (split brain) or never met (unrelated data). What
//! is done with the verdict is [`super::sync_handshake`]'s business.

use super::generation::{masked, Generation, UUID_JUST_CREATED, UUID_NEW_BM_OFFSET};
use crate::repl::wire::uuid::{flag, UuidsFields};

/// The peer's UUIDs as P_UUIDS carries them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PeerUuids {
    /// Current UUID.
    pub current: u64,
    /// Bitmap UUID.
    pub bitmap: u64,
    /// History UUIDs.
    pub history: [u64; 2],
    /// Set bits in the peer's bitmap (its changes since the bitmap UUID).
    pub dirty_bits: u64,
    /// `UUID_FLAG_*` bits.
    pub flags: u64,
}

impl From<UuidsFields> for PeerUuids {
    fn from(u: UuidsFields) -> Self {
        PeerUuids {
            current: u.current,
            bitmap: u.bitmap,
            history: [u.history0, u.history1],
            dirty_bits: u.dirty_bits,
            flags: u.uuid_flags,
        }
    }
}

/// The compare table's answer (8.4's `hg`; the number is [`Verdict::hg`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Verdict {
    /// 2: become sync source, full sync.
    SourceFull,
    /// 1: become sync source, bitmap-based.
    Source,
    /// 0: no resync.
    NoSync,
    /// −1: become sync target, bitmap-based.
    Target,
    /// −2: become sync target, full sync.
    TargetFull,
    /// 100: both changed since a common bitmap UUID; the after-sb policies may resolve it.
    SplitBrainAutoRecover,
    /// −100: only a history UUID is shared; only always-asbp or discard-my-data resolve it.
    SplitBrainDisconnect,
    /// −1000: no common ancestor.
    UnrelatedData,
    /// −1091 / −1096: fixing the UUIDs needs this protocol version on both sides.
    RequiresProtocol(u32),
}

impl Verdict {
    /// 8.4's number for it.
    pub const fn hg(self) -> i32 {
        match self {
            Verdict::SourceFull => 2,
            Verdict::Source => 1,
            Verdict::NoSync => 0,
            Verdict::Target => -1,
            Verdict::TargetFull => -2,
            Verdict::SplitBrainAutoRecover => 100,
            Verdict::SplitBrainDisconnect => -100,
            Verdict::UnrelatedData => -1000,
            Verdict::RequiresProtocol(pv) => (-1000i32).saturating_sub(pv as i32),
        }
    }
}

/// Which UUIDs a fix-up rule repaired (a missed "resync finished" or a lost P_SYNC_UUID).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Fixup {
    /// Our UUIDs were corrected (rules 34, 71): persist them.
    Own,
    /// Our copy of the peer's UUIDs was corrected (rules 35, 51).
    Peer,
}

/// The table's result: verdict, the rule that decided, and any fix-up it made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Compared {
    /// The answer.
    pub verdict: Verdict,
    /// 8.4's rule number (10 … 100; 1000 for "unrelated").
    pub rule: u16,
    /// A repair made to `own` or `peer`.
    pub fixup: Option<Fixup>,
}

fn c(verdict: Verdict, rule: u16) -> Compared {
    Compared {
        verdict,
        rule,
        fixup: None,
    }
}

/// The compare table (8.4 `drbd_uuid_compare`), top to bottom. `resolve_conflicts` breaks the
/// tie when both were crashed primaries; `pv` gates the fix-ups. Fix-ups edit `own` or `peer`.
pub fn compare(
    own: &mut Generation,
    peer: &mut PeerUuids,
    pv: u32,
    resolve_conflicts: bool,
) -> Compared {
    use Verdict::*;
    let this = masked(own.current);
    let that = masked(peer.current);

    if this == UUID_JUST_CREATED && that == UUID_JUST_CREATED {
        return c(NoSync, 10);
    }
    if (this == UUID_JUST_CREATED || this == 0) && that != UUID_JUST_CREATED {
        return c(TargetFull, 20);
    }
    if this != UUID_JUST_CREATED && (that == UUID_JUST_CREATED || that == 0) {
        return c(SourceFull, 30);
    }

    if this == that {
        if peer.bitmap == 0 && own.bitmap != 0 {
            if pv < 91 {
                return c(RequiresProtocol(91), 34);
            }
            // We were source and missed "resync finished" if the peer's history shows our
            // bitmap UUID; then move it to history as the finish would have.
            if masked(own.bitmap) == masked(peer.history[0])
                && masked(own.history[0]) == masked(peer.history[1])
            {
                own.history = [own.bitmap, own.history[0]];
                own.bitmap = 0;
                return Compared {
                    verdict: Source,
                    rule: 34,
                    fixup: Some(Fixup::Own),
                };
            }
            return c(Source, 36);
        }
        if own.bitmap == 0 && peer.bitmap != 0 {
            if pv < 91 {
                return c(RequiresProtocol(91), 35);
            }
            if masked(own.history[0]) == masked(peer.bitmap)
                && masked(own.history[1]) == masked(peer.history[0])
            {
                peer.history = [peer.bitmap, peer.history[0]];
                peer.bitmap = 0;
                return Compared {
                    verdict: Target,
                    rule: 35,
                    fixup: Some(Fixup::Peer),
                };
            }
            return c(Target, 37);
        }
        // Common power failure: whoever was primary when it went down may hold writes the
        // other never saw.
        let rct = u8::from(own.crashed_primary)
            + if peer.flags & flag::CRASHED_PRIMARY != 0 {
                2
            } else {
                0
            };
        return c(
            match rct {
                0 => NoSync,
                1 => Source,
                2 => Target,
                _ if resolve_conflicts => Target,
                _ => Source,
            },
            40,
        );
    }

    if this == masked(peer.bitmap) {
        return c(Target, 50);
    }

    let peer_h0 = masked(peer.history[0]);
    if this == peer_h0 {
        let lost_sync_uuid = if pv < 96 {
            masked(own.history[0]) == masked(peer.history[1])
        } else {
            peer_h0.wrapping_add(UUID_NEW_BM_OFFSET) == masked(peer.bitmap)
        };
        if lost_sync_uuid {
            if pv < 91 {
                return c(RequiresProtocol(91), 51);
            }
            // The peer started a resync as source but its P_SYNC_UUID never arrived: undo that.
            peer.bitmap = peer.history[0];
            peer.history[0] = peer.history[1];
            return Compared {
                verdict: Target,
                rule: 51,
                fixup: Some(Fixup::Peer),
            };
        }
    }

    if peer.history.iter().any(|&h| masked(h) == this) {
        return c(TargetFull, 60);
    }

    if masked(own.bitmap) == that {
        return c(Source, 70);
    }

    let own_h0 = masked(own.history[0]);
    if own_h0 == that {
        let lost_sync_uuid = if pv < 96 {
            masked(own.history[1]) == masked(peer.history[0])
        } else {
            own_h0.wrapping_add(UUID_NEW_BM_OFFSET) == masked(own.bitmap)
        };
        if lost_sync_uuid {
            if pv < 91 {
                return c(RequiresProtocol(91), 71);
            }
            own.bitmap = own.history[0];
            own.history[0] = own.history[1];
            return Compared {
                verdict: Source,
                rule: 71,
                fixup: Some(Fixup::Own),
            };
        }
    }

    if own.history.iter().any(|&h| masked(h) == that) {
        return c(SourceFull, 80);
    }

    let own_bm = masked(own.bitmap);
    if own_bm == masked(peer.bitmap) && own_bm != 0 {
        return c(SplitBrainAutoRecover, 90);
    }

    // Empty history slots (0) are no common ancestor: §6.3 says non-zero, as DRBD 9 checks.
    // (8.4's loop compares them too, which turns unrelated fresh-ish nodes into split brain.)
    if own
        .history
        .iter()
        .any(|&a| masked(a) != 0 && peer.history.iter().any(|&b| masked(a) == masked(b)))
    {
        return c(SplitBrainDisconnect, 100);
    }

    c(UnrelatedData, 1000)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// Our generation UUIDs, for this module's and the sync handshake's tests.
    pub(crate) fn g(current: u64, bitmap: u64, h0: u64, h1: u64) -> Generation {
        Generation {
            current,
            bitmap,
            history: [h0, h1],
            crashed_primary: false,
        }
    }
    /// The peer's UUIDs.
    pub(crate) fn p(current: u64, bitmap: u64, h0: u64, h1: u64) -> PeerUuids {
        PeerUuids {
            current,
            bitmap,
            history: [h0, h1],
            dirty_bits: 0,
            flags: 0,
        }
    }
    fn run(own: Generation, peer: PeerUuids) -> (Verdict, u16) {
        let (mut o, mut q) = (own, peer);
        let r = compare(&mut o, &mut q, 101, false);
        (r.verdict, r.rule)
    }

    #[test]
    fn every_rule_of_the_table() {
        use Verdict::*;
        let jc = UUID_JUST_CREATED;
        assert_eq!(run(g(jc, 0, 0, 0), p(jc, 0, 0, 0)), (NoSync, 10));
        assert_eq!(run(g(jc, 0, 0, 0), p(0xA0, 0, 0, 0)), (TargetFull, 20));
        assert_eq!(run(g(0, 0, 0, 0), p(0xA0, 0, 0, 0)), (TargetFull, 20));
        assert_eq!(run(g(0xA0, 0, 0, 0), p(jc, 0, 0, 0)), (SourceFull, 30));
        // Same generation; the primary bit is ignored.
        assert_eq!(run(g(0xA1, 0, 0, 0), p(0xA0, 0, 0, 0)), (NoSync, 40));
        assert_eq!(run(g(0xA0, 0xB0, 0, 0), p(0xA0, 0, 0, 0)), (Source, 36));
        assert_eq!(run(g(0xA0, 0, 0, 0), p(0xA0, 0xB0, 0, 0)), (Target, 37));
        assert_eq!(run(g(0xA0, 0, 0, 0), p(0xB0, 0xA0, 0, 0)), (Target, 50));
        assert_eq!(run(g(0xA0, 0, 0, 0), p(0xB0, 0, 0xA0, 0)), (TargetFull, 60));
        assert_eq!(run(g(0xA0, 0, 0, 0), p(0xB0, 0, 0, 0xA0)), (TargetFull, 60));
        assert_eq!(run(g(0xB0, 0xA0, 0, 0), p(0xA0, 0, 0, 0)), (Source, 70));
        assert_eq!(run(g(0xB0, 0, 0xA0, 0), p(0xA0, 0, 0, 0)), (SourceFull, 80));
        assert_eq!(
            run(g(0xB0, 0xC0, 0, 0), p(0xD0, 0xC0, 0, 0)),
            (SplitBrainAutoRecover, 90)
        );
        assert_eq!(
            run(g(0xB0, 0xE0, 0xC0, 0), p(0xD0, 0xF0, 0x10, 0xC0)),
            (SplitBrainDisconnect, 100)
        );
        assert_eq!(
            run(g(0xB0, 0, 0, 0), p(0xD0, 0, 0, 0)),
            (UnrelatedData, 1000)
        );
    }

    #[test]
    fn crashed_primaries_and_resolve_conflicts() {
        let mut own = g(0xA0, 0, 0, 0);
        own.crashed_primary = true;
        let mut peer = p(0xA0, 0, 0, 0);
        assert_eq!(
            compare(&mut own, &mut peer, 101, false).verdict,
            Verdict::Source
        );
        peer.flags = flag::CRASHED_PRIMARY;
        assert_eq!(
            compare(&mut own, &mut peer, 101, false).verdict,
            Verdict::Source
        );
        assert_eq!(
            compare(&mut own, &mut peer, 101, true).verdict,
            Verdict::Target
        );
        own.crashed_primary = false;
        assert_eq!(
            compare(&mut own, &mut peer, 101, true).verdict,
            Verdict::Target
        );
    }

    #[test]
    fn fixups_repair_the_uuids() {
        // Rule 34: we were source and missed "resync finished".
        let mut own = g(0xA0, 0x90, 0x80, 0);
        let mut peer = p(0xA0, 0, 0x90, 0x80);
        let r = compare(&mut own, &mut peer, 101, false);
        assert_eq!(
            (r.verdict, r.rule, r.fixup),
            (Verdict::Source, 34, Some(Fixup::Own))
        );
        assert_eq!((own.bitmap, own.history), (0, [0x90, 0x80]));
        // Rule 35, mirrored: the peer is corrected.
        let mut own = g(0xA0, 0, 0x90, 0x80);
        let mut peer = p(0xA0, 0x90, 0x80, 0);
        let r = compare(&mut own, &mut peer, 101, false);
        assert_eq!((r.rule, r.fixup), (35, Some(Fixup::Peer)));
        assert_eq!((peer.bitmap, peer.history), (0, [0x90, 0x80]));
        // Before protocol 91 these need a newer peer.
        let mut own = g(0xA0, 0x90, 0x80, 0);
        let mut peer = p(0xA0, 0, 0x90, 0x80);
        assert_eq!(
            compare(&mut own, &mut peer, 90, false).verdict,
            Verdict::RequiresProtocol(91)
        );
        assert_eq!(Verdict::RequiresProtocol(91).hg(), -1091);
        // Rule 51 (pv ≥ 96): the peer's bitmap UUID is its history + 2^48, P_SYNC_UUID lost.
        let mut own = g(0xA0, 0, 0, 0);
        let mut peer = p(0xB0, 0xA0 + UUID_NEW_BM_OFFSET, 0xA0, 0x70);
        let r = compare(&mut own, &mut peer, 101, false);
        assert_eq!((r.verdict, r.rule), (Verdict::Target, 51));
        assert_eq!((peer.bitmap, peer.history[0]), (0xA0, 0x70));
        // Rule 71 mirrors it on our side.
        let mut own = g(0xB0, 0xA0 + UUID_NEW_BM_OFFSET, 0xA0, 0x70);
        let mut peer = p(0xA0, 0, 0, 0);
        let r = compare(&mut own, &mut peer, 101, false);
        assert_eq!(
            (r.verdict, r.rule, r.fixup),
            (Verdict::Source, 71, Some(Fixup::Own))
        );
        assert_eq!((own.bitmap, own.history[0]), (0xA0, 0x70));
    }
}
