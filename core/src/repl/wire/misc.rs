//! The small fixed packets (replication.md §3.13): delay probes, dagtags, peer acks, flush
//! requests and the enable-replication switch.

layout! {
    /// `p_delay_probe93` (receivers ignore it).
    view DelayProbe, repr DelayProbeFields, wire "p_delay_probe93", len 8;
    /// Probe sequence number.
    seq_num, set_seq_num: u32 = 0;
    /// Offset (µs).
    offset, set_offset: u32 = 4;
}

layout! {
    /// `p_dagtag`.
    view Dagtag, repr DagtagFields, wire "p_dagtag", len 8;
    /// The dagtag.
    dagtag, set_dagtag: u64 = 0;
}

layout! {
    /// `p_peer_ack`.
    view PeerAck, repr PeerAckFields, wire "p_peer_ack", len 16;
    /// Nodes that have the writes.
    mask, set_mask: u64 = 0;
    /// Dagtag up to which they have them.
    dagtag, set_dagtag: u64 = 8;
}

layout! {
    /// `p_peer_block_desc` (P_PEERS_IN_SYNC).
    view PeersInSync, repr PeersInSyncFields, wire "p_peer_block_desc", len 24;
    /// First sector.
    sector, set_sector: u64 = 0;
    /// Nodes in sync for the range.
    mask, set_mask: u64 = 8;
    /// Bytes.
    size, set_size: u32 = 16;
}

layout! {
    /// `p_peer_dagtag`.
    view PeerDagtag, repr PeerDagtagFields, wire "p_peer_dagtag", len 12;
    /// The dagtag.
    dagtag, set_dagtag: u64 = 0;
    /// The node it belongs to.
    node_id, set_node_id: u32 = 8;
}

layout! {
    /// `p_flush_requests`.
    view FlushRequests, repr FlushRequestsFields, wire "p_flush_requests", len 8;
    /// Flush sequence number.
    flush_sequence, set_flush_sequence: u64 = 0;
}

layout! {
    /// `p_flush_forward`.
    view FlushForward, repr FlushForwardFields, wire "p_flush_forward", len 12;
    /// Flush sequence number.
    flush_sequence, set_flush_sequence: u64 = 0;
    /// The node that asked.
    initiator_node_id, set_initiator_node_id: u32 = 8;
}

layout! {
    /// `p_flush_ack` (P_FLUSH_REQUESTS_ACK).
    view FlushAck, repr FlushAckFields, wire "p_flush_ack", len 12;
    /// Flush sequence number.
    flush_sequence, set_flush_sequence: u64 = 0;
    /// The primary that flushed.
    primary_node_id, set_primary_node_id: u32 = 8;
}

layout! {
    /// `p_enable_replication`.
    view EnableReplication, repr EnableReplicationFields, wire "p_enable_replication", len 4;
    /// Nonzero to enable.
    enable, set_enable: u8 = 0;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_packets() {
        let mut out = [0u8; 12];
        PeerDagtagFields {
            dagtag: 0x0102,
            node_id: 3,
        }
        .emit(&mut out)
        .unwrap();
        assert_eq!(out, [0, 0, 0, 0, 0, 0, 1, 2, 0, 0, 0, 3]);
        assert_eq!(
            EnableReplicationFields::parse(&[1, 0, 0, 0])
                .unwrap()
                .enable,
            1
        );
        assert!(EnableReplicationFields::parse(&[1, 0, 0]).is_err());
    }
}
