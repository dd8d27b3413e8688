//! Why a session ended (a hard disconnect, proto.md "Termination of the session") or why a shell
//! call was refused.

use core::fmt;

use crate::nbd::wire;

/// A protocol violation by the client (the session is over: close the connection), or a misuse
/// by the shell (the session is unchanged).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Error {
    /// The client set flags the server did not offer (proto.md: the server MUST drop it).
    BadClientFlags {
        /// The client's flags.
        flags: u32,
    },
    /// Bytes that are not the message the phase expects (a bad magic): the stream cannot be
    /// resynchronised.
    Wire(wire::Error),
    /// `NBD_OPT_EXPORT_NAME` for an export that is not served; that option has no error reply,
    /// so the session MUST end.
    UnknownExport,
    /// `NBD_OPT_EXPORT_NAME` with a name longer than the server accepts.
    ExportNameTooLong {
        /// The name's length.
        len: u32,
        /// The limit ([`super::Config::max_option_len`]).
        max: u32,
    },
    /// Shell misuse: `complete` for a handle with no request in flight.
    UnknownHandle {
        /// The handle given.
        handle: u64,
    },
    /// Shell misuse: the output buffer cannot hold the next message.
    OutputTooSmall {
        /// Bytes the message needs.
        required: usize,
        /// Bytes the buffer has.
        have: usize,
    },
}

impl From<wire::Error> for Error {
    fn from(e: wire::Error) -> Self {
        match e {
            wire::Error::NoRoom { required, have } => Error::OutputTooSmall { required, have },
            e => Error::Wire(e),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::BadClientFlags { flags } => write!(
                f,
                "client flags {flags:#x} set bits the server did not offer (only fixed newstyle and no-zeroes)"
            ),
            Error::Wire(e) => e.fmt(f),
            Error::UnknownExport => {
                f.write_str("NBD_OPT_EXPORT_NAME named an export this server does not serve")
            }
            Error::ExportNameTooLong { len, max } => {
                write!(f, "NBD_OPT_EXPORT_NAME name of {len} bytes (limit {max})")
            }
            Error::UnknownHandle { handle } => {
                write!(f, "completion for handle {handle:#x}, which has no request in flight")
            }
            Error::OutputTooSmall { required, have } => write!(
                f,
                "output buffer of {have} bytes cannot hold the next message ({required} bytes)"
            ),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for Error {}
