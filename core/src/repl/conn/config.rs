//! Per-connection settings (drbd.conf's `net` section, replication.md §4.4, §4.6, §6.3): wire
//! protocol, CRAM-HMAC secret, node ids, split-brain policies, timers, two primaries and
//! discard-my-data, with the checks drbdsetup makes before it hands them to the kernel.

use core::fmt;

use crate::repl::wire::auth::HmacAlg;
use crate::repl::wire::features::ff;
use crate::repl::wire::protocol::MAX_ALG_LEN;

/// Longest shared secret (`SHARED_SECRET_MAX` is 64 bytes with its NUL).
pub const MAX_SECRET_LEN: usize = 63;

/// The replication protocol (`protocol A|B|C`), numbered as P_PROTOCOL carries it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum WireProtocol {
    /// Asynchronous: a write is done once it is in the local TCP send buffer.
    A = 1,
    /// Memory-synchronous: the peer acknowledges receipt.
    B = 2,
    /// Synchronous: the peer acknowledges the write on its disk.
    C = 3,
}

impl WireProtocol {
    /// The protocol a P_PROTOCOL number names.
    pub fn from_number(n: u32) -> Option<WireProtocol> {
        match n {
            1 => Some(WireProtocol::A),
            2 => Some(WireProtocol::B),
            3 => Some(WireProtocol::C),
            _ => None,
        }
    }
}

/// An after-split-brain policy (`enum drbd_after_sb_p`, replication.md §3.6), numbered as
/// P_PROTOCOL carries it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum AfterSb {
    /// Give up; an administrator decides.
    Disconnect = 0,
    /// The node that became primary last loses its changes.
    DiscardYoungerPrimary = 1,
    /// The node that became primary first loses its changes.
    DiscardOlderPrimary = 2,
    /// A node without changes becomes the target.
    DiscardZeroChanges = 3,
    /// The node with fewer changed blocks becomes the target.
    DiscardLeastChanges = 4,
    /// This node becomes the target.
    DiscardLocal = 5,
    /// The peer becomes the target.
    DiscardRemote = 6,
    /// The after-sb-0pri result, if it discards the secondary.
    Consensus = 7,
    /// The secondary becomes the target.
    DiscardSecondary = 8,
    /// The after-sb-0pri result; a primary that loses calls the pri-lost-after-sb helper.
    CallHelper = 9,
    /// The after-sb-0pri result even if it discards a primary's data.
    Violently = 10,
    /// rr-conflict only (DRBD 9).
    RetryConnect = 11,
    /// rr-conflict only (DRBD 9).
    AutoDiscard = 12,
}

impl AfterSb {
    /// Every policy, in wire order.
    pub const ALL: [AfterSb; 13] = [
        AfterSb::Disconnect,
        AfterSb::DiscardYoungerPrimary,
        AfterSb::DiscardOlderPrimary,
        AfterSb::DiscardZeroChanges,
        AfterSb::DiscardLeastChanges,
        AfterSb::DiscardLocal,
        AfterSb::DiscardRemote,
        AfterSb::Consensus,
        AfterSb::DiscardSecondary,
        AfterSb::CallHelper,
        AfterSb::Violently,
        AfterSb::RetryConnect,
        AfterSb::AutoDiscard,
    ];

    /// The policy a P_PROTOCOL number names.
    pub fn from_number(n: u32) -> Option<AfterSb> {
        AfterSb::ALL.get(n as usize).copied()
    }

    /// drbd.conf's name for it.
    pub const fn name(self) -> &'static str {
        match self {
            AfterSb::Disconnect => "disconnect",
            AfterSb::DiscardYoungerPrimary => "discard-younger-primary",
            AfterSb::DiscardOlderPrimary => "discard-older-primary",
            AfterSb::DiscardZeroChanges => "discard-zero-changes",
            AfterSb::DiscardLeastChanges => "discard-least-changes",
            AfterSb::DiscardLocal => "discard-local",
            AfterSb::DiscardRemote => "discard-remote",
            AfterSb::Consensus => "consensus",
            AfterSb::DiscardSecondary => "discard-secondary",
            AfterSb::CallHelper => "call-pri-lost-after-sb",
            AfterSb::Violently => "violently-as0p",
            AfterSb::RetryConnect => "retry-connect",
            AfterSb::AutoDiscard => "auto-discard",
        }
    }

    /// Whether the policy may be configured for `primaries` (0, 1 or 2) primaries: upstream calls
    /// anything else a configuration error and disconnects (drbd_asb_recover_{0,1,2}p).
    pub const fn valid_for(self, primaries: u8) -> bool {
        use AfterSb::*;
        match primaries {
            0 => matches!(
                self,
                Disconnect
                    | DiscardYoungerPrimary
                    | DiscardOlderPrimary
                    | DiscardZeroChanges
                    | DiscardLeastChanges
                    | DiscardLocal
                    | DiscardRemote
            ),
            1 => matches!(
                self,
                Disconnect | Consensus | DiscardSecondary | CallHelper | Violently
            ),
            _ => matches!(self, Disconnect | CallHelper | Violently),
        }
    }
}

impl fmt::Display for AfterSb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What to do when the handshake makes a primary with good data a sync target (`rr-conflict`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum RrConflict {
    /// Refuse the connection (the default).
    #[default]
    Disconnect,
    /// Refuse, and ask the shell to run the pri-lost helper.
    CallPriLost,
    /// Become target anyway.
    Violently,
}

/// CRAM-HMAC settings: `cram-hmac-alg` and `shared-secret`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Auth {
    /// The HMAC algorithm.
    pub alg: HmacAlg,
    /// The secret's bytes (no NUL).
    pub secret: heapless::Vec<u8, MAX_SECRET_LEN>,
}

impl Auth {
    /// Settings for `alg` with `secret`; `None` if the secret is longer than 63 bytes.
    pub fn new(alg: HmacAlg, secret: &[u8]) -> Option<Auth> {
        Some(Auth {
            alg,
            secret: heapless::Vec::from_slice(secret).ok()?,
        })
    }
}

/// One connection's settings. [`Config::new`] gives drbd_limits.h's defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// This node's id (0–31).
    pub node_id: u32,
    /// The peer's id (0–31).
    pub peer_node_id: u32,
    /// `protocol`.
    pub protocol: WireProtocol,
    /// `cram-hmac-alg` + `shared-secret`; `None` = no authentication.
    pub auth: Option<Auth>,
    /// `data-integrity-alg` name, compared with the peer's (empty = off). Digests themselves are
    /// the data path's business.
    pub integrity_alg: heapless::Vec<u8, { MAX_ALG_LEN - 1 }>,
    /// `after-sb-0pri`.
    pub after_sb_0p: AfterSb,
    /// `after-sb-1pri`.
    pub after_sb_1p: AfterSb,
    /// `after-sb-2pri`.
    pub after_sb_2p: AfterSb,
    /// `always-asbp`: apply the policies even when only a history UUID is shared.
    pub always_asbp: bool,
    /// `rr-conflict`.
    pub rr_conflict: RrConflict,
    /// `allow-two-primaries`.
    pub allow_two_primaries: bool,
    /// `discard-my-data`: on the next split brain this node's changes are thrown away. Cleared
    /// after a handshake that used it, as upstream does.
    pub discard_my_data: bool,
    /// `ping-int` (ms): idle time before a P_PING.
    pub ping_int_ms: u64,
    /// `ping-timeout` (ms): how long a P_PING_ACK may take.
    pub ping_timeout_ms: u64,
    /// `timeout` (ms): the data path's ack timeout (carried here, unused by the handshake).
    pub timeout_ms: u64,
    /// `connect-int` (ms): time between connection attempts.
    pub connect_int_ms: u64,
    /// `sock-check-timeo` (ms): how long a new socket pair must survive; 0 = `ping-timeout`.
    pub sock_check_timeo_ms: u64,
    /// Lowest protocol version offered.
    pub pv_min: u32,
    /// Highest protocol version offered (at most [`PV_MAX`]).
    pub pv_max: u32,
    /// `DRBD_FF_*` features offered (agreed = ours ∧ peer's).
    pub features: u32,
}

/// Lowest protocol version DRBD speaks (8.3.x rolling upgrade).
pub const PV_MIN: u32 = 86;
/// Highest protocol version of the flow this machine runs (8.4's last; see `conn`'s docs).
pub const PV_MAX: u32 = 101;

impl Config {
    /// drbd_limits.h defaults: protocol C, no authentication, every after-sb policy
    /// `disconnect`, ping-int 10 s, ping-timeout 0.5 s, timeout 6 s, connect-int 10 s,
    /// protocol versions 86–101, features TRIM | WSAME | WZEROES.
    pub fn new(node_id: u32, peer_node_id: u32) -> Config {
        Config {
            node_id,
            peer_node_id,
            protocol: WireProtocol::C,
            auth: None,
            integrity_alg: heapless::Vec::new(),
            after_sb_0p: AfterSb::Disconnect,
            after_sb_1p: AfterSb::Disconnect,
            after_sb_2p: AfterSb::Disconnect,
            always_asbp: false,
            rr_conflict: RrConflict::Disconnect,
            allow_two_primaries: false,
            discard_my_data: false,
            ping_int_ms: 10_000,
            ping_timeout_ms: 500,
            timeout_ms: 6_000,
            connect_int_ms: 10_000,
            sock_check_timeo_ms: 0,
            pv_min: PV_MIN,
            pv_max: PV_MAX,
            features: ff::TRIM | ff::WSAME | ff::WZEROES,
        }
    }

    /// The socket-pair check time: `sock-check-timeo`, or `ping-timeout` when that is 0.
    pub fn sock_check_ms(&self) -> u64 {
        if self.sock_check_timeo_ms == 0 {
            self.ping_timeout_ms
        } else {
            self.sock_check_timeo_ms
        }
    }

    /// Checks what drbdsetup and the kernel refuse before connecting.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.node_id > 31 || self.peer_node_id > 31 || self.node_id == self.peer_node_id {
            return Err(ConfigError::NodeIds {
                node_id: self.node_id,
                peer_node_id: self.peer_node_id,
            });
        }
        for (primaries, policy) in [
            (0u8, self.after_sb_0p),
            (1, self.after_sb_1p),
            (2, self.after_sb_2p),
        ] {
            if !policy.valid_for(primaries) {
                return Err(ConfigError::AfterSb { primaries, policy });
            }
        }
        if self.pv_min < PV_MIN || self.pv_max > PV_MAX || self.pv_min > self.pv_max {
            return Err(ConfigError::ProtocolRange {
                min: self.pv_min,
                max: self.pv_max,
            });
        }
        if self.integrity_alg.contains(&0) {
            return Err(ConfigError::IntegrityAlg);
        }
        if self.ping_int_ms == 0 || self.ping_timeout_ms == 0 || self.connect_int_ms == 0 {
            return Err(ConfigError::ZeroTimer);
        }
        Ok(())
    }
}

/// A setting that cannot work.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ConfigError {
    /// Node ids must be 0–31 and differ.
    NodeIds {
        /// This node's id.
        node_id: u32,
        /// The peer's id.
        peer_node_id: u32,
    },
    /// A policy that does not apply to that number of primaries.
    AfterSb {
        /// 0, 1 or 2 (after-sb-0pri, -1pri, -2pri).
        primaries: u8,
        /// The policy.
        policy: AfterSb,
    },
    /// The protocol-version range is outside 86–101 or empty.
    ProtocolRange {
        /// Lowest.
        min: u32,
        /// Highest.
        max: u32,
    },
    /// The integrity algorithm name contains a NUL.
    IntegrityAlg,
    /// ping-int, ping-timeout and connect-int must be positive.
    ZeroTimer,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::NodeIds {
                node_id,
                peer_node_id,
            } => write!(
                f,
                "node ids must be 0-31 and differ (node-id {node_id}, peer {peer_node_id})"
            ),
            ConfigError::AfterSb { primaries, policy } => {
                write!(f, "after-sb-{primaries}pri cannot be {policy}")
            }
            ConfigError::ProtocolRange { min, max } => write!(
                f,
                "protocol versions {min}-{max}: must lie within {PV_MIN}-{PV_MAX}"
            ),
            ConfigError::IntegrityAlg => f.write_str("data-integrity-alg contains a NUL byte"),
            ConfigError::ZeroTimer => {
                f.write_str("ping-int, ping-timeout and connect-int must be positive")
            }
        }
    }
}

impl core::error::Error for ConfigError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_bad_settings_are_named() {
        let c = Config::new(0, 1);
        assert_eq!(c.validate(), Ok(()));
        assert_eq!(c.sock_check_ms(), 500);
        let same = Config::new(1, 1);
        assert!(matches!(same.validate(), Err(ConfigError::NodeIds { .. })));
        let mut bad = Config::new(0, 1);
        bad.after_sb_0p = AfterSb::Consensus;
        assert_eq!(
            bad.validate(),
            Err(ConfigError::AfterSb {
                primaries: 0,
                policy: AfterSb::Consensus
            })
        );
        bad.after_sb_0p = AfterSb::DiscardLocal;
        bad.after_sb_2p = AfterSb::DiscardSecondary;
        assert!(bad.validate().is_err());
        let mut pv = Config::new(0, 1);
        pv.pv_max = 118;
        assert!(matches!(
            pv.validate(),
            Err(ConfigError::ProtocolRange { .. })
        ));
        assert_eq!(AfterSb::from_number(10), Some(AfterSb::Violently));
        assert_eq!(AfterSb::from_number(13), None);
        assert_eq!(WireProtocol::from_number(3), Some(WireProtocol::C));
        assert!(Auth::new(HmacAlg::Sha1, &[b'x'; 64]).is_none());
    }
}
