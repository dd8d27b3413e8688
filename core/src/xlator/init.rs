//! Translator init (translators.md §2.3): every translator's own checks, run in list order (top
//! first) until the first failure, with the [`Host`] answering for brick directories.

use core::fmt;

use heapless::Vec;

use super::graph::{Graph, GraphError, GraphErrorKind, Life};
use super::lex::Word;
use super::options::{self, Value};
use super::types::Kind;

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

impl<'a, const V: usize, const O: usize, const L: usize> Graph<'_, 'a, V, O, L> {
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
}
