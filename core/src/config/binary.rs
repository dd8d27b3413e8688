//! The compact binary form: serde, encoded with postcard.
//!
//! The tree is flattened so neither encoding nor decoding recurses:
//!
//! ```text
//! Tree  = (version: u8 = 1, nodes: seq<Node>)        nodes in document order (preorder)
//! Node  = (depth: u32, key: bytes, values: seq<Val>)  depth 0 = top level; no values = section
//! Val   = (scalar: enum { Int(i64), Float(f32), Str(bytes), EmptyArray }, flags: u32)
//! ```
//!
//! A node's depth is at most one more than the previous node's. Decoding copies strings into the
//! tree, so the encoded bytes may be dropped afterwards.

use core::fmt;

use serde::de::{self, DeserializeSeed, SeqAccess, Visitor};
use serde::ser::{SerializeSeq, SerializeTuple};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::parse::MAX_DEPTH;
use super::store::Storage;
use super::tree::Tree;
use super::view::{Flags, NodeId, NodeRef, TreeView, Value};

/// Version byte at the start of the encoding.
pub const FORMAT_VERSION: u8 = 1;

/// A scalar as it is encoded.
#[derive(Serialize, Deserialize)]
enum Scalar<'a> {
    Int(i64),
    Float(f32),
    Str(#[serde(borrow, with = "bytes")] &'a [u8]),
    EmptyArray,
}

mod bytes {
    use serde::{Deserialize, Deserializer, Serializer};
    pub fn serialize<S: Serializer>(b: &&[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(b)
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<&'de [u8], D::Error> {
        <&[u8]>::deserialize(d)
    }
}

impl Serialize for TreeView<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut t = s.serialize_tuple(2)?;
        t.serialize_element(&FORMAT_VERSION)?;
        t.serialize_element(&Nodes(*self))?;
        t.end()
    }
}

impl<S: Storage> Serialize for Tree<'_, S> {
    fn serialize<Se: Serializer>(&self, s: Se) -> Result<Se::Ok, Se::Error> {
        self.view().serialize(s)
    }
}

struct Nodes<'t>(TreeView<'t>);

impl Serialize for Nodes<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.preorder().count()))?;
        for (depth, n) in self.0.preorder() {
            seq.serialize_element(&(depth, ByteStr(n.key()), ValuesOf(n)))?;
        }
        seq.end()
    }
}

struct ByteStr<'a>(&'a [u8]);
impl Serialize for ByteStr<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(self.0)
    }
}

struct ValuesOf<'t>(NodeRef<'t>);
impl Serialize for ValuesOf<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.values().count()))?;
        for v in self.0.values() {
            let scalar = match v.value {
                Value::Int(i) => Scalar::Int(i),
                Value::Float(f) => Scalar::Float(f),
                Value::Str(b) => Scalar::Str(b),
                Value::EmptyArray => Scalar::EmptyArray,
            };
            seq.serialize_element(&(scalar, v.flags.0))?;
        }
        seq.end()
    }
}

/// Decodes into an existing tree (replacing its contents); the seed form of `Deserialize`, for
/// storage the caller placed.
pub struct Into<'x, 'a, S: Storage>(pub &'x mut Tree<'a, S>);

impl<'de, S: Storage> DeserializeSeed<'de> for Into<'_, '_, S> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        self.0.clear();
        d.deserialize_tuple(2, TreeVisitor(self.0))
    }
}

struct TreeVisitor<'x, 'a, S: Storage>(&'x mut Tree<'a, S>);

impl<'de, S: Storage> Visitor<'de> for TreeVisitor<'_, '_, S> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a keelson config tree (version, nodes)")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let version: u8 = seq
            .next_element()?
            .ok_or_else(|| de::Error::invalid_length(0, &self))?;
        if version != FORMAT_VERSION {
            return Err(de::Error::custom("unsupported config tree format version"));
        }
        seq.next_element_seed(NodesSeed(self.0))?
            .ok_or_else(|| de::Error::invalid_length(1, &"a keelson config tree (version, nodes)"))
    }
}

struct NodesSeed<'x, 'a, S: Storage>(&'x mut Tree<'a, S>);

impl<'de, S: Storage> DeserializeSeed<'de> for NodesSeed<'_, '_, S> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de, S: Storage> Visitor<'de> for NodesSeed<'_, '_, S> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a sequence of nodes")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let tree = self.0;
        // The last node decoded and its depth; its ancestors are found through parent links.
        let mut last: Option<(u32, NodeId)> = None;
        while let Some(()) = seq.next_element_seed(NodeSeed {
            tree: &mut *tree,
            last: &mut last,
        })? {}
        Ok(())
    }
}

struct NodeSeed<'x, 'y, 'a, S: Storage> {
    tree: &'x mut Tree<'a, S>,
    last: &'y mut Option<(u32, NodeId)>,
}

impl<'de, S: Storage> DeserializeSeed<'de> for NodeSeed<'_, '_, '_, S> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_tuple(3, self)
    }
}

impl<'de, S: Storage> Visitor<'de> for NodeSeed<'_, '_, '_, S> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a node (depth, key, values)")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let depth: u32 = seq
            .next_element()?
            .ok_or_else(|| de::Error::invalid_length(0, &self))?;
        let key: &'de [u8] = seq
            .next_element::<Key<'de>>()?
            .ok_or_else(|| de::Error::invalid_length(1, &self))?
            .0;
        let max = self.last.map_or(0, |(d, _)| d + 1);
        if depth > max || depth >= MAX_DEPTH {
            return Err(de::Error::custom("node depth jumps by more than one level"));
        }
        // The parent is the ancestor of the previous node at `depth - 1`.
        let parent = match *self.last {
            Some((mut d, mut n)) if depth > 0 => {
                while d >= depth {
                    n = self
                        .tree
                        .view()
                        .node(n)
                        .and_then(|r| r.parent())
                        .map_or(NodeId::ROOT, |p| p.id());
                    d -= 1;
                }
                n
            }
            _ => NodeId::ROOT,
        };
        let id = self.tree.add_node(parent, key).map_err(de::Error::custom)?;
        *self.last = Some((depth, id));
        seq.next_element_seed(ValuesSeed {
            tree: self.tree,
            node: id,
        })?
        .ok_or_else(|| de::Error::invalid_length(2, &"a node (depth, key, values)"))
    }
}

struct Key<'de>(&'de [u8]);
impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        <&[u8]>::deserialize(d).map(Key)
    }
}

struct ValuesSeed<'x, 'a, S: Storage> {
    tree: &'x mut Tree<'a, S>,
    node: NodeId,
}

impl<'de, S: Storage> DeserializeSeed<'de> for ValuesSeed<'_, '_, S> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de, S: Storage> Visitor<'de> for ValuesSeed<'_, '_, S> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a sequence of values")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some((scalar, flags)) = seq.next_element::<(Scalar<'de>, u32)>()? {
            let v = match scalar {
                Scalar::Int(i) => Value::Int(i),
                Scalar::Float(f) => Value::Float(f),
                Scalar::Str(b) => Value::Str(b),
                Scalar::EmptyArray => Value::EmptyArray,
            };
            self.tree
                .push_value(self.node, v, Flags(flags))
                .map_err(de::Error::custom)?;
        }
        Ok(())
    }
}

impl<'de, 'a, S: Storage + Default> Deserialize<'de> for Tree<'a, S> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut t = Tree::new(S::default());
        Into(&mut t).deserialize(d)?;
        Ok(t)
    }
}

/// Why a postcard conversion failed.
pub use postcard::Error as PostcardError;

impl<S: Storage> Tree<'_, S> {
    /// Encodes with postcard into `buf`, returning the used part.
    pub fn to_postcard<'b>(&self, buf: &'b mut [u8]) -> Result<&'b mut [u8], PostcardError> {
        postcard::to_slice(&self.view(), buf)
    }

    /// Encodes with postcard into a new vector.
    #[cfg(feature = "alloc")]
    pub fn to_postcard_vec(&self) -> Result<alloc::vec::Vec<u8>, PostcardError> {
        postcard::to_allocvec(&self.view())
    }

    /// Replaces the contents with a postcard encoding (copying its strings). On error the tree is
    /// left empty. Trailing bytes after the encoding are an error.
    pub fn decode_postcard(&mut self, bytes: &[u8]) -> Result<(), PostcardError> {
        let mut de = postcard::Deserializer::from_bytes(bytes);
        let r = Into(&mut *self).deserialize(&mut de).and_then(|()| {
            if de.finalize()?.is_empty() {
                Ok(())
            } else {
                Err(PostcardError::DeserializeBadEncoding)
            }
        });
        if r.is_err() {
            self.clear();
        }
        r
    }
}
