//! Fops through translator graphs built from volfile text: storage/ram at the bottom,
//! pass-through, trace and io-stats layers above (translators.md §3–§5). Checks results,
//! that every frame unwinds exactly once and the pool is empty after each STACK_DESTROY,
//! pool and stack exhaustion, asynchronous completion, and fan-out with explicit cookies.

// Test tables are not size-tuned.
#![allow(clippy::large_enum_variant)]

use keelson_core::xlator::args::{errno, Body, Fd, Loc, Reply, Request, RequestBytes, Span, Xdata};
use keelson_core::xlator::builtin::{Builtin, Local};
use keelson_core::xlator::dirent::Dirents;
use keelson_core::xlator::engine::{
    CallError, Ctx, Engine, Output, SubmitError, Topology, Translator, Unwound,
};
use keelson_core::xlator::fop::Fop;
use keelson_core::xlator::frame::{Creds, FrameRef};
use keelson_core::xlator::graph::AnyDirectory;
use keelson_core::xlator::iatt::{Gfid, IaType, Iatt};
use keelson_core::xlator::ram::{RamArena, RamFs};
use keelson_core::xlator::types::BUILTIN;
use keelson_core::xlator::{Graph, Volfile};

type Arena = RamArena<32, 64, 128, 16>;
type Vf<'a> = Volfile<'a, 24, 64, 48>;

/// A finished request, its buffer copied out.
#[derive(Debug)]
struct Done {
    reply: Reply,
    buf: Vec<u8>,
    err_xl: Option<usize>,
    error: i32,
    unique: u64,
}

impl Done {
    fn bytes(&self, s: Span) -> &[u8] {
        s.get(&self.buf).unwrap()
    }
}

/// Request buffers lent to the engine and handed back with each reply.
struct Client<'a> {
    free: Vec<&'a mut [u8]>,
    now: u64,
}

impl<'a> Client<'a> {
    fn new(store: &'a mut [[u8; 8192]]) -> Self {
        Client {
            free: store.iter_mut().map(|b| &mut b[..]).collect(),
            now: 1_764_639_000_000_000_000,
        }
    }

    fn submit<X: Translator, const F: usize, const S: usize, const E: usize>(
        &mut self,
        e: &mut Engine<'a, X, F, S, E>,
        build: impl FnOnce(&mut RequestBytes<'_>) -> Request,
    ) -> Result<keelson_core::xlator::frame::StackRef, SubmitError> {
        self.now += 1_000;
        let buf = self.free.pop().expect("a free buffer");
        let mut w = RequestBytes::new(buf);
        let req = build(&mut w);
        let (buf, len) = w.finish();
        e.handle_request(self.now, Creds::default(), req, buf, len)
            .map_err(|r| {
                self.free.push(r.buf);
                r.error
            })
    }

    fn reply<X: Translator, const F: usize, const S: usize, const E: usize>(
        &mut self,
        e: &mut Engine<'a, X, F, S, E>,
    ) -> Option<Done> {
        let c = e.poll_reply()?;
        let d = Done {
            reply: c.reply,
            buf: c.buf.to_vec(),
            err_xl: c.err_xl,
            error: c.error,
            unique: c.unique,
        };
        assert!(c.reply.fits(c.fop), "{:?} for {}", c.reply, c.fop);
        self.free.push(c.buf);
        Some(d)
    }

    fn call<X: Translator, const F: usize, const S: usize, const E: usize>(
        &mut self,
        e: &mut Engine<'a, X, F, S, E>,
        build: impl FnOnce(&mut RequestBytes<'_>) -> Request,
    ) -> Done {
        self.submit(e, build).expect("submitted");
        let d = self.reply(e).expect("a synchronous graph replies at once");
        check_balanced(e);
        d
    }
}

/// Every frame made has unwound, none is left, and no translator misused a frame.
fn check_balanced<X: Translator, const F: usize, const S: usize, const E: usize>(
    e: &Engine<'_, X, F, S, E>,
) {
    let s = e.stats();
    assert_eq!(s.frames, s.unwinds, "{s:?}");
    assert_eq!(s.live_frames, 0, "{s:?}");
    assert_eq!(s.faults, 0, "{s:?}");
    assert_eq!(s.abandoned, 0, "{s:?}");
    assert_eq!(e.live_stacks(), 0);
}

fn path(w: &mut RequestBytes<'_>, p: &str) -> Loc {
    w.path(p.as_bytes()).unwrap()
}

const STACK: &str = "volume ram\n type storage/ram\n option size-limit 1MB\nend-volume\n\
    volume locks\n type features/locks\n subvolumes ram\nend-volume\n\
    volume tr\n type debug/trace\n option log-file yes\n subvolumes locks\nend-volume\n\
    volume wb\n type performance/write-behind\n subvolumes tr\nend-volume\n\
    volume top\n type debug/io-stats\n subvolumes wb\nend-volume\n";

/// Builds `src` with one arena per storage/ram node and runs `f` on its engine.
macro_rules! with_graph {
    ($src:expr, $F:literal, $S:literal, |$e:ident, $c:ident| $body:block) => {{
        let vf = Vf::parse($src.as_bytes()).unwrap();
        let mut g = Graph::build(&vf, BUILTIN).unwrap();
        g.init(&mut AnyDirectory).unwrap();
        let topo = Topology::<24, 48>::from_graph(&g);
        let mut arenas: Vec<Box<Arena>> = (0..4).map(|_| Box::new(Arena::new())).collect();
        let mut it = arenas.iter_mut();
        let mut table = Builtin::table::<24, 24, 64, 48>(&g, 0, &mut |_, limit, now| {
            it.next().map(|a| RamFs::new(&mut **a, limit, now))
        })
        .unwrap();
        let mut store = vec![[0u8; 8192]; 8];
        let mut $c = Client::new(&mut store);
        let mut $e: Engine<'_, Builtin<'_>, $F, $S, 64> =
            Engine::new(topo.view(), &mut table).unwrap();
        $body
    }};
}

fn entry_gfid(d: &Done) -> Gfid {
    match d.reply.body {
        Body::Entry { inode, .. } | Body::Lookup { inode, .. } => inode,
        b => panic!("no entry in {b:?}"),
    }
}

fn post(d: &Done) -> Iatt {
    match d.reply.body {
        Body::Change { post, .. } => post,
        b => panic!("no change in {b:?}"),
    }
}

#[test]
fn a_file_life_through_five_layers() {
    with_graph!(STACK, 64, 4, |e, c| {
        let d = c.call(&mut e, |w| Request::Mkdir {
            loc: path(w, "/d"),
            mode: 0o755,
            umask: 0o022,
            xdata: Xdata::default(),
        });
        assert_eq!(d.reply.op_ret, 0, "{d:?}");
        let dir = entry_gfid(&d);
        let want = Gfid([7; 16]);
        let d = c.call(&mut e, |w| Request::Create {
            loc: Loc {
                pargfid: dir,
                name: w.put(b"f").unwrap(),
                ..Loc::default()
            },
            flags: 0o1 | 0o100,
            mode: 0o644,
            umask: 0o022,
            fd: Fd(1),
            xdata: Xdata {
                gfid_req: Some(want),
            },
        });
        assert_eq!(entry_gfid(&d), want, "gfid-req is the new gfid");
        let Body::Entry {
            buf, postparent, ..
        } = d.reply.body
        else {
            panic!()
        };
        assert_eq!(
            (buf.ty, buf.prot, buf.ino),
            (IaType::Reg, 0o644, 0x0707070707070707)
        );
        assert_eq!(postparent.nlink, 2);
        let d = c.call(&mut e, |w| Request::Writev {
            fd: Fd(1),
            data: w.put(b"hello, world").unwrap(),
            offset: 0,
            flags: 0o100001,
        });
        // write-behind acknowledges at once, with zero-filled iatts (§5.5).
        assert_eq!(d.reply.op_ret, 12);
        assert_eq!(post(&d), Iatt::default());
        // A write past the end leaves a zero-filled hole once it reaches the leaf.
        let d = c.call(&mut e, |w| Request::Writev {
            fd: Fd(1),
            data: w.put(b"!").unwrap(),
            offset: 1000,
            flags: 0,
        });
        assert_eq!(d.reply.op_ret, 1);
        let Builtin::WriteBehind(wb) = &e.translators()[3] else {
            panic!()
        };
        assert_eq!(wb.kept_bytes(), 13);
        let d = c.call(&mut e, |_| Request::Readv {
            fd: Fd(1),
            size: 4096,
            offset: 7,
            flags: 0,
        });
        // The read depends on the kept writes: they go down first.
        let Body::Read { data, stbuf } = d.reply.body else {
            panic!("{d:?}")
        };
        assert_eq!(d.reply.op_ret, 994);
        assert_eq!(stbuf.blocks, 2);
        assert_eq!(&d.bytes(data)[..7], b"world\0\0");
        assert_eq!(d.bytes(data)[993], b'!');
        assert_eq!(stbuf.size, 1001);
        let d = c.call(&mut e, |w| Request::Truncate {
            loc: path(w, "/d/f"),
            offset: 5,
        });
        assert_eq!(post(&d).size, 5);
        let d = c.call(&mut e, |_| Request::Readv {
            fd: Fd(1),
            size: 100,
            offset: 0,
            flags: 0,
        });
        let Body::Read { data, .. } = d.reply.body else {
            panic!()
        };
        assert_eq!(d.bytes(data), b"hello");
        let d = c.call(&mut e, |w| Request::Setattr {
            loc: path(w, "/d/f"),
            stbuf: Iatt {
                prot: 0o600,
                uid: 42,
                ..Iatt::default()
            },
            valid: 0x1 | 0x2,
        });
        assert_eq!((post(&d).prot, post(&d).uid), (0o600, 42));
        let d = c.call(&mut e, |w| Request::Symlink {
            linkpath: w.put(b"f").unwrap(),
            loc: path(w, "/d/l"),
            umask: 0,
            xdata: Xdata::default(),
        });
        assert_eq!(d.reply.op_ret, 0);
        let d = c.call(&mut e, |w| Request::Readlink {
            loc: path(w, "/d/l"),
            size: 64,
        });
        let Body::Readlink { path: p, .. } = d.reply.body else {
            panic!()
        };
        assert_eq!(d.bytes(p), b"f");
        let d = c.call(&mut e, |w| Request::Link {
            oldloc: path(w, "/d/f"),
            newloc: path(w, "/hard"),
            xdata: Xdata::default(),
        });
        let Body::Entry { buf, .. } = d.reply.body else {
            panic!()
        };
        assert_eq!(buf.nlink, 2);
        let d = c.call(&mut e, |w| Request::Rename {
            oldloc: path(w, "/hard"),
            newloc: path(w, "/d/g"),
        });
        let Body::Rename { postoldparent, .. } = d.reply.body else {
            panic!("{d:?}")
        };
        assert_eq!(postoldparent.gfid, Gfid::ROOT);
        // Listing: . and .., then the entries; resuming from a d_off skips what was read.
        let d = c.call(&mut e, |w| Request::Opendir {
            loc: path(w, "/d"),
            fd: Fd(2),
        });
        assert_eq!(d.reply.op_ret, 0);
        let d = c.call(&mut e, |_| Request::Readdirp {
            fd: Fd(2),
            size: 4096,
            offset: 0,
        });
        let Body::Entries { data } = d.reply.body else {
            panic!()
        };
        let names: Vec<_> = Dirents::new(d.bytes(data), true)
            .map(|x| (x.name.to_vec(), x.stat.unwrap().ty))
            .collect();
        assert_eq!(d.reply.op_ret, 5);
        assert_eq!(names[0], (b".".to_vec(), IaType::Dir));
        assert_eq!(names[1], (b"..".to_vec(), IaType::Dir));
        assert!(names.contains(&(b"l".to_vec(), IaType::Lnk)));
        let second = Dirents::new(d.bytes(data), true).nth(1).unwrap().d_off;
        let d = c.call(&mut e, |_| Request::Readdir {
            fd: Fd(2),
            size: 4096,
            offset: second,
        });
        assert_eq!(d.reply.op_ret, 3);
        // xattrs.
        let d = c.call(&mut e, |w| Request::Setxattr {
            loc: path(w, "/d/f"),
            name: w.put(b"user.k").unwrap(),
            value: w.put(b"v1").unwrap(),
            flags: 1,
        });
        assert_eq!(d.reply.op_ret, 0);
        let d = c.call(&mut e, |w| Request::Setxattr {
            loc: path(w, "/d/f"),
            name: w.put(b"user.k").unwrap(),
            value: w.put(b"v2").unwrap(),
            flags: 1,
        });
        assert_eq!(d.reply.op_errno, errno::EEXIST);
        let d = c.call(&mut e, |_| Request::Fgetxattr {
            fd: Fd(1),
            name: Span::EMPTY,
        });
        let Body::Xattr { value } = d.reply.body else {
            panic!()
        };
        assert_eq!(d.bytes(value), b"user.k\0");
        let d = c.call(&mut e, |w| Request::Removexattr {
            loc: path(w, "/d/f"),
            name: w.put(b"user.k").unwrap(),
        });
        assert_eq!(d.reply.op_ret, 0);
        let d = c.call(&mut e, |w| Request::Getxattr {
            loc: path(w, "/d/f"),
            name: w.put(b"user.k").unwrap(),
        });
        assert_eq!(d.reply.op_errno, errno::ENODATA);
        // Removal rules.
        let d = c.call(&mut e, |w| Request::Rmdir {
            loc: path(w, "/d"),
            flags: 0,
        });
        assert_eq!(d.reply.op_errno, errno::ENOTEMPTY);
        for p in ["/d/f", "/d/g", "/d/l"] {
            let d = c.call(&mut e, |w| Request::Unlink {
                loc: path(w, p),
                flags: 0,
            });
            assert_eq!(d.reply.op_ret, 0, "{p}");
        }
        // The file is still open on fd 1: fstat still answers (nlink 0).
        let d = c.call(&mut e, |_| Request::Fstat { fd: Fd(1) });
        let Body::Attr { buf } = d.reply.body else {
            panic!()
        };
        assert_eq!(buf.nlink, 0);
        for fd in [1, 2] {
            c.call(&mut e, |_| Request::Release { fd: Fd(fd) });
        }
        let d = c.call(&mut e, |w| Request::Rmdir {
            loc: path(w, "/d"),
            flags: 0,
        });
        assert_eq!(d.reply.op_ret, 0);
        let d = c.call(&mut e, |w| Request::Lookup {
            loc: path(w, "/d"),
            xdata: Xdata::default(),
        });
        assert_eq!(d.reply.op_errno, errno::ENOENT);
        // err_xl is the first translator to unwind this errno: the ram leaf (§4).
        assert_eq!((d.err_xl, d.error), (Some(0), errno::ENOENT));
        let d = c.call(&mut e, |w| Request::Statfs { loc: path(w, "/") });
        let Body::Statfs { buf } = d.reply.body else {
            panic!()
        };
        assert_eq!((buf.bsize, buf.blocks, buf.bfree), (512, 128, 128));
        let Builtin::Ram(fs) = &e.translators()[0] else {
            panic!()
        };
        assert_eq!((fs.inodes_used(), fs.fds_open()), (1, 0));
    });
}

#[test]
fn pass_through_layers_cost_no_frame_and_io_stats_counts() {
    with_graph!(STACK, 64, 4, |e, c| {
        c.call(&mut e, |w| Request::Lookup {
            loc: path(w, "/"),
            xdata: Xdata::default(),
        });
        // Root frame (io-stats), its wind (tail through wb), trace's wind (tail through locks).
        let s = e.stats();
        assert_eq!((s.frames, s.tails, s.peak_frames), (3, 2, 3));
        for _ in 0..3 {
            c.call(&mut e, |w| Request::Stat {
                loc: path(w, "/nope"),
            });
        }
        let Builtin::IoStats(st) = &e.translators()[4] else {
            panic!()
        };
        assert_eq!(st.get(Fop::Stat).calls, 3);
        assert_eq!(st.get(Fop::Stat).errors, 3);
        assert_eq!(st.get(Fop::Lookup).calls, 1);
        let text = st.dump(c.now).to_string();
        assert!(text.contains("\nSTAT                   3 "), "{text}");
    });
}

#[test]
fn trace_lines_in_upstream_format() {
    // trace above write-behind and locks, so it sees every write.
    let src = "volume ram\n type storage/ram\n option size-limit 0\nend-volume\n\
        volume locks\n type features/locks\n subvolumes ram\nend-volume\n\
        volume wb\n type performance/write-behind\n subvolumes locks\nend-volume\n\
        volume tr\n type debug/trace\n option log-file yes\n subvolumes wb\nend-volume\n";
    with_graph!(src, 64, 4, |e, c| {
        let d = c.call(&mut e, |w| Request::Lookup {
            loc: path(w, "/"),
            xdata: Xdata::default(),
        });
        let lines: Vec<_> = std::iter::from_fn(|| e.poll_output())
            .map(|o| match o {
                Output::Trace { xl, line } => {
                    assert_eq!(xl, 3);
                    line.to_string()
                }
                o => panic!("{o:?}"),
            })
            .collect();
        let u = d.unique;
        assert_eq!(
            lines[0],
            format!("{u}: gfid=00000000-0000-0000-0000-000000000000 path=/")
        );
        assert!(lines[1].starts_with(&format!(
            "{u}: gfid=00000000-0000-0000-0000-000000000001 (op_ret=0 *buf {{gfid=00000000-0000-0000-0000-000000000001 ino=1, mode=40755, nlink=2, uid=0, gid=0, size=0, blocks=0, atime=N/A "
        )), "{}", lines[1]);
        let created = c.call(&mut e, |w| Request::Create {
            loc: path(w, "/f"),
            flags: 0o100001,
            mode: 0o644,
            umask: 0,
            fd: Fd(9),
            xdata: Xdata::default(),
        });
        let _ = std::iter::from_fn(|| e.poll_output()).count();
        let d = c.call(&mut e, |w| Request::Writev {
            fd: Fd(9),
            data: w.put(b"hello world\n").unwrap(),
            offset: 0,
            flags: 0o100001,
        });
        let Some(Output::Trace { line, .. }) = e.poll_output() else {
            panic!()
        };
        assert_eq!(
            line.as_str(),
            // The fd's gfid, as trace learnt it from the create; writev's double space is
            // glusterfs 10.3's.
            format!(
                "{}: gfid={} fd=0x9, count=1,  offset=0 flags=08001 write_size=12",
                d.unique,
                entry_gfid(&created)
            )
        );
    });
}

#[test]
fn trace_off_is_a_tail_and_logs_nothing() {
    let src = "volume ram\n type storage/ram\n option size-limit 0\nend-volume\nvolume t\n type debug/trace\n subvolumes ram\nend-volume\n";
    with_graph!(src, 64, 4, |e, c| {
        c.call(&mut e, |w| Request::Stat { loc: path(w, "/") });
        assert_eq!(e.poll_output(), None);
        assert_eq!((e.stats().frames, e.stats().tails), (1, 1));
        // Without features/locks the leaf has no locks (posix answers ENOSYS, §5.7).
        let d = c.call(&mut e, |_| Request::Inodelk {
            domain: Span::EMPTY,
            loc: Loc {
                gfid: Gfid::ROOT,
                ..Loc::default()
            },
            cmd: 6,
            lock: Default::default(),
        });
        assert_eq!(d.reply.op_errno, errno::ENOSYS);
    });
}

#[test]
fn an_exhausted_pool_fails_the_fop_with_eagain_and_leaks_nothing() {
    let src = "volume ram\n type storage/ram\n option size-limit 0\nend-volume\n\
        volume a\n type debug/io-stats\n subvolumes ram\nend-volume\n\
        volume b\n type debug/io-stats\n subvolumes a\nend-volume\n\
        volume top\n type debug/io-stats\n subvolumes b\nend-volume\n";
    with_graph!(src, 3, 2, |e, c| {
        let d = c.call(&mut e, |w| Request::Stat { loc: path(w, "/") });
        // top and b hold frames; a cannot wind to ram and fails its own frame.
        assert_eq!(d.reply, Reply::error(errno::EAGAIN));
        assert_eq!((d.err_xl, d.error), (Some(1), errno::EAGAIN));
        assert_eq!(e.stats().exhausted, 1);
        check_balanced(&e);
    });
    with_graph!(src, 4, 2, |e, c| {
        let d = c.call(&mut e, |w| Request::Stat { loc: path(w, "/") });
        assert_eq!(d.reply.op_ret, 0);
    });
}

#[test]
fn a_shell_served_leaf_completes_later_and_stacks_run_out() {
    let src = "volume p\n type storage/posix\n option directory /b\nend-volume\n\
        volume top\n type debug/io-stats\n subvolumes p\nend-volume\n";
    with_graph!(src, 8, 2, |e, c| {
        let s1 = c
            .submit(&mut e, |w| Request::Stat { loc: path(w, "/x") })
            .unwrap();
        let s2 = c.submit(&mut e, |_| Request::Flush { fd: Fd(3) }).unwrap();
        assert_eq!(
            c.submit(&mut e, |_| Request::Flush { fd: Fd(4) }),
            Err(SubmitError::Stacks { capacity: 2 })
        );
        assert!(c.reply(&mut e).is_none());
        let Some(Output::Io {
            frame: f1,
            stack,
            xl: 0,
            req: Request::Stat { loc },
        }) = e.poll_output()
        else {
            panic!()
        };
        assert_eq!(stack, s1);
        let len = e.request_len(stack).unwrap();
        assert_eq!(
            loc.path.get(&e.buffer(stack).unwrap()[..len]),
            Some(&b"/x"[..])
        );
        let Some(Output::Io {
            frame: f2, stack, ..
        }) = e.poll_output()
        else {
            panic!()
        };
        assert_eq!(stack, s2);
        // The second answers first, 6 µs after it was asked (each submission ticks 1 µs).
        c.now += 5_000;
        e.handle_completion(c.now, f2, Reply::ok(0, Body::Empty))
            .unwrap();
        let d = c.reply(&mut e).unwrap();
        assert_eq!(d.reply.op_ret, 0);
        // A reply of the wrong shape is refused, and the frame keeps waiting.
        assert_eq!(
            e.handle_completion(c.now, f1, Reply::ok(0, Body::Empty)),
            Err(CallError::Shape { fop: Fop::Stat })
        );
        e.handle_completion(c.now, f1, Reply::error(errno::ENOENT))
            .unwrap();
        // Completing twice, or after destroy, names the frame as stale.
        let d = c.reply(&mut e).unwrap();
        assert_eq!((d.err_xl, d.error), (Some(0), errno::ENOENT));
        assert_eq!(
            e.handle_completion(c.now, f1, Reply::error(errno::EIO)),
            Err(CallError::Stale)
        );
        let Builtin::IoStats(st) = &e.translators()[1] else {
            panic!()
        };
        assert_eq!(st.get(Fop::Flush).max, 6_000);
        assert_eq!(st.get(Fop::Stat).min, 7_000);
        check_balanced(&e);
    });
}

/// A replicate-like fan-out: winds to every child with the child index as cookie, counts
/// replies down (call_count set before the first wind) and unwinds once with the first
/// success, or the last error.
#[derive(Debug)]
enum Fan<'m> {
    B(Builtin<'m>),
    Out,
}

#[derive(Clone, Copy, Debug, Default)]
enum FanLocal {
    #[default]
    None,
    Gfid(Gfid),
    Count {
        left: u32,
        best: Option<Reply>,
        seen: u64,
    },
}

impl From<Gfid> for FanLocal {
    fn from(g: Gfid) -> Self {
        FanLocal::Gfid(g)
    }
}

impl From<FanLocal> for Option<Gfid> {
    fn from(l: FanLocal) -> Self {
        match l {
            FanLocal::Gfid(g) => Some(g),
            _ => None,
        }
    }
}

impl Translator for Fan<'_> {
    type Local = FanLocal;

    fn call(
        &mut self,
        cx: &mut Ctx<'_, '_, FanLocal>,
        frame: FrameRef,
        req: Request,
    ) -> Result<(), CallError> {
        match self {
            Fan::B(Builtin::Ram(fs)) => fs.call(cx, frame, req),
            Fan::B(Builtin::Trace(t)) => t.call(cx, frame, req),
            Fan::B(_) => cx.tail(frame, req),
            Fan::Out => {
                let children: Vec<usize> = cx.children().collect();
                *cx.local(frame)? = FanLocal::Count {
                    left: children.len() as u32,
                    best: None,
                    seen: 0,
                };
                for (i, &ch) in children.iter().enumerate() {
                    if let Err(e) = cx.wind_cookie(frame, ch, i as u64, req) {
                        // A refused wind counts as that child's failure.
                        let from = Unwound {
                            cookie: i as u64,
                            child: ch,
                            fop: req.fop(),
                            reply: Reply::error(e.errno()),
                        };
                        self.unwound(cx, frame, from)?;
                    }
                }
                Ok(())
            }
        }
    }

    fn unwound(
        &mut self,
        cx: &mut Ctx<'_, '_, FanLocal>,
        frame: FrameRef,
        from: Unwound,
    ) -> Result<(), CallError> {
        match self {
            Fan::B(Builtin::Trace(t)) => t.unwound(cx, frame, from),
            Fan::B(_) => cx.unwind(frame, from.reply),
            Fan::Out => {
                let FanLocal::Count { left, best, seen } = cx.local(frame)? else {
                    return Err(CallError::NotRunning);
                };
                assert_eq!(*seen & 1 << from.cookie, 0, "cookie {} twice", from.cookie);
                *seen |= 1 << from.cookie;
                if best.is_none_or(|b| b.op_ret < 0) {
                    *best = Some(from.reply);
                }
                *left -= 1;
                if *left == 0 {
                    let r = best.unwrap_or(Reply::error(errno::EIO));
                    cx.take_local(frame)?;
                    cx.unwind(frame, r)?;
                }
                Ok(())
            }
        }
    }
}

#[test]
fn fan_out_unwinds_once_with_explicit_cookies() {
    let src = "volume r0\n type storage/ram\n option size-limit 0\nend-volume\nvolume r1\n type storage/ram\n option size-limit 0\nend-volume\n\
        volume r2\n type storage/ram\n option size-limit 0\nend-volume\n\
        volume t\n type debug/trace\n option log-file on\n subvolumes r2\nend-volume\n\
        volume top\n type cluster/replicate\n subvolumes r0 r1 t\nend-volume\n";
    let vf = Vf::parse(src.as_bytes()).unwrap();
    let mut g = Graph::build(&vf, BUILTIN).unwrap();
    g.init(&mut AnyDirectory).unwrap();
    let topo = Topology::<24, 48>::from_graph(&g);
    let mut arenas: Vec<Box<Arena>> = (0..3).map(|_| Box::new(Arena::new())).collect();
    let mut it = arenas.iter_mut();
    let table = Builtin::table::<8, 24, 64, 48>(&g, 0, &mut |_, l, now| {
        it.next().map(|a| RamFs::new(&mut **a, l, now))
    })
    .unwrap();
    let mut table: Vec<Fan<'_>> = table
        .into_iter()
        .enumerate()
        .map(|(i, b)| if i == 4 { Fan::Out } else { Fan::B(b) })
        .collect();
    {
        let mut store = vec![[0u8; 8192]; 4];
        let mut c = Client::new(&mut store);
        let mut e: Engine<'_, Fan<'_>, 8, 2, 16> = Engine::new(topo.view(), &mut table).unwrap();
        let d = c.call(&mut e, |w| Request::Mkdir {
            loc: path(w, "/x"),
            mode: 0o700,
            umask: 0,
            xdata: Xdata {
                gfid_req: Some(Gfid([9; 16])),
            },
        });
        assert_eq!(entry_gfid(&d), Gfid([9; 16]));
        // The same gfid again: every child fails, the error is unwound once.
        let d = c.call(&mut e, |w| Request::Mkdir {
            loc: path(w, "/y"),
            mode: 0o700,
            umask: 0,
            xdata: Xdata {
                gfid_req: Some(Gfid([9; 16])),
            },
        });
        assert_eq!(d.reply.op_errno, errno::EEXIST);
        assert_eq!(e.stats().peak_frames, 5);
    }
    {
        // Too few frames for all three children: the refused winds count as failures.
        let mut store = vec![[0u8; 8192]; 4];
        let mut c = Client::new(&mut store);
        let mut e: Engine<'_, Fan<'_>, 2, 2, 16> = Engine::new(topo.view(), &mut table).unwrap();
        let d = c.call(&mut e, |w| Request::Stat { loc: path(w, "/x") });
        assert_eq!(d.reply.op_ret, 0);
        assert_eq!(e.stats().exhausted, 2);
    }
    for (i, t) in table.iter().take(3).enumerate() {
        let Fan::B(Builtin::Ram(fs)) = t else {
            panic!()
        };
        assert_eq!(fs.inodes_used(), 2, "replica {i} has / and /x");
    }
}

#[test]
fn bad_requests_are_refused_before_any_frame() {
    with_graph!(STACK, 64, 4, |e, c| {
        let r = c.submit(&mut e, |_| Request::Stat {
            loc: Loc {
                path: Span { off: 0, len: 99 },
                ..Loc::default()
            },
        });
        assert_eq!(r, Err(SubmitError::Span { end: 99, len: 0 }));
        assert_eq!(e.stats().frames, 0);
        let d = c.call(&mut e, |w| Request::Mkdir {
            loc: path(w, "/z"),
            mode: 0o755,
            umask: 0,
            xdata: Xdata {
                gfid_req: Some(Gfid::NULL),
            },
        });
        assert_eq!(d.reply.op_errno, errno::EINVAL, "a null gfid-req is EINVAL");
        let _ = Local::None;
    });
}

const LOCKS: &str = "volume ram\n type storage/ram\n option size-limit 0\nend-volume\n\
    volume locks\n type features/locks\n subvolumes ram\nend-volume\n";

fn as_owner<'a, X: Translator, const F: usize, const S: usize, const E: usize>(
    c: &mut Client<'a>,
    e: &mut Engine<'a, X, F, S, E>,
    owner: &[u8],
    build: impl FnOnce(&mut RequestBytes<'_>) -> Request,
) -> Option<Done> {
    c.now += 1_000;
    let mut w = RequestBytes::new(c.free.pop().unwrap());
    let lk_owner = w.put(owner).unwrap();
    let req = build(&mut w);
    let (buf, len) = w.finish();
    let creds = Creds {
        lk_owner,
        ..Creds::default()
    };
    e.handle_request(c.now, creds, req, buf, len).unwrap();
    c.reply(e)
}

fn flock(ty: i16, start: i64, len: i64) -> keelson_core::xlator::args::Flock {
    keelson_core::xlator::args::Flock {
        ty,
        whence: 0,
        start,
        len,
        pid: 1,
    }
}

#[test]
fn locks_conflict_per_domain_refuse_or_wait_and_wake_in_order() {
    with_graph!(LOCKS, 64, 4, |e, c| {
        let root = Loc {
            gfid: Gfid::ROOT,
            ..Loc::default()
        };
        let inodelk = |w: &mut RequestBytes<'_>, dom: &[u8], cmd, lock| Request::Inodelk {
            domain: w.put(dom).unwrap(),
            loc: root,
            cmd,
            lock,
        };
        let ret = |d: Option<Done>| d.map(|d| (d.reply.op_ret, d.reply.op_errno));
        assert_eq!(
            ret(as_owner(&mut c, &mut e, b"A", |w| inodelk(
                w,
                b"d",
                6,
                flock(1, 0, 11)
            ))),
            Some((0, 0))
        );
        assert_eq!(
            ret(as_owner(&mut c, &mut e, b"B", |w| inodelk(
                w,
                b"d",
                6,
                flock(1, 5, 1)
            ))),
            Some((-1, errno::EAGAIN))
        );
        // Another domain never interacts; a read lock elsewhere is fine.
        assert_eq!(
            ret(as_owner(&mut c, &mut e, b"B", |w| inodelk(
                w,
                b"other",
                6,
                flock(1, 5, 1)
            ))),
            Some((0, 0))
        );
        assert_eq!(
            ret(as_owner(&mut c, &mut e, b"B", |w| inodelk(
                w,
                b"d",
                6,
                flock(0, 20, 10)
            ))),
            Some((0, 0))
        );
        // Unlock must match exactly.
        assert_eq!(
            ret(as_owner(&mut c, &mut e, b"A", |w| inodelk(
                w,
                b"d",
                6,
                flock(2, 0, 5)
            ))),
            Some((-1, errno::EINVAL))
        );
        // A blocking request waits, parked in features/locks.
        assert!(as_owner(&mut c, &mut e, b"B", |w| inodelk(
            w,
            b"d",
            7,
            flock(1, 0, 1)
        ))
        .is_none());
        let Builtin::Locks(l) = &e.translators()[1] else {
            panic!()
        };
        assert_eq!((l.held(), l.blocked()), (3, 1));
        // A third owner's lock that conflicts with nothing, held or blocked, is granted at once.
        assert_eq!(
            ret(as_owner(&mut c, &mut e, b"C", |w| inodelk(
                w,
                b"d",
                6,
                flock(0, 50, 1)
            ))),
            Some((0, 0))
        );
        assert_eq!(
            as_owner(&mut c, &mut e, b"A", |w| inodelk(
                w,
                b"d",
                6,
                flock(2, 0, 11)
            ))
            .map(|d| d.reply.op_ret),
            Some(0)
        );
        // The unlock woke B: its reply is waiting.
        let d = c.reply(&mut e).expect("B granted");
        assert_eq!(d.reply.op_ret, 0);
        // entrylk: names conflict with themselves and with the whole directory.
        let entrylk = |w: &mut RequestBytes<'_>, name: &[u8], cmd| Request::Entrylk {
            domain: w.put(b"d").unwrap(),
            loc: root,
            basename: if name.is_empty() {
                Span::EMPTY
            } else {
                w.put(name).unwrap()
            },
            cmd,
            ty: 1,
        };
        assert_eq!(
            ret(as_owner(&mut c, &mut e, b"A", |w| entrylk(w, b"x", 2))),
            Some((0, 0))
        );
        assert_eq!(
            ret(as_owner(&mut c, &mut e, b"B", |w| entrylk(w, b"x", 2))),
            Some((-1, errno::EAGAIN))
        );
        assert_eq!(
            ret(as_owner(&mut c, &mut e, b"B", |w| entrylk(w, b"y", 2))),
            Some((0, 0))
        );
        assert_eq!(
            ret(as_owner(&mut c, &mut e, b"C", |w| entrylk(w, b"", 2))),
            Some((-1, errno::EAGAIN))
        );
        assert_eq!(
            ret(as_owner(&mut c, &mut e, b"A", |w| entrylk(w, b"x", 1))),
            Some((0, 0))
        );
        assert_eq!(
            ret(as_owner(&mut c, &mut e, b"A", |w| entrylk(w, b"x", 1))),
            Some((-1, errno::EINVAL))
        );
        // lk through two fds of one file: the gfid is learnt from create's reply and open.
        let d = c.call(&mut e, |w| Request::Create {
            loc: path(w, "/f"),
            flags: 0o102,
            mode: 0o644,
            umask: 0,
            fd: Fd(1),
            xdata: Xdata::default(),
        });
        let g = entry_gfid(&d);
        c.call(&mut e, |_| Request::Open {
            loc: Loc {
                gfid: g,
                ..Loc::default()
            },
            flags: 2,
            fd: Fd(2),
        });
        let lk = |fd, cmd, lock| {
            move |_: &mut RequestBytes<'_>| Request::Lk {
                fd: Fd(fd),
                cmd,
                lock,
            }
        };
        assert_eq!(
            ret(as_owner(&mut c, &mut e, b"A", lk(1, 6, flock(1, 0, 100)))),
            Some((0, 0))
        );
        let d = as_owner(&mut c, &mut e, b"B", lk(2, 5, flock(0, 50, 1))).unwrap();
        assert_eq!(
            d.reply.body,
            Body::Lock {
                lock: flock(1, 0, 100)
            },
            "GETLK names the holder"
        );
        assert_eq!(
            ret(as_owner(&mut c, &mut e, b"B", lk(2, 6, flock(0, 50, 1)))),
            Some((-1, errno::EAGAIN))
        );
        // Releasing the fd the lock was taken through drops it.
        c.call(&mut e, |_| Request::Release { fd: Fd(1) });
        assert_eq!(
            ret(as_owner(&mut c, &mut e, b"B", lk(2, 6, flock(0, 50, 1)))),
            Some((0, 0))
        );
        check_balanced(&e);
    });
}

#[test]
fn write_behind_lies_within_the_window_and_reports_failures_at_flush() {
    let src = "volume ram\n type storage/ram\n option size-limit 0\nend-volume\n\
        volume wb\n type performance/write-behind\n subvolumes ram\nend-volume\n";
    with_graph!(src, 64, 4, |e, c| {
        let create = |fd: u64, flags| {
            move |w: &mut RequestBytes<'_>| Request::Create {
                loc: w.path(format!("/f{fd}").as_bytes()).unwrap(),
                flags,
                mode: 0o644,
                umask: 0,
                fd: Fd(fd),
                xdata: Xdata::default(),
            }
        };
        let write = |fd, flags, n: usize| {
            move |w: &mut RequestBytes<'_>| Request::Writev {
                fd: Fd(fd),
                data: w.put(&vec![b'x'; n]).unwrap(),
                offset: 0,
                flags,
            }
        };
        c.call(&mut e, create(1, 0o102));
        // O_SYNC is never lied: the leaf's post-op size comes back.
        let d = c.call(&mut e, write(1, 0o4010000, 10));
        assert_eq!(post(&d).size, 10);
        // Over the window (4 KiB here): written through.
        let d = c.call(&mut e, write(1, 0, 5000));
        assert_eq!(post(&d).size, 5000);
        // A lied write to an fd the leaf refuses (opened read-only): flush reports it once.
        c.call(&mut e, create(2, 0o100));
        let d = c.call(&mut e, write(2, 0, 3));
        assert_eq!((d.reply.op_ret, post(&d)), (3, Iatt::default()));
        let d = c.call(&mut e, |_| Request::Flush { fd: Fd(2) });
        assert_eq!(d.reply, Reply::error(errno::EBADF));
        let d = c.call(&mut e, |_| Request::Flush { fd: Fd(2) });
        assert_eq!(d.reply.op_ret, 0);
        // Kept writes of other fds stay kept; fsync sends them.
        let d = c.call(&mut e, write(1, 0, 7));
        assert_eq!(post(&d), Iatt::default());
        c.call(&mut e, |_| Request::Fstat { fd: Fd(2) });
        let Builtin::WriteBehind(wb) = &e.translators()[1] else {
            panic!()
        };
        assert_eq!(wb.kept_bytes(), 7);
        let d = c.call(&mut e, |_| Request::Fsync {
            fd: Fd(1),
            datasync: false,
        });
        assert_eq!(d.reply.op_ret, 0);
        let Builtin::WriteBehind(wb) = &e.translators()[1] else {
            panic!()
        };
        assert_eq!(wb.kept_bytes(), 0);
        check_balanced(&e);
    });
}

#[test]
fn write_behind_sends_kept_writes_before_a_fop_on_their_inode() {
    let src = "volume ram\n type storage/ram\n option size-limit 0\nend-volume\n\
        volume wb\n type performance/write-behind\n subvolumes ram\nend-volume\n";
    with_graph!(src, 64, 4, |e, c| {
        let g = Gfid([9; 16]);
        c.call(&mut e, |w| Request::Create {
            loc: path(w, "/f"),
            flags: 0o102,
            mode: 0o644,
            umask: 0,
            fd: Fd(1),
            xdata: Xdata { gfid_req: Some(g) },
        });
        let lied = c.call(&mut e, |w| Request::Writev {
            fd: Fd(1),
            data: w.put(b"kept").unwrap(),
            offset: 0,
            flags: 0,
        });
        assert_eq!(post(&lied), Iatt::default(), "lied: zeroed iatts");
        // A stat by path alone names no inode: it passes the kept write.
        let d = c.call(&mut e, |w| Request::Stat { loc: path(w, "/f") });
        let Body::Attr { buf } = d.reply.body else {
            panic!("{d:?}")
        };
        assert_eq!(buf.size, 0);
        // By gfid it waits for it (upstream's kept writes are per inode), as a setattr would.
        let d = c.call(&mut e, |w| Request::Stat {
            loc: Loc {
                gfid: g,
                ..path(w, "/f")
            },
        });
        let Body::Attr { buf } = d.reply.body else {
            panic!("{d:?}")
        };
        assert_eq!(buf.size, 4);
    });
}
