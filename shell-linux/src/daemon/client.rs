//! The client side: connect (with a timeout), `hello` with the protocol check `daemon_open`
//! makes, then one request and one reply at a time. Plus autostart, which libdaemon declared and
//! never built.

use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use keelson_core::config::{OwnedTree, ParseOptions};
use keelson_core::daemon::frame::{Reassembler, TERMINATOR};
use keelson_core::daemon::message::{check_hello, Reply};
use keelson_core::daemon::simple::{write_request, Arg};
use nix::sys::socket::{connect, socket, AddressFamily, SockFlag, SockType, UnixAddr};

/// Why a request did not get a reply.
#[derive(Debug)]
pub enum ClientError {
    /// Nobody answers on the socket (missing, refused).
    Connect(PathBuf, io::Error),
    /// The daemon did not accept or answer in time.
    Timeout(&'static str, Duration),
    /// The daemon closed the connection.
    Closed,
    /// The reply did not parse (libdaemon's EPROTO).
    Protocol(String),
    /// `hello` refused the daemon.
    Hello(String),
    /// Reading or writing failed.
    Io(io::Error),
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientError::Connect(p, e) => write!(f, "cannot connect to {}: {e}", p.display()),
            ClientError::Timeout(what, t) => write!(
                f,
                "timed out after {:.1} s waiting to {what}",
                t.as_secs_f64()
            ),
            ClientError::Closed => f.write_str("the daemon closed the connection without a reply"),
            ClientError::Protocol(e) => write!(f, "unparsable reply: {e}"),
            ClientError::Hello(e) => f.write_str(e),
            ClientError::Io(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for ClientError {}

/// A connection to a daemon.
pub struct Client {
    stream: UnixStream,
    timeout: Duration,
    buf: Vec<u8>,
}

/// Connects, waiting up to `timeout` while the daemon's listen queue is full.
fn connect_with_timeout(path: &Path, timeout: Duration) -> Result<UnixStream, ClientError> {
    let addr = UnixAddr::new(path).map_err(|e| ClientError::Connect(path.into(), e.into()))?;
    let deadline = Instant::now() + timeout;
    loop {
        let fd: OwnedFd = socket(
            AddressFamily::Unix,
            SockType::Stream,
            SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
            None,
        )
        .map_err(|e| ClientError::Io(e.into()))?;
        match connect(fd.as_raw_fd(), &addr) {
            Ok(()) => {
                let s = UnixStream::from(fd);
                s.set_nonblocking(false).map_err(ClientError::Io)?;
                return Ok(s);
            }
            // A full listen queue: the daemon is busy, not gone.
            Err(nix::errno::Errno::EAGAIN) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(2))
            }
            Err(nix::errno::Errno::EAGAIN) => return Err(ClientError::Timeout("connect", timeout)),
            Err(e) => return Err(ClientError::Connect(path.into(), e.into())),
        }
    }
}

impl Client {
    /// Connects to `path`; `timeout` bounds the connect and every reply.
    pub fn connect(path: &Path, timeout: Duration) -> Result<Client, ClientError> {
        let stream = connect_with_timeout(path, timeout)?;
        stream
            .set_read_timeout(Some(timeout))
            .map_err(ClientError::Io)?;
        stream
            .set_write_timeout(Some(timeout))
            .map_err(ClientError::Io)?;
        Ok(Client {
            stream,
            timeout,
            buf: vec![0; 64 * 1024],
        })
    }

    /// Sends a raw body and returns the raw reply body.
    pub fn call_raw(&mut self, body: &[u8]) -> Result<Vec<u8>, ClientError> {
        let mut msg = Vec::with_capacity(body.len() + TERMINATOR.len());
        msg.extend_from_slice(body);
        msg.extend_from_slice(TERMINATOR);
        self.stream
            .write_all(&msg)
            .map_err(|e| self.io(e, "send the request"))?;
        let mut r = Reassembler::new(Vec::new(), keelson_core::daemon::DEFAULT_MAX_MESSAGE);
        loop {
            let n = self
                .stream
                .read(&mut self.buf)
                .map_err(|e| self.io(e, "receive the reply"))?;
            if n == 0 {
                return Err(ClientError::Closed);
            }
            if r.push(&self.buf[..n])
                .map_err(|e| ClientError::Protocol(e.to_string()))?
            {
                return Ok(r.body().unwrap_or_default().to_vec());
            }
        }
    }

    fn io(&self, e: io::Error, what: &'static str) -> ClientError {
        match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
                ClientError::Timeout(what, self.timeout)
            }
            io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset => ClientError::Closed,
            _ => ClientError::Io(e),
        }
    }

    /// `daemon_send_simple(name, args…)`: the reply parsed (no-dup, as libdaemon parses it).
    pub fn call(&mut self, name: &str, args: &[(&str, Arg<'_>)]) -> Result<OwnedTree, ClientError> {
        let mut body = Vec::new();
        let _ = write_request(name.as_bytes(), args, &mut body);
        let reply = self.call_raw(&body)?;
        parse_reply(&reply)
    }

    /// `hello`, checked as `daemon_open` does; returns the protocol and version.
    pub fn hello(
        &mut self,
        protocol: Option<&str>,
        version: i64,
    ) -> Result<(String, i64), ClientError> {
        let reply = self.call("hello", &[])?;
        let (p, v) = check_hello(Reply::new(reply.view()), protocol, version)
            .map_err(|e| ClientError::Hello(e.to_string()))?;
        Ok((String::from_utf8_lossy(p).into_owned(), v))
    }
}

/// Parses a reply body; an empty or comment-only body is a protocol error, as for libdaemon.
pub fn parse_reply(body: &[u8]) -> Result<OwnedTree, ClientError> {
    OwnedTree::from_text_owned(body, ParseOptions::KEEP)
        .map_err(|e| ClientError::Protocol(e.to_string()))
}

/// Connects and says hello; with `autostart`, starts `daemon` (keelsond) on `path` when nobody
/// answers and waits for it, at most `timeout`.
pub fn open(
    path: &Path,
    timeout: Duration,
    protocol: Option<&str>,
    version: i64,
    autostart: Option<&Path>,
) -> Result<Client, ClientError> {
    let mut c = match Client::connect(path, timeout) {
        Ok(c) => c,
        Err(ClientError::Connect(_, e)) if autostart.is_some() && is_absent(&e) => {
            let exe = autostart.unwrap_or(Path::new("keelsond"));
            let deadline = Instant::now() + timeout;
            start_daemon(exe, path, timeout)?;
            connect_once_up(path, timeout, deadline)?
        }
        Err(e) => return Err(e),
    };
    c.hello(protocol, version)?;
    Ok(c)
}

fn is_absent(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused
    )
}

/// Connects, retrying while the socket is missing or refuses until `deadline`: after a lost
/// autostart race the winner may still be between its pidfile and its socket.
fn connect_once_up(
    path: &Path,
    timeout: Duration,
    deadline: Instant,
) -> Result<Client, ClientError> {
    loop {
        match Client::connect(path, timeout) {
            Err(ClientError::Connect(_, e)) if is_absent(&e) && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10))
            }
            r => return r,
        }
    }
}

/// The pidfile an autostarted daemon locks: beside the socket (`keelsond.socket` →
/// `keelsond.pid`, `sock` → `sock.pid`), so it is the default pidfile for the default socket.
fn autostart_pidfile(socket: &Path) -> PathBuf {
    socket.with_extension("pid")
}

/// Runs `exe --socket PATH --pidfile PATH.pid --unixctl PATH.ctl --detach`: it returns once the daemon is ready
/// (or failed).
///
/// The pidfile is what makes concurrent autostarts safe: its lock is taken before the socket
/// is touched, so of several clients starting a daemon at once exactly one binds; the others
/// exit 13 without a word on the socket. (Without it, a loser could find the winner's socket
/// bound but not yet listening, take it for stale and unlink it, orphaning the winner.)
fn start_daemon(exe: &Path, path: &Path, timeout: Duration) -> Result<(), ClientError> {
    tracing::info!(daemon = %exe.display(), socket = %path.display(), "nothing answers; starting the daemon");
    let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut child = Command::new(exe)
        .arg("--socket")
        .arg(&abs)
        .arg("--pidfile")
        .arg(autostart_pidfile(&abs))
        // Its control socket beside the request socket too, where whoever started it looks.
        .arg("--unixctl")
        .arg(abs.with_extension("ctl"))
        .arg("--detach")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        // Kept for the error message; a lost race's "already running" is no news to the user.
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            ClientError::Connect(
                path.into(),
                io::Error::new(e.kind(), format!("starting {}: {e}", exe.display())),
            )
        })?;
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait().map_err(ClientError::Io)? {
            // Status 13: another instance won the race and holds the pidfile; it will answer.
            Some(s) if s.success() || s.code() == Some(13) => return Ok(()),
            Some(s) => {
                // The detached daemon has its stderr on /dev/null by now: this reads to EOF.
                let mut said = String::new();
                if let Some(mut e) = child.stderr.take() {
                    let _ = e.read_to_string(&mut said);
                }
                return Err(ClientError::Connect(
                    path.into(),
                    io::Error::other(format!(
                        "{} exited with {s}: {}",
                        exe.display(),
                        said.trim()
                    )),
                ));
            }
            None if Instant::now() >= deadline => {
                let _ = child.kill();
                return Err(ClientError::Timeout("start the daemon", timeout));
            }
            None => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}
