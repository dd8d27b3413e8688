//! Scalar conversions with C semantics: `strtoll(…, 0)` (HEAD's strict form), `strtod` narrowed
//! to `float`, and the writer's `%lld`, `0%llo` and `%f` (config-tree.md §1.4, §2.1).

use core::fmt::Write as _;

/// `strtoll(text, &end, 0)` that must consume the whole token (lvm2 HEAD): optional sign, a
/// leading `0` means octal. `None` when a digit is invalid for the base, there are no digits, or
/// the value leaves the i64 range; `Some(Err(()))` marks range overflow so the caller can apply
/// the `creation_time` repair.
pub(crate) fn parse_int(text: &[u8]) -> Result<i64, IntError> {
    let (neg, digits) = match text.first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if digits.is_empty() {
        return Err(IntError::Syntax);
    }
    let base: u64 = if digits.len() > 1 && digits[0] == b'0' { 8 } else { 10 };
    let mut mag: u64 = 0;
    let mut overflow = false;
    for &d in digits {
        let v = d.wrapping_sub(b'0') as u64;
        if v >= base {
            return Err(IntError::Syntax);
        }
        match mag.checked_mul(base).and_then(|m| m.checked_add(v)) {
            Some(m) => mag = m,
            None => overflow = true,
        }
    }
    let limit = if neg { 1u64 << 63 } else { i64::MAX as u64 };
    if overflow || mag > limit {
        return Err(IntError::Range);
    }
    Ok(if neg { (mag as i64).wrapping_neg() } else { mag as i64 })
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum IntError {
    Syntax,
    Range,
}

/// Length of the exponent strtod would read after a float token (`e`, optional sign, digits).
pub(crate) fn exponent_len(rest: &[u8]) -> usize {
    if !matches!(rest.first(), Some(b'e' | b'E')) {
        return 0;
    }
    let sign = usize::from(matches!(rest.get(1), Some(b'+' | b'-')));
    let digits = rest[1 + sign..].iter().take_while(|c| c.is_ascii_digit()).count();
    if digits == 0 {
        0
    } else {
        1 + sign + digits
    }
}

/// `strtod` of a FLOAT token (`[+-]?digits*.digits*`, possibly followed by the exponent strtod
/// reads), narrowed to `float` as libdevmapper stores it. `None` for strtod's ERANGE.
pub(crate) fn parse_float(text: &[u8]) -> Option<f32> {
    let has_digit = |t: &[u8]| t.iter().any(u8::is_ascii_digit);
    let mantissa_end = text.iter().position(|c| matches!(c, b'e' | b'E')).unwrap_or(text.len());
    if !has_digit(&text[..mantissa_end]) {
        // strtod converts nothing ("." or "-.") and returns 0.
        return Some(0.0);
    }
    let s = core::str::from_utf8(text).ok()?;
    let d: f64 = s.parse().ok()?;
    let nonzero = text[..mantissa_end].iter().any(|c| matches!(c, b'1'..=b'9'));
    if d.is_infinite() || (nonzero && d.abs() < f64::MIN_POSITIVE) {
        return None;
    }
    Some(d as f32)
}

/// A fixed buffer that `core::fmt` can write into (numbers never need more than it holds).
pub(crate) struct NumBuf {
    buf: [u8; 64],
    len: usize,
}

impl NumBuf {
    pub(crate) fn new() -> Self {
        NumBuf { buf: [0; 64], len: 0 }
    }
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl core::fmt::Write for NumBuf {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let end = self.len + s.len();
        let dst = self.buf.get_mut(self.len..end).ok_or(core::fmt::Error)?;
        dst.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// `%lld`.
pub(crate) fn format_int(v: i64, out: &mut [u8; 24]) -> &[u8] {
    let mut i = out.len();
    let mut m = v.unsigned_abs();
    loop {
        i -= 1;
        out[i] = b'0' + (m % 10) as u8;
        m /= 10;
        if m == 0 {
            break;
        }
    }
    if v < 0 {
        i -= 1;
        out[i] = b'-';
    }
    &out[i..]
}

/// `"0%" PRIo64`: a leading 0, then the value as unsigned 64-bit octal.
pub(crate) fn format_octal(v: i64, out: &mut [u8; 24]) -> &[u8] {
    let mut i = out.len();
    let mut m = v as u64;
    loop {
        i -= 1;
        out[i] = b'0' + (m & 7) as u8;
        m >>= 3;
        if m == 0 {
            break;
        }
    }
    i -= 1;
    out[i] = b'0';
    &out[i..]
}

/// `%f` of the float promoted to double: six decimals, exact rounding, `inf`/`nan` as glibc.
pub(crate) fn format_float(v: f32, out: &mut NumBuf) {
    let d = v as f64;
    // Finite f32 values have at most 39 integer digits, so this always fits.
    let _ = if d.is_nan() {
        out.write_str(if d.is_sign_negative() { "-nan" } else { "nan" })
    } else {
        write!(out, "{d:.6}")
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ints_follow_strtoll_strictly() {
        assert_eq!(parse_int(b"-5"), Ok(-5));
        assert_eq!(parse_int(b"+7"), Ok(7));
        assert_eq!(parse_int(b"-0"), Ok(0));
        assert_eq!(parse_int(b"007"), Ok(7));
        assert_eq!(parse_int(b"010"), Ok(8));
        assert_eq!(parse_int(b"-010"), Ok(-8));
        assert_eq!(parse_int(b"9223372036854775807"), Ok(i64::MAX));
        assert_eq!(parse_int(b"-9223372036854775808"), Ok(i64::MIN));
        assert_eq!(parse_int(b"9223372036854775808"), Err(IntError::Range));
        assert_eq!(parse_int(b"99999999999999999999999"), Err(IntError::Range));
        assert_eq!(parse_int(b"0777777777777777777777"), Ok(i64::MAX));
        assert_eq!(parse_int(b"-01000000000000000000000"), Ok(i64::MIN));
        assert_eq!(parse_int(b"01000000000000000000000"), Err(IntError::Range));
        assert_eq!(parse_int(b"09"), Err(IntError::Syntax));
        assert_eq!(parse_int(b"-"), Err(IntError::Syntax));
        assert_eq!(parse_int(b"+"), Err(IntError::Syntax));
    }

    #[test]
    fn floats_are_strtod_then_float() {
        assert_eq!(parse_float(b"123456789.5"), Some(123456792.0));
        assert_eq!(parse_float(b"."), Some(0.0));
        assert_eq!(parse_float(b"-."), Some(0.0));
        assert_eq!(parse_float(b"5."), Some(5.0));
        assert_eq!(parse_float(b"+.25"), Some(0.25));
        assert_eq!(parse_float(b"1.5e3"), Some(1500.0));
        assert_eq!(parse_float(b"1.0e999"), None);
        assert_eq!(parse_float(b"1.0e-999"), None);
        assert_eq!(parse_float(b"0.0e-999"), Some(0.0));
    }

    fn f(v: f32) -> alloc_free::S {
        let mut b = NumBuf::new();
        format_float(v, &mut b);
        alloc_free::S::from(b.as_bytes())
    }

    mod alloc_free {
        #[derive(PartialEq, Debug)]
        pub struct S(pub [u8; 64], pub usize);
        impl From<&[u8]> for S {
            fn from(b: &[u8]) -> S {
                let mut s = [0; 64];
                s[..b.len()].copy_from_slice(b);
                S(s, b.len())
            }
        }
    }

    #[test]
    fn floats_print_like_percent_f() {
        assert_eq!(f(1.5), b"1.500000"[..].into());
        assert_eq!(f(-0.0), b"-0.000000"[..].into());
        assert_eq!(f(0.0000001), b"0.000000"[..].into());
        assert_eq!(f(3.141_592_7), b"3.141593"[..].into());
        assert_eq!(f(1e20), b"100000002004087734272.000000"[..].into());
        assert_eq!(f(f32::INFINITY), b"inf"[..].into());
        // Exact ties round to even, as glibc does.
        assert_eq!(f(0.0078125), b"0.007812"[..].into());
    }

    #[test]
    fn octal_is_unsigned() {
        let mut b = [0; 24];
        assert_eq!(format_octal(8, &mut b), b"010");
        assert_eq!(format_octal(-8, &mut b), b"01777777777777777777770");
        assert_eq!(format_octal(0, &mut b), b"00");
        assert_eq!(format_int(i64::MIN, &mut b), b"-9223372036854775808");
    }
}
