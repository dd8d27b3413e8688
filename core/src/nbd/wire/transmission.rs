//! The transmission phase (proto.md "Request message", "Simple reply message", "Transmission
//! flags", "Command flags", "Request types", "Error values"): the 28-byte request header, the
//! 16-byte simple reply, and their flag and code tables.

use super::error::{at_least, room, Error};
use super::field::{put, u16_at, u32_at, u64_at};
use super::handshake::magic;

/// `NBD_REQUEST_MAGIC`.
pub const REQUEST_MAGIC: u32 = 0x2560_9513;
/// `NBD_SIMPLE_REPLY_MAGIC`.
pub const SIMPLE_REPLY_MAGIC: u32 = 0x6744_6698;
/// `NBD_STRUCTURED_REPLY_MAGIC` (recognised, never sent: structured replies are refused).
pub const STRUCTURED_REPLY_MAGIC: u32 = 0x668e_33ef;

/// Transmission flags, sent with the export's size (proto.md "Transmission flags").
pub mod flags {
    /// Bit 0, `NBD_FLAG_HAS_FLAGS`: always set.
    pub const HAS_FLAGS: u16 = 1 << 0;
    /// Bit 1, `NBD_FLAG_READ_ONLY`.
    pub const READ_ONLY: u16 = 1 << 1;
    /// Bit 2, `NBD_FLAG_SEND_FLUSH`.
    pub const SEND_FLUSH: u16 = 1 << 2;
    /// Bit 3, `NBD_FLAG_SEND_FUA`.
    pub const SEND_FUA: u16 = 1 << 3;
    /// Bit 4, `NBD_FLAG_ROTATIONAL`.
    pub const ROTATIONAL: u16 = 1 << 4;
    /// Bit 5, `NBD_FLAG_SEND_TRIM`.
    pub const SEND_TRIM: u16 = 1 << 5;
    /// Bit 6, `NBD_FLAG_SEND_WRITE_ZEROES`.
    pub const SEND_WRITE_ZEROES: u16 = 1 << 6;
    /// Bit 7, `NBD_FLAG_SEND_DF` (needs structured replies).
    pub const SEND_DF: u16 = 1 << 7;
    /// Bit 8, `NBD_FLAG_CAN_MULTI_CONN`.
    pub const CAN_MULTI_CONN: u16 = 1 << 8;
    /// Bit 10, `NBD_FLAG_SEND_CACHE`.
    pub const SEND_CACHE: u16 = 1 << 10;
    /// Bit 11, `NBD_FLAG_SEND_FAST_ZERO`.
    pub const SEND_FAST_ZERO: u16 = 1 << 11;
}

/// Command flags, per request (proto.md "Command flags").
pub mod cmd_flags {
    /// Bit 0, `NBD_CMD_FLAG_FUA`: persist before replying.
    pub const FUA: u16 = 1 << 0;
    /// Bit 1, `NBD_CMD_FLAG_NO_HOLE`: `WRITE_ZEROES` must allocate.
    pub const NO_HOLE: u16 = 1 << 1;
    /// Bit 2, `NBD_CMD_FLAG_DF`: don't fragment a structured read reply.
    pub const DF: u16 = 1 << 2;
    /// Bit 3, `NBD_CMD_FLAG_REQ_ONE`: one extent per block status context.
    pub const REQ_ONE: u16 = 1 << 3;
    /// Bit 4, `NBD_CMD_FLAG_FAST_ZERO`.
    pub const FAST_ZERO: u16 = 1 << 4;
}

/// Request types (proto.md "Request types").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Command {
    /// `NBD_CMD_READ` (0).
    Read,
    /// `NBD_CMD_WRITE` (1): the payload follows the header.
    Write,
    /// `NBD_CMD_DISC` (2): no reply.
    Disc,
    /// `NBD_CMD_FLUSH` (3).
    Flush,
    /// `NBD_CMD_TRIM` (4).
    Trim,
    /// `NBD_CMD_CACHE` (5).
    Cache,
    /// `NBD_CMD_WRITE_ZEROES` (6).
    WriteZeroes,
    /// `NBD_CMD_BLOCK_STATUS` (7).
    BlockStatus,
    /// `NBD_CMD_RESIZE` (8, experimental).
    Resize,
    /// Anything else (answered `NBD_EINVAL`).
    Other(u16),
}

impl Command {
    /// The command for a type code.
    pub const fn from_code(code: u16) -> Command {
        match code {
            0 => Command::Read,
            1 => Command::Write,
            2 => Command::Disc,
            3 => Command::Flush,
            4 => Command::Trim,
            5 => Command::Cache,
            6 => Command::WriteZeroes,
            7 => Command::BlockStatus,
            8 => Command::Resize,
            c => Command::Other(c),
        }
    }

    /// The type code on the wire.
    pub const fn code(self) -> u16 {
        match self {
            Command::Read => 0,
            Command::Write => 1,
            Command::Disc => 2,
            Command::Flush => 3,
            Command::Trim => 4,
            Command::Cache => 5,
            Command::WriteZeroes => 6,
            Command::BlockStatus => 7,
            Command::Resize => 8,
            Command::Other(c) => c,
        }
    }
}

/// NBD error values (proto.md "Error values"); the wire carries them as 32-bit numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ErrorCode {
    /// `NBD_EPERM` (1): write to a read-only export.
    Perm,
    /// `NBD_EIO` (5).
    Io,
    /// `NBD_ENOMEM` (12).
    NoMem,
    /// `NBD_EINVAL` (22): bad flags, unknown command, out-of-range read or trim, misalignment.
    Inval,
    /// `NBD_ENOSPC` (28): write past the end of the export.
    NoSpc,
    /// `NBD_EOVERFLOW` (75).
    Overflow,
    /// `NBD_ENOTSUP` (95).
    NotSup,
    /// `NBD_ESHUTDOWN` (108): the server is shutting down.
    Shutdown,
}

impl ErrorCode {
    /// The number on the wire.
    pub const fn code(self) -> u32 {
        match self {
            ErrorCode::Perm => 1,
            ErrorCode::Io => 5,
            ErrorCode::NoMem => 12,
            ErrorCode::Inval => 22,
            ErrorCode::NoSpc => 28,
            ErrorCode::Overflow => 75,
            ErrorCode::NotSup => 95,
            ErrorCode::Shutdown => 108,
        }
    }

    /// The error for a number; a client treats unknown ones as `NBD_EINVAL`.
    pub const fn from_code(code: u32) -> Option<ErrorCode> {
        Some(match code {
            1 => ErrorCode::Perm,
            5 => ErrorCode::Io,
            12 => ErrorCode::NoMem,
            22 => ErrorCode::Inval,
            28 => ErrorCode::NoSpc,
            75 => ErrorCode::Overflow,
            95 => ErrorCode::NotSup,
            108 => ErrorCode::Shutdown,
            _ => return None,
        })
    }

    /// The error a server should send for a POSIX `errno` (proto.md: `EDQUOT` and `EFBIG` map
    /// to `NBD_ENOSPC`; `EROFS` is a write to something read-only; the rest is an I/O error).
    /// Linux numbering.
    pub const fn from_errno(errno: i32) -> ErrorCode {
        match errno {
            1 | 13 | 30 => ErrorCode::Perm,    // EPERM, EACCES, EROFS
            12 => ErrorCode::NoMem,            // ENOMEM
            22 => ErrorCode::Inval,            // EINVAL
            27 | 28 | 122 => ErrorCode::NoSpc, // EFBIG, ENOSPC, EDQUOT
            75 => ErrorCode::Overflow,         // EOVERFLOW
            95 => ErrorCode::NotSup,           // EOPNOTSUPP
            108 => ErrorCode::Shutdown,        // ESHUTDOWN
            _ => ErrorCode::Io,
        }
    }
}

impl core::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            ErrorCode::Perm => "NBD_EPERM (operation not permitted)",
            ErrorCode::Io => "NBD_EIO (input/output error)",
            ErrorCode::NoMem => "NBD_ENOMEM (cannot allocate memory)",
            ErrorCode::Inval => "NBD_EINVAL (invalid argument)",
            ErrorCode::NoSpc => "NBD_ENOSPC (no space left on device)",
            ErrorCode::Overflow => "NBD_EOVERFLOW (value too large)",
            ErrorCode::NotSup => "NBD_ENOTSUP (operation not supported)",
            ErrorCode::Shutdown => "NBD_ESHUTDOWN (server shutting down)",
        })
    }
}

/// A zero-copy view of a request header: magic, command flags, type, cookie, offset, length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request<T: AsRef<[u8]>> {
    buffer: T,
}

mod field {
    pub const MAGIC: usize = 0;
    pub const FLAGS: usize = 4;
    pub const TYPE: usize = 6;
    pub const COOKIE: usize = 8;
    pub const OFFSET: usize = 16;
    pub const LENGTH: usize = 24;
}

impl<T: AsRef<[u8]>> Request<T> {
    /// Bytes of the header (a `WRITE`'s payload follows it).
    pub const LEN: usize = 28;

    /// Wraps `buffer` without checks (missing bytes read as zero).
    pub const fn new_unchecked(buffer: T) -> Self {
        Request { buffer }
    }

    /// Wraps `buffer` after checking it holds a header with `NBD_REQUEST_MAGIC`.
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let v = Self::new_unchecked(buffer);
        at_least("request", v.buffer.as_ref().len(), Self::LEN)?;
        magic("request", REQUEST_MAGIC.into(), v.magic().into())?;
        Ok(v)
    }

    /// Must be [`REQUEST_MAGIC`].
    pub fn magic(&self) -> u32 {
        u32_at(self.buffer.as_ref(), field::MAGIC)
    }
    /// Command flags ([`cmd_flags`]).
    pub fn flags(&self) -> u16 {
        u16_at(self.buffer.as_ref(), field::FLAGS)
    }
    /// The request type.
    pub fn command(&self) -> Command {
        Command::from_code(u16_at(self.buffer.as_ref(), field::TYPE))
    }
    /// The client's cookie (formerly "handle"), echoed in the reply.
    pub fn cookie(&self) -> u64 {
        u64_at(self.buffer.as_ref(), field::COOKIE)
    }
    /// Byte offset into the export.
    pub fn offset(&self) -> u64 {
        u64_at(self.buffer.as_ref(), field::OFFSET)
    }
    /// Bytes affected (and, for `WRITE`, bytes of payload after the header).
    pub fn length(&self) -> u32 {
        u32_at(self.buffer.as_ref(), field::LENGTH)
    }
}

/// A parsed request header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct RequestRepr {
    /// Command flags ([`cmd_flags`]).
    pub flags: u16,
    /// The request type.
    pub command: Command,
    /// The client's cookie.
    pub cookie: u64,
    /// Byte offset.
    pub offset: u64,
    /// Byte length.
    pub length: u32,
}

impl RequestRepr {
    /// Parses a header (the payload may or may not follow).
    pub fn parse(buf: &[u8]) -> Result<RequestRepr, Error> {
        let v = Request::new_checked(buf)?;
        Ok(RequestRepr {
            flags: v.flags(),
            command: v.command(),
            cookie: v.cookie(),
            offset: v.offset(),
            length: v.length(),
        })
    }

    /// Writes the header; returns [`Request::LEN`].
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, Error> {
        room(buf, Request::<&[u8]>::LEN)?;
        put(buf, field::MAGIC, &REQUEST_MAGIC.to_be_bytes());
        put(buf, field::FLAGS, &self.flags.to_be_bytes());
        put(buf, field::TYPE, &self.command.code().to_be_bytes());
        put(buf, field::COOKIE, &self.cookie.to_be_bytes());
        put(buf, field::OFFSET, &self.offset.to_be_bytes());
        put(buf, field::LENGTH, &self.length.to_be_bytes());
        Ok(Request::<&[u8]>::LEN)
    }
}

/// A simple reply: magic, error (0 = success), cookie (16 bytes); a successful `READ`'s data
/// follows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SimpleReplyRepr {
    /// 0, or an [`ErrorCode`] number (kept raw: a client must accept unknown values).
    pub error: u32,
    /// The request's cookie.
    pub cookie: u64,
}

impl SimpleReplyRepr {
    /// Bytes on the wire.
    pub const LEN: usize = 16;

    /// The reply to `cookie` for `result`.
    pub const fn new(cookie: u64, result: Result<(), ErrorCode>) -> SimpleReplyRepr {
        SimpleReplyRepr {
            error: match result {
                Ok(()) => 0,
                Err(e) => e.code(),
            },
            cookie,
        }
    }

    /// Parses a reply (client side).
    pub fn parse(buf: &[u8]) -> Result<SimpleReplyRepr, Error> {
        at_least("simple reply", buf.len(), Self::LEN)?;
        magic(
            "simple reply",
            SIMPLE_REPLY_MAGIC.into(),
            u32_at(buf, 0).into(),
        )?;
        Ok(SimpleReplyRepr {
            error: u32_at(buf, 4),
            cookie: u64_at(buf, 8),
        })
    }

    /// Writes the reply; returns [`Self::LEN`].
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, Error> {
        room(buf, Self::LEN)?;
        put(buf, 0, &SIMPLE_REPLY_MAGIC.to_be_bytes());
        put(buf, 4, &self.error.to_be_bytes());
        put(buf, 8, &self.cookie.to_be_bytes());
        Ok(Self::LEN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 4 KiB `NBD_CMD_WRITE` with FUA at offset 1 MiB, cookie 0x0102030405060708.
    const WRITE_FUA: [u8; 28] = [
        0x25, 0x60, 0x95, 0x13, 0x00, 0x01, 0x00, 0x01, 1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0, 0, 0,
        0x10, 0, 0, 0, 0, 0x10, 0,
    ];

    #[test]
    fn request_bytes() {
        let r = RequestRepr::parse(&WRITE_FUA).unwrap();
        assert_eq!(
            r,
            RequestRepr {
                flags: cmd_flags::FUA,
                command: Command::Write,
                cookie: 0x0102_0304_0506_0708,
                offset: 1 << 20,
                length: 4096,
            }
        );
        let mut out = [0u8; 28];
        assert_eq!(r.emit(&mut out), Ok(28));
        assert_eq!(out, WRITE_FUA);
        assert_eq!(
            RequestRepr::parse(&WRITE_FUA[..27]),
            Err(Error::Truncated {
                what: "request",
                need: 28,
                have: 27
            })
        );
        let mut bad = WRITE_FUA;
        bad[3] = 0x14;
        assert_eq!(
            RequestRepr::parse(&bad),
            Err(Error::BadMagic {
                what: "request",
                expected: 0x2560_9513,
                found: 0x2560_9514
            })
        );
        let v = Request::new_unchecked(&WRITE_FUA[..10]);
        assert_eq!((v.offset(), v.length()), (0, 0));
    }

    #[test]
    fn simple_reply_bytes() {
        let r = SimpleReplyRepr::new(7, Err(ErrorCode::Perm));
        let mut buf = [0u8; 16];
        assert_eq!(r.emit(&mut buf), Ok(16));
        assert_eq!(
            buf,
            [0x67, 0x44, 0x66, 0x98, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 7]
        );
        assert_eq!(SimpleReplyRepr::parse(&buf), Ok(r));
        assert!(r.emit(&mut buf[..15]).is_err());
    }

    #[test]
    fn codes() {
        for c in 0..20 {
            assert_eq!(Command::from_code(c).code(), c);
        }
        for e in [1, 5, 12, 22, 28, 75, 95, 108] {
            assert_eq!(ErrorCode::from_code(e).map(ErrorCode::code), Some(e));
        }
        assert_eq!(ErrorCode::from_code(2), None);
        assert_eq!(ErrorCode::from_errno(122), ErrorCode::NoSpc);
        assert_eq!(ErrorCode::from_errno(30), ErrorCode::Perm);
        assert_eq!(ErrorCode::from_errno(5), ErrorCode::Io);
    }
}
