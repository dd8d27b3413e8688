//! One volume of a connection: what the shell configures ([`VolumeConfig`]), what the machine
//! learns from the peer, and the per-volume introduction packets (replication.md §4.5: sync
//! parameters → sizes → UUIDs → state, in that order in both directions).

use super::generation::Generation;
use super::state::{wire_conn, ConnState, DiskState, ReplState, Role};
use super::uuid_compare::PeerUuids;
use crate::repl::wire::features::ff;
use crate::repl::wire::sizes::{QueueLimitsFields, SizesFields, SizesRepr};
use crate::repl::wire::state::{State, StateFields};
use crate::repl::wire::sync_param::{Controller, SyncParam89Repr, SyncParamRepr};
use crate::repl::wire::uuid::{flag, UuidsFields};
use crate::repl::wire::{Body, Command};

/// resync-rate default (KiB/s); DRBD 9.2+ ignores the value, 8.4 uses it.
pub const RESYNC_RATE: u32 = 250;
/// The dynamic resync controller defaults (c-plan-ahead, c-delay-target, c-fill-target,
/// c-max-rate) from drbd_limits.h.
pub const CONTROLLER: Controller = Controller {
    c_plan_ahead: 20,
    c_delay_target: 10,
    c_fill_target: 100,
    c_max_rate: 102_400,
};

/// A volume as the shell attaches it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VolumeConfig {
    /// Volume number (h100's volume field).
    pub number: u16,
    /// The meta data's generation UUIDs.
    pub generation: Generation,
    /// The local disk state.
    pub disk: DiskState,
    /// Set bits in the bitmap for the peer.
    pub dirty_bits: u64,
    /// Capacities and max bio size for P_SIZES.
    pub sizes: SizesFields,
    /// Queue limits for P_SIZES (sent when FF_WSAME is agreed).
    pub qlim: QueueLimitsFields,
}

impl VolumeConfig {
    /// A volume of `sectors` sectors with the given UUIDs and disk state.
    pub fn new(number: u16, generation: Generation, disk: DiskState, sectors: u64) -> Self {
        VolumeConfig {
            number,
            generation,
            disk,
            dirty_bits: 0,
            sizes: SizesFields {
                d_size: sectors,
                u_size: 0,
                c_size: sectors,
                max_bio_size: 1 << 20,
                queue_order_type: 0,
                dds_flags: 0,
            },
            qlim: QueueLimitsFields {
                physical_block_size: 512,
                logical_block_size: 512,
                ..QueueLimitsFields::default()
            },
        }
    }
}

/// The next introduction packet expected from the peer for a volume.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Step {
    SyncParam,
    Sizes,
    Uuids,
    State,
    Done,
}

/// Pending outgoing packets of a volume (bits).
pub(crate) mod tx {
    pub const SYNC_PARAM: u8 = 1;
    pub const SIZES: u8 = 2;
    pub const UUIDS: u8 = 4;
    pub const STATE: u8 = 8;
    pub const INTRO: u8 = SYNC_PARAM | SIZES | UUIDS | STATE;
}

/// A volume's state within the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Volume {
    pub(crate) cfg: VolumeConfig,
    pub(crate) repl: ReplState,
    pub(crate) peer_role: Role,
    pub(crate) peer_disk: DiskState,
    pub(crate) peer_uuids: Option<PeerUuids>,
    pub(crate) peer_sizes: Option<SizesFields>,
    pub(crate) step: Step,
    pub(crate) tx: u8,
    /// The peer's last P_STATE word as received (its pause flags, its conn field).
    pub(crate) peer_word: u32,
    /// Sync paused by the user here (P_STATE user_isp); survives reconnects.
    pub(crate) user_isp: bool,
}

impl Volume {
    pub(crate) fn new(cfg: VolumeConfig) -> Volume {
        Volume {
            cfg,
            repl: ReplState::Off,
            peer_role: Role::Unknown,
            peer_disk: DiskState::DUnknown,
            peer_uuids: None,
            peer_sizes: None,
            step: Step::SyncParam,
            tx: 0,
            peer_word: 0,
            user_isp: false,
        }
    }

    /// Forgets everything learnt from the peer.
    pub(crate) fn reset(&mut self) {
        let user_isp = self.user_isp;
        *self = Volume::new(self.cfg);
        self.user_isp = user_isp;
    }

    /// The volume number.
    pub fn number(&self) -> u16 {
        self.cfg.number
    }
    /// The generation UUIDs (persist them after [`super::Event::UuidsChanged`]).
    pub fn generation(&self) -> &Generation {
        &self.cfg.generation
    }
    /// The local disk state.
    pub fn disk(&self) -> DiskState {
        self.cfg.disk
    }
    /// The replication state.
    pub fn repl(&self) -> ReplState {
        self.repl
    }
    /// The peer's role as it last announced it.
    pub fn peer_role(&self) -> Role {
        self.peer_role
    }
    /// The peer's disk state as it last announced it.
    pub fn peer_disk(&self) -> DiskState {
        self.peer_disk
    }
    /// The peer's UUIDs from its P_UUIDS (after any fix-up the handshake made).
    pub fn peer_uuids(&self) -> Option<&PeerUuids> {
        self.peer_uuids.as_ref()
    }
    /// The peer's P_SIZES.
    pub fn peer_sizes(&self) -> Option<&SizesFields> {
        self.peer_sizes.as_ref()
    }
    /// The peer's last P_STATE word as received (0 before one arrived): its pause flags
    /// (`aftr_isp`, `user_isp`) and its `conn` field; disk numbers as the agreed version sends them.
    pub fn peer_state(&self) -> State {
        State(self.peer_word)
    }
    /// Whether this node paused the sync (`pause-sync`, P_STATE `user_isp`).
    pub fn user_isp(&self) -> bool {
        self.user_isp
    }

    /// The next pending packet, as (tx bit, command, body).
    pub(crate) fn next_tx(
        &self,
        pv: u32,
        features: u32,
        role: Role,
        conn: ConnState,
        discard_my_data: bool,
    ) -> Option<(u8, Command, Body<'static>)> {
        let bit = [tx::SYNC_PARAM, tx::SIZES, tx::UUIDS, tx::STATE]
            .into_iter()
            .find(|b| self.tx & b != 0)?;
        let (command, body) = match bit {
            tx::SYNC_PARAM => sync_param(pv),
            tx::SIZES => (Command::Sizes, Body::Sizes(self.sizes(pv, features))),
            tx::UUIDS => (Command::Uuids, Body::Uuids(self.uuids(discard_my_data))),
            _ => (
                Command::State,
                Body::State(StateFields {
                    state: self.state_word(pv, role, conn).0,
                }),
            ),
        };
        Some((bit, command, body))
    }

    fn sizes(&self, pv: u32, features: u32) -> SizesRepr {
        // Upstream caps the advertised bio size by what the agreed version can carry (§3.8).
        let cap = if pv <= 94 {
            1 << 15
        } else if pv < 100 {
            1 << 17
        } else {
            1 << 20
        };
        let mut fields = self.cfg.sizes;
        fields.max_bio_size = fields.max_bio_size.min(cap);
        SizesRepr {
            fields,
            qlim: (features & ff::WSAME != 0).then_some(self.cfg.qlim),
        }
    }

    fn uuids(&self, discard_my_data: bool) -> UuidsFields {
        let g = &self.cfg.generation;
        let mut flags = 0;
        if discard_my_data {
            flags |= flag::DISCARD_MY_DATA;
        }
        if g.crashed_primary {
            flags |= flag::CRASHED_PRIMARY;
        }
        if self.cfg.disk == DiskState::Inconsistent {
            flags |= flag::INCONSISTENT;
        }
        UuidsFields {
            current: g.current,
            bitmap: g.bitmap,
            history0: g.history[0],
            history1: g.history[1],
            dirty_bits: self.cfg.dirty_bits,
            uuid_flags: flags,
        }
    }

    /// Our P_STATE word: during the handshake `conn` is 9 (8.4's WFReportParams, DRBD 9's
    /// Connected/Off), then the replication state; disk numbers follow 8.4 below pv 110.
    pub(crate) fn state_word(&self, pv: u32, role: Role, conn: ConnState) -> State {
        let wire_conn = wire_conn(conn, self.repl);
        let (disk, pdsk) = if pv < 110 {
            (self.cfg.disk.number_84(), self.peer_disk.number_84())
        } else {
            (self.cfg.disk.number(), self.peer_disk.number())
        };
        State(0)
            .with_role(role.number())
            .with_peer(self.peer_role.number())
            .with_conn(wire_conn)
            .with_disk(disk)
            .with_pdsk(pdsk)
            .with_user_isp(u32::from(self.user_isp))
    }
}

/// P_SYNC_PARAM in the form the agreed version uses (replication.md §3.10); we configure no
/// verify or csums algorithm.
fn sync_param(pv: u32) -> (Command, Body<'static>) {
    match pv {
        0..=87 => (
            Command::SyncParam,
            Body::SyncParam(SyncParamRepr {
                resync_rate: RESYNC_RATE,
                verify_alg: None,
            }),
        ),
        88 => (
            Command::SyncParam,
            Body::SyncParam(SyncParamRepr {
                resync_rate: RESYNC_RATE,
                verify_alg: Some(b""),
            }),
        ),
        _ => (
            Command::SyncParam89,
            Body::SyncParam89(SyncParam89Repr {
                resync_rate: RESYNC_RATE,
                verify_alg: b"",
                csums_alg: b"",
                controller: (pv >= 95).then_some(CONTROLLER),
            }),
        ),
    }
}
