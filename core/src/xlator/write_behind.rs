//! `performance/write-behind` (translators.md §5.5): a writev within the window is
//! acknowledged at once ("lied": `op_ret` = size, zero-filled iatts) and its bytes kept; a fop
//! that depends on them first sends the kept writes down in order: on the same fd a flush,
//! fsync, readv, fstat, ftruncate, fsetattr, synchronous write or release, and on the same
//! inode (kept writes are upstream's per inode) a lookup, stat, setattr or truncate naming
//! its gfid. The inode of an fd is learnt from the open (its loc's gfid) or create (its
//! `gfid-req`) that made it, for [`FDS_MAX`] fds at once. A kept write that fails is reported
//! by the next flush or fsync of its fd. O_SYNC and O_DSYNC writes are never lied. Flush is
//! not acknowledged behind (as with `flush-behind off`).
//!
//! The window is `cache-size` capped at [`CACHE_MAX`] bytes and [`WRITES_MAX`] writes, since
//! the kept bytes live in the translator itself. Kept writes go down with their bytes appended
//! to the dependent fop's request buffer; when it has no room, that fop fails with ENOBUFS and
//! the writes stay kept.

use heapless::Vec;

use super::args::{Body, Fd, Reply, Request};
use super::ctx::Ctx;
use super::engine::{CallError, Unwound};
use super::fop::Fop;
use super::frame::FrameRef;
use super::iatt::{Gfid, Iatt};

/// Most bytes kept.
pub const CACHE_MAX: usize = 4096;
/// Most writes kept.
pub const WRITES_MAX: usize = 16;
/// Most fds with a deferred error.
pub const ERRORS_MAX: usize = 8;
/// Most fds whose inode write-behind knows.
pub const FDS_MAX: usize = 64;

const O_DSYNC: u32 = 0o10000;
const O_SYNC: u32 = 0o4010000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Kept {
    fd: Fd,
    offset: u64,
    start: u16,
    len: u16,
}

/// Frame-local state: sending kept writes down before `req`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Draining {
    left: u16,
    failed: i32,
    req: Request,
}

/// What a fop depends on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dep {
    Fd(Fd),
    Inode(Gfid),
}

/// What a translator table's local must hold for write-behind.
pub trait WbLocal: Default {
    /// The draining state, if this is one.
    fn draining(&mut self) -> Option<&mut Draining>;
    /// A local in the draining state.
    fn from_draining(d: Draining) -> Self;
}

/// A write-behind translator's window.
#[derive(Clone, Debug, Default)]
pub struct WriteBehind {
    window: usize,
    cache: Vec<u8, CACHE_MAX>,
    kept: Vec<Kept, WRITES_MAX>,
    errors: Vec<(Fd, i32), ERRORS_MAX>,
    fds: Vec<(Fd, Gfid), FDS_MAX>,
}

impl WriteBehind {
    /// With a window of `window` bytes (capped at [`CACHE_MAX`]).
    pub fn new(window: u64) -> Self {
        WriteBehind {
            window: usize::try_from(window).unwrap_or(CACHE_MAX).min(CACHE_MAX),
            ..WriteBehind::default()
        }
    }

    /// Bytes acknowledged and not yet sent down.
    pub fn kept_bytes(&self) -> usize {
        self.kept.iter().map(|k| usize::from(k.len)).sum()
    }

    fn depends(req: &Request) -> Option<Dep> {
        match *req {
            Request::Flush { fd }
            | Request::Fsync { fd, .. }
            | Request::Readv { fd, .. }
            | Request::Fstat { fd }
            | Request::Ftruncate { fd, .. }
            | Request::Fsetattr { fd, .. }
            | Request::Writev { fd, .. }
            | Request::Release { fd } => Some(Dep::Fd(fd)),
            Request::Lookup { loc, .. }
            | Request::Stat { loc }
            | Request::Setattr { loc, .. }
            | Request::Truncate { loc, .. }
                if !loc.gfid.is_null() =>
            {
                Some(Dep::Inode(loc.gfid))
            }
            _ => None,
        }
    }

    /// Learns the inode of the fd a request opens, and forgets a released one.
    fn learn(&mut self, req: &Request) {
        let (fd, gfid) = match *req {
            Request::Open { loc, fd, .. } if !loc.gfid.is_null() => (fd, loc.gfid),
            Request::Create {
                fd,
                xdata:
                    super::args::Xdata {
                        gfid_req: Some(g), ..
                    },
                ..
            } => (fd, g),
            Request::Release { fd } => {
                self.fds.retain(|e| e.0 != fd);
                return;
            }
            _ => return,
        };
        self.fds.retain(|e| e.0 != fd);
        if self.fds.is_full() {
            // The oldest is forgotten: its kept writes then wait only for fd-based fops.
            self.fds.remove(0);
        }
        let _ = self.fds.push((fd, gfid));
    }

    fn matches(&self, dep: Dep, k: &Kept) -> bool {
        match dep {
            Dep::Fd(fd) => k.fd == fd,
            Dep::Inode(g) => self.fds.iter().any(|e| e.0 == k.fd && e.1 == g),
        }
    }

    /// The fop.
    pub fn call<L: WbLocal>(
        &mut self,
        cx: &mut Ctx<'_, '_, L>,
        frame: FrameRef,
        req: Request,
    ) -> Result<(), CallError> {
        if let Request::Writev {
            fd,
            data,
            offset,
            flags,
        } = req
        {
            let sync = flags & O_SYNC == O_SYNC || flags & O_DSYNC != 0;
            let len = data.len as usize;
            if !sync && self.cache.len() + len <= self.window && !self.kept.is_full() {
                let bytes = cx.bytes(frame, data)?;
                let start = self.cache.len() as u16;
                // Room was checked above.
                let _ = self.cache.extend_from_slice(bytes);
                let _ = self.kept.push(Kept {
                    fd,
                    offset,
                    start,
                    len: len as u16,
                });
                let zero = Iatt::default();
                return cx.unwind(
                    frame,
                    Reply::ok(
                        len as i32,
                        Body::Change {
                            pre: zero,
                            post: zero,
                        },
                    ),
                );
            }
        }
        self.learn(&req);
        let Some(dep) = Self::depends(&req) else {
            return cx.tail(frame, req);
        };
        let child = cx.first_child().ok_or(CallError::NoChild)?;
        let mine: Vec<Kept, WRITES_MAX> = self
            .kept
            .iter()
            .filter(|k| self.matches(dep, k))
            .copied()
            .collect();
        if mine.is_empty() {
            return self.pass(cx, frame, child, req);
        }
        let mut writes: Vec<Request, WRITES_MAX> = Vec::new();
        for k in &mine {
            let s = usize::from(k.start);
            let bytes = self
                .cache
                .get(s..s + usize::from(k.len))
                .unwrap_or_default();
            let data = cx.push_bytes(frame, bytes)?;
            let _ = writes.push(Request::Writev {
                fd: k.fd,
                data,
                offset: k.offset,
                flags: 0,
            });
        }
        self.forget(dep);
        *cx.local(frame)? = L::from_draining(Draining {
            left: writes.len() as u16,
            failed: 0,
            req,
        });
        for (i, w) in writes.into_iter().enumerate() {
            if let Err(e) = cx.wind_cookie(frame, child, i as u64, w) {
                // A refused wind counts as a failed write, like any other.
                let from = Unwound {
                    cookie: i as u64,
                    child,
                    fop: Fop::Write,
                    reply: Reply::error(e.errno()),
                };
                self.unwound(cx, frame, from)?;
            }
        }
        Ok(())
    }

    /// Sends `req` on: flush and fsync with our callback (to hand over a deferred error),
    /// anything else by STACK_WIND_TAIL.
    fn pass<L: WbLocal>(
        &mut self,
        cx: &mut Ctx<'_, '_, L>,
        frame: FrameRef,
        child: usize,
        req: Request,
    ) -> Result<(), CallError> {
        match req {
            Request::Flush { .. } | Request::Fsync { .. } => {
                *cx.local(frame)? = L::from_draining(Draining {
                    left: 0,
                    failed: 0,
                    req,
                });
                cx.wind(frame, child, req)?;
                Ok(())
            }
            _ => cx.tail(frame, req),
        }
    }

    /// Drops the kept writes `dep` names and compacts the cache.
    fn forget(&mut self, dep: Dep) {
        let mut cache: Vec<u8, CACHE_MAX> = Vec::new();
        let mut kept: Vec<Kept, WRITES_MAX> = Vec::new();
        for k in self.kept.iter().filter(|k| !self.matches(dep, k)) {
            let s = usize::from(k.start);
            let start = cache.len() as u16;
            let _ = cache.extend_from_slice(
                self.cache
                    .get(s..s + usize::from(k.len))
                    .unwrap_or_default(),
            );
            let _ = kept.push(Kept { start, ..*k });
        }
        self.cache = cache;
        self.kept = kept;
    }

    /// A kept write came back, or the flush/fsync after them did.
    pub fn unwound<L: WbLocal>(
        &mut self,
        cx: &mut Ctx<'_, '_, L>,
        frame: FrameRef,
        from: Unwound,
    ) -> Result<(), CallError> {
        let Some(d) = cx.local(frame)?.draining() else {
            return cx.unwind(frame, from.reply);
        };
        let dep = Self::depends(&d.req);
        let fd = match dep {
            Some(Dep::Fd(fd)) => fd,
            _ => Fd::default(),
        };
        if d.left == 0 {
            // The flush or fsync itself: it reports a kept write's failure.
            cx.take_local(frame)?;
            let mut reply = from.reply;
            if let Some(i) = self.errors.iter().position(|e| e.0 == fd) {
                let (_, err) = self.errors.remove(i);
                if reply.op_ret >= 0 {
                    reply = Reply::error(err);
                }
            }
            return cx.unwind(frame, reply);
        }
        if from.reply.op_ret < 0 {
            d.failed = from.reply.op_errno;
        }
        d.left -= 1;
        if d.left > 0 {
            return Ok(());
        }
        let (failed, req) = (d.failed, d.req);
        cx.take_local(frame)?;
        if failed != 0 {
            // A fop on the inode defers the failure to each fd open on it.
            let fds: Vec<Fd, FDS_MAX> = match dep {
                Some(Dep::Inode(g)) => self.fds.iter().filter(|e| e.1 == g).map(|e| e.0).collect(),
                _ => Vec::from_iter([fd]),
            };
            for fd in fds {
                if self.errors.iter().any(|e| e.0 == fd) {
                    continue;
                }
                // Full: the oldest deferred error is reported no more.
                if self.errors.is_full() {
                    self.errors.remove(0);
                }
                let _ = self.errors.push((fd, failed));
            }
        }
        let child = cx.first_child().ok_or(CallError::NoChild)?;
        self.pass(cx, frame, child, req)
    }
}
