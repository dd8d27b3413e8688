//! The send side of [`Connection`]: which packet goes out next on each socket, emitted into the
//! caller's buffer (handshake packets in order on the data socket, then the volume packets;
//! pings and ping acks on the meta socket).

use super::{dtx, Connection};
use crate::repl::conn::event::Phase;
use crate::repl::conn::sockets::{SocketId, SocketRole};
use crate::repl::conn::state::ConnState;
use crate::repl::conn::{handshake, Entropy};
use crate::repl::wire::{self, Agreed, Body, Command, Frame};

impl<R: Entropy, const V: usize> Connection<R, V> {
    /// Writes the next packet due on socket `id` into `buf`; `Ok(None)` when nothing is due.
    /// A short buffer is `NoRoom` naming the size needed, and the packet stays queued.
    pub fn poll_transmit(
        &mut self,
        id: SocketId,
        buf: &mut [u8],
    ) -> Result<Option<usize>, wire::Error> {
        if let Some(i) = self.initial.iter().position(|s| *s == Some(id)) {
            let Some(role) = self.sockets.role_of(id) else {
                self.forget_initial(id);
                return Ok(None);
            };
            let frame = Frame::new(role.initial_packet(), 0, Body::Empty)?;
            let n = frame.emit(&Agreed::default(), buf)?;
            if let Some(s) = self.initial.get_mut(i) {
                *s = None;
            }
            return Ok(Some(n));
        }
        match self.sockets.role_of(id) {
            Some(SocketRole::Data) if self.phase >= Phase::Features => self.transmit_data(buf),
            Some(SocketRole::Meta) if self.phase >= Phase::Features => self.transmit_meta(buf),
            _ => Ok(None),
        }
    }

    fn transmit_meta(&mut self, buf: &mut [u8]) -> Result<Option<usize>, wire::Error> {
        let command = if self.ping_acks > 0 {
            Command::PingAck
        } else if self.ping_due {
            Command::Ping
        } else {
            return Ok(None);
        };
        let n = Frame::new(command, 0, Body::Empty)?.emit(&self.agreed, buf)?;
        if command == Command::PingAck {
            self.ping_acks -= 1;
        } else {
            self.ping_due = false;
        }
        Ok(Some(n))
    }

    fn transmit_data(&mut self, buf: &mut [u8]) -> Result<Option<usize>, wire::Error> {
        let pv = self.agreed.pv.unwrap_or(0);
        let bit = [dtx::FEATURES, dtx::CHALLENGE, dtx::RESPONSE, dtx::PROTOCOL]
            .into_iter()
            .find(|b| self.data_tx & b != 0);
        if let Some(bit) = bit {
            let (command, body) = match bit {
                dtx::FEATURES => (
                    Command::ConnectionFeatures,
                    Body::Features(handshake::our_features(&self.config)),
                ),
                dtx::CHALLENGE => match &self.cram {
                    Some(c) => (Command::AuthChallenge, Body::AuthChallenge(&c.challenge)),
                    None => return Ok(None),
                },
                dtx::RESPONSE => match &self.cram {
                    Some(c) => (Command::AuthResponse, Body::AuthResponse(c.response())),
                    None => return Ok(None),
                },
                _ => (
                    Command::Protocol,
                    Body::Protocol(handshake::our_protocol(&self.config)),
                ),
            };
            // Features go out before anything is agreed, so always with h80 (§1).
            let agreed = if bit == dtx::FEATURES {
                Agreed::default()
            } else {
                self.agreed
            };
            let n = Frame::new(command, 0, body)?.emit(&agreed, buf)?;
            self.data_tx &= !bit;
            return Ok(Some(n));
        }
        // Volume packets only after our P_PROTOCOL (§4.5).
        if self.phase < Phase::Params {
            return Ok(None);
        }
        let conn = ConnState::Connected;
        for i in 0..self.volumes.len() {
            let Some(v) = self.volumes.get(i) else {
                continue;
            };
            if let Some((bit, command, body)) = v.next_tx(
                pv,
                self.agreed.features,
                self.role,
                conn,
                self.config.discard_my_data,
            ) {
                let n = Frame::new(command, v.number(), body)?.emit(&self.agreed, buf)?;
                if let Some(v) = self.volumes.get_mut(i) {
                    v.tx &= !bit;
                }
                return Ok(Some(n));
            }
        }
        Ok(None)
    }
}
