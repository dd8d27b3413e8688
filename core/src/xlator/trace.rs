//! `debug/trace` (translators.md §5.1): one line on the way down and one on the way up for
//! each enabled fop, in upstream's formats, handed to the shell as [`Output::Trace`](super::engine::Output::Trace).
//! With `log-file` and `log-history` both off (the default) trace logs nothing, and then it
//! passes fops through with STACK_WIND_TAIL, costing no frame.
//!
//! The formats are those glusterfs 10.3 writes (checked against a real FUSE mount's log of
//! posix → locks → write-behind → io-stats → trace), quirks included: readv's missing space
//! and stray parenthesis, writev's double space, create's null gfid (the new inode is not
//! linked yet when trace's callback runs). An fd-based fop names the gfid of its fd's inode,
//! which trace remembers from the open, create or opendir that made the fd ([`FDS_MAX`] at
//! once; an fd it does not know prints the null gfid).

use core::fmt::{self, Write};

use heapless::Vec;

use super::args::{Body, Fd, Reply, Request};
use super::engine::{CallError, Ctx, TraceLine, Unwound};
use super::fop::{Fop, FopSet};
use super::frame::FrameRef;
use super::graph::Graph;
use super::iatt::{Gfid, Iatt};
use super::options::Value;

/// Most open fds whose gfid trace remembers.
pub const FDS_MAX: usize = 64;

/// A trace translator's configuration, and the gfids of the fds it saw opened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Trace {
    /// The fops logged (`include-ops`, or all but `exclude-ops`).
    pub fops: FopSet,
    /// `log-file` or `log-history`: whether anything is logged.
    pub logging: bool,
    fds: Vec<(Fd, Gfid), FDS_MAX>,
}

impl Trace {
    /// From translator `i`'s options (init has already refused include with exclude).
    pub fn from_graph<const V: usize, const O: usize, const L: usize>(
        g: &Graph<'_, '_, V, O, L>,
        i: usize,
    ) -> Trace {
        let on = |k| matches!(g.option(i, k), Some(Value::Bool(true)));
        let list = |k| match g.option(i, k) {
            Some(Value::Text(w)) => {
                let mut buf = [0u8; 1024];
                w.decode_into(&mut buf).map(|b| FopSet::parse_list(b).0)
            }
            _ => None,
        };
        let fops = match (list("include-ops"), list("exclude-ops")) {
            (Some(inc), _) => inc,
            (None, Some(exc)) => FopSet::ALL
                .iter()
                .filter(|f| !exc.contains(*f))
                .fold(FopSet::EMPTY, FopSet::with),
            (None, None) => FopSet::ALL,
        };
        Trace {
            fops,
            logging: on("log-file") || on("log-history"),
            fds: Vec::new(),
        }
    }

    fn fd_gfid(&self, fd: Fd) -> Gfid {
        self.fds
            .iter()
            .find(|e| e.0 == fd)
            .map_or(Gfid::NULL, |e| e.1)
    }

    fn remember(&mut self, fd: Fd, gfid: Gfid) {
        self.fds.retain(|e| e.0 != fd);
        if self.fds.is_full() {
            // The oldest is forgotten: its fops then print the null gfid.
            self.fds.remove(0);
        }
        let _ = self.fds.push((fd, gfid));
    }

    fn logs(&self, fop: Fop) -> bool {
        self.logging && self.fops.contains(fop)
    }

    /// The fop: logs the wind line and winds with its own callback, or tail-winds.
    pub fn call<L: Default + From<Gfid>>(
        &mut self,
        cx: &mut Ctx<'_, '_, L>,
        frame: FrameRef,
        req: Request,
    ) -> Result<(), CallError> {
        if !self.logs(req.fop()) {
            return cx.tail(frame, req);
        }
        let mut line = TraceLine::new();
        let gfid = match (req.loc(), req.fd()) {
            (Some(l), _) => l.gfid,
            (None, Some(fd)) => self.fd_gfid(fd),
            (None, None) => Gfid::NULL,
        };
        if let Request::Release { fd } | Request::Releasedir { fd } = req {
            // A cbk, not a fop: one line, no request number, nothing on the way back.
            self.fds.retain(|e| e.0 != fd);
            let _ = write!(line, "gfid={gfid} fd={:#x}", fd.0);
            cx.trace(line);
            return cx.tail(frame, req);
        }
        let _ = wind_line(&mut line, cx, frame, &req, gfid);
        cx.trace(line);
        *cx.local(frame)? = L::from(gfid);
        let child = cx.first_child().ok_or(CallError::NoChild)?;
        cx.wind(frame, child, req)?;
        Ok(())
    }

    /// The callback: logs the unwind line, then unwinds.
    pub fn unwound<L: Default + Into<Option<Gfid>>>(
        &mut self,
        cx: &mut Ctx<'_, '_, L>,
        frame: FrameRef,
        from: Unwound,
    ) -> Result<(), CallError> {
        let gfid = cx.take_local(frame)?.into().unwrap_or(Gfid::NULL);
        let unique = cx.unique(frame)?;
        if from.reply.op_ret >= 0 {
            match from.reply.body {
                Body::Fd { fd } => self.remember(fd, gfid),
                Body::Entry {
                    fd: Some(fd),
                    inode,
                    ..
                } => self.remember(fd, inode),
                _ => {}
            }
        }
        let mut line = TraceLine::new();
        let _ = unwind_line(&mut line, unique, from.fop, &from.reply, gfid);
        cx.trace(line);
        cx.unwind(frame, from.reply)
    }
}

fn wind_line<L: Default>(
    w: &mut TraceLine,
    cx: &Ctx<'_, '_, L>,
    frame: FrameRef,
    req: &Request,
    gfid: Gfid,
) -> fmt::Result {
    let unique = cx.unique(frame).unwrap_or(0);
    let text = |s| Bytes(cx.bytes(frame, s).unwrap_or_default());
    write!(w, "{unique}: gfid={gfid}")?;
    if let Some(l) = req.loc() {
        write!(w, " path={}", text(l.path))?;
    }
    match *req {
        Request::Writev {
            fd,
            data,
            offset,
            flags,
        } => write!(
            w,
            " fd={:#x}, count=1,  offset={offset} flags=0{flags:x} write_size={}",
            fd.0, data.len
        ),
        Request::Readv {
            fd,
            size,
            offset,
            flags,
        } => write!(
            w,
            " fd={:#x}, size={size}offset={offset} flags=0{flags:x})",
            fd.0
        ),
        Request::Mkdir { mode, umask, .. } => write!(w, " mode={mode} umask=0{umask:o}"),
        Request::Create {
            flags,
            mode,
            umask,
            fd,
            ..
        } => write!(
            w,
            ", fd={:#x}, flags=0{flags:o} mode=0{mode:o} umask=0{umask:o}",
            fd.0
        ),
        Request::Open { flags, fd, .. } => write!(w, " flags={flags} fd={:#x}", fd.0),
        Request::Unlink { flags, .. } => write!(w, " flag={flags}"),
        Request::Rename { newloc, .. } => write!(
            w,
            " oldpath={} newpath={}",
            text(req.loc().map_or_else(Default::default, |l| l.path)),
            text(newloc.path)
        ),
        Request::Truncate { offset, .. } | Request::Ftruncate { offset, .. } => {
            write!(w, ", offset={offset}")
        }
        _ => match req.fd() {
            Some(fd) => write!(w, " fd={:#x}", fd.0),
            None => Ok(()),
        },
    }
}

/// `trace_stat_to_str`.
struct Stat<'s>(&'s Iatt);

impl fmt::Display for Stat<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.0;
        write!(
            f,
            "gfid={} ino={}, mode={:o}, nlink={}, uid={}, gid={}, size={}, blocks={}, \
             atime={} mtime={} ctime={} atime_sec={}, atime_nsec={}, mtime_sec={}, \
             mtime_nsec={}, ctime_sec={}, ctime_nsec={}",
            s.gfid,
            s.ino,
            s.mode(),
            s.nlink,
            s.uid,
            s.gid,
            s.size,
            s.blocks,
            Time(s.atime),
            Time(s.mtime),
            Time(s.ctime),
            s.atime as u32,
            s.atime_nsec,
            s.mtime as u32,
            s.mtime_nsec,
            s.ctime as u32,
            s.ctime_nsec
        )
    }
}

/// `gf_time_fmt(.., gf_timefmt_dirent)` as 10.3 prints it: `%Y-%m-%d-%H:%M:%S +0000` (UTC),
/// `N/A` for time 0.
struct Time(i64);

impl fmt::Display for Time {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == 0 {
            return f.write_str("N/A");
        }
        let days = self.0.div_euclid(86_400);
        let secs = self.0.rem_euclid(86_400);
        // Civil date from days since 1970-01-01 (proleptic Gregorian).
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = doy - (153 * mp + 2) / 5 + 1;
        let m = if mp < 10 { mp + 3 } else { mp - 9 };
        let y = yoe + era * 400 + i64::from(m <= 2);
        write!(
            f,
            "{y:04}-{m:02}-{d:02}-{:02}:{:02}:{:02} +0000",
            secs / 3600,
            secs / 60 % 60,
            secs % 60
        )
    }
}

/// Bytes as text, invalid UTF-8 replaced.
struct Bytes<'b>(&'b [u8]);

impl fmt::Display for Bytes<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for chunk in self.0.utf8_chunks() {
            f.write_str(chunk.valid())?;
            if !chunk.invalid().is_empty() {
                f.write_char(char::REPLACEMENT_CHARACTER)?;
            }
        }
        Ok(())
    }
}

fn unwind_line(w: &mut TraceLine, u: u64, fop: Fop, r: &Reply, gfid: Gfid) -> fmt::Result {
    let (ret, err) = (r.op_ret, r.op_errno);
    match (fop, &r.body) {
        (
            Fop::Lookup,
            Body::Lookup {
                buf, postparent, ..
            },
        ) => write!(
            w,
            "{u}: gfid={} (op_ret={ret} *buf {{{}}}, *postparent {{{}}}",
            buf.gfid,
            Stat(buf),
            Stat(postparent)
        ),
        (Fop::Stat | Fop::Fstat, Body::Attr { buf }) => {
            write!(w, "{u}: gfid={gfid} op_ret={ret} buf={}", Stat(buf))
        }
        (Fop::Read, Body::Read { stbuf, .. }) => {
            write!(w, "{u}: gfid={gfid} op_ret={ret} buf={}", Stat(stbuf))
        }
        (_, Body::Change { pre, post }) => write!(
            w,
            "{u}: (op_ret={ret}, *prebuf = {{{}}}, *postbuf = {{{}}})",
            Stat(pre),
            Stat(post)
        ),
        (
            Fop::Create,
            Body::Entry {
                fd: Some(fd),
                buf,
                preparent,
                postparent,
                ..
            },
        ) => write!(
            w,
            "{u}: gfid={gfid} (op_ret={ret}, fd={:#x}*stbuf {{{}}}, *preparent {{{}}}, \
             *postparent = {{{}}})",
            fd.0,
            Stat(buf),
            Stat(preparent),
            Stat(postparent)
        ),
        (
            Fop::Mkdir,
            Body::Entry {
                inode,
                buf,
                preparent,
                postparent,
                ..
            },
        ) => write!(
            w,
            "{u}: gfid={inode} (op_ret={ret} , *stbuf = {{{}}}, *prebuf = {{{}}}, \
             *postbuf = {{{}}} )",
            Stat(buf),
            Stat(preparent),
            Stat(postparent)
        ),
        (
            _,
            Body::Entry {
                inode,
                buf,
                preparent,
                postparent,
                ..
            },
        ) => write!(
            w,
            "{u}: gfid={inode} (op_ret={ret}, *stbuf = {{{}}}, *prebuf = {{{}}}, \
             *postbuf = {{{}}} )",
            Stat(buf),
            Stat(preparent),
            Stat(postparent)
        ),
        (
            Fop::Rmdir,
            Body::Parent {
                preparent,
                postparent,
            },
        ) => write!(
            w,
            "{u}: gfid={gfid} op_ret={ret}, *prebuf={{{}}},  *postbuf={{{}}}",
            Stat(preparent),
            Stat(postparent)
        ),
        (
            _,
            Body::Parent {
                preparent,
                postparent,
            },
        ) => write!(
            w,
            "{u}: gfid={gfid} op_ret={ret},  *preparent = {{{}}}, *postparent = {{{}}})",
            Stat(preparent),
            Stat(postparent)
        ),
        (Fop::Open | Fop::Opendir, Body::Fd { fd }) => write!(
            w,
            "{u}: gfid={gfid} op_ret={ret}, op_errno={err}, *fd={:#x}",
            fd.0
        ),
        (Fop::Statfs, Body::Statfs { buf: b }) => write!(
            w,
            "{u}: ({{f_bsize={}, f_frsize={}, f_blocks={}, f_bfree={}, f_bavail={}, \
             f_files={}, f_ffree={}, f_favail={}, f_fsid={}, f_flag={}, f_namemax={}}}) \
             => ret={ret}",
            b.bsize,
            b.frsize,
            b.blocks,
            b.bfree,
            b.bavail,
            b.files,
            b.ffree,
            b.favail,
            b.fsid,
            b.flag,
            b.namemax
        ),
        (Fop::Create | Fop::Mkdir | Fop::Mknod, _) if ret < 0 => {
            write!(w, "{u}: (op_ret={ret}, op_errno={err})")
        }
        (Fop::Write, _) if ret < 0 => {
            write!(w, "{u}: gfid={gfid} op_ret={ret}, op_errno={err}")
        }
        _ if ret < 0 => write!(w, "{u}: gfid={gfid} op_ret={ret}, op_errno={err})"),
        _ => write!(w, "{u}: gfid={gfid} op_ret={ret}, op_errno={err}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_print_as_upstreams_dirent_format() {
        let mut s = TraceLine::new();
        write!(
            s,
            "{} {} {}",
            Time(0),
            Time(1_764_639_000),
            Time(951_782_400)
        )
        .unwrap();
        assert_eq!(s, "N/A 2025-12-02-01:30:00 +0000 2000-02-29-00:00:00 +0000");
    }

    #[test]
    fn lookup_unwind_line() {
        let buf = Iatt {
            gfid: Gfid::ROOT,
            ino: 1,
            ty: super::super::iatt::IaType::Dir,
            prot: 0o755,
            nlink: 2,
            ..Iatt::default()
        };
        let r = Reply::ok(
            0,
            Body::Lookup {
                inode: Gfid::ROOT,
                buf,
                postparent: Iatt::default(),
            },
        );
        let mut s = TraceLine::new();
        unwind_line(&mut s, 7, Fop::Lookup, &r, Gfid::NULL).unwrap();
        assert!(s.starts_with(
            "7: gfid=00000000-0000-0000-0000-000000000001 (op_ret=0 *buf {gfid=00000000-0000-0000-0000-000000000001 ino=1, mode=40755, nlink=2, uid=0, gid=0, size=0, blocks=0, atime=N/A "
        ), "{s}");
        let mut s = TraceLine::new();
        unwind_line(&mut s, 8, Fop::Lookup, &Reply::error(2), Gfid::ROOT).unwrap();
        assert_eq!(
            s,
            "8: gfid=00000000-0000-0000-0000-000000000001 op_ret=-1, op_errno=2)"
        );
    }
}
