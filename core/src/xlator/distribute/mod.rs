//! `cluster/distribute` (DHT, translators.md §5.3): spreads a namespace over its subvolumes
//! by hashing each basename into the hash ranges its parent directory assigns them, as
//! glusterfs 10.3 places files, so a brick set written by Keelson or by glusterfs looks the
//! same to the other.
//!
//! - [`layout`]: ranges, their assignment to a new directory ([`layout_of`]), the
//!   `trusted.glusterfs.dht` xattr form, anomalies, and [`hashed_subvol`].
//! - [`tables`]: what is remembered between fops: layouts, file locations, open fds.
//! - `call`: the state of a fop in flight (kept in the translator, one [`DhtRef`] in the
//!   frame) and the fan-out machinery.
//! - `flow`: each fop's steps; `readdir`: listings merged over the subvolumes.
//!
//! What each fop does:
//! - **Directories** exist on every subvolume. A lookup that finds one asks every subvolume,
//!   merges the attributes as `dht_iatt_merge` does and reads the layout xattr from each; a
//!   layout with holes or overlaps (a new brick set's root, say) is rewritten as glusterfs's
//!   self-heal does, with commit hash 1. `mkdir` goes to the hashed subvolume first (which
//!   also gets `trusted.glusterfs.dht.mds`), then to the others, then each gets its range;
//!   the ranges start at `hash(path) mod N` and are weighted by brick size (statfs) under
//!   `weighted-rebalance`.
//! - **Files** are created (create, mknod, symlink) on the subvolume their name hashes to.
//!   A lookup asks that subvolume; a *linkto* file there (mode `---------T`, xattr
//!   `trusted.glusterfs.dht.linkto` = the data's subvolume name + NUL) is followed; a miss
//!   asks every subvolume unless the parent's layout is current (`lookup-optimize`).
//! - **rename** of a file leaves the data where it is; when the new name hashes elsewhere, a
//!   linkto file is made there (and an old one removed), as `dht_rename` leaves them.
//!   Renaming a directory renames it on every subvolume.
//! - **unlink** goes to every subvolume (the data and any linkto go together); **rmdir**
//!   first lists the directory on each subvolume and refuses (ENOTEMPTY) while any holds an
//!   entry, linkto files included.
//! - **readdir(p)** reads one subvolume after the other: the offset carries the subvolume
//!   (`d_off × N + position`); linkto files are hidden and directories are listed from the
//!   first subvolume only (as `readdir-optimize` does).
//! - Fops by gfid or fd go where the object is: a directory's to every subvolume (changes)
//!   or the first (reads), a file's to its subvolume, found by lookup when not remembered.
//! - **statfs** adds up the subvolumes.
//!
//! Differences from glusterfs: no namespace or layout locks are taken (the engine runs one
//! request's steps in order); a directory missing on some subvolume is left without a range
//! instead of being recreated; a file found only by asking everyone gets no linkto file on
//! its hashed subvolume; readdirp hides linkto files by mode alone (the xattr is not fetched
//! per entry); a directory rename that fails on some subvolumes is not rolled back;
//! `min-free-disk`, rebalance and migration are not implemented; a custom
//! `rsync-hash-regex` or `extra-hash-regex` is refused when the graph is built (the default
//! regex is matched byte-wise, and `none` is honoured).
//!
//! Capacities (so that a distribute translator is no larger than write-behind in a table of
//! built-ins): [`SUBVOLS_MAX`] subvolumes; [`CALLS`] fop in flight per translator (another
//! meanwhile fails with EAGAIN); [`tables::LAYOUTS`] layouts, [`tables::FILES`] file
//! locations (forgetting the least recently used, which costs a lookup later) and
//! [`tables::FDS`] open fds (one more open fails with ENOMEM).
//!
//! Internal fds (rmdir's listing) are numbered from [`INTERNAL_FD`] up, a range an
//! originator is not expected to use.

pub mod layout;
pub mod tables;

mod call;
mod flow;
mod readdir;

use heapless::Vec;

use super::args::{Fd, Request};
use super::ctx::Ctx;
use super::engine::{CallError, Unwound};
use super::event::Event;
use super::frame::FrameRef;
use super::graph::Graph;
use super::iatt::Gfid;
use super::options::Value;

pub(crate) use call::DhtCall;
pub use layout::{hashed_subvol, layout_of, Layout, Range, SUBVOLS_MAX};
use tables::{FdTarget, Tables};

/// Bytes of subvolume names kept (for linkto files).
pub const NAMES_MAX: usize = 384;
/// Longest `xattr-name`.
pub const XATTR_NAME_MAX: usize = 64;
/// The first fd number distribute uses for its own opens.
pub const INTERNAL_FD: u64 = 1 << 63;

/// The default `rsync-hash-regex`, which Keelson implements.
const RSYNC_REGEX: &[u8] = br"^\.(.+)\.[^.]+$";

/// Distribute fops in flight at once (per translator); one more fails with EAGAIN.
pub const CALLS: usize = 1;

/// What a frame's local holds for distribute: which of the translator's in-flight fops is
/// the frame's. (The fop's state itself lives in the translator, so frames stay small.)
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct DhtRef {
    slot: u8,
    gen: u32,
}

/// What a translator table's local must hold for distribute.
pub trait DhtLocal: Default {
    /// The distribute reference, if this is one.
    fn dht(&mut self) -> Option<&mut DhtRef>;
    /// A local holding `r`.
    fn from_dht(r: DhtRef) -> Self;
}

/// One in-flight fop: its frame and state.
#[derive(Clone, Copy, Debug)]
struct InFlight {
    gen: u32,
    frame: Option<FrameRef>,
    call: DhtCall,
}

/// The options distribute acts on.
#[derive(Clone, Debug)]
pub(crate) struct Conf {
    /// `xattr-name`: the layout xattr; `.linkto` and `.mds` are appended for the others.
    pub(crate) xattr: Vec<u8, XATTR_NAME_MAX>,
    /// `lookup-unhashed`: a miss on the hashed subvolume asks everyone (unless optimized).
    pub(crate) lookup_unhashed: bool,
    /// `lookup-optimize`.
    pub(crate) lookup_optimize: bool,
    /// `weighted-rebalance`.
    pub(crate) weighted: bool,
    /// `randomize-hash-range-by-gfid`.
    pub(crate) by_gfid: bool,
    /// `directory-layout-spread` (0: none).
    pub(crate) spread: usize,
    /// The volume commit hash (`commit-hash`, else 0).
    pub(crate) commit: u32,
    /// The default rsync regex is on (not `none`).
    pub(crate) munge: bool,
}

/// Why a distribute volume cannot run here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum DhtError {
    /// More than [`SUBVOLS_MAX`] subvolumes.
    TooManySubvolumes,
    /// The subvolume names take more than [`NAMES_MAX`] bytes.
    NamesTooLong,
    /// `xattr-name` is longer than [`XATTR_NAME_MAX`] bytes.
    XattrNameTooLong,
    /// A hash regex other than the default (or `none`) is set.
    CustomRegex,
}

impl DhtError {
    /// What to tell the user.
    pub fn reason(self) -> &'static str {
        match self {
            DhtError::TooManySubvolumes => "cluster/distribute takes at most 16 subvolumes here",
            DhtError::NamesTooLong => "cluster/distribute's subvolume names are too long",
            DhtError::XattrNameTooLong => "cluster/distribute's xattr-name is too long",
            DhtError::CustomRegex => {
                "cluster/distribute: only the default rsync-hash-regex (or none) is implemented"
            }
        }
    }
}

impl core::fmt::Display for DhtError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.reason())
    }
}

/// A distribute translator: its subvolumes, options and tables.
#[derive(Clone, Debug)]
pub struct Distribute {
    /// Subvolumes.
    n: u8,
    /// Graph node of each position.
    nodes: [u16; SUBVOLS_MAX],
    /// Positions in name order.
    order: [u8; SUBVOLS_MAX],
    /// The names, one after the other; `ends[k]` is where position k's ends.
    names: Vec<u8, NAMES_MAX>,
    ends: [u16; SUBVOLS_MAX],
    /// Bit k: position k is up.
    up: u16,
    /// Bit k: position k is decommissioned (gets no range).
    decommissioned: u16,
    /// Per position, the brick size in MiB chunks, once statfs told.
    chunks: [Option<u32>; SUBVOLS_MAX],
    conf: Conf,
    tables: Tables,
    next_fd: u64,
    calls: [InFlight; CALLS],
}

impl Distribute {
    /// The translator for node `i` of `g` (its children, names and options).
    pub fn from_graph<const V: usize, const O: usize, const L: usize>(
        g: &Graph<'_, '_, V, O, L>,
        i: usize,
    ) -> Result<Distribute, DhtError> {
        let mut nodes = [0u16; SUBVOLS_MAX];
        let mut names: Vec<u8, NAMES_MAX> = Vec::new();
        let mut ends = [0u16; SUBVOLS_MAX];
        let mut n = 0;
        for c in g.children(i) {
            let slot = nodes.get_mut(n).ok_or(DhtError::TooManySubvolumes)?;
            *slot = c as u16;
            for b in g.name(c).bytes() {
                names.push(b).map_err(|_| DhtError::NamesTooLong)?;
            }
            ends[n] = names.len() as u16;
            n += 1;
        }
        let bool_opt = |key: &str, default: bool| match g.option(i, key) {
            Some(Value::Bool(b)) => b,
            _ => default,
        };
        let mut xattr: Vec<u8, XATTR_NAME_MAX> = Vec::new();
        match g.option(i, "xattr-name") {
            Some(Value::Text(w)) => {
                for b in w.bytes() {
                    xattr.push(b).map_err(|_| DhtError::XattrNameTooLong)?;
                }
            }
            _ => {
                let _ = xattr.extend_from_slice(b"trusted.glusterfs.dht");
            }
        }
        // `.linkto` is the longest suffix appended.
        if xattr.len() + ".linkto".len() > XATTR_NAME_MAX {
            return Err(DhtError::XattrNameTooLong);
        }
        let munge = match g.option(i, "rsync-hash-regex") {
            None => true,
            Some(Value::Text(w)) if w.eq_bytes(b"none") => false,
            Some(Value::Text(w)) if w.eq_bytes(RSYNC_REGEX) => true,
            Some(_) => return Err(DhtError::CustomRegex),
        };
        if g.is_set(i, "extra-hash-regex") {
            return Err(DhtError::CustomRegex);
        }
        let lookup_unhashed = !matches!(
            g.option(i, "lookup-unhashed"),
            Some(Value::Text(w)) if ["no", "disable", "0", "off"].iter().any(|s| w.eq_bytes(s.as_bytes()))
        );
        let spread = match g.option(i, "directory-layout-spread") {
            Some(Value::Int(s)) => usize::try_from(s).unwrap_or(0),
            _ => 0,
        };
        let commit = match g.option(i, "commit-hash") {
            Some(Value::Int(c)) => c as u32,
            _ => 0,
        };
        let mut decommissioned = 0u16;
        if let Some(Value::Text(list)) = g.option(i, "decommissioned-bricks") {
            let mut buf = [0u8; 512];
            let text = list.decode_into(&mut buf).unwrap_or_default();
            for name in text.split(|&c| c == b',').filter(|s| !s.is_empty()) {
                for k in 0..n {
                    if Self::name_in(&names, &ends, k) == Some(name) {
                        decommissioned |= 1 << k;
                    }
                }
            }
        }
        let mut order: [u8; SUBVOLS_MAX] = core::array::from_fn(|k| k as u8);
        order[..n].sort_unstable_by(|&a, &b| {
            Self::name_in(&names, &ends, usize::from(a)).cmp(&Self::name_in(
                &names,
                &ends,
                usize::from(b),
            ))
        });
        Ok(Distribute {
            n: n as u8,
            nodes,
            order,
            names,
            ends,
            up: layout::mask(n),
            decommissioned,
            chunks: [None; SUBVOLS_MAX],
            conf: Conf {
                xattr,
                lookup_unhashed,
                lookup_optimize: bool_opt("lookup-optimize", true),
                weighted: bool_opt("weighted-rebalance", true),
                by_gfid: bool_opt("randomize-hash-range-by-gfid", false),
                spread,
                commit,
                munge,
            },
            tables: Tables::default(),
            next_fd: INTERNAL_FD,
            calls: [InFlight {
                gen: 0,
                frame: None,
                call: DhtCall::new(Request::Flush { fd: Fd(0) }),
            }; CALLS],
        })
    }

    fn name_in<'n>(names: &'n [u8], ends: &[u16], k: usize) -> Option<&'n [u8]> {
        let start = match k {
            0 => 0,
            _ => usize::from(*ends.get(k - 1)?),
        };
        names.get(start..usize::from(*ends.get(k)?))
    }

    /// Subvolumes.
    pub fn subvolumes(&self) -> usize {
        usize::from(self.n)
    }

    /// Position k's volume name.
    pub fn subvolume_name(&self, k: usize) -> Option<&[u8]> {
        if k >= self.subvolumes() {
            return None;
        }
        Self::name_in(&self.names, &self.ends, k)
    }

    /// The position of the subvolume that is graph node `node`.
    pub fn position(&self, node: usize) -> Option<usize> {
        self.nodes[..self.subvolumes()]
            .iter()
            .position(|&c| usize::from(c) == node)
    }

    /// Marks the subvolume at graph node `node` up (CHILD_UP): it takes part in fops again,
    /// and its size is asked anew before the next layout is assigned.
    pub fn set_child_up(&mut self, node: usize) {
        if let Some(k) = self.position(node) {
            self.up |= 1 << k;
            self.chunks[k] = None;
        }
    }

    /// Marks the subvolume at graph node `node` down (CHILD_DOWN): fops skip it, new layouts
    /// leave it out, and a file only it holds answers ENOTCONN.
    pub fn set_child_down(&mut self, node: usize) {
        if let Some(k) = self.position(node) {
            self.up &= !(1 << k);
        }
    }

    /// CHILD_UP / CHILD_DOWN from the child at `node` (other events are ignored).
    pub fn notify(&mut self, node: usize, event: Event) {
        match event {
            Event::ChildUp => self.set_child_up(node),
            Event::ChildDown => self.set_child_down(node),
            _ => {}
        }
    }

    /// Bit k: position k is up.
    pub fn up_mask(&self) -> u16 {
        self.up & layout::mask(self.subvolumes())
    }

    /// The layout remembered for directory `gfid`.
    pub fn layout(&self, gfid: &Gfid) -> Option<Layout> {
        self.tables.layouts.peek(gfid)
    }

    /// The position of the subvolume remembered to hold file `gfid`.
    pub fn cached_subvol(&self, gfid: &Gfid) -> Option<usize> {
        self.tables.files.peek(gfid).map(usize::from)
    }

    /// Fds open through this translator.
    pub fn open_fds(&self) -> usize {
        self.tables.fds.len()
    }

    /// Where fd `fd` is open: its subvolume mask.
    pub fn fd_subvols(&self, fd: Fd) -> Option<u16> {
        self.tables.fds.peek(&fd).map(|t| match t {
            FdTarget::File(k) => 1 << k,
            FdTarget::Dir(m) => m,
        })
    }

    /// Fops in flight.
    pub fn in_flight(&self) -> usize {
        self.calls.iter().filter(|c| c.frame.is_some()).count()
    }

    /// The fop.
    pub fn call<L: DhtLocal>(
        &mut self,
        cx: &mut Ctx<'_, '_, L>,
        frame: FrameRef,
        req: Request,
    ) -> Result<(), CallError> {
        // A slot whose frame is gone (its stack was destroyed) is free again.
        let free = self
            .calls
            .iter()
            .position(|c| c.frame.is_none_or(|f| cx.begin(f).is_err()));
        let Some(slot) = free else {
            return cx.unwind(frame, super::args::Reply::error(super::args::errno::EAGAIN));
        };
        let mut st = DhtCall::new(req);
        let out = self.begin(cx, frame, &mut st);
        self.settle(cx, frame, slot, st, out)
    }

    /// A subvolume answered.
    pub fn unwound<L: DhtLocal>(
        &mut self,
        cx: &mut Ctx<'_, '_, L>,
        frame: FrameRef,
        from: Unwound,
    ) -> Result<(), CallError> {
        let Some(r) = cx.local(frame)?.dht().copied() else {
            return cx.unwind(frame, from.reply);
        };
        let slot = usize::from(r.slot);
        let Some(mut st) = self
            .calls
            .get(slot)
            .filter(|c| c.gen == r.gen && c.frame == Some(frame))
            .map(|c| c.call)
        else {
            return Err(CallError::Stale);
        };
        let out = self.answered(cx, frame, &mut st, from);
        self.settle(cx, frame, slot, st, out)
    }

    /// Keeps `st` in flight in `slot` for `frame`, or frees the slot.
    fn park<L: DhtLocal>(
        &mut self,
        cx: &mut Ctx<'_, '_, L>,
        frame: FrameRef,
        slot: usize,
        st: Option<DhtCall>,
    ) -> Result<(), CallError> {
        let Some(c) = self.calls.get_mut(slot) else {
            return Err(CallError::Stale);
        };
        match st {
            Some(call) => {
                if c.frame != Some(frame) {
                    c.gen = c.gen.wrapping_add(1);
                }
                c.frame = Some(frame);
                c.call = call;
                let r = DhtRef {
                    slot: slot as u8,
                    gen: c.gen,
                };
                *cx.local(frame)? = L::from_dht(r);
            }
            None => {
                c.frame = None;
                if cx.local(frame)?.dht().is_some() {
                    cx.take_local(frame)?;
                }
            }
        }
        Ok(())
    }
}
