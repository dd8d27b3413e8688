//! A FUSE mount of a [`Volume`] (the `fuser` crate), as GlusterFS's fuse-bridge serves a
//! graph: the kernel's inode numbers are the gfids' (`ia_ino`, §5.6, so the root is 1 as FUSE
//! wants), new objects get fresh gfids (the `gfid-req` the bridge sends), entries and
//! attributes are cached by the kernel for one second (glusterfs's default timeouts), and
//! permissions are checked by the kernel (`default_permissions`, as glusterfs mounts).

use std::collections::HashMap;
use std::ffi::OsStr;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fuser::{
    Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo, LockOwner,
    OpenFlags, RenameFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyEmpty,
    ReplyEntry, ReplyOpen, ReplyStatfs, ReplyWrite, ReplyXattr, Request, TimeOrNow, WriteFlags,
};
use keelson_core::xlator::handle::Gfid;
use keelson_core::xlator::iatt::{IaType, Iatt};

use crate::brick::{self, SetAttr};
use crate::volume::Volume;

/// glusterfs's `entry-timeout` and `attribute-timeout` defaults.
const TTL: Duration = Duration::from_secs(1);

/// One entry of a directory listing: its name and attributes (`.` and `..` have none).
type Listed = (std::ffi::OsString, u64, FileType, Option<Iatt>);

/// The mount: a volume and the kernel's view of its inodes.
pub struct Mount<V: Volume> {
    vol: V,
    /// ino → (gfid, lookup count) for every inode the kernel knows. Each entry reply counts
    /// one lookup and `forget` takes back as many as it says; FUSE requests run on several
    /// threads, so a forget may be handled after a newer lookup of the same inode, and only
    /// the count tells whether the kernel still holds it.
    inodes: Mutex<HashMap<u64, (Gfid, u64)>>,
    /// Directory listings taken at `opendir`, so that a listing read in many `readdir`
    /// calls is one consistent snapshot (and costs one pass over the directory).
    dirs: Mutex<HashMap<u64, Vec<Listed>>>,
    next_fh: AtomicU64,
}

impl<V: Volume> Mount<V> {
    /// A mount of `vol` (not yet attached to a mount point; see [`serve`]).
    pub fn new(vol: V) -> Mount<V> {
        let mut inodes = HashMap::new();
        // The root is never forgotten.
        inodes.insert(Gfid::ROOT.ino(), (Gfid::ROOT, u64::MAX / 2));
        Mount {
            vol,
            inodes: Mutex::new(inodes),
            dirs: Mutex::new(HashMap::new()),
            next_fh: AtomicU64::new(1),
        }
    }

    fn gfid(&self, ino: INodeNo) -> Result<Gfid, Errno> {
        let inodes = self.inodes.lock().map_err(|_| Errno::EIO)?;
        inodes.get(&ino.0).map(|e| e.0).ok_or(Errno::ESTALE)
    }

    /// Records an inode the kernel is about to learn. Two gfids with the same last 8 bytes
    /// would share an inode number; that is refused rather than confused.
    fn remember(&self, a: &Iatt) -> Result<FileAttr, Errno> {
        let mut inodes = self.inodes.lock().map_err(|_| Errno::EIO)?;
        let e = inodes.entry(a.ino).or_insert((a.gfid, 0));
        if e.0 != a.gfid {
            tracing::error!(ino = a.ino, old = %e.0, new = %a.gfid, "two gfids map to one inode number");
            return Err(Errno::EIO);
        }
        e.1 += 1;
        Ok(file_attr(a))
    }

    /// A new entry under `parent` with a fresh gfid (the bridge's `gfid-req`), made by `make`.
    fn make_entry(
        &self,
        parent: INodeNo,
        reply: ReplyEntry,
        make: impl FnOnce(&Gfid, &Gfid) -> io::Result<Iatt>,
    ) {
        match self.gfid(parent).and_then(|p| Ok((p, new_gfid()?))) {
            Ok((p, g)) => self.entry(make(&p, &g), reply),
            Err(e) => reply.error(e),
        }
    }

    fn entry(&self, r: io::Result<Iatt>, reply: ReplyEntry) {
        match r.map_err(Errno::from).and_then(|a| self.remember(&a)) {
            Ok(fa) => reply.entry(&TTL, &fa, Generation(0)),
            Err(e) => reply.error(e),
        }
    }
}

fn kind(t: IaType) -> FileType {
    match t {
        IaType::Dir => FileType::Directory,
        IaType::Lnk => FileType::Symlink,
        IaType::Blk => FileType::BlockDevice,
        IaType::Chr => FileType::CharDevice,
        IaType::Fifo => FileType::NamedPipe,
        IaType::Sock => FileType::Socket,
        IaType::Reg | IaType::Inval => FileType::RegularFile,
    }
}

fn time(s: i64, ns: u32) -> SystemTime {
    if s >= 0 {
        UNIX_EPOCH + Duration::new(s.unsigned_abs(), ns)
    } else {
        UNIX_EPOCH - Duration::from_secs(s.unsigned_abs()) + Duration::from_nanos(u64::from(ns))
    }
}

fn stamp(t: TimeOrNow) -> (i64, u32) {
    let t = match t {
        TimeOrNow::SpecificTime(t) => t,
        TimeOrNow::Now => SystemTime::now(),
    };
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => (
            i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
            d.subsec_nanos(),
        ),
        Err(e) => (
            -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
            0,
        ),
    }
}

/// FUSE's attributes from an iatt: the one conversion between the two (`rdev` goes back
/// from `major << 32 | minor` to the kernel's encoding).
fn file_attr(a: &Iatt) -> FileAttr {
    let rdev = libc::makedev((a.rdev >> 32) as u32, a.rdev as u32);
    FileAttr {
        ino: INodeNo(a.ino),
        size: a.size,
        blocks: a.blocks,
        atime: time(a.atime, a.atime_nsec),
        mtime: time(a.mtime, a.mtime_nsec),
        ctime: time(a.ctime, a.ctime_nsec),
        crtime: time(a.ctime, a.ctime_nsec),
        kind: kind(a.ty),
        perm: a.prot & 0o7777,
        nlink: a.nlink,
        uid: a.uid,
        gid: a.gid,
        rdev: u32::try_from(rdev).unwrap_or(0),
        blksize: a.blksize,
        flags: 0,
    }
}

/// What `.` and `..` are listed with: the inode number and nothing else.
fn placeholder(ino: u64) -> Iatt {
    Iatt {
        ino,
        ty: IaType::Dir,
        ..Iatt::default()
    }
}

fn new_gfid() -> Result<Gfid, Errno> {
    brick::new_gfid().map_err(Errno::from)
}

fn caller(req: &Request) -> Option<(u32, u32)> {
    Some((req.uid(), req.gid()))
}

fn xattr_name(name: &OsStr) -> Result<&str, Errno> {
    name.to_str().ok_or(Errno::EINVAL)
}

fn xattr_reply(size: u32, data: &[u8], reply: ReplyXattr) {
    if size == 0 {
        reply.size(u32::try_from(data.len()).unwrap_or(u32::MAX));
    } else if data.len() > size as usize {
        reply.error(Errno::ERANGE);
    } else {
        reply.data(data);
    }
}

impl<V: Volume> Filesystem for Mount<V> {
    fn init(&mut self, _req: &Request, config: &mut fuser::KernelConfig) -> io::Result<()> {
        // Without READDIRPLUS the kernel still lists with plain READDIR.
        let _ = config.add_capabilities(fuser::InitFlags::FUSE_DO_READDIRPLUS);
        Ok(())
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        match self.gfid(parent) {
            Ok(p) => self.entry(self.vol.lookup(&p, name), reply),
            Err(e) => reply.error(e),
        }
    }

    fn forget(&self, _req: &Request, ino: INodeNo, nlookup: u64) {
        if let Ok(mut inodes) = self.inodes.lock() {
            if let Some(e) = inodes.get_mut(&ino.0) {
                e.1 = e.1.saturating_sub(nlookup);
                if e.1 == 0 {
                    inodes.remove(&ino.0);
                }
            }
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, fh: Option<FileHandle>, reply: ReplyAttr) {
        let fh = fh.map_or(0, |f| f.0);
        match self
            .gfid(ino)
            .and_then(|g| self.vol.stat(&g, fh).map_err(Errno::from))
        {
            Ok(a) => reply.attr(&TTL, &file_attr(&a)),
            Err(e) => reply.error(e),
        }
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let fh = fh.map_or(0, |f| f.0);
        let r = (|| {
            let g = self.gfid(ino)?;
            let mut a = None;
            if let Some(size) = size {
                a = Some(self.vol.truncate(&g, fh, size)?);
            }
            let set = SetAttr {
                perm: mode.map(|m| m & 0o7777),
                uid,
                gid,
                atime: atime.map(stamp),
                mtime: mtime.map(stamp),
            };
            if set.perm.is_some()
                || uid.is_some()
                || gid.is_some()
                || atime.is_some()
                || mtime.is_some()
            {
                a = Some(self.vol.setattr(&g, fh, &set)?);
            }
            match a {
                Some(a) => Ok(a),
                None => Ok(self.vol.stat(&g, fh)?),
            }
        })();
        match r {
            Ok(a) => reply.attr(&TTL, &file_attr(&a)),
            Err(e) => reply.error(e),
        }
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        match self
            .gfid(ino)
            .and_then(|g| self.vol.readlink(&g).map_err(Errno::from))
        {
            Ok(t) => reply.data(t.as_os_str().as_encoded_bytes()),
            Err(e) => reply.error(e),
        }
    }

    fn mknod(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        rdev: u32,
        reply: ReplyEntry,
    ) {
        let mode = mode & !(umask & 0o777);
        self.make_entry(parent, reply, |p, g| {
            self.vol
                .mknod(p, name, mode, u64::from(rdev), g, caller(req))
        });
    }

    fn mkdir(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        reply: ReplyEntry,
    ) {
        self.make_entry(parent, reply, |p, g| {
            self.vol
                .mkdir(p, name, mode & !umask & 0o7777, g, caller(req))
        });
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        match self
            .gfid(parent)
            .and_then(|p| self.vol.unlink(&p, name).map_err(Errno::from))
        {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        match self
            .gfid(parent)
            .and_then(|p| self.vol.rmdir(&p, name).map_err(Errno::from))
        {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn symlink(
        &self,
        req: &Request,
        parent: INodeNo,
        link_name: &OsStr,
        target: &Path,
        reply: ReplyEntry,
    ) {
        self.make_entry(parent, reply, |p, g| {
            self.vol
                .symlink(p, link_name, target.as_os_str(), g, caller(req))
        });
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        // GlusterFS's fuse-bridge has no RENAME_NOREPLACE/EXCHANGE either.
        if !flags.is_empty() {
            return reply.error(Errno::EINVAL);
        }
        let r = (|| {
            let (op, np) = (self.gfid(parent)?, self.gfid(newparent)?);
            self.vol.rename(&op, name, &np, newname)?;
            Ok(())
        })();
        match r {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn link(
        &self,
        _req: &Request,
        ino: INodeNo,
        newparent: INodeNo,
        newname: &OsStr,
        reply: ReplyEntry,
    ) {
        let r = (|| {
            let (g, np) = (self.gfid(ino)?, self.gfid(newparent)?);
            Ok(self.vol.link(&g, &np, newname)?)
        })();
        match r {
            Ok(a) => self.entry(Ok(a), reply),
            Err(e) => reply.error(e),
        }
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        // A volume whose opens keep no state (a lone brick: every fop reaches the object
        // through its handle) answers ENOSYS, and the kernel stops sending OPEN (and RELEASE)
        // for files altogether, one round trip less per open(2). A graph opens for real.
        // (Directories keep OPENDIR either way: their listing snapshot.)
        match self
            .gfid(ino)
            .and_then(|g| self.vol.open(&g, flags.0).map_err(Errno::from))
        {
            Ok(Some(fh)) => reply.opened(FileHandle(fh), FopenFlags::empty()),
            Ok(None) => reply.error(Errno::ENOSYS),
            Err(e) => reply.error(e),
        }
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        // One buffer per FUSE thread, grown to the largest read seen (max_read bounds it).
        thread_local! {
            static BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
        }
        BUF.with_borrow_mut(|buf| {
            if buf.len() < size as usize {
                buf.resize(size as usize, 0);
            }
            let buf = &mut buf[..size as usize];
            match self.gfid(ino).and_then(|g| {
                self.vol
                    .read(&g, fh.0, offset, flags.0, buf)
                    .map_err(Errno::from)
            }) {
                Ok(n) => reply.data(&buf[..n]),
                Err(e) => reply.error(e),
            }
        });
    }

    fn write(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        match self.gfid(ino).and_then(|g| {
            self.vol
                .write(&g, fh.0, offset, flags.0, data)
                .map_err(Errno::from)
        }) {
            Ok(n) => reply.written(u32::try_from(n).unwrap_or(u32::MAX)),
            Err(e) => reply.error(e),
        }
    }

    fn flush(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        // Without an fd (a lone brick, whose files are made with handle 0) nothing is held
        // back between write and close, so there is nothing to flush: ENOSYS makes the kernel
        // stop sending FLUSH on close. A graph's fds flush (write-behind sends kept writes).
        if fh.0 == 0 {
            return reply.error(Errno::ENOSYS);
        }
        match self
            .gfid(ino)
            .and_then(|g| self.vol.flush(&g, fh.0).map_err(Errno::from))
        {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn release(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        flush: bool,
        reply: ReplyEmpty,
    ) {
        if fh.0 != 0 {
            if let Ok(g) = self.gfid(ino) {
                if flush {
                    if let Err(e) = self.vol.flush(&g, fh.0) {
                        tracing::warn!(gfid = %g, "flush at release: {e}");
                    }
                }
                self.vol.release(&g, fh.0);
            }
        }
        reply.ok();
    }

    fn fsync(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        datasync: bool,
        reply: ReplyEmpty,
    ) {
        match self
            .gfid(ino)
            .and_then(|g| self.vol.fsync(&g, fh.0, datasync).map_err(Errno::from))
        {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        let r = (|| {
            let g = self.gfid(ino)?;
            let mut list: Vec<Listed> = vec![
                (".".into(), ino.0, FileType::Directory, None),
                ("..".into(), ino.0, FileType::Directory, None),
            ];
            for e in self.vol.readdir(&g)? {
                list.push((e.name, e.attr.ino, kind(e.attr.ty), Some(e.attr)));
            }
            let fh = self.next_fh.fetch_add(1, Ordering::Relaxed);
            self.dirs.lock().map_err(|_| Errno::EIO)?.insert(fh, list);
            Ok(fh)
        })();
        match r {
            Ok(fh) => reply.opened(FileHandle(fh), FopenFlags::empty()),
            Err(e) => reply.error(e),
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let Ok(dirs) = self.dirs.lock() else {
            return reply.error(Errno::EIO);
        };
        let Some(list) = dirs.get(&fh.0) else {
            return reply.error(Errno::EBADF);
        };
        let skip = usize::try_from(offset).unwrap_or(usize::MAX);
        for (i, (name, ino, k, _)) in list.iter().enumerate().skip(skip) {
            if reply.add(INodeNo(*ino), i as u64 + 1, *k, name) {
                break;
            }
        }
        reply.ok();
    }

    /// READDIRPLUS, as glusterfs's bridge uses by default: the listing with each entry's
    /// attributes, so that the kernel needs no LOOKUP per name (`ls -l`, `rm -r`). Each entry
    /// the kernel takes counts as a lookup; `.` and `..` do not.
    fn readdirplus(
        &self,
        req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: fuser::ReplyDirectoryPlus,
    ) {
        let Ok(dirs) = self.dirs.lock() else {
            return reply.error(Errno::EIO);
        };
        let Some(list) = dirs.get(&fh.0) else {
            return reply.error(Errno::EBADF);
        };
        let skip = usize::try_from(offset).unwrap_or(usize::MAX);
        for (i, (name, ino, _, attr)) in list.iter().enumerate().skip(skip) {
            let next = i as u64 + 1;
            let full = match attr {
                None => {
                    let fa = file_attr(&placeholder(*ino));
                    reply.add(
                        INodeNo(*ino),
                        next,
                        name,
                        &Duration::ZERO,
                        &fa,
                        Generation(0),
                    )
                }
                Some(a) => match self.remember(a) {
                    Ok(fa) => {
                        let full = reply.add(INodeNo(*ino), next, name, &TTL, &fa, Generation(0));
                        if full {
                            // Not sent: the kernel will not count it.
                            self.forget(req, INodeNo(*ino), 1);
                        }
                        full
                    }
                    // An inode number clash: list it without attributes rather than lie.
                    Err(_) => continue,
                },
            };
            if full {
                break;
            }
        }
        reply.ok();
    }

    fn releasedir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        if let Ok(mut dirs) = self.dirs.lock() {
            dirs.remove(&fh.0);
        }
        reply.ok();
    }

    /// No ioctls: ENOTTY, what a file answers to TCGETS (every `isatty` on an open file asks).
    fn ioctl(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _flags: fuser::IoctlFlags,
        _cmd: u32,
        _in_data: &[u8],
        _out_size: u32,
        reply: fuser::ReplyIoctl,
    ) {
        reply.error(Errno::ENOTTY);
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        match self.vol.statfs() {
            Ok(s) => reply.statfs(
                s.blocks,
                s.bfree,
                s.bavail,
                s.files,
                s.ffree,
                u32::try_from(s.bsize).unwrap_or(4096),
                u32::try_from(s.namemax).unwrap_or(255),
                u32::try_from(s.frsize).unwrap_or(4096),
            ),
            Err(e) => reply.error(e.into()),
        }
    }

    fn setxattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        name: &OsStr,
        value: &[u8],
        _flags: i32,
        _position: u32,
        reply: ReplyEmpty,
    ) {
        let r = (|| {
            let g = self.gfid(ino)?;
            Ok(self.vol.setxattr(&g, xattr_name(name)?, value)?)
        })();
        match r {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn getxattr(&self, _req: &Request, ino: INodeNo, name: &OsStr, size: u32, reply: ReplyXattr) {
        let r = (|| {
            let g = self.gfid(ino)?;
            Ok(self.vol.getxattr(&g, xattr_name(name)?)?)
        })();
        match r {
            Ok(v) => xattr_reply(size, &v, reply),
            Err(e) => reply.error(e),
        }
    }

    fn listxattr(&self, _req: &Request, ino: INodeNo, size: u32, reply: ReplyXattr) {
        match self
            .gfid(ino)
            .and_then(|g| self.vol.listxattr(&g).map_err(Errno::from))
        {
            Ok(names) => {
                let mut data = Vec::new();
                for n in names {
                    data.extend_from_slice(n.as_bytes());
                    data.push(0);
                }
                xattr_reply(size, &data, reply);
            }
            Err(e) => reply.error(e),
        }
    }

    fn removexattr(&self, _req: &Request, ino: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let r = (|| {
            let g = self.gfid(ino)?;
            Ok(self.vol.removexattr(&g, xattr_name(name)?)?)
        })();
        match r {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        let r = (|| {
            let p = self.gfid(parent)?;
            let g = new_gfid()?;
            let (a, fh) =
                self.vol
                    .create(&p, name, mode & !umask & 0o7777, flags, &g, caller(req))?;
            Ok((self.remember(&a)?, fh))
        })();
        match r {
            Ok((fa, fh)) => reply.created(
                &TTL,
                &fa,
                Generation(0),
                FileHandle(fh),
                FopenFlags::empty(),
            ),
            Err(e) => reply.error(e),
        }
    }
}

impl From<io::Error> for MountError {
    fn from(e: io::Error) -> Self {
        MountError(e.to_string())
    }
}

/// Why a mount could not be served.
#[derive(Debug)]
pub struct MountError(pub String);

impl std::fmt::Display for MountError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A mount running in its own threads; [`Running::stop`] unmounts it.
pub struct Running {
    /// Shared with a signal watcher (`serve`).
    unmounter: std::sync::Arc<Mutex<fuser::SessionUnmounter>>,
    thread: std::thread::JoinHandle<io::Result<()>>,
    mountpoint: std::path::PathBuf,
}

impl Running {
    /// The mount point.
    pub fn mountpoint(&self) -> &Path {
        &self.mountpoint
    }

    /// Whether the session is still being served (it ends when someone unmounts it).
    pub fn is_serving(&self) -> bool {
        !self.thread.is_finished()
    }

    /// Unmounts (if still mounted) and waits for the session to end.
    pub fn stop(self) -> Result<(), MountError> {
        if !self.thread.is_finished() {
            unmount(&self.unmounter, &self.mountpoint);
        }
        self.wait()
    }

    /// Waits until the mount is unmounted from outside.
    pub fn wait(self) -> Result<(), MountError> {
        let at = self.mountpoint.display().to_string();
        match self.thread.join() {
            Ok(r) => r.map_err(|e| MountError(format!("{at}: {e}"))),
            Err(_) => Err(MountError(format!("{at}: the FUSE session panicked"))),
        }
    }
}

fn unmount(u: &Mutex<fuser::SessionUnmounter>, at: &Path) {
    let r = match u.lock() {
        Ok(mut u) => u.unmount(),
        Err(p) => p.into_inner().unmount(),
    };
    if let Err(e) = r {
        tracing::error!(mountpoint = %at.display(), "unmount: {e}");
    }
}

/// Mounts `vol` on `mountpoint` and serves it from background threads.
pub fn spawn<V: Volume>(vol: V, mountpoint: &Path, fsname: &str) -> Result<Running, MountError> {
    let mut cfg = fuser::Config::default();
    cfg.mount_options = vec![
        fuser::MountOption::FSName(fsname.to_string()),
        fuser::MountOption::Subtype("keelson".to_string()),
        fuser::MountOption::DefaultPermissions,
    ];
    if nix::unistd::geteuid().is_root() {
        // As glusterfs mounts: every user may use it, the kernel checks permissions.
        cfg.acl = fuser::SessionACL::All;
    }
    cfg.n_threads = Some(4);
    let mut session = fuser::Session::new(Mount::new(vol), mountpoint, &cfg)
        .map_err(|e| MountError(format!("{}: cannot mount: {e}", mountpoint.display())))?;
    let unmounter = std::sync::Arc::new(Mutex::new(session.unmount_callable()));
    let thread = std::thread::Builder::new()
        .name("fuse".into())
        .spawn(move || session.run())?;
    tracing::info!(mountpoint = %mountpoint.display(), "mounted");
    Ok(Running {
        unmounter,
        thread,
        mountpoint: mountpoint.to_path_buf(),
    })
}

/// Serves `vol` on `mountpoint` in the foreground until it is unmounted (`umount`,
/// `fusermount -u`) or the process gets SIGTERM or SIGINT, which unmount it first.
pub fn serve<V: Volume>(vol: V, mountpoint: &Path, fsname: &str) -> Result<(), MountError> {
    let mut signals = signal_hook::iterator::Signals::new([libc::SIGTERM, libc::SIGINT])?;
    let handle = signals.handle();
    let running = spawn(vol, mountpoint, fsname)?;
    let unmounter = running.unmounter.clone();
    let at = mountpoint.to_path_buf();
    let watcher = std::thread::spawn(move || {
        if let Some(sig) = signals.forever().next() {
            tracing::info!(signal = sig, "unmounting on signal");
            unmount(&unmounter, &at);
        }
    });
    let r = running.wait();
    handle.close();
    let _ = watcher.join();
    r
}
