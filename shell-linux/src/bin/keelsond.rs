//! `keelsond`: Keelson's host agent, answering config-tree requests on a UNIX socket the way
//! LVM's daemons do (libdaemon's wire protocol).

use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use keelson_linux::daemon::monitor;
use keelson_linux::daemon::server::{self, Options};
use keelson_linux::{configcmd, paths, source::Source};

#[derive(Parser)]
#[command(name = "keelsond", version, about = "Keelson's host agent")]
// `-p` is already --pidfile here, so --private-key goes without its OVS short option.
#[command(mut_arg("private_key", |a| a.short(None)))]
struct Cli {
    /// Configuration file (config-tree text); re-read on SIGHUP.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Request socket [default: RUNDIR/keelsond.socket].
    #[arg(long, short = 's')]
    socket: Option<PathBuf>,
    /// Keep a locked pidfile [default file: RUNDIR/keelsond.pid].
    #[arg(long, short = 'p', num_args = 0..=1, default_missing_value = "keelsond.pid")]
    pidfile: Option<PathBuf>,
    /// Replace the pidfile even if a running process holds it (no effect without --pidfile).
    #[arg(long)]
    overwrite_pidfile: bool,
    /// Run in the background; the parent exits once the socket is ready.
    #[arg(long)]
    detach: bool,
    /// Run a monitor process that restarts the daemon when it dies of a crash signal.
    #[arg(long)]
    monitor: bool,
    /// With --detach, stay in the current directory instead of `/`.
    #[arg(long)]
    no_chdir: bool,
    /// Exit after this many seconds with no clients (0: never).
    #[arg(long, short = 't', default_value_t = 0)]
    idle_timeout: u64,
    /// Protocol name reported by `hello`.
    #[arg(long, default_value = "keelson")]
    protocol: String,
    /// Protocol version reported by `hello`.
    #[arg(long, default_value_t = 1)]
    protocol_version: i64,
    /// A uid allowed to send requests (repeat; default: root and our own uid).
    #[arg(long = "allow-uid")]
    allow_uid: Vec<u32>,
    /// Connections served at once; further ones wait in the listen queue.
    #[arg(long, default_value_t = 256)]
    max_clients: usize,
    /// Close a connection idle (or not reading its reply) this many seconds.
    #[arg(long, default_value_t = 300)]
    client_timeout: u64,
    /// Largest request accepted, in bytes.
    #[arg(long, default_value_t = keelson_core::daemon::DEFAULT_MAX_MESSAGE)]
    max_message: usize,
    /// Take over from the instance serving the socket: its state, its socket, no refused client.
    #[arg(long)]
    takeover: bool,
    /// Seconds the old instance lets open connections finish before handing over (longer ones
    /// are closed); the new one waits twice that for the reply and the pidfile.
    #[arg(long, default_value_t = 5)]
    takeover_wait: u64,
    /// What to log (comma list of all, error, warn, info, wire, debug).
    #[arg(long, short = 'l', default_value = "info")]
    log: String,
    /// Log to this file instead of stderr (stderr goes to /dev/null with --detach).
    #[arg(long)]
    log_file: Option<PathBuf>,
    /// unixctl socket for `ovs-appctl -t PATH` (`none`: no socket; a relative path is under
    /// RUNDIR) [default: RUNDIR/keelsond.PID.ctl].
    #[arg(long)]
    unixctl: Option<PathBuf>,
    /// A management remote, `NAME[,NAME...]` (repeat for several): a JSON-RPC session to an
    /// OVS stream name (`unix:PATH`, `tcp:IP:PORT`, passive `punix:`, `ptcp:`), reconnecting
    /// with OVS's backoff; several names in one make a rotation. See `reconnect/show`.
    #[arg(long)]
    remote: Vec<String>,
    /// Check the configuration and exit.
    #[arg(long)]
    check: bool,
    #[command(flatten)]
    ssl: keelson_linux::stream::SslArgs,
}

fn filter(spec: &str) -> (String, bool) {
    let words: Vec<&str> = spec.split(',').map(str::trim).collect();
    let wire = words.iter().any(|w| matches!(*w, "wire" | "all"));
    let level = if words.iter().any(|w| matches!(*w, "debug" | "all")) {
        "debug"
    } else if words.contains(&"info") {
        "info"
    } else if words.contains(&"warn") {
        "warn"
    } else {
        "error"
    };
    let wire_level = if wire { "debug" } else { "off" };
    (format!("{level},keelsond::wire={wire_level}"), wire)
}

/// Forks; the parent waits for the child's "ready" byte and exits with its verdict. Returns the
/// pipe end the child writes readiness to.
fn detach(no_chdir: bool) -> Result<OwnedFd, String> {
    let (rx, tx) = nix::unistd::pipe().map_err(|e| format!("pipe: {e}"))?;
    // SAFETY: no thread has been started yet, so the child inherits a consistent process.
    match unsafe { nix::unistd::fork() }.map_err(|e| format!("fork: {e}"))? {
        nix::unistd::ForkResult::Parent { child } => {
            drop(tx);
            // "R" means ready; anything else is the child's reason for giving up.
            let mut said = Vec::new();
            let _ = std::fs::File::from(rx).read_to_end(&mut said);
            if said == b"R" {
                std::process::exit(0);
            }
            if !said.is_empty() {
                eprintln!("keelsond: {}", String::from_utf8_lossy(&said));
            }
            let code = match nix::sys::wait::waitpid(child, None) {
                Ok(nix::sys::wait::WaitStatus::Exited(_, c)) => c,
                _ => 1,
            };
            if code == i32::from(keelson_linux::daemon::pidfile::EXIT_ALREADY_RUNNING) {
                eprintln!("keelsond: failed to acquire lock on the pidfile: already running?");
            }
            std::process::exit(code);
        }
        nix::unistd::ForkResult::Child => {
            drop(rx);
            let _ = nix::unistd::setsid();
            if !no_chdir {
                let _ = std::env::set_current_dir("/");
            }
            let null = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open("/dev/null")
                .map_err(|e| e.to_string())?;
            let _ = nix::unistd::dup2_stdin(&null);
            let _ = nix::unistd::dup2_stdout(&null);
            let _ = nix::unistd::dup2_stderr(&null);
            Ok(tx)
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Read now, so a bad key, certificate or CA file stops start-up naming the file; the
    // configuration is for ssl:/pssl: stream names.
    let ssl = match cli.ssl.load() {
        Ok(ssl) => ssl,
        Err(e) => {
            eprintln!("keelsond: {e}");
            return ExitCode::from(1);
        }
    };
    let (spec, wire) = filter(&cli.log);
    let make_writer = match &cli.log_file {
        Some(p) => match std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
        {
            Ok(f) => tracing_subscriber::fmt::writer::BoxMakeWriter::new(std::sync::Mutex::new(f)),
            Err(e) => {
                eprintln!("keelsond: {}: {e}", p.display());
                return ExitCode::from(1);
            }
        },
        None => tracing_subscriber::fmt::writer::BoxMakeWriter::new(std::io::stderr),
    };
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(spec))
        .with_writer(make_writer)
        .with_ansi(false)
        .init();

    if cli.check {
        return match cli
            .config
            .as_ref()
            .map(|p| configcmd::load(&Source::new(Some(p)), configcmd::options(false)))
        {
            Some(Err(e)) => {
                eprintln!("{e}");
                ExitCode::from(1)
            }
            _ => ExitCode::SUCCESS,
        };
    }

    // Absolute, since --detach leaves the current directory.
    let abs = |p: PathBuf| std::path::absolute(&p).unwrap_or(p);
    let socket = abs(cli.socket.unwrap_or_else(paths::default_socket));
    let pidfile = cli.pidfile.map(|p| abs(paths::pidfile(&p)));
    let config = cli.config.map(abs);
    if let Some(dir) = socket.parent() {
        if !dir.as_os_str().is_empty() && !dir.exists() {
            let _ = std::fs::DirBuilder::new().recursive(true).create(dir);
        }
    }
    let mut allowed = cli.allow_uid;
    if allowed.is_empty() {
        allowed = vec![0, nix::unistd::geteuid().as_raw()];
    }
    for r in &cli.remote {
        if let Err(e) = keelson_linux::remote::check(r) {
            eprintln!("keelsond: {e}");
            return ExitCode::from(1);
        }
    }
    let opts = Options {
        remotes: cli.remote,
        ssl,
        socket,
        pidfile,
        overwrite_pidfile: cli.overwrite_pidfile,
        config,
        protocol: cli.protocol,
        version: cli.protocol_version,
        idle_timeout: (cli.idle_timeout > 0).then(|| Duration::from_secs(cli.idle_timeout)),
        allowed_uids: allowed,
        max_message: cli.max_message,
        max_clients: cli.max_clients.max(1),
        client_timeout: Duration::from_secs(cli.client_timeout.max(1)),
        wire_log: wire,
        takeover: cli.takeover,
        takeover_wait: Duration::from_secs(cli.takeover_wait),
        unixctl: None,
    };

    let ready_pipe = if cli.detach {
        match detach(cli.no_chdir) {
            Ok(tx) => Some(tx),
            Err(e) => {
                eprintln!("keelsond: {e}");
                return ExitCode::from(1);
            }
        }
    } else {
        None
    };
    let mut ready_pipe = ready_pipe.map(std::fs::File::from);
    if cli.monitor {
        // Only a daemon returns; the monitor stays in there until it exits.
        ready_pipe = Some(monitor::start(ready_pipe));
    }
    let pipe = std::cell::RefCell::new(ready_pipe);
    // Resolved here, after any fork, so the default names the daemon's own pid.
    let opts = Options {
        unixctl: match cli.unixctl {
            Some(p) if p.as_os_str() == "none" => None,
            Some(p) => Some(paths::run_dir().join(p)),
            None => Some(paths::default_unixctl()),
        },
        ..opts
    };
    let exit = server::run(opts, || {
        if let Some(mut tx) = pipe.borrow_mut().take() {
            let _ = tx.write_all(b"R");
        }
    });
    if !exit.message.is_empty() {
        tracing::error!("{}", exit.message);
        match pipe.borrow_mut().take() {
            Some(mut tx) => {
                let _ = tx.write_all(exit.message.as_bytes());
            }
            None => eprintln!("keelsond: {}", exit.message),
        }
    }
    ExitCode::from(exit.code)
}
