//! NBD exports (issue 6): block devices and files served to `qemu-img`, `qemu-io` and the
//! kernel's `nbd-client`, on UNIX sockets and TCP, over `keelson_core::nbd`'s session.
//!
//! - [`backend`]: the [`Backend`] trait an export is served from, and [`FileBackend`].
//! - [`exports`]: [`ExportTable`], names to backends, shared and changeable while serving.
//! - [`server`]: [`Server`], a listener on an [`Endpoint`] with a thread per client.
//! - [`conn`]: one connection, driving the core session with blocking I/O ([`serve_stream`]
//!   for a stream accepted elsewhere).
//!
//! ```no_run
//! use std::sync::Arc;
//! use keelson_linux::nbd::{Endpoint, ExportTable, FileBackend, Server};
//!
//! let exports = ExportTable::new();
//! exports.insert("r0", Arc::new(FileBackend::open("/dev/drbd0".as_ref(), false)?));
//! let unix = Server::start(&Endpoint::Unix("/run/keelson/nbd.sock".into()), exports.clone(), Default::default())?;
//! let tcp = Server::start(&Endpoint::Tcp("127.0.0.1:10809".parse().unwrap()), exports, Default::default())?;
//! # Ok::<(), std::io::Error>(())
//! ```

pub mod backend;
pub mod conn;
pub mod exports;
pub mod server;

pub use backend::{Backend, Done, FileBackend};
pub use conn::{serve_stream, Ended};
pub use exports::ExportTable;
pub use server::{Endpoint, Server};
