//! Lookup (AFR's `afr_lookup` and the heal check it triggers): the lookup goes to every child
//! that is up; then the changelog of the object is fetched from each child that has it, one
//! child at a time (each answer is written into the same reply area), with a zero-valued
//! ADD_ARRAY xattrop, which reads without writing.
//!
//! What it learns goes to the file table: children accused by a child that does not accuse
//! itself are stale; a set dirty counter, copies of different size or owner, or a name that
//! some children have and others lack (its parent's entries then differ) make the object, or
//! the parent, one to examine at the next heal. The answer is a reply of a child that is not
//! stale, looked up again on the read child when the one kept turns out stale; copies with
//! different gfids or types are a split-brain the lookup answers with EIO. A child stale for
//! the parent's entries has no say in whether the name exists.

use super::changelog::{bit, has, Kind, Mask};
use super::fan::{lowest, same_gfid, Count};
use super::{finish, put, reply_bytes, AfrLocal, Replicate, State, MAX_CHILDREN};
use crate::xlator::args::{errno, Body, Loc, Reply, Request};
use crate::xlator::engine::{CallError, Ctx, Unwound};
use crate::xlator::frame::FrameRef;
use crate::xlator::iatt::{Gfid, IaType, Iatt};
use crate::xlator::xattrop::flags;

/// What one child's lookup said.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Seen {
    gfid: Gfid,
    ty: IaType,
    size: u64,
    owner: (u16, u32, u32),
}

/// The lookup reply kept to answer with (the results of `Body::Lookup`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Kept {
    pos: u8,
    inode: Gfid,
    buf: Iatt,
    postparent: Iatt,
}

impl Kept {
    fn reply(&self) -> Reply {
        Reply::ok(
            0,
            Body::Lookup {
                inode: self.inode,
                buf: self.buf,
                postparent: self.postparent,
            },
        )
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Lookup,
    Fetch,
    Again,
}

/// A lookup in flight.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Lookup {
    req: Request,
    phase: Phase,
    c: Count,
    seen: [Seen; MAX_CHILDREN],
    /// A child's postparent gfid (every child that has the name names the same parent).
    parent: Gfid,
    kept: Option<Kept>,
    /// The children whose answer counts (they agree on the object).
    good: Mask,
    /// The children that answered ENOENT.
    missing: Mask,
    /// Fetch: children left to ask.
    left: Mask,
    /// By counter: children accused by a child that does not accuse itself.
    accused: [Mask; 3],
    /// Counters with something set (a dirty mark or an accusation).
    marked: u8,
    gfid: Gfid,
    pid: i32,
}

pub(super) fn start<L: AfrLocal>(
    r: &mut Replicate<'_>,
    cx: &mut Ctx<'_, '_, L>,
    frame: FrameRef,
    req: Request,
) -> Result<(), CallError> {
    if r.up == 0 {
        return finish(r, cx, frame, Reply::error(errno::ENOTCONN));
    }
    let (wound, refused, err) = r.wind_all(cx, frame, r.up, 0, &mut |_| req);
    let s = Lookup {
        req,
        phase: Phase::Lookup,
        c: Count::start(wound, refused, err),
        seen: [Seen::default(); MAX_CHILDREN],
        parent: Gfid::NULL,
        kept: None,
        good: 0,
        missing: 0,
        left: 0,
        accused: [0; 3],
        marked: 0,
        gfid: Gfid::NULL,
        pid: cx.creds(frame).map_or(0, |c| c.pid),
    };
    if wound == 0 {
        return finish(r, cx, frame, Reply::error(s.c.error()));
    }
    put(r, cx, frame, State::Lookup(s))
}

pub(super) fn unwound<L: AfrLocal>(
    r: &mut Replicate<'_>,
    cx: &mut Ctx<'_, '_, L>,
    frame: FrameRef,
    mut s: Lookup,
    pos: usize,
    from: Unwound,
) -> Result<(), CallError> {
    let reply = from.reply;
    match s.phase {
        Phase::Lookup => {
            if let Body::Lookup {
                inode,
                buf,
                postparent,
            } = reply.body
            {
                if let Some(x) = s.seen.get_mut(pos) {
                    *x = Seen {
                        gfid: inode,
                        ty: buf.ty,
                        size: buf.size,
                        owner: (buf.prot, buf.uid, buf.gid),
                    };
                }
                if s.parent.is_null() {
                    s.parent = postparent.gfid;
                }
                let stale = r.t.sinks(&inode, &[0, 1]);
                let keep = match s.kept {
                    None => true,
                    Some(k) => has(stale, usize::from(k.pos)) && !has(stale, pos),
                };
                if keep {
                    s.kept = Some(Kept {
                        pos: pos as u8,
                        inode,
                        buf,
                        postparent,
                    });
                }
            }
            if reply.op_ret < 0 && reply.op_errno == errno::ENOENT {
                s.missing |= bit(pos);
            }
            if !s.c.record(pos, &reply) {
                return put(r, cx, frame, State::Lookup(s));
            }
            looked(r, cx, frame, s)
        }
        Phase::Fetch => {
            if reply.op_ret >= 0 {
                if let Body::Xattr { value } = reply.body {
                    let (pending, dirty) = match reply_bytes(cx, frame, value) {
                        Some(d) => r.read_dict(d),
                        None => ([[0; 3]; MAX_CHILDREN], [0; 3]),
                    };
                    for k in Kind::ALL {
                        let i = k.index();
                        let at = |c: &[i32; 3]| c.get(i).copied().unwrap_or(0);
                        let self_accused = pending.get(pos).is_some_and(|c| at(c) != 0);
                        let mut any = at(&dirty) != 0;
                        for (j, c) in pending.iter().enumerate().take(r.n) {
                            if at(c) != 0 {
                                any = true;
                                if !self_accused {
                                    if let Some(a) = s.accused.get_mut(i) {
                                        *a |= bit(j);
                                    }
                                }
                            }
                        }
                        if any {
                            s.marked |= 1 << i;
                        }
                    }
                }
            }
            fetch_next(r, cx, frame, s)
        }
        Phase::Again => {
            let answer = if reply.op_ret >= 0 {
                reply
            } else {
                s.kept.map_or(reply, |k| k.reply())
            };
            finish(r, cx, frame, answer)
        }
    }
}

/// Every lookup answered: agree on the object, then fetch its changelog.
fn looked<L: AfrLocal>(
    r: &mut Replicate<'_>,
    cx: &mut Ctx<'_, '_, L>,
    frame: FrameRef,
    mut s: Lookup,
) -> Result<(), CallError> {
    let loc = s.req.loc().copied().unwrap_or_default();
    let ok = s.c.ok;
    if ok == 0 {
        return finish(r, cx, frame, Reply::error(s.c.error()));
    }
    let seen = |p: usize| s.seen.get(p).copied().unwrap_or_default();
    // The parent directory, from the request or from any child's postparent.
    let parent = if loc.pargfid.is_null() {
        s.parent
    } else {
        loc.pargfid
    };
    // Children stale for the parent's entries have no say in whether the name exists.
    let say = r.up & !r.t.sinks(&parent, &[Kind::Entry.index()]);
    let have = ok & say;
    let Some(first) = lowest(have, r.n) else {
        // Only stale children have the name: it is gone.
        return finish(r, cx, frame, Reply::error(errno::ENOENT));
    };
    let f = seen(first);
    let split = (0..r.n)
        .filter(|&p| has(have, p))
        .any(|p| !same_gfid(&seen(p).gfid, &f.gfid) || seen(p).ty != f.ty);
    if split {
        return finish(r, cx, frame, Reply::error(errno::EIO));
    }
    if s.missing & say != 0 && !parent.is_null() {
        // Some children lack the name: the parent's entries differ.
        r.t.blame(&parent, Kind::Entry.index(), 0);
    }
    let differ = (0..r.n).filter(|&p| has(have, p)).any(|p| {
        let x = seen(p);
        (f.ty == IaType::Reg && x.size != f.size) || x.owner != f.owner
    });
    s.gfid = f.gfid;
    if differ {
        r.t.blame(&f.gfid, Kind::Data.index(), 0);
        r.t.blame(&f.gfid, Kind::Metadata.index(), 0);
    }
    s.good = have;
    s.left = have;
    s.phase = Phase::Fetch;
    s.c = Count::default();
    fetch_next(r, cx, frame, s)
}

/// Fetches the changelog from the next child left, or decides.
fn fetch_next<L: AfrLocal>(
    r: &mut Replicate<'_>,
    cx: &mut Ctx<'_, '_, L>,
    frame: FrameRef,
    mut s: Lookup,
) -> Result<(), CallError> {
    while let Some(pos) = lowest(s.left, r.n) {
        s.left &= !bit(pos);
        if s.gfid.is_null() {
            break;
        }
        let base = cx.request_len(frame)?;
        // The dict costs request bytes; without room the lookup answers unchecked.
        let Ok(dict) = r.push_dict(cx, frame, &|_| [0; 3], [0; 3], false) else {
            break;
        };
        let loc = Loc {
            gfid: s.gfid,
            ..Loc::default()
        };
        let req = Request::Xattrop {
            loc,
            flags: flags::ADD_ARRAY,
            dict,
        };
        let (wound, _, _) = r.wind_all(cx, frame, bit(pos), 0, &mut |_| req);
        if wound == 1 {
            return put(r, cx, frame, State::Lookup(s));
        }
        cx.set_request_len(frame, base)?;
    }
    decide(r, cx, frame, s)
}

/// The changelogs are in: note what is stale, answer from a good copy.
fn decide<L: AfrLocal>(
    r: &mut Replicate<'_>,
    cx: &mut Ctx<'_, '_, L>,
    frame: FrameRef,
    mut s: Lookup,
) -> Result<(), CallError> {
    for k in Kind::ALL {
        let i = k.index();
        if s.marked & (1 << i) != 0 {
            r.t.blame(&s.gfid, i, s.accused.get(i).copied().unwrap_or(0));
        }
    }
    r.t.touch(&s.gfid);
    let stale = r.t.sinks(&s.gfid, &[0, 1]);
    let readable = s.good & !stale;
    let Some(k) = s.kept else {
        return finish(r, cx, frame, Reply::error(errno::EIO));
    };
    let (kp, kept) = (k.pos, k.reply());
    if has(readable, usize::from(kp)) || readable == 0 {
        return finish(r, cx, frame, kept);
    }
    let Some(rc) = r.choose(&s.gfid, readable, s.pid) else {
        return finish(r, cx, frame, kept);
    };
    let req = s.req;
    let (wound, _, _) = r.wind_all(cx, frame, bit(rc), 0, &mut |_| req);
    if wound == 0 {
        return finish(r, cx, frame, kept);
    }
    s.phase = Phase::Again;
    put(r, cx, frame, State::Lookup(s))
}
