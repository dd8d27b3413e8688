//! Every command through `Frame`: a sample body per layout, emit → parse round trips under each
//! header, every truncation rejected, and arbitrary payloads that parse re-emit to themselves.

use super::*;
use crate::repl::wire::field::{BarrierNr, BlockId};
use crate::repl::wire::sizes::{QueueLimitsFields, SizesFields};
use crate::repl::wire::sync_param::Controller;
use crate::repl::wire::uuid::U64List;
use std::vec;
use std::vec::Vec;

const CHALLENGE: [u8; 64] = [0x5A; 64];
const DATA: [u8; 1024] = [0xA5; 1024];
const DIGEST: [u8; 20] = [0x11; 20];
const UUIDS: [u64; 3] = [0xB1, 0xC0, 0xC1];

/// A plausible body for `command`, or `None` for the commands that are not packets.
fn sample(command: Command) -> Option<Body<'static>> {
    let block_id = BlockId::from_host(0xffff_8880_1234_abc0);
    let req = BlockReqFields {
        sector: 2048,
        block_id,
        blksize: 4096,
    };
    let rs = RsReqFields {
        sector: 8,
        block_id,
        blksize: 4096,
        dagtag_node_id: 1,
        dagtag: 77,
    };
    let ack = BlockAckFields {
        sector: 2048,
        block_id,
        blksize: 4096,
        seq_num: 3,
    };
    let trim = TrimFields {
        sector: 64,
        block_id,
        seq_num: 2,
        dp_flags: 0x40,
        size: 1 << 20,
    };
    Some(match layout_of(command).ok()? {
        Layout::Empty => Body::Empty,
        Layout::Data => Body::Data(DataRepr {
            fields: super::super::data::DataFields {
                sector: 2048,
                block_id,
                seq_num: 1,
                dp_flags: 0x102,
            },
            digest: &[],
            data: &DATA,
        }),
        Layout::Trim => Body::Trim(trim),
        Layout::Wsame => Body::Wsame(trim, &DATA[..512]),
        Layout::BlockReq => Body::BlockReq(req),
        Layout::BlockReqDigest => Body::BlockReqDigest(req, &DIGEST),
        Layout::RsReq => Body::RsReq(rs),
        Layout::RsReqDigest => Body::RsReqDigest(rs, &DIGEST),
        Layout::BlockDesc => Body::BlockDesc(BlockDescFields {
            sector: 16,
            blksize: 8192,
        }),
        Layout::BlockAck => Body::BlockAck(ack),
        Layout::OvResult => Body::OvResult(OvResultFields {
            sector: 1,
            block_id,
            blksize: 4096,
            seq_num: 9,
            result: 2,
        }),
        Layout::Barrier => Body::Barrier(BarrierFields {
            barrier: BarrierNr::from_host(7),
        }),
        Layout::BarrierAck => Body::BarrierAck(BarrierAckFields {
            barrier: BarrierNr::from_host(7),
            set_size: 1,
        }),
        Layout::ConfirmStable => Body::ConfirmStable(ConfirmStableFields {
            oldest_block_id: block_id,
            youngest_block_id: BlockId::from_host(1),
            set_size: 2,
        }),
        Layout::Features => Body::Features(ConnectionFeaturesFields {
            protocol_min: 86,
            feature_flags: 0x1F,
            protocol_max: 124,
            sender_node_id: 0,
            receiver_node_id: 1,
        }),
        Layout::AuthChallenge => Body::AuthChallenge(&CHALLENGE),
        Layout::AuthResponse => Body::AuthResponse(&CHALLENGE[..32]),
        Layout::Protocol => Body::Protocol(ProtocolRepr {
            fields: super::super::protocol::ProtocolFields {
                protocol: 3,
                after_sb_0p: 3,
                after_sb_1p: 8,
                ..Default::default()
            },
            integrity_alg: b"sha1",
        }),
        Layout::Uuids => Body::Uuids(UuidsFields {
            current: 0xAA,
            bitmap: 0xBB,
            dirty_bits: 5,
            uuid_flags: 4,
            ..Default::default()
        }),
        Layout::Uuids110 => Body::Uuids110(Uuids110Repr {
            fields: super::super::uuid::Uuids110Fields {
                current: 0xAA,
                bitmap_uuids_mask: 2,
                ..Default::default()
            },
            other_uuids: U64List::Values(&UUIDS),
        }),
        Layout::CurrentUuid => Body::CurrentUuid(CurrentUuidFields {
            uuid: 0xAA,
            weak_nodes: 4,
        }),
        Layout::SyncUuid => Body::SyncUuid(SyncUuidFields { uuid: 0xCC }),
        Layout::Sizes => Body::Sizes(SizesRepr {
            fields: SizesFields {
                d_size: 1 << 21,
                c_size: 1 << 21,
                max_bio_size: 1 << 20,
                ..Default::default()
            },
            qlim: Some(QueueLimitsFields {
                physical_block_size: 4096,
                logical_block_size: 512,
                ..Default::default()
            }),
        }),
        Layout::State => Body::State(StateFields { state: 0x0080_f282 }),
        Layout::ReqState => Body::ReqState(ReqStateFields { mask: 3, val: 1 }),
        Layout::StateReply => Body::StateReply(StateReplyFields { retcode: -2 }),
        Layout::SyncParam => Body::SyncParam(SyncParamRepr {
            resync_rate: 250,
            verify_alg: Some(b"md5"),
        }),
        Layout::SyncParam89 => Body::SyncParam89(SyncParam89Repr {
            resync_rate: 250,
            verify_alg: b"sha1",
            csums_alg: b"",
            controller: Some(Controller {
                c_plan_ahead: 20,
                c_delay_target: 10,
                c_fill_target: 100,
                c_max_rate: 102400,
            }),
        }),
        Layout::TwopcRequest => {
            Body::TwopcRequest(TwopcRequestFields::prepare_v1(9, 0, 1, 3, 0x1F0, 0xA0))
        }
        Layout::TwopcReply => Body::TwopcReply(TwopcReplyFields {
            tid: 9,
            initiator_node_id: 0,
            reachable_nodes: 3,
            ..Default::default()
        }),
        Layout::DelayProbe => Body::DelayProbe(DelayProbeFields {
            seq_num: 1,
            offset: 2,
        }),
        Layout::Dagtag => Body::Dagtag(DagtagFields { dagtag: 99 }),
        Layout::PeerAck => Body::PeerAck(PeerAckFields {
            mask: 3,
            dagtag: 99,
        }),
        Layout::PeersInSync => Body::PeersInSync(PeersInSyncFields {
            sector: 8,
            mask: 3,
            size: 4096,
        }),
        Layout::PeerDagtag => Body::PeerDagtag(PeerDagtagFields {
            dagtag: 99,
            node_id: 1,
        }),
        Layout::FlushRequests => Body::FlushRequests(FlushRequestsFields { flush_sequence: 5 }),
        Layout::FlushForward => Body::FlushForward(FlushForwardFields {
            flush_sequence: 5,
            initiator_node_id: 1,
        }),
        Layout::FlushAck => Body::FlushAck(FlushAckFields {
            flush_sequence: 5,
            primary_node_id: 0,
        }),
        Layout::EnableReplication => Body::EnableReplication(EnableReplicationFields { enable: 1 }),
        Layout::Bitmap => Body::Bitmap(&DATA[..64]),
        Layout::CompressedBitmap => Body::CompressedBitmap(CompressedRepr {
            first_set: true,
            pad_bits: 3,
            code: &[0xdf, 0x0c],
        }),
    })
}

fn agreements() -> [Agreed; 3] {
    [
        Agreed::default(),
        Agreed::new(96, 0x0F),
        Agreed::new(122, 0x1F),
    ]
}

#[test]
fn every_command_round_trips_under_every_header() {
    for &command in Command::ALL {
        let Some(body) = sample(command) else {
            assert!(matches!(
                command,
                Command::BecomeSyncSource | Command::BecomeSyncTarget
            ));
            continue;
        };
        for agreed in agreements() {
            let frame = Frame::new(command, 3, body).unwrap();
            let mut buf = vec![0u8; frame.buffer_len(&agreed)];
            assert_eq!(frame.emit(&agreed, &mut buf), Ok(buf.len()), "{command}");
            // Socket-role packets arrive before anything is agreed.
            let initial = matches!(command, Command::InitialData | Command::InitialMeta);
            let rx = if initial { Agreed::default() } else { agreed };
            let (back, used) = Frame::parse(&buf, &rx).unwrap_or_else(|e| panic!("{command}: {e}"));
            assert_eq!(used, buf.len());
            let expect_volume = match (frame.header(&agreed).kind, command.scope()) {
                (HeaderKind::H100, Scope::Connection) => 0xFFFF,
                (HeaderKind::H100, Scope::Volume) => 3,
                _ => 0,
            };
            assert_eq!(
                back,
                Frame {
                    volume: expect_volume,
                    ..frame
                },
                "{command}"
            );
            let short = buf.len() - 1;
            assert!(frame.emit(&agreed, &mut buf[..short]).is_err());
        }
    }
}

#[test]
fn every_truncation_is_an_error() {
    let agreed = Agreed::new(122, 0x1F);
    for &command in Command::ALL {
        let Some(body) = sample(command) else {
            continue;
        };
        let frame = Frame::new(command, 0, body).unwrap();
        let mut buf = vec![0u8; frame.buffer_len(&agreed)];
        frame.emit(&agreed, &mut buf).unwrap();
        let lenient = Agreed { pv: None, ..agreed };
        for n in 0..buf.len() {
            assert!(
                Frame::parse(&buf[..n], &lenient).is_err(),
                "{command} cut at {n}"
            );
        }
        // The payload alone, cut anywhere, is refused by the body parser unless the layout has a
        // variable tail that may legitimately be shorter.
        let payload = &buf[frame.header(&agreed).kind.size()..];
        for n in 0..payload.len() {
            if let Ok(b) = Body::parse(command, &payload[..n], &agreed) {
                let variable = matches!(
                    b,
                    Body::Data(_)
                        | Body::Wsame(..)
                        | Body::BlockReqDigest(..)
                        | Body::RsReqDigest(..)
                        | Body::AuthResponse(_)
                        | Body::Uuids110(_)
                        | Body::Sizes(_)
                        | Body::SyncParam(_)
                        | Body::SyncParam89(_)
                        | Body::Bitmap(_)
                        | Body::CompressedBitmap(_)
                        | Body::Protocol(_)
                );
                assert!(variable, "{command}: {n}-byte prefix accepted as {b:?}");
            }
        }
    }
}

#[test]
fn header_rules() {
    let ping = Frame::new(Command::Ping, 0, Body::Empty).unwrap();
    let mut buf = [0u8; 16];
    let n = ping.emit_with(HeaderKind::H80, &mut buf).unwrap();
    assert_eq!(
        Frame::parse(&buf[..n], &Agreed::new(122, 0)),
        Err(Error::HeaderNotAllowed {
            kind: HeaderKind::H80,
            pv: 122
        })
    );
    assert!(Frame::parse(&buf[..n], &Agreed::default()).is_ok());
    let init = Frame::new(Command::InitialData, 0, Body::Empty).unwrap();
    assert_eq!(init.header(&Agreed::new(122, 0)).kind, HeaderKind::H80);
    let sizes = SizesRepr {
        qlim: None,
        ..Default::default()
    };
    let f = Frame::new(Command::Sizes, 0, Body::Sizes(sizes)).unwrap();
    let mut out = [0u8; 48];
    let n = f.emit(&Agreed::new(122, 0), &mut out).unwrap();
    assert!(Frame::parse(&out[..n], &Agreed::new(122, 0)).is_ok());
    assert_eq!(
        Frame::parse(
            &out[..n],
            &Agreed::new(122, crate::repl::wire::features::ff::WSAME)
        ),
        Err(Error::LengthMismatch {
            what: "p_sizes",
            expected: 56,
            got: 32
        })
    );
    assert_eq!(
        Frame::new(Command::Ping, 0, Body::Trim(TrimFields::default())),
        Err(Error::WrongBody {
            command: Command::Ping
        })
    );
    assert_eq!(
        Body::parse(Command::Ping, &[0], &Agreed::default()),
        Err(Error::LengthMismatch {
            what: "P_PING",
            expected: 0,
            got: 1
        })
    );
    assert_eq!(
        Body::parse(Command::BecomeSyncTarget, &[], &Agreed::default()),
        Err(Error::UnsupportedCommand {
            command: Command::BecomeSyncTarget
        })
    );
    // A 64 KiB write at pv 96 needs h95; at pv 94 it cannot be framed.
    let big = [0u8; 65536];
    let data = Body::Data(DataRepr {
        data: &big,
        ..Default::default()
    });
    let f = Frame::new(Command::Data, 0, data).unwrap();
    assert_eq!(f.header(&Agreed::new(96, 0)).kind, HeaderKind::H95);
    let mut out = vec![0u8; 70000];
    assert!(matches!(
        f.emit(&Agreed::new(94, 0), &mut out),
        Err(Error::PayloadTooLong { .. })
    ));
    let n = f.emit(&Agreed::new(96, 0), &mut out).unwrap();
    assert_eq!(
        Frame::parse(&out[..n], &Agreed::new(96, 0)).map(|(f, _)| f.command),
        Ok(Command::Data)
    );
}

/// Several frames back to back, as a receive buffer holds them.
#[test]
fn frames_in_a_stream() {
    let agreed = Agreed::new(122, 0x1F);
    let mut stream = Vec::new();
    let mut sent = Vec::new();
    for &command in Command::ALL {
        // Socket-role packets (always h80) only open a socket; they are read on their own.
        if matches!(command, Command::InitialData | Command::InitialMeta) {
            continue;
        }
        if let Some(body) = sample(command) {
            let f = Frame::new(command, 1, body).unwrap();
            let mut buf = vec![0u8; f.buffer_len(&agreed)];
            f.emit(&agreed, &mut buf).unwrap();
            stream.extend_from_slice(&buf);
            sent.push(command);
        }
    }
    let mut at = 0;
    let mut got = Vec::new();
    while at < stream.len() {
        let (f, used) = Frame::parse(&stream[at..], &agreed).unwrap();
        got.push(f.command);
        at += used;
    }
    assert_eq!(got, sent);
}

proptest::proptest! {
    /// Whatever payload a parser accepts re-emits to something that parses the same.
    #[test]
    fn accepted_payloads_reemit(
        index in 0usize..Command::ALL.len(),
        payload in proptest::collection::vec(proptest::num::u8::ANY, 0..200),
        digest in 0usize..24,
    ) {
        let command = Command::ALL[index];
        let agreed = Agreed { pv: Some(122), features: 0, digest_len: digest };
        if let Ok(body) = Body::parse(command, &payload, &agreed) {
            let mut out = vec![0u8; body.buffer_len()];
            proptest::prop_assert_eq!(body.emit(&mut out), Ok(out.len()));
            let again = Body::parse(command, &out, &agreed).unwrap();
            proptest::prop_assert_eq!(again, body);
        }
    }
}
