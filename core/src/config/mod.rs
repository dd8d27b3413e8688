//! The config tree: libdevmapper's `dm_config` text format (config-tree.md §1–2), path lookups, a
//! builder, and a postcard binary form.
//!
//! - `lex` and [`parse`]: text → tree, in dup-check ([`Duplicates::Merge`]) or libdaemon
//!   ([`Duplicates::Keep`]) mode, with typed, positioned errors and an explicit depth limit.
//! - [`store`]: where a tree lives — [`Fixed`] capacity (no allocator) or [`Growable`] (`alloc`).
//! - [`tree`]: [`Tree`], parsing entry points and the builder; [`view`]: read-only access.
//! - [`write`](mod@write): tree → text, byte-identical to `dm_config_write_node`.
//! - [`lookup`]: `find_str`/`find_int64`/… with upstream's type rules, and cascades.
//! - `binary` (feature `serde`): the postcard form.
//!
//! ```
//! use keelson_core::config::{FixedTree, Lookup, ParseOptions, Tree};
//! let mut t: FixedTree<'_, 16, 16, 64> = Tree::new(Default::default());
//! t.parse(b"a { b = 5 }\n", ParseOptions::MERGE).unwrap();
//! assert_eq!(t.view().find_int64("a/b", 0), 5);
//! let mut out = [0u8; 64];
//! assert_eq!(t.view().write_to_slice(&mut out).unwrap(), b"a {\n\tb=5\n}\n");
//! ```

#[cfg(feature = "serde")]
pub mod binary;
pub mod error;
mod index;
mod lex;
pub mod lookup;
pub(crate) mod number;
pub mod parse;
pub mod store;
pub mod tree;
pub mod view;
pub mod write;

pub use error::{Arena, Error, ErrorKind, Full};
pub use lookup::{Cascade, Lookup};
pub use parse::{Duplicates, ParseOptions, Warnings, MAX_DEPTH};
#[cfg(feature = "alloc")]
pub use store::Growable;
pub use store::{Fixed, Storage};
#[cfg(feature = "alloc")]
pub use tree::OwnedTree;
pub use tree::{FixedTree, Tree};
pub use view::{Flags, NodeId, NodeRef, Siblings, TreeView, Value, ValueRef, Values};
pub use write::{CountSink, Overflow, Sink, SliceSink};
