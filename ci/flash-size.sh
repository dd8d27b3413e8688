#!/bin/sh
# Flash cost of keelson-core's config module on a Cortex-M4F (thumbv7em-none-eabihf), built with
# opt-level "s", LTO, one codegen unit, panic = abort (see ci/flash-size/).
#
# Builds the probe image twice, without and with its `config` feature, and prints the section
# sizes of both and their difference: the config module's flash cost is the difference of
# .text + .rodata + .data (.data is stored in flash too); .bss is RAM only.
#
#   ci/flash-size.sh             sizes and difference
#   ci/flash-size.sh --symbols   also the 25 largest symbols of the image with the config module
set -eu

here=$(cd "$(dirname "$0")" && pwd)
crate="$here/flash-size"
target=thumbv7em-none-eabihf
elf="$crate/target/$target/release/keelson-flash-size"
symbols=0
[ "${1:-}" = "--symbols" ] && symbols=1

# llvm-size: on PATH, else the one rustup's llvm-tools component installs.
find_tool() {
    if command -v "$1" >/dev/null 2>&1; then
        command -v "$1"
        return
    fi
    sysroot=$(rustc --print sysroot)
    for t in "$sysroot"/lib/rustlib/*/bin/"$1"; do
        [ -x "$t" ] && { echo "$t"; return; }
    done
    echo "error: $1 not found (apt-get install llvm, or rustup component add llvm-tools)" >&2
    exit 1
}
size_tool=$(find_tool llvm-size)

if ! rustup target list --installed 2>/dev/null | grep -qx "$target"; then
    echo "error: target $target is not installed (rustup target add $target)" >&2
    exit 1
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

build() {
    # $1: output name; the rest: extra cargo arguments.
    out=$1
    shift
    cargo build --manifest-path "$crate/Cargo.toml" --release --target "$target" --quiet "$@"
    cp "$elf" "$tmp/$out"
}
build without
build with --features config

# Prints "text rodata data bss" for an image.
sections() {
    "$size_tool" -A "$1" | awk '
        $1 == ".text"   { t = $2 }
        $1 == ".rodata" { r = $2 }
        $1 == ".data"   { d = $2 }
        $1 == ".bss"    { b = $2 }
        END { printf "%d %d %d %d\n", t, r, d, b }'
}

set -- $(sections "$tmp/without")
t0=$1 r0=$2 d0=$3 b0=$4
set -- $(sections "$tmp/with")
t1=$1 r1=$2 d1=$3 b1=$4

echo "keelson-core config module, $target, opt-level=\"s\", lto, codegen-units=1, panic=abort"
echo "($("$size_tool" --version | grep -i version | head -n 1 | sed 's/^ *//'))"
echo
printf '%-16s %8s %8s %8s %8s %10s\n' variant .text .rodata .data .bss flash
printf '%-16s %8d %8d %8d %8d %10d\n' "without config" "$t0" "$r0" "$d0" "$b0" $((t0 + r0 + d0))
printf '%-16s %8d %8d %8d %8d %10d\n' "with config" "$t1" "$r1" "$d1" "$b1" $((t1 + r1 + d1))
printf '%-16s %8d %8d %8d %8d %10d\n' "difference" $((t1 - t0)) $((r1 - r0)) $((d1 - d0)) $((b1 - b0)) \
    $((t1 + r1 + d1 - t0 - r0 - d0))
echo
echo "config module flash (text+rodata+data difference): $((t1 + r1 + d1 - t0 - r0 - d0)) bytes"

if [ "$symbols" = 1 ]; then
    nm_tool=$(find_tool llvm-nm)
    echo
    echo "largest symbols with config (bytes, type, name):"
    "$nm_tool" --size-sort --radix=d -S -C "$tmp/with" | tail -n 25 | sort -k2,2nr |
        awk '{ s = $2 + 0; $1 = ""; $2 = ""; sub(/^  */, ""); printf "%8d %s\n", s, $0 }'
fi
