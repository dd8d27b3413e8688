//! Flash-size probe for keelson-core's config tree on `thumbv7em-none-eabihf`.
//!
//! With feature `config`, [`entry`] parses a small LVM-style text into fixed storage in both
//! duplicate modes, writes it back and runs a few lookups; without it, the same entry point only
//! touches the input. The difference of the two images' `text + rodata + data` is the config
//! module's flash cost. `black_box` keeps every result alive. Never meant to run.

#![no_std]
#![no_main]

use core::hint::black_box;

/// The input both variants reference, so its bytes cancel out of the difference.
static INPUT: &[u8] = b"contents = \"Text Format Volume Group\"\nversion = 1\n\
vg {\n\tid = \"iK2ZWe-qhFW-CEPy-YngF-b51y-BMWX-aSCrUZ\"\n\tseqno = 42\n\
\tlogical_volumes {\n\t\tlv0 {\n\t\t\tid = \"oL8g5u-bbbP-Ia84-yRnB-UbHo-WC8F-JowoRo\"\n\
\t\t\tstatus = [\"READ\", \"WRITE\", \"VISIBLE\"]\n\t\t\tflags = []\n\
\t\t\tcreation_time = 1700000000\t# 2023-11-14\n\t\t\tratio = 0.125\n\
\t\t\tsegment1 {\n\t\t\t\tstart_extent = 100\n\t\t\t\ttype = \"striped\"\n\
\t\t\t\tstripes = [\n\t\t\t\t\t\"pv0\", 0\n\t\t\t\t]\n\t\t\t}\n\t\t}\n\t}\n}\n";

#[cfg(feature = "config")]
fn exercise(input: &'static [u8]) {
    use keelson_core::config::{Fixed, FixedTree, Lookup, ParseOptions, Tree};

    for opts in [ParseOptions::MERGE, ParseOptions::KEEP] {
        let mut tree: FixedTree<'static, 48, 48, 64> = Tree::new(Fixed::new());
        let parsed = tree.parse(input, black_box(opts));
        black_box(parsed.is_ok());
        let view = tree.view();
        let mut out = [0u8; 1024];
        black_box(view.write_to_slice(&mut out).map_or(0, |text| text.len()));
        black_box(view.find_str("vg/id", b"-"));
        black_box(view.find_int64("vg/seqno", -1));
        black_box(view.find_float("vg/logical_volumes/lv0/ratio", -1.0));
        black_box(view.find_bool("vg/logical_volumes/lv0/flags", false));
        black_box(
            view.find_node("vg/logical_volumes/lv0/segment1")
                .map(|n| n.id()),
        );
    }
}

/// The image's entry point.
#[no_mangle]
pub extern "C" fn entry() -> ! {
    let input = black_box(INPUT);
    #[cfg(feature = "config")]
    exercise(input);
    #[cfg(not(feature = "config"))]
    black_box(input.len());
    loop {
        black_box(());
    }
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    loop {
        black_box(());
    }
}
