//! libdaemon framing (config-tree.md §3.1): a message is config text followed by `\n##\n`.
//!
//! The reader looks for the terminator only at the end of what it has accumulated, exactly as
//! libdaemon's `buffer_read` does after every `read()`: the protocol is strictly one request, one
//! reply, so a compatible peer never has more than one message in flight, and a terminator inside
//! a message (a string may hold raw newlines) is not mistaken for its end unless a read ends there.

use crate::config::{Overflow, Sink};

/// Ends every message.
pub const TERMINATOR: &[u8; 4] = b"\n##\n";

/// libdaemon HEAD's cap on one message (16 MiB); 2.03.16 had none.
pub const DEFAULT_MAX_MESSAGE: usize = 16 * 1024 * 1024;

/// Why a message could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum FrameError {
    /// More than the maximum accumulated without a terminator (libdaemon: EOVERFLOW).
    TooLarge {
        /// The maximum in force.
        max: usize,
    },
    /// The stream ended in the middle of a message (libdaemon: ECONNRESET).
    Truncated {
        /// Bytes of the unfinished message.
        pending: usize,
    },
}

impl core::fmt::Display for FrameError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            FrameError::TooLarge { max } => {
                write!(f, "message larger than {max} bytes without a terminator")
            }
            FrameError::Truncated { pending } => {
                write!(
                    f,
                    "connection closed in the middle of a message ({pending} bytes unterminated)"
                )
            }
        }
    }
}

impl core::error::Error for FrameError {}

/// Storage for a message being reassembled: a fixed [`heapless::Vec`] or, with `alloc`, a
/// growing `Vec`.
pub trait FrameBuf {
    /// The bytes so far.
    fn bytes(&self) -> &[u8];
    /// Appends; false (and nothing appended) when there is no room.
    fn append(&mut self, b: &[u8]) -> bool;
    /// Empties the buffer (keeping its allocation).
    fn clear(&mut self);
    /// Keeps the first `len` bytes (no-op when there are fewer).
    fn truncate(&mut self, len: usize);
}

impl<const N: usize> FrameBuf for heapless::Vec<u8, N> {
    fn bytes(&self) -> &[u8] {
        self
    }
    fn append(&mut self, b: &[u8]) -> bool {
        self.extend_from_slice(b).is_ok()
    }
    fn clear(&mut self) {
        heapless::Vec::clear(self)
    }
    fn truncate(&mut self, len: usize) {
        heapless::Vec::truncate(self, len)
    }
}

#[cfg(feature = "alloc")]
impl FrameBuf for alloc::vec::Vec<u8> {
    fn bytes(&self) -> &[u8] {
        self
    }
    fn append(&mut self, b: &[u8]) -> bool {
        self.extend_from_slice(b);
        true
    }
    fn clear(&mut self) {
        alloc::vec::Vec::clear(self)
    }
    fn truncate(&mut self, len: usize) {
        alloc::vec::Vec::truncate(self, len)
    }
}

/// Reassembles one message at a time from chunks of any size.
///
/// Feed every chunk a read returned to [`Reassembler::push`]; when it answers `true`,
/// [`Reassembler::body`] is the message without its terminator until the next `push`.
pub struct Reassembler<B: FrameBuf> {
    buf: B,
    max: usize,
    complete: bool,
}

impl<B: FrameBuf> Reassembler<B> {
    /// A reassembler that refuses messages over `max` bytes (terminator included).
    pub fn new(buf: B, max: usize) -> Self {
        Reassembler {
            buf,
            max,
            complete: false,
        }
    }

    /// Adds the bytes of one read. `Ok(true)` when they complete a message.
    ///
    /// After an error the partial message is dropped; the caller should close the connection,
    /// as libdaemon does, since the stream position is lost.
    pub fn push(&mut self, chunk: &[u8]) -> Result<bool, FrameError> {
        if self.complete {
            self.buf.clear();
            self.complete = false;
        }
        let len = self.buf.bytes().len() + chunk.len();
        if len > self.max || !self.buf.append(chunk) {
            self.buf.clear();
            return Err(FrameError::TooLarge { max: self.max });
        }
        self.complete = self.buf.bytes().ends_with(TERMINATOR);
        Ok(self.complete)
    }

    /// The completed message's body (terminator removed), if the last push completed one.
    pub fn body(&self) -> Option<&[u8]> {
        let b = self.buf.bytes();
        self.complete.then(|| &b[..b.len() - TERMINATOR.len()])
    }

    /// Bytes of an unfinished message.
    pub fn pending(&self) -> usize {
        if self.complete {
            0
        } else {
            self.buf.bytes().len()
        }
    }

    /// The peer closed the stream: an error if a message was unfinished.
    pub fn finish(&self) -> Result<(), FrameError> {
        match self.pending() {
            0 => Ok(()),
            pending => Err(FrameError::Truncated { pending }),
        }
    }
}

/// Writes `body` and the terminator.
pub fn write_message<W: Sink>(body: &[u8], out: &mut W) -> Result<(), Overflow> {
    out.put(body)?;
    out.put(TERMINATOR)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminator_split_across_chunks() {
        let mut r = Reassembler::new(heapless::Vec::<u8, 64>::new(), 64);
        assert_eq!(r.push(b"request = \"hello\"\n\n#"), Ok(false));
        assert_eq!(r.push(b"#"), Ok(false));
        assert_eq!(r.push(b"\n"), Ok(true));
        assert_eq!(r.body(), Some(&b"request = \"hello\"\n"[..]));
        assert_eq!(r.push(b"x"), Ok(false));
        assert_eq!(r.finish(), Err(FrameError::Truncated { pending: 1 }));
    }

    #[test]
    fn only_the_end_of_the_data_counts() {
        // Two messages in one read are one message to libdaemon.
        let mut r = Reassembler::new(heapless::Vec::<u8, 64>::new(), 64);
        assert_eq!(r.push(b"a=1\n##\nb=2\n##\n"), Ok(true));
        assert_eq!(r.body(), Some(&b"a=1\n##\nb=2"[..]));
        let mut r = Reassembler::new(heapless::Vec::<u8, 64>::new(), 64);
        assert_eq!(r.push(b"a=1\n##\nb"), Ok(false));
    }

    #[test]
    fn oversize_is_an_error_not_growth() {
        let mut r = Reassembler::new(heapless::Vec::<u8, 8>::new(), 1000);
        assert_eq!(
            r.push(b"0123456789"),
            Err(FrameError::TooLarge { max: 1000 })
        );
        assert_eq!(r.pending(), 0);
        let mut r = Reassembler::new(heapless::Vec::<u8, 64>::new(), 6);
        assert_eq!(r.push(b"abc"), Ok(false));
        assert_eq!(r.push(b"defg"), Err(FrameError::TooLarge { max: 6 }));
    }
}
