//! Sequential 1 MiB writes through our NBD export vs `qemu-nbd` serving the same file.
//!
//! ```sh
//! cargo run --release -p keelson-linux --example nbd_bench -- [--mib 256] [--reps 3]
//! ```
//!
//! For each server, over a UNIX socket, on one file (rewritten in place each run, so the page
//! cache is warm for both):
//! - `raw qd1`: a client built from keelson-core's wire `Repr`s writes `--mib` 1 MiB requests
//!   one at a time (each reply awaited), then `NBD_CMD_FLUSH`;
//! - `raw pipelined`: the same requests sent back to back while a second thread reads replies;
//! - `qemu-img convert`: `qemu-img convert -n -f raw -O raw SRC URI` of a `--mib` file.
//!
//! Prints the best of `--reps` runs in MB/s (10^6 bytes per wall-clock second, flush included)
//! and ours / qemu-nbd.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use keelson_core::nbd::wire::transmission::Command as Cmd;
use keelson_core::nbd::Config;
use keelson_linux::nbd::{Endpoint, ExportTable, FileBackend, Server};

#[path = "common/nbd_client.rs"]
mod nbd_client;
use nbd_client::{connect, expect_reply, header};

const MIB: usize = 1 << 20;

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `mib` sequential 1 MiB writes and a flush; seconds taken.
fn raw_writes(sock: &Path, mib: usize, pipelined: bool) -> f64 {
    let mut s = connect(sock, b"disk").unwrap();
    let payload = vec![0x5au8; MIB];
    let t = Instant::now();
    if pipelined {
        let mut r = s.try_clone().unwrap();
        // Replies may come in any order (qemu-nbd runs requests concurrently); each once.
        let reader = std::thread::spawn(move || {
            let mut seen = vec![false; mib];
            for _ in 0..mib {
                let c = expect_reply(&mut r) as usize;
                assert!(!std::mem::replace(&mut seen[c], true), "two replies to {c}");
            }
        });
        for i in 0..mib {
            s.write_all(&header(Cmd::Write, i as u64, (i * MIB) as u64, MIB as u32))
                .unwrap();
            s.write_all(&payload).unwrap();
        }
        reader.join().unwrap();
    } else {
        for i in 0..mib {
            s.write_all(&header(Cmd::Write, i as u64, (i * MIB) as u64, MIB as u32))
                .unwrap();
            s.write_all(&payload).unwrap();
            expect_reply(&mut s);
        }
    }
    s.write_all(&header(Cmd::Flush, u64::MAX, 0, 0)).unwrap();
    expect_reply(&mut s);
    let secs = t.elapsed().as_secs_f64();
    s.write_all(&header(Cmd::Disc, 0, 0, 0)).unwrap();
    secs
}

fn convert(src: &Path, uri: &str) -> f64 {
    let t = Instant::now();
    let st = Command::new("qemu-img")
        .args(["convert", "-n", "-f", "raw", "-O", "raw"])
        .arg(src)
        .arg(uri)
        .status()
        .expect("qemu-img runs");
    assert!(st.success(), "qemu-img convert failed");
    t.elapsed().as_secs_f64()
}

/// Best (shortest) of `reps` runs of `f`.
fn best(reps: usize, mut f: impl FnMut() -> f64) -> f64 {
    (0..reps).map(|_| f()).fold(f64::INFINITY, f64::min)
}

struct Kill(Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn main() {
    let mib = arg("--mib", 256);
    let reps = arg("--reps", 3);
    let dir = std::env::temp_dir().join(format!("keelson-nbd-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let disk = dir.join("disk.img");
    std::fs::write(&disk, vec![0u8; mib * MIB]).unwrap();
    let src = dir.join("src.raw");
    let noise: Vec<u8> = (0..mib * MIB)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    std::fs::write(&src, &noise).unwrap();
    let bytes = (mib * MIB) as f64;

    let run_all = |sock: &Path| {
        let uri = format!("nbd+unix:///disk?socket={}", sock.display());
        [
            best(reps, || raw_writes(sock, mib, false)),
            best(reps, || raw_writes(sock, mib, true)),
            best(reps, || convert(&src, &uri)),
        ]
    };

    let exports = ExportTable::new();
    exports.insert("disk", Arc::new(FileBackend::open(&disk, false).unwrap()));
    let ours_sock = dir.join("ours.sock");
    let server =
        Server::start(&Endpoint::Unix(ours_sock.clone()), exports, Config::DEFAULT).unwrap();
    let ours = run_all(&ours_sock);
    server.stop();

    let qemu_sock: PathBuf = dir.join("qemu.sock");
    let child = Command::new("qemu-nbd")
        .args(["-f", "raw", "-x", "disk", "--persistent", "-k"])
        .arg(&qemu_sock)
        .arg(&disk)
        .stdin(Stdio::null())
        .spawn()
        .expect("qemu-nbd runs");
    let _guard = Kill(child);
    let deadline = Instant::now() + Duration::from_secs(10);
    while connect(&qemu_sock, b"disk").is_err() {
        assert!(Instant::now() < deadline, "qemu-nbd did not come up");
        std::thread::sleep(Duration::from_millis(20));
    }
    let theirs = run_all(&qemu_sock);

    println!("sequential 1 MiB writes, {mib} MiB, best of {reps}, MB/s (10^6 B/s, flush included)");
    println!(
        "{:<18} {:>10} {:>10} {:>7}",
        "client", "keelson", "qemu-nbd", "ratio"
    );
    for (i, name) in ["raw qd1", "raw pipelined", "qemu-img convert"]
        .iter()
        .enumerate()
    {
        let (a, b) = (bytes / ours[i] / 1e6, bytes / theirs[i] / 1e6);
        println!("{name:<18} {a:>10.1} {b:>10.1} {:>6.2}×", a / b);
    }
    let _ = std::fs::remove_dir_all(&dir);
}
