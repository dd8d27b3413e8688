//! GlusterFS translator graphs (translators.md): the volfile text, the graph it describes, and
//! the option tables of the translator types Keelson implements.
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

pub mod event;
pub mod fop;
pub mod graph;
pub mod handle;
pub mod init;
pub mod lex;
pub mod notify;
pub mod options;
pub mod types;
pub mod volfile;

pub use event::Event;
pub use fop::Fop;
pub use graph::{BrickVolumeId, Graph, GraphError, Host, Notice};
pub use handle::Gfid;
pub use lex::{Pos, Word};
pub use volfile::{Error, ErrorKind, Volfile, Warning, WarningKind};
