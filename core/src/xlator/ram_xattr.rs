//! `storage/ram`'s extended attributes: getxattr (one value, or the NUL-separated name list
//! when no name is given), setxattr with XATTR_CREATE/XATTR_REPLACE, removexattr.

use super::args::{errno, Body, Reply, Span};
use super::engine::Ctx;
use super::frame::FrameRef;
use super::ram::RamFs;
use super::ram_store::{Res, XATTR_NAME_MAX};

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
}
