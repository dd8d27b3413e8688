//! FUSE small-file benchmark: a Keelson mount (`keelctl mount`) against a real glusterfs FUSE
//! mount of the same storage/posix volfile, side by side in one run. Keelson is measured twice:
//! serving the lone brick directly (what `keelctl mount` does for such a volfile) and through
//! the translator engine (`keelctl mount --engine`: the same posix leaf, reached as a graph),
//! so the engine's cost per FUSE operation shows as the ratio `engine ÷ direct`.
//!
//! ```text
//! cargo build --release -p keelson-linux --bins
//! cargo run --release -p keelson-linux --example fuse_bench [-- --files N] [--rounds R]
//!     [--keelctl PATH] [--glusterfs PATH]
//! ```
//!
//! Each round, for each mount in turn (the order rotates): a fresh brick
//! directory and mount; then `N` files (default 10 000) spread over 100 directories are each
//! created, written with 4 KiB and closed (phase `create+write`), each read back and checked
//! (`read`), and the tree is removed with `rm -r` (`rm -r`). Times are wall clock; files/s is
//! N over the phase's time. The tables give the median over the rounds (default 3) and the
//! ratio Keelson ÷ glusterfs (higher is better for Keelson). Both mounts run as root with
//! their default caches (glusterfs: attribute and entry timeouts 1 s; Keelson the same).

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Args {
    files: usize,
    rounds: usize,
    keelctl: PathBuf,
    glusterfs: PathBuf,
}

fn args() -> Args {
    let mut a = Args {
        files: 10_000,
        rounds: 3,
        keelctl: std::env::current_exe()
            .ok()
            .and_then(|p| p.parent()?.parent().map(|d| d.join("keelctl")))
            .unwrap_or_else(|| PathBuf::from("keelctl")),
        glusterfs: PathBuf::from("/usr/sbin/glusterfs"),
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let mut v = || it.next().unwrap_or_else(|| usage());
        match k.as_str() {
            "--files" => a.files = v().parse().unwrap_or_else(|_| usage()),
            "--rounds" => a.rounds = v().parse().unwrap_or_else(|_| usage()),
            "--keelctl" => a.keelctl = v().into(),
            "--glusterfs" => a.glusterfs = v().into(),
            _ => usage(),
        }
    }
    a
}

fn usage() -> ! {
    eprintln!("usage: fuse_bench [--files N] [--rounds R] [--keelctl PATH] [--glusterfs PATH]");
    std::process::exit(2)
}

#[derive(Clone, Copy, PartialEq)]
enum Server {
    Keelson,
    KeelsonEngine,
    Glusterfs,
}

const SERVERS: [Server; 3] = [Server::Keelson, Server::KeelsonEngine, Server::Glusterfs];

impl Server {
    fn name(self) -> &'static str {
        match self {
            Server::Keelson => "keelson",
            Server::KeelsonEngine => "keel-eng",
            Server::Glusterfs => "glusterfs",
        }
    }
}

fn mounted(p: &Path) -> bool {
    Command::new("mountpoint")
        .arg("-q")
        .arg(p)
        .status()
        .is_ok_and(|s| s.success())
}

/// Mounts `server` on DIR/mnt over a fresh DIR/brick; returns the keelctl child, if any.
fn mount(a: &Args, server: Server, dir: &Path) -> Option<Child> {
    let _ = fs::remove_dir_all(dir);
    fs::create_dir_all(dir.join("brick")).unwrap();
    fs::create_dir_all(dir.join("mnt")).unwrap();
    let vol = dir.join("posix.vol");
    fs::write(
        &vol,
        format!(
            "volume posix\n  type storage/posix\n  option directory {}\nend-volume\n",
            dir.join("brick").display()
        ),
    )
    .unwrap();
    let mnt = dir.join("mnt");
    let child = match server {
        Server::Keelson | Server::KeelsonEngine => Some(
            Command::new(&a.keelctl)
                .arg("mount")
                .arg(&vol)
                .arg(&mnt)
                .args((server == Server::KeelsonEngine).then_some("--engine"))
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("{}: {e}", a.keelctl.display())),
        ),
        Server::Glusterfs => {
            let st = Command::new(&a.glusterfs)
                .arg("-f")
                .arg(&vol)
                .arg("-l")
                .arg(dir.join("gluster.log"))
                .arg(&mnt)
                .status()
                .unwrap_or_else(|e| panic!("{}: {e}", a.glusterfs.display()));
            assert!(st.success(), "glusterfs exited {st}");
            None
        }
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while !(mounted(&mnt) && fs::read_dir(&mnt).is_ok()) {
        assert!(Instant::now() < deadline, "{} did not mount", server.name());
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

fn unmount(dir: &Path, child: Option<Child>) {
    let mnt = dir.join("mnt");
    let _ = Command::new("umount").arg(&mnt).status();
    if let Some(mut c) = child {
        let _ = c.wait();
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while mounted(&mnt) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// (create+write, read, rm -r) seconds for `n` files on `mnt`.
fn workload(mnt: &Path, n: usize) -> [f64; 3] {
    let block: Vec<u8> = (0..4096u32).map(|i| (i % 251) as u8).collect();
    let path = |i: usize| {
        mnt.join(format!("d{:02}", i % 100))
            .join(format!("f{i:05}"))
    };
    let t = Instant::now();
    for d in 0..100.min(n) {
        fs::create_dir(mnt.join(format!("d{d:02}"))).unwrap();
    }
    for i in 0..n {
        let mut f = fs::File::create(path(i)).unwrap();
        f.write_all(&block).unwrap();
    }
    let create = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let mut buf = Vec::with_capacity(8192);
    for i in 0..n {
        buf.clear();
        fs::File::open(path(i))
            .unwrap()
            .read_to_end(&mut buf)
            .unwrap();
        assert_eq!(buf, block, "file {i} read back wrong");
    }
    let read = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let st = Command::new("rm")
        .arg("-r")
        .args((0..100.min(n)).map(|d| mnt.join(format!("d{d:02}"))))
        .status()
        .unwrap();
    assert!(st.success());
    let rm = t.elapsed().as_secs_f64();
    [create, read, rm]
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let a = args();
    assert!(
        nix::unistd::geteuid().is_root(),
        "run as root (FUSE mounts, trusted xattrs)"
    );
    let base = std::env::temp_dir().join(format!("keelson-fuse-bench-{}", std::process::id()));
    let load = fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "{} files of 4 KiB in 100 directories, {} round(s); load average at start: {}",
        a.files,
        a.rounds,
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    let mut times: Vec<(Server, [f64; 3])> = Vec::new();
    for round in 0..a.rounds {
        for k in 0..SERVERS.len() {
            let s = SERVERS[(k + round) % SERVERS.len()];
            let dir = base.join(s.name());
            let child = mount(&a, s, &dir);
            let t = workload(&dir.join("mnt"), a.files);
            unmount(&dir, child);
            println!(
                "round {} {:9}  create+write {:8.0} files/s  read {:8.0} files/s  rm -r {:8.0} files/s",
                round + 1,
                s.name(),
                a.files as f64 / t[0],
                a.files as f64 / t[1],
                a.files as f64 / t[2]
            );
            times.push((s, t));
        }
    }
    let _ = fs::remove_dir_all(&base);
    let rate = |s: Server, phase: usize| {
        median(
            times
                .iter()
                .filter(|(x, _)| *x == s)
                .map(|(_, t)| a.files as f64 / t[phase])
                .collect(),
        )
    };
    println!(
        "\n| phase | glusterfs files/s | keelson files/s | keelson ÷ glusterfs | \
         keelson engine files/s | engine ÷ direct |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: |");
    let mut total = [0.0f64; 3];
    for (i, phase) in ["create+write 4 KiB", "read back", "rm -r"]
        .iter()
        .enumerate()
    {
        let (g, k, e) = (
            rate(Server::Glusterfs, i),
            rate(Server::Keelson, i),
            rate(Server::KeelsonEngine, i),
        );
        total[0] += a.files as f64 / g;
        total[1] += a.files as f64 / k;
        total[2] += a.files as f64 / e;
        println!(
            "| {phase} | {g:.0} | {k:.0} | **{:.2}×** | {e:.0} | {:.2}× |",
            k / g,
            e / k
        );
    }
    let (g, k, e) = (
        a.files as f64 / total[0],
        a.files as f64 / total[1],
        a.files as f64 / total[2],
    );
    println!(
        "| whole workload | {g:.0} | {k:.0} | **{:.2}×** | {e:.0} | {:.2}× |",
        k / g,
        e / k
    );
    println!(
        "\ngoal (keelson >= 2x glusterfs, whole workload): {:.2}x, {}",
        k / g,
        if k / g >= 2.0 { "met" } else { "NOT met" }
    );
}
