//! The per-file state cluster/replicate keeps, in a [`ReplicateArena`] the caller provides:
//! what it knows about each file with a pending heal ([`FileState`]: which children are stale
//! for which counter, when to try healing next), the children each open fd is open on
//! ([`FdState`]), and the workspace of the one heal that runs at a time
//! ([`HealWork`]).
//!
//! A full file table records nothing more: the changelog on the bricks still says what is
//! stale, and the next lookup of the file finds it again once a slot is free.

use super::changelog::Mask;
use super::heal::HealWork;
use crate::xlator::args::Fd;
use crate::xlator::iatt::Gfid;

/// Nanoseconds before a failed heal is tried again; it doubles with each failure.
pub const RETRY_NS: u64 = 1_000_000_000;
/// The longest wait between tries: `RETRY_NS << MAX_BACKOFF`.
pub const MAX_BACKOFF: u8 = 6;

/// What replicate knows about one file (by gfid) that needs a heal.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FileState {
    /// The file; null for a free slot.
    pub gfid: Gfid,
    /// By counter (data, metadata, entry): children known stale, which reads avoid.
    pub sinks: [Mask; 3],
    /// Counters to examine at the next heal (a blame, or a mismatch a lookup saw).
    pub examine: u8,
    /// Not before this time (the shell's `now`).
    pub due: u64,
    /// Failed heals in a row.
    pub backoff: u8,
    /// Bumped by every new blame, so a heal that ran meanwhile keeps the slot.
    pub gen: u16,
    /// A heal of it runs now.
    pub healing: bool,
}

/// One open fd: the file and the children it is open on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FdState {
    /// In use.
    pub used: bool,
    /// The fd.
    pub fd: Fd,
    /// Its file (null when the open did not name it).
    pub gfid: Gfid,
    /// The children where the open succeeded.
    pub opened: Mask,
    /// The child a directory listing was started on (readdir cookies are that child's).
    pub readdir: Option<u8>,
}

/// Fixed tables for one cluster/replicate translator: `FILES` files with a pending heal,
/// `FDS` open fds, and one heal workspace.
#[derive(Debug)]
pub struct ReplicateArena<const FILES: usize, const FDS: usize> {
    files: [FileState; FILES],
    fds: [FdState; FDS],
    work: HealWork,
}

impl<const FILES: usize, const FDS: usize> Default for ReplicateArena<FILES, FDS> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const FILES: usize, const FDS: usize> ReplicateArena<FILES, FDS> {
    /// Empty tables.
    pub fn new() -> Self {
        ReplicateArena {
            files: [FileState::default(); FILES],
            fds: [FdState::default(); FDS],
            work: HealWork::default(),
        }
    }

    /// The tables, for [`Replicate::new`](super::Replicate::new).
    pub fn tables(&mut self) -> Tables<'_> {
        Tables {
            files: &mut self.files,
            fds: &mut self.fds,
            work: Some(&mut self.work),
        }
    }
}

/// The borrowed tables of a [`ReplicateArena`].
#[derive(Debug, Default)]
pub struct Tables<'m> {
    pub(super) files: &'m mut [FileState],
    pub(super) fds: &'m mut [FdState],
    pub(super) work: Option<&'m mut HealWork>,
}

impl Tables<'_> {
    /// Slot of `gfid`.
    pub(super) fn file(&self, gfid: &Gfid) -> Option<usize> {
        if gfid.is_null() {
            return None;
        }
        self.files.iter().position(|f| f.gfid == *gfid)
    }

    /// Children stale for `kind`'s counter of `gfid`.
    pub(super) fn sinks(&self, gfid: &Gfid, kinds: &[usize]) -> Mask {
        self.file(gfid)
            .and_then(|i| self.files.get(i))
            .map_or(0, |f| {
                kinds
                    .iter()
                    .fold(0, |m, &k| m | f.sinks.get(k).copied().unwrap_or(0))
            })
    }

    /// The slot of `gfid`, made (due at once) when there is none and room for one.
    pub(super) fn upsert(&mut self, gfid: &Gfid) -> Option<&mut FileState> {
        if gfid.is_null() {
            return None;
        }
        let i = match self.file(gfid) {
            Some(i) => i,
            None => {
                let i = self.files.iter().position(|f| f.gfid.is_null())?;
                if let Some(f) = self.files.get_mut(i) {
                    *f = FileState {
                        gfid: *gfid,
                        ..FileState::default()
                    };
                }
                i
            }
        };
        self.files.get_mut(i)
    }

    /// Records that `failed` missed a change of `kind` (a blame): they are sinks now.
    pub(super) fn blame(&mut self, gfid: &Gfid, kind: usize, failed: Mask) {
        if let Some(f) = self.upsert(gfid) {
            if let Some(s) = f.sinks.get_mut(kind) {
                *s |= failed;
            }
            f.examine |= 1 << kind;
            f.gen = f.gen.wrapping_add(1);
        }
    }

    /// A lookup or open of `gfid`: a heal waiting for a retry may run at once.
    pub(super) fn touch(&mut self, gfid: &Gfid) {
        if let Some(i) = self.file(gfid) {
            if let Some(f) = self.files.get_mut(i) {
                if !f.healing {
                    f.due = 0;
                }
            }
        }
    }

    /// A child came back: every waiting heal may run at once.
    pub(super) fn all_due(&mut self) {
        for f in self.files.iter_mut().filter(|f| !f.gfid.is_null()) {
            f.due = 0;
        }
    }

    /// Files with state kept.
    pub(super) fn count(&self) -> usize {
        self.files.iter().filter(|f| !f.gfid.is_null()).count()
    }

    pub(super) fn fd(&self, fd: Fd) -> Option<&FdState> {
        self.fds.iter().find(|s| s.used && s.fd == fd)
    }

    pub(super) fn fd_mut(&mut self, fd: Fd) -> Option<&mut FdState> {
        self.fds.iter_mut().find(|s| s.used && s.fd == fd)
    }

    /// Notes an fd opened on `opened`; a full table forgets it (reads then try every child).
    pub(super) fn opened(&mut self, fd: Fd, gfid: Gfid, opened: Mask) {
        self.forget_fd(fd);
        if let Some(s) = self.fds.iter_mut().find(|s| !s.used) {
            *s = FdState {
                used: true,
                fd,
                gfid,
                opened,
                readdir: None,
            };
        }
    }

    pub(super) fn forget_fd(&mut self, fd: Fd) {
        for s in self.fds.iter_mut().filter(|s| s.used && s.fd == fd) {
            *s = FdState::default();
        }
    }
}
