//! The sans-IO NBD server session: one client connection from greeting to disconnect.
//!
//! - [`export`]: [`ExportInfo`] (size, read-only, what is advertised), the [`Exports`] lookup
//!   and the [`Config`] limits.
//! - [`error`]: [`Error`], a hard-disconnect reason or a shell misuse.
//! - `options`: option haggling and its replies; `requests`: checking transmission requests.
//!
//! The shell feeds received bytes to [`Session::handle_input`] and gets back how many it may
//! drop plus at most one [`Action`] to run on the backend; it reports the outcome with
//! [`Session::complete`] and sends what [`Session::poll_transmit`] writes. Actions carry a
//! handle the session assigns, unique while in flight: the client's cookies may repeat (the
//! spec only says they SHOULD NOT), so they cannot name a completion. A successful read's
//! reply header says the data follows ([`Transmit::read`]): the shell sends the bytes it read
//! right behind it, so data is never copied through the session.
//!
//! ```
//! use keelson_core::nbd::session::{Action, Config, ExportInfo, Session};
//! use keelson_core::nbd::wire::{ClientFlagsRepr, InfoRequest, OptionRequestRepr, RequestRepr};
//! use keelson_core::nbd::wire::transmission::Command;
//!
//! let exports: &[(&[u8], ExportInfo)] = &[(b"r0", ExportInfo::new(0, 1 << 20))];
//! let mut s: Session<_, 4> = Session::new(exports, Config::DEFAULT);
//! let mut out = [0u8; 256];
//! assert_eq!(s.poll_transmit(&mut out)?.map(|t| t.len), Some(18)); // the greeting
//!
//! // Client flags, then NBD_OPT_GO for "r0" (no information requests).
//! let mut input = [0u8; 64];
//! ClientFlagsRepr { flags: 3 }.emit(&mut input)?;
//! let mut data = [0u8; 8];
//! let n = InfoRequest::emit(b"r0", &[], &mut data)?;
//! let n = 4 + OptionRequestRepr { option: 7, length: n as u32 }.emit(&data[..n], &mut input[4..])?;
//! assert_eq!(s.handle_input(&input[..n])?.consumed, n);
//! while s.poll_transmit(&mut out)?.is_some() {} // NBD_REP_INFO x2, NBD_REP_ACK
//!
//! // A read: the session asks the shell for the bytes, then writes the reply header.
//! let req = RequestRepr { flags: 0, command: Command::Read, cookie: 5, offset: 0, length: 512 };
//! req.emit(&mut input)?;
//! let p = s.handle_input(&input[..28])?;
//! let Some(Action::Read { handle, offset: 0, len: 512 }) = p.action else { panic!() };
//! s.complete(handle, Ok(()))?; // the reply carries the client's cookie, 5
//! let t = s.poll_transmit(&mut out)?.unwrap();
//! assert_eq!((t.len, t.read.map(|r| r.len)), (16, Some(512))); // then send the 512 bytes
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod error;
pub mod export;
mod options;
mod requests;

pub use error::Error;
pub use export::{Config, ExportInfo, Exports};

use crate::nbd::wire::handshake::{FLAG_FIXED_NEWSTYLE, FLAG_NO_ZEROES};
use crate::nbd::wire::transmission::ErrorCode;
use crate::nbd::wire::{GreetingRepr, SimpleReplyRepr};
use options::OptReply;

/// Work for the shell's backend. Every action with a handle must be answered with
/// [`Session::complete`]; `Disconnect` means: finish what is in flight, send what
/// [`Session::poll_transmit`] still has, then close.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action<'a> {
    /// Read `len` bytes at `offset` and keep them until the reply says they follow.
    Read {
        /// The session's handle for this request (not the client's cookie).
        handle: u64,
        /// Byte offset (within the export).
        offset: u64,
        /// Bytes (at most [`Config::max_payload`], never 0).
        len: u32,
    },
    /// Write `data` at `offset`; with `fua`, persist it before completing.
    Write {
        /// The request's handle.
        handle: u64,
        /// Byte offset (the write lies within the export).
        offset: u64,
        /// The payload, borrowed from the input given to `handle_input`.
        data: &'a [u8],
        /// `NBD_CMD_FLAG_FUA`.
        fua: bool,
    },
    /// Persist every write already completed (`fdatasync`).
    Flush {
        /// The request's handle.
        handle: u64,
    },
    /// Discard a range (a hint: doing nothing is correct).
    Trim {
        /// The request's handle.
        handle: u64,
        /// Byte offset.
        offset: u64,
        /// Bytes.
        len: u32,
        /// `NBD_CMD_FLAG_FUA`.
        fua: bool,
    },
    /// Make a range read back as zeroes.
    WriteZeroes {
        /// The request's handle.
        handle: u64,
        /// Byte offset.
        offset: u64,
        /// Bytes.
        len: u32,
        /// `NBD_CMD_FLAG_FUA`.
        fua: bool,
        /// `NBD_CMD_FLAG_NO_HOLE`: allocate, do not punch a hole.
        no_hole: bool,
    },
    /// The client ended the session (`NBD_CMD_DISC` or `NBD_OPT_ABORT`).
    Disconnect,
}

impl Action<'_> {
    /// The handle to complete, if the action needs a completion.
    pub const fn handle(&self) -> Option<u64> {
        match *self {
            Action::Read { handle, .. }
            | Action::Write { handle, .. }
            | Action::Flush { handle }
            | Action::Trim { handle, .. }
            | Action::WriteZeroes { handle, .. } => Some(handle),
            Action::Disconnect => None,
        }
    }
}

/// What one [`Session::handle_input`] call did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress<'a> {
    /// Bytes at the front of the input that are used up (drop them after running `action`).
    pub consumed: usize,
    /// Work for the backend; the call stops after one.
    pub action: Option<Action<'a>>,
    /// Without an action: the rest of the input must hold at least this many bytes before the
    /// session can go on. `None`: it waits for `poll_transmit` or `complete` instead (or, once
    /// [`Session::is_finished`], for nothing). Input may have queued replies either way, so
    /// drain `poll_transmit` before waiting for the client.
    pub need: Option<usize>,
}

/// One message written by [`Session::poll_transmit`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// Bytes written at the start of the buffer.
    pub len: usize,
    /// The handle of the action this reply answers (`None` for handshake messages and for
    /// requests answered without an action).
    pub handle: Option<u64>,
    /// A successful read reply: the shell sends these bytes of data right after the message.
    pub read: Option<ReadData>,
}

/// The data a read reply carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadData {
    /// The handle of the read.
    pub handle: u64,
    /// Bytes to send.
    pub len: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Waiting for the client's 32-bit flags.
    ClientFlags,
    /// Option haggling.
    Options,
    /// Requests and replies.
    Transmission,
    /// The client said goodbye; only in-flight work and queued output remain.
    Closing,
}

/// A request handed to the shell and not completed yet.
#[derive(Clone, Copy, Debug)]
struct Pending {
    handle: u64,
    cookie: u64,
    /// A read's length (its reply carries data on success).
    read_len: u32,
}

/// A reply ready to send, in completion order.
#[derive(Clone, Copy, Debug)]
struct Ready {
    /// The session's handle (0 for replies sent without an action).
    handle: u64,
    cookie: u64,
    result: Result<(), ErrorCode>,
    read_len: u32,
}

/// One internal step of `handle_input`.
enum Step<'a> {
    /// Bytes used up without an action (more may follow).
    Consumed(usize),
    /// Bytes used up and an action to return.
    Action(usize, Action<'a>),
    /// The front of the input must hold this many bytes.
    Need(usize),
    /// Waiting for output to drain or completions.
    Blocked,
}

/// An NBD server session over the exports `E`, with up to `N` requests in flight (handed to
/// the shell or with replies queued). Fixed newstyle, simple replies only.
pub struct Session<E: Exports, const N: usize> {
    exports: E,
    config: Config,
    phase: Phase,
    greeted: bool,
    no_zeroes: bool,
    opt_reply: OptReply,
    /// Bytes of an oversized option or a refused write's payload still to skip.
    discard: u64,
    export: Option<ExportInfo>,
    pending: heapless::Vec<Pending, N>,
    ready: heapless::Deque<Ready, N>,
    /// The last handle handed out.
    last_handle: u64,
    failed: Option<Error>,
}

impl<E: Exports, const N: usize> Session<E, N> {
    /// A session that will greet the client on the first `poll_transmit`.
    pub fn new(exports: E, config: Config) -> Self {
        Session {
            exports,
            config,
            phase: Phase::ClientFlags,
            greeted: false,
            no_zeroes: false,
            opt_reply: OptReply::None,
            discard: 0,
            export: None,
            pending: heapless::Vec::new(),
            ready: heapless::Deque::new(),
            last_handle: 0,
            failed: None,
        }
    }

    /// The limits this session enforces.
    pub const fn config(&self) -> &Config {
        &self.config
    }

    /// The export chosen by `NBD_OPT_GO` / `NBD_OPT_EXPORT_NAME`, once transmission started.
    pub const fn export(&self) -> Option<&ExportInfo> {
        self.export.as_ref()
    }

    /// Whether the session is in the transmission phase (or closing after it).
    pub fn in_transmission(&self) -> bool {
        self.export.is_some()
    }

    /// Requests handed to the shell and not completed yet.
    pub fn in_flight(&self) -> usize {
        self.pending.len()
    }

    /// The error that ended the session, if one did.
    pub const fn failed(&self) -> Option<Error> {
        self.failed
    }

    /// Whether the connection may be closed: the client said goodbye (or broke the protocol)
    /// and nothing is in flight or left to send.
    pub fn is_finished(&self) -> bool {
        self.failed.is_some()
            || (self.phase == Phase::Closing
                && self.pending.is_empty()
                && self.ready.is_empty()
                && matches!(self.opt_reply, OptReply::None))
    }

    /// Consumes bytes from the client. Stops at the first action, when more bytes are needed,
    /// or when output or completions must come first. A protocol violation is an error, and
    /// the same error again on every later call.
    pub fn handle_input<'a>(&mut self, input: &'a [u8]) -> Result<Progress<'a>, Error> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        let mut at = 0usize;
        loop {
            let rest = input.get(at..).unwrap_or(&[]);
            let step = match self.step(rest) {
                Ok(s) => s,
                Err(e) => {
                    self.failed = Some(e);
                    return Err(e);
                }
            };
            let (consumed, action, need) = match step {
                Step::Consumed(n) => {
                    at += n;
                    continue;
                }
                Step::Action(n, a) => (at + n, Some(a), None),
                Step::Need(n) => (at, None, Some(n)),
                Step::Blocked => (at, None, None),
            };
            return Ok(Progress {
                consumed,
                action,
                need,
            });
        }
    }

    fn step<'a>(&mut self, input: &'a [u8]) -> Result<Step<'a>, Error> {
        if self.discard > 0 {
            if input.is_empty() {
                return Ok(Step::Need(1));
            }
            let n = usize::try_from(self.discard).map_or(input.len(), |d| d.min(input.len()));
            self.discard -= n as u64;
            return Ok(Step::Consumed(n));
        }
        match self.phase {
            Phase::ClientFlags => self.client_flags(input),
            Phase::Options => self.option(input),
            Phase::Transmission => self.request(input),
            // proto.md: nothing may follow NBD_CMD_DISC / NBD_OPT_ABORT; ignore it.
            Phase::Closing if input.is_empty() => Ok(Step::Blocked),
            Phase::Closing => Ok(Step::Consumed(input.len())),
        }
    }

    /// Records the outcome of the action with `handle`; its reply is queued for
    /// `poll_transmit`. Backend errors map to NBD errors with [`ErrorCode::from_errno`].
    pub fn complete(&mut self, handle: u64, result: Result<(), ErrorCode>) -> Result<(), Error> {
        let i = self
            .pending
            .iter()
            .position(|p| p.handle == handle)
            .ok_or(Error::UnknownHandle { handle })?;
        let p = self.pending.remove(i);
        // Cannot fail: pending + ready never exceeds N.
        let _ = self.ready.push_back(Ready {
            handle,
            cookie: p.cookie,
            result,
            read_len: p.read_len,
        });
        Ok(())
    }

    /// Writes the next message for the client into `buf` (at least
    /// [`Config::output_buffer_len`] bytes suffice); `None` when there is nothing to send.
    pub fn poll_transmit(&mut self, buf: &mut [u8]) -> Result<Option<Transmit>, Error> {
        if !self.greeted {
            let flags = FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES;
            let len = GreetingRepr { flags }.emit(buf)?;
            self.greeted = true;
            return Ok(Some(Transmit {
                len,
                handle: None,
                read: None,
            }));
        }
        if let Some(len) = self.poll_option_reply(buf)? {
            return Ok(Some(Transmit {
                len,
                handle: None,
                read: None,
            }));
        }
        let Some(r) = self.ready.front().copied() else {
            return Ok(None);
        };
        let len = SimpleReplyRepr::new(r.cookie, r.result).emit(buf)?;
        self.ready.pop_front();
        let read = match r.result {
            Ok(()) if r.read_len > 0 => Some(ReadData {
                handle: r.handle,
                len: r.read_len,
            }),
            _ => None,
        };
        Ok(Some(Transmit {
            len,
            handle: (r.handle != 0).then_some(r.handle),
            read,
        }))
    }

    /// Whether `pending + ready` has room for one more request.
    fn has_slot(&self) -> bool {
        self.pending.len() + self.ready.len() < N
    }

    /// Queues an immediate reply (the caller checked `has_slot`).
    fn reply_now(&mut self, cookie: u64, result: Result<(), ErrorCode>) {
        let _ = self.ready.push_back(Ready {
            handle: 0,
            cookie,
            result,
            read_len: 0,
        });
    }

    /// Tracks a request handed to the shell (the caller checked `has_slot`); returns its handle.
    /// Handles count up from 1: a connection cannot make 2^64 requests.
    fn hand_out(&mut self, cookie: u64, read_len: u32) -> u64 {
        self.last_handle = self.last_handle.wrapping_add(1);
        let handle = self.last_handle;
        let _ = self.pending.push(Pending {
            handle,
            cookie,
            read_len,
        });
        handle
    }
}

#[cfg(test)]
mod tests;
