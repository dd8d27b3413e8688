//! storage/posix's on-disk names (`keelson_core::xlator::handle`): a gfid's text parses back
//! only as the canonical form, and names built from arbitrary parents and basenames fit the
//! lengths promised (or report exactly the room they need).

use keelson_core::xlator::handle::{self, Gfid, CANONICAL_LEN};

/// Checks the gfid text and name builders on `data`.
pub fn check(data: &[u8]) {
    if let Some(g) = Gfid::parse(data) {
        let c = g.canonical();
        assert!(c.eq_ignore_ascii_case(data), "{data:?} parsed as {g}");
        assert_eq!(Gfid::parse(&c), Some(g));
        assert_eq!(g.ino() == u64::MAX, g.is_null());
    }
    let (head, name) = data.split_at(data.len().min(16));
    let mut raw = [0u8; 16];
    raw[..head.len()].copy_from_slice(head);
    let g = Gfid(raw);
    assert_eq!(Gfid::parse(&g.canonical()), Some(g));
    let hp = g.handle_path();
    assert!(hp.ends_with(&g.canonical()));
    for room in [0, 10, 40, 64, CANONICAL_LEN + 1 + name.len(), 4096] {
        let mut buf = vec![0u8; room];
        match handle::gfid2path_value(&g, name, &mut buf) {
            Ok(n) => {
                assert_eq!(n, CANONICAL_LEN + 1 + name.len());
                assert_eq!(&buf[n - name.len()..n], name);
                let key = handle::gfid2path_key(&buf[..n]);
                assert!(key.starts_with(handle::GFID2PATH_PREFIX.as_bytes()));
            }
            Err(e) => assert!(e.required > room && e.required == CANONICAL_LEN + 1 + name.len()),
        }
        match handle::dir_handle_target(&g, name, &mut buf) {
            Ok(n) => assert!(n <= room && buf[..n].ends_with(name)),
            Err(e) => assert!(e.required > room),
        }
    }
}
