//! DRBD's wire format (replication.md §1–3): smoltcp-style views and `Repr`s, big-endian except the
//! opaque block ids and barrier numbers a peer only echoes.
//!
//! - [`error`]: [`Error`], naming the structure and field that was wrong.
//! - [`field`]: byte access that cannot panic, the opaque [`BlockId`] / [`BarrierNr`], and the
//!   macro that lays out the fixed-size structures.
//! - [`command`]: [`Command`] with DRBD's names and numbers, socket and scope per command.
//! - [`header`]: the h80 / h95 / h100 headers and which one a connection uses.
//! - one module per packet family: [`data`] (writes, trims), [`request`] (read and resync
//!   requests, block descriptors), [`ack`], [`barrier`], [`features`], [`auth`], [`protocol`],
//!   [`uuid`], [`sizes`], [`state`], [`sync_param`], [`twopc`], [`misc`] (the small ones).
//! - [`vli`]: the VLI code and bit streams; [`bitmap`]: P_BITMAP / P_COMPRESSED_BITMAP payloads
//!   and the streaming bitmap transfer (send side and OR-merging receive side).
//! - [`frame`]: [`Body`] (a payload parsed by the layout its command implies), [`Frame`] (header
//!   plus body) and [`Agreed`] (protocol version, features, digest size) that drive both.
//!
//! A receiver parses frames off the front of its buffer; a short buffer is `Truncated` with the
//! bytes needed, so it reads more and tries again:
//!
//! ```
//! use keelson_core::repl::wire::{ack::BlockAckFields, Agreed, BlockId, Body, Command, Error, Frame};
//!
//! let agreed = Agreed::new(122, 0);
//! let ack = BlockAckFields { sector: 2048, block_id: BlockId::from_host(7), blksize: 4096, seq_num: 1 };
//! let frame = Frame::new(Command::WriteAck, 0, Body::BlockAck(ack))?;
//! let mut buf = [0u8; 64];
//! let n = frame.emit(&agreed, &mut buf)?;
//! assert_eq!(n, frame.buffer_len(&agreed)); // 16-byte h100 header + 24-byte p_block_ack
//!
//! assert!(matches!(Frame::parse(&buf[..20], &agreed), Err(Error::Truncated { need: 40, .. })));
//! let (back, used) = Frame::parse(&buf[..n], &agreed)?;
//! assert_eq!((back, used), (frame, 40));
//! # Ok::<(), Error>(())
//! ```

#[macro_use]
pub mod field;
pub mod ack;
pub mod auth;
pub mod barrier;
pub mod bitmap;
pub mod command;
pub mod data;
pub mod error;
pub mod features;
pub mod frame;
pub mod header;
pub mod misc;
pub mod protocol;
pub mod request;
pub mod sizes;
pub mod state;
pub mod sync_param;
pub mod twopc;
pub mod uuid;
pub mod vli;

pub use command::{Command, Scope, Socket};
pub use error::Error;
pub use field::{BarrierNr, BlockId};
pub use frame::{Agreed, Body, Frame};
pub use header::{HeaderKind, HeaderRepr};
