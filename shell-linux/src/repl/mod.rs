//! Replicated resources (issue 6): keelsond runs each DRBD resource of its configuration on a
//! thread of its own that drives the core's `repl::node::Node`, and serves it as an NBD export.
//!
//! - [`resource`]: [`ResourceConfig`], the `resources { NAME { … } }` section, checked whole.
//! - [`disk`]: [`Disk`](disk::Disk), the backing file and the v08 meta-data file.
//! - [`link`]: the resource thread: sockets, reconnect pacing, disk operations, requests.
//! - [`flusher`]: the resource's flush thread.
//! - [`device`]: [`Handle`] (commands, status, `down`) and [`Device`], the NBD backend.
//! - [`entropy`]: the OS random generator for challenges and UUIDs.

pub mod device;
pub mod disk;
pub mod entropy;
pub mod flusher;
pub mod link;
pub mod resource;

pub use device::{Device, Handle};
pub use resource::{resources, ResourceConfig};
