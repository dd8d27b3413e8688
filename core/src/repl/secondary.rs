//! Write replication, receiving side (replication.md §5): P_DATA / P_TRIM / P_ZEROES become
//! local writes, acked per protocol; P_BARRIER closes an epoch that is acked with P_BARRIER_ACK
//! once its writes are on stable storage.
//!
//! [`Secondary::handle_data`] validates the packet (§10.18), emits P_RECV_ACK at once if the
//! write asks for protocol B, and hands back a [`LocalWrite`] for the shell to submit. Its
//! completion, [`Secondary::write_done`], emits P_WRITE_ACK / P_WRITE_ACK_IN_SYNC / P_NEG_ACK as
//! requested. An epoch whose barrier arrived and whose writes are all done asks for a flush
//! through [`Secondary::poll_flush`]; after [`Secondary::flushed`], [`Secondary::poll_transmit`]
//! emits its P_BARRIER_ACK with the verbatim number and the write count (§3.4). Acks for one
//! epoch therefore always precede its barrier ack on the meta socket.
//!
//! Below pv 100 the ack bits in dp_flags are not sent, so the configured protocol decides (§5).
//!
//! The shell must apply overlapping local writes — these and the resync writes of
//! [`super::resync::SyncTarget`] — in the order the core hands them out (DRBD's receiver
//! serialises conflicting writes the same way); a failed local write marks its blocks dirty.

use heapless::Deque;

use super::bitmap::DirtyBitmap;
use super::data_error::DataError;
use super::wire::ack::BlockAckFields;
use super::wire::barrier::{BarrierAckFields, BarrierFields};
use super::wire::data::dp;
use super::wire::features::ff;
use super::wire::{Agreed, BarrierNr, BlockId, Body, Command, Frame};
use super::write::{check_io, max_bio_size, Protocol};

/// Largest discard / zero-out: 128 MiB with FF_WSAME, 4 MiB before (§1).
pub fn max_discard(agreed: &Agreed) -> u32 {
    if agreed.features & ff::WSAME != 0 {
        128 << 20
    } else {
        4 << 20
    }
}

/// Something that must hear about every replicated write before it is submitted locally: the
/// resync target, so a resync reply does not overwrite newer data (see
/// [`super::resync::SyncTarget`]). `()` ignores them.
pub trait WriteObserver {
    /// `len` bytes at `sector` are about to be written by the application.
    fn app_write(&mut self, sector: u64, len: u64);
}

impl WriteObserver for () {
    fn app_write(&mut self, _: u64, _: u64) {}
}

/// Names a local write until [`Secondary::write_done`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WriteToken {
    index: u32,
    generation: u32,
}

/// What the shell writes to its disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteKind<'a> {
    /// These bytes.
    Data(&'a [u8]),
    /// Zeroes over `n` bytes (P_ZEROES, or P_TRIM with DP_ZEROES).
    Zeroes(u32),
    /// Discard `n` bytes (P_TRIM); reading them back afterwards may return anything.
    Discard(u32),
}

/// A local write to perform, from [`Secondary::handle_data`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LocalWrite<'a> {
    /// Report the completion with this.
    pub token: WriteToken,
    /// First sector.
    pub sector: u64,
    /// What to write.
    pub kind: WriteKind<'a>,
    /// Preflush before it (DP_FLUSH).
    pub flush: bool,
    /// Force unit access (DP_FUA).
    pub fua: bool,
}

/// What [`Secondary::handle_data`] produced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Received<'a> {
    /// The write to submit.
    pub write: LocalWrite<'a>,
    /// Bytes of P_RECV_ACK at the start of the meta buffer (0 if none).
    pub meta_len: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum AckKind {
    None,
    Write,
    InSync,
}

#[derive(Clone, Copy, Debug)]
struct Pending {
    generation: u32,
    sector: u64,
    size: u32,
    block_id: BlockId,
    ack: AckKind,
    epoch: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum EpochState {
    Open,
    Closed,
    Flushing(u64),
    Stable,
}

#[derive(Clone, Copy, Debug)]
struct Epoch {
    seq: u64,
    barrier: BarrierNr,
    writes: u32,
    pending: u32,
    state: EpochState,
}

/// A flush the shell must perform before the epochs it covers are acked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlushToken(u64);

/// Settings of one peer device on the receiving side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SecondaryConfig {
    /// The connection's protocol (decides the acks below pv 100).
    pub protocol: Protocol,
    /// Volume number in h100 headers.
    pub volume: u16,
    /// What the connection agreed.
    pub agreed: Agreed,
}

/// The receiving side of one peer device: up to `W` local writes in flight and `E` epochs
/// awaiting their barrier ack.
#[derive(Clone, Debug)]
pub struct Secondary<const W: usize, const E: usize> {
    cfg: SecondaryConfig,
    slots: [Option<Pending>; W],
    generation: u32,
    epochs: Deque<Epoch, E>,
    next_epoch: u64,
    next_flush: u64,
    ack_seq: u32,
    syncing: bool,
}

impl<const W: usize, const E: usize> Secondary<W, E> {
    /// A receiver with nothing in flight (`E` must be at least 1).
    pub fn new(cfg: SecondaryConfig) -> Self {
        let mut s = Secondary {
            cfg,
            slots: [None; W],
            generation: 0,
            epochs: Deque::new(),
            next_epoch: 0,
            next_flush: 0,
            ack_seq: 0,
            syncing: false,
        };
        s.open_epoch();
        s
    }

    fn open_epoch(&mut self) {
        let e = Epoch {
            seq: self.next_epoch,
            barrier: BarrierNr::default(),
            writes: 0,
            pending: 0,
            state: EpochState::Open,
        };
        self.next_epoch += 1;
        // Callers check for room; with E = 0 writes are refused instead.
        let _ = self.epochs.push_back(e);
    }

    /// The configuration.
    pub fn config(&self) -> &SecondaryConfig {
        &self.cfg
    }

    /// This node is resyncing (SyncTarget / SyncSource): writes flagged DP_MAY_SET_IN_SYNC clear
    /// their bits and are acked with P_WRITE_ACK_IN_SYNC.
    pub fn set_syncing(&mut self, syncing: bool) {
        self.syncing = syncing;
    }

    /// Local writes in flight.
    pub fn in_flight(&self) -> usize {
        self.slots.iter().flatten().count()
    }

    /// True if another write can be accepted now; if not, stop reading the data socket until
    /// writes complete (DRBD's max-buffers back-pressure).
    pub fn can_accept(&self) -> bool {
        self.slots.iter().any(Option::is_none) && self.epochs.back().is_some()
    }

    /// True if a P_BARRIER can be taken now; if not, stop reading the data socket until a
    /// barrier ack went out.
    pub fn can_accept_barrier(&self) -> bool {
        !self.epochs.is_full()
    }

    /// A new connection: nothing from the old one is acked any more.
    pub fn reset(&mut self, agreed: Agreed) {
        let syncing = self.syncing;
        *self = Self::new(SecondaryConfig { agreed, ..self.cfg });
        self.syncing = syncing;
    }

    fn next_ack_seq(&mut self) -> u32 {
        self.ack_seq = self.ack_seq.wrapping_add(1);
        self.ack_seq
    }

    fn emit_ack(
        &mut self,
        command: Command,
        p: &Pending,
        out: &mut [u8],
    ) -> Result<usize, DataError> {
        let fields = BlockAckFields {
            sector: p.sector,
            block_id: p.block_id,
            blksize: p.size,
            seq_num: self.ack_seq.wrapping_add(1),
        };
        let n = Frame::new(command, self.cfg.volume, Body::BlockAck(fields))?
            .emit(&self.cfg.agreed, out)?;
        self.next_ack_seq();
        Ok(n)
    }

    /// A P_DATA, P_TRIM or P_ZEROES frame. Nothing changes on an error; a protocol error
    /// (range, size, command) means the connection should be dropped.
    pub fn handle_data<'a>(
        &mut self,
        frame: &Frame<'a>,
        bitmap: &DirtyBitmap<'_>,
        observer: &mut impl WriteObserver,
        meta_out: &mut [u8],
    ) -> Result<Received<'a>, DataError> {
        let agreed = self.cfg.agreed;
        let capacity = bitmap.capacity_sectors();
        let (sector, block_id, dp_flags, kind, size) = match (frame.command, frame.body) {
            (Command::Data, Body::Data(d)) => {
                let size = d.data.len() as u64;
                check_io(d.fields.sector, size, max_bio_size(&agreed), capacity)?;
                let f = d.fields;
                (
                    f.sector,
                    f.block_id,
                    f.dp_flags,
                    WriteKind::Data(d.data),
                    size,
                )
            }
            (Command::Trim | Command::Zeroes, Body::Trim(t)) => {
                let size = u64::from(t.size);
                check_io(t.sector, size, max_discard(&agreed), capacity)?;
                let zero = frame.command == Command::Zeroes || t.dp_flags & dp::ZEROES != 0;
                let kind = if zero {
                    WriteKind::Zeroes(t.size)
                } else {
                    WriteKind::Discard(t.size)
                };
                (t.sector, t.block_id, t.dp_flags, kind, size)
            }
            _ => {
                return Err(DataError::Unexpected {
                    command: frame.command,
                })
            }
        };
        if dp_flags & dp::WSAME != 0 {
            return Err(DataError::Unexpected {
                command: Command::Wsame,
            });
        }
        let Some(index) = self.slots.iter().position(Option::is_none) else {
            return Err(DataError::Full {
                what: "secondary writes in flight",
                capacity: W,
            });
        };
        let Some(epoch) = self.epochs.back().map(|e| e.seq) else {
            return Err(DataError::Full {
                what: "secondary epochs",
                capacity: E,
            });
        };
        let (recv_ack, write_ack) = if agreed.pv.is_some_and(|pv| pv >= 100) {
            (
                dp_flags & dp::SEND_RECEIVE_ACK != 0,
                dp_flags & dp::SEND_WRITE_ACK != 0,
            )
        } else {
            (
                self.cfg.protocol == Protocol::B,
                self.cfg.protocol == Protocol::C,
            )
        };
        let ack = if self.syncing && dp_flags & dp::MAY_SET_IN_SYNC != 0 {
            AckKind::InSync
        } else if write_ack {
            AckKind::Write
        } else {
            AckKind::None
        };
        self.generation = self.generation.wrapping_add(1);
        let pending = Pending {
            generation: self.generation,
            sector,
            size: size as u32,
            block_id,
            ack,
            epoch,
        };
        let meta_len = if recv_ack {
            self.emit_ack(Command::RecvAck, &pending, meta_out)?
        } else {
            0
        };
        observer.app_write(sector, size);
        if let Some(slot) = self.slots.get_mut(index) {
            *slot = Some(pending);
        }
        if let Some(e) = self.epochs.back_mut() {
            e.writes += 1;
            e.pending += 1;
        }
        Ok(Received {
            write: LocalWrite {
                token: WriteToken {
                    index: index as u32,
                    generation: self.generation,
                },
                sector,
                kind,
                flush: dp_flags & dp::FLUSH != 0,
                fua: dp_flags & dp::FUA != 0,
            },
            meta_len,
        })
    }

    /// The local write `token` finished: emits its ack into `meta_out` if one is due (returns
    /// the bytes, 0 if none). A successful in-sync write clears its blocks in `bitmap`.
    pub fn write_done(
        &mut self,
        token: WriteToken,
        ok: bool,
        bitmap: &mut DirtyBitmap<'_>,
        meta_out: &mut [u8],
    ) -> Result<usize, DataError> {
        let i = token.index as usize;
        let Some(p) = self
            .slots
            .get(i)
            .copied()
            .flatten()
            .filter(|p| p.generation == token.generation)
        else {
            return Err(DataError::StaleToken);
        };
        let pv122 = self.cfg.agreed.pv.is_some_and(|pv| pv >= 122);
        let command = match (ok, p.ack) {
            (false, AckKind::None) => None,
            (false, _) => Some(Command::NegAck),
            (true, AckKind::None) => None,
            (true, AckKind::Write) => Some(Command::WriteAck),
            // Before pv 122, P_RS_WRITE_ACK with the real block id means "write ack + in sync".
            (true, AckKind::InSync) if pv122 => Some(Command::WriteAckInSync),
            (true, AckKind::InSync) => Some(Command::RsWriteAck),
        };
        let n = match command {
            Some(c) => self.emit_ack(c, &p, meta_out)?,
            None => 0,
        };
        if ok && p.ack == AckKind::InSync {
            bitmap.clear_sectors(p.sector, u64::from(p.size))?;
        } else if !ok {
            // Our copy of these blocks is now wrong: a later resync must fetch them.
            bitmap.set_sectors(p.sector, u64::from(p.size))?;
        }
        if let Some(slot) = self.slots.get_mut(i) {
            *slot = None;
        }
        if let Some(e) = self.epochs.iter_mut().find(|e| e.seq == p.epoch) {
            e.pending = e.pending.saturating_sub(1);
        }
        Ok(n)
    }

    /// P_BARRIER: the current epoch is complete; writes after it form the next one.
    pub fn handle_barrier(&mut self, barrier: &BarrierFields) -> Result<(), DataError> {
        if self.epochs.is_full() {
            return Err(DataError::Full {
                what: "secondary epochs",
                capacity: E,
            });
        }
        match self.epochs.back_mut() {
            Some(e) if e.state == EpochState::Open => {
                e.barrier = barrier.barrier;
                e.state = EpochState::Closed;
            }
            _ => {
                return Err(DataError::Unexpected {
                    command: Command::Barrier,
                })
            }
        }
        self.open_epoch();
        Ok(())
    }

    /// A flush to perform: every closed epoch at the front whose writes are done. `None` while a
    /// flush is outstanding or nothing is ready.
    pub fn poll_flush(&mut self) -> Option<FlushToken> {
        if self
            .epochs
            .iter()
            .any(|e| matches!(e.state, EpochState::Flushing(_)))
        {
            return None;
        }
        let id = self.next_flush;
        let mut any = false;
        for e in self.epochs.iter_mut() {
            match e.state {
                EpochState::Stable => continue,
                EpochState::Closed if e.pending == 0 => {
                    e.state = EpochState::Flushing(id);
                    any = true;
                }
                _ => break,
            }
        }
        any.then(|| {
            self.next_flush += 1;
            FlushToken(id)
        })
    }

    /// The flush `token` finished: its epochs may be acked.
    pub fn flushed(&mut self, token: FlushToken) -> Result<(), DataError> {
        let mut any = false;
        for e in self.epochs.iter_mut() {
            if e.state == EpochState::Flushing(token.0) {
                e.state = EpochState::Stable;
                any = true;
            }
        }
        if any {
            Ok(())
        } else {
            Err(DataError::StaleToken)
        }
    }

    /// The next P_BARRIER_ACK into `meta_out`, oldest epoch first; `None` when none is due.
    pub fn poll_transmit(&mut self, meta_out: &mut [u8]) -> Result<Option<usize>, DataError> {
        let Some(e) = self
            .epochs
            .front()
            .copied()
            .filter(|e| e.state == EpochState::Stable)
        else {
            return Ok(None);
        };
        let body = Body::BarrierAck(BarrierAckFields {
            barrier: e.barrier,
            set_size: e.writes,
        });
        let n = Frame::new(Command::BarrierAck, self.cfg.volume, body)?
            .emit(&self.cfg.agreed, meta_out)?;
        self.epochs.pop_front();
        Ok(Some(n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repl::wire::data::TrimFields;
    use crate::repl::wire::data::{DataFields, DataRepr};

    fn data_frame(sector: u64, id: u64, flags: u32, data: &[u8]) -> Frame<'_> {
        Frame::new(
            Command::Data,
            0,
            Body::Data(DataRepr {
                fields: DataFields {
                    sector,
                    block_id: BlockId::from_host(id),
                    seq_num: 1,
                    dp_flags: flags,
                },
                digest: &[],
                data,
            }),
        )
        .unwrap()
    }

    fn parse(buf: &[u8], agreed: &Agreed) -> (Command, Body<'static>) {
        let (f, _) = Frame::parse(buf, agreed).unwrap();
        let body = match f.body {
            Body::BlockAck(a) => Body::BlockAck(a),
            Body::BarrierAck(a) => Body::BarrierAck(a),
            _ => panic!("unexpected {:?}", f.command),
        };
        (f.command, body)
    }

    #[test]
    fn acks_follow_dp_flags_and_barrier_waits_for_flush() {
        let agreed = Agreed::new(122, 0);
        let cfg = SecondaryConfig {
            protocol: Protocol::C,
            volume: 0,
            agreed,
        };
        let mut s = Secondary::<4, 4>::new(cfg);
        let mut store = [0u8; 8];
        let mut bm = DirtyBitmap::new(&mut store, 64 * 8).unwrap();
        let mut meta = [0u8; 64];
        let data = [7u8; 1024];
        // Protocol B write: P_RECV_ACK at once, nothing at completion.
        let f = data_frame(8, 11, dp::SEND_RECEIVE_ACK, &data);
        let r = s.handle_data(&f, &bm, &mut (), &mut meta).unwrap();
        assert_eq!(r.meta_len, 40);
        let (c, b) = parse(&meta[..40], &agreed);
        assert_eq!(c, Command::RecvAck);
        let Body::BlockAck(a) = b else { panic!() };
        assert_eq!(
            (a.sector, a.block_id.to_host(), a.blksize, a.seq_num),
            (8, 11, 1024, 1)
        );
        assert_eq!(r.write.kind, WriteKind::Data(&data));
        assert_eq!(s.write_done(r.write.token, true, &mut bm, &mut meta), Ok(0));
        assert_eq!(
            s.write_done(r.write.token, true, &mut bm, &mut meta),
            Err(DataError::StaleToken)
        );
        // Protocol C write in the same epoch.
        let f = data_frame(16, 12, dp::SEND_WRITE_ACK, &data);
        let r = s.handle_data(&f, &bm, &mut (), &mut meta).unwrap();
        assert_eq!(r.meta_len, 0);
        s.handle_barrier(&BarrierFields {
            barrier: BarrierNr::from_host(5),
        })
        .unwrap();
        // The barrier's epoch still has a write in flight: no flush yet.
        assert_eq!(s.poll_flush(), None);
        let n = s
            .write_done(r.write.token, true, &mut bm, &mut meta)
            .unwrap();
        let (c, b) = parse(&meta[..n], &agreed);
        assert_eq!(c, Command::WriteAck);
        let Body::BlockAck(a) = b else { panic!() };
        assert_eq!(a.seq_num, 2);
        assert_eq!(s.poll_transmit(&mut meta), Ok(None));
        let t = s.poll_flush().unwrap();
        assert_eq!(s.poll_flush(), None);
        assert_eq!(s.poll_transmit(&mut meta), Ok(None));
        s.flushed(t).unwrap();
        let n = s.poll_transmit(&mut meta).unwrap().unwrap();
        let (c, b) = parse(&meta[..n], &agreed);
        assert_eq!(c, Command::BarrierAck);
        assert_eq!(
            b,
            Body::BarrierAck(BarrierAckFields {
                barrier: BarrierNr::from_host(5),
                set_size: 2
            })
        );
        assert_eq!(s.poll_transmit(&mut meta), Ok(None));
    }

    #[test]
    fn validation_and_old_protocol_versions() {
        let agreed = Agreed::new(96, 0);
        let cfg = SecondaryConfig {
            protocol: Protocol::B,
            volume: 0,
            agreed,
        };
        let mut s = Secondary::<1, 2>::new(cfg);
        let mut store = [0u8; 8];
        let bm = DirtyBitmap::new(&mut store, 64).unwrap();
        let mut meta = [0u8; 64];
        let data = [0u8; 1024];
        assert!(matches!(
            s.handle_data(&data_frame(63, 1, 0, &data), &bm, &mut (), &mut meta),
            Err(DataError::OutOfRange { .. })
        ));
        assert!(matches!(
            s.handle_data(&data_frame(0, 1, 0, &data[..100]), &bm, &mut (), &mut meta),
            Err(DataError::BadSize { .. })
        ));
        // pv 96: the configured protocol B decides, whatever dp_flags say.
        let r = s
            .handle_data(
                &data_frame(0, 1, dp::SEND_WRITE_ACK, &data),
                &bm,
                &mut (),
                &mut meta,
            )
            .unwrap();
        assert_eq!(r.meta_len, 8 + 24);
        assert!(!s.can_accept());
        assert!(matches!(
            s.handle_data(&data_frame(8, 2, 0, &data), &bm, &mut (), &mut meta),
            Err(DataError::Full { capacity: 1, .. })
        ));
        let trim = Frame::new(
            Command::Zeroes,
            0,
            Body::Trim(TrimFields {
                sector: 0,
                block_id: BlockId::from_host(3),
                seq_num: 0,
                dp_flags: 0,
                size: 4096,
            }),
        )
        .unwrap();
        let mut s2 = Secondary::<1, 2>::new(cfg);
        let r = s2.handle_data(&trim, &bm, &mut (), &mut meta).unwrap();
        assert_eq!(r.write.kind, WriteKind::Zeroes(4096));
        let ping = Frame::new(Command::Ping, 0, Body::Empty).unwrap();
        assert!(matches!(
            s2.handle_data(&ping, &bm, &mut (), &mut meta),
            Err(DataError::Unexpected { .. })
        ));
        let b = BarrierFields::default();
        s2.handle_barrier(&b).unwrap();
        assert!(matches!(s2.handle_barrier(&b), Err(DataError::Full { .. })));
    }
}
