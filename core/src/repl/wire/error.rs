//! Why bytes are not a valid DRBD packet, or why a packet does not fit a buffer.

use core::fmt;

/// A decoding or encoding failure. Every variant names the structure or field involved so the
/// message says what to look at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Error {
    /// Fewer bytes than the structure needs.
    Truncated {
        /// The structure being read (upstream's struct name, e.g. `p_block_ack`).
        what: &'static str,
        /// Bytes it needs.
        need: usize,
        /// Bytes there were.
        have: usize,
    },
    /// The first bytes are none of the three header magics.
    BadMagic {
        /// The first four bytes, big-endian (fewer bytes are zero-padded).
        found: u32,
    },
    /// The command number is not one DRBD defines.
    UnknownCommand {
        /// The number from the header.
        code: u16,
    },
    /// The command cannot be sent or received as a packet (obsolete or a flag value).
    UnsupportedCommand {
        /// The command.
        command: crate::repl::wire::Command,
    },
    /// A payload whose length the layout does not allow.
    LengthMismatch {
        /// The structure being read.
        what: &'static str,
        /// Its allowed length (the minimum when the layout has a variable tail).
        expected: usize,
        /// The payload length.
        got: usize,
    },
    /// A field that must hold a fixed value (padding, reserved bytes) does not.
    BadField {
        /// `struct.field`.
        field: &'static str,
        /// The value found (truncated to 64 bits).
        value: u64,
    },
    /// A NUL-terminated string without its NUL, or longer than its limit.
    BadString {
        /// `struct.field`.
        field: &'static str,
    },
    /// A header kind the agreed protocol version does not accept (replication.md §1).
    HeaderNotAllowed {
        /// The header seen.
        kind: crate::repl::wire::HeaderKind,
        /// The agreed protocol version.
        pv: u32,
    },
    /// A payload too long for the header that must carry it (h80's u16 length).
    PayloadTooLong {
        /// The header kind.
        kind: crate::repl::wire::HeaderKind,
        /// The payload length.
        len: usize,
    },
    /// The body's layout is not the one the command uses.
    WrongBody {
        /// The command.
        command: crate::repl::wire::Command,
    },
    /// The output buffer is too small.
    NoRoom {
        /// Bytes the encoding needs.
        required: usize,
        /// Bytes the buffer has.
        have: usize,
    },
    /// A compressed bitmap that does not decode (replication.md §3.11).
    Bitmap {
        /// What was wrong.
        reason: BitmapError,
        /// Bit position in the code stream (0 = first bit after the encoding byte).
        at: usize,
    },
}

/// What was wrong with a bitmap packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum BitmapError {
    /// The encoding byte's code (bits 0–3) is not RLE_VLI_Bits (2).
    UnknownEncoding,
    /// A codeword runs past the end of the stream.
    CutCodeword,
    /// A run goes past the end of the bitmap.
    RunPastEnd,
    /// More pad bits than the stream has.
    BadPad,
    /// A plain P_BITMAP payload is not exactly the number of words expected.
    PlainLength,
    /// A packet arrived after the whole bitmap was covered.
    AlreadyComplete,
}

impl fmt::Display for BitmapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BitmapError::UnknownEncoding => "unknown bitmap encoding (only RLE_VLI_Bits = 2)",
            BitmapError::CutCodeword => "VLI codeword cut off by the end of the stream",
            BitmapError::RunPastEnd => "run goes past the end of the bitmap",
            BitmapError::BadPad => "pad bits exceed the code stream",
            BitmapError::PlainLength => "plain bitmap packet has the wrong number of words",
            BitmapError::AlreadyComplete => "bitmap packet after the bitmap was complete",
        })
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Truncated { what, need, have } => {
                write!(f, "{what} truncated: needs {need} bytes, got {have}")
            }
            Error::BadMagic { found } => write!(f, "bad DRBD header magic {found:#010x}"),
            Error::UnknownCommand { code } => write!(f, "unknown DRBD command {code:#06x}"),
            Error::UnsupportedCommand { command } => {
                write!(f, "{} is not a packet DRBD sends", command.name())
            }
            Error::LengthMismatch {
                what,
                expected,
                got,
            } => {
                write!(f, "{what}: payload length {got}, layout needs {expected}")
            }
            Error::BadField { field, value } => write!(f, "{field} has invalid value {value:#x}"),
            Error::BadString { field } => {
                write!(f, "{field} is not a NUL-terminated string within its limit")
            }
            Error::HeaderNotAllowed { kind, pv } => {
                write!(f, "{kind:?} header not accepted at protocol version {pv}")
            }
            Error::PayloadTooLong { kind, len } => {
                write!(f, "{len}-byte payload does not fit a {kind:?} header")
            }
            Error::WrongBody { command } => {
                write!(f, "body layout does not match {}", command.name())
            }
            Error::NoRoom { required, have } => {
                write!(
                    f,
                    "output buffer too small: needs {required} bytes, has {have}"
                )
            }
            Error::Bitmap { reason, at } => write!(f, "bitmap packet at code bit {at}: {reason}"),
        }
    }
}

impl core::error::Error for Error {}

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
