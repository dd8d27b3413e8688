//! Every `Lookup` getter on parsed trees, against a reference path walk and libdevmapper's type
//! rules (config-tree.md §1.9).

use std::iter::successors;

use keelson_core::config::{
    Cascade, Growable, Lookup, NodeId, NodeRef, OwnedTree, ParseOptions, Tree, TreeView, Value,
};

use crate::model::{show, values_of, Bytes, Scalar};

/// Paths taken from the input after the document.
const MAX_INPUT_PATHS: usize = 16;
/// Nodes of each tree whose own paths (and respellings) are looked up too.
const MAX_NODE_PATHS: usize = 24;

// The defaults the libdevmapper oracle used (oracles/lvm/lookups-libdevmapper-1.02.185.out).
const DFLT_STR: &[u8] = b"dflt";
const DFLT_I64: i64 = -999;
const DFLT_I32: i32 = -999;
const DFLT_F32: f32 = -999.0;

/// `data` is `document NUL path NUL path …`; the parser would stop at the first NUL anyway.
pub fn check(data: &[u8]) {
    let mut parts = data.split(|&b| b == 0);
    let doc = parts.next().unwrap_or_default();
    let mut paths: Vec<Vec<u8>> = parts.take(MAX_INPUT_PATHS).map(<[u8]>::to_vec).collect();

    let merged = Tree::<Growable>::from_text(doc, ParseOptions::MERGE).ok();
    let kept = Tree::<Growable>::from_text(doc, ParseOptions::KEEP).ok();
    if let Some(t) = &merged {
        check_own_paths(t.view());
    }
    let views: Vec<TreeView<'_>> = [&merged, &kept]
        .into_iter()
        .flatten()
        .map(|t| t.view())
        .collect();
    // The two trees mostly share their nodes' paths; look each up once.
    for &v in &views {
        paths.extend(node_paths(v));
    }
    paths.sort_unstable();
    paths.dedup();

    let empty = OwnedTree::empty();
    for p in &paths {
        let per_tree: Vec<Answers<'_>> = views
            .iter()
            .map(|&v| {
                let a = answers(&v, p);
                check_path(v, p, &a);
                // A cascade of one tree, or behind an empty one, answers exactly as the tree does.
                // (Every getter goes through `find_node`, so one full comparison is enough.)
                let one = Cascade(&[v]).find_node(p).map(|n| n.id());
                assert_eq!(one, a.node, "cascade of one, path {:?}", show(p));
                let behind_empty = answers(&Cascade(&[empty.view(), v]), p);
                assert_eq!(
                    behind_empty,
                    a,
                    "cascade behind an empty tree, path {:?}",
                    show(p)
                );
                a
            })
            .collect();
        if let ([m, k], [am, ak]) = (&views[..], &per_tree[..]) {
            // The first tree that has the path answers, even with a value of the wrong type.
            let want = if am.has_node { am } else { ak };
            let got = answers(&Cascade(&[*m, *k]), p);
            assert_eq!(&got, want, "cascade, path {:?}", show(p));
        }
    }
}

/// Merged siblings have unique keys, so a node's own path leads back to that very node, unless an
/// ancestor has an empty key (`a/ { b=1 }`): `a//b` skips the empty segment, as upstream does.
fn check_own_paths(v: TreeView<'_>) {
    for (_, n) in v.preorder().take(MAX_NODE_PATHS) {
        if successors(n.parent(), |a| a.parent()).any(|a| a.key().is_empty()) {
            continue;
        }
        let p = path_of(n);
        let found = v.find_node(&p).map(|f| f.id());
        assert_eq!(
            found,
            Some(n.id()),
            "path {:?} of a merged tree misses its node",
            show(&p)
        );
    }
}

/// Looks `p` up in `v` every other way there is and checks `a`, the tree's own answers.
fn check_path(v: TreeView<'_>, p: &[u8], a: &Answers<'_>) {
    let node = v.find_node(p);
    let want = model_find(v.first(), p).map(|n| n.id());
    assert_eq!(
        node.map(|n| n.id()),
        want,
        "find_node({:?}) vs reference",
        show(p)
    );
    check_answers(a, node, p);
    // Upstream's form: the top-level siblings as the first level.
    let via_siblings = v.top_level().find_node(p).map(|n| n.id());
    assert_eq!(via_siblings, want, "Siblings lookup of {:?}", show(p));

    // `a/rest` from the tree is `rest` from the first `a` (a node's lookups start at its children).
    let trimmed = &p[p.iter().take_while(|&&c| c == b'/').count()..];
    if let Some(slash) = trimmed.iter().position(|&c| c == b'/') {
        let (head, rest) = (&trimmed[..slash], &trimmed[slash..]);
        let via = v.find_node(head).and_then(|h| {
            let n = h.find_node(rest);
            check_answers(&answers(&h, rest), n, rest);
            n
        });
        assert_eq!(
            via.map(|n| n.id()),
            want,
            "relative lookup of {:?}",
            show(p)
        );
    }
}

/// Reference walk: split on `/`, drop empty segments except the last (so a trailing slash looks
/// for an empty key), and take the first sibling with each key.
fn model_find<'t>(start: Option<NodeRef<'t>>, path: &[u8]) -> Option<NodeRef<'t>> {
    let segs: Vec<&[u8]> = path.split(|&c| c == b'/').collect();
    let (last, inner) = segs.split_last().expect("split yields at least one piece");
    let wanted = inner.iter().filter(|s| !s.is_empty()).chain([last]);
    let mut level = start;
    let mut found: Option<NodeRef<'t>> = None;
    for seg in wanted {
        if let Some(f) = found {
            level = f.children().next();
        }
        found = Some(successors(level, |n| n.next_sibling()).find(|n| n.key() == *seg)?);
    }
    found
}

/// Every getter's answer for one path, in a comparable form that borrows from the tree.
#[derive(Debug, PartialEq)]
struct Answers<'t> {
    has_node: bool,
    node: Option<NodeId>,
    find_str: Bytes<'t>,
    find_str_allow_empty: Bytes<'t>,
    find_int64: i64,
    find_int: i32,
    find_float: u32,
    find_bool_true: bool,
    find_bool_false: bool,
    get_bool: Option<bool>,
    get_str: Option<Bytes<'t>>,
    get_utf8: Option<&'t str>,
    get_int64: Option<i64>,
    get_uint32: Option<u32>,
    get_uint64: Option<u64>,
    get_list: Option<Vec<(Scalar<'t>, u32)>>,
    get_section: Option<NodeId>,
}

fn answers<'t>(l: &impl Lookup<'t>, p: &[u8]) -> Answers<'t> {
    Answers {
        has_node: l.has_node(p),
        node: l.find_node(p).map(|n| n.id()),
        find_str: Bytes(l.find_str(p, DFLT_STR)),
        find_str_allow_empty: Bytes(l.find_str_allow_empty(p, DFLT_STR)),
        find_int64: l.find_int64(p, DFLT_I64),
        find_int: l.find_int(p, DFLT_I32),
        find_float: l.find_float(p, DFLT_F32).to_bits(),
        find_bool_true: l.find_bool(p, true),
        find_bool_false: l.find_bool(p, false),
        get_bool: l.get_bool(p),
        get_str: l.get_str(p).map(Bytes),
        get_utf8: l.get_utf8(p),
        get_int64: l.get_int64(p),
        get_uint32: l.get_uint32(p),
        get_uint64: l.get_uint64(p),
        get_list: l
            .get_list(p)
            .map(|vals| vals.map(|v| (Scalar::from(v.value), v.flags.0)).collect()),
        get_section: l.get_section(p).map(|n| n.id()),
    }
}

/// The answers that `node` (what `find_node` returned) implies: scalar getters read the first
/// value, no INT↔FLOAT conversion, `find_str` refuses empty strings, casts are C's.
fn check_answers(a: &Answers<'_>, node: Option<NodeRef<'_>>, p: &[u8]) {
    let first = node.and_then(|n| n.value());
    let s = first.and_then(|v| v.as_bytes());
    let i = first.and_then(|v| v.as_int());
    let float = match first {
        Some(Value::Float(f)) => f,
        _ => DFLT_F32,
    };
    let boolean = match first {
        Some(Value::Int(i)) => Some(i != 0),
        Some(Value::Str(s)) => model_bool(s),
        _ => None,
    };
    let want = Answers {
        has_node: node.is_some(),
        node: node.map(|n| n.id()),
        find_str: Bytes(s.filter(|s| !s.is_empty()).unwrap_or(DFLT_STR)),
        find_str_allow_empty: Bytes(s.unwrap_or(DFLT_STR)),
        find_int64: i.unwrap_or(DFLT_I64),
        find_int: i.map_or(DFLT_I32, |i| i as i32),
        find_float: float.to_bits(),
        find_bool_true: boolean.unwrap_or(true),
        find_bool_false: boolean.unwrap_or(false),
        get_bool: boolean,
        get_str: s.map(Bytes),
        get_utf8: s.and_then(|s| std::str::from_utf8(s).ok()),
        get_int64: i,
        get_uint32: i.map(|i| i as u32),
        get_uint64: i.map(|i| i as u64),
        get_list: node.filter(|n| !n.is_section()).map(values_of),
        get_section: node.filter(NodeRef::is_section).map(|n| n.id()),
    };
    assert_eq!(*a, want, "getters for path {:?}", show(p));
    // A value node always has a first value (`[]` is one `EmptyArray`); a section has none.
    let value_node = node.is_some_and(|n| !n.is_section());
    assert_eq!(value_node, first.is_some(), "path {:?}", show(p));
}

/// `dm_config_find_bool`'s strings, in any case.
fn model_bool(s: &[u8]) -> Option<bool> {
    match &s.to_ascii_lowercase()[..] {
        b"y" | b"yes" | b"on" | b"true" => Some(true),
        b"n" | b"no" | b"off" | b"false" => Some(false),
        _ => None,
    }
}

/// `a/b/c` for a node, from its ancestors' keys.
fn path_of(n: NodeRef<'_>) -> Vec<u8> {
    let mut keys: Vec<&[u8]> = successors(Some(n), |n| n.parent())
        .map(|n| n.key())
        .collect();
    keys.reverse();
    keys.join(&b'/')
}

/// The paths of the first nodes, each also respelled in one way the lookup rules cover: a leading
/// slash and doubled slashes must not matter, and a trailing slash looks for an empty key (which
/// `a/=1` makes, as in libdevmapper).
fn node_paths(v: TreeView<'_>) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for (i, (_, n)) in v.preorder().take(MAX_NODE_PATHS).enumerate() {
        let p = path_of(n);
        let respelled = match i % 3 {
            0 => [b"/".as_slice(), &p].concat(),
            1 => p
                .iter()
                .flat_map(|&c| if c == b'/' { vec![c, c] } else { vec![c] })
                .collect(),
            _ => [p.as_slice(), b"/"].concat(),
        };
        out.push(p);
        out.push(respelled);
    }
    out
}
