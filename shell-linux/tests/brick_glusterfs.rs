//! Bricks in storage/posix's on-disk format against the real GlusterFS (translators.md §5.6):
//! a brick Keelson writes, mounted by `glusterfs -f VOLFILE MNT` with storage/posix, shows the
//! same tree, sizes, contents, links, modes, xattrs and inode numbers; what glusterfs then
//! writes into it (and into a brick of its own) passes Keelson's consistency check and reads
//! back through Keelson's fops.
//!
//! Needs root (trusted xattrs, FUSE) and glusterfs (Debian's glusterfs-client); without
//! glusterfs a test is skipped with a note, unless `CI` is set.

mod tools;

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use keelson_core::xlator::handle::Gfid;
use keelson_core::xlator::iatt::IaType;
use keelson_linux::brick::{self, check::check, Brick, SetAttr};

fn glusterfs() -> Option<PathBuf> {
    tools::find("glusterfs", "glusterfs-client")
}

fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("brick")
        .join(name);
    if dir.join("mnt").exists() {
        // Left mounted by an earlier run that was killed.
        let _ = Command::new("umount")
            .arg("-l")
            .arg(dir.join("mnt"))
            .stderr(std::process::Stdio::null())
            .status();
    }
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(dir.join("brick")).unwrap();
    fs::create_dir_all(dir.join("mnt")).unwrap();
    dir
}

/// A real glusterfs FUSE mount of a one-brick storage/posix graph; unmounted on drop.
struct Mount {
    mnt: PathBuf,
    log: PathBuf,
    mounted: bool,
}

impl Mount {
    fn new(exe: &Path, dir: &Path) -> Mount {
        let vol = dir.join("posix.vol");
        fs::write(
            &vol,
            format!(
                "volume posix\n  type storage/posix\n  option directory {}\nend-volume\n",
                dir.join("brick").display()
            ),
        )
        .unwrap();
        let mnt = dir.join("mnt");
        let log = dir.join("mount.log");
        let st = Command::new(exe)
            .arg("-f")
            .arg(&vol)
            .arg("-l")
            .arg(&log)
            .arg(&mnt)
            .status()
            .unwrap();
        assert!(st.success(), "glusterfs exited {st}");
        let root_dev = fs::metadata(dir).unwrap().dev();
        let deadline = Instant::now() + Duration::from_secs(20);
        // Mounted once the mount point is on another device and answers.
        while fs::metadata(&mnt).map(|m| m.dev()).ok() == Some(root_dev)
            || fs::read_dir(&mnt).is_err()
        {
            assert!(
                Instant::now() < deadline,
                "glusterfs did not mount:\n{}",
                fs::read_to_string(&log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Mount {
            mnt,
            log,
            mounted: true,
        }
    }

    fn unmount(&mut self) {
        if !std::mem::take(&mut self.mounted) {
            return;
        }
        if Command::new("umount")
            .arg(&self.mnt)
            .status()
            .is_ok_and(|s| s.success())
        {
            // The glusterfs process exits once the kernel lets go; wait for the brick to settle.
            let deadline = Instant::now() + Duration::from_secs(10);
            while Command::new("mountpoint")
                .arg("-q")
                .arg(&self.mnt)
                .status()
                .is_ok_and(|s| s.success())
                && Instant::now() < deadline
            {
                std::thread::sleep(Duration::from_millis(50));
            }
        } else {
            eprintln!(
                "umount {} failed; glusterfs log:\n{}",
                self.mnt.display(),
                fs::read_to_string(&self.log).unwrap_or_default()
            );
        }
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        self.unmount();
    }
}

/// One object of a tree as a client sees it.
#[derive(Debug, PartialEq, Eq)]
struct Obj {
    kind: &'static str,
    perm: u32,
    nlink: u64,
    size: u64,
    ino: u64,
    /// File contents or symlink target.
    data: Vec<u8>,
    user_xattrs: BTreeMap<String, Vec<u8>>,
}

/// Every object below `root` by relative path (a directory's size is left out: it is the
/// backend's business).
fn walk(root: &Path) -> BTreeMap<String, Obj> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in fs::read_dir(&dir).unwrap() {
            let path = e.unwrap().path();
            let rel = path.strip_prefix(root).unwrap().display().to_string();
            if rel == ".glusterfs" {
                continue;
            }
            let m = fs::symlink_metadata(&path).unwrap();
            let ft = m.file_type();
            let (kind, data) = if ft.is_dir() {
                stack.push(path.clone());
                ("dir", Vec::new())
            } else if ft.is_symlink() {
                let t = fs::read_link(&path).unwrap();
                ("symlink", t.into_os_string().into_encoded_bytes())
            } else if ft.is_file() {
                ("file", fs::read(&path).unwrap())
            } else {
                ("other", Vec::new())
            };
            let user_xattrs = brick::xattr::list(&path)
                .unwrap()
                .into_iter()
                .filter(|n| n.starts_with("user."))
                .map(|n| {
                    let v = brick::xattr::get(&path, &n).unwrap().unwrap();
                    (n, v)
                })
                .collect();
            out.insert(
                rel,
                Obj {
                    kind,
                    perm: m.mode() & 0o7777,
                    nlink: if ft.is_dir() { 0 } else { m.nlink() },
                    size: if ft.is_dir() { 0 } else { m.size() },
                    ino: m.ino(),
                    data,
                    user_xattrs,
                },
            );
        }
    }
    out
}

fn name(s: &str) -> &OsStr {
    OsStr::new(s)
}

fn gfid() -> Gfid {
    brick::new_gfid().unwrap()
}

/// A tree made through Keelson's fops: directories two deep, files with data, a hard link, a
/// symlink, a FIFO, renames of a file and of a directory across directories, an unlinked file,
/// a removed directory, modes, a user xattr, a truncate.
fn build(b: &Brick) -> BTreeMap<String, Gfid> {
    let mut g = BTreeMap::new();
    let root = Gfid::ROOT;
    let d1 = gfid();
    b.mkdir(&root, name("d1"), 0o755, &d1, None).unwrap();
    let d2 = gfid();
    b.mkdir(&d1, name("d2"), 0o700, &d2, None).unwrap();
    let f = gfid();
    b.create(&d1, name("f"), 0o644, &f, None).unwrap();
    b.write(&f, 0, b"hello, brick\n", false).unwrap();
    b.link(&f, &root, name("hard")).unwrap();
    let sl = gfid();
    b.symlink(&d1, name("sl"), name("f"), &sl, None).unwrap();
    let big = gfid();
    b.create(&root, name("a.bin"), 0o600, &big, None).unwrap();
    let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 + i / 251) as u8).collect();
    b.write(&big, 0, &data[..100_000], false).unwrap();
    b.write(&big, 100_000, &data[100_000..], true).unwrap();
    b.rename(&root, name("a.bin"), &d2, name("moved.bin"))
        .unwrap();
    let d3 = gfid();
    b.mkdir(&root, name("d3"), 0o755, &d3, None).unwrap();
    let inner = gfid();
    b.create(&d3, name("inner"), 0o644, &inner, None).unwrap();
    b.rename(&root, name("d3"), &d1, name("d3r")).unwrap();
    let tmp = gfid();
    b.create(&root, name("tmp"), 0o644, &tmp, None).unwrap();
    b.unlink(&root, name("tmp")).unwrap();
    let gone = gfid();
    b.mkdir(&root, name("gone"), 0o755, &gone, None).unwrap();
    b.rmdir(&root, name("gone")).unwrap();
    let fifo = gfid();
    b.mknod(&root, name("fifo"), libc::S_IFIFO | 0o644, 0, &fifo, None)
        .unwrap();
    b.setattr(
        &f,
        &SetAttr {
            perm: Some(0o640),
            ..SetAttr::default()
        },
    )
    .unwrap();
    b.setxattr(&f, "user.k", b"v1").unwrap();
    let t = gfid();
    b.create(&d2, name("t"), 0o644, &t, None).unwrap();
    b.write(&t, 0, &[1u8; 5000], false).unwrap();
    b.truncate(&t, 1234).unwrap();
    // The file that replaces another by rename: the old one's last name and handle go.
    let old = gfid();
    b.create(&root, name("victim"), 0o644, &old, None).unwrap();
    let new = gfid();
    b.create(&root, name("winner"), 0o644, &new, None).unwrap();
    b.write(&new, 0, b"won", false).unwrap();
    b.rename(&root, name("winner"), &root, name("victim"))
        .unwrap();
    for (k, v) in [
        ("d1", d1),
        ("d1/d2", d2),
        ("d1/f", f),
        ("hard", f),
        ("d1/sl", sl),
        ("d1/d2/moved.bin", big),
        ("d1/d3r", d3),
        ("d1/d3r/inner", inner),
        ("fifo", fifo),
        ("d1/d2/t", t),
        ("victim", new),
    ] {
        g.insert(k.to_string(), v);
    }
    assert!(b.stat(&tmp).is_err(), "an unlinked file's handle is gone");
    assert!(b.stat(&old).is_err(), "a replaced file's handle is gone");
    assert!(
        b.stat(&gone).is_err(),
        "a removed directory's handle is gone"
    );
    g
}

#[test]
fn a_brick_keelson_writes_mounts_in_glusterfs_as_written() {
    let Some(exe) = glusterfs() else { return };
    let dir = scratch("ours");
    let b = Brick::open(&dir.join("brick")).unwrap();
    let gfids = build(&b);
    assert_eq!(check(&b).unwrap(), Vec::<String>::new());

    // What Keelson's own fops report, as a client would see it.
    let f = b.lookup(&gfids["d1"], name("f")).unwrap();
    assert_eq!((f.ty, f.nlink, f.prot, f.size), (IaType::Reg, 2, 0o640, 13));
    assert_eq!(f.ino, gfids["d1/f"].ino());
    let names: Vec<_> = b
        .readdir(&Gfid::ROOT)
        .unwrap()
        .into_iter()
        .map(|e| e.name.into_string().unwrap())
        .collect();
    assert!(!names.contains(&".glusterfs".to_string()), "{names:?}");

    let expected = walk(&dir.join("brick"));
    let mut m = Mount::new(&exe, &dir);
    let seen = walk(&m.mnt);
    assert_eq!(
        seen.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>()
    );
    for (path, obj) in &seen {
        let want = &expected[path];
        assert_eq!(
            (obj.kind, obj.perm, obj.size, &obj.data, &obj.user_xattrs),
            (
                want.kind,
                want.perm,
                want.size,
                &want.data,
                &want.user_xattrs
            ),
            "{path}"
        );
        if obj.kind != "dir" {
            // The client's count leaves out the handle.
            assert_eq!(obj.nlink, want.nlink - 1, "{path} nlink");
        }
        assert_eq!(obj.ino, gfids[path].ino(), "{path}: st_ino is the gfid's");
    }

    // Now glusterfs writes into the same brick; Keelson reads it back.
    fs::write(m.mnt.join("d1/from-gluster"), b"written by glusterfs").unwrap();
    fs::create_dir(m.mnt.join("gdir")).unwrap();
    fs::rename(m.mnt.join("d1/d2/t"), m.mnt.join("gdir/t2")).unwrap();
    fs::remove_file(m.mnt.join("hard")).unwrap();
    m.unmount();
    drop(m);
    assert_eq!(check(&b).unwrap(), Vec::<String>::new(), "after glusterfs");
    let fg = b.lookup(&gfids["d1"], name("from-gluster")).unwrap();
    let mut buf = [0u8; 64];
    let n = b.read(&fg.gfid, 0, &mut buf).unwrap();
    assert_eq!(&buf[..n], b"written by glusterfs");
    let gdir = b.lookup(&Gfid::ROOT, name("gdir")).unwrap();
    let t2 = b.lookup(&gdir.gfid, name("t2")).unwrap();
    assert_eq!((t2.gfid, t2.size), (gfids["d1/d2/t"], 1234));
    assert_eq!(b.stat(&gfids["d1/f"]).unwrap().nlink, 1);
}

#[test]
fn a_brick_glusterfs_writes_passes_the_check_and_reads_in_keelson() {
    let Some(exe) = glusterfs() else { return };
    let dir = scratch("theirs");
    let mut m = Mount::new(&exe, &dir);
    let mnt = m.mnt.clone();
    fs::create_dir_all(mnt.join("a/b/c")).unwrap();
    fs::write(mnt.join("a/b/c/deep"), vec![9u8; 70_000]).unwrap();
    fs::write(mnt.join("top"), b"top").unwrap();
    fs::hard_link(mnt.join("top"), mnt.join("a/top-link")).unwrap();
    std::os::unix::fs::symlink("../top", mnt.join("a/up")).unwrap();
    fs::rename(mnt.join("a/b"), mnt.join("b-moved")).unwrap();
    fs::set_permissions(mnt.join("top"), fs::Permissions::from_mode(0o600)).unwrap();
    let seen = walk(&mnt);
    m.unmount();
    drop(m);

    let b = Brick::open(&dir.join("brick")).unwrap();
    assert_eq!(check(&b).unwrap(), Vec::<String>::new());
    // Through Keelson's fops, from the root down by name.
    let mut ours = BTreeMap::new();
    let mut stack = vec![(String::new(), Gfid::ROOT)];
    while let Some((prefix, g)) = stack.pop() {
        for e in b.readdir(&g).unwrap() {
            let path = format!("{prefix}{}", e.name.to_str().unwrap());
            let a = e.attr;
            let data = match a.ty {
                IaType::Reg => {
                    let mut buf = vec![0u8; a.size as usize];
                    assert_eq!(b.read(&a.gfid, 0, &mut buf).unwrap(), buf.len());
                    buf
                }
                IaType::Lnk => b
                    .readlink(&a.gfid)
                    .unwrap()
                    .into_os_string()
                    .into_encoded_bytes(),
                _ => Vec::new(),
            };
            if a.ty == IaType::Dir {
                stack.push((format!("{path}/"), a.gfid));
            }
            ours.insert(path, (u32::from(a.prot), a.ino, data));
        }
    }
    let theirs: BTreeMap<_, _> = seen
        .into_iter()
        .map(|(p, o)| (p, (o.perm, o.ino, o.data)))
        .collect();
    assert_eq!(ours, theirs);
}

#[test]
fn the_check_names_what_is_wrong() {
    let dir = scratch("broken");
    let b = Brick::open(&dir.join("brick")).unwrap();
    let f = gfid();
    b.create(&Gfid::ROOT, name("f"), 0o644, &f, None).unwrap();
    let d = gfid();
    b.mkdir(&Gfid::ROOT, name("d"), 0o755, &d, None).unwrap();
    assert_eq!(check(&b).unwrap(), Vec::<String>::new());
    fs::remove_file(b.handle(&f)).unwrap();
    fs::write(dir.join("brick/stray"), b"no gfid").unwrap();
    fs::remove_file(b.handle(&d)).unwrap();
    std::os::unix::fs::symlink("../../00/00/nowhere/d", b.handle(&d)).unwrap();
    let p = check(&b).unwrap();
    assert_eq!(p.len(), 3, "{p:#?}");
    assert!(
        p.iter().any(|l| l.ends_with("/stray: no trusted.gfid")),
        "{p:#?}"
    );
    assert!(p.iter().any(|l| l.contains("/f: handle: ")), "{p:#?}");
    assert!(
        p.iter()
            .any(|l| l.contains("/d: handle points to ../../00/00/nowhere/d")),
        "{p:#?}"
    );
    // Posix's own xattrs cannot be changed through the fops.
    let e = b.setxattr(&f, "trusted.gfid", &[0; 16]).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EPERM));
    // Names that are not one component are refused.
    for bad in ["", ".", "..", "a/b"] {
        let e = b
            .create(&Gfid::ROOT, name(bad), 0o644, &gfid(), None)
            .unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EINVAL), "{bad:?}");
    }
    // A failed create (null gfid) leaves nothing behind.
    let e = b
        .create(&Gfid::ROOT, name("n"), 0o644, &Gfid::NULL, None)
        .unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EINVAL));
    assert!(!dir.join("brick/n").exists());
}
