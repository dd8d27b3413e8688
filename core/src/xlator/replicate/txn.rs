//! Write transactions (afr-transaction.c, translators.md §5.4): pre-op, the fop on every
//! child taking part, post-op; see the module doc of [`super`] for the rules. A create,
//! mknod, mkdir or symlink without a `gfid-req` first runs on one child, whose new gfid the
//! others are then asked for, so every copy has the same gfid.

use super::changelog::{all, bit, one, Kind, Mask};
use super::fan::{lowest, Count};
use super::{finish, put, reply_gfid, AfrLocal, Replicate, State};
use crate::xlator::args::{errno, Body, Fd, Loc, Reply, Request, Span, Xdata};
use crate::xlator::engine::{CallError, Ctx, Unwound};
use crate::xlator::frame::FrameRef;
use crate::xlator::iatt::Gfid;
use crate::xlator::xattrop::flags;

const O_TRUNC: i32 = 0o1000;

/// Where a transaction's changelog lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Target {
    /// The open fd's file.
    Fd(Fd),
    /// The file the loc names.
    Loc(Loc),
    /// The parent directory (entry fops); rename's second parent when it differs.
    Parents(Loc, Option<Loc>),
    /// Nowhere (an entry fop whose parent cannot be named): no changelog.
    None,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    PreOp,
    /// The fop on one child, to learn the gfid the others must take.
    First,
    Fop,
    PostOp,
}

/// A transaction in flight.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Txn {
    req: Request,
    kind: Kind,
    phase: Phase,
    c: Count,
    /// The children taking part (their pre-op succeeded).
    part: Mask,
    /// The children that missed the change: down, not open, or failed.
    failed: Mask,
    dirtied: bool,
    target: Target,
    best: Option<(u8, Reply)>,
    /// The file (or parent) the changelog is on, for the file table; and rename's other.
    gfid: Gfid,
    gfid2: Gfid,
}

/// The counter a fop's transaction moves, if it is one.
pub(super) fn kind_of(req: &Request) -> Option<Kind> {
    use Request as R;
    match req {
        R::Writev { .. } | R::Truncate { .. } | R::Ftruncate { .. } => Some(Kind::Data),
        R::Open { flags, .. } if flags & O_TRUNC != 0 => Some(Kind::Data),
        R::Setattr { .. }
        | R::Fsetattr { .. }
        | R::Setxattr { .. }
        | R::Fsetxattr { .. }
        | R::Removexattr { .. }
        | R::Fremovexattr { .. } => Some(Kind::Metadata),
        R::Create { .. }
        | R::Mknod { .. }
        | R::Mkdir { .. }
        | R::Symlink { .. }
        | R::Link { .. }
        | R::Unlink { .. }
        | R::Rmdir { .. }
        | R::Rename { .. } => Some(Kind::Entry),
        _ => None,
    }
}

/// The parent directory of `loc`: by gfid when known, else by the path's directory part.
fn parent_of<L: AfrLocal>(cx: &Ctx<'_, '_, L>, frame: FrameRef, loc: &Loc) -> Option<Loc> {
    if !loc.pargfid.is_null() {
        return Some(Loc {
            gfid: loc.pargfid,
            ..Loc::default()
        });
    }
    let path = cx.bytes(frame, loc.path).ok()?;
    let trimmed = path.strip_suffix(b"/").unwrap_or(path);
    let cut = trimmed.iter().rposition(|&c| c == b'/')?;
    // "/name" has the root as its parent: the path's leading slash alone.
    let len = cut.max(1) as u32;
    Some(Loc {
        path: Span {
            off: loc.path.off,
            len,
        },
        ..Loc::default()
    })
}

/// Whether `req` makes a new object and names no gfid for it.
fn needs_gfid(req: &Request) -> bool {
    match req {
        Request::Create { xdata, .. }
        | Request::Mknod { xdata, .. }
        | Request::Mkdir { xdata, .. }
        | Request::Symlink { xdata, .. } => xdata.gfid_req.is_none(),
        _ => false,
    }
}

fn with_gfid(req: Request, g: Gfid) -> Request {
    let x = Xdata { gfid_req: Some(g) };
    match req {
        Request::Create {
            loc,
            flags,
            mode,
            umask,
            fd,
            ..
        } => Request::Create {
            loc,
            flags,
            mode,
            umask,
            fd,
            xdata: x,
        },
        Request::Mknod {
            loc,
            mode,
            rdev,
            umask,
            ..
        } => Request::Mknod {
            loc,
            mode,
            rdev,
            umask,
            xdata: x,
        },
        Request::Mkdir {
            loc, mode, umask, ..
        } => Request::Mkdir {
            loc,
            mode,
            umask,
            xdata: x,
        },
        Request::Symlink {
            linkpath,
            loc,
            umask,
            ..
        } => Request::Symlink {
            linkpath,
            loc,
            umask,
            xdata: x,
        },
        r => r,
    }
}

pub(super) fn start<L: AfrLocal>(
    r: &mut Replicate<'_>,
    cx: &mut Ctx<'_, '_, L>,
    frame: FrameRef,
    req: Request,
) -> Result<(), CallError> {
    let Some(kind) = kind_of(&req) else {
        return finish(r, cx, frame, Reply::error(errno::EIO));
    };
    let (target, gfid, gfid2, mut part) = if let Request::Rename { oldloc, newloc } = req {
        let (a, b) = (parent_of(cx, frame, &oldloc), parent_of(cx, frame, &newloc));
        let t = match (a, b) {
            (Some(a), Some(b)) if a == b => Target::Parents(a, None),
            (Some(a), b) => Target::Parents(a, b),
            (None, _) => Target::None,
        };
        (t, oldloc.pargfid, newloc.pargfid, r.up)
    } else if kind == Kind::Entry {
        let loc = match req {
            Request::Link { newloc, .. } => newloc,
            _ => req.loc().copied().unwrap_or_default(),
        };
        let t = parent_of(cx, frame, &loc).map_or(Target::None, |p| Target::Parents(p, None));
        (t, loc.pargfid, Gfid::NULL, r.up)
    } else {
        match (req.loc(), req.fd()) {
            (_, Some(fd)) if !matches!(req, Request::Open { .. }) => {
                (Target::Fd(fd), r.fd_gfid(fd), Gfid::NULL, r.fd_children(fd))
            }
            (Some(loc), _) => (Target::Loc(*loc), loc.gfid, Gfid::NULL, r.up),
            _ => (Target::None, Gfid::NULL, Gfid::NULL, r.up),
        }
    };
    // While a heal of this file copies to its sinks, the change skips them (they stay blamed).
    if let Some(w) = r.t.work.as_ref() {
        part &= !w.excluded(&gfid, kind);
    }
    if part == 0 {
        let e = if r.up == 0 {
            errno::ENOTCONN
        } else {
            errno::EIO
        };
        return finish(r, cx, frame, Reply::error(e));
    }
    let everyone = part == all(r.n);
    let changelog = target != Target::None;
    let dirtied = changelog && (kind == Kind::Data || !(r.optimistic && everyone));
    let mut s = Txn {
        req,
        kind,
        phase: Phase::PreOp,
        c: Count::default(),
        part,
        failed: all(r.n) & !part,
        dirtied,
        target,
        best: None,
        gfid,
        gfid2,
    };
    if !dirtied {
        return fop(r, cx, frame, s);
    }
    let dict = r.push_dict(cx, frame, &|_| [0; 3], one(kind, 1), false)?;
    s.c = changelog_wind(r, cx, frame, &s, s.part, dict);
    pre_op_checked(r, cx, frame, s)
}

/// Winds the changelog xattrop with `dict` to `to` (twice per child for rename's two
/// parents, the second with sub-cookie 1).
fn changelog_wind<L: AfrLocal>(
    r: &Replicate<'_>,
    cx: &mut Ctx<'_, '_, L>,
    frame: FrameRef,
    s: &Txn,
    to: Mask,
    dict: Span,
) -> Count {
    let xattrop = |loc: Loc| Request::Xattrop {
        loc,
        flags: flags::ADD_ARRAY,
        dict,
    };
    let (first, second) = match s.target {
        Target::Fd(fd) => (
            Request::Fxattrop {
                fd,
                flags: flags::ADD_ARRAY,
                dict,
            },
            None,
        ),
        Target::Loc(l) => (xattrop(l), None),
        Target::Parents(a, b) => (xattrop(a), b.map(xattrop)),
        Target::None => return Count::default(),
    };
    let (w1, ref1, e1) = r.wind_all(cx, frame, to, 0, &mut |_| first);
    let mut c = Count::start(w1, ref1, e1);
    if let Some(req) = second {
        let (w2, ref2, e2) = r.wind_all(cx, frame, to, 1, &mut |_| req);
        c.pending += w2;
        c.failed |= ref2;
        if ref2 != 0 {
            c.errno = e2;
        }
    }
    c
}

/// After the pre-op was wound: a child that refused it leaves the transaction.
fn pre_op_checked<L: AfrLocal>(
    r: &mut Replicate<'_>,
    cx: &mut Ctx<'_, '_, L>,
    frame: FrameRef,
    mut s: Txn,
) -> Result<(), CallError> {
    if s.c.pending > 0 {
        return put(r, cx, frame, State::Txn(s));
    }
    s.part &= !s.c.failed;
    s.failed |= s.c.failed;
    if s.part == 0 {
        return finish(r, cx, frame, Reply::error(s.c.error()));
    }
    fop(r, cx, frame, s)
}

/// Winds the fop itself.
fn fop<L: AfrLocal>(
    r: &mut Replicate<'_>,
    cx: &mut Ctx<'_, '_, L>,
    frame: FrameRef,
    mut s: Txn,
) -> Result<(), CallError> {
    loop {
        let first = needs_gfid(&s.req);
        let to = if first {
            lowest(s.part, r.n).map_or(0, bit)
        } else {
            s.part
        };
        s.phase = if first { Phase::First } else { Phase::Fop };
        let req = s.req;
        let (wound, refused, err) = r.wind_all(cx, frame, to, 0, &mut |_| req);
        s.c = Count::start(wound, refused, err);
        s.failed |= refused;
        if wound > 0 {
            return put(r, cx, frame, State::Txn(s));
        }
        s.part &= !refused;
        if !first || s.part == 0 {
            return fop_done(r, cx, frame, s);
        }
    }
}

pub(super) fn unwound<L: AfrLocal>(
    r: &mut Replicate<'_>,
    cx: &mut Ctx<'_, '_, L>,
    frame: FrameRef,
    mut s: Txn,
    pos: usize,
    from: Unwound,
) -> Result<(), CallError> {
    let reply = from.reply;
    match s.phase {
        Phase::PreOp => {
            s.c.record(pos, &reply);
            pre_op_checked(r, cx, frame, s)
        }
        Phase::First => {
            s.c.record(pos, &reply);
            if reply.op_ret < 0 {
                s.failed |= bit(pos);
                s.part &= !bit(pos);
                if s.part == 0 {
                    return finish(r, cx, frame, reply);
                }
                return fop(r, cx, frame, s);
            }
            s.best = Some((pos as u8, reply));
            s.req = with_gfid(s.req, reply_gfid(&reply));
            let rest = s.part & !bit(pos);
            let req = s.req;
            let (wound, refused, err) = r.wind_all(cx, frame, rest, 0, &mut |_| req);
            s.c = Count::start(wound, refused, err);
            s.c.ok = bit(pos);
            s.failed |= refused;
            s.phase = Phase::Fop;
            if wound > 0 {
                return put(r, cx, frame, State::Txn(s));
            }
            fop_done(r, cx, frame, s)
        }
        Phase::Fop => {
            if reply.op_ret >= 0 {
                let stale = r.t.sinks(&s.gfid, &[s.kind.index()]);
                let better = match s.best {
                    None => true,
                    Some((p, _)) => {
                        let (p, sp) = (usize::from(p), super::has(stale, usize::from(p)));
                        (sp && !super::has(stale, pos)) || (sp == super::has(stale, pos) && pos < p)
                    }
                };
                if better {
                    s.best = Some((pos as u8, reply));
                }
            } else {
                s.failed |= bit(pos);
            }
            if !s.c.record(pos, &reply) {
                return put(r, cx, frame, State::Txn(s));
            }
            fop_done(r, cx, frame, s)
        }
        Phase::PostOp => {
            if !s.c.record(pos, &reply) {
                return put(r, cx, frame, State::Txn(s));
            }
            done(r, cx, frame, s)
        }
    }
}

/// The fop answered everywhere: post-op on the children where it succeeded.
fn fop_done<L: AfrLocal>(
    r: &mut Replicate<'_>,
    cx: &mut Ctx<'_, '_, L>,
    frame: FrameRef,
    mut s: Txn,
) -> Result<(), CallError> {
    let survivors = s.part & !s.failed;
    if survivors == 0 || s.best.is_none() {
        // Failed everywhere: no post-op; a dirty mark stays for the heal to judge.
        return finish(r, cx, frame, Reply::error(s.c.error()));
    }
    if s.failed == 0 && !s.dirtied || s.target == Target::None {
        return done(r, cx, frame, s);
    }
    let failed = s.failed;
    let kind = s.kind;
    let pending = move |p: usize| {
        if super::has(failed, p) {
            one(kind, 1)
        } else {
            [0; 3]
        }
    };
    let dirty = if s.dirtied { one(kind, -1) } else { [0; 3] };
    let dict = match r.push_dict(cx, frame, &pending, dirty, false) {
        Ok(d) => d,
        // No room for the post-op: the change is done, the dirty mark tells the heal.
        Err(_) => return done(r, cx, frame, s),
    };
    s.phase = Phase::PostOp;
    s.c = changelog_wind(r, cx, frame, &s, survivors, dict);
    if s.c.pending > 0 {
        return put(r, cx, frame, State::Txn(s));
    }
    done(r, cx, frame, s)
}

/// The transaction is over: note the blame and the new fd, answer.
fn done<L: AfrLocal>(
    r: &mut Replicate<'_>,
    cx: &mut Ctx<'_, '_, L>,
    frame: FrameRef,
    s: Txn,
) -> Result<(), CallError> {
    let Some((_, reply)) = s.best else {
        return finish(r, cx, frame, Reply::error(s.c.error()));
    };
    let ok = s.part & !s.failed;
    let (g1, g2) = match (s.kind, reply.body) {
        (Kind::Entry, Body::Entry { postparent, .. } | Body::Parent { postparent, .. }) => {
            (or(s.gfid, postparent.gfid), Gfid::NULL)
        }
        (
            Kind::Entry,
            Body::Rename {
                postoldparent,
                postnewparent,
                ..
            },
        ) => (
            or(s.gfid, postoldparent.gfid),
            or(s.gfid2, postnewparent.gfid),
        ),
        (Kind::Entry, _) => (s.gfid, s.gfid2),
        _ => (or(s.gfid, reply_gfid(&reply)), Gfid::NULL),
    };
    if s.failed != 0 {
        r.t.blame(&g1, s.kind.index(), s.failed);
        if g2 != g1 {
            r.t.blame(&g2, s.kind.index(), s.failed);
        }
    }
    match (s.req, reply.body) {
        (
            Request::Create { fd, .. },
            Body::Entry {
                inode, fd: Some(_), ..
            },
        ) => r.t.opened(fd, inode, ok),
        (Request::Open { loc, fd, .. }, _) => r.t.opened(fd, loc.gfid, ok),
        _ => {}
    }
    finish(r, cx, frame, reply)
}

fn or(a: Gfid, b: Gfid) -> Gfid {
    if a.is_null() {
        b
    } else {
        a
    }
}
