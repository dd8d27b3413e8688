//! The reconnect machine: states, transitions, backoff, deadlines (ovs-sessions.md §1.1–§1.6).
//!
//! Times are `i64` ms like C's `long long`. C leaves signed overflow undefined; here every sum
//! that could overflow with hostile `now` values saturates or wraps (documented at each site), so
//! no input panics, and for all times a real clock produces the results equal C's.

use super::{
    Stats, DEFAULT_MAX_BACKOFF, DEFAULT_MIN_BACKOFF, DEFAULT_PROBE_INTERVAL, UNLIMITED_TRIES,
};

/// The FSM's states (§1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// Disabled; the initial state.
    Void,
    /// Waiting `backoff` ms before the next attempt.
    Backoff,
    /// A connection attempt (or a listen in progress) is under way.
    Connecting,
    /// Connected and recently active.
    Active,
    /// Connected, probe sent, waiting for any activity.
    Idle,
    /// The client asked to drop the connection and reconnect; act now.
    Reconnect,
    /// Passive mode, listening.
    Listening,
}

impl State {
    /// The name C and Python print (`ConnectInProgress` prints as `CONNECTING`, §1.1).
    pub const fn name(self) -> &'static str {
        match self {
            State::Void => "VOID",
            State::Backoff => "BACKOFF",
            State::Connecting => "CONNECTING",
            State::Active => "ACTIVE",
            State::Idle => "IDLE",
            State::Reconnect => "RECONNECT",
            State::Listening => "LISTENING",
        }
    }

    /// ACTIVE or IDLE.
    pub const fn is_connected(self) -> bool {
        matches!(self, State::Active | State::Idle)
    }
}

/// What [`Reconnect::run`] tells the client to do (§1.6; C's codes 1, 2, 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Start connecting (or listening, when passive) and report `connecting`/`listening`.
    Connect,
    /// Drop the connection or attempt and report `disconnected` or `connect_failed`.
    Disconnect,
    /// Send something that elicits a reply (the JSON-RPC layer sends `echo`).
    Probe,
}

/// The reconnect FSM with C semantics: 112 bytes, no allocation, no I/O.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reconnect {
    min_backoff: i32,
    max_backoff: i32,
    probe_interval: i32,
    passive: bool,
    state: State,
    state_entered: i64,
    backoff: i32,
    last_activity: i64,
    last_connected: Option<i64>,
    last_disconnected: Option<i64>,
    /// [`super::RECEIVE_GUARD_OFF`] (C's `LLONG_MAX`) disables the guard (§1.6).
    last_receive_attempt: i64,
    /// Tries *remaining*; [`UNLIMITED_TRIES`] is never decremented (§1.2).
    max_tries: u32,
    backoff_free_tries: u32,
    creation_time: i64,
    n_attempted_connections: u32,
    n_successful_connections: u32,
    total_connected_duration: u32,
    seqno: u32,
}

/// `(a - b)` as C's `unsigned int` conversion of a `long long` difference: two's-complement
/// truncation (the u32 wrapping §1.9 asks for).
fn ms_u32(a: i64, b: i64) -> u32 {
    a.wrapping_sub(b) as u32
}

impl Reconnect {
    /// A new FSM in VOID, created at `now`, with the defaults of §1.2.
    pub const fn new(now: i64) -> Self {
        Reconnect {
            min_backoff: DEFAULT_MIN_BACKOFF,
            max_backoff: DEFAULT_MAX_BACKOFF,
            probe_interval: DEFAULT_PROBE_INTERVAL,
            passive: false,
            state: State::Void,
            state_entered: now,
            backoff: 0,
            last_activity: now,
            last_connected: None,
            last_disconnected: None,
            last_receive_attempt: now,
            max_tries: UNLIMITED_TRIES,
            backoff_free_tries: 0,
            creation_time: now,
            n_attempted_connections: 0,
            n_successful_connections: 0,
            total_connected_duration: 0,
            seqno: 0,
        }
    }

    // ----- setters and getters (§1.2) ------------------------------------------------------

    /// Sets the backoff bounds: min ≥ 1000, max 0 → 8000 else ≥ 1000, max ≥ min. In BACKOFF, a
    /// current backoff above the **raw** `max` argument becomes that raw value — C's quirk, kept
    /// on purpose (§1.2, §1.9): `set_backoff(0, 0)` in BACKOFF makes the next attempt immediate.
    pub fn set_backoff(&mut self, min: i32, max: i32) {
        self.min_backoff = min.max(1000);
        self.max_backoff = if max == 0 {
            DEFAULT_MAX_BACKOFF
        } else {
            max.max(1000)
        };
        if self.min_backoff > self.max_backoff {
            self.max_backoff = self.min_backoff;
        }
        if self.state == State::Backoff && self.backoff > max {
            self.backoff = max;
        }
    }

    /// Lower backoff bound, ms.
    pub const fn min_backoff(&self) -> i32 {
        self.min_backoff
    }

    /// Upper backoff bound, ms.
    pub const fn max_backoff(&self) -> i32 {
        self.max_backoff
    }

    /// Keepalive interval: 0 turns probing off, anything else is at least 1000 ms (§1.2; a
    /// negative value is "not 0", so it becomes 1000 as in C).
    pub fn set_probe_interval(&mut self, ms: i32) {
        self.probe_interval = if ms == 0 { 0 } else { ms.max(1000) };
    }

    /// Keepalive interval, ms (0 = off).
    pub const fn probe_interval(&self) -> i32 {
        self.probe_interval
    }

    /// Sets the number of tries remaining ([`UNLIMITED_TRIES`] = unlimited).
    pub fn set_max_tries(&mut self, n: u32) {
        self.max_tries = n;
    }

    /// Tries remaining ([`UNLIMITED_TRIES`] = unlimited).
    pub const fn max_tries(&self) -> u32 {
        self.max_tries
    }

    /// Consecutive attempts that may be retried with zero backoff; 0 and 1 both mean none
    /// (§1.5 step 4a).
    pub fn set_backoff_free_tries(&mut self, n: u32) {
        self.backoff_free_tries = n;
    }

    /// Whether the FSM listens instead of connecting.
    pub const fn is_passive(&self) -> bool {
        self.passive
    }

    /// Whether the state is not VOID.
    pub fn is_enabled(&self) -> bool {
        self.state != State::Void
    }

    /// Whether the state is ACTIVE or IDLE.
    pub const fn is_connected(&self) -> bool {
        self.state.is_connected()
    }

    /// The current state.
    pub const fn state(&self) -> State {
        self.state
    }

    /// Bumped on every connect and every disconnect (§1.3).
    pub const fn seqno(&self) -> u32 {
        self.seqno
    }

    /// ms since the last successful connection as C's `unsigned`; `None` if never (C: UINT_MAX).
    pub fn last_connect_elapsed(&self, now: i64) -> Option<u32> {
        self.last_connected.map(|t| ms_u32(now, t))
    }

    /// ms since the last disconnection as C's `unsigned`; `None` if never (C: UINT_MAX).
    pub fn last_disconnect_elapsed(&self, now: i64) -> Option<u32> {
        self.last_disconnected.map(|t| ms_u32(now, t))
    }

    /// Statistics at `now` (§1.7).
    pub fn stats(&self, now: i64) -> Stats {
        let mut total = self.total_connected_duration;
        if self.is_connected() {
            if let Some(t) = self.last_connected {
                total = total.wrapping_add(ms_u32(now, t));
            }
        }
        Stats {
            creation_time: self.creation_time,
            last_activity: self.last_activity,
            last_connected: self.last_connected,
            last_disconnected: self.last_disconnected,
            backoff: self.backoff,
            seqno: self.seqno,
            is_connected: self.is_connected(),
            msec_since_connect: self.last_connect_elapsed(now),
            msec_since_disconnect: self.last_disconnect_elapsed(now),
            total_connected_duration: total,
            n_attempted_connections: self.n_attempted_connections,
            n_successful_connections: self.n_successful_connections,
            state: self.state,
            state_elapsed: ms_u32(now, self.state_entered),
        }
    }

    // ----- internals ------------------------------------------------------------------------

    /// §1.2 `may_retry`: whether a try remains; a finite count is consumed by asking.
    fn may_retry(&mut self) -> bool {
        let may = self.max_tries > 0;
        if may && self.max_tries != UNLIMITED_TRIES {
            self.max_tries -= 1;
        }
        may
    }

    /// §1.3: the bookkeeping of every state change, in C's order.
    fn transition(&mut self, now: i64, to: State) {
        if self.state == State::Connecting {
            self.n_attempted_connections = self.n_attempted_connections.wrapping_add(1);
            if to == State::Active {
                self.n_successful_connections = self.n_successful_connections.wrapping_add(1);
            }
        }
        if self.state.is_connected() != to.is_connected() {
            if self.state.is_connected() {
                if let Some(t) = self.last_connected {
                    self.total_connected_duration =
                        self.total_connected_duration.wrapping_add(ms_u32(now, t));
                }
            }
            self.seqno = self.seqno.wrapping_add(1);
        }
        self.state = to;
        self.state_entered = now;
    }

    // ----- operations (§1.4, §1.5) ----------------------------------------------------------

    /// VOID → BACKOFF with backoff 0 (connect at once), if a try remains (consumes one).
    pub fn enable(&mut self, now: i64) {
        if self.state == State::Void && self.may_retry() {
            self.transition(now, State::Backoff);
            self.backoff = 0;
        }
    }

    /// Any state → VOID; the backoff value is kept.
    pub fn disable(&mut self, now: i64) {
        if self.state != State::Void {
            self.transition(now, State::Void);
        }
    }

    /// CONNECTING/ACTIVE/IDLE → RECONNECT. `last_disconnected` is deliberately not set (§1.4).
    pub fn force_reconnect(&mut self, now: i64) {
        if matches!(self.state, State::Connecting | State::Active | State::Idle) {
            self.transition(now, State::Reconnect);
        }
    }

    /// The connection dropped or an attempt failed: back off (§1.5). A no-op in VOID and
    /// BACKOFF. `err` (errno, [`super::EOF`] or 0) only selects a log message in C.
    pub fn disconnected(&mut self, now: i64, err: i32) {
        let _ = err;
        let from = self.state;
        if matches!(from, State::Void | State::Backoff) {
            return;
        }
        if from.is_connected() {
            self.last_disconnected = Some(now);
        }
        if !self.may_retry() {
            self.transition(now, State::Void);
            return;
        }
        if self.backoff_free_tries > 1 {
            self.backoff_free_tries -= 1;
            self.backoff = 0;
        } else if from.is_connected() && (self.passive || self.carried_data_long_enough()) {
            self.backoff = if self.passive { 0 } else { self.min_backoff };
        } else if self.backoff < self.min_backoff {
            self.backoff = self.min_backoff;
        } else if self.backoff < self.max_backoff / 2 {
            self.backoff *= 2;
        } else {
            self.backoff = self.max_backoff;
        }
        self.transition(now, State::Backoff);
    }

    /// §1.5 step 4b: `last_activity − last_connected ≥ backoff`, computed exactly (i128) so that
    /// extreme times cannot overflow.
    fn carried_data_long_enough(&self) -> bool {
        let connected = self.last_connected.unwrap_or(self.last_activity);
        i128::from(self.last_activity) - i128::from(connected) >= i128::from(self.backoff)
    }

    /// → CONNECTING from any other state (even VOID, ACTIVE, LISTENING, RECONNECT).
    pub fn connecting(&mut self, now: i64) {
        if self.state != State::Connecting {
            self.transition(now, State::Connecting);
        }
    }

    /// → LISTENING from any other state.
    pub fn listening(&mut self, now: i64) {
        if self.state != State::Listening {
            self.transition(now, State::Listening);
        }
    }

    /// In LISTENING, the same as [`Reconnect::disconnected`]; elsewhere nothing.
    pub fn listen_error(&mut self, now: i64, err: i32) {
        if self.state == State::Listening {
            self.disconnected(now, err);
        }
    }

    /// A connection is up. Always passes through CONNECTING, so it counts one attempt and one
    /// success even from VOID, LISTENING or BACKOFF (how an accepted connection is adopted).
    pub fn connected(&mut self, now: i64) {
        if !self.is_connected() {
            self.connecting(now);
            self.transition(now, State::Active);
            self.last_connected = Some(now);
        }
    }

    /// An attempt failed: `connecting` then `disconnected`, from any state (even VOID).
    pub fn connect_failed(&mut self, now: i64, err: i32) {
        self.connecting(now);
        self.disconnected(now, err);
    }

    /// Data moved. Only IDLE changes state (→ ACTIVE); C leaves every other state alone, where
    /// the Python port diverges (§1.8 item 1).
    pub fn activity(&mut self, now: i64) {
        if self.state == State::Idle {
            self.transition(now, State::Active);
        }
        self.last_activity = now;
    }

    /// The client tried to receive at `now`; [`super::RECEIVE_GUARD_OFF`] disables the guard.
    pub fn receive_attempted(&mut self, now: i64) {
        self.last_receive_attempt = now;
    }

    /// Switches between listening and connecting; acts only on a change (§1.4). Going passive
    /// in CONNECTING/RECONNECT, or active in LISTENING with a try left (consumed), re-enters
    /// BACKOFF with backoff 0.
    pub fn set_passive(&mut self, passive: bool, now: i64) {
        if self.passive == passive {
            return;
        }
        self.passive = passive;
        let rearm = if passive {
            matches!(self.state, State::Connecting | State::Reconnect)
        } else {
            self.state == State::Listening && self.may_retry()
        };
        if rearm {
            self.transition(now, State::Backoff);
            self.backoff = 0;
        }
    }

    // ----- deadlines and actions (§1.6) -----------------------------------------------------

    /// The absolute time [`Reconnect::run`] next has something to say; `None` = never (C's
    /// `LLONG_MAX`). ACTIVE/IDLE apply the receive guard: past the probe expiry without a receive
    /// attempt at or after it, the answer is `now + 1`. Sums saturate instead of overflowing.
    pub fn poll_timeout(&self, now: i64) -> Option<i64> {
        let interval = i64::from(self.probe_interval);
        let probe_deadline = |base: i64| {
            let expiry = base.saturating_add(interval);
            if now < expiry || self.last_receive_attempt >= expiry {
                expiry
            } else {
                now.saturating_add(1)
            }
        };
        match self.state {
            State::Void | State::Listening => None,
            State::Backoff => Some(self.state_entered.saturating_add(i64::from(self.backoff))),
            State::Connecting => Some(
                self.state_entered
                    .saturating_add(i64::from(self.backoff.max(1000))),
            ),
            State::Reconnect => Some(self.state_entered),
            State::Active if interval != 0 => {
                Some(probe_deadline(self.last_activity.max(self.state_entered)))
            }
            State::Idle if interval != 0 => Some(probe_deadline(self.state_entered)),
            State::Active | State::Idle => None,
        }
    }

    /// ms until [`Reconnect::run`] should be called, clamped to `0..=i32::MAX` like C's `int`
    /// result; `None` where C returns −1 (no deadline). The poll-timer arming of C's `wait` is
    /// the shell's job.
    pub fn timeout(&self, now: i64) -> Option<u32> {
        self.poll_timeout(now).map(|deadline| {
            let remaining = i128::from(deadline) - i128::from(now);
            remaining.clamp(0, i128::from(i32::MAX)) as u32
        })
    }

    /// What to do at `now`, if anything. The only mutation is ACTIVE → IDLE on
    /// [`Action::Probe`]; every other answer repeats until the client reports back.
    pub fn run(&mut self, now: i64) -> Option<Action> {
        match self.poll_timeout(now) {
            Some(deadline) if now >= deadline => {}
            _ => return None,
        }
        match self.state {
            State::Void | State::Listening => None,
            State::Backoff => Some(Action::Connect),
            State::Connecting | State::Idle | State::Reconnect => Some(Action::Disconnect),
            State::Active => {
                self.transition(now, State::Idle);
                Some(Action::Probe)
            }
        }
    }
}
