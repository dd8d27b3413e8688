//! The statistics snapshot of the reconnect FSM (ovs-sessions.md §1.7).

use super::State;

/// What `get_stats(now)` reports. Durations that C keeps in `unsigned int` wrap at 2³² exactly
/// as C's do (§1.9), so a transcript built from these matches the C one in every corner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// Time the FSM was created.
    pub creation_time: i64,
    /// Last call to `activity` (creation time until then).
    pub last_activity: i64,
    /// Last successful connection; `None` where C prints `LLONG_MAX`.
    pub last_connected: Option<i64>,
    /// Last disconnection from a live connection; `None` where C prints `LLONG_MAX`.
    pub last_disconnected: Option<i64>,
    /// Current backoff, ms (C `int`: a negative raw `set_backoff` max can make it negative).
    pub backoff: i32,
    /// Number of connections plus number of disconnections.
    pub seqno: u32,
    /// Whether the state is ACTIVE or IDLE.
    pub is_connected: bool,
    /// `now − last_connected` as C's `unsigned int`; `None` where C reports `UINT_MAX` (never).
    pub msec_since_connect: Option<u32>,
    /// `now − last_disconnected` as C's `unsigned int`; `None` where C reports `UINT_MAX`.
    pub msec_since_disconnect: Option<u32>,
    /// Sum of all connection durations including the current one, wrapping as C's `unsigned`.
    pub total_connected_duration: u32,
    /// Every exit from CONNECTING (§1.3).
    pub n_attempted_connections: u32,
    /// Every CONNECTING → ACTIVE (§1.3).
    pub n_successful_connections: u32,
    /// The current state; [`State::name`] is the printed form.
    pub state: State,
    /// `now − state_entered`, as C's `unsigned int`.
    pub state_elapsed: u32,
}
