//! Each fop's steps (see the module doc of [`distribute`](super) for what they amount to):
//! where a fop starts ([`Distribute::begin`]), what every step does once its answers are in
//! ([`Distribute::step`]), and the shared pieces: loading (and healing) a directory's layout,
//! finding what a name or gfid is and where it lives, and winding the fop itself.

use super::super::args::{errno, Body, Loc, Reply, Request, Span, Xdata};
use super::super::ctx::Ctx;
use super::super::engine::CallError;
use super::super::frame::FrameRef;
use super::super::iatt::Gfid;
use super::call::{lowest, positions, Cont, DhtCall, Found, Out, Phase, What, NONE};
use super::layout::{self, Assign, Disk, HASH_INVALID, SUBVOLS_MAX, XATTR_LEN};
use super::tables::FdTarget;
use super::{DhtLocal, Distribute, INTERNAL_FD};

/// Which xattr name: the layout's, the linkto's, the mds marker's.
const LAYOUT: usize = 0;
const LINKTO: usize = 1;
const MDS: usize = 2;

/// A linkto file's mode: a regular file with only the sticky bit.
const LINKTO_MODE: u32 = 0o101000;

/// Rename's bookkeeping after the data moved (`dht_rename_unlink` and the linkto create).
const P_UNLINK_DST: u16 = 1;
const P_LINKTO: u16 = 2;
const P_UNLINK_OLD: u16 = 4;
const P_UNLINK_DST_DATA: u16 = 8;

fn bit(k: usize) -> u16 {
    1u16.checked_shl(k as u32).unwrap_or(0)
}

fn fail(e: i32) -> Result<Out, CallError> {
    Ok(Out::Unwind(Reply::error(e)))
}

impl Distribute {
    /// Runs steps until answers are outstanding or the fop is done, then stores the state or
    /// unwinds.
    pub(super) fn settle<L: DhtLocal>(
        &mut self,
        cx: &mut Ctx<'_, '_, L>,
        frame: FrameRef,
        slot: usize,
        mut st: DhtCall,
        mut out: Result<Out, CallError>,
    ) -> Result<(), CallError> {
        loop {
            match out {
                Err(e) if st.pending > 0 => {
                    // Answers are still due: fail when they are in.
                    st.phase = Phase::Fail;
                    st.seq = 0;
                    st.reply = Reply::error(e.errno());
                    return self.park(cx, frame, slot, Some(st));
                }
                Err(e) => {
                    self.park(cx, frame, slot, None)?;
                    return Err(e);
                }
                Ok(Out::Unwind(r)) => {
                    self.park(cx, frame, slot, None)?;
                    return cx.unwind(frame, r);
                }
                Ok(Out::Wait) if st.pending > 0 => {
                    return self.park(cx, frame, slot, Some(st));
                }
                Ok(Out::Wait) if st.seq != 0 => {
                    self.next_seq(cx, frame, &mut st);
                    out = Ok(Out::Wait);
                }
                Ok(Out::Wait) => out = self.step(cx, frame, &mut st),
            }
        }
    }

    fn is_up(&self, k: usize) -> bool {
        k < self.subvolumes() && self.up_mask() & bit(k) != 0
    }

    /// The basename a loc names: its `name`, else the last component of its path.
    fn name_span<L: DhtLocal>(
        &self,
        cx: &Ctx<'_, '_, L>,
        frame: FrameRef,
        loc: &Loc,
    ) -> Result<Span, CallError> {
        if !loc.name.is_empty() {
            cx.bytes(frame, loc.name)?;
            return Ok(loc.name);
        }
        let path = cx.bytes(frame, loc.path)?;
        let trimmed = path.len() - path.iter().rev().take_while(|&&c| c == b'/').count();
        let start = path[..trimmed]
            .iter()
            .rposition(|&c| c == b'/')
            .map_or(0, |i| i + 1);
        Ok(Span {
            off: loc.path.off + start as u32,
            len: (trimmed - start) as u32,
        })
    }

    /// The loc of the directory holding `loc`'s entry: its parent gfid, and the path up to
    /// the last component (`/` for a top-level name).
    fn parent_loc<L: DhtLocal>(
        &self,
        cx: &Ctx<'_, '_, L>,
        frame: FrameRef,
        loc: &Loc,
    ) -> Result<Loc, CallError> {
        let path = cx.bytes(frame, loc.path)?;
        let trimmed = path.len() - path.iter().rev().take_while(|&&c| c == b'/').count();
        let mut parent = Loc {
            gfid: loc.pargfid,
            ..Loc::default()
        };
        if let Some(cut) = path[..trimmed].iter().rposition(|&c| c == b'/') {
            let head = &path[..cut];
            let head_len = head.len() - head.iter().rev().take_while(|&&c| c == b'/').count();
            if head_len == 0 {
                parent.path = Span {
                    off: loc.path.off,
                    len: 1,
                };
                if parent.gfid.is_null() {
                    parent.gfid = Gfid::ROOT;
                }
            } else {
                let start = head[..head_len]
                    .iter()
                    .rposition(|&c| c == b'/')
                    .map_or(0, |i| i + 1);
                parent.path = Span {
                    off: loc.path.off,
                    len: head_len as u32,
                };
                parent.name = Span {
                    off: loc.path.off + start as u32,
                    len: (head_len - start) as u32,
                };
            }
        }
        Ok(parent)
    }

    /// Whether `loc` names an entry (a parent and a basename) rather than an object.
    fn is_entry<L: DhtLocal>(
        &self,
        cx: &Ctx<'_, '_, L>,
        frame: FrameRef,
        loc: &Loc,
    ) -> Result<bool, CallError> {
        let name = self.name_span(cx, frame, loc)?;
        if name.is_empty() {
            return Ok(false);
        }
        // A gfid-only object with a display path (`<gfid:...>`) has no parent to hash in.
        Ok(!loc.pargfid.is_null() || cx.bytes(frame, loc.path)?.first() == Some(&b'/'))
    }

    /// The hashed position of `loc`'s basename in `layout`.
    fn hashed_of<L: DhtLocal>(
        &self,
        cx: &Ctx<'_, '_, L>,
        frame: FrameRef,
        layout: &layout::Layout,
        loc: &Loc,
    ) -> Result<Option<usize>, CallError> {
        let span = self.name_span(cx, frame, loc)?;
        let name = cx.bytes(frame, span)?;
        Ok(layout.search(layout::hash_name(name, self.conf.munge)))
    }

    /// One of the xattr names, pushed into the request bytes the first time it is needed.
    fn xname<L: DhtLocal>(
        &self,
        cx: &mut Ctx<'_, '_, L>,
        frame: FrameRef,
        st: &mut DhtCall,
        which: usize,
    ) -> Result<Span, CallError> {
        if let Some(s) = st.names.get(which).filter(|s| !s.is_empty()) {
            return Ok(*s);
        }
        let mut name: heapless::Vec<u8, 80> = heapless::Vec::new();
        let _ = name.extend_from_slice(&self.conf.xattr);
        let _ = name.extend_from_slice(match which {
            LINKTO => b".linkto",
            MDS => b".mds",
            _ => b"",
        });
        let s = cx.push_bytes(frame, &name)?;
        if let Some(slot) = st.names.get_mut(which) {
            *slot = s;
        }
        Ok(s)
    }

    fn lookup_req(st: &DhtCall, loc: Loc) -> Request {
        let xdata = match st.req {
            Request::Lookup { xdata, .. } => xdata,
            _ => Xdata::default(),
        };
        Request::Lookup { loc, xdata }
    }

    fn internal_fd(&mut self) -> super::super::args::Fd {
        self.next_fd = self.next_fd.wrapping_add(1) | INTERNAL_FD;
        super::super::args::Fd(self.next_fd)
    }

    /// Where a fop starts.
    pub(super) fn begin<L: DhtLocal>(
        &mut self,
        cx: &mut Ctx<'_, '_, L>,
        frame: FrameRef,
        st: &mut DhtCall,
    ) -> Result<Out, CallError> {
        use Request as R;
        let up = self.up_mask();
        if up == 0 {
            return fail(errno::ENOTCONN);
        }
        let req = st.req;
        match req {
            R::Lookup { loc, .. } => {
                st.loc = loc;
                self.lookup(cx, frame, st)
            }
            R::Stat { loc }
            | R::Access { loc, .. }
            | R::Readlink { loc, .. }
            | R::Truncate { loc, .. }
            | R::Setattr { loc, .. }
            | R::Getxattr { loc, .. }
            | R::Setxattr { loc, .. }
            | R::Removexattr { loc, .. }
            | R::Inodelk { loc, .. }
            | R::Entrylk { loc, .. }
            | R::Xattrop { loc, .. }
            | R::Open { loc, .. }
            | R::Opendir { loc, .. } => {
                if matches!(req, R::Open { .. } | R::Opendir { .. }) && self.tables.fds.is_full() {
                    return fail(errno::ENOMEM);
                }
                st.loc = loc;
                if !loc.gfid.is_null() {
                    if self.tables.layouts.get(&loc.gfid).is_some() {
                        return self.exec(cx, frame, st, What::Dir, NONE);
                    }
                    if let Some(k) = self.tables.files.get(&loc.gfid) {
                        return self.exec(cx, frame, st, What::File, k);
                    }
                }
                self.lookup(cx, frame, st)
            }
            R::Statfs { .. } | R::Ipc { .. } => {
                st.clear_reply();
                Ok(self.issue(cx, frame, st, Phase::Fop, up, |_| req))
            }
            R::Mknod { loc, .. } | R::Create { loc, .. } | R::Symlink { loc, .. } => {
                if matches!(req, R::Create { .. }) && self.tables.fds.is_full() {
                    return fail(errno::ENOMEM);
                }
                if !self.is_entry(cx, frame, &loc)? {
                    return fail(errno::EINVAL);
                }
                st.loc = loc;
                st.dir = self.parent_loc(cx, frame, &loc)?;
                st.cont = Cont::Create;
                self.load_layout(cx, frame, st)
            }
            R::Mkdir { loc, xdata, .. } => {
                // dht_mkdir: every subvolume must give the directory the same gfid.
                if xdata.gfid_req.is_none_or(|g| g.is_null()) {
                    return fail(errno::EPERM);
                }
                if !self.is_entry(cx, frame, &loc)? {
                    return fail(errno::EINVAL);
                }
                st.loc = loc;
                st.dir = self.parent_loc(cx, frame, &loc)?;
                st.cont = Cont::Mkdir;
                self.load_layout(cx, frame, st)
            }
            R::Unlink { .. } => {
                st.clear_reply();
                Ok(self.issue(cx, frame, st, Phase::Fop, up, |_| req))
            }
            R::Rmdir { loc, .. } => {
                st.loc = loc;
                self.check_start(cx, frame, st)
            }
            R::Rename { oldloc, .. } | R::Link { oldloc, .. } => {
                st.stage = 0;
                st.loc = oldloc;
                self.lookup(cx, frame, st)
            }
            R::Readdir { .. } | R::Readdirp { .. } => self.readdir_start(cx, frame, st),
            R::Release { fd } | R::Releasedir { fd } => {
                let targets = match self.tables.fds.remove(&fd) {
                    Some(FdTarget::File(k)) => bit(usize::from(k)),
                    Some(FdTarget::Dir(m)) => m,
                    None => up,
                } & up;
                if targets == 0 {
                    return Ok(Out::Unwind(Reply::ok(0, Body::Empty)));
                }
                st.clear_reply();
                Ok(self.issue(cx, frame, st, Phase::Fop, targets, |_| req))
            }
            _ => self.route_fd(cx, frame, st),
        }
    }

    /// An fd fop to where the fd is open.
    fn route_fd<L: DhtLocal>(
        &mut self,
        cx: &mut Ctx<'_, '_, L>,
        frame: FrameRef,
        st: &mut DhtCall,
    ) -> Result<Out, CallError> {
        let req = st.req;
        let Some(fd) = req.fd() else {
            return fail(errno::EINVAL);
        };
        let up = self.up_mask();
        let targets = match self.tables.fds.get(&fd) {
            None => return fail(errno::EBADF),
            Some(FdTarget::File(k)) if self.is_up(usize::from(k)) => bit(usize::from(k)),
            Some(FdTarget::File(_)) => return fail(errno::ENOTCONN),
            Some(FdTarget::Dir(m)) => {
                let m = m & up;
                match req {
                    _ if m == 0 => return fail(errno::ENOTCONN),
                    Request::Fsetxattr { .. }
                    | Request::Fsetattr { .. }
                    | Request::Fremovexattr { .. } => m,
                    _ => lowest(m).map_or(0, bit),
                }
            }
        };
        st.found.what = What::File;
        st.clear_reply();
        Ok(self.issue(cx, frame, st, Phase::Fop, targets, |_| req))
    }

    /// Finds what `st.loc` is and where: a named entry by its parent's layout, an object by
    /// its remembered subvolume or by asking everyone.
    fn lookup<L: DhtLocal>(
        &mut self,
        cx: &mut Ctx<'_, '_, L>,
        frame: FrameRef,
        st: &mut DhtCall,
    ) -> Result<Out, CallError> {
        st.found = Found {
            hashed: NONE,
            cached: NONE,
            ..Found::default()
        };
        st.hashed = NONE;
        st.clear_reply();
        let loc = st.loc;
        let up = self.up_mask();
        if self.is_entry(cx, frame, &loc)? {
            st.dir = self.parent_loc(cx, frame, &loc)?;
            st.cont = Cont::LookupHashed;
            return self.load_layout(cx, frame, st);
        }
        let req = Self::lookup_req(st, loc);
        if !loc.gfid.is_null() {
            if let Some(k) = self.tables.files.get(&loc.gfid) {
                if self.is_up(usize::from(k)) {
                    return Ok(self.issue(
                        cx,
                        frame,
                        st,
                        Phase::LookupCached,
                        bit(k.into()),
                        |_| req,
                    ));
                }
            }
            if self.tables.layouts.get(&loc.gfid).is_some() {
                return Ok(self.issue(cx, frame, st, Phase::DirAll, up, |_| req));
            }
        }
        Ok(self.issue(cx, frame, st, Phase::LookupAll, up, |_| req))
    }

    /// The layout of `st.dir`, remembered or read from every subvolume; then `st.cont`.
    fn load_layout<L: DhtLocal>(
        &mut self,
        cx: &mut Ctx<'_, '_, L>,
        frame: FrameRef,
        st: &mut DhtCall,
    ) -> Result<Out, CallError> {
        if !st.dir.gfid.is_null() {
            if let Some(l) = self.tables.layouts.get(&st.dir.gfid) {
                st.layout = l;
                return self.layout_ready(cx, frame, st);
            }
        }
        self.xname(cx, frame, st, LAYOUT)?;
        Ok(self.issue_seq(st, Phase::LayoutGet, self.up_mask()))
    }

    /// Every subvolume's layout xattr is in: use it, or rewrite it when it has holes or
    /// overlaps (`dht_selfheal_dir_getafix`).
    fn layout_got<L: DhtLocal>(
        &mut self,
        cx: &mut Ctx<'_, '_, L>,
        frame: FrameRef,
        st: &mut DhtCall,
    ) -> Result<Out, CallError> {
        let n = self.subvolumes();
        let disk: [Disk; SUBVOLS_MAX] = core::array::from_fn(|k| {
            let s = st.slot(k);
            match s.errno {
                _ if !s.asked => Disk::Down,
                0 if s.what == What::Dir => {
                    Disk::Range(0, 0, st.layout.range(k).unwrap_or_default())
                }
                0 | errno::ENODATA | errno::ENOENT | errno::ESTALE => Disk::Missing,
                errno::ENOTCONN => Disk::Down,
                _ => Disk::Other,
            }
        });
        let gone = |e: i32| e == errno::ENOENT || e == errno::ESTALE;
        let any = st.slots[..n].iter().any(|s| s.asked);
        if any
            && st.slots[..n]
                .iter()
                .filter(|s| s.asked)
                .all(|s| gone(s.errno))
        {
            return fail(errno::ENOENT);
        }
        let disk = &disk[..n];
        let a = layout::anomalies(disk);
        if a.holes == 0 && a.overlaps == 0 {
            return self.layout_ready(cx, frame, st);
        }
        // dht_selfheal_directory: with a subvolume down, the layout is not rewritten (nor
        // remembered); a name in the missing range is taken to live on a down subvolume.
        let all = layout::mask(n) & !self.decommissioned;
        if a.down > 0 || self.up_mask() & all != all {
            st.partial = true;
            return self.layout_ready(cx, frame, st);
        }
        let participants = super::call::bits(
            st.slots[..n]
                .iter()
                .map(|s| s.ok() || (s.asked && s.errno == errno::ENODATA)),
        ) & self.up_mask()
            & !self.decommissioned;
        if participants == 0 {
            return self.layout_ready(cx, frame, st);
        }
        self.write_layout(cx, frame, st, participants, HASH_INVALID)
    }

    /// Assigns `st.dir` a new layout over `participants` and writes it (after asking their
    /// sizes when weighting needs them).
    fn write_layout<L: DhtLocal>(
        &mut self,
        cx: &mut Ctx<'_, '_, L>,
        frame: FrameRef,
        st: &mut DhtCall,
        participants: u16,
        commit: u32,
    ) -> Result<Out, CallError> {
        st.mask = participants;
        st.layout.commit = commit;
        if self.conf.weighted && positions(participants).any(|k| self.chunks[k].is_none()) {
            let root = Loc {
                gfid: Gfid::ROOT,
                ..Loc::default()
            };
            return Ok(
                self.issue(cx, frame, st, Phase::LayoutStatfs, participants, |_| {
                    Request::Statfs { loc: root }
                }),
            );
        }
        self.assign_and_set(cx, frame, st)
    }

    fn assign_and_set<L: DhtLocal>(
        &mut self,
        cx: &mut Ctx<'_, '_, L>,
        frame: FrameRef,
        st: &mut DhtCall,
    ) -> Result<Out, CallError> {
        let n = self.subvolumes();
        let weights: [u32; SUBVOLS_MAX] = core::array::from_fn(|k| self.chunks[k].unwrap_or(0));
        let dir = st.dir;
        let layout = {
            let mut buf = [0u8; 36];
            let path = cx.bytes(frame, dir.path)?;
            let by_gfid = self.conf.by_gfid && !dir.gfid.is_null();
            let key = layout::dir_key(path, &dir.gfid, by_gfid, &mut buf);
            layout::assign(
                key,
                &Assign {
                    order: &self.order[..n],
                    usable: st.mask,
                    weights: self.conf.weighted.then_some(&weights[..n]),
                    spread: self.conf.spread,
                    commit: st.layout.commit,
                },
            )
        };
        st.layout = layout;
        let name = self.xname(cx, frame, st, LAYOUT)?;
        let mut values = [0u8; XATTR_LEN * SUBVOLS_MAX];
        for k in positions(st.mask) {
            if let (Some(v), Some(dst)) = (
                layout.xattr(k),
                values.get_mut(k * XATTR_LEN..(k + 1) * XATTR_LEN),
            ) {
                dst.copy_from_slice(&v);
            }
        }
        let base = cx.push_bytes(frame, &values[..n * XATTR_LEN])?;
        let targets = st.mask;
        Ok(self.issue(cx, frame, st, Phase::LayoutSet, targets, |k| {
            Request::Setxattr {
                loc: dir,
                name,
                value: Span {
                    off: base.off + (k * XATTR_LEN) as u32,
                    len: XATTR_LEN as u32,
                },
                flags: 0,
            }
        }))
    }

    /// `st.layout` is `st.dir`'s: remember it and go on.
    fn layout_ready<L: DhtLocal>(
        &mut self,
        cx: &mut Ctx<'_, '_, L>,
        frame: FrameRef,
        st: &mut DhtCall,
    ) -> Result<Out, CallError> {
        if !st.dir.gfid.is_null() && st.layout.count() > 0 && !st.partial {
            self.tables.layouts.put(st.dir.gfid, st.layout);
        }
        // A name in the range a down subvolume holds (its xattr could not be read).
        let down = lowest(layout::mask(self.subvolumes()) & !self.up_mask());
        let up = self.up_mask();
        match st.cont {
            Cont::LookupHashed => {
                let loc = st.loc;
                let h = self.hashed_of(cx, frame, &st.layout, &loc)?;
                let h = h.or(if st.partial { down } else { None });
                st.hashed = h.map_or(NONE, |h| h as u8);
                st.found.hashed = st.hashed;
                let req = Self::lookup_req(st, loc);
                Ok(match h {
                    Some(h) if self.is_up(h) => {
                        self.issue(cx, frame, st, Phase::LookupHashed, bit(h), |_| req)
                    }
                    _ => self.issue(cx, frame, st, Phase::LookupAll, up, |_| req),
                })
            }
            Cont::DirFound => self.found(cx, frame, st),
            Cont::Create | Cont::Mkdir => {
                let loc = st.loc;
                let Some(h) = self.hashed_of(cx, frame, &st.layout, &loc)? else {
                    return fail(if st.partial && down.is_some() {
                        errno::ENOTCONN
                    } else {
                        errno::EIO
                    });
                };
                if !self.is_up(h) {
                    return fail(errno::ENOTCONN);
                }
                st.hashed = h as u8;
                st.clear_reply();
                let req = st.req;
                let phase = if st.cont == Cont::Mkdir {
                    Phase::MkdirHashed
                } else {
                    Phase::Fop
                };
                st.found.cached = h as u8;
                Ok(self.issue(cx, frame, st, phase, bit(h), |_| req))
            }
            Cont::MkdirDone => Ok(Out::Unwind(st.reply)),
            Cont::LinkDst => {
                let loc = st.loc;
                let h = self.hashed_of(cx, frame, &st.layout, &loc)?;
                st.dst.hashed = h.map_or(NONE, |h| h as u8);
                let sc = usize::from(st.src.cached);
                if !self.is_up(sc) {
                    return fail(errno::ENOTCONN);
                }
                st.clear_reply();
                let req = st.req;
                Ok(self.issue(cx, frame, st, Phase::LinkData, bit(sc), |_| req))
            }
        }
    }

    /// Whether a miss on the hashed subvolume is final (`lookup-optimize` with a layout of
    /// the volume's commit hash).
    fn optimized(&self, st: &DhtCall) -> bool {
        (self.conf.lookup_optimize && st.layout.commit == self.conf.commit)
            || !self.conf.lookup_unhashed
    }

    /// What a step's answers lead to.
    pub(super) fn step<L: DhtLocal>(
        &mut self,
        cx: &mut Ctx<'_, '_, L>,
        frame: FrameRef,
        st: &mut DhtCall,
    ) -> Result<Out, CallError> {
        let up = self.up_mask();
        let req = st.req;
        let h = usize::from(st.hashed);
        match st.phase {
            Phase::Start => fail(errno::EIO),
            Phase::Fail => Ok(Out::Unwind(st.reply)),
            Phase::LayoutGet => self.layout_got(cx, frame, st),
            Phase::LayoutStatfs => self.assign_and_set(cx, frame, st),
            Phase::LayoutSet => self.layout_ready(cx, frame, st),
            Phase::LookupHashed => {
                let s = st.slot(h);
                let lreq = Self::lookup_req(st, st.loc);
                if s.ok() {
                    st.found.at_hashed = true;
                    match s.what {
                        What::Dir => {
                            st.clear_reply();
                            Ok(self.issue(cx, frame, st, Phase::DirAll, up, |_| lreq))
                        }
                        What::Linkto => {
                            let name = self.xname(cx, frame, st, LINKTO)?;
                            let loc = Loc {
                                gfid: inode_of(&st.reply),
                                ..st.loc
                            };
                            let g = Request::Getxattr { loc, name };
                            Ok(self.issue(cx, frame, st, Phase::LinktoGet, bit(h), |_| g))
                        }
                        What::File => {
                            st.found.cached = h as u8;
                            self.found(cx, frame, st)
                        }
                        What::Nothing => self.not_found(cx, frame, st, errno::EIO),
                    }
                } else if s.errno == errno::ENOENT && !self.optimized(st) {
                    Ok(self.issue(cx, frame, st, Phase::LookupAll, up, |_| lreq))
                } else {
                    self.not_found(cx, frame, st, s.errno.max(1))
                }
            }
            Phase::LinktoGet => {
                let s = st.slot(h);
                let t = usize::from(s.target);
                let lreq = Self::lookup_req(st, st.loc);
                if s.ok() && s.target != NONE && t != h {
                    if !self.is_up(t) {
                        return self.not_found(cx, frame, st, errno::ENOTCONN);
                    }
                    Ok(self.issue(cx, frame, st, Phase::LookupCached, bit(t), |_| lreq))
                } else if s.failed() && s.errno == errno::ENODATA {
                    // Sticky mode but no linkto xattr: a data file after all.
                    st.kept = What::File;
                    st.found.cached = h as u8;
                    self.found(cx, frame, st)
                } else {
                    Ok(self.issue(cx, frame, st, Phase::LookupAll, up, |_| lreq))
                }
            }
            Phase::LookupCached => {
                let t = st.slots.iter().position(|s| s.asked).unwrap_or(0);
                let s = st.slot(t);
                let lreq = Self::lookup_req(st, st.loc);
                match s.what {
                    What::File if s.ok() => {
                        st.found.cached = t as u8;
                        self.found(cx, frame, st)
                    }
                    What::Dir if s.ok() => {
                        st.clear_reply();
                        Ok(self.issue(cx, frame, st, Phase::DirAll, up, |_| lreq))
                    }
                    _ => {
                        if !st.loc.gfid.is_null() {
                            self.tables.files.remove(&st.loc.gfid);
                        }
                        if st.kept != What::Linkto {
                            st.clear_reply();
                        }
                        Ok(self.issue(cx, frame, st, Phase::LookupAll, up, |_| lreq))
                    }
                }
            }
            Phase::LookupAll | Phase::DirAll => match st.kept {
                What::Dir => self.dir_found(cx, frame, st),
                What::File => {
                    st.found.cached = st.from;
                    self.found(cx, frame, st)
                }
                _ => {
                    // Nothing anywhere up: the name may live on its hashed subvolume, if that
                    // one is down.
                    let absent = if st.hashed != NONE && !self.is_up(h) {
                        errno::ENOTCONN
                    } else {
                        errno::ENOENT
                    };
                    let e = st
                        .slots
                        .iter()
                        .find(|s| {
                            s.failed() && s.errno != errno::ENOENT && s.errno != errno::ESTALE
                        })
                        .map_or(absent, |s| s.errno);
                    self.not_found(cx, frame, st, e)
                }
            },
            Phase::Fop => self.fop_done(st),
            Phase::MkdirHashed => {
                let s = st.slot(h);
                if !s.ok() {
                    return fail(s.errno.max(1));
                }
                let Request::Mkdir { loc, xdata, .. } = req else {
                    return fail(errno::EIO);
                };
                let gfid = xdata.gfid_req.unwrap_or_default();
                let name = self.xname(cx, frame, st, MDS)?;
                let value = cx.push_bytes(frame, &[0; 4])?;
                let set = Request::Setxattr {
                    loc: Loc { gfid, ..loc },
                    name,
                    value,
                    flags: 0,
                };
                Ok(self.issue(cx, frame, st, Phase::MkdirMds, bit(h), |_| set))
            }
            Phase::MkdirMds => {
                let others = up & !bit(h);
                if others == 0 {
                    return self.mkdir_layout(cx, frame, st, bit(h));
                }
                Ok(self.issue(cx, frame, st, Phase::MkdirRest, others, |_| req))
            }
            Phase::MkdirRest => {
                let made = super::call::bits(
                    st.slots
                        .iter()
                        .map(|s| s.ok() || (s.asked && s.errno == errno::EEXIST)),
                );
                self.mkdir_layout(cx, frame, st, made | bit(h))
            }
            Phase::CheckOpen | Phase::CheckRead | Phase::CheckRelease => {
                self.check_step(cx, frame, st)
            }
            Phase::RenData => {
                let s = st.slot(usize::from(st.src.cached));
                if !s.ok() {
                    return fail(s.errno.max(1));
                }
                self.rename_plan(st);
                self.rename_next(cx, frame, st)
            }
            Phase::RenLinkto => {
                if st.slot(usize::from(st.dst.hashed)).ok() {
                    self.linkto_xattr(cx, frame, st, Phase::RenLinktoXattr)
                } else {
                    self.rename_next(cx, frame, st)
                }
            }
            Phase::RenUnlinkDst
            | Phase::RenLinktoXattr
            | Phase::RenUnlinkOld
            | Phase::RenUnlinkDstData => self.rename_next(cx, frame, st),
            Phase::LinkData => {
                let s = st.slot(usize::from(st.src.cached));
                if !s.ok() {
                    return fail(s.errno.max(1));
                }
                let (hn, sc) = (st.dst.hashed, st.src.cached);
                if hn == NONE || hn == sc || !self.is_up(usize::from(hn)) {
                    return Ok(Out::Unwind(st.reply));
                }
                let Request::Link { newloc, .. } = req else {
                    return fail(errno::EIO);
                };
                let mk = self.linkto_mknod(newloc, st.src.gfid);
                Ok(self.issue(cx, frame, st, Phase::LinkLinkto, bit(hn.into()), |_| mk))
            }
            Phase::LinkLinkto => {
                if st.slot(usize::from(st.dst.hashed)).ok() {
                    self.linkto_xattr(cx, frame, st, Phase::LinkLinktoXattr)
                } else {
                    Ok(Out::Unwind(st.reply))
                }
            }
            Phase::LinkLinktoXattr => Ok(Out::Unwind(st.reply)),
            Phase::Readdir => self.readdir_step(cx, frame, st),
        }
    }

    /// A directory was found: its layout next.
    fn dir_found<L: DhtLocal>(
        &mut self,
        cx: &mut Ctx<'_, '_, L>,
        frame: FrameRef,
        st: &mut DhtCall,
    ) -> Result<Out, CallError> {
        let gfid = inode_of(&st.reply);
        st.found.what = What::Dir;
        st.found.gfid = gfid;
        st.dir = Loc { gfid, ..st.loc };
        st.cont = Cont::DirFound;
        self.load_layout(cx, frame, st)
    }

    /// The lookup of `st.loc` is done (`st.kept` says what it found); the fop goes on.
    fn found<L: DhtLocal>(
        &mut self,
        cx: &mut Ctx<'_, '_, L>,
        frame: FrameRef,
        st: &mut DhtCall,
    ) -> Result<Out, CallError> {
        let what = if st.kept == What::Dir {
            What::Dir
        } else {
            What::File
        };
        st.found.what = what;
        st.found.gfid = inode_of(&st.reply);
        st.found.errno = 0;
        if what == What::File && st.found.cached != NONE && !st.found.gfid.is_null() {
            self.tables.files.put(st.found.gfid, st.found.cached);
        }
        self.after_lookup(cx, frame, st)
    }

    fn not_found<L: DhtLocal>(
        &mut self,
        cx: &mut Ctx<'_, '_, L>,
        frame: FrameRef,
        st: &mut DhtCall,
        e: i32,
    ) -> Result<Out, CallError> {
        st.found.what = What::Nothing;
        st.found.errno = e;
        self.after_lookup(cx, frame, st)
    }

    /// Where each fop goes once its lookup is done.
    fn after_lookup<L: DhtLocal>(
        &mut self,
        cx: &mut Ctx<'_, '_, L>,
        frame: FrameRef,
        st: &mut DhtCall,
    ) -> Result<Out, CallError> {
        let f = st.found;
        match st.req {
            Request::Lookup { .. } => match f.what {
                What::Nothing => fail(f.errno),
                _ => Ok(Out::Unwind(st.reply)),
            },
            Request::Rename { newloc, .. } if st.stage == 0 => {
                if f.what == What::Nothing {
                    return fail(f.errno);
                }
                st.src = f;
                st.stage = 1;
                st.loc = newloc;
                self.lookup(cx, frame, st)
            }
            Request::Rename { .. } => {
                if f.what == What::Nothing && f.errno != errno::ENOENT {
                    return fail(f.errno);
                }
                st.dst = f;
                self.rename_start(cx, frame, st)
            }
            Request::Link { newloc, .. } => match f.what {
                What::Nothing => fail(f.errno),
                What::Dir => fail(errno::EPERM),
                _ => {
                    st.src = f;
                    st.loc = newloc;
                    st.dir = self.parent_loc(cx, frame, &newloc)?;
                    st.cont = Cont::LinkDst;
                    self.load_layout(cx, frame, st)
                }
            },
            _ => match f.what {
                What::Nothing => fail(f.errno),
                w => self.exec(cx, frame, st, w, f.cached),
            },
        }
    }

    /// A fop on an object: a directory's to every subvolume (changes, opens, stat) or the
    /// first (reads, locks), a file's to its subvolume.
    fn exec<L: DhtLocal>(
        &mut self,
        cx: &mut Ctx<'_, '_, L>,
        frame: FrameRef,
        st: &mut DhtCall,
        what: What,
        k: u8,
    ) -> Result<Out, CallError> {
        use Request as R;
        let up = self.up_mask();
        let req = st.req;
        let targets = match what {
            What::Dir => match req {
                R::Setattr { .. }
                | R::Setxattr { .. }
                | R::Removexattr { .. }
                | R::Opendir { .. }
                | R::Open { .. }
                | R::Stat { .. } => up,
                _ => lowest(up).map_or(0, bit),
            },
            _ if self.is_up(usize::from(k)) => bit(usize::from(k)),
            _ => return fail(errno::ENOTCONN),
        };
        st.found.what = what;
        st.found.cached = k;
        st.clear_reply();
        Ok(self.issue(cx, frame, st, Phase::Fop, targets, |_| req))
    }

    /// The fop's answers are in: the lowest success (or the first error when none
    /// succeeded), after noting where new objects and fds live.
    fn fop_done(&mut self, st: &mut DhtCall) -> Result<Out, CallError> {
        use Request as R;
        let ok = st.ok_mask();
        let any_failed = st.first_error();
        if ok == 0 {
            return fail(any_failed.unwrap_or(errno::EIO));
        }
        if let (R::Rename { .. }, Some(e)) = (st.req, any_failed) {
            // A directory renamed on some subvolumes only.
            return fail(e);
        }
        let k = st.from;
        match st.req {
            R::Create { fd, .. } => {
                self.tables.fds.put(fd, FdTarget::File(k));
                self.remember(inode_of(&st.reply), k);
            }
            R::Mknod { .. } | R::Symlink { .. } => self.remember(inode_of(&st.reply), k),
            R::Open { fd, .. } | R::Opendir { fd, .. } => {
                let t = if st.found.what == What::Dir {
                    FdTarget::Dir(ok)
                } else {
                    FdTarget::File(k)
                };
                self.tables.fds.put(fd, t);
            }
            R::Rmdir { loc, .. } if !loc.gfid.is_null() => {
                self.tables.layouts.remove(&loc.gfid);
            }
            _ => {}
        }
        Ok(Out::Unwind(st.reply))
    }

    fn remember(&mut self, gfid: Gfid, k: u8) {
        if !gfid.is_null() && k != NONE {
            self.tables.files.put(gfid, k);
        }
    }

    /// The new directory exists on `made`: give each its range.
    fn mkdir_layout<L: DhtLocal>(
        &mut self,
        cx: &mut Ctx<'_, '_, L>,
        frame: FrameRef,
        st: &mut DhtCall,
        made: u16,
    ) -> Result<Out, CallError> {
        let Request::Mkdir { loc, xdata, .. } = st.req else {
            return fail(errno::EIO);
        };
        st.dir = Loc {
            gfid: xdata.gfid_req.unwrap_or_default(),
            ..loc
        };
        st.cont = Cont::MkdirDone;
        // dht_mkdir: the volume's commit hash with lookup-optimize, else "invalid".
        let commit = if self.conf.lookup_optimize {
            self.conf.commit
        } else {
            HASH_INVALID
        };
        let participants = made & self.up_mask() & !self.decommissioned;
        self.write_layout(cx, frame, st, participants, commit)
    }

    /// A linkto file for `loc` with the data's gfid.
    fn linkto_mknod(&self, loc: Loc, gfid: Gfid) -> Request {
        Request::Mknod {
            loc,
            mode: LINKTO_MODE,
            rdev: 0,
            umask: 0,
            xdata: Xdata {
                gfid_req: Some(gfid),
            },
        }
    }

    /// The linkto xattr on the file just made on `st.dst.hashed`: the data's subvolume name
    /// and a NUL.
    fn linkto_xattr<L: DhtLocal>(
        &mut self,
        cx: &mut Ctx<'_, '_, L>,
        frame: FrameRef,
        st: &mut DhtCall,
        phase: Phase,
    ) -> Result<Out, CallError> {
        let (Request::Rename { newloc, .. } | Request::Link { newloc, .. }) = st.req else {
            return fail(errno::EIO);
        };
        let name = self.xname(cx, frame, st, LINKTO)?;
        let mut value: heapless::Vec<u8, { super::NAMES_MAX + 1 }> = heapless::Vec::new();
        let _ = value.extend_from_slice(
            self.subvolume_name(usize::from(st.src.cached))
                .unwrap_or_default(),
        );
        let _ = value.push(0);
        let value = cx.push_bytes(frame, &value)?;
        let set = Request::Setxattr {
            loc: Loc {
                gfid: st.src.gfid,
                ..newloc
            },
            name,
            value,
            flags: 0,
        };
        let hn = usize::from(st.dst.hashed);
        Ok(self.issue(cx, frame, st, phase, bit(hn), |_| set))
    }

    /// Both names are looked up: rename a directory everywhere (after checking that a
    /// directory it replaces is empty), a file where its data is.
    fn rename_start<L: DhtLocal>(
        &mut self,
        cx: &mut Ctx<'_, '_, L>,
        frame: FrameRef,
        st: &mut DhtCall,
    ) -> Result<Out, CallError> {
        let (src, dst) = (st.src, st.dst);
        let req = st.req;
        if src.what == What::Dir {
            return match dst.what {
                What::Nothing => {
                    st.clear_reply();
                    Ok(self.issue(cx, frame, st, Phase::Fop, self.up_mask(), |_| req))
                }
                What::Dir if dst.gfid == src.gfid => Ok(Out::Unwind(Reply::error(errno::EINVAL))),
                What::Dir => {
                    let Request::Rename { newloc, .. } = req else {
                        return fail(errno::EIO);
                    };
                    st.loc = newloc;
                    st.stage = 2;
                    self.check_start(cx, frame, st)
                }
                _ => fail(errno::ENOTDIR),
            };
        }
        if dst.what == What::Dir {
            return fail(errno::EISDIR);
        }
        let sc = usize::from(src.cached);
        if !self.is_up(sc) {
            return fail(errno::ENOTCONN);
        }
        st.clear_reply();
        Ok(self.issue(cx, frame, st, Phase::RenData, bit(sc), |_| req))
    }

    /// What is left to do after the data was renamed on its subvolume.
    fn rename_plan(&self, st: &mut DhtCall) {
        let (src, dst) = (st.src, st.dst);
        let (sc, sh, hn, dc) = (src.cached, src.hashed, dst.hashed, dst.cached);
        let same = dst.what != What::Nothing && dst.gfid == src.gfid;
        let mut plan = 0;
        if !same {
            if hn != NONE && hn != sc {
                if dst.at_hashed {
                    plan |= P_UNLINK_DST;
                }
                plan |= P_LINKTO;
            }
            if sh != NONE && sh != sc && src.at_hashed {
                plan |= P_UNLINK_OLD;
            }
            if dst.what == What::File && dc != NONE && dc != sc && dc != hn {
                plan |= P_UNLINK_DST_DATA;
            }
        }
        st.mask = plan;
    }

    fn rename_next<L: DhtLocal>(
        &mut self,
        cx: &mut Ctx<'_, '_, L>,
        frame: FrameRef,
        st: &mut DhtCall,
    ) -> Result<Out, CallError> {
        let Request::Rename { oldloc, newloc } = st.req else {
            return fail(errno::EIO);
        };
        let (sh, hn, dc) = (
            usize::from(st.src.hashed),
            usize::from(st.dst.hashed),
            usize::from(st.dst.cached),
        );
        let unlink = |loc| Request::Unlink { loc, flags: 0 };
        let take = |st: &mut DhtCall, p: u16| {
            let had = st.mask & p != 0;
            st.mask &= !p;
            had
        };
        if take(st, P_UNLINK_DST) && self.is_up(hn) {
            return Ok(
                self.issue(cx, frame, st, Phase::RenUnlinkDst, bit(hn), |_| {
                    unlink(newloc)
                }),
            );
        }
        if take(st, P_LINKTO) && self.is_up(hn) {
            let mk = self.linkto_mknod(newloc, st.src.gfid);
            return Ok(self.issue(cx, frame, st, Phase::RenLinkto, bit(hn), |_| mk));
        }
        if take(st, P_UNLINK_OLD) && self.is_up(sh) {
            return Ok(
                self.issue(cx, frame, st, Phase::RenUnlinkOld, bit(sh), |_| {
                    unlink(oldloc)
                }),
            );
        }
        if take(st, P_UNLINK_DST_DATA) && self.is_up(dc) {
            return Ok(
                self.issue(cx, frame, st, Phase::RenUnlinkDstData, bit(dc), |_| {
                    unlink(newloc)
                }),
            );
        }
        if st.mask != 0 {
            // A step's subvolume went down: skip it.
            return self.rename_next(cx, frame, st);
        }
        self.remember(st.src.gfid, st.src.cached);
        Ok(Out::Unwind(st.reply))
    }

    /// Starts an emptiness check of the directory `st.loc` on every subvolume.
    fn check_start<L: DhtLocal>(
        &mut self,
        cx: &mut Ctx<'_, '_, L>,
        frame: FrameRef,
        st: &mut DhtCall,
    ) -> Result<Out, CallError> {
        st.mask = self.up_mask();
        st.fd = self.internal_fd();
        st.check_err = 0;
        self.check_next(cx, frame, st)
    }

    fn check_next<L: DhtLocal>(
        &mut self,
        cx: &mut Ctx<'_, '_, L>,
        frame: FrameRef,
        st: &mut DhtCall,
    ) -> Result<Out, CallError> {
        let Some(k) = lowest(st.mask) else {
            return self.check_done(cx, frame, st);
        };
        st.cur = k as u8;
        let open = Request::Opendir {
            loc: st.loc,
            fd: st.fd,
        };
        Ok(self.issue(cx, frame, st, Phase::CheckOpen, bit(k), |_| open))
    }

    fn check_step<L: DhtLocal>(
        &mut self,
        cx: &mut Ctx<'_, '_, L>,
        frame: FrameRef,
        st: &mut DhtCall,
    ) -> Result<Out, CallError> {
        let k = usize::from(st.cur);
        let s = st.slot(k);
        let fd = st.fd;
        let read = |offset| Request::Readdirp {
            fd,
            size: u32::MAX,
            offset,
        };
        match st.phase {
            Phase::CheckOpen if s.ok() => {
                st.off = 0;
                Ok(self.issue(cx, frame, st, Phase::CheckRead, bit(k), |_| read(0)))
            }
            Phase::CheckOpen if s.errno == errno::ENOENT => {
                st.mask &= !bit(k);
                self.check_next(cx, frame, st)
            }
            Phase::CheckOpen => fail(s.errno.max(1)),
            Phase::CheckRead => {
                let l = st.listed;
                if !s.ok() {
                    st.check_err = s.errno.max(1);
                } else if l.nonempty {
                    st.check_err = errno::ENOTEMPTY;
                } else if l.seen > 0 {
                    st.off = l.last;
                    let off = st.off;
                    return Ok(self.issue(cx, frame, st, Phase::CheckRead, bit(k), |_| read(off)));
                }
                let rel = Request::Releasedir { fd };
                Ok(self.issue(cx, frame, st, Phase::CheckRelease, bit(k), |_| rel))
            }
            _ => {
                st.mask &= !bit(k);
                if st.check_err != 0 {
                    return fail(st.check_err);
                }
                self.check_next(cx, frame, st)
            }
        }
    }

    /// The directory is empty everywhere: rmdir it, or rename over it.
    fn check_done<L: DhtLocal>(
        &mut self,
        cx: &mut Ctx<'_, '_, L>,
        frame: FrameRef,
        st: &mut DhtCall,
    ) -> Result<Out, CallError> {
        let req = st.req;
        st.clear_reply();
        Ok(self.issue(cx, frame, st, Phase::Fop, self.up_mask(), |_| req))
    }
}

/// The gfid a lookup or entry reply names.
pub(super) fn inode_of(r: &Reply) -> Gfid {
    match r.body {
        Body::Lookup { inode, buf, .. } | Body::Entry { inode, buf, .. } => {
            if inode.is_null() {
                buf.gfid
            } else {
                inode
            }
        }
        _ => Gfid::NULL,
    }
}
