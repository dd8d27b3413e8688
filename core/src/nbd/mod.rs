//! The NBD server side (proto.md: fixed newstyle negotiation, simple replies), sans-IO.
//!
//! - [`wire`]: the handshake, option, request and reply layouts as views and `Repr`s.
//! - [`session`]: [`Session`], one client connection: option haggling against an [`Exports`]
//!   table, then requests checked against the chosen export and handed out as [`Action`]s.
//!
//! Structured replies, TLS, metadata contexts and extended headers are refused with
//! `NBD_REP_ERR_UNSUP`, which every client must accept (proto.md "Baseline").

pub mod session;
pub mod wire;

pub use session::{Action, Config, ExportInfo, Exports, Progress, ReadData, Session, Transmit};
