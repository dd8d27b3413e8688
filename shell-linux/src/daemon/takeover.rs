//! Live takeover (the `daemon_takeover` that libdaemon declared and never built): the old
//! instance answers `request = "takeover"` with its state and passes its listening socket along
//! with the reply (SCM_RIGHTS), so connections queued meanwhile are served by the new instance
//! and none is refused.

use std::io::{self, IoSlice, IoSliceMut, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::time::Duration;

use keelson_core::config::{Lookup, OwnedTree, ParseOptions};
use keelson_core::daemon::frame::{Reassembler, TERMINATOR};
use keelson_core::daemon::message::{check_hello, Reply};
use keelson_core::daemon::simple::write_request;
use nix::sys::socket::{recvmsg, sendmsg, ControlMessage, ControlMessageOwned, MsgFlags};

/// The request that starts a takeover.
pub const REQUEST: &str = "takeover";

/// Sends a whole framed reply with `fd` attached to its first bytes.
pub fn send_with_fd(stream: &UnixStream, body: &[u8], fd: RawFd) -> io::Result<()> {
    let mut msg = Vec::with_capacity(body.len() + TERMINATOR.len());
    msg.extend_from_slice(body);
    msg.extend_from_slice(TERMINATOR);
    let fds = [fd];
    let sent = sendmsg::<()>(
        stream.as_raw_fd(),
        &[IoSlice::new(&msg)],
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )?;
    (&*stream).write_all(&msg[sent..])
}

/// What the old instance handed over.
pub struct Handover {
    /// The listening socket, still bound to the path.
    pub listener: UnixListener,
    /// The old instance's state (`state { … }`).
    pub state: OwnedTree,
    /// The socket came from systemd, so nobody may unlink it.
    pub activated: bool,
}

/// Why a takeover failed.
#[derive(Debug)]
pub enum TakeoverError {
    /// Could not talk to the running instance.
    Io(io::Error),
    /// It answered something other than a state with a socket.
    Refused(String),
}

impl std::fmt::Display for TakeoverError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TakeoverError::Io(e) => write!(f, "takeover: {e}"),
            TakeoverError::Refused(why) => write!(f, "takeover refused: {why}"),
        }
    }
}

impl From<io::Error> for TakeoverError {
    fn from(e: io::Error) -> Self {
        TakeoverError::Io(e)
    }
}

/// Reads one framed reply with `recvmsg`, collecting any passed descriptors.
fn recv_reply(stream: &UnixStream, max: usize) -> Result<(Vec<u8>, Vec<OwnedFd>), TakeoverError> {
    let mut r = Reassembler::new(Vec::new(), max);
    let mut fds = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let mut space = nix::cmsg_space!([RawFd; 4]);
        let mut iov = [IoSliceMut::new(&mut buf)];
        let msg = recvmsg::<()>(
            stream.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        )
        .map_err(io::Error::from)?;
        for c in msg.cmsgs().map_err(io::Error::from)? {
            if let ControlMessageOwned::ScmRights(got) = c {
                // SAFETY: SCM_RIGHTS just installed these descriptors in our table; we own them.
                fds.extend(
                    got.into_iter()
                        .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }),
                );
            }
        }
        let n = msg.bytes;
        if n == 0 {
            return Err(TakeoverError::Refused(
                "connection closed before the reply ended".into(),
            ));
        }
        let done = r
            .push(&buf[..n])
            .map_err(|e| TakeoverError::Refused(e.to_string()))?;
        if done {
            return Ok((r.body().unwrap_or_default().to_vec(), fds));
        }
    }
}

fn request(
    stream: &UnixStream,
    body: &[u8],
    max: usize,
) -> Result<(Vec<u8>, Vec<OwnedFd>), TakeoverError> {
    let mut msg = body.to_vec();
    msg.extend_from_slice(TERMINATOR);
    (&*stream).write_all(&msg)?;
    recv_reply(stream, max)
}

/// The new instance's side: asks the daemon on `path` to hand over.
pub fn take(
    path: &Path,
    protocol: &str,
    version: i64,
    timeout: Duration,
) -> Result<Handover, TakeoverError> {
    let stream = UnixStream::connect(path)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    let max = keelson_core::daemon::DEFAULT_MAX_MESSAGE;

    let mut body = Vec::new();
    let _ = write_request(b"hello", &[], &mut body);
    let (hello, _) = request(&stream, &body, max)?;
    let hello = OwnedTree::from_text_owned(&hello, ParseOptions::KEEP)
        .map_err(|e| TakeoverError::Refused(format!("unparsable hello reply: {e}")))?;
    check_hello(Reply::new(hello.view()), Some(protocol), version)
        .map_err(|e| TakeoverError::Refused(e.to_string()))?;

    body.clear();
    let _ = write_request(
        REQUEST.as_bytes(),
        &[("pid", (std::process::id() as i64).into())],
        &mut body,
    );
    let (reply, mut fds) = request(&stream, &body, max)?;
    let state = OwnedTree::from_text_owned(&reply, ParseOptions::KEEP)
        .map_err(|e| TakeoverError::Refused(format!("unparsable takeover reply: {e}")))?;
    let response = Reply::new(state.view()).response().to_vec();
    if response != b"OK" {
        let reason = Reply::new(state.view())
            .reason()
            .unwrap_or_default()
            .to_vec();
        return Err(TakeoverError::Refused(format!(
            "{} {}",
            String::from_utf8_lossy(&response),
            String::from_utf8_lossy(&reason)
        )));
    }
    let fd = fds
        .drain(..)
        .next()
        .ok_or_else(|| TakeoverError::Refused("no socket came with the reply".into()))?;
    let activated = state.view().find_int64("activated", 0) != 0;
    Ok(Handover {
        listener: UnixListener::from(fd),
        state,
        activated,
    })
}
