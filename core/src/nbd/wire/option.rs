//! Option haggling (proto.md "Option types", "Option reply types"): option and reply codes, the
//! option reply header, the `NBD_OPT_INFO` / `NBD_OPT_GO` request data, `NBD_REP_INFO` payloads
//! and the `NBD_REP_SERVER` payload of `NBD_OPT_LIST`.

use super::error::{at_least, room, Error};
use super::field::{put, slice, u16_at, u32_at, u64_at};
use super::handshake::magic;

/// Magic of every option reply (`0x3e889045565a9`).
pub const REPLY_MAGIC: u64 = 0x0003_e889_0455_65a9;

/// Option codes a client may send (proto.md "Option types").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum OptionCode {
    /// `NBD_OPT_EXPORT_NAME` (1): choose an export and enter transmission, no error path.
    ExportName,
    /// `NBD_OPT_ABORT` (2): end the session softly.
    Abort,
    /// `NBD_OPT_LIST` (3): list the exports.
    List,
    /// `NBD_OPT_STARTTLS` (5).
    StartTls,
    /// `NBD_OPT_INFO` (6): describe an export.
    Info,
    /// `NBD_OPT_GO` (7): describe an export and enter transmission.
    Go,
    /// `NBD_OPT_STRUCTURED_REPLY` (8).
    StructuredReply,
    /// `NBD_OPT_LIST_META_CONTEXT` (9).
    ListMetaContext,
    /// `NBD_OPT_SET_META_CONTEXT` (10).
    SetMetaContext,
    /// `NBD_OPT_EXTENDED_HEADERS` (11, experimental extension).
    ExtendedHeaders,
    /// Anything else (a server answers `NBD_REP_ERR_UNSUP`).
    Other(u32),
}

impl OptionCode {
    /// The option for a code.
    pub const fn from_code(code: u32) -> OptionCode {
        match code {
            1 => OptionCode::ExportName,
            2 => OptionCode::Abort,
            3 => OptionCode::List,
            5 => OptionCode::StartTls,
            6 => OptionCode::Info,
            7 => OptionCode::Go,
            8 => OptionCode::StructuredReply,
            9 => OptionCode::ListMetaContext,
            10 => OptionCode::SetMetaContext,
            11 => OptionCode::ExtendedHeaders,
            other => OptionCode::Other(other),
        }
    }

    /// The code on the wire.
    pub const fn code(self) -> u32 {
        match self {
            OptionCode::ExportName => 1,
            OptionCode::Abort => 2,
            OptionCode::List => 3,
            OptionCode::StartTls => 5,
            OptionCode::Info => 6,
            OptionCode::Go => 7,
            OptionCode::StructuredReply => 8,
            OptionCode::ListMetaContext => 9,
            OptionCode::SetMetaContext => 10,
            OptionCode::ExtendedHeaders => 11,
            OptionCode::Other(c) => c,
        }
    }
}

/// Option reply types; errors have bit 31 set (proto.md "Option reply types").
pub mod reply {
    /// `NBD_REP_ACK`: the option succeeded, or a list is complete.
    pub const ACK: u32 = 1;
    /// `NBD_REP_SERVER`: one export of an `NBD_OPT_LIST`.
    pub const SERVER: u32 = 2;
    /// `NBD_REP_INFO`: one item of `NBD_OPT_INFO` / `NBD_OPT_GO`.
    pub const INFO: u32 = 3;
    /// `NBD_REP_META_CONTEXT`.
    pub const META_CONTEXT: u32 = 4;
    /// Bit 31: the reply is an error.
    pub const ERROR_BIT: u32 = 1 << 31;
    /// `NBD_REP_ERR_UNSUP`: option unknown to this server.
    pub const ERR_UNSUP: u32 = ERROR_BIT | 1;
    /// `NBD_REP_ERR_POLICY`: forbidden by server policy.
    pub const ERR_POLICY: u32 = ERROR_BIT | 2;
    /// `NBD_REP_ERR_INVALID`: syntactically or semantically invalid.
    pub const ERR_INVALID: u32 = ERROR_BIT | 3;
    /// `NBD_REP_ERR_PLATFORM`.
    pub const ERR_PLATFORM: u32 = ERROR_BIT | 4;
    /// `NBD_REP_ERR_TLS_REQD`.
    pub const ERR_TLS_REQD: u32 = ERROR_BIT | 5;
    /// `NBD_REP_ERR_UNKNOWN`: no such export.
    pub const ERR_UNKNOWN: u32 = ERROR_BIT | 6;
    /// `NBD_REP_ERR_SHUTDOWN`: the server is shutting down.
    pub const ERR_SHUTDOWN: u32 = ERROR_BIT | 7;
    /// `NBD_REP_ERR_BLOCK_SIZE_REQD`.
    pub const ERR_BLOCK_SIZE_REQD: u32 = ERROR_BIT | 8;
    /// `NBD_REP_ERR_TOO_BIG`: request or reply too large.
    pub const ERR_TOO_BIG: u32 = ERROR_BIT | 9;
}

/// `NBD_INFO_*` information types inside `NBD_REP_INFO`.
pub mod info {
    /// `NBD_INFO_EXPORT`: size and transmission flags.
    pub const EXPORT: u16 = 0;
    /// `NBD_INFO_NAME`: canonical name.
    pub const NAME: u16 = 1;
    /// `NBD_INFO_DESCRIPTION`: human-readable description.
    pub const DESCRIPTION: u16 = 2;
    /// `NBD_INFO_BLOCK_SIZE`: minimum, preferred and maximum payload sizes.
    pub const BLOCK_SIZE: u16 = 3;
}

/// An option reply header: magic, the option answered, reply type, data length (20 bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct OptionReplyRepr {
    /// The option code this answers.
    pub option: u32,
    /// The reply type ([`reply`]).
    pub reply_type: u32,
    /// Bytes of data after the header.
    pub length: u32,
}

impl OptionReplyRepr {
    /// Bytes of the header.
    pub const HEADER_LEN: usize = 20;

    /// Parses the header (client side).
    pub fn parse(buf: &[u8]) -> Result<OptionReplyRepr, Error> {
        at_least("option reply", buf.len(), Self::HEADER_LEN)?;
        magic("option reply", REPLY_MAGIC, u64_at(buf, 0))?;
        Ok(OptionReplyRepr {
            option: u32_at(buf, 8),
            reply_type: u32_at(buf, 12),
            length: u32_at(buf, 16),
        })
    }

    /// Whether the reply type is an error.
    pub const fn is_error(&self) -> bool {
        self.reply_type & reply::ERROR_BIT != 0
    }

    /// Writes the header and `data`; `self.length` is taken from `data`.
    pub fn emit_with(
        option: u32,
        reply_type: u32,
        data: &[&[u8]],
        buf: &mut [u8],
    ) -> Result<usize, Error> {
        let len: usize = data.iter().map(|d| d.len()).sum();
        let length = u32::try_from(len).map_err(|_| Error::BadLength {
            field: "option reply.length",
            len: len as u64,
        })?;
        let total = Self::HEADER_LEN + len;
        room(buf, total)?;
        put(buf, 0, &REPLY_MAGIC.to_be_bytes());
        put(buf, 8, &option.to_be_bytes());
        put(buf, 12, &reply_type.to_be_bytes());
        put(buf, 16, &length.to_be_bytes());
        let mut at = Self::HEADER_LEN;
        for d in data {
            put(buf, at, d);
            at += d.len();
        }
        Ok(total)
    }
}

/// The data of `NBD_OPT_INFO` / `NBD_OPT_GO`: a 32-bit name length, the name, a 16-bit count
/// of information requests and that many 16-bit `NBD_INFO_*` codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InfoRequest<'a> {
    /// The export name (empty = the default export).
    pub name: &'a [u8],
    requests: &'a [u8],
}

impl<'a> InfoRequest<'a> {
    /// Parses option data; `BadLength` when the lengths inside do not add up to the data length
    /// (the server answers that with `NBD_REP_ERR_INVALID`).
    pub fn parse(data: &'a [u8]) -> Result<InfoRequest<'a>, Error> {
        at_least("NBD_OPT_GO data", data.len(), 6)?;
        let name_len = u32_at(data, 0);
        // "MUST be no larger than the option data length - 6".
        if u64::from(name_len) > (data.len() - 6) as u64 {
            return Err(Error::BadLength {
                field: "NBD_OPT_GO.name length",
                len: name_len.into(),
            });
        }
        let name_len = name_len as usize;
        let name = slice(data, 4, name_len);
        let count = usize::from(u16_at(data, 4 + name_len));
        let requests = slice(data, 6 + name_len, usize::MAX);
        if requests.len() != 2 * count {
            return Err(Error::BadLength {
                field: "NBD_OPT_GO.information request count",
                len: count as u64,
            });
        }
        Ok(InfoRequest { name, requests })
    }

    /// The requested `NBD_INFO_*` codes.
    pub fn requests(&self) -> impl Iterator<Item = u16> + 'a {
        self.requests.chunks_exact(2).map(|c| u16_at(c, 0))
    }

    /// Whether `code` was requested.
    pub fn requested(&self, code: u16) -> bool {
        self.requests().any(|c| c == code)
    }

    /// Writes option data for `name` and `requests` (client side); returns its length.
    pub fn emit(name: &[u8], requests: &[u16], buf: &mut [u8]) -> Result<usize, Error> {
        let total = 6 + name.len() + 2 * requests.len();
        room(buf, total)?;
        let name_len = u32::try_from(name.len()).map_err(|_| Error::BadLength {
            field: "NBD_OPT_GO.name length",
            len: name.len() as u64,
        })?;
        let count = u16::try_from(requests.len()).map_err(|_| Error::BadLength {
            field: "NBD_OPT_GO.information request count",
            len: requests.len() as u64,
        })?;
        put(buf, 0, &name_len.to_be_bytes());
        put(buf, 4, name);
        put(buf, 4 + name.len(), &count.to_be_bytes());
        for (i, r) in requests.iter().enumerate() {
            put(buf, 6 + name.len() + 2 * i, &r.to_be_bytes());
        }
        Ok(total)
    }
}

/// An `NBD_REP_INFO` payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InfoRepr<'a> {
    /// `NBD_INFO_EXPORT`: size and transmission flags (12 bytes).
    Export {
        /// Export size in bytes.
        size: u64,
        /// Transmission flags.
        flags: u16,
    },
    /// `NBD_INFO_NAME`: canonical name.
    Name(&'a [u8]),
    /// `NBD_INFO_DESCRIPTION`.
    Description(&'a [u8]),
    /// `NBD_INFO_BLOCK_SIZE` (14 bytes).
    BlockSize {
        /// Minimum block size (power of two, at most 64 KiB).
        min: u32,
        /// Preferred block size.
        preferred: u32,
        /// Maximum payload of one request.
        max_payload: u32,
    },
    /// A type this code does not know; a client MUST ignore it.
    Other {
        /// The `NBD_INFO_*` code.
        kind: u16,
        /// The bytes after it.
        data: &'a [u8],
    },
}

impl<'a> InfoRepr<'a> {
    /// Parses a payload; the fixed-size types must have exactly their length.
    pub fn parse(data: &'a [u8]) -> Result<InfoRepr<'a>, Error> {
        at_least("NBD_REP_INFO", data.len(), 2)?;
        let kind = u16_at(data, 0);
        let rest = slice(data, 2, usize::MAX);
        let exact = |n: usize, field| {
            if data.len() == n {
                Ok(())
            } else {
                Err(Error::BadLength {
                    field,
                    len: data.len() as u64,
                })
            }
        };
        Ok(match kind {
            info::EXPORT => {
                exact(12, "NBD_INFO_EXPORT length")?;
                InfoRepr::Export {
                    size: u64_at(data, 2),
                    flags: u16_at(data, 10),
                }
            }
            info::NAME => InfoRepr::Name(rest),
            info::DESCRIPTION => InfoRepr::Description(rest),
            info::BLOCK_SIZE => {
                exact(14, "NBD_INFO_BLOCK_SIZE length")?;
                InfoRepr::BlockSize {
                    min: u32_at(data, 2),
                    preferred: u32_at(data, 6),
                    max_payload: u32_at(data, 10),
                }
            }
            kind => InfoRepr::Other { kind, data: rest },
        })
    }

    /// The `NBD_INFO_*` code.
    pub const fn kind(&self) -> u16 {
        match self {
            InfoRepr::Export { .. } => info::EXPORT,
            InfoRepr::Name(_) => info::NAME,
            InfoRepr::Description(_) => info::DESCRIPTION,
            InfoRepr::BlockSize { .. } => info::BLOCK_SIZE,
            InfoRepr::Other { kind, .. } => *kind,
        }
    }

    /// Writes a whole `NBD_REP_INFO` reply to `option` (header included); returns its length.
    pub fn emit_reply(&self, option: u32, buf: &mut [u8]) -> Result<usize, Error> {
        let kind = self.kind().to_be_bytes();
        let mut fixed = [0u8; 12];
        let tail: &[u8] = match self {
            InfoRepr::Export { size, flags } => {
                put(&mut fixed, 0, &size.to_be_bytes());
                put(&mut fixed, 8, &flags.to_be_bytes());
                &fixed[..10]
            }
            InfoRepr::BlockSize {
                min,
                preferred,
                max_payload,
            } => {
                put(&mut fixed, 0, &min.to_be_bytes());
                put(&mut fixed, 4, &preferred.to_be_bytes());
                put(&mut fixed, 8, &max_payload.to_be_bytes());
                &fixed[..12]
            }
            InfoRepr::Name(d) | InfoRepr::Description(d) | InfoRepr::Other { data: d, .. } => d,
        };
        OptionReplyRepr::emit_with(option, reply::INFO, &[&kind, tail], buf)
    }
}

/// Writes an `NBD_REP_SERVER` reply naming one export (proto.md: 32-bit name length, name).
pub fn emit_server_reply(name: &[u8], buf: &mut [u8]) -> Result<usize, Error> {
    let len = u32::try_from(name.len()).map_err(|_| Error::BadLength {
        field: "NBD_REP_SERVER.name length",
        len: name.len() as u64,
    })?;
    OptionReplyRepr::emit_with(
        OptionCode::List.code(),
        reply::SERVER,
        &[&len.to_be_bytes(), name],
        buf,
    )
}

/// The export name inside an `NBD_REP_SERVER` payload (client side).
pub fn parse_server_reply(data: &[u8]) -> Result<&[u8], Error> {
    at_least("NBD_REP_SERVER", data.len(), 4)?;
    let len = u32_at(data, 0);
    if u64::from(len) > (data.len() - 4) as u64 {
        return Err(Error::BadLength {
            field: "NBD_REP_SERVER.name length",
            len: len.into(),
        });
    }
    Ok(slice(data, 4, len as usize))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for c in 0..16 {
            assert_eq!(OptionCode::from_code(c).code(), c);
        }
        assert_eq!(OptionCode::from_code(7), OptionCode::Go);
        assert_eq!(reply::ERR_UNKNOWN, 0x8000_0006);
    }

    #[test]
    fn go_request_bytes() {
        // qemu's NBD_OPT_GO for export "disk" asking for NBD_INFO_BLOCK_SIZE.
        let data = [0, 0, 0, 4, b'd', b'i', b's', b'k', 0, 1, 0, 3];
        let r = InfoRequest::parse(&data).unwrap();
        assert_eq!(r.name, b"disk");
        assert!(r.requested(info::BLOCK_SIZE));
        assert!(!r.requested(info::NAME));
        let mut out = [0u8; 12];
        assert_eq!(InfoRequest::emit(b"disk", &[3], &mut out), Ok(12));
        assert_eq!(out, data);
        // Name longer than data - 6, count not matching, too short.
        assert!(InfoRequest::parse(&[0, 0, 0, 9, b'd', 0, 0]).is_err());
        assert!(InfoRequest::parse(&[0, 0, 0, 0, 0, 2, 0, 3]).is_err());
        assert!(InfoRequest::parse(&[0, 0, 0, 0, 0]).is_err());
        assert!(InfoRequest::parse(&[0xff, 0xff, 0xff, 0xff, 0, 0]).is_err());
        let empty = InfoRequest::parse(&[0, 0, 0, 0, 0, 0]).unwrap();
        assert_eq!((empty.name, empty.requests().count()), (&b""[..], 0));
    }

    #[test]
    fn info_export_reply_bytes() {
        let mut buf = [0u8; 64];
        let i = InfoRepr::Export {
            size: 1 << 20,
            flags: 0x016d,
        };
        let n = i.emit_reply(7, &mut buf).unwrap();
        let expect = [
            0x00, 0x03, 0xe8, 0x89, 0x04, 0x55, 0x65, 0xa9, // magic
            0, 0, 0, 7, // NBD_OPT_GO
            0, 0, 0, 3, // NBD_REP_INFO
            0, 0, 0, 12, // length
            0, 0, // NBD_INFO_EXPORT
            0, 0, 0, 0, 0, 0x10, 0, 0, // 1 MiB
            0x01, 0x6d,
        ];
        assert_eq!(&buf[..n], &expect[..]);
        let h = OptionReplyRepr::parse(&buf).unwrap();
        assert_eq!(
            (h.option, h.reply_type, h.length, h.is_error()),
            (7, 3, 12, false)
        );
        assert_eq!(InfoRepr::parse(&buf[20..n]), Ok(i));
        assert!(InfoRepr::parse(&buf[20..n - 1]).is_err());
        assert_eq!(
            i.emit_reply(7, &mut buf[..31]),
            Err(Error::NoRoom {
                required: 32,
                have: 31
            })
        );
    }

    #[test]
    fn block_size_and_server_bytes() {
        let mut buf = [0u8; 64];
        let b = InfoRepr::BlockSize {
            min: 1,
            preferred: 4096,
            max_payload: 1 << 25,
        };
        let n = b.emit_reply(6, &mut buf).unwrap();
        assert_eq!(n, 34);
        assert_eq!(
            &buf[20..n],
            &[0, 3, 0, 0, 0, 1, 0, 0, 0x10, 0, 0x02, 0, 0, 0]
        );
        assert_eq!(InfoRepr::parse(&buf[20..n]), Ok(b));
        let n = emit_server_reply(b"r0", &mut buf).unwrap();
        assert_eq!(&buf[8..20], &[0, 0, 0, 3, 0, 0, 0, 2, 0, 0, 0, 6]);
        assert_eq!(parse_server_reply(&buf[20..n]), Ok(&b"r0"[..]));
        assert!(parse_server_reply(&[0, 0, 0, 9, 1]).is_err());
        assert_eq!(
            InfoRepr::parse(&[0, 9, 1, 2]),
            Ok(InfoRepr::Other {
                kind: 9,
                data: &[1, 2]
            })
        );
    }
}
