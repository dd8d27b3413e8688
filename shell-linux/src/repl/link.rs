//! One resource's thread: it owns the core [`Node`] and moves its bytes and time. A mio loop
//! over the listener, the peer sockets and a waker; disk operations run synchronously on the
//! backing and meta files ([`Disk`]), except data flushes, which the [`Flusher`] thread runs;
//! application I/O and commands arrive over a channel from [`Handle`](super::device::Handle)s.
//! Bytes leave straight from the node's send queue, which holds several writes ahead of the
//! socket.
//!
//! Outgoing connections are paced by the core reconnect FSM: the node asks for a connection
//! (its own 8.4 rhythm of connect-int), and the FSM decides when it is made, backing off from
//! connect-int up to 8× while the peer keeps refusing, as OVS's reconnect does for its links.

use std::collections::{HashMap, VecDeque};
use std::io::{self, Read, Write};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use keelson_core::reconnect::{self, Reconnect};
use keelson_core::repl::admin::{Failure, Flag, RetCode, Verb};
use keelson_core::repl::conn::{Action, ConnState, DisconnectReason, Event, Role, SocketId};
use keelson_core::repl::node::{
    Completion, Io, Node, NodeError, NodeEvent, ReadFor, Status, WriteData, WriteId,
};
use keelson_core::repl::write::WriteFlags;
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};

use super::disk::{Disk, AL_EXTENTS};
use super::entropy::OsEntropy;
use super::flusher::Flusher;
use super::resource::ResourceConfig;
use crate::nbd::Done;

/// The node as the agent runs it.
pub type AgentNode = Node<OsEntropy, Vec<u8>, AL_EXTENTS>;

/// What a [`Handle`](super::device::Handle) asks of the thread.
pub enum Request {
    /// Write `data` at byte `offset` (512-aligned).
    Write {
        /// Byte offset.
        offset: u64,
        /// The bytes.
        data: Vec<u8>,
        /// Force unit access.
        fua: bool,
        /// Answered when the write completed as the protocol promises.
        reply: Done,
    },
    /// Read `len` bytes at byte `offset`.
    Read {
        /// Byte offset.
        offset: u64,
        /// Bytes.
        len: usize,
        /// The data.
        reply: Sender<io::Result<Vec<u8>>>,
    },
    /// Flush (local cache, and with protocol C every earlier write on the peer).
    Flush {
        /// Done.
        reply: Sender<io::Result<()>>,
    },
    /// A drbdsetup-like command (not `up`, `down` or `status`).
    Command {
        /// The verb.
        verb: Verb,
        /// `--force`, `--discard-my-data`, `--clear-bitmap`.
        flags: keelson_core::repl::admin::Flags,
        /// Its outcome.
        reply: Sender<Result<(), Failure>>,
    },
    /// The rest of a write the node was too busy to take whole (queued by the thread itself).
    More {
        /// The write it belongs to.
        group: usize,
        /// Byte offset of the rest.
        offset: u64,
        /// The rest.
        data: Vec<u8>,
        /// Force unit access on the last piece.
        fua: bool,
    },
    /// Orderly stop (`down`, keelsond shutdown): demote, disconnect, detach, exit.
    Stop {
        /// Whether it went down (a Primary in use refuses).
        reply: Sender<Result<(), Failure>>,
    },
}

/// What the thread publishes after every turn, for `status` and the NBD read-only flag.
#[derive(Clone, Copy, Debug)]
pub struct Snapshot {
    /// The node's status.
    pub status: Status,
    /// The thread has ended.
    pub ended: bool,
}

const LISTENER: Token = Token(0);
const WAKER: Token = Token(1);
/// Unconsumed received bytes per socket before we stop reading it.
const RX_LIMIT: usize = 4 << 20;
/// Receive buffer per socket: the limit plus room for the largest packet (1 MiB + header).
const RX_BUF: usize = RX_LIMIT + (2 << 20);
/// Data-socket bytes the node may queue beyond one largest write.
const SEND_AHEAD: usize = 8 << 20;

struct Sock {
    stream: TcpStream,
    connecting: Option<Instant>,
    rx: Vec<u8>,
    rx_start: usize,
    rx_end: usize,
    readable: bool,
}

impl Sock {
    fn new(stream: TcpStream, connecting: Option<Instant>) -> Sock {
        Sock {
            stream,
            connecting,
            rx: vec![0u8; RX_BUF],
            rx_start: 0,
            rx_end: 0,
            readable: true,
        }
    }

    /// Writes what the socket takes of `bytes` now (the rest stays in the node's queue, which
    /// is where the bytes are sent from: no copy); Err = the socket is dead.
    fn send(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let mut at = 0;
        while at < bytes.len() {
            match self.stream.write(&bytes[at..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => at += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(at)
    }

    /// Reads what there is into the free end of the buffer; Ok(false) = EOF. The buffer is
    /// allocated once: the unconsumed bytes move to its front only when the tail is short.
    fn fill(&mut self) -> io::Result<bool> {
        if self.rx_start == self.rx_end {
            self.rx_start = 0;
            self.rx_end = 0;
        } else if self.rx.len() - self.rx_end < RX_BUF - RX_LIMIT {
            self.rx.copy_within(self.rx_start..self.rx_end, 0);
            self.rx_end -= self.rx_start;
            self.rx_start = 0;
        }
        while self.readable && self.rx_end - self.rx_start < RX_LIMIT && self.rx_end < self.rx.len()
        {
            match self.stream.read(&mut self.rx[self.rx_end..]) {
                Ok(0) => return Ok(false),
                Ok(n) => self.rx_end += n,
                Err(e) => match e.kind() {
                    io::ErrorKind::WouldBlock => self.readable = false,
                    io::ErrorKind::Interrupted => {}
                    _ => return Err(e),
                },
            }
        }
        Ok(true)
    }
}

/// An application write split into node-sized pieces.
struct Group {
    /// Pieces submitted and not completed.
    left: usize,
    /// Pieces not yet submitted (the node was busy).
    more: bool,
    failed: bool,
    reply: Done,
}

struct AppRead {
    offset: u64,
    buf: Vec<u8>,
    reply: Sender<io::Result<Vec<u8>>>,
}

/// The thread's state.
pub struct Link {
    cfg: ResourceConfig,
    node: Box<AgentNode>,
    disk: Disk,
    flusher: Flusher,
    /// A flush finished during this turn.
    flush_ended: bool,
    poll: Poll,
    listener: Option<TcpListener>,
    socks: HashMap<u32, Sock>,
    next_id: u32,
    reconnect: Reconnect,
    /// The node asked for a connection the FSM has not let us make yet.
    want_connect: bool,
    start: Instant,
    rx: Receiver<Request>,
    snapshot: Arc<Mutex<Snapshot>>,
    /// Requests the node could not take yet (Busy), in arrival order.
    waiting: VecDeque<Request>,
    writes: HashMap<WriteId, (Vec<u8>, usize)>,
    groups: HashMap<usize, Group>,
    next_group: usize,
    reads: HashMap<u64, AppRead>,
    flushes: HashMap<u64, Sender<io::Result<()>>>,
    stopping: Option<Sender<Result<(), Failure>>>,
    last_conn: ConnState,
}

fn ms(d: Duration) -> u64 {
    d.as_millis().min(u128::from(u64::MAX)) as u64
}

/// Opens the resource's files, builds its node and binds its listener (errors are the
/// caller's to report; nothing runs yet).
pub fn open(
    cfg: ResourceConfig,
    rx: Receiver<Request>,
) -> io::Result<(Link, Arc<Waker>, Arc<Mutex<Snapshot>>)> {
    let (disk, loaded) = Disk::open(&cfg)?;
    // Room for several writes ahead of the socket: while the peer flushes an epoch, later
    // writes queue here instead of stalling the application (DRBD leans on sndbuf the same way).
    let send = vec![0u8; cfg.node.min_send_buffer() + SEND_AHEAD];
    let node = Node::new(
        cfg.node.clone(),
        loaded.meta,
        &loaded.al_ring,
        loaded.bitmap,
        send,
        OsEntropy,
    )
    .map_err(|e| io::Error::other(format!("resource {}: {e}", cfg.name)))?;
    let poll = Poll::new()?;
    let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
    let flusher = Flusher::start(disk.data_handle()?, waker.clone(), &cfg.name)?;
    let mut listener = TcpListener::bind(cfg.address)
        .map_err(|e| io::Error::new(e.kind(), format!("listen on {}: {e}", cfg.address)))?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    let connect_int = cfg.node.conn.connect_int_ms.min(i32::MAX as u64 / 8) as i32;
    let mut reconnect = Reconnect::new(0);
    reconnect.set_backoff(connect_int, connect_int.saturating_mul(8));
    reconnect.set_probe_interval(0);
    let snapshot = Arc::new(Mutex::new(Snapshot {
        status: node.status(0),
        ended: false,
    }));
    Ok((
        Link {
            cfg,
            node: Box::new(node),
            disk,
            flusher,
            flush_ended: false,
            poll,
            listener: Some(listener),
            socks: HashMap::new(),
            next_id: 1,
            reconnect,
            want_connect: false,
            start: Instant::now(),
            rx,
            snapshot: snapshot.clone(),
            waiting: VecDeque::new(),
            writes: HashMap::new(),
            groups: HashMap::new(),
            next_group: 0,
            reads: HashMap::new(),
            flushes: HashMap::new(),
            stopping: None,
            last_conn: ConnState::StandAlone,
        },
        waker,
        snapshot,
    ))
}

impl Link {
    fn now(&self) -> u64 {
        ms(self.start.elapsed())
    }

    /// The device size in bytes.
    pub fn size(&self) -> u64 {
        self.disk.size()
    }

    fn name(&self) -> &str {
        &self.cfg.name
    }

    /// Runs until stopped: connects (as `up` does) and serves.
    pub fn run(mut self) {
        let now = self.now();
        if let Err(e) = self.node.connect(now, false) {
            tracing::error!(resource = %self.name(), "connect: {e}");
        }
        self.reconnect.enable(now as i64);
        let mut events = Events::with_capacity(256);
        loop {
            self.turn();
            if self.finished() {
                break;
            }
            let timeout = self.timeout();
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() != io::ErrorKind::Interrupted {
                    tracing::error!(resource = %self.name(), "poll: {e}");
                    std::thread::sleep(Duration::from_millis(10));
                }
                continue;
            }
            for ev in events.iter() {
                match ev.token() {
                    LISTENER => self.accept(),
                    WAKER => {}
                    Token(t) => {
                        let id = t as u32;
                        if let Some(s) = self.socks.get_mut(&id) {
                            if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                                s.readable = true;
                            }
                        }
                        if ev.is_writable() || ev.is_error() {
                            self.writable(id);
                        }
                    }
                }
            }
        }
        self.publish(true);
    }

    /// Whether the thread should exit: stop requested and the node is quiet.
    fn finished(&mut self) -> bool {
        let Some(reply) = &self.stopping else {
            return false;
        };
        if self.node.io_in_flight() > 0 || !self.socks.is_empty() {
            return false;
        }
        let _ = reply.send(Ok(()));
        true
    }

    fn timeout(&self) -> Option<Duration> {
        let now = self.now();
        let mut t = self.node.poll_timeout().map(|d| d.saturating_sub(now));
        if self.want_connect {
            if let Some(r) = self.reconnect.timeout(now as i64) {
                t = Some(t.map_or(u64::from(r), |x| x.min(u64::from(r))));
            }
        }
        // Sockets still readable (we stopped at a limit or the node was blocked), requests
        // waiting for room, or connects in progress: come back soon.
        let busy = self
            .socks
            .values()
            .any(|s| s.readable && s.rx_end - s.rx_start < RX_LIMIT)
            || !self.waiting.is_empty();
        if busy {
            t = Some(t.map_or(1, |x| x.min(1)));
        }
        if self.socks.values().any(|s| s.connecting.is_some()) {
            t = Some(t.map_or(100, |x| x.min(100)));
        }
        t.map(Duration::from_millis)
    }

    /// One turn: requests in, sockets read, node drained, timers.
    fn turn(&mut self) {
        loop {
            match self.rx.try_recv() {
                Ok(r) => self.waiting.push_back(r),
                Err(std::sync::mpsc::TryRecvError::Empty) => break,
                Err(std::sync::mpsc::TryRecvError::Disconnected) => {
                    // Every handle is gone: stop as `down` would.
                    if self.stopping.is_none() {
                        let (tx, _rx) = std::sync::mpsc::channel();
                        self.waiting.push_back(Request::Stop { reply: tx });
                    }
                    break;
                }
            }
        }
        self.take_requests();
        self.check_connects();
        let ids: Vec<u32> = self.socks.keys().copied().collect();
        loop {
            self.flush_ended = false;
            self.finish_flushes();
            for &id in &ids {
                self.receive(id);
            }
            let now = self.now();
            if self.node.poll_timeout().is_some_and(|t| t <= now) {
                self.node.handle_timeout(now);
            }
            self.drain();
            // A flush that ended meanwhile frees the data socket's buffered epoch: go again
            // rather than wait for an event that already came.
            if !self.flush_ended {
                break;
            }
        }
        self.pace_connects();
        self.publish(false);
    }

    fn publish(&self, ended: bool) {
        let status = self.node.status(self.now());
        *self.snapshot.lock().unwrap_or_else(|p| p.into_inner()) = Snapshot { status, ended };
    }

    // ---- sockets ---------------------------------------------------------------------------

    fn add_sock(&mut self, mut stream: TcpStream, connecting: bool) -> Option<SocketId> {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1).max(2);
        let _ = stream.set_nodelay(true);
        if let Err(e) = self.poll.registry().register(
            &mut stream,
            Token(id as usize),
            Interest::READABLE | Interest::WRITABLE,
        ) {
            tracing::warn!(resource = %self.name(), "register socket: {e}");
            return None;
        }
        let since = connecting.then(Instant::now);
        self.socks.insert(id, Sock::new(stream, since));
        Some(SocketId(id))
    }

    fn accept(&mut self) {
        loop {
            let Some(l) = &self.listener else { return };
            match l.accept() {
                Ok((stream, from)) => {
                    if from.ip() != self.cfg.peer_address.ip() {
                        tracing::warn!(resource = %self.name(), %from, "refusing a connection not from the peer's address");
                        continue;
                    }
                    let now = self.now();
                    if let Some(id) = self.add_sock(stream, false) {
                        tracing::debug!(resource = %self.name(), %from, id = id.0, "accepted");
                        self.node.handle_accepted(now, id);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    tracing::warn!(resource = %self.name(), "accept: {e}");
                    return;
                }
            }
        }
    }

    fn close(&mut self, id: u32) {
        if let Some(mut s) = self.socks.remove(&id) {
            let _ = self.poll.registry().deregister(&mut s.stream);
            let _ = s.stream.shutdown(std::net::Shutdown::Both);
        }
    }

    /// A socket failed or reached EOF: tell the node.
    fn lost(&mut self, id: u32) {
        if self.socks.contains_key(&id) {
            self.close(id);
            let now = self.now();
            self.node.handle_closed(now, SocketId(id));
        }
    }

    fn writable(&mut self, id: u32) {
        let Some(s) = self.socks.get_mut(&id) else {
            return;
        };
        if s.connecting.is_some() {
            self.finish_connect(id);
        }
        // Otherwise the turn that follows sends what the node has queued.
    }

    /// Connects in progress that resolved or timed out.
    fn check_connects(&mut self) {
        let limit = Duration::from_millis(self.cfg.node.conn.connect_int_ms.max(1000));
        let stale: Vec<u32> = self
            .socks
            .iter()
            .filter(|(_, s)| s.connecting.is_some_and(|t| t.elapsed() > limit))
            .map(|(&id, _)| id)
            .collect();
        for id in stale {
            self.close(id);
            self.connect_failed("timed out");
        }
    }

    fn finish_connect(&mut self, id: u32) {
        let Some(s) = self.socks.get_mut(&id) else {
            return;
        };
        let failed = match s.stream.take_error() {
            Ok(Some(e)) | Err(e) => Some(e.to_string()),
            Ok(None) => match s.stream.peer_addr() {
                Ok(_) => None,
                Err(e) if e.kind() == io::ErrorKind::NotConnected => return,
                Err(e) => Some(e.to_string()),
            },
        };
        match failed {
            Some(e) => {
                self.close(id);
                self.connect_failed(e.as_str());
            }
            None => {
                s.connecting = None;
                let now = self.now();
                self.reconnect.connected(now as i64);
                self.node.handle_connected(now, SocketId(id));
            }
        }
    }

    fn connect_failed(&mut self, why: &str) {
        let now = self.now();
        tracing::debug!(resource = %self.name(), peer = %self.cfg.peer_address, "connect failed: {why}");
        self.reconnect.connect_failed(now as i64, 0);
        self.node.handle_connect_failed(now);
    }

    /// Makes the connection the node asked for once the reconnect FSM says so.
    fn pace_connects(&mut self) {
        if !self.want_connect {
            return;
        }
        let now = self.now() as i64;
        if self.reconnect.state().is_connected() {
            // The last connection went away (the node asks again): back off from here.
            self.reconnect.disconnected(now, reconnect::EOF);
        }
        if self.reconnect.run(now) != Some(reconnect::Action::Connect) {
            return;
        }
        self.want_connect = false;
        self.reconnect.connecting(now);
        match TcpStream::connect(self.cfg.peer_address) {
            Ok(stream) => {
                if self.add_sock(stream, true).is_none() {
                    self.connect_failed("cannot register");
                }
            }
            Err(e) => self.connect_failed(&e.to_string()),
        }
    }

    /// Feeds a socket's bytes to the node, one packet per call.
    fn receive(&mut self, id: u32) {
        let alive = match self.socks.get_mut(&id) {
            Some(s) if s.connecting.is_none() => s.fill(),
            _ => return,
        };
        let mut eof = matches!(alive, Ok(false));
        if alive.is_err() {
            eof = true;
        }
        let data_sock = self.node.data_socket() == Some(SocketId(id));
        loop {
            let Some(s) = self.socks.get_mut(&id) else {
                return;
            };
            if s.rx_start >= s.rx_end || (data_sock && self.flusher.busy()) {
                // A flush runs: the next epoch's writes wait in the buffer until it ends.
                break;
            }
            let now = ms(self.start.elapsed());
            let r = self
                .node
                .handle_recv(now, SocketId(id), &s.rx[s.rx_start..s.rx_end]);
            let done = r.io.map(|io| (io.token(), perform_peer(&self.disk, &io)));
            let (used, blocked) = (r.used, r.blocked);
            s.rx_start += used;
            if let Some((token, ok)) = done {
                let _ = self.node.io_done(now, token, ok);
            }
            if used == 0 || blocked {
                break;
            }
            self.drain();
        }
        if eof {
            self.lost(id);
        }
    }

    // ---- the node's outputs ----------------------------------------------------------------

    /// Everything the node has for us, until it has nothing.
    fn drain(&mut self) {
        for _ in 0..10_000 {
            let mut progress = false;
            while let Some(a) = self.node.poll_action() {
                progress = true;
                match a {
                    Action::Connect => self.want_connect = true,
                    Action::Close(id) => {
                        self.close(id.0);
                    }
                }
            }
            progress |= self.transmit();
            progress |= self.disk_io();
            while let Some(e) = self.node.poll_event() {
                progress = true;
                self.event(e);
            }
            progress |= self.finish_flushes();
            while let Some(c) = self.node.poll_completion() {
                progress = true;
                self.complete(c);
            }
            if !self.waiting.is_empty() && progress {
                self.take_requests();
            }
            if !progress {
                break;
            }
        }
    }

    /// Reports finished flushes to the node; true if any.
    fn finish_flushes(&mut self) -> bool {
        let mut any = false;
        while let Some((token, ok)) = self.flusher.poll() {
            any = true;
            self.flush_ended = true;
            let now = self.now();
            let _ = self.node.io_done(now, token, ok);
        }
        any
    }

    fn transmit(&mut self) -> bool {
        let mut any = false;
        let now = self.now();
        loop {
            let (socks, mut dead, mut gone) = (&mut self.socks, None, None);
            let sent = self
                .node
                .poll_transmit_with(now, |id, bytes| match socks.get_mut(&id.0) {
                    Some(s) => s.send(bytes).unwrap_or_else(|_| {
                        dead = Some(id);
                        0
                    }),
                    None => {
                        gone = Some(id);
                        0
                    }
                });
            if let Some(id) = dead {
                self.lost(id.0);
            } else if let Some(id) = gone {
                // Bytes for a socket that is gone: the node hears it closed.
                self.node.handle_closed(now, id);
            } else if sent.is_none() {
                break;
            }
            any = true;
        }
        any
    }

    fn disk_io(&mut self) -> bool {
        let mut any = false;
        loop {
            let now = self.now();
            let Some(io) = self.node.poll_io() else {
                break;
            };
            any = true;
            let token = io.token();
            match io {
                Io::Read {
                    sector,
                    len,
                    purpose: ReadFor::Resync,
                    ..
                } => {
                    let mut buf = vec![0u8; len as usize];
                    match self.disk.read(&mut buf, sector * 512) {
                        Ok(()) => {
                            let _ = self.node.read_done(now, token, &buf);
                        }
                        Err(e) => {
                            tracing::error!(resource = %self.name(), sector, "resync read: {e}");
                            let _ = self.node.io_done(now, token, false);
                        }
                    }
                }
                Io::Read {
                    purpose: ReadFor::App(id),
                    ..
                } => {
                    let ok = match self.reads.get_mut(&id) {
                        Some(r) => self.disk.read(&mut r.buf, r.offset).is_ok(),
                        None => false,
                    };
                    let _ = self.node.io_done(now, token, ok);
                }
                Io::Write {
                    data: WriteData::App(id),
                    sector,
                    flush,
                    fua,
                    ..
                } => {
                    let ok = match self.writes.get(&id) {
                        Some((data, _)) => {
                            (!flush || self.disk.flush().is_ok())
                                && self.disk.write(data, sector * 512).is_ok()
                                && (!fua || self.disk.flush().is_ok())
                        }
                        None => false,
                    };
                    let _ = self.node.io_done(now, token, ok);
                }
                io @ Io::Write { .. } => {
                    let ok = perform_peer(&self.disk, &io);
                    let _ = self.node.io_done(now, token, ok);
                }
                Io::Flush { .. } => {
                    if !self.flusher.start_flush(token) {
                        let _ = self.node.io_done(now, token, false);
                    }
                }
                Io::PersistMeta { meta, .. } => {
                    let ok = self.disk.store_meta(&meta).is_ok();
                    let _ = self.node.io_done(now, token, ok);
                }
                Io::PersistBitmap { offset, bytes, .. } => {
                    let ok = self.disk.store_bitmap(offset, bytes).is_ok();
                    let _ = self.node.io_done(now, token, ok);
                }
                Io::AlTransaction { offset, record, .. } => {
                    let ok = self.disk.store_al(offset, record).is_ok();
                    let _ = self.node.io_done(now, token, ok);
                }
            }
        }
        any
    }

    fn event(&mut self, e: NodeEvent) {
        let name = self.cfg.name.clone();
        match e {
            NodeEvent::Conn(Event::StateChanged { conn }) => {
                if conn != self.last_conn {
                    tracing::info!(resource = %name, "conn( {} -> {} )", self.last_conn, conn);
                    self.last_conn = conn;
                }
                if conn == ConnState::StandAlone {
                    self.reconnect.disable(self.now() as i64);
                    self.want_connect = false;
                }
            }
            NodeEvent::Conn(Event::Connected) => {
                tracing::info!(resource = %name, peer = %self.cfg.peer_address, "connected");
            }
            NodeEvent::Conn(Event::Disconnected { reason }) => match reason {
                DisconnectReason::AuthFailed(a) => tracing::error!(
                    resource = %name,
                    "Authentication of peer failed ({a}), dropping connection"
                ),
                DisconnectReason::User => tracing::info!(resource = %name, "disconnected"),
                r if r.retries() => {
                    tracing::warn!(resource = %name, "connection lost: {r}; will reconnect")
                }
                r => tracing::error!(resource = %name, "connection refused: {r}"),
            },
            NodeEvent::Conn(Event::SyncHandshake { decision, .. }) => {
                tracing::info!(resource = %name, "sync handshake: {decision:?}")
            }
            NodeEvent::Conn(_) => {}
            NodeEvent::RoleChanged { role } => {
                tracing::info!(resource = %name, "role( {role} )")
            }
            NodeEvent::DiskChanged { disk } => {
                tracing::info!(resource = %name, "disk( {disk} )")
            }
            NodeEvent::SplitBrain { auto_recoverable } => tracing::error!(
                resource = %name,
                auto_recoverable,
                "Split-Brain detected, dropping connection!"
            ),
            NodeEvent::HandshakeRefused { refusal } => {
                tracing::error!(resource = %name, "handshake refused: {refusal}")
            }
            NodeEvent::ResyncStarted { side, bits } => tracing::info!(
                resource = %name,
                "resync started as {side:?}: {} KiB out of sync",
                bits * 4
            ),
            NodeEvent::ResyncFinished { side, failed_bits } => tracing::info!(
                resource = %name,
                "resync finished as {side:?} ({failed_bits} blocks failed)"
            ),
            NodeEvent::ResyncPaused { paused } => {
                tracing::info!(resource = %name, paused, "resync paused/resumed")
            }
            NodeEvent::StateChangeRefused { retcode } => {
                tracing::warn!(resource = %name, retcode, "the peer refused the state change")
            }
            NodeEvent::LocalIoError => {
                tracing::error!(resource = %name, "local I/O error: disk Failed")
            }
        }
    }

    fn complete(&mut self, c: Completion) {
        match c {
            Completion::Write { id, ok, .. } => {
                let Some((_, g)) = self.writes.remove(&id) else {
                    return;
                };
                if let Some(group) = self.groups.get_mut(&g) {
                    group.failed |= !ok;
                    group.left -= 1;
                }
                self.finish_group(g);
            }
            Completion::Read { id, ok } => {
                if let Some(r) = self.reads.remove(&id) {
                    let _ = r.reply.send(if ok {
                        Ok(r.buf)
                    } else {
                        Err(io::Error::from_raw_os_error(libc::EIO))
                    });
                }
            }
            Completion::Flush { id, ok } => {
                if let Some(r) = self.flushes.remove(&id) {
                    let _ = r.send(if ok {
                        Ok(())
                    } else {
                        Err(io::Error::from_raw_os_error(libc::EIO))
                    });
                }
            }
        }
    }

    // ---- requests --------------------------------------------------------------------------

    /// Starts waiting requests in order until the node is busy.
    fn take_requests(&mut self) {
        while let Some(r) = self.waiting.pop_front() {
            if let Some(back) = self.start_request(r) {
                self.waiting.push_front(back);
                break;
            }
        }
    }

    /// Starts one request; gives it back when the node is busy.
    fn start_request(&mut self, r: Request) -> Option<Request> {
        let now = self.now();
        match r {
            Request::Write {
                offset,
                data,
                fua,
                reply,
            } => {
                if self.node.role() != Role::Primary {
                    reply.finish(Err(io::Error::from_raw_os_error(libc::EROFS)));
                    return None;
                }
                let g = self.next_group;
                self.next_group += 1;
                self.groups.insert(
                    g,
                    Group {
                        left: 0,
                        more: true,
                        failed: false,
                        reply,
                    },
                );
                self.submit_pieces(now, g, offset, data, fua)
            }
            Request::More {
                group,
                offset,
                data,
                fua,
            } => self.submit_pieces(now, group, offset, data, fua),
            Request::Read { offset, len, reply } => {
                if self.node.role() != Role::Primary {
                    // A Secondary's data may be read while it is UpToDate (a read-only view).
                    let mut buf = vec![0u8; len];
                    let r = if self.node.disk() == keelson_core::repl::conn::DiskState::UpToDate {
                        self.disk.read(&mut buf, offset).map(|()| buf)
                    } else {
                        Err(io::Error::from_raw_os_error(libc::EIO))
                    };
                    let _ = reply.send(r);
                    return None;
                }
                match self.node.submit_read(now, offset / 512, len as u32) {
                    Ok(id) => {
                        self.reads.insert(
                            id,
                            AppRead {
                                offset,
                                buf: vec![0u8; len],
                                reply,
                            },
                        );
                        None
                    }
                    Err(NodeError::Busy) => Some(Request::Read { offset, len, reply }),
                    Err(e) => {
                        let _ = reply.send(Err(io_error(Some(e))));
                        None
                    }
                }
            }
            Request::Flush { reply } => {
                if self.node.role() != Role::Primary {
                    let _ = reply.send(self.disk.flush());
                    return None;
                }
                match self.node.submit_flush(now) {
                    Ok(id) => {
                        self.flushes.insert(id, reply);
                        None
                    }
                    Err(NodeError::Busy) => Some(Request::Flush { reply }),
                    Err(e) => {
                        let _ = reply.send(Err(io_error(Some(e))));
                        None
                    }
                }
            }
            Request::Command { verb, flags, reply } => {
                let r = self.command(now, verb, flags);
                let _ = reply.send(r);
                None
            }
            Request::Stop { reply } => {
                if self.node.role() == Role::Primary {
                    if let Err(e) = self.node.secondary(now) {
                        let _ = reply.send(Err(Failure::of_node(Verb::Secondary, e)));
                        return None;
                    }
                }
                if !self.writes.is_empty() {
                    return Some(Request::Stop { reply });
                }
                // Already StandAlone is as good.
                let _ = self.node.disconnect(now);
                self.reconnect.disable(now as i64);
                self.want_connect = false;
                let ids: Vec<u32> = self.socks.keys().copied().collect();
                for id in ids {
                    self.close(id);
                    self.node.handle_closed(now, SocketId(id));
                }
                self.drain();
                match self.node.detach(now) {
                    Ok(()) | Err(NodeError::Diskless) => {}
                    Err(NodeError::Busy) => return Some(Request::Stop { reply }),
                    Err(e) => tracing::warn!(resource = %self.name(), "detach: {e}"),
                }
                self.drain();
                if let Err(e) = self.disk.shutdown_clean() {
                    tracing::warn!(resource = %self.name(), "meta data: {e}");
                }
                self.listener = None;
                self.stopping = Some(reply);
                None
            }
        }
    }

    /// Submits a write's pieces (each at most the node's largest write) until the node is
    /// busy; what is left comes back as [`Request::More`] and keeps its place in line.
    fn submit_pieces(
        &mut self,
        now: u64,
        g: usize,
        offset: u64,
        mut data: Vec<u8>,
        fua: bool,
    ) -> Option<Request> {
        let max = self.node.max_write();
        let mut done = 0usize;
        let mut error = None;
        while done < data.len() {
            let end = (done + max).min(data.len());
            let flags = WriteFlags {
                sync: true,
                fua: fua && end == data.len(),
                flush: false,
            };
            let sector = (offset + done as u64) / 512;
            match self.node.submit_write(now, sector, &data[done..end], flags) {
                Ok(id) => {
                    let piece = if done == 0 && end == data.len() {
                        std::mem::take(&mut data)
                    } else {
                        data[done..end].to_vec()
                    };
                    self.writes.insert(id, (piece, g));
                    if let Some(group) = self.groups.get_mut(&g) {
                        group.left += 1;
                    }
                    done = end;
                }
                Err(NodeError::Busy) => {
                    return Some(Request::More {
                        group: g,
                        offset: offset + done as u64,
                        data: data[done..].to_vec(),
                        fua,
                    });
                }
                Err(e) => {
                    error = Some(e);
                    break;
                }
            }
        }
        if let Some(group) = self.groups.get_mut(&g) {
            group.more = false;
            if let Some(e) = error {
                group.failed = true;
                tracing::debug!(resource = %self.cfg.name, "write refused: {e}");
            }
        }
        self.finish_group(g);
        None
    }

    /// Answers a write once all its pieces completed.
    fn finish_group(&mut self, g: usize) {
        if self.groups.get(&g).is_some_and(|x| x.left == 0 && !x.more) {
            if let Some(group) = self.groups.remove(&g) {
                let r = if group.failed {
                    Err(io::Error::from_raw_os_error(libc::EIO))
                } else {
                    Ok(())
                };
                group.reply.finish(r);
            }
        }
    }

    fn command(
        &mut self,
        now: u64,
        verb: Verb,
        flags: keelson_core::repl::admin::Flags,
    ) -> Result<(), Failure> {
        let r = match verb {
            Verb::Primary => self.node.primary(now, flags.has(Flag::Force)),
            Verb::Secondary => self.node.secondary(now),
            Verb::Connect => {
                let r = self.node.connect(now, flags.has(Flag::DiscardMyData));
                if r.is_ok() {
                    self.reconnect.enable(now as i64);
                }
                r
            }
            Verb::Disconnect => {
                let r = self.node.disconnect(now);
                if r.is_ok() {
                    self.reconnect.disable(now as i64);
                    self.want_connect = false;
                }
                r
            }
            Verb::Attach => match Disk::open(&self.cfg) {
                Ok((disk, loaded)) => {
                    let r = self.node.attach(now, loaded.meta, &loaded.al_ring);
                    if r.is_ok() {
                        self.disk = disk;
                    }
                    r
                }
                Err(e) => {
                    tracing::error!(resource = %self.name(), "attach: {e}");
                    return Err(RetCode::OpenDisk.into());
                }
            },
            Verb::Detach => self.node.detach(now),
            Verb::Invalidate => self.node.invalidate(now),
            Verb::InvalidateRemote => self.node.invalidate_remote(now),
            Verb::PauseSync => self.node.pause_sync(now),
            Verb::ResumeSync => self.node.resume_sync(now),
            Verb::NewCurrentUuid => self
                .node
                .new_current_uuid(now, flags.has(Flag::ClearBitmap)),
            Verb::Up | Verb::Down | Verb::Status => return Err(RetCode::InvalidRequest.into()),
        };
        self.drain();
        r.map_err(|e| {
            tracing::warn!(resource = %self.name(), "{}: {e}", verb.spec().name);
            Failure::of_node(verb, e)
        })
    }
}

/// Performs a local write of the peer's bytes (replicated writes, resync data).
fn perform_peer(disk: &Disk, io: &Io<'_>) -> bool {
    let Io::Write {
        sector,
        data,
        flush,
        fua,
        ..
    } = io
    else {
        return false;
    };
    if *flush && disk.flush().is_err() {
        return false;
    }
    let at = sector * 512;
    let ok = match data {
        WriteData::Bytes(b) => disk.write(b, at).is_ok(),
        WriteData::Segments(segs) => segs.clone().all(|(s, b)| disk.write(b, s * 512).is_ok()),
        WriteData::Zeroes(n) | WriteData::Discard(n) => disk.zero(at, u64::from(*n)).is_ok(),
        WriteData::App(_) => false,
    };
    ok && (!*fua || disk.flush().is_ok())
}

/// The errno an application request gets for a refusal.
fn io_error(e: Option<NodeError>) -> io::Error {
    let errno = match e {
        Some(NodeError::NotPrimary) => libc::EROFS,
        Some(NodeError::Data(_)) => libc::EINVAL,
        Some(NodeError::Busy) => libc::EAGAIN,
        _ => libc::EIO,
    };
    io::Error::from_raw_os_error(errno)
}
