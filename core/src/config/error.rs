//! Typed parse and capacity errors, each with the position that was wrong.

use core::fmt;

/// One of a tree's three arenas.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Arena {
    /// Node records (keys, sections).
    Nodes,
    /// Value records (scalars and array elements).
    Values,
    /// Bytes of strings that could not borrow the input.
    Bytes,
}

impl fmt::Display for Arena {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Arena::Nodes => "node",
            Arena::Values => "value",
            Arena::Bytes => "string byte",
        })
    }
}

/// What went wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ErrorKind {
    /// A token that the grammar does not allow here (also a missing `}` at the end, or an extra one).
    UnexpectedToken,
    /// No scalar after `=`, `[` or `,`.
    ExpectedValue,
    /// A key that is empty after unquoting (`"" = 1`).
    EmptyKey,
    /// A quoted string without its closing quote.
    UnterminatedString,
    /// An integer outside the signed 64-bit range, or with digits its base does not have (`09`).
    BadInteger,
    /// A float too large or too small for a C `double`.
    BadFloat,
    /// The input holds no setting at all (empty, or only whitespace and comments).
    Empty,
    /// Sections nested deeper than the configured limit.
    TooDeep {
        /// The limit in force.
        limit: u32,
    },
    /// An arena is full. `needed` is what this input needs at most (dup-check merging may need
    /// less).
    Capacity {
        /// Which arena.
        arena: Arena,
        /// Its capacity.
        capacity: usize,
        /// The most this input can need.
        needed: usize,
    },
    /// Input of 2 GiB or more (records index it with 31 bits).
    TooLarge,
}

/// A parse error: what, and where (byte offset, 1-based line and column in bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Error {
    /// What went wrong.
    pub kind: ErrorKind,
    /// Byte offset of the offending token (the input length at end of input).
    pub offset: usize,
    /// 1-based line of `offset`.
    pub line: u32,
    /// 1-based column (in bytes) of `offset`.
    pub column: u32,
}

impl Error {
    /// An error at `offset` of `src`, with line and column worked out from the text.
    pub(crate) fn at(kind: ErrorKind, src: &[u8], offset: usize) -> Error {
        let offset = offset.min(src.len());
        let before = &src[..offset];
        let line = 1 + memchr::memchr_iter(b'\n', before).count();
        let line_start = memchr::memrchr(b'\n', before).map_or(0, |i| i + 1);
        Error {
            kind,
            offset,
            line: line.min(u32::MAX as usize) as u32,
            column: (offset - line_start + 1).min(u32::MAX as usize) as u32,
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorKind::UnexpectedToken => f.write_str("unexpected token"),
            ErrorKind::ExpectedValue => f.write_str("expected a value"),
            ErrorKind::EmptyKey => f.write_str("empty section identifier"),
            ErrorKind::UnterminatedString => f.write_str("unterminated quoted string"),
            ErrorKind::BadInteger => {
                f.write_str("invalid integer (base 10, or base 8 with a leading 0; 64-bit range)")
            }
            ErrorKind::BadFloat => f.write_str("float out of range"),
            ErrorKind::Empty => f.write_str("no settings found"),
            ErrorKind::TooDeep { limit } => write!(f, "sections nested deeper than {limit}"),
            ErrorKind::Capacity {
                arena,
                capacity,
                needed,
            } => write!(
                f,
                "{arena} arena full: capacity {capacity}, this input needs up to {needed}"
            ),
            ErrorKind::TooLarge => f.write_str("input of 2 GiB or more"),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.line, self.column, self.kind)
    }
}

impl core::error::Error for Error {}

/// A builder or decoder ran out of room in an arena.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Full(pub Arena);

impl fmt::Display for Full {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} arena full", self.0)
    }
}

impl core::error::Error for Full {}
