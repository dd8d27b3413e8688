//! Fops wound to every child without a changelog: open and opendir (their fd is noted with
//! the children it opened on), flush, fsync, the lock fops, xattrop from above, statfs (the
//! reply with the least space available, as AFR answers it), release and releasedir (always
//! successful). Also the counting every fan-out shares ([`Count`]).

use super::changelog::{bit, has, Mask};
use super::{finish, pick_errno, put, AfrLocal, Replicate, State};
use crate::xlator::args::{errno, Body, Reply, Request};
use crate::xlator::engine::{CallError, Ctx, Unwound};
use crate::xlator::frame::FrameRef;
use crate::xlator::iatt::Gfid;

/// Replies still awaited in one phase of a fan-out, and how it went.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Count {
    pub(super) pending: u8,
    pub(super) ok: Mask,
    pub(super) failed: Mask,
    pub(super) errno: i32,
}

impl Count {
    /// A phase wound `wound` calls; `refused` could not be wound.
    pub(super) fn start(wound: u8, refused: Mask, err: i32) -> Count {
        Count {
            pending: wound,
            ok: 0,
            failed: refused,
            errno: if refused != 0 { err } else { 0 },
        }
    }

    /// One reply from `pos`; true when it was the last one awaited.
    pub(super) fn record(&mut self, pos: usize, r: &Reply) -> bool {
        self.pending = self.pending.saturating_sub(1);
        if r.op_ret >= 0 {
            self.ok |= bit(pos);
        } else {
            self.failed |= bit(pos);
            self.errno = pick_errno(self.errno, r.op_errno);
        }
        self.pending == 0
    }

    /// The errno of a phase where nothing succeeded.
    pub(super) fn error(&self) -> i32 {
        if self.errno > 0 {
            self.errno
        } else {
            errno::EIO
        }
    }
}

/// A plain fan-out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Fan {
    req: Request,
    c: Count,
    best: Option<(u8, Reply)>,
}

/// Whether `new` (from `pos`) answers better than the kept reply: statfs keeps the least
/// `f_bavail`, the others the first child.
fn better(req: &Request, best: &Option<(u8, Reply)>, pos: usize, new: &Reply) -> bool {
    let Some((bp, b)) = best else {
        return true;
    };
    if let (Request::Statfs { .. }, Body::Statfs { buf: nb }, Body::Statfs { buf: ob }) =
        (req, new.body, b.body)
    {
        return nb.bavail < ob.bavail || (nb.bavail == ob.bavail && pos < usize::from(*bp));
    }
    pos < usize::from(*bp)
}

pub(super) fn start<L: AfrLocal>(
    r: &mut Replicate<'_>,
    cx: &mut Ctx<'_, '_, L>,
    frame: FrameRef,
    req: Request,
) -> Result<(), CallError> {
    let release = matches!(req, Request::Release { .. } | Request::Releasedir { .. });
    let targets = match req.fd() {
        // Release goes wherever the fd was opened, up or not, so no child keeps it.
        Some(fd) if release => r.t.fd(fd).map_or(r.up, |s| s.opened),
        Some(fd) if !matches!(req, Request::Open { .. } | Request::Opendir { .. }) => {
            r.fd_children(fd)
        }
        _ => r.up,
    };
    if targets == 0 {
        if let Some(fd) = req.fd().filter(|_| release) {
            r.t.forget_fd(fd);
            return finish(r, cx, frame, Reply::ok(0, Body::Empty));
        }
        return finish(r, cx, frame, Reply::error(errno::ENOTCONN));
    }
    let (wound, refused, err) = r.wind_all(cx, frame, targets, 0, &mut |_| req);
    let s = Fan {
        req,
        c: Count::start(wound, refused, err),
        best: None,
    };
    if wound == 0 {
        return done(r, cx, frame, s);
    }
    put(r, cx, frame, State::Fan(s))
}

pub(super) fn unwound<L: AfrLocal>(
    r: &mut Replicate<'_>,
    cx: &mut Ctx<'_, '_, L>,
    frame: FrameRef,
    mut s: Fan,
    pos: usize,
    from: Unwound,
) -> Result<(), CallError> {
    if from.reply.op_ret >= 0 && better(&s.req, &s.best, pos, &from.reply) {
        s.best = Some((pos as u8, from.reply));
    }
    if !s.c.record(pos, &from.reply) {
        return put(r, cx, frame, State::Fan(s));
    }
    done(r, cx, frame, s)
}

fn done<L: AfrLocal>(
    r: &mut Replicate<'_>,
    cx: &mut Ctx<'_, '_, L>,
    frame: FrameRef,
    s: Fan,
) -> Result<(), CallError> {
    match s.req {
        Request::Release { fd } | Request::Releasedir { fd } => {
            r.t.forget_fd(fd);
            return finish(r, cx, frame, Reply::ok(0, Body::Empty));
        }
        Request::Open { loc, fd, .. } | Request::Opendir { loc, fd } if s.c.ok != 0 => {
            r.t.opened(fd, loc.gfid, s.c.ok);
            r.t.touch(&loc.gfid);
        }
        _ => {}
    }
    let reply = match s.best {
        Some((_, b)) => b,
        None => Reply::error(s.c.error()),
    };
    finish(r, cx, frame, reply)
}

/// The state a claimed slot holds until its fop stores its own.
pub(super) fn placeholder() -> Fan {
    Fan {
        req: Request::Ipc { op: 0 },
        c: Count::default(),
        best: None,
    }
}

/// The lowest child position in `m`.
pub(super) fn lowest(m: Mask, n: usize) -> Option<usize> {
    (0..n).find(|&p| has(m, p))
}

/// Whether a fan-out's children all agree on `gfid` (null gfids are not compared).
pub(super) fn same_gfid(a: &Gfid, b: &Gfid) -> bool {
    a.is_null() || b.is_null() || a == b
}
