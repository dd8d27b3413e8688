//! Unit tests of the reconnect FSM: the facts of ovs-sessions.md §1, one behaviour per test.

use super::{Action, Reconnect, State, EOF, RECEIVE_GUARD_OFF, UNLIMITED_TRIES};

/// Fails `n` consecutive attempts and returns the backoffs chosen.
fn backoffs(r: &mut Reconnect, now: &mut i64, n: usize) -> std::vec::Vec<i32> {
    let mut out = std::vec::Vec::new();
    for _ in 0..n {
        *now += r.timeout(*now).unwrap() as i64;
        assert_eq!(r.run(*now), Some(Action::Connect));
        r.connecting(*now);
        r.connect_failed(*now, 111);
        out.push(r.stats(*now).backoff);
    }
    out
}

#[test]
fn defaults() {
    let r = Reconnect::new(1000);
    assert_eq!(r.state(), State::Void);
    assert_eq!(
        (r.min_backoff(), r.max_backoff(), r.probe_interval()),
        (1000, 8000, 5000)
    );
    assert_eq!(r.max_tries(), UNLIMITED_TRIES);
    assert_eq!(r.timeout(1000), None);
    let s = r.stats(1500);
    assert_eq!(
        (s.last_connected, s.msec_since_connect, s.state_elapsed),
        (None, None, 500)
    );
}

#[test]
fn backoff_doubles_to_max() {
    // §1.5: 0 → 1000 → 2000 → 4000 → 8000 → 8000.
    let mut r = Reconnect::new(1000);
    let mut now = 1000;
    r.enable(now);
    assert_eq!(r.stats(now).backoff, 0);
    assert_eq!(
        backoffs(&mut r, &mut now, 5),
        [1000, 2000, 4000, 8000, 8000]
    );
    let mut r2 = Reconnect::new(0);
    r2.set_backoff(1000, 5000);
    r2.enable(0);
    let mut t = 0;
    assert_eq!(backoffs(&mut r2, &mut t, 5), [1000, 2000, 4000, 5000, 5000]);
}

#[test]
fn set_backoff_raw_max_quirk() {
    // §1.2: in BACKOFF the raw `max` argument clamps the current backoff.
    let mut r = Reconnect::new(0);
    r.enable(0);
    r.connect_failed(0, 0);
    assert_eq!(r.stats(0).backoff, 1000);
    r.set_backoff(0, 0);
    assert_eq!(
        (r.min_backoff(), r.max_backoff(), r.stats(0).backoff),
        (1000, 8000, 0)
    );
    assert_eq!(r.run(0), Some(Action::Connect));
    r.set_backoff(3000, 2000);
    assert_eq!((r.min_backoff(), r.max_backoff()), (3000, 3000));
}

#[test]
fn probe_interval_clamp() {
    let mut r = Reconnect::new(0);
    r.set_probe_interval(10);
    assert_eq!(r.probe_interval(), 1000);
    r.set_probe_interval(0);
    assert_eq!(r.probe_interval(), 0);
    r.set_probe_interval(-5);
    assert_eq!(r.probe_interval(), 1000);
}

#[test]
fn connected_counts_attempt_from_any_state() {
    let mut r = Reconnect::new(0);
    r.connected(10);
    let s = r.stats(10);
    assert_eq!(
        (
            s.n_attempted_connections,
            s.n_successful_connections,
            s.seqno
        ),
        (1, 1, 1)
    );
    assert_eq!(s.last_connected, Some(10));
    assert_eq!(s.msec_since_connect, Some(0));
}

#[test]
fn force_reconnect_bookkeeping() {
    // §1.5: force_reconnect while connecting then connect_failed counts two attempts.
    let mut r = Reconnect::new(1000);
    r.enable(1000);
    r.connecting(1000);
    r.force_reconnect(1200);
    assert_eq!(r.run(1200), Some(Action::Disconnect));
    r.connect_failed(1200, 0);
    let s = r.stats(1200);
    assert_eq!(
        (s.state, s.backoff, s.n_attempted_connections),
        (State::Backoff, 1000, 2)
    );
    // From ACTIVE: seqno and duration, but no last_disconnected.
    let mut r = Reconnect::new(0);
    r.connected(0);
    r.force_reconnect(500);
    let s = r.stats(600);
    assert_eq!(
        (s.seqno, s.total_connected_duration, s.last_disconnected),
        (2, 500, None)
    );
    r.disconnected(600, EOF);
    assert_eq!(r.stats(600).last_disconnected, None);
    assert_eq!(r.stats(600).backoff, 1000);
    // Elsewhere nothing.
    let mut r = Reconnect::new(0);
    r.force_reconnect(5);
    assert_eq!(r.state(), State::Void);
}

#[test]
fn disconnected_noop_in_void_and_backoff() {
    let mut r = Reconnect::new(0);
    r.disconnected(1, 0);
    assert_eq!(r, Reconnect::new(0));
    r.enable(0);
    let before = r.clone();
    r.disconnected(5, 0);
    assert_eq!(r, before);
}

#[test]
fn long_connection_resets_backoff_brief_preserves() {
    let mut r = Reconnect::new(0);
    r.enable(0);
    let mut now = 0;
    backoffs(&mut r, &mut now, 3); // backoff 4000
    now += 4000;
    r.connected(now);
    r.activity(now + 100);
    r.disconnected(now + 200, 0);
    assert_eq!(
        r.stats(now + 200).backoff,
        8000,
        "brief connection keeps doubling"
    );
    let mut r = Reconnect::new(0);
    r.enable(0);
    let mut now = 0;
    backoffs(&mut r, &mut now, 2); // backoff 2000
    now += 2000;
    r.connected(now);
    r.activity(now + 2000);
    r.disconnected(now + 2500, 0);
    assert_eq!(r.stats(now + 2500).backoff, 1000, "long connection resets");
}

#[test]
fn max_tries_and_free_tries() {
    let mut r = Reconnect::new(0);
    r.set_max_tries(2);
    r.enable(0);
    assert_eq!(r.max_tries(), 1);
    r.connect_failed(0, 0);
    assert_eq!((r.max_tries(), r.state()), (0, State::Backoff));
    r.connect_failed(1000, 0);
    assert_eq!(r.state(), State::Void);
    r.enable(2000);
    assert_eq!(r.state(), State::Void);

    let mut r = Reconnect::new(0);
    r.set_backoff_free_tries(3);
    r.enable(0);
    let mut now = 0;
    assert_eq!(backoffs(&mut r, &mut now, 4), [0, 0, 1000, 2000]);
}

#[test]
fn receive_guard() {
    let mut r = Reconnect::new(1000);
    r.enable(1000);
    r.connected(1000);
    assert_eq!(r.poll_timeout(1000), Some(6000));
    assert_eq!(r.timeout(6000), Some(1), "guard: wake 1 ms later");
    assert_eq!(r.run(6000), None);
    r.receive_attempted(6001);
    assert_eq!(r.run(6001), Some(Action::Probe));
    assert_eq!(r.state(), State::Idle);
    assert_eq!(r.poll_timeout(6001), Some(11001));
    r.receive_attempted(RECEIVE_GUARD_OFF);
    assert_eq!(r.run(11001), Some(Action::Disconnect));
    assert_eq!(r.run(11001), Some(Action::Disconnect), "repeats until told");
    r.activity(11002);
    assert_eq!(r.state(), State::Active);
    assert_eq!(r.stats(11002).seqno, 1, "ACTIVE ⇄ IDLE does not bump seqno");
}

#[test]
fn passive_mode() {
    let mut r = Reconnect::new(0);
    r.set_passive(true, 0);
    r.enable(0);
    assert_eq!(r.run(0), Some(Action::Connect));
    r.listening(0);
    assert_eq!(r.timeout(0), None);
    r.connected(10);
    r.disconnected(20, EOF);
    assert_eq!((r.state(), r.stats(20).backoff), (State::Backoff, 0));
    r.connecting(20);
    r.set_passive(false, 30);
    assert_eq!(
        r.state(),
        State::Connecting,
        "active again: only LISTENING re-arms"
    );
    r.set_passive(true, 40);
    assert_eq!((r.state(), r.stats(40).backoff), (State::Backoff, 0));
}

#[test]
fn activity_leaves_only_idle() {
    let mut r = Reconnect::new(1000);
    r.enable(1000);
    r.activity(1100);
    let s = r.stats(1100);
    assert_eq!(
        (s.state, s.last_activity, s.last_connected),
        (State::Backoff, 1100, None)
    );
}

#[test]
fn extreme_times_do_not_panic() {
    for &t in &[i64::MIN, -1, 0, i64::MAX] {
        let mut r = Reconnect::new(t);
        r.set_backoff(i32::MAX, i32::MAX);
        r.set_probe_interval(i32::MAX);
        r.enable(t);
        r.connected(i64::MAX);
        r.activity(i64::MIN);
        let _ = r.run(i64::MAX);
        let _ = r.timeout(i64::MIN);
        r.disconnected(i64::MIN, 0);
        r.connect_failed(i64::MAX, 0);
        let _ = r.stats(t);
    }
}
