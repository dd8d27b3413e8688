//! keelsond serving the FUSE mounts of its configuration's `mounts` section: mounted at start,
//! kept in step on SIGHUP, a broken entry logged without harm, remounted by a new instance
//! after a takeover, unmounted at shutdown. Needs root and /dev/fuse.

mod common;
mod tools;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use nix::sys::signal::Signal;
use tools::mounted;

/// A brick, its volfile and a mount point under `dir/NAME`.
fn volume(dir: &Path, name: &str) -> (PathBuf, PathBuf, PathBuf) {
    let base = dir.join(name);
    let _ = Command::new("umount")
        .arg("-l")
        .arg(base.join("mnt"))
        .stderr(std::process::Stdio::null())
        .status();
    for d in ["brick", "mnt"] {
        fs::create_dir_all(base.join(d)).unwrap();
    }
    let vol = base.join(format!("{name}.vol"));
    fs::write(
        &vol,
        format!(
            "volume posix\n type storage/posix\n option directory {}\nend-volume\n",
            base.join("brick").display()
        ),
    )
    .unwrap();
    (vol, base.join("mnt"), base.join("brick"))
}

fn config(path: &Path, mounts: &[(&str, &Path, &Path)]) {
    let mut text = String::from("mounts {\n");
    for (name, vol, mnt) in mounts {
        text += &format!(
            "\t{name} {{\n\t\tvolfile = \"{}\"\n\t\tmountpoint = \"{}\"\n\t}}\n",
            vol.display(),
            mnt.display()
        );
    }
    text += "}\n";
    fs::write(path, text).unwrap();
}

#[test]
fn configured_mounts_follow_the_configuration() {
    let dir = scratch("mounts");
    let (v0, m0, b0) = volume(&dir, "m0");
    let (v1, m1, b1) = volume(&dir, "m1");
    let conf = dir.join("keelsond.conf");
    config(&conf, &[("m0", &v0, &m0)]);
    let mut d = Daemon::start(&dir, &["--config", s(&conf)]);
    wait_until("m0 is mounted", || mounted(&m0));
    fs::write(m0.join("hello"), b"through keelsond").unwrap();
    assert_eq!(fs::read(b0.join("hello")).unwrap(), b"through keelsond");

    // A reload swaps m0 for m1, plus an entry that cannot work.
    let bad = dir.join("nowhere.vol");
    config(&conf, &[("m1", &v1, &m1), ("bad", &bad, &dir)]);
    d.signal(Signal::SIGHUP);
    wait_until("m1 is mounted and m0 is not", || {
        mounted(&m1) && !mounted(&m0)
    });
    wait_until("the bad entry is logged", || {
        d.log_text().lines().any(|l| {
            l.contains("mount failed") && l.contains("nowhere.vol") && l.contains("mount=bad")
        })
    });
    assert!(
        hello_ok(&d.socket),
        "the daemon answers after a failed mount"
    );
    fs::write(m1.join("x"), b"1").unwrap();
    assert_eq!(fs::read(b1.join("x")).unwrap(), b"1");

    // Unmounted at shutdown.
    d.signal(Signal::SIGTERM);
    assert_eq!(d.wait_exit().code(), Some(0), "{}", d.log_text());
    assert!(!mounted(&m1), "m1 still mounted after SIGTERM");
}

#[test]
fn a_takeover_remounts_in_the_new_instance() {
    let dir = scratch("mounts-to");
    let (v0, m0, b0) = volume(&dir, "t0");
    let conf = dir.join("keelsond.conf");
    config(&conf, &[("t0", &v0, &m0)]);
    let pid = dir.join("pid");
    let mut a = Daemon::start(&dir, &["--config", s(&conf), "--pidfile", s(&pid)]);
    wait_until("t0 is mounted", || mounted(&m0));
    let mut b = Daemon::spawn(
        &a.socket,
        &["--config", s(&conf), "--pidfile", s(&pid), "--takeover"],
        &dir.join("logb"),
    );
    assert_eq!(a.wait_exit().code(), Some(0), "A: {}", a.log_text());
    b.wait_ready();
    wait_until("t0 is mounted by B", || {
        mounted(&m0) && b.log_text().contains("mounted")
    });
    fs::write(m0.join("after"), b"B").unwrap();
    assert_eq!(fs::read(b0.join("after")).unwrap(), b"B");
    // Exactly one mount on the mount point: A's is gone, not stacked under B's.
    let n = fs::read_to_string("/proc/self/mounts")
        .unwrap()
        .lines()
        .filter(|l| l.split(' ').nth(1) == m0.to_str())
        .count();
    assert_eq!(n, 1);
    b.signal(Signal::SIGTERM);
    assert_eq!(b.wait_exit().code(), Some(0), "B: {}", b.log_text());
    assert!(!mounted(&m0));
}

/// A translator graph over the brick of `volume(dir, name)`: posix → write-behind → io-stats.
fn graph_volume(dir: &Path, name: &str) -> (PathBuf, PathBuf, PathBuf) {
    let (vol, mnt, brick) = volume(dir, name);
    fs::write(
        &vol,
        format!(
            "volume posix\n type storage/posix\n option directory {}\nend-volume\n\
             volume wb\n type performance/write-behind\n subvolumes posix\nend-volume\n\
             volume {name}-stats\n type debug/io-stats\n subvolumes wb\nend-volume\n",
            brick.display()
        ),
    )
    .unwrap();
    (vol, mnt, brick)
}

#[test]
fn a_graph_mount_answers_io_stats_on_the_unixctl_socket() {
    let Some(appctl) = tools::find("ovs-appctl", "openvswitch-common") else {
        return;
    };
    let dir = scratch("mounts-ctl");
    let (v0, m0, b0) = graph_volume(&dir, "g0");
    let (v1, m1, _) = volume(&dir, "p1");
    let conf = dir.join("keelsond.conf");
    config(&conf, &[("g0", &v0, &m0), ("p1", &v1, &m1)]);
    let ctl = dir.join("ctl");
    let mut d = Daemon::start(&dir, &["--config", s(&conf), "--unixctl", s(&ctl)]);
    wait_until("both are mounted", || mounted(&m0) && mounted(&m1));
    fs::write(m0.join("hello"), b"through the graph").unwrap();
    assert_eq!(fs::read(b0.join("hello")).unwrap(), b"through the graph");

    let run = |args: &[&str]| {
        let o = Command::new(&appctl)
            .arg("-t")
            .arg(&ctl)
            .args(args)
            .output()
            .unwrap();
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let (code, list, _) = run(&["mount/list"]);
    assert_eq!(code, Some(0));
    assert_eq!(
        list,
        format!(
            "g0 {} {} graph\np1 {} {} brick\n",
            m0.display(),
            v0.display(),
            m1.display(),
            v1.display()
        )
    );
    let (code, dump, err) = run(&["mount/io-stats", "g0"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        dump.starts_with("g0-stats:\n=== Cumulative stats ==="),
        "{dump}"
    );
    assert!(dump.contains("  BytesWritten : 17\n"), "{dump}");
    let create = dump.lines().find(|l| l.starts_with("CREATE ")).unwrap();
    assert_eq!(create.split_whitespace().nth(1), Some("1"), "{dump}");
    let (code, one, _) = run(&["mount/io-stats", "g0", "g0-stats"]);
    assert_eq!(code, Some(0));
    assert!(one.starts_with("=== Cumulative stats ==="), "{one}");
    let (code, _, err) = run(&["mount/io-stats", "p1"]);
    assert_eq!(code, Some(2));
    assert!(
        err.starts_with("mount p1: this mount serves a lone storage/posix brick"),
        "{err}"
    );
    let (code, _, err) = run(&["mount/io-stats", "nope"]);
    assert_eq!((code, err.lines().next()), (Some(2), Some("no mount nope")));
    let (code, stats, _) = run(&["mount/engine-stats", "g0"]);
    assert_eq!(code, Some(0));
    assert!(stats.contains("\nfaults: 0\n"), "{stats}");

    d.signal(Signal::SIGTERM);
    assert_eq!(d.wait_exit().code(), Some(0), "{}", d.log_text());
    assert!(!mounted(&m0) && !mounted(&m1));
}
