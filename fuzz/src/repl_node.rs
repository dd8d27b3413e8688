//! The per-resource DRBD machine (`keelson_core::repl::node`) as two nodes on the simulated
//! network and disks of `core/tests/common/node_sim.rs`, driven by an arbitrary sequence of
//! application writes, reads and flushes, administrative commands (primary/secondary with and
//! without force, connect with and without discard-my-data, disconnect, invalidate,
//! invalidate-remote, pause/resume, new-current-uuid), clock steps, link cuts, crashes with
//! restarts from the persisted disks, flipped bytes in flight and injected raw bytes.
//!
//! Checked besides "no panic": every disk completion the node handed out is accepted, no
//! deadline is reported that nothing acts on (the simulator asserts both), no event or
//! completion is dropped, and — when nothing was garbled or injected and no bitmap was
//! cleared by `new-current-uuid --clear-bitmap` — two nodes that end
//! Established, UpToDate and with no out-of-sync bits have byte-identical disks.

#[path = "../../core/tests/common/node_sim.rs"]
mod sim;

use crate::input::Input;
use keelson_core::repl::conn::{Config, ConnState, DiskState, ReplState, WireProtocol};
use keelson_core::repl::node::{md_flag, MetaState, NodeConfig};
use sim::Sim;

const SIZE: usize = 1 << 20;
const SECTORS: u64 = (SIZE / 512) as u64;

fn cfg(me: u32, peer: u32, protocol: WireProtocol, rate: u64) -> NodeConfig {
    let mut c = Config::new(me, peer);
    c.protocol = protocol;
    let mut n = NodeConfig::new(c);
    n.resync_rate = rate;
    n.resync_request = 16 << 10;
    n.max_write = 64 << 10;
    n.al_ring_records = 2;
    n
}

fn meta(kind: u8) -> MetaState {
    let mut m = MetaState::new(SECTORS);
    match kind % 3 {
        0 => {}
        1 => {
            m.generation.current = 0xC0FF_EE00;
            m.flags |= md_flag::CONSISTENT | md_flag::WAS_UP_TO_DATE;
        }
        _ => {
            m.generation.current = 0xC0FF_EE00;
            m.generation.bitmap = 0xB0B0_0000;
            m.flags |= md_flag::CONSISTENT;
        }
    }
    m
}

/// Fuzz entry point.
pub fn check(data: &[u8]) {
    let mut input = Input(data);
    let Some(setup) = input.u8() else { return };
    let protocol = match setup % 3 {
        0 => WireProtocol::A,
        1 => WireProtocol::B,
        _ => WireProtocol::C,
    };
    let rate = if setup & 0x08 != 0 { 1 << 20 } else { 0 };
    let m = input.u8().unwrap_or(0);
    let mut s = Sim::new(
        [cfg(0, 1, protocol, rate), cfg(1, 0, protocol, rate)],
        [meta(m), meta(m >> 2)],
        SIZE,
        [u64::from(setup), u64::from(m) + 7],
    );
    s.io_latency = u64::from(setup >> 5);
    let mut tampered = false;
    let mut seq = 0u64;
    for _ in 0..48 {
        let Some(op) = input.u8() else { break };
        let n = usize::from(op & 1);
        let now = s.now;
        let up = s.hosts[n].node.is_some();
        match op >> 1 {
            0..=15 => {
                if up {
                    let sector = u64::from(input.u16().unwrap_or(0)) % SECTORS;
                    let blocks = usize::from(input.u8().unwrap_or(1) % 32 + 1);
                    seq += 1;
                    let data: Vec<u8> = (0..blocks * 512)
                        .map(|i| (seq as usize * 31 + i) as u8)
                        .collect();
                    let _ = s.write(n, sector.min(SECTORS - blocks as u64), &data);
                }
            }
            16..=31 => s.tick(u64::from(input.u8().unwrap_or(0)) * 8),
            32..=35 => {
                s.step();
            }
            36 => s.cut(),
            37 => s.heal(),
            38 => {
                if up {
                    s.crash(n);
                }
            }
            39 => {
                if !up {
                    s.restart(n);
                }
            }
            40..=43 if up => {
                let _ = s.n(n).primary(now, op & 2 != 0);
            }
            44..=45 if up => {
                let _ = s.n(n).secondary(now);
            }
            46..=49 if up => {
                let _ = s.n(n).connect(now, op & 2 != 0);
            }
            50 if up => {
                let _ = s.n(n).disconnect(now);
            }
            51 if up => {
                let _ = s.n(n).invalidate(now);
            }
            52 if up => {
                let _ = s.n(n).invalidate_remote(now);
            }
            53 if up => {
                let _ = s.n(n).pause_sync(now);
            }
            54 if up => {
                let _ = s.n(n).resume_sync(now);
            }
            55 if up => {
                // Clearing the bitmap forgets differences on purpose.
                let clear = op & 2 != 0;
                tampered |= s.n(n).new_current_uuid(now, clear).is_ok() && clear;
            }
            56 if up => {
                let sector = u64::from(input.u8().unwrap_or(0));
                let _ = s.n(n).submit_read(now, sector, 4096);
            }
            57 if up => {
                let _ = s.n(n).submit_flush(now);
            }
            58..=61 => {
                let at = usize::from(input.u16().unwrap_or(0));
                let xor = input.u8().unwrap_or(1);
                tampered |= s.garble(n, at, xor);
            }
            62..=63 => {
                let len = usize::from(input.u8().unwrap_or(0) % 64);
                let bytes = input.bytes(len).to_vec();
                let which = usize::from(op >> 7);
                tampered |= s.inject(n, which, &bytes);
            }
            _ => {}
        }
        for h in &s.hosts {
            if let Some(node) = h.node.as_ref() {
                assert_eq!(node.lost(), 0, "events or completions dropped");
            }
        }
    }
    // Let it settle: everything up, the link healed, time for reconnects and resyncs.
    s.heal();
    for n in 0..2 {
        if s.hosts[n].node.is_none() {
            s.restart(n);
        }
    }
    s.run_until(s.now + 600_000);
    let settled = (0..2).all(|n| {
        let node = s.n(n);
        node.connection().conn_state() == ConnState::Connected
            && node.repl() == ReplState::Established
            && node.disk() == DiskState::UpToDate
            && node.out_of_sync_bits() == 0
    });
    if settled && !tampered {
        assert!(
            s.hosts[0].data == s.hosts[1].data,
            "established, up to date and in sync, yet the disks differ"
        );
    }
}
