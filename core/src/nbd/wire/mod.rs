//! NBD's wire format (proto.md, fixed newstyle, simple replies): views over `&[u8]` with checked
//! constructors and `Repr`s that parse from and emit into caller buffers. Big-endian throughout.
//!
//! - [`error`]: [`Error`], naming the message and field that was wrong.
//! - [`handshake`]: the greeting, client flags, option request header and the
//!   `NBD_OPT_EXPORT_NAME` reply.
//! - [`option`]: option and reply codes, the option reply header, `NBD_OPT_GO` / `NBD_OPT_INFO`
//!   data, `NBD_REP_INFO` payloads, `NBD_REP_SERVER`.
//! - [`transmission`]: the request header, the simple reply, transmission and command flags,
//!   commands and error values.
//!
//! ```
//! use keelson_core::nbd::wire::transmission::{Command, ErrorCode, RequestRepr, SimpleReplyRepr};
//!
//! let req = RequestRepr { flags: 0, command: Command::Read, cookie: 9, offset: 512, length: 4096 };
//! let mut buf = [0u8; 28];
//! req.emit(&mut buf)?;
//! assert_eq!(RequestRepr::parse(&buf)?, req);
//! let reply = SimpleReplyRepr::new(9, Err(ErrorCode::Inval));
//! assert_eq!(reply.emit(&mut buf)?, 16);
//! # Ok::<(), keelson_core::nbd::wire::Error>(())
//! ```

pub mod error;
mod field;
pub mod handshake;
pub mod option;
pub mod transmission;

pub use error::Error;
pub use handshake::{
    ClientFlagsRepr, ExportNameReplyRepr, GreetingRepr, OptionRequest, OptionRequestRepr,
};
pub use option::{InfoRepr, InfoRequest, OptionCode, OptionReplyRepr};
pub use transmission::{Command, ErrorCode, Request, RequestRepr, SimpleReplyRepr};
