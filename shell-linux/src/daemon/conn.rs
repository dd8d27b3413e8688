//! One client connection: read a message, answer it, repeat (config-tree.md §3.3 step 11).
//!
//! Each connection has its own thread, so a slow or stuck client only ever holds up itself; its
//! reads and writes are bounded by the client timeout, its buffer by the message cap.

use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use keelson_core::config::{Growable, ParseOptions, Tree};
use keelson_core::daemon::frame::{FrameError, Reassembler, TERMINATOR};
use keelson_core::daemon::message::{self, Request};
use keelson_core::daemon::Dispatch;
use nix::sys::socket::{getsockopt, sockopt};

use super::agent::COMMANDS;
use super::server::Shared;
use super::takeover;

/// How often a waiting connection looks at the drain and shutdown flags.
const TICK: Duration = Duration::from_millis(100);

fn wire_log(dir: &str, text: &[u8]) {
    for line in String::from_utf8_lossy(text).lines() {
        tracing::debug!(target: "keelsond::wire", "{dir}{line}");
    }
}

/// Serves `stream` until the peer closes, misbehaves, idles out, or the server shuts down.
///
/// A takeover's drain does not close the connection: the client may be between two requests
/// on it (hello, then its real request), and closing it there would cut a request the client
/// has already decided to send. The old instance keeps serving open connections until they
/// close or the takeover's bounded wait runs out; after the state is handed over, requests
/// are no longer run (see `Shared::frozen`).
pub fn serve(shared: Arc<Shared>, stream: UnixStream, id: u64) {
    let peer = getsockopt(&stream.as_fd(), sockopt::PeerCredentials).ok();
    let uid = peer.map(|c| c.uid());
    let allowed = uid.is_some_and(|u| shared.opts.allowed_uids.contains(&u));
    let _ = stream.set_write_timeout(Some(shared.opts.client_timeout));
    let _ = stream.set_read_timeout(Some(TICK));
    tracing::debug!(client = id, uid, pid = peer.map(|c| c.pid()), "connected");

    let mut r = Reassembler::new(Vec::new(), shared.opts.max_message);
    let mut buf = vec![0u8; 16 * 1024];
    let mut last_activity = Instant::now();
    loop {
        if shared.shutdown.load(Ordering::SeqCst) {
            break;
        }
        // A blocking read with a short timeout: one system call per message in the common
        // case, and still a regular look at the shutdown flag and the idle clock.
        let n = match (&stream).read(&mut buf) {
            Ok(0) => {
                if let Err(e) = r.finish() {
                    tracing::debug!(client = id, "{e}");
                }
                break;
            }
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                if last_activity.elapsed() > shared.opts.client_timeout {
                    tracing::info!(
                        client = id,
                        "idle for {:?}; closing",
                        shared.opts.client_timeout
                    );
                    break;
                }
                continue;
            }
            Err(e) => {
                tracing::debug!(client = id, "read: {e}");
                break;
            }
        };
        last_activity = Instant::now();
        match r.push(&buf[..n]) {
            Ok(false) => continue,
            Ok(true) => {}
            Err(e @ FrameError::TooLarge { .. }) => {
                tracing::warn!(client = id, "{e}; closing");
                let mut out = Vec::new();
                let _ = message::invalid("message too large", &mut out);
                out.extend_from_slice(TERMINATOR);
                let _ = (&stream).write_all(&out);
                break;
            }
            Err(e) => {
                tracing::debug!(client = id, "{e}");
                break;
            }
        }
        let body = r.body().unwrap_or_default();
        if shared.opts.wire_log {
            wire_log("<- ", body);
        }
        let mut tree = Tree::new(Growable::new());
        let parsed = match tree.parse(body, ParseOptions::KEEP) {
            Ok(()) => Some(tree.view()),
            Err(e) => {
                tracing::warn!(client = id, "error parsing request at {e}");
                None
            }
        };
        let req = Request::new(parsed);
        let mut out = Vec::new();
        if !allowed {
            let _ = message::invalid(
                &format!("permission denied for uid {}", uid.map_or(-1, i64::from)),
                &mut out,
            );
            out.extend_from_slice(TERMINATOR);
            let _ = (&stream).write_all(&out);
            tracing::warn!(
                client = id,
                uid,
                "peer not in the allowed uid list; closing"
            );
            break;
        }
        if req.name() == takeover::REQUEST.as_bytes() {
            hand_over(&shared, &stream, id);
            break;
        }
        {
            let mut agent = shared.agent.lock().unwrap_or_else(|p| p.into_inner());
            if shared.frozen.load(Ordering::SeqCst) {
                // The state went to the new instance without this request: not running it
                // and closing is what a client sees when a daemon stops, and it may retry.
                tracing::info!(client = id, "request after the handover; closing");
                break;
            }
            agent.served += 1;
            let d = Dispatch {
                protocol: &shared.opts.protocol,
                version: shared.opts.version,
                commands: COMMANDS,
            };
            let _ = d.answer(&mut agent, &req, &mut out);
        }
        if shared.opts.wire_log {
            wire_log("-> ", &out);
        }
        out.extend_from_slice(TERMINATOR);
        if let Err(e) = (&stream).write_all(&out) {
            tracing::info!(client = id, "write: {e}; closing");
            break;
        }
    }
    // The accept loop keeps a clone of every stream (to shut it down on exit) until it next
    // reaps finished threads, which can be a poll timeout away: shut the socket down here so
    // the peer sees the close now, not when the last descriptor goes.
    let _ = stream.shutdown(std::net::Shutdown::Both);
    tracing::debug!(client = id, "disconnected");
}

/// Drains the other clients (bounded), answers with the state and passes the listener along.
///
/// Order matters: stop accepting and wait until the accept loop says it has stopped, wait for
/// the other connections to close, then freeze and snapshot the state under the agent lock, so
/// every request is either in the snapshot or never run.
fn hand_over(shared: &Shared, stream: &UnixStream, id: u64) {
    if shared
        .draining
        .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
        .is_err()
    {
        tracing::warn!(
            client = id,
            "a second takeover request while one is under way"
        );
        let mut out = Vec::new();
        let _ = message::failed("a takeover is already under way", &mut out);
        out.extend_from_slice(TERMINATOR);
        let _ = (&*stream).write_all(&out);
        return;
    }
    tracing::info!(client = id, "takeover requested; draining clients");
    // Only a pause the accept loop reports from now on counts (a failed takeover left it set).
    shared.accept_paused.store(false, Ordering::SeqCst);
    shared.wake();
    let deadline = Instant::now() + shared.opts.takeover_wait;
    let wait = |done: &dyn Fn() -> bool| {
        while !done() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
    };
    wait(&|| shared.accept_paused.load(Ordering::SeqCst));
    // This connection is one of the active ones.
    wait(&|| shared.active.load(Ordering::SeqCst) <= 1);
    let left = shared.active.load(Ordering::SeqCst).saturating_sub(1);
    if left > 0 {
        tracing::warn!(
            client = id,
            "{left} connection(s) still open after the takeover wait; they will be closed"
        );
    }
    let mut body = Vec::new();
    {
        let agent = shared.agent.lock().unwrap_or_else(|p| p.into_inner());
        shared.frozen.store(true, Ordering::SeqCst);
        let _ = message::ok(&mut body);
        if shared.activated {
            // The new instance must not unlink a socket systemd owns either.
            body.extend_from_slice(b"activated = 1\n");
        }
        let _ = agent.to_tree().view().write(&mut body);
    }
    match takeover::send_with_fd(stream, &body, shared.listener_fd) {
        Ok(()) => {
            tracing::info!(client = id, "state and socket handed over; exiting");
            shared.handed_over.store(true, Ordering::SeqCst);
            shared.shutdown.store(true, Ordering::SeqCst);
        }
        Err(e) => {
            tracing::error!(client = id, "takeover failed: {e}; serving on");
            shared.frozen.store(false, Ordering::SeqCst);
            shared.draining.store(false, Ordering::SeqCst);
        }
    }
    shared.wake();
}
