//! Differential test against the system's libdevmapper: `tests/data/cfgrt.c` (our probe program)
//! is compiled at test time and every input goes through it and through our codec; both must
//! accept or reject it alike, write byte-identical text and report errors at the same byte.
//!
//! Inputs: the LVM corpus, the recorded tricky cases, and generated documents (deterministic
//! proptest runs over the grammar of config-tree.md §1.2–1.3, plus token soup). Generated inputs
//! avoid the places where we deliberately follow lvm2 HEAD rather than the installed 2.03.16
//! (`divergence()`).
//!
//! Without `cc` or the libdevmapper headers the oracle tests skip, unless `CI` is set: then they
//! fail, so CI cannot go green without having compared anything. The round-trip properties
//! need no oracle and always run.

#[path = "common/oracle_data.rs"]
mod oracle_data;

use std::cell::Cell;
use std::ffi::OsStr;
use std::io::Write as _;
use std::os::unix::ffi::OsStrExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Instant;

use keelson_core::config::{Duplicates, Error, ErrorKind, Flags, OwnedTree, Value};
use oracle_data::*;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

// ---------------------------------------------------------------------------------------------
// The oracle

fn in_ci() -> bool {
    matches!(std::env::var("CI"), Ok(v) if !v.is_empty() && v != "0" && v != "false")
}

/// Builds cfgrt once per test binary; `None` (after saying why) when this machine cannot.
fn oracle() -> Option<&'static Path> {
    static CFGRT: OnceLock<Option<PathBuf>> = OnceLock::new();
    CFGRT
        .get_or_init(|| match build_cfgrt() {
            Ok(p) => Some(p),
            Err(why) if in_ci() => {
                panic!("CI is set but the libdevmapper oracle cannot be built: {why}")
            }
            Err(why) => {
                eprintln!("SKIPPING libdevmapper differential tests: {why}");
                None
            }
        })
        .as_deref()
}

/// `Err` only for what a developer machine may legitimately lack (compiler, headers, library);
/// a cfgrt.c that fails to compile against a present libdevmapper is a test failure.
fn build_cfgrt() -> Result<PathBuf, String> {
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("libdevmapper-oracle");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    // Names unique to this process: debug and release runs share CARGO_TARGET_TMPDIR.
    let probe_exe = dir.join(format!("probe.{}", std::process::id()));
    let probe = dir.join(format!("probe.{}.c", std::process::id()));
    std::fs::write(
        &probe,
        "#include <libdevmapper.h>\nint main(void) { return dm_config_create() == 0; }\n",
    )
    .map_err(|e| e.to_string())?;
    let probe_out = Command::new(&cc)
        .arg("-o")
        .arg(&probe_exe)
        .arg(&probe)
        .arg("-ldevmapper")
        .output();
    let _ = std::fs::remove_file(&probe);
    let _ = std::fs::remove_file(&probe_exe);
    let probe_out = probe_out.map_err(|e| format!("cannot run `{cc}` ({e}); install gcc"))?;
    if !probe_out.status.success() {
        return Err(format!(
            "`{cc}` cannot build against libdevmapper (install libdevmapper-dev): {}",
            String::from_utf8_lossy(&probe_out.stderr).trim()
        ));
    }
    // Built under a unique name, then renamed: a concurrent run never sees a half-written file.
    let tmp = dir.join(format!("cfgrt.{}", std::process::id()));
    let exe = dir.join("cfgrt");
    let out = Command::new(&cc)
        .args(["-O2", "-Wall", "-o"])
        .arg(&tmp)
        .arg(data_dir().join("cfgrt.c"))
        .arg("-ldevmapper")
        .output()
        .expect("cc ran a moment ago");
    assert!(
        out.status.success(),
        "cfgrt.c does not compile:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::rename(&tmp, &exe).expect("rename cfgrt");
    Ok(exe)
}

struct Upstream {
    /// `Ok(written text)` or `Err((kind, offset))` from its message.
    result: Result<Vec<u8>, (ErrorKind, Option<usize>)>,
    stderr: Vec<String>,
}

fn run_cfgrt(exe: &Path, input: &[u8], d: Duplicates, flags: Flags) -> Upstream {
    let mut cmd = Command::new(exe);
    if d == Duplicates::Keep {
        cmd.arg("-n");
    }
    if flags != Flags(0) {
        cmd.arg("-f").arg(format!("{:x}", flags.0));
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn cfgrt");
    // cfgrt reads all of stdin before it writes anything, so this cannot deadlock.
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input)
        .expect("write to cfgrt");
    let out = child.wait_with_output().expect("wait for cfgrt");
    let stderr: Vec<String> = String::from_utf8_lossy(&out.stderr)
        .lines()
        .map(str::to_string)
        .collect();
    let result = match out.status.code() {
        Some(0) => Ok(out.stdout),
        Some(1) => {
            Err(upstream_error(&stderr).unwrap_or_else(|e| panic!("input {}: {e}", show(input))))
        }
        _ => panic!(
            "cfgrt died ({}) on input {}: {stderr:?}",
            out.status,
            show(input)
        ),
    };
    Upstream { result, stderr }
}

/// Compares one input in one mode; `Err` describes the difference.
fn compare(exe: &Path, input: &[u8], d: Duplicates, flags: Flags) -> Result<Verdict, String> {
    let up = run_cfgrt(exe, input, d, flags);
    let ours = ours(input, d, flags);
    match (&up.result, &ours) {
        (Ok(theirs), Ok((t, text))) => {
            if theirs != text {
                return Err(format!(
                    "libdevmapper wrote {}\n       we wrote {}",
                    show(theirs),
                    show(text)
                ));
            }
            let dups = up
                .stderr
                .iter()
                .filter(|l| l.starts_with("WARNING: Ignoring duplicate config value"))
                .count();
            let repaired = up
                .stderr
                .iter()
                .any(|l| l.contains("Invalid creation_time"));
            let w = t.warnings();
            if w.duplicate_values as usize != dups || (w.creation_time_repaired > 0) != repaired {
                return Err(format!(
                    "our warnings {w:?}, libdevmapper's {:?}",
                    up.stderr
                ));
            }
            Ok(Verdict::Accepted)
        }
        (Err(theirs), Err(e)) if same_error(e, *theirs) => Ok(Verdict::Rejected),
        (Err(theirs), Err(e)) => Err(format!(
            "both reject, libdevmapper with {theirs:?} {:?}, we with {e:?}",
            up.stderr
        )),
        (Err(theirs), Ok((_, text))) => Err(format!(
            "libdevmapper rejects ({theirs:?} {:?}), we wrote {}",
            up.stderr,
            show(text)
        )),
        (Ok(theirs), Err(e)) => Err(format!(
            "libdevmapper wrote {}, we reject: {e:?}",
            show(theirs)
        )),
    }
}

/// `cfgrt -q` over paths of the parsed document (every node's own path, spelled a few ways, and
/// some that miss) against our lookups: node kind, type, and every find_* getter.
fn compare_lookups(exe: &Path, input: &[u8], d: Duplicates) -> Result<(), String> {
    let t = OwnedTree::from_text_owned(input, options(d)).map_err(|e| format!("{e:?}"))?;
    let paths = lookup_paths(&t);
    let mut cmd = Command::new(exe);
    if d == Duplicates::Keep {
        cmd.arg("-n");
    }
    cmd.arg("-q");
    for p in &paths {
        cmd.arg(OsStr::from_bytes(p));
    }
    let out = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            child.stdin.take().unwrap().write_all(input)?;
            child.wait_with_output()
        })
        .expect("run cfgrt -q");
    if !out.status.success() {
        return Err(format!(
            "cfgrt -q failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let mut expected = Vec::new();
    for p in &paths {
        expected.extend(lookup_line(t.view(), p));
        expected.push(b'\n');
    }
    if out.stdout != expected {
        let theirs = out.stdout.split(|&b| b == b'\n');
        let first = theirs
            .zip(expected.split(|&b| b == b'\n'))
            .find(|(a, b)| a != b)
            .map(|(a, b)| format!("libdevmapper: {}\n          we: {}", show(a), show(b)));
        return Err(first.unwrap_or_else(|| "outputs differ in length".into()));
    }
    Ok(())
}

fn lookup_paths(t: &OwnedTree) -> Vec<Vec<u8>> {
    let nodes: Vec<_> = t.view().preorder().map(|(_, n)| n).collect();
    let step = nodes.len().div_ceil(6).max(1);
    let mut paths = Vec::new();
    for n in nodes.iter().step_by(step) {
        let mut keys = vec![n.key()];
        let mut up = n.parent();
        while let Some(p) = up {
            keys.push(p.key());
            up = p.parent();
        }
        keys.reverse();
        paths.push(keys.join(&b'/'));
        if paths.len() == 1 {
            // Leading and doubled slashes are skipped; a trailing one never matches.
            paths.push([b"/".as_slice(), &keys.join(&b"//"[..])].concat());
            paths.push([keys.join(&b'/').as_slice(), b"/"].concat());
        }
    }
    paths.push(b"nope".to_vec());
    paths.push(b"a/nope".to_vec());
    paths
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Verdict {
    Accepted,
    Rejected,
}

const MODES: [Duplicates; 2] = [Duplicates::Merge, Duplicates::Keep];

// ---------------------------------------------------------------------------------------------
// Fixed inputs

#[test]
fn corpus_matches_libdevmapper() {
    let Some(exe) = oracle() else { return };
    let mut dir: Vec<_> = std::fs::read_dir(data_dir().join("corpus"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    dir.sort();
    assert_eq!(dir.len(), 4);
    let mut failures = Vec::new();
    for path in &dir {
        let input = std::fs::read(path).unwrap();
        for d in MODES {
            // The flag sets lvmconfig uses (ARRAY, EXTRA_SPACES, INT_OCTAL) on real documents.
            for flags in [0, 0x1, 0x3, 0x1_0000] {
                match compare(exe, &input, d, Flags(flags)) {
                    Ok(Verdict::Accepted) => {}
                    Ok(Verdict::Rejected) => {
                        failures.push(format!("{}: rejected by both", path.display()))
                    }
                    Err(why) => {
                        failures.push(format!("{} {d:?} -f {flags:x}: {why}", path.display()))
                    }
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The recorded cases, live: catches a libdevmapper on this machine that no longer matches the
/// recording, and runs each case in the other mode too.
#[test]
fn recorded_cases_match_libdevmapper() {
    let Some(exe) = oracle() else { return };
    let mut failures = Vec::new();
    let mut compared = 0;
    for case in recorded_cases() {
        if oracle_data::divergence(&case.id()).is_some() || divergence(&case.input).is_some() {
            continue;
        }
        for d in MODES {
            compared += 1;
            if let Err(why) = compare(exe, &case.input, d, case.flags()) {
                failures.push(format!(
                    "{} {d:?}: input {}\n  {why}",
                    case.id(),
                    show(&case.input)
                ));
            }
        }
    }
    assert!(compared >= 2 * 54, "only {compared} comparisons");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Nesting across the writer's 32-tab indentation cap, up to our depth limit (128, which
/// libdevmapper does not have: it recurses until the stack runs out).
#[test]
fn deep_nesting_matches_libdevmapper() {
    let Some(exe) = oracle() else { return };
    for depth in [1, 2, 31, 32, 33, 34, 40, 100, 127, 128] {
        let sections = format!(
            "{}k=[1,\"v\"]{}",
            "a {\n".repeat(depth - 1),
            "}\n".repeat(depth - 1)
        );
        let path = format!(
            "{}k=[1,\"v\"] {}/k=2\n",
            "a/".repeat(depth - 1),
            "/b".repeat(depth - 1)
        );
        for input in [sections, path] {
            for d in MODES {
                for flags in [0, 0x3] {
                    compare_ok(exe, input.as_bytes(), d, Flags(flags));
                }
                compare_lookups(exe, input.as_bytes(), d).unwrap();
            }
        }
    }
    // One level more: libdevmapper parses it, we refuse (config-tree.md §1.7).
    for input in [
        format!("{}k=1{}", "a{".repeat(128), "}".repeat(128)),
        format!("{}k=1", "a/".repeat(128)),
    ] {
        for d in MODES {
            assert!(run_cfgrt(exe, input.as_bytes(), d, Flags(0)).result.is_ok());
            let e = ours(input.as_bytes(), d, Flags(0)).unwrap_err();
            assert_eq!(e.kind, ErrorKind::TooDeep { limit: 128 });
        }
    }
}

/// Large documents: thousands of siblings with many duplicate keys (the dup-check index grows
/// and rehashes), sections merged from many places, long arrays.
#[test]
fn large_documents_match_libdevmapper() {
    let Some(exe) = oracle() else { return };
    let mut rng = TestRng::from_seed(RngAlgorithm::ChaCha, &[7; 32]);
    // libdevmapper's dup check scans all siblings, so distinct keys cost it quadratic time.
    // The last document is one line: the parser cannot size its tables from the line count.
    for (settings, keys, sep) in [(2_000, 50, "\n"), (8_000, 1_500, "\n"), (4_000, 4_000, " ")] {
        let mut doc = String::new();
        for i in 0..settings {
            let k = rng.random_range(0..keys);
            match i % 7 {
                0 => doc += &format!("s{} {{ k{k} = {i} t{} = \"{i}\" }}", k % 40, i % 3),
                1 => doc += &format!("p{}/q{}/k{k}={i}.5", k % 10, k % 7),
                2 => doc += &format!("k{k} = [{i}, \"x{i}\", {}.25, -{i}]", i % 100),
                _ => doc += &format!("k{k}={i}"),
            }
            doc += sep;
        }
        for d in MODES {
            compare_ok(exe, doc.as_bytes(), d, Flags(0));
            compare_lookups(exe, doc.as_bytes(), d).unwrap();
        }
    }
}

fn compare_ok(exe: &Path, input: &[u8], d: Duplicates, flags: Flags) {
    let short = show(&input[..input.len().min(200)]);
    match compare(exe, input, d, flags) {
        Ok(Verdict::Accepted) => {}
        Ok(Verdict::Rejected) => panic!("{d:?}: both reject {short}"),
        Err(why) => panic!("{d:?} -f {:x}: input {short}...\n  {why}", flags.0),
    }
}

/// glibc's strtod sets ERANGE on underflow only when the exact value is below DBL_MIN *and* not
/// representable: exact subnormals convert cleanly, while a value just below DBL_MIN that rounds
/// up to it still underflows. libdevmapper turns ERANGE into "Failed to read float token."
/// (2.03.16 and HEAD alike). Expectations observed with glibc 2.36 through cfgrt.
#[test]
fn float_underflow_follows_glibc_strtod() {
    // 2^-1074 and 3 * 2^-1074, written out exactly: glibc accepts them.
    let exact = |k: u32| {
        let mut digits = vec![k as u8]; // little-endian decimal digits of k * 5^1074
        for _ in 0..1074 {
            let mut carry = 0;
            for d in digits.iter_mut() {
                let v = *d * 5 + carry;
                *d = v % 10;
                carry = v / 10;
            }
            if carry > 0 {
                digits.push(carry);
            }
        }
        let digits: String = digits.iter().rev().map(|d| char::from(b'0' + d)).collect();
        format!("a=0.{}{digits}\n", "0".repeat(1074 - digits.len()))
    };
    let accepted = [("2^-1074", exact(1)), ("3 * 2^-1074", exact(3))];
    // Below DBL_MIN, inexact, rounding up to DBL_MIN: glibc reports ERANGE.
    let rejected = [
        "a=2.2250738585072012e-308=1\n",
        "a=-2.2250738585072012e-308=1\n",
    ];
    if let Some(exe) = oracle() {
        for (_, input) in &accepted {
            assert!(
                run_cfgrt(exe, input.as_bytes(), Duplicates::Merge, Flags(0))
                    .result
                    .is_ok()
            );
        }
        for input in rejected {
            let up = run_cfgrt(exe, input.as_bytes(), Duplicates::Merge, Flags(0));
            assert_eq!(up.result, Err((ErrorKind::BadFloat, None)));
        }
    }
    let mut failures = Vec::new();
    for (name, input) in &accepted {
        match ours(input.as_bytes(), Duplicates::Merge, Flags(0)) {
            Ok((_, text)) if text == b"a=0.000000\n" => {}
            other => failures.push(format!(
                "a=<{name} exactly>: expected a=0.000000, got {other:?}"
            )),
        }
    }
    for input in rejected {
        match ours(input.as_bytes(), Duplicates::Merge, Flags(0)) {
            Err(e) if e.kind == ErrorKind::BadFloat => {}
            Ok((_, text)) => {
                failures.push(format!("{input:?}: expected BadFloat, got {}", show(&text)))
            }
            Err(e) => failures.push(format!("{input:?}: expected BadFloat, got {e:?}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Inputs whose outcome is known to differ, and why (the classifier below must catch them).
#[test]
fn classifier_finds_every_divergence() {
    let cases = [
        (&b"a=09\n"[..], "leading-zero INT with 8 or 9"),
        (b"a=-018\n", "leading-zero INT with 8 or 9"),
        (b"a=-\n", "sign without digits"),
        (b"a=[1,+]\n", "sign without digits"),
        (b"a=0x10 = 5\n", "0x after INT 0"),
        (b"a=-0X1=2\n", "0x after INT 0"),
        (b"a=\"abc", "unterminated string"),
        (b"a='abc", "unterminated string"),
        (b"\"abc\\", "unterminated string"),
    ];
    for (input, why) in cases {
        assert_eq!(divergence(input), Some(why), "{}", show(input));
    }
    for input in [
        &b"a=0\n"[..],
        b"a=007 b=-0 c=010",
        b"a=\"x\\\"\" b='#'",
        b"a=1.5 e=2",
        b"08=1",
        b"a=00x1=2",
    ] {
        assert_eq!(divergence(input), None, "{}", show(input));
    }
}

// ---------------------------------------------------------------------------------------------
// Divergence classifier: a lexer after config-tree.md §1.2, enough to find the tokens where lvm2
// 2.03.16 (the oracle) and HEAD (us) disagree.

fn divergence(input: &[u8]) -> Option<&'static str> {
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
struct Doc(Vec<Piece>);

#[derive(Clone, Debug)]
struct Piece {
    class: Class,
    text: Vec<u8>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Class {
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
    fn render(&self) -> Vec<u8> {
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

fn piece(class: Class, text: impl Into<Vec<u8>>) -> Piece {
    Piece {
        class,
        text: text.into(),
    }
}

fn punct(c: &str) -> Piece {
    piece(Class::Punct, c)
}

/// Whitespace between tokens: often none, sometimes CRLF, VT, FF or a comment.
fn ws() -> BoxedStrategy<Piece> {
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
fn key() -> BoxedStrategy<Vec<Piece>> {
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

fn path_key() -> BoxedStrategy<String> {
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

fn seg_last() -> BoxedStrategy<String> {
    prop_oneof![9 => "[a-d]", 1 => Just(String::new())].boxed()
}

/// A double-quoted string of `min..8` units: plain bytes, the two real escapes, a backslash
/// that is kept (`\n` stays two bytes), raw newlines and tabs, UTF-8 and a stray high byte.
fn dq_string(min: usize) -> BoxedStrategy<Vec<u8>> {
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

fn int_text() -> BoxedStrategy<String> {
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

fn float_text() -> BoxedStrategy<String> {
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

fn scalar() -> BoxedStrategy<Piece> {
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
fn bool_word() -> BoxedStrategy<Piece> {
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
fn array() -> BoxedStrategy<Vec<Piece>> {
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

fn assignment() -> BoxedStrategy<Vec<Piece>> {
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
fn exponent_assignment() -> BoxedStrategy<Vec<Piece>> {
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
fn items() -> BoxedStrategy<Vec<Piece>> {
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

fn flatten_items(items: Vec<(Piece, Vec<Piece>)>) -> Vec<Piece> {
    items
        .into_iter()
        .flat_map(|(w, i)| std::iter::once(w).chain(i))
        .collect()
}

/// A document; now and then followed by a NUL and junk, which must be ignored.
fn document() -> BoxedStrategy<Doc> {
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
fn soup() -> BoxedStrategy<Doc> {
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

/// 1000 cases per run, or `KEELSON_ORACLE_CASES` for a longer hunt.
fn runner(seed: u8) -> TestRunner {
    let cases = std::env::var("KEELSON_ORACLE_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let config = Config {
        cases,
        failure_persistence: None,
        max_shrink_iters: 4096,
        ..Config::default()
    };
    TestRunner::new_with_rng(
        config,
        TestRng::from_seed(RngAlgorithm::ChaCha, &[seed; 32]),
    )
}

struct Tally {
    accepted: Cell<u32>,
    rejected: Cell<u32>,
    diverging: Cell<u32>,
}

impl Tally {
    fn new() -> Self {
        Tally {
            accepted: Cell::new(0),
            rejected: Cell::new(0),
            diverging: Cell::new(0),
        }
    }
    fn bump(c: &Cell<u32>) {
        c.set(c.get() + 1);
    }
}

fn flags_for(selector: u8) -> Flags {
    // Mostly plain output; now and then the writer flags lvmconfig uses.
    Flags(match selector % 12 {
        0 => 0x1,
        1 => 0x2,
        2 => 0x3,
        3 => 0x1_0000,
        4 => 0x1_0003,
        _ => 0,
    })
}

fn differential(
    strategy: impl Strategy<Value = Doc>,
    d: Duplicates,
    seed: u8,
    name: &str,
) -> Option<Tally> {
    let exe = oracle()?;
    let tally = Tally::new();
    let started = Instant::now();
    let result = runner(seed).run(&(strategy, any::<u8>()), |(doc, sel)| {
        let input = doc.render();
        if divergence(&input).is_some() {
            Tally::bump(&tally.diverging);
            return Ok(());
        }
        match compare(exe, &input, d, flags_for(sel)) {
            Ok(Verdict::Accepted) => {
                Tally::bump(&tally.accepted);
                if let Err(why) = compare_lookups(exe, &input, d) {
                    return Err(TestCaseError::fail(format!(
                        "{d:?} lookups: input {}\n  {why}",
                        show(&input)
                    )));
                }
            }
            Ok(Verdict::Rejected) => Tally::bump(&tally.rejected),
            Err(why) => {
                return Err(TestCaseError::fail(format!(
                    "{d:?} -f {:x}: input {}\n  {why}",
                    flags_for(sel).0,
                    show(&input)
                )))
            }
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{name}: {e}");
    }
    eprintln!(
        "{name} {d:?}: {} accepted, {} rejected, {} skipped as known divergences, {:.1} s",
        tally.accepted.get(),
        tally.rejected.get(),
        tally.diverging.get(),
        started.elapsed().as_secs_f64()
    );
    Some(tally)
}

#[test]
fn generated_documents_match_libdevmapper_merge() {
    generated_documents(Duplicates::Merge, 1);
}

#[test]
fn generated_documents_match_libdevmapper_keep() {
    generated_documents(Duplicates::Keep, 2);
}

fn generated_documents(d: Duplicates, seed: u8) {
    let Some(t) = differential(document(), d, seed, "documents") else {
        return;
    };
    // The generator stays inside the grammar: nearly everything it makes must be accepted (the
    // rest are out-of-range integers and paths ending in `/` under a value).
    assert_eq!(
        t.diverging.get(),
        0,
        "the document generator produced a known divergence"
    );
    let total = t.accepted.get() + t.rejected.get();
    assert!(
        t.accepted.get() * 10 >= total * 8,
        "only {} of {total} documents accepted",
        t.accepted.get()
    );
}

#[test]
fn token_soup_matches_libdevmapper_merge() {
    token_soup(Duplicates::Merge, 3);
}

#[test]
fn token_soup_matches_libdevmapper_keep() {
    token_soup(Duplicates::Keep, 4);
}

fn token_soup(d: Duplicates, seed: u8) {
    let Some(t) = differential(soup(), d, seed, "token soup") else {
        return;
    };
    // Soup is mostly invalid; the classifier must leave most of it to compare.
    let total = t.accepted.get() + t.rejected.get() + t.diverging.get();
    assert!(
        t.rejected.get() * 10 >= total * 6,
        "only {} of {total} soups rejected",
        t.rejected.get()
    );
    assert!(
        t.diverging.get() * 10 <= total * 3,
        "{} of {total} soups skipped",
        t.diverging.get()
    );
}

// ---------------------------------------------------------------------------------------------
// Round trips (no oracle needed)

/// Whether `key` comes back from the writer as the same key: the writer quotes only keys with
/// `#`, `"` or `!`, so others must lex as one identifier.
fn key_survives_writer(key: &[u8]) -> bool {
    if key.iter().any(|c| matches!(c, b'#' | b'"' | b'!')) {
        return true;
    }
    let word_end =
        |c: &u8| c.is_ascii_whitespace() || *c == 0x0b || matches!(c, b'=' | b'{' | b'}');
    match key.first() {
        None => false,
        Some(b'\'' | b'[' | b']' | b',') => false,
        Some(_) => !key.iter().any(word_end),
    }
}

/// `%f` keeps 6 decimals, so a float comes back bit-exact only if those decimals pin it down.
fn float_survives_writer(f: f32) -> bool {
    format!("{:.6}", f64::from(f))
        .parse::<f64>()
        .map(|d| d as f32)
        == Ok(f)
}

enum Fidelity {
    /// The text reparses to an equal tree.
    Exact,
    /// The text reparses, but floats move to their 6-decimal neighbours.
    Floats,
    /// The text does not say the same thing: keys the writer leaves ambiguous, a merged node with
    /// both a value and children (only the value is written), or an infinite float (`inf` reads
    /// back as a bare string).
    Lossy,
}

fn fidelity(t: &OwnedTree) -> Fidelity {
    let mut floats_ok = true;
    for (_, n) in t.view().preorder() {
        if !key_survives_writer(n.key()) || (!n.is_section() && n.children().next().is_some()) {
            return Fidelity::Lossy;
        }
        for v in n.values() {
            if let Value::Float(f) = v.value {
                if !f.is_finite() {
                    return Fidelity::Lossy;
                }
                floats_ok &= float_survives_writer(f);
            }
        }
    }
    if floats_ok {
        Fidelity::Exact
    } else {
        Fidelity::Floats
    }
}

fn round_trips(t: &OwnedTree, d: Duplicates) -> Result<Fidelity, String> {
    let text = t.view().to_text();
    let fidelity = fidelity(t);
    match fidelity {
        Fidelity::Lossy => {}
        Fidelity::Exact | Fidelity::Floats => {
            let again = OwnedTree::from_text_owned(&text, options(d))
                .map_err(|e: Error| format!("our output {} does not parse: {e:?}", show(&text)))?;
            if matches!(fidelity, Fidelity::Exact) && again != *t {
                return Err(format!(
                    "parse(write(t)) != t\n  t = {t:?}\n  parse(write(t)) = {again:?}"
                ));
            }
            // Once written, the text is a fixed point.
            if again.view().to_text() != text {
                return Err(format!(
                    "write(parse(write(t))) = {} != {}",
                    show(&again.view().to_text()),
                    show(&text)
                ));
            }
        }
    }
    let bytes = t
        .to_postcard_vec()
        .map_err(|e| format!("postcard encode: {e}"))?;
    let mut back = OwnedTree::empty();
    back.decode_postcard(&bytes)
        .map_err(|e| format!("postcard decode: {e}"))?;
    if back != *t {
        return Err(format!(
            "postcard changed the tree\n  t = {t:?}\n  back = {back:?}"
        ));
    }
    if back.view().to_text() != text {
        return Err(format!(
            "postcard changed the text to {}",
            show(&back.view().to_text())
        ));
    }
    Ok(fidelity)
}

#[test]
fn generated_documents_round_trip() {
    for (d, seed) in [(Duplicates::Merge, 5), (Duplicates::Keep, 6)] {
        let (exact, floats, lossy, rejected) =
            (Cell::new(0), Cell::new(0), Cell::new(0), Cell::new(0));
        let result = runner(seed).run(&document(), |doc| {
            let input = doc.render();
            let Ok(t) = OwnedTree::from_text_owned(&input, options(d)) else {
                Tally::bump(&rejected);
                return Ok(());
            };
            match round_trips(&t, d) {
                Ok(Fidelity::Exact) => Tally::bump(&exact),
                Ok(Fidelity::Floats) => Tally::bump(&floats),
                Ok(Fidelity::Lossy) => Tally::bump(&lossy),
                Err(why) => {
                    return Err(TestCaseError::fail(format!(
                        "{d:?}: input {}\n  {why}",
                        show(&input)
                    )))
                }
            }
            Ok(())
        });
        if let Err(e) = result {
            panic!("{e}");
        }
        eprintln!(
            "round trip {d:?}: {} exact, {} up to float rounding, {} not representable, \
             {} rejected",
            exact.get(),
            floats.get(),
            lossy.get(),
            rejected.get()
        );
        assert!(
            exact.get() * 10 >= (exact.get() + floats.get() + lossy.get() + rejected.get()) * 3,
            "only {} documents checked for parse(write(t)) == t",
            exact.get()
        );
    }
}
