//! AFR's changelog (translators.md §5.4): the three counters each child keeps per object about
//! every child (`trusted.afr.<name>`: big-endian int32 data, metadata, entry) and about itself
//! (`trusted.afr.dirty`), and the reading of them a heal starts from: who accuses whom, which
//! children are sources and which sinks (`afr_selfheal_find_direction`), and the tie-breaks
//! of a data or metadata heal (largest file, most witnessed operations, newest change).
//!
//! Pure functions over a [`Matrix`] the heal filled from its children's replies.

use super::MAX_CHILDREN;

/// Which counter a fop moves (`afr_index_for_transaction_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Kind {
    /// write, truncate, ftruncate (and open with O_TRUNC).
    Data = 0,
    /// setattr, setxattr, removexattr and their fd forms.
    Metadata = 1,
    /// create, mknod, mkdir, symlink, link, unlink, rmdir, rename: on the parent directory.
    Entry = 2,
}

impl Kind {
    /// The three, in counter order.
    pub const ALL: [Kind; 3] = [Kind::Data, Kind::Metadata, Kind::Entry];

    /// The counter's index in a value.
    pub fn index(self) -> usize {
        self as usize
    }
}

/// One changelog value: the three counters.
pub type Counters = [i32; 3];

/// Bytes of a changelog value.
pub const VALUE_LEN: usize = 12;

/// The on-disk bytes of `c` (three big-endian int32).
pub fn encode(c: Counters) -> [u8; VALUE_LEN] {
    let mut b = [0u8; VALUE_LEN];
    for (dst, v) in b.chunks_exact_mut(4).zip(c) {
        dst.copy_from_slice(&v.to_be_bytes());
    }
    b
}

/// The counters of an on-disk value; missing bytes read as zero, extra ones are ignored.
pub fn decode(b: &[u8]) -> Counters {
    let mut c = [0i32; 3];
    for (v, src) in c.iter_mut().zip(b.chunks(4)) {
        let mut w = [0u8; 4];
        if let Some(dst) = w.get_mut(..src.len()) {
            dst.copy_from_slice(src);
        }
        *v = i32::from_be_bytes(w);
    }
    c
}

/// The counter `kind` set to `n`, the others zero.
pub fn one(kind: Kind, n: i32) -> Counters {
    let mut c = [0; 3];
    if let Some(v) = c.get_mut(kind.index()) {
        *v = n;
    }
    c
}

/// What each child said: `pending[i][j]` is stored on child i about child j, `dirty[i]` is
/// child i's dirty value.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Matrix {
    /// The pending values.
    pub pending: [[Counters; MAX_CHILDREN]; MAX_CHILDREN],
    /// The dirty values.
    pub dirty: [Counters; MAX_CHILDREN],
}

impl Matrix {
    fn at(&self, i: usize, j: usize, k: Kind) -> i32 {
        self.pending
            .get(i)
            .and_then(|r| r.get(j))
            .and_then(|c| c.get(k.index()))
            .copied()
            .unwrap_or(0)
    }

    fn dirty(&self, i: usize, k: Kind) -> i32 {
        self.dirty
            .get(i)
            .and_then(|c| c.get(k.index()))
            .copied()
            .unwrap_or(0)
    }

    /// Whether any counter of `kind` (pending or dirty) is set.
    pub fn any(&self, kind: Kind, n: usize) -> bool {
        (0..n).any(|i| self.dirty(i, kind) != 0 || (0..n).any(|j| self.at(i, j, kind) != 0))
    }
}

/// A bit per child.
pub type Mask = u8;

/// Children `0..n`.
pub fn all(n: usize) -> Mask {
    if n >= 8 {
        Mask::MAX
    } else {
        (1u8 << n) - 1
    }
}

/// Whether child `i` is in `m`.
pub fn has(m: Mask, i: usize) -> bool {
    i < 8 && m & (1 << i) != 0
}

/// Child `i` alone.
pub fn bit(i: usize) -> Mask {
    if i < 8 {
        1 << i
    } else {
        0
    }
}

/// `afr_selfheal_find_direction`'s answer for one counter.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Direction {
    /// Children nobody (trusted) accuses, among those inspected.
    pub sources: Mask,
    /// Children accused by a source that does not accuse itself; every inspected child when
    /// there is no source (split-brain).
    pub sinks: Mask,
    /// Operations each child witnessed (its dirty counter, and self-accusations), for ties.
    pub witness: [u64; MAX_CHILDREN],
    /// No source.
    pub split_brain: bool,
}

/// Sources and sinks for `kind` over the `n` children, of which `inspected` answered.
///
/// A child is self-accused when its value about itself is set; a self-accused child's
/// accusations are not believed. Sources are the inspected children nobody believable
/// accuses; sinks are those a believable source accuses.
pub fn find_direction(m: &Matrix, kind: Kind, n: usize, inspected: Mask) -> Direction {
    let n = n.min(MAX_CHILDREN);
    let mut d = Direction::default();
    let self_accused = |i: usize| m.at(i, i, kind) != 0;
    let mut accused: Mask = 0;
    // Children with a value set about another child.
    let mut pending: Mask = 0;
    for i in 0..n {
        for j in 0..n {
            if m.at(i, j, kind) != 0 {
                if !self_accused(i) {
                    accused |= bit(j);
                }
                if i != j {
                    pending |= bit(i);
                }
            }
        }
    }
    d.sources = inspected & !accused;
    for i in 0..n {
        if !has(d.sources, i) || self_accused(i) {
            continue;
        }
        for j in 0..n {
            if m.at(i, j, kind) != 0 {
                d.sinks |= bit(j);
            }
        }
    }
    for (i, w) in d.witness.iter_mut().enumerate().take(n) {
        if self_accused(i) {
            let others: i64 = (0..n)
                .filter(|&j| j != i)
                .map(|j| i64::from(m.at(i, j, kind)))
                .sum();
            *w = others.unsigned_abs();
            // A self-accusal is a witness too when nobody has pending values (afr-v1's crash
            // between its two xattrops), or when this child has some (afr-v1's dirty).
            if pending == 0 || has(pending, i) {
                *w += u64::from(m.at(i, i, kind).unsigned_abs());
            }
        }
        *w += u64::from(m.dirty(i, kind).unsigned_abs());
    }
    if d.sources == 0 {
        d.sinks = inspected;
        d.split_brain = true;
    }
    d
}

/// What a data or metadata heal compares between sources to pick among them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Seen {
    /// File size.
    pub size: u64,
    /// Modification time (seconds, nanoseconds).
    pub mtime: (i64, u32),
    /// Change time.
    pub ctime: (i64, u32),
    /// Mode bits, owner and group.
    pub owner: (u16, u32, u32),
}

/// Narrows `sources` to one set with a single truth: the largest file (data only), then the
/// most witnessed operations, then the newest change (mtime for data, ctime for metadata).
/// Done only when the sources disagree or witnessed something, as upstream's finalize does.
pub fn narrow(kind: Kind, mut sources: Mask, d: &Direction, seen: &[Seen], n: usize) -> Mask {
    let n = n.min(seen.len()).min(MAX_CHILDREN);
    let members = |s: Mask| (0..n).filter(move |&i| has(s, i));
    let first = members(sources).next();
    let disagree = first.is_some_and(|f| {
        let key = |i: usize| match kind {
            Kind::Data => (seen.get(i).map_or(0, |s| s.size), (0, 0, 0)),
            _ => (0, seen.get(i).map_or((0, 0, 0), |s| s.owner)),
        };
        members(sources).any(|i| key(i) != key(f))
    });
    let witnessed = members(sources).any(|i| d.witness.get(i).copied().unwrap_or(0) != 0);
    if !disagree && !witnessed {
        return sources;
    }
    let keep_max = |s: Mask, key: &dyn Fn(usize) -> u128| -> Mask {
        let best = members(s).map(key).max().unwrap_or(0);
        members(s)
            .filter(|&i| key(i) == best)
            .fold(0, |m, i| m | bit(i))
    };
    let time = |t: (i64, u32)| (u128::from(t.0 as u64 ^ 1 << 63) << 32) | u128::from(t.1);
    if kind == Kind::Data {
        sources = keep_max(sources, &|i| u128::from(seen.get(i).map_or(0, |s| s.size)));
    }
    sources = keep_max(sources, &|i| {
        u128::from(d.witness.get(i).copied().unwrap_or(0))
    });
    sources = keep_max(sources, &|i| {
        let s = seen.get(i).copied().unwrap_or_default();
        time(if kind == Kind::Data { s.mtime } else { s.ctime })
    });
    sources
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_three_big_endian_words() {
        assert_eq!(
            encode([1, 0, 0]),
            [0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0],
            "trusted.afr.r-client-1 = 00000001 00000000 00000000"
        );
        assert_eq!(decode(&encode([-1, 7, 3])), [-1, 7, 3]);
        assert_eq!(decode(&[0, 0, 0, 2]), [2, 0, 0]);
        assert_eq!(encode(one(Kind::Entry, 1))[11], 1);
    }

    #[test]
    fn the_accused_child_is_the_sink() {
        let mut m = Matrix::default();
        m.pending[0][1] = one(Kind::Data, 1);
        let d = find_direction(&m, Kind::Data, 2, 0b11);
        assert_eq!((d.sources, d.sinks, d.split_brain), (0b01, 0b10, false));
        let md = find_direction(&m, Kind::Metadata, 2, 0b11);
        assert_eq!((md.sources, md.sinks), (0b11, 0));
    }

    #[test]
    fn mutual_accusation_is_split_brain_and_self_accusers_are_not_believed() {
        let mut m = Matrix::default();
        m.pending[0][1] = one(Kind::Data, 1);
        m.pending[1][0] = one(Kind::Data, 2);
        let d = find_direction(&m, Kind::Data, 2, 0b11);
        assert!(d.split_brain);
        assert_eq!((d.sources, d.sinks), (0, 0b11));
        // Child 1 accuses itself too: it is a fool, so child 0 stays a source.
        m.pending[1][1] = one(Kind::Data, 1);
        let d = find_direction(&m, Kind::Data, 2, 0b11);
        assert_eq!((d.sources, d.sinks), (0b01, 0b10));
        assert_eq!(d.witness[1], 3, "its two accusations and its own mark");
    }

    #[test]
    fn dirty_alone_leaves_all_sources_and_the_largest_file_wins() {
        let mut m = Matrix::default();
        m.dirty[0] = one(Kind::Data, 1);
        m.dirty[1] = one(Kind::Data, 1);
        let d = find_direction(&m, Kind::Data, 2, 0b11);
        assert_eq!((d.sources, d.sinks), (0b11, 0));
        let seen = [
            Seen {
                size: 10,
                ..Seen::default()
            },
            Seen {
                size: 20,
                ..Seen::default()
            },
        ];
        assert_eq!(narrow(Kind::Data, d.sources, &d, &seen, 2), 0b10);
        let same = [Seen::default(); 2];
        let clean = find_direction(&Matrix::default(), Kind::Data, 2, 0b11);
        assert_eq!(narrow(Kind::Data, 0b11, &clean, &same, 2), 0b11);
    }

    #[test]
    fn metadata_ties_go_to_the_newest_change() {
        let d = find_direction(&Matrix::default(), Kind::Metadata, 2, 0b11);
        let seen = [
            Seen {
                owner: (0o644, 0, 0),
                ctime: (5, 0),
                ..Seen::default()
            },
            Seen {
                owner: (0o600, 0, 0),
                ctime: (4, 999),
                ..Seen::default()
            },
        ];
        assert_eq!(narrow(Kind::Metadata, 0b11, &d, &seen, 2), 0b01);
    }
}
