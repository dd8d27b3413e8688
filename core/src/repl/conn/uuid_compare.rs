//! Who syncs from whom (replication.md §6.3): the UUID compare table, rule by rule as 8.4's
//! `drbd_uuid_compare` evaluates it (rule numbers kept), then the sync handshake around it: the
//! disk-state override, split-brain recovery by the after-sb policies or discard-my-data only,
//! and the refusals (unrelated data, inconsistent source, primary target).
//!
//! Split brain is never resolved silently: without a policy that decides, or discard-my-data on
//! exactly one side, the result is a refusal and the connection is dropped.

use core::fmt;

use super::config::{AfterSb, RrConflict};
use super::generation::{masked, Generation, UUID_JUST_CREATED, UUID_NEW_BM_OFFSET};
use super::state::{DiskState, Role};
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

/// What one side knows when it runs the sync handshake for a volume.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Side {
    /// Role.
    pub role: Role,
    /// Disk state.
    pub disk: DiskState,
    /// Set bits in its bitmap for the other side.
    pub dirty_bits: u64,
    /// discard-my-data (ours from the config, the peer's from its UUID flags).
    pub discard_my_data: bool,
}

/// The policies the handshake applies (from [`super::config::Config`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policies {
    /// after-sb-0pri, -1pri, -2pri.
    pub after_sb: [AfterSb; 3],
    /// always-asbp.
    pub always_asbp: bool,
    /// rr-conflict.
    pub rr_conflict: RrConflict,
}

/// Which way the data flows after the handshake.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum SyncOutcome {
    /// In sync: straight to Established.
    NoSync,
    /// This node becomes sync source (WFBitMapS); `full` = set every bit first.
    Source {
        /// Full sync.
        full: bool,
    },
    /// This node becomes sync target (WFBitMapT).
    Target {
        /// Full sync.
        full: bool,
    },
}

/// How a split brain was resolved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Resolution {
    /// An after-sb policy decided (with this many primaries).
    Policy {
        /// 0, 1 or 2.
        primaries: u8,
        /// The policy applied.
        policy: AfterSb,
    },
    /// discard-my-data on one side.
    DiscardMyData,
}

/// Why the handshake refuses the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Refusal {
    /// No common ancestor.
    UnrelatedData,
    /// Repairing the UUIDs needs a newer protocol on both sides.
    RequiresProtocol(u32),
    /// Split brain that no policy and no discard-my-data resolved.
    SplitBrain {
        /// Whether the table found a common bitmap UUID (auto-recoverable in principle).
        auto_recoverable: bool,
    },
    /// This node would be source but its disk is not consistent.
    InconsistentSource,
    /// This node would be target but is a primary with good data (rr-conflict disconnect).
    PrimaryTarget {
        /// rr-conflict asks for the pri-lost helper.
        call_pri_lost: bool,
    },
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::UnrelatedData => f.write_str("unrelated data"),
            Refusal::RequiresProtocol(pv) => write!(
                f,
                "to resolve this both sides have to support at least protocol {pv}"
            ),
            Refusal::SplitBrain { auto_recoverable } => write!(
                f,
                "split brain detected but unresolved ({})",
                if *auto_recoverable {
                    "no after-sb policy decided"
                } else {
                    "only a history UUID is shared; needs discard-my-data"
                }
            ),
            Refusal::InconsistentSource => {
                f.write_str("I shall become sync source, but I am inconsistent")
            }
            Refusal::PrimaryTarget { .. } => {
                f.write_str("I shall become sync target, but I am primary")
            }
        }
    }
}

/// The handshake's decision for one volume.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Decision {
    /// What the table said.
    pub compared: Compared,
    /// The outcome, or why the connection is refused.
    pub result: Result<SyncOutcome, Refusal>,
    /// Set when a split brain was detected and resolved.
    pub resolution: Option<Resolution>,
    /// The shell should run the pri-lost-after-sb helper (call-pri-lost-after-sb made this
    /// primary a target: it must give up its role).
    pub pri_lost_after_sb: bool,
    /// The sync became a resync because of the disk states (one side Inconsistent).
    pub by_disk_state: bool,
}

/// 8.4 `drbd_asb_recover_0p`: `own_bm_primary` / `peer_bm_primary` are the primary bits of the
/// bitmap UUIDs (who was primary when the split started).
fn recover_0p(
    policy: AfterSb,
    own_bm_primary: bool,
    peer_bm_primary: bool,
    own: &Side,
    peer: &Side,
    resolve_conflicts: bool,
) -> i32 {
    let tie = if resolve_conflicts { -1 } else { 1 };
    let least = || match own.dirty_bits.cmp(&peer.dirty_bits) {
        core::cmp::Ordering::Less => -1,
        core::cmp::Ordering::Greater => 1,
        core::cmp::Ordering::Equal => tie,
    };
    let zero = || match (own.dirty_bits, peer.dirty_bits) {
        (0, 0) => Some(tie),
        (_, 0) => Some(1),
        (0, _) => Some(-1),
        _ => None,
    };
    let by_age = |younger: bool| match (own_bm_primary, peer_bm_primary) {
        (false, true) => Some(if younger { -1 } else { 1 }),
        (true, false) => Some(if younger { 1 } else { -1 }),
        _ => None,
    };
    match policy {
        AfterSb::DiscardYoungerPrimary | AfterSb::DiscardOlderPrimary => {
            // Undecided by age: upstream falls through to zero-changes, then least-changes.
            by_age(policy == AfterSb::DiscardYoungerPrimary)
                .or_else(zero)
                .unwrap_or_else(least)
        }
        AfterSb::DiscardZeroChanges => zero().unwrap_or(-100),
        AfterSb::DiscardLeastChanges => least(),
        AfterSb::DiscardLocal => -1,
        AfterSb::DiscardRemote => 1,
        _ => -100,
    }
}

/// Runs the table and the rules around it for one volume (8.4 `drbd_sync_handshake`).
pub fn sync_handshake(
    gen: &mut Generation,
    peer_uuids: &mut PeerUuids,
    own: &Side,
    peer: &Side,
    policies: &Policies,
    pv: u32,
    resolve_conflicts: bool,
) -> Decision {
    let compared = compare(gen, peer_uuids, pv, resolve_conflicts);
    let mut d = Decision {
        compared,
        result: Err(Refusal::UnrelatedData),
        resolution: None,
        pri_lost_after_sb: false,
        by_disk_state: false,
    };
    let mut hg = match compared.verdict {
        Verdict::UnrelatedData => return d,
        Verdict::RequiresProtocol(p) => {
            d.result = Err(Refusal::RequiresProtocol(p));
            return d;
        }
        v => v.hg(),
    };
    let auto_recoverable = hg == 100;

    let inconsistent = DiskState::Inconsistent;
    if (own.disk == inconsistent && peer.disk > inconsistent)
        || (peer.disk == inconsistent && own.disk > inconsistent)
    {
        let full = hg == -100 || hg.abs() == 2;
        hg = if own.disk > inconsistent { 1 } else { -1 };
        if full {
            hg *= 2;
        }
        d.by_disk_state = true;
    }

    if hg == 100 || (hg == -100 && policies.always_asbp) {
        let primaries = u8::from(own.role == Role::Primary) + u8::from(peer.role == Role::Primary);
        let forced = hg == -100;
        let policy = policies.after_sb[usize::from(primaries.min(2))];
        let own_bm_primary = gen.bitmap & 1 != 0;
        let peer_bm_primary = peer_uuids.bitmap & 1 != 0;
        let as0p = |p: AfterSb| {
            recover_0p(
                p,
                own_bm_primary,
                peer_bm_primary,
                own,
                peer,
                resolve_conflicts,
            )
        };
        let p0 = policies.after_sb[0];
        hg = match (primaries, policy) {
            (0, p) if p.valid_for(0) => as0p(p),
            (1, AfterSb::Consensus) => match as0p(p0) {
                -1 if own.role == Role::Secondary => -1,
                1 if own.role == Role::Primary => 1,
                _ => -100,
            },
            (1, AfterSb::Violently) | (2, AfterSb::Violently) => as0p(p0),
            (1, AfterSb::DiscardSecondary) => {
                if own.role == Role::Primary {
                    1
                } else {
                    -1
                }
            }
            (1, AfterSb::CallHelper) | (2, AfterSb::CallHelper) => {
                let r = as0p(p0);
                // A primary that must become target gives up its role; the shell runs the
                // pri-lost-after-sb helper to demote it (2 primaries: whichever loses).
                if r == -1 && (primaries == 2 || own.role == Role::Primary) {
                    d.pri_lost_after_sb = true;
                }
                r
            }
            _ => -100,
        };
        if hg.abs() < 100 {
            d.resolution = Some(Resolution::Policy { primaries, policy });
            if forced {
                hg *= 2;
            }
        }
    }

    if hg == -100 {
        if own.discard_my_data && !peer.discard_my_data {
            hg = -1;
        }
        if !own.discard_my_data && peer.discard_my_data {
            hg = 1;
        }
        if hg.abs() < 100 {
            d.resolution = Some(Resolution::DiscardMyData);
        }
    }

    if hg.abs() >= 100 {
        d.result = Err(Refusal::SplitBrain { auto_recoverable });
        d.pri_lost_after_sb = false;
        return d;
    }
    if hg > 0 && own.disk <= inconsistent {
        d.result = Err(Refusal::InconsistentSource);
        return d;
    }
    if hg < 0 && own.role == Role::Primary && own.disk >= DiskState::Consistent {
        match policies.rr_conflict {
            RrConflict::Disconnect | RrConflict::CallPriLost => {
                d.result = Err(Refusal::PrimaryTarget {
                    call_pri_lost: policies.rr_conflict == RrConflict::CallPriLost,
                });
                return d;
            }
            RrConflict::Violently => {}
        }
    }
    d.result = Ok(match hg {
        0 => SyncOutcome::NoSync,
        h if h > 0 => SyncOutcome::Source { full: h >= 2 },
        h => SyncOutcome::Target { full: h <= -2 },
    });
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(current: u64, bitmap: u64, h0: u64, h1: u64) -> Generation {
        Generation {
            current,
            bitmap,
            history: [h0, h1],
            crashed_primary: false,
        }
    }
    fn p(current: u64, bitmap: u64, h0: u64, h1: u64) -> PeerUuids {
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

    fn side(role: Role, disk: DiskState, dirty: u64, discard: bool) -> Side {
        Side {
            role,
            disk,
            dirty_bits: dirty,
            discard_my_data: discard,
        }
    }
    const NO_POLICY: Policies = Policies {
        after_sb: [AfterSb::Disconnect; 3],
        always_asbp: false,
        rr_conflict: RrConflict::Disconnect,
    };

    fn hs(
        own: Generation,
        peer: PeerUuids,
        me: Side,
        them: Side,
        pol: &Policies,
        rc: bool,
    ) -> Decision {
        let (mut o, mut q) = (own, peer);
        sync_handshake(&mut o, &mut q, &me, &them, pol, 101, rc)
    }

    #[test]
    fn split_brain_needs_a_policy_or_discard_my_data() {
        let (own, peer) = (g(0xB0, 0xC0, 0, 0), p(0xD0, 0xC0, 0, 0));
        let up = DiskState::UpToDate;
        let s = side(Role::Secondary, up, 5, false);
        let d = hs(own, peer, s, s, &NO_POLICY, false);
        assert_eq!(
            d.result,
            Err(Refusal::SplitBrain {
                auto_recoverable: true
            })
        );
        let mut pol = NO_POLICY;
        pol.after_sb[0] = AfterSb::DiscardLeastChanges;
        let d = hs(
            own,
            peer,
            side(Role::Secondary, up, 2, false),
            s,
            &pol,
            false,
        );
        assert_eq!(d.result, Ok(SyncOutcome::Target { full: false }));
        assert_eq!(
            d.resolution,
            Some(Resolution::Policy {
                primaries: 0,
                policy: AfterSb::DiscardLeastChanges
            })
        );
        // discard-my-data: the side that has it becomes target, the other source.
        let d = hs(
            own,
            peer,
            side(Role::Secondary, up, 5, true),
            s,
            &NO_POLICY,
            false,
        );
        assert_eq!(d.result, Ok(SyncOutcome::Target { full: false }));
        assert_eq!(d.resolution, Some(Resolution::DiscardMyData));
        let d = hs(
            own,
            peer,
            s,
            side(Role::Secondary, up, 5, true),
            &NO_POLICY,
            false,
        );
        assert_eq!(d.result, Ok(SyncOutcome::Source { full: false }));
        // History-only split brain ignores the policies unless always-asbp (then full sync).
        let (own, peer) = (g(0xB0, 0xE0, 0xC0, 0), p(0xD0, 0xF0, 0xC0, 0));
        let d = hs(own, peer, s, s, &pol, false);
        assert_eq!(
            d.result,
            Err(Refusal::SplitBrain {
                auto_recoverable: false
            })
        );
        pol.always_asbp = true;
        let d = hs(
            own,
            peer,
            side(Role::Secondary, up, 9, false),
            s,
            &pol,
            false,
        );
        assert_eq!(d.result, Ok(SyncOutcome::Source { full: true }));
    }

    #[test]
    fn one_primary_policies() {
        let (own, peer) = (g(0xB0, 0xC0, 0, 0), p(0xD0, 0xC0, 0, 0));
        let up = DiskState::UpToDate;
        let pri = side(Role::Primary, up, 5, false);
        let sec = side(Role::Secondary, up, 1, false);
        let mut pol = NO_POLICY;
        pol.after_sb[1] = AfterSb::DiscardSecondary;
        assert_eq!(
            hs(own, peer, pri, sec, &pol, false).result,
            Ok(SyncOutcome::Source { full: false })
        );
        assert_eq!(
            hs(own, peer, sec, pri, &pol, false).result,
            Ok(SyncOutcome::Target { full: false })
        );
        // Consensus: only if the 0-primary policy also discards the secondary.
        pol.after_sb = [
            AfterSb::DiscardLeastChanges,
            AfterSb::Consensus,
            AfterSb::Disconnect,
        ];
        assert_eq!(
            hs(own, peer, sec, pri, &pol, false).result,
            Ok(SyncOutcome::Target { full: false })
        );
        let few = side(Role::Primary, up, 0, false);
        assert!(hs(own, peer, few, sec, &pol, false).result.is_err());
        // call-pri-lost-after-sb: the primary that loses must demote.
        pol.after_sb = [
            AfterSb::DiscardLeastChanges,
            AfterSb::CallHelper,
            AfterSb::Disconnect,
        ];
        pol.rr_conflict = RrConflict::Violently;
        let d = hs(own, peer, few, sec, &pol, false);
        assert!(d.pri_lost_after_sb);
    }

    #[test]
    fn zero_changes_and_age() {
        let (own, peer) = (g(0xB0, 0xC0, 0, 0), p(0xD0, 0xC0, 0, 0));
        let up = DiskState::UpToDate;
        let mut pol = NO_POLICY;
        pol.after_sb[0] = AfterSb::DiscardZeroChanges;
        let zero = side(Role::Secondary, up, 0, false);
        let some = side(Role::Secondary, up, 3, false);
        assert_eq!(
            hs(own, peer, zero, some, &pol, false).result,
            Ok(SyncOutcome::Target { full: false })
        );
        assert_eq!(
            hs(own, peer, zero, zero, &pol, true).result,
            Ok(SyncOutcome::Target { full: false })
        );
        assert_eq!(
            hs(own, peer, zero, zero, &pol, false).result,
            Ok(SyncOutcome::Source { full: false })
        );
        assert!(hs(own, peer, some, some, &pol, false).result.is_err());
        // Younger primary: our bitmap UUID was made while secondary, the peer's while primary.
        pol.after_sb[0] = AfterSb::DiscardYoungerPrimary;
        let peer_pri = p(0xD0, 0xC1, 0, 0);
        assert_eq!(
            hs(own, peer_pri, some, some, &pol, false).result,
            Ok(SyncOutcome::Target { full: false })
        );
    }

    #[test]
    fn disk_state_override_and_refusals() {
        let up = DiskState::UpToDate;
        let inc = DiskState::Inconsistent;
        let same = (g(0xA0, 0, 0, 0), p(0xA0, 0, 0, 0));
        let d = hs(
            same.0,
            same.1,
            side(Role::Secondary, inc, 0, false),
            side(Role::Secondary, up, 0, false),
            &NO_POLICY,
            false,
        );
        assert_eq!(d.result, Ok(SyncOutcome::Target { full: false }));
        assert!(d.by_disk_state);
        // Split brain plus an inconsistent side: the consistent one is source, full sync.
        let sb = (g(0xB0, 0xE0, 0xC0, 0), p(0xD0, 0xF0, 0xC0, 0));
        let d = hs(
            sb.0,
            sb.1,
            side(Role::Secondary, up, 0, false),
            side(Role::Secondary, inc, 0, false),
            &NO_POLICY,
            false,
        );
        assert_eq!(d.result, Ok(SyncOutcome::Source { full: true }));
        // Never source while inconsistent (both inconsistent: no override applies).
        let src = (g(0xB0, 0xA0, 0, 0), p(0xA0, 0, 0, 0));
        let d = hs(
            src.0,
            src.1,
            side(Role::Secondary, inc, 0, false),
            side(Role::Secondary, inc, 0, false),
            &NO_POLICY,
            false,
        );
        assert_eq!(d.result, Err(Refusal::InconsistentSource));
        // A primary with good data would become target: rr-conflict disconnect refuses.
        let tgt = (g(0xA0, 0, 0, 0), p(0xB0, 0xA0, 0, 0));
        let d = hs(
            tgt.0,
            tgt.1,
            side(Role::Primary, up, 0, false),
            side(Role::Secondary, up, 0, false),
            &NO_POLICY,
            false,
        );
        assert_eq!(
            d.result,
            Err(Refusal::PrimaryTarget {
                call_pri_lost: false
            })
        );
        let d = hs(
            g(0xB0, 0, 0, 0),
            p(0xD0, 0, 0, 0),
            side(Role::Secondary, up, 0, false),
            side(Role::Secondary, up, 0, false),
            &NO_POLICY,
            false,
        );
        assert_eq!(d.result, Err(Refusal::UnrelatedData));
    }
}
