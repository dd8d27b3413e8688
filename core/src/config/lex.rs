//! The dm_config tokenizer (config-tree.md §1.2).
//!
//! One-token lookahead; whether a token may be a number or bare string depends only on the
//! previous token (`=`, `[` or `,`), exactly as libdevmapper decides it.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Tok {
    Eof,
    Eq,
    SectionBegin,
    SectionEnd,
    ArrayBegin,
    ArrayEnd,
    Comma,
    Int,
    Float,
    /// `"…"`; `escaped` says whether it contains `\"` or `\\` and so needs unescaping.
    DoubleQuoted {
        escaped: bool,
    },
    SingleQuoted,
    /// A quoted string whose closing quote is missing.
    Unterminated,
    Bare,
    Ident,
}

impl Tok {
    fn opens_value(self) -> bool {
        matches!(self, Tok::Eq | Tok::ArrayBegin | Tok::Comma)
    }
}

/// Byte classes, so the hot loops are one table look-up per byte.
const SPACE: u8 = 1; // C isspace: ' ' \t \n \v \f \r
const WORD_END: u8 = 2; // ends an identifier or bare string: space, '#', '=', '{', '}'
const DIGIT: u8 = 4;
const SLASH: u8 = 8;

static CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let spaces = [b' ', b'\t', b'\n', 0x0b, 0x0c, b'\r'];
    let mut i = 0;
    while i < spaces.len() {
        t[spaces[i] as usize] = SPACE | WORD_END;
        i += 1;
    }
    t[b'#' as usize] = WORD_END;
    t[b'=' as usize] = WORD_END;
    t[b'{' as usize] = WORD_END;
    t[b'}' as usize] = WORD_END;
    t[b'/' as usize] = SLASH;
    let mut d = b'0';
    while d <= b'9' {
        t[d as usize] = DIGIT;
        d += 1;
    }
    t
};

pub(crate) struct Lexer<'s> {
    src: &'s [u8],
    pos: usize,
    /// Current token and its byte range.
    pub tok: Tok,
    pub start: usize,
    pub end: usize,
    /// Whether an identifier or bare string contains `/` (a key path to split).
    pub slash: bool,
}

impl<'s> Lexer<'s> {
    /// `src` must already be cut at its first NUL (a NUL ends the input, like libdevmapper's C
    /// strings).
    pub fn new(src: &'s [u8]) -> Self {
        let mut l = Lexer {
            src,
            pos: 0,
            tok: Tok::SectionEnd,
            start: 0,
            end: 0,
            slash: false,
        };
        l.advance();
        l
    }

    pub fn text(&self) -> &'s [u8] {
        &self.src[self.start..self.end]
    }

    fn skip_space(&mut self) {
        let s = self.src;
        let mut p = self.pos;
        while p < s.len() {
            let c = s[p];
            if CLASS[c as usize] & SPACE != 0 {
                p += 1;
            } else if c == b'#' {
                p = memchr::memchr(b'\n', &s[p..]).map_or(s.len(), |i| p + i);
            } else {
                break;
            }
        }
        self.pos = p;
    }

    /// Moves to the next token.
    pub fn advance(&mut self) {
        let values_allowed = self.tok.opens_value();
        self.skip_space();
        let s = self.src;
        let b = self.pos;
        self.start = b;
        if b >= s.len() {
            self.tok = Tok::Eof;
            self.end = b;
            return;
        }
        let mut e = b + 1;
        self.tok = match s[b] {
            b'{' => Tok::SectionBegin,
            b'}' => Tok::SectionEnd,
            b'[' => Tok::ArrayBegin,
            b']' => Tok::ArrayEnd,
            b',' => Tok::Comma,
            b'=' => Tok::Eq,
            b'"' => {
                let mut escaped = false;
                loop {
                    let stop = memchr::memchr2(b'"', b'\\', &s[e..]);
                    match stop {
                        None => {
                            e = s.len();
                            break Tok::Unterminated;
                        }
                        Some(i) if s[e + i] == b'"' => {
                            e += i + 1;
                            break Tok::DoubleQuoted { escaped };
                        }
                        Some(i) => {
                            // A backslash swallows the next byte, whatever it is.
                            let at = e + i + 1;
                            if at >= s.len() {
                                e = s.len();
                                break Tok::Unterminated;
                            }
                            escaped |= matches!(s[at], b'"' | b'\\');
                            e = at + 1;
                        }
                    }
                }
            }
            b'\'' => match memchr::memchr(b'\'', &s[e..]) {
                Some(i) => {
                    e += i + 1;
                    Tok::SingleQuoted
                }
                None => {
                    e = s.len();
                    Tok::Unterminated
                }
            },
            c if values_allowed
                && (CLASS[c as usize] & DIGIT != 0 || matches!(c, b'+' | b'-' | b'.')) =>
            {
                let mut dot = c == b'.';
                while e < s.len() {
                    let d = s[e];
                    if CLASS[d as usize] & DIGIT != 0 {
                        e += 1;
                    } else if d == b'.' && !dot {
                        dot = true;
                        e += 1;
                    } else {
                        break;
                    }
                }
                if dot {
                    Tok::Float
                } else {
                    Tok::Int
                }
            }
            c => {
                let mut seen = CLASS[c as usize];
                while e < s.len() {
                    let class = CLASS[s[e] as usize];
                    if class & WORD_END != 0 {
                        break;
                    }
                    seen |= class;
                    e += 1;
                }
                self.slash = seen & SLASH != 0;
                if values_allowed {
                    Tok::Bare
                } else {
                    Tok::Ident
                }
            }
        };
        self.end = e;
        self.pos = e;
    }

    /// The bytes after the current token (for strtod's exponent, which the tokenizer does not
    /// include in a FLOAT token but the C conversion reads anyway).
    pub fn rest(&self) -> &'s [u8] {
        &self.src[self.end..]
    }
}

/// Upper bounds of what parsing `src` can need (nodes incl. the root, values, arena bytes), for
/// "capacity N, needs up to M" errors. A quoted string may be a key or a value, so it counts as both.
pub(crate) fn count_needs(src: &[u8]) -> (usize, usize, usize) {
    let (mut nodes, mut values, mut bytes) = (1usize, 0usize, 0usize);
    let mut lx = Lexer::new(src);
    let mut prev = Tok::SectionEnd;
    while lx.tok != Tok::Eof {
        let text = lx.text();
        match lx.tok {
            Tok::Ident => nodes += 1 + memchr::memchr_iter(b'/', text).count(),
            Tok::SingleQuoted | Tok::DoubleQuoted { .. } | Tok::Unterminated => {
                nodes += 1 + memchr::memchr_iter(b'/', text).count();
                values += 1;
                if matches!(lx.tok, Tok::DoubleQuoted { escaped: true }) {
                    bytes += text.len();
                }
            }
            Tok::ArrayEnd if prev == Tok::ArrayBegin => values += 1,
            Tok::Int | Tok::Float | Tok::Bare => values += 1,
            _ => {}
        }
        prev = lx.tok;
        lx.advance();
    }
    (nodes, values, bytes)
}
