//! The dispatch table: request name → handler and a one-line description (DRBD's `cnd_table`
//! pattern), with libdaemon's built-in `hello` and our `help`.

use crate::config::{Overflow, Sink};

use super::message::{self, Request, NOT_IMPLEMENTED};
use super::simple::{write_reply, write_str_line, Arg};

/// A handler: reads the request and writes one reply body into `out`.
pub type Handler<C> = fn(&mut C, &Request<'_>, &mut dyn Sink) -> Result<(), Overflow>;

/// One request a daemon answers.
pub struct Command<C> {
    /// The `request` name.
    pub name: &'static str,
    /// One line for `help`.
    pub about: &'static str,
    /// What answers it.
    pub run: Handler<C>,
}

/// How a request was answered, for logs and counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answered {
    /// The built-in `hello`.
    Hello,
    /// The built-in `help`.
    Help,
    /// A command of the table (its index).
    Command(usize),
    /// Not in the table (or unparsable): `invalid`, "request not implemented".
    Unknown,
}

/// A daemon's protocol identity and its commands.
pub struct Dispatch<'a, C> {
    /// Name reported by `hello` (`default` in libdaemon when unset).
    pub protocol: &'a str,
    /// Version reported by `hello`.
    pub version: i64,
    /// The commands, searched in order.
    pub commands: &'a [Command<C>],
}

impl<C> Dispatch<'_, C> {
    /// Answers one request into `out` (the body; the caller adds the terminator).
    ///
    /// `hello` is answered before the table is consulted, as libdaemon's built-in handler does;
    /// `help` lists the table unless the table defines `help` itself.
    pub fn answer(
        &self,
        ctx: &mut C,
        req: &Request<'_>,
        out: &mut dyn Sink,
    ) -> Result<Answered, Overflow> {
        let name = req.name();
        if name == b"hello" {
            write_reply(
                message::words::OK,
                &[
                    ("protocol", Arg::Str(self.protocol.as_bytes())),
                    ("version", Arg::Int(self.version)),
                ],
                out,
            )?;
            return Ok(Answered::Hello);
        }
        if let Some(i) = self.commands.iter().position(|c| c.name.as_bytes() == name) {
            (self.commands[i].run)(ctx, req, out)?;
            return Ok(Answered::Command(i));
        }
        if name == b"help" {
            self.help(out)?;
            return Ok(Answered::Help);
        }
        message::invalid(NOT_IMPLEMENTED, out)?;
        Ok(Answered::Unknown)
    }

    /// `response = "OK"` and a `commands` section: name = "description".
    fn help(&self, out: &mut dyn Sink) -> Result<(), Overflow> {
        message::ok(out)?;
        out.put(b"commands {\n")?;
        out.put(b"\t")?;
        write_str_line(b"hello", b"report the protocol name and version", out)?;
        out.put(b"\t")?;
        write_str_line(b"help", b"list the requests this daemon answers", out)?;
        for c in self.commands {
            out.put(b"\t")?;
            write_str_line(c.name.as_bytes(), c.about.as_bytes(), out)?;
        }
        out.put(b"}\n")
    }
}

#[cfg(all(test, feature = "alloc"))]
mod tests {
    use super::*;
    use crate::config::{Lookup, OwnedTree, ParseOptions};
    use std::vec::Vec;

    struct Counter(i64);

    fn bump(c: &mut Counter, req: &Request<'_>, out: &mut dyn Sink) -> Result<(), Overflow> {
        match req.int("by") {
            Some(n) => {
                c.0 += n;
                write_reply(b"OK", &[("value", Arg::Int(c.0))], out)
            }
            None => message::failed("request requires by set", out),
        }
    }

    const TABLE: &[Command<Counter>] = &[Command {
        name: "bump",
        about: "add `by` to the counter",
        run: bump,
    }];

    fn ask(body: &[u8]) -> (Answered, Vec<u8>, i64) {
        let d = Dispatch {
            protocol: "keelson",
            version: 1,
            commands: TABLE,
        };
        let mut c = Counter(10);
        let tree = OwnedTree::from_text_owned(body, ParseOptions::KEEP).ok();
        let req = Request::new(tree.as_ref().map(|t| t.view()));
        let mut out = Vec::new();
        let a = d.answer(&mut c, &req, &mut out).unwrap();
        (a, out, c.0)
    }

    #[test]
    fn builtins_table_and_unknowns() {
        assert_eq!(
            ask(b"request = \"hello\"\n"),
            (
                Answered::Hello,
                b"response = \"OK\"\nprotocol = \"keelson\"\nversion = 1\n".to_vec(),
                10
            )
        );
        assert_eq!(
            ask(b"request=\"bump\"\nby=5\n"),
            (
                Answered::Command(0),
                b"response = \"OK\"\nvalue = 15\n".to_vec(),
                15
            )
        );
        let (a, out, _) = ask(b"request = \"bogus\"\n");
        assert_eq!(
            (a, &out[..]),
            (
                Answered::Unknown,
                &b"response = \"invalid\"\nreason = \"request not implemented\"\n"[..]
            )
        );
        assert_eq!(ask(b"garbage {{{ \n").0, Answered::Unknown);
        // The first of two `request` keys wins (no-dup parse).
        assert_eq!(
            ask(b"request = \"bogus\"\nrequest = \"hello\"\n").0,
            Answered::Unknown
        );
        let (a, out, _) = ask(b"request = \"help\"\n");
        assert_eq!(a, Answered::Help);
        let help = OwnedTree::from_text_owned(&out, ParseOptions::KEEP).unwrap();
        assert_eq!(
            help.view().find_str("commands/bump", b""),
            b"add `by` to the counter"
        );
    }
}
