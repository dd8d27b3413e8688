//! Resync parameters (replication.md §3.10): P_SYNC_PARAM (pv ≤ 88: a rate and, at 88, the
//! verify algorithm) and P_SYNC_PARAM89 (fixed 64-byte algorithm names, plus the controller
//! settings from pv 95: 132 or 148 bytes).

use super::error::Error;
use super::field::{cstr, emit_parts, put_bytes, Field};

/// Bytes of each algorithm-name field.
pub const ALG_FIELD: usize = 64;

/// A parsed P_SYNC_PARAM payload.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SyncParamRepr<'a> {
    /// Resync rate (KiB/s).
    pub resync_rate: u32,
    /// The verify algorithm (pv 88 only; `None` for the 4-byte form).
    pub verify_alg: Option<&'a [u8]>,
}

impl<'a> SyncParamRepr<'a> {
    /// Parses the 4-byte form or the rate followed by a NUL-terminated name (≤ 64 bytes).
    pub fn parse(payload: &'a [u8]) -> Result<Self, Error> {
        super::field::at_least("p_rs_param", payload.len(), 4)?;
        let resync_rate = u32::read(payload, 0);
        let tail = payload.get(4..).unwrap_or(&[]);
        let verify_alg = match tail.len() {
            0 => None,
            n if n > ALG_FIELD => {
                return Err(Error::BadString {
                    field: "p_rs_param.verify_alg",
                })
            }
            _ => Some(cstr("p_rs_param.verify_alg", tail)?),
        };
        Ok(SyncParamRepr {
            resync_rate,
            verify_alg,
        })
    }

    /// Bytes [`Self::emit`] writes.
    pub fn buffer_len(&self) -> usize {
        4 + self.verify_alg.map_or(0, |a| a.len() + 1)
    }

    /// Writes the payload.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, Error> {
        let rate = self.resync_rate.to_be_bytes();
        match self.verify_alg {
            None => emit_parts(buf, &[&rate]),
            Some(a) if a.len() < ALG_FIELD && !a.contains(&0) => emit_parts(buf, &[&rate, a, &[0]]),
            Some(_) => Err(Error::BadString {
                field: "p_rs_param.verify_alg",
            }),
        }
    }
}

/// The dynamic resync controller settings P_SYNC_PARAM89 carries from pv 95.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Controller {
    /// c-plan-ahead.
    pub c_plan_ahead: u32,
    /// c-delay-target.
    pub c_delay_target: u32,
    /// c-fill-target.
    pub c_fill_target: u32,
    /// c-max-rate.
    pub c_max_rate: u32,
}

/// A parsed P_SYNC_PARAM89 payload.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SyncParam89Repr<'a> {
    /// Resync rate (KiB/s; ignored by 9.2+).
    pub resync_rate: u32,
    /// Verify algorithm name (empty = none), without padding.
    pub verify_alg: &'a [u8],
    /// Checksum-resync algorithm name (empty = none).
    pub csums_alg: &'a [u8],
    /// Controller settings (the 148-byte form).
    pub controller: Option<Controller>,
}

const SHORT: usize = 4 + 2 * ALG_FIELD;
const LONG: usize = SHORT + 16;

/// A name field: upstream forces the last byte to NUL, so the name ends at the first NUL within
/// the first 63 bytes.
fn alg(bytes: &[u8]) -> &[u8] {
    let b = bytes.get(..ALG_FIELD - 1).unwrap_or(bytes);
    b.iter()
        .position(|&c| c == 0)
        .map_or(b, |n| b.get(..n).unwrap_or(b))
}

impl<'a> SyncParam89Repr<'a> {
    /// Parses a 132- or 148-byte payload.
    pub fn parse(payload: &'a [u8]) -> Result<Self, Error> {
        super::field::at_least("p_rs_param_89", payload.len(), SHORT)?;
        let controller = match payload.len() {
            SHORT => None,
            LONG => Some(Controller {
                c_plan_ahead: u32::read(payload, SHORT),
                c_delay_target: u32::read(payload, SHORT + 4),
                c_fill_target: u32::read(payload, SHORT + 8),
                c_max_rate: u32::read(payload, SHORT + 12),
            }),
            got => {
                return Err(Error::LengthMismatch {
                    what: "p_rs_param_95",
                    expected: LONG,
                    got,
                })
            }
        };
        let field = |at: usize| payload.get(at..at + ALG_FIELD).unwrap_or(&[]);
        Ok(SyncParam89Repr {
            resync_rate: u32::read(payload, 0),
            verify_alg: alg(field(4)),
            csums_alg: alg(field(4 + ALG_FIELD)),
            controller,
        })
    }

    /// Bytes [`Self::emit`] writes.
    pub fn buffer_len(&self) -> usize {
        if self.controller.is_some() {
            LONG
        } else {
            SHORT
        }
    }

    /// Writes the payload, names NUL-padded to 64 bytes (each at most 63 bytes, no NUL inside).
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, Error> {
        for (name, field) in [
            (self.verify_alg, "p_rs_param_89.verify_alg"),
            (self.csums_alg, "p_rs_param_89.csums_alg"),
        ] {
            if name.len() >= ALG_FIELD || name.contains(&0) {
                return Err(Error::BadString { field });
            }
        }
        let len = self.buffer_len();
        super::error::room(buf, len)?;
        let out = buf.get_mut(..len).unwrap_or(&mut []);
        out.fill(0);
        self.resync_rate.write(out, 0);
        put_bytes(out, 4, self.verify_alg);
        put_bytes(out, 4 + ALG_FIELD, self.csums_alg);
        if let Some(c) = self.controller {
            for (i, v) in [
                c.c_plan_ahead,
                c.c_delay_target,
                c.c_fill_target,
                c.c_max_rate,
            ]
            .into_iter()
            .enumerate()
            {
                v.write(out, SHORT + 4 * i);
            }
        }
        Ok(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sync_param95_bytes() {
        // drbdwire.sync_param95(250, "sha1", "md5", 20, 10, 100, 102400)
        let mut bytes = [0u8; 148];
        bytes[3] = 250;
        bytes[4..8].copy_from_slice(b"sha1");
        bytes[68..71].copy_from_slice(b"md5");
        bytes[132..148].copy_from_slice(&[0, 0, 0, 20, 0, 0, 0, 10, 0, 0, 0, 100, 0, 1, 0x90, 0]);
        let p = SyncParam89Repr::parse(&bytes).unwrap();
        assert_eq!(
            (p.resync_rate, p.verify_alg, p.csums_alg),
            (250, &b"sha1"[..], &b"md5"[..])
        );
        assert_eq!(
            p.controller,
            Some(Controller {
                c_plan_ahead: 20,
                c_delay_target: 10,
                c_fill_target: 100,
                c_max_rate: 102400
            })
        );
        let mut out = [0xEEu8; 148];
        assert_eq!(p.emit(&mut out), Ok(148));
        assert_eq!(out, bytes);
        let short = SyncParam89Repr::parse(&bytes[..132]).unwrap();
        assert_eq!(short.controller, None);
        assert!(SyncParam89Repr::parse(&bytes[..140]).is_err());
        let mut full = bytes;
        full[4..68].fill(b'x');
        assert_eq!(SyncParam89Repr::parse(&full).unwrap().verify_alg.len(), 63);
    }

    #[test]
    fn sync_param_old_forms() {
        let p = SyncParamRepr::parse(&[0, 0, 1, 0]).unwrap();
        assert_eq!(
            p,
            SyncParamRepr {
                resync_rate: 256,
                verify_alg: None
            }
        );
        let p = SyncParamRepr::parse(b"\0\0\x01\0md5\0").unwrap();
        assert_eq!(p.verify_alg, Some(&b"md5"[..]));
        let mut out = [0u8; 8];
        assert_eq!(p.emit(&mut out), Ok(8));
        assert!(SyncParamRepr::parse(b"\0\0\x01\0md5").is_err());
    }
}
