//! The three packet headers (replication.md §1): h80 (8 bytes, u16 length), h95 (8 bytes, u32
//! length) and h100 (16 bytes, volume and zero pad), told apart by their magics.

use super::command::Command;
use super::error::Error;

/// `DRBD_MAGIC`, the h80 magic.
pub const MAGIC_80: u32 = 0x8374_0267;
/// `DRBD_MAGIC_BIG`, the h95 magic (16 bits).
pub const MAGIC_95: u16 = 0x835A;
/// `DRBD_MAGIC_100`, the h100 magic.
pub const MAGIC_100: u32 = 0x8620_EC20;

/// Largest data payload DRBD puts behind an h80 header (32 KiB; the field could say 65535).
pub const MAX_H80_DATA: usize = 1 << 15;

layout! {
    /// An h80 header: magic, command, 16-bit payload length.
    view Header80, repr Header80Fields, wire "p_header80", len 8;
    /// Must be [`MAGIC_80`].
    magic, set_magic: u32 = 0;
    /// Command number.
    command, set_command: u16 = 4;
    /// Payload bytes.
    length, set_length: u16 = 6;
}

layout! {
    /// An h95 header: 16-bit magic, command, 32-bit payload length.
    view Header95, repr Header95Fields, wire "p_header95", len 8;
    /// Must be [`MAGIC_95`].
    magic, set_magic: u16 = 0;
    /// Command number.
    command, set_command: u16 = 2;
    /// Payload bytes.
    length, set_length: u32 = 4;
}

layout! {
    /// An h100 header: magic, volume, command, 32-bit length, 32-bit pad that must be zero.
    view Header100, repr Header100Fields, wire "p_header100", len 16;
    /// Must be [`MAGIC_100`].
    magic, set_magic: u32 = 0;
    /// Volume number, 0xFFFF for connection-wide commands.
    volume, set_volume: u16 = 4;
    /// Command number.
    command, set_command: u16 = 6;
    /// Payload bytes.
    length, set_length: u32 = 8;
    /// Must be zero.
    pad, set_pad: u32 = 12;
}

/// Which header a packet uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum HeaderKind {
    /// 8 bytes, 16-bit length (protocol < 95, and every packet before agreement).
    H80,
    /// 8 bytes, 32-bit length (protocol 95–99, payloads over 32 KiB).
    H95,
    /// 16 bytes with a volume (protocol ≥ 100).
    H100,
}

impl HeaderKind {
    /// Bytes of the header.
    pub const fn size(self) -> usize {
        match self {
            HeaderKind::H80 | HeaderKind::H95 => 8,
            HeaderKind::H100 => 16,
        }
    }

    /// The header DRBD sends a `payload_len`-byte packet with at protocol version `pv` (`None`
    /// before features are agreed, which DRBD treats as a version below 95).
    pub const fn for_send(pv: Option<u32>, payload_len: usize) -> HeaderKind {
        match pv {
            Some(pv) if pv >= 100 => HeaderKind::H100,
            Some(pv) if pv >= 95 && payload_len > MAX_H80_DATA => HeaderKind::H95,
            _ => HeaderKind::H80,
        }
    }

    /// Whether a receiver at protocol version `pv` accepts this header on the data socket.
    ///
    /// The receiver reads a fixed header size per connection (16 bytes from pv 100, else 8) and
    /// then matches the magic, so h80 and h95 are both accepted below 100. replication.md §1's
    /// table says h80 only below 95, but its own sender rule puts h80 on every packet of 32 KiB
    /// or less at pv 95–99 (the oracle's drbd84 capture does exactly that at pv 96), so the table
    /// cannot be what a receiver enforces.
    pub const fn accepted_at(self, pv: u32) -> bool {
        match self {
            HeaderKind::H100 => pv >= 100,
            HeaderKind::H95 | HeaderKind::H80 => pv < 100,
        }
    }
}

/// A parsed header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct HeaderRepr {
    /// Which header.
    pub kind: HeaderKind,
    /// The command.
    pub command: Command,
    /// The volume (h100 only; h80 and h95 imply volume 0).
    pub volume: u16,
    /// Payload bytes following the header.
    pub length: u32,
}

impl HeaderRepr {
    /// The header kind announced by the first bytes of `buf`, or `Truncated` if they are a prefix
    /// of a magic but too short to tell, or `BadMagic`.
    pub fn detect(buf: &[u8]) -> Result<HeaderKind, Error> {
        let magics: [(&[u8], HeaderKind); 3] = [
            (&MAGIC_100.to_be_bytes(), HeaderKind::H100),
            (&MAGIC_95.to_be_bytes(), HeaderKind::H95),
            (&MAGIC_80.to_be_bytes(), HeaderKind::H80),
        ];
        for (magic, kind) in magics {
            if buf.starts_with(magic) {
                return Ok(kind);
            }
        }
        if buf.len() < 4 && magics.iter().any(|(m, _)| m.starts_with(buf)) {
            return Err(Error::Truncated {
                what: "header",
                need: 8,
                have: buf.len(),
            });
        }
        let mut first = [0u8; 4];
        for (d, s) in first.iter_mut().zip(buf) {
            *d = *s;
        }
        Err(Error::BadMagic {
            found: u32::from_be_bytes(first),
        })
    }

    /// Parses the header at the start of `buf` (the payload may follow or not).
    pub fn parse(buf: &[u8]) -> Result<HeaderRepr, Error> {
        let kind = Self::detect(buf)?;
        let (code, volume, length) = match kind {
            HeaderKind::H80 => {
                let h = Header80::new_checked(buf)?;
                (h.command(), 0, u32::from(h.length()))
            }
            HeaderKind::H95 => {
                let h = Header95::new_checked(buf)?;
                (h.command(), 0, h.length())
            }
            HeaderKind::H100 => {
                let h = Header100::new_checked(buf)?;
                if h.pad() != 0 {
                    return Err(Error::BadField {
                        field: "p_header100.pad",
                        value: h.pad().into(),
                    });
                }
                (h.command(), h.volume(), h.length())
            }
        };
        Ok(HeaderRepr {
            kind,
            command: Command::from_code(code)?,
            volume,
            length,
        })
    }

    /// Bytes [`Self::emit`] writes.
    pub const fn buffer_len(&self) -> usize {
        self.kind.size()
    }

    /// Bytes of the whole packet, header included: what a receiver must have buffered before
    /// [`super::Frame::parse`] can succeed.
    pub const fn frame_len(&self) -> usize {
        self.kind.size() + self.length as usize
    }

    /// Writes the header at the start of `buf`; returns its length. The volume is dropped by
    /// h80/h95; a length over 65535 cannot go into h80.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, Error> {
        match self.kind {
            HeaderKind::H80 => {
                let length = u16::try_from(self.length).map_err(|_| Error::PayloadTooLong {
                    kind: self.kind,
                    len: self.length as usize,
                })?;
                Header80Fields {
                    magic: MAGIC_80,
                    command: self.command.code(),
                    length,
                }
                .emit(buf)
            }
            HeaderKind::H95 => Header95Fields {
                magic: MAGIC_95,
                command: self.command.code(),
                length: self.length,
            }
            .emit(buf),
            HeaderKind::H100 => Header100Fields {
                magic: MAGIC_100,
                volume: self.volume,
                command: self.command.code(),
                length: self.length,
                pad: 0,
            }
            .emit(buf),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // drbdwire.py: header(P_INITIAL_DATA, 0, hdr=80), header(P_DATA, 4120, 122, vol=0),
    // header(P_DATA, 65560, 96).
    const H80_INITIAL_DATA: [u8; 8] = [0x83, 0x74, 0x02, 0x67, 0xFF, 0xF2, 0x00, 0x00];
    const H100_DATA: [u8; 16] = [
        0x86, 0x20, 0xEC, 0x20, 0, 0, 0, 0, 0, 0, 0x10, 0x18, 0, 0, 0, 0,
    ];
    const H95_DATA: [u8; 8] = [0x83, 0x5A, 0x00, 0x00, 0x00, 0x01, 0x00, 0x18];

    #[test]
    fn known_headers_parse_and_emit() {
        let cases = [
            (
                &H80_INITIAL_DATA[..],
                HeaderKind::H80,
                Command::InitialData,
                0,
                0,
            ),
            (&H100_DATA[..], HeaderKind::H100, Command::Data, 0, 4120),
            (&H95_DATA[..], HeaderKind::H95, Command::Data, 0, 65560),
        ];
        for (bytes, kind, command, volume, length) in cases {
            let h = HeaderRepr::parse(bytes).unwrap();
            assert_eq!(
                h,
                HeaderRepr {
                    kind,
                    command,
                    volume,
                    length
                }
            );
            let mut out = [0u8; 16];
            assert_eq!(h.emit(&mut out), Ok(bytes.len()));
            assert_eq!(&out[..bytes.len()], bytes);
        }
    }

    #[test]
    fn bad_headers() {
        assert_eq!(
            HeaderRepr::parse(&[0x83, 0x74]),
            Err(Error::Truncated {
                what: "header",
                need: 8,
                have: 2
            })
        );
        assert_eq!(
            HeaderRepr::parse(&[1, 2, 3, 4, 5, 6, 7, 8]),
            Err(Error::BadMagic { found: 0x0102_0304 })
        );
        assert_eq!(
            HeaderRepr::parse(&[9]),
            Err(Error::BadMagic { found: 0x0900_0000 })
        );
        let mut pad = H100_DATA;
        pad[15] = 1;
        assert_eq!(
            HeaderRepr::parse(&pad),
            Err(Error::BadField {
                field: "p_header100.pad",
                value: 1
            })
        );
        let mut unknown = H80_INITIAL_DATA;
        unknown[4..6].copy_from_slice(&0x25u16.to_be_bytes());
        assert_eq!(
            HeaderRepr::parse(&unknown),
            Err(Error::UnknownCommand { code: 0x25 })
        );
        for n in 0..16 {
            assert!(HeaderRepr::parse(&H100_DATA[..n]).is_err());
        }
        let big = HeaderRepr {
            kind: HeaderKind::H80,
            command: Command::Data,
            volume: 0,
            length: 70000,
        };
        assert_eq!(
            big.emit(&mut [0; 8]),
            Err(Error::PayloadTooLong {
                kind: HeaderKind::H80,
                len: 70000
            })
        );
        assert!(big.emit(&mut [0; 7]).is_err());
    }

    #[test]
    fn header_choice_follows_the_agreed_version() {
        assert_eq!(HeaderKind::for_send(None, 72), HeaderKind::H80);
        assert_eq!(HeaderKind::for_send(Some(96), 32768), HeaderKind::H80);
        assert_eq!(HeaderKind::for_send(Some(96), 32769), HeaderKind::H95);
        assert_eq!(HeaderKind::for_send(Some(94), 65536), HeaderKind::H80);
        assert_eq!(HeaderKind::for_send(Some(122), 0), HeaderKind::H100);
        assert!(HeaderKind::H100.accepted_at(100) && !HeaderKind::H100.accepted_at(99));
        assert!(HeaderKind::H95.accepted_at(99) && !HeaderKind::H95.accepted_at(100));
        assert!(HeaderKind::H80.accepted_at(96) && !HeaderKind::H80.accepted_at(100));
    }
}
