//! What the per-resource machine costs, on the two-node simulator of tests/common/node_sim.rs:
//!
//! 1. resync after a cut link: resync data bytes sent / bytes dirtied while cut, for several
//!    dirty fractions (1.00 means exactly the dirty blocks travel), and all wire bytes / dirty;
//! 2. wire bytes per application byte for protocols A, B and C (4 KiB writes);
//! 3. CPU: application megabytes per second of wall time pushed through both nodes (core work
//!    plus the simulator's copies), protocol C, 64 KiB writes.
//!
//! `cargo run -p keelson-core --example repl_node_resync --release`

#[path = "../tests/common/node_sim.rs"]
mod sim;

use std::time::Instant;

use keelson_core::repl::conn::{Config, ConnState, ReplState, WireProtocol};
use keelson_core::repl::node::{md_flag, MetaState, NodeConfig, NodeError};
use sim::Sim;

const SIZE: usize = 64 << 20;
const SECTORS: u64 = (SIZE / 512) as u64;

fn pair(protocol: WireProtocol) -> Sim {
    let mk = |me, peer| {
        let mut c = Config::new(me, peer);
        c.protocol = protocol;
        let mut n = NodeConfig::new(c);
        n.resync_rate = 0;
        n
    };
    let mut m = MetaState::new(SECTORS);
    m.generation.current = 0xA11CE;
    m.flags |= md_flag::CONSISTENT | md_flag::WAS_UP_TO_DATE;
    let mut s = Sim::new([mk(0, 1), mk(1, 0)], [m, m], SIZE, [1, 2]);
    for n in 0..2 {
        s.n(n).connect(0, false).unwrap();
    }
    assert!(s.run_to(600_000, established));
    let now = s.now;
    s.n(0).primary(now, false).unwrap();
    s
}

fn established(s: &mut Sim) -> bool {
    (0..2).all(|n| {
        s.n(n).connection().conn_state() == ConnState::Connected
            && s.n(n).repl() == ReplState::Established
    })
}

fn write(s: &mut Sim, sector: u64, data: &[u8]) {
    loop {
        match s.write(0, sector, data) {
            Ok(_) => return,
            Err(NodeError::Busy) => {
                if !s.step() {
                    s.tick(1);
                }
            }
            Err(e) => panic!("{e}"),
        }
    }
}

fn wire_bytes(s: &Sim) -> u64 {
    s.log.iter().map(|&(_, _, len)| u64::from(len) + 16).sum()
}

fn main() {
    println!("resync after a cut link ({} MiB device)", SIZE >> 20);
    println!("  dirty%   dirty MiB   resync data / dirty   all wire bytes / dirty");
    for percent in [1u64, 10, 50] {
        let mut s = pair(WireProtocol::C);
        s.cut();
        let blocks = SIZE as u64 / 4096;
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        for _ in 0..blocks * percent / 100 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            write(&mut s, (x % blocks) * 8, &[x as u8; 4096]);
        }
        s.tick(100);
        let dirty = s.n(0).out_of_sync_bits() * 4096;
        let before = wire_bytes(&s);
        s.heal();
        assert!(s.run_to(3_600_000, |s| established(s)
            && s.n(0).out_of_sync_bits() == 0));
        s.tick(100);
        let rs = s.bytes_of(1, keelson_core::repl::wire::Command::RsDataReply)
            - 24 * s.count_of(1, keelson_core::repl::wire::Command::RsDataReply) as u64;
        let all = wire_bytes(&s) - before;
        assert!(s.hosts[0].data == s.hosts[1].data);
        println!(
            "  {percent:>5}   {:>9.2}   {:>19.3}   {:>22.3}",
            dirty as f64 / f64::from(1 << 20),
            rs as f64 / dirty as f64,
            all as f64 / dirty as f64
        );
    }

    println!("wire bytes per application byte, 4 KiB writes");
    for protocol in [WireProtocol::A, WireProtocol::B, WireProtocol::C] {
        let mut s = pair(protocol);
        let before = wire_bytes(&s);
        for k in 0..4096u64 {
            write(&mut s, (k * 8) % SECTORS, &[k as u8; 4096]);
        }
        s.tick(100);
        let all = wire_bytes(&s) - before;
        println!("  {protocol:?}: {:.4}", all as f64 / (4096.0 * 4096.0));
    }

    let mut s = pair(WireProtocol::C);
    let data = vec![0x5Au8; 64 << 10];
    let t = Instant::now();
    let total = 512u64;
    for k in 0..total {
        write(&mut s, (k * 128) % SECTORS, &data);
    }
    s.tick(100);
    let secs = t.elapsed().as_secs_f64();
    println!(
        "CPU: {:.0} MB/s of protocol-C writes through both nodes and the simulator",
        (total * (64 << 10)) as f64 / secs / 1e6
    );
}
