//! `keelctl`: Keelson's operator tool.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use keelson_linux::configcmd::{self, options};
use keelson_linux::source::Source;
use keelson_linux::{paths, replcmd, requestcmd, volfilecmd};

#[derive(Parser)]
#[command(name = "keelctl", version, about = "Keelson's operator tool")]
struct Cli {
    /// keelsond's request socket [default: RUNDIR/keelsond.socket].
    #[arg(long, short = 's', global = true)]
    socket: Option<PathBuf>,
    /// Seconds to wait for the connection and for each reply.
    #[arg(long, global = true, default_value_t = 10.0)]
    timeout: f64,
    /// Require this protocol name in the daemon's hello.
    #[arg(long, global = true)]
    protocol: Option<String>,
    /// Require this protocol version in the daemon's hello (0: any).
    #[arg(long, global = true, default_value_t = 0)]
    protocol_version: i64,
    /// Start keelsond when nothing answers on the socket, and wait for it.
    #[arg(long, global = true)]
    autostart: bool,
    #[command(flatten)]
    ssl: keelson_linux::stream::SslArgs,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Config-tree files (libdevmapper's dm_config text format).
    #[command(subcommand)]
    Config(ConfigCmd),
    /// GlusterFS volfiles (translator graphs).
    #[command(subcommand)]
    Volfile(VolfileCmd),
    /// Serve a volfile's graph through FUSE in the foreground, until it is unmounted or the
    /// process gets SIGTERM/SIGINT.
    Mount {
        /// The volfile.
        volfile: PathBuf,
        /// Where to mount it.
        mountpoint: PathBuf,
        /// Answer `ovs-appctl -t PATH` here (`io-stats/dump [XLATOR]`, `engine/stats`).
        #[arg(long, value_name = "PATH")]
        unixctl: Option<PathBuf>,
        /// Log to this file (appending) instead of stderr.
        #[arg(long, value_name = "PATH")]
        log_file: Option<PathBuf>,
        /// Run even a lone storage/posix volume through the translator engine (for
        /// comparisons; by default such a brick is served directly).
        #[arg(long, hide = true)]
        engine: bool,
    },
    /// Send one request (libdaemon's daemon_send_simple) and print the reply.
    ///
    /// Arguments are `key=value`: an integer value is sent plain, anything else as a quoted
    /// string (wrap it in double quotes to force a string). Exit status: 0 for a reply, 2 when
    /// its response is "failed" or "invalid", 1 when no reply came.
    Request {
        /// The request name.
        name: String,
        /// `key=value` arguments.
        args: Vec<String>,
    },
    /// A replication verb (listed below), parsed by keelson-core's admin table.
    #[command(external_subcommand)]
    Repl(Vec<String>),
}

#[derive(Subcommand)]
enum ConfigCmd {
    /// Print the canonical form, exactly as libdevmapper writes it.
    Fmt {
        /// Keep duplicate keys (libdaemon's parse) instead of merging them (dm_config_from_string).
        #[arg(long)]
        no_dup_check: bool,
        /// Input file, `-` for standard input.
        file: Option<PathBuf>,
    },
    /// Print the value at a `/`-separated path.
    Get {
        /// Keep duplicate keys; the first one answers.
        #[arg(long)]
        no_dup_check: bool,
        /// Input file, `-` for standard input.
        file: PathBuf,
        /// Path such as `devices/filter`.
        path: String,
    },
    /// Convert text to the compact binary (postcard) form on standard output.
    Encode {
        /// Keep duplicate keys.
        #[arg(long)]
        no_dup_check: bool,
        /// Input file, `-` for standard input.
        file: PathBuf,
    },
    /// Convert the binary form back to canonical text.
    Decode {
        /// Input file, `-` for standard input.
        file: PathBuf,
    },
}

#[derive(Subcommand)]
enum VolfileCmd {
    /// Parse, validate and initialise without serving; print the normalised graph.
    Check {
        /// Also print every event of the activation (`event NAME FROM -> TO`).
        #[arg(long)]
        events: bool,
        /// Input file, `-` for standard input.
        file: PathBuf,
    },
    /// Parse and validate only (no init, brick directories unchecked); print the graph.
    Show {
        /// Input file, `-` for standard input.
        file: PathBuf,
    },
}

/// keelsond beside this executable, else from PATH.
fn keelsond_path() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join("keelsond")))
        .filter(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from("keelsond"))
}

fn main() -> ExitCode {
    let matches = Cli::command().after_help(replcmd::help()).get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    // Read now, so a bad key, certificate or CA file is reported naming the file; the
    // configuration is for ssl: stream names.
    let _ssl = match cli.ssl.load() {
        Ok(ssl) => ssl,
        Err(e) => {
            eprintln!("keelctl: {e}");
            return ExitCode::from(1);
        }
    };
    // Where and how `request` and the replication verbs reach keelsond.
    let socket = cli.socket.unwrap_or_else(paths::default_socket);
    let autostart = cli.autostart.then(keelsond_path);
    let daemon = requestcmd::Request {
        socket: &socket,
        timeout: Duration::from_secs_f64(cli.timeout.max(0.001)),
        protocol: cli.protocol.as_deref(),
        version: cli.protocol_version,
        autostart: autostart.as_deref(),
    };
    let r = match cli.cmd {
        Cmd::Config(c) => match c {
            ConfigCmd::Fmt { no_dup_check, file } => {
                configcmd::fmt(&Source::new(file.as_deref()), options(no_dup_check))
            }
            ConfigCmd::Get {
                no_dup_check,
                file,
                path,
            } => configcmd::get(&Source::new(Some(&file)), &path, options(no_dup_check)),
            ConfigCmd::Encode { no_dup_check, file } => {
                configcmd::encode(&Source::new(Some(&file)), options(no_dup_check))
            }
            ConfigCmd::Decode { file } => configcmd::decode(&Source::new(Some(&file))),
        },
        Cmd::Volfile(c) => {
            let (file, opts) = match c {
                VolfileCmd::Check { events, file } => {
                    (file, volfilecmd::CheckOptions { init: true, events })
                }
                VolfileCmd::Show { file } => (
                    file,
                    volfilecmd::CheckOptions {
                        init: false,
                        events: false,
                    },
                ),
            };
            volfilecmd::check(&Source::new(Some(&file)), opts)
        }
        Cmd::Mount {
            volfile,
            mountpoint,
            unixctl,
            log_file,
            engine,
        } => keelson_linux::mountcmd::mount(
            &volfile,
            &mountpoint,
            &keelson_linux::mountcmd::MountOptions {
                unixctl,
                log_file,
                engine,
            },
        ),
        Cmd::Request { name, args } => match requestcmd::run(&daemon, &name, &args) {
            Ok(code) => return ExitCode::from(code),
            Err(e) => Err(e),
        },
        Cmd::Repl(words) => return ExitCode::from(replcmd::run(&daemon, &words)),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(1)
        }
    }
}
