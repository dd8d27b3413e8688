//! P_CONNECTION_FEATURES (replication.md §3.5, §4.2): the first packet on the data socket, exactly
//! 72 bytes, with the protocol range and feature flags both sides intersect.

layout! {
    /// `p_connection_features` (the 48 reserved bytes at 24 are zero).
    view ConnectionFeatures, repr ConnectionFeaturesFields, wire "p_connection_features", len 72;
    /// Lowest protocol version the sender speaks.
    protocol_min, set_protocol_min: u32 = 0;
    /// [`ff`] bits.
    feature_flags, set_feature_flags: u32 = 4;
    /// Highest protocol version (0 means equal to the minimum).
    protocol_max, set_protocol_max: u32 = 8;
    /// Sender's node id (DRBD 9; 0 from 8.4).
    sender_node_id, set_sender_node_id: u32 = 12;
    /// The node id the sender expects us to have.
    receiver_node_id, set_receiver_node_id: u32 = 16;
}

/// `DRBD_FF_*` feature bits.
pub mod ff {
    /// Discards.
    pub const TRIM: u32 = 1;
    /// Thin resync.
    pub const THIN_RESYNC: u32 = 2;
    /// Write-same; also "P_SIZES carries the queue limits".
    pub const WSAME: u32 = 4;
    /// Write-zeroes.
    pub const WZEROES: u32 = 8;
    /// Dagtag-ordered resync requests.
    pub const RESYNC_DAGTAG: u32 = 16;
    /// Two-phase-commit request layout V2.
    pub const TWOPC_V2: u32 = 32;
    /// Resync may skip the UUID handshake.
    pub const RS_SKIP_UUID: u32 = 64;
    /// Resync without replication.
    pub const RESYNC_WITHOUT_REPLICATION: u32 = 128;
    /// Bitmap block shift in P_SIZES.
    pub const BM_BLOCK_SHIFT: u32 = 256;
    /// Reconcile on reconnect.
    pub const RECONCILE_RECONNECT: u32 = 512;
}

impl ConnectionFeaturesFields {
    /// The highest version, reading 0 as "same as the minimum" as DRBD does.
    pub const fn effective_max(&self) -> u32 {
        if self.protocol_max == 0 {
            self.protocol_min
        } else {
            self.protocol_max
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn features_bytes() {
        // drbdwire.connection_features(86, 0x1F, 124, 0, 1)
        let mut bytes = [0u8; 72];
        bytes[3] = 86;
        bytes[7] = 0x1F;
        bytes[11] = 124;
        bytes[19] = 1;
        let f = ConnectionFeaturesFields::parse(&bytes).unwrap();
        assert_eq!(
            f,
            ConnectionFeaturesFields {
                protocol_min: 86,
                feature_flags: 0x1F,
                protocol_max: 124,
                sender_node_id: 0,
                receiver_node_id: 1
            }
        );
        let mut out = [0xFFu8; 72];
        f.emit(&mut out).unwrap();
        assert_eq!(out, bytes);
        assert!(ConnectionFeaturesFields::parse(&bytes[..71]).is_err());
        assert_eq!(
            ConnectionFeaturesFields {
                protocol_min: 90,
                ..f
            }
            .effective_max(),
            124
        );
        assert_eq!(
            ConnectionFeaturesFields {
                protocol_max: 0,
                ..f
            }
            .effective_max(),
            86
        );
    }
}
