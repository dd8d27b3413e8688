//! GlusterFS translator graphs running fops (translators.md §3–§5): a chain of layers over
//! storage/ram or a shell-served storage/posix, or over a cluster/replicate of two such
//! leaves (with its heal tables), built from volfile text, then any sequence of fops,
//! out-of-order completions, stale and misshapen completions, CHILD_DOWN/CHILD_UP to the
//! replicate and background heals. No panic, every reply fits its fop, every frame made
//! unwinds exactly once and none is left after the last reply.

use std::fmt::Write;

use keelson_core::xlator::args::{Body, Fd, Flock, Loc, Reply, Request, RequestBytes, Span, Xdata};
use keelson_core::xlator::builtin::Builtin;
use keelson_core::xlator::engine::{Engine, Output, Topology};
use keelson_core::xlator::event::Event;
use keelson_core::xlator::replicate::ReplicateArena;
use keelson_core::xlator::frame::{Creds, FrameRef};
use keelson_core::xlator::graph::AnyDirectory;
use keelson_core::xlator::iatt::{Gfid, Iatt};
use keelson_core::xlator::ram::{RamArena, RamFs};
use keelson_core::xlator::types::BUILTIN;
use keelson_core::xlator::{Graph, Volfile};

use crate::input::Input;

const LAYERS: [&str; 6] = [
    "performance/write-behind",
    "features/locks",
    "debug/trace",
    "debug/trace\n option log-file on",
    "debug/io-stats",
    "cluster/replicate",
];

const PATHS: [&[u8]; 6] = [b"/", b"/a", b"/a/b", b"/c", b"/a/../c", b"//a/"];

type Arena = RamArena<8, 12, 16, 4>;
type Eng<'a, 'm> = Engine<'a, Builtin<'m>, 6, 3, 8>;

/// The volfile for the first bytes: leaf kind, then up to 7 layers; with bit 4, the leaf is
/// a cluster/replicate (`v0`) over two leaves (`l0`, `l1`, the second of the other kind with
/// bit 5).
fn volfile(inp: &mut Input<'_>) -> String {
    let head = inp.u8().unwrap_or(0);
    let mut s = String::new();
    let leaf = |kind: u8, name: &str| {
        if kind & 1 == 0 {
            format!("volume {name}\n type storage/ram\n option size-limit 4KB\nend-volume\n")
        } else {
            format!("volume {name}\n type storage/posix\n option directory /b\nend-volume\n")
        }
    };
    if head & 0x10 != 0 {
        s += &leaf(head, "l0");
        s += &leaf(head ^ (head >> 5 & 1), "l1");
        s += "volume v0\n type cluster/replicate\n option afr-pending-xattr a,b\n\
              subvolumes l0 l1\nend-volume\n";
    } else {
        s += &leaf(head, "v0");
    }
    for i in 1..=usize::from(head >> 1 & 7) {
        let t = LAYERS[usize::from(inp.u8().unwrap_or(0)) % LAYERS.len()];
        let _ = write!(
            s,
            "volume v{i}\n type {t}\n subvolumes v{}\nend-volume\n",
            i - 1
        );
    }
    s
}

fn loc(w: &mut RequestBytes<'_>, inp: &mut Input<'_>) -> Loc {
    let k = inp.u8().unwrap_or(0);
    let mut l = w
        .path(PATHS[usize::from(k) % PATHS.len()])
        .unwrap_or_default();
    if k & 0x80 != 0 {
        l.gfid = Gfid::ROOT;
    }
    if k & 0x40 != 0 {
        l.pargfid = Gfid::ROOT;
    }
    l
}

fn request(w: &mut RequestBytes<'_>, inp: &mut Input<'_>) -> Request {
    let op = inp.u8().unwrap_or(0);
    let fd = Fd(u64::from(inp.u8().unwrap_or(0) % 4));
    let n = inp.u16().unwrap_or(0);
    let x = Xdata {
        gfid_req: (op & 0x80 != 0).then(|| Gfid([n as u8; 16])),
    };
    let off = u64::from(n) * 61;
    match op % 26 {
        0 => Request::Lookup {
            loc: loc(w, inp),
            xdata: x,
        },
        1 => Request::Stat { loc: loc(w, inp) },
        2 => Request::Fstat { fd },
        3 => Request::Mkdir {
            loc: loc(w, inp),
            mode: 0o755,
            umask: 0o22,
            xdata: x,
        },
        4 => Request::Create {
            loc: loc(w, inp),
            flags: i32::from(n),
            mode: 0o644,
            umask: 0,
            fd,
            xdata: x,
        },
        5 => Request::Open {
            loc: loc(w, inp),
            flags: i32::from(n),
            fd,
        },
        6 => {
            let data = inp.bytes(usize::from(n % 700)).to_vec();
            Request::Writev {
                fd,
                data: w.put(&data).unwrap_or_default(),
                offset: off,
                flags: 0,
            }
        }
        7 => Request::Readv {
            fd,
            size: u32::from(n),
            offset: off,
            flags: 0,
        },
        8 => Request::Truncate {
            loc: loc(w, inp),
            offset: off,
        },
        9 => Request::Ftruncate { fd, offset: off },
        10 => Request::Unlink {
            loc: loc(w, inp),
            flags: 0,
        },
        11 => Request::Rmdir {
            loc: loc(w, inp),
            flags: 0,
        },
        12 => Request::Rename {
            oldloc: loc(w, inp),
            newloc: loc(w, inp),
        },
        13 => Request::Link {
            oldloc: loc(w, inp),
            newloc: loc(w, inp),
            xdata: x,
        },
        14 => {
            let linkpath = w.put(b"a/b").unwrap_or_default();
            Request::Symlink {
                linkpath,
                loc: loc(w, inp),
                umask: 0,
                xdata: x,
            }
        }
        15 => Request::Readlink {
            loc: loc(w, inp),
            size: u32::from(n),
        },
        16 => Request::Opendir {
            loc: loc(w, inp),
            fd,
        },
        17 => Request::Readdirp {
            fd,
            size: u32::from(n),
            offset: u64::from(n % 8),
        },
        18 => Request::Setattr {
            loc: loc(w, inp),
            stbuf: Iatt {
                prot: n,
                uid: 7,
                ..Iatt::default()
            },
            valid: i32::from(n),
        },
        19 => {
            let name = w.put(&[b'u', b'.', op]).unwrap_or_default();
            let value = inp.bytes(usize::from(n % 300)).to_vec();
            let value = w.put(&value).unwrap_or_default();
            Request::Fsetxattr {
                fd,
                name,
                value,
                flags: i32::from(n % 4),
            }
        }
        20 => Request::Getxattr {
            loc: loc(w, inp),
            name: if n & 1 == 0 {
                Span::EMPTY
            } else {
                w.put(b"u.a").unwrap_or_default()
            },
        },
        21 => Request::Statfs { loc: loc(w, inp) },
        22 => Request::Inodelk {
            domain: Span::EMPTY,
            loc: loc(w, inp),
            cmd: 6,
            lock: Flock::default(),
        },
        _ => Request::Release { fd },
    }
}

/// A completion for a parked frame: sometimes of the wrong shape (refused), sometimes twice.
fn completion(inp: &mut Input<'_>) -> Reply {
    match inp.u8().unwrap_or(0) % 4 {
        0 => Reply::error(2),
        1 => Reply::ok(0, Body::Empty),
        2 => Reply::ok(
            0,
            Body::Attr {
                buf: Iatt::default(),
            },
        ),
        _ => Reply {
            op_ret: -1,
            op_errno: 5,
            body: Body::Attr {
                buf: Iatt::default(),
            },
        },
    }
}

/// Takes every output and reply, checking each reply.
fn drain<'a>(e: &mut Eng<'a, '_>, free: &mut Vec<&'a mut [u8]>, parked: &mut Vec<FrameRef>) {
    while let Some(o) = e.poll_output() {
        if let Output::Io { frame, .. } = o {
            parked.push(frame);
        }
    }
    while let Some(c) = e.poll_reply() {
        assert!(c.reply.fits(c.fop), "{:?} for {}", c.reply, c.fop);
        assert!(c.reply.op_ret >= 0 || c.reply.op_errno > 0, "{:?}", c.reply);
        if c.reply.op_ret < 0 {
            assert!(c.err_xl.is_some(), "an error without err_xl");
        }
        free.push(c.buf);
    }
}

/// The whole run on `data`; invariants panic.
pub fn check(data: &[u8]) {
    let mut inp = Input(data);
    let src = volfile(&mut inp);
    let Ok(vf) = Volfile::<'_, 16, 32, 16>::parse(src.as_bytes()) else {
        panic!("generated volfile refused:\n{src}")
    };
    let Ok(mut g) = Graph::build(&vf, BUILTIN) else {
        panic!("graph refused:\n{src}")
    };
    if g.init(&mut AnyDirectory).is_err() {
        return;
    }
    let topo = Topology::<16, 16>::from_graph(&g);
    let mut arenas = [Box::new(Arena::new()), Box::new(Arena::new())];
    let mut rams = arenas.iter_mut();
    let mut afr = Box::new(ReplicateArena::<4, 4>::new());
    let mut tables = Some(afr.tables());
    let Ok(mut table) = Builtin::table_with::<16, 16, 32, 16>(
        &g,
        0,
        &mut |_, l, now| rams.next().map(|a| RamFs::new(a, l, now)),
        &mut |_| tables.take(),
    ) else {
        panic!("table refused:\n{src}")
    };
    // The replicate and its two children, when the graph has one.
    let rep = (0..g.len()).find(|&i| g.children(i).count() == 2);
    let kids: Vec<usize> = rep.map_or(Vec::new(), |r| g.children(r).collect());
    let mut store = vec![[0u8; 1024]; 4];
    let mut free: Vec<&mut [u8]> = store.iter_mut().map(|b| &mut b[..]).collect();
    let Ok(mut e) = Eng::new(topo.view(), &mut table) else {
        panic!("engine refused:\n{src}")
    };
    let mut parked: Vec<FrameRef> = Vec::new();
    let mut now = 0u64;
    while !inp.0.is_empty() {
        now += u64::from(inp.u8().unwrap_or(0));
        match inp.u8().unwrap_or(0) % 6 {
            0 | 1 => {
                let Some(buf) = free.pop() else { continue };
                let mut w = RequestBytes::new(buf);
                // Three lock owners, so features/locks sees conflicts.
                let owner = [inp.u8().unwrap_or(0) % 3];
                let lk_owner = w.put(&owner).unwrap_or_default();
                let req = request(&mut w, &mut inp);
                let (buf, len) = w.finish();
                let creds = Creds {
                    lk_owner,
                    ..Creds::default()
                };
                if let Err(r) = e.handle_request(now, creds, req, buf, len) {
                    free.push(r.buf);
                }
            }
            2 if !parked.is_empty() => {
                let i = usize::from(inp.u8().unwrap_or(0)) % parked.len();
                let f = parked[i];
                let r = completion(&mut inp);
                if e.handle_completion(now, f, r).is_ok() {
                    parked.swap_remove(i);
                }
            }
            3 if rep.is_some() => {
                let k = inp.u8().unwrap_or(0);
                let event = if k & 1 == 0 {
                    Event::ChildDown
                } else {
                    Event::ChildUp
                };
                if let (Some(r), Some(&c)) = (rep, kids.get(usize::from(k >> 1) % 2)) {
                    e.notify(r, c, event);
                }
            }
            4 => {
                if let Some(bg) = e.next_background(now) {
                    if let Some(buf) = free.pop() {
                        if let Err(r) = e.handle_background(now, bg, buf) {
                            free.push(r.buf);
                        }
                    }
                }
            }
            _ => {}
        }
        drain(&mut e, &mut free, &mut parked);
        assert_eq!(e.stats().faults, 0, "{:?}\n{src}", e.stats());
    }
    // Answer everything still parked, then every frame made must have unwound.
    while let Some(f) = parked.pop() {
        e.handle_completion(now, f, Reply::error(5))
            .expect("a parked frame accepts an error");
        drain(&mut e, &mut free, &mut parked);
    }
    let s = e.stats();
    assert_eq!(s.frames, s.unwinds, "{s:?}\n{src}");
    assert_eq!(
        (s.live_frames, s.abandoned, s.faults),
        (0, 0, 0),
        "{s:?}\n{src}"
    );
    assert_eq!(e.live_stacks(), 0);
    assert_eq!(free.len(), 4);
}
