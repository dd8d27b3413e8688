//! Inputs for the differential test: a classifier for the tokens where lvm2 2.03.16 (the
//! installed oracle) and HEAD (us) deliberately disagree, and proptest generators over the
//! grammar of config-tree.md §1.2–1.3 (documents and token soup).

use proptest::prelude::*;

use crate::oracle_data::show;

// ---------------------------------------------------------------------------------------------
// Divergence classifier: a lexer after config-tree.md §1.2, enough to find the tokens where lvm2
// 2.03.16 (the oracle) and HEAD (us) disagree.

pub fn token_divergence(input: &[u8]) -> Option<&'static str> {
    let s = match input.iter().position(|&b| b == 0) {
        Some(n) => &input[..n],
        None => input,
    };
    let word_end =
        |c: u8| c.is_ascii_whitespace() || c == 0x0b || matches!(c, b'#' | b'=' | b'{' | b'}');
    let mut i = 0;
    let mut values_allowed = false;
    while i < s.len() {
        let c = s[i];
        if c.is_ascii_whitespace() || c == 0x0b {
            i += 1;
            continue;
        }
        if c == b'#' {
            i = s[i..]
                .iter()
                .position(|&b| b == b'\n')
                .map_or(s.len(), |k| i + k);
            continue;
        }
        let start = i;
        let mut next_values = false;
        match c {
            b'=' | b'[' | b',' => {
                next_values = true;
                i += 1;
            }
            b'{' | b'}' | b']' => i += 1,
            b'"' => {
                i += 1;
                loop {
                    match s.get(i) {
                        None => return Some("unterminated string"),
                        Some(b'\\') if i + 1 < s.len() => i += 2,
                        Some(b'\\') => return Some("unterminated string"),
                        Some(b'"') => break,
                        Some(_) => i += 1,
                    }
                }
                i += 1;
            }
            b'\'' => match s[i + 1..].iter().position(|&b| b == b'\'') {
                Some(k) => i += k + 2,
                None => return Some("unterminated string"),
            },
            b'0'..=b'9' | b'+' | b'-' | b'.' if values_allowed => {
                let mut dot = c == b'.';
                i += 1;
                while i < s.len() && (s[i].is_ascii_digit() || (s[i] == b'.' && !dot)) {
                    dot |= s[i] == b'.';
                    i += 1;
                }
                let tok = &s[start..i];
                if !dot {
                    let digits = tok
                        .strip_prefix(b"-")
                        .or_else(|| tok.strip_prefix(b"+"))
                        .unwrap_or(tok);
                    if digits.is_empty() {
                        return Some("sign without digits");
                    }
                    if digits.len() > 1
                        && digits[0] == b'0'
                        && digits.iter().any(|&d| d == b'8' || d == b'9')
                    {
                        return Some("leading-zero INT with 8 or 9");
                    }
                    if digits == b"0" && matches!(s.get(i), Some(b'x' | b'X')) {
                        return Some("0x after INT 0");
                    }
                }
            }
            _ => {
                while i < s.len() && !word_end(s[i]) {
                    i += 1;
                }
            }
        }
        values_allowed = next_values;
    }
    None
}

// ---------------------------------------------------------------------------------------------
// Generated documents

/// A generated document as pieces, so that shrinking removes whole tokens.
#[derive(Clone)]
pub struct Doc(Vec<Piece>);

#[derive(Clone, Debug)]
pub struct Piece {
    class: Class,
    text: Vec<u8>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// Whitespace or a comment (possibly empty).
    Space,
    /// An identifier key or bare string: runs on until whitespace, `#`, `=`, `{` or `}`.
    Word,
    Number,
    Quoted,
    Punct,
}

impl Doc {
    /// Joins the pieces, adding a space where two tokens would otherwise fuse into one.
    pub fn render(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let mut last = Class::Space;
        for p in &self.0 {
            if p.text.is_empty() {
                continue;
            }
            let fuses = match last {
                Class::Word => !matches!(p.text[0], b'=' | b'{' | b'}') && p.class != Class::Space,
                // `a=1 b=2` must not become `a=1b=2`, nor `a=1.5 e3=1` an exponent.
                Class::Number => matches!(p.class, Class::Word | Class::Number),
                _ => false,
            };
            if fuses {
                out.push(b' ');
            }
            out.extend_from_slice(&p.text);
            last = p.class;
        }
        out
    }
}

impl std::fmt::Debug for Doc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&show(&self.render()))
    }
}

pub fn piece(class: Class, text: impl Into<Vec<u8>>) -> Piece {
    Piece {
        class,
        text: text.into(),
    }
}

pub fn punct(c: &str) -> Piece {
    piece(Class::Punct, c)
}

/// Whitespace between tokens: often none, sometimes CRLF, VT, FF or a comment.
pub fn ws() -> BoxedStrategy<Piece> {
    prop_oneof![
        6 => Just("".to_string()),
        6 => Just(" ".to_string()),
        3 => Just("\n".to_string()),
        1 => Just("\t".to_string()),
        1 => Just("\r\n".to_string()),
        1 => Just("  \n\t ".to_string()),
        1 => Just("\x0b".to_string()),
        1 => Just("\x0c".to_string()),
        2 => "#[a-z0-9 #=\"'{}\\[\\],\t]{0,12}\n",
    ]
    .prop_map(|s| piece(Class::Space, s))
    .boxed()
}

/// Keys: a small pool (so duplicates are common), identifiers with the odd characters key context
/// allows, paths, and quoted keys.
pub fn key() -> BoxedStrategy<Vec<Piece>> {
    let pool = prop::sample::select(vec!["a", "b", "c", "x", "y", "dup", "creation_time", "id"]);
    prop_oneof![
        8 => pool.prop_map(|k| vec![piece(Class::Word, k)]),
        3 => "[a-zA-Z_][a-zA-Z0-9_.+-]{0,8}".prop_map(|k| vec![piece(Class::Word, k)]),
        1 => "[0-9.+-][a-zA-Z0-9_.+-]{0,5}".prop_map(|k| vec![piece(Class::Word, k)]),
        1 => "[a-z][a-z0-9!\\[\\],:@'\"]{1,6}".prop_map(|k| vec![piece(Class::Word, k)]),
        2 => path_key().prop_map(|k| vec![piece(Class::Word, k)]),
        2 => dq_string(1).prop_map(|k| vec![piece(Class::Quoted, k)]),
        1 => "'[a-z0-9 #!/={}\"\\\\.-]{1,6}'".prop_map(|k| vec![piece(Class::Quoted, k)]),
    ]
    .boxed()
}

pub fn path_key() -> BoxedStrategy<String> {
    let seg = prop::sample::select(vec!["a", "b", "c", "x", "vg", "lv0"]);
    (
        prop::collection::vec((seg, prop::sample::select(vec!["/", "//"])), 1..4),
        seg_last(),
        0..8u8,
    )
        .prop_map(|(segs, last, lead)| {
            let mut k = String::new();
            if lead == 0 {
                k.push('/');
            }
            for (s, sep) in segs {
                k += s;
                k += sep;
            }
            k += &last;
            k
        })
        .boxed()
}

pub fn seg_last() -> BoxedStrategy<String> {
    prop_oneof![9 => "[a-d]", 1 => Just(String::new())].boxed()
}

/// A double-quoted string of `min..8` units: plain bytes, the two real escapes, a backslash
/// that is kept (`\n` stays two bytes), raw newlines and tabs, UTF-8 and a stray high byte.
pub fn dq_string(min: usize) -> BoxedStrategy<Vec<u8>> {
    let unit = prop_oneof![
        8 => "[a-zA-Z0-9 #=,{}\\[\\]'/:.!-]".prop_map(String::into_bytes),
        2 => Just(b"\\\"".to_vec()),
        2 => Just(b"\\\\".to_vec()),
        1 => Just(b"\\n".to_vec()),
        1 => Just(b"\\t".to_vec()),
        1 => Just(b"\n".to_vec()),
        1 => Just(b"\t".to_vec()),
        1 => Just(b"\r".to_vec()),
        1 => Just(b"\x0b".to_vec()),
        1 => Just("\u{e9}\u{f1}".as_bytes().to_vec()),
        1 => Just(b"\xff".to_vec()),
    ];
    prop::collection::vec(unit, min..8)
        .prop_map(|units| {
            let mut s = vec![b'"'];
            units.iter().for_each(|u| s.extend_from_slice(u));
            s.push(b'"');
            s
        })
        .boxed()
}

pub fn int_text() -> BoxedStrategy<String> {
    let sign = prop::sample::select(vec!["", "", "", "-", "+"]);
    prop_oneof![
        6 => (sign.clone(), 0..100_000u32).prop_map(|(s, n)| format!("{s}{n}")),
        3 => (sign.clone(), "0[0-7]{1,8}").prop_map(|(s, n)| format!("{s}{n}")),
        2 => any::<i64>().prop_map(|n| n.to_string()),
        1 => prop::sample::select(vec![
            "0", "-0", "+0", "9223372036854775807", "-9223372036854775808", "+9223372036854775807",
            "0777777777777777777777", "-01000000000000000000000", "5000000000", "-2147483649",
        ])
        .prop_map(String::from),
        // Out of range: an error, except as creation_time.
        1 => prop::sample::select(vec![
            "9223372036854775808", "-9223372036854775809", "99999999999999999999",
        ])
            .prop_map(String::from),
    ]
    .boxed()
}

pub fn float_text() -> BoxedStrategy<String> {
    let sign = prop::sample::select(vec!["", "", "-", "+"]);
    prop_oneof![
        // Forms: 1.5, -.25, 5., 012.5
        4 => (sign.clone(), 0..100_000u32, "[0-9]{0,6}")
            .prop_map(|(s, i, f)| format!("{s}{i}.{f}")),
        2 => (sign.clone(), "[0-9]{1,6}").prop_map(|(s, f)| format!("{s}.{f}")),
        1 => (sign.clone(), "0[0-9]{1,3}").prop_map(|(s, i)| format!("{s}{i}.")),
        // Odd multiples of 1/128 have a 5 in the 7th decimal: %f must round half to even.
        3 => (sign.clone(), 0..2000u32, 0..64u32)
            .prop_map(|(s, i, j)| format!("{s}{i}.{:07}", (2 * j + 1) * 78125)),
        // Every decimal that f32 forces: beyond 2^24, long fractions, tiny values.
        2 => any::<f32>().prop_filter("finite", |f| f.is_finite()).prop_map(|f| {
            let t = f.to_string();
            if t.contains('.') { t } else { t + ".0" }
        }),
        1 => prop::sample::select(vec![
            "123456789.5", "3.14159265358979", "100000000000000000000.0", "0.0000001", "0.0000005",
            "-0.0", "16777217.0", "0.1", ".", "-.", "340282346638528859811704183484516925440.0",
        ])
        .prop_map(String::from),
    ]
    .boxed()
}

pub fn scalar() -> BoxedStrategy<Piece> {
    prop_oneof![
        4 => int_text().prop_map(|t| piece(Class::Number, t)),
        3 => float_text().prop_map(|t| piece(Class::Number, t)),
        4 => dq_string(0).prop_map(|t| piece(Class::Quoted, t)),
        1 => "'[a-zA-Z0-9 #=,{}\\[\\]\"/\\\\:.\n-]{0,8}'".prop_map(|t| piece(Class::Quoted, t)),
        // A bare string must not start like a number or a token, and may contain `,[]'"`.
        3 => "[a-zA-Z_/:@%~*!][a-zA-Z0-9_/:@%~*!.,+\\[\\]'\"-]{0,10}"
            .prop_map(|t| piece(Class::Word, t)),
        1 => Just(piece(Class::Word, "\u{f1}x")),
        1 => bool_word(),
    ]
    .boxed()
}

/// find_bool's words, in any case, bare or quoted.
pub fn bool_word() -> BoxedStrategy<Piece> {
    let words = [
        "yes", "No", "ON", "off", "True", "FALSE", "y", "N", "t", "0",
    ];
    prop_oneof![
        prop::sample::select(words.to_vec()).prop_map(|w| piece(Class::Word, w)),
        prop::sample::select(words.to_vec()).prop_map(|w| piece(Class::Quoted, format!("\"{w}\""))),
    ]
    .boxed()
}

/// `[ elem (, elem)* [,] ]`; the comma may be left out only before a quoted string, the one
/// token that reads the same in key context.
pub fn array() -> BoxedStrategy<Vec<Piece>> {
    (
        ws(),
        prop::collection::vec((scalar(), ws(), ws(), any::<bool>()), 0..6),
        any::<bool>(),
        ws(),
    )
        .prop_map(|(open_ws, elems, trailing_comma, close_ws)| {
            let mut v = vec![punct("["), open_ws];
            let n = elems.len();
            for (i, (s, w1, w2, drop_comma)) in elems.iter().enumerate() {
                v.push(s.clone());
                v.push(w1.clone());
                let next_quoted = elems.get(i + 1).is_some_and(|e| e.0.class == Class::Quoted);
                if (i + 1 < n && !(*drop_comma && next_quoted)) || (i + 1 == n && trailing_comma) {
                    v.push(punct(","));
                    v.push(w2.clone());
                }
            }
            v.push(close_ws);
            v.push(punct("]"));
            v
        })
        .boxed()
}

pub fn assignment() -> BoxedStrategy<Vec<Piece>> {
    let value = prop_oneof![3 => scalar().prop_map(|s| vec![s]), 1 => array()];
    (key(), ws(), ws(), value)
        .prop_map(|(mut k, w1, w2, v)| {
            k.push(w1);
            k.push(punct("="));
            k.push(w2);
            k.extend(v);
            k
        })
        .boxed()
}

/// `key = 1.5e3 = value`: strtod reads the exponent that the tokenizer leaves for the next key,
/// so this is two settings, `key=1500.000000` and `e3=value` (config-tree.md §1.4).
pub fn exponent_assignment() -> BoxedStrategy<Vec<Piece>> {
    let exp = prop_oneof![
        4 => "[eE][+-]?[0-9]{1,2}",
        1 => prop::sample::select(vec![
            "e38", "e39", "e-38", "e-45", "e-46", "e308", "e309", "e-310", "e-400", "e+",
        ])
            .prop_map(String::from),
    ];
    (key(), float_text(), exp, ws(), scalar())
        .prop_map(|(mut k, f, e, w, v)| {
            k.extend([punct("="), piece(Class::Number, f + &e), w, punct("="), v]);
            k
        })
        .boxed()
}

/// Items, with sections nested up to 3 levels.
pub fn items() -> BoxedStrategy<Vec<Piece>> {
    let leaf = prop::collection::vec((ws(), assignment()), 1..5).prop_map(flatten_items);
    leaf.prop_recursive(3, 40, 6, |inner| {
        let item = prop_oneof![
            6 => assignment(),
            1 => exponent_assignment(),
            4 => (key(), ws(), prop::option::of(inner), ws()).prop_map(|(mut k, w1, body, w2)| {
                k.push(w1);
                k.push(punct("{"));
                k.extend(body.unwrap_or_default());
                k.push(w2);
                k.push(punct("}"));
                k
            }),
        ];
        prop::collection::vec((ws(), item), 1..6).prop_map(flatten_items)
    })
    .boxed()
}

pub fn flatten_items(items: Vec<(Piece, Vec<Piece>)>) -> Vec<Piece> {
    items
        .into_iter()
        .flat_map(|(w, i)| std::iter::once(w).chain(i))
        .collect()
}

/// A document; now and then followed by a NUL and junk, which must be ignored.
pub fn document() -> BoxedStrategy<Doc> {
    let tail = prop_oneof![
        19 => Just(String::new()),
        1 => "\\x00[a-z={}\\[\\]\"']{0,6}",
    ];
    (items(), ws(), tail)
        .prop_map(|(mut p, w, tail)| {
            p.push(w);
            p.push(piece(Class::Space, tail));
            Doc(p)
        })
        .boxed()
}

/// Token soup: mostly invalid, exercising accept/reject and error positions.
pub fn soup() -> BoxedStrategy<Doc> {
    let token = prop_oneof![
        3 => prop::sample::select(vec!["=", "{", "}", "[", "]", ","]).prop_map(punct),
        3 => key().prop_map(|mut k| k.remove(0)),
        2 => scalar(),
        1 => prop::sample::select(vec![
            "09", "-", "+", "0x10", "1e5", "1.5e3", "1.5E-2", "2.5e+40", "1.0e-400", "1.2.3",
            "\"abc", "'abc",
            "\"\"", "''", "#", "\0", "\"a\\", "-.", ".",
        ])
        .prop_map(|t| piece(Class::Punct, t)),
    ];
    // Half the time tokens are glued as they come (as punctuation, the renderer adds no space),
    // since fused tokens are part of the point.
    (prop::collection::vec((token, ws()), 1..16), any::<bool>())
        .prop_map(|(v, raw)| {
            Doc(v
                .into_iter()
                .flat_map(|(mut t, w)| {
                    if raw {
                        t.class = Class::Punct;
                    }
                    [t, w]
                })
                .collect())
        })
        .boxed()
}
