//! `keelctl VERB [RESOURCE] [--flags]`: the replication verbs of
//! [`keelson_core::repl::admin::TABLE`], parsed by the core, sent to keelsond as `repl/*`
//! requests over the same client as `keelctl request`. `status` renders the reply's data here,
//! as text or `--json`; failures print drbdsetup's line and exit with its status.
//!
//! Exit statuses: 0 success; drbdsetup's for DRBD failures (10 a return code such as "Unknown
//! resource", 17 no UpToDate data, 5 lower than Outdated, 16 no local disk, 11 another refused
//! state change); 20 a command that does not parse or a reply that is not understood; 1 when no
//! daemon answered.

use std::fmt::Write as _;
use std::io::Write;

use keelson_core::daemon::message::{words, Reply};
use keelson_core::repl::admin::{
    failure_of, statuses, write_json, write_text, Flag, Invocation, ParseError, Status, Verb,
    VerbSpec, TABLE,
};

use crate::daemon::client::{self, parse_reply};
use crate::requestcmd::Request;

/// Exit status for words that are not a command, or a reply that is not understood.
pub const USAGE: u8 = 20;

/// The verb list for `keelctl --help`.
pub fn help() -> String {
    let mut s = String::from(
        "Replication commands (drbdsetup's verbs; keelctl's own options go before the verb):\n",
    );
    for v in TABLE {
        let usage = v.usage().to_string();
        let _ = writeln!(s, "  {usage:<44} {}", v.help);
    }
    s.push_str("Run `keelctl VERB --help` for a verb's flags.");
    s
}

/// One verb's help.
pub fn verb_help(v: &'static VerbSpec) -> String {
    let mut s = format!("{}\n\nUsage: keelctl {}\n", v.help, v.usage());
    if !v.flags.is_empty() {
        s.push_str("\nFlags:\n");
        for f in v.flags {
            let _ = writeln!(s, "  --{:<20} {}", f.name(), f.help());
        }
    }
    let _ = write!(s, "\nSends the libdaemon request \"{}\".\n", v.request);
    s
}

fn fail(msg: impl std::fmt::Display) -> u8 {
    eprintln!("keelctl: {msg}");
    USAGE
}

/// Runs `words` (the verb first); returns the exit status.
pub fn run(req: &Request<'_>, words: &[String]) -> u8 {
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    if let Some((verb, rest)) = words.split_first() {
        if rest.iter().any(|w| *w == "--help" || *w == "-h") {
            return match VerbSpec::find(verb.as_bytes()) {
                Some(v) => {
                    print!("{}", verb_help(v));
                    0
                }
                None => fail(ParseError::UnknownCommand(verb.as_bytes())),
            };
        }
    }
    let inv = match Invocation::parse(&words) {
        Ok(i) => i,
        Err(e @ ParseError::UnknownFlag { .. }) => {
            return fail(format_args!(
                "{e} (keelctl's own options, such as --socket, go before the verb)"
            ))
        }
        Err(e @ (ParseError::UnknownCommand(_) | ParseError::NoCommand)) => {
            return fail(format_args!("{e} (keelctl --help lists every command)"))
        }
        Err(e) => return fail(e),
    };
    let sock = req.socket.display();
    let mut c = match client::open(
        req.socket,
        req.timeout,
        req.protocol,
        req.version,
        req.autostart,
    ) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{sock}: {e}");
            return 1;
        }
    };
    let mut body = Vec::new();
    let _ = inv.write_request(&mut body);
    let raw = match c.call_raw(&body) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{sock}: {e}");
            return 1;
        }
    };
    let tree = match parse_reply(&raw) {
        Ok(t) => t,
        Err(e) => return fail(format_args!("{sock}: {e}")),
    };
    let reply = Reply::new(tree.view());
    if let Some(f) = failure_of(&reply) {
        eprintln!("{}", f.on(inv.resource));
        return f.exit_status();
    }
    let response = reply.response();
    if response != words::OK {
        let reason = reply.reason().unwrap_or(b"no reason given");
        return fail(format_args!(
            "{}: {} ({})",
            inv.verb.name(),
            String::from_utf8_lossy(reason),
            String::from_utf8_lossy(response)
        ));
    }
    if inv.verb != Verb::Status {
        return 0;
    }
    let list: Vec<Status<'_>> = match statuses(tree.view()).collect() {
        Ok(l) => l,
        Err(e) => return fail(format_args!("{sock}: {e}")),
    };
    let mut out = String::new();
    let _ = if inv.has(Flag::Json) {
        write_json(&mut out, &list)
    } else {
        write_text(&mut out, &list)
    };
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(out.as_bytes());
    let _ = stdout.flush();
    0
}
