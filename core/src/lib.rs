//! Keelson's protocol core: every protocol as pure, sans-IO logic that both shells drive.
//!
//! - [`config`]: the dm_config text format (byte-compatible with libdevmapper), lookups, builder
//!   and postcard form — the message format of the whole control plane.
//! - [`daemon`]: the libdaemon request protocol on top of it: framing, requests and replies,
//!   `hello`, and the dispatch table.
//! - [`jsonrpc`]: OVS JSON-RPC: framing of back-to-back JSON values, messages, `echo` keepalive.
//! - [`nbd`]: the NBD server protocol (fixed newstyle, simple replies): wire layouts and a session
//!   that turns client bytes into read/write/flush/trim actions and completions into replies.
//! - [`reconnect`]: the Open vSwitch reconnect FSM (backoff, probes, statistics), now in, actions out.
//! - [`repl`]: DRBD replication: every header and packet layout, the command table and the bitmap
//!   RLE+VLI codec, as zero-copy views and `Repr`s (`repl::wire`); the connection machine from
//!   socket pair to Connected, with the UUID compare table (`repl::conn`); the data path: dirty
//!   bitmap, activity log, transfer log, protocols A/B/C on both sides, resync with rate and
//!   progress.
//! - [`stream`]: OVS stream names (`tcp:HOST:PORT`, `pssl:PORT:IP`, ...) with OVS's default port.
//! - [`unixctl`]: the OVS control-socket protocol `ovs-appctl` speaks: requests, argument checks
//!   and refusal texts, `list-commands`, replies under the 3.1 newline rule.
//! - [`xlator`]: GlusterFS translator graphs: the volfile parser, option typing, the graph's init
//!   order and event propagation.
//!
//! The crate is `no_std` and needs no allocator unless the `alloc` feature is on; capacities are
//! const generics or caller buffers. No input makes it panic: malformed bytes are typed errors.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[cfg(feature = "alloc")]
extern crate alloc;
#[cfg(any(feature = "std", test))]
extern crate std;

pub mod config;
pub mod daemon;
pub mod jsonrpc;
pub mod nbd;
pub mod reconnect;
pub mod repl;
pub mod stream;
pub mod unixctl;
pub mod xlator;
