//! cluster/distribute graphs running fops (translators.md §5.3): 2–4 subvolumes, each
//! storage/ram or a shell-served storage/posix (answered by the fuzzer with replies of the
//! right shape and arbitrary contents: any file type and mode, linkto-looking files, layout
//! and linkto xattrs well- or ill-formed, listings, errors), optionally a layer between
//! distribute and each brick and one above it; then names and paths that hash everywhere,
//! rsync-style names, gfid-only locs, fds, and children going down and up between fops. No panic, every
//! reply fits its fop, no translator misuses a frame, every frame unwinds once, and nothing
//! is left in flight after the last reply.

use std::fmt::Write;

use keelson_core::xlator::args::{
    errno, Body, Fd, Flock, Loc, Reply, Request, RequestBytes, Span, Xdata,
};
use keelson_core::xlator::builtin::Builtin;
use keelson_core::xlator::dirent::{Dirent, DirentWriter};
use keelson_core::xlator::distribute::layout::{encode, Range};
use keelson_core::xlator::engine::{Engine, Output, Topology};
use keelson_core::xlator::frame::{Creds, FrameRef, StackRef};
use keelson_core::xlator::graph::AnyDirectory;
use keelson_core::xlator::iatt::{Gfid, IaType, Iatt, Statvfs};
use keelson_core::xlator::ram::{RamArena, RamFs};
use keelson_core::xlator::types::BUILTIN;
use keelson_core::xlator::{Event, Graph, Volfile};

use crate::input::Input;

const BELOW: [&str; 4] = [
    "features/locks",
    "debug/trace\n option log-file on",
    "performance/write-behind",
    "debug/io-stats",
];

const PATHS: [&[u8]; 10] = [
    b"/",
    b"/a",
    b"/a/b",
    b"/f1",
    b"/a/f2",
    b"/a/b/f3",
    b"/.f1.XyZ12",
    b"/a/../f1",
    b"//a/",
    b"/caf\xc3\xa9",
];

type Arena = RamArena<12, 16, 8, 12>;
type Eng<'a, 'm> = Engine<'a, Builtin<'m>, 48, 3, 16>;

/// The volfile: subvolume count and kinds, layers, options.
fn volfile(inp: &mut Input<'_>) -> (String, usize) {
    let head = inp.u8().unwrap_or(0);
    let n = 2 + usize::from(head & 3) % 3;
    let mut s = String::new();
    let mut subs = Vec::new();
    for i in 0..n {
        let kind = inp.u8().unwrap_or(0);
        if kind & 1 == 0 {
            let _ = write!(
                s,
                "volume b{i}\n type storage/ram\n option size-limit 4KB\nend-volume\n"
            );
        } else {
            let _ = write!(
                s,
                "volume b{i}\n type storage/posix\n option directory /b{i}\nend-volume\n"
            );
        }
        let mut top = format!("b{i}");
        if kind & 2 != 0 {
            let t = BELOW[usize::from(kind >> 2) % BELOW.len()];
            let _ = write!(s, "volume l{i}\n type {t}\n subvolumes b{i}\nend-volume\n");
            top = format!("l{i}");
        }
        subs.push(top);
    }
    // Listed out of name order at times, so positions and name order differ.
    if head & 4 != 0 {
        subs.reverse();
    }
    let mut opts = String::new();
    if head & 8 != 0 {
        opts += " option lookup-optimize off\n";
    }
    if head & 16 != 0 {
        opts += " option weighted-rebalance off\n";
    }
    if head & 32 != 0 {
        opts += " option randomize-hash-range-by-gfid on\n";
    }
    if head & 64 != 0 {
        opts += " option directory-layout-spread 2\n";
    }
    let _ = write!(
        s,
        "volume dht\n type cluster/distribute\n{opts} subvolumes {}\nend-volume\n",
        subs.join(" ")
    );
    if head & 128 != 0 {
        s += "volume top\n type debug/io-stats\n subvolumes dht\nend-volume\n";
    }
    (s, n)
}

fn gfid(k: u8) -> Gfid {
    match k % 4 {
        0 => Gfid::NULL,
        1 => Gfid::ROOT,
        _ => Gfid([k; 16]),
    }
}

fn loc(w: &mut RequestBytes<'_>, inp: &mut Input<'_>) -> Loc {
    let k = inp.u8().unwrap_or(0);
    let mut l = w
        .path(PATHS[usize::from(k) % PATHS.len()])
        .unwrap_or_default();
    if k & 0x80 != 0 {
        l.gfid = gfid(inp.u8().unwrap_or(0));
    }
    if k & 0x40 != 0 {
        l.pargfid = gfid(inp.u8().unwrap_or(0));
    }
    if k & 0x20 != 0 {
        // A gfid-only object, as the FUSE bridge sends by inode.
        l.path = w.put(b"<gfid:x>").unwrap_or_default();
        l.name = Span::EMPTY;
    }
    l
}

fn xdata(inp: &mut Input<'_>) -> Xdata {
    let k = inp.u8().unwrap_or(0);
    Xdata {
        gfid_req: (k & 1 != 0).then(|| gfid(k >> 1)),
    }
}

fn request(w: &mut RequestBytes<'_>, inp: &mut Input<'_>) -> Request {
    let op = inp.u8().unwrap_or(0);
    let fd = Fd(u64::from(inp.u8().unwrap_or(0) % 4));
    let n = inp.u16().unwrap_or(0);
    match op % 24 {
        0 | 1 => Request::Lookup {
            loc: loc(w, inp),
            xdata: xdata(inp),
        },
        2 => Request::Stat { loc: loc(w, inp) },
        3 => Request::Mkdir {
            loc: loc(w, inp),
            mode: 0o755,
            umask: 0,
            xdata: xdata(inp),
        },
        4 => Request::Create {
            loc: loc(w, inp),
            flags: 0o101,
            mode: u32::from(n) & 0o7777,
            umask: 0,
            fd,
            xdata: xdata(inp),
        },
        5 => Request::Mknod {
            loc: loc(w, inp),
            mode: 0o100000 | u32::from(n) & 0o7777,
            rdev: 0,
            umask: 0,
            xdata: xdata(inp),
        },
        6 => Request::Open {
            loc: loc(w, inp),
            flags: 0,
            fd,
        },
        7 => Request::Opendir {
            loc: loc(w, inp),
            fd,
        },
        8 => Request::Readdirp {
            fd,
            size: u32::from(n),
            offset: u64::from(inp.u8().unwrap_or(0)),
        },
        9 => Request::Readdir {
            fd,
            size: u32::from(n),
            offset: u64::from(inp.u8().unwrap_or(0)),
        },
        10 => Request::Unlink {
            loc: loc(w, inp),
            flags: 0,
        },
        11 => Request::Rmdir {
            loc: loc(w, inp),
            flags: 0,
        },
        12 | 13 => Request::Rename {
            oldloc: loc(w, inp),
            newloc: loc(w, inp),
        },
        14 => Request::Link {
            oldloc: loc(w, inp),
            newloc: loc(w, inp),
            xdata: Xdata::default(),
        },
        15 => {
            let data = inp.bytes(usize::from(n % 64)).to_vec();
            Request::Writev {
                fd,
                data: w.put(&data).unwrap_or_default(),
                offset: u64::from(n),
                flags: 0,
            }
        }
        16 => Request::Readv {
            fd,
            size: u32::from(n),
            offset: 0,
            flags: 0,
        },
        17 => Request::Setattr {
            loc: loc(w, inp),
            stbuf: Iatt {
                prot: n,
                ..Iatt::default()
            },
            valid: 1,
        },
        18 => Request::Getxattr {
            loc: loc(w, inp),
            name: w.put(b"trusted.glusterfs.dht").unwrap_or_default(),
        },
        19 => Request::Setxattr {
            loc: loc(w, inp),
            name: w.put(b"user.k").unwrap_or_default(),
            value: w.put(&n.to_le_bytes()).unwrap_or_default(),
            flags: 0,
        },
        20 => Request::Statfs { loc: loc(w, inp) },
        21 => Request::Finodelk {
            domain: Span::EMPTY,
            fd,
            cmd: 6,
            lock: Flock::default(),
        },
        22 => Request::Fstat { fd },
        _ => {
            if op & 0x80 != 0 {
                Request::Releasedir { fd }
            } else {
                Request::Release { fd }
            }
        }
    }
}

/// An attribute record for a parked lookup or entry fop: any type, mode and size, linkto
/// files (`---------T`, empty) often.
fn iatt(inp: &mut Input<'_>) -> Iatt {
    let k = inp.u8().unwrap_or(0);
    let ty = IaType::from_value(k % 8);
    let prot = if k & 0x10 != 0 {
        0o1000
    } else {
        u16::from(inp.u8().unwrap_or(0)) << 1
    };
    Iatt {
        ty,
        prot,
        size: if k & 0x20 != 0 { 0 } else { u64::from(k) },
        gfid: gfid(inp.u8().unwrap_or(0)),
        ..Iatt::default()
    }
}

/// Writes `bytes` into the reply area of the stack's buffer; the span.
fn put(e: &mut Eng<'_, '_>, stack: StackRef, bytes: &[u8]) -> Span {
    let base = e.request_len(stack).unwrap_or(0);
    let Some(buf) = e.buffer(stack) else {
        return Span::EMPTY;
    };
    let Some(dst) = buf.get_mut(base..base + bytes.len()) else {
        return Span::EMPTY;
    };
    dst.copy_from_slice(bytes);
    Span {
        off: base as u32,
        len: bytes.len() as u32,
    }
}

/// A completion for a parked posix fop: usually of its shape with arbitrary contents,
/// sometimes an error, sometimes misshapen (refused).
fn completion(
    e: &mut Eng<'_, '_>,
    stack: StackRef,
    req: &Request,
    inp: &mut Input<'_>,
    names: &[String],
) -> Reply {
    let k = inp.u8().unwrap_or(0);
    match k % 8 {
        0 => {
            return Reply::error(
                [
                    errno::ENOENT,
                    errno::ENODATA,
                    errno::EEXIST,
                    errno::ENOTEMPTY,
                    errno::EIO,
                    errno::ENOTCONN,
                    errno::ESTALE,
                    errno::EINVAL,
                ][usize::from(k >> 3) % 8],
            )
        }
        1 => return Reply::ok(0, Body::Empty),
        _ => {}
    }
    let body = match req {
        Request::Lookup { .. } => Body::Lookup {
            inode: gfid(inp.u8().unwrap_or(0)),
            buf: iatt(inp),
            postparent: Iatt::default(),
        },
        Request::Stat { .. } | Request::Fstat { .. } => Body::Attr { buf: iatt(inp) },
        Request::Mkdir { .. }
        | Request::Mknod { .. }
        | Request::Symlink { .. }
        | Request::Link { .. }
        | Request::Create { .. } => Body::Entry {
            fd: req.fd(),
            inode: gfid(inp.u8().unwrap_or(0)),
            buf: iatt(inp),
            preparent: Iatt::default(),
            postparent: Iatt::default(),
        },
        Request::Getxattr { .. } | Request::Fgetxattr { .. } => {
            let value: Vec<u8> = match inp.u8().unwrap_or(0) % 4 {
                0 => {
                    let a = inp.u16().unwrap_or(0);
                    let b = inp.u16().unwrap_or(0);
                    encode(
                        u32::from(a & 3),
                        u32::from(b & 1),
                        Range {
                            start: u32::from(a) << 16,
                            stop: (u32::from(b) << 16) | 0xffff,
                        },
                    )
                    .to_vec()
                }
                1 => {
                    let mut v = names
                        .get(usize::from(inp.u8().unwrap_or(0)) % names.len().max(1))
                        .cloned()
                        .unwrap_or_default()
                        .into_bytes();
                    v.push(0);
                    v
                }
                _ => inp.bytes(20).to_vec(),
            };
            let value = put(e, stack, &value);
            return Reply::ok(value.len as i32, Body::Xattr { value });
        }
        Request::Readdirp { .. } | Request::Readdir { .. } => {
            let plus = matches!(req, Request::Readdirp { .. });
            let count = inp.u8().unwrap_or(0) % 5;
            let mut area = vec![0u8; 1024];
            let mut w = DirentWriter::new(&mut area);
            for i in 0..count {
                let name = [b'.', b'.', b'e', b'0' + i];
                let cut = usize::from(inp.u8().unwrap_or(2) % 4);
                let st = iatt(inp);
                let d = Dirent {
                    d_off: u64::from(inp.u8().unwrap_or(i)),
                    d_ino: 1,
                    d_type: st.ty.d_type(),
                    name: &name[cut.min(3)..],
                    stat: plus.then_some(st),
                };
                w.push(1024, &d);
            }
            let (n, len) = (w.count(), w.len());
            let data = put(e, stack, &area[..len]);
            return Reply::ok(n as i32, Body::Entries { data });
        }
        Request::Statfs { .. } => Body::Statfs {
            buf: Statvfs {
                bsize: 4096,
                frsize: 4096,
                blocks: u64::from(inp.u16().unwrap_or(0)) << 8,
                ..Statvfs::default()
            },
        },
        Request::Open { fd, .. } | Request::Opendir { fd, .. } => Body::Fd { fd: *fd },
        Request::Unlink { .. } | Request::Rmdir { .. } => Body::Parent {
            preparent: Iatt::default(),
            postparent: Iatt::default(),
        },
        Request::Rename { .. } => Body::Rename {
            buf: iatt(inp),
            preoldparent: Iatt::default(),
            postoldparent: Iatt::default(),
            prenewparent: Iatt::default(),
            postnewparent: Iatt::default(),
        },
        Request::Writev { .. } | Request::Setattr { .. } | Request::Fsync { .. } => Body::Change {
            pre: Iatt::default(),
            post: iatt(inp),
        },
        Request::Readv { .. } => {
            let data = put(e, stack, b"data");
            return Reply::ok(
                4,
                Body::Read {
                    data,
                    stbuf: Iatt::default(),
                },
            );
        }
        _ => Body::Empty,
    };
    if k % 8 == 2 {
        // Misshapen for most fops: refused by the engine, the frame stays parked.
        return Reply::ok(0, Body::Attr { buf: iatt(inp) });
    }
    Reply::ok(0, body)
}

struct Parked {
    frame: FrameRef,
    stack: StackRef,
    req: Request,
}

/// Takes every output and reply, checking each reply.
fn drain<'a>(e: &mut Eng<'a, '_>, free: &mut Vec<&'a mut [u8]>, parked: &mut Vec<Parked>) {
    while let Some(o) = e.poll_output() {
        if let Output::Io {
            frame, stack, req, ..
        } = o
        {
            parked.push(Parked { frame, stack, req });
        }
    }
    while let Some(c) = e.poll_reply() {
        assert!(c.reply.fits(c.fop), "{:?} for {}", c.reply, c.fop);
        assert!(c.reply.op_ret >= 0 || c.reply.op_errno > 0, "{:?}", c.reply);
        free.push(c.buf);
    }
}

/// The whole run on `data`; invariants panic.
pub fn check(data: &[u8]) {
    let mut inp = Input(data);
    let (src, n) = volfile(&mut inp);
    let Ok(vf) = Volfile::<'_, 16, 48, 16>::parse(src.as_bytes()) else {
        panic!("generated volfile refused:\n{src}")
    };
    let Ok(mut g) = Graph::build(&vf, BUILTIN) else {
        panic!("graph refused:\n{src}")
    };
    if g.init(&mut AnyDirectory).is_err() {
        return;
    }
    let names: Vec<String> = (0..g.len()).map(|i| g.name(i).to_string()).collect();
    let dht = names.iter().position(|x| x == "dht").unwrap_or(0);
    let children: Vec<usize> = g.children(dht).collect();
    assert_eq!(children.len(), n);
    let topo = Topology::<16, 16>::from_graph(&g);
    let mut arenas: Vec<Box<Arena>> = (0..n).map(|_| Box::new(Arena::new())).collect();
    let mut it = arenas.iter_mut();
    let Ok(mut table) = Builtin::table::<16, 16, 48, 16>(&g, 0, &mut |_, l, now| {
        it.next().map(|a| RamFs::new(&mut **a, l, now))
    }) else {
        panic!("table refused:\n{src}")
    };
    let mut store = vec![[0u8; 2048]; 3];
    let mut free: Vec<&mut [u8]> = store.iter_mut().map(|b| &mut b[..]).collect();
    let mut parked: Vec<Parked> = Vec::new();
    let mut now = 0u64;
    {
        let Ok(mut e) = Eng::new(topo.view(), &mut table) else {
            panic!("engine refused:\n{src}")
        };
        while !inp.0.is_empty() {
            now += u64::from(inp.u8().unwrap_or(0));
            match inp.u8().unwrap_or(0) % 8 {
                0..=3 => {
                    let Some(buf) = free.pop() else { continue };
                    let mut w = RequestBytes::new(buf);
                    let req = request(&mut w, &mut inp);
                    let (buf, len) = w.finish();
                    if let Err(r) = e.handle_request(now, Creds::default(), req, buf, len) {
                        free.push(r.buf);
                    }
                }
                4..=6 if !parked.is_empty() => {
                    let i = usize::from(inp.u8().unwrap_or(0)) % parked.len();
                    let (frame, stack, req) = (parked[i].frame, parked[i].stack, parked[i].req);
                    let r = completion(&mut e, stack, &req, &mut inp, &names);
                    if e.handle_completion(now, frame, r).is_ok() {
                        parked.swap_remove(i);
                    }
                }
                7 => {
                    // A child goes down or comes back.
                    let k = usize::from(inp.u8().unwrap_or(0));
                    let c = children[k % n];
                    let ev = if k & 0x80 != 0 {
                        Event::ChildDown
                    } else {
                        Event::ChildUp
                    };
                    e.notify(dht, c, ev);
                }
                _ => {}
            }
            drain(&mut e, &mut free, &mut parked);
            assert_eq!(e.stats().faults, 0, "{:?}\n{src}", e.stats());
        }
        // Answer everything still parked, then every frame made must have unwound.
        while let Some(p) = parked.pop() {
            e.handle_completion(now, p.frame, Reply::error(errno::EIO))
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
    }
    assert_eq!(free.len(), 3);
    if let Some(Builtin::Distribute(d)) = table.get(dht) {
        assert_eq!(d.in_flight(), 0, "{src}");
    }
}
