//! Fops served by one child (AFR's read transactions): stat, fstat, access, readlink, readv,
//! getxattr, fgetxattr, readdir and readdirp go to the read child among the readable ones
//! (up, open on that child, not stale for what the fop reads); a failure that says the child
//! cannot answer (ENOTCONN, EIO, EBADF, ESTALE, ENOENT) is tried on the next readable child.
//! A directory listing stays on the child that gave its first entries, whose cookies the
//! later readdirs carry.

use super::changelog::{bit, Mask};
use super::{finish, put, AfrLocal, Replicate, State};
use crate::xlator::args::{errno, Reply, Request};
use crate::xlator::engine::{CallError, Ctx, Unwound};
use crate::xlator::frame::FrameRef;
use crate::xlator::iatt::Gfid;

/// A read in flight.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Read {
    req: Request,
    gfid: Gfid,
    readable: Mask,
    tried: Mask,
    /// A listing continuing on its child: no retry elsewhere.
    pinned: bool,
    pid: i32,
}

/// The counters whose stale children a fop must not read from.
fn kinds(req: &Request) -> &'static [usize] {
    match req {
        Request::Readv { .. } => &[0],
        Request::Readdir { .. } | Request::Readdirp { .. } => &[2],
        Request::Getxattr { .. } | Request::Fgetxattr { .. } | Request::Readlink { .. } => &[1],
        _ => &[0, 1],
    }
}

fn retriable(e: i32) -> bool {
    matches!(
        e,
        errno::ENOTCONN | errno::EIO | errno::EBADF | errno::ESTALE | errno::ENOENT
    )
}

pub(super) fn start<L: AfrLocal>(
    r: &mut Replicate<'_>,
    cx: &mut Ctx<'_, '_, L>,
    frame: FrameRef,
    req: Request,
) -> Result<(), CallError> {
    let (gfid, mut candidates) = match (req.loc(), req.fd()) {
        (Some(loc), _) => (loc.gfid, r.up),
        (None, Some(fd)) => (r.fd_gfid(fd), r.fd_children(fd)),
        _ => (Gfid::NULL, r.up),
    };
    if candidates == 0 {
        return finish(r, cx, frame, Reply::error(errno::ENOTCONN));
    }
    let mut pinned = false;
    match req {
        Request::Readdir { fd, offset, .. } | Request::Readdirp { fd, offset, .. }
            if offset != 0 =>
        {
            if let Some(c) = r.t.fd(fd).and_then(|s| s.readdir) {
                candidates &= bit(usize::from(c));
                pinned = true;
            }
        }
        _ => {}
    }
    if !pinned {
        candidates &= !r.t.sinks(&gfid, kinds(&req));
    }
    if candidates == 0 {
        // Every copy that is up is stale (the good one is down, or a split-brain).
        return finish(r, cx, frame, Reply::error(errno::EIO));
    }
    let pid = cx.creds(frame).map_or(0, |c| c.pid);
    let s = Read {
        req,
        gfid,
        readable: candidates,
        tried: 0,
        pinned,
        pid,
    };
    next(r, cx, frame, s, errno::EIO)
}

/// Winds to the best untried readable child, or fails with `err` when none is left.
fn next<L: AfrLocal>(
    r: &mut Replicate<'_>,
    cx: &mut Ctx<'_, '_, L>,
    frame: FrameRef,
    mut s: Read,
    err: i32,
) -> Result<(), CallError> {
    loop {
        let left = s.readable & !s.tried;
        let Some(pos) = r.choose(&s.gfid, left, s.pid) else {
            return finish(r, cx, frame, Reply::error(err));
        };
        s.tried |= bit(pos);
        let (wound, _, e) = r.wind_all(cx, frame, bit(pos), 0, &mut |_| s.req);
        if wound == 1 {
            return put(r, cx, frame, State::Read(s));
        }
        if !retriable(e) && e != errno::EAGAIN {
            return finish(r, cx, frame, Reply::error(e));
        }
    }
}

pub(super) fn unwound<L: AfrLocal>(
    r: &mut Replicate<'_>,
    cx: &mut Ctx<'_, '_, L>,
    frame: FrameRef,
    s: Read,
    pos: usize,
    from: Unwound,
) -> Result<(), CallError> {
    let reply = from.reply;
    if reply.op_ret >= 0 {
        if let Request::Readdir { fd, offset: 0, .. } | Request::Readdirp { fd, offset: 0, .. } =
            s.req
        {
            if let Some(st) = r.t.fd_mut(fd) {
                st.readdir = Some(pos as u8);
            }
        }
        return finish(r, cx, frame, reply);
    }
    if s.pinned || !retriable(reply.op_errno) || s.readable & !s.tried == 0 {
        return finish(r, cx, frame, reply);
    }
    next(r, cx, frame, s, reply.op_errno)
}
