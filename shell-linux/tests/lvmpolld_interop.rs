//! Interoperability with the real lvmpolld (lvm2): keelctl and the client library against
//! lvmpolld, lvmpolld's own libdaemon client (`lvmpolld --dump`) against keelsond, and the raw
//! reply bytes of both servers side by side (config-tree.md §3–4,
//! `shared/oracles/lvm/wire-captures.txt`).
//!
//! lvmpolld is looked up as `/usr/sbin/lvmpolld`, then on `PATH`. Without it the tests print a
//! note and pass, except under CI (env `CI` set), where lvm2 is installed and its absence fails.

mod tools;

use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use keelson_core::config::Lookup;
use keelson_core::daemon::message::Reply;
use keelson_core::daemon::simple::Arg;
use keelson_linux::daemon::client::{self, Client, ClientError};

/// The hello reply body of any lvmpolld 1 (capture 3), without the terminator.
const HELLO_BODY: &[u8] = b"response = \"OK\"\nprotocol = \"lvmpolld\"\nversion = 1\n";
/// An idle lvmpolld's dump body (capture 1): ends with `}`, no newline before the terminator.
const EMPTY_DUMP: &[u8] =
    b"# Registered polling operations\n\npoll {\n}\n\n# Registered abort operations\n\nabort {\n}";
/// `lvmpolld --dump` prints each line of the dump body after two spaces.
const EMPTY_DUMP_PRINTED: &str = "  # Registered polling operations\n  \n  poll {\n  }\n  \n  \
     # Registered abort operations\n  \n  abort {\n  }\n";

// ---------------------------------------------------------------------------------------------
// Finding lvmpolld

/// lvmpolld (see `tools::find`).
fn lvmpolld() -> Option<PathBuf> {
    tools::find("lvmpolld", "lvm2")
}

// ---------------------------------------------------------------------------------------------
// Servers

/// A private directory for one test's sockets, pidfiles and logs; removed when the test passes
/// (declare it before the servers, so they stop first), kept with the logs when it fails.
struct Scratch(PathBuf);

impl Scratch {
    fn new(test: &str) -> Scratch {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join("lvmpolld-interop")
            .join(format!("{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl std::ops::Deref for Scratch {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for e in std::fs::read_dir(&self.0).into_iter().flatten().flatten() {
                if e.path().extension().is_some_and(|x| x == "log") {
                    let log = std::fs::read_to_string(e.path()).unwrap_or_default();
                    let tail: Vec<&str> = log.lines().rev().take(8).collect();
                    eprintln!("--- {} (end):", e.path().display());
                    for l in tail.iter().rev() {
                        eprintln!("{l}");
                    }
                }
            }
            eprintln!("logs kept in {}", self.0.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// A server process, stopped (SIGTERM, then SIGKILL) when dropped.
struct Server {
    child: Child,
    socket: PathBuf,
    log: PathBuf,
}

impl Server {
    /// Starts `cmd` (stdin null, stdout and stderr to `log`) and waits until `socket` accepts.
    fn start(mut cmd: Command, socket: PathBuf, log: PathBuf) -> Server {
        let out = File::create(&log).unwrap();
        let err = out.try_clone().unwrap();
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {cmd:?}: {e}"));
        let mut s = Server { child, socket, log };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if UnixStream::connect(&s.socket).is_ok() {
                return s;
            }
            if let Ok(Some(status)) = s.child.try_wait() {
                panic!(
                    "{cmd:?} exited with {status} before listening:\n{}",
                    s.log()
                );
            }
            if Instant::now() > deadline {
                panic!("{cmd:?} not listening after 10 s:\n{}", s.log());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The real lvmpolld in the foreground, logging everything (`-l all`).
    fn lvmpolld(bin: &Path, dir: &Path) -> Server {
        let socket = dir.join("lvmpolld.socket");
        let mut cmd = Command::new(bin);
        cmd.arg("-f")
            .arg("-s")
            .arg(&socket)
            .arg("-p")
            .arg(dir.join("lvmpolld.pid"))
            .args(["-l", "all"]);
        Server::start(cmd, socket, dir.join("lvmpolld.log"))
    }

    /// keelsond with `extra` arguments, logging requests and replies (`-l info,wire`).
    fn keelsond(dir: &Path, extra: &[&str]) -> Server {
        let socket = dir.join("keelsond.socket");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_keelsond"));
        cmd.arg("--socket")
            .arg(&socket)
            .args(["-l", "info,wire"])
            .args(extra);
        Server::start(cmd, socket, dir.join("keelsond.log"))
    }

    /// keelsond standing in for lvmpolld.
    fn keelsond_as_lvmpolld(dir: &Path) -> Server {
        Server::keelsond(dir, &["--protocol", "lvmpolld", "--protocol-version", "1"])
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            // lvmpolld can stop by itself: its reaper SIGTERMs client threads that are about to
            // exit, and one that has not blocked signals yet runs the shutdown handler.
            eprintln!(
                "the server logging to {} had exited by itself ({status}) {}",
                self.log.display(),
                if std::thread::panicking() {
                    self.log()
                } else {
                    String::new()
                }
            );
            return;
        }
        keelson_linux::process::terminate(&mut self.child, Duration::from_secs(5));
    }
}

// ---------------------------------------------------------------------------------------------
// Clients

fn keelctl(socket: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_keelctl"))
        .arg("-s")
        .arg(socket)
        .args(["--timeout", "5"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("keelctl runs")
}

fn lvmpolld_dump(bin: &Path, socket: &Path) -> Output {
    Command::new(bin)
        .arg("--dump")
        .arg("-s")
        .arg(socket)
        .stdin(Stdio::null())
        .output()
        .expect("lvmpolld --dump runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A raw libdaemon connection: writes bytes, reads up to a terminator at the end of the data.
struct Raw(UnixStream);

impl Raw {
    fn connect(socket: &Path) -> Raw {
        let s = UnixStream::connect(socket).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        Raw(s)
    }

    /// Sends `msg` verbatim and returns the whole reply, terminator included.
    fn exchange(&mut self, msg: &[u8]) -> Vec<u8> {
        self.0.write_all(msg).unwrap();
        let mut reply = Vec::new();
        let mut buf = [0u8; 4096];
        while !reply.ends_with(b"\n##\n") {
            let n = self
                .0
                .read(&mut buf)
                .unwrap_or_else(|e| panic!("no reply to {:?}: {e}", show(msg)));
            assert!(n > 0, "EOF instead of a reply to {:?}", show(msg));
            reply.extend_from_slice(&buf[..n]);
        }
        reply
    }
}

fn show(b: &[u8]) -> String {
    b.escape_ascii().to_string()
}

// ---------------------------------------------------------------------------------------------
// keelctl and the client library against the real lvmpolld

#[test]
fn keelctl_against_real_lvmpolld() {
    let Some(bin) = lvmpolld() else { return };
    let dir = Scratch::new("keelctl");
    let lp = Server::lvmpolld(&bin, &dir);
    let sock = &lp.socket;
    let lvmpolld_v1 = ["--protocol", "lvmpolld", "--protocol-version", "1"];

    let o = keelctl(sock, &[&lvmpolld_v1[..], &["request", "hello"]].concat());
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(show(&o.stdout), show(HELLO_BODY));
    assert_eq!(stderr(&o), "");

    let o = keelctl(
        sock,
        &[&lvmpolld_v1[..], &["request", "progress_info"]].concat(),
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "response = \"failed\"\nreason = \"request requires lvid set\"\n"
    );

    let o = keelctl(
        sock,
        &[&lvmpolld_v1[..], &["request", "progress_info", "lvid=abc"]].concat(),
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), "response = \"not_found\"\n");

    let o = keelctl(sock, &["request", "bogus"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "response = \"invalid\"\nreason = \"request not implemented\"\n"
    );

    let o = keelctl(
        sock,
        &[
            "--protocol",
            "lvmpolld",
            "--protocol-version",
            "2",
            "request",
            "hello",
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("requested protocol version 2 != 1"),
        "{}",
        stderr(&o)
    );
    assert_eq!(stdout(&o), "");

    let o = keelctl(sock, &["--protocol", "other", "request", "hello"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("requested protocol other != lvmpolld"),
        "{}",
        stderr(&o)
    );
    assert_eq!(stdout(&o), "");

    // lvmpolld saw every request (its wire log), the refused ones after a hello only.
    let log = lp.log();
    assert!(
        log.contains("<- request=\"progress_info\"\n<- lvid=\"abc\""),
        "{log}"
    );
    assert!(log.contains("<- request=\"bogus\""), "{log}");
}

#[test]
fn client_library_against_real_lvmpolld() {
    let Some(bin) = lvmpolld() else { return };
    let dir = Scratch::new("client");
    let lp = Server::lvmpolld(&bin, &dir);
    let t = Duration::from_secs(5);

    let mut c = Client::connect(&lp.socket, t).unwrap();
    let (proto, version) = c.hello(Some("lvmpolld"), 1).unwrap();
    assert_eq!((proto.as_str(), version), ("lvmpolld", 1));
    // The same connection carries any number of requests.
    assert_eq!(
        show(&c.call_raw(b"request = \"hello\"\n").unwrap()),
        show(HELLO_BODY)
    );

    let reply = c.call("progress_info", &[]).unwrap();
    let r = Reply::new(reply.view());
    assert_eq!(r.response(), b"failed");
    assert_eq!(r.reason(), Some(&b"request requires lvid set"[..]));

    let reply = c
        .call("progress_info", &[("lvid", Arg::Str(b"abc"))])
        .unwrap();
    assert_eq!(Reply::new(reply.view()).response(), b"not_found");
    assert_eq!(reply.view().get_str("reason"), None);

    // The dump is raw text, not a response tree, but it still parses.
    assert_eq!(
        show(&c.call_raw(b"request=\"dump\"\n").unwrap()),
        show(EMPTY_DUMP)
    );
    drop(c);

    // `open` = connect + hello + daemon_open's checks.
    let mut c = client::open(&lp.socket, t, Some("lvmpolld"), 1, None).unwrap();
    let reply = c.call("bogus", &[]).unwrap();
    assert_eq!(Reply::new(reply.view()).response(), b"invalid");
    match client::open(&lp.socket, t, Some("lvmpolld"), 2, None) {
        Err(ClientError::Hello(e)) => assert_eq!(e, "requested protocol version 2 != 1"),
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("version 2 accepted"),
    }
    match client::open(&lp.socket, t, Some("other"), 0, None) {
        Err(ClientError::Hello(e)) => assert_eq!(e, "requested protocol other != lvmpolld"),
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("protocol other accepted"),
    }
}

// ---------------------------------------------------------------------------------------------
// lvmpolld's own client against keelsond

#[test]
fn lvmpolld_dump_reads_keelsond() {
    let Some(bin) = lvmpolld() else { return };
    let dir = Scratch::new("dump");
    let k = Server::keelsond_as_lvmpolld(&dir);
    let o = lvmpolld_dump(&bin, &k.socket);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), EMPTY_DUMP_PRINTED);
    assert_eq!(stderr(&o), "");

    // What lvmpolld --dump prints for the real lvmpolld, byte for byte.
    let lp = Server::lvmpolld(&bin, &dir);
    let real = lvmpolld_dump(&bin, &lp.socket);
    assert_eq!(real.status.code(), Some(0), "{}", stderr(&real));
    assert_eq!(stdout(&real), stdout(&o));

    // keelsond saw the two requests of capture 1: hello (send_simple form), dump (writer form).
    let log = k.log();
    let wire: Vec<&str> = log
        .lines()
        .filter_map(|l| l.split_once("keelsond::wire: ").map(|(_, w)| w))
        .collect();
    assert_eq!(
        wire.iter()
            .map(|w| w.trim_end())
            .filter(|w| w.starts_with("<- "))
            .collect::<Vec<_>>(),
        ["<- request = \"hello\"", "<- request=\"dump\""],
        "{log}"
    );
}

#[test]
fn lvmpolld_dump_refuses_keelsond_with_its_own_protocol() {
    let Some(bin) = lvmpolld() else { return };
    let dir = Scratch::new("refuse");
    let k = Server::keelsond(&dir, &[]);
    let o = lvmpolld_dump(&bin, &k.socket);
    let err = stderr(&o);
    assert!(
        err.contains("Daemon lvmpolld: requested protocol lvmpolld != keelson"),
        "{err}"
    );
    assert!(
        err.contains("Failed to establish connection with lvmpolld."),
        "{err}"
    );
    assert_eq!(stdout(&o), "");
    // The exit status does not tell: lvm2's `_lvmpolld_client` returns 0 (= EXIT_SUCCESS) when
    // daemon_open fails (2.03.16 and HEAD alike), so this prints an error and exits 0. Accept
    // either status, so a fixed lvmpolld passes too.
    assert!(
        matches!(o.status.code(), Some(0) | Some(1)),
        "{:?}: {err}",
        o.status
    );

    // The refusal happened after hello: keelsond never got the dump request.
    let log = k.log();
    assert!(
        log.contains("keelsond::wire: <- request = \"hello\""),
        "{log}"
    );
    assert!(
        !log.contains("keelsond::wire: <- request=\"dump\""),
        "{log}"
    );
}

// ---------------------------------------------------------------------------------------------
// Raw reply bytes, lvmpolld and keelsond side by side

#[test]
fn raw_replies_are_byte_identical() {
    let Some(bin) = lvmpolld() else { return };
    let dir = Scratch::new("raw");
    let lp = Server::lvmpolld(&bin, &dir);
    let k = Server::keelsond_as_lvmpolld(&dir);

    const INVALID: &[u8] = b"response = \"invalid\"\nreason = \"request not implemented\"\n\n##\n";
    const HELLO: &[u8] = b"response = \"OK\"\nprotocol = \"lvmpolld\"\nversion = 1\n\n##\n";
    // (request, the reply captured from lvmpolld 2.03.16: wire-captures.txt section 3)
    let cases: &[(&[u8], &[u8])] = &[
        (b"request = \"hello\"\n\n##\n", HELLO),
        (b"request = \"bogus\"\n\n##\n", INVALID),
        // Unparsable: the handler sees no tree, `request` is NONE.
        (b"garbage {{{ \n\n##\n", INVALID),
        // Empty body: zero nodes is a parse failure too.
        (b"\n##\n", INVALID),
        // Writer form, no blank line, bare string: all still hello.
        (b"request=\"hello\"\n##\n", HELLO),
        (b"request = hello\n##\n", HELLO),
        // The first of duplicate keys wins.
        (b"request = \"bogus\"\nrequest = \"hello\"\n\n##\n", INVALID),
        (
            b"request=\"dump\"\n\n##\n",
            b"# Registered polling operations\n\npoll {\n}\n\n# Registered abort operations\n\nabort {\n}\n##\n",
        ),
    ];

    // All on one connection per server (the connection survives unparsable bodies) ...
    let mut a = Raw::connect(&lp.socket);
    let mut b = Raw::connect(&k.socket);
    for (req, want) in cases {
        let real = a.exchange(req);
        let ours = b.exchange(req);
        assert_eq!(
            show(&real),
            show(want),
            "lvmpolld vs capture for {:?}",
            show(req)
        );
        assert_eq!(
            show(&ours),
            show(&real),
            "keelsond vs lvmpolld for {:?}",
            show(req)
        );
    }
    // ... and each on a fresh connection.
    for (req, _) in cases {
        let real = Raw::connect(&lp.socket).exchange(req);
        let ours = Raw::connect(&k.socket).exchange(req);
        assert_eq!(
            show(&ours),
            show(&real),
            "fresh connection, {:?}",
            show(req)
        );
    }

    // A request split across writes, the terminator itself split: one reply, as upstream.
    for split in [3usize, 20, 21] {
        let msg = b"request = \"hello\"\n\n##\n";
        let mut replies = Vec::new();
        for socket in [&lp.socket, &k.socket] {
            let mut c = Raw::connect(socket);
            c.0.write_all(&msg[..split]).unwrap();
            std::thread::sleep(Duration::from_millis(50));
            replies.push(c.exchange(&msg[split..]));
        }
        assert_eq!(show(&replies[0]), show(HELLO), "split at {split}");
        assert_eq!(show(&replies[1]), show(&replies[0]), "split at {split}");
    }
}
