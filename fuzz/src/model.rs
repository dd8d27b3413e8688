//! Reference pieces the checks share: what the writer makes visible, how its text re-lexes, and
//! what a float becomes after `%f` and `strtod` (config-tree.md §1.2, §1.4, §2.1).

use keelson_core::config::{FixedTree, NodeRef, TreeView, Value};

/// Capacities of the no-alloc tree the targets compare against: small enough that ordinary
/// inputs overflow each arena.
pub const SMALL_NODES: usize = 64;
pub const SMALL_VALUES: usize = 64;
pub const SMALL_BYTES: usize = 256;
pub type SmallTree<'a> = FixedTree<'a, SMALL_NODES, SMALL_VALUES, SMALL_BYTES>;

/// Printable form of a byte string for assertion messages.
pub fn show(b: &[u8]) -> String {
    b.escape_ascii().to_string()
}

/// A tree's `Debug` form, cut short: a failing input of a few KiB can dump a huge tree.
pub fn dump(tree: &impl std::fmt::Debug) -> String {
    const MAX: usize = 2000;
    let mut s = format!("{tree:?}");
    if s.len() > MAX {
        let cut = (0..=MAX)
            .rev()
            .find(|&i| s.is_char_boundary(i))
            .unwrap_or(0);
        s.truncate(cut);
        s.push_str(" …");
    }
    s
}

/// The nodes the writer emits, in its order, with their depth (0 = top level).
///
/// A dup-check merge can give a node both a value and children (`a=1 a { b=2 }`); libdevmapper
/// then treats it as a value node and never writes the children, so they are skipped here too.
pub fn visible<'t>(view: TreeView<'t>) -> impl Iterator<Item = (u32, NodeRef<'t>)> {
    let mut hide_below = u32::MAX;
    view.preorder().filter(move |&(depth, n)| {
        if depth > hide_below {
            return false;
        }
        hide_below = if n.is_section() { u32::MAX } else { depth };
        true
    })
}

/// A byte string that prints readably in assertion messages.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Bytes<'t>(pub &'t [u8]);

impl std::fmt::Debug for Bytes<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", show(self.0))
    }
}

/// A scalar in a comparable form (floats by bit pattern, so NaN compares equal to itself).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Scalar<'t> {
    Int(i64),
    Float(u32),
    Str(&'t [u8]),
    EmptyArray,
}

impl<'t> From<Value<'t>> for Scalar<'t> {
    fn from(v: Value<'t>) -> Self {
        match v {
            Value::Int(i) => Scalar::Int(i),
            Value::Float(f) => Scalar::Float(f.to_bits()),
            Value::Str(s) => Scalar::Str(s),
            Value::EmptyArray => Scalar::EmptyArray,
        }
    }
}

impl std::fmt::Debug for Scalar<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Scalar::Int(i) => write!(f, "Int({i})"),
            Scalar::Float(b) => write!(f, "Float({:?} = {b:#x})", f32::from_bits(b)),
            Scalar::Str(s) => write!(f, "Str({:?})", show(s)),
            Scalar::EmptyArray => f.write_str("EmptyArray"),
        }
    }
}

/// `node`'s values with their flags.
pub fn values_of(node: NodeRef<'_>) -> Vec<(Scalar<'_>, u32)> {
    node.values()
        .map(|v| (Scalar::from(v.value), v.flags.0))
        .collect()
}

/// What a float reads back as after the writer's `%f` (six decimals of the value promoted to
/// double) and the parser's `strtod` narrowed to `float`. Floats do not round-trip bit for bit:
/// `1.2345678` is written `1.234568`.
pub fn written_float(f: f32) -> f32 {
    let text = format!("{:.6}", f64::from(f));
    text.parse::<f64>()
        .expect("%f output of a finite float parses") as f32
}

/// C `isspace` in the "C" locale, which ends a bare word (config-tree.md §1.2).
fn is_c_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// Whether the writer's form of `key` is lexed back as exactly `key`.
///
/// The writer quotes a key only when it holds `#`, `"` or `!` (then it escapes `"` and `\`, which
/// reads back exactly). Otherwise the key is written raw and must lex as one identifier: no space,
/// `=`, `{` or `}` anywhere, and no first byte that starts another token (`'`, `[`, `]`, `,`).
/// Keyword position never admits numbers, so `1abc`, `+x` and `.y` are fine. A `/` always splits
/// the key into a path, and an empty key (which `a/=1` makes) does not come back: written bare it
/// is nothing, quoted it would be an `EmptyKey` error.
pub fn key_writes_back(key: &[u8]) -> bool {
    let Some(&first) = key.first() else {
        return false;
    };
    if key.iter().any(|&c| c == b'/' || c == 0) {
        return false;
    }
    if key.iter().any(|&c| matches!(c, b'#' | b'"' | b'!')) {
        return true;
    }
    !matches!(first, b'\'' | b'[' | b']' | b',')
        && key
            .iter()
            .all(|&c| !is_c_space(c) && !matches!(c, b'=' | b'{' | b'}'))
}

/// Whether writing `view` and parsing the text again must give the same visible tree. Parsed
/// trees always meet the value conditions; built or decoded ones need not.
///
/// - The tree is not empty (empty text is an `Empty` error).
/// - Every written key lexes back as itself ([`key_writes_back`]).
/// - Every float is finite (`inf` would come back as the bare string "inf").
/// - No value has flags (they change brackets, spacing, octal and quoting).
/// - No string holds a NUL (it would end the text).
/// - `[]` (`EmptyArray`) is only ever a node's sole value (inside a list it ends the list).
pub fn writes_back(view: TreeView<'_>) -> bool {
    !view.is_empty()
        && visible(view).all(|(_, n)| {
            let count = n.values().count();
            key_writes_back(n.key())
                && n.values().all(|v| {
                    v.flags.0 == 0
                        && match v.value {
                            Value::Float(f) => f.is_finite(),
                            Value::Str(s) => !s.contains(&0),
                            Value::EmptyArray => count == 1,
                            Value::Int(_) => true,
                        }
                })
        })
}

/// Every way of writing gives the same bytes, and a short buffer reports the full length.
pub fn check_written(v: TreeView<'_>, written: &[u8]) {
    assert_eq!(v.written_len(), written.len());
    let mut buf = vec![0u8; written.len()];
    let exact = v.write_to_slice(&mut buf).expect("exact-size buffer");
    assert!(*exact == *written, "write_to_slice differs from to_text");
    if let Some(short) = written.len().checked_sub(1) {
        let e = v
            .write_to_slice(&mut buf[..short])
            .expect_err("buffer one byte short");
        assert_eq!(e.required, written.len());
    }
    // Writing from the first node on (`dm_config_write_node`) is writing the tree, and so is
    // writing each top-level node alone (`dm_config_write_one_node`) in turn.
    let mut from_first = Vec::new();
    let mut one_by_one = Vec::new();
    if let Some(first) = v.first() {
        first.write(&mut from_first).expect("a Vec never overflows");
    }
    for n in v.top_level() {
        n.write_one(&mut one_by_one).expect("a Vec never overflows");
    }
    assert!(
        from_first == written,
        "NodeRef::write differs:\n{}",
        show(&from_first)
    );
    assert!(
        one_by_one == written,
        "write_one of each top-level node differs:\n{}",
        show(&one_by_one)
    );
}

/// Asserts that `back`, the re-parse of `orig`'s written text, has the same visible nodes and
/// values, with each float as [`written_float`] predicts.
pub fn assert_same_visible(orig: TreeView<'_>, back: TreeView<'_>, text: &[u8]) {
    let mut a = visible(orig);
    let mut b = visible(back);
    loop {
        match (a.next(), b.next()) {
            (None, None) => return,
            (Some((da, na)), Some((db, nb))) => {
                let ctx = || format!("node {:?} in written text:\n{}", show(na.key()), show(text));
                assert_eq!(da, db, "depth differs: {}", ctx());
                assert!(
                    na.key() == nb.key(),
                    "key {:?} came back as {:?}: {}",
                    show(na.key()),
                    show(nb.key()),
                    ctx()
                );
                let want: Vec<_> = na
                    .values()
                    .map(|v| match v.value {
                        Value::Float(f) => (Scalar::Float(written_float(f).to_bits()), v.flags.0),
                        other => (Scalar::from(other), v.flags.0),
                    })
                    .collect();
                assert_eq!(want, values_of(nb), "values differ: {}", ctx());
            }
            (x, y) => panic!(
                "node count differs ({:?} vs {:?}) in written text:\n{}",
                x.map(|(_, n)| show(n.key())),
                y.map(|(_, n)| show(n.key())),
                show(text)
            ),
        }
    }
}
