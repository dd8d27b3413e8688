//! Write replication, primary side (replication.md §5): protocols A/B/C, epochs and barriers,
//! and which ack completes an application write.
//!
//! [`Primary::write`] turns an application write into P_DATA (preceded by P_BARRIER when it
//! opens a new epoch) in the caller's buffer and records it in the [`TransferLog`]; the shell
//! sends the bytes on the data socket, performs the local write and reports it with
//! [`Primary::local_done`]. Acks from the meta socket go to [`Primary::handle_ack`] /
//! [`Primary::handle_barrier_ack`]; finished writes come out of [`Primary::poll_completion`].
//! An epoch closes after `max-epoch-size` writes, before a flush write, and when one of its
//! writes completes to the application ([`Primary::close_due`], then [`Primary::poll_barrier`]):
//! whatever the application issues after seeing a completion must land in a later epoch, and
//! no sooner, so a pipelined stream of writes shares epochs (and the peer's flushes) as DRBD's
//! does (`drbd_req_complete` starts a new transfer-log epoch).
//!
//! | protocol | dp_flags (pv ≥ 100) | the peer's answer that makes the write "net OK" |
//! | --- | --- | --- |
//! | A | none | none: handing P_DATA to the send buffer |
//! | B | DP_SEND_RECEIVE_ACK | P_RECV_ACK |
//! | C | DP_SEND_WRITE_ACK | P_WRITE_ACK (P_NEG_ACK: failed, blocks marked dirty) |
//!
//! While resyncing, writes also carry DP_MAY_SET_IN_SYNC and DP_SEND_WRITE_ACK; the peer's
//! P_WRITE_ACK_IN_SYNC (P_RS_WRITE_ACK with a real block id before pv 122) clears their bits.
//! Without a connection every write is marked dirty at once (§6.2).

use super::bitmap::DirtyBitmap;
use super::data_error::DataError;
use super::transfer_log::{flag, Completion, RequestId, Retired, TlEntry, TransferLog};
use super::wire::ack::BlockAckFields;
use super::wire::barrier::{BarrierAckFields, BarrierFields};
use super::wire::data::{dp, DataFields, DataRepr};
use super::wire::{Agreed, BarrierNr, BlockId, Body, Command, Frame};

/// DRBD's replication protocol (P_PROTOCOL value, §3.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Protocol {
    /// Asynchronous: complete when sent.
    A = 1,
    /// Memory-synchronous: complete when the peer received it.
    B = 2,
    /// Synchronous: complete when the peer wrote it.
    C = 3,
}

impl Protocol {
    /// From the P_PROTOCOL number.
    pub const fn from_wire(v: u32) -> Option<Protocol> {
        match v {
            1 => Some(Protocol::A),
            2 => Some(Protocol::B),
            3 => Some(Protocol::C),
            _ => None,
        }
    }
}

/// DRBD's default `max-epoch-size`.
pub const DEFAULT_MAX_EPOCH_SIZE: u32 = 2048;
/// DRBD_MAX_BIO_SIZE (pv ≥ 100).
pub const MAX_BIO_SIZE: u32 = 1 << 20;

/// The largest data packet the agreed version allows (§1, §3.8): 32 KiB up to pv 94, 128 KiB
/// below 100, 1 MiB from 100.
pub fn max_bio_size(agreed: &Agreed) -> u32 {
    match agreed.pv {
        Some(pv) if pv >= 100 => MAX_BIO_SIZE,
        Some(pv) if pv >= 95 => 1 << 17,
        _ => 1 << 15,
    }
}

/// `BadSize` unless `size` is a non-zero multiple of 512 up to `max`; `OutOfRange` unless it
/// ends within the device.
pub(crate) fn check_io(sector: u64, size: u64, max: u32, capacity: u64) -> Result<(), DataError> {
    if size == 0 || !size.is_multiple_of(512) || size > u64::from(max) {
        return Err(DataError::BadSize { size, max });
    }
    let end = sector.checked_add(size / 512);
    if end.is_none_or(|e| e > capacity) {
        return Err(DataError::OutOfRange {
            sector,
            len: size,
            capacity,
        });
    }
    Ok(())
}

/// The application's request flags that travel in dp_flags.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WriteFlags {
    /// REQ_SYNC.
    pub sync: bool,
    /// Force unit access.
    pub fua: bool,
    /// Preflush: the write starts a new epoch, so everything before it is covered by a barrier.
    pub flush: bool,
}

impl WriteFlags {
    fn dp(self) -> u32 {
        (if self.sync { dp::RW_SYNC } else { 0 })
            | (if self.fua { dp::FUA } else { 0 })
            | (if self.flush { dp::FLUSH } else { 0 })
    }
}

/// Settings of one peer device on the primary.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PrimaryConfig {
    /// The connection's protocol.
    pub protocol: Protocol,
    /// Writes per epoch before a barrier is forced (`max-epoch-size`).
    pub max_epoch_size: u32,
    /// The volume number in h100 headers.
    pub volume: u16,
    /// What the connection agreed.
    pub agreed: Agreed,
}

impl PrimaryConfig {
    /// Protocol `protocol` on volume 0 with DRBD's default epoch size.
    pub const fn new(protocol: Protocol, agreed: Agreed) -> Self {
        PrimaryConfig {
            protocol,
            max_epoch_size: DEFAULT_MAX_EPOCH_SIZE,
            volume: 0,
            agreed,
        }
    }
}

/// Whether the peer is reachable, and whether we are resyncing to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Link {
    /// No connection: writes are marked dirty.
    Disconnected,
    /// Connected, replicating (Established).
    Connected,
    /// Connected and resyncing (SyncSource / SyncTarget / paused): writes may set in sync.
    Syncing,
}

/// What [`Primary::write`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Submitted {
    /// The write's id (report the local completion with it).
    pub id: RequestId,
    /// Bytes written at the start of the output buffer, for the data socket (0 when
    /// disconnected).
    pub len: usize,
}

/// The primary's replication state for one peer device, with a transfer log of `TL` writes.
#[derive(Clone, Debug)]
pub struct Primary<const TL: usize> {
    cfg: PrimaryConfig,
    tl: TransferLog<TL>,
    link: Link,
    next_id: RequestId,
    seq: u32,
    epoch: u32,
    epoch_writes: u32,
    /// A write of the current epoch completed: the epoch must close.
    close_due: bool,
}

impl<const TL: usize> Primary<TL> {
    /// A primary with no connection yet.
    pub fn new(cfg: PrimaryConfig) -> Self {
        Primary {
            cfg,
            tl: TransferLog::new(),
            link: Link::Disconnected,
            next_id: 1,
            seq: 0,
            epoch: 1,
            epoch_writes: 0,
            close_due: false,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &PrimaryConfig {
        &self.cfg
    }

    /// The link state.
    pub fn link(&self) -> Link {
        self.link
    }

    /// The transfer log.
    pub fn transfer_log(&self) -> &TransferLog<TL> {
        &self.tl
    }

    /// The number of the epoch writes currently go into.
    pub fn epoch(&self) -> u32 {
        self.epoch
    }

    /// The connection is up (after the handshake); `syncing` while a resync runs. The sequence
    /// number restarts (§3.1); `agreed` replaces the configured one.
    pub fn connected(&mut self, agreed: Agreed, syncing: bool) {
        self.cfg.agreed = agreed;
        self.seq = 0;
        self.epoch_writes = 0;
        self.link = if syncing {
            Link::Syncing
        } else {
            Link::Connected
        };
    }

    /// The resync started or finished while connected.
    pub fn set_syncing(&mut self, syncing: bool) {
        if self.link != Link::Disconnected {
            self.link = if syncing {
                Link::Syncing
            } else {
                Link::Connected
            };
        }
    }

    /// The connection is lost: every write not barrier-acked is marked dirty and stops waiting
    /// for the peer (§5). Returns bits newly set.
    pub fn connection_lost(&mut self, bitmap: &mut DirtyBitmap<'_>) -> u64 {
        self.link = Link::Disconnected;
        if self.epoch_writes > 0 {
            self.epoch = self.epoch.wrapping_add(1);
        }
        self.epoch_writes = 0;
        self.tl.connection_lost(bitmap)
    }

    fn barrier_frame(&self) -> Frame<'static> {
        Frame {
            command: Command::Barrier,
            volume: super::wire::command::VOLUME_CONNECTION,
            body: Body::Barrier(BarrierFields {
                barrier: BarrierNr::from_host(self.epoch),
            }),
        }
    }

    /// Submits an application write of `data` at `sector`: emits [P_BARRIER +] P_DATA into
    /// `out` when connected, or marks the blocks dirty when not. Nothing changes on an error
    /// (a full transfer log, a short `out`: see `required`).
    pub fn write(
        &mut self,
        sector: u64,
        data: &[u8],
        flags: WriteFlags,
        bitmap: &mut DirtyBitmap<'_>,
        out: &mut [u8],
    ) -> Result<Submitted, DataError> {
        let size = data.len() as u64;
        check_io(
            sector,
            size,
            max_bio_size(&self.cfg.agreed),
            bitmap.capacity_sectors(),
        )?;
        if self.tl.is_full() {
            return Err(DataError::Full {
                what: "transfer log",
                capacity: TL,
            });
        }
        let id = self.next_id;
        let mut entry = TlEntry {
            id,
            sector,
            size: data.len() as u32,
            epoch: self.epoch,
            flags: flag::LOCAL_PENDING,
        };
        let mut len = 0;
        if self.link == Link::Disconnected {
            bitmap.set_sectors(sector, size)?;
        } else {
            let agreed = self.cfg.agreed;
            let new_epoch = self.epoch_writes > 0
                && (flags.flush || self.close_due || self.epoch_writes >= self.cfg.max_epoch_size);
            if new_epoch {
                len = self.barrier_frame().emit(&agreed, out)?;
                entry.epoch = self.epoch.wrapping_add(1);
            }
            let syncing = self.link == Link::Syncing;
            let mut dp_flags = flags.dp();
            if agreed.pv.is_some_and(|pv| pv >= 100) {
                dp_flags |= match self.cfg.protocol {
                    Protocol::A => 0,
                    Protocol::B => dp::SEND_RECEIVE_ACK,
                    Protocol::C => dp::SEND_WRITE_ACK,
                };
            }
            if syncing {
                dp_flags |= dp::MAY_SET_IN_SYNC | dp::SEND_WRITE_ACK;
            }
            let seq = self.seq.wrapping_add(1);
            let frame = Frame::new(
                Command::Data,
                self.cfg.volume,
                Body::Data(DataRepr {
                    fields: DataFields {
                        sector,
                        block_id: BlockId::from_host(id),
                        seq_num: seq,
                        dp_flags,
                    },
                    digest: &[],
                    data,
                }),
            )?;
            len += frame.emit(&agreed, out.get_mut(len..).unwrap_or(&mut []))?;
            self.seq = seq;
            if new_epoch {
                self.epoch = entry.epoch;
                self.epoch_writes = 0;
                self.close_due = false;
            }
            self.epoch_writes += 1;
            entry.flags |= flag::BARRIER_PENDING;
            entry.flags |= match self.cfg.protocol {
                Protocol::A => flag::REPLICATED,
                Protocol::B | Protocol::C => flag::NET_PENDING,
            };
        }
        self.tl.push(entry)?;
        self.next_id += 1;
        Ok(Submitted { id, len })
    }

    /// Closes the current epoch if it holds writes: emits P_BARRIER into `out` (call when the
    /// data socket's send queue is empty, and for an empty flush). `None` when there is nothing
    /// to close or no connection.
    pub fn poll_barrier(&mut self, out: &mut [u8]) -> Result<Option<usize>, DataError> {
        if self.link == Link::Disconnected || self.epoch_writes == 0 {
            self.close_due = false;
            return Ok(None);
        }
        let n = self.barrier_frame().emit(&self.cfg.agreed, out)?;
        self.epoch = self.epoch.wrapping_add(1);
        self.epoch_writes = 0;
        self.close_due = false;
        Ok(Some(n))
    }

    /// True when a write of the open epoch has completed, so the epoch must close now
    /// ([`Self::poll_barrier`]).
    pub fn close_due(&self) -> bool {
        self.close_due
    }

    /// The local disk write of `id` finished.
    pub fn local_done(&mut self, id: RequestId, ok: bool) -> Result<(), DataError> {
        if self
            .tl
            .get(id)
            .is_none_or(|e| e.flags & flag::LOCAL_PENDING == 0)
        {
            return Err(DataError::StaleToken);
        }
        let failed = if ok { 0 } else { flag::LOCAL_FAILED };
        self.tl.modify(id, failed, flag::LOCAL_PENDING);
        Ok(())
    }

    /// The next write that left the transfer log (barrier-acked or marked dirty, and reported):
    /// release its activity-log extents now ([`super::activity_log::ActivityLog::end_write`]).
    /// Holding them until here is what makes the AL cover every write the peer may lack.
    pub fn poll_retired(&mut self) -> Option<Retired> {
        self.tl.poll_retired()
    }

    /// True while a local write overlapping `len` bytes at `sector` is unfinished: a resync read
    /// of that range must wait for it (so the reply is not older than what the peer was sent).
    pub fn local_write_pending(&self, sector: u64, len: u64) -> bool {
        let end = sector.saturating_add(len.div_ceil(512));
        self.tl.iter().any(|e| {
            e.flags & flag::LOCAL_PENDING != 0
                && e.sector < end
                && sector < e.sector + u64::from(e.size) / 512
        })
    }

    /// The next application write that is complete (local write done, peer net OK or gone).
    pub fn poll_completion(&mut self) -> Option<Completion> {
        let c = self.tl.poll_completion()?;
        if self.link != Link::Disconnected
            && self.epoch_writes > 0
            && self.tl.get(c.id).is_some_and(|e| e.epoch == self.epoch)
        {
            self.close_due = true;
        }
        Some(c)
    }

    /// An ack from the meta socket: P_RECV_ACK, P_WRITE_ACK, P_WRITE_ACK_IN_SYNC, P_NEG_ACK, or
    /// P_RS_WRITE_ACK with a real block id below pv 122 (a write ack that also sets in sync,
    /// §3.3; [`super::resync::route`] tells which machine takes an ack).
    pub fn handle_ack(
        &mut self,
        command: Command,
        ack: &BlockAckFields,
        bitmap: &mut DirtyBitmap<'_>,
    ) -> Result<(), DataError> {
        let id = ack.block_id.to_host();
        let unknown = DataError::UnknownRequest {
            command,
            sector: ack.sector,
            block_id: id,
        };
        if self.link == Link::Disconnected {
            return Err(unknown);
        }
        let Some(e) = self.tl.get(id).copied() else {
            return Err(unknown);
        };
        if e.sector != ack.sector || e.size != ack.blksize {
            return Err(DataError::AckMismatch {
                command,
                expected_sector: e.sector,
                expected_size: e.size,
                sector: ack.sector,
                size: ack.blksize,
            });
        }
        let size = u64::from(e.size);
        match command {
            Command::RecvAck => {
                if self.cfg.protocol == Protocol::B && e.flags & flag::NET_PENDING != 0 {
                    self.tl.modify(id, flag::REPLICATED, flag::NET_PENDING);
                }
            }
            Command::WriteAck => {
                if e.flags & flag::NET_PENDING != 0 {
                    self.tl.modify(id, flag::REPLICATED, flag::NET_PENDING);
                }
            }
            Command::WriteAckInSync | Command::RsWriteAck => {
                bitmap.clear_sectors(e.sector, size)?;
                if e.flags & flag::NET_PENDING != 0 {
                    self.tl.modify(id, flag::REPLICATED, flag::NET_PENDING);
                }
            }
            Command::NegAck => {
                bitmap.set_sectors(e.sector, size)?;
                self.tl.modify(id, 0, flag::NET_PENDING | flag::REPLICATED);
            }
            _ => return Err(DataError::Unexpected { command }),
        }
        Ok(())
    }

    /// P_BARRIER_ACK: the oldest closed epoch is on the peer's stable storage; its writes leave
    /// the transfer log once complete. The number and count must match (§5, §10.11).
    pub fn handle_barrier_ack(&mut self, ack: &BarrierAckFields) -> Result<(), DataError> {
        let got = ack.barrier.to_host();
        let open = self
            .tl
            .oldest_unacked()
            .is_some_and(|(e, _)| e == self.epoch && self.epoch_writes > 0);
        if self.link == Link::Disconnected || open {
            return Err(DataError::BarrierMismatch {
                expected: None,
                got,
                expected_size: 0,
                got_size: ack.set_size,
            });
        }
        self.tl.barrier_acked(got, ack.set_size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repl::wire::HeaderKind;
    use std::vec;

    fn frames(buf: &[u8], agreed: &Agreed) -> std::vec::Vec<Command> {
        let mut at = 0;
        let mut out = vec![];
        while at < buf.len() {
            let (f, n) = Frame::parse(&buf[at..], agreed).unwrap();
            out.push(f.command);
            at += n;
        }
        out
    }

    fn ack(id: u64, sector: u64) -> BlockAckFields {
        BlockAckFields {
            sector,
            block_id: BlockId::from_host(id),
            blksize: 4096,
            seq_num: 1,
        }
    }

    #[test]
    fn protocol_c_completes_on_write_ack_and_leaves_on_barrier_ack() {
        let agreed = Agreed::new(122, 0);
        let mut p = Primary::<8>::new(PrimaryConfig::new(Protocol::C, agreed));
        p.connected(agreed, false);
        let mut store = [0u8; 8];
        let mut bm = DirtyBitmap::new(&mut store, 64 * 8).unwrap();
        let mut out = [0u8; 8192];
        let data = [0x5A; 4096];
        let s = p
            .write(8, &data, WriteFlags::default(), &mut bm, &mut out)
            .unwrap();
        assert_eq!((s.id, s.len), (1, 16 + 24 + 4096));
        let (f, _) = Frame::parse(&out[..s.len], &agreed).unwrap();
        let Body::Data(d) = f.body else { panic!() };
        assert_eq!(d.fields.dp_flags, dp::SEND_WRITE_ACK);
        assert_eq!((d.fields.seq_num, d.fields.sector), (1, 8));
        p.local_done(1, true).unwrap();
        assert_eq!(p.poll_completion(), None);
        p.handle_ack(Command::RecvAck, &ack(1, 8), &mut bm).unwrap();
        assert_eq!(p.poll_completion(), None);
        p.handle_ack(Command::WriteAck, &ack(1, 8), &mut bm)
            .unwrap();
        assert_eq!(
            p.poll_completion(),
            Some(Completion {
                id: 1,
                local_ok: true,
                replicated: true
            })
        );
        assert_eq!(p.transfer_log().len(), 1);
        let n = p.poll_barrier(&mut out).unwrap().unwrap();
        assert_eq!(frames(&out[..n], &agreed), [Command::Barrier]);
        p.handle_barrier_ack(&BarrierAckFields {
            barrier: BarrierNr::from_host(1),
            set_size: 1,
        })
        .unwrap();
        assert!(p.transfer_log().is_empty());
        assert_eq!(bm.count(), 0);
        assert!(matches!(
            p.handle_ack(Command::WriteAck, &ack(1, 8), &mut bm),
            Err(DataError::UnknownRequest { .. })
        ));
    }

    #[test]
    fn epochs_close_at_max_size_and_before_flush() {
        let agreed = Agreed::new(96, 0);
        let mut cfg = PrimaryConfig::new(Protocol::A, agreed);
        cfg.max_epoch_size = 2;
        let mut p = Primary::<8>::new(cfg);
        p.connected(agreed, false);
        let mut store = [0u8; 8];
        let mut bm = DirtyBitmap::new(&mut store, 64 * 8).unwrap();
        let mut out = [0u8; 8192];
        let d = [1u8; 512];
        let (mut cmds, mut ids) = (vec![], vec![]);
        for (i, flush) in [false, false, false, true].into_iter().enumerate() {
            let f = WriteFlags {
                flush,
                ..WriteFlags::default()
            };
            let s = p.write(i as u64, &d, f, &mut bm, &mut out).unwrap();
            cmds.extend(frames(&out[..s.len], &agreed));
            ids.push(s.id);
        }
        use Command::{Barrier as B, Data as D};
        assert_eq!(cmds, [D, D, B, D, B, D]);
        // Protocol A: complete once the local write is done.
        for id in ids {
            p.local_done(id, true).unwrap();
            assert!(p.poll_completion().unwrap().replicated);
        }
        p.poll_barrier(&mut out).unwrap().unwrap();
        // pv 96: no ack bits; h80 headers.
        let s = p
            .write(9, &d, WriteFlags::default(), &mut bm, &mut out)
            .unwrap();
        assert_eq!(s.len, HeaderKind::H80.size() + 24 + 512);
        let (f, _) = Frame::parse(&out[..s.len], &agreed).unwrap();
        let Body::Data(dd) = f.body else { panic!() };
        assert_eq!(dd.fields.dp_flags, 0);
        assert_eq!(p.transfer_log().oldest_unacked(), Some((1, 2)));
        assert!(p
            .handle_barrier_ack(&BarrierAckFields {
                barrier: BarrierNr::from_host(1),
                set_size: 3
            })
            .is_err());
    }

    /// DRBD's rule: a completion closes its epoch (what the application writes after seeing
    /// it must be ordered after it), while writes in flight together share one epoch.
    #[test]
    fn a_completion_closes_its_epoch() {
        let agreed = Agreed::new(122, 0);
        let mut p = Primary::<8>::new(PrimaryConfig::new(Protocol::C, agreed));
        p.connected(agreed, false);
        let mut store = [0u8; 8];
        let mut bm = DirtyBitmap::new(&mut store, 64 * 8).unwrap();
        let mut out = [0u8; 8192];
        let d = [1u8; 4096];
        let mut cmds = vec![];
        let mut write = |p: &mut Primary<8>, sector: u64, cmds: &mut std::vec::Vec<Command>| {
            let s = p
                .write(sector, &d, WriteFlags::default(), &mut bm, &mut out)
                .unwrap();
            cmds.extend(frames(&out[..s.len], &agreed));
            p.local_done(s.id, true).unwrap();
            s.id
        };
        let w1 = write(&mut p, 0, &mut cmds);
        write(&mut p, 8, &mut cmds);
        assert!(!p.close_due());
        // w1 completes: the epoch {w1, w2} must close; w3 opens the next one behind a barrier.
        let mut st = [0u8; 8];
        let mut bm2 = DirtyBitmap::new(&mut st, 64 * 8).unwrap();
        p.handle_ack(Command::WriteAck, &ack(w1, 0), &mut bm2)
            .unwrap();
        assert_eq!(p.poll_completion().map(|c| c.id), Some(w1));
        assert!(p.close_due());
        write(&mut p, 16, &mut cmds);
        assert!(!p.close_due());
        use Command::{Barrier as B, Data as D};
        assert_eq!(cmds, [D, D, B, D]);
        assert_eq!(p.transfer_log().oldest_unacked(), Some((1, 2)));
        // A completion of an older epoch's write does not close the open one.
        p.handle_ack(Command::WriteAck, &ack(2, 8), &mut bm2)
            .unwrap();
        assert_eq!(p.poll_completion().map(|c| c.id), Some(2));
        assert!(!p.close_due());
    }

    #[test]
    fn neg_ack_and_connection_loss_mark_dirty() {
        let agreed = Agreed::new(122, 0);
        let mut p = Primary::<4>::new(PrimaryConfig::new(Protocol::B, agreed));
        p.connected(agreed, true);
        let mut store = [0u8; 8];
        let mut bm = DirtyBitmap::new(&mut store, 64 * 8).unwrap();
        let mut out = [0u8; 8192];
        let d = [1u8; 4096];
        let s1 = p
            .write(0, &d, WriteFlags::default(), &mut bm, &mut out)
            .unwrap();
        let (f, _) = Frame::parse(&out[..s1.len], &agreed).unwrap();
        let Body::Data(dd) = f.body else { panic!() };
        assert_eq!(
            dd.fields.dp_flags,
            dp::SEND_RECEIVE_ACK | dp::SEND_WRITE_ACK | dp::MAY_SET_IN_SYNC
        );
        let s2 = p
            .write(8, &d, WriteFlags::default(), &mut bm, &mut out)
            .unwrap();
        p.handle_ack(Command::NegAck, &ack(s1.id, 0), &mut bm)
            .unwrap();
        assert!(bm.test(0));
        assert!(matches!(
            p.handle_ack(Command::WriteAck, &ack(s2.id, 16), &mut bm),
            Err(DataError::AckMismatch { .. })
        ));
        assert_eq!(p.connection_lost(&mut bm), 1);
        assert_eq!(bm.count(), 2);
        // A write while disconnected is dirty at once and emits nothing.
        let s3 = p
            .write(16, &d, WriteFlags::default(), &mut bm, &mut out)
            .unwrap();
        assert_eq!(s3.len, 0);
        assert_eq!(bm.count(), 3);
        for id in [s1.id, s2.id, s3.id] {
            p.local_done(id, true).unwrap();
        }
        let done: std::vec::Vec<_> = core::iter::from_fn(|| p.poll_completion()).collect();
        assert!(done.iter().all(|c| !c.replicated && c.local_ok));
        assert_eq!(done.len(), 3);
        assert!(p.transfer_log().is_empty());
        assert_eq!(p.local_done(s1.id, true), Err(DataError::StaleToken));
        assert!(matches!(
            p.write(0, &d[..100], WriteFlags::default(), &mut bm, &mut out),
            Err(DataError::BadSize { size: 100, .. })
        ));
    }
}
