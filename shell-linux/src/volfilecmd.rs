//! `keelctl volfile check`: parse, validate and initialise a GlusterFS volfile without serving
//! it, and print the normalised graph (GlusterFS's `Final graph`); `show` stops after
//! validation.
//!
//! Errors are `FILE:LINE:COL: message` (exit status 1); non-fatal problems are printed as
//! `FILE:LINE:COL: warning: message` and do not change the verdict, as in GlusterFS.

use std::ffi::OsStr;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use keelson_core::xlator::graph::{BrickVolumeId, Host};
use keelson_core::xlator::types::BUILTIN;
use keelson_core::xlator::{Event, Graph, Volfile, Word};

use crate::configcmd::CmdError;
use crate::source::Source;

/// Volumes a checked volfile may hold.
pub const MAX_VOLUMES: usize = 1024;
/// Options over all volumes.
pub const MAX_OPTIONS: usize = 8192;
/// Subvolume links over all volumes.
pub const MAX_LINKS: usize = 4096;

/// The parsed form `check` uses.
pub type CheckedVolfile<'a> = Volfile<'a, MAX_VOLUMES, MAX_OPTIONS, MAX_LINKS>;

/// Brick directories are checked on this machine's file system, as storage/posix's init does.
#[derive(Debug, Default)]
pub struct LocalHost;

impl Host for LocalHost {
    fn brick_directory(&mut self, path: &Word<'_>) -> bool {
        let bytes: Vec<u8> = path.bytes().collect();
        Path::new(OsStr::from_bytes(&bytes)).is_dir()
    }

    fn brick_volume_id(&mut self, path: &Word<'_>) -> BrickVolumeId {
        let mut bytes: Vec<u8> = path.bytes().collect();
        if bytes.contains(&0) {
            return BrickVolumeId::Absent;
        }
        bytes.push(0);
        let mut id = [0u8; 16];
        // SAFETY: both strings are NUL-terminated and `id` has the 16 bytes we say it has.
        let n = unsafe {
            libc::lgetxattr(
                bytes.as_ptr().cast(),
                c"trusted.glusterfs.volume-id".as_ptr(),
                id.as_mut_ptr().cast(),
                id.len(),
            )
        };
        // Upstream refuses anything but exactly 16 bytes; absent and unreadable alike.
        if n == 16 {
            BrickVolumeId::Id(id)
        } else {
            BrickVolumeId::Absent
        }
    }
}

/// What `check` does beyond parsing and validation.
#[derive(Clone, Copy, Debug)]
pub struct CheckOptions {
    /// Run every translator's init (brick directories included) and activate the graph.
    pub init: bool,
    /// Print every delivered event after the graph (`event NAME FROM -> TO`).
    pub events: bool,
}

/// The graph `check` and `mount` work on: parsed, validated and (with `opts.init`)
/// initialised and activated; warnings go to stderr. `f` gets the graph and whether the top
/// came up, plus the activation's events as `check --events` prints them.
pub fn with_graph<R>(
    src: &Source,
    opts: CheckOptions,
    f: impl FnOnce(&CheckedGraph<'_, '_>, bool, String) -> Result<R, CmdError>,
) -> Result<R, CmdError> {
    let name = src.name();
    let text = src.read().map_err(|e| CmdError(format!("{name}: {e}")))?;
    let mut stderr = std::io::stderr().lock();
    // The tables are a few hundred KiB: keep them off the stack.
    let vf = Box::new(
        CheckedVolfile::parse_with(&text, &mut |w| {
            let _ = writeln!(stderr, "{name}:{}: warning: {}", w.pos, w.kind);
        })
        .map_err(|e| CmdError(format!("{name}:{e}")))?,
    );
    let mut graph = Graph::build(&vf, BUILTIN).map_err(|e| CmdError(format!("{name}:{e}")))?;
    let mut events = String::new();
    let mut top_up = true;
    if opts.init {
        graph
            .init(&mut LocalHost)
            .map_err(|e| CmdError(format!("{name}:{e}")))?;
        let top = vf.top();
        top_up = false;
        graph.activate(&mut |n| {
            if n.to.is_none() && n.from == top {
                top_up = n.event == Event::ChildUp;
            }
            if opts.events {
                let to =
                    n.to.map_or("(root)".to_string(), |t| vf.volumes()[t].name.to_string());
                let from = vf.volumes()[n.from].name;
                events += &format!("event {} {from} -> {to}\n", n.event.name());
            }
        });
    }
    f(&graph, top_up, events)
}

/// A graph over a [`CheckedVolfile`].
pub type CheckedGraph<'v, 'a> = Graph<'v, 'a, MAX_VOLUMES, MAX_OPTIONS, MAX_LINKS>;

/// `check` (and `show`, without init): the verdict and the normalised graph on stdout.
pub fn check(src: &Source, opts: CheckOptions) -> Result<(), CmdError> {
    let name = src.name();
    with_graph(src, opts, |graph, top_up, events| {
        let mut dump = String::new();
        graph
            .write_dump(&mut dump)
            .map_err(|_| CmdError(format!("{name}: the graph is too large to print")))?;
        let mut out = std::io::stdout().lock();
        out.write_all(dump.as_bytes())
            .and_then(|()| out.write_all(events.as_bytes()))
            .and_then(|()| out.flush())
            .map_err(|e| CmdError(format!("stdout: {e}")))?;
        if top_up {
            Ok(())
        } else {
            Err(CmdError(format!("{name}: the top volume did not come up")))
        }
    })
}
