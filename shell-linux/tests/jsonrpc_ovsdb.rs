//! Interoperability of keelson-core's JSON-RPC framer, parser and writers with a real
//! `ovsdb-server` (ovs-sessions.md §3.2–3.4, §8 (c); `shared/oracles/ovs/transcripts/`).
//!
//! The server runs in the foreground as our child, on a unix socket only, in a private directory
//! under `CARGO_TARGET_TMPDIR`, with a one-table schema of our own (so only Debian's
//! `openvswitch-common` is needed, not the `vswitch.ovsschema` of `openvswitch-switch`). Without
//! `ovsdb-server`/`ovsdb-tool` the tests print a note and pass, except under CI (env `CI` set),
//! where `openvswitch-common` is installed and their absence fails.

mod tools;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use keelson_core::jsonrpc::json::{self, ToJson};
use keelson_core::jsonrpc::{write_request, Framer, Message, Value};

/// A database name of our own, so the reply to `list_dbs` is predictable.
const SCHEMA: &str =
    r#"{"name":"Keelson","version":"1.0.0","tables":{"T":{"columns":{"x":{"type":"integer"}}}}}"#;

/// An Open vSwitch program (see `tools::find`).
fn tool(name: &str) -> Option<PathBuf> {
    tools::find(name, "openvswitch-common")
}

/// A running ovsdb-server and its private directory; stopped (by its own pid) and cleaned up
/// when dropped. The directory and log are kept when the test failed.
struct Ovsdb {
    child: Child,
    dir: PathBuf,
    socket: PathBuf,
}

impl Ovsdb {
    fn start(test: &str) -> Option<Ovsdb> {
        let (server, tool) = (tool("ovsdb-server")?, tool("ovsdb-tool")?);
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join("jsonrpc-ovsdb")
            .join(format!("{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("k.ovsschema"), SCHEMA).unwrap();
        let st = Command::new(tool)
            .arg("create")
            .arg(dir.join("conf.db"))
            .arg(dir.join("k.ovsschema"))
            .status()
            .unwrap();
        assert!(st.success(), "ovsdb-tool create: {st}");
        let socket = dir.join("db.sock");
        // The oracle's command line (§8 (c)) without --detach and without a TCP remote: we keep
        // the server as our child so it is stopped by its own pid.
        let child = Command::new(server)
            .arg(dir.join("conf.db"))
            .arg(format!("--remote=punix:{}", socket.display()))
            .arg(format!(
                "--unixctl={}",
                dir.join("ovsdb-server.ctl").display()
            ))
            .arg("--no-chdir")
            .arg(format!(
                "--log-file={}",
                dir.join("ovsdb-server.log").display()
            ))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting ovsdb-server");
        let mut s = Ovsdb { child, dir, socket };
        let deadline = Instant::now() + Duration::from_secs(10);
        while UnixStream::connect(&s.socket).is_err() {
            if let Some(st) = s.child.try_wait().unwrap() {
                panic!("ovsdb-server exited early: {st}");
            }
            assert!(
                Instant::now() < deadline,
                "ovsdb-server did not listen within 10 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(s)
    }

    fn connect(&self) -> Conn {
        let s = UnixStream::connect(&self.socket).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        Conn {
            s,
            framer: Framer::new(Vec::new(), 4096),
            pending: Vec::new(),
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
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let log =
                std::fs::read_to_string(self.dir.join("ovsdb-server.log")).unwrap_or_default();
            eprintln!(
                "--- ovsdb-server.log:\n{log}\nkept in {}",
                self.dir.display()
            );
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// One client connection: bytes read but not yet framed wait in `pending`.
struct Conn {
    s: UnixStream,
    framer: Framer<Vec<u8>>,
    pending: Vec<u8>,
}

impl Conn {
    fn send(&mut self, bytes: &[u8]) {
        self.s.write_all(bytes).unwrap();
    }

    /// The next whole message's bytes, or `None` at EOF.
    fn recv(&mut self) -> Option<Vec<u8>> {
        loop {
            while !self.pending.is_empty() {
                let fed = self
                    .framer
                    .feed(&self.pending)
                    .expect("ovsdb-server sends JSON");
                self.pending.drain(..fed.consumed);
                if let Some(f) = self.framer.frame() {
                    return Some(f.to_vec());
                }
            }
            let mut buf = [0u8; 512];
            let n = self.s.read(&mut buf).expect("read from ovsdb-server");
            if n == 0 {
                self.framer.finish().expect("EOF between messages");
                return None;
            }
            self.pending.extend_from_slice(&buf[..n]);
        }
    }
}

fn request(method: &str, params: &dyn ToJson, id: &dyn ToJson) -> Vec<u8> {
    let mut out = Vec::new();
    write_request(method, params, id, &mut out).unwrap();
    out
}

#[test]
fn list_dbs_and_echo() {
    let Some(db) = Ovsdb::start("list_dbs_and_echo") else {
        return;
    };
    let mut c = db.connect();
    let none: [i64; 0] = [];

    c.send(&request("list_dbs", &none, &1i64));
    let bytes = c.recv().unwrap();
    let Message::Reply { result, id } = Message::parse(&bytes).unwrap() else {
        panic!("not a reply: {}", String::from_utf8_lossy(&bytes))
    };
    assert_eq!(id.as_i64(), Some(1));
    let expected = json::parse(br#"["Keelson","_Server"]"#).unwrap();
    assert_eq!(result, expected);

    // §3.4: echo answers with result = params and the same (string) id.
    let params = json::parse(br#"["hello",42]"#).unwrap();
    c.send(&request("echo", &params, &"e1"));
    let bytes = c.recv().unwrap();
    let Message::Reply { result, id } = Message::parse(&bytes).unwrap() else {
        panic!("not a reply: {}", String::from_utf8_lossy(&bytes))
    };
    assert!(matches!(id, Value::String(s) if s.eq_str("e1")));
    assert_eq!(result, params);

    // Our probe (§3.4) is an echo request like any other to the server.
    c.send(keelson_core::jsonrpc::ECHO_PROBE);
    let bytes = c.recv().unwrap();
    assert_eq!(
        Message::parse(&bytes).unwrap(),
        Message::parse(br#"{"id":"echo","result":[],"error":null}"#).unwrap()
    );

    // An unknown method is an error reply without a `result` member (§3.3).
    c.send(&request("no_such_method", &none, &4i64));
    let bytes = c.recv().unwrap();
    assert!(matches!(Message::parse(&bytes).unwrap(),
        Message::Error { error: Value::String(e), id } if e.eq_str("unknown method") && id.as_i64() == Some(4)));
}

#[test]
fn back_to_back_split_and_spaced_messages() {
    let Some(db) = Ovsdb::start("back_to_back") else {
        return;
    };
    let mut c = db.connect();
    let none: [i64; 0] = [];
    // §3.2: no separator, a message split across writes, and whitespace between messages.
    let mut stream = request("list_dbs", &none, &2i64);
    stream.extend(request("echo", &none, &3i64));
    stream.extend(b"\n  ");
    stream.extend(request("echo", &none, &10i64));
    let (a, b) = stream.split_at(stream.len() - 7);
    c.send(a);
    std::thread::sleep(Duration::from_millis(100));
    c.send(b);
    for want in [2, 3, 10] {
        let bytes = c.recv().unwrap();
        let m = Message::parse(&bytes).unwrap();
        assert_eq!(m.id().as_i64(), Some(want));
        assert!(matches!(m, Message::Reply { .. }));
    }
    // An echo notification gets no reply (§3.4): the next answer is the request's.
    let mut out = Vec::new();
    keelson_core::jsonrpc::write_notification("echo", &none, &mut out).unwrap();
    c.send(&out);
    c.send(&request("echo", &none, &13i64));
    assert_eq!(
        Message::parse(&c.recv().unwrap()).unwrap().id().as_i64(),
        Some(13)
    );
}

#[test]
fn invalid_message_closes_without_reply() {
    let Some(db) = Ovsdb::start("invalid_message") else {
        return;
    };
    let mut c = db.connect();
    // §3.2: `params` as an object is refused by us with OVS's words, and the server drops the
    // connection without answering.
    let bad = br#"{"id":5,"method":"echo","params":{}}"#;
    assert_eq!(
        Message::parse(bad).unwrap_err().to_string(),
        "received bad JSON-RPC message: \"params\" must be JSON array"
    );
    c.send(bad);
    assert_eq!(c.recv(), None);
}
