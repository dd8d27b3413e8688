//! OVS stream names opened for real: `punix:`/`unix:` and `ptcp:`/`tcp:` on loopback only.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, TcpListener};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::PathBuf;
use std::thread;
use std::time::Duration;

use keelson_linux::stream::{self, Host, Name, OpenError};

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
