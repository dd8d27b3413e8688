//! cluster/distribute over storage/ram bricks (translators.md §5.3): files land on the
//! subvolume their name hashes to in the parent's layout, directories exist everywhere with
//! glusterfs's layout xattrs, listings merge the bricks and hide linkto files, rename leaves
//! data in place behind a linkto file, unlink and rmdir clean every brick, a down subvolume
//! is skipped or reported; plus the placement vectors of `layout_of`/`hashed_subvol`.
//!
//! Each brick is also read on its own (a one-volume engine over the same storage/ram
//! translator), to see what distribute left there.

// Test tables are not size-tuned.
#![allow(clippy::large_enum_variant)]

use keelson_core::xlator::args::{errno, Body, Fd, Loc, Reply, Request, RequestBytes, Span, Xdata};
use keelson_core::xlator::builtin::Builtin;
use keelson_core::xlator::dht_hash::dm_hash;
use keelson_core::xlator::dirent::Dirents;
use keelson_core::xlator::distribute::layout::{self, Assign, Range};
use keelson_core::xlator::distribute::{hashed_subvol, layout_of, Distribute};
use keelson_core::xlator::engine::{Engine, Topology};
use keelson_core::xlator::frame::Creds;
use keelson_core::xlator::graph::AnyDirectory;
use keelson_core::xlator::iatt::{Gfid, IaType, Iatt};
use keelson_core::xlator::ram::{RamArena, RamFs};
use keelson_core::xlator::types::BUILTIN;
use keelson_core::xlator::{Graph, Volfile};

type Arena = RamArena<160, 200, 64, 200>;
type Vf = Volfile<'static, 24, 64, 48>;
type Topo = Topology<24, 48>;
type Eng<'a> = Engine<'a, Builtin<'static>, 64, 2, 64>;

const BUF: usize = 16384;

/// Three bricks listed out of name order: position 0 is `c-2`, 1 is `c-0`, 2 is `c-1`.
const VOL: &str = "volume c-0\n type storage/ram\n option size-limit 0\nend-volume\n\
    volume c-1\n type storage/ram\n option size-limit 0\nend-volume\n\
    volume c-2\n type storage/ram\n option size-limit 0\nend-volume\n\
    volume dht\n type cluster/distribute\n subvolumes c-2 c-0 c-1\nend-volume\n";

/// The brick (by name) a name lands on: the sorted position `layout_of` picks.
fn brick_for(dir: &str, name: &str) -> String {
    let k = hashed_subvol(&layout_of(dir.as_bytes(), 3), name.as_bytes()).unwrap();
    format!("c-{k}")
}

/// A finished request with its buffer copied out.
#[derive(Debug)]
struct Done {
    reply: Reply,
    buf: Vec<u8>,
}

impl Done {
    fn bytes(&self, s: Span) -> &[u8] {
        s.get(&self.buf).unwrap()
    }
    fn ok(&self) -> &Self {
        assert!(self.reply.op_ret >= 0, "{:?}", self.reply);
        self
    }
    fn errno(&self) -> i32 {
        assert!(self.reply.op_ret < 0, "{:?}", self.reply);
        self.reply.op_errno
    }
    fn gfid(&self) -> Gfid {
        match self.reply.body {
            Body::Entry { inode, .. } | Body::Lookup { inode, .. } => inode,
            b => panic!("no entry in {b:?}"),
        }
    }
    fn attr(&self) -> Iatt {
        match self.reply.body {
            Body::Entry { buf, .. } | Body::Lookup { buf, .. } | Body::Attr { buf } => buf,
            b => panic!("no attributes in {b:?}"),
        }
    }
}

/// The graph, its bricks and the translator table, for the whole test.
struct Rig {
    topo: Topo,
    /// A one-volume storage/ram graph, to run one brick alone.
    one: Topo,
    table: Vec<Builtin<'static>>,
    names: Vec<String>,
    buf: Vec<u8>,
    now: u64,
    next_gfid: u8,
}

impl Rig {
    fn new(src: &str) -> Rig {
        let g = Self::graph(src);
        let one = Self::graph("volume b\n type storage/ram\n option size-limit 0\nend-volume\n");
        let table = Builtin::table::<24, 24, 64, 48>(g, 0, &mut |_, limit, now| {
            Some(RamFs::new(Box::leak(Box::new(Arena::new())), limit, now))
        })
        .unwrap()
        .into_iter()
        .collect();
        Rig {
            topo: Topo::from_graph(g),
            one: Topo::from_graph(one),
            table,
            names: (0..g.len()).map(|i| g.name(i).to_string()).collect(),
            buf: vec![0; BUF],
            now: 1_764_639_000_000_000_000,
            next_gfid: 0,
        }
    }

    fn graph(src: &str) -> &'static Graph<'static, 'static, 24, 64, 48> {
        let text: &'static str = Box::leak(src.to_string().into_boxed_str());
        let vf: &'static Vf = Box::leak(Box::new(Vf::parse(text.as_bytes()).unwrap()));
        let mut g = Graph::build(vf, BUILTIN).unwrap();
        g.init(&mut AnyDirectory).unwrap();
        Box::leak(Box::new(g))
    }

    fn node(&self, name: &str) -> usize {
        self.names.iter().position(|n| n == name).unwrap()
    }

    fn dht(&mut self) -> &mut Distribute {
        let i = self.topo.view().top();
        match &mut self.table[i] {
            Builtin::Distribute(d) => d,
            _ => panic!("the top is not distribute"),
        }
    }

    fn gfid(&mut self) -> Gfid {
        self.next_gfid += 1;
        Gfid([self.next_gfid; 16])
    }

    /// One request through the whole graph; every frame must unwind and none misbehave.
    fn call(&mut self, build: impl FnOnce(&mut RequestBytes<'_>) -> Request) -> Done {
        let mut e: Eng<'_> = Engine::new(self.topo.view(), &mut self.table).unwrap();
        run(&mut e, &mut self.buf, &mut self.now, build)
    }

    /// One request to brick `name` alone.
    fn on(&mut self, name: &str, build: impl FnOnce(&mut RequestBytes<'_>) -> Request) -> Done {
        let i = self.node(name);
        let mut e: Eng<'_> = Engine::new(self.one.view(), &mut self.table[i..=i]).unwrap();
        run(&mut e, &mut self.buf, &mut self.now, build)
    }

    fn create(&mut self, p: &str) -> Done {
        let g = self.gfid();
        let fd = Fd(u64::from(g.0[0]) + 1000);
        let d = self.call(|w| Request::Create {
            loc: w.path(p.as_bytes()).unwrap(),
            flags: 0o101,
            mode: 0o644,
            umask: 0,
            fd,
            xdata: Xdata { gfid_req: Some(g) },
        });
        if d.reply.op_ret >= 0 {
            self.call(|_| Request::Release { fd }).ok();
        }
        d
    }

    fn mkdir(&mut self, p: &str) -> Done {
        let g = self.gfid();
        self.call(|w| Request::Mkdir {
            loc: w.path(p.as_bytes()).unwrap(),
            mode: 0o755,
            umask: 0,
            xdata: Xdata { gfid_req: Some(g) },
        })
    }

    fn lookup(&mut self, p: &str) -> Done {
        self.call(|w| Request::Lookup {
            loc: w.path(p.as_bytes()).unwrap(),
            xdata: Xdata::default(),
        })
    }

    /// Which bricks hold `p`, and whether each is a linkto file.
    fn holders(&mut self, p: &str) -> Vec<(String, bool)> {
        let mut out = Vec::new();
        for b in ["c-0", "c-1", "c-2"] {
            let d = self.on(b, |w| Request::Lookup {
                loc: w.path(p.as_bytes()).unwrap(),
                xdata: Xdata::default(),
            });
            if d.reply.op_ret == 0 {
                let a = d.attr();
                out.push((b.to_string(), a.ty == IaType::Reg && a.prot == 0o1000));
            }
        }
        out
    }

    fn xattr_on(&mut self, brick: &str, p: &str, name: &str) -> Option<Vec<u8>> {
        let d = self.on(brick, |w| Request::Getxattr {
            loc: w.path(p.as_bytes()).unwrap(),
            name: w.put(name.as_bytes()).unwrap(),
        });
        match d.reply.body {
            Body::Xattr { value } if d.reply.op_ret >= 0 => Some(d.bytes(value).to_vec()),
            _ => None,
        }
    }

    /// Every name a listing of `p` through distribute gives, read in small batches.
    fn list(&mut self, p: &str, plus: bool) -> Vec<String> {
        let fd = Fd(77);
        self.call(|w| Request::Opendir {
            loc: w.path(p.as_bytes()).unwrap(),
            fd,
        })
        .ok();
        let mut names = Vec::new();
        let mut offset = 0;
        loop {
            let d = self.call(|_| {
                if plus {
                    Request::Readdirp {
                        fd,
                        size: 300,
                        offset,
                    }
                } else {
                    Request::Readdir {
                        fd,
                        size: 120,
                        offset,
                    }
                }
            });
            d.ok();
            let Body::Entries { data } = d.reply.body else {
                panic!("{d:?}")
            };
            let got: Vec<_> = Dirents::new(d.bytes(data), plus).collect();
            assert_eq!(got.len(), d.reply.op_ret as usize);
            if got.is_empty() {
                break;
            }
            for e in &got {
                assert_eq!(e.stat.is_some(), plus);
                names.push(String::from_utf8(e.name.to_vec()).unwrap());
            }
            offset = got.last().unwrap().d_off;
        }
        self.call(|_| Request::Releasedir { fd }).ok();
        names.sort();
        names
    }
}

fn run<'a>(
    e: &mut Eng<'a>,
    buf: &'a mut [u8],
    now: &mut u64,
    build: impl FnOnce(&mut RequestBytes<'_>) -> Request,
) -> Done {
    *now += 1_000;
    let mut w = RequestBytes::new(buf);
    let req = build(&mut w);
    let (buf, len) = w.finish();
    e.handle_request(*now, Creds::default(), req, buf, len)
        .map_err(|r| r.error)
        .expect("submitted");
    let c = e.poll_reply().expect("a synchronous graph replies at once");
    assert!(c.reply.fits(c.fop), "{:?} for {}", c.reply, c.fop);
    let d = Done {
        reply: c.reply,
        buf: c.buf.to_vec(),
    };
    let s = e.stats();
    assert_eq!(s.frames, s.unwinds, "{s:?}");
    assert_eq!((s.live_frames, s.faults, s.abandoned), (0, 0, 0), "{s:?}");
    assert_eq!(e.live_stacks(), 0);
    d
}

fn layout_bytes(dir: &str, commit: u32, sorted: usize) -> Vec<u8> {
    let l = layout_of(dir.as_bytes(), 3);
    let r = l.range(sorted).unwrap();
    layout::encode(commit, 0, r).to_vec()
}

#[test]
fn placement_vectors_match_glusterfs() {
    // dht_layout.py (checked against real bricks, translators.md §5.3) and glusterfs 10.3's
    // own placement of these names in /dir1 over three bricks.
    let l = layout_of(b"/dir1", 3);
    let third = 0x5555_5555;
    assert_eq!(
        (0..3).map(|k| l.range(k).unwrap()).collect::<Vec<_>>(),
        [
            Range {
                start: 0,
                stop: third - 1
            },
            Range {
                start: third,
                stop: 2 * third - 1
            },
            Range {
                start: 2 * third,
                stop: u32::MAX
            }
        ]
    );
    let want = [
        ("file1", 1),
        ("hello.txt", 2),
        ("file.txt", 2),
        ("abc", 2),
        ("a", 0),
        ("x1", 0),
        ("x2", 0),
        ("x3", 1),
        ("x4", 2),
        ("x5", 0),
        ("x6", 2),
        // rsync's temporary name lands with the final one.
        (".file.txt.Ab12Cd", 2),
    ];
    for (name, k) in want {
        assert_eq!(hashed_subvol(&l, name.as_bytes()), Some(k), "{name}");
    }
    let starts = |p: &str, n: usize| {
        let l = layout_of(p.as_bytes(), n);
        (0..n).find(|&k| l.range(k).unwrap().start == 0).unwrap()
    };
    assert_eq!(starts("/", 3), 1);
    assert_eq!(starts("/a/b/c", 3), 1);
    assert_eq!(starts("/café", 3), 2);
    assert_eq!(starts("/x", 4), 1);
    assert_eq!(
        layout_of(b"/", 4).range(1),
        Some(Range {
            start: 0x3fff_ffff,
            stop: 0x7fff_fffd
        })
    );
    // The start is the path's hash modulo the count.
    assert_eq!(dm_hash(b"/a/b/c") % 3, 1);
    // Weighted by equal bricks, as glusterfs's statfs-based weights give on one file system.
    let order = [0u8, 1, 2];
    let w = [258_020u32; 3];
    let weighted = layout::assign(
        b"/dir1",
        &Assign {
            order: &order,
            usable: 0b111,
            weights: Some(&w),
            spread: 0,
            commit: 0,
        },
    );
    assert_eq!(weighted, l);
}

#[test]
fn files_land_where_their_names_hash_and_the_root_layout_is_healed() {
    let mut r = Rig::new(VOL);
    // The first look at the root finds no layout and writes one, commit hash 1 (healed).
    let root = r.call(|w| Request::Stat {
        loc: Loc {
            gfid: Gfid::ROOT,
            path: w.put(b"/").unwrap(),
            ..Loc::default()
        },
    });
    assert_eq!(root.ok().attr().ty, IaType::Dir);
    assert_eq!((root.attr().size, root.attr().blocks), (4096, 8));
    for k in 0..3 {
        let b = format!("c-{k}");
        assert_eq!(
            r.xattr_on(&b, "/", "trusted.glusterfs.dht"),
            Some(layout_bytes("/", 1, k)),
            "{b}"
        );
    }
    let names: Vec<String> = (0..60).map(|i| format!("file-{i}.dat")).collect();
    for n in &names {
        r.create(&format!("/{n}")).ok();
    }
    for n in &names {
        let p = format!("/{n}");
        assert_eq!(r.holders(&p), [(brick_for("/", n), false)], "{p}");
        let d = r.lookup(&p);
        assert_eq!(d.ok().attr().ty, IaType::Reg);
    }
    // All three bricks got some.
    for k in 0..3 {
        let b = format!("c-{k}");
        assert!(names.iter().any(|n| brick_for("/", n) == b));
    }
    assert_eq!(r.lookup("/missing").errno(), errno::ENOENT);
    // Listings give every name once, in batches, with and without attributes.
    let mut want: Vec<String> = names.clone();
    want.extend([".".into(), "..".into()]);
    want.sort();
    assert_eq!(r.list("/", true), want);
    assert_eq!(r.list("/", false), want);
    // Statfs adds the bricks up.
    let one = r.on("c-0", |w| Request::Statfs {
        loc: w.path(b"/").unwrap(),
    });
    let all = r.call(|w| Request::Statfs {
        loc: w.path(b"/").unwrap(),
    });
    let (Body::Statfs { buf: a }, Body::Statfs { buf: b }) = (one.reply.body, all.reply.body)
    else {
        panic!()
    };
    assert_eq!(b.blocks, 3 * a.blocks);
}

#[test]
fn mkdir_makes_the_directory_everywhere_with_its_ranges() {
    let mut r = Rig::new(VOL);
    let d = r.mkdir("/dir1");
    let g = d.ok().gfid();
    assert_eq!(d.attr().ty, IaType::Dir);
    let hashed = brick_for("/", "dir1");
    for k in 0..3 {
        let b = format!("c-{k}");
        let st = r.on(&b, |w| Request::Lookup {
            loc: w.path(b"/dir1").unwrap(),
            xdata: Xdata::default(),
        });
        assert_eq!(st.ok().gfid(), g, "{b}: one gfid everywhere");
        assert_eq!(
            r.xattr_on(&b, "/dir1", "trusted.glusterfs.dht"),
            Some(layout_bytes("/dir1", 0, k)),
            "{b}"
        );
        let mds = r.xattr_on(&b, "/dir1", "trusted.glusterfs.dht.mds");
        assert_eq!(
            mds.is_some(),
            b == hashed,
            "{b}: the mds marker on the hashed brick"
        );
    }
    // Distribute keeps it by position (c-2, c-0, c-1), layout_of by name order.
    let mine = r.dht().layout(&g).unwrap();
    let want = layout_of(b"/dir1", 3);
    for (pos, sorted) in [(0, 2), (1, 0), (2, 1)] {
        assert_eq!(mine.range(pos), want.range(sorted));
    }
    // Nested directories and files in them follow their own layouts.
    r.mkdir("/dir1/sub").ok();
    r.mkdir("/dir1/sub/deeper").ok();
    for k in 0..3 {
        let b = format!("c-{k}");
        assert_eq!(
            r.xattr_on(&b, "/dir1/sub/deeper", "trusted.glusterfs.dht"),
            Some(layout_bytes("/dir1/sub/deeper", 0, k))
        );
    }
    for n in ["file1", "hello.txt", "a", "b", "c", "x1", "x2", "x3"] {
        for dir in ["/dir1", "/dir1/sub/deeper"] {
            let p = format!("{dir}/{n}");
            r.create(&p).ok();
            assert_eq!(r.holders(&p), [(brick_for(dir, n), false)], "{p}");
        }
    }
    // A directory is listed once (from the first brick), files once each.
    assert_eq!(
        r.list("/dir1", true),
        [
            ".",
            "..",
            "a",
            "b",
            "c",
            "file1",
            "hello.txt",
            "sub",
            "x1",
            "x2",
            "x3"
        ]
    );
    assert_eq!(r.mkdir("/dir1").errno(), errno::EEXIST);
    // A mkdir without gfid-req could not give every brick the same gfid: refused.
    let d = r.call(|w| Request::Mkdir {
        loc: w.path(b"/nogfid").unwrap(),
        mode: 0o755,
        umask: 0,
        xdata: Xdata::default(),
    });
    assert_eq!(d.errno(), errno::EPERM);
    // A directory stat merges the bricks.
    let st = r.call(|w| Request::Stat {
        loc: Loc {
            gfid: g,
            path: w.put(b"/dir1").unwrap(),
            ..Loc::default()
        },
    });
    assert_eq!((st.ok().attr().ty, st.attr().size), (IaType::Dir, 4096));
}

/// A name in `dir` that hashes to a brick other than `not`.
fn name_elsewhere(dir: &str, not: &str, prefix: &str) -> String {
    (0..)
        .map(|i| format!("{prefix}{i}"))
        .find(|n| brick_for(dir, n) != not)
        .unwrap()
}

#[test]
fn rename_leaves_the_data_behind_a_linkto_file() {
    let mut r = Rig::new(VOL);
    r.mkdir("/d").ok();
    let g = r.create("/d/src").ok().gfid();
    r.call(|w| Request::Setxattr {
        loc: w.path(b"/d/src").unwrap(),
        name: w.put(b"user.k").unwrap(),
        value: w.put(b"v").unwrap(),
        flags: 0,
    })
    .ok();
    let data = brick_for("/d", "src");
    let new = name_elsewhere("/d", &data, "moved-");
    let hashed = brick_for("/d", &new);
    r.call(|w| Request::Rename {
        oldloc: w.path(b"/d/src").unwrap(),
        newloc: w.path(format!("/d/{new}").as_bytes()).unwrap(),
    })
    .ok();
    let mut holders = r.holders(&format!("/d/{new}"));
    holders.sort();
    let mut want = vec![(data.clone(), false), (hashed.clone(), true)];
    want.sort();
    assert_eq!(holders, want);
    assert!(r.holders("/d/src").is_empty());
    let linkto = r.xattr_on(
        &hashed,
        &format!("/d/{new}"),
        "trusted.glusterfs.dht.linkto",
    );
    assert_eq!(linkto, Some(format!("{data}\0").into_bytes()));
    // The linkto file carries the data's gfid; lookups follow it to the data.
    let d = r.lookup(&format!("/d/{new}"));
    assert_eq!((d.ok().gfid(), d.attr().prot), (g, 0o644));
    let d = r.call(|w| Request::Getxattr {
        loc: w.path(format!("/d/{new}").as_bytes()).unwrap(),
        name: w.put(b"user.k").unwrap(),
    });
    let Body::Xattr { value } = d.ok().reply.body else {
        panic!()
    };
    assert_eq!(d.bytes(value), b"v");
    // Listings hide the linkto file.
    assert_eq!(r.list("/d", true), [".", "..", new.as_str()]);
    // Renamed again, to a name hashing to the data's brick: the linkto goes.
    let home = (0..)
        .map(|i| format!("home-{i}"))
        .find(|n| brick_for("/d", n) == data)
        .unwrap();
    r.call(|w| Request::Rename {
        oldloc: w.path(format!("/d/{new}").as_bytes()).unwrap(),
        newloc: w.path(format!("/d/{home}").as_bytes()).unwrap(),
    })
    .ok();
    assert!(r.holders(&format!("/d/{new}")).is_empty());
    assert_eq!(r.holders(&format!("/d/{home}")), [(data.clone(), false)]);
    // Over an existing file elsewhere: that one's data goes, ours stays.
    let other = name_elsewhere("/d", &data, "other-");
    r.create(&format!("/d/{other}")).ok();
    r.call(|w| Request::Rename {
        oldloc: w.path(format!("/d/{home}").as_bytes()).unwrap(),
        newloc: w.path(format!("/d/{other}").as_bytes()).unwrap(),
    })
    .ok();
    let mut holders = r.holders(&format!("/d/{other}"));
    holders.sort();
    let mut want = vec![(data.clone(), false), (brick_for("/d", &other), true)];
    want.sort();
    assert_eq!(holders, want);
    assert_eq!(r.lookup(&format!("/d/{other}")).gfid(), g);
    // Unlink removes the data and its linkto file.
    r.call(|w| Request::Unlink {
        loc: w.path(format!("/d/{other}").as_bytes()).unwrap(),
        flags: 0,
    })
    .ok();
    assert!(r.holders(&format!("/d/{other}")).is_empty());
    assert_eq!(
        r.call(|w| Request::Unlink {
            loc: w.path(b"/d/nothing").unwrap(),
            flags: 0,
        })
        .errno(),
        errno::ENOENT
    );
    // A hard link whose name hashes elsewhere gets a linkto file too.
    let g2 = r.create("/d/orig").ok().gfid();
    let at = brick_for("/d", "orig");
    let ln = name_elsewhere("/d", &at, "ln-");
    r.call(|w| Request::Link {
        oldloc: Loc {
            gfid: g2,
            path: w.put(b"<gfid:x>").unwrap(),
            ..Loc::default()
        },
        newloc: w.path(format!("/d/{ln}").as_bytes()).unwrap(),
        xdata: Xdata::default(),
    })
    .ok();
    let mut holders = r.holders(&format!("/d/{ln}"));
    holders.sort();
    let mut want = vec![(at.clone(), false), (brick_for("/d", &ln), true)];
    want.sort();
    assert_eq!(holders, want);
    assert_eq!(r.lookup(&format!("/d/{ln}")).gfid(), g2);
}

#[test]
fn rmdir_refuses_until_every_brick_is_empty() {
    let mut r = Rig::new(VOL);
    r.mkdir("/d").ok();
    r.mkdir("/d/e").ok();
    r.create("/d/f").ok();
    assert_eq!(
        r.call(|w| Request::Rmdir {
            loc: w.path(b"/d").unwrap(),
            flags: 0,
        })
        .errno(),
        errno::ENOTEMPTY
    );
    for b in ["c-0", "c-1", "c-2"] {
        r.on(b, |w| Request::Lookup {
            loc: w.path(b"/d").unwrap(),
            xdata: Xdata::default(),
        })
        .ok();
    }
    r.call(|w| Request::Unlink {
        loc: w.path(b"/d/f").unwrap(),
        flags: 0,
    })
    .ok();
    assert_eq!(
        r.call(|w| Request::Rmdir {
            loc: w.path(b"/d").unwrap(),
            flags: 0,
        })
        .errno(),
        errno::ENOTEMPTY
    );
    for p in ["/d/e", "/d"] {
        r.call(|w| Request::Rmdir {
            loc: w.path(p.as_bytes()).unwrap(),
            flags: 0,
        })
        .ok();
    }
    assert!(r.holders("/d").is_empty());
    assert_eq!(r.lookup("/d").errno(), errno::ENOENT);
    // A directory renamed over an empty one, then over a non-empty one.
    r.mkdir("/a").ok();
    r.mkdir("/b").ok();
    r.call(|w| Request::Rename {
        oldloc: w.path(b"/a").unwrap(),
        newloc: w.path(b"/b").unwrap(),
    })
    .ok();
    assert_eq!(r.holders("/b").len(), 3);
    assert!(r.holders("/a").is_empty());
    r.mkdir("/a").ok();
    r.create("/b/x").ok();
    let d = r.call(|w| Request::Rename {
        oldloc: w.path(b"/a").unwrap(),
        newloc: w.path(b"/b").unwrap(),
    });
    assert_eq!(d.errno(), errno::ENOTEMPTY);
    assert_eq!(r.holders("/a").len(), 3);
}

#[test]
fn fds_and_gfids_reach_the_brick_that_holds_the_file() {
    let mut r = Rig::new(VOL);
    let g = r.gfid();
    let d = r.call(|w| Request::Create {
        loc: w.path(b"/f").unwrap(),
        flags: 0o102,
        mode: 0o644,
        umask: 0,
        fd: Fd(5),
        xdata: Xdata { gfid_req: Some(g) },
    });
    d.ok();
    let at = brick_for("/", "f");
    let k = r.dht().cached_subvol(&g).unwrap();
    assert_eq!(r.dht().subvolume_name(k), Some(at.as_bytes()));
    let d = r.call(|w| Request::Writev {
        fd: Fd(5),
        data: w.put(b"hello").unwrap(),
        offset: 0,
        flags: 0,
    });
    assert_eq!(d.ok().reply.op_ret, 5);
    let d = r.call(|_| Request::Readv {
        fd: Fd(5),
        size: 100,
        offset: 0,
        flags: 0,
    });
    let Body::Read { data, .. } = d.ok().reply.body else {
        panic!()
    };
    assert_eq!(d.bytes(data), b"hello");
    r.call(|_| Request::Release { fd: Fd(5) }).ok();
    assert_eq!(r.dht().open_fds(), 0);
    assert_eq!(
        r.call(|_| Request::Fstat { fd: Fd(5) }).errno(),
        errno::EBADF
    );
    // By gfid, through a fresh translator state (forgotten placement): found by asking
    // every brick.
    let fresh = Distribute::from_graph(Rig::graph(VOL), 3).unwrap();
    *r.dht() = fresh;
    let d = r.call(|w| Request::Stat {
        loc: Loc {
            gfid: g,
            path: w.put(b"<gfid:f>").unwrap(),
            ..Loc::default()
        },
    });
    assert_eq!(d.ok().attr().size, 5);
    let d = r.call(|_| Request::Open {
        loc: Loc {
            gfid: g,
            ..Loc::default()
        },
        flags: 0,
        fd: Fd(6),
    });
    d.ok();
    let d = r.call(|_| Request::Fstat { fd: Fd(6) });
    assert_eq!(d.ok().attr().size, 5);
    r.call(|_| Request::Release { fd: Fd(6) }).ok();
    // Setattr by gfid on a directory changes every brick.
    r.mkdir("/dd").ok();
    let dg = r.lookup("/dd").gfid();
    r.call(|w| Request::Setattr {
        loc: Loc {
            gfid: dg,
            path: w.put(b"/dd").unwrap(),
            ..Loc::default()
        },
        stbuf: Iatt {
            prot: 0o700,
            ..Iatt::default()
        },
        valid: 1,
    })
    .ok();
    for b in ["c-0", "c-1", "c-2"] {
        let d = r.on(b, |w| Request::Lookup {
            loc: w.path(b"/dd").unwrap(),
            xdata: Xdata::default(),
        });
        assert_eq!(d.ok().attr().prot, 0o700, "{b}");
    }
}

#[test]
fn a_down_subvolume_is_skipped_or_reported() {
    let mut r = Rig::new(VOL);
    r.mkdir("/d").ok();
    let names: Vec<String> = (0..12).map(|i| format!("n{i}")).collect();
    for n in &names {
        r.create(&format!("/d/{n}")).ok();
    }
    let down = "c-1";
    let node = r.node(down);
    r.dht().set_child_down(node);
    for n in &names {
        let p = format!("/d/{n}");
        let d = r.lookup(&p);
        if brick_for("/d", n) == down {
            assert_eq!(d.errno(), errno::ENOTCONN, "{p} lives on the down brick");
            assert_eq!(
                r.create(&format!("/d/{n}.new")).reply.op_ret < 0,
                brick_for("/d", &format!("{n}.new")) == down
            );
        } else {
            d.ok();
        }
    }
    // The listing leaves the down brick's files out.
    let listed = r.list("/d", true);
    for n in &names {
        assert_eq!(listed.contains(n), brick_for("/d", n) != down, "{n}");
    }
    // A directory made now gets ranges over the two bricks that are up.
    r.mkdir("/late").ok();
    assert_eq!(r.xattr_on(down, "/late", "trusted.glusterfs.dht"), None);
    let mut covered: Vec<Range> = ["c-0", "c-2"]
        .iter()
        .map(|b| {
            let v = r.xattr_on(b, "/late", "trusted.glusterfs.dht").unwrap();
            layout::decode(&v).unwrap().2
        })
        .collect();
    covered.sort_by_key(|r| r.start);
    assert_eq!(covered[0].start, 0);
    assert_eq!(covered[0].stop.wrapping_add(1), covered[1].start);
    assert_eq!(covered[1].stop, u32::MAX);
    r.dht().set_child_up(node);
    for n in &names {
        r.lookup(&format!("/d/{n}")).ok();
    }
}

#[test]
fn small_pools_fail_fops_without_misuse() {
    // Four frames cannot hold a three-brick mkdir: the fop fails, every frame unwinds.
    let mut r = Rig::new(VOL);
    let g = r.gfid();
    let topo = r.topo.clone();
    let mut e: Engine<'_, Builtin<'static>, 4, 1, 16> =
        Engine::new(topo.view(), &mut r.table).unwrap();
    let mut w = RequestBytes::new(&mut r.buf);
    let loc = w.path(b"/d").unwrap();
    let (buf, len) = w.finish();
    e.handle_request(
        1,
        Creds::default(),
        Request::Mkdir {
            loc,
            mode: 0o755,
            umask: 0,
            xdata: Xdata { gfid_req: Some(g) },
        },
        buf,
        len,
    )
    .unwrap();
    let c = e.poll_reply().unwrap();
    assert!(c.reply.fits(c.fop));
    let s = e.stats();
    assert_eq!(
        (s.frames, s.live_frames, s.faults),
        (s.unwinds, 0, 0),
        "{s:?}"
    );
    assert!(s.exhausted > 0);
}

/// Distribute's tables are sized so that it is no larger than write-behind, the largest
/// built-in before it: every translator table entry pays the largest variant.
#[test]
fn distribute_does_not_grow_the_translator_table() {
    use keelson_core::xlator::write_behind::WriteBehind;
    assert!(std::mem::size_of::<Distribute>() <= std::mem::size_of::<WriteBehind>());
    assert!(std::mem::size_of::<keelson_core::xlator::builtin::Local>() <= 256);
}
