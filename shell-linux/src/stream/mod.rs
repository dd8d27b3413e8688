//! Open vSwitch stream names and blocking std streams for them (ovs-sessions.md §3.1).
//!
//! - [`name`]: [`Name`], the core's `keelson_core::stream::Name` with owned pieces:
//!   `unix:PATH`, `tcp:HOST[:PORT]`, `ssl:HOST[:PORT]`, `punix:PATH`, `ptcp:[PORT][:IP]`,
//!   `pssl:[PORT][:IP]`, with OVS's default port 6640 and its error texts.
//! - [`ssl`]: [`SslArgs`] (OVS's `--private-key`, `--certificate`, `--ca-cert`) and the rustls
//!   configuration they load ([`SslConfig`]); mutual TLS as OVS does it.
//! - [`connect`]/[`connect_with`]: an active name → a [`Stream`] (Read + Write, the same type
//!   for UNIX, TCP and SSL).
//! - [`listen`]/[`listen_with`]: a passive name → a [`Listener`]; [`Listener::accept`] gives a
//!   [`Stream`] and the peer's stream name as OVS reports it (`tcp:PEERIP:PEERPORT`,
//!   `ssl:PEERIP:PEERPORT`, `unix:PATH` or `unix#N`).
//!
//! `punix:` follows OVS's `make_unix_socket`: an existing file at PATH is unlinked first, the
//! socket gets mode 0770 by fchmod before bind (the kernel still applies the umask, so the file
//! is 0770 & !umask, as with OVS), the backlog is 64, and the file is unlinked when the listener
//! is dropped. `ptcp:`/`pssl:` bind IP (or 0.0.0.0) with SO_REUSEADDR (std's default). A relative
//! `unix:`/`punix:` PATH is resolved under [`crate::paths::run_dir`].
//!
//! A `tcp:`/`ssl:` host name is resolved with the system resolver (`getaddrinfo`, as std does)
//! when the stream is opened, and its addresses are tried in order; OVS 3.1 resolves
//! asynchronously and uses the first address. SSL handshakes run inside [`connect_with`] and
//! [`Listener::accept`] (bounded by the connect timeout and [`HANDSHAKE_TIMEOUT`]), so a peer
//! whose certificate the CA did not sign is an error there, not on the first read.
//!
//! Not covered: UNIX paths longer than `sun_path` (OVS goes through `/proc/self/fd`), DSCP, and
//! OVS's non-blocking connect state machine — the streams here are blocking std sockets that
//! can be switched to non-blocking once open.

pub mod name;
pub mod ssl;

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use nix::sys::socket::{self, AddressFamily, Backlog, SockFlag, SockType, UnixAddr};
use nix::sys::stat::Mode;

use rustls::pki_types::ServerName;

pub use name::{Host, Name, NameError, NameErrorKind, DEFAULT_PORT};
pub use ssl::{SslArgs, SslConfig, SslError};

/// The `punix:` listen backlog (OVS's `punix_open`).
pub const PUNIX_BACKLOG: i32 = 64;

/// How long [`Listener::accept`] waits for a `pssl:` peer to finish the SSL handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The mode a `punix:` socket is given before bind (OVS's `bind_unix_socket`: user and group
/// access); the file gets it less the umask.
pub const PUNIX_MODE: u32 = 0o770;

/// Why a stream could not be opened, accepted, or its name not parsed.
#[derive(Debug)]
pub enum OpenError {
    /// The name is not a valid stream name.
    Name(NameError),
    /// `connect` got a passive name or `listen` an active one (OVS: EAFNOSUPPORT).
    WrongKind { name: String, passive: bool },
    /// `ssl:` or `pssl:` without a usable SSL configuration.
    Ssl { name: String, source: SslError },
    /// The system call failed (for `ssl:`/`pssl:` also: the SSL handshake failed; the source
    /// then wraps rustls's error, such as an unknown issuer).
    Io { name: String, source: io::Error },
}

impl OpenError {
    fn io(name: &Name, source: io::Error) -> OpenError {
        OpenError::Io {
            name: name.to_string(),
            source,
        }
    }
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpenError::Name(e) => e.fmt(f),
            OpenError::WrongKind {
                name,
                passive: true,
            } => write!(f, "{name}: a passive stream name cannot be connected to"),
            OpenError::WrongKind {
                name,
                passive: false,
            } => write!(f, "{name}: an active stream name cannot be listened on"),
            OpenError::Ssl { name, source } => write!(f, "{name}: {source}"),
            OpenError::Io { name, source } => write!(f, "{name}: {source}"),
        }
    }
}

impl std::error::Error for OpenError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            OpenError::Name(e) => Some(e),
            OpenError::Io { source, .. } => Some(source),
            OpenError::Ssl { source, .. } => Some(source),
            OpenError::WrongKind { .. } => None,
        }
    }
}

impl From<NameError> for OpenError {
    fn from(e: NameError) -> OpenError {
        OpenError::Name(e)
    }
}

/// A connected stream: Read + Write over a UNIX or TCP socket, or SSL/TLS over TCP. The
/// timeouts and non-blocking mode apply to the socket underneath.
#[derive(Debug)]
pub enum Stream {
    /// `unix:` or accepted on `punix:`.
    Unix(UnixStream),
    /// `tcp:` or accepted on `ptcp:`.
    Tcp(TcpStream),
    /// `ssl:` or accepted on `pssl:`, handshake done.
    Ssl(Box<ssl::Tls>),
}

impl Stream {
    /// Shuts down reading, writing or both; on SSL, shutting down writing sends close_notify
    /// first, so the peer reads a clean end of data.
    pub fn shutdown(&mut self, how: Shutdown) -> io::Result<()> {
        match self {
            Stream::Unix(s) => s.shutdown(how),
            Stream::Tcp(s) => s.shutdown(how),
            Stream::Ssl(s) => s.shutdown(how),
        }
    }

    /// Sets the read timeout (None blocks forever).
    pub fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        match self {
            Stream::Unix(s) => s.set_read_timeout(t),
            Stream::Tcp(s) => s.set_read_timeout(t),
            Stream::Ssl(s) => s.sock().set_read_timeout(t),
        }
    }

    /// Sets the write timeout (None blocks forever).
    pub fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        match self {
            Stream::Unix(s) => s.set_write_timeout(t),
            Stream::Tcp(s) => s.set_write_timeout(t),
            Stream::Ssl(s) => s.sock().set_write_timeout(t),
        }
    }

    /// Switches non-blocking mode.
    pub fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        match self {
            Stream::Unix(s) => s.set_nonblocking(on),
            Stream::Tcp(s) => s.set_nonblocking(on),
            Stream::Ssl(s) => s.sock().set_nonblocking(on),
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Unix(s) => s.read(buf),
            Stream::Tcp(s) => s.read(buf),
            Stream::Ssl(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Unix(s) => s.write(buf),
            Stream::Tcp(s) => s.write(buf),
            Stream::Ssl(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Unix(s) => s.flush(),
            Stream::Tcp(s) => s.flush(),
            Stream::Ssl(s) => s.flush(),
        }
    }
}

impl AsFd for Stream {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        match self {
            Stream::Unix(s) => s.as_fd(),
            Stream::Tcp(s) => s.as_fd(),
            Stream::Ssl(s) => s.sock().as_fd(),
        }
    }
}

/// Parses `name` and connects to it; `timeout` bounds a TCP connect (None: the system's).
/// `ssl:` names fail with [`SslError::Missing`]; use [`connect_with`].
pub fn connect(name: &str, timeout: Option<Duration>) -> Result<Stream, OpenError> {
    connect_with(name, timeout, None)
}

/// Parses `name` and connects to it, with `ssl` for `ssl:` names; `timeout` bounds the TCP
/// connect (each address of a host name) and the SSL handshake.
pub fn connect_with(
    name: &str,
    timeout: Option<Duration>,
    ssl: Option<&SslConfig>,
) -> Result<Stream, OpenError> {
    connect_name(&Name::parse(name)?, timeout, ssl)
}

/// Connects to an already parsed name; a relative `unix:` PATH is under the run directory.
pub fn connect_name(
    name: &Name,
    timeout: Option<Duration>,
    ssl: Option<&SslConfig>,
) -> Result<Stream, OpenError> {
    match name.resolved(&crate::paths::run_dir()) {
        Name::Unix(path) => UnixStream::connect(&path)
            .map(Stream::Unix)
            .map_err(|e| OpenError::io(name, e)),
        Name::Tcp { host, port } => connect_tcp(&host, port, timeout)
            .map(Stream::Tcp)
            .map_err(|e| OpenError::io(name, e)),
        Name::Ssl { host, port } => {
            let config = ssl.ok_or_else(|| OpenError::Ssl {
                name: name.to_string(),
                source: SslError::Missing(ssl::Piece::PrivateKey),
            })?;
            let sock = connect_tcp(&host, port, timeout).map_err(|e| OpenError::io(name, e))?;
            // Sent as SNI for host names; the certificate is checked against the CA only.
            let server_name = match &host {
                Host::Ip(ip) => ServerName::IpAddress((*ip).into()),
                Host::Name(n) => ServerName::try_from(n.clone()).map_err(|e| {
                    OpenError::io(name, io::Error::new(io::ErrorKind::InvalidInput, e))
                })?,
            };
            config
                .connect(sock, server_name, timeout)
                .map(|t| Stream::Ssl(Box::new(t)))
                .map_err(|e| OpenError::io(name, e))
        }
        Name::PUnix(_) | Name::PTcp { .. } | Name::PSsl { .. } => Err(OpenError::WrongKind {
            name: name.to_string(),
            passive: true,
        }),
    }
}

/// Resolves `host` (std's resolver for names) and connects to its addresses in order; the
/// last error if none answers. OVS sets TCP_NODELAY on every TCP stream.
fn connect_tcp(host: &Host, port: u16, timeout: Option<Duration>) -> io::Result<TcpStream> {
    let addrs: Vec<SocketAddr> = match host {
        Host::Ip(ip) => vec![SocketAddr::new(*ip, port)],
        Host::Name(n) => (n.as_str(), port).to_socket_addrs()?.collect(),
    };
    let mut last = io::Error::new(
        io::ErrorKind::NotFound,
        format!("{host}: the resolver returned no address"),
    );
    for addr in addrs {
        let s = match timeout {
            Some(t) => TcpStream::connect_timeout(&addr, t),
            None => TcpStream::connect(addr),
        };
        match s {
            Ok(s) => {
                s.set_nodelay(true)?;
                return Ok(s);
            }
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// A listening stream from [`listen`].
#[derive(Debug)]
pub struct Listener {
    /// The name it listens on, with the actual port when `ptcp:0` let the kernel pick and a
    /// relative `punix:` PATH resolved.
    name: Name,
    inner: Inner,
}

#[derive(Debug)]
enum Inner {
    /// The socket and the file to unlink on drop.
    Unix(UnixListener, PathBuf),
    Tcp(TcpListener),
    /// `pssl:`: TCP, then the server handshake on each accepted connection.
    Ssl(TcpListener, SslConfig),
}

/// Numbers `unix#N` for accepted UNIX connections whose peer did not bind a name.
static UNNAMED_PEERS: AtomicU64 = AtomicU64::new(0);

impl Listener {
    /// The name listened on (ptcp: with the bound port).
    pub fn name(&self) -> &Name {
        &self.name
    }

    /// The TCP port listened on, or None for `punix:` (OVS's `pstream_get_bound_port`).
    pub fn bound_port(&self) -> Option<u16> {
        match &self.name {
            Name::PTcp { port, .. } | Name::PSsl { port, .. } => Some(*port),
            _ => None,
        }
    }

    /// The socket file of a `punix:` listener.
    pub fn path(&self) -> Option<&Path> {
        match &self.inner {
            Inner::Unix(_, p) => Some(p),
            Inner::Tcp(_) | Inner::Ssl(..) => None,
        }
    }

    /// Blocks for the next connection; returns it with the peer's stream name. On `pssl:` the
    /// SSL handshake runs here too, for at most [`HANDSHAKE_TIMEOUT`].
    pub fn accept(&self) -> Result<(Stream, String), OpenError> {
        match &self.inner {
            Inner::Unix(l, _) => {
                let (s, addr) = l.accept().map_err(|e| OpenError::io(&self.name, e))?;
                let peer = match addr.as_pathname() {
                    Some(p) => format!("unix:{}", p.display()),
                    None => format!("unix#{}", UNNAMED_PEERS.fetch_add(1, Ordering::Relaxed)),
                };
                Ok((Stream::Unix(s), peer))
            }
            Inner::Tcp(l) => {
                let (s, addr) = l.accept().map_err(|e| OpenError::io(&self.name, e))?;
                s.set_nodelay(true)
                    .map_err(|e| OpenError::io(&self.name, e))?;
                let peer = Name::Tcp {
                    host: Host::Ip(addr.ip()),
                    port: addr.port(),
                };
                Ok((Stream::Tcp(s), peer.to_string()))
            }
            Inner::Ssl(l, config) => {
                let (s, addr) = l.accept().map_err(|e| OpenError::io(&self.name, e))?;
                let peer = Name::Ssl {
                    host: Host::Ip(addr.ip()),
                    port: addr.port(),
                };
                let fail = |e| OpenError::Io {
                    name: peer.to_string(),
                    source: e,
                };
                // An accepted socket inherits nothing from a non-blocking listener on Linux,
                // so the handshake below blocks (bounded) as intended.
                s.set_nodelay(true).map_err(fail)?;
                let tls = config.accept(s, Some(HANDSHAKE_TIMEOUT)).map_err(fail)?;
                Ok((Stream::Ssl(Box::new(tls)), peer.to_string()))
            }
        }
    }

    /// Switches non-blocking mode (accept then fails with WouldBlock when nobody waits).
    pub fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        match &self.inner {
            Inner::Unix(l, _) => l.set_nonblocking(on),
            Inner::Tcp(l) | Inner::Ssl(l, _) => l.set_nonblocking(on),
        }
    }
}

impl AsFd for Listener {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        match &self.inner {
            Inner::Unix(l, _) => l.as_fd(),
            Inner::Tcp(l) | Inner::Ssl(l, _) => l.as_fd(),
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Inner::Unix(_, path) = &self.inner {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Parses `name` and listens on it. `pssl:` names fail with [`SslError::Missing`]; use
/// [`listen_with`].
pub fn listen(name: &str) -> Result<Listener, OpenError> {
    listen_with(name, None)
}

/// Parses `name` and listens on it, with `ssl` for `pssl:` names.
pub fn listen_with(name: &str, ssl: Option<&SslConfig>) -> Result<Listener, OpenError> {
    listen_name(&Name::parse(name)?, ssl)
}

/// Listens on an already parsed name; a relative `punix:` PATH is under the run directory.
pub fn listen_name(name: &Name, ssl: Option<&SslConfig>) -> Result<Listener, OpenError> {
    match name.resolved(&crate::paths::run_dir()) {
        Name::PUnix(path) => {
            let l = bind_unix(&path).map_err(|e| OpenError::io(name, e))?;
            Ok(Listener {
                name: Name::PUnix(path.clone()),
                inner: Inner::Unix(l, path),
            })
        }
        Name::PTcp { port, ip } => {
            let (l, port) = bind_tcp(name, port, ip)?;
            Ok(Listener {
                name: Name::PTcp { port, ip },
                inner: Inner::Tcp(l),
            })
        }
        Name::PSsl { port, ip } => {
            // The configuration is checked before binding, as OVS's pssl_open does.
            let config = ssl.ok_or_else(|| OpenError::Ssl {
                name: name.to_string(),
                source: SslError::Missing(ssl::Piece::PrivateKey),
            })?;
            let (l, port) = bind_tcp(name, port, ip)?;
            Ok(Listener {
                name: Name::PSsl { port, ip },
                inner: Inner::Ssl(l, config.clone()),
            })
        }
        Name::Unix(_) | Name::Tcp { .. } | Name::Ssl { .. } => Err(OpenError::WrongKind {
            name: name.to_string(),
            passive: false,
        }),
    }
}

/// Binds `ip` (wildcard if None) and `port`; returns the socket and the port bound.
fn bind_tcp(
    name: &Name,
    port: u16,
    ip: Option<std::net::IpAddr>,
) -> Result<(TcpListener, u16), OpenError> {
    let addr = SocketAddr::new(ip.unwrap_or(Ipv4Addr::UNSPECIFIED.into()), port);
    let l = TcpListener::bind(addr).map_err(|e| OpenError::io(name, e))?;
    let bound = l.local_addr().map_err(|e| OpenError::io(name, e))?;
    Ok((l, bound.port()))
}

/// OVS's `make_unix_socket` for a listener: unlink, fchmod 0770, bind, listen 64.
fn bind_unix(path: &Path) -> io::Result<UnixListener> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let addr = UnixAddr::new(path).map_err(io::Error::from)?;
    let fd: OwnedFd = socket::socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    // On Linux the socket's mode becomes the file's mode; unlike umask this is per socket.
    nix::sys::stat::fchmod(&fd, Mode::from_bits_truncate(PUNIX_MODE))?;
    socket::bind(fd.as_raw_fd(), &addr)?;
    let listened = Backlog::new(PUNIX_BACKLOG)
        .map_err(io::Error::from)
        .and_then(|b| socket::listen(&fd, b).map_err(io::Error::from));
    if let Err(e) = listened {
        let _ = std::fs::remove_file(path);
        return Err(e);
    }
    Ok(UnixListener::from(fd))
}
