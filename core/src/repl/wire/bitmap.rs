//! Bitmap transfer (replication.md §3.11): P_BITMAP (plain little-endian 64-bit words) and
//! P_COMPRESSED_BITMAP (an encoding byte, then VLI-coded run lengths of alternating polarity),
//! and [`BitmapXfer`], the cursor both sides keep while the bitmap crosses in packets of at most
//! 4096 bytes.
//!
//! A bitmap here is bytes with bit `i` at bit `i % 8` of byte `i / 8`, which is exactly DRBD's
//! little-endian word order, so the same slice serves the plain packets and the run scanner.

use super::command::Command;
use super::error::{room, BitmapError, Error};
use super::header::HeaderKind;
use super::vli::{self, BitReader, BitWriter};

/// Largest bitmap packet, header included (`DRBD_SOCKET_BUFFER_SIZE`).
pub const MAX_PACKET: usize = 4096;

/// The only encoding DRBD defines: RLE_VLI_Bits.
pub const RLE_VLI_BITS: u8 = 2;

/// A parsed P_COMPRESSED_BITMAP payload.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CompressedRepr<'a> {
    /// Polarity of the first run (encoding bit 7).
    pub first_set: bool,
    /// Unused bits at the end of the last code byte (encoding bits 4–6).
    pub pad_bits: u8,
    /// The code stream.
    pub code: &'a [u8],
}

fn bitmap_err(reason: BitmapError, at: usize) -> Error {
    Error::Bitmap { reason, at }
}

impl<'a> CompressedRepr<'a> {
    /// Parses the encoding byte (code must be 2) and takes the rest as the code stream.
    pub fn parse(payload: &'a [u8]) -> Result<Self, Error> {
        let (&enc, code) = payload.split_first().ok_or(Error::Truncated {
            what: "p_compressed_bm",
            need: 1,
            have: 0,
        })?;
        if enc & 0x0F != RLE_VLI_BITS {
            return Err(bitmap_err(BitmapError::UnknownEncoding, 0));
        }
        let pad_bits = (enc >> 4) & 7;
        if usize::from(pad_bits) > code.len() * 8 {
            return Err(bitmap_err(BitmapError::BadPad, 0));
        }
        Ok(CompressedRepr {
            first_set: enc & 0x80 != 0,
            pad_bits,
            code,
        })
    }

    /// The encoding byte.
    pub fn encoding(&self) -> u8 {
        RLE_VLI_BITS | (self.pad_bits & 7) << 4 | if self.first_set { 0x80 } else { 0 }
    }

    /// Bits of code (the stream minus the padding).
    pub fn code_bits(&self) -> usize {
        (self.code.len() * 8).saturating_sub(usize::from(self.pad_bits))
    }

    /// The runs: `(set, length)` pairs, or an error where a codeword is cut off.
    pub fn runs(&self) -> Runs<'a> {
        Runs {
            reader: BitReader::new(self.code, self.code_bits()),
            set: self.first_set,
            failed: false,
        }
    }

    /// Bytes [`Self::emit`] writes.
    pub fn buffer_len(&self) -> usize {
        1 + self.code.len()
    }

    /// Writes the encoding byte and the code.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, Error> {
        super::field::emit_parts(buf, &[&[self.encoding()], self.code])
    }
}

/// Iterator over the runs of a compressed bitmap.
#[derive(Clone, Debug)]
pub struct Runs<'a> {
    reader: BitReader<'a>,
    set: bool,
    failed: bool,
}

impl Iterator for Runs<'_> {
    type Item = Result<(bool, u64), Error>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.reader.remaining() == 0 {
            return None;
        }
        let at = self.reader.pos();
        let (len, bits) = vli::decode(self.reader.peek());
        if bits as usize > self.reader.remaining() {
            self.failed = true;
            return Some(Err(bitmap_err(BitmapError::CutCodeword, at)));
        }
        self.reader.skip(bits as usize);
        let set = self.set;
        self.set = !set;
        Some(Ok((set, len)))
    }
}

/// Writes explicit runs as one compressed payload into `out` (encoding byte included); returns
/// the payload length. For building test vectors and for callers that hold runs already.
pub fn encode_runs(first_set: bool, runs: &[u64], out: &mut [u8]) -> Result<usize, Error> {
    let (head, code) = out.split_first_mut().ok_or(Error::NoRoom {
        required: 1,
        have: 0,
    })?;
    let mut w = BitWriter::new(code);
    for (i, &r) in runs.iter().enumerate() {
        let (c, n) = vli::encode(r).ok_or(Error::BadField {
            field: "run length",
            value: r,
        })?;
        if !w.put(c, n) {
            let need = runs
                .iter()
                .skip(i)
                .filter_map(|&r| vli::encode(r))
                .map(|(_, n)| n as usize)
                .sum::<usize>();
            return Err(Error::NoRoom {
                required: 1 + (w.bits() + need).div_ceil(8),
                have: 1 + w.bytes(),
            });
        }
    }
    let pad = ((8 - w.bits() % 8) % 8) as u8;
    *head = CompressedRepr {
        first_set,
        pad_bits: pad,
        code: &[],
    }
    .encoding();
    Ok(1 + w.bytes())
}

fn bit(bitmap: &[u8], i: u64) -> bool {
    usize::try_from(i / 8)
        .ok()
        .and_then(|b| bitmap.get(b))
        .is_some_and(|&b| b >> (i % 8) & 1 == 1)
}

/// First position ≥ `from` (and < `end`) whose bit differs from `value`, or `end`.
fn next_change(bitmap: &[u8], from: u64, end: u64, value: bool) -> u64 {
    let skip = if value { 0xFF } else { 0x00 };
    let mut i = from;
    while i < end {
        if i.is_multiple_of(8) && end - i >= 8 {
            let byte = usize::try_from(i / 8)
                .ok()
                .and_then(|b| bitmap.get(b))
                .copied()
                .unwrap_or(0);
            if byte == skip {
                i += 8;
                continue;
            }
        }
        if bit(bitmap, i) != value {
            return i;
        }
        i += 1;
    }
    end
}

/// ORs bits `[from, from + len)` into `bitmap`.
fn set_range(bitmap: &mut [u8], from: u64, len: u64) {
    let mut i = from;
    let end = from + len;
    while i < end {
        let Some(b) = usize::try_from(i / 8).ok().and_then(|b| bitmap.get_mut(b)) else {
            return;
        };
        if i.is_multiple_of(8) && end - i >= 8 {
            *b = 0xFF;
            i += 8;
        } else {
            *b |= 1 << (i % 8);
            i += 1;
        }
    }
}

/// What [`BitmapXfer::next_packet`] wrote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BitmapChunk {
    /// P_BITMAP or P_COMPRESSED_BITMAP.
    pub command: Command,
    /// Payload bytes written at the start of the output buffer.
    pub len: usize,
    /// True when this packet completes the bitmap (nothing more to send).
    pub last: bool,
}

/// The transfer cursor (upstream's `bm_xfer_ctx`): how far the bitmap has been sent or received.
/// Both sides use the same header kind, so both agree on the words per plain packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BitmapXfer {
    total_bits: u64,
    bit_offset: u64,
    word_offset: u64,
    header: HeaderKind,
    complete: bool,
}

impl BitmapXfer {
    /// A transfer of `total_bits` bits (one per 4 KiB) framed with `header`.
    pub fn new(total_bits: u64, header: HeaderKind) -> Self {
        BitmapXfer {
            total_bits,
            bit_offset: 0,
            word_offset: 0,
            header,
            complete: false,
        }
    }

    /// Bits in the bitmap.
    pub fn total_bits(&self) -> u64 {
        self.total_bits
    }

    /// Bits sent or received so far.
    pub fn bit_offset(&self) -> u64 {
        self.bit_offset
    }

    /// True once the packet covering the last bit went out or came in.
    pub fn is_complete(&self) -> bool {
        self.complete
    }

    /// Bytes the bitmap slice must have: whole 64-bit words.
    pub fn bitmap_bytes(&self) -> usize {
        usize::try_from(self.words() * 8).unwrap_or(usize::MAX)
    }

    fn words(&self) -> u64 {
        self.total_bits.div_ceil(64)
    }

    fn max_payload(&self) -> usize {
        MAX_PACKET - self.header.size()
    }

    fn plain_words(&self) -> u64 {
        ((self.max_payload() / 8) as u64).min(self.words().saturating_sub(self.word_offset))
    }

    fn advance_to(&mut self, bit: u64) {
        self.bit_offset = bit;
        self.word_offset = bit / 64;
        self.complete = bit >= self.total_bits;
    }

    fn advance_words(&mut self, words: u64) {
        self.word_offset += words;
        self.bit_offset = self.word_offset.saturating_mul(64).min(self.total_bits);
        self.complete = self.bit_offset >= self.total_bits;
    }

    /// Writes the next packet's payload into `out`: with `use_rle`, a compressed chunk if the code
    /// is smaller than the bits it covers, otherwise plain words (DRBD's choice per packet).
    /// `None` once complete. `out` needs room for one full packet payload (4096 − header bytes)
    /// or at least for the words left.
    pub fn next_packet(
        &mut self,
        bitmap: &[u8],
        use_rle: bool,
        out: &mut [u8],
    ) -> Result<Option<BitmapChunk>, Error> {
        if self.complete {
            return Ok(None);
        }
        if use_rle && self.bit_offset < self.total_bits {
            let cap = out.len().min(self.max_payload());
            if let Some(len) = self.rle_chunk(bitmap, out.get_mut(..cap).unwrap_or(&mut [])) {
                return Ok(Some(BitmapChunk {
                    command: Command::CompressedBitmap,
                    len,
                    last: self.complete,
                }));
            }
        }
        let words = self.plain_words();
        let len = (words * 8) as usize;
        room(out, len)?;
        let start = usize::try_from(self.word_offset.saturating_mul(8)).unwrap_or(usize::MAX);
        for (i, b) in out.iter_mut().take(len).enumerate() {
            *b = bitmap.get(start.saturating_add(i)).copied().unwrap_or(0);
        }
        self.advance_words(words);
        Ok(Some(BitmapChunk {
            command: Command::Bitmap,
            len,
            last: self.complete,
        }))
    }

    /// One RLE chunk from the current bit; `None` (cursor unchanged) when not worth it.
    fn rle_chunk(&mut self, bitmap: &[u8], out: &mut [u8]) -> Option<usize> {
        let (head, code) = out.split_first_mut()?;
        let mut w = BitWriter::new(code);
        let first_set = bit(bitmap, self.bit_offset);
        let mut value = first_set;
        let mut at = self.bit_offset;
        while at < self.total_bits {
            let next = next_change(bitmap, at, self.total_bits, value);
            let Some((c, n)) = vli::encode(next - at) else {
                break;
            };
            if !w.put(c, n) {
                break;
            }
            at = next;
            value = !value;
        }
        let len = w.bytes();
        // DRBD sends plain words when the code is not smaller than the bits it covers.
        if len == 0 || at - self.bit_offset < (len as u64) * 8 {
            return None;
        }
        let pad = ((8 - w.bits() % 8) % 8) as u8;
        *head = CompressedRepr {
            first_set,
            pad_bits: pad,
            code: &[],
        }
        .encoding();
        self.advance_to(at);
        Some(1 + len)
    }

    /// Merges one received bitmap packet into `bitmap` (OR); returns true when the bitmap is
    /// complete. Plain packets must carry exactly the words expected.
    pub fn receive(
        &mut self,
        command: Command,
        payload: &[u8],
        bitmap: &mut [u8],
    ) -> Result<bool, Error> {
        if self.complete {
            return Err(bitmap_err(BitmapError::AlreadyComplete, 0));
        }
        room(
            bitmap,
            usize::try_from(self.total_bits.div_ceil(8)).unwrap_or(usize::MAX),
        )?;
        match command {
            Command::Bitmap => {
                let words = self.plain_words();
                if payload.len() as u64 != words * 8 {
                    return Err(bitmap_err(BitmapError::PlainLength, 0));
                }
                let start =
                    usize::try_from(self.word_offset.saturating_mul(8)).unwrap_or(usize::MAX);
                for (i, &b) in payload.iter().enumerate() {
                    if let Some(d) = bitmap.get_mut(start.saturating_add(i)) {
                        *d |= b;
                    }
                }
                self.advance_words(words);
            }
            Command::CompressedBitmap => {
                let repr = CompressedRepr::parse(payload)?;
                let mut at = self.bit_offset;
                let mut runs = repr.runs();
                while let Some(run) = runs.next() {
                    let (set, len) = run?;
                    let end = at.checked_add(len).filter(|&e| e <= self.total_bits);
                    let Some(end) = end else {
                        return Err(bitmap_err(BitmapError::RunPastEnd, runs.reader.pos()));
                    };
                    if set {
                        set_range(bitmap, at, len);
                    }
                    at = end;
                }
                self.advance_to(at);
            }
            command => return Err(Error::WrongBody { command }),
        }
        Ok(self.complete)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec;
    use std::vec::Vec;

    /// Runs and code bytes from the upstream encoder (oracles/drbd/test_vli.py).
    const STREAM_RUNS: [u64; 8] = [100, 16, 400, 1, 1, 2, 70000, 3];
    const STREAM_CODE: [u8; 10] = [0xdf, 0xcc, 0xfd, 0xe7, 0x0b, 0x80, 0x7f, 0x3f, 0xf0, 0x20];

    fn bitmap_from_runs(first_set: bool, runs: &[u64]) -> (Vec<u8>, u64) {
        let total: u64 = runs.iter().sum();
        let mut bm = vec![0u8; total.div_ceil(64) as usize * 8];
        let (mut at, mut set) = (0, first_set);
        for &r in runs {
            if set {
                set_range(&mut bm, at, r);
            }
            at += r;
            set = !set;
        }
        (bm, total)
    }

    #[test]
    fn upstream_stream_vector() {
        let mut out = [0u8; 16];
        let n = encode_runs(false, &STREAM_RUNS, &mut out).unwrap();
        assert_eq!(out[0], 0x02);
        assert_eq!(&out[1..n], &STREAM_CODE);
        let repr = CompressedRepr::parse(&out[..n]).unwrap();
        let runs: Vec<u64> = repr.runs().map(|r| r.unwrap().1).collect();
        assert_eq!(runs, STREAM_RUNS);

        // The scanner finds the same runs in the bitmap they describe.
        let (bm, total) = bitmap_from_runs(false, &STREAM_RUNS);
        let mut x = BitmapXfer::new(total, HeaderKind::H100);
        let mut buf = [0u8; 4080];
        let c = x.next_packet(&bm, true, &mut buf).unwrap().unwrap();
        assert_eq!(
            c,
            BitmapChunk {
                command: Command::CompressedBitmap,
                len: 11,
                last: true
            }
        );
        assert_eq!(&buf[..11], &out[..11]);
        assert_eq!(x.next_packet(&bm, true, &mut buf), Ok(None));

        // drbdwire.rle_bitmap(True, [5, 3]): first run set.
        let n = encode_runs(true, &[5, 3], &mut out).unwrap();
        let r = CompressedRepr::parse(&out[..n]).unwrap();
        assert!(r.first_set);
        assert_eq!(
            r.runs().map(Result::unwrap).collect::<Vec<_>>(),
            [(true, 5), (false, 3)]
        );
    }

    #[test]
    fn bad_compressed_payloads() {
        assert!(CompressedRepr::parse(&[]).is_err());
        assert_eq!(
            CompressedRepr::parse(&[0x01, 0]),
            Err(bitmap_err(BitmapError::UnknownEncoding, 0))
        );
        assert_eq!(
            CompressedRepr::parse(&[0x12]),
            Err(bitmap_err(BitmapError::BadPad, 0))
        );
        // 0xFF prefix wants 64 bits; only 8 present.
        let r = CompressedRepr::parse(&[0x02, 0xFF]).unwrap();
        assert_eq!(
            r.runs().next(),
            Some(Err(bitmap_err(BitmapError::CutCodeword, 0)))
        );
        let mut x = BitmapXfer::new(4, HeaderKind::H80);
        let mut bm = [0u8; 8];
        // runs 1 (clear), 4 (set): past the 4-bit bitmap.
        let mut code = [0u8; 4];
        let n = encode_runs(false, &[1, 4], &mut code).unwrap();
        assert!(matches!(
            x.receive(Command::CompressedBitmap, &code[..n], &mut bm),
            Err(Error::Bitmap {
                reason: BitmapError::RunPastEnd,
                ..
            })
        ));
    }

    #[test]
    fn plain_packets_and_fallback() {
        // Random-looking bits do not compress: every packet is plain, 510 words with h100.
        let total = 64 * 1200 - 5;
        let mut bm = vec![0u8; 1200 * 8];
        let mut s = 0x1234_5678u32;
        for b in bm.iter_mut() {
            s = s.wrapping_mul(1_103_515_245).wrapping_add(12345);
            *b = (s >> 16) as u8;
        }
        let last = bm.len() - 1;
        bm[last] &= 0x07;
        let mut tx = BitmapXfer::new(total, HeaderKind::H100);
        let mut rx = BitmapXfer::new(total, HeaderKind::H100);
        let mut got = vec![0u8; bm.len()];
        let mut buf = [0u8; 4080];
        let mut sizes = Vec::new();
        while let Some(c) = tx.next_packet(&bm, true, &mut buf).unwrap() {
            assert_eq!(c.command, Command::Bitmap);
            sizes.push(c.len);
            assert_eq!(rx.receive(c.command, &buf[..c.len], &mut got), Ok(c.last));
        }
        assert_eq!(sizes, [4080, 4080, 180 * 8]);
        assert_eq!(got, bm);
        assert!(rx.is_complete());
        assert_eq!(
            rx.receive(Command::Bitmap, &[], &mut got),
            Err(bitmap_err(BitmapError::AlreadyComplete, 0))
        );
        let mut rx = BitmapXfer::new(total, HeaderKind::H100);
        assert_eq!(
            rx.receive(Command::Bitmap, &buf[..8], &mut got),
            Err(bitmap_err(BitmapError::PlainLength, 0))
        );
    }

    #[test]
    fn empty_bitmap_is_one_empty_plain_packet() {
        let mut tx = BitmapXfer::new(0, HeaderKind::H80);
        let mut buf = [0u8; 8];
        assert_eq!(
            tx.next_packet(&[], true, &mut buf),
            Ok(Some(BitmapChunk {
                command: Command::Bitmap,
                len: 0,
                last: true
            }))
        );
        let mut rx = BitmapXfer::new(0, HeaderKind::H80);
        assert_eq!(rx.receive(Command::Bitmap, &[], &mut []), Ok(true));
    }

    fn transfer(bm: &[u8], total: u64, header: HeaderKind, out_len: usize) -> Vec<u8> {
        let mut tx = BitmapXfer::new(total, header);
        let mut rx = BitmapXfer::new(total, header);
        let mut got = vec![0u8; tx.bitmap_bytes()];
        let mut buf = vec![0u8; out_len];
        let mut packets = 0;
        while let Some(c) = tx.next_packet(bm, true, &mut buf).unwrap() {
            assert!(c.len + header.size() <= MAX_PACKET);
            assert_eq!(rx.receive(c.command, &buf[..c.len], &mut got), Ok(c.last));
            packets += 1;
            assert!(packets < 100_000);
        }
        assert!(rx.is_complete() && tx.is_complete());
        got
    }

    proptest::proptest! {
        #[test]
        fn any_bitmap_crosses_intact(
            runs in proptest::collection::vec(1u64..3000, 0..60),
            first_set: bool,
            tail in 0u64..64,
            h100: bool,
            out_len in 70usize..4096,
        ) {
            let mut runs = runs;
            runs.push(tail + 1);
            let (bm, total) = bitmap_from_runs(first_set, &runs);
            let header = if h100 { HeaderKind::H100 } else { HeaderKind::H80 };
            // Plain packets need a full payload; a short buffer only limits the RLE chunks.
            let out = out_len.max(MAX_PACKET - header.size());
            proptest::prop_assert_eq!(transfer(&bm, total, header, out), bm.clone());
            let mut small = vec![0u8; out_len];
            let mut tx = BitmapXfer::new(total, header);
            // With a short buffer, chunks end early but still only cover whole runs.
            if let Ok(Some(c)) = tx.next_packet(&bm, true, &mut small) {
                proptest::prop_assert!(c.len <= out_len);
            }
        }
    }
}
