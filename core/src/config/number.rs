//! Scalar conversions with C semantics: `strtoll(…, 0)` (HEAD's strict form), `strtod` narrowed
//! to `float`, and the writer's `%lld`, `0%llo` and `%f` (config-tree.md §1.4, §2.1).

use core::fmt::Write as _;

/// `strtoll(text, &end, 0)` that must consume the whole token (lvm2 HEAD): optional sign, a
/// leading `0` means octal. Range overflow is its own error so the caller can apply the
/// `creation_time` repair.
pub(crate) fn parse_int(text: &[u8]) -> Result<i64, IntError> {
    let (neg, digits) = match text.first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if digits.is_empty() {
        return Err(IntError::Syntax);
    }
    let base: u64 = if digits.len() > 1 && digits[0] == b'0' {
        8
    } else {
        10
    };
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
    Ok(if neg {
        (mag as i64).wrapping_neg()
    } else {
        mag as i64
    })
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
    let digits = rest[1 + sign..]
        .iter()
        .take_while(|c| c.is_ascii_digit())
        .count();
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
    let mantissa_end = text
        .iter()
        .position(|c| matches!(c, b'e' | b'E'))
        .unwrap_or(text.len());
    if !has_digit(&text[..mantissa_end]) {
        // strtod converts nothing ("." or "-.") and returns 0.
        return Some(0.0);
    }
    let d = match fast_decimal(text) {
        Some(d) => d,
        None => core::str::from_utf8(text).ok()?.parse().ok()?,
    };
    let nonzero = text[..mantissa_end]
        .iter()
        .any(|c| matches!(c, b'1'..=b'9'));
    if d.is_infinite() || (nonzero && d.abs() <= f64::MIN_POSITIVE && underflows(text, d)) {
        return None;
    }
    Some(d as f32)
}

/// glibc's strtod underflow rule (ERANGE): the exact decimal lies below DBL_MIN and the double
/// is not exactly it. `d` is the correctly rounded result, at most DBL_MIN in magnitude. Only
/// absurdly small inputs get here, so an exact expansion of `d` by hand is cheap enough (and
/// far smaller in flash than `core::fmt`'s exact float formatting).
fn underflows(text: &[u8], d: f64) -> bool {
    use core::cmp::Ordering;
    let Some(ours) = Decimal::of(text) else {
        return false;
    };
    let order = match Exact::of(d.abs()) {
        None => Ordering::Greater,
        Some(x) => cmp_digits(ours.exp, ours.digits(), x.exp(), x.digits()),
    };
    match order {
        Ordering::Equal => false,
        // Inexact: tiny when the exact value is below DBL_MIN. A result below DBL_MIN says so;
        // a result of DBL_MIN itself came from below when the input is smaller than it.
        _ if d.abs() < f64::MIN_POSITIVE => true,
        o => o == Ordering::Less,
    }
}

/// Compares `0.A × 10^ea` with `0.B × 10^eb` (no leading zero digits; trailing zeros allowed).
fn cmp_digits(
    ea: i64,
    mut a: impl Iterator<Item = u8>,
    eb: i64,
    mut b: impl Iterator<Item = u8>,
) -> core::cmp::Ordering {
    ea.cmp(&eb).then_with(|| loop {
        match (a.next(), b.next()) {
            (None, None) => return core::cmp::Ordering::Equal,
            (x, y) => match x.unwrap_or(b'0').cmp(&y.unwrap_or(b'0')) {
                core::cmp::Ordering::Equal => continue,
                o => return o,
            },
        }
    })
}

/// A positive decimal as `0.DIGITS × 10^exp`, read from `[+-]digits[.digits][e[+-]digits]` text.
struct Decimal<'a> {
    text: &'a [u8],
    exp: i64,
}

impl<'a> Decimal<'a> {
    /// `None` for zero.
    fn of(text: &'a [u8]) -> Option<Decimal<'a>> {
        let body = text
            .strip_prefix(b"-")
            .or_else(|| text.strip_prefix(b"+"))
            .unwrap_or(text);
        let mant_end = body
            .iter()
            .position(|c| matches!(c, b'e' | b'E'))
            .unwrap_or(body.len());
        let (mant, exp_text) = body.split_at(mant_end);
        let mut e10: i64 = 0;
        if let Some(rest) = exp_text.get(1..) {
            let (neg, digits) = match rest.first() {
                Some(b'-') => (true, &rest[1..]),
                Some(b'+') => (false, &rest[1..]),
                _ => (false, rest),
            };
            for &c in digits {
                e10 = (e10 * 10 + i64::from(c - b'0')).min(1 << 40);
            }
            if neg {
                e10 = -e10;
            }
        }
        let dot = mant.iter().position(|&c| c == b'.').unwrap_or(mant.len());
        let first = mant.iter().position(|c| matches!(c, b'1'..=b'9'))?;
        // `12.5` → 0.125e2; `0.05` → 0.5e-1: the point's distance from the first digit.
        let exp = e10 + dot as i64 - first as i64 + i64::from(first > dot);
        Some(Decimal {
            text: &mant[first..],
            exp,
        })
    }

    fn digits(&self) -> impl Iterator<Item = u8> + '_ {
        self.text.iter().copied().filter(u8::is_ascii_digit)
    }
}

/// The exact decimal value of a double at most DBL_MIN: `m × 2^-k` is `(m × 5^k) × 10^-k`, and
/// `m × 5^k` (at most 767 digits) is built in base-10^9 limbs.
struct Exact {
    limbs: [u32; 96],
    len: usize,
    k: i64,
}

impl Exact {
    fn of(d: f64) -> Option<Exact> {
        const BASE: u64 = 1_000_000_000;
        let bits = d.to_bits();
        let biased = ((bits >> 52) & 0x7ff) as i64;
        let frac = bits & ((1 << 52) - 1);
        let (m, k) = if biased == 0 {
            (frac, 1074)
        } else {
            (frac | 1 << 52, 1075 - biased)
        };
        if m == 0 || k <= 0 {
            return None;
        }
        let mut x = Exact {
            limbs: [0; 96],
            len: 2,
            k,
        };
        x.limbs[0] = (m % BASE) as u32;
        x.limbs[1] = (m / BASE) as u32;
        let mut left = k;
        while left > 0 {
            // 5^13 < 2^32, so a limb times it plus a carry fits in u64.
            let step = left.min(13) as u32;
            let mul = 5u64.pow(step);
            let mut carry = 0u64;
            for limb in &mut x.limbs[..x.len] {
                let v = u64::from(*limb) * mul + carry;
                *limb = (v % BASE) as u32;
                carry = v / BASE;
            }
            while carry > 0 && x.len < x.limbs.len() {
                x.limbs[x.len] = (carry % BASE) as u32;
                carry /= BASE;
                x.len += 1;
            }
            left -= i64::from(step);
        }
        while x.len > 1 && x.limbs[x.len - 1] == 0 {
            x.len -= 1;
        }
        Some(x)
    }

    fn top_digits(&self) -> usize {
        let mut top = self.limbs[self.len - 1];
        let mut n = 0;
        while top > 0 {
            n += 1;
            top /= 10;
        }
        n
    }

    /// `N = m × 5^k` has `L` digits, so the value is `0.N × 10^(L - k)`.
    fn exp(&self) -> i64 {
        (self.top_digits() + 9 * (self.len - 1)) as i64 - self.k
    }

    fn digits(&self) -> impl Iterator<Item = u8> + '_ {
        let top = self.top_digits();
        (0..self.len).rev().flat_map(move |i| {
            let limb = self.limbs[i];
            let width = if i == self.len - 1 { top } else { 9 };
            (0..width)
                .rev()
                .map(move |p| b'0' + (limb / 10u32.pow(p as u32) % 10) as u8)
        })
    }
}

/// Clinger's fast path: a decimal of at most 15 significant digits and 22 fractional digits, with
/// no exponent, is `m / 10^k` with both operands exact in f64, so one division rounds exactly as
/// strtod does.
fn fast_decimal(text: &[u8]) -> Option<f64> {
    const POW10: [f64; 23] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
        1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
    ];
    let (neg, body) = match text.first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let mut m: u64 = 0;
    let (mut digits, mut frac, mut seen_dot) = (0u32, 0usize, false);
    for &c in body {
        match c {
            b'.' if !seen_dot => seen_dot = true,
            b'0'..=b'9' => {
                if m != 0 || c != b'0' {
                    digits += 1;
                }
                m = m * 10 + u64::from(c - b'0');
                frac += usize::from(seen_dot);
                if digits > 15 {
                    return None;
                }
            }
            _ => return None,
        }
    }
    let d = m as f64 / *POW10.get(frac)?;
    Some(if neg { -d } else { d })
}

/// A fixed buffer that `core::fmt` can write into (numbers never need more than it holds).
pub(crate) struct NumBuf {
    buf: [u8; 64],
    len: usize,
}

impl NumBuf {
    pub(crate) fn new() -> Self {
        NumBuf {
            buf: [0; 64],
            len: 0,
        }
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
    let mut i = format_u64_at(v.unsigned_abs(), out);
    if v < 0 {
        i -= 1;
        out[i] = b'-';
    }
    &out[i..]
}

/// Writes `m` in decimal at the end of `out`, returning where it starts.
fn format_u64_at(mut m: u64, out: &mut [u8; 24]) -> usize {
    let mut i = out.len();
    loop {
        i -= 1;
        out[i] = b'0' + (m % 10) as u8;
        m /= 10;
        if m == 0 {
            return i;
        }
    }
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

/// `%f` of the float promoted to double: six decimals, exact rounding (ties to even, as glibc),
/// `inf`/`nan` as glibc prints them.
pub(crate) fn format_float(v: f32, out: &mut NumBuf) {
    if !v.is_finite() {
        let d = v as f64;
        let _ = match (d.is_nan(), d.is_sign_negative()) {
            (true, true) => out.write_str("-nan"),
            (true, false) => out.write_str("nan"),
            (false, true) => out.write_str("-inf"),
            (false, false) => out.write_str("inf"),
        };
        return;
    }
    // v = mant * 2^exp exactly; scale by 10^6 and round to an integer in u128 arithmetic.
    let bits = v.to_bits();
    let biased = ((bits >> 23) & 0xff) as i32;
    let frac = u128::from(bits & 0x7f_ffff);
    let (mant, exp) = if biased == 0 {
        (frac, -149)
    } else {
        (frac | 0x80_0000, biased - 150)
    };
    let (int, micros) = if exp >= 0 {
        // An integer below 2^128: no fraction to round.
        (mant << exp, 0)
    } else {
        let shift = (-exp) as u32;
        // mant * 10^6 < 2^44; at 64 or more bits of shift it rounds to zero.
        let scaled = mant * 1_000_000;
        let rounded = if shift >= 64 {
            0
        } else {
            let q = scaled >> shift;
            let r = scaled & ((1u128 << shift) - 1);
            let half = 1u128 << (shift - 1);
            q + u128::from(r > half || (r == half && q & 1 == 1))
        };
        (rounded / 1_000_000, (rounded % 1_000_000) as u32)
    };
    if v.is_sign_negative() {
        let _ = out.write_str("-");
    }
    let mut buf = [0u8; 24];
    let _ = match u64::try_from(int) {
        Ok(i) => {
            let at = format_u64_at(i, &mut buf);
            out.write_str(core::str::from_utf8(&buf[at..]).unwrap_or(""))
        }
        Err(_) => write!(out, "{int}"),
    };
    let mut frac = [b'0'; 7];
    frac[0] = b'.';
    let mut m = micros;
    for d in frac[1..].iter_mut().rev() {
        *d = b'0' + (m % 10) as u8;
        m /= 10;
    }
    let _ = out.write_str(core::str::from_utf8(&frac).unwrap_or(""));
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
        // glibc: an exact subnormal is fine; just below DBL_MIN and inexact is ERANGE.
        assert_eq!(parse_float(b"4.9406564584124654e-324"), None);
        assert_eq!(parse_float(b"2.2250738585072014e-308"), Some(0.0));
        assert_eq!(parse_float(b"2.2250738585072012e-308"), None);
        assert_eq!(parse_float(b"2.2250738585072015e-308"), Some(0.0));
        assert_eq!(parse_float(b"0.0000000000000000000000000001e-300"), None);
        let tiny = Decimal::of(b"0.05").unwrap();
        assert_eq!(
            (
                tiny.exp,
                Decimal::of(b"12.5").unwrap().exp,
                Decimal::of(b"-.5e3").unwrap().exp
            ),
            (-1, 2, 3)
        );
    }

    fn f(v: f32) -> std::string::String {
        let mut b = NumBuf::new();
        format_float(v, &mut b);
        std::string::String::from_utf8(b.as_bytes().to_vec()).unwrap()
    }

    #[test]
    fn fast_decimal_path_rounds_like_the_full_parser() {
        let mut x: u64 = 7;
        for _ in 0..100_000 {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let int = x >> 40;
            let frac = (x >> 8) % 1_000_000_000;
            let places = (x % 10) as usize;
            let s = std::format!("{int}.{frac:09}");
            let s = &s[..s.len() - places];
            let slow: f64 = s.parse().unwrap();
            assert_eq!(
                fast_decimal(s.as_bytes()),
                Some(slow).filter(|_| s.len() <= 16),
                "{s}"
            );
        }
    }

    #[test]
    fn floats_print_like_percent_f() {
        assert_eq!(f(1.5), "1.500000");
        assert_eq!(f(-0.0), "-0.000000");
        assert_eq!(f(0.0000001), "0.000000");
        assert_eq!(f(2.718_281_7), "2.718282");
        assert_eq!(f(1e20), "100000002004087734272.000000");
        assert_eq!(f(f32::INFINITY), "inf");
        // Exact ties round to even, as glibc does.
        assert_eq!(f(0.0078125), "0.007812");
        assert_eq!(f(0.0234375), "0.023438");
        assert_eq!(
            f(f32::MAX),
            "340282346638528859811704183484516925440.000000"
        );
        assert_eq!(f(-f32::MIN_POSITIVE), "-0.000000");
        assert_eq!(f(1e-45), "0.000000");
        assert_eq!(f(123456789.5), "123456792.000000");
        assert_eq!(f(-f32::INFINITY), "-inf");
        // Against core's exact formatter over a spread of values.
        let mut x: u32 = 1;
        for _ in 0..200_000 {
            x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let v = f32::from_bits(x);
            if v.is_finite() {
                assert_eq!(f(v), std::format!("{:.6}", v as f64), "{v:e}");
            }
        }
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
