//! `cluster/replicate` (AFR, translators.md §5.4): every child holds a full copy; changes go
//! to all children that are up, reads to one good child, and a child that missed changes is
//! blamed in the changelog of those that did not, then healed when it can be.
//!
//! - this module: [`Replicate`] (its options, children and their state), the fop dispatch,
//!   CHILD_UP/CHILD_DOWN ([`Replicate::notify`]) and the background work it asks for
//!   ([`Replicate::background`]);
//! - [`changelog`]: the `trusted.afr.*` values, sources and sinks;
//! - `txn`: write transactions: pre-op, the fop on every child, post-op (§5.4's protocol);
//! - `read`: the fops served by one child (the read child), retried on the next on failure;
//! - `lookup`: lookup on every child, the changelog fetched, the answer from a good child;
//! - `fan`: fops wound to every child without a changelog (open, flush, fsync, locks,
//!   statfs, release), and the counting every fan-out shares;
//! - `heal`: the self-heal of one file, run on a background stack;
//! - [`arena`]: the caller's fixed tables (files to heal, open fds, the heal workspace);
//! - `sfh`: SuperFastHash, which picks the read child.
//!
//! **Transactions.** Data (write, truncate, ftruncate, open with O_TRUNC), metadata (setattr,
//! setxattr, removexattr and their fd forms) and entry fops (create, mknod, mkdir, symlink,
//! link, unlink, rmdir, rename, on the parent directories) follow afr-transaction.c:
//! 1. pre-op: xattrop ADD_ARRAY on every child taking part, with a zero value for each pending
//!    key and `dirty += 1` at the fop's counter. It is skipped for metadata and entry fops when
//!    every child is up (`optimistic-change-log`). A child whose pre-op fails leaves the
//!    transaction;
//! 2. the fop on the children whose pre-op succeeded;
//! 3. post-op, on the children where the fop succeeded: `pending[failed] += 1` at the fop's
//!    counter for every child that is down, failed its pre-op or failed the fop, and
//!    `dirty -= 1` if the pre-op set it. When nothing failed and nothing was dirtied there is
//!    no post-op; when the fop failed everywhere neither (the dirty mark stays).
//!
//! The fop answers as the first child that succeeded answered (a child known stale only when
//! no other succeeded). There is no locking: GlusterFS takes inodelk/entrylk around each
//! transaction because several clients share the bricks; here one engine is the only client,
//! and its caller orders the requests on a file. The post-op runs at once (no eager lock, no
//! `post-op-delay-secs`), and quorum is not enforced.
//!
//! **Reads** go to the read child of the file: `read-subvolume`/`read-subvolume-index` when
//! set and readable, else per `read-hash-mode` (0: the first readable child; 1, the default:
//! `SuperFastHash(gfid) mod child count`; 2: the same with the first four gfid bytes xored
//! with the caller's pid; 3–5, which measure load, act as 1), falling back to the first
//! readable child. Readable means up, open on that child (for an fd), and not known stale
//! for what the fop reads. A read that fails with ENOTCONN, EIO, EBADF or ESTALE is tried on
//! the next readable child; a directory listing stays on the child it began on.
//!
//! **Lookup** goes to every child that is up, then fetches the changelog with a zero-valued
//! xattrop (which reads without writing). Accusations found, or copies that disagree (type,
//! size, owner, one copy missing), make the file (or its parent, for a missing entry) one to
//! heal, and the answer comes from a child that is not stale.
//!
//! **Child events.** Every child starts up; [`Replicate::notify`] takes CHILD_DOWN and
//! CHILD_UP from a child (the shell forwards the graph's notices with
//! [`Engine::notify`](super::engine::Engine::notify)). A child going down makes every later
//! change blame it; coming back makes every pending heal due at once.
//!
//! **Self-heal.** Files known to need a heal are kept in the caller's [`ReplicateArena`]
//! (blamed by a post-op, or found by a lookup). [`Replicate::background`] offers one whose
//! time has come when every child is up and `self-heal-daemon` is on (the default: this
//! translator is also its own heal daemon); the shell runs it with
//! [`Engine::next_background`](super::engine::Engine::next_background) and
//! [`Engine::handle_background`](super::engine::Engine::handle_background), on a stack of its
//! own whose root frame is here (an IPC fop, [`HEAL_IPC`] plus the file's slot). The heal
//! looks the file up on every child, fetches the changelogs, picks sources and sinks, and
//! heals the entries of a directory (creating what the sinks miss and deleting what the
//! sources do not have; with no source, a conservative merge that only creates), the data of
//! a regular file (truncate and copy from the source, then its times), and metadata (mode,
//! owner, times, and the xattrs other than AFR's and posix's own). It ends by subtracting,
//! on every child, exactly the values it read (so a blame that arrived meanwhile stays). A
//! heal that fails is tried again after [`RETRY_NS`], doubling up to 64 s, or at once when
//! the file is looked up or opened, or a child comes back. Its own fds are numbers above
//! [`HEAL_FD`].
//!
//! Without an arena (`Builtin::table`), replicate still keeps the changelog on the bricks
//! but keeps no per-file state: it cannot steer reads away from a stale child, and it heals
//! nothing.
//!
//! **Capacities.** The state of each fop in flight lives in one of [`CALLS`] slots inside the
//! translator (so frame locals stay small for every graph); a fop arriving while all are
//! taken fails with EAGAIN. A heal's state is the arena's one workspace. Changelog dicts are
//! written into the request buffer, which must have room for them (ENOBUFS otherwise).

pub mod arena;
pub mod changelog;
mod fan;
pub mod heal;
mod lookup;
mod read;
mod sfh;
mod txn;

use heapless::Vec;

use self::changelog::{all, bit, has, Counters, Mask};
use self::fan::Fan;
use self::lookup::Lookup;
use self::read::Read;
use self::txn::Txn;
use super::args::{errno, Body, Fd, Reply, Request, Span};
use super::engine::{CallError, Ctx, Unwound};
use super::event::Event;
use super::frame::FrameRef;
use super::graph::Graph;
use super::iatt::Gfid;
use super::options::Value;
use super::xattrop::{self, DictWriter};

pub use self::arena::{FdState, FileState, ReplicateArena, Tables, RETRY_NS};
pub use self::sfh::super_fast_hash;

/// Most children a replicate translator serves (its masks are one byte).
pub const MAX_CHILDREN: usize = 8;
/// Bytes for all changelog key names together.
pub const KEYS_MAX: usize = 1024;
/// The IPC op a heal's root frame carries: this plus the file's slot in the arena.
pub const HEAL_IPC: i32 = 0x4146_0000;
/// The fds a heal opens on the children: this, the replicate's node in the high bits below
/// it, and the child's position.
pub const HEAL_FD: u64 = 0xAF00_0000_0000_0000;
/// The prefix of every changelog key.
pub const XATTR_PREFIX: &str = "trusted.afr.";

/// What a translator table's frame-local type must hold for replicate.
pub trait AfrLocal: Default {
    /// Replicate's state, if this local holds it.
    fn afr(&mut self) -> Option<&mut Local>;
    /// A local holding replicate's state.
    fn from_afr(l: Local) -> Self;
}

/// Replicate's frame-local state: which of its call slots holds the fop's state (or that
/// the frame is a heal's). The state itself lives in the translator, so that every frame of
/// every graph stays small.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Local(u8);

/// The [`Local`] of a heal's root frame (its state is the heal workspace).
const HEAL_SLOT: u8 = u8::MAX;

/// Fops a replicate translator has in flight at once; one more is refused with EAGAIN.
pub const CALLS: usize = 4;

/// One fop's state: its fan-out, read, lookup or transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
// Without an allocator nothing can be boxed: the variants stay inline.
#[allow(clippy::large_enum_variant)]
enum State {
    Fan(Fan),
    Read(Read),
    Lookup(Lookup),
    Txn(Txn),
}

/// The changelog key names: one pending key per child, then the dirty key.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Keys {
    bytes: Vec<u8, KEYS_MAX>,
    ends: Vec<u16, { MAX_CHILDREN + 1 }>,
}

impl Keys {
    fn push(&mut self, parts: &[&[u8]]) -> Option<()> {
        for p in parts {
            self.bytes.extend_from_slice(p).ok()?;
        }
        self.ends.push(self.bytes.len() as u16).ok()
    }

    fn get(&self, i: usize) -> &[u8] {
        let start = match i.checked_sub(1) {
            Some(p) => self.ends.get(p).copied().unwrap_or(0),
            None => 0,
        };
        let end = self.ends.get(i).copied().unwrap_or(start);
        self.bytes
            .get(usize::from(start)..usize::from(end))
            .unwrap_or_default()
    }
}

/// A cluster/replicate translator.
#[derive(Debug)]
pub struct Replicate<'m> {
    n: usize,
    children: Vec<u16, MAX_CHILDREN>,
    keys: Keys,
    up: Mask,
    read_child: Option<usize>,
    hash_mode: i64,
    heal: bool,
    optimistic: bool,
    t: Tables<'m>,
    calls: [Option<(FrameRef, State)>; CALLS],
}

/// The configuration of a [`Replicate`], as its options give it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config<'k> {
    /// The pending key names after `trusted.afr.`, one per child in order
    /// (`afr-pending-xattr`, else the children's volume names).
    pub pending: &'k [&'k [u8]],
    /// `afr-dirty-xattr`.
    pub dirty: &'k [u8],
    /// `read-subvolume` or `read-subvolume-index`, as a child position.
    pub read_child: Option<usize>,
    /// `read-hash-mode`.
    pub hash_mode: i64,
    /// `self-heal-daemon`: heal in the background.
    pub heal: bool,
    /// `optimistic-change-log`.
    pub optimistic: bool,
}

impl<'m> Replicate<'m> {
    /// Over the child nodes `children` (at most [`MAX_CHILDREN`]), with `tables` for its
    /// per-file state; `None` when there are too many children, no key per child, or the key
    /// names do not fit [`KEYS_MAX`].
    pub fn new(children: &[usize], c: &Config<'_>, tables: Tables<'m>) -> Option<Replicate<'m>> {
        let n = children.len();
        if n > MAX_CHILDREN || c.pending.len() < n {
            return None;
        }
        let mut keys = Keys::default();
        for p in c.pending.iter().take(n) {
            keys.push(&[XATTR_PREFIX.as_bytes(), p])?;
        }
        keys.push(&[c.dirty])?;
        let mut ch = Vec::new();
        for &x in children {
            ch.push(u16::try_from(x).ok()?).ok()?;
        }
        Some(Replicate {
            n,
            children: ch,
            keys,
            up: all(n),
            read_child: c.read_child.filter(|&r| r < n),
            hash_mode: c.hash_mode,
            heal: c.heal,
            optimistic: c.optimistic,
            t: tables,
            calls: [None; CALLS],
        })
    }

    /// Translator `i` of `g` with its options (translators.md §5.4), over `tables`.
    pub fn from_graph<const V: usize, const O: usize, const L: usize>(
        g: &Graph<'_, '_, V, O, L>,
        i: usize,
        tables: Tables<'m>,
    ) -> Option<Replicate<'m>> {
        let children: Vec<usize, MAX_CHILDREN> = {
            let mut v = Vec::new();
            for c in g.children(i) {
                v.push(c).ok()?;
            }
            v
        };
        let mut names: Vec<[u8; 256], MAX_CHILDREN> = Vec::new();
        let mut lens: Vec<usize, MAX_CHILDREN> = Vec::new();
        let mut list = [0u8; KEYS_MAX];
        let given = match g.option(i, "afr-pending-xattr") {
            Some(Value::Text(w)) => w.decode_into(&mut list).map(|b| b.len()),
            _ => None,
        };
        // Upstream splits the list with strtok: empty names are skipped. A child without a
        // name in the list falls back to its volume name.
        let mut listed = list
            .get(..given.unwrap_or(0))
            .unwrap_or_default()
            .split(|&b| b == b',')
            .filter(|s| !s.is_empty());
        for &c in &children {
            let mut buf = [0u8; 256];
            let len = match listed.next() {
                Some(s) => {
                    let d = buf.get_mut(..s.len())?;
                    d.copy_from_slice(s);
                    s.len()
                }
                None => g.name(c).decode_into(&mut buf)?.len(),
            };
            names.push(buf).ok()?;
            lens.push(len).ok()?;
        }
        let pending: Vec<&[u8], MAX_CHILDREN> = names
            .iter()
            .zip(&lens)
            .map(|(b, &l)| b.get(..l).unwrap_or_default())
            .collect();
        let mut dirty_buf = [0u8; 256];
        let dirty = match g.option(i, "afr-dirty-xattr") {
            Some(Value::Text(w)) => w.decode_into(&mut dirty_buf)?,
            _ => b"trusted.afr.dirty".as_slice(),
        };
        let read_child = match g.option(i, "read-subvolume") {
            Some(Value::Text(w)) => children.iter().position(|&c| g.name(c).eq_word(&w)),
            _ => match g.option(i, "read-subvolume-index") {
                Some(Value::Int(k)) if k >= 0 => usize::try_from(k).ok(),
                _ => None,
            },
        };
        let flag = |k, default| match g.option(i, k) {
            Some(Value::Bool(b)) => b,
            _ => default,
        };
        let hash_mode = match g.option(i, "read-hash-mode") {
            Some(Value::Int(m)) => m,
            _ => 1,
        };
        let c = Config {
            pending: &pending,
            dirty,
            read_child,
            hash_mode,
            heal: flag("self-heal-daemon", true),
            optimistic: flag("optimistic-change-log", true),
        };
        Replicate::new(&children, &c, tables)
    }

    /// Children: their number.
    pub fn child_count(&self) -> usize {
        self.n
    }

    /// The children up now, a bit per child position.
    pub fn up(&self) -> Mask {
        self.up
    }

    /// Child `pos`'s pending key (`trusted.afr.<name>`).
    pub fn pending_key(&self, pos: usize) -> &[u8] {
        if pos < self.n {
            self.keys.get(pos)
        } else {
            &[]
        }
    }

    /// The dirty key.
    pub fn dirty_key(&self) -> &[u8] {
        self.keys.get(self.n)
    }

    /// Files with a heal pending.
    pub fn pending_heals(&self) -> usize {
        self.t.count()
    }

    /// What replicate knows of `gfid`: the children stale for data, metadata and entries
    /// (`None` when nothing is pending for it).
    pub fn stale(&self, gfid: &Gfid) -> Option<[Mask; 3]> {
        let i = self.t.file(gfid)?;
        self.t.files.get(i).map(|f| f.sinks)
    }

    fn pos_of(&self, node: usize) -> Option<usize> {
        self.children.iter().position(|&c| usize::from(c) == node)
    }

    fn node(&self, pos: usize) -> Option<usize> {
        self.children.get(pos).map(|&c| usize::from(c))
    }

    /// `notify` from child node `from`: CHILD_UP and CHILD_DOWN change which children take
    /// part; other events change nothing here.
    pub fn notify(&mut self, from: usize, event: Event) {
        let Some(pos) = self.pos_of(from) else {
            return;
        };
        match event {
            Event::ChildUp if !has(self.up, pos) => {
                self.up |= bit(pos);
                self.t.all_due();
            }
            Event::ChildDown => self.up &= !bit(pos),
            _ => {}
        }
    }

    /// The heal to run now, if any: the request for the root frame of a background stack at
    /// this translator. Offered while no heal runs, when every child is up and
    /// `self-heal-daemon` is on.
    pub fn background(&self, now: u64) -> Option<Request> {
        if !self.heal || self.up != all(self.n) || self.n < 2 {
            return None;
        }
        if self.t.work.as_ref().is_none_or(|w| w.busy()) {
            return None;
        }
        let slot = self
            .t
            .files
            .iter()
            .position(|f| !f.gfid.is_null() && !f.healing && f.due <= now)?;
        let slot = i32::try_from(slot).ok().filter(|&s| s <= 0xffff)?;
        Some(Request::Ipc {
            op: HEAL_IPC | slot,
        })
    }

    /// A fop.
    pub fn call<L: AfrLocal>(
        &mut self,
        cx: &mut Ctx<'_, '_, L>,
        frame: FrameRef,
        req: Request,
    ) -> Result<(), CallError> {
        if self.n == 0 {
            return cx.unwind(frame, Reply::error(errno::ENOTCONN));
        }
        match req {
            Request::Ipc { op } if op & !0xffff == HEAL_IPC => {
                return heal::start(self, cx, frame, (op & 0xffff) as usize);
            }
            Request::Ipc { .. } => return cx.tail(frame, req),
            _ => {}
        }
        if !self.claim(cx, frame) {
            return cx.unwind(frame, Reply::error(errno::EAGAIN));
        }
        match req {
            Request::Lookup { .. } => lookup::start(self, cx, frame, req),
            Request::Stat { .. }
            | Request::Fstat { .. }
            | Request::Access { .. }
            | Request::Readlink { .. }
            | Request::Readv { .. }
            | Request::Getxattr { .. }
            | Request::Fgetxattr { .. }
            | Request::Readdir { .. }
            | Request::Readdirp { .. } => read::start(self, cx, frame, req),
            _ if txn::kind_of(&req).is_some() => txn::start(self, cx, frame, req),
            _ => fan::start(self, cx, frame, req),
        }
    }

    /// A child's reply.
    pub fn unwound<L: AfrLocal>(
        &mut self,
        cx: &mut Ctx<'_, '_, L>,
        frame: FrameRef,
        from: Unwound,
    ) -> Result<(), CallError> {
        let Some(Local(slot)) = cx.local(frame)?.afr().copied() else {
            return cx.unwind(frame, from.reply);
        };
        let pos = (from.cookie & 0xff) as usize;
        if slot == HEAL_SLOT {
            return heal::unwound(self, cx, frame, pos, from);
        }
        let state = match self.calls.get(usize::from(slot)).copied().flatten() {
            Some((f, s)) if f == frame => s,
            _ => return cx.unwind(frame, from.reply),
        };
        match state {
            State::Fan(s) => fan::unwound(self, cx, frame, s, pos, from),
            State::Read(s) => read::unwound(self, cx, frame, s, pos, from),
            State::Lookup(s) => lookup::unwound(self, cx, frame, s, pos, from),
            State::Txn(s) => txn::unwound(self, cx, frame, s, pos, from),
        }
    }

    /// Takes a call slot for `frame` (freeing first any whose frame is gone: a stack
    /// destroyed before it unwound); false when all are in use.
    fn claim<L: AfrLocal>(&mut self, cx: &mut Ctx<'_, '_, L>, frame: FrameRef) -> bool {
        for c in self.calls.iter_mut() {
            if let Some((f, _)) = c {
                if matches!(cx.local(*f), Err(CallError::Stale)) {
                    *c = None;
                }
            }
        }
        let Some(i) = self.calls.iter().position(Option::is_none) else {
            return false;
        };
        match cx.local(frame) {
            Ok(l) => *l = L::from_afr(Local(i as u8)),
            Err(_) => return false,
        }
        // The state is written by the fop's first `put`.
        if let Some(c) = self.calls.get_mut(i) {
            *c = Some((frame, State::Fan(fan::placeholder())));
        }
        true
    }

    /// Winds `mk(pos)` to each child position in `targets` (cookie: the position, plus `sub`
    /// in the second byte); a refused wind counts as that child failing with its errno.
    /// Returns how many were wound and the refused ones with the last errno.
    fn wind_all<L: AfrLocal>(
        &self,
        cx: &mut Ctx<'_, '_, L>,
        frame: FrameRef,
        targets: Mask,
        sub: u8,
        mk: &mut dyn FnMut(usize) -> Request,
    ) -> (u8, Mask, i32) {
        let (mut wound, mut refused, mut err) = (0u8, 0, 0);
        for pos in (0..self.n).filter(|&p| has(targets, p)) {
            let Some(node) = self.node(pos) else {
                refused |= bit(pos);
                err = errno::ENOTCONN;
                continue;
            };
            let cookie = pos as u64 | u64::from(sub) << 8;
            match cx.wind_cookie(frame, node, cookie, mk(pos)) {
                Ok(_) => wound += 1,
                Err(e) => {
                    refused |= bit(pos);
                    err = e.errno();
                }
            }
        }
        (wound, refused, err)
    }

    /// Pushes a changelog dict into `frame`'s request bytes: each child's pending key with
    /// `pending(pos)`, then the dirty key with `dirty`; with `skip_zero`, zero values are left
    /// out (a heal's undo writes only what it changes).
    fn push_dict<L: AfrLocal>(
        &self,
        cx: &mut Ctx<'_, '_, L>,
        frame: FrameRef,
        pending: &dyn Fn(usize) -> Counters,
        dirty: Counters,
        skip_zero: bool,
    ) -> Result<Span, CallError> {
        let mut buf = [0u8; KEYS_MAX + (MAX_CHILDREN + 1) * 18];
        let mut w = DictWriter::new(&mut buf);
        for pos in 0..=self.n {
            let v = if pos < self.n { pending(pos) } else { dirty };
            if skip_zero && v == [0; 3] {
                continue;
            }
            w.put(self.keys.get(pos), &changelog::encode(v))
                .map_err(|_| CallError::BufferFull { needed: KEYS_MAX })?;
        }
        let len = w.len();
        cx.push_bytes(frame, buf.get(..len).unwrap_or_default())
    }

    /// The counters a changelog dict (a reply to one of ours) holds: `(pending by position,
    /// dirty)`; missing keys read as zero.
    fn read_dict(&self, dict: &[u8]) -> ([Counters; MAX_CHILDREN], Counters) {
        let mut p = [[0; 3]; MAX_CHILDREN];
        for (pos, c) in p.iter_mut().enumerate().take(self.n) {
            if let Some(v) = xattrop::find(dict, self.keys.get(pos)) {
                *c = changelog::decode(v);
            }
        }
        let d = xattrop::find(dict, self.keys.get(self.n)).map_or([0; 3], changelog::decode);
        (p, d)
    }

    /// The children of `fd` that are up: where it was opened (every child when its open was
    /// not seen).
    fn fd_children(&self, fd: Fd) -> Mask {
        self.up & self.t.fd(fd).map_or(Mask::MAX, |s| s.opened)
    }

    fn fd_gfid(&self, fd: Fd) -> Gfid {
        self.t.fd(fd).map_or(Gfid::NULL, |s| s.gfid)
    }

    /// The read child for `gfid` among `readable` (see the module doc), or `None`.
    fn choose(&self, gfid: &Gfid, readable: Mask, pid: i32) -> Option<usize> {
        let first = (0..self.n).find(|&p| has(readable, p));
        if let Some(r) = self.read_child.filter(|&r| has(readable, r)) {
            return Some(r);
        }
        if self.hash_mode == 0 || gfid.is_null() {
            return first;
        }
        let mut g = gfid.0;
        if self.hash_mode == 2 {
            for (b, p) in g.iter_mut().zip(pid.to_le_bytes()) {
                *b ^= p;
            }
        }
        let h = super_fast_hash(&g) as usize % self.n.max(1);
        if has(readable, h) {
            Some(h)
        } else {
            first
        }
    }
}

/// Stores `s` as the state of `frame`'s fop, in the slot it claimed.
fn put<L: AfrLocal>(
    r: &mut Replicate<'_>,
    cx: &mut Ctx<'_, '_, L>,
    frame: FrameRef,
    s: State,
) -> Result<(), CallError> {
    let Some(Local(slot)) = cx.local(frame)?.afr().copied() else {
        return Err(CallError::Stale);
    };
    match r.calls.get_mut(usize::from(slot)) {
        Some(c @ Some(_)) if c.is_some_and(|(f, _)| f == frame) => {
            *c = Some((frame, s));
            Ok(())
        }
        _ => Err(CallError::Stale),
    }
}

/// Unwinds `frame` with `reply`, its slot and local freed first.
fn finish<L: AfrLocal>(
    r: &mut Replicate<'_>,
    cx: &mut Ctx<'_, '_, L>,
    frame: FrameRef,
    reply: Reply,
) -> Result<(), CallError> {
    if let Some(Local(slot)) = cx.take_local(frame)?.afr().copied() {
        if let Some(c) = r.calls.get_mut(usize::from(slot)) {
            if c.is_some_and(|(f, _)| f == frame) {
                *c = None;
            }
        }
    }
    cx.unwind(frame, reply)
}

/// The reply bytes `span` names (in the reply area of `frame`'s buffer).
fn reply_bytes<'c, L: AfrLocal>(
    cx: &'c mut Ctx<'_, '_, L>,
    frame: FrameRef,
    span: Span,
) -> Option<&'c [u8]> {
    let (area, base) = cx.scratch(frame).ok()?;
    let off = usize::try_from(span.off.checked_sub(base)?).ok()?;
    area.get(off..off.checked_add(usize::try_from(span.len).ok()?)?)
}

/// A reply's iatt that names the object a fop acted on (its gfid), for the file table.
fn reply_gfid(r: &Reply) -> Gfid {
    match r.body {
        Body::Lookup { inode, .. } | Body::Entry { inode, .. } => inode,
        Body::Attr { buf } | Body::Readlink { buf, .. } | Body::Rename { buf, .. } => buf.gfid,
        Body::Change { post, .. } => post.gfid,
        Body::Read { stbuf, .. } => stbuf.gfid,
        _ => Gfid::NULL,
    }
}

/// The errno a fan-out answers when every child failed: the first one other than ENOTCONN,
/// as `afr_final_errno` prefers a real answer to a missing child.
fn pick_errno(prev: i32, new: i32) -> i32 {
    if prev == 0 || prev == errno::ENOTCONN {
        new
    } else {
        prev
    }
}
