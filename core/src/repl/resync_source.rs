//! Resync, SyncSource side (replication.md §6.4): answer the target's P_RS_DATA_REQUEST with
//! P_RS_DATA_REPLY from the local disk, and clear bits when its P_RS_WRITE_ACK arrives.
//!
//! [`SyncSource::handle_request`] hands back a [`ReadRequest`]; the shell reads the blocks —
//! after any earlier local application write to them has finished
//! ([`super::write::Primary::local_write_pending`]), so the reply is never older than a write
//! already sent to the peer — and calls [`SyncSource::reply`] (or
//! [`SyncSource::read_failed`]). Only ranges we replied to can be cleared by an ack, so a
//! confused peer cannot mark arbitrary blocks in sync.

use super::bitmap::DirtyBitmap;
use super::data_error::DataError;
use super::throttle::{progress, Progress, Stopwatch};
use super::wire::ack::BlockAckFields;
use super::wire::data::{DataFields, DataRepr};
use super::wire::{Agreed, BlockId, Body, Command, Frame};
use super::write::{check_io, max_bio_size};

/// Names a read until [`SyncSource::reply`] / [`SyncSource::read_failed`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadToken {
    index: u32,
    generation: u32,
}

/// A local read the shell performs for the target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadRequest {
    /// Report the data with this.
    pub token: ReadToken,
    /// First sector.
    pub sector: u64,
    /// Bytes.
    pub size: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    Reading,
    AwaitingAck,
}

#[derive(Clone, Copy, Debug)]
struct Serving {
    generation: u32,
    block_id: BlockId,
    sector: u64,
    size: u32,
    stage: Stage,
}

/// The SyncSource side, serving up to `R` requests at once.
#[derive(Clone, Debug)]
pub struct SyncSource<const R: usize> {
    agreed: Agreed,
    volume: u16,
    slots: [Option<Serving>; R],
    generation: u32,
    ack_seq: u32,
    clock: Stopwatch,
    done_bits: u64,
    failed_bits: u64,
    sent_bytes: u64,
}

impl<const R: usize> SyncSource<R> {
    /// An idle source for `volume`.
    pub fn new(agreed: Agreed, volume: u16) -> Self {
        SyncSource {
            agreed,
            volume,
            slots: [None; R],
            generation: 0,
            ack_seq: 0,
            clock: Stopwatch::default(),
            done_bits: 0,
            failed_bits: 0,
            sent_bytes: 0,
        }
    }

    /// Starts serving a resync (after the bitmap exchange).
    pub fn start(&mut self, now: u64) {
        *self = Self::new(self.agreed, self.volume);
        self.clock.start(now);
    }

    /// The connection is gone: outstanding requests are dropped (their bits stay set).
    pub fn stop(&mut self, now: u64) {
        self.slots = [None; R];
        self.clock.stop(now);
    }

    /// True if another request can be taken; if not, stop reading the data socket for now.
    pub fn can_accept(&self) -> bool {
        self.slots.iter().any(Option::is_none)
    }

    /// Requests being read or awaiting their ack.
    pub fn in_flight(&self) -> usize {
        self.slots.iter().flatten().count()
    }

    /// Data bytes sent in replies since [`Self::start`].
    pub fn sent_bytes(&self) -> u64 {
        self.sent_bytes
    }

    /// Progress for a status display (the source's own bitmap).
    pub fn progress(&self, now: u64, bitmap: &DirtyBitmap<'_>) -> Progress {
        progress(
            self.done_bits,
            bitmap.count(),
            self.failed_bits,
            self.clock.elapsed(now),
            false,
        )
    }

    /// A P_RS_DATA_REQUEST: a local read to perform. Nothing changes on an error.
    pub fn handle_request(
        &mut self,
        frame: &Frame<'_>,
        bitmap: &DirtyBitmap<'_>,
    ) -> Result<ReadRequest, DataError> {
        let (Command::RsDataRequest, Body::BlockReq(req)) = (frame.command, frame.body) else {
            return Err(DataError::Unexpected {
                command: frame.command,
            });
        };
        check_io(
            req.sector,
            u64::from(req.blksize),
            max_bio_size(&self.agreed),
            bitmap.capacity_sectors(),
        )?;
        let Some(index) = self.slots.iter().position(Option::is_none) else {
            return Err(DataError::Full {
                what: "resync requests being served",
                capacity: R,
            });
        };
        self.generation = self.generation.wrapping_add(1);
        if let Some(slot) = self.slots.get_mut(index) {
            *slot = Some(Serving {
                generation: self.generation,
                block_id: req.block_id,
                sector: req.sector,
                size: req.blksize,
                stage: Stage::Reading,
            });
        }
        Ok(ReadRequest {
            token: ReadToken {
                index: index as u32,
                generation: self.generation,
            },
            sector: req.sector,
            size: req.blksize,
        })
    }

    fn reading(&self, token: ReadToken) -> Result<Serving, DataError> {
        self.slots
            .get(token.index as usize)
            .copied()
            .flatten()
            .filter(|s| s.generation == token.generation && s.stage == Stage::Reading)
            .ok_or(DataError::StaleToken)
    }

    /// The read for `token` returned `data` (exactly the requested size): emits P_RS_DATA_REPLY
    /// into `out` (data socket); returns its length.
    pub fn reply(
        &mut self,
        token: ReadToken,
        data: &[u8],
        out: &mut [u8],
    ) -> Result<usize, DataError> {
        let s = self.reading(token)?;
        if data.len() != s.size as usize {
            return Err(DataError::BadSize {
                size: data.len() as u64,
                max: s.size,
            });
        }
        // pv ≥ 122 echoes the request's block id; before, resync data carries ID_SYNCER (§3.1).
        let block_id = if self.agreed.pv.is_some_and(|pv| pv >= 122) {
            s.block_id
        } else {
            BlockId::SYNCER
        };
        let body = Body::Data(DataRepr {
            fields: DataFields {
                sector: s.sector,
                block_id,
                seq_num: 0,
                dp_flags: 0,
            },
            digest: &[],
            data,
        });
        let n = Frame::new(Command::RsDataReply, self.volume, body)?.emit(&self.agreed, out)?;
        if let Some(Some(slot)) = self.slots.get_mut(token.index as usize) {
            slot.stage = Stage::AwaitingAck;
            slot.block_id = block_id;
        }
        self.sent_bytes += data.len() as u64;
        Ok(n)
    }

    /// The read for `token` failed: emits P_NEG_RS_DREPLY into `meta_out`; the blocks stay
    /// dirty.
    pub fn read_failed(
        &mut self,
        token: ReadToken,
        bitmap: &DirtyBitmap<'_>,
        meta_out: &mut [u8],
    ) -> Result<usize, DataError> {
        let s = self.reading(token)?;
        let body = Body::BlockAck(BlockAckFields {
            sector: s.sector,
            block_id: s.block_id,
            blksize: s.size,
            seq_num: self.ack_seq.wrapping_add(1),
        });
        let n =
            Frame::new(Command::NegRsDReply, self.volume, body)?.emit(&self.agreed, meta_out)?;
        self.ack_seq = self.ack_seq.wrapping_add(1);
        let first = s.sector / super::bitmap::SECTORS_PER_BIT;
        let end = (s.sector + u64::from(s.size) / 512).div_ceil(super::bitmap::SECTORS_PER_BIT);
        self.failed_bits += bitmap.count_range(first, end);
        if let Some(slot) = self.slots.get_mut(token.index as usize) {
            *slot = None;
        }
        Ok(n)
    }

    /// The target's P_RS_WRITE_ACK (clears the range) or P_RS_NEG_ACK / P_NEG_ACK with
    /// ID_SYNCER (the target could not write it; it stays dirty).
    pub fn handle_ack(
        &mut self,
        command: Command,
        ack: &BlockAckFields,
        bitmap: &mut DirtyBitmap<'_>,
    ) -> Result<(), DataError> {
        let ok = match command {
            Command::RsWriteAck => true,
            Command::RsNegAck | Command::NegAck => false,
            _ => return Err(DataError::Unexpected { command }),
        };
        let index = self
            .slots
            .iter()
            .position(|s| {
                s.is_some_and(|s| {
                    s.stage == Stage::AwaitingAck
                        && s.sector == ack.sector
                        && s.size == ack.blksize
                        && s.block_id == ack.block_id
                })
            })
            .ok_or(DataError::UnknownRequest {
                command,
                sector: ack.sector,
                block_id: ack.block_id.to_host(),
            })?;
        let size = u64::from(ack.blksize);
        if ok {
            self.done_bits += bitmap.clear_sectors(ack.sector, size)?;
        } else {
            let first = ack.sector / super::bitmap::SECTORS_PER_BIT;
            let end = (ack.sector + size / 512).div_ceil(super::bitmap::SECTORS_PER_BIT);
            self.failed_bits += bitmap.count_range(first, end);
        }
        if let Some(slot) = self.slots.get_mut(index) {
            *slot = None;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repl::wire::request::BlockReqFields;
    use std::vec;

    fn request(sector: u64, id: u64, size: u32) -> Frame<'static> {
        Frame::new(
            Command::RsDataRequest,
            0,
            Body::BlockReq(BlockReqFields {
                sector,
                block_id: BlockId::from_host(id),
                blksize: size,
            }),
        )
        .unwrap()
    }

    #[test]
    fn serve_and_clear_on_ack() {
        for pv in [122, 110] {
            let agreed = Agreed::new(pv, 0);
            let mut src = SyncSource::<2>::new(agreed, 0);
            src.start(0);
            let mut store = [0u8; 8];
            let mut bm = DirtyBitmap::new(&mut store, 64 * 8).unwrap();
            bm.set_all();
            let r = src.handle_request(&request(16, 9, 8192), &bm).unwrap();
            assert_eq!((r.sector, r.size), (16, 8192));
            let mut out = vec![0u8; 9000];
            assert!(matches!(
                src.reply(r.token, &[0; 512], &mut out),
                Err(DataError::BadSize { .. })
            ));
            let n = src.reply(r.token, &[3; 8192], &mut out).unwrap();
            let (f, _) = Frame::parse(&out[..n], &agreed).unwrap();
            assert_eq!(f.command, Command::RsDataReply);
            let Body::Data(d) = f.body else { panic!() };
            let echoed = if pv >= 122 {
                BlockId::from_host(9)
            } else {
                BlockId::SYNCER
            };
            assert_eq!((d.fields.sector, d.fields.block_id), (16, echoed));
            assert_eq!(
                src.reply(r.token, &[3; 8192], &mut out),
                Err(DataError::StaleToken)
            );
            let mut ack = BlockAckFields {
                sector: 16,
                block_id: echoed,
                blksize: 4096,
                seq_num: 1,
            };
            assert!(src.handle_ack(Command::RsWriteAck, &ack, &mut bm).is_err());
            ack.blksize = 8192;
            src.handle_ack(Command::RsWriteAck, &ack, &mut bm).unwrap();
            assert_eq!(bm.count(), 62);
            assert!(!bm.test(2) && !bm.test(3));
            assert!(src.handle_ack(Command::RsWriteAck, &ack, &mut bm).is_err());
            assert_eq!(src.progress(1000, &bm).done_bytes, 8192);
            assert_eq!(src.sent_bytes(), 8192);
        }
    }

    #[test]
    fn failures_and_limits() {
        let agreed = Agreed::new(122, 0);
        let mut src = SyncSource::<1>::new(agreed, 0);
        let mut store = [0u8; 8];
        let mut bm = DirtyBitmap::new(&mut store, 64 * 8).unwrap();
        bm.set_all();
        assert!(matches!(
            src.handle_request(&request(510, 1, 4096), &bm),
            Err(DataError::OutOfRange { .. })
        ));
        let r = src.handle_request(&request(0, 1, 4096), &bm).unwrap();
        assert!(!src.can_accept());
        assert!(matches!(
            src.handle_request(&request(8, 2, 4096), &bm),
            Err(DataError::Full { capacity: 1, .. })
        ));
        let mut meta = [0u8; 64];
        let n = src.read_failed(r.token, &bm, &mut meta).unwrap();
        let (f, _) = Frame::parse(&meta[..n], &agreed).unwrap();
        assert_eq!(f.command, Command::NegRsDReply);
        assert_eq!(bm.count(), 64);
        assert_eq!(src.progress(0, &bm).failed_bytes, 4096);
        let ping = Frame::new(Command::Ping, 0, Body::Empty).unwrap();
        assert!(src.handle_request(&ping, &bm).is_err());
    }
}
