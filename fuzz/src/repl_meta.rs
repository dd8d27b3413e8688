//! DRBD v08 meta data (`keelson_core::repl::meta`) under arbitrary inputs, two ways (first
//! byte, bit 0):
//!
//! - **superblock** (0): the rest, zero-padded to 4 KiB, as a superblock. Shorter than 4 KiB
//!   unpadded, it must be `Truncated`. Whatever parses re-emits and re-parses to the same value;
//!   the view's getters agree with the `Repr`; the layout's areas tile the meta area; the
//!   attach / record-state / clean-shutdown steps keep the block parseable; and one byte
//!   flipped before the extension (chosen by the input) is always refused.
//! - **geometry** (1): a device size, AL stripes and an optional area size build a [`Layout`];
//!   if they do, the areas tile the area, the bitmap covers the device, and the rest of the
//!   input as a bitmap comes back out of `emit_bitmap_range` for an input-chosen bit range as
//!   whole blocks: the covering bytes copied, the rest zero.

use keelson_core::repl::conn::{DiskState, Role};
use keelson_core::repl::meta::{Layout, MetaError, Superblock, SuperblockView, BITMAP_BLOCK};

use crate::input::Input;

/// Entry point of the `repl_meta` target.
pub fn check_meta(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode & 1 == 0 {
        superblock(mode, rest);
    } else {
        geometry(rest);
    }
}

fn tiles(l: &Layout) {
    assert_eq!(l.total_len(), u64::from(l.md_size_sect()) * 512);
    assert_eq!(l.al_offset(), 4096);
    assert_eq!(l.al_offset() + l.al_len(), l.bitmap_offset());
    assert!(l.bitmap_offset() + l.bitmap_blocks() * BITMAP_BLOCK as u64 <= l.total_len());
    assert!(l.max_size_sectors() >= l.size_sectors(), "{l:?}");
    assert_eq!(
        l.blocks_for_bits(0, l.bits()).map(|r| r.end),
        Ok(l.bitmap_blocks())
    );
}

fn superblock(mode: u8, rest: &[u8]) {
    if rest.len() < 4096 {
        assert!(matches!(
            Superblock::parse(rest),
            Err(MetaError::Truncated { .. })
        ));
    }
    let mut block = [0u8; 4096];
    let n = rest.len().min(4096);
    block[..n].copy_from_slice(&rest[..n]);
    let Ok(sb) = Superblock::parse(&block) else {
        return;
    };
    let v = SuperblockView::new_checked(&block[..]).expect("parse and view agree");
    assert_eq!(
        (v.uuid(0), v.uuid(1), v.uuid(2), v.uuid(3)),
        (sb.current, sb.bitmap, sb.history[0], sb.history[1])
    );
    assert_eq!(v.flags(), sb.flags);
    assert_eq!(v.node_id(), sb.node_id);
    assert_eq!(v.la_size_sect(), sb.layout.size_sectors());
    tiles(&sb.layout);

    let mut out = [0u8; 4096];
    assert_eq!(sb.emit(&mut out), Ok(4096));
    assert_eq!(Superblock::parse(&out), Ok(sb));

    // A resource's life on this superblock: every step still emits a block that parses back.
    let mut life = sb;
    let a = life.attach();
    assert_eq!(a.apply_al, !sb.is_clean());
    assert!(!life.is_clean());
    let disk = DiskState::ALL[usize::from(mode >> 1) % DiskState::ALL.len()];
    let peer = DiskState::ALL[usize::from(mode >> 4) % DiskState::ALL.len()];
    let role = if mode & 2 == 0 {
        Role::Primary
    } else {
        Role::Secondary
    };
    life.record_state(role, disk, peer, mode & 4 != 0);
    let at_attach = life.disk_state_at_attach();
    assert!(at_attach >= DiskState::Inconsistent);
    life.shutdown_clean();
    assert!(life.is_clean());
    life.emit(&mut out).unwrap();
    assert_eq!(Superblock::parse(&out), Ok(life));

    // The CRC covers every byte before the extension.
    let at = usize::from(rest.first().copied().unwrap_or(0)) % 96;
    let mut torn = out;
    torn[at] ^= 1 << (mode >> 5);
    assert!(Superblock::parse(&torn).is_err(), "flip at byte {at} went unnoticed");
}

fn geometry(rest: &[u8]) {
    let mut inp = Input(rest);
    let (Some(size), Some(stripes), Some(per), Some(md)) =
        (inp.i64(), inp.u8(), inp.u8(), inp.u16())
    else {
        return;
    };
    // Sizes up to 2^40 sectors (512 TiB) keep the bitmap in reach of a fuzz run.
    let size = (size as u64) & ((1 << 40) - 1);
    let md = (md != 0).then(|| u32::from(md) << 4);
    let Ok(l) = Layout::with_geometry(size, u32::from(stripes), u32::from(per), md) else {
        return;
    };
    tiles(&l);
    let sb = Superblock::new(l, 1237, None);
    let mut out = [0u8; 4096];
    sb.emit(&mut out).unwrap();
    assert_eq!(Superblock::parse(&out), Ok(sb));

    // Small devices only: the bitmap is the rest of the input.
    if l.bitmap_len() > 1 << 16 {
        return;
    }
    let (Some(a), Some(b)) = (inp.u16(), inp.u16()) else {
        return;
    };
    let mut bitmap = vec![0u8; l.bitmap_len() as usize];
    let src = inp.bytes(bitmap.len());
    bitmap[..src.len()].copy_from_slice(src);
    let (start, end) = (u64::from(a.min(b)) * 7, u64::from(a.max(b)) * 7);
    let mut buf = vec![0xA5u8; 20 * BITMAP_BLOCK];
    match l.emit_bitmap_range(&bitmap, start, end, &mut buf) {
        Ok(w) => {
            assert_eq!(w.len as u64, (w.blocks.end - w.blocks.start) * 4096);
            assert_eq!(w.offset, l.block_offset(w.blocks.start));
            if start < end {
                assert!(w.blocks.start * 32768 <= start && end <= w.blocks.end * 32768);
            }
            for (i, &byte) in buf[..w.len].iter().enumerate() {
                let at = w.blocks.start as usize * BITMAP_BLOCK + i;
                assert_eq!(byte, bitmap.get(at).copied().unwrap_or(0), "byte {at}");
            }
            assert!(buf[w.len..].iter().all(|&x| x == 0xA5));
        }
        Err(MetaError::OutOfRange { end_bit, bits }) => assert!(end_bit > bits),
        Err(MetaError::Truncated { need, .. }) => assert!(need > buf.len() as u64),
        Err(e) => panic!("unexpected {e}"),
    }
}
