//! A GlusterFS brick directory in storage/posix's on-disk format (translators.md §5.6): every
//! object carries `trusted.gfid`, every file and symlink has a hard-link handle and every
//! directory a symlink handle under `.glusterfs/`, and every link of a non-directory has its
//! `trusted.gfid2path.*` xattr. So a brick Keelson writes is one real glusterfs mounts, and the
//! reverse.
//!
//! - this module: [`Brick`], the fops by gfid (storage/posix is synchronous, so each call is
//!   one fop's whole answer) and [`Attr`], the iatt of §6 as posix fills it;
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

use crate::volume::Volume;

/// What kind of object an entry is (`ia_type`, §6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// IA_IFREG
    File,
    /// IA_IFDIR
    Dir,
    /// IA_IFLNK
    Symlink,
    /// IA_IFBLK
    Block,
    /// IA_IFCHR
    Char,
    /// IA_IFIFO
    Fifo,
    /// IA_IFSOCK
    Socket,
}

impl Kind {
    fn of(mode: u32) -> Kind {
        match mode & libc::S_IFMT {
            libc::S_IFDIR => Kind::Dir,
            libc::S_IFLNK => Kind::Symlink,
            libc::S_IFBLK => Kind::Block,
            libc::S_IFCHR => Kind::Char,
            libc::S_IFIFO => Kind::Fifo,
            libc::S_IFSOCK => Kind::Socket,
            _ => Kind::File,
        }
    }
}

/// An object's attributes as storage/posix reports them (`struct iatt`, §6): the inode number
/// comes from the gfid, a non-directory's link count leaves out its handle, and the block count
/// is clamped to what the size needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Attr {
    /// The object's gfid.
    pub gfid: Gfid,
    /// `ia_ino`: the gfid's last 8 bytes, big-endian.
    pub ino: u64,
    /// What it is.
    pub kind: Kind,
    /// The 12 protection bits (suid, sgid, sticky, rwx × 3).
    pub perm: u32,
    /// Links as the client counts them.
    pub nlink: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Size in bytes.
    pub size: u64,
    /// 512-byte blocks, at most `ceil(size / 512)`.
    pub blocks: u64,
    /// Preferred I/O size.
    pub blksize: u32,
    /// Device number of a device node.
    pub rdev: u64,
    /// Backend device.
    pub dev: u64,
    /// Access time (seconds, nanoseconds).
    pub atime: (i64, u32),
    /// Modification time.
    pub mtime: (i64, u32),
    /// Change time.
    pub ctime: (i64, u32),
}

impl Attr {
    /// Attributes that say nothing but the inode number (for `.` and `..` in listings).
    pub fn placeholder(ino: u64) -> Attr {
        Attr {
            gfid: Gfid::NULL,
            ino,
            kind: Kind::Dir,
            perm: 0,
            nlink: 0,
            uid: 0,
            gid: 0,
            size: 0,
            blocks: 0,
            blksize: 0,
            rdev: 0,
            dev: 0,
            atime: (0, 0),
            mtime: (0, 0),
            ctime: (0, 0),
        }
    }

    fn from_meta(gfid: Gfid, m: &fs::Metadata) -> Attr {
        let kind = Kind::of(m.mode());
        let nlink = u32::try_from(m.nlink()).unwrap_or(u32::MAX);
        Attr {
            gfid,
            ino: gfid.ino(),
            kind,
            perm: m.mode() & 0o7777,
            // The handle is one of a non-directory's links; the client never sees it.
            nlink: if kind == Kind::Dir || nlink == 0 {
                nlink
            } else {
                nlink - 1
            },
            uid: m.uid(),
            gid: m.gid(),
            size: m.size(),
            blocks: m.blocks().min(m.size().div_ceil(512)),
            blksize: u32::try_from(m.blksize()).unwrap_or(u32::MAX),
            rdev: m.rdev(),
            dev: m.dev(),
            atime: (m.atime(), nsec(m.atime_nsec())),
            mtime: (m.mtime(), nsec(m.mtime_nsec())),
            ctime: (m.ctime(), nsec(m.ctime_nsec())),
        }
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
    pub attr: Attr,
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
    ) -> io::Result<Attr> {
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
            Ok(m) => Ok(Attr::from_meta(*gfid, &m)),
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
}

impl Volume for Brick {
    fn stat(&self, gfid: &Gfid) -> io::Result<Attr> {
        let m = fs::symlink_metadata(self.path_of(gfid)?).map_err(not_found_is_estale)?;
        Ok(Attr::from_meta(*gfid, &m))
    }

    fn lookup(&self, parent: &Gfid, name: &OsStr) -> io::Result<Attr> {
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
        Ok(Attr::from_meta(gfid, &m))
    }

    fn create(
        &self,
        parent: &Gfid,
        name: &OsStr,
        perm: u32,
        gfid: &Gfid,
        owner: Option<(u32, u32)>,
    ) -> io::Result<Attr> {
        let path = self.entry_path(parent, name)?;
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(perm & 0o7777)
            .open(&path)?;
        self.finish_entry(parent, name, &path, gfid, owner, false)
    }

    fn mkdir(
        &self,
        parent: &Gfid,
        name: &OsStr,
        perm: u32,
        gfid: &Gfid,
        owner: Option<(u32, u32)>,
    ) -> io::Result<Attr> {
        let path = self.entry_path(parent, name)?;
        fs::DirBuilder::new().mode(perm & 0o7777).create(&path)?;
        self.finish_entry(parent, name, &path, gfid, owner, true)
    }

    fn symlink(
        &self,
        parent: &Gfid,
        name: &OsStr,
        target: &OsStr,
        gfid: &Gfid,
        owner: Option<(u32, u32)>,
    ) -> io::Result<Attr> {
        let path = self.entry_path(parent, name)?;
        std::os::unix::fs::symlink(target, &path)?;
        self.finish_entry(parent, name, &path, gfid, owner, false)
    }

    fn mknod(
        &self,
        parent: &Gfid,
        name: &OsStr,
        mode: u32,
        rdev: u64,
        gfid: &Gfid,
        owner: Option<(u32, u32)>,
    ) -> io::Result<Attr> {
        let path = self.entry_path(parent, name)?;
        let kind = nix::sys::stat::SFlag::from_bits_truncate(mode & libc::S_IFMT);
        let perm = nix::sys::stat::Mode::from_bits_truncate(mode & 0o7777);
        nix::sys::stat::mknod(&path, kind, perm, rdev)?;
        self.finish_entry(parent, name, &path, gfid, owner, false)
    }

    fn link(&self, gfid: &Gfid, newparent: &Gfid, newname: &OsStr) -> io::Result<Attr> {
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

    fn unlink(&self, parent: &Gfid, name: &OsStr) -> io::Result<()> {
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

    fn rmdir(&self, parent: &Gfid, name: &OsStr) -> io::Result<()> {
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

    fn rename(
        &self,
        oldparent: &Gfid,
        oldname: &OsStr,
        newparent: &Gfid,
        newname: &OsStr,
    ) -> io::Result<Attr> {
        let src = self.entry_path(oldparent, oldname)?;
        let dst = self.entry_path(newparent, newname)?;
        let sm = fs::symlink_metadata(&src)?;
        let sgfid = object_gfid(&src)?.ok_or_else(|| errno(libc::ENODATA))?;
        let replaced = match fs::symlink_metadata(&dst) {
            Ok(dm) if dm.ino() == sm.ino() && dm.dev() == sm.dev() => {
                // rename(2) between two links of one inode does nothing.
                return Ok(Attr::from_meta(sgfid, &sm));
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

    fn readdir(&self, gfid: &Gfid) -> io::Result<Vec<DirEntry>> {
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

    fn read(&self, gfid: &Gfid, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
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

    fn write(&self, gfid: &Gfid, offset: u64, data: &[u8], sync: bool) -> io::Result<Attr> {
        let f = self.open_data(gfid, true)?;
        f.write_all_at(data, offset)?;
        if sync {
            f.sync_data()?;
        }
        Ok(Attr::from_meta(*gfid, &f.metadata()?))
    }

    fn fsync(&self, gfid: &Gfid, datasync: bool) -> io::Result<()> {
        let f = self.open_data(gfid, false)?;
        if datasync {
            f.sync_data()
        } else {
            f.sync_all()
        }
    }

    fn truncate(&self, gfid: &Gfid, size: u64) -> io::Result<Attr> {
        let f = self.open_data(gfid, true)?;
        f.set_len(size)?;
        Ok(Attr::from_meta(*gfid, &f.metadata()?))
    }

    fn setattr(&self, gfid: &Gfid, set: &SetAttr) -> io::Result<Attr> {
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

    fn readlink(&self, gfid: &Gfid) -> io::Result<PathBuf> {
        fs::read_link(self.path_of(gfid)?).map_err(not_found_is_estale)
    }

    fn getxattr(&self, gfid: &Gfid, name: &str) -> io::Result<Vec<u8>> {
        xattr::get(&self.path_of(gfid)?, name)?.ok_or_else(|| errno(libc::ENODATA))
    }

    fn setxattr(&self, gfid: &Gfid, name: &str, value: &[u8]) -> io::Result<()> {
        if handle::is_internal_xattr(name) {
            return Err(errno(libc::EPERM));
        }
        xattr::set(&self.path_of(gfid)?, name, value, false)
    }

    fn removexattr(&self, gfid: &Gfid, name: &str) -> io::Result<()> {
        if handle::is_internal_xattr(name) {
            return Err(errno(libc::EPERM));
        }
        let path = self.path_of(gfid)?;
        if xattr::get(&path, name)?.is_none() {
            return Err(errno(libc::ENODATA));
        }
        xattr::remove(&path, name)
    }

    fn listxattr(&self, gfid: &Gfid) -> io::Result<Vec<String>> {
        let mut names = xattr::list(&self.path_of(gfid)?)?;
        names.retain(|n| !handle::is_internal_xattr(n));
        Ok(names)
    }

    fn statfs(&self) -> io::Result<nix::sys::statvfs::Statvfs> {
        Ok(nix::sys::statvfs::statvfs(&self.root)?)
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
