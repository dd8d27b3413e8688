//! The DRBD data path (core/src/repl: secondary, resync target and source, primary acks) under
//! arbitrary packet sequences and completions. Packets come as raw bytes through the wire
//! parser, or built from the input around the requests actually outstanding (so replies and acks
//! reach deep states). After every step: the bitmap's cached count equals its bits, tables stay
//! within their capacity, every emitted packet parses whole, tokens complete exactly once, bits
//! are cleared only by a finished write or an in-sync answer, and progress adds up.

use keelson_core::repl::bitmap::{bytes_for, DirtyBitmap};
use keelson_core::repl::data_error::DataError;
use keelson_core::repl::resync::{route, ResyncConfig, ResyncToken, Route, SyncTarget};
use keelson_core::repl::resync_source::{ReadToken, SyncSource};
use keelson_core::repl::secondary::{Secondary, SecondaryConfig, WriteToken};
use keelson_core::repl::wire::ack::BlockAckFields;
use keelson_core::repl::wire::barrier::BarrierFields;
use keelson_core::repl::wire::data::{DataFields, DataRepr};
use keelson_core::repl::wire::request::BlockReqFields;
use keelson_core::repl::wire::{Agreed, BarrierNr, BlockId, Body, Command, Frame};
use keelson_core::repl::write::{Primary, PrimaryConfig, Protocol, WriteFlags};

use crate::input::Input;

const SECTORS: u64 = 512 * 8; // 2 MiB: 512 bits
const ACKS: [Command; 8] = [
    Command::RecvAck,
    Command::WriteAck,
    Command::WriteAckInSync,
    Command::NegAck,
    Command::RsWriteAck,
    Command::RsNegAck,
    Command::NegRsDReply,
    Command::RsCancel,
];

/// Every packet in `buf` parses, and together they use exactly `buf`.
fn check_emitted(buf: &[u8], agreed: &Agreed) {
    let mut at = 0;
    while at < buf.len() {
        let (_, n) = Frame::parse(&buf[at..], agreed)
            .unwrap_or_else(|e| panic!("emitted packet does not parse: {e}"));
        at += n;
    }
}

fn recount(bm: &DirtyBitmap<'_>) -> u64 {
    bm.as_bytes()
        .iter()
        .map(|b| u64::from(b.count_ones()))
        .sum()
}

struct World {
    agreed: Agreed,
    store: Vec<u8>,
    sec: Secondary<8, 4>,
    tgt: SyncTarget<4>,
    src: SyncSource<4>,
    pri: Primary<8>,
    now: u64,
    writes: Vec<WriteToken>,
    rs_writes: Vec<ResyncToken>,
    reads: Vec<(ReadToken, u32)>,
    /// Requests the target sent: (sector, block id, size).
    requested: Vec<(u64, BlockId, u32)>,
    /// Replies the source sent: (sector, block id, size).
    replied: Vec<(u64, BlockId, u32)>,
    pri_ids: Vec<(u64, u64, u32)>,
    /// The data-socket output buffer, reused across steps.
    out: Vec<u8>,
}

/// First byte: protocol version, protocol, syncing; then operations until the input ends.
pub fn check_data(data: &[u8]) {
    let mut inp = Input(data);
    let Some(knob) = inp.u8() else {
        return;
    };
    let pv = [96, 110, 122, 122][usize::from(knob & 3)];
    let agreed = Agreed::new(pv, 0);
    let protocol = [Protocol::A, Protocol::B, Protocol::C, Protocol::C][usize::from(knob >> 2 & 3)];
    let mut w = World {
        agreed,
        store: vec![0u8; bytes_for(SECTORS)],
        sec: Secondary::new(SecondaryConfig {
            protocol,
            volume: 0,
            agreed,
        }),
        tgt: SyncTarget::new(ResyncConfig {
            rate: u64::from(knob >> 5) * 100_000,
            max_in_flight: 3,
            max_request: 16 << 10,
            volume: 0,
            agreed,
        }),
        src: SyncSource::new(agreed, 0),
        pri: Primary::new(PrimaryConfig::new(protocol, agreed)),
        now: 0,
        writes: vec![],
        rs_writes: vec![],
        reads: vec![],
        requested: vec![],
        replied: vec![],
        pri_ids: vec![],
        out: vec![0u8; 70_000],
    };
    w.sec.set_syncing(knob & 0x10 != 0);
    w.pri.connected(agreed, knob & 0x10 != 0);
    {
        let mut bm = DirtyBitmap::new(&mut w.store, SECTORS).unwrap();
        bm.set_bits(0, u64::from(knob) * 2);
    }
    w.tgt.start(0);
    w.src.start(0);
    let mut steps = 0;
    while let Some(op) = inp.u8() {
        steps += 1;
        if steps > 400 {
            break;
        }
        w.step(op, &mut inp);
        w.check();
    }
    w.finish();
}

impl World {
    fn bm(&mut self) -> DirtyBitmap<'_> {
        DirtyBitmap::new(&mut self.store, SECTORS).expect("sized by bytes_for")
    }

    fn step(&mut self, op: u8, inp: &mut Input<'_>) {
        let mut meta = [0u8; 64];
        let mut out = core::mem::take(&mut self.out);
        self.step_with(op, inp, &mut meta, &mut out);
        self.out = out;
    }

    fn step_with(&mut self, op: u8, inp: &mut Input<'_>, meta: &mut [u8; 64], out: &mut [u8]) {
        let agreed = self.agreed;
        match op % 14 {
            0 => {
                // Raw bytes through the wire parser, routed like a shell would.
                let len = usize::from(inp.u16().unwrap_or(0) % 2048);
                let bytes = inp.bytes(len).to_vec();
                if let Ok((f, _)) = Frame::parse(&bytes, &agreed) {
                    self.dispatch(&f);
                }
            }
            1 => {
                let sector = u64::from(inp.u16().unwrap_or(0)) % (SECTORS + 16);
                let size = usize::from(inp.u8().unwrap_or(0) % 40) * 512;
                let flags = u32::from(inp.u16().unwrap_or(0));
                let data = vec![op; size];
                let f = frame(Command::Data, data_body(sector, 7, flags, &data));
                self.dispatch(&f);
            }
            2 => {
                let b = inp.u8().unwrap_or(0);
                let f = frame(
                    Command::Barrier,
                    Body::Barrier(BarrierFields {
                        barrier: BarrierNr::from_host(u32::from(b)),
                    }),
                );
                self.dispatch(&f);
            }
            3 => {
                // A reply to an outstanding request (or a near miss of one).
                let pick = usize::from(inp.u8().unwrap_or(0));
                let (sector, id, size) = self.requested.get(pick % 8).copied().unwrap_or((
                    pick as u64 * 8,
                    BlockId::from_host(pick as u64),
                    4096,
                ));
                let size = if pick & 0x80 != 0 { size / 2 } else { size };
                let data = vec![op; size as usize];
                let f = frame(
                    Command::RsDataReply,
                    data_body(sector, id.to_host(), 0, &data),
                );
                let f = Frame {
                    body: match f.body {
                        Body::Data(mut d) => {
                            d.fields.block_id = id;
                            Body::Data(d)
                        }
                        b => b,
                    },
                    ..f
                };
                self.dispatch(&f);
            }
            4 | 6 | 13 => {
                let pick = usize::from(inp.u8().unwrap_or(0));
                let command = ACKS[pick % ACKS.len()];
                let pool = if op % 14 == 4 {
                    &self.requested
                } else {
                    &self.replied
                };
                let (sector, id, size) = if op % 14 == 13 {
                    self.pri_ids
                        .get(pick / 8 % 8)
                        .map(|&(i, s, z)| (s, BlockId::from_host(i), z))
                        .unwrap_or((0, BlockId::from_host(1), 4096))
                } else {
                    pool.get(pick / 8 % 8)
                        .copied()
                        .unwrap_or((0, BlockId::SYNCER, 4096))
                };
                let f = frame(
                    command,
                    Body::BlockAck(BlockAckFields {
                        sector,
                        block_id: id,
                        blksize: size,
                        seq_num: 1,
                    }),
                );
                self.dispatch(&f);
            }
            5 => {
                let sector = u64::from(inp.u16().unwrap_or(0)) % (SECTORS + 16);
                let size = u32::from(inp.u8().unwrap_or(0) % 40) * 512;
                let f = frame(
                    Command::RsDataRequest,
                    Body::BlockReq(BlockReqFields {
                        sector,
                        block_id: BlockId::from_host(sector),
                        blksize: size,
                    }),
                );
                self.dispatch(&f);
            }
            7 => {
                let pick = usize::from(inp.u8().unwrap_or(0));
                if !self.writes.is_empty() {
                    let t = self.writes.swap_remove(pick % self.writes.len());
                    let mut bm = DirtyBitmap::new(&mut self.store, SECTORS).unwrap();
                    let n = self
                        .sec
                        .write_done(t, pick & 1 == 0, &mut bm, &mut meta[..])
                        .expect("a pending write completes");
                    check_emitted(&meta[..n], &agreed);
                    assert_eq!(
                        self.sec.write_done(t, true, &mut bm, &mut meta[..]),
                        Err(DataError::StaleToken)
                    );
                }
            }
            8 => {
                let pick = usize::from(inp.u8().unwrap_or(0));
                if !self.rs_writes.is_empty() {
                    let t = self.rs_writes.swap_remove(pick % self.rs_writes.len());
                    let mut bm = DirtyBitmap::new(&mut self.store, SECTORS).unwrap();
                    let n = self
                        .tgt
                        .write_done(t, pick & 1 == 0, &mut bm, &mut meta[..])
                        .expect("a pending resync write completes");
                    check_emitted(&meta[..n], &agreed);
                    assert_eq!(
                        self.tgt.write_done(t, true, &mut bm, &mut meta[..]),
                        Err(DataError::StaleToken)
                    );
                }
            }
            9 => {
                if let Some(t) = self.sec.poll_flush() {
                    self.sec.flushed(t).expect("a fresh flush token");
                    assert_eq!(self.sec.flushed(t), Err(DataError::StaleToken));
                }
                while let Some(n) = self.sec.poll_transmit(&mut meta[..]).unwrap() {
                    check_emitted(&meta[..n], &agreed);
                }
            }
            10 => {
                let dt = inp.u8().unwrap_or(0);
                self.now += u64::from(dt);
                match dt % 8 {
                    0 => self.tgt.pause(self.now),
                    1 => self.tgt.resume(self.now),
                    _ => {}
                }
                let bm = DirtyBitmap::new(&mut self.store, SECTORS).unwrap();
                while let Some(n) = self.tgt.poll_request(self.now, &bm, &mut out[..]).unwrap() {
                    check_emitted(&out[..n], &agreed);
                    let (f, _) = Frame::parse(&out[..n], &agreed).unwrap();
                    let Body::BlockReq(r) = f.body else {
                        panic!("the target sends only requests");
                    };
                    self.requested.insert(0, (r.sector, r.block_id, r.blksize));
                    self.requested.truncate(8);
                }
                if let Some(t) = self.tgt.poll_timeout(self.now, &bm) {
                    assert!(t >= self.now);
                }
                let _ = self.tgt.poll_event(&bm);
            }
            11 => {
                let pick = usize::from(inp.u8().unwrap_or(0));
                if !self.reads.is_empty() {
                    let (t, size) = self.reads.swap_remove(pick % self.reads.len());
                    if pick & 1 == 0 {
                        let n = self
                            .src
                            .reply(t, &vec![1u8; size as usize], &mut out[..])
                            .expect("a pending read replies");
                        check_emitted(&out[..n], &agreed);
                        let (f, _) = Frame::parse(&out[..n], &agreed).unwrap();
                        if let Body::Data(d) = f.body {
                            self.replied
                                .insert(0, (d.fields.sector, d.fields.block_id, size));
                            self.replied.truncate(8);
                        }
                    } else {
                        let bm = DirtyBitmap::new(&mut self.store, SECTORS).unwrap();
                        let n = self.src.read_failed(t, &bm, &mut meta[..]).unwrap();
                        check_emitted(&meta[..n], &agreed);
                    }
                }
            }
            12 => {
                // A restart forgets every request, so their tokens go stale.
                if inp.u8().unwrap_or(0) & 1 == 0 {
                    self.tgt.stop(self.now);
                }
                self.tgt.start(self.now);
                self.rs_writes.clear();
                self.requested.clear();
            }
            _ => {}
        }
        // The primary also writes now and then, so its acks have something to match.
        if op & 0x80 != 0 {
            let sector = u64::from(op & 0x3F) * 8;
            let mut bm = DirtyBitmap::new(&mut self.store, SECTORS).unwrap();
            if let Ok(s) = self.pri.write(
                sector,
                &[op; 4096],
                WriteFlags::default(),
                &mut bm,
                &mut out[..],
            ) {
                check_emitted(&out[..s.len], &agreed);
                let _ = self.pri.local_done(s.id, op & 0x40 == 0);
                self.pri_ids.insert(0, (s.id, sector, 4096));
                self.pri_ids.truncate(8);
            }
            let _ = self.pri.poll_barrier(&mut out[..]);
            while self.pri.poll_completion().is_some() {}
            while self.pri.poll_retired().is_some() {}
        }
    }

    fn dispatch(&mut self, f: &Frame<'_>) {
        let agreed = self.agreed;
        let mut meta = [0u8; 64];
        let before = self.bm().count();
        let block_id = match f.body {
            Body::BlockAck(a) => a.block_id,
            _ => BlockId::default(),
        };
        let mut cleared_ok = false;
        match (route(f.command, block_id, &agreed), f.body) {
            (Some(Route::Secondary), Body::Barrier(b)) => {
                let _ = self.sec.handle_barrier(&b);
            }
            (Some(Route::Secondary), _) => {
                let bm = DirtyBitmap::new(&mut self.store, SECTORS).unwrap();
                if let Ok(r) = self.sec.handle_data(f, &bm, &mut self.tgt, &mut meta) {
                    check_emitted(&meta[..r.meta_len], &agreed);
                    self.writes.push(r.write.token);
                }
                assert_eq!(recount(&bm), bm.count());
            }
            (Some(Route::SyncTarget), _) => {
                let mut bm = DirtyBitmap::new(&mut self.store, SECTORS).unwrap();
                match self.tgt.handle_reply(f, &mut bm) {
                    Ok(Some(w)) => {
                        assert!(w.segments().all(|(s, d)| s >= w.sector && !d.is_empty()));
                        self.rs_writes.push(w.token);
                    }
                    Ok(None) => cleared_ok = f.command == Command::RsIsInSync,
                    Err(_) => {}
                }
            }
            (Some(Route::SyncSource), Body::BlockReq(_)) => {
                let bm = DirtyBitmap::new(&mut self.store, SECTORS).unwrap();
                if let Ok(r) = self.src.handle_request(f, &bm) {
                    assert!(r.size > 0 && r.size % 512 == 0);
                    self.reads.push((r.token, r.size));
                }
            }
            (Some(Route::SyncSource), Body::BlockAck(a)) => {
                let mut bm = DirtyBitmap::new(&mut self.store, SECTORS).unwrap();
                cleared_ok = self.src.handle_ack(f.command, &a, &mut bm).is_ok();
            }
            (Some(Route::Primary), Body::BlockAck(a)) => {
                let mut bm = DirtyBitmap::new(&mut self.store, SECTORS).unwrap();
                cleared_ok = self.pri.handle_ack(f.command, &a, &mut bm).is_ok();
            }
            (Some(Route::Primary), Body::BarrierAck(a)) => {
                let _ = self.pri.handle_barrier_ack(&a);
            }
            _ => {}
        }
        let after = self.bm().count();
        // Bits go away only when a write finished or the peer said the range is in sync.
        assert!(after >= before || cleared_ok, "{} cleared bits", f.command);
    }

    fn check(&mut self) {
        let now = self.now;
        let bm = DirtyBitmap::new(&mut self.store, SECTORS).unwrap();
        assert_eq!(recount(&bm), bm.count(), "cached count drifted");
        assert!(self.sec.in_flight() <= 8 && self.tgt.in_flight() <= 3);
        assert!(self.src.in_flight() <= 4);
        assert!(self.pri.transfer_log().len() <= 8);
        assert_eq!(self.writes.len(), self.sec.in_flight());
        let p = self.tgt.progress(now, &bm);
        assert_eq!(p.total_bytes, p.done_bytes + p.remaining_bytes);
        assert_eq!(p.remaining_bytes, bm.count() * 4096);
        assert!(p.permille() <= 1000);
    }

    fn finish(&mut self) {
        // Every pending local write still completes exactly once.
        let agreed = self.agreed;
        let mut meta = [0u8; 64];
        let mut bm = DirtyBitmap::new(&mut self.store, SECTORS).unwrap();
        for t in self.writes.drain(..) {
            let n = self.sec.write_done(t, true, &mut bm, &mut meta).unwrap();
            check_emitted(&meta[..n], &agreed);
        }
        for t in self.rs_writes.drain(..) {
            let n = self.tgt.write_done(t, true, &mut bm, &mut meta).unwrap();
            check_emitted(&meta[..n], &agreed);
        }
        assert_eq!(self.sec.in_flight(), 0);
        assert_eq!(recount(&bm), bm.count());
    }
}

fn frame(command: Command, body: Body<'_>) -> Frame<'_> {
    Frame::new(command, 0, body).expect("layouts match")
}

fn data_body(sector: u64, id: u64, flags: u32, data: &[u8]) -> Body<'_> {
    Body::Data(DataRepr {
        fields: DataFields {
            sector,
            block_id: BlockId::from_host(id),
            seq_num: 1,
            dp_flags: flags,
        },
        digest: &[],
        data,
    })
}
