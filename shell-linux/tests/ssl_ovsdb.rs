//! `ssl:`/`pssl:` streams against the real Open vSwitch: our `ssl:` client talks JSON-RPC to an
//! `ovsdb-server` listening on `pssl:0:127.0.0.1`, and the real `ovsdb-client list-dbs` talks to
//! our `pssl:` listener (answered by a small responder on `keelson_core::jsonrpc`). Both sides use
//! certificates made by `openssl` in the test, with OVS's `--private-key/--certificate/--ca-cert`;
//! a certificate from another CA fails on both sides. Certificates from OVS's own `ovs-pki` (RSA,
//! a switch CA and a controller CA, as OVS deployments use them) work both ways too.
//!
//! Without `ovsdb-server`/`ovsdb-tool`/`ovsdb-client`/`openssl` the tests print a note and pass,
//! except under CI (env `CI` set), where their absence fails.

mod pki;
mod tools;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use keelson_core::jsonrpc::json::{self, ToJson};
use keelson_core::jsonrpc::{write_reply, write_request, Framer, Message};
use keelson_linux::stream::{self, SslConfig, Stream};

const TIMEOUT: Option<Duration> = Some(Duration::from_secs(10));

/// A database name of our own, so the reply to `list_dbs` is predictable.
const SCHEMA: &str =
    r#"{"name":"Keelson","version":"1.0.0","tables":{"T":{"columns":{"x":{"type":"integer"}}}}}"#;

/// An Open vSwitch program (see `tools::find`).
fn tool(name: &str) -> Option<PathBuf> {
    tools::find(name, "openvswitch-common")
}

/// A private directory under the target dir, fresh for each test; removed when the test
/// passes, kept (and named) when it fails.
struct Scratch(PathBuf);

impl std::ops::Deref for Scratch {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if thread::panicking() {
            eprintln!("kept {}", self.0.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

fn scratch(test: &str) -> Scratch {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("ssl-ovsdb")
        .join(format!("{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    Scratch(dir)
}

/// CA "ca" signs "server" and "client"; CA "other" signs "mallory".
fn pki(dir: &Path) -> Option<pki::Pki> {
    let p = pki::Pki::new(&dir.join("pki"))?;
    p.ca("ca").leaf("ca", "server").leaf("ca", "client");
    p.ca("other").leaf("other", "mallory");
    Some(p)
}

/// `--private-key=K --certificate=C --ca-cert=CA` as OVS's programs take them.
fn ssl_flags(p: &pki::Pki, ca: &str, who: &str) -> Vec<String> {
    vec![
        format!("--private-key={}", p.key(who).display()),
        format!("--certificate={}", p.cert(who).display()),
        format!("--ca-cert={}", p.cert(ca).display()),
    ]
}

/// An ovsdb-server on `pssl:0:127.0.0.1`, our child, stopped by its own pid when dropped.
struct Ovsdb {
    child: Child,
    dir: PathBuf,
    port: u16,
}

impl Ovsdb {
    /// Starts the server with `ssl` as its `--private-key/--certificate/--ca-cert` flags.
    fn start(dir: &Path, ssl: Vec<String>) -> Option<Ovsdb> {
        let (server, tool) = (tool("ovsdb-server")?, tool("ovsdb-tool")?);
        std::fs::write(dir.join("k.ovsschema"), SCHEMA).unwrap();
        let st = Command::new(tool)
            .arg("create")
            .arg(dir.join("conf.db"))
            .arg(dir.join("k.ovsschema"))
            .status()
            .unwrap();
        assert!(st.success(), "ovsdb-tool create: {st}");
        let log = dir.join("ovsdb-server.log");
        let child = Command::new(server)
            .arg(dir.join("conf.db"))
            .arg("--remote=pssl:0:127.0.0.1")
            .args(ssl)
            .arg(format!(
                "--unixctl={}",
                dir.join("ovsdb-server.ctl").display()
            ))
            .arg("--no-chdir")
            .arg(format!("--log-file={}", log.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting ovsdb-server");
        let mut s = Ovsdb {
            child,
            dir: dir.to_owned(),
            port: 0,
        };
        // With port 0 the kernel picks, and OVS logs "TARGET: listening on port N".
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if let Some(port) = text
                .lines()
                .find_map(|l| l.split("listening on port ").nth(1))
                .and_then(|p| p.trim().parse().ok())
            {
                s.port = port;
                return Some(s);
            }
            if let Some(st) = s.child.try_wait().unwrap() {
                panic!("ovsdb-server exited early: {st}\n{text}");
            }
            assert!(
                Instant::now() < deadline,
                "ovsdb-server did not listen within 10 s:\n{text}"
            );
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Ovsdb {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        if thread::panicking() {
            let log =
                std::fs::read_to_string(self.dir.join("ovsdb-server.log")).unwrap_or_default();
            eprintln!("--- ovsdb-server.log:\n{log}");
        }
    }
}

/// One JSON-RPC connection over any [`Stream`]; bytes read but not yet framed wait in
/// `pending`.
struct Conn {
    s: Stream,
    framer: Framer<Vec<u8>>,
    pending: Vec<u8>,
}

impl Conn {
    fn new(s: Stream) -> Conn {
        s.set_read_timeout(TIMEOUT).unwrap();
        Conn {
            s,
            framer: Framer::new(Vec::new(), 64 * 1024),
            pending: Vec::new(),
        }
    }

    /// The next whole message's bytes, or `None` at EOF.
    fn recv(&mut self) -> Option<Vec<u8>> {
        loop {
            while !self.pending.is_empty() {
                let fed = self.framer.feed(&self.pending).expect("JSON from the peer");
                self.pending.drain(..fed.consumed);
                if let Some(f) = self.framer.frame() {
                    return Some(f.to_vec());
                }
            }
            let mut buf = [0u8; 4096];
            let n = self.s.read(&mut buf).expect("read from the peer");
            if n == 0 {
                return None;
            }
            self.pending.extend_from_slice(&buf[..n]);
        }
    }
}

fn config(p: &pki::Pki, ca: &str, who: &str) -> SslConfig {
    p.args(ca, who).load().unwrap().unwrap()
}

#[test]
fn our_ssl_client_lists_the_real_servers_databases() {
    let dir = scratch("client");
    let Some(p) = pki(&dir) else { return };
    let Some(db) = Ovsdb::start(&dir, ssl_flags(&p, "ca", "server")) else {
        return;
    };
    let name = format!("ssl:127.0.0.1:{}", db.port);
    let s = stream::connect_with(&name, TIMEOUT, Some(&config(&p, "ca", "client"))).unwrap();
    if let Stream::Ssl(tls) = &s {
        eprintln!("ovsdb-server negotiated {:?}", tls.protocol_version());
    }
    let mut c = Conn::new(s);
    let none: [i64; 0] = [];
    let mut req = Vec::new();
    write_request("list_dbs", &none, &1i64, &mut req).unwrap();
    c.s.write_all(&req).unwrap();
    let bytes = c.recv().expect("a reply");
    let Message::Reply { result, id } = Message::parse(&bytes).unwrap() else {
        panic!("not a reply: {}", String::from_utf8_lossy(&bytes))
    };
    assert_eq!(id.as_i64(), Some(1));
    assert_eq!(result, json::parse(br#"["Keelson","_Server"]"#).unwrap());

    // A client whose certificate and CA come from elsewhere gets nowhere, with a clear error.
    let err = stream::connect_with(&name, TIMEOUT, Some(&config(&p, "other", "mallory")))
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        format!("{name}: SSL handshake failed: invalid peer certificate: UnknownIssuer")
    );
}

/// Answers `list_dbs` with `["Keelson"]` and `echo` with its params on one connection until
/// the peer closes it.
fn respond(s: Stream) {
    let mut c = Conn::new(s);
    while let Some(bytes) = c.recv() {
        let msg = Message::parse(&bytes).expect("a valid JSON-RPC message");
        let Message::Request { method, params, id } = msg else {
            continue;
        };
        let mut out = Vec::new();
        if method.eq_str("list_dbs") {
            write_reply(&["Keelson"], &id, &mut out).unwrap();
        } else if method.eq_str("echo") {
            write_reply(&params as &dyn ToJson, &id, &mut out).unwrap();
        } else {
            keelson_core::jsonrpc::write_error(&"unknown method", &id, &mut out).unwrap();
        }
        c.s.write_all(&out).unwrap();
    }
}

#[test]
fn the_real_ovsdb_client_lists_our_databases() {
    let dir = scratch("server");
    let Some(client) = tool("ovsdb-client") else {
        return;
    };
    let Some(p) = pki(&dir) else { return };
    let listener =
        stream::listen_with("pssl:0:127.0.0.1", Some(&config(&p, "ca", "server"))).unwrap();
    let port = listener.bound_port().unwrap();
    let server = thread::spawn(move || {
        let (s, peer) = listener
            .accept()
            .expect("the SSL handshake with ovsdb-client");
        respond(s);
        // Then one more, which must fail: its certificate comes from another CA.
        let second = listener.accept().map(|_| ());
        (peer, second)
    });

    let target = format!("ssl:127.0.0.1:{port}");
    let out = Command::new(&client)
        .args(ssl_flags(&p, "ca", "client"))
        .arg("--timeout=10")
        .arg("list-dbs")
        .arg(&target)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ovsdb-client: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "Keelson\n");

    let out = Command::new(&client)
        .args(ssl_flags(&p, "other", "mallory"))
        .arg("--timeout=10")
        .arg("list-dbs")
        .arg(&target)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "ovsdb-client with a foreign CA succeeded"
    );
    eprintln!(
        "ovsdb-client with a foreign CA: {}",
        String::from_utf8_lossy(&out.stderr).trim()
    );
    let (peer, second) = server.join().unwrap();
    assert!(peer.starts_with("ssl:127.0.0.1:"), "{peer}");
    // OpenSSL rejects our certificate and says so with an alert.
    let err = second.unwrap_err().to_string();
    assert!(
        err.starts_with("ssl:127.0.0.1:") && err.contains(": SSL handshake failed: "),
        "{err}"
    );
}

/// OVS's `ovs-pki`: `init` (switch and controller CAs) and `req+sign` of `switch` and
/// `controller` certificates into `dir`. `None` (after a note) without it, outside CI.
fn ovs_pki(dir: &Path) -> Option<PathBuf> {
    let ovs_pki = tool("ovs-pki")?;
    let pki = dir.join("ovs-pki");
    let run = |args: &[&str]| {
        let out = Command::new(&ovs_pki)
            .arg(format!("--dir={}", pki.display()))
            .arg(format!("--log={}", dir.join("ovs-pki.log").display()))
            .args(args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "ovs-pki {args:?}: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&["init"]);
    run(&["req+sign", "switch", "switch"]);
    run(&["req+sign", "controller", "controller"]);
    Some(pki)
}

#[test]
fn ovs_pki_certificates_work_both_ways() {
    let dir = scratch("ovs-pki");
    let Some(client) = tool("ovsdb-client") else {
        return;
    };
    let Some(pki) = ovs_pki(&dir) else { return };
    // As OVS deployments do: the switch side trusts the controller CA and vice versa.
    let flags = |who: &str, ca: &str| {
        vec![
            format!(
                "--private-key={}",
                dir.join(format!("{who}-privkey.pem")).display()
            ),
            format!(
                "--certificate={}",
                dir.join(format!("{who}-cert.pem")).display()
            ),
            format!("--ca-cert={}", pki.join(ca).join("cacert.pem").display()),
        ]
    };
    let args = |who: &str, ca: &str| stream::SslArgs {
        private_key: Some(dir.join(format!("{who}-privkey.pem"))),
        certificate: Some(dir.join(format!("{who}-cert.pem"))),
        ca_cert: Some(pki.join(ca).join("cacert.pem")),
    };

    // The real ovsdb-client (controller) against our pssl: listener (switch).
    let listener = stream::listen_with(
        "pssl:0:127.0.0.1",
        Some(&args("switch", "controllerca").load().unwrap().unwrap()),
    )
    .unwrap();
    let port = listener.bound_port().unwrap();
    let server = thread::spawn(move || {
        let (s, _) = listener
            .accept()
            .expect("the SSL handshake with ovsdb-client");
        respond(s);
    });
    let out = Command::new(&client)
        .args(flags("controller", "switchca"))
        .arg("--timeout=10")
        .arg("list-dbs")
        .arg(format!("ssl:127.0.0.1:{port}"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ovsdb-client: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "Keelson\n");
    server.join().unwrap();

    // Our ssl: client (controller) against the real ovsdb-server (switch).
    let Some(db) = Ovsdb::start(&dir, flags("switch", "controllerca")) else {
        return;
    };
    let config = args("controller", "switchca").load().unwrap().unwrap();
    let name = format!("ssl:127.0.0.1:{}", db.port);
    let mut c = Conn::new(stream::connect_with(&name, TIMEOUT, Some(&config)).unwrap());
    let mut req = Vec::new();
    let none: [i64; 0] = [];
    write_request("list_dbs", &none, &"x", &mut req).unwrap();
    c.s.write_all(&req).unwrap();
    let bytes = c.recv().expect("a reply");
    let Message::Reply { result, .. } = Message::parse(&bytes).unwrap() else {
        panic!("not a reply: {}", String::from_utf8_lossy(&bytes))
    };
    assert_eq!(result, json::parse(br#"["Keelson","_Server"]"#).unwrap());
}
