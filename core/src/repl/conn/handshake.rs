//! The connection handshake's pure checks (replication.md §4.2–4.4): feature negotiation,
//! CRAM-HMAC in both directions, and the P_PROTOCOL compatibility rules. The machine
//! ([`super::machine`]) calls these and turns a failure into a disconnect reason.

use core::fmt;

use super::config::{AfterSb, Config, WireProtocol};
use crate::repl::wire::auth::{self, HmacAlg, CHALLENGE_LEN, MAX_RESPONSE_LEN};
use crate::repl::wire::features::ConnectionFeaturesFields;
use crate::repl::wire::protocol::{ProtocolFields, ProtocolRepr};

/// `CF_DISCARD_MY_DATA` in P_PROTOCOL's conn_flags.
pub const CF_DISCARD_MY_DATA: u32 = 1;
/// `CF_DRY_RUN` in P_PROTOCOL's conn_flags (pv ≥ 92).
pub const CF_DRY_RUN: u32 = 2;

/// Our P_CONNECTION_FEATURES.
pub fn our_features(config: &Config) -> ConnectionFeaturesFields {
    ConnectionFeaturesFields {
        protocol_min: config.pv_min,
        feature_flags: config.features,
        protocol_max: config.pv_max,
        sender_node_id: config.node_id,
        receiver_node_id: config.peer_node_id,
    }
}

/// Why the feature exchange failed (the peer cannot speak any version we speak).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct NoCommonVersion {
    /// Our range.
    pub ours: (u32, u32),
    /// The peer's range.
    pub theirs: (u32, u32),
}

impl fmt::Display for NoCommonVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "incompatible DRBD dialects: I support {}-{}, peer supports {}-{}",
            self.ours.0, self.ours.1, self.theirs.0, self.theirs.1
        )
    }
}

/// Agreed protocol version and features: pv = min(own max, peer max) if the ranges overlap,
/// features = ours ∧ peer's (replication.md §4.2). A peer max of 0 means its min.
pub fn negotiate(
    config: &Config,
    peer: &ConnectionFeaturesFields,
) -> Result<(u32, u32), NoCommonVersion> {
    let theirs = (peer.protocol_min, peer.effective_max());
    let ours = (config.pv_min, config.pv_max);
    if ours.1 < theirs.0 || ours.0 > theirs.1 {
        return Err(NoCommonVersion { ours, theirs });
    }
    Ok((ours.1.min(theirs.1), config.features & peer.feature_flags))
}

/// What went wrong with CRAM-HMAC; each ends the connection for good ("authentication failed").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum AuthFailure {
    /// The peer's response does not match the shared secret.
    WrongResponse,
    /// The peer presented our own challenge (a reflection attack).
    ReflectedChallenge,
    /// The peer's response is not the length of our algorithm's digest.
    ResponseLength {
        /// Our digest length.
        expected: usize,
        /// What arrived.
        got: usize,
    },
    /// The peer sent another packet instead of its challenge or response (it is not
    /// configured for authentication).
    NotOffered,
}

impl fmt::Display for AuthFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("authentication failed: ")?;
        match self {
            AuthFailure::WrongResponse => {
                f.write_str("peer's response does not match the shared secret")
            }
            AuthFailure::ReflectedChallenge => f.write_str("peer presented the same challenge"),
            AuthFailure::ResponseLength { expected, got } => write!(
                f,
                "peer's response is {got} bytes, cram-hmac-alg gives {expected}"
            ),
            AuthFailure::NotOffered => f.write_str("peer did not authenticate"),
        }
    }
}

/// One side of CRAM-HMAC (replication.md §4.3): our challenge, and our response to the peer's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cram {
    alg: HmacAlg,
    /// The challenge we sent.
    pub challenge: [u8; CHALLENGE_LEN],
    response: [u8; MAX_RESPONSE_LEN],
    response_len: usize,
}

impl Cram {
    /// Starts with our fresh challenge.
    pub fn new(alg: HmacAlg, challenge: [u8; CHALLENGE_LEN]) -> Cram {
        Cram {
            alg,
            challenge,
            response: [0; MAX_RESPONSE_LEN],
            response_len: 0,
        }
    }

    /// The node id that goes into the HMAC: only from pv 110.
    fn node(pv: u32, id: u32) -> Option<u32> {
        (pv >= 110).then_some(id)
    }

    /// Answers the peer's challenge, refusing our own (reflected) one.
    pub fn respond(
        &mut self,
        secret: &[u8],
        peer_challenge: &[u8; CHALLENGE_LEN],
        pv: u32,
        own_node_id: u32,
    ) -> Result<&[u8], AuthFailure> {
        if *peer_challenge == self.challenge {
            return Err(AuthFailure::ReflectedChallenge);
        }
        let n = auth::response(
            self.alg,
            secret,
            peer_challenge,
            Self::node(pv, own_node_id),
            &mut self.response,
        )
        .unwrap_or(0);
        self.response_len = n;
        Ok(self.response())
    }

    /// Our response, once [`Self::respond`] made it.
    pub fn response(&self) -> &[u8] {
        self.response.get(..self.response_len).unwrap_or(&[])
    }

    /// Checks the peer's response to our challenge.
    pub fn verify(
        &self,
        secret: &[u8],
        response: &[u8],
        pv: u32,
        peer_node_id: u32,
    ) -> Result<(), AuthFailure> {
        let expected = self.alg.digest_len();
        if response.len() != expected {
            return Err(AuthFailure::ResponseLength {
                expected,
                got: response.len(),
            });
        }
        if auth::verify(
            self.alg,
            secret,
            &self.challenge,
            Self::node(pv, peer_node_id),
            response,
        ) {
            Ok(())
        } else {
            Err(AuthFailure::WrongResponse)
        }
    }
}

/// Our P_PROTOCOL.
pub fn our_protocol(config: &Config) -> ProtocolRepr<'_> {
    ProtocolRepr {
        fields: ProtocolFields {
            protocol: config.protocol as u32,
            after_sb_0p: config.after_sb_0p as u32,
            after_sb_1p: config.after_sb_1p as u32,
            after_sb_2p: config.after_sb_2p as u32,
            conn_flags: if config.discard_my_data {
                CF_DISCARD_MY_DATA
            } else {
                0
            },
            two_primaries: u32::from(config.allow_two_primaries),
        },
        integrity_alg: &config.integrity_alg,
    }
}

/// A P_PROTOCOL setting that differs from ours (replication.md §4.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Incompatible {
    /// `protocol` differs (or is not A/B/C).
    WireProtocol {
        /// Ours.
        ours: WireProtocol,
        /// The peer's number.
        theirs: u32,
    },
    /// An after-sb policy is not the mirror of ours.
    AfterSb {
        /// 0, 1 or 2 primaries.
        primaries: u8,
        /// Ours.
        ours: AfterSb,
        /// The peer's number.
        theirs: u32,
    },
    /// Both sides were told to discard their data.
    DiscardMyData,
    /// allow-two-primaries differs.
    TwoPrimaries,
    /// data-integrity-alg differs.
    IntegrityAlg,
    /// verify-alg or csums-alg in the peer's P_SYNC_PARAM differ from ours (none).
    SyncAlgorithms,
    /// Several volumes need protocol ≥ 100 (h100 carries the volume number).
    VolumesNeedPv100,
    /// No common protocol version.
    Version(NoCommonVersion),
}

impl fmt::Display for Incompatible {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Incompatible::WireProtocol { ours, theirs } => {
                write!(
                    f,
                    "incompatible communication protocols: ours {ours:?}, peer {theirs}"
                )
            }
            Incompatible::AfterSb {
                primaries,
                ours,
                theirs,
            } => write!(
                f,
                "incompatible after-sb-{primaries}pri settings: ours {ours}, peer {}",
                AfterSb::from_number(*theirs).map_or("unknown", AfterSb::name)
            ),
            Incompatible::DiscardMyData => {
                f.write_str("incompatible discard-my-data settings (both set)")
            }
            Incompatible::TwoPrimaries => {
                f.write_str("incompatible setting of the two-primaries options")
            }
            Incompatible::IntegrityAlg => f.write_str("incompatible data-integrity-alg settings"),
            Incompatible::SyncAlgorithms => {
                f.write_str("different verify-alg or csums-alg settings")
            }
            Incompatible::VolumesNeedPv100 => {
                f.write_str("more than one volume needs protocol version 100 or later")
            }
            Incompatible::Version(v) => v.fmt(f),
        }
    }
}

/// 8.4 `cmp_after_sb`: equal policies match, and discard-local on one side matches
/// discard-remote on the other; any other use of those two does not.
fn after_sb_match(peer: u32, own: AfterSb) -> bool {
    let Some(peer) = AfterSb::from_number(peer) else {
        return false;
    };
    let local_remote = |a, b| a == AfterSb::DiscardLocal && b == AfterSb::DiscardRemote;
    if local_remote(peer, own) || local_remote(own, peer) {
        return true;
    }
    let directional = |p| matches!(p, AfterSb::DiscardLocal | AfterSb::DiscardRemote);
    !directional(peer) && !directional(own) && peer == own
}

/// What the peer's P_PROTOCOL tells us once it is compatible.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerProtocol {
    /// The peer set discard-my-data.
    pub discard_my_data: bool,
    /// The peer asked for a dry-run connect.
    pub dry_run: bool,
}

/// The P_PROTOCOL checks of replication.md §4.4.
pub fn check_protocol(
    config: &Config,
    peer: &ProtocolRepr<'_>,
) -> Result<PeerProtocol, Incompatible> {
    let p = &peer.fields;
    if WireProtocol::from_number(p.protocol) != Some(config.protocol) {
        return Err(Incompatible::WireProtocol {
            ours: config.protocol,
            theirs: p.protocol,
        });
    }
    for (primaries, theirs, ours) in [
        (0u8, p.after_sb_0p, config.after_sb_0p),
        (1, p.after_sb_1p, config.after_sb_1p),
        (2, p.after_sb_2p, config.after_sb_2p),
    ] {
        if !after_sb_match(theirs, ours) {
            return Err(Incompatible::AfterSb {
                primaries,
                ours,
                theirs,
            });
        }
    }
    let discard = p.conn_flags & CF_DISCARD_MY_DATA != 0;
    if discard && config.discard_my_data {
        return Err(Incompatible::DiscardMyData);
    }
    if (p.two_primaries != 0) != config.allow_two_primaries {
        return Err(Incompatible::TwoPrimaries);
    }
    if peer.integrity_alg != &config.integrity_alg[..] {
        return Err(Incompatible::IntegrityAlg);
    }
    Ok(PeerProtocol {
        discard_my_data: discard,
        dry_run: p.conn_flags & CF_DRY_RUN != 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_negotiation() {
        let c = Config::new(0, 1);
        let mut peer = our_features(&c);
        assert_eq!(negotiate(&c, &peer), Ok((101, c.features)));
        peer.protocol_max = 124;
        peer.feature_flags = 0x3FF;
        assert_eq!(negotiate(&c, &peer), Ok((101, c.features)));
        peer.protocol_min = 118;
        assert!(negotiate(&c, &peer).is_err());
        peer.protocol_min = 90;
        peer.protocol_max = 0;
        assert_eq!(negotiate(&c, &peer).map(|v| v.0), Ok(90));
        peer.protocol_min = 80;
        peer.protocol_max = 85;
        let e = negotiate(&c, &peer).unwrap_err();
        assert_eq!(e.theirs, (80, 85));
    }

    #[test]
    fn cram_both_ways_and_reflection() {
        let mut a = Cram::new(HmacAlg::Sha256, [1; 64]);
        let mut b = Cram::new(HmacAlg::Sha256, [2; 64]);
        let ra: heapless::Vec<u8, 64> =
            heapless::Vec::from_slice(a.respond(b"s", &b.challenge.clone(), 101, 0).unwrap())
                .unwrap();
        assert_eq!(ra.len(), 32);
        assert_eq!(b.verify(b"s", &ra, 101, 0), Ok(()));
        assert_eq!(b.verify(b"t", &ra, 101, 0), Err(AuthFailure::WrongResponse));
        assert_eq!(
            b.verify(b"s", &ra[..20], 101, 0),
            Err(AuthFailure::ResponseLength {
                expected: 32,
                got: 20
            })
        );
        let own = b.challenge;
        assert_eq!(
            b.respond(b"s", &own, 101, 1).map(<[u8]>::len),
            Err(AuthFailure::ReflectedChallenge)
        );
        use std::string::ToString;
        assert!(AuthFailure::WrongResponse
            .to_string()
            .starts_with("authentication failed"));
    }

    #[test]
    fn protocol_checks_mirror_the_policies() {
        let mut a = Config::new(0, 1);
        let mut b = Config::new(1, 0);
        assert!(check_protocol(&a, &our_protocol(&b)).is_ok());
        a.after_sb_0p = AfterSb::DiscardLocal;
        b.after_sb_0p = AfterSb::DiscardRemote;
        assert!(check_protocol(&a, &our_protocol(&b)).is_ok());
        b.after_sb_0p = AfterSb::DiscardLocal;
        assert_eq!(
            check_protocol(&a, &our_protocol(&b)),
            Err(Incompatible::AfterSb {
                primaries: 0,
                ours: AfterSb::DiscardLocal,
                theirs: 5
            })
        );
        b.after_sb_0p = AfterSb::DiscardRemote;
        b.protocol = WireProtocol::A;
        assert!(matches!(
            check_protocol(&a, &our_protocol(&b)),
            Err(Incompatible::WireProtocol { theirs: 1, .. })
        ));
        b.protocol = WireProtocol::C;
        a.discard_my_data = true;
        assert_eq!(
            check_protocol(&a, &our_protocol(&b)).map(|p| p.discard_my_data),
            Ok(false)
        );
        b.discard_my_data = true;
        assert_eq!(
            check_protocol(&a, &our_protocol(&b)),
            Err(Incompatible::DiscardMyData)
        );
        b.discard_my_data = false;
        b.allow_two_primaries = true;
        assert_eq!(
            check_protocol(&a, &our_protocol(&b)),
            Err(Incompatible::TwoPrimaries)
        );
        b.allow_two_primaries = false;
        b.integrity_alg = heapless::Vec::from_slice(b"sha1").unwrap();
        assert_eq!(
            check_protocol(&a, &our_protocol(&b)),
            Err(Incompatible::IntegrityAlg)
        );
    }
}
