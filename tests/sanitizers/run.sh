#!/usr/bin/env bash
# Runs Sluice under AddressSanitizer and ThreadSanitizer (nightly Rust, std
# rebuilt with the sanitizer) and fails if either reports anything:
#
#   1. shard mesh start/join/stop cycles, 8 shards (tests/sanitizers/mesh_cycles);
#   2. broker starts and clean stops (a shard per CPU) with busy loops competing for every CPU;
#   3. the kill -9 loop, the group suite and the transaction suite, driven by
#      the usual (uninstrumented) test clients against the instrumented broker.
#
#   tests/sanitizers/run.sh [asan|tsan|all] [--before]
#
# --before builds against glommio without 0001-channel-mesh-peers-arc.patch,
# to show the start-up race the patch fixes (ThreadSanitizer reports it).
# Counts: MESH_CYCLES (2000), BROKER_STARTS (500), SUITES (1 to run step 3).
# Results of a full run are in tests/sanitizers/RESULTS.md.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"

which="${1:-all}"
before=no
[ "${2:-}" = "--before" ] && before=yes
MESH_CYCLES="${MESH_CYCLES:-2000}"
BROKER_STARTS="${BROKER_STARTS:-500}"
SUITES="${SUITES:-1}"
target=x86_64-unknown-linux-gnu

# What the builds need: nightly with the standard library's source.
rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
rustup component list --toolchain nightly --installed | grep -q '^rust-src' ||
    rustup component add rust-src --toolchain nightly

config_args=()
if [ $before = yes ]; then
    unpatched="$root/target/sanitizers/glommio-unpatched"
    rm -rf "$unpatched"; mkdir -p "$(dirname "$unpatched")"
    cp -a vendor/glommio "$unpatched"
    patch -s -R -p1 -d "$unpatched" <vendor/patches/glommio/0001-channel-mesh-peers-arc.patch
    config_args=(--config "patch.crates-io.glommio.path=\"$unpatched\"")
fi

hogs=()
stop_hogs() { for h in "${hogs[@]}"; do kill "$h" 2>/dev/null || true; done; hogs=(); }
trap stop_hogs EXIT

run_one() {
    local san="$1" flag="$2" opts_var="$3"
    local name="$san"; [ $before = yes ] && name="$san-before"
    local dir="$root/target/sanitizers/$name"
    local reports="$dir/reports"
    rm -rf "$reports"; mkdir -p "$reports"
    echo "== $name: building (nightly, -Zsanitizer=$flag, std rebuilt)"
    # Only the broker and the mesh loop: the tests' clients (librdkafka,
    # kafka-python, Java) stay uninstrumented and drive the instrumented broker.
    RUSTFLAGS="-Zsanitizer=$flag -Cforce-frame-pointers=yes" RUSTDOCFLAGS="-Zsanitizer=$flag" \
        cargo +nightly build "${config_args[@]}" -Zbuild-std --target $target --release \
        --target-dir "$dir/build" -p sluice -p shard-mesh-cycles --bin sluice --bin shard-mesh-cycles ||
        { echo "== $name: build failed"; return 1; }
    local bin="$dir/build/$target/release"
    local opts="log_path=$reports/report halt_on_error=0 exitcode=0"
    [ "$san" = asan ] && opts="$opts detect_leaks=0 abort_on_error=0"
    [ "$san" = tsan ] && opts="$opts second_deadlock_stack=1"
    export "$opts_var=$opts"

    echo "== $name: $MESH_CYCLES shard mesh cycles, 8 shards"
    local t0=$SECONDS
    local failed=0
    "$bin/shard-mesh-cycles" "$MESH_CYCLES" 8 || { echo "   shard-mesh-cycles exited with $?"; failed=1; }
    echo "   $((SECONDS - t0)) s, reports so far: $(ls "$reports" | wc -l)"

    echo "== $name: $BROKER_STARTS broker starts and stops under competing CPU load"
    t0=$SECONDS
    for _ in $(seq "$(nproc)"); do (while :; do :; done) & hogs+=($!); done
    local data="$dir/data"
    for i in $(seq "$BROKER_STARTS"); do
        rm -rf "$data"
        # Port 0: the broker picks a free port; it is up once every shard logged "listening".
        # The log is emptied first: the redirect below happens in the child, later.
        : >"$dir/broker.log"
        SLUICE_LOG=info "$bin/sluice" serve --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 --schema-registry-listen none --data-dir "$data" \
            --shards "$(nproc)" \
            >"$dir/broker.log" 2>&1 &
        local pid=$! up=no
        for _ in $(seq 600); do
            [ "$(grep -c 'listening' "$dir/broker.log")" -ge "$(nproc)" ] && { up=yes; break; }
            kill -0 $pid 2>/dev/null || break
            sleep 0.05
        done
        kill -TERM $pid 2>/dev/null || true
        local rc=0; wait $pid || rc=$?
        if [ $up != yes ] || [ $rc -ne 0 ]; then
            failed=$((failed + 1))
            echo "   start $i: listening=$up exit=$rc"; tail -n 5 "$dir/broker.log" | sed 's/^/     /'
        fi
    done
    stop_hogs
    echo "   $((SECONDS - t0)) s, failures so far: $failed, reports so far: $(ls "$reports" | wc -l)"

    if [ "$SUITES" = 1 ]; then
        echo "== $name: kill -9 loop, group suite, transaction suite against the instrumented broker"
        t0=$SECONDS
        SLUICE_BIN="$bin/sluice" cargo test --release --test integration -- restart:: groups:: transactions:: ||
            failed=$((failed + 1))
        echo "   $((SECONDS - t0)) s, reports so far: $(ls "$reports" | wc -l)"
    fi

    local n; n=$(ls "$reports" | wc -l)
    if [ "$n" -gt 0 ]; then
        echo "== $name: $n sanitizer report(s) in $reports; the first:"
        head -n 60 "$(ls -d "$reports"/* | head -n 1)"
    else
        echo "== $name: no sanitizer reports"
    fi
    unset "$opts_var"
    [ "$n" -eq 0 ] && [ "$failed" -eq 0 ]
}

status=0
case "$which" in
    asan) run_one asan address ASAN_OPTIONS || status=1 ;;
    tsan) run_one tsan thread TSAN_OPTIONS || status=1 ;;
    all)
        run_one asan address ASAN_OPTIONS || status=1
        run_one tsan thread TSAN_OPTIONS || status=1
        ;;
    *) echo "usage: $0 [asan|tsan|all] [--before]" >&2; exit 2 ;;
esac
exit $status
