//! P_PROTOCOL / P_PROTOCOL_UPDATE (replication.md §3.6, §4.4): wire protocol, split-brain
//! policies, flags, and the data-integrity algorithm name.

use super::error::Error;
use super::field::{cstr, emit_parts};

/// Longest integrity-algorithm tail, NUL included (`SHARED_SECRET_MAX`).
pub const MAX_ALG_LEN: usize = 64;

layout! {
    /// `p_protocol`; the integrity algorithm name is its tail.
    view Protocol, repr ProtocolFields, wire "p_protocol", len 24;
    /// 1 = A, 2 = B, 3 = C.
    protocol, set_protocol: u32 = 0;
    /// after-sb-0pri policy.
    after_sb_0p, set_after_sb_0p: u32 = 4;
    /// after-sb-1pri policy.
    after_sb_1p, set_after_sb_1p: u32 = 8;
    /// after-sb-2pri policy.
    after_sb_2p, set_after_sb_2p: u32 = 12;
    /// 1 CF_DISCARD_MY_DATA, 2 CF_DRY_RUN.
    conn_flags, set_conn_flags: u32 = 16;
    /// allow-two-primaries.
    two_primaries, set_two_primaries: u32 = 20;
}

/// A parsed P_PROTOCOL payload.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProtocolRepr<'a> {
    /// The fixed part.
    pub fields: ProtocolFields,
    /// The integrity algorithm (empty = off), without its NUL.
    pub integrity_alg: &'a [u8],
}

impl<'a> ProtocolRepr<'a> {
    /// Parses a payload: 24 bytes, then (pv ≥ 87) a NUL-terminated name of at most 64 bytes.
    /// Bytes after the NUL are ignored, as upstream reads the whole tail into a fixed buffer.
    pub fn parse(payload: &'a [u8]) -> Result<Self, Error> {
        let view = Protocol::new_checked(payload)?;
        let fields = ProtocolFields::from_view(&view);
        let tail = view.into_tail();
        if tail.len() > MAX_ALG_LEN {
            return Err(Error::BadString {
                field: "p_protocol.integrity_alg",
            });
        }
        let integrity_alg = if tail.is_empty() {
            tail
        } else {
            cstr("p_protocol.integrity_alg", tail)?
        };
        Ok(ProtocolRepr {
            fields,
            integrity_alg,
        })
    }

    /// Bytes [`Self::emit`] writes.
    pub fn buffer_len(&self) -> usize {
        ProtocolFields::LEN + self.integrity_alg.len() + 1
    }

    /// Writes the fixed part, the name and its NUL.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, Error> {
        if self.integrity_alg.len() >= MAX_ALG_LEN || self.integrity_alg.contains(&0) {
            return Err(Error::BadString {
                field: "p_protocol.integrity_alg",
            });
        }
        let mut head = [0u8; ProtocolFields::LEN];
        self.fields.emit(&mut head)?;
        emit_parts(buf, &[&head, self.integrity_alg, &[0]])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_bytes() {
        // drbdwire.protocol(3, 3, 8, 0, 0, 0, "sha1")
        let mut bytes = [0u8; 29];
        bytes[3] = 3;
        bytes[7] = 3;
        bytes[11] = 8;
        bytes[24..28].copy_from_slice(b"sha1");
        let p = ProtocolRepr::parse(&bytes).unwrap();
        assert_eq!(p.fields.protocol, 3);
        assert_eq!(p.fields.after_sb_1p, 8);
        assert_eq!(p.integrity_alg, b"sha1");
        let mut out = [0u8; 29];
        assert_eq!(p.emit(&mut out), Ok(29));
        assert_eq!(out, bytes);
        assert_eq!(
            ProtocolRepr::parse(&bytes[..24]).unwrap().integrity_alg,
            b""
        );
        assert_eq!(
            ProtocolRepr::parse(&bytes[..28]),
            Err(Error::BadString {
                field: "p_protocol.integrity_alg"
            })
        );
    }
}
