//! The JSON-RPC session (ovs-sessions.md §3.6): one connection at a time to one of several
//! remotes, kept alive by the reconnect FSM, with `echo` probes, remote rotation and
//! replacement on a new accept — sans-IO.
//!
//! The shell owns the sockets and the remote names; the session owns the decisions. Each turn
//! the shell calls [`Session::run`] until it returns `None` and carries out every [`Io`]
//! (reporting back with [`Session::opened`], [`Session::connected`], [`Session::listening`],
//! [`Session::accepted`], [`Session::connect_failed`] or [`Session::open_failed`]), writes
//! [`Session::transmit`] and reports [`Session::sent`], feeds whatever it read to
//! [`Session::recv`] (an empty slice when a read found nothing, which still counts as a receive
//! attempt), reports a dead connection with [`Session::failed`], and sleeps until
//! [`Session::poll_timeout`].

use super::frame::{FrameBuf, Framer};
use super::message::{keepalive, Keepalive, Message, ECHO_PROBE};
use crate::config::{Overflow, Sink};
use crate::reconnect::{Action, Reconnect, State};

/// `errno` values the session reports as reasons, Linux's numbering as OVS logs them.
pub mod errno {
    /// Malformed input on the connection (OVS closes without a reply).
    pub const EPROTO: i32 = 71;
    /// The output queue overflowed its bound (OVS's backlog limit).
    pub const E2BIG: i32 = 7;
    /// `send` without a connection.
    pub const ENOTCONN: i32 = 107;
    /// The peer closed the connection (OVS's `EOF`).
    pub const EOF: i32 = crate::reconnect::EOF;
}

/// What the shell must do for the session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Io {
    /// Start connecting to remote `i`, then report [`Session::opened`] (and later
    /// [`Session::connected`] or [`Session::connect_failed`]) or [`Session::open_failed`].
    Connect(usize),
    /// Open the listening socket of remote `i` unless it is open, then report
    /// [`Session::listening`] or [`Session::open_failed`]; report each accepted connection
    /// with [`Session::accepted`].
    Listen(usize),
    /// Close the current connection or connection attempt (not the listening socket).
    Close,
}

/// The link under the session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Link {
    None,
    /// A connect is in progress (C's `stream`).
    Connecting,
    /// A connection carries JSON-RPC (C's `rpc`).
    Open,
}

/// How the session was opened (`jsonrpc_session_open`'s inputs that change behaviour).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Remotes {
    /// How many remote names there are (at least one; rotation goes through them in order).
    pub count: usize,
    /// The first name is a passive one (`punix:`, `ptcp:`, `pssl:`): listen rather than
    /// connect. OVS decides this from the first name only, and so does this.
    pub passive: bool,
    /// The first name needs keepalive probes (everything but `unix:`/`punix:`).
    pub probes: bool,
    /// Keep retrying forever; `false` makes one round over the remotes, then gives up.
    pub retry: bool,
}

/// A JSON-RPC session over input storage `I` (one message at most) and output storage `O`
/// (the send queue; overflowing it fails the connection as OVS's backlog limit does).
pub struct Session<I: FrameBuf, O: FrameBuf> {
    fsm: Reconnect,
    count: usize,
    remote: usize,
    next_remote: usize,
    passive: bool,
    listening: bool,
    link: Link,
    /// An error on the open connection, acted on by the next [`Session::run`] (C's rpc status).
    status: i32,
    framer: Framer<I>,
    out: O,
    sent: usize,
    /// Bytes that a write attempt left queued: draining those counts as activity (§3.6 step 2).
    carried: usize,
    seqno: u32,
    last_error: i32,
    queue: heapless::Deque<Io, 2>,
    /// The open [`Session::run`] asked for and the shell has not answered yet: a report that
    /// answers nothing is ignored, so a confused shell cannot desynchronise link and FSM.
    asked: Option<Io>,
}

impl<I: FrameBuf, O: FrameBuf> Session<I, O> {
    /// `jsonrpc_session_open` at `now`: enabled at once (the first [`Session::run`] asks to
    /// connect or listen), with as many backoff-free tries as there are remotes.
    pub fn open(now: i64, remotes: Remotes, input: I, max_message: usize, output: O) -> Self {
        let count = remotes.count.max(1);
        let mut fsm = Reconnect::new(now);
        fsm.enable(now);
        fsm.set_backoff_free_tries(u32::try_from(count).unwrap_or(u32::MAX));
        if remotes.passive {
            fsm.set_passive(true, now);
        } else if !remotes.retry {
            fsm.set_max_tries(u32::try_from(count).unwrap_or(u32::MAX));
            fsm.set_backoff(i32::MAX, i32::MAX);
        }
        if !remotes.probes {
            fsm.set_probe_interval(0);
        }
        Session {
            fsm,
            count,
            remote: 0,
            next_remote: 1,
            passive: remotes.passive,
            listening: false,
            link: Link::None,
            status: 0,
            framer: Framer::new(input, max_message),
            out: output,
            sent: 0,
            carried: 0,
            seqno: 0,
            last_error: 0,
            queue: heapless::Deque::new(),
            asked: None,
        }
    }

    // ----- the turn ---------------------------------------------------------------------

    /// The next thing to do at `now`, if any (§3.6 `run`, steps 2 and 3). Call until `None`.
    pub fn run(&mut self, now: i64) -> Option<Io> {
        // A pass can leave work for another (a probe that overflows the queue fails the
        // connection): loop until there is an answer or nothing is pending, so that after
        // `None` the deadline really lies ahead. Three passes suffice (drop, back off by 0, connect); the loop is bounded.
        for _ in 0..4 {
            if let Some(io) = self.queue.pop_front() {
                return Some(self.note(io));
            }
            if self.link == Link::Open && self.status != 0 {
                let err = self.status;
                self.fsm.disconnected(now, err);
                self.drop_link();
                self.last_error = err;
                continue;
            }
            match self.fsm.run(now) {
                Some(Action::Connect) => {
                    self.drop_link();
                    if self.passive {
                        if self.listening {
                            self.fsm.listening(now);
                        } else {
                            self.push(Io::Listen(self.remote));
                        }
                    } else {
                        self.push(Io::Connect(self.remote));
                    }
                }
                Some(Action::Disconnect) => {
                    self.fsm.disconnected(now, 0);
                    self.drop_link();
                }
                Some(Action::Probe) => {
                    // Without a connection `send` refuses, which is C's "if an rpc exists".
                    let _ = self.send(|w| w.put(ECHO_PROBE));
                }
                None => {}
            }
            let failed = self.link == Link::Open && self.status != 0;
            let due = self.fsm.poll_timeout(now).is_some_and(|d| d <= now);
            if self.queue.is_empty() && !failed && !due {
                return None;
            }
        }
        self.queue.pop_front().map(|io| self.note(io))
    }

    /// Remembers an open request handed to the shell.
    fn note(&mut self, io: Io) -> Io {
        if matches!(io, Io::Connect(_) | Io::Listen(_)) {
            self.asked = Some(io);
        }
        io
    }

    /// When [`Session::run`] next has something to do: `None` is never (until an event).
    pub fn poll_timeout(&self, now: i64) -> Option<i64> {
        if !self.queue.is_empty() || (self.link == Link::Open && self.status != 0) {
            return Some(now);
        }
        self.fsm.poll_timeout(now)
    }

    // ----- what the shell reports -------------------------------------------------------

    /// An [`Io::Connect`] is under way (the stream exists, its connect has not finished).
    pub fn opened(&mut self, now: i64) {
        if matches!(self.asked, Some(Io::Connect(_))) {
            self.asked = None;
            self.link = Link::Connecting;
            self.fsm.connecting(now);
        }
    }

    /// An [`Io::Connect`] or [`Io::Listen`] could not even start (bad name, socket error).
    pub fn open_failed(&mut self, now: i64, err: i32) {
        if self.asked.take().is_none() {
            return;
        }
        self.last_error = err;
        self.fsm.connect_failed(now, err);
        self.pick_next_remote();
    }

    /// The connect under way completed: JSON-RPC runs on it from now on.
    pub fn connected(&mut self, now: i64) {
        if self.link == Link::Connecting {
            self.fsm.connected(now);
            self.start_link();
        }
    }

    /// The connect under way failed.
    pub fn connect_failed(&mut self, now: i64, err: i32) {
        if self.link == Link::Connecting {
            self.fsm.connect_failed(now, err);
            self.pick_next_remote();
            self.link = Link::None;
            self.last_error = err;
        }
    }

    /// The listening socket of an [`Io::Listen`] is open.
    pub fn listening(&mut self, now: i64) {
        if matches!(self.asked, Some(Io::Listen(_))) {
            self.asked = None;
            self.listening = true;
            self.fsm.listening(now);
        }
    }

    /// Accepting on the listening socket failed with something other than "nothing to
    /// accept": the shell closes the listening socket.
    pub fn listen_error(&mut self, now: i64, err: i32) {
        if self.listening {
            self.fsm.listen_error(now, err);
            self.listening = false;
        }
    }

    /// A connection was accepted on the listening socket. `true` when it replaces one the
    /// session had, which the shell then drops ("new connection replacing active connection").
    ///
    /// Ignored (`false`) without a listening socket: the shell has nothing to accept on.
    pub fn accepted(&mut self, now: i64) -> bool {
        if !self.listening {
            return false;
        }
        let replaced = self.link != Link::None;
        self.fsm.connected(now);
        self.start_link();
        replaced
    }

    /// The open connection broke (a read or write error, or the peer closed it: [`errno::EOF`]).
    /// The next [`Session::run`] disconnects and asks to close it.
    pub fn failed(&mut self, err: i32) {
        if self.link == Link::Open && self.status == 0 {
            self.status = if err == 0 { errno::EOF } else { err };
        }
    }

    // ----- data ---------------------------------------------------------------------------

    /// Feeds bytes read from the connection (an empty slice for a read that found nothing).
    /// Returns how much of `input` was used, and a message when one is complete and meant for
    /// the application: `echo` requests are answered and probe replies dropped here (§3.4).
    /// Malformed input fails the connection.
    pub fn recv(&mut self, now: i64, input: &[u8]) -> (usize, Option<Message<'_>>) {
        if self.link != Link::Open || self.status != 0 {
            return (input.len(), None);
        }
        self.fsm.receive_attempted(now);
        if input.is_empty() {
            return (0, None);
        }
        self.fsm.activity(now);
        let fed = match self.framer.feed(input) {
            Ok(f) => f,
            Err(_) => {
                self.status = errno::EPROTO;
                return (input.len(), None);
            }
        };
        if !fed.complete {
            return (fed.consumed, None);
        }
        let Some(frame) = self.framer.frame() else {
            return (fed.consumed, None);
        };
        let msg = match Message::parse(frame) {
            Ok(m) => m,
            Err(_) => {
                self.status = errno::EPROTO;
                return (input.len(), None);
            }
        };
        match keepalive(&msg) {
            Keepalive::Answer(reply) => {
                let mut w = Queue {
                    out: &mut self.out,
                    failed: false,
                };
                if reply.write(&mut w).is_err() || w.failed {
                    self.status = errno::E2BIG;
                }
                (fed.consumed, None)
            }
            Keepalive::Swallow => (fed.consumed, None),
            Keepalive::Deliver => (fed.consumed, Some(msg)),
        }
    }

    /// Queues a message: `write` puts its JSON text. `Err(errno)` without a connection
    /// ([`errno::ENOTCONN`]), on a connection that already failed, or when the queue is full
    /// (which fails the connection with [`errno::E2BIG`], as OVS's backlog limit does).
    pub fn send(
        &mut self,
        write: impl FnOnce(&mut dyn Sink) -> Result<(), Overflow>,
    ) -> Result<(), i32> {
        if self.link != Link::Open {
            return Err(errno::ENOTCONN);
        }
        if self.status != 0 {
            return Err(self.status);
        }
        let mark = self.out.bytes().len();
        let mut w = Queue {
            out: &mut self.out,
            failed: false,
        };
        if write(&mut w).is_err() || w.failed {
            // The partial message must not go out: keep what was queued before it.
            self.out.truncate(mark);
            self.status = errno::E2BIG;
            return Err(errno::E2BIG);
        }
        Ok(())
    }

    /// Bytes waiting to be written to the connection.
    pub fn transmit(&self) -> &[u8] {
        if self.link != Link::Open {
            return &[];
        }
        self.out.bytes().get(self.sent..).unwrap_or_default()
    }

    /// `n` bytes of [`Session::transmit`] were written. Draining output that an earlier
    /// attempt left queued is activity; output written as soon as it was queued is not.
    pub fn sent(&mut self, now: i64, n: usize) {
        let len = self.out.bytes().len();
        self.sent = self.sent.saturating_add(n).min(len);
        if n > 0 && self.carried > 0 {
            self.fsm.activity(now);
        }
        if self.sent == len {
            self.out.clear();
            self.sent = 0;
        }
        self.carried = self.out.bytes().len() - self.sent;
    }

    // ----- state --------------------------------------------------------------------------

    /// The remote the session is on or will try next (an index into the shell's names).
    pub fn remote(&self) -> usize {
        self.remote
    }

    /// A connection carries JSON-RPC.
    pub fn is_connected(&self) -> bool {
        self.link == Link::Open
    }

    /// Connected, connecting, or still allowed to try (`is_alive`).
    pub fn is_alive(&self) -> bool {
        self.link != Link::None || self.fsm.max_tries() != 0
    }

    /// +1 on every connect and every disconnect: a change means "resend your requests".
    pub fn seqno(&self) -> u32 {
        self.seqno
    }

    /// The last error a connection or attempt ended with (0: none yet).
    pub fn last_error(&self) -> i32 {
        self.last_error
    }

    /// The reconnect FSM, for its state and statistics.
    pub fn fsm(&self) -> &Reconnect {
        &self.fsm
    }

    /// The FSM's state.
    pub fn state(&self) -> State {
        self.fsm.state()
    }

    /// `force_reconnect`: drop the connection now and connect again.
    pub fn force_reconnect(&mut self, now: i64) {
        self.fsm.force_reconnect(now);
    }

    /// `set_probe_interval` (0 or at least 1000 ms).
    pub fn set_probe_interval(&mut self, ms: i32) {
        self.fsm.set_probe_interval(ms);
    }

    /// `set_max_backoff`: the backoff grows up to `ms` (minimum stays 1000 ms).
    pub fn set_max_backoff(&mut self, ms: i32) {
        self.fsm.set_backoff(0, ms);
    }

    /// `enable_reconnect`: retry forever again, with the default backoff.
    pub fn enable_reconnect(&mut self) {
        self.fsm.set_max_tries(crate::reconnect::UNLIMITED_TRIES);
        self.fsm.set_backoff(
            crate::reconnect::DEFAULT_MIN_BACKOFF,
            crate::reconnect::DEFAULT_MAX_BACKOFF,
        );
    }

    /// `reset_backoff`: as many backoff-free tries as remotes (+1 when connected).
    pub fn reset_backoff(&mut self) {
        let extra = usize::from(self.link == Link::Open);
        let n = self.count.saturating_add(extra);
        self.fsm
            .set_backoff_free_tries(u32::try_from(n).unwrap_or(u32::MAX));
    }

    // ----- plumbing -----------------------------------------------------------------------

    fn push(&mut self, io: Io) {
        // The queue holds at most a Close and one open request; run() empties it first.
        let _ = self.queue.push_back(io);
    }

    /// A fresh connection: empty buffers, seqno +1.
    fn start_link(&mut self) {
        self.link = Link::Open;
        self.status = 0;
        self.framer.reset();
        self.out.clear();
        self.sent = 0;
        self.carried = 0;
        self.seqno = self.seqno.wrapping_add(1);
    }

    /// `jsonrpc_session_disconnect`: close what there is, seqno +1, next remote.
    fn drop_link(&mut self) {
        if self.link == Link::None {
            return;
        }
        self.link = Link::None;
        self.status = 0;
        self.out.clear();
        self.sent = 0;
        self.carried = 0;
        self.push(Io::Close);
        self.seqno = self.seqno.wrapping_add(1);
        self.pick_next_remote();
    }

    fn pick_next_remote(&mut self) {
        self.remote = self.next_remote % self.count;
        self.next_remote = (self.next_remote + 1) % self.count;
    }
}

/// A [`Sink`] that appends to the send queue.
struct Queue<'a, O: FrameBuf> {
    out: &'a mut O,
    failed: bool,
}

impl<O: FrameBuf> Sink for Queue<'_, O> {
    fn put(&mut self, bytes: &[u8]) -> Result<(), Overflow> {
        if self.failed || !self.out.append(bytes) {
            self.failed = true;
            return Err(Overflow {
                required: self.out.bytes().len() + bytes.len(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jsonrpc::{write_notification, write_request};
    use std::vec::Vec;

    const ECONNREFUSED: i32 = 111;

    type S = Session<Vec<u8>, Vec<u8>>;

    fn active(count: usize, probes: bool, retry: bool) -> S {
        let r = Remotes {
            count,
            passive: false,
            probes,
            retry,
        };
        Session::open(0, r, Vec::new(), 1 << 16, Vec::new())
    }

    /// Connects to whatever remote `run` asks for, at `now`.
    fn connect(s: &mut S, now: i64) -> usize {
        let Some(Io::Connect(i)) = s.run(now) else {
            panic!("no connect at {now}: {:?}", s.state());
        };
        s.opened(now);
        s.connected(now);
        assert!(s.is_connected());
        i
    }

    fn drain(s: &mut S, now: i64) -> Vec<u8> {
        let out = s.transmit().to_vec();
        s.sent(now, out.len());
        out
    }

    #[test]
    fn failures_rotate_through_the_remotes_with_free_tries_then_backoff() {
        let mut s = active(3, true, true);
        let mut order = Vec::new();
        for _ in 0..3 {
            let Some(Io::Connect(i)) = s.run(0) else {
                panic!()
            };
            order.push(i);
            s.opened(0);
            s.connect_failed(0, ECONNREFUSED);
        }
        // One free try per remote: all three at once, then the backoff starts at 1 s.
        assert_eq!(order, [0, 1, 2]);
        assert_eq!(s.run(0), None);
        assert_eq!(s.poll_timeout(0), Some(1000));
        assert_eq!(s.run(999), None);
        assert_eq!(s.run(1000), Some(Io::Connect(0)));
        s.opened(1000);
        s.connect_failed(1000, ECONNREFUSED);
        assert_eq!(s.poll_timeout(1000), Some(3000), "backoff doubles");
        assert_eq!(s.last_error(), ECONNREFUSED);
        assert_eq!(s.seqno(), 0, "failed attempts never connected");
        assert_eq!(s.remote(), 1);
    }

    #[test]
    fn an_open_that_cannot_start_moves_on_too() {
        let mut s = active(2, true, true);
        assert_eq!(s.run(0), Some(Io::Connect(0)));
        s.open_failed(0, 2);
        assert_eq!(s.run(0), Some(Io::Connect(1)));
        assert_eq!(s.last_error(), 2);
    }

    #[test]
    fn probes_after_silence_and_disconnects_after_a_second_silence() {
        let mut s = active(2, true, true);
        assert_eq!(connect(&mut s, 0), 0);
        assert_eq!(s.seqno(), 1);
        assert_eq!(s.state(), State::Active);
        // The receive guard: no probe until a receive attempt at or after the expiry.
        assert_eq!(s.run(5000), None);
        assert_eq!(s.poll_timeout(5000), Some(5001));
        s.recv(5000, &[]);
        assert_eq!(s.run(5000), None);
        assert_eq!(s.state(), State::Idle);
        assert_eq!(drain(&mut s, 5000), ECHO_PROBE);
        // No answer for another interval: drop and move to the next remote at once.
        s.recv(10_000, &[]);
        assert_eq!(s.run(10_000), Some(Io::Close));
        assert!(!s.is_connected());
        assert_eq!(s.seqno(), 2);
        assert_eq!(s.run(10_000), Some(Io::Connect(1)));
    }

    #[test]
    fn any_received_byte_is_activity() {
        let mut s = active(1, true, true);
        connect(&mut s, 0);
        s.recv(4000, b" ");
        s.recv(5000, &[]);
        assert_eq!(s.run(5000), None);
        assert_eq!(
            s.state(),
            State::Active,
            "activity at 4 s moves the probe to 9 s"
        );
        assert_eq!(s.poll_timeout(5000), Some(9000));
    }

    #[test]
    fn unix_remotes_are_never_probed() {
        let mut s = active(1, false, true);
        connect(&mut s, 0);
        s.recv(1_000_000, &[]);
        assert_eq!(s.run(1_000_000), None);
        assert_eq!(s.poll_timeout(1_000_000), None);
        assert!(s.transmit().is_empty());
    }

    #[test]
    fn echo_is_answered_probe_replies_swallowed_the_rest_delivered() {
        let mut s = active(1, true, true);
        connect(&mut s, 0);
        let input = br#"{"id":"e1","method":"echo","params":["hello",42]}{"id":"echo","result":[],"error":null} {"id":7,"result":["Open_vSwitch"],"error":null}"#;
        let mut rest = &input[..];
        let mut delivered = Vec::new();
        while !rest.is_empty() {
            let (used, msg) = s.recv(1, rest);
            if let Some(m) = msg {
                delivered.push(m.id().as_i64());
            }
            rest = &rest[used..];
        }
        assert_eq!(delivered, [Some(7)]);
        assert_eq!(
            drain(&mut s, 1),
            br#"{"result":["hello",42],"error":null,"id":"e1"}"#
        );
    }

    #[test]
    fn malformed_input_closes_without_a_reply() {
        let mut s = active(2, true, true);
        connect(&mut s, 0);
        let (used, msg) = s.recv(1, b"{\"id\":1,]");
        assert_eq!((used, msg.is_none()), (9, true));
        assert_eq!(s.run(1), Some(Io::Close));
        assert_eq!(s.last_error(), errno::EPROTO);
        assert!(s.transmit().is_empty());
        assert_eq!(s.run(1), Some(Io::Connect(1)));
    }

    #[test]
    fn eof_disconnects_and_backs_off_as_the_fsm_says() {
        let mut s = active(1, true, true);
        connect(&mut s, 0);
        s.failed(errno::EOF);
        assert_eq!(s.run(20_000), Some(Io::Close));
        // The connection carried no data, so no reset to 0: the minimum backoff applies.
        assert_eq!(s.run(20_000), None);
        assert_eq!(s.poll_timeout(20_000), Some(21_000));
        assert_eq!(s.run(21_000), Some(Io::Connect(0)));
        assert_eq!(s.last_error(), errno::EOF);
    }

    #[test]
    fn send_needs_a_connection_and_room() {
        let r = Remotes {
            count: 1,
            passive: false,
            probes: true,
            retry: true,
        };
        let mut s: Session<Vec<u8>, heapless::Vec<u8, 64>> =
            Session::open(0, r, Vec::new(), 1024, heapless::Vec::new());
        let req = |w: &mut dyn Sink| write_request("list_dbs", &[0i64; 0], &1i64, w);
        assert_eq!(s.send(req), Err(errno::ENOTCONN));
        let Some(Io::Connect(0)) = s.run(0) else {
            panic!()
        };
        s.opened(0);
        s.connected(0);
        s.send(req).unwrap();
        assert_eq!(s.transmit(), br#"{"method":"list_dbs","params":[],"id":1}"#);
        // A second one does not fit the 64-byte queue: the connection fails, the first
        // message stays whole.
        assert_eq!(s.send(req), Err(errno::E2BIG));
        assert_eq!(s.transmit().len(), 40);
        assert_eq!(s.run(1), Some(Io::Close));
        assert_eq!(s.last_error(), errno::E2BIG);
    }

    #[test]
    fn a_probe_that_does_not_fit_drops_the_connection_in_the_same_run() {
        let r = Remotes {
            count: 2,
            passive: false,
            probes: true,
            retry: true,
        };
        let mut s: Session<Vec<u8>, heapless::Vec<u8, 48>> =
            Session::open(0, r, Vec::new(), 1024, heapless::Vec::new());
        assert_eq!(s.run(0), Some(Io::Connect(0)));
        s.opened(0);
        s.connected(0);
        // A peer that never reads: 40 bytes stay queued, the 41-byte probe cannot follow.
        s.send(|w| write_request("list_dbs", &[0i64; 0], &1i64, w))
            .unwrap();
        s.recv(5000, &[]);
        assert_eq!(s.run(5000), Some(Io::Close));
        assert_eq!(s.last_error(), errno::E2BIG);
        assert_eq!(s.run(5000), Some(Io::Connect(1)));
    }

    #[test]
    fn reports_that_answer_nothing_are_ignored() {
        let mut s = active(1, true, true);
        s.listening(0);
        assert!(!s.accepted(0));
        s.opened(0);
        s.connected(0);
        assert!(!s.is_connected());
        assert_eq!(s.state(), State::Backoff);
    }

    #[test]
    fn draining_queued_output_is_activity_but_an_immediate_write_is_not() {
        let mut s = active(1, true, true);
        connect(&mut s, 0);
        let note = |w: &mut dyn Sink| write_notification("n", &[0i64; 0], w);
        s.send(note).unwrap();
        s.sent(4000, s.transmit().len());
        s.recv(5000, &[]);
        assert_eq!(s.run(5000), None);
        assert_eq!(s.state(), State::Idle, "written at once: no activity");
        s.send(note).unwrap();
        s.sent(5100, 3);
        s.sent(5200, s.transmit().len());
        assert_eq!(s.state(), State::Active, "a backlog drained: activity");
    }

    #[test]
    fn passive_sessions_listen_and_a_new_accept_replaces_the_old() {
        let r = Remotes {
            count: 1,
            passive: true,
            probes: true,
            retry: true,
        };
        let mut s: S = Session::open(0, r, Vec::new(), 1024, Vec::new());
        assert_eq!(s.run(0), Some(Io::Listen(0)));
        s.listening(0);
        assert_eq!(s.state(), State::Listening);
        assert_eq!(s.run(100_000), None, "listening never times out");
        assert!(!s.accepted(10));
        assert_eq!(s.seqno(), 1);
        assert!(s.accepted(20));
        assert_eq!(s.seqno(), 2);
        s.failed(errno::EOF);
        assert_eq!(s.run(30), Some(Io::Close));
        // Back to listening on the socket that is still open.
        assert_eq!(s.run(30), None);
        assert_eq!(s.state(), State::Listening);
    }

    #[test]
    fn without_retry_one_round_then_dead() {
        let mut s = active(2, true, false);
        for want in [0, 1] {
            assert_eq!(s.run(0), Some(Io::Connect(want)));
            s.opened(0);
            s.connect_failed(0, ECONNREFUSED);
        }
        // The owner sees the session is dead (the FSM waits INT_MAX ms before a third try).
        assert!(!s.is_alive());
        assert_eq!(s.run(1_000_000_000), None);
    }
}
