//! keelsond's management remotes: one JSON-RPC session each (the core's
//! [`Session`], ovs-sessions.md §3.6), run by a thread that
//! only moves bytes and time.
//!
//! A remote is `--remote NAME[,NAME...]`: several names make one session that rotates through
//! them, as OVS's `jsonrpc_session_open_multiple` does. On every (re)connection keelsond asks
//! the peer `list_dbs` and remembers the answer; `echo` is answered both ways by the session;
//! other requests get OVS's "unknown method" error. What each link is doing is published for
//! the unixctl command `reconnect/show`.

use std::io::{ErrorKind, Read, Write};
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use keelson_core::jsonrpc::session::errno;
use keelson_core::jsonrpc::{write_error, write_request, Io, Message, Remotes, Session, Value};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use crate::stream::{self, Listener, Name, OpenError, SslConfig, Stream};

/// Largest JSON-RPC message accepted from a remote.
const MAX_MESSAGE: usize = 16 << 20;
/// Longest the link thread sleeps before looking at its stop flag.
const TICK_MS: i64 = 100;
/// Bound on a TCP connect and on one blocking write.
const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// The id of the `list_dbs` request sent on each connection.
const LIST_DBS_ID: i64 = 1;

/// What `reconnect/show` reports for one remote.
#[derive(Clone, Debug, Default)]
pub struct LinkStatus {
    /// The remote as given (`NAME[,NAME...]`).
    pub spec: String,
    /// The name the session is on or will try next.
    pub current: String,
    /// The peer of an accepted connection (passive remotes).
    pub peer: Option<String>,
    /// The FSM's statistics, rendered (`key: value` lines).
    pub fsm: Vec<(String, String)>,
    /// Last error, as text.
    pub last_error: Option<String>,
    /// Session sequence number.
    pub seqno: u32,
    /// The peer's answer to `list_dbs` on the current connection.
    pub databases: Option<Vec<String>>,
}

/// A running remote.
pub struct Link {
    status: Arc<Mutex<LinkStatus>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// Parses `NAME[,NAME...]`: a typo is an error at startup, not a log line every backoff.
fn names(spec: &str) -> Result<Vec<Name>, String> {
    spec.split(',')
        .map(|n| Name::parse(n.trim()).map_err(|e| format!("--remote {spec}: {e}")))
        .collect()
}

/// Checks a `--remote` value without starting anything.
pub fn check(spec: &str) -> Result<(), String> {
    names(spec).map(|_| ())
}

impl Link {
    /// Starts the session thread for `spec` (`NAME[,NAME...]`).
    pub fn start(spec: &str, ssl: Option<SslConfig>) -> Result<Link, String> {
        let names = names(spec)?;
        let status = Arc::new(Mutex::new(LinkStatus {
            spec: spec.to_owned(),
            current: names[0].to_string(),
            ..LinkStatus::default()
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let (st, sp) = (status.clone(), stop.clone());
        let thread = std::thread::Builder::new()
            .name(format!("remote {spec}"))
            .spawn(move || Runner::new(names, ssl, st).run(&sp))
            .map_err(|e| format!("--remote {spec}: {e}"))?;
        Ok(Link {
            status,
            stop,
            thread: Some(thread),
        })
    }

    /// A snapshot of what the link is doing.
    pub fn status(&self) -> LinkStatus {
        self.status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// `reconnect/show`: every link, one block each.
pub fn show(links: &[Link]) -> String {
    let mut out = String::new();
    for l in links {
        let s = l.status();
        out.push_str(&format!("{}\n", s.spec));
        out.push_str(&format!("  remote: {}\n", s.current));
        if let Some(p) = &s.peer {
            out.push_str(&format!("  peer: {p}\n"));
        }
        for (k, v) in &s.fsm {
            out.push_str(&format!("  {k}: {v}\n"));
        }
        out.push_str(&format!("  session_seqno: {}\n", s.seqno));
        if let Some(e) = &s.last_error {
            out.push_str(&format!("  last_error: {e}\n"));
        }
        if let Some(dbs) = &s.databases {
            out.push_str(&format!("  databases: {}\n", dbs.join(", ")));
        }
    }
    out
}

/// OVS's text for a session error number (`ovs_retval_to_string`).
fn error_text(err: i32) -> String {
    if err == errno::EOF {
        "End of file".to_owned()
    } else {
        nix::errno::Errno::from_raw(err).desc().to_owned()
    }
}

fn open_errno(e: &OpenError) -> i32 {
    match e {
        OpenError::Name(n) => n.errno(),
        OpenError::WrongKind { .. } => nix::libc::EAFNOSUPPORT,
        OpenError::Io { source, .. } => source.raw_os_error().unwrap_or(nix::libc::EIO),
        _ => nix::libc::EPROTONOSUPPORT,
    }
}

fn io_errno(e: &std::io::Error) -> i32 {
    e.raw_os_error().unwrap_or(nix::libc::EIO)
}

/// The link thread's state: the session and the sockets it asked for.
struct Runner {
    names: Vec<Name>,
    ssl: Option<SslConfig>,
    session: Session<Vec<u8>, Vec<u8>>,
    conn: Option<Stream>,
    listener: Option<Listener>,
    peer: Option<String>,
    epoch: Instant,
    asked_seqno: u32,
    databases: Option<Vec<String>>,
    status: Arc<Mutex<LinkStatus>>,
}

impl Runner {
    fn new(names: Vec<Name>, ssl: Option<SslConfig>, status: Arc<Mutex<LinkStatus>>) -> Runner {
        let first = &names[0];
        let remotes = Remotes {
            count: names.len(),
            passive: first.is_passive(),
            probes: first.needs_probes(),
            retry: true,
        };
        let epoch = Instant::now();
        Runner {
            session: Session::open(0, remotes, Vec::new(), MAX_MESSAGE, Vec::new()),
            names,
            ssl,
            conn: None,
            listener: None,
            peer: None,
            epoch,
            asked_seqno: 0,
            databases: None,
            status,
        }
    }

    fn now(&self) -> i64 {
        i64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(i64::MAX)
    }

    fn run(mut self, stop: &AtomicBool) {
        let mut buf = vec![0u8; 64 * 1024];
        while !stop.load(Ordering::SeqCst) {
            self.act();
            self.flush();
            self.publish();
            let readable = self.wait();
            self.read(readable, &mut buf);
            self.accept();
            self.publish();
        }
        tracing::info!(remote = %self.names[0], "remote stopped");
    }

    /// Carries out what the session asks for, and sends `list_dbs` on a new connection.
    fn act(&mut self) {
        loop {
            let now = self.now();
            let Some(io) = self.session.run(now) else {
                break;
            };
            match io {
                Io::Close => {
                    if let Some(mut c) = self.conn.take() {
                        let _ = c.shutdown(std::net::Shutdown::Both);
                        let err = self.session.last_error();
                        tracing::info!(remote = %self.current(), "connection dropped ({})", error_text(err));
                    }
                    self.peer = None;
                    self.databases = None;
                }
                Io::Connect(i) => {
                    let name = &self.names[i];
                    tracing::debug!(remote = %name, "connecting...");
                    match stream::connect_name(name, Some(IO_TIMEOUT), self.ssl.as_ref()) {
                        Ok(c) => {
                            let _ = c.set_nonblocking(true);
                            self.session.opened(now);
                            self.session.connected(self.now());
                            tracing::info!(remote = %name, "connected");
                            self.conn = Some(c);
                        }
                        Err(e) => {
                            tracing::info!(remote = %name, "connection attempt failed ({e})");
                            self.session.open_failed(now, open_errno(&e));
                        }
                    }
                }
                Io::Listen(i) => {
                    if self.listener.is_some() {
                        self.session.listening(now);
                        continue;
                    }
                    let name = &self.names[i];
                    match stream::listen_name(name, self.ssl.as_ref()).and_then(|l| {
                        l.set_nonblocking(true)
                            .map_err(|e| OpenError::Io {
                                name: name.to_string(),
                                source: e,
                            })
                            .map(|()| l)
                    }) {
                        Ok(l) => {
                            tracing::info!(remote = %l.name(), "listening");
                            self.listener = Some(l);
                            self.session.listening(now);
                        }
                        Err(e) => {
                            tracing::warn!(remote = %name, "cannot listen ({e})");
                            self.session.open_failed(now, open_errno(&e));
                        }
                    }
                }
            }
        }
        if self.session.is_connected() && self.session.seqno() != self.asked_seqno {
            self.asked_seqno = self.session.seqno();
            let _ = self
                .session
                .send(|w| write_request("list_dbs", &[0i64; 0], &LIST_DBS_ID, w));
        }
    }

    /// Writes what the session has queued.
    fn flush(&mut self) {
        let Some(c) = self.conn.as_mut() else {
            return;
        };
        while !self.session.transmit().is_empty() {
            match c.write(self.session.transmit()) {
                Ok(0) => {
                    self.session.failed(errno::EOF);
                    return;
                }
                Ok(n) => {
                    let now = i64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(i64::MAX);
                    self.session.sent(now, n);
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return;
                }
                Err(e) => {
                    self.session.failed(io_errno(&e));
                    return;
                }
            }
        }
    }

    /// Sleeps until the connection or listener has something, or the session's deadline (at
    /// most a tick). Returns whether the connection is readable.
    fn wait(&mut self) -> [bool; 2] {
        let now = self.now();
        let ms = self
            .session
            .poll_timeout(now)
            .map_or(TICK_MS, |d| (d - now).clamp(0, TICK_MS));
        let timeout = PollTimeout::try_from(ms as i32).unwrap_or(PollTimeout::ZERO);
        let mut fds = Vec::with_capacity(2);
        let mut slots = [None, None];
        if let Some(c) = &self.conn {
            let mut ev = PollFlags::POLLIN;
            if !self.session.transmit().is_empty() {
                ev |= PollFlags::POLLOUT;
            }
            slots[0] = Some(fds.len());
            fds.push(PollFd::new(c.as_fd(), ev));
        }
        if let Some(l) = &self.listener {
            slots[1] = Some(fds.len());
            fds.push(PollFd::new(l.as_fd(), PollFlags::POLLIN));
        }
        if fds.is_empty() {
            std::thread::sleep(Duration::from_millis(ms as u64));
            return [false, false];
        }
        let _ = poll(&mut fds, timeout);
        let ready = |i: Option<usize>| {
            i.and_then(|i| fds[i].revents())
                .is_some_and(|r| !r.is_empty())
        };
        [ready(slots[0]), ready(slots[1])]
    }

    /// Reads what arrived and hands it to the session; a read that finds nothing still counts
    /// as a receive attempt (the FSM's probe guard wants one per turn, as OVS's loop makes).
    fn read(&mut self, ready: [bool; 2], buf: &mut [u8]) {
        let now = self.now();
        if self.conn.is_none() {
            return;
        }
        if !ready[0] {
            self.session.recv(now, &[]);
            return;
        }
        // Non-blocking: read until the socket (and, for SSL, the TLS buffer) runs dry.
        for _ in 0..16 {
            let Some(c) = self.conn.as_mut() else {
                return;
            };
            let n = match c.read(buf) {
                Ok(0) => {
                    self.session.failed(errno::EOF);
                    return;
                }
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    self.session.recv(now, &[]);
                    return;
                }
                Err(e) => {
                    self.session.failed(io_errno(&e));
                    return;
                }
            };
            let mut rest = &buf[..n];
            while !rest.is_empty() {
                let (used, msg) = self.session.recv(now, rest);
                rest = &rest[used..];
                let Some(msg) = msg else {
                    continue;
                };
                // The message borrows the session's buffer: render the answer before sending.
                if let Some(reply) = handle(&msg, &mut self.databases) {
                    let _ = self.session.send(|w| w.put(&reply));
                }
            }
        }
    }

    /// Accepts on a passive remote's listener; a new connection replaces the current one.
    fn accept(&mut self) {
        let Some(l) = &self.listener else {
            return;
        };
        let now = self.now();
        match l.accept() {
            Ok((c, peer)) => {
                let _ = c.set_nonblocking(true);
                if self.session.accepted(now) {
                    tracing::info!(remote = %l.name(), "new connection replacing active connection");
                }
                tracing::info!(remote = %l.name(), %peer, "accepted");
                self.conn = Some(c);
                self.peer = Some(peer);
                self.databases = None;
            }
            Err(OpenError::Io { source, .. }) if source.kind() == ErrorKind::WouldBlock => {}
            Err(e) => {
                tracing::warn!(remote = %l.name(), "accept failed ({e})");
                self.session.listen_error(now, open_errno(&e));
                self.listener = None;
            }
        }
    }

    fn current(&self) -> String {
        self.names[self.session.remote()].to_string()
    }

    fn publish(&self) {
        let now = self.now();
        let st = self.session.fsm().stats(now);
        let opt = |v: Option<u32>| v.map_or("never".to_owned(), |ms| format!("{ms} ms"));
        let fsm = vec![
            (
                "state".into(),
                format!("{} (for {} ms)", st.state.name(), st.state_elapsed),
            ),
            ("is_connected".into(), st.is_connected.to_string()),
            ("backoff".into(), format!("{} ms", st.backoff)),
            (
                "probe_interval".into(),
                format!("{} ms", self.session.fsm().probe_interval()),
            ),
            ("since_connect".into(), opt(st.msec_since_connect)),
            ("since_disconnect".into(), opt(st.msec_since_disconnect)),
            (
                "connected_duration".into(),
                format!("{} ms", st.total_connected_duration),
            ),
            (
                "attempted_connections".into(),
                st.n_attempted_connections.to_string(),
            ),
            (
                "successful_connections".into(),
                st.n_successful_connections.to_string(),
            ),
            ("fsm_seqno".into(), st.seqno.to_string()),
        ];
        let mut s = self.status.lock().unwrap_or_else(|p| p.into_inner());
        s.current = self.current();
        s.peer = self.peer.clone();
        s.fsm = fsm;
        s.seqno = self.session.seqno();
        s.last_error = match self.session.last_error() {
            0 => None,
            e => Some(error_text(e)),
        };
        s.databases = self.databases.clone();
    }
}

/// What keelsond does with a message from a remote: the `list_dbs` reply is remembered; a
/// request gets OVS's "unknown method" error (returned rendered); anything else is ignored.
fn handle(msg: &Message<'_>, databases: &mut Option<Vec<String>>) -> Option<Vec<u8>> {
    match *msg {
        Message::Reply { result, id } if id.as_i64() == Some(LIST_DBS_ID) => {
            if let Value::Array(a) = result {
                let names = a
                    .iter()
                    .filter_map(|v| {
                        let mut text = Vec::new();
                        v.as_str()?.decode_into(&mut text).ok()?;
                        Some(String::from_utf8_lossy(&text).into_owned())
                    })
                    .collect();
                *databases = Some(names);
            }
            None
        }
        Message::Request { id, .. } => {
            let mut out = Vec::new();
            write_error(&"unknown method", &id, &mut out).ok()?;
            Some(out)
        }
        _ => None,
    }
}
