//! `storage/ram`'s extended attributes: getxattr (one value, or the NUL-separated name list
//! when no name is given), setxattr with XATTR_CREATE/XATTR_REPLACE, removexattr, and
//! xattrop by posix's rule ([`xattrop::apply`]).

use super::args::{errno, Body, Reply, Span};
use super::engine::Ctx;
use super::frame::FrameRef;
use super::ram::RamFs;
use super::ram_store::{Res, XATTR_NAME_MAX, XATTR_VALUE_MAX};
use super::xattrop::{self, DictWriter, Store};

const XATTR_CREATE: i32 = 1;
const XATTR_REPLACE: i32 = 2;

impl RamFs<'_> {
    pub(super) fn getxattr<L: Default>(
        &self,
        cx: &mut Ctx<'_, '_, L>,
        f: FrameRef,
        i: u16,
        name: Span,
    ) -> Res<Reply> {
        let mut key: heapless::Vec<u8, { XATTR_NAME_MAX }> = heapless::Vec::new();
        let n = Self::name(cx, f, name)?;
        let list = n.is_empty();
        if !list {
            key = heapless::Vec::from_slice(n).map_err(|_| errno::ENODATA)?;
        }
        let (area, base) = cx.scratch(f).map_err(|_| errno::EIO)?;
        let mut len = 0usize;
        for x in self.st.xattrs.iter().filter(|x| x.used && x.ino == i) {
            let part: &[&[u8]] = if list {
                &[&x.name, b"\0"]
            } else if x.name == key {
                &[&x.value]
            } else {
                continue;
            };
            for p in part {
                let d = area.get_mut(len..len + p.len()).ok_or(errno::ERANGE)?;
                d.copy_from_slice(p);
                len += p.len();
            }
            if !list {
                return Ok(Reply::ok(
                    len as i32,
                    Body::Xattr {
                        value: Span {
                            off: base,
                            len: len as u32,
                        },
                    },
                ));
            }
        }
        if !list {
            return Err(errno::ENODATA);
        }
        Ok(Reply::ok(
            len as i32,
            Body::Xattr {
                value: Span {
                    off: base,
                    len: len as u32,
                },
            },
        ))
    }

    pub(super) fn setxattr<L: Default>(
        &mut self,
        cx: &Ctx<'_, '_, L>,
        f: FrameRef,
        i: u16,
        name: Span,
        value: Span,
        flags: i32,
    ) -> Res<Reply> {
        let n = Self::name(cx, f, name)?;
        let v = Self::name(cx, f, value)?;
        if n.is_empty() {
            return Err(errno::EINVAL);
        }
        self.st.inode(i)?;
        let existing = self
            .st
            .xattrs
            .iter()
            .position(|x| x.used && x.ino == i && x.name == n);
        match (existing, flags & (XATTR_CREATE | XATTR_REPLACE)) {
            (Some(_), XATTR_CREATE) => return Err(errno::EEXIST),
            (None, XATTR_REPLACE) => return Err(errno::ENODATA),
            _ => {}
        }
        let name = heapless::Vec::from_slice(n).map_err(|_| errno::ERANGE)?;
        let value = heapless::Vec::from_slice(v).map_err(|_| errno::ENOSPC)?;
        let slot = match existing {
            Some(s) => s,
            None => self
                .st
                .xattrs
                .iter()
                .position(|x| !x.used)
                .ok_or(errno::ENOSPC)?,
        };
        let x = self.st.xattrs.get_mut(slot).ok_or(errno::ENOSPC)?;
        x.used = true;
        x.ino = i;
        x.name = name;
        x.value = value;
        self.touch(i, cx.now(), false);
        Ok(Reply::ok(0, Body::Empty))
    }

    pub(super) fn removexattr<L: Default>(
        &mut self,
        cx: &Ctx<'_, '_, L>,
        f: FrameRef,
        i: u16,
        name: Span,
    ) -> Res<Reply> {
        let n = Self::name(cx, f, name)?;
        let x = self
            .st
            .xattrs
            .iter_mut()
            .find(|x| x.used && x.ino == i && x.name == n)
            .ok_or(errno::ENODATA)?;
        x.used = false;
        self.touch(i, cx.now(), false);
        Ok(Reply::ok(0, Body::Empty))
    }

    /// xattrop: each pair of the request dict applied in order (the first failure stops,
    /// earlier pairs stay applied), the results as a dict in the reply area.
    pub(super) fn xattrop<L: Default>(
        &mut self,
        cx: &mut Ctx<'_, '_, L>,
        f: FrameRef,
        i: u16,
        op: i32,
        dict: Span,
    ) -> Res<Reply> {
        self.st.inode(i)?;
        let now = cx.now();
        let (req, area, base) = cx.split(f).map_err(|_| errno::EIO)?;
        let pairs = dict.get(req).ok_or(errno::EINVAL)?;
        let mut w = DictWriter::new(area);
        let mut touched = false;
        for pair in xattrop::entries(pairs) {
            let (name, value) = pair.map_err(|_| errno::EINVAL)?;
            if name.is_empty() {
                return Err(errno::EINVAL);
            }
            let slot = self
                .st
                .xattrs
                .iter()
                .position(|x| x.used && x.ino == i && x.name == name);
            let old = slot
                .and_then(|s| self.st.xattrs.get(s))
                .map(|x| &x.value[..]);
            let mut out = [0u8; XATTR_VALUE_MAX];
            let a = xattrop::apply(op, old, value, &mut out)?;
            let stored: Option<&[u8]> = match a.store {
                Store::Nothing => None,
                Store::Out(n) => Some(out.get(..n).unwrap_or_default()),
                Store::Request => Some(value),
            };
            if let Some(v) = stored {
                let v = heapless::Vec::from_slice(v).map_err(|_| errno::ENOSPC)?;
                let name = heapless::Vec::from_slice(name).map_err(|_| errno::ERANGE)?;
                let s = match slot {
                    Some(s) => s,
                    None => self
                        .st
                        .xattrs
                        .iter()
                        .position(|x| !x.used)
                        .ok_or(errno::ENOSPC)?,
                };
                let x = self.st.xattrs.get_mut(s).ok_or(errno::ENOSPC)?;
                x.used = true;
                x.ino = i;
                x.name = name;
                x.value = v;
                touched = true;
            }
            if let Some(n) = a.reply {
                w.put(name, out.get(..n).unwrap_or_default())
                    .map_err(|_| errno::ERANGE)?;
            }
        }
        let len = w.len();
        if touched {
            self.touch(i, now, false);
        }
        Ok(Reply::ok(
            0,
            Body::Xattr {
                value: Span {
                    off: base,
                    len: len as u32,
                },
            },
        ))
    }
}
