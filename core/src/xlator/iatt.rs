//! `struct iatt` (translators.md §6) and `struct statvfs`: the attributes every
//! fop reply carries, with upstream's validity bits and a fixed little-endian record form for
//! directory listings (readdirp entries carry one each).

pub use super::handle::Gfid;

/// `ia_type`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[repr(u8)]
pub enum IaType {
    /// `IA_INVAL`
    #[default]
    Inval = 0,
    /// `IA_IFREG`
    Reg = 1,
    /// `IA_IFDIR`
    Dir = 2,
    /// `IA_IFLNK`
    Lnk = 3,
    /// `IA_IFBLK`
    Blk = 4,
    /// `IA_IFCHR`
    Chr = 5,
    /// `IA_IFIFO`
    Fifo = 6,
    /// `IA_IFSOCK`
    Sock = 7,
}

impl IaType {
    /// The type with value `v` (unknown values are `Inval`).
    pub fn from_value(v: u8) -> IaType {
        use IaType::*;
        [Inval, Reg, Dir, Lnk, Blk, Chr, Fifo, Sock]
            .get(usize::from(v))
            .copied()
            .unwrap_or(Inval)
    }

    /// The `S_IF*` bits of `st_mode`.
    pub fn mode_bits(self) -> u32 {
        match self {
            IaType::Inval => 0,
            IaType::Reg => 0o100000,
            IaType::Dir => 0o040000,
            IaType::Lnk => 0o120000,
            IaType::Blk => 0o060000,
            IaType::Chr => 0o020000,
            IaType::Fifo => 0o010000,
            IaType::Sock => 0o140000,
        }
    }

    /// The type of an `st_mode`.
    pub fn from_mode(mode: u32) -> IaType {
        match mode & 0o170000 {
            0o100000 => IaType::Reg,
            0o040000 => IaType::Dir,
            0o120000 => IaType::Lnk,
            0o060000 => IaType::Blk,
            0o020000 => IaType::Chr,
            0o010000 => IaType::Fifo,
            0o140000 => IaType::Sock,
            _ => IaType::Inval,
        }
    }

    /// `d_type` of a directory entry (`DT_*`).
    pub fn d_type(self) -> u8 {
        match self {
            IaType::Inval => 0,
            IaType::Fifo => 1,
            IaType::Chr => 2,
            IaType::Dir => 4,
            IaType::Blk => 6,
            IaType::Reg => 8,
            IaType::Lnk => 10,
            IaType::Sock => 12,
        }
    }
}

/// `ia_flags` validity bits (§6).
pub mod valid {
    /// `IATT_TYPE`
    pub const TYPE: u64 = 0x1;
    /// `IATT_MODE`
    pub const MODE: u64 = 0x2;
    /// `IATT_NLINK`
    pub const NLINK: u64 = 0x4;
    /// `IATT_UID`
    pub const UID: u64 = 0x8;
    /// `IATT_GID`
    pub const GID: u64 = 0x10;
    /// `IATT_ATIME`
    pub const ATIME: u64 = 0x20;
    /// `IATT_MTIME`
    pub const MTIME: u64 = 0x40;
    /// `IATT_CTIME`
    pub const CTIME: u64 = 0x80;
    /// `IATT_INO`
    pub const INO: u64 = 0x100;
    /// `IATT_SIZE`
    pub const SIZE: u64 = 0x200;
    /// `IATT_BLOCKS`
    pub const BLOCKS: u64 = 0x400;
    /// `IATT_BTIME`
    pub const BTIME: u64 = 0x800;
    /// `IATT_GFID`
    pub const GFID: u64 = 0x1000;
    /// What a converter from `struct stat` sets, plus INO and GFID as posix adds them.
    pub const FROM_STAT: u64 =
        TYPE | MODE | NLINK | UID | GID | SIZE | BLOCKS | ATIME | MTIME | CTIME | INO | GFID;
}

/// `struct iatt`, fields in upstream's order (§6). `prot` is the 12 protection bits of
/// `st_mode` (suid, sgid, sticky, rwx × 3).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[allow(missing_docs)]
pub struct Iatt {
    pub flags: u64,
    pub ino: u64,
    pub dev: u64,
    /// `major << 32 | minor`.
    pub rdev: u64,
    pub size: u64,
    pub nlink: u32,
    pub uid: u32,
    pub gid: u32,
    pub blksize: u32,
    /// 512-byte units, at most `ceil(size / 512)`.
    pub blocks: u64,
    pub atime: i64,
    pub mtime: i64,
    pub ctime: i64,
    pub btime: i64,
    pub atime_nsec: u32,
    pub mtime_nsec: u32,
    pub ctime_nsec: u32,
    pub btime_nsec: u32,
    pub attributes: u64,
    pub attributes_mask: u64,
    pub gfid: Gfid,
    pub ty: IaType,
    pub prot: u16,
}

/// Bytes in [`Iatt::encode`]'s record.
pub const IATT_LEN: usize = 8 * 6 + 4 * 4 + 8 * 4 + 4 * 4 + 8 * 2 + 16 + 1 + 2;

impl Iatt {
    /// `st_mode_from_ia`: type bits | protection bits.
    pub fn mode(&self) -> u32 {
        self.ty.mode_bits() | u32::from(self.prot & 0o7777)
    }

    /// Sets `ia_blocks` from the size, clamped as posix clamps it (§6).
    pub fn set_blocks_for_size(&mut self) {
        self.blocks = self.size.div_ceil(512);
    }

    /// Little-endian record of every field in order (for readdirp entries).
    pub fn encode(&self, out: &mut [u8; IATT_LEN]) {
        let mut w = Writer { out, at: 0 };
        for v in [self.flags, self.ino, self.dev, self.rdev, self.size] {
            w.put(&v.to_le_bytes());
        }
        for v in [self.nlink, self.uid, self.gid, self.blksize] {
            w.put(&v.to_le_bytes());
        }
        w.put(&self.blocks.to_le_bytes());
        for v in [self.atime, self.mtime, self.ctime, self.btime] {
            w.put(&v.to_le_bytes());
        }
        for v in [
            self.atime_nsec,
            self.mtime_nsec,
            self.ctime_nsec,
            self.btime_nsec,
        ] {
            w.put(&v.to_le_bytes());
        }
        w.put(&self.attributes.to_le_bytes());
        w.put(&self.attributes_mask.to_le_bytes());
        w.put(&self.gfid.0);
        w.put(&[self.ty as u8]);
        w.put(&self.prot.to_le_bytes());
    }

    /// The inverse of [`encode`](Self::encode).
    pub fn decode(b: &[u8; IATT_LEN]) -> Iatt {
        let mut r = Reader { b, at: 0 };
        Iatt {
            flags: r.u64(),
            ino: r.u64(),
            dev: r.u64(),
            rdev: r.u64(),
            size: r.u64(),
            nlink: r.u32(),
            uid: r.u32(),
            gid: r.u32(),
            blksize: r.u32(),
            blocks: r.u64(),
            atime: r.u64() as i64,
            mtime: r.u64() as i64,
            ctime: r.u64() as i64,
            btime: r.u64() as i64,
            atime_nsec: r.u32(),
            mtime_nsec: r.u32(),
            ctime_nsec: r.u32(),
            btime_nsec: r.u32(),
            attributes: r.u64(),
            attributes_mask: r.u64(),
            gfid: Gfid(r.array()),
            ty: IaType::from_value(r.array::<1>()[0]),
            prot: u16::from_le_bytes(r.array()),
        }
    }
}

struct Writer<'b> {
    out: &'b mut [u8; IATT_LEN],
    at: usize,
}

impl Writer<'_> {
    fn put(&mut self, b: &[u8]) {
        if let Some(d) = self.out.get_mut(self.at..self.at + b.len()) {
            d.copy_from_slice(b);
        }
        self.at += b.len();
    }
}

struct Reader<'b> {
    b: &'b [u8; IATT_LEN],
    at: usize,
}

impl Reader<'_> {
    fn array<const N: usize>(&mut self) -> [u8; N] {
        let mut a = [0; N];
        if let Some(s) = self.b.get(self.at..self.at + N) {
            a.copy_from_slice(s);
        }
        self.at += N;
        a
    }
    fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.array())
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.array())
    }
}

/// `struct statvfs` as statfs replies carry it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[allow(missing_docs)]
pub struct Statvfs {
    pub bsize: u64,
    pub frsize: u64,
    pub blocks: u64,
    pub bfree: u64,
    pub bavail: u64,
    pub files: u64,
    pub ffree: u64,
    pub favail: u64,
    pub fsid: u64,
    pub flag: u64,
    pub namemax: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::ToString;

    #[test]
    fn gfid_prints_canonically_and_gives_inode_numbers() {
        assert_eq!(
            Gfid::ROOT.to_string(),
            "00000000-0000-0000-0000-000000000001"
        );
        assert_eq!(Gfid::ROOT.ino(), 1);
        assert_eq!(Gfid::NULL.ino(), u64::MAX);
        // §5.6: b0589b37a6f548ec9e695c10e38bb42e gave st_ino 0x9e695c10e38bb42e.
        let g = Gfid([
            0xb0, 0x58, 0x9b, 0x37, 0xa6, 0xf5, 0x48, 0xec, 0x9e, 0x69, 0x5c, 0x10, 0xe3, 0x8b,
            0xb4, 0x2e,
        ]);
        assert_eq!(g.ino(), 0x9e69_5c10_e38b_b42e);
        assert_eq!(g.to_string(), "b0589b37-a6f5-48ec-9e69-5c10e38bb42e");
    }

    #[test]
    fn mode_types_and_record_round_trip() {
        let mut a = Iatt {
            ty: IaType::Dir,
            prot: 0o1755,
            size: 1025,
            atime: -3,
            gfid: Gfid::ROOT,
            ..Iatt::default()
        };
        a.set_blocks_for_size();
        assert_eq!(a.blocks, 3);
        assert_eq!(a.mode(), 0o41755);
        assert_eq!(IaType::from_mode(0o120777), IaType::Lnk);
        let mut rec = [0; IATT_LEN];
        a.encode(&mut rec);
        assert_eq!(Iatt::decode(&rec), a);
    }
}
