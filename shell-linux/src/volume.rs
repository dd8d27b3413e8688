//! [`Volume`]: the fops by gfid of a GlusterFS volume as its top translator answers them, the
//! surface a FUSE bridge winds into. A [`Brick`](crate::brick::Brick) is one (storage/posix
//! alone, synchronous: each call is one fop's whole answer).

use std::ffi::OsStr;
use std::io;
use std::path::PathBuf;

use keelson_core::xlator::handle::Gfid;

use crate::brick::{Attr, DirEntry, SetAttr};

/// A volume's fops, addressed by gfid as storage/posix is.
pub trait Volume: Send + Sync + 'static {
    /// The attributes of the object with this gfid.
    fn stat(&self, gfid: &Gfid) -> io::Result<Attr>;

    /// Looks `name` up in `parent`. An object without a gfid (written to the brick behind
    /// glusterfs's back) gets one here, with its handle, as posix heals on a lookup that
    /// carries a `gfid-req` (which FUSE always sends).
    fn lookup(&self, parent: &Gfid, name: &OsStr) -> io::Result<Attr>;

    /// Creates a regular file (O_EXCL) with `gfid`, owned by `owner` when given.
    fn create(
        &self,
        parent: &Gfid,
        name: &OsStr,
        perm: u32,
        gfid: &Gfid,
        owner: Option<(u32, u32)>,
    ) -> io::Result<Attr>;

    /// Creates a directory with `gfid`.
    fn mkdir(
        &self,
        parent: &Gfid,
        name: &OsStr,
        perm: u32,
        gfid: &Gfid,
        owner: Option<(u32, u32)>,
    ) -> io::Result<Attr>;

    /// Creates a symlink to `target` with `gfid` (on the link itself).
    fn symlink(
        &self,
        parent: &Gfid,
        name: &OsStr,
        target: &OsStr,
        gfid: &Gfid,
        owner: Option<(u32, u32)>,
    ) -> io::Result<Attr>;

    /// Creates a FIFO, socket or device node (`mode` carries the type bits).
    fn mknod(
        &self,
        parent: &Gfid,
        name: &OsStr,
        mode: u32,
        rdev: u64,
        gfid: &Gfid,
        owner: Option<(u32, u32)>,
    ) -> io::Result<Attr>;

    /// A new name `newname` in `newparent` for the non-directory `gfid`.
    fn link(&self, gfid: &Gfid, newparent: &Gfid, newname: &OsStr) -> io::Result<Attr>;

    /// Removes a non-directory name; the handle goes with the last name.
    fn unlink(&self, parent: &Gfid, name: &OsStr) -> io::Result<()>;

    /// Removes an empty directory and its handle.
    fn rmdir(&self, parent: &Gfid, name: &OsStr) -> io::Result<()>;

    /// Renames `oldname` in `oldparent` to `newname` in `newparent`, replacing what is there
    /// as rename(2) does, and keeps handles and gfid2path xattrs in step.
    fn rename(
        &self,
        oldparent: &Gfid,
        oldname: &OsStr,
        newparent: &Gfid,
        newname: &OsStr,
    ) -> io::Result<Attr>;

    /// The entries of a directory (without `.`, `..` and the root's `.glusterfs`), each with
    /// its attributes, in the backend's order.
    fn readdir(&self, gfid: &Gfid) -> io::Result<Vec<DirEntry>>;

    /// Reads up to `buf.len()` bytes at `offset`; returns how many (0 at the end).
    fn read(&self, gfid: &Gfid, offset: u64, buf: &mut [u8]) -> io::Result<usize>;

    /// Writes `data` at `offset` (with `sync`, durably, as O_SYNC/O_DSYNC writes are).
    fn write(&self, gfid: &Gfid, offset: u64, data: &[u8], sync: bool) -> io::Result<Attr>;

    /// Makes a file's data durable (`fsync`; `datasync` for fdatasync).
    fn fsync(&self, gfid: &Gfid, datasync: bool) -> io::Result<()>;

    /// Sets a file's size.
    fn truncate(&self, gfid: &Gfid, size: u64) -> io::Result<Attr>;

    /// Changes mode, owner and times; symlinks keep their mode (Linux has none to change).
    fn setattr(&self, gfid: &Gfid, set: &SetAttr) -> io::Result<Attr>;

    /// A symlink's target.
    fn readlink(&self, gfid: &Gfid) -> io::Result<PathBuf>;

    /// A user-visible xattr; the gfid xattrs are posix's own.
    fn getxattr(&self, gfid: &Gfid, name: &str) -> io::Result<Vec<u8>>;

    /// Sets an xattr; changing the gfid xattrs is refused (EPERM), as posix does.
    fn setxattr(&self, gfid: &Gfid, name: &str, value: &[u8]) -> io::Result<()>;

    /// Removes an xattr (the gfid xattrs are refused, EPERM).
    fn removexattr(&self, gfid: &Gfid, name: &str) -> io::Result<()>;

    /// The xattr names a client sees (without posix's own gfid xattrs).
    fn listxattr(&self, gfid: &Gfid) -> io::Result<Vec<String>>;

    /// The brick file system's statistics.
    fn statfs(&self) -> io::Result<nix::sys::statvfs::Statvfs>;
}
