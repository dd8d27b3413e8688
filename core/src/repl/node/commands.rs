//! The administrative commands of [`Node`] (drbdsetup's verbs for one resource) and `status`.
//! Each either takes effect at once or fails with a [`NodeError`] naming why; the ones the peer
//! must agree to while connected (invalidate, invalidate-remote) send P_STATE_CHG_REQ and take
//! effect on the reply ([`NodeEvent::StateChangeRefused`] if refused).

use super::meta::{md_flag, MetaState};
use super::types::{NodeError, NodeEvent, ResyncStatus, Status, SyncSide};
use super::{Node, Request, VOLUME};
use crate::repl::bitmap::{DirtyBitmap, BLOCK_SHIFT};
use crate::repl::conn::{CommandError, ConnState, DiskState, Entropy, ReplState, Role};

impl<R: Entropy, B: AsRef<[u8]> + AsMut<[u8]>, const AL: usize> Node<R, B, AL> {
    fn connected(&self) -> bool {
        self.conn.conn_state() == ConnState::Connected
    }

    fn attached(&self) -> Result<(), NodeError> {
        match self.disk() {
            DiskState::Diskless | DiskState::Failed | DiskState::Detaching => {
                Err(NodeError::Diskless)
            }
            _ => Ok(()),
        }
    }

    /// `primary [--force]`. Without `force` the disk must be UpToDate; `force` declares an
    /// Inconsistent or Outdated disk UpToDate first (DRBD's `--force`: this node's data wins),
    /// refused while this node is being resynced. Promotion without the peer starts a new data
    /// generation; writes wait until PRIMARY_IND is on disk.
    pub fn primary(&mut self, now: u64, force: bool) -> Result<(), NodeError> {
        self.now = now;
        if self.role() == Role::Primary {
            return Ok(());
        }
        self.attached()?;
        let forced = force && self.disk() != DiskState::UpToDate;
        if forced {
            if matches!(
                self.repl(),
                ReplState::WFBitMapT
                    | ReplState::WFSyncUUID
                    | ReplState::SyncTarget
                    | ReplState::PausedSyncT
            ) {
                return Err(NodeError::ResyncRunning);
            }
            self.set_disk(DiskState::UpToDate);
            if self.connected() {
                // DRBD starts a new data generation on every forced promotion; while connected
                // the role change alone would not, and the pair would keep the just-created
                // UUID through the initial sync.
                let mut g = self.generation();
                g.new_current(self.conn.entropy(), true);
                self.set_generation(g);
                // The peer adopts these UUIDs when the initial sync to it ends.
                let _ = self.conn.announce_uuids(VOLUME);
            }
        }
        self.conn.set_role(now, Role::Primary)?;
        self.meta_gate = self.persist_meta();
        self.event(NodeEvent::RoleChanged {
            role: Role::Primary,
        });
        // A forced promotion while connected to a peer without good data is how a fresh pair
        // gets its initial sync (DRBD sends its new UUIDs so that the peer syncs from it): the
        // peer is asked for a full sync from here.
        let peer_disk = self.conn.volume(VOLUME).map(|v| v.peer_disk());
        if forced
            && self.connected()
            && self.repl() == ReplState::Established
            && peer_disk.is_some_and(|d| d <= DiskState::Inconsistent)
        {
            let _ = self.invalidate_remote(now);
        }
        self.pump(now);
        Ok(())
    }

    /// `secondary`. Writes already submitted still complete.
    pub fn secondary(&mut self, now: u64) -> Result<(), NodeError> {
        self.now = now;
        if self.role() == Role::Secondary {
            return Ok(());
        }
        self.conn.set_role(now, Role::Secondary)?;
        self.persist_meta();
        self.event(NodeEvent::RoleChanged {
            role: Role::Secondary,
        });
        self.pump(now);
        Ok(())
    }

    /// `connect [--discard-my-data]`: start connecting (only from StandAlone). With
    /// `discard_my_data` this node's changes lose a split brain (used by the next handshake).
    pub fn connect(&mut self, now: u64, discard_my_data: bool) -> Result<(), NodeError> {
        self.now = now;
        if self.conn.conn_state() != ConnState::StandAlone {
            return Err(NodeError::Command(CommandError::NotStandAlone));
        }
        // A Primary's data is what its users see; it cannot be the side that gives way (DRBD
        // checks this with the net options, after the state).
        if discard_my_data && self.role() == Role::Primary {
            return Err(NodeError::Primary);
        }
        self.conn.set_discard_my_data(discard_my_data);
        self.conn.connect(now);
        self.pump(now);
        Ok(())
    }

    /// `disconnect`: close the connection and stay StandAlone. Writes not yet barrier-acked are
    /// marked out of sync.
    pub fn disconnect(&mut self, now: u64) -> Result<(), NodeError> {
        self.now = now;
        if self.conn.conn_state() == ConnState::StandAlone {
            return Err(NodeError::StandAlone);
        }
        self.conn.disconnect(now);
        self.pump(now);
        Ok(())
    }

    /// `attach`: take a disk's persisted state (as [`Self::new`] does), only while Diskless and
    /// StandAlone. The bitmap storage given to `new` is reused.
    pub fn attach(&mut self, now: u64, meta: MetaState, al_ring: &[u8]) -> Result<(), NodeError> {
        self.now = now;
        if self.disk() != DiskState::Diskless {
            return Err(NodeError::Attached);
        }
        if self.conn.conn_state() != ConnState::StandAlone {
            return Err(NodeError::Connected);
        }
        self.load_disk(meta, al_ring)?;
        self.pump(now);
        Ok(())
    }

    /// `detach`: an orderly goodbye to the disk (Secondary, StandAlone, no write in flight):
    /// bitmap and meta data (with AL_CLEAN) go out as the last operations, then Diskless.
    pub fn detach(&mut self, now: u64) -> Result<(), NodeError> {
        self.now = now;
        self.attached()?;
        if self.role() == Role::Primary {
            return Err(NodeError::Primary);
        }
        if self.conn.conn_state() != ConnState::StandAlone {
            return Err(NodeError::Connected);
        }
        if !self.primary.transfer_log().is_empty() || !self.held.is_empty() {
            return Err(NodeError::Busy);
        }
        self.flags |= md_flag::AL_CLEAN;
        self.persist_bitmap_all();
        self.persist_meta();
        let _ = self.conn.set_disk(VOLUME, DiskState::Diskless);
        self.event(NodeEvent::DiskChanged {
            disk: DiskState::Diskless,
        });
        self.pump(now);
        Ok(())
    }

    /// `invalidate`: this node's data is thrown away and fully resynced from the peer. While
    /// connected and in sync the peer is asked first (P_STATE_CHG_REQ); otherwise every bit is
    /// set and the disk becomes Inconsistent, so the next handshake makes this node target.
    pub fn invalidate(&mut self, now: u64) -> Result<(), NodeError> {
        self.now = now;
        self.attached()?;
        if self.role() == Role::Primary {
            return Err(NodeError::Primary);
        }
        if self.request.is_some() {
            return Err(NodeError::RequestPending);
        }
        if self.connected() {
            if self.repl() != ReplState::Established {
                return Err(NodeError::ResyncRunning);
            }
            if !self.request_conn_state(ReplState::StartingSyncT) {
                return Err(NodeError::Busy);
            }
            self.request = Some(Request::Invalidate);
        } else {
            self.bits.with(|bm| bm.set_all());
            self.persist_bitmap_all();
            self.set_disk(DiskState::Inconsistent);
        }
        self.pump(now);
        Ok(())
    }

    /// `invalidate-remote`: the peer's data is overwritten by a full sync from here (needs an
    /// UpToDate disk). While connected and in sync the peer is asked first; otherwise every bit
    /// is set and, if no bitmap UUID tracks the peer yet, a new data generation starts, so the
    /// next handshake makes this node source.
    pub fn invalidate_remote(&mut self, now: u64) -> Result<(), NodeError> {
        self.now = now;
        if self.disk() != DiskState::UpToDate {
            return Err(NodeError::NoUpToDateDisk);
        }
        if self.request.is_some() {
            return Err(NodeError::RequestPending);
        }
        if self.connected() {
            if self.repl() != ReplState::Established {
                return Err(NodeError::ResyncRunning);
            }
            if !self.request_conn_state(ReplState::StartingSyncS) {
                return Err(NodeError::Busy);
            }
            self.request = Some(Request::InvalidateRemote);
        } else {
            self.bits.with(|bm| bm.set_all());
            self.persist_bitmap_all();
            let mut g = self.generation();
            if g.bitmap == 0 {
                let primary = self.role() == Role::Primary;
                g.new_current(self.conn.entropy(), primary);
                self.set_generation(g);
            }
        }
        self.pump(now);
        Ok(())
    }

    /// `pause-sync`: no resync requests from here until `resume-sync` (the peer sees
    /// `user_isp` and pauses too).
    pub fn pause_sync(&mut self, now: u64) -> Result<(), NodeError> {
        self.now = now;
        self.conn.set_user_isp(VOLUME, true)?;
        self.apply_pause(now);
        self.pump(now);
        Ok(())
    }

    /// `resume-sync`.
    pub fn resume_sync(&mut self, now: u64) -> Result<(), NodeError> {
        self.now = now;
        self.conn.set_user_isp(VOLUME, false)?;
        self.apply_pause(now);
        self.pump(now);
        Ok(())
    }

    /// `new-current-uuid [--clear-bitmap]`, while not connected and UpToDate: starts a new data
    /// generation (§6.1); `clear_bitmap` also forgets every out-of-sync bit and the bitmap UUID.
    pub fn new_current_uuid(&mut self, now: u64, clear_bitmap: bool) -> Result<(), NodeError> {
        self.now = now;
        if self.connected() {
            return Err(NodeError::Connected);
        }
        if self.disk() != DiskState::UpToDate {
            return Err(NodeError::NoUpToDateDisk);
        }
        let mut g = self.generation();
        let primary = self.role() == Role::Primary;
        g.new_current(self.conn.entropy(), primary);
        if clear_bitmap {
            g.bitmap = 0;
            self.bits.with(|bm| bm.clear_all());
            self.persist_bitmap_all();
        }
        self.set_generation(g);
        self.pump(now);
        Ok(())
    }

    /// The resource's state, as `drbdsetup status` shows it.
    pub fn status(&self, now: u64) -> Status {
        let v = self.conn.volume(VOLUME);
        let connected = self.connected();
        let peer_role = v
            .filter(|_| connected)
            .map_or(Role::Unknown, |v| v.peer_role());
        let peer_disk = v
            .filter(|_| connected)
            .map_or(DiskState::DUnknown, |v| v.peer_disk());
        let user_paused = v.is_some_and(|v| v.user_isp());
        let paused = self.paused();
        let resync = self.resync_side.map(|side| {
            // Progress needs only the bitmap's count, which a view over no bytes carries.
            let bm = DirtyBitmap::resume(&mut [], self.bits.capacity, self.bits.dirty);
            let p = match side {
                SyncSide::Target => self.target.progress(now, &bm),
                SyncSide::Source => self.source.progress(now, &bm),
            };
            ResyncStatus {
                side,
                total_bits: p.total_bytes >> BLOCK_SHIFT,
                left_bits: p.remaining_bytes >> BLOCK_SHIFT,
                failed_bits: p.failed_bytes >> BLOCK_SHIFT,
                rate: p.rate,
                eta_ms: p.eta_ms,
                paused,
            }
        });
        Status {
            role: self.role(),
            peer_role,
            conn: self.conn.conn_state(),
            repl: self.repl(),
            disk: self.disk(),
            peer_disk,
            out_of_sync_bits: self.bits.dirty,
            resync,
            user_paused,
            peer_paused: self.peer_paused,
            generation: self.generation(),
            writes_in_flight: self.primary.transfer_log().len(),
            size_sectors: self.size,
        }
    }
}
