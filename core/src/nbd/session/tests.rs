//! Session behaviour from client byte vectors: negotiation, refusals, requests, limits.

use std::vec::Vec;

use super::*;
use crate::nbd::wire::option::{info, reply};
use crate::nbd::wire::transmission::{cmd_flags, flags, Command};
use crate::nbd::wire::{
    ClientFlagsRepr, InfoRepr, InfoRequest, OptionReplyRepr, OptionRequestRepr, RequestRepr,
    SimpleReplyRepr,
};

const SIZE: u64 = 1 << 20;

fn table() -> &'static [(&'static [u8], ExportInfo)] {
    static T: [(&[u8], ExportInfo); 3] = [
        (b"r0", ExportInfo::new(0, SIZE)),
        (
            b"ro",
            ExportInfo {
                read_only: true,
                ..ExportInfo::new(1, SIZE)
            },
        ),
        (
            b"blk",
            ExportInfo {
                min_block: 512,
                ..ExportInfo::new(2, SIZE)
            },
        ),
    ];
    &T
}

type S = Session<&'static [(&'static [u8], ExportInfo)], 4>;

fn session() -> S {
    Session::new(table(), Config::DEFAULT)
}

fn option(code: u32, data: &[u8]) -> Vec<u8> {
    let mut buf = std::vec![0u8; 16 + data.len()];
    OptionRequestRepr {
        option: code,
        length: data.len() as u32,
    }
    .emit(data, &mut buf)
    .unwrap();
    buf
}

fn go(code: u32, name: &[u8], requests: &[u16]) -> Vec<u8> {
    let mut data = std::vec![0u8; 6 + name.len() + 2 * requests.len()];
    InfoRequest::emit(name, requests, &mut data).unwrap();
    option(code, &data)
}

fn request(command: Command, flags: u16, cookie: u64, offset: u64, length: u32) -> Vec<u8> {
    let mut buf = std::vec![0u8; 28];
    RequestRepr {
        flags,
        command,
        cookie,
        offset,
        length,
    }
    .emit(&mut buf)
    .unwrap();
    buf
}

fn client_flags(flags: u32) -> Vec<u8> {
    let mut b = std::vec![0u8; 4];
    ClientFlagsRepr { flags }.emit(&mut b).unwrap();
    b
}

/// Every message the session has to send, each as its own byte vector.
fn drain(s: &mut S) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    while let Some(t) = s.poll_transmit(&mut buf).unwrap() {
        out.push(buf[..t.len].to_vec());
    }
    out
}

/// Feeds `input` whole; asserts it is all consumed without an action.
fn feed(s: &mut S, input: &[u8]) {
    let p = s.handle_input(input).unwrap();
    assert_eq!((p.consumed, p.action), (input.len(), None));
}

/// A session past the greeting and client flags.
fn haggling() -> S {
    let mut s = session();
    assert_eq!(drain(&mut s).len(), 1);
    feed(&mut s, &client_flags(3));
    s
}

/// A session in transmission on `name`.
fn transmitting(name: &[u8]) -> S {
    let mut s = haggling();
    feed(&mut s, &go(7, name, &[]));
    assert_eq!(drain(&mut s).len(), 3);
    assert!(s.in_transmission());
    s
}

fn opt_reply(msg: &[u8]) -> (OptionReplyRepr, &[u8]) {
    (OptionReplyRepr::parse(msg).unwrap(), &msg[20..])
}

fn simple(msg: &[u8]) -> SimpleReplyRepr {
    assert_eq!(msg.len(), 16);
    SimpleReplyRepr::parse(msg).unwrap()
}

#[test]
fn greeting_first() {
    let mut s = session();
    let out = drain(&mut s);
    assert_eq!(out, [b"NBDMAGICIHAVEOPT\x00\x03".to_vec()]);
    // Nothing is sent until the client speaks.
    assert!(drain(&mut s).is_empty());
    assert_eq!(s.handle_input(&[0, 0]).unwrap().need, Some(4));
}

#[test]
fn go_sends_export_block_size_ack() {
    let mut s = haggling();
    feed(&mut s, &go(7, b"r0", &[info::BLOCK_SIZE]));
    let out = drain(&mut s);
    assert_eq!(out.len(), 3);
    let (h, d) = opt_reply(&out[0]);
    assert_eq!((h.option, h.reply_type), (7, reply::INFO));
    assert_eq!(
        InfoRepr::parse(d),
        Ok(InfoRepr::Export {
            size: SIZE,
            flags: flags::HAS_FLAGS
                | flags::SEND_FLUSH
                | flags::SEND_FUA
                | flags::SEND_TRIM
                | flags::SEND_WRITE_ZEROES
        })
    );
    assert_eq!(
        InfoRepr::parse(opt_reply(&out[1]).1),
        Ok(InfoRepr::BlockSize {
            min: 1,
            preferred: 4096,
            max_payload: 1 << 25
        })
    );
    assert_eq!(
        out[2],
        b"\x00\x03\xe8\x89\x04\x55\x65\xa9\0\0\0\x07\0\0\0\x01\0\0\0\0"
    );
    assert_eq!(s.export().map(|e| e.id), Some(0));
}

#[test]
fn info_then_go_unknown_list_abort() {
    let mut s = haggling();
    feed(&mut s, &go(6, b"ro", &[]));
    let out = drain(&mut s);
    assert_eq!(out.len(), 3);
    let Ok(InfoRepr::Export { flags: f, .. }) = InfoRepr::parse(opt_reply(&out[0]).1) else {
        panic!("no NBD_INFO_EXPORT");
    };
    assert_ne!(f & flags::READ_ONLY, 0);
    assert!(!s.in_transmission(), "NBD_OPT_INFO stays in haggling");

    feed(&mut s, &go(7, b"nope", &[]));
    let out = drain(&mut s);
    assert_eq!(out.len(), 1);
    let (h, msg) = opt_reply(&out[0]);
    assert_eq!(
        (h.reply_type, msg),
        (reply::ERR_UNKNOWN, &b"no export with that name"[..])
    );

    feed(&mut s, &option(3, &[]));
    let names: Vec<Vec<u8>> = drain(&mut s)
        .iter()
        .map(|m| m.get(24..).unwrap_or_default().to_vec())
        .collect();
    assert_eq!(
        names,
        [b"r0".to_vec(), b"ro".to_vec(), b"blk".to_vec(), Vec::new()]
    );

    feed(&mut s, &option(3, b"x"));
    assert_eq!(
        opt_reply(&drain(&mut s)[0]).0.reply_type,
        reply::ERR_INVALID
    );

    let abort = option(2, &[]);
    let p = s.handle_input(&abort).unwrap();
    assert_eq!((p.consumed, p.action), (16, Some(Action::Disconnect)));
    assert!(!s.is_finished(), "the ACK is still to be sent");
    let out = drain(&mut s);
    assert_eq!(opt_reply(&out[0]).0.reply_type, reply::ACK);
    assert!(s.is_finished());
}

#[test]
fn refused_options_keep_haggling() {
    let mut s = haggling();
    for code in [8u32, 5, 9, 10, 11, 4, 0xdead] {
        feed(&mut s, &option(code, &[]));
        let out = drain(&mut s);
        let (h, msg) = opt_reply(&out[0]);
        assert_eq!((h.option, h.reply_type), (code, reply::ERR_UNSUP));
        assert!(!msg.is_empty());
    }
    // Malformed GO data.
    feed(&mut s, &option(7, &[0, 0, 0, 9, 0, 0]));
    assert_eq!(
        opt_reply(&drain(&mut s)[0]).0.reply_type,
        reply::ERR_INVALID
    );
    // Too long: skipped in pieces, then NBD_REP_ERR_TOO_BIG, then the next option works.
    let mut big = option(7, &std::vec![0u8; 10_000]);
    big.extend(go(7, b"r0", &[]));
    let mut at = 0;
    while !s.in_transmission() {
        let end = (at + 1000).min(big.len());
        let p = s.handle_input(&big[at..end]).unwrap();
        at += p.consumed;
        if p.consumed == 0 {
            let out = drain(&mut s);
            assert_eq!(opt_reply(&out[0]).0.reply_type, reply::ERR_TOO_BIG);
        }
    }
    assert_eq!(drain(&mut s).len(), 3);
}

#[test]
fn block_size_info_follows_the_limits() {
    let table: &[(&[u8], ExportInfo)] = &[(
        b"d",
        ExportInfo {
            min_block: 4096,
            preferred_block: 1 << 16,
            ..ExportInfo::new(0, SIZE)
        },
    )];
    for (max_payload, preferred) in [(1 << 20, 1 << 16), (8192, 8192), (1024, 4096)] {
        let config = Config {
            max_payload,
            ..Config::DEFAULT
        };
        let mut s: Session<_, 2> = Session::new(table, config);
        let mut buf = [0u8; 256];
        s.poll_transmit(&mut buf).unwrap();
        feed_any(&mut s, &client_flags(3));
        feed_any(&mut s, &go(6, b"d", &[info::BLOCK_SIZE]));
        s.poll_transmit(&mut buf).unwrap();
        let t = s.poll_transmit(&mut buf).unwrap().unwrap();
        assert_eq!(
            InfoRepr::parse(&buf[20..t.len]),
            Ok(InfoRepr::BlockSize {
                min: 4096,
                preferred,
                max_payload
            })
        );
    }
}

fn feed_any<E: Exports, const M: usize>(s: &mut Session<E, M>, input: &[u8]) {
    assert_eq!(s.handle_input(input).unwrap().consumed, input.len());
}

#[test]
fn export_name_with_and_without_zeroes() {
    for (cflags, len) in [(3u32, 10usize), (1, 134)] {
        let mut s = session();
        drain(&mut s);
        feed(&mut s, &client_flags(cflags));
        feed(&mut s, &option(1, b"r0"));
        let out = drain(&mut s);
        assert_eq!(out[0].len(), len);
        assert_eq!(&out[0][..10], &[0, 0, 0, 0, 0, 0x10, 0, 0, 0, 0x6d]);
        assert!(s.in_transmission());
    }
}

#[test]
fn hard_disconnects() {
    let mut s = haggling();
    assert_eq!(
        s.handle_input(&option(1, b"nope")),
        Err(Error::UnknownExport)
    );
    assert_eq!(s.handle_input(&[]), Err(Error::UnknownExport), "sticky");
    assert!(s.is_finished());

    let mut s = session();
    assert_eq!(
        s.handle_input(&client_flags(4)),
        Err(Error::BadClientFlags { flags: 4 })
    );

    let mut s = haggling();
    let e = s.handle_input(b"GET / HTTP/1.1\r\n").unwrap_err();
    assert!(matches!(
        e,
        Error::Wire(crate::nbd::wire::Error::BadMagic { .. })
    ));

    let mut s = haggling();
    let mut long = option(1, &[]);
    long[12..16].copy_from_slice(&100_000u32.to_be_bytes());
    assert!(matches!(
        s.handle_input(&long),
        Err(Error::ExportNameTooLong { len: 100_000, .. })
    ));

    let mut s = transmitting(b"r0");
    let mut bad = request(Command::Read, 0, 1, 0, 512);
    bad[0] = 0;
    assert!(matches!(s.handle_input(&bad), Err(Error::Wire(_))));
}

#[test]
fn read_write_flush_round_trip() {
    let mut s = transmitting(b"r0");
    let r = request(Command::Read, 0, 11, 4096, 512);
    let p = s.handle_input(&r).unwrap();
    assert_eq!(
        p.action,
        Some(Action::Read {
            handle: 1,
            offset: 4096,
            len: 512
        })
    );
    assert_eq!(s.in_flight(), 1);
    s.complete(1, Ok(())).unwrap();
    let mut buf = [0u8; 64];
    let t = s.poll_transmit(&mut buf).unwrap().unwrap();
    assert_eq!(
        t.read,
        Some(ReadData {
            handle: 1,
            len: 512
        })
    );
    assert_eq!(simple(&buf[..t.len]), SimpleReplyRepr::new(11, Ok(())));

    let mut w = request(Command::Write, cmd_flags::FUA, 12, 0, 4);
    w.extend_from_slice(b"abcd");
    // Header alone: the session asks for the whole payload.
    let p = s.handle_input(&w[..30]).unwrap();
    assert_eq!((p.consumed, p.action, p.need), (0, None, Some(32)));
    let p = s.handle_input(&w).unwrap();
    assert_eq!(p.consumed, 32);
    assert_eq!(
        p.action,
        Some(Action::Write {
            handle: 2,
            offset: 0,
            data: b"abcd",
            fua: true
        })
    );
    s.complete(2, Err(ErrorCode::Io)).unwrap();
    let out = drain(&mut s);
    assert_eq!(simple(&out[0]).error, 5);

    let r = request(Command::Flush, 0, 13, 0, 0);
    let p = s.handle_input(&r).unwrap();
    assert_eq!(p.action, Some(Action::Flush { handle: 3 }));
    let r = request(Command::WriteZeroes, cmd_flags::NO_HOLE, 14, 0, 8192);
    let p = s.handle_input(&r).unwrap();
    assert_eq!(
        p.action,
        Some(Action::WriteZeroes {
            handle: 4,
            offset: 0,
            len: 8192,
            fua: false,
            no_hole: true
        })
    );
    let r = request(Command::Trim, 0, 15, 0, 4096);
    let p = s.handle_input(&r).unwrap();
    assert!(matches!(p.action, Some(Action::Trim { handle: 5, .. })));
    // Completed out of order, replied in completion order.
    for h in [5, 3, 4] {
        s.complete(h, Ok(())).unwrap();
    }
    let cookies: Vec<u64> = drain(&mut s).iter().map(|m| simple(m).cookie).collect();
    assert_eq!(cookies, [15, 13, 14]);
    assert_eq!(
        s.complete(99, Ok(())),
        Err(Error::UnknownHandle { handle: 99 })
    );
}

/// The error each bad request gets, with no action and the session still serving.
fn refused(name: &[u8], req: Vec<u8>) -> u32 {
    let mut s = transmitting(name);
    let p = s.handle_input(&req).unwrap();
    assert_eq!(p.action, None);
    let out = drain(&mut s);
    assert_eq!(out.len(), 1);
    let r = simple(&out[0]);
    assert_eq!(r.cookie, 7);
    // The session goes on.
    let next = request(Command::Read, 0, 8, 0, 512);
    let p = s.handle_input(&next).unwrap();
    assert!(matches!(p.action, Some(Action::Read { handle: 1, .. })));
    r.error
}

#[test]
fn bad_requests_get_spec_errors() {
    use Command::*;
    let (inval, nospc, perm) = (22, 28, 1);
    assert_eq!(refused(b"r0", request(Read, 0, 7, SIZE - 511, 512)), inval);
    assert_eq!(refused(b"r0", request(Read, 0, 7, u64::MAX, 2)), inval);
    assert_eq!(refused(b"r0", request(Read, 0, 7, 0, (1 << 25) + 1)), inval);
    assert_eq!(refused(b"r0", request(Trim, 0, 7, SIZE, 1)), inval);
    assert_eq!(refused(b"r0", request(WriteZeroes, 0, 7, SIZE, 512)), nospc);
    assert_eq!(
        refused(b"r0", request(Read, cmd_flags::DF, 7, 0, 512)),
        inval
    );
    assert_eq!(refused(b"r0", request(Read, 0x8000, 7, 0, 512)), inval);
    assert_eq!(
        refused(b"r0", request(WriteZeroes, cmd_flags::FAST_ZERO, 7, 0, 1)),
        inval
    );
    assert_eq!(refused(b"r0", request(BlockStatus, 0, 7, 0, 512)), inval);
    assert_eq!(refused(b"r0", request(Other(42), 0, 7, 0, 0)), inval);
    assert_eq!(refused(b"ro", request(Trim, 0, 7, 0, 512)), perm);
    assert_eq!(refused(b"ro", request(WriteZeroes, 0, 7, 0, 512)), perm);
    assert_eq!(refused(b"blk", request(Read, 0, 7, 100, 512)), inval);
    assert_eq!(refused(b"blk", request(Read, 0, 7, 512, 100)), inval);
    // Zero-length and CACHE succeed without touching the backend.
    assert_eq!(refused(b"r0", request(Read, 0, 7, 0, 0)), 0);
    assert_eq!(refused(b"r0", request(Cache, 0, 7, 0, 4096)), 0);
}

#[test]
fn refused_writes_skip_their_payload() {
    for (name, offset, len, err) in [
        (&b"ro"[..], 0u64, 4096u32, 1u32),
        (b"r0", SIZE - 100, 4096, 28),
        (b"r0", 0, (1 << 25) + 1, 22),
    ] {
        let mut s = transmitting(name);
        let mut input = request(Command::Write, 0, 7, offset, len);
        input.extend(std::iter::repeat_n(0xab, len as usize));
        input.extend(request(Command::Read, 0, 8, 0, 512));
        // In 64 KiB pieces, as a socket would deliver them.
        let mut at = 0;
        let mut action = None;
        while at < input.len() && action.is_none() {
            let end = (at + 65536).min(input.len());
            let p = s.handle_input(&input[at..end]).unwrap();
            at += p.consumed;
            action = p.action.map(|a| a.handle());
            assert!(p.consumed > 0 || p.need.is_some() && at + p.need.unwrap() > end);
            if p.consumed == 0 {
                break;
            }
        }
        assert_eq!(action, Some(Some(1)), "the read after the refused write");
        assert_eq!(simple(&drain(&mut s)[0]).error, err);
    }
}

#[test]
fn in_flight_limit_blocks_input() {
    let mut s = transmitting(b"r0");
    let mut input = Vec::new();
    for h in 0..5 {
        input.extend(request(Command::Read, 0, h, 0, 512));
    }
    let mut at = 0;
    for h in 1..=4 {
        let p = s.handle_input(&input[at..]).unwrap();
        assert_eq!(p.action.and_then(|a| a.handle()), Some(h));
        at += p.consumed;
    }
    let p = s.handle_input(&input[at..]).unwrap();
    assert_eq!((p.consumed, p.action, p.need), (0, None, None));
    s.complete(3, Ok(())).unwrap();
    // The queued reply still holds a slot until it is sent.
    assert_eq!(s.handle_input(&input[at..]).unwrap().consumed, 0);
    assert_eq!(drain(&mut s).len(), 1);
    let p = s.handle_input(&input[at..]).unwrap();
    assert_eq!(p.action.and_then(|a| a.handle()), Some(5));
}

/// Cookies may repeat; handles do not, so each completion reaches the right reply.
#[test]
fn repeated_cookies_get_distinct_handles() {
    let mut s = transmitting(b"r0");
    let mut input = request(Command::Read, 0, 9, 0, 512);
    input.extend(request(Command::Flush, 0, 9, 0, 0));
    let p = s.handle_input(&input).unwrap();
    let read = p.action.and_then(|a| a.handle()).unwrap();
    let p = s.handle_input(&input[28..]).unwrap();
    let flush = p.action.and_then(|a| a.handle()).unwrap();
    assert_ne!(read, flush);
    s.complete(flush, Err(ErrorCode::Io)).unwrap();
    s.complete(read, Ok(())).unwrap();
    let mut buf = [0u8; 64];
    let t = s.poll_transmit(&mut buf).unwrap().unwrap();
    assert_eq!(
        (simple(&buf[..t.len]).error, t.handle, t.read),
        (5, Some(flush), None)
    );
    let t = s.poll_transmit(&mut buf).unwrap().unwrap();
    assert_eq!(simple(&buf[..t.len]), SimpleReplyRepr::new(9, Ok(())));
    assert_eq!(
        t.read,
        Some(ReadData {
            handle: read,
            len: 512
        })
    );
}

#[test]
fn disconnect_waits_for_in_flight() {
    let mut s = transmitting(b"r0");
    let r = request(Command::Flush, 0, 1, 0, 0);
    let p = s.handle_input(&r).unwrap();
    assert!(p.action.is_some());
    let mut tail = request(Command::Disc, 0, 2, 0, 0);
    tail.extend_from_slice(b"trailing junk after DISC is ignored");
    let p = s.handle_input(&tail).unwrap();
    assert_eq!((p.consumed, p.action), (28, Some(Action::Disconnect)));
    assert_eq!(
        s.handle_input(&tail[28..]).unwrap().consumed,
        tail.len() - 28
    );
    assert!(!s.is_finished());
    s.complete(1, Ok(())).unwrap();
    assert!(!s.is_finished());
    assert_eq!(drain(&mut s).len(), 1);
    assert!(s.is_finished());
}

#[test]
fn small_output_buffer_is_an_error_not_a_loss() {
    let mut s = session();
    let mut small = [0u8; 10];
    assert_eq!(
        s.poll_transmit(&mut small),
        Err(Error::OutputTooSmall {
            required: 18,
            have: 10
        })
    );
    assert_eq!(drain(&mut s).len(), 1, "the greeting is still there");
}

/// Byte-at-a-time input gives the same actions and output as whole messages.
#[test]
fn any_chunking_same_result() {
    let mut script = client_flags(1);
    script.extend(option(8, &[]));
    script.extend(go(7, b"r0", &[info::BLOCK_SIZE, info::NAME]));
    let mut w = request(Command::Write, 0, 3, 100, 3);
    w.extend_from_slice(b"xyz");
    script.extend(w);
    script.extend(request(Command::Read, 0, 4, 100, 3));
    script.extend(request(Command::Disc, 0, 5, 0, 0));

    let run = |chunk: usize| {
        let mut s = session();
        let mut log: Vec<std::string::String> = Vec::new();
        let mut wire: Vec<u8> = Vec::new();
        let mut buf: Vec<u8> = Vec::new();
        let mut fed = 0;
        loop {
            for m in drain(&mut s) {
                wire.extend(m);
            }
            let p = s.handle_input(&buf).unwrap();
            if let Some(a) = p.action {
                log.push(std::format!("{a:?}"));
                if let Some(h) = a.handle() {
                    s.complete(h, Ok(())).unwrap();
                }
            }
            let (consumed, idle) = (p.consumed, p.action.is_none() && p.consumed == 0);
            buf.drain(..consumed);
            if idle {
                if fed == script.len() {
                    break;
                }
                let end = (fed + chunk).min(script.len());
                buf.extend_from_slice(&script[fed..end]);
                fed = end;
            }
        }
        assert!(s.is_finished());
        (log, wire)
    };
    let whole = run(script.len());
    // Greeting, ERR_UNSUP with its text, INFO_EXPORT, BLOCK_SIZE, ACK, two simple replies.
    assert_eq!(whole.1.len(), 18 + 77 + 32 + 34 + 20 + 16 + 16);
    assert_eq!(whole.0.len(), 3);
    assert_eq!(run(1), whole);
    assert_eq!(run(7), whole);
}
