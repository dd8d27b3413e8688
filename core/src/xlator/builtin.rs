//! The built-in translators as one table type, [`Builtin`], made from a [`Graph`]: each
//! node's type picks its implementation, so a parsed volfile becomes a runnable graph.
//!
//! | type | here |
//! |---|---|
//! | `storage/ram` | [`RamFs`] over an arena the caller gives per node |
//! | `storage/posix` | served by the shell: each fop is an [`Output::Io`](super::engine::Output::Io) |
//! | `debug/trace` | [`Trace`] |
//! | `debug/io-stats` | [`IoStats`] |
//! | `features/locks` | [`Locks`] |
//! | `performance/write-behind` | [`WriteBehind`] |
//! | `cluster/replicate` | [`Replicate`], its per-file state in a [`ReplicateArena`](super::replicate::ReplicateArena) the caller gives per node ([`Builtin::table_with`]) |
//! | `cluster/distribute` | [`Distribute`] |

use core::fmt;

use heapless::Vec;

use super::args::{errno, Reply, Request};
use super::distribute::{DhtLocal, DhtRef, Distribute};
use super::engine::{CallError, Ctx, Translator, Unwound};
use super::event::Event;
use super::frame::FrameRef;
use super::graph::Graph;
use super::iatt::Gfid;
use super::io_stats::IoStats;
use super::locks::Locks;
use super::options::Value;
use super::ram::RamFs;
use super::replicate::{self, AfrLocal, Replicate, Tables};
use super::trace::Trace;
use super::types::Kind;
use super::write_behind::{Draining, WbLocal, WriteBehind};

/// A built-in translator.
#[derive(Debug)]
// Without an allocator nothing can be boxed: the variants stay inline.
#[allow(clippy::large_enum_variant)]
pub enum Builtin<'m> {
    /// `default_<fop>` for everything: STACK_WIND_TAIL to the first child.
    PassThrough,
    /// `storage/ram`.
    Ram(RamFs<'m>),
    /// `storage/posix`, answered by the shell.
    Shell,
    /// `debug/trace`.
    Trace(Trace),
    /// `debug/io-stats`.
    IoStats(IoStats),
    /// `features/locks`.
    Locks(Locks),
    /// `performance/write-behind`.
    WriteBehind(WriteBehind),
    /// `cluster/distribute`.
    Distribute(Distribute),
    /// `cluster/replicate`.
    Replicate(Replicate<'m>),
    /// A type whose fops are not implemented: each fails with ENOTSUP.
    Unsupported,
}

/// Frame-local state of the built-ins.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Local {
    /// Nothing.
    #[default]
    None,
    /// trace: the gfid of the call, for its unwind line.
    Gfid(Gfid),
    /// write-behind: kept writes on their way down before a fop.
    Draining(Draining),
    /// replicate: a fan-out, read, lookup, transaction or heal.
    Afr(replicate::Local),
    /// distribute: which of its fops in flight this frame's is.
    Dht(DhtRef),
}

impl DhtLocal for Local {
    fn dht(&mut self) -> Option<&mut DhtRef> {
        match self {
            Local::Dht(r) => Some(r),
            _ => None,
        }
    }
    fn from_dht(r: DhtRef) -> Self {
        Local::Dht(r)
    }
}

impl AfrLocal for Local {
    fn afr(&mut self) -> Option<&mut replicate::Local> {
        match self {
            Local::Afr(a) => Some(a),
            _ => None,
        }
    }
    fn from_afr(l: replicate::Local) -> Self {
        Local::Afr(l)
    }
}

impl WbLocal for Local {
    fn draining(&mut self) -> Option<&mut Draining> {
        match self {
            Local::Draining(d) => Some(d),
            _ => None,
        }
    }
    fn from_draining(d: Draining) -> Self {
        Local::Draining(d)
    }
}

impl From<Gfid> for Local {
    fn from(g: Gfid) -> Self {
        Local::Gfid(g)
    }
}

impl From<Local> for Option<Gfid> {
    fn from(l: Local) -> Self {
        match l {
            Local::Gfid(g) => Some(g),
            _ => None,
        }
    }
}

impl Translator for Builtin<'_> {
    type Local = Local;

    fn call(
        &mut self,
        cx: &mut Ctx<'_, '_, Local>,
        frame: FrameRef,
        req: Request,
    ) -> Result<(), CallError> {
        match self {
            Builtin::PassThrough => cx.tail(frame, req),
            Builtin::Ram(fs) => fs.call(cx, frame, req),
            Builtin::Shell => cx.park(frame, req),
            Builtin::Trace(t) => t.call(cx, frame, req),
            Builtin::IoStats(s) => s.call(cx, frame, req),
            Builtin::Locks(l) => l.call(cx, frame, req),
            Builtin::WriteBehind(w) => w.call(cx, frame, req),
            Builtin::Replicate(r) => r.call(cx, frame, req),
            Builtin::Distribute(d) => d.call(cx, frame, req),
            Builtin::Unsupported => cx.unwind(frame, Reply::error(errno::ENOTSUP)),
        }
    }

    fn unwound(
        &mut self,
        cx: &mut Ctx<'_, '_, Local>,
        frame: FrameRef,
        from: Unwound,
    ) -> Result<(), CallError> {
        match self {
            Builtin::Trace(t) => t.unwound(cx, frame, from),
            Builtin::IoStats(s) => s.unwound(cx, frame, from),
            Builtin::Locks(l) => l.unwound(cx, frame, from),
            Builtin::WriteBehind(w) => w.unwound(cx, frame, from),
            Builtin::Replicate(r) => r.unwound(cx, frame, from),
            Builtin::Distribute(d) => d.unwound(cx, frame, from),
            _ => cx.unwind(frame, from.reply),
        }
    }

    fn notify(&mut self, from: usize, event: Event) {
        match self {
            Builtin::Replicate(r) => r.notify(from, event),
            Builtin::Distribute(d) => d.notify(from, event),
            _ => {}
        }
    }

    fn background(&self, now: u64) -> Option<Request> {
        match self {
            Builtin::Replicate(r) => r.background(now),
            _ => None,
        }
    }
}

/// A graph the built-ins cannot run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum BuildError {
    /// No arena was given for this `storage/ram` node.
    NoArena {
        /// The node.
        node: usize,
    },
    /// More translators than the table holds.
    Capacity {
        /// Translators in the graph.
        needed: usize,
    },
    /// This node's configuration is one Keelson does not implement.
    Unsupported {
        /// The node.
        node: usize,
        /// What is missing.
        reason: &'static str,
    },
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuildError::NoArena { node } => {
                write!(f, "storage/ram volume {node} needs an arena")
            }
            BuildError::Capacity { needed } => {
                write!(f, "the translator table needs room for {needed} entries")
            }
            BuildError::Unsupported { node, reason } => write!(f, "volume {node}: {reason}"),
        }
    }
}

impl core::error::Error for BuildError {}

impl<'m> Builtin<'m> {
    /// One built-in per node of `g`, in node order. `arena(node, size_limit)` makes the
    /// filesystem of each `storage/ram` node; `now` stamps their roots.
    pub fn table<const N: usize, const V: usize, const O: usize, const L: usize>(
        g: &Graph<'_, '_, V, O, L>,
        now: u64,
        arena: &mut dyn FnMut(usize, u64, u64) -> Option<RamFs<'m>>,
    ) -> Result<Vec<Builtin<'m>, N>, BuildError> {
        Self::table_with(g, now, arena, &mut |_| None)
    }

    /// As [`table`](Self::table), and `afr(node)` lends each `cluster/replicate` node the
    /// tables of a [`ReplicateArena`](super::replicate::ReplicateArena) (without, it keeps no
    /// per-file state: see the [replicate module](crate::xlator::replicate)). A replicate node with more than
    /// [`MAX_CHILDREN`](super::replicate::MAX_CHILDREN) children fails every fop ENOTSUP.
    pub fn table_with<const N: usize, const V: usize, const O: usize, const L: usize>(
        g: &Graph<'_, '_, V, O, L>,
        now: u64,
        arena: &mut dyn FnMut(usize, u64, u64) -> Option<RamFs<'m>>,
        afr: &mut dyn FnMut(usize) -> Option<Tables<'m>>,
    ) -> Result<Vec<Builtin<'m>, N>, BuildError> {
        let mut t = Vec::new();
        for i in 0..g.len() {
            let kind = g.xlator_type(i).map(|x| x.kind);
            let b = match kind {
                Some(Kind::Ram) => {
                    let limit = match g.option(i, "size-limit") {
                        Some(Value::Size(n)) => n,
                        _ => 0,
                    };
                    Builtin::Ram(arena(i, limit, now).ok_or(BuildError::NoArena { node: i })?)
                }
                Some(Kind::Posix) => Builtin::Shell,
                Some(Kind::Trace) => Builtin::Trace(Trace::from_graph(g, i)),
                Some(Kind::IoStats) => Builtin::IoStats(IoStats::new(now)),
                Some(Kind::Locks) => Builtin::Locks(Locks::default()),
                Some(Kind::WriteBehind) => {
                    let window = match g.option(i, "cache-size") {
                        Some(Value::Size(n)) => n,
                        _ => 1 << 20,
                    };
                    Builtin::WriteBehind(WriteBehind::new(window))
                }
                Some(Kind::Replicate) => {
                    let tables = afr(i).unwrap_or_default();
                    Replicate::from_graph(g, i, tables)
                        .map_or(Builtin::Unsupported, Builtin::Replicate)
                }
                Some(Kind::Distribute) => {
                    Builtin::Distribute(Distribute::from_graph(g, i).map_err(|e| {
                        BuildError::Unsupported {
                            node: i,
                            reason: e.reason(),
                        }
                    })?)
                }
                None => Builtin::Unsupported,
            };
            t.push(b)
                .map_err(|_| BuildError::Capacity { needed: g.len() })?;
        }
        Ok(t)
    }
}
