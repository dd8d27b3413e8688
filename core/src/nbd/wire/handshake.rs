//! The fixed newstyle handshake up to option haggling (proto.md "Newstyle negotiation", "Fixed
//! newstyle negotiation", "Handshake flags", "Client flags"): the server greeting, the client
//! flags, the option request header and the reply that ends `NBD_OPT_EXPORT_NAME`.

use super::error::{at_least, room, Error};
use super::field::{put, u16_at, u32_at, u64_at};

/// `NBDMAGIC`, the first eight bytes a server sends.
pub const NBDMAGIC: u64 = 0x4e42_444d_4147_4943;
/// `IHAVEOPT`: the newstyle greeting's second magic, and the magic of every option request.
pub const IHAVEOPT: u64 = 0x4948_4156_454f_5054;

/// Handshake flag bit 0, `NBD_FLAG_FIXED_NEWSTYLE`.
pub const FLAG_FIXED_NEWSTYLE: u16 = 1 << 0;
/// Handshake flag bit 1, `NBD_FLAG_NO_ZEROES`.
pub const FLAG_NO_ZEROES: u16 = 1 << 1;

/// Client flag bit 0, `NBD_FLAG_C_FIXED_NEWSTYLE`.
pub const CLIENT_FIXED_NEWSTYLE: u32 = 1 << 0;
/// Client flag bit 1, `NBD_FLAG_C_NO_ZEROES`.
pub const CLIENT_NO_ZEROES: u32 = 1 << 1;
/// Every client flag the spec defines; a server MUST drop a client that sets any other.
pub const CLIENT_KNOWN: u32 = CLIENT_FIXED_NEWSTYLE | CLIENT_NO_ZEROES;

/// Bytes of the reserved zeroes after the `NBD_OPT_EXPORT_NAME` reply (unless `NO_ZEROES`).
pub const EXPORT_NAME_ZEROES: usize = 124;

/// The newstyle greeting: `NBDMAGIC`, `IHAVEOPT`, 16 bits of handshake flags (18 bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct GreetingRepr {
    /// Handshake flags (`FLAG_*`).
    pub flags: u16,
}

impl GreetingRepr {
    /// Bytes on the wire.
    pub const LEN: usize = 18;

    /// Parses a greeting (client side: tests, benchmark clients).
    pub fn parse(buf: &[u8]) -> Result<GreetingRepr, Error> {
        at_least("greeting", buf.len(), Self::LEN)?;
        magic("greeting", NBDMAGIC, u64_at(buf, 0))?;
        magic("greeting", IHAVEOPT, u64_at(buf, 8))?;
        Ok(GreetingRepr {
            flags: u16_at(buf, 16),
        })
    }

    /// Writes the greeting; returns its length.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, Error> {
        room(buf, Self::LEN)?;
        put(buf, 0, &NBDMAGIC.to_be_bytes());
        put(buf, 8, &IHAVEOPT.to_be_bytes());
        put(buf, 16, &self.flags.to_be_bytes());
        Ok(Self::LEN)
    }
}

/// The client's 32-bit flags, the only thing a client sends before its first option.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ClientFlagsRepr {
    /// Client flags (`CLIENT_*`); unknown bits are kept so the server can refuse them.
    pub flags: u32,
}

impl ClientFlagsRepr {
    /// Bytes on the wire.
    pub const LEN: usize = 4;

    /// Parses the flags.
    pub fn parse(buf: &[u8]) -> Result<ClientFlagsRepr, Error> {
        at_least("client flags", buf.len(), Self::LEN)?;
        Ok(ClientFlagsRepr {
            flags: u32_at(buf, 0),
        })
    }

    /// Writes the flags; returns their length.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, Error> {
        room(buf, Self::LEN)?;
        put(buf, 0, &self.flags.to_be_bytes());
        Ok(Self::LEN)
    }
}

/// A zero-copy view of an option request: `IHAVEOPT`, option, data length, then the data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OptionRequest<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> OptionRequest<T> {
    /// Bytes of the header before the data.
    pub const HEADER_LEN: usize = 16;

    /// Wraps `buffer` without checks (missing bytes read as zero).
    pub const fn new_unchecked(buffer: T) -> Self {
        OptionRequest { buffer }
    }

    /// Wraps `buffer` after checking it holds the header with the right magic and all the data
    /// the header announces.
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let v = Self::new_unchecked(buffer);
        let buf = v.buffer.as_ref();
        at_least("option request", buf.len(), Self::HEADER_LEN)?;
        magic("option request", IHAVEOPT, v.magic())?;
        at_least("option request", buf.len(), v.total_len())?;
        Ok(v)
    }

    /// Must be [`IHAVEOPT`].
    pub fn magic(&self) -> u64 {
        u64_at(self.buffer.as_ref(), 0)
    }
    /// The option code ([`super::option::OptionCode`]).
    pub fn option(&self) -> u32 {
        u32_at(self.buffer.as_ref(), 8)
    }
    /// Bytes of option data after the header.
    pub fn length(&self) -> u32 {
        u32_at(self.buffer.as_ref(), 12)
    }
    /// Header plus data, saturating on 16-bit targets.
    pub fn total_len(&self) -> usize {
        usize::try_from(self.length())
            .unwrap_or(usize::MAX)
            .saturating_add(Self::HEADER_LEN)
    }
    /// The option data (clamped to what the buffer holds).
    pub fn data(&self) -> &[u8] {
        let len = usize::try_from(self.length()).unwrap_or(usize::MAX);
        super::field::slice(self.buffer.as_ref(), Self::HEADER_LEN, len)
    }
}

/// An option request header: which option and how much data follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct OptionRequestRepr {
    /// The option code.
    pub option: u32,
    /// Bytes of data after the header.
    pub length: u32,
}

impl OptionRequestRepr {
    /// Parses the 16-byte header (the data may or may not follow).
    pub fn parse(buf: &[u8]) -> Result<OptionRequestRepr, Error> {
        at_least(
            "option request",
            buf.len(),
            OptionRequest::<&[u8]>::HEADER_LEN,
        )?;
        let v = OptionRequest::new_unchecked(buf);
        magic("option request", IHAVEOPT, v.magic())?;
        Ok(OptionRequestRepr {
            option: v.option(),
            length: v.length(),
        })
    }

    /// Writes the header followed by `data` (whose length must be `self.length`).
    pub fn emit(&self, data: &[u8], buf: &mut [u8]) -> Result<usize, Error> {
        if data.len() as u64 != u64::from(self.length) {
            return Err(Error::BadLength {
                field: "option request.length",
                len: self.length.into(),
            });
        }
        let total = OptionRequest::<&[u8]>::HEADER_LEN + data.len();
        room(buf, total)?;
        put(buf, 0, &IHAVEOPT.to_be_bytes());
        put(buf, 8, &self.option.to_be_bytes());
        put(buf, 12, &self.length.to_be_bytes());
        put(buf, 16, data);
        Ok(total)
    }
}

/// The server's answer to `NBD_OPT_EXPORT_NAME`: size, transmission flags and, unless both
/// sides agreed `NO_ZEROES`, 124 zero bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ExportNameReplyRepr {
    /// Export size in bytes.
    pub size: u64,
    /// Transmission flags ([`super::transmission::flags`]).
    pub flags: u16,
    /// Whether the 124 reserved zeroes follow.
    pub zeroes: bool,
}

impl ExportNameReplyRepr {
    /// Bytes on the wire.
    pub const fn buffer_len(&self) -> usize {
        if self.zeroes {
            10 + EXPORT_NAME_ZEROES
        } else {
            10
        }
    }

    /// Parses the reply; `zeroes` says whether the client expects the padding.
    pub fn parse(buf: &[u8], zeroes: bool) -> Result<ExportNameReplyRepr, Error> {
        let r = ExportNameReplyRepr {
            size: u64_at(buf, 0),
            flags: u16_at(buf, 8),
            zeroes,
        };
        at_least("export name reply", buf.len(), r.buffer_len())?;
        Ok(r)
    }

    /// Writes the reply; returns its length.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, Error> {
        let n = self.buffer_len();
        room(buf, n)?;
        put(buf, 0, &self.size.to_be_bytes());
        put(buf, 8, &self.flags.to_be_bytes());
        if let Some(pad) = buf.get_mut(10..n) {
            pad.fill(0);
        }
        Ok(n)
    }
}

/// `Err(BadMagic)` unless `found == expected`.
pub(crate) fn magic(what: &'static str, expected: u64, found: u64) -> Result<(), Error> {
    if found == expected {
        Ok(())
    } else {
        Err(Error::BadMagic {
            what,
            expected,
            found,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `nbd-server` and `qemu-nbd` send first: NBDMAGIC, IHAVEOPT, flags 0x0003.
    const GREETING: [u8; 18] = [
        b'N', b'B', b'D', b'M', b'A', b'G', b'I', b'C', b'I', b'H', b'A', b'V', b'E', b'O', b'P',
        b'T', 0x00, 0x03,
    ];

    #[test]
    fn greeting_bytes() {
        let g = GreetingRepr {
            flags: FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES,
        };
        let mut buf = [0u8; 18];
        assert_eq!(g.emit(&mut buf), Ok(18));
        assert_eq!(buf, GREETING);
        assert_eq!(GreetingRepr::parse(&GREETING), Ok(g));
        assert_eq!(
            g.emit(&mut [0u8; 17]),
            Err(Error::NoRoom {
                required: 18,
                have: 17
            })
        );
        let mut bad = GREETING;
        bad[0] = b'X';
        assert!(matches!(
            GreetingRepr::parse(&bad),
            Err(Error::BadMagic {
                what: "greeting",
                ..
            })
        ));
    }

    #[test]
    fn option_request_bytes() {
        // NBD_OPT_EXPORT_NAME "a", as the Linux nbd-client's fallback sends it.
        let bytes = [
            b'I', b'H', b'A', b'V', b'E', b'O', b'P', b'T', 0, 0, 0, 1, 0, 0, 0, 1, b'a',
        ];
        let v = OptionRequest::new_checked(&bytes[..]).unwrap();
        assert_eq!((v.option(), v.length(), v.data()), (1, 1, &b"a"[..]));
        assert_eq!(
            OptionRequest::new_checked(&bytes[..16]),
            Err(Error::Truncated {
                what: "option request",
                need: 17,
                have: 16
            })
        );
        let r = OptionRequestRepr::parse(&bytes[..16]).unwrap();
        assert_eq!(
            r,
            OptionRequestRepr {
                option: 1,
                length: 1
            }
        );
        let mut out = [0u8; 17];
        assert_eq!(r.emit(b"a", &mut out), Ok(17));
        assert_eq!(out, bytes);
        assert!(r.emit(b"ab", &mut [0u8; 32]).is_err());
    }

    #[test]
    fn export_name_reply_bytes() {
        let r = ExportNameReplyRepr {
            size: 0x0102_0304_0506_0708,
            flags: 0x0003,
            zeroes: false,
        };
        let mut buf = [0xffu8; 134];
        assert_eq!(r.emit(&mut buf), Ok(10));
        assert_eq!(buf[..10], [1, 2, 3, 4, 5, 6, 7, 8, 0, 3]);
        let z = ExportNameReplyRepr { zeroes: true, ..r };
        assert_eq!(z.emit(&mut buf), Ok(134));
        assert!(buf[10..].iter().all(|&b| b == 0));
        assert_eq!(ExportNameReplyRepr::parse(&buf, true), Ok(z));
        assert!(ExportNameReplyRepr::parse(&buf[..20], true).is_err());
    }

    #[test]
    fn client_flags() {
        let c = ClientFlagsRepr::parse(&[0, 0, 0, 3]).unwrap();
        assert_eq!(c.flags & !CLIENT_KNOWN, 0);
        assert!(ClientFlagsRepr::parse(&[0, 0]).is_err());
        let mut b = [0u8; 4];
        assert_eq!(c.emit(&mut b), Ok(4));
        assert_eq!(b, [0, 0, 0, 3]);
    }
}
