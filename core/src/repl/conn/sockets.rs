//! The two-socket role logic (replication.md §4.1): which TCP connection becomes the data socket
//! and which the meta socket, the first packet each connecting side sends, crossed connects,
//! and the RESOLVE_CONFLICTS tie-breaker. Sockets are the caller's; this only tracks their ids.
//!
//! Both nodes connect out and accept at once. An outgoing socket takes the first missing role
//! (data first, as 8.4 does) and announces it with P_INITIAL_DATA / P_INITIAL_META; an accepted
//! socket gets the role its first packet announces. If that role is already held, the connects
//! crossed: the old socket is dropped, the new one kept, and a coin decides whether this node
//! waits for the peer's next connection instead of connecting again, which breaks the symmetry.

use crate::repl::wire::Command;

/// A socket, as the caller names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SocketId(pub u32);

/// The two roles of a DRBD socket pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum SocketRole {
    /// Bulk data, handshake, requests.
    Data,
    /// Acks, pings, replies.
    Meta,
}

impl SocketRole {
    /// The first packet that announces this role.
    pub const fn initial_packet(self) -> Command {
        match self {
            SocketRole::Data => Command::InitialData,
            SocketRole::Meta => Command::InitialMeta,
        }
    }
}

/// What happened to an accepted socket once its first packet arrived.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accepted {
    /// It now holds this role.
    Kept(SocketRole),
    /// It replaced our socket `dropped` in that role (crossed connects); close `dropped`.
    /// `wait` says whether to wait for another accept before connecting out again.
    Crossed {
        /// The role.
        role: SocketRole,
        /// The socket it replaced.
        dropped: SocketId,
        /// The coin said: wait for the peer.
        wait: bool,
    },
    /// Not a valid first packet; close it (and `wait` as for a crossed connect).
    Rejected {
        /// The coin said: wait for the peer.
        wait: bool,
    },
}

/// Up to two sockets with roles, and accepted ones still waiting for their first packet.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Sockets {
    data: Option<SocketId>,
    meta: Option<SocketId>,
    pending: [Option<(SocketId, u64)>; 2],
    resolve_conflicts: bool,
}

impl Sockets {
    /// The socket holding `role`.
    pub fn get(&self, role: SocketRole) -> Option<SocketId> {
        match role {
            SocketRole::Data => self.data,
            SocketRole::Meta => self.meta,
        }
    }

    fn slot(&mut self, role: SocketRole) -> &mut Option<SocketId> {
        match role {
            SocketRole::Data => &mut self.data,
            SocketRole::Meta => &mut self.meta,
        }
    }

    /// The role `id` holds.
    pub fn role_of(&self, id: SocketId) -> Option<SocketRole> {
        if self.data == Some(id) {
            Some(SocketRole::Data)
        } else if self.meta == Some(id) {
            Some(SocketRole::Meta)
        } else {
            None
        }
    }

    /// True if `id` was accepted and has not announced its role yet.
    pub fn is_pending(&self, id: SocketId) -> bool {
        self.pending.iter().flatten().any(|&(p, _)| p == id)
    }

    /// Some accepted socket has not announced its role yet.
    pub fn has_pending(&self) -> bool {
        self.pending.iter().any(Option::is_some)
    }

    /// Both roles are held.
    pub fn complete(&self) -> bool {
        self.data.is_some() && self.meta.is_some()
    }

    /// The role a new outgoing socket should take, if one is missing.
    pub fn missing(&self) -> Option<SocketRole> {
        if self.data.is_none() {
            Some(SocketRole::Data)
        } else if self.meta.is_none() {
            Some(SocketRole::Meta)
        } else {
            None
        }
    }

    /// RESOLVE_CONFLICTS: set on the node that accepted the meta socket, clear on the node that
    /// sent P_INITIAL_META; exactly one of the two holds it.
    pub fn resolve_conflicts(&self) -> bool {
        self.resolve_conflicts
    }

    /// An outgoing connection completed: the role it takes (its first packet announces it), or
    /// `None` if both are already held (close it).
    pub fn outgoing(&mut self, id: SocketId) -> Option<SocketRole> {
        let role = self.missing()?;
        *self.slot(role) = Some(id);
        if role == SocketRole::Meta {
            self.resolve_conflicts = false;
        }
        Some(role)
    }

    /// An incoming connection was accepted at `now`. `false` if two are already waiting (close
    /// it).
    pub fn accepted(&mut self, id: SocketId, now: u64) -> bool {
        match self.pending.iter_mut().find(|p| p.is_none()) {
            Some(slot) => {
                *slot = Some((id, now));
                true
            }
            None => false,
        }
    }

    /// The first packet of accepted socket `id` arrived (`None` = it was not a valid initial
    /// packet); `coin` is one random bit.
    pub fn first_packet(&mut self, id: SocketId, command: Option<Command>, coin: bool) -> Accepted {
        self.forget_pending(id);
        let role = match command {
            Some(Command::InitialData) => SocketRole::Data,
            Some(Command::InitialMeta) => SocketRole::Meta,
            _ => return Accepted::Rejected { wait: coin },
        };
        if role == SocketRole::Meta {
            self.resolve_conflicts = true;
        }
        match self.slot(role).replace(id) {
            Some(dropped) => Accepted::Crossed {
                role,
                dropped,
                wait: coin,
            },
            None => Accepted::Kept(role),
        }
    }

    fn forget_pending(&mut self, id: SocketId) {
        for p in &mut self.pending {
            if p.is_some_and(|(q, _)| q == id) {
                *p = None;
            }
        }
    }

    /// Socket `id` is gone; the role it held, if any.
    pub fn closed(&mut self, id: SocketId) -> Option<SocketRole> {
        self.forget_pending(id);
        let role = self.role_of(id)?;
        *self.slot(role) = None;
        Some(role)
    }

    /// An accepted socket that has waited `timeout` or longer for its first packet at `now`.
    pub fn stale_pending(&self, now: u64, timeout: u64) -> Option<SocketId> {
        self.pending
            .iter()
            .flatten()
            .find(|&&(_, at)| now >= at.saturating_add(timeout))
            .map(|&(id, _)| id)
    }

    /// When the oldest pending accept arrived.
    pub fn oldest_pending(&self) -> Option<u64> {
        self.pending.iter().flatten().map(|&(_, at)| at).min()
    }

    /// Every socket id known (roles and pending), for closing them all.
    pub fn all(&self) -> impl Iterator<Item = SocketId> + '_ {
        self.data
            .into_iter()
            .chain(self.meta)
            .chain(self.pending.iter().flatten().map(|&(id, _)| id))
    }

    /// Forgets every socket (after closing them) and RESOLVE_CONFLICTS.
    pub fn clear(&mut self) {
        *self = Sockets::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outgoing_then_accepted_forms_a_pair() {
        let mut s = Sockets::default();
        assert_eq!(s.outgoing(SocketId(1)), Some(SocketRole::Data));
        assert!(s.accepted(SocketId(2), 0));
        assert!(s.is_pending(SocketId(2)));
        assert_eq!(
            s.first_packet(SocketId(2), Some(Command::InitialMeta), false),
            Accepted::Kept(SocketRole::Meta)
        );
        assert!(s.complete() && s.resolve_conflicts());
        assert_eq!(s.role_of(SocketId(2)), Some(SocketRole::Meta));
        assert_eq!(s.outgoing(SocketId(3)), None);
        assert_eq!(s.closed(SocketId(1)), Some(SocketRole::Data));
        assert_eq!(s.missing(), Some(SocketRole::Data));
    }

    #[test]
    fn crossed_connects_keep_the_new_socket() {
        let mut s = Sockets::default();
        s.outgoing(SocketId(1));
        s.accepted(SocketId(2), 5);
        assert_eq!(
            s.first_packet(SocketId(2), Some(Command::InitialData), true),
            Accepted::Crossed {
                role: SocketRole::Data,
                dropped: SocketId(1),
                wait: true
            }
        );
        assert_eq!(s.get(SocketRole::Data), Some(SocketId(2)));
        // Sending P_INITIAL_META clears RESOLVE_CONFLICTS.
        s.accepted(SocketId(4), 6);
        s.first_packet(SocketId(4), Some(Command::InitialMeta), false);
        assert!(s.resolve_conflicts());
        s.closed(SocketId(4));
        assert_eq!(s.outgoing(SocketId(5)), Some(SocketRole::Meta));
        assert!(!s.resolve_conflicts());
        s.accepted(SocketId(6), 7);
        assert_eq!(
            s.first_packet(SocketId(6), Some(Command::Ping), false),
            Accepted::Rejected { wait: false }
        );
        assert!(s.accepted(SocketId(7), 8) && s.accepted(SocketId(8), 9));
        assert!(!s.accepted(SocketId(9), 9));
        assert_eq!(s.stale_pending(8, 1), None);
        assert_eq!(s.stale_pending(9, 1), Some(SocketId(7)));
        assert_eq!(s.all().count(), 4);
    }
}
