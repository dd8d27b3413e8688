//! P_STATE and state-change requests (replication.md §3.9): one packed u32 whose bit layout is
//! that of DRBD's little-endian C bitfield, plus the mask/val requests and their replies.

layout! {
    /// `p_state`.
    view StatePacket, repr StateFields, wire "p_state", len 4;
    /// The packed [`State`].
    state, set_state: u32 = 0;
}

layout! {
    /// `p_req_state` (P_STATE_CHG_REQ, P_CONN_ST_CHG_REQ).
    view ReqState, repr ReqStateFields, wire "p_req_state", len 8;
    /// Which [`State`] bits to change.
    mask, set_mask: u32 = 0;
    /// Their new values.
    val, set_val: u32 = 4;
}

layout! {
    /// `p_req_state_reply` (P_STATE_CHG_REPLY, P_CONN_ST_CHG_REPLY).
    view StateReply, repr StateReplyFields, wire "p_req_state_reply", len 4;
    /// `SS_*` code: positive success, negative failure.
    retcode, set_retcode: i32 = 0;
}

/// A packed DRBD state word: role 0–1, peer 2–3, conn 4–8, disk 9–12, pdsk 13–16, then the
/// suspend and sync-pause flags and quorum at bits 17–23.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct State(pub u32);

macro_rules! state_bits {
    ($( $(#[$m:meta])* $get:ident, $with:ident: $shift:expr, $width:expr; )*) => {
        impl State {
            $(
                $(#[$m])*
                pub const fn $get(self) -> u32 {
                    (self.0 >> $shift) & ((1 << $width) - 1)
                }
                #[doc = concat!(
                    "This state with `", stringify!($get), "` replaced (extra high bits dropped)."
                )]
                pub const fn $with(self, v: u32) -> State {
                    let mask = ((1u32 << $width) - 1) << $shift;
                    State((self.0 & !mask) | ((v << $shift) & mask))
                }
            )*
        }
    };
}

state_bits! {
    /// The sender's role: 0 unknown, 1 primary, 2 secondary.
    role, with_role: 0, 2;
    /// The sender's view of our role.
    peer, with_peer: 2, 2;
    /// Connection or replication state.
    conn, with_conn: 4, 5;
    /// The sender's disk state.
    disk, with_disk: 9, 4;
    /// The sender's view of our disk state.
    pdsk, with_pdsk: 13, 4;
    /// I/O suspended by the user.
    susp, with_susp: 17, 1;
    /// Sync paused by a resync-after dependency.
    aftr_isp, with_aftr_isp: 18, 1;
    /// Sync paused by the peer.
    peer_isp, with_peer_isp: 19, 1;
    /// Sync paused by the user.
    user_isp, with_user_isp: 20, 1;
    /// Suspended: no data accessible.
    susp_nod, with_susp_nod: 21, 1;
    /// Suspended: fencing running.
    susp_fen, with_susp_fen: 22, 1;
    /// Quorum (DRBD 9).
    quorum, with_quorum: 23, 1;
}

impl State {
    /// The word as sent to a pv < 110 peer: 8.4 has no D_DETACHING, so disk and pdsk values above
    /// 2 are one lower (replication.md §3.9).
    pub const fn to_84(self) -> State {
        let disk = self.disk();
        let pdsk = self.pdsk();
        self.with_disk(if disk > 2 { disk - 1 } else { disk })
            .with_pdsk(if pdsk > 2 { pdsk - 1 } else { pdsk })
    }

    /// A word received from a pv < 110 peer in DRBD 9 numbering: disk and pdsk values of 2 and
    /// above are one higher.
    pub const fn from_84(self) -> State {
        let disk = self.disk();
        let pdsk = self.pdsk();
        self.with_disk(if disk >= 2 { disk + 1 } else { disk })
            .with_pdsk(if pdsk >= 2 { pdsk + 1 } else { pdsk })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_word_matches_wireshark_example() {
        // replication.md §8.4: 0x0080f282 = Secondary, peer Unknown, C_CONNECTING (8),
        // D_UP_TO_DATE (9), pdsk D_UNKNOWN (7), quorum.
        let s = State(0)
            .with_role(2)
            .with_conn(8)
            .with_disk(9)
            .with_pdsk(7)
            .with_quorum(1);
        assert_eq!(s, State(0x0080_f282));
        assert_eq!(
            (s.role(), s.peer(), s.conn(), s.disk(), s.pdsk(), s.quorum()),
            (2, 0, 8, 9, 7, 1)
        );
        let mut out = [0u8; 4];
        StateFields { state: s.0 }.emit(&mut out).unwrap();
        assert_eq!(out, [0x00, 0x80, 0xf2, 0x82]);
        assert_eq!(State(u32::MAX).with_conn(0).conn(), 0);
        assert_eq!(State(0).with_role(7).role(), 3);
        // DRBD 9 UpToDate (9) is 8.4's 8; Diskless (0) and Attaching (1) keep their numbers.
        let up = State(0).with_disk(9).with_pdsk(1);
        assert_eq!((up.to_84().disk(), up.to_84().pdsk()), (8, 1));
        assert_eq!(up.to_84().from_84(), up);
        let r = StateReplyFields::parse(&(-10i32).to_be_bytes()).unwrap();
        assert_eq!(r.retcode, -10);
    }
}
