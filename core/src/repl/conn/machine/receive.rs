//! The receive side of [`Connection`]'s handshake: the peer's features, challenge and response,
//! P_PROTOCOL, each volume's introduction and the sync handshake it ends with (replication.md
//! §4.2–4.5, §6.3), and what is handed to the data path once Connected.

use super::{dtx, Connection};
use crate::repl::conn::event::{DisconnectReason, Event, Phase, ProtocolViolation};
use crate::repl::conn::handshake::{self, AuthFailure, Cram, Incompatible};
use crate::repl::conn::state::{ConnState, DiskState, ReplState, Role};
use crate::repl::conn::sync_handshake::{self, Policies, Side, SyncOutcome};
use crate::repl::conn::uuid_compare::Fixup;
use crate::repl::conn::volume::{tx, Step};
use crate::repl::conn::Entropy;
use crate::repl::wire::features::ConnectionFeaturesFields;
use crate::repl::wire::state::State;
use crate::repl::wire::uuid::flag;
use crate::repl::wire::{self, Agreed, Body, Command, Frame};

impl<R: Entropy, const V: usize> Connection<R, V> {
    pub(super) fn on_meta<'a>(
        &mut self,
        frame: Frame<'a>,
    ) -> Result<Option<Frame<'a>>, DisconnectReason> {
        match frame.command {
            Command::Ping => {
                self.ping_acks = self.ping_acks.saturating_add(1);
                Ok(None)
            }
            Command::PingAck => {
                self.ping_sent_at = None;
                Ok(None)
            }
            Command::DelayProbe => Ok(None),
            _ if self.phase == Phase::Connected => Ok(Some(frame)),
            c => Err(self.unexpected(c)),
        }
    }

    pub(super) fn on_data<'a>(
        &mut self,
        now: u64,
        frame: Frame<'a>,
    ) -> Result<Option<Frame<'a>>, DisconnectReason> {
        let command = frame.command;
        match (self.phase, frame.body) {
            (Phase::Sockets | Phase::Settle, Body::Features(f))
                if self.early_features.is_none() =>
            {
                self.early_features = Some(f);
                Ok(None)
            }
            (Phase::Features, Body::Features(f)) => self.on_features(f).map(|_| None),
            (Phase::AuthChallenge, Body::AuthChallenge(c)) => {
                let pv = self.agreed.pv.unwrap_or(0);
                let (Some(cram), Some(auth)) = (self.cram.as_mut(), self.config.auth.as_ref())
                else {
                    return Err(self.unexpected(command));
                };
                cram.respond(&auth.secret, c, pv, self.config.node_id)
                    .map_err(DisconnectReason::AuthFailed)?;
                self.data_tx |= dtx::RESPONSE;
                self.phase = Phase::AuthResponse;
                Ok(None)
            }
            (Phase::AuthResponse, Body::AuthResponse(r)) => {
                let pv = self.agreed.pv.unwrap_or(0);
                let (Some(cram), Some(auth)) = (self.cram.as_ref(), self.config.auth.as_ref())
                else {
                    return Err(self.unexpected(command));
                };
                cram.verify(&auth.secret, r, pv, self.config.peer_node_id)
                    .map_err(DisconnectReason::AuthFailed)?;
                self.start_params();
                Ok(None)
            }
            (Phase::AuthChallenge | Phase::AuthResponse, _) => {
                Err(DisconnectReason::AuthFailed(AuthFailure::NotOffered))
            }
            (Phase::Params, Body::Protocol(p))
                if command == Command::Protocol && self.peer_protocol.is_none() =>
            {
                let peer = handshake::check_protocol(&self.config, &p)
                    .map_err(DisconnectReason::Incompatible)?;
                self.peer_protocol = Some(peer);
                Ok(None)
            }
            (Phase::Params, body) if self.peer_protocol.is_some() => self
                .on_intro(now, frame.volume, command, body)
                .map(|_| None),
            (Phase::Connected, Body::State(s)) => {
                self.on_peer_state(frame.volume, s.state)?;
                Ok(None)
            }
            (Phase::Connected, Body::Protocol(_)) if command == Command::ProtocolUpdate => Ok(None),
            (Phase::Connected, _) if self.data_path(command) => Ok(Some(frame)),
            _ => Err(self.unexpected(command)),
        }
    }

    /// Packets the connection hands to the shell's data path once Connected (everything that
    /// is not handshake or DRBD-9-only at the versions this flow agrees).
    fn data_path(&self, command: Command) -> bool {
        use Command as C;
        !matches!(
            command,
            C::ConnectionFeatures
                | C::AuthChallenge
                | C::AuthResponse
                | C::Protocol
                | C::InitialData
                | C::InitialMeta
                | C::TwopcPrepare
                | C::TwopcPrepRsz
                | C::TwopcCommit
                | C::TwopcAbort
                | C::Uuids110
                | C::CurrentUuid
                | C::Disconnect
        )
    }

    pub(super) fn on_features(
        &mut self,
        f: ConnectionFeaturesFields,
    ) -> Result<(), DisconnectReason> {
        let (pv, features) = handshake::negotiate(&self.config, &f)
            .map_err(|v| DisconnectReason::Incompatible(Incompatible::Version(v)))?;
        if pv < 100 && self.volumes.len() > 1 {
            return Err(DisconnectReason::Incompatible(
                Incompatible::VolumesNeedPv100,
            ));
        }
        self.agreed = Agreed::new(pv, features);
        let resolve_conflicts = self.sockets.resolve_conflicts();
        self.event(Event::FeaturesAgreed {
            pv,
            features,
            resolve_conflicts,
        });
        if let Some(auth) = &self.config.auth {
            let alg = auth.alg;
            let mut challenge = [0u8; wire::auth::CHALLENGE_LEN];
            self.rng.fill(&mut challenge);
            self.cram = Some(Cram::new(alg, challenge));
            self.data_tx |= dtx::CHALLENGE;
            self.phase = Phase::AuthChallenge;
        } else {
            self.start_params();
        }
        Ok(())
    }

    fn start_params(&mut self) {
        self.phase = Phase::Params;
        self.data_tx |= dtx::PROTOCOL;
        self.ping_sent_at = None;
        for v in self.volumes.iter_mut() {
            v.tx |= tx::INTRO;
        }
    }

    fn on_intro(
        &mut self,
        now: u64,
        volume: u16,
        command: Command,
        body: Body<'_>,
    ) -> Result<(), DisconnectReason> {
        let phase = self.phase;
        let unexpected =
            DisconnectReason::ProtocolError(ProtocolViolation::Unexpected { command, phase });
        let Some(v) = self.volume_mut(volume) else {
            return Err(DisconnectReason::ProtocolError(
                ProtocolViolation::UnknownVolume { volume },
            ));
        };
        match (v.step, body) {
            (Step::SyncParam, Body::SyncParam(p)) => {
                if p.verify_alg.is_some_and(|a| !a.is_empty()) {
                    return Err(DisconnectReason::Incompatible(Incompatible::SyncAlgorithms));
                }
                v.step = Step::Sizes;
            }
            (Step::SyncParam, Body::SyncParam89(p)) => {
                if !p.verify_alg.is_empty() || !p.csums_alg.is_empty() {
                    return Err(DisconnectReason::Incompatible(Incompatible::SyncAlgorithms));
                }
                v.step = Step::Sizes;
            }
            (Step::Sizes, Body::Sizes(s)) => {
                v.peer_sizes = Some(s.fields);
                v.step = Step::Uuids;
            }
            (Step::Uuids, Body::Uuids(u)) => {
                v.peer_uuids = Some(u.into());
                v.step = Step::State;
            }
            (Step::State, Body::State(s)) => {
                self.on_peer_state(volume, s.state)?;
                return self.decide(now, volume);
            }
            // The peer decided this volume already and announces its new state while we still
            // wait for another volume's parameters.
            (Step::Done, Body::State(s)) => return self.on_peer_state(volume, s.state),
            _ => return Err(unexpected),
        }
        Ok(())
    }

    fn on_peer_state(&mut self, volume: u16, word: u32) -> Result<(), DisconnectReason> {
        let pv = self.agreed.pv.unwrap_or(0);
        let s = State(word);
        let disk = if pv < 110 {
            DiskState::from_number_84(s.disk())
        } else {
            DiskState::from_number(s.disk())
        };
        let bad = DisconnectReason::ProtocolError(ProtocolViolation::BadState { word });
        let (Some(role), Some(disk)) = (Role::from_number(s.role()), disk) else {
            return Err(bad);
        };
        let v = self.volume_mut(volume).ok_or(bad)?;
        v.peer_word = word;
        let changed = v.peer_role != role || v.peer_disk != disk;
        v.peer_role = role;
        v.peer_disk = disk;
        if changed {
            self.event(Event::PeerStateChanged { volume, role, disk });
        }
        Ok(())
    }

    /// The sync handshake for `volume`, once the peer's P_STATE arrived (§4.5, §6.3).
    fn decide(&mut self, now: u64, volume: u16) -> Result<(), DisconnectReason> {
        let pv = self.agreed.pv.unwrap_or(0);
        let resolve_conflicts = self.sockets.resolve_conflicts();
        let policies = Policies {
            after_sb: [
                self.config.after_sb_0p,
                self.config.after_sb_1p,
                self.config.after_sb_2p,
            ],
            always_asbp: self.config.always_asbp,
            rr_conflict: self.config.rr_conflict,
        };
        let own_discard = self.config.discard_my_data;
        let role = self.role;
        let Some(v) = self.volume_mut(volume) else {
            return Ok(());
        };
        let Some(mut peer_uuids) = v.peer_uuids else {
            return Ok(());
        };
        let outcome = if v.cfg.disk == DiskState::Diskless || v.peer_disk == DiskState::Diskless {
            // Nothing to compare without both disks: replicate (or serve reads) as is.
            None
        } else {
            let own = Side {
                role,
                disk: v.cfg.disk,
                dirty_bits: v.cfg.dirty_bits,
                discard_my_data: own_discard,
            };
            let peer = Side {
                role: v.peer_role,
                disk: v.peer_disk,
                dirty_bits: peer_uuids.dirty_bits,
                discard_my_data: peer_uuids.flags & flag::DISCARD_MY_DATA != 0,
            };
            let d = sync_handshake::sync_handshake(
                &mut v.cfg.generation,
                &mut peer_uuids,
                &own,
                &peer,
                &policies,
                pv,
                resolve_conflicts,
            );
            v.peer_uuids = Some(peer_uuids);
            Some(d)
        };
        let result = outcome.map_or(Ok(SyncOutcome::NoSync), |d| d.result);
        if let Some(decision) = outcome {
            if decision.compared.fixup == Some(Fixup::Own) {
                self.event(Event::UuidsChanged { volume });
            }
            self.event(Event::SyncHandshake { volume, decision });
        }
        let repl = match result {
            Err(refusal) => return Err(DisconnectReason::Handshake { volume, refusal }),
            Ok(SyncOutcome::NoSync) => ReplState::Established,
            Ok(SyncOutcome::Source { .. }) => ReplState::WFBitMapS,
            Ok(SyncOutcome::Target { .. }) => ReplState::WFBitMapT,
        };
        if let Some(v) = self.volume_mut(volume) {
            v.step = Step::Done;
            v.repl = repl;
            v.tx |= tx::STATE;
        }
        self.event(Event::ReplStateChanged { volume, repl });
        if self.volumes.iter().all(|v| v.step == Step::Done) {
            self.connected(now)?;
        }
        Ok(())
    }

    fn connected(&mut self, _now: u64) -> Result<(), DisconnectReason> {
        if self.peer_protocol.is_some_and(|p| p.dry_run) {
            return Err(DisconnectReason::DryRun);
        }
        // Upstream clears discard-my-data once a handshake has used it.
        self.config.discard_my_data = false;
        self.phase = Phase::Connected;
        self.set_conn(ConnState::Connected);
        self.event(Event::Connected);
        Ok(())
    }
}
