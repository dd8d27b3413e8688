//! The Open vSwitch reconnect finite-state machine (lib/reconnect.c), sans-IO.
//!
//! The caller passes the current time, `now` in milliseconds from a monotonic clock, into every
//! call that needs it. The machine answers with what to do next ([`Reconnect::run`] →
//! [`Action`]) and when to ask again ([`Reconnect::poll_timeout`] / [`Reconnect::timeout`]);
//! the caller reports what happened (`connecting`, `connected`, `disconnected`, `activity`...).
//! Semantics follow the C implementation, quirks included (ovs-sessions.md §1), not the Python
//! port where the two differ (§1.8).
//!
//! - [`fsm`]: the machine itself, its states and actions.
//! - [`stats`]: the statistics snapshot `get_stats` returns (§1.7).
//!
//! Logging-only inputs of the C API (the name, `quiet`, and the `err` reason's message) have no
//! effect on behaviour (§1.4), so the `err` arguments are accepted and ignored; a shell logs.

pub mod fsm;
pub mod stats;
#[cfg(test)]
mod tests;

pub use fsm::{Action, Reconnect, State};
pub use stats::Stats;

/// Default lower bound of the backoff, ms (`RECONNECT_DEFAULT_MIN_BACKOFF`, §1.2).
pub const DEFAULT_MIN_BACKOFF: i32 = 1000;
/// Default upper bound of the backoff, ms (`RECONNECT_DEFAULT_MAX_BACKOFF`, §1.2).
pub const DEFAULT_MAX_BACKOFF: i32 = 8000;
/// Default keepalive probe interval, ms (`RECONNECT_DEFAULT_PROBE_INTERVAL`, §1.2).
pub const DEFAULT_PROBE_INTERVAL: i32 = 5000;
/// `max_tries` value meaning "unlimited" (C's `UINT_MAX`, §1.2): never decremented.
pub const UNLIMITED_TRIES: u32 = u32::MAX;
/// Receive-attempt time that disables the receive guard (C's `LLONG_MAX`, §1.6).
pub const RECEIVE_GUARD_OFF: i64 = i64::MAX;
/// The `err` value meaning "the peer closed the connection" (§1.4).
pub const EOF: i32 = -1;
