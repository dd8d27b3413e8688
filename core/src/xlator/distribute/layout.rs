//! Directory layouts (translators.md §5.3): which hash range each subvolume of a directory
//! holds, how glusterfs 10.3 assigns them to a new directory (dht-selfheal.c
//! `dht_selfheal_layout_new_directory`), how it reads them back from the
//! `trusted.glusterfs.dht` xattrs and judges them (dht-layout.c `dht_layout_anomalies`), and
//! which subvolume a name hashes to (`dht_layout_search`).
//!
//! A [`Layout`] is indexed by subvolume *position*: the place of the child in the translator's
//! `subvolumes` line. Assignment walks the positions in name order ([`Assign::order`]);
//! [`layout_of`] is the common case of children already listed in name order.

use super::super::dht_hash::dm_hash;
use super::super::iatt::{Gfid, Statvfs};

/// Most subvolumes a distribute translator may have here.
pub const SUBVOLS_MAX: usize = 16;

/// `DHT_LAYOUT_HASH_INVALID`: the commit hash of a layout that was healed (rewritten over
/// holes or overlaps), so lookups that miss on the hashed subvolume still look everywhere.
pub const HASH_INVALID: u32 = 1;

/// `DHT_HASH_TYPE_DM`, the only hash type glusterfs writes.
pub const HASH_TYPE_DM: u32 = 0;
/// `DHT_HASH_TYPE_DM_USER`: a layout an administrator set by hand (same hash).
pub const HASH_TYPE_DM_USER: u32 = 1;

/// The bytes of one layout xattr.
pub const XATTR_LEN: usize = 16;

/// A hash range, both ends included.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Range {
    /// First hash.
    pub start: u32,
    /// Last hash.
    pub stop: u32,
}

impl Range {
    /// Whether `hash` falls in it.
    pub fn contains(&self, hash: u32) -> bool {
        self.start <= hash && hash <= self.stop
    }
}

/// A directory's layout: a range per subvolume position that has one, and the commit hash.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Layout {
    ranges: [Range; SUBVOLS_MAX],
    /// Bit k: position k has a range.
    present: u16,
    count: u8,
    /// The commit hash (the first word of each xattr).
    pub commit: u32,
    /// The hash type (the second word).
    pub hash_type: u32,
}

impl Layout {
    /// No ranges over `count` positions (capped at [`SUBVOLS_MAX`]).
    pub fn empty(count: usize) -> Layout {
        Layout {
            count: count.min(SUBVOLS_MAX) as u8,
            ..Layout::default()
        }
    }

    /// Positions the layout spans.
    pub fn count(&self) -> usize {
        usize::from(self.count)
    }

    /// Position `k`'s range, if it has one.
    pub fn range(&self, k: usize) -> Option<Range> {
        let r = *self.ranges.get(k)?;
        (self.present & 1u16.checked_shl(k as u32).unwrap_or(0) != 0).then_some(r)
    }

    /// Gives position `k` a range (ignored past the count).
    pub fn set(&mut self, k: usize, r: Range) {
        if k < self.count() {
            if let Some(slot) = self.ranges.get_mut(k) {
                *slot = r;
                self.present |= 1 << k;
            }
        }
    }

    /// The position whose range holds `hash`: the first by ascending start (position order
    /// breaking ties), as `dht_layout_search` walks a sorted layout.
    pub fn search(&self, hash: u32) -> Option<usize> {
        (0..self.count())
            .filter_map(|k| self.range(k).map(|r| (r, k)))
            .filter(|(r, _)| r.contains(hash))
            .min_by_key(|&(r, k)| (r.start, r.stop, k))
            .map(|(_, k)| k)
    }

    /// Position `k`'s xattr value: big-endian `[commit, type, start, stop]`.
    pub fn xattr(&self, k: usize) -> Option<[u8; XATTR_LEN]> {
        let r = self.range(k)?;
        Some(encode(self.commit, self.hash_type, r))
    }
}

/// A layout xattr value: big-endian `[commit, type, start, stop]`.
pub fn encode(commit: u32, hash_type: u32, r: Range) -> [u8; XATTR_LEN] {
    let mut b = [0u8; XATTR_LEN];
    for (i, w) in [commit, hash_type, r.start, r.stop].into_iter().enumerate() {
        b[i * 4..i * 4 + 4].copy_from_slice(&w.to_be_bytes());
    }
    b
}

/// One subvolume's layout xattr read back: `(commit, type, range)`; `None` when it is not 16
/// bytes or names a hash type glusterfs does not know (`dht_disk_layout_merge` refuses both).
pub fn decode(b: &[u8]) -> Option<(u32, u32, Range)> {
    let b: &[u8; XATTR_LEN] = b.try_into().ok()?;
    let w = |i: usize| u32::from_be_bytes([b[i * 4], b[i * 4 + 1], b[i * 4 + 2], b[i * 4 + 3]]);
    let ty = w(1);
    if ty != HASH_TYPE_DM && ty != HASH_TYPE_DM_USER {
        return None;
    }
    Some((
        w(0),
        ty,
        Range {
            start: w(2),
            stop: w(3),
        },
    ))
}

/// A name as DHT hashes it: with the default `rsync-hash-regex` `^\.(.+)\.[^.]+$`, a name
/// like `.NAME.XXXXXX` hashes as `NAME`, so rsync's temporary files land where the final
/// name will.
pub fn rsync_munge(name: &[u8]) -> &[u8] {
    // `\.(.+)\.[^.]+` anchored both ends: a leading dot, a last dot at index 2 or later and
    // at least one byte after it; the group is everything between.
    match (name.first(), name.iter().rposition(|&c| c == b'.')) {
        (Some(b'.'), Some(q)) if q >= 2 && q + 1 < name.len() => name.get(1..q).unwrap_or(name),
        _ => name,
    }
}

/// The DHT hash of a basename, after the default rsync munge when `munge` is set.
pub fn hash_name(name: &[u8], munge: bool) -> u32 {
    dm_hash(if munge { rsync_munge(name) } else { name })
}

/// The subvolume position `name` hashes to in `layout` (default rsync munge applied).
pub fn hashed_subvol(layout: &Layout, name: &[u8]) -> Option<usize> {
    layout.search(hash_name(name, true))
}

/// How to assign a new directory's layout (`dht_selfheal_layout_new_directory`).
#[derive(Clone, Copy, Debug)]
pub struct Assign<'a> {
    /// Subvolume positions in name order (strcmp of the volume names).
    pub order: &'a [u8],
    /// Bit k: position k takes part (its directory exists or was just made; not down, not
    /// decommissioned).
    pub usable: u16,
    /// Per position, the brick's size in 1 MiB chunks ([`chunks`]) for `weighted-rebalance`;
    /// `None`, or any participant at 0, gives equal ranges.
    pub weights: Option<&'a [u32]>,
    /// `directory-layout-spread`: at most this many subvolumes get a range (0: all).
    pub spread: usize,
    /// The commit hash to stamp.
    pub commit: u32,
}

/// The layout glusterfs 10.3 assigns a new directory over `count` subvolumes listed in name
/// order, with equal weights: `key` is the directory's full path (`/`, `/a/b`), or its
/// canonical gfid under `randomize-hash-range-by-gfid`. Position i is the i-th subvolume in
/// name order. The commit hash is 0, as a mkdir with default options writes.
pub fn layout_of(key: &[u8], count: usize) -> Layout {
    let order: [u8; SUBVOLS_MAX] = core::array::from_fn(|i| i as u8);
    let count = count.min(SUBVOLS_MAX);
    assign(
        key,
        &Assign {
            order: order.get(..count).unwrap_or_default(),
            usable: mask(count),
            weights: None,
            spread: 0,
            commit: 0,
        },
    )
}

/// The bits of positions `0..count`.
pub fn mask(count: usize) -> u16 {
    if count >= 16 {
        u16::MAX
    } else {
        (1u16 << count) - 1
    }
}

/// The key a directory's layout start is hashed from: its path, or its canonical gfid.
pub fn dir_key<'p>(path: &'p [u8], gfid: &Gfid, by_gfid: bool, buf: &'p mut [u8; 36]) -> &'p [u8] {
    if by_gfid {
        *buf = gfid.canonical();
        &buf[..]
    } else {
        path
    }
}

/// A brick's size in 1 MiB chunks as `dht_du_info_cbk` counts it from statfs.
pub fn chunks(st: &Statvfs) -> u32 {
    if st.blocks == 0 {
        return 0;
    }
    // `bpc` is a uint32_t of (1 MiB / f_bsize); a block size above 1 MiB would divide by
    // zero upstream: no weight here.
    let bpc = ((1u64 << 20) / st.bsize.max(1)) as u32;
    if bpc == 0 {
        return 0;
    }
    (st.blocks.saturating_add(u64::from(bpc) - 1) / u64::from(bpc)) as u32
}

/// Assigns ranges as `dht_selfheal_layout_new_directory` does: the participants in name
/// order, starting at `hash(key) mod count`, each `0xffffffff / n` wide (or weighted by brick
/// size, in C's double arithmetic), the last one stopping at `0xffffffff`.
pub fn assign(key: &[u8], a: &Assign<'_>) -> Layout {
    let cnt = a.order.len().min(SUBVOLS_MAX);
    let mut layout = Layout::empty(cnt);
    layout.commit = a.commit;
    if cnt == 0 {
        return layout;
    }
    let pos = |i: usize| usize::from(a.order.get(i).copied().unwrap_or(0));
    let usable = |i: usize| a.usable & 1u16.checked_shl(pos(i) as u32).unwrap_or(0) != 0;
    let weight = |i: usize| a.weights.and_then(|w| w.get(pos(i)).copied()).unwrap_or(0);
    let count = (0..cnt).filter(|&i| usable(i)).count();
    // dht_get_layout_count: a spread limit applies when it is at most the usable count; with
    // nobody usable, one range is still handed out.
    let to_use = if a.spread != 0 && a.spread <= count {
        a.spread
    } else {
        count.max(1)
    };
    let mut weighted = a.weights.is_some();
    let mut total: u64 = 0;
    let mut used = 0;
    for i in (0..cnt).filter(|&i| usable(i)) {
        let w = weight(i);
        if w == 0 {
            weighted = false;
            break;
        }
        total += u64::from(w);
        used += 1;
        if used >= to_use {
            break;
        }
    }
    let chunk = if weighted && total != 0 {
        f64::from(u32::MAX) / total as f64
    } else {
        weighted = false;
        f64::from(u32::MAX) / to_use as f64
    };
    let start_at = hash_name(key, true) as usize % cnt;
    let mut start: u32 = 0;
    let mut used = 0;
    for real in 0..cnt {
        let i = (real + start_at) % cnt;
        if !usable(i) {
            continue;
        }
        let size = if weighted {
            match weight(i) {
                0 => continue,
                w => (chunk * f64::from(w)) as u32,
            }
        } else {
            chunk as u32
        };
        used += 1;
        let stop = if used >= to_use {
            u32::MAX
        } else {
            start.wrapping_add(size).wrapping_sub(1)
        };
        layout.set(pos(i), Range { start, stop });
        if used >= to_use {
            break;
        }
        start = start.wrapping_add(size);
    }
    // Participants left without a range (spread) hold the zero range glusterfs resets them
    // to.
    for i in (0..cnt).filter(|&i| usable(i)) {
        if layout.range(pos(i)).is_none() {
            layout.set(pos(i), Range::default());
        }
    }
    layout
}

/// What a subvolume said about a directory's layout.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Disk {
    /// Not asked (the subvolume is not in the layout).
    #[default]
    Absent,
    /// Its xattr: commit hash, type and range.
    Range(u32, u32, Range),
    /// The directory is there without a layout xattr (glusterfs's `err = -1`), or missing
    /// (ENOENT/ESTALE).
    Missing,
    /// The subvolume is down (ENOTCONN).
    Down,
    /// Any other error.
    Other,
}

/// `dht_layout_anomalies` over a directory's xattrs (sorted by start, as
/// `dht_layout_normalize` sorts them first).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Anomalies {
    /// Gaps in the hash space (a layout that no subvolume holds counts one).
    pub holes: u32,
    /// Overlapping ranges.
    pub overlaps: u32,
    /// Subvolumes without the directory or its xattr.
    pub missing: u32,
    /// Subvolumes down.
    pub down: u32,
}

/// The anomalies of the disk layouts `disk` (one per position).
pub fn anomalies(disk: &[Disk]) -> Anomalies {
    let mut idx: heapless::Vec<usize, SUBVOLS_MAX> = (0..disk.len().min(SUBVOLS_MAX)).collect();
    let range = |k: usize| match disk.get(k) {
        Some(Disk::Range(_, _, r)) => *r,
        _ => Range::default(),
    };
    // Entries without a range sort as (0, 0): first, as upstream's comparator puts them.
    idx.sort_unstable_by_key(|&k| (range(k).start, range(k).stop, k));
    let mut a = Anomalies::default();
    let first = idx.first().map_or(0, |&k| range(k).start);
    let last_stop = first.wrapping_sub(1);
    let mut prev_stop = last_stop;
    let mut virgin = true;
    for &k in &idx {
        let r = match disk.get(k) {
            Some(Disk::Range(_, _, r)) if r.start == r.stop => continue,
            Some(Disk::Range(_, _, r)) => *r,
            Some(Disk::Missing) => {
                a.missing += 1;
                continue;
            }
            Some(Disk::Down) => {
                a.down += 1;
                continue;
            }
            _ => continue,
        };
        virgin = false;
        let next = prev_stop.wrapping_add(1);
        if next < r.start {
            a.holes += 1;
        }
        if next > r.start {
            a.overlaps += 1;
        }
        prev_stop = r.stop;
    }
    if last_stop != prev_stop || virgin {
        a.holes += 1;
    }
    a
}

/// The in-memory layout of what the subvolumes hold (`dht_layout_merge`): their ranges and
/// the commit hash (the shared one, [`HASH_INVALID`] when they differ).
pub fn merge(disk: &[Disk]) -> Layout {
    let mut l = Layout::empty(disk.len());
    for (k, d) in disk.iter().enumerate() {
        if let Disk::Range(commit, ty, r) = *d {
            l.set(k, r);
            l.hash_type = ty;
            if l.commit == 0 {
                l.commit = commit;
            } else if l.commit != commit {
                l.commit = HASH_INVALID;
            }
        }
    }
    l
}

#[cfg(test)]
mod tests {
    use super::*;

    const THIRD: u32 = 0x5555_5555;

    /// translators.md §5.3 (verified on 3 bricks `vol-locks-0/1/2`): `/` starts at `-1`,
    /// `/dir1` at `-0`, `/dir2` at `-1`.
    #[test]
    fn three_subvolume_layouts_match_the_observed_ones() {
        let root = layout_of(b"/", 3);
        assert_eq!(
            root.range(1),
            Some(Range {
                start: 0,
                stop: THIRD - 1
            })
        );
        assert_eq!(
            root.range(2),
            Some(Range {
                start: THIRD,
                stop: 2 * THIRD - 1
            })
        );
        assert_eq!(
            root.range(0),
            Some(Range {
                start: 2 * THIRD,
                stop: u32::MAX
            })
        );
        assert_eq!(layout_of(b"/dir1", 3).range(0).map(|r| r.start), Some(0));
        assert_eq!(layout_of(b"/dir2", 3).range(1).map(|r| r.start), Some(0));
        assert_eq!(
            root.xattr(0),
            Some([0, 0, 0, 0, 0, 0, 0, 0, 0xaa, 0xaa, 0xaa, 0xaa, 0xff, 0xff, 0xff, 0xff])
        );
    }

    #[test]
    fn xattrs_round_trip_and_bad_ones_are_refused() {
        let r = Range { start: 7, stop: 9 };
        assert_eq!(decode(&encode(1, 0, r)), Some((1, 0, r)));
        assert_eq!(decode(&encode(1, 2, r)), None);
        assert_eq!(decode(&[0; 15]), None);
    }

    #[test]
    fn rsync_names_hash_as_their_final_name() {
        assert_eq!(rsync_munge(b".file.txt.Ab12Cd"), b"file.txt");
        assert_eq!(rsync_munge(b".nodot"), b".nodot");
        assert_eq!(rsync_munge(b"..x"), b"..x");
        assert_eq!(rsync_munge(b".a.b"), b"a");
        assert_eq!(rsync_munge(b".a."), b".a.");
        assert_eq!(rsync_munge(b"a.b.c"), b"a.b.c");
    }

    #[test]
    fn a_fresh_directory_is_one_hole_and_a_full_layout_none() {
        let none = [Disk::Missing; 3];
        assert_eq!(
            anomalies(&none),
            Anomalies {
                holes: 1,
                missing: 3,
                ..Anomalies::default()
            }
        );
        let l = layout_of(b"/x", 3);
        let disk: [Disk; 3] =
            core::array::from_fn(|k| Disk::Range(0, 0, l.range(k).unwrap_or_default()));
        assert_eq!(anomalies(&disk), Anomalies::default());
        let mut gap = disk;
        gap[1] = Disk::Missing;
        assert_eq!(anomalies(&gap).holes, 1);
        let mut over = disk;
        over[1] = Disk::Range(
            0,
            0,
            Range {
                start: 0,
                stop: u32::MAX,
            },
        );
        assert!(anomalies(&over).overlaps >= 1);
        assert_eq!(merge(&disk).commit, 0);
        let mut mixed = disk;
        mixed[2] = Disk::Range(1, 0, l.range(2).unwrap_or_default());
        assert_eq!(merge(&mixed).commit, HASH_INVALID);
    }

    #[test]
    fn weights_spread_and_unusable_subvolumes() {
        let order = [0u8, 1, 2, 3];
        // Equal weights give the same ranges as none, for these sizes.
        let w = [258_020u32; 4];
        let a = Assign {
            order: &order,
            usable: 0b1111,
            weights: Some(&w),
            spread: 0,
            commit: 0,
        };
        assert_eq!(assign(b"/", &a), layout_of(b"/", 4));
        // A brick twice the size gets twice the range.
        let w2 = [100, 200, 100, 100];
        let l = assign(
            b"/",
            &Assign {
                weights: Some(&w2),
                ..a
            },
        );
        let width = |k: usize| l.range(k).map(|r| r.stop.wrapping_sub(r.start));
        assert!(width(1) > width(0).map(|x| x + x / 2));
        // Down position 3: three ranges cover everything; spread 2: two do.
        let l = assign(
            b"/",
            &Assign {
                usable: 0b0111,
                ..a
            },
        );
        assert_eq!(l.range(3), None);
        assert_eq!(anomalies(&disk_of(&l)).holes, 0);
        let l = assign(b"/", &Assign { spread: 2, ..a });
        let zero = (0..4)
            .filter(|&k| l.range(k) == Some(Range::default()))
            .count();
        assert_eq!(zero, 2);
        assert_eq!(anomalies(&disk_of(&l)).holes, 0);
    }

    fn disk_of(l: &Layout) -> [Disk; 4] {
        core::array::from_fn(|k| match l.range(k) {
            Some(r) => Disk::Range(0, 0, r),
            None => Disk::Down,
        })
    }

    #[test]
    fn chunks_count_whole_mebibytes_rounding_up() {
        let st = Statvfs {
            bsize: 4096,
            blocks: 66_053_021,
            ..Statvfs::default()
        };
        assert_eq!(chunks(&st), 258_020);
        assert_eq!(chunks(&Statvfs::default()), 0);
    }
}
