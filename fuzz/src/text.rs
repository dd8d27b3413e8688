//! Text → tree in one duplicate mode, checked every way the crate offers to parse it, then written
//! and parsed again (config-tree.md §1–2).

use std::collections::HashSet;

use keelson_core::config::{
    Arena, Duplicates, Error, ErrorKind, Fixed, Growable, OwnedTree, ParseOptions, Siblings,
    Storage, Tree, Warnings, MAX_DEPTH,
};

use crate::model::{
    assert_same_visible, check_written, dump, show, writes_back, SmallTree, SMALL_BYTES,
    SMALL_NODES, SMALL_VALUES,
};

/// Parses `data` with `opts` (and variants of it) and checks everything that must agree.
pub fn check(data: &[u8], opts: ParseOptions) {
    // A NUL ends the text as it ends libdevmapper's C string; error positions refer to `text`.
    let text = data.split(|&b| b == 0).next().unwrap_or(data);

    let grown = Tree::<Growable>::from_text(data, opts);
    match &grown {
        Ok(t) => check_tree(t, opts),
        Err(e) => check_error(text, e, opts),
    }
    let empty = matches!(&grown, Err(e) if e.kind == ErrorKind::Empty);
    assert_eq!(
        empty,
        only_space_and_comments(text),
        "`Empty` must be reported exactly for text without tokens: {}",
        show(text)
    );
    if text.len() < data.len() {
        let cut = Tree::<Growable>::from_text(text, opts);
        assert_same_result(&grown, &cut, "the input cut at its first NUL", text);
    }
    let copied = OwnedTree::from_text_owned(data, opts);
    assert_same_result(&grown, &copied, "parse_copy", text);

    check_fixed(data, text, opts, &grown);

    // The deepest allowed limit must change nothing unless the default limit was what failed.
    let deep_opts = ParseOptions {
        max_depth: MAX_DEPTH,
        ..opts
    };
    let deep = Tree::<Growable>::from_text(data, deep_opts);
    let too_deep = matches!(&grown, Err(e) if matches!(e.kind, ErrorKind::TooDeep { .. }));
    match (too_deep, &deep) {
        (true, Ok(t)) => {
            check_tree(t, deep_opts);
            let deepest = t.view().preorder().map(|(d, _)| d + 1).max().unwrap_or(0);
            assert!(
                deepest > opts.max_depth,
                "TooDeep at limit {} but the deeper parse is only {deepest} deep: {}",
                opts.max_depth,
                show(text)
            );
        }
        (true, Err(e)) => check_error(text, e, deep_opts),
        (false, _) => assert_same_result(&grown, &deep, "max_depth = MAX_DEPTH", text),
    }
}

/// The fixed-capacity parse agrees with the growable one, or runs out of room and says so truthfully.
fn check_fixed(
    data: &[u8],
    text: &[u8],
    opts: ParseOptions,
    grown: &Result<Tree<'_, Growable>, Error>,
) {
    let mut fixed: SmallTree<'_> = Tree::new(Fixed::new());
    let r = fixed.parse(data, opts);
    match (r, grown) {
        (Ok(()), Ok(g)) => {
            assert!(
                fixed == *g,
                "fixed and growable trees differ for {}:\n{}\n{}",
                show(text),
                dump(&fixed),
                dump(g)
            );
            assert_eq!(
                fixed.warnings(),
                g.warnings(),
                "warnings differ for {}",
                show(text)
            );
        }
        (
            Err(
                e @ Error {
                    kind:
                        ErrorKind::Capacity {
                            arena,
                            capacity,
                            needed,
                        },
                    ..
                },
            ),
            g,
        ) => {
            check_error(text, &e, opts);
            let cap = match arena {
                Arena::Nodes => SMALL_NODES,
                Arena::Values => SMALL_VALUES,
                Arena::Bytes => SMALL_BYTES,
            };
            assert_eq!(capacity, cap, "wrong capacity reported: {e:?}");
            // `needed` is documented as an upper bound of what the input needs, so it must
            // exceed the capacity that just ran out.
            assert!(needed > capacity, "{e:?} for {}", show(text));
            assert!(
                fixed.view().is_empty(),
                "a failed parse must leave an empty tree"
            );
            // Nodes are never orphaned (values can be, by a merge), so the growable tree shows
            // the overflow directly.
            if let (Arena::Nodes, Ok(g)) = (arena, g) {
                let nodes = 1 + g.view().preorder().count();
                assert!(
                    nodes > cap,
                    "{e:?} but the tree has only {nodes} nodes: {}",
                    show(text)
                );
            }
        }
        (Err(e), Err(g)) => {
            assert_eq!(e, *g, "fixed and growable errors differ for {}", show(text))
        }
        (r, g) => panic!(
            "fixed parse gave {r:?}, growable gave {:?} for {}",
            g.as_ref().map(|_| ()),
            show(text)
        ),
    }
}

fn assert_same_result<S: Storage, T: Storage>(
    a: &Result<Tree<'_, S>, Error>,
    b: &Result<Tree<'_, T>, Error>,
    what: &str,
    text: &[u8],
) {
    match (a, b) {
        (Ok(x), Ok(y)) => {
            assert!(
                x == y,
                "{what} gave another tree for {}:\n{}\n{}",
                show(text),
                dump(x),
                dump(y)
            );
            assert_eq!(
                x.warnings(),
                y.warnings(),
                "{what} gave other warnings for {}",
                show(text)
            );
        }
        (Err(e), Err(f)) => assert_eq!(e, f, "{what} gave another error for {}", show(text)),
        _ => panic!(
            "{what} disagrees: {:?} vs {:?} for {}",
            a.as_ref().map(|_| ()),
            b.as_ref().map(|_| ()),
            show(text)
        ),
    }
}

/// Line and column follow from the offset; each kind's own promises hold.
pub fn check_error(text: &[u8], e: &Error, opts: ParseOptions) {
    assert!(
        e.offset <= text.len(),
        "{e:?} is past the end of {}",
        show(text)
    );
    let before = &text[..e.offset];
    let line = 1 + before.iter().filter(|&&c| c == b'\n').count();
    let line_start = before
        .iter()
        .rposition(|&c| c == b'\n')
        .map_or(0, |i| i + 1);
    let column = e.offset - line_start + 1;
    assert_eq!(
        (e.line as usize, e.column as usize),
        (line, column),
        "{e:?}: line/column do not match the offset in {}",
        show(text)
    );
    match e.kind {
        ErrorKind::Empty => assert_eq!(e.offset, text.len(), "`Empty` points at the end of input"),
        ErrorKind::TooDeep { limit } => assert_eq!(limit, opts.max_depth.min(MAX_DEPTH)),
        ErrorKind::TooLarge => panic!("TooLarge for {} bytes", text.len()),
        _ => {}
    }
    // Display is what users see; it must not panic either.
    let _ = e.to_string();
}

/// What a parsed tree promises, then write → parse again when the text can carry it back.
fn check_tree<S: Storage>(t: &Tree<'_, S>, opts: ParseOptions) {
    let v = t.view();
    assert!(!v.is_empty(), "a successful parse has at least one node");
    let limit = opts.max_depth.min(MAX_DEPTH);
    for (depth, n) in v.preorder() {
        // `max_depth` counts top-level nodes as depth 1; preorder counts them as 0.
        assert!(
            depth < limit,
            "node {:?} at depth {} exceeds max_depth {limit}",
            show(n.key()),
            depth + 1
        );
        // Parsed keys are single path segments. (They can be empty: `a/=1` makes `a { =1 }`,
        // exactly as libdevmapper's `_find_or_make_node` does.)
        assert!(
            !n.key().contains(&b'/'),
            "key with a slash: {:?}",
            show(n.key())
        );
    }
    match opts.duplicates {
        Duplicates::Merge => {
            assert_unique_keys(v.top_level());
            for (_, n) in v.preorder() {
                assert_unique_keys(n.children());
            }
        }
        // Every key makes a new node, so no value is ever replaced.
        Duplicates::Keep => assert_eq!(t.warnings().duplicate_values, 0),
    }

    let written = v.to_text();
    check_written(v, &written);
    if !writes_back(v) {
        return;
    }
    let back = Tree::<Growable>::from_text(&written, opts).unwrap_or_else(|e| {
        panic!(
            "written text does not parse again ({e:?}):\n{}",
            show(&written)
        )
    });
    assert_same_visible(v, back.view(), &written);
    // Written text is a fixed point: a float read back from `%f` prints the same six decimals.
    let again = back.view().to_text();
    assert!(
        again == written,
        "writing the re-parsed tree changed the text:\n{}",
        show(&again)
    );
    // The written form has no duplicate keys and only in-range integers.
    assert_eq!(back.warnings(), Warnings::default(), "{}", show(&written));
}

/// Dup-check mode merges equal keys, so siblings never share one.
fn assert_unique_keys(siblings: Siblings<'_>) {
    let mut seen = HashSet::new();
    for n in siblings {
        assert!(
            seen.insert(n.key()),
            "duplicate sibling key {:?} after a merge",
            show(n.key())
        );
    }
}

/// Whether `text` holds no token at all: only C whitespace and `#` comments.
fn only_space_and_comments(text: &[u8]) -> bool {
    let mut in_comment = false;
    text.iter().all(|&c| {
        if in_comment {
            in_comment = c != b'\n';
            return true;
        }
        in_comment = c == b'#';
        in_comment || matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
    })
}
