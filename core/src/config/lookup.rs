//! Path lookups with libdevmapper's type rules (config-tree.md §1.9): first match per level, exact
//! byte compare, no INT↔FLOAT conversion, `find_str` refuses empty strings, arrays answer with
//! their first element, cascades answer from the first tree that has the path.

use super::view::{NodeRef, Siblings, TreeView, Value, Values};

/// Where a lookup starts: a node and the siblings after it form the first level.
pub trait Lookup<'t> {
    /// The first node of the first level.
    fn start(&self) -> Option<NodeRef<'t>>;

    /// The node at `path` (`/`-separated; leading and doubled slashes are ignored; a trailing one
    /// names an empty key, which only the parser's `a/ = …` quirk creates).
    fn find_node(&self, path: &(impl AsRef<[u8]> + ?Sized)) -> Option<NodeRef<'t>> {
        find_from(self.start(), path.as_ref())
    }

    /// Whether `path` names a node.
    fn has_node(&self, path: &(impl AsRef<[u8]> + ?Sized)) -> bool {
        self.find_node(path).is_some()
    }

    /// A non-empty string at `path`, else `dflt`.
    fn find_str(&self, path: &(impl AsRef<[u8]> + ?Sized), dflt: &'t [u8]) -> &'t [u8] {
        match self.get_str(path) {
            Some(s) if !s.is_empty() => s,
            _ => dflt,
        }
    }

    /// A string at `path`, empty allowed, else `dflt`.
    fn find_str_allow_empty(&self, path: &(impl AsRef<[u8]> + ?Sized), dflt: &'t [u8]) -> &'t [u8] {
        self.get_str(path).unwrap_or(dflt)
    }

    /// An integer at `path`, else `dflt`.
    fn find_int64(&self, path: &(impl AsRef<[u8]> + ?Sized), dflt: i64) -> i64 {
        self.get_int64(path).unwrap_or(dflt)
    }

    /// An integer at `path` truncated to 32 bits as C's `(int)` does, else `dflt`.
    fn find_int(&self, path: &(impl AsRef<[u8]> + ?Sized), dflt: i32) -> i32 {
        self.get_int64(path).map_or(dflt, |v| v as i32)
    }

    /// A float at `path`, else `dflt`.
    fn find_float(&self, path: &(impl AsRef<[u8]> + ?Sized), dflt: f32) -> f32 {
        match first_value(self.find_node(path)) {
            Some(Value::Float(f)) => f,
            _ => dflt,
        }
    }

    /// A boolean at `path`, else `dflt`: integers are true when non-zero; strings `y yes on true`
    /// and `n no off false` in any case. (A section gives `dflt`; libdevmapper crashes.)
    fn find_bool(&self, path: &(impl AsRef<[u8]> + ?Sized), dflt: bool) -> bool {
        self.get_bool(path).unwrap_or(dflt)
    }

    /// [`Lookup::find_bool`] without a default.
    fn get_bool(&self, path: &(impl AsRef<[u8]> + ?Sized)) -> Option<bool> {
        match first_value(self.find_node(path))? {
            Value::Int(i) => Some(i != 0),
            Value::Str(s) => str_to_bool(s),
            _ => None,
        }
    }

    /// The string at `path`, empty allowed (`dm_config_get_str`).
    fn get_str(&self, path: &(impl AsRef<[u8]> + ?Sized)) -> Option<&'t [u8]> {
        match first_value(self.find_node(path))? {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The string at `path` as UTF-8 (`None` if it is not UTF-8).
    fn get_utf8(&self, path: &(impl AsRef<[u8]> + ?Sized)) -> Option<&'t str> {
        core::str::from_utf8(self.get_str(path)?).ok()
    }

    /// The integer at `path`.
    fn get_int64(&self, path: &(impl AsRef<[u8]> + ?Sized)) -> Option<i64> {
        match first_value(self.find_node(path))? {
            Value::Int(i) => Some(i),
            _ => None,
        }
    }

    /// The integer at `path` cast to `u32` as `dm_config_get_uint32` does.
    fn get_uint32(&self, path: &(impl AsRef<[u8]> + ?Sized)) -> Option<u32> {
        self.get_int64(path).map(|v| v as u32)
    }

    /// The integer at `path` cast to `u64` as `dm_config_get_uint64` does.
    fn get_uint64(&self, path: &(impl AsRef<[u8]> + ?Sized)) -> Option<u64> {
        self.get_int64(path).map(|v| v as u64)
    }

    /// The value list at `path` (a scalar is a one-element list, `[]` one `EmptyArray`).
    fn get_list(&self, path: &(impl AsRef<[u8]> + ?Sized)) -> Option<Values<'t>> {
        let n = self.find_node(path)?;
        (!n.is_section()).then(|| n.values())
    }

    /// The section at `path` (a node without a value).
    fn get_section(&self, path: &(impl AsRef<[u8]> + ?Sized)) -> Option<NodeRef<'t>> {
        self.find_node(path).filter(NodeRef::is_section)
    }
}

fn first_value(n: Option<NodeRef<'_>>) -> Option<Value<'_>> {
    n?.value()
}

fn str_to_bool(s: &[u8]) -> Option<bool> {
    const TRUE: [&[u8]; 4] = [b"y", b"yes", b"on", b"true"];
    const FALSE: [&[u8]; 4] = [b"n", b"no", b"off", b"false"];
    if TRUE.iter().any(|t| t.eq_ignore_ascii_case(s)) {
        Some(true)
    } else if FALSE.iter().any(|t| t.eq_ignore_ascii_case(s)) {
        Some(false)
    } else {
        None
    }
}

/// libdevmapper's `_find_or_make_node` without making: per segment, the first sibling with that
/// exact key; descend; an empty last segment matches only an empty key.
fn find_from<'t>(start: Option<NodeRef<'t>>, path: &[u8]) -> Option<NodeRef<'t>> {
    let mut level = start;
    let mut pos = 0;
    loop {
        while path.get(pos) == Some(&b'/') {
            pos += 1;
        }
        let end = memchr::memchr(b'/', &path[pos..]).map_or(path.len(), |i| pos + i);
        let seg = &path[pos..end];
        let found = Siblings { next: level }.find(|n| n.key() == seg)?;
        if end == path.len() {
            return Some(found);
        }
        level = found.children().next();
        level?;
        pos = end;
    }
}

impl<'t> Lookup<'t> for TreeView<'t> {
    fn start(&self) -> Option<NodeRef<'t>> {
        self.first()
    }
}

/// Paths are relative to the node: its children are the first level.
impl<'t> Lookup<'t> for NodeRef<'t> {
    fn start(&self) -> Option<NodeRef<'t>> {
        self.children().next()
    }
}

/// Upstream's own rule: the first node and the siblings after it are the first level.
impl<'t> Lookup<'t> for Siblings<'t> {
    fn start(&self) -> Option<NodeRef<'t>> {
        self.next
    }
}

/// Trees searched in order (`dm_config_insert_cascaded_tree`): the first tree that contains the
/// path answers, even when its value has the wrong type.
#[derive(Clone, Copy)]
pub struct Cascade<'c, 't>(pub &'c [TreeView<'t>]);

impl<'t> Cascade<'_, 't> {
    fn tree_for(&self, path: &[u8]) -> Option<TreeView<'t>> {
        self.0.iter().copied().find(|t| t.find_node(path).is_some())
    }
}

impl<'t> Lookup<'t> for Cascade<'_, 't> {
    fn start(&self) -> Option<NodeRef<'t>> {
        self.0.first().and_then(TreeView::first)
    }
    fn find_node(&self, path: &(impl AsRef<[u8]> + ?Sized)) -> Option<NodeRef<'t>> {
        self.tree_for(path.as_ref())?.find_node(path)
    }
}
