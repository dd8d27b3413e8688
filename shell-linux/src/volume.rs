//! [`Volume`]: a volume's fops by gfid as its top translator answers them, the surface a FUSE
//! bridge winds into. Two implement it: a [`Brick`] (storage/posix alone, synchronous: each
//! call is one fop's whole answer, and opens keep no state) and a
//! [`GraphVolume`](crate::graphvol::GraphVolume) (any translator graph, run by the core's
//! frame engine, with real fds so that translators such as write-behind see opens, flushes
//! and releases).
//!
//! Attributes are the core's [`Iatt`] (translators.md §6) on both sides, so a reply crosses
//! from the brick through the graph to FUSE unconverted; FUSE's own form is made in one place
//! (`fuse::file_attr`).

use std::ffi::OsStr;
use std::io;
use std::path::PathBuf;

use keelson_core::xlator::handle::Gfid;
use keelson_core::xlator::iatt::{Iatt, Statvfs};

use crate::brick::{Brick, DirEntry, SetAttr};

/// `O_SYNC` and `O_DSYNC`: writes on such an fd are durable when they return.
pub const SYNC_FLAGS: i32 = libc::O_SYNC | libc::O_DSYNC;

/// A volume's fops. `fh` is what [`open`](Volume::open) or [`create`](Volume::create) returned
/// for the open file, 0 when the volume keeps no per-open state (or the caller has none: a
/// `stat` without an fd).
pub trait Volume: Send + Sync + 'static {
    /// The attributes of the object (`fstat` through `fh` when given).
    fn stat(&self, gfid: &Gfid, fh: u64) -> io::Result<Iatt>;

    /// Looks `name` up in `parent`.
    fn lookup(&self, parent: &Gfid, name: &OsStr) -> io::Result<Iatt>;

    /// Creates and opens a regular file (O_EXCL) with `gfid`, owned by `owner` when given;
    /// `flags` are the open(2) flags. Returns its attributes and the open file's handle.
    fn create(
        &self,
        parent: &Gfid,
        name: &OsStr,
        perm: u32,
        flags: i32,
        gfid: &Gfid,
        owner: Option<(u32, u32)>,
    ) -> io::Result<(Iatt, u64)>;

    /// Creates a directory with `gfid`.
    fn mkdir(
        &self,
        parent: &Gfid,
        name: &OsStr,
        perm: u32,
        gfid: &Gfid,
        owner: Option<(u32, u32)>,
    ) -> io::Result<Iatt>;

    /// Creates a symlink to `target` with `gfid` (on the link itself).
    fn symlink(
        &self,
        parent: &Gfid,
        name: &OsStr,
        target: &OsStr,
        gfid: &Gfid,
        owner: Option<(u32, u32)>,
    ) -> io::Result<Iatt>;

    /// Creates a FIFO, socket or device node (`mode` carries the type bits, `rdev` is a
    /// `dev_t`).
    fn mknod(
        &self,
        parent: &Gfid,
        name: &OsStr,
        mode: u32,
        rdev: u64,
        gfid: &Gfid,
        owner: Option<(u32, u32)>,
    ) -> io::Result<Iatt>;

    /// A new name `newname` in `newparent` for the non-directory `gfid`.
    fn link(&self, gfid: &Gfid, newparent: &Gfid, newname: &OsStr) -> io::Result<Iatt>;

    /// Removes a non-directory name.
    fn unlink(&self, parent: &Gfid, name: &OsStr) -> io::Result<()>;

    /// Removes an empty directory.
    fn rmdir(&self, parent: &Gfid, name: &OsStr) -> io::Result<()>;

    /// Renames `oldname` in `oldparent` to `newname` in `newparent`, replacing what is there
    /// as rename(2) does.
    fn rename(
        &self,
        oldparent: &Gfid,
        oldname: &OsStr,
        newparent: &Gfid,
        newname: &OsStr,
    ) -> io::Result<()>;

    /// The entries of a directory (without `.` and `..`), each with its attributes.
    fn readdir(&self, gfid: &Gfid) -> io::Result<Vec<DirEntry>>;

    /// Opens a file for I/O with open(2) `flags`. `None`: the volume keeps no per-open state
    /// (reads and writes need no handle), which lets a FUSE mount tell the kernel to send no
    /// OPEN, FLUSH or RELEASE at all.
    fn open(&self, gfid: &Gfid, flags: i32) -> io::Result<Option<u64>>;

    /// Reads up to `buf.len()` bytes at `offset`; returns how many (0 at the end). `flags`
    /// are the open file's.
    fn read(
        &self,
        gfid: &Gfid,
        fh: u64,
        offset: u64,
        flags: i32,
        buf: &mut [u8],
    ) -> io::Result<usize>;

    /// Writes `data` at `offset` (durably with O_SYNC/O_DSYNC in `flags`); returns the bytes
    /// taken.
    fn write(
        &self,
        gfid: &Gfid,
        fh: u64,
        offset: u64,
        flags: i32,
        data: &[u8],
    ) -> io::Result<usize>;

    /// A close(2) of the open file (each dup's): what was held back must reach the volume.
    fn flush(&self, gfid: &Gfid, fh: u64) -> io::Result<()>;

    /// The open file's last reference is gone.
    fn release(&self, gfid: &Gfid, fh: u64);

    /// Makes a file's data durable (`fsync`; `datasync` for fdatasync).
    fn fsync(&self, gfid: &Gfid, fh: u64, datasync: bool) -> io::Result<()>;

    /// Sets a file's size.
    fn truncate(&self, gfid: &Gfid, fh: u64, size: u64) -> io::Result<Iatt>;

    /// Changes mode, owner and times.
    fn setattr(&self, gfid: &Gfid, fh: u64, set: &SetAttr) -> io::Result<Iatt>;

    /// A symlink's target.
    fn readlink(&self, gfid: &Gfid) -> io::Result<PathBuf>;

    /// An xattr's value.
    fn getxattr(&self, gfid: &Gfid, name: &str) -> io::Result<Vec<u8>>;

    /// Sets an xattr.
    fn setxattr(&self, gfid: &Gfid, name: &str, value: &[u8]) -> io::Result<()>;

    /// Removes an xattr.
    fn removexattr(&self, gfid: &Gfid, name: &str) -> io::Result<()>;

    /// The xattr names a client sees.
    fn listxattr(&self, gfid: &Gfid) -> io::Result<Vec<String>>;

    /// The volume's file system statistics.
    fn statfs(&self) -> io::Result<Statvfs>;
}

/// A lone brick: opens keep no state, every fop goes to the brick by gfid.
impl Volume for Brick {
    fn stat(&self, gfid: &Gfid, _fh: u64) -> io::Result<Iatt> {
        Brick::stat(self, gfid)
    }
    fn lookup(&self, parent: &Gfid, name: &OsStr) -> io::Result<Iatt> {
        Brick::lookup(self, parent, name)
    }
    fn create(
        &self,
        parent: &Gfid,
        name: &OsStr,
        perm: u32,
        _flags: i32,
        gfid: &Gfid,
        owner: Option<(u32, u32)>,
    ) -> io::Result<(Iatt, u64)> {
        Ok((Brick::create(self, parent, name, perm, gfid, owner)?, 0))
    }
    fn mkdir(
        &self,
        parent: &Gfid,
        name: &OsStr,
        perm: u32,
        gfid: &Gfid,
        owner: Option<(u32, u32)>,
    ) -> io::Result<Iatt> {
        Brick::mkdir(self, parent, name, perm, gfid, owner)
    }
    fn symlink(
        &self,
        parent: &Gfid,
        name: &OsStr,
        target: &OsStr,
        gfid: &Gfid,
        owner: Option<(u32, u32)>,
    ) -> io::Result<Iatt> {
        Brick::symlink(self, parent, name, target, gfid, owner)
    }
    fn mknod(
        &self,
        parent: &Gfid,
        name: &OsStr,
        mode: u32,
        rdev: u64,
        gfid: &Gfid,
        owner: Option<(u32, u32)>,
    ) -> io::Result<Iatt> {
        Brick::mknod(self, parent, name, mode, rdev, gfid, owner)
    }
    fn link(&self, gfid: &Gfid, newparent: &Gfid, newname: &OsStr) -> io::Result<Iatt> {
        Brick::link(self, gfid, newparent, newname)
    }
    fn unlink(&self, parent: &Gfid, name: &OsStr) -> io::Result<()> {
        Brick::unlink(self, parent, name)
    }
    fn rmdir(&self, parent: &Gfid, name: &OsStr) -> io::Result<()> {
        Brick::rmdir(self, parent, name)
    }
    fn rename(
        &self,
        oldparent: &Gfid,
        oldname: &OsStr,
        newparent: &Gfid,
        newname: &OsStr,
    ) -> io::Result<()> {
        Brick::rename(self, oldparent, oldname, newparent, newname).map(drop)
    }
    fn readdir(&self, gfid: &Gfid) -> io::Result<Vec<DirEntry>> {
        Brick::readdir(self, gfid)
    }
    fn open(&self, _gfid: &Gfid, _flags: i32) -> io::Result<Option<u64>> {
        Ok(None)
    }
    fn read(
        &self,
        gfid: &Gfid,
        _fh: u64,
        offset: u64,
        _flags: i32,
        buf: &mut [u8],
    ) -> io::Result<usize> {
        Brick::read(self, gfid, offset, buf)
    }
    fn write(
        &self,
        gfid: &Gfid,
        _fh: u64,
        offset: u64,
        flags: i32,
        data: &[u8],
    ) -> io::Result<usize> {
        Brick::write(self, gfid, offset, data, flags & SYNC_FLAGS != 0)?;
        Ok(data.len())
    }
    fn flush(&self, _gfid: &Gfid, _fh: u64) -> io::Result<()> {
        Ok(())
    }
    fn release(&self, _gfid: &Gfid, _fh: u64) {}
    fn fsync(&self, gfid: &Gfid, _fh: u64, datasync: bool) -> io::Result<()> {
        Brick::fsync(self, gfid, datasync)
    }
    fn truncate(&self, gfid: &Gfid, _fh: u64, size: u64) -> io::Result<Iatt> {
        Brick::truncate(self, gfid, size)
    }
    fn setattr(&self, gfid: &Gfid, _fh: u64, set: &SetAttr) -> io::Result<Iatt> {
        Brick::setattr(self, gfid, set)
    }
    fn readlink(&self, gfid: &Gfid) -> io::Result<PathBuf> {
        Brick::readlink(self, gfid)
    }
    fn getxattr(&self, gfid: &Gfid, name: &str) -> io::Result<Vec<u8>> {
        Brick::getxattr(self, gfid, name)
    }
    fn setxattr(&self, gfid: &Gfid, name: &str, value: &[u8]) -> io::Result<()> {
        Brick::setxattr(self, gfid, name, value)
    }
    fn removexattr(&self, gfid: &Gfid, name: &str) -> io::Result<()> {
        Brick::removexattr(self, gfid, name)
    }
    fn listxattr(&self, gfid: &Gfid) -> io::Result<Vec<String>> {
        Brick::listxattr(self, gfid)
    }
    fn statfs(&self) -> io::Result<Statvfs> {
        Brick::statfs(self)
    }
}

/// A boxed volume is one (what `keelctl mount` serves: a brick or a graph).
impl<V: Volume + ?Sized> Volume for Box<V> {
    fn stat(&self, gfid: &Gfid, fh: u64) -> io::Result<Iatt> {
        (**self).stat(gfid, fh)
    }
    fn lookup(&self, parent: &Gfid, name: &OsStr) -> io::Result<Iatt> {
        (**self).lookup(parent, name)
    }
    fn create(
        &self,
        parent: &Gfid,
        name: &OsStr,
        perm: u32,
        flags: i32,
        gfid: &Gfid,
        owner: Option<(u32, u32)>,
    ) -> io::Result<(Iatt, u64)> {
        (**self).create(parent, name, perm, flags, gfid, owner)
    }
    fn mkdir(
        &self,
        parent: &Gfid,
        name: &OsStr,
        perm: u32,
        gfid: &Gfid,
        owner: Option<(u32, u32)>,
    ) -> io::Result<Iatt> {
        (**self).mkdir(parent, name, perm, gfid, owner)
    }
    fn symlink(
        &self,
        parent: &Gfid,
        name: &OsStr,
        target: &OsStr,
        gfid: &Gfid,
        owner: Option<(u32, u32)>,
    ) -> io::Result<Iatt> {
        (**self).symlink(parent, name, target, gfid, owner)
    }
    fn mknod(
        &self,
        parent: &Gfid,
        name: &OsStr,
        mode: u32,
        rdev: u64,
        gfid: &Gfid,
        owner: Option<(u32, u32)>,
    ) -> io::Result<Iatt> {
        (**self).mknod(parent, name, mode, rdev, gfid, owner)
    }
    fn link(&self, gfid: &Gfid, newparent: &Gfid, newname: &OsStr) -> io::Result<Iatt> {
        (**self).link(gfid, newparent, newname)
    }
    fn unlink(&self, parent: &Gfid, name: &OsStr) -> io::Result<()> {
        (**self).unlink(parent, name)
    }
    fn rmdir(&self, parent: &Gfid, name: &OsStr) -> io::Result<()> {
        (**self).rmdir(parent, name)
    }
    fn rename(
        &self,
        oldparent: &Gfid,
        oldname: &OsStr,
        newparent: &Gfid,
        newname: &OsStr,
    ) -> io::Result<()> {
        (**self).rename(oldparent, oldname, newparent, newname)
    }
    fn readdir(&self, gfid: &Gfid) -> io::Result<Vec<DirEntry>> {
        (**self).readdir(gfid)
    }
    fn open(&self, gfid: &Gfid, flags: i32) -> io::Result<Option<u64>> {
        (**self).open(gfid, flags)
    }
    fn read(
        &self,
        gfid: &Gfid,
        fh: u64,
        offset: u64,
        flags: i32,
        buf: &mut [u8],
    ) -> io::Result<usize> {
        (**self).read(gfid, fh, offset, flags, buf)
    }
    fn write(
        &self,
        gfid: &Gfid,
        fh: u64,
        offset: u64,
        flags: i32,
        data: &[u8],
    ) -> io::Result<usize> {
        (**self).write(gfid, fh, offset, flags, data)
    }
    fn flush(&self, gfid: &Gfid, fh: u64) -> io::Result<()> {
        (**self).flush(gfid, fh)
    }
    fn release(&self, gfid: &Gfid, fh: u64) {
        (**self).release(gfid, fh)
    }
    fn fsync(&self, gfid: &Gfid, fh: u64, datasync: bool) -> io::Result<()> {
        (**self).fsync(gfid, fh, datasync)
    }
    fn truncate(&self, gfid: &Gfid, fh: u64, size: u64) -> io::Result<Iatt> {
        (**self).truncate(gfid, fh, size)
    }
    fn setattr(&self, gfid: &Gfid, fh: u64, set: &SetAttr) -> io::Result<Iatt> {
        (**self).setattr(gfid, fh, set)
    }
    fn readlink(&self, gfid: &Gfid) -> io::Result<PathBuf> {
        (**self).readlink(gfid)
    }
    fn getxattr(&self, gfid: &Gfid, name: &str) -> io::Result<Vec<u8>> {
        (**self).getxattr(gfid, name)
    }
    fn setxattr(&self, gfid: &Gfid, name: &str, value: &[u8]) -> io::Result<()> {
        (**self).setxattr(gfid, name, value)
    }
    fn removexattr(&self, gfid: &Gfid, name: &str) -> io::Result<()> {
        (**self).removexattr(gfid, name)
    }
    fn listxattr(&self, gfid: &Gfid) -> io::Result<Vec<String>> {
        (**self).listxattr(gfid)
    }
    fn statfs(&self) -> io::Result<Statvfs> {
        (**self).statfs()
    }
}
