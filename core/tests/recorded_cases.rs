//! The 60 tricky inputs of `run_cases.sh`, as libdevmapper 1.02.185 (lvm2 2.03.16) parsed and
//! wrote them: we must accept and reject the same inputs, write byte-identical text and report
//! errors at the same byte — except where we deliberately follow lvm2 HEAD (`DIVERGENT_CASES`).

#[path = "common/oracle_data.rs"]
mod oracle_data;

use keelson_core::config::{Duplicates, ErrorKind, Flags};
use oracle_data::*;

#[test]
fn cat_a_decoding() {
    assert_eq!(
        decode_cat_a(b"a=1^I^M$\n^@^K^LM-CM-)M-^?^?x$y"),
        b"a=1\t\r\n\0\x0b\x0c\xc3\xa9\xff\x7fx$y"
    );
    for b in 0..=255u8 {
        let s = [b, b'$', b];
        assert_eq!(decode_cat_a(&encode_cat_a(&s)), s);
    }
}

#[test]
fn recording_is_complete() {
    let cases = recorded_cases();
    assert_eq!(cases.len(), 60);
    let c = |id: &str| {
        cases
            .iter()
            .find(|c| c.id() == id)
            .unwrap_or_else(|| panic!("no case {id}"))
    };
    // Spot checks of the decoding at its edges.
    assert_eq!(c("unterminated_dq").input, b"a=\"abc");
    assert_eq!(c("empty_input").input, b"");
    assert_eq!(c("nul_stops").input, b"a=1\n\0b=2\n");
    assert_eq!(
        c("utf8").input,
        "k\u{e9}y=\"v\u{e4}l\"\nb=\u{f1}\n".as_bytes()
    );
    assert_eq!(c("crlf").input, b"a=1\r\nb=abc\r\nc { d=\"x\" }\r\n");
    assert_eq!(c("dup_value -n").duplicates(), Duplicates::Keep);
    assert_eq!(c("flags_octal_noquotes -f 10000").flags(), Flags(0x10000));
    assert_eq!(
        c("basic").output,
        b"a=1\nb=\"x\"\nc {\n\td=2\n\te {\n\t\tf=[1,2,3]\n\t}\n}\n"
    );
    assert_eq!(
        c("dup_value").stderr,
        ["WARNING: Ignoring duplicate config value: a"]
    );
    for (id, _) in DIVERGENT_CASES {
        c(id);
    }
}

#[test]
fn recorded_cases_match() {
    let mut failures = Vec::new();
    for case in recorded_cases() {
        let id = case.id();
        let got = ours(&case.input, case.duplicates(), case.flags());
        let verdict = match divergence(&id) {
            Some(Ours::Rejects(kind)) => match &got {
                Err(e) if e.kind == *kind => Ok(()),
                _ => Err(format!("expected our deliberate rejection {kind:?}")),
            },
            Some(Ours::Writes(text)) => match &got {
                Ok((_, out)) if out == text => Ok(()),
                _ => Err(format!("expected our deliberate output {}", show(text))),
            },
            None if case.rc == 0 => match &got {
                Ok((t, out)) if *out == case.output => {
                    // Warnings that libdevmapper logs must be counted, not dropped.
                    let dups = case
                        .stderr
                        .iter()
                        .filter(|l| l.starts_with("WARNING: Ignoring duplicate config value"))
                        .count();
                    let repaired = case
                        .stderr
                        .iter()
                        .any(|l| l.contains("Invalid creation_time"));
                    let w = t.warnings();
                    if w.duplicate_values as usize != dups
                        || (w.creation_time_repaired > 0) != repaired
                    {
                        Err(format!("warnings {w:?} vs stderr {:?}", case.stderr))
                    } else {
                        Ok(())
                    }
                }
                _ => Err(format!("libdevmapper wrote {}", show(&case.output))),
            },
            None => match (&got, upstream_error(&case.stderr)) {
                (Err(e), Ok(up)) if same_error(e, up) => Ok(()),
                (_, up) => Err(format!(
                    "libdevmapper rejected it: {up:?} {:?}",
                    case.stderr
                )),
            },
        };
        if let Err(why) = verdict {
            let got = match got {
                Ok((_, out)) => show(&out),
                Err(e) => format!("{e:?}"),
            };
            failures.push(format!(
                "{id}: input {}\n  {why}\n  we gave {got}",
                show(&case.input)
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} recorded cases differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Each listed divergence must still be one: the recording shows upstream's other answer.
#[test]
fn divergences_are_real() {
    for case in recorded_cases() {
        let Some(expected) = divergence(&case.id()) else {
            continue;
        };
        match expected {
            // `hex`: both reject, for different reasons (see its entry).
            Ours::Rejects(_) if case.id() == "hex" => assert_ne!(case.rc, 0),
            Ours::Rejects(_) => {
                assert_eq!(case.rc, 0, "{}: libdevmapper rejects it too", case.id())
            }
            Ours::Writes(text) => assert_ne!(
                case.output,
                *text,
                "{}: libdevmapper writes the same",
                case.id()
            ),
        }
    }
}

/// Upstream's line counter skips newlines inside quoted strings; ours counts every newline.
#[test]
fn line_numbers_count_newlines_in_strings() {
    let case = recorded_cases()
        .into_iter()
        .find(|c| c.name == "line_count_after_string_newline")
        .unwrap();
    assert_eq!(
        case.stderr,
        ["Parse error at byte 24 (line 4): expected a value"]
    );
    let e = ours(&case.input, Duplicates::Merge, Flags(0)).unwrap_err();
    assert_eq!(
        (e.kind, e.offset, e.line),
        (ErrorKind::ExpectedValue, 23, 5)
    );
}

/// The recordings in the repo are copies; when `shared/` is around, make sure they did not drift.
#[test]
fn recordings_match_shared_copies() {
    let dir = shared_dir().join("oracles").join("lvm");
    if !dir.is_dir() {
        eprintln!(
            "{} not found (set KEELSON_SHARED); not comparing the recordings",
            dir.display()
        );
        return;
    }
    let mut files: Vec<String> = vec![CASES_FILE.into(), LOOKUPS_FILE.into(), "cfgrt.c".into()];
    for e in std::fs::read_dir(data_dir().join("corpus")).unwrap() {
        files.push(format!(
            "corpus/{}",
            e.unwrap().file_name().to_str().unwrap()
        ));
    }
    for f in files {
        if let Ok(theirs) = std::fs::read(dir.join(&f)) {
            assert!(
                theirs == read_data(&f),
                "tests/data/{f} differs from shared/oracles/lvm/{f}"
            );
        }
    }
}
