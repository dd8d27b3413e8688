//! CRAM-HMAC packets (replication.md §3.12, §4.3): a 64-byte challenge and an HMAC response.
//! Computing the HMAC is the caller's job; [`response_message`] builds the bytes it covers.

use super::error::Error;
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
}
