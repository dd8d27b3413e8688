//! `keelctl mount VOLFILE MOUNTPOINT`: the volfile checked as `keelctl volfile check` does, then
//! served through FUSE in the foreground until unmounted or stopped by SIGTERM/SIGINT.
//!
//! Any graph the core's built-in translators run is served, by a
//! [`GraphVolume`]: the translators in the frame engine, each storage/posix
//! leaf a brick in GlusterFS's on-disk format. A graph that is one storage/posix volume is
//! served by its [`Brick`] directly unless `--engine` asks for the engine (the direct path
//! skips the engine's per-fop work; `fuse_bench` compares the two).
//!
//! With `--unixctl PATH` the mount answers `ovs-appctl -t PATH` ([`commands`]):
//! `io-stats/dump [XLATOR]` prints debug/io-stats counters (translators.md §5.2) and
//! `engine/stats` the frame engine's. Logs go to stderr, or to `--log-file`, in glusterfs's
//! line layout ([`crate::glusterlog`]); `RUST_LOG` filters them (default `warn`, plus
//! `xlator=info`: debug/trace's lines, which glusterfs logs at INFO).

use std::path::{Path, PathBuf};

use crate::brick::Brick;
use crate::configcmd::CmdError;
use crate::graphvol::{self, GraphVolume};
use crate::source::Source;
use crate::unixctl::{self, Commands};
use crate::volfilecmd::{self, CheckOptions};
use crate::volume::Volume;

/// What `keelctl mount` was asked besides the volfile and mount point.
#[derive(Clone, Debug, Default)]
pub struct MountOptions {
    /// Serve `ovs-appctl` on this socket.
    pub unixctl: Option<PathBuf>,
    /// Log here (appending) instead of stderr.
    pub log_file: Option<PathBuf>,
    /// Run even a lone storage/posix volume through the frame engine.
    pub engine: bool,
}

/// A volume ready to serve.
pub struct Opened {
    /// What FUSE drives.
    pub volume: Box<dyn Volume>,
    /// The graph, when the engine runs it (for control commands).
    pub graph: Option<GraphVolume>,
}

/// The default log filter: warnings, and translators' own lines (debug/trace) at INFO.
pub const DEFAULT_LOG_FILTER: &str = "warn,xlator=info";

/// Serves the volfile's graph on `mountpoint` (see the module doc).
pub fn mount(volfile: &Path, mountpoint: &Path, opts: &MountOptions) -> Result<(), CmdError> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_LOG_FILTER));
    let writer = match &opts.log_file {
        Some(p) => {
            let f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .map_err(|e| CmdError(format!("{}: {e}", p.display())))?;
            tracing_subscriber::fmt::writer::BoxMakeWriter::new(std::sync::Mutex::new(f))
        }
        None => tracing_subscriber::fmt::writer::BoxMakeWriter::new(std::io::stderr),
    };
    let _ = tracing_subscriber::fmt()
        .event_format(crate::glusterlog::GlusterLog)
        .with_env_filter(filter)
        .with_writer(writer)
        .try_init();
    let opened = open_volume(volfile, opts.engine)?;
    // Before the FUSE threads: the socket's mode is set through the process umask.
    let ctl = match &opts.unixctl {
        Some(p) => {
            let mut cmds = Commands::new("keelctl", "Keelson", env!("CARGO_PKG_VERSION"));
            commands(&mut cmds, opened.graph.clone());
            Some(
                unixctl::Server::start(p, cmds)
                    .map_err(|e| CmdError(format!("{}: {e}", p.display())))?,
            )
        }
        None => None,
    };
    let r = crate::fuse::serve(opened.volume, mountpoint, &fsname(volfile))
        .map_err(|e| CmdError(e.to_string()));
    if let Some(s) = ctl {
        s.stop();
    }
    r
}

/// The file system name a mount shows (`mount`, `/proc/mounts`): the volfile's stem.
pub fn fsname(volfile: &Path) -> String {
    volfile
        .file_stem()
        .map_or_else(|| "keelson".into(), |s| s.to_string_lossy().into_owned())
}

/// The volume a volfile describes, checked (parse, validation, init, activation) and ready to
/// serve: a lone storage/posix volume as its brick (unless `engine`), anything else as a
/// [`GraphVolume`]. Graphs that cannot be served are refused naming the volume.
pub fn open_volume(volfile: &Path, engine: bool) -> Result<Opened, CmdError> {
    let src = Source::new(Some(volfile));
    let name = src.name();
    let opts = CheckOptions {
        init: true,
        events: false,
    };
    volfilecmd::with_graph(&src, opts, |g, top_up, _| {
        if !top_up {
            return Err(CmdError(format!("{name}: the top volume did not come up")));
        }
        if !engine {
            if let Some(dir) = graphvol::lone_posix(g) {
                let brick =
                    Brick::open(&dir).map_err(|e| CmdError(format!("{}: {e}", dir.display())))?;
                return Ok(Opened {
                    volume: Box::new(brick),
                    graph: None,
                });
            }
        }
        let gv = GraphVolume::new(g).map_err(|e| CmdError(format!("{name}: {e}")))?;
        Ok(Opened {
            volume: Box::new(gv.clone()),
            graph: Some(gv),
        })
    })
}

/// The refusal of a graph command on a mount without a graph.
pub fn no_graph() -> String {
    "this mount serves a lone storage/posix brick directly: it has no translators".into()
}

/// Registers `keelctl mount`'s control commands (keelsond has its own, naming the mount):
///
/// - `io-stats/dump [XLATOR]`: the io-stats dump of that debug/io-stats translator, or of
///   each (after a `NAME:` line);
/// - `engine/stats`: the frame engine's counters.
pub fn commands(cmds: &mut Commands, graph: Option<GraphVolume>) {
    let g = graph.clone();
    cmds.register("io-stats/dump", Some("[XLATOR]"), 0, 1, move |a| match &g {
        Some(g) => g.io_stats(a.first().map(String::as_str)),
        None => Err(no_graph()),
    });
    cmds.register("engine/stats", Some(""), 0, 0, move |_| match &graph {
        Some(g) => Ok(engine_stats(g)),
        None => Err(no_graph()),
    });
}

/// `engine/stats`'s text.
pub fn engine_stats(g: &GraphVolume) -> String {
    let s = g.engine_stats();
    format!(
        "stacks: {}\nframes: {}\ntail winds: {}\nunwinds: {}\nlive frames: {}\npeak frames: {}\n\
         refused winds: {}\nfaults: {}\nabandoned frames: {}\ndropped trace lines: {}\n\
         open fds: {}\n",
        s.stacks,
        s.frames,
        s.tails,
        s.unwinds,
        s.live_frames,
        s.peak_frames,
        s.exhausted,
        s.faults,
        s.abandoned,
        s.dropped,
        g.open_fds()
    )
}
