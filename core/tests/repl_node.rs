//! `repl::node` end to end: two nodes on virtual time with in-memory disks
//! (tests/common/node_sim.rs). Protocols A/B/C leave byte-identical disks; a cut link resyncs
//! exactly the dirty blocks; a primary that crashes mid-write comes back from its persisted
//! meta data, bitmap and activity log without losing an acknowledged protocol-C write; split
//! brain is refused until discard-my-data; invalidate, invalidate-remote, pause and resume.

#[path = "common/node_sim.rs"]
mod sim;

use keelson_core::repl::admin::{Failure, RetCode, StateError, Verb};
use keelson_core::repl::conn::{Config, ConnState, DiskState, ReplState, Role, WireProtocol};
use keelson_core::repl::node::{
    md_flag, Completion, MetaState, NodeConfig, NodeError, NodeEvent, SyncSide,
};
use keelson_core::repl::wire::Command;
use sim::Sim;

const SIZE: usize = 16 << 20;
const SECTORS: u64 = (SIZE / 512) as u64;
const MIN: u64 = 60_000;
const UUID: u64 = 0x5EED_0000_1234_0000;

fn cfg(me: u32, peer: u32, protocol: WireProtocol) -> NodeConfig {
    let mut c = Config::new(me, peer);
    c.protocol = protocol;
    let mut n = NodeConfig::new(c);
    n.resync_rate = 0;
    n
}

fn synced_meta() -> MetaState {
    let mut m = MetaState::new(SECTORS);
    m.generation.current = UUID;
    m.flags |= md_flag::CONSISTENT | md_flag::WAS_UP_TO_DATE;
    m
}

fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s as u8
        })
        .collect()
}

fn established(s: &mut Sim) -> bool {
    (0..2).all(|n| {
        let node = s.n(n);
        node.connection().conn_state() == ConnState::Connected
            && node.repl() == ReplState::Established
    })
}

fn settled(s: &mut Sim) -> bool {
    established(s) && (0..2).all(|n| s.n(n).disk() == DiskState::UpToDate)
}

fn pair(protocols: WireProtocol, metas: [MetaState; 2], seed: u64) -> Sim {
    Sim::new(
        [cfg(0, 1, protocols), cfg(1, 0, protocols)],
        metas,
        SIZE,
        [seed, seed ^ 0xABCD],
    )
}

fn connect(s: &mut Sim) {
    let now = s.now;
    for n in 0..2 {
        s.n(n).connect(now, false).unwrap();
    }
}

/// Two in-sync nodes, connected, node 0 primary.
fn synced_pair(protocol: WireProtocol, seed: u64) -> Sim {
    synced_pair_at(protocol, seed, 0)
}

/// [`synced_pair`] with a resync rate (bytes/s, 0 = unlimited).
fn synced_pair_at(protocol: WireProtocol, seed: u64, rate: u64) -> Sim {
    let mut cfgs = [cfg(0, 1, protocol), cfg(1, 0, protocol)];
    for c in &mut cfgs {
        c.resync_rate = rate;
    }
    let mut s = Sim::new(
        cfgs,
        [synced_meta(), synced_meta()],
        SIZE,
        [seed, seed ^ 0xABCD],
    );
    connect(&mut s);
    assert!(s.run_to(MIN, settled), "pair connects");
    let now = s.now;
    s.n(0).primary(now, false).unwrap();
    s.run_until(s.now + 10);
    s
}

/// Submits a write, stepping while the node is busy.
fn write(s: &mut Sim, n: usize, sector: u64, data: &[u8]) -> u64 {
    for _ in 0..100_000 {
        match s.write(n, sector, data) {
            Ok(id) => return id,
            Err(NodeError::Busy) => {
                if !s.step() {
                    s.tick(1);
                }
            }
            Err(e) => panic!("write refused: {e}"),
        }
    }
    panic!("write never accepted");
}

fn write_completions(s: &Sim, n: usize) -> Vec<(u64, bool, bool)> {
    s.hosts[n]
        .completions
        .iter()
        .filter_map(|c| match c {
            Completion::Write { id, ok, replicated } => Some((*id, *ok, *replicated)),
            _ => None,
        })
        .collect()
}

fn disks_equal(s: &Sim) -> bool {
    s.hosts[0].data == s.hosts[1].data
}

fn first_diff(s: &Sim) -> Option<usize> {
    s.hosts[0]
        .data
        .iter()
        .zip(&s.hosts[1].data)
        .position(|(a, b)| a != b)
}

fn rs_data_bytes(s: &Sim, to: usize) -> u64 {
    s.bytes_of(to, Command::RsDataReply) - 24 * s.count_of(to, Command::RsDataReply) as u64
}

fn resync_started(s: &Sim, n: usize) -> Vec<(SyncSide, u64)> {
    s.hosts[n]
        .events
        .iter()
        .filter_map(|e| match e {
            NodeEvent::ResyncStarted { side, bits } => Some((*side, *bits)),
            _ => None,
        })
        .collect()
}

#[test]
fn protocols_a_b_c_leave_identical_disks() {
    for (i, protocol) in [WireProtocol::A, WireProtocol::B, WireProtocol::C]
        .into_iter()
        .enumerate()
    {
        let mut s = synced_pair(protocol, 10 + i as u64);
        s.io_latency = 1;
        let mut expect = std::collections::HashMap::new();
        // Pass 1: one write per 64 KiB slot, so each completion can be checked on the peer.
        for k in 0..120u64 {
            let len = 512 * (1 + (k as usize * 37) % 128);
            let data = pattern(k + 100 * i as u64, len);
            let id = write(&mut s, 0, k * 128, &data);
            expect.insert(id, (k * 128, data));
            if k % 4 == 0 {
                s.tick(1);
            } else {
                s.step();
            }
            if protocol == WireProtocol::C {
                // Protocol C: a completed write is on the peer's disk already.
                for (id, ok, replicated) in write_completions(&s, 0) {
                    assert!(ok && replicated);
                    if let Some((sector, data)) = expect.remove(&id) {
                        let at = sector as usize * 512;
                        assert_eq!(
                            &s.hosts[1].data[at..at + data.len()],
                            &data[..],
                            "write {id}"
                        );
                    }
                }
            }
        }
        if protocol == WireProtocol::C {
            assert!(
                expect.len() < 100,
                "most completions were checked on the peer"
            );
        }
        // Pass 2: overlapping writes of all sizes; the last one wins on both disks.
        for k in 0..200u64 {
            let len = 512 * (1 + (k as usize * 53) % 256);
            let sector = (k * 7919) % (SECTORS - 256);
            let data = pattern(k ^ 0xFF, len);
            write(&mut s, 0, sector, &data);
            if k % 3 == 0 {
                s.step();
            }
        }
        s.run_until(s.now + 1000);
        let done = write_completions(&s, 0);
        assert_eq!(done.len(), 320, "{protocol:?}");
        let bad: Vec<_> = done.iter().filter(|c| !(c.1 && c.2)).collect();
        assert!(
            bad.is_empty(),
            "{protocol:?}: {} {:?}",
            bad.len(),
            s.hosts[1].events
        );
        assert!(
            disks_equal(&s),
            "{protocol:?}: first difference at {:?}",
            first_diff(&s)
        );
        assert_eq!(s.n(0).out_of_sync_bits(), 0);
        assert_eq!(
            s.n(0).status(0).writes_in_flight,
            0,
            "barrier acks drained the log"
        );
        assert!(s.count_of(0, Command::BarrierAck) > 0);
        assert_eq!(
            s.count_of(1, Command::RsDataReply),
            0,
            "{protocol:?}: no resync"
        );
        let acks = s.count_of(0, Command::WriteAck) + s.count_of(0, Command::RecvAck);
        match protocol {
            WireProtocol::A => assert_eq!(acks, 0),
            WireProtocol::B => assert_eq!(s.count_of(0, Command::RecvAck), 320),
            WireProtocol::C => assert_eq!(s.count_of(0, Command::WriteAck), 320),
        }
    }
}

#[test]
fn secondary_refuses_application_io() {
    let mut s = synced_pair(WireProtocol::C, 3);
    assert_eq!(s.write(1, 0, &[0; 512]), Err(NodeError::NotPrimary));
    let now = s.now;
    assert_eq!(s.n(1).submit_read(now, 0, 512), Err(NodeError::NotPrimary));
    assert_eq!(s.n(1).submit_flush(now), Err(NodeError::NotPrimary));
    // Two primaries are refused while connected.
    assert!(matches!(
        s.n(1).primary(now, false),
        Err(NodeError::Command(_))
    ));
    // Bad sizes name the problem.
    assert!(matches!(s.write(0, 0, &[0; 100]), Err(NodeError::Data(_))));
    assert!(matches!(
        s.write(0, SECTORS, &[0; 512]),
        Err(NodeError::Data(_))
    ));
    let r = s.n(0).submit_read(now, 8, 4096).unwrap();
    s.run_until(s.now + 10);
    assert!(s.hosts[0]
        .completions
        .contains(&Completion::Read { id: r, ok: true }));
}

#[test]
fn cut_link_resyncs_only_the_dirty_blocks() {
    let mut s = synced_pair(WireProtocol::C, 21);
    s.io_latency = 1;
    for k in 0..40u64 {
        write(&mut s, 0, k * 64, &pattern(k, 8192));
    }
    // Cut with writes in flight: they complete unreplicated and are marked dirty.
    s.step();
    let before = s.n(0).meta().generation;
    s.cut();
    // A primary that loses its peer starts a new data generation (§6.1).
    let after = s.n(0).meta().generation;
    assert_eq!(after.bitmap, before.current);
    assert_ne!(after.current & !1, before.current & !1);
    assert_eq!(s.n(1).meta().generation.current & !1, before.current & !1);
    let mut during = 0u64;
    for k in 0..60u64 {
        let sector = 20_000 + k * 40;
        write(&mut s, 0, sector, &pattern(1000 + k, 4096 * 3));
        during += 3;
        s.step();
    }
    s.run_until(s.now + 2000);
    let done = write_completions(&s, 0);
    assert_eq!(done.len(), 100, "writes continue while the link is down");
    assert!(done.iter().all(|&(_, ok, _)| ok));
    let unreplicated = done.iter().filter(|&&(_, _, r)| !r).count();
    assert!(unreplicated >= 60);
    let dirty = s.n(0).out_of_sync_bits();
    assert!(dirty >= during, "{dirty} dirty, {during} written while cut");
    assert!(
        dirty <= during + 40 * 2,
        "{dirty}: only unacked and cut-time writes"
    );
    let now = s.now;
    assert_eq!(s.n(0).status(now).conn, ConnState::Connecting);
    s.heal();
    assert!(s.run_to(s.now + MIN, |s| settled(s)
        && s.n(0).out_of_sync_bits() == 0));
    s.run_until(s.now + 100);
    let started = resync_started(&s, 0);
    assert_eq!(started, [(SyncSide::Source, dirty)]);
    assert_eq!(resync_started(&s, 1), [(SyncSide::Target, dirty)]);
    assert_eq!(
        rs_data_bytes(&s, 1),
        dirty * 4096,
        "exactly the dirty blocks"
    );
    assert!(disks_equal(&s), "first difference at {:?}", first_diff(&s));
    let g = (s.n(0).status(0).generation, s.n(1).status(0).generation);
    assert_eq!(g.0.current & !1, g.1.current & !1, "same data generation");
    assert_eq!((g.0.bitmap, g.1.bitmap), (0, 0));
    // Writes during the resync (and after) keep both in sync.
    for k in 0..20u64 {
        write(&mut s, 0, 5000 + k * 8, &pattern(7000 + k, 4096));
    }
    s.run_until(s.now + 100);
    assert!(disks_equal(&s));
}

#[test]
fn writes_during_resync_end_identical() {
    // Slow resync, so application writes overlap requests in flight.
    let mut s = synced_pair_at(WireProtocol::C, 31, 2 << 20);
    s.cut();
    for k in 0..200u64 {
        write(&mut s, 0, k * 64, &pattern(k, 32 * 1024));
    }
    s.run_until(s.now + 100);
    s.heal();
    assert!(s.run_to(s.now + MIN, |s| s.n(1).repl() == ReplState::SyncTarget));
    for k in 0..300u64 {
        let sector = (k * 97) % (200 * 64);
        write(
            &mut s,
            0,
            sector,
            &pattern(50_000 + k, 4096 * (1 + k as usize % 4)),
        );
        s.tick(3);
    }
    assert!(s.run_to(s.now + 10 * MIN, |s| settled(s)
        && s.n(0).out_of_sync_bits() == 0));
    s.run_until(s.now + 100);
    assert!(disks_equal(&s), "first difference at {:?}", first_diff(&s));
    assert_eq!(s.n(1).out_of_sync_bits(), 0);
}

#[test]
fn crashed_primary_comes_back_consistent() {
    let mut lost_in_flight = 0;
    for seed in 0..4u64 {
        let mut s = synced_pair(WireProtocol::C, 40 + seed);
        s.io_latency = 2;
        let mut data = std::collections::HashMap::new();
        for k in 0..80u64 {
            let d = pattern(k + seed * 1000, 4096 * (1 + k as usize % 3));
            let sector = (k * 331) % (SECTORS - 64) / 8 * 8;
            let sector = sector - sector % 64; // one write per 32 KiB slot, some slots reused
            let id = write(&mut s, 0, sector, &d);
            data.insert(id, (sector, d));
            s.tick(1);
            if k == 40 + seed * 7 {
                break;
            }
        }
        // Crash mid-write: whatever the disks have not completed is lost.
        let acked: Vec<u64> = write_completions(&s, 0).iter().map(|c| c.0).collect();
        assert!(acked.len() > 10, "seed {seed}: writes were acknowledged");
        lost_in_flight += data.len() - acked.len();
        s.crash(0);
        s.run_until(s.now + 1000);
        s.restart(0);
        let meta = sim::meta_of(&s.hosts[0]);
        assert!(meta.has(md_flag::PRIMARY_IND), "it was primary");
        assert!(
            s.n(0).out_of_sync_bits() > 0,
            "apply-al marked the hot extents"
        );
        assert_eq!(s.n(0).role(), Role::Secondary);
        let now = s.now;
        s.n(0).connect(now, false).unwrap();
        assert!(s.run_to(s.now + MIN, |s| settled(s)
            && s.n(0).out_of_sync_bits() == 0));
        s.run_until(s.now + 100);
        assert_eq!(
            resync_started(&s, 0).first().map(|r| r.0),
            Some(SyncSide::Source)
        );
        assert!(
            disks_equal(&s),
            "seed {seed}: first difference at {:?}",
            first_diff(&s)
        );
        // No acknowledged protocol-C write is lost (the last write to a slot wins).
        let mut last = std::collections::HashMap::new();
        for id in &acked {
            let (sector, d) = &data[id];
            last.insert(*sector, (*id, d.clone()));
        }
        for (sector, (id, d)) in last {
            let newer = data.iter().any(|(i, (s2, _))| *i > id && *s2 == sector);
            if newer {
                continue;
            }
            let at = sector as usize * 512;
            assert_eq!(
                &s.hosts[0].data[at..at + d.len()],
                &d[..],
                "seed {seed} write {id}"
            );
        }
        assert!(!s.n(0).meta().generation.crashed_primary);
    }
    assert!(lost_in_flight > 0, "some crashes hit writes in flight");
}

#[test]
fn split_brain_is_refused_then_discard_my_data_resolves_it() {
    let mut s = synced_pair(WireProtocol::C, 51);
    s.cut();
    s.run_until(s.now + 100);
    let now = s.now;
    s.n(1).primary(now, false).unwrap();
    let a = pattern(1, 64 * 1024);
    let b = pattern(2, 64 * 1024);
    write(&mut s, 0, 1000, &a);
    write(&mut s, 1, 1000, &b);
    write(&mut s, 1, 9000, &b);
    s.run_until(s.now + 100);
    s.heal();
    s.run_until(s.now + MIN);
    for n in 0..2 {
        assert!(
            s.hosts[n].events.iter().any(|e| matches!(
                e,
                NodeEvent::SplitBrain {
                    auto_recoverable: true
                }
            )),
            "node {n} reports the split brain"
        );
        assert_eq!(s.n(n).connection().conn_state(), ConnState::StandAlone);
    }
    assert_eq!(
        s.count_of(0, Command::RsDataReply) + s.count_of(1, Command::RsDataReply),
        0
    );
    assert_eq!(&s.hosts[0].data[1000 * 512..1000 * 512 + a.len()], &a[..]);
    assert_eq!(&s.hosts[1].data[1000 * 512..1000 * 512 + b.len()], &b[..]);
    // A Primary cannot be the side that discards; StandAlone has nothing to disconnect.
    let now = s.now;
    assert_eq!(s.n(1).connect(now, true), Err(NodeError::Primary));
    assert_eq!(
        Failure::of_node(Verb::Connect, NodeError::Primary),
        RetCode::DiscardImpossible.into()
    );
    assert_eq!(s.n(1).disconnect(now), Err(NodeError::StandAlone));
    assert_eq!(
        Failure::of_node(Verb::Disconnect, NodeError::StandAlone),
        StateError::AlreadyStandalone.into()
    );
    // Node 1 gives up its changes.
    s.n(1).secondary(now).unwrap();
    s.n(1).connect(now, true).unwrap();
    s.n(0).connect(now, false).unwrap();
    assert!(s.run_to(s.now + MIN, |s| settled(s)
        && s.n(1).out_of_sync_bits() == 0));
    s.run_until(s.now + 100);
    // Both sides' 64 KiB writes: 16 blocks at 1000 (both), 16 at 9000 (node 1 only).
    assert_eq!(resync_started(&s, 1), [(SyncSide::Target, 32)]);
    assert!(disks_equal(&s));
    assert_eq!(&s.hosts[1].data[1000 * 512..1000 * 512 + a.len()], &a[..]);
}

#[test]
fn invalidate_and_invalidate_remote_run_full_syncs() {
    let mut s = synced_pair(WireProtocol::C, 61);
    for k in 0..30u64 {
        write(&mut s, 0, k * 1000, &pattern(k, 8192));
    }
    s.run_until(s.now + 100);
    let now = s.now;
    assert_eq!(s.n(0).invalidate(now), Err(NodeError::Primary));
    s.n(1).invalidate(now).unwrap();
    assert!(s.run_to(s.now + MIN, |s| s.n(1).repl() != ReplState::Established));
    assert!(s.run_to(s.now + MIN, |s| settled(s)
        && s.n(1).out_of_sync_bits() == 0));
    s.run_until(s.now + 100);
    assert_eq!(rs_data_bytes(&s, 1), SIZE as u64, "full sync to node 1");
    assert!(disks_equal(&s));
    // invalidate-remote from the primary: node 1 again, in full.
    s.hosts[1].data[4096] ^= 0xFF; // a silent difference only a full sync repairs
    let now = s.now;
    s.n(0).invalidate_remote(now).unwrap();
    assert!(s.run_to(s.now + MIN, |s| s.n(0).repl() != ReplState::Established));
    assert!(s.run_to(s.now + MIN, |s| settled(s)
        && s.n(0).out_of_sync_bits() == 0));
    s.run_until(s.now + 100);
    assert_eq!(rs_data_bytes(&s, 1), 2 * SIZE as u64);
    assert!(disks_equal(&s));
    // Disconnected invalidate: the next handshake makes node 1 target, full.
    let now = s.now;
    s.n(1).disconnect(now).unwrap();
    s.run_until(s.now + 100);
    let now = s.now;
    s.n(1).invalidate(now).unwrap();
    assert_eq!(s.n(1).disk(), DiskState::Inconsistent);
    assert_eq!(s.n(1).out_of_sync_bits(), (SIZE / 4096) as u64);
    let now = s.now;
    s.n(1).connect(now, false).unwrap();
    assert!(s.run_to(s.now + MIN, |s| settled(s)
        && s.n(1).out_of_sync_bits() == 0));
    s.run_until(s.now + 100);
    assert_eq!(rs_data_bytes(&s, 1), 3 * SIZE as u64);
    assert!(disks_equal(&s));
}

#[test]
fn day_zero_full_sync_from_forced_primary() {
    let fresh = MetaState::new(SECTORS);
    let mut s = pair(WireProtocol::C, [fresh, fresh], 71);
    let now = s.now;
    assert_eq!(s.n(0).primary(now, false), Err(NodeError::NoUpToDateDisk));
    s.n(0).primary(now, true).unwrap();
    assert_eq!(s.n(0).disk(), DiskState::UpToDate);
    for k in 0..10u64 {
        write(&mut s, 0, k * 2048, &pattern(k, 65536));
    }
    connect(&mut s);
    assert!(s.run_to(MIN, |s| settled(s) && s.n(1).out_of_sync_bits() == 0));
    s.run_until(s.now + 100);
    assert_eq!(rs_data_bytes(&s, 1), SIZE as u64);
    assert!(disks_equal(&s));
    let (a, b) = (s.n(0).meta(), s.n(1).meta());
    assert_eq!(a.generation.current & !1, b.generation.current & !1);
    assert!(b.has(md_flag::CONSISTENT | md_flag::WAS_UP_TO_DATE));
}

#[test]
fn forced_primary_while_connected_starts_the_initial_sync() {
    let fresh = MetaState::new(SECTORS);
    let mut s = pair(WireProtocol::C, [fresh, fresh], 72);
    for k in 0..4u64 {
        let at = k as usize * 65536;
        s.hosts[0].data[at..at + 65536].copy_from_slice(&pattern(k, 65536));
    }
    connect(&mut s);
    assert!(s.run_to(MIN, established));
    assert_eq!(s.n(1).disk(), DiskState::Inconsistent);
    let now = s.now;
    s.n(0).primary(now, true).unwrap();
    assert!(s.run_to(s.now + MIN, |s| settled(s)
        && s.n(1).disk() == DiskState::UpToDate
        && s.n(1).out_of_sync_bits() == 0));
    s.run_until(s.now + 100);
    assert_eq!(rs_data_bytes(&s, 1), SIZE as u64);
    assert!(disks_equal(&s));
    let (a, b) = (s.n(0).meta(), s.n(1).meta());
    assert_ne!(
        a.generation.current & !1,
        4,
        "a new generation, not the just-created UUID"
    );
    assert_eq!(a.generation.current & !1, b.generation.current & !1);
}

#[test]
fn pause_and_resume() {
    let mut s = synced_pair_at(WireProtocol::C, 81, 4 << 20);
    let now = s.now;
    s.n(1).invalidate(now).unwrap();
    assert!(s.run_to(s.now + MIN, |s| s.n(1).repl() == ReplState::SyncTarget));
    let t = s.now + 500;
    s.run_to(t, |s| s.now >= t);
    let now = s.now;
    s.n(1).pause_sync(now).unwrap();
    s.run_until(s.now + 200);
    assert_eq!(s.n(1).repl(), ReplState::PausedSyncT);
    assert_eq!(s.n(0).repl(), ReplState::PausedSyncS);
    let now = s.now;
    let st = s.n(1).status(now);
    assert!(st.user_paused && st.resync.unwrap().paused);
    let before = rs_data_bytes(&s, 1);
    assert!(before > 0 && before < SIZE as u64);
    let t = s.now + 5000;
    s.run_to(t, |s| s.now >= t);
    assert_eq!(rs_data_bytes(&s, 1), before, "nothing moves while paused");
    let now = s.now;
    s.n(1).resume_sync(now).unwrap();
    assert!(s.run_to(s.now + 10 * MIN, |s| settled(s)
        && s.n(1).out_of_sync_bits() == 0));
    s.run_until(s.now + 100);
    assert!(disks_equal(&s));
}

#[test]
fn protocol_c_flush_waits_for_the_barrier_ack() {
    let mut s = synced_pair(WireProtocol::C, 91);
    s.io_latency = 5;
    write(&mut s, 0, 0, &pattern(1, 4096));
    let now = s.now;
    let f = s.n(0).submit_flush(now).unwrap();
    s.run_until(s.now + 100);
    let at = |s: &Sim, c: Completion| s.hosts[0].completions.iter().position(|x| *x == c);
    let flush = at(&s, Completion::Flush { id: f, ok: true }).expect("flush completes");
    assert!(
        at(
            &s,
            Completion::Write {
                id: 1,
                ok: true,
                replicated: true
            }
        )
        .unwrap()
            < flush
    );
    assert_eq!(
        s.n(0).status(0).writes_in_flight,
        0,
        "barrier-acked before the flush completed"
    );
    // Without the peer the flush is local only.
    s.cut();
    s.tick(10);
    write(&mut s, 0, 8, &pattern(2, 4096));
    let now = s.now;
    let f = s.n(0).submit_flush(now).unwrap();
    s.tick(20);
    assert!(at(&s, Completion::Flush { id: f, ok: true }).is_some());
}

#[test]
fn crashed_secondary_resyncs_what_it_missed() {
    let mut s = synced_pair(WireProtocol::C, 95);
    s.io_latency = 2;
    for k in 0..30u64 {
        write(&mut s, 0, k * 16, &pattern(k, 8192));
        s.tick(1);
    }
    s.crash(1);
    for k in 0..30u64 {
        write(&mut s, 0, 4000 + k * 16, &pattern(100 + k, 8192));
    }
    s.tick(1000);
    s.restart(1);
    assert_eq!(
        s.n(1).out_of_sync_bits(),
        0,
        "a secondary has no activity log to apply"
    );
    let now = s.now;
    s.n(1).connect(now, false).unwrap();
    assert!(s.run_to(s.now + MIN, |s| settled(s)
        && s.n(0).out_of_sync_bits() == 0));
    s.run_until(s.now + 100);
    assert_eq!(
        resync_started(&s, 1).first().map(|r| r.0),
        Some(SyncSide::Target)
    );
    assert!(disks_equal(&s), "first difference at {:?}", first_diff(&s));
}

#[test]
fn clean_detach_restarts_without_apply_al() {
    let mut s = synced_pair(WireProtocol::C, 97);
    for k in 0..10u64 {
        write(&mut s, 0, k * 3000, &pattern(k, 4096));
    }
    s.run_until(s.now + 100);
    let now = s.now;
    assert_eq!(s.n(0).detach(now), Err(NodeError::Primary));
    s.n(0).secondary(now).unwrap();
    assert_eq!(s.n(0).detach(now), Err(NodeError::Connected));
    s.n(0).disconnect(now).unwrap();
    s.n(0).detach(now).unwrap();
    assert_eq!(s.n(0).disk(), DiskState::Diskless);
    s.run_until(s.now + 100);
    let meta = sim::meta_of(&s.hosts[0]);
    assert!(meta.has(md_flag::AL_CLEAN) && !meta.has(md_flag::PRIMARY_IND));
    s.crash(0);
    s.restart(0);
    assert_eq!(s.n(0).out_of_sync_bits(), 0);
    assert_eq!(s.n(0).disk(), DiskState::UpToDate);
    // Re-attach on a running node works the same way.
    let now = s.now;
    s.n(0).detach(now).unwrap();
    s.run_until(s.now + 10);
    let meta = sim::meta_of(&s.hosts[0]);
    let ring = s.hosts[0].al.clone();
    let now = s.now;
    s.n(0).attach(now, meta, &ring).unwrap();
    assert_eq!(s.n(0).attach(now, meta, &ring), Err(NodeError::Attached));
    s.n(0).connect(now, false).unwrap();
    assert!(s.run_to(s.now + MIN, settled));
    assert_eq!(
        s.count_of(0, Command::RsDataReply) + s.count_of(1, Command::RsDataReply),
        0
    );
}

#[test]
fn failover_after_a_primary_crash() {
    let mut s = synced_pair(WireProtocol::C, 99);
    s.io_latency = 2;
    for k in 0..40u64 {
        write(&mut s, 0, k * 64, &pattern(k, 8192));
        s.tick(1);
    }
    s.crash(0);
    s.tick(1000);
    // The survivor takes over and writes on; its new generation records what it changes.
    let now = s.now;
    s.n(1).primary(now, false).unwrap();
    for k in 0..20u64 {
        write(&mut s, 1, k * 64 + 8, &pattern(500 + k, 4096));
    }
    s.tick(100);
    s.restart(0);
    let now = s.now;
    s.n(0).connect(now, false).unwrap();
    assert!(s.run_to(s.now + MIN, |s| settled(s)
        && s.n(1).out_of_sync_bits() == 0));
    s.run_until(s.now + 100);
    // The old primary's unreplicated writes (its activity log) are overwritten from the new one.
    assert_eq!(
        resync_started(&s, 0).first().map(|r| r.0),
        Some(SyncSide::Target)
    );
    assert!(disks_equal(&s), "first difference at {:?}", first_diff(&s));
    assert_eq!(s.n(1).role(), Role::Primary);
}
