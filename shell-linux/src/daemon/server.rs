//! keelsond's lifecycle, in libdaemon's order (config-tree.md §3.3): pidfile lock, signals,
//! socket (or systemd's, or the previous instance's), ready, event loop, orderly shutdown.

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use keelson_core::config::OwnedTree;

use super::agent::Agent;
use super::mounts::Mounts;
use super::pidfile::{Pidfile, PidfileError, EXIT_ALREADY_RUNNING};
use super::resources::SharedResources;
use super::socket::{self, Origin};
use super::{event_loop, takeover};
use crate::configcmd;
use crate::remote::{self, Link};
use crate::source::Source;
use crate::stream::SslConfig;
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
    /// Management remotes (`--remote`), each `NAME[,NAME...]`.
    pub remotes: Vec<String>,
    /// Key, certificate and CA for `ssl:`/`pssl:` remotes.
    pub ssl: Option<SslConfig>,
}

/// State the event loop shares with the unixctl thread.
pub struct Shared {
    pub(crate) opts: Options,
    pub(crate) agent: Mutex<Agent>,
    /// Asked to stop (unixctl `exit`); the loop looks at it when woken.
    pub(crate) shutdown: AtomicBool,
    /// systemd owns the socket file (passed on through takeovers): never unlink it.
    pub(crate) activated: bool,
    /// The configuration's FUSE mounts.
    pub(crate) mounts: Mutex<Mounts>,
    /// The configuration's replicated resources (also the agent's `repl/*` driver).
    pub(crate) resources: SharedResources,
    wake_tx: UnixStream,
}

impl Shared {
    /// Wakes the event loop to look at the flags.
    pub(crate) fn wake(&self) {
        let _ = (&self.wake_tx).write(&[1]);
    }
}

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
    let resources = SharedResources::default();
    agent.repl = Box::new(resources.clone());
    let shared = Arc::new(Shared {
        opts,
        agent: Mutex::new(agent),
        shutdown: AtomicBool::new(false),
        activated: origin == Origin::Activated,
        mounts: Mutex::new(Mounts::default()),
        resources,
        wake_tx,
    });
    {
        let agent = shared.agent.lock().unwrap_or_else(|p| p.into_inner());
        lock(&shared.mounts).apply(&agent.config);
        shared.resources.apply(&agent.config);
    }

    // Checked at startup already; a remote that cannot start is logged, not fatal: the
    // request socket is live by now (and after a takeover the old instance has let go).
    let links: Arc<Vec<Link>> = Arc::new(
        shared
            .opts
            .remotes
            .iter()
            .filter_map(|r| {
                Link::start(r, shared.opts.ssl.clone())
                    .map_err(|e| tracing::error!("{e}"))
                    .ok()
            })
            .collect(),
    );
    let unixctl = shared
        .opts
        .unixctl
        .clone()
        .and_then(|p| start_unixctl(&shared, &links, &p));
    tracing::info!(socket = %shared.opts.socket.display(), ?origin, protocol = %shared.opts.protocol, "ready");
    ready();
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);

    let signals = event_loop::Signals {
        term: &term,
        hup: &hup,
    };
    let end = event_loop::run(&shared, &listener, &wake_rx, signals);
    lock(&shared.mounts).stop_all();
    shared.resources.stop_all();
    if let Some(u) = unixctl {
        u.stop();
    }
    drop(links);

    let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
    let handed_over = end == event_loop::End::HandedOver;
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
    Exit {
        code: 0,
        message: String::new(),
    }
}

/// A lock that a panicked holder did not leave unusable.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

pub(crate) fn reload(shared: &Shared) {
    match load_config(&shared.opts.config) {
        Ok(c) => {
            lock(&shared.mounts).apply(&c);
            shared.resources.apply(&c);
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

/// Starts the unixctl server (`exit`, `version`, `list-commands`, `keelsond/status`,
/// `reconnect/show`, `mount/list`, `mount/io-stats NAME [XLATOR]`, `mount/engine-stats NAME`).
/// A failure
/// is logged and keelsond runs on without it: the request socket is already live (and, after a
/// takeover, the old instance has already let go).
fn start_unixctl(
    shared: &Arc<Shared>,
    links: &Arc<Vec<Link>>,
    path: &std::path::Path,
) -> Option<unixctl::Server> {
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
    let l = links.clone();
    cmds.register("reconnect/show", Some(""), 0, 0, move |_| {
        Ok(remote::show(&l))
    });
    let sh = shared.clone();
    cmds.register("mount/list", Some(""), 0, 0, move |_| {
        Ok(lock(&sh.mounts).list())
    });
    let sh = shared.clone();
    cmds.register("mount/io-stats", Some("NAME [XLATOR]"), 1, 2, move |a| {
        // The mounts lock is let go before the graph's own lock is taken.
        let g = lock(&sh.mounts).graph(&a[0])?;
        g.io_stats(a.get(1).map(String::as_str))
    });
    let sh = shared.clone();
    cmds.register("mount/engine-stats", Some("NAME"), 1, 1, move |a| {
        let g = lock(&sh.mounts).graph(&a[0])?;
        Ok(crate::mountcmd::engine_stats(&g))
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
