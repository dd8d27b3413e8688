#!/usr/bin/env bash
# The whole test job: formatting, lints, docs, host tests, the no_std builds for the firmware
# target, and a short run of every fuzz target. Run from anywhere; needs what .ci/run installs.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never

step() { printf '\n==> %s\n' "$*"; }

step "cargo fmt --check"
cargo fmt --all --check

step "cargo clippy (all targets, all features)"
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo clippy -p keelson-core --all-targets --no-default-features --locked -- -D warnings

step "cargo doc"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked

step "no_std builds for thumbv7em-none-eabihf (no default features)"
cargo build -p keelson-core --no-default-features --target thumbv7em-none-eabihf --locked
cargo build -p keelson-core --no-default-features --features serde,defmt --target thumbv7em-none-eabihf --locked
cargo build -p keelson-bare --target thumbv7em-none-eabihf --locked

step "cargo test"
cargo test --workspace --locked

if [ -x ci/fuzz-smoke.sh ]; then
	step "fuzz smoke (${FUZZ_SECONDS:-20} s per target)"
	ci/fuzz-smoke.sh
fi
