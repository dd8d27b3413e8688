//! DRBD's state enums with upstream names and wire numbers (replication.md §4.7): connection
//! states (`C_*`), replication states (`L_*`, per volume), disk states (`D_*`, DRBD 9 numbering
//! with the 8.4 renumbering) and roles (`R_*`). 8.4 reuses the numbers 8–10 under other names;
//! [`wire_conn_name_84`] gives those.

/// Defines a `u8`-numbered enum with DRBD's names and a checked conversion from the wire.
macro_rules! drbd_enum {
    ($(#[$m:meta])* $name:ident { $( $(#[$vm:meta])* $var:ident = $num:expr, $text:literal; )* }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        #[cfg_attr(feature = "defmt", derive(defmt::Format))]
        #[repr(u8)]
        pub enum $name {
            $( $(#[$vm])* $var = $num, )*
        }

        impl $name {
            /// Every value, in wire order.
            pub const ALL: &'static [$name] = &[$($name::$var),*];

            /// The wire number.
            pub const fn number(self) -> u32 {
                self as u32
            }

            /// The value a wire number names, if any.
            pub fn from_number(n: u32) -> Option<$name> {
                $name::ALL.iter().copied().find(|v| v.number() == n)
            }

            /// DRBD's name (as `drbdsetup status` prints it).
            pub const fn name(self) -> &'static str {
                match self { $( $name::$var => $text, )* }
            }
        }

        impl core::fmt::Display for $name {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                f.write_str(self.name())
            }
        }
    };
}

drbd_enum! {
    /// A connection state (`enum drbd_conn_state`, DRBD 9). 3–7 are the transient reasons a
    /// connection passes through on its way back to `Unconnected`.
    ConnState {
        /// Not configured to connect.
        StandAlone = 0, "StandAlone";
        /// Tearing down on purpose.
        Disconnecting = 1, "Disconnecting";
        /// Configured, about to try again.
        Unconnected = 2, "Unconnected";
        /// The handshake stalled.
        Timeout = 3, "Timeout";
        /// A socket broke.
        BrokenPipe = 4, "BrokenPipe";
        /// The peer stopped answering pings.
        NetworkFailure = 5, "NetworkFailure";
        /// The peer sent something we cannot accept.
        ProtocolError = 6, "ProtocolError";
        /// The peer asked to disconnect.
        TearDown = 7, "TearDown";
        /// Forming the socket pair and running the handshake (8.4: WFConnection, WFReportParams).
        Connecting = 8, "Connecting";
        /// Handshake done (8.4: WFReportParams is the same number, 9).
        Connected = 9, "Connected";
    }
}

drbd_enum! {
    /// A replication state (`enum drbd_repl_state`, per volume), numbered on from
    /// [`ConnState::Connected`]: `Off` = 9 shares its number.
    ReplState {
        /// No replication (not connected, or the handshake has not decided yet).
        Off = 9, "Off";
        /// Connected, in sync or replicating (8.4: Connected).
        Established = 10, "Established";
        /// Starting a resync as source.
        StartingSyncS = 11, "StartingSyncS";
        /// Starting a resync as target.
        StartingSyncT = 12, "StartingSyncT";
        /// Source, exchanging bitmaps.
        WFBitMapS = 13, "WFBitMapS";
        /// Target, exchanging bitmaps.
        WFBitMapT = 14, "WFBitMapT";
        /// Target waiting for P_SYNC_UUID (pv < 110).
        WFSyncUUID = 15, "WFSyncUUID";
        /// Resync source.
        SyncSource = 16, "SyncSource";
        /// Resync target.
        SyncTarget = 17, "SyncTarget";
        /// Online-verify source.
        VerifyS = 18, "VerifyS";
        /// Online-verify target.
        VerifyT = 19, "VerifyT";
        /// Paused resync source.
        PausedSyncS = 20, "PausedSyncS";
        /// Paused resync target.
        PausedSyncT = 21, "PausedSyncT";
        /// Replication paused, sending out-of-sync marks.
        Ahead = 22, "Ahead";
        /// Peer is ahead.
        Behind = 23, "Behind";
    }
}

drbd_enum! {
    /// A disk state (`enum drbd_disk_state`), DRBD 9 numbering. Only `UpToDate` allows
    /// application I/O.
    DiskState {
        /// No backing device.
        Diskless = 0, "Diskless";
        /// Attaching.
        Attaching = 1, "Attaching";
        /// Detaching (DRBD 9 only).
        Detaching = 2, "Detaching";
        /// I/O error.
        Failed = 3, "Failed";
        /// Attaching while connected, waiting for the handshake.
        Negotiating = 4, "Negotiating";
        /// Data is not usable (resync target, fresh disk).
        Inconsistent = 5, "Inconsistent";
        /// Consistent but known to be old.
        Outdated = 6, "Outdated";
        /// The peer's disk state when not connected.
        DUnknown = 7, "DUnknown";
        /// Consistent, currency unknown.
        Consistent = 8, "Consistent";
        /// Consistent and current.
        UpToDate = 9, "UpToDate";
    }
}

drbd_enum! {
    /// A role (`enum drbd_role`).
    Role {
        /// Not known (the peer's role while disconnected).
        Unknown = 0, "Unknown";
        /// May be written by applications.
        Primary = 1, "Primary";
        /// Receives the primary's writes.
        Secondary = 2, "Secondary";
    }
}

impl DiskState {
    /// The number an 8.4 peer (pv < 110) uses: 8.4 has no `Detaching`, so values above 2 are one
    /// lower (replication.md §3.9). `Detaching` itself has no 8.4 number; it goes out as
    /// 8.4's `Failed` (2), which is what a detaching disk becomes.
    pub const fn number_84(self) -> u32 {
        let n = self as u32;
        if n >= 2 {
            n - 1
        } else {
            n
        }
    }

    /// The state an 8.4 number names.
    pub fn from_number_84(n: u32) -> Option<DiskState> {
        DiskState::from_number(if n >= 2 { n + 1 } else { n })
    }
}

/// What P_STATE carries in its `conn` field: the replication state once the volume has one
/// above `Off`, else the connection state (replication.md §4.7).
pub const fn wire_conn(conn: ConnState, repl: ReplState) -> u32 {
    if (repl as u32) > (ReplState::Off as u32) {
        repl as u32
    } else {
        conn as u32
    }
}

/// 8.4's `drbd_conns` name for a P_STATE `conn` number (same numbers as DRBD 9; 8–10 are named
/// WFConnection, WFReportParams, Connected there).
pub fn wire_conn_name_84(n: u32) -> Option<&'static str> {
    match n {
        8 => Some("WFConnection"),
        9 => Some("WFReportParams"),
        10 => Some("Connected"),
        n if n < 8 => ConnState::from_number(n).map(ConnState::name),
        n => ReplState::from_number(n).map(ReplState::name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_names() {
        assert_eq!(ConnState::Connected.number(), 9);
        assert_eq!(ReplState::Off.number(), ConnState::Connected.number());
        assert_eq!(ReplState::from_number(13), Some(ReplState::WFBitMapS));
        assert_eq!(ReplState::from_number(24), None);
        assert_eq!(DiskState::UpToDate.name(), "UpToDate");
        assert_eq!(Role::from_number(3), None);
        for &d in DiskState::ALL {
            if d != DiskState::Detaching {
                assert_eq!(DiskState::from_number_84(d.number_84()), Some(d));
            }
        }
        assert_eq!(DiskState::UpToDate.number_84(), 8);
        assert_eq!(DiskState::Failed.number_84(), 2);
        assert_eq!(DiskState::from_number_84(9), None);
        assert_eq!(wire_conn(ConnState::Connecting, ReplState::Off), 8);
        assert_eq!(
            wire_conn(ConnState::Connected, ReplState::WFBitMapT),
            ReplState::WFBitMapT.number()
        );
        assert_eq!(wire_conn_name_84(9), Some("WFReportParams"));
        assert_eq!(wire_conn_name_84(10), Some("Connected"));
        assert_eq!(wire_conn_name_84(16), Some("SyncSource"));
        assert_eq!(wire_conn_name_84(5), Some("NetworkFailure"));
        assert_eq!(wire_conn_name_84(31), None);
    }
}
