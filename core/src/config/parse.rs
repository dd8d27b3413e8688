//! The dm_config grammar (config-tree.md §1.3–1.6), parsed without recursion.
//!
//! Open sections are remembered as two bytes each (how many path segments the key had, at most
//! `MAX_DEPTH`), so nesting costs a fixed 512 bytes of stack and depth is an explicit, checked
//! limit: every open section adds at least one level, so no more than `MAX_DEPTH` are ever open.

use super::error::{Arena, Error, ErrorKind};
use super::index;
use super::lex::{count_needs, Lexer, Tok};
use super::number::{exponent_len, parse_float, parse_int, IntError};
use super::store::{Data, Idx, NodeRec, Span, Storage, ValueRec, NIL};

/// Hard ceiling for [`ParseOptions::max_depth`].
pub const MAX_DEPTH: u32 = 256;

/// What to do when a key appears twice under one parent (config-tree.md §1.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Duplicates {
    /// `dm_config_parse` / `dm_config_from_string`: reuse the node, merge sections, the last value
    /// wins, order of first occurrence.
    #[default]
    Merge,
    /// `dm_config_parse_without_dup_node_check` (libdaemon messages, LVM metadata): every key makes
    /// a new sibling; lookups see the first.
    Keep,
}

/// How to parse.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ParseOptions {
    /// Duplicate-key handling.
    pub duplicates: Duplicates,
    /// Deepest node allowed (top-level nodes are depth 1), at most [`MAX_DEPTH`].
    pub max_depth: u32,
}

impl ParseOptions {
    /// `dm_config_from_string`'s behaviour.
    pub const MERGE: ParseOptions = ParseOptions {
        duplicates: Duplicates::Merge,
        max_depth: 128,
    };
    /// libdaemon's behaviour.
    pub const KEEP: ParseOptions = ParseOptions {
        duplicates: Duplicates::Keep,
        max_depth: 128,
    };
}

impl Default for ParseOptions {
    fn default() -> Self {
        Self::MERGE
    }
}

/// Things upstream logs as warnings; the parse still succeeds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Warnings {
    /// Values replaced by a later duplicate key (merge mode: "Ignoring duplicate config value").
    pub duplicate_values: u32,
    /// Out-of-range `creation_time` integers replaced by 1527120000 (lvm2's repair).
    pub creation_time_repaired: u32,
}

/// Whether strtoll would read `0x…` hex starting at an INT token `0`, `+0` or `-0`.
fn hex_prefix(token: &[u8], rest: &[u8]) -> bool {
    matches!(token, b"0" | b"+0" | b"-0")
        && matches!(rest.first(), Some(b'x' | b'X'))
        && rest.get(1).is_some_and(u8::is_ascii_hexdigit)
}

/// The value lvm2 substitutes for an overflowing `creation_time` (2018-05-24).
const CREATION_TIME_REPAIR: i64 = 1_527_120_000;

pub(crate) struct Parser<'s, 'st, S: Storage> {
    src: &'s [u8],
    lx: Lexer<'s>,
    st: &'st mut S,
    borrow: bool,
    merge: bool,
    max_depth: u32,
    warnings: Warnings,
}

/// Parses `src` into `st` (which is cleared first). With `borrow`, strings that need no
/// unescaping are spans of `src`; otherwise every string is copied into the byte arena.
pub(crate) fn parse<S: Storage>(
    st: &mut S,
    src: &[u8],
    borrow: bool,
    opts: ParseOptions,
) -> Result<Warnings, Error> {
    // A NUL ends the text, as it ends libdevmapper's C string.
    let src = memchr::memchr(0, src).map_or(src, |n| &src[..n]);
    st.clear();
    if src.len() >= 1 << 31 {
        return Err(Error::at(ErrorKind::TooLarge, &[], 0));
    }
    let mut p = Parser {
        src,
        lx: Lexer::new(src),
        st,
        borrow,
        merge: opts.duplicates == Duplicates::Merge,
        max_depth: opts.max_depth.min(MAX_DEPTH),
        warnings: Warnings::default(),
    };
    let r = p.file();
    let warnings = p.warnings;
    if r.is_err() {
        // No partial tree: leave an empty one behind.
        st.clear();
        let _ = st.push_node(NodeRec::new(Span::EMPTY, NIL));
    }
    r.map(|()| warnings)
}

impl<S: Storage> Parser<'_, '_, S> {
    fn err(&self, kind: ErrorKind, at: usize) -> Error {
        Error::at(kind, self.src, at)
    }

    fn full(&self, arena: Arena) -> Error {
        let (nodes, values, bytes) = count_needs(self.src);
        let needed = match arena {
            Arena::Nodes => nodes,
            Arena::Values => values,
            Arena::Bytes => bytes + if self.borrow { 0 } else { self.src.len() },
        };
        let capacity = self.st.capacity(arena).unwrap_or(0);
        self.err(
            ErrorKind::Capacity {
                arena,
                capacity,
                needed,
            },
            self.lx.start,
        )
    }

    fn file(&mut self) -> Result<(), Error> {
        // Growable storage: most lines hold one setting, so one fast newline count saves many
        // reallocations (and rehashes of the index). Fixed storage has nothing to size.
        let lines = if self.st.capacity(Arena::Nodes).is_none() {
            memchr::memchr_iter(b'\n', self.src).count() + 1
        } else {
            0
        };
        self.st.reserve(lines, lines);
        self.st
            .push_node(NodeRec::new(Span::EMPTY, NIL))
            .map_err(|_| self.full(Arena::Nodes))?;
        if self.merge {
            self.st.reset_index(index::initial_slots(lines));
        }
        let mut open = [0u16; MAX_DEPTH as usize];
        let mut n_open = 0usize;
        let mut cur: Idx = 0;
        let mut depth: u32 = 0;
        loop {
            match self.lx.tok {
                Tok::Eof if n_open == 0 => break,
                Tok::SectionEnd if n_open > 0 => {
                    n_open -= 1;
                    for _ in 0..open[n_open] {
                        cur = self.st.nodes()[cur as usize].parent;
                    }
                    depth -= u32::from(open[n_open]);
                    self.lx.advance();
                }
                _ => {
                    let at = self.lx.start;
                    let key = self.key()?;
                    let path = self.lx.tok != Tok::Ident || self.lx.slash;
                    self.lx.advance();
                    let (node, segs) = if path {
                        self.find_or_make(cur, key, depth, at)?
                    } else {
                        (self.find_or_make_one(cur, key, depth, at)?, 1)
                    };
                    match self.lx.tok {
                        Tok::SectionBegin => {
                            open[n_open] = segs;
                            n_open += 1;
                            cur = node;
                            depth += u32::from(segs);
                            self.lx.advance();
                        }
                        Tok::Eq => {
                            self.lx.advance();
                            let creation_time = self.node_key(node) == b"creation_time";
                            let v = self.value(creation_time)?;
                            let rec = &mut self.st.nodes_mut()[node as usize];
                            if rec.value != NIL {
                                self.warnings.duplicate_values += 1;
                            }
                            rec.value = v;
                        }
                        _ => return Err(self.err(ErrorKind::UnexpectedToken, self.lx.start)),
                    }
                }
            }
        }
        if self.st.nodes()[0].first_child == NIL {
            return Err(self.err(ErrorKind::Empty, self.src.len()));
        }
        Ok(())
    }

    fn node_key(&self, n: Idx) -> &[u8] {
        self.st.nodes()[n as usize]
            .key
            .get(self.src, self.st.bytes())
    }

    /// The current token as a key: its span (in the input or, once unescaped, in the arena).
    fn key(&mut self) -> Result<Span, Error> {
        let span = match self.lx.tok {
            Tok::Ident => Span::input(self.lx.start, self.lx.end - self.lx.start),
            Tok::SingleQuoted | Tok::DoubleQuoted { .. } | Tok::Unterminated => self.string()?,
            _ => return Err(self.err(ErrorKind::UnexpectedToken, self.lx.start)),
        };
        if span.len() == 0 {
            return Err(self.err(ErrorKind::EmptyKey, self.lx.start));
        }
        Ok(span)
    }

    /// Bytes of a quoted token without its quotes, unescaped into the arena when it must be.
    fn string(&mut self) -> Result<Span, Error> {
        let (b, e) = (self.lx.start + 1, self.lx.end - 1);
        match self.lx.tok {
            Tok::DoubleQuoted { escaped: true } => {
                let off = self.st.bytes().len();
                let raw = &self.src[b..e];
                let mut i = 0;
                while i < raw.len() {
                    // Only `\"` and `\\` are escapes; any other backslash stays, both bytes.
                    let run = memchr::memchr(b'\\', &raw[i..]).map_or(raw.len(), |k| i + k);
                    let mut piece = &raw[i..run];
                    let mut skip = 0;
                    if run < raw.len() {
                        if matches!(raw.get(run + 1), Some(b'"' | b'\\')) {
                            self.push_bytes(piece)?;
                            piece = &raw[run + 1..run + 2];
                            skip = 2;
                        } else {
                            piece = &raw[i..run + 1];
                            skip = 1;
                        }
                    }
                    self.push_bytes(piece)?;
                    i = run + skip;
                }
                Ok(Span::arena(off, self.st.bytes().len() - off))
            }
            Tok::Unterminated => Err(self.err(ErrorKind::UnterminatedString, self.lx.start)),
            _ => self.keep(b, e),
        }
    }

    fn push_bytes(&mut self, b: &[u8]) -> Result<(), Error> {
        self.st.push_bytes(b).map_err(|_| self.full(Arena::Bytes))
    }

    /// A span of the input, borrowed or copied according to the parse mode.
    fn keep(&mut self, b: usize, e: usize) -> Result<Span, Error> {
        if self.borrow {
            return Ok(Span::input(b, e - b));
        }
        let off = self.st.bytes().len();
        let src = self.src;
        self.push_bytes(&src[b..e])?;
        Ok(Span::arena(off, e - b))
    }

    /// Walks a `/`-separated key from `parent`, finding (merge mode) or making each segment.
    /// Returns the last node and the number of segments walked.
    fn find_or_make(
        &mut self,
        parent: Idx,
        key: Span,
        depth: u32,
        at: usize,
    ) -> Result<(Idx, u16), Error> {
        let mut parent = parent;
        let mut segs: u32 = 0;
        let mut pos = 0usize;
        let len = key.len();
        loop {
            let full = key.get(self.src, self.st.bytes());
            while pos < len && full[pos] == b'/' {
                pos += 1;
            }
            let end = memchr::memchr(b'/', &full[pos..]).map_or(len, |i| pos + i);
            let seg = key.sub(pos, end - pos);
            segs += 1;
            if depth + segs > self.max_depth {
                return Err(self.err(
                    ErrorKind::TooDeep {
                        limit: self.max_depth,
                    },
                    at,
                ));
            }
            let found = if self.merge {
                index::find(&*self.st, self.src, parent, seg)
            } else {
                None
            };
            let node = match found {
                Some(n) => n,
                None => self.make(parent, seg, key)?,
            };
            if end == len {
                return Ok((node, segs as u16));
            }
            parent = node;
            pos = end;
        }
    }

    /// `find_or_make` for a key known to hold no `/` (the common case).
    fn find_or_make_one(
        &mut self,
        parent: Idx,
        key: Span,
        depth: u32,
        at: usize,
    ) -> Result<Idx, Error> {
        if depth >= self.max_depth {
            return Err(self.err(
                ErrorKind::TooDeep {
                    limit: self.max_depth,
                },
                at,
            ));
        }
        if self.merge {
            if let Some(n) = index::find(&*self.st, self.src, parent, key) {
                return Ok(n);
            }
        }
        self.make(parent, key, key)
    }

    fn make(&mut self, parent: Idx, seg: Span, key: Span) -> Result<Idx, Error> {
        // A segment of a borrowed key must be copied in copy mode; arena keys already are.
        let seg = if !self.borrow && !key.is_arena() {
            let bytes = seg.get(self.src, &[]);
            let off = self.st.bytes().len();
            self.st
                .push_bytes(bytes)
                .map_err(|_| self.full(Arena::Bytes))?;
            Span::arena(off, seg.len())
        } else {
            seg
        };
        let id = self.st.nodes().len() as Idx;
        self.st
            .push_node(NodeRec::new(seg, parent))
            .map_err(|_| self.full(Arena::Nodes))?;
        let nodes = self.st.nodes_mut();
        let p = &mut nodes[parent as usize];
        let last = p.last_child;
        p.last_child = id;
        if last == NIL {
            p.first_child = id;
        } else {
            nodes[last as usize].next = id;
        }
        if self.merge {
            index::insert(self.st, self.src, id);
        }
        Ok(id)
    }

    /// `[ scalar [,] ... ]` or a scalar; returns the first value of the list.
    fn value(&mut self, creation_time: bool) -> Result<Idx, Error> {
        if self.lx.tok != Tok::ArrayBegin {
            return self.scalar(creation_time);
        }
        self.lx.advance();
        let (mut first, mut last) = (NIL, NIL);
        while self.lx.tok != Tok::ArrayEnd {
            let v = self.scalar(creation_time)?;
            if first == NIL {
                first = v;
            } else {
                self.st.values_mut()[last as usize].next = v;
            }
            last = v;
            if self.lx.tok == Tok::Comma {
                self.lx.advance();
            }
        }
        self.lx.advance();
        if first == NIL {
            first = self.push_value(Data::EmptyArray)?;
        }
        Ok(first)
    }

    fn push_value(&mut self, data: Data) -> Result<Idx, Error> {
        let id = self.st.values().len() as Idx;
        self.st
            .push_value(ValueRec {
                data,
                flags: 0,
                next: NIL,
            })
            .map_err(|_| self.full(Arena::Values))?;
        Ok(id)
    }

    fn scalar(&mut self, creation_time: bool) -> Result<Idx, Error> {
        let at = self.lx.start;
        let data = match self.lx.tok {
            // strtoll reads a hex prefix past the token (`0` then `x10`); HEAD then sees it did not
            // stop at the token's end and rejects the integer (config-tree.md §1.4).
            Tok::Int if hex_prefix(self.lx.text(), self.lx.rest()) => {
                return Err(self.err(ErrorKind::BadInteger, at))
            }
            Tok::Int => match parse_int(self.lx.text()) {
                Ok(i) => Data::Int(i),
                Err(IntError::Range) if creation_time => {
                    self.warnings.creation_time_repaired += 1;
                    Data::Int(CREATION_TIME_REPAIR)
                }
                Err(_) => return Err(self.err(ErrorKind::BadInteger, at)),
            },
            Tok::Float => {
                // strtod reads an exponent the tokenizer left out; the exponent is still lexed
                // again as the next token (config-tree.md §1.4).
                let len = self.lx.end - at + exponent_len(self.lx.rest());
                match parse_float(&self.src[at..at + len]) {
                    Some(f) => Data::Float(f),
                    None => return Err(self.err(ErrorKind::BadFloat, at)),
                }
            }
            Tok::Bare => Data::Str(self.keep(at, self.lx.end)?),
            Tok::SingleQuoted | Tok::DoubleQuoted { .. } | Tok::Unterminated => {
                Data::Str(self.string()?)
            }
            _ => return Err(self.err(ErrorKind::ExpectedValue, at)),
        };
        let id = self.push_value(data)?;
        self.lx.advance();
        Ok(id)
    }
}
