//! The event loop: one thread, epoll (through mio), every connection non-blocking.
//!
//! One thread for all clients, rather than libdaemon's thread per client: nothing a request
//! does blocks (handlers work on in-memory state), so a loop answers as many clients as a
//! pool of threads would, without a thread start per connection or a wake-up per request; a
//! stuck client costs a slot and two buffers, never a thread. Timeouts (idle clients, unread
//! replies, `--idle-timeout`, the takeover's drain) are deadlines the loop sleeps towards.

use std::io::{ErrorKind, Read};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use keelson_core::daemon::message;
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};

use super::conn::{Conn, Next};
use super::server::{reload, Shared};

const LISTENER: Token = Token(0);
const WAKE: Token = Token(1);
/// Connection tokens are slot numbers plus this.
const FIRST_CONN: usize = 2;
/// Longest sleep when nothing is due: the loop also re-reads its flags this often.
const MAX_SLEEP: Duration = Duration::from_secs(1);

/// The signal flags the loop watches (set by handlers; the wake pipe gets it out of `poll`).
pub struct Signals<'a> {
    /// SIGTERM, SIGINT or SIGQUIT arrived.
    pub term: &'a AtomicBool,
    /// SIGHUP arrived: reload the configuration.
    pub hup: &'a AtomicBool,
}

/// How the loop ended.
#[derive(Debug, PartialEq, Eq)]
pub enum End {
    /// A signal, `exit`, the idle timeout or a failure: the socket is ours to remove.
    Stopped,
    /// The listening socket and the state went to a new instance.
    HandedOver,
}

/// A takeover under way: no accepts, the others finish (bounded), then the handover.
struct Drain {
    slot: usize,
    deadline: Instant,
}

/// Connections by slot; a slot's token is `FIRST_CONN + slot`.
#[derive(Default)]
struct Slots {
    conns: Vec<Option<Conn>>,
    free: Vec<usize>,
    len: usize,
}

impl Slots {
    fn insert(&mut self, c: Conn) -> usize {
        self.len += 1;
        match self.free.pop() {
            Some(i) => {
                self.conns[i] = Some(c);
                i
            }
            None => {
                self.conns.push(Some(c));
                self.conns.len() - 1
            }
        }
    }

    fn get_mut(&mut self, slot: usize) -> Option<&mut Conn> {
        self.conns.get_mut(slot).and_then(Option::as_mut)
    }

    fn remove(&mut self, poll: &Poll, slot: usize) {
        if let Some(c) = self.conns.get_mut(slot).and_then(Option::take) {
            let _ = poll
                .registry()
                .deregister(&mut SourceFd(&c.stream.as_raw_fd()));
            self.len -= 1;
            self.free.push(slot);
        }
    }

    fn iter(&self) -> impl Iterator<Item = (usize, &Conn)> {
        self.conns
            .iter()
            .enumerate()
            .filter_map(|(i, c)| c.as_ref().map(|c| (i, c)))
    }
}

/// Serves until a signal, `exit`, the idle timeout or a takeover ends it.
pub fn run(
    shared: &Shared,
    listener: &UnixListener,
    wake_rx: &UnixStream,
    signals: Signals<'_>,
) -> End {
    let mut poll = match Poll::new() {
        Ok(p) => p,
        Err(e) => {
            tracing::error!("cannot create the event loop: {e}");
            return End::Stopped;
        }
    };
    let registered = poll
        .registry()
        .register(
            &mut SourceFd(&listener.as_raw_fd()),
            LISTENER,
            Interest::READABLE,
        )
        .and_then(|()| {
            poll.registry().register(
                &mut SourceFd(&wake_rx.as_raw_fd()),
                WAKE,
                Interest::READABLE,
            )
        });
    if let Err(e) = registered {
        tracing::error!("cannot watch the sockets: {e}");
        return End::Stopped;
    }

    let opts = &shared.opts;
    let mut events = Events::with_capacity(256);
    let mut slots = Slots::default();
    let mut again: Vec<usize> = Vec::new();
    let mut ready: Vec<usize> = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut next_id = 0u64;
    let mut drain: Option<Drain> = None;
    // Connections may have queued before the listener was watched (a takeover's, systemd's).
    let mut accept_ready = true;
    let mut now = Instant::now();
    let mut idle_since = now;
    let sweep_every = opts.client_timeout.min(MAX_SLEEP);
    let mut next_sweep = now + sweep_every;

    loop {
        if signals.term.swap(false, Ordering::SeqCst) {
            tracing::info!("shutdown requested by signal");
            shared.shutdown.store(true, Ordering::SeqCst);
        }
        if signals.hup.swap(false, Ordering::SeqCst) {
            reload(shared);
        }
        if shared.shutdown.load(Ordering::SeqCst) {
            return End::Stopped;
        }
        if slots.len > 0 {
            idle_since = now;
        } else if let Some(t) = opts.idle_timeout {
            if now.duration_since(idle_since) >= t {
                tracing::info!("inactive for {} seconds; exiting", t.as_secs());
                return End::Stopped;
            }
        }

        if let Some(d) = &drain {
            if slots.len <= 1 || now >= d.deadline {
                let slot = d.slot;
                drain = None;
                let left = slots.len.saturating_sub(1);
                if left > 0 {
                    tracing::warn!("{left} connection(s) still open after the takeover wait; they will be closed");
                }
                if let Some(c) = slots.get_mut(slot) {
                    match hand_over(shared, c, listener.as_raw_fd()) {
                        Ok(()) => {
                            tracing::info!(client = c.id, "state and socket handed over; exiting");
                            return End::HandedOver;
                        }
                        Err(e) => {
                            tracing::error!(client = c.id, "takeover failed: {e}; serving on");
                            let agent = shared.agent.lock().unwrap_or_else(|p| p.into_inner());
                            shared
                                .mounts
                                .lock()
                                .unwrap_or_else(|p| p.into_inner())
                                .apply(&agent.config);
                            shared.resources.apply(&agent.config);
                            again.push(slot);
                        }
                    }
                }
            }
        }

        if accept_ready && drain.is_none() {
            while slots.len < opts.max_clients {
                match listener.accept() {
                    Ok((stream, _)) => {
                        // Any connection restarts the idle count, however short it is.
                        idle_since = now;
                        if let Err(e) = stream.set_nonblocking(true) {
                            tracing::warn!("accept: {e}");
                            continue;
                        }
                        next_id += 1;
                        let c = Conn::new(stream, next_id, shared, now);
                        let fd = c.stream.as_raw_fd();
                        let slot = slots.insert(c);
                        // Registering reports data already waiting, so nothing is missed.
                        if let Err(e) = poll.registry().register(
                            &mut SourceFd(&fd),
                            Token(FIRST_CONN + slot),
                            Interest::READABLE | Interest::WRITABLE,
                        ) {
                            tracing::warn!("cannot watch a connection: {e}");
                            slots.remove(&poll, slot);
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {
                        accept_ready = false;
                        break;
                    }
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(e) => {
                        // EMFILE and friends: retry after the next wake-up rather than spin.
                        tracing::warn!("accept: {e}");
                        break;
                    }
                }
            }
        }

        let mut due = next_sweep;
        if let Some(d) = &drain {
            due = due.min(d.deadline);
        }
        if let (0, Some(t)) = (slots.len, opts.idle_timeout) {
            due = due.min(idle_since + t);
        }
        let sleep = if again.is_empty() {
            due.saturating_duration_since(now).min(MAX_SLEEP)
        } else {
            Duration::ZERO
        };
        if let Err(e) = poll.poll(&mut events, Some(sleep)) {
            if e.kind() != ErrorKind::Interrupted {
                tracing::error!("epoll: {e}");
                return End::Stopped;
            }
        }
        now = Instant::now();

        ready.clear();
        ready.append(&mut again);
        for ev in events.iter() {
            match ev.token() {
                LISTENER => accept_ready = true,
                WAKE => {
                    let mut sink = [0u8; 64];
                    while matches!((&*wake_rx).read(&mut sink), Ok(n) if n > 0) {}
                }
                Token(t) => ready.push(t - FIRST_CONN),
            }
        }
        for &slot in &ready {
            if drain.as_ref().is_some_and(|d| d.slot == slot) {
                continue;
            }
            let Some(c) = slots.get_mut(slot) else {
                continue;
            };
            match c.run(shared, &mut buf, now) {
                Next::Wait => {}
                Next::Again => again.push(slot),
                Next::Close => slots.remove(&poll, slot),
                Next::Takeover if drain.is_some() => {
                    tracing::warn!(
                        client = c.id,
                        "a second takeover request while one is under way"
                    );
                    let mut body = Vec::new();
                    let _ = message::failed("a takeover is already under way", &mut body);
                    c.queue(&body);
                    again.push(slot);
                }
                Next::Takeover => {
                    tracing::info!(client = c.id, "takeover requested; draining clients");
                    drain = Some(Drain {
                        slot,
                        deadline: now + opts.takeover_wait,
                    });
                }
            }
        }

        if now >= next_sweep {
            next_sweep = now + sweep_every;
            let stale: Vec<usize> = slots
                .iter()
                .filter(|(slot, c)| {
                    drain.as_ref().is_none_or(|d| d.slot != *slot)
                        && now.duration_since(c.last_activity) > opts.client_timeout
                })
                .map(|(slot, c)| {
                    let what = if c.has_unsent() {
                        "reply unread"
                    } else {
                        "idle"
                    };
                    tracing::info!(
                        client = c.id,
                        "{what} for {:?}; closing",
                        opts.client_timeout
                    );
                    slot
                })
                .collect();
            for slot in stale {
                slots.remove(&poll, slot);
            }
        }
    }
}

/// Answers the takeover request with the state and passes the listening socket along.
///
/// The loop calls this once the other connections have closed or the drain's wait ran out, and
/// returns right after a success, so every request is either in the snapshot or never run.
fn hand_over(shared: &Shared, c: &mut Conn, listener: RawFd) -> std::io::Result<()> {
    // Mounts go down before the new instance hears back: it mounts the same mount points,
    // and an unmount after that would take its mount, not ours.
    shared
        .mounts
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .stop_all();
    // Resources too: the new instance binds the same replication and NBD addresses.
    shared.resources.stop_all();
    let mut body = Vec::new();
    {
        let agent = shared.agent.lock().unwrap_or_else(|p| p.into_inner());
        let _ = message::ok(&mut body);
        if shared.activated {
            // The new instance must not unlink a socket systemd owns either.
            body.extend_from_slice(b"activated = 1\n");
        }
        let _ = agent.to_tree().view().write(&mut body);
    }
    // The reply is small and the new instance is waiting for it: a bounded blocking send.
    c.stream.set_nonblocking(false)?;
    c.stream
        .set_write_timeout(Some(shared.opts.client_timeout))?;
    let sent = super::takeover::send_with_fd(&c.stream, &body, listener);
    let _ = c.stream.set_nonblocking(true);
    sent
}
