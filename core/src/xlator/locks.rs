//! `features/locks` (translators.md §5.7): inodelk/finodelk per inode and domain, entrylk per
//! directory and name, and lk byte-range locks, in fixed tables. Non-blocking requests that
//! conflict fail with EAGAIN; blocking ones wait (their frame parked here) and are granted in
//! FIFO order when a conflicting lock goes. Every other fop passes through; open, create and
//! opendir are watched to learn which gfid an fd is, so fd locks of one file conflict.
//!
//! The owner is the stack's lk_owner (up to [`OWNER_MAX`] bytes); upstream also compares the
//! client connection, which a single engine does not have.

use heapless::{Deque, Vec};

use super::args::{errno, Body, Fd, Flock, Loc, Reply, Request, Span};
use super::engine::{CallError, Ctx, Unwound};
use super::frame::FrameRef;
use super::iatt::Gfid;

/// Locks held at once.
pub const HELD_MAX: usize = 16;
/// Blocked requests at once.
pub const WAIT_MAX: usize = 8;
/// Open fds tracked.
pub const FDS_MAX: usize = 16;
/// Longest lk_owner kept.
pub const OWNER_MAX: usize = 32;
/// Longest domain kept.
pub const DOMAIN_MAX: usize = 32;
/// Longest entrylk basename kept.
pub const NAME_MAX: usize = 64;

const F_RDLCK: i16 = 0;
const F_WRLCK: i16 = 1;
const F_UNLCK: i16 = 2;
const SEEK_SET: i16 = 0;

#[derive(Clone, Debug, PartialEq, Eq)]
enum Space {
    Inode(Vec<u8, DOMAIN_MAX>),
    /// `None`: the whole directory.
    Entry(Vec<u8, DOMAIN_MAX>, Option<Vec<u8, NAME_MAX>>),
    Posix,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Held {
    space: Space,
    gfid: Gfid,
    owner: Vec<u8, OWNER_MAX>,
    write: bool,
    start: i64,
    end: i64,
    pid: i32,
    /// lk: the fd it was taken through (released with it).
    fd: Option<Fd>,
}

impl Held {
    fn conflicts(&self, o: &Held) -> bool {
        if self.gfid != o.gfid || self.owner == o.owner || !(self.write || o.write) {
            return false;
        }
        match (&self.space, &o.space) {
            (Space::Inode(a), Space::Inode(b)) => {
                a == b && self.start <= o.end && o.start <= self.end
            }
            (Space::Posix, Space::Posix) => self.start <= o.end && o.start <= self.end,
            (Space::Entry(a, n), Space::Entry(b, m)) => {
                a == b && (n.is_none() || m.is_none() || n == m)
            }
            _ => false,
        }
    }

    /// Same owner, same place (for the starvation guard's "already holds a lock there").
    fn same_place(&self, o: &Held) -> bool {
        self.gfid == o.gfid
            && self.owner == o.owner
            && core::mem::discriminant(&self.space) == core::mem::discriminant(&o.space)
    }
}

#[derive(Clone, Debug)]
struct Waiter {
    frame: FrameRef,
    lock: Held,
    lk: Option<Flock>,
}

/// A locks translator's tables.
#[derive(Clone, Debug, Default)]
pub struct Locks {
    held: Vec<Held, HELD_MAX>,
    waiting: Deque<Waiter, WAIT_MAX>,
    fds: Vec<(Fd, Gfid), FDS_MAX>,
}

enum Cmd {
    Get,
    Set { wait: bool },
}

fn cmd(c: i32) -> Option<Cmd> {
    match c {
        5 | 12 => Some(Cmd::Get),
        6 | 13 => Some(Cmd::Set { wait: false }),
        7 | 14 => Some(Cmd::Set { wait: true }),
        _ => None,
    }
}

/// `[start, end]` of a lock: len 0 runs to the end (§5.7).
fn range(l: &Flock) -> Result<(i64, i64), i32> {
    if l.whence != SEEK_SET || l.start < 0 || l.len < 0 {
        return Err(errno::EINVAL);
    }
    let end = if l.len == 0 {
        i64::MAX
    } else {
        l.start.checked_add(l.len - 1).ok_or(errno::EINVAL)?
    };
    Ok((l.start, end))
}

impl Locks {
    /// Locks held now.
    pub fn held(&self) -> usize {
        self.held.len()
    }

    /// Requests blocked now.
    pub fn blocked(&self) -> usize {
        self.waiting.len()
    }

    fn owner<L: Default>(cx: &Ctx<'_, '_, L>, f: FrameRef) -> Result<Vec<u8, OWNER_MAX>, i32> {
        let c = cx.creds(f).map_err(|_| errno::EINVAL)?;
        let b = cx.bytes(f, c.lk_owner).map_err(|_| errno::EINVAL)?;
        Vec::from_slice(b).map_err(|_| errno::EINVAL)
    }

    fn text<const N: usize, L: Default>(
        cx: &Ctx<'_, '_, L>,
        f: FrameRef,
        s: Span,
    ) -> Result<Vec<u8, N>, i32> {
        let b = cx.bytes(f, s).map_err(|_| errno::EINVAL)?;
        Vec::from_slice(b).map_err(|_| errno::ENAMETOOLONG)
    }

    fn gfid_of_fd(&self, fd: Fd) -> Result<Gfid, i32> {
        self.fds
            .iter()
            .find(|e| e.0 == fd)
            .map(|e| e.1)
            .ok_or(errno::EBADF)
    }

    fn gfid_of_loc(loc: &Loc) -> Result<Gfid, i32> {
        if loc.gfid.is_null() {
            Err(errno::EINVAL)
        } else {
            Ok(loc.gfid)
        }
    }

    /// Whether `h` may be granted now: no conflicting held lock, and (the starvation guard)
    /// no conflicting blocked request ahead of it unless its owner already holds a lock there.
    fn grantable(&self, h: &Held, ahead: usize) -> bool {
        if self.held.iter().any(|g| g.conflicts(h)) {
            return false;
        }
        let holds = self.held.iter().any(|g| g.same_place(h));
        holds || !self.waiting.iter().take(ahead).any(|w| w.lock.conflicts(h))
    }

    fn grant_reply(lk: Option<Flock>) -> Reply {
        match lk {
            Some(lock) => Reply::ok(0, Body::Lock { lock }),
            None => Reply::ok(0, Body::Empty),
        }
    }

    /// Takes a lock, refuses it, or parks the frame; `Ok(None)` when parked.
    fn acquire(
        &mut self,
        f: FrameRef,
        h: Held,
        wait: bool,
        lk: Option<Flock>,
    ) -> Result<Option<Reply>, i32> {
        if self.grantable(&h, self.waiting.len()) {
            self.held.push(h).map_err(|_| errno::ENOMEM)?;
            return Ok(Some(Self::grant_reply(lk)));
        }
        if !wait {
            return Err(errno::EAGAIN);
        }
        self.waiting
            .push_back(Waiter {
                frame: f,
                lock: h,
                lk,
            })
            .map_err(|_| errno::EAGAIN)?;
        Ok(None)
    }

    /// Re-evaluates the blocked requests in order after a lock went; grants unwind.
    fn wake<L: Default>(&mut self, cx: &mut Ctx<'_, '_, L>) {
        let mut i = 0;
        while i < self.waiting.len() {
            let Some(w) = self.waiting.iter().nth(i).cloned() else {
                break;
            };
            if self.grantable(&w.lock, i) && self.held.push(w.lock.clone()).is_ok() {
                self.remove_waiter(i);
                // The frame is ours and parked; it cannot have gone while it waited.
                let _ = cx.unwind(w.frame, Self::grant_reply(w.lk));
                i = 0;
            } else {
                i += 1;
            }
        }
    }

    fn remove_waiter(&mut self, i: usize) {
        let n = self.waiting.len();
        for k in 0..n {
            if let Some(w) = self.waiting.pop_front() {
                if k != i {
                    let _ = self.waiting.push_back(w);
                }
            }
        }
    }

    fn unlock(&mut self, h: &Held, exact: bool) -> Result<(), i32> {
        if exact {
            let at = self.held.iter().position(|g| {
                g.space == h.space
                    && g.gfid == h.gfid
                    && g.owner == h.owner
                    && g.start == h.start
                    && g.end == h.end
            });
            let at = at.ok_or(errno::EINVAL)?;
            self.held.swap_remove(at);
        } else {
            // lk: an unlock releases the owner's locks the range touches.
            self.held.retain(|g| {
                !(g.space == h.space
                    && g.gfid == h.gfid
                    && g.owner == h.owner
                    && g.start <= h.end
                    && h.start <= g.end)
            });
        }
        Ok(())
    }

    fn lock_call<L: Default>(
        &mut self,
        cx: &mut Ctx<'_, '_, L>,
        f: FrameRef,
        req: &Request,
    ) -> Result<Option<Reply>, i32> {
        let owner = Self::owner(cx, f)?;
        let mut via = None;
        let (space, gfid, c, lock, ty_write, unlock) = match *req {
            Request::Inodelk {
                domain,
                loc,
                cmd: c,
                lock,
            } => (
                Space::Inode(Self::text(cx, f, domain)?),
                Self::gfid_of_loc(&loc)?,
                c,
                lock,
                lock.ty == F_WRLCK,
                lock.ty == F_UNLCK,
            ),
            Request::Finodelk {
                domain,
                fd,
                cmd: c,
                lock,
            } => (
                Space::Inode(Self::text(cx, f, domain)?),
                self.gfid_of_fd(fd)?,
                c,
                lock,
                lock.ty == F_WRLCK,
                lock.ty == F_UNLCK,
            ),
            Request::Entrylk {
                domain,
                loc,
                basename,
                cmd: c,
                ty,
            } => {
                let name = if basename.is_empty() {
                    None
                } else {
                    Some(Self::text(cx, f, basename)?)
                };
                let space = Space::Entry(Self::text(cx, f, domain)?, name);
                let gfid = Self::gfid_of_loc(&loc)?;
                let h = Held {
                    space,
                    gfid,
                    owner,
                    write: ty == 1,
                    start: 0,
                    end: 0,
                    pid: 0,
                    fd: None,
                };
                // ENTRYLK_LOCK 0 blocks, ENTRYLK_UNLOCK 1, ENTRYLK_LOCK_NB 2.
                return match c {
                    0 | 2 => self.acquire(f, h, c == 0, None),
                    1 => {
                        let at = self
                            .held
                            .iter()
                            .position(|g| {
                                g.space == h.space && g.gfid == h.gfid && g.owner == h.owner
                            })
                            .ok_or(errno::EINVAL)?;
                        self.held.swap_remove(at);
                        self.wake(cx);
                        Ok(Some(Reply::ok(0, Body::Empty)))
                    }
                    _ => Err(errno::ENOTSUP),
                };
            }
            Request::Lk { fd, cmd: c, lock } => {
                via = Some(fd);
                (
                    Space::Posix,
                    self.gfid_of_fd(fd)?,
                    c,
                    lock,
                    lock.ty == F_WRLCK,
                    lock.ty == F_UNLCK,
                )
            }
            _ => return Err(errno::EINVAL),
        };
        if !matches!(lock.ty, F_RDLCK | F_WRLCK | F_UNLCK) {
            return Err(errno::EINVAL);
        }
        let (start, end) = range(&lock)?;
        let posix = space == Space::Posix;
        let lk = posix.then_some(lock);
        let h = Held {
            space,
            gfid,
            owner,
            write: ty_write,
            start,
            end,
            pid: lock.pid,
            fd: via,
        };
        match cmd(c).ok_or(errno::ENOTSUP)? {
            Cmd::Get if posix => {
                let found = self.held.iter().find(|g| {
                    g.conflicts(&Held {
                        write: true,
                        ..h.clone()
                    }) && (ty_write || g.write)
                });
                let lock = match found {
                    Some(g) => Flock {
                        ty: if g.write { F_WRLCK } else { F_RDLCK },
                        whence: SEEK_SET,
                        start: g.start,
                        len: if g.end == i64::MAX {
                            0
                        } else {
                            g.end - g.start + 1
                        },
                        pid: g.pid,
                    },
                    None => Flock {
                        ty: F_UNLCK,
                        ..lock
                    },
                };
                Ok(Some(Reply::ok(0, Body::Lock { lock })))
            }
            Cmd::Get => Err(errno::ENOTSUP),
            Cmd::Set { .. } if unlock => {
                self.unlock(&h, !posix)?;
                self.wake(cx);
                Ok(Some(Self::grant_reply(lk)))
            }
            Cmd::Set { wait } => {
                if posix {
                    // A new lock of the same owner replaces what it overlaps (POSIX).
                    let _ = self.unlock(&h, false);
                }
                self.acquire(f, h, wait, lk)
            }
        }
    }

    /// The fop.
    pub fn call<L: Default>(
        &mut self,
        cx: &mut Ctx<'_, '_, L>,
        frame: FrameRef,
        req: Request,
    ) -> Result<(), CallError> {
        match req {
            Request::Inodelk { .. }
            | Request::Finodelk { .. }
            | Request::Entrylk { .. }
            | Request::Lk { .. } => match self.lock_call(cx, frame, &req) {
                Ok(Some(r)) => cx.unwind(frame, r),
                Ok(None) => Ok(()),
                Err(e) => cx.unwind(frame, Reply::error(e)),
            },
            Request::Open { loc, fd, .. } | Request::Opendir { loc, fd } => {
                self.forget_fd(fd);
                if !loc.gfid.is_null() {
                    let _ = self.fds.push((fd, loc.gfid));
                }
                cx.tail(frame, req)
            }
            Request::Create { .. } => {
                // The gfid is known only from the reply: wind with our callback.
                let child = cx.first_child().ok_or(CallError::NoChild)?;
                cx.wind(frame, child, req)?;
                Ok(())
            }
            Request::Release { fd } | Request::Releasedir { fd } => {
                let before = self.held.len();
                self.held.retain(|h| h.fd != Some(fd));
                if self.held.len() != before {
                    self.wake(cx);
                }
                self.forget_fd(fd);
                cx.tail(frame, req)
            }
            _ => cx.tail(frame, req),
        }
    }

    fn forget_fd(&mut self, fd: Fd) {
        self.fds.retain(|e| e.0 != fd);
    }

    /// create's callback: notes the new fd's gfid.
    pub fn unwound<L: Default>(
        &mut self,
        cx: &mut Ctx<'_, '_, L>,
        frame: FrameRef,
        from: Unwound,
    ) -> Result<(), CallError> {
        if let Body::Entry {
            fd: Some(fd),
            inode,
            ..
        } = from.reply.body
        {
            self.forget_fd(fd);
            let _ = self.fds.push((fd, inode));
        }
        cx.unwind(frame, from.reply)
    }
}
