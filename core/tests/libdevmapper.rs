//! Differential test against the system's libdevmapper: `tests/data/cfgrt.c` (our probe program)
//! is compiled at test time and every input goes through it and through our codec; both must
//! accept or reject it alike, write byte-identical text and report errors at the same byte.
//!
//! Inputs: the LVM corpus, the recorded tricky cases, and generated documents (deterministic
//! proptest runs over the grammar of config-tree.md §1.2–1.3, plus token soup). Generated inputs
//! avoid the places where we deliberately follow lvm2 HEAD rather than the installed 2.03.16
//! (`token_divergence()`).
//!
//! Without `cc` or the libdevmapper headers the oracle tests skip, unless `CI` is set: then they
//! fail, so CI cannot go green without having compared anything. The round-trip properties
//! need no oracle and always run.

#[path = "common/generate.rs"]
mod generate;
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

use generate::*;
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
        if oracle_data::divergence(&case.id()).is_some() || token_divergence(&case.input).is_some()
        {
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
        assert_eq!(token_divergence(input), Some(why), "{}", show(input));
    }
    for input in [
        &b"a=0\n"[..],
        b"a=007 b=-0 c=010",
        b"a=\"x\\\"\" b='#'",
        b"a=1.5 e=2",
        b"08=1",
        b"a=00x1=2",
    ] {
        assert_eq!(token_divergence(input), None, "{}", show(input));
    }
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
        if token_divergence(&input).is_some() {
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
