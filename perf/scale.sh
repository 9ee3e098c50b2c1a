#!/usr/bin/env bash
# Scale, Apache Kafka 4.1 and Sluice side by side on this machine:
#
#  1. memory per idle partition: a fresh broker's resident memory before and
#     after a 10,000-partition topic is created, divided by 10,000;
#  2. max-rate produce (1 KiB records, acks=all, keyed so that every partition
#     is written) to 16 and to 1,000 partitions (beside the idle ones): the
#     1,000-partition rate as a share of the 16-partition rate, per broker;
#  3. 10,000 partitions: keyed records produced across all of them at max rate,
#     then read back from the beginning by one consumer of every partition;
#     errors counted on both sides;
#  4. 1,000 client connections (perf/connections.py): each greets the broker
#     (ApiVersions, Metadata) and stays open; then all ask Metadata at once;
#  5. start-up with the 10,000 partitions after a clean stop and after kill -9:
#     milliseconds from starting the broker until the last record of the last
#     partition can be read (kcat).
#
# Results go to RESULTS_DIR/scale-*.json and scale-*.txt, the table to
# RESULTS_DIR/scale-report.md (perf/scale_report.py).
#
# Usage: perf/scale.sh
# Env: DATA (scratch dir, default /tmp/sluice-scale), RESULTS_DIR (default
#      perf/results), DURATION and WARMUP (seconds per sluice-perf run,
#      default 20 and 5), CONNECTIONS (default 1000), BIG (partitions, default 10000).
# Needs: Java 17, Maven, python3, kcat; RLIMIT_NOFILE of at least 3 x BIG + 1000 for
# Kafka's start-up (below it Kafka's start-up is not timed, and the report says so).
set -euo pipefail
cd "$(dirname "$0")/.."
DATA="${DATA:-/tmp/sluice-scale}"
RESULTS_DIR="${RESULTS_DIR:-perf/results}"
DURATION="${DURATION:-20}"
WARMUP="${WARMUP:-5}"
CONNECTIONS="${CONNECTIONS:-1000}"
BIG="${BIG:-10000}"

source perf/prepare.sh
prepare_bench
ulimit -n "$(ulimit -Hn)"
SLUICE_FLAGS=()
# Start-up with 10,000 partitions may take minutes.
START_TRIES=3000
# shellcheck source=perf/brokers.sh
. perf/brokers.sh
OUT="$DATA/results"
# A failed step leaves no broker running.
trap 'kill "${BROKER_PID:-}" 2>/dev/null || true' EXIT

# kafka-topics against the broker under test; its output only if it fails.
topics() {
    local out
    out=$(java -cp "$CP" org.apache.kafka.tools.TopicCommand --bootstrap-server "127.0.0.1:$PORT" "$@" 2>&1) ||
        { echo "kafka-topics $*: $out" >&2; exit 1; }
}

rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$BROKER_PID/status"; }

perf_run() { # broker topic mode partitions extra...
    local broker=$1 topic=$2 mode=$3 partitions=$4
    shift 4
    "$PERF" --bootstrap "127.0.0.1:$PORT" --mode "$mode" --label "$broker" --topic "$topic" \
        --partitions "$partitions" --record-size 1024 --acks all --rate 0 --linger-ms 5 --batch-size 131072 \
        --duration "$DURATION" --warmup "$WARMUP" --broker-pid "$BROKER_PID" \
        --json "$OUT/scale-$topic-$mode-$broker.json" "$@" >/dev/null
}

# Starts BROKER on its data; READY_MS: milliseconds from then until the last
# record of partition BIG-1 of `big` can be read. (Not in a subshell: it sets BROKER_PID.)
readable_after_start() { # broker
    local started
    started=$(date +%s%N)
    SETTLE_S=0 start "$1" no
    until kcat -b "127.0.0.1:$PORT" -C -t big -p $((BIG - 1)) -o -1 -c 1 -e -q -m 5 2>/dev/null | grep -q .; do
        [ $(($(date +%s%N) - started)) -lt 900000000000 ] || { echo "$1: not readable within 15 minutes" >&2; exit 1; }
        sleep 0.05
    done
    READY_MS=$((($(date +%s%N) - started) / 1000000))
}

for broker in kafka sluice; do
    # Idle partitions first, on a fresh broker: memory freed by earlier runs
    # would otherwise be reused and hide what partitions take.
    start "$broker" yes
    sleep 10
    before=$(rss_kib)
    # Kafka's controller takes at most 10,000 records in one operation (a
    # topic of 10,000 partitions is 10,001): half at creation, the rest added.
    topics --create --topic big --partitions $((BIG / 2)) --replication-factor 1
    topics --alter --topic big --partitions "$BIG"
    sleep 10
    after=$(rss_kib)
    echo "$before $after $BIG" >"$OUT/scale-idle-memory-$broker.txt"
    perf_run "$broker" p16 produce 16 --keys 16000
    perf_run "$broker" p1000 produce 1000 --keys 100000
    perf_run "$broker" big produce "$BIG" --keys $((BIG * 10))
    perf_run "$broker" big consume "$BIG"
    python3 perf/connections.py "127.0.0.1:$PORT" "$CONNECTIONS" "$BROKER_PID" >"$OUT/scale-connections-$broker.json"
    stop
    # Kafka holds about three files open per partition while it loads its
    # logs; below that limit it never becomes readable, so it is not timed.
    if [ "$broker" = kafka ] && [ "$(ulimit -n)" -lt $((3 * BIG + 1000)) ]; then
        echo "kafka: start-up not timed: it needs about $((3 * BIG + 1000)) open files, this machine allows $(ulimit -n)" \
            | tee "$OUT/scale-startup-$broker-skipped.txt" >&2
    else
        readable_after_start "$broker"
        clean=$READY_MS
        kill -9 "$BROKER_PID"
        wait "$BROKER_PID" 2>/dev/null || true
        readable_after_start "$broker"
        echo "$clean $READY_MS" >"$OUT/scale-startup-$broker.txt"
        stop
    fi
    rm -rf "$DATA/kafka" "$DATA/sluice"
done

python3 perf/scale_report.py "$OUT" | tee "$OUT/scale-report.md"
mkdir -p "$RESULTS_DIR"
cp "$OUT"/scale-* "$RESULTS_DIR"/
echo "results in $RESULTS_DIR (scale-*)"
