//! `keelctl mount VOLFILE MOUNTPOINT`: the volfile checked as `keelctl volfile check` does, then
//! served through FUSE in the foreground until unmounted or stopped by SIGTERM/SIGINT.
//!
//! What can be served today: a graph that is one storage/posix volume (its brick in
//! GlusterFS's on-disk format). The translators above it run in the core's frame engine,
//! which the mount does not drive yet; such graphs are refused by name rather than served
//! without them.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use keelson_core::xlator::options::Value;
use keelson_core::xlator::types::Kind;

use crate::brick::Brick;
use crate::configcmd::CmdError;
use crate::source::Source;
use crate::volfilecmd::{self, CheckOptions};

/// Serves the volfile's graph on `mountpoint`. Logs go to stderr (`RUST_LOG`, default
/// `warn`: failed fops the kernel turns into I/O errors are worth seeing).
pub fn mount(volfile: &Path, mountpoint: &Path) -> Result<(), CmdError> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
    let vol = open_volume(volfile)?;
    crate::fuse::serve(vol, mountpoint, &fsname(volfile)).map_err(|e| CmdError(e.to_string()))
}

/// The file system name a mount shows (`mount`, `/proc/mounts`): the volfile's stem.
pub fn fsname(volfile: &Path) -> String {
    volfile
        .file_stem()
        .map_or_else(|| "keelson".into(), |s| s.to_string_lossy().into_owned())
}

/// The volume a volfile describes, checked (parse, validation, init, activation) and ready to
/// serve; graphs that cannot be served yet are refused naming the volume and its type.
pub fn open_volume(volfile: &Path) -> Result<Brick, CmdError> {
    let src = Source::new(Some(volfile));
    let name = src.name();
    let opts = CheckOptions {
        init: true,
        events: false,
    };
    let dir = volfilecmd::with_graph(&src, opts, |g, top_up, _| {
        if !top_up {
            return Err(CmdError(format!("{name}: the top volume did not come up")));
        }
        let top = g.top();
        let ty = g.xlator_type(top).map(|t| (t.kind, t.name));
        match ty {
            Some((Kind::Posix, _)) if g.len() == 1 => match g.option(top, "directory") {
                Some(Value::Text(w)) => Ok(PathBuf::from(OsStr::from_bytes(
                    &w.bytes().collect::<Vec<u8>>(),
                ))),
                _ => Err(CmdError(format!("{name}: storage/posix has no directory"))),
            },
            Some((_, tname)) => Err(CmdError(format!(
                "{name}: volume {} ({tname}): only a lone storage/posix volume can be mounted \
                 yet (the translator graph is not served through FUSE)",
                g.name(top)
            ))),
            None => Err(CmdError(format!("{name}: the top volume has no type"))),
        }
    })?;
    Brick::open(&dir).map_err(|e| CmdError(format!("{}: {e}", dir.display())))
}
