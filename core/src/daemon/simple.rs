//! The hand-built text form of `daemon_send_simple` / `daemon_reply_simple`
//! (config-tree.md §3.2): `request = "id"` or `response = "id"`, then one `key = value` per line.
//!
//! Unlike upstream, strings are escaped, so a `"` in an argument cannot break the message.

use crate::config::{Overflow, Sink};

/// One argument: a string (quoted) or an integer (plain), as `%s` and `FMTd64` give them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arg<'a> {
    /// `key = "value"`.
    Str(&'a [u8]),
    /// `key = 123`.
    Int(i64),
}

impl<'a> From<&'a str> for Arg<'a> {
    fn from(s: &'a str) -> Self {
        Arg::Str(s.as_bytes())
    }
}

impl From<i64> for Arg<'_> {
    fn from(i: i64) -> Self {
        Arg::Int(i)
    }
}

/// Writes `key = "escaped"` plus a newline.
pub fn write_str_line<W: Sink + ?Sized>(
    key: &[u8],
    value: &[u8],
    out: &mut W,
) -> Result<(), Overflow> {
    out.put(key)?;
    out.put(b" = \"")?;
    crate::config::write::write_escaped(value, out)?;
    out.put(b"\"\n")
}

/// Writes `key = 123` plus a newline.
pub fn write_int_line<W: Sink + ?Sized>(
    key: &[u8],
    value: i64,
    out: &mut W,
) -> Result<(), Overflow> {
    let mut buf = [0u8; 24];
    out.put(key)?;
    out.put(b" = ")?;
    out.put(crate::config::number::format_int(value, &mut buf))?;
    out.put(b"\n")
}

/// Writes one argument line.
pub fn write_arg<W: Sink + ?Sized>(key: &[u8], arg: Arg<'_>, out: &mut W) -> Result<(), Overflow> {
    match arg {
        Arg::Str(s) => write_str_line(key, s, out),
        Arg::Int(i) => write_int_line(key, i, out),
    }
}

/// `daemon_send_simple(id, args…)`'s body: `request = "id"` then the arguments.
pub fn write_request<W: Sink + ?Sized>(
    id: &[u8],
    args: &[(&str, Arg<'_>)],
    out: &mut W,
) -> Result<(), Overflow> {
    write_simple(b"request", id, args, out)
}

/// `daemon_reply_simple(id, args…)`'s body: `response = "id"` then the arguments.
pub fn write_reply<W: Sink + ?Sized>(
    id: &[u8],
    args: &[(&str, Arg<'_>)],
    out: &mut W,
) -> Result<(), Overflow> {
    write_simple(b"response", id, args, out)
}

fn write_simple<W: Sink + ?Sized>(
    first: &[u8],
    id: &[u8],
    args: &[(&str, Arg<'_>)],
    out: &mut W,
) -> Result<(), Overflow> {
    write_str_line(first, id, out)?;
    for (k, v) in args {
        write_arg(k.as_bytes(), *v, out)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_upstream_bytes_and_escapes() {
        let mut v = heapless::Vec::<u8, 128>::new();
        write_reply(
            b"OK",
            &[("protocol", "lvmpolld".into()), ("version", 1.into())],
            &mut v,
        )
        .unwrap();
        assert_eq!(
            &v[..],
            b"response = \"OK\"\nprotocol = \"lvmpolld\"\nversion = 1\n"
        );
        v.clear();
        write_request(
            b"x",
            &[("s", Arg::Str(b"a\"b\\c")), ("n", Arg::Int(i64::MIN))],
            &mut v,
        )
        .unwrap();
        assert_eq!(
            &v[..],
            b"request = \"x\"\ns = \"a\\\"b\\\\c\"\nn = -9223372036854775808\n"
        );
    }
}
