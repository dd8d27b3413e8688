//! Where a tree's records live: fixed capacity ([`Fixed`]) or growable ([`Growable`], `alloc`).
//!
//! A tree is three flat arenas (nodes, values, string bytes) linked by `u32` indices, so no part of
//! the core ever recurses over a tree and a hostile input cannot blow the stack.

use super::error::{Arena, Full};

/// Index of a record in an arena; `NIL` means "none".
pub(crate) type Idx = u32;
pub(crate) const NIL: Idx = u32::MAX;

/// Bytes of a key or string: either a range of the parsed input (borrowed, zero-copy) or a range of
/// the tree's own byte arena (strings that needed unescaping, or were built or decoded).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Span {
    off: u32,
    len: u32,
}

const IN_ARENA: u32 = 1 << 31;

impl Span {
    pub(crate) const EMPTY: Span = Span { off: 0, len: 0 };

    pub(crate) fn input(off: usize, len: usize) -> Span {
        // The parser rejects inputs of 2 GiB or more, so both fit.
        Span {
            off: off as u32,
            len: len as u32,
        }
    }

    pub(crate) fn arena(off: usize, len: usize) -> Span {
        Span {
            off: off as u32 | IN_ARENA,
            len: len as u32,
        }
    }

    pub(crate) fn is_arena(self) -> bool {
        self.off & IN_ARENA != 0
    }

    /// The part `pos..pos + len` of this span (same place: input or arena).
    pub(crate) fn sub(self, pos: usize, len: usize) -> Span {
        Span {
            off: self.off + pos as u32,
            len: len as u32,
        }
    }

    pub(crate) fn len(self) -> usize {
        self.len as usize
    }

    /// Resolves the span; an out-of-range span (impossible by construction) reads as empty.
    pub(crate) fn get<'t>(self, src: &'t [u8], arena: &'t [u8]) -> &'t [u8] {
        let (base, off) = if self.off & IN_ARENA != 0 {
            (arena, (self.off & !IN_ARENA) as usize)
        } else {
            (src, self.off as usize)
        };
        base.get(off..off + self.len as usize).unwrap_or(&[])
    }
}

/// One node: a key plus either values, children, or (after a dup-check merge) both.
#[derive(Clone, Copy, Debug)]
pub struct NodeRec {
    pub(crate) key: Span,
    pub(crate) parent: Idx,
    pub(crate) first_child: Idx,
    pub(crate) last_child: Idx,
    pub(crate) next: Idx,
    pub(crate) value: Idx,
}

impl NodeRec {
    pub(crate) fn new(key: Span, parent: Idx) -> Self {
        NodeRec {
            key,
            parent,
            first_child: NIL,
            last_child: NIL,
            next: NIL,
            value: NIL,
        }
    }
}

/// A value's payload. FLOAT is 32-bit because libdevmapper stores `float`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Data {
    Int(i64),
    Float(f32),
    Str(Span),
    EmptyArray,
}

/// One element of a value list.
#[derive(Clone, Copy, Debug)]
pub struct ValueRec {
    pub(crate) data: Data,
    pub(crate) flags: u32,
    pub(crate) next: Idx,
}

/// The three arenas behind a tree, plus the scratch table the dup-check parser uses to find a
/// sibling by key in O(1) (libdevmapper scans the siblings, which is quadratic).
///
/// Implemented by [`Fixed`] and, with `alloc`, [`Growable`]. The methods are plumbing for the
/// parser and builder; use the [`Tree`](super::Tree) API instead.
pub trait Storage {
    /// All node records.
    fn nodes(&self) -> &[NodeRec];
    /// All node records, mutably.
    fn nodes_mut(&mut self) -> &mut [NodeRec];
    /// Appends a node record; gives it back when full.
    fn push_node(&mut self, n: NodeRec) -> Result<(), NodeRec>;
    /// All value records.
    fn values(&self) -> &[ValueRec];
    /// All value records, mutably.
    fn values_mut(&mut self) -> &mut [ValueRec];
    /// Appends a value record; gives it back when full.
    fn push_value(&mut self, v: ValueRec) -> Result<(), ValueRec>;
    /// The byte arena.
    fn bytes(&self) -> &[u8];
    /// Appends to the byte arena; nothing is appended when it does not fit.
    fn push_bytes(&mut self, b: &[u8]) -> Result<(), Full>;
    /// The sibling index's slots (may be empty: then the parser scans siblings).
    fn index(&self) -> &[Idx];
    /// The sibling index's slots, mutably.
    fn index_mut(&mut self) -> &mut [Idx];
    /// Sets every index slot to `NIL`, growing the index to `slots` slots if it can.
    fn reset_index(&mut self, slots: usize);
    /// Capacity of an arena, `None` when it grows.
    fn capacity(&self, arena: Arena) -> Option<usize>;
    /// Drops every record.
    fn clear(&mut self);
    /// A hint that about this many more nodes and values are coming (growable storage reserves
    /// them in one go instead of reallocating along the way).
    fn reserve(&mut self, _nodes: usize, _values: usize) {}
}

/// Storage with capacity fixed at compile time: `NODES` nodes, `VALUES` values, `BYTES` bytes of
/// strings that could not borrow the input. No allocator involved.
///
/// The dup-check index has twice `NODES` slots, so it is never more than half full.
pub struct Fixed<const NODES: usize, const VALUES: usize, const BYTES: usize> {
    nodes: heapless::Vec<NodeRec, NODES>,
    values: heapless::Vec<ValueRec, VALUES>,
    bytes: heapless::Vec<u8, BYTES>,
    index: [[Idx; 2]; NODES],
}

impl<const N: usize, const V: usize, const B: usize> Fixed<N, V, B> {
    /// Empty storage.
    pub const fn new() -> Self {
        Fixed {
            nodes: heapless::Vec::new(),
            values: heapless::Vec::new(),
            bytes: heapless::Vec::new(),
            index: [[NIL; 2]; N],
        }
    }
}

impl<const N: usize, const V: usize, const B: usize> Default for Fixed<N, V, B> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize, const V: usize, const B: usize> Storage for Fixed<N, V, B> {
    fn nodes(&self) -> &[NodeRec] {
        &self.nodes
    }
    fn nodes_mut(&mut self) -> &mut [NodeRec] {
        &mut self.nodes
    }
    fn push_node(&mut self, n: NodeRec) -> Result<(), NodeRec> {
        self.nodes.push(n)
    }
    fn values(&self) -> &[ValueRec] {
        &self.values
    }
    fn values_mut(&mut self) -> &mut [ValueRec] {
        &mut self.values
    }
    fn push_value(&mut self, v: ValueRec) -> Result<(), ValueRec> {
        self.values.push(v)
    }
    fn bytes(&self) -> &[u8] {
        &self.bytes
    }
    fn push_bytes(&mut self, b: &[u8]) -> Result<(), Full> {
        self.bytes
            .extend_from_slice(b)
            .map_err(|_| Full(Arena::Bytes))
    }
    fn index(&self) -> &[Idx] {
        self.index.as_flattened()
    }
    fn index_mut(&mut self) -> &mut [Idx] {
        self.index.as_flattened_mut()
    }
    fn reset_index(&mut self, _slots: usize) {
        self.index.as_flattened_mut().fill(NIL);
    }
    fn capacity(&self, arena: Arena) -> Option<usize> {
        Some(match arena {
            Arena::Nodes => N,
            Arena::Values => V,
            Arena::Bytes => B,
        })
    }
    fn clear(&mut self) {
        self.nodes.clear();
        self.values.clear();
        self.bytes.clear();
    }
}

/// Storage that grows on the heap.
#[cfg(feature = "alloc")]
#[derive(Default, Clone)]
pub struct Growable {
    nodes: alloc::vec::Vec<NodeRec>,
    values: alloc::vec::Vec<ValueRec>,
    bytes: alloc::vec::Vec<u8>,
    index: alloc::vec::Vec<Idx>,
}

#[cfg(feature = "alloc")]
impl Growable {
    /// Empty storage.
    pub const fn new() -> Self {
        Growable {
            nodes: alloc::vec::Vec::new(),
            values: alloc::vec::Vec::new(),
            bytes: alloc::vec::Vec::new(),
            index: alloc::vec::Vec::new(),
        }
    }
}

#[cfg(feature = "alloc")]
impl Storage for Growable {
    fn nodes(&self) -> &[NodeRec] {
        &self.nodes
    }
    fn nodes_mut(&mut self) -> &mut [NodeRec] {
        &mut self.nodes
    }
    #[inline]
    fn push_node(&mut self, n: NodeRec) -> Result<(), NodeRec> {
        self.nodes.push(n);
        Ok(())
    }
    fn values(&self) -> &[ValueRec] {
        &self.values
    }
    fn values_mut(&mut self) -> &mut [ValueRec] {
        &mut self.values
    }
    #[inline]
    fn push_value(&mut self, v: ValueRec) -> Result<(), ValueRec> {
        self.values.push(v);
        Ok(())
    }
    fn bytes(&self) -> &[u8] {
        &self.bytes
    }
    fn push_bytes(&mut self, b: &[u8]) -> Result<(), Full> {
        self.bytes.extend_from_slice(b);
        Ok(())
    }
    fn index(&self) -> &[Idx] {
        &self.index
    }
    fn index_mut(&mut self) -> &mut [Idx] {
        &mut self.index
    }
    fn reset_index(&mut self, slots: usize) {
        self.index.clear();
        self.index.resize(slots, NIL);
    }
    fn capacity(&self, _: Arena) -> Option<usize> {
        None
    }
    fn clear(&mut self) {
        self.nodes.clear();
        self.values.clear();
        self.bytes.clear();
        self.index.clear();
    }
    fn reserve(&mut self, nodes: usize, values: usize) {
        self.nodes.reserve(nodes);
        self.values.reserve(values);
    }
}
