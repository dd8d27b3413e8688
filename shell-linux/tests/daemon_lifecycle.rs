//! keelsond's lifecycle as libdaemon defines it (config-tree.md §3.3): socket and pidfile rules,
//! signals, `--detach`, idle exit, systemd socket activation and sd_notify.

mod common;

use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixDatagram, UnixListener, UnixStream};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use keelson_core::config::Lookup;
use nix::sys::signal::Signal;

#[test]
fn socket_is_owner_only_and_pidfile_holds_the_pid() {
    let dir = scratch("perms");
    let pid = dir.join("pid");
    let d = Daemon::start(&dir, &["--pidfile", s(&pid)]);
    let meta = std::fs::symlink_metadata(&d.socket).unwrap();
    assert!(meta.file_type().is_socket());
    // srwx------, whatever the umask we were started with.
    assert_eq!(meta.permissions().mode() & 0o7777, 0o700);
    assert_eq!(
        std::fs::read_to_string(&pid).unwrap(),
        format!("{}\n", d.pid())
    );
}

#[test]
fn second_instance_on_the_same_pidfile_exits_13() {
    let dir = scratch("pid13");
    let pid = dir.join("pid");
    let first = Daemon::start(&dir, &["--pidfile", s(&pid)]);
    // Another socket, so only the pidfile lock can stop it.
    let mut second = Daemon::spawn(
        &dir.join("sock2"),
        &["--pidfile", s(&pid)],
        &dir.join("log2"),
    );
    let st = second.wait_exit();
    assert_eq!(st.code(), Some(13), "{}", second.log_text());
    let log = second.log_text();
    assert!(
        log.contains("failed to acquire lock") && log.contains("already running"),
        "{log}"
    );
    // The loser touched neither the winner's pidfile nor its socket.
    assert_eq!(pidfile_pid(&pid), Some(first.pid()));
    assert!(!dir.join("sock2").exists());
    assert!(hello_ok(&first.socket));
}

#[test]
fn second_instance_on_a_live_socket_exits_1() {
    let dir = scratch("inuse");
    let first = Daemon::start(&dir, &["--pidfile", s(&dir.join("pid"))]);
    let pid2 = dir.join("pid2");
    let mut second = Daemon::spawn(&first.socket, &["--pidfile", s(&pid2)], &dir.join("log2"));
    let st = second.wait_exit();
    assert_eq!(st.code(), Some(1), "{}", second.log_text());
    assert!(
        second.log_text().contains("already in use"),
        "{}",
        second.log_text()
    );
    // It gave its own pidfile back and left the live socket alone.
    assert!(!pid2.exists());
    assert!(hello_ok(&first.socket));
}

#[test]
fn stale_socket_of_ours_is_replaced() {
    let dir = scratch("stale");
    let sock = dir.join("sock");
    // A socket file nobody listens on, as a killed keelsond leaves it (mode 0700).
    drop(UnixListener::bind(&sock).unwrap());
    std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o700)).unwrap();
    assert!(UnixStream::connect(&sock).is_err());
    let _d = Daemon::start(&dir, &[]);
    assert!(hello_ok(&sock));
}

#[test]
fn stale_socket_with_group_or_other_bits_is_not_ours() {
    // libdaemon replaces only sockets without group/other permissions; anything else may belong
    // to someone else and is refused rather than unlinked.
    let dir = scratch("stale-foreign");
    let sock = dir.join("sock");
    drop(UnixListener::bind(&sock).unwrap());
    std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut d = Daemon::spawn(&sock, &[], &dir.join("log"));
    assert_eq!(d.wait_exit().code(), Some(1));
    assert!(d.log_text().contains("permissions"), "{}", d.log_text());
    assert!(sock.exists());
}

fn stops_cleanly_on(sig: Signal, name: &str) {
    let dir = scratch(name);
    let pid = dir.join("pid");
    let mut d = Daemon::start(&dir, &["--pidfile", s(&pid)]);
    // A connected idle client must not hold the shutdown up.
    let _idle = connect(&d.socket);
    d.signal(sig);
    let st = d.wait_exit();
    assert_eq!(st.code(), Some(0), "{sig}: {}", d.log_text());
    assert!(!d.socket.exists(), "{sig} left the socket");
    assert!(!pid.exists(), "{sig} left the pidfile");
}

#[test]
fn sigterm_stops_cleanly() {
    stops_cleanly_on(Signal::SIGTERM, "sigterm");
}

#[test]
fn sigint_stops_cleanly() {
    stops_cleanly_on(Signal::SIGINT, "sigint");
}

fn config_a(socket: &Path) -> Option<i64> {
    let t = call(socket, "config", &[]);
    assert_eq!(str_at(&t, "response"), "OK");
    t.view().get_int64("config/a")
}

#[test]
fn sighup_reloads_the_config_and_keeps_it_when_the_new_one_is_broken() {
    let dir = scratch("sighup");
    let conf = dir.join("conf");
    std::fs::write(&conf, "a = 1\n").unwrap();
    let d = Daemon::start(&dir, &["--config", s(&conf)]);
    assert_eq!(config_a(&d.socket), Some(1));

    std::fs::write(&conf, "a = 2\nb { c = \"x\" }\n").unwrap();
    d.signal(Signal::SIGHUP);
    wait_until("the reload shows a=2", || config_a(&d.socket) == Some(2));

    std::fs::write(&conf, "a = {\n").unwrap();
    d.signal(Signal::SIGHUP);
    wait_until("the failed reload is logged", || {
        d.log_text().contains("reload failed")
    });
    assert_eq!(config_a(&d.socket), Some(2));
    assert!(hello_ok(&d.socket));
}

#[test]
fn broken_config_at_start_leaves_nothing_behind() {
    let dir = scratch("badconf");
    let conf = dir.join("conf");
    std::fs::write(&conf, "a = {\n").unwrap();
    let pid = dir.join("pid");
    let mut d = Daemon::spawn(
        &dir.join("sock"),
        &["--config", s(&conf), "--pidfile", s(&pid)],
        &dir.join("log"),
    );
    assert_eq!(d.wait_exit().code(), Some(1));
    assert!(d.log_text().contains("conf"), "{}", d.log_text());
    assert!(!dir.join("sock").exists());
    assert!(!pid.exists());
}

/// `keelsond --detach ARGS…` run to completion (the parent returns, the daemon stays).
#[test]
fn detach_returns_once_the_socket_answers() {
    let dir = scratch("detach");
    let pid = dir.join("pid");
    let sock = dir.join("sock");
    let out = detached(&sock, &["--pidfile", s(&pid)]);
    // Guard the daemon before asserting anything, so a failure still kills it.
    let daemon = pidfile_pid(&pid).map(PidGuard);
    assert!(out.status.success(), "{}", stderr(&out));
    // No polling: the parent's exit is the readiness promise.
    let mut c = connect(&sock);
    let status = c.call("status", &[]).unwrap();
    let daemon = daemon.expect("the pidfile names the daemon");
    assert_eq!(int_at(&status, "pid"), i64::from(daemon.0));
    // Its own session, no terminal, not the parent we ran.
    assert_eq!(
        nix::unistd::getsid(Some(nix::unistd::Pid::from_raw(daemon.0)))
            .unwrap()
            .as_raw(),
        daemon.0
    );
    drop(c);
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(daemon.0), Signal::SIGTERM).unwrap();
    wait_until("the detached daemon exits", || pid_gone(daemon.0));
    assert!(!sock.exists());
    assert!(!pid.exists());
}

#[test]
fn detach_reports_a_held_pidfile_with_status_13() {
    let dir = scratch("detach13");
    let pid = dir.join("pid");
    let first = Daemon::start(&dir, &["--pidfile", s(&pid)]);
    let out = detached(&dir.join("sock2"), &["--pidfile", s(&pid)]);
    assert_eq!(out.status.code(), Some(13), "{}", stderr(&out));
    assert!(stderr(&out).contains("already running"), "{}", stderr(&out));
    assert_eq!(pidfile_pid(&pid), Some(first.pid()));
}

#[test]
fn idle_timeout_exits_by_itself_and_removes_the_socket() {
    let dir = scratch("idle");
    let started = Instant::now();
    let mut d = Daemon::start(&dir, &["--idle-timeout", "1"]);
    let st = d.wait_exit();
    assert_eq!(st.code(), Some(0), "{}", d.log_text());
    // At least the timeout after our readiness probe, well within PATIENCE (wait_exit).
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert!(!d.socket.exists());
    assert!(d.log_text().contains("inactive"), "{}", d.log_text());
}

#[test]
fn idle_timeout_waits_for_connected_clients() {
    let dir = scratch("idle-held");
    let mut d = Daemon::start(&dir, &["--idle-timeout", "1"]);
    let mut held = connect(&d.socket);
    // Several idle periods pass while a client is connected (a pause, not an assertion)...
    std::thread::sleep(Duration::from_millis(2500));
    assert!(d.child.try_wait().unwrap().is_none(), "{}", d.log_text());
    assert_eq!(str_at(&held.call("status", &[]).unwrap(), "response"), "OK");
    // ...and once it leaves, the daemon goes.
    drop(held);
    assert_eq!(d.wait_exit().code(), Some(0));
}

/// Starts keelsond with `listener` as fd 3 and `LISTEN_FDS=1`, the way systemd activates a
/// service. `listen_pid` is shell text: `$$` is keelsond's own pid, since `exec` keeps the
/// shell's.
fn spawn_activated(
    listener: &UnixListener,
    socket: &Path,
    log: &Path,
    listen_pid: &str,
    env: &[(&str, &Path)],
) -> Daemon {
    let fd = listener.as_raw_fd();
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(format!(
            "LISTEN_PID={listen_pid} LISTEN_FDS=1 exec \"$0\" \"$@\""
        ))
        .arg(KEELSOND)
        .arg("--socket")
        .arg(socket)
        .args(["--unixctl", "none"])
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap());
    // SAFETY: runs in the forked child before exec and calls only dup2 and fcntl, which are
    // async-signal-safe; it touches no memory shared with the parent.
    unsafe {
        cmd.pre_exec(move || {
            if fd == 3 {
                // dup2 onto itself keeps FD_CLOEXEC; clear it so fd 3 survives exec.
                if libc::fcntl(3, libc::F_SETFD, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            } else if libc::dup2(fd, 3) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    Daemon {
        child: cmd.spawn().unwrap(),
        socket: socket.to_path_buf(),
        log: log.to_path_buf(),
    }
}

#[test]
fn systemd_activation_serves_the_inherited_socket_and_never_unlinks_it() {
    let dir = scratch("sdact");
    let sock = dir.join("sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let mut d = spawn_activated(&listener, &sock, &dir.join("log"), "$$", &[]);
    d.wait_ready();
    assert!(d.log_text().contains("Activated"), "{}", d.log_text());
    assert_eq!(
        int_at(&call(&sock, "status", &[]), "pid"),
        i64::from(d.pid())
    );
    d.signal(Signal::SIGTERM);
    assert_eq!(d.wait_exit().code(), Some(0), "{}", d.log_text());
    assert!(sock.exists(), "an activated socket belongs to systemd");
}

#[test]
fn a_taken_over_activated_socket_is_still_never_unlinked() {
    let dir = scratch("sdact-takeover");
    let sock = dir.join("sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let mut a = spawn_activated(&listener, &sock, &dir.join("a.log"), "$$", &[]);
    a.wait_ready();
    drop(listener);
    let mut b = Daemon::spawn(&sock, &["--takeover"], &dir.join("b.log"));
    assert_eq!(a.wait_exit().code(), Some(0), "{}", a.log_text());
    b.wait_ready();
    assert!(b.log_text().contains("Activated"), "{}", b.log_text());
    b.signal(Signal::SIGTERM);
    assert_eq!(b.wait_exit().code(), Some(0), "{}", b.log_text());
    assert!(
        sock.exists(),
        "the socket still belongs to systemd after a takeover"
    );
}

#[test]
fn activation_meant_for_another_process_or_path_is_ignored() {
    // fd 3 is a listener on another path; whether LISTEN_PID names someone else or the bound
    // path is not ours, keelsond must create (and later remove) its own socket.
    for (name, listen_pid) in [("sdpid", "1"), ("sdpath", "$$")] {
        let dir = scratch(name);
        let other = UnixListener::bind(dir.join("other")).unwrap();
        let sock = dir.join("sock");
        let mut d = spawn_activated(&other, &sock, &dir.join("log"), listen_pid, &[]);
        d.wait_ready();
        assert!(d.log_text().contains("Created"), "{}", d.log_text());
        let mode = std::fs::metadata(&sock).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        d.signal(Signal::SIGTERM);
        assert_eq!(d.wait_exit().code(), Some(0));
        assert!(!sock.exists());
    }
}

#[test]
fn sd_notify_reports_ready_and_stopping() {
    let dir = scratch("notify");
    let notify = dir.join("notify");
    let rx = UnixDatagram::bind(&notify).unwrap();
    rx.set_read_timeout(Some(PATIENCE)).unwrap();
    let sock = dir.join("sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let mut d = spawn_activated(
        &listener,
        &sock,
        &dir.join("log"),
        "$$",
        &[("NOTIFY_SOCKET", notify.as_path())],
    );
    let mut buf = [0u8; 512];
    let n = rx.recv(&mut buf).expect("READY=1 arrives");
    assert!(String::from_utf8_lossy(&buf[..n]).contains("READY=1"));
    // Ready was announced only once the socket serves.
    assert!(hello_ok(&sock));
    d.signal(Signal::SIGTERM);
    let n = rx.recv(&mut buf).expect("STOPPING=1 arrives");
    assert!(String::from_utf8_lossy(&buf[..n]).contains("STOPPING=1"));
    assert_eq!(d.wait_exit().code(), Some(0));
}
