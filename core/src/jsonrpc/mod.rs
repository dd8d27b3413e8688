//! OVS JSON-RPC (ovs-sessions.md §3.2–3.4): framing, messages and the `echo` keepalive, sans-IO.
//!
//! - [`frame`]: [`Framer`] splits a byte stream of back-to-back JSON values (no length, no
//!   delimiter) from chunks of any size into bounded storage.
//! - [`json`]: a non-recursive validating parser, zero-copy [`Value`] views, compact writing.
//! - [`message`]: [`Message`] with OVS's validation table and error texts, the writers for the
//!   shapes OVS's C library sends, and [`keepalive`] (answer `echo`, swallow probe replies).
//! - [`session`]: [`Session`], one connection at a time over a rotation of remotes, kept alive
//!   by the reconnect FSM with `echo` probes (§3.6).
//!
//! A receiver feeds reads to a [`Framer`], parses each frame with [`Message::parse`], passes it
//! through [`keepalive`], and closes the connection on any error: OVS sends no error reply for
//! malformed input (§3.2).

pub mod frame;
pub mod json;
pub mod message;
pub mod session;

pub use frame::{Fed, FrameBuf, FrameError, Framer};
pub use json::{JsonError, JsonErrorKind, Null, Str, ToJson, Value, MAX_DEPTH};
pub use message::{
    keepalive, write_error, write_notification, write_reply, write_request, Invalid, Keepalive,
    Kind, Member, Message, ParseError, ECHO_PROBE,
};
pub use session::{Io, Remotes, Session};
