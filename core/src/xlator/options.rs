//! Option tables and option typing (translators.md §2.6): what a translator declares for each
//! key, and the checks GlusterFS's `xlator_option_validate` applies to a value of each type.
//!
//! Numbers follow the C library calls upstream makes (`strtoll` with base 0 for integers,
//! `strtod` for fractions and percentages, 1024-based size suffixes); the messages are
//! upstream's `errstr` texts.

use core::fmt;

use super::lex::Word;

/// The type of an option's value (upstream's `volume_option_type_t`, the ones our tables use).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum OptionType {
    /// Anything.
    Any,
    /// A string; with allowed values, one of them.
    Str,
    /// A C `long long` (decimal, `0x` hex or `0` octal).
    Int,
    /// A byte size with an optional `B`/`KB`/`MB`/`GB`/`TB`/`PB` suffix (1024-based).
    SizeT,
    /// `N` or `N%`, 0 to 100.
    Percent,
    /// A percentage (`N%`) or a size.
    PercentOrSizeT,
    /// `1/on/yes/true/enable` or `0/off/no/false/disable`, any case.
    Bool,
    /// The name of a volume in the graph.
    Xlator,
    /// An absolute path without `../`.
    Path,
    /// Seconds, with an optional `s/sec/m/min/h/hr/d/days/w/wk` suffix.
    Time,
    /// A C `double`.
    Double,
}

/// Which bounds an `Int` option checks (upstream's `opt_validate_type_t`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Validate {
    /// Both `min` and `max` (no check when both are 0).
    Both,
    /// `min` only.
    Min,
    /// `max` only.
    Max,
}

/// One entry of a translator's option table.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OptionSpec {
    /// Up to four keys (globs); the first is canonical and aliases are renamed to it.
    pub keys: &'static [&'static str],
    /// The value type.
    pub ty: OptionType,
    /// Lower bound (see [`Validate`]).
    pub min: f64,
    /// Upper bound.
    pub max: f64,
    /// Which bounds an `Int` checks.
    pub validate: Validate,
    /// Allowed values of a `Str` (empty: anything).
    pub values: &'static [&'static str],
    /// The value used when the option is absent.
    pub default: Option<&'static str>,
}

impl OptionSpec {
    /// An entry with no bounds, no value list and no default.
    pub const fn new(keys: &'static [&'static str], ty: OptionType) -> OptionSpec {
        OptionSpec {
            keys,
            ty,
            min: 0.0,
            max: 0.0,
            validate: Validate::Both,
            values: &[],
            default: None,
        }
    }

    /// With a default value.
    pub const fn default(mut self, d: &'static str) -> OptionSpec {
        self.default = Some(d);
        self
    }

    /// With both bounds.
    pub const fn range(mut self, min: f64, max: f64) -> OptionSpec {
        self.min = min;
        self.max = max;
        self
    }

    /// With a lower bound only (`GF_OPT_VALIDATE_MIN`).
    pub const fn at_least(mut self, min: f64) -> OptionSpec {
        self.min = min;
        self.validate = Validate::Min;
        self
    }

    /// With an upper bound that a [`Validate::Min`] entry declares but does not check.
    pub const fn range_max(mut self, max: f64) -> OptionSpec {
        self.max = max;
        self
    }

    /// With a list of allowed values.
    pub const fn values(mut self, v: &'static [&'static str]) -> OptionSpec {
        self.values = v;
        self
    }

    /// The canonical key.
    pub fn key(&self) -> &'static str {
        self.keys.first().copied().unwrap_or("")
    }
}

/// Finds the entry for `key` in `table` (keys are globs, as upstream's `fnmatch`); the flag says
/// whether `key` matched the canonical key.
pub fn lookup<'t>(table: &'t [OptionSpec], key: &Word<'_>) -> Option<(&'t OptionSpec, bool)> {
    let mut buf = [0u8; 256];
    let key = key.decode_into(&mut buf)?;
    table.iter().find_map(|spec| {
        spec.keys
            .iter()
            .position(|k| glob(k.as_bytes(), key))
            .map(|i| (spec, i == 0))
    })
}

/// `*` and `?` globbing (the only pattern characters in option tables).
pub fn glob(pat: &[u8], s: &[u8]) -> bool {
    let (mut p, mut i) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while i < s.len() {
        match pat.get(p) {
            Some(b'*') => {
                star = Some((p, i));
                p += 1;
            }
            Some(&c) if c == b'?' || Some(&c) == s.get(i) => {
                p += 1;
                i += 1;
            }
            _ => match star {
                Some((sp, si)) => {
                    p = sp + 1;
                    i = si + 1;
                    star = Some((sp, si + 1));
                }
                None => return false,
            },
        }
    }
    pat.get(p..).unwrap_or_default().iter().all(|&c| c == b'*')
}

/// A typed option value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Value<'a> {
    /// `Any`, `Str`, `Path` and `Xlator` values, as written.
    Text(Word<'a>),
    /// An `Int`.
    Int(i64),
    /// A `SizeT` in bytes.
    Size(u64),
    /// A `Percent`, or a `PercentOrSizeT` given with `%`.
    Percent(f64),
    /// A `PercentOrSizeT` given as a size, in bytes.
    PercentOrSize(f64),
    /// A `Bool`.
    Bool(bool),
    /// A `Time` in seconds.
    Time(u64),
    /// A `Double`.
    Double(f64),
}

/// A number as upstream prints it in a range message.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Num {
    /// `%lld`
    Int(i64),
    /// `%llu`
    Uint(u64),
    /// `%lf`
    Float(f64),
}

impl fmt::Display for Num {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Num::Int(n) => write!(f, "{n}"),
            Num::Uint(n) => write!(f, "{n}"),
            Num::Float(x) => write!(f, "{x:.6}"),
        }
    }
}

/// Why a value was refused.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Problem {
    /// Not a number of the option's kind.
    BadNumber,
    /// Not a percentage.
    BadPercent,
    /// Not a time.
    BadTime,
    /// Below `min` (lower bound only).
    BelowMin(Num, f64),
    /// Above `max` (upper bound only).
    AboveMax(Num, f64),
    /// Outside `[min, max]`.
    OutOfRange(Num, f64, f64),
    /// A size with a fraction.
    Fractional(f64),
    /// Not a boolean spelling.
    NotBool,
    /// No volume has this name.
    NotVolume,
    /// Not one of the allowed values.
    NotAllowed(&'static [&'static str]),
    /// A path containing `../`.
    DotDot,
    /// A path not starting with `/`.
    NotAbsolute,
}

/// A refused option value, displayed as upstream's `errstr`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OptionError<'a> {
    /// The key as written.
    pub key: Word<'a>,
    /// The value as written.
    pub value: Word<'a>,
    /// What is wrong with it.
    pub problem: Problem,
}

impl fmt::Display for OptionError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (k, v) = (self.key, self.value);
        match self.problem {
            Problem::BadNumber => write!(f, "invalid number format \"{v}\" in option \"{k}\""),
            Problem::BadPercent => write!(f, "invalid percent format \"{v}\" in \"option {k}\""),
            Problem::BadTime => write!(f, "invalid time format \"{v}\" in \"option {k}\""),
            Problem::BelowMin(n, min) => write!(
                f,
                "'{n}' in 'option {k} {v}' is smaller than minimum value '{min:.0}'"
            ),
            Problem::AboveMax(n, max) => write!(
                f,
                "'{n}' in 'option {k} {v}' is greater than maximum value '{max:.0}'"
            ),
            Problem::OutOfRange(n, min, max) => {
                write!(f, "'{n}' in 'option {k} {v}' is out of range [{min:.0} - {max:.0}]")
            }
            Problem::Fractional(x) => write!(
                f,
                "'{x:.6}' in 'option {k} {v}' should not be fractional value. Use valid unsigned integer value."
            ),
            Problem::NotBool => write!(f, "option {k} {v}: '{v}' is not a valid boolean value"),
            Problem::NotVolume => write!(f, "option {k} {v}: '{v}' is not a valid volume name"),
            Problem::NotAllowed(values) => {
                write!(f, "option {k} {v}: '{v}' is not valid (possible options are ")?;
                for (i, a) in values.iter().enumerate() {
                    f.write_str(if i == 0 { "" } else { ", " })?;
                    f.write_str(a)?;
                }
                f.write_str(".)")
            }
            Problem::DotDot => write!(f, "invalid path given '{v}'"),
            Problem::NotAbsolute => {
                write!(f, "option {k} {v}: '{v}' is not an absolute path name")
            }
        }
    }
}

impl core::error::Error for OptionError<'_> {}

fn is_c_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// Leading whitespace then `-`: the check upstream makes before unsigned conversions.
fn negative(s: &[u8]) -> bool {
    s.iter().find(|&&c| !is_c_space(c)) == Some(&b'-')
}

fn digit(c: u8, base: u32) -> Option<u32> {
    char::from(c).to_digit(base)
}

/// C `strtoll`/`strtoull` with base 0 or 10: the value (wrapped magnitude, sign), where parsing
/// stopped, and whether it overflowed `limit`. `None` when no digit was read.
fn strtoint(s: &[u8], base0: bool, limit: u128) -> Option<(bool, u128, usize, bool)> {
    let mut i = s.iter().take_while(|&&c| is_c_space(c)).count();
    let neg = match s.get(i) {
        Some(b'-') => {
            i += 1;
            true
        }
        Some(b'+') => {
            i += 1;
            false
        }
        _ => false,
    };
    let mut base = 10;
    if base0 && s.get(i) == Some(&b'0') {
        if matches!(s.get(i + 1), Some(b'x' | b'X'))
            && s.get(i + 2).and_then(|&c| digit(c, 16)).is_some()
        {
            base = 16;
            i += 2;
        } else {
            base = 8;
        }
    }
    let start = i;
    let mut v: u128 = 0;
    let mut over = false;
    while let Some(d) = s.get(i).and_then(|&c| digit(c, base)) {
        v = v
            .saturating_mul(u128::from(base))
            .saturating_add(u128::from(d));
        over |= v > limit;
        i += 1;
    }
    (i > start).then_some((neg, v, i, over))
}

/// C `strtod` on the longest decimal prefix: the value and where parsing stopped.
fn strtod(s: &[u8]) -> Option<(f64, usize)> {
    let mut i = s.iter().take_while(|&&c| is_c_space(c)).count();
    let start = i;
    if matches!(s.get(i), Some(b'+' | b'-')) {
        i += 1;
    }
    let int = s
        .get(i..)?
        .iter()
        .take_while(|c| c.is_ascii_digit())
        .count();
    i += int;
    let mut frac = 0;
    if s.get(i) == Some(&b'.') {
        frac = s
            .get(i + 1..)?
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count();
        if int + frac > 0 {
            i += 1 + frac;
        }
    }
    if int + frac == 0 {
        return None;
    }
    if matches!(s.get(i), Some(b'e' | b'E')) {
        let mut j = i + 1;
        if matches!(s.get(j), Some(b'+' | b'-')) {
            j += 1;
        }
        let exp = s
            .get(j..)?
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count();
        if exp > 0 {
            i = j + exp;
        }
    }
    let text = core::str::from_utf8(s.get(start..i)?).ok()?;
    let x: f64 = text.parse().ok()?;
    x.is_finite().then_some((x, i))
}

fn eq_ignore_case(a: &[u8], b: &str) -> bool {
    a.eq_ignore_ascii_case(b.as_bytes())
}

const UNITS: [(&str, u64); 5] = [
    ("KB", 1 << 10),
    ("MB", 1 << 20),
    ("GB", 1 << 30),
    ("TB", 1 << 40),
    ("PB", 1 << 50),
];

fn unit(tail: &[u8]) -> Option<u64> {
    UNITS
        .iter()
        .find(|(n, _)| eq_ignore_case(tail, n))
        .map(|&(_, m)| m)
}

/// `gf_string2longlong` plus the `-0` rule of the `Int` validator.
pub fn parse_int(s: &[u8]) -> Option<i64> {
    let (neg, mag, end, over) = strtoint(s, true, u128::from(u64::MAX))?;
    if end != s.len() {
        return None;
    }
    let v = if neg {
        if over || mag > u128::from(i64::MIN.unsigned_abs()) {
            return None;
        }
        0i64.checked_sub_unsigned(u64::try_from(mag).ok()?)?
    } else {
        if over || mag > i64::MAX as u128 {
            return None;
        }
        i64::try_from(mag).ok()?
    };
    // Upstream re-reads a zero as unsigned, which refuses any leading '-'.
    if v == 0 && negative(s) {
        return None;
    }
    Some(v)
}

/// `gf_string2bytesize_uint64`: bytes, suffix `B`/`KB`/.../`PB` in any case, fractions allowed.
pub fn parse_size(s: &[u8]) -> Option<u64> {
    if negative(s) {
        return None;
    }
    let fraction = s.contains(&b'.');
    let (value, end) = if fraction {
        let (x, end) = strtod(s)?;
        (Err(x), end)
    } else {
        let (neg, mag, end, over) = strtoint(s, false, i64::MAX as u128)?;
        if over || neg {
            return None;
        }
        (Ok(u64::try_from(mag).ok()?), end)
    };
    let tail = s.get(end..).unwrap_or_default();
    let mul = if tail.is_empty() || eq_ignore_case(tail, "B") {
        1
    } else {
        unit(tail)?
    };
    match value {
        Ok(n) => n.checked_mul(mul).filter(|&n| n <= i64::MAX as u64),
        Err(x) => {
            let x = x * mul as f64;
            // A double as large as i64::MAX rounds up to 2^63, which upstream lets through.
            (0.0..=9_223_372_036_854_775_808.0)
                .contains(&x)
                .then_some(x as u64)
        }
    }
}

/// `gf_string2percent`: `N` or `N%`.
pub fn parse_percent(s: &[u8]) -> Option<f64> {
    if negative(s) {
        return None;
    }
    let (x, end) = strtod(s)?;
    let tail = s.get(end..).unwrap_or_default();
    (tail.is_empty() || tail == b"%").then_some(x)
}

/// `gf_string2percent_or_bytesize`: the value and whether it was a percentage.
pub fn parse_percent_or_size(s: &[u8]) -> Option<(f64, bool)> {
    if negative(s) {
        return None;
    }
    let (x, end) = strtod(s)?;
    let tail = s.get(end..).unwrap_or_default();
    if tail.is_empty() {
        Some((x, false))
    } else if tail == b"%" {
        Some((x, true))
    } else {
        unit(tail).map(|m| (x * m as f64, false))
    }
}

/// `gf_string2boolean`.
pub fn parse_bool(s: &[u8]) -> Option<bool> {
    const YES: [&str; 5] = ["1", "on", "yes", "true", "enable"];
    const NO: [&str; 5] = ["0", "off", "no", "false", "disable"];
    if YES.iter().any(|y| eq_ignore_case(s, y)) {
        Some(true)
    } else if NO.iter().any(|n| eq_ignore_case(s, n)) {
        Some(false)
    } else {
        None
    }
}

/// `gf_string2time`: seconds.
pub fn parse_time(s: &[u8]) -> Option<u64> {
    if negative(s) {
        return None;
    }
    let (neg, mag, end, over) = strtoint(s, true, i64::MAX as u128)?;
    if over || neg {
        return None;
    }
    let v = u64::try_from(mag).ok()?;
    let mul = match s.get(end..).unwrap_or_default() {
        b"" | b"s" | b"sec" => 1,
        b"m" | b"min" => 60,
        b"h" | b"hr" => 3600,
        b"d" | b"days" => 86_400,
        b"w" | b"wk" => 604_800,
        _ => return None,
    };
    Some(v.wrapping_mul(mul))
}

/// `uuid_parse` (libuuid, as `gf_uuid_parse` calls it): exactly 36 characters, hex digits with
/// hyphens at 8, 13, 18 and 23.
pub fn parse_uuid(s: &[u8]) -> Option<[u8; 16]> {
    if s.len() != 36 {
        return None;
    }
    let mut out = [0u8; 16];
    let mut n = 0;
    let mut i = 0;
    while i < 36 {
        if matches!(i, 8 | 13 | 18 | 23) {
            if s.get(i) != Some(&b'-') {
                return None;
            }
            i += 1;
            continue;
        }
        let hi = digit(*s.get(i)?, 16)?;
        let lo = digit(*s.get(i + 1)?, 16)?;
        *out.get_mut(n)? = u8::try_from(hi * 16 + lo).ok()?;
        n += 1;
        i += 2;
    }
    Some(out)
}

/// `gf_string2double`.
pub fn parse_double(s: &[u8]) -> Option<f64> {
    let (x, end) = strtod(s)?;
    (end == s.len()).then_some(x)
}

/// Checks `value` against `spec` as `xlator_option_validate` does and returns it typed.
/// `is_volume` answers whether a name belongs to a volume of the graph (for `Xlator`).
pub fn validate<'a>(
    spec: &OptionSpec,
    key: Word<'a>,
    value: Word<'a>,
    is_volume: impl Fn(&Word<'a>) -> bool,
) -> Result<Value<'a>, OptionError<'a>> {
    let fail = |problem| OptionError {
        key,
        value,
        problem,
    };
    // Every number fits in far fewer bytes; a longer value is not a number.
    let mut buf = [0u8; 128];
    let text = value.decode_into(&mut buf);
    let (min, max) = (spec.min, spec.max);
    let no_range = min == 0.0 && max == 0.0;
    match spec.ty {
        OptionType::Any => Ok(Value::Text(value)),
        OptionType::Str => {
            if spec.values.is_empty() {
                return Ok(Value::Text(value));
            }
            let all_spaces = value.bytes().all(|c| c == b' ');
            if !all_spaces && spec.values.iter().any(|a| value.eq_bytes(a.as_bytes())) {
                Ok(Value::Text(value))
            } else {
                Err(fail(Problem::NotAllowed(spec.values)))
            }
        }
        OptionType::Int => {
            let n = text.and_then(parse_int).ok_or(fail(Problem::BadNumber))?;
            let x = n as f64;
            let bad = match spec.validate {
                Validate::Both if no_range => None,
                Validate::Min => (x < min).then_some(Problem::BelowMin(Num::Int(n), min)),
                Validate::Max => (x > max).then_some(Problem::AboveMax(Num::Int(n), max)),
                Validate::Both => {
                    (x < min || x > max).then_some(Problem::OutOfRange(Num::Int(n), min, max))
                }
            };
            bad.map_or(Ok(Value::Int(n)), |p| Err(fail(p)))
        }
        OptionType::SizeT => {
            let n = text.and_then(parse_size).ok_or(fail(Problem::BadNumber))?;
            let x = n as f64;
            if !no_range && (x < min || x > max) {
                return Err(fail(Problem::OutOfRange(Num::Uint(n), min, max)));
            }
            Ok(Value::Size(n))
        }
        OptionType::Percent => {
            let x = text
                .and_then(parse_percent)
                .ok_or(fail(Problem::BadPercent))?;
            if !(0.0..=100.0).contains(&x) {
                return Err(fail(Problem::OutOfRange(Num::Float(x), 0.0, 100.0)));
            }
            Ok(Value::Percent(x))
        }
        OptionType::PercentOrSizeT => {
            let (x, percent) = text
                .and_then(parse_percent_or_size)
                .ok_or(fail(Problem::BadNumber))?;
            if percent {
                if !(0.0..=100.0).contains(&x) {
                    return Err(fail(Problem::OutOfRange(Num::Float(x), 0.0, 100.0)));
                }
                return Ok(Value::Percent(x));
            }
            // Upstream refuses anything but zeros after the first '.', suffix included.
            let t = text.unwrap_or_default();
            if let Some(dot) = t.iter().position(|&c| c == b'.') {
                if t.get(dot + 1..)
                    .unwrap_or_default()
                    .iter()
                    .any(|&c| c != b'0')
                {
                    return Err(fail(Problem::Fractional(x)));
                }
            }
            if !no_range && (x < min || x > max) {
                return Err(fail(Problem::OutOfRange(Num::Float(x), min, max)));
            }
            Ok(Value::PercentOrSize(x))
        }
        OptionType::Bool => text
            .and_then(parse_bool)
            .map(Value::Bool)
            .ok_or(fail(Problem::NotBool)),
        OptionType::Xlator => {
            if is_volume(&value) {
                Ok(Value::Text(value))
            } else {
                Err(fail(Problem::NotVolume))
            }
        }
        OptionType::Path => {
            let mut prev = [0u8; 2];
            let mut dotdot = false;
            for c in value.bytes() {
                dotdot |= prev == *b".." && c == b'/';
                prev = [prev[1], c];
            }
            if dotdot {
                Err(fail(Problem::DotDot))
            } else if value.bytes().next() != Some(b'/') {
                Err(fail(Problem::NotAbsolute))
            } else {
                Ok(Value::Text(value))
            }
        }
        OptionType::Time => {
            let n = text.and_then(parse_time).ok_or(fail(Problem::BadTime))?;
            let x = n as f64;
            if !no_range && (x < min || x > max) {
                return Err(fail(Problem::OutOfRange(Num::Uint(n), min, max)));
            }
            Ok(Value::Time(n))
        }
        OptionType::Double => {
            let x = text
                .and_then(parse_double)
                .ok_or(fail(Problem::BadNumber))?;
            let bad = match spec.validate {
                Validate::Both if no_range => None,
                Validate::Min => (x < min).then_some(Problem::BelowMin(Num::Float(x), min)),
                Validate::Max => (x > max).then_some(Problem::AboveMax(Num::Float(x), max)),
                Validate::Both => {
                    (x < min || x > max).then_some(Problem::OutOfRange(Num::Float(x), min, max))
                }
            };
            bad.map_or(Ok(Value::Double(x)), |p| Err(fail(p)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::ToString;

    fn check(spec: OptionSpec, v: &str) -> Result<Value<'_>, std::string::String> {
        validate(&spec, Word::bare(b"k"), Word::bare(v.as_bytes()), |w| {
            w.eq_bytes(b"vol")
        })
        .map_err(|e| e.to_string())
    }

    #[test]
    fn integers_as_strtoll_base_0() {
        assert_eq!(parse_int(b"42"), Some(42));
        assert_eq!(parse_int(b"0x1f"), Some(31));
        assert_eq!(parse_int(b"0777"), Some(511));
        assert_eq!(parse_int(b" -5"), Some(-5));
        assert_eq!(parse_int(b"-0"), None);
        assert_eq!(parse_int(b"09"), None);
        assert_eq!(parse_int(b"0x"), None);
        assert_eq!(parse_int(b"12a"), None);
        assert_eq!(parse_int(b"9223372036854775808"), None);
        assert_eq!(parse_int(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_int(b""), None);
    }

    #[test]
    fn uuids() {
        let u = parse_uuid(b"0123abcd-4567-89ab-CDEF-0123456789ab").unwrap();
        assert_eq!(u[0], 0x01);
        assert_eq!(u[15], 0xab);
        assert!(parse_uuid(b"0123abcd-4567-89ab-CDEF-0123456789a").is_none());
        assert!(parse_uuid(b"0123abcd+4567-89ab-CDEF-0123456789ab").is_none());
        assert!(parse_uuid(b"0123abcg-4567-89ab-CDEF-0123456789ab").is_none());
    }

    #[test]
    fn sizes_with_suffixes() {
        assert_eq!(parse_size(b"1MB"), Some(1 << 20));
        assert_eq!(parse_size(b"512kb"), Some(512 << 10));
        assert_eq!(parse_size(b"7B"), Some(7));
        assert_eq!(parse_size(b"1.5KB"), Some(1536));
        assert_eq!(parse_size(b"1M"), None);
        assert_eq!(parse_size(b"-1"), None);
        assert_eq!(parse_size(b"010"), Some(10));
        assert_eq!(parse_size(b"99999999PB"), None);
    }

    #[test]
    fn validation_messages_are_upstreams() {
        let wb = OptionSpec::new(&["cache-size", "window-size"], OptionType::SizeT)
            .range(512.0 * 1024.0, 1024.0 * 1024.0 * 1024.0);
        assert_eq!(check(wb, "2MB"), Ok(Value::Size(2 << 20)));
        assert_eq!(
            check(wb, "1KB").unwrap_err(),
            "'1024' in 'option k 1KB' is out of range [524288 - 1073741824]"
        );
        let b = OptionSpec::new(&["x"], OptionType::Bool);
        assert_eq!(check(b, "ENABLE"), Ok(Value::Bool(true)));
        assert_eq!(
            check(b, "maybe").unwrap_err(),
            "option k maybe: 'maybe' is not a valid boolean value"
        );
        let i = OptionSpec::new(&["x"], OptionType::Int).at_least(1.0);
        assert_eq!(
            check(i, "0").unwrap_err(),
            "'0' in 'option k 0' is smaller than minimum value '1'"
        );
        assert_eq!(
            check(i, "x").unwrap_err(),
            "invalid number format \"x\" in option \"k\""
        );
        let s = OptionSpec::new(&["x"], OptionType::Str).values(&["none", "auto"]);
        assert_eq!(
            check(s, "AUTO").unwrap_err(),
            "option k AUTO: 'AUTO' is not valid (possible options are none, auto.)"
        );
        let p = OptionSpec::new(&["x"], OptionType::Path);
        assert_eq!(
            check(p, "/a/../b").unwrap_err(),
            "invalid path given '/a/../b'"
        );
        assert_eq!(
            check(p, "a").unwrap_err(),
            "option k a: 'a' is not an absolute path name"
        );
        let x = OptionSpec::new(&["x"], OptionType::Xlator);
        assert!(check(x, "vol").is_ok());
        assert_eq!(
            check(x, "nope").unwrap_err(),
            "option k nope: 'nope' is not a valid volume name"
        );
        let pos = OptionSpec::new(&["x"], OptionType::PercentOrSizeT);
        assert_eq!(check(pos, "10%"), Ok(Value::Percent(10.0)));
        assert_eq!(check(pos, "2GB"), Ok(Value::PercentOrSize(2147483648.0)));
        assert!(check(pos, "1.5MB").unwrap_err().contains("fractional"));
        assert_eq!(
            check(pos, "101%").unwrap_err(),
            "'101.000000' in 'option k 101%' is out of range [0 - 100]"
        );
        let t = OptionSpec::new(&["x"], OptionType::Time).range(30.0, 300.0);
        assert_eq!(check(t, "2min"), Ok(Value::Time(120)));
        assert!(check(t, "1h").unwrap_err().contains("out of range"));
    }

    #[test]
    fn keys_are_globs_and_aliases_are_found() {
        const T: &[OptionSpec] = &[
            OptionSpec::new(&["cache-size", "window-size"], OptionType::SizeT),
            OptionSpec::new(&["auth.addr.*.allow"], OptionType::Any),
        ];
        assert_eq!(
            lookup(T, &Word::bare(b"window-size")).map(|x| x.1),
            Some(false)
        );
        assert_eq!(
            lookup(T, &Word::bare(b"cache-size")).map(|x| x.1),
            Some(true)
        );
        assert!(lookup(T, &Word::bare(b"auth.addr./b.allow")).is_some());
        assert!(lookup(T, &Word::bare(b"other")).is_none());
        assert!(glob(b"a*b*c", b"aXXbYc"));
        assert!(!glob(b"a*b", b"aXc"));
    }
}
