//! keelsond's management remotes (`--remote`, JSON-RPC sessions, ovs-sessions.md §3.6) against
//! a real `ovsdb-server` on `punix:` and `ptcp:` (127.0.0.1), watched through `reconnect/show`
//! with the real `ovs-appctl`; and keepalive probes on TCP against a silent peer of our own.
//!
//! Without ovsdb-server / ovs-appctl the tests print a note and pass, except under CI (env `CI`
//! set), where `openvswitch-common` is installed and their absence fails.

mod common;
mod pki;
mod tools;

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

const SCHEMA: &str =
    r#"{"name":"Keelson","version":"1.0.0","tables":{"T":{"columns":{"x":{"type":"integer"}}}}}"#;

/// An Open vSwitch program (see `tools::find`).
fn tool(name: &str) -> Option<PathBuf> {
    tools::find(name, "openvswitch-common")
}

/// A real ovsdb-server with one remote, our child; killed when dropped.
struct Ovsdb {
    child: Child,
}

impl Ovsdb {
    fn start(dir: &Path, remote: &str) -> Option<Ovsdb> {
        Ovsdb::start_with(dir, remote, &[])
    }

    fn start_with(dir: &Path, remote: &str, extra: &[String]) -> Option<Ovsdb> {
        let (server, tool) = (tool("ovsdb-server")?, tool("ovsdb-tool")?);
        let db = dir.join("conf.db");
        if !db.exists() {
            std::fs::write(dir.join("k.ovsschema"), SCHEMA).unwrap();
            let st = Command::new(tool)
                .arg("create")
                .arg(&db)
                .arg(dir.join("k.ovsschema"))
                .status()
                .unwrap();
            assert!(st.success(), "ovsdb-tool create: {st}");
        }
        let child = Command::new(server)
            .arg(&db)
            .arg(format!("--remote={remote}"))
            .arg(format!("--unixctl={}", dir.join("ovsdb.ctl").display()))
            .arg("--no-chdir")
            .arg(format!("--log-file={}", dir.join("ovsdb.log").display()))
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting ovsdb-server");
        // Dropped (killed) if it never listens.
        let db = Ovsdb { child };
        // Wait until it accepts, so keelsond's first attempt is not refused.
        wait_until("ovsdb-server listens", || {
            let tcp = remote
                .strip_prefix("ptcp:")
                .or(remote.strip_prefix("pssl:"));
            if let Some(port) = tcp.and_then(|r| r.split(':').next()) {
                std::net::TcpStream::connect(("127.0.0.1", port.parse::<u16>().unwrap())).is_ok()
            } else {
                remote
                    .strip_prefix("punix:")
                    .is_some_and(|p| std::os::unix::net::UnixStream::connect(p).is_ok())
            }
        });
        Some(db)
    }

    fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Ovsdb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `ovs-appctl -t CTL reconnect/show`.
fn show(ctl: &Path) -> String {
    let out = Command::new("ovs-appctl")
        .arg("-t")
        .arg(ctl)
        .arg("reconnect/show")
        .output()
        .expect("ovs-appctl");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap()
}

/// The value of `key:` in the block of remote `spec`.
fn field(text: &str, spec: &str, key: &str) -> Option<String> {
    let mut lines = text.lines().skip_while(|l| *l != spec).skip(1);
    lines
        .by_ref()
        .take_while(|l| l.starts_with("  "))
        .find_map(|l| {
            l.trim()
                .strip_prefix(&format!("{key}: "))
                .map(str::to_owned)
        })
}

fn keelsond(dir: &Path, remotes: &[&str]) -> (Daemon, PathBuf) {
    keelsond_with(dir, remotes, &[])
}

fn keelsond_with(dir: &Path, remotes: &[&str], extra: &[&str]) -> (Daemon, PathBuf) {
    let ctl = dir.join("k.ctl");
    let mut args = vec!["--unixctl", s(&ctl)];
    args.extend(extra);
    for r in remotes {
        args.extend(["--remote", r]);
    }
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    (Daemon::start(dir, &args), ctl)
}

/// A TCP port nobody listens on right now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn unix_session_lists_databases_and_is_never_probed() {
    if tool("ovs-appctl").is_none() {
        return;
    }
    let dir = scratch("remote-unix");
    let sock = dir.join("db.sock");
    let Some(_db) = Ovsdb::start(&dir, &format!("punix:{}", sock.display())) else {
        return;
    };
    let spec = format!("unix:{}", sock.display());
    let (_d, ctl) = keelsond(&dir, &[&spec]);
    wait_until("the session lists the databases", || {
        field(&show(&ctl), &spec, "databases").as_deref() == Some("Keelson, _Server")
    });
    let t = show(&ctl);
    assert!(
        field(&t, &spec, "state").unwrap().starts_with("ACTIVE"),
        "{t}"
    );
    assert_eq!(field(&t, &spec, "probe_interval").unwrap(), "0 ms", "{t}");
}

#[test]
fn tcp_session_comes_back_after_ovsdb_server_restarts_with_the_fsm_backoff() {
    if tool("ovs-appctl").is_none() {
        return;
    }
    let dir = scratch("remote-tcp");
    let port = free_port();
    let remote = format!("ptcp:{port}:127.0.0.1");
    let Some(db) = Ovsdb::start(&dir, &remote) else {
        return;
    };
    let spec = format!("tcp:127.0.0.1:{port}");
    let (_d, ctl) = keelsond(&dir, &[&spec]);
    wait_until("connected and listed", || {
        field(&show(&ctl), &spec, "databases").is_some()
    });
    assert_eq!(
        field(&show(&ctl), &spec, "probe_interval").unwrap(),
        "5000 ms"
    );

    // Kill the server: the session drops (the connection carried data, so the backoff starts
    // at the minimum), then doubles it after each refused attempt: attempts at 1, 3 and 7 s.
    db.kill();
    let t0 = Instant::now();
    let mut backoffs = Vec::new();
    while t0.elapsed() < Duration::from_millis(8500) {
        let t = show(&ctl);
        if let Some(b) = field(&t, &spec, "backoff") {
            if field(&t, &spec, "state").unwrap().starts_with("BACKOFF")
                && backoffs.last() != Some(&b)
            {
                backoffs.push(b);
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        backoffs,
        ["1000 ms", "2000 ms", "4000 ms", "8000 ms"],
        "{}",
        show(&ctl)
    );
    let t = show(&ctl);
    assert_eq!(
        field(&t, &spec, "last_error").as_deref(),
        Some("Connection refused"),
        "{t}"
    );
    assert!(field(&t, &spec, "databases").is_none(), "{t}");

    // Restart it on the same port: the attempt due at 15 s connects.
    let Some(_db) = Ovsdb::start(&dir, &remote) else {
        return;
    };
    wait_until("reconnected and listed again", || {
        let t = show(&ctl);
        field(&t, &spec, "databases").is_some()
            && field(&t, &spec, "successful_connections").as_deref() == Some("2")
    });
    let back = t0.elapsed();
    assert!(
        back >= Duration::from_millis(14_900) && back < Duration::from_millis(17_000),
        "back after {back:?}"
    );
}

#[test]
fn tcp_probes_a_silent_peer_and_drops_it_after_two_intervals() {
    if tool("ovs-appctl").is_none() {
        return;
    }
    let dir = scratch("remote-probe");
    let peer = TcpListener::bind("127.0.0.1:0").unwrap();
    let spec = format!("tcp:{}", peer.local_addr().unwrap());
    let (_d, ctl) = keelsond(&dir, &[&spec]);
    let (mut c, _) = peer.accept().unwrap();
    let t0 = Instant::now();
    // What keelsond sends a silent peer: list_dbs at once, the echo probe after 5 s, then it
    // hangs up after 5 s more without an answer.
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut probe_at = None;
    loop {
        let n = c.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
        if probe_at.is_none() && got.ends_with(br#"{"method":"echo","params":[],"id":"echo"}"#) {
            probe_at = Some(t0.elapsed());
            wait_until("IDLE after the probe", || {
                field(&show(&ctl), &spec, "state")
                    .unwrap()
                    .starts_with("IDLE")
            });
        }
    }
    let closed_at = t0.elapsed();
    assert_eq!(
        String::from_utf8_lossy(&got),
        r#"{"method":"list_dbs","params":[],"id":1}{"method":"echo","params":[],"id":"echo"}"#
    );
    let probe_at = probe_at.unwrap();
    assert!(
        probe_at >= Duration::from_millis(4900) && probe_at < Duration::from_millis(6500),
        "probe at {probe_at:?}"
    );
    assert!(
        closed_at >= Duration::from_millis(9900) && closed_at < Duration::from_millis(12_000),
        "closed at {closed_at:?}"
    );
    // It comes back by itself (the connection was idle: backoff 1 s).
    let (_c2, _) = peer.accept().unwrap();
    wait_until("reconnected", || {
        field(&show(&ctl), &spec, "successful_connections").as_deref() == Some("2")
    });
}

#[test]
fn a_peer_that_answers_probes_stays_connected() {
    // ovsdb-server probes its TCP clients every 5 s and keelsond answers; keelsond probes the
    // server and it answers: after three intervals the first connection is still the only one.
    if tool("ovs-appctl").is_none() {
        return;
    }
    let dir = scratch("remote-keepalive");
    let port = free_port();
    let Some(_db) = Ovsdb::start(&dir, &format!("ptcp:{port}:127.0.0.1")) else {
        return;
    };
    let spec = format!("tcp:127.0.0.1:{port}");
    let (_d, ctl) = keelsond(&dir, &[&spec]);
    wait_until("connected", || {
        field(&show(&ctl), &spec, "databases").is_some()
    });
    std::thread::sleep(Duration::from_secs(16));
    let t = show(&ctl);
    assert_eq!(
        field(&t, &spec, "attempted_connections").as_deref(),
        Some("1"),
        "{t}"
    );
    assert_eq!(
        field(&t, &spec, "successful_connections").as_deref(),
        Some("1"),
        "{t}"
    );
    let log = std::fs::read_to_string(dir.join("ovsdb.log")).unwrap_or_default();
    assert!(!log.contains("no response to inactivity probe"), "{log}");
}

#[test]
fn passive_remote_serves_the_latest_connection_and_answers_echo() {
    if tool("ovs-appctl").is_none() {
        return;
    }
    use std::io::Write;
    use std::os::unix::net::UnixStream;
    let dir = scratch("remote-passive");
    let path = dir.join("mgmt.sock");
    let spec = format!("punix:{}", path.display());
    let (_d, ctl) = keelsond(&dir, &[&spec]);
    wait_until("listening", || {
        field(&show(&ctl), &spec, "state").is_some_and(|s| s.starts_with("LISTENING"))
    });
    let read_some = |c: &mut UnixStream| {
        let mut buf = [0u8; 4096];
        let n = c.read(&mut buf).unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    let mut first = UnixStream::connect(&path).unwrap();
    first
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    // keelsond asks every new peer for its databases, and answers echo with the params.
    assert_eq!(
        read_some(&mut first),
        r#"{"method":"list_dbs","params":[],"id":1}"#
    );
    first
        .write_all(br#"{"method":"echo","params":["x",1],"id":7}"#)
        .unwrap();
    assert_eq!(
        read_some(&mut first),
        r#"{"result":["x",1],"error":null,"id":7}"#
    );
    first
        .write_all(br#"{"method":"frobnicate","params":[],"id":8}"#)
        .unwrap();
    assert_eq!(
        read_some(&mut first),
        r#"{"error":"unknown method","id":8}"#
    );
    // A second peer replaces the first, which sees the connection close.
    let mut second = UnixStream::connect(&path).unwrap();
    second
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    assert_eq!(
        read_some(&mut second),
        r#"{"method":"list_dbs","params":[],"id":1}"#
    );
    assert_eq!(read_some(&mut first), "");
    let t = show(&ctl);
    assert_eq!(
        field(&t, &spec, "session_seqno").as_deref(),
        Some("2"),
        "{t}"
    );
    assert!(
        field(&t, &spec, "state").unwrap().starts_with("ACTIVE"),
        "{t}"
    );
}

#[test]
fn ssl_session_with_mutual_tls_against_ovsdb_server() {
    if tool("ovs-appctl").is_none() {
        return;
    }
    let dir = scratch("remote-ssl");
    let Some(p) = pki::Pki::new(&dir.join("pki")) else {
        return;
    };
    p.ca("ca").leaf("ca", "server").leaf("ca", "client");
    let flags = |who: &str| {
        vec![
            format!("--private-key={}", p.key(who).display()),
            format!("--certificate={}", p.cert(who).display()),
            format!("--ca-cert={}", p.cert("ca").display()),
        ]
    };
    let port = free_port();
    let Some(_db) = Ovsdb::start_with(&dir, &format!("pssl:{port}:127.0.0.1"), &flags("server"))
    else {
        return;
    };
    let spec = format!("ssl:127.0.0.1:{port}");
    let ours = flags("client");
    let ours: Vec<&str> = ours.iter().map(String::as_str).collect();
    let (_d, ctl) = keelsond_with(&dir, &[&spec], &ours);
    wait_until("connected over SSL and listed", || {
        field(&show(&ctl), &spec, "databases").as_deref() == Some("Keelson, _Server")
    });
    let t = show(&ctl);
    assert_eq!(
        field(&t, &spec, "probe_interval").as_deref(),
        Some("5000 ms"),
        "{t}"
    );
    assert_eq!(
        field(&t, &spec, "attempted_connections").as_deref(),
        Some("1"),
        "{t}"
    );
}

#[test]
fn a_bad_remote_name_stops_start_up_naming_it() {
    let dir = scratch("remote-bad");
    let out = Command::new(KEELSOND)
        .arg("--socket")
        .arg(dir.join("sock"))
        .args(["--remote", "tcp:127.0.0.1:99999"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "keelsond: --remote tcp:127.0.0.1:99999: 127.0.0.1:99999: bad port number \"99999\"\n"
    );
    assert!(!dir.join("sock").exists());
}
