//! Fop request and reply arguments (translators.md §3.2–3.3), in upstream's argument order.
//!
//! Byte arguments (paths, names, write data, xattr values, link targets) are [`Span`]s into the
//! request's own buffer, which the shell lends with the request and gets back with the reply;
//! so a request is `Copy`, crosses every layer without copying data, and holds no lifetime.
//! Reply bytes (read data, link targets, xattr values, directory entries) are written by the
//! leaf into the free tail of the same buffer. `xdata` is modelled by the one key the core
//! acts on, `gfid-req` (§5.6).

use super::fop::Fop;
use super::iatt::{Gfid, Iatt, Statvfs};

/// Positive POSIX errno values as GlusterFS carries them in `op_errno` (Linux numbering).
#[allow(missing_docs)]
pub mod errno {
    pub const EPERM: i32 = 1;
    pub const ENOENT: i32 = 2;
    pub const EIO: i32 = 5;
    pub const EBADF: i32 = 9;
    pub const EAGAIN: i32 = 11;
    pub const ENOMEM: i32 = 12;
    pub const EACCES: i32 = 13;
    pub const EEXIST: i32 = 17;
    pub const EXDEV: i32 = 18;
    pub const ENOTDIR: i32 = 20;
    pub const EISDIR: i32 = 21;
    pub const EINVAL: i32 = 22;
    pub const EFBIG: i32 = 27;
    pub const ENOSPC: i32 = 28;
    pub const ERANGE: i32 = 34;
    pub const ENAMETOOLONG: i32 = 36;
    pub const ENOSYS: i32 = 38;
    pub const ENOTEMPTY: i32 = 39;
    pub const ELOOP: i32 = 40;
    pub const ENODATA: i32 = 61;
    pub const ENOBUFS: i32 = 105;
    pub const ENOTSUP: i32 = 95;
    pub const ENOTCONN: i32 = 107;
    pub const ESTALE: i32 = 116;
}

/// A range of the request buffer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Span {
    /// Start offset.
    pub off: u32,
    /// Length.
    pub len: u32,
}

impl Span {
    /// No bytes.
    pub const EMPTY: Span = Span { off: 0, len: 0 };

    /// Whether it covers nothing.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The bytes it covers in `buf`, if in range.
    pub fn get<'b>(&self, buf: &'b [u8]) -> Option<&'b [u8]> {
        let start = usize::try_from(self.off).ok()?;
        let end = start.checked_add(usize::try_from(self.len).ok()?)?;
        buf.get(start..end)
    }
}

/// Builds a request's bytes at the front of the buffer lent with it.
#[derive(Debug)]
pub struct RequestBytes<'b> {
    buf: &'b mut [u8],
    len: usize,
}

/// The buffer cannot hold the bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct BufferFull {
    /// The buffer size that would have been needed.
    pub needed: usize,
}

impl core::fmt::Display for BufferFull {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "the request buffer needs {} bytes", self.needed)
    }
}

impl<'b> RequestBytes<'b> {
    /// Starts with nothing written.
    pub fn new(buf: &'b mut [u8]) -> Self {
        RequestBytes { buf, len: 0 }
    }

    /// Appends `bytes` and names them.
    pub fn put(&mut self, bytes: &[u8]) -> Result<Span, BufferFull> {
        let end = self.len + bytes.len();
        let dst = self
            .buf
            .get_mut(self.len..end)
            .ok_or(BufferFull { needed: end })?;
        dst.copy_from_slice(bytes);
        let span = Span {
            off: u32::try_from(self.len).map_err(|_| BufferFull { needed: end })?,
            len: u32::try_from(bytes.len()).map_err(|_| BufferFull { needed: end })?,
        };
        self.len = end;
        Ok(span)
    }

    /// A [`Loc`] by path, with its basename.
    pub fn path(&mut self, path: &[u8]) -> Result<Loc, BufferFull> {
        let p = self.put(path)?;
        let base = path.iter().rposition(|&c| c == b'/').map_or(0, |i| i + 1);
        let name = Span {
            off: p.off + base as u32,
            len: p.len - base as u32,
        };
        Ok(Loc {
            path: p,
            name,
            ..Loc::default()
        })
    }

    /// Bytes written so far (the `req_len` to submit with).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The buffer and the request length.
    pub fn finish(self) -> (&'b mut [u8], usize) {
        (self.buf, self.len)
    }
}

/// `loc_t`: an object by gfid, or by parent gfid and basename, or by path from the root.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Loc {
    /// The full path (may be empty).
    pub path: Span,
    /// The basename (may be empty).
    pub name: Span,
    /// The object's gfid (null when not yet known).
    pub gfid: Gfid,
    /// The parent's gfid (null when not known).
    pub pargfid: Gfid,
}

/// `fd_t`: a number the originator chose when it opened the object; each translator keeps
/// its own context for it until `release`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Fd(pub u64);

/// `gf_flock` (§5.7); `l_owner` is the stack's lk_owner.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[allow(missing_docs)]
pub struct Flock {
    pub ty: i16,
    pub whence: i16,
    pub start: i64,
    /// 0 = to infinity.
    pub len: i64,
    pub pid: i32,
}

/// `xdata`, reduced to the keys the core acts on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Xdata {
    /// `gfid-req`: the gfid a new entry must get.
    pub gfid_req: Option<Gfid>,
}

/// setattr's `valid` bits (§3.3).
#[allow(missing_docs)]
pub mod set {
    pub const MODE: i32 = 0x1;
    pub const UID: i32 = 0x2;
    pub const GID: i32 = 0x4;
    pub const SIZE: i32 = 0x8;
    pub const ATIME: i32 = 0x10;
    pub const MTIME: i32 = 0x20;
    pub const CTIME: i32 = 0x40;
    pub const ATIME_NOW: i32 = 0x80;
    pub const MTIME_NOW: i32 = 0x100;
}

/// A fop call's arguments after `frame, this` (§3.3), in upstream order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[allow(missing_docs)]
pub enum Request {
    Lookup {
        loc: Loc,
        xdata: Xdata,
    },
    Stat {
        loc: Loc,
    },
    Fstat {
        fd: Fd,
    },
    Access {
        loc: Loc,
        mask: i32,
    },
    Readlink {
        loc: Loc,
        size: u32,
    },
    Mknod {
        loc: Loc,
        mode: u32,
        rdev: u64,
        umask: u32,
        xdata: Xdata,
    },
    Mkdir {
        loc: Loc,
        mode: u32,
        umask: u32,
        xdata: Xdata,
    },
    Unlink {
        loc: Loc,
        flags: i32,
    },
    Rmdir {
        loc: Loc,
        flags: i32,
    },
    Symlink {
        linkpath: Span,
        loc: Loc,
        umask: u32,
        xdata: Xdata,
    },
    Rename {
        oldloc: Loc,
        newloc: Loc,
    },
    Link {
        oldloc: Loc,
        newloc: Loc,
        xdata: Xdata,
    },
    Truncate {
        loc: Loc,
        offset: u64,
    },
    Ftruncate {
        fd: Fd,
        offset: u64,
    },
    Open {
        loc: Loc,
        flags: i32,
        fd: Fd,
    },
    Create {
        loc: Loc,
        flags: i32,
        mode: u32,
        umask: u32,
        fd: Fd,
        xdata: Xdata,
    },
    Readv {
        fd: Fd,
        size: u32,
        offset: u64,
        flags: u32,
    },
    /// One vector: `count` is 1.
    Writev {
        fd: Fd,
        data: Span,
        offset: u64,
        flags: u32,
    },
    Statfs {
        loc: Loc,
    },
    Flush {
        fd: Fd,
    },
    /// `datasync`: non-zero flags.
    Fsync {
        fd: Fd,
        datasync: bool,
    },
    /// One name/value pair of the dict.
    Setxattr {
        loc: Loc,
        name: Span,
        value: Span,
        flags: i32,
    },
    Fsetxattr {
        fd: Fd,
        name: Span,
        value: Span,
        flags: i32,
    },
    /// An empty `name` lists the names.
    Getxattr {
        loc: Loc,
        name: Span,
    },
    Fgetxattr {
        fd: Fd,
        name: Span,
    },
    Removexattr {
        loc: Loc,
        name: Span,
    },
    Fremovexattr {
        fd: Fd,
        name: Span,
    },
    Opendir {
        loc: Loc,
        fd: Fd,
    },
    Readdir {
        fd: Fd,
        size: u32,
        offset: u64,
    },
    Readdirp {
        fd: Fd,
        size: u32,
        offset: u64,
    },
    Setattr {
        loc: Loc,
        stbuf: Iatt,
        valid: i32,
    },
    Fsetattr {
        fd: Fd,
        stbuf: Iatt,
        valid: i32,
    },
    Inodelk {
        domain: Span,
        loc: Loc,
        cmd: i32,
        lock: Flock,
    },
    Finodelk {
        domain: Span,
        fd: Fd,
        cmd: i32,
        lock: Flock,
    },
    /// An empty `basename` locks the whole directory.
    Entrylk {
        domain: Span,
        loc: Loc,
        basename: Span,
        cmd: i32,
        ty: i32,
    },
    Lk {
        fd: Fd,
        cmd: i32,
        lock: Flock,
    },
    /// The `release` cbk, delivered down the graph like a fop (upstream calls it on each
    /// translator holding fd context when the fd's last reference goes).
    Release {
        fd: Fd,
    },
    /// The `releasedir` cbk, likewise.
    Releasedir {
        fd: Fd,
    },
    /// An atomic read-modify-write of xattrs (§3.3): `flags` is a
    /// [`xattrop::flags`](super::xattrop::flags) value, `dict` the name/value pairs in the
    /// [`xattrop`](super::xattrop) dict layout; the reply's [`Body::Xattr`] is a dict of the
    /// results in the same layout.
    Xattrop {
        loc: Loc,
        flags: i32,
        dict: Span,
    },
    /// xattrop on an open fd.
    Fxattrop {
        fd: Fd,
        flags: i32,
        dict: Span,
    },
    /// A translator-defined operation (`ipc(op, xdata)`); cluster/replicate's background heals
    /// arrive as one.
    Ipc {
        op: i32,
    },
}

impl Request {
    /// The fop (RELEASE/RELEASEDIR for the cbks).
    pub fn fop(&self) -> Fop {
        use Request as R;
        match self {
            R::Lookup { .. } => Fop::Lookup,
            R::Stat { .. } => Fop::Stat,
            R::Fstat { .. } => Fop::Fstat,
            R::Access { .. } => Fop::Access,
            R::Readlink { .. } => Fop::Readlink,
            R::Mknod { .. } => Fop::Mknod,
            R::Mkdir { .. } => Fop::Mkdir,
            R::Unlink { .. } => Fop::Unlink,
            R::Rmdir { .. } => Fop::Rmdir,
            R::Symlink { .. } => Fop::Symlink,
            R::Rename { .. } => Fop::Rename,
            R::Link { .. } => Fop::Link,
            R::Truncate { .. } => Fop::Truncate,
            R::Ftruncate { .. } => Fop::Ftruncate,
            R::Open { .. } => Fop::Open,
            R::Create { .. } => Fop::Create,
            R::Readv { .. } => Fop::Read,
            R::Writev { .. } => Fop::Write,
            R::Statfs { .. } => Fop::Statfs,
            R::Flush { .. } => Fop::Flush,
            R::Fsync { .. } => Fop::Fsync,
            R::Setxattr { .. } => Fop::Setxattr,
            R::Fsetxattr { .. } => Fop::Fsetxattr,
            R::Getxattr { .. } => Fop::Getxattr,
            R::Fgetxattr { .. } => Fop::Fgetxattr,
            R::Removexattr { .. } => Fop::Removexattr,
            R::Fremovexattr { .. } => Fop::Fremovexattr,
            R::Opendir { .. } => Fop::Opendir,
            R::Readdir { .. } => Fop::Readdir,
            R::Readdirp { .. } => Fop::Readdirp,
            R::Setattr { .. } => Fop::Setattr,
            R::Fsetattr { .. } => Fop::Fsetattr,
            R::Inodelk { .. } => Fop::Inodelk,
            R::Finodelk { .. } => Fop::Finodelk,
            R::Entrylk { .. } => Fop::Entrylk,
            R::Lk { .. } => Fop::Lk,
            R::Release { .. } => Fop::Release,
            R::Releasedir { .. } => Fop::Releasedir,
            R::Xattrop { .. } => Fop::Xattrop,
            R::Fxattrop { .. } => Fop::Fxattrop,
            R::Ipc { .. } => Fop::Ipc,
        }
    }

    /// The `loc` argument (the old one for rename and link).
    pub fn loc(&self) -> Option<&Loc> {
        use Request as R;
        match self {
            R::Lookup { loc, .. }
            | R::Stat { loc }
            | R::Access { loc, .. }
            | R::Readlink { loc, .. }
            | R::Mknod { loc, .. }
            | R::Mkdir { loc, .. }
            | R::Unlink { loc, .. }
            | R::Rmdir { loc, .. }
            | R::Symlink { loc, .. }
            | R::Truncate { loc, .. }
            | R::Open { loc, .. }
            | R::Create { loc, .. }
            | R::Statfs { loc }
            | R::Setxattr { loc, .. }
            | R::Getxattr { loc, .. }
            | R::Removexattr { loc, .. }
            | R::Opendir { loc, .. }
            | R::Setattr { loc, .. }
            | R::Inodelk { loc, .. }
            | R::Entrylk { loc, .. }
            | R::Xattrop { loc, .. } => Some(loc),
            R::Rename { oldloc, .. } | R::Link { oldloc, .. } => Some(oldloc),
            _ => None,
        }
    }

    /// The `fd` argument.
    pub fn fd(&self) -> Option<Fd> {
        use Request as R;
        match *self {
            R::Fstat { fd }
            | R::Ftruncate { fd, .. }
            | R::Open { fd, .. }
            | R::Create { fd, .. }
            | R::Readv { fd, .. }
            | R::Writev { fd, .. }
            | R::Flush { fd }
            | R::Fsync { fd, .. }
            | R::Fsetxattr { fd, .. }
            | R::Fgetxattr { fd, .. }
            | R::Fremovexattr { fd, .. }
            | R::Opendir { fd, .. }
            | R::Readdir { fd, .. }
            | R::Readdirp { fd, .. }
            | R::Fsetattr { fd, .. }
            | R::Finodelk { fd, .. }
            | R::Lk { fd, .. }
            | R::Release { fd }
            | R::Releasedir { fd }
            | R::Fxattrop { fd, .. } => Some(fd),
            _ => None,
        }
    }

    /// Every span argument, for range checks.
    pub fn spans(&self) -> impl Iterator<Item = Span> {
        use Request as R;
        let loc = |l: &Loc| [l.path, l.name];
        let mut s = [Span::EMPTY; 6];
        if let Some(l) = self.loc() {
            s[..2].copy_from_slice(&loc(l));
        }
        match *self {
            R::Rename { newloc, .. } | R::Link { newloc, .. } => {
                s[2..4].copy_from_slice(&loc(&newloc))
            }
            R::Symlink { linkpath, .. } => s[2] = linkpath,
            R::Writev { data, .. } => s[2] = data,
            R::Setxattr { name, value, .. } | R::Fsetxattr { name, value, .. } => {
                s[2] = name;
                s[3] = value;
            }
            R::Getxattr { name, .. }
            | R::Fgetxattr { name, .. }
            | R::Removexattr { name, .. }
            | R::Fremovexattr { name, .. } => s[2] = name,
            R::Inodelk { domain, .. } | R::Finodelk { domain, .. } => s[2] = domain,
            R::Xattrop { dict, .. } | R::Fxattrop { dict, .. } => s[2] = dict,
            R::Entrylk {
                domain, basename, ..
            } => {
                s[2] = domain;
                s[3] = basename;
            }
            _ => {}
        }
        s.into_iter()
    }
}

/// A callback's results after `op_ret, op_errno` (§3.3), grouped by shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
// Without an allocator nothing can be boxed: the variants stay inline.
#[allow(clippy::large_enum_variant)]
#[allow(missing_docs)]
pub enum Body {
    /// `xdata` only (flush, setxattr, removexattr, access, the lock fops, release), and every
    /// failure.
    Empty,
    /// lookup: `inode, buf, xdata, postparent`.
    Lookup {
        inode: Gfid,
        buf: Iatt,
        postparent: Iatt,
    },
    /// stat, fstat: `buf`.
    Attr { buf: Iatt },
    /// mknod, mkdir, symlink, link: `inode, buf, preparent, postparent`; create adds `fd`
    /// first.
    Entry {
        fd: Option<Fd>,
        inode: Gfid,
        buf: Iatt,
        preparent: Iatt,
        postparent: Iatt,
    },
    /// unlink, rmdir: `preparent, postparent`.
    Parent { preparent: Iatt, postparent: Iatt },
    /// writev, truncate, ftruncate, fsync, setattr, fsetattr: `prebuf, postbuf`.
    Change { pre: Iatt, post: Iatt },
    /// rename.
    Rename {
        buf: Iatt,
        preoldparent: Iatt,
        postoldparent: Iatt,
        prenewparent: Iatt,
        postnewparent: Iatt,
    },
    /// open, opendir: `fd`.
    Fd { fd: Fd },
    /// readv: one vector (in the request buffer) and `stbuf`.
    Read { data: Span, stbuf: Iatt },
    /// readlink: `path, buf`.
    Readlink { path: Span, buf: Iatt },
    /// readdir, readdirp: the entries as [`Dirents`](super::dirent::Dirents) records.
    Entries { data: Span },
    /// getxattr, fgetxattr: the value, or the NUL-separated names for a list; xattrop,
    /// fxattrop: the result dict.
    Xattr { value: Span },
    /// statfs.
    Statfs { buf: Statvfs },
    /// lk: the lock.
    Lock { lock: Flock },
}

/// What a fop unwinds with: `op_ret`, `op_errno` and the results.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Reply {
    /// `op_ret`: negative on failure; bytes for readv/writev, entries for readdir(p), the
    /// value size for getxattr.
    pub op_ret: i32,
    /// `op_errno`: a positive errno when `op_ret < 0`.
    pub op_errno: i32,
    /// The results.
    pub body: Body,
}

impl Reply {
    /// `op_ret = -1` with `errno` and no results, as `default_<fop>_failure_cbk` unwinds.
    pub fn error(errno: i32) -> Reply {
        Reply {
            op_ret: -1,
            op_errno: errno,
            body: Body::Empty,
        }
    }

    /// Success with `op_ret`.
    pub fn ok(op_ret: i32, body: Body) -> Reply {
        Reply {
            op_ret,
            op_errno: 0,
            body,
        }
    }

    /// Whether the body has the shape `fop`'s callback takes (STACK_UNWIND_STRICT's type
    /// check); a failure carries no results.
    pub fn fits(&self, fop: Fop) -> bool {
        if self.op_ret < 0 {
            return matches!(self.body, Body::Empty);
        }
        match self.body {
            Body::Empty => matches!(
                fop,
                Fop::Flush
                    | Fop::Setxattr
                    | Fop::Fsetxattr
                    | Fop::Removexattr
                    | Fop::Fremovexattr
                    | Fop::Access
                    | Fop::Inodelk
                    | Fop::Finodelk
                    | Fop::Entrylk
                    | Fop::Fentrylk
                    | Fop::Fsyncdir
                    | Fop::Release
                    | Fop::Releasedir
                    | Fop::Ipc
            ),
            Body::Lookup { .. } => fop == Fop::Lookup,
            Body::Attr { .. } => matches!(fop, Fop::Stat | Fop::Fstat),
            Body::Entry { fd, .. } => match fop {
                Fop::Create => fd.is_some(),
                Fop::Mknod | Fop::Mkdir | Fop::Symlink | Fop::Link => fd.is_none(),
                _ => false,
            },
            Body::Parent { .. } => matches!(fop, Fop::Unlink | Fop::Rmdir),
            Body::Change { .. } => matches!(
                fop,
                Fop::Write
                    | Fop::Truncate
                    | Fop::Ftruncate
                    | Fop::Fsync
                    | Fop::Setattr
                    | Fop::Fsetattr
            ),
            Body::Rename { .. } => fop == Fop::Rename,
            Body::Fd { .. } => matches!(fop, Fop::Open | Fop::Opendir),
            Body::Read { .. } => fop == Fop::Read,
            Body::Readlink { .. } => fop == Fop::Readlink,
            Body::Entries { .. } => matches!(fop, Fop::Readdir | Fop::Readdirp),
            Body::Xattr { .. } => matches!(
                fop,
                Fop::Getxattr | Fop::Fgetxattr | Fop::Xattrop | Fop::Fxattrop
            ),
            Body::Statfs { .. } => fop == Fop::Statfs,
            Body::Lock { .. } => fop == Fop::Lk,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_follow_the_callback_signatures() {
        let e = Body::Entry {
            fd: None,
            inode: Gfid::ROOT,
            buf: Iatt::default(),
            preparent: Iatt::default(),
            postparent: Iatt::default(),
        };
        assert!(Reply::ok(0, e).fits(Fop::Mkdir));
        assert!(!Reply::ok(0, e).fits(Fop::Create));
        assert!(Reply::error(errno::ENOENT).fits(Fop::Lookup));
        assert!(!Reply {
            op_ret: -1,
            op_errno: 2,
            body: e
        }
        .fits(Fop::Mkdir));
        assert!(Reply::ok(0, Body::Empty).fits(Fop::Flush));
        assert!(!Reply::ok(0, Body::Empty).fits(Fop::Stat));
    }

    #[test]
    fn spans_are_checked_against_the_buffer() {
        let buf = b"hello";
        assert_eq!(Span { off: 1, len: 3 }.get(buf), Some(&b"ell"[..]));
        assert_eq!(Span { off: 4, len: 2 }.get(buf), None);
        assert_eq!(
            Span {
                off: u32::MAX,
                len: u32::MAX
            }
            .get(buf),
            None
        );
        let r = Request::Rename {
            oldloc: Loc {
                name: Span { off: 0, len: 1 },
                ..Loc::default()
            },
            newloc: Loc {
                name: Span { off: 2, len: 3 },
                ..Loc::default()
            },
        };
        assert_eq!(r.fop(), Fop::Rename);
        assert_eq!(r.spans().filter(|s| !s.is_empty()).count(), 2);
    }
}
