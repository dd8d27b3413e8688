//! GlusterFS translator graphs (translators.md): the volfile text, the graph it describes, the
//! option tables of the translator types Keelson implements, and the fop/frame machinery that
//! runs a graph without allocating.
//!
//! - [`lex`]: the volfile lexer (upstream's flex rules) and [`Word`], a zero-copy name or value.
//! - [`volfile`]: the grammar; [`Volfile`] holds volumes, options and links in fixed tables,
//!   with upstream's fatal errors and non-fatal warnings.
//! - [`options`]: option tables and value typing (bools, sizes, ranges, paths, ...).
//! - [`types`]: the translator types Keelson implements, with upstream's option tables.
//! - [`graph`]: [`Graph`]: type resolution, option validation and lookups, the dump.
//! - [`init`]: each translator's init checks, in list order; [`Host`] for brick directories.
//! - [`notify`]: event propagation (PARENT_UP down, CHILD_* up and aggregated) and fini.
//! - [`event`]: [`Event`], `glusterfs_event_t` with upstream's values.
//! - [`fop`]: [`Fop`], `glusterfs_fop_t` with upstream's numbering, names and argument lists.
//! - [`iatt`]: `struct iatt` and `statvfs` (§6).
//! - [`args`]: fop request and reply arguments ([`Request`], [`Reply`]) as spans into the
//!   buffer lent with each request; errno values; [`RequestBytes`](args::RequestBytes).
//! - [`dirent`]: readdir(p) entries packed into a reply.
//! - [`frame`]: call stacks and frames in fixed arenas, referenced by index and generation.
//! - [`engine`]: the sans-IO [`Engine`] (requests and completions in, replies and outputs out),
//!   and the [`Translator`](engine::Translator) trait with upstream's default pass-through.
//! - [`ctx`]: [`Ctx`](ctx::Ctx), what translators wind, tail-wind and unwind through.
//! - [`topology`]: each node's children, as the engine walks them.
//! - [`builtin`]: the built-in translators as one table type made from a [`Graph`].
//! - [`ram`], [`ram_store`]: `storage/ram`, an in-memory filesystem over a caller's arena.
//! - [`trace`]: `debug/trace`'s lines (§5.1). [`io_stats`]: `debug/io-stats` counters and dump.
//! - [`locks`]: `features/locks`: inodelk, entrylk and lk, EAGAIN or FIFO waits (§5.7).
//! - [`write_behind`]: `performance/write-behind`: lied writes, deferred errors (§5.5).
//! - [`replicate`]: `cluster/replicate` (AFR): changelog transactions, read-child choice, child
//!   events and background self-heal (§5.4).
//! - [`xattrop`]: xattrop's dict layout and posix's rule for applying it (§3.3).
//! - [`dht_hash`]: `gf_dm_hashfn`, DHT's name hash (§5.3).
//! - [`distribute`]: `cluster/distribute`: placement by name hash and directory layouts,
//!   linkto files, listings over the subvolumes (§5.3).
//! - [`handle`]: storage/posix's on-disk names: [`Gfid`], `.glusterfs` handles, gfid2path keys.
//!
//! ```
//! use keelson_core::xlator::{graph::AnyDirectory, types::BUILTIN, Graph, Volfile};
//! let text = b"volume p\n type storage/posix\n option directory /b\nend-volume\n\
//!              volume wb\n type performance/write-behind\n subvolumes p\nend-volume\n";
//! let vf: Volfile<'_, 8, 16, 8> = Volfile::parse(text).unwrap();
//! let mut g = Graph::build(&vf, BUILTIN).unwrap();
//! g.init(&mut AnyDirectory).unwrap();
//! let mut top_up = false;
//! g.activate(&mut |n| top_up |= n.to.is_none() && n.event == keelson_core::xlator::Event::ChildUp);
//! assert!(top_up);
//! ```

pub mod args;
pub mod builtin;
pub mod ctx;
pub mod dht_hash;
pub mod dirent;
pub mod distribute;
pub mod engine;
pub mod event;
pub mod fop;
pub mod frame;
pub mod graph;
pub mod handle;
pub mod iatt;
pub mod init;
pub mod io_stats;
pub mod lex;
pub mod locks;
pub mod notify;
pub mod options;
pub mod ram;
pub mod ram_store;
mod ram_xattr;
pub mod replicate;
pub mod topology;
pub mod trace;
pub mod types;
pub mod volfile;
pub mod write_behind;
pub mod xattrop;

pub use args::{Reply, Request};
pub use engine::Engine;
pub use event::Event;
pub use fop::Fop;
pub use graph::{BrickVolumeId, Graph, GraphError, Host, Notice};
pub use handle::Gfid;
pub use lex::{Pos, Word};
pub use volfile::{Error, ErrorKind, Volfile, Warning, WarningKind};
