//! Splitting a byte stream into JSON-RPC messages (ovs-sessions.md §3.2).
//!
//! There is no length prefix and no delimiter: a message ends where its top-level `{…}` or
//! `[…]` closes. Whitespace (space, tab, LF, CR) between messages is skipped; anything else
//! outside a message is an error, because a message must start with `{` or `[`. The framer
//! tracks only strings, escapes and bracket depth, so it finds exactly the boundary a
//! streaming JSON parser finds for valid input; the bytes inside are checked afterwards by
//! [`json::parse`](super::json::parse) / [`Message::parse`](super::Message::parse). Either
//! failure is fatal to the connection (§3.2: no error reply is sent).

use core::fmt;

use super::json::{is_ws, MAX_DEPTH};
pub use crate::daemon::frame::FrameBuf;

/// Why the stream cannot be split any further. Errors are sticky: every later
/// [`Framer::feed`] returns the same one (§3.2: the connection status is sticky).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum FrameError {
    /// A message would exceed `max` bytes (or the buffer's capacity).
    TooLarge {
        /// The limit in force.
        max: usize,
    },
    /// A byte other than whitespace, `{` or `[` where a message must start. OVS reports this as
    /// "syntax error at beginning of input" (or "invalid keyword" for a bare word).
    NotContainer {
        /// Offset of the byte in the whole stream.
        offset: u64,
        /// The byte.
        byte: u8,
    },
    /// More than [`MAX_DEPTH`] containers open at once.
    TooDeep {
        /// Offset of the bracket that went too deep, in the whole stream.
        offset: u64,
    },
    /// The stream ended inside a message.
    Truncated {
        /// Bytes of the unfinished message.
        pending: usize,
    },
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::TooLarge { max } => write!(f, "JSON-RPC message larger than {max} bytes"),
            FrameError::NotContainer { offset, byte } => write!(
                f,
                "byte {offset}: syntax error at beginning of input (0x{byte:02x}; a message must \
                 be a JSON object)"
            ),
            FrameError::TooDeep { offset } => {
                write!(
                    f,
                    "byte {offset}: input exceeds maximum nesting depth {MAX_DEPTH}"
                )
            }
            FrameError::Truncated { pending } => write!(
                f,
                "connection closed in the middle of a message ({pending} bytes unfinished)"
            ),
        }
    }
}

impl core::error::Error for FrameError {}

/// What one [`Framer::feed`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fed {
    /// Bytes of the input used; pass the rest to the next `feed`.
    pub consumed: usize,
    /// A message is complete: [`Framer::frame`] has it until the next `feed`.
    pub complete: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scan {
    /// Between messages: skipping whitespace.
    Between,
    /// Inside a message, outside strings.
    Value,
    /// Inside a string.
    String,
    /// Just after a backslash in a string.
    Escape,
}

/// Splits a byte stream into messages, from chunks of any size, into bounded storage.
///
/// ```
/// use keelson_core::jsonrpc::Framer;
/// let mut f = Framer::new(heapless::Vec::<u8, 256>::new(), 256);
/// let mut got = 0;
/// for chunk in [&b"{\"id\":2}{\"id\""[..], b":3}\n"] {
///     let mut rest = chunk;
///     while !rest.is_empty() {
///         let fed = f.feed(rest).unwrap();
///         rest = &rest[fed.consumed..];
///         if fed.complete {
///             got += 1;
///             assert!(f.frame().unwrap().starts_with(b"{\"id\":"));
///         }
///     }
/// }
/// assert_eq!(got, 2);
/// ```
pub struct Framer<B: FrameBuf> {
    buf: B,
    max: usize,
    scan: Scan,
    depth: usize,
    complete: bool,
    offset: u64,
    failed: Option<FrameError>,
}

impl<B: FrameBuf> Framer<B> {
    /// A framer that refuses messages over `max` bytes. The effective limit is also the
    /// buffer's capacity; exceeding either is [`FrameError::TooLarge`].
    pub fn new(buf: B, max: usize) -> Self {
        Framer {
            buf,
            max,
            scan: Scan::Between,
            depth: 0,
            complete: false,
            offset: 0,
            failed: None,
        }
    }

    /// Consumes input up to the end of the next message (or all of it). Call again with the
    /// unconsumed rest; several messages may sit back to back in one read (§3.2).
    pub fn feed(&mut self, input: &[u8]) -> Result<Fed, FrameError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        if self.complete {
            self.buf.clear();
            self.complete = false;
        }
        let r = self.scan(input);
        if let Err(e) = r {
            self.failed = Some(e);
            self.buf.clear();
        }
        r
    }

    fn scan(&mut self, input: &[u8]) -> Result<Fed, FrameError> {
        let held = self.buf.bytes().len();
        let mut start = 0;
        let mut i = 0;
        while i < input.len() {
            let c = input[i];
            // Checked byte by byte, so where an oversize message fails does not depend on how
            // the stream was chunked.
            if self.scan != Scan::Between && held + (i + 1 - start) > self.max {
                return Err(FrameError::TooLarge { max: self.max });
            }
            match self.scan {
                Scan::Between => {
                    if is_ws(c) {
                        start = i + 1;
                    } else if c == b'{' || c == b'[' {
                        if self.max == 0 {
                            return Err(FrameError::TooLarge { max: 0 });
                        }
                        self.scan = Scan::Value;
                        self.depth = 1;
                    } else {
                        return Err(FrameError::NotContainer {
                            offset: self.offset + i as u64,
                            byte: c,
                        });
                    }
                }
                Scan::Value => match c {
                    b'"' => self.scan = Scan::String,
                    b'{' | b'[' => {
                        self.depth += 1;
                        if self.depth > MAX_DEPTH {
                            return Err(FrameError::TooDeep {
                                offset: self.offset + i as u64,
                            });
                        }
                    }
                    b'}' | b']' => {
                        self.depth -= 1;
                        if self.depth == 0 {
                            self.scan = Scan::Between;
                            self.complete = true;
                            i += 1;
                            break;
                        }
                    }
                    _ => {}
                },
                Scan::String => match c {
                    b'\\' => self.scan = Scan::Escape,
                    b'"' => self.scan = Scan::Value,
                    _ => {}
                },
                Scan::Escape => self.scan = Scan::String,
            }
            i += 1;
        }
        self.offset += i as u64;
        let part = &input[start..i];
        if self.buf.bytes().len() + part.len() > self.max || !self.buf.append(part) {
            return Err(FrameError::TooLarge { max: self.max });
        }
        Ok(Fed {
            consumed: i,
            complete: self.complete,
        })
    }

    /// The message the last [`feed`](Self::feed) completed, exactly from its opening to its
    /// closing bracket.
    pub fn frame(&self) -> Option<&[u8]> {
        self.complete.then(|| self.buf.bytes())
    }

    /// Bytes of an unfinished message held so far.
    pub fn pending(&self) -> usize {
        if self.complete {
            0
        } else {
            self.buf.bytes().len()
        }
    }

    /// Total bytes consumed from the stream (OVS counts received bytes as activity, §3.5).
    pub fn received(&self) -> u64 {
        self.offset
    }

    /// Starts over between messages, for a new connection: the buffer is emptied, the error
    /// and the byte count are forgotten, the limit stays.
    pub fn reset(&mut self) {
        self.buf.clear();
        self.scan = Scan::Between;
        self.depth = 0;
        self.complete = false;
        self.offset = 0;
        self.failed = None;
    }

    /// The peer closed the stream: an error if it did so inside a message.
    pub fn finish(&self) -> Result<(), FrameError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        match self.pending() {
            0 => Ok(()),
            pending => Err(FrameError::Truncated { pending }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    /// Frames `stream` fed in `chunk`-byte pieces.
    fn split(stream: &[u8], chunk: usize) -> Result<Vec<Vec<u8>>, FrameError> {
        let mut f = Framer::new(heapless::Vec::<u8, 128>::new(), 128);
        let mut out = Vec::new();
        for piece in stream.chunks(chunk) {
            let mut rest = piece;
            while !rest.is_empty() {
                let fed = f.feed(rest)?;
                assert!(fed.consumed > 0);
                rest = &rest[fed.consumed..];
                if fed.complete {
                    out.push(f.frame().unwrap().to_vec());
                }
            }
        }
        f.finish()?;
        Ok(out)
    }

    #[test]
    fn two_requests_in_one_write_from_ovsdb_server_transcript() {
        // transcripts/ovsdb-server.txt, "two requests back to back in one write".
        let s = br#"{"id":2,"method":"list_dbs","params":[]}{"id":3,"method":"echo","params":[]}"#;
        for chunk in 1..=s.len() {
            let got = split(s, chunk).unwrap();
            assert_eq!(got.len(), 2);
            assert_eq!(got[0], br#"{"id":2,"method":"list_dbs","params":[]}"#);
            assert_eq!(got[1], br#"{"id":3,"method":"echo","params":[]}"#);
        }
    }

    #[test]
    fn split_then_newline_separated_from_ovsdb_server_transcript() {
        // transcripts/ovsdb-server.txt, "one request split across two writes, then
        // newline-separated pair": three writes, three messages.
        let writes: [&[u8]; 3] = [
            br#"{"id":10,"method":"ec"#,
            br#"ho","params":[]}"#,
            b"\n{\"id\":11,\"method\":\"echo\",\"params\":[]}\n  {\"id\":12,\"method\":\"echo\",\"params\":[]}",
        ];
        let mut f = Framer::new(heapless::Vec::<u8, 64>::new(), 64);
        let mut got = Vec::new();
        for w in writes {
            let mut rest = w;
            while !rest.is_empty() {
                let fed = f.feed(rest).unwrap();
                rest = &rest[fed.consumed..];
                if fed.complete {
                    got.push(f.frame().unwrap().to_vec());
                }
            }
        }
        assert_eq!(got.len(), 3);
        assert_eq!(got[0], br#"{"id":10,"method":"echo","params":[]}"#);
        assert_eq!(got[2], br#"{"id":12,"method":"echo","params":[]}"#);
        assert_eq!(f.finish(), Ok(()));
        assert_eq!(
            f.received(),
            writes.iter().map(|w| w.len() as u64).sum::<u64>()
        );
    }

    #[test]
    fn brackets_and_escapes_inside_strings_do_not_count() {
        let s = br#" {"a":"}]\"{[","b":["\\"]} [1,{"c":"\\\""}]	"#;
        for chunk in 1..=s.len() {
            let got = split(s, chunk).unwrap();
            assert_eq!(got[0], br#"{"a":"}]\"{[","b":["\\"]}"#);
            assert_eq!(got[1], br#"[1,{"c":"\\\""}]"#);
        }
    }

    #[test]
    fn garbage_between_messages_is_fatal_and_sticky() {
        // §3.2: garbage bytes kill the connection (OVS: "invalid keyword 'this'").
        let mut f = Framer::new(heapless::Vec::<u8, 64>::new(), 64);
        let fed = f.feed(b"{}\n this").unwrap();
        assert_eq!(
            fed,
            Fed {
                consumed: 2,
                complete: true
            }
        );
        let e = FrameError::NotContainer {
            offset: 4,
            byte: b't',
        };
        assert_eq!(f.feed(b"\n this"), Err(e));
        assert_eq!(f.feed(b"{}"), Err(e));
        assert_eq!(f.finish(), Err(e));
        assert_eq!(
            split(b"42", 1),
            Err(FrameError::NotContainer {
                offset: 0,
                byte: b'4'
            })
        );
    }

    #[test]
    fn oversize_is_an_error_not_growth() {
        let big = [b"[\"".as_slice(), &[b'x'; 200], b"\"]"].concat();
        assert_eq!(split(&big, 7), Err(FrameError::TooLarge { max: 128 }));
        // The buffer's capacity bounds the message even when `max` is larger.
        let mut f = Framer::new(heapless::Vec::<u8, 8>::new(), 1000);
        assert_eq!(
            f.feed(b"[1,2,3,4,5]"),
            Err(FrameError::TooLarge { max: 1000 })
        );
        assert_eq!(f.pending(), 0);
    }

    #[test]
    fn depth_and_truncation() {
        let mut f = Framer::new(heapless::Vec::<u8, 2048>::new(), 2048);
        assert!(!f.feed(&[b'['; 1000]).unwrap().complete);
        assert_eq!(f.feed(b"["), Err(FrameError::TooDeep { offset: 1000 }));
        assert_eq!(
            split(b"{\"id\":1", 3),
            Err(FrameError::Truncated { pending: 7 })
        );
    }
}
