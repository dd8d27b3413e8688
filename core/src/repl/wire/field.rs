//! Byte access that cannot panic, the opaque identifiers DRBD echoes verbatim, and `layout!`,
//! which turns a table of `field: type = offset` rows into a view plus a `Repr`.
//!
//! Views may be built with `new_unchecked` over short buffers, so every read goes through
//! [`Field::read`], which yields zeros for bytes that are missing instead of indexing past the end.

use super::error::{room, Error};

/// A fixed-width wire field: big-endian integers, or opaque bytes.
pub trait Field: Copy + Default {
    /// Width on the wire.
    const SIZE: usize;
    /// Reads at `off`; missing bytes read as zero.
    fn read(buf: &[u8], off: usize) -> Self;
    /// Writes at `off`; bytes beyond the buffer are dropped.
    fn write(self, buf: &mut [u8], off: usize);
}

fn get<const N: usize>(buf: &[u8], off: usize) -> [u8; N] {
    let mut out = [0u8; N];
    if let Some(src) = buf.get(off..) {
        let n = src.len().min(N);
        out[..n].copy_from_slice(&src[..n]);
    }
    out
}

fn put(buf: &mut [u8], off: usize, bytes: &[u8]) {
    if let Some(dst) = buf.get_mut(off..) {
        let n = dst.len().min(bytes.len());
        dst[..n].copy_from_slice(&bytes[..n]);
    }
}

macro_rules! be_field {
    ($($t:ty),*) => {$(
        impl Field for $t {
            const SIZE: usize = core::mem::size_of::<$t>();
            fn read(buf: &[u8], off: usize) -> Self {
                <$t>::from_be_bytes(get(buf, off))
            }
            fn write(self, buf: &mut [u8], off: usize) {
                put(buf, off, &self.to_be_bytes())
            }
        }
    )*};
}
be_field!(u8, i8, u16, u32, i32, u64);

/// A request handle (`block_id`, 8 bytes) the sender chooses and the peer echoes byte for byte
/// (replication.md §3.1). Linux writes a kernel pointer in host order, so it is kept as bytes;
/// [`BlockId::from_host`] encodes little-endian as an x86 peer does (and as Wireshark 4.0 shows it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct BlockId(pub [u8; 8]);

impl BlockId {
    /// `ID_SYNCER`: resync traffic before protocol 122 (all ones, any byte order).
    pub const SYNCER: BlockId = BlockId([0xFF; 8]);
    /// `ID_IN_SYNC` (4711, big-endian): P_OV_RESULT said "in sync" before protocol 122.
    pub const IN_SYNC: BlockId = BlockId(4711u64.to_be_bytes());
    /// `ID_OUT_OF_SYNC` (4712, big-endian): P_OV_RESULT said "out of sync" before protocol 122.
    pub const OUT_OF_SYNC: BlockId = BlockId(4712u64.to_be_bytes());

    /// The id an x86 Linux peer would write for `v`.
    pub const fn from_host(v: u64) -> BlockId {
        BlockId(v.to_le_bytes())
    }
    /// The inverse of [`BlockId::from_host`].
    pub const fn to_host(self) -> u64 {
        u64::from_le_bytes(self.0)
    }
}

impl Field for BlockId {
    const SIZE: usize = 8;
    fn read(buf: &[u8], off: usize) -> Self {
        BlockId(get(buf, off))
    }
    fn write(self, buf: &mut [u8], off: usize) {
        put(buf, off, &self.0)
    }
}

/// An epoch number in P_BARRIER / P_BARRIER_ACK (4 bytes, echoed verbatim, replication.md §3.4).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct BarrierNr(pub [u8; 4]);

impl BarrierNr {
    /// The number an x86 Linux peer would write for `v`.
    pub const fn from_host(v: u32) -> BarrierNr {
        BarrierNr(v.to_le_bytes())
    }
    /// The inverse of [`BarrierNr::from_host`].
    pub const fn to_host(self) -> u32 {
        u32::from_le_bytes(self.0)
    }
}

impl Field for BarrierNr {
    const SIZE: usize = 4;
    fn read(buf: &[u8], off: usize) -> Self {
        BarrierNr(get(buf, off))
    }
    fn write(self, buf: &mut [u8], off: usize) {
        put(buf, off, &self.0)
    }
}

/// `Err(Truncated)` unless `len >= need`.
pub(crate) fn at_least(what: &'static str, len: usize, need: usize) -> Result<(), Error> {
    if len < need {
        Err(Error::Truncated {
            what,
            need,
            have: len,
        })
    } else {
        Ok(())
    }
}

/// `Err(Truncated)` if short, `Err(LengthMismatch)` if long.
pub(crate) fn exactly(what: &'static str, len: usize, need: usize) -> Result<(), Error> {
    at_least(what, len, need)?;
    if len != need {
        return Err(Error::LengthMismatch {
            what,
            expected: need,
            got: len,
        });
    }
    Ok(())
}

/// Copies `parts` back to back into `buf`; `NoRoom` (and nothing written) if they do not fit.
pub(crate) fn emit_parts(buf: &mut [u8], parts: &[&[u8]]) -> Result<usize, Error> {
    let total = parts.iter().map(|p| p.len()).sum();
    room(buf, total)?;
    let mut at = 0;
    for p in parts {
        put(buf, at, p);
        at += p.len();
    }
    Ok(total)
}

/// Copies `s` into `buf` at `off`; the caller has zeroed the field, so a shorter name stays
/// NUL-padded.
pub(crate) fn put_bytes(buf: &mut [u8], off: usize, s: &[u8]) {
    put(buf, off, s)
}

/// A NUL-terminated string at the start of `bytes`: the bytes before the NUL, or `BadString`.
pub(crate) fn cstr<'a>(field: &'static str, bytes: &'a [u8]) -> Result<&'a [u8], Error> {
    match bytes.iter().position(|&b| b == 0) {
        Some(n) => Ok(&bytes[..n]),
        None => Err(Error::BadString { field }),
    }
}

/// Declares a fixed-size wire structure: a zero-copy view `$View<T>` with a getter and a setter
/// per field, and `$Repr` with the same fields that parses from and emits into byte slices.
/// Offsets not named by any field are padding: emitted as zero, ignored when read.
macro_rules! layout {
    (
        $(#[$vmeta:meta])*
        view $View:ident, repr $Repr:ident, wire $wire:literal, len $len:expr;
        $( $(#[$fmeta:meta])* $field:ident, $set:ident : $ty:ty = $off:expr; )*
    ) => {
        $(#[$vmeta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub struct $View<T: AsRef<[u8]>> {
            buffer: T,
        }

        impl<T: AsRef<[u8]>> $View<T> {
            /// Bytes of the fixed part.
            pub const LEN: usize = $len;

            /// Wraps `buffer` without checking its length (missing bytes read as zero).
            pub const fn new_unchecked(buffer: T) -> Self {
                $View { buffer }
            }

            /// Wraps `buffer` after checking it holds the fixed part.
            pub fn new_checked(buffer: T) -> Result<Self, $crate::repl::wire::Error> {
                let v = Self::new_unchecked(buffer);
                v.check_len()?;
                Ok(v)
            }

            /// `Truncated` if the buffer is shorter than the fixed part.
            pub fn check_len(&self) -> Result<(), $crate::repl::wire::Error> {
                $crate::repl::wire::field::at_least($wire, self.buffer.as_ref().len(), $len)
            }

            /// The wrapped buffer.
            pub fn into_inner(self) -> T {
                self.buffer
            }

            /// The bytes after the fixed part (a digest, data, a string or a list).
            pub fn tail(&self) -> &[u8] {
                self.buffer.as_ref().get($len..).unwrap_or(&[])
            }

            $(
                $(#[$fmeta])*
                pub fn $field(&self) -> $ty {
                    <$ty as $crate::repl::wire::field::Field>::read(self.buffer.as_ref(), $off)
                }
            )*
        }

        impl<'a> $View<&'a [u8]> {
            /// The tail, borrowed for as long as the underlying bytes.
            pub fn into_tail(self) -> &'a [u8] {
                self.buffer.get($len..).unwrap_or(&[])
            }
        }

        impl<T: AsRef<[u8]> + AsMut<[u8]>> $View<T> {
            $(
                #[doc = concat!("Sets `", stringify!($field), "`.")]
                pub fn $set(&mut self, value: $ty) {
                    $crate::repl::wire::field::Field::write(value, self.buffer.as_mut(), $off)
                }
            )*
        }

        #[doc = concat!("The parsed form of `", $wire, "` ([`", stringify!($View), "`]).")]
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        pub struct $Repr {
            $( $(#[$fmeta])* pub $field: $ty, )*
        }

        impl $Repr {
            /// Bytes [`Self::emit`] writes.
            pub const LEN: usize = $len;

            /// Parses a payload that is exactly the fixed part.
            pub fn parse(payload: &[u8]) -> Result<Self, $crate::repl::wire::Error> {
                $crate::repl::wire::field::exactly($wire, payload.len(), $len)?;
                Ok(Self::from_view(&$View::new_unchecked(payload)))
            }

            /// Reads the fixed part of a view (its tail is not examined).
            pub fn from_view<T: AsRef<[u8]>>(view: &$View<T>) -> Self {
                $Repr { $( $field: view.$field(), )* }
            }

            /// Exactly the bytes [`Self::emit`] writes.
            pub const fn buffer_len(&self) -> usize {
                $len
            }

            /// Writes the structure (padding zeroed) at the start of `buf`; returns its length.
            pub fn emit(&self, buf: &mut [u8]) -> Result<usize, $crate::repl::wire::Error> {
                $crate::repl::wire::error::room(buf, $len)?;
                let out = &mut buf[..$len];
                out.fill(0);
                let mut view = $View::new_unchecked(out);
                $( view.$set(self.$field); )*
                Ok($len)
            }
        }
    };
}
