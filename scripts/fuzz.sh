#!/usr/bin/env bash
# Coverage-guided fuzzing of securepdu-core (fuzz/, cargo-fuzz + libFuzzer + ASan).
#
#   scripts/fuzz.sh [SECONDS]     # each target runs SECONDS (default 60)
#
# Installs cargo-fuzz if missing, builds every target, runs each on a temporary
# copy of its committed seed corpus (fuzz/corpus/<target>/ is never grown), and
# exits non-zero on any crash, panic, hang (one input > 10 s), out-of-memory or
# single allocation over 64 MiB (a declared length trusted for allocation).
# Crash inputs land in fuzz/artifacts/<target>/; reproduce one with
#   RUSTC_BOOTSTRAP=1 cargo fuzz run <target> fuzz/artifacts/<target>/<file>
# Works on a stable-only toolchain: RUSTC_BOOTSTRAP=1 unlocks the -Z flags
# (sanitizers, coverage) that cargo-fuzz passes to rustc.
set -euo pipefail
cd "$(dirname "$0")/.."

duration=${1:-60}
targets=(pdu association dimse part10)
cargo_fuzz_version=0.13.2
export RUSTC_BOOTSTRAP=1
export PATH="$HOME/.cargo/bin:$PATH"

step() { printf '\n==> %s\n' "$*"; }

if ! command -v cargo >/dev/null; then
    step "Installing a stable Rust toolchain (no cargo found)"
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs |
        sh -s -- -y --profile minimal --default-toolchain stable
fi
if ! cargo fuzz --version 2>/dev/null | grep -q "$cargo_fuzz_version"; then
    step "Installing cargo-fuzz $cargo_fuzz_version"
    cargo install cargo-fuzz --version "$cargo_fuzz_version" --locked
fi

step "Building fuzz targets (AddressSanitizer, debug assertions, overflow checks)"
# Fails if fuzz/Cargo.lock would have to change.
cargo fetch --locked --manifest-path fuzz/Cargo.toml
(cd fuzz && cargo fuzz build)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failed=()
summary=()
for t in "${targets[@]}"; do
    step "Fuzzing $t for ${duration}s"
    mkdir -p "$work/$t"
    cp fuzz/corpus/"$t"/* "$work/$t"/
    log="$work/$t.log"
    status=0
    # -malloc_limit_mb below -rss_limit_mb: one oversized allocation is reported
    # as such (with its stack), not as a vague RSS overflow.
    (cd fuzz && cargo fuzz run "$t" "$work/$t" -- \
        -max_total_time="$duration" -timeout=10 -rss_limit_mb=2048 \
        -malloc_limit_mb=64 -print_final_stats=1 -close_fd_mask=1) \
        >"$log" 2>&1 || status=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    if [ "$status" -ne 0 ] || [ -z "$execs" ]; then
        failed+=("$t")
        summary+=("$(printf '%-12s FAILED (exit %s)' "$t" "$status")")
        grep -E -A25 'panicked|ERROR: libFuzzer|==ERROR|SUMMARY|Test unit written' "$log" | head -60 >&2 ||
            tail -40 "$log" >&2
    else
        summary+=("$(printf '%-12s %12s executions in %ss' "$t" "$execs" "$duration")")
        grep -E "^#[0-9]+[[:space:]]+DONE" "$log" || true
    fi
done

step "Fuzzing summary"
printf '%s\n' "${summary[@]}"
if [ "${#failed[@]}" -ne 0 ]; then
    echo "error: fuzz targets failed: ${failed[*]} (inputs in fuzz/artifacts/)" >&2
    exit 1
fi
echo "No crash, panic, hang or oversized allocation."
