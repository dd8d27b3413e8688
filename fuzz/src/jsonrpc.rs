//! OVS JSON-RPC (ovs-sessions.md §3.2–3.4): the framer under arbitrary chunkings, and messages
//! through parse → write → parse.

use keelson_core::config::Overflow;
use keelson_core::jsonrpc::json::{self, ToJson, Value};
use keelson_core::jsonrpc::{keepalive, FrameError, Framer, Keepalive, Message, ParseError};

const MAX: usize = 512;

/// Everything the framer produced from `stream` fed in pieces of `chunk` bytes.
struct Framed {
    frames: Vec<Vec<u8>>,
    error: Option<FrameError>,
}

fn frame(stream: &[u8], chunk: usize) -> Framed {
    let mut f = Framer::new(Vec::new(), MAX);
    let mut frames = Vec::new();
    let mut fed_total = 0u64;
    for piece in stream.chunks(chunk.max(1)) {
        let mut rest = piece;
        while !rest.is_empty() {
            match f.feed(rest) {
                Ok(fed) => {
                    assert!(
                        fed.consumed > 0 && fed.consumed <= rest.len(),
                        "feed must progress"
                    );
                    assert!(f.pending() <= MAX, "the buffer stays bounded");
                    fed_total += fed.consumed as u64;
                    rest = &rest[fed.consumed..];
                    assert_eq!(fed.complete, f.frame().is_some());
                    if let Some(fr) = f.frame() {
                        assert!(fr.len() <= MAX);
                        assert!(matches!(fr.first(), Some(b'{' | b'[')), "{fr:?}");
                        assert!(matches!(fr.last(), Some(b'}' | b']')), "{fr:?}");
                        frames.push(fr.to_vec());
                    }
                }
                Err(e) => {
                    // Sticky: the same error again, whatever comes next.
                    assert_eq!(f.feed(b"{}"), Err(e));
                    assert_eq!(f.finish(), Err(e));
                    return Framed {
                        frames,
                        error: Some(e),
                    };
                }
            }
        }
    }
    assert_eq!(f.received(), fed_total);
    let error = f.finish().err();
    if let Some(e) = error {
        assert_eq!(
            e,
            FrameError::Truncated {
                pending: f.pending()
            }
        );
    }
    Framed { frames, error }
}

/// The first byte picks a chunk size; the rest is the stream. Framing with that chunk size, one
/// byte at a time and all at once must give the same frames and the same error.
pub fn check_frame(data: &[u8]) {
    let Some((&knob, stream)) = data.split_first() else {
        return;
    };
    let whole = frame(stream, stream.len());
    for chunk in [1, 1 + usize::from(knob % 17), 1 + usize::from(knob)] {
        let other = frame(stream, chunk);
        assert_eq!(other.frames, whole.frames, "chunk {chunk}");
        assert_eq!(other.error, whole.error, "chunk {chunk}");
    }
    // Frames re-joined with whitespace frame back to themselves (§3.2: whitespace between
    // messages is skipped).
    let mut joined = Vec::new();
    for fr in &whole.frames {
        joined.extend_from_slice(fr);
        joined.extend_from_slice(b" \n");
    }
    let again = frame(&joined, 1 + usize::from(knob % 5));
    assert_eq!(again.frames, whole.frames);
    assert_eq!(again.error, None);
    for fr in &whole.frames {
        check_message(fr);
    }
}

fn write(v: &dyn ToJson) -> Vec<u8> {
    let mut out = Vec::new();
    v.write_json(&mut out).expect("a Vec sink never overflows");
    out
}

/// Visits every nested value without recursion, exercising the decoders.
fn walk(v: Value<'_>) {
    let mut stack = vec![v];
    while let Some(v) = stack.pop() {
        match v {
            Value::String(s) => {
                let decoded: String = s.chars().collect();
                assert!(s.eq_str(&decoded));
                if let Some(p) = s.as_plain() {
                    assert_eq!(p, decoded);
                }
            }
            Value::Number(n) => {
                let _ = n.as_i64();
            }
            Value::Array(a) => stack.extend(a.iter()),
            Value::Object(o) => {
                for (k, v) in o.iter() {
                    let _ = k.to_string();
                    stack.push(v);
                }
            }
            Value::Null | Value::Bool(_) => {}
        }
    }
}

/// Any bytes as one message: JSON values survive write → parse; valid messages survive
/// write → parse unchanged, and the written form is a fixed point.
pub fn check_message(data: &[u8]) {
    if let Ok(v) = json::parse(data) {
        walk(v);
        let text = write(&v);
        let v2 = json::parse(&text).unwrap_or_else(|e| panic!("{text:?} does not parse: {e}"));
        assert_eq!(v, v2);
        assert_eq!(write(&v2), text);
    }
    match Message::parse(data) {
        Ok(m) => {
            let mut text = Vec::new();
            m.write(&mut text).expect("a Vec sink never overflows");
            let m2 = Message::parse(&text).unwrap_or_else(|e| {
                panic!("{:?} does not parse: {e}", String::from_utf8_lossy(&text))
            });
            assert_eq!(m, m2);
            let mut text2 = Vec::new();
            m2.write(&mut text2).unwrap();
            assert_eq!(text, text2);
            // The slice encoder agrees and says exactly how much room it needs.
            let mut buf = vec![0u8; text.len()];
            assert_eq!(m.encode(&mut buf), Ok(text.len()));
            assert_eq!(buf, text);
            if !text.is_empty() {
                let mut small = vec![0u8; text.len() - 1];
                assert_eq!(
                    m.encode(&mut small),
                    Err(Overflow {
                        required: text.len()
                    })
                );
            }
            match keepalive(&m) {
                Keepalive::Answer(reply) => {
                    let mut r = Vec::new();
                    reply.write(&mut r).unwrap();
                    let reply = Message::parse(&r).expect("an echo answer is a valid reply");
                    assert!(matches!(reply, Message::Reply { .. }));
                    assert_eq!(reply.id(), m.id());
                }
                Keepalive::Swallow => assert!(matches!(m, Message::Reply { .. })),
                Keepalive::Deliver => {}
            }
        }
        Err(e) => {
            let _ = e.to_string();
            if let ParseError::Invalid(_) = e {
                assert!(json::parse(data).is_ok());
            }
        }
    }
}
