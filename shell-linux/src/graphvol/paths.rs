//! [`Paths`]: the directories a graph volume has met, each by gfid with its parent and name, so
//! that locations carry full paths (`/a/b/NAME`) as glusterfs's bridge builds them from its
//! inode table. Directories have one name each, so a gfid has one path; files are not kept
//! (they are reached by gfid).

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;

use keelson_core::xlator::handle::Gfid;

/// Deeper chains are not followed (a cycle from a stale entry ends there).
const DEPTH_MAX: usize = 4096;

/// Directory gfid → (parent gfid, name), and the way back.
#[derive(Debug, Default)]
pub struct Paths {
    up: HashMap<Gfid, (Gfid, OsString)>,
    down: HashMap<(Gfid, OsString), Gfid>,
}

impl Paths {
    /// Remembers directory `gfid` as `name` in `parent` (forgetting an older name).
    pub fn insert(&mut self, gfid: Gfid, parent: &Gfid, name: &OsStr) {
        if gfid == Gfid::ROOT || gfid.is_null() {
            return;
        }
        if let Some(old) = self.up.insert(gfid, (*parent, name.to_owned())) {
            self.down.remove(&old);
        }
        if let Some(other) = self.down.insert((*parent, name.to_owned()), gfid) {
            if other != gfid {
                self.up.remove(&other);
            }
        }
    }

    /// Forgets the directory named `name` in `parent`.
    pub fn remove_entry(&mut self, parent: &Gfid, name: &OsStr) {
        if let Some(g) = self.down.remove(&(*parent, name.to_owned())) {
            self.up.remove(&g);
        }
    }

    /// A rename: a directory at the old name now has the new one; whatever directory the new
    /// name held is gone.
    pub fn rename(&mut self, oldparent: &Gfid, oldname: &OsStr, newparent: &Gfid, newname: &OsStr) {
        let moved = self.down.remove(&(*oldparent, oldname.to_owned()));
        self.remove_entry(newparent, newname);
        if let Some(g) = moved {
            self.up.remove(&g);
            self.insert(g, newparent, newname);
        }
    }

    /// The full path of directory `gfid` (`/` for the root), when every ancestor is known.
    pub fn path(&self, gfid: &Gfid) -> Option<Vec<u8>> {
        let mut names: Vec<&OsStr> = Vec::new();
        let mut cur = *gfid;
        while cur != Gfid::ROOT {
            let (p, n) = self.up.get(&cur)?;
            names.push(n);
            cur = *p;
            if names.len() > DEPTH_MAX {
                return None;
            }
        }
        if names.is_empty() {
            return Some(b"/".to_vec());
        }
        let mut out = Vec::new();
        for n in names.iter().rev() {
            out.push(b'/');
            out.extend_from_slice(n.as_bytes());
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_follow_parents_renames_and_removals() {
        let (a, b, c) = (Gfid([1; 16]), Gfid([2; 16]), Gfid([3; 16]));
        let mut p = Paths::default();
        p.insert(a, &Gfid::ROOT, OsStr::new("a"));
        p.insert(b, &a, OsStr::new("b"));
        assert_eq!(p.path(&b).as_deref(), Some(&b"/a/b"[..]));
        assert_eq!(p.path(&Gfid::ROOT).as_deref(), Some(&b"/"[..]));
        assert_eq!(p.path(&c), None);
        p.rename(&Gfid::ROOT, OsStr::new("a"), &Gfid::ROOT, OsStr::new("z"));
        assert_eq!(p.path(&b).as_deref(), Some(&b"/z/b"[..]));
        p.insert(c, &Gfid::ROOT, OsStr::new("c"));
        // Renamed over: the directory that was there is gone.
        p.rename(&a, OsStr::new("b"), &Gfid::ROOT, OsStr::new("c"));
        assert_eq!(p.path(&b).as_deref(), Some(&b"/c"[..]));
        assert_eq!(p.path(&c), None);
        p.remove_entry(&Gfid::ROOT, OsStr::new("c"));
        assert_eq!(p.path(&b), None);
        // A cycle from stale entries ends.
        p.insert(a, &b, OsStr::new("x"));
        p.insert(b, &a, OsStr::new("y"));
        assert_eq!(p.path(&a), None);
    }
}
