//! Stream names (`TYPE:ARGS`) as Open vSwitch parses them (ovs-sessions.md §3.1).
//!
//! The rules, in the order OVS applies them:
//!
//! 1. The TYPE is the text before the first `:`, compared exactly. No `:` or an unknown TYPE is
//!    invalid (EAFNOSUPPORT).
//! 2. Default ports (what OVS's JSON-RPC users do): `tcp:`/`ssl:` names with fewer than three
//!    non-empty `:`-separated fields get `:6640` appended (`tcp:1.2.3.4` → `tcp:1.2.3.4:6640`);
//!    `ptcp:`/`pssl:` names with fewer than two get `6640` appended (`ptcp:` → `ptcp:6640`).
//! 3. Active ARGS are `HOST[:PORT]`, passive ARGS are `[PORT][:IP]`. Tokens are split at `:`,
//!    except that `[...]` quotes colons and the brackets are dropped, so IPv6 is written `[::1]`.
//! 4. The port is checked before the address: a decimal 0..=65535 (`PORT 0` on a passive name
//!    lets the kernel pick). An address containing `:` must be IPv6. A passive name without an
//!    IP listens on the wildcard address 0.0.0.0.
//! 5. An active HOST without `:` that is not an IPv4 address is a host name, which OVS hands to
//!    its resolver ([`Host::Name`]; resolving it is the shell's job).
//!
//! Nothing is copied: the pieces of a [`Name`] and of a [`NameError`] borrow from the text. The
//! default port of rule 2 is never written into a buffer; a [`Text`] is a piece of the name that
//! may continue into the appended default port.
//!
//! Error texts are OVS's log messages; they name the ARGS after the default port was added
//! (`tcp:1.2.3.4:99999` → `1.2.3.4:99999: bad port number "99999"`). Every [`NameError`]
//! corresponds to OVS's EAFNOSUPPORT.
//!
//! Deliberate differences from OVS 3.1, all on names OVS itself mishandles or resolves:
//!
//! - A host name must look like one: ASCII letters, digits, `-`, `_` and `.`, at most 253 bytes,
//!   and not only digits and dots (`1.2.3` and `256.1.1.1` are bad IPv4 addresses, not names the
//!   resolver would read its own way). Anything else gives the `bad IPv4 address` error, where
//!   OVS would ask the resolver and fail later.
//! - `ptcp:`/`pssl:` IPs must be literals (OVS 3.1 resolves them too).
//! - An empty PORT (`tcp:[::1]`, `tcp:1.2.3.4:`, `ptcp::127.0.0.1`) means 6640. OVS skips its
//!   default-port step for these names (they already have enough fields) and then uses its
//!   internal "no default" value as the port.
//! - IPv6 scope suffixes (`%eth0`) are not supported: they give the `bad IPv6 address` error.
//! - Tokens after PORT (active) or IP (passive) are ignored, as in OVS; [`Name`]'s `Display`
//!   prints the canonical form without them.

use core::fmt;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The port OVSDB and its JSON-RPC users default to (`OVSDB_PORT`).
pub const DEFAULT_PORT: u16 = 6640;

/// OVS's old default port (`OVSDB_OLD_PORT`), mentioned in its one-time warning.
pub const OLD_DEFAULT_PORT: u16 = 6632;

/// What rule 2 appends to short active ARGS (`DEFAULT_PORT`, checked by a test).
const ACTIVE_DEFAULT: &str = ":6640";
/// What rule 2 appends to short passive ARGS.
const PASSIVE_DEFAULT: &str = "6640";

/// The longest host name accepted (DNS's limit on a name's text form).
pub const MAX_HOST_NAME: usize = 253;

/// What an active (`tcp:`/`ssl:`) name connects to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Host<'a> {
    /// An IPv4 or IPv6 literal.
    Ip(IpAddr),
    /// A host name for the resolver (module doc, rule 5).
    Name(&'a str),
}

impl fmt::Display for Host<'_> {
    /// As it appears in a name: IPv6 in brackets, so its colons do not split the name.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Ip(IpAddr::V4(a)) => write!(f, "{a}"),
            Host::Ip(IpAddr::V6(a)) => write!(f, "[{a}]"),
            Host::Name(n) => f.write_str(n),
        }
    }
}

/// A parsed stream name. `Display` gives the canonical name, which parses back to the same value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Name<'a> {
    /// `unix:PATH`: connect to a UNIX socket (a relative PATH is under the run directory).
    Unix(&'a str),
    /// `tcp:HOST:PORT`: connect over TCP.
    Tcp {
        /// The address or host name.
        host: Host<'a>,
        /// The port (6640 when the name gave none).
        port: u16,
    },
    /// `ssl:HOST:PORT`: connect over SSL/TLS.
    Ssl {
        /// The address or host name.
        host: Host<'a>,
        /// The port (6640 when the name gave none).
        port: u16,
    },
    /// `punix:PATH`: listen on a UNIX socket.
    PUnix(&'a str),
    /// `ptcp:PORT[:IP]`: listen on TCP.
    PTcp {
        /// The port; 0 lets the kernel pick.
        port: u16,
        /// The address to bind; `None` is the wildcard 0.0.0.0.
        ip: Option<IpAddr>,
    },
    /// `pssl:PORT[:IP]`: listen for SSL/TLS, as `ptcp:`.
    PSsl {
        /// The port; 0 lets the kernel pick.
        port: u16,
        /// The address to bind; `None` is the wildcard 0.0.0.0.
        ip: Option<IpAddr>,
    },
}

/// A piece of a name's ARGS that may run on into the default port OVS appended (rule 2), so
/// errors can quote OVS's text without copying it. `Display` prints the whole piece.
#[derive(Debug, Clone, Copy, Default)]
pub struct Text<'a> {
    head: &'a str,
    tail: &'static str,
}

impl<'a> Text<'a> {
    /// The piece from the name, and the part of the appended default port that follows it.
    pub fn parts(&self) -> (&'a str, &'static str) {
        (self.head, self.tail)
    }

    /// The bytes of the piece, in order.
    pub fn bytes(&self) -> impl Iterator<Item = u8> + 'a {
        self.head.bytes().chain(self.tail.bytes())
    }

    /// The piece as one `&str`, when it lies wholly in the name or wholly in the default port.
    pub fn as_str(&self) -> Option<&'a str> {
        if self.tail.is_empty() {
            Some(self.head)
        } else if self.head.is_empty() {
            Some(self.tail)
        } else {
            None
        }
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.head.len() + self.tail.len()
    }

    /// True for an empty piece.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn first(&self) -> Option<u8> {
        self.bytes().next()
    }

    fn find(&self, b: u8) -> Option<usize> {
        self.bytes().position(|c| c == b)
    }

    /// Splits before byte `i`. Callers split only at ASCII bytes they found, which are char
    /// boundaries; anywhere else the split keeps the text whole rather than panic.
    fn split_at(self, i: usize) -> (Text<'a>, Text<'a>) {
        if i <= self.head.len() {
            let (a, b) = self.head.split_at_checked(i).unwrap_or((self.head, ""));
            (Text { head: a, tail: "" }, Text { head: b, ..self })
        } else {
            let (a, b) = self
                .tail
                .split_at_checked(i - self.head.len())
                .unwrap_or((self.tail, ""));
            (Text { tail: a, ..self }, Text { head: "", tail: b })
        }
    }

    fn skip(self, n: usize) -> Text<'a> {
        self.split_at(n).1
    }
}

impl fmt::Display for Text<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.head)?;
        f.write_str(self.tail)
    }
}

impl PartialEq for Text<'_> {
    /// Equal when the text is, wherever the default port starts.
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.bytes().eq(other.bytes())
    }
}

impl Eq for Text<'_> {}

impl PartialEq<&str> for Text<'_> {
    fn eq(&self, other: &&str) -> bool {
        self.len() == other.len() && self.bytes().eq(other.bytes())
    }
}

/// Why a name is not a valid stream name. `Display` is OVS's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameError<'a> {
    /// No `:` in the name, or a TYPE that is not one of the six.
    UnknownType {
        /// The whole name.
        name: &'a str,
    },
    /// `TARGET: port must be specified` (an active name with `[HOST` and nothing after it).
    PortRequired {
        /// ARGS with the default port.
        target: Text<'a>,
    },
    /// `TARGET: bad port number "PORT"`.
    BadPort {
        /// ARGS with the default port.
        target: Text<'a>,
        /// The PORT token.
        port: Text<'a>,
    },
    /// `TARGET: bad IPv4 address "HOST"`: not IPv4, and not a host name either.
    BadIpv4 {
        /// ARGS with the default port.
        target: Text<'a>,
        /// The HOST or IP token.
        host: Text<'a>,
    },
    /// `TARGET: bad IPv6 address "HOST"`: a HOST with `:` that is not IPv6.
    BadIpv6 {
        /// ARGS with the default port.
        target: Text<'a>,
        /// The HOST or IP token.
        host: Text<'a>,
    },
}

/// [`NameError`]'s variant without its borrowed text, for callers that keep errors longer than
/// the name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NameErrorKind {
    /// [`NameError::UnknownType`].
    UnknownType,
    /// [`NameError::PortRequired`].
    PortRequired,
    /// [`NameError::BadPort`].
    BadPort,
    /// [`NameError::BadIpv4`].
    BadIpv4,
    /// [`NameError::BadIpv6`].
    BadIpv6,
}

impl NameError<'_> {
    /// Which error it is.
    pub fn kind(&self) -> NameErrorKind {
        match self {
            NameError::UnknownType { .. } => NameErrorKind::UnknownType,
            NameError::PortRequired { .. } => NameErrorKind::PortRequired,
            NameError::BadPort { .. } => NameErrorKind::BadPort,
            NameError::BadIpv4 { .. } => NameErrorKind::BadIpv4,
            NameError::BadIpv6 { .. } => NameErrorKind::BadIpv6,
        }
    }
}

impl fmt::Display for NameError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NameError::UnknownType { name } => {
                write!(f, "{name}: Address family not supported by protocol")
            }
            NameError::PortRequired { target } => write!(f, "{target}: port must be specified"),
            NameError::BadPort { target, port } => {
                write!(f, "{target}: bad port number \"{port}\"")
            }
            NameError::BadIpv4 { target, host } => {
                write!(f, "{target}: bad IPv4 address \"{host}\"")
            }
            NameError::BadIpv6 { target, host } => {
                write!(f, "{target}: bad IPv6 address \"{host}\"")
            }
        }
    }
}

impl core::error::Error for NameError<'_> {}

impl<'a> Name<'a> {
    /// Parses `TYPE:ARGS`, applying OVS's default ports (module doc, rule 2).
    pub fn parse(name: &'a str) -> Result<Name<'a>, NameError<'a>> {
        let unknown = NameError::UnknownType { name };
        let (kind, args) = name.split_once(':').ok_or(unknown)?;
        // The TYPE is one non-empty field, so the name's field count is one more than ARGS's.
        let fields = 1 + count_fields(args);
        match kind {
            "unix" => Ok(Name::Unix(args)),
            "punix" => Ok(Name::PUnix(args)),
            "tcp" | "ssl" => {
                let tail = if fields < 3 { ACTIVE_DEFAULT } else { "" };
                let (host, port) = parse_active(Text { head: args, tail })?;
                Ok(if kind == "tcp" {
                    Name::Tcp { host, port }
                } else {
                    Name::Ssl { host, port }
                })
            }
            "ptcp" | "pssl" => {
                let tail = if fields < 2 { PASSIVE_DEFAULT } else { "" };
                let (port, ip) = parse_passive(Text { head: args, tail })?;
                Ok(if kind == "ptcp" {
                    Name::PTcp { port, ip }
                } else {
                    Name::PSsl { port, ip }
                })
            }
            _ => Err(unknown),
        }
    }

    /// The TYPE: `unix`, `tcp`, `ssl`, `punix`, `ptcp` or `pssl`.
    pub fn kind(&self) -> &'static str {
        match self {
            Name::Unix(_) => "unix",
            Name::Tcp { .. } => "tcp",
            Name::Ssl { .. } => "ssl",
            Name::PUnix(_) => "punix",
            Name::PTcp { .. } => "ptcp",
            Name::PSsl { .. } => "pssl",
        }
    }

    /// True for the listening names `punix:`, `ptcp:` and `pssl:`.
    pub fn is_passive(&self) -> bool {
        matches!(self, Name::PUnix(_) | Name::PTcp { .. } | Name::PSsl { .. })
    }

    /// True for `ssl:` and `pssl:`.
    pub fn is_ssl(&self) -> bool {
        matches!(self, Name::Ssl { .. } | Name::PSsl { .. })
    }

    /// Whether sessions on this name send keepalive probes: everything but `unix:`/`punix:`.
    pub fn needs_probes(&self) -> bool {
        !matches!(self, Name::Unix(_) | Name::PUnix(_))
    }
}

impl fmt::Display for Name<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Name::Unix(p) | Name::PUnix(p) => write!(f, "{}:{p}", self.kind()),
            Name::Tcp { host, port } | Name::Ssl { host, port } => {
                write!(f, "{}:{host}:{port}", self.kind())
            }
            Name::PTcp { port, ip } | Name::PSsl { port, ip } => {
                write!(f, "{}:{port}", self.kind())?;
                match ip {
                    Some(ip) => write!(f, ":{}", Host::Ip(*ip)),
                    None => Ok(()),
                }
            }
        }
    }
}

/// OVS's `count_fields`: the number of non-empty `:`-separated fields (strtok semantics).
fn count_fields(s: &str) -> usize {
    s.split(':').filter(|f| !f.is_empty()).count()
}

/// OVS's `parse_bracketed_token`: strsep on `:`, where `[...]` quotes colons and loses its
/// brackets. `None` once the input is used up; an empty remainder yields one empty token.
fn bracketed_token<'a>(p: &mut Option<Text<'a>>) -> Option<Text<'a>> {
    let s = (*p)?;
    if s.is_empty() {
        *p = None;
        Some(s)
    } else if s.first() == Some(b'[') {
        let inner = s.skip(1);
        let end = inner.find(b']').unwrap_or(inner.len());
        let (token, after) = inner.split_at(end);
        *p = if after.is_empty() {
            None
        } else {
            let after = after.skip(1);
            Some(if after.first() == Some(b':') {
                after.skip(1)
            } else {
                after
            })
        };
        Some(token)
    } else {
        match s.find(b':') {
            Some(i) => {
                let (token, rest) = s.split_at(i);
                *p = Some(rest.skip(1));
                Some(token)
            }
            None => {
                *p = None;
                Some(s)
            }
        }
    }
}

/// `HOST[:PORT]` after the default port was added.
fn parse_active(target: Text<'_>) -> Result<(Host<'_>, u16), NameError<'_>> {
    let mut p = Some(target);
    // `p` starts as Some, so HOST is always a token.
    let host = bracketed_token(&mut p).unwrap_or_default();
    let Some(port) = bracketed_token(&mut p) else {
        return Err(NameError::PortRequired { target });
    };
    // OVS's parse_sockaddr_components: the port first, then the address.
    let port = parse_port(target, port)?;
    if host.find(b':').is_none() {
        if let Some(name) = host.as_str().filter(|h| is_host_name(h)) {
            return Ok((Host::Name(name), port));
        }
    }
    Ok((Host::Ip(parse_ip(target, host)?), port))
}

/// `[PORT][:IP]` after the default port was added.
fn parse_passive(target: Text<'_>) -> Result<(u16, Option<IpAddr>), NameError<'_>> {
    let mut p = Some(target);
    let port = bracketed_token(&mut p).unwrap_or_default();
    let ip = bracketed_token(&mut p);
    let port = parse_port(target, port)?;
    let ip = match ip {
        Some(ip) => Some(parse_ip(target, ip)?),
        None => None,
    };
    Ok((port, ip))
}

/// OVS's `str_to_int` in base 10 (strtoll: leading white space and a sign allowed, every byte
/// consumed) limited to 0..=65535; empty means the default port (module doc).
fn parse_port<'a>(target: Text<'a>, token: Text<'a>) -> Result<u16, NameError<'a>> {
    if token.is_empty() {
        return Ok(DEFAULT_PORT);
    }
    let bad = NameError::BadPort {
        target,
        port: token,
    };
    let mut bytes = token
        .bytes()
        .skip_while(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r'))
        .peekable();
    let negative = match bytes.peek() {
        Some(b'-') => true,
        Some(b'+') => false,
        _ => {
            return digits(bytes)
                .filter(|&n| n <= 65535)
                .map(|n| n as u16)
                .ok_or(bad);
        }
    };
    bytes.next();
    match digits(bytes) {
        Some(0) => Ok(0),
        Some(n) if !negative && n <= 65535 => Ok(n as u16),
        _ => Err(bad),
    }
}

/// One or more decimal digits and nothing else; values past 65535 saturate just above it.
fn digits(bytes: impl Iterator<Item = u8>) -> Option<u32> {
    let mut n: Option<u32> = None;
    for b in bytes {
        if !b.is_ascii_digit() {
            return None;
        }
        n = Some((n.unwrap_or(0) * 10 + u32::from(b - b'0')).min(65536));
    }
    n
}

/// An IP literal: IPv6 if the token has a `:`, otherwise IPv4.
fn parse_ip<'a>(target: Text<'a>, token: Text<'a>) -> Result<IpAddr, NameError<'a>> {
    let text = token.as_str();
    if token.find(b':').is_some() {
        text.and_then(|t| t.parse::<Ipv6Addr>().ok())
            .map(IpAddr::V6)
            .ok_or(NameError::BadIpv6 {
                target,
                host: token,
            })
    } else {
        text.and_then(|t| t.parse::<Ipv4Addr>().ok())
            .map(IpAddr::V4)
            .ok_or(NameError::BadIpv4 {
                target,
                host: token,
            })
    }
}

/// Module doc, rule 5 and the first difference: what is taken as a host name.
fn is_host_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_HOST_NAME
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && !s.bytes().all(|b| b.is_ascii_digit() || b == b'.')
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::format;
    use std::string::{String, ToString};

    fn ok(s: &str) -> Name<'_> {
        Name::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn err(s: &str) -> String {
        match Name::parse(s) {
            Ok(n) => panic!("{s} parsed as {n:?}"),
            Err(e) => e.to_string(),
        }
    }

    fn v4(a: [u8; 4]) -> Host<'static> {
        Host::Ip(IpAddr::V4(Ipv4Addr::from(a)))
    }

    fn v6(s: &str) -> IpAddr {
        IpAddr::V6(s.parse().unwrap())
    }

    /// `s` parses, prints as `canonical`, and `canonical` parses to the same value.
    fn canon(s: &str, canonical: &str) {
        let n = ok(s);
        assert_eq!(n.to_string(), canonical, "{s}");
        assert_eq!(ok(canonical), n, "{canonical}");
    }

    #[test]
    fn default_port_texts_match_the_constant() {
        assert_eq!(ACTIVE_DEFAULT, format!(":{DEFAULT_PORT}"));
        assert_eq!(PASSIVE_DEFAULT, format!("{DEFAULT_PORT}"));
    }

    #[test]
    fn type_is_text_before_first_colon_exactly() {
        assert_eq!(err("tcp"), "tcp: Address family not supported by protocol");
        assert_eq!(err(""), ": Address family not supported by protocol");
        for bad in [
            "TCP:1.2.3.4:80",
            "udp:1.2.3.4:80",
            " tcp:1.2.3.4:80",
            "pfd:3",
            "unix/x",
        ] {
            assert_eq!(
                err(bad),
                format!("{bad}: Address family not supported by protocol")
            );
            assert_eq!(
                Name::parse(bad).unwrap_err().kind(),
                NameErrorKind::UnknownType
            );
        }
    }

    #[test]
    fn unix_names_keep_the_path() {
        assert_eq!(ok("unix:/run/x.sock"), Name::Unix("/run/x.sock"));
        assert_eq!(ok("unix:rel.sock"), Name::Unix("rel.sock"));
        assert_eq!(ok("punix:/run/x:y"), Name::PUnix("/run/x:y"));
        canon("unix:/a/b", "unix:/a/b");
        canon("punix:db.sock", "punix:db.sock");
        canon("unix:", "unix:");
    }

    #[test]
    fn tcp_and_ssl_default_port() {
        assert_eq!(
            ok("tcp:1.2.3.4"),
            Name::Tcp {
                host: v4([1, 2, 3, 4]),
                port: 6640
            }
        );
        canon("tcp:1.2.3.4", "tcp:1.2.3.4:6640");
        canon("ssl:1.2.3.4", "ssl:1.2.3.4:6640");
        assert_eq!(
            ok("ssl:10.0.0.1:6641"),
            Name::Ssl {
                host: v4([10, 0, 0, 1]),
                port: 6641
            }
        );
        canon("tcp:127.0.0.1:0", "tcp:127.0.0.1:0");
        canon("tcp:127.0.0.1:65535", "tcp:127.0.0.1:65535");
        // An empty port is the default (module doc).
        canon("tcp:1.2.3.4:", "tcp:1.2.3.4:6640");
        // Tokens after the port are ignored, as in OVS.
        canon("tcp:1.2.3.4:80:junk", "tcp:1.2.3.4:80");
        // strtoll accepts leading white space and a sign.
        canon("tcp:1.2.3.4: 80", "tcp:1.2.3.4:80");
        canon("tcp:1.2.3.4:+80", "tcp:1.2.3.4:80");
        canon("tcp:1.2.3.4:-0", "tcp:1.2.3.4:0");
        canon("tcp:1.2.3.4:00080", "tcp:1.2.3.4:80");
    }

    #[test]
    fn tcp_and_ssl_host_names() {
        assert_eq!(
            ok("tcp:localhost"),
            Name::Tcp {
                host: Host::Name("localhost"),
                port: 6640
            }
        );
        canon("tcp:localhost", "tcp:localhost:6640");
        canon("ssl:db-1.example.org:6641", "ssl:db-1.example.org:6641");
        canon("ssl:[localhost]:1", "ssl:localhost:1");
        canon("tcp:a_b", "tcp:a_b:6640");
        canon("tcp:1.2.3a:5", "tcp:1.2.3a:5");
        // Digits and dots only are an address, never a name.
        assert_eq!(err("tcp:1.2.3:80"), "1.2.3:80: bad IPv4 address \"1.2.3\"");
        assert_eq!(
            err("tcp:256.1.1.1:80"),
            "256.1.1.1:80: bad IPv4 address \"256.1.1.1\""
        );
        // Not a name's characters.
        assert_eq!(err("tcp:a b:80"), "a b:80: bad IPv4 address \"a b\"");
        assert_eq!(err("tcp:a]:80"), "a]:80: bad IPv4 address \"a]\"");
        let long = "a".repeat(MAX_HOST_NAME + 1);
        assert_eq!(
            Name::parse(&format!("tcp:{long}:1")).unwrap_err().kind(),
            NameErrorKind::BadIpv4
        );
        let longest = "a".repeat(MAX_HOST_NAME);
        canon(&format!("tcp:{longest}:1"), &format!("tcp:{longest}:1"));
        // Passive names take only literals.
        assert_eq!(
            err("ptcp:1:localhost"),
            "1:localhost: bad IPv4 address \"localhost\""
        );
    }

    #[test]
    fn tcp_ipv6_in_brackets() {
        assert_eq!(
            ok("tcp:[::1]:6641"),
            Name::Tcp {
                host: Host::Ip(v6("::1")),
                port: 6641
            }
        );
        canon("tcp:[::1]:6641", "tcp:[::1]:6641");
        canon("ssl:[fe80::1]:1", "ssl:[fe80::1]:1");
        canon("tcp:[::1]", "tcp:[::1]:6640");
        // Brackets only quote: an IPv4 address in them is still IPv4.
        canon("ssl:[1.2.3.4]:80", "ssl:1.2.3.4:80");
        canon("tcp:[2001:db8:0:0:0:0:0:1]:5", "tcp:[2001:db8::1]:5");
    }

    #[test]
    fn tcp_error_texts() {
        assert_eq!(err("tcp:"), ":6640: bad IPv4 address \"\"");
        assert_eq!(err("ssl:"), ":6640: bad IPv4 address \"\"");
        assert_eq!(
            err("tcp:1.2.3.4:99999"),
            "1.2.3.4:99999: bad port number \"99999\""
        );
        assert_eq!(err("tcp:1.2.3.4:-1"), "1.2.3.4:-1: bad port number \"-1\"");
        assert_eq!(err("tcp:1.2.3.4:+"), "1.2.3.4:+: bad port number \"+\"");
        assert_eq!(err("tcp:1.2.3.4: "), "1.2.3.4: : bad port number \" \"");
        assert_eq!(
            err("tcp:1.2.3.4:80x"),
            "1.2.3.4:80x: bad port number \"80x\""
        );
        assert_eq!(
            err("tcp:1.2.3.4:0x50"),
            "1.2.3.4:0x50: bad port number \"0x50\""
        );
        assert_eq!(
            err("tcp:1.2.3.4:99999999999999999999999"),
            "1.2.3.4:99999999999999999999999: bad port number \"99999999999999999999999\""
        );
        // The port is checked before the address.
        assert_eq!(err("tcp:no host:x"), "no host:x: bad port number \"x\"");
        assert_eq!(err("tcp:[::g]:80"), "[::g]:80: bad IPv6 address \"::g\"");
        assert_eq!(
            err("tcp:[fe80::1%eth0]:80"),
            "[fe80::1%eth0]:80: bad IPv6 address \"fe80::1%eth0\""
        );
        // Unbracketed IPv6: few enough fields for the default port, then HOST is empty.
        assert_eq!(err("tcp:::1"), "::1:6640: bad IPv4 address \"\"");
        // An unclosed bracket swallows the rest: no PORT token at all.
        assert_eq!(err("tcp:[::1"), "[::1: port must be specified");
        // ... including the default port, when the name was short enough to get one.
        assert_eq!(err("tcp:[x"), "[x:6640: port must be specified");
        assert_eq!(
            Name::parse("tcp:[x").unwrap_err().kind(),
            NameErrorKind::PortRequired
        );
    }

    #[test]
    fn error_pieces_run_into_the_default_port() {
        // The PORT token is all default port; the target is ARGS plus it.
        let e = Name::parse("tcp:a b").unwrap_err();
        let NameError::BadIpv4 { target, host } = e else {
            panic!("{e:?}")
        };
        assert_eq!(target, "a b:6640");
        assert_eq!(target.parts(), ("a b", ":6640"));
        assert_eq!(target.as_str(), None);
        assert_eq!(host.as_str(), Some("a b"));
        let e = Name::parse("ptcp:").unwrap();
        assert_eq!(
            e,
            Name::PTcp {
                port: 6640,
                ip: None
            }
        );
        // `ptcp::` has no fields: `:6640`, an empty port, then IP "6640".
        assert_eq!(err("ptcp::"), ":6640: bad IPv4 address \"6640\"");
    }

    #[test]
    fn ptcp_and_pssl_default_port_and_wildcard() {
        assert_eq!(
            ok("ptcp:"),
            Name::PTcp {
                port: 6640,
                ip: None
            }
        );
        canon("ptcp:", "ptcp:6640");
        canon("pssl:", "pssl:6640");
        assert_eq!(ok("ptcp:0"), Name::PTcp { port: 0, ip: None });
        canon("ptcp:6641", "ptcp:6641");
        assert_eq!(
            ok("ptcp:0:127.0.0.1"),
            Name::PTcp {
                port: 0,
                ip: Some(IpAddr::V4(Ipv4Addr::LOCALHOST))
            }
        );
        canon("ptcp:0:127.0.0.1", "ptcp:0:127.0.0.1");
        assert_eq!(
            ok("pssl:6641:[::1]"),
            Name::PSsl {
                port: 6641,
                ip: Some(v6("::1"))
            }
        );
        canon("pssl:6641:[::1]", "pssl:6641:[::1]");
        // An empty port is the default (module doc).
        canon("ptcp::127.0.0.1", "ptcp:6640:127.0.0.1");
        // Tokens after the IP are ignored.
        canon("ptcp:1:127.0.0.1:x", "ptcp:1:127.0.0.1");
    }

    #[test]
    fn ptcp_error_texts() {
        assert_eq!(err("ptcp:x"), "x: bad port number \"x\"");
        assert_eq!(err("ptcp:65536"), "65536: bad port number \"65536\"");
        assert_eq!(err("pssl:80:1.2.3"), "80:1.2.3: bad IPv4 address \"1.2.3\"");
        assert_eq!(err("ptcp:80:[::x]"), "80:[::x]: bad IPv6 address \"::x\"");
        // PORT comes first: a bare bracketed address is taken as the port.
        assert_eq!(err("ptcp:[::1]"), "[::1]: bad port number \"::1\"");
    }

    #[test]
    fn kinds_and_probes() {
        for (s, kind, passive, probes, ssl) in [
            ("unix:x", "unix", false, false, false),
            ("tcp:1.2.3.4", "tcp", false, true, false),
            ("ssl:1.2.3.4", "ssl", false, true, true),
            ("punix:x", "punix", true, false, false),
            ("ptcp:", "ptcp", true, true, false),
            ("pssl:", "pssl", true, true, true),
        ] {
            let n = ok(s);
            assert_eq!(n.kind(), kind);
            assert_eq!(n.is_passive(), passive, "{s}");
            assert_eq!(n.needs_probes(), probes, "{s}");
            assert_eq!(n.is_ssl(), ssl, "{s}");
        }
    }

    #[test]
    fn non_ascii_text_never_splits_inside_a_character() {
        for s in [
            "tcp:é",
            "tcp:[é",
            "tcp:[é]:é",
            "ptcp:é:é",
            "ssl:ü:1",
            "tcp:[ü]ü:1",
        ] {
            let _ = Name::parse(s).map(|n| n.to_string());
        }
        assert_eq!(err("tcp:é"), "é:6640: bad IPv4 address \"é\"");
    }
}
