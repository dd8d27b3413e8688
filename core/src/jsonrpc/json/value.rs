//! Views over validated JSON: strings keep their escapes until read, containers are walked
//! lazily, nothing is copied.

use core::fmt;

use crate::config::{Overflow, Sink};

use super::validate::*;

/// Parses one JSON document (top level an object or array, §3.2) into a view.
pub fn parse(b: &[u8]) -> Result<Value<'_>, JsonError> {
    parse_with_depth(b, MAX_DEPTH)
}

/// As [`parse`], with a lower nesting limit.
pub fn parse_with_depth(b: &[u8], max_depth: usize) -> Result<Value<'_>, JsonError> {
    validate(b, max_depth)?;
    Ok(read_value(b, skip_ws(b, 0)).0)
}

/// A view of one JSON value inside validated text.
#[derive(Clone, Copy, Debug)]
pub enum Value<'a> {
    /// `null`.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// A number, as written.
    Number(Number<'a>),
    /// A string.
    String(Str<'a>),
    /// An array.
    Array(Array<'a>),
    /// An object.
    Object(Object<'a>),
}

/// A number's text, as written (OVS prints integers as 64-bit decimal, §3.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Number<'a>(pub(super) &'a [u8]);

/// A string's raw contents between the quotes, escapes still in place.
#[derive(Clone, Copy, Debug)]
pub struct Str<'a>(pub(super) &'a [u8]);

/// An array's text, brackets included.
#[derive(Clone, Copy, Debug)]
pub struct Array<'a>(pub(super) &'a [u8]);

/// An object's text, braces included.
#[derive(Clone, Copy, Debug)]
pub struct Object<'a>(pub(super) &'a [u8]);

/// Index just past the value at `i` in validated text (no recursion: brackets are counted,
/// strings skipped). Malformed text ends the walk at the end of the input rather than panic.
pub(super) fn skip_value(b: &[u8], i: usize) -> usize {
    let mut depth = 0usize;
    let mut j = i;
    while let Some(&c) = b.get(j) {
        match c {
            b'"' => {
                j += 1;
                while let Some(&c) = b.get(j) {
                    j += if c == b'\\' { 2 } else { 1 };
                    if c == b'"' {
                        break;
                    }
                }
                if depth == 0 {
                    return j;
                }
                continue;
            }
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                if depth == 0 {
                    return j;
                }
                depth -= 1;
                if depth == 0 {
                    return j + 1;
                }
            }
            b',' | b':' | b' ' | b'\t' | b'\n' | b'\r' if depth == 0 => return j,
            _ => {}
        }
        j += 1;
    }
    b.len()
}

/// The value starting at `i` (no leading whitespace) in validated text, and the index after it.
pub(super) fn read_value(b: &[u8], i: usize) -> (Value<'_>, usize) {
    let i = i.min(b.len());
    let end = skip_value(b, i).max(i).min(b.len());
    let text = &b[i..end];
    let v = match text.first() {
        Some(b'{') => Value::Object(Object(text)),
        Some(b'[') => Value::Array(Array(text)),
        Some(b'"') => Value::String(Str(text
            .get(1..text.len().saturating_sub(1))
            .unwrap_or(&[]))),
        Some(b't') => Value::Bool(true),
        Some(b'f') => Value::Bool(false),
        Some(b'-' | b'0'..=b'9') => Value::Number(Number(text)),
        _ => Value::Null,
    };
    (v, end)
}

impl<'a> Value<'a> {
    /// True for `null`, which JSON-RPC treats as an absent member (§3.3).
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }
    /// The string, if this is one.
    pub fn as_str(&self) -> Option<Str<'a>> {
        match *self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }
    /// The array, if this is one.
    pub fn as_array(&self) -> Option<Array<'a>> {
        match *self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }
    /// The object, if this is one.
    pub fn as_object(&self) -> Option<Object<'a>> {
        match *self {
            Value::Object(o) => Some(o),
            _ => None,
        }
    }
    /// The integer, if this is a number written as one that fits 64 bits.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Number(n) => n.as_i64(),
            _ => None,
        }
    }
    /// The JSON type's name, as OVS's messages spell it.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(false) => "false",
            Value::Bool(true) => "true",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::Array(_) => "array",
            Value::Object(_) => "object",
        }
    }
    pub(super) fn text_parts(&self) -> Tokens<'a> {
        match *self {
            Value::Array(Array(t)) | Value::Object(Object(t)) => Tokens { b: t, i: 0 },
            _ => Tokens { b: &[], i: 0 },
        }
    }
}

/// Two values are equal when they have the same structure, member order included, the same
/// decoded strings and the same number texts. Compared token by token, without recursion.
impl PartialEq for Value<'_> {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Value::Null, Value::Null) => true,
            (Value::Bool(a), Value::Bool(b)) => a == b,
            (Value::Number(a), Value::Number(b)) => a == b,
            (Value::String(a), Value::String(b)) => a == b,
            (Value::Array(_), Value::Array(_)) | (Value::Object(_), Value::Object(_)) => {
                self.text_parts().eq(other.text_parts())
            }
            _ => false,
        }
    }
}

/// A lexical token of validated text; whitespace is dropped.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Token<'a> {
    Punct(u8),
    Str(Str<'a>),
    Word(&'a [u8]),
}

pub(super) struct Tokens<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Iterator for Tokens<'a> {
    type Item = Token<'a>;
    fn next(&mut self) -> Option<Token<'a>> {
        self.i = skip_ws(self.b, self.i);
        let c = *self.b.get(self.i)?;
        let start = self.i;
        if matches!(c, b'{' | b'}' | b'[' | b']' | b',' | b':') {
            self.i += 1;
            return Some(Token::Punct(c));
        }
        let end = skip_value(self.b, start).max(start + 1).min(self.b.len());
        self.i = end;
        let t = &self.b[start..end];
        Some(if c == b'"' {
            Token::Str(Str(t.get(1..t.len().saturating_sub(1)).unwrap_or(&[])))
        } else {
            Token::Word(t)
        })
    }
}

impl<'a> Number<'a> {
    /// The text as written.
    pub fn text(&self) -> &'a [u8] {
        self.0
    }
    /// The value, when written as an integer that fits 64 bits.
    pub fn as_i64(&self) -> Option<i64> {
        core::str::from_utf8(self.0).ok()?.parse().ok()
    }
}

impl<'a> Str<'a> {
    /// `""`.
    pub const EMPTY: Str<'static> = Str(b"");
    /// The raw contents (escapes not decoded).
    pub fn raw(&self) -> &'a [u8] {
        self.0
    }
    /// The text without copying, when it has no escapes.
    pub fn as_plain(&self) -> Option<&'a str> {
        if self.0.contains(&b'\\') {
            return None;
        }
        core::str::from_utf8(self.0).ok()
    }
    /// The decoded characters.
    pub fn chars(&self) -> StrChars<'a> {
        StrChars { b: self.0, i: 0 }
    }
    /// True when the decoded text is `s`.
    pub fn eq_str(&self, s: &str) -> bool {
        match self.as_plain() {
            Some(p) => p == s,
            None => self.chars().eq(s.chars()),
        }
    }
    /// Writes the decoded text as UTF-8.
    pub fn decode_into<W: Sink>(&self, out: &mut W) -> Result<(), Overflow> {
        let mut tmp = [0u8; 4];
        for c in self.chars() {
            out.put(c.encode_utf8(&mut tmp).as_bytes())?;
        }
        Ok(())
    }
}

impl PartialEq for Str<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0 || self.chars().eq(other.chars())
    }
}

impl fmt::Display for Str<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use fmt::Write;
        self.chars().try_for_each(|c| f.write_char(c))
    }
}

/// Decoded characters of a [`Str`].
pub struct StrChars<'a> {
    b: &'a [u8],
    i: usize,
}

impl StrChars<'_> {
    fn hex(&self, at: usize) -> u32 {
        self.b
            .get(at..at + 4)
            .and_then(|h| core::str::from_utf8(h).ok())
            .and_then(|h| u32::from_str_radix(h, 16).ok())
            .unwrap_or(0xfffd)
    }
}

impl Iterator for StrChars<'_> {
    type Item = char;
    fn next(&mut self) -> Option<char> {
        let rest = self.b.get(self.i..)?;
        let &c = rest.first()?;
        if c != b'\\' {
            // Validated text is UTF-8; take one whole character.
            let len = match c {
                0..=0x7f => 1,
                0xc0..=0xdf => 2,
                0xe0..=0xef => 3,
                _ => 4,
            };
            self.i += len;
            let ch = rest
                .get(..len)
                .and_then(|s| core::str::from_utf8(s).ok())
                .and_then(|s| s.chars().next());
            return Some(ch.unwrap_or(char::REPLACEMENT_CHARACTER));
        }
        let e = rest.get(1).copied().unwrap_or(b'\\');
        self.i += 2;
        let ch = match e {
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let hi = self.hex(self.i);
                self.i += 4;
                if (0xd800..0xdc00).contains(&hi) {
                    let lo = self.hex(self.i + 2);
                    self.i += 6;
                    0x10000 + ((hi - 0xd800) << 10) + (lo.wrapping_sub(0xdc00) & 0x3ff)
                } else {
                    hi
                }
                .try_into()
                .unwrap_or(char::REPLACEMENT_CHARACTER)
            }
            other => other as char,
        };
        Some(ch)
    }
}

impl PartialEq for Array<'_> {
    fn eq(&self, other: &Self) -> bool {
        Value::Array(*self) == Value::Array(*other)
    }
}

impl PartialEq for Object<'_> {
    fn eq(&self, other: &Self) -> bool {
        Value::Object(*self) == Value::Object(*other)
    }
}

impl<'a> Array<'a> {
    /// `[]`.
    pub const EMPTY: Array<'static> = Array(b"[]");
    /// The elements in order.
    pub fn iter(&self) -> Elements<'a> {
        Elements { b: self.0, i: 1 }
    }
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.iter().count()
    }
    /// True for `[]`.
    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }
    /// The `n`th element.
    pub fn get(&self, n: usize) -> Option<Value<'a>> {
        self.iter().nth(n)
    }
    /// The array's text as received.
    pub fn text(&self) -> &'a [u8] {
        self.0
    }
}

/// Elements of an [`Array`].
pub struct Elements<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Iterator for Elements<'a> {
    type Item = Value<'a>;
    fn next(&mut self) -> Option<Value<'a>> {
        let i = skip_ws(self.b, self.i);
        if matches!(self.b.get(i), None | Some(b']')) {
            self.i = self.b.len();
            return None;
        }
        let (v, end) = read_value(self.b, i);
        let end = skip_ws(self.b, end);
        // Step over the comma, if any.
        self.i = end + usize::from(self.b.get(end) == Some(&b','));
        Some(v)
    }
}

impl<'a> Object<'a> {
    /// The members in order (a repeated name appears each time).
    pub fn iter(&self) -> Members<'a> {
        Members { b: self.0, i: 1 }
    }
    /// The value of member `name`; the last one wins if it is repeated, as in OVS's parser.
    pub fn get(&self, name: &str) -> Option<Value<'a>> {
        self.iter()
            .filter(|(k, _)| k.eq_str(name))
            .last()
            .map(|(_, v)| v)
    }
    /// The object's text as received.
    pub fn text(&self) -> &'a [u8] {
        self.0
    }
}

/// Members of an [`Object`].
pub struct Members<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Iterator for Members<'a> {
    type Item = (Str<'a>, Value<'a>);
    fn next(&mut self) -> Option<Self::Item> {
        let i = skip_ws(self.b, self.i);
        if self.b.get(i) != Some(&b'"') {
            self.i = self.b.len();
            return None;
        }
        let (k, end) = read_value(self.b, i);
        let key = k.as_str()?;
        let colon = skip_ws(self.b, end);
        let (v, end) = read_value(self.b, skip_ws(self.b, colon + 1));
        let end = skip_ws(self.b, end);
        self.i = end + usize::from(self.b.get(end) == Some(&b','));
        Some((key, v))
    }
}
