//! Read and resync requests (replication.md §3.2): `p_block_req`, the dagtag-carrying `p_rs_req`,
//! and the `p_block_desc` range descriptor of P_OUT_OF_SYNC / P_RS_DEALLOCATED. The checksum and
//! verify variants carry a digest as their tail (see [`super::Body`]).

use super::field::BlockId;

layout! {
    /// `p_block_req`: P_DATA_REQUEST, P_RS_DATA_REQUEST, P_OV_REQUEST, P_RS_THIN_REQ, and the
    /// digest-carrying P_OV_REPLY / P_CSUM_RS_REQUEST.
    view BlockReq, repr BlockReqFields, wire "p_block_req", len 24;
    /// First sector.
    sector, set_sector: u64 = 0;
    /// The requester's handle, echoed in the reply.
    block_id, set_block_id: BlockId = 8;
    /// Bytes requested.
    blksize, set_blksize: u32 = 16;
}

layout! {
    /// `p_rs_req`: the resync and verify requests used when FF_RESYNC_DAGTAG is agreed.
    view RsReq, repr RsReqFields, wire "p_rs_req", len 32;
    /// First sector.
    sector, set_sector: u64 = 0;
    /// The requester's handle.
    block_id, set_block_id: BlockId = 8;
    /// Bytes requested.
    blksize, set_blksize: u32 = 16;
    /// Node whose dagtag orders the request.
    dagtag_node_id, set_dagtag_node_id: u32 = 20;
    /// The dagtag.
    dagtag, set_dagtag: u64 = 24;
}

layout! {
    /// `p_block_desc`: a range (P_OUT_OF_SYNC, P_RS_DEALLOCATED).
    view BlockDesc, repr BlockDescFields, wire "p_block_desc", len 16;
    /// First sector.
    sector, set_sector: u64 = 0;
    /// Bytes.
    blksize, set_blksize: u32 = 8;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repl::wire::Error;

    // drbdwire.block_req(4096, 0x1122334455667788, 4096)
    const REQ: [u8; 24] = [
        0, 0, 0, 0, 0, 0, 0x10, 0, 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11, 0, 0, 0x10, 0,
        0, 0, 0, 0,
    ];

    #[test]
    fn block_req_bytes() {
        let r = BlockReqFields::parse(&REQ).unwrap();
        assert_eq!(
            r,
            BlockReqFields {
                sector: 4096,
                block_id: BlockId::from_host(0x1122_3344_5566_7788),
                blksize: 4096
            }
        );
        let mut out = [0xEE; 24];
        r.emit(&mut out).unwrap();
        assert_eq!(out, REQ);
        assert_eq!(
            BlockReqFields::parse(&[0; 25]),
            Err(Error::LengthMismatch {
                what: "p_block_req",
                expected: 24,
                got: 25
            })
        );
        let d = BlockDescFields {
            sector: 8,
            blksize: 65536,
        };
        let mut out = [0u8; 16];
        d.emit(&mut out).unwrap();
        assert_eq!(out, [0, 0, 0, 0, 0, 0, 0, 8, 0, 1, 0, 0, 0, 0, 0, 0]);
    }
}
