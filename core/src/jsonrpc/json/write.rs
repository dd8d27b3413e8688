//! Compact JSON output, as OVS's C senders write it.

use crate::config::{Overflow, Sink};

use super::value::*;

/// Something that can be written as JSON into a [`Sink`].
pub trait ToJson {
    /// Writes compact JSON (no whitespace), as OVS's C senders do (§3.2).
    fn write_json(&self, out: &mut dyn Sink) -> Result<(), Overflow>;
}

impl ToJson for Value<'_> {
    fn write_json(&self, out: &mut dyn Sink) -> Result<(), Overflow> {
        match self {
            Value::Null => out.put(b"null"),
            Value::Bool(true) => out.put(b"true"),
            Value::Bool(false) => out.put(b"false"),
            Value::Number(n) => out.put(n.0),
            Value::String(s) => s.write_json(out),
            Value::Array(_) | Value::Object(_) => {
                for t in self.text_parts() {
                    match t {
                        Token::Punct(c) => out.put(&[c])?,
                        Token::Str(s) => s.write_json(out)?,
                        Token::Word(w) => out.put(w)?,
                    }
                }
                Ok(())
            }
        }
    }
}

impl ToJson for Str<'_> {
    fn write_json(&self, out: &mut dyn Sink) -> Result<(), Overflow> {
        // The raw contents are already valid JSON string text.
        out.put(b"\"")?;
        out.put(self.0)?;
        out.put(b"\"")
    }
}

impl ToJson for Array<'_> {
    fn write_json(&self, out: &mut dyn Sink) -> Result<(), Overflow> {
        Value::Array(*self).write_json(out)
    }
}

impl ToJson for Object<'_> {
    fn write_json(&self, out: &mut dyn Sink) -> Result<(), Overflow> {
        Value::Object(*self).write_json(out)
    }
}

impl ToJson for str {
    fn write_json(&self, out: &mut dyn Sink) -> Result<(), Overflow> {
        write_string(self, out)
    }
}

impl ToJson for i64 {
    fn write_json(&self, out: &mut dyn Sink) -> Result<(), Overflow> {
        let mut buf = [0u8; 24];
        out.put(crate::config::number::format_int(*self, &mut buf))
    }
}

impl ToJson for bool {
    fn write_json(&self, out: &mut dyn Sink) -> Result<(), Overflow> {
        out.put(if *self { b"true" } else { b"false" })
    }
}

/// JSON `null`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Null;

impl ToJson for Null {
    fn write_json(&self, out: &mut dyn Sink) -> Result<(), Overflow> {
        out.put(b"null")
    }
}

impl<T: ToJson> ToJson for [T] {
    fn write_json(&self, out: &mut dyn Sink) -> Result<(), Overflow> {
        out.put(b"[")?;
        for (n, v) in self.iter().enumerate() {
            if n > 0 {
                out.put(b",")?;
            }
            v.write_json(out)?;
        }
        out.put(b"]")
    }
}

impl<T: ToJson, const N: usize> ToJson for [T; N] {
    fn write_json(&self, out: &mut dyn Sink) -> Result<(), Overflow> {
        self.as_slice().write_json(out)
    }
}

impl<T: ToJson + ?Sized> ToJson for &T {
    fn write_json(&self, out: &mut dyn Sink) -> Result<(), Overflow> {
        (**self).write_json(out)
    }
}

/// Writes `s` as a JSON string: `"` and `\` escaped, control characters as the short escapes
/// or `\u00XX`, everything else raw, non-ASCII included (§3.2).
pub fn write_string(s: &str, out: &mut dyn Sink) -> Result<(), Overflow> {
    out.put(b"\"")?;
    write_string_body(s, out)?;
    out.put(b"\"")
}

/// The inside of [`write_string`], for strings written in pieces.
pub fn write_string_body(s: &str, out: &mut dyn Sink) -> Result<(), Overflow> {
    let b = s.as_bytes();
    let mut plain = 0;
    for (i, &c) in b.iter().enumerate() {
        let esc: &[u8] = match c {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\x08' => b"\\b",
            b'\x0c' => b"\\f",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..=0x1f => b"",
            _ => continue,
        };
        out.put(&b[plain..i])?;
        plain = i + 1;
        if esc.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.put(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(c >> 4)],
                HEX[usize::from(c & 15)],
            ])?;
        } else {
            out.put(esc)?;
        }
    }
    out.put(&b[plain..])
}
