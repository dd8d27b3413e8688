//! The translator graph a [`Volfile`] describes (translators.md §2): type resolution, option
//! validation with aliases and defaults, lookups, and the normalised dump. Init lives in
//! [`init`](super::init), events and fini in [`notify`](super::notify).
//!
//! Volume indices are file order. Upstream's xlator list is the reverse (each new volume is
//! prepended), so "list order" here is descending index, and the top is the last volume. A
//! child is always defined before its parents, so ascending index order visits children
//! before parents; events are propagated with one sweep in each direction and never recurse.

use core::fmt;

use heapless::Vec;

use super::lex::{Pos, Word};
use super::options::{self, OptionError, OptionSpec, Value};
use super::types::{self, XlatorType, DEFAULT_OPTIONS};
use super::volfile::{OptionEntry, Volfile};

pub use super::init::{AnyDirectory, BrickVolumeId, Host, InitFailure};
pub use super::notify::{ChildState, Notice};

/// What made a graph unusable.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum GraphErrorKind<'a> {
    /// A type no registry entry has.
    UnknownType {
        /// The volume.
        volume: Word<'a>,
        /// The type word.
        ty: Word<'a>,
    },
    /// An option value its table refuses (validation stops activation).
    Option {
        /// The volume.
        volume: Word<'a>,
        /// The refusal.
        error: OptionError<'a>,
    },
    /// A translator's init failed.
    Init {
        /// The volume.
        volume: Word<'a>,
        /// Why.
        failure: InitFailure<'a>,
    },
}

/// A graph error and the position it concerns.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GraphError<'a> {
    /// What.
    pub kind: GraphErrorKind<'a>,
    /// Where: the type word, the option value, or the volume name.
    pub pos: Pos,
}

impl fmt::Display for GraphError<'_> {
    /// `LINE:COL: message`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.pos)?;
        match &self.kind {
            GraphErrorKind::UnknownType { volume, ty } => write!(
                f,
                "Volume '{volume}': type '{ty}' is not valid or not found on this machine"
            ),
            GraphErrorKind::Option { volume, error } => {
                write!(f, "Volume '{volume}': validation failed: {error}")
            }
            GraphErrorKind::Init { volume, failure } => {
                write!(
                    f,
                    "Volume '{volume}': initializing translator failed: {failure}"
                )
            }
        }
    }
}

impl core::error::Error for GraphError<'_> {}

/// Where a translator is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Life {
    /// Built and validated, not initialised.
    #[default]
    Built,
    /// `init` succeeded.
    Initialised,
    /// `fini` ran.
    Finished,
}

#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Node {
    pub(super) life: Life,
    pub(super) parent_up: bool,
    pub(super) parent_down: bool,
    pub(super) reported: Option<ChildState>,
    /// Children up, as an aggregator last counted them.
    pub(super) up: usize,
    /// Set during one sweep: `reported` changed.
    pub(super) changed: bool,
    /// Set during one sweep: SOME_DESCENDENT_DOWN / _UP to pass up.
    pub(super) descendent: (bool, bool),
}

#[derive(Clone, Copy, Debug)]
struct OptInfo {
    spec: Option<&'static OptionSpec>,
    renamed: bool,
}

/// The translator graph over a parsed volfile: `V` volumes, `O` options, `L` links.
#[derive(Clone, Debug)]
pub struct Graph<'v, 'a, const V: usize, const O: usize, const L: usize> {
    pub(super) vf: &'v Volfile<'a, V, O, L>,
    pub(super) types: Vec<&'static XlatorType, V>,
    opts: Vec<OptInfo, O>,
    pub(super) nodes: Vec<Node, V>,
}

/// At most this many volume blocks in a [`Graph::write_dump`]: a shared child is printed once
/// per parent, which a crafted DAG could make exponential.
pub const DUMP_LIMIT: usize = 1 << 16;

impl<'v, 'a, const V: usize, const O: usize, const L: usize> Graph<'v, 'a, V, O, L> {
    /// Resolves every type against `registry` and validates every option (list order: top
    /// first), as `glusterfs_graph_activate` does before any init.
    pub fn build(
        vf: &'v Volfile<'a, V, O, L>,
        registry: &'static [XlatorType],
    ) -> Result<Self, GraphError<'a>> {
        let mut g = Graph {
            vf,
            types: Vec::new(),
            opts: Vec::new(),
            nodes: Vec::new(),
        };
        for (i, v) in vf.volumes().iter().enumerate() {
            let ty = v.ty.unwrap_or(Word::bare(b""));
            let Some(t) = types::resolve(registry, &ty) else {
                return Err(GraphError {
                    kind: GraphErrorKind::UnknownType { volume: v.name, ty },
                    pos: vf.pos(v.type_at),
                });
            };
            // Capacities match the volfile's, so these pushes always fit.
            let _ = g.types.push(t);
            let _ = g.nodes.push(Node::default());
            for o in vf.options(i) {
                let found = options::lookup(t.options, &o.key);
                let _ = g.opts.push(OptInfo {
                    spec: found.map(|f| f.0),
                    renamed: found.is_some_and(|f| !f.1),
                });
            }
        }
        for i in g.list_order() {
            g.validate(i)?;
        }
        Ok(g)
    }

    fn validate(&self, i: usize) -> Result<(), GraphError<'a>> {
        let vf = self.vf;
        let Some(v) = vf.volume(i) else {
            return Ok(());
        };
        let is_volume = |w: &Word<'a>| vf.volumes().iter().any(|v| v.name.eq_word(w));
        // Upstream walks the option dict newest first.
        for (o, info) in vf.options(i).iter().zip(self.infos(i)).rev() {
            let Some(spec) = info.spec else {
                // Only the translator's own table decides (§2.3 quirk): a bad `log-level` in
                // the default table alone does not fail validation.
                continue;
            };
            if let Err(error) = options::validate(spec, o.key, o.value, is_volume) {
                return Err(GraphError {
                    kind: GraphErrorKind::Option {
                        volume: v.name,
                        error,
                    },
                    pos: vf.pos(o.value_at),
                });
            }
        }
        Ok(())
    }

    fn infos(&self, i: usize) -> &[OptInfo] {
        let base = self.vf.option_base(i);
        let n = self.vf.options(i).len();
        self.opts.get(base..base + n).unwrap_or_default()
    }

    /// The volfile.
    pub fn volfile(&self) -> &'v Volfile<'a, V, O, L> {
        self.vf
    }

    /// Number of translators.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// True for an empty graph (never, for a parsed volfile).
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The top: the last volume of the file.
    pub fn top(&self) -> usize {
        self.vf.top()
    }

    /// Upstream's list order: top first, reverse file order.
    pub fn list_order(&self) -> impl Iterator<Item = usize> {
        (0..self.nodes.len()).rev()
    }

    /// The name of translator `i`.
    pub fn name(&self, i: usize) -> Word<'a> {
        self.vf.volume(i).map_or(Word::bare(b""), |v| v.name)
    }

    /// The type of translator `i`.
    pub fn xlator_type(&self, i: usize) -> Option<&'static XlatorType> {
        self.types.get(i).copied()
    }

    /// The children of `i`, first child first (duplicates kept).
    pub fn children(&self, i: usize) -> impl Iterator<Item = usize> + '_ {
        self.vf.links(i).iter().map(|l| l.child)
    }

    /// The parents of `i` (duplicates kept).
    pub fn parents(&self, i: usize) -> impl Iterator<Item = usize> + '_ {
        self.vf.parents(i)
    }

    /// Where translator `i` is in its life.
    pub fn life(&self, i: usize) -> Option<Life> {
        self.nodes.get(i).map(|n| n.life)
    }

    /// The state translator `i` last reported upwards.
    pub fn reported(&self, i: usize) -> Option<ChildState> {
        self.nodes.get(i).and_then(|n| n.reported)
    }

    /// Whether `i` is reachable from the top (unreachable volumes are still initialised, but
    /// left out of the dump).
    pub fn reachable(&self, i: usize) -> bool {
        let mut seen: Vec<bool, V> = Vec::new();
        for _ in 0..self.nodes.len() {
            let _ = seen.push(false);
        }
        if let Some(s) = seen.get_mut(self.top()) {
            *s = true;
        }
        // Parents have higher indices: one descending sweep marks everything below the top.
        for p in (0..self.nodes.len()).rev() {
            if seen.get(p).copied().unwrap_or(false) {
                for c in self.children(p) {
                    if let Some(s) = seen.get_mut(c) {
                        *s = true;
                    }
                }
            }
        }
        seen.get(i).copied().unwrap_or(false)
    }

    /// The entry for `key` in translator `i`'s table and the option given for it, if any.
    pub(super) fn find(
        &self,
        i: usize,
        key: &str,
    ) -> Option<(&'static OptionSpec, Option<&OptionEntry<'a>>)> {
        let t = self.types.get(i)?;
        let spec = t
            .options
            .iter()
            .chain(DEFAULT_OPTIONS)
            .find(|s| s.key() == key)?;
        let given = self
            .vf
            .options(i)
            .iter()
            .zip(self.infos(i))
            .rev()
            .find(|(o, info)| {
                info.spec.is_some_and(|s| core::ptr::eq(s, spec))
                    || (info.spec.is_none() && o.key.eq_bytes(key.as_bytes()))
            })
            .map(|(o, _)| o);
        Some((spec, given))
    }

    /// Whether option `key` (canonical) was given for translator `i`.
    pub fn is_set(&self, i: usize, key: &str) -> bool {
        self.find(i, key).is_some_and(|(_, g)| g.is_some())
    }

    /// The typed value of option `key` (canonical name) of translator `i`: the given value,
    /// else the table's default; `None` when neither exists (or the key is not in the table).
    pub fn option(&self, i: usize, key: &str) -> Option<Value<'a>> {
        let (spec, given) = self.find(i, key)?;
        let vf = self.vf;
        let is_volume = |w: &Word<'a>| vf.volumes().iter().any(|v| v.name.eq_word(w));
        let k = Word::bare(spec.key().as_bytes());
        match given {
            Some(o) => options::validate(spec, o.key, o.value, is_volume).ok(),
            None => {
                let d = Word::bare(spec.default?.as_bytes());
                options::validate(spec, k, d, is_volume).ok()
            }
        }
    }

    pub(super) fn size(&self, i: usize, key: &str) -> u64 {
        match self.option(i, key) {
            Some(Value::Size(n)) => n,
            _ => 0,
        }
    }

    /// Depth-first post-order from the top; stops when `visit` returns false. With `once`,
    /// each translator is visited once; without it, a shared child once per path (as
    /// upstream's dump does, which a crafted DAG makes exponential: callers must cap it).
    pub(super) fn post_order(&self, once: bool, visit: &mut impl FnMut(usize) -> bool) {
        // (node, next link to follow); a path is at most V long since the graph is a DAG.
        let mut stack: Vec<(usize, usize), V> = Vec::new();
        let mut seen: Vec<bool, V> = Vec::new();
        for _ in 0..self.nodes.len() {
            let _ = seen.push(false);
        }
        if self.nodes.is_empty() || stack.push((self.top(), 0)).is_err() {
            return;
        }
        while let Some(&mut (i, ref mut next)) = stack.last_mut() {
            match self.vf.links(i).get(*next) {
                Some(l) => {
                    *next += 1;
                    if once && seen.get(l.child).copied().unwrap_or(true) {
                        continue;
                    }
                    if stack.push((l.child, 0)).is_err() {
                        return;
                    }
                }
                None => {
                    stack.pop();
                    if once {
                        if let Some(s) = seen.get_mut(i) {
                            *s = true;
                        }
                    }
                    if !visit(i) {
                        return;
                    }
                }
            }
        }
    }

    /// The normalised graph GlusterFS logs as `Final graph:` (§1.6): post-order from the top,
    /// a shared child once per parent, options newest first with aliases renamed (renamed
    /// ones first), unreachable volumes left out. Each block ends with an empty line.
    pub fn write_dump(&self, w: &mut impl fmt::Write) -> fmt::Result {
        let mut count = 0;
        let mut r = Ok(());
        self.post_order(false, &mut |i| {
            count += 1;
            r = if count > DUMP_LIMIT {
                Err(fmt::Error)
            } else {
                self.write_volume(i, w)
            };
            r.is_ok()
        });
        r
    }

    fn write_volume(&self, i: usize, w: &mut impl fmt::Write) -> fmt::Result {
        writeln!(w, "volume {}", self.name(i))?;
        if let Some(t) = self.types.get(i) {
            writeln!(w, "    type {}", t.name)?;
        }
        let pairs = || self.vf.options(i).iter().zip(self.infos(i));
        for (o, info) in pairs().filter(|(_, f)| f.renamed) {
            let key = info.spec.map_or("", |s| s.key());
            writeln!(w, "    option {key} {}", o.value)?;
        }
        for (o, _) in pairs().rev().filter(|(_, f)| !f.renamed) {
            writeln!(w, "    option {} {}", o.key, o.value)?;
        }
        let mut links = self.vf.links(i).iter();
        if let Some(first) = links.next() {
            write!(w, "    subvolumes {}", self.name(first.child))?;
            for l in links {
                write!(w, " {}", self.name(l.child))?;
            }
            writeln!(w)?;
        }
        writeln!(w, "end-volume")?;
        writeln!(w)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xlator::event::Event;
    use crate::xlator::types::BUILTIN;
    use std::string::{String, ToString};
    use std::vec::Vec as StdVec;

    type Vf<'a> = Volfile<'a, 16, 64, 32>;

    fn build(src: &str) -> Result<String, String> {
        let vf = Vf::parse(src.as_bytes()).map_err(|e| e.to_string())?;
        let mut g = Graph::build(&vf, BUILTIN).map_err(|e| e.to_string())?;
        g.init(&mut AnyDirectory).map_err(|e| e.to_string())?;
        let mut s = String::new();
        g.write_dump(&mut s).unwrap();
        Ok(s)
    }

    const STACK: &str = "volume p\n type storage/posix\n option directory /b\nend-volume\n\
        volume t\n type debug/trace\n option log-file yes\n subvolumes p\nend-volume\n\
        volume wb\n type performance/write-behind\n option window-size 2MB\n option flush-behind off\n subvolumes t\nend-volume\n";

    #[test]
    fn dump_is_post_order_with_aliases_renamed_first() {
        assert_eq!(
            build(STACK).unwrap(),
            "volume p\n    type storage/posix\n    option directory /b\nend-volume\n\n\
             volume t\n    type debug/trace\n    option log-file yes\n    subvolumes p\nend-volume\n\n\
             volume wb\n    type performance/write-behind\n    option cache-size 2MB\n    option flush-behind off\n    subvolumes t\nend-volume\n\n"
        );
    }

    #[test]
    fn type_validation_and_init_errors() {
        assert_eq!(
            build("volume a\n type x/y\n option k v\nend-volume\n").unwrap_err(),
            "2:7: Volume 'a': type 'x/y' is not valid or not found on this machine"
        );
        assert_eq!(
            build("volume p\n type storage/posix\n option directory /b\n option o-direct maybe\nend-volume\n")
                .unwrap_err(),
            "4:18: Volume 'p': validation failed: option o-direct maybe: 'maybe' is not a valid boolean value"
        );
        assert_eq!(
            build("volume p\n type storage/posix\n option o-direct on\nend-volume\n").unwrap_err(),
            "1:8: Volume 'p': initializing translator failed: Export directory not specified in volume file."
        );
        assert!(build(
            "volume p\n type storage/posix\n option directory /b\nend-volume\n\
             volume wb\n type performance/write-behind\n subvolumes p ghost\nend-volume\n"
        )
        .is_ok());
        assert!(build(
            "volume p\n type storage/posix\n option directory /b\nend-volume\n\
             volume wb\n type performance/write-behind\n subvolumes ghost\n option a b\nend-volume\n"
        )
        .unwrap_err()
        .contains("exactly one child"));
        assert!(build(
            "volume r\n type storage/ram\n option size-limit 1MB\nend-volume\n\
             volume l\n type features/locks\n subvolumes r\nend-volume\n"
        )
        .is_ok());
        assert!(build(
            "volume p\n type storage/posix\n option directory /b\nend-volume\n\
             volume wb\n type performance/write-behind\n option aggregate-size 2MB\n subvolumes p\nend-volume\n"
        )
        .unwrap_err()
        .contains("aggregate-size(2097152) cannot be more than window-size(1048576)"));
        // A bad log-level is only noticed when the translator's own table has the key.
        assert!(build("volume p\n type storage/posix\n option directory /b\n option log-level LOUD\nend-volume\n").is_ok());
        assert!(build(
            "volume p\n type storage/posix\n option directory /b\nend-volume\n\
             volume s\n type debug/io-stats\n option log-level LOUD\n subvolumes p\nend-volume\n"
        )
        .is_err());
    }

    #[test]
    fn options_have_defaults_and_types() {
        let vf = Vf::parse(STACK.as_bytes()).unwrap();
        let g = Graph::build(&vf, BUILTIN).unwrap();
        assert_eq!(g.option(2, "cache-size"), Some(Value::Size(2 << 20)));
        assert_eq!(g.option(2, "aggregate-size"), Some(Value::Size(128 << 10)));
        assert_eq!(g.option(2, "flush-behind"), Some(Value::Bool(false)));
        assert_eq!(g.option(1, "log-history"), Some(Value::Bool(false)));
        assert_eq!(g.option(0, "create-mask"), Some(Value::Int(0o777)));
        assert_eq!(g.option(1, "include-ops"), None);
        assert_eq!(g.option(1, "no-such"), None);
    }

    fn notices(
        g: &mut Graph<'_, '_, 16, 64, 32>,
        f: impl FnOnce(&mut Graph<'_, '_, 16, 64, 32>, &mut dyn FnMut(Notice)),
    ) -> StdVec<(Event, usize, Option<usize>)> {
        let mut v = StdVec::new();
        f(g, &mut |n: Notice| v.push((n.event, n.from, n.to)));
        v
    }

    const REPLICA: &str = "volume p0\n type storage/posix\n option directory /b0\nend-volume\n\
        volume p1\n type storage/posix\n option directory /b1\nend-volume\n\
        volume r\n type cluster/replicate\n subvolumes p0 p1\nend-volume\n\
        volume top\n type debug/io-stats\n subvolumes r\nend-volume\n";

    #[test]
    fn events_flow_down_then_up_and_aggregators_summarise() {
        use Event::*;
        let vf = Vf::parse(REPLICA.as_bytes()).unwrap();
        let mut g = Graph::build(&vf, BUILTIN).unwrap();
        g.init(&mut AnyDirectory).unwrap();
        let ev = notices(&mut g, |g, out| g.activate(&mut |n| out(n)));
        assert_eq!(
            ev,
            [
                (ParentUp, 3, Some(3)),
                (ParentUp, 3, Some(2)),
                (ParentUp, 2, Some(0)),
                (ParentUp, 2, Some(1)),
                (ChildUp, 0, Some(2)),
                (ChildUp, 1, Some(2)),
                (ChildUp, 2, Some(3)),
                (ChildUp, 3, None),
            ]
        );
        // One replica down: AFR says so without going down itself.
        let ev = notices(&mut g, |g, out| {
            g.child_event(0, ChildDown, &mut |n| out(n))
        });
        assert_eq!(
            ev,
            [
                (ChildDown, 0, Some(2)),
                (SomeDescendentDown, 2, Some(3)),
                (SomeDescendentDown, 3, None)
            ]
        );
        let ev = notices(&mut g, |g, out| {
            g.child_event(1, ChildDown, &mut |n| out(n))
        });
        assert_eq!(ev.last(), Some(&(ChildDown, 3, None)));
        assert_eq!(g.reported(2), Some(ChildState::Down));
        let ev = notices(&mut g, |g, out| g.child_event(1, ChildUp, &mut |n| out(n)));
        assert_eq!(ev.last(), Some(&(ChildUp, 3, None)));
        let mut order = StdVec::new();
        g.fini(&mut |i| order.push(i));
        assert_eq!(order, [0, 1, 2, 3]);
        assert_eq!(g.life(3), Some(Life::Finished));
    }

    #[test]
    fn distribute_waits_for_every_child_and_unreachable_volumes_still_come_up() {
        let src = "volume a\n type storage/ram\n option size-limit 0\nend-volume\n\
            volume b\n type storage/ram\n option size-limit 0\nend-volume\n\
            volume d\n type cluster/distribute\n subvolumes a b a\nend-volume\n\
            volume lone\n type storage/ram\n option size-limit 0\nend-volume\n";
        let vf = Vf::parse(src.as_bytes()).unwrap();
        let mut g = Graph::build(&vf, BUILTIN).unwrap();
        g.init(&mut AnyDirectory).unwrap();
        assert!(!g.reachable(2) && g.reachable(3));
        let ev = notices(&mut g, |g, out| g.activate(&mut |n| out(n)));
        assert!(ev.contains(&(Event::ChildUp, 3, None)));
        assert!(ev.contains(&(Event::ChildUp, 2, None)));
        assert_eq!(
            ev.iter()
                .filter(|e| e.0 == Event::ChildUp && e.1 == 2)
                .count(),
            1
        );
        let mut s = String::new();
        g.write_dump(&mut s).unwrap();
        assert_eq!(
            s,
            "volume lone\n    type storage/ram\n    option size-limit 0\nend-volume\n\n"
        );
    }

    #[test]
    fn a_diamond_ladder_stays_linear_where_it_can() {
        // 20 levels of two io-stats over both volumes of the level below: 2^20 paths.
        let mut src = String::from(
            "volume a0\n type storage/ram\n option size-limit 0\nend-volume\n\
             volume b0\n type storage/ram\n option size-limit 0\nend-volume\n",
        );
        for l in 1..=20 {
            for n in ["a", "b"] {
                src += &std::format!(
                    "volume {n}{l}\n type debug/io-stats\n subvolumes a{p} b{p}\nend-volume\n",
                    p = l - 1
                );
            }
        }
        src += "volume top\n type debug/io-stats\n subvolumes a20 b20\nend-volume\n";
        let vf: Volfile<'_, 64, 64, 128> = Volfile::parse(src.as_bytes()).unwrap();
        let mut g = Graph::build(&vf, BUILTIN).unwrap();
        g.init(&mut AnyDirectory).unwrap();
        let mut ups = 0;
        g.activate(&mut |n| ups += usize::from(n.event == Event::ChildUp && n.to.is_none()));
        assert_eq!(ups, 1);
        // Upstream's dump repeats shared children per path: capped, not exponential.
        let mut s = String::new();
        assert!(g.write_dump(&mut s).is_err());
        let mut n = 0;
        g.fini(&mut |_| n += 1);
        assert_eq!(n, 43);
    }
}
