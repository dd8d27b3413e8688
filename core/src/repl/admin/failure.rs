//! Why a command failed, in DRBD's terms: the netlink reply's `ret_code` (`ERR_*`, 102–176) or a
//! refused state change (`SS_*`, negative), with the texts and exit statuses drbdsetup uses
//! (its `check_error`), so scripts written against drbdsetup read ours the same way.
//!
//! Only the codes our verbs can produce are listed.

use core::fmt;

use super::table::Verb;
use crate::repl::conn::CommandError;
use crate::repl::node::NodeError;

macro_rules! codes {
    ($(#[$m:meta])* $name:ident { $( $(#[$vm:meta])* $var:ident = $num:literal, $text:literal; )* }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[cfg_attr(feature = "defmt", derive(defmt::Format))]
        pub enum $name {
            $( $(#[$vm])* $var, )*
        }

        impl $name {
            /// Every value.
            pub const ALL: &'static [$name] = &[$($name::$var),*];

            /// DRBD's number.
            pub const fn code(self) -> i32 {
                match self { $( $name::$var => $num, )* }
            }

            /// drbdsetup's text for it.
            pub const fn text(self) -> &'static str {
                match self { $( $name::$var => $text, )* }
            }

            /// The value DRBD's number names, if listed here.
            pub fn from_code(code: i64) -> Option<$name> {
                $name::ALL.iter().copied().find(|v| i64::from(v.code()) == code)
            }
        }
    };
}

codes! {
    /// A configuration request's return code (`enum drbd_ret_code`).
    RetCode {
        /// `ERR_OPEN_DISK`.
        OpenDisk = 104, "Can not open backing device.";
        /// `ERR_OPEN_MD_DISK`.
        OpenMdDisk = 105, "Can not open meta device.";
        /// `ERR_DISK_TOO_SMALL`.
        DiskTooSmall = 111, "Low.dev. smaller than requested DRBD-dev. size.";
        /// `ERR_MD_DISK_TOO_SMALL`.
        MdDiskTooSmall = 112, "Meta device too small.";
        /// `ERR_IO_MD_DISK`.
        IoMdDisk = 118, "IO error(s) occurred during initial access to meta-data.";
        /// `ERR_MD_INVALID`.
        MdInvalid = 119, "No valid meta-data signature found.";
        /// `ERR_DISCARD_IMPOSSIBLE`.
        DiscardImpossible = 123, "--discard-my-data not allowed when primary.";
        /// `ERR_DISK_CONFIGURED`.
        DiskConfigured = 124, "Device is attached to a disk (use detach first)";
        /// `ERR_NET_CONFIGURED`.
        NetConfigured = 125, "Device has a net-config (use disconnect first)";
        /// `ERR_PAUSE_IS_SET`.
        PauseIsSet = 134, "Sync-pause flag is already set";
        /// `ERR_PAUSE_IS_CLEAR`.
        PauseIsClear = 135, "Sync-pause flag is already cleared";
        /// `ERR_NO_DISK`.
        NoDisk = 138, "Device does not have a disk-config";
        /// `ERR_DATA_NOT_CURRENT`.
        DataNotCurrent = 150, "Can only attach to the data we lost last (see kernel log).";
        /// `ERR_CONNECTED`.
        Connected = 151, "Need to be StandAlone";
        /// `ERR_RES_NOT_KNOWN`.
        ResNotKnown = 158, "Unknown resource";
        /// `ERR_INVALID_REQUEST`.
        InvalidRequest = 162, "Invalid configuration request";
        /// `ERR_MD_UNCLEAN`.
        MdUnclean = 165, "Unclean meta-data found.";
    }
}

codes! {
    /// A refused state change (`enum drbd_state_rv`, negative).
    StateError {
        /// `SS_TWO_PRIMARIES`.
        TwoPrimaries = -1, "Multiple primaries not allowed by config";
        /// `SS_NO_UP_TO_DATE_DISK`.
        NoUpToDateDisk = -2, "Need access to UpToDate data";
        /// `SS_NO_LOCAL_DISK`.
        NoLocalDisk = -4, "Can not resync without local disk";
        /// `SS_NO_REMOTE_DISK`.
        NoRemoteDisk = -5, "Can not resync without remote disk";
        /// `SS_CONNECTED_OUTDATES`.
        ConnectedOutdates = -6, "Refusing to be Outdated while Connected";
        /// `SS_PRIMARY_NOP`.
        PrimaryNop = -7, "Refusing to be Primary while peer is not outdated";
        /// `SS_RESYNC_RUNNING`.
        ResyncRunning = -8, "Can not start OV/resync since it is already active";
        /// `SS_ALREADY_STANDALONE`.
        AlreadyStandalone = -9, "Can not disconnect a StandAlone device";
        /// `SS_CW_FAILED_BY_PEER`.
        FailedByPeer = -10, "State change was refused by peer node";
        /// `SS_IS_DISKLESS`.
        IsDiskless = -11, "Device is diskless, the requested operation requires a disk";
        /// `SS_DEVICE_IN_USE`.
        DeviceInUse = -12, "Device is held open by someone";
        /// `SS_NO_NET_CONFIG`.
        NoNetConfig = -13, "Have no net/connection configuration";
        /// `SS_NEED_CONNECTION`.
        NeedConnection = -15, "Need a connection to start verify or resync";
        /// `SS_LOWER_THAN_OUTDATED`.
        LowerThanOutdated = -16, "Disk state is lower than outdated";
        /// `SS_IN_TRANSIENT_STATE`.
        InTransientState = -18, "In transient state, retry after next state change";
        /// `SS_CONCURRENT_ST_CHG`.
        ConcurrentChange = -19, "Concurrent state changes detected and aborted";
        /// `SS_OUTDATE_WO_CONN`.
        OutdateWithoutConnection = -21, "Need a connection for a graceful disconnect/outdate peer";
    }
}

/// A failed command.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Failure {
    /// A configuration request failed (`Failure: (N) text`).
    Ret(RetCode),
    /// A state change was refused (`State change failed: (N) text`).
    State(StateError),
}

impl Failure {
    /// DRBD's number (positive for [`RetCode`], negative for [`StateError`]).
    pub const fn code(self) -> i32 {
        match self {
            Failure::Ret(r) => r.code(),
            Failure::State(s) => s.code(),
        }
    }

    /// The failure DRBD's number names, if listed here.
    pub fn from_code(code: i64) -> Option<Failure> {
        RetCode::from_code(code)
            .map(Failure::Ret)
            .or_else(|| StateError::from_code(code).map(Failure::State))
    }

    /// drbdsetup's exit status for it: 10 for return codes; 17 no UpToDate data, 5 lower than
    /// Outdated, 16 no local disk, 11 any other refused state change.
    pub const fn exit_status(self) -> u8 {
        match self {
            Failure::Ret(_) => 10,
            Failure::State(StateError::NoUpToDateDisk) => 17,
            Failure::State(StateError::LowerThanOutdated) => 5,
            Failure::State(StateError::NoLocalDisk) => 16,
            Failure::State(_) => 11,
        }
    }

    /// Prefixed with the resource, as drbdsetup prints it (`r0: Failure: (158) Unknown
    /// resource`).
    pub fn on<'a>(self, resource: Option<&'a str>) -> OnResource<'a> {
        OnResource(self, resource)
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Failure::Ret(r) => write!(f, "Failure: ({}) {}", r.code(), r.text()),
            Failure::State(s) => write!(f, "State change failed: ({}) {}", s.code(), s.text()),
        }
    }
}

impl From<RetCode> for Failure {
    fn from(r: RetCode) -> Failure {
        Failure::Ret(r)
    }
}

impl From<StateError> for Failure {
    fn from(s: StateError) -> Failure {
        Failure::State(s)
    }
}

impl Failure {
    /// What drbdsetup reports when the node refuses `verb` with `e` (the same refusal can mean
    /// different codes for different verbs: "Primary" is DeviceInUse for detach, PrimaryNop
    /// otherwise).
    pub fn of_node(verb: Verb, e: NodeError) -> Failure {
        match e {
            NodeError::NoUpToDateDisk => StateError::NoUpToDateDisk.into(),
            NodeError::Command(CommandError::TwoPrimaries) => StateError::TwoPrimaries.into(),
            NodeError::Command(CommandError::NotStandAlone) | NodeError::Connected => match verb {
                Verb::Connect => RetCode::NetConfigured.into(),
                _ => RetCode::Connected.into(),
            },
            NodeError::NotEstablished => StateError::NeedConnection.into(),
            NodeError::ResyncRunning => StateError::ResyncRunning.into(),
            NodeError::Primary => match verb {
                Verb::Detach | Verb::Down => StateError::DeviceInUse.into(),
                Verb::Connect => RetCode::DiscardImpossible.into(),
                _ => StateError::PrimaryNop.into(),
            },
            NodeError::Diskless => match verb {
                Verb::Detach => RetCode::NoDisk.into(),
                _ => StateError::IsDiskless.into(),
            },
            NodeError::Attached => RetCode::DiskConfigured.into(),
            NodeError::StandAlone => StateError::AlreadyStandalone.into(),
            NodeError::RequestPending | NodeError::Busy => StateError::InTransientState.into(),
            _ => RetCode::InvalidRequest.into(),
        }
    }
}

/// A failure with its resource ([`Failure::on`]).
pub struct OnResource<'a>(Failure, Option<&'a str>);

impl fmt::Display for OnResource<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(r) = self.1 {
            write!(f, "{r}: ")?;
        }
        fmt::Display::fmt(&self.0, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::ToString;

    #[test]
    fn texts_codes_and_exit_statuses() {
        let f = Failure::Ret(RetCode::ResNotKnown);
        assert_eq!(
            f.on(Some("r0")).to_string(),
            "r0: Failure: (158) Unknown resource"
        );
        assert_eq!(f.exit_status(), 10);
        let s = Failure::State(StateError::NoUpToDateDisk);
        assert_eq!(
            s.on(Some("r0")).to_string(),
            "r0: State change failed: (-2) Need access to UpToDate data"
        );
        assert_eq!(
            s.on(None).to_string(),
            "State change failed: (-2) Need access to UpToDate data"
        );
        assert_eq!(s.exit_status(), 17);
        assert_eq!(Failure::State(StateError::TwoPrimaries).exit_status(), 11);
        for &r in RetCode::ALL {
            assert!((102..=176).contains(&r.code()));
            assert_eq!(Failure::from_code(r.code().into()), Some(Failure::Ret(r)));
        }
        for &e in StateError::ALL {
            assert!((-21..=-1).contains(&e.code()));
            assert_eq!(Failure::from_code(e.code().into()), Some(e.into()));
        }
        assert_eq!(Failure::from_code(101), None, "NO_ERROR is no failure");
        assert_eq!(Failure::from_code(0), None);
    }
}
