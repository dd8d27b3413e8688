//! [`Tree`]: a config tree in some [`Storage`], parsed from text or built node by node (what
//! libdaemon's `config_make_nodes` and `daemon_request_extend` do).

use super::error::{Arena, Error, Full};
use super::parse::{parse, ParseOptions, Warnings};
use super::store::{Data, Idx, NodeRec, Span, Storage, ValueRec, NIL};
use super::view::{Flags, NodeId, NodeRef, TreeView, Value};

/// A config tree. `'a` is the text it borrows strings from (`'static` when it borrows nothing).
///
/// The same API serves every storage: [`FixedTree`] needs no allocator, [`OwnedTree`] grows.
pub struct Tree<'a, S: Storage> {
    src: &'a [u8],
    store: S,
    warnings: Warnings,
}

/// A tree in fixed, caller-sized storage (no allocator).
pub type FixedTree<'a, const NODES: usize, const VALUES: usize, const BYTES: usize> =
    Tree<'a, super::store::Fixed<NODES, VALUES, BYTES>>;

/// A tree on the heap that owns all its strings.
#[cfg(feature = "alloc")]
pub type OwnedTree = Tree<'static, super::store::Growable>;

impl<'a, S: Storage> Tree<'a, S> {
    /// An empty tree in `store` (whatever `store` held is dropped).
    pub fn new(mut store: S) -> Self {
        store.clear();
        // With no room for even the root, every later operation reports `Full`.
        let _ = store.push_node(NodeRec::new(Span::EMPTY, NIL));
        Tree {
            src: &[],
            store,
            warnings: Warnings::default(),
        }
    }

    /// Parses `src`, replacing the contents. Strings that need no unescaping borrow `src`.
    /// On error the tree is left empty.
    pub fn parse(&mut self, src: &'a [u8], opts: ParseOptions) -> Result<(), Error> {
        self.src = src;
        let r = parse(&mut self.store, src, true, opts);
        self.finish(r)
    }

    /// Parses `src`, copying every string into the tree (so `src` may be dropped).
    pub fn parse_copy(&mut self, src: &[u8], opts: ParseOptions) -> Result<(), Error> {
        self.src = &[];
        let r = parse(&mut self.store, src, false, opts);
        self.finish(r)
    }

    fn finish(&mut self, r: Result<Warnings, Error>) -> Result<(), Error> {
        let r = r.map(|w| self.warnings = w);
        if r.is_err() {
            self.src = &[];
            self.warnings = Warnings::default();
        }
        r
    }

    /// What the last parse warned about.
    pub fn warnings(&self) -> Warnings {
        self.warnings
    }

    /// A read-only view: lookups, iteration, writing.
    pub fn view(&self) -> TreeView<'_> {
        TreeView {
            src: self.src,
            nodes: self.store.nodes(),
            values: self.store.values(),
            bytes: self.store.bytes(),
        }
    }

    /// Drops every node.
    pub fn clear(&mut self) {
        self.store.clear();
        self.src = &[];
        let _ = self.store.push_node(NodeRec::new(Span::EMPTY, NIL));
    }

    fn bytes(&mut self, b: &[u8]) -> Result<Span, Full> {
        let off = self.store.bytes().len();
        self.store.push_bytes(b).map_err(|_| Full(Arena::Bytes))?;
        Ok(Span::arena(off, b.len()))
    }

    fn check(&self, id: NodeId) -> Result<Idx, Full> {
        if (id.0 as usize) < self.store.nodes().len() {
            Ok(id.0)
        } else {
            Err(Full(Arena::Nodes))
        }
    }

    /// Appends a node with `key` (taken verbatim, `/` included) as the last child of `parent`.
    /// It is a section until a value is pushed. An unknown `parent` reports `Full(Nodes)`.
    pub fn add_node(&mut self, parent: NodeId, key: &[u8]) -> Result<NodeId, Full> {
        let parent = self.check(parent)?;
        let key = self.bytes(key)?;
        let id = self.store.nodes().len() as Idx;
        self.store
            .push_node(NodeRec::new(key, parent))
            .map_err(|_| Full(Arena::Nodes))?;
        let nodes = self.store.nodes_mut();
        let last = core::mem::replace(&mut nodes[parent as usize].last_child, id);
        if last == NIL {
            nodes[parent as usize].first_child = id;
        } else {
            nodes[last as usize].next = id;
        }
        Ok(NodeId(id))
    }

    /// Inserts a node with `key` right after `after` (a child of `parent`), or appends it when
    /// `after` is `None`: libdaemon's `chain_node` with a `pre_sib`, which is how
    /// `daemon_request_extend` puts its nodes right after `request`.
    pub fn insert_node(
        &mut self,
        parent: NodeId,
        after: Option<NodeId>,
        key: &[u8],
    ) -> Result<NodeId, Full> {
        let Some(after) = after else {
            return self.add_node(parent, key);
        };
        let (parent, after) = (self.check(parent)?, self.check(after)?);
        if self.store.nodes()[after as usize].parent != parent {
            return Err(Full(Arena::Nodes));
        }
        let key = self.bytes(key)?;
        let id = self.store.nodes().len() as Idx;
        let mut rec = NodeRec::new(key, parent);
        rec.next = self.store.nodes()[after as usize].next;
        self.store.push_node(rec).map_err(|_| Full(Arena::Nodes))?;
        let nodes = self.store.nodes_mut();
        nodes[after as usize].next = id;
        if nodes[parent as usize].last_child == after {
            nodes[parent as usize].last_child = id;
        }
        Ok(NodeId(id))
    }

    /// Unlinks `node` (and its subtree) from its parent (`dm_config_remove_node`). Its records
    /// stay in the arenas until the tree is cleared. Returns whether it was linked.
    pub fn remove(&mut self, node: NodeId) -> bool {
        let Ok(n) = self.check(node) else {
            return false;
        };
        let parent = self.store.nodes()[n as usize].parent;
        if n == 0 || parent == NIL {
            return false;
        }
        let nodes = self.store.nodes_mut();
        let next = nodes[n as usize].next;
        let mut prev = NIL;
        let mut c = nodes[parent as usize].first_child;
        while c != NIL && c != n {
            prev = c;
            c = nodes[c as usize].next;
        }
        if c == NIL {
            return false;
        }
        if prev == NIL {
            nodes[parent as usize].first_child = next;
        } else {
            nodes[prev as usize].next = next;
        }
        if nodes[parent as usize].last_child == n {
            nodes[parent as usize].last_child = prev;
        }
        nodes[n as usize].next = NIL;
        nodes[n as usize].parent = NIL;
        true
    }

    /// Appends a section.
    pub fn add_section(&mut self, parent: NodeId, key: &[u8]) -> Result<NodeId, Full> {
        self.add_node(parent, key)
    }

    /// Appends `key = value`.
    pub fn add_value(
        &mut self,
        parent: NodeId,
        key: &[u8],
        value: Value<'_>,
    ) -> Result<NodeId, Full> {
        let n = self.add_node(parent, key)?;
        self.push_value(n, value, Flags::default())?;
        Ok(n)
    }

    /// Appends `key = [v, …]` (`[]` for an empty slice).
    pub fn add_array(
        &mut self,
        parent: NodeId,
        key: &[u8],
        values: &[Value<'_>],
    ) -> Result<NodeId, Full> {
        let n = self.add_node(parent, key)?;
        for v in values {
            self.push_value(n, *v, Flags::default())?;
        }
        if values.is_empty() {
            self.push_value(n, Value::EmptyArray, Flags::default())?;
        }
        Ok(n)
    }

    /// Appends a value to `node`'s list (making it a value node).
    pub fn push_value(&mut self, node: NodeId, value: Value<'_>, flags: Flags) -> Result<(), Full> {
        let node = self.check(node)?;
        let data = match value {
            Value::Int(i) => Data::Int(i),
            Value::Float(f) => Data::Float(f),
            Value::Str(s) => Data::Str(self.bytes(s)?),
            Value::EmptyArray => Data::EmptyArray,
        };
        let id = self.store.values().len() as Idx;
        self.store
            .push_value(ValueRec {
                data,
                flags: flags.0,
                next: NIL,
            })
            .map_err(|_| Full(Arena::Values))?;
        let mut last = self.store.nodes()[node as usize].value;
        if last == NIL {
            self.store.nodes_mut()[node as usize].value = id;
            return Ok(());
        }
        let values = self.store.values_mut();
        while values[last as usize].next != NIL {
            last = values[last as usize].next;
        }
        values[last as usize].next = id;
        Ok(())
    }

    /// ORs `flags` into every value of `node` (a no-op for sections).
    pub fn set_flags(&mut self, node: NodeId, flags: Flags) {
        let Some(rec) = self.store.nodes().get(node.0 as usize) else {
            return;
        };
        let mut v = rec.value;
        let values = self.store.values_mut();
        while let Some(rec) = values.get_mut(v as usize) {
            rec.flags |= flags.0;
            v = rec.next;
        }
    }

    /// ORs `flags` into every value of the tree.
    pub fn set_all_flags(&mut self, flags: Flags) {
        for v in self.store.values_mut() {
            v.flags |= flags.0;
        }
    }

    /// Copies `node` (with its values and whole subtree) as the last child of `parent`:
    /// libdaemon's `%t`. Works across trees; iterative, so depth costs no stack.
    pub fn graft(&mut self, parent: NodeId, node: NodeRef<'_>) -> Result<NodeId, Full> {
        let top = self.copy_one(parent, node)?;
        let (mut src, mut dst) = (node, top);
        loop {
            // Descend first, else move to the next sibling, else climb back towards `node`.
            if let Some(c) = src.children().next() {
                dst = self.copy_one(dst, c)?;
                src = c;
                continue;
            }
            loop {
                if src.id() == node.id() {
                    return Ok(top);
                }
                let dst_parent = NodeId(self.store.nodes()[dst.0 as usize].parent);
                if let Some(s) = src.next_sibling() {
                    dst = self.copy_one(dst_parent, s)?;
                    src = s;
                    break;
                }
                src = match src.parent() {
                    Some(p) => p,
                    None => return Ok(top),
                };
                dst = dst_parent;
            }
        }
    }

    fn copy_one(&mut self, parent: NodeId, n: NodeRef<'_>) -> Result<NodeId, Full> {
        let id = self.add_node(parent, n.key())?;
        for v in n.values() {
            self.push_value(id, v.value, v.flags)?;
        }
        Ok(id)
    }
}

impl<'a, S: Storage + Default> Tree<'a, S> {
    /// Parses `src` into fresh storage, borrowing strings from it.
    pub fn from_text(src: &'a [u8], opts: ParseOptions) -> Result<Self, Error> {
        let mut t = Tree::new(S::default());
        t.parse(src, opts)?;
        Ok(t)
    }
}

impl<S: Storage + Default> Tree<'static, S> {
    /// Parses `src` into fresh storage that owns every string.
    pub fn from_text_owned(src: &[u8], opts: ParseOptions) -> Result<Self, Error> {
        let mut t = Tree::new(S::default());
        t.parse_copy(src, opts)?;
        Ok(t)
    }

    /// An empty tree in fresh storage.
    pub fn empty() -> Self {
        Tree::new(S::default())
    }
}

impl<S: Storage> core::fmt::Debug for Tree<'_, S> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        self.view().fmt(f)
    }
}

impl<S: Storage, T: Storage> PartialEq<Tree<'_, T>> for Tree<'_, S> {
    fn eq(&self, other: &Tree<'_, T>) -> bool {
        self.view() == other.view()
    }
}

impl PartialEq for TreeView<'_> {
    /// Same keys, values (floats bit for bit), flags and shape, in the same order.
    fn eq(&self, other: &TreeView<'_>) -> bool {
        let (mut a, mut b) = (self.preorder(), other.preorder());
        loop {
            match (a.next(), b.next()) {
                (None, None) => return true,
                (Some((da, na)), Some((db, nb))) => {
                    if da != db || na.key() != nb.key() || !same_values(na, nb) {
                        return false;
                    }
                }
                _ => return false,
            }
        }
    }
}

fn same_values(a: NodeRef<'_>, b: NodeRef<'_>) -> bool {
    let (mut x, mut y) = (a.values(), b.values());
    loop {
        match (x.next(), y.next()) {
            (None, None) => return true,
            (Some(p), Some(q)) => {
                let same = match (p.value, q.value) {
                    (Value::Float(f), Value::Float(g)) => f.to_bits() == g.to_bits(),
                    (v, w) => v == w,
                };
                if !same || p.flags != q.flags {
                    return false;
                }
            }
            _ => return false,
        }
    }
}

/// Depth-first, document-order walk of a whole tree: `(depth, node)`, top level at depth 0.
pub struct Preorder<'t> {
    next: Option<NodeRef<'t>>,
    depth: u32,
}

impl<'t> TreeView<'t> {
    /// Every node in document order with its depth (0 = top level), without recursion.
    pub fn preorder(&self) -> Preorder<'t> {
        Preorder {
            next: self.first(),
            depth: 0,
        }
    }
}

impl<'t> Iterator for Preorder<'t> {
    type Item = (u32, NodeRef<'t>);
    fn next(&mut self) -> Option<(u32, NodeRef<'t>)> {
        let n = self.next?;
        let depth = self.depth;
        if let Some(c) = n.children().next() {
            self.next = Some(c);
            self.depth += 1;
            return Some((depth, n));
        }
        let mut up = n;
        loop {
            if let Some(s) = up.next_sibling() {
                self.next = Some(s);
                break;
            }
            match up.parent() {
                Some(p) if self.depth > 0 => {
                    up = p;
                    self.depth -= 1;
                }
                _ => {
                    self.next = None;
                    break;
                }
            }
        }
        Some((depth, n))
    }
}

#[cfg(all(test, feature = "alloc"))]
mod tests {
    use super::*;
    use crate::config::{Duplicates, ErrorKind, Growable, Lookup, OwnedTree};
    use std::vec::Vec;

    fn fmt(src: &str, dup: Duplicates) -> Result<Vec<u8>, Error> {
        let opts = ParseOptions {
            duplicates: dup,
            ..ParseOptions::MERGE
        };
        let t = Tree::<Growable>::from_text(src.as_bytes(), opts)?;
        Ok(t.view().to_text())
    }

    fn merge(src: &str) -> std::string::String {
        std::string::String::from_utf8(fmt(src, Duplicates::Merge).unwrap()).unwrap()
    }
    fn keep(src: &str) -> std::string::String {
        std::string::String::from_utf8(fmt(src, Duplicates::Keep).unwrap()).unwrap()
    }

    #[test]
    fn basic_layout() {
        assert_eq!(
            merge("a=1\nb = \"x\"\nc { d = 2\n e { f = [1, 2, 3] } }\n"),
            "a=1\nb=\"x\"\nc {\n\td=2\n\te {\n\t\tf=[1,2,3]\n\t}\n}\n"
        );
    }

    #[test]
    fn duplicates_both_modes() {
        assert_eq!(
            merge("a { x=1 }\nb=0\na { y=2 x=3 }\n"),
            "a {\n\tx=3\n\ty=2\n}\nb=0\n"
        );
        assert_eq!(
            keep("a { x=1 }\nb=0\na { y=2 x=3 }\n"),
            "a {\n\tx=1\n}\nb=0\na {\n\ty=2\n\tx=3\n}\n"
        );
        assert_eq!(
            merge("a/b/c=1\na/b/d=2\n/x//y=3\n"),
            "a {\n\tb {\n\t\tc=1\n\t\td=2\n\t}\n}\nx {\n\ty=3\n}\n"
        );
        assert_eq!(
            keep("a/b/c=1\na/b/d=2\n"),
            "a {\n\tb {\n\t\tc=1\n\t}\n}\na {\n\tb {\n\t\td=2\n\t}\n}\n"
        );
        assert_eq!(merge("a=1\na { b=2 }\n"), "a=1\n");
        assert_eq!(merge("a { b=2 }\na=1\n"), "a=1\n");
    }

    #[test]
    fn strings_and_numbers() {
        assert_eq!(
            merge("a=\"q\\\"uote\"\nc=\"nl\\nx\"\ns='x\\\"y'\nm=[1, \"two\", 3.0, -4]\ne=[ ]\ng=[\"x\"]\n"),
            "a=\"q\\\"uote\"\nc=\"nl\\\\nx\"\ns=\"x\\\\\\\"y\"\nm=[1,\"two\",3.000000,-4]\ne=[]\ng=\"x\"\n"
        );
        assert_eq!(merge("a=1b=2\n"), "a=1\nb=2\n");
        assert_eq!(
            merge("c=a,b d=x]y[z e=abc#def\n"),
            "c=\"a,b\"\nd=\"x]y[z\"\ne=\"abc\"\n"
        );
        assert_eq!(
            merge("creation_time=99999999999999999999\n"),
            "creation_time=1527120000\n"
        );
        assert_eq!(
            fmt("a=0x10 = 5\n", Duplicates::Merge).unwrap_err().kind,
            ErrorKind::BadInteger
        );
        assert_eq!(merge("a=0 x10 = 5\n"), "a=0\nx10=5\n");
        assert_eq!(merge("a=1.5e3=4\n"), "a=1500.000000\ne3=4\n");
    }

    #[test]
    fn errors_carry_positions() {
        let e = fmt("a=1\nb = [1 2]\n", Duplicates::Merge).unwrap_err();
        assert_eq!((e.kind, e.line, e.column), (ErrorKind::ExpectedValue, 2, 8));
        let e = fmt("# only a comment\n", Duplicates::Merge).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Empty);
        assert_eq!(
            fmt("a=09\n", Duplicates::Merge).unwrap_err().kind,
            ErrorKind::BadInteger
        );
        assert_eq!(
            fmt("a=\"abc", Duplicates::Merge).unwrap_err().kind,
            ErrorKind::UnterminatedString
        );
        assert_eq!(
            fmt("a { b=1\n", Duplicates::Merge).unwrap_err().kind,
            ErrorKind::UnexpectedToken
        );
        let deep = "a{".repeat(200) + &"}".repeat(200);
        assert_eq!(
            fmt(&deep, Duplicates::Merge).unwrap_err().kind,
            ErrorKind::TooDeep { limit: 128 }
        );
    }

    #[test]
    fn a_256_segment_key_at_the_ceiling_neither_wraps_nor_panics() {
        // Found by fuzzing: the segment count of an open section once wrapped at 256.
        let max = ParseOptions {
            max_depth: crate::config::MAX_DEPTH,
            ..ParseOptions::MERGE
        };
        let path = ["a"; 256].join("/");
        let misnest = std::format!("{path}{{}}b=1");
        let t = Tree::<Growable>::from_text(misnest.as_bytes(), max).unwrap();
        assert_eq!(t.view().find_int64("b", 0), 1);
        let panic = std::format!("{path}{{{}", "a{".repeat(256));
        let e = Tree::<Growable>::from_text(panic.as_bytes(), max).unwrap_err();
        assert_eq!(e.kind, ErrorKind::TooDeep { limit: 256 });
    }

    #[test]
    fn fixed_capacity_reports_need() {
        let mut t: FixedTree<'_, 3, 8, 8> = Tree::new(Default::default());
        let e = t
            .parse(b"a=1 b=2 c=3 d=4\n", ParseOptions::KEEP)
            .unwrap_err();
        assert_eq!(
            e.kind,
            ErrorKind::Capacity {
                arena: Arena::Nodes,
                capacity: 3,
                needed: 5
            }
        );
        assert!(t.view().is_empty());
        let mut t: FixedTree<'_, 8, 8, 8> = Tree::new(Default::default());
        t.parse(b"a=1 b { c = \"x\" }\n", ParseOptions::MERGE)
            .unwrap();
        assert_eq!(t.view().find_str("b/c", b"-"), b"x");
    }

    #[test]
    fn insert_after_and_remove_keep_links_consistent() {
        let mut t = OwnedTree::empty();
        let req = t
            .add_value(NodeId::ROOT, b"request", Value::Str(b"convert"))
            .unwrap();
        t.add_value(NodeId::ROOT, b"tail", Value::Int(0)).unwrap();
        // Like daemon_request_extend: each call inserts right after `request`.
        t.insert_node(NodeId::ROOT, Some(req), b"vgname ")
            .map(|n| t.push_value(n, Value::Str(b"vg"), Flags(0)))
            .unwrap()
            .unwrap();
        let lvid = t.insert_node(NodeId::ROOT, Some(req), b"lvid ").unwrap();
        t.push_value(lvid, Value::Str(b"x"), Flags(0)).unwrap();
        assert_eq!(
            t.view().to_text(),
            b"request=\"convert\"\nlvid =\"x\"\nvgname =\"vg\"\ntail=0\n"
        );
        assert!(t.remove(lvid));
        assert!(!t.remove(lvid));
        let last = t.view().top_level().last().unwrap().id();
        assert!(t.remove(last));
        t.add_value(NodeId::ROOT, b"end", Value::Int(1)).unwrap();
        assert_eq!(
            t.view().to_text(),
            b"request=\"convert\"\nvgname =\"vg\"\nend=1\n"
        );
    }

    #[test]
    fn owned_tree_outlives_input_and_graft_copies() {
        let t = {
            let text = std::string::String::from("a { b = [1, \"s\"] c { d = 2.5 } }\n");
            OwnedTree::from_text_owned(text.as_bytes(), ParseOptions::KEEP).unwrap()
        };
        let mut u = OwnedTree::empty();
        let r = u
            .add_value(NodeId::ROOT, b"request", Value::Str(b"x"))
            .unwrap();
        let _ = r;
        u.graft(NodeId::ROOT, t.view().first().unwrap()).unwrap();
        assert_eq!(
            std::string::String::from_utf8(u.view().to_text()).unwrap(),
            "request=\"x\"\na {\n\tb=[1,\"s\"]\n\tc {\n\t\td=2.500000\n\t}\n}\n"
        );
    }
}
