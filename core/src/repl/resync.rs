//! Resync, SyncTarget side (replication.md §6.4), and which machine takes which ack.
//!
//! [`SyncTarget`] walks the (merged) dirty bitmap from the start and, within the configured rate
//! and number of requests in flight, asks for runs of dirty blocks with P_RS_DATA_REQUEST. A
//! P_RS_DATA_REPLY becomes a [`ResyncWrite`]; once the shell wrote it,
//! [`SyncTarget::write_done`] clears the bits and emits P_RS_WRITE_ACK (P_RS_NEG_ACK on failure)
//! so the source clears its bits too. Bits are therefore cleared only after the write is done.
//!
//! Application writes keep flowing during the resync (§5, DP_MAY_SET_IN_SYNC). One that lands
//! on a block whose resync reply is still on its way would be overwritten by the older reply, so
//! the target hears about every replicated write first ([`WriteObserver`]) and drops those blocks
//! from the reply ([`ResyncWrite::segments`]). A partially overwritten block stays dirty and is
//! fetched again in another pass. Blocks the source could not read stay dirty and are reported
//! as failed; the target is then still Inconsistent (§6.1).
//!
//! Below pv 122 resync traffic uses block id ID_SYNCER and requests are matched by sector (§3.3).
//! Only the plain P_RS_DATA_REQUEST is sent: the dagtag, checksum and thin variants need
//! features (FF_RESYNC_DAGTAG, csums-alg, FF_THIN_RESYNC) the connection must not agree to yet.
//! The target is assumed not to originate application writes itself (a Primary that is
//! SyncTarget would have to read dirty blocks from the peer, which is not done here).

use super::bitmap::{DirtyBitmap, BLOCK_SHIFT, SECTORS_PER_BIT};
use super::data_error::DataError;
use super::secondary::WriteObserver;
use super::throttle::{progress, Progress, Stopwatch, Throttle, DEFAULT_RATE};
use super::wire::ack::BlockAckFields;
use super::wire::request::BlockReqFields;
use super::wire::{Agreed, BlockId, Body, Command, Frame};

/// Which machine takes a meta-socket ack (or a resync reply).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// [`super::write::Primary`]: replication acks and barrier acks.
    Primary,
    /// [`super::resync_source::SyncSource`]: acks for resync data we sent.
    SyncSource,
    /// [`SyncTarget`]: answers to our resync requests.
    SyncTarget,
    /// [`super::secondary::Secondary`]: replicated writes and barriers.
    Secondary,
}

/// Where a data-path packet goes (`None`: not a data-path packet). Below pv 122 P_RS_WRITE_ACK
/// with a real block id is a write ack that also sets in sync, and P_NEG_ACK with ID_SYNCER is a
/// failed resync write (§3.3).
pub fn route(command: Command, block_id: BlockId, agreed: &Agreed) -> Option<Route> {
    let pv122 = agreed.pv.is_some_and(|pv| pv >= 122);
    Some(match command {
        Command::RecvAck | Command::WriteAck | Command::WriteAckInSync | Command::BarrierAck => {
            Route::Primary
        }
        Command::NegAck if block_id == BlockId::SYNCER => Route::SyncSource,
        Command::NegAck => Route::Primary,
        Command::RsWriteAck if !pv122 && block_id != BlockId::SYNCER => Route::Primary,
        Command::RsWriteAck | Command::RsNegAck | Command::RsDataRequest => Route::SyncSource,
        Command::RsDataReply | Command::NegRsDReply | Command::RsCancel | Command::RsIsInSync => {
            Route::SyncTarget
        }
        Command::Data | Command::Trim | Command::Zeroes | Command::Barrier => Route::Secondary,
        _ => return None,
    })
}

/// Largest request: 1 MiB (DRBD_MAX_BIO_SIZE), i.e. 256 bits; the skip mask holds that many.
pub const MAX_REQUEST: u32 = 1 << 20;
const MASK_WORDS: usize = (MAX_REQUEST as usize >> BLOCK_SHIFT) / 64;

/// Resync settings (`resync-rate`, request size, requests in flight).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResyncConfig {
    /// Bytes per second (0 = unlimited).
    pub rate: u64,
    /// Requests in flight at most (also bounded by the const generic).
    pub max_in_flight: usize,
    /// Bytes per request at most (rounded down to 4 KiB, ≤ 1 MiB and the agreed bio size).
    pub max_request: u32,
    /// Volume number.
    pub volume: u16,
    /// What the connection agreed.
    pub agreed: Agreed,
}

impl ResyncConfig {
    /// DRBD's default rate, 8 requests of up to 128 KiB, volume 0.
    pub const fn new(agreed: Agreed) -> Self {
        ResyncConfig {
            rate: DEFAULT_RATE,
            max_in_flight: 8,
            max_request: 128 << 10,
            volume: 0,
            agreed,
        }
    }

    fn request_bits(&self) -> u64 {
        let max = self
            .max_request
            .min(MAX_REQUEST)
            .min(super::write::max_bio_size(&self.agreed));
        (u64::from(max) >> BLOCK_SHIFT).max(1)
    }

    fn pv122(&self) -> bool {
        self.agreed.pv.is_some_and(|pv| pv >= 122)
    }
}

/// Names a resync write until [`SyncTarget::write_done`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResyncToken {
    index: u32,
    id: u64,
}

/// A resync reply to write locally.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResyncWrite<'a> {
    /// Report the completion with this.
    pub token: ResyncToken,
    /// First sector of the reply.
    pub sector: u64,
    /// The reply's data.
    pub data: &'a [u8],
    skip: [u64; MASK_WORDS],
}

impl<'a> ResyncWrite<'a> {
    /// The parts to write: `(sector, bytes)`, leaving out blocks an application write has
    /// replaced since the request went out.
    pub fn segments(&self) -> Segments<'a> {
        Segments {
            sector: self.sector,
            data: self.data,
            skip: self.skip,
            block: 0,
        }
    }
}

/// Iterator from [`ResyncWrite::segments`].
#[derive(Clone, Debug)]
pub struct Segments<'a> {
    sector: u64,
    data: &'a [u8],
    skip: [u64; MASK_WORDS],
    block: usize,
}

fn mask_bit(mask: &[u64; MASK_WORDS], i: usize) -> bool {
    mask.get(i / 64).is_some_and(|w| w >> (i % 64) & 1 == 1)
}

impl<'a> Iterator for Segments<'a> {
    type Item = (u64, &'a [u8]);
    fn next(&mut self) -> Option<(u64, &'a [u8])> {
        let blocks = self.data.len().div_ceil(1 << BLOCK_SHIFT);
        while self.block < blocks && mask_bit(&self.skip, self.block) {
            self.block += 1;
        }
        if self.block >= blocks {
            return None;
        }
        let start = self.block;
        while self.block < blocks && !mask_bit(&self.skip, self.block) {
            self.block += 1;
        }
        let from = start << BLOCK_SHIFT;
        let to = (self.block << BLOCK_SHIFT).min(self.data.len());
        Some((
            self.sector + start as u64 * SECTORS_PER_BIT,
            self.data.get(from..to)?,
        ))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ReqState {
    Requested,
    Writing,
}

#[derive(Clone, Copy, Debug)]
struct Request {
    id: u64,
    sector: u64,
    size: u32,
    skip: [u64; MASK_WORDS],
    state: ReqState,
}

impl Request {
    fn bits(&self) -> (u64, u64) {
        let first = self.sector / SECTORS_PER_BIT;
        (
            first,
            first + u64::from(self.size).div_ceil(1 << BLOCK_SHIFT),
        )
    }
}

/// What the resync reports once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResyncEvent {
    /// Every block was visited and nothing is in flight. `remaining_bits` is 0 on success;
    /// otherwise those blocks are still dirty (failed or dirtied again) and the disk stays
    /// Inconsistent.
    Finished {
        /// Bits still set.
        remaining_bits: u64,
        /// Bits that failed in this resync.
        failed_bits: u64,
    },
}

/// The SyncTarget driver, with up to `R` requests in flight.
#[derive(Clone, Debug)]
pub struct SyncTarget<const R: usize> {
    cfg: ResyncConfig,
    reqs: [Option<Request>; R],
    next_id: u64,
    cursor: u64,
    pass_done: bool,
    retry: bool,
    running: bool,
    paused: bool,
    finished: bool,
    reported: bool,
    throttle: Throttle,
    clock: Stopwatch,
    done_bits: u64,
    failed_bits: u64,
    ack_seq: u32,
    requested_bytes: u64,
}

impl<const R: usize> SyncTarget<R> {
    /// An idle target.
    pub fn new(cfg: ResyncConfig) -> Self {
        let burst = cfg.request_bits() << BLOCK_SHIFT;
        SyncTarget {
            cfg,
            reqs: [None; R],
            next_id: 1,
            cursor: 0,
            pass_done: false,
            retry: false,
            running: false,
            paused: false,
            finished: false,
            reported: false,
            throttle: Throttle::new(cfg.rate, burst),
            clock: Stopwatch::default(),
            done_bits: 0,
            failed_bits: 0,
            ack_seq: 0,
            requested_bytes: 0,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &ResyncConfig {
        &self.cfg
    }

    /// Starts a resync over the bitmap's dirty bits (after the bitmap exchange).
    pub fn start(&mut self, now: u64) {
        let cfg = self.cfg;
        *self = Self::new(cfg);
        self.running = true;
        self.clock.start(now);
    }

    /// The connection is gone: requests in flight are forgotten (their bits stay set).
    pub fn stop(&mut self, now: u64) {
        self.reqs = [None; R];
        self.running = false;
        self.clock.stop(now);
    }

    /// Pauses (`pause-sync`): no new requests; those in flight still complete.
    pub fn pause(&mut self, now: u64) {
        self.paused = true;
        self.clock.stop(now);
    }

    /// Resumes after [`Self::pause`].
    pub fn resume(&mut self, now: u64) {
        if self.paused {
            self.paused = false;
            if self.running {
                self.clock.start(now);
            }
        }
    }

    /// True while started and not finished.
    pub fn is_running(&self) -> bool {
        self.running && !self.finished
    }

    /// Requests in flight.
    pub fn in_flight(&self) -> usize {
        self.reqs.iter().flatten().count()
    }

    /// Bytes requested since [`Self::start`].
    pub fn requested_bytes(&self) -> u64 {
        self.requested_bytes
    }

    /// Progress for a status display.
    pub fn progress(&self, now: u64, bitmap: &DirtyBitmap<'_>) -> Progress {
        progress(
            self.done_bits,
            bitmap.count(),
            self.failed_bits,
            self.clock.elapsed(now),
            self.paused,
        )
    }

    fn covering(&self, bit: u64) -> Option<u64> {
        self.reqs.iter().flatten().find_map(|r| {
            let (s, e) = r.bits();
            (s <= bit && bit < e).then_some(e)
        })
    }

    /// The next run to request: `(first bit, bits)`.
    fn next_run(&mut self, bitmap: &DirtyBitmap<'_>) -> Option<(u64, u64)> {
        // Each step moves the cursor forward or ends the pass, so this terminates; a restart at 0
        // happens once per call at most.
        let mut restarted = false;
        loop {
            let Some(b) = bitmap.find_next_dirty(self.cursor) else {
                if self.retry && !restarted {
                    self.retry = false;
                    restarted = true;
                    self.cursor = 0;
                    continue;
                }
                self.pass_done = true;
                self.cursor = bitmap.bits();
                return None;
            };
            if let Some(end) = self.covering(b) {
                self.cursor = end;
                continue;
            }
            let next_busy = self
                .reqs
                .iter()
                .flatten()
                .map(|r| r.bits().0)
                .filter(|&s| s > b)
                .min()
                .unwrap_or(u64::MAX);
            let end = bitmap
                .find_next_clean(b)
                .min(next_busy)
                .min(b + self.cfg.request_bits());
            return Some((b, end - b));
        }
    }

    /// When [`Self::poll_request`] could send next, if it is waiting only for the rate limit.
    pub fn poll_timeout(&self, now: u64, bitmap: &DirtyBitmap<'_>) -> Option<u64> {
        if !self.running || self.paused || self.finished || self.pass_done {
            return None;
        }
        if self.in_flight() >= self.cfg.max_in_flight.min(R) || bitmap.count() == 0 {
            return None;
        }
        Some(
            self.throttle
                .ready_at(now, self.cfg.request_bits() << BLOCK_SHIFT),
        )
    }

    /// Emits the next P_RS_DATA_REQUEST into `out` if the rate, the in-flight limit and the
    /// bitmap allow; `None` otherwise.
    pub fn poll_request(
        &mut self,
        now: u64,
        bitmap: &DirtyBitmap<'_>,
        out: &mut [u8],
    ) -> Result<Option<usize>, DataError> {
        self.check_finished(bitmap);
        if !self.running || self.paused || self.finished {
            return Ok(None);
        }
        let Some(index) = self.reqs.iter().position(Option::is_none) else {
            return Ok(None);
        };
        if self.in_flight() >= self.cfg.max_in_flight.min(R) {
            return Ok(None);
        }
        let (saved_cursor, saved_retry) = (self.cursor, self.retry);
        let Some((bit, bits)) = self.next_run(bitmap) else {
            self.check_finished(bitmap);
            return Ok(None);
        };
        let sector = bit * SECTORS_PER_BIT;
        let end = ((bit + bits) * SECTORS_PER_BIT).min(bitmap.capacity_sectors());
        let size = ((end - sector) * 512) as u32;
        if !self.throttle.take(now, u64::from(size)) {
            (self.cursor, self.retry) = (saved_cursor, saved_retry);
            return Ok(None);
        }
        let id = self.next_id;
        let block_id = if self.cfg.pv122() {
            BlockId::from_host(id)
        } else {
            BlockId::SYNCER
        };
        let body = Body::BlockReq(BlockReqFields {
            sector,
            block_id,
            blksize: size,
        });
        let n = match Frame::new(Command::RsDataRequest, self.cfg.volume, body)?
            .emit(&self.cfg.agreed, out)
        {
            Ok(n) => n,
            Err(e) => {
                (self.cursor, self.retry) = (saved_cursor, saved_retry);
                return Err(e.into());
            }
        };
        self.next_id += 1;
        self.cursor = bit + bits;
        self.requested_bytes += u64::from(size);
        if let Some(slot) = self.reqs.get_mut(index) {
            *slot = Some(Request {
                id,
                sector,
                size,
                skip: [0; MASK_WORDS],
                state: ReqState::Requested,
            });
        }
        Ok(Some(n))
    }

    fn find(&self, command: Command, sector: u64, block_id: BlockId) -> Result<usize, DataError> {
        let pv122 = self.cfg.pv122();
        self.reqs
            .iter()
            .position(|r| {
                r.is_some_and(|r| {
                    r.state == ReqState::Requested
                        && r.sector == sector
                        && (!pv122 || BlockId::from_host(r.id) == block_id)
                })
            })
            .ok_or(DataError::UnknownRequest {
                command,
                sector,
                block_id: block_id.to_host(),
            })
    }

    /// An answer from the source: P_RS_DATA_REPLY gives a write to perform (`Some`);
    /// P_NEG_RS_DREPLY (read failed), P_RS_CANCEL and P_RS_IS_IN_SYNC settle the request
    /// (`None`).
    pub fn handle_reply<'a>(
        &mut self,
        frame: &Frame<'a>,
        bitmap: &mut DirtyBitmap<'_>,
    ) -> Result<Option<ResyncWrite<'a>>, DataError> {
        let command = frame.command;
        match (command, frame.body) {
            (Command::RsDataReply, Body::Data(d)) => {
                let i = self.find(command, d.fields.sector, d.fields.block_id)?;
                let Some(r) = self.reqs.get_mut(i).and_then(Option::as_mut) else {
                    return Err(DataError::StaleToken);
                };
                if d.data.len() != r.size as usize {
                    return Err(DataError::AckMismatch {
                        command,
                        expected_sector: r.sector,
                        expected_size: r.size,
                        sector: d.fields.sector,
                        size: d.data.len() as u32,
                    });
                }
                r.state = ReqState::Writing;
                Ok(Some(ResyncWrite {
                    token: ResyncToken {
                        index: i as u32,
                        id: r.id,
                    },
                    sector: r.sector,
                    data: d.data,
                    skip: r.skip,
                }))
            }
            (Command::NegRsDReply | Command::RsCancel | Command::RsIsInSync, Body::BlockAck(a)) => {
                let i = self.find(command, a.sector, a.block_id)?;
                let Some(r) = self.reqs.get(i).copied().flatten() else {
                    return Err(DataError::StaleToken);
                };
                if a.blksize != r.size {
                    return Err(DataError::AckMismatch {
                        command,
                        expected_sector: r.sector,
                        expected_size: r.size,
                        sector: a.sector,
                        size: a.blksize,
                    });
                }
                let (s, e) = r.bits();
                match command {
                    Command::NegRsDReply => self.failed_bits += bitmap.count_range(s, e),
                    Command::RsCancel => self.retry = true,
                    _ => self.done_bits += bitmap.clear_sectors(r.sector, u64::from(r.size))?,
                }
                self.reqs[i] = None;
                self.check_finished(bitmap);
                Ok(None)
            }
            _ => Err(DataError::Unexpected { command }),
        }
    }

    /// The shell wrote (or failed to write) the segments of `token`'s reply: clears their bits
    /// and emits P_RS_WRITE_ACK or P_RS_NEG_ACK (P_NEG_ACK with ID_SYNCER below pv 122) into
    /// `meta_out`; returns its length.
    pub fn write_done(
        &mut self,
        token: ResyncToken,
        ok: bool,
        bitmap: &mut DirtyBitmap<'_>,
        meta_out: &mut [u8],
    ) -> Result<usize, DataError> {
        let i = token.index as usize;
        let Some(r) = self
            .reqs
            .get(i)
            .copied()
            .flatten()
            .filter(|r| r.id == token.id && r.state == ReqState::Writing)
        else {
            return Err(DataError::StaleToken);
        };
        let pv122 = self.cfg.pv122();
        let command = match (ok, pv122) {
            (true, _) => Command::RsWriteAck,
            (false, true) => Command::RsNegAck,
            (false, false) => Command::NegAck,
        };
        let block_id = if pv122 {
            BlockId::from_host(r.id)
        } else {
            BlockId::SYNCER
        };
        let body = Body::BlockAck(BlockAckFields {
            sector: r.sector,
            block_id,
            blksize: r.size,
            seq_num: self.ack_seq.wrapping_add(1),
        });
        let n = Frame::new(command, self.cfg.volume, body)?.emit(&self.cfg.agreed, meta_out)?;
        self.ack_seq = self.ack_seq.wrapping_add(1);
        let (first, end) = r.bits();
        if ok {
            let size = u64::from(r.size);
            let bits = end - first;
            for b in 0..bits {
                if mask_bit(&r.skip, b as usize) {
                    continue;
                }
                let sector = r.sector + b * SECTORS_PER_BIT;
                let len = (size - b * (1 << BLOCK_SHIFT)).min(1 << BLOCK_SHIFT);
                self.done_bits += bitmap.clear_sectors(sector, len)?;
            }
        } else {
            self.failed_bits += bitmap.count_range(first, end);
        }
        self.reqs[i] = None;
        self.check_finished(bitmap);
        Ok(n)
    }

    fn check_finished(&mut self, bitmap: &DirtyBitmap<'_>) {
        if !self.running || self.finished || self.in_flight() > 0 {
            return;
        }
        if self.pass_done && self.retry && bitmap.count() > 0 {
            // Blocks were cancelled or overwritten in part: one more pass picks them up.
            self.pass_done = false;
            self.retry = false;
            self.cursor = 0;
            return;
        }
        if self.pass_done || bitmap.count() == 0 {
            self.finished = true;
        }
    }

    /// [`ResyncEvent::Finished`] once, when the resync is over.
    pub fn poll_event(&mut self, bitmap: &DirtyBitmap<'_>) -> Option<ResyncEvent> {
        self.check_finished(bitmap);
        if !self.finished || self.reported {
            return None;
        }
        self.reported = true;
        Some(ResyncEvent::Finished {
            remaining_bits: bitmap.count(),
            failed_bits: self.failed_bits,
        })
    }
}

impl<const R: usize> WriteObserver for SyncTarget<R> {
    /// Blocks of a request still on its way that this write touches are left out of its reply.
    fn app_write(&mut self, sector: u64, len: u64) {
        let first = sector / SECTORS_PER_BIT;
        let end = sector
            .saturating_add(len.div_ceil(512))
            .div_ceil(SECTORS_PER_BIT);
        let mut touched = false;
        for r in self.reqs.iter_mut().flatten() {
            if r.state != ReqState::Requested {
                continue;
            }
            let (s, e) = r.bits();
            for b in first.max(s)..end.min(e) {
                let i = (b - s) as usize;
                if let Some(w) = r.skip.get_mut(i / 64) {
                    *w |= 1 << (i % 64);
                    touched = true;
                }
            }
        }
        // A block only partly overwritten keeps its bit; another pass fetches it again.
        self.retry |= touched;
    }
}

#[cfg(test)]
mod tests;
