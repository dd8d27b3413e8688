//! Requests and replies as config trees, and libdaemon's conventions for them
//! (config-tree.md §3.2–3.4).

use crate::config::{Lookup, Overflow, Sink, TreeView};

use super::simple::{write_reply, Arg};

/// `response` words used by convention.
pub mod words {
    /// Success.
    pub const OK: &[u8] = b"OK";
    /// The request was valid but failed (lvmpolld); `reason` says why.
    pub const FAILED: &[u8] = b"failed";
    /// The request was not understood; `reason` says why.
    pub const INVALID: &[u8] = b"invalid";
    /// What a client reads when a reply has no `response`.
    pub const UNKNOWN: &[u8] = b"unknown";
}

/// The reason libdaemon daemons give for a request they do not know.
pub const NOT_IMPLEMENTED: &str = "request not implemented";

/// A received request. A body that did not parse is a request with no tree, whose name is
/// `NONE`, as libdaemon hands it to the handler.
#[derive(Clone, Copy, Debug)]
pub struct Request<'t> {
    tree: Option<TreeView<'t>>,
}

impl<'t> Request<'t> {
    /// Wraps a parsed body (`None` when it did not parse).
    pub fn new(tree: Option<TreeView<'t>>) -> Self {
        Request { tree }
    }

    /// The `request` string (`find_str`, so empty counts as missing), or `NONE`.
    pub fn name(&self) -> &'t [u8] {
        self.tree
            .map_or(b"NONE", |t| t.find_str("request", b"NONE"))
    }

    /// The parsed body.
    pub fn tree(&self) -> Option<TreeView<'t>> {
        self.tree
    }

    /// A non-empty string field (`daemon_request_str` semantics).
    pub fn str(&self, path: &str) -> Option<&'t [u8]> {
        Some(self.tree?.find_str(path, b"")).filter(|s| !s.is_empty())
    }

    /// An integer field.
    pub fn int(&self, path: &str) -> Option<i64> {
        self.tree?.get_int64(path)
    }
}

/// A received reply.
#[derive(Clone, Copy, Debug)]
pub struct Reply<'t> {
    tree: TreeView<'t>,
}

impl<'t> Reply<'t> {
    /// Wraps a parsed reply body.
    pub fn new(tree: TreeView<'t>) -> Self {
        Reply { tree }
    }

    /// `response` (`daemon_reply_str`: empty allowed), or `unknown` when missing.
    pub fn response(&self) -> &'t [u8] {
        self.tree.find_str_allow_empty("response", words::UNKNOWN)
    }

    /// The `reason` that failure replies carry.
    pub fn reason(&self) -> Option<&'t [u8]> {
        self.tree.get_str("reason")
    }

    /// The parsed body.
    pub fn tree(&self) -> TreeView<'t> {
        self.tree
    }
}

/// Why a `hello` exchange refused the daemon (texts as libdaemon's `daemon_open` logs them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HelloError<'a> {
    /// `response` was not `OK`.
    NotOk(&'a [u8]),
    /// The reply named no protocol.
    NoProtocol,
    /// Another protocol answered.
    Protocol {
        /// What the client asked for.
        requested: &'a str,
        /// What the daemon speaks.
        got: &'a [u8],
    },
    /// Another version answered.
    Version {
        /// What the client asked for.
        requested: i64,
        /// What the daemon speaks.
        got: i64,
    },
}

impl core::fmt::Display for HelloError<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        fn s(b: &[u8]) -> &str {
            core::str::from_utf8(b).unwrap_or("<non-UTF-8>")
        }
        match self {
            HelloError::NotOk(r) => write!(f, "hello was answered with response {}", s(r)),
            HelloError::NoProtocol => f.write_str("hello reply names no protocol"),
            HelloError::Protocol { requested, got } => {
                write!(f, "requested protocol {requested} != {}", s(got))
            }
            HelloError::Version { requested, got } => {
                write!(f, "requested protocol version {requested} != {got}")
            }
        }
    }
}

/// Checks a `hello` reply the way `daemon_open` does: `response` must be `OK`; a requested
/// protocol must match; a non-zero requested version must match.
pub fn check_hello<'a>(
    reply: Reply<'a>,
    protocol: Option<&'a str>,
    version: i64,
) -> Result<(&'a [u8], i64), HelloError<'a>> {
    let r = reply.response();
    if r != words::OK {
        return Err(HelloError::NotOk(r));
    }
    let got = reply
        .tree()
        .get_str("protocol")
        .ok_or(HelloError::NoProtocol)?;
    let got_version = reply.tree().find_int64("version", 0);
    if let Some(p) = protocol {
        if p.as_bytes() != got {
            return Err(HelloError::Protocol { requested: p, got });
        }
    }
    if version != 0 && version != got_version {
        return Err(HelloError::Version {
            requested: version,
            got: got_version,
        });
    }
    Ok((got, got_version))
}

/// Writes `response = "OK"`.
pub fn ok<W: Sink + ?Sized>(out: &mut W) -> Result<(), Overflow> {
    write_reply(words::OK, &[], out)
}

/// Writes `response = "failed"` and `reason`.
pub fn failed<W: Sink + ?Sized>(reason: &str, out: &mut W) -> Result<(), Overflow> {
    write_reply(
        words::FAILED,
        &[("reason", Arg::Str(reason.as_bytes()))],
        out,
    )
}

/// Writes `response = "invalid"` and `reason`.
pub fn invalid<W: Sink + ?Sized>(reason: &str, out: &mut W) -> Result<(), Overflow> {
    write_reply(
        words::INVALID,
        &[("reason", Arg::Str(reason.as_bytes()))],
        out,
    )
}

/// Writes a reply tree the way libdaemon's server does: the writer's lines, then an empty line.
pub fn tree<W: Sink>(t: TreeView<'_>, out: &mut W) -> Result<(), Overflow> {
    t.write(out)?;
    out.put(b"\n\n")
}
