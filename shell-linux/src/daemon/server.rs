//! keelsond's lifecycle, in libdaemon's order (config-tree.md §3.3): pidfile lock, signals,
//! socket (or systemd's, or the previous instance's), ready, accept loop, orderly shutdown.

use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use keelson_core::config::OwnedTree;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use super::agent::Agent;
use super::pidfile::{Pidfile, PidfileError, EXIT_ALREADY_RUNNING};
use super::socket::{self, Origin};
use super::{conn, takeover};
use crate::configcmd;
use crate::source::Source;
use crate::unixctl;

/// Everything keelsond can be told on its command line.
#[derive(Clone, Debug)]
pub struct Options {
    /// The request socket.
    pub socket: PathBuf,
    /// The pidfile, if any.
    pub pidfile: Option<PathBuf>,
    /// Replace the pidfile even if a running process holds it (`--overwrite-pidfile`).
    pub overwrite_pidfile: bool,
    /// The configuration file, if any (re-read on SIGHUP).
    pub config: Option<PathBuf>,
    /// Protocol name `hello` reports.
    pub protocol: String,
    /// Protocol version `hello` reports.
    pub version: i64,
    /// Exit after this long with no clients.
    pub idle_timeout: Option<Duration>,
    /// Peers (SO_PEERCRED uids) that may talk to us.
    pub allowed_uids: Vec<u32>,
    /// Largest message accepted.
    pub max_message: usize,
    /// Most connections served at once; more wait in the listen queue.
    pub max_clients: usize,
    /// A connection idle (or a reply unread) this long is closed.
    pub client_timeout: Duration,
    /// Log every request and reply line.
    pub wire_log: bool,
    /// Take over from the instance running on `socket`.
    pub takeover: bool,
    /// How long a takeover waits for clients to finish, and for the pidfile.
    pub takeover_wait: Duration,
    /// The unixctl socket `ovs-appctl -t PATH` talks to (none: no socket).
    pub unixctl: Option<PathBuf>,
}

/// State the accept loop and the connection threads share.
pub struct Shared {
    pub(crate) opts: Options,
    pub(crate) agent: Mutex<Agent>,
    /// A takeover asked the accept loop to stop accepting.
    pub(crate) draining: AtomicBool,
    /// The accept loop has seen `draining` and accepts nothing more (a takeover waits for this,
    /// so no connection is accepted behind its back while it counts the active ones).
    pub(crate) accept_paused: AtomicBool,
    /// The state was snapshotted for a takeover: connection threads must not run any more
    /// requests (checked under the agent lock, so a request is either in the snapshot or not
    /// run at all).
    pub(crate) frozen: AtomicBool,
    pub(crate) shutdown: AtomicBool,
    pub(crate) handed_over: AtomicBool,
    pub(crate) active: AtomicUsize,
    /// systemd owns the socket file (passed on through takeovers): never unlink it.
    pub(crate) activated: bool,
    pub(crate) listener_fd: RawFd,
    wake_tx: UnixStream,
}

impl Shared {
    /// Wakes the accept loop to look at the flags.
    pub(crate) fn wake(&self) {
        let _ = (&self.wake_tx).write(&[1]);
    }
}

use std::io::{Read, Write};

/// Why keelsond stopped, as an exit status.
#[derive(Debug)]
pub struct Exit {
    /// Process exit status.
    pub code: u8,
    /// What to tell the user (empty for a clean stop).
    pub message: String,
}

impl Exit {
    fn fail(code: u8, message: impl Into<String>) -> Exit {
        Exit {
            code,
            message: message.into(),
        }
    }
}

fn load_config(path: &Option<PathBuf>) -> Result<OwnedTree, String> {
    match path {
        Some(p) => configcmd::load(&Source::new(Some(p)), configcmd::options(false))
            .map_err(|e| e.to_string()),
        None => Ok(OwnedTree::empty()),
    }
}

/// Runs the daemon until a signal, idle timeout or takeover stops it. `ready` is called once the
/// socket accepts connections (`--detach` releases the waiting parent there).
pub fn run(opts: Options, ready: impl FnOnce()) -> Exit {
    // The configuration is read first: a bad one must not cost a takeover (the old instance
    // would already have let go) nor leave a socket and pidfile behind.
    let config = match load_config(&opts.config) {
        Ok(c) => c,
        Err(e) => return Exit::fail(1, e),
    };

    // A takeover first fetches the socket and state, while the old instance still holds the pidfile.
    let handover = if opts.takeover {
        match takeover::take(
            &opts.socket,
            &opts.protocol,
            opts.version,
            opts.takeover_wait * 2,
        ) {
            Ok(h) => Some(h),
            Err(e) => return Exit::fail(1, e.to_string()),
        }
    } else {
        None
    };

    let pidfile = match &opts.pidfile {
        Some(p) => {
            let wait = if handover.is_some() {
                opts.takeover_wait * 2
            } else {
                Duration::from_millis(20)
            };
            let taken = if opts.overwrite_pidfile {
                Pidfile::overwrite(p)
            } else {
                Pidfile::acquire(p, wait)
            };
            match taken {
                Ok(f) => Some(f),
                Err(PidfileError::Held(pid)) => {
                    let who = pid.map_or(String::new(), |p| format!(" (pid {p})"));
                    return Exit::fail(
                        EXIT_ALREADY_RUNNING,
                        format!(
                            "failed to acquire lock on {}: already running{who}",
                            p.display()
                        ),
                    );
                }
                Err(e) => return Exit::fail(1, format!("{}: {e}", p.display())),
            }
        }
        None => None,
    };

    let term = Arc::new(AtomicBool::new(false));
    let hup = Arc::new(AtomicBool::new(false));
    let (wake_rx, wake_tx) = match UnixStream::pair() {
        Ok(p) => p,
        Err(e) => return Exit::fail(1, format!("wake pipe: {e}")),
    };
    let _ = wake_rx.set_nonblocking(true);
    let _ = wake_tx.set_nonblocking(true);
    for sig in [
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGQUIT,
    ] {
        let _ = signal_hook::flag::register(sig, term.clone());
    }
    let _ = signal_hook::flag::register(signal_hook::consts::SIGHUP, hup.clone());
    for sig in [
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGQUIT,
        signal_hook::consts::SIGHUP,
    ] {
        if let Ok(tx) = wake_tx.try_clone() {
            let _ = signal_hook::low_level::pipe::register(sig, tx);
        }
    }

    let (listener, origin, state) = match handover {
        Some(h) if h.activated => {
            socket::forget_systemd();
            (h.listener, Origin::Activated, Some(h.state))
        }
        Some(h) => {
            socket::forget_systemd();
            (h.listener, Origin::TakenOver, Some(h.state))
        }
        None => match socket::from_systemd(&opts.socket) {
            Some(l) => (l, Origin::Activated, None),
            None => match socket::bind(&opts.socket) {
                Ok(l) => (l, Origin::Created, None),
                Err(e) => {
                    if let Some(p) = pidfile {
                        p.remove();
                    }
                    return Exit::fail(1, e.to_string());
                }
            },
        },
    };
    let _ = listener.set_nonblocking(true);

    let mut agent = Agent::new(config, &opts.protocol);
    if let Some(s) = &state {
        agent.restore(s);
    }
    let shared = Arc::new(Shared {
        opts,
        agent: Mutex::new(agent),
        draining: AtomicBool::new(false),
        accept_paused: AtomicBool::new(false),
        frozen: AtomicBool::new(false),
        shutdown: AtomicBool::new(false),
        handed_over: AtomicBool::new(false),
        active: AtomicUsize::new(0),
        activated: origin == Origin::Activated,
        listener_fd: listener.as_raw_fd(),
        wake_tx,
    });

    let unixctl = shared
        .opts
        .unixctl
        .clone()
        .and_then(|p| start_unixctl(&shared, &p));
    tracing::info!(socket = %shared.opts.socket.display(), ?origin, protocol = %shared.opts.protocol, "ready");
    ready();
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);

    let exit = accept_loop(&shared, &listener, &wake_rx, &term, &hup);
    if let Some(u) = unixctl {
        u.stop();
    }

    let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
    let handed_over = shared.handed_over.load(Ordering::SeqCst);
    drop(listener);
    if !handed_over && origin != Origin::Activated {
        let _ = std::fs::remove_file(&shared.opts.socket);
    }
    if let Some(p) = pidfile {
        // After a handover the new instance takes the lock; the file stays for it.
        if handed_over {
            drop(p);
        } else {
            p.remove();
        }
    }
    tracing::info!("shutting down");
    exit
}

fn accept_loop(
    shared: &Arc<Shared>,
    listener: &UnixListener,
    wake_rx: &UnixStream,
    term: &AtomicBool,
    hup: &AtomicBool,
) -> Exit {
    let mut clients: Vec<(JoinHandle<()>, Option<UnixStream>)> = Vec::new();
    let mut next_id = 0u64;
    let mut idle_since = Instant::now();
    loop {
        clients.retain(|(h, _)| !h.is_finished());
        if term.swap(false, Ordering::SeqCst) {
            tracing::info!("shutdown requested by signal");
            shared.shutdown.store(true, Ordering::SeqCst);
        }
        if hup.swap(false, Ordering::SeqCst) {
            reload(shared);
        }
        if shared.shutdown.load(Ordering::SeqCst) {
            break;
        }
        let active = shared.active.load(Ordering::SeqCst);
        if active > 0 {
            idle_since = Instant::now();
        } else if let Some(t) = shared.opts.idle_timeout {
            if idle_since.elapsed() >= t {
                tracing::info!("inactive for {} seconds; exiting", t.as_secs());
                break;
            }
        }
        let draining = shared.draining.load(Ordering::SeqCst);
        shared.accept_paused.store(draining, Ordering::SeqCst);
        let accepting = !draining && active < shared.opts.max_clients;
        let mut fds = vec![PollFd::new(wake_rx.as_fd(), PollFlags::POLLIN)];
        if accepting {
            fds.push(PollFd::new(listener.as_fd(), PollFlags::POLLIN));
        }
        let timeout = if accepting { 1000u16 } else { 50 };
        let _ = poll(&mut fds, PollTimeout::from(timeout));
        let mut sink = [0u8; 64];
        while matches!((&*wake_rx).read(&mut sink), Ok(n) if n > 0) {}
        if !accepting {
            continue;
        }
        loop {
            if shared.active.load(Ordering::SeqCst) >= shared.opts.max_clients
                || shared.draining.load(Ordering::SeqCst)
            {
                break;
            }
            match listener.accept() {
                Ok((stream, _)) => {
                    // Any connection restarts the idle count, however short it is.
                    idle_since = Instant::now();
                    let _ = stream.set_nonblocking(false);
                    next_id += 1;
                    let id = next_id;
                    let keep = stream.try_clone().ok();
                    let sh = shared.clone();
                    sh.active.fetch_add(1, Ordering::SeqCst);
                    let spawned = std::thread::Builder::new()
                        .name(format!("client-{id}"))
                        .spawn(move || {
                            conn::serve(sh.clone(), stream, id);
                            sh.active.fetch_sub(1, Ordering::SeqCst);
                            sh.wake();
                        });
                    match spawned {
                        Ok(h) => clients.push((h, keep)),
                        Err(e) => {
                            shared.active.fetch_sub(1, Ordering::SeqCst);
                            tracing::error!("cannot start a client thread: {e}");
                        }
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    tracing::warn!("accept: {e}");
                    break;
                }
            }
        }
    }
    // Wake every connection thread and wait for it (bounded).
    shared.shutdown.store(true, Ordering::SeqCst);
    for (_, s) in &clients {
        if let Some(s) = s {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    for (h, _) in clients {
        while !h.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        if h.is_finished() {
            let _ = h.join();
        }
    }
    Exit {
        code: 0,
        message: String::new(),
    }
}

fn reload(shared: &Shared) {
    match load_config(&shared.opts.config) {
        Ok(c) => {
            shared
                .agent
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .config = c;
            tracing::info!("configuration reloaded");
        }
        Err(e) => tracing::error!("reload failed, keeping the old configuration: {e}"),
    }
}

/// Starts the unixctl server (`exit`, `version`, `list-commands`, `keelsond/status`). A failure
/// is logged and keelsond runs on without it: the request socket is already live (and, after a
/// takeover, the old instance has already let go).
fn start_unixctl(shared: &Arc<Shared>, path: &std::path::Path) -> Option<unixctl::Server> {
    let mut cmds = unixctl::Commands::new("keelsond", "Keelson", env!("CARGO_PKG_VERSION"));
    let sh = shared.clone();
    cmds.register("exit", Some(""), 0, 0, move |_| {
        tracing::info!("shutdown requested by unixctl");
        sh.shutdown.store(true, Ordering::SeqCst);
        sh.wake();
        Ok(String::new())
    });
    let sh = shared.clone();
    cmds.register("keelsond/status", Some(""), 0, 0, move |_| {
        let a = sh.agent.lock().unwrap_or_else(|p| p.into_inner());
        Ok(a.status()
            .iter()
            .map(|(k, v)| format!("{k}: {v}\n"))
            .collect())
    });
    match unixctl::Server::start(path, cmds) {
        Ok(s) => {
            tracing::info!(unixctl = %path.display(), "unixctl listening");
            Some(s)
        }
        Err(e) => {
            tracing::error!("unixctl {}: {e}", path.display());
            None
        }
    }
}
