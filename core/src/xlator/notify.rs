//! Event propagation and fini (translators.md §2.4–2.5): PARENT_UP/DOWN down from the
//! parentless translators, CHILD_* up through the aggregators, each as one sweep over the
//! volumes (children always have lower indices than their parents), never recursing.

use heapless::Vec;

use super::event::Event;
use super::graph::{Graph, Life};
use super::types::Kind;

/// The connection state a translator last reported to its parents.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ChildState {
    /// CHILD_UP
    Up,
    /// CHILD_DOWN
    Down,
    /// CHILD_CONNECTING
    Connecting,
}

impl ChildState {
    fn event(self) -> Event {
        match self {
            ChildState::Up => Event::ChildUp,
            ChildState::Down => Event::ChildDown,
            ChildState::Connecting => Event::ChildConnecting,
        }
    }

    /// The state an event announces (`None` for other events).
    pub fn of(event: Event) -> Option<ChildState> {
        match event {
            Event::ChildUp => Some(ChildState::Up),
            Event::ChildDown => Some(ChildState::Down),
            Event::ChildConnecting => Some(ChildState::Connecting),
            _ => None,
        }
    }
}

/// One delivered `notify`: `event` from volume `from` to volume `to` (`None`: the process
/// root, i.e. whoever mounts the graph).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Notice {
    /// The event.
    pub event: Event,
    /// Sender.
    pub from: usize,
    /// Receiver; `None` for the root above a parentless translator.
    pub to: Option<usize>,
}

impl<const V: usize, const O: usize, const L: usize> Graph<'_, '_, V, O, L> {
    fn is_leaf(&self, i: usize) -> bool {
        self.types
            .get(i)
            .is_some_and(|t| matches!(t.kind, Kind::Posix | Kind::Ram))
    }

    fn initialised(&self, i: usize) -> bool {
        self.nodes
            .get(i)
            .is_some_and(|n| n.life == Life::Initialised)
    }

    /// Sends `event` from `from` to every initialised parent, or to the root when it has none.
    fn up(&self, from: usize, event: Event, out: &mut impl FnMut(Notice)) {
        let mut any = false;
        for p in self.parents(from) {
            any = true;
            if self.initialised(p) {
                out(Notice {
                    event,
                    from,
                    to: Some(p),
                });
            }
        }
        if !any {
            out(Notice {
                event,
                from,
                to: None,
            });
        }
    }

    /// Activation's last step: PARENT_UP to every parentless translator in list order, which
    /// flows down to the leaves; the leaves answer CHILD_UP, which flows up through the
    /// aggregators (§2.4). Every delivered `notify` goes to `out`.
    pub fn activate(&mut self, out: &mut impl FnMut(Notice)) {
        self.downward(Event::ParentUp, out);
    }

    /// Shutdown's first step (gfapi's `glfs_fini`): PARENT_DOWN down the graph; the leaves
    /// answer CHILD_DOWN, which flows up.
    pub fn deactivate(&mut self, out: &mut impl FnMut(Notice)) {
        self.downward(Event::ParentDown, out);
    }

    fn downward(&mut self, event: Event, out: &mut impl FnMut(Notice)) {
        let up = event == Event::ParentUp;
        let n = self.nodes.len();
        let mut reached: Vec<bool, V> = Vec::new();
        for i in 0..n {
            let root = self.parents(i).next().is_none() && self.initialised(i);
            let _ = reached.push(root);
        }
        for i in (0..n).rev() {
            if !reached.get(i).copied().unwrap_or(false) {
                continue;
            }
            if self.parents(i).next().is_none() {
                out(Notice {
                    event,
                    from: i,
                    to: Some(i),
                });
            }
            let first = self.nodes.get_mut(i).is_some_and(|node| {
                let flag = if up {
                    &mut node.parent_up
                } else {
                    &mut node.parent_down
                };
                !core::mem::replace(flag, true)
            });
            if !first {
                // Upstream forwards a repeated PARENT_UP again; its effect is already done.
                continue;
            }
            for c in self.children(i) {
                out(Notice {
                    event,
                    from: i,
                    to: Some(c),
                });
                if let Some(r) = reached.get_mut(c) {
                    *r = true;
                }
            }
            if self.is_leaf(i) {
                let state = if up { ChildState::Up } else { ChildState::Down };
                self.set_reported(i, state);
            }
        }
        self.upward(out);
    }

    fn set_reported(&mut self, i: usize, state: ChildState) {
        if let Some(node) = self.nodes.get_mut(i) {
            if node.reported != Some(state) {
                node.reported = Some(state);
                node.changed = true;
            }
        }
    }

    /// A translator's own connection changed (a leaf going down or up again, a client
    /// reconnecting): `event` is CHILD_UP, CHILD_DOWN or CHILD_CONNECTING from `i`, and flows
    /// up. Other events are ignored.
    pub fn child_event(&mut self, i: usize, event: Event, out: &mut impl FnMut(Notice)) {
        if let Some(state) = ChildState::of(event) {
            if self.initialised(i) {
                self.set_reported(i, state);
                self.upward(out);
            }
        }
    }

    /// One ascending sweep: every changed state goes to the parents, which summarise it.
    fn upward(&mut self, out: &mut impl FnMut(Notice)) {
        let n = self.nodes.len();
        for i in 0..n {
            if !self.initialised(i) {
                continue;
            }
            if !self.is_leaf(i) {
                self.summarise(i);
            }
            let Some(node) = self.nodes.get(i).copied() else {
                continue;
            };
            if node.changed {
                if let Some(s) = node.reported {
                    self.up(i, s.event(), out);
                }
            }
            if node.descendent.0 {
                self.up(i, Event::SomeDescendentDown, out);
            }
            if node.descendent.1 {
                self.up(i, Event::SomeDescendentUp, out);
            }
        }
        for node in self.nodes.iter_mut() {
            node.changed = false;
            node.descendent = (false, false);
        }
    }

    /// A non-leaf's reaction to its children's changes in this sweep.
    fn summarise(&mut self, i: usize) {
        let kind = self.types.get(i).map(|t| t.kind);
        let mut last = None;
        let (mut all, mut ups, mut connecting) = (true, 0usize, false);
        let mut desc = (false, false);
        for c in self.children(i) {
            let Some(child) = self.nodes.get(c) else {
                continue;
            };
            if child.changed {
                last = child.reported;
            }
            desc.0 |= child.descendent.0;
            desc.1 |= child.descendent.1;
            match child.reported {
                None => all = false,
                Some(ChildState::Up) => ups += 1,
                Some(ChildState::Connecting) => connecting = true,
                Some(ChildState::Down) => {}
            }
        }
        let Some(node) = self.nodes.get(i).copied() else {
            return;
        };
        let summary = if ups > 0 {
            ChildState::Up
        } else if connecting {
            ChildState::Connecting
        } else {
            ChildState::Down
        };
        let new = match kind {
            // Aggregators hold child events back until every child has reported once, then
            // send one summary.
            Some(Kind::Distribute | Kind::Replicate) if !all => None,
            Some(Kind::Distribute | Kind::Replicate) if node.reported.is_none() => Some(summary),
            // After that DHT passes events on as they come.
            Some(Kind::Distribute) => last,
            // AFR: CHILD_UP from 0 to 1 children up, CHILD_DOWN when the last one goes, else
            // SOME_DESCENDENT_*.
            Some(Kind::Replicate) if last.is_some() => {
                if node.up == 0 && ups > 0 {
                    Some(ChildState::Up)
                } else if ups == 0 && node.up > 0 {
                    Some(summary)
                } else {
                    if ups < node.up {
                        desc.0 = true;
                    } else if ups > node.up {
                        desc.1 = true;
                    }
                    None
                }
            }
            Some(Kind::Replicate) => None,
            _ => last,
        };
        if let Some(s) = new {
            self.set_reported(i, s);
        }
        if let Some(node) = self.nodes.get_mut(i) {
            node.up = ups;
            node.descendent = desc;
        }
    }

    /// Runs `fini` on every initialised translator: post-order from the top (children first,
    /// each once), then the unreachable ones in list order. `done` sees each in turn.
    pub fn fini(&mut self, done: &mut impl FnMut(usize)) {
        let mut order: Vec<usize, V> = Vec::new();
        self.post_order(true, &mut |i| {
            let _ = order.push(i);
            true
        });
        for i in self.list_order() {
            if !order.contains(&i) {
                let _ = order.push(i);
            }
        }
        for i in order {
            if let Some(n) = self.nodes.get_mut(i) {
                if n.life == Life::Initialised {
                    n.life = Life::Finished;
                    done(i);
                }
            }
        }
    }
}
