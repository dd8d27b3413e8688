//! storage/posix's on-disk names (translators.md §5.6): the gfid and its canonical text, the
//! `.glusterfs` handle paths, a directory handle's symlink target, the `trusted.gfid2path.*`
//! key and value of a name, and the inode number a gfid stands for.
//!
//! Pure functions over caller buffers, so that a brick written by Keelson is one GlusterFS
//! mounts, and the reverse: the shell's brick code does the file system calls.

use core::fmt;

use crate::config::{Overflow, Sink, SliceSink};

/// The xattr holding an object's gfid (16 raw bytes).
pub const GFID_XATTR: &str = "trusted.gfid";
/// The prefix of the per-link xattrs naming an object's parent and basename.
pub const GFID2PATH_PREFIX: &str = "trusted.gfid2path.";
/// Whether `name` is one of posix's own xattrs (the gfid and gfid2path ones): clients may not
/// set or remove them, and listings leave them out.
pub fn is_internal_xattr(name: &str) -> bool {
    name == GFID_XATTR || name.starts_with(GFID2PATH_PREFIX)
}

/// The directory of handles at the top of a brick.
pub const HANDLE_DIR: &str = ".glusterfs";
/// The brick root's handle target: the root handle `.glusterfs/00/00/<root>` points back up
/// to the brick directory.
pub const ROOT_HANDLE_TARGET: &str = "../../..";
/// Length of a gfid's canonical text (`8-4-4-4-12` hex digits).
pub const CANONICAL_LEN: usize = 36;
/// Length of a handle path relative to the brick: `.glusterfs/ab/cd/<canonical>`.
pub const HANDLE_PATH_LEN: usize = HANDLE_DIR.len() + 7 + CANONICAL_LEN;

/// A GlusterFS file id: the 16 bytes of a UUID, the same on every brick of an object.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Gfid(pub [u8; 16]);

impl Gfid {
    /// The null gfid (never valid on disk: a null `gfid-req` is EINVAL).
    pub const NULL: Gfid = Gfid([0; 16]);
    /// The root directory's gfid, `00000000-0000-0000-0000-000000000001`.
    pub const ROOT: Gfid = Gfid([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);

    /// A gfid from an xattr value, which must be exactly 16 bytes.
    pub fn from_slice(b: &[u8]) -> Option<Gfid> {
        b.try_into().ok().map(Gfid)
    }

    /// Whether this is the null gfid.
    pub fn is_null(&self) -> bool {
        self.0 == [0; 16]
    }

    /// A random (version 4) gfid from 16 random bytes, as `gf_uuid_generate` makes them.
    pub fn from_random(mut b: [u8; 16]) -> Gfid {
        b[6] = (b[6] & 0x0f) | 0x40;
        b[8] = (b[8] & 0x3f) | 0x80;
        Gfid(b)
    }

    /// `ia_ino`: the last 8 bytes read big-endian; the root is 1, the null gfid −1 (all ones).
    pub fn ino(&self) -> u64 {
        if self.is_null() {
            return u64::MAX;
        }
        let mut tail = [0u8; 8];
        tail.copy_from_slice(&self.0[8..]);
        u64::from_be_bytes(tail)
    }

    /// The canonical text, lower-case `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`.
    pub fn canonical(&self) -> [u8; CANONICAL_LEN] {
        let mut out = [0u8; CANONICAL_LEN];
        let mut o = 0;
        for (i, b) in self.0.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                out[o] = b'-';
                o += 1;
            }
            out[o] = HEX[usize::from(b >> 4)];
            out[o + 1] = HEX[usize::from(b & 15)];
            o += 2;
        }
        out
    }

    /// Parses the canonical text (either case), as `gf_uuid_parse` does.
    pub fn parse(text: &[u8]) -> Option<Gfid> {
        super::options::parse_uuid(text).map(Gfid)
    }

    /// The handle's path relative to the brick: `.glusterfs/<g0g1>/<g2g3>/<canonical>`.
    pub fn handle_path(&self) -> [u8; HANDLE_PATH_LEN] {
        let mut out = [0u8; HANDLE_PATH_LEN];
        let c = self.canonical();
        let (dir, rest) = out.split_at_mut(HANDLE_DIR.len());
        dir.copy_from_slice(HANDLE_DIR.as_bytes());
        rest[0] = b'/';
        rest[1..3].copy_from_slice(&c[0..2]);
        rest[3] = b'/';
        rest[4..6].copy_from_slice(&c[2..4]);
        rest[6] = b'/';
        rest[7..].copy_from_slice(&c);
        out
    }

    /// The two fan-out directory names of the handle (`g0g1`, `g2g3`).
    pub fn handle_dirs(&self) -> ([u8; 2], [u8; 2]) {
        let c = self.canonical();
        ([c[0], c[1]], [c[2], c[3]])
    }
}

impl fmt::Display for Gfid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = self.canonical();
        // The canonical form is ASCII by construction.
        f.write_str(core::str::from_utf8(&c).unwrap_or("?"))
    }
}

impl fmt::Debug for Gfid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Gfid({self})")
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Writes a directory handle's symlink target, `../../<p0p1>/<p2p3>/<parent>/<name>`, into
/// `out`, returning its length. (A directory's handle is a symlink through its parent's
/// handle, so resolving it walks up to the brick root; a file's handle is a hard link.)
pub fn dir_handle_target(parent: &Gfid, name: &[u8], out: &mut [u8]) -> Result<usize, Overflow> {
    let p = parent.canonical();
    let parts: [&[u8]; 7] = [b"../../", &p[0..2], b"/", &p[2..4], b"/", &p, b"/"];
    write_parts(&parts, name, out)
}

/// The value of a link's `trusted.gfid2path.*` xattr, `<parent canonical>/<basename>` (no NUL),
/// written into `out`; returns its length.
pub fn gfid2path_value(parent: &Gfid, name: &[u8], out: &mut [u8]) -> Result<usize, Overflow> {
    let p = parent.canonical();
    write_parts(&[&p, b"/"], name, out)
}

/// The key of a link's gfid2path xattr: the prefix and the XXH64 (seed 0) of the value as 16
/// hex digits.
pub fn gfid2path_key(value: &[u8]) -> [u8; GFID2PATH_PREFIX.len() + 16] {
    let mut out = [0u8; GFID2PATH_PREFIX.len() + 16];
    let (prefix, hex) = out.split_at_mut(GFID2PATH_PREFIX.len());
    prefix.copy_from_slice(GFID2PATH_PREFIX.as_bytes());
    let h = xxhash_rust::xxh64::xxh64(value, 0);
    for (i, d) in hex.iter_mut().enumerate() {
        *d = HEX[((h >> (60 - 4 * i)) & 15) as usize];
    }
    out
}

fn write_parts(parts: &[&[u8]], name: &[u8], out: &mut [u8]) -> Result<usize, Overflow> {
    let mut sink = SliceSink::new(out);
    for p in parts.iter().chain(core::iter::once(&name)) {
        sink.put(p)?;
    }
    Ok(sink.finish()?.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::ToString;

    fn g(text: &str) -> Gfid {
        Gfid::parse(text.as_bytes()).unwrap()
    }

    #[test]
    fn canonical_text_round_trips() {
        let x = g("84ac4c9b-32a7-4576-883a-71722c0d6da3");
        assert_eq!(x.to_string(), "84ac4c9b-32a7-4576-883a-71722c0d6da3");
        assert_eq!(g("84AC4C9B-32A7-4576-883A-71722C0D6DA3"), x);
        assert_eq!(
            Gfid::ROOT.to_string(),
            "00000000-0000-0000-0000-000000000001"
        );
        for bad in [
            "84ac4c9b-32a7-4576-883a-71722c0d6da",
            "84ac4c9b32a7-4576-883a-71722c0d6da3a",
            "84ac4c9g-32a7-4576-883a-71722c0d6da3",
            "84ac4c9b-32a7-4576-883a-71722c0d6d-3",
        ] {
            assert_eq!(Gfid::parse(bad.as_bytes()), None, "{bad}");
        }
    }

    /// §5.6: gfid b0589b37a6f548ec9e695c10e38bb42e was st_ino 0x9e695c10e38bb42e through FUSE.
    #[test]
    fn inode_numbers_from_the_gfid() {
        assert_eq!(
            g("b0589b37-a6f5-48ec-9e69-5c10e38bb42e").ino(),
            0x9e69_5c10_e38b_b42e
        );
        assert_eq!(Gfid::ROOT.ino(), 1);
        assert_eq!(Gfid::NULL.ino(), u64::MAX);
    }

    /// Names recorded from a brick that glusterfs 10.3 wrote (storage/posix alone).
    #[test]
    fn handle_paths_and_targets_as_glusterfs_writes_them() {
        let d1 = g("84ac4c9b-32a7-4576-883a-71722c0d6da3");
        assert_eq!(
            &d1.handle_path()[..],
            b".glusterfs/84/ac/84ac4c9b-32a7-4576-883a-71722c0d6da3"
        );
        assert_eq!(
            &Gfid::ROOT.handle_path()[..],
            b".glusterfs/00/00/00000000-0000-0000-0000-000000000001"
        );
        let mut buf = [0u8; 64];
        let n = dir_handle_target(&Gfid::ROOT, b"d1", &mut buf).unwrap();
        assert_eq!(
            &buf[..n],
            b"../../00/00/00000000-0000-0000-0000-000000000001/d1"
        );
        let n = dir_handle_target(&d1, b"d2", &mut buf).unwrap();
        assert_eq!(
            &buf[..n],
            b"../../84/ac/84ac4c9b-32a7-4576-883a-71722c0d6da3/d2"
        );
        assert_eq!(
            dir_handle_target(&d1, b"d2", &mut [0u8; 10]),
            Err(Overflow { required: 51 })
        );
    }

    #[test]
    fn gfid2path_keys_as_glusterfs_writes_them() {
        let mut buf = [0u8; 64];
        for (parent, name, key) in [
            (Gfid::ROOT, &b"f1.txt"[..], "75d497075af12ac9"), // translators.md §5.6
            (Gfid::ROOT, b"a.txt", "640ca896bde02acc"),
            (
                g("84ac4c9b-32a7-4576-883a-71722c0d6da3"),
                b"f",
                "cb8273d65db59443",
            ),
            (
                g("84ac4c9b-32a7-4576-883a-71722c0d6da3"),
                b"hard",
                "57daf781224e7f5a",
            ),
        ] {
            let n = gfid2path_value(&parent, name, &mut buf).unwrap();
            assert_eq!(
                &buf[..36],
                &parent.canonical()[..],
                "value starts with the parent"
            );
            assert_eq!(buf[36], b'/');
            let k = gfid2path_key(&buf[..n]);
            assert_eq!(
                core::str::from_utf8(&k).unwrap(),
                std::format!("trusted.gfid2path.{key}")
            );
        }
    }

    #[test]
    fn random_gfids_are_version_4() {
        let x = Gfid::from_random([0xff; 16]);
        assert_eq!(x.to_string(), "ffffffff-ffff-4fff-bfff-ffffffffffff");
    }
}
