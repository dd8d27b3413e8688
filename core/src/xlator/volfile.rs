//! The volfile grammar (translators.md §1.4–1.6) over the [lexer](super::lex): volumes, their
//! type, options and subvolume links, in fixed-capacity tables that borrow the text.
//!
//! Fatal errors are an [`Error`] with the position of the token that was wrong; the non-fatal
//! ones upstream only logs (an undefined or self subvolume, an empty value, a repeated option)
//! go to a [`Warning`] callback and parsing goes on, as in GlusterFS 10.3.

use core::fmt;

use heapless::Vec;

use super::lex::{find_backtick, LexError, Lexer, Pos, Stray, Token, TokenKind, Word};

/// One `volume NAME ... end-volume` block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Volume<'a> {
    /// The volume's name.
    pub name: Word<'a>,
    /// Offset of the name.
    pub name_at: usize,
    /// The `type` word (always present once parsing succeeded).
    pub ty: Option<Word<'a>>,
    /// Offset of the type word.
    pub type_at: usize,
    opts: (usize, usize),
    subs: (usize, usize),
}

/// One `option KEY VALUE` line (after last-wins merging of repeated keys).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct OptionEntry<'a> {
    /// The key.
    pub key: Word<'a>,
    /// The value (of the last line with this key).
    pub value: Word<'a>,
    /// Offset of the key (of the first line with this key).
    pub key_at: usize,
    /// Offset of the value (of the last line with this key).
    pub value_at: usize,
}

/// A parent → child link from a `subvolumes` line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Link {
    /// Index of the child volume (always lower than its parent's: no forward references).
    pub child: usize,
    /// Offset of the name on the `subvolumes` line.
    pub at: usize,
}

/// Which table ran out of room.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Table {
    /// Volumes (`V`).
    Volumes,
    /// Options over all volumes (`O`).
    Options,
    /// Subvolume links over all volumes (`L`).
    Links,
}

/// What made a volfile unusable. Messages follow GlusterFS 10.3's parser (§1.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ErrorKind<'a> {
    /// A backtick that upstream would run as a shell command; Keelson never does.
    Backtick,
    /// A quoted string without its closing quote.
    UnterminatedString,
    /// A second volume with an existing name.
    DuplicateVolume {
        /// The name.
        name: Word<'a>,
    },
    /// `volume` while another volume is open.
    MissingEndVolume {
        /// The open volume.
        volume: Word<'a>,
    },
    /// `type` twice, or after an option.
    DuplicateType {
        /// The open volume.
        volume: Word<'a>,
    },
    /// `subvolumes` twice, or before `type`.
    DuplicateSubvolumes {
        /// The open volume.
        volume: Word<'a>,
    },
    /// `type` without a word after it.
    MissingType {
        /// The open volume.
        volume: Word<'a>,
    },
    /// `subvolumes` without names.
    MissingSubvolumes {
        /// The open volume.
        volume: Word<'a>,
    },
    /// `option` with fewer than two words.
    MissingOptionValue {
        /// The open volume.
        volume: Word<'a>,
    },
    /// A token the grammar does not allow here; `token` is `None` at the end of the input.
    Unexpected {
        /// The open volume, if any.
        volume: Option<Word<'a>>,
        /// The token.
        token: Option<Word<'a>>,
    },
    /// `end-volume` of a volume without `type`.
    NoType {
        /// The volume.
        volume: Word<'a>,
    },
    /// `volume ""`.
    EmptyVolumeName,
    /// `type ""`.
    EmptyType {
        /// The open volume.
        volume: Word<'a>,
    },
    /// A table is full.
    Capacity {
        /// Which one.
        table: Table,
        /// Its capacity.
        capacity: usize,
    },
}

const ALLOWED: &str = "allowed tokens are 'volume', 'type', 'subvolumes', 'option', 'end-volume'";

impl fmt::Display for ErrorKind<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorKind::Backtick => f.write_str(
                "backtick command substitution is not supported (GlusterFS would run the text as a shell command)",
            ),
            ErrorKind::UnterminatedString => f.write_str("unterminated quoted string"),
            ErrorKind::DuplicateVolume { name } => write!(f, "volume '{name}' defined again"),
            ErrorKind::MissingEndVolume { volume } => {
                write!(f, "'end-volume' not defined for volume '{volume}'")
            }
            ErrorKind::DuplicateType { volume } => {
                write!(f, "duplicate 'type' defined for volume '{volume}'")
            }
            ErrorKind::DuplicateSubvolumes { volume } => {
                write!(f, "duplicate 'subvolumes' defined for volume '{volume}'")
            }
            ErrorKind::MissingType { volume } => {
                write!(f, "Volume {volume}: Please specify volume type")
            }
            ErrorKind::MissingSubvolumes { volume } => {
                write!(f, "Volume {volume}: Please specify subvolumes")
            }
            ErrorKind::MissingOptionValue { volume } => {
                write!(f, "Volume {volume}: Please specify option <key> <value>")
            }
            ErrorKind::Unexpected { volume, token } => {
                f.write_str("syntax error")?;
                if let Some(v) = volume {
                    write!(f, " (volume '{v}')")?;
                }
                match token {
                    Some(t) => write!(f, ": \"{t}\"")?,
                    None => f.write_str(": end of file")?,
                }
                write!(f, "; {ALLOWED}")
            }
            ErrorKind::NoType { volume } => write!(f, "\"type\" not specified for volume {volume}"),
            ErrorKind::EmptyVolumeName => f.write_str("empty volume name"),
            ErrorKind::EmptyType { volume } => write!(f, "Volume {volume}: empty type"),
            ErrorKind::Capacity { table, capacity } => {
                let what = match table {
                    Table::Volumes => "volumes",
                    Table::Options => "options",
                    Table::Links => "subvolume links",
                };
                write!(f, "more than {capacity} {what}")
            }
        }
    }
}

/// A fatal parse error and where it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Error<'a> {
    /// What went wrong.
    pub kind: ErrorKind<'a>,
    /// Where (the offending token, or the end of the input).
    pub pos: Pos,
}

impl fmt::Display for Error<'_> {
    /// `LINE:COL: message`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.pos, self.kind)
    }
}

impl core::error::Error for Error<'_> {}

/// A non-fatal problem: upstream logs it and keeps parsing, and so do we.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum WarningKind<'a> {
    /// A subvolume not defined earlier; the link is dropped.
    UndefinedSubvolume {
        /// The volume with the `subvolumes` line.
        volume: Word<'a>,
        /// The unknown name.
        sub: Word<'a>,
    },
    /// A volume naming itself as subvolume; the link is dropped.
    SelfSubvolume {
        /// The volume.
        volume: Word<'a>,
    },
    /// `option k ""` (or an empty key): upstream's NULL value, the option is skipped.
    EmptyOption {
        /// The volume.
        volume: Word<'a>,
    },
    /// `subvolumes ""`: skipped.
    EmptySubvolume {
        /// The volume.
        volume: Word<'a>,
    },
    /// A key given again: the last value wins (upstream says nothing).
    DuplicateOption {
        /// The volume.
        volume: Word<'a>,
        /// The key.
        key: Word<'a>,
    },
    /// A `\` outside quotes matches no lexer rule and is dropped.
    StrayBackslash,
}

impl fmt::Display for WarningKind<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WarningKind::UndefinedSubvolume { volume, sub } => write!(
                f,
                "Volume '{volume}': subvolume '{sub}' is not defined prior to usage"
            ),
            WarningKind::SelfSubvolume { volume } => {
                write!(f, "Volume '{volume}': has '{volume}' itself as subvolume")
            }
            WarningKind::EmptyOption { volume } => write!(
                f,
                "Volume '{volume}': option with an empty key or value skipped (Invalid argument)"
            ),
            WarningKind::EmptySubvolume { volume } => {
                write!(f, "Volume '{volume}': empty subvolume name skipped")
            }
            WarningKind::DuplicateOption { volume, key } => write!(
                f,
                "Volume '{volume}': option '{key}' given again, the last value wins"
            ),
            WarningKind::StrayBackslash => f.write_str("'\\' outside quotes dropped"),
        }
    }
}

/// A non-fatal problem and where it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Warning<'a> {
    /// What.
    pub kind: WarningKind<'a>,
    /// Where.
    pub pos: Pos,
}

impl fmt::Display for Warning<'_> {
    /// `LINE:COL: message`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.pos, self.kind)
    }
}

/// A parsed volfile: `V` volumes, `O` options and `L` subvolume links at most.
#[derive(Clone, Debug)]
pub struct Volfile<'a, const V: usize, const O: usize, const L: usize> {
    src: &'a [u8],
    volumes: Vec<Volume<'a>, V>,
    options: Vec<OptionEntry<'a>, O>,
    links: Vec<Link, L>,
}

/// Turns offsets into positions while they grow, without rescanning from the start.
struct Cursor {
    offset: usize,
    line: u32,
    line_start: usize,
}

impl Cursor {
    fn pos(&mut self, src: &[u8], offset: usize) -> Pos {
        let offset = offset.min(src.len());
        if offset < self.offset {
            *self = Cursor {
                offset: 0,
                line: 1,
                line_start: 0,
            };
        }
        let span = src.get(self.offset..offset).unwrap_or_default();
        for i in memchr::memchr_iter(b'\n', span) {
            self.line = self.line.saturating_add(1);
            self.line_start = self.offset + i + 1;
        }
        self.offset = offset;
        Pos {
            offset,
            line: self.line,
            column: u32::try_from(offset - self.line_start + 1).unwrap_or(u32::MAX),
        }
    }
}

struct Parser<'a, 'w, W: FnMut(Warning<'a>)> {
    lex: Lexer<'a>,
    peeked: Option<Option<Token<'a>>>,
    cursor: Cursor,
    warn: &'w mut W,
}

impl<'a, W: FnMut(Warning<'a>)> Parser<'a, '_, W> {
    fn warn(&mut self, kind: WarningKind<'a>, offset: usize) {
        let pos = self.cursor.pos(self.lex.src(), offset);
        (self.warn)(Warning { kind, pos });
    }

    fn error(&mut self, kind: ErrorKind<'a>, offset: usize) -> Error<'a> {
        Error {
            kind,
            pos: self.cursor.pos(self.lex.src(), offset),
        }
    }

    fn peek(&mut self) -> Result<Option<Token<'a>>, Error<'a>> {
        if let Some(t) = self.peeked {
            return Ok(t);
        }
        let mut strays: Vec<usize, 8> = Vec::new();
        let mut overflow = None;
        let r = self.lex.next_token(&mut |Stray(at)| {
            if strays.push(at).is_err() {
                overflow.get_or_insert(at);
            }
        });
        for at in strays {
            self.warn(WarningKind::StrayBackslash, at);
        }
        if let Some(at) = overflow {
            // More stray backslashes before one token than we buffer: report the first one
            // beyond the buffer; the rest add nothing new.
            self.warn(WarningKind::StrayBackslash, at);
        }
        let t = r.map_err(|LexError::UnterminatedString(at)| {
            self.error(ErrorKind::UnterminatedString, at)
        })?;
        self.peeked = Some(t);
        Ok(t)
    }

    fn next(&mut self) -> Result<Option<Token<'a>>, Error<'a>> {
        let t = self.peek()?;
        self.peeked = None;
        Ok(t)
    }

    /// The next token if it is a word.
    fn word(&mut self) -> Result<Option<Token<'a>>, Error<'a>> {
        match self.peek()? {
            Some(t) if t.kind == TokenKind::Word => {
                self.peeked = None;
                Ok(Some(t))
            }
            _ => Ok(None),
        }
    }

    /// Offset of the next token (the end of the input when there is none).
    fn here(&mut self) -> Result<usize, Error<'a>> {
        Ok(match self.peek()? {
            Some(t) => t.offset,
            None => self.lex.src().len(),
        })
    }
}

impl<'a, const V: usize, const O: usize, const L: usize> Volfile<'a, V, O, L> {
    /// Parses `src`, ignoring warnings.
    pub fn parse(src: &'a [u8]) -> Result<Self, Error<'a>> {
        Self::parse_with(src, &mut |_| {})
    }

    /// Parses `src`, reporting non-fatal problems to `warn` in text order.
    pub fn parse_with(
        src: &'a [u8],
        warn: &mut impl FnMut(Warning<'a>),
    ) -> Result<Self, Error<'a>> {
        let mut vf = Volfile {
            src,
            volumes: Vec::new(),
            options: Vec::new(),
            links: Vec::new(),
        };
        let mut p = Parser {
            lex: Lexer::new(src),
            peeked: None,
            cursor: Cursor {
                offset: 0,
                line: 1,
                line_start: 0,
            },
            warn,
        };
        if let Some(at) = find_backtick(src) {
            return Err(p.error(ErrorKind::Backtick, at));
        }
        loop {
            match p.next()? {
                None if vf.volumes.is_empty() => {
                    let end = src.len();
                    return Err(p.error(
                        ErrorKind::Unexpected {
                            volume: None,
                            token: None,
                        },
                        end,
                    ));
                }
                None => return Ok(vf),
                Some(t) if t.kind == TokenKind::Volume => vf.parse_volume(&mut p)?,
                Some(t) => {
                    return Err(p.error(
                        ErrorKind::Unexpected {
                            volume: None,
                            token: Some(t.word),
                        },
                        t.offset,
                    ))
                }
            }
        }
    }

    /// One volume, after its `volume` keyword.
    fn parse_volume<W: FnMut(Warning<'a>)>(
        &mut self,
        p: &mut Parser<'a, '_, W>,
    ) -> Result<(), Error<'a>> {
        let Some(name) = p.word()? else {
            let at = p.here()?;
            let token = p.peek()?.map(|t| t.word);
            return Err(p.error(
                ErrorKind::Unexpected {
                    volume: None,
                    token,
                },
                at,
            ));
        };
        if name.word.is_empty() {
            return Err(p.error(ErrorKind::EmptyVolumeName, name.offset));
        }
        if self.volumes.iter().any(|v| v.name.eq_word(&name.word)) {
            return Err(p.error(ErrorKind::DuplicateVolume { name: name.word }, name.offset));
        }
        let me = self.volumes.len();
        let vol = Volume {
            name: name.word,
            name_at: name.offset,
            ty: None,
            type_at: 0,
            opts: (self.options.len(), 0),
            subs: (self.links.len(), 0),
        };
        if self.volumes.push(vol).is_err() {
            return Err(p.error(
                ErrorKind::Capacity {
                    table: Table::Volumes,
                    capacity: V,
                },
                name.offset,
            ));
        }
        let volume = name.word;
        let (mut has_type, mut any_opts, mut has_subs, mut opts_after_subs) =
            (false, false, false, false);
        loop {
            let at = p.here()?;
            let tok = p.next()?;
            let can_end = if has_type {
                any_opts || has_subs
            } else {
                any_opts && (!has_subs || opts_after_subs)
            };
            match tok.map(|t| t.kind) {
                Some(TokenKind::Type) if !has_type && !any_opts && !has_subs => {
                    let Some(ty) = p.word()? else {
                        let at = p.here()?;
                        return Err(p.error(ErrorKind::MissingType { volume }, at));
                    };
                    if ty.word.is_empty() {
                        return Err(p.error(ErrorKind::EmptyType { volume }, ty.offset));
                    }
                    if let Some(v) = self.volumes.get_mut(me) {
                        v.ty = Some(ty.word);
                        v.type_at = ty.offset;
                    }
                    has_type = true;
                }
                Some(TokenKind::Option) => {
                    let (Some(key), Some(value)) = (p.word()?, p.word()?) else {
                        let at = p.here()?;
                        return Err(p.error(ErrorKind::MissingOptionValue { volume }, at));
                    };
                    self.option(p, me, key, value)?;
                    any_opts = true;
                    opts_after_subs |= has_subs;
                }
                Some(TokenKind::Subvolumes) if !has_subs && (has_type || any_opts) => {
                    let mut any = false;
                    while let Some(sub) = p.word()? {
                        any = true;
                        self.link(p, me, sub)?;
                    }
                    if !any {
                        let at = p.here()?;
                        return Err(p.error(ErrorKind::MissingSubvolumes { volume }, at));
                    }
                    has_subs = true;
                }
                // The grammar's two error alternatives: options (and subvolumes followed by
                // more options) without a type end here and fail for the missing type.
                Some(TokenKind::EndVolume) if can_end => {
                    if !has_type {
                        return Err(p.error(ErrorKind::NoType { volume }, at));
                    }
                    return Ok(());
                }
                // Upstream's yyerror picks its message from the offending token's text.
                Some(TokenKind::Volume) => {
                    return Err(p.error(ErrorKind::MissingEndVolume { volume }, at))
                }
                Some(TokenKind::Type) => {
                    return Err(p.error(ErrorKind::DuplicateType { volume }, at))
                }
                Some(TokenKind::Subvolumes)
                    if tok.is_some_and(|t| t.word.eq_bytes(b"subvolumes")) =>
                {
                    return Err(p.error(ErrorKind::DuplicateSubvolumes { volume }, at))
                }
                _ => {
                    return Err(p.error(
                        ErrorKind::Unexpected {
                            volume: Some(volume),
                            token: tok.map(|t| t.word),
                        },
                        at,
                    ))
                }
            }
        }
    }

    fn option<W: FnMut(Warning<'a>)>(
        &mut self,
        p: &mut Parser<'a, '_, W>,
        me: usize,
        key: Token<'a>,
        value: Token<'a>,
    ) -> Result<(), Error<'a>> {
        let Some(vol) = self.volumes.get(me).copied() else {
            return Ok(());
        };
        if key.word.is_empty() || value.word.is_empty() {
            p.warn(WarningKind::EmptyOption { volume: vol.name }, value.offset);
            return Ok(());
        }
        let start = vol.opts.0;
        if let Some(o) = self
            .options
            .get_mut(start..)
            .and_then(|mine| mine.iter_mut().find(|o| o.key.eq_word(&key.word)))
        {
            // dict_set on an existing key replaces the value where the key already stands.
            o.value = value.word;
            o.value_at = value.offset;
            p.warn(
                WarningKind::DuplicateOption {
                    volume: vol.name,
                    key: key.word,
                },
                key.offset,
            );
            return Ok(());
        }
        let entry = OptionEntry {
            key: key.word,
            value: value.word,
            key_at: key.offset,
            value_at: value.offset,
        };
        if self.options.push(entry).is_err() {
            return Err(p.error(
                ErrorKind::Capacity {
                    table: Table::Options,
                    capacity: O,
                },
                key.offset,
            ));
        }
        if let Some(v) = self.volumes.get_mut(me) {
            v.opts.1 += 1;
        }
        Ok(())
    }

    fn link<W: FnMut(Warning<'a>)>(
        &mut self,
        p: &mut Parser<'a, '_, W>,
        me: usize,
        sub: Token<'a>,
    ) -> Result<(), Error<'a>> {
        let Some(vol) = self.volumes.get(me).copied() else {
            return Ok(());
        };
        if sub.word.is_empty() {
            p.warn(WarningKind::EmptySubvolume { volume: vol.name }, sub.offset);
            return Ok(());
        }
        match self.volumes.iter().position(|v| v.name.eq_word(&sub.word)) {
            None => p.warn(
                WarningKind::UndefinedSubvolume {
                    volume: vol.name,
                    sub: sub.word,
                },
                sub.offset,
            ),
            Some(i) if i == me => {
                p.warn(WarningKind::SelfSubvolume { volume: vol.name }, sub.offset)
            }
            Some(child) => {
                let link = Link {
                    child,
                    at: sub.offset,
                };
                if self.links.push(link).is_err() {
                    return Err(p.error(
                        ErrorKind::Capacity {
                            table: Table::Links,
                            capacity: L,
                        },
                        sub.offset,
                    ));
                }
                if let Some(v) = self.volumes.get_mut(me) {
                    v.subs.1 += 1;
                }
            }
        }
        Ok(())
    }

    /// The text this volfile borrows.
    pub fn src(&self) -> &'a [u8] {
        self.src
    }

    /// Position of a byte offset in the text.
    pub fn pos(&self, offset: usize) -> Pos {
        Pos::of(self.src, offset)
    }

    /// The volumes in file order.
    pub fn volumes(&self) -> &[Volume<'a>] {
        &self.volumes
    }

    /// Volume `i` (file order).
    pub fn volume(&self, i: usize) -> Option<&Volume<'a>> {
        self.volumes.get(i)
    }

    /// Index of the volume called `name`.
    pub fn find(&self, name: &[u8]) -> Option<usize> {
        self.volumes.iter().position(|v| v.name.eq_bytes(name))
    }

    /// The options of volume `i`, in file order (a repeated key keeps its first place).
    pub fn options(&self, i: usize) -> &[OptionEntry<'a>] {
        self.volumes
            .get(i)
            .and_then(|v| self.options.get(v.opts.0..v.opts.0 + v.opts.1))
            .unwrap_or_default()
    }

    /// The links of volume `i` to its children, in `subvolumes` order (duplicates kept).
    pub fn links(&self, i: usize) -> &[Link] {
        self.volumes
            .get(i)
            .and_then(|v| self.links.get(v.subs.0..v.subs.0 + v.subs.1))
            .unwrap_or_default()
    }

    /// The parents of volume `i`, in the order they were linked (duplicates kept).
    pub fn parents(&self, i: usize) -> impl Iterator<Item = usize> + '_ {
        (0..self.volumes.len()).flat_map(move |p| {
            self.links(p)
                .iter()
                .filter(move |l| l.child == i)
                .map(move |_| p)
        })
    }

    /// Index of volume `i`'s first option among all options (for tables kept beside these).
    pub(crate) fn option_base(&self, i: usize) -> usize {
        self.volumes.get(i).map_or(0, |v| v.opts.0)
    }

    /// The graph's top: the last volume in the file (§1.6).
    pub fn top(&self) -> usize {
        self.volumes.len().saturating_sub(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::{String, ToString};
    use std::vec::Vec as StdVec;

    type Vf<'a> = Volfile<'a, 16, 32, 32>;

    fn err(src: &str) -> String {
        Vf::parse(src.as_bytes()).unwrap_err().to_string()
    }

    fn warnings(src: &str) -> (Vf<'_>, StdVec<String>) {
        let mut w = StdVec::new();
        let vf = Vf::parse_with(src.as_bytes(), &mut |x| w.push(x.to_string())).unwrap();
        (vf, w)
    }

    const GOOD: &str = "volume p\n  type storage/posix\n  option directory /b\nend-volume\n\
        volume wb\n  type performance/write-behind\n  subvolumes p\n  option flush-behind off\nend-volume\n";

    #[test]
    fn a_good_file() {
        let vf = Vf::parse(GOOD.as_bytes()).unwrap();
        assert_eq!(vf.volumes().len(), 2);
        assert_eq!(vf.top(), 1);
        assert!(vf
            .volume(1)
            .unwrap()
            .ty
            .unwrap()
            .eq_bytes(b"performance/write-behind"));
        assert_eq!(vf.links(1), &[Link { child: 0, at: 118 }]);
        assert_eq!(vf.parents(0).collect::<StdVec<_>>(), [1]);
        assert!(vf.options(0)[0].value.eq_bytes(b"/b"));
    }

    #[test]
    fn fatal_errors_name_the_place() {
        assert_eq!(
            err("volume a\n type x\n option k v\nend-volume\nvolume a\n type x\n option k v\nend-volume\n"),
            "5:8: volume 'a' defined again"
        );
        assert_eq!(
            err("volume a\n type x\n option k v\nvolume b\n"),
            "4:1: 'end-volume' not defined for volume 'a'"
        );
        assert_eq!(
            err("volume a\n type x\n type y\n"),
            "3:2: duplicate 'type' defined for volume 'a'"
        );
        assert_eq!(
            err("volume a\n option k v\n type y\n"),
            "3:2: duplicate 'type' defined for volume 'a'"
        );
        assert_eq!(
            err("volume a\n subvolumes b\n"),
            "2:2: duplicate 'subvolumes' defined for volume 'a'"
        );
        assert_eq!(
            err("volume a\n type\n option k v\n"),
            "3:2: Volume a: Please specify volume type"
        );
        assert_eq!(
            err("volume a\n type x\n subvolumes\nend-volume"),
            "4:1: Volume a: Please specify subvolumes"
        );
        assert_eq!(
            err("volume a\n type x\n option k\nend-volume"),
            "4:1: Volume a: Please specify option <key> <value>"
        );
        assert_eq!(
            err("volume a\n type x\n option k volume\n"),
            "3:11: Volume a: Please specify option <key> <value>"
        );
        assert_eq!(
            err("volume a\n type x\nend-volume\n"),
            "3:1: syntax error (volume 'a'): \"end-volume\"; allowed tokens are 'volume', 'type', 'subvolumes', 'option', 'end-volume'"
        );
        assert_eq!(
            err("volume a\n option k v\nend-volume\n"),
            "3:1: \"type\" not specified for volume a"
        );
        assert!(err("").starts_with("1:1: syntax error: end of file"));
        assert!(err("# only\n").starts_with("2:1: syntax error: end of file"));
        assert!(err("VOLUME a\n").starts_with("1:1: syntax error: \"VOLUME\""));
        assert_eq!(
            err("volume a\n type x\n option k \"v\n"),
            "3:11: unterminated quoted string"
        );
        assert!(
            err("volume a\n type x\n option k `date`\nend-volume\n").starts_with("3:11: backtick")
        );
        assert_eq!(err("volume \"\"\n"), "1:8: empty volume name");
        // Options, then subvolumes, then end-volume matches no rule at all.
        assert!(err("volume a\n option k v\n subvolumes a\nend-volume\n").contains("syntax error"));
        assert_eq!(
            err("volume a\n option k v\n subvolumes b\n option x y\nend-volume\n"),
            "5:1: \"type\" not specified for volume a"
        );
    }

    #[test]
    fn non_fatal_problems_are_warnings() {
        let (vf, w) = warnings(
            "volume p\n type t\n option k \"\"\n option k v1\n option k v2\nend-volume\n\
             volume q\n type t\n subvolumes p ghost q p\nend-volume\n",
        );
        assert_eq!(
            w,
            [
                "3:11: Volume 'p': option with an empty key or value skipped (Invalid argument)",
                "5:9: Volume 'p': option 'k' given again, the last value wins",
                "9:15: Volume 'q': subvolume 'ghost' is not defined prior to usage",
                "9:21: Volume 'q': has 'q' itself as subvolume",
            ]
        );
        assert_eq!(vf.options(0).len(), 1);
        assert!(vf.options(0)[0].value.eq_bytes(b"v2"));
        assert_eq!(vf.links(1).len(), 2);
        assert_eq!(vf.parents(0).count(), 2);
    }

    #[test]
    fn free_layout_quotes_and_crlf() {
        let (vf, _) = warnings(
            "volume \"a b\" type x option \"k\" \"v\\\"w\" end-volume\r\n\
             volume c\r\n type y\r\n subvolumeS \"a b\" a\\ b\r\nend-volume\r\n",
        );
        assert!(vf.volume(0).unwrap().name.eq_bytes(b"a b"));
        assert!(vf.options(0)[0].value.eq_bytes(b"v\"w"));
        assert_eq!(vf.links(1).len(), 1);
    }

    #[test]
    fn capacity_is_an_error() {
        let r = Volfile::<2, 4, 4>::parse(
            b"volume a type x option k v end-volume volume b type x option k v end-volume volume c type x option k v end-volume",
        );
        assert_eq!(
            r.unwrap_err().kind,
            ErrorKind::Capacity {
                table: Table::Volumes,
                capacity: 2
            }
        );
    }
}
