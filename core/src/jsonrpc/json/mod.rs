//! A small JSON reader and writer for JSON-RPC messages (ovs-sessions.md §3.2–3.3).
//!
//! [`parse`] validates one whole document without recursion (nesting is tracked in a bit stack
//! of [`MAX_DEPTH`] entries, so deep input cannot exhaust a small firmware stack) and returns a
//! [`Value`] view. Views borrow the validated bytes: strings keep their escapes until they are
//! read ([`Str::chars`]), numbers keep their text, containers are walked lazily. Writing is the
//! [`ToJson`] trait: values are re-emitted compactly, as OVS's C senders do (§3.2).
//!
//! - `validate`: the non-recursive syntax check and its errors.
//! - `value`: the [`Value`] views over validated bytes.
//! - `write`: [`ToJson`], compact output with OVS's string escapes.

mod validate;
mod value;
mod write;

pub(crate) use validate::is_ws;
pub use validate::{validate, JsonError, JsonErrorKind, MAX_DEPTH};
pub use value::{
    parse, parse_with_depth, Array, Elements, Members, Number, Object, Str, StrChars, Value,
};
pub use write::{write_string, write_string_body, Null, ToJson};

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::String;
    use std::vec::Vec;

    fn kind(b: &[u8]) -> (usize, JsonErrorKind) {
        let e = parse(b).unwrap_err();
        (e.offset, e.kind)
    }

    fn compact(v: &impl ToJson) -> Vec<u8> {
        let mut out = Vec::new();
        v.write_json(&mut out).unwrap();
        out
    }

    #[test]
    fn list_dbs_reply_from_ovsdb_server() {
        // ovs-sessions.md transcripts/ovsdb-server.txt, "list_dbs over unix socket".
        let v = parse(br#"{"id":1,"result":["Open_vSwitch","_Server"],"error":null}"#).unwrap();
        let o = v.as_object().unwrap();
        assert_eq!(o.get("id").unwrap().as_i64(), Some(1));
        assert!(o.get("error").unwrap().is_null());
        let r = o.get("result").unwrap().as_array().unwrap();
        assert_eq!(r.len(), 2);
        assert!(r.get(0).unwrap().as_str().unwrap().eq_str("Open_vSwitch"));
        assert!(r.get(1).unwrap().as_str().unwrap().eq_str("_Server"));
        assert!(o.get("method").is_none());
    }

    #[test]
    fn unixctl_error_text_with_escapes() {
        // transcripts/ovsdb-server.txt, "raw unixctl request by hand", id 8.
        let v = parse(
            br#"{"id":8,"error":"\"nope\" is not a valid command (use \"list-commands\" to see a list of valid commands)\n"}"#,
        )
        .unwrap();
        let e = v
            .as_object()
            .unwrap()
            .get("error")
            .unwrap()
            .as_str()
            .unwrap();
        assert!(e.as_plain().is_none());
        assert_eq!(
            e.chars().collect::<String>(),
            "\"nope\" is not a valid command (use \"list-commands\" to see a list of valid commands)\n"
        );
    }

    #[test]
    fn unicode_escapes_and_surrogate_pairs() {
        let v = parse(br#"["\u00e9\ud83d\ude00\/\b\f\t\r", "h\u00E9"]"#).unwrap();
        let a = v.as_array().unwrap();
        let s: String = a.get(0).unwrap().as_str().unwrap().chars().collect();
        assert_eq!(s, "\u{e9}\u{1f600}/\u{8}\u{c}\t\r");
        assert!(a.get(1).unwrap().as_str().unwrap().eq_str("hé"));
        assert_eq!(kind(br#"["\ud83d"]"#), (2, JsonErrorKind::InvalidSurrogate));
        assert_eq!(kind(br#"["\ude00"]"#), (2, JsonErrorKind::InvalidSurrogate));
        assert_eq!(
            kind(br#"["\ud83d\u0041"]"#),
            (2, JsonErrorKind::InvalidSurrogate)
        );
        assert_eq!(
            kind(br#"["\u12g4"]"#),
            (6, JsonErrorKind::InvalidUnicodeEscape)
        );
        assert_eq!(kind(br#"["\u0000"]"#), (2, JsonErrorKind::NulInString));
        assert_eq!(kind(br#"["\x"]"#), (2, JsonErrorKind::InvalidEscape));
        assert_eq!(kind(b"[\"a\nb\"]"), (3, JsonErrorKind::ControlInString));
        assert_eq!(kind(b"[\"\xff\"]"), (2, JsonErrorKind::InvalidUtf8));
    }

    #[test]
    fn numbers_and_keywords() {
        let v = parse(b"[0, -0, 12, -3.25e+10, 1E2, true, false, null]").unwrap();
        let a = v.as_array().unwrap();
        assert_eq!(a.len(), 8);
        assert_eq!(a.get(2).unwrap().as_i64(), Some(12));
        assert!(matches!(a.get(5), Some(Value::Bool(true))));
        assert!(a.get(7).unwrap().is_null());
        assert_eq!(kind(b"[01]"), (1, JsonErrorKind::InvalidNumber));
        assert_eq!(kind(b"[1.]"), (1, JsonErrorKind::InvalidNumber));
        assert_eq!(kind(b"[-]"), (1, JsonErrorKind::InvalidNumber));
        assert_eq!(kind(b"[1e]"), (1, JsonErrorKind::InvalidNumber));
        assert_eq!(kind(b"[1x]"), (1, JsonErrorKind::InvalidNumber));
        assert_eq!(kind(b"[tru]"), (1, JsonErrorKind::InvalidKeyword));
    }

    #[test]
    fn structure_errors_carry_offsets() {
        // §3.2: a scalar top level is "syntax error at beginning of input".
        assert_eq!(kind(b"  42"), (2, JsonErrorKind::NotContainer));
        assert_eq!(kind(b"this is not json"), (0, JsonErrorKind::NotContainer));
        assert_eq!(kind(b"{\"a\" 1}"), (5, JsonErrorKind::UnexpectedByte(b'1')));
        assert_eq!(
            kind(b"{\"a\":1,}"),
            (7, JsonErrorKind::UnexpectedByte(b'}'))
        );
        assert_eq!(kind(b"[1,]"), (3, JsonErrorKind::UnexpectedByte(b']')));
        assert_eq!(kind(b"[1}"), (2, JsonErrorKind::UnexpectedByte(b'}')));
        assert_eq!(kind(b"{1:2}"), (1, JsonErrorKind::UnexpectedByte(b'1')));
        assert_eq!(kind(b"[1"), (2, JsonErrorKind::UnexpectedEnd));
        assert_eq!(kind(b"[] x"), (3, JsonErrorKind::TrailingBytes));
        let e = parse(b"[1 2]").unwrap_err();
        assert_eq!(std::format!("{e}"), "byte 3: unexpected byte 0x32");
    }

    #[test]
    fn depth_limit_is_1000() {
        let ok: Vec<u8> = [b'['; 1000]
            .iter()
            .chain([b']'; 1000].iter())
            .copied()
            .collect();
        assert!(parse(&ok).is_ok());
        let deep: Vec<u8> = [b'['; 1001]
            .iter()
            .chain([b']'; 1001].iter())
            .copied()
            .collect();
        assert_eq!(kind(&deep), (1000, JsonErrorKind::TooDeep { max: 1000 }));
        assert_eq!(
            parse_with_depth(b"[[[]]]", 2).unwrap_err().kind,
            JsonErrorKind::TooDeep { max: 2 }
        );
        // Deep values compare and write without recursion.
        let v = parse(&deep[1..2001]).unwrap();
        assert_eq!(compact(&v), &deep[1..2001]);
        assert_eq!(v, v);
    }

    #[test]
    fn compact_output_and_equality() {
        let spaced = parse(b" { \"a\" : [ 1 , \"x\\u0041\" , { } ] , \"b\" : null } ").unwrap();
        assert_eq!(compact(&spaced), br#"{"a":[1,"x\u0041",{}],"b":null}"#);
        let other = parse(br#"{"a":[1,"xA",{}],"b":null}"#).unwrap();
        assert_eq!(spaced, other);
        let reordered = parse(br#"{"b":null,"a":[1,"xA",{}]}"#).unwrap();
        assert_ne!(spaced, reordered);
        assert_eq!(
            compact(&[1i64, -20, i64::MIN]),
            b"[1,-20,-9223372036854775808]"
        );
        let mut out = Vec::new();
        write_string("q\"b\\\n\u{1}é", &mut out).unwrap();
        assert_eq!(out, b"\"q\\\"b\\\\\\n\\u0001\xc3\xa9\"");
    }

    #[test]
    fn repeated_member_last_wins() {
        let v = parse(br#"{"id":1,"id":2}"#).unwrap();
        assert_eq!(v.as_object().unwrap().get("id").unwrap().as_i64(), Some(2));
    }
}
