//! Outgoing byte streams: the data socket's queue in caller storage and the meta socket's small
//! inline queue. Packets are emitted straight into the free tail ([`ByteQueue::spare`], then
//! [`ByteQueue::commit`]) and leave as a byte stream, in pieces of whatever size the shell's
//! buffer has. Positions are counted over the whole stream, so a caller can hold back
//! everything from some position on (writes waiting for their activity-log record).

/// A FIFO of bytes over storage `B`.
#[derive(Debug)]
pub(crate) struct ByteQueue<B> {
    buf: B,
    head: usize,
    tail: usize,
    /// Stream position of `head`.
    base: u64,
}

impl<B: AsRef<[u8]> + AsMut<[u8]>> ByteQueue<B> {
    pub(crate) fn new(buf: B) -> Self {
        ByteQueue {
            buf,
            head: 0,
            tail: 0,
            base: 0,
        }
    }

    pub(crate) fn capacity(&self) -> usize {
        self.buf.as_ref().len()
    }

    pub(crate) fn len(&self) -> usize {
        self.tail - self.head
    }

    /// Stream position just past the last byte queued.
    pub(crate) fn end_pos(&self) -> u64 {
        self.base + self.len() as u64
    }

    /// Free bytes (after compaction).
    pub(crate) fn free(&self) -> usize {
        self.capacity() - self.len()
    }

    /// The free tail, compacted first if that gives room for `want` bytes.
    pub(crate) fn spare(&mut self, want: usize) -> &mut [u8] {
        let cap = self.capacity();
        if cap - self.tail < want && self.head > 0 {
            let (h, t) = (self.head, self.tail);
            self.buf.as_mut().copy_within(h..t, 0);
            self.tail = t - h;
            self.head = 0;
        }
        let t = self.tail;
        self.buf.as_mut().get_mut(t..).unwrap_or(&mut [])
    }

    /// `n` bytes written at the start of [`Self::spare`] are queued.
    pub(crate) fn commit(&mut self, n: usize) {
        self.tail = (self.tail + n).min(self.capacity());
    }

    /// Copies up to `out.len()` bytes, not past stream position `limit`, into `out` and drops
    /// them; returns how many.
    pub(crate) fn take(&mut self, out: &mut [u8], limit: u64) -> usize {
        self.take_with(limit, |src| {
            let n = src.len().min(out.len());
            if let (Some(dst), Some(src)) = (out.get_mut(..n), src.get(..n)) {
                dst.copy_from_slice(src);
            }
            n
        })
    }

    /// Shows `f` the bytes queued up to stream position `limit` and drops as many as it says
    /// it used (at most all of them); returns that.
    pub(crate) fn take_with(&mut self, limit: u64, f: impl FnOnce(&[u8]) -> usize) -> usize {
        let allowed = limit.saturating_sub(self.base).min(self.len() as u64) as usize;
        let h = self.head;
        let src = self.buf.as_ref().get(h..h + allowed).unwrap_or(&[]);
        let n = if src.is_empty() {
            0
        } else {
            f(src).min(src.len())
        };
        self.head += n;
        self.base += n as u64;
        if self.head == self.tail {
            self.head = 0;
            self.tail = 0;
        }
        n
    }

    /// Drops everything queued (the socket went away); positions keep counting.
    pub(crate) fn clear(&mut self) {
        self.base += self.len() as u64;
        self.head = 0;
        self.tail = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_positions_survive_compaction_and_limits() {
        let mut q = ByteQueue::new([0u8; 8]);
        q.spare(5)[..5].copy_from_slice(b"abcde");
        q.commit(5);
        let mut out = [0u8; 3];
        assert_eq!(q.take(&mut out, 2), 2);
        assert_eq!(&out[..2], b"ab");
        assert_eq!(q.take(&mut out, 2), 0);
        // 5 free bytes need a compaction.
        let s = q.spare(5);
        assert_eq!(s.len(), 5);
        s.copy_from_slice(b"fghij");
        q.commit(5);
        assert_eq!((q.len(), q.end_pos()), (8, 10));
        let mut all = [0u8; 16];
        assert_eq!(q.take(&mut all, u64::MAX), 8);
        assert_eq!(&all[..8], b"cdefghij");
        q.spare(1)[0] = b'z';
        q.commit(1);
        q.clear();
        assert_eq!(q.len(), 0);
        assert_eq!(q.end_pos(), 11);
    }
}
