//! cluster/distribute placement against the real glusterfs (translators.md §5.3): the same
//! 3-brick volfile (storage/posix + features/locks per brick, cluster/distribute on top, its
//! subvolumes listed out of name order) is mounted by `keelctl mount` and by glusterfs 10.3's
//! `glusterfs -f VOLFILE MNT`, each on fresh bricks; the same directories, a few hundred files
//! in them (rsync-style, UTF-8, long and spaced names among them), renames and hard links are
//! made through both. Then every brick holds the same names in both runs: each file on the
//! same brick, each linkto file (`---------T`, `trusted.glusterfs.dht.linkto`) in the same
//! place pointing at the same subvolume, and every directory with the same
//! `trusted.glusterfs.dht` layout and `.mds` marker on every brick (the root's healed one
//! included). The Keelson mount also lists every directory with exactly the names made.
//!
//! The standard tools (`cp -a`, `diff -r`, `ls -lR`, `mv`, `ln`, `tar`, ...) also give the
//! same tree on a Keelson distribute mount as on a plain directory, and leave each brick
//! consistent. A brick whose directory goes away is CHILD_DOWN: the other bricks' files read
//! on, names hashing to it fail with ENOTCONN, listings show the rest, and all is back when it
//! returns.
//!
//! Nothing lists a directory through the glusterfs mount: its readdir over distribute loops
//! on this machine's ext4 bricks.
//!
//! Needs root (trusted xattrs, FUSE) and glusterfs (Debian's glusterfs-client); without
//! glusterfs the test is skipped with a note, unless `CI` is set.

mod fusetree;
mod tools;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use fusetree::{make_source, standard_tools, wait};
use keelson_linux::brick::{check::check, xattr, Brick};
use tools::mounted;

const KEELCTL: &str = env!("CARGO_BIN_EXE_keelctl");

/// The volfile; `DIR` is replaced by the scratch directory of one run.
const VOLFILE: &str = "volume dist-0\n  type storage/posix\n  option directory DIR/b0\nend-volume\n\
volume dist-locks-0\n  type features/locks\n  subvolumes dist-0\nend-volume\n\
volume dist-1\n  type storage/posix\n  option directory DIR/b1\nend-volume\n\
volume dist-locks-1\n  type features/locks\n  subvolumes dist-1\nend-volume\n\
volume dist-2\n  type storage/posix\n  option directory DIR/b2\nend-volume\n\
volume dist-locks-2\n  type features/locks\n  subvolumes dist-2\nend-volume\n\
volume dist\n  type cluster/distribute\n  subvolumes dist-locks-2 dist-locks-0 dist-locks-1\nend-volume\n";

const BRICKS: [&str; 3] = ["b0", "b1", "b2"];

fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("dht")
        .join(name);
    // Left mounted by an earlier run that was killed.
    let _ = Command::new("umount")
        .arg("-l")
        .arg(dir.join("mnt"))
        .stderr(Stdio::null())
        .status();
    let _ = fs::remove_dir_all(&dir);
    for d in BRICKS.iter().chain(&["mnt", "ref"]) {
        fs::create_dir_all(dir.join(d)).unwrap();
    }
    let vol = VOLFILE.replace("DIR", dir.to_str().unwrap());
    fs::write(dir.join("dist.vol"), vol).unwrap();
    dir
}

/// A FUSE mount of `DIR/dist.vol` on `DIR/mnt`, by keelctl or glusterfs; unmounted on drop.
struct Mount {
    mnt: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

impl Mount {
    fn keelson(dir: &Path) -> Mount {
        let (mnt, log) = (dir.join("mnt"), dir.join("mount.log"));
        let child = Command::new(KEELCTL)
            .arg("mount")
            .arg(dir.join("dist.vol"))
            .arg(&mnt)
            .arg("--log-file")
            .arg(&log)
            .stderr(fs::File::create(dir.join("stderr")).unwrap())
            .spawn()
            .unwrap();
        wait("keelctl mount is mounted", || mounted(&mnt));
        Mount {
            mnt,
            log,
            child: Some(child),
        }
    }

    fn glusterfs(exe: &Path, dir: &Path) -> Mount {
        let (mnt, log) = (dir.join("mnt"), dir.join("mount.log"));
        let st = Command::new(exe)
            .arg("-f")
            .arg(dir.join("dist.vol"))
            .arg("-l")
            .arg(&log)
            .arg(&mnt)
            .status()
            .unwrap();
        assert!(st.success(), "glusterfs exited {st}");
        let root_dev = fs::metadata(dir).unwrap().dev();
        // Mounted once the mount point is on another device and answers (opendir only: a
        // listing through glusterfs's distribute does not end here).
        wait("glusterfs is mounted", || {
            fs::metadata(&mnt).map(|m| m.dev()).ok() != Some(root_dev) && fs::read_dir(&mnt).is_ok()
        });
        Mount {
            mnt,
            log,
            child: None,
        }
    }

    fn unmount(&mut self) {
        if !mounted(&self.mnt) {
            return;
        }
        let ok = Command::new("umount")
            .arg(&self.mnt)
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            ok,
            "umount {} failed; log:\n{}",
            self.mnt.display(),
            fs::read_to_string(&self.log).unwrap_or_default()
        );
        if let Some(c) = &mut self.child {
            let st = c.wait().unwrap();
            assert!(st.success(), "keelctl mount exited {st}");
        }
        // glusterfs exits once the kernel lets go.
        wait("the mount is gone", || !mounted(&self.mnt));
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        if mounted(&self.mnt) {
            let _ = Command::new("umount").arg("-l").arg(&self.mnt).status();
        }
        if let Some(c) = &mut self.child {
            if c.try_wait().ok().flatten().is_none() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}

/// The directories made, parents first (18 layouts with the root).
const DIRS: [&str; 17] = [
    "d1",
    "d1/d2",
    "d1/d2/d3",
    "d1/d2/d3/d4",
    "dir1",
    "dir2",
    "x y",
    "café",
    "ünïcödé/ß",
    "ünïcödé",
    "a.b.c",
    ".hidden",
    "long-directory-name-that-spans-more-than-two-dm-hash-blocks-of-sixteen",
    "n/1",
    "n/2",
    "n",
    "n/1/x",
];

/// The files: names of every kind in the root and in each directory.
fn files() -> Vec<String> {
    let mut out = Vec::new();
    let names = |n: usize, out: &mut Vec<String>, dir: &str| {
        for i in 0..n {
            let name = match i % 8 {
                0 => format!("file{i}"),
                1 => format!("f-{i}.txt"),
                2 => format!(".f{i}.txt.Ab12Cd"),
                3 => format!("café {i}"),
                4 => format!("{i}"),
                5 => format!("a-much-longer-file-name-to-cover-two-blocks-{i}.dat"),
                6 => format!("UPPER_{i}.TXT"),
                _ => format!("ñ{i}ß"),
            };
            out.push(if dir.is_empty() {
                name
            } else {
                format!("{dir}/{name}")
            });
        }
    };
    names(150, &mut out, "");
    // Parents before children: directories in creation order.
    let mut dirs: Vec<&str> = DIRS.to_vec();
    dirs.sort_by_key(|d| d.matches('/').count());
    for d in dirs {
        names(16, &mut out, d);
    }
    out
}

/// Renames (old → new) and hard links (existing → new), made after the files.
fn renames() -> Vec<(String, String)> {
    let f = files();
    let mut out = Vec::new();
    for (i, old) in f.iter().enumerate().filter(|(i, _)| i % 17 == 3).take(24) {
        let parent = Path::new(old)
            .parent()
            .map(|p| p.to_str().unwrap().to_string());
        let new = match (i % 3, parent.as_deref()) {
            (0, Some(p)) if !p.is_empty() => format!("{p}/renamed-{i}"),
            (1, _) => format!("dir2/moved-{i}"),
            _ => format!("top-{i}"),
        };
        out.push((old.clone(), new));
    }
    out
}

fn links() -> Vec<(String, String)> {
    let f = files();
    (0..4)
        .map(|i| (f[5 + i * 40].clone(), format!("d1/link-{i}")))
        .collect()
}

/// Makes everything through the mount.
fn populate(mnt: &Path) {
    let mut dirs: Vec<&str> = DIRS.to_vec();
    dirs.sort_by_key(|d| d.matches('/').count());
    for d in &dirs {
        fs::create_dir(mnt.join(d)).unwrap_or_else(|e| panic!("mkdir {d}: {e}"));
    }
    for f in files() {
        fs::write(mnt.join(&f), f.as_bytes()).unwrap_or_else(|e| panic!("create {f}: {e}"));
    }
    for (old, new) in renames() {
        fs::rename(mnt.join(&old), mnt.join(&new))
            .unwrap_or_else(|e| panic!("rename {old} {new}: {e}"));
    }
    for (old, new) in links() {
        fs::hard_link(mnt.join(&old), mnt.join(&new))
            .unwrap_or_else(|e| panic!("link {old} {new}: {e}"));
    }
}

/// What one brick holds at one name, as far as distribute decides it.
#[derive(Debug, PartialEq, Eq)]
enum Held {
    /// A directory with its layout xattr and whether it has the mds marker.
    Dir(Option<Vec<u8>>, bool),
    /// A data file.
    File,
    /// A linkto file and the subvolume it names.
    Linkto(Option<Vec<u8>>),
}

fn walk(root: &Path, rel: &Path, out: &mut BTreeMap<(String, usize), Held>, brick: usize) {
    for e in fs::read_dir(root.join(rel)).unwrap() {
        let e = e.unwrap();
        if rel.as_os_str().is_empty() && e.file_name() == ".glusterfs" {
            continue;
        }
        let r = rel.join(e.file_name());
        let p = root.join(&r);
        let m = fs::symlink_metadata(&p).unwrap();
        let key = (
            String::from_utf8_lossy(r.as_os_str().as_bytes()).into_owned(),
            brick,
        );
        let held = if m.is_dir() {
            walk(root, &r, out, brick);
            Held::Dir(
                xattr::get(&p, "trusted.glusterfs.dht").unwrap(),
                xattr::get(&p, "trusted.glusterfs.dht.mds")
                    .unwrap()
                    .is_some(),
            )
        } else if m.permissions().mode() & 0o7777 == 0o1000 && m.len() == 0 {
            Held::Linkto(xattr::get(&p, "trusted.glusterfs.dht.linkto").unwrap())
        } else {
            Held::File
        };
        out.insert(key, held);
    }
}

/// Every brick's names of one run, with the root's layout.
fn inventory(dir: &Path) -> BTreeMap<(String, usize), Held> {
    let mut out = BTreeMap::new();
    for (i, b) in BRICKS.iter().enumerate() {
        let root = dir.join(b);
        walk(&root, Path::new(""), &mut out, i);
        out.insert(
            ("/".into(), i),
            Held::Dir(
                xattr::get(&root, "trusted.glusterfs.dht").unwrap(),
                xattr::get(&root, "trusted.glusterfs.dht.mds")
                    .unwrap()
                    .is_some(),
            ),
        );
    }
    out
}

/// The names a directory should list through the mount.
fn expected_listing(dir: &str) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    let mut all: Vec<String> = DIRS.iter().map(|d| d.to_string()).collect();
    let moved: Vec<String> = renames().into_iter().map(|(o, _)| o).collect();
    all.extend(files().into_iter().filter(|f| !moved.contains(f)));
    all.extend(renames().into_iter().map(|(_, n)| n));
    all.extend(links().into_iter().map(|(_, n)| n));
    for p in all {
        let parent = Path::new(&p)
            .parent()
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        if parent == dir {
            names.push(
                Path::new(&p)
                    .file_name()
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .to_string(),
            );
        }
    }
    names.sort();
    names
}

#[test]
fn files_and_layouts_land_where_glusterfs_puts_them() {
    let Some(exe) = tools::find("glusterfs", "glusterfs-client") else {
        return;
    };
    let kdir = scratch("keelson");
    let gdir = scratch("glusterfs");

    let mut k = Mount::keelson(&kdir);
    populate(&k.mnt);
    // Keelson's listings merge the bricks and hide linkto files.
    let mut dirs: Vec<&str> = vec![""];
    dirs.extend(DIRS);
    for d in &dirs {
        let mut got: Vec<String> = fs::read_dir(k.mnt.join(d))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_str().unwrap().to_string())
            .collect();
        got.sort();
        assert_eq!(got, expected_listing(d), "listing of /{d}");
    }
    for f in files().iter().take(20) {
        if !renames().iter().any(|(o, _)| o == f) {
            assert_eq!(fs::read(k.mnt.join(f)).unwrap(), f.as_bytes(), "{f}");
        }
    }
    k.unmount();

    let mut g = Mount::glusterfs(&exe, &gdir);
    populate(&g.mnt);
    g.unmount();

    let ours = inventory(&kdir);
    let theirs = inventory(&gdir);
    let only = |a: &BTreeMap<(String, usize), Held>, b: &BTreeMap<(String, usize), Held>| {
        a.iter()
            .filter(|(key, v)| b.get(key) != Some(v))
            .map(|(key, v)| format!("{key:?}: {v:?} (other: {:?})", b.get(key)))
            .collect::<Vec<_>>()
    };
    let diff = only(&ours, &theirs);
    let missing = only(&theirs, &ours);
    assert!(
        diff.is_empty() && missing.is_empty(),
        "Keelson's bricks differ from glusterfs's:\n{}\nglusterfs's not in Keelson's:\n{}",
        diff.join("\n"),
        missing.join("\n")
    );
    // The comparison covered what it should: every name, spread over all three bricks, with
    // linkto files and 18 layouts (the root's healed with commit hash 1).
    let files_on = |b: usize| {
        ours.iter()
            .filter(|((_, i), h)| *i == b && **h == Held::File)
            .count()
    };
    assert!(
        (0..3).all(|b| files_on(b) > 60),
        "{:?}",
        (0..3).map(files_on).collect::<Vec<_>>()
    );
    assert_eq!(
        (0..3).map(files_on).sum::<usize>(),
        files().len() + links().len()
    );
    let linktos = ours
        .values()
        .filter(|h| matches!(h, Held::Linkto(_)))
        .count();
    assert!(linktos >= 10, "{linktos} linkto files");
    let layouts: Vec<_> = ours
        .iter()
        .filter(|(_, h)| matches!(h, Held::Dir(Some(_), _)))
        .collect();
    assert_eq!(layouts.len(), 3 * 18);
    let Held::Dir(Some(root), _) = &ours[&("/".to_string(), 0)] else {
        panic!("no root layout")
    };
    assert_eq!(&root[..4], &[0, 0, 0, 1]);
}

#[test]
fn standard_tools_work_on_a_distribute_mount() {
    let dir = scratch("tools");
    make_source(&dir);
    let mut k = Mount::keelson(&dir);
    standard_tools(&dir, &k.mnt.clone());
    k.unmount();
    for b in BRICKS {
        let brick = Brick::open(&dir.join(b)).unwrap();
        assert_eq!(check(&brick).unwrap(), Vec::<String>::new(), "{b}");
    }
    // Mounted again, distribute finds everything from what the bricks hold.
    let mut k = Mount::keelson(&dir);
    let m = k.mnt.display().to_string();
    fusetree::sh(
        &format!("diff -r --no-dereference -x fifo '{m}/src' ref/src"),
        &dir,
    );
    fusetree::sh("rm -r src src2", &k.mnt);
    assert_eq!(
        fs::read_dir(&k.mnt).unwrap().count(),
        0,
        "rm -r left something"
    );
    k.unmount();
    for b in BRICKS {
        let left: Vec<_> = fs::read_dir(dir.join(b))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, [".glusterfs"], "{b}");
    }
}

/// The brick `name` lands on in directory `dir` of the test volfile (its subvolumes sort as
/// `dist-locks-0/1/2`, on bricks b0/b1/b2).
fn brick_of(dir: &str, name: &str) -> &'static str {
    use keelson_core::xlator::distribute::{hashed_subvol, layout_of};
    let k = hashed_subvol(&layout_of(dir.as_bytes(), 3), name.as_bytes()).unwrap();
    BRICKS[k]
}

#[test]
fn a_brick_that_goes_away_is_skipped_and_back_again_later() {
    let dir = scratch("away");
    let mut k = Mount::keelson(&dir);
    let mnt = k.mnt.clone();
    fs::create_dir(mnt.join("d")).unwrap();
    let names: Vec<String> = (0..30).map(|i| format!("f{i}")).collect();
    for n in &names {
        fs::write(mnt.join("d").join(n), n.as_bytes()).unwrap();
    }
    for n in &names {
        assert!(
            dir.join(brick_of("/d", n)).join("d").join(n).is_file(),
            "{n}"
        );
    }
    fs::rename(dir.join("b1"), dir.join("b1.away")).unwrap();
    // Files on the other bricks read as before; those on b1 fail (the first failure finds the
    // brick gone: CHILD_DOWN), and so do new names that hash to it.
    for n in &names {
        let got = fs::read(mnt.join("d").join(n));
        if brick_of("/d", n) == "b1" {
            assert!(got.is_err(), "{n} lives on the brick that went away");
        } else {
            assert_eq!(got.unwrap(), n.as_bytes(), "{n}");
        }
    }
    let mut made = 0;
    for i in 0..10 {
        let n = format!("new{i}");
        let r = fs::write(mnt.join("d").join(&n), b"x");
        if brick_of("/d", &n) == "b1" {
            let e = r.unwrap_err();
            assert_eq!(e.raw_os_error(), Some(libc::ENOTCONN), "{n}: {e}");
        } else {
            r.unwrap();
            made += 1;
        }
    }
    assert!(made > 0);
    // The listing shows what the bricks that are up hold.
    let listed: Vec<String> = fs::read_dir(mnt.join("d"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_str().unwrap().to_string())
        .collect();
    for n in &names {
        assert_eq!(listed.contains(n), brick_of("/d", n) != "b1", "{n}");
    }
    // Back: CHILD_UP, and every file reads again.
    fs::rename(dir.join("b1.away"), dir.join("b1")).unwrap();
    for n in &names {
        assert_eq!(
            fs::read(mnt.join("d").join(n)).unwrap(),
            n.as_bytes(),
            "{n}"
        );
    }
    k.unmount();
}
