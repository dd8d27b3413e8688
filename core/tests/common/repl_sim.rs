//! A deterministic two-node network for the DRBD connection machine: two `Connection`s, one
//! in-memory TCP link per socket (both directions, close notifications), a virtual clock, and
//! a hook that may rewrite or drop each packet in flight. Shared by `tests/repl_conn.rs` and the
//! `repl_conn` fuzz target (included with `#[path]`).
//!
//! Every packet a machine transmits is checked to parse with the wire layer's `Frame::parse`.

#![allow(dead_code)]

use std::collections::HashMap;
use std::vec::Vec;

use keelson_core::repl::conn::{
    Action, Config, Connection, Event, SocketId, SplitMix64, VolumeConfig,
};
use keelson_core::repl::wire::{Agreed, Command, Frame};

/// Volumes per connection in the simulation.
pub const V: usize = 4;
/// A simulated node's machine.
pub type Machine = Connection<SplitMix64, V>;

/// One direction of a packet in flight: from node `from`, on link `link`.
pub struct InFlight<'a> {
    /// Sending node (0 or 1).
    pub from: usize,
    /// The link.
    pub link: usize,
    /// The packet's command (as the sender emitted it).
    pub command: Command,
    /// The packet bytes; the hook may change them or clear them (drop).
    pub bytes: &'a mut Vec<u8>,
}

/// What the hook wants done with a packet.
pub type Hook = Box<dyn FnMut(&mut InFlight<'_>)>;

struct Link {
    /// Socket id on each node's side.
    ids: [SocketId; 2],
    open: [bool; 2],
    /// Bytes in flight towards node i (queue and the receiver's unconsumed buffer).
    rx: [Vec<u8>; 2],
}

/// The two nodes and their links.
pub struct Sim {
    /// The machines.
    pub nodes: [Machine; 2],
    /// Every event each node reported, in order.
    pub events: [Vec<Event>; 2],
    /// Commands each node sent, in order, with the link they went on.
    pub sent: [Vec<(usize, Command)>; 2],
    /// Every packet on the wire as sent (after the hook): link, sending node, bytes.
    pub wire: Vec<(usize, usize, Vec<u8>)>,
    /// Data-path frames each node delivered to its shell (command only).
    pub delivered: [Vec<Command>; 2],
    /// Virtual time (ms).
    pub now: u64,
    links: Vec<Link>,
    by_id: HashMap<SocketId, (usize, usize)>,
    next_id: u32,
    /// Called for every transmitted packet.
    pub hook: Option<Hook>,
    /// When set, bytes towards node i vanish (a black hole).
    pub blackhole: [bool; 2],
    scratch: Vec<u8>,
}

impl Sim {
    /// Two nodes with these settings, volumes and seeds.
    pub fn new(configs: [Config; 2], volumes: [&[VolumeConfig]; 2], seeds: [u64; 2]) -> Sim {
        let [ca, cb] = configs;
        let mk = |c: Config, vols: &[VolumeConfig], seed| {
            let mut m = Machine::new(c, SplitMix64::new(seed)).expect("valid config");
            for v in vols {
                m.add_volume(*v).expect("volume");
            }
            m
        };
        Sim {
            nodes: [mk(ca, volumes[0], seeds[0]), mk(cb, volumes[1], seeds[1])],
            events: [Vec::new(), Vec::new()],
            sent: [Vec::new(), Vec::new()],
            delivered: [Vec::new(), Vec::new()],
            wire: Vec::new(),
            now: 0,
            links: Vec::new(),
            by_id: HashMap::new(),
            next_id: 1,
            hook: None,
            blackhole: [false; 2],
            scratch: vec![0u8; 1 << 16],
        }
    }

    fn fresh_id(&mut self) -> SocketId {
        let id = SocketId(self.next_id);
        self.next_id += 1;
        id
    }

    fn close(&mut self, link: usize, side: usize) {
        let now = self.now;
        let Some(l) = self.links.get_mut(link) else {
            return;
        };
        l.open[side] = false;
        l.rx[side].clear();
        let other = 1 - side;
        if l.open[other] {
            l.open[other] = false;
            l.rx[other].clear();
            let id = l.ids[other];
            self.nodes[other].handle_closed(now, id);
        }
    }

    /// One round of actions, transmissions, deliveries and events; true if anything moved.
    pub fn step(&mut self) -> bool {
        let now = self.now;
        let mut moved = false;
        for n in 0..2 {
            while let Some(a) = self.nodes[n].poll_action() {
                moved = true;
                match a {
                    Action::Connect => {
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
                        self.nodes[n].handle_connected(now, mine);
                        self.nodes[1 - n].handle_accepted(now, theirs);
                    }
                    Action::Close(id) => {
                        if let Some(&(link, side)) = self.by_id.get(&id) {
                            self.close(link, side);
                        }
                    }
                }
            }
        }
        for n in 0..2 {
            for link in 0..self.links.len() {
                if !self.links[link].open[n] {
                    continue;
                }
                let id = self.links[link].ids[n];
                loop {
                    let len = match self.nodes[n].poll_transmit(id, &mut self.scratch) {
                        Ok(Some(len)) => len,
                        Ok(None) => break,
                        Err(e) => panic!("node {n} cannot emit: {e}"),
                    };
                    moved = true;
                    let mut buf = self.scratch[..len].to_vec();
                    let agreed = self.nodes[n].agreed();
                    let loose = Agreed { pv: None, ..agreed };
                    let (frame, used) = Frame::parse(&buf, &loose)
                        .unwrap_or_else(|e| panic!("node {n} sent an unparsable packet: {e}"));
                    assert_eq!(used, len, "one packet per poll_transmit");
                    let command = frame.command;
                    self.sent[n].push((link, command));
                    if let Some(hook) = self.hook.as_mut() {
                        hook(&mut InFlight {
                            from: n,
                            link,
                            command,
                            bytes: &mut buf,
                        });
                    }
                    self.wire.push((link, n, buf.clone()));
                    if !self.blackhole[1 - n] {
                        self.links[link].rx[1 - n].extend_from_slice(&buf);
                    }
                }
            }
        }
        for n in 0..2 {
            for link in 0..self.links.len() {
                loop {
                    let l = &self.links[link];
                    if !l.open[n] || l.rx[n].is_empty() {
                        break;
                    }
                    let id = l.ids[n];
                    let mut input = std::mem::take(&mut self.links[link].rx[n]);
                    let r = self.nodes[n].handle_recv(now, id, &input);
                    if let Some(f) = r.frame {
                        self.delivered[n].push(f.command);
                    }
                    let used = r.used.min(input.len());
                    input.drain(..used);
                    self.links[link].rx[n] = input;
                    if used == 0 {
                        break;
                    }
                    moved = true;
                }
            }
        }
        for n in 0..2 {
            while let Some(e) = self.nodes[n].poll_event() {
                moved = true;
                self.events[n].push(e);
            }
        }
        moved
    }

    /// Moves the clock to the next deadline (if at or before `until`) and fires both timers;
    /// false if there is none. A deadline that does not move the clock and after which nothing
    /// happens, twice in a row, is a machine reporting a deadline it does not act on.
    fn advance(&mut self, until: u64, idle: &mut u32) -> bool {
        let next = self.nodes.iter().filter_map(|m| m.poll_timeout()).min();
        match next {
            Some(t) if t <= until => {
                if t <= self.now {
                    *idle += 1;
                    assert!(*idle < 3, "deadline {t} at {} is never acted on", self.now);
                } else {
                    *idle = 0;
                }
                self.now = self.now.max(t);
                let now = self.now;
                for m in &mut self.nodes {
                    m.handle_timeout(now);
                }
                true
            }
            _ => false,
        }
    }

    /// Runs until nothing moves and no timer is due before `until` (ms); returns the time.
    pub fn run_until(&mut self, until: u64) -> u64 {
        let mut idle = 0;
        for _ in 0..1_000_000 {
            if self.step() {
                idle = 0;
                continue;
            }
            if !self.advance(until, &mut idle) {
                break;
            }
        }
        self.now
    }

    /// Runs until both nodes are Connected (or `until`); true if they are.
    pub fn run_to_connected(&mut self, until: u64) -> bool {
        use keelson_core::repl::conn::ConnState;
        let mut idle = 0;
        for _ in 0..100_000 {
            let both = self
                .nodes
                .iter()
                .all(|m| m.conn_state() == ConnState::Connected);
            if both {
                // Let the post-handshake P_STATEs cross.
                while self.step() {}
                return true;
            }
            if self.step() {
                idle = 0;
                continue;
            }
            if !self.advance(until, &mut idle) {
                return false;
            }
        }
        false
    }

    /// The link a socket id belongs to.
    pub fn link_of(&self, id: SocketId) -> Option<usize> {
        self.by_id.get(&id).map(|&(link, _)| link)
    }

    /// TCP connections opened so far.
    pub fn links_opened(&self) -> usize {
        self.links.len()
    }

    /// The peer-side socket id of node `n`'s socket `id` (for checking pairings).
    pub fn peer_of(&self, id: SocketId) -> Option<SocketId> {
        let &(link, side) = self.by_id.get(&id)?;
        Some(self.links[link].ids[1 - side])
    }

    /// The disconnect reasons node `n` reported.
    pub fn reasons(&self, n: usize) -> Vec<keelson_core::repl::conn::DisconnectReason> {
        self.events[n]
            .iter()
            .filter_map(|e| match e {
                Event::Disconnected { reason } => Some(*reason),
                _ => None,
            })
            .collect()
    }
}
