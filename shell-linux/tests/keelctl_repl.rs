//! `keelctl VERB RESOURCE [--flags]` (the replication verbs of `repl::admin::TABLE`) as a user
//! runs them: against a real keelsond with no resources (every verb arrives and answers
//! drbdsetup's "Unknown resource" line and exit status; `status` of nothing is empty text and
//! valid JSON), with words that are not a command (exit 20, nothing sent), and against a fake
//! server that records the request bytes and answers a status with a resync in progress, which
//! keelctl renders on its side.

mod common;

use std::io::Write;
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::process::{Command, Stdio};

use common::*;
use keelson_core::jsonrpc::json;
use keelson_core::repl::admin::{PeerStatus, Resync, Status, Verb, TABLE};
use keelson_core::repl::conn::{ConnState, DiskState, ReplState, Role};

fn served(sock: &Path) -> i64 {
    int_at(&call(sock, "status", &[]), "served")
}

#[test]
fn every_verb_reaches_keelsond_and_unknown_resources_fail_like_drbdsetup() {
    let dir = scratch("repl-verbs");
    let d = Daemon::start(&dir, &[]);
    let sock = s(&d.socket);
    let mut runs = 0;
    let before = served(&d.socket);
    for v in TABLE.iter().filter(|v| v.verb != Verb::Status) {
        let mut args = vec!["-s", sock, v.name, "r0"];
        args.extend(v.flags.iter().map(|f| match f.name() {
            "force" => "--force",
            "discard-my-data" => "--discard-my-data",
            "clear-bitmap" => "--clear-bitmap",
            other => panic!("a flag this test does not know: {other}"),
        }));
        let out = keelctl(&args);
        runs += 1;
        assert_eq!(out.status.code(), Some(10), "{}: {}", v.name, stderr(&out));
        assert_eq!(
            stderr(&out),
            "r0: Failure: (158) Unknown resource\n",
            "{}",
            v.name
        );
        assert_eq!(stdout(&out), "", "{}", v.name);
    }
    // Each run is a hello and one request (the probes add their own).
    assert!(served(&d.socket) - before >= 2 * runs);

    let out = keelctl(&["-s", sock, "status", "r0"]);
    assert_eq!(out.status.code(), Some(10));
    assert_eq!(stderr(&out), "r0: Failure: (158) Unknown resource\n");

    // The daemon lists the requests with the table's help.
    let help = stdout(&keelctl(&["-s", sock, "request", "help"]));
    for v in TABLE {
        assert!(
            help.contains(&format!("{} = \"{}\"", v.request, v.help)),
            "{help}"
        );
    }
    // The raw request shows the data the verbs carry.
    let raw = keelctl(&[
        "-s",
        sock,
        "request",
        "repl/primary",
        "resource=r0",
        "force=1",
    ]);
    assert_eq!(raw.status.code(), Some(2));
    assert_eq!(
        stdout(&raw),
        "response = \"failed\"\nreason = \"r0: Failure: (158) Unknown resource\"\ndrbd_code = 158\n"
    );
    let raw = keelctl(&["-s", sock, "request", "repl/primary"]);
    assert!(
        stdout(&raw)
            .contains("reason = \"primary: missing resource; usage: primary RESOURCE [--force]\""),
        "{}",
        stdout(&raw)
    );
}

#[test]
fn status_of_an_empty_agent() {
    let dir = scratch("repl-status");
    let d = Daemon::start(&dir, &[]);
    let sock = s(&d.socket);
    let out = keelctl(&["-s", sock, "status"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "# No currently configured DRBD found.\n");
    for args in [&["status", "--json"][..], &["status", "all", "--json"]] {
        let mut a = vec!["-s", sock];
        a.extend_from_slice(args);
        let out = keelctl(&a);
        assert!(out.status.success(), "{}", stderr(&out));
        let text = stdout(&out);
        let v = json::parse(text.trim_end().as_bytes()).expect("valid JSON");
        assert!(v.as_array().unwrap().get(0).is_none(), "{text}");
        python_json(&text);
    }
}

/// An independent JSON parser agrees, where python3 is installed.
fn python_json(text: &str) {
    let Ok(mut p) = Command::new("python3")
        .args([
            "-c",
            "import json,sys; v=json.load(sys.stdin); print(type(v).__name__, len(v))",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
    else {
        eprintln!("note: python3 not found; JSON checked by keelson-core only");
        return;
    };
    p.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = p.wait_with_output().unwrap();
    assert!(out.status.success(), "python3 rejects {text:?}");
    let summary = String::from_utf8(out.stdout).unwrap();
    assert!(summary.starts_with("list "), "{summary}");
}

#[test]
fn words_that_are_not_commands_fail_before_connecting() {
    let dir = scratch("repl-words");
    let sock = dir.join("nobody");
    let cases: [(&[&str], &str); 6] = [
        (
            &["primary"],
            "keelctl: primary: missing resource; usage: primary RESOURCE [--force]\n",
        ),
        (
            &["secondary", "r0", "--force"],
            "keelctl: secondary: unknown flag '--force'; usage: secondary RESOURCE (keelctl's own \
             options, such as --socket, go before the verb)\n",
        ),
        (
            &["down", "r0", "r1"],
            "keelctl: down: unexpected argument 'r1'; usage: down RESOURCE\n",
        ),
        (
            &["down", "all"],
            "keelctl: down: takes one resource, not 'all'; usage: down RESOURCE\n",
        ),
        (
            &["attach", "a/b"],
            "keelctl: attach: 'a/b' is not a resource name (1 to 63 of A-Z a-z 0-9 _ - . +, not \
             starting with -)\n",
        ),
        (
            &["promote", "r0"],
            "keelctl: unknown command 'promote'; commands: up, down, primary, secondary, connect, \
             disconnect, attach, detach, invalidate, invalidate-remote, pause-sync, resume-sync, \
             new-current-uuid, status (keelctl --help lists every command)\n",
        ),
    ];
    for (words, err) in cases {
        let mut a = vec!["-s", s(&sock)];
        a.extend_from_slice(words);
        let out = keelctl(&a);
        assert_eq!(out.status.code(), Some(20), "{words:?}: {}", stderr(&out));
        assert_eq!(stderr(&out), err);
    }
    // A good command with nobody listening is exit 1, as `keelctl request` is.
    let out = keelctl(&["-s", s(&sock), "primary", "r0"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("cannot connect"), "{}", stderr(&out));
    // Help comes from the table too.
    let out = keelctl(&["connect", "--help"]);
    assert!(out.status.success());
    assert!(stdout(&out).contains("Usage: keelctl connect RESOURCE [--discard-my-data]"));
    assert!(stdout(&out).contains("Sends the libdaemon request \"repl/connect\"."));
    let out = keelctl(&["--help"]);
    assert!(stdout(&out).contains("  new-current-uuid RESOURCE [--clear-bitmap]"));
}

/// Answers hello, records one request, answers it with `reply`.
fn scripted_server(socket: &Path, reply: Vec<u8>) -> std::thread::JoinHandle<String> {
    let _ = std::fs::remove_file(socket);
    let listener = UnixListener::bind(socket).unwrap();
    std::thread::spawn(move || {
        let (mut st, _) = listener.accept().unwrap();
        st.set_read_timeout(Some(PATIENCE)).unwrap();
        let Got::Reply(hello) = read_reply(&mut st) else {
            panic!("no hello")
        };
        assert!(hello.contains("request = \"hello\""), "{hello}");
        st.write_all(b"response = \"OK\"\nprotocol = \"keelson\"\nversion = 1\n\n##\n")
            .unwrap();
        let Got::Reply(request) = read_reply(&mut st) else {
            panic!("no request")
        };
        st.write_all(&reply).unwrap();
        st.write_all(TERMINATOR).unwrap();
        request
    })
}

fn syncing() -> Status<'static> {
    Status {
        name: "r0",
        node_id: Some(0),
        role: Role::Secondary,
        disk: DiskState::Inconsistent,
        size_kib: Some(102_716),
        peer: Some(PeerStatus {
            name: "alpha",
            node_id: Some(1),
            connection: ConnState::Connected,
            role: Role::Primary,
            replication: ReplState::SyncTarget,
            disk: DiskState::UpToDate,
            out_of_sync_kib: 73_580,
            paused_user: false,
            paused_peer: false,
            resync: Some(Resync {
                total_bits: 25_679,
                remaining_bits: 18_395,
                failed_bits: 0,
                speed_kib: 2_432,
                average_kib: 2_210,
                want_kib: Some(102_400),
                eta_s: Some(12),
                stalled: false,
            }),
        }),
    }
}

fn status_reply() -> Vec<u8> {
    let mut body = b"response = \"OK\"\n".to_vec();
    syncing().write_tree(&mut body).unwrap();
    body
}

#[test]
fn the_wire_carries_data_and_keelctl_renders_it() {
    let dir = scratch("repl-wire");
    let sock = dir.join("sock");
    let server = scripted_server(&sock, b"response = \"OK\"\n".to_vec());
    let out = keelctl(&["-s", s(&sock), "new-current-uuid", "--clear-bitmap", "r0"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "");
    assert_eq!(
        server.join().unwrap(),
        "request = \"repl/new-current-uuid\"\nresource = \"r0\"\nclear_bitmap = 1\n"
    );

    let server = scripted_server(&sock, status_reply());
    let out = keelctl(&["-s", s(&sock), "status"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(server.join().unwrap(), "request = \"repl/status\"\n");
    assert_eq!(
        stdout(&out),
        "r0 role:Secondary\n  disk:Inconsistent\n  alpha role:Primary\n    \
         replication:SyncTarget peer-disk:UpToDate done:28.37\n\
         \t[====>...............] sync'ed: 28.4% (73580/102716)K\n\
         \tfinish: 0:00:12 speed: 2,432 (2,210) want: 102,400 K/sec\n\n"
    );

    let server = scripted_server(&sock, status_reply());
    let out = keelctl(&["-s", s(&sock), "status", "r0", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        server.join().unwrap(),
        "request = \"repl/status\"\nresource = \"r0\"\n"
    );
    let text = stdout(&out);
    let v = json::parse(text.trim_end().as_bytes()).unwrap();
    let r0 = v.as_array().unwrap().get(0).unwrap().as_object().unwrap();
    assert_eq!(
        r0.get("role").unwrap().as_str().unwrap().as_plain(),
        Some("Secondary")
    );
    assert!(
        text.contains("\"replication-state\": \"SyncTarget\""),
        "{text}"
    );
    python_json(&text);

    // A failure with a state-change code: drbdsetup's line and exit status.
    let server = scripted_server(
        &sock,
        b"response = \"failed\"\nreason = \"whatever\"\ndrbd_code = -2\n".to_vec(),
    );
    let out = keelctl(&["-s", s(&sock), "primary", "r0"]);
    server.join().unwrap();
    assert_eq!(out.status.code(), Some(17));
    assert_eq!(
        stderr(&out),
        "r0: State change failed: (-2) Need access to UpToDate data\n"
    );

    // A reply keelctl cannot read is exit 20 with the reason.
    let server = scripted_server(
        &sock,
        b"response = \"OK\"\nresource {\n\tname = \"r0\"\n\trole = \"Boss\"\n}\n".to_vec(),
    );
    let out = keelctl(&["-s", s(&sock), "status"]);
    server.join().unwrap();
    assert_eq!(out.status.code(), Some(20));
    assert!(
        stderr(&out).contains("status reply: role 'Boss' is not a DRBD state name"),
        "{}",
        stderr(&out)
    );
    let server = scripted_server(
        &sock,
        b"response = \"invalid\"\nreason = \"request not implemented\"\n".to_vec(),
    );
    let out = keelctl(&["-s", s(&sock), "detach", "r0"]);
    server.join().unwrap();
    assert_eq!(out.status.code(), Some(20));
    assert_eq!(
        stderr(&out),
        "keelctl: detach: request not implemented (invalid)\n"
    );
}
