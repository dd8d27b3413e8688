//! The DRBD connection machine between two nodes on a simulated network (tests/common/repl_sim.rs):
//! connect with and without CRAM-HMAC, crossed connects, authentication and compatibility
//! refusals, every row of the UUID compare table end to end, keep-alive and corruption.

#[path = "common/repl_sim.rs"]
mod sim;

use keelson_core::repl::conn::handshake::{AuthFailure, Incompatible};
use keelson_core::repl::conn::sync_handshake::{Decision, Refusal, Resolution, SyncOutcome};
use keelson_core::repl::conn::uuid_compare::Verdict;
use keelson_core::repl::conn::{
    AfterSb, Auth, Config, ConnState, DisconnectReason, DiskState, Event, Generation,
    ProtocolViolation, ReplState, Role, SocketRole, VolumeConfig, WireProtocol,
};
use keelson_core::repl::wire::auth::HmacAlg;
use keelson_core::repl::wire::{Command, Error as WireError};
use sim::Sim;

const MIN: u64 = 60_000;

fn configs() -> [Config; 2] {
    [Config::new(0, 1), Config::new(1, 0)]
}

fn gen(current: u64, bitmap: u64, h0: u64, h1: u64) -> Generation {
    Generation {
        current,
        bitmap,
        history: [h0, h1],
        crashed_primary: false,
    }
}

fn vol(g: Generation) -> VolumeConfig {
    VolumeConfig::new(0, g, DiskState::UpToDate, 1 << 21)
}

fn pair(configs: [Config; 2], a: Generation, b: Generation, seed: u64) -> Sim {
    Sim::new(configs, [&[vol(a)], &[vol(b)]], [seed, seed ^ 0x5555])
}

fn connect_both(s: &mut Sim, delay_b: u64) {
    s.nodes[0].connect(0);
    if delay_b == 0 {
        s.nodes[1].connect(0);
    } else {
        s.run_until(delay_b);
        s.now = delay_b;
        s.nodes[1].connect(delay_b);
    }
}

fn decision(s: &Sim, n: usize) -> Option<Decision> {
    s.events[n].iter().find_map(|e| match e {
        Event::SyncHandshake { decision, .. } => Some(*decision),
        _ => None,
    })
}

/// The packets a node sent on its data socket after the socket pair formed, in order.
fn data_commands(s: &Sim, n: usize) -> Vec<Command> {
    s.sent[n]
        .iter()
        .filter(|(_, c)| !matches!(c, Command::InitialData | Command::InitialMeta))
        .filter(|(_, c)| c.socket() == keelson_core::repl::wire::Socket::Data)
        .map(|&(_, c)| c)
        .collect()
}

#[test]
fn normal_connect_without_auth() {
    let g = gen(0xA000, 0, 0, 0);
    let mut s = pair(configs(), g, g, 1);
    connect_both(&mut s, 3_000);
    assert!(s.run_to_connected(MIN));
    for n in 0..2 {
        let m = &s.nodes[n];
        assert_eq!(m.conn_state(), ConnState::Connected);
        assert_eq!(m.agreed().pv, Some(101));
        assert_eq!(m.volume(0).unwrap().repl(), ReplState::Established);
        assert_eq!(m.volume(0).unwrap().peer_disk(), DiskState::UpToDate);
        assert_eq!(m.volume(0).unwrap().peer_role(), Role::Secondary);
        assert!(s.events[n].contains(&Event::Connected));
        // §4.5 order on the data socket.
        assert_eq!(
            data_commands(&s, n)[..6],
            [
                Command::ConnectionFeatures,
                Command::Protocol,
                Command::SyncParam89,
                Command::Sizes,
                Command::Uuids,
                Command::State
            ]
        );
        let d = decision(&s, n).unwrap();
        assert_eq!((d.compared.verdict, d.compared.rule), (Verdict::NoSync, 40));
    }
    // Exactly one node holds RESOLVE_CONFLICTS, and the sockets pair up role for role.
    assert_ne!(
        s.nodes[0].resolve_conflicts(),
        s.nodes[1].resolve_conflicts()
    );
    for role in [SocketRole::Data, SocketRole::Meta] {
        let a = s.nodes[0].socket(role).unwrap();
        assert_eq!(s.peer_of(a), s.nodes[1].socket(role));
    }
}

#[test]
fn normal_connect_with_auth() {
    let mut c = configs();
    for cfg in &mut c {
        cfg.auth = Auth::new(HmacAlg::Sha256, b"s3cret");
    }
    let g = gen(0xA000, 0, 0, 0);
    let mut s = pair(c, g, g, 2);
    connect_both(&mut s, 2_000);
    assert!(s.run_to_connected(MIN));
    for n in 0..2 {
        assert_eq!(
            data_commands(&s, n)[..4],
            [
                Command::ConnectionFeatures,
                Command::AuthChallenge,
                Command::AuthResponse,
                Command::Protocol
            ]
        );
    }
}

#[test]
fn crossed_connects_converge() {
    let mut retried = 0;
    for seed in 0..40 {
        let g = gen(0xA000, 0, 0, 0);
        let mut s = pair(configs(), g, g, seed);
        connect_both(&mut s, 0);
        assert!(s.run_to_connected(10 * MIN), "seed {seed} did not converge");
        assert_ne!(
            s.nodes[0].resolve_conflicts(),
            s.nodes[1].resolve_conflicts()
        );
        for role in [SocketRole::Data, SocketRole::Meta] {
            let a = s.nodes[0].socket(role).unwrap();
            assert_eq!(s.peer_of(a), s.nodes[1].socket(role), "seed {seed}");
        }
        // Both opened their data socket at once, so each dropped one as crossed.
        assert!(s.links_opened() >= 3, "seed {seed}: no crossing");
        if s.links_opened() > 4 {
            retried += 1;
        }
    }
    // Some seeds needed more than one round of the coin.
    assert!(retried > 0);
}

#[test]
fn wrong_secret_is_refused_by_both() {
    let mut c = configs();
    c[0].auth = Auth::new(HmacAlg::Sha1, b"one");
    c[1].auth = Auth::new(HmacAlg::Sha1, b"two");
    let g = gen(0xA000, 0, 0, 0);
    let mut s = pair(c, g, g, 3);
    connect_both(&mut s, 1_000);
    s.run_until(5 * MIN);
    for n in 0..2 {
        assert_eq!(s.nodes[n].conn_state(), ConnState::StandAlone);
        let r = s.reasons(n);
        assert_eq!(
            r,
            [DisconnectReason::AuthFailed(AuthFailure::WrongResponse)]
        );
        assert!(r[0].to_string().starts_with("authentication failed"));
    }
}

#[test]
fn auth_on_one_side_only_is_refused() {
    let mut c = configs();
    c[0].auth = Auth::new(HmacAlg::Sha256, b"k");
    let g = gen(0xA000, 0, 0, 0);
    let mut s = pair(c, g, g, 4);
    connect_both(&mut s, 1_000);
    s.run_until(MIN);
    assert_eq!(
        s.reasons(0)[0],
        DisconnectReason::AuthFailed(AuthFailure::NotOffered)
    );
    assert_eq!(s.nodes[0].conn_state(), ConnState::StandAlone);
    assert!(matches!(
        s.reasons(1)[0],
        DisconnectReason::ProtocolError(ProtocolViolation::Unexpected {
            command: Command::AuthChallenge,
            ..
        })
    ));
}

#[test]
fn reflected_challenge_is_refused() {
    let mut c = configs();
    for cfg in &mut c {
        cfg.auth = Auth::new(HmacAlg::Sha256, b"s3cret");
    }
    let g = gen(0xA000, 0, 0, 0);
    let mut s = pair(c, g, g, 5);
    // A man in the middle hands node 0 its own challenge back as node 1's.
    let mut seen: Option<Vec<u8>> = None;
    s.hook = Some(Box::new(move |p| {
        if p.command == Command::AuthChallenge {
            if p.from == 0 {
                seen = Some(p.bytes.clone());
            } else if let Some(own) = &seen {
                p.bytes.clone_from(own);
            }
        }
    }));
    connect_both(&mut s, 1_000);
    s.run_until(MIN);
    assert_eq!(
        s.reasons(0)[0],
        DisconnectReason::AuthFailed(AuthFailure::ReflectedChallenge)
    );
    assert_eq!(s.nodes[0].conn_state(), ConnState::StandAlone);
}

#[test]
fn incompatible_protocol_is_refused() {
    let mut c = configs();
    c[1].protocol = WireProtocol::A;
    let g = gen(0xA000, 0, 0, 0);
    let mut s = pair(c, g, g, 6);
    connect_both(&mut s, 1_000);
    s.run_until(MIN);
    assert_eq!(
        s.reasons(0)[0],
        DisconnectReason::Incompatible(Incompatible::WireProtocol {
            ours: WireProtocol::C,
            theirs: 1
        })
    );
    assert!(matches!(
        s.reasons(1)[0],
        DisconnectReason::Incompatible(Incompatible::WireProtocol { .. })
    ));
    // Mirrored policies are compatible; the same directional policy on both sides is not.
    let mut c = configs();
    c[0].after_sb_0p = AfterSb::DiscardLocal;
    c[1].after_sb_0p = AfterSb::DiscardRemote;
    let mut s = pair(c, g, g, 7);
    connect_both(&mut s, 1_000);
    assert!(s.run_to_connected(MIN));
    let mut c = configs();
    c[0].after_sb_0p = AfterSb::DiscardLocal;
    c[1].after_sb_0p = AfterSb::DiscardLocal;
    let mut s = pair(c, g, g, 8);
    connect_both(&mut s, 1_000);
    s.run_until(MIN);
    assert!(matches!(
        s.reasons(0)[0],
        DisconnectReason::Incompatible(Incompatible::AfterSb { primaries: 0, .. })
    ));
    // Both discard-my-data.
    let mut c = configs();
    c[0].discard_my_data = true;
    c[1].discard_my_data = true;
    let mut s = pair(c, g, g, 9);
    connect_both(&mut s, 1_000);
    s.run_until(MIN);
    assert_eq!(
        s.reasons(1)[0],
        DisconnectReason::Incompatible(Incompatible::DiscardMyData)
    );
}

/// One row of §6.3 end to end: node 0's and node 1's UUIDs, the rule each side reports, and
/// each side's replication state afterwards.
struct Row {
    name: &'static str,
    a: Generation,
    b: Generation,
    rules: [u16; 2],
    repl: [ReplState; 2],
}

#[test]
fn every_row_of_the_uuid_table() {
    use ReplState::*;
    let jc = 4;
    let mut crashed = gen(0xA000, 0, 0, 0);
    crashed.crashed_primary = true;
    let rows = [
        Row {
            name: "both just created",
            a: gen(jc, 0, 0, 0),
            b: gen(jc, 0, 0, 0),
            rules: [10, 10],
            repl: [Established, Established],
        },
        Row {
            name: "we are new",
            a: gen(jc, 0, 0, 0),
            b: gen(0xB000, 0, 0, 0),
            rules: [20, 30],
            repl: [WFBitMapT, WFBitMapS],
        },
        Row {
            name: "same generation",
            a: gen(0xA000, 0, 0x9000, 0),
            b: gen(0xA001, 0, 0x9000, 0),
            rules: [40, 40],
            repl: [Established, Established],
        },
        Row {
            name: "crashed primary",
            a: crashed,
            b: gen(0xA000, 0, 0, 0),
            rules: [40, 40],
            repl: [WFBitMapS, WFBitMapT],
        },
        Row {
            name: "missed resync-finished",
            a: gen(0xA000, 0x9000, 0x8000, 0),
            b: gen(0xA000, 0, 0x9000, 0x8000),
            rules: [34, 35],
            repl: [WFBitMapS, WFBitMapT],
        },
        Row {
            name: "peer has changes",
            a: gen(0xA000, 0, 0, 0),
            b: gen(0xB000, 0xA000, 0, 0),
            rules: [50, 70],
            repl: [WFBitMapT, WFBitMapS],
        },
        Row {
            name: "peer is newer by history",
            a: gen(0xA000, 0, 0, 0),
            b: gen(0xB000, 0, 0xA000, 0),
            rules: [60, 80],
            repl: [WFBitMapT, WFBitMapS],
        },
    ];
    for row in rows {
        let mut s = pair(configs(), row.a, row.b, 11);
        connect_both(&mut s, 1_000);
        assert!(s.run_to_connected(MIN), "{}", row.name);
        for n in 0..2 {
            let d = decision(&s, n).unwrap();
            assert_eq!(d.compared.rule, row.rules[n], "{} node {n}", row.name);
            assert_eq!(
                s.nodes[n].volume(0).unwrap().repl(),
                row.repl[n],
                "{} node {n}",
                row.name
            );
        }
        let full = matches!(
            decision(&s, 0).unwrap().result,
            Ok(SyncOutcome::Target { full: true } | SyncOutcome::Source { full: true })
        );
        assert_eq!(full, [20, 60].contains(&row.rules[0]), "{}", row.name);
    }
}

fn refused(a: Generation, b: Generation, c: [Config; 2]) -> Sim {
    let mut s = pair(c, a, b, 12);
    connect_both(&mut s, 1_000);
    s.run_until(MIN);
    s
}

#[test]
fn split_brain_is_detected_and_refused_without_a_policy() {
    // Rule 90: both changed since the same bitmap UUID.
    let (a, b) = (gen(0xB000, 0xC000, 0, 0), gen(0xD000, 0xC000, 0, 0));
    let s = refused(a, b, configs());
    for n in 0..2 {
        assert_eq!(s.nodes[n].conn_state(), ConnState::StandAlone);
        assert_eq!(
            decision(&s, n).unwrap().compared.verdict,
            Verdict::SplitBrainAutoRecover
        );
        assert_eq!(
            s.reasons(n),
            [DisconnectReason::Handshake {
                volume: 0,
                refusal: Refusal::SplitBrain {
                    auto_recoverable: true
                }
            }]
        );
        // Nobody's data was touched.
        assert_eq!(*s.nodes[n].volume(0).unwrap().generation(), [a, b][n]);
    }
    // Rule 100: only a history UUID in common.
    let (a, b) = (
        gen(0xB000, 0xE000, 0xC000, 0),
        gen(0xD000, 0xF000, 0x1000, 0xC000),
    );
    let s = refused(a, b, configs());
    for n in 0..2 {
        assert_eq!(decision(&s, n).unwrap().compared.rule, 100);
        assert_eq!(s.nodes[n].conn_state(), ConnState::StandAlone);
    }
    // Rule 1000: nothing in common.
    let s = refused(gen(0xB000, 0, 0, 0), gen(0xD000, 0, 0, 0), configs());
    for n in 0..2 {
        assert_eq!(
            s.reasons(n),
            [DisconnectReason::Handshake {
                volume: 0,
                refusal: Refusal::UnrelatedData
            }]
        );
    }
}

#[test]
fn discard_my_data_resolves_split_brain() {
    let (a, b) = (
        gen(0xB000, 0xE000, 0xC000, 0),
        gen(0xD000, 0xF000, 0xC000, 0),
    );
    let mut c = configs();
    c[1].discard_my_data = true;
    let mut s = pair(c, a, b, 13);
    connect_both(&mut s, 1_000);
    assert!(s.run_to_connected(MIN));
    assert_eq!(s.nodes[0].volume(0).unwrap().repl(), ReplState::WFBitMapS);
    assert_eq!(s.nodes[1].volume(0).unwrap().repl(), ReplState::WFBitMapT);
    for n in 0..2 {
        assert_eq!(
            decision(&s, n).unwrap().resolution,
            Some(Resolution::DiscardMyData)
        );
    }
    assert!(
        !s.nodes[1].config().discard_my_data,
        "used once, then cleared"
    );
}

#[test]
fn after_sb_policy_resolves_split_brain() {
    let (a, b) = (gen(0xB000, 0xC000, 0, 0), gen(0xD000, 0xC000, 0, 0));
    let mut c = configs();
    for cfg in &mut c {
        cfg.after_sb_0p = AfterSb::DiscardLeastChanges;
    }
    let mut va = vol(a);
    va.dirty_bits = 10;
    let mut vb = vol(b);
    vb.dirty_bits = 3;
    let mut s = Sim::new(c, [&[va], &[vb]], [14, 15]);
    connect_both(&mut s, 1_000);
    assert!(s.run_to_connected(MIN));
    assert_eq!(s.nodes[0].volume(0).unwrap().repl(), ReplState::WFBitMapS);
    assert_eq!(s.nodes[1].volume(0).unwrap().repl(), ReplState::WFBitMapT);
}

#[test]
fn ping_timeout_is_a_network_failure() {
    let g = gen(0xA000, 0, 0, 0);
    let mut s = pair(configs(), g, g, 16);
    connect_both(&mut s, 1_000);
    assert!(s.run_to_connected(MIN));
    let t = s.now;
    // Idle connections keep each other alive with pings.
    s.run_until(t + 5 * MIN);
    assert_eq!(s.nodes[0].conn_state(), ConnState::Connected);
    assert!(s.sent[0].iter().any(|(_, c)| *c == Command::Ping));
    assert!(s.sent[1].iter().any(|(_, c)| *c == Command::PingAck));
    // Node 1 goes silent: node 0's next ping gets no ack.
    s.blackhole[0] = true;
    let t = s.now;
    s.run_until(t + 15_000);
    assert_eq!(s.reasons(0)[0], DisconnectReason::NetworkFailure);
    assert!(s.events[0].contains(&Event::StateChanged {
        conn: ConnState::NetworkFailure
    }));
    assert_ne!(s.nodes[0].conn_state(), ConnState::StandAlone, "retries");
    // Once the network heals they find each other again.
    s.blackhole[0] = false;
    let t = s.now;
    assert!(s.run_to_connected(t + 10 * MIN));
}

#[test]
fn a_primary_that_loses_its_peer_starts_a_new_generation() {
    let g = gen(0xA000, 0, 0, 0);
    let mut s = pair(configs(), g, g, 17);
    connect_both(&mut s, 1_000);
    assert!(s.run_to_connected(MIN));
    s.nodes[0].set_role(s.now, Role::Primary).unwrap();
    while s.step() {}
    assert_eq!(s.nodes[1].volume(0).unwrap().peer_role(), Role::Primary);
    assert_eq!(
        s.nodes[1].set_role(s.now, Role::Primary),
        Err(keelson_core::repl::conn::CommandError::TwoPrimaries)
    );
    let now = s.now;
    s.nodes[1].disconnect(now);
    s.run_until(now + 1_000);
    let g0 = *s.nodes[0].volume(0).unwrap().generation();
    assert_eq!(g0.bitmap, 0xA000 | 1, "old current became the bitmap UUID");
    assert_ne!(g0.current & !1, 0xA000);
    // Back together, the primary is source by rule 70.
    s.nodes[1].connect(s.now);
    assert!(s.run_to_connected(s.now + MIN));
    assert_eq!(s.nodes[0].volume(0).unwrap().repl(), ReplState::WFBitMapS);
    assert_eq!(decision(&s, 1).map(|d| d.compared.rule), Some(40));
}

#[test]
fn corrupt_magic_is_a_protocol_error() {
    let g = gen(0xA000, 0, 0, 0);
    let mut s = pair(configs(), g, g, 18);
    let mut done = false;
    s.hook = Some(Box::new(move |p| {
        if p.from == 1 && p.command == Command::Protocol && !done {
            p.bytes[0] ^= 0xFF;
            done = true;
        }
    }));
    connect_both(&mut s, 1_000);
    s.run_until(MIN);
    assert!(matches!(
        s.reasons(0)[0],
        DisconnectReason::ProtocolError(ProtocolViolation::Wire(WireError::BadMagic { .. }))
    ));
    // It retries, and the retry connects.
    assert!(s.run_to_connected(5 * MIN));
}

#[test]
fn any_byte_corruption_never_panics() {
    // Flip each byte of each of node 1's handshake packets in turn.
    for packet in 0..8usize {
        for byte in [0usize, 3, 5, 7, 8, 11, 15, 16, 20, 24, 30, 40, 60, 80] {
            let g = gen(0xA000, 0, 0, 0);
            let mut s = pair(configs(), g, g, 19);
            let mut seen = 0usize;
            s.hook = Some(Box::new(move |p| {
                if p.from == 1 && !matches!(p.command, Command::InitialData | Command::InitialMeta)
                {
                    if seen == packet {
                        if let Some(b) = p.bytes.get_mut(byte) {
                            *b ^= 0x5A;
                        }
                    }
                    seen += 1;
                }
            }));
            connect_both(&mut s, 1_000);
            s.run_until(2 * MIN);
            for n in 0..2 {
                let st = s.nodes[n].conn_state();
                assert!(
                    matches!(
                        st,
                        ConnState::Connected | ConnState::Connecting | ConnState::StandAlone
                    ),
                    "packet {packet} byte {byte}: node {n} in {st}"
                );
            }
        }
    }
}

#[test]
fn two_volumes_share_one_connection() {
    let g = gen(0xA000, 0, 0, 0);
    let other = gen(0xB000, 0xA000, 0, 0);
    let mk = |n: u16, g| VolumeConfig::new(n, g, DiskState::UpToDate, 1 << 20);
    let mut s = Sim::new(
        configs(),
        [&[mk(0, g), mk(7, g)], &[mk(0, g), mk(7, other)]],
        [20, 21],
    );
    connect_both(&mut s, 1_000);
    assert!(s.run_to_connected(MIN));
    assert_eq!(s.nodes[0].volume(0).unwrap().repl(), ReplState::Established);
    assert_eq!(s.nodes[0].volume(7).unwrap().repl(), ReplState::WFBitMapT);
    assert_eq!(s.nodes[1].volume(7).unwrap().repl(), ReplState::WFBitMapS);
    // Unknown volume on the peer: a protocol error.
    let mut s = Sim::new(configs(), [&[mk(0, g)], &[mk(0, g), mk(7, g)]], [22, 23]);
    connect_both(&mut s, 1_000);
    s.run_until(MIN);
    assert!(matches!(
        s.reasons(0)[0],
        DisconnectReason::ProtocolError(ProtocolViolation::UnknownVolume { volume: 7 })
    ));
}

#[test]
fn a_silent_peer_times_the_handshake_out() {
    let g = gen(0xA000, 0, 0, 0);
    let mut s = pair(configs(), g, g, 24);
    // Node 1 announces its sockets, then falls silent: node 0 pairs the sockets, sends its
    // P_CONNECTION_FEATURES and waits in vain for node 1's.
    s.hook = Some(Box::new(|p| {
        if p.from == 1 && !matches!(p.command, Command::InitialData | Command::InitialMeta) {
            p.bytes.clear();
        }
    }));
    connect_both(&mut s, 1_000);
    s.run_until(2 * MIN);
    assert!(s.reasons(0).contains(&DisconnectReason::Timeout));
    assert!(s.events[0].contains(&Event::StateChanged {
        conn: ConnState::Timeout
    }));
    assert_eq!(s.nodes[0].conn_state(), ConnState::Connecting, "retries");
}

#[test]
fn a_dry_run_connect_decides_and_disconnects() {
    let g = gen(0xA000, 0, 0, 0);
    let b = gen(0xB000, 0xA000, 0, 0);
    let mut s = pair(configs(), g, b, 25);
    // Node 1 asks for a dry run (CF_DRY_RUN in P_PROTOCOL's conn_flags, byte 16..20 of the
    // payload after the 16-byte h100 header).
    s.hook = Some(Box::new(|p| {
        if p.from == 1 && p.command == Command::Protocol {
            p.bytes[16 + 19] |= 2;
        }
    }));
    connect_both(&mut s, 1_000);
    s.run_until(MIN);
    assert_eq!(decision(&s, 0).unwrap().compared.rule, 50);
    assert_eq!(s.reasons(0), [DisconnectReason::DryRun]);
    assert_eq!(s.nodes[0].conn_state(), ConnState::StandAlone);
}
