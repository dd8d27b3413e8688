//! Reading the libdevmapper oracle recordings in `tests/data/`, shared by `recorded_cases.rs` and
//! `libdevmapper.rs` (each includes this file with `#[path]`); as a test target of its own it has
//! no tests.
//!
//! The recordings come from `shared/oracles/lvm/` (our own probes, run against Debian 12's
//! libdevmapper 1.02.185 = lvm2 2.03.16). They are copied into the repo so the tests do not need
//! `shared/` at all.
#![allow(dead_code)]

use std::path::PathBuf;

use keelson_core::config::{
    Duplicates, Error, ErrorKind, Fixed, FixedTree, Flags, Growable, Lookup, OwnedTree,
    ParseOptions, Storage, Tree, TreeView, Value,
};

pub const CASES_FILE: &str = "cases-libdevmapper-1.02.185.out";
pub const LOOKUPS_FILE: &str = "lookups-libdevmapper-1.02.185.out";

pub fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("data")
}

pub fn read_data(name: &str) -> Vec<u8> {
    let p = data_dir().join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("reading {}: {e}", p.display()))
}

/// Where `shared/` is: `$KEELSON_SHARED`, else beside the workspace.
pub fn shared_dir() -> PathBuf {
    std::env::var_os("KEELSON_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("..")
                .join("..")
                .join("shared")
        })
}

/// Inverse of `cat -A` (`cat -vET`): `$` before a newline marks the newline, `^X` is a control
/// byte, `M-` sets the high bit. `cat -A` leaves a literal `^` or `M-` alone, so text holding
/// them is ambiguous; `run_cases.sh`'s inputs have none.
pub fn decode_cat_a(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        let (high, at) = if text[i..].starts_with(b"M-") && i + 2 < text.len() {
            (0x80, i + 2)
        } else {
            (0, i)
        };
        let c = text[at];
        let (byte, next) = match c {
            b'$' if high == 0 && text.get(at + 1) == Some(&b'\n') => (b'\n', at + 2),
            b'\n' => panic!("cat -A text has a newline without `$` at byte {at}"),
            b'^' if matches!(text.get(at + 1), Some(b'?' | b'@'..=b'_')) => {
                let x = text[at + 1];
                (if x == b'?' { 0x7f } else { x - 0x40 }, at + 2)
            }
            _ => (c, at + 1),
        };
        out.push(high | byte);
        i = next;
    }
    out
}

/// `cat -A` itself, to check that decoding lost nothing.
pub fn encode_cat_a(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for &b in bytes {
        let mut c = b;
        if c >= 0x80 {
            out.extend_from_slice(b"M-");
            c &= 0x7f;
        }
        match c {
            b'\n' if b == b'\n' => out.extend_from_slice(b"$\n"),
            0x7f => out.extend_from_slice(b"^?"),
            0..=0x1f => out.extend_from_slice(&[b'^', c + 0x40]),
            _ => out.push(c),
        }
    }
    out
}

/// One `=== name opts` block of `run_cases.sh`'s output.
#[derive(Debug)]
pub struct Case {
    pub name: String,
    pub opts: String,
    pub input: Vec<u8>,
    pub output: Vec<u8>,
    pub rc: i32,
    pub stderr: Vec<String>,
}

impl Case {
    /// Names repeat with different options (`dup_value` and `dup_value -n`).
    pub fn id(&self) -> String {
        if self.opts.is_empty() {
            self.name.clone()
        } else {
            format!("{} {}", self.name, self.opts)
        }
    }

    pub fn duplicates(&self) -> Duplicates {
        if self.opts.split_whitespace().any(|o| o == "-n") {
            Duplicates::Keep
        } else {
            Duplicates::Merge
        }
    }

    /// cfgrt's `-f FLAGS` (hex).
    pub fn flags(&self) -> Flags {
        let mut words = self.opts.split_whitespace();
        while let Some(w) = words.next() {
            if w == "-f" {
                let hex = words.next().expect("-f without a value");
                return Flags(u32::from_str_radix(hex, 16).expect("-f takes hex"));
            }
        }
        Flags(0)
    }
}

pub fn parse_cases(text: &str) -> Vec<Case> {
    let mut cases = Vec::new();
    for block in format!("\n{text}").split("\n=== ").skip(1) {
        let (header, rest) = block.split_once('\n').expect("header line");
        let (name, opts) = header.split_once(' ').unwrap_or((header, ""));
        let body = rest.strip_prefix("--- input:\n").expect("--- input:");
        let out_at = if body.starts_with("--- output:\n") {
            0
        } else {
            body.find("\n--- output:\n").expect("--- output:") + 1
        };
        // run_cases.sh prints `cat -A input; echo`, so the rendering is followed by one extra
        // newline — which also terminates an input that had no final newline.
        let rendered = body[..out_at]
            .strip_suffix('\n')
            .expect("echo after the input");
        let input = decode_cat_a(rendered.as_bytes());
        assert_eq!(
            encode_cat_a(&input),
            rendered.as_bytes(),
            "{name}: cat -A decoding is not exact"
        );

        let mut output = Vec::new();
        let mut rc = None;
        let mut stderr = Vec::new();
        // Every written line ends in `$`, so the first line that does not is `rc=`.
        for line in body[out_at + "--- output:\n".len()..].lines() {
            if rc.is_none() {
                if let Some(r) = line.strip_prefix("rc=").filter(|_| !line.ends_with('$')) {
                    rc = Some(r.parse().expect("rc=N"));
                } else {
                    output.extend(decode_cat_a(format!("{line}\n").as_bytes()));
                }
            } else if let Some(s) = line.strip_prefix("stderr: ") {
                stderr.push(s.to_string());
            } else {
                assert!(line.is_empty(), "{name}: unexpected line {line:?}");
            }
        }
        cases.push(Case {
            name: name.to_string(),
            opts: opts.trim().to_string(),
            input,
            output,
            rc: rc.expect("rc= line"),
            stderr,
        });
    }
    cases
}

pub fn recorded_cases() -> Vec<Case> {
    let text = String::from_utf8(read_data(CASES_FILE)).expect("cat -A output is ASCII");
    parse_cases(&text)
}

/// What we do instead of what the recording shows. The recordings come from lvm2 2.03.16; we follow
/// lvm2 HEAD, which checks that `strtoll` consumed exactly the INT token, and we refuse
/// unterminated strings instead of chopping a byte off them (config-tree.md §1.4).
pub enum Ours {
    Rejects(ErrorKind),
    Writes(&'static [u8]),
}

pub const DIVERGENT_CASES: &[(&str, Ours)] = &[
    // 2.03.16: strtoll reads `0`, stops at `9`: `a=0`.
    ("octal_bad_digit", Ours::Rejects(ErrorKind::BadInteger)),
    // 2.03.16: strtoll converts nothing: `a=0`, `b=0`.
    ("sign_only", Ours::Rejects(ErrorKind::BadInteger)),
    // 2.03.16: strtoll reads `0x10` past the INT token `0`: `a=16`. HEAD rejects it ("Failed to
    // read int token", endptr != token end), and so do we.
    ("hex_quirk", Ours::Rejects(ErrorKind::BadInteger)),
    // Both reject `a=0x10`, but 2.03.16 at the stray `x10` key ("unexpected token") and HEAD, like
    // us, at the integer whose conversion ran past its token.
    ("hex", Ours::Rejects(ErrorKind::BadInteger)),
    // 2.03.16: strips one byte at each end of `"abc`: `a="ab"`.
    (
        "unterminated_dq",
        Ours::Rejects(ErrorKind::UnterminatedString),
    ),
    (
        "unterminated_sq",
        Ours::Rejects(ErrorKind::UnterminatedString),
    ),
];

pub fn divergence(case_id: &str) -> Option<&'static Ours> {
    DIVERGENT_CASES
        .iter()
        .find(|(id, _)| *id == case_id)
        .map(|(_, o)| o)
}

/// How libdevmapper reported a failed parse on stderr: the kind and, for "Parse error at byte N",
/// the 0-based offset N-1. No message at all means the input held no setting.
pub fn upstream_error(stderr: &[String]) -> Result<(ErrorKind, Option<usize>), String> {
    let errors: Vec<&String> = stderr
        .iter()
        .filter(|l| !l.starts_with("WARNING:"))
        .collect();
    let Some(line) = errors.first() else {
        return Ok((ErrorKind::Empty, None));
    };
    if line.as_str() == "Failed to read int token." {
        return Ok((ErrorKind::BadInteger, None));
    }
    if line.as_str() == "Failed to read float token." {
        return Ok((ErrorKind::BadFloat, None));
    }
    let rest = line
        .strip_prefix("Parse error at byte ")
        .ok_or_else(|| format!("unknown message {line:?}"))?;
    let (byte, rest) = rest
        .split_once(' ')
        .ok_or_else(|| format!("unknown message {line:?}"))?;
    let (_, what) = rest
        .split_once("): ")
        .ok_or_else(|| format!("unknown message {line:?}"))?;
    let kind = match what {
        "unexpected token" => ErrorKind::UnexpectedToken,
        "expected a value" => ErrorKind::ExpectedValue,
        "empty section identifier" => ErrorKind::EmptyKey,
        "expected a string token." => ErrorKind::UnterminatedString,
        _ => return Err(format!("unknown message {line:?}")),
    };
    let byte: usize = byte.parse().map_err(|_| format!("bad byte in {line:?}"))?;
    Ok((kind, Some(byte - 1)))
}

/// Whether our error says the same as libdevmapper's message. For an empty key libdevmapper
/// names the token after the key (it has already moved on); we name the key itself.
pub fn same_error(ours: &Error, upstream: (ErrorKind, Option<usize>)) -> bool {
    let (kind, offset) = upstream;
    ours.kind == kind
        && match (kind, offset) {
            (_, None) => true,
            (ErrorKind::EmptyKey, Some(o)) => ours.offset < o,
            (_, Some(o)) => ours.offset == o,
        }
}

pub fn options(d: Duplicates) -> ParseOptions {
    ParseOptions {
        duplicates: d,
        ..ParseOptions::MERGE
    }
}

/// Parse, OR `flags` into every value, write: what `cfgrt [-n] [-f FLAGS]` does. The tree is
/// parsed three ways — copying into growable storage, borrowing the input, and into fixed
/// storage (the no-allocator path) — which must all agree.
pub fn ours(input: &[u8], d: Duplicates, flags: Flags) -> Result<(OwnedTree, Vec<u8>), Error> {
    let opts = options(d);
    let copied = OwnedTree::from_text_owned(input, opts).map(|mut t| {
        let text = written(&mut t, flags);
        (t, text)
    });
    let expect = copied
        .as_ref()
        .map(|(_, text)| text.clone())
        .map_err(|e| *e);

    let borrowed = Tree::<Growable>::from_text(input, opts).map(|mut t| written(&mut t, flags));
    assert_eq!(
        borrowed,
        expect,
        "borrowing parse differs on {}",
        show(input)
    );

    let mut fixed: Box<FixedTree<'_, 1024, 1024, 16384>> = Box::new(Tree::new(Fixed::new()));
    match fixed.parse(input, opts) {
        Err(e) if matches!(e.kind, ErrorKind::Capacity { .. }) => {}
        r => {
            let text = r.map(|()| written(&mut fixed, flags));
            assert_eq!(
                text,
                expect,
                "fixed-storage parse differs on {}",
                show(input)
            );
        }
    }
    copied
}

fn written<S: Storage>(t: &mut Tree<'_, S>, flags: Flags) -> Vec<u8> {
    if flags != Flags(0) {
        t.set_all_flags(flags);
    }
    t.view().to_text()
}

/// One line of `cfgrt -q PATH` output, from our lookups (cfgrt prints strings with `%s` and
/// floats with `%f`, and skips find_bool on sections, where libdevmapper would crash).
pub fn lookup_line(t: TreeView<'_>, path: &[u8]) -> Vec<u8> {
    let node = t.find_node(path);
    let mut s = path.to_vec();
    let kind = match node {
        None => "none",
        Some(n) if n.is_section() => "section",
        Some(_) => "value",
    };
    s.extend_from_slice(format!(": node={kind}").as_bytes());
    if let Some(v) = node.and_then(|n| n.value()) {
        let ty = match v {
            Value::Int(_) => 0,
            Value::Float(_) => 1,
            Value::Str(_) => 2,
            Value::EmptyArray => 3,
        };
        s.extend_from_slice(format!(" type={ty}").as_bytes());
    }
    s.extend_from_slice(b" str=");
    s.extend_from_slice(t.find_str(path, b"<fail>"));
    s.extend_from_slice(b" str_allow_empty=");
    s.extend_from_slice(t.find_str_allow_empty(path, b"<fail>"));
    let rest = format!(
        " int64={} int={} float={:.6}",
        t.find_int64(path, -999),
        t.find_int(path, -999),
        f64::from(t.find_float(path, -999.0))
    );
    s.extend_from_slice(rest.as_bytes());
    if !node.is_some_and(|n| n.is_section()) {
        let b = t.get_bool(path).map_or(-1, i32::from);
        s.extend_from_slice(format!(" bool={b}").as_bytes());
    }
    s
}

/// Bytes as a quoted, escaped string for messages.
pub fn show(b: &[u8]) -> String {
    format!("\"{}\"", b.escape_ascii())
}
