//! A GlusterFS brick directory in storage/posix's on-disk format (translators.md §5.6): every
//! object carries `trusted.gfid`, every file and symlink has a hard-link handle and every
//! directory a symlink handle under `.glusterfs/`, and every link of a non-directory has its
//! `trusted.gfid2path.*` xattr. So a brick Keelson writes is one real glusterfs mounts, and the
//! reverse.
//!
//! - this module: [`Brick`], the fops by gfid (storage/posix is synchronous, so each call is
//!   one fop's whole answer), each answering the core's [`Iatt`] (§6) as posix fills it;
//! - [`check`]: a consistency check of a whole brick (what glusterfs expects on disk);
//! - [`xattr`]: attribute calls that never follow symlinks.
//!
//! The names themselves (gfid text, handle paths, gfid2path keys, inode numbers) are pure
//! logic in the core: [`keelson_core::xlator::handle`].

pub mod check;
pub mod xattr;

use std::ffi::{OsStr, OsString};
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{DirBuilderExt, FileExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use keelson_core::xlator::handle::{self, Gfid, GFID_XATTR, HANDLE_DIR};
use keelson_core::xlator::iatt::{valid, IaType, Iatt, Statvfs};
use keelson_core::xlator::xattrop;

/// An object's attributes as storage/posix reports them (`struct iatt`, §6), from its
/// backend `lstat`: the inode number comes from the gfid, a non-directory's link count leaves
/// out its handle, the block count is clamped to what the size needs and `rdev` is
/// `major << 32 | minor`.
pub fn iatt(gfid: Gfid, m: &fs::Metadata) -> Iatt {
    let ty = IaType::from_mode(m.mode());
    let nlink = u32::try_from(m.nlink()).unwrap_or(u32::MAX);
    let rdev = m.rdev();
    Iatt {
        flags: valid::FROM_STAT,
        ino: gfid.ino(),
        dev: m.dev(),
        rdev: u64::from(libc::major(rdev)) << 32 | u64::from(libc::minor(rdev)),
        size: m.size(),
        // The handle is one of a non-directory's links; the client never sees it.
        nlink: if ty == IaType::Dir || nlink == 0 {
            nlink
        } else {
            nlink - 1
        },
        uid: m.uid(),
        gid: m.gid(),
        blksize: u32::try_from(m.blksize()).unwrap_or(u32::MAX),
        blocks: m.blocks().min(m.size().div_ceil(512)),
        atime: m.atime(),
        mtime: m.mtime(),
        ctime: m.ctime(),
        atime_nsec: nsec(m.atime_nsec()),
        mtime_nsec: nsec(m.mtime_nsec()),
        ctime_nsec: nsec(m.ctime_nsec()),
        gfid,
        ty,
        prot: (m.mode() & 0o7777) as u16,
        ..Iatt::default()
    }
}

fn nsec(n: i64) -> u32 {
    u32::try_from(n).unwrap_or(0)
}

/// A directory entry of `readdirp`: its name and attributes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirEntry {
    /// The name in its directory.
    pub name: OsString,
    /// What posix's lookup of it reports.
    pub attr: Iatt,
}

/// Changes `setattr` makes; `None` leaves a field alone.
#[derive(Clone, Copy, Debug, Default)]
pub struct SetAttr {
    /// New protection bits.
    pub perm: Option<u32>,
    /// New owner.
    pub uid: Option<u32>,
    /// New group.
    pub gid: Option<u32>,
    /// New access time (seconds, nanoseconds).
    pub atime: Option<(i64, u32)>,
    /// New modification time.
    pub mtime: Option<(i64, u32)>,
}

/// A brick directory, opened the way posix's `init` prepares it.
#[derive(Debug)]
pub struct Brick {
    root: PathBuf,
}

fn errno(e: i32) -> io::Error {
    io::Error::from_raw_os_error(e)
}

/// The name must be one path component (what a FUSE or protocol client can send).
fn component(name: &OsStr) -> io::Result<&OsStr> {
    let b = name.as_bytes();
    if b.is_empty() || b == b"." || b == b".." || b.contains(&b'/') || b.contains(&0) {
        return Err(errno(libc::EINVAL));
    }
    Ok(name)
}

impl Brick {
    /// Opens `dir` as a brick: the root gets the root gfid (an existing one must be it), and
    /// `.glusterfs/` gets its 256 fan-out directories, `landfill/`, `unlink/` and the root
    /// handle, `.glusterfs/00/00/<root gfid> -> ../../..`.
    pub fn open(dir: &Path) -> io::Result<Brick> {
        let root = dir.to_path_buf();
        if !fs::metadata(&root)?.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::NotADirectory,
                format!("{}: brick is not a directory", root.display()),
            ));
        }
        match xattr::get(&root, GFID_XATTR)? {
            None => xattr::set(&root, GFID_XATTR, &Gfid::ROOT.0, true)?,
            Some(v) if v == Gfid::ROOT.0 => {}
            Some(v) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "{}: the brick root's trusted.gfid is {:02x?}, not the root gfid",
                        root.display(),
                        v
                    ),
                ))
            }
        }
        let mut mk = fs::DirBuilder::new();
        mk.mode(0o700);
        let hd = root.join(HANDLE_DIR);
        mkdir_keep(&mk, &hd)?;
        for i in 0..=255u8 {
            mkdir_keep(&mk, &hd.join(format!("{i:02x}")))?;
        }
        mkdir_keep(&mk, &hd.join("landfill"))?;
        mkdir_keep(&mk, &hd.join("unlink"))?;
        let brick = Brick { root };
        let rh = brick.handle(&Gfid::ROOT);
        mkdir_keep(&mk, rh.parent().unwrap_or(&hd))?;
        if fs::symlink_metadata(&rh).is_err() {
            std::os::unix::fs::symlink(handle::ROOT_HANDLE_TARGET, &rh)?;
        }
        Ok(brick)
    }

    /// The brick directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The absolute path of a gfid's handle (for the root, the root handle symlink).
    pub fn handle(&self, gfid: &Gfid) -> PathBuf {
        self.root.join(OsStr::from_bytes(&gfid.handle_path()))
    }

    /// The root itself for the root gfid, else the handle: a prefix for entry paths (the
    /// kernel follows a directory handle's symlink in the middle of a path).
    fn base(&self, gfid: &Gfid) -> PathBuf {
        if *gfid == Gfid::ROOT {
            self.root.clone()
        } else {
            self.handle(gfid)
        }
    }

    /// A path that reaches the object itself: a file's or symlink's handle is a hard link to
    /// it, while a directory's handle is a symlink, so for a directory the path goes through
    /// it (`handle/.`) and every call acts on the directory, not on the link. A directory
    /// handle is told from a symlink object's hard link as posix tells them: one link, and a
    /// target of the `../../xx/yy/<gfid>/name` form. A missing handle is ESTALE.
    pub fn path_of(&self, gfid: &Gfid) -> io::Result<PathBuf> {
        let h = self.base(gfid);
        if *gfid == Gfid::ROOT {
            return Ok(h);
        }
        let m = fs::symlink_metadata(&h).map_err(not_found_is_estale)?;
        if m.file_type().is_symlink()
            && m.nlink() == 1
            && fs::read_link(&h)?
                .as_os_str()
                .as_bytes()
                .starts_with(b"../../")
        {
            return Ok(h.join("."));
        }
        Ok(h)
    }

    fn entry_path(&self, parent: &Gfid, name: &OsStr) -> io::Result<PathBuf> {
        Ok(self.base(parent).join(component(name)?))
    }

    /// A file's data through its handle (no need to tell a directory handle apart: opening
    /// one for data fails with EISDIR, as the fop should).
    fn open_data(&self, gfid: &Gfid, write: bool) -> io::Result<File> {
        OpenOptions::new()
            .read(!write)
            .write(write)
            .open(self.base(gfid))
            .map_err(not_found_is_estale)
    }

    /// The gfid, ownership and handle of a new entry; on failure the entry is removed again,
    /// so a failed create leaves nothing behind.
    fn finish_entry(
        &self,
        parent: &Gfid,
        name: &OsStr,
        path: &Path,
        gfid: &Gfid,
        owner: Option<(u32, u32)>,
        dir: bool,
    ) -> io::Result<Iatt> {
        let done = (|| {
            if gfid.is_null() {
                return Err(errno(libc::EINVAL));
            }
            // The entry was made with our own ids; change them only when the caller's differ.
            if let Some((uid, gid)) = owner {
                let (euid, egid) = (
                    nix::unistd::geteuid().as_raw(),
                    nix::unistd::getegid().as_raw(),
                );
                if (uid, gid) != (euid, egid) {
                    std::os::unix::fs::lchown(path, Some(uid), Some(gid))?;
                }
            }
            xattr::set(path, GFID_XATTR, &gfid.0, true)?;
            self.link_handle(gfid, parent, name, path, dir)?;
            fs::symlink_metadata(path)
        })();
        match done {
            Ok(m) => Ok(iatt(*gfid, &m)),
            Err(e) => {
                let _ = if dir {
                    fs::remove_dir(path)
                } else {
                    fs::remove_file(path)
                };
                let _ = fs::remove_file(self.handle(gfid));
                Err(e)
            }
        }
    }

    /// Makes the handle of a new object: a symlink through the parent's handle for a
    /// directory, a hard link plus this name's gfid2path xattr otherwise.
    fn link_handle(
        &self,
        gfid: &Gfid,
        parent: &Gfid,
        name: &OsStr,
        path: &Path,
        dir: bool,
    ) -> io::Result<()> {
        let h = self.handle(gfid);
        let target = if dir {
            Some(dir_target(parent, name)?)
        } else {
            None
        };
        let make = || match &target {
            Some(t) => std::os::unix::fs::symlink(t, &h),
            None => fs::hard_link(path, &h),
        };
        // The fan-out directory usually exists already: make it only when the link says so.
        match make() {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if let Some(fanout) = h.parent() {
                    let mut mk = fs::DirBuilder::new();
                    mk.mode(0o700);
                    mkdir_keep(&mk, fanout)?;
                }
                make()?;
            }
            r => r?,
        }
        if dir {
            Ok(())
        } else {
            self.add_gfid2path(path, parent, name)
        }
    }

    fn add_gfid2path(&self, path: &Path, parent: &Gfid, name: &OsStr) -> io::Result<()> {
        let (key, value) = gfid2path(parent, name)?;
        xattr::set(path, &key, &value, false)
    }

    fn remove_gfid2path(&self, path: &Path, parent: &Gfid, name: &OsStr) -> io::Result<()> {
        let (key, _) = gfid2path(parent, name)?;
        xattr::remove(path, &key)
    }

    /// A non-directory's handle is removed once it is the only link left.
    fn drop_handle_if_last(&self, gfid: &Gfid) -> io::Result<()> {
        let h = self.handle(gfid);
        match fs::symlink_metadata(&h) {
            Ok(m) if m.nlink() <= 1 && !m.is_dir() => fs::remove_file(&h),
            Ok(_) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// The attributes of the object with this gfid.
    pub fn stat(&self, gfid: &Gfid) -> io::Result<Iatt> {
        let m = fs::symlink_metadata(self.path_of(gfid)?).map_err(not_found_is_estale)?;
        Ok(iatt(*gfid, &m))
    }

    /// Looks `name` up in `parent`. An object without a gfid (written to the brick behind
    /// glusterfs's back) gets one here, with its handle, as posix heals on a lookup that
    /// carries a `gfid-req` (which FUSE always sends).
    pub fn lookup(&self, parent: &Gfid, name: &OsStr) -> io::Result<Iatt> {
        let path = self.entry_path(parent, name)?;
        if parent == &Gfid::ROOT && name == HANDLE_DIR {
            return Err(errno(libc::ENOENT));
        }
        let m = fs::symlink_metadata(&path)?;
        let gfid = match xattr::get(&path, GFID_XATTR)?.and_then(|v| Gfid::from_slice(&v)) {
            Some(g) => g,
            None => {
                let g = new_gfid()?;
                xattr::set(&path, GFID_XATTR, &g.0, true)?;
                self.link_handle(&g, parent, name, &path, m.is_dir())?;
                g
            }
        };
        Ok(iatt(gfid, &m))
    }

    /// Creates a regular file (O_EXCL) with `gfid`, owned by `owner` when given.
    pub fn create(
        &self,
        parent: &Gfid,
        name: &OsStr,
        perm: u32,
        gfid: &Gfid,
        owner: Option<(u32, u32)>,
    ) -> io::Result<Iatt> {
        let path = self.entry_path(parent, name)?;
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(perm & 0o7777)
            .open(&path)?;
        self.finish_entry(parent, name, &path, gfid, owner, false)
    }

    /// Creates a directory with `gfid`.
    pub fn mkdir(
        &self,
        parent: &Gfid,
        name: &OsStr,
        perm: u32,
        gfid: &Gfid,
        owner: Option<(u32, u32)>,
    ) -> io::Result<Iatt> {
        let path = self.entry_path(parent, name)?;
        fs::DirBuilder::new().mode(perm & 0o7777).create(&path)?;
        self.finish_entry(parent, name, &path, gfid, owner, true)
    }

    /// Creates a symlink to `target` with `gfid` (on the link itself).
    pub fn symlink(
        &self,
        parent: &Gfid,
        name: &OsStr,
        target: &OsStr,
        gfid: &Gfid,
        owner: Option<(u32, u32)>,
    ) -> io::Result<Iatt> {
        let path = self.entry_path(parent, name)?;
        std::os::unix::fs::symlink(target, &path)?;
        self.finish_entry(parent, name, &path, gfid, owner, false)
    }

    /// Creates a FIFO, socket or device node (`mode` carries the type bits, `rdev` is a
    /// `dev_t`).
    pub fn mknod(
        &self,
        parent: &Gfid,
        name: &OsStr,
        mode: u32,
        rdev: u64,
        gfid: &Gfid,
        owner: Option<(u32, u32)>,
    ) -> io::Result<Iatt> {
        let path = self.entry_path(parent, name)?;
        let kind = nix::sys::stat::SFlag::from_bits_truncate(mode & libc::S_IFMT);
        let perm = nix::sys::stat::Mode::from_bits_truncate(mode & 0o7777);
        nix::sys::stat::mknod(&path, kind, perm, rdev)?;
        self.finish_entry(parent, name, &path, gfid, owner, false)
    }

    /// A new name `newname` in `newparent` for the non-directory `gfid`.
    pub fn link(&self, gfid: &Gfid, newparent: &Gfid, newname: &OsStr) -> io::Result<Iatt> {
        let src = self.path_of(gfid)?;
        if fs::symlink_metadata(&src)
            .map_err(not_found_is_estale)?
            .is_dir()
        {
            return Err(errno(libc::EPERM));
        }
        let dst = self.entry_path(newparent, newname)?;
        fs::hard_link(&src, &dst)?;
        self.add_gfid2path(&dst, newparent, newname)?;
        self.stat(gfid)
    }

    /// Removes a non-directory name; the handle goes with the last name.
    pub fn unlink(&self, parent: &Gfid, name: &OsStr) -> io::Result<()> {
        let path = self.entry_path(parent, name)?;
        let m = fs::symlink_metadata(&path)?;
        if m.is_dir() {
            return Err(errno(libc::EISDIR));
        }
        let gfid = object_gfid(&path)?;
        self.remove_gfid2path(&path, parent, name)?;
        fs::remove_file(&path)?;
        if let Some(g) = gfid {
            self.drop_handle_if_last(&g)?;
        }
        Ok(())
    }

    /// Removes an empty directory and its handle.
    pub fn rmdir(&self, parent: &Gfid, name: &OsStr) -> io::Result<()> {
        let path = self.entry_path(parent, name)?;
        if parent == &Gfid::ROOT && name == HANDLE_DIR {
            return Err(errno(libc::EPERM));
        }
        let gfid = object_gfid(&path)?;
        fs::remove_dir(&path)?;
        if let Some(g) = gfid {
            let _ = fs::remove_file(self.handle(&g));
        }
        Ok(())
    }

    /// Renames `oldname` in `oldparent` to `newname` in `newparent`, replacing what is there
    /// as rename(2) does, and keeps handles and gfid2path xattrs in step.
    pub fn rename(
        &self,
        oldparent: &Gfid,
        oldname: &OsStr,
        newparent: &Gfid,
        newname: &OsStr,
    ) -> io::Result<Iatt> {
        let src = self.entry_path(oldparent, oldname)?;
        let dst = self.entry_path(newparent, newname)?;
        let sm = fs::symlink_metadata(&src)?;
        let sgfid = object_gfid(&src)?.ok_or_else(|| errno(libc::ENODATA))?;
        let replaced = match fs::symlink_metadata(&dst) {
            Ok(dm) if dm.ino() == sm.ino() && dm.dev() == sm.dev() => {
                // rename(2) between two links of one inode does nothing.
                return Ok(iatt(sgfid, &sm));
            }
            Ok(dm) => Some((object_gfid(&dst)?, dm.is_dir())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(e),
        };
        if newparent == &Gfid::ROOT && newname == HANDLE_DIR {
            return Err(errno(libc::EPERM));
        }
        if let Some((Some(_), false)) = replaced {
            self.remove_gfid2path(&dst, newparent, newname)?;
        }
        fs::rename(&src, &dst)?;
        match replaced {
            Some((Some(g), true)) => {
                let _ = fs::remove_file(self.handle(&g));
            }
            Some((Some(g), false)) => self.drop_handle_if_last(&g)?,
            _ => {}
        }
        if sm.is_dir() {
            let h = self.handle(&sgfid);
            let _ = fs::remove_file(&h);
            std::os::unix::fs::symlink(dir_target(newparent, newname)?, &h)?;
        } else {
            self.remove_gfid2path(&dst, oldparent, oldname)?;
            self.add_gfid2path(&dst, newparent, newname)?;
        }
        self.stat(&sgfid)
    }

    /// The entries of a directory (without `.`, `..` and the root's `.glusterfs`), each with
    /// its attributes, in the backend's order.
    pub fn readdir(&self, gfid: &Gfid) -> io::Result<Vec<DirEntry>> {
        let dir = self.path_of(gfid)?;
        let mut out = Vec::new();
        for e in fs::read_dir(&dir).map_err(not_found_is_estale)? {
            let e = e?;
            let name = e.file_name();
            if *gfid == Gfid::ROOT && name == HANDLE_DIR {
                continue;
            }
            match self.lookup(gfid, &name) {
                Ok(attr) => out.push(DirEntry { name, attr }),
                // Gone between readdir and lookup: it is simply not listed.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// Reads up to `buf.len()` bytes at `offset`; returns how many (0 at the end).
    pub fn read(&self, gfid: &Gfid, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let f = self.open_data(gfid, false)?;
        let mut done = 0;
        while done < buf.len() {
            match f.read_at(&mut buf[done..], offset + done as u64) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(done)
    }

    /// Writes `data` at `offset` (with `sync`, durably, as O_SYNC/O_DSYNC writes are).
    pub fn write(&self, gfid: &Gfid, offset: u64, data: &[u8], sync: bool) -> io::Result<Iatt> {
        let f = self.open_data(gfid, true)?;
        f.write_all_at(data, offset)?;
        if sync {
            f.sync_data()?;
        }
        Ok(iatt(*gfid, &f.metadata()?))
    }

    /// Makes a file's data durable (`fsync`; `datasync` for fdatasync).
    pub fn fsync(&self, gfid: &Gfid, datasync: bool) -> io::Result<()> {
        let f = self.open_data(gfid, false)?;
        if datasync {
            f.sync_data()
        } else {
            f.sync_all()
        }
    }

    /// Sets a file's size.
    pub fn truncate(&self, gfid: &Gfid, size: u64) -> io::Result<Iatt> {
        let f = self.open_data(gfid, true)?;
        f.set_len(size)?;
        Ok(iatt(*gfid, &f.metadata()?))
    }

    /// Changes mode, owner and times; symlinks keep their mode (Linux has none to change).
    pub fn setattr(&self, gfid: &Gfid, set: &SetAttr) -> io::Result<Iatt> {
        let path = self.path_of(gfid)?;
        let m = fs::symlink_metadata(&path).map_err(not_found_is_estale)?;
        if let Some(perm) = set.perm {
            if !m.file_type().is_symlink() {
                fs::set_permissions(&path, fs::Permissions::from_mode(perm & 0o7777))?;
            }
        }
        if set.uid.is_some() || set.gid.is_some() {
            std::os::unix::fs::lchown(&path, set.uid, set.gid)?;
        }
        if set.atime.is_some() || set.mtime.is_some() {
            let ts = |t: Option<(i64, u32)>| match t {
                Some((s, n)) => nix::sys::time::TimeSpec::new(s, i64::from(n)),
                None => nix::sys::time::TimeSpec::UTIME_OMIT,
            };
            nix::sys::stat::utimensat(
                nix::fcntl::AT_FDCWD,
                &path,
                &ts(set.atime),
                &ts(set.mtime),
                nix::sys::stat::UtimensatFlags::NoFollowSymlink,
            )?;
        }
        self.stat(gfid)
    }

    /// A symlink's target.
    pub fn readlink(&self, gfid: &Gfid) -> io::Result<PathBuf> {
        fs::read_link(self.path_of(gfid)?).map_err(not_found_is_estale)
    }

    /// A user-visible xattr; the gfid xattrs are posix's own.
    pub fn getxattr(&self, gfid: &Gfid, name: &str) -> io::Result<Vec<u8>> {
        xattr::get(&self.path_of(gfid)?, name)?.ok_or_else(|| errno(libc::ENODATA))
    }

    /// Sets an xattr; changing the gfid xattrs is refused (EPERM), as posix does.
    pub fn setxattr(&self, gfid: &Gfid, name: &str, value: &[u8]) -> io::Result<()> {
        if handle::is_internal_xattr(name) {
            return Err(errno(libc::EPERM));
        }
        xattr::set(&self.path_of(gfid)?, name, value, false)
    }

    /// Removes an xattr (the gfid xattrs are refused, EPERM).
    pub fn removexattr(&self, gfid: &Gfid, name: &str) -> io::Result<()> {
        if handle::is_internal_xattr(name) {
            return Err(errno(libc::EPERM));
        }
        let path = self.path_of(gfid)?;
        if xattr::get(&path, name)?.is_none() {
            return Err(errno(libc::ENODATA));
        }
        xattr::remove(&path, name)
    }

    /// xattrop (translators.md §3.3): each name/value pair of `dict` (the core's
    /// [`keelson_core::xlator::xattrop`] layout) applied in order by posix's rule,
    /// stopping at the first failure; the reply dict. The brick is served by one thread at a
    /// time, so each read-modify-write of a value is whole, as posix's per-inode xattrop lock
    /// makes it.
    pub fn xattrop(&self, gfid: &Gfid, op: i32, dict: &[u8]) -> io::Result<Vec<u8>> {
        let path = self.path_of(gfid)?;
        let mut reply = vec![0u8; dict.len()];
        let mut w = xattrop::DictWriter::new(&mut reply);
        for pair in xattrop::entries(dict) {
            let (name, value) = pair.map_err(|_| errno(libc::EINVAL))?;
            let name = std::str::from_utf8(name).map_err(|_| errno(libc::EINVAL))?;
            if name.is_empty() || handle::is_internal_xattr(name) {
                return Err(errno(libc::EPERM));
            }
            let old = xattr::get(&path, name)?;
            let mut out = vec![0u8; value.len()];
            let a = xattrop::apply(op, old.as_deref(), value, &mut out).map_err(errno)?;
            match a.store {
                xattrop::Store::Nothing => {}
                xattrop::Store::Out(n) => xattr::set(&path, name, &out[..n], false)?,
                xattrop::Store::Request => xattr::set(&path, name, value, false)?,
            }
            if let Some(n) = a.reply {
                w.put(name.as_bytes(), &out[..n])
                    .map_err(|_| errno(libc::ERANGE))?;
            }
        }
        let n = w.len();
        reply.truncate(n);
        Ok(reply)
    }

    /// Whether the brick is still there: its directory and the root handle in it (a brick
    /// whose file system went away, or that was moved, is not).
    pub fn alive(&self) -> bool {
        fs::symlink_metadata(self.handle(&Gfid::ROOT)).is_ok()
            && xattr::get(&self.root, GFID_XATTR)
                .ok()
                .flatten()
                .is_some_and(|v| v == Gfid::ROOT.0)
    }

    /// The xattr names a client sees (without posix's own gfid xattrs).
    pub fn listxattr(&self, gfid: &Gfid) -> io::Result<Vec<String>> {
        let mut names = xattr::list(&self.path_of(gfid)?)?;
        names.retain(|n| !handle::is_internal_xattr(n));
        Ok(names)
    }

    /// The brick file system's statistics.
    pub fn statfs(&self) -> io::Result<Statvfs> {
        let s = nix::sys::statvfs::statvfs(&self.root)?;
        Ok(Statvfs {
            bsize: s.block_size(),
            frsize: s.fragment_size(),
            blocks: s.blocks(),
            bfree: s.blocks_free(),
            bavail: s.blocks_available(),
            files: s.files(),
            ffree: s.files_free(),
            favail: s.files_available(),
            fsid: s.filesystem_id(),
            flag: s.flags().bits(),
            namemax: s.name_max(),
        })
    }

    /// A directory's attributes in one `stat` (through its handle symlink, which resolves to
    /// the directory itself): what posix reports as a fop's `preparent`/`postparent`.
    pub fn stat_dir(&self, gfid: &Gfid) -> io::Result<Iatt> {
        let m = fs::metadata(self.base(gfid)).map_err(not_found_is_estale)?;
        if !m.is_dir() {
            return Err(errno(libc::ENOTDIR));
        }
        Ok(iatt(*gfid, &m))
    }

    /// A regular file's data, opened through its handle for reading and/or writing (what an
    /// open fd keeps, so each read or write costs no open).
    pub fn open_file(&self, gfid: &Gfid, read: bool, write: bool) -> io::Result<File> {
        OpenOptions::new()
            .read(read || !write)
            .write(write)
            .open(self.base(gfid))
            .map_err(not_found_is_estale)
    }
}

/// An object's gfid, if it has one.
fn object_gfid(path: &Path) -> io::Result<Option<Gfid>> {
    Ok(xattr::get(path, GFID_XATTR)?.and_then(|v| Gfid::from_slice(&v)))
}

/// A fop on a gfid whose handle is gone answers ESTALE, as posix does, not ENOENT.
fn not_found_is_estale(e: io::Error) -> io::Error {
    if e.kind() == io::ErrorKind::NotFound {
        errno(libc::ESTALE)
    } else {
        e
    }
}

fn dir_target(parent: &Gfid, name: &OsStr) -> io::Result<PathBuf> {
    let mut buf = vec![0u8; 64 + name.len()];
    let n = handle::dir_handle_target(parent, name.as_bytes(), &mut buf)
        .map_err(|_| errno(libc::ENAMETOOLONG))?;
    buf.truncate(n);
    Ok(PathBuf::from(OsString::from_vec(buf)))
}

fn gfid2path(parent: &Gfid, name: &OsStr) -> io::Result<(String, Vec<u8>)> {
    let mut value = vec![0u8; handle::CANONICAL_LEN + 1 + name.len()];
    let n = handle::gfid2path_value(parent, name.as_bytes(), &mut value)
        .map_err(|_| errno(libc::ENAMETOOLONG))?;
    value.truncate(n);
    let key = handle::gfid2path_key(&value);
    Ok((String::from_utf8_lossy(&key).into_owned(), value))
}

fn mkdir_keep(mk: &fs::DirBuilder, path: &Path) -> io::Result<()> {
    match mk.create(path) {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        r => r,
    }
}

/// A fresh random gfid (version 4, as `gf_uuid_generate`).
pub fn new_gfid() -> io::Result<Gfid> {
    let mut b = [0u8; 16];
    getrandom::getrandom(&mut b).map_err(|e| io::Error::other(e.to_string()))?;
    Ok(Gfid::from_random(b))
}
