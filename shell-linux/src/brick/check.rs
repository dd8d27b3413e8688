//! A whole-brick consistency check: what storage/posix keeps on disk for every object (§5.6),
//! read back. It holds for a brick glusterfs wrote and must hold for one Keelson wrote.
//!
//! Per object below the root (the walk skips `.glusterfs`): a 16-byte `trusted.gfid`, unique
//! per inode; a directory's handle is a symlink whose target is its parent's handle plus its
//! name; a non-directory's handle is a hard link to it, and its `trusted.gfid2path.*` keys are
//! exactly one per name it has. Per handle: it belongs to an object of the tree (none dangles).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use keelson_core::xlator::handle::{Gfid, GFID2PATH_PREFIX, GFID_XATTR, HANDLE_DIR};

use super::{dir_target, gfid2path, xattr, Brick};

/// What one object looks like from the tree walk.
struct Seen {
    path: PathBuf,
    dir: bool,
    /// (device, inode)
    id: (u64, u64),
    /// The gfid2path keys its names call for.
    keys: BTreeSet<String>,
}

/// Checks the brick; every problem found is one line naming the path.
pub fn check(brick: &Brick) -> io::Result<Vec<String>> {
    let mut problems = Vec::new();
    let mut objects: BTreeMap<Gfid, Seen> = BTreeMap::new();
    match xattr::get(brick.root(), GFID_XATTR)? {
        Some(v) if v == Gfid::ROOT.0 => {}
        other => problems.push(format!(
            "{}: root trusted.gfid is {other:02x?}",
            brick.root().display()
        )),
    }
    let mut stack = vec![(Gfid::ROOT, brick.root().to_path_buf())];
    while let Some((pgfid, dir)) = stack.pop() {
        for e in fs::read_dir(&dir)? {
            let e = e?;
            let name = e.file_name();
            if pgfid == Gfid::ROOT && name == HANDLE_DIR {
                continue;
            }
            let path = e.path();
            let m = fs::symlink_metadata(&path)?;
            let Some(gfid) = xattr::get(&path, GFID_XATTR)?.and_then(|v| Gfid::from_slice(&v))
            else {
                problems.push(format!("{}: no trusted.gfid", path.display()));
                continue;
            };
            let id = (m.dev(), m.ino());
            let seen = objects.entry(gfid).or_insert_with(|| Seen {
                path: path.clone(),
                dir: m.is_dir(),
                id,
                keys: BTreeSet::new(),
            });
            if seen.id != id {
                problems.push(format!(
                    "{} and {}: two objects with gfid {gfid}",
                    seen.path.display(),
                    path.display()
                ));
                continue;
            }
            if m.is_dir() {
                let want = dir_target(&pgfid, &name)?;
                match fs::read_link(brick.handle(&gfid)) {
                    Ok(t) if t == want => {}
                    Ok(t) => problems.push(format!(
                        "{}: handle points to {}, not {}",
                        path.display(),
                        t.display(),
                        want.display()
                    )),
                    Err(e) => problems.push(format!("{}: directory handle: {e}", path.display())),
                }
                stack.push((gfid, path));
            } else {
                seen.keys.insert(gfid2path(&pgfid, &name)?.0);
            }
        }
    }
    for (gfid, seen) in &objects {
        if seen.dir {
            continue;
        }
        match fs::symlink_metadata(brick.handle(gfid)) {
            Ok(h) if (h.dev(), h.ino()) == seen.id => {}
            Ok(_) => problems.push(format!(
                "{}: handle of {gfid} is another inode",
                seen.path.display()
            )),
            Err(e) => problems.push(format!("{}: handle: {e}", seen.path.display())),
        }
        let have: BTreeSet<String> = xattr::list(&seen.path)?
            .into_iter()
            .filter(|n| n.starts_with(GFID2PATH_PREFIX))
            .collect();
        if have != seen.keys {
            problems.push(format!(
                "{}: gfid2path keys {have:?}, its names call for {:?}",
                seen.path.display(),
                seen.keys
            ));
        }
    }
    problems.extend(dangling_handles(brick, &objects)?);
    Ok(problems)
}

/// Handles in `.glusterfs/xx/yy/` that belong to no object of the tree.
fn dangling_handles(brick: &Brick, objects: &BTreeMap<Gfid, Seen>) -> io::Result<Vec<String>> {
    let mut out = Vec::new();
    let hd = brick.root().join(HANDLE_DIR);
    for a in fs::read_dir(&hd)? {
        let a = a?;
        if a.file_name().len() != 2 || !a.file_type()?.is_dir() {
            continue;
        }
        for b in fs::read_dir(a.path())? {
            let b = b?;
            if !b.file_type()?.is_dir() {
                continue;
            }
            for h in fs::read_dir(b.path())? {
                let h = h?;
                let name = h.file_name();
                match Gfid::parse(name.as_bytes()) {
                    Some(g) if g == Gfid::ROOT || objects.contains_key(&g) => {}
                    _ => out.push(format!("{}: dangling handle", display(&h.path()))),
                }
            }
        }
    }
    Ok(out)
}

fn display(p: &Path) -> String {
    p.display().to_string()
}
