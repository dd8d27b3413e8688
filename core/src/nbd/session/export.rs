//! What the session knows about an export, how it finds one by name, and the limits it enforces.

use crate::nbd::wire::transmission::flags;

/// One export as the session advertises it (proto.md "Transmission flags", "Size constraints").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ExportInfo {
    /// The shell's key for the export's backend; the session only hands it back.
    pub id: usize,
    /// Size in bytes.
    pub size: u64,
    /// Writes, trims and write-zeroes are refused with `NBD_EPERM` (a DRBD secondary).
    pub read_only: bool,
    /// The backend can persist: advertise `FLUSH` and `FUA`.
    pub flush: bool,
    /// Advertise `TRIM` (writable exports only).
    pub trim: bool,
    /// Advertise `WRITE_ZEROES` (writable exports only).
    pub write_zeroes: bool,
    /// Flushes are visible across connections (`NBD_FLAG_CAN_MULTI_CONN`).
    pub multi_conn: bool,
    /// Minimum block size: offsets and lengths must be multiples (1 = any byte). proto.md: a
    /// power of two, at most 64 KiB.
    pub min_block: u32,
    /// Preferred block size (advertised in `NBD_INFO_BLOCK_SIZE`, raised to 512 and the
    /// minimum, lowered to the maximum payload); a power of two.
    pub preferred_block: u32,
}

impl ExportInfo {
    /// A writable export of `size` bytes with flush, FUA, trim and write-zeroes, byte-granular.
    pub const fn new(id: usize, size: u64) -> ExportInfo {
        ExportInfo {
            id,
            size,
            read_only: false,
            flush: true,
            trim: true,
            write_zeroes: true,
            multi_conn: false,
            min_block: 1,
            preferred_block: 4096,
        }
    }

    /// The 16-bit transmission flags sent with the size.
    pub const fn transmission_flags(&self) -> u16 {
        let mut f = flags::HAS_FLAGS;
        if self.read_only {
            f |= flags::READ_ONLY;
        }
        if self.flush {
            f |= flags::SEND_FLUSH | flags::SEND_FUA;
        }
        if self.trim && !self.read_only {
            f |= flags::SEND_TRIM;
        }
        if self.write_zeroes && !self.read_only {
            f |= flags::SEND_WRITE_ZEROES;
        }
        if self.multi_conn {
            f |= flags::CAN_MULTI_CONN;
        }
        f
    }
}

/// The exports a server offers, as the session looks them up during option haggling.
pub trait Exports {
    /// The export called `name` (empty: the default export, if any).
    fn lookup(&self, name: &[u8]) -> Option<ExportInfo>;
    /// The name of the `index`-th export, for `NBD_OPT_LIST`; `None` past the last.
    fn name(&self, index: usize) -> Option<&[u8]>;
}

impl<E: Exports + ?Sized> Exports for &E {
    fn lookup(&self, name: &[u8]) -> Option<ExportInfo> {
        (**self).lookup(name)
    }
    fn name(&self, index: usize) -> Option<&[u8]> {
        (**self).name(index)
    }
}

/// A fixed table of `(name, info)` pairs.
impl Exports for [(&[u8], ExportInfo)] {
    fn lookup(&self, name: &[u8]) -> Option<ExportInfo> {
        self.iter().find(|(n, _)| *n == name).map(|(_, i)| *i)
    }
    fn name(&self, index: usize) -> Option<&[u8]> {
        self.get(index).map(|(n, _)| *n)
    }
}

/// Limits a session enforces; the shell sizes its buffers from them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Config {
    /// Largest `READ` / `WRITE` payload (advertised as the maximum payload). Larger requests get
    /// `NBD_EINVAL`; a too-large write's payload is skipped, never buffered. The spec wants it
    /// at least as large as the preferred block size, and at least 1 MiB for exports that big.
    pub max_payload: u32,
    /// Largest option data kept whole; longer options get `NBD_REP_ERR_TOO_BIG` (an
    /// `NBD_OPT_EXPORT_NAME` that long ends the session, which has no error reply).
    pub max_option_len: u32,
    /// Longest export name listed by `NBD_OPT_LIST` (proto.md: strings MUST be ≤ 4096 bytes).
    pub max_name_len: usize,
}

impl Config {
    /// 32 MiB payloads (what the spec says a client may assume without negotiation), 4096-byte
    /// names, options up to a 4096-byte name plus 64 information requests.
    pub const DEFAULT: Config = Config {
        max_payload: 1 << 25,
        max_option_len: 4 + 4096 + 2 + 2 * 64,
        max_name_len: 4096,
    };

    /// Bytes of input the shell must be able to hold at once: a whole write or a whole option.
    pub const fn input_buffer_len(&self) -> usize {
        let write = (self.max_payload as usize).saturating_add(28);
        let option = (self.max_option_len as usize).saturating_add(16);
        if write > option {
            write
        } else {
            option
        }
    }

    /// Bytes the shell's output buffer needs for any single message `poll_transmit` writes
    /// (the longest is an `NBD_REP_SERVER` with a name of `max_name_len`).
    pub const fn output_buffer_len(&self) -> usize {
        let server = self.max_name_len.saturating_add(24);
        if server > 134 {
            server
        } else {
            134
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config::DEFAULT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_follow_the_export() {
        let rw = ExportInfo::new(0, 1 << 20);
        assert_eq!(rw.transmission_flags(), 0b0110_1101);
        let ro = ExportInfo {
            read_only: true,
            ..rw
        };
        assert_eq!(ro.transmission_flags(), 0b0000_1111);
        let bare = ExportInfo {
            flush: false,
            trim: false,
            write_zeroes: false,
            multi_conn: true,
            ..rw
        };
        assert_eq!(bare.transmission_flags(), 0x0101);
    }

    #[test]
    fn table_lookup() {
        let t: &[(&[u8], ExportInfo)] =
            &[(b"a", ExportInfo::new(0, 1)), (b"", ExportInfo::new(1, 2))];
        assert_eq!(t.lookup(b"").map(|i| i.id), Some(1));
        assert_eq!(t.lookup(b"b"), None);
        assert_eq!(t.name(0), Some(&b"a"[..]));
        assert_eq!(t.name(2), None);
        assert_eq!(Config::DEFAULT.input_buffer_len(), 28 + (1 << 25));
        assert_eq!(Config::DEFAULT.output_buffer_len(), 4120);
    }
}
