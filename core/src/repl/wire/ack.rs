//! Acknowledgements on the meta socket (replication.md §3.3): `p_block_ack` for every ack and
//! negative ack, and `p_ov_result` for P_OV_RESULT_ID.

use super::field::BlockId;

layout! {
    /// `p_block_ack`: P_RECV_ACK, P_WRITE_ACK, P_RS_WRITE_ACK, P_NEG_ACK, … (see [`super::Body`]).
    view BlockAck, repr BlockAckFields, wire "p_block_ack", len 24;
    /// First sector.
    sector, set_sector: u64 = 0;
    /// The block id of the packet acknowledged, verbatim.
    block_id, set_block_id: BlockId = 8;
    /// Bytes.
    blksize, set_blksize: u32 = 16;
    /// The acknowledger's sequence number.
    seq_num, set_seq_num: u32 = 20;
}

layout! {
    /// `p_ov_result`: an online-verify result with an explicit code (pv ≥ 122).
    view OvResult, repr OvResultFields, wire "p_ov_result", len 32;
    /// First sector.
    sector, set_sector: u64 = 0;
    /// The request's block id.
    block_id, set_block_id: BlockId = 8;
    /// Bytes.
    blksize, set_blksize: u32 = 16;
    /// Sequence number.
    seq_num, set_seq_num: u32 = 20;
    /// 0 skipped, 1 in sync, 2 out of sync.
    result, set_result: u32 = 24;
}

#[cfg(test)]
mod tests {
    use super::*;

    // drbdwire.block_ack(2048, 0xffff88801234abc0, 4096, 1)
    const ACK: [u8; 24] = [
        0, 0, 0, 0, 0, 0, 0x08, 0x00, 0xC0, 0xAB, 0x34, 0x12, 0x80, 0x88, 0xFF, 0xFF, 0, 0, 0x10,
        0, 0, 0, 0, 1,
    ];

    #[test]
    fn ack_bytes() {
        let a = BlockAckFields::parse(&ACK).unwrap();
        assert_eq!(a.block_id.to_host(), 0xffff_8880_1234_abc0);
        assert_eq!((a.sector, a.blksize, a.seq_num), (2048, 4096, 1));
        let mut out = [0u8; 24];
        a.emit(&mut out).unwrap();
        assert_eq!(out, ACK);
        let view = BlockAck::new_checked(&ACK[..]).unwrap();
        assert_eq!(view.seq_num(), 1);
        assert!(BlockAck::new_checked(&ACK[..23]).is_err());
    }
}
