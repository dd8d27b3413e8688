//! The storage of `storage/ram`: a caller-provided [`RamArena`] of inodes, directory
//! entries, data blocks, xattrs and open fds in fixed tables, and the table operations the
//! fops in [`ram`](super::ram) are built from. Inode numbers and gfids follow posix (§5.6):
//! `ia_ino` is the gfid's last 8 bytes, the root is gfid …01.

use heapless::Vec;

use super::args::{errno, Fd};
use super::iatt::{valid, Gfid, IaType, Iatt};

/// Bytes per data block.
pub const BLOCK: usize = 512;
/// Longest name (`NAME_MAX`).
pub const NAME_MAX: usize = 255;
/// Longest xattr name kept.
pub const XATTR_NAME_MAX: usize = 96;
/// Longest xattr value kept.
pub const XATTR_VALUE_MAX: usize = 256;

const NONE: u16 = u16::MAX;

#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Inode {
    pub(super) used: bool,
    pub(super) gfid: Gfid,
    pub(super) ty: IaType,
    pub(super) prot: u16,
    pub(super) uid: u32,
    pub(super) gid: u32,
    pub(super) nlink: u32,
    pub(super) size: u64,
    pub(super) rdev: u64,
    pub(super) times: [(i64, u32); 3],
    pub(super) first: Option<u16>,
    pub(super) blocks: u32,
    pub(super) opens: u16,
    /// A directory's parent (for `..` and rename's loop check).
    pub(super) parent: u16,
}

#[derive(Clone, Debug, Default)]
pub(super) struct Entry {
    pub(super) used: bool,
    pub(super) dir: u16,
    pub(super) ino: u16,
    pub(super) name: Vec<u8, NAME_MAX>,
}

#[derive(Clone, Debug, Default)]
pub(super) struct Xattr {
    pub(super) used: bool,
    pub(super) ino: u16,
    pub(super) name: Vec<u8, XATTR_NAME_MAX>,
    pub(super) value: Vec<u8, XATTR_VALUE_MAX>,
}

#[derive(Clone, Copy, Debug, Default)]
pub(super) struct FdSlot {
    pub(super) used: bool,
    pub(super) fd: Fd,
    pub(super) ino: u16,
    pub(super) flags: i32,
}

/// The memory a `storage/ram` translator lives in: `I` inodes (and as many open fds), `D`
/// directory entries, `B` blocks of [`BLOCK`] bytes, `X` xattrs. Counts must be below 65535.
#[derive(Debug)]
pub struct RamArena<const I: usize, const D: usize, const B: usize, const X: usize> {
    inodes: [Inode; I],
    entries: [Entry; D],
    blocks: [[u8; BLOCK]; B],
    links: [u16; B],
    xattrs: [Xattr; X],
    fds: [FdSlot; I],
}

impl<const I: usize, const D: usize, const B: usize, const X: usize> Default
    for RamArena<I, D, B, X>
{
    fn default() -> Self {
        RamArena {
            inodes: [Inode::default(); I],
            entries: core::array::from_fn(|_| Entry::default()),
            blocks: [[0; BLOCK]; B],
            links: [NONE; B],
            xattrs: core::array::from_fn(|_| Xattr::default()),
            fds: [FdSlot::default(); I],
        }
    }
}

impl<const I: usize, const D: usize, const B: usize, const X: usize> RamArena<I, D, B, X> {
    /// An empty arena.
    pub fn new() -> Self {
        Self::default()
    }

    pub(super) fn split(&mut self) -> Store<'_> {
        Store {
            inodes: &mut self.inodes,
            entries: &mut self.entries,
            blocks: &mut self.blocks,
            links: &mut self.links,
            xattrs: &mut self.xattrs,
            fds: &mut self.fds,
            free: None,
            free_blocks: 0,
        }
    }
}

/// The arena's tables, borrowed.
#[derive(Debug)]
pub(super) struct Store<'m> {
    pub(super) inodes: &'m mut [Inode],
    pub(super) entries: &'m mut [Entry],
    blocks: &'m mut [[u8; BLOCK]],
    links: &'m mut [u16],
    pub(super) xattrs: &'m mut [Xattr],
    pub(super) fds: &'m mut [FdSlot],
    free: Option<u16>,
    pub(super) free_blocks: usize,
}

pub(super) type Res<T> = Result<T, i32>;

impl Store<'_> {
    /// Empties every table and makes the root directory.
    pub(super) fn format(&mut self, now: (i64, u32)) -> Res<()> {
        for i in self.inodes.iter_mut() {
            *i = Inode::default();
        }
        for e in self.entries.iter_mut() {
            e.used = false;
        }
        for x in self.xattrs.iter_mut() {
            x.used = false;
        }
        for f in self.fds.iter_mut() {
            f.used = false;
        }
        let n = self.blocks.len().min(usize::from(NONE));
        for (i, l) in self.links.iter_mut().enumerate().take(n) {
            *l = if i + 1 < n { (i + 1) as u16 } else { NONE };
        }
        self.free = (n > 0).then_some(0);
        self.free_blocks = n;
        let root = self.inodes.first_mut().ok_or(errno::ENOSPC)?;
        *root = Inode {
            used: true,
            gfid: Gfid::ROOT,
            ty: IaType::Dir,
            prot: 0o755,
            nlink: 2,
            times: [now; 3],
            ..Inode::default()
        };
        Ok(())
    }

    pub(super) fn inode(&self, i: u16) -> Res<&Inode> {
        self.inodes
            .get(usize::from(i))
            .filter(|n| n.used)
            .ok_or(errno::ESTALE)
    }

    pub(super) fn inode_mut(&mut self, i: u16) -> Res<&mut Inode> {
        self.inodes
            .get_mut(usize::from(i))
            .filter(|n| n.used)
            .ok_or(errno::ESTALE)
    }

    pub(super) fn by_gfid(&self, g: &Gfid) -> Option<u16> {
        self.inodes
            .iter()
            .position(|n| n.used && n.gfid == *g)
            .map(|i| i as u16)
    }

    pub(super) fn child(&self, dir: u16, name: &[u8]) -> Option<(usize, u16)> {
        self.entries
            .iter()
            .enumerate()
            .find(|(_, e)| e.used && e.dir == dir && e.name == name)
            .map(|(i, e)| (i, e.ino))
    }

    pub(super) fn has_children(&self, dir: u16) -> bool {
        self.entries.iter().any(|e| e.used && e.dir == dir)
    }

    pub(super) fn alloc_inode(&mut self, n: Inode) -> Res<u16> {
        let i = self
            .inodes
            .iter()
            .position(|n| !n.used)
            .ok_or(errno::ENOSPC)?;
        self.inodes[i] = n;
        Ok(i as u16)
    }

    pub(super) fn add_entry(&mut self, dir: u16, name: &[u8], ino: u16) -> Res<()> {
        let name = Vec::from_slice(name).map_err(|_| errno::ENAMETOOLONG)?;
        let e = self
            .entries
            .iter_mut()
            .find(|e| !e.used)
            .ok_or(errno::ENOSPC)?;
        *e = Entry {
            used: true,
            dir,
            ino,
            name,
        };
        Ok(())
    }

    /// Frees an inode nobody names or holds open: its blocks and xattrs too.
    pub(super) fn release_if_unused(&mut self, i: u16) {
        let Ok(n) = self.inode(i) else { return };
        if n.nlink > 0 || n.opens > 0 || i == 0 {
            return;
        }
        let _ = self.resize(i, 0);
        for x in self.xattrs.iter_mut().filter(|x| x.used && x.ino == i) {
            x.used = false;
        }
        if let Some(n) = self.inodes.get_mut(usize::from(i)) {
            n.used = false;
        }
    }

    pub(super) fn iatt(&self, i: u16) -> Iatt {
        let Ok(n) = self.inode(i) else {
            return Iatt::default();
        };
        let [a, m, c] = n.times;
        let mut st = Iatt {
            flags: valid::FROM_STAT,
            ino: n.gfid.ino(),
            rdev: n.rdev,
            size: n.size,
            nlink: n.nlink,
            uid: n.uid,
            gid: n.gid,
            blksize: BLOCK as u32,
            blocks: u64::from(n.blocks) * (BLOCK as u64 / 512),
            atime: a.0,
            atime_nsec: a.1,
            mtime: m.0,
            mtime_nsec: m.1,
            ctime: c.0,
            ctime_nsec: c.1,
            gfid: n.gfid,
            ty: n.ty,
            prot: n.prot,
            ..Iatt::default()
        };
        // Clamped to the size as posix clamps it (§6).
        st.blocks = st.blocks.min(st.size.div_ceil(512));
        st
    }

    fn block_at(&self, i: u16, index: u64) -> Option<u16> {
        let mut b = self.inode(i).ok()?.first?;
        for _ in 0..index {
            b = *self.links.get(usize::from(b))?;
            if b == NONE {
                return None;
            }
        }
        Some(b)
    }

    fn take_block(&mut self) -> Res<u16> {
        let b = self.free.ok_or(errno::ENOSPC)?;
        let next = *self.links.get(usize::from(b)).ok_or(errno::ENOSPC)?;
        self.free = (next != NONE).then_some(next);
        if let Some(l) = self.links.get_mut(usize::from(b)) {
            *l = NONE;
        }
        if let Some(d) = self.blocks.get_mut(usize::from(b)) {
            *d = [0; BLOCK];
        }
        self.free_blocks -= 1;
        Ok(b)
    }

    /// Sets the size, allocating zeroed blocks or freeing them; the tail of a shortened last
    /// block is zeroed so a later extension reads zeros.
    pub(super) fn resize(&mut self, i: u16, size: u64) -> Res<()> {
        let want = size.div_ceil(BLOCK as u64);
        let have = u64::from(self.inode(i)?.blocks);
        if want > have {
            if want - have > self.free_blocks as u64 {
                return Err(errno::ENOSPC);
            }
            let mut last = if have == 0 {
                None
            } else {
                self.block_at(i, have - 1)
            };
            for _ in have..want {
                let b = self.take_block()?;
                match last {
                    Some(l) => {
                        if let Some(x) = self.links.get_mut(usize::from(l)) {
                            *x = b;
                        }
                    }
                    None => self.inode_mut(i)?.first = Some(b),
                }
                last = Some(b);
                self.inode_mut(i)?.blocks += 1;
            }
        } else if want < have {
            let mut cur = if want == 0 {
                self.inode_mut(i)?.first.take()
            } else {
                let keep = self.block_at(i, want - 1).ok_or(errno::EIO)?;
                let l = self.links.get_mut(usize::from(keep)).ok_or(errno::EIO)?;
                let next = *l;
                *l = NONE;
                (next != NONE).then_some(next)
            };
            while let Some(b) = cur {
                let l = self.links.get_mut(usize::from(b)).ok_or(errno::EIO)?;
                let next = *l;
                *l = self.free.unwrap_or(NONE);
                self.free = Some(b);
                self.free_blocks += 1;
                cur = (next != NONE).then_some(next);
            }
            self.inode_mut(i)?.blocks = want as u32;
        }
        let old = self.inode(i)?.size;
        if size < old && !size.is_multiple_of(BLOCK as u64) {
            if let Some(b) = self.block_at(i, size / BLOCK as u64) {
                if let Some(d) = self.blocks.get_mut(usize::from(b)) {
                    let from = (size % BLOCK as u64) as usize;
                    d[from..].fill(0);
                }
            }
        }
        self.inode_mut(i)?.size = size;
        Ok(())
    }

    /// Writes `data` at `offset`, growing the file.
    pub(super) fn write(&mut self, i: u16, offset: u64, data: &[u8]) -> Res<()> {
        let end = offset.checked_add(data.len() as u64).ok_or(errno::EFBIG)?;
        if end > self.inode(i)?.size {
            self.resize(i, end)?;
        }
        let mut done = 0;
        while done < data.len() {
            let pos = offset + done as u64;
            let b = self.block_at(i, pos / BLOCK as u64).ok_or(errno::EIO)?;
            let at = (pos % BLOCK as u64) as usize;
            let n = (BLOCK - at).min(data.len() - done);
            let d = self.blocks.get_mut(usize::from(b)).ok_or(errno::EIO)?;
            d[at..at + n].copy_from_slice(&data[done..done + n]);
            done += n;
        }
        Ok(())
    }

    /// Reads into `out` from `offset`; returns the bytes read (0 at the end).
    pub(super) fn read(&self, i: u16, offset: u64, out: &mut [u8]) -> Res<usize> {
        let size = self.inode(i)?.size;
        let n = size.saturating_sub(offset).min(out.len() as u64) as usize;
        let mut done = 0;
        while done < n {
            let pos = offset + done as u64;
            let b = self.block_at(i, pos / BLOCK as u64).ok_or(errno::EIO)?;
            let at = (pos % BLOCK as u64) as usize;
            let k = (BLOCK - at).min(n - done);
            let d = self.blocks.get(usize::from(b)).ok_or(errno::EIO)?;
            out[done..done + k].copy_from_slice(&d[at..at + k]);
            done += k;
        }
        Ok(n)
    }

    pub(super) fn fd(&self, fd: Fd) -> Res<&FdSlot> {
        self.fds
            .iter()
            .find(|f| f.used && f.fd == fd)
            .ok_or(errno::EBADF)
    }

    /// Binds `fd` to inode `i` (rebinding an fd number already open replaces it).
    pub(super) fn bind(&mut self, fd: Fd, i: u16, flags: i32) -> Res<()> {
        self.unbind(fd);
        let s = self.fds.iter_mut().find(|f| !f.used).ok_or(errno::ENOMEM)?;
        *s = FdSlot {
            used: true,
            fd,
            ino: i,
            flags,
        };
        self.inode_mut(i)?.opens += 1;
        Ok(())
    }

    pub(super) fn unbind(&mut self, fd: Fd) -> bool {
        let Some(s) = self.fds.iter_mut().find(|f| f.used && f.fd == fd) else {
            return false;
        };
        s.used = false;
        let i = s.ino;
        if let Ok(n) = self.inode_mut(i) {
            n.opens = n.opens.saturating_sub(1);
        }
        self.release_if_unused(i);
        true
    }

    pub(super) fn blocks_total(&self) -> usize {
        self.blocks.len().min(usize::from(NONE))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_chains_grow_shrink_and_zero_their_tails() {
        let mut a: RamArena<4, 4, 4, 1> = RamArena::new();
        let mut st = a.split();
        st.format((0, 0)).unwrap();
        let f = st
            .alloc_inode(Inode {
                used: true,
                ty: IaType::Reg,
                nlink: 1,
                ..Inode::default()
            })
            .unwrap();
        let data: std::vec::Vec<u8> = (0..=255u8).cycle().take(3 * BLOCK).collect();
        st.write(f, 0, &data).unwrap();
        assert_eq!((st.inode(f).unwrap().blocks, st.free_blocks), (3, 1));
        // A fourth block fits, a fifth does not.
        assert_eq!(st.write(f, 4 * BLOCK as u64, b"x"), Err(errno::ENOSPC));
        st.resize(f, 700).unwrap();
        assert_eq!(st.free_blocks, 2);
        st.resize(f, 1500).unwrap();
        let mut out = [1u8; 1600];
        assert_eq!(st.read(f, 0, &mut out).unwrap(), 1500);
        assert_eq!(&out[..700], &data[..700]);
        assert!(
            out[700..1500].iter().all(|&b| b == 0),
            "shrunk bytes read back as zeros"
        );
        assert_eq!(st.read(f, 1500, &mut out).unwrap(), 0);
        assert_eq!(st.iatt(f).blocks, 3);
        st.resize(f, 0).unwrap();
        assert_eq!(st.free_blocks, 4);
        // The root cannot be released; an unnamed, unopened inode can.
        st.release_if_unused(0);
        st.inode_mut(f).unwrap().nlink = 0;
        st.release_if_unused(f);
        assert!(st.inode(0).is_ok() && st.inode(f).is_err());
    }
}
