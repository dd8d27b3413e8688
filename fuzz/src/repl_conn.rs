//! The DRBD connection machine (`keelson_core::repl::conn`) under arbitrary inputs, two ways
//! (first byte, bit 7):
//!
//! - **raw** (0): one machine fed a sequence of socket events, timer jumps, user commands and
//!   byte chunks (arbitrary bytes, or a well-formed header with an arbitrary command and
//!   payload) on a few socket ids;
//! - **pair** (1): two machines on the simulated network of `core/tests/common/repl_sim.rs`
//!   (settings and UUIDs picked by the input) while the input flips, truncates or drops packets
//!   in flight. The simulator also checks that every packet sent parses with the wire layer.
//!
//! Besides "no panic", after every step: the connection state matches the handshake phase
//! (StandAlone ⇔ Idle, Connected ⇔ Connected, otherwise Connecting — the transient reason
//! states never linger), volumes have no replication state before the peer's parameters are in,
//! every transmitted packet parses, and a disconnect (protocol errors included) leaves no socket
//! behind and closes each socket the machine held. Two Connected machines hold the two ends of
//! the same data and meta connections, and exactly one of them holds RESOLVE_CONFLICTS.

#[path = "../../core/tests/common/repl_sim.rs"]
mod sim;

use std::collections::BTreeSet;

use crate::input::Input;
use keelson_core::repl::conn::{
    Action, AfterSb, Auth, Config, ConnState, DiskState, Event, Generation, Phase, ReplState, Role,
    SocketId, SocketRole, SplitMix64, VolumeConfig, WireProtocol,
};
use keelson_core::repl::wire::auth::HmacAlg;
use keelson_core::repl::wire::header::{Header100Fields, Header80Fields, MAGIC_100, MAGIC_80};
use keelson_core::repl::wire::{Agreed, Frame};

/// Fuzz entry point.
pub fn check(data: &[u8]) {
    let mut input = Input(data);
    let Some(first) = input.u8() else { return };
    if first & 0x80 == 0 {
        raw(first, input);
    } else {
        pair(first, input);
    }
}

const GENS: [Generation; 6] = [
    Generation {
        current: 4,
        bitmap: 0,
        history: [0, 0],
        crashed_primary: false,
    },
    Generation {
        current: 0xA000,
        bitmap: 0,
        history: [0x9000, 0],
        crashed_primary: false,
    },
    Generation {
        current: 0xB000,
        bitmap: 0xA000,
        history: [0x9000, 0],
        crashed_primary: false,
    },
    Generation {
        current: 0xC001,
        bitmap: 0xA001,
        history: [0x9000, 0],
        crashed_primary: true,
    },
    Generation {
        current: 0xD000,
        bitmap: 0,
        history: [0xA000, 0x9000],
        crashed_primary: false,
    },
    Generation {
        current: 0xE000,
        bitmap: 0xF000,
        history: [0x1000, 0],
        crashed_primary: false,
    },
];

fn config(node: u32, bits: u8) -> Config {
    let mut c = Config::new(node, 1 - node);
    if bits & 1 != 0 {
        c.auth = Auth::new(HmacAlg::Sha256, if bits & 2 != 0 { b"a" } else { b"b" });
    }
    if bits & 4 != 0 {
        c.protocol = WireProtocol::B;
    }
    if bits & 8 != 0 {
        c.discard_my_data = true;
    }
    if bits & 16 != 0 {
        c.after_sb_0p = AfterSb::DiscardLeastChanges;
    }
    c.ping_int_ms = 1_000;
    c.connect_int_ms = 2_000;
    c
}

fn volume(number: u16, pick: u8) -> VolumeConfig {
    let g = GENS[usize::from(pick) % GENS.len()];
    let disk = if pick & 0x40 != 0 {
        DiskState::Inconsistent
    } else {
        DiskState::UpToDate
    };
    let mut v = VolumeConfig::new(number, g, disk, 1 << 20);
    v.dirty_bits = u64::from(pick >> 3);
    v
}

/// Invariants of one machine at rest.
fn check_machine<const V: usize>(m: &keelson_core::repl::conn::Connection<SplitMix64, V>) {
    let (conn, phase) = (m.conn_state(), m.phase());
    match phase {
        Phase::Idle => assert_eq!(conn, ConnState::StandAlone),
        Phase::Connected => assert_eq!(conn, ConnState::Connected),
        _ => assert_eq!(conn, ConnState::Connecting, "{phase:?}"),
    }
    if phase < Phase::Params {
        for v in m.volumes() {
            assert_eq!(
                v.repl(),
                ReplState::Off,
                "volume {} before Params",
                v.number()
            );
        }
    }
    if phase >= Phase::Settle {
        assert!(
            m.socket(SocketRole::Data).is_some() && m.socket(SocketRole::Meta).is_some(),
            "{phase:?} without both sockets"
        );
    }
}

/// One machine, arbitrary events and bytes.
fn raw(first: u8, mut input: Input<'_>) {
    let mut m = keelson_core::repl::conn::Connection::<SplitMix64, 2>::new(
        config(0, first),
        SplitMix64::new(u64::from(first)),
    )
    .expect("valid config");
    let _ = m.add_volume(volume(0, first.rotate_left(3)));
    if first & 0x20 != 0 {
        let _ = m.add_volume(volume(1, first));
    }
    let mut now = 0u64;
    let mut held: BTreeSet<SocketId> = BTreeSet::new();
    let mut buf = vec![0u8; 1 << 16];
    while let Some(op) = input.u8() {
        let id = SocketId(u32::from(op >> 4) & 3);
        let before: Vec<SocketId> = [SocketRole::Data, SocketRole::Meta]
            .iter()
            .filter_map(|&r| m.socket(r))
            .collect();
        match op & 0x0F {
            0 => m.connect(now),
            1 => m.disconnect(now),
            2 => m.handle_accepted(now, id),
            3 => m.handle_connected(now, id),
            4 => m.handle_connect_failed(now),
            5 => m.handle_closed(now, id),
            6 | 7 => {
                let n = usize::from(input.u8().unwrap_or(0));
                let bytes = input.bytes(n).to_vec();
                feed(&mut m, now, id, &bytes);
            }
            8 | 9 => {
                // A well-formed header with an arbitrary command, volume and payload.
                let command = input.u16().unwrap_or(0);
                let volume = input.u16().unwrap_or(0);
                let n = usize::from(input.u8().unwrap_or(0));
                let payload = input.bytes(n);
                let mut pkt = vec![0u8; 16];
                let hlen = if op & 1 == 0 {
                    Header80Fields {
                        magic: MAGIC_80,
                        command,
                        length: payload.len() as u16,
                    }
                    .emit(&mut pkt)
                } else {
                    Header100Fields {
                        magic: MAGIC_100,
                        volume,
                        command,
                        length: payload.len() as u32,
                        pad: 0,
                    }
                    .emit(&mut pkt)
                }
                .unwrap_or(0);
                pkt.truncate(hlen);
                pkt.extend_from_slice(payload);
                feed(&mut m, now, id, &pkt);
            }
            10 => now = now.saturating_add(u64::from(input.u16().unwrap_or(0))),
            11 => {
                now = m.poll_timeout().unwrap_or(now).max(now);
                m.handle_timeout(now);
            }
            12 => {
                let role = if op & 0x10 != 0 {
                    Role::Primary
                } else {
                    Role::Secondary
                };
                let _ = m.set_role(now, role);
            }
            13 => {
                let _ = m.set_disk(
                    0,
                    DiskState::from_number(u32::from(op >> 4)).unwrap_or(DiskState::UpToDate),
                );
            }
            _ => m.handle_timeout(now),
        }
        drain(&mut m, &mut held, &mut buf);
        let mut disconnected = false;
        while let Some(e) = m.poll_event() {
            if matches!(e, Event::Disconnected { .. }) {
                disconnected = true;
            }
        }
        if disconnected && m.phase() <= Phase::Sockets {
            // A disconnect closes every socket the machine had; the new attempt may already
            // hold fresh ones only if they were accepted after it, which no single op does.
            for id in &before {
                assert!(
                    !held.contains(id),
                    "socket {id:?} left open after a disconnect"
                );
            }
        }
        check_machine(&m);
    }
}

fn feed<const V: usize>(
    m: &mut keelson_core::repl::conn::Connection<SplitMix64, V>,
    now: u64,
    id: SocketId,
    bytes: &[u8],
) {
    let mut rest = bytes;
    while !rest.is_empty() {
        let r = m.handle_recv(now, id, rest);
        if r.used == 0 {
            break;
        }
        rest = rest.get(r.used..).unwrap_or(&[]);
    }
}

fn drain<const V: usize>(
    m: &mut keelson_core::repl::conn::Connection<SplitMix64, V>,
    held: &mut BTreeSet<SocketId>,
    buf: &mut [u8],
) {
    while let Some(a) = m.poll_action() {
        if let Action::Close(id) = a {
            held.remove(&id);
        }
    }
    for role in [SocketRole::Data, SocketRole::Meta] {
        if let Some(id) = m.socket(role) {
            held.insert(id);
        }
    }
    for id in (0..4).map(SocketId) {
        for _ in 0..64 {
            match m.poll_transmit(id, buf) {
                Ok(Some(n)) => {
                    let sent = buf.get(..n).unwrap_or(&[]);
                    let loose = Agreed {
                        pv: None,
                        ..m.agreed()
                    };
                    let parsed = Frame::parse(sent, &loose);
                    assert!(
                        matches!(parsed, Ok((_, used)) if used == n),
                        "sent packet does not parse: {parsed:?}"
                    );
                }
                Ok(None) => break,
                Err(e) => panic!("64 KiB is enough for every handshake packet: {e}"),
            }
        }
    }
}

/// Two machines, packets mutated in flight.
fn pair(first: u8, mut input: Input<'_>) {
    let bits = [input.u8().unwrap_or(0), input.u8().unwrap_or(0)];
    let picks = [input.u8().unwrap_or(1), input.u8().unwrap_or(1)];
    let configs = [config(0, bits[0]), config(1, bits[1])];
    let va = [volume(0, picks[0])];
    let vb = [volume(0, picks[1])];
    let mut s = sim::Sim::new(configs, [&va, &vb], [u64::from(first), u64::from(picks[0])]);
    // Mutations: (packet number, byte, xor); xor 0 drops the packet, 0xFF truncates it.
    let mut edits = Vec::new();
    while let (Some(k), Some(at), Some(x)) = (input.u8(), input.u8(), input.u8()) {
        edits.push((usize::from(k), usize::from(at), x));
    }
    let mut seen = 0usize;
    s.hook = Some(Box::new(move |p| {
        for &(k, at, x) in &edits {
            if k == seen {
                match x {
                    0 => p.bytes.clear(),
                    0xFF => p.bytes.truncate(at),
                    _ => {
                        if let Some(b) = p.bytes.get_mut(at) {
                            *b ^= x;
                        }
                    }
                }
            }
        }
        seen += 1;
    }));
    s.nodes[0].connect(0);
    s.nodes[1].connect(u64::from(first & 0x0F) * 100);
    let mut t = 0;
    for _ in 0..20 {
        t += 3_000;
        s.run_until(t);
        for m in &s.nodes {
            check_machine(m);
        }
        if s.nodes.iter().all(|m| m.phase() == Phase::Connected) {
            // Connected peers agree on the socket pair and on who holds RESOLVE_CONFLICTS.
            assert_ne!(
                s.nodes[0].resolve_conflicts(),
                s.nodes[1].resolve_conflicts()
            );
            for role in [SocketRole::Data, SocketRole::Meta] {
                let a = s.nodes[0].socket(role).expect("connected without a socket");
                assert_eq!(
                    s.peer_of(a),
                    s.nodes[1].socket(role),
                    "{role:?} sockets differ"
                );
            }
        }
    }
}
