#!/usr/bin/env bash
# Installs everything the tests need on a fresh machine and runs every test:
# Rust format, lint, unit and property tests; then the Python package, built from
# source into .venv, with pytest (API, hypothesis, pynetdicom interop) and stubtest.
# Exits non-zero on any failure, and when a suite runs no tests at all.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "Peers: dcmtk from Debian (the interop tests need it; pynetdicom comes with .[test])"
bash scripts/install-peers.sh

step "Rust: format and lint"
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings

step "Rust: unit and property tests"
log=$(mktemp)
cargo test --workspace --locked 2>&1 | tee "$log"
passed=$(grep -Eo 'test result: ok\. [0-9]+ passed' "$log" | awk '{s += $4} END {print s + 0}')
rm -f "$log"
if [ "$passed" -eq 0 ]; then
    echo "error: no Rust test ran" >&2
    exit 1
fi
echo "Rust tests passed: $passed"

step "Rust: coverage-guided fuzzing of the PDU, state machine, DIMSE and Part 10 decoders (60 s each; fails on any crash, panic, hang or oversized allocation)"
bash scripts/fuzz.sh 60

step "Python: build and install securepdu with its test dependencies into .venv"
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet ".[test]"

step "Python: pytest"
# The "ci" Hypothesis profile: 1000 examples per property, derandomized, so a
# run is reproducible (tests/conftest.py). pytest exits 5 when it collects no
# tests; set -e turns that into a failure.
HYPOTHESIS_PROFILE="${HYPOTHESIS_PROFILE:-ci}" .venv/bin/python -m pytest -p no:cacheprovider -s "$@"

step "Python: stubs match the compiled module; the package type-checks"
.venv/bin/python -m mypy.stubtest securepdu._core
.venv/bin/python -m mypy --strict python/securepdu

step "Benchmarks: the quick mode runs every stack and security mode once (it checks that every object arrives, nothing about time)"
bench_results=$(mktemp -d)
.venv/bin/python benches/run.py --quick --results "$bench_results"

step "The paper's experiment, quick mode: network namespaces, IPv4/IPv6/mixed x none/TLS/IPsec/WireGuard/gateway pair (needs root; nothing about time)"
bash scripts/install-paper.sh
.venv/bin/python -m benches.paper --quick --results "$bench_results"
rm -rf "$bench_results"

echo
echo "All tests passed."
