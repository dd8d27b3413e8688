//! Listening: an NBD server on a UNIX socket or a TCP address, one thread per client, all
//! serving the same [`ExportTable`]. A client that breaks the protocol or vanishes only ends its
//! own thread; the listener keeps accepting.

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use keelson_core::nbd::Config;

use super::conn::{serve, Ended};
use super::exports::ExportTable;

/// Where a server listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// A UNIX socket path (`nbd+unix:///NAME?socket=PATH`).
    Unix(PathBuf),
    /// A TCP address (`nbd://HOST:PORT/NAME`); port 0 picks a free one.
    Tcp(SocketAddr),
}

/// A running listener; dropping it stops accepting (clients already connected carry on).
pub struct Server {
    local: Endpoint,
    stop: Arc<AtomicBool>,
    accepted: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    /// Binds `endpoint` and starts accepting clients for `exports` on a new thread. A stale
    /// UNIX socket file is replaced.
    pub fn start(endpoint: &Endpoint, exports: ExportTable, config: Config) -> io::Result<Server> {
        let stop = Arc::new(AtomicBool::new(false));
        let accepted = Arc::new(AtomicU64::new(0));
        let (local, thread) = match endpoint {
            Endpoint::Unix(path) => {
                let listener = bind_unix(path)?;
                let (stop, accepted) = (stop.clone(), accepted.clone());
                let t = spawn("nbd-listen-unix", move || {
                    accept_loop(
                        || listener.accept().map(|(s, _)| s),
                        |s: UnixStream| {
                            let r = s.try_clone()?;
                            Ok((r, s))
                        },
                        exports,
                        config,
                        &stop,
                        &accepted,
                    )
                })?;
                (Endpoint::Unix(path.clone()), t)
            }
            Endpoint::Tcp(addr) => {
                let listener = TcpListener::bind(addr)?;
                let local = listener.local_addr()?;
                let (stop, accepted) = (stop.clone(), accepted.clone());
                let t = spawn("nbd-listen-tcp", move || {
                    accept_loop(
                        || listener.accept().map(|(s, _)| s),
                        |s: TcpStream| {
                            // proto.md "Protocol phases": both sides SHOULD disable Nagle.
                            s.set_nodelay(true)?;
                            let r = s.try_clone()?;
                            Ok((r, s))
                        },
                        exports,
                        config,
                        &stop,
                        &accepted,
                    )
                })?;
                (Endpoint::Tcp(local), t)
            }
        };
        Ok(Server {
            local,
            stop,
            accepted,
            thread: Some(thread),
        })
    }

    /// Where it listens (with the port filled in for TCP port 0).
    pub fn endpoint(&self) -> &Endpoint {
        &self.local
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::Relaxed)
    }

    /// Whether the accept thread is still running.
    pub fn is_running(&self) -> bool {
        self.thread.as_ref().is_some_and(|t| !t.is_finished())
    }

    /// Stops accepting and waits for the accept thread; removes the UNIX socket file.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept with a connection of our own.
        match &self.local {
            Endpoint::Unix(p) => drop(UnixStream::connect(p)),
            Endpoint::Tcp(a) => drop(TcpStream::connect_timeout(a, Duration::from_secs(1))),
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        if let Endpoint::Unix(p) = &self.local {
            let _ = std::fs::remove_file(p);
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.thread.is_some() {
            self.shutdown();
        }
    }
}

fn bind_unix(path: &Path) -> io::Result<UnixListener> {
    match UnixListener::bind(path) {
        Err(e) if e.kind() == io::ErrorKind::AddrInUse && UnixStream::connect(path).is_err() => {
            // Nobody answers: a socket left by a process that died.
            std::fs::remove_file(path)?;
            UnixListener::bind(path)
        }
        r => r,
    }
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> io::Result<JoinHandle<()>> {
    std::thread::Builder::new().name(name.to_owned()).spawn(f)
}

fn accept_loop<S, R, W>(
    accept: impl Fn() -> io::Result<S>,
    split: impl Fn(S) -> io::Result<(R, W)>,
    exports: ExportTable,
    config: Config,
    stop: &AtomicBool,
    accepted: &AtomicU64,
) where
    R: io::Read + Send + 'static,
    W: io::Write + Send + 'static,
{
    while !stop.load(Ordering::SeqCst) {
        let stream = match accept() {
            Ok(s) => s,
            Err(e) => {
                // EMFILE and friends: back off rather than spin, and keep serving.
                tracing::warn!("nbd: accept failed: {e}");
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let n = accepted.fetch_add(1, Ordering::Relaxed) + 1;
        let (r, w) = match split(stream) {
            Ok(rw) => rw,
            Err(e) => {
                tracing::warn!("nbd: client {n}: {e}");
                continue;
            }
        };
        let snapshot = exports.snapshot();
        let spawned = spawn("nbd-client", move || match serve(r, w, snapshot, config) {
            Ok(Ended::Protocol(e)) => tracing::info!("nbd: client {n} dropped: {e}"),
            Ok(end) => tracing::debug!("nbd: client {n} done: {end:?}"),
            Err(e) => tracing::info!("nbd: client {n} connection error: {e}"),
        });
        if let Err(e) = spawned {
            tracing::warn!("nbd: no thread for client {n}: {e}");
        }
    }
}
