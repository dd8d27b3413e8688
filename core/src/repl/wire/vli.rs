//! The variable-length integer code of compressed bitmaps (replication.md §3.11) and the
//! LSB-first bit streams it is written to.
//!
//! A codeword is a prefix (read from the least significant bit) selecting one of ten levels, then
//! `value − base` in the level's data bits. Values are run lengths, so 0 has no code.

/// `(prefix bits, prefix value, data bits, smallest value)` per level, shortest first.
const LEVELS: [(u32, u64, u32, u64); 10] = [
    (1, 0x00, 1, 1),
    (2, 0x01, 1, 3),
    (3, 0x03, 2, 5),
    (4, 0x07, 3, 9),
    (5, 0x0F, 5, 17),
    (6, 0x1F, 8, 49),
    (8, 0x3F, 13, 305),
    (8, 0x7F, 21, 8497),
    (8, 0xBF, 34, 2_105_649),
    (8, 0xFF, 56, 17_181_974_833),
];

/// The largest value the code can carry.
pub const MAX: u64 = 17_181_974_833 + (1 << 56) - 1;

const fn low(bits: u32) -> u64 {
    if bits >= 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    }
}

/// The codeword for `n` and its length in bits; `None` for 0 and values above [`MAX`].
pub const fn encode(n: u64) -> Option<(u64, u32)> {
    let mut i = 0;
    while i < LEVELS.len() {
        let (pbits, prefix, dbits, base) = LEVELS[i];
        if n >= base && n - base <= low(dbits) {
            return Some((((n - base) << pbits) | prefix, pbits + dbits));
        }
        i += 1;
    }
    None
}

/// Decodes the codeword in the low bits of `word`: `(value, bits used)`. Every 64-bit word starts
/// with some codeword (the prefixes are complete), so this cannot fail; the caller checks that
/// the bits used were really in the stream.
pub const fn decode(word: u64) -> (u64, u32) {
    let mut i = 0;
    while i < LEVELS.len() {
        let (pbits, prefix, dbits, base) = LEVELS[i];
        if word & low(pbits) == prefix {
            return (((word >> pbits) & low(dbits)) + base, pbits + dbits);
        }
        i += 1;
    }
    // Unreachable: the ten prefixes cover every bit pattern (0, 01, 011, … 11111111).
    (0, 64)
}

/// Writes codewords LSB-first into a byte buffer (bit 0 of byte 0 first).
#[derive(Debug)]
pub struct BitWriter<'a> {
    buf: &'a mut [u8],
    bits: usize,
}

impl<'a> BitWriter<'a> {
    /// A writer over `buf`, which it zeroes.
    pub fn new(buf: &'a mut [u8]) -> Self {
        buf.fill(0);
        BitWriter { buf, bits: 0 }
    }

    /// Appends the low `n` bits of `v`; false (and nothing written) if they do not fit.
    pub fn put(&mut self, v: u64, n: u32) -> bool {
        let n = n as usize;
        if n > 64 || self.bits + n > self.buf.len() * 8 {
            return false;
        }
        let v = v & low(n as u32);
        for i in 0..n {
            if v >> i & 1 == 1 {
                let at = self.bits + i;
                if let Some(b) = self.buf.get_mut(at / 8) {
                    *b |= 1 << (at % 8);
                }
            }
        }
        self.bits += n;
        true
    }

    /// Bits written.
    pub fn bits(&self) -> usize {
        self.bits
    }

    /// Bytes touched (the last one possibly partial).
    pub fn bytes(&self) -> usize {
        self.bits.div_ceil(8)
    }
}

/// Reads an LSB-first bit stream of `end` bits.
#[derive(Clone, Debug)]
pub struct BitReader<'a> {
    buf: &'a [u8],
    pos: usize,
    end: usize,
}

impl<'a> BitReader<'a> {
    /// A reader over the first `end` bits of `buf` (clamped to its length).
    pub fn new(buf: &'a [u8], end: usize) -> Self {
        BitReader {
            buf,
            pos: 0,
            end: end.min(buf.len() * 8),
        }
    }

    /// Current bit position.
    pub fn pos(&self) -> usize {
        self.pos
    }

    /// Bits left.
    pub fn remaining(&self) -> usize {
        self.end - self.pos
    }

    /// The next 64 bits without consuming them; bits past the end read as zero.
    pub fn peek(&self) -> u64 {
        let mut v = 0u64;
        let first = self.pos / 8;
        let shift = self.pos % 8;
        for k in 0..9 {
            let b = u64::from(self.buf.get(first + k).copied().unwrap_or(0));
            let at = (k * 8) as i64 - shift as i64;
            if at < 0 {
                v |= b >> (-at);
            } else if at < 64 {
                v |= b << at;
            }
        }
        let left = self.remaining();
        if left < 64 {
            v &= low(left as u32);
        }
        v
    }

    /// Consumes `n` bits (at most what remains).
    pub fn skip(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.end);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `(value, bits, codeword)` from the upstream encoder (oracles/drbd/test_vli.py).
    const VECTORS: [(u64, u32, u64); 20] = [
        (1, 2, 0x0),
        (2, 2, 0x2),
        (3, 3, 0x1),
        (4, 3, 0x5),
        (5, 5, 0x3),
        (8, 5, 0x1B),
        (9, 7, 0x7),
        (16, 7, 0x77),
        (17, 10, 0xF),
        (48, 10, 0x3EF),
        (49, 14, 0x1F),
        (304, 14, 0x3FDF),
        (305, 21, 0x3F),
        (8496, 21, 0x1FFF3F),
        (8497, 29, 0x7F),
        (2105648, 29, 0x1FFFFF7F),
        (2105649, 42, 0xBF),
        (17181974832, 42, 0x3FFFFFFFFBF),
        (17181974833, 64, 0xFF),
        (72057611219902768, 64, 0xFFFFFFFFFFFFFFFF),
    ];

    #[test]
    fn upstream_vectors() {
        for (value, bits, code) in VECTORS {
            assert_eq!(encode(value), Some((code, bits)), "encode {value}");
            assert_eq!(decode(code), (value, bits), "decode {code:#x}");
        }
        assert_eq!(MAX, 72057611219902768);
        assert_eq!(encode(MAX + 1), None);
        assert_eq!(encode(0), None);
    }

    #[test]
    fn bit_streams() {
        let mut buf = [0xFFu8; 3];
        let mut w = BitWriter::new(&mut buf);
        assert!(w.put(0b101, 3) && w.put(0x3FF, 10) && !w.put(0xFFFF, 12));
        assert_eq!((w.bits(), w.bytes()), (13, 2));
        assert_eq!(buf, [0b1111_1101, 0b0001_1111, 0]);
        let mut r = BitReader::new(&buf, 13);
        assert_eq!(r.peek(), 0x1FFD);
        r.skip(3);
        assert_eq!((r.peek(), r.remaining()), (0x3FF, 10));
    }

    proptest::proptest! {
        #[test]
        fn codes_round_trip(n in 1u64..=MAX, junk: u64) {
            let (code, bits) = encode(n).unwrap();
            let word = if bits == 64 { code } else { code | (junk << bits) };
            proptest::prop_assert_eq!(decode(word), (n, bits));
        }
    }
}
