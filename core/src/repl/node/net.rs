//! The network side of [`Node`]: socket events and received bytes go to the connection machine,
//! data-path frames it hands back go to `frames`, and after every input the pump moves the
//! machine's packets into the send queues (so the handshake's packets and the data path's stay
//! in the order they were caused) and its events into the data path.

use super::types::{NodeEvent, Received};
use super::{Node, VOLUME};
use crate::repl::conn::event::{DisconnectReason, Event, ProtocolViolation};
use crate::repl::conn::sync_handshake::Refusal;
use crate::repl::conn::{Action, ConnState, DiskState, Entropy, ReplState, SocketId, SocketRole};
use crate::repl::wire::{self, Command, HeaderRepr};

/// Largest packet the connection machine itself sends (handshake, P_STATE, pings).
const CONN_PACKET: usize = 512;
/// Bytes two acks take (h100 header + p_block_ack each), reserved per write in flight.
const ACK_PAIR: usize = 2 * (16 + 24);

impl<R: Entropy, B: AsRef<[u8]> + AsMut<[u8]>, const AL: usize> Node<R, B, AL> {
    /// Our outgoing connection `id` completed.
    pub fn handle_connected(&mut self, now: u64, id: SocketId) {
        self.now = now;
        self.conn.handle_connected(now, id);
        self.pump(now);
    }

    /// Our outgoing connection attempt failed.
    pub fn handle_connect_failed(&mut self, now: u64) {
        self.now = now;
        self.conn.handle_connect_failed(now);
        self.pump(now);
    }

    /// The listener accepted `id` from the peer.
    pub fn handle_accepted(&mut self, now: u64, id: SocketId) {
        self.now = now;
        self.conn.handle_accepted(now, id);
        self.pump(now);
    }

    /// Socket `id` closed.
    pub fn handle_closed(&mut self, now: u64, id: SocketId) {
        self.now = now;
        self.conn.handle_closed(now, id);
        self.pump(now);
    }

    /// Bytes received on socket `id`: consumes at most one packet (call again with the rest
    /// while `used > 0`). A write the packet carries comes back in [`Received::io`], borrowing
    /// `input`. See [`Received`] for `need` and `blocked`.
    pub fn handle_recv<'a>(&mut self, now: u64, id: SocketId, input: &'a [u8]) -> Received<'a> {
        self.now = now;
        if self.must_wait(id, input) {
            return Received {
                used: 0,
                need: None,
                blocked: true,
                io: None,
            };
        }
        let r = self.conn.handle_recv(now, id, input);
        let mut io = None;
        if let Some(frame) = r.frame {
            match self.on_frame(now, frame) {
                Ok(x) => io = x,
                Err(e) => self.conn.abort(
                    now,
                    DisconnectReason::ProtocolError(ProtocolViolation::DataPath(e)),
                ),
            }
        }
        self.peer_state_changed(now);
        self.pump(now);
        Received {
            used: r.used,
            need: r.need,
            blocked: false,
            io,
        }
    }

    /// Timers: call at or after [`Self::poll_timeout`] (or any time).
    pub fn handle_timeout(&mut self, now: u64) {
        self.now = now;
        self.conn.handle_timeout(now);
        self.pump(now);
    }

    /// The next deadline.
    pub fn poll_timeout(&self) -> Option<u64> {
        let conn = self.conn.poll_timeout();
        let resync = if self.target_may_request() {
            let (bits, target) = (&self.bits, &self.target);
            let bm = crate::repl::bitmap::DirtyBitmap::resume(&mut [], bits.capacity, bits.dirty);
            // The throttle only needs the count; an empty view carries it.
            target.poll_timeout(self.now, &bm)
        } else {
            None
        };
        match (conn, resync) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The next socket action (open a connection to the peer, close a socket).
    pub fn poll_action(&mut self) -> Option<Action> {
        self.conn.poll_action()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<NodeEvent> {
        self.events.pop_front()
    }

    /// [`Self::poll_transmit`] without the copy: `send` sees a socket's queued bytes in place
    /// and returns how many it took (0 when that socket is full; the data socket is offered
    /// next); those are gone. `None` when nothing is due or `send` took nothing.
    pub fn poll_transmit_with(
        &mut self,
        now: u64,
        mut send: impl FnMut(SocketId, &[u8]) -> usize,
    ) -> Option<(SocketId, usize)> {
        self.now = now;
        self.pump(now);
        if let Some(id) = self.meta_sock.filter(|_| self.metaq.len() > 0) {
            let n = self.metaq.take_with(u64::MAX, |b| send(id, b));
            if n > 0 {
                return Some((id, n));
            }
        }
        let id = self.data_sock?;
        if self.primary.close_due() {
            self.close_epoch();
        }
        let limit = self.stream_limit();
        let n = self.sendq.take_with(limit, |b| send(id, b));
        if n > 0 {
            self.pump(now);
            return Some((id, n));
        }
        None
    }

    /// The socket the data stream runs on, once known.
    pub fn data_socket(&self) -> Option<SocketId> {
        self.data_sock
    }

    /// Bytes for a socket: writes up to `buf.len()` bytes of the next socket's stream into
    /// `buf` and says which socket. Packets may be split across calls (the streams are TCP's).
    /// Drain it after every input; `None` when nothing is due.
    pub fn poll_transmit(&mut self, now: u64, buf: &mut [u8]) -> Option<(SocketId, usize)> {
        self.now = now;
        self.pump(now);
        if buf.is_empty() {
            return None;
        }
        if let Some(id) = self.meta_sock {
            let n = self.metaq.take(buf, u64::MAX);
            if n > 0 {
                return Some((id, n));
            }
        }
        let id = self.data_sock?;
        if self.primary.close_due() {
            // Closing at the completion found no room in the queue; it has some now.
            self.close_epoch();
        }
        let n = self.sendq.take(buf, self.stream_limit());
        if n > 0 {
            self.pump(now);
            return Some((id, n));
        }
        None
    }

    /// Stream position the data queue may be sent up to: the first write still waiting for
    /// its activity-log record holds everything after it.
    pub(super) fn stream_limit(&self) -> u64 {
        self.held.iter().find_map(|h| h.stream).unwrap_or(u64::MAX)
    }

    /// Emits P_BARRIER if the current epoch holds writes and the link is up.
    pub(super) fn close_epoch(&mut self) {
        let out = self.sendq.spare(64);
        if let Ok(Some(n)) = self.primary.poll_barrier(out) {
            self.sendq.commit(n);
        }
    }

    /// Back-pressure (DRBD's max-buffers): a data-socket packet that needs a slot or room the
    /// node does not have now stays in the shell's buffer.
    fn must_wait(&self, id: SocketId, input: &[u8]) -> bool {
        if self.conn.conn_state() != ConnState::Connected
            || self.conn.socket(SocketRole::Data) != Some(id)
        {
            return false;
        }
        let Ok(h) = HeaderRepr::parse(input) else {
            return false;
        };
        if input.len() < h.frame_len() {
            return false;
        }
        let in_flight = self.secondary.in_flight() + self.target.in_flight() + 1;
        let ack_room = self.metaq.free() >= in_flight * ACK_PAIR + 64 * 24 + 256;
        match h.command {
            Command::Data | Command::Trim | Command::Zeroes => {
                !self.secondary.can_accept() || !ack_room
            }
            Command::Barrier => !self.secondary.can_accept_barrier() || !ack_room,
            Command::RsDataRequest => !self.source.can_accept() || self.source_reads.is_full(),
            Command::RsDataReply | Command::StateChgReq | Command::ConnStChgReq => !ack_room,
            _ => false,
        }
    }

    /// Moves the connection machine's output into the queues and its events into the data
    /// path, then lets the data path make progress, until nothing moves.
    pub(super) fn pump(&mut self, now: u64) {
        for _ in 0..64 {
            self.sync_sockets();
            self.drain_conn_tx();
            let mut moved = false;
            while let Some(e) = self.conn.poll_event() {
                moved = true;
                self.on_conn_event(now, e);
            }
            moved |= self.step_data_path(now);
            if !moved {
                break;
            }
        }
    }

    /// One round of the data path; true if anything moved.
    fn step_data_path(&mut self, now: u64) -> bool {
        let mut moved = self.step_app();
        moved |= self.step_disk();
        moved |= self.step_requests(now);
        moved |= self.step_bitmap(now);
        moved |= self.step_finish(now);
        // The next handshake's P_UUIDS carries the bitmap's weight.
        let _ = self.conn.set_dirty_bits(VOLUME, self.bits.dirty);
        moved
    }

    /// The queues belong to the sockets that hold the roles now; a new socket starts empty.
    fn sync_sockets(&mut self) {
        let data = self.conn.socket(SocketRole::Data);
        if data != self.data_sock {
            self.sendq.clear();
            for h in self.held.iter_mut() {
                h.stream = None;
            }
            self.reserved = 0;
            self.data_sock = data;
        }
        let meta = self.conn.socket(SocketRole::Meta);
        if meta != self.meta_sock {
            self.metaq.clear();
            self.meta_sock = meta;
        }
    }

    /// Copies every packet the connection machine has for our sockets into their queues.
    pub(super) fn drain_conn_tx(&mut self) {
        if let Some(id) = self.data_sock {
            loop {
                let out = self.sendq.spare(CONN_PACKET);
                if out.len() < CONN_PACKET {
                    break;
                }
                match self.conn.poll_transmit(id, out) {
                    Ok(Some(n)) => self.sendq.commit(n),
                    _ => break,
                }
            }
        }
        if let Some(id) = self.meta_sock {
            loop {
                let out = self.metaq.spare(CONN_PACKET);
                if out.len() < CONN_PACKET {
                    break;
                }
                match self.conn.poll_transmit(id, out) {
                    Ok(Some(n)) => self.metaq.commit(n),
                    _ => break,
                }
            }
        }
    }

    fn on_conn_event(&mut self, now: u64, e: Event) {
        self.event(NodeEvent::Conn(e));
        match e {
            Event::SyncHandshake { decision, .. } => {
                self.outcome = decision.result.ok();
                match decision.result {
                    Err(Refusal::SplitBrain { auto_recoverable }) => {
                        self.event(NodeEvent::SplitBrain { auto_recoverable })
                    }
                    Err(refusal) => self.event(NodeEvent::HandshakeRefused { refusal }),
                    Ok(_) => {}
                }
            }
            Event::UuidsChanged { .. } => {
                self.persist_meta();
            }
            Event::Connected => self.on_connected(now),
            Event::Disconnected { .. } => self.on_disconnected(now),
            _ => {}
        }
    }

    fn on_connected(&mut self, now: u64) {
        let agreed = self.agreed();
        self.epoch = self.epoch.wrapping_add(1);
        self.primary.connected(agreed, false);
        self.secondary.reset(agreed);
        self.secondary.set_syncing(false);
        self.target = crate::repl::resync::SyncTarget::new(super::resync_config(&self.cfg, agreed));
        self.source = crate::repl::resync_source::SyncSource::new(agreed, VOLUME);
        self.request = None;
        // The handshake used the crashed-primary flag; it has done its job.
        let mut g = self.generation();
        if g.crashed_primary {
            g.crashed_primary = false;
            self.flags &= !super::md_flag::CRASHED_PRIMARY;
            self.set_generation(g);
        }
        self.flags |= super::md_flag::CONNECTED_IND;
        // 8.4's sanitize_state: Consistent and Outdated vanish once connected (the handshake
        // decided who has the good data); a target waiting for bitmaps is at most Outdated.
        let disk = self.disk();
        if self.repl() == ReplState::WFBitMapT {
            if matches!(disk, DiskState::UpToDate | DiskState::Consistent) {
                self.set_disk(DiskState::Outdated);
            }
        } else if matches!(disk, DiskState::Consistent | DiskState::Outdated) {
            self.set_disk(DiskState::UpToDate);
        }
        self.persist_meta();
        self.start_bitmap_exchange(now);
    }

    fn on_disconnected(&mut self, now: u64) {
        let was = self.resync_side.is_some() || self.xfer_tx.is_some() || self.xfer_rx.is_some();
        let (primary, bits) = (&mut self.primary, &mut self.bits);
        bits.with(|bm| primary.connection_lost(bm));
        self.secondary.reset(Default::default());
        self.secondary.set_syncing(false);
        self.target.stop(now);
        self.source.stop(now);
        self.xfer_tx = None;
        self.xfer_rx = None;
        self.outcome = None;
        self.source_reads.clear();
        self.purge_connection_ios();
        self.reserved = 0;
        self.request = None;
        self.resync_side = None;
        self.peer_word = 0;
        self.peer_paused = false;
        self.epoch = self.epoch.wrapping_add(1);
        self.flags &= !super::md_flag::CONNECTED_IND;
        if was {
            self.persist_bitmap_all();
        }
        self.persist_meta();
    }

    /// The peer's P_STATE moved: pause flags, or it finished a resync before us.
    fn peer_state_changed(&mut self, now: u64) {
        let Some(v) = self.conn.volume(VOLUME) else {
            return;
        };
        let word = v.peer_state();
        if word.0 == self.peer_word {
            return;
        }
        self.peer_word = word.0;
        self.peer_paused = word.aftr_isp() != 0 || word.user_isp() != 0;
        self.apply_pause(now);
        let peer_done = word.conn() == ReplState::Established.number();
        if peer_done && matches!(self.repl(), ReplState::SyncSource | ReplState::PausedSyncS) {
            self.source_done_by_peer = true;
        }
    }

    /// The data path refused something of the peer's: drop the connection (it is retried).
    pub(super) fn data_path_error(&mut self, now: u64, e: crate::repl::data_error::DataError) {
        self.conn.abort(
            now,
            DisconnectReason::ProtocolError(ProtocolViolation::DataPath(e)),
        );
    }

    /// Emits one frame into the data queue; false if there was no room.
    pub(super) fn send_data(&mut self, frame: &wire::Frame<'_>) -> bool {
        let agreed = self.agreed();
        let len = frame.buffer_len(&agreed);
        let out = self.sendq.spare(len);
        match frame.emit(&agreed, out) {
            Ok(n) => {
                self.sendq.commit(n);
                true
            }
            Err(_) => false,
        }
    }

    /// Emits one frame into the meta queue; false if there was no room.
    pub(super) fn send_meta(&mut self, frame: &wire::Frame<'_>) -> bool {
        let agreed = self.agreed();
        let len = frame.buffer_len(&agreed);
        let out = self.metaq.spare(len);
        match frame.emit(&agreed, out) {
            Ok(n) => {
                self.metaq.commit(n);
                true
            }
            Err(_) => false,
        }
    }
}
