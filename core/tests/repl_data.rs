//! The DRBD data path end to end (core/src/repl: bitmap, activity log, transfer log, write,
//! secondary, resync): a primary and a secondary with in-memory disks, an in-memory link (a data
//! and a meta queue each way) and a virtual clock. Every packet either side emits is split and
//! parsed back with the wire layer's `Frame::parse` before the other side sees it.

use std::collections::VecDeque;

use keelson_core::repl::activity_log::{ActivityLog, AlGrant, RECORD_SIZE};
use keelson_core::repl::bitmap::{bytes_for, DirtyBitmap, SECTORS_PER_BIT};
use keelson_core::repl::data_error::DataError;
use keelson_core::repl::resync::{
    route, ResyncConfig, ResyncEvent, ResyncToken, Route, SyncTarget,
};
use keelson_core::repl::resync_source::{ReadToken, SyncSource};
use keelson_core::repl::secondary::{Secondary, SecondaryConfig, WriteKind, WriteToken};
use keelson_core::repl::transfer_log::RequestId;
use keelson_core::repl::wire::bitmap::CompressedRepr;
use keelson_core::repl::wire::{Agreed, BlockId, Body, Command, Frame, HeaderKind};
use keelson_core::repl::write::{Primary, PrimaryConfig, Protocol, WriteFlags};

const MIB: usize = 1 << 20;
const DISK: usize = 32 * MIB;
const SECTORS: u64 = (DISK / 512) as u64;
const AL_RING: u32 = 2;
const AGREED: Agreed = Agreed::new(122, 0);

/// Splits an emitted buffer into packets, checking each parses whole with the wire layer.
fn packets(buf: &[u8]) -> Vec<Vec<u8>> {
    let mut out = vec![];
    let mut at = 0;
    while at < buf.len() {
        let (_, n) = Frame::parse(&buf[at..], &AGREED).expect("emitted packets parse");
        out.push(buf[at..at + n].to_vec());
        at += n;
    }
    out
}

#[derive(Default)]
struct Queues {
    data: VecDeque<Vec<u8>>,
    meta: VecDeque<Vec<u8>>,
}

impl Queues {
    fn is_empty(&self) -> bool {
        self.data.is_empty() && self.meta.is_empty()
    }
}

struct Pri<const AL: usize> {
    disk: Vec<u8>,
    bm: Vec<u8>,
    al: ActivityLog<AL>,
    ring: Vec<u8>,
    p: Primary<64>,
    src: SyncSource<8>,
    completed: Vec<RequestId>,
    retired: usize,
}

/// A local write the secondary's shell has submitted. They are applied in the order the core
/// handed them out, as a shell must for overlapping writes.
enum Op {
    App(WriteToken, u64, Vec<u8>),
    Resync(ResyncToken, Vec<(u64, Vec<u8>)>),
}

struct Sec {
    disk: Vec<u8>,
    bm: Vec<u8>,
    s: Secondary<64, 16>,
    tgt: SyncTarget<8>,
    ops: Vec<Op>,
    /// Resync replies written only in part because an application write replaced blocks.
    skipped: usize,
}

/// `AL` is the activity log's size: 8 extents cover the whole 32 MiB disk.
struct Pair<const AL: usize = 8> {
    now: u64,
    up: bool,
    pri: Pri<AL>,
    sec: Sec,
    to_sec: Queues,
    to_pri: Queues,
}

fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s as u8
        })
        .collect()
}

fn write_disk(disk: &mut [u8], sector: u64, data: &[u8]) {
    let at = sector as usize * 512;
    disk[at..at + data.len()].copy_from_slice(data);
}

impl<const AL: usize> Pair<AL> {
    fn new(protocol: Protocol, resync: ResyncConfig) -> Self {
        let mut p = Primary::new(PrimaryConfig::new(protocol, AGREED));
        p.connected(AGREED, false);
        Pair {
            now: 0,
            up: true,
            pri: Pri {
                disk: vec![0; DISK],
                bm: vec![0; bytes_for(SECTORS)],
                al: ActivityLog::new(AL_RING).unwrap(),
                ring: vec![0; RECORD_SIZE * AL_RING as usize],
                p,
                src: SyncSource::new(AGREED, 0),
                completed: vec![],
                retired: 0,
            },
            sec: Sec {
                disk: vec![0; DISK],
                bm: vec![0; bytes_for(SECTORS)],
                s: Secondary::new(SecondaryConfig {
                    protocol,
                    volume: 0,
                    agreed: AGREED,
                }),
                tgt: SyncTarget::new(resync),
                ops: vec![],
                skipped: 0,
            },
            to_sec: Queues::default(),
            to_pri: Queues::default(),
        }
    }

    /// An application write on the primary: activity log first (its record goes to the ring
    /// before the write is submitted), then P_DATA out and the local write.
    fn write(&mut self, sector: u64, data: &[u8]) -> RequestId {
        let len = data.len() as u64;
        let grant = loop {
            match self.pri.al.begin_write(sector, len) {
                // Every slot is held by a write the peer has not confirmed: close the epoch
                // and let the barrier ack release some, as a shell would.
                Err(DataError::AlBusy { .. }) if self.up => {
                    self.barrier();
                    self.settle();
                }
                other => break other.unwrap(),
            }
        };
        let pri = &mut self.pri;
        if let AlGrant::AfterTransaction(n) = grant {
            let mut rec = vec![0u8; RECORD_SIZE];
            let t = pri.al.poll_transaction(&mut rec).unwrap().unwrap();
            assert_eq!(t.number, n);
            let at = t.offset as usize;
            pri.ring[at..at + RECORD_SIZE].copy_from_slice(&rec);
            pri.al.transaction_written(n).unwrap();
            assert!(pri.al.is_durable(n));
        }
        let mut out = vec![0u8; 2 * MIB];
        let mut bm = DirtyBitmap::new(&mut pri.bm, SECTORS).unwrap();
        let s = pri
            .p
            .write(sector, data, WriteFlags::default(), &mut bm, &mut out)
            .unwrap();
        assert_eq!(s.len == 0, !self.up);
        self.to_sec.data.extend(packets(&out[..s.len]));
        write_disk(&mut pri.disk, sector, data);
        pri.p.local_done(s.id, true).unwrap();
        self.poll_primary();
        s.id
    }

    fn poll_primary(&mut self) {
        let pri = &mut self.pri;
        while let Some(c) = pri.p.poll_completion() {
            assert!(c.local_ok);
            pri.completed.push(c.id);
        }
        while let Some(r) = pri.p.poll_retired() {
            pri.al.end_write(r.sector, u64::from(r.size)).unwrap();
            pri.retired += 1;
        }
    }

    fn barrier(&mut self) {
        let mut out = [0u8; 64];
        if let Some(n) = self.pri.p.poll_barrier(&mut out).unwrap() {
            self.to_sec.data.extend(packets(&out[..n]));
        }
    }

    /// The secondary reads everything queued for it; local writes are only submitted.
    fn deliver_to_sec(&mut self) {
        let sec = &mut self.sec;
        while let Some(pkt) = self.to_sec.data.pop_front() {
            let (f, _) = Frame::parse(&pkt, &AGREED).unwrap();
            let mut meta = [0u8; 64];
            let mut bm = DirtyBitmap::new(&mut sec.bm, SECTORS).unwrap();
            match route(f.command, BlockId::default(), &AGREED) {
                Some(Route::Secondary) if f.command == Command::Barrier => {
                    let Body::Barrier(b) = f.body else { panic!() };
                    sec.s.handle_barrier(&b).unwrap();
                }
                Some(Route::Secondary) => {
                    let r = sec.s.handle_data(&f, &bm, &mut sec.tgt, &mut meta).unwrap();
                    self.to_pri.meta.extend(packets(&meta[..r.meta_len]));
                    let WriteKind::Data(d) = r.write.kind else {
                        panic!()
                    };
                    sec.ops
                        .push(Op::App(r.write.token, r.write.sector, d.to_vec()));
                }
                Some(Route::SyncTarget) => {
                    if let Some(w) = sec.tgt.handle_reply(&f, &mut bm).unwrap() {
                        let segs: Vec<_> = w.segments().map(|(s, d)| (s, d.to_vec())).collect();
                        if segs.iter().map(|(_, d)| d.len()).sum::<usize>() < w.data.len() {
                            sec.skipped += 1;
                        }
                        sec.ops.push(Op::Resync(w.token, segs));
                    }
                }
                other => panic!("secondary got {:?} ({other:?})", f.command),
            }
        }
        assert!(self.to_sec.meta.is_empty());
    }

    /// The secondary's disk finishes every submitted write; flushes, then barrier acks.
    fn complete_sec(&mut self) {
        let sec = &mut self.sec;
        let mut meta = [0u8; 64];
        let mut bm = DirtyBitmap::new(&mut sec.bm, SECTORS).unwrap();
        for op in sec.ops.drain(..) {
            let n = match op {
                Op::App(token, sector, data) => {
                    write_disk(&mut sec.disk, sector, &data);
                    sec.s.write_done(token, true, &mut bm, &mut meta).unwrap()
                }
                Op::Resync(token, segs) => {
                    for (sector, data) in segs {
                        write_disk(&mut sec.disk, sector, &data);
                    }
                    sec.tgt.write_done(token, true, &mut bm, &mut meta).unwrap()
                }
            };
            self.to_pri.meta.extend(packets(&meta[..n]));
        }
        while let Some(t) = sec.s.poll_flush() {
            sec.s.flushed(t).unwrap();
        }
        while let Some(n) = sec.s.poll_transmit(&mut meta).unwrap() {
            self.to_pri.meta.extend(packets(&meta[..n]));
        }
    }

    /// The primary reads the queued resync requests from its disk but does not answer yet: a
    /// source whose reads finish after a later application write was sent.
    fn read_requests(&mut self) -> Vec<(ReadToken, u64, Vec<u8>)> {
        let pri = &mut self.pri;
        let mut held = vec![];
        while let Some(pkt) = self.to_pri.data.pop_front() {
            let (f, _) = Frame::parse(&pkt, &AGREED).unwrap();
            let bm = DirtyBitmap::new(&mut pri.bm, SECTORS).unwrap();
            let r = pri.src.handle_request(&f, &bm).unwrap();
            let at = r.sector as usize * 512;
            held.push((
                r.token,
                r.sector,
                pri.disk[at..at + r.size as usize].to_vec(),
            ));
        }
        held
    }

    fn send_replies(&mut self, held: Vec<(ReadToken, u64, Vec<u8>)>) {
        let mut out = vec![0u8; 2 * MIB];
        for (token, _, data) in held {
            let n = self.pri.src.reply(token, &data, &mut out).unwrap();
            self.to_sec.data.extend(packets(&out[..n]));
        }
    }

    /// The primary reads its queues: resync requests (answered from its disk) and acks.
    fn deliver_to_pri(&mut self) {
        let pri = &mut self.pri;
        let mut out = vec![0u8; 2 * MIB];
        while let Some(pkt) = self.to_pri.data.pop_front() {
            let (f, _) = Frame::parse(&pkt, &AGREED).unwrap();
            let bm = DirtyBitmap::new(&mut pri.bm, SECTORS).unwrap();
            let r = pri.src.handle_request(&f, &bm).unwrap();
            assert!(!pri.p.local_write_pending(r.sector, u64::from(r.size)));
            let at = r.sector as usize * 512;
            let data = pri.disk[at..at + r.size as usize].to_vec();
            let n = pri.src.reply(r.token, &data, &mut out).unwrap();
            self.to_sec.data.extend(packets(&out[..n]));
        }
        while let Some(pkt) = self.to_pri.meta.pop_front() {
            let (f, _) = Frame::parse(&pkt, &AGREED).unwrap();
            let mut bm = DirtyBitmap::new(&mut pri.bm, SECTORS).unwrap();
            match f.body {
                Body::BarrierAck(a) => pri.p.handle_barrier_ack(&a).unwrap(),
                Body::BlockAck(a) => match route(f.command, a.block_id, &AGREED) {
                    Some(Route::Primary) => pri.p.handle_ack(f.command, &a, &mut bm).unwrap(),
                    Some(Route::SyncSource) => pri.src.handle_ack(f.command, &a, &mut bm).unwrap(),
                    other => panic!("primary got {:?} ({other:?})", f.command),
                },
                _ => panic!("primary got {:?}", f.command),
            }
        }
        self.poll_primary();
    }

    fn settle(&mut self) {
        for _ in 0..100 {
            self.deliver_to_sec();
            self.complete_sec();
            self.deliver_to_pri();
            if self.to_sec.is_empty() && self.to_pri.is_empty() {
                return;
            }
        }
        panic!("the link did not settle");
    }

    /// The link breaks: queued packets are lost; writes the secondary had submitted still land.
    fn cut(&mut self) {
        self.up = false;
        self.to_sec = Queues::default();
        self.to_pri = Queues::default();
        let mut bm = DirtyBitmap::new(&mut self.pri.bm, SECTORS).unwrap();
        self.pri.p.connection_lost(&mut bm);
        self.pri.src.stop(self.now);
        for op in self.sec.ops.drain(..) {
            if let Op::App(_, sector, data) = op {
                write_disk(&mut self.sec.disk, sector, &data);
            }
        }
        self.sec.s.reset(AGREED);
        self.sec.tgt.stop(self.now);
        self.poll_primary();
    }

    fn dirty(&mut self) -> (u64, u64) {
        let p = DirtyBitmap::new(&mut self.pri.bm, SECTORS).unwrap().count();
        let s = DirtyBitmap::new(&mut self.sec.bm, SECTORS).unwrap().count();
        (p, s)
    }

    /// Reconnect as SyncSource → SyncTarget: the source's bitmap goes first, the target merges
    /// it and answers with its own (§3.11); then the resync starts on both sides.
    fn reconnect(&mut self) {
        self.up = true;
        self.pri.p.connected(AGREED, true);
        self.sec.s.reset(AGREED);
        self.sec.s.set_syncing(true);
        exchange(&mut self.pri.bm, &mut self.sec.bm);
        exchange(&mut self.sec.bm, &mut self.pri.bm);
        self.pri.src.start(self.now);
        self.sec.tgt.start(self.now);
    }

    /// Runs the resync on the virtual clock (1 ms steps) until the target reports the end;
    /// `each_ms` runs every step after the target's requests went out and before they are
    /// served. Returns the event and the finishing time.
    fn resync(&mut self, mut each_ms: impl FnMut(&mut Self)) -> (ResyncEvent, u64) {
        loop {
            let mut out = [0u8; 64];
            loop {
                let bm = DirtyBitmap::new(&mut self.sec.bm, SECTORS).unwrap();
                let Some(n) = self.sec.tgt.poll_request(self.now, &bm, &mut out).unwrap() else {
                    break;
                };
                self.to_pri.data.extend(packets(&out[..n]));
            }
            each_ms(self);
            self.settle();
            let bm = DirtyBitmap::new(&mut self.sec.bm, SECTORS).unwrap();
            if let Some(e) = self.sec.tgt.poll_event(&bm) {
                self.sec.s.set_syncing(false);
                self.pri.p.set_syncing(false);
                return (e, self.now);
            }
            self.now += 1;
            assert!(self.now < 600_000, "resync did not finish");
        }
    }
}

/// One direction of the bitmap exchange, in real packets (RLE where it pays).
fn exchange(from: &mut [u8], to: &mut [u8]) {
    let a = DirtyBitmap::new(from, SECTORS).unwrap();
    let mut b = DirtyBitmap::new(to, SECTORS).unwrap();
    let mut tx = a.xfer(HeaderKind::H100);
    let mut rx = b.xfer(HeaderKind::H100);
    let mut payload = [0u8; 4080];
    let mut buf = [0u8; 4096];
    loop {
        let c = a.send_packet(&mut tx, true, &mut payload).unwrap().unwrap();
        let body = match c.command {
            Command::Bitmap => Body::Bitmap(&payload[..c.len]),
            _ => Body::CompressedBitmap(CompressedRepr::parse(&payload[..c.len]).unwrap()),
        };
        let n = Frame::new(c.command, 0, body)
            .unwrap()
            .emit(&AGREED, &mut buf)
            .unwrap();
        let (f, used) = Frame::parse(&buf[..n], &AGREED).unwrap();
        assert_eq!(used, n);
        if b.receive_frame(&mut rx, &f).unwrap() {
            return;
        }
    }
}

fn unlimited() -> ResyncConfig {
    ResyncConfig {
        rate: 0,
        ..ResyncConfig::new(AGREED)
    }
}

/// A spread of writes: sizes 4 KiB … 64 KiB, also 512-byte ones, across the disk.
fn workload(n: u64) -> Vec<(u64, Vec<u8>)> {
    (0..n)
        .map(|i| {
            let sectors = [8u64, 1, 32, 128, 16][(i % 5) as usize];
            let sector = (i * 7919 * 64) % (SECTORS - 128);
            (sector, pattern(i, sectors as usize * 512))
        })
        .collect()
}

#[test]
fn protocols_replicate_and_complete_on_their_ack() {
    for protocol in [Protocol::A, Protocol::B, Protocol::C] {
        let mut pair: Pair = Pair::new(protocol, unlimited());
        for (i, (sector, data)) in workload(40).into_iter().enumerate() {
            let id = pair.write(sector, &data);
            let done = |p: &Pair| p.pri.completed.contains(&id);
            // A: complete once handed to the send buffer (and written locally).
            assert_eq!(
                done(&pair),
                protocol == Protocol::A,
                "{protocol:?} write {i}"
            );
            pair.deliver_to_sec();
            pair.deliver_to_pri();
            // B: complete on P_RECV_ACK, before the secondary's disk has it.
            assert_eq!(
                done(&pair),
                protocol != Protocol::C,
                "{protocol:?} write {i}"
            );
            pair.complete_sec();
            pair.deliver_to_pri();
            // C: complete on P_WRITE_ACK.
            assert!(done(&pair), "{protocol:?} write {i}");
            if i % 7 == 6 {
                pair.barrier();
            }
        }
        // Writes stay in the transfer log (and the activity log) until their barrier is acked.
        assert!(!pair.pri.p.transfer_log().is_empty());
        pair.barrier();
        pair.settle();
        assert!(pair.pri.p.transfer_log().is_empty());
        assert_eq!(pair.pri.retired, 40);
        assert_eq!(pair.pri.completed.len(), 40);
        assert!(pair.pri.disk == pair.sec.disk, "{protocol:?}: disks differ");
        assert_eq!(pair.dirty(), (0, 0));
    }
}

/// Blocks the writes touch, as bitmap bits.
fn blocks(writes: &[(u64, Vec<u8>)]) -> std::collections::BTreeSet<u64> {
    writes
        .iter()
        .flat_map(|(s, d)| {
            let first = s / SECTORS_PER_BIT;
            let end = (s + d.len() as u64 / 512).div_ceil(SECTORS_PER_BIT);
            first..end
        })
        .collect()
}

fn set_bits(bm: &mut [u8]) -> std::collections::BTreeSet<u64> {
    let bm = DirtyBitmap::new(bm, SECTORS).unwrap();
    bm.runs(0).flat_map(|(s, n)| s..s + n).collect()
}

#[test]
fn lost_link_marks_the_transfer_log_dirty_and_resync_copies_exactly_that() {
    let mut pair: Pair = Pair::new(Protocol::C, unlimited());
    let w = workload(30);
    // 0..10: acked and barrier-acked: safe on the peer.
    for (s, d) in &w[..10] {
        pair.write(*s, d);
    }
    pair.barrier();
    pair.settle();
    assert!(pair.pri.p.transfer_log().is_empty());
    // 10..20: written and acked (complete) but their barrier not yet acked.
    for (s, d) in &w[10..20] {
        pair.write(*s, d);
    }
    pair.settle();
    assert_eq!(pair.pri.completed.len(), 20);
    let in_log: Vec<_> = pair.pri.p.transfer_log().iter().map(|e| e.id).collect();
    assert_eq!(in_log, (11..=20).collect::<Vec<_>>());
    // 20..25: sent, never delivered.
    let ids: Vec<_> = w[20..25].iter().map(|(s, d)| pair.write(*s, d)).collect();
    assert!(ids.iter().all(|id| !pair.pri.completed.contains(id)));
    pair.cut();
    // The in-flight writes complete now (the peer is gone), unreplicated.
    assert!(ids.iter().all(|id| pair.pri.completed.contains(id)));
    assert_eq!(set_bits(&mut pair.pri.bm), blocks(&w[10..25]));
    // 25..30 while disconnected: dirty at once.
    for (s, d) in &w[25..30] {
        pair.write(*s, d);
    }
    let dirty_blocks = blocks(&w[10..30]);
    assert_eq!(set_bits(&mut pair.pri.bm), dirty_blocks);
    assert!(pair.pri.disk != pair.sec.disk);

    pair.reconnect();
    let dirty_bytes = dirty_blocks.len() as u64 * 4096;
    let (event, _) = pair.resync(|_| {});
    assert_eq!(
        event,
        ResyncEvent::Finished {
            remaining_bits: 0,
            failed_bits: 0
        }
    );
    // Exactly the dirty blocks crossed: no more bytes than they hold.
    assert_eq!(pair.pri.src.sent_bytes(), dirty_bytes);
    assert_eq!(pair.sec.tgt.requested_bytes(), dirty_bytes);
    assert!(pair.pri.disk == pair.sec.disk);
    assert_eq!(pair.dirty(), (0, 0));
    let p = pair.sec.tgt.progress(
        pair.now,
        &DirtyBitmap::new(&mut pair.sec.bm, SECTORS).unwrap(),
    );
    assert_eq!(
        (p.done_bytes, p.remaining_bytes, p.permille()),
        (dirty_bytes, 0, 1000)
    );
}

#[test]
fn activity_log_recovery_marks_hot_extents_dirty() {
    // Four slots, so the fifth and sixth extents evict.
    let mut pair: Pair<4> = Pair::new(Protocol::A, unlimited());
    let ext = |e: u64| e * 8192; // sectors per 4 MiB extent
                                 // Extents 0, 1, 2, 5 fill the four slots; after their barrier acks, 7 evicts the least
                                 // recently used (0) and 6 evicts 1.
    for e in [0, 1, 2, 5] {
        pair.write(ext(e) + 8, &pattern(e, 4096));
    }
    pair.barrier();
    pair.settle();
    pair.write(ext(2) + 64, &pattern(9, 4096));
    pair.write(ext(7), &pattern(7, 8192));
    pair.write(ext(6) + 16, &pattern(6, 512));
    // The primary crashes now: writes to 2, 7 and 6 may be missing on the peer.
    let unacked: Vec<u64> = pair.pri.p.transfer_log().iter().map(|e| e.sector).collect();
    assert_eq!(unacked.len(), 3);
    let (log, rec) = ActivityLog::<4>::recover(AL_RING, &pair.pri.ring).unwrap();
    assert_eq!(rec.active, 4);
    let mut hot: Vec<u32> = log.active_extents().collect();
    hot.sort();
    assert_eq!(hot, [2, 5, 6, 7]);
    // Every write the peer might lack lies in a recovered extent.
    assert!(unacked.iter().all(|s| hot.contains(&((s / 8192) as u32))));
    let mut fresh = vec![0u8; bytes_for(SECTORS)];
    let mut bm = DirtyBitmap::new(&mut fresh, SECTORS).unwrap();
    assert_eq!(log.mark_active_dirty(&mut bm), 4 * 1024);
    let runs: Vec<_> = bm.runs(0).collect();
    assert_eq!(runs, [(2048, 1024), (5120, 3072)]);
}

#[test]
fn resync_rate_holds_in_virtual_time() {
    let rate = 1 << 20; // 1 MiB/s
    let cfg = ResyncConfig {
        rate,
        max_in_flight: 4,
        max_request: 64 << 10,
        ..ResyncConfig::new(AGREED)
    };
    let mut pair: Pair = Pair::new(Protocol::C, cfg);
    pair.cut();
    // 3 MiB of scattered dirty data written while disconnected.
    for i in 0..96u64 {
        pair.write(i * 640, &pattern(i, 32 << 10));
    }
    pair.reconnect();
    let total = pair.dirty().0 * 4096;
    assert_eq!(total, 3 << 20);
    let burst = (rate / 10).max(64 << 10);
    let mut worst = 0i64;
    let start = pair.now;
    let (event, end) = pair.resync(|p| {
        let allowed = burst + rate * (p.now - start) / 1000;
        let got = p.sec.tgt.requested_bytes();
        worst = worst.max(got as i64 - allowed as i64);
        let st = DirtyBitmap::new(&mut p.sec.bm, SECTORS).unwrap();
        if p.now % 500 == 0 && p.now > start {
            let prog = p.sec.tgt.progress(p.now, &st);
            assert!(prog.rate <= rate + burst * 1000 / (p.now - start));
            assert!(prog.eta_ms.is_some());
        }
    });
    assert!(matches!(
        event,
        ResyncEvent::Finished {
            remaining_bits: 0,
            ..
        }
    ));
    assert!(worst <= 0, "requests ran {worst} bytes ahead of the rate");
    // 3 MiB at 1 MiB/s, minus the initial burst: at least ~2.9 s of virtual time.
    let min_ms = (total - burst) * 1000 / rate;
    assert!(end - start >= min_ms, "finished after {} ms", end - start);
    assert!(
        end - start <= min_ms + 200,
        "finished after {} ms",
        end - start
    );
    assert!(pair.pri.disk == pair.sec.disk);
}

#[test]
fn pause_stops_requests_and_resume_continues() {
    let cfg = ResyncConfig {
        rate: 256 << 10,
        max_in_flight: 2,
        max_request: 16 << 10,
        ..ResyncConfig::new(AGREED)
    };
    let mut pair: Pair = Pair::new(Protocol::B, cfg);
    pair.cut();
    for i in 0..32u64 {
        pair.write(i * 2048, &pattern(i, 16 << 10));
    }
    pair.reconnect();
    let mut paused_at = None;
    let (event, _) = pair.resync(|p| {
        if p.now == 300 {
            p.sec.tgt.pause(p.now);
            paused_at = Some(p.sec.tgt.requested_bytes());
        }
        if (301..2300).contains(&p.now) {
            assert_eq!(Some(p.sec.tgt.requested_bytes()), paused_at);
        }
        if p.now == 2300 {
            p.sec.tgt.resume(p.now);
        }
    });
    assert!(matches!(
        event,
        ResyncEvent::Finished {
            remaining_bits: 0,
            ..
        }
    ));
    assert!(pair.now > 2300);
    assert!(pair.pri.disk == pair.sec.disk);
}

#[test]
fn application_writes_during_resync_keep_both_bitmaps_right() {
    let cfg = ResyncConfig {
        rate: 512 << 10,
        max_in_flight: 4,
        max_request: 32 << 10,
        ..ResyncConfig::new(AGREED)
    };
    let mut pair: Pair = Pair::new(Protocol::C, cfg);
    pair.cut();
    let w = workload(60);
    for (s, d) in &w {
        pair.write(*s, d);
    }
    pair.reconnect();
    // While the resync runs, the application keeps writing: over dirty blocks (whole and
    // partial), over clean ones, and right where the target's requests are in flight.
    let mut k = 0u64;
    let (event, _) = pair.resync(|p| {
        if p.now % 3 == 0 && k < 200 {
            let (s, d) = if k.is_multiple_of(2) {
                let (s, d) = &w[(k as usize * 7) % w.len()];
                (
                    *s + (k % 8),
                    pattern(1000 + k, (d.len().min(4096) / 2).max(512)),
                )
            } else {
                ((k * 331) % (SECTORS - 64), pattern(2000 + k, 4096))
            };
            // Sometimes the source answers first, so its replies precede the write on the wire;
            // sometimes it reads first but answers after the write went out, so an older reply
            // arrives after the newer write (the target must not let it win).
            let mut held = vec![];
            match k % 4 {
                1 => p.deliver_to_pri(),
                3 => held = p.read_requests(),
                _ => {}
            }
            let s = held.first().map_or(s, |h| h.1 + 8);
            p.write(s, &d);
            p.send_replies(held);
            if k.is_multiple_of(5) {
                p.barrier();
            }
            k += 1;
        }
    });
    assert_eq!(
        event,
        ResyncEvent::Finished {
            remaining_bits: 0,
            failed_bits: 0
        }
    );
    pair.barrier();
    pair.settle();
    assert!(
        pair.sec.skipped > 0,
        "no reply overlapped an application write"
    );
    assert!(
        pair.pri.disk == pair.sec.disk,
        "disks differ after the resync"
    );
    assert_eq!(pair.dirty(), (0, 0));
    assert!(pair.pri.p.transfer_log().is_empty());
}
