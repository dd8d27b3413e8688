//! OVS stream names opened for real on loopback only: `punix:`/`unix:`, `ptcp:`/`tcp:` (with
//! host names), and `pssl:`/`ssl:` with certificates made by the real `openssl`.

mod pki;
mod tools;

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, TcpListener};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::PathBuf;
use std::thread;
use std::time::Duration;

use keelson_linux::stream::{self, Host, Name, OpenError, SslArgs, SslConfig, SslError};

const TIMEOUT: Option<Duration> = Some(Duration::from_secs(10));

/// A fresh, empty directory for one test (short enough for `sun_path`).
fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("st")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    assert!(
        dir.join("sock").as_os_str().len() < 100,
        "{}",
        dir.display()
    );
    dir
}

/// This process's umask, from /proc (reading it with umask(2) would change it).
fn umask() -> u32 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("Umask:")).unwrap();
    u32::from_str_radix(line["Umask:".len()..].trim(), 8).unwrap()
}

/// Accepts one connection, echoes what it reads until EOF, and returns the peer's name.
fn echo_once(listener: stream::Listener) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let (mut s, peer) = listener.accept().unwrap();
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).unwrap();
        s.write_all(&buf).unwrap();
        peer
    })
}

/// Sends `msg`, half-closes, and reads the echo back.
fn round_trip(mut s: stream::Stream, msg: &[u8]) -> Vec<u8> {
    s.set_read_timeout(TIMEOUT).unwrap();
    s.write_all(msg).unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let mut back = Vec::new();
    s.read_to_end(&mut back).unwrap();
    back
}

#[test]
fn punix_and_unix_exchange_bytes() {
    let dir = scratch("punix");
    let path = dir.join("sock");
    // A leftover file at the path is replaced, as OVS does.
    std::fs::write(&path, b"stale").unwrap();
    let name = format!("punix:{}", path.display());
    let listener = stream::listen(&name).unwrap();
    assert_eq!(listener.name().to_string(), name);
    assert_eq!(listener.bound_port(), None);
    assert_eq!(listener.path(), Some(path.as_path()));
    let meta = std::fs::metadata(&path).unwrap();
    assert!(meta.file_type().is_socket());
    // OVS's 0770, less the umask (the kernel applies it at bind).
    assert_eq!(
        meta.permissions().mode() & 0o777,
        stream::PUNIX_MODE & !umask()
    );

    let server = echo_once(listener);
    let client = stream::connect(&format!("unix:{}", path.display()), TIMEOUT).unwrap();
    assert_eq!(
        round_trip(client, b"{\"id\":1,\"method\":\"echo\",\"params\":[]}"),
        b"{\"id\":1,\"method\":\"echo\",\"params\":[]}"
    );
    // An unbound client is named unix#N.
    let peer = server.join().unwrap();
    assert!(peer.starts_with("unix#"), "{peer}");
    // Dropping the listener unlinked the socket file.
    assert!(!path.exists());
}

#[test]
fn ptcp_port_zero_and_tcp_exchange_bytes() {
    let listener = stream::listen("ptcp:0:127.0.0.1").unwrap();
    let port = listener.bound_port().unwrap();
    assert_ne!(port, 0);
    assert_eq!(
        listener.name(),
        &Name::PTcp {
            port,
            ip: Some(IpAddr::V4(Ipv4Addr::LOCALHOST))
        }
    );
    assert_eq!(
        listener.name().to_string(),
        format!("ptcp:{port}:127.0.0.1")
    );
    assert_eq!(listener.path(), None);

    let server = echo_once(listener);
    let client = stream::connect(&format!("tcp:127.0.0.1:{port}"), TIMEOUT).unwrap();
    let payload: Vec<u8> = (0..100_000u32).map(|i| i as u8).collect();
    assert_eq!(round_trip(client, &payload), payload);
    let peer = server.join().unwrap();
    let peer: Name = peer.parse().unwrap();
    assert!(
        matches!(&peer, Name::Tcp { host, port: p } if *host == Host::Ip(IpAddr::V4(Ipv4Addr::LOCALHOST)) && *p != 0),
        "{peer}"
    );
}

#[test]
fn connecting_to_a_missing_socket_names_the_stream() {
    let dir = scratch("missing");
    let name = format!("unix:{}", dir.join("nobody").display());
    let err = stream::connect(&name, TIMEOUT).unwrap_err();
    assert!(
        matches!(&err, OpenError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(text.starts_with(&format!("{name}: ")), "{text}");
}

#[test]
fn connecting_to_a_closed_port_names_the_stream() {
    // Bind and drop to find a port nobody listens on.
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let name = format!("tcp:127.0.0.1:{port}");
    let err = stream::connect(&name, TIMEOUT).unwrap_err();
    assert!(
        matches!(&err, OpenError::Io { source, .. } if source.kind() == std::io::ErrorKind::ConnectionRefused),
        "{err:?}"
    );
    assert!(err.to_string().starts_with(&format!("{name}: ")), "{err}");
}

#[test]
fn ssl_names_without_ssl_options_say_what_is_missing() {
    // OVS's text when no private key (the first thing it checks) is configured.
    let err = stream::connect("ssl:127.0.0.1:6640", TIMEOUT).unwrap_err();
    assert_eq!(
        err.to_string(),
        "ssl:127.0.0.1:6640: Private key must be configured to use SSL"
    );
    let err = stream::listen("pssl:0:127.0.0.1").unwrap_err();
    assert_eq!(
        err.to_string(),
        "pssl:0:127.0.0.1: Private key must be configured to use SSL"
    );
}

#[test]
fn bad_names_and_wrong_kinds() {
    let err = stream::connect("tcp:127.0.0.1:99999", TIMEOUT).unwrap_err();
    assert_eq!(
        err.to_string(),
        "127.0.0.1:99999: bad port number \"99999\""
    );
    let err = stream::listen("nope:1").unwrap_err();
    assert_eq!(
        err.to_string(),
        "nope:1: Address family not supported by protocol"
    );
    let err = stream::connect("ptcp:0:127.0.0.1", TIMEOUT).unwrap_err();
    assert!(matches!(err, OpenError::WrongKind { passive: true, .. }));
    let err = stream::listen("tcp:127.0.0.1:1").unwrap_err();
    assert!(matches!(err, OpenError::WrongKind { passive: false, .. }));
}

/// A PKI for one test: CA "ca" with "alice" and "bob", and an unrelated CA "other" with
/// "mallory". `None` without openssl (outside CI).
fn pki(test: &str) -> Option<pki::Pki> {
    let p = pki::Pki::new(&scratch(test).join("pki"))?;
    p.ca("ca").leaf("ca", "alice").leaf("ca", "bob");
    p.ca("other").leaf("other", "mallory");
    Some(p)
}

fn config(p: &pki::Pki, ca: &str, who: &str) -> SslConfig {
    p.args(ca, who)
        .load()
        .unwrap()
        .expect("all three options given")
}

#[test]
fn pssl_and_ssl_exchange_bytes_with_mutual_tls() {
    let Some(p) = pki("ssl") else { return };
    let listener =
        stream::listen_with("pssl:0:127.0.0.1", Some(&config(&p, "ca", "alice"))).unwrap();
    let port = listener.bound_port().unwrap();
    assert_ne!(port, 0);
    assert_eq!(
        listener.name().to_string(),
        format!("pssl:{port}:127.0.0.1")
    );
    let server = thread::spawn(move || {
        let (mut s, peer) = listener.accept().unwrap();
        // The client had to show a certificate, and it is bob's.
        let stream::Stream::Ssl(tls) = &s else {
            panic!("{s:?}")
        };
        assert_eq!(tls.peer_certificates().map(|c| c.len()), Some(1));
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).unwrap();
        s.write_all(&buf).unwrap();
        peer
    });
    let name = format!("ssl:127.0.0.1:{port}");
    let client = stream::connect_with(&name, TIMEOUT, Some(&config(&p, "ca", "bob"))).unwrap();
    let stream::Stream::Ssl(tls) = &client else {
        panic!("{client:?}")
    };
    assert!(tls.protocol_version().is_some());
    let payload: Vec<u8> = (0..100_000u32).map(|i| (i * 7) as u8).collect();
    assert_eq!(round_trip(client, &payload), payload);
    let peer: Name = server.join().unwrap().parse().unwrap();
    assert!(
        matches!(&peer, Name::Ssl { host, port: p } if *host == Host::Ip(IpAddr::V4(Ipv4Addr::LOCALHOST)) && *p != 0),
        "{peer}"
    );
}

#[test]
fn tcp_and_ssl_connect_to_host_names() {
    let listener = stream::listen("ptcp:0:127.0.0.1").unwrap();
    let port = listener.bound_port().unwrap();
    let server = echo_once(listener);
    let name = format!("tcp:localhost:{port}");
    assert_eq!(
        Name::parse(&name).unwrap(),
        Name::Tcp {
            host: Host::Name("localhost".into()),
            port
        }
    );
    let client = stream::connect(&name, TIMEOUT).unwrap();
    assert_eq!(round_trip(client, b"by name"), b"by name");
    server.join().unwrap();

    let Some(p) = pki("ssl-names") else { return };
    let listener =
        stream::listen_with("pssl:0:127.0.0.1", Some(&config(&p, "ca", "alice"))).unwrap();
    let port = listener.bound_port().unwrap();
    let server = echo_once(listener);
    let client = stream::connect_with(
        &format!("ssl:localhost:{port}"),
        TIMEOUT,
        Some(&config(&p, "ca", "bob")),
    )
    .unwrap();
    assert_eq!(
        round_trip(client, b"by name, over TLS"),
        b"by name, over TLS"
    );
    server.join().unwrap();
}

#[test]
fn ssl_client_refuses_a_server_from_another_ca() {
    let Some(p) = pki("ssl-wrong-ca") else { return };
    let listener =
        stream::listen_with("pssl:0:127.0.0.1", Some(&config(&p, "ca", "alice"))).unwrap();
    let port = listener.bound_port().unwrap();
    let server = thread::spawn(move || listener.accept().map(|_| ()));
    // mallory trusts only "other", which did not sign alice's certificate.
    let name = format!("ssl:127.0.0.1:{port}");
    let err =
        stream::connect_with(&name, TIMEOUT, Some(&config(&p, "other", "mallory"))).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("{name}: SSL handshake failed: invalid peer certificate: UnknownIssuer")
    );
    // The server learns of it too (our alert), as an error naming the peer.
    let err = server.join().unwrap().unwrap_err().to_string();
    assert!(
        err.starts_with("ssl:127.0.0.1:")
            && err.ends_with(": SSL handshake failed: received fatal alert: UnknownCA"),
        "{err}"
    );
}

#[test]
fn ssl_server_refuses_a_client_from_another_ca() {
    let Some(p) = pki("ssl-wrong-client") else {
        return;
    };
    // alice's server trusts only "other"; bob's certificate comes from "ca".
    let server_config = p.args("other", "alice").load().unwrap().unwrap();
    let listener = stream::listen_with("pssl:0:127.0.0.1", Some(&server_config)).unwrap();
    let port = listener.bound_port().unwrap();
    let server = thread::spawn(move || listener.accept().map(|_| ()));
    let name = format!("ssl:127.0.0.1:{port}");
    let err = server_err_after_client(&name, &config(&p, "ca", "bob"));
    assert!(err.is_some(), "the client saw no failure");
    let err = server.join().unwrap().unwrap_err();
    let text = err.to_string();
    assert!(
        text.ends_with(": SSL handshake failed: invalid peer certificate: UnknownIssuer"),
        "{text}"
    );
}

/// Connects and tries one read: with TLS 1.3 the client's handshake ends before the server
/// has checked its certificate, so the refusal may only show on the first read. Returns the
/// client's error, if any.
fn server_err_after_client(name: &str, config: &SslConfig) -> Option<String> {
    match stream::connect_with(name, TIMEOUT, Some(config)) {
        Err(e) => Some(e.to_string()),
        Ok(mut s) => {
            s.set_read_timeout(TIMEOUT).unwrap();
            let mut buf = [0u8; 16];
            s.read(&mut buf).err().map(|e| e.to_string())
        }
    }
}

#[test]
fn ssl_options_name_the_file_that_is_wrong() {
    let dir = scratch("ssl-files");
    let missing = dir.join("nope.pem");
    let junk = dir.join("junk.pem");
    std::fs::write(&junk, "not PEM at all\n").unwrap();

    // Nothing given: no SSL, and SSL names say what is missing (OVS's text).
    assert!(SslArgs::default().load().unwrap().is_none());
    let partial = SslArgs {
        private_key: Some(junk.clone()),
        ..SslArgs::default()
    };
    assert_eq!(
        partial.load().unwrap_err().to_string(),
        "Certificate must be configured to use SSL"
    );
    let partial = SslArgs {
        private_key: Some(junk.clone()),
        certificate: Some(junk.clone()),
        ca_cert: None,
    };
    assert!(matches!(
        partial.load(),
        Err(SslError::Missing(stream::ssl::Piece::CaCert))
    ));

    let args = |key: &std::path::Path, cert: &std::path::Path, ca: &std::path::Path| SslArgs {
        private_key: Some(key.to_owned()),
        certificate: Some(cert.to_owned()),
        ca_cert: Some(ca.to_owned()),
    };
    let err = args(&missing, &junk, &junk).load().unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with(&format!("--private-key {}: ", missing.display()))
            && text.contains("No such file"),
        "{text}"
    );
    let err = args(&junk, &junk, &junk).load().unwrap_err();
    assert!(
        err.to_string().starts_with(&format!(
            "--private-key {}: not a PEM private key",
            junk.display()
        )),
        "{err}"
    );

    let Some(p) = pki("ssl-files-pki") else {
        return;
    };
    let err = args(&p.key("alice"), &missing, &p.cert("ca"))
        .load()
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with(&format!("--certificate {}: ", missing.display())),
        "{err}"
    );
    let err = args(&p.key("alice"), &junk, &p.cert("ca"))
        .load()
        .unwrap_err();
    assert!(
        err.to_string().starts_with(&format!(
            "--certificate {}: not a PEM certificate",
            junk.display()
        )),
        "{err}"
    );
    let err = args(&p.key("alice"), &p.cert("alice"), &junk)
        .load()
        .unwrap_err();
    assert!(
        err.to_string().starts_with(&format!(
            "--ca-cert {}: not a PEM CA certificate",
            junk.display()
        )),
        "{err}"
    );
    // A key that is not the certificate's.
    let err = args(&p.key("bob"), &p.cert("alice"), &p.cert("ca"))
        .load()
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with(&format!("--private-key {}: ", p.key("bob").display())),
        "{err}"
    );
    // And the right files load.
    args(&p.key("alice"), &p.cert("alice"), &p.cert("ca"))
        .load()
        .unwrap()
        .unwrap();
}

#[test]
fn keelsond_and_keelctl_check_their_ssl_options_at_start() {
    let dir = scratch("ssl-cli");
    let missing = dir.join("missing-ca.pem");
    let run = |bin: &str, args: &[&std::ffi::OsStr]| {
        std::process::Command::new(bin)
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap()
    };
    let Some(p) = pki("ssl-cli-pki") else { return };
    let (key, cert) = (p.key("alice"), p.cert("alice"));
    // keelctl takes OVS's short options; keelsond (whose -p is --pidfile) the long ones.
    let out = run(
        env!("CARGO_BIN_EXE_keelctl"),
        &[
            "-p".as_ref(),
            key.as_os_str(),
            "-c".as_ref(),
            cert.as_os_str(),
            "-C".as_ref(),
            missing.as_os_str(),
            "config".as_ref(),
            "fmt".as_ref(),
            "/dev/null".as_ref(),
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with(&format!("keelctl: --ca-cert {}: ", missing.display())),
        "{err}"
    );

    let ca = p.cert("ca");
    let good: [&std::ffi::OsStr; 7] = [
        "--private-key".as_ref(),
        key.as_os_str(),
        "--certificate".as_ref(),
        cert.as_os_str(),
        "--ca-cert".as_ref(),
        ca.as_os_str(),
        "--check".as_ref(),
    ];
    let out = run(env!("CARGO_BIN_EXE_keelsond"), &good);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(
        env!("CARGO_BIN_EXE_keelsond"),
        &[
            "--certificate".as_ref(),
            cert.as_os_str(),
            "--check".as_ref(),
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "keelsond: Private key must be configured to use SSL\n"
    );
}

#[test]
fn ssl_streams_time_out_and_go_non_blocking_like_the_others() {
    let Some(p) = pki("ssl-nonblocking") else {
        return;
    };
    let listener =
        stream::listen_with("pssl:0:127.0.0.1", Some(&config(&p, "ca", "alice"))).unwrap();
    let port = listener.bound_port().unwrap();
    let (go, wait) = std::sync::mpsc::channel::<()>();
    let server = thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        wait.recv().unwrap();
        s.write_all(b"late").unwrap();
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).unwrap();
        buf
    });
    let name = format!("ssl:127.0.0.1:{port}");
    let mut c = stream::connect_with(&name, TIMEOUT, Some(&config(&p, "ca", "bob"))).unwrap();
    let mut buf = [0u8; 16];

    // Nothing sent yet: a read timeout expires, and a non-blocking read would block.
    c.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    let e = c.read(&mut buf).unwrap_err();
    assert!(
        matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
        "{e:?}"
    );
    c.set_read_timeout(None).unwrap();
    c.set_nonblocking(true).unwrap();
    assert_eq!(
        c.read(&mut buf).unwrap_err().kind(),
        std::io::ErrorKind::WouldBlock
    );

    // The stream is still good: poll until the data comes.
    go.send(()).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let n = loop {
        match c.read(&mut buf) {
            Ok(n) => break n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                assert!(std::time::Instant::now() < deadline, "no data in 10 s");
                thread::sleep(Duration::from_millis(5));
            }
            Err(e) => panic!("{e}"),
        }
    };
    assert_eq!(&buf[..n], b"late");
    c.set_nonblocking(false).unwrap();
    c.write_all(b"done").unwrap();
    c.shutdown(std::net::Shutdown::Write).unwrap();
    assert_eq!(server.join().unwrap(), b"done");
}
