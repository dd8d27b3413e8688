//! A distribute fop in flight: its frame-local state ([`DhtCall`]), the steps it goes through
//! (each a wind to a set of subvolumes, all at once or one after the other), and how each
//! answer is taken in. A step's answers land in per-subvolume [`Slot`]s; the fop moves on
//! once the last is in (`flow`). Byte results (xattr values, listings) are copied out as they
//! arrive, since every subvolume writes into the same reply area.

use super::super::args::{errno, Body, Fd, Loc, Reply, Request, Span};
use super::super::ctx::Ctx;
use super::super::engine::{CallError, Unwound};
use super::super::frame::FrameRef;
use super::super::iatt::{Gfid, IaType, Iatt, Statvfs};
use super::layout::{self, Layout, HASH_INVALID, SUBVOLS_MAX};
use super::{DhtLocal, Distribute};

/// No subvolume.
pub(super) const NONE: u8 = u8::MAX;
/// A slot whose answer has not come.
const WAITING: i32 = -1;

/// What a lookup found on one subvolume.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) enum What {
    #[default]
    Nothing,
    Dir,
    File,
    /// A linkto file (mode `---------T`).
    Linkto,
}

/// One subvolume's answer to the current step.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Slot {
    pub(super) asked: bool,
    /// 0 on success, the errno on failure, [`WAITING`] until it comes.
    pub(super) errno: i32,
    /// Lookups: what was found. Layout reads: `Dir` when the xattr was a range (kept in
    /// the call's layout).
    pub(super) what: What,
    /// Linkto reads: the position named.
    pub(super) target: u8,
}

impl Slot {
    pub(super) fn ok(&self) -> bool {
        self.asked && self.errno == 0
    }
    pub(super) fn failed(&self) -> bool {
        self.asked && self.errno > 0
    }
}

/// The steps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Phase {
    Start,
    /// Getxattr of the layout on each subvolume, one after the other.
    LayoutGet,
    /// Statfs for brick weights before assigning ranges.
    LayoutStatfs,
    /// Setxattr of each subvolume's range.
    LayoutSet,
    LookupHashed,
    LinktoGet,
    LookupCached,
    LookupAll,
    DirAll,
    /// The fop itself, to its subvolume(s).
    Fop,
    MkdirHashed,
    MkdirMds,
    MkdirRest,
    /// Emptiness check (rmdir, rename over a directory): opendir, readdirp, releasedir on
    /// one subvolume after the other.
    CheckOpen,
    CheckRead,
    CheckRelease,
    /// Rename of the data on its subvolume, then the linkto bookkeeping.
    RenData,
    RenUnlinkDst,
    RenLinkto,
    RenLinktoXattr,
    RenUnlinkOld,
    RenUnlinkDstData,
    LinkData,
    LinkLinkto,
    LinkLinktoXattr,
    Readdir,
    /// A step could not be set up while answers were outstanding: fail once they are in.
    Fail,
}

/// What follows a layout load.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Cont {
    LookupHashed,
    DirFound,
    Create,
    Mkdir,
    MkdirDone,
    LinkDst,
}

/// What a lookup settled on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Found {
    pub(super) what: What,
    /// The hashed subvolume of the name (NONE when nameless or no layout).
    pub(super) hashed: u8,
    /// The subvolume with the data.
    pub(super) cached: u8,
    pub(super) gfid: Gfid,
    /// Something (data or linkto) answered on the hashed subvolume.
    pub(super) at_hashed: bool,
    /// Why nothing was found.
    pub(super) errno: i32,
}

/// A listing step's result after filtering.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Listed {
    /// Entries the child returned.
    pub(super) seen: i32,
    /// Entries kept.
    pub(super) count: i32,
    /// Where the kept records are.
    pub(super) data: Span,
    /// The child's `d_off` of its last entry.
    pub(super) last: u64,
    /// Something other than `.`/`..` was seen (emptiness checks).
    pub(super) nonempty: bool,
    /// The first entry kept does not fit the size asked.
    pub(super) too_small: bool,
}

/// The frame-local state of a distribute fop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DhtCall {
    pub(super) req: Request,
    pub(super) phase: Phase,
    pub(super) cont: Cont,
    /// Which of a fop's lookups is running (rename: 0 source, 1 destination).
    pub(super) stage: u8,
    pub(super) pending: u8,
    /// Subvolumes still to ask in a one-after-the-other step (the layout read).
    pub(super) seq: u16,
    pub(super) slots: [Slot; SUBVOLS_MAX],
    /// The reply being built (a lookup's, the fop's).
    pub(super) reply: Reply,
    /// The position the kept reply came from.
    pub(super) from: u8,
    pub(super) kept: What,
    /// The loc being looked up.
    pub(super) loc: Loc,
    /// The directory whose layout is loaded.
    pub(super) dir: Loc,
    pub(super) layout: Layout,
    /// The layout was read with a subvolume down (not healed, not remembered).
    pub(super) partial: bool,
    pub(super) hashed: u8,
    pub(super) found: Found,
    /// Rename/link: the source and destination.
    pub(super) src: Found,
    pub(super) dst: Found,
    /// Subvolumes a step concerns (layout participants, what is left to check).
    pub(super) mask: u16,
    /// Internal fd of an emptiness check, and the offset reached.
    pub(super) fd: Fd,
    pub(super) off: u64,
    /// The subvolume a one-at-a-time walk is on.
    pub(super) cur: u8,
    /// An emptiness check's verdict (0: empty so far).
    pub(super) check_err: i32,
    pub(super) listed: Listed,
    /// Xattr names pushed into the request bytes (empty until needed).
    pub(super) names: [Span; 3],
}

impl DhtCall {
    pub(super) fn new(req: Request) -> DhtCall {
        DhtCall {
            req,
            phase: Phase::Start,
            cont: Cont::LookupHashed,
            stage: 0,
            pending: 0,
            seq: 0,
            slots: [Slot::default(); SUBVOLS_MAX],
            reply: Reply::error(errno::EIO),
            from: NONE,
            kept: What::Nothing,
            loc: Loc::default(),
            dir: Loc::default(),
            layout: Layout::default(),
            partial: false,
            hashed: NONE,
            found: Found::default(),
            src: Found::default(),
            dst: Found::default(),
            mask: 0,
            fd: Fd(0),
            off: 0,
            cur: NONE,
            check_err: 0,
            listed: Listed::default(),
            names: [Span::EMPTY; 3],
        }
    }

    /// Forgets the kept reply.
    pub(super) fn clear_reply(&mut self) {
        self.reply = Reply::error(errno::EIO);
        self.from = NONE;
        self.kept = What::Nothing;
    }

    pub(super) fn slot(&self, k: usize) -> Slot {
        self.slots.get(k).copied().unwrap_or_default()
    }

    /// Bit k: slot k succeeded.
    pub(super) fn ok_mask(&self) -> u16 {
        bits(self.slots.iter().map(Slot::ok))
    }

    /// The errno of the lowest failed slot, if any failed.
    pub(super) fn first_error(&self) -> Option<i32> {
        self.slots.iter().find(|s| s.failed()).map(|s| s.errno)
    }
}

/// A mask of the positions where `it` yields true.
pub(super) fn bits(it: impl Iterator<Item = bool>) -> u16 {
    it.take(SUBVOLS_MAX)
        .enumerate()
        .fold(0, |m, (k, b)| if b { m | 1 << k } else { m })
}

/// Positions of the set bits, lowest first.
pub(super) fn positions(mask: u16) -> impl Iterator<Item = usize> {
    (0..SUBVOLS_MAX).filter(move |&k| mask & (1 << k) != 0)
}

/// The lowest set position.
pub(super) fn lowest(mask: u16) -> Option<usize> {
    positions(mask).next()
}

/// What a step leaves to do.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub(super) enum Out {
    /// Answers are outstanding (or the next step is ready to be taken).
    Wait,
    /// The fop is done.
    Unwind(Reply),
}

/// Whether `buf` is a linkto file's attributes: a regular file whose mode is the sticky bit
/// alone (`IS_DHT_LINKFILE_MODE`).
pub(super) fn is_linkto(buf: &Iatt) -> bool {
    buf.ty == IaType::Reg && buf.prot & 0o7777 == 0o1000
}

/// `dht_iatt_merge`: a directory's attributes over its subvolumes.
pub(super) fn merge_iatt(to: &mut Iatt, from: &Iatt) {
    let (uid, gid) = (to.uid.max(from.uid), to.gid.max(from.gid));
    let later = |a: (i64, u32), b: (i64, u32)| if b > a { b } else { a };
    let at = later((to.atime, to.atime_nsec), (from.atime, from.atime_nsec));
    let mt = later((to.mtime, to.mtime_nsec), (from.mtime, from.mtime_nsec));
    let ct = later((to.ctime, to.ctime_nsec), (from.ctime, from.ctime_nsec));
    let (size, blocks) = (
        to.size.wrapping_add(from.size),
        to.blocks.wrapping_add(from.blocks),
    );
    *to = Iatt {
        size,
        blocks,
        uid,
        gid,
        ..*from
    };
    (to.atime, to.atime_nsec) = at;
    (to.mtime, to.mtime_nsec) = mt;
    (to.ctime, to.ctime_nsec) = ct;
    fix_dir(to);
}

/// DHT reports a directory as 4096 bytes in 8 blocks (`DHT_DIR_STAT_SIZE`/`_BLOCKS`).
pub(super) fn fix_dir(a: &mut Iatt) {
    if a.ty == IaType::Dir {
        a.size = 4096;
        a.blocks = 8;
    }
}

/// The bytes a reply span names: in the reply area, or in the request bytes.
pub(super) fn reply_bytes<'c, L: Default>(
    cx: &'c mut Ctx<'_, '_, L>,
    frame: FrameRef,
    span: Span,
) -> Option<&'c [u8]> {
    let (req, area, base) = cx.split(frame).ok()?;
    if span.off >= base {
        Span {
            off: span.off - base,
            len: span.len,
        }
        .get(area)
    } else {
        span.get(req)
    }
}

impl Distribute {
    /// Position k's graph node.
    pub(super) fn node(&self, k: usize) -> usize {
        usize::from(self.nodes.get(k).copied().unwrap_or(0))
    }

    /// Starts a step: winds `build(k)` to every position of `targets` at once.
    pub(super) fn issue<L: DhtLocal>(
        &self,
        cx: &mut Ctx<'_, '_, L>,
        frame: FrameRef,
        st: &mut DhtCall,
        phase: Phase,
        targets: u16,
        build: impl Fn(usize) -> Request,
    ) -> Out {
        self.reset(st, phase, targets);
        for k in positions(targets & layout::mask(self.subvolumes())) {
            match cx.wind_cookie(frame, self.node(k), k as u64, build(k)) {
                Ok(_) => st.pending += 1,
                Err(e) => st.slots[k].errno = e.errno(),
            }
        }
        Out::Wait
    }

    /// Starts reading `st.dir`'s layout xattr from the positions of `targets`, one after the
    /// other (each answer's value is in the shared reply area until the next one).
    pub(super) fn issue_seq(&self, st: &mut DhtCall, phase: Phase, targets: u16) -> Out {
        self.reset(st, phase, targets);
        st.seq = targets & layout::mask(self.subvolumes());
        st.layout = Layout::empty(self.subvolumes());
        st.partial = false;
        Out::Wait
    }

    fn reset(&self, st: &mut DhtCall, phase: Phase, targets: u16) {
        st.phase = phase;
        st.pending = 0;
        st.seq = 0;
        let n = self.subvolumes();
        for (k, s) in st.slots.iter_mut().enumerate() {
            let asked = k < n && targets & (1 << k) != 0;
            *s = Slot {
                asked,
                errno: if asked { WAITING } else { 0 },
                target: NONE,
                ..Slot::default()
            };
        }
    }

    /// Winds a one-after-the-other step to its next subvolume.
    pub(super) fn next_seq<L: DhtLocal>(
        &self,
        cx: &mut Ctx<'_, '_, L>,
        frame: FrameRef,
        st: &mut DhtCall,
    ) {
        let Some(k) = lowest(st.seq) else {
            st.seq = 0;
            return;
        };
        st.seq &= !(1 << k);
        let req = Request::Getxattr {
            loc: st.dir,
            name: st.names[0],
        };
        match cx.wind_cookie(frame, self.node(k), k as u64, req) {
            Ok(_) => st.pending += 1,
            Err(e) => st.slots[k].errno = e.errno(),
        }
    }

    /// Takes in one answer.
    pub(super) fn answered<L: DhtLocal>(
        &mut self,
        cx: &mut Ctx<'_, '_, L>,
        frame: FrameRef,
        st: &mut DhtCall,
        from: Unwound,
    ) -> Result<Out, CallError> {
        st.pending = st.pending.saturating_sub(1);
        let k = usize::try_from(from.cookie).unwrap_or(usize::MAX);
        let Some(slot) = st.slots.get_mut(k).filter(|s| s.asked) else {
            return Ok(Out::Wait);
        };
        let r = from.reply;
        slot.errno = if r.op_ret < 0 { r.op_errno.max(1) } else { 0 };
        self.absorb(cx, frame, st, k, &r);
        Ok(Out::Wait)
    }

    /// Keeps what the step needs from position k's successful answer.
    fn absorb<L: DhtLocal>(
        &mut self,
        cx: &mut Ctx<'_, '_, L>,
        frame: FrameRef,
        st: &mut DhtCall,
        k: usize,
        r: &Reply,
    ) {
        let ok = r.op_ret >= 0;
        match st.phase {
            Phase::LayoutGet => {
                let Body::Xattr { value } = r.body else {
                    return;
                };
                let Some((commit, ty, range)) =
                    reply_bytes(cx, frame, value).and_then(layout::decode)
                else {
                    return;
                };
                // dht_layout_merge: the commit hash they share, else "invalid".
                let l = &mut st.layout;
                l.set(k, range);
                l.hash_type = ty;
                if l.commit == 0 {
                    l.commit = commit;
                } else if l.commit != commit {
                    l.commit = HASH_INVALID;
                }
                st.slots[k].what = What::Dir;
            }
            Phase::LinktoGet => {
                if let (true, Body::Xattr { value }) = (ok, r.body) {
                    let name = reply_bytes(cx, frame, value).unwrap_or_default();
                    let name = name.strip_suffix(&[0]).unwrap_or(name);
                    st.slots[k].target = (0..self.subvolumes())
                        .find(|&t| self.subvolume_name(t) == Some(name))
                        .map_or(NONE, |t| t as u8);
                }
            }
            Phase::LayoutStatfs => {
                if let (true, Body::Statfs { buf }) = (ok, r.body) {
                    self.chunks[k] = Some(layout::chunks(&buf));
                }
            }
            Phase::LookupHashed | Phase::LookupCached | Phase::LookupAll | Phase::DirAll => {
                if let (true, Body::Lookup { buf, .. }) = (ok, r.body) {
                    let what = match buf.ty {
                        IaType::Dir => What::Dir,
                        _ if is_linkto(&buf) => What::Linkto,
                        _ => What::File,
                    };
                    st.slots[k].what = what;
                    keep_lookup(st, k, what, r);
                }
            }
            Phase::MkdirHashed | Phase::MkdirRest => {
                if let (
                    true,
                    Body::Entry {
                        buf,
                        preparent,
                        postparent,
                        ..
                    },
                ) = (ok, r.body)
                {
                    if let Body::Entry {
                        buf: b,
                        preparent: pre,
                        postparent: post,
                        ..
                    } = &mut st.reply.body
                    {
                        merge_iatt(b, &buf);
                        merge_iatt(pre, &preparent);
                        merge_iatt(post, &postparent);
                    } else {
                        st.reply = *r;
                        if let Body::Entry { buf, .. } = &mut st.reply.body {
                            fix_dir(buf);
                        }
                    }
                }
            }
            Phase::RenData | Phase::LinkData if ok => st.reply = *r,
            Phase::Fop => self.absorb_fop(st, k, r),
            Phase::CheckRead | Phase::Readdir => {
                let plus =
                    !matches!(st.req, Request::Readdir { .. }) || st.phase == Phase::CheckRead;
                st.listed = if ok {
                    self.filter(cx, frame, st, k, r, plus)
                } else {
                    Listed::default()
                };
            }
            _ => {}
        }
    }

    /// The fop's own answers: the lowest position's success is the reply; statfs adds up;
    /// a directory's stat merges.
    fn absorb_fop(&mut self, st: &mut DhtCall, k: usize, r: &Reply) {
        if r.op_ret < 0 {
            return;
        }
        match (r.body, &mut st.reply.body) {
            (Body::Statfs { buf }, Body::Statfs { buf: to }) if st.from != NONE => {
                self.chunks[k] = Some(layout::chunks(&buf));
                add_statfs(to, &buf);
            }
            (Body::Attr { buf }, Body::Attr { buf: to }) if st.from != NONE => {
                merge_iatt(to, &buf);
            }
            (body, _) => {
                if let Body::Statfs { buf } = body {
                    self.chunks[k] = Some(layout::chunks(&buf));
                }
                if st.from == NONE || k < usize::from(st.from) {
                    st.reply = *r;
                    st.from = k as u8;
                    if let Body::Attr { buf } = &mut st.reply.body {
                        fix_dir(buf);
                    }
                }
            }
        }
    }
}

/// Keeps a lookup answer: a directory's are merged; otherwise the lowest position's data
/// file wins over linkto files.
fn keep_lookup(st: &mut DhtCall, k: usize, what: What, r: &Reply) {
    let replace = match (st.kept, what) {
        (What::Dir, What::Dir) => {
            if let (
                Body::Lookup {
                    buf: b,
                    postparent: p,
                    ..
                },
                Body::Lookup {
                    buf, postparent, ..
                },
            ) = (&mut st.reply.body, r.body)
            {
                merge_iatt(b, &buf);
                merge_iatt(p, &postparent);
            }
            false
        }
        (What::Dir, _) => false,
        (_, What::Dir) => true,
        (What::Nothing, _) => true,
        (What::Linkto, What::File) => true,
        (What::File, What::File) | (What::Linkto, What::Linkto) => k < usize::from(st.from),
        (What::File, What::Linkto) | (_, What::Nothing) => false,
    };
    if replace {
        st.reply = *r;
        st.from = k as u8;
        st.kept = what;
        if let Body::Lookup { buf, .. } = &mut st.reply.body {
            fix_dir(buf);
        }
    }
}

/// `dht_statfs_cbk`: blocks in the larger fragment size, counts added.
fn add_statfs(to: &mut Statvfs, from: &Statvfs) {
    let scale = |v: u64, fr: u64, into: u64| {
        if fr == into || into == 0 {
            v
        } else {
            (u128::from(v) * u128::from(fr) / u128::from(into)) as u64
        }
    };
    let frsize = to.frsize.max(from.frsize);
    let rescale = |s: &Statvfs, v: u64| scale(v, s.frsize, frsize);
    let blocks = rescale(to, to.blocks).saturating_add(rescale(from, from.blocks));
    let bfree = rescale(to, to.bfree).saturating_add(rescale(from, from.bfree));
    let bavail = rescale(to, to.bavail).saturating_add(rescale(from, from.bavail));
    to.blocks = blocks;
    to.bfree = bfree;
    to.bavail = bavail;
    to.frsize = frsize;
    to.bsize = to.bsize.max(from.bsize);
    to.files = to.files.saturating_add(from.files);
    to.ffree = to.ffree.saturating_add(from.ffree);
    to.favail = to.favail.saturating_add(from.favail);
}
