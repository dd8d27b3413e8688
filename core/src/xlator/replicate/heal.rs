//! The self-heal of one file (afr-self-heal-*.c, translators.md §5.4), run on a background
//! stack whose root frame is at the replicate translator, one step per reply:
//!
//! 1. lookup on every child (all must be up and have the object);
//! 2. the changelog of each child, one child at a time (xattrop with zeros);
//! 3. for each counter with something set or to examine, in the order entries (directory),
//!    data (regular file), metadata: sources and sinks ([`find_direction`], [`narrow`]), then
//!    - entries: for each name of the source(s), a lookup on the children that should have
//!      it; where it is missing it is made with the same gfid (mkdir, mknod, symlink after a
//!      readlink of the source, or a hard link when the gfid exists there already), and the
//!      source's copy of the new object is marked pending for them (data and metadata, or
//!      entries and metadata for a directory) so its own heal follows. With a source, names
//!      a sink has and the source lacks are removed from the sink (an unlink, or an rmdir of an
//!      empty directory). With no source, or when nobody accuses anybody, every child is a
//!      source in turn and nothing is removed (a conservative merge);
//!    - data: open, truncate the sinks to the source's size, copy in chunks the request
//!      buffer can hold, set the sinks' access and modification times to the source's;
//!    - metadata: mode, owner, group and times, then every xattr of the source other than
//!      AFR's and posix's own is set on the sinks, and the sinks' other xattrs removed;
//! 4. on every child, the values read in step 2 are subtracted for the counters healed.
//!
//! A split-brain counter (accusations with no source) of data or metadata is left alone and
//! the file stays pending. Any failed step ends the heal (the fds it opened released); it is
//! tried again later (see [`super::arena`]).

use super::arena::{MAX_BACKOFF, RETRY_NS};
use super::changelog::{all, bit, find_direction, has, narrow, Kind, Mask, Matrix, Seen};
use super::fan::{lowest, Count};
use super::{reply_bytes, AfrLocal, Local, Replicate, HEAL_FD, HEAL_SLOT, MAX_CHILDREN};
use crate::xlator::args::{errno, set, Body, Fd, Loc, Reply, Request, Span, Xdata};
use crate::xlator::dirent::{DirentWriter, Dirents};
use crate::xlator::engine::{CallError, Ctx, Unwound};
use crate::xlator::frame::FrameRef;
use crate::xlator::handle::{GFID2PATH_PREFIX, GFID_XATTR};
use crate::xlator::iatt::{Gfid, IaType, Iatt};
use crate::xlator::xattrop::flags;

/// Most bytes one copy step reads and writes.
pub const CHUNK: usize = 64 * 1024;

const O_RDONLY: i32 = 0;
const O_RDWR: i32 = 2;
/// Bytes before a dirent record's name (`d_off`, `d_ino`, `d_type`, `name_len`).
const DIRENT_HEAD: u32 = 18;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Phase {
    #[default]
    Lookup,
    Fetch,
    DataOpen,
    DataTruncate,
    DataRead,
    DataWrite,
    DataTimes,
    MetaAttr,
    MetaList,
    MetaGet,
    MetaSet,
    MetaSinkList,
    MetaRemove,
    EntryOpen,
    EntryRead,
    EntryLookup,
    EntryReadlink,
    EntryCreate,
    EntryLink,
    EntryMark,
    PurgeRead,
    PurgeLookup,
    PurgeRemove,
    Release,
    Undo,
}

/// The workspace of the heal that runs (one at a time per replicate translator).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HealWork {
    busy: bool,
    slot: usize,
    gfid: Gfid,
    gen: u16,
    phase: Phase,
    c: Count,
    /// Children that have the object (lookup succeeded).
    present: Mask,
    attrs: [Iatt; MAX_CHILDREN],
    mx: Matrix,
    left: Mask,
    /// Counters still to heal, in order, and how many.
    queue: [Option<Kind>; 3],
    /// Counters healed (their values are undone), and left alone (split-brain).
    healed: u8,
    skipped: u8,
    /// The counter being healed, its source and sinks.
    kind: Option<Kind>,
    src: usize,
    sinks: Mask,
    failed: bool,
    /// Heal fds open, and whether they are directories.
    opened: Mask,
    dirs: bool,
    /// Request-buffer ends to return to: after the job's own bytes, after a kept listing.
    base: usize,
    mark: usize,
    // Data.
    off: u64,
    data: Span,
    // Metadata: the source's names and where the walk is; a sink's names.
    list: Span,
    cursor: u32,
    name: Span,
    value: Span,
    list2: Span,
    cursor2: u32,
    purge_left: Mask,
    psink: usize,
    // Entries.
    conservative: bool,
    sources_left: Mask,
    d_off: u64,
    entries: Span,
    ecursor: u32,
    entry: Iatt,
    ename: Span,
    link: Span,
    missing: Mask,
    made: Mask,
    eexist: Mask,
}

impl HealWork {
    /// A heal runs now.
    pub fn busy(&self) -> bool {
        self.busy
    }

    /// The children a change of `kind` on `gfid` must skip while this heal copies to them.
    pub(super) fn excluded(&self, gfid: &Gfid, kind: Kind) -> Mask {
        if self.busy && self.gfid == *gfid && self.kind == Some(kind) {
            self.sinks
        } else {
            0
        }
    }
}

fn hfd(node: usize, pos: usize) -> Fd {
    Fd(HEAL_FD | (node as u64 & 0xffff) << 8 | pos as u64)
}

fn by_gfid(g: Gfid) -> Loc {
    Loc {
        gfid: g,
        ..Loc::default()
    }
}

/// xattrs a metadata heal leaves alone: AFR's changelog, posix's gfid ones, the volume id.
fn ignored(r: &Replicate<'_>, name: &[u8]) -> bool {
    name.starts_with(super::XATTR_PREFIX.as_bytes())
        || name == r.dirty_key()
        || name == GFID_XATTR.as_bytes()
        || name.starts_with(GFID2PATH_PREFIX.as_bytes())
        || name == b"trusted.glusterfs.volume-id"
        || name.is_empty()
}

/// Linux's `dev_t` from iatt's `major << 32 | minor`.
fn dev_t(rdev: u64) -> u64 {
    let (major, minor) = (rdev >> 32, rdev & 0xffff_ffff);
    (major & 0xffff_f000) << 32 | (major & 0xfff) << 8 | (minor & 0xffff_ff00) << 12 | minor & 0xff
}

/// Starts the heal of the file in `slot` on `frame`, a background root frame.
pub(super) fn start<L: AfrLocal>(
    r: &mut Replicate<'_>,
    cx: &mut Ctx<'_, '_, L>,
    frame: FrameRef,
    slot: usize,
) -> Result<(), CallError> {
    let f = r.t.files.get(slot).copied().unwrap_or_default();
    let ready = !f.gfid.is_null() && !f.healing && r.up == all(r.n) && r.n >= 2;
    let free = r.t.work.as_ref().is_some_and(|w| !w.busy);
    if !ready || !free {
        return cx.unwind(frame, Reply::error(errno::EAGAIN));
    }
    if let Some(x) = r.t.files.get_mut(slot) {
        x.healing = true;
    }
    let base = cx.request_len(frame)?;
    let Some(w) = r.t.work.as_deref_mut() else {
        return cx.unwind(frame, Reply::error(errno::EAGAIN));
    };
    *w = HealWork {
        busy: true,
        slot,
        gfid: f.gfid,
        gen: f.gen,
        base,
        mark: base,
        ..HealWork::default()
    };
    *cx.local(frame)? = L::from_afr(Local(HEAL_SLOT));
    let targets = r.up;
    let g = f.gfid;
    let (wound, refused, err) = r.wind_all(cx, frame, targets, 0, &mut |_| Request::Lookup {
        loc: by_gfid(g),
        xdata: Xdata::default(),
    });
    with(r, cx, frame, |_, w, _| {
        w.c = Count::start(wound, refused, err);
        Ok(())
    })?;
    if wound == 0 {
        return end(r, cx, frame, true);
    }
    Ok(())
}

/// Runs `f` with the workspace taken out of `r` (so `r` stays usable beside it).
fn with<L: AfrLocal, T>(
    r: &mut Replicate<'_>,
    cx: &mut Ctx<'_, '_, L>,
    _frame: FrameRef,
    f: impl FnOnce(&mut Replicate<'_>, &mut HealWork, &mut Ctx<'_, '_, L>) -> Result<T, CallError>,
) -> Result<T, CallError> {
    let Some(w) = r.t.work.take() else {
        return Err(CallError::Stale);
    };
    let out = f(r, &mut *w, cx);
    r.t.work = Some(w);
    out
}

pub(super) fn unwound<L: AfrLocal>(
    r: &mut Replicate<'_>,
    cx: &mut Ctx<'_, '_, L>,
    frame: FrameRef,
    pos: usize,
    from: Unwound,
) -> Result<(), CallError> {
    let go_on = with(r, cx, frame, |r, w, cx| {
        record(r, w, cx, frame, pos, &from.reply)
    })?;
    if go_on {
        step(r, cx, frame)
    } else {
        Ok(())
    }
}

/// Notes one reply; true when the phase is over.
fn record<L: AfrLocal>(
    r: &mut Replicate<'_>,
    w: &mut HealWork,
    cx: &mut Ctx<'_, '_, L>,
    frame: FrameRef,
    pos: usize,
    reply: &Reply,
) -> Result<bool, CallError> {
    let ok = reply.op_ret >= 0;
    match w.phase {
        Phase::Lookup => {
            if let (true, Body::Lookup { buf, .. }) = (ok, reply.body) {
                w.present |= bit(pos);
                if let Some(a) = w.attrs.get_mut(pos) {
                    *a = buf;
                }
            }
        }
        Phase::Fetch => {
            if let (true, Body::Xattr { value }) = (ok, reply.body) {
                if let Some(d) = reply_bytes(cx, frame, value) {
                    let (p, dirty) = r.read_dict(d);
                    if let Some(row) = w.mx.pending.get_mut(pos) {
                        *row = p;
                    }
                    if let Some(x) = w.mx.dirty.get_mut(pos) {
                        *x = dirty;
                    }
                }
            } else {
                w.failed = true;
            }
            cx.set_request_len(frame, w.base)?;
        }
        Phase::DataOpen | Phase::EntryOpen => {
            if ok {
                w.opened |= bit(pos);
            } else {
                w.failed = true;
            }
        }
        Phase::DataRead => match (ok, reply.body) {
            (true, Body::Read { data, .. }) => {
                w.data = data;
                if !data.is_empty() {
                    // The bytes read become the writes' request bytes.
                    cx.set_request_len(frame, (data.off + data.len) as usize)?;
                }
            }
            _ => w.failed = true,
        },
        Phase::DataWrite => {
            if reply.op_ret != w.data.len as i32 {
                w.failed = true;
            }
        }
        Phase::MetaList | Phase::MetaSinkList | Phase::MetaGet | Phase::EntryReadlink => {
            let span = match (ok, reply.body) {
                (true, Body::Xattr { value }) => Some(value),
                (true, Body::Readlink { path, .. }) => Some(path),
                _ => None,
            };
            match span {
                Some(s) => {
                    cx.set_request_len(frame, (s.off + s.len) as usize)?;
                    match w.phase {
                        Phase::MetaList => w.list = s,
                        Phase::MetaSinkList => w.list2 = s,
                        Phase::MetaGet => w.value = s,
                        _ => w.link = s,
                    }
                }
                // A name gone between the listing and now has nothing to copy.
                None if w.phase == Phase::MetaGet && reply.op_errno == errno::ENODATA => {
                    w.value = Span::EMPTY;
                    w.name = Span::EMPTY;
                }
                None => w.failed = true,
            }
        }
        Phase::EntryRead | Phase::PurgeRead => match (ok, reply.body) {
            (true, Body::Entries { data }) => {
                w.entries = data;
                w.ecursor = 0;
                if !data.is_empty() {
                    cx.set_request_len(frame, (data.off + data.len) as usize)?;
                }
            }
            _ => w.failed = true,
        },
        Phase::EntryLookup => {
            if ok {
                if let Body::Lookup { inode, .. } = reply.body {
                    // Another object under this name: a gfid split-brain, left alone.
                    if inode != w.entry.gfid {
                        w.skipped |= 1 << Kind::Entry.index();
                    }
                }
            } else if reply.op_errno == errno::ENOENT {
                w.missing |= bit(pos);
            } else {
                w.failed = true;
            }
        }
        Phase::PurgeLookup => {
            if !ok && reply.op_errno == errno::ENOENT {
                w.missing |= bit(pos);
            } else if !ok {
                w.failed = true;
            }
        }
        Phase::EntryCreate => {
            if ok {
                w.made |= bit(pos);
            } else if reply.op_errno == errno::EEXIST && w.entry.ty != IaType::Dir {
                // The gfid has another name there already: a hard link.
                w.eexist |= bit(pos);
            } else {
                w.failed = true;
            }
        }
        Phase::EntryLink => {
            if ok {
                w.made |= bit(pos);
            } else {
                w.failed = true;
            }
        }
        Phase::PurgeRemove => {
            // A directory that is not empty stays (no recursive removal); the rest must go.
            if !ok && reply.op_errno != errno::ENOTEMPTY && reply.op_errno != errno::ENOENT {
                w.failed = true;
            }
        }
        Phase::MetaAttr | Phase::MetaSet | Phase::MetaRemove | Phase::DataTruncate => {
            if !ok {
                w.failed = true;
            }
        }
        // Times, release, the marks and the undo: best effort.
        Phase::DataTimes | Phase::EntryMark | Phase::Release | Phase::Undo => {}
    }
    Ok(w.c.record(pos, reply))
}

/// What to wind next: a request per child position, to `to`.
struct Wind {
    to: Mask,
    req: [Option<Request>; MAX_CHILDREN],
}

impl Wind {
    fn same(to: Mask, req: Request) -> Wind {
        Wind {
            to,
            req: [Some(req); MAX_CHILDREN],
        }
    }
}

/// The phase is over: decide and wind the next one (or end).
fn step<L: AfrLocal>(
    r: &mut Replicate<'_>,
    cx: &mut Ctx<'_, '_, L>,
    frame: FrameRef,
) -> Result<(), CallError> {
    loop {
        let next = with(r, cx, frame, |r, w, cx| plan(r, w, cx, frame))?;
        let Some(wind) = next else {
            return Ok(());
        };
        let (wound, refused, err) = r.wind_all(cx, frame, wind.to, 0, &mut |p| {
            wind.req
                .get(p)
                .copied()
                .flatten()
                .unwrap_or(Request::Ipc { op: 0 })
        });
        let again = with(r, cx, frame, |_, w, _| {
            w.c = Count::start(wound, refused, err);
            if refused != 0 {
                w.failed = true;
            }
            Ok(wound == 0)
        })?;
        if !again {
            return Ok(());
        }
        // Nothing could be wound: the phase is over at once.
    }
}

/// Decides the next phase after the current one ended; `None` when the heal ended (or
/// nothing is to be wound now).
fn plan<L: AfrLocal>(
    r: &mut Replicate<'_>,
    w: &mut HealWork,
    cx: &mut Ctx<'_, '_, L>,
    frame: FrameRef,
) -> Result<Option<Wind>, CallError> {
    let node = cx.this();
    let g = w.gfid;
    if w.failed && !matches!(w.phase, Phase::Release | Phase::Undo) {
        if let Some(x) = release(w, node) {
            return Ok(Some(x));
        }
        conclude(r, w, cx, frame)?;
        return Ok(None);
    }
    match w.phase {
        Phase::Lookup => {
            let ty = w.attrs.iter().zip(0..r.n).find(|(_, p)| has(w.present, *p));
            let same = ty.is_some_and(|(a, _)| {
                (0..r.n)
                    .filter(|&p| has(w.present, p))
                    .all(|p| w.attrs.get(p).is_some_and(|b| b.ty == a.ty))
            });
            if w.present != all(r.n) || !same {
                // Missing somewhere (its parent's heal makes it), or of another type.
                w.failed = true;
                return conclude(r, w, cx, frame).map(|()| None);
            }
            w.phase = Phase::Fetch;
            w.left = w.present;
            fetch(r, w, cx, frame)
        }
        Phase::Fetch => {
            if w.left != 0 {
                return fetch(r, w, cx, frame);
            }
            queue(r, w);
            next_kind(r, w, cx, frame, node)
        }
        Phase::DataOpen => {
            w.phase = Phase::DataTruncate;
            let size = w.attrs.get(w.src).map_or(0, |a| a.size);
            let sinks = w.sinks;
            let mut wi = Wind {
                to: sinks,
                req: [None; MAX_CHILDREN],
            };
            for (p, q) in wi.req.iter_mut().enumerate() {
                *q = Some(Request::Ftruncate {
                    fd: hfd(node, p),
                    offset: size,
                });
            }
            Ok(Some(wi))
        }
        Phase::DataTruncate | Phase::DataWrite => {
            if w.phase == Phase::DataWrite {
                w.off += u64::from(w.data.len);
                cx.set_request_len(frame, w.base)?;
            }
            let room = cx.scratch(frame)?.0.len().min(CHUNK);
            if room == 0 {
                w.failed = true;
                return plan(r, w, cx, frame);
            }
            w.phase = Phase::DataRead;
            Ok(Some(Wind::same(
                bit(w.src),
                Request::Readv {
                    fd: hfd(node, w.src),
                    size: room as u32,
                    offset: w.off,
                    flags: 0,
                },
            )))
        }
        Phase::DataRead => {
            if w.data.is_empty() {
                w.phase = Phase::DataTimes;
                let a = w.attrs.get(w.src).copied().unwrap_or_default();
                let mut wi = Wind {
                    to: w.sinks,
                    req: [None; MAX_CHILDREN],
                };
                for (p, q) in wi.req.iter_mut().enumerate() {
                    *q = Some(Request::Fsetattr {
                        fd: hfd(node, p),
                        stbuf: a,
                        valid: set::ATIME | set::MTIME,
                    });
                }
                return Ok(Some(wi));
            }
            w.phase = Phase::DataWrite;
            let (data, off) = (w.data, w.off);
            let mut wi = Wind {
                to: w.sinks,
                req: [None; MAX_CHILDREN],
            };
            for (p, q) in wi.req.iter_mut().enumerate() {
                *q = Some(Request::Writev {
                    fd: hfd(node, p),
                    data,
                    offset: off,
                    flags: 0,
                });
            }
            Ok(Some(wi))
        }
        Phase::DataTimes => {
            kind_done(w);
            match release(w, node) {
                Some(x) => Ok(Some(x)),
                None => next_kind(r, w, cx, frame, node),
            }
        }
        Phase::MetaAttr => {
            w.phase = Phase::MetaList;
            Ok(Some(Wind::same(
                bit(w.src),
                Request::Getxattr {
                    loc: by_gfid(g),
                    name: Span::EMPTY,
                },
            )))
        }
        Phase::MetaList | Phase::MetaSet => {
            if w.phase == Phase::MetaList {
                w.cursor = 0;
                w.mark = cx.request_len(frame)?;
            } else {
                cx.set_request_len(frame, w.mark)?;
            }
            meta_next(r, w, cx, frame)
        }
        Phase::MetaGet => {
            if w.name.is_empty() {
                cx.set_request_len(frame, w.mark)?;
                return meta_next(r, w, cx, frame);
            }
            w.phase = Phase::MetaSet;
            Ok(Some(Wind::same(
                w.sinks,
                Request::Setxattr {
                    loc: by_gfid(g),
                    name: w.name,
                    value: w.value,
                    flags: 0,
                },
            )))
        }
        Phase::MetaSinkList => {
            w.cursor2 = 0;
            meta_purge_next(r, w, cx, frame)
        }
        Phase::MetaRemove => meta_purge_next(r, w, cx, frame),
        Phase::EntryOpen => {
            w.d_off = 0;
            entry_read(w, cx, frame, node)
        }
        Phase::EntryRead => {
            if w.entries.is_empty() {
                // This source is listed: the next one (conservative), the purge, or done.
                w.sources_left &= !bit(w.src);
                if let Some(s) = lowest(w.sources_left, r.n) {
                    w.src = s;
                    w.d_off = 0;
                    return entry_read(w, cx, frame, node);
                }
                if !w.conservative {
                    w.purge_left = w.sinks;
                    return purge_sink(r, w, cx, frame, node);
                }
                kind_done(w);
                return match release(w, node) {
                    Some(x) => Ok(Some(x)),
                    None => next_kind(r, w, cx, frame, node),
                };
            }
            w.mark = w.entries.off as usize;
            entry_next(w, cx, frame, node)
        }
        Phase::EntryLookup => {
            if w.missing == 0 {
                return entry_next(w, cx, frame, node);
            }
            if w.entry.ty == IaType::Lnk {
                w.phase = Phase::EntryReadlink;
                return Ok(Some(Wind::same(
                    bit(w.src),
                    Request::Readlink {
                        loc: by_gfid(w.entry.gfid),
                        size: 4096,
                    },
                )));
            }
            entry_create(w, g)
        }
        Phase::EntryReadlink => entry_create(w, g),
        Phase::EntryCreate | Phase::EntryLink => {
            if w.phase == Phase::EntryCreate && w.eexist != 0 {
                w.phase = Phase::EntryLink;
                let to = w.eexist;
                w.eexist = 0;
                return Ok(Some(Wind::same(
                    to,
                    Request::Link {
                        oldloc: by_gfid(w.entry.gfid),
                        newloc: entry_loc(g, w.ename),
                        xdata: Xdata::default(),
                    },
                )));
            }
            // Mark the source's copy pending for the children it was just made on.
            let made = w.made;
            if made == 0 {
                return entry_next(w, cx, frame, node);
            }
            let e = w.entry;
            let counters = match e.ty {
                IaType::Dir => [0, 1, 1],
                IaType::Reg => [1, 1, 0],
                _ => [0, 1, 0],
            };
            for k in Kind::ALL {
                if counters.get(k.index()).copied().unwrap_or(0) != 0 {
                    r.t.blame(&e.gfid, k.index(), made);
                }
            }
            let dict = r.push_dict(
                cx,
                frame,
                &|p| if has(made, p) { counters } else { [0; 3] },
                [0; 3],
                true,
            )?;
            w.phase = Phase::EntryMark;
            Ok(Some(Wind::same(
                bit(w.src),
                Request::Xattrop {
                    loc: by_gfid(e.gfid),
                    flags: flags::ADD_ARRAY,
                    dict,
                },
            )))
        }
        Phase::EntryMark => entry_next(w, cx, frame, node),
        Phase::PurgeRead => {
            if w.entries.is_empty() {
                w.purge_left &= !bit(w.psink);
                return purge_sink(r, w, cx, frame, node);
            }
            w.mark = w.entries.off as usize;
            purge_next(r, w, cx, frame, node)
        }
        Phase::PurgeLookup => {
            if w.missing == 0 {
                return purge_next(r, w, cx, frame, node);
            }
            w.phase = Phase::PurgeRemove;
            let loc = entry_loc(g, w.ename);
            let req = if w.entry.ty == IaType::Dir {
                Request::Rmdir { loc, flags: 0 }
            } else {
                Request::Unlink { loc, flags: 0 }
            };
            Ok(Some(Wind::same(bit(w.psink), req)))
        }
        Phase::PurgeRemove => purge_next(r, w, cx, frame, node),
        Phase::Release => {
            if w.failed {
                conclude(r, w, cx, frame)?;
                return Ok(None);
            }
            next_kind(r, w, cx, frame, node)
        }
        Phase::Undo => {
            conclude(r, w, cx, frame)?;
            Ok(None)
        }
    }
}

fn entry_loc(parent: Gfid, name: Span) -> Loc {
    Loc {
        pargfid: parent,
        name,
        ..Loc::default()
    }
}

/// The changelog of the next child left.
fn fetch<L: AfrLocal>(
    r: &mut Replicate<'_>,
    w: &mut HealWork,
    cx: &mut Ctx<'_, '_, L>,
    frame: FrameRef,
) -> Result<Option<Wind>, CallError> {
    let Some(p) = lowest(w.left, r.n) else {
        return Ok(None);
    };
    w.left &= !bit(p);
    let dict = r.push_dict(cx, frame, &|_| [0; 3], [0; 3], false)?;
    Ok(Some(Wind::same(
        bit(p),
        Request::Xattrop {
            loc: by_gfid(w.gfid),
            flags: flags::ADD_ARRAY,
            dict,
        },
    )))
}

/// The counters to heal, in order: entries for a directory, data for a regular file, then
/// metadata; each only with something set or to examine.
fn queue(r: &Replicate<'_>, w: &mut HealWork) {
    let ty = lowest(w.present, r.n)
        .and_then(|p| w.attrs.get(p))
        .map_or(IaType::Inval, |a| a.ty);
    let examine = r.t.files.get(w.slot).map_or(0, |f| f.examine);
    let order: &[Kind] = match ty {
        IaType::Dir => &[Kind::Entry, Kind::Metadata],
        IaType::Reg => &[Kind::Data, Kind::Metadata],
        _ => &[Kind::Metadata],
    };
    let mut q = [None; 3];
    let mut n = 0;
    for &k in order {
        if w.mx.any(k, r.n) || examine & (1 << k.index()) != 0 {
            if let Some(slot) = q.get_mut(n) {
                *slot = Some(k);
                n += 1;
            }
        }
    }
    w.queue = q;
}

fn kind_done(w: &mut HealWork) {
    if let Some(k) = w.kind.take() {
        w.healed |= 1 << k.index();
    }
    w.sinks = 0;
}

/// Starts healing the next counter of the queue, or the undo when none is left.
fn next_kind<L: AfrLocal>(
    r: &mut Replicate<'_>,
    w: &mut HealWork,
    cx: &mut Ctx<'_, '_, L>,
    frame: FrameRef,
    node: usize,
) -> Result<Option<Wind>, CallError> {
    w.kind = None;
    let seen: [Seen; MAX_CHILDREN] = core::array::from_fn(|p| {
        let a = w.attrs.get(p).copied().unwrap_or_default();
        Seen {
            size: a.size,
            mtime: (a.mtime, a.mtime_nsec),
            ctime: (a.ctime, a.ctime_nsec),
            owner: (a.prot, a.uid, a.gid),
        }
    });
    while let Some(k) = w.queue.iter_mut().find_map(Option::take) {
        let d = find_direction(&w.mx, k, r.n, w.present);
        if k == Kind::Entry {
            w.kind = Some(k);
            w.conservative = d.split_brain || d.sources == w.present;
            if w.conservative {
                w.sources_left = w.present;
                w.sinks = w.present;
            } else {
                w.sources_left = lowest(d.sources, r.n).map_or(0, bit);
                w.sinks = w.present & !d.sources;
            }
            w.src = lowest(w.sources_left, r.n).unwrap_or(0);
            w.phase = Phase::EntryOpen;
            w.dirs = true;
            let to = w.present;
            let mut wi = Wind {
                to,
                req: [None; MAX_CHILDREN],
            };
            for (p, q) in wi.req.iter_mut().enumerate() {
                *q = Some(Request::Opendir {
                    loc: by_gfid(w.gfid),
                    fd: hfd(node, p),
                });
            }
            return Ok(Some(wi));
        }
        if d.split_brain {
            w.skipped |= 1 << k.index();
            continue;
        }
        let sources = narrow(k, d.sources, &d, &seen, r.n);
        let Some(src) = lowest(sources, r.n) else {
            w.skipped |= 1 << k.index();
            continue;
        };
        w.kind = Some(k);
        w.src = src;
        w.sinks = w.present & !sources;
        if w.sinks == 0 {
            // Nothing differs: only the marks go.
            kind_done(w);
            continue;
        }
        if k == Kind::Data {
            w.phase = Phase::DataOpen;
            w.dirs = false;
            w.off = 0;
            let to = w.sinks | bit(src);
            let mut wi = Wind {
                to,
                req: [None; MAX_CHILDREN],
            };
            for (p, q) in wi.req.iter_mut().enumerate() {
                *q = Some(Request::Open {
                    loc: by_gfid(w.gfid),
                    flags: if p == src { O_RDONLY } else { O_RDWR },
                    fd: hfd(node, p),
                });
            }
            return Ok(Some(wi));
        }
        w.phase = Phase::MetaAttr;
        let a = w.attrs.get(src).copied().unwrap_or_default();
        return Ok(Some(Wind::same(
            w.sinks,
            Request::Setattr {
                loc: by_gfid(w.gfid),
                stbuf: a,
                valid: set::MODE | set::UID | set::GID | set::ATIME | set::MTIME,
            },
        )));
    }
    undo(r, w, cx, frame)
}

/// Releases the heal's fds, if any are open.
fn release(w: &mut HealWork, node: usize) -> Option<Wind> {
    if w.opened == 0 {
        return None;
    }
    let to = w.opened;
    w.opened = 0;
    w.phase = Phase::Release;
    let mut wi = Wind {
        to,
        req: [None; MAX_CHILDREN],
    };
    for (p, q) in wi.req.iter_mut().enumerate() {
        let fd = hfd(node, p);
        *q = Some(if w.dirs {
            Request::Releasedir { fd }
        } else {
            Request::Release { fd }
        });
    }
    Some(wi)
}

/// The next xattr name of the source to copy, or the sinks' purge once all are copied.
fn meta_next<L: AfrLocal>(
    r: &mut Replicate<'_>,
    w: &mut HealWork,
    cx: &mut Ctx<'_, '_, L>,
    frame: FrameRef,
) -> Result<Option<Wind>, CallError> {
    while w.cursor < w.list.len {
        let names = cx.bytes(frame, w.list)?;
        let rest = names.get(w.cursor as usize..).unwrap_or_default();
        let len = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
        let name = rest.get(..len).unwrap_or_default();
        let span = Span {
            off: w.list.off + w.cursor,
            len: len as u32,
        };
        w.cursor += len as u32 + 1;
        if ignored(r, name) {
            continue;
        }
        w.name = span;
        w.phase = Phase::MetaGet;
        return Ok(Some(Wind::same(
            bit(w.src),
            Request::Getxattr {
                loc: by_gfid(w.gfid),
                name: span,
            },
        )));
    }
    w.purge_left = w.sinks;
    meta_sink(r, w, cx, frame)
}

/// Lists the next sink's xattrs for the purge, or ends the metadata heal.
fn meta_sink<L: AfrLocal>(
    r: &mut Replicate<'_>,
    w: &mut HealWork,
    cx: &mut Ctx<'_, '_, L>,
    frame: FrameRef,
) -> Result<Option<Wind>, CallError> {
    cx.set_request_len(frame, w.mark)?;
    let Some(s) = lowest(w.purge_left, r.n) else {
        cx.set_request_len(frame, w.base)?;
        kind_done(w);
        return next_kind(r, w, cx, frame, cx.this());
    };
    w.purge_left &= !bit(s);
    w.psink = s;
    w.phase = Phase::MetaSinkList;
    Ok(Some(Wind::same(
        bit(s),
        Request::Getxattr {
            loc: by_gfid(w.gfid),
            name: Span::EMPTY,
        },
    )))
}

/// The next name of the sink's list the source lacks: removed.
fn meta_purge_next<L: AfrLocal>(
    r: &mut Replicate<'_>,
    w: &mut HealWork,
    cx: &mut Ctx<'_, '_, L>,
    frame: FrameRef,
) -> Result<Option<Wind>, CallError> {
    while w.cursor2 < w.list2.len {
        let names = cx.bytes(frame, w.list2)?;
        let rest = names.get(w.cursor2 as usize..).unwrap_or_default();
        let len = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
        let name = rest.get(..len).unwrap_or_default();
        let span = Span {
            off: w.list2.off + w.cursor2,
            len: len as u32,
        };
        w.cursor2 += len as u32 + 1;
        let source = cx.bytes(frame, w.list)?;
        let kept = source.split(|&b| b == 0).any(|n| n == name);
        if ignored(r, name) || kept {
            continue;
        }
        w.phase = Phase::MetaRemove;
        return Ok(Some(Wind::same(
            bit(w.psink),
            Request::Removexattr {
                loc: by_gfid(w.gfid),
                name: span,
            },
        )));
    }
    meta_sink(r, w, cx, frame)
}

/// Lists the current source's entries from where the last listing stopped.
fn entry_read<L: AfrLocal>(
    w: &mut HealWork,
    cx: &mut Ctx<'_, '_, L>,
    frame: FrameRef,
    node: usize,
) -> Result<Option<Wind>, CallError> {
    cx.set_request_len(frame, w.base)?;
    let room = cx.scratch(frame)?.0.len().min(CHUNK);
    w.phase = Phase::EntryRead;
    Ok(Some(Wind::same(
        bit(w.src),
        Request::Readdirp {
            fd: hfd(node, w.src),
            size: room as u32,
            offset: w.d_off,
        },
    )))
}

/// The next listed entry: `(its attributes, its name's span)`, the cursor moved past it;
/// `.` and `..` are skipped.
fn next_entry<L: AfrLocal>(
    w: &mut HealWork,
    cx: &Ctx<'_, '_, L>,
    frame: FrameRef,
) -> Result<Option<(Iatt, Span)>, CallError> {
    loop {
        let bytes = cx.bytes(frame, w.entries)?;
        let rest = bytes.get(w.ecursor as usize..).unwrap_or_default();
        let Some(e) = Dirents::new(rest, true).next() else {
            return Ok(None);
        };
        let at = w.entries.off + w.ecursor + DIRENT_HEAD;
        w.ecursor += DirentWriter::record_len(e.name, true) as u32;
        w.d_off = e.d_off;
        if e.name == b"." || e.name == b".." {
            continue;
        }
        let span = Span {
            off: at,
            len: e.name.len() as u32,
        };
        return Ok(Some((e.stat.unwrap_or_default(), span)));
    }
}

/// Checks the next entry of the listing on the children that should have it.
fn entry_next<L: AfrLocal>(
    w: &mut HealWork,
    cx: &mut Ctx<'_, '_, L>,
    frame: FrameRef,
    node: usize,
) -> Result<Option<Wind>, CallError> {
    let to = w.present & w.sinks & !bit(w.src);
    loop {
        cx.set_request_len(frame, w.mark + w.entries.len as usize)?;
        let Some((attr, name)) = next_entry(w, cx, frame)? else {
            return entry_read(w, cx, frame, node);
        };
        if to == 0 {
            continue;
        }
        w.entry = attr;
        w.ename = name;
        w.missing = 0;
        w.made = 0;
        w.eexist = 0;
        w.phase = Phase::EntryLookup;
        return Ok(Some(Wind::same(
            to,
            Request::Lookup {
                loc: entry_loc(w.gfid, name),
                xdata: Xdata::default(),
            },
        )));
    }
}

/// Makes the missing entry on the children that lack it.
fn entry_create(w: &mut HealWork, parent: Gfid) -> Result<Option<Wind>, CallError> {
    let e = w.entry;
    let loc = entry_loc(parent, w.ename);
    let xdata = Xdata {
        gfid_req: Some(e.gfid),
    };
    let mode = u32::from(e.prot & 0o7777);
    let req = match e.ty {
        IaType::Dir => Request::Mkdir {
            loc,
            mode,
            umask: 0,
            xdata,
        },
        IaType::Lnk => Request::Symlink {
            linkpath: w.link,
            loc,
            umask: 0,
            xdata,
        },
        t => Request::Mknod {
            loc,
            mode: t.mode_bits() | mode,
            rdev: if t == IaType::Reg { 0 } else { dev_t(e.rdev) },
            umask: 0,
            xdata,
        },
    };
    w.phase = Phase::EntryCreate;
    Ok(Some(Wind::same(w.missing, req)))
}

/// Lists the next sink for names the source lacks, or ends the entry heal.
fn purge_sink<L: AfrLocal>(
    r: &mut Replicate<'_>,
    w: &mut HealWork,
    cx: &mut Ctx<'_, '_, L>,
    frame: FrameRef,
    node: usize,
) -> Result<Option<Wind>, CallError> {
    cx.set_request_len(frame, w.base)?;
    let Some(s) = lowest(w.purge_left, r.n) else {
        kind_done(w);
        return match release(w, node) {
            Some(x) => Ok(Some(x)),
            None => next_kind(r, w, cx, frame, node),
        };
    };
    w.psink = s;
    w.d_off = 0;
    let room = cx.scratch(frame)?.0.len().min(CHUNK);
    w.phase = Phase::PurgeRead;
    Ok(Some(Wind::same(
        bit(s),
        Request::Readdirp {
            fd: hfd(node, s),
            size: room as u32,
            offset: 0,
        },
    )))
}

/// Asks the source about the sink's next entry.
fn purge_next<L: AfrLocal>(
    r: &mut Replicate<'_>,
    w: &mut HealWork,
    cx: &mut Ctx<'_, '_, L>,
    frame: FrameRef,
    node: usize,
) -> Result<Option<Wind>, CallError> {
    cx.set_request_len(frame, w.mark + w.entries.len as usize)?;
    let Some((attr, name)) = next_entry(w, cx, frame)? else {
        cx.set_request_len(frame, w.base)?;
        let room = cx.scratch(frame)?.0.len().min(CHUNK);
        w.phase = Phase::PurgeRead;
        return Ok(Some(Wind::same(
            bit(w.psink),
            Request::Readdirp {
                fd: hfd(node, w.psink),
                size: room as u32,
                offset: w.d_off,
            },
        )));
    };
    let _ = r;
    w.entry = attr;
    w.ename = name;
    w.missing = 0;
    w.phase = Phase::PurgeLookup;
    Ok(Some(Wind::same(
        bit(w.src),
        Request::Lookup {
            loc: entry_loc(w.gfid, name),
            xdata: Xdata::default(),
        },
    )))
}

/// Subtracts, on every child, the values read for the counters healed.
fn undo<L: AfrLocal>(
    r: &mut Replicate<'_>,
    w: &mut HealWork,
    cx: &mut Ctx<'_, '_, L>,
    frame: FrameRef,
) -> Result<Option<Wind>, CallError> {
    cx.set_request_len(frame, w.base)?;
    w.phase = Phase::Undo;
    let healed = w.healed;
    let keep = |c: [i32; 3]| {
        let mut out = [0i32; 3];
        for k in Kind::ALL {
            if healed & (1 << k.index()) != 0 {
                if let (Some(o), Some(v)) = (out.get_mut(k.index()), c.get(k.index())) {
                    *o = v.wrapping_neg();
                }
            }
        }
        out
    };
    let mut wi = Wind {
        to: 0,
        req: [None; MAX_CHILDREN],
    };
    for i in 0..r.n {
        let row = w.mx.pending.get(i).copied().unwrap_or_default();
        let dirty = keep(w.mx.dirty.get(i).copied().unwrap_or_default());
        let pending = |j: usize| keep(row.get(j).copied().unwrap_or_default());
        if (0..r.n).all(|j| pending(j) == [0; 3]) && dirty == [0; 3] {
            continue;
        }
        let dict = r.push_dict(cx, frame, &pending, dirty, true)?;
        wi.to |= bit(i);
        if let Some(q) = wi.req.get_mut(i) {
            *q = Some(Request::Xattrop {
                loc: by_gfid(w.gfid),
                flags: flags::ADD_ARRAY,
                dict,
            });
        }
    }
    if wi.to == 0 {
        conclude(r, w, cx, frame)?;
        return Ok(None);
    }
    Ok(Some(wi))
}

/// Ends the heal: the file's slot is freed when everything healed and nothing was blamed
/// meanwhile; otherwise it waits for its next try. The root frame unwinds.
fn conclude<L: AfrLocal>(
    r: &mut Replicate<'_>,
    w: &mut HealWork,
    cx: &mut Ctx<'_, '_, L>,
    frame: FrameRef,
) -> Result<(), CallError> {
    let now = cx.now();
    let ok = !w.failed && w.skipped == 0;
    if let Some(f) = r.t.files.get_mut(w.slot) {
        if f.gfid == w.gfid {
            f.healing = false;
            if ok && f.gen == w.gen {
                *f = Default::default();
            } else if ok {
                // Blamed again while healing: go again at once.
                f.due = 0;
            } else {
                f.due = now.saturating_add(RETRY_NS << f.backoff.min(MAX_BACKOFF));
                f.backoff = f.backoff.saturating_add(1).min(MAX_BACKOFF);
                // What the changelog said is what reads must avoid now.
                for k in Kind::ALL {
                    if w.healed & (1 << k.index()) != 0 {
                        if let Some(s) = f.sinks.get_mut(k.index()) {
                            *s = 0;
                        }
                    }
                }
            }
        }
    }
    let failed = !ok;
    w.busy = false;
    w.phase = Phase::Lookup;
    cx.set_request_len(frame, w.base)?;
    cx.take_local(frame)?;
    let reply = if failed {
        Reply::error(errno::EIO)
    } else {
        Reply::ok(0, Body::Empty)
    };
    cx.unwind(frame, reply)
}

/// Ends the heal from outside a step (nothing could be wound at its start).
fn end<L: AfrLocal>(
    r: &mut Replicate<'_>,
    cx: &mut Ctx<'_, '_, L>,
    frame: FrameRef,
    failed: bool,
) -> Result<(), CallError> {
    with(r, cx, frame, |r, w, cx| {
        w.failed |= failed;
        conclude(r, w, cx, frame)
    })
}
