//! Per-fop cost of translator layers in the no_std fop engine (translators.md §4).
//!
//! ```sh
//! cargo run --release -p keelson-linux --example xlator_bench
//! # options: --ops N (default 200000 per rep), --reps R (default 5)
//! ```
//!
//! - Each graph is volfile text: storage/ram at the bottom and a chain of 0, 1, 4 or 16 layers
//!   of one kind above it, parsed, built and run by `Engine` with a 64-frame pool.
//! - Layer kinds: `features/locks` (fstat and writev are not lock fops: a pure
//!   STACK_WIND_TAIL pass-through), `debug/trace` with logging off (tail-winds too), and
//!   `debug/io-stats` (a frame per layer: wind, callback, latency accounting, unwind).
//! - Fops: `fstat` on an open fd (the leaf does almost nothing, so the figure is the frame
//!   machinery) and `writev` of 4 KiB at offset 0 (a realistic leaf cost).
//! - ns/fop is the median over the reps of this thread's CPU time / ops (CPU time, because
//!   the machine is shared); "per layer" is
//!   (ns(depth) − ns(0)) / depth. A counting `#[global_allocator]` reports heap allocations
//!   during the timed loops (all figures must be 0).

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use keelson_core::xlator::args::{Fd, Request, RequestBytes, Xdata};
use keelson_core::xlator::builtin::Builtin;
use keelson_core::xlator::engine::{Engine, Topology};
use keelson_core::xlator::frame::Creds;
use keelson_core::xlator::graph::AnyDirectory;
use keelson_core::xlator::ram::{RamArena, RamFs};
use keelson_core::xlator::types::BUILTIN;
use keelson_core::xlator::{Graph, Volfile};

struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);

// SAFETY: every method forwards to `System` with the caller's arguments unchanged; the counter
// is only observed, never used to allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Relaxed);
        // SAFETY: forwarded contract.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Relaxed);
        // SAFETY: forwarded contract.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Relaxed);
        // SAFETY: forwarded contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded contract.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// This thread's CPU time in nanoseconds.
fn cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec.
    let r = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(r, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID) failed");
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

type Arena = RamArena<16, 16, 64, 4>;

const KINDS: [(&str, &str); 3] = [
    ("pass-through", "features/locks"),
    ("trace (off)", "debug/trace"),
    ("io-stats", "debug/io-stats"),
];

fn volfile(ty: &str, depth: usize) -> String {
    let mut s = String::from("volume v0\n type storage/ram\n option size-limit 0\nend-volume\n");
    for i in 1..=depth {
        s += &format!(
            "volume v{i}\n type {ty}\n subvolumes v{}\nend-volume\n",
            i - 1
        );
    }
    s
}

#[derive(Clone, Copy)]
enum Op {
    Fstat,
    Write4k,
}

type Eng<'a, 'm> = Engine<'a, Builtin<'m>, 64, 4, 16>;

/// One request through the graph and its reply; the buffer goes in and comes back.
fn step<'a>(
    e: &mut Eng<'a, '_>,
    buf: &mut Option<&'a mut [u8]>,
    now: &mut u64,
    build: &dyn Fn(&mut RequestBytes<'_>) -> Request,
) {
    *now += 1;
    let mut w = RequestBytes::new(buf.take().expect("buffer back"));
    let req = build(&mut w);
    let (b, len) = w.finish();
    let Ok(_) = e.handle_request(*now, Creds::default(), req, b, len) else {
        panic!("refused")
    };
    let c = e.poll_reply().expect("synchronous reply");
    assert!(c.reply.op_ret >= 0, "{:?}", c.reply);
    *buf = Some(c.buf);
}

/// ns per fop (median over reps) and heap allocations per fop, for one graph and fop.
fn measure(src: &str, op: Op, ops: u64, reps: usize) -> (f64, f64) {
    let vf: Volfile<'_, 24, 64, 24> = Volfile::parse(src.as_bytes()).expect("volfile");
    let mut g = Graph::build(&vf, BUILTIN).expect("graph");
    g.init(&mut AnyDirectory).expect("init");
    let topo = Topology::<24, 24>::from_graph(&g);
    let mut arena = Box::new(Arena::new());
    let mut one = Some(&mut *arena);
    let mut table = Builtin::table::<24, 24, 64, 24>(&g, 0, &mut |_, l, now| {
        one.take().map(|a| RamFs::new(a, l, now))
    })
    .expect("table");
    let mut store = vec![0u8; 8192];
    let mut e: Box<Eng<'_, '_>> = Box::new(Engine::new(topo.view(), &mut table).expect("engine"));
    let mut buf = Some(&mut store[..]);
    let mut now = 1u64;
    step(&mut e, &mut buf, &mut now, &|w| Request::Create {
        loc: w.path(b"/f").expect("room"),
        flags: 0o2,
        mode: 0o644,
        umask: 0,
        fd: Fd(1),
        xdata: Xdata::default(),
    });
    let data = [0x5a_u8; 4096];
    let build: &dyn Fn(&mut RequestBytes<'_>) -> Request = match op {
        Op::Fstat => &|_| Request::Fstat { fd: Fd(1) },
        Op::Write4k => &|w| Request::Writev {
            fd: Fd(1),
            data: w.put(&data).expect("room"),
            offset: 0,
            flags: 0,
        },
    };
    let mut times = Vec::with_capacity(reps);
    let a0 = ALLOCS.load(Relaxed);
    for _ in 0..reps {
        let t = cpu_ns();
        for _ in 0..ops {
            step(&mut e, &mut buf, &mut now, build);
        }
        times.push((cpu_ns() - t) as f64 / ops as f64);
    }
    // `times` was reserved up front, so the loops above allocate nothing of their own.
    let allocs = (ALLOCS.load(Relaxed) - a0) as f64 / (ops * reps as u64) as f64;
    let s = e.stats();
    assert_eq!((s.frames, s.live_frames, s.faults), (s.unwinds, 0, 0));
    black_box(&e);
    times.sort_by(f64::total_cmp);
    (times[times.len() / 2], allocs)
}

fn main() {
    let mut ops = 200_000u64;
    let mut reps = 5usize;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let v = args.next().and_then(|v| v.parse().ok());
        match (a.as_str(), v) {
            ("--ops", Some(n)) => ops = n,
            ("--reps", Some(n)) => reps = n as usize,
            _ => {
                eprintln!("usage: xlator_bench [--ops N] [--reps R]");
                std::process::exit(2);
            }
        }
    }
    println!("ops/rep {ops}, reps {reps}; ns/fop = median thread CPU time per fop");
    println!(
        "{:<14} {:>5} {:>12} {:>10} {:>13} {:>10} {:>9}",
        "layer", "depth", "fstat ns/fop", "per layer", "write4k ns/fop", "per layer", "allocs/op"
    );
    let base_f = measure(&volfile("", 0), Op::Fstat, ops, reps);
    let base_w = measure(&volfile("", 0), Op::Write4k, ops, reps);
    println!(
        "{:<14} {:>5} {:>12.1} {:>10} {:>13.1} {:>10} {:>9}",
        "(ram only)",
        0,
        base_f.0,
        "-",
        base_w.0,
        "-",
        base_f.1 + base_w.1
    );
    for (label, ty) in KINDS {
        for depth in [1, 4, 16] {
            let src = volfile(ty, depth);
            let f = measure(&src, Op::Fstat, ops, reps);
            let w = measure(&src, Op::Write4k, ops, reps);
            println!(
                "{:<14} {:>5} {:>12.1} {:>10.1} {:>13.1} {:>10.1} {:>9}",
                label,
                depth,
                f.0,
                (f.0 - base_f.0) / depth as f64,
                w.0,
                (w.0 - base_w.0) / depth as f64,
                f.1 + w.1
            );
        }
    }
}
