//! The sync handshake around the UUID compare table (replication.md §6.3, 8.4's
//! `drbd_sync_handshake`): the disk-state override, split-brain recovery by the after-sb
//! policies (`drbd_asb_recover_{0,1,2}p`) or discard-my-data, and the refusals (split brain,
//! unrelated data, inconsistent source, primary target).
//!
//! Split brain is never resolved silently: without a policy that decides, or discard-my-data on
//! exactly one side, the result is a refusal and the connection is dropped.

use core::fmt;

use super::config::{AfterSb, RrConflict};
use super::generation::Generation;
use super::state::{DiskState, Role};
use super::uuid_compare::{compare, Compared, PeerUuids, Verdict};
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

    use crate::repl::conn::uuid_compare::tests::{g, p};

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
