//! `test-reconnect` against recorded C transcripts and, differentially, against the Python port.
//!
//! Test data in `tests/data/reconnect/` (ovs-sessions.md §2.4, §2.5):
//! - `upstream-NN.in/.out`: the 13 scenarios of OVS tests/reconnect.at (v3.1.0), split by our
//!   `extract_reconnect_at.py`; the `.out` files are upstream's expected output.
//! - `[a-h]-*.in/.out`, `x-*.in/.out`: our scripts and their C `ovstest` (v3.1.0) transcripts.
//!   `x-*` documents a Python divergence; its `.out` is still C, so it must match here too.
//! - `reconnect_oracle.py`: our runner over Debian's python3-openvswitch `ovs.reconnect`.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use keelson_core::reconnect::{Reconnect, State};
use keelson_linux::testreconnect;

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/reconnect")
}

/// Runs the real binary on a script file, returning stdout.
fn run_binary(script: &Path) -> Vec<u8> {
    let out = Command::new(env!("CARGO_BIN_EXE_test-reconnect"))
        .stdin(fs::File::open(script).unwrap())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}: {}",
        script.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[test]
fn recorded_transcripts_match_byte_for_byte() {
    let mut scripts: Vec<PathBuf> = fs::read_dir(data_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "in"))
        .collect();
    scripts.sort();
    let upstream = scripts
        .iter()
        .filter(|p| p.to_str().unwrap().contains("upstream-"))
        .count();
    assert_eq!(
        (upstream, scripts.len()),
        (13, 22),
        "13 upstream + 9 of ours"
    );
    for script in &scripts {
        let want = fs::read(script.with_extension("out")).unwrap();
        let got = run_binary(script);
        assert!(
            got == want,
            "{}:\n--- want\n{}\n--- got\n{}",
            script.display(),
            String::from_utf8_lossy(&want),
            String::from_utf8_lossy(&got)
        );
    }
}

#[test]
fn bad_scripts_exit_1_after_echoing() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_test-reconnect"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"enable\nbogus\nenable\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown command 'bogus'"));
    assert_eq!(
        out.stdout,
        b"### t=1000 ###\nenable\n  in BACKOFF for 0 ms (0 ms backoff)\nbogus\n"
    );
}

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

/// A random script in the command language. A shadow FSM tracks the state so that `activity`
/// is only issued in ACTIVE/IDLE, where the Python port agrees with C (§1.8 item 1, §2.5). Other
/// Python divergences are out of reach by construction: times stay positive and far below 2³¹,
/// tries are non-negative, and `set_backoff` is not in the language.
fn random_script(rng: &mut Rng) -> String {
    const DELAYS: &[&str] = &[
        "0", "1", "2", "100", "499", "500", "999", "1000", "1001", "2000", "4000", "5000", "8000",
    ];
    let mut fsm = Reconnect::new(1000);
    let mut now: i64 = 1000;
    let mut script = String::new();
    let len = 5 + rng.below(40);
    for _ in 0..len {
        let delay = |rng: &mut Rng| {
            if rng.below(4) == 0 {
                (rng.below(12_000)).to_string()
            } else {
                rng.pick(DELAYS).to_string()
            }
        };
        let line = match rng.below(22) {
            0 | 1 => {
                fsm.enable(now);
                "enable".to_string()
            }
            2 => {
                fsm.disable(now);
                "disable".into()
            }
            3 => {
                fsm.force_reconnect(now);
                "force-reconnect".into()
            }
            4 => {
                fsm.disconnected(now, 0);
                format!("disconnected{}", rng.pick(&["", " ECONNREFUSED", " EOF"]))
            }
            5 => {
                fsm.connecting(now);
                "connecting".into()
            }
            6 => {
                fsm.connect_failed(now, 0);
                format!("connect-failed{}", rng.pick(&["", " ECONNREFUSED", " EOF"]))
            }
            7 | 8 => {
                fsm.connected(now);
                "connected".into()
            }
            9 | 10 if matches!(fsm.state(), State::Active | State::Idle) => {
                fsm.activity(now);
                "activity".into()
            }
            9..=12 => {
                if rng.below(2) == 0 {
                    fsm.run(now);
                    "run".into()
                } else {
                    let d = delay(rng);
                    now += d.parse::<i64>().unwrap();
                    fsm.run(now);
                    format!("run {d}")
                }
            }
            13 | 14 => {
                let d = delay(rng);
                now += d.parse::<i64>().unwrap();
                format!("advance {d}")
            }
            15 | 16 => {
                if let Some(t) = fsm.timeout(now) {
                    now += i64::from(t);
                }
                "timeout".into()
            }
            17 => {
                let n = rng.below(4);
                fsm.set_max_tries(n as u32);
                format!("set-max-tries {n}")
            }
            18 => {
                let n = rng.below(5);
                fsm.set_backoff_free_tries(n as u32);
                format!("set-backoff-free-tries {n}")
            }
            19 => {
                fsm.set_passive(true, now);
                "passive".into()
            }
            20 => {
                if rng.below(2) == 0 {
                    fsm.listening(now);
                    "listening".into()
                } else {
                    fsm.listen_error(now, 0);
                    format!("listen-error {}", rng.pick(&["0", "111", "-1"]))
                }
            }
            _ => {
                let (arg, t) = if rng.below(3) == 0 {
                    ("LLONG_MAX", i64::MAX)
                } else {
                    ("now", now)
                };
                fsm.receive_attempted(t);
                format!("receive-attempted {arg}")
            }
        };
        script.push_str(&line);
        script.push('\n');
        if rng.below(15) == 0 {
            script.push_str("# comment\n\n");
        }
    }
    script
}

/// Debian's python3 (the pyenv shim does not see dist-packages, §8), if it can import
/// `ovs.reconnect`.
fn python_with_ovs() -> Option<&'static str> {
    ["/usr/bin/python3", "python3"].into_iter().find(|py| {
        Command::new(py)
            .args(["-c", "import ovs.reconnect"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

/// Runs every script through one Python process (`reconnect_oracle.Runner` per script), so
/// thousands of scripts cost one interpreter start.
fn python_transcripts(python: &str, scripts: &[String]) -> Vec<String> {
    // The separator line, and the same as a Python string literal.
    const SEP: &str = "\u{1}END\n";
    const SEP_PY: &str = r#"'\x01END\n'"#;
    let driver = format!(
        "import sys\nsys.path.insert(0, {dir:?})\nimport reconnect_oracle\n\
         for s in sys.stdin.read().split({SEP_PY})[:-1]:\n\
         \x20   reconnect_oracle.Runner(sys.stdout).main(s.splitlines(True))\n\
         \x20   sys.stdout.write({SEP_PY})\n",
        dir = data_dir().to_str().unwrap()
    );
    let mut child = Command::new(python)
        .args(["-c", &driver])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let input: String = scripts.iter().flat_map(|s| [s.as_str(), SEP]).collect();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(out.status.success(), "python oracle failed");
    let text = String::from_utf8(out.stdout).unwrap();
    let mut parts: Vec<String> = text.split(SEP).map(str::to_string).collect();
    assert_eq!(parts.pop().as_deref(), Some(""));
    parts
}

#[test]
fn differential_against_python_port() {
    let Some(python) = python_with_ovs() else {
        if std::env::var_os("CI").is_some() {
            panic!(
                "CI: python3 with the ovs module is required (apt-get install python3-openvswitch)"
            );
        }
        eprintln!(
            "skipping: python3 with ovs.reconnect not found (apt-get install python3-openvswitch)"
        );
        return;
    };
    let mut rng = Rng(0x6b65_656c_736f_6e21);
    let scripts: Vec<String> = (0..3000).map(|_| random_script(&mut rng)).collect();
    let want = python_transcripts(python, &scripts);
    assert_eq!(want.len(), scripts.len());
    for (script, want) in scripts.iter().zip(&want) {
        let mut got = Vec::new();
        testreconnect::run(&mut script.as_bytes(), &mut got).unwrap();
        let got = String::from_utf8(got).unwrap();
        assert!(
            got == *want,
            "script:\n{script}\n--- python\n{want}\n--- rust\n{got}"
        );
    }
    // The generator must reach every state and every answer, or the comparison proves little.
    let all: String = want.concat();
    for needle in [
        "in VOID",
        "in BACKOFF",
        "in CONNECTING",
        "in ACTIVE",
        "in IDLE",
        "in RECONNECT",
        "in LISTENING",
        "should connect",
        "should disconnect",
        "should send probe",
        "tries left",
        "no timeout",
        "disconnected at",
        "last connected",
    ] {
        assert!(
            all.matches(needle).count() >= 20,
            "random scripts rarely reach {needle:?}"
        );
    }
}
