//! The postcard form (core/src/config/binary.rs): arbitrary bytes decoded into growable and fixed
//! trees, encoded and decoded again; then graft and the writer on shapes no text produces (empty
//! keys, NUL bytes, NaN, any flags).

use keelson_core::config::{
    Duplicates, Fixed, Growable, NodeId, OwnedTree, ParseOptions, Tree, TreeView, Value, MAX_DEPTH,
};

use crate::model::{
    assert_same_visible, check_written, dump, show, writes_back, SmallTree, SMALL_BYTES,
    SMALL_NODES, SMALL_VALUES,
};

/// Decodes `data` every way the crate offers, checks that the results agree, then round-trips.
pub fn check(data: &[u8]) {
    let mut owned = OwnedTree::empty();
    let decoded = owned.decode_postcard(data);
    if decoded.is_err() {
        assert!(
            owned.view().is_empty(),
            "a failed decode must leave an empty tree"
        );
    }

    // postcard's own entry point reaches the `Deserialize` impl and allows trailing bytes, which
    // `decode_postcard` refuses; otherwise both must agree.
    match postcard::take_from_bytes::<OwnedTree>(data) {
        Ok((t, [])) => {
            assert!(
                decoded.is_ok(),
                "from_bytes accepted what decode_postcard refused: {decoded:?}"
            );
            assert!(
                t == owned,
                "Deserialize and decode_postcard differ:\n{}\n{}",
                dump(&t),
                dump(&owned)
            );
        }
        Ok((_, rest)) => assert!(decoded.is_err(), "{} trailing bytes accepted", rest.len()),
        Err(_) => assert!(
            decoded.is_err(),
            "decode_postcard accepted what from_bytes refused"
        ),
    }

    let mut fixed: SmallTree<'static> = Tree::new(Fixed::new());
    match (fixed.decode_postcard(data), &decoded) {
        (Ok(()), Ok(())) => assert!(fixed == owned, "fixed and growable decodes differ"),
        (Ok(()), Err(e)) => panic!("only the fixed tree decoded; growable said {e:?}"),
        (Err(e), Ok(())) => {
            assert!(
                fixed.view().is_empty(),
                "a failed decode must leave an empty tree"
            );
            // The same stream failed only in fixed storage, so it must have run out of room.
            let (nodes, values, bytes) = usage(owned.view());
            assert!(
                nodes > SMALL_NODES || values > SMALL_VALUES || bytes > SMALL_BYTES,
                "fixed decode failed ({e:?}) though the tree fits: {nodes} nodes, {values} values, {bytes} bytes"
            );
        }
        (Err(_), Err(_)) => {}
    }
    if decoded.is_ok() {
        check_tree(data, &owned);
    }
}

fn check_tree(data: &[u8], owned: &OwnedTree) {
    let v = owned.view();
    for (depth, n) in v.preorder() {
        assert!(
            depth < MAX_DEPTH,
            "node {:?} decoded at depth {depth}",
            show(n.key())
        );
    }

    let enc = owned
        .to_postcard_vec()
        .expect("encoding into a vector cannot fail");
    // The encoder writes the shortest varints and there is nothing optional to omit, so the
    // canonical form is never longer than any form the decoder accepts.
    assert!(
        enc.len() <= data.len(),
        "re-encoding grew from {} to {} bytes",
        data.len(),
        enc.len()
    );
    let mut again = OwnedTree::empty();
    again
        .decode_postcard(&enc)
        .unwrap_or_else(|e| panic!("own encoding does not decode ({e:?}): {}", show(&enc)));
    assert!(
        again == *owned,
        "decode(encode(t)) != t:\n{}\n{}",
        dump(&again),
        dump(owned)
    );
    assert_eq!(
        again.to_postcard_vec().expect("encode"),
        enc,
        "encoding is not deterministic"
    );

    let mut buf = vec![0u8; enc.len()];
    assert_eq!(
        owned.to_postcard(&mut buf).expect("exact-size buffer"),
        &enc[..]
    );
    if let Some(short) = enc.len().checked_sub(1) {
        assert!(
            owned.to_postcard(&mut buf[..short]).is_err(),
            "a buffer one byte short must fail"
        );
    }

    // Grafting every top-level node (with its subtree) into an empty tree copies the whole tree.
    let mut copy = OwnedTree::empty();
    for n in v.top_level() {
        copy.graft(NodeId::ROOT, n)
            .expect("a growable tree never fills");
    }
    assert!(
        copy == *owned,
        "graft copy differs:\n{}\n{}",
        dump(&copy),
        dump(owned)
    );

    // The writer takes whatever a decoded tree holds, and the parser whatever the writer made.
    // Shapes the parser never makes (a node with both a value and children, depth 256) must still
    // read back when nothing in the tree is beyond the text form; libdaemon's mode keeps
    // duplicate keys, as the tree may have them.
    let text = v.to_text();
    check_written(v, &text);
    let opts = ParseOptions {
        duplicates: Duplicates::Keep,
        max_depth: MAX_DEPTH,
    };
    let back = Tree::<Growable>::from_text(&text, opts);
    if writes_back(v) {
        let back = back
            .unwrap_or_else(|e| panic!("written text does not parse ({e:?}):\n{}", show(&text)));
        assert_same_visible(v, back.view(), &text);
    }
}

/// Nodes (with the root), values and string bytes the tree occupies in a fixed store.
fn usage(v: TreeView<'_>) -> (usize, usize, usize) {
    let (mut nodes, mut values, mut bytes) = (1, 0, 0);
    for (_, n) in v.preorder() {
        nodes += 1;
        bytes += n.key().len();
        for val in n.values() {
            values += 1;
            if let Value::Str(s) = val.value {
                bytes += s.len();
            }
        }
    }
    (nodes, values, bytes)
}
