//! Keelson's Linux shell: binds `keelson-core` to files, sockets and processes.
//!
//! - [`brick`]: a GlusterFS brick directory in storage/posix's on-disk format (gfids, handles,
//!   gfid2path), its fops by gfid and a consistency check.
//! - [`configcmd`]: `keelctl config` — format, query and convert config-tree files.
//! - [`daemon`]: keelsond's request daemon and the client library (libdaemon's wire protocol).
//! - [`fuse`]: a FUSE mount (fuser) of a [`volume::Volume`], as GlusterFS's fuse-bridge.
//! - [`mountcmd`]: `keelctl mount` — a checked volfile served through FUSE.
//! - [`nbd`]: NBD exports over UNIX sockets and TCP: the backend trait, a file backend, the
//!   export table and the listeners (core session per connection).
//! - [`paths`]: default run directory, socket and pidfile.
//! - [`process`]: stopping child processes cleanly.
//! - [`remote`]: keelsond's management remotes, each a JSON-RPC session with reconnect.
//! - [`requestcmd`]: `keelctl request` — one request to a daemon, its reply printed.
//! - [`repl`]: replicated DRBD resources: configuration, disks, the thread driving each core
//!   node over TCP, and the NBD device in front of it.
//! - [`replcmd`]: `keelctl VERB RESOURCE` — the replication verbs of the core's admin table as
//!   `repl/*` requests; `status` rendered from the reply's data.
//! - [`source`]: reading a named file or standard input, and naming it in error messages.
//! - [`stream`]: OVS streams (`unix:`, `tcp:`, `ssl:`, `punix:`, `ptcp:`, `pssl:`) over std sockets
//!   and rustls, with OVS's SSL options; the names are parsed by the core.
//! - [`testreconnect`]: OVS's test-reconnect script language over the core's reconnect FSM.
//! - [`unixctl`]: an OVS unixctl server (JSON-RPC control socket) that `ovs-appctl` talks to.
//! - [`volume`]: [`volume::Volume`], a volume's fops by gfid (what a FUSE mount drives).
//! - [`volfilecmd`]: `keelctl volfile check` — a GlusterFS volfile parsed, validated and
//!   initialised without serving.
//!
//! The binaries `keelctl` (operator tool), `keelsond` (host agent) and `test-reconnect` (OVS's
//! FSM test language) are thin front ends over these modules.

pub mod brick;
pub mod configcmd;
pub mod daemon;
pub mod fuse;
pub mod glusterlog;
pub mod graphvol;
pub mod mountcmd;
pub mod nbd;
pub mod paths;
pub mod process;
pub mod remote;
pub mod repl;
pub mod replcmd;
pub mod requestcmd;
pub mod source;
pub mod stream;
pub mod testreconnect;
pub mod unixctl;
pub mod volfilecmd;
pub mod volume;
