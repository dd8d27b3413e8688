//! Why bytes are not a valid NBD message, or why a message does not fit a buffer.

use core::fmt;

/// A decoding or encoding failure, naming the message and field involved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Error {
    /// Fewer bytes than the message needs.
    Truncated {
        /// The message being read (the spec's name, e.g. `request`).
        what: &'static str,
        /// Bytes it needs.
        need: usize,
        /// Bytes there were.
        have: usize,
    },
    /// A magic number that is not the one the message starts with.
    BadMagic {
        /// The message being read.
        what: &'static str,
        /// The magic the spec requires.
        expected: u64,
        /// The magic found.
        found: u64,
    },
    /// A length field that disagrees with the data around it.
    BadLength {
        /// `message.field`.
        field: &'static str,
        /// The length found.
        len: u64,
    },
    /// The output buffer is too small.
    NoRoom {
        /// Bytes the encoding needs.
        required: usize,
        /// Bytes the buffer has.
        have: usize,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Truncated { what, need, have } => {
                write!(f, "NBD {what} truncated: needs {need} bytes, got {have}")
            }
            Error::BadMagic {
                what,
                expected,
                found,
            } => write!(
                f,
                "NBD {what} has magic {found:#x}, expected {expected:#x} (not an NBD peer, or out of step)"
            ),
            Error::BadLength { field, len } => {
                write!(f, "NBD {field} = {len} does not match the data it describes")
            }
            Error::NoRoom { required, have } => {
                write!(f, "output buffer too small: needs {required} bytes, has {have}")
            }
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for Error {}

/// `Err(Truncated)` unless `have >= need`.
pub(crate) fn at_least(what: &'static str, have: usize, need: usize) -> Result<(), Error> {
    if have < need {
        Err(Error::Truncated { what, need, have })
    } else {
        Ok(())
    }
}

/// `Err(NoRoom)` unless `buf` holds `required` bytes.
pub(crate) fn room(buf: &[u8], required: usize) -> Result<(), Error> {
    if buf.len() < required {
        Err(Error::NoRoom {
            required,
            have: buf.len(),
        })
    } else {
        Ok(())
    }
}
