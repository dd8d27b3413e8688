//! `gf_dm_hashfn`, the Davies-Meyer name hash cluster/dht places files with (translators.md
//! §5.3): TEA rounds over little-endian words, 6 per full 16-byte block and 10 for the final
//! padded block, with the tail bytes sign-extended as x86's signed `char` does.

const DELTA: u32 = 0x9E37_79B9;

fn rounds(k: usize, a: [u32; 4], h: &mut [u32; 2]) {
    let (mut b0, mut b1, mut sum) = (h[0], h[1], 0u32);
    for _ in 0..k {
        sum = sum.wrapping_add(DELTA);
        b0 = b0.wrapping_add(
            ((b1 << 4).wrapping_add(a[0])) ^ b1.wrapping_add(sum) ^ ((b1 >> 5).wrapping_add(a[1])),
        );
        b1 = b1.wrapping_add(
            ((b0 << 4).wrapping_add(a[2])) ^ b0.wrapping_add(sum) ^ ((b0 >> 5).wrapping_add(a[3])),
        );
    }
    h[0] = h[0].wrapping_add(b0);
    h[1] = h[1].wrapping_add(b1);
}

fn word(b: &[u8]) -> u32 {
    let mut w = [0; 4];
    w.copy_from_slice(b.get(..4).unwrap_or(&[0; 4]));
    u32::from_le_bytes(w)
}

/// The DHT hash of `name` (a basename, without NUL).
pub fn dm_hash(name: &[u8]) -> u32 {
    let n = name.len() as u32;
    let mut pad = n | n << 8;
    pad |= pad << 16;
    let mut h = [0x9464_A485, 0x542E_1A94];
    let mut blocks = name.chunks_exact(16);
    for b in &mut blocks {
        rounds(
            6,
            [word(b), word(&b[4..]), word(&b[8..]), word(&b[12..])],
            &mut h,
        );
    }
    let rest = blocks.remainder();
    let full = rest.len() / 4;
    let mut a = [pad; 4];
    for (j, w) in rest.chunks_exact(4).enumerate() {
        a[j] = word(w);
    }
    if let Some(slot) = a.get_mut(full) {
        for &c in &rest[full * 4..] {
            // The byte as a signed char, sign-extended to 32 bits.
            *slot = *slot << 8 | (c as i8 as i32 as u32);
        }
    }
    rounds(10, a, &mut h);
    h[0] ^ h[1]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// translators.md §5.3, equal to libglusterfs's `gf_dm_hashfn` (and dm_hash.py).
    #[test]
    fn upstream_vectors() {
        let v: &[(&[u8], u32)] = &[
            (b"", 0x884774a2),
            (b"a", 0x3a17e4e6),
            (b"abc", 0xba8bd29a),
            (b"file1", 0xa787fa82),
            (b"file.txt", 0xc7426d64),
            (b"hello.txt", 0xe68d61cc),
            (b"0123456789abcdef", 0x6ecb5ada),
            (
                b"a-much-longer-file-name-to-cover-two-blocks.dat",
                0x100cbb5e,
            ),
            (b"caf\xc3\xa9", 0x9e089967),
            (b"\xc3\xa9", 0x65cfcaa1),
            (b"/", 0x8619bd58),
            (b"/dir1", 0xc8cb193d),
            (b"/dir2", 0x33b864dd),
        ];
        for &(name, h) in v {
            assert_eq!(dm_hash(name), h, "{:?}", core::str::from_utf8(name));
        }
    }
}
