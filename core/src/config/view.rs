//! Read-only views of a tree: plain slices, so the writer and lookups are compiled once for every
//! storage type (heapless's `View` idea).

use super::store::{Data, Idx, NodeRec, ValueRec, NIL};

/// Identifies a node of one tree. [`NodeId::ROOT`] is the invisible parent of the top level.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct NodeId(pub(crate) Idx);

impl NodeId {
    /// The parent of the top-level nodes.
    pub const ROOT: NodeId = NodeId(0);
}

/// Per-value writer flags (libdevmapper's `format_flags`; config-tree.md §2.1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Flags(pub u32);

impl Flags {
    /// Write a single value in brackets.
    pub const ARRAY: Flags = Flags(0x1);
    /// `key = value`, `[ 1, 2 ]`, `[ ]`.
    pub const EXTRA_SPACES: Flags = Flags(0x2);
    /// Integers as `0` + unsigned octal.
    pub const INT_OCTAL: Flags = Flags(0x1_0000);
    /// Strings without quotes (same bit as `INT_OCTAL`: the high half is per type).
    pub const STRING_NO_QUOTES: Flags = Flags(0x1_0000);

    /// Whether every bit of `other` is set.
    pub const fn contains(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }
}

impl core::ops::BitOr for Flags {
    type Output = Flags;
    fn bitor(self, rhs: Flags) -> Flags {
        Flags(self.0 | rhs.0)
    }
}

/// One scalar of a value list.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Value<'t> {
    /// Signed 64-bit integer.
    Int(i64),
    /// 32-bit float (libdevmapper stores `float`).
    Float(f32),
    /// Byte string (the format does not promise UTF-8).
    Str(&'t [u8]),
    /// The single value of `key = []`.
    EmptyArray,
}

impl<'t> Value<'t> {
    /// The string, if this is a string.
    pub fn as_bytes(&self) -> Option<&'t [u8]> {
        match *self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }
    /// The integer, if this is an integer.
    pub fn as_int(&self) -> Option<i64> {
        match *self {
            Value::Int(i) => Some(i),
            _ => None,
        }
    }
}

/// A tree's arenas as slices.
#[derive(Clone, Copy)]
pub struct TreeView<'t> {
    pub(crate) src: &'t [u8],
    pub(crate) nodes: &'t [NodeRec],
    pub(crate) values: &'t [ValueRec],
    pub(crate) bytes: &'t [u8],
}

impl<'t> TreeView<'t> {
    /// The first top-level node (`cft->root`), `None` for an empty tree.
    pub fn first(&self) -> Option<NodeRef<'t>> {
        self.node_at(self.nodes.first()?.first_child)
    }

    /// The top-level nodes in order.
    pub fn top_level(&self) -> Siblings<'t> {
        Siblings { next: self.first() }
    }

    /// Whether the tree has no nodes.
    pub fn is_empty(&self) -> bool {
        self.first().is_none()
    }

    /// The node with this id (`NodeId::ROOT` gives the root, whose key is empty).
    pub fn node(&self, id: NodeId) -> Option<NodeRef<'t>> {
        self.node_at(id.0)
    }

    pub(crate) fn node_at(&self, i: Idx) -> Option<NodeRef<'t>> {
        let rec = self.nodes.get(i as usize)?;
        Some(NodeRef {
            view: *self,
            id: i,
            rec,
        })
    }

    fn value_at(&self, i: Idx) -> Option<ValueRef<'t>> {
        let rec = self.values.get(i as usize)?;
        let value = match rec.data {
            Data::Int(v) => Value::Int(v),
            Data::Float(v) => Value::Float(v),
            Data::Str(s) => Value::Str(s.get(self.src, self.bytes)),
            Data::EmptyArray => Value::EmptyArray,
        };
        Some(ValueRef {
            value,
            flags: Flags(rec.flags),
            next: rec.next,
            view: *self,
        })
    }
}

impl core::fmt::Debug for TreeView<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_list().entries(self.top_level()).finish()
    }
}

/// A node of a tree.
#[derive(Clone, Copy)]
pub struct NodeRef<'t> {
    view: TreeView<'t>,
    id: Idx,
    rec: &'t NodeRec,
}

impl<'t> NodeRef<'t> {
    /// This node's id, for the builder.
    pub fn id(&self) -> NodeId {
        NodeId(self.id)
    }

    /// The key (one path segment; never contains `/` when parsed).
    pub fn key(&self) -> &'t [u8] {
        self.rec.key.get(self.view.src, self.view.bytes)
    }

    /// The key as UTF-8, if it is.
    pub fn key_str(&self) -> Option<&'t str> {
        core::str::from_utf8(self.key()).ok()
    }

    /// Whether this node is a section (has no value). A merged node with both a value and
    /// children is a value node, as libdevmapper treats it.
    pub fn is_section(&self) -> bool {
        self.rec.value == NIL
    }

    /// The value list (empty for a section).
    pub fn values(&self) -> Values<'t> {
        Values {
            next: self.view.value_at(self.rec.value),
        }
    }

    /// The first value, which is what every scalar getter looks at.
    pub fn value(&self) -> Option<Value<'t>> {
        self.view.value_at(self.rec.value).map(|v| v.value)
    }

    /// The children in order.
    pub fn children(&self) -> Siblings<'t> {
        Siblings {
            next: self.view.node_at(self.rec.first_child),
        }
    }

    /// The next sibling.
    pub fn next_sibling(&self) -> Option<NodeRef<'t>> {
        self.view.node_at(self.rec.next)
    }

    /// The parent; `None` for top-level nodes.
    pub fn parent(&self) -> Option<NodeRef<'t>> {
        match self.rec.parent {
            0 | NIL => None,
            p => self.view.node_at(p),
        }
    }

    /// The whole tree this node belongs to.
    pub fn tree(&self) -> TreeView<'t> {
        self.view
    }
}

impl core::fmt::Debug for NodeRef<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let key = core::str::from_utf8(self.key()).unwrap_or("<bytes>");
        if self.is_section() {
            f.debug_map().entry(&key, &ChildList(*self)).finish()
        } else {
            f.debug_map().entry(&key, &ValueList(*self)).finish()
        }
    }
}

struct ChildList<'t>(NodeRef<'t>);
impl core::fmt::Debug for ChildList<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_list().entries(self.0.children()).finish()
    }
}
struct ValueList<'t>(NodeRef<'t>);
impl core::fmt::Debug for ValueList<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_list()
            .entries(self.0.values().map(|v| v.value))
            .finish()
    }
}

/// A node and the siblings after it; also where upstream-style lookups start.
#[derive(Clone, Copy, Debug)]
pub struct Siblings<'t> {
    pub(crate) next: Option<NodeRef<'t>>,
}

impl<'t> Iterator for Siblings<'t> {
    type Item = NodeRef<'t>;
    fn next(&mut self) -> Option<NodeRef<'t>> {
        let n = self.next?;
        self.next = n.next_sibling();
        Some(n)
    }
}

/// One element of a value list with its writer flags.
#[derive(Clone, Copy)]
pub struct ValueRef<'t> {
    /// The scalar.
    pub value: Value<'t>,
    /// Its writer flags.
    pub flags: Flags,
    next: Idx,
    view: TreeView<'t>,
}

impl core::fmt::Debug for ValueRef<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{:?}/{:#x}", self.value, self.flags.0)
    }
}

/// A node's value list.
#[derive(Clone, Copy, Debug)]
pub struct Values<'t> {
    next: Option<ValueRef<'t>>,
}

impl<'t> Iterator for Values<'t> {
    type Item = ValueRef<'t>;
    fn next(&mut self) -> Option<ValueRef<'t>> {
        let v = self.next?;
        self.next = v.view.value_at(v.next);
        Some(v)
    }
}
