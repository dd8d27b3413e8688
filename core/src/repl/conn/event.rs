//! What the connection machine reports: [`Event`]s for the shell to act on or log, socket
//! [`Action`]s, and why a connection ended ([`DisconnectReason`], [`ProtocolViolation`]).

use core::fmt;

use super::handshake::{AuthFailure, Incompatible};
use super::sockets::SocketId;
use super::state::{ConnState, DiskState, ReplState, Role};
use super::sync_handshake::{Decision, Refusal};
use crate::repl::wire::{self, Command};

/// Something the shell must do with its sockets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Action {
    /// Open one outgoing TCP connection to the peer; report it with `handle_connected` or
    /// `handle_connect_failed`.
    Connect,
    /// Close this socket and drop anything buffered for it.
    Close(SocketId),
}

/// A notification for the shell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Event {
    /// The connection state changed.
    StateChanged {
        /// The new state.
        conn: ConnState,
    },
    /// The socket pair formed and P_CONNECTION_FEATURES agreed on a version.
    FeaturesAgreed {
        /// Agreed protocol version.
        pv: u32,
        /// Agreed `DRBD_FF_*` bits.
        features: u32,
        /// This node holds RESOLVE_CONFLICTS.
        resolve_conflicts: bool,
    },
    /// The sync handshake ran for a volume (before a refusal disconnects, too).
    SyncHandshake {
        /// The volume.
        volume: u16,
        /// The decision.
        decision: Decision,
    },
    /// A volume's replication state changed.
    ReplStateChanged {
        /// The volume.
        volume: u16,
        /// The new state.
        repl: ReplState,
    },
    /// The peer announced its role or disk state for a volume (P_STATE).
    PeerStateChanged {
        /// The volume.
        volume: u16,
        /// The peer's role.
        role: Role,
        /// The peer's disk state.
        disk: DiskState,
    },
    /// A volume's generation UUIDs changed (new current UUID, or a fix-up by the handshake):
    /// write them to the meta data.
    UuidsChanged {
        /// The volume.
        volume: u16,
    },
    /// Every volume finished its handshake: the connection is Connected.
    Connected,
    /// The connection ended.
    Disconnected {
        /// Why.
        reason: DisconnectReason,
    },
}

/// Which step of the handshake the machine is in (for messages and checks).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Phase {
    /// StandAlone: not trying.
    Idle,
    /// Forming the socket pair (8.4: WFConnection).
    Sockets,
    /// Both sockets exist; waiting `sock-check-timeo` to see that they stay.
    Settle,
    /// P_CONNECTION_FEATURES sent, waiting for the peer's.
    Features,
    /// P_AUTH_CHALLENGE sent, waiting for the peer's.
    AuthChallenge,
    /// P_AUTH_RESPONSE sent, waiting for the peer's.
    AuthResponse,
    /// P_PROTOCOL and the volume packets sent, waiting for the peer's (8.4: WFReportParams).
    Params,
    /// Handshake done.
    Connected,
}

/// A packet the connection cannot accept; the connection goes to ProtocolError and retries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ProtocolViolation {
    /// The bytes are not a valid packet.
    Wire(wire::Error),
    /// A valid packet that does not belong here.
    Unexpected {
        /// The command.
        command: Command,
        /// The handshake step.
        phase: Phase,
    },
    /// A packet on the other socket than its command travels on.
    WrongSocket {
        /// The command.
        command: Command,
    },
    /// A per-volume packet for a volume not configured here.
    UnknownVolume {
        /// The volume number.
        volume: u16,
    },
    /// A packet longer than any DRBD sends.
    TooLong {
        /// Its announced payload length.
        len: u32,
    },
    /// A P_STATE with a role or disk number DRBD does not define.
    BadState {
        /// The state word.
        word: u32,
    },
    /// The data path (writes, acks, bitmap, resync traffic) refused a packet.
    DataPath(crate::repl::data_error::DataError),
}

impl fmt::Display for ProtocolViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtocolViolation::Wire(e) => e.fmt(f),
            ProtocolViolation::Unexpected { command, phase } => {
                write!(f, "unexpected {command} during {phase:?}")
            }
            ProtocolViolation::WrongSocket { command } => {
                write!(f, "{command} arrived on the wrong socket")
            }
            ProtocolViolation::UnknownVolume { volume } => {
                write!(
                    f,
                    "packet for volume {volume}, which is not configured locally"
                )
            }
            ProtocolViolation::TooLong { len } => write!(f, "{len}-byte packet is too long"),
            ProtocolViolation::BadState { word } => write!(f, "P_STATE {word:#010x} is not valid"),
            ProtocolViolation::DataPath(e) => e.fmt(f),
        }
    }
}

/// Why a connection ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum DisconnectReason {
    /// The shell asked (`disconnect`).
    User,
    /// CRAM-HMAC failed ("authentication failed"); not retried.
    AuthFailed(AuthFailure),
    /// The peer's settings do not match ours; not retried.
    Incompatible(Incompatible),
    /// The sync handshake refused a volume (split brain, unrelated data, …); not retried.
    Handshake {
        /// The volume.
        volume: u16,
        /// Why.
        refusal: Refusal,
    },
    /// The peer asked for a dry-run connect, which is done now; not retried.
    DryRun,
    /// The peer broke the protocol; retried.
    ProtocolError(ProtocolViolation),
    /// No P_PING_ACK within ping-timeout; retried.
    NetworkFailure,
    /// The handshake stalled (no packet for 4 × ping-timeout); retried.
    Timeout,
    /// A socket closed after the pair formed; retried.
    BrokenPipe,
}

impl DisconnectReason {
    /// Whether the machine tries again after connect-int (else it goes StandAlone).
    pub const fn retries(&self) -> bool {
        matches!(
            self,
            DisconnectReason::ProtocolError(_)
                | DisconnectReason::NetworkFailure
                | DisconnectReason::Timeout
                | DisconnectReason::BrokenPipe
        )
    }

    /// The transient connection state DRBD passes through for this reason.
    pub const fn state(&self) -> ConnState {
        match self {
            DisconnectReason::ProtocolError(_) => ConnState::ProtocolError,
            DisconnectReason::NetworkFailure => ConnState::NetworkFailure,
            DisconnectReason::Timeout => ConnState::Timeout,
            DisconnectReason::BrokenPipe => ConnState::BrokenPipe,
            _ => ConnState::Disconnecting,
        }
    }
}

impl fmt::Display for DisconnectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DisconnectReason::User => f.write_str("disconnected by request"),
            DisconnectReason::AuthFailed(a) => a.fmt(f),
            DisconnectReason::Incompatible(i) => i.fmt(f),
            DisconnectReason::Handshake { volume, refusal } => {
                write!(f, "volume {volume}: {refusal}, dropping connection")
            }
            DisconnectReason::DryRun => f.write_str("dry-run connect finished"),
            DisconnectReason::ProtocolError(p) => write!(f, "protocol error: {p}"),
            DisconnectReason::NetworkFailure => f.write_str("PingAck did not arrive in time"),
            DisconnectReason::Timeout => f.write_str("handshake timed out"),
            DisconnectReason::BrokenPipe => f.write_str("a socket closed"),
        }
    }
}
