//! keelsond's unixctl socket against the real `ovs-appctl` (ovs-sessions.md §4): output, exit
//! statuses and error texts as OVS 3.1's client shows them.
//!
//! Without `ovs-appctl` (Debian's openvswitch-common) each test is skipped with a note, unless
//! the environment variable `CI` is set, when it fails.

mod common;

use std::io::Read;
use std::os::unix::net::UnixListener;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::mpsc;

use common::*;
use keelson_core::daemon::simple::Arg;

/// Whether to run: true when `ovs-appctl` is installed; a note (or, under CI, a failure) if not.
fn have_appctl() -> bool {
    let found = Command::new("ovs-appctl").arg("--version").output().is_ok();
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "ovs-appctl is required under CI (apt-get install openvswitch-common)"
        );
        eprintln!("note: ovs-appctl not installed; skipping");
    }
    found
}

fn appctl(ctl: &Path, args: &[&str]) -> Output {
    Command::new("ovs-appctl")
        .arg("-t")
        .arg(ctl)
        .args(args)
        .env_remove("OVS_CTL_TIMEOUT")
        .output()
        .expect("ovs-appctl runs")
}

/// keelsond on `DIR/sock` with its unixctl socket on `DIR/ctl`.
fn start(name: &str) -> (Daemon, std::path::PathBuf) {
    let dir = scratch(name);
    let ctl = dir.join("ctl");
    let d = Daemon::start(&dir, &["--unixctl", s(&ctl)]);
    wait_until("the unixctl socket exists", || ctl.exists());
    (d, ctl)
}

#[test]
fn list_commands_and_version() {
    if !have_appctl() {
        return;
    }
    let (_d, ctl) = start("uc-list");
    let o = appctl(&ctl, &["list-commands"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "The available commands are:\n  exit                    \n  keelsond/status         \n  \
         list-commands           \n  mount/engine-stats      NAME\n  \
         mount/io-stats          NAME [XLATOR]\n  mount/list              \n  \
         reconnect/show          \n  version                 \n"
    );
    let o = appctl(&ctl, &["version"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        format!("keelsond (Keelson) {}\n", env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(stderr(&o), "");
}

#[test]
fn status_reports_the_agent() {
    if !have_appctl() {
        return;
    }
    let (d, ctl) = start("uc-status");
    call(
        &d.socket,
        "set",
        &[("key", Arg::Str(b"k")), ("value", Arg::Str(b"v"))],
    );
    let o = appctl(&ctl, &["keelsond/status"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 5, "{out}");
    assert_eq!(lines[0], format!("pid: {}", d.pid()));
    assert!(lines[1].starts_with("served: "), "{out}");
    assert!(
        lines[1]["served: ".len()..].parse::<i64>().unwrap() >= 1,
        "{out}"
    );
    assert_eq!(lines[2], "generation: 0");
    assert!(lines[3].starts_with("uptime: "), "{out}");
    assert_eq!(lines[4], "values: 1");
    assert!(out.ends_with('\n'));
}

#[test]
fn unknown_command_and_wrong_argument_count() {
    if !have_appctl() {
        return;
    }
    let (_d, ctl) = start("uc-errors");
    let target = s(&ctl);
    for (args, text) in [
        (
            &["help"][..],
            "\"help\" is not a valid command (use \"list-commands\" to see a list of valid \
             commands)\n",
        ),
        (
            &["echo"][..],
            "\"echo\" is not a valid command (use \"list-commands\" to see a list of valid \
             commands)\n",
        ),
        (
            &["version", "extra"][..],
            "\"version\" command takes at most 0 arguments\n",
        ),
        (
            &["keelsond/status", "a", "b"][..],
            "\"keelsond/status\" command takes at most 0 arguments\n",
        ),
    ] {
        let o = appctl(&ctl, args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert_eq!(stdout(&o), "", "{args:?}");
        assert_eq!(
            stderr(&o),
            format!("{text}ovs-appctl: {target}: server returned an error\n"),
            "{args:?}"
        );
    }
    // The server survives all of that.
    assert_eq!(appctl(&ctl, &["version"]).status.code(), Some(0));
}

#[test]
fn timeout_against_a_silent_server() {
    if !have_appctl() {
        return;
    }
    let dir = scratch("uc-silent");
    let ctl = dir.join("ctl");
    let listener = UnixListener::bind(&ctl).unwrap();
    let (seen_tx, seen_rx) = mpsc::channel();
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let server = std::thread::spawn(move || {
        let (mut st, _) = listener.accept().unwrap();
        let mut buf = [0u8; 256];
        let n = st.read(&mut buf).unwrap_or(0);
        seen_tx.send(buf[..n].to_vec()).unwrap();
        // Hold the connection open, answering nothing, until the client is gone.
        let _ = done_rx.recv();
    });
    // `-t PATH --timeout 1`: options end only at the command.
    let o = appctl(&ctl, &["--timeout", "1", "some-command", "arg1"]);
    drop(done_tx);
    server.join().unwrap();
    assert_eq!(
        seen_rx.recv().unwrap(),
        br#"{"id":0,"method":"some-command","params":["arg1"]}"#
    );
    assert_eq!(o.status.signal(), Some(14), "{:?} {}", o.status, stderr(&o));
    assert_eq!(stdout(&o), "");
    assert!(
        stderr(&o).contains("|fatal_signal|WARN|terminating with signal 14 (Alarm clock)"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn exit_stops_keelsond_cleanly() {
    if !have_appctl() {
        return;
    }
    let (mut d, ctl) = start("uc-exit");
    let o = appctl(&ctl, &["exit"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), "");
    let st = d.wait_exit();
    assert_eq!(st.code(), Some(0), "{}", d.log_text());
    assert!(!d.socket.exists(), "request socket left behind");
    assert!(!ctl.exists(), "unixctl socket left behind");
}

/// `ovs-appctl -t keelsond` names the daemon, not a path: the client reads
/// `$OVS_RUNDIR/keelsond.pid`, checks that the pid in it holds the file's lock, and connects to
/// `$OVS_RUNDIR/keelsond.PID.ctl` (§4.2). keelsond's defaults under `KEELSON_RUNDIR` are exactly
/// those names; a relative `--pidfile` lands there too.
#[test]
fn appctl_finds_keelsond_by_name_through_its_pidfile() {
    if !have_appctl() {
        return;
    }
    let dir = scratch("uc-name");
    let rundir = dir.join("run");
    for pidfile in [None, Some("keelsond.pid")] {
        let mut child = Command::new(KEELSOND)
            .env("KEELSON_RUNDIR", &rundir)
            .args(["--pidfile"])
            .args(pidfile)
            .stdin(std::process::Stdio::null())
            .stderr(std::fs::File::create(dir.join("log")).unwrap())
            .spawn()
            .unwrap();
        let ctl = rundir.join(format!("keelsond.{}.ctl", child.id()));
        wait_until("the default unixctl socket exists", || ctl.exists());
        let o = Command::new("ovs-appctl")
            .env("OVS_RUNDIR", &rundir)
            .args(["-t", "keelsond", "version"])
            .env_remove("OVS_CTL_TIMEOUT")
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        assert!(
            stdout(&o).starts_with("keelsond (Keelson) "),
            "{}",
            stdout(&o)
        );
        let pid = std::fs::read_to_string(rundir.join("keelsond.pid")).unwrap();
        assert_eq!(pid, format!("{}\n", child.id()));
        let o = Command::new("ovs-appctl")
            .env("OVS_RUNDIR", &rundir)
            .args(["-t", "keelsond", "exit"])
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        assert_eq!(child.wait().unwrap().code(), Some(0));
        assert!(!rundir.join("keelsond.pid").exists(), "pidfile left behind");
        assert!(
            !rundir.join("keelsond.socket").exists(),
            "socket left behind"
        );
    }
}
