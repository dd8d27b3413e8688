//! cluster/replicate (AFR, translators.md §5.4) through `keelctl mount`, over two
//! storage/posix bricks (each under features/locks, as glusterfs needs), against the real
//! glusterfs as the oracle:
//!
//! - a brick whose file is made immutable (`chattr +i`) fails the writes: the other brick
//!   blames it with exactly the bytes glusterfs writes (`trusted.afr.r-client-1 =
//!   00000001 00000000 00000000`), reads come from the good copy, and once the file is
//!   writable again the heal makes both bricks identical with every counter zero;
//! - the blame Keelson leaves is understood by a real `glusterfs -f` mount of the same
//!   volfile (it reads the good copy and reports no split-brain), and the blame glusterfs
//!   leaves is healed by Keelson;
//! - a brick whose directory goes away is CHILD_DOWN (the other copy takes the changes and
//!   blames it), and CHILD_UP once it is back, which heals it.
//!
//! Needs root (trusted xattrs, chattr, FUSE); glusterfs (glusterfs-client) for the oracle
//! parts, skipped with a note without it unless `CI` is set.

mod fusetree;
mod tools;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use fusetree::{sh, wait};
use keelson_core::xlator::handle::Gfid;
use keelson_core::xlator::replicate::super_fast_hash;
use keelson_linux::brick::xattr;
use tools::mounted;

const KEELCTL: &str = env!("CARGO_BIN_EXE_keelctl");

/// The replicate graph; `DIR` is replaced by the scratch directory.
const VOL: &str = "volume r-posix-0\n  type storage/posix\n  option directory DIR/b0\nend-volume\n\
volume r-client-0\n  type features/locks\n  subvolumes r-posix-0\nend-volume\n\
volume r-posix-1\n  type storage/posix\n  option directory DIR/b1\nend-volume\n\
volume r-client-1\n  type features/locks\n  subvolumes r-posix-1\nend-volume\n\
volume r\n  type cluster/replicate\n  option afr-pending-xattr r-client-0,r-client-1\n  \
subvolumes r-client-0 r-client-1\nend-volume\n";

const BLAME_DATA_1: [u8; 12] = [0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0];
const ZERO: [u8; 12] = [0; 12];

fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("afr")
        .join(name);
    for m in ["mnt", "gmnt"] {
        // Left mounted by an earlier run that was killed.
        let _ = Command::new("umount")
            .arg("-l")
            .arg(dir.join(m))
            .stderr(Stdio::null())
            .status();
    }
    if dir.exists() {
        // An earlier run may have left immutable files behind.
        let _ = Command::new("chattr")
            .args(["-R", "-i"])
            .arg(&dir)
            .stderr(Stdio::null())
            .status();
    }
    let _ = fs::remove_dir_all(&dir);
    for d in ["b0", "b1", "mnt", "gmnt"] {
        fs::create_dir_all(dir.join(d)).unwrap();
    }
    fs::write(dir.join("r.vol"), VOL.replace("DIR", dir.to_str().unwrap())).unwrap();
    dir
}

/// `keelctl mount DIR/r.vol DIR/mnt`; unmounted on drop.
struct KeelMount {
    child: Child,
    mnt: PathBuf,
}

impl KeelMount {
    fn start(dir: &Path, log: &str) -> KeelMount {
        let mnt = dir.join("mnt");
        let child = Command::new(KEELCTL)
            .arg("mount")
            .arg(dir.join("r.vol"))
            .arg(&mnt)
            .arg("--log-file")
            .arg(dir.join(log))
            .stderr(fs::File::create(dir.join(format!("{log}.stderr"))).unwrap())
            .spawn()
            .unwrap();
        wait("keelctl mount is mounted", || {
            mounted(&mnt) && fs::read_dir(&mnt).is_ok()
        });
        KeelMount { child, mnt }
    }

    fn unmount(mut self) {
        sh(&format!("umount '{}'", self.mnt.display()), Path::new("/"));
        let st = self.child.wait().unwrap();
        assert!(st.success(), "keelctl mount exited {st}");
    }
}

impl Drop for KeelMount {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = Command::new("umount").arg("-l").arg(&self.mnt).status();
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A real `glusterfs -f DIR/r.vol DIR/gmnt`; unmounted (and its process gone) on drop.
struct GlusterMount {
    mnt: PathBuf,
    pid: PathBuf,
}

impl GlusterMount {
    fn start(exe: &Path, dir: &Path) -> GlusterMount {
        let (mnt, pid) = (dir.join("gmnt"), dir.join("glusterfs.pid"));
        sh(
            &format!(
                "'{}' -f '{}' -l '{}' --pid-file='{}' '{}'",
                exe.display(),
                dir.join("r.vol").display(),
                dir.join("glusterfs.log").display(),
                pid.display(),
                mnt.display()
            ),
            dir,
        );
        wait("glusterfs is mounted", || {
            mounted(&mnt) && fs::read_dir(&mnt).is_ok()
        });
        GlusterMount { mnt, pid }
    }
}

impl Drop for GlusterMount {
    fn drop(&mut self) {
        let pid = fs::read_to_string(&self.pid).unwrap_or_default();
        let _ = Command::new("umount").arg(&self.mnt).status();
        // The process exits once the kernel lets go; the bricks are ours again after that.
        let proc = PathBuf::from(format!("/proc/{}", pid.trim()));
        if !pid.trim().is_empty() {
            wait("glusterfs exits", || {
                fs::read_to_string(proc.join("stat"))
                    .map_or(true, |s| s.split_whitespace().nth(2) == Some("Z"))
            });
        }
    }
}

fn get(path: &Path, name: &str) -> Option<Vec<u8>> {
    xattr::get(path, name).unwrap()
}

fn gfid_of(path: &Path) -> Gfid {
    Gfid::from_slice(&get(path, "trusted.gfid").expect("a gfid")).unwrap()
}

/// The child glusterfs's default `read-hash-mode 1` reads `path`'s file from.
fn hashed_child(path: &Path) -> u32 {
    super_fast_hash(&gfid_of(path).0) % 2
}

fn chattr(flag: &str, paths: &[PathBuf]) {
    let st = Command::new("chattr")
        .arg(flag)
        .args(paths)
        .status()
        .unwrap();
    assert!(st.success(), "chattr {flag}");
}

/// The file on both bricks is the same and every changelog counter on it is zero (a key
/// absent or all zeros).
fn healed(dir: &Path, name: &str) {
    let (a, b) = (dir.join("b0").join(name), dir.join("b1").join(name));
    assert_eq!(
        fs::read(&a).unwrap(),
        fs::read(&b).unwrap(),
        "{name}: both copies the same"
    );
    assert_eq!(gfid_of(&a), gfid_of(&b));
    for p in [&a, &b] {
        for k in [
            "trusted.afr.r-client-0",
            "trusted.afr.r-client-1",
            "trusted.afr.dirty",
        ] {
            if let Some(v) = get(p, k) {
                assert_eq!(v, ZERO, "{} {k}", p.display());
            }
        }
    }
}

/// The blame a failed write leaves: the survivor accuses brick 1 of one data operation.
fn blamed(dir: &Path, name: &str, ops: u8) {
    let (a, b) = (dir.join("b0").join(name), dir.join("b1").join(name));
    let mut want = BLAME_DATA_1;
    want[3] = ops;
    assert_eq!(
        get(&a, "trusted.afr.r-client-1"),
        Some(want.to_vec()),
        "{name}: brick 0 blames brick 1"
    );
    assert_eq!(get(&a, "trusted.afr.dirty"), Some(ZERO.to_vec()));
    assert_eq!(get(&a, "trusted.afr.r-client-0"), None);
    assert_eq!(get(&b, "trusted.afr.r-client-0"), None, "{name}");
    assert_eq!(get(&b, "trusted.afr.r-client-1"), None, "{name}");
}

#[test]
fn an_unwritable_brick_is_blamed_and_healed_once_writable() {
    let dir = scratch("unwritable");
    let m = KeelMount::start(&dir, "mount.log");
    sh("echo hello > mnt/f", &dir);
    // A write everywhere leaves no blame, only the undone dirty mark (as glusterfs does).
    for b in ["b0", "b1"] {
        let p = dir.join(b).join("f");
        assert_eq!(fs::read(&p).unwrap(), b"hello\n");
        assert_eq!(get(&p, "trusted.afr.dirty"), Some(ZERO.to_vec()));
        assert_eq!(get(&p, "trusted.afr.r-client-1"), None);
    }
    chattr("+i", &[dir.join("b1/f")]);
    sh("echo more >> mnt/f", &dir);
    blamed(&dir, "f", 1);
    assert_eq!(fs::read(dir.join("b1/f")).unwrap(), b"hello\n");
    // Reads come from the good copy whichever child the gfid hashes to.
    assert_eq!(fs::read(dir.join("mnt/f")).unwrap(), b"hello\nmore\n");
    sh("echo again >> mnt/f", &dir);
    blamed(&dir, "f", 2);

    chattr("-i", &[dir.join("b1/f")]);
    // The next open of the file makes its heal due, which runs after that request.
    assert_eq!(
        fs::read(dir.join("mnt/f")).unwrap(),
        b"hello\nmore\nagain\n"
    );
    healed(&dir, "f");
    assert_eq!(fs::read(dir.join("b1/f")).unwrap(), b"hello\nmore\nagain\n");
    // Both copies take the next change again.
    sh("echo last >> mnt/f", &dir);
    healed(&dir, "f");
    m.unmount();
}

#[test]
fn glusterfs_reads_the_copy_keelson_left_and_keelson_heals_what_glusterfs_left() {
    let Some(gfs) = tools::find("glusterfs", "glusterfs-client") else {
        return;
    };
    let dir = scratch("oracle");
    let names: Vec<String> = (0..6).map(|i| format!("k{i}")).collect();
    let m = KeelMount::start(&dir, "mount1.log");
    for n in &names {
        sh(&format!("echo first > mnt/{n}"), &dir);
    }
    let sinks: Vec<PathBuf> = names.iter().map(|n| dir.join("b1").join(n)).collect();
    chattr("+i", &sinks);
    for n in &names {
        sh(&format!("echo second >> mnt/{n}"), &dir);
        blamed(&dir, n, 1);
    }
    m.unmount();

    // glusterfs reads the good copy of each, also of those whose gfid hashes to brick 1, and
    // sees no split-brain: it reads Keelson's changelog as its own.
    let to_b1 = names
        .iter()
        .filter(|n| hashed_child(&dir.join("b0").join(n)) == 1)
        .count();
    assert!(to_b1 > 0, "some file should hash to the stale brick");
    {
        let _g = GlusterMount::start(&gfs, &dir);
        for n in &names {
            assert_eq!(
                fs::read(dir.join("gmnt").join(n)).unwrap(),
                b"first\nsecond\n",
                "glusterfs reads {n}"
            );
            let status = sh(
                &format!("getfattr --only-values -n replica.split-brain-status gmnt/{n}"),
                &dir,
            );
            assert!(
                status.contains("not under data or metadata split-brain"),
                "{n}: {status}"
            );
        }
    }
    for n in &names {
        blamed(&dir, n, 1);
    }

    // Writable again; a fresh Keelson mount finds the blame on the bricks at lookup.
    chattr("-i", &sinks);
    let m = KeelMount::start(&dir, "mount2.log");
    for n in &names {
        assert_eq!(
            fs::read(dir.join("mnt").join(n)).unwrap(),
            b"first\nsecond\n"
        );
        healed(&dir, n);
    }
    m.unmount();

    // The other way round: glusterfs blames, Keelson heals.
    let g = dir.join("b1/g");
    {
        let _g = GlusterMount::start(&gfs, &dir);
        sh("echo one > gmnt/g", &dir);
        chattr("+i", std::slice::from_ref(&g));
        sh("echo two >> gmnt/g", &dir);
    }
    blamed(&dir, "g", 1);
    chattr("-i", std::slice::from_ref(&g));
    let m = KeelMount::start(&dir, "mount3.log");
    assert_eq!(fs::read(dir.join("mnt/g")).unwrap(), b"one\ntwo\n");
    healed(&dir, "g");
    m.unmount();
}

#[test]
fn a_brick_that_goes_away_is_child_down_and_healed_when_it_is_back() {
    let dir = scratch("away");
    let m = KeelMount::start(&dir, "mount.log");
    sh("mkdir mnt/d && echo kept > mnt/d/kept", &dir);
    fs::rename(dir.join("b1"), dir.join("b1.away")).unwrap();
    // Brick 1 is gone: the fops that reach it fail, it is CHILD_DOWN, the other takes all.
    sh(
        "echo new > mnt/d/new && echo more >> mnt/d/kept && mkdir mnt/d/sub && rm mnt/d/kept \
         && head -c 1000003 /dev/urandom > mnt/d/sub/big && ln -s ../new mnt/d/sub/link",
        &dir,
    );
    assert_eq!(fs::read(dir.join("b0/d/new")).unwrap(), b"new\n");
    let d0 = dir.join("b0/d");
    let entry = get(&d0, "trusted.afr.r-client-1").expect("d blames brick 1");
    assert_eq!(&entry[..8], &[0; 8], "entry operations only");
    assert_eq!(entry[11], 3, "new, sub and kept's removal: {entry:02x?}");
    assert_eq!(get(&d0, "trusted.afr.dirty"), Some(ZERO.to_vec()));

    // Back: the next request finds it, CHILD_UP makes the heals due, they run after it.
    fs::rename(dir.join("b1.away"), dir.join("b1")).unwrap();
    sh("ls mnt/d > /dev/null", &dir);
    sh("cat mnt/d/new > /dev/null", &dir);
    assert_eq!(fs::read(dir.join("b1/d/new")).unwrap(), b"new\n");
    assert!(dir.join("b1/d/sub").is_dir());
    assert!(!dir.join("b1/d/kept").exists(), "removed on the sink too");
    healed(&dir, "d/new");
    for b in ["b0", "b1"] {
        let p = dir.join(b).join("d");
        for k in [
            "trusted.afr.r-client-0",
            "trusted.afr.r-client-1",
            "trusted.afr.dirty",
        ] {
            if let Some(v) = get(&p, k) {
                assert_eq!(v, ZERO, "{b}/d {k}");
            }
        }
    }
    assert_eq!(
        gfid_of(&dir.join("b0/d/sub")),
        gfid_of(&dir.join("b1/d/sub"))
    );
    m.unmount();
}
