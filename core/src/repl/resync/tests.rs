//! SyncTarget: requests over the bitmap, replies, acks, overlap with application writes,
//! throttling, pause and progress.

use super::*;
use crate::repl::wire::data::{DataFields, DataRepr};
use std::vec;
use std::vec::Vec;

const AGREED: Agreed = Agreed::new(122, 0);

fn cfg(rate: u64, in_flight: usize, max_request: u32) -> ResyncConfig {
    ResyncConfig {
        rate,
        max_in_flight: in_flight,
        max_request,
        ..ResyncConfig::new(AGREED)
    }
}

/// Every request the target emits now, as (sector, block id, size).
fn drain(t: &mut SyncTarget<8>, now: u64, bm: &DirtyBitmap<'_>) -> Vec<(u64, BlockId, u32)> {
    let mut out = [0u8; 64];
    let mut reqs = vec![];
    while let Some(n) = t.poll_request(now, bm, &mut out).unwrap() {
        let (f, used) = Frame::parse(&out[..n], &AGREED).unwrap();
        assert_eq!((f.command, used), (Command::RsDataRequest, 40));
        let Body::BlockReq(r) = f.body else { panic!() };
        reqs.push((r.sector, r.block_id, r.blksize));
    }
    reqs
}

fn reply<'a>(sector: u64, id: BlockId, data: &'a [u8]) -> Frame<'a> {
    Frame::new(
        Command::RsDataReply,
        0,
        Body::Data(DataRepr {
            fields: DataFields {
                sector,
                block_id: id,
                seq_num: 0,
                dp_flags: 0,
            },
            digest: &[],
            data,
        }),
    )
    .unwrap()
}

#[test]
fn requests_runs_and_clears_after_the_write() {
    let mut store = [0u8; 16];
    let mut bm = DirtyBitmap::new(&mut store, 100 * 8).unwrap();
    bm.set_bits(3, 6);
    bm.set_bits(40, 41);
    bm.set_bits(90, 100);
    let mut t = SyncTarget::<8>::new(cfg(0, 2, 16 << 10));
    assert_eq!(drain(&mut t, 0, &bm), []);
    t.start(0);
    let reqs = drain(&mut t, 0, &bm);
    // Two in flight at most; runs are split at 16 KiB.
    assert_eq!(
        reqs,
        [
            (24, BlockId::from_host(1), 3 * 4096),
            (320, BlockId::from_host(2), 4096)
        ]
    );
    let data = vec![9u8; 3 * 4096];
    let w = t
        .handle_reply(&reply(24, BlockId::from_host(1), &data), &mut bm)
        .unwrap()
        .unwrap();
    assert_eq!(w.segments().collect::<Vec<_>>(), [(24, &data[..])]);
    // Not cleared until written.
    assert_eq!(bm.count(), 14);
    let mut meta = [0u8; 64];
    let n = t.write_done(w.token, true, &mut bm, &mut meta).unwrap();
    let (f, _) = Frame::parse(&meta[..n], &AGREED).unwrap();
    assert_eq!(f.command, Command::RsWriteAck);
    let Body::BlockAck(a) = f.body else { panic!() };
    assert_eq!(
        (a.sector, a.block_id, a.blksize),
        (24, BlockId::from_host(1), 3 * 4096)
    );
    assert_eq!(bm.count(), 11);
    assert_eq!(
        t.write_done(w.token, true, &mut bm, &mut meta),
        Err(DataError::StaleToken)
    );
    // The last run stops at the device end; 10 blocks in 16 KiB requests: 4 + 4 + 2.
    let more = drain(&mut t, 0, &bm);
    assert_eq!(more, [(720, BlockId::from_host(3), 4 * 4096)]);
    // A reply of the wrong size, or for nothing requested, is refused.
    assert!(matches!(
        t.handle_reply(&reply(720, BlockId::from_host(3), &data), &mut bm),
        Err(DataError::AckMismatch { .. })
    ));
    assert!(matches!(
        t.handle_reply(&reply(8, BlockId::from_host(3), &data), &mut bm),
        Err(DataError::UnknownRequest { .. })
    ));
    assert_eq!(t.poll_event(&bm), None);
    assert!(t.progress(0, &bm).remaining_bytes > 0);
}

#[test]
fn finishes_and_reports_failures() {
    let mut store = [0u8; 8];
    let mut bm = DirtyBitmap::new(&mut store, 64 * 8).unwrap();
    bm.set_bits(0, 2);
    let mut t = SyncTarget::<8>::new(cfg(0, 8, 4096));
    t.start(0);
    let reqs = drain(&mut t, 0, &bm);
    assert_eq!(reqs.len(), 2);
    let neg = Frame::new(
        Command::NegRsDReply,
        0,
        Body::BlockAck(BlockAckFields {
            sector: 0,
            block_id: reqs[0].1,
            blksize: 4096,
            seq_num: 1,
        }),
    )
    .unwrap();
    assert_eq!(t.handle_reply(&neg, &mut bm), Ok(None));
    let data = [1u8; 4096];
    let w = t
        .handle_reply(&reply(8, reqs[1].1, &data), &mut bm)
        .unwrap()
        .unwrap();
    t.write_done(w.token, true, &mut bm, &mut [0u8; 64])
        .unwrap();
    assert_eq!(drain(&mut t, 0, &bm), []);
    assert_eq!(
        t.poll_event(&bm),
        Some(ResyncEvent::Finished {
            remaining_bits: 1,
            failed_bits: 1
        })
    );
    assert_eq!(t.poll_event(&bm), None);
    let p = t.progress(10, &bm);
    assert_eq!(
        (p.done_bytes, p.failed_bytes, p.remaining_bytes),
        (4096, 4096, 4096)
    );
}

#[test]
fn application_write_over_a_pending_reply() {
    let mut store = [0u8; 8];
    let mut bm = DirtyBitmap::new(&mut store, 64 * 8).unwrap();
    bm.set_bits(0, 4);
    let mut t = SyncTarget::<8>::new(cfg(0, 8, 16 << 10));
    t.start(0);
    let reqs = drain(&mut t, 0, &bm);
    assert_eq!(reqs, [(0, BlockId::from_host(1), 16384)]);
    // The application overwrites block 1 whole (its in-sync ack clears it) and half of block 2.
    t.app_write(8, 4096);
    bm.clear_sectors(8, 4096).unwrap();
    t.app_write(16, 2048);
    let data: Vec<u8> = (0..16384).map(|i| (i / 4096) as u8).collect();
    let w = t
        .handle_reply(&reply(0, reqs[0].1, &data), &mut bm)
        .unwrap()
        .unwrap();
    let segs: Vec<(u64, usize)> = w.segments().map(|(s, d)| (s, d.len())).collect();
    assert_eq!(segs, [(0, 4096), (24, 4096)]);
    t.write_done(w.token, true, &mut bm, &mut [0u8; 64])
        .unwrap();
    // Block 2 is still dirty: a second pass asks for it again.
    assert_eq!(bm.runs(0).collect::<Vec<_>>(), [(2, 1)]);
    assert_eq!(t.poll_event(&bm), None);
    let again = drain(&mut t, 0, &bm);
    assert_eq!(again, [(16, BlockId::from_host(2), 4096)]);
    let w = t
        .handle_reply(&reply(16, again[0].1, &data[..4096]), &mut bm)
        .unwrap()
        .unwrap();
    t.write_done(w.token, true, &mut bm, &mut [0u8; 64])
        .unwrap();
    assert_eq!(
        t.poll_event(&bm),
        Some(ResyncEvent::Finished {
            remaining_bits: 0,
            failed_bits: 0
        })
    );
}

#[test]
fn throttle_pause_and_pv96() {
    let mut store = vec![0u8; crate::repl::bitmap::bytes_for(4096 * 8)];
    let mut bm = DirtyBitmap::new(&mut store, 4096 * 8).unwrap();
    bm.set_all();
    // 40 KiB/s with 4 KiB requests: the 4 KiB burst, then one every 100 ms.
    let mut t = SyncTarget::<8>::new(cfg(40 << 10, 8, 4096));
    t.start(0);
    assert_eq!(drain(&mut t, 0, &bm).len(), 1);
    assert_eq!(t.poll_timeout(0, &bm), Some(100));
    assert_eq!(drain(&mut t, 99, &bm).len(), 0);
    assert_eq!(drain(&mut t, 100, &bm).len(), 1);
    t.pause(100);
    assert_eq!(drain(&mut t, 10_000, &bm).len(), 0);
    assert_eq!(t.poll_timeout(10_000, &bm), None);
    assert!(t.progress(10_000, &bm).paused);
    t.resume(10_000);
    assert_eq!(drain(&mut t, 10_000, &bm).len(), 1);

    let old = Agreed::new(96, 0);
    let mut t = SyncTarget::<8>::new(ResyncConfig {
        rate: 0,
        ..ResyncConfig::new(old)
    });
    t.start(0);
    let mut out = [0u8; 64];
    let n = t.poll_request(0, &bm, &mut out).unwrap().unwrap();
    let (f, _) = Frame::parse(&out[..n], &old).unwrap();
    let Body::BlockReq(r) = f.body else { panic!() };
    // Below pv 122: ID_SYNCER, and requests capped at the 128 KiB bio size of pv 95-99.
    assert_eq!((r.block_id, r.blksize), (BlockId::SYNCER, 128 << 10));
    let data = vec![0u8; 128 << 10];
    let w = t
        .handle_reply(&reply(0, BlockId::SYNCER, &data), &mut bm)
        .unwrap()
        .unwrap();
    let n = t.write_done(w.token, false, &mut bm, &mut out).unwrap();
    let (f, _) = Frame::parse(&out[..n], &old).unwrap();
    assert_eq!(f.command, Command::NegAck);
    assert!(matches!(f.body, Body::BlockAck(a) if a.block_id == BlockId::SYNCER));
}

#[test]
fn routes() {
    let new = Agreed::new(122, 0);
    let old = Agreed::new(110, 0);
    let id = BlockId::from_host(5);
    assert_eq!(route(Command::RsWriteAck, id, &old), Some(Route::Primary));
    assert_eq!(
        route(Command::RsWriteAck, BlockId::SYNCER, &old),
        Some(Route::SyncSource)
    );
    assert_eq!(
        route(Command::RsWriteAck, id, &new),
        Some(Route::SyncSource)
    );
    assert_eq!(
        route(Command::NegAck, BlockId::SYNCER, &old),
        Some(Route::SyncSource)
    );
    assert_eq!(route(Command::NegAck, id, &new), Some(Route::Primary));
    assert_eq!(
        route(Command::RsDataReply, id, &new),
        Some(Route::SyncTarget)
    );
    assert_eq!(route(Command::Barrier, id, &new), Some(Route::Secondary));
    assert_eq!(route(Command::Ping, id, &new), None);
}
