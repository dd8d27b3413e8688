//! Two `repl::node::Node`s on virtual time: in-memory disks (data, meta record, bitmap, AL
//! ring — each written only when the node's I/O completes, so a crash loses what was in
//! flight), in-memory TCP links carried as byte streams, and a partition switch. Shared by
//! `tests/repl_node.rs` and the `repl_node` fuzz target (included with `#[path]`).
//!
//! Disk operations complete in the order they were handed out, `io_latency` ms later (0: in the
//! same step). Every packet consumed is logged with its command and payload length.

#![allow(dead_code)]

use std::collections::{HashMap, VecDeque};

use keelson_core::repl::conn::{Action, SocketId, SplitMix64};
use keelson_core::repl::meta::{Layout, Superblock};
use keelson_core::repl::node::{
    Completion, Io, IoToken, MetaState, Node, NodeConfig, NodeEvent, ReadFor, WriteData, WriteId,
};
use keelson_core::repl::wire::{Command, HeaderRepr};
use keelson_core::repl::write::WriteFlags;

/// Activity-log slots of the simulated nodes.
pub const AL: usize = 16;
/// A simulated node.
pub type TestNode = Node<SplitMix64, Vec<u8>, AL>;

/// What a handed-out operation does when it completes.
enum SimOp {
    Write(Vec<(u64, Vec<u8>)>),
    Zero(u64, u32),
    ResyncRead(u64, u32),
    AppRead,
    Flush,
    Meta(Vec<u8>),
    Bitmap(usize, Vec<u8>),
    Al(u64, Vec<u8>),
}

/// One node, its disks and its shell's bookkeeping.
pub struct Host {
    /// The node (None while crashed).
    pub node: Option<Box<TestNode>>,
    /// Its settings.
    pub cfg: NodeConfig,
    /// Backing device.
    pub data: Vec<u8>,
    /// The persisted meta-data record.
    pub meta: Vec<u8>,
    /// The persisted bitmap.
    pub bitmap: Vec<u8>,
    /// The persisted activity-log ring.
    pub al: Vec<u8>,
    inflight: VecDeque<(u64, IoToken, SimOp)>,
    /// Application data of submitted writes, until their local write.
    pub app: HashMap<WriteId, Vec<u8>>,
    /// Every completion polled.
    pub completions: Vec<Completion>,
    /// Every event polled.
    pub events: Vec<NodeEvent>,
    seed: u64,
    /// Disk operations performed (writes of any kind).
    pub ios_done: u64,
}

impl Host {
    /// The node (panics while crashed).
    pub fn n(&mut self) -> &mut TestNode {
        self.node.as_mut().expect("node is up")
    }

    fn write_at(&mut self, sector: u64, bytes: &[u8]) {
        let at = sector as usize * 512;
        if let Some(d) = self.data.get_mut(at..at + bytes.len()) {
            d.copy_from_slice(bytes);
        }
    }

    fn apply(&mut self, op: &SimOp) {
        match op {
            SimOp::Write(pieces) => {
                for (s, b) in pieces {
                    self.write_at(*s, b);
                }
            }
            SimOp::Zero(s, n) => {
                let z = vec![0u8; *n as usize];
                self.write_at(*s, &z);
            }
            SimOp::Meta(b) => self.meta = b.clone(),
            SimOp::Bitmap(off, b) => {
                if let Some(d) = self.bitmap.get_mut(*off..off + b.len()) {
                    d.copy_from_slice(b);
                }
            }
            SimOp::Al(off, r) => {
                let off = *off as usize;
                if let Some(d) = self.al.get_mut(off..off + r.len()) {
                    d.copy_from_slice(r);
                }
            }
            _ => {}
        }
    }
}

struct Link {
    ids: [SocketId; 2],
    open: [bool; 2],
    /// Bytes towards node i not yet consumed.
    rx: [Vec<u8>; 2],
}

/// The two nodes and their network.
pub struct Sim {
    /// The nodes.
    pub hosts: [Host; 2],
    /// Virtual time (ms).
    pub now: u64,
    /// Disk latency (ms).
    pub io_latency: u64,
    /// While set, links carry nothing and connects fail.
    pub partitioned: bool,
    /// Packets consumed: (receiving node, command, payload bytes).
    pub log: Vec<(usize, Command, u32)>,
    links: Vec<Link>,
    by_id: HashMap<SocketId, (usize, usize)>,
    next_id: u32,
    scratch: Vec<u8>,
}

/// `meta` as the v08 superblock the agent writes (the bytes a host's meta disk holds).
fn superblock(meta: &MetaState, cfg: &NodeConfig) -> Vec<u8> {
    let layout = Layout::new(meta.size_sectors, cfg.al_ring_records).expect("layout");
    let mut sb = Superblock::new(layout, 1237, None);
    meta.store(&mut sb);
    let mut b = vec![0; sb.buffer_len()];
    sb.emit(&mut b).expect("superblock");
    b
}

/// What a host's meta disk says.
pub fn meta_of(h: &Host) -> MetaState {
    MetaState::from_superblock(&Superblock::parse(&h.meta).expect("superblock"))
}

/// A fresh node from a host's persisted disks.
fn boot(h: &Host) -> Box<TestNode> {
    let meta = meta_of(h);
    let send = vec![0u8; h.cfg.min_send_buffer()];
    Box::new(
        Node::new(
            h.cfg.clone(),
            meta,
            &h.al,
            h.bitmap.clone(),
            send,
            SplitMix64::new(h.seed),
        )
        .expect("node"),
    )
}

impl Sim {
    /// Two nodes of `size` bytes each from these settings and meta data.
    pub fn new(cfgs: [NodeConfig; 2], metas: [MetaState; 2], size: usize, seeds: [u64; 2]) -> Sim {
        let mk = |i: usize| {
            let cfg = cfgs[i].clone();
            let meta = superblock(&metas[i], &cfg);
            let bm = keelson_core::repl::bitmap::bytes_for(metas[i].size_sectors);
            let mut h = Host {
                node: None,
                al: vec![0; cfg.al_ring_records as usize * 4096],
                cfg,
                data: vec![0; size],
                meta,
                bitmap: vec![0; bm],
                inflight: VecDeque::new(),
                app: HashMap::new(),
                completions: Vec::new(),
                events: Vec::new(),
                seed: seeds[i],
                ios_done: 0,
            };
            h.node = Some(boot(&h));
            h
        };
        Sim {
            hosts: [mk(0), mk(1)],
            now: 0,
            io_latency: 0,
            partitioned: false,
            log: Vec::new(),
            links: Vec::new(),
            by_id: HashMap::new(),
            next_id: 1,
            scratch: vec![0u8; 1 << 16],
        }
    }

    /// Node `n`.
    pub fn n(&mut self, n: usize) -> &mut TestNode {
        self.hosts[n].n()
    }

    fn fresh_id(&mut self) -> SocketId {
        let id = SocketId(self.next_id);
        self.next_id += 1;
        id
    }

    fn close_side(&mut self, link: usize, side: usize, notify_self: bool) {
        let now = self.now;
        let Some(l) = self.links.get_mut(link) else {
            return;
        };
        let was = l.open;
        l.open = [false; 2];
        l.rx = [Vec::new(), Vec::new()];
        let ids = l.ids;
        for s in 0..2 {
            if was[s] && (s != side || notify_self) {
                if let Some(node) = self.hosts[s].node.as_mut() {
                    node.handle_closed(now, ids[s]);
                }
            }
        }
    }

    /// Cuts every link (both ends see the close) and keeps new connects failing.
    pub fn cut(&mut self) {
        self.partitioned = true;
        for l in 0..self.links.len() {
            if self.links[l].open.iter().any(|&o| o) {
                self.close_side(l, 0, true);
            }
        }
    }

    /// Ends the partition.
    pub fn heal(&mut self) {
        self.partitioned = false;
    }

    /// Node `n` crashes: the machine and its in-flight disk operations vanish, the peer sees
    /// its sockets close.
    pub fn crash(&mut self, n: usize) {
        self.hosts[n].node = None;
        self.hosts[n].inflight.clear();
        self.hosts[n].app.clear();
        for l in 0..self.links.len() {
            let link = &mut self.links[l];
            if link.open[n] {
                link.open[n] = false;
                self.close_side(l, n, false);
            }
        }
    }

    /// Node `n` boots again from what its disks hold.
    pub fn restart(&mut self, n: usize) {
        self.hosts[n].seed = self.hosts[n].seed.wrapping_add(0x1234_5678);
        let node = boot(&self.hosts[n]);
        self.hosts[n].node = Some(node);
    }

    /// An application write on node `n` (the sim keeps the data for the local write).
    pub fn write(
        &mut self,
        n: usize,
        sector: u64,
        data: &[u8],
    ) -> Result<WriteId, keelson_core::repl::node::NodeError> {
        let now = self.now;
        let id = self.hosts[n]
            .n()
            .submit_write(now, sector, data, WriteFlags::default())?;
        self.hosts[n].app.insert(id, data.to_vec());
        Ok(id)
    }

    /// Hands out node `n`'s disk operations.
    fn take_ios(&mut self, n: usize) -> bool {
        let now = self.now;
        let due = now + self.io_latency;
        let h = &mut self.hosts[n];
        let Some(node) = h.node.as_mut() else {
            return false;
        };
        let mut moved = false;
        while let Some(io) = node.poll_io() {
            moved = true;
            let (token, op) = match io {
                Io::Write {
                    token,
                    sector,
                    data,
                    ..
                } => (
                    token,
                    match data {
                        WriteData::App(id) => {
                            let d = h.app.remove(&id).expect("app data kept");
                            SimOp::Write(vec![(sector, d)])
                        }
                        WriteData::Bytes(b) => SimOp::Write(vec![(sector, b.to_vec())]),
                        WriteData::Segments(s) => {
                            SimOp::Write(s.map(|(s, b)| (s, b.to_vec())).collect())
                        }
                        WriteData::Zeroes(len) | WriteData::Discard(len) => {
                            SimOp::Zero(sector, len)
                        }
                    },
                ),
                Io::Read {
                    token,
                    sector,
                    len,
                    purpose,
                } => (
                    token,
                    match purpose {
                        ReadFor::App(_) => SimOp::AppRead,
                        ReadFor::Resync => SimOp::ResyncRead(sector, len),
                    },
                ),
                Io::Flush { token } => (token, SimOp::Flush),
                Io::PersistMeta { token, meta } => (token, SimOp::Meta(superblock(&meta, &h.cfg))),
                Io::PersistBitmap {
                    token,
                    offset,
                    bytes,
                } => (token, SimOp::Bitmap(offset, bytes.to_vec())),
                Io::AlTransaction {
                    token,
                    offset,
                    record,
                } => (token, SimOp::Al(offset, record.to_vec())),
            };
            h.inflight.push_back((due, token, op));
        }
        moved
    }

    /// Completes node `n`'s due disk operations, in order.
    fn finish_ios(&mut self, n: usize) -> bool {
        let now = self.now;
        let mut moved = false;
        loop {
            let h = &mut self.hosts[n];
            let Some((due, _, _)) = h.inflight.front() else {
                break;
            };
            if *due > now || h.node.is_none() {
                break;
            }
            let (_, token, op) = h.inflight.pop_front().expect("front");
            h.apply(&op);
            h.ios_done += 1;
            let node = h.node.as_mut().expect("up");
            let r = match &op {
                SimOp::ResyncRead(sector, len) => {
                    let at = *sector as usize * 512;
                    let d = h.data[at..at + *len as usize].to_vec();
                    node.read_done(now, token, &d)
                }
                _ => node.io_done(now, token, true),
            };
            r.expect("completion accepted");
            moved = true;
        }
        moved
    }

    /// One round: actions, transmissions, receptions, disk I/O, events, completions.
    pub fn step(&mut self) -> bool {
        let now = self.now;
        let mut moved = false;
        for n in 0..2 {
            while let Some(a) = self.hosts[n].node.as_mut().and_then(|x| x.poll_action()) {
                moved = true;
                match a {
                    Action::Connect => {
                        let peer_up = self.hosts[1 - n].node.is_some();
                        if self.partitioned || !peer_up {
                            self.hosts[n].n().handle_connect_failed(now);
                            continue;
                        }
                        let (mine, theirs) = (self.fresh_id(), self.fresh_id());
                        let mut ids = [mine, mine];
                        ids[1 - n] = theirs;
                        let link = self.links.len();
                        self.links.push(Link {
                            ids,
                            open: [true; 2],
                            rx: [Vec::new(), Vec::new()],
                        });
                        self.by_id.insert(mine, (link, n));
                        self.by_id.insert(theirs, (link, 1 - n));
                        self.hosts[n].n().handle_connected(now, mine);
                        self.hosts[1 - n].n().handle_accepted(now, theirs);
                    }
                    Action::Close(id) => {
                        if let Some(&(link, side)) = self.by_id.get(&id) {
                            if self.links[link].open[side] {
                                self.close_side(link, side, false);
                            }
                        }
                    }
                }
            }
        }
        for n in 0..2 {
            while let Some((id, len)) = self.hosts[n]
                .node
                .as_mut()
                .and_then(|x| x.poll_transmit(now, &mut self.scratch))
            {
                moved = true;
                if let Some(&(link, side)) = self.by_id.get(&id) {
                    let l = &mut self.links[link];
                    if l.open[side] && l.open[1 - side] && !self.partitioned {
                        l.rx[1 - side].extend_from_slice(&self.scratch[..len]);
                    }
                }
            }
        }
        for n in 0..2 {
            for link in 0..self.links.len() {
                loop {
                    let l = &self.links[link];
                    if !l.open[n] || l.rx[n].is_empty() || self.hosts[n].node.is_none() {
                        break;
                    }
                    let id = l.ids[n];
                    let input = std::mem::take(&mut self.links[link].rx[n]);
                    let head = HeaderRepr::parse(&input).ok();
                    let h = &mut self.hosts[n];
                    let node = h.node.as_mut().expect("up");
                    let r = node.handle_recv(now, id, &input);
                    let used = r.used.min(input.len());
                    if let Some(io) = r.io {
                        // Perform it as a shell would: copy the peer's bytes now.
                        let (token, op) = match io {
                            Io::Write {
                                token,
                                sector,
                                data,
                                ..
                            } => (
                                token,
                                match data {
                                    WriteData::Bytes(b) => SimOp::Write(vec![(sector, b.to_vec())]),
                                    WriteData::Segments(s) => {
                                        SimOp::Write(s.map(|(s, b)| (s, b.to_vec())).collect())
                                    }
                                    WriteData::Zeroes(l) | WriteData::Discard(l) => {
                                        SimOp::Zero(sector, l)
                                    }
                                    WriteData::App(_) => panic!("app data from the network"),
                                },
                            ),
                            other => panic!("handle_recv handed out {other:?}"),
                        };
                        h.inflight.push_back((now + self.io_latency, token, op));
                    }
                    if let (Some(hd), true) = (head, used > 0) {
                        if used >= hd.frame_len() {
                            self.log.push((n, hd.command, hd.length));
                        }
                    }
                    let mut rest = input;
                    rest.drain(..used);
                    if self.links[link].open[n] {
                        self.links[link].rx[n] = rest;
                    }
                    if used == 0 {
                        break;
                    }
                    moved = true;
                }
            }
        }
        for n in 0..2 {
            moved |= self.take_ios(n);
            moved |= self.finish_ios(n);
            let h = &mut self.hosts[n];
            if let Some(node) = h.node.as_mut() {
                while let Some(e) = node.poll_event() {
                    h.events.push(e);
                    moved = true;
                }
                while let Some(c) = node.poll_completion() {
                    h.completions.push(c);
                    moved = true;
                }
            }
        }
        moved
    }

    fn next_deadline(&self) -> Option<u64> {
        let mut t: Option<u64> = None;
        for h in &self.hosts {
            let mut at = |x: u64| t = Some(t.map_or(x, |y: u64| y.min(x)));
            if let Some(n) = h.node.as_ref() {
                if let Some(x) = n.poll_timeout() {
                    at(x);
                }
            }
            if let Some((due, _, _)) = h.inflight.front() {
                at(*due);
            }
        }
        t
    }

    /// Moves to the next deadline (if at or before `until`) and fires the timers.
    fn advance(&mut self, until: u64, idle: &mut u32) -> bool {
        match self.next_deadline() {
            Some(t) if t <= until => {
                if t <= self.now {
                    *idle += 1;
                    assert!(*idle < 50, "deadline {t} at {} is never acted on", self.now);
                } else {
                    *idle = 0;
                }
                self.now = self.now.max(t);
                let now = self.now;
                for h in &mut self.hosts {
                    if let Some(n) = h.node.as_mut() {
                        n.handle_timeout(now);
                    }
                }
                true
            }
            _ => false,
        }
    }

    /// Runs until nothing moves and no deadline is due before `until`.
    pub fn run_until(&mut self, until: u64) -> u64 {
        let mut idle = 0;
        for _ in 0..10_000_000 {
            if self.step() {
                continue;
            }
            if !self.advance(until, &mut idle) {
                break;
            }
        }
        self.now
    }

    /// Lets `ms` of virtual time pass, running everything due.
    pub fn tick(&mut self, ms: u64) {
        let t = self.now + ms;
        self.run_until(t);
        self.now = self.now.max(t);
    }

    /// Runs until `done` holds (checked between steps) or `until`; true if it held.
    pub fn run_to(&mut self, until: u64, mut done: impl FnMut(&mut Sim) -> bool) -> bool {
        let mut idle = 0;
        for _ in 0..10_000_000 {
            if done(self) {
                return true;
            }
            if self.step() {
                continue;
            }
            if !self.advance(until, &mut idle) {
                return done(self);
            }
        }
        false
    }

    /// Flips bits of a byte still waiting for node `to` (the `at`-th pending byte over its
    /// links, wrapping); false if nothing is pending.
    pub fn garble(&mut self, to: usize, at: usize, xor: u8) -> bool {
        let total: usize = self.links.iter().map(|l| l.rx[to].len()).sum();
        if total == 0 {
            return false;
        }
        let mut at = at % total;
        for l in &mut self.links {
            if at < l.rx[to].len() {
                l.rx[to][at] ^= xor.max(1);
                return true;
            }
            at -= l.rx[to].len();
        }
        false
    }

    /// Appends raw bytes to what node `to` will read on its `which`-th open link.
    pub fn inject(&mut self, to: usize, which: usize, bytes: &[u8]) -> bool {
        let open: Vec<usize> = (0..self.links.len())
            .filter(|&l| self.links[l].open == [true; 2])
            .collect();
        if open.is_empty() {
            return false;
        }
        let l = open[which % open.len()];
        self.links[l].rx[to].extend_from_slice(bytes);
        true
    }

    /// Payload bytes of `command` packets node `to` consumed.
    pub fn bytes_of(&self, to: usize, command: Command) -> u64 {
        self.log
            .iter()
            .filter(|(n, c, _)| *n == to && *c == command)
            .map(|(_, _, l)| u64::from(*l))
            .sum()
    }

    /// Packets of `command` node `to` consumed.
    pub fn count_of(&self, to: usize, command: Command) -> usize {
        self.log
            .iter()
            .filter(|(n, c, _)| *n == to && *c == command)
            .count()
    }
}
