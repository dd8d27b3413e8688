//! Open vSwitch stream names (ovs-sessions.md §3.1), parsed without I/O or allocation.
//!
//! - [`name`]: [`Name`] for `unix:PATH`, `tcp:HOST[:PORT]`, `ssl:HOST[:PORT]`, `punix:PATH`,
//!   `ptcp:[PORT][:IP]` and `pssl:[PORT][:IP]`, borrowing its pieces from the text; OVS's default
//!   port 6640 and its error texts ([`NameError`]).
//!
//! Opening a name (sockets, TLS, the resolver for host names) is a shell's job: keelson-linux's
//! `stream` module does it with std.

pub mod name;

pub use name::{Host, Name, NameError, NameErrorKind, Text, DEFAULT_PORT, OLD_DEFAULT_PORT};
