//! The replicated resources keelsond runs from its configuration (`resources { … }`, see
//! [`crate::repl::resource`]): every configured resource is brought up at start (as
//! `drbdadm up` at boot), kept in step with the configuration on SIGHUP, and taken down at
//! shutdown. The `repl/*` requests reach them through [`SharedResources`], the agent's
//! [`ReplControl`].
//!
//! Each running resource has an NBD export named after it (also the default export) on its
//! `nbd_socket` and `nbd_tcp`. A reload that changes a running resource's settings restarts it
//! unless it is Primary (then the change waits for a `down`/`up`, and the log says so).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use keelson_core::config::OwnedTree;
use keelson_core::repl::admin::{
    Failure, Invocation, PeerStatus, ReplControl, Resync, RetCode, Status, Verb,
};
use keelson_core::repl::conn::Role;

use crate::nbd::{Endpoint, ExportTable, Server};
use crate::repl::disk::{failed_area, Area};
use crate::repl::{self, Handle, ResourceConfig};

struct Running {
    handle: Handle,
    nbd: Vec<Server>,
}

/// Configured and running resources.
#[derive(Default)]
pub struct Resources {
    configured: BTreeMap<String, ResourceConfig>,
    running: BTreeMap<String, Running>,
}

fn start(cfg: &ResourceConfig) -> std::io::Result<Running> {
    let handle = Handle::start(cfg.clone())?;
    let nbd = start_exports(&handle);
    tracing::info!(resource = %cfg.name, address = %cfg.address, peer = %cfg.peer_address, "up");
    Ok(Running { handle, nbd })
}

impl Resources {
    /// Brings the resources in line with `config` (at start and on reload). A bad `resources`
    /// section is logged and changes nothing.
    pub fn apply(&mut self, config: &OwnedTree) {
        let wanted = match repl::resources(config) {
            Ok(w) => w,
            Err(e) => {
                tracing::error!("configuration: {e}; resources unchanged");
                return;
            }
        };
        let wanted: BTreeMap<String, ResourceConfig> =
            wanted.into_iter().map(|r| (r.name.clone(), r)).collect();
        let names: Vec<String> = self.running.keys().cloned().collect();
        for name in names {
            let same = wanted
                .get(&name)
                .is_some_and(|w| self.running.get(&name).is_some_and(|r| &r.handle.cfg == w));
            if same {
                continue;
            }
            if self
                .running
                .get(&name)
                .is_some_and(|r| r.handle.snapshot().status.role == Role::Primary)
            {
                tracing::warn!(resource = %name, "configuration changed while Primary: takes effect after down/up");
                continue;
            }
            if let Err(f) = self.down(&name) {
                tracing::warn!(resource = %name, "{f}");
            }
        }
        self.configured = wanted;
        let to_start: Vec<ResourceConfig> = self
            .configured
            .values()
            .filter(|c| !self.running.contains_key(&c.name))
            .cloned()
            .collect();
        for cfg in to_start {
            if let Err(f) = self.up(&cfg.name) {
                tracing::error!(resource = %cfg.name, "{f}");
            }
        }
    }

    fn up(&mut self, name: &str) -> Result<(), Failure> {
        if self.running.contains_key(name) {
            return Ok(());
        }
        let cfg = self
            .configured
            .get(name)
            .ok_or(Failure::Ret(RetCode::ResNotKnown))?;
        match start(cfg) {
            Ok(r) => {
                self.running.insert(name.to_owned(), r);
                Ok(())
            }
            Err(e) => {
                tracing::error!(resource = %name, "up: {e}");
                Err(if failed_area(&e) == Some(Area::Meta) {
                    RetCode::OpenMdDisk.into()
                } else {
                    RetCode::OpenDisk.into()
                })
            }
        }
    }

    fn down(&mut self, name: &str) -> Result<(), Failure> {
        let Some(r) = self.running.get_mut(name) else {
            return if self.configured.contains_key(name) {
                Ok(())
            } else {
                Err(RetCode::ResNotKnown.into())
            };
        };
        // The export goes first: no new client may start a write we would then refuse.
        r.nbd.clear();
        match r.handle.stop() {
            Ok(()) => {
                self.running.remove(name);
                tracing::info!(resource = %name, "down");
                Ok(())
            }
            Err(f) => {
                r.nbd = start_exports(&r.handle);
                Err(f)
            }
        }
    }

    /// Takes every resource down (keelsond's shutdown).
    pub fn stop_all(&mut self) {
        let names: Vec<String> = self.running.keys().cloned().collect();
        for n in names {
            if let Err(f) = self.down(&n) {
                tracing::warn!(resource = %n, "down at shutdown: {f}; stopping anyway");
                // A Primary that will not demote still stops: its meta data says
                // crashed-primary, which the next start handles as DRBD does.
                self.running.remove(&n);
            }
        }
    }
}

/// The resource's NBD exports: its name (and the default export) on each endpoint. One that
/// cannot start is logged: the resource replicates without it.
fn start_exports(handle: &Handle) -> Vec<Server> {
    let exports = ExportTable::new();
    let dev = handle.device();
    exports.insert(&handle.cfg.name, dev.clone());
    exports.insert("", dev);
    let c = &handle.cfg;
    c.nbd_socket
        .iter()
        .map(|p| Endpoint::Unix(p.clone()))
        .chain(c.nbd_tcp.iter().map(|a| Endpoint::Tcp(*a)))
        .filter_map(|ep| {
            Server::start(&ep, exports.clone(), Default::default())
                .map_err(|e| tracing::error!(resource = %c.name, "NBD export on {ep:?}: {e}"))
                .ok()
        })
        .collect()
}

/// The resources, shared between the agent (requests) and the server (start, reload, stop).
#[derive(Clone, Default)]
pub struct SharedResources(pub Arc<Mutex<Resources>>);

impl SharedResources {
    fn lock(&self) -> std::sync::MutexGuard<'_, Resources> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// See [`Resources::apply`].
    pub fn apply(&self, config: &OwnedTree) {
        self.lock().apply(config)
    }

    /// See [`Resources::stop_all`].
    pub fn stop_all(&self) {
        self.lock().stop_all()
    }
}

impl ReplControl for SharedResources {
    fn run(&mut self, cmd: &Invocation<'_>) -> Result<(), Failure> {
        let name = cmd.resource.ok_or(Failure::Ret(RetCode::InvalidRequest))?;
        let mut res = self.lock();
        match cmd.verb {
            Verb::Up => res.up(name),
            Verb::Down => res.down(name),
            Verb::Status => Err(RetCode::InvalidRequest.into()),
            verb => match res.running.get(name) {
                Some(r) => r.handle.command(verb, cmd.flags),
                None => Err(RetCode::ResNotKnown.into()),
            },
        }
    }

    fn status(
        &mut self,
        resource: Option<&str>,
        each: &mut dyn FnMut(&Status<'_>),
    ) -> Result<(), Failure> {
        let res = self.lock();
        if let Some(r) = resource {
            if !res.running.contains_key(r) {
                return Err(RetCode::ResNotKnown.into());
            }
        }
        for (name, r) in &res.running {
            if resource.is_some_and(|x| x != name) {
                continue;
            }
            let s = r.handle.snapshot().status;
            let cfg = &r.handle.cfg;
            let resync = s.resync.map(|p| {
                let kib = p.rate >> 10;
                Resync {
                    total_bits: p.total_bits,
                    remaining_bits: p.left_bits.saturating_sub(p.failed_bits),
                    failed_bits: p.failed_bits,
                    speed_kib: kib,
                    average_kib: kib,
                    want_kib: (cfg.node.resync_rate > 0).then_some(cfg.node.resync_rate >> 10),
                    eta_s: p.eta_ms.map(|ms| ms.div_ceil(1000)),
                    stalled: false,
                }
            });
            let peer_name = if cfg.peer_name.is_empty() {
                cfg.peer_address.to_string()
            } else {
                cfg.peer_name.clone()
            };
            each(&Status {
                name,
                node_id: Some(cfg.node.conn.node_id),
                role: s.role,
                disk: s.disk,
                size_kib: Some(s.size_sectors / 2),
                peer: Some(PeerStatus {
                    name: &peer_name,
                    node_id: Some(cfg.node.conn.peer_node_id),
                    connection: s.conn,
                    role: s.peer_role,
                    replication: s.repl,
                    disk: s.peer_disk,
                    out_of_sync_kib: s.out_of_sync_bits * 4,
                    paused_user: s.user_paused,
                    paused_peer: s.peer_paused,
                    resync,
                }),
            });
        }
        Ok(())
    }
}
