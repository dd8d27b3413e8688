//! `storage/ram`: Keelson's in-memory leaf over a caller-provided [`RamArena`]. It answers
//! every fop synchronously, as posix does (§5.6), with posix's visible rules: gfids from
//! `gfid-req` (a null one is EINVAL), `..`/`.` in listings, nlink counting, and no lock fops
//! (ENOSYS: locks live in features/locks, §5.7).

use super::args::{errno, set, Body, Fd, Loc, Reply, Request, Span, Xdata};
use super::dirent::{Dirent, DirentWriter};
use super::engine::{CallError, Ctx};
use super::frame::FrameRef;
use super::iatt::{Gfid, IaType, Iatt, Statvfs};
use super::ram_store::{Inode, Res, Store, BLOCK, NAME_MAX};

pub use super::ram_store::RamArena;

const O_ACCMODE: i32 = 0o3;
const O_CREAT: i32 = 0o100;
const O_EXCL: i32 = 0o200;
const O_TRUNC: i32 = 0o1000;
const O_APPEND: i32 = 0o2000;

/// An in-memory filesystem.
#[derive(Debug)]
pub struct RamFs<'m> {
    pub(super) st: Store<'m>,
    /// `size-limit`: most data bytes (0: the arena's).
    size_limit: u64,
    next_gfid: u64,
}

fn time(now: u64) -> (i64, u32) {
    ((now / 1_000_000_000) as i64, (now % 1_000_000_000) as u32)
}

fn ok(r: Res<Reply>) -> Reply {
    r.unwrap_or_else(Reply::error)
}

impl<'m> RamFs<'m> {
    /// A formatted filesystem (only the root) in `arena`, holding at most `size_limit` data
    /// bytes (0: as many as the arena's blocks).
    pub fn new<const I: usize, const D: usize, const B: usize, const X: usize>(
        arena: &'m mut RamArena<I, D, B, X>,
        size_limit: u64,
        now: u64,
    ) -> Self {
        let mut st = arena.split();
        // An arena without inodes leaves the root missing: every fop then fails ESTALE.
        let _ = st.format(time(now));
        RamFs {
            st,
            size_limit,
            next_gfid: 0,
        }
    }

    /// Inodes in use (the root included).
    pub fn inodes_used(&self) -> usize {
        self.st.inodes.iter().filter(|n| n.used).count()
    }

    /// Fds open.
    pub fn fds_open(&self) -> usize {
        self.st.fds.iter().filter(|f| f.used).count()
    }

    /// The attributes of the object `gfid` (for inspection: tests, tools).
    pub fn stat_of(&self, gfid: &Gfid) -> Option<Iatt> {
        self.st.by_gfid(gfid).map(|i| self.st.iatt(i))
    }

    /// Reads the data of `gfid` at `offset` into `out`; the byte count (inspection).
    pub fn read_of(&self, gfid: &Gfid, offset: u64, out: &mut [u8]) -> Option<usize> {
        let i = self.st.by_gfid(gfid)?;
        self.st.read(i, offset, out).ok()
    }

    /// The value of xattr `name` of `gfid` (inspection).
    pub fn xattr_of(&self, gfid: &Gfid, name: &[u8]) -> Option<&[u8]> {
        let i = self.st.by_gfid(gfid)?;
        self.st
            .xattrs
            .iter()
            .find(|x| x.used && x.ino == i && x.name == name)
            .map(|x| &x.value[..])
    }

    /// The gfid of `name` in directory `dir` (inspection).
    pub fn child_of(&self, dir: &Gfid, name: &[u8]) -> Option<Gfid> {
        let d = self.st.by_gfid(dir)?;
        let (_, i) = self.st.child(d, name)?;
        self.st.inode(i).ok().map(|n| n.gfid)
    }

    /// Answers `req` on `frame` and unwinds.
    pub fn call<L: Default>(
        &mut self,
        cx: &mut Ctx<'_, '_, L>,
        frame: FrameRef,
        req: Request,
    ) -> Result<(), CallError> {
        let r = self.handle(cx, frame, req);
        cx.unwind(frame, r)
    }

    pub(super) fn name<'c, L: Default>(
        cx: &'c Ctx<'_, '_, L>,
        f: FrameRef,
        s: Span,
    ) -> Res<&'c [u8]> {
        cx.bytes(f, s).map_err(|_| errno::EINVAL)
    }

    fn resolve<L: Default>(&self, cx: &Ctx<'_, '_, L>, f: FrameRef, loc: &Loc) -> Res<u16> {
        if !loc.gfid.is_null() {
            return self.st.by_gfid(&loc.gfid).ok_or(errno::ESTALE);
        }
        let name = Self::name(cx, f, loc.name)?;
        if !loc.pargfid.is_null() && !name.is_empty() {
            let dir = self.st.by_gfid(&loc.pargfid).ok_or(errno::ESTALE)?;
            return self.lookup_in(dir, name);
        }
        let path = Self::name(cx, f, loc.path)?;
        let mut cur = 0;
        for c in path.split(|&b| b == b'/').filter(|c| !c.is_empty()) {
            cur = self.lookup_in(cur, c)?;
        }
        self.st.inode(cur)?;
        Ok(cur)
    }

    fn lookup_in(&self, dir: u16, name: &[u8]) -> Res<u16> {
        let d = self.st.inode(dir)?;
        if d.ty != IaType::Dir {
            return Err(errno::ENOTDIR);
        }
        match name {
            b"." => Ok(dir),
            b".." => Ok(d.parent),
            _ => self.st.child(dir, name).map(|c| c.1).ok_or(errno::ENOENT),
        }
    }

    /// The parent directory and basename a new entry goes to.
    fn parent_of<'c, L: Default>(
        &self,
        cx: &'c Ctx<'_, '_, L>,
        f: FrameRef,
        loc: &Loc,
    ) -> Res<(u16, &'c [u8])> {
        let path = Self::name(cx, f, loc.path)?;
        let mut name = Self::name(cx, f, loc.name)?;
        let dir = if !loc.pargfid.is_null() {
            self.st.by_gfid(&loc.pargfid).ok_or(errno::ESTALE)?
        } else {
            let trimmed = path.strip_suffix(b"/").unwrap_or(path);
            let cut = trimmed.iter().rposition(|&b| b == b'/');
            let (head, tail) = match cut {
                Some(i) => (&trimmed[..i], &trimmed[i + 1..]),
                None => (&b""[..], trimmed),
            };
            if name.is_empty() {
                name = tail;
            }
            let mut cur = 0;
            for c in head.split(|&b| b == b'/').filter(|c| !c.is_empty()) {
                cur = self.lookup_in(cur, c)?;
            }
            cur
        };
        if name.is_empty() || name.contains(&b'/') || name == b"." || name == b".." {
            return Err(errno::EINVAL);
        }
        if name.len() > NAME_MAX {
            return Err(errno::ENAMETOOLONG);
        }
        if self.st.inode(dir)?.ty != IaType::Dir {
            return Err(errno::ENOTDIR);
        }
        Ok((dir, name))
    }

    fn new_gfid(&mut self, xdata: &Xdata) -> Res<Gfid> {
        match xdata.gfid_req {
            Some(g) if g.is_null() => Err(errno::EINVAL),
            Some(g) if self.st.by_gfid(&g).is_some() => Err(errno::EEXIST),
            Some(g) => Ok(g),
            None => loop {
                // No gfid-req: a deterministic one, "keel" then a counter.
                self.next_gfid += 1;
                let mut b = [0u8; 16];
                b[..4].copy_from_slice(b"keel");
                b[8..].copy_from_slice(&self.next_gfid.to_be_bytes());
                if self.st.by_gfid(&Gfid(b)).is_none() {
                    break Ok(Gfid(b));
                }
            },
        }
    }

    pub(super) fn touch(&mut self, i: u16, now: u64, m: bool) {
        if let Ok(n) = self.st.inode_mut(i) {
            if m {
                n.times[1] = time(now);
            }
            n.times[2] = time(now);
        }
    }

    /// Makes an entry `name` in `dir` of type `ty`.
    #[allow(clippy::too_many_arguments)]
    fn make<L: Default>(
        &mut self,
        cx: &Ctx<'_, '_, L>,
        f: FrameRef,
        loc: &Loc,
        ty: IaType,
        mode: u32,
        umask: u32,
        xdata: &Xdata,
    ) -> Res<(u16, u16, Iatt)> {
        let (dir, name) = self.parent_of(cx, f, loc)?;
        if self.st.child(dir, name).is_some() {
            return Err(errno::EEXIST);
        }
        let pre = self.st.iatt(dir);
        let gfid = self.new_gfid(xdata)?;
        let creds = cx.creds(f).unwrap_or_default();
        let now = time(cx.now());
        let ino = self.st.alloc_inode(Inode {
            used: true,
            gfid,
            ty,
            prot: (mode & !umask & 0o7777) as u16,
            uid: creds.uid,
            gid: creds.gid,
            nlink: if ty == IaType::Dir { 2 } else { 1 },
            times: [now; 3],
            parent: dir,
            ..Inode::default()
        })?;
        if let Err(e) = self.st.add_entry(dir, name, ino) {
            if let Some(n) = self.st.inodes.get_mut(usize::from(ino)) {
                n.used = false;
            }
            return Err(e);
        }
        if ty == IaType::Dir {
            if let Ok(d) = self.st.inode_mut(dir) {
                d.nlink += 1;
            }
        }
        self.touch(dir, cx.now(), true);
        Ok((ino, dir, pre))
    }

    fn entry(&self, fd: Option<Fd>, ino: u16, dir: u16, pre: Iatt) -> Reply {
        Reply::ok(
            0,
            Body::Entry {
                fd,
                inode: self.st.inode(ino).map_or(Gfid::NULL, |n| n.gfid),
                buf: self.st.iatt(ino),
                preparent: pre,
                postparent: self.st.iatt(dir),
            },
        )
    }

    fn room(&self, extra: u64) -> Res<()> {
        let used: u64 = self
            .st
            .inodes
            .iter()
            .filter(|n| n.used)
            .map(|n| n.size)
            .sum();
        if self.size_limit != 0 && used + extra > self.size_limit {
            return Err(errno::ENOSPC);
        }
        Ok(())
    }

    fn resize(&mut self, i: u16, size: u64, now: u64) -> Res<Reply> {
        let n = self.st.inode(i)?;
        if n.ty == IaType::Dir {
            return Err(errno::EISDIR);
        }
        if n.ty != IaType::Reg {
            return Err(errno::EINVAL);
        }
        self.room(size.saturating_sub(n.size))?;
        let pre = self.st.iatt(i);
        self.st.resize(i, size)?;
        self.touch(i, now, true);
        Ok(Reply::ok(
            0,
            Body::Change {
                pre,
                post: self.st.iatt(i),
            },
        ))
    }

    fn setattr(&mut self, i: u16, st: &Iatt, v: i32, now: u64) -> Res<Reply> {
        let pre = self.st.iatt(i);
        let n = self.st.inode_mut(i)?;
        if v & set::MODE != 0 {
            n.prot = st.prot & 0o7777;
        }
        if v & set::UID != 0 {
            n.uid = st.uid;
        }
        if v & set::GID != 0 {
            n.gid = st.gid;
        }
        if v & set::ATIME != 0 {
            n.times[0] = (st.atime, st.atime_nsec);
        }
        if v & set::MTIME != 0 {
            n.times[1] = (st.mtime, st.mtime_nsec);
        }
        if v & set::ATIME_NOW != 0 {
            n.times[0] = time(now);
        }
        if v & set::MTIME_NOW != 0 {
            n.times[1] = time(now);
        }
        n.times[2] = time(now);
        Ok(Reply::ok(
            0,
            Body::Change {
                pre,
                post: self.st.iatt(i),
            },
        ))
    }

    /// Removes entry `name` of `dir`; `dir_wanted` says rmdir (true) or unlink.
    fn remove(&mut self, dir: u16, name: &[u8], dir_wanted: bool, now: u64) -> Res<()> {
        let (slot, ino) = self.st.child(dir, name).ok_or(errno::ENOENT)?;
        let is_dir = self.st.inode(ino)?.ty == IaType::Dir;
        match (dir_wanted, is_dir) {
            (false, true) => return Err(errno::EISDIR),
            (true, false) => return Err(errno::ENOTDIR),
            (true, true) if self.st.has_children(ino) => return Err(errno::ENOTEMPTY),
            _ => {}
        }
        if let Some(e) = self.st.entries.get_mut(slot) {
            e.used = false;
        }
        let n = self.st.inode_mut(ino)?;
        n.nlink = if is_dir { 0 } else { n.nlink.saturating_sub(1) };
        n.times[2] = time(now);
        if is_dir {
            if let Ok(d) = self.st.inode_mut(dir) {
                d.nlink = d.nlink.saturating_sub(1);
            }
        }
        self.touch(dir, now, true);
        self.st.release_if_unused(ino);
        Ok(())
    }

    fn rename<L: Default>(
        &mut self,
        cx: &Ctx<'_, '_, L>,
        f: FrameRef,
        old: &Loc,
        new: &Loc,
    ) -> Res<Reply> {
        let now = cx.now();
        let (odir, oname) = self.parent_of(cx, f, old)?;
        let (ndir, nname) = self.parent_of(cx, f, new)?;
        let (slot, ino) = self.st.child(odir, oname).ok_or(errno::ENOENT)?;
        let is_dir = self.st.inode(ino)?.ty == IaType::Dir;
        let (pre_o, pre_n) = (self.st.iatt(odir), self.st.iatt(ndir));
        if is_dir {
            // The new parent must not be the directory itself or below it.
            let mut up = ndir;
            loop {
                if up == ino {
                    return Err(errno::EINVAL);
                }
                if up == 0 {
                    break;
                }
                up = self.st.inode(up)?.parent;
            }
        }
        if let Some((_, target)) = self.st.child(ndir, nname) {
            if target == ino {
                return Ok(self.rename_reply(ino, pre_o, odir, pre_n, ndir));
            }
            let tdir = self.st.inode(target)?.ty == IaType::Dir;
            match (is_dir, tdir) {
                (true, false) => return Err(errno::ENOTDIR),
                (false, true) => return Err(errno::EISDIR),
                _ => {}
            }
            self.remove(ndir, nname, tdir, now)?;
        }
        let e = self.st.entries.get_mut(slot).ok_or(errno::EIO)?;
        e.dir = ndir;
        e.name = heapless::Vec::from_slice(nname).map_err(|_| errno::ENAMETOOLONG)?;
        if is_dir && odir != ndir {
            if let Ok(d) = self.st.inode_mut(odir) {
                d.nlink = d.nlink.saturating_sub(1);
            }
            if let Ok(d) = self.st.inode_mut(ndir) {
                d.nlink += 1;
            }
            if let Ok(n) = self.st.inode_mut(ino) {
                n.parent = ndir;
            }
        }
        self.touch(odir, now, true);
        self.touch(ndir, now, true);
        self.touch(ino, now, false);
        Ok(self.rename_reply(ino, pre_o, odir, pre_n, ndir))
    }

    fn rename_reply(&self, ino: u16, pre_o: Iatt, odir: u16, pre_n: Iatt, ndir: u16) -> Reply {
        Reply::ok(
            0,
            Body::Rename {
                buf: self.st.iatt(ino),
                preoldparent: pre_o,
                postoldparent: self.st.iatt(odir),
                prenewparent: pre_n,
                postnewparent: self.st.iatt(ndir),
            },
        )
    }

    fn readdir<L: Default>(
        &self,
        cx: &mut Ctx<'_, '_, L>,
        f: FrameRef,
        fd: Fd,
        size: u32,
        offset: u64,
        plus: bool,
    ) -> Res<Reply> {
        let dir = self.st.fd(fd)?.ino;
        let d = self.st.inode(dir)?;
        if d.ty != IaType::Dir {
            return Err(errno::ENOTDIR);
        }
        let parent = d.parent;
        let (area, base) = cx.scratch(f).map_err(|_| errno::EIO)?;
        let limit = area.len().min(size as usize);
        let mut w = DirentWriter::new(area);
        let dots = [(1u64, &b"."[..], dir), (2, &b".."[..], parent)];
        let rest = self
            .st
            .entries
            .iter()
            .enumerate()
            .filter(|(_, e)| e.used && e.dir == dir)
            .map(|(i, e)| (i as u64 + 3, &e.name[..], e.ino));
        for (d_off, name, ino) in dots.into_iter().chain(rest) {
            if d_off <= offset {
                continue;
            }
            let st = self.st.iatt(ino);
            let e = Dirent {
                d_off,
                d_ino: st.ino,
                d_type: st.ty.d_type(),
                name,
                stat: plus.then_some(st),
            };
            if !w.push(limit, &e) {
                if w.is_empty() {
                    return Err(errno::EINVAL);
                }
                break;
            }
        }
        let data = Span {
            off: base,
            len: w.len() as u32,
        };
        Ok(Reply::ok(w.count() as i32, Body::Entries { data }))
    }

    fn statfs(&self) -> Statvfs {
        let total = self.st.blocks_total() as u64;
        let files = self.st.inodes.len() as u64;
        let ffree = self.st.inodes.iter().filter(|n| !n.used).count() as u64;
        let mut free = self.st.free_blocks as u64;
        if self.size_limit != 0 {
            let used: u64 = self
                .st
                .inodes
                .iter()
                .filter(|n| n.used)
                .map(|n| n.size)
                .sum();
            free = free.min(self.size_limit.saturating_sub(used) / BLOCK as u64);
        }
        Statvfs {
            bsize: BLOCK as u64,
            frsize: BLOCK as u64,
            blocks: total,
            bfree: free,
            bavail: free,
            files,
            ffree,
            favail: ffree,
            namemax: NAME_MAX as u64,
            ..Statvfs::default()
        }
    }

    fn handle<L: Default>(&mut self, cx: &mut Ctx<'_, '_, L>, f: FrameRef, req: Request) -> Reply {
        ok(self.dispatch(cx, f, req))
    }

    fn by_fd(&self, fd: Fd) -> Res<u16> {
        Ok(self.st.fd(fd)?.ino)
    }

    fn dispatch<L: Default>(
        &mut self,
        cx: &mut Ctx<'_, '_, L>,
        f: FrameRef,
        req: Request,
    ) -> Res<Reply> {
        use Request as R;
        let now = cx.now();
        match req {
            R::Lookup { loc, .. } => {
                let i = self.resolve(cx, f, &loc)?;
                let parent = self.st.inode(i)?.parent;
                let postparent = if i == 0 {
                    Iatt::default()
                } else {
                    self.st.iatt(parent)
                };
                let buf = self.st.iatt(i);
                Ok(Reply::ok(
                    0,
                    Body::Lookup {
                        inode: buf.gfid,
                        buf,
                        postparent,
                    },
                ))
            }
            R::Stat { loc } => {
                let i = self.resolve(cx, f, &loc)?;
                Ok(Reply::ok(
                    0,
                    Body::Attr {
                        buf: self.st.iatt(i),
                    },
                ))
            }
            R::Fstat { fd } => {
                let i = self.by_fd(fd)?;
                Ok(Reply::ok(
                    0,
                    Body::Attr {
                        buf: self.st.iatt(i),
                    },
                ))
            }
            R::Access { loc, .. } => {
                self.resolve(cx, f, &loc)?;
                Ok(Reply::ok(0, Body::Empty))
            }
            R::Mkdir {
                loc,
                mode,
                umask,
                xdata,
            } => {
                let (i, d, pre) = self.make(cx, f, &loc, IaType::Dir, mode, umask, &xdata)?;
                Ok(self.entry(None, i, d, pre))
            }
            R::Mknod {
                loc,
                mode,
                rdev,
                umask,
                xdata,
            } => {
                let ty = match IaType::from_mode(mode) {
                    IaType::Inval => IaType::Reg,
                    IaType::Dir | IaType::Lnk => return Err(errno::EINVAL),
                    t => t,
                };
                let (i, d, pre) = self.make(cx, f, &loc, ty, mode, umask, &xdata)?;
                if let Ok(n) = self.st.inode_mut(i) {
                    n.rdev = rdev;
                }
                Ok(self.entry(None, i, d, pre))
            }
            R::Create {
                loc,
                flags,
                mode,
                umask,
                fd,
                xdata,
            } => {
                if let Ok((dir, name)) = self.parent_of(cx, f, &loc) {
                    if let Some((_, i)) = self.st.child(dir, name) {
                        if flags & O_EXCL != 0 {
                            return Err(errno::EEXIST);
                        }
                        if self.st.inode(i)?.ty == IaType::Dir {
                            return Err(errno::EISDIR);
                        }
                        let pre = self.st.iatt(dir);
                        if flags & O_TRUNC != 0 {
                            self.resize(i, 0, now)?;
                        }
                        self.st.bind(fd, i, flags)?;
                        return Ok(self.entry(Some(fd), i, dir, pre));
                    }
                }
                let (i, d, pre) = self.make(cx, f, &loc, IaType::Reg, mode, umask, &xdata)?;
                if let Err(e) = self.st.bind(fd, i, flags & !O_CREAT) {
                    let _ = self.remove(d, self.parent_of(cx, f, &loc)?.1, false, now);
                    return Err(e);
                }
                Ok(self.entry(Some(fd), i, d, pre))
            }
            R::Symlink {
                linkpath,
                loc,
                xdata,
                ..
            } => {
                let target = Self::name(cx, f, linkpath)?;
                if target.is_empty() {
                    return Err(errno::ENOENT);
                }
                self.room(target.len() as u64)?;
                let (i, d, pre) = self.make(cx, f, &loc, IaType::Lnk, 0o777, 0, &xdata)?;
                if let Err(e) = self.st.write(i, 0, target) {
                    let name = self.parent_of(cx, f, &loc)?.1;
                    let _ = self.remove(d, name, false, now);
                    return Err(e);
                }
                Ok(self.entry(None, i, d, pre))
            }
            R::Link { oldloc, newloc, .. } => {
                let i = self.resolve(cx, f, &oldloc)?;
                if self.st.inode(i)?.ty == IaType::Dir {
                    return Err(errno::EPERM);
                }
                let (dir, name) = self.parent_of(cx, f, &newloc)?;
                if self.st.child(dir, name).is_some() {
                    return Err(errno::EEXIST);
                }
                let pre = self.st.iatt(dir);
                self.st.add_entry(dir, name, i)?;
                if let Ok(n) = self.st.inode_mut(i) {
                    n.nlink += 1;
                }
                self.touch(i, now, false);
                self.touch(dir, now, true);
                Ok(self.entry(None, i, dir, pre))
            }
            R::Unlink { loc, .. } | R::Rmdir { loc, .. } => {
                let rmdir = matches!(req, R::Rmdir { .. });
                let (dir, name) = self.parent_of(cx, f, &loc)?;
                let preparent = self.st.iatt(dir);
                self.remove(dir, name, rmdir, now)?;
                Ok(Reply::ok(
                    0,
                    Body::Parent {
                        preparent,
                        postparent: self.st.iatt(dir),
                    },
                ))
            }
            R::Rename { oldloc, newloc } => self.rename(cx, f, &oldloc, &newloc),
            R::Readlink { loc, size } => {
                let i = self.resolve(cx, f, &loc)?;
                if self.st.inode(i)?.ty != IaType::Lnk {
                    return Err(errno::EINVAL);
                }
                let (area, base) = cx.scratch(f).map_err(|_| errno::EIO)?;
                let cap = area.len().min(size as usize);
                let n = self
                    .st
                    .read(i, 0, area.get_mut(..cap).unwrap_or_default())?;
                let path = Span {
                    off: base,
                    len: n as u32,
                };
                Ok(Reply::ok(
                    n as i32,
                    Body::Readlink {
                        path,
                        buf: self.st.iatt(i),
                    },
                ))
            }
            R::Truncate { loc, offset } => {
                let i = self.resolve(cx, f, &loc)?;
                self.resize(i, offset, now)
            }
            R::Ftruncate { fd, offset } => {
                let i = self.by_fd(fd)?;
                self.resize(i, offset, now)
            }
            R::Open { loc, flags, fd } => {
                let i = self.resolve(cx, f, &loc)?;
                let n = self.st.inode(i)?;
                if n.ty == IaType::Dir && flags & O_ACCMODE != 0 {
                    return Err(errno::EISDIR);
                }
                if flags & O_TRUNC != 0 && n.ty == IaType::Reg {
                    self.resize(i, 0, now)?;
                }
                self.st.bind(fd, i, flags)?;
                Ok(Reply::ok(0, Body::Fd { fd }))
            }
            R::Opendir { loc, fd } => {
                let i = self.resolve(cx, f, &loc)?;
                if self.st.inode(i)?.ty != IaType::Dir {
                    return Err(errno::ENOTDIR);
                }
                self.st.bind(fd, i, 0)?;
                Ok(Reply::ok(0, Body::Fd { fd }))
            }
            R::Readv {
                fd, size, offset, ..
            } => {
                let i = self.by_fd(fd)?;
                if self.st.inode(i)?.ty == IaType::Dir {
                    return Err(errno::EISDIR);
                }
                let (area, base) = cx.scratch(f).map_err(|_| errno::EIO)?;
                let cap = area.len().min(size as usize);
                let n = self
                    .st
                    .read(i, offset, area.get_mut(..cap).unwrap_or_default())?;
                if let Ok(node) = self.st.inode_mut(i) {
                    node.times[0] = time(now);
                }
                let data = Span {
                    off: base,
                    len: n as u32,
                };
                Ok(Reply::ok(
                    n as i32,
                    Body::Read {
                        data,
                        stbuf: self.st.iatt(i),
                    },
                ))
            }
            R::Writev {
                fd, data, offset, ..
            } => {
                let slot = *self.st.fd(fd)?;
                let i = slot.ino;
                let n = self.st.inode(i)?;
                if n.ty == IaType::Dir {
                    return Err(errno::EISDIR);
                }
                if slot.flags & O_ACCMODE == 0 {
                    return Err(errno::EBADF);
                }
                let at = if slot.flags & O_APPEND != 0 {
                    n.size
                } else {
                    offset
                };
                let bytes = cx.bytes(f, data).map_err(|_| errno::EINVAL)?;
                let grow = at.saturating_add(bytes.len() as u64).saturating_sub(n.size);
                self.room(grow)?;
                let pre = self.st.iatt(i);
                self.st.write(i, at, bytes)?;
                self.touch(i, now, true);
                Ok(Reply::ok(
                    bytes.len() as i32,
                    Body::Change {
                        pre,
                        post: self.st.iatt(i),
                    },
                ))
            }
            R::Flush { fd } => {
                self.by_fd(fd)?;
                Ok(Reply::ok(0, Body::Empty))
            }
            R::Fsync { fd, .. } => {
                let i = self.by_fd(fd)?;
                let st = self.st.iatt(i);
                Ok(Reply::ok(0, Body::Change { pre: st, post: st }))
            }
            R::Statfs { loc } => {
                self.resolve(cx, f, &loc)?;
                Ok(Reply::ok(0, Body::Statfs { buf: self.statfs() }))
            }
            R::Setattr { loc, stbuf, valid } => {
                let i = self.resolve(cx, f, &loc)?;
                self.setattr(i, &stbuf, valid, now)
            }
            R::Fsetattr { fd, stbuf, valid } => {
                let i = self.by_fd(fd)?;
                self.setattr(i, &stbuf, valid, now)
            }
            R::Getxattr { loc, name } => {
                let i = self.resolve(cx, f, &loc)?;
                self.getxattr(cx, f, i, name)
            }
            R::Fgetxattr { fd, name } => {
                let i = self.by_fd(fd)?;
                self.getxattr(cx, f, i, name)
            }
            R::Setxattr {
                loc,
                name,
                value,
                flags,
            } => {
                let i = self.resolve(cx, f, &loc)?;
                self.setxattr(cx, f, i, name, value, flags)
            }
            R::Fsetxattr {
                fd,
                name,
                value,
                flags,
            } => {
                let i = self.by_fd(fd)?;
                self.setxattr(cx, f, i, name, value, flags)
            }
            R::Removexattr { loc, name } => {
                let i = self.resolve(cx, f, &loc)?;
                self.removexattr(cx, f, i, name)
            }
            R::Fremovexattr { fd, name } => {
                let i = self.by_fd(fd)?;
                self.removexattr(cx, f, i, name)
            }
            R::Readdir { fd, size, offset } => self.readdir(cx, f, fd, size, offset, false),
            R::Readdirp { fd, size, offset } => self.readdir(cx, f, fd, size, offset, true),
            R::Inodelk { .. } | R::Finodelk { .. } | R::Entrylk { .. } | R::Lk { .. } => {
                Err(errno::ENOSYS)
            }
            R::Release { fd } | R::Releasedir { fd } => {
                self.st.unbind(fd);
                Ok(Reply::ok(0, Body::Empty))
            }
            R::Xattrop { loc, flags, dict } => {
                let i = self.resolve(cx, f, &loc)?;
                self.xattrop(cx, f, i, flags, dict)
            }
            R::Fxattrop { fd, flags, dict } => {
                let i = self.by_fd(fd)?;
                self.xattrop(cx, f, i, flags, dict)
            }
            R::Ipc { .. } => Err(errno::ENOTSUP),
        }
    }
}
