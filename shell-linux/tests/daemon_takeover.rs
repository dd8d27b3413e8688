//! `keelsond --takeover`: a new instance takes the socket and the state from the running one
//! while clients keep working, and not one of their requests is refused, cut or lost.

mod common;

use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::*;
use keelson_core::daemon::simple::Arg;
use keelson_linux::daemon::client;

/// One client's loop: connect → hello → `set key=cI value=N` → `get key=cI` == N, N counting
/// up, until `stop`. Returns every failure, described, and the last N it set.
fn client_loop(
    socket: &Path,
    i: usize,
    stop: &AtomicBool,
    rounds: &AtomicU64,
) -> (Vec<String>, i64) {
    let key = format!("c{i}");
    let mut errors = Vec::new();
    let mut n: i64 = 0;
    while !stop.load(Ordering::SeqCst) {
        n += 1;
        let round = || -> Result<(), String> {
            let mut c = client::open(socket, PATIENCE, Some("keelson"), 1, None)
                .map_err(|e| format!("open: {e}"))?;
            let set = c
                .call(
                    "set",
                    &[("key", Arg::from(key.as_str())), ("value", Arg::Int(n))],
                )
                .map_err(|e| format!("set {n}: {e}"))?;
            if str_at(&set, "response") != "OK" {
                return Err(format!("set {n}: {}", text(&set)));
            }
            let got = c
                .call("get", &[("key", Arg::from(key.as_str()))])
                .map_err(|e| format!("get {n}: {e}"))?;
            if str_at(&got, "value") != n.to_string() {
                return Err(format!("get {n}: {}", text(&got)));
            }
            Ok(())
        };
        if let Err(e) = round() {
            errors.push(format!("{key}: {e}"));
        }
        rounds.fetch_add(1, Ordering::SeqCst);
    }
    (errors, n)
}

/// Sets the flag when dropped, so a failed assertion still stops the client threads that
/// `thread::scope` is about to wait for.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

#[test]
fn takeover_under_load_loses_nothing() {
    let dir = scratch("takeover");
    let pid = dir.join("pid");
    let mut a = Daemon::start(&dir, &["--pidfile", s(&pid)]);
    let sock = a.socket.clone();
    let pre = [("key", "pre".into()), ("value", "before".into())];
    assert_eq!(str_at(&call(&sock, "set", &pre), "response"), "OK");

    let stop = AtomicBool::new(false);
    let rounds = AtomicU64::new(0);
    let (b, served_before, results) = std::thread::scope(|sc| {
        let clients: Vec<_> = (0..8)
            .map(|i| {
                let (sock, stop, rounds) = (&sock, &stop, &rounds);
                sc.spawn(move || client_loop(sock, i, stop, rounds))
            })
            .collect();
        let stopper = StopOnDrop(&stop);
        let started = Instant::now();

        // About a second on A (the pause only shapes the run; nothing is timed)...
        wait_until("the clients get going", || {
            rounds.load(Ordering::SeqCst) >= 40
        });
        std::thread::sleep(Duration::from_secs(1).saturating_sub(started.elapsed()));
        let before = call(&sock, "status", &[]);
        assert_eq!(int_at(&before, "pid"), i64::from(a.pid()));
        assert_eq!(int_at(&before, "generation"), 0);

        // ...then B takes over while they keep going...
        let b = Daemon::spawn(
            &sock,
            &["--pidfile", s(&pid), "--takeover"],
            &dir.join("logb"),
        );
        assert_eq!(a.wait_exit().code(), Some(0), "A: {}", a.log_text());
        // The drain ended because A's connections finished, not because the wait ran out.
        assert!(
            !a.log_text().contains("still open after"),
            "{}",
            a.log_text()
        );
        let at_handover = rounds.load(Ordering::SeqCst);
        wait_until("B holds the pidfile", || pidfile_pid(&pid) == Some(b.pid()));

        // ...and run on B until about three seconds in all.
        wait_until("clients run on B", || {
            rounds.load(Ordering::SeqCst) >= at_handover + 40
        });
        std::thread::sleep(Duration::from_secs(3).saturating_sub(started.elapsed()));
        drop(stopper);
        let results: Vec<_> = clients.into_iter().map(|c| c.join().unwrap()).collect();
        (b, int_at(&before, "served"), results)
    });

    let errors: Vec<&String> = results.iter().flat_map(|(e, _)| e).collect();
    assert!(
        errors.is_empty(),
        "{} failed rounds of {}:\n{}",
        errors.len(),
        rounds.load(Ordering::SeqCst),
        errors
            .iter()
            .map(|e| e.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    );
    let after = call(&sock, "status", &[]);
    assert_eq!(int_at(&after, "pid"), i64::from(b.pid()));
    assert_eq!(int_at(&after, "generation"), 1);
    let served_after = int_at(&after, "served");
    assert!(
        served_after > served_before,
        "served went from {served_before} to {served_after}"
    );
    // B has what was set before the takeover and every client's last value.
    assert_eq!(
        str_at(&call(&sock, "get", &[("key", "pre".into())]), "value"),
        "before"
    );
    for (i, (_, last)) in results.iter().enumerate() {
        let key = format!("c{i}");
        let got = call(&sock, "get", &[("key", Arg::from(key.as_str()))]);
        assert_eq!(str_at(&got, "value"), last.to_string(), "{key}");
    }
}

#[test]
fn takeover_carries_any_key() {
    // Keys are client bytes: spaces, slashes, braces and quotes must survive the handover.
    let dir = scratch("takeover-keys");
    let mut a = Daemon::start(&dir, &[]);
    let keys = [
        "a b",
        "x/y",
        "{",
        "q\"uote",
        "back\\slash",
        "#hash",
        "new\nline",
    ];
    for (i, k) in keys.iter().enumerate() {
        let set = call(
            &a.socket,
            "set",
            &[("key", Arg::from(*k)), ("value", Arg::Int(i as i64))],
        );
        assert_eq!(str_at(&set, "response"), "OK");
    }
    let mut b = Daemon::spawn(&a.socket, &["--takeover"], &dir.join("logb"));
    assert_eq!(a.wait_exit().code(), Some(0), "{}", a.log_text());
    b.wait_ready();
    assert_eq!(int_at(&call(&b.socket, "status", &[]), "generation"), 1);
    for (i, k) in keys.iter().enumerate() {
        let got = call(&b.socket, "get", &[("key", Arg::from(*k))]);
        assert_eq!(str_at(&got, "value"), i.to_string(), "key {k:?}");
    }
    // And B hands over in turn.
    let mut c = Daemon::spawn(&b.socket, &["--takeover"], &dir.join("logc"));
    assert_eq!(b.wait_exit().code(), Some(0), "{}", b.log_text());
    c.wait_ready();
    assert_eq!(int_at(&call(&c.socket, "status", &[]), "generation"), 2);
    assert_eq!(
        str_at(&call(&c.socket, "get", &[("key", "a b".into())]), "value"),
        "0"
    );
}

#[test]
fn takeover_waits_for_a_client_between_requests() {
    // A client that said hello on A and sends its request only after the takeover started
    // must still get its answer (from A, which then hands over), not a closed connection.
    let dir = scratch("takeover-mid");
    let mut a = Daemon::start(&dir, &["--takeover-wait", "5"]);
    let mut c = connect(&a.socket);
    let mut b = Daemon::spawn(&a.socket, &["--takeover"], &dir.join("logb"));
    wait_until("A starts draining", || a.log_text().contains("draining"));
    // The client thinks a while between hello and its request (longer than the connection
    // thread's 100 ms poll tick, at which a careless drain would close it).
    std::thread::sleep(Duration::from_millis(300));
    let set = c
        .call("set", &[("key", "k".into()), ("value", "v".into())])
        .expect("the request on the open connection is answered");
    assert_eq!(str_at(&set, "response"), "OK");
    drop(c);
    assert_eq!(a.wait_exit().code(), Some(0), "{}", a.log_text());
    b.wait_ready();
    assert_eq!(
        str_at(&call(&b.socket, "get", &[("key", "k".into())]), "value"),
        "v"
    );
}

#[test]
fn takeover_of_nothing_fails_cleanly() {
    let dir = scratch("takeover-none");
    let mut b = Daemon::spawn(&dir.join("sock"), &["--takeover"], &dir.join("log"));
    assert_eq!(b.wait_exit().code(), Some(1));
    assert!(b.log_text().contains("takeover"), "{}", b.log_text());
    assert!(!dir.join("sock").exists());
}

#[test]
fn a_stuck_client_delays_a_takeover_only_by_the_takeover_wait() {
    let dir = scratch("takeover-stuck");
    let mut a = Daemon::start(&dir, &["--takeover-wait", "1"]);
    let set = call(
        &a.socket,
        "set",
        &[("key", "k".into()), ("value", "v".into())],
    );
    assert_eq!(str_at(&set, "response"), "OK");
    // Half a request, then nothing: the drain cannot wait for it to finish.
    let mut stuck = raw(&a.socket);
    stuck.write_all(b"request = \"get\"\nkey = ").unwrap();
    let mut b = Daemon::spawn(&a.socket, &["--takeover"], &dir.join("logb"));
    assert_eq!(a.wait_exit().code(), Some(0), "{}", a.log_text());
    assert!(
        a.log_text().contains("still open after"),
        "{}",
        a.log_text()
    );
    // The stuck client is closed, never answered from a state that moved on.
    assert_eq!(read_reply(&mut stuck), Got::Closed);
    b.wait_ready();
    assert_eq!(
        str_at(&call(&b.socket, "get", &[("key", "k".into())]), "value"),
        "v"
    );
}
