//! SSL/TLS for `ssl:` and `pssl:` streams with rustls (ring provider), configured as OVS's
//! `stream-ssl` is: a private key, a certificate and a CA certificate, and the peer's
//! certificate must be signed by that CA in both directions (mutual TLS).
//!
//! - [`SslArgs`]: OVS's `-p/--private-key`, `-c/--certificate`, `-C/--ca-cert` for a clap
//!   command (`#[command(flatten)]`); [`SslArgs::load`] reads the files.
//! - [`SslConfig`]: the loaded client and server configurations, shared by every stream.
//! - [`Tls`]: an established TLS connection over a TCP socket (a [`super::Stream`] variant).
//!
//! As OVS does, the client checks the server's certificate against the CA only, not against
//! the host name it connected to (OVS sets no host check on its SSL objects), and the server
//! requires a client certificate (`SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT`). TLS 1.2
//! and 1.3 are offered (Debian's OVS 3.1 on OpenSSL 3 negotiates 1.3 with us; `ssl_ovsdb`
//! tests). Not covered: OVS's `--bootstrap-ca-cert`, `--peer-ca-cert`, `--ssl-protocols` and `--ssl-ciphers`.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{self, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::{ParsedCertificate, WebPkiClientVerifier};
use rustls::{
    ClientConfig, ClientConnection, DigitallySignedStruct, RootCertStore, ServerConfig,
    ServerConnection, SignatureScheme, StreamOwned,
};

/// OVS's SSL options, for a clap command to flatten (global, so they may follow a
/// subcommand).
///
/// keelsond already uses `-p` for `--pidfile`; a command whose short options clash can drop
/// ours with `#[command(mut_arg("private_key", |a| a.short(None)))]`.
#[derive(clap::Args, Debug, Clone, Default, PartialEq, Eq)]
// This doc is for Rust readers, not for the flattening command's --help.
#[command(about = None, long_about = None)]
pub struct SslArgs {
    /// PEM private key for `ssl:`/`pssl:` streams.
    #[arg(short = 'p', long = "private-key", global = true, value_name = "FILE")]
    pub private_key: Option<PathBuf>,
    /// PEM certificate for the private key (optionally followed by its chain).
    #[arg(short = 'c', long = "certificate", global = true, value_name = "FILE")]
    pub certificate: Option<PathBuf>,
    /// PEM CA certificate(s) that must have signed the peer's certificate.
    #[arg(short = 'C', long = "ca-cert", global = true, value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,
}

/// One of the three SSL files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Piece {
    /// `--private-key`.
    PrivateKey,
    /// `--certificate`.
    Certificate,
    /// `--ca-cert`.
    CaCert,
}

impl Piece {
    /// The command-line option that names the file.
    pub fn option(self) -> &'static str {
        match self {
            Piece::PrivateKey => "--private-key",
            Piece::Certificate => "--certificate",
            Piece::CaCert => "--ca-cert",
        }
    }

    /// OVS's word for it, as in "Private key must be configured to use SSL".
    fn noun(self) -> &'static str {
        match self {
            Piece::PrivateKey => "private key",
            Piece::Certificate => "certificate",
            Piece::CaCert => "CA certificate",
        }
    }
}

/// Why the SSL configuration could not be loaded or used.
#[derive(Debug)]
pub enum SslError {
    /// An SSL stream needs this file and none was given (OVS's text).
    Missing(Piece),
    /// The file could not be read.
    Read {
        /// Which file.
        piece: Piece,
        /// Its path.
        path: PathBuf,
        /// What went wrong.
        source: io::Error,
    },
    /// The file holds no usable PEM item of the right kind.
    Pem {
        /// Which file.
        piece: Piece,
        /// Its path.
        path: PathBuf,
        /// What is wrong with it.
        detail: String,
    },
    /// rustls refused the key, certificate or CA (a key that does not match the certificate, a
    /// CA certificate it cannot parse).
    Rejected {
        /// The file it refused.
        piece: Piece,
        /// Its path.
        path: PathBuf,
        /// rustls's reason.
        source: rustls::Error,
    },
}

impl fmt::Display for SslError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SslError::Missing(Piece::PrivateKey) => {
                f.write_str("Private key must be configured to use SSL")
            }
            SslError::Missing(Piece::Certificate) => {
                f.write_str("Certificate must be configured to use SSL")
            }
            SslError::Missing(Piece::CaCert) => {
                f.write_str("CA certificate must be configured to use SSL")
            }
            SslError::Read {
                piece,
                path,
                source,
            } => write!(
                f,
                "{} {}: cannot read {}: {source}",
                piece.option(),
                path.display(),
                piece.noun()
            ),
            SslError::Pem {
                piece,
                path,
                detail,
            } => write!(
                f,
                "{} {}: not a PEM {}: {detail}",
                piece.option(),
                path.display(),
                piece.noun()
            ),
            SslError::Rejected {
                piece,
                path,
                source,
            } => write!(
                f,
                "{} {}: {} refused: {source}",
                piece.option(),
                path.display(),
                piece.noun()
            ),
        }
    }
}

impl std::error::Error for SslError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SslError::Read { source, .. } => Some(source),
            SslError::Rejected { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl SslArgs {
    /// True when none of the three options was given.
    pub fn is_empty(&self) -> bool {
        self.private_key.is_none() && self.certificate.is_none() && self.ca_cert.is_none()
    }

    /// `None` when no option was given (SSL streams then fail with [`SslError::Missing`] when
    /// opened); otherwise all three files, read and checked now so that a bad file is reported
    /// at start-up, naming it.
    pub fn load(&self) -> Result<Option<SslConfig>, SslError> {
        if self.is_empty() {
            return Ok(None);
        }
        let key = self
            .private_key
            .as_deref()
            .ok_or(SslError::Missing(Piece::PrivateKey))?;
        let cert = self
            .certificate
            .as_deref()
            .ok_or(SslError::Missing(Piece::Certificate))?;
        let ca = self
            .ca_cert
            .as_deref()
            .ok_or(SslError::Missing(Piece::CaCert))?;
        SslConfig::from_files(key, cert, ca).map(Some)
    }
}

/// Client and server TLS configurations built from one key, certificate and CA.
#[derive(Debug, Clone)]
pub struct SslConfig {
    client: Arc<ClientConfig>,
    server: Arc<ServerConfig>,
}

impl SslConfig {
    /// Reads the PEM private key, certificate (chain) and CA certificate(s).
    pub fn from_files(key: &Path, cert: &Path, ca: &Path) -> Result<SslConfig, SslError> {
        let key_der = read_key(key)?;
        let chain = read_certs(Piece::Certificate, cert)?;
        let cas = read_certs(Piece::CaCert, ca)?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());

        let mut roots = RootCertStore::empty();
        for c in cas {
            roots.add(c).map_err(|source| SslError::Rejected {
                piece: Piece::CaCert,
                path: ca.to_owned(),
                source,
            })?;
        }
        let roots = Arc::new(roots);
        let key_refused = |source| SslError::Rejected {
            piece: Piece::PrivateKey,
            path: key.to_owned(),
            source,
        };

        let client_verifier =
            WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone())
                .build()
                .map_err(|e| SslError::Rejected {
                    piece: Piece::CaCert,
                    path: ca.to_owned(),
                    source: rustls::Error::General(e.to_string()),
                })?;
        let server = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(key_refused)?
            .with_client_cert_verifier(client_verifier)
            .with_single_cert(chain.clone(), key_der.clone_key())
            .map_err(key_refused)?;

        let client = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(key_refused)?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(CaOnly { roots, provider }))
            .with_client_auth_cert(chain, key_der)
            .map_err(key_refused)?;

        Ok(SslConfig {
            client: Arc::new(client),
            server: Arc::new(server),
        })
    }

    /// Runs the client handshake on a connected socket, bounded by `timeout`.
    pub(super) fn connect(
        &self,
        sock: TcpStream,
        server_name: ServerName<'static>,
        timeout: Option<Duration>,
    ) -> io::Result<Tls> {
        let conn = ClientConnection::new(self.client.clone(), server_name).map_err(tls_error)?;
        handshake(StreamOwned::new(conn, sock), timeout).map(Tls::Client)
    }

    /// Runs the server handshake on an accepted socket, bounded by `timeout`.
    pub(super) fn accept(&self, sock: TcpStream, timeout: Option<Duration>) -> io::Result<Tls> {
        let conn = ServerConnection::new(self.server.clone()).map_err(tls_error)?;
        handshake(StreamOwned::new(conn, sock), timeout).map(Tls::Server)
    }
}

fn read_file(piece: Piece, path: &Path) -> Result<Vec<u8>, SslError> {
    std::fs::read(path).map_err(|source| SslError::Read {
        piece,
        path: path.to_owned(),
        source,
    })
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, SslError> {
    let pem = read_file(Piece::PrivateKey, path)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| SslError::Pem {
        piece: Piece::PrivateKey,
        path: path.to_owned(),
        detail: pem_detail(e),
    })
}

fn read_certs(piece: Piece, path: &Path) -> Result<Vec<CertificateDer<'static>>, SslError> {
    let pem = read_file(piece, path)?;
    let bad = |detail| SslError::Pem {
        piece,
        path: path.to_owned(),
        detail,
    };
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(pem_detail(e)))?;
    if certs.is_empty() {
        return Err(bad("no CERTIFICATE section found".into()));
    }
    Ok(certs)
}

fn pem_detail(e: rustls::pki_types::pem::Error) -> String {
    match e {
        rustls::pki_types::pem::Error::NoItemsFound => "no matching PEM section found".into(),
        other => other.to_string(),
    }
}

/// OVS's client check: the chain must lead to the CA; the host name is not compared.
#[derive(Debug)]
struct CaOnly {
    roots: Arc<RootCertStore>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for CaOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let cert = ParsedCertificate::try_from(end_entity)?;
        rustls::client::verify_server_cert_signed_by_trust_anchor(
            &cert,
            &self.roots,
            intermediates,
            now,
            self.provider.signature_verification_algorithms.all,
        )?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// rustls errors as io errors (InvalidData), as rustls's own stream reports them.
fn tls_error(e: rustls::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

/// Completes the handshake with `timeout` as the socket's read and write timeouts, then clears
/// them (the caller sets its own).
fn handshake<C, S>(
    mut s: StreamOwned<C, TcpStream>,
    timeout: Option<Duration>,
) -> io::Result<StreamOwned<C, TcpStream>>
where
    C: std::ops::DerefMut<Target = rustls::ConnectionCommon<S>>,
    S: rustls::SideData,
{
    s.sock.set_read_timeout(timeout)?;
    s.sock.set_write_timeout(timeout)?;
    while s.conn.is_handshaking() {
        match s.conn.complete_io(&mut s.sock) {
            Ok((0, 0)) if s.conn.is_handshaking() => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the peer closed the connection during the SSL handshake",
                ))
            }
            Ok(_) => {}
            Err(e) => {
                // Let the peer know why (a bad certificate alert) before giving up.
                let _ = s.conn.write_tls(&mut s.sock);
                return Err(io::Error::new(e.kind(), HandshakeFailed(e)));
            }
        }
    }
    s.sock.set_read_timeout(None)?;
    s.sock.set_write_timeout(None)?;
    Ok(s)
}

/// A handshake that failed: the io error (wrapping rustls's, such as an unknown issuer) as the
/// source, "SSL handshake failed: ..." as the text.
#[derive(Debug)]
pub struct HandshakeFailed(pub io::Error);

impl fmt::Display for HandshakeFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SSL handshake failed: {}", self.0)
    }
}

impl std::error::Error for HandshakeFailed {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

/// An established TLS connection over TCP.
pub enum Tls {
    /// We connected (`ssl:`).
    Client(StreamOwned<ClientConnection, TcpStream>),
    /// We accepted (`pssl:`).
    Server(StreamOwned<ServerConnection, TcpStream>),
}

impl fmt::Debug for Tls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (side, sock) = match self {
            Tls::Client(s) => ("client", &s.sock),
            Tls::Server(s) => ("server", &s.sock),
        };
        f.debug_struct("Tls")
            .field("side", &side)
            .field("sock", sock)
            .finish()
    }
}

impl Tls {
    /// The TCP socket underneath.
    pub fn sock(&self) -> &TcpStream {
        match self {
            Tls::Client(s) => &s.sock,
            Tls::Server(s) => &s.sock,
        }
    }

    /// The negotiated protocol version (`TLSv1_2`, `TLSv1_3`).
    pub fn protocol_version(&self) -> Option<rustls::ProtocolVersion> {
        match self {
            Tls::Client(s) => s.conn.protocol_version(),
            Tls::Server(s) => s.conn.protocol_version(),
        }
    }

    /// The peer's certificate chain (end entity first).
    pub fn peer_certificates(&self) -> Option<&[CertificateDer<'static>]> {
        match self {
            Tls::Client(s) => s.conn.peer_certificates(),
            Tls::Server(s) => s.conn.peer_certificates(),
        }
    }

    /// Queues close_notify and writes what fits without blocking on the peer.
    fn close_notify(&mut self) {
        match self {
            Tls::Client(s) => {
                s.conn.send_close_notify();
                while s.conn.wants_write() && s.conn.write_tls(&mut s.sock).is_ok_and(|n| n > 0) {}
            }
            Tls::Server(s) => {
                s.conn.send_close_notify();
                while s.conn.wants_write() && s.conn.write_tls(&mut s.sock).is_ok_and(|n| n > 0) {}
            }
        }
    }

    /// Shutting down writing sends close_notify first, so the peer reads a clean end of data.
    pub fn shutdown(&mut self, how: Shutdown) -> io::Result<()> {
        if how != Shutdown::Read {
            self.flush()?;
            self.close_notify();
        }
        self.sock().shutdown(how)
    }
}

impl Read for Tls {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Tls::Client(s) => s.read(buf),
            Tls::Server(s) => s.read(buf),
        }
    }
}

impl Write for Tls {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Tls::Client(s) => s.write(buf),
            Tls::Server(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Tls::Client(s) => s.flush(),
            Tls::Server(s) => s.flush(),
        }
    }
}

impl Drop for Tls {
    /// As OVS's `ssl_close`: one close_notify, without waiting for the peer's. Non-blocking, so
    /// a peer that stopped reading cannot hang the drop; what rustls still holds is sent only if
    /// the socket takes it at once.
    fn drop(&mut self) {
        let _ = self.sock().set_nonblocking(true);
        let _ = self.flush();
        self.close_notify();
    }
}
