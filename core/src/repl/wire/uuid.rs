//! Data-generation UUIDs (replication.md §3.7): P_UUIDS (8.4 style), P_UUIDS110 (bitmap UUIDs
//! per peer plus history, length given by the payload), P_CURRENT_UUID and P_SYNC_UUID.

use super::error::Error;
use super::field::{at_least, Field};

/// `UUID_FLAG_*` bits.
pub mod flag {
    /// discard-my-data.
    pub const DISCARD_MY_DATA: u64 = 1;
    /// The sender was a primary that crashed.
    pub const CRASHED_PRIMARY: u64 = 2;
    /// The sender's disk is inconsistent.
    pub const INCONSISTENT: u64 = 4;
    /// Skip the initial sync.
    pub const SKIP_INITIAL_SYNC: u64 = 8;
    /// A new data generation started.
    pub const NEW_DATAGEN: u64 = 16;
    /// The sender is stable.
    pub const STABLE: u64 = 32;
    /// The sender became stable.
    pub const GOT_STABLE: u64 = 64;
    /// A resync is in progress.
    pub const RESYNC: u64 = 128;
    /// Reconnect.
    pub const RECONNECT: u64 = 256;
    /// Diskless primary.
    pub const DISKLESS_PRIMARY: u64 = 512;
    /// The primary lost quorum.
    pub const PRIMARY_LOST_QUORUM: u64 = 1024;
    /// The bits 8.4 understands.
    pub const MASK_84: u64 = 0x0F;
}

layout! {
    /// `p_uuids` (P_UUIDS, pv < 110).
    view Uuids, repr UuidsFields, wire "p_uuids", len 48;
    /// Current UUID.
    current, set_current: u64 = 0;
    /// Bitmap UUID.
    bitmap, set_bitmap: u64 = 8;
    /// Newest history UUID.
    history0, set_history0: u64 = 16;
    /// Older history UUID.
    history1, set_history1: u64 = 24;
    /// Set bits in the sender's bitmap.
    dirty_bits, set_dirty_bits: u64 = 32;
    /// [`flag`] bits.
    uuid_flags, set_uuid_flags: u64 = 40;
}

layout! {
    /// The fixed part of `p_uuids110`; bitmap and history UUIDs follow as big-endian u64s.
    view Uuids110, repr Uuids110Fields, wire "p_uuids110", len 40;
    /// Current UUID.
    current, set_current: u64 = 0;
    /// Set bits in the sender's bitmap for the receiver.
    dirty_bits, set_dirty_bits: u64 = 8;
    /// [`flag`] bits.
    uuid_flags, set_uuid_flags: u64 = 16;
    /// Weak or authoritative nodes, depending on the flags.
    node_mask, set_node_mask: u64 = 24;
    /// Which nodes have a bitmap UUID in the list (bit n = node n).
    bitmap_uuids_mask, set_bitmap_uuids_mask: u64 = 32;
}

/// A list of big-endian u64s: borrowed wire bytes (parsed) or values (to send).
#[derive(Clone, Copy, Debug)]
pub enum U64List<'a> {
    /// Wire bytes, a multiple of 8 long.
    Wire(&'a [u8]),
    /// Values.
    Values(&'a [u64]),
}

impl Default for U64List<'_> {
    fn default() -> Self {
        U64List::Values(&[])
    }
}

impl<'a> U64List<'a> {
    /// Number of values.
    pub fn len(&self) -> usize {
        match self {
            U64List::Wire(b) => b.len() / 8,
            U64List::Values(v) => v.len(),
        }
    }
    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Value `i`.
    pub fn get(&self, i: usize) -> Option<u64> {
        match self {
            U64List::Wire(b) => (i < b.len() / 8).then(|| u64::read(b, i * 8)),
            U64List::Values(v) => v.get(i).copied(),
        }
    }
    /// The values in order.
    pub fn iter(&self) -> impl Iterator<Item = u64> + 'a {
        let me = *self;
        (0..me.len()).filter_map(move |i| me.get(i))
    }
}

impl PartialEq for U64List<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}
impl Eq for U64List<'_> {}

/// A parsed P_UUIDS110 payload.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Uuids110Repr<'a> {
    /// The fixed part.
    pub fields: Uuids110Fields,
    /// popcount(bitmap_uuids_mask) bitmap UUIDs in node-id order, then history UUIDs.
    pub other_uuids: U64List<'a>,
}

impl<'a> Uuids110Repr<'a> {
    /// Parses a payload: the mask may name nodes 0–31 only, the list must be whole u64s and hold
    /// at least the bitmap UUIDs the mask announces.
    pub fn parse(payload: &'a [u8]) -> Result<Self, Error> {
        let view = Uuids110::new_checked(payload)?;
        let fields = Uuids110Fields::from_view(&view);
        if fields.bitmap_uuids_mask >> 32 != 0 {
            return Err(Error::BadField {
                field: "p_uuids110.bitmap_uuids_mask",
                value: fields.bitmap_uuids_mask,
            });
        }
        let tail = view.into_tail();
        let bitmaps = fields.bitmap_uuids_mask.count_ones() as usize;
        at_least("p_uuids110.other_uuids", tail.len(), bitmaps * 8)?;
        if !tail.len().is_multiple_of(8) {
            return Err(Error::LengthMismatch {
                what: "p_uuids110.other_uuids",
                expected: tail.len() / 8 * 8 + 8,
                got: tail.len(),
            });
        }
        Ok(Uuids110Repr {
            fields,
            other_uuids: U64List::Wire(tail),
        })
    }

    /// The bitmap UUID for `node`, if the mask announces one.
    pub fn bitmap_uuid(&self, node: u32) -> Option<u64> {
        let mask = self.fields.bitmap_uuids_mask;
        if node >= 64 || mask & (1 << node) == 0 {
            return None;
        }
        let below = (mask & ((1u64 << node) - 1)).count_ones() as usize;
        self.other_uuids.get(below)
    }

    /// The history UUIDs (everything after the bitmap UUIDs).
    pub fn history(&self) -> impl Iterator<Item = u64> + 'a {
        self.other_uuids
            .iter()
            .skip(self.fields.bitmap_uuids_mask.count_ones() as usize)
    }

    /// Bytes [`Self::emit`] writes.
    pub fn buffer_len(&self) -> usize {
        Uuids110Fields::LEN + 8 * self.other_uuids.len()
    }

    /// Writes the fixed part and the list.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, Error> {
        let len = self.buffer_len();
        super::error::room(buf, len)?;
        self.fields.emit(buf)?;
        for (i, v) in self.other_uuids.iter().enumerate() {
            v.write(buf, Uuids110Fields::LEN + 8 * i);
        }
        Ok(len)
    }
}

layout! {
    /// `p_current_uuid` (P_CURRENT_UUID, from diskless nodes).
    view CurrentUuid, repr CurrentUuidFields, wire "p_current_uuid", len 16;
    /// Current UUID.
    uuid, set_uuid: u64 = 0;
    /// Weak nodes.
    weak_nodes, set_weak_nodes: u64 = 8;
}

layout! {
    /// `p_uuid` (P_SYNC_UUID, pv < 110).
    view SyncUuid, repr SyncUuidFields, wire "p_uuid", len 8;
    /// The resync-start UUID.
    uuid, set_uuid: u64 = 0;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids110_list() {
        // drbdwire.uuids110(0xAA, 3, 0x20, 0, {1: 0xB1, 3: 0xB3}, [0xC0, 0xC1])
        let mut bytes = [0u8; 72];
        bytes[7] = 0xAA;
        bytes[15] = 3;
        bytes[23] = 0x20;
        bytes[39] = 0b1010;
        bytes[47] = 0xB1;
        bytes[55] = 0xB3;
        bytes[63] = 0xC0;
        bytes[71] = 0xC1;
        let u = Uuids110Repr::parse(&bytes).unwrap();
        assert_eq!(u.fields.current, 0xAA);
        assert_eq!(
            (u.bitmap_uuid(1), u.bitmap_uuid(3), u.bitmap_uuid(2)),
            (Some(0xB1), Some(0xB3), None)
        );
        assert!(u.history().eq([0xC0, 0xC1]));
        let values = [0xB1, 0xB3, 0xC0, 0xC1];
        let built = Uuids110Repr {
            fields: u.fields,
            other_uuids: U64List::Values(&values),
        };
        assert_eq!(built, u);
        let mut out = [0u8; 72];
        assert_eq!(built.emit(&mut out), Ok(72));
        assert_eq!(out, bytes);
        assert!(Uuids110Repr::parse(&bytes[..47]).is_err());
        assert!(Uuids110Repr::parse(&bytes[..60]).is_err());
        let mut wide = bytes;
        wide[35] = 1;
        assert!(matches!(
            Uuids110Repr::parse(&wide),
            Err(Error::BadField { .. })
        ));
    }
}
