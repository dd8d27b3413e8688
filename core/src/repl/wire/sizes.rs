//! P_SIZES (replication.md §3.8): capacities and the maximum bio size, followed by the queue
//! limits when FF_WSAME was agreed (32 or 56 bytes).

use super::error::Error;

layout! {
    /// The first 32 bytes of `p_sizes`.
    view Sizes, repr SizesFields, wire "p_sizes", len 32;
    /// Backing device capacity usable for data (sectors).
    d_size, set_d_size: u64 = 0;
    /// User-requested size (sectors, 0 = maximum).
    u_size, set_u_size: u64 = 8;
    /// Currently exported capacity (sectors).
    c_size, set_c_size: u64 = 16;
    /// Largest request (bytes).
    max_bio_size, set_max_bio_size: u32 = 24;
    /// Always 0.
    queue_order_type, set_queue_order_type: u16 = 28;
    /// `DDSF_*` flags.
    dds_flags, set_dds_flags: u16 = 30;
}

layout! {
    /// `o_qlim`, the 24-byte queue-limits tail of `p_sizes`.
    view QueueLimits, repr QueueLimitsFields, wire "o_qlim", len 24;
    /// Physical block size.
    physical_block_size, set_physical_block_size: u32 = 0;
    /// Logical block size.
    logical_block_size, set_logical_block_size: u32 = 4;
    /// Alignment offset.
    alignment_offset, set_alignment_offset: u32 = 8;
    /// Minimum I/O size.
    io_min, set_io_min: u32 = 12;
    /// Optimal I/O size.
    io_opt, set_io_opt: u32 = 16;
    /// Discards supported.
    discard_enabled, set_discard_enabled: u8 = 20;
    /// Discards read back zeroes.
    discard_zeroes_data, set_discard_zeroes_data: u8 = 21;
    /// Always 0 now.
    write_same_capable, set_write_same_capable: u8 = 22;
    /// Bitmap granularity: log2(bytes per bit) − 12 (with FF_BM_BLOCK_SHIFT).
    bm_block_shift_minus_12, set_bm_block_shift_minus_12: u8 = 23;
}

/// A parsed P_SIZES payload.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SizesRepr {
    /// The first 32 bytes.
    pub fields: SizesFields,
    /// The queue limits (present iff FF_WSAME was agreed).
    pub qlim: Option<QueueLimitsFields>,
}

impl SizesRepr {
    /// Parses a 32-byte (no limits) or 56-byte payload.
    pub fn parse(payload: &[u8]) -> Result<Self, Error> {
        let full = SizesFields::LEN + QueueLimitsFields::LEN;
        let fields = SizesFields::from_view(&Sizes::new_checked(payload)?);
        let qlim = match payload.len() {
            SizesFields::LEN => None,
            n if n == full => Some(QueueLimitsFields::from_view(&QueueLimits::new_unchecked(
                payload.get(SizesFields::LEN..).unwrap_or(&[]),
            ))),
            got => {
                return Err(Error::LengthMismatch {
                    what: "p_sizes",
                    expected: full,
                    got,
                })
            }
        };
        Ok(SizesRepr { fields, qlim })
    }

    /// Bytes [`Self::emit`] writes.
    pub fn buffer_len(&self) -> usize {
        SizesFields::LEN
            + if self.qlim.is_some() {
                QueueLimitsFields::LEN
            } else {
                0
            }
    }

    /// Writes the payload.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, Error> {
        let len = self.buffer_len();
        super::error::room(buf, len)?;
        self.fields.emit(buf)?;
        if let (Some(q), Some(rest)) = (self.qlim, buf.get_mut(SizesFields::LEN..)) {
            q.emit(rest)?;
        }
        Ok(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_with_and_without_limits() {
        let s = SizesRepr {
            fields: SizesFields {
                d_size: 2_097_152,
                u_size: 0,
                c_size: 2_097_152,
                max_bio_size: 1 << 20,
                queue_order_type: 0,
                dds_flags: 0,
            },
            qlim: Some(QueueLimitsFields {
                physical_block_size: 4096,
                logical_block_size: 512,
                io_min: 4096,
                discard_enabled: 1,
                ..Default::default()
            }),
        };
        let mut out = [0u8; 56];
        assert_eq!(s.emit(&mut out), Ok(56));
        assert_eq!(&out[..8], &2_097_152u64.to_be_bytes());
        assert_eq!(&out[24..28], &[0, 0x10, 0, 0]);
        assert_eq!(&out[32..36], &[0, 0, 0x10, 0]);
        assert_eq!(out[52], 1);
        assert_eq!(SizesRepr::parse(&out), Ok(s));
        let short = SizesRepr::parse(&out[..32]).unwrap();
        assert_eq!(short, SizesRepr { qlim: None, ..s });
        assert_eq!(
            SizesRepr::parse(&out[..40]),
            Err(Error::LengthMismatch {
                what: "p_sizes",
                expected: 56,
                got: 40
            })
        );
    }
}
