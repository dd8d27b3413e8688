//! The writer: byte-identical to libdevmapper's `dm_config_write_node` with a putline that adds
//! `\n` (config-tree.md §2). Iterative, so any depth is safe.

use super::number::{format_float, format_int, format_octal, NumBuf};
use super::store::{Data, Idx, NIL};
use super::view::{Flags, NodeRef, TreeView, Value};

/// libdevmapper caps indentation at this many tabs.
const MAX_INDENT: usize = 32;
const TABS: &[u8; MAX_INDENT] = &[b'\t'; MAX_INDENT];

/// Where written text goes.
pub trait Sink {
    /// Takes the next bytes; an error stops the writer.
    fn put(&mut self, bytes: &[u8]) -> Result<(), Overflow>;
}

/// The text did not fit; `required` is the whole text's length (the writer keeps counting).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Overflow {
    /// Bytes the whole output needs.
    pub required: usize,
}

impl core::fmt::Display for Overflow {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "output buffer too small: {} bytes needed", self.required)
    }
}

impl core::error::Error for Overflow {}

/// A sink over a caller's buffer. On overflow it keeps counting so the error says how much room
/// the whole text needs.
pub struct SliceSink<'b> {
    buf: &'b mut [u8],
    len: usize,
    needed: usize,
}

impl<'b> SliceSink<'b> {
    /// Writes into `buf` from the start.
    pub fn new(buf: &'b mut [u8]) -> Self {
        SliceSink {
            buf,
            len: 0,
            needed: 0,
        }
    }
    /// The written text, or how much room it needed.
    pub fn finish(self) -> Result<&'b mut [u8], Overflow> {
        if self.needed > self.len {
            return Err(Overflow {
                required: self.needed,
            });
        }
        Ok(&mut self.buf[..self.len])
    }
}

impl Sink for SliceSink<'_> {
    #[inline]
    fn put(&mut self, bytes: &[u8]) -> Result<(), Overflow> {
        self.needed += bytes.len();
        if self.needed == self.len + bytes.len() {
            if let Some(dst) = self.buf.get_mut(self.len..self.len + bytes.len()) {
                dst.copy_from_slice(bytes);
                self.len += bytes.len();
            }
        }
        Ok(())
    }
}

/// Counts bytes only.
#[derive(Default)]
pub struct CountSink(pub usize);

impl Sink for CountSink {
    #[inline]
    fn put(&mut self, bytes: &[u8]) -> Result<(), Overflow> {
        self.0 += bytes.len();
        Ok(())
    }
}

impl<const N: usize> Sink for heapless::Vec<u8, N> {
    #[inline]
    fn put(&mut self, bytes: &[u8]) -> Result<(), Overflow> {
        let required = self.len() + bytes.len();
        self.extend_from_slice(bytes)
            .map_err(|_| Overflow { required })
    }
}

#[cfg(feature = "alloc")]
impl Sink for alloc::vec::Vec<u8> {
    #[inline]
    fn put(&mut self, bytes: &[u8]) -> Result<(), Overflow> {
        self.extend_from_slice(bytes);
        Ok(())
    }
}

impl<S: Sink + ?Sized> Sink for &mut S {
    #[inline]
    fn put(&mut self, bytes: &[u8]) -> Result<(), Overflow> {
        (**self).put(bytes)
    }
}

impl TreeView<'_> {
    /// Writes the whole tree (`dm_config_write_node(cft->root, …)`).
    pub fn write<W: Sink>(&self, out: &mut W) -> Result<(), Overflow> {
        match self.first() {
            Some(n) => write_nodes(n, false, out),
            None => Ok(()),
        }
    }

    /// Length of [`TreeView::write`]'s output.
    pub fn written_len(&self) -> usize {
        let mut c = CountSink(0);
        let _ = self.write(&mut c);
        c.0
    }

    /// Writes into `buf`, returning the text or how much room it needs.
    pub fn write_to_slice<'b>(&self, buf: &'b mut [u8]) -> Result<&'b mut [u8], Overflow> {
        let mut s = SliceSink::new(buf);
        self.write(&mut s)?;
        s.finish()
    }

    /// The written text in a new vector.
    #[cfg(feature = "alloc")]
    pub fn to_text(&self) -> alloc::vec::Vec<u8> {
        let mut v = alloc::vec::Vec::new();
        let _ = self.write(&mut v);
        v
    }
}

impl NodeRef<'_> {
    /// Writes this node and the siblings after it, this node at indent 0
    /// (`dm_config_write_node`).
    pub fn write<W: Sink>(&self, out: &mut W) -> Result<(), Overflow> {
        write_nodes(*self, false, out)
    }

    /// Writes this node only (`dm_config_write_one_node`).
    pub fn write_one<W: Sink>(&self, out: &mut W) -> Result<(), Overflow> {
        write_nodes(*self, true, out)
    }
}

fn indent(level: usize) -> &'static [u8] {
    &TABS[..level.min(MAX_INDENT)]
}

fn write_nodes<W: Sink>(start: NodeRef<'_>, only_one: bool, out: &mut W) -> Result<(), Overflow> {
    // Walks raw records rather than `NodeRef`s: this is the hot loop of every reply.
    let t = start.tree();
    let (nodes, src, bytes) = (t.nodes, t.src, t.bytes);
    let mut n = start.id().0 as usize;
    let mut level = 0usize;
    loop {
        let rec = &nodes[n];
        out.put(indent(level))?;
        write_key(rec.key.get(src, bytes), out)?;
        if rec.value == NIL {
            if rec.first_child != NIL {
                out.put(b" {\n")?;
                n = rec.first_child as usize;
                level += 1;
                continue;
            }
            out.put(b" {\n")?;
            out.put(indent(level))?;
            out.put(b"}\n")?;
        } else {
            write_values(t, rec.value, out)?;
            out.put(b"\n")?;
        }
        // `n` is finished: move to its next sibling, closing sections on the way up.
        loop {
            if level == 0 && only_one {
                return Ok(());
            }
            let next = nodes[n].next;
            if next != NIL {
                n = next as usize;
                break;
            }
            if level == 0 {
                return Ok(());
            }
            n = nodes[n].parent as usize;
            level -= 1;
            out.put(indent(level))?;
            out.put(b"}\n")?;
        }
    }
}

fn write_key<W: Sink>(key: &[u8], out: &mut W) -> Result<(), Overflow> {
    // Quoted only for these three bytes, never for spaces, `=` or braces (config-tree.md §2.1).
    if key.iter().any(|&c| matches!(c, b'#' | b'"' | b'!')) {
        out.put(b"\"")?;
        write_escaped(key, out)?;
        out.put(b"\"")
    } else {
        out.put(key)
    }
}

/// `s` with `"` and `\\` backslash-escaped (`dm_escape_double_quotes`).
pub(crate) fn write_escaped<W: Sink + ?Sized>(s: &[u8], out: &mut W) -> Result<(), Overflow> {
    let mut rest = s;
    while let Some(i) = memchr::memchr2(b'"', b'\\', rest) {
        out.put(&rest[..i])?;
        out.put(if rest[i] == b'"' { b"\\\"" } else { b"\\\\" })?;
        rest = &rest[i + 1..];
    }
    out.put(rest)
}

fn write_values<W: Sink>(t: TreeView<'_>, first: Idx, out: &mut W) -> Result<(), Overflow> {
    let values = t.values;
    let scalar = |i: Idx| {
        let v = &values[i as usize];
        let value = match v.data {
            Data::Int(i) => Value::Int(i),
            Data::Float(f) => Value::Float(f),
            Data::Str(s) => Value::Str(s.get(t.src, t.bytes)),
            Data::EmptyArray => Value::EmptyArray,
        };
        (value, Flags(v.flags), v.next)
    };
    let (value, flags, next) = scalar(first);
    // The first value's flags decide spacing and brackets for the whole line.
    let sp: &[u8] = if flags.contains(Flags::EXTRA_SPACES) {
        b" "
    } else {
        b""
    };
    out.put(sp)?;
    out.put(b"=")?;
    out.put(sp)?;
    if next == NIL {
        let bracket = flags.contains(Flags::ARRAY) && value != Value::EmptyArray;
        if bracket {
            out.put(b"[")?;
            out.put(sp)?;
        }
        write_value(value, flags, out)?;
        if bracket {
            out.put(sp)?;
            out.put(b"]")?;
        }
        return Ok(());
    }
    out.put(b"[")?;
    out.put(sp)?;
    // An EMPTY_ARRAY element ends the list, as in libdevmapper.
    let (mut value, mut flags, mut next) = (value, flags, next);
    while value != Value::EmptyArray {
        write_value(value, flags, out)?;
        if next == NIL {
            break;
        }
        (value, flags, next) = scalar(next);
        if value != Value::EmptyArray {
            out.put(b",")?;
            out.put(sp)?;
        }
    }
    out.put(sp)?;
    out.put(b"]")
}

fn write_value<W: Sink>(v: Value<'_>, flags: Flags, out: &mut W) -> Result<(), Overflow> {
    let mut buf = [0u8; 24];
    match v {
        Value::Str(s) => {
            let quote: &[u8] = if flags.contains(Flags::STRING_NO_QUOTES) {
                b""
            } else {
                b"\""
            };
            out.put(quote)?;
            write_escaped(s, out)?;
            out.put(quote)
        }
        Value::Int(i) if flags.contains(Flags::INT_OCTAL) => out.put(format_octal(i, &mut buf)),
        Value::Int(i) => out.put(format_int(i, &mut buf)),
        Value::Float(f) => {
            let mut b = NumBuf::new();
            format_float(f, &mut b);
            out.put(b.as_bytes())
        }
        Value::EmptyArray => out.put(if flags.contains(Flags::EXTRA_SPACES) {
            b"[ ]"
        } else {
            b"[]"
        }),
    }
}
