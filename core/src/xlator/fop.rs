//! File operations (`glusterfs_fop_t`, translators.md §3) with upstream's numbering and names,
//! each with its request arguments and its callback's results in upstream order.
//!
//! Values 41–43 (FORGET, RELEASE, RELEASEDIR) are not fops but the `cbks` table; they keep
//! their slots so that a value indexes the fop table directly, as upstream's does.

use core::fmt;

macro_rules! fops {
    ($($(#[$doc:meta])* $v:ident = $n:literal, $name:literal, [$($req:literal),*], [$($res:literal),*];)*) => {
        /// A file operation, numbered as GlusterFS numbers it.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        #[cfg_attr(feature = "defmt", derive(defmt::Format))]
        #[repr(u8)]
        pub enum Fop {
            $($(#[$doc])* #[doc = concat!("`GF_FOP_", $name, "`")] $v = $n,)*
        }

        impl Fop {
            /// Every value from NULL (0) to COPY_FILE_RANGE (58), in order.
            pub const ALL: [Fop; 59] = [$(Fop::$v,)*];

            /// Upstream's name (`gf_fop_list`): upper case, as trace and io-stats print it.
            pub fn name(self) -> &'static str {
                match self { $(Fop::$v => $name,)* }
            }

            /// Request arguments after `frame, this`, in order (`xdata` last, except getspec).
            pub fn request(self) -> &'static [&'static str] {
                match self { $(Fop::$v => &[$($req),*],)* }
            }

            /// Callback results after `op_ret, op_errno`, in order.
            pub fn reply(self) -> &'static [&'static str] {
                match self { $(Fop::$v => &[$($res),*],)* }
            }
        }
    };
}

fops! {
    Null = 0, "NULL", [], [];
    Stat = 1, "STAT", ["loc", "xdata"], ["buf", "xdata"];
    Readlink = 2, "READLINK", ["loc", "size", "xdata"], ["path", "buf", "xdata"];
    Mknod = 3, "MKNOD", ["loc", "mode", "rdev", "umask", "xdata"],
        ["inode", "buf", "preparent", "postparent", "xdata"];
    Mkdir = 4, "MKDIR", ["loc", "mode", "umask", "xdata"],
        ["inode", "buf", "preparent", "postparent", "xdata"];
    Unlink = 5, "UNLINK", ["loc", "flags", "xdata"], ["preparent", "postparent", "xdata"];
    Rmdir = 6, "RMDIR", ["loc", "flags", "xdata"], ["preparent", "postparent", "xdata"];
    Symlink = 7, "SYMLINK", ["linkpath", "loc", "umask", "xdata"],
        ["inode", "buf", "preparent", "postparent", "xdata"];
    Rename = 8, "RENAME", ["oldloc", "newloc", "xdata"],
        ["buf", "preoldparent", "postoldparent", "prenewparent", "postnewparent", "xdata"];
    Link = 9, "LINK", ["oldloc", "newloc", "xdata"],
        ["inode", "buf", "preparent", "postparent", "xdata"];
    Truncate = 10, "TRUNCATE", ["loc", "offset", "xdata"], ["prebuf", "postbuf", "xdata"];
    Open = 11, "OPEN", ["loc", "flags", "fd", "xdata"], ["fd", "xdata"];
    /// readv: `op_ret` is the number of bytes read (0 at end of file).
    Read = 12, "READ", ["fd", "size", "offset", "flags", "xdata"],
        ["vector", "count", "stbuf", "iobref", "xdata"];
    /// writev: `op_ret` is the number of bytes written.
    Write = 13, "WRITE", ["fd", "vector", "count", "offset", "flags", "iobref", "xdata"],
        ["prebuf", "postbuf", "xdata"];
    Statfs = 14, "STATFS", ["loc", "xdata"], ["buf", "xdata"];
    Flush = 15, "FLUSH", ["fd", "xdata"], ["xdata"];
    Fsync = 16, "FSYNC", ["fd", "flags", "xdata"], ["prebuf", "postbuf", "xdata"];
    Setxattr = 17, "SETXATTR", ["loc", "dict", "flags", "xdata"], ["xdata"];
    Getxattr = 18, "GETXATTR", ["loc", "name", "xdata"], ["dict", "xdata"];
    Removexattr = 19, "REMOVEXATTR", ["loc", "name", "xdata"], ["xdata"];
    Opendir = 20, "OPENDIR", ["loc", "fd", "xdata"], ["fd", "xdata"];
    Fsyncdir = 21, "FSYNCDIR", ["fd", "flags", "xdata"], ["xdata"];
    Access = 22, "ACCESS", ["loc", "mask", "xdata"], ["xdata"];
    Create = 23, "CREATE", ["loc", "flags", "mode", "umask", "fd", "xdata"],
        ["fd", "inode", "buf", "preparent", "postparent", "xdata"];
    Ftruncate = 24, "FTRUNCATE", ["fd", "offset", "xdata"], ["prebuf", "postbuf", "xdata"];
    Fstat = 25, "FSTAT", ["fd", "xdata"], ["buf", "xdata"];
    Lk = 26, "LK", ["fd", "cmd", "lock", "xdata"], ["lock", "xdata"];
    /// The only callback with `xdata` before an iatt.
    Lookup = 27, "LOOKUP", ["loc", "xdata"], ["inode", "buf", "xdata", "postparent"];
    Readdir = 28, "READDIR", ["fd", "size", "offset", "xdata"], ["entries", "xdata"];
    Inodelk = 29, "INODELK", ["volume", "loc", "cmd", "lock", "xdata"], ["xdata"];
    Finodelk = 30, "FINODELK", ["volume", "fd", "cmd", "lock", "xdata"], ["xdata"];
    Entrylk = 31, "ENTRYLK", ["volume", "loc", "basename", "cmd", "type", "xdata"], ["xdata"];
    Fentrylk = 32, "FENTRYLK", ["volume", "fd", "basename", "cmd", "type", "xdata"], ["xdata"];
    Xattrop = 33, "XATTROP", ["loc", "flags", "dict", "xdata"], ["dict", "xdata"];
    Fxattrop = 34, "FXATTROP", ["fd", "flags", "dict", "xdata"], ["dict", "xdata"];
    Fgetxattr = 35, "FGETXATTR", ["fd", "name", "xdata"], ["dict", "xdata"];
    Fsetxattr = 36, "FSETXATTR", ["fd", "dict", "flags", "xdata"], ["xdata"];
    Rchecksum = 37, "RCHECKSUM", ["fd", "offset", "len", "xdata"], ["weak", "strong", "xdata"];
    Setattr = 38, "SETATTR", ["loc", "stbuf", "valid", "xdata"], ["statpre", "statpost", "xdata"];
    Fsetattr = 39, "FSETATTR", ["fd", "stbuf", "valid", "xdata"], ["statpre", "statpost", "xdata"];
    Readdirp = 40, "READDIRP", ["fd", "size", "offset", "xdata"], ["entries", "xdata"];
    /// A cbk (`forget(this, inode)`), not a fop.
    Forget = 41, "FORGET", ["inode"], [];
    /// A cbk (`release(this, fd)`), not a fop.
    Release = 42, "RELEASE", ["fd"], [];
    /// A cbk (`releasedir(this, fd)`), not a fop.
    Releasedir = 43, "RELEASEDIR", ["fd"], [];
    /// The one fop without xdata.
    Getspec = 44, "GETSPEC", ["key", "flags"], ["spec_data"];
    Fremovexattr = 45, "FREMOVEXATTR", ["fd", "name", "xdata"], ["xdata"];
    Fallocate = 46, "FALLOCATE", ["fd", "keep_size", "offset", "len", "xdata"],
        ["pre", "post", "xdata"];
    Discard = 47, "DISCARD", ["fd", "offset", "len", "xdata"], ["pre", "post", "xdata"];
    Zerofill = 48, "ZEROFILL", ["fd", "offset", "len", "xdata"], ["pre", "post", "xdata"];
    Ipc = 49, "IPC", ["op", "xdata"], ["xdata"];
    Seek = 50, "SEEK", ["fd", "offset", "what", "xdata"], ["offset", "xdata"];
    Lease = 51, "LEASE", ["loc", "lease", "xdata"], ["lease", "xdata"];
    /// Obsolete.
    Compound = 52, "COMPOUND", [], [];
    Getactivelk = 53, "GETACTIVELK", ["loc", "xdata"], ["locklist", "xdata"];
    Setactivelk = 54, "SETACTIVELK", ["loc", "locklist", "xdata"], ["xdata"];
    Put = 55, "PUT", ["loc", "mode", "umask", "flags", "vector", "count", "off", "iobref", "dict", "xdata"],
        ["inode", "buf", "preparent", "postparent", "xdata"];
    Icreate = 56, "ICREATE", ["loc", "mode", "xdata"], ["inode", "buf", "xdata"];
    Namelink = 57, "NAMELINK", ["loc", "xdata"], ["prebuf", "postbuf", "xdata"];
    CopyFileRange = 58, "COPY_FILE_RANGE", ["fd_in", "off_in", "fd_out", "off_out", "len", "flags", "xdata"],
        ["stbuf", "prebuf_dst", "postbuf_dst", "xdata"];
}

/// `GF_FOP_MAXVALUE`: one past the last fop.
pub const MAXVALUE: u8 = 59;

impl Fop {
    /// The value (the index into the fop table).
    pub fn value(self) -> u8 {
        self as u8
    }

    /// The fop with this value.
    pub fn from_value(v: u8) -> Option<Fop> {
        Fop::ALL.get(usize::from(v)).copied()
    }

    /// `gf_fop_int`: a name in any case; NULL is not a name here, as upstream.
    pub fn from_name(name: &[u8]) -> Option<Fop> {
        Fop::ALL
            .iter()
            .skip(1)
            .copied()
            .find(|f| f.name().as_bytes().eq_ignore_ascii_case(name))
    }

    /// FORGET, RELEASE and RELEASEDIR: callbacks of the `cbks` table, not fops.
    pub fn is_cbk(self) -> bool {
        matches!(self, Fop::Forget | Fop::Release | Fop::Releasedir)
    }
}

impl fmt::Display for Fop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A set of fops, as trace's `include-ops`/`exclude-ops` lists name them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct FopSet(u64);

impl FopSet {
    /// No fop.
    pub const EMPTY: FopSet = FopSet(0);

    /// Every fop.
    pub const ALL: FopSet = FopSet((1 << MAXVALUE) - 1);

    /// With `f` added.
    pub fn with(self, f: Fop) -> FopSet {
        FopSet(self.0 | 1 << f.value())
    }

    /// Whether `f` is in the set.
    pub fn contains(self, f: Fop) -> bool {
        self.0 & 1 << f.value() != 0
    }

    /// The fops named in a comma-separated list (any case); unknown names are skipped, as
    /// trace's `process_call_list` skips them. The second value counts the skipped names.
    pub fn parse_list(list: &[u8]) -> (FopSet, usize) {
        let mut set = FopSet::EMPTY;
        let mut unknown = 0;
        for name in list.split(|&c| c == b',').filter(|n| !n.is_empty()) {
            match Fop::from_name(name) {
                Some(f) => set = set.with(f),
                None => unknown += 1,
            }
        }
        (set, unknown)
    }

    /// The fops in the set, in value order.
    pub fn iter(self) -> impl Iterator<Item = Fop> {
        Fop::ALL.into_iter().filter(move |&f| self.contains(f))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbering_is_upstreams() {
        for (i, f) in Fop::ALL.iter().enumerate() {
            assert_eq!(usize::from(f.value()), i);
            assert_eq!(Fop::from_value(f.value()), Some(*f));
        }
        assert_eq!(Fop::from_value(MAXVALUE), None);
        assert_eq!(Fop::Lookup.value(), 27);
        assert_eq!(Fop::Fgetxattr.value(), 35);
        assert_eq!(Fop::Fsetxattr.value(), 36);
        assert_eq!(Fop::Getspec.value(), 44);
        assert_eq!(Fop::CopyFileRange.value(), 58);
        assert_eq!(Fop::ALL.iter().filter(|f| f.is_cbk()).count(), 3);
    }

    #[test]
    fn names_parse_in_any_case_but_null() {
        assert_eq!(Fop::from_name(b"write"), Some(Fop::Write));
        assert_eq!(Fop::from_name(b"Copy_File_Range"), Some(Fop::CopyFileRange));
        assert_eq!(Fop::from_name(b"NULL"), None);
        assert_eq!(Fop::from_name(b"writev"), None);
        let (set, unknown) = FopSet::parse_list(b"WRITE,read,,bogus,LOOKUP");
        assert_eq!(unknown, 1);
        assert_eq!(
            set.iter().collect::<std::vec::Vec<_>>(),
            [Fop::Read, Fop::Write, Fop::Lookup]
        );
        assert!(FopSet::ALL.contains(Fop::CopyFileRange));
    }

    #[test]
    fn every_real_fop_carries_xdata_but_getspec() {
        for f in Fop::ALL {
            if matches!(f, Fop::Null | Fop::Compound | Fop::Getspec) || f.is_cbk() {
                assert!(!f.request().contains(&"xdata"), "{f}");
                continue;
            }
            assert_eq!(f.request().last(), Some(&"xdata"), "{f}");
            assert!(f.reply().contains(&"xdata"), "{f}");
        }
        assert_eq!(
            Fop::Lookup.reply(),
            ["inode", "buf", "xdata", "postparent"],
            "lookup returns xdata before postparent"
        );
    }
}
