//! The OVS unixctl protocol (ovs-sessions.md §4.1), sans-IO: what a server that `ovs-appctl`
//! talks to must decide and say, without the sockets.
//!
//! A connection carries plain JSON-RPC (no session, no `echo` auto-reply), one request at a
//! time. [`request`] accepts a framed message or says why the connection must close (anything
//! but a request); [`check`] applies the command table's argument rules with OVS's refusal
//! texts ([`Refusal`]); the handler's text goes back through [`write_reply`], which applies
//! the **OVS 3.1 newline rule** (a non-empty text that lacks a final `\n` gets one; an empty
//! one stays empty): a 3.1 `ovs-appctl` prints the text as received and a 3.4+ one adds a
//! newline only when it is missing, so both print the same bytes. The built-ins
//! `list-commands` and `version` render through [`write_list`] and [`write_version`].

use core::fmt;

use crate::config::{Overflow, Sink};
use crate::jsonrpc::json::{write_string_body, Array, Str, ToJson, Value};
use crate::jsonrpc::message::{Kind, ParseError};
use crate::jsonrpc::Message;

/// The first line of `list-commands`.
pub const LIST_HEADER: &str = "The available commands are:\n";

/// One command of a table: its name, the usage `list-commands` shows (`None`: not listed),
/// and how many arguments it takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Spec<'a> {
    /// The command name (`ovs-appctl -t T NAME`).
    pub name: &'a str,
    /// The usage text; a command without one works but is hidden.
    pub usage: Option<&'a str>,
    /// Fewest arguments.
    pub min: usize,
    /// Most arguments.
    pub max: usize,
}

/// The commands every server has (they need the table, so the server renders them itself
/// with [`write_list`] and [`write_version`]).
pub const BUILT_IN: [Spec<'static>; 2] = [
    Spec {
        name: "list-commands",
        usage: Some(""),
        min: 0,
        max: 0,
    },
    Spec {
        name: "version",
        usage: Some(""),
        min: 0,
        max: 0,
    },
];

/// A unixctl request.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Request<'a> {
    /// The command name.
    pub method: Str<'a>,
    /// The arguments (all strings, for a request [`check`] accepts).
    pub params: Array<'a>,
    /// The id the reply carries.
    pub id: Value<'a>,
}

/// Why a message ends its connection (OVS logs these and closes, replying nothing).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Close<'a> {
    /// Not a valid JSON-RPC message.
    Malformed(ParseError<'a>),
    /// A valid message that is not a request.
    Unexpected(Kind),
}

impl fmt::Display for Close<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Close::Malformed(e) => e.fmt(f),
            Close::Unexpected(k) => write!(f, "received unexpected {} message", k.name()),
        }
    }
}

/// Reads a framed message as a unixctl request.
pub fn request(frame: &[u8]) -> Result<Request<'_>, Close<'_>> {
    match Message::parse(frame).map_err(Close::Malformed)? {
        Message::Request { method, params, id } => Ok(Request { method, params, id }),
        other => Err(Close::Unexpected(other.kind())),
    }
}

/// A request the table refuses, with OVS's texts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Refusal<'a> {
    /// No such command.
    Unknown(Str<'a>),
    /// Fewer arguments than the command's minimum.
    TooFew(Str<'a>, usize),
    /// More arguments than the command's maximum.
    TooMany(Str<'a>, usize),
    /// An argument that is not a JSON string.
    NonString(Str<'a>),
}

/// A method name as OVS prints it (decoded; invalid escapes were refused by the parser).
struct Name<'a>(Str<'a>);

impl fmt::Display for Name<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0
            .chars()
            .try_for_each(|c| fmt::Write::write_char(f, c))
    }
}

impl fmt::Display for Refusal<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Refusal::Unknown(m) => write!(
                f,
                "\"{}\" is not a valid command (use \"list-commands\" to see a list of valid \
                 commands)",
                Name(m)
            ),
            Refusal::TooFew(m, n) => {
                write!(f, "\"{}\" command requires at least {n} arguments", Name(m))
            }
            Refusal::TooMany(m, n) => {
                write!(f, "\"{}\" command takes at most {n} arguments", Name(m))
            }
            Refusal::NonString(m) => write!(f, "\"{}\" command has non-string argument", Name(m)),
        }
    }
}

/// Checks `req` against its command's `spec` (`None`: no such command), in OVS's order:
/// unknown, too few, too many, a non-string argument.
pub fn check<'a>(spec: Option<&Spec<'_>>, req: &Request<'a>) -> Result<(), Refusal<'a>> {
    let Some(spec) = spec else {
        return Err(Refusal::Unknown(req.method));
    };
    let n = req.params.len();
    if n < spec.min {
        return Err(Refusal::TooFew(req.method, spec.min));
    }
    if n > spec.max {
        return Err(Refusal::TooMany(req.method, spec.max));
    }
    if req.params.iter().any(|v| !matches!(v, Value::String(_))) {
        return Err(Refusal::NonString(req.method));
    }
    Ok(())
}

/// A reply text with the 3.1 newline rule applied, as a JSON string.
struct Terminated<'a>(&'a str);

impl ToJson for Terminated<'_> {
    fn write_json(&self, out: &mut dyn Sink) -> Result<(), Overflow> {
        out.put(b"\"")?;
        write_string_body(self.0, out)?;
        if !self.0.is_empty() && !self.0.ends_with('\n') {
            out.put(b"\\n")?;
        }
        out.put(b"\"")
    }
}

/// Writes the reply to a request: `{"result":TEXT,"error":null,"id":ID}` when `ok`, else
/// `{"error":TEXT,"id":ID}`, TEXT under the newline rule.
pub fn write_reply(
    ok: bool,
    text: &str,
    id: &Value<'_>,
    out: &mut dyn Sink,
) -> Result<(), Overflow> {
    if ok {
        crate::jsonrpc::write_reply(&Terminated(text), id, out)
    } else {
        crate::jsonrpc::write_error(&Terminated(text), id, out)
    }
}

/// Writes the `list-commands` text: the header, then every command with a usage in name
/// order (the caller's table need not be sorted), as two spaces, the name left-justified to
/// 23 columns, a space and the usage.
pub fn write_list<'s>(
    specs: impl Iterator<Item = Spec<'s>> + Clone,
    out: &mut dyn Sink,
) -> Result<(), Overflow> {
    out.put(LIST_HEADER.as_bytes())?;
    // Selection by name, smallest first: no allocation, and tables are small.
    let mut last: Option<&str> = None;
    loop {
        let next = specs
            .clone()
            .filter(|s| s.usage.is_some() && last.is_none_or(|l| s.name > l))
            .min_by(|a, b| a.name.cmp(b.name));
        let Some(s) = next else {
            return Ok(());
        };
        out.put(b"  ")?;
        out.put(s.name.as_bytes())?;
        for _ in s.name.chars().count()..23 {
            out.put(b" ")?;
        }
        out.put(b" ")?;
        out.put(s.usage.unwrap_or_default().as_bytes())?;
        out.put(b"\n")?;
        last = Some(s.name);
    }
}

/// Writes the `version` text, `PROGRAM (PACKAGE) VERSION`, as `ovsdb-server (Open vSwitch)
/// 3.1.0` does.
pub fn write_version(
    program: &str,
    package: &str,
    version: &str,
    out: &mut dyn Sink,
) -> Result<(), Overflow> {
    for part in [program, " (", package, ") ", version] {
        out.put(part.as_bytes())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::{String, ToString};
    use std::vec::Vec;

    const TABLE: [Spec<'static>; 3] = [
        Spec {
            name: "echo-args",
            usage: Some("A [B]"),
            min: 1,
            max: 2,
        },
        Spec {
            name: "hidden",
            usage: None,
            min: 0,
            max: 0,
        },
        BUILT_IN[1],
    ];

    fn refusal(frame: &str) -> String {
        let req = request(frame.as_bytes()).unwrap();
        let name: String = req.method.chars().collect();
        let spec = TABLE.iter().find(|s| s.name == name);
        check(spec, &req).unwrap_err().to_string()
    }

    #[test]
    fn refusals_use_ovs_texts_in_ovs_order() {
        assert_eq!(
            refusal(r#"{"id":0,"method":"echo","params":[]}"#),
            "\"echo\" is not a valid command (use \"list-commands\" to see a list of valid commands)"
        );
        assert_eq!(
            refusal(r#"{"id":0,"method":"echo-args","params":[]}"#),
            "\"echo-args\" command requires at least 1 arguments"
        );
        assert_eq!(
            refusal(r#"{"id":0,"method":"echo-args","params":["1",2,"3"]}"#),
            "\"echo-args\" command takes at most 2 arguments"
        );
        assert_eq!(
            refusal(r#"{"id":0,"method":"echo-args","params":[1]}"#),
            "\"echo-args\" command has non-string argument"
        );
        let ok = request(br#"{"id":0,"method":"echo-args","params":["a","b"]}"#).unwrap();
        assert_eq!(check(Some(&TABLE[0]), &ok), Ok(()));
    }

    #[test]
    fn only_requests_are_served() {
        assert!(matches!(
            request(br#"{"id":null,"method":"version","params":[]}"#),
            Err(Close::Unexpected(Kind::Notification))
        ));
        assert_eq!(
            request(br#"{"id":0,"result":"x","error":null}"#)
                .unwrap_err()
                .to_string(),
            "received unexpected reply message"
        );
        assert!(matches!(request(b"[1"), Err(Close::Malformed(_))));
    }

    #[test]
    fn replies_follow_the_newline_rule() {
        let req = request(br#"{"id":7,"method":"m","params":[]}"#).unwrap();
        let id = req.id;
        let mut out = Vec::new();
        write_reply(true, "a b", &id, &mut out).unwrap();
        assert_eq!(out, br#"{"result":"a b\n","error":null,"id":7}"#);
        out.clear();
        write_reply(false, "no\n", &id, &mut out).unwrap();
        assert_eq!(out, br#"{"error":"no\n","id":7}"#);
        out.clear();
        write_reply(true, "", &id, &mut out).unwrap();
        assert_eq!(out, br#"{"result":"","error":null,"id":7}"#);
    }

    #[test]
    fn list_pads_sorts_and_hides() {
        let mut out = Vec::new();
        write_list(TABLE.iter().copied().chain(BUILT_IN), &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "The available commands are:\n  echo-args               A [B]\n  \
             list-commands           \n  version                 \n"
        );
        let mut out = Vec::new();
        write_version("prog", "Pkg", "1.2.3", &mut out).unwrap();
        assert_eq!(out, b"prog (Pkg) 1.2.3");
    }
}
