//! Replication benchmarks (issue 6, item 8) on a pair of real keelsond agents on loopback,
//! each side by side with its baseline in one run:
//!
//! 1. protocol C sequential 1 MiB writes through the primary's NBD export (one at a time, and
//!    pipelined), flush included, vs a raw TCP loopback copy of the same bytes (sender writes
//!    its file and streams each MiB, receiver writes its file, both fdatasync at the end);
//! 2. resync after a link cut: bytes the link carried during the resync vs the dirty bytes;
//! 3. 4 KiB random writes with protocol C (queue depth 1 and 16) vs the same client against an
//!    unreplicated NBD export of a plain file (our own server, same code path minus DRBD).
//!
//! ```sh
//! cargo build --release -p keelson-linux --bins
//! cargo run --release -p keelson-linux --example repl_bench -- [--mib 256] [--ops 20000] [--rounds 5]
//! ```

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use keelson_core::nbd::wire::transmission::Command as Cmd;
use keelson_linux::nbd::{Endpoint, ExportTable, FileBackend, Server};

#[path = "common/nbd_client.rs"]
mod nbd_client;
#[path = "common/proxy.rs"]
mod proxy;
use nbd_client::{connect, expect_reply, header};
use proxy::Proxy;

const MIB: usize = 1 << 20;

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let p = exe.parent().unwrap().parent().unwrap().join(name);
    assert!(
        p.is_file(),
        "{} missing: run `cargo build --release -p keelson-linux --bins` first",
        p.display()
    );
    p
}

struct Kill(Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Two agents replicating `r0` (protocol C, resync unthrottled).
struct Pair {
    dir: PathBuf,
    _agents: Vec<Kill>,
    proxy: Option<Proxy>,
}

impl Pair {
    fn start(dir: &Path, base: u16, size: usize, proxied: bool) -> Pair {
        // The page cache the previous part left dirty is written back first: behind it, every
        // fdatasync of ext4 waits for a journal commit (up to seconds each).
        let _ = Command::new("sync").status();
        let _ = std::fs::remove_dir_all(dir);
        std::fs::create_dir_all(dir).unwrap();
        let proxy = proxied.then(|| Proxy::start([(base + 2, base + 1), (base + 3, base)]));
        let mut agents = Vec::new();
        for i in 0..2u16 {
            let n = ["alpha", "beta"][i as usize];
            let peer = if proxied { base + 2 + i } else { base + 1 - i };
            let conf = format!(
                "resources {{ r0 {{ node_id = {i} peer_node_id = {} address = \"127.0.0.1:{}\" \
                 peer_address = \"127.0.0.1:{peer}\" protocol = \"C\" resync_rate = 0 size = {size} \
                 backing = \"{d}/{n}.img\" meta = \"{d}/{n}.meta\" nbd_socket = \"{d}/{n}.nbd\" \
                 connect_int = 1 }} }}\n",
                1 - i,
                base + i,
                d = dir.display()
            );
            std::fs::write(dir.join(format!("{n}.conf")), conf).unwrap();
            let child = Command::new(bin("keelsond"))
                .arg("--config")
                .arg(dir.join(format!("{n}.conf")))
                .arg("--socket")
                .arg(dir.join(format!("{n}.sock")))
                .args(["--unixctl", "none", "--log", "warn"])
                .stderr(std::fs::File::create(dir.join(format!("{n}.log"))).unwrap())
                .spawn()
                .unwrap();
            agents.push(Kill(child));
        }
        let p = Pair {
            dir: dir.to_path_buf(),
            _agents: agents,
            proxy,
        };
        p.wait(|p| p.field(0, "connection-state") == "Connected");
        p.ctl(0, &["primary", "r0", "--force"]);
        p.wait(Pair::in_sync);
        p
    }

    fn ctl(&self, i: usize, args: &[&str]) -> String {
        let o = Command::new(bin("keelctl"))
            .arg("-s")
            .arg(self.dir.join(format!("{}.sock", ["alpha", "beta"][i])))
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    fn field(&self, i: usize, key: &str) -> String {
        let j = self.ctl(i, &["status", "r0", "--json"]);
        let pat = format!("\"{key}\": ");
        j.find(&pat)
            .map(|at| {
                let rest = &j[at + pat.len()..];
                let end = rest.find([',', '\n']).unwrap_or(rest.len());
                rest[..end].trim().trim_matches('"').to_string()
            })
            .unwrap_or_default()
    }

    fn in_sync(&self) -> bool {
        (0..2).all(|i| {
            self.field(i, "connection-state") == "Connected"
                && self.field(i, "peer-disk-state") == "UpToDate"
                && self.field(i, "disk-state") == "UpToDate"
        })
    }

    fn wait(&self, cond: impl Fn(&Pair) -> bool) {
        let t = Instant::now();
        while !cond(self) {
            assert!(
                t.elapsed() < Duration::from_secs(300),
                "pair did not settle"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn nbd(&self) -> PathBuf {
        self.dir.join("alpha.nbd")
    }
}

/// `count` writes of `len` bytes at `offsets(i)`, at most `depth` in flight, then a flush;
/// seconds taken.
fn writes(
    sock: &Path,
    count: usize,
    len: usize,
    depth: usize,
    offset: impl Fn(usize) -> u64,
) -> f64 {
    let mut s = connect(sock, b"r0").unwrap();
    let payload: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
    let mut r = s.try_clone().unwrap();
    let (tx, rx) = std::sync::mpsc::sync_channel::<()>(depth.max(1));
    let t = Instant::now();
    let reader = std::thread::spawn(move || {
        for _ in 0..count {
            expect_reply(&mut r);
            let _ = rx.recv();
        }
        r
    });
    for i in 0..count {
        tx.send(()).unwrap();
        s.write_all(&header(Cmd::Write, i as u64, offset(i), len as u32))
            .unwrap();
        s.write_all(&payload).unwrap();
    }
    let mut r = reader.join().unwrap();
    s.write_all(&header(Cmd::Flush, u64::MAX, 0, 0)).unwrap();
    expect_reply(&mut r);
    let secs = t.elapsed().as_secs_f64();
    s.write_all(&header(Cmd::Disc, 0, 0, 0)).unwrap();
    secs
}

/// The raw baseline: `mib` MiB written to a local file and streamed over TCP loopback to a
/// receiver that writes them to its file; both fdatasync; seconds taken. The files exist and
/// are fully written before (as the pair's backing files are after their initial sync), so
/// neither side pays for block allocation.
fn raw_copy(dir: &Path, mib: usize) -> f64 {
    for f in ["raw-rx.img", "raw-tx.img"] {
        let file = std::fs::File::create(dir.join(f)).unwrap();
        for i in 0..mib {
            file.write_all_at(&vec![1u8; MIB], (i * MIB) as u64)
                .unwrap();
        }
        file.sync_data().unwrap();
    }
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let rx_path = dir.join("raw-rx.img");
    let receiver = std::thread::spawn(move || {
        let (mut c, _) = l.accept().unwrap();
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(&rx_path)
            .unwrap();
        let mut buf = vec![0u8; MIB];
        for i in 0..mib {
            c.read_exact(&mut buf).unwrap();
            f.write_all_at(&buf, (i * MIB) as u64).unwrap();
        }
        f.sync_data().unwrap();
        c.write_all(b"k").unwrap();
    });
    let local = std::fs::OpenOptions::new()
        .write(true)
        .open(dir.join("raw-tx.img"))
        .unwrap();
    let payload = vec![0x5au8; MIB];
    let t = Instant::now();
    let mut c = TcpStream::connect(addr).unwrap();
    for i in 0..mib {
        local.write_all_at(&payload, (i * MIB) as u64).unwrap();
        c.write_all(&payload).unwrap();
    }
    local.sync_data().unwrap();
    let mut k = [0u8; 1];
    c.read_exact(&mut k).unwrap();
    let secs = t.elapsed().as_secs_f64();
    receiver.join().unwrap();
    secs
}

/// The middle value (upper middle for an even count).
fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// A fixed pseudo-random 4 KiB-aligned offset within `size`.
fn random_block(i: usize, size: usize) -> u64 {
    let x = (i as u64 + 1)
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .rotate_left(17);
    (x % (size / 4096) as u64) * 4096
}

fn main() {
    let mib = arg("--mib", 256);
    let ops = arg("--ops", 20000);
    let rounds = arg("--rounds", 5).max(1);
    let root = std::env::temp_dir().join(format!("keelson-repl-bench-{}", std::process::id()));
    let size = mib.max(64) * MIB;

    let only: Option<String> = std::env::args().skip_while(|a| a != "--only").nth(1);
    let run = |part: &str| only.as_deref().is_none_or(|o| o == part);
    if run("seq") || run("iops") {
        println!("== 1. protocol C, sequential 1 MiB writes ({mib} MiB), vs raw TCP loopback copy");
        let pair = Pair::start(&root.join("seq"), 17500, size, false);
        // One untimed pass so that both backing files are written through once, as raw's are.
        writes(&pair.nbd(), mib, MIB, 8, |i| (i * MIB) as u64);
        // Rounds alternate baseline and ours, so that a slow spell of the machine hits both;
        // the medians are the result.
        let mbs = |s: f64| mib as f64 * MIB as f64 / s / 1e6;
        let (mut r1, mut r8) = (Vec::new(), Vec::new());
        for round in 1..=rounds {
            let raw = raw_copy(&root, mib);
            let qd1 = writes(&pair.nbd(), mib, MIB, 1, |i| (i * MIB) as u64);
            let piped = writes(&pair.nbd(), mib, MIB, 8, |i| (i * MIB) as u64);
            println!(
                "  round {round}: raw TCP copy {:7.1} MB/s   NBD qd1 {:7.1} MB/s ({:.2})   \
                 qd8 {:7.1} MB/s ({:.2})",
                mbs(raw),
                mbs(qd1),
                raw / qd1,
                mbs(piped),
                raw / piped
            );
            r1.push(raw / qd1);
            r8.push(raw / piped);
        }
        println!(
            "  median ratio over {rounds} rounds: qd1 {:.2}   qd8 {:.2}",
            median(&mut r1),
            median(&mut r8)
        );

        println!("== 3. protocol C, 4 KiB random writes ({ops} ops) vs an unreplicated NBD export");
        let plain_path = root.join("plain.img");
        std::fs::File::create(&plain_path)
            .unwrap()
            .set_len(size as u64)
            .unwrap();
        let exports = ExportTable::new();
        exports.insert(
            "r0",
            Arc::new(FileBackend::open(&plain_path, false).unwrap()),
        );
        let plain_sock = root.join("plain.nbd");
        let _server = Server::start(
            &Endpoint::Unix(plain_sock.clone()),
            exports,
            Default::default(),
        )
        .unwrap();
        for depth in [1usize, 16] {
            let ours = writes(&pair.nbd(), ops, 4096, depth, |i| random_block(i, size));
            let base = writes(&plain_sock, ops, 4096, depth, |i| random_block(i, size));
            println!(
                "  qd{depth:<2} replicated {:8.0} IOPS   unreplicated {:8.0} IOPS   ratio {:.2}",
                ops as f64 / ours,
                ops as f64 / base,
                base / ours
            );
        }
        drop(pair);
    }

    if run("resync") {
        println!("== 2. resync after a link cut: bytes on the wire vs dirty bytes");
        let pair = Pair::start(&root.join("cut"), 17510, size, true);
        let proxy = pair.proxy.as_ref().unwrap();
        proxy.cut();
        pair.wait(|p| p.field(0, "connection-state") != "Connected");
        let dirty_writes = 4096;
        writes(&pair.nbd(), dirty_writes, 4096, 16, |i| {
            random_block(i, size)
        });
        let dirty_kib: u64 = pair.field(0, "out-of-sync").parse().unwrap();
        let before = proxy.bytes();
        proxy.restore();
        // The reconnect waits out the backoff the cut built up; the resync is timed from there.
        pair.wait(|p| p.field(0, "connection-state") == "Connected");
        let t = Instant::now();
        pair.wait(|p| p.in_sync() && p.field(0, "out-of-sync") == "0");
        let secs = t.elapsed().as_secs_f64();
        let wire = proxy.bytes() - before;
        let dirty = dirty_kib * 1024;
        let bitmap = (size / 4096 / 8) as u64;
        println!(
            "  dirty {dirty} bytes ({dirty_writes} random 4 KiB writes), on the wire {wire} bytes \
         (incl. handshake and bitmap; bitmap uncompressed would be {bitmap}), ratio {:.3}, \
         resync {secs:.2} s",
            wire as f64 / dirty as f64
        );
        drop(pair);
    }
    let _ = std::fs::remove_dir_all(&root);
}
