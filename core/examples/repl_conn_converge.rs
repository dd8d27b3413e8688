//! How fast crossed connects converge: both nodes start connecting at the same instant, for
//! 1000 seeds on the simulated network of tests/common/repl_sim.rs; prints the virtual time to
//! Connected (also as a ratio to connect-int) and the TCP connections opened, as percentiles.
//!
//! `cargo run -p keelson-core --example repl_conn_converge --release`

#[path = "../tests/common/repl_sim.rs"]
mod sim;

use keelson_core::repl::conn::{Config, DiskState, Generation, VolumeConfig};

fn main() {
    let g = Generation {
        current: 0xA000,
        ..Generation::just_created()
    };
    let v = [VolumeConfig::new(0, g, DiskState::UpToDate, 1 << 21)];
    let mut times = Vec::new();
    let mut links = Vec::new();
    let seeds = 1000u64;
    for seed in 0..seeds {
        let configs = [Config::new(0, 1), Config::new(1, 0)];
        let mut s = sim::Sim::new(configs, [&v, &v], [seed, !seed]);
        s.nodes[0].connect(0);
        s.nodes[1].connect(0);
        assert!(
            s.run_to_connected(3_600_000),
            "seed {seed} did not converge"
        );
        times.push(s.now);
        links.push(s.links_opened() as u64);
    }
    times.sort_unstable();
    links.sort_unstable();
    let pct = |v: &[u64], p: usize| v[(v.len() - 1) * p / 100];
    let connect_int = Config::new(0, 1).connect_int_ms as f64;
    println!("{seeds} seeds, both nodes connect at t=0 (connect-int {connect_int} ms)");
    for p in [50, 90, 99, 100] {
        println!(
            "p{p:<3} time to Connected {:>7} ms = {:.2} x connect-int, TCP connections opened {}",
            pct(&times, p),
            pct(&times, p) as f64 / connect_int,
            pct(&links, p)
        );
    }
}
