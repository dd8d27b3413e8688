//! `keelsond --detach --monitor` (ovs-sessions.md §5.3): crash restarts, the 10-second
//! throttle, clean exits; and `--overwrite-pidfile` (§5.1, §5.2).

mod common;

use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use common::*;
use keelson_core::config::Lookup;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// `keelsond --detach --monitor --socket SOCK ARGS…` run until the original process returns.
fn monitored(socket: &Path, args: &[&str]) -> Output {
    let mut all = vec!["--monitor", "--no-chdir"];
    all.extend_from_slice(args);
    detached(socket, &all)
}

fn ppid(pid: i32) -> i32 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let (_, rest) = stat.rsplit_once(')').unwrap();
    rest.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn sig(pid: i32, s: Signal) {
    kill(Pid::from_raw(pid), s).unwrap();
}

/// The pid `status` reports, if a daemon answers on `socket` right now.
fn status_pid(socket: &Path) -> Option<i64> {
    let mut c = keelson_linux::daemon::client::open(socket, PATIENCE, None, 0, None).ok()?;
    let t = c.call("status", &[]).ok()?;
    t.view().get_int64("pid")
}

/// Waits up to `limit` for a daemon other than `old` to own the pidfile and answer.
fn wait_new_daemon(pidfile: &Path, socket: &Path, old: i32, limit: Duration) -> i32 {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(p) = pidfile_pid(pidfile) {
            if p != old && status_pid(socket) == Some(i64::from(p)) {
                return p;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no new daemon after {limit:?} (old {old})"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn crashes_restart_throttled_and_sigterm_ends_both() {
    let dir = scratch("mon");
    let (sock, pid, log) = (dir.join("sock"), dir.join("pid"), dir.join("log"));
    let out = monitored(&sock, &["--pidfile", s(&pid), "--log-file", s(&log)]);
    let mut guards = Vec::new();
    let x = pidfile_pid(&pid).expect("the pidfile names the daemon");
    guards.push(PidGuard(x));
    let monitor = ppid(x);
    guards.insert(0, PidGuard(monitor));
    assert!(out.status.success(), "{}", stderr(&out));
    // No polling: the original process returned, so the daemon answers, and it is the pidfile's.
    assert_eq!(int_at(&call(&sock, "status", &[]), "pid"), i64::from(x));
    // The monitor leads the session; the daemon is its child in that session.
    assert_ne!(monitor, x);
    assert_eq!(ppid(monitor), 1);
    let sid = |p: i32| {
        nix::unistd::getsid(Some(Pid::from_raw(p)))
            .unwrap()
            .as_raw()
    };
    assert_eq!(sid(monitor), monitor);
    assert_eq!(sid(x), monitor);

    // A crash: restarted at once.
    let t1 = Instant::now();
    sig(x, Signal::SIGSEGV);
    let y = wait_new_daemon(&pid, &sock, x, PATIENCE);
    guards.push(PidGuard(y));
    assert_eq!(ppid(y), monitor);
    assert!(pid_gone(x));

    // Another crash right away: restarted only 10 s after the previous restart (which came
    // after t1).
    sig(y, Signal::SIGABRT);
    let z = wait_new_daemon(&pid, &sock, y, Duration::from_secs(15));
    guards.push(PidGuard(z));
    let took = t1.elapsed();
    assert!(
        took >= Duration::from_millis(9900),
        "restarted after {took:?}"
    );
    assert_eq!(ppid(z), monitor);

    // SIGTERM to the daemon: no restart; the monitor exits too, socket and pidfile are gone.
    sig(z, Signal::SIGTERM);
    wait_until("the daemon exits", || pid_gone(z));
    wait_until("the monitor exits", || pid_gone(monitor));
    assert!(!sock.exists());
    assert!(!pid.exists());
    let text = std::fs::read_to_string(&log).unwrap();
    // keelsond ends an orderly shutdown with exit status 0 (ovsdb-server re-raises the signal).
    let ended = format!("pid {z} died, exit status 0, exiting");
    for want in [
        "1 crashes: pid",
        "killed (Segmentation fault), restarting",
        "2 crashes: pid",
        "killed (Aborted), waiting until 10 seconds since last restart",
        &ended,
    ] {
        assert!(text.contains(want), "no {want:?} in\n{text}");
    }
}

#[test]
fn sigterm_to_the_monitor_stops_the_daemon_too() {
    let dir = scratch("mon-term");
    let (sock, pid) = (dir.join("sock"), dir.join("pid"));
    let out = monitored(&sock, &["--pidfile", s(&pid)]);
    let x = pidfile_pid(&pid).expect("the pidfile names the daemon");
    let _daemon = PidGuard(x);
    let monitor = ppid(x);
    let _monitor = PidGuard(monitor);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(hello_ok(&sock));
    sig(monitor, Signal::SIGTERM);
    wait_until("the daemon exits", || pid_gone(x));
    wait_until("the monitor exits", || pid_gone(monitor));
    assert!(!sock.exists());
    assert!(!pid.exists());
}

#[test]
fn a_daemon_that_cannot_start_fails_the_original_process() {
    let dir = scratch("mon-13");
    let pid = dir.join("pid");
    let first = Daemon::start(&dir, &["--pidfile", s(&pid)]);
    let out = monitored(&dir.join("sock2"), &["--pidfile", s(&pid)]);
    assert_eq!(out.status.code(), Some(13), "{}", stderr(&out));
    assert!(stderr(&out).contains("already running"), "{}", stderr(&out));
    assert_eq!(pidfile_pid(&pid), Some(first.pid()));
    assert!(!dir.join("sock2").exists());
}

#[test]
fn overwrite_pidfile_replaces_a_held_pidfile() {
    let dir = scratch("overwrite");
    let pid = dir.join("pid");
    let mut first = Daemon::start(&dir, &["--pidfile", s(&pid)]);
    let mut second = Daemon::spawn(
        &dir.join("sock2"),
        &["--pidfile", s(&pid), "--overwrite-pidfile"],
        &dir.join("log2"),
    );
    second.wait_ready();
    assert_eq!(
        std::fs::read_to_string(&pid).unwrap(),
        format!("{}\n", second.pid())
    );
    // No temporary file is left behind.
    let names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(!names.iter().any(|n| n.contains(".tmp")), "{names:?}");
    // The first instance leaves the file it no longer owns alone.
    first.signal(Signal::SIGTERM);
    assert_eq!(first.wait_exit().code(), Some(0), "{}", first.log_text());
    assert_eq!(pidfile_pid(&pid), Some(second.pid()));
    // The file is locked by the second one: a plain third instance is refused.
    let mut third = Daemon::spawn(
        &dir.join("sock3"),
        &["--pidfile", s(&pid)],
        &dir.join("log3"),
    );
    assert_eq!(third.wait_exit().code(), Some(13), "{}", third.log_text());
    second.signal(Signal::SIGTERM);
    assert_eq!(second.wait_exit().code(), Some(0), "{}", second.log_text());
    assert!(!pid.exists());
}
