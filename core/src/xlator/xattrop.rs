//! xattrop and fxattrop (translators.md §3.3): the dict a request carries and its reply
//! returns, and storage/posix's rule for applying one name/value pair, shared by every leaf
//! that serves the fop (storage/ram here, storage/posix in the shell).
//!
//! **The dict layout.** A request's `dict` span (and the reply's value span) holds records
//! back to back: a big-endian `u16` name length, the name, a big-endian `u32` value length,
//! the value. Upstream sends a `dict_t`; one span in this layout carries the same pairs
//! through the core without allocating.
//!
//! **Applying a pair** ([`apply`]) follows posix's `_posix_handle_xattr_keyvalue_pair`:
//! - the current value is read into a buffer the size of the request's value (half of it for
//!   the `*_WITH_DEFAULT` kinds); a stored value longer than that is ERANGE, a missing one
//!   reads as zeros, a shorter one is zero-padded;
//! - an all-zero request value writes nothing (and creates nothing) and returns the current
//!   value: AFR fetches its changelog this way;
//! - ADD_ARRAY adds big-endian int32s element by element (wrapping), ADD_ARRAY64 int64s; the
//!   `*_WITH_DEFAULT` kinds add the default (the value's second half) where the current
//!   element is zero; the reply carries the new value;
//! - GET_AND_SET stores the request value and replies with the old one (no reply entry when
//!   there was none);
//! - OR_ARRAY and AND_ARRAY are refused with EINVAL, as posix refuses them.
//!
//! A leaf applies the pairs in order and stops at the first failure (earlier pairs stay
//! applied, as upstream's `dict_foreach` leaves them).

use super::args::errno;

/// `gf_xattrop_flags_t`.
#[allow(missing_docs)]
pub mod flags {
    pub const ADD_ARRAY: i32 = 0;
    pub const ADD_ARRAY64: i32 = 1;
    pub const OR_ARRAY: i32 = 2;
    pub const AND_ARRAY: i32 = 3;
    pub const GET_AND_SET: i32 = 4;
    pub const ADD_ARRAY_WITH_DEFAULT: i32 = 5;
    pub const ADD_ARRAY64_WITH_DEFAULT: i32 = 6;
}

/// A dict that does not parse: a record runs past the end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Malformed;

/// The name/value pairs of a dict, in order; a truncated record ends the walk with
/// [`Malformed`].
#[derive(Clone, Debug)]
pub struct Entries<'b> {
    rest: &'b [u8],
}

/// The pairs of `bytes`.
pub fn entries(bytes: &[u8]) -> Entries<'_> {
    Entries { rest: bytes }
}

impl<'b> Iterator for Entries<'b> {
    type Item = Result<(&'b [u8], &'b [u8]), Malformed>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let r = (|| {
            let (nl, rest) = self.rest.split_first_chunk::<2>().ok_or(Malformed)?;
            let nl = usize::from(u16::from_be_bytes(*nl));
            let name = rest.get(..nl).ok_or(Malformed)?;
            let rest = rest.get(nl..).ok_or(Malformed)?;
            let (vl, rest) = rest.split_first_chunk::<4>().ok_or(Malformed)?;
            let vl = usize::try_from(u32::from_be_bytes(*vl)).map_err(|_| Malformed)?;
            let value = rest.get(..vl).ok_or(Malformed)?;
            self.rest = rest.get(vl..).ok_or(Malformed)?;
            Ok((name, value))
        })();
        if r.is_err() {
            self.rest = &[];
        }
        Some(r)
    }
}

/// The value `name` has in a dict (the first record of that name).
pub fn find<'b>(dict: &'b [u8], name: &[u8]) -> Option<&'b [u8]> {
    entries(dict)
        .map_while(Result::ok)
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v)
}

/// Bytes one record of `name` and `value` takes.
pub fn record_len(name: &[u8], value: &[u8]) -> usize {
    2 + name.len() + 4 + value.len()
}

/// Writes dict records into a caller's buffer.
#[derive(Debug)]
pub struct DictWriter<'b> {
    buf: &'b mut [u8],
    len: usize,
}

/// The buffer cannot hold another record (or a name is longer than 65535 bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct DictFull;

impl<'b> DictWriter<'b> {
    /// Empty, over `buf`.
    pub fn new(buf: &'b mut [u8]) -> Self {
        DictWriter { buf, len: 0 }
    }

    /// Appends one record.
    pub fn put(&mut self, name: &[u8], value: &[u8]) -> Result<(), DictFull> {
        let nl = u16::try_from(name.len()).map_err(|_| DictFull)?;
        let vl = u32::try_from(value.len()).map_err(|_| DictFull)?;
        let end = self.len + record_len(name, value);
        let dst = self.buf.get_mut(self.len..end).ok_or(DictFull)?;
        let (a, rest) = dst.split_at_mut(2);
        a.copy_from_slice(&nl.to_be_bytes());
        let (b, rest) = rest.split_at_mut(name.len());
        b.copy_from_slice(name);
        let (c, d) = rest.split_at_mut(4);
        c.copy_from_slice(&vl.to_be_bytes());
        d.copy_from_slice(value);
        self.len = end;
        Ok(())
    }

    /// Bytes written.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// What to store after [`apply`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Store {
    /// Nothing changes on disk.
    Nothing,
    /// Store the first `n` bytes of the output buffer.
    Out(usize),
    /// Store the request value itself (GET_AND_SET).
    Request,
}

/// The outcome of one pair: what to store, and what the reply dict carries for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Applied {
    /// The write to make.
    pub store: Store,
    /// The reply's value for this name: the first `n` bytes of the output buffer (`None`: no
    /// reply entry).
    pub reply: Option<usize>,
}

fn add32(dst: &mut [u8], add: &[u8], default: Option<&[u8]>) {
    for (i, (d, a)) in dst.chunks_exact_mut(4).zip(add.chunks_exact(4)).enumerate() {
        let cur = i32::from_be_bytes([d[0], d[1], d[2], d[3]]);
        let a = i32::from_be_bytes([a[0], a[1], a[2], a[3]]);
        let base = match default.and_then(|x| x.get(i * 4..i * 4 + 4)) {
            Some(x) if cur == 0 => i32::from_be_bytes([x[0], x[1], x[2], x[3]]),
            _ => cur,
        };
        d.copy_from_slice(&base.wrapping_add(a).to_be_bytes());
    }
}

fn add64(dst: &mut [u8], add: &[u8], default: Option<&[u8]>) {
    for (i, (d, a)) in dst.chunks_exact_mut(8).zip(add.chunks_exact(8)).enumerate() {
        let mut cb = [0u8; 8];
        cb.copy_from_slice(d);
        let mut ab = [0u8; 8];
        ab.copy_from_slice(a);
        let cur = i64::from_be_bytes(cb);
        let base = match default.and_then(|x| x.get(i * 8..i * 8 + 8)) {
            Some(x) if cur == 0 => {
                let mut xb = [0u8; 8];
                xb.copy_from_slice(x);
                i64::from_be_bytes(xb)
            }
            _ => cur,
        };
        d.copy_from_slice(&base.wrapping_add(i64::from_be_bytes(ab)).to_be_bytes());
    }
}

/// Applies one pair with `op` to the current value `old` (`None`: the xattr is missing),
/// writing the result into `out`. Errors are positive errnos: EINVAL for an unknown or
/// refused kind, ERANGE when `old` is longer than the request value (or `out` too short).
pub fn apply(op: i32, old: Option<&[u8]>, value: &[u8], out: &mut [u8]) -> Result<Applied, i32> {
    let with_default = matches!(
        op,
        flags::ADD_ARRAY_WITH_DEFAULT | flags::ADD_ARRAY64_WITH_DEFAULT
    );
    let known = matches!(
        op,
        flags::ADD_ARRAY
            | flags::ADD_ARRAY64
            | flags::GET_AND_SET
            | flags::ADD_ARRAY_WITH_DEFAULT
            | flags::ADD_ARRAY64_WITH_DEFAULT
    );
    let count = if with_default {
        value.len() / 2
    } else {
        value.len()
    };
    let cur = out.get_mut(..count).ok_or(errno::ERANGE)?;
    cur.fill(0);
    if let Some(o) = old {
        // lgetxattr into a buffer of `count` bytes.
        let dst = cur.get_mut(..o.len()).ok_or(errno::ERANGE)?;
        dst.copy_from_slice(o);
    }
    if op != flags::GET_AND_SET && value.iter().all(|&b| b == 0) {
        return Ok(Applied {
            store: Store::Nothing,
            reply: Some(count),
        });
    }
    if !known {
        return Err(errno::EINVAL);
    }
    let (add, default) = value.split_at(count);
    let default = with_default.then_some(default);
    match op {
        flags::ADD_ARRAY | flags::ADD_ARRAY_WITH_DEFAULT => add32(cur, add, default),
        flags::ADD_ARRAY64 | flags::ADD_ARRAY64_WITH_DEFAULT => add64(cur, add, default),
        _ => {
            return Ok(Applied {
                store: Store::Request,
                reply: old.map(|_| count),
            })
        }
    }
    Ok(Applied {
        store: Store::Out(count),
        reply: Some(count),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(op: i32, old: Option<&[u8]>, v: &[u8]) -> Result<(Applied, std::vec::Vec<u8>), i32> {
        let mut out = [0u8; 64];
        let a = apply(op, old, v, &mut out)?;
        Ok((a, out[..a.reply.unwrap_or(0)].to_vec()))
    }

    #[test]
    fn add_array_is_big_endian_and_creates_missing_values() {
        let plus_data = [0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0];
        let (a, v) = one(flags::ADD_ARRAY, None, &plus_data).unwrap();
        assert_eq!(a.store, Store::Out(12));
        assert_eq!(v, plus_data);
        let minus = [0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0];
        let (a, v) = one(flags::ADD_ARRAY, Some(&plus_data), &minus).unwrap();
        assert_eq!(a.store, Store::Out(12));
        assert_eq!(v, [0; 12], "a counter back at zero is still written");
        let (_, v) = one(
            flags::ADD_ARRAY,
            Some(&[0, 0, 0, 2]),
            &[0, 0, 1, 0, 0, 0, 0, 5],
        )
        .unwrap();
        assert_eq!(
            v,
            [0, 0, 1, 2, 0, 0, 0, 5],
            "a shorter value is zero-padded"
        );
    }

    #[test]
    fn zeros_fetch_without_writing() {
        let (a, v) = one(flags::ADD_ARRAY, None, &[0; 12]).unwrap();
        assert_eq!((a.store, v), (Store::Nothing, std::vec![0; 12]));
        let cur = [0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 1];
        let (a, v) = one(flags::ADD_ARRAY, Some(&cur), &[0; 12]).unwrap();
        assert_eq!((a.store, v.as_slice()), (Store::Nothing, &cur[..]));
        // Even a refused kind answers a zero value (posix checks the zeros first).
        assert!(one(flags::OR_ARRAY, Some(&cur), &[0; 12]).is_ok());
    }

    #[test]
    fn refusals_match_posix() {
        assert_eq!(one(flags::OR_ARRAY, None, &[1; 4]), Err(errno::EINVAL));
        assert_eq!(one(flags::AND_ARRAY, None, &[1; 4]), Err(errno::EINVAL));
        assert_eq!(one(17, None, &[1; 4]), Err(errno::EINVAL));
        assert_eq!(
            one(flags::ADD_ARRAY, Some(&[0; 16]), &[0, 0, 0, 1]),
            Err(errno::ERANGE)
        );
    }

    #[test]
    fn add64_defaults_and_get_and_set() {
        let (_, v) = one(
            flags::ADD_ARRAY64,
            Some(&7u64.to_be_bytes()),
            &(-2i64).to_be_bytes(),
        )
        .unwrap();
        assert_eq!(v, 5u64.to_be_bytes());
        let mut with_default = [0u8; 8];
        with_default[3] = 1; // add 1
        with_default[7] = 10; // default 10
        let (_, v) = one(flags::ADD_ARRAY_WITH_DEFAULT, None, &with_default).unwrap();
        assert_eq!(v, [0, 0, 0, 11]);
        let (_, v) = one(
            flags::ADD_ARRAY_WITH_DEFAULT,
            Some(&[0, 0, 0, 4]),
            &with_default,
        )
        .unwrap();
        assert_eq!(v, [0, 0, 0, 5]);
        let (a, v) = one(flags::GET_AND_SET, Some(b"old!"), b"new!").unwrap();
        assert_eq!((a.store, v.as_slice()), (Store::Request, &b"old!"[..]));
        let (a, _) = one(flags::GET_AND_SET, None, b"new!").unwrap();
        assert_eq!((a.store, a.reply), (Store::Request, None));
    }

    #[test]
    fn dict_round_trips_and_refuses_truncation() {
        let mut buf = [0u8; 64];
        let mut w = DictWriter::new(&mut buf);
        w.put(b"trusted.afr.dirty", &[0; 12]).unwrap();
        w.put(b"k", b"").unwrap();
        let n = w.len();
        let all: std::vec::Vec<_> = entries(&buf[..n]).collect();
        assert_eq!(
            all,
            [
                Ok((&b"trusted.afr.dirty"[..], &[0u8; 12][..])),
                Ok((&b"k"[..], &b""[..]))
            ]
        );
        assert_eq!(find(&buf[..n], b"k"), Some(&b""[..]));
        let cut: std::vec::Vec<_> = entries(&buf[..n - 1]).collect();
        assert_eq!(cut.last(), Some(&Err(Malformed)));
        let mut small = [0u8; 8];
        assert_eq!(
            DictWriter::new(&mut small).put(b"abc", b"defg"),
            Err(DictFull)
        );
    }
}
