//! Whole packets: [`Body`] is a payload parsed by the layout its command implies (replication.md
//! §2), [`Frame`] adds the header, and [`Agreed`] carries what the connection negotiated and the
//! parsers need (protocol version for the header, digest size for data packets).

use super::ack::{BlockAckFields, OvResultFields};
use super::auth;
use super::barrier::{BarrierAckFields, BarrierFields, ConfirmStableFields};
use super::bitmap::CompressedRepr;
use super::command::{Command, Scope, VOLUME_CONNECTION};
use super::data::{DataRepr, TrimFields};
use super::error::Error;
use super::features::{ff, ConnectionFeaturesFields};
use super::field::{at_least, emit_parts};
use super::header::{HeaderKind, HeaderRepr};
use super::misc::{
    DagtagFields, DelayProbeFields, EnableReplicationFields, FlushAckFields, FlushForwardFields,
    FlushRequestsFields, PeerAckFields, PeerDagtagFields, PeersInSyncFields,
};
use super::protocol::ProtocolRepr;
use super::request::{BlockDescFields, BlockReqFields, RsReqFields};
use super::sizes::{QueueLimitsFields, SizesRepr};
use super::state::{ReqStateFields, StateFields, StateReplyFields};
use super::sync_param::{SyncParam89Repr, SyncParamRepr};
use super::twopc::{TwopcReplyFields, TwopcRequestFields};
use super::uuid::{CurrentUuidFields, SyncUuidFields, Uuids110Repr, UuidsFields};

/// What the connection agreed; [`Agreed::default`] is the state before P_CONNECTION_FEATURES.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Agreed {
    /// Agreed protocol version (`None` before the feature exchange: any header is accepted and
    /// h80 is sent).
    pub pv: Option<u32>,
    /// Agreed `DRBD_FF_*` feature bits.
    pub features: u32,
    /// Size of the data-integrity digest in data packets (0 = no integrity algorithm).
    pub digest_len: usize,
}

impl Agreed {
    /// Agreed values after the feature exchange.
    pub const fn new(pv: u32, features: u32) -> Self {
        Agreed {
            pv: Some(pv),
            features,
            digest_len: 0,
        }
    }

    /// `HeaderNotAllowed` unless a header of `kind` may arrive at the agreed version.
    pub fn check_header(&self, kind: HeaderKind) -> Result<(), Error> {
        match self.pv {
            Some(pv) if !kind.accepted_at(pv) => Err(Error::HeaderNotAllowed { kind, pv }),
            _ => Ok(()),
        }
    }
}

/// A packet payload, by layout. Commands that share a layout share a variant; the command itself
/// travels in the [`Frame`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Body<'a> {
    /// No payload: P_PING, P_PING_ACK, P_UNPLUG_REMOTE, P_DISCONNECT, P_INITIAL_DATA/META.
    Empty,
    /// P_DATA, P_DATA_REPLY, P_RS_DATA_REPLY.
    Data(DataRepr<'a>),
    /// P_TRIM, P_ZEROES.
    Trim(TrimFields),
    /// P_WSAME: `p_trim` and one logical block.
    Wsame(TrimFields, &'a [u8]),
    /// P_DATA_REQUEST, P_RS_DATA_REQUEST, P_OV_REQUEST, P_RS_THIN_REQ.
    BlockReq(BlockReqFields),
    /// P_OV_REPLY, P_CSUM_RS_REQUEST: `p_block_req` and a digest.
    BlockReqDigest(BlockReqFields, &'a [u8]),
    /// P_RS_DAGTAG_REQ, P_RS_THIN_DAGTAG_REQ, P_OV_DAGTAG_REQ.
    RsReq(RsReqFields),
    /// P_RS_CSUM_DAGTAG_REQ, P_OV_DAGTAG_REPLY: `p_rs_req` and a digest.
    RsReqDigest(RsReqFields, &'a [u8]),
    /// P_OUT_OF_SYNC, P_RS_DEALLOCATED.
    BlockDesc(BlockDescFields),
    /// Every `p_block_ack` command (acks, negative acks, P_RS_DEALLOCATED_ID, …).
    BlockAck(BlockAckFields),
    /// P_OV_RESULT_ID.
    OvResult(OvResultFields),
    /// P_BARRIER.
    Barrier(BarrierFields),
    /// P_BARRIER_ACK.
    BarrierAck(BarrierAckFields),
    /// P_CONFIRM_STABLE.
    ConfirmStable(ConfirmStableFields),
    /// P_CONNECTION_FEATURES.
    Features(ConnectionFeaturesFields),
    /// P_AUTH_CHALLENGE (64 bytes).
    AuthChallenge(&'a [u8; auth::CHALLENGE_LEN]),
    /// P_AUTH_RESPONSE (the HMAC).
    AuthResponse(&'a [u8]),
    /// P_PROTOCOL, P_PROTOCOL_UPDATE.
    Protocol(ProtocolRepr<'a>),
    /// P_UUIDS.
    Uuids(UuidsFields),
    /// P_UUIDS110.
    Uuids110(Uuids110Repr<'a>),
    /// P_CURRENT_UUID.
    CurrentUuid(CurrentUuidFields),
    /// P_SYNC_UUID.
    SyncUuid(SyncUuidFields),
    /// P_SIZES.
    Sizes(SizesRepr),
    /// P_STATE.
    State(StateFields),
    /// P_STATE_CHG_REQ, P_CONN_ST_CHG_REQ.
    ReqState(ReqStateFields),
    /// P_STATE_CHG_REPLY, P_CONN_ST_CHG_REPLY.
    StateReply(StateReplyFields),
    /// P_SYNC_PARAM.
    SyncParam(SyncParamRepr<'a>),
    /// P_SYNC_PARAM89.
    SyncParam89(SyncParam89Repr<'a>),
    /// P_TWOPC_PREPARE, P_TWOPC_PREP_RSZ, P_TWOPC_COMMIT, P_TWOPC_ABORT.
    TwopcRequest(TwopcRequestFields),
    /// P_TWOPC_YES, P_TWOPC_NO, P_TWOPC_RETRY.
    TwopcReply(TwopcReplyFields),
    /// P_DELAY_PROBE.
    DelayProbe(DelayProbeFields),
    /// P_DAGTAG.
    Dagtag(DagtagFields),
    /// P_PEER_ACK.
    PeerAck(PeerAckFields),
    /// P_PEERS_IN_SYNC.
    PeersInSync(PeersInSyncFields),
    /// P_PEER_DAGTAG.
    PeerDagtag(PeerDagtagFields),
    /// P_FLUSH_REQUESTS.
    FlushRequests(FlushRequestsFields),
    /// P_FLUSH_FORWARD.
    FlushForward(FlushForwardFields),
    /// P_FLUSH_REQUESTS_ACK.
    FlushAck(FlushAckFields),
    /// P_ENABLE_REPLICATION, P_ENABLE_REPLICATION_NEXT.
    EnableReplication(EnableReplicationFields),
    /// P_BITMAP: plain little-endian words (see [`super::bitmap::BitmapXfer`]).
    Bitmap(&'a [u8]),
    /// P_COMPRESSED_BITMAP.
    CompressedBitmap(CompressedRepr<'a>),
}

/// Which [`Body`] variant a command uses, without the data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Layout {
    Empty,
    Data,
    Trim,
    Wsame,
    BlockReq,
    BlockReqDigest,
    RsReq,
    RsReqDigest,
    BlockDesc,
    BlockAck,
    OvResult,
    Barrier,
    BarrierAck,
    ConfirmStable,
    Features,
    AuthChallenge,
    AuthResponse,
    Protocol,
    Uuids,
    Uuids110,
    CurrentUuid,
    SyncUuid,
    Sizes,
    State,
    ReqState,
    StateReply,
    SyncParam,
    SyncParam89,
    TwopcRequest,
    TwopcReply,
    DelayProbe,
    Dagtag,
    PeerAck,
    PeersInSync,
    PeerDagtag,
    FlushRequests,
    FlushForward,
    FlushAck,
    EnableReplication,
    Bitmap,
    CompressedBitmap,
}

fn layout_of(command: Command) -> Result<Layout, Error> {
    use Command as C;
    Ok(match command {
        C::Ping
        | C::PingAck
        | C::UnplugRemote
        | C::Disconnect
        | C::InitialData
        | C::InitialMeta => Layout::Empty,
        C::Data | C::DataReply | C::RsDataReply => Layout::Data,
        C::Trim | C::Zeroes => Layout::Trim,
        C::Wsame => Layout::Wsame,
        C::DataRequest | C::RsDataRequest | C::OvRequest | C::RsThinReq => Layout::BlockReq,
        C::OvReply | C::CsumRsRequest => Layout::BlockReqDigest,
        C::RsDagtagReq | C::RsThinDagtagReq | C::OvDagtagReq => Layout::RsReq,
        C::RsCsumDagtagReq | C::OvDagtagReply => Layout::RsReqDigest,
        C::OutOfSync | C::RsDeallocated => Layout::BlockDesc,
        C::RecvAck
        | C::WriteAck
        | C::RsWriteAck
        | C::Superseded
        | C::NegAck
        | C::NegDReply
        | C::NegRsDReply
        | C::OvResult
        | C::RsIsInSync
        | C::RsCancel
        | C::RetryWrite
        | C::RsCancelAhead
        | C::WriteAckInSync
        | C::RsNegAck
        | C::RsDeallocatedId => Layout::BlockAck,
        C::OvResultId => Layout::OvResult,
        C::Barrier => Layout::Barrier,
        C::BarrierAck => Layout::BarrierAck,
        C::ConfirmStable => Layout::ConfirmStable,
        C::ConnectionFeatures => Layout::Features,
        C::AuthChallenge => Layout::AuthChallenge,
        C::AuthResponse => Layout::AuthResponse,
        C::Protocol | C::ProtocolUpdate => Layout::Protocol,
        C::Uuids => Layout::Uuids,
        C::Uuids110 => Layout::Uuids110,
        C::CurrentUuid => Layout::CurrentUuid,
        C::SyncUuid => Layout::SyncUuid,
        C::Sizes => Layout::Sizes,
        C::State => Layout::State,
        C::StateChgReq | C::ConnStChgReq => Layout::ReqState,
        C::StateChgReply | C::ConnStChgReply => Layout::StateReply,
        C::SyncParam => Layout::SyncParam,
        C::SyncParam89 => Layout::SyncParam89,
        C::TwopcPrepare | C::TwopcPrepRsz | C::TwopcCommit | C::TwopcAbort => Layout::TwopcRequest,
        C::TwopcYes | C::TwopcNo | C::TwopcRetry => Layout::TwopcReply,
        C::DelayProbe => Layout::DelayProbe,
        C::Dagtag => Layout::Dagtag,
        C::PeerAck => Layout::PeerAck,
        C::PeersInSync => Layout::PeersInSync,
        C::PeerDagtag => Layout::PeerDagtag,
        C::FlushRequests => Layout::FlushRequests,
        C::FlushForward => Layout::FlushForward,
        C::FlushRequestsAck => Layout::FlushAck,
        C::EnableReplication | C::EnableReplicationNext => Layout::EnableReplication,
        C::Bitmap => Layout::Bitmap,
        C::CompressedBitmap => Layout::CompressedBitmap,
        C::BecomeSyncTarget | C::BecomeSyncSource => {
            return Err(Error::UnsupportedCommand { command })
        }
    })
}

/// `p_block_req`/`p_rs_req` prefix and the digest after it.
fn with_tail<'a, R>(
    payload: &'a [u8],
    fixed: usize,
    what: &'static str,
    parse: impl FnOnce(&'a [u8]) -> Result<R, Error>,
) -> Result<(R, &'a [u8]), Error> {
    at_least(what, payload.len(), fixed)?;
    let (head, tail) = payload.split_at(fixed);
    Ok((parse(head)?, tail))
}

impl<'a> Body<'a> {
    /// Parses `payload` with the layout `command` uses.
    pub fn parse(command: Command, payload: &'a [u8], agreed: &Agreed) -> Result<Self, Error> {
        Ok(match layout_of(command)? {
            Layout::Empty => {
                if !payload.is_empty() {
                    return Err(Error::LengthMismatch {
                        what: command.name(),
                        expected: 0,
                        got: payload.len(),
                    });
                }
                Body::Empty
            }
            Layout::Data => Body::Data(DataRepr::parse(payload, agreed.digest_len)?),
            Layout::Trim => Body::Trim(TrimFields::parse(payload)?),
            Layout::Wsame => {
                let (t, d) = with_tail(payload, TrimFields::LEN, "p_trim", TrimFields::parse)?;
                Body::Wsame(t, d)
            }
            Layout::BlockReq => Body::BlockReq(BlockReqFields::parse(payload)?),
            Layout::BlockReqDigest => {
                let (r, d) = with_tail(
                    payload,
                    BlockReqFields::LEN,
                    "p_block_req",
                    BlockReqFields::parse,
                )?;
                Body::BlockReqDigest(r, d)
            }
            Layout::RsReq => Body::RsReq(RsReqFields::parse(payload)?),
            Layout::RsReqDigest => {
                let (r, d) = with_tail(payload, RsReqFields::LEN, "p_rs_req", RsReqFields::parse)?;
                Body::RsReqDigest(r, d)
            }
            Layout::BlockDesc => Body::BlockDesc(BlockDescFields::parse(payload)?),
            Layout::BlockAck => Body::BlockAck(BlockAckFields::parse(payload)?),
            Layout::OvResult => Body::OvResult(OvResultFields::parse(payload)?),
            Layout::Barrier => Body::Barrier(BarrierFields::parse(payload)?),
            Layout::BarrierAck => Body::BarrierAck(BarrierAckFields::parse(payload)?),
            Layout::ConfirmStable => Body::ConfirmStable(ConfirmStableFields::parse(payload)?),
            Layout::Features => Body::Features(ConnectionFeaturesFields::parse(payload)?),
            Layout::AuthChallenge => Body::AuthChallenge(auth::parse_challenge(payload)?),
            Layout::AuthResponse => Body::AuthResponse(auth::parse_response(payload)?),
            Layout::Protocol => Body::Protocol(ProtocolRepr::parse(payload)?),
            Layout::Uuids => Body::Uuids(UuidsFields::parse(payload)?),
            Layout::Uuids110 => Body::Uuids110(Uuids110Repr::parse(payload)?),
            Layout::CurrentUuid => Body::CurrentUuid(CurrentUuidFields::parse(payload)?),
            Layout::SyncUuid => Body::SyncUuid(SyncUuidFields::parse(payload)?),
            Layout::Sizes => {
                let sizes = SizesRepr::parse(payload)?;
                // With FF_WSAME agreed the queue limits are part of the fixed size (§1, §3.8).
                if agreed.pv.is_some() && agreed.features & ff::WSAME != 0 && sizes.qlim.is_none() {
                    return Err(Error::LengthMismatch {
                        what: "p_sizes",
                        expected: sizes.buffer_len() + QueueLimitsFields::LEN,
                        got: payload.len(),
                    });
                }
                Body::Sizes(sizes)
            }
            Layout::State => Body::State(StateFields::parse(payload)?),
            Layout::ReqState => Body::ReqState(ReqStateFields::parse(payload)?),
            Layout::StateReply => Body::StateReply(StateReplyFields::parse(payload)?),
            Layout::SyncParam => Body::SyncParam(SyncParamRepr::parse(payload)?),
            Layout::SyncParam89 => Body::SyncParam89(SyncParam89Repr::parse(payload)?),
            Layout::TwopcRequest => Body::TwopcRequest(TwopcRequestFields::parse(payload)?),
            Layout::TwopcReply => Body::TwopcReply(TwopcReplyFields::parse(payload)?),
            Layout::DelayProbe => Body::DelayProbe(DelayProbeFields::parse(payload)?),
            Layout::Dagtag => Body::Dagtag(DagtagFields::parse(payload)?),
            Layout::PeerAck => Body::PeerAck(PeerAckFields::parse(payload)?),
            Layout::PeersInSync => Body::PeersInSync(PeersInSyncFields::parse(payload)?),
            Layout::PeerDagtag => Body::PeerDagtag(PeerDagtagFields::parse(payload)?),
            Layout::FlushRequests => Body::FlushRequests(FlushRequestsFields::parse(payload)?),
            Layout::FlushForward => Body::FlushForward(FlushForwardFields::parse(payload)?),
            Layout::FlushAck => Body::FlushAck(FlushAckFields::parse(payload)?),
            Layout::EnableReplication => {
                Body::EnableReplication(EnableReplicationFields::parse(payload)?)
            }
            Layout::Bitmap => {
                if !payload.len().is_multiple_of(8) {
                    return Err(Error::LengthMismatch {
                        what: "p_bitmap",
                        expected: payload.len() / 8 * 8,
                        got: payload.len(),
                    });
                }
                Body::Bitmap(payload)
            }
            Layout::CompressedBitmap => Body::CompressedBitmap(CompressedRepr::parse(payload)?),
        })
    }

    fn layout(&self) -> Layout {
        match self {
            Body::Empty => Layout::Empty,
            Body::Data(_) => Layout::Data,
            Body::Trim(_) => Layout::Trim,
            Body::Wsame(..) => Layout::Wsame,
            Body::BlockReq(_) => Layout::BlockReq,
            Body::BlockReqDigest(..) => Layout::BlockReqDigest,
            Body::RsReq(_) => Layout::RsReq,
            Body::RsReqDigest(..) => Layout::RsReqDigest,
            Body::BlockDesc(_) => Layout::BlockDesc,
            Body::BlockAck(_) => Layout::BlockAck,
            Body::OvResult(_) => Layout::OvResult,
            Body::Barrier(_) => Layout::Barrier,
            Body::BarrierAck(_) => Layout::BarrierAck,
            Body::ConfirmStable(_) => Layout::ConfirmStable,
            Body::Features(_) => Layout::Features,
            Body::AuthChallenge(_) => Layout::AuthChallenge,
            Body::AuthResponse(_) => Layout::AuthResponse,
            Body::Protocol(_) => Layout::Protocol,
            Body::Uuids(_) => Layout::Uuids,
            Body::Uuids110(_) => Layout::Uuids110,
            Body::CurrentUuid(_) => Layout::CurrentUuid,
            Body::SyncUuid(_) => Layout::SyncUuid,
            Body::Sizes(_) => Layout::Sizes,
            Body::State(_) => Layout::State,
            Body::ReqState(_) => Layout::ReqState,
            Body::StateReply(_) => Layout::StateReply,
            Body::SyncParam(_) => Layout::SyncParam,
            Body::SyncParam89(_) => Layout::SyncParam89,
            Body::TwopcRequest(_) => Layout::TwopcRequest,
            Body::TwopcReply(_) => Layout::TwopcReply,
            Body::DelayProbe(_) => Layout::DelayProbe,
            Body::Dagtag(_) => Layout::Dagtag,
            Body::PeerAck(_) => Layout::PeerAck,
            Body::PeersInSync(_) => Layout::PeersInSync,
            Body::PeerDagtag(_) => Layout::PeerDagtag,
            Body::FlushRequests(_) => Layout::FlushRequests,
            Body::FlushForward(_) => Layout::FlushForward,
            Body::FlushAck(_) => Layout::FlushAck,
            Body::EnableReplication(_) => Layout::EnableReplication,
            Body::Bitmap(_) => Layout::Bitmap,
            Body::CompressedBitmap(_) => Layout::CompressedBitmap,
        }
    }

    /// True if `command` carries this layout.
    pub fn fits(&self, command: Command) -> bool {
        layout_of(command).is_ok_and(|l| l == self.layout())
    }

    /// Bytes [`Self::emit`] writes.
    pub fn buffer_len(&self) -> usize {
        match self {
            Body::Empty => 0,
            Body::Data(r) => r.buffer_len(),
            Body::Trim(r) => r.buffer_len(),
            Body::Wsame(r, d) => r.buffer_len() + d.len(),
            Body::BlockReq(r) => r.buffer_len(),
            Body::BlockReqDigest(r, d) => r.buffer_len() + d.len(),
            Body::RsReq(r) => r.buffer_len(),
            Body::RsReqDigest(r, d) => r.buffer_len() + d.len(),
            Body::BlockDesc(r) => r.buffer_len(),
            Body::BlockAck(r) => r.buffer_len(),
            Body::OvResult(r) => r.buffer_len(),
            Body::Barrier(r) => r.buffer_len(),
            Body::BarrierAck(r) => r.buffer_len(),
            Body::ConfirmStable(r) => r.buffer_len(),
            Body::Features(r) => r.buffer_len(),
            Body::AuthChallenge(c) => c.len(),
            Body::AuthResponse(r) => r.len(),
            Body::Protocol(r) => r.buffer_len(),
            Body::Uuids(r) => r.buffer_len(),
            Body::Uuids110(r) => r.buffer_len(),
            Body::CurrentUuid(r) => r.buffer_len(),
            Body::SyncUuid(r) => r.buffer_len(),
            Body::Sizes(r) => r.buffer_len(),
            Body::State(r) => r.buffer_len(),
            Body::ReqState(r) => r.buffer_len(),
            Body::StateReply(r) => r.buffer_len(),
            Body::SyncParam(r) => r.buffer_len(),
            Body::SyncParam89(r) => r.buffer_len(),
            Body::TwopcRequest(r) => r.buffer_len(),
            Body::TwopcReply(r) => r.buffer_len(),
            Body::DelayProbe(r) => r.buffer_len(),
            Body::Dagtag(r) => r.buffer_len(),
            Body::PeerAck(r) => r.buffer_len(),
            Body::PeersInSync(r) => r.buffer_len(),
            Body::PeerDagtag(r) => r.buffer_len(),
            Body::FlushRequests(r) => r.buffer_len(),
            Body::FlushForward(r) => r.buffer_len(),
            Body::FlushAck(r) => r.buffer_len(),
            Body::EnableReplication(r) => r.buffer_len(),
            Body::Bitmap(b) => b.len(),
            Body::CompressedBitmap(r) => r.buffer_len(),
        }
    }

    /// Writes the payload at the start of `buf`; returns its length.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, Error> {
        fn head_tail(buf: &mut [u8], head: &[u8], tail: &[u8]) -> Result<usize, Error> {
            emit_parts(buf, &[head, tail])
        }
        match self {
            Body::Empty => Ok(0),
            Body::Data(r) => r.emit(buf),
            Body::Trim(r) => r.emit(buf),
            Body::Wsame(r, d) => {
                let mut h = [0u8; TrimFields::LEN];
                r.emit(&mut h)?;
                head_tail(buf, &h, d)
            }
            Body::BlockReq(r) => r.emit(buf),
            Body::BlockReqDigest(r, d) => {
                let mut h = [0u8; BlockReqFields::LEN];
                r.emit(&mut h)?;
                head_tail(buf, &h, d)
            }
            Body::RsReq(r) => r.emit(buf),
            Body::RsReqDigest(r, d) => {
                let mut h = [0u8; RsReqFields::LEN];
                r.emit(&mut h)?;
                head_tail(buf, &h, d)
            }
            Body::BlockDesc(r) => r.emit(buf),
            Body::BlockAck(r) => r.emit(buf),
            Body::OvResult(r) => r.emit(buf),
            Body::Barrier(r) => r.emit(buf),
            Body::BarrierAck(r) => r.emit(buf),
            Body::ConfirmStable(r) => r.emit(buf),
            Body::Features(r) => r.emit(buf),
            Body::AuthChallenge(c) => emit_parts(buf, &[&c[..]]),
            Body::AuthResponse(r) => {
                auth::parse_response(r)?;
                emit_parts(buf, &[r])
            }
            Body::Protocol(r) => r.emit(buf),
            Body::Uuids(r) => r.emit(buf),
            Body::Uuids110(r) => r.emit(buf),
            Body::CurrentUuid(r) => r.emit(buf),
            Body::SyncUuid(r) => r.emit(buf),
            Body::Sizes(r) => r.emit(buf),
            Body::State(r) => r.emit(buf),
            Body::ReqState(r) => r.emit(buf),
            Body::StateReply(r) => r.emit(buf),
            Body::SyncParam(r) => r.emit(buf),
            Body::SyncParam89(r) => r.emit(buf),
            Body::TwopcRequest(r) => r.emit(buf),
            Body::TwopcReply(r) => r.emit(buf),
            Body::DelayProbe(r) => r.emit(buf),
            Body::Dagtag(r) => r.emit(buf),
            Body::PeerAck(r) => r.emit(buf),
            Body::PeersInSync(r) => r.emit(buf),
            Body::PeerDagtag(r) => r.emit(buf),
            Body::FlushRequests(r) => r.emit(buf),
            Body::FlushForward(r) => r.emit(buf),
            Body::FlushAck(r) => r.emit(buf),
            Body::EnableReplication(r) => r.emit(buf),
            Body::Bitmap(b) => {
                if !b.len().is_multiple_of(8) {
                    return Err(Error::LengthMismatch {
                        what: "p_bitmap",
                        expected: b.len() / 8 * 8,
                        got: b.len(),
                    });
                }
                emit_parts(buf, &[b])
            }
            Body::CompressedBitmap(r) => r.emit(buf),
        }
    }
}

/// A whole packet: command, volume and body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame<'a> {
    /// The command.
    pub command: Command,
    /// The volume (h100 only; connection-wide commands use 0xFFFF).
    pub volume: u16,
    /// The payload.
    pub body: Body<'a>,
}

impl<'a> Frame<'a> {
    /// A frame whose volume follows the command's scope: `volume` for per-volume commands, 0xFFFF
    /// for connection-wide ones. `WrongBody` if the body is not the command's layout.
    pub fn new(command: Command, volume: u16, body: Body<'a>) -> Result<Self, Error> {
        if !body.fits(command) {
            return Err(Error::WrongBody { command });
        }
        let volume = match command.scope() {
            Scope::Volume => volume,
            Scope::Connection => VOLUME_CONNECTION,
        };
        Ok(Frame {
            command,
            volume,
            body,
        })
    }

    /// Parses one packet at the start of `buf`; returns it and the bytes it used. A short buffer
    /// gives `Truncated` with the total length needed once the header is known.
    pub fn parse(buf: &'a [u8], agreed: &Agreed) -> Result<(Self, usize), Error> {
        let header = HeaderRepr::parse(buf)?;
        agreed.check_header(header.kind)?;
        let start = header.kind.size();
        let end = start.saturating_add(header.length as usize);
        let payload = buf.get(start..end).ok_or(Error::Truncated {
            what: header.command.name(),
            need: end,
            have: buf.len(),
        })?;
        let body = Body::parse(header.command, payload, agreed)?;
        Ok((
            Frame {
                command: header.command,
                volume: header.volume,
                body,
            },
            end,
        ))
    }

    /// The header this frame goes out with at the agreed version: socket-role packets always
    /// h80, others as [`HeaderKind::for_send`] says.
    pub fn header(&self, agreed: &Agreed) -> HeaderRepr {
        let len = self.body.buffer_len();
        let kind = match self.command {
            Command::InitialData | Command::InitialMeta => HeaderKind::H80,
            _ => HeaderKind::for_send(agreed.pv, len),
        };
        HeaderRepr {
            kind,
            command: self.command,
            volume: self.volume,
            length: len as u32,
        }
    }

    /// Bytes [`Self::emit`] writes.
    pub fn buffer_len(&self, agreed: &Agreed) -> usize {
        self.header(agreed).buffer_len() + self.body.buffer_len()
    }

    /// Writes header and payload into `buf`; returns the length.
    pub fn emit(&self, agreed: &Agreed, buf: &mut [u8]) -> Result<usize, Error> {
        self.emit_with(self.header(agreed).kind, buf)
    }

    /// Writes the frame with an explicit header kind.
    pub fn emit_with(&self, kind: HeaderKind, buf: &mut [u8]) -> Result<usize, Error> {
        if !self.body.fits(self.command) {
            return Err(Error::WrongBody {
                command: self.command,
            });
        }
        let len = self.body.buffer_len();
        let length = u32::try_from(len).map_err(|_| Error::PayloadTooLong { kind, len })?;
        let header = HeaderRepr {
            kind,
            command: self.command,
            volume: self.volume,
            length,
        };
        let total = kind.size() + len;
        super::error::room(buf, total)?;
        header.emit(buf)?;
        let written = self
            .body
            .emit(buf.get_mut(kind.size()..).unwrap_or(&mut []))?;
        debug_assert_eq!(written, len);
        Ok(total)
    }
}

#[cfg(test)]
mod tests;
