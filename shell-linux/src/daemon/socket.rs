//! The listening socket, made the way libdaemon makes it (config-tree.md §3.3 steps 2 and 8), or
//! taken from systemd.

use std::io;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

use nix::sys::socket::{
    getsockname, getsockopt, sockopt, AddressFamily, SockType, SockaddrLike, UnixAddr,
};
use nix::sys::stat::{umask, Mode};

/// Where the listener came from, which decides whether we may unlink it on exit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// We bound it: unlink on exit.
    Created,
    /// systemd passed it (fd 3): never unlink.
    Activated,
    /// The previous instance handed it over: unlink on exit like our own.
    TakenOver,
}

/// Why the socket could not be set up.
#[derive(Debug)]
pub enum SocketError {
    /// A live daemon answers on the path.
    InUse(PathBuf),
    /// Something that is not a stale socket of ours sits on the path.
    NotOurs(PathBuf, &'static str),
    /// The system call failed.
    Io(PathBuf, io::Error),
}

impl std::fmt::Display for SocketError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SocketError::InUse(p) => write!(f, "socket {} already in use", p.display()),
            SocketError::NotOurs(p, why) => write!(f, "{}: {why}; not replacing it", p.display()),
            SocketError::Io(p, e) => write!(f, "{}: {e}", p.display()),
        }
    }
}

/// Binds `path` with mode 0700 (umask 077 while binding). A stale socket (nobody answers, owned
/// by us, no group or other bits) is replaced; a live one is refused.
pub fn bind(path: &Path) -> Result<UnixListener, SocketError> {
    let io_err = |e| SocketError::Io(path.to_path_buf(), e);
    let old = umask(Mode::from_bits_truncate(0o077));
    let first = UnixListener::bind(path);
    umask(old);
    let listener = match first {
        Ok(l) => l,
        Err(e) if e.kind() == io::ErrorKind::AddrInUse => {
            let meta = std::fs::symlink_metadata(path).map_err(io_err)?;
            if !meta.file_type().is_socket() {
                return Err(SocketError::NotOurs(path.to_path_buf(), "not a socket"));
            }
            if meta.uid() != nix::unistd::geteuid().as_raw() || meta.mode() & 0o077 != 0 {
                return Err(SocketError::NotOurs(
                    path.to_path_buf(),
                    "unrecognised owner or permissions",
                ));
            }
            if UnixStream::connect(path).is_ok() {
                return Err(SocketError::InUse(path.to_path_buf()));
            }
            std::fs::remove_file(path).map_err(io_err)?;
            let old = umask(Mode::from_bits_truncate(0o077));
            let again = UnixListener::bind(path);
            umask(old);
            again.map_err(io_err)?
        }
        Err(e) => return Err(io_err(e)),
    };
    Ok(listener)
}

/// Unsets systemd's socket-passing variables so no child inherits them.
pub fn forget_systemd() {
    for v in [
        "LISTEN_PID",
        "LISTEN_FDS",
        "LISTEN_FDNAMES",
        "SD_ACTIVATION",
    ] {
        // Still single-threaded here, so changing the environment races with nothing.
        std::env::remove_var(v);
    }
}

/// systemd socket activation: accepted only when `LISTEN_PID` is us, `LISTEN_FDS` is 1 and fd 3
/// is a listening AF_UNIX stream socket bound to `path`. The variables are unset either way.
pub fn from_systemd(path: &Path) -> Option<UnixListener> {
    let pid = std::env::var("LISTEN_PID").ok();
    let fds = std::env::var("LISTEN_FDS").ok();
    forget_systemd();
    if pid?.parse::<u32>().ok()? != std::process::id() || fds?.trim() != "1" {
        return None;
    }
    const FD: i32 = 3;
    let borrowed = unsafe_borrow(FD)?;
    let family_ok = getsockname::<UnixAddr>(borrowed)
        .ok()
        .filter(|a| a.family() == Some(AddressFamily::Unix))?;
    let bound = family_ok.path()?.to_path_buf();
    let ty = getsockopt(&borrowed_fd(borrowed), sockopt::SockType).ok()?;
    let listening = getsockopt(&borrowed_fd(borrowed), sockopt::AcceptConn).ok()?;
    if ty != SockType::Stream || !listening || !bound.starts_with(path) {
        return None;
    }
    // SAFETY: fd 3 was passed to us by systemd, checked above to be our socket, and nothing else
    // in the process owns it.
    let owned = unsafe { OwnedFd::from_raw_fd(FD) };
    Some(UnixListener::from(owned))
}

fn unsafe_borrow(fd: i32) -> Option<i32> {
    // fcntl(F_GETFD) tells whether the descriptor is open at all.
    // SAFETY: F_GETFD only queries the descriptor table.
    (unsafe { nix::libc::fcntl(fd, nix::libc::F_GETFD) } >= 0).then_some(fd)
}

fn borrowed_fd(fd: i32) -> std::os::fd::BorrowedFd<'static> {
    // SAFETY: only used for getsockopt on fd 3 while it is open and before ownership is taken.
    unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) }
}
