//! keelsond under many, slow, hostile or unauthorised clients: nobody holds anybody else up,
//! bad input costs only its own connection, and the daemon's memory and threads stay bounded.

mod common;

use std::io::{ErrorKind, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use keelson_core::daemon::simple::Arg;

/// A connection that has sent half a request and then nothing.
fn stalled(socket: &Path) -> UnixStream {
    let mut st = raw(socket);
    st.write_all(b"request = \"hel").unwrap();
    st
}

/// A connection that sends requests until its buffers are full and never reads a reply.
fn flooder(socket: &Path) -> UnixStream {
    let mut st = raw(socket);
    st.set_nonblocking(true).unwrap();
    let msg = b"request = \"help\"\n##\n";
    for _ in 0..1_000_000 {
        match st.write(msg) {
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => return st,
            Err(e) => panic!("flooding: {e}"),
        }
    }
    panic!("a million requests were accepted without a reply being read");
}

#[test]
fn stuck_clients_never_delay_the_others() {
    let dir = scratch("stuck");
    let d = Daemon::start(&dir, &[]);
    let _half = stalled(&d.socket);
    let _flood = flooder(&d.socket);

    let slowest = std::thread::scope(|sc| {
        let workers: Vec<_> = (0..16)
            .map(|_| {
                sc.spawn(|| {
                    let mut slowest = Duration::ZERO;
                    for _ in 0..20 {
                        let t = Instant::now();
                        let mut c = connect(&d.socket);
                        let st = c.call("status", &[]).unwrap();
                        assert_eq!(str_at(&st, "response"), "OK");
                        slowest = slowest.max(t.elapsed());
                    }
                    slowest
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().unwrap())
            .max()
            .unwrap()
    });
    // Generous: a round trip takes milliseconds, while a stuck peer holding others up would
    // cost a whole client timeout (300 s). 5 s leaves room for a 2-core machine busy compiling.
    assert!(
        slowest < Duration::from_secs(5),
        "a connect+hello+status round trip took {slowest:?}"
    );
}

#[test]
fn uids_outside_the_allow_list_are_refused() {
    let dir = scratch("peercred");
    let d = Daemon::spawn(
        &dir.join("sock"),
        &["--allow-uid", "4242"],
        &dir.join("log"),
    );
    // Not ready in the usual sense (hello is refused), so wait for the socket to answer at all.
    wait_until("the socket accepts", || {
        UnixStream::connect(&d.socket).is_ok()
    });
    let mut st = raw(&d.socket);
    match exchange(&mut st, b"request = \"hello\"\n") {
        Got::Reply(r) => {
            assert!(r.contains("response = \"invalid\""), "{r}");
            assert!(r.contains("permission denied"), "{r}");
        }
        Got::Closed => panic!("no reply to a refused peer"),
    }
    assert_eq!(read_reply(&mut st), Got::Closed);
    // The client library reports it as a refused hello.
    let e = keelson_linux::daemon::client::open(&d.socket, PATIENCE, None, 0, None)
        .err()
        .expect("hello is refused");
    assert!(e.to_string().contains("invalid"), "{e}");
}

#[test]
fn refused_connections_close_at_once() {
    // The daemon closes a connection it refuses right after the reply, not whenever its accept
    // loop next looks (up to a second later): twenty in a row take milliseconds, not seconds.
    let dir = scratch("close-now");
    let d = Daemon::spawn(
        &dir.join("sock"),
        &["--allow-uid", "4242", "--max-message", "4096"],
        &dir.join("log"),
    );
    wait_until("the socket accepts", || {
        UnixStream::connect(&d.socket).is_ok()
    });
    let started = Instant::now();
    for i in 0..20 {
        let mut st = raw(&d.socket);
        let body = if i % 2 == 0 {
            b"request = \"hello\"\n".to_vec()
        } else {
            vec![b'x'; 8192]
        };
        let _ = exchange(&mut st, &body);
        assert_eq!(read_reply(&mut st), Got::Closed);
    }
    let took = started.elapsed();
    assert!(took < Duration::from_secs(5), "20 refusals took {took:?}");
}

#[test]
fn our_own_uid_is_allowed_by_default_and_when_listed() {
    let me = nix::unistd::geteuid().as_raw().to_string();
    let dir = scratch("peercred-me");
    let d = Daemon::start(&dir, &[]);
    assert_eq!(str_at(&call(&d.socket, "status", &[]), "response"), "OK");
    let dir = scratch("peercred-list");
    let d = Daemon::start(&dir, &["--allow-uid", "4242", "--allow-uid", &me]);
    assert_eq!(str_at(&call(&d.socket, "status", &[]), "response"), "OK");
}

#[test]
fn bad_input_costs_only_its_own_connection() {
    let dir = scratch("badinput");
    // No unixctl socket: its acceptor thread would count against the thread total.
    let d = Daemon::start(&dir, &["--max-message", "4096", "--unixctl", "none"]);
    let pid = d.pid();
    let rss_before = proc_status(pid, "VmRSS");

    // Garbage bodies get an answer (an unparsable request is libdaemon's request "NONE").
    let mut st = raw(&d.socket);
    for body in [
        &b"{{{ ]]] = = \"\n"[..],
        b"\x00\x01\x02\xff\xfe",
        b"request = [1, 2",
        b"request = \"no such request\"\n",
        b"",
    ] {
        match exchange(&mut st, body) {
            Got::Reply(r) => assert!(r.contains("response = \"invalid\""), "{r}"),
            Got::Closed => panic!("closed on {body:?}"),
        }
    }
    // The same connection still works after all that.
    assert!(
        matches!(exchange(&mut st, b"request = \"hello\"\n"), Got::Reply(r) if r.contains("OK"))
    );

    // A body without terminator, then EOF: no reply, just a close.
    let mut st = raw(&d.socket);
    st.write_all(b"request = \"hello\"\n").unwrap();
    st.shutdown(std::net::Shutdown::Write).unwrap();
    assert_eq!(read_reply(&mut st), Got::Closed);

    // 10 KiB against a 4 KiB cap: "message too large" (or just a close), never a crash.
    let mut st = raw(&d.socket);
    let mut big = b"request = \"set\"\nkey = \"k\"\nvalue = \"".to_vec();
    big.resize(10 * 1024, b'x');
    big.extend_from_slice(b"\"\n");
    match exchange(&mut st, &big) {
        Got::Reply(r) => assert!(
            r.contains("invalid") && r.contains("message too large"),
            "{r}"
        ),
        Got::Closed => {}
    }
    assert_eq!(read_reply(&mut st), Got::Closed);

    // Thousands of connections dropped mid-message, from a few threads at once.
    std::thread::scope(|sc| {
        for _ in 0..4 {
            sc.spawn(|| {
                for _ in 0..500 {
                    let mut st = UnixStream::connect(&d.socket).unwrap();
                    let _ = st.write_all(b"request = \"status\"\nkey = \"");
                }
            });
        }
    });

    // Clients that never read their replies, while we check the daemon still answers.
    let floods: Vec<_> = (0..4).map(|_| flooder(&d.socket)).collect();
    let half = stalled(&d.socket);
    assert_eq!(str_at(&call(&d.socket, "hello", &[]), "response"), "OK");

    let rss_after = proc_status(pid, "VmRSS");
    assert!(
        rss_after < 200 * 1024,
        "VmRSS grew from {rss_before} kB to {rss_after} kB"
    );
    // One thread serves everybody, stuck clients included: they cost a slot, not a thread.
    let busy = proc_status(pid, "Threads");
    assert_eq!(busy, 1, "{busy} threads for 5 stuck clients");
    drop(floods);
    drop(half);
    assert_eq!(str_at(&call(&d.socket, "hello", &[]), "response"), "OK");
    assert!(
        d.log_text().contains("message larger than 4096"),
        "{}",
        d.log_text()
    );
}

#[test]
fn set_get_and_unknown_requests() {
    let dir = scratch("setget");
    let d = Daemon::start(&dir, &[]);
    let mut c = connect(&d.socket);
    // Keys and values with quotes, backslashes, slashes and spaces survive the wire.
    let key = "a \"b\"/c\\d";
    let set = c
        .call(
            "set",
            &[("key", Arg::from(key)), ("value", Arg::from("v 1"))],
        )
        .unwrap();
    assert_eq!(str_at(&set, "response"), "OK");
    let got = c.call("get", &[("key", Arg::from(key))]).unwrap();
    assert_eq!(str_at(&got, "value"), "v 1");
    let set = c
        .call("set", &[("key", Arg::from(key)), ("value", Arg::Int(-7))])
        .unwrap();
    assert_eq!(str_at(&set, "previous"), "v 1");
    let got = c.call("get", &[("key", Arg::from(key))]).unwrap();
    assert_eq!(str_at(&got, "value"), "-7");
    let missing = c.call("get", &[("key", Arg::from("nope"))]).unwrap();
    assert_eq!(str_at(&missing, "response"), "not_found");
    let failed = c.call("get", &[]).unwrap();
    assert_eq!(str_at(&failed, "response"), "failed");
    let unknown = c.call("frobnicate", &[]).unwrap();
    assert_eq!(str_at(&unknown, "response"), "invalid");
    assert_eq!(str_at(&unknown, "reason"), "request not implemented");
    let help = c.call("help", &[]).unwrap();
    assert!(text(&help).contains("status"), "{}", text(&help));
}

#[test]
fn hello_and_dump_bytes_match_libdaemon() {
    // lvmpolld's hello, byte for byte (config-tree.md §3.3, wire captures): the reply body ends
    // in a newline, so a blank line precedes the `##`.
    let dir = scratch("bytes");
    let d = Daemon::start(&dir, &["--protocol", "lvmpolld", "--protocol-version", "1"]);
    let mut st = raw(&d.socket);
    assert_eq!(
        exchange(&mut st, b"request = \"hello\"\n"),
        Got::Reply("response = \"OK\"\nprotocol = \"lvmpolld\"\nversion = 1\n".into())
    );
    // Real lvm clients send `key =value` (the trailing-space key quirk).
    assert!(matches!(
        exchange(&mut st, b"request =\"hello\"\n"),
        Got::Reply(r) if r.contains("lvmpolld")
    ));
    // lvmpolld's dump is raw text ending in `}`, not a response tree.
    match exchange(&mut st, b"request = \"dump\"\n") {
        Got::Reply(r) => assert!(
            r.starts_with("# Registered polling") && r.ends_with('}'),
            "{r}"
        ),
        Got::Closed => panic!("no dump"),
    }
}
