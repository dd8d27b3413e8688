//! The volfile lexer: GlusterFS's flex rules (translators.md §1.3) over borrowed bytes.
//!
//! Tokens borrow the input. A quoted string stays raw (its bytes between the quotes) and is
//! decoded on the fly by [`Word::bytes`], so nothing is copied.

use core::fmt;

/// A text position: byte offset, 1-based line and 1-based column (in bytes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Pos {
    /// Byte offset into the input.
    pub offset: usize,
    /// 1-based line (newlines before `offset`, plus one).
    pub line: u32,
    /// 1-based column in bytes.
    pub column: u32,
}

impl Pos {
    /// The position of `offset` in `src` (clamped to its length).
    pub fn of(src: &[u8], offset: usize) -> Pos {
        let offset = offset.min(src.len());
        let before = src.get(..offset).unwrap_or_default();
        let line = 1 + memchr::memchr_iter(b'\n', before).count();
        let line_start = memchr::memrchr(b'\n', before).map_or(0, |i| i + 1);
        Pos {
            offset,
            line: u32::try_from(line).unwrap_or(u32::MAX),
            column: u32::try_from(offset - line_start + 1).unwrap_or(u32::MAX),
        }
    }
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// A name, type, key or value: a bare ID or a quoted string, borrowed from the input.
///
/// Inside quotes `\x` stands for `x` (no C escapes) and a line feed is dropped, as upstream's
/// lexer does; [`Word::bytes`] yields the decoded bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Word<'a> {
    raw: &'a [u8],
    quoted: bool,
}

impl<'a> Word<'a> {
    /// A bare (unquoted) word.
    pub const fn bare(raw: &'a [u8]) -> Word<'a> {
        Word { raw, quoted: false }
    }

    /// A quoted word; `raw` is what stood between the quotes.
    pub const fn quoted(raw: &'a [u8]) -> Word<'a> {
        Word { raw, quoted: true }
    }

    /// The input bytes (between the quotes for a quoted word).
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }

    /// Whether the word was quoted.
    pub fn is_quoted(&self) -> bool {
        self.quoted
    }

    /// The decoded bytes.
    pub fn bytes(&self) -> WordBytes<'a> {
        WordBytes {
            rest: self.raw,
            quoted: self.quoted,
        }
    }

    /// The decoded bytes as one borrowed slice, when decoding changes nothing.
    pub fn as_plain(&self) -> Option<&'a [u8]> {
        if !self.quoted || !self.raw.iter().any(|&c| c == b'\\' || c == b'\n') {
            Some(self.raw)
        } else {
            None
        }
    }

    /// Decoded length in bytes.
    pub fn len(&self) -> usize {
        match self.as_plain() {
            Some(p) => p.len(),
            None => self.bytes().count(),
        }
    }

    /// True when the decoded word is empty (upstream's NULL value for `""`).
    pub fn is_empty(&self) -> bool {
        self.bytes().next().is_none()
    }

    /// Decoded equality with plain bytes.
    pub fn eq_bytes(&self, other: &[u8]) -> bool {
        match self.as_plain() {
            Some(p) => p == other,
            None => self.bytes().eq(other.iter().copied()),
        }
    }

    /// Decoded equality with another word.
    pub fn eq_word(&self, other: &Word<'_>) -> bool {
        match (self.as_plain(), other.as_plain()) {
            (Some(a), Some(b)) => a == b,
            _ => self.bytes().eq(other.bytes()),
        }
    }

    /// Copies the decoded bytes into `buf`; `None` when they do not fit.
    pub fn decode_into<'b>(&self, buf: &'b mut [u8]) -> Option<&'b [u8]> {
        let mut n = 0;
        for c in self.bytes() {
            *buf.get_mut(n)? = c;
            n += 1;
        }
        buf.get(..n)
    }
}

impl fmt::Display for Word<'_> {
    /// The decoded text, invalid UTF-8 replaced.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(p) = self.as_plain() {
            return write_lossy(f, p);
        }
        // Decode through a small buffer, never splitting a UTF-8 sequence between pieces.
        let mut buf = [0u8; 64];
        let mut n = 0;
        for c in self.bytes() {
            if n == buf.len() {
                let cut = utf8_tail_start(&buf);
                write_lossy(f, &buf[..cut])?;
                buf.copy_within(cut.., 0);
                n -= cut;
            }
            buf[n] = c;
            n += 1;
        }
        write_lossy(f, &buf[..n])
    }
}

fn write_lossy(f: &mut fmt::Formatter<'_>, b: &[u8]) -> fmt::Result {
    for chunk in b.utf8_chunks() {
        f.write_str(chunk.valid())?;
        if !chunk.invalid().is_empty() {
            f.write_str("\u{fffd}")?;
        }
    }
    Ok(())
}

/// Where a trailing incomplete UTF-8 sequence starts (the length when there is none; never 0
/// for a full buffer, so the caller always makes progress).
fn utf8_tail_start(b: &[u8]) -> usize {
    let len = b.len();
    for back in 1..=3.min(len) {
        let c = b[len - back];
        if c & 0xC0 != 0x80 {
            let need = if c >= 0xF0 {
                4
            } else if c >= 0xE0 {
                3
            } else if c >= 0xC0 {
                2
            } else {
                1
            };
            return if need > back { len - back } else { len };
        }
    }
    len
}

/// Iterator over a [`Word`]'s decoded bytes.
#[derive(Clone, Debug)]
pub struct WordBytes<'a> {
    rest: &'a [u8],
    quoted: bool,
}

impl Iterator for WordBytes<'_> {
    type Item = u8;

    fn next(&mut self) -> Option<u8> {
        loop {
            let (&c, rest) = self.rest.split_first()?;
            self.rest = rest;
            if !self.quoted {
                return Some(c);
            }
            match c {
                // A line feed inside quotes matches no rule: flex echoes it and drops it.
                b'\n' => continue,
                b'\\' => match self.rest.split_first() {
                    Some((&n, r)) if n != b'\n' => {
                        self.rest = r;
                        return Some(n);
                    }
                    // `\` before a line feed matches no rule either: both are dropped.
                    _ => continue,
                },
                _ => return Some(c),
            }
        }
    }
}

/// What a token is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum TokenKind {
    /// `volume`
    Volume,
    /// `type`
    Type,
    /// `end-volume`
    EndVolume,
    /// `subvolumes` (or `subvolumeS`)
    Subvolumes,
    /// `option`
    Option,
    /// An ID or a quoted string.
    Word,
}

/// One token: its kind, its text and where it starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Token<'a> {
    /// Keyword or word.
    pub kind: TokenKind,
    /// The text (a keyword's own spelling for keywords).
    pub word: Word<'a>,
    /// Byte offset of its first byte (the opening quote for strings).
    pub offset: usize,
}

/// A lexer failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum LexError {
    /// A quoted string runs to the end of the input (offset of its opening quote).
    UnterminatedString(usize),
}

/// Something the lexer dropped, as upstream does silently (flex echoes it to stdout).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Stray(pub usize);

/// Offset of the first backtick that upstream's pre-processor would treat as a command
/// delimiter: one not preceded by an odd run of backslashes (§1.2). Comments are not exempt,
/// because the pre-processor runs before the lexer.
pub fn find_backtick(src: &[u8]) -> Option<usize> {
    let mut escaped = false;
    for (i, &c) in src.iter().enumerate() {
        if c == b'`' && !escaped {
            return Some(i);
        }
        escaped = c == b'\\' && !escaped;
    }
    None
}

/// Splits volfile text into tokens.
#[derive(Clone, Debug)]
pub struct Lexer<'a> {
    src: &'a [u8],
    at: usize,
}

fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r' | b'\n')
}

fn keyword(id: &[u8]) -> Option<TokenKind> {
    Some(match id {
        b"volume" => TokenKind::Volume,
        b"type" => TokenKind::Type,
        b"end-volume" => TokenKind::EndVolume,
        b"subvolumes" | b"subvolumeS" => TokenKind::Subvolumes,
        b"option" => TokenKind::Option,
        _ => return None,
    })
}

impl<'a> Lexer<'a> {
    /// A lexer at the start of `src`.
    pub fn new(src: &'a [u8]) -> Lexer<'a> {
        Lexer { src, at: 0 }
    }

    /// The input.
    pub fn src(&self) -> &'a [u8] {
        self.src
    }

    /// Offset of the next unread byte.
    pub fn offset(&self) -> usize {
        self.at
    }

    /// The next token, `Ok(None)` at the end. Dropped stray backslashes are reported to
    /// `stray`.
    pub fn next_token(
        &mut self,
        stray: &mut impl FnMut(Stray),
    ) -> Result<Option<Token<'a>>, LexError> {
        loop {
            let rest = self.src.get(self.at..).unwrap_or_default();
            let Some(&c) = rest.first() else {
                return Ok(None);
            };
            let start = self.at;
            match c {
                c if is_space(c) => self.at += 1,
                // A comment only where a token starts; it wins the tie with the ID rule.
                b'#' => {
                    self.at += memchr::memchr(b'\n', rest).unwrap_or(rest.len());
                }
                b'\\' => {
                    stray(Stray(start));
                    self.at += 1;
                }
                b'"' => {
                    let body = rest.get(1..).unwrap_or_default();
                    let mut i = 0;
                    loop {
                        match body.get(i) {
                            None => return Err(LexError::UnterminatedString(start)),
                            Some(b'"') => break,
                            Some(b'\\') if body.get(i + 1).is_some_and(|&n| n != b'\n') => i += 2,
                            Some(_) => i += 1,
                        }
                    }
                    self.at = start + 1 + i + 1;
                    return Ok(Some(Token {
                        kind: TokenKind::Word,
                        word: Word::quoted(body.get(..i).unwrap_or_default()),
                        offset: start,
                    }));
                }
                _ => {
                    let len = rest
                        .iter()
                        .position(|&c| is_space(c) || c == b'"' || c == b'\\')
                        .unwrap_or(rest.len());
                    let id = rest.get(..len).unwrap_or_default();
                    self.at += len;
                    return Ok(Some(Token {
                        kind: keyword(id).unwrap_or(TokenKind::Word),
                        word: Word::bare(id),
                        offset: start,
                    }));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::ToString;
    use std::vec::Vec;

    fn lex(src: &[u8]) -> Vec<(TokenKind, Vec<u8>)> {
        let mut l = Lexer::new(src);
        let mut out = Vec::new();
        while let Some(t) = l.next_token(&mut |_| {}).unwrap() {
            out.push((t.kind, t.word.bytes().collect()));
        }
        out
    }

    #[test]
    fn keywords_are_lowercase_whole_tokens() {
        use TokenKind::*;
        let toks = lex(b"volume VOLUME volumes subvolumeS Subvolumes end-volume end-volumes");
        let kinds: Vec<_> = toks.iter().map(|t| t.0).collect();
        assert_eq!(
            kinds,
            [Volume, Word, Word, Subvolumes, Word, EndVolume, Word]
        );
    }

    #[test]
    fn comments_start_only_at_a_token() {
        let toks = lex(b"a#b # c d\ne");
        assert_eq!(toks.len(), 2);
        assert_eq!(toks[0].1, b"a#b");
        assert_eq!(toks[1].1, b"e");
    }

    #[test]
    fn strings_drop_line_feeds_and_keep_escaped_chars() {
        let toks = lex(b"\"I am\n testing\" \"a\\tb\\\"c\\\\\" x\"y\"");
        assert_eq!(toks[0].1, b"I am testing");
        assert_eq!(toks[1].1, b"atb\"c\\");
        assert_eq!(toks[2].1, b"x");
        assert_eq!(toks[3].1, b"y");
    }

    #[test]
    fn a_lone_backslash_splits_and_is_reported() {
        let mut l = Lexer::new(b"a\\b");
        let mut strays = Vec::new();
        let mut words = Vec::new();
        while let Some(t) = l.next_token(&mut |s| strays.push(s.0)).unwrap() {
            words.push(t.word.raw().to_vec());
        }
        assert_eq!(words, [b"a".to_vec(), b"b".to_vec()]);
        assert_eq!(strays, [1]);
    }

    #[test]
    fn unterminated_string_is_an_error() {
        let mut l = Lexer::new(b"x \"abc");
        assert!(l.next_token(&mut |_| {}).unwrap().is_some());
        assert_eq!(
            l.next_token(&mut |_| {}),
            Err(LexError::UnterminatedString(2))
        );
    }

    #[test]
    fn backticks_escaped_or_not() {
        assert_eq!(find_backtick(b"a `date`"), Some(2));
        assert_eq!(find_backtick(b"a \\`date"), None);
        assert_eq!(find_backtick(b"a \\\\`date"), Some(4));
        assert_eq!(find_backtick(b"# `x`"), Some(2));
    }

    #[test]
    fn display_decodes_long_quoted_text() {
        let mut src = std::vec![b'"'];
        for _ in 0..40 {
            src.extend_from_slice("é\\\"".as_bytes());
        }
        src.push(b'"');
        let t = Lexer::new(&src).next_token(&mut |_| {}).unwrap().unwrap();
        assert_eq!(t.word.to_string(), "é\"".repeat(40));
    }

    #[test]
    fn positions() {
        let p = Pos::of(b"ab\ncd", 4);
        assert_eq!((p.line, p.column), (2, 2));
        assert_eq!(Pos::of(b"", 9).offset, 0);
    }
}
