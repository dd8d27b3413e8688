//! SuperFastHash (Paul Hsieh's hash) as GlusterFS computes it: cluster/replicate's default
//! `read-hash-mode 1` hashes the 16 raw gfid bytes with it to spread reads over the children
//! (translators.md §5.4). GlusterFS's quirks are kept: a length of at most 1 hashes to 1, the
//! initial hash is the length, 16-bit reads are little-endian, and the tails of 1 and 3 bytes
//! use the last byte as a signed C `char`.

fn le16(b: &[u8]) -> u32 {
    match b {
        [a, c, ..] => u32::from(u16::from_le_bytes([*a, *c])),
        _ => 0,
    }
}

/// The byte as x86's signed `char`, widened as C widens it.
fn signed(b: u8) -> u32 {
    i32::from(b as i8) as u32
}

/// `SuperFastHash(data, len)`.
pub fn super_fast_hash(data: &[u8]) -> u32 {
    if data.len() <= 1 {
        return 1;
    }
    let mut h = data.len() as u32;
    let mut blocks = data.chunks_exact(4);
    for b in &mut blocks {
        h = h.wrapping_add(le16(b));
        let tmp = (le16(b.get(2..).unwrap_or_default()) << 11) ^ h;
        h = (h << 16) ^ tmp;
        h = h.wrapping_add(h >> 11);
    }
    match blocks.remainder() {
        [a, b, c] => {
            h = h.wrapping_add(le16(&[*a, *b]));
            h ^= h << 16;
            h ^= signed(*c) << 18;
            h = h.wrapping_add(h >> 11);
        }
        [a, b] => {
            h = h.wrapping_add(le16(&[*a, *b]));
            h ^= h << 11;
            h = h.wrapping_add(h >> 17);
        }
        [a] => {
            h = h.wrapping_add(signed(*a));
            h ^= h << 10;
            h = h.wrapping_add(h >> 1);
        }
        _ => {}
    }
    h ^= h << 3;
    h = h.wrapping_add(h >> 5);
    h ^= h << 4;
    h = h.wrapping_add(h >> 17);
    h ^= h << 25;
    h = h.wrapping_add(h >> 6);
    h
}

#[cfg(test)]
mod tests {
    use super::super_fast_hash;

    /// `shared/oracles/gluster/sfh.py`'s vectors, each equal to libglusterfs.so.0's
    /// `SuperFastHash` (checked there through ctypes).
    #[test]
    fn matches_libglusterfs() {
        let gfid1 = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
        let gfid2 = [
            0x6d, 0xb0, 0x7e, 0xa0, 0xcc, 0xdf, 0x49, 0x3c, 0x9d, 0xa8, 0xaf, 0xe0, 0xad, 0x95,
            0x37, 0xb9,
        ];
        let cases: [(&[u8], u32); 12] = [
            (b"", 1),
            (b"a", 1),
            (b"abc", 0xd2be198a),
            (b"abcd", 0xdad8b8db),
            (b"hello", 0xb09dc87b),
            (b"\xff\xfe\xfd", 0x547a507e),
            (b"\x80", 1),
            (b"ab\x80", 0x81aa4bd5),
            (b"abcde\xf0", 0xa7286970),
            (b"abcd\x90", 0xa194383f),
            (&gfid1, 0xfe513317),
            (&gfid2, 0x2dc3b5ee),
        ];
        for (input, want) in cases {
            assert_eq!(super_fast_hash(input), want, "{input:02x?}");
        }
    }
}
