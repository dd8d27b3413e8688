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
//!    lets the kernel pick). An address containing `:` must be IPv6, otherwise IPv4. A passive
//!    name without an IP listens on the wildcard address 0.0.0.0.
//!
//! Error texts are OVS's log messages verbatim; they name the ARGS after the default port was
//! added (`tcp:1.2.3.4:99999` → `1.2.3.4:99999: bad port number "99999"`). Every [`NameError`]
//! corresponds to OVS's EAFNOSUPPORT ([`NameError::errno`]).
//!
//! Deliberate differences from OVS 3.1, all on names OVS itself mishandles or resolves:
//!
//! - HOST must be an IP literal. OVS 3.1 also resolves host names through DNS; here a name gives
//!   the `bad IPv4 address` error.
//! - An empty PORT (`tcp:[::1]`, `tcp:1.2.3.4:`, `ptcp::127.0.0.1`) means 6640. OVS skips its
//!   default-port step for these names (they already have enough fields) and then uses its
//!   internal "no default" value as the port.
//! - Tokens after PORT (active) or IP (passive) are ignored, as in OVS; [`Name`]'s `Display`
//!   prints the canonical form without them.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// The port OVSDB and its JSON-RPC users default to (`OVSDB_PORT`).
pub const DEFAULT_PORT: u16 = 6640;

/// OVS's old default port (`OVSDB_OLD_PORT`), mentioned in its one-time warning.
pub const OLD_DEFAULT_PORT: u16 = 6632;

/// A parsed stream name. `Display` gives the canonical name, which parses back to the same value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Name {
    /// `unix:PATH`: connect to a UNIX socket (a relative PATH is under the run directory).
    Unix(PathBuf),
    /// `tcp:HOST:PORT`: connect over TCP.
    Tcp { host: IpAddr, port: u16 },
    /// `ssl:HOST:PORT`: connect over SSL/TLS.
    Ssl { host: IpAddr, port: u16 },
    /// `punix:PATH`: listen on a UNIX socket.
    PUnix(PathBuf),
    /// `ptcp:PORT[:IP]`: listen on TCP; `ip: None` is the wildcard 0.0.0.0, port 0 lets the
    /// kernel pick.
    PTcp { port: u16, ip: Option<IpAddr> },
    /// `pssl:PORT[:IP]`: listen for SSL/TLS, as `ptcp:`.
    PSsl { port: u16, ip: Option<IpAddr> },
}

/// Why a name is not a valid stream name. `Display` is OVS's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NameError {
    /// No `:` in the name, or a TYPE that is not one of the six.
    UnknownType { name: String },
    /// `TARGET: port must be specified` (an active name with `[HOST` and nothing after it).
    PortRequired { target: String },
    /// `TARGET: bad port number "PORT"`.
    BadPort { target: String, port: String },
    /// `TARGET: bad IPv4 address "HOST"`.
    BadIpv4 { target: String, host: String },
    /// `TARGET: bad IPv6 address "HOST"`.
    BadIpv6 { target: String, host: String },
}

impl NameError {
    /// The errno OVS returns for every bad name: EAFNOSUPPORT.
    pub fn errno(&self) -> i32 {
        nix::errno::Errno::EAFNOSUPPORT as i32
    }
}

impl fmt::Display for NameError {
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

impl std::error::Error for NameError {}

impl Name {
    /// Parses `TYPE:ARGS`, applying OVS's default ports (module doc, rule 2).
    pub fn parse(name: &str) -> Result<Name, NameError> {
        let unknown = || NameError::UnknownType {
            name: name.to_string(),
        };
        let (kind, args) = name.split_once(':').ok_or_else(unknown)?;
        match kind {
            "unix" => Ok(Name::Unix(PathBuf::from(args))),
            "punix" => Ok(Name::PUnix(PathBuf::from(args))),
            "tcp" | "ssl" => {
                let target = if count_fields(name) < 3 {
                    format!("{args}:{DEFAULT_PORT}")
                } else {
                    args.to_string()
                };
                let (host, port) = parse_active(&target)?;
                Ok(if kind == "tcp" {
                    Name::Tcp { host, port }
                } else {
                    Name::Ssl { host, port }
                })
            }
            "ptcp" | "pssl" => {
                let target = if count_fields(name) < 2 {
                    format!("{args}{DEFAULT_PORT}")
                } else {
                    args.to_string()
                };
                let (port, ip) = parse_passive(&target)?;
                Ok(if kind == "ptcp" {
                    Name::PTcp { port, ip }
                } else {
                    Name::PSsl { port, ip }
                })
            }
            _ => Err(unknown()),
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

    /// Whether sessions on this name send keepalive probes: everything but `unix:`/`punix:`.
    pub fn needs_probes(&self) -> bool {
        !matches!(self, Name::Unix(_) | Name::PUnix(_))
    }

    /// The name with a relative `unix:`/`punix:` PATH made absolute under `run_dir`; other
    /// names unchanged.
    pub fn resolved(&self, run_dir: &Path) -> Name {
        match self {
            Name::Unix(p) if p.is_relative() => Name::Unix(run_dir.join(p)),
            Name::PUnix(p) if p.is_relative() => Name::PUnix(run_dir.join(p)),
            other => other.clone(),
        }
    }
}

impl FromStr for Name {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Name, NameError> {
        Name::parse(s)
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Name::Unix(p) | Name::PUnix(p) => write!(f, "{}:{}", self.kind(), p.display()),
            Name::Tcp { host, port } | Name::Ssl { host, port } => {
                write!(f, "{}:{}:{port}", self.kind(), Host(*host))
            }
            Name::PTcp { port, ip } | Name::PSsl { port, ip } => {
                write!(f, "{}:{port}", self.kind())?;
                match ip {
                    Some(ip) => write!(f, ":{}", Host(*ip)),
                    None => Ok(()),
                }
            }
        }
    }
}

/// An address as it appears in a name: IPv6 in brackets.
struct Host(IpAddr);

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            IpAddr::V4(a) => write!(f, "{a}"),
            IpAddr::V6(a) => write!(f, "[{a}]"),
        }
    }
}

/// OVS's `count_fields`: the number of non-empty `:`-separated fields (strtok semantics).
fn count_fields(s: &str) -> usize {
    s.split(':').filter(|f| !f.is_empty()).count()
}

/// OVS's `parse_bracketed_token`: strsep on `:`, where `[...]` quotes colons and loses its
/// brackets. `None` once the input is used up; an empty remainder yields one empty token.
fn bracketed_token<'a>(p: &mut Option<&'a str>) -> Option<&'a str> {
    let s = (*p)?;
    if s.is_empty() {
        *p = None;
        Some(s)
    } else if let Some(inner) = s.strip_prefix('[') {
        let end = inner.find(']').unwrap_or(inner.len());
        let after = &inner[end..];
        *p = if after.is_empty() {
            None
        } else if after[1..].starts_with(':') {
            Some(&after[2..])
        } else {
            Some(&after[1..])
        };
        Some(&inner[..end])
    } else {
        match s.find(':') {
            Some(i) => {
                *p = Some(&s[i + 1..]);
                Some(&s[..i])
            }
            None => {
                *p = None;
                Some(s)
            }
        }
    }
}

/// `HOST[:PORT]` after the default port was added.
fn parse_active(target: &str) -> Result<(IpAddr, u16), NameError> {
    let mut p = Some(target);
    // `p` starts non-empty-or-empty but present, so HOST is always a token.
    let host = bracketed_token(&mut p).unwrap_or("");
    let Some(port) = bracketed_token(&mut p) else {
        return Err(NameError::PortRequired {
            target: target.to_string(),
        });
    };
    components(target, host, port)
}

/// `[PORT][:IP]` after the default port was added.
fn parse_passive(target: &str) -> Result<(u16, Option<IpAddr>), NameError> {
    let mut p = Some(target);
    let port = bracketed_token(&mut p).unwrap_or("");
    let ip = bracketed_token(&mut p);
    let (addr, port) = components(target, ip.unwrap_or("0.0.0.0"), port)?;
    Ok((port, ip.map(|_| addr)))
}

/// OVS's `parse_sockaddr_components`: the port first, then the address.
fn components(target: &str, host: &str, port: &str) -> Result<(IpAddr, u16), NameError> {
    let port = if port.is_empty() {
        DEFAULT_PORT
    } else {
        // str_to_int: strtoll base 10, leading white space allowed, all of it consumed.
        match port
            .trim_start_matches(|c: char| c.is_ascii_whitespace() || c == '\x0b')
            .parse::<i64>()
        {
            Ok(n) if (0..=65535).contains(&n) => n as u16,
            _ => {
                return Err(NameError::BadPort {
                    target: target.to_string(),
                    port: port.to_string(),
                })
            }
        }
    };
    let addr = if host.contains(':') {
        IpAddr::V6(host.parse::<Ipv6Addr>().map_err(|_| NameError::BadIpv6 {
            target: target.to_string(),
            host: host.to_string(),
        })?)
    } else {
        IpAddr::V4(host.parse::<Ipv4Addr>().map_err(|_| NameError::BadIpv4 {
            target: target.to_string(),
            host: host.to_string(),
        })?)
    };
    Ok((addr, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> Name {
        Name::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn err(s: &str) -> String {
        match Name::parse(s) {
            Ok(n) => panic!("{s} parsed as {n:?}"),
            Err(e) => {
                assert_eq!(e.errno(), nix::errno::Errno::EAFNOSUPPORT as i32);
                e.to_string()
            }
        }
    }

    fn v4(a: [u8; 4]) -> IpAddr {
        IpAddr::V4(Ipv4Addr::from(a))
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
    fn type_is_text_before_first_colon_exactly() {
        assert_eq!(err("tcp"), "tcp: Address family not supported by protocol");
        assert_eq!(err(""), ": Address family not supported by protocol");
        assert_eq!(
            err("TCP:1.2.3.4:80"),
            "TCP:1.2.3.4:80: Address family not supported by protocol"
        );
        assert_eq!(
            err("udp:1.2.3.4:80"),
            "udp:1.2.3.4:80: Address family not supported by protocol"
        );
        assert_eq!(
            err(" tcp:1.2.3.4:80"),
            " tcp:1.2.3.4:80: Address family not supported by protocol"
        );
        assert_eq!(
            err("pfd:3"),
            "pfd:3: Address family not supported by protocol"
        );
        assert_eq!(
            err("unix/x"),
            "unix/x: Address family not supported by protocol"
        );
    }

    #[test]
    fn unix_names_keep_the_path() {
        assert_eq!(ok("unix:/run/x.sock"), Name::Unix("/run/x.sock".into()));
        assert_eq!(ok("unix:rel.sock"), Name::Unix("rel.sock".into()));
        assert_eq!(ok("punix:/run/x:y"), Name::PUnix("/run/x:y".into()));
        canon("unix:/a/b", "unix:/a/b");
        canon("punix:db.sock", "punix:db.sock");
        let run = Path::new("/run/k");
        assert_eq!(
            ok("unix:db.sock").resolved(run),
            Name::Unix("/run/k/db.sock".into())
        );
        assert_eq!(ok("punix:/abs").resolved(run), Name::PUnix("/abs".into()));
        assert_eq!(ok("tcp:1.2.3.4").resolved(run), ok("tcp:1.2.3.4:6640"));
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
    }

    #[test]
    fn tcp_ipv6_in_brackets() {
        assert_eq!(
            ok("tcp:[::1]:6641"),
            Name::Tcp {
                host: v6("::1"),
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
        assert_eq!(
            err("tcp:1.2.3.4:80x"),
            "1.2.3.4:80x: bad port number \"80x\""
        );
        assert_eq!(
            err("tcp:1.2.3.4:0x50"),
            "1.2.3.4:0x50: bad port number \"0x50\""
        );
        // The port is checked before the address.
        assert_eq!(err("tcp:nohost:x"), "nohost:x: bad port number \"x\"");
        assert_eq!(
            err("tcp:localhost"),
            "localhost:6640: bad IPv4 address \"localhost\""
        );
        assert_eq!(err("tcp:1.2.3:80"), "1.2.3:80: bad IPv4 address \"1.2.3\"");
        assert_eq!(
            err("tcp:256.1.1.1:80"),
            "256.1.1.1:80: bad IPv4 address \"256.1.1.1\""
        );
        assert_eq!(err("tcp:[::g]:80"), "[::g]:80: bad IPv6 address \"::g\"");
        // Unbracketed IPv6: few enough fields for the default port, then HOST is empty.
        assert_eq!(err("tcp:::1"), "::1:6640: bad IPv4 address \"\"");
        // An unclosed bracket swallows the rest: no PORT token at all.
        assert_eq!(err("tcp:[::1"), "[::1: port must be specified");
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
                ip: Some(v4([127, 0, 0, 1]))
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
        for (s, kind, passive, probes) in [
            ("unix:x", "unix", false, false),
            ("tcp:1.2.3.4", "tcp", false, true),
            ("ssl:1.2.3.4", "ssl", false, true),
            ("punix:x", "punix", true, false),
            ("ptcp:", "ptcp", true, true),
            ("pssl:", "pssl", true, true),
        ] {
            let n = ok(s);
            assert_eq!(n.kind(), kind);
            assert_eq!(n.is_passive(), passive, "{s}");
            assert_eq!(n.needs_probes(), probes, "{s}");
            assert_eq!(s.parse::<Name>().unwrap(), n);
        }
    }
}
