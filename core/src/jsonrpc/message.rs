//! JSON-RPC 1.0 messages as OVS checks and writes them (ovs-sessions.md §3.3), and the `echo`
//! keepalive (§3.4).

use core::fmt;

use super::json::{self, Array, JsonError, Null, Str, ToJson, Value};
use crate::config::{Overflow, Sink, SliceSink};

/// The four message types, named as OVS names them in its errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Kind {
    /// Has a non-null `id` and no result/error.
    Request,
    /// No `id` (or a null one).
    Notification,
    /// Has a non-null `result`.
    Reply,
    /// Has a non-null `error` and no `result`.
    Error,
}

impl Kind {
    /// "request", "notification", "reply", "error".
    pub fn name(self) -> &'static str {
        match self {
            Kind::Request => "request",
            Kind::Notification => "notification",
            Kind::Reply => "reply",
            Kind::Error => "error",
        }
    }
}

/// The members a message may have (§3.3: any other member is an error).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Member {
    /// `method`
    Method,
    /// `params`
    Params,
    /// `result`
    Result,
    /// `error`
    Error,
    /// `id`
    Id,
}

impl Member {
    const ALL: [Member; 5] = [
        Member::Method,
        Member::Params,
        Member::Result,
        Member::Error,
        Member::Id,
    ];

    /// The member's name on the wire.
    pub fn name(self) -> &'static str {
        match self {
            Member::Method => "method",
            Member::Params => "params",
            Member::Result => "result",
            Member::Error => "error",
            Member::Id => "id",
        }
    }

    /// Whether `kind` requires (`Some(true)`) or forbids (`Some(false)`) this member: the table
    /// of §3.3. Every cell is one or the other.
    fn required_in(self, kind: Kind) -> bool {
        use Kind as K;
        use Member as M;
        matches!(
            (kind, self),
            (K::Request, M::Method | M::Params | M::Id)
                | (K::Notification, M::Method | M::Params)
                | (K::Reply, M::Result | M::Id)
                | (K::Error, M::Error | M::Id)
        )
    }
}

/// A well-formed JSON value that is not a valid JSON-RPC message. `Display` gives OVS's text
/// (logged as `received bad JSON-RPC message: …`, §3.2).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Invalid<'a> {
    /// The top level is an array.
    NotObject,
    /// `method` is present (even as `null`) and not a string.
    MethodNotString,
    /// A member outside {method, params, result, error, id}; the first one in text order.
    UnexpectedMember(Str<'a>),
    /// `params` is present, not null and not an array.
    ParamsNotArray,
    /// A member the table of §3.3 requires is missing (or null), or one it forbids is present.
    Presence {
        /// The type decided from the members present.
        kind: Kind,
        /// The member at fault.
        member: Member,
        /// True when the member is required (so it was missing).
        required: bool,
    },
}

impl fmt::Display for Invalid<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Invalid::NotObject => f.write_str("message is not a JSON object"),
            Invalid::MethodNotString => f.write_str("method is not a JSON string"),
            Invalid::UnexpectedMember(m) => write!(f, "message has unexpected member \"{m}\""),
            Invalid::ParamsNotArray => f.write_str("\"params\" must be JSON array"),
            Invalid::Presence {
                kind,
                member,
                required,
            } => write!(
                f,
                "{} must{} have \"{}\"",
                kind.name(),
                if *required { "" } else { " not" },
                member.name()
            ),
        }
    }
}

/// Why received bytes are not a message. Either kind is fatal to the connection (§3.2).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ParseError<'a> {
    /// Not JSON.
    Json(JsonError),
    /// JSON, but not a valid JSON-RPC message.
    Invalid(Invalid<'a>),
}

impl fmt::Display for ParseError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::Json(e) => write!(f, "error parsing stream: {e}"),
            ParseError::Invalid(e) => write!(f, "received bad JSON-RPC message: {e}"),
        }
    }
}

impl core::error::Error for ParseError<'_> {}

impl From<JsonError> for ParseError<'_> {
    fn from(e: JsonError) -> Self {
        ParseError::Json(e)
    }
}

impl<'a> From<Invalid<'a>> for ParseError<'a> {
    fn from(e: Invalid<'a>) -> Self {
        ParseError::Invalid(e)
    }
}

/// A valid JSON-RPC message, borrowing the bytes it was parsed from.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Message<'a> {
    /// A call that wants a reply with the same `id`.
    Request {
        /// The method name.
        method: Str<'a>,
        /// The arguments.
        params: Array<'a>,
        /// Any JSON value but null.
        id: Value<'a>,
    },
    /// A call that wants no reply.
    Notification {
        /// The method name.
        method: Str<'a>,
        /// The arguments.
        params: Array<'a>,
    },
    /// A successful answer.
    Reply {
        /// Any JSON value but null.
        result: Value<'a>,
        /// The request's id.
        id: Value<'a>,
    },
    /// A failed answer.
    Error {
        /// Any JSON value but null (OVS servers send a string).
        error: Value<'a>,
        /// The request's id.
        id: Value<'a>,
    },
}

/// The probe a session sends when the peer has been silent (§3.4). Its id is the *string*
/// "echo", so the answer can be recognised and swallowed.
pub const ECHO_PROBE: &[u8] = br#"{"method":"echo","params":[],"id":"echo"}"#;

impl<'a> Message<'a> {
    /// Parses and validates one framed message (§3.3).
    pub fn parse(b: &'a [u8]) -> Result<Self, ParseError<'a>> {
        let v = json::parse(b)?;
        Ok(Self::from_value(v)?)
    }

    /// Validates a parsed value (§3.3), in OVS's order: object, `method` type, unknown
    /// members, type decision, `params` type, then the presence table.
    pub fn from_value(v: Value<'a>) -> Result<Self, Invalid<'a>> {
        let o = v.as_object().ok_or(Invalid::NotObject)?;
        // A repeated member: the last one wins, as in OVS's object parser.
        let mut m: [Option<Value<'a>>; 5] = [None; 5];
        let mut unexpected = None;
        for (k, val) in o.iter() {
            match Member::ALL.iter().position(|x| k.eq_str(x.name())) {
                Some(n) => m[n] = Some(val),
                None => unexpected = unexpected.or(Some(k)),
            }
        }
        // `method` is checked before nulls are dropped, so `"method":null` is an error.
        let method = match m[0] {
            Some(Value::String(s)) => Some(s),
            Some(_) => return Err(Invalid::MethodNotString),
            None => None,
        };
        if let Some(k) = unexpected {
            return Err(Invalid::UnexpectedMember(k));
        }
        // From here a null member is an absent one.
        let [_, params, result, error, id] = m.map(|v| v.filter(|v| !v.is_null()));
        let kind = if result.is_some() {
            Kind::Reply
        } else if error.is_some() {
            Kind::Error
        } else if id.is_some() {
            Kind::Request
        } else {
            Kind::Notification
        };
        let params = match params {
            Some(Value::Array(a)) => Some(a),
            Some(_) => return Err(Invalid::ParamsNotArray),
            None => None,
        };
        let present = [
            method.is_some(),
            params.is_some(),
            result.is_some(),
            error.is_some(),
            id.is_some(),
        ];
        for (member, present) in Member::ALL.into_iter().zip(present) {
            let required = member.required_in(kind);
            if present != required {
                return Err(Invalid::Presence {
                    kind,
                    member,
                    required,
                });
            }
        }
        // The presence table guarantees each `unwrap_or` below is never taken.
        let (method, params) = (method.unwrap_or(Str::EMPTY), params.unwrap_or(Array::EMPTY));
        let id = id.unwrap_or(Value::Null);
        Ok(match kind {
            Kind::Request => Message::Request { method, params, id },
            Kind::Notification => Message::Notification { method, params },
            Kind::Reply => Message::Reply {
                result: result.unwrap_or(Value::Null),
                id,
            },
            Kind::Error => Message::Error {
                error: error.unwrap_or(Value::Null),
                id,
            },
        })
    }

    /// The message's type.
    pub fn kind(&self) -> Kind {
        match self {
            Message::Request { .. } => Kind::Request,
            Message::Notification { .. } => Kind::Notification,
            Message::Reply { .. } => Kind::Reply,
            Message::Error { .. } => Kind::Error,
        }
    }

    /// The id; `Null` for a notification.
    pub fn id(&self) -> Value<'a> {
        match *self {
            Message::Request { id, .. } | Message::Reply { id, .. } | Message::Error { id, .. } => {
                id
            }
            Message::Notification { .. } => Value::Null,
        }
    }

    /// The method of a request or notification.
    pub fn method(&self) -> Option<Str<'a>> {
        match *self {
            Message::Request { method, .. } | Message::Notification { method, .. } => Some(method),
            _ => None,
        }
    }

    /// Writes the message in the shape OVS's C library sends (§3.3): compact, requests as
    /// `{"method","params","id"}`, notifications with `"id":null`, replies with
    /// `"error":null`, and errors with **no** `result` member.
    pub fn write(&self, out: &mut dyn Sink) -> Result<(), Overflow> {
        match self {
            Message::Request { method, params, id } => write_call(method, params, id, out),
            Message::Notification { method, params } => write_call(method, params, &Null, out),
            Message::Reply { result, id } => write_reply(result, id, out),
            Message::Error { error, id } => write_error(error, id, out),
        }
    }

    /// Writes the message into `buf`; the length written, or how much room it needs.
    pub fn encode(&self, buf: &mut [u8]) -> Result<usize, Overflow> {
        let mut s = SliceSink::new(buf);
        self.write(&mut s)?;
        s.finish().map(|b| b.len())
    }
}

fn write_call(
    method: &dyn ToJson,
    params: &dyn ToJson,
    id: &dyn ToJson,
    out: &mut dyn Sink,
) -> Result<(), Overflow> {
    out.put(b"{\"method\":")?;
    method.write_json(out)?;
    out.put(b",\"params\":")?;
    params.write_json(out)?;
    out.put(b",\"id\":")?;
    id.write_json(out)?;
    out.put(b"}")
}

/// Writes a request. `params` should write a JSON array (§3.3) and `id` a non-null value.
pub fn write_request(
    method: &str,
    params: &dyn ToJson,
    id: &dyn ToJson,
    out: &mut dyn Sink,
) -> Result<(), Overflow> {
    write_call(&method, params, id, out)
}

/// Writes a notification (`"id":null`). `params` should write a JSON array.
pub fn write_notification(
    method: &str,
    params: &dyn ToJson,
    out: &mut dyn Sink,
) -> Result<(), Overflow> {
    write_call(&method, params, &Null, out)
}

/// Writes a reply: `{"result":R,"error":null,"id":ID}`.
pub fn write_reply(
    result: &dyn ToJson,
    id: &dyn ToJson,
    out: &mut dyn Sink,
) -> Result<(), Overflow> {
    out.put(b"{\"result\":")?;
    result.write_json(out)?;
    out.put(b",\"error\":null,\"id\":")?;
    id.write_json(out)?;
    out.put(b"}")
}

/// Writes an error reply: `{"error":E,"id":ID}`, with no `result` member, as OVS does.
pub fn write_error(
    error: &dyn ToJson,
    id: &dyn ToJson,
    out: &mut dyn Sink,
) -> Result<(), Overflow> {
    out.put(b"{\"error\":")?;
    error.write_json(out)?;
    out.put(b",\"id\":")?;
    id.write_json(out)?;
    out.put(b"}")
}

/// What a session does with a received message before the application sees it (§3.4).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Keepalive<'a> {
    /// An `echo` request: send this reply (result = the request's params, same id).
    Answer(Message<'a>),
    /// The answer to our probe (a reply whose id is the string "echo"): drop it.
    Swallow,
    /// Anything else, an `echo` notification included: hand it to the application.
    Deliver,
}

/// Applies the session's automatic `echo` handling (§3.4) to a received message.
pub fn keepalive<'a>(msg: &Message<'a>) -> Keepalive<'a> {
    match *msg {
        Message::Request { method, params, id } if method.eq_str("echo") => {
            Keepalive::Answer(Message::Reply {
                result: Value::Array(params),
                id,
            })
        }
        Message::Reply {
            id: Value::String(s),
            ..
        } if s.eq_str("echo") => Keepalive::Swallow,
        _ => Keepalive::Deliver,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::ToString;
    use std::vec::Vec;

    fn invalid(b: &[u8]) -> std::string::String {
        match Message::parse(b) {
            Err(ParseError::Invalid(e)) => e.to_string(),
            other => panic!("{other:?}"),
        }
    }

    fn written(m: &Message<'_>) -> Vec<u8> {
        let mut out = Vec::new();
        m.write(&mut out).unwrap();
        out
    }

    #[test]
    fn shapes_from_ovsdb_server_transcript() {
        // transcripts/ovsdb-server.txt: each message ovsdb-server sent or accepted.
        let m = Message::parse(br#"{"id":1,"method":"list_dbs","params":[]}"#).unwrap();
        assert_eq!(m.kind(), Kind::Request);
        assert!(m.method().unwrap().eq_str("list_dbs"));
        assert_eq!(m.id().as_i64(), Some(1));
        let m = Message::parse(br#"{"id":1,"result":["Open_vSwitch","_Server"],"error":null}"#)
            .unwrap();
        assert_eq!(m.kind(), Kind::Reply);
        // "unknown method": an error with no result member (§3.3).
        let m = Message::parse(br#"{"id":4,"error":"unknown method"}"#).unwrap();
        assert!(
            matches!(m, Message::Error { error: Value::String(s), .. } if s.eq_str("unknown method"))
        );
        // The notification of echo (id null).
        let m = Message::parse(br#"{"id":null,"method":"echo","params":[]}"#).unwrap();
        assert_eq!(m.kind(), Kind::Notification);
        // The TCP probe.
        let m = Message::parse(br#"{"id":"echo","method":"echo","params":[]}"#).unwrap();
        assert_eq!(m.kind(), Kind::Request);
        assert_eq!(Message::parse(ECHO_PROBE).unwrap(), m);
    }

    #[test]
    fn params_object_is_rejected_with_ovs_text() {
        // transcripts/ovsdb-server.txt, "malformed JSON-RPC (params not an array)"; the log line
        // is `received bad JSON-RPC message: "params" must be JSON array`.
        let e = Message::parse(br#"{"id":5,"method":"echo","params":{}}"#).unwrap_err();
        assert_eq!(
            e.to_string(),
            "received bad JSON-RPC message: \"params\" must be JSON array"
        );
    }

    #[test]
    fn validation_table() {
        assert_eq!(invalid(b"[1]"), "message is not a JSON object");
        assert_eq!(
            invalid(br#"{"method":1,"params":[],"id":1}"#),
            "method is not a JSON string"
        );
        assert_eq!(
            invalid(br#"{"method":null,"params":[]}"#),
            "method is not a JSON string"
        );
        assert_eq!(
            invalid(br#"{"method":"m","params":[],"id":1,"jsonrpc":"2.0"}"#),
            "message has unexpected member \"jsonrpc\""
        );
        assert_eq!(
            invalid(br#"{"method":"m","id":1}"#),
            "request must have \"params\""
        );
        assert_eq!(
            invalid(br#"{"method":"m","params":null,"id":1}"#),
            "request must have \"params\""
        );
        assert_eq!(
            invalid(br#"{"params":[],"id":1}"#),
            "request must have \"method\""
        );
        assert_eq!(
            invalid(br#"{"params":[]}"#),
            "notification must have \"method\""
        );
        assert_eq!(invalid(b"{}"), "notification must have \"method\"");
        // ovs-appctl observation (§3.3): both result and error.
        assert_eq!(
            invalid(br#"{"result":1,"error":"e","id":1}"#),
            "reply must not have \"error\""
        );
        assert_eq!(
            invalid(br#"{"result":1,"error":null}"#),
            "reply must have \"id\""
        );
        assert_eq!(
            invalid(br#"{"method":"m","result":1,"id":1}"#),
            "reply must not have \"method\""
        );
        assert_eq!(
            invalid(br#"{"params":[],"result":1,"id":1}"#),
            "reply must not have \"params\""
        );
        assert_eq!(invalid(br#"{"error":"e"}"#), "error must have \"id\"");
        assert_eq!(
            invalid(br#"{"error":"e","params":"x","id":1}"#),
            "\"params\" must be JSON array"
        );
        // Both error forms are accepted (§3.3), in any member order.
        for b in [
            &br#"{"result":null,"error":"E","id":7}"#[..],
            br#"{"id":7,"error":"E"}"#,
        ] {
            assert_eq!(Message::parse(b).unwrap().kind(), Kind::Error);
        }
        // Any non-null JSON is an id.
        let m = Message::parse(br#"{"params":[],"id":{"a":[1]},"method":"m"}"#).unwrap();
        assert_eq!(m.kind(), Kind::Request);
        assert!(matches!(
            Message::parse(b"{\"id\":1"),
            Err(ParseError::Json(JsonError { offset: 7, .. }))
        ));
    }

    #[test]
    fn written_in_the_c_shapes() {
        let params = json::parse(br#"["hello",42]"#).unwrap();
        let mut out = Vec::new();
        write_request("echo", &params, &0i64, &mut out).unwrap();
        assert_eq!(out, br#"{"method":"echo","params":["hello",42],"id":0}"#);
        out.clear();
        write_notification("update", &[1i64, 2], &mut out).unwrap();
        assert_eq!(out, br#"{"method":"update","params":[1,2],"id":null}"#);
        out.clear();
        write_error(&"unknown method", &4i64, &mut out).unwrap();
        assert_eq!(out, br#"{"error":"unknown method","id":4}"#);
        out.clear();
        let empty: [i64; 0] = [];
        write_request("echo", &empty, &"echo", &mut out).unwrap();
        assert_eq!(out, ECHO_PROBE);
        // Re-encoding a received reply gives the C shape ovsdb-server sent, member order aside.
        let m = Message::parse(br#"{"id":1,"result":["Open_vSwitch","_Server"],"error":null}"#)
            .unwrap();
        assert_eq!(
            written(&m),
            br#"{"result":["Open_vSwitch","_Server"],"error":null,"id":1}"#
        );
        assert_eq!(Message::parse(&written(&m)).unwrap(), m);
    }

    #[test]
    fn encode_says_how_much_room_it_needs() {
        let m = Message::parse(ECHO_PROBE).unwrap();
        let mut small = [0u8; 10];
        assert_eq!(
            m.encode(&mut small),
            Err(Overflow {
                required: ECHO_PROBE.len()
            })
        );
        let mut buf = [0u8; 64];
        let n = m.encode(&mut buf).unwrap();
        assert_eq!(&buf[..n], ECHO_PROBE);
    }

    #[test]
    fn echo_keepalive_as_ovsdb_server_answers() {
        // transcripts/ovsdb-server.txt, "echo over unix socket".
        let req = Message::parse(br#"{"id":"e1","method":"echo","params":["hello",42]}"#).unwrap();
        let Keepalive::Answer(reply) = keepalive(&req) else {
            panic!("echo must be answered")
        };
        let mut buf = [0u8; 64];
        let n = reply.encode(&mut buf).unwrap();
        let expected =
            Message::parse(br#"{"id":"e1","result":["hello",42],"error":null}"#).unwrap();
        assert_eq!(Message::parse(&buf[..n]).unwrap(), expected);
        // "TCP client that answers echo probes": our answer to the server's probe.
        let probe = Message::parse(br#"{"id":"echo","method":"echo","params":[]}"#).unwrap();
        let Keepalive::Answer(reply) = keepalive(&probe) else {
            panic!()
        };
        assert_eq!(
            written(&reply),
            br#"{"result":[],"error":null,"id":"echo"}"#
        );
        // The peer's answer to our probe is swallowed; echo notifications are not answered.
        let answer = Message::parse(br#"{"id":"echo","result":[],"error":null}"#).unwrap();
        assert_eq!(keepalive(&answer), Keepalive::Swallow);
        let note = Message::parse(br#"{"id":null,"method":"echo","params":[]}"#).unwrap();
        assert_eq!(keepalive(&note), Keepalive::Deliver);
        let other = Message::parse(br#"{"id":3,"result":[],"error":null}"#).unwrap();
        assert_eq!(keepalive(&other), Keepalive::Deliver);
    }
}
