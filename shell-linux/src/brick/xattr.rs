//! Extended attributes on brick paths, never following symlinks (a symlink's own gfid lives on
//! the link, as storage/posix keeps it).

use std::io;
use std::path::Path;

use rustix::fs::XattrFlags;

/// The largest value we read (Linux's limit on one xattr value).
const MAX_VALUE: usize = 64 * 1024;

/// The value of `name`, or `None` when the object has no such attribute.
pub fn get(path: &Path, name: &str) -> io::Result<Option<Vec<u8>>> {
    let mut buf = vec![0u8; MAX_VALUE];
    match rustix::fs::lgetxattr(path, name, &mut buf[..]) {
        Ok(n) => {
            buf.truncate(n);
            Ok(Some(buf))
        }
        Err(rustix::io::Errno::NODATA) => Ok(None),
        Err(e) => Err(e.into()),
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
    let mut buf = vec![0u8; MAX_VALUE];
    let n = rustix::fs::llistxattr(path, &mut buf[..])?;
    Ok(buf[..n]
        .split(|&b| b == 0)
        .filter(|s| !s.is_empty())
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect())
}
