//! Extended attributes on brick paths, never following symlinks (a symlink's own gfid lives on
//! the link, as storage/posix keeps it).

use std::io;
use std::path::Path;

use rustix::fs::XattrFlags;

/// Values this short (every gfid, most others) are read without asking for the size first.
const SHORT: usize = 256;

/// The value of `name`, or `None` when the object has no such attribute. This runs on every
/// lookup (the gfid), so a short value costs one call and no heap beyond its own bytes.
pub fn get(path: &Path, name: &str) -> io::Result<Option<Vec<u8>>> {
    let mut short = [0u8; SHORT];
    match rustix::fs::lgetxattr(path, name, &mut short[..]) {
        Ok(n) => return Ok(Some(short[..n].to_vec())),
        Err(rustix::io::Errno::NODATA) => return Ok(None),
        Err(rustix::io::Errno::RANGE) => {}
        Err(e) => return Err(e.into()),
    }
    // Longer: ask for the size, and read again if it grew in between.
    loop {
        let size = match rustix::fs::lgetxattr_query(path, name) {
            Ok(n) => n,
            Err(rustix::io::Errno::NODATA) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let mut buf = vec![0u8; size];
        match rustix::fs::lgetxattr(path, name, &mut buf[..]) {
            Ok(n) => {
                buf.truncate(n);
                return Ok(Some(buf));
            }
            Err(rustix::io::Errno::RANGE) => continue,
            Err(rustix::io::Errno::NODATA) => return Ok(None),
            Err(e) => return Err(e.into()),
        }
    }
}

/// Sets `name`; with `create`, fails with EEXIST when it is already there (XATTR_CREATE).
pub fn set(path: &Path, name: &str, value: &[u8], create: bool) -> io::Result<()> {
    let flags = if create {
        XattrFlags::CREATE
    } else {
        XattrFlags::empty()
    };
    Ok(rustix::fs::lsetxattr(path, name, value, flags)?)
}

/// Removes `name`; an attribute that is not there is not an error.
pub fn remove(path: &Path, name: &str) -> io::Result<()> {
    match rustix::fs::lremovexattr(path, name) {
        Ok(()) | Err(rustix::io::Errno::NODATA) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Every attribute name of the object.
pub fn list(path: &Path) -> io::Result<Vec<String>> {
    let names = loop {
        let size = rustix::fs::llistxattr_query(path)?;
        let mut buf = vec![0u8; size];
        match rustix::fs::llistxattr(path, &mut buf[..]) {
            Ok(n) => {
                buf.truncate(n);
                break buf;
            }
            // Grew between the two calls.
            Err(rustix::io::Errno::RANGE) => continue,
            Err(e) => return Err(e.into()),
        }
    };
    Ok(names
        .split(|&b| b == 0)
        .filter(|s| !s.is_empty())
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect())
}
