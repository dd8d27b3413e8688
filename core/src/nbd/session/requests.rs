//! Transmission requests (proto.md "Request types", "Error values"): which ones become actions
//! and which get an error reply at once. Checks run in the order the spec's errors imply: flags,
//! read-only (`NBD_EPERM`), advertised features, payload size, range (`NBD_ENOSPC` for writes
//! past the end, `NBD_EINVAL` for reads and trims), alignment.

use super::{Action, Error, ExportInfo, Exports, Phase, Session, Step};
use crate::nbd::wire::transmission::{cmd_flags, flags, Command, ErrorCode};
use crate::nbd::wire::{Request, RequestRepr};

/// What a checked request turns into.
enum Verdict {
    /// Hand it to the shell.
    Run,
    /// Reply at once (zero-length requests succeed without touching the backend).
    Reply(Result<(), ErrorCode>),
}

impl<E: Exports, const N: usize> Session<E, N> {
    pub(super) fn request<'a>(&mut self, input: &'a [u8]) -> Result<Step<'a>, Error> {
        const HEADER: usize = Request::<&[u8]>::LEN;
        if !self.has_slot() {
            return Ok(Step::Blocked);
        }
        if input.len() < HEADER {
            return Ok(Step::Need(HEADER));
        }
        let req = RequestRepr::parse(input)?;
        let Some(info) = self.export else {
            return Ok(Step::Blocked);
        };
        if req.command == Command::Disc {
            // proto.md: finish outstanding requests, then close; no reply.
            self.phase = Phase::Closing;
            return Ok(Step::Action(HEADER, Action::Disconnect));
        }
        let verdict = self.check(&info, &req);
        let fua = req.flags & cmd_flags::FUA != 0;
        let (cookie, offset, len) = (req.cookie, req.offset, req.length);
        if req.command == Command::Write {
            let total = usize::try_from(len).map_or(usize::MAX, |l| l.saturating_add(HEADER));
            match verdict {
                Verdict::Run => {
                    let Some(data) = input.get(HEADER..total) else {
                        return Ok(Step::Need(total));
                    };
                    let handle = self.hand_out(cookie, 0);
                    let write = Action::Write {
                        handle,
                        offset,
                        data,
                        fua,
                    };
                    return Ok(Step::Action(total, write));
                }
                Verdict::Reply(r) => {
                    // The payload is on its way regardless; skip it without buffering.
                    self.discard = len.into();
                    self.reply_now(cookie, r);
                    return Ok(Step::Consumed(HEADER));
                }
            }
        }
        let read_len = if req.command == Command::Read { len } else { 0 };
        let action = match (verdict, req.command) {
            (Verdict::Reply(r), _) => {
                self.reply_now(cookie, r);
                return Ok(Step::Consumed(HEADER));
            }
            (Verdict::Run, Command::Read) => Action::Read {
                handle: self.hand_out(cookie, read_len),
                offset,
                len,
            },
            (Verdict::Run, Command::Flush) => Action::Flush {
                handle: self.hand_out(cookie, 0),
            },
            (Verdict::Run, Command::Trim) => Action::Trim {
                handle: self.hand_out(cookie, 0),
                offset,
                len,
                fua,
            },
            (Verdict::Run, Command::WriteZeroes) => Action::WriteZeroes {
                handle: self.hand_out(cookie, 0),
                offset,
                len,
                fua,
                no_hole: req.flags & cmd_flags::NO_HOLE != 0,
            },
            // `check` only runs the commands above.
            (Verdict::Run, _) => {
                self.reply_now(cookie, Err(ErrorCode::Inval));
                return Ok(Step::Consumed(HEADER));
            }
        };
        Ok(Step::Action(HEADER, action))
    }

    fn check(&self, info: &ExportInfo, req: &RequestRepr) -> Verdict {
        match self.check_err(info, req) {
            Ok(true) => Verdict::Run,
            Ok(false) => Verdict::Reply(Ok(())),
            Err(e) => Verdict::Reply(Err(e)),
        }
    }

    /// `Ok(true)`: run it; `Ok(false)`: succeed without running; `Err`: the reply's error.
    fn check_err(&self, info: &ExportInfo, req: &RequestRepr) -> Result<bool, ErrorCode> {
        use ErrorCode::{Inval, NoSpc, Perm};
        let advertised = info.transmission_flags();
        // FUA is valid on every command once advertised; NO_HOLE on WRITE_ZEROES. DF, REQ_ONE
        // and FAST_ZERO need features never advertised here, so they are unknown flags.
        let mut allowed = 0;
        if advertised & flags::SEND_FUA != 0 {
            allowed |= cmd_flags::FUA;
        }
        if req.command == Command::WriteZeroes {
            allowed |= cmd_flags::NO_HOLE;
        }
        if req.flags & !allowed != 0 {
            return Err(Inval);
        }
        let writes = matches!(
            req.command,
            Command::Write | Command::Trim | Command::WriteZeroes
        );
        if writes && info.read_only {
            return Err(Perm);
        }
        let offered = match req.command {
            Command::Read | Command::Write | Command::Cache => true,
            Command::Flush => advertised & flags::SEND_FLUSH != 0,
            Command::Trim => advertised & flags::SEND_TRIM != 0,
            Command::WriteZeroes => advertised & flags::SEND_WRITE_ZEROES != 0,
            _ => false,
        };
        if !offered {
            return Err(Inval);
        }
        if req.command == Command::Flush {
            // Offset and length are reserved; clients send zeroes, and nothing depends on them.
            return Ok(true);
        }
        if matches!(req.command, Command::Read | Command::Write)
            && req.length > self.config.max_payload
        {
            return Err(Inval);
        }
        let in_range = req
            .offset
            .checked_add(req.length.into())
            .is_some_and(|end| end <= info.size);
        if !in_range {
            // proto.md "Error values": ENOSPC for writes past the end, EINVAL for the rest.
            return Err(
                if matches!(req.command, Command::Write | Command::WriteZeroes) {
                    NoSpc
                } else {
                    Inval
                },
            );
        }
        let block = u64::from(info.min_block.max(1));
        if !req.offset.is_multiple_of(block) || !u64::from(req.length).is_multiple_of(block) {
            return Err(Inval);
        }
        // Zero-length requests are unspecified; succeeding without I/O is harmless. CACHE is a
        // hint this server does not act on.
        Ok(req.length > 0 && req.command != Command::Cache)
    }
}
