//! Owned stream names: [`Name`] is `keelson_core::stream::Name` with its pieces owned
//! (`PathBuf`, `String`), so listeners and errors can keep it. Parsing, the default port and the
//! error texts are the core's (`keelson_core::stream::name`); this adds the run directory for
//! relative UNIX paths and the errno OVS reports.

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use keelson_core::stream as core_stream;
pub use keelson_core::stream::{NameErrorKind, DEFAULT_PORT, OLD_DEFAULT_PORT};

/// What a `tcp:`/`ssl:` name connects to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Host {
    /// An IPv4 or IPv6 literal.
    Ip(IpAddr),
    /// A host name, resolved when the stream is opened.
    Name(String),
}

impl Host {
    fn as_core(&self) -> core_stream::Host<'_> {
        match self {
            Host::Ip(ip) => core_stream::Host::Ip(*ip),
            Host::Name(n) => core_stream::Host::Name(n),
        }
    }
}

impl From<IpAddr> for Host {
    fn from(ip: IpAddr) -> Host {
        Host::Ip(ip)
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.as_core().fmt(f)
    }
}

/// A parsed stream name. `Display` gives the canonical name, which parses back to the same value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Name {
    /// `unix:PATH`: connect to a UNIX socket (a relative PATH is under the run directory).
    Unix(PathBuf),
    /// `tcp:HOST:PORT`: connect over TCP.
    Tcp {
        /// The address or host name.
        host: Host,
        /// The port.
        port: u16,
    },
    /// `ssl:HOST:PORT`: connect over SSL/TLS.
    Ssl {
        /// The address or host name.
        host: Host,
        /// The port.
        port: u16,
    },
    /// `punix:PATH`: listen on a UNIX socket.
    PUnix(PathBuf),
    /// `ptcp:PORT[:IP]`: listen on TCP; `ip: None` is the wildcard 0.0.0.0, port 0 lets the
    /// kernel pick.
    PTcp {
        /// The port.
        port: u16,
        /// The address to bind.
        ip: Option<IpAddr>,
    },
    /// `pssl:PORT[:IP]`: listen for SSL/TLS, as `ptcp:`.
    PSsl {
        /// The port.
        port: u16,
        /// The address to bind.
        ip: Option<IpAddr>,
    },
}

/// Why a name is not a valid stream name: the core's error, kept as its kind and OVS's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameError {
    kind: NameErrorKind,
    message: String,
}

impl NameError {
    /// Which error it is.
    pub fn kind(&self) -> NameErrorKind {
        self.kind
    }

    /// The errno OVS returns for every bad name: EAFNOSUPPORT.
    pub fn errno(&self) -> i32 {
        nix::errno::Errno::EAFNOSUPPORT as i32
    }
}

impl From<core_stream::NameError<'_>> for NameError {
    fn from(e: core_stream::NameError<'_>) -> NameError {
        NameError {
            kind: e.kind(),
            message: e.to_string(),
        }
    }
}

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for NameError {}

impl From<core_stream::Name<'_>> for Name {
    fn from(n: core_stream::Name<'_>) -> Name {
        let host = |h: core_stream::Host<'_>| match h {
            core_stream::Host::Ip(ip) => Host::Ip(ip),
            core_stream::Host::Name(n) => Host::Name(n.to_owned()),
        };
        match n {
            core_stream::Name::Unix(p) => Name::Unix(p.into()),
            core_stream::Name::PUnix(p) => Name::PUnix(p.into()),
            core_stream::Name::Tcp { host: h, port } => Name::Tcp {
                host: host(h),
                port,
            },
            core_stream::Name::Ssl { host: h, port } => Name::Ssl {
                host: host(h),
                port,
            },
            core_stream::Name::PTcp { port, ip } => Name::PTcp { port, ip },
            core_stream::Name::PSsl { port, ip } => Name::PSsl { port, ip },
        }
    }
}

impl Name {
    /// Parses `TYPE:ARGS` with the core's parser (OVS's rules and default ports).
    pub fn parse(name: &str) -> Result<Name, NameError> {
        Ok(core_stream::Name::parse(name)?.into())
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
        let core = match self {
            // A path need not be UTF-8, so it is printed here rather than by the core.
            Name::Unix(p) | Name::PUnix(p) => return write!(f, "{}:{}", self.kind(), p.display()),
            Name::Tcp { host, port } => core_stream::Name::Tcp {
                host: host.as_core(),
                port: *port,
            },
            Name::Ssl { host, port } => core_stream::Name::Ssl {
                host: host.as_core(),
                port: *port,
            },
            Name::PTcp { port, ip } => core_stream::Name::PTcp {
                port: *port,
                ip: *ip,
            },
            Name::PSsl { port, ip } => core_stream::Name::PSsl {
                port: *port,
                ip: *ip,
            },
        };
        core.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owned_names_print_and_parse_as_the_core_does() {
        for (s, canonical) in [
            ("unix:/run/x.sock", "unix:/run/x.sock"),
            ("punix:db.sock", "punix:db.sock"),
            ("tcp:1.2.3.4", "tcp:1.2.3.4:6640"),
            ("ssl:localhost:1", "ssl:localhost:1"),
            ("tcp:[::1]", "tcp:[::1]:6640"),
            ("ptcp:", "ptcp:6640"),
            ("pssl:0:[::1]", "pssl:0:[::1]"),
        ] {
            let n = Name::parse(s).unwrap();
            assert_eq!(n.to_string(), canonical);
            assert_eq!(
                keelson_core::stream::Name::parse(s).unwrap().to_string(),
                canonical
            );
            assert_eq!(canonical.parse::<Name>().unwrap(), n);
        }
        assert_eq!(
            Name::parse("ssl:db.example:6641").unwrap(),
            Name::Ssl {
                host: Host::Name("db.example".into()),
                port: 6641
            }
        );
    }

    #[test]
    fn errors_keep_kind_text_and_errno() {
        let e = Name::parse("tcp:1.2.3.4:99999").unwrap_err();
        assert_eq!(e.kind(), NameErrorKind::BadPort);
        assert_eq!(e.to_string(), "1.2.3.4:99999: bad port number \"99999\"");
        assert_eq!(e.errno(), nix::errno::Errno::EAFNOSUPPORT as i32);
        assert_eq!(
            Name::parse("udp:x").unwrap_err().kind(),
            NameErrorKind::UnknownType
        );
    }

    #[test]
    fn relative_unix_paths_resolve_under_the_run_dir() {
        let run = Path::new("/run/k");
        let n = |s| Name::parse(s).unwrap();
        assert_eq!(
            n("unix:db.sock").resolved(run),
            Name::Unix("/run/k/db.sock".into())
        );
        assert_eq!(n("punix:/abs").resolved(run), Name::PUnix("/abs".into()));
        assert_eq!(n("tcp:1.2.3.4").resolved(run), n("tcp:1.2.3.4:6640"));
    }
}
