//! The connection machine: [`Connection`] drives one DRBD connection from the two TCP sockets to
//! Connected (replication.md §4), sans-IO in the quinn-proto shape.
//!
//! Inputs are `handle_*` calls with an explicit `now` (milliseconds on any monotonic clock):
//! socket events, received bytes per socket, timer expiry, user commands. Outputs are polled:
//! [`Connection::poll_transmit`] writes the next packet for a socket into a caller buffer,
//! [`Connection::poll_action`] says which sockets to open or close, [`Connection::poll_event`]
//! reports progress and [`Connection::poll_timeout`] the next deadline. Randomness (challenges,
//! the crossed-connect coin, new UUIDs) comes from the caller's [`Entropy`].
//!
//! Here: the state, user commands, socket events, framing of received bytes, timers and
//! disconnects. `receive` holds the handshake's packet handlers and the sync handshake call;
//! `transmit` decides which packet goes out next on each socket.

mod receive;
mod transmit;

use heapless::{Deque, Vec};

use super::config::{Config, ConfigError};
use super::event::{Action, DisconnectReason, Event, Phase, ProtocolViolation};
use super::handshake::{Cram, PeerProtocol};
use super::sockets::{Accepted, SocketId, SocketRole, Sockets};
use super::state::{ConnState, DiskState, ReplState, Role};
use super::volume::{tx, Step, Volume, VolumeConfig};
use super::Entropy;
use crate::repl::wire::features::ConnectionFeaturesFields;
use crate::repl::wire::{self, Agreed, Command, Frame, HeaderRepr, Socket};

/// Longest packet accepted: a 1 MiB write plus its sub-header and a digest.
pub const MAX_PAYLOAD: u32 = (1 << 20) + 24 + 64;

const EVENTS: usize = 32;
const ACTIONS: usize = 8;

/// Data-socket handshake packets still to send (bits).
mod dtx {
    pub const FEATURES: u8 = 1;
    pub const CHALLENGE: u8 = 2;
    pub const RESPONSE: u8 = 4;
    pub const PROTOCOL: u8 = 8;
}

/// What [`Connection::handle_recv`] did with the bytes.
#[derive(Debug, PartialEq, Eq)]
pub struct Received<'a> {
    /// Bytes consumed from the front of the input (drop them).
    pub used: usize,
    /// Set when nothing was consumed because a packet is incomplete: the total bytes it needs.
    pub need: Option<usize>,
    /// A data-path packet for the shell (writes, acks, bitmaps, resync traffic), once Connected.
    pub frame: Option<Frame<'a>>,
}

impl Received<'_> {
    fn used(used: usize) -> Self {
        Received {
            used,
            need: None,
            frame: None,
        }
    }
}

/// Why a user command was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum CommandError {
    /// The volume table is full.
    TooManyVolumes,
    /// That volume number is already attached, or is 0xFFFF.
    BadVolume,
    /// Only while StandAlone.
    NotStandAlone,
    /// No such volume.
    NoSuchVolume,
    /// The peer is primary and allow-two-primaries is off (SS_TWO_PRIMARIES).
    TwoPrimaries,
    /// A volume is not UpToDate (SS_NO_UP_TO_DATE_DISK).
    NoUpToDateDisk,
}

impl core::fmt::Display for CommandError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            CommandError::TooManyVolumes => "no room for another volume",
            CommandError::BadVolume => "volume number in use or invalid",
            CommandError::NotStandAlone => "only possible while StandAlone",
            CommandError::NoSuchVolume => "no such volume",
            CommandError::TwoPrimaries => "multiple primaries not allowed by config",
            CommandError::NoUpToDateDisk => "need access to UpToDate data",
        })
    }
}

/// One DRBD connection to one peer, with up to `V` volumes.
pub struct Connection<R: Entropy, const V: usize> {
    config: Config,
    rng: R,
    conn: ConnState,
    phase: Phase,
    role: Role,
    sockets: Sockets,
    /// Outgoing sockets whose P_INITIAL_* has not gone out yet.
    initial: [Option<SocketId>; 2],
    connect_in_flight: bool,
    next_connect_at: Option<u64>,
    settle_until: Option<u64>,
    agreed: Agreed,
    early_features: Option<ConnectionFeaturesFields>,
    cram: Option<Cram>,
    peer_protocol: Option<PeerProtocol>,
    data_tx: u8,
    ping_acks: u32,
    ping_due: bool,
    ping_sent_at: Option<u64>,
    last_rx: u64,
    volumes: Vec<Volume, V>,
    events: Deque<Event, EVENTS>,
    actions: Deque<Action, ACTIONS>,
    lost: u32,
}

impl<R: Entropy, const V: usize> Connection<R, V> {
    /// A StandAlone connection with these settings; [`Config::validate`] must pass.
    pub fn new(config: Config, rng: R) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(Connection {
            config,
            rng,
            conn: ConnState::StandAlone,
            phase: Phase::Idle,
            role: Role::Secondary,
            sockets: Sockets::default(),
            initial: [None; 2],
            connect_in_flight: false,
            next_connect_at: None,
            settle_until: None,
            agreed: Agreed::default(),
            early_features: None,
            cram: None,
            peer_protocol: None,
            data_tx: 0,
            ping_acks: 0,
            ping_due: false,
            ping_sent_at: None,
            last_rx: 0,
            volumes: Vec::new(),
            events: Deque::new(),
            actions: Deque::new(),
            lost: 0,
        })
    }

    // ---- queries -------------------------------------------------------------------------

    /// The connection state.
    pub fn conn_state(&self) -> ConnState {
        self.conn
    }
    /// The handshake step.
    pub fn phase(&self) -> Phase {
        self.phase
    }
    /// Our role.
    pub fn role(&self) -> Role {
        self.role
    }
    /// The settings.
    pub fn config(&self) -> &Config {
        &self.config
    }
    /// What the connection agreed (protocol version and features), for the data path's parsers.
    pub fn agreed(&self) -> Agreed {
        self.agreed
    }
    /// Whether this node holds RESOLVE_CONFLICTS (meaningful once the sockets are paired).
    pub fn resolve_conflicts(&self) -> bool {
        self.sockets.resolve_conflicts()
    }
    /// The socket holding `role`.
    pub fn socket(&self, role: SocketRole) -> Option<SocketId> {
        self.sockets.get(role)
    }
    /// The volumes.
    pub fn volumes(&self) -> &[Volume] {
        &self.volumes
    }
    /// One volume.
    pub fn volume(&self, number: u16) -> Option<&Volume> {
        self.volumes.iter().find(|v| v.number() == number)
    }
    /// The caller's randomness (for the data path's new UUIDs).
    pub fn entropy(&mut self) -> &mut R {
        &mut self.rng
    }
    /// Events dropped because the shell did not drain [`Self::poll_event`] (should stay 0).
    pub fn lost_events(&self) -> u32 {
        self.lost
    }

    // ---- user commands -------------------------------------------------------------------

    /// Attaches a volume (only while StandAlone).
    pub fn add_volume(&mut self, cfg: VolumeConfig) -> Result<(), CommandError> {
        if self.conn != ConnState::StandAlone {
            return Err(CommandError::NotStandAlone);
        }
        if cfg.number == wire::command::VOLUME_CONNECTION || self.volume(cfg.number).is_some() {
            return Err(CommandError::BadVolume);
        }
        self.volumes
            .push(Volume::new(cfg))
            .map_err(|_| CommandError::TooManyVolumes)
    }

    /// `connect`: start trying (StandAlone → Connecting). No effect otherwise.
    pub fn connect(&mut self, now: u64) {
        if self.conn == ConnState::StandAlone {
            self.set_conn(ConnState::Unconnected);
            self.start_connecting(now);
        }
    }

    /// `disconnect`: close everything and stay StandAlone.
    pub fn disconnect(&mut self, now: u64) {
        if self.conn != ConnState::StandAlone {
            self.drop_connection(now, DisconnectReason::User);
        }
    }

    /// `primary` / `secondary`. Becoming primary without the peer starts a new data generation
    /// (replication.md §6.1) unless the bitmap already tracks changes for it.
    pub fn set_role(&mut self, now: u64, role: Role) -> Result<(), CommandError> {
        let _ = now;
        if role == self.role || role == Role::Unknown {
            return Ok(());
        }
        if role == Role::Primary {
            if !self.config.allow_two_primaries
                && self.volumes.iter().any(|v| v.peer_role == Role::Primary)
            {
                return Err(CommandError::TwoPrimaries);
            }
            if self
                .volumes
                .iter()
                .any(|v| v.cfg.disk != DiskState::UpToDate)
            {
                return Err(CommandError::NoUpToDateDisk);
            }
            let connected = self.conn == ConnState::Connected;
            for i in 0..self.volumes.len() {
                let Some(v) = self.volumes.get_mut(i) else {
                    continue;
                };
                let g = &mut v.cfg.generation;
                if !connected && g.bitmap == 0 {
                    g.new_current(&mut self.rng, true);
                }
                g.current |= super::generation::UUID_PRIMARY;
                let volume = v.number();
                self.event(Event::UuidsChanged { volume });
            }
        }
        self.role = role;
        self.queue_states();
        Ok(())
    }

    /// The local disk state changed (the shell's attach/detach/resync logic); announced with
    /// P_STATE while the handshake or connection runs.
    pub fn set_disk(&mut self, volume: u16, disk: DiskState) -> Result<(), CommandError> {
        let v = self.volume_mut(volume).ok_or(CommandError::NoSuchVolume)?;
        v.cfg.disk = disk;
        if v.step == Step::Done {
            v.tx |= tx::STATE;
        }
        Ok(())
    }

    /// The bitmap's set-bit count for the peer (sent in P_UUIDS).
    pub fn set_dirty_bits(&mut self, volume: u16, bits: u64) -> Result<(), CommandError> {
        self.volume_mut(volume)
            .ok_or(CommandError::NoSuchVolume)?
            .cfg
            .dirty_bits = bits;
        Ok(())
    }

    /// Mutable access to a volume's generation UUIDs (the resync engine's rotations).
    pub fn generation_mut(&mut self, volume: u16) -> Option<&mut super::Generation> {
        self.volume_mut(volume).map(|v| &mut v.cfg.generation)
    }

    /// Sets a volume's replication state (the resync engine moves WFBitMapS → SyncSource …);
    /// a change is announced with P_STATE once the volume's handshake is done.
    pub fn set_repl(&mut self, volume: u16, repl: ReplState) -> Result<(), CommandError> {
        let v = self.volume_mut(volume).ok_or(CommandError::NoSuchVolume)?;
        if v.repl != repl {
            v.repl = repl;
            if v.step == Step::Done {
                v.tx |= tx::STATE;
            }
            self.event(Event::ReplStateChanged { volume, repl });
        }
        Ok(())
    }

    /// `pause-sync` / `resume-sync` on this side: P_STATE's `user_isp` (announced when connected).
    pub fn set_user_isp(&mut self, volume: u16, paused: bool) -> Result<(), CommandError> {
        let v = self.volume_mut(volume).ok_or(CommandError::NoSuchVolume)?;
        if v.user_isp != paused {
            v.user_isp = paused;
            if v.step == Step::Done {
                v.tx |= tx::STATE;
            }
        }
        Ok(())
    }

    /// Sends the volume's P_UUIDS and P_STATE again (after a resync moved the UUIDs, §6.4).
    /// No effect before the volume's handshake is done.
    pub fn announce_uuids(&mut self, volume: u16) -> Result<(), CommandError> {
        let v = self.volume_mut(volume).ok_or(CommandError::NoSuchVolume)?;
        if v.step == Step::Done {
            v.tx |= tx::UUIDS | tx::STATE;
        }
        Ok(())
    }

    /// The peer announced new UUIDs while connected (P_UUIDS after its resync, §6.4).
    pub fn set_peer_uuids(
        &mut self,
        volume: u16,
        uuids: super::uuid_compare::PeerUuids,
    ) -> Result<(), CommandError> {
        self.volume_mut(volume)
            .ok_or(CommandError::NoSuchVolume)?
            .peer_uuids = Some(uuids);
        Ok(())
    }

    /// `connect --discard-my-data`: on the next split brain this node's changes are dropped.
    pub fn set_discard_my_data(&mut self, discard: bool) {
        self.config.discard_my_data = discard;
    }

    /// Replaces a volume's configuration (re-attach with other meta data), only while StandAlone.
    pub fn replace_volume(&mut self, cfg: VolumeConfig) -> Result<(), CommandError> {
        if self.conn != ConnState::StandAlone {
            return Err(CommandError::NotStandAlone);
        }
        let v = self
            .volume_mut(cfg.number)
            .ok_or(CommandError::NoSuchVolume)?;
        v.cfg = cfg;
        v.reset();
        Ok(())
    }

    /// Drops the connection for `reason` (the data path found a protocol error); retried or not
    /// as [`DisconnectReason::retries`] says. No effect while StandAlone.
    pub fn abort(&mut self, now: u64, reason: DisconnectReason) {
        if self.conn != ConnState::StandAlone {
            self.drop_connection(now, reason);
        }
    }

    // ---- socket events -------------------------------------------------------------------

    /// Our outgoing connection `id` completed.
    pub fn handle_connected(&mut self, now: u64, id: SocketId) {
        self.connect_in_flight = false;
        if !matches!(self.phase, Phase::Sockets | Phase::Settle) {
            self.action(Action::Close(id));
            return;
        }
        match self.sockets.outgoing(id) {
            Some(_) => {
                if let Some(slot) = self.initial.iter_mut().find(|s| s.is_none()) {
                    *slot = Some(id);
                }
                // 8.4 then waits up to connect-int for the peer's connection before it
                // connects out again.
                self.next_connect_at = Some(now.saturating_add(self.accept_window()));
                self.maybe_settle(now);
            }
            None => self.action(Action::Close(id)),
        }
    }

    /// Our outgoing connection attempt failed (refused, unreachable, timed out).
    pub fn handle_connect_failed(&mut self, now: u64) {
        self.connect_in_flight = false;
        if self.phase == Phase::Sockets {
            self.next_connect_at = Some(now.saturating_add(self.accept_window()));
        }
    }

    /// The listener accepted connection `id` from the peer; its first packet says its role.
    pub fn handle_accepted(&mut self, now: u64, id: SocketId) {
        if !matches!(self.phase, Phase::Sockets | Phase::Settle) || !self.sockets.accepted(id, now)
        {
            self.action(Action::Close(id));
            return;
        }
        // Wait for its first packet before trusting the pair (see `maybe_settle`).
        self.maybe_settle(now);
    }

    /// Socket `id` closed (EOF, reset or error).
    pub fn handle_closed(&mut self, now: u64, id: SocketId) {
        self.forget_initial(id);
        if self.sockets.is_pending(id) {
            self.sockets.closed(id);
            if matches!(self.phase, Phase::Sockets | Phase::Settle) {
                self.maybe_settle(now);
            }
            return;
        }
        if self.sockets.role_of(id).is_none() {
            return;
        }
        match self.phase {
            Phase::Sockets | Phase::Settle => {
                self.sockets.closed(id);
                self.phase = Phase::Sockets;
                self.settle_until = None;
                // The peer dropped it (crossed connect, or it is not listening for us yet):
                // give it a connect window before trying again.
                let retry = now.saturating_add(self.accept_window());
                self.next_connect_at = Some(self.next_connect_at.map_or(retry, |t| t.min(retry)));
            }
            _ => self.drop_connection(now, DisconnectReason::BrokenPipe),
        }
    }

    /// Bytes received on socket `id`. Consumes at most one packet: call again with the rest
    /// while `used > 0`; keep buffering while `need` is set.
    pub fn handle_recv<'a>(&mut self, now: u64, id: SocketId, input: &'a [u8]) -> Received<'a> {
        if self.sockets.is_pending(id) {
            return self.first_packet(now, id, input);
        }
        let Some(role) = self.sockets.role_of(id) else {
            return Received::used(input.len());
        };
        // The meta socket's headers are not checked against the version: a P_PING may overtake
        // the feature exchange (replication.md §1).
        let agreed = match role {
            SocketRole::Data => self.agreed,
            SocketRole::Meta => Agreed {
                pv: None,
                ..self.agreed
            },
        };
        let header = match HeaderRepr::parse(input) {
            Ok(h) => h,
            Err(wire::Error::Truncated { need, .. }) => {
                return Received {
                    used: 0,
                    need: Some(need),
                    frame: None,
                }
            }
            Err(e) => return self.violation(now, input, ProtocolViolation::Wire(e)),
        };
        if header.length > MAX_PAYLOAD {
            let len = header.length;
            return self.violation(now, input, ProtocolViolation::TooLong { len });
        }
        if input.len() < header.frame_len() {
            return Received {
                used: 0,
                need: Some(header.frame_len()),
                frame: None,
            };
        }
        let (frame, used) = match Frame::parse(input, &agreed) {
            Ok(f) => f,
            Err(e) => return self.violation(now, input, ProtocolViolation::Wire(e)),
        };
        self.last_rx = now;
        let on_socket = match frame.command.socket() {
            Socket::Both => true,
            Socket::Data => role == SocketRole::Data,
            Socket::Meta => role == SocketRole::Meta,
            Socket::None => false,
        };
        if !on_socket {
            let command = frame.command;
            return self.violation(now, input, ProtocolViolation::WrongSocket { command });
        }
        // 8.4 refuses any per-volume packet for a volume it does not have.
        let per_volume = frame.command.scope() == wire::Scope::Volume
            && !matches!(frame.command, Command::DelayProbe);
        if per_volume && self.phase >= Phase::Params && self.volume(frame.volume).is_none() {
            let volume = frame.volume;
            return self.violation(now, input, ProtocolViolation::UnknownVolume { volume });
        }
        let result = match role {
            SocketRole::Data => self.on_data(now, frame),
            SocketRole::Meta => self.on_meta(frame),
        };
        match result {
            Ok(deliver) => Received {
                used,
                need: None,
                frame: deliver,
            },
            Err(reason) => {
                self.drop_connection(now, reason);
                Received::used(input.len())
            }
        }
    }

    /// The time has come (call at or after [`Self::poll_timeout`], or any time).
    pub fn handle_timeout(&mut self, now: u64) {
        let handshake_deadline = self.last_rx.saturating_add(self.handshake_timeout());
        match self.phase {
            Phase::Idle | Phase::Connected => {}
            Phase::Sockets | Phase::Settle => {
                // 8.4 gives an accepted socket 4 × ping-timeout to announce its role.
                while let Some(id) = self.sockets.stale_pending(now, self.handshake_timeout()) {
                    self.sockets.closed(id);
                    self.action(Action::Close(id));
                    self.maybe_settle(now);
                }
                if self.phase == Phase::Settle && self.settle_until.is_some_and(|t| now >= t) {
                    self.establish(now);
                }
            }
            _ if now >= handshake_deadline => {
                self.drop_connection(now, DisconnectReason::Timeout);
                return;
            }
            _ => {}
        }
        if self.phase == Phase::Sockets
            && !self.connect_in_flight
            && self.sockets.missing().is_some()
            && self.next_connect_at.is_some_and(|t| now >= t)
        {
            self.connect_in_flight = true;
            self.next_connect_at = None;
            self.action(Action::Connect);
        }
        if self.keepalive() {
            match self.ping_sent_at {
                Some(t) if now >= t.saturating_add(self.config.ping_timeout_ms) => {
                    self.drop_connection(now, DisconnectReason::NetworkFailure)
                }
                None if now >= self.last_rx.saturating_add(self.config.ping_int_ms) => {
                    self.ping_due = true;
                    self.ping_sent_at = Some(now);
                }
                _ => {}
            }
        }
    }

    // ---- outputs -------------------------------------------------------------------------

    /// The next deadline: call [`Self::handle_timeout`] then.
    pub fn poll_timeout(&self) -> Option<u64> {
        let mut t: Option<u64> = None;
        let mut at = |x: u64| t = Some(t.map_or(x, |y| y.min(x)));
        match self.phase {
            Phase::Idle | Phase::Connected => {}
            Phase::Sockets | Phase::Settle => {
                if let Some(p) = self.sockets.oldest_pending() {
                    at(p.saturating_add(self.handshake_timeout()));
                }
                if let Some(s) = self.settle_until.filter(|_| self.phase == Phase::Settle) {
                    at(s);
                }
                // Only a deadline handle_timeout acts on: a connect needs a missing role.
                let connects = self.phase == Phase::Sockets
                    && !self.connect_in_flight
                    && self.sockets.missing().is_some();
                if let Some(c) = self.next_connect_at.filter(|_| connects) {
                    at(c);
                }
            }
            _ => at(self.last_rx.saturating_add(self.handshake_timeout())),
        }
        if self.keepalive() {
            match self.ping_sent_at {
                Some(s) => at(s.saturating_add(self.config.ping_timeout_ms)),
                None => at(self.last_rx.saturating_add(self.config.ping_int_ms)),
            }
        }
        t
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The next socket action, if any.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    // ---- internals -----------------------------------------------------------------------

    fn event(&mut self, e: Event) {
        if self.events.push_back(e).is_err() {
            self.lost = self.lost.saturating_add(1);
        }
    }

    fn action(&mut self, a: Action) {
        if self.actions.push_back(a).is_err() {
            self.lost = self.lost.saturating_add(1);
        }
    }

    fn set_conn(&mut self, conn: ConnState) {
        if self.conn != conn {
            self.conn = conn;
            self.event(Event::StateChanged { conn });
        }
    }

    fn volume_mut(&mut self, number: u16) -> Option<&mut Volume> {
        self.volumes.iter_mut().find(|v| v.number() == number)
    }

    fn coin(&mut self) -> bool {
        let mut b = [0u8];
        self.rng.fill(&mut b);
        b[0] & 1 != 0
    }

    /// connect-int with 8.4's ±1/7 jitter, so two nodes do not stay in lock step.
    fn accept_window(&mut self) -> u64 {
        let base = self.config.connect_int_ms;
        if self.coin() {
            base.saturating_add(base / 7)
        } else {
            base - base / 7
        }
    }

    /// How long the handshake may wait for the peer's next packet (8.4 sets the data socket's
    /// receive timeout to 4 × ping-timeout while connecting).
    fn handshake_timeout(&self) -> u64 {
        self.config.ping_timeout_ms.saturating_mul(4)
    }

    fn keepalive(&self) -> bool {
        self.phase >= Phase::Params
    }

    fn forget_initial(&mut self, id: SocketId) {
        for s in &mut self.initial {
            if *s == Some(id) {
                *s = None;
            }
        }
    }

    fn queue_states(&mut self) {
        for v in self.volumes.iter_mut() {
            if v.step == Step::Done || self.phase >= Phase::Params {
                v.tx |= tx::STATE;
            }
        }
    }

    fn start_connecting(&mut self, now: u64) {
        self.phase = Phase::Sockets;
        self.next_connect_at = Some(now);
        self.set_conn(ConnState::Connecting);
    }

    /// Starts the socket-pair check once both roles are held and no accepted socket is still
    /// to announce its role: 8.4 reads an accepted socket's first packet before it looks at
    /// the pair again, so a pair never forms past a connection the peer may have meant for it.
    fn maybe_settle(&mut self, now: u64) {
        if self.sockets.complete() && !self.sockets.has_pending() {
            self.phase = Phase::Settle;
            self.settle_until = Some(now.saturating_add(self.config.sock_check_ms()));
        } else {
            self.phase = Phase::Sockets;
            self.settle_until = None;
        }
    }

    fn first_packet<'a>(&mut self, now: u64, id: SocketId, input: &'a [u8]) -> Received<'a> {
        const INITIAL_LEN: usize = 8;
        if input.len() < INITIAL_LEN {
            return Received {
                used: 0,
                need: Some(INITIAL_LEN),
                frame: None,
            };
        }
        let command =
            match Frame::parse(input.get(..INITIAL_LEN).unwrap_or(&[]), &Agreed::default()) {
                Ok((f, _)) => Some(f.command),
                Err(_) => None,
            };
        let coin = self.coin();
        let used = match self.sockets.first_packet(id, command, coin) {
            Accepted::Kept(_) => {
                self.next_connect_at = Some(now);
                INITIAL_LEN
            }
            Accepted::Crossed { dropped, wait, .. } => {
                self.forget_initial(dropped);
                self.action(Action::Close(dropped));
                self.next_connect_at = Some(if wait {
                    now.saturating_add(self.accept_window())
                } else {
                    now
                });
                INITIAL_LEN
            }
            Accepted::Rejected { wait } => {
                self.action(Action::Close(id));
                self.next_connect_at = Some(if wait {
                    now.saturating_add(self.accept_window())
                } else {
                    now
                });
                input.len()
            }
        };
        self.maybe_settle(now);
        Received::used(used)
    }

    fn establish(&mut self, now: u64) {
        self.settle_until = None;
        self.phase = Phase::Features;
        self.last_rx = now;
        self.data_tx |= dtx::FEATURES;
        if let Some(f) = self.early_features.take() {
            if let Err(reason) = self.on_features(f) {
                self.drop_connection(now, reason);
            }
        }
    }

    fn violation<'a>(&mut self, now: u64, input: &'a [u8], v: ProtocolViolation) -> Received<'a> {
        self.drop_connection(now, DisconnectReason::ProtocolError(v));
        Received::used(input.len())
    }

    fn unexpected(&self, command: Command) -> DisconnectReason {
        DisconnectReason::ProtocolError(ProtocolViolation::Unexpected {
            command,
            phase: self.phase,
        })
    }

    fn drop_connection(&mut self, now: u64, reason: DisconnectReason) {
        let was_connected = self.conn == ConnState::Connected;
        let mut ids = [None; 4];
        for (slot, id) in ids.iter_mut().zip(self.sockets.all()) {
            *slot = Some(id);
        }
        for id in ids.into_iter().flatten() {
            self.action(Action::Close(id));
        }
        self.sockets.clear();
        self.initial = [None; 2];
        self.connect_in_flight = false;
        self.settle_until = None;
        self.agreed = Agreed::default();
        self.early_features = None;
        self.cram = None;
        self.peer_protocol = None;
        self.data_tx = 0;
        self.ping_acks = 0;
        self.ping_due = false;
        self.ping_sent_at = None;
        for i in 0..self.volumes.len() {
            let Some(v) = self.volumes.get_mut(i) else {
                continue;
            };
            let was = v.repl;
            v.reset();
            let volume = v.number();
            // A primary that loses its peer starts a new generation, so the peer's data is
            // recognisably older when it comes back (§6.1).
            let g = &mut v.cfg.generation;
            let rotate = was_connected
                && self.role == Role::Primary
                && v.cfg.disk == DiskState::UpToDate
                && g.bitmap == 0;
            if rotate {
                g.new_current(&mut self.rng, true);
            }
            if was != ReplState::Off {
                self.event(Event::ReplStateChanged {
                    volume,
                    repl: ReplState::Off,
                });
            }
            if rotate {
                self.event(Event::UuidsChanged { volume });
            }
        }
        self.event(Event::Disconnected { reason });
        self.set_conn(reason.state());
        if reason.retries() {
            self.set_conn(ConnState::Unconnected);
            self.start_connecting(now);
            self.next_connect_at = Some(now.saturating_add(self.config.connect_int_ms));
        } else {
            self.phase = Phase::Idle;
            self.next_connect_at = None;
            self.set_conn(ConnState::StandAlone);
        }
    }
}
