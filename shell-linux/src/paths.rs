//! Default locations: `$KEELSON_RUNDIR` if set, else `/run/keelson` for root and the user's
//! runtime directory otherwise.

use std::path::{Path, PathBuf};

/// The directory for the socket, pidfile and unixctl socket. `KEELSON_RUNDIR` plays the part of
/// OVS's `OVS_RUNDIR`, so `OVS_RUNDIR=$KEELSON_RUNDIR ovs-appctl -t keelsond` finds the daemon.
pub fn run_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("KEELSON_RUNDIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    if nix::unistd::geteuid().is_root() {
        return PathBuf::from("/run/keelson");
    }
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(d) if !d.is_empty() => PathBuf::from(d).join("keelson"),
        _ => PathBuf::from(format!("/tmp/keelson-{}", nix::unistd::geteuid())),
    }
}

/// keelsond's request socket.
pub fn default_socket() -> PathBuf {
    run_dir().join("keelsond.socket")
}

/// keelsond's pidfile (`--pidfile` alone is `keelsond.pid`): a relative name is placed under
/// the run directory, as OVS's daemons do (ovs-sessions.md §5.1).
pub fn pidfile(given: &Path) -> PathBuf {
    run_dir().join(given)
}

/// keelsond's unixctl socket, `RUNDIR/keelsond.PID.ctl` as OVS names its daemons' (PID: the
/// calling process, so call it after any fork).
pub fn default_unixctl() -> PathBuf {
    run_dir().join(format!("keelsond.{}.ctl", std::process::id()))
}
