//! Default locations: `/run/keelson` for root, the user's runtime directory otherwise.

use std::path::PathBuf;

/// The directory for the socket and pidfile.
pub fn run_dir() -> PathBuf {
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

/// keelsond's pidfile.
pub fn default_pidfile() -> PathBuf {
    run_dir().join("keelsond.pid")
}

/// keelsond's unixctl socket, `RUNDIR/keelsond.PID.ctl` as OVS names its daemons' (PID: the
/// calling process, so call it after any fork).
pub fn default_unixctl() -> PathBuf {
    run_dir().join(format!("keelsond.{}.ctl", std::process::id()))
}
