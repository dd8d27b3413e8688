//! CRAM-HMAC (replication.md §3.12, §4.3): the 64-byte challenge, the HMAC response, and the
//! response computation and check for the `cram-hmac-alg` values DRBD users configure.

use hmac::{Hmac, Mac};

use super::error::{room, Error};
use super::field::exactly;

/// Bytes of a P_AUTH_CHALLENGE payload.
pub const CHALLENGE_LEN: usize = 64;

/// Longest HMAC digest a response may carry (SHA-512).
pub const MAX_RESPONSE_LEN: usize = 64;

/// Checks a P_AUTH_CHALLENGE payload (exactly 64 bytes) and returns it.
pub fn parse_challenge(payload: &[u8]) -> Result<&[u8; CHALLENGE_LEN], Error> {
    exactly("p_auth_challenge", payload.len(), CHALLENGE_LEN)?;
    payload.try_into().map_err(|_| Error::Truncated {
        what: "p_auth_challenge",
        need: CHALLENGE_LEN,
        have: payload.len(),
    })
}

/// Checks a P_AUTH_RESPONSE payload: 1 to 64 bytes (the receiver compares it with its own HMAC
/// of the agreed algorithm, which fixes the exact length).
pub fn parse_response(payload: &[u8]) -> Result<&[u8], Error> {
    if payload.is_empty() {
        return Err(Error::Truncated {
            what: "p_auth_response",
            need: 1,
            have: 0,
        });
    }
    if payload.len() > MAX_RESPONSE_LEN {
        return Err(Error::LengthMismatch {
            what: "p_auth_response",
            expected: MAX_RESPONSE_LEN,
            got: payload.len(),
        });
    }
    Ok(payload)
}

/// The message a response HMACs: the peer's challenge, followed at pv ≥ 110 by the responder's
/// node id (big-endian). Returns the used prefix of `out`.
pub fn response_message<'o>(
    challenge: &[u8; CHALLENGE_LEN],
    responder_node_id: Option<u32>,
    out: &'o mut [u8; CHALLENGE_LEN + 4],
) -> &'o [u8] {
    out[..CHALLENGE_LEN].copy_from_slice(challenge);
    match responder_node_id {
        Some(id) => {
            out[CHALLENGE_LEN..].copy_from_slice(&id.to_be_bytes());
            &out[..]
        }
        None => &out[..CHALLENGE_LEN],
    }
}

/// A `cram-hmac-alg` (the kernel's `hmac(<alg>)`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum HmacAlg {
    /// `sha1`: 20-byte responses.
    Sha1,
    /// `sha256`: 32-byte responses.
    Sha256,
    /// `sha512`: 64-byte responses.
    Sha512,
}

impl HmacAlg {
    /// The algorithm a drbd.conf `cram-hmac-alg` names, if supported.
    pub fn from_name(name: &[u8]) -> Option<HmacAlg> {
        match name {
            b"sha1" => Some(HmacAlg::Sha1),
            b"sha256" => Some(HmacAlg::Sha256),
            b"sha512" => Some(HmacAlg::Sha512),
            _ => None,
        }
    }

    /// Bytes of a response, which P_AUTH_RESPONSE must carry exactly.
    pub const fn digest_len(self) -> usize {
        match self {
            HmacAlg::Sha1 => 20,
            HmacAlg::Sha256 => 32,
            HmacAlg::Sha512 => 64,
        }
    }
}

fn mac<M: Mac + hmac::digest::KeyInit>(secret: &[u8], parts: &[&[u8]]) -> M {
    // HMAC takes keys of any length, so this never fails.
    let mut m = <M as hmac::digest::KeyInit>::new_from_slice(secret)
        .unwrap_or_else(|_| <M as hmac::digest::KeyInit>::new(&Default::default()));
    for p in parts {
        m.update(p);
    }
    m
}

fn parts<'a>(challenge: &'a [u8; CHALLENGE_LEN], node: &'a Option<[u8; 4]>) -> [&'a [u8]; 2] {
    [challenge, node.as_ref().map_or(&[][..], |n| &n[..])]
}

/// Writes the response to `challenge` into `out`: HMAC(secret, challenge ‖ BE32(responder node
/// id)) at pv ≥ 110, HMAC(secret, challenge) below (`responder_node_id = None`). Returns its
/// length ([`HmacAlg::digest_len`]).
pub fn response(
    alg: HmacAlg,
    secret: &[u8],
    challenge: &[u8; CHALLENGE_LEN],
    responder_node_id: Option<u32>,
    out: &mut [u8],
) -> Result<usize, Error> {
    let len = alg.digest_len();
    room(out, len)?;
    let node = responder_node_id.map(u32::to_be_bytes);
    let p = parts(challenge, &node);
    let dst = out.get_mut(..len).unwrap_or(&mut []);
    match alg {
        HmacAlg::Sha1 => {
            dst.copy_from_slice(&mac::<Hmac<sha1::Sha1>>(secret, &p).finalize().into_bytes())
        }
        HmacAlg::Sha256 => dst.copy_from_slice(
            &mac::<Hmac<sha2::Sha256>>(secret, &p)
                .finalize()
                .into_bytes(),
        ),
        HmacAlg::Sha512 => dst.copy_from_slice(
            &mac::<Hmac<sha2::Sha512>>(secret, &p)
                .finalize()
                .into_bytes(),
        ),
    }
    Ok(len)
}

/// Checks the peer's response to our challenge in constant time: it must be exactly the digest
/// length and equal HMAC(secret, own_challenge ‖ BE32(peer node id)) (no node id below pv 110).
pub fn verify(
    alg: HmacAlg,
    secret: &[u8],
    own_challenge: &[u8; CHALLENGE_LEN],
    peer_node_id: Option<u32>,
    response: &[u8],
) -> bool {
    let node = peer_node_id.map(u32::to_be_bytes);
    let p = parts(own_challenge, &node);
    match alg {
        HmacAlg::Sha1 => mac::<Hmac<sha1::Sha1>>(secret, &p)
            .verify_slice(response)
            .is_ok(),
        HmacAlg::Sha256 => mac::<Hmac<sha2::Sha256>>(secret, &p)
            .verify_slice(response)
            .is_ok(),
        HmacAlg::Sha512 => mac::<Hmac<sha2::Sha512>>(secret, &p)
            .verify_slice(response)
            .is_ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenge_and_response_lengths() {
        let c = [7u8; 64];
        assert_eq!(parse_challenge(&c), Ok(&c));
        assert!(parse_challenge(&c[..63]).is_err());
        assert!(parse_challenge(&[0; 65]).is_err());
        assert_eq!(parse_response(&[1; 32]).map(<[u8]>::len), Ok(32));
        assert!(parse_response(&[]).is_err() && parse_response(&[0; 65]).is_err());
        let mut buf = [0u8; 68];
        let m = response_message(&c, Some(1), &mut buf);
        assert_eq!((m.len(), &m[64..]), (68, &[0, 0, 0, 1][..]));
        assert_eq!(response_message(&c, None, &mut buf).len(), 64);
    }

    #[test]
    fn hmac_matches_the_oracle() {
        // drbdwire.auth_response(b"s3cret", bytes(range(64)), 0) (HMAC-SHA256, node id appended).
        const WANT: [u8; 32] = [
            0x91, 0x96, 0x7a, 0xc5, 0x46, 0x21, 0xb1, 0x60, 0x42, 0x7c, 0x1c, 0x5e, 0x4c, 0x74,
            0xc1, 0x27, 0xcb, 0xe0, 0xf4, 0x34, 0x7f, 0x0f, 0x2d, 0x2c, 0xf8, 0x79, 0xbd, 0xcb,
            0xd7, 0xec, 0x5e, 0x5e,
        ];
        let ch: [u8; 64] = core::array::from_fn(|i| i as u8);
        let mut out = [0u8; 64];
        assert_eq!(
            response(HmacAlg::Sha256, b"s3cret", &ch, Some(0), &mut out),
            Ok(32)
        );
        assert_eq!(out[..32], WANT);
        assert!(verify(HmacAlg::Sha256, b"s3cret", &ch, Some(0), &WANT));
        assert!(!verify(HmacAlg::Sha256, b"s3cret", &ch, Some(1), &WANT));
        assert!(!verify(
            HmacAlg::Sha256,
            b"s3cret",
            &ch,
            Some(0),
            &WANT[..31]
        ));
        assert!(!verify(HmacAlg::Sha256, b"secret", &ch, Some(0), &WANT));
        assert_eq!(response(HmacAlg::Sha1, b"k", &ch, None, &mut out), Ok(20));
        assert!(verify(HmacAlg::Sha1, b"k", &ch, None, &out[..20]));
        assert!(response(HmacAlg::Sha512, b"k", &ch, None, &mut out[..63]).is_err());
        assert_eq!(HmacAlg::from_name(b"sha256"), Some(HmacAlg::Sha256));
        assert_eq!(HmacAlg::from_name(b"md5"), None);
    }
}
