//! What distribute remembers between fops, in fixed tables (glusterfs keeps it in inode and fd
//! contexts): each directory's layout, the subvolume holding each file, and where each open
//! fd lives. The caches forget their least recently used entry when full, so a miss costs a
//! lookup, never a wrong answer; the fd table refuses a new fd instead.

use heapless::Vec;

use super::super::args::Fd;
use super::super::iatt::Gfid;
use super::layout::Layout;

/// Directory layouts remembered.
pub const LAYOUTS: usize = 12;
/// Files whose subvolume is remembered.
pub const FILES: usize = 64;
/// Open fds.
pub const FDS: usize = 48;

/// A small map with least-recently-used eviction.
#[derive(Clone, Debug)]
pub struct Lru<K, V, const N: usize> {
    v: Vec<(K, V), N>,
}

impl<K, V, const N: usize> Default for Lru<K, V, N> {
    fn default() -> Self {
        Lru { v: Vec::new() }
    }
}

impl<K: PartialEq + Copy, V: Copy, const N: usize> Lru<K, V, N> {
    /// The value for `k`, marking it recently used.
    pub fn get(&mut self, k: &K) -> Option<V> {
        let i = self.v.iter().position(|e| e.0 == *k)?;
        let e = self.v.remove(i);
        // Room was just made.
        let _ = self.v.push(e);
        Some(e.1)
    }

    /// The value for `k`, without touching the order.
    pub fn peek(&self, k: &K) -> Option<V> {
        self.v.iter().find(|e| e.0 == *k).map(|e| e.1)
    }

    /// Sets `k`, forgetting the least recently used entry when full.
    pub fn put(&mut self, k: K, v: V) {
        self.remove(&k);
        if self.v.is_full() {
            self.v.remove(0);
        }
        let _ = self.v.push((k, v));
    }

    /// Forgets `k`.
    pub fn remove(&mut self, k: &K) -> Option<V> {
        let i = self.v.iter().position(|e| e.0 == *k)?;
        Some(self.v.remove(i).1)
    }

    /// Whether a new key would evict one.
    pub fn is_full(&self) -> bool {
        self.v.is_full()
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.v.len()
    }

    /// Whether none are held.
    pub fn is_empty(&self) -> bool {
        self.v.is_empty()
    }
}

/// Where an open fd lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum FdTarget {
    /// A file open on one subvolume (its position).
    File(u8),
    /// A directory open on the subvolumes of the mask.
    Dir(u16),
}

/// The tables.
#[derive(Clone, Debug, Default)]
pub struct Tables {
    /// Directory gfid → layout.
    pub layouts: Lru<Gfid, Layout, LAYOUTS>,
    /// File gfid → the position of the subvolume with its data.
    pub files: Lru<Gfid, u8, FILES>,
    /// Open fds.
    pub fds: Lru<Fd, FdTarget, FDS>,
}
