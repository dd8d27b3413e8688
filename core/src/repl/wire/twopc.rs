//! Two-phase commit (replication.md §3.14, DRBD 9): `p_twopc_request` for PREPARE / PREP_RSZ /
//! COMMIT / ABORT and `p_twopc_reply` for YES / NO / RETRY. The node-id words and the 16-byte
//! union are kept raw; accessors read them under the V1 or V2 (FF_2PC_V2) layout.

layout! {
    /// `p_twopc_request`.
    view TwopcRequest, repr TwopcRequestFields, wire "p_twopc_request", len 36;
    /// Transaction id.
    tid, set_tid: u32 = 0;
    /// V1: initiator node id. V2: flags (`TWOPC_HAS_FLAGS` always set).
    word4, set_word4: u32 = 4;
    /// V1: target node id (−1 = none). V2: u16 pad, s8 initiator, s8 target.
    word8, set_word8: u32 = 8;
    /// Nodes the request must reach.
    nodes_to_reach, set_nodes_to_reach: u64 = 12;
    /// First union word: 0 (state PREPARE), primary_nodes (COMMIT), user_size (PREP_RSZ).
    arg0, set_arg0: u64 = 20;
    /// Second union word: mask ‖ val, reachable_nodes, or dds_flags ‖ pad.
    arg1, set_arg1: u64 = 28;
}

/// V2 flag word marker.
pub const TWOPC_HAS_FLAGS: u32 = 0x8000_0000;
/// V2: the commit carries reachable_nodes instead of mask/val.
pub const TWOPC_HAS_REACHABLE: u32 = 0x4000_0000;
/// V2: the initiator cannot become primary.
pub const TWOPC_PRI_INCAPABLE: u32 = 0x2000_0000;

impl TwopcRequestFields {
    /// A state-change PREPARE in the V1 layout.
    pub const fn prepare_v1(
        tid: u32,
        initiator: i32,
        target: i32,
        nodes_to_reach: u64,
        mask: u32,
        val: u32,
    ) -> Self {
        TwopcRequestFields {
            tid,
            word4: initiator as u32,
            word8: target as u32,
            nodes_to_reach,
            arg0: 0,
            arg1: ((mask as u64) << 32) | val as u64,
        }
    }
    /// A state-change PREPARE in the V2 layout (FF_2PC_V2): `flags` gets `TWOPC_HAS_FLAGS`.
    pub const fn prepare_v2(
        tid: u32,
        flags: u32,
        initiator: i8,
        target: i8,
        nodes_to_reach: u64,
        mask: u32,
        val: u32,
    ) -> Self {
        TwopcRequestFields {
            tid,
            word4: flags | TWOPC_HAS_FLAGS,
            word8: ((initiator as u8 as u32) << 8) | target as u8 as u32,
            nodes_to_reach,
            arg0: 0,
            arg1: ((mask as u64) << 32) | val as u64,
        }
    }
    /// PREP_RSZ: the user-requested size (sectors).
    pub const fn user_size(&self) -> u64 {
        self.arg0
    }
    /// PREP_RSZ: the `DDSF_*` flags.
    pub const fn dds_flags(&self) -> u16 {
        (self.arg1 >> 48) as u16
    }
    /// COMMIT: the primary nodes.
    pub const fn primary_nodes(&self) -> u64 {
        self.arg0
    }
    /// Initiator node id, under the layout `v2` says.
    pub const fn initiator(&self, v2: bool) -> i32 {
        if v2 {
            (self.word8 >> 8) as u8 as i8 as i32
        } else {
            self.word4 as i32
        }
    }
    /// Target node id (−1 = none), under the layout `v2` says.
    pub const fn target(&self, v2: bool) -> i32 {
        if v2 {
            self.word8 as u8 as i8 as i32
        } else {
            self.word8 as i32
        }
    }
    /// The state mask of a state-change PREPARE (or COMMIT without reachable nodes).
    pub const fn mask(&self) -> u32 {
        (self.arg1 >> 32) as u32
    }
    /// The state value of a state-change PREPARE.
    pub const fn val(&self) -> u32 {
        self.arg1 as u32
    }
}

layout! {
    /// `p_twopc_reply`.
    view TwopcReply, repr TwopcReplyFields, wire "p_twopc_reply", len 32;
    /// Transaction id.
    tid, set_tid: u32 = 0;
    /// Initiator node id.
    initiator_node_id, set_initiator_node_id: i32 = 4;
    /// Reachable nodes.
    reachable_nodes, set_reachable_nodes: u64 = 8;
    /// Primary nodes (resize: diskful primary nodes).
    primary_nodes, set_primary_nodes: u64 = 16;
    /// Weak nodes (resize: max possible size).
    weak_nodes, set_weak_nodes: u64 = 24;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twopc_layouts() {
        // drbdwire.twopc_request_v1(0x1234, 0, 1, 0b11, 0, (0x1F0 << 32) | 0xA0)
        let r = TwopcRequestFields::prepare_v1(0x1234, 0, 1, 3, 0x1F0, 0xA0);
        let mut out = [0u8; 36];
        r.emit(&mut out).unwrap();
        assert_eq!(&out[..12], &[0, 0, 0x12, 0x34, 0, 0, 0, 0, 0, 0, 0, 1]);
        assert_eq!(&out[28..], &[0, 0, 0x01, 0xF0, 0, 0, 0, 0xA0]);
        let back = TwopcRequestFields::parse(&out).unwrap();
        assert_eq!(
            (
                back.initiator(false),
                back.target(false),
                back.mask(),
                back.val()
            ),
            (0, 1, 0x1F0, 0xA0)
        );
        let v2 = TwopcRequestFields {
            word4: TWOPC_HAS_FLAGS,
            word8: 0x0000_02FF,
            ..back
        };
        assert_eq!((v2.initiator(true), v2.target(true)), (2, -1));
        // drbdwire.twopc_request_v2(9, 0x80000000, 2, -1, 3, 0, (0x1F0 << 32) | 0xA0)
        let built = TwopcRequestFields::prepare_v2(9, 0, 2, -1, 3, 0x1F0, 0xA0);
        let mut out = [0u8; 36];
        built.emit(&mut out).unwrap();
        assert_eq!(&out[..12], &[0, 0, 0, 9, 0x80, 0, 0, 0, 0, 0, 0x02, 0xFF]);
        assert_eq!(
            (
                built.initiator(true),
                built.target(true),
                built.mask(),
                built.val()
            ),
            (2, -1, 0x1F0, 0xA0)
        );
        // A resize PREPARE: user_size, then dds_flags in the top 16 bits of the second word.
        let rsz = TwopcRequestFields {
            arg0: 1 << 21,
            arg1: 2 << 48,
            ..built
        };
        assert_eq!(
            (rsz.user_size(), rsz.dds_flags(), rsz.primary_nodes()),
            (1 << 21, 2, 1 << 21)
        );
    }
}
