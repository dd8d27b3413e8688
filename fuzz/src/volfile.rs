//! GlusterFS volfiles: parse, build the graph, init, events, fini and the dump on any text
//! (translators.md §1–2).

use std::fmt::{self, Write};

use keelson_core::xlator::graph::AnyDirectory;
use keelson_core::xlator::types::BUILTIN;
use keelson_core::xlator::volfile::ErrorKind;
use keelson_core::xlator::{Event, Graph, Pos, Volfile};

type Small<'a> = Volfile<'a, 24, 64, 48>;
type Large<'a> = Volfile<'a, 1024, 4096, 4096>;

/// A sink that refuses output past a few KiB, so a dump stops early on crafted DAGs (a shared
/// child is printed once per parent).
struct Capped(usize);

impl Write for Capped {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0 += s.len();
        if self.0 > 1 << 16 {
            Err(fmt::Error)
        } else {
            Ok(())
        }
    }
}

fn check_pos(src: &[u8], p: Pos) {
    assert!(p.offset <= src.len(), "position past the end: {p:?}");
    assert_eq!(p, Pos::of(src, p.offset), "incremental position differs");
}

/// The whole pipeline on `data`; invariants panic.
pub fn check(data: &[u8]) {
    let mut warnings = Vec::new();
    let small = Small::parse_with(data, &mut |w| warnings.push(w));
    for w in &warnings {
        check_pos(data, w.pos);
        let _ = w.to_string();
    }
    // A larger table gives the same verdict unless the small one ran out of room.
    let large = Box::new(Large::parse(data));
    match (&small, large.as_ref()) {
        (Ok(s), Ok(l)) => assert_eq!(s.volumes(), l.volumes()),
        (Err(e), Ok(_)) => assert!(
            matches!(e.kind, ErrorKind::Capacity { .. }),
            "only capacity may fail the small parse: {e}"
        ),
        (Ok(_), Err(e)) => panic!("large parse failed where the small one passed: {e}"),
        (Err(a), Err(b)) => {
            if !matches!(a.kind, ErrorKind::Capacity { .. }) {
                assert_eq!(a, b);
            }
        }
    }
    let vf = match small {
        Ok(vf) => vf,
        Err(e) => {
            check_pos(data, e.pos);
            let _ = e.to_string();
            return;
        }
    };
    for i in 0..vf.volumes().len() {
        for l in vf.links(i) {
            assert!(l.child < i, "a link must point at an earlier volume");
        }
    }
    let mut g = match Graph::build(&vf, BUILTIN) {
        Ok(g) => g,
        Err(e) => {
            check_pos(data, e.pos);
            let _ = e.to_string();
            return;
        }
    };
    for i in 0..g.len() {
        if let Some(t) = g.xlator_type(i) {
            for spec in t.options {
                let _ = g.option(i, spec.key());
            }
        }
    }
    if let Err(e) = g.init(&mut AnyDirectory) {
        check_pos(data, e.pos);
        let _ = e.to_string();
        return;
    }
    let top = g.top();
    let mut top_up = false;
    g.activate(&mut |n| {
        assert!(n.from < g_len(&vf) && n.to.is_none_or(|t| t < g_len(&vf)));
        if n.to.is_none() && n.from == top && n.event == Event::ChildUp {
            top_up = true;
        }
    });
    // Every leaf comes up on PARENT_UP, and every aggregator once all its children did.
    assert!(top_up, "the top never reported CHILD_UP");
    for i in 0..g.len() {
        g.child_event(i, Event::ChildDown, &mut |_| {});
        g.child_event(i, Event::ChildUp, &mut |_| {});
    }
    let _ = g.write_dump(&mut Capped(0));
    g.deactivate(&mut |_| {});
    let mut finished = vec![false; g.len()];
    g.fini(&mut |i| {
        assert!(!finished[i], "fini twice on {i}");
        finished[i] = true;
    });
    assert!(finished.iter().all(|&f| f), "fini missed a translator");
}

fn g_len(vf: &Small<'_>) -> usize {
    vf.volumes().len()
}
