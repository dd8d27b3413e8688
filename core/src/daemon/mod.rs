//! The libdaemon request protocol (config-tree.md §3): framing, the `daemon_send_simple` text
//! form, request and reply conventions, and a dispatch table with the built-in `hello`.
//!
//! - [`frame`]: `body + "\n##\n"`, reassembled from chunks of any size, with a size cap.
//! - [`simple`]: `key = "value"` / `key = 123` lines as libdaemon's simple helpers write them.
//! - [`message`]: [`Request`] / [`Reply`] views, the `hello` check, `OK`/`failed`/`invalid`.
//! - [`dispatch`]: [`Dispatch`], the table of commands a daemon answers.

pub mod dispatch;
pub mod frame;
pub mod message;
pub mod simple;

pub use dispatch::{Answered, Command, Dispatch, Handler};
pub use frame::{FrameBuf, FrameError, Reassembler, DEFAULT_MAX_MESSAGE, TERMINATOR};
pub use message::{check_hello, HelloError, Reply, Request};
pub use simple::Arg;
