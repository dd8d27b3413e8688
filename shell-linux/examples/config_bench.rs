//! Config-tree benchmark: keelson-core's dm_config parser and writer against libdevmapper, side by
//! side in one run, on the same generated inputs and with the same clock (process CPU time).
//!
//! ```text
//! cargo run --release -p keelson-linux --example config_bench [-- --reps N] [--size BYTES]
//!     [--no-scaling] [--no-tight] [--no-verify]
//! ```
//!
//! - Inputs: `python3 $KEELSON_SHARED/oracles/lvm/gen_bench.py flat|nested [BYTES]` (LVM-metadata-
//!   like text, 10 MB by default) into a temporary directory. `KEELSON_SHARED` defaults to
//!   `<workspace>/../shared`.
//! - libdevmapper: `cc -O2 -o TMP/cfgrt $KEELSON_SHARED/oracles/lvm/cfgrt.c -ldevmapper`, then
//!   `cfgrt [-n] -b N < input`; its per-rep lines are parsed. If it cannot be built or run, only
//!   our figures are printed.
//! - Ours, per rep: parse into a fresh `Tree<Growable>` borrowing the input, then write into a
//!   `CountSink` (what cfgrt's counting callback does) and, separately, into a `Vec<u8>`. The
//!   no-alloc parser parses into one boxed `Tree<Fixed<…>>` reused across reps.
//! - Figures are medians over the reps; MB/s is 10^6 bytes per CPU second (input bytes for parse,
//!   output bytes for write), as cfgrt prints it.
//! - A counting `#[global_allocator]` reports heap allocations made during each parse.

use std::alloc::{GlobalAlloc, Layout, System};
use std::fmt::Write as _;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use keelson_core::config::{CountSink, ErrorKind, Fixed, Growable, ParseOptions, Tree};

// ---------------------------------------------------------------------------------------------
// Allocation counting

struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);
static ALLOC_BYTES: AtomicU64 = AtomicU64::new(0);

fn note_alloc(size: usize) {
    ALLOCS.fetch_add(1, Relaxed);
    ALLOC_BYTES.fetch_add(size as u64, Relaxed);
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged; the counters
// are only observed, never used to allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note_alloc(layout.size());
        // SAFETY: forwarded contract.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note_alloc(layout.size());
        // SAFETY: forwarded contract.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note_alloc(new_size);
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

/// (allocation calls, bytes requested) so far, reallocations included.
fn alloc_count() -> (u64, u64) {
    (ALLOCS.load(Relaxed), ALLOC_BYTES.load(Relaxed))
}

// ---------------------------------------------------------------------------------------------
// Clock

/// CPU time of the whole process in seconds (what cfgrt measures).
fn cpu_now() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec.
    let r = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    assert_eq!(r, 0, "clock_gettime(CLOCK_PROCESS_CPUTIME_ID) failed");
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

fn median(xs: &[f64]) -> f64 {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn mbps(bytes: usize, secs: f64) -> f64 {
    bytes as f64 / secs / 1e6
}

// ---------------------------------------------------------------------------------------------
// Measurements

/// Medians of one parse+write configuration.
#[derive(Clone, Copy, Debug)]
struct Timing {
    in_bytes: usize,
    out_bytes: usize,
    parse: f64,
    write: f64,
}

impl Timing {
    fn from_reps(reps: &[(f64, f64)], in_bytes: usize, out_bytes: usize) -> Timing {
        let p: Vec<f64> = reps.iter().map(|r| r.0).collect();
        let w: Vec<f64> = reps.iter().map(|r| r.1).collect();
        Timing {
            in_bytes,
            out_bytes,
            parse: median(&p),
            write: median(&w),
        }
    }
    fn parse_mbps(&self) -> f64 {
        mbps(self.in_bytes, self.parse)
    }
    fn write_mbps(&self) -> f64 {
        mbps(self.out_bytes, self.write)
    }
}

/// Runs `cfgrt [-n] -b reps < input` and parses its `rep N: …` lines.
fn run_cfgrt(cfgrt: &Path, input: &Path, keep: bool, reps: usize) -> Result<Timing, String> {
    let mut cmd = Command::new(cfgrt);
    if keep {
        cmd.arg("-n");
    }
    let file = std::fs::File::open(input).map_err(|e| format!("{}: {e}", input.display()))?;
    let out = cmd
        .arg("-b")
        .arg(reps.to_string())
        .stdin(file)
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("running {}: {e}", cfgrt.display()))?;
    if !out.status.success() {
        return Err(format!("cfgrt exited with {}", out.status));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let (mut in_bytes, mut out_bytes) = (0, 0);
    let mut times = Vec::new();
    for line in text.lines().filter(|l| l.starts_with("rep ")) {
        let (i, p, o, w) =
            parse_cfgrt_line(line).ok_or_else(|| format!("unexpected cfgrt line: {line}"))?;
        in_bytes = i;
        out_bytes = o;
        times.push((p, w));
    }
    if times.is_empty() {
        return Err("cfgrt printed no rep lines".into());
    }
    Ok(Timing::from_reps(&times, in_bytes, out_bytes))
}

/// `rep N: input X bytes parse(cpu) T s (M MB/s) write Y bytes T s (M MB/s)` →
/// (X, parse seconds, Y, write seconds).
fn parse_cfgrt_line(line: &str) -> Option<(usize, f64, usize, f64)> {
    let t: Vec<&str> = line.split_whitespace().collect();
    let after = |word: &str, k: usize| {
        t.iter()
            .position(|w| *w == word)
            .and_then(|i| t.get(i + k).copied())
    };
    Some((
        after("input", 1)?.parse().ok()?,
        after("parse(cpu)", 1)?.parse().ok()?,
        after("write", 1)?.parse().ok()?,
        after("write", 3)?.parse().ok()?,
    ))
}

/// Our growable-storage figures for one input and mode.
struct Ours {
    /// Parse into a fresh `Tree<Growable>`, write into a `CountSink`.
    count: Timing,
    /// Median write time into a fresh `Vec<u8>`.
    vec_write: f64,
    /// Allocation calls / bytes during one fresh parse (median).
    parse_allocs: (u64, u64),
    /// Allocation calls during a parse into a reused `Tree<Growable>` (after one warm-up).
    reused_allocs: u64,
    /// Median parse time into the reused tree.
    reused_parse: f64,
    /// The written text (for the byte-for-byte check against cfgrt).
    text: Vec<u8>,
}

fn bench_growable(input: &[u8], opts: ParseOptions, reps: usize) -> Ours {
    let mut times = Vec::new();
    let (mut vec_writes, mut calls, mut bytes) = (Vec::new(), Vec::new(), Vec::new());
    let mut out_bytes = 0;
    let mut text = Vec::new();
    for _ in 0..reps {
        let (c0, b0) = alloc_count();
        let t0 = cpu_now();
        let tree = Tree::<Growable>::from_text(black_box(input), opts)
            .expect("our parser rejected the input");
        let t1 = cpu_now();
        let (c1, b1) = alloc_count();
        let mut sink = CountSink(0);
        tree.view()
            .write(&mut sink)
            .expect("CountSink never overflows");
        let t2 = cpu_now();
        let mut v = Vec::new();
        tree.view().write(&mut v).expect("Vec never overflows");
        let t3 = cpu_now();
        black_box(&v);
        out_bytes = black_box(sink.0);
        times.push((t1 - t0, t2 - t1));
        vec_writes.push(t3 - t2);
        calls.push((c1 - c0) as f64);
        bytes.push((b1 - b0) as f64);
        text = v;
        drop(black_box(tree));
    }

    // The same, parsing again into one tree whose arenas already have room.
    let mut tree = Tree::<Growable>::empty();
    tree.parse(input, opts)
        .expect("our parser rejected the input");
    let mut reused = Vec::new();
    let mut reused_allocs = 0;
    for _ in 0..reps {
        let (c0, _) = alloc_count();
        let t0 = cpu_now();
        tree.parse(black_box(input), opts)
            .expect("our parser rejected the input");
        let t1 = cpu_now();
        reused_allocs = reused_allocs.max(alloc_count().0 - c0);
        reused.push(t1 - t0);
        black_box(&tree);
    }

    Ours {
        count: Timing::from_reps(&times, input.len(), out_bytes),
        vec_write: median(&vec_writes),
        parse_allocs: (median(&calls) as u64, median(&bytes) as u64),
        reused_allocs,
        reused_parse: median(&reused),
        text,
    }
}

/// Capacity of the no-alloc storage: enough for the default 10 MB inputs (about 340 000 nodes and
/// 357 000 values, no escaped strings) with room to spare, so the dup-check index (one slot per
/// node of capacity) stays below 85 % full.
const FIXED_NODES: usize = 400_000;
const FIXED_VALUES: usize = 400_000;
const FIXED_BYTES: usize = 4096;
/// Just enough nodes for either default input (flat needs 339 647, nested 339 817): the index
/// ends up 99.9 % full, which is how a `Fixed` sized to fit its input behaves.
const TIGHT_NODES: usize = 339_820;
type BigFixed<const N: usize> = Fixed<N, FIXED_VALUES, FIXED_BYTES>;

/// Our no-alloc (fixed storage) figures for one input and mode.
struct OursFixed {
    timing: Timing,
    /// Largest number of allocation calls seen during one parse / one write.
    parse_allocs: u64,
    write_allocs: u64,
}

/// Parses into one boxed `Tree<Fixed<…>>`, reused for every rep.
///
/// `Tree::new` takes its storage by value, so the ~22 MB storage passes through the stack on its
/// way into the box; that runs on a thread whose stack is big enough for it.
fn bench_fixed<const N: usize>(
    input: &[u8],
    opts: ParseOptions,
    reps: usize,
) -> Result<OursFixed, String> {
    let stack = 4 * std::mem::size_of::<Tree<'static, BigFixed<N>>>() + (16 << 20);
    std::thread::scope(|s| {
        let worker = std::thread::Builder::new()
            .name("fixed-bench".into())
            .stack_size(stack)
            .spawn_scoped(s, move || {
                let mut tree: Box<Tree<'_, BigFixed<N>>> = Box::new(Tree::new(BigFixed::<N>::new()));
                let mut times = Vec::new();
                let (mut parse_allocs, mut write_allocs, mut out_bytes) = (0, 0, 0);
                for _ in 0..reps {
                    let (c0, _) = alloc_count();
                    let t0 = cpu_now();
                    let r = tree.parse(black_box(input), opts);
                    let t1 = cpu_now();
                    let (c1, _) = alloc_count();
                    if let Err(e) = r {
                        return Err(match e.kind {
                            ErrorKind::Capacity { arena, capacity, needed } => format!(
                                "input needs up to {needed} {arena}s, Fixed holds {capacity} (raise FIXED_* in config_bench.rs)"
                            ),
                            _ => format!("parse error: {e}"),
                        });
                    }
                    let mut sink = CountSink(0);
                    tree.view().write(&mut sink).expect("CountSink never overflows");
                    let t2 = cpu_now();
                    let (c2, _) = alloc_count();
                    out_bytes = black_box(sink.0);
                    parse_allocs = parse_allocs.max(c1 - c0);
                    write_allocs = write_allocs.max(c2 - c1);
                    times.push((t1 - t0, t2 - t1));
                }
                Ok(OursFixed { timing: Timing::from_reps(&times, input.len(), out_bytes), parse_allocs, write_allocs })
            })
            .map_err(|e| format!("spawning the fixed-storage thread: {e}"))?;
        worker
            .join()
            .map_err(|_| "the fixed-storage thread panicked".to_string())?
    })
}

// ---------------------------------------------------------------------------------------------
// Set-up

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn shared_dir() -> PathBuf {
    match std::env::var_os("KEELSON_SHARED") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared"),
    }
}

fn generate(gen: &Path, shape: &str, size: Option<usize>, dest: &Path) -> Result<Vec<u8>, String> {
    let file = std::fs::File::create(dest).map_err(|e| format!("{}: {e}", dest.display()))?;
    let mut cmd = Command::new("python3");
    cmd.arg(gen).arg(shape);
    if let Some(n) = size {
        cmd.arg(n.to_string());
    }
    let st = cmd
        .stdout(file)
        .status()
        .map_err(|e| format!("python3: {e}"))?;
    if !st.success() {
        return Err(format!("gen_bench.py {shape} exited with {st}"));
    }
    std::fs::read(dest).map_err(|e| format!("{}: {e}", dest.display()))
}

fn build_cfgrt(src: &Path, dest: &Path) -> Result<(), String> {
    let out = Command::new("cc")
        .args(["-O2", "-o"])
        .arg(dest)
        .arg(src)
        .arg("-ldevmapper")
        .output()
        .map_err(|e| format!("cc: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "cc exited with {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// cfgrt's canonical output for `input`, for the byte-for-byte check.
fn cfgrt_text(cfgrt: &Path, input: &Path, keep: bool) -> Result<Vec<u8>, String> {
    let mut cmd = Command::new(cfgrt);
    if keep {
        cmd.arg("-n");
    }
    let file = std::fs::File::open(input).map_err(|e| format!("{}: {e}", input.display()))?;
    let out = cmd
        .stdin(file)
        .output()
        .map_err(|e| format!("cfgrt: {e}"))?;
    if out.status.success() {
        Ok(out.stdout)
    } else {
        Err(format!("cfgrt exited with {}", out.status))
    }
}

struct Args {
    reps: usize,
    size: Option<usize>,
    scaling: bool,
    tight: bool,
    verify: bool,
}

fn args() -> Args {
    let mut a = Args {
        reps: 9,
        size: None,
        scaling: true,
        tight: true,
        verify: true,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut num = |what: &str| -> usize {
            it.next().and_then(|v| v.parse().ok()).unwrap_or_else(|| {
                eprintln!("{what} needs a number");
                std::process::exit(2)
            })
        };
        match arg.as_str() {
            "--reps" => a.reps = num("--reps").max(1),
            "--size" => a.size = Some(num("--size")),
            "--no-scaling" => a.scaling = false,
            "--no-tight" => a.tight = false,
            "--no-verify" => a.verify = false,
            _ => {
                eprintln!(
                    "usage: config_bench [--reps N] [--size BYTES] [--no-scaling] [--no-tight] [--no-verify]"
                );
                std::process::exit(2)
            }
        }
    }
    a
}

// ---------------------------------------------------------------------------------------------
// Main

struct Row {
    input: &'static str,
    mode: &'static str,
    c: Option<Timing>,
    ours: Ours,
    fixed: Result<OursFixed, String>,
    same_text: Option<Result<bool, String>>,
}

fn ratio(ours: f64, c: Option<f64>) -> String {
    match c {
        Some(c) => format!("{:.1}x", ours / c),
        None => "-".into(),
    }
}

fn opt_f(v: Option<f64>, prec: usize) -> String {
    match v {
        Some(v) => format!("{v:.prec$}"),
        None => "n/a".into(),
    }
}

fn main() {
    let args = args();
    let shared = shared_dir();
    let gen = shared.join("oracles/lvm/gen_bench.py");
    let cfgrt_src = shared.join("oracles/lvm/cfgrt.c");
    let tmp =
        TempDir(std::env::temp_dir().join(format!("keelson-config-bench-{}", std::process::id())));
    std::fs::create_dir_all(&tmp.0).expect("creating the temporary directory");

    println!("keelson config-tree benchmark: parse/write vs libdevmapper");
    println!("shared dir: {}", shared.display());
    println!(
        "reps: {} (figures are medians of process CPU time)",
        args.reps
    );

    let cfgrt = tmp.0.join("cfgrt");
    let c_ok = match build_cfgrt(&cfgrt_src, &cfgrt) {
        Ok(()) => {
            println!("libdevmapper oracle: built {}", cfgrt.display());
            true
        }
        Err(e) => {
            println!(
                "libdevmapper oracle: MISSING, cannot build {} ({e}); only our figures follow",
                cfgrt_src.display()
            );
            false
        }
    };

    let mut rows = Vec::new();
    let mut inputs = Vec::new();
    for shape in ["flat", "nested"] {
        let path = tmp.0.join(format!("{shape}.txt"));
        let text = match generate(&gen, shape, args.size, &path) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("cannot generate the {shape} input: {e}");
                std::process::exit(1);
            }
        };
        println!("input {shape}: {} bytes", text.len());
        inputs.push((shape, path, text));
    }

    for (shape, path, text) in &inputs {
        for (mode, opts) in [("merge", ParseOptions::MERGE), ("keep", ParseOptions::KEEP)] {
            let keep = mode == "keep";
            eprintln!("… {shape}/{mode}: libdevmapper");
            let c = if c_ok {
                match run_cfgrt(&cfgrt, path, keep, args.reps) {
                    Ok(t) => Some(t),
                    Err(e) => {
                        println!("libdevmapper {shape}/{mode}: {e}");
                        None
                    }
                }
            } else {
                None
            };
            eprintln!("… {shape}/{mode}: ours (growable)");
            let ours = bench_growable(text, opts, args.reps);
            eprintln!("… {shape}/{mode}: ours (fixed)");
            let fixed = bench_fixed::<FIXED_NODES>(text, opts, args.reps);
            let same_text = (c_ok && args.verify).then(|| {
                eprintln!("… {shape}/{mode}: byte-for-byte check");
                cfgrt_text(&cfgrt, path, keep).map(|t| t == ours.text)
            });
            rows.push(Row {
                input: shape,
                mode,
                c,
                ours,
                fixed,
                same_text,
            });
        }
    }

    let mut out = String::new();
    report(&mut out, &rows);
    print!("{out}");

    if args.tight {
        let mut out = String::new();
        tight(&mut out, &inputs, &rows);
        print!("{out}");
    }

    if args.scaling {
        let mut out = String::new();
        scaling(
            &mut out,
            &gen,
            &tmp.0,
            c_ok.then_some(cfgrt.as_path()),
            &rows,
            &inputs[0].2,
        );
        print!("{out}");
    }
}

fn report(o: &mut String, rows: &[Row]) {
    let _ = writeln!(
        o,
        "\n== Parse (input MB/s; ours = Tree<Growable> borrowing the input) =="
    );
    let _ = writeln!(
        o,
        "{:<7} {:<6} {:>14} {:>10} {:>7} {:>14} {:>7}",
        "input", "mode", "libdevmapper", "ours", "ratio", "ours Fixed", "ratio"
    );
    for r in rows {
        let c = r.c.map(|c| c.parse_mbps());
        let fixed = r.fixed.as_ref().ok().map(|f| f.timing.parse_mbps());
        let _ = writeln!(
            o,
            "{:<7} {:<6} {:>14} {:>10.1} {:>7} {:>14} {:>7}",
            r.input,
            r.mode,
            opt_f(c, 1),
            r.ours.count.parse_mbps(),
            ratio(r.ours.count.parse_mbps(), c),
            opt_f(fixed, 1),
            fixed.map_or("-".into(), |f| ratio(f, c)),
        );
    }

    let _ = writeln!(
        o,
        "\n== Write (output MB/s; both into a byte-counting sink) =="
    );
    let _ = writeln!(
        o,
        "{:<7} {:<6} {:>10} {:>14} {:>10} {:>7} {:>14}",
        "input", "mode", "out bytes", "libdevmapper", "ours", "ratio", "ours into Vec"
    );
    for r in rows {
        let c = r.c.map(|c| c.write_mbps());
        let ours = r.ours.count.write_mbps();
        let _ = writeln!(
            o,
            "{:<7} {:<6} {:>10} {:>14} {:>10.1} {:>7} {:>14.1}",
            r.input,
            r.mode,
            r.ours.count.out_bytes,
            opt_f(c, 1),
            ours,
            ratio(ours, c),
            mbps(r.ours.count.out_bytes, r.ours.vec_write),
        );
    }

    let _ = writeln!(o, "\n== Parse + write (CPU seconds, medians) ==");
    let _ = writeln!(
        o,
        "{:<7} {:<6} {:>14} {:>10} {:>7}",
        "input", "mode", "libdevmapper", "ours", "ratio"
    );
    for r in rows {
        let c = r.c.map(|c| c.parse + c.write);
        let ours = r.ours.count.parse + r.ours.count.write;
        let _ = writeln!(
            o,
            "{:<7} {:<6} {:>14} {:>10.4} {:>7}",
            r.input,
            r.mode,
            opt_f(c, 4),
            ours,
            c.map_or("-".into(), |c| format!("{:.1}x", c / ours)),
        );
    }

    let _ = writeln!(
        o,
        "\n== Heap allocations during one parse (allocation calls, reallocs included) =="
    );
    let _ = writeln!(
        o,
        "{:<7} {:<6} {:>20} {:>16} {:>12} {:>12} {:>12}",
        "input",
        "mode",
        "Growable fresh",
        "Growable reused",
        "(its MB/s)",
        "Fixed parse",
        "Fixed write"
    );
    for r in rows {
        let (fa, fw) = match &r.fixed {
            Ok(f) => (f.parse_allocs.to_string(), f.write_allocs.to_string()),
            Err(_) => ("n/a".into(), "n/a".into()),
        };
        let _ = writeln!(
            o,
            "{:<7} {:<6} {:>20} {:>16} {:>12.1} {:>12} {:>12}",
            r.input,
            r.mode,
            format!(
                "{} ({:.1} MB)",
                r.ours.parse_allocs.0,
                r.ours.parse_allocs.1 as f64 / 1e6
            ),
            r.ours.reused_allocs,
            mbps(r.ours.count.in_bytes, r.ours.reused_parse),
            fa,
            fw,
        );
    }
    for r in rows {
        if let Err(e) = &r.fixed {
            let _ = writeln!(o, "Fixed {}/{}: not measured: {e}", r.input, r.mode);
        }
    }

    let _ = writeln!(o, "\n== Output check against cfgrt ==");
    for r in rows {
        let c_bytes = r.c.map(|c| c.out_bytes);
        let verdict = match &r.same_text {
            Some(Ok(true)) => "byte-identical".to_string(),
            Some(Ok(false)) => "DIFFERENT".to_string(),
            Some(Err(e)) => format!("not checked: {e}"),
            None => "not checked".to_string(),
        };
        let _ = writeln!(
            o,
            "{}/{}: written {} bytes (from Fixed: {}), libdevmapper {} bytes: {verdict}",
            r.input,
            r.mode,
            r.ours.count.out_bytes,
            r.fixed
                .as_ref()
                .map_or("n/a".into(), |f| f.timing.out_bytes.to_string()),
            c_bytes.map_or("n/a".into(), |b| b.to_string()),
        );
    }

    let _ = writeln!(o, "\n== Goals ==");
    for r in rows.iter().filter(|r| r.mode == "keep") {
        if let Some(c) = r.c {
            let p = r.ours.count.parse_mbps() / c.parse_mbps();
            let both = (c.parse + c.write) / (r.ours.count.parse + r.ours.count.write);
            let _ = writeln!(
                o,
                "keep mode >= 5x libdevmapper, {}: parse {p:.1}x, parse+write {both:.1}x -> {}",
                r.input,
                if p >= 5.0 && both >= 5.0 {
                    "PASS"
                } else if p >= 5.0 {
                    "PASS (parse), FAIL (parse+write)"
                } else {
                    "FAIL"
                }
            );
        }
    }
    for r in rows.iter().filter(|r| r.mode == "merge") {
        let keep = rows.iter().find(|k| k.input == r.input && k.mode == "keep");
        if let Some(k) = keep {
            let _ = writeln!(
                o,
                "merge mode, {}: parse costs {:.2}x keep mode (libdevmapper: {})",
                r.input,
                r.ours.count.parse / k.ours.count.parse,
                match (r.c, k.c) {
                    (Some(m), Some(k)) => format!("{:.2}x", m.parse / k.parse),
                    _ => "n/a".into(),
                }
            );
        }
    }
    let zero = rows
        .iter()
        .all(|r| matches!(&r.fixed, Ok(f) if f.parse_allocs == 0));
    let _ = writeln!(
        o,
        "no-alloc parser: {} -> {}",
        rows.iter()
            .map(|r| match &r.fixed {
                Ok(f) => format!("{}/{} {}", r.input, r.mode, f.parse_allocs),
                Err(_) => format!("{}/{} n/a", r.input, r.mode),
            })
            .collect::<Vec<_>>()
            .join(", "),
        if zero { "PASS (0 allocations)" } else { "FAIL" }
    );
}

/// Merge-mode parse throughput of the flat input (all LVs siblings under one section) at 1/8,
/// 1/4, 1/2, 1 and 2 times the full size: steady for a linear parser, falling as 1/size for a
/// quadratic one. Keep mode alongside, to separate cache effects from the dup-check's own cost.
fn scaling(
    o: &mut String,
    gen: &Path,
    tmp: &Path,
    cfgrt: Option<&Path>,
    rows: &[Row],
    flat: &[u8],
) {
    const REPS: usize = 3;
    let full = rows.iter().find(|r| r.input == "flat" && r.mode == "merge");
    let Some(full) = full else { return };
    let full_size = flat.len();
    let _ = writeln!(
        o,
        "\n== Merge-mode scaling, flat input (parse MB/s; {REPS} reps except at full size) =="
    );
    let _ = writeln!(
        o,
        "{:>12} {:>10} {:>14} {:>10} {:>12}",
        "input bytes", "siblings", "libdevmapper", "ours", "ours keep"
    );
    // (numerator, denominator) of the full size; libdevmapper is skipped at twice the full size
    // (it would take about four times its full-size time per rep).
    for (num, den) in [(1, 8), (1, 4), (1, 2), (1, 1), (2, 1)] {
        let (bytes, lvs, c, ours, keep) = if (num, den) == (1, 1) {
            let keep = rows.iter().find(|r| r.input == "flat" && r.mode == "keep");
            (
                flat.len(),
                count_lvs(flat),
                full.c.map(|c| c.parse_mbps()),
                full.ours.count.parse_mbps(),
                keep.map(|k| k.ours.count.parse_mbps()),
            )
        } else {
            let path = tmp.join(format!("flat-{num}-{den}.txt"));
            let Ok(text) = generate(gen, "flat", Some(full_size * num / den), &path) else {
                continue;
            };
            eprintln!("… scaling: {} bytes", text.len());
            let c = cfgrt
                .filter(|_| num <= den)
                .and_then(|b| run_cfgrt(b, &path, false, REPS).ok())
                .map(|c| c.parse_mbps());
            let ours = bench_growable(&text, ParseOptions::MERGE, REPS);
            let keep = bench_growable(&text, ParseOptions::KEEP, REPS);
            let _ = std::fs::remove_file(&path);
            (
                text.len(),
                count_lvs(&text),
                c,
                ours.count.parse_mbps(),
                Some(keep.count.parse_mbps()),
            )
        };
        let _ = writeln!(
            o,
            "{:>12} {:>10} {:>14} {:>10.1} {:>12}",
            bytes,
            lvs,
            if num > den && cfgrt.is_some() {
                "skipped".to_string()
            } else {
                opt_f(c, 1)
            },
            ours,
            opt_f(keep, 1),
        );
    }
}

/// Sections under `logical_volumes` (lines starting with two tabs and `lv`).
fn count_lvs(text: &[u8]) -> usize {
    text.split(|&b| b == b'\n')
        .filter(|l| l.starts_with(b"\t\tlv"))
        .count()
}

/// Merge-mode parse into `Fixed` storage with room to spare vs just enough nodes: the dup-check
/// index has one slot per node of capacity, so a tight `Fixed` runs it nearly full.
fn tight(o: &mut String, inputs: &[(&str, PathBuf, Vec<u8>)], rows: &[Row]) {
    const REPS: usize = 3;
    let _ = writeln!(
        o,
        "\n== Fixed storage, merge mode: index load (parse MB/s; {REPS} reps for the tight case) =="
    );
    let _ = writeln!(
        o,
        "{:<7} {:>10} {:>22} {:>22}",
        "input",
        "nodes",
        format!("{FIXED_NODES} slots"),
        format!("{TIGHT_NODES} slots")
    );
    for (shape, _, text) in inputs {
        let Some(row) = rows.iter().find(|r| r.input == *shape && r.mode == "merge") else {
            continue;
        };
        let Ok(roomy) = &row.fixed else { continue };
        eprintln!("… {shape}/merge: tight fixed storage");
        let nodes = Tree::<Growable>::from_text(text, ParseOptions::MERGE)
            .map(|t| t.view().preorder().count() + 1)
            .unwrap_or(0);
        let tight = bench_fixed::<TIGHT_NODES>(text, ParseOptions::MERGE, REPS);
        let _ = writeln!(
            o,
            "{:<7} {:>10} {:>22} {:>22}",
            shape,
            nodes,
            format!(
                "{:.1} ({:.0} % full)",
                roomy.timing.parse_mbps(),
                nodes as f64 * 100.0 / FIXED_NODES as f64
            ),
            match tight {
                Ok(t) => format!(
                    "{:.1} ({:.1} % full)",
                    t.timing.parse_mbps(),
                    nodes as f64 * 100.0 / TIGHT_NODES as f64
                ),
                Err(e) => format!("n/a: {e}"),
            },
        );
    }
}
