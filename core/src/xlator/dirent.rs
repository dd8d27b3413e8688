//! Directory entries as readdir/readdirp return them (`gf_dirent_t`, translators.md §3.3),
//! packed into the reply area of the request buffer: one record per entry,
//! `d_off u64 | d_ino u64 | d_type u8 | name_len u8 | name`, and for readdirp the entry's
//! iatt as an [`Iatt::encode`] record. `d_off` is the opaque cookie the next readdir resumes
//! from.

use super::iatt::{Iatt, IATT_LEN};

const HEAD: usize = 8 + 8 + 1 + 1;

/// One entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dirent<'b> {
    /// Where the next readdir resumes after this entry.
    pub d_off: u64,
    /// `d_ino`.
    pub d_ino: u64,
    /// `DT_*`.
    pub d_type: u8,
    /// The name.
    pub name: &'b [u8],
    /// readdirp only: the entry's attributes.
    pub stat: Option<Iatt>,
}

/// The entries of a readdir(p) reply.
#[derive(Clone, Debug)]
pub struct Dirents<'b> {
    rest: &'b [u8],
    plus: bool,
}

impl<'b> Dirents<'b> {
    /// Reads records from `bytes`; `plus` for readdirp. A truncated record ends the walk.
    pub fn new(bytes: &'b [u8], plus: bool) -> Self {
        Dirents { rest: bytes, plus }
    }
}

impl<'b> Iterator for Dirents<'b> {
    type Item = Dirent<'b>;

    fn next(&mut self) -> Option<Dirent<'b>> {
        let head = self.rest.get(..HEAD)?;
        let u64_at = |i: usize| {
            let mut b = [0; 8];
            b.copy_from_slice(head.get(i..i + 8).unwrap_or(&[0; 8]));
            u64::from_le_bytes(b)
        };
        let name_len = usize::from(head[17]);
        let name = self.rest.get(HEAD..HEAD + name_len)?;
        let mut used = HEAD + name_len;
        let stat = if self.plus {
            let rec: &[u8; IATT_LEN] = self.rest.get(used..used + IATT_LEN)?.try_into().ok()?;
            used += IATT_LEN;
            Some(Iatt::decode(rec))
        } else {
            None
        };
        let e = Dirent {
            d_off: u64_at(0),
            d_ino: u64_at(8),
            d_type: head[16],
            name,
            stat,
        };
        self.rest = self.rest.get(used..).unwrap_or_default();
        Some(e)
    }
}

/// Packs entries into a reply area.
#[derive(Debug)]
pub struct DirentWriter<'b> {
    out: &'b mut [u8],
    len: usize,
    count: usize,
}

impl<'b> DirentWriter<'b> {
    /// Writes into `out`.
    pub fn new(out: &'b mut [u8]) -> Self {
        DirentWriter {
            out,
            len: 0,
            count: 0,
        }
    }

    /// Bytes one entry takes.
    pub fn record_len(name: &[u8], plus: bool) -> usize {
        HEAD + name.len() + if plus { IATT_LEN } else { 0 }
    }

    /// Appends an entry; false (and nothing written) when it does not fit in `limit` bytes
    /// or the name is longer than 255 bytes.
    pub fn push(&mut self, limit: usize, e: &Dirent<'_>) -> bool {
        let need = Self::record_len(e.name, e.stat.is_some());
        let Ok(name_len) = u8::try_from(e.name.len()) else {
            return false;
        };
        let end = self.len + need;
        if end > limit {
            return false;
        }
        let Some(rec) = self.out.get_mut(self.len..end) else {
            return false;
        };
        rec[..8].copy_from_slice(&e.d_off.to_le_bytes());
        rec[8..16].copy_from_slice(&e.d_ino.to_le_bytes());
        rec[16] = e.d_type;
        rec[17] = name_len;
        rec[HEAD..HEAD + e.name.len()].copy_from_slice(e.name);
        if let Some(st) = &e.stat {
            let mut b = [0; IATT_LEN];
            st.encode(&mut b);
            rec[HEAD + e.name.len()..].copy_from_slice(&b);
        }
        self.len = end;
        self.count += 1;
        true
    }

    /// Bytes written.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Entries written.
    pub fn count(&self) -> usize {
        self.count
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xlator::iatt::Gfid;

    #[test]
    fn records_round_trip_and_respect_the_limit() {
        let mut buf = [0u8; 512];
        let st = Iatt {
            gfid: Gfid::ROOT,
            size: 7,
            ..Iatt::default()
        };
        let mut w = DirentWriter::new(&mut buf);
        let a = Dirent {
            d_off: 1,
            d_ino: 1,
            d_type: 4,
            name: b".",
            stat: Some(st),
        };
        let b = Dirent {
            d_off: 9,
            d_ino: 42,
            d_type: 8,
            name: b"file",
            stat: Some(st),
        };
        assert!(w.push(512, &a));
        let limit = w.len() + DirentWriter::record_len(b"file", true);
        assert!(!w.push(limit - 1, &b));
        assert!(w.push(limit, &b));
        assert_eq!(w.count(), 2);
        let n = w.len();
        let got: std::vec::Vec<_> = Dirents::new(&buf[..n], true).collect();
        assert_eq!(got, [a, b]);
        // A cut record ends the walk instead of misreading.
        assert_eq!(Dirents::new(&buf[..n - 1], true).count(), 1);
    }
}
