//! The pidfile as libdaemon keeps it (config-tree.md §3.3 step 5): a whole-file fcntl write lock
//! held for the life of the process is the "already running" test; the file holds `"<pid>\n"`.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::AsFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::fcntl::{fcntl, FcntlArg};

/// Exit status when another instance holds the pidfile (libdaemon's EXIT_ALREADYRUNNING).
pub const EXIT_ALREADY_RUNNING: u8 = 13;

/// A held pidfile. Dropping it releases the lock; [`Pidfile::remove`] also unlinks the file.
#[derive(Debug)]
pub struct Pidfile {
    file: File,
    path: PathBuf,
}

/// Why the pidfile could not be taken.
#[derive(Debug)]
pub enum PidfileError {
    /// Another process holds the lock; its pid if the file says so.
    Held(Option<i32>),
    /// Opening, locking or writing failed.
    Io(std::io::Error),
}

impl std::fmt::Display for PidfileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PidfileError::Held(Some(pid)) => write!(f, "already running as pid {pid}"),
            PidfileError::Held(None) => f.write_str("already running"),
            PidfileError::Io(e) => e.fmt(f),
        }
    }
}

fn lock(file: &File) -> nix::Result<()> {
    let fl = nix::libc::flock {
        l_type: nix::libc::F_WRLCK as nix::libc::c_short,
        l_whence: nix::libc::SEEK_SET as nix::libc::c_short,
        l_start: 0,
        l_len: 0,
        l_pid: 0,
    };
    fcntl(file.as_fd(), FcntlArg::F_SETLK(&fl)).map(drop)
}

impl Pidfile {
    /// Takes the lock, retrying for up to `wait` (a takeover waits for the old instance to let
    /// go), then writes our pid.
    pub fn acquire(path: &Path, wait: Duration) -> Result<Pidfile, PidfileError> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .read(true)
            .mode(0o644)
            .open(path)
            .map_err(PidfileError::Io)?;
        let deadline = std::time::Instant::now() + wait;
        loop {
            match lock(&file) {
                Ok(()) => break,
                Err(nix::errno::Errno::EACCES | nix::errno::Errno::EAGAIN) => {
                    if std::time::Instant::now() >= deadline {
                        let pid = std::fs::read_to_string(path)
                            .ok()
                            .and_then(|s| s.trim().parse().ok());
                        return Err(PidfileError::Held(pid));
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(e) => return Err(PidfileError::Io(e.into())),
            }
        }
        file.set_len(0).map_err(PidfileError::Io)?;
        (&file)
            .write_all(format!("{}\n", std::process::id()).as_bytes())
            .map_err(PidfileError::Io)?;
        Ok(Pidfile {
            file,
            path: path.to_path_buf(),
        })
    }

    /// `--overwrite-pidfile` (ovs-sessions.md §5.2): writes our pid to `FILE.tmp<pid>`, locks
    /// it and renames it over FILE, whether or not a running process holds FILE. That process
    /// keeps its lock on the old, now unlinked, file.
    pub fn overwrite(path: &Path) -> Result<Pidfile, PidfileError> {
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(format!(".tmp{}", std::process::id()));
        let tmp = PathBuf::from(tmp);
        let made = (|| {
            let file = OpenOptions::new()
                .create(true)
                .truncate(true)
                .write(true)
                .read(true)
                .mode(0o644)
                .open(&tmp)?;
            lock(&file)?;
            (&file).write_all(format!("{}\n", std::process::id()).as_bytes())?;
            std::fs::rename(&tmp, path)?;
            Ok(file)
        })();
        match made {
            Ok(file) => Ok(Pidfile {
                file,
                path: path.to_path_buf(),
            }),
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                Err(PidfileError::Io(e))
            }
        }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Unlinks the file if it is still ours (an `--overwrite-pidfile` instance may have replaced
    /// it), then releases the lock.
    pub fn remove(self) {
        let ours = match (std::fs::metadata(&self.path), self.file.metadata()) {
            (Ok(there), Ok(held)) => there.dev() == held.dev() && there.ino() == held.ino(),
            _ => false,
        };
        if ours {
            let _ = std::fs::remove_file(&self.path);
        }
        drop(self.file);
    }
}
