//! `keelctl volfile check` against GlusterFS 10.3's own verdict (`glusterfs -N -f FILE` with no
//! mount point parses, validates and initialises the graph, then keeps running; a bad volfile
//! makes it exit with status 1), over the corpus in `tests/data/volfiles/`.
//!
//! Each corpus file says what to expect in its leading comments:
//! `# expect: accept|reject` (both programs), or `# keelson: ...` and `# glusterfs: ...` where
//! they differ by design (a type Keelson does not implement, a backtick Keelson will not run);
//! `# error: TEXT` and `# warning: TEXT` must appear in keelctl's stderr. `@BRICK@` stands for
//! a scratch directory holding the brick directories `b0`..`b3`; `b3` carries the volume id
//! `VOLUME_ID` when the test may set trusted xattrs (root), and files marked
//! `# needs: volume-id` are skipped otherwise.
//!
//! Without `glusterfs` the comparison prints a note and passes, except under CI (env `CI`
//! set), where the GlusterFS packages are installed and their absence fails.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verdict {
    Accept,
    Reject,
}

impl Verdict {
    fn parse(s: &str) -> Verdict {
        match s.trim() {
            "accept" => Verdict::Accept,
            "reject" => Verdict::Reject,
            other => panic!("unknown verdict {other:?}"),
        }
    }
}

#[derive(Debug)]
struct Case {
    name: String,
    path: PathBuf,
    keelson: Verdict,
    glusterfs: Verdict,
    errors: Vec<String>,
    warnings: Vec<String>,
}

/// The `trusted.glusterfs.volume-id` given to brick `b3`.
const VOLUME_ID: [u8; 16] = [
    0x6d, 0x2b, 0x1a, 0x4e, 0x8f, 0x0c, 0x4e, 0x8e, 0x9a, 0x51, 0x2f, 0x3c, 0x4d, 0x5e, 0x6f, 0x70,
];

/// Sets `b3`'s volume id; false when the file system or our privileges do not allow it.
fn set_volume_id(dir: &Path) -> bool {
    let path = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: NUL-terminated strings and a 16-byte buffer whose length we pass.
    let r = unsafe {
        libc::lsetxattr(
            path.as_ptr(),
            c"trusted.glusterfs.volume-id".as_ptr(),
            VOLUME_ID.as_ptr().cast(),
            VOLUME_ID.len(),
            0,
        )
    };
    r == 0
}

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/volfiles")
}

/// Copies the corpus into a scratch directory with `@BRICK@` replaced, and reads the
/// expectations.
fn corpus(scratch: &str) -> Vec<Case> {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(scratch);
    let _ = std::fs::remove_dir_all(&dir);
    // Each file gets its own bricks: glusterfs runs files in parallel, and two posix inits in
    // one directory race while creating `.glusterfs`.
    let make_bricks = |name: &str| {
        let bricks = dir.join("bricks").join(name.trim_end_matches(".vol"));
        for b in ["b0", "b1", "b2", "b3"] {
            std::fs::create_dir_all(bricks.join(b)).unwrap();
        }
        let volume_id = set_volume_id(&bricks.join("b3"));
        (bricks, volume_id)
    };
    let (_, volume_id) = make_bricks("probe");
    if !volume_id {
        eprintln!("note: cannot set trusted xattrs here; skipping the volume-id files");
    }
    let mut names: Vec<_> = std::fs::read_dir(corpus_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".vol"))
        .collect();
    names.sort();
    assert!(names.len() >= 40, "the corpus is missing files");
    names
        .into_iter()
        .filter_map(|name| {
            let raw = std::fs::read(corpus_dir().join(&name)).unwrap();
            let text = String::from_utf8(raw).unwrap();
            if !volume_id && text.contains("\n# needs: volume-id\n") {
                return None;
            }
            let by_name = if name.starts_with("good-") {
                Verdict::Accept
            } else {
                Verdict::Reject
            };
            let (mut keelson, mut glusterfs) = (by_name, by_name);
            let (mut errors, mut warnings) = (Vec::new(), Vec::new());
            for line in text.lines() {
                let Some(note) = line.strip_prefix("# ") else {
                    continue;
                };
                if let Some(v) = note.strip_prefix("expect: ") {
                    keelson = Verdict::parse(v);
                    glusterfs = keelson;
                } else if let Some(v) = note.strip_prefix("keelson: ") {
                    keelson = Verdict::parse(v);
                } else if let Some(v) = note.strip_prefix("glusterfs: ") {
                    glusterfs = Verdict::parse(v);
                } else if let Some(v) = note.strip_prefix("error: ") {
                    errors.push(v.to_string());
                } else if let Some(v) = note.strip_prefix("warning: ") {
                    warnings.push(v.to_string());
                }
            }
            let path = dir.join(&name);
            let (bricks, _) = make_bricks(&name);
            let text = text.replace("@BRICK@", bricks.to_str().unwrap());
            std::fs::write(&path, text).unwrap();
            Some(Case {
                name,
                path,
                keelson,
                glusterfs,
                errors,
                warnings,
            })
        })
        .collect()
}

struct Run {
    verdict: Verdict,
    stdout: String,
    stderr: String,
}

fn keelctl(path: &Path) -> Run {
    let o = Command::new(env!("CARGO_BIN_EXE_keelctl"))
        .args(["volfile", "check"])
        .arg(path)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        matches!(o.status.code(), Some(0 | 1)),
        "keelctl died: {:?}",
        o.status
    );
    Run {
        verdict: if o.status.success() {
            Verdict::Accept
        } else {
            Verdict::Reject
        },
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

#[test]
fn keelctl_verdicts_and_messages_follow_the_annotations() {
    let mut failures = Vec::new();
    for case in corpus("volfile-keelctl") {
        let run = keelctl(&case.path);
        let shown = case.path.display().to_string();
        if run.verdict != case.keelson {
            failures.push(format!(
                "{}: keelctl {:?}, expected {:?}\n{}",
                case.name, run.verdict, case.keelson, run.stderr
            ));
            continue;
        }
        if run.verdict == Verdict::Reject {
            // The last stderr line is the fatal error, `FILE:LINE:COL: message` (or `FILE: ...`).
            let last = run.stderr.lines().last().unwrap_or_default();
            if !last.starts_with(&format!("{shown}:")) {
                failures.push(format!(
                    "{}: error not prefixed by the file: {last}",
                    case.name
                ));
            }
            if !run.stdout.is_empty() {
                failures.push(format!("{}: rejected but printed a graph", case.name));
            }
        } else if !run.stdout.starts_with("volume ") {
            failures.push(format!("{}: accepted but no graph printed", case.name));
        }
        for e in case.errors.iter().chain(&case.warnings) {
            if !run.stderr.contains(e.as_str()) {
                failures.push(format!(
                    "{}: stderr lacks {e:?}:\n{}",
                    case.name, run.stderr
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn errors_carry_line_and_column() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("volfile-lines");
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join("dup.vol");
    std::fs::write(
        &p,
        "volume a\n type storage/ram\n option size-limit 1MB\nend-volume\n\nvolume a\n",
    )
    .unwrap();
    let run = keelctl(&p);
    assert_eq!(run.verdict, Verdict::Reject);
    assert_eq!(
        run.stderr,
        format!("{}:6:8: volume 'a' defined again\n", p.display())
    );
    let run = keelctl(Path::new("/nonexistent/x.vol"));
    assert!(run.stderr.starts_with("/nonexistent/x.vol: "));
}

#[test]
fn show_skips_init_and_check_lists_events() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("volfile-show");
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join("missing.vol");
    std::fs::write(
        &p,
        "volume p\n type storage/posix\n option directory /nonexistent/brick\nend-volume\n\
         volume wb\n type performance/write-behind\n subvolumes p\nend-volume\n",
    )
    .unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_keelctl"))
        .args(["volfile", "show"])
        .arg(&p)
        .output()
        .unwrap();
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stdout).ends_with("subvolumes p\nend-volume\n\n"));
    let run = keelctl(&p);
    assert_eq!(run.verdict, Verdict::Reject);
    assert!(run
        .stderr
        .contains("Directory '/nonexistent/brick' doesn't exist"));

    let r = dir.join("ram.vol");
    std::fs::write(
        &r,
        "volume a\n type storage/ram\n option size-limit 1MB\nend-volume\n\
         volume b\n type storage/ram\n option size-limit 1MB\nend-volume\n\
         volume d\n type cluster/distribute\n subvolumes a b\nend-volume\n",
    )
    .unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_keelctl"))
        .args(["volfile", "check", "--events"])
        .arg(&r)
        .output()
        .unwrap();
    assert!(o.status.success());
    let out = String::from_utf8_lossy(&o.stdout);
    let events: Vec<&str> = out.lines().filter(|l| l.starts_with("event ")).collect();
    assert_eq!(
        events,
        [
            "event PARENT_UP d -> d",
            "event PARENT_UP d -> a",
            "event PARENT_UP d -> b",
            "event CHILD_UP a -> d",
            "event CHILD_UP b -> d",
            "event CHILD_UP d -> (root)",
        ]
    );
}

fn glusterfs_binary() -> Option<PathBuf> {
    let found = ["/usr/sbin/glusterfs", "/usr/bin/glusterfs"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists());
    if found.is_none() {
        if std::env::var_os("CI").is_some() {
            panic!("glusterfs not found, but CI installs glusterfs-client");
        }
        eprintln!("note: glusterfs not found; skipping the GlusterFS parity check");
    }
    found
}

/// GlusterFS's verdict and, when it accepted, its `Final graph` with the line numbers cut.
fn glusterfs(bin: &Path, case: &Case) -> (Verdict, String) {
    let log = case.path.with_extension("log");
    let _ = std::fs::remove_file(&log);
    // A good graph keeps the process running; a bad one exits with 1 within milliseconds.
    let status = Command::new("timeout")
        .arg("4")
        .arg(bin)
        .args(["-N", "-f"])
        .arg(&case.path)
        .arg("--log-level=INFO")
        .arg(format!("--log-file={}", log.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    let verdict = if status.code() == Some(124) {
        Verdict::Accept
    } else {
        Verdict::Reject
    };
    let log = std::fs::read_to_string(&log).unwrap_or_default();
    let mut graph = String::new();
    let mut rules = 0;
    let mut inside = false;
    for line in log.lines() {
        if line == "Final graph:" {
            inside = true;
        } else if inside && line.starts_with("+---") {
            rules += 1;
            if rules == 2 {
                break;
            }
        } else if inside && rules == 1 {
            let body = line.trim_start();
            let body = body
                .split_once(": ")
                .map_or(body.trim_end_matches(':'), |(_, b)| b);
            graph.push_str(body.trim_end());
            graph.push('\n');
        }
    }
    (verdict, graph)
}

fn trim_lines(s: &str) -> String {
    s.lines().map(|l| format!("{}\n", l.trim_end())).collect()
}

#[test]
fn glusterfs_agrees_on_every_file_whose_types_keelson_implements() {
    let Some(bin) = glusterfs_binary() else {
        return;
    };
    let cases = corpus("volfile-glusterfs");
    let queue = Mutex::new(cases.iter().collect::<Vec<_>>());
    let results = Mutex::new(Vec::new());
    // Accepted files hold a process for the whole timeout: run a few at once.
    std::thread::scope(|s| {
        for _ in 0..6 {
            s.spawn(|| loop {
                let Some(case) = queue.lock().unwrap().pop() else {
                    break;
                };
                let theirs = glusterfs(&bin, case);
                let ours = keelctl(&case.path);
                results.lock().unwrap().push((case, theirs, ours));
            });
        }
    });
    let mut failures = Vec::new();
    let mut compared = 0;
    for (case, (theirs, their_graph), ours) in results.into_inner().unwrap() {
        if theirs != case.glusterfs {
            failures.push(format!(
                "{}: glusterfs {theirs:?}, the file says {:?}",
                case.name, case.glusterfs
            ));
        }
        if ours.verdict != theirs {
            // Only a type Keelson lacks, or a backtick it will not run, may explain a difference.
            let allowed = ours
                .stderr
                .contains("is not valid or not found on this machine")
                || ours
                    .stderr
                    .contains("backtick command substitution is not supported");
            if !allowed {
                failures.push(format!(
                    "{}: keelctl {:?} but glusterfs {theirs:?}\n{}",
                    case.name, ours.verdict, ours.stderr
                ));
            }
            continue;
        }
        compared += 1;
        if theirs == Verdict::Accept && trim_lines(&ours.stdout) != trim_lines(&their_graph) {
            failures.push(format!(
                "{}: normalised graphs differ\n--- glusterfs\n{their_graph}--- keelctl\n{}",
                case.name, ours.stdout
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(compared >= 40, "only {compared} files compared");
}

/// A small deterministic generator (64-bit LCG), so a failure names a reproducible file.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) as usize) % n.max(1)
    }

    fn pick<'t, T>(&mut self, v: &'t [T]) -> &'t T {
        &v[self.below(v.len())]
    }
}

/// Splits volfile text into rough tokens (quoted strings whole) for mutation.
fn tokens(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if quoted {
            cur.push(c);
            if c == '\\' {
                cur.extend(chars.next());
            } else if c == '"' {
                quoted = false;
                out.push(std::mem::take(&mut cur));
            }
        } else if c == '"' {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            quoted = true;
            cur.push(c);
        } else if c.is_whitespace() {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            if c == '\n' {
                out.push("\n".into());
            }
        } else {
            cur.push(c);
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Generated files: token-level mutations of the good corpus files, and every translator type
/// with one option set to a value from a pool of tricky spellings.
fn generated(dir: &Path, bricks: &Path) -> Vec<Case> {
    use keelson_core::xlator::types::BUILTIN;
    std::fs::create_dir_all(dir).unwrap();
    let mut rng = Lcg(0x5eed_0f6c_057e_2500);
    let goods: Vec<String> = corpus_texts()
        .into_iter()
        .filter(|(n, t)| n.starts_with("good-") && !t.contains("# needs: "))
        .map(|(_, t)| t)
        .collect();
    const INSERTS: &[&str] = &[
        "volume",
        "type",
        "end-volume",
        "subvolumes",
        "subvolumeS",
        "option",
        "x",
        "\"q\"",
        "\"\"",
        "#c\n",
        "\\",
        "p",
        "\"a\nb\"",
        "storage/posix",
    ];
    const VALUES: &[&str] = &[
        "on",
        "maybe",
        "0",
        "-1",
        "-0",
        "0x10",
        "010",
        "08",
        "1KB",
        "1.5MB",
        "1.0MB",
        "2GB",
        "10%",
        "101%",
        "abc",
        "/abs",
        "rel",
        "/a/../b",
        "512KB",
        "1h",
        "30",
        "1e3",
        "\" 5\"",
        "+5",
        "99999999999999999999",
        "none",
        "auto",
        "full",
        "json",
        "INFO",
        "p0",
        "nosuch",
        "1025",
        "\"   \"",
        "1B",
        "0.5",
        "2min",
        "65536",
    ];
    let mut texts = Vec::new();
    for _ in 0..60 {
        let base: &String = rng.pick(&goods);
        let mut toks = tokens(base);
        for _ in 0..1 + rng.below(2) {
            let j = rng.below(toks.len());
            match rng.below(4) {
                0 => {
                    toks.remove(j);
                }
                1 => toks.insert(j, rng.pick(INSERTS).to_string()),
                2 => {
                    let t = toks[rng.below(toks.len())].clone();
                    toks.insert(j, t);
                }
                _ => {
                    let k = rng.below(toks.len());
                    toks.swap(j, k);
                }
            }
        }
        texts.push(toks.join(" "));
    }
    let posix = |n: &str, d: &str| {
        format!("volume {n}\n type storage/posix\n option directory @BRICK@/{d}\nend-volume\n")
    };
    for t in BUILTIN.iter().filter(|t| t.name != "storage/ram") {
        for _ in 0..10 {
            let key = rng.pick(t.options).key();
            let value = rng.pick(VALUES);
            let mut text = posix("p0", "b0") + &posix("p1", "b1");
            if t.name == "storage/posix" {
                text += &format!(
                    "volume x\n type storage/posix\n option directory @BRICK@/b2\n option {key} {value}\nend-volume\n"
                );
            } else {
                let subs = match t.name {
                    "cluster/distribute" | "cluster/replicate" | "debug/io-stats" => "p0 p1",
                    _ => "p0",
                };
                text += &format!(
                    "volume x\n type {}\n option {key} {value}\n subvolumes {subs}\nend-volume\n",
                    t.name
                );
            }
            texts.push(text);
        }
    }
    texts
        .into_iter()
        .enumerate()
        .map(|(i, text)| {
            let name = format!("gen-{i:03}.vol");
            let path = dir.join(&name);
            std::fs::write(&path, text.replace("@BRICK@", bricks.to_str().unwrap())).unwrap();
            Case {
                name,
                path,
                keelson: Verdict::Reject,
                glusterfs: Verdict::Reject,
                errors: Vec::new(),
                warnings: Vec::new(),
            }
        })
        .collect()
}

fn corpus_texts() -> Vec<(String, String)> {
    let mut v: Vec<_> = std::fs::read_dir(corpus_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".vol"))
        .map(|n| {
            let t = std::fs::read_to_string(corpus_dir().join(&n)).unwrap();
            (n, t)
        })
        .collect();
    v.sort();
    v
}

#[test]
fn glusterfs_agrees_on_generated_volfiles() {
    let Some(bin) = glusterfs_binary() else {
        return;
    };
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("volfile-generated");
    let _ = std::fs::remove_dir_all(&dir);
    let bricks = dir.join("bricks");
    // Each file gets its own bricks: glusterfs runs in parallel and posix init writes into them.
    let cases = generated(&dir, &bricks);
    for c in &cases {
        let own = bricks.join(c.name.trim_end_matches(".vol"));
        let text = std::fs::read_to_string(&c.path).unwrap();
        let text = text.replace(bricks.to_str().unwrap(), own.to_str().unwrap());
        std::fs::write(&c.path, text).unwrap();
        for b in ["b0", "b1", "b2"] {
            std::fs::create_dir_all(own.join(b)).unwrap();
        }
    }
    let queue = Mutex::new(cases.iter().collect::<Vec<_>>());
    let failures = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..6 {
            s.spawn(|| loop {
                let Some(case) = queue.lock().unwrap().pop() else {
                    break;
                };
                let (theirs, graph) = glusterfs(&bin, case);
                let ours = keelctl(&case.path);
                let same_graph =
                    theirs == Verdict::Reject || trim_lines(&ours.stdout) == trim_lines(&graph);
                if ours.verdict != theirs || !same_graph {
                    let text = std::fs::read_to_string(&case.path).unwrap();
                    failures.lock().unwrap().push(format!(
                        "{}: keelctl {:?}, glusterfs {theirs:?}\n{text}\n{}",
                        case.name, ours.verdict, ours.stderr
                    ));
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
