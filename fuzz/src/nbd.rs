//! The NBD server session (`keelson_core::nbd::Session`) under arbitrary client bytes and an
//! arbitrary shell: input in chunks of any size, completions late and out of order with any
//! result, output buffers sometimes too small. The first byte picks the export (read-only,
//! block size, size) and whether a valid handshake is put in front, so the transmission phase
//! is reached quickly. After every call:
//! - `consumed` never exceeds the input; `need` is at most `Config::input_buffer_len` and more
//!   than the input left (else the session could have gone on);
//! - every action is legal for the export: within its size, on its block size, within the
//!   maximum payload, and no write, trim or write-zeroes on a read-only export;
//! - no more than `N` requests are in flight, and `in_flight` matches the actions handed out;
//! - every message written parses (greeting, option reply, export-name reply or simple reply)
//!   and fits `Config::output_buffer_len`; a too-small buffer is `OutputTooSmall` with the size;
//! - each completed action gets exactly one reply, naming its handle, with its result; a read's
//!   data follows only a successful reply of that read, with its length; replies without a
//!   handle carry no data;
//! - an error is sticky and the session then reports it as finished.

use std::collections::VecDeque;

use crate::input::Input;
use keelson_core::nbd::session::Error;
use keelson_core::nbd::wire::option::REPLY_MAGIC;
use keelson_core::nbd::wire::transmission::{ErrorCode, SIMPLE_REPLY_MAGIC};
use keelson_core::nbd::wire::{
    ClientFlagsRepr, GreetingRepr, InfoRequest, OptionReplyRepr, OptionRequestRepr, SimpleReplyRepr,
};
use keelson_core::nbd::{Action, Config, ExportInfo, ReadData, Session};

const N: usize = 4;

type Table = [(&'static [u8], ExportInfo); 2];
type S<'t> = Session<&'t [(&'static [u8], ExportInfo)], N>;

/// A completed action whose reply has not been seen yet: handle, read length (0: not a read),
/// success.
type Owed = (u64, u32, bool);

struct Shell {
    /// Handed out, not completed: handle, read length.
    pending: Vec<(u64, u32)>,
    /// Completed: handle, read length, success.
    owed: Vec<Owed>,
    /// Whether the export-name reply (no magic) may come next.
    export_name_sent: bool,
    greeted: bool,
}

fn handshake(head: u8) -> Vec<u8> {
    let mut v = vec![0u8; 4];
    ClientFlagsRepr { flags: 3 }.emit(&mut v).unwrap();
    let name: &[u8] = if head & 0x40 != 0 { b"ro" } else { b"disk" };
    let mut data = vec![0u8; 6 + name.len() + 2];
    InfoRequest::emit(name, &[3], &mut data).unwrap();
    let mut opt = vec![0u8; 16 + data.len()];
    OptionRequestRepr {
        option: 7,
        length: data.len() as u32,
    }
    .emit(&data, &mut opt)
    .unwrap();
    v.extend(opt);
    v
}

/// Runs one fuzz input.
pub fn check(data: &[u8]) {
    let mut inp = Input(data);
    let Some(head) = inp.u8() else { return };
    let config = Config {
        max_payload: [512, 4096, 65536, 1 << 25][usize::from(head & 3)],
        max_option_len: [64, 4300][usize::from(head >> 2 & 1)],
        max_name_len: 4096,
    };
    let size = [0u64, 1 << 20, u64::MAX - 511][usize::from(head >> 3 & 3) % 3];
    let min_block = if head & 0x20 != 0 { 512 } else { 1 };
    let disk = ExportInfo {
        min_block,
        ..ExportInfo::new(0, size)
    };
    let table: Table = [
        (b"disk", disk),
        (
            b"ro",
            ExportInfo {
                read_only: true,
                ..ExportInfo::new(1, size)
            },
        ),
    ];
    let mut s: S = Session::new(&table, config);
    let mut shell = Shell {
        pending: Vec::new(),
        owed: Vec::new(),
        export_name_sent: false,
        greeted: false,
    };
    // The client's bytes: optionally a valid handshake, then the rest of the fuzz input.
    let plan = inp.bytes(64).to_vec();
    let mut stream = if head & 0x80 != 0 {
        handshake(head)
    } else {
        Vec::new()
    };
    stream.extend_from_slice(inp.0);
    let mut plan = Input(&plan);
    let mut buf: VecDeque<u8> = VecDeque::new();
    let mut fed = 0usize;
    let mut idle = 0;
    let mut failed: Option<Error> = None;
    while idle < 4 {
        let op = plan.u8().unwrap_or(0);
        let chunk = match op & 7 {
            0 => 1,
            1 => 7,
            2 => 28,
            _ => 4096,
        };
        // Output, with a buffer that is sometimes too small.
        let out_len = if op & 0x80 != 0 {
            17
        } else {
            config.output_buffer_len()
        };
        transmit(&mut s, &mut shell, out_len, &config);
        // Complete some of the pending actions, newest first when bit 6 is set.
        if op & 0x08 != 0 && !shell.pending.is_empty() {
            let i = if op & 0x40 != 0 {
                shell.pending.len() - 1
            } else {
                0
            };
            let (h, read_len) = shell.pending.remove(i);
            let result = if op & 0x10 != 0 {
                Err(ErrorCode::Io)
            } else {
                Ok(())
            };
            s.complete(h, result).expect("completing a pending handle");
            shell.owed.push((h, read_len, result.is_ok()));
        }
        assert_eq!(
            s.complete(u64::MAX - 1, Ok(())).is_err(),
            !shell.pending.iter().any(|p| p.0 == u64::MAX - 1)
        );
        let end = (fed + chunk).min(stream.len());
        buf.extend(&stream[fed..end]);
        let progressed = end > fed;
        fed = end;
        let input: Vec<u8> = buf.iter().copied().collect();
        match s.handle_input(&input) {
            Err(e) => {
                if let Some(f) = failed {
                    assert_eq!(e, f, "errors are sticky");
                }
                failed = Some(e);
                assert!(s.is_finished());
                assert!(!matches!(
                    e,
                    Error::UnknownHandle { .. } | Error::OutputTooSmall { .. }
                ));
                idle += 1;
            }
            Ok(p) => {
                assert!(failed.is_none(), "an error was not sticky");
                assert!(p.consumed <= input.len());
                if let Some(n) = p.need {
                    assert!(p.action.is_none());
                    assert!(n <= config.input_buffer_len(), "need {n} over the buffer");
                    assert!(n > input.len() - p.consumed, "need {n} but it has them");
                }
                if let Some(a) = p.action {
                    legal(&a, &s, &config);
                    if let Some(h) = a.handle() {
                        let read_len = match a {
                            Action::Read { len, .. } => len,
                            _ => 0,
                        };
                        shell.pending.push((h, read_len));
                    }
                }
                buf.drain(..p.consumed);
                if p.consumed == 0 && p.action.is_none() && !progressed {
                    idle += 1;
                } else {
                    idle = 0;
                }
            }
        }
        assert_eq!(s.in_flight(), shell.pending.len());
        assert!(shell.pending.len() <= N);
    }
    // Finish everything: complete all, send all; every completed action got its reply.
    for (h, read_len) in std::mem::take(&mut shell.pending) {
        s.complete(h, Ok(())).unwrap();
        shell.owed.push((h, read_len, true));
    }
    transmit(&mut s, &mut shell, config.output_buffer_len(), &config);
    if failed.is_none() {
        assert!(
            shell.owed.is_empty(),
            "replies never sent: {:?}",
            shell.owed
        );
    }
}

fn legal(a: &Action<'_>, s: &S<'_>, config: &Config) {
    if *a == Action::Disconnect {
        return;
    }
    let e = *s.export().expect("I/O actions only in transmission");
    let span = |offset: u64, len: u64| {
        assert!(
            offset.checked_add(len).is_some_and(|end| end <= e.size),
            "{a:?} outside {}",
            e.size
        );
        let b = u64::from(e.min_block.max(1));
        assert!(offset % b == 0 && len % b == 0, "{a:?} unaligned to {b}");
    };
    match *a {
        Action::Read { offset, len, .. } => {
            assert!(len > 0 && len <= config.max_payload);
            span(offset, len.into());
        }
        Action::Write { offset, data, .. } => {
            assert!(!e.read_only, "write on a read-only export");
            assert!(!data.is_empty() && data.len() <= config.max_payload as usize);
            span(offset, data.len() as u64);
        }
        Action::Trim { offset, len, .. } | Action::WriteZeroes { offset, len, .. } => {
            assert!(!e.read_only, "{a:?} on a read-only export");
            span(offset, len.into());
        }
        Action::Flush { .. } | Action::Disconnect => {}
    }
}

fn transmit(s: &mut S<'_>, shell: &mut Shell, out_len: usize, config: &Config) {
    let mut out = vec![0u8; out_len];
    for _ in 0..10_000 {
        let t = match s.poll_transmit(&mut out) {
            Ok(Some(t)) => t,
            Ok(None) => return,
            Err(Error::OutputTooSmall { required, have }) => {
                assert_eq!(have, out_len);
                assert!(required > have && required <= config.output_buffer_len());
                out = vec![0u8; config.output_buffer_len()];
                continue;
            }
            Err(e) => panic!("poll_transmit: {e}"),
        };
        assert!(t.len <= config.output_buffer_len());
        let msg = &out[..t.len];
        if !shell.greeted {
            GreetingRepr::parse(msg).expect("greeting first");
            shell.greeted = true;
            continue;
        }
        if msg.starts_with(&REPLY_MAGIC.to_be_bytes()) {
            let h = OptionReplyRepr::parse(msg).unwrap();
            assert_eq!(msg.len(), 20 + h.length as usize);
            assert!(t.read.is_none());
            continue;
        }
        if msg.len() == 16 && msg.starts_with(&SIMPLE_REPLY_MAGIC.to_be_bytes()) {
            let r = SimpleReplyRepr::parse(msg).unwrap();
            let ok = r.error == 0;
            match t.handle {
                Some(h) => {
                    let i = shell
                        .owed
                        .iter()
                        .position(|o| o.0 == h)
                        .expect("a reply only for a completed handle");
                    let (_, read_len, completed_ok) = shell.owed.remove(i);
                    assert_eq!(
                        ok, completed_ok,
                        "reply {r:?} for a completion {completed_ok}"
                    );
                    let data = (ok && read_len > 0).then_some(ReadData {
                        handle: h,
                        len: read_len,
                    });
                    assert_eq!(t.read, data);
                }
                // Refused at once, or a zero-length request answered without the backend.
                None => assert!(t.read.is_none()),
            }
            continue;
        }
        // The NBD_OPT_EXPORT_NAME reply: size and flags (and maybe 124 zeroes), once.
        assert!(!shell.export_name_sent, "unexpected message {msg:?}");
        assert!(
            msg.len() == 10 || msg.len() == 134,
            "export-name reply of {}",
            msg.len()
        );
        shell.export_name_sent = true;
    }
    panic!("poll_transmit never ran dry");
}
