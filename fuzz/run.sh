#!/usr/bin/env bash
# Fuzzes every target for a while (default 60 s each) from seeds made by the
# encoders. Needs a nightly toolchain and cargo-fuzz:
#   rustup toolchain install nightly && cargo install cargo-fuzz
# Usage: fuzz/run.sh [seconds-per-target]
set -euo pipefail
cd "$(dirname "$0")"
seconds="${1:-60}"
cargo +nightly run --quiet --bin seeds
for target in request_frame record_batch recovery_scan compaction sasl_exchange tls_handshake; do
    echo "== $target: ${seconds}s"
    cargo +nightly fuzz run "$target" "corpus/$target" -- -max_total_time="$seconds" -rss_limit_mb=2048 -max_len=1048576
done
# Crashes found are kept as regression inputs under fuzz/regressions/<target>/
# and replayed by `cargo test --release` (tests/fuzz_regressions.rs).
