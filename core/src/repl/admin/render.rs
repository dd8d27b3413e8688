//! [`Status`] as text: drbdsetup 9's `status` layout plus, while a resync or verify runs,
//! DRBD 8.4's /proc/drbd progress lines; and as `drbdsetup status --json` prints it.
//!
//! Text, one block per resource, a blank line after each (drbdsetup's `status_cmd` and
//! `wrap_printf`, without the 80-column wrapping; the two progress lines start with a tab):
//!
//! ```text
//! r0 role:Primary
//!   disk:UpToDate
//!   beta role:Secondary
//!     replication:SyncSource peer-disk:Inconsistent done:28.37
//!         [====>...............] sync'ed: 28.4% (73580/102716)K
//!         finish: 0:00:12 speed: 2,432 (2,432) K/sec
//! ```
//!
//! The connection line shows `connection:` unless Connected, `role:` only when Connected; the
//! peer-device line appears only when Connected, with `replication:` past Established and
//! `peer-disk:` unless both are unknown. The progress lines follow drbd_proc.c: a 20-cell bar
//! of `permille / 50` cells (`>` in the last), `sync'ed:` or `verified:`, left/total in K (in
//! M once the total passes 4 GiB), then the time left, recent and average speeds with
//! thousands separators, `want:` for SyncTarget and VerifyS, and `(stalled)`. The percentage
//! is computed exactly (`1000 − left·1000/total`); DRBD scales both counts down by 2^10 first,
//! which is coarser for small resyncs. An unknown time left prints `-:--:--`.
//!
//! JSON keeps drbdsetup's key names, nesting and line layout for the fields [`Status`] has
//! (sizes in KiB, `rs-total` and `rs-failed` in sectors, speeds in MiB/s); keys for what Keelson
//! does not track (minors, I/O counters, paths, quorum) are left out. `suspended` is always
//! false: Keelson never suspends application I/O.

use core::fmt::{self, Write};

use super::status::{PeerStatus, Resync, Status};
use crate::repl::conn::state::{ConnState, DiskState, ReplState};

/// What drbdsetup prints when there are no resources.
pub const NO_RESOURCES: &str = "# No currently configured DRBD found.\n";

/// Every resource as text ([`NO_RESOURCES`] when there are none).
pub fn write_text<W: Write + ?Sized>(out: &mut W, list: &[Status<'_>]) -> fmt::Result {
    if list.is_empty() {
        return out.write_str(NO_RESOURCES);
    }
    list.iter().try_for_each(|s| s.write_text(out))
}

/// Every resource as a JSON array.
pub fn write_json<W: Write + ?Sized>(out: &mut W, list: &[Status<'_>]) -> fmt::Result {
    out.write_str("[\n")?;
    for (i, s) in list.iter().enumerate() {
        if i > 0 {
            out.write_str(",\n")?;
        }
        s.write_json(out)?;
    }
    out.write_str("]\n\n")
}

/// drbdsetup's `wrap_printf` without wrapping: the first item on a line gets the indent and
/// loses its leading space.
struct Line<'w, W: ?Sized> {
    out: &'w mut W,
    indent: usize,
    started: bool,
}

impl<'w, W: Write + ?Sized> Line<'w, W> {
    fn new(out: &'w mut W, indent: usize) -> Self {
        Line {
            out,
            indent,
            started: false,
        }
    }

    fn item(&mut self, args: fmt::Arguments<'_>) -> fmt::Result {
        if !self.started {
            for _ in 0..self.indent {
                self.out.write_char(' ')?;
            }
            self.started = true;
            let mut skip = SkipLeadingSpaces {
                out: &mut *self.out,
                skipping: true,
            };
            return skip.write_fmt(args);
        }
        self.out.write_fmt(args)
    }

    fn end(self) -> fmt::Result {
        self.out.write_char('\n')
    }
}

struct SkipLeadingSpaces<'w, W: ?Sized> {
    out: &'w mut W,
    skipping: bool,
}

impl<W: Write + ?Sized> Write for SkipLeadingSpaces<'_, W> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let s = if self.skipping {
            let t = s.trim_start_matches(' ');
            self.skipping = t.is_empty();
            t
        } else {
            s
        };
        self.out.write_str(s)
    }
}

/// `%.2f` of drbdsetup's `done:`: `100 · (total − left) / total`, in the same operations.
fn percent_done(r: &Resync) -> f64 {
    let total = r.total_bits as f64;
    100.0 * (r.total_bits - r.left_bits()) as f64 / total
}

fn suspended(p: &PeerStatus<'_>) -> &'static str {
    match (p.paused_user, p.paused_peer) {
        (false, false) => "no",
        (true, false) => "user",
        (false, true) => "peer",
        (true, true) => "user,peer",
    }
}

fn in_progress(r: ReplState) -> bool {
    matches!(
        r,
        ReplState::SyncSource | ReplState::SyncTarget | ReplState::VerifyS | ReplState::VerifyT
    )
}

/// `seq_printf_with_thousands_grouping`.
struct Grouped(u64);

impl fmt::Display for Grouped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = self.0;
        if v >= 1_000_000 {
            write!(
                f,
                "{},{:03},{:03}",
                v / 1_000_000,
                v / 1000 % 1000,
                v % 1000
            )
        } else if v >= 1000 {
            write!(f, "{},{:03}", v / 1000, v % 1000)
        } else {
            write!(f, "{v}")
        }
    }
}

/// The two /proc/drbd progress lines for a resync (or verify) in state `repl`.
pub fn write_progress<W: Write + ?Sized>(out: &mut W, repl: ReplState, r: &Resync) -> fmt::Result {
    let left = r.left_bits();
    let permille = if r.total_bits == 0 {
        1000
    } else {
        1000 - (u128::from(left) * 1000 / u128::from(r.total_bits)) as u64
    };
    let x = (permille / 50) as usize;
    out.write_str("\t[")?;
    for _ in 1..x {
        out.write_char('=')?;
    }
    out.write_char('>')?;
    for _ in 0..20usize.saturating_sub(x) {
        out.write_char('.')?;
    }
    out.write_str("] ")?;
    let verify = matches!(repl, ReplState::VerifyS | ReplState::VerifyT);
    out.write_str(if verify { "verified:" } else { "sync'ed:" })?;
    write!(out, "{:3}.{}% ", permille / 10, permille % 10)?;
    // More than 4 GiB of bits: in MiB (DRBD shifts the bit counts by 10, then converts).
    if r.total_bits > 4 << (30 - 12) {
        write!(out, "({}/{})M", (left >> 10) * 4, (r.total_bits >> 10) * 4)?;
    } else {
        write!(out, "({}/{})K", left * 4, r.total_bits * 4)?;
    }
    out.write_str("\n\t")?;
    match r.eta_s {
        Some(t) => write!(
            out,
            "finish: {}:{:02}:{:02}",
            t / 3600,
            t % 3600 / 60,
            t % 60
        )?,
        None => out.write_str("finish: -:--:--")?,
    }
    write!(
        out,
        " speed: {} ({})",
        Grouped(r.speed_kib),
        Grouped(r.average_kib)
    )?;
    if matches!(repl, ReplState::SyncTarget | ReplState::VerifyS) {
        if let Some(w) = r.want_kib {
            write!(out, " want: {}", Grouped(w))?;
        }
    }
    out.write_str(" K/sec")?;
    if r.stalled {
        out.write_str(" (stalled)")?;
    }
    out.write_char('\n')
}

impl Status<'_> {
    /// This resource as text, ending in a blank line.
    pub fn write_text<W: Write + ?Sized>(&self, out: &mut W) -> fmt::Result {
        writeln!(out, "{} role:{}", self.name, self.role)?;
        writeln!(out, "  disk:{}", self.disk)?;
        if let Some(p) = &self.peer {
            let mut l = Line::new(&mut *out, 2);
            if !p.name.is_empty() {
                l.item(format_args!("{}", p.name))?;
            } else {
                l.item(format_args!(" node-id:{}", NodeId(p.node_id)))?;
            }
            let connected = p.connection == ConnState::Connected;
            if !connected {
                l.item(format_args!(" connection:{}", p.connection))?;
            } else {
                l.item(format_args!(" role:{}", p.role))?;
            }
            l.end()?;
            if connected {
                let mut l = Line::new(&mut *out, 4);
                if p.replication > ReplState::Established {
                    l.item(format_args!(" replication:{}", p.replication))?;
                }
                if p.replication != ReplState::Off || p.disk != DiskState::DUnknown {
                    l.item(format_args!(" peer-disk:{}", p.disk))?;
                    if let Some(r) = p.resync.as_ref().filter(|r| r.total_bits != 0) {
                        l.item(format_args!(" done:{:.2}", percent_done(r)))?;
                    }
                    if p.paused_user || p.paused_peer {
                        l.item(format_args!(" resync-suspended:{}", suspended(p)))?;
                    }
                }
                l.end()?;
                if let Some(r) = p.resync.as_ref().filter(|_| in_progress(p.replication)) {
                    write_progress(out, p.replication, r)?;
                }
            }
        }
        out.write_char('\n')
    }

    /// This resource as one element of drbdsetup's JSON array (no separator, ends in a newline).
    pub fn write_json<W: Write + ?Sized>(&self, out: &mut W) -> fmt::Result {
        out.write_str("{\n")?;
        writeln!(out, "  \"name\": {},", Json(self.name))?;
        writeln!(out, "  \"node-id\": {},", NodeId(self.node_id))?;
        writeln!(out, "  \"role\": \"{}\",", self.role)?;
        out.write_str("  \"suspended\": false,\n")?;
        out.write_str("  \"devices\": [\n")?;
        out.write_str("    {\n      \"volume\": 0,\n")?;
        write!(out, "      \"disk-state\": \"{}\"", self.disk)?;
        if let Some(s) = self.size_kib {
            write!(out, ",\n      \"size\": {s}")?;
        }
        out.write_str("\n    } ],\n  \"connections\": [\n")?;
        if let Some(p) = &self.peer {
            out.write_str("    {\n")?;
            writeln!(out, "      \"peer-node-id\": {},", NodeId(p.node_id))?;
            writeln!(out, "      \"name\": {},", Json(p.name))?;
            writeln!(out, "      \"connection-state\": \"{}\",", p.connection)?;
            writeln!(out, "      \"peer-role\": \"{}\",", p.role)?;
            out.write_str("      \"peer_devices\": [\n")?;
            self.peer_device_json(p, out)?;
            out.write_str(" ]\n    }")?;
        }
        out.write_str(" ]\n}\n")
    }

    fn peer_device_json<W: Write + ?Sized>(&self, p: &PeerStatus<'_>, out: &mut W) -> fmt::Result {
        let details = p.resync.filter(|r| r.total_bits != 0);
        out.write_str("        {\n          \"volume\": 0,\n")?;
        writeln!(
            out,
            "          \"replication-state\": \"{}\",",
            p.replication
        )?;
        writeln!(out, "          \"peer-disk-state\": \"{}\",", p.disk)?;
        writeln!(out, "          \"resync-suspended\": \"{}\",", suspended(p))?;
        writeln!(out, "          \"out-of-sync\": {},", p.out_of_sync_kib)?;
        writeln!(
            out,
            "          \"has-sync-details\": {},",
            details.is_some()
        )?;
        out.write_str("          \"has-online-verify-details\": false,\n")?;
        let in_sync = match self.size_kib {
            Some(size) if size > 0 => 100.0 * (1.0 - p.out_of_sync_kib as f64 / size as f64),
            _ => 0.0,
        };
        write!(out, "          \"percent-in-sync\": {in_sync:.2}")?;
        if let Some(r) = details {
            out.write_str(",\n")?;
            writeln!(
                out,
                "          \"rs-total\": {},",
                r.total_bits.saturating_mul(8)
            )?;
            writeln!(
                out,
                "          \"rs-failed\": {},",
                r.failed_bits.saturating_mul(8)
            )?;
            let want = r.want_kib.map_or(0.0, |w| w as f64 / 1024.0);
            writeln!(out, "          \"want\": {want:.2},")?;
            writeln!(
                out,
                "          \"db1/dt1 [MiB/s]\": {:.2},",
                r.speed_kib as f64 / 1024.0
            )?;
            // drbdsetup prints 987654321 when it cannot estimate.
            writeln!(
                out,
                "          \"estimated-seconds-to-finish\": {},",
                r.eta_s.unwrap_or(987_654_321)
            )?;
            writeln!(
                out,
                "          \"db/dt [MiB/s]\": {:.2},",
                r.average_kib as f64 / 1024.0
            )?;
            write!(
                out,
                "          \"percent-resync-done\": {:.2}",
                percent_done(&r)
            )?;
        }
        out.write_str("\n        }")
    }
}

/// A node id, −1 when unknown (drbdsetup's convention).
struct NodeId(Option<u32>);

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(n) => write!(f, "{n}"),
            None => f.write_str("-1"),
        }
    }
}

/// A JSON string literal.
struct Json<'a>(&'a str);

impl fmt::Display for Json<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_char('"')?;
        for c in self.0.chars() {
            match c {
                '"' => f.write_str("\\\"")?,
                '\\' => f.write_str("\\\\")?,
                c if (c as u32) < 0x20 => write!(f, "\\u{:04x}", c as u32)?,
                c => f.write_char(c)?,
            }
        }
        f.write_char('"')
    }
}

#[cfg(test)]
mod tests {
    use super::super::status::tests::{standalone, syncing};
    use super::*;
    use crate::jsonrpc::json;
    use crate::repl::conn::state::Role;
    use std::string::String;

    fn text(list: &[Status<'_>]) -> String {
        let mut s = String::new();
        write_text(&mut s, list).unwrap();
        s
    }

    #[test]
    fn text_while_syncing() {
        assert_eq!(
            text(&[syncing()]),
            "r0 role:Primary\n  disk:UpToDate\n  beta role:Secondary\n    replication:SyncSource \
             peer-disk:Inconsistent done:28.37\n\t[====>...............] sync'ed: 28.4% \
             (73580/102716)K\n\tfinish: 0:00:12 speed: 2,432 (2,432) K/sec\n\n"
        );
        assert_eq!(text(&[]), "# No currently configured DRBD found.\n");
        assert_eq!(
            text(&[standalone()]),
            "data role:Secondary\n  disk:Diskless\n\n"
        );
    }

    #[test]
    fn text_states() {
        let mut s = syncing();
        let p = s.peer.as_mut().unwrap();
        p.connection = ConnState::Connecting;
        p.replication = ReplState::Off;
        p.disk = DiskState::DUnknown;
        p.role = Role::Unknown;
        assert_eq!(
            text(&[s]),
            "r0 role:Primary\n  disk:UpToDate\n  beta connection:Connecting\n\n"
        );
        let p = s.peer.as_mut().unwrap();
        p.connection = ConnState::Connected;
        p.replication = ReplState::Established;
        p.disk = DiskState::UpToDate;
        p.role = Role::Secondary;
        p.name = "";
        p.resync = None;
        assert_eq!(
            text(&[s]),
            "r0 role:Primary\n  disk:UpToDate\n  node-id:1 role:Secondary\n    peer-disk:UpToDate\n\n"
        );
        // Paused: no progress bar, the reason on the peer-device line.
        let mut s = syncing();
        let p = s.peer.as_mut().unwrap();
        p.replication = ReplState::PausedSyncS;
        p.paused_user = true;
        assert!(text(&[s]).contains(
            "replication:PausedSyncS peer-disk:Inconsistent done:28.37 resync-suspended:user\n\n"
        ));
        // Target: `want:`; unknown time left; stalled.
        let mut s = syncing();
        let p = s.peer.as_mut().unwrap();
        p.replication = ReplState::SyncTarget;
        let r = p.resync.as_mut().unwrap();
        r.eta_s = None;
        r.stalled = true;
        r.speed_kib = 1_234_567;
        assert!(text(&[s]).ends_with(
            "\tfinish: -:--:-- speed: 1,234,567 (2,432) want: 4,096 K/sec (stalled)\n\n"
        ));
    }

    #[test]
    fn progress_bar_cells_and_units() {
        let bar = |total: u64, left: u64, repl: ReplState| {
            let r = Resync {
                total_bits: total,
                remaining_bits: left,
                eta_s: Some(3725),
                ..Resync::default()
            };
            let mut s = String::new();
            write_progress(&mut s, repl, &r).unwrap();
            s
        };
        assert_eq!(bar(1000, 1000, ReplState::SyncSource), "\t[>....................] sync'ed:  0.0% (4000/4000)K\n\tfinish: 1:02:05 speed: 0 (0) K/sec\n");
        assert!(bar(1000, 0, ReplState::SyncSource)
            .starts_with("\t[===================>] sync'ed:100.0% (0/4000)K"));
        assert!(bar(1000, 500, ReplState::VerifyT)
            .starts_with("\t[=========>..........] verified: 50.0% "));
        // Past 4 GiB (1 Mi bits): MiB.
        assert!(bar(2 << 20, 1 << 20, ReplState::SyncSource).contains("(4096/8192)M\n"));
        assert!(bar(1 << 20, 1 << 19, ReplState::SyncSource).contains("(2097152/4194304)K\n"));
        // More left than total (a counter race) shows 0 %, not garbage.
        assert!(bar(10, 20, ReplState::SyncSource).contains("  0.0% (40/40)K"));
        assert!(bar(0, 0, ReplState::SyncSource).contains("100.0% (0/0)K"));
    }

    #[test]
    fn json_is_drbdsetup_shaped_and_valid() {
        let mut s = String::new();
        write_json(&mut s, &[]).unwrap();
        assert_eq!(s, "[\n]\n\n");
        assert!(json::parse(s.trim_end().as_bytes())
            .unwrap()
            .as_array()
            .unwrap()
            .get(0)
            .is_none());
        let mut s = String::new();
        write_json(&mut s, &[syncing(), standalone()]).unwrap();
        assert!(
            s.starts_with(
                "[\n{\n  \"name\": \"r0\",\n  \"node-id\": 0,\n  \"role\": \"Primary\",\n"
            ),
            "{s}"
        );
        assert!(
            s.contains("\n    } ],\n  \"connections\": [\n    {\n      \"peer-node-id\": 1,\n"),
            "{s}"
        );
        assert!(
            s.contains("\"percent-in-sync\": 28.37,\n          \"rs-total\": 205432,\n"),
            "{s}"
        );
        assert!(s.contains("\"percent-resync-done\": 28.37\n        } ]\n    } ]\n}\n,\n{\n  \"name\": \"data\",\n  \"node-id\": -1,"), "{s}");
        let v = json::parse(s.trim_end().as_bytes()).unwrap();
        let arr = v.as_array().unwrap();
        let r0 = arr.get(0).unwrap().as_object().unwrap();
        assert_eq!(
            r0.get("name").unwrap().as_str().unwrap().as_plain(),
            Some("r0")
        );
        let pd = r0
            .get("connections")
            .unwrap()
            .as_array()
            .unwrap()
            .get(0)
            .unwrap()
            .as_object()
            .unwrap()
            .get("peer_devices")
            .unwrap()
            .as_array()
            .unwrap()
            .get(0)
            .unwrap()
            .as_object()
            .unwrap();
        assert_eq!(pd.get("out-of-sync").unwrap().as_i64(), Some(73580));
        assert_eq!(
            pd.get("estimated-seconds-to-finish").unwrap().as_i64(),
            Some(12)
        );
        let data = arr.get(1).unwrap().as_object().unwrap();
        assert!(data
            .get("connections")
            .unwrap()
            .as_array()
            .unwrap()
            .get(0)
            .is_none());
        assert!(arr.get(2).is_none());
        // Names are escaped.
        let mut q = syncing();
        q.peer.as_mut().unwrap().name = "a\"b\\c\u{1}";
        let mut s = String::new();
        write_json(&mut s, &[q]).unwrap();
        assert!(s.contains(r#""name": "a\"b\\c\u0001","#), "{s}");
        assert!(json::parse(s.trim_end().as_bytes()).is_ok());
    }
}
