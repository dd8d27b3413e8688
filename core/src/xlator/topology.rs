//! [`Topology`]: the graph's shape as the engine needs it, each node's children first child
//! first, built once from a [`Graph`].

use heapless::Vec;

use super::graph::Graph;

/// The graph's shape as the engine needs it: each node's children, and the top.
#[derive(Clone, Debug)]
pub struct Topology<const V: usize, const L: usize> {
    spans: Vec<(u16, u16), V>,
    links: Vec<u16, L>,
    top: u16,
}

impl<const V: usize, const L: usize> Topology<V, L> {
    /// The children of every translator of `g`, first child first.
    pub fn from_graph<const O: usize>(g: &Graph<'_, '_, V, O, L>) -> Self {
        let mut t = Topology {
            spans: Vec::new(),
            links: Vec::new(),
            top: g.top() as u16,
        };
        for i in 0..g.len() {
            let start = t.links.len() as u16;
            for c in g.children(i) {
                // Capacities are the volfile's (at most V volumes and L links).
                let _ = t.links.push(c as u16);
            }
            let _ = t.spans.push((start, t.links.len() as u16 - start));
        }
        t
    }

    /// The borrowed form an [`Engine`](super::engine::Engine) holds.
    pub fn view(&self) -> Topo<'_> {
        Topo {
            spans: &self.spans,
            links: &self.links,
            top: self.top,
        }
    }
}

/// A borrowed [`Topology`].
#[derive(Clone, Copy, Debug)]
pub struct Topo<'t> {
    spans: &'t [(u16, u16)],
    links: &'t [u16],
    top: u16,
}

impl<'t> Topo<'t> {
    /// Children of `node`.
    pub fn children(&self, node: usize) -> &'t [u16] {
        let (s, n) = self.spans.get(node).copied().unwrap_or((0, 0));
        self.links
            .get(usize::from(s)..usize::from(s) + usize::from(n))
            .unwrap_or_default()
    }

    /// Number of translators.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// The top translator.
    pub fn top(&self) -> usize {
        usize::from(self.top)
    }
}
