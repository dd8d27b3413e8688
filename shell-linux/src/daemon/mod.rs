//! keelsond's request daemon on the libdaemon wire protocol: what `daemon_start` does, plus the
//! takeover and autostart that LVM declared and never built.
//!
//! - [`server`]: options and the lifecycle (pidfile, signals, socket, event loop, shutdown).
//! - [`event_loop`]: one thread serving every client with epoll: accepts, timeouts, takeover.
//! - [`conn`]: one non-blocking connection, answering through the core's dispatch table.
//! - [`agent`]: keelsond's state and requests.
//! - [`socket`], [`pidfile`]: libdaemon's socket and pidfile rules; systemd activation.
//! - [`mounts`]: the FUSE mounts of the configuration's `mounts` section.
//! - [`resources`]: the replicated resources of its `resources` section, and the `repl/*`
//!   requests' driver.
//! - [`monitor`]: `--monitor`, the supervisor that restarts the daemon after a crash signal.
//! - [`takeover`]: handing the state and the listening socket to a new instance.
//! - [`client`]: the client library `keelctl request` uses.

pub mod agent;
pub mod client;
pub mod conn;
pub mod event_loop;
pub mod monitor;
pub mod mounts;
pub mod pidfile;
pub mod resources;
pub mod server;
pub mod socket;
pub mod takeover;
