//! `--monitor` (ovs-sessions.md §5.3): a supervisor process that forks the real daemon and forks
//! it again when it dies of a crash signal.
//!
//! The monitor is the process `--detach` leaves running (a session leader). It forks the
//! daemon with the same readiness handshake `--detach` uses, waits for it, and only when the
//! *first* daemon is ready tells the original parent. The daemon, not the monitor, takes the
//! pidfile, so the pidfile names the daemon (§5.2, §5.3).
//!
//! When the daemon ends:
//! - killed by one of [`CRASH_SIGNALS`]: counted as a crash and restarted, the first time at
//!   once, later at most once every [`RESTART_INTERVAL`] (see [`restart_wait`]);
//! - any other end (an exit with any status, SIGTERM, SIGKILL, SIGINT, SIGHUP…): the monitor
//!   logs `pid N died, STATUS, exiting` and exits 0.
//!
//! §5.3 does not say what the monitor does with signals sent to itself. Here SIGTERM, SIGINT and
//! SIGQUIT are passed on to the daemon as SIGTERM (so the daemon removes its socket and pidfile
//! and the monitor then exits 0 as above, never restarting), and SIGHUP is passed on as SIGHUP
//! (keelsond's "re-read the configuration").

use std::fs::File;
use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{kill, sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, ForkResult, Pid};

/// Restarts after the first happen at most this often (§5.3 throttle).
pub const RESTART_INTERVAL: Duration = Duration::from_secs(10);

/// The signals whose death counts as a crash, and so gets a restart (§5.3).
pub const CRASH_SIGNALS: [Signal; 9] = [
    Signal::SIGABRT,
    Signal::SIGALRM,
    Signal::SIGBUS,
    Signal::SIGFPE,
    Signal::SIGILL,
    Signal::SIGPIPE,
    Signal::SIGSEGV,
    Signal::SIGXCPU,
    Signal::SIGXFSZ,
];

/// Whether a daemon that ended with `status` is to be restarted.
pub fn is_crash(status: &WaitStatus) -> bool {
    matches!(status, WaitStatus::Signaled(_, sig, _) if CRASH_SIGNALS.contains(sig))
}

/// How long to wait before a restart at `now`, the previous restart having happened at
/// `last_restart` (`None`: never, so the first restart is immediate).
pub fn restart_wait(last_restart: Option<Instant>, now: Instant) -> Duration {
    last_restart.map_or(Duration::ZERO, |last| {
        (last + RESTART_INTERVAL).saturating_duration_since(now)
    })
}

/// OVS's process_status_msg: `exit status N`, `killed (Segmentation fault)`, `, core dumped`.
pub fn describe(status: &WaitStatus) -> String {
    match status {
        WaitStatus::Exited(_, code) => format!("exit status {code}"),
        WaitStatus::Signaled(_, sig, core) => {
            let core = if *core { ", core dumped" } else { "" };
            format!("killed ({}){core}", signal_text(*sig))
        }
        other => format!("{other:?}"),
    }
}

fn signal_text(sig: Signal) -> String {
    // SAFETY: strsignal returns a string we copy at once; the monitor is single-threaded.
    let p = unsafe { nix::libc::strsignal(sig as nix::libc::c_int) };
    if p.is_null() {
        return sig.as_str().to_owned();
    }
    // SAFETY: a non-null strsignal result is a NUL-terminated string.
    unsafe { std::ffi::CStr::from_ptr(p) }
        .to_string_lossy()
        .into_owned()
}

/// The daemon the monitor's signal actions forward to (0: none right now).
static DAEMON: AtomicI32 = AtomicI32::new(0);
/// The monitor was told to stop: whatever the daemon dies of, no restart.
static STOPPING: AtomicBool = AtomicBool::new(false);

/// Signal action in the monitor; only atomics and kill(2), which are async-signal-safe.
fn forward(sig: Signal) {
    if sig != Signal::SIGHUP {
        STOPPING.store(true, Ordering::SeqCst);
    }
    let pid = DAEMON.load(Ordering::SeqCst);
    if pid > 0 {
        let _ = kill(Pid::from_raw(pid), sig);
    }
}

enum Forked {
    /// In the new daemon: the pipe its readiness goes to.
    Child(File),
    /// In the monitor: the daemon is ready.
    Ready(Pid),
    /// In the monitor: the daemon ended before it was ready.
    Failed { code: i32, message: String },
}

fn wait_for(pid: Pid) -> Result<WaitStatus, Errno> {
    loop {
        match waitpid(pid, None) {
            Ok(st @ (WaitStatus::Exited(..) | WaitStatus::Signaled(..))) => return Ok(st),
            Ok(_) | Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Forks a daemon and, in the monitor, waits for its readiness byte (the `--detach` handshake:
/// `R` for ready, otherwise the daemon's reason for giving up, then EOF).
fn fork_daemon() -> Result<Forked, String> {
    let (rx, tx) = nix::unistd::pipe().map_err(|e| format!("pipe: {e}"))?;
    // SAFETY: the monitor is single-threaded, so the child inherits a consistent process.
    match unsafe { fork() }.map_err(|e| format!("fork: {e}"))? {
        ForkResult::Child => {
            drop(rx);
            Ok(Forked::Child(File::from(tx)))
        }
        ForkResult::Parent { child } => {
            DAEMON.store(child.as_raw(), Ordering::SeqCst);
            if STOPPING.load(Ordering::SeqCst) {
                let _ = kill(child, Signal::SIGTERM);
            }
            drop(tx);
            let mut said = Vec::new();
            let _ = File::from(rx).read_to_end(&mut said);
            if said == b"R" {
                return Ok(Forked::Ready(child));
            }
            let status = wait_for(child).map_err(|e| format!("waitpid: {e}"))?;
            DAEMON.store(0, Ordering::SeqCst);
            Ok(match status {
                WaitStatus::Exited(_, code) if code != 0 => Forked::Failed {
                    code,
                    message: String::from_utf8_lossy(&said).into_owned(),
                },
                other => Forked::Failed {
                    code: 1,
                    message: format!(
                        "fork child died before signaling startup ({})",
                        describe(&other)
                    ),
                },
            })
        }
    }
}

/// In a new daemon: undo what the monitor set up for itself.
fn become_daemon(ids: Vec<signal_hook::SigId>) {
    for id in ids {
        signal_hook::low_level::unregister(id);
    }
    DAEMON.store(0, Ordering::SeqCst);
    // Rust's runtime catches SIGSEGV and SIGBUS to report stack overflows, and a SIGSEGV sent
    // with kill(2) returns from that handler without killing the process. A monitored daemon
    // must die of them, so that the monitor sees the crash.
    let dfl = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
    for sig in [Signal::SIGSEGV, Signal::SIGBUS] {
        // SAFETY: installing the default disposition.
        let _ = unsafe { sigaction(sig, &dfl) };
    }
}

/// Becomes the monitor. `parent` is the pipe to the process waiting for readiness (`--detach`'s
/// original process; `None` without `--detach`). Returns only in a daemon process, with the
/// pipe that daemon reports its readiness (or its failure) on; the monitor exits from here.
pub fn start(parent: Option<File>) -> File {
    let mut parent = parent;
    let mut ids = Vec::new();
    for (sig, passed) in [
        (Signal::SIGTERM, Signal::SIGTERM),
        (Signal::SIGINT, Signal::SIGTERM),
        (Signal::SIGQUIT, Signal::SIGTERM),
        (Signal::SIGHUP, Signal::SIGHUP),
    ] {
        // SAFETY: the action only touches atomics and calls kill(2).
        match unsafe { signal_hook::low_level::register(sig as i32, move || forward(passed)) } {
            Ok(id) => ids.push(id),
            Err(e) => tracing::warn!("monitor: cannot catch {sig}: {e}"),
        }
    }
    let mut crashes = 0u32;
    let mut last_restart: Option<Instant> = None;
    loop {
        let pid = match fork_daemon() {
            Ok(Forked::Child(tx)) => {
                // The original parent must see EOF when the monitor lets go, not when we die.
                drop(parent);
                become_daemon(ids);
                return tx;
            }
            Ok(Forked::Ready(pid)) => pid,
            Ok(Forked::Failed { code, message }) => {
                match parent.take() {
                    // The original parent prints it and exits with our status.
                    Some(mut p) => {
                        let _ = p.write_all(message.as_bytes());
                    }
                    None => tracing::error!("monitor: {message}"),
                }
                std::process::exit(code);
            }
            Err(e) => {
                tracing::error!("monitor: {e}");
                if let Some(mut p) = parent.take() {
                    let _ = p.write_all(e.as_bytes());
                }
                std::process::exit(1);
            }
        };
        // The handshake with the original parent happens once, for the first daemon.
        if let Some(mut p) = parent.take() {
            let _ = p.write_all(b"R");
        }
        tracing::info!("monitor: monitoring pid {pid}");
        let status = match wait_for(pid) {
            Ok(st) => st,
            Err(e) => {
                tracing::error!("monitor: waitpid failed ({e})");
                std::process::exit(1);
            }
        };
        DAEMON.store(0, Ordering::SeqCst);
        let what = format!("pid {pid} died, {}", describe(&status));
        if !is_crash(&status) || STOPPING.load(Ordering::SeqCst) {
            tracing::info!("monitor: {what}, exiting");
            std::process::exit(0);
        }
        crashes += 1;
        let msg = format!("{crashes} crashes: {what}");
        if matches!(status, WaitStatus::Signaled(_, _, true)) {
            // Later crashes do not dump core.
            let none = nix::libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            // SAFETY: setrlimit reads the struct we pass.
            unsafe { nix::libc::setrlimit(nix::libc::RLIMIT_CORE, &none) };
        }
        let wait = restart_wait(last_restart, Instant::now());
        if !wait.is_zero() {
            tracing::warn!("monitor: {msg}, waiting until 10 seconds since last restart");
            let until = Instant::now() + wait;
            while Instant::now() < until {
                if STOPPING.load(Ordering::SeqCst) {
                    tracing::info!("monitor: {msg}, stopping instead of restarting");
                    std::process::exit(0);
                }
                let left = until.saturating_duration_since(Instant::now());
                std::thread::sleep(left.min(Duration::from_millis(50)));
            }
        }
        last_restart = Some(Instant::now());
        tracing::error!("monitor: {msg}, restarting");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_restart_is_immediate() {
        assert_eq!(restart_wait(None, Instant::now()), Duration::ZERO);
    }

    #[test]
    fn later_restarts_wait_until_ten_seconds_after_the_last() {
        let last = Instant::now();
        assert_eq!(restart_wait(Some(last), last), RESTART_INTERVAL);
        assert_eq!(
            restart_wait(Some(last), last + Duration::from_millis(2500)),
            Duration::from_millis(7500)
        );
        assert_eq!(
            restart_wait(Some(last), last + RESTART_INTERVAL),
            Duration::ZERO
        );
        assert_eq!(
            restart_wait(Some(last), last + Duration::from_secs(60)),
            Duration::ZERO
        );
    }

    #[test]
    fn only_crash_signals_restart() {
        let pid = Pid::from_raw(1);
        for sig in CRASH_SIGNALS {
            assert!(is_crash(&WaitStatus::Signaled(pid, sig, false)), "{sig}");
        }
        for sig in [
            Signal::SIGTERM,
            Signal::SIGKILL,
            Signal::SIGINT,
            Signal::SIGHUP,
            Signal::SIGQUIT,
            Signal::SIGUSR1,
        ] {
            assert!(!is_crash(&WaitStatus::Signaled(pid, sig, false)), "{sig}");
        }
        assert!(!is_crash(&WaitStatus::Exited(pid, 0)));
        assert!(!is_crash(&WaitStatus::Exited(pid, 139)));
    }

    #[test]
    fn status_text_follows_ovs() {
        let pid = Pid::from_raw(1);
        assert_eq!(
            describe(&WaitStatus::Signaled(pid, Signal::SIGSEGV, false)),
            "killed (Segmentation fault)"
        );
        assert_eq!(
            describe(&WaitStatus::Signaled(pid, Signal::SIGABRT, true)),
            "killed (Aborted), core dumped"
        );
        assert_eq!(describe(&WaitStatus::Exited(pid, 3)), "exit status 3");
    }
}
