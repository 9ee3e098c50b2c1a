#!/usr/bin/env bash
# Compares two sluice binaries on this machine, in one run: the fixed-rate
# end-to-end and the max-rate produce workloads, alternating the binaries in
# A B B A order so that drift of a shared machine falls on both alike, and
# prints the median of each figure and the ratio B/A.
#
#   perf/before_after.sh BEFORE_BINARY AFTER_BINARY
#
# Settings (environment): ROUNDS (4), DURATION (15), WARMUP (5) seconds per
# run, DATA (/tmp/sluice-before-after) for the brokers' data and results.
set -euo pipefail
cd "$(dirname "$0")/.."

[ $# -eq 2 ] || { echo "usage: $0 BEFORE_BINARY AFTER_BINARY" >&2; exit 2; }
BEFORE=$(realpath "$1")
AFTER=$(realpath "$2")
ROUNDS=${ROUNDS:-4}
DURATION=${DURATION:-15}
WARMUP=${WARMUP:-5}
DATA=${DATA:-/tmp/sluice-before-after}
PORT=${PORT:-19092}

cargo build --release -q -p sluice-perf
PERF=target/release/sluice-perf
rm -rf "$DATA"
mkdir -p "$DATA/results"

wait_port() {
    for _ in $(seq 1 300); do
        (exec 3<>/dev/tcp/127.0.0.1/"$PORT") 2>/dev/null && { sleep 1; return 0; }
        sleep 0.2
    done
    echo "broker on port $PORT did not start" >&2
    exit 1
}

for round in $(seq 1 "$ROUNDS"); do
    order="before after"
    [ $((round % 2)) -eq 0 ] && order="after before"
    for side in $order; do
        bin=$BEFORE
        [ "$side" = after ] && bin=$AFTER
        # The previous run's data goes first, and its removal is finished before this one starts.
        rm -rf "$DATA/data"
        sync
        sleep 2
        "$bin" serve --listen 127.0.0.1:$PORT --data-dir "$DATA/data" >"$DATA/$side-$round.log" 2>&1 &
        pid=$!
        wait_port
        # End to end first: the max-rate run fills the disk the next one would share.
        for mode in e2e produce; do
            workload=perf/workloads/max-rate-16p-1k.conf
            [ "$mode" = e2e ] && workload=perf/workloads/fixed-rate-16p-1k.conf
            "$PERF" --workload "$workload" --bootstrap "127.0.0.1:$PORT" --mode "$mode" --label "$side" \
                --topic "$mode-$round" --duration "$DURATION" --warmup "$WARMUP" \
                --json "$DATA/results/$mode-$side-$round.json" >/dev/null
        done
        kill "$pid"
        wait "$pid" || true
    done
done

python3 - "$DATA/results" <<'PY'
import json, pathlib, statistics, sys
results = pathlib.Path(sys.argv[1])
figures = [("records_per_sec", "records/s"), ("p50_ms", "p50 ms"), ("p99_ms", "p99 ms"), ("p99.9_ms", "p99.9 ms"),
           ("max_ms", "max ms"), ("errors", "errors")]
for mode, title in (("produce", "max-rate-16p-1k produce (acks=all)"), ("e2e", "fixed-rate-16p-1k end to end (20,000 records/s)")):
    runs = {side: [json.loads(f.read_text()) for f in sorted(results.glob(f"{mode}-{side}-*.json"))]
            for side in ("before", "after")}
    print(f"## {title}: median of {len(runs['before'])} runs each")
    print("| figure | before | after | after/before |")
    print("|---|---:|---:|---:|")
    for key, name in figures:
        b = statistics.median(r[key] for r in runs["before"])
        a = statistics.median(r[key] for r in runs["after"])
        ratio = f"{a / b:.2f}" if b else ""
        print(f"| {name} | {b:,.2f} | {a:,.2f} | {ratio} |")
    print()
PY
