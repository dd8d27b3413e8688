//! `keelctl request` as a user runs it: against keelsond, against nothing, against fake servers
//! that stall or record the wire; exit statuses and messages.

mod common;

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;
use keelson_core::config::Lookup;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// Kills whatever keelsond answers on a socket when dropped (for daemons keelctl started).
struct SocketGuard(PathBuf);

impl Drop for SocketGuard {
    fn drop(&mut self) {
        let c = keelson_linux::daemon::client::open(&self.0, Duration::from_secs(1), None, 0, None);
        if let Ok(status) = c.and_then(|mut c| c.call("status", &[])) {
            let pid = status.view().find_int64("pid", 0);
            if pid > 0 {
                let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
            }
        }
    }
}

#[test]
fn autostart_starts_keelsond_when_nothing_answers() {
    let dir = scratch("autostart");
    let sock = dir.join("sock");
    let _guard = SocketGuard(sock.clone());
    let out = keelctl(&["--autostart", "-s", s(&sock), "request", "status"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let reply = stdout(&out);
    assert!(reply.contains("response = \"OK\""), "{reply}");
    let pid: i32 = reply
        .lines()
        .find_map(|l| l.strip_prefix("pid = "))
        .expect("status names the pid")
        .parse()
        .unwrap();
    let daemon = PidGuard(pid);
    // It keeps a pidfile beside the socket: that lock is what serialises racing autostarts.
    assert_eq!(pidfile_pid(&dir.join("sock.pid")), Some(pid));
    // It stays up for the next client, which needs no autostart.
    let again = keelctl(&["-s", s(&sock), "request", "status"]);
    assert!(
        stdout(&again).contains(&format!("pid = {pid}")),
        "{}",
        stdout(&again)
    );
    kill(Pid::from_raw(daemon.0), Signal::SIGTERM).unwrap();
    wait_until("the autostarted daemon exits", || pid_gone(daemon.0));
    assert!(!sock.exists());
    assert!(!dir.join("sock.pid").exists());
}

#[test]
fn concurrent_autostarts_all_succeed_with_one_daemon() {
    let dir = scratch("autostart-race");
    let sock = dir.join("sock");
    let _guard = SocketGuard(sock.clone());
    let outs: Vec<_> = std::thread::scope(|sc| {
        let runs: Vec<_> = (0..8)
            .map(|_| sc.spawn(|| keelctl(&["--autostart", "-s", s(&sock), "request", "status"])))
            .collect();
        runs.into_iter().map(|r| r.join().unwrap()).collect()
    });
    let pids: std::collections::BTreeSet<String> = outs
        .iter()
        .map(|o| {
            assert!(o.status.success(), "{}", stderr(o));
            stdout(o)
                .lines()
                .find(|l| l.starts_with("pid = "))
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(pids.len(), 1, "several daemons answered: {pids:?}");
}

#[test]
fn autostart_uses_a_running_daemon() {
    let dir = scratch("autostart-running");
    let d = Daemon::start(&dir, &[]);
    let out = keelctl(&["--autostart", "-s", s(&d.socket), "request", "status"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains(&format!("pid = {}", d.pid())));
}

#[test]
fn autostart_that_fails_says_why() {
    // A regular file sits where the socket should be: connecting is refused, the started
    // keelsond will not replace what is not a socket, and keelctl passes on its reason.
    let dir = scratch("autostart-fails");
    let sock = dir.join("sock");
    std::fs::write(&sock, "").unwrap();
    let out = keelctl(&["--autostart", "-s", s(&sock), "request", "status"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("exited with") && err.contains("not a socket"),
        "{err}"
    );
    assert!(sock.is_file());
}

#[test]
fn missing_socket_without_autostart_cannot_connect() {
    let dir = scratch("nosock");
    let out = keelctl(&["-s", s(&dir.join("sock")), "request", "hello"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("cannot connect"), "{}", stderr(&out));
    assert!(stdout(&out).is_empty());
}

#[test]
fn a_silent_server_times_out() {
    let dir = scratch("silent");
    let sock = dir.join("sock");
    let listener = UnixListener::bind(&sock).unwrap();
    // Accepts, reads whatever comes, never answers; ends when keelctl hangs up.
    let server = std::thread::spawn(move || {
        let (mut st, _) = listener.accept().unwrap();
        st.set_read_timeout(Some(PATIENCE)).unwrap();
        let mut sink = Vec::new();
        let _ = st.read_to_end(&mut sink);
    });
    let out = keelctl(&["--timeout", "0.5", "-s", s(&sock), "request", "hello"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("timed out"), "{}", stderr(&out));
    server.join().unwrap();
}

#[test]
fn protocol_and_version_are_checked_like_daemon_open() {
    let dir = scratch("proto");
    let d = Daemon::start(&dir, &[]);
    let sock = s(&d.socket);
    let out = keelctl(&["--protocol", "other", "-s", sock, "request", "status"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("requested protocol other != keelson"),
        "{}",
        stderr(&out)
    );
    let out = keelctl(&["--protocol-version", "2", "-s", sock, "request", "status"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("requested protocol version 2 != 1"),
        "{}",
        stderr(&out)
    );
    let out = keelctl(&[
        "--protocol",
        "keelson",
        "--protocol-version",
        "1",
        "-s",
        sock,
        "request",
        "status",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn failed_and_invalid_replies_exit_2() {
    let dir = scratch("exit2");
    let d = Daemon::start(&dir, &[]);
    let sock = s(&d.socket);
    // `get` without a key: response = "failed".
    let out = keelctl(&["-s", sock, "request", "get"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stdout(&out).contains("response = \"failed\""),
        "{}",
        stdout(&out)
    );
    // An unknown request: response = "invalid".
    let out = keelctl(&["-s", sock, "request", "frobnicate"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stdout(&out).contains("request not implemented"));
    // not_found is an answer, not a failure.
    let out = keelctl(&["-s", sock, "request", "get", "key=nope"]);
    assert_eq!(out.status.code(), Some(0));
    // A malformed argument is the user's mistake: status 1, nothing sent.
    let out = keelctl(&["-s", sock, "request", "get", "novalue"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("key=value"), "{}", stderr(&out));
}

/// A fake daemon that answers `hello` as keelson 1 and `OK` to one more request, and returns
/// that request's body as it came over the wire.
fn recording_server(socket: &Path) -> std::thread::JoinHandle<String> {
    let listener = UnixListener::bind(socket).unwrap();
    std::thread::spawn(move || {
        let (mut st, _) = listener.accept().unwrap();
        st.set_read_timeout(Some(PATIENCE)).unwrap();
        let hello = read_message(&mut st);
        assert!(hello.contains("request = \"hello\""), "{hello}");
        st.write_all(b"response = \"OK\"\nprotocol = \"keelson\"\nversion = 1\n\n##\n")
            .unwrap();
        let request = read_message(&mut st);
        st.write_all(b"response = \"OK\"\n\n##\n").unwrap();
        request
    })
}

fn read_message(st: &mut UnixStream) -> String {
    match read_reply(st) {
        Got::Reply(body) => body,
        Got::Closed => panic!("the client hung up mid-message"),
    }
}

#[test]
fn arguments_are_typed_like_daemon_send_simple() {
    let dir = scratch("typed");
    let sock = dir.join("sock");
    let server = recording_server(&sock);
    let out = keelctl(&[
        "-s",
        s(&sock),
        "request",
        "set",
        "n=5",
        "s=\"5\"",
        "neg=-3",
        "word=abc",
        "quoted=\"a \"b\" c\"",
        "empty=",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        server.join().unwrap(),
        "request = \"set\"\nn = 5\ns = \"5\"\nneg = -3\nword = \"abc\"\nquoted = \"a \\\"b\\\" c\"\nempty = \"\"\n"
    );
}

#[test]
fn integer_and_string_values_reach_keelsond_as_such() {
    // keelsond's `set` stores an integer as its decimal text, so the types show in `state`
    // only as values; the wire test above checks the typing itself. Here: both round-trip.
    let dir = scratch("typed-real");
    let d = Daemon::start(&dir, &[]);
    let sock = s(&d.socket);
    for (arg, want) in [
        ("value=5", "5"),
        ("value=\"05\"", "05"),
        ("value=x y", "x y"),
    ] {
        let out = keelctl(&["-s", sock, "request", "set", "key=k", arg]);
        assert!(out.status.success(), "{}", stderr(&out));
        let out = keelctl(&["-s", sock, "request", "get", "key=k"]);
        assert!(
            stdout(&out).contains(&format!("value = \"{want}\"")),
            "{arg}: {}",
            stdout(&out)
        );
    }
}
