//! Which machine takes each data-path packet once the connection is up (replication.md §5,
//! §6.4, §3.3 for the ack overloading below pv 122), and the peer's state-change requests
//! (§3.9: P_STATE_CHG_REQ answered with P_STATE_CHG_REPLY before the change is applied).
//!
//! Any refusal returned from here is a protocol error: the caller drops the connection (and
//! the connection machine retries).

use super::types::{Io, NodeEvent, WriteData};
use super::{Node, Op, Request, VOLUME};
use crate::repl::conn::{DiskState, Entropy, ReplState, Role};
use crate::repl::data_error::DataError;
use crate::repl::resync::{route, Route};
use crate::repl::secondary::WriteKind;
use crate::repl::wire::ack::BlockAckFields;
use crate::repl::wire::state::{ReqStateFields, State, StateReplyFields};
use crate::repl::wire::{Body, Command, Frame};

/// `SS_SUCCESS`.
pub(super) const SS_SUCCESS: i32 = 1;
/// `SS_TWO_PRIMARIES`.
const SS_TWO_PRIMARIES: i32 = -1;
/// `SS_NO_UP_TO_DATE_DISK`.
const SS_NO_UP_TO_DATE_DISK: i32 = -2;
/// `SS_RESYNC_RUNNING`.
const SS_RESYNC_RUNNING: i32 = -8;
/// `SS_NOT_SUPPORTED`.
const SS_NOT_SUPPORTED: i32 = -17;
/// `SS_CONCURRENT_ST_CHG`.
const SS_CONCURRENT_ST_CHG: i32 = -19;

/// A directional connection state seen from the other side (§3.9): StartingSyncS ↔ T,
/// WFBitMapS ↔ T, VerifyS → VerifyT, Disconnecting → TearDown.
fn mirror_conn(c: u32) -> u32 {
    match c {
        11 => 12,
        12 => 11,
        13 => 14,
        14 => 13,
        18 => 19,
        1 => 7,
        c => c,
    }
}

impl<R: Entropy, B: AsRef<[u8]> + AsMut<[u8]>, const AL: usize> Node<R, B, AL> {
    /// A data-path frame from the connection machine.
    pub(super) fn on_frame<'a>(
        &mut self,
        now: u64,
        frame: Frame<'a>,
    ) -> Result<Option<Io<'a>>, DataError> {
        use Command as C;
        let unexpected = DataError::Unexpected {
            command: frame.command,
        };
        match (frame.command, frame.body) {
            (C::Data | C::Trim | C::Zeroes, _) => self.on_write(&frame),
            (C::Barrier, Body::Barrier(b)) => {
                self.secondary.handle_barrier(&b)?;
                Ok(None)
            }
            (C::RsDataRequest, _) => {
                self.on_rs_request(&frame)?;
                Ok(None)
            }
            (C::RsDataReply, _) => self.on_rs_reply(&frame),
            (C::BarrierAck, Body::BarrierAck(a)) => {
                self.primary.handle_barrier_ack(&a)?;
                Ok(None)
            }
            (C::Bitmap | C::CompressedBitmap, _) => {
                self.on_bitmap(now, &frame)?;
                Ok(None)
            }
            (C::SyncUuid, Body::SyncUuid(u)) => {
                self.on_sync_uuid(now, u.uuid)?;
                Ok(None)
            }
            (C::StateChgReq | C::ConnStChgReq, Body::ReqState(r)) => {
                self.on_state_request(now, frame.command, frame.volume, r)?;
                Ok(None)
            }
            (C::StateChgReply | C::ConnStChgReply, Body::StateReply(r)) => {
                self.on_state_reply(now, r.retcode);
                Ok(None)
            }
            (C::OutOfSync, Body::BlockDesc(d)) => {
                self.bits
                    .with(|bm| bm.set_sectors(d.sector, u64::from(d.blksize)))?;
                Ok(None)
            }
            (C::DataRequest, Body::BlockReq(r)) => {
                // Reads for a diskless peer are not served: it gets a negative reply.
                let ack = BlockAckFields {
                    sector: r.sector,
                    block_id: r.block_id,
                    blksize: r.blksize,
                    seq_num: 0,
                };
                let f = Frame::new(C::NegDReply, frame.volume, Body::BlockAck(ack))?;
                self.send_meta(&f);
                Ok(None)
            }
            // The peer's UUIDs while connected (after its resync or a forced promotion): a
            // SyncTarget adopts them when its resync ends.
            (C::Uuids, Body::Uuids(u)) => {
                let _ = self.conn.set_peer_uuids(frame.volume, u.into());
                Ok(None)
            }
            // Announcements that need no action here: sizes and resync parameters while
            // connected, unplug hints.
            (C::Uuids | C::Sizes | C::SyncParam | C::SyncParam89 | C::UnplugRemote, _) => Ok(None),
            (_, Body::BlockAck(a)) => {
                self.on_ack(&frame, a)?;
                Ok(None)
            }
            _ => Err(unexpected),
        }
    }

    fn on_ack(&mut self, frame: &Frame<'_>, a: BlockAckFields) -> Result<(), DataError> {
        let command = frame.command;
        let agreed = self.agreed();
        let (bits, primary, source, target) = (
            &mut self.bits,
            &mut self.primary,
            &mut self.source,
            &mut self.target,
        );
        match route(command, a.block_id, &agreed) {
            Some(Route::Primary) => bits.with(|bm| primary.handle_ack(command, &a, bm)),
            Some(Route::SyncSource) => bits.with(|bm| source.handle_ack(command, &a, bm)),
            Some(Route::SyncTarget) => bits.with(|bm| target.handle_reply(frame, bm).map(|_| ())),
            _ => Err(DataError::Unexpected { command }),
        }
    }

    /// P_DATA / P_TRIM / P_ZEROES: a replicated write (§5, receiving side).
    fn on_write<'a>(&mut self, frame: &Frame<'a>) -> Result<Option<Io<'a>>, DataError> {
        if self.role() == Role::Primary && !self.cfg.conn.allow_two_primaries {
            // Both nodes primary without allow-two-primaries: refuse rather than let two
            // writers diverge silently; the reconnect then finds the split brain.
            return Err(DataError::Unexpected {
                command: frame.command,
            });
        }
        let (bits, secondary, target, metaq) = (
            &mut self.bits,
            &mut self.secondary,
            &mut self.target,
            &mut self.metaq,
        );
        let r = bits.with(|bm| secondary.handle_data(frame, bm, target, metaq.spare(64)))?;
        self.metaq.commit(r.meta_len);
        let writable = !matches!(
            self.disk(),
            DiskState::Diskless | DiskState::Failed | DiskState::Detaching
        );
        let token = if writable {
            self.alloc(Op::SecWrite(r.write.token))
        } else {
            None
        };
        let Some(token) = token else {
            // No disk to write to (or no slot): fail it now, the primary marks it out of sync.
            let (bits, secondary, metaq) = (&mut self.bits, &mut self.secondary, &mut self.metaq);
            let n =
                bits.with(|bm| secondary.write_done(r.write.token, false, bm, metaq.spare(64)))?;
            self.metaq.commit(n);
            return Ok(None);
        };
        let data = match r.write.kind {
            WriteKind::Data(d) => WriteData::Bytes(d),
            WriteKind::Zeroes(n) => WriteData::Zeroes(n),
            WriteKind::Discard(n) => WriteData::Discard(n),
        };
        Ok(Some(Io::Write {
            token,
            sector: r.write.sector,
            data,
            flush: r.write.flush,
            fua: r.write.fua,
        }))
    }

    /// P_RS_DATA_REQUEST: the peer (SyncTarget) wants blocks; the read waits in
    /// `source_reads` until no local write to them is pending.
    fn on_rs_request(&mut self, frame: &Frame<'_>) -> Result<(), DataError> {
        let (bits, source) = (&mut self.bits, &mut self.source);
        let req = bits.with(|bm| source.handle_request(frame, bm))?;
        // A reply that could never fit the send queue is refused rather than waited for.
        let fits = req.size as usize + super::disk::REPLY_OVERHEAD + 8192 <= self.sendq.capacity();
        let readable = matches!(
            self.disk(),
            DiskState::UpToDate | DiskState::Consistent | DiskState::Outdated
        );
        if !readable || self.source_reads.is_full() || !fits {
            let (bits, source, metaq) = (&mut self.bits, &mut self.source, &mut self.metaq);
            let n = bits.with(|bm| source.read_failed(req.token, bm, metaq.spare(64)))?;
            self.metaq.commit(n);
            return Ok(());
        }
        let _ = self.source_reads.push_back(req);
        Ok(())
    }

    /// P_RS_DATA_REPLY: resync data to write here (SyncTarget).
    fn on_rs_reply<'a>(&mut self, frame: &Frame<'a>) -> Result<Option<Io<'a>>, DataError> {
        let (bits, target) = (&mut self.bits, &mut self.target);
        let Some(w) = bits.with(|bm| target.handle_reply(frame, bm))? else {
            return Ok(None);
        };
        let Some(token) = self.alloc(Op::Resync(w.token)) else {
            let (bits, target, metaq) = (&mut self.bits, &mut self.target, &mut self.metaq);
            let n = bits.with(|bm| target.write_done(w.token, false, bm, metaq.spare(64)))?;
            self.metaq.commit(n);
            return Ok(None);
        };
        Ok(Some(Io::Write {
            token,
            sector: w.sector,
            data: WriteData::Segments(w.segments()),
            flush: false,
            fua: false,
        }))
    }

    /// The peer's P_STATE_CHG_REQ / P_CONN_ST_CHG_REQ: decide, reply, then apply (8.4
    /// `receive_req_state`). Only the changes a two-node 8.4 peer asks for are acted on: a full
    /// sync either way (its invalidate / invalidate-remote), its promotion, its disconnect.
    fn on_state_request(
        &mut self,
        now: u64,
        command: Command,
        volume: u16,
        r: ReqStateFields,
    ) -> Result<(), DataError> {
        let (mask, val) = (State(r.mask), State(r.val));
        let conn = (mask.conn() != 0).then(|| mirror_conn(val.conn()));
        let peer_promotes = mask.role() != 0 && val.role() == Role::Primary.number();
        let established = self.repl() == ReplState::Established;
        let retcode = if self.request.is_some() && self.conn.resolve_conflicts() {
            // Both asked at once: the node holding RESOLVE_CONFLICTS keeps its own request.
            SS_CONCURRENT_ST_CHG
        } else {
            match conn {
                Some(c) if c == ReplState::StartingSyncS.number() => {
                    if !established {
                        SS_RESYNC_RUNNING
                    } else if self.disk() != DiskState::UpToDate {
                        SS_NO_UP_TO_DATE_DISK
                    } else {
                        SS_SUCCESS
                    }
                }
                Some(c) if c == ReplState::StartingSyncT.number() => {
                    if !established {
                        SS_RESYNC_RUNNING
                    } else if self.role() == Role::Primary {
                        // A primary target would have to read from its peer: not done here.
                        SS_NOT_SUPPORTED
                    } else {
                        SS_SUCCESS
                    }
                }
                // Disconnecting / TearDown: the peer closes the sockets next.
                Some(1 | 7) => SS_SUCCESS,
                Some(_) => SS_NOT_SUPPORTED,
                None if peer_promotes
                    && self.role() == Role::Primary
                    && !self.cfg.conn.allow_two_primaries =>
                {
                    SS_TWO_PRIMARIES
                }
                None => SS_SUCCESS,
            }
        };
        let reply = if command == Command::StateChgReq {
            Command::StateChgReply
        } else {
            Command::ConnStChgReply
        };
        let f = Frame::new(
            reply,
            volume,
            Body::StateReply(StateReplyFields { retcode }),
        )?;
        self.send_meta(&f);
        if retcode == SS_SUCCESS {
            if self.request.take().is_some() {
                // Our own request lost the race; the peer refuses it with this code.
                self.event(NodeEvent::StateChangeRefused {
                    retcode: SS_CONCURRENT_ST_CHG,
                });
            }
            match conn {
                Some(c) if c == ReplState::StartingSyncS.number() => self.start_full_source(now),
                Some(c) if c == ReplState::StartingSyncT.number() => self.start_full_target(now),
                _ => {}
            }
        }
        Ok(())
    }

    /// The peer's answer to our request.
    fn on_state_reply(&mut self, now: u64, retcode: i32) {
        let Some(req) = self.request.take() else {
            // A reply to a request already settled (P_SYNC_UUID overtook it) or never made.
            return;
        };
        if retcode < SS_SUCCESS {
            self.event(NodeEvent::StateChangeRefused { retcode });
            return;
        }
        match req {
            Request::Invalidate => self.start_full_target(now),
            Request::InvalidateRemote => self.start_full_source(now),
        }
    }

    /// Sends our state-change request: conn := `conn` (our perspective).
    pub(super) fn request_conn_state(&mut self, conn: ReplState) -> bool {
        let mask = State(0).with_conn(0x1F).0;
        let val = State(0).with_conn(conn.number()).0;
        match Frame::new(
            Command::StateChgReq,
            VOLUME,
            Body::ReqState(ReqStateFields { mask, val }),
        ) {
            Ok(f) => self.send_data(&f),
            Err(_) => false,
        }
    }
}
