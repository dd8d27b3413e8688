//! The DRBD connection machine (replication.md §4, §6.1, §6.3), sans-IO and without allocation:
//! from two TCP sockets to a Connected peer with a decided sync direction per volume.
//!
//! - [`machine`]: [`Connection`], the `handle_*` / `poll_*` machine the shell drives.
//! - [`sockets`]: the two-socket role logic (P_INITIAL_DATA / P_INITIAL_META, crossed connects,
//!   RESOLVE_CONFLICTS).
//! - [`handshake`]: feature negotiation, CRAM-HMAC and the P_PROTOCOL compatibility checks.
//! - [`uuid_compare`]: the §6.3 UUID compare table.
//! - [`sync_handshake`]: what is done with its verdict (split-brain policies, discard-my-data,
//!   disk-state override, refusals).
//! - [`generation`]: a volume's current / bitmap / history UUIDs and the rules that move them.
//! - [`volume`]: per-volume configuration, peer view and the introduction packets.
//! - [`state`]: connection, replication, disk and role states with DRBD's names and numbers.
//! - [`config`]: per-connection settings (drbd.conf's `net` section).
//! - [`event`]: events, socket actions and disconnect reasons.
//!
//! # Which protocol flow
//!
//! The machine runs the **8.4 flow at protocol version 86–101** (it offers up to 101, so two
//! Keelson agents agree on 101): P_CONNECTION_FEATURES, optional CRAM-HMAC, P_PROTOCOL, then
//! per volume P_SYNC_PARAM89 → P_SIZES → P_UUIDS → P_STATE, and each side decides the sync
//! direction from the peer's P_STATE (§4.5). Reasons: two nodes need no cluster-wide two-phase
//! commit; 101 is the highest version both an 8.4 kernel and DRBD 9.3 (which keeps 86–101 for
//! rolling upgrades) accept, so the same flow also talks to stock DRBD; and pv 100–101 already
//! has h100 headers with volume numbers, so several volumes share one connection. What it gives
//! up: DRBD 9's P_UUIDS110 with 32 history UUIDs and per-node bitmap slots (8.4 keeps two
//! history UUIDs) and the 2PC state changes, which only matter beyond two nodes.
//!
//! # Driving it
//!
//! The shell listens on its address and keeps doing what [`Connection::poll_action`] says
//! ([`Action::Connect`]: open a TCP connection to the peer; [`Action::Close`]), reports socket
//! events (`handle_connected`, `handle_connect_failed`, `handle_accepted`, `handle_closed`),
//! feeds received bytes with [`Connection::handle_recv`] (one packet per call; data-path
//! packets come back in [`Received::frame`] once Connected), drains
//! [`Connection::poll_transmit`] for each socket after every input, and calls
//! [`Connection::handle_timeout`] at [`Connection::poll_timeout`]. Time is milliseconds on any
//! monotonic clock.

pub mod config;
pub mod event;
pub mod generation;
pub mod handshake;
pub mod machine;
pub mod sockets;
pub mod state;
pub mod sync_handshake;
pub mod uuid_compare;
pub mod volume;

pub use config::{AfterSb, Auth, Config, ConfigError, RrConflict, WireProtocol};
pub use event::{Action, DisconnectReason, Event, Phase, ProtocolViolation};
pub use generation::Generation;
pub use machine::{CommandError, Connection, Received};
pub use sockets::{SocketId, SocketRole};
pub use state::{ConnState, DiskState, ReplState, Role};
pub use volume::{Volume, VolumeConfig};

/// Random bytes from the caller: challenges, the crossed-connect coin, new UUIDs. Production
/// shells use the OS generator; CRAM-HMAC is only as strong as the challenges.
pub trait Entropy {
    /// Fills `out` with random bytes.
    fn fill(&mut self, out: &mut [u8]);
}

impl<E: Entropy + ?Sized> Entropy for &mut E {
    fn fill(&mut self, out: &mut [u8]) {
        (**self).fill(out)
    }
}

/// A seeded SplitMix64 generator: deterministic, for tests, simulations and fuzzing. Not for
/// real challenges.
#[derive(Clone, Debug)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator from `seed`.
    pub const fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

impl Entropy for SplitMix64 {
    fn fill(&mut self, out: &mut [u8]) {
        for chunk in out.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(v.get(..chunk.len()).unwrap_or(&[]));
        }
    }
}
