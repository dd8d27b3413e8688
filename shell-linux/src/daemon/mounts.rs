//! The FUSE mounts keelsond serves from its configuration, kept in step with it at start and on
//! every SIGHUP reload, and unmounted at shutdown:
//!
//! ```text
//! mounts {
//!     data { volfile = "/etc/keelson/data.vol"  mountpoint = "/srv/data" }
//! }
//! ```
//!
//! A mount whose volfile or mount point changed is remounted; one that fails to start is
//! logged and retried at the next reload, never fatal (the request socket is live already).
//! Mounts are not handed over in a takeover: the old instance unmounts, the new one mounts.
//!
//! A mount whose graph runs in the frame engine answers keelsond's unixctl socket:
//! `mount/list`, `mount/io-stats NAME [XLATOR]` and `mount/engine-stats NAME` ([`Mounts::graph`]).

use std::collections::BTreeMap;
use std::path::PathBuf;

use keelson_core::config::{Lookup, OwnedTree};

use crate::fuse::{self, Running};
use crate::graphvol::GraphVolume;
use crate::mountcmd;

/// What the configuration asks for: name → (volfile, mount point).
type Wanted = BTreeMap<String, (PathBuf, PathBuf)>;

/// The running mounts.
#[derive(Default)]
pub struct Mounts {
    running: BTreeMap<String, Mounted>,
}

struct Mounted {
    volfile: PathBuf,
    mountpoint: PathBuf,
    run: Running,
    graph: Option<GraphVolume>,
}

/// Reads the `mounts` section; entries without both keys are logged and skipped.
fn wanted(config: &OwnedTree) -> Wanted {
    let mut out = Wanted::new();
    let view = config.view();
    let Some(section) = view.find_node("mounts") else {
        return out;
    };
    for m in section.children() {
        let Some(name) = m.key_str() else { continue };
        let path = |key: &str| {
            let v = m.children().find_str(key, b"");
            (!v.is_empty()).then(|| PathBuf::from(String::from_utf8_lossy(v).into_owned()))
        };
        match (path("volfile"), path("mountpoint")) {
            (Some(v), Some(p)) => {
                out.insert(name.to_string(), (v, p));
            }
            _ => tracing::error!(
                mount = name,
                "mounts/{name}: needs volfile = \"PATH\" and mountpoint = \"PATH\"; skipped"
            ),
        }
    }
    out
}

impl Mounts {
    /// Brings the running mounts in line with `config`.
    pub fn apply(&mut self, config: &OwnedTree) {
        let want = wanted(config);
        let stale: Vec<String> = self
            .running
            .iter()
            .filter(|(name, m)| {
                want.get(*name)
                    .is_none_or(|(wv, wp)| (wv, wp) != (&m.volfile, &m.mountpoint))
                    || !m.run.is_serving()
            })
            .map(|(name, _)| name.clone())
            .collect();
        for name in stale {
            if let Some(Mounted { run: r, .. }) = self.running.remove(&name) {
                tracing::info!(mount = %name, mountpoint = %r.mountpoint().display(), "unmounting");
                if let Err(e) = r.stop() {
                    tracing::warn!(mount = %name, "{e}");
                }
            }
        }
        for (name, (volfile, mountpoint)) in want {
            if self.running.contains_key(&name) {
                continue;
            }
            let started = mountcmd::open_volume(&volfile, false)
                .map_err(|e| e.to_string())
                .and_then(|o| {
                    fuse::spawn(o.volume, &mountpoint, &mountcmd::fsname(&volfile))
                        .map(|r| (r, o.graph))
                        .map_err(|e| e.to_string())
                });
            match started {
                Ok((run, graph)) => {
                    tracing::info!(mount = %name, mountpoint = %mountpoint.display(), "mounted");
                    self.running.insert(
                        name,
                        Mounted {
                            volfile,
                            mountpoint,
                            run,
                            graph,
                        },
                    );
                }
                Err(e) => tracing::error!(mount = %name, "mount failed: {e}"),
            }
        }
    }

    /// Unmounts everything (at shutdown).
    pub fn stop_all(&mut self) {
        for (name, m) in std::mem::take(&mut self.running) {
            if let Err(e) = m.run.stop() {
                tracing::warn!(mount = %name, "{e}");
            }
        }
    }

    /// `mount/list`: each running mount as `NAME MOUNTPOINT VOLFILE graph|brick`.
    pub fn list(&self) -> String {
        self.running
            .iter()
            .map(|(name, m)| {
                format!(
                    "{name} {} {} {}\n",
                    m.mountpoint.display(),
                    m.volfile.display(),
                    if m.graph.is_some() { "graph" } else { "brick" }
                )
            })
            .collect()
    }

    /// The graph of the running mount `name` (an error text naming what is wrong).
    pub fn graph(&self, name: &str) -> Result<GraphVolume, String> {
        let m = self
            .running
            .get(name)
            .ok_or_else(|| format!("no mount {name}"))?;
        m.graph
            .clone()
            .ok_or_else(|| format!("mount {name}: {}", mountcmd::no_graph()))
    }
}
