//! What `status` reports: a plain-data [`Status`] per resource (one volume, at most one peer, as
//! Keelson's two-node resources have), and its config-tree form in the reply, so the wire
//! carries data and the client renders ([`super::render`]).
//!
//! ```text
//! response = "OK"
//! resource {
//!     name = "r0"            node_id = 0            role = "Primary"
//!     disk = "UpToDate"      size_kib = 102716
//!     peer {
//!         name = "beta"      node_id = 1            connection = "Connected"
//!         role = "Secondary" replication = "SyncSource"  disk = "Inconsistent"
//!         out_of_sync_kib = 73580   paused_user = 0   paused_peer = 0
//!         resync { total_bits = 25679  remaining_bits = 18395  failed_bits = 0
//!                  speed_kib = 2432  average_kib = 2432  want_kib = 4096  eta_s = 12  stalled = 0 }
//!     }
//! }
//! ```
//!
//! (one `key = value` per line on the wire). States travel as DRBD's names. `node_id`,
//! `size_kib`, `peer`, `resync`, `want_kib` and `eta_s` may be absent.

use core::fmt;

use crate::config::{Lookup, NodeRef, Overflow, Sink, TreeView};
use crate::daemon::simple::{write_int_line, write_str_line};
use crate::repl::bitmap::BLOCK_SHIFT;
use crate::repl::conn::state::{ConnState, DiskState, ReplState, Role};
use crate::repl::throttle::Progress;

/// KiB one bitmap bit covers.
pub const KIB_PER_BIT: u64 = 1 << (BLOCK_SHIFT - 10);

/// One resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Status<'a> {
    /// Its name.
    pub name: &'a str,
    /// This node's id.
    pub node_id: Option<u32>,
    /// This node's role.
    pub role: Role,
    /// The local disk.
    pub disk: DiskState,
    /// Device size in KiB, once known.
    pub size_kib: Option<u64>,
    /// The peer, once configured.
    pub peer: Option<PeerStatus<'a>>,
}

/// The peer of a resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerStatus<'a> {
    /// Its name (host name in the configuration; may be empty).
    pub name: &'a str,
    /// Its node id.
    pub node_id: Option<u32>,
    /// The connection.
    pub connection: ConnState,
    /// Its role as last reported.
    pub role: Role,
    /// The volume's replication state.
    pub replication: ReplState,
    /// Its disk as last reported.
    pub disk: DiskState,
    /// KiB marked out of sync for it.
    pub out_of_sync_kib: u64,
    /// Resync paused here (`pause-sync`).
    pub paused_user: bool,
    /// Resync paused by the peer.
    pub paused_peer: bool,
    /// Resync progress, while a resync has a total.
    pub resync: Option<Resync>,
}

/// Resync progress in bitmap bits (4 KiB each), as /proc/drbd counts it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Resync {
    /// Bits to resync in all.
    pub total_bits: u64,
    /// Bits still to do (failed ones not counted).
    pub remaining_bits: u64,
    /// Bits that failed (they stay out of sync).
    pub failed_bits: u64,
    /// Recent speed, KiB/s.
    pub speed_kib: u64,
    /// Average speed since the start, pauses excluded, KiB/s.
    pub average_kib: u64,
    /// The rate the controller aims at (SyncTarget), KiB/s.
    pub want_kib: Option<u64>,
    /// Seconds left at the recent speed (`None` before any progress).
    pub eta_s: Option<u64>,
    /// No progress for a long while.
    pub stalled: bool,
}

impl Resync {
    /// From the data path's [`Progress`]: its `remaining_bytes` still count the failed blocks
    /// (they stay dirty), /proc/drbd's "left" does not. Only the average speed is known, so it
    /// is the recent one too.
    pub fn from_progress(p: &Progress) -> Resync {
        let kib = p.rate >> 10;
        Resync {
            total_bits: p.total_bytes >> BLOCK_SHIFT,
            remaining_bits: p.remaining_bytes.saturating_sub(p.failed_bytes) >> BLOCK_SHIFT,
            failed_bits: p.failed_bytes >> BLOCK_SHIFT,
            speed_kib: kib,
            average_kib: kib,
            want_kib: None,
            eta_s: p.eta_ms.map(|ms| ms.div_ceil(1000)),
            stalled: false,
        }
    }

    /// KiB in all.
    pub const fn total_kib(&self) -> u64 {
        self.total_bits.saturating_mul(KIB_PER_BIT)
    }
    /// KiB still to do.
    pub const fn remaining_kib(&self) -> u64 {
        self.remaining_bits.saturating_mul(KIB_PER_BIT)
    }
    /// Remaining bits clamped to the total (a race between counters must not show > 100%).
    pub const fn left_bits(&self) -> u64 {
        if self.remaining_bits > self.total_bits {
            self.total_bits
        } else {
            self.remaining_bits
        }
    }
}

/// Why a status reply could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusError<'t> {
    /// A required field is missing (or has the wrong type).
    Missing(&'static str),
    /// A state name that is not one.
    BadState {
        /// The field.
        field: &'static str,
        /// What it held.
        value: &'t [u8],
    },
    /// A number that is negative or too large.
    BadNumber(&'static str),
}

impl fmt::Display for StatusError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            StatusError::Missing(field) => write!(f, "status reply: {field} is missing"),
            StatusError::BadState { field, value } => write!(
                f,
                "status reply: {field} '{}' is not a DRBD state name",
                value.escape_ascii()
            ),
            StatusError::BadNumber(field) => {
                write!(f, "status reply: {field} is not a count")
            }
        }
    }
}

fn state<'t, T: Copy>(
    n: &NodeRef<'t>,
    key: &'static str,
    all: &[T],
    name: fn(T) -> &'static str,
) -> Result<T, StatusError<'t>> {
    let value = n.get_str(key).ok_or(StatusError::Missing(key))?;
    all.iter()
        .copied()
        .find(|&v| name(v).as_bytes() == value)
        .ok_or(StatusError::BadState { field: key, value })
}

fn text<'t>(n: &NodeRef<'t>, key: &'static str) -> Result<&'t str, StatusError<'t>> {
    n.get_utf8(key).ok_or(StatusError::Missing(key))
}

fn opt_u64<'t>(n: &NodeRef<'t>, key: &'static str) -> Result<Option<u64>, StatusError<'t>> {
    n.get_int64(key)
        .map(|v| u64::try_from(v).map_err(|_| StatusError::BadNumber(key)))
        .transpose()
}

fn count<'t>(n: &NodeRef<'t>, key: &'static str) -> Result<u64, StatusError<'t>> {
    opt_u64(n, key)?.ok_or(StatusError::Missing(key))
}

fn opt_u32<'t>(n: &NodeRef<'t>, key: &'static str) -> Result<Option<u32>, StatusError<'t>> {
    opt_u64(n, key)?
        .map(|v| u32::try_from(v).map_err(|_| StatusError::BadNumber(key)))
        .transpose()
}

fn put_int(key: &[u8], v: u64, depth: usize, out: &mut dyn Sink) -> Result<(), Overflow> {
    indent(depth, out)?;
    write_int_line(key, i64::try_from(v).unwrap_or(i64::MAX), out)
}

fn put_str(key: &[u8], v: &str, depth: usize, out: &mut dyn Sink) -> Result<(), Overflow> {
    indent(depth, out)?;
    write_str_line(key, v.as_bytes(), out)
}

fn indent(depth: usize, out: &mut dyn Sink) -> Result<(), Overflow> {
    for _ in 0..depth {
        out.put(b"\t")?;
    }
    Ok(())
}

impl<'t> Status<'t> {
    /// Reads one `resource` section.
    pub fn from_node(n: NodeRef<'t>) -> Result<Status<'t>, StatusError<'t>> {
        let peer = match n.get_section("peer") {
            Some(p) => Some(PeerStatus::from_node(p)?),
            None => None,
        };
        Ok(Status {
            name: text(&n, "name")?,
            node_id: opt_u32(&n, "node_id")?,
            role: state(&n, "role", Role::ALL, Role::name)?,
            disk: state(&n, "disk", DiskState::ALL, DiskState::name)?,
            size_kib: opt_u64(&n, "size_kib")?,
            peer,
        })
    }

    /// Writes the `resource { … }` section.
    pub fn write_tree(&self, out: &mut dyn Sink) -> Result<(), Overflow> {
        out.put(b"resource {\n")?;
        put_str(b"name", self.name, 1, out)?;
        if let Some(id) = self.node_id {
            put_int(b"node_id", id.into(), 1, out)?;
        }
        put_str(b"role", self.role.name(), 1, out)?;
        put_str(b"disk", self.disk.name(), 1, out)?;
        if let Some(s) = self.size_kib {
            put_int(b"size_kib", s, 1, out)?;
        }
        if let Some(p) = &self.peer {
            p.write_tree(out)?;
        }
        out.put(b"}\n")
    }
}

impl<'t> PeerStatus<'t> {
    fn from_node(n: NodeRef<'t>) -> Result<PeerStatus<'t>, StatusError<'t>> {
        let resync = match n.get_section("resync") {
            Some(r) => Some(Resync {
                total_bits: count(&r, "total_bits")?,
                remaining_bits: count(&r, "remaining_bits")?,
                failed_bits: count(&r, "failed_bits")?,
                speed_kib: count(&r, "speed_kib")?,
                average_kib: count(&r, "average_kib")?,
                want_kib: opt_u64(&r, "want_kib")?,
                eta_s: opt_u64(&r, "eta_s")?,
                stalled: r.find_bool("stalled", false),
            }),
            None => None,
        };
        Ok(PeerStatus {
            name: n.get_utf8("name").unwrap_or(""),
            node_id: opt_u32(&n, "node_id")?,
            connection: state(&n, "connection", ConnState::ALL, ConnState::name)?,
            role: state(&n, "role", Role::ALL, Role::name)?,
            replication: state(&n, "replication", ReplState::ALL, ReplState::name)?,
            disk: state(&n, "disk", DiskState::ALL, DiskState::name)?,
            out_of_sync_kib: count(&n, "out_of_sync_kib")?,
            paused_user: n.find_bool("paused_user", false),
            paused_peer: n.find_bool("paused_peer", false),
            resync,
        })
    }

    fn write_tree(&self, out: &mut dyn Sink) -> Result<(), Overflow> {
        out.put(b"\tpeer {\n")?;
        put_str(b"name", self.name, 2, out)?;
        if let Some(id) = self.node_id {
            put_int(b"node_id", id.into(), 2, out)?;
        }
        put_str(b"connection", self.connection.name(), 2, out)?;
        put_str(b"role", self.role.name(), 2, out)?;
        put_str(b"replication", self.replication.name(), 2, out)?;
        put_str(b"disk", self.disk.name(), 2, out)?;
        put_int(b"out_of_sync_kib", self.out_of_sync_kib, 2, out)?;
        put_int(b"paused_user", self.paused_user.into(), 2, out)?;
        put_int(b"paused_peer", self.paused_peer.into(), 2, out)?;
        if let Some(r) = &self.resync {
            out.put(b"\t\tresync {\n")?;
            put_int(b"total_bits", r.total_bits, 3, out)?;
            put_int(b"remaining_bits", r.remaining_bits, 3, out)?;
            put_int(b"failed_bits", r.failed_bits, 3, out)?;
            put_int(b"speed_kib", r.speed_kib, 3, out)?;
            put_int(b"average_kib", r.average_kib, 3, out)?;
            if let Some(w) = r.want_kib {
                put_int(b"want_kib", w, 3, out)?;
            }
            if let Some(e) = r.eta_s {
                put_int(b"eta_s", e, 3, out)?;
            }
            put_int(b"stalled", r.stalled.into(), 3, out)?;
            out.put(b"\t\t}\n")?;
        }
        out.put(b"\t}\n")
    }
}

/// The `resource` sections of a status reply, in order.
pub fn statuses<'t>(
    reply: TreeView<'t>,
) -> impl Iterator<Item = Result<Status<'t>, StatusError<'t>>> {
    reply
        .top_level()
        .filter(|n| n.key() == b"resource" && n.is_section())
        .map(Status::from_node)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::config::{OwnedTree, ParseOptions};
    use std::vec::Vec;

    /// A SyncSource 28.4 % through a 100 MiB resync (the numbers of the module docs).
    pub(crate) fn syncing() -> Status<'static> {
        Status {
            name: "r0",
            node_id: Some(0),
            role: Role::Primary,
            disk: DiskState::UpToDate,
            size_kib: Some(102_716),
            peer: Some(PeerStatus {
                name: "beta",
                node_id: Some(1),
                connection: ConnState::Connected,
                role: Role::Secondary,
                replication: ReplState::SyncSource,
                disk: DiskState::Inconsistent,
                out_of_sync_kib: 73_580,
                paused_user: false,
                paused_peer: false,
                resync: Some(Resync {
                    total_bits: 25_679,
                    remaining_bits: 18_395,
                    failed_bits: 0,
                    speed_kib: 2_432,
                    average_kib: 2_432,
                    want_kib: Some(4_096),
                    eta_s: Some(12),
                    stalled: false,
                }),
            }),
        }
    }

    pub(crate) fn standalone() -> Status<'static> {
        Status {
            name: "data",
            node_id: None,
            role: Role::Secondary,
            disk: DiskState::Diskless,
            size_kib: None,
            peer: None,
        }
    }

    #[test]
    fn tree_bytes_and_round_trip() {
        let mut out = Vec::new();
        standalone().write_tree(&mut out).unwrap();
        assert_eq!(
            out,
            b"resource {\n\tname = \"data\"\n\trole = \"Secondary\"\n\tdisk = \"Diskless\"\n}\n"
        );
        let mut body = b"response = \"OK\"\n".to_vec();
        syncing().write_tree(&mut body).unwrap();
        standalone().write_tree(&mut body).unwrap();
        let text = std::str::from_utf8(&body).unwrap();
        assert!(
            text.contains("\t\tresync {\n\t\t\ttotal_bits = 25679\n\t\t\tremaining_bits = 18395\n"),
            "{text}"
        );
        let t = OwnedTree::from_text_owned(&body, ParseOptions::KEEP).unwrap();
        let back: Vec<_> = statuses(t.view()).collect::<Result<_, _>>().unwrap();
        assert_eq!(back, [syncing(), standalone()]);
    }

    #[test]
    fn bad_replies_name_the_field() {
        let read = |text: &[u8]| {
            let t = OwnedTree::from_text_owned(text, ParseOptions::KEEP).unwrap();
            let r = statuses(t.view())
                .next()
                .unwrap()
                .map(|_| ())
                .map_err(|e| std::string::ToString::to_string(&e));
            r
        };
        assert_eq!(
            read(b"resource { role = \"Primary\" disk = \"UpToDate\" }"),
            Err("status reply: name is missing".into())
        );
        assert_eq!(
            read(b"resource { name = \"r\" role = \"Boss\" disk = \"UpToDate\" }"),
            Err("status reply: role 'Boss' is not a DRBD state name".into())
        );
        assert_eq!(
            read(b"resource { name = \"r\" role = \"Primary\" disk = \"UpToDate\" size_kib = -1 }"),
            Err("status reply: size_kib is not a count".into())
        );
        assert_eq!(
            read(b"resource { name = \"r\" role = \"Primary\" disk = \"UpToDate\" node_id = 4294967296 }"),
            Err("status reply: node_id is not a count".into())
        );
        assert_eq!(
            read(b"resource { name = \"r\" role = \"Primary\" disk = \"UpToDate\" peer { connection = \"Connected\" role = \"Primary\" replication = \"Off\" disk = \"UpToDate\" } }"),
            Err("status reply: out_of_sync_kib is missing".into())
        );
    }

    #[test]
    fn from_progress() {
        let p = Progress {
            total_bytes: 100 << 12,
            done_bytes: 40 << 12,
            remaining_bytes: 60 << 12,
            failed_bytes: 5 << 12,
            rate: 8 << 20,
            eta_ms: Some(1500),
            paused: false,
        };
        let r = Resync::from_progress(&p);
        assert_eq!(
            (r.total_bits, r.remaining_bits, r.failed_bits),
            (100, 55, 5)
        );
        assert_eq!((r.speed_kib, r.average_kib, r.eta_s), (8192, 8192, Some(2)));
        assert_eq!((r.total_kib(), r.remaining_kib()), (400, 220));
        let odd = Resync {
            total_bits: 3,
            remaining_bits: 5,
            ..Resync::default()
        };
        assert_eq!(odd.left_bits(), 3);
    }
}
