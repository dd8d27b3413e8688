//! cluster/replicate over two storage/ram children (translators.md §5.4): a child that fails
//! a write is blamed by the other in the exact bytes glusterfs writes
//! (`trusted.afr.r-client-1 = 00000001 00000000 00000000`), reads avoid the stale child even
//! when the gfid hashes to it, a child that was down is blamed for the entries made meanwhile,
//! and the background heal makes both copies identical (data, entries, metadata) with every
//! counter back at zero. Every frame made unwinds exactly once.
//!
//! Between replicate and each ram leaf sits a fault injector (the volfile's `debug/io-stats`
//! nodes `c0`/`c1` are replaced by it), which fails the fops it is told to.

use std::cell::Cell;

use keelson_core::xlator::args::{errno, set, Body, Fd, Loc, Reply, Request, RequestBytes, Xdata};
use keelson_core::xlator::builtin::{Builtin, Local};
use keelson_core::xlator::engine::{CallError, Ctx, Engine, Topology, Translator, Unwound};
use keelson_core::xlator::event::Event;
use keelson_core::xlator::fop::{Fop, FopSet};
use keelson_core::xlator::frame::{Creds, FrameRef};
use keelson_core::xlator::graph::AnyDirectory;
use keelson_core::xlator::iatt::{Gfid, IaType, Iatt};
use keelson_core::xlator::ram::{RamArena, RamFs};
use keelson_core::xlator::replicate::{super_fast_hash, Replicate, ReplicateArena};
use keelson_core::xlator::types::BUILTIN;
use keelson_core::xlator::{Graph, Volfile};

const VOL: &str = "volume r0\n type storage/ram\n option size-limit 1MB\nend-volume\n\
    volume r1\n type storage/ram\n option size-limit 1MB\nend-volume\n\
    volume c0\n type debug/io-stats\n subvolumes r0\nend-volume\n\
    volume c1\n type debug/io-stats\n subvolumes r1\nend-volume\n\
    volume r\n type cluster/replicate\n option afr-pending-xattr r-client-0,r-client-1\n\
    subvolumes c0 c1\nend-volume\n";

const R0: usize = 0;
const R1: usize = 1;
const C1: usize = 3;
const R: usize = 4;

const P0: &[u8] = b"trusted.afr.r-client-0";
const P1: &[u8] = b"trusted.afr.r-client-1";
const DIRTY: &[u8] = b"trusted.afr.dirty";

type Fault = Cell<Option<(FopSet, i32)>>;

/// The built-ins, with a fault injector for `c0` and `c1`.
// Test tables are not size-tuned.
#[allow(clippy::large_enum_variant)]
enum X<'m, 't> {
    B(Builtin<'m>),
    Fault(&'t Fault),
}

impl Translator for X<'_, '_> {
    type Local = Local;

    fn call(
        &mut self,
        cx: &mut Ctx<'_, '_, Local>,
        frame: FrameRef,
        req: Request,
    ) -> Result<(), CallError> {
        match self {
            X::B(b) => b.call(cx, frame, req),
            X::Fault(f) => match f.get() {
                Some((fops, e)) if fops.contains(req.fop()) => cx.unwind(frame, Reply::error(e)),
                _ => cx.tail(frame, req),
            },
        }
    }

    fn unwound(
        &mut self,
        cx: &mut Ctx<'_, '_, Local>,
        frame: FrameRef,
        from: Unwound,
    ) -> Result<(), CallError> {
        match self {
            X::B(b) => b.unwound(cx, frame, from),
            X::Fault(_) => cx.unwind(frame, from.reply),
        }
    }

    fn notify(&mut self, from: usize, event: Event) {
        if let X::B(b) = self {
            b.notify(from, event);
        }
    }

    fn background(&self, now: u64) -> Option<Request> {
        match self {
            X::B(b) => b.background(now),
            X::Fault(_) => None,
        }
    }
}

type Eng<'a, 'm, 't> = Engine<'a, X<'m, 't>, 64, 2, 16>;

struct Rig<'a, 'm, 't> {
    e: Eng<'a, 'm, 't>,
    free: Vec<&'a mut [u8]>,
    now: u64,
}

impl<'a> Rig<'a, '_, '_> {
    fn call(&mut self, build: impl FnOnce(&mut RequestBytes<'_>) -> Request) -> (Reply, Vec<u8>) {
        self.now += 1_000;
        let buf = self.free.pop().unwrap();
        let mut w = RequestBytes::new(buf);
        let req = build(&mut w);
        let (buf, len) = w.finish();
        let creds = Creds::default();
        if let Err(r) = self.e.handle_request(self.now, creds, req, buf, len) {
            panic!("refused: {:?}", r.error);
        }
        let c = self.e.poll_reply().expect("ram answers at once");
        assert!(c.reply.fits(c.fop), "{:?} for {}", c.reply, c.fop);
        let out = (c.reply, c.buf.to_vec());
        self.free.push(c.buf);
        self.balanced();
        out
    }

    fn ok(&mut self, build: impl FnOnce(&mut RequestBytes<'_>) -> Request) -> (Reply, Vec<u8>) {
        let (r, b) = self.call(build);
        assert!(r.op_ret >= 0, "{r:?}");
        (r, b)
    }

    fn balanced(&self) {
        let s = self.e.stats();
        assert_eq!(s.frames, s.unwinds, "every frame unwinds once: {s:?}");
        assert_eq!((s.live_frames, s.faults, s.abandoned), (0, 0, 0), "{s:?}");
        assert_eq!(self.e.live_stacks(), 0);
    }

    /// Runs background heals until none is due; how many ran and how many succeeded.
    fn heal(&mut self) -> (usize, usize) {
        let (mut ran, mut ok) = (0, 0);
        while let Some(bg) = self.e.next_background(self.now) {
            assert_eq!(bg.xl, R);
            self.now += 1_000;
            let buf = self.free.pop().unwrap();
            if let Err(r) = self.e.handle_background(self.now, bg, buf) {
                panic!("background refused: {:?}", r.error);
            }
            let c = self.e.poll_reply().expect("a heal over ram ends at once");
            assert_eq!(c.fop, Fop::Ipc);
            ran += 1;
            ok += usize::from(c.reply.op_ret == 0);
            self.free.push(c.buf);
            self.balanced();
            assert!(ran < 100, "heals do not end");
        }
        (ran, ok)
    }

    fn ram(&self, node: usize) -> &RamFs<'_> {
        match &self.e.translators()[node] {
            X::B(Builtin::Ram(fs)) => fs,
            _ => panic!("node {node} is not storage/ram"),
        }
    }

    fn afr(&self) -> &Replicate<'_> {
        match &self.e.translators()[R] {
            X::B(Builtin::Replicate(r)) => r,
            _ => panic!("no replicate"),
        }
    }

    fn xattr(&self, node: usize, g: &Gfid, name: &[u8]) -> Option<Vec<u8>> {
        self.ram(node).xattr_of(g, name).map(<[u8]>::to_vec)
    }

    fn data(&self, node: usize, g: &Gfid) -> Vec<u8> {
        let mut out = vec![0u8; 4096];
        let n = self
            .ram(node)
            .read_of(g, 0, &mut out)
            .expect("the file is there");
        out.truncate(n);
        out
    }

    /// Every changelog key on both children of `g` is absent or all zeros.
    fn clean(&self, g: &Gfid) {
        for node in [R0, R1] {
            for k in [P0, P1, DIRTY] {
                if let Some(v) = self.xattr(node, g, k) {
                    assert_eq!(v, [0; 12], "{} on node {node}", String::from_utf8_lossy(k));
                }
            }
        }
    }
}

/// A gfid whose SuperFastHash picks child `want` of two (the default read child).
fn gfid_reading_from(want: u32, seed: u8) -> Gfid {
    (0..=255u8)
        .map(|i| Gfid([seed, i, 1, 2, 3, 4, 0x40, 5, 0x80, 6, 7, 8, 9, 10, 11, 12]))
        .find(|g| super_fast_hash(&g.0) % 2 == want)
        .unwrap()
}

fn entry(w: &mut RequestBytes<'_>, parent: Gfid, name: &str) -> Loc {
    Loc {
        name: w.put(name.as_bytes()).unwrap(),
        pargfid: parent,
        ..Loc::default()
    }
}

fn by_gfid(g: Gfid) -> Loc {
    Loc {
        gfid: g,
        ..Loc::default()
    }
}

fn create(rig: &mut Rig<'_, '_, '_>, parent: Gfid, name: &str, g: Gfid, fd: u64) {
    rig.ok(|w| Request::Create {
        loc: entry(w, parent, name),
        flags: 2,
        mode: 0o100644,
        umask: 0,
        fd: Fd(fd),
        xdata: Xdata { gfid_req: Some(g) },
    });
}

fn write(rig: &mut Rig<'_, '_, '_>, fd: u64, at: u64, data: &[u8]) -> Reply {
    rig.call(|w| Request::Writev {
        fd: Fd(fd),
        data: w.put(data).unwrap(),
        offset: at,
        flags: 0,
    })
    .0
}

fn read(rig: &mut Rig<'_, '_, '_>, fd: u64) -> Vec<u8> {
    let (r, buf) = rig.ok(|_| Request::Readv {
        fd: Fd(fd),
        size: 4096,
        offset: 0,
        flags: 0,
    });
    match r.body {
        Body::Read { data, .. } => data.get(&buf).unwrap().to_vec(),
        b => panic!("{b:?}"),
    }
}

fn release(rig: &mut Rig<'_, '_, '_>, fd: u64) {
    rig.ok(|_| Request::Release { fd: Fd(fd) });
}

fn open(rig: &mut Rig<'_, '_, '_>, g: Gfid, fd: u64) {
    rig.ok(|_| Request::Open {
        loc: by_gfid(g),
        flags: 2,
        fd: Fd(fd),
    });
}

/// Builds the graph over fresh arenas and runs `body` on it.
fn with_rig(body: impl FnOnce(&mut Rig<'_, '_, '_>, &Fault)) {
    let vf: Volfile<'_, 8, 16, 8> = Volfile::parse(VOL.as_bytes()).unwrap();
    let mut g = Graph::build(&vf, BUILTIN).unwrap();
    g.init(&mut AnyDirectory).unwrap();
    let topo = Topology::<8, 8>::from_graph(&g);
    let mut arenas: Vec<Box<RamArena<64, 64, 256, 64>>> =
        (0..2).map(|_| Box::new(RamArena::new())).collect();
    let mut afr = Box::new(ReplicateArena::<16, 16>::new());
    let now = 1_764_639_000_000_000_000;
    let mut rams = arenas.iter_mut();
    let mut tables = Some(afr.tables());
    let table = Builtin::table_with::<8, 8, 16, 8>(
        &g,
        now,
        &mut |_, limit, now| rams.next().map(|a| RamFs::new(a, limit, now)),
        &mut |_| tables.take(),
    )
    .unwrap();
    let (quiet, fault) = (Fault::new(None), Fault::new(None));
    let mut xls: Vec<X<'_, '_>> = table
        .into_iter()
        .enumerate()
        .map(|(i, b)| match i {
            2 => X::Fault(&quiet),
            C1 => X::Fault(&fault),
            _ => X::B(b),
        })
        .collect();
    assert!(matches!(xls[R], X::B(Builtin::Replicate(_))));
    let mut store = vec![[0u8; 16384]; 3];
    let e = Eng::new(topo.view(), &mut xls).unwrap();
    let mut rig = Rig {
        e,
        free: store.iter_mut().map(|b| &mut b[..]).collect(),
        now,
    };
    body(&mut rig, &fault);
}

#[test]
fn a_child_failing_writes_is_blamed_reads_avoid_it_and_heal_restores_it() {
    with_rig(|rig, fault| {
        // Reads of this file would go to child 1 if it were good.
        let g = gfid_reading_from(1, 1);
        create(rig, Gfid::ROOT, "f", g, 1);
        assert_eq!(write(rig, 1, 0, b"hello").op_ret, 5);
        assert_eq!(rig.data(R0, &g), b"hello");
        assert_eq!(rig.data(R1, &g), b"hello");
        rig.clean(&g);
        assert_eq!(read(rig, 1), b"hello");

        // Child 1 now fails every write (its file went immutable, say).
        fault.set(Some((FopSet::EMPTY.with(Fop::Write), errno::EPERM)));
        assert_eq!(
            write(rig, 1, 5, b", world").op_ret,
            7,
            "one good copy is success"
        );
        assert_eq!(
            rig.xattr(R0, &g, P1).unwrap(),
            [0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0],
            "the survivor blames child 1 for one data operation"
        );
        assert_eq!(rig.xattr(R0, &g, DIRTY).unwrap(), [0; 12], "pre-op undone");
        assert_eq!(rig.xattr(R0, &g, P0), None, "a zero add creates nothing");
        assert_eq!(
            rig.xattr(R1, &g, DIRTY).unwrap(),
            [0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0],
            "the failed child keeps its pre-op's dirty mark"
        );
        assert_eq!(rig.xattr(R1, &g, P1), None);
        assert_eq!(rig.data(R1, &g), b"hello");
        assert_eq!(rig.afr().stale(&g), Some([0b10, 0, 0]));

        // Reads come from child 0, though the gfid hashes to child 1.
        assert_eq!(read(rig, 1), b"hello, world");
        let (r, _) = rig.ok(|_| Request::Fstat { fd: Fd(1) });
        let Body::Attr { buf } = r.body else { panic!() };
        assert_eq!(buf.size, 12);

        // A second failed write adds to the blame.
        assert_eq!(write(rig, 1, 12, b"!").op_ret, 1);
        assert_eq!(
            rig.xattr(R0, &g, P1).unwrap(),
            [0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0]
        );

        // While child 1 still fails writes, the heal fails and waits.
        let (ran, healed) = rig.heal();
        assert_eq!((ran, healed), (1, 0));
        assert_eq!(rig.afr().pending_heals(), 1);

        // Fixed: an open of the file makes the heal due at once.
        fault.set(None);
        open(rig, g, 2);
        let (ran, healed) = rig.heal();
        assert_eq!((ran, healed), (1, 1));
        assert_eq!(rig.data(R1, &g), b"hello, world!");
        assert_eq!(rig.data(R0, &g), rig.data(R1, &g));
        rig.clean(&g);
        assert_eq!(rig.afr().pending_heals(), 0);
        let (a, b) = (
            rig.ram(R0).stat_of(&g).unwrap(),
            rig.ram(R1).stat_of(&g).unwrap(),
        );
        assert_eq!(
            (a.size, a.mtime, a.mtime_nsec),
            (b.size, b.mtime, b.mtime_nsec)
        );

        // Healthy again: a write lands on both with no blame.
        assert_eq!(write(rig, 2, 0, b"H").op_ret, 1);
        assert_eq!(rig.data(R1, &g), b"Hello, world!");
        rig.clean(&g);
        release(rig, 1);
        release(rig, 2);
    });
}

#[test]
fn a_child_down_is_blamed_for_entries_and_healed_when_it_returns() {
    with_rig(|rig, _| {
        let root = Gfid::ROOT;
        let gone = gfid_reading_from(0, 2);
        create(rig, root, "gone", gone, 1);
        release(rig, 1);
        let keep = gfid_reading_from(0, 3);
        create(rig, root, "keep", keep, 1);
        release(rig, 1);

        rig.e.notify(R, C1, Event::ChildDown);
        assert_eq!(rig.afr().up(), 0b01);
        let d = gfid_reading_from(1, 4);
        rig.ok(|w| Request::Mkdir {
            loc: entry(w, root, "d"),
            mode: 0o750,
            umask: 0,
            xdata: Xdata { gfid_req: Some(d) },
        });
        let x = gfid_reading_from(1, 5);
        create(rig, d, "x", x, 1);
        assert_eq!(write(rig, 1, 0, b"abc").op_ret, 3);
        release(rig, 1);
        let l = gfid_reading_from(1, 6);
        rig.ok(|w| Request::Symlink {
            linkpath: w.put(b"x").unwrap(),
            loc: entry(w, d, "l"),
            umask: 0,
            xdata: Xdata { gfid_req: Some(l) },
        });
        rig.ok(|w| Request::Unlink {
            loc: entry(w, root, "gone"),
            flags: 0,
        });
        rig.ok(|_| Request::Setattr {
            loc: by_gfid(keep),
            stbuf: Iatt {
                prot: 0o600,
                ..Iatt::default()
            },
            valid: set::MODE,
        });
        rig.ok(|w| Request::Setxattr {
            loc: by_gfid(keep),
            name: w.put(b"user.k").unwrap(),
            value: w.put(b"v").unwrap(),
            flags: 0,
        });

        // The root saw two entry operations (mkdir, unlink) child 1 missed; with a child
        // down the pre-op dirtied and the post-op undirtied.
        assert_eq!(
            rig.xattr(R0, &root, P1).unwrap(),
            [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]
        );
        assert_eq!(rig.xattr(R0, &root, DIRTY).unwrap(), [0; 12]);
        assert_eq!(
            rig.xattr(R0, &d, P1).unwrap(),
            [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2],
            "create and symlink in d"
        );
        assert_eq!(
            rig.xattr(R0, &x, P1).unwrap(),
            [0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]
        );
        assert_eq!(
            rig.xattr(R0, &keep, P1).unwrap(),
            [0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0],
            "chmod and setxattr"
        );
        assert_eq!(rig.ram(R1).child_of(&root, b"d"), None);
        assert!(rig.ram(R1).child_of(&root, b"gone").is_some());

        // No heal while a child is down; it comes back and everything heals.
        assert_eq!(rig.e.next_background(rig.now), None);
        rig.e.notify(R, C1, Event::ChildUp);
        let (ran, healed) = rig.heal();
        assert_eq!(ran, healed, "every heal succeeds");
        assert!(ran >= 5, "root, d, x, l, keep: {ran}");
        assert_eq!(rig.afr().pending_heals(), 0);

        let r1 = rig.ram(R1);
        assert_eq!(r1.child_of(&root, b"d"), Some(d), "made with the same gfid");
        assert_eq!(r1.child_of(&d, b"x"), Some(x));
        assert_eq!(r1.child_of(&d, b"l"), Some(l));
        assert_eq!(
            r1.child_of(&root, b"gone"),
            None,
            "removed from the sink too"
        );
        assert_eq!(r1.stat_of(&d).unwrap().prot, 0o750);
        assert_eq!(r1.stat_of(&l).unwrap().ty, IaType::Lnk);
        assert_eq!(rig.data(R1, &l), b"x");
        assert_eq!(rig.data(R1, &x), b"abc");
        assert_eq!(rig.ram(R1).stat_of(&keep).unwrap().prot, 0o600);
        assert_eq!(rig.xattr(R1, &keep, b"user.k").unwrap(), b"v");
        for g in [root, d, x, l, keep] {
            rig.clean(&g);
            let (a, b) = (
                rig.ram(R0).stat_of(&g).unwrap(),
                rig.ram(R1).stat_of(&g).unwrap(),
            );
            assert_eq!(
                (a.ty, a.size, a.prot, a.uid, a.gid),
                (b.ty, b.size, b.prot, b.uid, b.gid)
            );
        }
    });
}

#[test]
fn lookup_and_reads_when_copies_disagree() {
    with_rig(|rig, fault| {
        let root = Gfid::ROOT;
        let g = gfid_reading_from(1, 7);
        create(rig, root, "f", g, 1);
        fault.set(Some((FopSet::EMPTY.with(Fop::Write), errno::EIO)));
        write(rig, 1, 0, b"only on child 0");
        fault.set(None);
        release(rig, 1);
        // The lookup answers child 0's attributes (child 1's copy is stale and empty).
        let (r, _) = rig.ok(|w| Request::Lookup {
            loc: entry(w, root, "f"),
            xdata: Xdata::default(),
        });
        let Body::Lookup { inode, buf, .. } = r.body else {
            panic!("{r:?}")
        };
        assert_eq!((inode, buf.size), (g, 15));
        // Child 0 down: the only copy up is stale, so reads fail instead of lying.
        rig.e.notify(R, 2, Event::ChildDown);
        let (r, _) = rig.call(|_| Request::Stat { loc: by_gfid(g) });
        assert_eq!(r.op_errno, errno::EIO, "{r:?}");
        // Both down: ENOTCONN.
        rig.e.notify(R, C1, Event::ChildDown);
        let (r, _) = rig.call(|_| Request::Stat { loc: by_gfid(g) });
        assert_eq!(r.op_errno, errno::ENOTCONN);
        rig.e.notify(R, 2, Event::ChildUp);
        rig.e.notify(R, C1, Event::ChildUp);
        rig.heal();
        assert_eq!(rig.data(R1, &g), b"only on child 0");
        rig.clean(&g);
        // Statfs answers for both; release of an unknown fd is fine.
        rig.ok(|_| Request::Statfs { loc: by_gfid(root) });
        release(rig, 99);
    });
}
