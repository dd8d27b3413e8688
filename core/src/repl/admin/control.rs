//! The daemon side: [`ReplControl`], what a resource driver implements; [`NoResources`], the
//! driver with nothing configured; and [`answer`], which turns one `repl/*` request into one
//! reply body through either.
//!
//! Replies:
//!
//! - success: `response = "OK"`; for `status`, followed by one `resource { … }` section per
//!   resource ([`super::status`]);
//! - a DRBD-style failure: `response = "failed"`, `reason = "r0: Failure: (158) Unknown
//!   resource"` (drbdsetup's line) and `drbd_code = 158`, from which the client prints the same
//!   line and takes drbdsetup's exit status;
//! - a request that is not a command: `response = "invalid"` and the parse error as `reason`.

use core::fmt;

use crate::config::write::write_escaped;
use crate::config::{Overflow, Sink};
use crate::daemon::message::{self, words, Reply, Request};
use crate::daemon::simple::{write_int_line, write_str_line};

use super::failure::{Failure, RetCode};
use super::status::Status;
use super::table::{Invocation, Verb};

/// The reply key carrying DRBD's number.
pub const CODE_KEY: &str = "drbd_code";

/// What keelsond's resource driver implements.
pub trait ReplControl {
    /// Carries out `cmd` (any verb but [`Verb::Status`]; its resource is set).
    fn run(&mut self, cmd: &Invocation<'_>) -> Result<(), Failure>;

    /// Reports `resource` (every resource, in name order, when `None`) to `each`. An unknown
    /// resource is [`RetCode::ResNotKnown`], returned before `each` is called; a failure after
    /// it was called is not reported.
    fn status(
        &mut self,
        resource: Option<&str>,
        each: &mut dyn FnMut(&Status<'_>),
    ) -> Result<(), Failure>;
}

/// No resources: every command answers "Unknown resource", `status` of all is empty.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoResources;

impl ReplControl for NoResources {
    fn run(&mut self, _: &Invocation<'_>) -> Result<(), Failure> {
        Err(RetCode::ResNotKnown.into())
    }

    fn status(
        &mut self,
        resource: Option<&str>,
        _: &mut dyn FnMut(&Status<'_>),
    ) -> Result<(), Failure> {
        match resource {
            Some(_) => Err(RetCode::ResNotKnown.into()),
            None => Ok(()),
        }
    }
}

/// Writes `key = "…"` with `Display` output as the value, escaped, without a buffer.
fn write_display_line(
    key: &[u8],
    value: &dyn fmt::Display,
    out: &mut dyn Sink,
) -> Result<(), Overflow> {
    struct Escaped<'s> {
        out: &'s mut dyn Sink,
        overflow: Option<Overflow>,
    }
    impl fmt::Write for Escaped<'_> {
        fn write_str(&mut self, s: &str) -> fmt::Result {
            write_escaped(s.as_bytes(), self.out).map_err(|o| {
                self.overflow = Some(o);
                fmt::Error
            })
        }
    }
    out.put(key)?;
    out.put(b" = \"")?;
    let mut e = Escaped {
        out: &mut *out,
        overflow: None,
    };
    // Our `Display` impls fail only when the sink does.
    if fmt::write(&mut e, format_args!("{value}")).is_err() {
        if let Some(o) = e.overflow {
            return Err(o);
        }
    }
    out.put(b"\"\n")
}

/// Writes the failure reply for `f` on `resource`.
pub fn write_failure(
    f: Failure,
    resource: Option<&str>,
    out: &mut dyn Sink,
) -> Result<(), Overflow> {
    write_str_line(b"response", words::FAILED, out)?;
    write_display_line(b"reason", &f.on(resource), out)?;
    write_int_line(CODE_KEY.as_bytes(), f.code().into(), out)
}

/// Answers one `repl/*` request into `out` (the body; the caller adds the terminator).
pub fn answer(
    ctrl: &mut dyn ReplControl,
    req: &Request<'_>,
    out: &mut dyn Sink,
) -> Result<(), Overflow> {
    let inv = match Invocation::from_request(req) {
        Ok(i) => i,
        Err(e) => {
            write_str_line(b"response", words::INVALID, out)?;
            return write_display_line(b"reason", &e, out);
        }
    };
    if inv.verb != Verb::Status {
        return match ctrl.run(&inv) {
            Ok(()) => message::ok(out),
            Err(f) => write_failure(f, inv.resource, out),
        };
    }
    // The OK line goes out with the first resource, so a failure before any can still say so.
    let mut started = false;
    let mut result = Ok(());
    let r = ctrl.status(inv.resource, &mut |s| {
        if result.is_err() {
            return;
        }
        if !started {
            started = true;
            result = message::ok(&mut *out);
        }
        if result.is_ok() {
            result = s.write_tree(&mut *out);
        }
    });
    result?;
    match r {
        _ if started => Ok(()),
        Ok(()) => message::ok(out),
        Err(f) => write_failure(f, inv.resource, out),
    }
}

/// The failure a reply reports, if it is one of ours (`drbd_code` names a known code).
pub fn failure_of(reply: &Reply<'_>) -> Option<Failure> {
    use crate::config::Lookup;
    if reply.response() != words::FAILED {
        return None;
    }
    Failure::from_code(reply.tree().get_int64(CODE_KEY)?)
}

#[cfg(test)]
mod tests {
    use super::super::failure::StateError;
    use super::super::status::statuses;
    use super::super::status::tests::{standalone, syncing};
    use super::super::table::TABLE;
    use super::*;
    use crate::config::{OwnedTree, ParseOptions};
    use std::vec::Vec;

    fn ask(ctrl: &mut dyn ReplControl, body: &[u8]) -> Vec<u8> {
        let t = OwnedTree::from_text_owned(body, ParseOptions::KEEP).unwrap();
        let mut out = Vec::new();
        answer(ctrl, &Request::new(Some(t.view())), &mut out).unwrap();
        out
    }

    #[test]
    fn nothing_configured() {
        let mut n = NoResources;
        for s in TABLE.iter().filter(|s| s.verb != Verb::Status) {
            let body = std::format!("request = \"{}\"\nresource = \"r0\"\n", s.request);
            assert_eq!(
                ask(&mut n, body.as_bytes()),
                b"response = \"failed\"\nreason = \"r0: Failure: (158) Unknown resource\"\ndrbd_code = 158\n"
            );
        }
        assert_eq!(
            ask(&mut n, b"request = \"repl/status\"\n"),
            b"response = \"OK\"\n"
        );
        assert_eq!(
            ask(&mut n, b"request = \"repl/status\"\nresource = \"r9\"\n"),
            b"response = \"failed\"\nreason = \"r9: Failure: (158) Unknown resource\"\ndrbd_code = 158\n"
        );
        assert_eq!(
            ask(&mut n, b"request = \"repl/primary\"\n"),
            b"response = \"invalid\"\nreason = \"primary: missing resource; usage: primary RESOURCE [--force]\"\n"
        );
        let out = ask(&mut n, b"request = \"repl/up\"\nresource = \"a\\\"b\"\n");
        assert!(
            out.starts_with(b"response = \"invalid\"\nreason = \"up: 'a\\\\\\\"b' is not"),
            "{}",
            out.escape_ascii()
        );
        let t = OwnedTree::from_text_owned(&out, ParseOptions::KEEP).unwrap();
        assert!(Reply::new(t.view())
            .reason()
            .unwrap()
            .starts_with(b"up: 'a\\\"b'"));
    }

    struct Two {
        ran: Vec<std::string::String>,
    }

    impl ReplControl for Two {
        fn run(&mut self, cmd: &Invocation<'_>) -> Result<(), Failure> {
            self.ran.push(std::string::ToString::to_string(cmd));
            match cmd.verb {
                Verb::Primary if !cmd.has(super::super::table::Flag::Force) => {
                    Err(StateError::NoUpToDateDisk.into())
                }
                _ => Ok(()),
            }
        }
        fn status(
            &mut self,
            resource: Option<&str>,
            each: &mut dyn FnMut(&Status<'_>),
        ) -> Result<(), Failure> {
            let all = [syncing(), standalone()];
            match resource {
                None => all.iter().for_each(each),
                Some(r) => each(
                    all.iter()
                        .find(|s| s.name == r)
                        .ok_or(RetCode::ResNotKnown)?,
                ),
            }
            Ok(())
        }
    }

    #[test]
    fn a_driver_behind_the_trait() {
        let mut d = Two { ran: Vec::new() };
        let out = ask(&mut d, b"request = \"repl/primary\"\nresource = \"r0\"\n");
        assert_eq!(
            out,
            b"response = \"failed\"\nreason = \"r0: State change failed: (-2) Need access to UpToDate data\"\ndrbd_code = -2\n"
        );
        let t = OwnedTree::from_text_owned(&out, ParseOptions::KEEP).unwrap();
        assert_eq!(
            failure_of(&Reply::new(t.view())),
            Some(StateError::NoUpToDateDisk.into())
        );
        assert_eq!(
            ask(
                &mut d,
                b"request = \"repl/primary\"\nresource = \"r0\"\nforce = 1\n"
            ),
            b"response = \"OK\"\n"
        );
        assert_eq!(d.ran, ["primary r0", "primary r0 --force"]);
        let out = ask(&mut d, b"request = \"repl/status\"\n");
        let t = OwnedTree::from_text_owned(&out, ParseOptions::KEEP).unwrap();
        assert_eq!(Reply::new(t.view()).response(), b"OK");
        assert_eq!(failure_of(&Reply::new(t.view())), None);
        let got: Vec<_> = statuses(t.view()).collect::<Result<_, _>>().unwrap();
        assert_eq!(got, [syncing(), standalone()]);
        let out = ask(&mut d, b"request = \"repl/status\"\nresource = \"data\"\n");
        let t = OwnedTree::from_text_owned(&out, ParseOptions::KEEP).unwrap();
        assert_eq!(statuses(t.view()).count(), 1);
        assert!(
            ask(&mut d, b"request = \"repl/status\"\nresource = \"zz\"\n")
                .ends_with(b"drbd_code = 158\n")
        );
    }

    #[test]
    fn a_small_buffer_overflows_cleanly() {
        let t =
            OwnedTree::from_text_owned(b"request = \"repl/status\"\n", ParseOptions::KEEP).unwrap();
        let mut d = Two { ran: Vec::new() };
        let mut small = heapless::Vec::<u8, 64>::new();
        assert!(matches!(
            answer(&mut d, &Request::new(Some(t.view())), &mut small),
            Err(Overflow { .. })
        ));
        let t =
            OwnedTree::from_text_owned(b"request = \"repl/bogus\"\n", ParseOptions::KEEP).unwrap();
        let mut small = heapless::Vec::<u8, 40>::new();
        assert!(matches!(
            answer(&mut d, &Request::new(Some(t.view())), &mut small),
            Err(Overflow { .. })
        ));
    }
}
