//! The translator graph a [`Volfile`] describes (translators.md §2): type resolution, option
//! validation with aliases and defaults, init in list order, event propagation and fini.
//!
//! Volume indices are file order. Upstream's xlator list is the reverse (each new volume is
//! prepended), so "list order" here is descending index, and the top is the last volume. A
//! child is always defined before its parents, so ascending index order visits children
//! before parents; events are propagated with one sweep in each direction and never recurse.

use core::fmt;

use heapless::Vec;

use super::event::Event;
use super::lex::{Pos, Word};
use super::options::{self, OptionError, OptionSpec, Value};
use super::types::{self, Kind, XlatorType, DEFAULT_OPTIONS};
use super::volfile::{OptionEntry, Volfile};

/// Why an `init` failed (upstream's messages, §2.3).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum InitFailure<'a> {
    /// The type needs another number of children.
    Children(Kind),
    /// storage/posix without `option directory`.
    NoDirectory,
    /// The host refused the brick directory.
    Directory(Word<'a>),
    /// features/locks whose first-child chain does not end in a storage type.
    NotOverStorage,
    /// debug/trace with both `include-ops` and `exclude-ops`.
    IncludeAndExclude,
    /// performance/write-behind with `aggregate-size` above its window.
    AggregateAboveWindow {
        /// `aggregate-size` in bytes.
        aggregate: u64,
        /// `cache-size` in bytes.
        window: u64,
    },
    /// cluster/replicate's `read-subvolume` is not one of its children.
    NotASubvolume(Word<'a>),
    /// cluster/replicate's `read-subvolume-index` is not below its child count.
    NotASubvolumeIndex(i64),
    /// storage/posix's `volume-id` is not a UUID.
    BadVolumeId(Word<'a>),
    /// storage/posix's `volume-id` differs from the one the brick directory carries.
    VolumeIdMismatch(Word<'a>),
    /// storage/posix has a `volume-id` but its brick directory carries none.
    VolumeIdAbsent,
    /// cluster/distribute with `rebalance-cmd` but no `node-uuid`.
    NoNodeUuid,
    /// cluster/distribute's `node-uuid` (in rebalance mode) is not a UUID.
    BadNodeUuid(Word<'a>),
    /// cluster/distribute in rebalance mode (`rebalance-cmd` non-zero): upstream starts a
    /// rebalance crawl from init and exits when it ends; Keelson does not rebalance.
    Rebalance,
    /// cluster/distribute's `decommissioned-bricks` names something that is not a child.
    NotDecommissionable(Word<'a>),
    /// cluster/replicate's `data-self-heal` is not a boolean: its table allows `open`, but its
    /// init reads the value as a boolean.
    DataSelfHeal(Word<'a>),
}

impl fmt::Display for InitFailure<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InitFailure::Children(kind) => f.write_str(match kind {
                Kind::Posix => "FATAL: storage/posix cannot have subvolumes",
                Kind::Ram => "storage/ram cannot have subvolumes",
                Kind::Trace => "trace translator requires one subvolume",
                Kind::IoStats => "io_stats translator requires at least one subvolume",
                Kind::Distribute => "Distribute needs more than one subvolume",
                Kind::Replicate => "replicate translator needs more than one subvolume defined.",
                Kind::WriteBehind => "FATAL: write-behind not configured with exactly one child",
                Kind::Locks => "FATAL: posix-locks should have exactly one child",
            }),
            InitFailure::NoDirectory => {
                f.write_str("Export directory not specified in volume file.")
            }
            InitFailure::Directory(d) => write!(f, "Directory '{d}' doesn't exist, exiting."),
            InitFailure::NotOverStorage => {
                f.write_str("'locks' translator is not loaded over a storage translator")
            }
            InitFailure::IncludeAndExclude => {
                f.write_str("must specify only one of 'include-ops' and 'exclude-ops'")
            }
            InitFailure::AggregateAboveWindow { aggregate, window } => write!(
                f,
                "aggregate-size({aggregate}) cannot be more than window-size({window})"
            ),
            InitFailure::NotASubvolume(s) => write!(f, "{s} not a subvolume"),
            InitFailure::NotASubvolumeIndex(i) => write!(f, "{i} not a subvolume-index"),
            InitFailure::BadVolumeId(v) => write!(f, "wrong volume-id ({v}) set in volume file"),
            InitFailure::VolumeIdMismatch(v) => write!(
                f,
                "mismatching volume-id ({v}) received. already is a part of another volume"
            ),
            InitFailure::VolumeIdAbsent => {
                f.write_str("Extended attribute trusted.glusterfs.volume-id is absent")
            }
            InitFailure::NoNodeUuid => {
                f.write_str("Invalid volume configuration: node-uuid not specified")
            }
            InitFailure::BadNodeUuid(_) => {
                f.write_str("Invalid option: Cannot parse glusterd node uuid")
            }
            InitFailure::Rebalance => f.write_str(
                "rebalance-cmd starts a rebalance process, which Keelson does not implement",
            ),
            InitFailure::NotDecommissionable(v) => {
                write!(
                    f,
                    "decommissioned-bricks '{v}' names a volume that is not a subvolume"
                )
            }
            InitFailure::DataSelfHeal(v) => write!(f, "data-self-heal '{v}' is not a boolean"),
        }
    }
}

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

/// What a brick directory says about its volume (`trusted.glusterfs.volume-id`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum BrickVolumeId {
    /// The host cannot tell (no file system): any `volume-id` option is taken as matching.
    Unknown,
    /// The directory has no such attribute.
    Absent,
    /// The 16 bytes it has.
    Id([u8; 16]),
}

/// What the host says about a storage/posix brick directory.
pub trait Host {
    /// Whether `path` is a usable brick directory (upstream stats it and needs a directory).
    fn brick_directory(&mut self, path: &Word<'_>) -> bool {
        let _ = path;
        true
    }

    /// The volume id the brick directory `path` carries.
    fn brick_volume_id(&mut self, path: &Word<'_>) -> BrickVolumeId {
        let _ = path;
        BrickVolumeId::Unknown
    }
}

/// A host that accepts every directory (no file system to ask).
#[derive(Clone, Copy, Debug, Default)]
pub struct AnyDirectory;

impl Host for AnyDirectory {}

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

#[derive(Clone, Copy, Debug, Default)]
struct Node {
    life: Life,
    parent_up: bool,
    parent_down: bool,
    reported: Option<ChildState>,
    /// Children up, as an aggregator last counted them.
    up: usize,
    /// Set during one sweep: `reported` changed.
    changed: bool,
    /// Set during one sweep: SOME_DESCENDENT_DOWN / _UP to pass up.
    descendent: (bool, bool),
}

#[derive(Clone, Copy, Debug)]
struct OptInfo {
    spec: Option<&'static OptionSpec>,
    renamed: bool,
}

/// The translator graph over a parsed volfile: `V` volumes, `O` options, `L` links.
#[derive(Clone, Debug)]
pub struct Graph<'v, 'a, const V: usize, const O: usize, const L: usize> {
    vf: &'v Volfile<'a, V, O, L>,
    types: Vec<&'static XlatorType, V>,
    opts: Vec<OptInfo, O>,
    nodes: Vec<Node, V>,
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
    fn find(&self, i: usize, key: &str) -> Option<(&'static OptionSpec, Option<&OptionEntry<'a>>)> {
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

    fn size(&self, i: usize, key: &str) -> u64 {
        match self.option(i, key) {
            Some(Value::Size(n)) => n,
            _ => 0,
        }
    }

    /// Runs every translator's `init` in list order (top first) and stops at the first
    /// failure, as `glusterfs_graph_init` does. `host` answers for brick directories.
    pub fn init(&mut self, host: &mut impl Host) -> Result<(), GraphError<'a>> {
        for i in self.list_order() {
            if let Err(failure) = self.check_init(i, host) {
                let v = self.vf.volume(i);
                return Err(GraphError {
                    kind: GraphErrorKind::Init {
                        volume: self.name(i),
                        failure,
                    },
                    pos: self.vf.pos(v.map_or(0, |v| v.name_at)),
                });
            }
            if let Some(n) = self.nodes.get_mut(i) {
                n.life = Life::Initialised;
            }
        }
        Ok(())
    }

    fn check_init(&self, i: usize, host: &mut impl Host) -> Result<(), InitFailure<'a>> {
        let Some(t) = self.types.get(i) else {
            return Ok(());
        };
        let n = self.children(i).count();
        let ok = match t.kind {
            Kind::Posix | Kind::Ram => n == 0,
            Kind::Trace | Kind::WriteBehind | Kind::Locks => n == 1,
            Kind::IoStats | Kind::Distribute | Kind::Replicate => n >= 1,
        };
        if !ok {
            return Err(InitFailure::Children(t.kind));
        }
        match t.kind {
            Kind::Posix => {
                let dir = self
                    .find(i, "directory")
                    .and_then(|(_, g)| g)
                    .ok_or(InitFailure::NoDirectory)?;
                if !host.brick_directory(&dir.value) {
                    return Err(InitFailure::Directory(dir.value));
                }
                if let Some((_, Some(id))) = self.find(i, "volume-id") {
                    let mut buf = [0u8; 40];
                    let want = id
                        .value
                        .decode_into(&mut buf)
                        .and_then(options::parse_uuid)
                        .ok_or(InitFailure::BadVolumeId(id.value))?;
                    match host.brick_volume_id(&dir.value) {
                        BrickVolumeId::Unknown => {}
                        BrickVolumeId::Absent => return Err(InitFailure::VolumeIdAbsent),
                        BrickVolumeId::Id(have) if have != want => {
                            return Err(InitFailure::VolumeIdMismatch(id.value))
                        }
                        BrickVolumeId::Id(_) => {}
                    }
                }
            }
            Kind::Trace => {
                if self.is_set(i, "include-ops") && self.is_set(i, "exclude-ops") {
                    return Err(InitFailure::IncludeAndExclude);
                }
            }
            Kind::WriteBehind => {
                let (aggregate, window) =
                    (self.size(i, "aggregate-size"), self.size(i, "cache-size"));
                if window < aggregate {
                    return Err(InitFailure::AggregateAboveWindow { aggregate, window });
                }
            }
            Kind::Locks => {
                let mut leaf = i;
                while let Some(c) = self.children(leaf).next() {
                    leaf = c;
                }
                let storage = self
                    .types
                    .get(leaf)
                    .is_some_and(|t| t.name.starts_with("storage/"));
                if !storage {
                    return Err(InitFailure::NotOverStorage);
                }
            }
            Kind::Replicate => {
                if let Some(Value::Text(s)) = self.option(i, "read-subvolume") {
                    if !self.children(i).any(|c| self.name(c).eq_word(&s)) {
                        return Err(InitFailure::NotASubvolume(s));
                    }
                }
                if let Some(Value::Text(v)) = self.option(i, "data-self-heal") {
                    let mut buf = [0u8; 16];
                    if v.decode_into(&mut buf)
                        .and_then(options::parse_bool)
                        .is_none()
                    {
                        return Err(InitFailure::DataSelfHeal(v));
                    }
                }
                if let Some(Value::Int(k)) = self.option(i, "read-subvolume-index") {
                    if k > -1 && usize::try_from(k).map_or(true, |k| k >= n) {
                        return Err(InitFailure::NotASubvolumeIndex(k));
                    }
                }
            }
            Kind::Distribute => {
                // dht_init reads it as int32: only the low 32 bits decide.
                if let Some(Value::Int(cmd)) = self.option(i, "rebalance-cmd") {
                    if cmd as i32 != 0 {
                        let given = self.find(i, "node-uuid").and_then(|(_, g)| g);
                        let uuid = given.ok_or(InitFailure::NoNodeUuid)?.value;
                        let mut buf = [0u8; 40];
                        if uuid
                            .decode_into(&mut buf)
                            .and_then(options::parse_uuid)
                            .is_none()
                        {
                            return Err(InitFailure::BadNodeUuid(uuid));
                        }
                        return Err(InitFailure::Rebalance);
                    }
                }
                if let Some((_, Some(list))) = self.find(i, "decommissioned-bricks") {
                    self.check_decommissioned(i, list.value)?;
                }
            }
            Kind::Ram | Kind::IoStats => {}
        }
        Ok(())
    }

    /// Every comma-separated name (empty ones skipped, as `strtok_r` does) must be a child.
    fn check_decommissioned(&self, i: usize, list: Word<'a>) -> Result<(), InitFailure<'a>> {
        let mut bytes = list.bytes().peekable();
        while bytes.peek().is_some() {
            let mut name = bytes.by_ref().take_while(|&c| c != b',').peekable();
            if name.peek().is_none() {
                continue;
            }
            // Compare the name against every child without buffering it.
            let name: Vec<u8, 257> = name.take(257).collect();
            let known = name.len() <= 256
                && self
                    .children(i)
                    .any(|c| self.name(c).eq_bytes(name.as_slice()));
            if !known {
                return Err(InitFailure::NotDecommissionable(list));
            }
        }
        Ok(())
    }

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

    /// Depth-first post-order from the top; stops when `visit` returns false. With `once`,
    /// each translator is visited once; without it, a shared child once per path (as
    /// upstream's dump does, which a crafted DAG makes exponential: callers must cap it).
    fn post_order(&self, once: bool, visit: &mut impl FnMut(usize) -> bool) {
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
