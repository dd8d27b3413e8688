//! One client connection as the event loop sees it: bytes in, answers out, nothing blocking
//! (config-tree.md §3.3 step 11).
//!
//! A connection is read only while it has no unsent reply, so a client that never reads its
//! answers stops being read (its own socket buffer fills and it blocks) instead of growing ours:
//! per connection we hold at most one message (the cap) and one reply.

use std::io::{ErrorKind, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::time::Instant;

use keelson_core::config::{Growable, ParseOptions, Tree};
use keelson_core::daemon::frame::{FrameError, Reassembler, TERMINATOR};
use keelson_core::daemon::message::{self, Request};
use keelson_core::daemon::Dispatch;
use nix::sys::socket::{getsockopt, sockopt};

use super::agent;
use super::server::Shared;
use super::takeover;

/// Messages answered for one connection before the loop moves on to the others, so a client
/// that keeps its socket full cannot starve them.
const BUDGET: usize = 16;

/// What the loop should do with a connection after [`Conn::run`].
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    /// Wait for the socket to become readable or writable again.
    Wait,
    /// The budget ran out with input possibly left: run it again soon.
    Again,
    /// Done: drop it.
    Close,
    /// It asked for a takeover; it waits, unread, until the loop answers it.
    Takeover,
}

/// A connected client.
pub struct Conn {
    /// The socket, non-blocking.
    pub stream: UnixStream,
    /// For the logs.
    pub id: u64,
    uid: Option<u32>,
    allowed: bool,
    reasm: Reassembler<Vec<u8>>,
    out: Vec<u8>,
    sent: usize,
    /// Last time the peer sent or took bytes: the client timeout counts from here.
    pub last_activity: Instant,
    close_after_flush: bool,
}

fn wire_log(dir: &str, text: &[u8]) {
    for line in String::from_utf8_lossy(text).lines() {
        tracing::debug!(target: "keelsond::wire", "{dir}{line}");
    }
}

impl Conn {
    /// Takes a freshly accepted (non-blocking) stream and notes who is on the other end.
    pub fn new(stream: UnixStream, id: u64, shared: &Shared, now: Instant) -> Conn {
        let peer = getsockopt(&stream.as_fd(), sockopt::PeerCredentials).ok();
        let uid = peer.map(|c| c.uid());
        let allowed = uid.is_some_and(|u| shared.opts.allowed_uids.contains(&u));
        tracing::debug!(client = id, uid, pid = peer.map(|c| c.pid()), "connected");
        Conn {
            stream,
            id,
            uid,
            allowed,
            reasm: Reassembler::new(Vec::new(), shared.opts.max_message),
            out: Vec::new(),
            sent: 0,
            last_activity: now,
            close_after_flush: false,
        }
    }

    /// Whether a reply is waiting for the peer to read it.
    pub fn has_unsent(&self) -> bool {
        self.sent < self.out.len()
    }

    /// Sends what the socket takes of the pending reply. `Err` when the peer is gone.
    fn flush(&mut self, now: Instant) -> Result<(), ()> {
        while self.sent < self.out.len() {
            match (&self.stream).write(&self.out[self.sent..]) {
                Ok(0) => return Err(()),
                Ok(n) => {
                    self.sent += n;
                    self.last_activity = now;
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
                Err(e) => {
                    tracing::info!(client = self.id, "write: {e}; closing");
                    return Err(());
                }
            }
        }
        self.out.clear();
        self.sent = 0;
        Ok(())
    }

    /// Writes what is pending, then reads and answers messages until the socket runs dry, a
    /// reply cannot be sent at once, or the budget is spent. `buf` is the loop's read buffer.
    pub fn run(&mut self, shared: &Shared, buf: &mut [u8], now: Instant) -> Next {
        for _ in 0..BUDGET {
            if self.flush(now).is_err() {
                return Next::Close;
            }
            if self.has_unsent() {
                return Next::Wait;
            }
            if self.close_after_flush {
                return Next::Close;
            }
            match self.read_message(buf, now) {
                Got::Message => {}
                Got::Dry => return Next::Wait,
                Got::Gone => return Next::Close,
            }
            if let Some(next) = self.answer(shared) {
                return next;
            }
        }
        Next::Again
    }

    /// Reads until a message completes (one read at a time, so a read that ends a message is
    /// where the message ends: libdaemon's end-only terminator rule).
    fn read_message(&mut self, buf: &mut [u8], now: Instant) -> Got {
        loop {
            let n = match (&self.stream).read(buf) {
                Ok(0) => {
                    if let Err(e) = self.reasm.finish() {
                        tracing::debug!(client = self.id, "{e}");
                    }
                    return Got::Gone;
                }
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Got::Dry,
                Err(e) => {
                    tracing::debug!(client = self.id, "read: {e}");
                    return Got::Gone;
                }
            };
            self.last_activity = now;
            match self.reasm.push(&buf[..n]) {
                Ok(false) => continue,
                Ok(true) => return Got::Message,
                Err(e @ FrameError::TooLarge { .. }) => {
                    tracing::warn!(client = self.id, "{e}; closing");
                    let _ = message::invalid("message too large", &mut self.out);
                    self.out.extend_from_slice(TERMINATOR);
                    self.close_after_flush = true;
                    return Got::Message;
                }
                Err(e) => {
                    tracing::debug!(client = self.id, "{e}");
                    return Got::Gone;
                }
            }
        }
    }

    /// Answers the message just read into `out`. `Some` when the connection must stop here.
    fn answer(&mut self, shared: &Shared) -> Option<Next> {
        if self.close_after_flush {
            // The message was refused while reading (too large): only the refusal goes out.
            return None;
        }
        let body = self.reasm.body().unwrap_or_default();
        if shared.opts.wire_log {
            wire_log("<- ", body);
        }
        if !self.allowed {
            let _ = message::invalid(
                &format!(
                    "permission denied for uid {}",
                    self.uid.map_or(-1, i64::from)
                ),
                &mut self.out,
            );
            self.out.extend_from_slice(TERMINATOR);
            tracing::warn!(
                client = self.id,
                uid = self.uid,
                "peer not in the allowed uid list; closing"
            );
            self.close_after_flush = true;
            return None;
        }
        let mut tree = Tree::new(Growable::new());
        let parsed = match tree.parse(body, ParseOptions::KEEP) {
            Ok(()) => Some(tree.view()),
            Err(e) => {
                tracing::warn!(client = self.id, "error parsing request at {e}");
                None
            }
        };
        let req = Request::new(parsed);
        if req.name() == takeover::REQUEST.as_bytes() {
            return Some(Next::Takeover);
        }
        {
            let mut agent = shared.agent.lock().unwrap_or_else(|p| p.into_inner());
            agent.served += 1;
            let d = Dispatch {
                protocol: &shared.opts.protocol,
                version: shared.opts.version,
                commands: agent::commands(),
            };
            let _ = d.answer(&mut agent, &req, &mut self.out);
        }
        if shared.opts.wire_log {
            wire_log("-> ", &self.out);
        }
        self.out.extend_from_slice(TERMINATOR);
        None
    }

    /// Queues a reply the loop wrote (a refused second takeover) and resumes the connection.
    pub fn queue(&mut self, body: &[u8]) {
        self.out.extend_from_slice(body);
        self.out.extend_from_slice(TERMINATOR);
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        tracing::debug!(client = self.id, "disconnected");
    }
}

/// How a [`Conn::read_message`] ended.
enum Got {
    Message,
    Dry,
    Gone,
}
