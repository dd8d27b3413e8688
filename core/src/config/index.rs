//! The dup-check parser's sibling index: open addressing over (parent, key) → node, so merging
//! duplicate keys costs O(1) per key instead of libdevmapper's scan of all siblings.

use super::error::Arena;
use super::store::{Idx, Span, Storage, NIL};

pub(crate) const INITIAL_SLOTS: usize = 64;

fn hash(parent: Idx, key: &[u8]) -> usize {
    // FNV-1a; keys are short and this runs once per key.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ u64::from(parent);
    for &b in key {
        h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    (h ^ (h >> 29)) as usize
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
    let mut i = hash(parent, want) % slots;
    loop {
        let n = st.index()[i];
        if n == NIL {
            return None;
        }
        let (p, k) = key_of(st, src, n);
        if p == parent && k == want {
            return Some(n);
        }
        i = (i + 1) % slots;
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
    let mut i = hash(p, k) % slots;
    // Fixed storage has as many slots as nodes and the root is never placed, so a free slot exists.
    for _ in 0..slots {
        let slot = &mut st.index_mut()[i];
        if *slot == NIL {
            *slot = n;
            return;
        }
        i = (i + 1) % slots;
    }
}
