//! The tree the FUSE mount tests copy onto a mount and the operations they run on it, the same
//! in a mount and in a plain directory, and the listing that compares the two.

// Each test binary uses its own subset.
#![allow(dead_code)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// Runs `script` with `sh -e` in `cwd`; its stdout. Panics (with the output) if it fails.
pub fn sh(script: &str, cwd: &Path) -> String {
    let o = Command::new("sh")
        .arg("-ec")
        .arg(script)
        .current_dir(cwd)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "`{script}` in {} failed: {}{}",
        cwd.display(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn wait(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !cond() {
        assert!(Instant::now() < deadline, "gave up waiting until {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A source tree with what `cp -a` has to carry: nested directories, empty, small, page-sized
/// and large files, an executable, a hard link, relative and dangling symlinks, a FIFO and odd
/// modes and times.
pub fn make_source(root: &Path) {
    let src = root.join("src");
    fs::create_dir_all(src.join("a/b/c")).unwrap();
    fs::create_dir_all(src.join("empty-dir")).unwrap();
    fs::write(src.join("empty"), b"").unwrap();
    fs::write(src.join("small"), b"hello\n").unwrap();
    fs::write(src.join("a/page"), vec![7u8; 4096]).unwrap();
    let big: Vec<u8> = (0..1_000_003u32).map(|i| (i ^ (i >> 7)) as u8).collect();
    fs::write(src.join("a/b/big"), &big).unwrap();
    fs::write(src.join("a/b/c/run.sh"), b"#!/bin/sh\necho ran\n").unwrap();
    fs::set_permissions(src.join("a/b/c/run.sh"), fs::Permissions::from_mode(0o755)).unwrap();
    fs::hard_link(src.join("small"), src.join("a/small-link")).unwrap();
    std::os::unix::fs::symlink("../small", src.join("a/rel-link")).unwrap();
    std::os::unix::fs::symlink("nowhere", src.join("dangling")).unwrap();
    sh("mkfifo src/fifo && chmod 0640 src/fifo", root);
    sh(
        "chmod 0700 src/a/b && chmod 0444 src/a/page && touch -h -d '2001-02-03 04:05:06.789' src/small src/a/rel-link",
        root,
    );
}

/// A listing of the tree that shows what the tools must preserve (name, type, mode, size,
/// links, symlink target, and with `times` the mtime of everything but directories), sorted.
pub fn listing(dir: &Path, times: bool) -> String {
    let t = if times { " %T@" } else { "" };
    let mut lines: Vec<String> = sh(
        &format!(
            "find . -mindepth 1 ! -type d -printf '%P %y %m %s %n{t} %l\\n'; \
             find . -mindepth 1 -type d -printf '%P %y %m %n\\n'"
        ),
        dir,
    )
    .lines()
    .map(str::to_string)
    .collect();
    lines.sort();
    lines.join("\n")
}

/// The operations of the test, as one script that runs the same in the mount and in a plain
/// directory.
pub const OPERATIONS: &str = "
mv src/a/b/big src/big-moved
mv src/a/b src/b-moved
ln -s b-moved/c/run.sh src/run-link
chmod 0600 src/small
truncate -s 100 src/big-moved
truncate -s 10000 src/empty
ln src/b-moved/c/run.sh src/run-hard
rm src/a/small-link
sh src/run-link > src/ran.txt
";

/// Runs the standard tools on mount `mnt` and on a plain directory `DIR/ref` side by side
/// (`cp -a`, `diff -r`, `ls -lR`, [`OPERATIONS`], `tar c|x` out of and into the mount) and
/// asserts both trees stay the same. Needs [`make_source`]'s `DIR/src`; leaves `MNT/src` and
/// `MNT/src2` on the mount.
pub fn standard_tools(dir: &Path, mnt: &Path) {
    let reference = dir.join("ref");
    let (m, r) = (mnt.display(), reference.display());
    sh(&format!("cp -a src '{m}'/ && cp -a src '{r}'/"), dir);
    sh(
        &format!("diff -r --no-dereference -x fifo src '{m}/src'"),
        dir,
    );
    assert_eq!(listing(mnt, true), listing(&reference, true), "after cp -a");
    // `ls -l` shows the same modes, links, owners, sizes and times.
    let ls = "ls -lR --time-style=+%s src | grep -v '^total'";
    assert_eq!(sh(ls, mnt), sh(ls, &reference));

    sh(OPERATIONS, mnt);
    sh(OPERATIONS, &reference);
    assert_eq!(
        listing(mnt, false),
        listing(&reference, false),
        "after mv, ln -s, chmod, truncate"
    );
    sh(
        &format!("diff -r --no-dereference -x fifo '{m}/src' '{r}/src'"),
        dir,
    );
    assert_eq!(
        fs::read_to_string(mnt.join("src/ran.txt")).unwrap(),
        "ran\n"
    );

    // tar out of the mount, tar into it.
    sh(
        &format!(
            "mkdir out && tar -C '{m}' -cf - src | tar -C out -xf - && \
             tar -C out -cf - src | tar -C '{m}' -xf - --transform s/^src/src2/"
        ),
        dir,
    );
    sh(
        &format!(
            "diff -r --no-dereference -x fifo out/src '{r}/src' && \
             diff -r --no-dereference -x fifo '{m}/src2' '{r}/src'"
        ),
        dir,
    );
}
