#!/usr/bin/env bash
# Fuzz smoke test: run every cargo-fuzz target for FUZZ_SECONDS (default 20) seconds, starting from
# the committed seeds in fuzz/seeds/<target>/ plus whatever fuzz/corpus/<target>/ has collected.
# Fails if any target crashes, hangs or runs out of memory; the input lands in
# fuzz/artifacts/<target>/ and cargo-fuzz prints how to reproduce it. Run from anywhere.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${FUZZ_SECONDS:-20}
# cargo-fuzz passes nightly-only flags (-Zsanitizer=address); stable accepts them with this.
export RUSTC_BOOTSTRAP=1

# Build every target first, so the time limit below is spent fuzzing rather than compiling.
cargo fuzz build

failed=()
for target in $(cargo fuzz list); do
	# Given any corpus directory, cargo-fuzz no longer adds fuzz/corpus/<target> itself, and
	# libFuzzer writes new inputs into the first directory only. So the writable corpus goes first
	# and the committed seeds second, where they are read but never changed.
	corpus=fuzz/corpus/$target
	mkdir -p "$corpus"
	dict=()
	if [[ -f fuzz/dicts/$target.dict ]]; then
		dict=("-dict=fuzz/dicts/$target.dict")
	fi
	printf '\n==> fuzz %s (%s s)\n' "$target" "$seconds"
	# -timeout: inputs are a few KiB, so any single run over 10 s is a hang, not a slow input.
	if ! cargo fuzz run "$target" "$corpus" "fuzz/seeds/$target" -- \
		-max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 "${dict[@]}"; then
		failed+=("$target")
	fi
done

if ((${#failed[@]} > 0)); then
	printf '\nfuzz smoke FAILED: %s (inputs in fuzz/artifacts/)\n' "${failed[*]}" >&2
	exit 1
fi
printf '\nfuzz smoke passed: every target ran %s s without a finding\n' "$seconds"
