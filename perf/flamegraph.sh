#!/usr/bin/env bash
# Flame graphs of the Sluice broker (Linux perf with DWARF call graphs,
# rendered by inferno) under three loads from `sluice-perf` (librdkafka):
#
#  - consume: a 16-partition topic of PRODUCE_S seconds of max-rate produce
#    read from the beginning as fast as the consumer can (past the tail
#    cache, so disk reads, the batch cache and read-ahead);
#  - roundtrip: one 1 KiB record at a time, acks=all, produced and then
#    consumed (long poll) from a one-partition topic;
#  - produce: max-rate produce to 16 partitions, acks=all.
#
# Writes perf/flamegraph-<load>.svg and the folded stacks beside the raw
# data under DATA. Needs perf (linux-perf) and root or
# kernel.perf_event_paranoid <= 1; installs inferno with cargo if missing.
#
# Usage: perf/flamegraph.sh [consume|roundtrip|produce ...]   (default: consume roundtrip)
# Env: DATA (default /tmp/sluice-flamegraph), SECONDS_RECORDED (default 5),
#      PRODUCE_S (default 15), FREQUENCY (samples per second, default 499).
set -euo pipefail
cd "$(dirname "$0")/.."
DATA="${DATA:-/tmp/sluice-flamegraph}"
SECONDS_RECORDED="${SECONDS_RECORDED:-5}"
PRODUCE_S="${PRODUCE_S:-15}"
FREQUENCY="${FREQUENCY:-499}"
LOADS=("$@")
[ ${#LOADS[@]} -gt 0 ] || LOADS=(consume roundtrip)

command -v perf >/dev/null || { echo "perf is not installed (apt-get install linux-perf)" >&2; exit 1; }
command -v inferno-flamegraph >/dev/null || cargo install --locked inferno
cargo build --release -q -p sluice
cargo build --release -q -p sluice-perf
PERF=target/release/sluice-perf
rm -rf "$DATA" && mkdir -p "$DATA"
SLUICE_FLAGS=()
# shellcheck source=perf/brokers.sh
. perf/brokers.sh

load() { # mode topic partitions seconds extra...
    local mode=$1 topic=$2 partitions=$3 seconds=$4
    shift 4
    "$PERF" --bootstrap "127.0.0.1:$PORT" --mode "$mode" --topic "$topic" --partitions "$partitions" \
        --record-size 1024 --acks all --rate 0 --linger-ms 5 --batch-size 131072 --duration "$seconds" --warmup 1 \
        "$@" >"$DATA/$topic-$mode.txt"
}

# Records the broker for SECONDS_RECORDED seconds, starting 2 s into the
# load started in the background as LOAD_PID, and renders the flame graph.
record() { # name
    local name=$1
    sleep 2
    perf record -F "$FREQUENCY" --call-graph dwarf,16384 -p "$BROKER_PID" -o "$DATA/$name.perf" \
        -- sleep "$SECONDS_RECORDED" 2>/dev/null
    wait "$LOAD_PID"
    perf script -i "$DATA/$name.perf" 2>/dev/null | inferno-collapse-perf >"$DATA/$name.folded"
    inferno-flamegraph --title "Sluice: $name" <"$DATA/$name.folded" >"perf/flamegraph-$name.svg"
    echo "perf/flamegraph-$name.svg ($(wc -l <"$DATA/$name.folded") distinct stacks)"
}

for name in "${LOADS[@]}"; do
    start sluice yes
    case $name in
        consume)
            load produce consume 16 "$PRODUCE_S" --keys 16000
            load consume consume 16 $((SECONDS_RECORDED + 3)) &
            ;;
        roundtrip) load roundtrip roundtrip 1 $((SECONDS_RECORDED + 3)) & ;;
        produce) load produce produce 16 $((SECONDS_RECORDED + 3)) --keys 16000 & ;;
        *) echo "unknown load $name (consume, roundtrip or produce)" >&2; stop; exit 1 ;;
    esac
    LOAD_PID=$!
    record "$name"
    stop
done
