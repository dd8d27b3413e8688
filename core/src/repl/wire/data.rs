//! Replicated writes and their relatives (replication.md §3.1): `p_data` for P_DATA,
//! P_DATA_REPLY and P_RS_DATA_REPLY (sub-header, optional integrity digest, data), and `p_trim`
//! for P_TRIM / P_ZEROES (no data) and the obsolete P_WSAME (one block of data).

use super::error::Error;
use super::field::{at_least, emit_parts, BlockId};

/// `dp_flags` bits (replication.md §3.1).
pub mod dp {
    /// Obsolete, never set.
    pub const HARDBARRIER: u32 = 0x001;
    /// REQ_SYNC.
    pub const RW_SYNC: u32 = 0x002;
    /// The sender is syncing; the receiver may clear bitmap bits after writing.
    pub const MAY_SET_IN_SYNC: u32 = 0x004;
    /// Obsolete.
    pub const UNPLUG: u32 = 0x008;
    /// Force unit access.
    pub const FUA: u32 = 0x010;
    /// Preflush.
    pub const FLUSH: u32 = 0x020;
    /// Discard (P_TRIM / P_ZEROES).
    pub const DISCARD: u32 = 0x040;
    /// Protocol B for this write (pv ≥ 100).
    pub const SEND_RECEIVE_ACK: u32 = 0x080;
    /// Protocol C for this write, or any write while syncing (pv ≥ 100).
    pub const SEND_WRITE_ACK: u32 = 0x100;
    /// Write-same (obsolete; receivers reject it).
    pub const WSAME: u32 = 0x200;
    /// Write-zeroes.
    pub const ZEROES: u32 = 0x400;
}

layout! {
    /// The 24-byte sub-header of a data packet; the digest and data are its tail.
    view DataHeader, repr DataFields, wire "p_data", len 24;
    /// First sector (512-byte units).
    sector, set_sector: u64 = 0;
    /// The sender's request handle, echoed in the ack.
    block_id, set_block_id: BlockId = 8;
    /// Per-peer-device sequence number (0 in replies).
    seq_num, set_seq_num: u32 = 16;
    /// [`dp`] flags (0 in replies).
    dp_flags, set_dp_flags: u32 = 20;
}

/// A parsed P_DATA / P_DATA_REPLY / P_RS_DATA_REPLY payload.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DataRepr<'a> {
    /// The sub-header.
    pub fields: DataFields,
    /// The data-integrity digest (empty unless an integrity algorithm is agreed).
    pub digest: &'a [u8],
    /// The data.
    pub data: &'a [u8],
}

impl<'a> DataRepr<'a> {
    /// Parses a payload whose digest is `digest_len` bytes (the agreed integrity algorithm's size).
    pub fn parse(payload: &'a [u8], digest_len: usize) -> Result<Self, Error> {
        let view = DataHeader::new_checked(payload)?;
        at_least(
            "p_data digest",
            payload.len(),
            DataHeader::<&[u8]>::LEN.saturating_add(digest_len),
        )?;
        let fields = DataFields::from_view(&view);
        let (digest, data) = view.into_tail().split_at(digest_len);
        Ok(DataRepr {
            fields,
            digest,
            data,
        })
    }

    /// Bytes [`Self::emit`] writes.
    pub fn buffer_len(&self) -> usize {
        DataFields::LEN + self.digest.len() + self.data.len()
    }

    /// Writes sub-header, digest and data; returns the length.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, Error> {
        let mut head = [0u8; DataFields::LEN];
        self.fields.emit(&mut head)?;
        emit_parts(buf, &[&head, self.digest, self.data])
    }
}

layout! {
    /// `p_trim`: a discard or write-zeroes of `size` bytes; no data follows.
    view Trim, repr TrimFields, wire "p_trim", len 28;
    /// First sector.
    sector, set_sector: u64 = 0;
    /// Request handle.
    block_id, set_block_id: BlockId = 8;
    /// Sequence number.
    seq_num, set_seq_num: u32 = 16;
    /// [`dp`] flags (DISCARD, ZEROES).
    dp_flags, set_dp_flags: u32 = 20;
    /// Bytes affected.
    size, set_size: u32 = 24;
}

#[cfg(test)]
mod tests {
    use super::*;

    // drbdwire.data(2048, 0xffff88801234abc0, 1, 0x102, b"\xAA" * 4) (tail shortened here).
    const P_DATA: [u8; 28] = [
        0, 0, 0, 0, 0, 0, 0x08, 0x00, 0xC0, 0xAB, 0x34, 0x12, 0x80, 0x88, 0xFF, 0xFF, 0, 0, 0, 1,
        0, 0, 0x01, 0x02, 0xAA, 0xAA, 0xAA, 0xAA,
    ];

    #[test]
    fn data_bytes() {
        let r = DataRepr::parse(&P_DATA, 0).unwrap();
        assert_eq!(r.fields.sector, 2048);
        assert_eq!(r.fields.block_id, BlockId::from_host(0xffff_8880_1234_abc0));
        assert_eq!(r.fields.seq_num, 1);
        assert_eq!(r.fields.dp_flags, dp::RW_SYNC | dp::SEND_WRITE_ACK);
        assert_eq!(r.data, &[0xAA; 4]);
        let mut out = [0u8; 28];
        assert_eq!(r.emit(&mut out), Ok(28));
        assert_eq!(out, P_DATA);
        let with_digest = DataRepr::parse(&P_DATA, 3).unwrap();
        assert_eq!((with_digest.digest.len(), with_digest.data.len()), (3, 1));
        assert_eq!(
            DataRepr::parse(&P_DATA, 5),
            Err(Error::Truncated {
                what: "p_data digest",
                need: 29,
                have: 28
            })
        );
        assert!(r.emit(&mut [0u8; 27]).is_err());
    }
}
