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
