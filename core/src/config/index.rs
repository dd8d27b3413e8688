//! The dup-check parser's sibling index: open addressing over (parent, key) → node, so merging
//! duplicate keys costs O(1) per key instead of libdevmapper's scan of all siblings.

use super::error::Arena;
use super::store::{Idx, Span, Storage, NIL};

/// Initial table size for growable storage, from the parser's estimate of nodes to come.
pub(crate) fn initial_slots(estimate: usize) -> usize {
    (estimate * 2).next_power_of_two().max(64)
}

/// The home slot of (parent, key) in a table of `slots` slots.
fn home(parent: Idx, key: &[u8], slots: usize) -> usize {
    // Word-at-a-time multiply-rotate (FxHash-like): keys are short and this runs once per key.
    const K: u64 = 0x517c_c1b7_2722_0a95;
    let mut h = u64::from(parent).wrapping_mul(K);
    let mut chunks = key.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        h = (h.rotate_left(5) ^ u64::from_le_bytes(w)).wrapping_mul(K);
    }
    let mut w = [0u8; 8];
    w[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
    h = (h.rotate_left(5) ^ u64::from_le_bytes(w) ^ key.len() as u64).wrapping_mul(K);
    h ^= h >> 32;
    // Lemire's multiply-shift maps the hash onto any table size without a division.
    ((u128::from(h) * slots as u128) >> 64) as usize
}

fn step(i: usize, slots: usize) -> usize {
    if i + 1 == slots {
        0
    } else {
        i + 1
    }
}

fn key_of<'a, S: Storage>(st: &'a S, src: &'a [u8], n: Idx) -> (Idx, &'a [u8]) {
    let rec = &st.nodes()[n as usize];
    (rec.parent, rec.key.get(src, st.bytes()))
}

/// The node under `parent` whose key is `key`, if any.
pub(crate) fn find<S: Storage>(st: &S, src: &[u8], parent: Idx, key: Span) -> Option<Idx> {
    let want = key.get(src, st.bytes());
    let slots = st.index().len();
    if slots == 0 {
        return scan(st, src, parent, want);
    }
    let mut i = home(parent, want, slots);
    loop {
        let n = st.index()[i];
        if n == NIL {
            return None;
        }
        let (p, k) = key_of(st, src, n);
        if p == parent && k == want {
            return Some(n);
        }
        i = step(i, slots);
    }
}

fn scan<S: Storage>(st: &S, src: &[u8], parent: Idx, want: &[u8]) -> Option<Idx> {
    let mut c = st.nodes()[parent as usize].first_child;
    while c != NIL {
        if key_of(st, src, c).1 == want {
            return Some(c);
        }
        c = st.nodes()[c as usize].next;
    }
    None
}

/// Records node `n`, growing (and rehashing) the table past half full when the storage can grow.
pub(crate) fn insert<S: Storage>(st: &mut S, src: &[u8], n: Idx) {
    let slots = st.index().len();
    if slots == 0 {
        return;
    }
    // Node 0 is the root, never indexed; nodes 1..=n are.
    let growable = st.capacity(Arena::Nodes).is_none();
    if growable && (n as usize) * 2 > slots {
        st.reset_index(slots * 2);
        for m in 1..n {
            place(st, src, m);
        }
    }
    place(st, src, n);
}

fn place<S: Storage>(st: &mut S, src: &[u8], n: Idx) {
    let slots = st.index().len();
    let (p, k) = key_of(st, src, n);
    let mut i = home(p, k, slots);
    // Fixed storage has twice as many slots as nodes, so a free slot exists.
    for _ in 0..slots {
        let slot = &mut st.index_mut()[i];
        if *slot == NIL {
            *slot = n;
            return;
        }
        i = step(i, slots);
    }
}
