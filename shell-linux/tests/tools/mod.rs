//! Finding the real programs the interop tests talk to, and asking whether a mount is up.
//!
//! A test that needs one skips (after a note) only when it is missing on a developer's machine;
//! under CI (env `CI` set) `.ci/run` installs every one of them, so a missing program fails.

// Each test binary uses its own subset.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// The path of program `name` (/usr/sbin, /usr/bin, then `PATH`), or `None` after a note naming
/// the Debian `package` to install; panics under CI.
pub fn find(name: &str, package: &str) -> Option<PathBuf> {
    let fixed = ["/usr/sbin", "/usr/bin"].map(|d| Path::new(d).join(name));
    let found = fixed.into_iter().find(|p| p.is_file()).or_else(|| {
        std::env::var_os("PATH").and_then(|path| {
            std::env::split_paths(&path)
                .map(|d| d.join(name))
                .find(|p| p.is_file())
        })
    });
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "{name} not found, but CI installs {package}"
        );
        eprintln!("note: {name} not found (install {package}); skipping this test");
    }
    found
}

/// Whether `path` is a mount point now (`mountpoint -q`).
pub fn mounted(path: &Path) -> bool {
    std::process::Command::new("mountpoint")
        .arg("-q")
        .arg(path)
        .status()
        .is_ok_and(|s| s.success())
}

/// Asserts that Wireshark finds nothing malformed and no expert error in `pcap` (DRBD
/// heuristics on); `name` labels the failure.
pub fn no_malformed(tshark: &Path, pcap: &Path, name: &str) {
    let bad = std::process::Command::new(tshark)
        .args(["-n", "-r"])
        .arg(pcap)
        .args([
            "--enable-heuristic",
            "drbd_tcp",
            "-Y",
            "_ws.malformed || _ws.expert.severity >= error",
        ])
        .output()
        .unwrap();
    let bad_text = String::from_utf8_lossy(&bad.stdout);
    assert!(
        bad.status.success() && bad_text.trim().is_empty(),
        "{name}: malformed or expert errors:\n{bad_text}"
    );
}
