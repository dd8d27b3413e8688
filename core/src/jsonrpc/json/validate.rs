//! The syntax check: one whole document, nesting in a bit stack, typed errors with offsets.

use core::fmt;

/// OVS's nesting limit (§3.2): 1000 open containers parse, the 1001st is an error.
pub const MAX_DEPTH: usize = 1000;

/// Where the input stopped being JSON.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct JsonError {
    /// Byte offset in the parsed text.
    pub offset: usize,
    /// What was wrong there.
    pub kind: JsonErrorKind,
}

/// What made a text invalid JSON.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum JsonErrorKind {
    /// A message must start with `{` or `[` (§3.2: a scalar top level is refused).
    NotContainer,
    /// A byte that cannot appear here.
    UnexpectedByte(u8),
    /// The text ended inside a value.
    UnexpectedEnd,
    /// A bare word other than `true`, `false`, `null`.
    InvalidKeyword,
    /// A number that breaks the JSON grammar (including leading zeros).
    InvalidNumber,
    /// A backslash escape other than `\" \\ \/ \b \f \n \r \t \uXXXX`.
    InvalidEscape,
    /// `\u` not followed by four hex digits.
    InvalidUnicodeEscape,
    /// A UTF-16 surrogate escape without its other half.
    InvalidSurrogate,
    /// `\u0000`: OVS strings are C strings and cannot hold a NUL.
    NulInString,
    /// A raw control character (below 0x20) inside a string.
    ControlInString,
    /// String bytes that are not UTF-8.
    InvalidUtf8,
    /// More than `max` containers open at once.
    TooDeep {
        /// The limit in force.
        max: usize,
    },
    /// Something other than whitespace after the value.
    TrailingBytes,
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "byte {}: ", self.offset)?;
        match self.kind {
            JsonErrorKind::NotContainer => f.write_str("syntax error at beginning of input"),
            JsonErrorKind::UnexpectedByte(b) => write!(f, "unexpected byte 0x{b:02x}"),
            JsonErrorKind::UnexpectedEnd => f.write_str("unexpected end of input"),
            JsonErrorKind::InvalidKeyword => f.write_str("invalid keyword"),
            JsonErrorKind::InvalidNumber => f.write_str("invalid number"),
            JsonErrorKind::InvalidEscape => f.write_str("bad escape in string"),
            JsonErrorKind::InvalidUnicodeEscape => f.write_str("malformed \\u escape"),
            JsonErrorKind::InvalidSurrogate => f.write_str("invalid UTF-16 surrogate pair"),
            JsonErrorKind::NulInString => f.write_str("null bytes not supported in quoted strings"),
            JsonErrorKind::ControlInString => f.write_str("U+0000 to U+001F must be escaped"),
            JsonErrorKind::InvalidUtf8 => f.write_str("invalid UTF-8 in string"),
            JsonErrorKind::TooDeep { max } => {
                write!(f, "input exceeds maximum nesting depth {max}")
            }
            JsonErrorKind::TrailingBytes => f.write_str("trailing garbage at end of input"),
        }
    }
}

impl core::error::Error for JsonError {}

fn err<T>(offset: usize, kind: JsonErrorKind) -> Result<T, JsonError> {
    Err(JsonError { offset, kind })
}

/// JSON whitespace; exactly the set OVS skips (§3.2).
pub(crate) fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

pub(super) fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while b.get(i).copied().is_some_and(is_ws) {
        i += 1;
    }
    i
}

/// One bit per open container: set for an object. Sized for [`MAX_DEPTH`].
struct Nesting {
    bits: [u64; MAX_DEPTH.div_ceil(64)],
    depth: usize,
    max: usize,
}

impl Nesting {
    fn push(&mut self, object: bool, at: usize) -> Result<(), JsonError> {
        if self.depth >= self.max {
            return err(at, JsonErrorKind::TooDeep { max: self.max });
        }
        let (w, b) = (self.depth / 64, self.depth % 64);
        if object {
            self.bits[w] |= 1 << b;
        } else {
            self.bits[w] &= !(1 << b);
        }
        self.depth += 1;
        Ok(())
    }
    fn top_is_object(&self) -> bool {
        let d = self.depth - 1;
        self.bits[d / 64] & (1 << (d % 64)) != 0
    }
}

/// Validates one document: a single value with optional surrounding whitespace. The top level
/// must be an object or array (§3.2). `max_depth` is capped at [`MAX_DEPTH`].
pub fn validate(b: &[u8], max_depth: usize) -> Result<(), JsonError> {
    let start = skip_ws(b, 0);
    match b.get(start) {
        Some(b'{' | b'[') => {}
        _ => return err(start, JsonErrorKind::NotContainer),
    }
    let end = validate_value(b, start, max_depth.min(MAX_DEPTH))?;
    let end = skip_ws(b, end);
    if end != b.len() {
        return err(end, JsonErrorKind::TrailingBytes);
    }
    Ok(())
}

/// Validates the value at `i` (after whitespace) and returns the index just past it.
pub(super) fn validate_value(b: &[u8], mut i: usize, max: usize) -> Result<usize, JsonError> {
    let mut n = Nesting {
        bits: [0; MAX_DEPTH.div_ceil(64)],
        depth: 0,
        max,
    };
    loop {
        // A value is expected at `i`.
        i = skip_ws(b, i);
        match b.get(i) {
            None => return err(i, JsonErrorKind::UnexpectedEnd),
            Some(&c @ (b'{' | b'[')) => {
                let object = c == b'{';
                n.push(object, i)?;
                i = skip_ws(b, i + 1);
                let close = if object { b'}' } else { b']' };
                if b.get(i) == Some(&close) {
                    n.depth -= 1;
                    i += 1;
                } else if object {
                    i = member_key(b, i)?;
                    continue;
                } else {
                    continue;
                }
            }
            Some(b'"') => i = scan_string(b, i)?,
            Some(b'-' | b'0'..=b'9') => i = scan_number(b, i)?,
            Some(c) if c.is_ascii_alphabetic() => {
                let end = i + b[i..]
                    .iter()
                    .take_while(|c| c.is_ascii_alphabetic())
                    .count();
                if !matches!(&b[i..end], b"true" | b"false" | b"null") {
                    return err(i, JsonErrorKind::InvalidKeyword);
                }
                i = end;
            }
            Some(&c) => return err(i, JsonErrorKind::UnexpectedByte(c)),
        }
        // A value just ended: close containers until one wants another element.
        loop {
            if n.depth == 0 {
                return Ok(i);
            }
            i = skip_ws(b, i);
            let object = n.top_is_object();
            match b.get(i) {
                None => return err(i, JsonErrorKind::UnexpectedEnd),
                Some(b',') => {
                    i += 1;
                    if object {
                        i = member_key(b, skip_ws(b, i))?;
                    }
                    break;
                }
                Some(b'}') if object => {
                    n.depth -= 1;
                    i += 1;
                }
                Some(b']') if !object => {
                    n.depth -= 1;
                    i += 1;
                }
                Some(&c) => return err(i, JsonErrorKind::UnexpectedByte(c)),
            }
        }
    }
}

/// `"key" :` at `i`; returns the index after the colon.
pub(super) fn member_key(b: &[u8], i: usize) -> Result<usize, JsonError> {
    match b.get(i) {
        Some(b'"') => {}
        Some(&c) => return err(i, JsonErrorKind::UnexpectedByte(c)),
        None => return err(i, JsonErrorKind::UnexpectedEnd),
    }
    let i = skip_ws(b, scan_string(b, i)?);
    match b.get(i) {
        Some(b':') => Ok(i + 1),
        Some(&c) => err(i, JsonErrorKind::UnexpectedByte(c)),
        None => err(i, JsonErrorKind::UnexpectedEnd),
    }
}

pub(super) fn hex4(b: &[u8], i: usize) -> Result<u32, JsonError> {
    let mut v = 0;
    for k in 0..4 {
        let d = b
            .get(i + k)
            .and_then(|&c| (c as char).to_digit(16))
            .ok_or(JsonError {
                offset: i + k,
                kind: JsonErrorKind::InvalidUnicodeEscape,
            })?;
        v = v * 16 + d;
    }
    Ok(v)
}

/// Validates the string whose opening quote is at `i`; returns the index after its closing
/// quote.
pub(super) fn scan_string(b: &[u8], i: usize) -> Result<usize, JsonError> {
    let start = i + 1;
    let mut j = start;
    loop {
        match b.get(j) {
            None => return err(j, JsonErrorKind::UnexpectedEnd),
            Some(b'"') => break,
            Some(b'\\') => match b.get(j + 1) {
                None => return err(j + 1, JsonErrorKind::UnexpectedEnd),
                Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => j += 2,
                Some(b'u') => {
                    let u = hex4(b, j + 2)?;
                    match u {
                        0 => return err(j, JsonErrorKind::NulInString),
                        0xd800..=0xdbff => {
                            // A high surrogate must be followed by an escaped low one.
                            let low = if b.get(j + 6..j + 8) == Some(b"\\u") {
                                hex4(b, j + 8)?
                            } else {
                                0
                            };
                            if !(0xdc00..=0xdfff).contains(&low) {
                                return err(j, JsonErrorKind::InvalidSurrogate);
                            }
                            j += 12;
                        }
                        0xdc00..=0xdfff => return err(j, JsonErrorKind::InvalidSurrogate),
                        _ => j += 6,
                    }
                }
                Some(_) => return err(j, JsonErrorKind::InvalidEscape),
            },
            Some(&c) if c < 0x20 => return err(j, JsonErrorKind::ControlInString),
            Some(_) => j += 1,
        }
    }
    // Escapes are ASCII, so the raw contents are UTF-8 exactly when the string is.
    if let Err(e) = core::str::from_utf8(&b[start..j]) {
        return err(start + e.valid_up_to(), JsonErrorKind::InvalidUtf8);
    }
    Ok(j + 1)
}

/// Validates the number at `i`: `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`.
pub(super) fn scan_number(b: &[u8], i: usize) -> Result<usize, JsonError> {
    let digits = |j: usize| {
        j + b[j.min(b.len())..]
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count()
    };
    let mut j = i;
    if b.get(j) == Some(&b'-') {
        j += 1;
    }
    let int_end = digits(j);
    if int_end == j || (b[j] == b'0' && int_end > j + 1) {
        return err(i, JsonErrorKind::InvalidNumber);
    }
    j = int_end;
    if b.get(j) == Some(&b'.') {
        let e = digits(j + 1);
        if e == j + 1 {
            return err(i, JsonErrorKind::InvalidNumber);
        }
        j = e;
    }
    if matches!(b.get(j), Some(b'e' | b'E')) {
        j += 1;
        if matches!(b.get(j), Some(b'+' | b'-')) {
            j += 1;
        }
        let e = digits(j);
        if e == j {
            return err(i, JsonErrorKind::InvalidNumber);
        }
        j = e;
    }
    // "1x" or "1true" would otherwise split into two tokens.
    if b.get(j).is_some_and(|c| c.is_ascii_alphanumeric()) {
        return err(i, JsonErrorKind::InvalidNumber);
    }
    Ok(j)
}
