//! Big-endian field access that cannot panic: views may wrap short buffers, so a read past the
//! end yields zero bytes and a write past the end is dropped (constructors check lengths first).

/// `N` bytes at `off`; missing bytes read as zero.
fn get<const N: usize>(buf: &[u8], off: usize) -> [u8; N] {
    let mut out = [0u8; N];
    if let Some(src) = buf.get(off..) {
        for (d, s) in out.iter_mut().zip(src) {
            *d = *s;
        }
    }
    out
}

/// Copies `bytes` to `off`; bytes beyond the buffer are dropped.
pub(crate) fn put(buf: &mut [u8], off: usize, bytes: &[u8]) {
    if let Some(dst) = buf.get_mut(off..) {
        for (d, s) in dst.iter_mut().zip(bytes) {
            *d = *s;
        }
    }
}

pub(crate) fn u16_at(buf: &[u8], off: usize) -> u16 {
    u16::from_be_bytes(get(buf, off))
}

pub(crate) fn u32_at(buf: &[u8], off: usize) -> u32 {
    u32::from_be_bytes(get(buf, off))
}

pub(crate) fn u64_at(buf: &[u8], off: usize) -> u64 {
    u64::from_be_bytes(get(buf, off))
}

/// `buf[from..from + len]`, clamped to the buffer.
pub(crate) fn slice(buf: &[u8], from: usize, len: usize) -> &[u8] {
    let end = from.saturating_add(len).min(buf.len());
    buf.get(from.min(end)..end).unwrap_or(&[])
}
