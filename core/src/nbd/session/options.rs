//! Option haggling (proto.md "Fixed newstyle negotiation", "Option types"): the client flags,
//! one option at a time, and the replies each one gets. The client MUST wait for the final reply
//! before its next option, so one [`OptReply`] in progress is all the state needed.

use super::{Error, ExportInfo, Exports, Phase, Session, Step};
use crate::nbd::wire::handshake::{CLIENT_KNOWN, CLIENT_NO_ZEROES};
use crate::nbd::wire::option::{emit_server_reply, reply};
use crate::nbd::wire::{
    ClientFlagsRepr, ExportNameReplyRepr, InfoRepr, InfoRequest, OptionCode, OptionReplyRepr,
    OptionRequest, OptionRequestRepr,
};

/// The reply (or rest of a multi-part reply) to the current option.
#[derive(Clone, Copy, Debug)]
pub(super) enum OptReply {
    /// Nothing to send.
    None,
    /// One reply with a text message as its data (empty for `NBD_REP_ACK`).
    Simple {
        option: u32,
        reply_type: u32,
        message: &'static str,
    },
    /// `NBD_OPT_INFO` / `NBD_OPT_GO` success: `NBD_INFO_EXPORT`, `NBD_INFO_BLOCK_SIZE`, ACK.
    Info {
        option: u32,
        info: ExportInfo,
        step: u8,
    },
    /// `NBD_OPT_LIST`: `NBD_REP_SERVER` from export `next` on, then ACK.
    List { next: usize },
    /// The `NBD_OPT_EXPORT_NAME` reply (no reply header).
    ExportName { info: ExportInfo },
}

impl<E: Exports, const N: usize> Session<E, N> {
    pub(super) fn client_flags<'a>(&mut self, input: &'a [u8]) -> Result<Step<'a>, Error> {
        let Ok(c) = ClientFlagsRepr::parse(input) else {
            return Ok(Step::Need(ClientFlagsRepr::LEN));
        };
        // proto.md "Client flags": the server MUST drop a client setting unknown flags.
        if c.flags & !CLIENT_KNOWN != 0 {
            return Err(Error::BadClientFlags { flags: c.flags });
        }
        self.no_zeroes = c.flags & CLIENT_NO_ZEROES != 0;
        self.phase = Phase::Options;
        Ok(Step::Consumed(ClientFlagsRepr::LEN))
    }

    pub(super) fn option<'a>(&mut self, input: &'a [u8]) -> Result<Step<'a>, Error> {
        if !matches!(self.opt_reply, OptReply::None) {
            return Ok(Step::Blocked);
        }
        const HEADER: usize = OptionRequest::<&[u8]>::HEADER_LEN;
        if input.len() < HEADER {
            return Ok(Step::Need(HEADER));
        }
        let head = OptionRequestRepr::parse(input)?;
        let code = OptionCode::from_code(head.option);
        if head.length > self.config.max_option_len {
            if code == OptionCode::ExportName {
                return Err(Error::ExportNameTooLong {
                    len: head.length,
                    max: self.config.max_option_len,
                });
            }
            self.discard = head.length.into();
            self.refuse(
                head.option,
                reply::ERR_TOO_BIG,
                "option data too long for this server",
            );
            return Ok(Step::Consumed(HEADER));
        }
        let total = usize::try_from(head.length).map_or(usize::MAX, |l| l.saturating_add(HEADER));
        let Some(whole) = input.get(..total) else {
            return Ok(Step::Need(total));
        };
        let data = whole.get(HEADER..).unwrap_or(&[]);
        match code {
            OptionCode::ExportName => {
                let info = self.exports.lookup(data).ok_or(Error::UnknownExport)?;
                self.opt_reply = OptReply::ExportName { info };
                self.start_transmission(info);
            }
            OptionCode::Abort => {
                // proto.md: "The server MUST reply with NBD_REP_ACK"; any data is ignored.
                self.refuse(head.option, reply::ACK, "");
                self.phase = Phase::Closing;
                return Ok(Step::Action(total, super::Action::Disconnect));
            }
            OptionCode::List if !data.is_empty() => {
                self.refuse(
                    head.option,
                    reply::ERR_INVALID,
                    "NBD_OPT_LIST takes no data",
                );
            }
            OptionCode::List => self.opt_reply = OptReply::List { next: 0 },
            OptionCode::Info | OptionCode::Go => match InfoRequest::parse(data) {
                Err(_) => self.refuse(
                    head.option,
                    reply::ERR_INVALID,
                    "malformed NBD_OPT_INFO/GO data (lengths do not add up)",
                ),
                Ok(req) => match self.exports.lookup(req.name) {
                    None => {
                        self.refuse(head.option, reply::ERR_UNKNOWN, "no export with that name")
                    }
                    Some(info) => {
                        self.opt_reply = OptReply::Info {
                            option: head.option,
                            info,
                            step: 0,
                        };
                        // Requests sent before the ACK are answered after it (poll order).
                        if code == OptionCode::Go {
                            self.start_transmission(info);
                        }
                    }
                },
            },
            OptionCode::StartTls => {
                // proto.md "NOTLS mode": NBD_REP_ERR_UNSUP when TLS is not supported at all.
                self.refuse(
                    head.option,
                    reply::ERR_UNSUP,
                    "TLS is not supported by this server",
                );
            }
            OptionCode::StructuredReply => self.refuse(
                head.option,
                reply::ERR_UNSUP,
                "structured replies are not supported; simple replies only",
            ),
            _ => self.refuse(
                head.option,
                reply::ERR_UNSUP,
                "option not supported by this server",
            ),
        }
        Ok(Step::Consumed(total))
    }

    fn refuse(&mut self, option: u32, reply_type: u32, message: &'static str) {
        self.opt_reply = OptReply::Simple {
            option,
            reply_type,
            message,
        };
    }

    fn start_transmission(&mut self, info: ExportInfo) {
        self.export = Some(info);
        self.phase = Phase::Transmission;
    }

    /// Writes the next option-phase message, if any; returns its length.
    pub(super) fn poll_option_reply(&mut self, buf: &mut [u8]) -> Result<Option<usize>, Error> {
        let (len, next) = match self.opt_reply {
            OptReply::None => return Ok(None),
            OptReply::Simple {
                option,
                reply_type,
                message,
            } => (
                OptionReplyRepr::emit_with(option, reply_type, &[message.as_bytes()], buf)?,
                OptReply::None,
            ),
            OptReply::Info { option, info, step } => {
                let item = match step {
                    0 => Some(InfoRepr::Export {
                        size: info.size,
                        flags: info.transmission_flags(),
                    }),
                    // Sent whether asked for or not (a server MAY): our maximum payload may be
                    // below the 32 MiB a client assumes by default.
                    1 => Some(InfoRepr::BlockSize {
                        min: info.min_block.max(1),
                        preferred: preferred_block(&info, self.config.max_payload),
                        max_payload: self.config.max_payload,
                    }),
                    _ => None,
                };
                match item {
                    Some(i) => (
                        i.emit_reply(option, buf)?,
                        OptReply::Info {
                            option,
                            info,
                            step: step + 1,
                        },
                    ),
                    None => (
                        OptionReplyRepr::emit_with(option, reply::ACK, &[], buf)?,
                        OptReply::None,
                    ),
                }
            }
            OptReply::List { next } => {
                let max = self.config.max_name_len;
                // Names too long to list are skipped (the spec caps strings at 4096 bytes).
                let mut i = next;
                let found = loop {
                    match self.exports.name(i) {
                        Some(name) if name.len() > max => i += 1,
                        other => break other,
                    }
                };
                match found {
                    Some(name) => (
                        emit_server_reply(name, buf)?,
                        OptReply::List { next: i + 1 },
                    ),
                    None => (
                        OptionReplyRepr::emit_with(OptionCode::List.code(), reply::ACK, &[], buf)?,
                        OptReply::None,
                    ),
                }
            }
            OptReply::ExportName { info } => (
                ExportNameReplyRepr {
                    size: info.size,
                    flags: info.transmission_flags(),
                    zeroes: !self.no_zeroes,
                }
                .emit(buf)?,
                OptReply::None,
            ),
        };
        self.opt_reply = next;
        Ok(Some(len))
    }
}

/// The preferred block size to advertise. proto.md "Size constraints": at least the minimum
/// block size and 512, and no larger than the maximum payload (both hold whenever the payload
/// limit is 512 or more).
fn preferred_block(info: &ExportInfo, max_payload: u32) -> u32 {
    let floor = info.min_block.max(512);
    info.preferred_block.min(max_payload).max(floor)
}
