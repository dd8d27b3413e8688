//! `keelctl config` as a user runs it: real processes, real files, exit codes and stderr.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

fn keelctl(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_keelctl"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("keelctl runs");
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

fn scratch(name: &str, content: &[u8]) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("keelctl-config");
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, content).unwrap();
    p
}

fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn fmt_prints_libdevmapper_canonical_form() {
    let o = keelctl(
        &["config", "fmt", "-"],
        b"a=1\nb = \"x\"\nc { d = 2\n e { f = [1, 2, 3] } }\n",
    );
    assert!(o.status.success());
    assert_eq!(
        text(&o),
        "a=1\nb=\"x\"\nc {\n\td=2\n\te {\n\t\tf=[1,2,3]\n\t}\n}\n"
    );
}

#[test]
fn fmt_merges_by_default_and_keeps_with_no_dup_check() {
    let input = b"a { x=1 }\nb=0\na { y=2 x=3 }\n";
    assert_eq!(
        text(&keelctl(&["config", "fmt"], input)),
        "a {\n\tx=3\n\ty=2\n}\nb=0\n"
    );
    assert_eq!(
        text(&keelctl(&["config", "fmt", "--no-dup-check", "-"], input)),
        "a {\n\tx=1\n}\nb=0\na {\n\ty=2\n\tx=3\n}\n"
    );
}

#[test]
fn bad_text_names_file_line_and_column() {
    let p = scratch("bad.conf", b"a = 1\nsection {\n\tb = [1 2]\n}\n");
    let o = keelctl(&["config", "fmt", p.to_str().unwrap()], b"");
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&o.stderr),
        format!("{}:3:9: expected a value\n", p.display())
    );
    assert!(o.stdout.is_empty());

    let o = keelctl(&["config", "fmt"], b"a { b = 1\n");
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&o.stderr),
        "-:2:1: unexpected token\n"
    );

    let o = keelctl(&["config", "fmt", "/nonexistent/keelson.conf"], b"");
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).starts_with("/nonexistent/keelson.conf: "));
}

#[test]
fn get_prints_values_by_type() {
    let p = scratch(
        "get.conf",
        b"a { s = \"str\" i = 010 f = 1.5 arr = [1, \"two\"] e = [] sub { x = 1 } }\ndup = 1\ndup = 2\n",
    );
    let f = p.to_str().unwrap();
    let get = |path: &str| text(&keelctl(&["config", "get", f, path], b""));
    assert_eq!(get("a/s"), "str\n");
    assert_eq!(get("a/i"), "8\n");
    assert_eq!(get("a/f"), "1.500000\n");
    assert_eq!(get("a/arr"), "[1,\"two\"]\n");
    assert_eq!(get("a/e"), "[]\n");
    assert_eq!(get("/a//sub"), "sub {\n\tx=1\n}\n");
    assert_eq!(get("dup"), "2\n");
    assert_eq!(
        text(&keelctl(
            &["config", "get", "--no-dup-check", f, "dup"],
            b""
        )),
        "1\n"
    );
    let o = keelctl(&["config", "get", f, "a/missing"], b"");
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&o.stderr),
        format!("{f}: a/missing: no such setting\n")
    );
}

#[test]
fn encode_decode_round_trip_through_files() {
    let src = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/agent.conf"
    ))
    .unwrap();
    let p = scratch("agent.conf", &src);
    let canonical = keelctl(&["config", "fmt", p.to_str().unwrap()], b"");
    let enc = keelctl(&["config", "encode", p.to_str().unwrap()], b"");
    assert!(enc.status.success());
    assert!(
        enc.stdout.len() < canonical.stdout.len(),
        "the binary form is the compact one"
    );
    let bin = scratch("agent.bin", &enc.stdout);
    let dec = keelctl(&["config", "decode", bin.to_str().unwrap()], b"");
    assert!(dec.status.success());
    assert_eq!(dec.stdout, canonical.stdout);

    let junk = scratch("junk.bin", b"\x07\x01\x02");
    let o = keelctl(&["config", "decode", junk.to_str().unwrap()], b"");
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("not a postcard config tree"));
}
