//! DRBD's command numbers (replication.md §2): upstream names and numbering, DRBD 9.3 superset
//! of 8.4, with the socket and scope each command travels on.

use super::error::Error;

/// Which of the two TCP connections carries a command (replication.md §4.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Socket {
    /// The data socket: bulk data, handshake, requests.
    Data,
    /// The meta (control) socket: acks, pings, replies.
    Meta,
    /// Both (P_DELAY_PROBE).
    Both,
    /// Neither: socket-role announcements and obsolete numbers.
    None,
}

/// Whether a command concerns one volume or the whole connection (h100 volume 0xFFFF).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Scope {
    /// Per volume: the h100 header carries the volume number.
    Volume,
    /// Connection-wide: the h100 header carries 0xFFFF.
    Connection,
}

/// The volume number connection-wide packets carry in an h100 header (−1 as u16).
pub const VOLUME_CONNECTION: u16 = 0xFFFF;

/// A DRBD packet command (`enum drbd_packet`), numbered as upstream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[repr(u16)]
pub enum Command {
    /// `P_DATA` (0x00).
    Data = 0x00,
    /// `P_DATA_REPLY` (0x01).
    DataReply = 0x01,
    /// `P_RS_DATA_REPLY` (0x02).
    RsDataReply = 0x02,
    /// `P_BARRIER` (0x03).
    Barrier = 0x03,
    /// `P_BITMAP` (0x04).
    Bitmap = 0x04,
    /// `P_BECOME_SYNC_TARGET` (0x05).
    BecomeSyncTarget = 0x05,
    /// `P_BECOME_SYNC_SOURCE` (0x06).
    BecomeSyncSource = 0x06,
    /// `P_UNPLUG_REMOTE` (0x07).
    UnplugRemote = 0x07,
    /// `P_DATA_REQUEST` (0x08).
    DataRequest = 0x08,
    /// `P_RS_DATA_REQUEST` (0x09).
    RsDataRequest = 0x09,
    /// `P_SYNC_PARAM` (0x0A).
    SyncParam = 0x0A,
    /// `P_PROTOCOL` (0x0B).
    Protocol = 0x0B,
    /// `P_UUIDS` (0x0C).
    Uuids = 0x0C,
    /// `P_SIZES` (0x0D).
    Sizes = 0x0D,
    /// `P_STATE` (0x0E).
    State = 0x0E,
    /// `P_SYNC_UUID` (0x0F).
    SyncUuid = 0x0F,
    /// `P_AUTH_CHALLENGE` (0x10).
    AuthChallenge = 0x10,
    /// `P_AUTH_RESPONSE` (0x11).
    AuthResponse = 0x11,
    /// `P_STATE_CHG_REQ` (0x12).
    StateChgReq = 0x12,
    /// `P_PING` (0x13).
    Ping = 0x13,
    /// `P_PING_ACK` (0x14).
    PingAck = 0x14,
    /// `P_RECV_ACK` (0x15).
    RecvAck = 0x15,
    /// `P_WRITE_ACK` (0x16).
    WriteAck = 0x16,
    /// `P_RS_WRITE_ACK` (0x17).
    RsWriteAck = 0x17,
    /// `P_SUPERSEDED` (0x18).
    Superseded = 0x18,
    /// `P_NEG_ACK` (0x19).
    NegAck = 0x19,
    /// `P_NEG_DREPLY` (0x1A).
    NegDReply = 0x1A,
    /// `P_NEG_RS_DREPLY` (0x1B).
    NegRsDReply = 0x1B,
    /// `P_BARRIER_ACK` (0x1C).
    BarrierAck = 0x1C,
    /// `P_STATE_CHG_REPLY` (0x1D).
    StateChgReply = 0x1D,
    /// `P_OV_REQUEST` (0x1E).
    OvRequest = 0x1E,
    /// `P_OV_REPLY` (0x1F).
    OvReply = 0x1F,
    /// `P_OV_RESULT` (0x20).
    OvResult = 0x20,
    /// `P_CSUM_RS_REQUEST` (0x21).
    CsumRsRequest = 0x21,
    /// `P_RS_IS_IN_SYNC` (0x22).
    RsIsInSync = 0x22,
    /// `P_SYNC_PARAM89` (0x23).
    SyncParam89 = 0x23,
    /// `P_COMPRESSED_BITMAP` (0x24).
    CompressedBitmap = 0x24,
    /// `P_DELAY_PROBE` (0x27).
    DelayProbe = 0x27,
    /// `P_OUT_OF_SYNC` (0x28).
    OutOfSync = 0x28,
    /// `P_RS_CANCEL` (0x29).
    RsCancel = 0x29,
    /// `P_CONN_ST_CHG_REQ` (0x2A).
    ConnStChgReq = 0x2A,
    /// `P_CONN_ST_CHG_REPLY` (0x2B).
    ConnStChgReply = 0x2B,
    /// `P_RETRY_WRITE` (0x2C).
    RetryWrite = 0x2C,
    /// `P_PROTOCOL_UPDATE` (0x2D).
    ProtocolUpdate = 0x2D,
    /// `P_TWOPC_PREPARE` (0x2E).
    TwopcPrepare = 0x2E,
    /// `P_TWOPC_ABORT` (0x2F).
    TwopcAbort = 0x2F,
    /// `P_DAGTAG` (0x30).
    Dagtag = 0x30,
    /// `P_TRIM` (0x31).
    Trim = 0x31,
    /// `P_RS_THIN_REQ` (0x32).
    RsThinReq = 0x32,
    /// `P_RS_DEALLOCATED` (0x33).
    RsDeallocated = 0x33,
    /// `P_WSAME` (0x34).
    Wsame = 0x34,
    /// `P_TWOPC_PREP_RSZ` (0x35).
    TwopcPrepRsz = 0x35,
    /// `P_ZEROES` (0x36).
    Zeroes = 0x36,
    /// `P_PEER_ACK` (0x40).
    PeerAck = 0x40,
    /// `P_PEERS_IN_SYNC` (0x41).
    PeersInSync = 0x41,
    /// `P_UUIDS110` (0x42).
    Uuids110 = 0x42,
    /// `P_PEER_DAGTAG` (0x43).
    PeerDagtag = 0x43,
    /// `P_CURRENT_UUID` (0x44).
    CurrentUuid = 0x44,
    /// `P_TWOPC_YES` (0x45).
    TwopcYes = 0x45,
    /// `P_TWOPC_NO` (0x46).
    TwopcNo = 0x46,
    /// `P_TWOPC_COMMIT` (0x47).
    TwopcCommit = 0x47,
    /// `P_TWOPC_RETRY` (0x48).
    TwopcRetry = 0x48,
    /// `P_CONFIRM_STABLE` (0x49).
    ConfirmStable = 0x49,
    /// `P_RS_CANCEL_AHEAD` (0x4A).
    RsCancelAhead = 0x4A,
    /// `P_DISCONNECT` (0x4B).
    Disconnect = 0x4B,
    /// `P_RS_DAGTAG_REQ` (0x4C).
    RsDagtagReq = 0x4C,
    /// `P_RS_CSUM_DAGTAG_REQ` (0x4D).
    RsCsumDagtagReq = 0x4D,
    /// `P_RS_THIN_DAGTAG_REQ` (0x4E).
    RsThinDagtagReq = 0x4E,
    /// `P_OV_DAGTAG_REQ` (0x4F).
    OvDagtagReq = 0x4F,
    /// `P_OV_DAGTAG_REPLY` (0x50).
    OvDagtagReply = 0x50,
    /// `P_WRITE_ACK_IN_SYNC` (0x51).
    WriteAckInSync = 0x51,
    /// `P_RS_NEG_ACK` (0x52).
    RsNegAck = 0x52,
    /// `P_OV_RESULT_ID` (0x53).
    OvResultId = 0x53,
    /// `P_RS_DEALLOCATED_ID` (0x54).
    RsDeallocatedId = 0x54,
    /// `P_FLUSH_REQUESTS` (0x55).
    FlushRequests = 0x55,
    /// `P_FLUSH_FORWARD` (0x56).
    FlushForward = 0x56,
    /// `P_FLUSH_REQUESTS_ACK` (0x57).
    FlushRequestsAck = 0x57,
    /// `P_ENABLE_REPLICATION_NEXT` (0x58).
    EnableReplicationNext = 0x58,
    /// `P_ENABLE_REPLICATION` (0x59).
    EnableReplication = 0x59,
    /// `P_INITIAL_META` (0xFFF1).
    InitialMeta = 0xFFF1,
    /// `P_INITIAL_DATA` (0xFFF2).
    InitialData = 0xFFF2,
    /// `P_CONNECTION_FEATURES` (0xFFFE).
    ConnectionFeatures = 0xFFFE,
}

impl Command {
    /// Every command, in numeric order.
    pub const ALL: &'static [Command] = &[
        Command::Data,
        Command::DataReply,
        Command::RsDataReply,
        Command::Barrier,
        Command::Bitmap,
        Command::BecomeSyncTarget,
        Command::BecomeSyncSource,
        Command::UnplugRemote,
        Command::DataRequest,
        Command::RsDataRequest,
        Command::SyncParam,
        Command::Protocol,
        Command::Uuids,
        Command::Sizes,
        Command::State,
        Command::SyncUuid,
        Command::AuthChallenge,
        Command::AuthResponse,
        Command::StateChgReq,
        Command::Ping,
        Command::PingAck,
        Command::RecvAck,
        Command::WriteAck,
        Command::RsWriteAck,
        Command::Superseded,
        Command::NegAck,
        Command::NegDReply,
        Command::NegRsDReply,
        Command::BarrierAck,
        Command::StateChgReply,
        Command::OvRequest,
        Command::OvReply,
        Command::OvResult,
        Command::CsumRsRequest,
        Command::RsIsInSync,
        Command::SyncParam89,
        Command::CompressedBitmap,
        Command::DelayProbe,
        Command::OutOfSync,
        Command::RsCancel,
        Command::ConnStChgReq,
        Command::ConnStChgReply,
        Command::RetryWrite,
        Command::ProtocolUpdate,
        Command::TwopcPrepare,
        Command::TwopcAbort,
        Command::Dagtag,
        Command::Trim,
        Command::RsThinReq,
        Command::RsDeallocated,
        Command::Wsame,
        Command::TwopcPrepRsz,
        Command::Zeroes,
        Command::PeerAck,
        Command::PeersInSync,
        Command::Uuids110,
        Command::PeerDagtag,
        Command::CurrentUuid,
        Command::TwopcYes,
        Command::TwopcNo,
        Command::TwopcCommit,
        Command::TwopcRetry,
        Command::ConfirmStable,
        Command::RsCancelAhead,
        Command::Disconnect,
        Command::RsDagtagReq,
        Command::RsCsumDagtagReq,
        Command::RsThinDagtagReq,
        Command::OvDagtagReq,
        Command::OvDagtagReply,
        Command::WriteAckInSync,
        Command::RsNegAck,
        Command::OvResultId,
        Command::RsDeallocatedId,
        Command::FlushRequests,
        Command::FlushForward,
        Command::FlushRequestsAck,
        Command::EnableReplicationNext,
        Command::EnableReplication,
        Command::InitialMeta,
        Command::InitialData,
        Command::ConnectionFeatures,
    ];

    /// The command with upstream number `code`.
    pub fn from_code(code: u16) -> Result<Command, Error> {
        Ok(match code {
            0x00 => Command::Data,
            0x01 => Command::DataReply,
            0x02 => Command::RsDataReply,
            0x03 => Command::Barrier,
            0x04 => Command::Bitmap,
            0x05 => Command::BecomeSyncTarget,
            0x06 => Command::BecomeSyncSource,
            0x07 => Command::UnplugRemote,
            0x08 => Command::DataRequest,
            0x09 => Command::RsDataRequest,
            0x0A => Command::SyncParam,
            0x0B => Command::Protocol,
            0x0C => Command::Uuids,
            0x0D => Command::Sizes,
            0x0E => Command::State,
            0x0F => Command::SyncUuid,
            0x10 => Command::AuthChallenge,
            0x11 => Command::AuthResponse,
            0x12 => Command::StateChgReq,
            0x13 => Command::Ping,
            0x14 => Command::PingAck,
            0x15 => Command::RecvAck,
            0x16 => Command::WriteAck,
            0x17 => Command::RsWriteAck,
            0x18 => Command::Superseded,
            0x19 => Command::NegAck,
            0x1A => Command::NegDReply,
            0x1B => Command::NegRsDReply,
            0x1C => Command::BarrierAck,
            0x1D => Command::StateChgReply,
            0x1E => Command::OvRequest,
            0x1F => Command::OvReply,
            0x20 => Command::OvResult,
            0x21 => Command::CsumRsRequest,
            0x22 => Command::RsIsInSync,
            0x23 => Command::SyncParam89,
            0x24 => Command::CompressedBitmap,
            0x27 => Command::DelayProbe,
            0x28 => Command::OutOfSync,
            0x29 => Command::RsCancel,
            0x2A => Command::ConnStChgReq,
            0x2B => Command::ConnStChgReply,
            0x2C => Command::RetryWrite,
            0x2D => Command::ProtocolUpdate,
            0x2E => Command::TwopcPrepare,
            0x2F => Command::TwopcAbort,
            0x30 => Command::Dagtag,
            0x31 => Command::Trim,
            0x32 => Command::RsThinReq,
            0x33 => Command::RsDeallocated,
            0x34 => Command::Wsame,
            0x35 => Command::TwopcPrepRsz,
            0x36 => Command::Zeroes,
            0x40 => Command::PeerAck,
            0x41 => Command::PeersInSync,
            0x42 => Command::Uuids110,
            0x43 => Command::PeerDagtag,
            0x44 => Command::CurrentUuid,
            0x45 => Command::TwopcYes,
            0x46 => Command::TwopcNo,
            0x47 => Command::TwopcCommit,
            0x48 => Command::TwopcRetry,
            0x49 => Command::ConfirmStable,
            0x4A => Command::RsCancelAhead,
            0x4B => Command::Disconnect,
            0x4C => Command::RsDagtagReq,
            0x4D => Command::RsCsumDagtagReq,
            0x4E => Command::RsThinDagtagReq,
            0x4F => Command::OvDagtagReq,
            0x50 => Command::OvDagtagReply,
            0x51 => Command::WriteAckInSync,
            0x52 => Command::RsNegAck,
            0x53 => Command::OvResultId,
            0x54 => Command::RsDeallocatedId,
            0x55 => Command::FlushRequests,
            0x56 => Command::FlushForward,
            0x57 => Command::FlushRequestsAck,
            0x58 => Command::EnableReplicationNext,
            0x59 => Command::EnableReplication,
            0xFFF1 => Command::InitialMeta,
            0xFFF2 => Command::InitialData,
            0xFFFE => Command::ConnectionFeatures,
            _ => return Err(Error::UnknownCommand { code }),
        })
    }

    /// Upstream's number.
    pub const fn code(self) -> u16 {
        self as u16
    }

    /// Upstream's name (`P_DATA`, …), as Wireshark shows it.
    pub const fn name(self) -> &'static str {
        match self {
            Command::Data => "P_DATA",
            Command::DataReply => "P_DATA_REPLY",
            Command::RsDataReply => "P_RS_DATA_REPLY",
            Command::Barrier => "P_BARRIER",
            Command::Bitmap => "P_BITMAP",
            Command::BecomeSyncTarget => "P_BECOME_SYNC_TARGET",
            Command::BecomeSyncSource => "P_BECOME_SYNC_SOURCE",
            Command::UnplugRemote => "P_UNPLUG_REMOTE",
            Command::DataRequest => "P_DATA_REQUEST",
            Command::RsDataRequest => "P_RS_DATA_REQUEST",
            Command::SyncParam => "P_SYNC_PARAM",
            Command::Protocol => "P_PROTOCOL",
            Command::Uuids => "P_UUIDS",
            Command::Sizes => "P_SIZES",
            Command::State => "P_STATE",
            Command::SyncUuid => "P_SYNC_UUID",
            Command::AuthChallenge => "P_AUTH_CHALLENGE",
            Command::AuthResponse => "P_AUTH_RESPONSE",
            Command::StateChgReq => "P_STATE_CHG_REQ",
            Command::Ping => "P_PING",
            Command::PingAck => "P_PING_ACK",
            Command::RecvAck => "P_RECV_ACK",
            Command::WriteAck => "P_WRITE_ACK",
            Command::RsWriteAck => "P_RS_WRITE_ACK",
            Command::Superseded => "P_SUPERSEDED",
            Command::NegAck => "P_NEG_ACK",
            Command::NegDReply => "P_NEG_DREPLY",
            Command::NegRsDReply => "P_NEG_RS_DREPLY",
            Command::BarrierAck => "P_BARRIER_ACK",
            Command::StateChgReply => "P_STATE_CHG_REPLY",
            Command::OvRequest => "P_OV_REQUEST",
            Command::OvReply => "P_OV_REPLY",
            Command::OvResult => "P_OV_RESULT",
            Command::CsumRsRequest => "P_CSUM_RS_REQUEST",
            Command::RsIsInSync => "P_RS_IS_IN_SYNC",
            Command::SyncParam89 => "P_SYNC_PARAM89",
            Command::CompressedBitmap => "P_COMPRESSED_BITMAP",
            Command::DelayProbe => "P_DELAY_PROBE",
            Command::OutOfSync => "P_OUT_OF_SYNC",
            Command::RsCancel => "P_RS_CANCEL",
            Command::ConnStChgReq => "P_CONN_ST_CHG_REQ",
            Command::ConnStChgReply => "P_CONN_ST_CHG_REPLY",
            Command::RetryWrite => "P_RETRY_WRITE",
            Command::ProtocolUpdate => "P_PROTOCOL_UPDATE",
            Command::TwopcPrepare => "P_TWOPC_PREPARE",
            Command::TwopcAbort => "P_TWOPC_ABORT",
            Command::Dagtag => "P_DAGTAG",
            Command::Trim => "P_TRIM",
            Command::RsThinReq => "P_RS_THIN_REQ",
            Command::RsDeallocated => "P_RS_DEALLOCATED",
            Command::Wsame => "P_WSAME",
            Command::TwopcPrepRsz => "P_TWOPC_PREP_RSZ",
            Command::Zeroes => "P_ZEROES",
            Command::PeerAck => "P_PEER_ACK",
            Command::PeersInSync => "P_PEERS_IN_SYNC",
            Command::Uuids110 => "P_UUIDS110",
            Command::PeerDagtag => "P_PEER_DAGTAG",
            Command::CurrentUuid => "P_CURRENT_UUID",
            Command::TwopcYes => "P_TWOPC_YES",
            Command::TwopcNo => "P_TWOPC_NO",
            Command::TwopcCommit => "P_TWOPC_COMMIT",
            Command::TwopcRetry => "P_TWOPC_RETRY",
            Command::ConfirmStable => "P_CONFIRM_STABLE",
            Command::RsCancelAhead => "P_RS_CANCEL_AHEAD",
            Command::Disconnect => "P_DISCONNECT",
            Command::RsDagtagReq => "P_RS_DAGTAG_REQ",
            Command::RsCsumDagtagReq => "P_RS_CSUM_DAGTAG_REQ",
            Command::RsThinDagtagReq => "P_RS_THIN_DAGTAG_REQ",
            Command::OvDagtagReq => "P_OV_DAGTAG_REQ",
            Command::OvDagtagReply => "P_OV_DAGTAG_REPLY",
            Command::WriteAckInSync => "P_WRITE_ACK_IN_SYNC",
            Command::RsNegAck => "P_RS_NEG_ACK",
            Command::OvResultId => "P_OV_RESULT_ID",
            Command::RsDeallocatedId => "P_RS_DEALLOCATED_ID",
            Command::FlushRequests => "P_FLUSH_REQUESTS",
            Command::FlushForward => "P_FLUSH_FORWARD",
            Command::FlushRequestsAck => "P_FLUSH_REQUESTS_ACK",
            Command::EnableReplicationNext => "P_ENABLE_REPLICATION_NEXT",
            Command::EnableReplication => "P_ENABLE_REPLICATION",
            Command::InitialMeta => "P_INITIAL_META",
            Command::InitialData => "P_INITIAL_DATA",
            Command::ConnectionFeatures => "P_CONNECTION_FEATURES",
        }
    }

    /// The socket the command travels on.
    pub const fn socket(self) -> Socket {
        match self {
            Command::Data
            | Command::DataReply
            | Command::RsDataReply
            | Command::Barrier
            | Command::Bitmap
            | Command::UnplugRemote
            | Command::DataRequest
            | Command::RsDataRequest
            | Command::SyncParam
            | Command::Protocol
            | Command::Uuids
            | Command::Sizes
            | Command::State
            | Command::SyncUuid
            | Command::AuthChallenge
            | Command::AuthResponse
            | Command::StateChgReq
            | Command::OvRequest
            | Command::OvReply
            | Command::CsumRsRequest
            | Command::SyncParam89
            | Command::CompressedBitmap
            | Command::OutOfSync
            | Command::ConnStChgReq
            | Command::ProtocolUpdate
            | Command::TwopcPrepare
            | Command::TwopcAbort
            | Command::Dagtag
            | Command::Trim
            | Command::RsThinReq
            | Command::RsDeallocated
            | Command::Wsame
            | Command::TwopcPrepRsz
            | Command::Zeroes
            | Command::Uuids110
            | Command::PeerDagtag
            | Command::CurrentUuid
            | Command::TwopcCommit
            | Command::Disconnect
            | Command::RsDagtagReq
            | Command::RsCsumDagtagReq
            | Command::RsThinDagtagReq
            | Command::OvDagtagReq
            | Command::OvDagtagReply
            | Command::RsDeallocatedId
            | Command::FlushRequests
            | Command::FlushRequestsAck
            | Command::EnableReplicationNext
            | Command::EnableReplication
            | Command::ConnectionFeatures => Socket::Data,
            Command::Ping
            | Command::PingAck
            | Command::RecvAck
            | Command::WriteAck
            | Command::RsWriteAck
            | Command::Superseded
            | Command::NegAck
            | Command::NegDReply
            | Command::NegRsDReply
            | Command::BarrierAck
            | Command::StateChgReply
            | Command::OvResult
            | Command::RsIsInSync
            | Command::RsCancel
            | Command::ConnStChgReply
            | Command::RetryWrite
            | Command::PeerAck
            | Command::PeersInSync
            | Command::TwopcYes
            | Command::TwopcNo
            | Command::TwopcRetry
            | Command::ConfirmStable
            | Command::RsCancelAhead
            | Command::WriteAckInSync
            | Command::RsNegAck
            | Command::OvResultId
            | Command::FlushForward => Socket::Meta,
            Command::DelayProbe => Socket::Both,
            _ => Socket::None,
        }
    }

    /// Per volume or connection-wide (2PC packets are connection-wide in a two-node setup).
    pub const fn scope(self) -> Scope {
        match self {
            Command::Barrier
            | Command::BecomeSyncTarget
            | Command::BecomeSyncSource
            | Command::UnplugRemote
            | Command::Protocol
            | Command::AuthChallenge
            | Command::AuthResponse
            | Command::Ping
            | Command::PingAck
            | Command::BarrierAck
            | Command::ConnStChgReq
            | Command::ConnStChgReply
            | Command::ProtocolUpdate
            | Command::TwopcPrepare
            | Command::TwopcAbort
            | Command::Dagtag
            | Command::TwopcPrepRsz
            | Command::PeerAck
            | Command::PeerDagtag
            | Command::TwopcYes
            | Command::TwopcNo
            | Command::TwopcCommit
            | Command::TwopcRetry
            | Command::ConfirmStable
            | Command::Disconnect
            | Command::FlushRequests
            | Command::FlushForward
            | Command::FlushRequestsAck
            | Command::InitialMeta
            | Command::InitialData
            | Command::ConnectionFeatures => Scope::Connection,
            _ => Scope::Volume,
        }
    }
}

impl core::fmt::Display for Command {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

impl TryFrom<u16> for Command {
    type Error = Error;
    fn try_from(code: u16) -> Result<Command, Error> {
        Command::from_code(code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_round_trip_and_gaps_are_unknown() {
        for &c in Command::ALL {
            assert_eq!(Command::from_code(c.code()), Ok(c));
        }
        for code in [0x25, 0x26, 0x37, 0x3F, 0x5A, 0x100, 0xFFFF] {
            assert_eq!(
                Command::from_code(code),
                Err(Error::UnknownCommand { code })
            );
        }
        assert_eq!(Command::ConnectionFeatures.code(), 0xFFFE);
        assert_eq!(Command::Uuids110.name(), "P_UUIDS110");
        assert_eq!(Command::Ping.socket(), Socket::Meta);
        assert_eq!(Command::Protocol.scope(), Scope::Connection);
        assert_eq!(Command::Data.scope(), Scope::Volume);
    }
}
