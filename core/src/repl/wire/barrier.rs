//! Write epochs (replication.md §3.4): P_BARRIER closes one, P_BARRIER_ACK confirms it with the
//! write count, P_CONFIRM_STABLE is the partial form DRBD 9 uses.

use super::field::{BarrierNr, BlockId};

layout! {
    /// `p_barrier`.
    view Barrier, repr BarrierFields, wire "p_barrier", len 8;
    /// The epoch number, echoed verbatim in the ack.
    barrier, set_barrier: BarrierNr = 0;
}

layout! {
    /// `p_barrier_ack`.
    view BarrierAck, repr BarrierAckFields, wire "p_barrier_ack", len 8;
    /// The epoch number from P_BARRIER, verbatim.
    barrier, set_barrier: BarrierNr = 0;
    /// Writes in the epoch.
    set_size, set_set_size: u32 = 4;
}

layout! {
    /// `p_confirm_stable`.
    view ConfirmStable, repr ConfirmStableFields, wire "p_confirm_stable", len 24;
    /// Oldest write confirmed.
    oldest_block_id, set_oldest_block_id: BlockId = 0;
    /// Youngest write confirmed.
    youngest_block_id, set_youngest_block_id: BlockId = 8;
    /// Writes confirmed.
    set_size, set_set_size: u32 = 16;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn barrier_bytes() {
        // drbdwire.barrier_ack(7, 1)
        let bytes = [7, 0, 0, 0, 0, 0, 0, 1];
        let a = BarrierAckFields::parse(&bytes).unwrap();
        assert_eq!((a.barrier.to_host(), a.set_size), (7, 1));
        let mut out = [0u8; 8];
        BarrierFields {
            barrier: BarrierNr::from_host(7),
        }
        .emit(&mut out)
        .unwrap();
        assert_eq!(out, [7, 0, 0, 0, 0, 0, 0, 0]);
    }
}
