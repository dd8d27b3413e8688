//! Path lookups against `cfgrt -q` as recorded with libdevmapper 1.02.185: for each path the node
//! kind, first value type and what find_str / find_str_allow_empty / find_int64 / find_int /
//! find_float / find_bool return, in both parse modes.

use std::collections::BTreeMap;

#[path = "common/oracle_data.rs"]
mod oracle_data;

use keelson_core::config::{Lookup, OwnedTree, ParseOptions, TreeView};
use oracle_data::{lookup_line, read_data, LOOKUPS_FILE};

struct Section {
    opts: ParseOptions,
    /// One `cfgrt -q` stdout line per path.
    lines: Vec<String>,
}

/// The file is `# input:` (the document), then per mode `# cfgrt ... -q ...; stdout:` with one line
/// per path and `# stderr:` with the warnings (not compared: we do not log).
fn recording() -> (Vec<u8>, Vec<Section>) {
    let text = String::from_utf8(read_data(LOOKUPS_FILE)).expect("ASCII");
    let mut input = String::new();
    let mut sections: Vec<Section> = Vec::new();
    enum At {
        Start,
        Input,
        Stdout,
        Stderr,
    }
    let mut at = At::Start;
    for line in text.lines() {
        if let Some(header) = line.strip_prefix("# ") {
            at = if header == "input:" {
                At::Input
            } else if header.starts_with("cfgrt") && header.ends_with("stdout:") {
                let keep = header.split_whitespace().any(|w| w == "-n");
                let opts = if keep {
                    ParseOptions::KEEP
                } else {
                    ParseOptions::MERGE
                };
                sections.push(Section {
                    opts,
                    lines: Vec::new(),
                });
                At::Stdout
            } else if header == "stderr:" {
                At::Stderr
            } else {
                panic!("unknown header {line:?}");
            };
            continue;
        }
        match at {
            At::Input => {
                input.push_str(line);
                input.push('\n');
            }
            At::Stdout => sections.last_mut().unwrap().lines.push(line.to_string()),
            At::Stderr => {}
            At::Start => panic!("text before the first header: {line:?}"),
        }
    }
    (input.into_bytes(), sections)
}

/// Splits `PATH: node=K [type=N] str=S ...` into the path and its fields.
fn fields(line: &str) -> (&str, BTreeMap<&str, &str>) {
    let (path, rest) = line
        .split_once(": node=")
        .unwrap_or_else(|| panic!("bad line {line:?}"));
    let mut map = BTreeMap::new();
    let mut words = rest.split(' ');
    map.insert("node", words.next().unwrap());
    for w in words {
        let (k, v) = w
            .split_once('=')
            .unwrap_or_else(|| panic!("bad field {w:?} in {line:?}"));
        map.insert(k, v);
    }
    (path, map)
}

/// The same line cfgrt prints, from our lookups.
fn our_line(t: TreeView<'_>, path: &str) -> String {
    String::from_utf8(lookup_line(t, path.as_bytes())).expect("the recorded document is ASCII")
}

#[test]
fn lookups_match_libdevmapper() {
    let (input, sections) = recording();
    assert_eq!(sections.len(), 2, "one dup-check and one -n section");
    let mut checked = 0;
    for sec in &sections {
        let t = OwnedTree::from_text_owned(&input, sec.opts).unwrap();
        for line in &sec.lines {
            let (path, _) = fields(line);
            let ours = our_line(t.view(), path);
            // Compared field by field, so a mismatch names the getter.
            assert_eq!(
                fields(&ours).1,
                fields(line).1,
                "{:?} path {path:?}\n ours: {ours}\n  lib: {line}",
                sec.opts.duplicates
            );
            assert_eq!(ours, *line);
            checked += 1;
        }
    }
    assert_eq!(checked, 20);
}

/// Where libdevmapper would crash (find_bool on a section) we answer with the default.
#[test]
fn bool_of_a_section_is_the_default() {
    let (input, _) = recording();
    let t = OwnedTree::from_text_owned(&input, ParseOptions::MERGE).unwrap();
    assert!(t.view().find_node("a/b").is_some_and(|n| n.is_section()));
    assert_eq!(t.view().get_bool("a/b"), None);
    assert!(t.view().find_bool("a/b", true));
    assert!(!t.view().find_bool("a/b", false));
}
