//! Shared helpers for the keelsond / `keelctl request` behaviour tests: scratch directories,
//! a daemon handle that is always killed, client shortcuts, raw wire access and /proc probes.
//!
//! Every wait here is a bounded poll for a condition, never a fixed sleep: the tests run on a
//! loaded 2-core machine next to other builds.

// Each test binary uses its own subset of these helpers.
#![allow(dead_code)]

use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use keelson_core::config::{Lookup, OwnedTree};
use keelson_core::daemon::simple::Arg;
use keelson_linux::daemon::client::{self, Client};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// How long anything may take to become true (start-up, shutdown, a reload).
pub const PATIENCE: Duration = Duration::from_secs(10);

pub const KEELSOND: &str = env!("CARGO_BIN_EXE_keelsond");
pub const KEELCTL: &str = env!("CARGO_BIN_EXE_keelctl");
pub const TERMINATOR: &[u8] = b"\n##\n";

/// A fresh, empty directory for one test (`sun_path` holds 108 bytes, so names stay short).
pub fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("kd")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    assert!(
        dir.join("sock").as_os_str().len() < 100,
        "{} is too long for a socket path",
        dir.display()
    );
    dir
}

/// Polls `cond` every 10 ms until it holds; panics naming `what` after [`PATIENCE`].
pub fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "gave up after {PATIENCE:?} waiting until {what}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A keelsond child process, SIGKILLed and reaped when dropped, whatever the test did.
pub struct Daemon {
    pub child: Child,
    pub socket: PathBuf,
    /// Its stderr (the log), for messages and for failure reports.
    pub log: PathBuf,
}

impl Daemon {
    /// Starts `keelsond --socket SOCKET ARGS…` with stderr going to `log`; does not wait.
    /// Unless ARGS choose one, the unixctl socket is `SOCKET.N.ctl`, N counting spawns (not the
    /// run directory, where a killed daemon would leave it behind).
    pub fn spawn(socket: &Path, args: &[&str], log: &Path) -> Daemon {
        static SPAWNED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = SPAWNED.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let mut ctl = socket.as_os_str().to_owned();
        ctl.push(format!(".{n}.ctl"));
        let own_ctl = args.iter().any(|a| a.starts_with("--unixctl"));
        let child = Command::new(KEELSOND)
            .arg("--socket")
            .arg(socket)
            .args(args)
            .args(if own_ctl { None } else { Some("--unixctl") })
            .args(if own_ctl { None } else { Some(&ctl) })
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(log).unwrap())
            .spawn()
            .expect("keelsond runs");
        Daemon {
            child,
            socket: socket.to_path_buf(),
            log: log.to_path_buf(),
        }
    }

    /// Starts keelsond on `DIR/sock` with its log in `DIR/log` and waits until it answers.
    pub fn start(dir: &Path, args: &[&str]) -> Daemon {
        let mut d = Daemon::spawn(&dir.join("sock"), args, &dir.join("log"));
        d.wait_ready();
        d
    }

    /// Waits until `hello` is answered; panics with the log if keelsond exits first.
    pub fn wait_ready(&mut self) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                panic!(
                    "keelsond exited ({st}) before it was ready:\n{}",
                    self.log_text()
                );
            }
            if hello_ok(&self.socket) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "keelsond not ready after {PATIENCE:?}:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn signal(&self, sig: Signal) {
        kill(Pid::from_raw(self.pid()), sig).unwrap();
    }

    /// Waits (bounded) for keelsond to exit by itself.
    pub fn wait_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return st;
            }
            assert!(
                Instant::now() < deadline,
                "keelsond still running after {PATIENCE:?}:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A process we did not spawn directly (a `--detach`ed daemon), SIGKILLed when dropped.
pub struct PidGuard(pub i32);

impl Drop for PidGuard {
    fn drop(&mut self) {
        let _ = kill(Pid::from_raw(self.0), Signal::SIGKILL);
    }
}

/// Whether `pid` has exited (gone, or a zombie nobody reaped: PID 1 here may not reap).
pub fn pid_gone(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        // "pid (comm) S ..." — the state follows the last ')'.
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with(['Z', 'X'])),
    }
}

/// A field of /proc/PID/status as a number (`VmRSS` in kB, `Threads`).
pub fn proc_status(pid: i32, field: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"));
    line.split_whitespace().next().unwrap().parse().unwrap()
}

/// The pid written in a pidfile.
pub fn pidfile_pid(p: &Path) -> Option<i32> {
    std::fs::read_to_string(p).ok()?.trim().parse().ok()
}

/// The client library's connection, `hello` done.
pub fn connect(socket: &Path) -> Client {
    client::open(socket, PATIENCE, Some("keelson"), 1, None).expect("connects and says hello")
}

/// Whether a daemon on `socket` answers `hello` right now.
pub fn hello_ok(socket: &Path) -> bool {
    client::open(socket, PATIENCE, None, 0, None).is_ok()
}

/// One request on a fresh connection; the parsed reply.
pub fn call(socket: &Path, name: &str, args: &[(&str, Arg<'_>)]) -> OwnedTree {
    connect(socket)
        .call(name, args)
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

pub fn str_at(t: &OwnedTree, path: &str) -> String {
    String::from_utf8_lossy(t.view().find_str_allow_empty(path, b"<missing>")).into_owned()
}

pub fn int_at(t: &OwnedTree, path: &str) -> i64 {
    t.view()
        .get_int64(path)
        .unwrap_or_else(|| panic!("no integer {path} in {:?}", text(t)))
}

pub fn text(t: &OwnedTree) -> String {
    String::from_utf8_lossy(&t.view().to_text()).into_owned()
}

/// A plain socket to `socket` with generous timeouts, for speaking bytes directly.
pub fn raw(socket: &Path) -> UnixStream {
    let st = UnixStream::connect(socket).expect("connects");
    st.set_read_timeout(Some(PATIENCE)).unwrap();
    st.set_write_timeout(Some(PATIENCE)).unwrap();
    st
}

/// What came back on a raw connection.
#[derive(Debug, PartialEq, Eq)]
pub enum Got {
    /// A whole reply (terminator removed).
    Reply(String),
    /// The daemon closed (EOF or reset) before a whole reply arrived.
    Closed,
}

/// Reads until the data ends with the terminator, or the daemon closes.
pub fn read_reply(st: &mut UnixStream) -> Got {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match st.read(&mut buf) {
            Ok(0) => return Got::Closed,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return Got::Closed,
            Err(e) => panic!("reading the reply: {e}"),
        }
        if got.ends_with(TERMINATOR) {
            got.truncate(got.len() - TERMINATOR.len());
            return Got::Reply(String::from_utf8_lossy(&got).into_owned());
        }
    }
}

/// Sends `body` plus the terminator and reads the answer.
pub fn exchange(st: &mut UnixStream, body: &[u8]) -> Got {
    let mut msg = body.to_vec();
    msg.extend_from_slice(TERMINATOR);
    if st.write_all(&msg).is_err() {
        return Got::Closed;
    }
    read_reply(st)
}

/// Runs keelctl to completion.
pub fn keelctl(args: &[&str]) -> Output {
    Command::new(KEELCTL)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("keelctl runs")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs `keelsond --detach --socket SOCKET ARGS…` to completion: the parent's exit status and
/// stderr say whether the detached daemon came up.
pub fn detached(socket: &Path, args: &[&str]) -> Output {
    Command::new(KEELSOND)
        .arg("--detach")
        .arg("--socket")
        .arg(socket)
        // No unixctl socket in the run directory for a test daemon to leave behind.
        .args(["--unixctl", "none"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}
