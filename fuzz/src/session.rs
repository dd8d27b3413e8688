//! The JSON-RPC session (`keelson_core::jsonrpc::Session`, ovs-sessions.md §3.6) driven by an
//! arbitrary shell: any order of connect/accept/fail reports, reads of arbitrary bytes in
//! arbitrary chunks, partial writes, sends into a small queue, and a clock that only moves
//! forward. After every event:
//! - the session is connected exactly when its FSM is (ACTIVE or IDLE, or RECONNECT until the
//!   next `run`); its `seqno` never
//!   goes back and changes whenever the connection comes or goes (+1 on every connect and
//!   every disconnect; a replacing accept counts once);
//! - nothing is queued for writing without a connection;
//! - once `run` has nothing more to say, `poll_timeout` is `None` or in the future;
//! - `run` names only remotes in the list, and a turn in which the shell answers every request
//!   ends (no endless asking).

use crate::input::Input;
use keelson_core::config::Sink;
use keelson_core::jsonrpc::{write_notification, Io, Remotes, Session};
use keelson_core::reconnect::State;

type S = Session<heapless::Vec<u8, 512>, heapless::Vec<u8, 256>>;

/// What the last check saw: connected, seqno.
type Seen = (bool, u32);

fn check_state(s: &S, seen: &mut Seen) {
    let connected = s.is_connected();
    assert!(
        s.seqno() >= seen.1,
        "seqno went back from {} to {}",
        seen.1,
        s.seqno()
    );
    if connected != seen.0 {
        assert_ne!(
            s.seqno(),
            seen.1,
            "connected {connected} without a seqno change"
        );
    }
    *seen = (connected, s.seqno());
    // The FSM is connected only with a connection; a connection may outlive the FSM's
    // connected states only in RECONNECT (force_reconnect), until the next `run` drops it.
    let fsm_connected = matches!(s.state(), State::Active | State::Idle);
    assert!(
        connected == fsm_connected || (connected && s.state() == State::Reconnect),
        "session {connected}, fsm {:?}",
        s.state()
    );
    if !connected {
        assert!(s.transmit().is_empty(), "output without a connection");
    }
}

/// Runs one fuzz input.
pub fn check(data: &[u8]) {
    let mut inp = Input(data);
    let Some(head) = inp.u8() else {
        return;
    };
    let count = usize::from(head % 4) + 1;
    let remotes = Remotes {
        count,
        passive: head & 0x10 != 0,
        probes: head & 0x20 != 0,
        retry: head & 0x40 != 0,
    };
    let mut now: i64 = 0;
    let mut s = Session::open(
        now,
        remotes,
        heapless::Vec::<u8, 512>::new(),
        512,
        heapless::Vec::<u8, 256>::new(),
    );
    let mut connecting = false;
    let mut seen = (false, 0);
    check_state(&s, &mut seen);
    while let Some(op) = inp.u8() {
        now += i64::from(inp.u8().unwrap_or(0)) * 37;
        match op % 12 {
            0 => {
                // The shell's turn: carry out everything, each open answered as the input says.
                let mut asked = 0;
                while let Some(io) = s.run(now) {
                    asked += 1;
                    assert!(asked < 64, "run keeps asking: {io:?}");
                    let how = inp.u8().unwrap_or(0) % 3;
                    connecting = false;
                    match io {
                        Io::Connect(i) => {
                            assert!(i < count, "remote {i} of {count}");
                            match how {
                                0 => s.open_failed(now, 2),
                                1 => {
                                    s.opened(now);
                                    connecting = true;
                                }
                                _ => {
                                    s.opened(now);
                                    s.connected(now);
                                }
                            }
                        }
                        Io::Listen(i) => {
                            assert!(i < count, "remote {i} of {count}");
                            match how {
                                0 => s.open_failed(now, 98),
                                _ => s.listening(now),
                            }
                        }
                        Io::Close => {}
                    }
                    check_state(&s, &mut seen);
                }
                if let Some(d) = s.poll_timeout(now) {
                    assert!(
                        d > now,
                        "deadline {d} at {now} with nothing to do in {:?}",
                        s.state()
                    );
                }
            }
            1 => {
                if connecting {
                    s.opened(now);
                }
            }
            2 => {
                s.connected(now);
                connecting = false;
            }
            3 => {
                s.connect_failed(now, 111);
                connecting = false;
            }
            4 => s.open_failed(now, 2),
            5 => s.listening(now),
            6 => {
                let _ = s.accepted(now);
            }
            7 => s.failed(i32::from(inp.u8().unwrap_or(0)) - 1),
            8 => {
                let n = usize::from(inp.u8().unwrap_or(0));
                let chunk = inp.bytes(n).to_vec();
                let mut rest = &chunk[..];
                let mut rounds = 0;
                while !rest.is_empty() {
                    let (used, _msg) = s.recv(now, rest);
                    assert!(used <= rest.len());
                    rounds += 1;
                    assert!(used > 0 || rounds < 1000, "recv makes no progress");
                    if used == 0 {
                        break;
                    }
                    rest = &rest[used..];
                }
                s.recv(now, &[]);
            }
            9 => {
                let len = s.transmit().len();
                let n = usize::from(inp.u8().unwrap_or(0)).min(len);
                s.sent(now, n);
            }
            10 => {
                let _ = s.send(|w: &mut dyn Sink| write_notification("n", &[0i64; 0], w));
            }
            _ => s.force_reconnect(now),
        }
        check_state(&s, &mut seen);
    }
}
