//! The OVS reconnect FSM (`keelson_core::reconnect`, ovs-sessions.md §1) driven by arbitrary
//! event sequences. Besides "no panic", after every event:
//! - `seqno` is odd exactly when connected (it flips on every connected-ness change, §1.3), and
//!   successes never exceed attempts;
//! - the deadline is `None` exactly in VOID, LISTENING and probe-less ACTIVE/IDLE (§1.6), and a
//!   deadline at or before `now` is exactly when `run(now)` has something to say; otherwise the
//!   deadline lies in the future, and `timeout` is its distance clamped to `0..=i32::MAX`;
//! - `run` mutates only ACTIVE → IDLE on a probe, and every other answer repeats (§1.6);
//! - a `disconnected` that backs off picks 0, min, twice the old backoff, or max (§1.5).
//!
//! With a sane clock (first byte even: time only moves forward, in u16 steps) the statistics
//! also stay consistent with the clock: no duration exceeds the FSM's age and the connected total
//! never shrinks. With a wild clock (first byte odd) times are arbitrary `i64`s, including the
//! extremes, and only the clock-free invariants are checked.

use crate::input::Input;
use keelson_core::reconnect::{Action, Reconnect, State, Stats, RECEIVE_GUARD_OFF};

/// Checks every invariant that holds at `now` after any event.
fn check_state(r: &Reconnect, now: i64) {
    let s = r.stats(now);
    assert_eq!(s.is_connected, s.state.is_connected());
    assert_eq!(s.seqno % 2 == 1, s.is_connected, "seqno parity: {s:?}");
    assert!(
        s.n_successful_connections <= s.n_attempted_connections,
        "{s:?}"
    );
    assert_eq!(s.msec_since_connect.is_some(), s.last_connected.is_some());
    assert_eq!(
        s.msec_since_disconnect.is_some(),
        s.last_disconnected.is_some()
    );
    if s.is_connected {
        assert!(
            s.last_connected.is_some(),
            "connected without last_connected"
        );
    }

    let deadline = r.poll_timeout(now);
    let never = match s.state {
        State::Void | State::Listening => true,
        State::Active | State::Idle => r.probe_interval() == 0,
        _ => false,
    };
    assert_eq!(deadline.is_none(), never, "deadline {deadline:?} in {s:?}");
    match (deadline, r.timeout(now)) {
        (None, None) => {}
        (Some(d), Some(t)) => {
            let want = (i128::from(d) - i128::from(now)).clamp(0, i128::from(i32::MAX));
            assert_eq!(i128::from(t), want, "timeout vs deadline");
        }
        other => panic!("poll_timeout and timeout disagree: {other:?}"),
    }

    // run: due exactly when the deadline has come; repeats except ACTIVE → IDLE.
    let mut probe = r.clone();
    let action = probe.run(now);
    let due = deadline.is_some_and(|d| d <= now);
    let acts = due && !matches!(s.state, State::Void | State::Listening);
    assert_eq!(
        action.is_some(),
        acts,
        "run {action:?} with deadline {deadline:?} at {now}"
    );
    match action {
        Some(Action::Probe) => {
            assert_eq!((s.state, probe.state()), (State::Active, State::Idle));
        }
        Some(a) => {
            assert_eq!(&probe, r, "run mutated outside ACTIVE");
            assert_eq!(probe.run(now), Some(a), "run's answer must repeat");
        }
        None => assert_eq!(&probe, r),
    }
}

/// Clock-dependent invariants, for a clock that only moves forward from `created`.
fn check_clock(prev: &Stats, s: &Stats, created: i64, now: i64) {
    let age = now - created;
    assert!(i64::from(s.state_elapsed) <= age);
    assert!(i64::from(s.total_connected_duration) <= age, "{s:?}");
    assert!(
        s.total_connected_duration >= prev.total_connected_duration,
        "connected total shrank"
    );
    assert!(s.last_connected.is_none_or(|t| t <= now));
    assert!(s.last_disconnected.is_none_or(|t| t <= now));
    assert!(s.last_activity <= now);
    if let (Some(c), Some(a)) = (s.msec_since_connect, s.last_connected) {
        assert_eq!(i64::from(c), now - a);
    }
}

/// The first byte picks the clock (even: sane, odd: wild); then each event is an opcode byte and
/// its arguments.
pub fn check(data: &[u8]) {
    let mut input = Input(data);
    let Some(mode) = input.u8() else { return };
    let wild = mode % 2 == 1;
    let created = if wild { input.i64().unwrap_or(0) } else { 1000 };
    let mut now = created;
    let mut r = Reconnect::new(now);
    let mut prev = r.stats(now);
    check_state(&r, now);
    while let Some(op) = input.u8() {
        let before = r.clone();
        match op % 20 {
            0 => r.enable(now),
            1 => r.disable(now),
            2 => r.force_reconnect(now),
            3 => r.disconnected(now, i32::from(op / 20) - 1),
            4 => r.connecting(now),
            5 => r.connect_failed(now, 0),
            6 => r.connected(now),
            7 => r.activity(now),
            8 => r.receive_attempted(now),
            9 => r.receive_attempted(RECEIVE_GUARD_OFF),
            10 => r.set_passive(op >= 128, now),
            11 => r.listening(now),
            12 => r.listen_error(now, 0),
            13 => r.set_max_tries(input.u8().map_or(0, |n| u32::from(n).wrapping_sub(1))),
            14 => r.set_backoff_free_tries(u32::from(input.u8().unwrap_or(0))),
            15 => {
                let min = input.u16().unwrap_or(0) as i16;
                let max = input.u16().unwrap_or(0) as i16;
                r.set_backoff(i32::from(min), i32::from(max));
                assert!(r.min_backoff() >= 1000 && r.max_backoff() >= r.min_backoff());
            }
            16 => {
                r.set_probe_interval(i32::from(input.u16().unwrap_or(0) as i16));
                assert!(r.probe_interval() == 0 || r.probe_interval() >= 1000);
            }
            17 => {
                let _ = r.run(now);
            }
            18 => {
                now = if wild {
                    input.i64().unwrap_or(i64::MAX)
                } else {
                    now + i64::from(input.u16().unwrap_or(0))
                };
            }
            _ => {
                if let Some(t) = r.timeout(now) {
                    now = now.saturating_add(i64::from(t));
                }
            }
        }
        // §1.5: a back-off picks 0, min, double, or max.
        if matches!(op % 20, 3 | 5 | 12)
            && r.state() == State::Backoff
            && before.state() != State::Backoff
        {
            let (old, new) = (before.stats(now).backoff, r.stats(now).backoff);
            assert!(
                new == 0
                    || new == r.min_backoff()
                    || new == old.wrapping_mul(2)
                    || new == r.max_backoff(),
                "backoff {old} -> {new} ({}..{})",
                r.min_backoff(),
                r.max_backoff()
            );
        }
        check_state(&r, now);
        let s = r.stats(now);
        if !wild {
            check_clock(&prev, &s, created, now);
        }
        prev = s;
    }
}
