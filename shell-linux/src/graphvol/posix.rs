//! storage/posix as a graph leaf (translators.md §5.6): each [`Output::Io`] the engine parks
//! for a posix node is answered here from that node's [`Brick`], with the reply's bytes (read
//! data, link targets, xattr values, directory entries) written into the reply area of the
//! request buffer, and the iatts posix reports (`preparent`/`postparent`, `prebuf`/`postbuf`).
//!
//! Posix is synchronous, so every call is answered before the engine runs on. xattrop and
//! fxattrop apply the core's rule ([`keelson_core::xlator::xattrop`]) to the brick's xattrs.
//! A brick found gone (its root handle missing after a failure) is down: its fops fail with
//! ENOTCONN until a check finds it back; the graph volume turns both into CHILD_DOWN/CHILD_UP. An fd is the
//! originator's number; the leaf keeps, per fd, the object's gfid, the open file (one `open`
//! per fd instead of one per read or write) and, for a directory being listed, the listing
//! taken at its first readdir (the cookies of later readdirs index it).
//!
//! [`Output::Io`]: keelson_core::xlator::engine::Output::Io

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;

use keelson_core::xlator::args::{errno, set, Body, Fd, Loc, Reply, Request, Span, Xdata};
use keelson_core::xlator::dirent::{Dirent, DirentWriter};
use keelson_core::xlator::frame::Creds;
use keelson_core::xlator::handle::Gfid;
use keelson_core::xlator::iatt::{IaType, Iatt};

use crate::brick::{self, Brick, DirEntry, SetAttr};
use crate::volume::SYNC_FLAGS;

type Res<T> = Result<T, i32>;

fn os(e: io::Error) -> i32 {
    e.raw_os_error().unwrap_or(errno::EIO)
}

/// One open fd.
#[derive(Debug)]
struct Open {
    gfid: Gfid,
    flags: i32,
    /// A regular file's data.
    file: Option<File>,
    /// A directory's entries from its first readdir.
    listing: Option<Vec<DirEntry>>,
}

/// A posix node: its brick and open fds, and whether the brick is gone (CHILD_DOWN).
#[derive(Debug)]
pub struct Leaf {
    brick: Brick,
    fds: HashMap<u64, Open>,
    down: bool,
}

/// The request bytes and the reply area of one call.
struct Bufs<'b> {
    req: &'b [u8],
    area: &'b mut [u8],
    base: u32,
}

impl Bufs<'_> {
    fn bytes(&self, s: Span) -> Res<&[u8]> {
        s.get(self.req).ok_or(errno::EINVAL)
    }

    fn name(&self, s: Span) -> Res<&OsStr> {
        self.bytes(s).map(OsStr::from_bytes)
    }

    /// Puts `bytes` in the reply area; its span.
    fn put(&mut self, bytes: &[u8]) -> Res<Span> {
        let dst = self.area.get_mut(..bytes.len()).ok_or(errno::ERANGE)?;
        dst.copy_from_slice(bytes);
        Ok(Span {
            off: self.base,
            len: bytes.len() as u32,
        })
    }
}

fn owner(c: &Creds) -> Option<(u32, u32)> {
    Some((c.uid, c.gid))
}

impl Leaf {
    /// A leaf over `brick`.
    pub fn new(brick: Brick) -> Leaf {
        Leaf {
            brick,
            fds: HashMap::new(),
            down: false,
        }
    }

    /// Whether the brick was found gone (its leaf answers ENOTCONN until it is back).
    pub fn is_down(&self) -> bool {
        self.down
    }

    /// Checks the brick after a failure that may mean it went away (an errno a missing or
    /// unmounted directory gives), or while it is down whether it came back; true when the
    /// state changed.
    pub fn check(&mut self) -> bool {
        let alive = self.brick.alive();
        let changed = alive == self.down;
        self.down = !alive;
        changed
    }

    /// Whether a failure with `errno` may mean the brick itself is gone.
    pub fn may_be_gone(errno: i32) -> bool {
        matches!(
            errno,
            errno::ENOENT | errno::ESTALE | errno::EIO | errno::ENOTCONN | libc::ENODEV
        )
    }

    /// Open fds (for checks: every open is released).
    pub fn open_fds(&self) -> usize {
        self.fds.len()
    }

    /// Answers `req`, whose bytes are `buf[..req_len]`; the rest of `buf` is the reply area.
    /// While the brick is down every fop but release fails with ENOTCONN.
    pub fn serve(&mut self, req: Request, buf: &mut [u8], req_len: usize, creds: Creds) -> Reply {
        if self.down && !matches!(req, Request::Release { .. } | Request::Releasedir { .. }) {
            return Reply::error(errno::ENOTCONN);
        }
        let at = req_len.min(buf.len());
        let (req_bytes, area) = buf.split_at_mut(at);
        let mut b = Bufs {
            req: req_bytes,
            area,
            base: at as u32,
        };
        self.dispatch(req, &mut b, &creds)
            .unwrap_or_else(Reply::error)
    }

    /// The object a loc names: its gfid, else parent and name, else the path from the root.
    fn resolve(&self, b: &Bufs<'_>, loc: &Loc) -> Res<Gfid> {
        if !loc.gfid.is_null() {
            return Ok(loc.gfid);
        }
        let name = b.bytes(loc.name)?;
        if !loc.pargfid.is_null() && !name.is_empty() {
            return Ok(self.lookup(&loc.pargfid, OsStr::from_bytes(name))?.gfid);
        }
        let mut cur = Gfid::ROOT;
        for c in b
            .bytes(loc.path)?
            .split(|&c| c == b'/')
            .filter(|c| !c.is_empty())
        {
            cur = self.lookup(&cur, OsStr::from_bytes(c))?.gfid;
        }
        Ok(cur)
    }

    /// The parent directory and basename a loc names for an entry fop.
    fn entry<'b>(&self, b: &'b Bufs<'_>, loc: &Loc) -> Res<(Gfid, &'b OsStr)> {
        let path = b.bytes(loc.path)?;
        let mut name = b.bytes(loc.name)?;
        let parent = if !loc.pargfid.is_null() {
            loc.pargfid
        } else {
            let trimmed = path.strip_suffix(b"/").unwrap_or(path);
            let cut = trimmed.iter().rposition(|&c| c == b'/');
            let (head, tail) = match cut {
                Some(i) => (&trimmed[..i], &trimmed[i + 1..]),
                None => (&b""[..], trimmed),
            };
            if name.is_empty() {
                name = tail;
            }
            let mut cur = Gfid::ROOT;
            for c in head.split(|&c| c == b'/').filter(|c| !c.is_empty()) {
                cur = self.lookup(&cur, OsStr::from_bytes(c))?.gfid;
            }
            cur
        };
        if name.is_empty() {
            return Err(errno::EINVAL);
        }
        Ok((parent, OsStr::from_bytes(name)))
    }

    fn lookup(&self, parent: &Gfid, name: &OsStr) -> Res<Iatt> {
        self.brick.lookup(parent, name).map_err(os)
    }

    fn dir(&self, gfid: &Gfid) -> Res<Iatt> {
        self.brick.stat_dir(gfid).map_err(os)
    }

    fn open(&mut self, fd: Fd) -> Res<&mut Open> {
        self.fds.get_mut(&fd.0).ok_or(errno::EBADF)
    }

    /// The fd's file, opened on first use for an fd whose open did not open it.
    fn file(&mut self, fd: Fd) -> Res<(Gfid, &File)> {
        let o = self.fds.get_mut(&fd.0).ok_or(errno::EBADF)?;
        if o.file.is_none() {
            let acc = o.flags & libc::O_ACCMODE;
            let f = self
                .brick
                .open_file(&o.gfid, acc != libc::O_WRONLY, acc != libc::O_RDONLY)
                .map_err(os)?;
            o.file = Some(f);
        }
        let gfid = o.gfid;
        match &o.file {
            Some(f) => Ok((gfid, f)),
            None => Err(errno::EBADF),
        }
    }

    fn fstat(&mut self, fd: Fd) -> Res<Iatt> {
        let (gfid, f) = self.file(fd)?;
        Ok(brick::iatt(gfid, &f.metadata().map_err(os)?))
    }

    /// Binds `fd` to a regular file opened with `flags`, or to anything else without data.
    fn bind(&mut self, fd: Fd, gfid: Gfid, ty: IaType, flags: i32) -> Res<()> {
        let file = if ty == IaType::Reg {
            let acc = flags & libc::O_ACCMODE;
            Some(
                self.brick
                    .open_file(&gfid, acc != libc::O_WRONLY, acc != libc::O_RDONLY)
                    .map_err(os)?,
            )
        } else {
            None
        };
        self.fds.insert(
            fd.0,
            Open {
                gfid,
                flags,
                file,
                listing: None,
            },
        );
        Ok(())
    }

    fn made(
        &mut self,
        parent: &Gfid,
        pre: Iatt,
        made: io::Result<Iatt>,
        fd: Option<Fd>,
    ) -> Res<Reply> {
        let buf = made.map_err(os)?;
        Ok(Reply::ok(
            0,
            Body::Entry {
                fd,
                inode: buf.gfid,
                buf,
                preparent: pre,
                postparent: self.dir(parent)?,
            },
        ))
    }

    fn new_gfid(xdata: &Xdata) -> Res<Gfid> {
        match xdata.gfid_req {
            // §5.6: a null gfid-req is EINVAL.
            Some(g) if g.is_null() => Err(errno::EINVAL),
            Some(g) => Ok(g),
            None => brick::new_gfid().map_err(os),
        }
    }

    fn change(
        &mut self,
        gfid: &Gfid,
        apply: impl FnOnce(&Brick) -> io::Result<Iatt>,
    ) -> Res<Reply> {
        let pre = self.brick.stat(gfid).map_err(os)?;
        let post = apply(&self.brick).map_err(os)?;
        Ok(Reply::ok(0, Body::Change { pre, post }))
    }

    fn readdir(
        &mut self,
        b: &mut Bufs<'_>,
        fd: Fd,
        size: u32,
        offset: u64,
        plus: bool,
    ) -> Res<Reply> {
        let gfid = self.open(fd)?.gfid;
        if offset == 0 || self.open(fd)?.listing.is_none() {
            let list = self.brick.readdir(&gfid).map_err(os)?;
            self.open(fd)?.listing = Some(list);
        }
        let o = self.open(fd)?;
        let list = o.listing.as_deref().unwrap_or_default();
        let limit = b.area.len().min(size as usize);
        let mut w = DirentWriter::new(b.area);
        // The cookie of entry i is i + 1: a readdir at `offset` resumes after that many.
        let skip = usize::try_from(offset).unwrap_or(usize::MAX);
        for (i, e) in list.iter().enumerate().skip(skip) {
            let d = Dirent {
                d_off: i as u64 + 1,
                d_ino: e.attr.ino,
                d_type: e.attr.ty.d_type(),
                name: e.name.as_bytes(),
                stat: plus.then_some(e.attr),
            };
            if !w.push(limit, &d) {
                if w.is_empty() {
                    return Err(errno::EINVAL);
                }
                break;
            }
        }
        let data = Span {
            off: b.base,
            len: w.len() as u32,
        };
        Ok(Reply::ok(w.count() as i32, Body::Entries { data }))
    }

    fn xattr_name<'b>(b: &'b Bufs<'_>, s: Span) -> Res<&'b str> {
        std::str::from_utf8(b.bytes(s)?).map_err(|_| errno::EINVAL)
    }

    fn getxattr(&self, b: &mut Bufs<'_>, gfid: &Gfid, name: Span) -> Res<Reply> {
        let name = Self::xattr_name(b, name)?.to_owned();
        let value = if name.is_empty() {
            let mut list = Vec::new();
            for n in self.brick.listxattr(gfid).map_err(os)? {
                list.extend_from_slice(n.as_bytes());
                list.push(0);
            }
            list
        } else {
            self.brick.getxattr(gfid, &name).map_err(os)?
        };
        let value = b.put(&value)?;
        Ok(Reply::ok(value.len as i32, Body::Xattr { value }))
    }

    fn xattrop(&self, b: &mut Bufs<'_>, gfid: &Gfid, op: i32, dict: Span) -> Res<Reply> {
        let pairs = b.bytes(dict)?.to_vec();
        let out = self.brick.xattrop(gfid, op, &pairs).map_err(os)?;
        let value = b.put(&out)?;
        Ok(Reply::ok(0, Body::Xattr { value }))
    }

    fn dispatch(&mut self, req: Request, b: &mut Bufs<'_>, creds: &Creds) -> Res<Reply> {
        use Request as R;
        match req {
            R::Lookup { loc, .. } => {
                let name = b.bytes(loc.name)?;
                let (buf, postparent) = if !loc.pargfid.is_null() && !name.is_empty() {
                    let buf = self.lookup(&loc.pargfid, OsStr::from_bytes(name))?;
                    (buf, self.dir(&loc.pargfid)?)
                } else {
                    let g = self.resolve(b, &loc)?;
                    let buf = self.brick.stat(&g).map_err(os)?;
                    // The root has no parent: posix answers a zeroed postparent.
                    let pp = if g == Gfid::ROOT {
                        Iatt::default()
                    } else {
                        match self.entry(b, &loc) {
                            Ok((p, _)) => self.dir(&p)?,
                            Err(_) => Iatt::default(),
                        }
                    };
                    (buf, pp)
                };
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
                let g = self.resolve(b, &loc)?;
                let buf = self.brick.stat(&g).map_err(os)?;
                Ok(Reply::ok(0, Body::Attr { buf }))
            }
            R::Fstat { fd } => {
                let o = self.open(fd)?;
                let buf = match &o.file {
                    Some(f) => brick::iatt(o.gfid, &f.metadata().map_err(os)?),
                    None => {
                        let g = o.gfid;
                        self.brick.stat(&g).map_err(os)?
                    }
                };
                Ok(Reply::ok(0, Body::Attr { buf }))
            }
            R::Access { loc, .. } => {
                let g = self.resolve(b, &loc)?;
                self.brick.stat(&g).map_err(os)?;
                Ok(Reply::ok(0, Body::Empty))
            }
            R::Readlink { loc, size } => {
                let g = self.resolve(b, &loc)?;
                let t = self.brick.readlink(&g).map_err(os)?;
                let t = t.as_os_str().as_bytes();
                let path = b.put(&t[..t.len().min(size as usize)])?;
                let buf = self.brick.stat(&g).map_err(os)?;
                Ok(Reply::ok(path.len as i32, Body::Readlink { path, buf }))
            }
            R::Mknod {
                loc,
                mode,
                rdev,
                umask,
                xdata,
            } => {
                let (p, name) = self.entry(b, &loc)?;
                let pre = self.dir(&p)?;
                let g = Self::new_gfid(&xdata)?;
                let mode = mode & !(umask & 0o7777);
                let made = self.brick.mknod(&p, name, mode, rdev, &g, owner(creds));
                self.made(&p, pre, made, None)
            }
            R::Mkdir {
                loc,
                mode,
                umask,
                xdata,
            } => {
                let (p, name) = self.entry(b, &loc)?;
                let pre = self.dir(&p)?;
                let g = Self::new_gfid(&xdata)?;
                let made = self
                    .brick
                    .mkdir(&p, name, mode & !umask & 0o7777, &g, owner(creds));
                self.made(&p, pre, made, None)
            }
            R::Symlink {
                linkpath,
                loc,
                xdata,
                ..
            } => {
                let (p, name) = self.entry(b, &loc)?;
                let target = b.name(linkpath)?;
                let pre = self.dir(&p)?;
                let g = Self::new_gfid(&xdata)?;
                let made = self.brick.symlink(&p, name, target, &g, owner(creds));
                self.made(&p, pre, made, None)
            }
            R::Create {
                loc,
                flags,
                mode,
                umask,
                fd,
                xdata,
            } => {
                let (p, name) = self.entry(b, &loc)?;
                let pre = self.dir(&p)?;
                let g = Self::new_gfid(&xdata)?;
                let perm = mode & !umask & 0o7777;
                let buf = self
                    .brick
                    .create(&p, name, perm, &g, owner(creds))
                    .map_err(os)?;
                self.bind(
                    fd,
                    g,
                    IaType::Reg,
                    flags & !(libc::O_CREAT | libc::O_EXCL | libc::O_TRUNC),
                )?;
                self.made(&p, pre, Ok(buf), Some(fd))
            }
            R::Link { oldloc, newloc, .. } => {
                let g = self.resolve(b, &oldloc)?;
                let (p, name) = self.entry(b, &newloc)?;
                let pre = self.dir(&p)?;
                let made = self.brick.link(&g, &p, name);
                self.made(&p, pre, made, None)
            }
            R::Unlink { loc, .. } | R::Rmdir { loc, .. } => {
                let (p, name) = self.entry(b, &loc)?;
                let preparent = self.dir(&p)?;
                if matches!(req, R::Rmdir { .. }) {
                    self.brick.rmdir(&p, name).map_err(os)?;
                } else {
                    self.brick.unlink(&p, name).map_err(os)?;
                }
                Ok(Reply::ok(
                    0,
                    Body::Parent {
                        preparent,
                        postparent: self.dir(&p)?,
                    },
                ))
            }
            R::Rename { oldloc, newloc } => {
                let (op, oname) = self.entry(b, &oldloc)?;
                let (np, nname) = self.entry(b, &newloc)?;
                let (preoldparent, prenewparent) = (self.dir(&op)?, self.dir(&np)?);
                let buf = self.brick.rename(&op, oname, &np, nname).map_err(os)?;
                Ok(Reply::ok(
                    0,
                    Body::Rename {
                        buf,
                        preoldparent,
                        postoldparent: self.dir(&op)?,
                        prenewparent,
                        postnewparent: self.dir(&np)?,
                    },
                ))
            }
            R::Truncate { loc, offset } => {
                let g = self.resolve(b, &loc)?;
                self.change(&g, |br| br.truncate(&g, offset))
            }
            R::Ftruncate { fd, offset } => {
                let pre = self.fstat(fd)?;
                let (g, f) = self.file(fd)?;
                f.set_len(offset).map_err(os)?;
                let post = brick::iatt(g, &f.metadata().map_err(os)?);
                Ok(Reply::ok(0, Body::Change { pre, post }))
            }
            R::Open { loc, flags, fd } => {
                let g = self.resolve(b, &loc)?;
                let st = self.brick.stat(&g).map_err(os)?;
                if st.ty == IaType::Dir && flags & libc::O_ACCMODE != libc::O_RDONLY {
                    return Err(errno::EISDIR);
                }
                self.bind(fd, g, st.ty, flags & !libc::O_TRUNC)?;
                if flags & libc::O_TRUNC != 0 && st.ty == IaType::Reg {
                    let (_, f) = self.file(fd)?;
                    f.set_len(0).map_err(os)?;
                }
                Ok(Reply::ok(0, Body::Fd { fd }))
            }
            R::Opendir { loc, fd } => {
                let g = self.resolve(b, &loc)?;
                self.dir(&g)?;
                self.bind(fd, g, IaType::Dir, 0)?;
                Ok(Reply::ok(0, Body::Fd { fd }))
            }
            R::Readv {
                fd, size, offset, ..
            } => {
                let (g, f) = self.file(fd)?;
                let want = b.area.len().min(size as usize);
                let area = &mut b.area[..want];
                let mut done = 0;
                while done < want {
                    match f.read_at(&mut area[done..], offset + done as u64) {
                        Ok(0) => break,
                        Ok(n) => done += n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(os(e)),
                    }
                }
                let stbuf = brick::iatt(g, &f.metadata().map_err(os)?);
                let data = Span {
                    off: b.base,
                    len: done as u32,
                };
                Ok(Reply::ok(done as i32, Body::Read { data, stbuf }))
            }
            R::Writev {
                fd,
                data,
                offset,
                flags,
            } => {
                let bytes = b.bytes(data)?;
                let sync = (flags as i32 | self.open(fd)?.flags) & SYNC_FLAGS != 0;
                let (g, f) = self.file(fd)?;
                let pre = brick::iatt(g, &f.metadata().map_err(os)?);
                f.write_all_at(bytes, offset).map_err(os)?;
                if sync {
                    f.sync_data().map_err(os)?;
                }
                let post = brick::iatt(g, &f.metadata().map_err(os)?);
                Ok(Reply::ok(bytes.len() as i32, Body::Change { pre, post }))
            }
            R::Statfs { loc } => {
                self.resolve(b, &loc)?;
                let buf = self.brick.statfs().map_err(os)?;
                Ok(Reply::ok(0, Body::Statfs { buf }))
            }
            R::Flush { fd } => {
                self.open(fd)?;
                Ok(Reply::ok(0, Body::Empty))
            }
            R::Fsync { fd, datasync } => {
                let pre = self.fstat(fd)?;
                let (g, f) = self.file(fd)?;
                if datasync {
                    f.sync_data()
                } else {
                    f.sync_all()
                }
                .map_err(os)?;
                let post = brick::iatt(g, &f.metadata().map_err(os)?);
                Ok(Reply::ok(0, Body::Change { pre, post }))
            }
            R::Setxattr {
                loc, name, value, ..
            } => {
                let g = self.resolve(b, &loc)?;
                let (n, v) = (Self::xattr_name(b, name)?, b.bytes(value)?);
                self.brick.setxattr(&g, n, v).map_err(os)?;
                Ok(Reply::ok(0, Body::Empty))
            }
            R::Fsetxattr {
                fd, name, value, ..
            } => {
                let g = self.open(fd)?.gfid;
                let (n, v) = (Self::xattr_name(b, name)?, b.bytes(value)?);
                self.brick.setxattr(&g, n, v).map_err(os)?;
                Ok(Reply::ok(0, Body::Empty))
            }
            R::Getxattr { loc, name } => {
                let g = self.resolve(b, &loc)?;
                self.getxattr(b, &g, name)
            }
            R::Fgetxattr { fd, name } => {
                let g = self.open(fd)?.gfid;
                self.getxattr(b, &g, name)
            }
            R::Removexattr { loc, name } => {
                let g = self.resolve(b, &loc)?;
                self.brick
                    .removexattr(&g, Self::xattr_name(b, name)?)
                    .map_err(os)?;
                Ok(Reply::ok(0, Body::Empty))
            }
            R::Fremovexattr { fd, name } => {
                let g = self.open(fd)?.gfid;
                self.brick
                    .removexattr(&g, Self::xattr_name(b, name)?)
                    .map_err(os)?;
                Ok(Reply::ok(0, Body::Empty))
            }
            R::Readdir { fd, size, offset } => self.readdir(b, fd, size, offset, false),
            R::Readdirp { fd, size, offset } => self.readdir(b, fd, size, offset, true),
            R::Setattr { loc, stbuf, valid } => {
                let g = self.resolve(b, &loc)?;
                let s = set_attr(&stbuf, valid);
                self.change(&g, |br| br.setattr(&g, &s))
            }
            R::Fsetattr { fd, stbuf, valid } => {
                let g = self.open(fd)?.gfid;
                let s = set_attr(&stbuf, valid);
                self.change(&g, |br| br.setattr(&g, &s))
            }
            // §5.7: posix has no locks; features/locks above it answers them.
            R::Inodelk { .. } | R::Finodelk { .. } | R::Entrylk { .. } | R::Lk { .. } => {
                Err(errno::ENOSYS)
            }
            R::Release { fd } | R::Releasedir { fd } => {
                self.fds.remove(&fd.0);
                Ok(Reply::ok(0, Body::Empty))
            }
            R::Xattrop { loc, flags, dict } => {
                let g = self.resolve(b, &loc)?;
                self.xattrop(b, &g, flags, dict)
            }
            R::Fxattrop { fd, flags, dict } => {
                let g = self.open(fd)?.gfid;
                self.xattrop(b, &g, flags, dict)
            }
            // Fops posix has no use for (ipc), or that the core learns later, are refused
            // rather than breaking the build of the shell.
            #[allow(unreachable_patterns)]
            _ => Err(errno::ENOTSUP),
        }
    }
}

/// setattr's `valid` bits (§3.3) as the brick's changes; `*_NOW` means the time now.
pub fn set_attr(st: &Iatt, valid: i32) -> SetAttr {
    let now = || {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        (d.as_secs() as i64, d.subsec_nanos())
    };
    let on = |bit| valid & bit != 0;
    SetAttr {
        perm: on(set::MODE).then_some(u32::from(st.prot) & 0o7777),
        uid: on(set::UID).then_some(st.uid),
        gid: on(set::GID).then_some(st.gid),
        atime: if on(set::ATIME_NOW) {
            Some(now())
        } else {
            on(set::ATIME).then_some((st.atime, st.atime_nsec))
        },
        mtime: if on(set::MTIME_NOW) {
            Some(now())
        } else {
            on(set::MTIME).then_some((st.mtime, st.mtime_nsec))
        },
    }
}
