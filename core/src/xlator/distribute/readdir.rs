//! Listings over the subvolumes (`dht_readdirp_cbk`): one subvolume is read at a time, in
//! position order; the offset handed out carries the subvolume (`d_off × N + position`), so
//! the next readdir resumes on the right one. Linkto files are hidden, and directories (with
//! `.` and `..`) are listed only from the first subvolume the directory is open on. A plain
//! readdir is read as readdirp (as `use-readdirp` does) and its records lose their iatt.
//! Entries are filtered in place in the reply area.

use super::super::args::{errno, Body, Reply, Request, Span};
use super::super::ctx::Ctx;
use super::super::dirent::{DirentWriter, Dirents};
use super::super::engine::CallError;
use super::super::frame::FrameRef;
use super::super::iatt::{IaType, IATT_LEN};
use super::call::{is_linkto, lowest, positions, DhtCall, Listed, Out, Phase};
use super::tables::FdTarget;
use super::{DhtLocal, Distribute};

fn empty() -> Out {
    Out::Unwind(Reply::ok(0, Body::Entries { data: Span::EMPTY }))
}

impl Distribute {
    /// Readdir(p) on a directory fd.
    pub(super) fn readdir_start<L: DhtLocal>(
        &mut self,
        cx: &mut Ctx<'_, '_, L>,
        frame: FrameRef,
        st: &mut DhtCall,
    ) -> Result<Out, CallError> {
        let (Request::Readdir { fd, offset, .. } | Request::Readdirp { fd, offset, .. }) = st.req
        else {
            return Ok(Out::Unwind(Reply::error(errno::EINVAL)));
        };
        let mask = match self.tables.fds.get(&fd) {
            Some(FdTarget::Dir(m)) => m & self.up_mask(),
            Some(FdTarget::File(_)) => return Ok(Out::Unwind(Reply::error(errno::ENOTDIR))),
            None => return Ok(Out::Unwind(Reply::error(errno::EBADF))),
        };
        st.mask = mask;
        let n = self.subvolumes() as u64;
        let (k, off) = if offset == 0 {
            match lowest(mask) {
                Some(k) => (k, 0),
                None => return Ok(empty()),
            }
        } else {
            ((offset % n) as usize, offset / n)
        };
        if mask & (1 << k) == 0 {
            // Its subvolume is gone: go on with the next one.
            return Ok(match positions(mask).find(|&j| j > k) {
                Some(j) => self.read_from(cx, frame, st, j, 0),
                None => empty(),
            });
        }
        Ok(self.read_from(cx, frame, st, k, off))
    }

    fn read_from<L: DhtLocal>(
        &self,
        cx: &mut Ctx<'_, '_, L>,
        frame: FrameRef,
        st: &mut DhtCall,
        k: usize,
        offset: u64,
    ) -> Out {
        let (Request::Readdir { fd, size, .. } | Request::Readdirp { fd, size, .. }) = st.req
        else {
            return Out::Unwind(Reply::error(errno::EINVAL));
        };
        st.cur = k as u8;
        // A plain readdir's records lose their iatt: ask for room for as many records with
        // it (at least 19 bytes each without), and cut the result to `size` afterwards.
        let size = match st.req {
            Request::Readdir { .. } => {
                size.saturating_add((size / 19).saturating_mul(IATT_LEN as u32))
            }
            _ => size,
        };
        let req = Request::Readdirp { fd, size, offset };
        self.issue(cx, frame, st, Phase::Readdir, 1 << k, |_| req)
    }

    /// One subvolume's batch is in.
    pub(super) fn readdir_step<L: DhtLocal>(
        &mut self,
        cx: &mut Ctx<'_, '_, L>,
        frame: FrameRef,
        st: &mut DhtCall,
    ) -> Result<Out, CallError> {
        let k = usize::from(st.cur);
        let s = st.slot(k);
        if !s.ok() {
            return Ok(Out::Unwind(Reply::error(s.errno.max(1))));
        }
        let l = st.listed;
        if l.too_small {
            return Ok(Out::Unwind(Reply::error(errno::EINVAL)));
        }
        if l.count > 0 {
            return Ok(Out::Unwind(Reply::ok(
                l.count,
                Body::Entries { data: l.data },
            )));
        }
        if l.seen == 0 {
            return Ok(match positions(st.mask).find(|&j| j > k) {
                Some(j) => self.read_from(cx, frame, st, j, 0),
                None => empty(),
            });
        }
        // Everything was hidden: read on from the last entry.
        Ok(self.read_from(cx, frame, st, k, l.last))
    }

    /// Filters position k's readdirp answer in place: hides what the step hides, rewrites
    /// `d_off` to carry the subvolume, drops the iatts unless `plus`.
    pub(super) fn filter<L: DhtLocal>(
        &self,
        cx: &mut Ctx<'_, '_, L>,
        frame: FrameRef,
        st: &DhtCall,
        k: usize,
        r: &Reply,
        plus: bool,
    ) -> Listed {
        let Body::Entries { data } = r.body else {
            return Listed::default();
        };
        let check = st.phase == Phase::CheckRead;
        let limit = match st.req {
            Request::Readdir { size, .. } | Request::Readdirp { size, .. } => size as usize,
            _ => usize::MAX,
        };
        let first = lowest(st.mask) == Some(k);
        let n = self.subvolumes() as u64;
        let Ok((area, base)) = cx.scratch(frame) else {
            return Listed::default();
        };
        let Some(start) = data.off.checked_sub(base).map(|s| s as usize) else {
            return Listed::default();
        };
        let end = start.saturating_add(data.len as usize).min(area.len());
        let Some(buf) = area.get_mut(start..end) else {
            return Listed::default();
        };
        let mut l = Listed {
            data: Span {
                off: data.off,
                len: 0,
            },
            ..Listed::default()
        };
        let (mut src, mut dst) = (0usize, 0usize);
        while src < buf.len() {
            let Some(e) = Dirents::new(buf.get(src..).unwrap_or_default(), true).next() else {
                break;
            };
            let rec = DirentWriter::record_len(e.name, true);
            let dots = e.name == b"." || e.name == b"..";
            let ty = e.stat.map_or(IaType::Inval, |s| s.ty);
            let linkto = e.stat.is_some_and(|s| is_linkto(&s));
            let d_off = e.d_off;
            l.seen += 1;
            if check {
                l.last = d_off;
                l.nonempty |= !dots;
                src += rec;
                continue;
            }
            let keep = !linkto && (first || (ty != IaType::Dir && !dots));
            let moved = d_off.checked_mul(n).and_then(|v| v.checked_add(k as u64));
            if let (true, Some(moved)) = (keep, moved) {
                let len = if plus { rec } else { rec - IATT_LEN };
                if dst + len > limit {
                    // The rest is read again from the last entry kept.
                    if l.count == 0 {
                        l.too_small = true;
                    }
                    break;
                }
                buf.copy_within(src..src + len, dst);
                if let Some(w) = buf.get_mut(dst..dst + 8) {
                    w.copy_from_slice(&moved.to_le_bytes());
                }
                dst += len;
                l.count += 1;
            }
            src += rec;
            l.last = d_off;
        }
        l.data.len = dst as u32;
        l
    }
}
