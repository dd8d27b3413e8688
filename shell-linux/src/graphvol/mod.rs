//! [`GraphVolume`]: a [`Volume`] that runs a whole GlusterFS translator graph in the core's
//! frame engine (translators.md §3–§5), so a FUSE mount (`keelctl mount`, keelsond's
//! `mounts`) serves any graph the built-in table runs: each FUSE operation becomes one
//! request at the top (`create_frame`), every storage/posix leaf is a [`Brick`] on its
//! `directory` ([`posix`]), `debug/trace` lines go to the log in upstream's format, and
//! `debug/io-stats` counters can be dumped ([`GraphVolume::io_stats`]).
//!
//! - this module: building a graph volume and the fops it winds for each [`Volume`] call;
//! - [`posix`]: the storage/posix leaf, answering the engine's [`Output::Io`] from a brick;
//! - [`owned`]: the engine together with the tables and buffer it borrows.
//!
//! **cluster/replicate.** Each replicate node gets its per-file tables ([`owned::AfrArena`]).
//! A brick whose fop fails in a way that may mean it is gone is checked; found gone, its leaf
//! answers ENOTCONN and CHILD_DOWN goes up the graph to the translators above it
//! ([`Engine::notify`](keelson_core::xlator::engine::Engine::notify)); a down brick is
//! checked again before each request and every second, and CHILD_UP follows when it is back.
//! After each request, and every second, the background work the engine offers (replicate's
//! heals) runs to the end, one stack at a time, before the next request.
//!
//! One request runs at a time (the engine is behind a lock; FUSE's threads take turns), with
//! one preallocated buffer, so the engine path allocates nothing per fop (the brick's own
//! calls still build paths). Large reads and writes are split into [`CHUNK`]-byte fops.
//!
//! Locations carry full paths, as glusterfs's bridge builds them from its inode table: every
//! directory met (looked up, made, listed, renamed) is remembered by gfid with its parent and
//! name ([`paths`]), so an entry in it is `/a/b/NAME` and the directory itself `/a/b`
//! (cluster/distribute hashes those paths to place a new directory's ranges). An object whose
//! path is not known is `<gfid:GFID>` (an entry in it `<gfid:PARENT>/NAME`), `/` is the root.

pub mod owned;
pub mod paths;
pub mod posix;

use std::ffi::{OsStr, OsString};
use std::fmt::Write as _;
use std::io;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use keelson_core::xlator::args::{
    errno, set, Body, BufferFull, Fd, Loc, Reply, Request, RequestBytes, Span, Xdata,
};
use keelson_core::xlator::builtin::Builtin;
use keelson_core::xlator::dirent::Dirents;
use keelson_core::xlator::engine::{Output, Stats, Topology};
use keelson_core::xlator::event::Event;
use keelson_core::xlator::frame::Creds;
use keelson_core::xlator::handle::Gfid;
use keelson_core::xlator::iatt::{IaType, Iatt, Statvfs};
use keelson_core::xlator::options::Value;
use keelson_core::xlator::types::Kind;

use crate::brick::{Brick, DirEntry, SetAttr};
use crate::volfilecmd::CheckedGraph;
use crate::volume::Volume;

use owned::Owned;
use paths::Paths;
use posix::Leaf;

/// Most bytes one readv or writev carries; larger FUSE reads and writes become several fops.
pub const CHUNK: usize = 128 * 1024;

/// The request buffer: a chunk of data, a path and name, write-behind's kept bytes, and room.
const BUF_LEN: usize = CHUNK + 64 * 1024;

/// Most translators in a served graph.
pub const MAX_XLATORS: usize = 256;

/// The stack of the thread that builds the engine.
const BUILD_STACK: usize = 64 << 20;

/// How often down bricks are checked and due heals run without a request.
const TICK: Duration = Duration::from_secs(1);

/// Most background runs one pass makes (each heals one file; a failed one waits its retry).
const BACKGROUND_MAX: usize = 1024;

/// The tracing target of lines translators write (`debug/trace`): `xlator::trace`, with the
/// translator's name in the `xlator` field.
pub const TRACE_TARGET: &str = "xlator::trace";

/// One translator of the graph, as the control commands name it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct XlatorInfo {
    /// The volume name.
    pub name: String,
    /// The type (`debug/io-stats`, ...).
    pub ty: String,
}

struct State {
    owned: Owned,
    /// By node: the posix leaves.
    leaves: Vec<Option<Leaf>>,
    /// A request never finished: the buffer is lost inside the engine, every fop fails.
    broken: bool,
    /// The graph's shape, for child events.
    shape: Shape,
    /// By node: up, as its parents last heard.
    up: Vec<bool>,
}

/// Each node's children and parents, and whether it is an aggregator (up while any child is).
struct Shape {
    children: Vec<Vec<usize>>,
    parents: Vec<Vec<usize>>,
    cluster: Vec<bool>,
}

impl State {
    /// Recomputes every node's state from its leaves (children come before parents in a
    /// volfile) and tells each parent of a node that changed.
    fn propagate(&mut self) {
        for i in 0..self.up.len() {
            let kids = self.shape.children.get(i).map_or(&[][..], |c| &c[..]);
            let now = match self.leaves.get(i).and_then(Option::as_ref) {
                Some(leaf) => !leaf.is_down(),
                None if kids.is_empty() => true,
                None if self.shape.cluster.get(i) == Some(&true) => {
                    kids.iter().any(|&c| self.up.get(c) == Some(&true))
                }
                None => kids.first().is_none_or(|&c| self.up.get(c) == Some(&true)),
            };
            if self.up.get(i) == Some(&now) {
                continue;
            }
            if let Some(u) = self.up.get_mut(i) {
                *u = now;
            }
            let event = if now {
                Event::ChildUp
            } else {
                Event::ChildDown
            };
            for &p in self.shape.parents.get(i).map_or(&[][..], |p| &p[..]) {
                self.owned.engine().notify(p, i, event);
            }
        }
    }

    /// Checks the bricks that are down; true when one came back.
    fn probe(&mut self) -> bool {
        let mut any = false;
        for leaf in self.leaves.iter_mut().flatten().filter(|l| l.is_down()) {
            any |= leaf.check();
        }
        if any {
            tracing::info!("a brick is back: CHILD_UP");
            self.propagate();
        }
        any
    }
}

struct Shared {
    state: Mutex<State>,
    xlators: Vec<XlatorInfo>,
    next_fd: AtomicU64,
    /// Directory paths by gfid (never held while taking `state`).
    paths: Mutex<Paths>,
}

/// A translator graph served as a [`Volume`]; clones share the graph (one serves FUSE, one
/// answers control commands).
#[derive(Clone)]
pub struct GraphVolume {
    shared: Arc<Shared>,
}

/// Why a graph cannot be served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphVolumeError(pub String);

impl std::fmt::Display for GraphVolumeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for GraphVolumeError {}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

fn errno_of(r: &Reply) -> io::Error {
    io::Error::from_raw_os_error(if r.op_errno > 0 {
        r.op_errno
    } else {
        errno::EIO
    })
}

fn shape() -> io::Error {
    io::Error::from_raw_os_error(errno::EIO)
}

fn full(_: BufferFull) -> io::Error {
    io::Error::from_raw_os_error(errno::ENAMETOOLONG)
}

/// A loc for `name` in `parent`, whose path is `dir` when known (see the module doc).
fn entry_loc(
    w: &mut RequestBytes<'_>,
    parent: &Gfid,
    dir: Option<&[u8]>,
    name: &OsStr,
) -> Result<Loc, BufferFull> {
    let start = w.len();
    let path = match dir {
        _ if *parent == Gfid::ROOT => w.put(b"/")?,
        Some(d) => {
            w.put(d)?;
            w.put(b"/")?
        }
        None => {
            w.put(b"<gfid:")?;
            w.put(&parent.canonical())?;
            w.put(b">/")?
        }
    };
    let name = w.put(name.as_bytes())?;
    Ok(Loc {
        path: Span {
            off: start as u32,
            len: path.off + path.len - start as u32 + name.len,
        },
        name,
        gfid: Gfid::NULL,
        pargfid: *parent,
    })
}

/// A loc for the object `gfid`, whose path is `known` when it is a directory met before.
fn object_loc(
    w: &mut RequestBytes<'_>,
    gfid: &Gfid,
    known: Option<&[u8]>,
) -> Result<Loc, BufferFull> {
    let path = if *gfid == Gfid::ROOT {
        w.put(b"/")?
    } else if let Some(p) = known {
        w.put(p)?
    } else {
        let start = w.len() as u32;
        w.put(b"<gfid:")?;
        w.put(&gfid.canonical())?;
        let end = w.put(b">")?;
        Span {
            off: start,
            len: end.off + end.len - start,
        }
    };
    Ok(Loc {
        path,
        name: Span::EMPTY,
        gfid: *gfid,
        pargfid: Gfid::NULL,
    })
}

fn creds(owner: Option<(u32, u32)>) -> Creds {
    let (uid, gid) = owner.unwrap_or((0, 0));
    Creds {
        uid,
        gid,
        ..Creds::default()
    }
}

impl GraphVolume {
    /// A graph volume for `g` (parsed, validated, initialised and activated): a brick for each
    /// storage/posix node on its `directory`, the built-in translators for the rest.
    pub fn new(g: &CheckedGraph<'_, '_>) -> Result<GraphVolume, GraphVolumeError> {
        let err = |m: String| GraphVolumeError(m);
        if g.len() > MAX_XLATORS {
            return Err(err(format!(
                "the graph has {} translators; at most {MAX_XLATORS} can be served",
                g.len()
            )));
        }
        let mut xlators = Vec::new();
        let mut leaves = Vec::new();
        for i in 0..g.len() {
            let ty = g.xlator_type(i);
            let name = g.name(i).to_string();
            xlators.push(XlatorInfo {
                name: name.clone(),
                ty: ty.map_or_else(String::new, |t| t.name.to_string()),
            });
            let leaf = match ty.map(|t| t.kind) {
                Some(Kind::Posix) => {
                    let dir = match g.option(i, "directory") {
                        Some(Value::Text(w)) => {
                            PathBuf::from(OsString::from_vec(w.bytes().collect()))
                        }
                        _ => {
                            return Err(err(format!(
                                "volume {name} (storage/posix) has no directory"
                            )))
                        }
                    };
                    let brick = Brick::open(&dir)
                        .map_err(|e| err(format!("volume {name}: {}: {e}", dir.display())))?;
                    Some(Leaf::new(brick))
                }
                Some(Kind::Ram) => {
                    return Err(err(format!(
                        "volume {name}: storage/ram cannot be mounted (it lives in the \
                         engine's memory only)"
                    )))
                }
                _ => None,
            };
            leaves.push(leaf);
        }
        // The table and the engine are built by value (fixed arrays, a few MiB in a debug
        // build before they reach the heap): on a thread whose stack has room for them.
        let kinds: Vec<Option<Kind>> = (0..g.len())
            .map(|i| g.xlator_type(i).map(|t| t.kind))
            .collect();
        let afr_nodes = kinds
            .iter()
            .filter(|k| **k == Some(Kind::Replicate))
            .count();
        let shape = Shape {
            children: (0..g.len()).map(|i| g.children(i).collect()).collect(),
            parents: (0..g.len()).map(|i| g.parents(i).collect()).collect(),
            cluster: kinds
                .iter()
                .map(|k| matches!(k, Some(Kind::Replicate | Kind::Distribute)))
                .collect(),
        };
        let build = || -> Result<Owned, GraphVolumeError> {
            Owned::new(Topology::from_graph(g), afr_nodes, BUF_LEN, |lend| {
                let table = Builtin::table_with::<MAX_XLATORS, _, _, _>(
                    g,
                    now(),
                    &mut |_, _, _| None,
                    &mut |_| lend(),
                )
                .map_err(|e| err(e.to_string()))?;
                Ok::<_, GraphVolumeError>(table.into_iter().collect())
            })
            .map_err(|e| match e {
                owned::OwnedError::Table(e) => e,
                owned::OwnedError::Engine(e) => err(e.to_string()),
            })
        };
        let owned = std::thread::scope(|s| {
            std::thread::Builder::new()
                .name("graph-build".into())
                .stack_size(BUILD_STACK)
                .spawn_scoped(s, build)
                .map_err(|e| err(format!("cannot start a thread: {e}")))?
                .join()
                .unwrap_or_else(|_| Err(err("building the graph panicked".into())))
        })?;
        let n = leaves.len();
        let gv = GraphVolume {
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    owned,
                    leaves,
                    broken: false,
                    shape,
                    up: vec![true; n],
                }),
                xlators,
                next_fd: AtomicU64::new(1),
                paths: Mutex::new(Paths::default()),
            }),
        };
        if afr_nodes > 0 {
            let weak = Arc::downgrade(&gv.shared);
            std::thread::Builder::new()
                .name("graph-heal".into())
                .spawn(move || tick(weak))
                .map_err(|e| err(format!("cannot start the heal thread: {e}")))?;
        }
        Ok(gv)
    }

    /// Checks down bricks and runs the background work that is due (replicate's heals).
    fn background(&self, st: &mut State) {
        st.probe();
        for _ in 0..BACKGROUND_MAX {
            if st.broken {
                return;
            }
            let t = now();
            let Some(bg) = st.owned.engine().next_background(t) else {
                return;
            };
            let Some(buf) = st.owned.take_buf() else {
                return;
            };
            if let Err(r) = st.owned.engine().handle_background(t, bg, buf) {
                st.owned.put_buf(r.buf);
                return;
            }
            self.drain(st, Creds::default());
            let Some(c) = st.owned.engine().poll_reply() else {
                st.broken = true;
                tracing::error!("a background heal left no reply; every fop fails from now on");
                return;
            };
            let name = self.shared.xlators.get(bg.xl).map_or("?", |x| &x.name);
            if c.reply.op_ret < 0 {
                tracing::info!(xlator = name, "heal deferred: errno {}", c.reply.op_errno);
            } else {
                tracing::info!(xlator = name, "healed a file");
            }
            st.owned.put_buf(c.buf);
        }
    }

    /// Files with a heal pending, over every cluster/replicate translator.
    pub fn pending_heals(&self) -> usize {
        let st = self.lock();
        st.owned
            .engine_ref()
            .translators()
            .iter()
            .map(|b| match b {
                Builtin::Replicate(r) => r.pending_heals(),
                _ => 0,
            })
            .sum()
    }

    /// The graph's translators, by node (file order).
    pub fn xlators(&self) -> &[XlatorInfo] {
        &self.shared.xlators
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.shared.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The engine's counters (frames made and unwound, faults, dropped trace lines).
    pub fn engine_stats(&self) -> Stats {
        self.lock().owned.engine_ref().stats()
    }

    /// Fds open in the posix leaves (each open or create is released by its release).
    pub fn open_fds(&self) -> usize {
        self.lock()
            .leaves
            .iter()
            .flatten()
            .map(Leaf::open_fds)
            .sum()
    }

    /// The io-stats dump (§5.2, io-stats's text layout) of the `debug/io-stats` translator
    /// named `xlator`, or of every one (each after a `NAME:` line) when `None`.
    pub fn io_stats(&self, xlator: Option<&str>) -> Result<String, String> {
        let st = self.lock();
        let table = st.owned.engine_ref().translators();
        let now = now();
        let mut out = String::new();
        let mut found = false;
        for (i, x) in self.shared.xlators.iter().enumerate() {
            let Some(Builtin::IoStats(s)) = table.get(i) else {
                continue;
            };
            match xlator {
                Some(n) if n == x.name => {
                    let _ = write!(out, "{}", s.dump(now));
                    return Ok(out);
                }
                Some(_) => {}
                None => {
                    found = true;
                    let _ = write!(out, "{}:\n{}", x.name, s.dump(now));
                }
            }
        }
        match xlator {
            Some(n) => Err(match self.shared.xlators.iter().find(|x| x.name == n) {
                Some(x) => format!("volume {n} is {}, not debug/io-stats", x.ty),
                None => format!("no volume {n} in the graph"),
            }),
            None if !found => Err("the graph has no debug/io-stats translator".into()),
            None => Ok(out),
        }
    }

    fn paths(&self) -> MutexGuard<'_, Paths> {
        self.shared.paths.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The path of directory `gfid`, if known.
    fn path_of(&self, gfid: &Gfid) -> Option<Vec<u8>> {
        self.paths().path(gfid)
    }

    /// Notes what an entry turned out to be: a directory is remembered under its parent.
    fn met(&self, parent: &Gfid, name: &OsStr, a: &Iatt) {
        if a.ty == IaType::Dir {
            self.paths().insert(a.gfid, parent, name);
        }
    }

    fn fd(&self) -> Fd {
        Fd(self.shared.next_fd.fetch_add(1, Ordering::Relaxed))
    }

    /// Runs one request: `build` writes its bytes and returns it, `done` reads the reply (its
    /// spans point into the buffer) once the top has unwound.
    fn call<R>(
        &self,
        creds: Creds,
        build: impl FnOnce(&mut RequestBytes<'_>) -> Result<Request, BufferFull>,
        done: impl FnOnce(&Reply, &[u8]) -> io::Result<R>,
    ) -> io::Result<R> {
        let mut guard = self.lock();
        let st = &mut *guard;
        if st.broken {
            return Err(io::Error::other(
                "the translator graph stopped answering; remount",
            ));
        }
        if st.leaves.iter().flatten().any(Leaf::is_down) {
            st.probe();
        }
        let Some(buf) = st.owned.take_buf() else {
            st.broken = true;
            return Err(io::Error::from_raw_os_error(errno::EIO));
        };
        let mut w = RequestBytes::new(buf);
        let req = build(&mut w);
        let (buf, len) = w.finish();
        let req = match req {
            Ok(r) => r,
            Err(e) => {
                st.owned.put_buf(buf);
                return Err(full(e));
            }
        };
        let t = now();
        if let Err(r) = st.owned.engine().handle_request(t, creds, req, buf, len) {
            st.owned.put_buf(r.buf);
            return Err(io::Error::from_raw_os_error(r.error.errno()));
        }
        self.drain(st, creds);
        let Some(c) = st.owned.engine().poll_reply() else {
            // Every leaf answers at once, so once the outputs are drained the top has
            // unwound, unless a translator dropped the request. Its buffer stays in the
            // engine: nothing more can run.
            st.broken = true;
            tracing::error!(
                "the translator graph left a {} without a reply; every fop fails from now on",
                req.fop()
            );
            return Err(io::Error::from_raw_os_error(errno::EIO));
        };
        let r = if c.reply.fits(c.fop) {
            done(&c.reply, c.buf)
        } else {
            Err(shape())
        };
        st.owned.put_buf(c.buf);
        self.background(st);
        r
    }

    /// Serves the engine's outputs until there are none: leaf calls answered by their
    /// bricks (which may queue more), trace lines logged.
    fn drain(&self, st: &mut State, creds: Creds) {
        while let Some(o) = st.owned.engine().poll_output() {
            match o {
                Output::Trace { xl, line } => {
                    let name = self.shared.xlators.get(xl).map_or("?", |x| &x.name);
                    tracing::info!(target: TRACE_TARGET, xlator = name, "{line}");
                }
                Output::Io {
                    frame,
                    stack,
                    xl,
                    req,
                } => {
                    let eng = st.owned.engine();
                    let req_len = eng.request_len(stack).unwrap_or(0);
                    let mut gone = false;
                    let reply = match (
                        st.leaves.get_mut(xl).and_then(Option::as_mut),
                        eng.buffer(stack),
                    ) {
                        (Some(leaf), Some(buf)) => {
                            let r = leaf.serve(req, buf, req_len, creds);
                            if r.op_ret < 0 && Leaf::may_be_gone(r.op_errno) && !leaf.is_down() {
                                gone = leaf.check();
                            }
                            r
                        }
                        _ => Reply::error(errno::EIO),
                    };
                    if gone {
                        let name = self.shared.xlators.get(xl).map_or("?", |x| &x.name);
                        tracing::warn!(xlator = name, "the brick is gone: CHILD_DOWN");
                        st.propagate();
                    }
                    if let Err(e) = st.owned.engine().handle_completion(now(), frame, reply) {
                        tracing::error!(xlator = xl, "completing {:?}: {e}", req.fop());
                    }
                }
            }
        }
    }
}

/// Every [`TICK`] while the volume lives: down bricks checked, due heals run.
fn tick(shared: Weak<Shared>) {
    loop {
        std::thread::sleep(TICK);
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let gv = GraphVolume { shared };
        let mut guard = gv.lock();
        gv.background(&mut guard);
    }
}

fn entry_of(r: &Reply) -> io::Result<(Iatt, Option<Fd>)> {
    match r.body {
        Body::Entry { buf, fd, .. } => Ok((buf, fd)),
        _ => Err(shape()),
    }
}

fn change_of(r: &Reply) -> io::Result<Iatt> {
    match r.body {
        Body::Change { post, .. } => Ok(post),
        _ => Err(shape()),
    }
}

fn checked(r: &Reply) -> io::Result<()> {
    if r.op_ret < 0 {
        Err(errno_of(r))
    } else {
        Ok(())
    }
}

fn stbuf(s: &SetAttr) -> (Iatt, i32) {
    let mut st = Iatt::default();
    let mut valid = 0;
    if let Some(p) = s.perm {
        st.prot = (p & 0o7777) as u16;
        valid |= set::MODE;
    }
    if let Some(u) = s.uid {
        st.uid = u;
        valid |= set::UID;
    }
    if let Some(g) = s.gid {
        st.gid = g;
        valid |= set::GID;
    }
    if let Some((sec, ns)) = s.atime {
        (st.atime, st.atime_nsec) = (sec, ns);
        valid |= set::ATIME;
    }
    if let Some((sec, ns)) = s.mtime {
        (st.mtime, st.mtime_nsec) = (sec, ns);
        valid |= set::MTIME;
    }
    (st, valid)
}

impl Volume for GraphVolume {
    fn stat(&self, gfid: &Gfid, fh: u64) -> io::Result<Iatt> {
        let known = self.path_of(gfid);
        self.call(
            Creds::default(),
            |w| {
                Ok(if fh != 0 {
                    Request::Fstat { fd: Fd(fh) }
                } else {
                    Request::Stat {
                        loc: object_loc(w, gfid, known.as_deref())?,
                    }
                })
            },
            |r, _| {
                checked(r)?;
                match r.body {
                    Body::Attr { buf } => Ok(buf),
                    _ => Err(shape()),
                }
            },
        )
    }

    fn lookup(&self, parent: &Gfid, name: &OsStr) -> io::Result<Iatt> {
        let pdir = self.path_of(parent);
        self.call(
            Creds::default(),
            |w| {
                Ok(Request::Lookup {
                    loc: entry_loc(w, parent, pdir.as_deref(), name)?,
                    xdata: Xdata::default(),
                })
            },
            |r, _| {
                checked(r)?;
                match r.body {
                    Body::Lookup { buf, .. } => Ok(buf),
                    _ => Err(shape()),
                }
            },
        )
        .inspect(|a| self.met(parent, name, a))
    }

    fn create(
        &self,
        parent: &Gfid,
        name: &OsStr,
        perm: u32,
        flags: i32,
        gfid: &Gfid,
        owner: Option<(u32, u32)>,
    ) -> io::Result<(Iatt, u64)> {
        let pdir = self.path_of(parent);
        let fd = self.fd();
        self.call(
            creds(owner),
            |w| {
                Ok(Request::Create {
                    loc: entry_loc(w, parent, pdir.as_deref(), name)?,
                    flags,
                    mode: IaType::Reg.mode_bits() | (perm & 0o7777),
                    umask: 0,
                    fd,
                    xdata: Xdata {
                        gfid_req: Some(*gfid),
                    },
                })
            },
            |r, _| {
                checked(r)?;
                let (a, f) = entry_of(r)?;
                Ok((a, f.unwrap_or(fd).0))
            },
        )
    }

    fn mkdir(
        &self,
        parent: &Gfid,
        name: &OsStr,
        perm: u32,
        gfid: &Gfid,
        owner: Option<(u32, u32)>,
    ) -> io::Result<Iatt> {
        let pdir = self.path_of(parent);
        self.call(
            creds(owner),
            |w| {
                Ok(Request::Mkdir {
                    loc: entry_loc(w, parent, pdir.as_deref(), name)?,
                    mode: perm & 0o7777,
                    umask: 0,
                    xdata: Xdata {
                        gfid_req: Some(*gfid),
                    },
                })
            },
            |r, _| {
                checked(r)?;
                Ok(entry_of(r)?.0)
            },
        )
        .inspect(|a| self.met(parent, name, a))
    }

    fn symlink(
        &self,
        parent: &Gfid,
        name: &OsStr,
        target: &OsStr,
        gfid: &Gfid,
        owner: Option<(u32, u32)>,
    ) -> io::Result<Iatt> {
        let pdir = self.path_of(parent);
        self.call(
            creds(owner),
            |w| {
                let linkpath = w.put(target.as_bytes())?;
                Ok(Request::Symlink {
                    linkpath,
                    loc: entry_loc(w, parent, pdir.as_deref(), name)?,
                    umask: 0,
                    xdata: Xdata {
                        gfid_req: Some(*gfid),
                    },
                })
            },
            |r, _| {
                checked(r)?;
                Ok(entry_of(r)?.0)
            },
        )
    }

    fn mknod(
        &self,
        parent: &Gfid,
        name: &OsStr,
        mode: u32,
        rdev: u64,
        gfid: &Gfid,
        owner: Option<(u32, u32)>,
    ) -> io::Result<Iatt> {
        let pdir = self.path_of(parent);
        self.call(
            creds(owner),
            |w| {
                Ok(Request::Mknod {
                    loc: entry_loc(w, parent, pdir.as_deref(), name)?,
                    mode,
                    rdev,
                    umask: 0,
                    xdata: Xdata {
                        gfid_req: Some(*gfid),
                    },
                })
            },
            |r, _| {
                checked(r)?;
                Ok(entry_of(r)?.0)
            },
        )
    }

    fn link(&self, gfid: &Gfid, newparent: &Gfid, newname: &OsStr) -> io::Result<Iatt> {
        let npdir = self.path_of(newparent);
        let known = self.path_of(gfid);
        self.call(
            Creds::default(),
            |w| {
                Ok(Request::Link {
                    oldloc: object_loc(w, gfid, known.as_deref())?,
                    newloc: entry_loc(w, newparent, npdir.as_deref(), newname)?,
                    xdata: Xdata::default(),
                })
            },
            |r, _| {
                checked(r)?;
                Ok(entry_of(r)?.0)
            },
        )
    }

    fn unlink(&self, parent: &Gfid, name: &OsStr) -> io::Result<()> {
        let pdir = self.path_of(parent);
        self.call(
            Creds::default(),
            |w| {
                Ok(Request::Unlink {
                    loc: entry_loc(w, parent, pdir.as_deref(), name)?,
                    flags: 0,
                })
            },
            |r, _| checked(r),
        )
    }

    fn rmdir(&self, parent: &Gfid, name: &OsStr) -> io::Result<()> {
        let pdir = self.path_of(parent);
        self.call(
            Creds::default(),
            |w| {
                Ok(Request::Rmdir {
                    loc: entry_loc(w, parent, pdir.as_deref(), name)?,
                    flags: 0,
                })
            },
            |r, _| checked(r),
        )
        .inspect(|()| self.paths().remove_entry(parent, name))
    }

    fn rename(
        &self,
        oldparent: &Gfid,
        oldname: &OsStr,
        newparent: &Gfid,
        newname: &OsStr,
    ) -> io::Result<()> {
        let npdir = self.path_of(newparent);
        let opdir = self.path_of(oldparent);
        self.call(
            Creds::default(),
            |w| {
                Ok(Request::Rename {
                    oldloc: entry_loc(w, oldparent, opdir.as_deref(), oldname)?,
                    newloc: entry_loc(w, newparent, npdir.as_deref(), newname)?,
                })
            },
            |r, _| checked(r),
        )
        .inspect(|()| self.paths().rename(oldparent, oldname, newparent, newname))
    }

    fn readdir(&self, gfid: &Gfid) -> io::Result<Vec<DirEntry>> {
        let known = self.path_of(gfid);
        let fd = self.fd();
        self.call(
            Creds::default(),
            |w| {
                Ok(Request::Opendir {
                    loc: object_loc(w, gfid, known.as_deref())?,
                    fd,
                })
            },
            |r, _| checked(r),
        )?;
        let mut out = Vec::new();
        let mut offset = 0;
        let listed = loop {
            let at = offset;
            let r = self.call(
                Creds::default(),
                |w| {
                    let size = (BUF_LEN - w.len()) as u32;
                    Ok(Request::Readdirp {
                        fd,
                        size,
                        offset: at,
                    })
                },
                |r, buf| {
                    checked(r)?;
                    let Body::Entries { data } = r.body else {
                        return Err(shape());
                    };
                    let bytes = data.get(buf).ok_or_else(shape)?;
                    let mut n = 0;
                    for e in Dirents::new(bytes, true) {
                        n += 1;
                        offset = e.d_off;
                        if e.name == b"." || e.name == b".." {
                            continue;
                        }
                        let Some(attr) = e.stat else { continue };
                        self.met(gfid, OsStr::from_bytes(e.name), &attr);
                        out.push(DirEntry {
                            name: OsString::from_vec(e.name.to_vec()),
                            attr,
                        });
                    }
                    Ok(n)
                },
            );
            match r {
                Ok(0) => break Ok(()),
                Ok(_) => {}
                Err(e) => break Err(e),
            }
        };
        let released = self.call(
            Creds::default(),
            |_| Ok(Request::Releasedir { fd }),
            |r, _| checked(r),
        );
        listed.and(released).map(|()| out)
    }

    fn open(&self, gfid: &Gfid, flags: i32) -> io::Result<Option<u64>> {
        let known = self.path_of(gfid);
        let fd = self.fd();
        self.call(
            Creds::default(),
            |w| {
                Ok(Request::Open {
                    loc: object_loc(w, gfid, known.as_deref())?,
                    flags,
                    fd,
                })
            },
            |r, _| {
                checked(r)?;
                Ok(Some(fd.0))
            },
        )
    }

    fn read(
        &self,
        _gfid: &Gfid,
        fh: u64,
        offset: u64,
        flags: i32,
        buf: &mut [u8],
    ) -> io::Result<usize> {
        let mut done = 0;
        while done < buf.len() {
            let want = (buf.len() - done).min(CHUNK);
            let dst = &mut buf[done..done + want];
            let n = self.call(
                Creds::default(),
                |_| {
                    Ok(Request::Readv {
                        fd: Fd(fh),
                        size: want as u32,
                        offset: offset + done as u64,
                        flags: flags as u32,
                    })
                },
                |r, b| {
                    checked(r)?;
                    let Body::Read { data, .. } = r.body else {
                        return Err(shape());
                    };
                    let src = data.get(b).ok_or_else(shape)?;
                    let n = src.len().min(dst.len());
                    dst[..n].copy_from_slice(&src[..n]);
                    Ok(n)
                },
            )?;
            done += n;
            if n < want {
                break;
            }
        }
        Ok(done)
    }

    fn write(
        &self,
        _gfid: &Gfid,
        fh: u64,
        offset: u64,
        flags: i32,
        data: &[u8],
    ) -> io::Result<usize> {
        let mut done = 0;
        for chunk in data.chunks(CHUNK) {
            let n = self.call(
                Creds::default(),
                |w| {
                    Ok(Request::Writev {
                        fd: Fd(fh),
                        data: w.put(chunk)?,
                        offset: offset + done as u64,
                        flags: flags as u32,
                    })
                },
                |r, _| {
                    checked(r)?;
                    Ok(r.op_ret as usize)
                },
            )?;
            done += n;
            if n < chunk.len() {
                break;
            }
        }
        Ok(done)
    }

    fn flush(&self, _gfid: &Gfid, fh: u64) -> io::Result<()> {
        self.call(
            Creds::default(),
            |_| Ok(Request::Flush { fd: Fd(fh) }),
            |r, _| checked(r),
        )
    }

    fn release(&self, gfid: &Gfid, fh: u64) {
        let r = self.call(
            Creds::default(),
            |_| Ok(Request::Release { fd: Fd(fh) }),
            |r, _| checked(r),
        );
        if let Err(e) = r {
            tracing::warn!(gfid = %gfid, fd = fh, "release: {e}");
        }
    }

    fn fsync(&self, _gfid: &Gfid, fh: u64, datasync: bool) -> io::Result<()> {
        self.call(
            Creds::default(),
            |_| {
                Ok(Request::Fsync {
                    fd: Fd(fh),
                    datasync,
                })
            },
            |r, _| checked(r),
        )
    }

    fn truncate(&self, gfid: &Gfid, fh: u64, size: u64) -> io::Result<Iatt> {
        let known = self.path_of(gfid);
        self.call(
            Creds::default(),
            |w| {
                Ok(if fh != 0 {
                    Request::Ftruncate {
                        fd: Fd(fh),
                        offset: size,
                    }
                } else {
                    Request::Truncate {
                        loc: object_loc(w, gfid, known.as_deref())?,
                        offset: size,
                    }
                })
            },
            |r, _| {
                checked(r)?;
                change_of(r)
            },
        )
    }

    fn setattr(&self, gfid: &Gfid, fh: u64, s: &SetAttr) -> io::Result<Iatt> {
        let known = self.path_of(gfid);
        let (stbuf, valid) = stbuf(s);
        self.call(
            Creds::default(),
            |w| {
                Ok(if fh != 0 {
                    Request::Fsetattr {
                        fd: Fd(fh),
                        stbuf,
                        valid,
                    }
                } else {
                    Request::Setattr {
                        loc: object_loc(w, gfid, known.as_deref())?,
                        stbuf,
                        valid,
                    }
                })
            },
            |r, _| {
                checked(r)?;
                change_of(r)
            },
        )
    }

    fn readlink(&self, gfid: &Gfid) -> io::Result<PathBuf> {
        let known = self.path_of(gfid);
        self.call(
            Creds::default(),
            |w| {
                Ok(Request::Readlink {
                    loc: object_loc(w, gfid, known.as_deref())?,
                    size: libc::PATH_MAX as u32,
                })
            },
            |r, b| {
                checked(r)?;
                let Body::Readlink { path, .. } = r.body else {
                    return Err(shape());
                };
                let t = path.get(b).ok_or_else(shape)?;
                Ok(PathBuf::from(OsStr::from_bytes(t)))
            },
        )
    }

    fn getxattr(&self, gfid: &Gfid, name: &str) -> io::Result<Vec<u8>> {
        let known = self.path_of(gfid);
        self.call(
            Creds::default(),
            |w| {
                Ok(Request::Getxattr {
                    loc: object_loc(w, gfid, known.as_deref())?,
                    name: w.put(name.as_bytes())?,
                })
            },
            |r, b| {
                checked(r)?;
                let Body::Xattr { value } = r.body else {
                    return Err(shape());
                };
                Ok(value.get(b).ok_or_else(shape)?.to_vec())
            },
        )
    }

    fn setxattr(&self, gfid: &Gfid, name: &str, value: &[u8]) -> io::Result<()> {
        let known = self.path_of(gfid);
        self.call(
            Creds::default(),
            |w| {
                Ok(Request::Setxattr {
                    loc: object_loc(w, gfid, known.as_deref())?,
                    name: w.put(name.as_bytes())?,
                    value: w.put(value)?,
                    flags: 0,
                })
            },
            |r, _| checked(r),
        )
    }

    fn removexattr(&self, gfid: &Gfid, name: &str) -> io::Result<()> {
        let known = self.path_of(gfid);
        self.call(
            Creds::default(),
            |w| {
                Ok(Request::Removexattr {
                    loc: object_loc(w, gfid, known.as_deref())?,
                    name: w.put(name.as_bytes())?,
                })
            },
            |r, _| checked(r),
        )
    }

    fn listxattr(&self, gfid: &Gfid) -> io::Result<Vec<String>> {
        let list = self.getxattr(gfid, "")?;
        Ok(list
            .split(|&c| c == 0)
            .filter(|n| !n.is_empty())
            .map(|n| String::from_utf8_lossy(n).into_owned())
            .collect())
    }

    fn statfs(&self) -> io::Result<Statvfs> {
        self.call(
            Creds::default(),
            |w| {
                Ok(Request::Statfs {
                    loc: object_loc(w, &Gfid::ROOT, None)?,
                })
            },
            |r, _| {
                checked(r)?;
                match r.body {
                    Body::Statfs { buf } => Ok(buf),
                    _ => Err(shape()),
                }
            },
        )
    }
}

/// The brick directory when the graph is one storage/posix volume (a lone brick).
pub fn lone_posix(g: &CheckedGraph<'_, '_>) -> Option<PathBuf> {
    let top = g.top();
    match (g.len(), g.xlator_type(top).map(|t| t.kind)) {
        (1, Some(Kind::Posix)) => match g.option(top, "directory") {
            Some(Value::Text(w)) => Some(PathBuf::from(OsString::from_vec(w.bytes().collect()))),
            _ => None,
        },
        _ => None,
    }
}
