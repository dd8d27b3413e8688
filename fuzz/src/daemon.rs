//! The libdaemon request path as a daemon runs it: chunks → reassembler → no-dup parse →
//! dispatch. Whatever arrives, every completed message gets exactly one reply, and that reply is
//! a well-formed config tree with a `response`.

use keelson_core::config::{Growable, Lookup, Overflow, OwnedTree, ParseOptions, Sink, Tree};
use keelson_core::daemon::dispatch::Command;
use keelson_core::daemon::frame::{FrameError, Reassembler, TERMINATOR};
use keelson_core::daemon::message::{self, Request};
use keelson_core::daemon::simple::{write_reply, Arg};
use keelson_core::daemon::Dispatch;

fn echo(n: &mut u32, r: &Request<'_>, out: &mut dyn Sink) -> Result<(), Overflow> {
    *n += 1;
    match r.str("text") {
        Some(t) => write_reply(
            b"OK",
            &[("text", Arg::Str(t)), ("count", Arg::Int(i64::from(*n)))],
            out,
        ),
        None => message::failed("request requires text set", out),
    }
}

const TABLE: &[Command<u32>] = &[Command {
    name: "echo",
    about: "echo `text`",
    run: echo,
}];

/// The first byte picks chunk sizes and the size cap; the rest is the byte stream.
pub fn check(data: &[u8]) {
    let Some((&knob, stream)) = data.split_first() else {
        return;
    };
    let max = 64 + usize::from(knob) * 16;
    let chunk = 1 + usize::from(knob % 13);
    let mut r = Reassembler::new(Vec::new(), max);
    let d = Dispatch {
        protocol: "fuzz",
        version: 1,
        commands: TABLE,
    };
    let mut count = 0u32;
    for piece in stream.chunks(chunk) {
        match r.push(piece) {
            Ok(false) => assert!(r.body().is_none()),
            Ok(true) => {
                let body = r.body().expect("a completed message has a body");
                assert!(body.len() + TERMINATOR.len() <= max);
                let mut tree = Tree::new(Growable::new());
                let parsed = tree.parse(body, ParseOptions::KEEP).is_ok();
                let req = Request::new(parsed.then(|| tree.view()));
                let mut out = Vec::new();
                d.answer(&mut count, &req, &mut out)
                    .expect("a Vec sink never overflows");
                let reply =
                    OwnedTree::from_text_owned(&out, ParseOptions::KEEP).unwrap_or_else(|e| {
                        panic!(
                            "reply {:?} does not parse: {e}",
                            String::from_utf8_lossy(&out)
                        )
                    });
                let response = reply
                    .view()
                    .get_str("response")
                    .expect("every reply has a response");
                assert!(!response.is_empty());
            }
            Err(FrameError::TooLarge { max: m }) => {
                assert_eq!(m, max);
                assert_eq!(r.pending(), 0, "an oversize message is dropped");
            }
            Err(e) => panic!("push cannot report {e}"),
        }
    }
    match r.finish() {
        Ok(()) => assert_eq!(r.pending(), 0),
        Err(FrameError::Truncated { pending }) => assert_eq!(pending, r.pending()),
        Err(e) => panic!("finish cannot report {e}"),
    }
}
