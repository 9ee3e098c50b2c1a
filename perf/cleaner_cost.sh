#!/usr/bin/env bash
# What cleaning costs: produce and end-to-end latency of an ordinary topic
# while the log cleaner rewrites a large compacted partition on the same
# broker. One broker (two shards, log.cleaner.backoff.ms=200). Before every
# run a compacted topic `big` (one partition, 16 MiB segments,
# min.cleanable.dirty.ratio=0.5) is filled with keyed updates (KEYS keys,
# 1 KiB values, stored as sent: uncompressed), so that nearly all of it is
# dirty. Then the fixed-rate workload (RATE records/s of 1 KiB to a
# 16-partition topic of its own, acks=all; produce, then e2e) runs in three
# sides, in A B C C B A order:
#
#   quiet       `big` holds BIG_BYTES, held back from the cleaner
#               (min.compaction.lag.ms of a day): the cleaner idles.
#   cleaning    `big` holds BIG_BYTES and is let go (the lag set to 0); the
#               workload starts once the pass has read 100 MB, and the pass
#               must outlast the measured window.
#   whole-pass  `big` holds WHOLE_BYTES and is let go 1 s into the measured
#               window, so that a whole pass, its start and its end, falls
#               inside the window.
#
# After every run `big` and the run's topic are deleted (which also stops a
# pass still running), so every run starts from the same state. Prints the
# median of each figure per side and the ratio to `quiet`; per run the
# worst second, the broker's disk reads in the window (from /proc/PID/io:
# sluice_dma_read_bytes_total counts fetch reads only) and the second at
# which a pass ended, if one did ("note:" where a run missed its design);
# the passes the broker logged ("log cleaned": bytes before, after and read,
# ms); and last, one pass over BIG_BYTES with no load (SOLO=0 skips it).
#
#   perf/cleaner_cost.sh
#   CLEANER_IO_MAX=50000000 SIDES="quiet cleaning" BIG_BYTES=2000000000 SOLO=0 perf/cleaner_cost.sh
#
# Settings (environment): ROUNDS (2), DURATION (15), WARMUP (5) seconds per
# run, RATE (20000) records/s, BIG_BYTES (10e9) and WHOLE_BYTES (1e9) of
# dirty log, KEYS (100000), FILL_RATE (300000) records/s, SIDES ("quiet
# cleaning whole-pass"), CLEANER_IO_MAX (the broker's
# log.cleaner.io.max.bytes.per.second; unset: unlimited, the default),
# DATA (/tmp/sluice-cleaner-cost) for the broker's data and results, PORT
# (19292), ADMIN_PORT (19844), SLUICE and PERF (binaries to run instead of
# building target/release/sluice and sluice-perf). Needs BIG_BYTES plus
# 3 GB free under DATA (it checks). About 30 minutes with ROUNDS=4.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-2}
DURATION=${DURATION:-15}
WARMUP=${WARMUP:-5}
RATE=${RATE:-20000}
BIG_BYTES=${BIG_BYTES:-10000000000}
WHOLE_BYTES=${WHOLE_BYTES:-1000000000}
KEYS=${KEYS:-100000}
FILL_RATE=${FILL_RATE:-300000}
SIDES=${SIDES:-quiet cleaning whole-pass}
CLEANER_IO_MAX=${CLEANER_IO_MAX:-}
SOLO=${SOLO:-1}
DATA=${DATA:-/tmp/sluice-cleaner-cost}
PORT=${PORT:-19292}
ADMIN_PORT=${ADMIN_PORT:-19844}
HOLD_MS=86400000
ADMIN=http://127.0.0.1:$ADMIN_PORT

if [ -z "${PERF:-}" ]; then
    cargo build --release -q -p sluice-perf --bin sluice-perf
    PERF=target/release/sluice-perf
fi
if [ -z "${SLUICE:-}" ]; then
    cargo build --release -q --bin sluice
    SLUICE=target/release/sluice
fi
rm -rf "$DATA"
mkdir -p "$DATA/results"
free=$(df -B1 --output=avail "$DATA" | tail -n 1)
if [ "$free" -lt $((BIG_BYTES + 3000000000)) ]; then
    echo "need $((BIG_BYTES + 3000000000)) bytes free under $DATA, have $free" >&2
    exit 1
fi

cat >"$DATA/server.properties" <<PROPS
listeners=PLAINTEXT://127.0.0.1:$PORT
admin.listeners=127.0.0.1:$ADMIN_PORT
shards=2
log.cleaner.backoff.ms=200
PROPS
[ -n "$CLEANER_IO_MAX" ] && echo "log.cleaner.io.max.bytes.per.second=$CLEANER_IO_MAX" >>"$DATA/server.properties"

for port in "$PORT" "$ADMIN_PORT"; do
    if (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null; then
        echo "port $port is in use: choose PORT and ADMIN_PORT" >&2
        exit 1
    fi
done
LOG=$DATA/broker.log
NO_COLOR=1 "$SLUICE" serve --config "$DATA/server.properties" --data-dir "$DATA/data" >"$LOG" 2>&1 &
BROKER=$!
trap 'kill $BROKER 2>/dev/null && wait $BROKER 2>/dev/null; true' EXIT
alive() { kill -0 "$BROKER" 2>/dev/null || { echo "the broker exited; see $LOG" >&2; tail -n 5 "$LOG" >&2; exit 1; }; }
for _ in $(seq 1 300); do
    alive
    curl -sf "$ADMIN/metrics" >/dev/null 2>&1 && (exec 3<>/dev/tcp/127.0.0.1/"$PORT") 2>/dev/null && break
    sleep 0.2
done
sleep 1
alive

# Bytes the broker has read from the disk (the cleaner reads with O_DIRECT;
# sluice_dma_read_bytes_total counts only reads for fetches).
read_bytes() { awk '/^read_bytes/ {print $2}' "/proc/$BROKER/io"; }
passes() { grep -c 'log cleaned.*/big-0 ' "$LOG" || true; }
alter_big() { # min.compaction.lag.ms
    curl -sf -X POST -H 'Content-Type: application/json' \
        -d "{\"set\":{\"min.compaction.lag.ms\":\"$1\"}}" "$ADMIN/api/topics/big/configs" >/dev/null
}
delete_topic() {
    curl -sf -X DELETE "$ADMIN/api/topics/$1" >/dev/null || true
}

# Creates `big`, held back from the cleaner, and fills it with keyed records
# (FILL_RATE a second, about 1,043 bytes each on disk) until its partition
# holds $1 bytes.
fill_big() {
    local dir=$DATA/data/big-0 size seconds last=-1
    while true; do
        size=$(du -sb "$dir" 2>/dev/null | cut -f1) || size=0
        [ "$size" -lt "$1" ] || break
        alive
        [ "$size" -gt "$last" ] || { echo "filling big does not progress" >&2; exit 1; }
        last=$size
        seconds=$(( ($1 - size) / (FILL_RATE * 1043) ))
        "$PERF" --bootstrap "127.0.0.1:$PORT" --mode produce --topic big --partitions 1 --keys "$KEYS" \
            --rate "$FILL_RATE" --producers 2 --batch-size 1048576 --warmup 0 --duration $((seconds > 0 ? seconds : 1)) \
            --topic-config cleanup.policy=compact --topic-config segment.bytes=16777216 \
            --topic-config min.cleanable.dirty.ratio=0.5 --topic-config min.compaction.lag.ms=$HOLD_MS >/dev/null
    done
}

# Deletes the run's topics and waits until `big` is gone from the disk.
reset() { # topic
    delete_topic "$1"
    delete_topic big
    for _ in $(seq 1 300); do
        [ -d "$DATA/data/big-0" ] || break
        sleep 0.2
    done
    sync
    sleep 3
}

run() { # side mode round
    local side=$1 mode=$2 round=$3 topic="lat-$2-$1-$3" bytes=$BIG_BYTES window_start=$WARMUP
    [ "$side" = whole-pass ] && bytes=$WHOLE_BYTES
    [ "$mode" = e2e ] && window_start=$((WARMUP + 1)) # e2e starts its consumer a second first
    alive
    fill_big "$bytes"
    local size
    size=$(du -sb "$DATA/data/big-0" | cut -f1)
    sleep 3
    local before_passes before_read triggered=""
    before_passes=$(passes)
    if [ "$side" = cleaning ]; then
        alter_big 0
        triggered=$(date +%s.%N)
        # Until the cleaner has read 100 MB: the pass is under way.
        before_read=$(read_bytes)
        for _ in $(seq 1 100); do
            [ $(($(read_bytes) - before_read)) -gt 100000000 ] && break
            sleep 0.1
        done
    fi
    "$PERF" --bootstrap "127.0.0.1:$PORT" --mode "$mode" --topic "$topic" --partitions 16 --rate "$RATE" \
        --duration "$DURATION" --warmup "$WARMUP" --label "$side" \
        --json "$DATA/results/$mode-$side-$round.json" >"$DATA/results/$mode-$side-$round.txt" &
    local load=$!
    sleep "$window_start"
    local read0 read1 t0 t1 ended
    read0=$(read_bytes)
    t0=$(date +%s.%N)
    if [ "$side" = whole-pass ]; then
        sleep 1
        alter_big 0
        triggered=$(date +%s.%N)
        sleep $((DURATION - 1))
    else
        sleep "$DURATION"
    fi
    read1=$(read_bytes)
    t1=$(date +%s.%N)
    ended=$(($(passes) - before_passes))
    wait "$load"
    {
        echo "side=$side mode=$mode round=$round big_bytes=$size"
        echo "window_read_mb_per_s=$(python3 -c "print(round(($read1 - $read0) / ($t1 - $t0) / 1e6))")"
        echo "passes_ended_in_window=$ended triggered=${triggered:-none} window=$t0,$t1"
    } >"$DATA/results/$mode-$side-$round.meta"
    case $side in
        cleaning) [ "$ended" -eq 0 ] || echo "  note: the pass ended inside the window (BIG_BYTES too small for this disk)" ;;
        whole-pass) [ "$ended" -ge 1 ] || echo "  note: the pass did not end inside the window (WHOLE_BYTES too large for this disk)" ;;
    esac
    reset "$topic"
}

for round in $(seq 1 "$ROUNDS"); do
    order=$SIDES
    [ $((round % 2)) -eq 0 ] && order=$(echo "$SIDES" | tr ' ' '\n' | tac | tr '\n' ' ')
    for side in $order; do
        for mode in produce e2e; do
            echo "round $round: $side $mode"
            run "$side" "$mode" "$round"
        done
    done
done

if [ "$SOLO" = 1 ]; then
    echo "one pass over $BIG_BYTES bytes, no load"
    fill_big "$BIG_BYTES"
    sleep 3
    before_passes=$(passes)
    alter_big 0
    for _ in $(seq 1 3000); do
        [ "$(passes)" -gt "$before_passes" ] && break
        sleep 0.2
    done
    grep 'log cleaned.*/big-0 ' "$LOG" | tail -n 1 >"$DATA/results/solo-pass.txt"
    reset none
fi

grep -h 'log cleaning failed' "$LOG" && echo "(the cleaner failed: see $LOG)"
curl -sf "$ADMIN/metrics" | grep -E '^sluice_cleaner_(passes|failures)_total' || true

python3 - "$DATA/results" "$LOG" "$SIDES" <<'PY'
import datetime, json, pathlib, re, statistics, sys
results, log, sides = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2]), sys.argv[3].split()
figures = [("records_per_sec", "records/s"), ("p50_ms", "p50 ms"), ("p99_ms", "p99 ms"), ("p99.9_ms", "p99.9 ms"),
           ("max_ms", "max ms"), ("errors", "errors")]
# (end time, fields) of each pass over big-0 the broker logged
passes = []
for line in log.read_text().splitlines():
    if "log cleaned" in line and "/big-0 " in line:
        at = datetime.datetime.fromisoformat(line.split()[0].replace("Z", "+00:00")).timestamp()
        passes.append((at, dict(re.findall(r"(\w+)=(\S+)", line))))
def meta(f):
    return dict(kv.split("=", 1) for kv in f.with_suffix(".meta").read_text().split())
for mode, title in (("produce", "fixed-rate produce, acks=all"), ("e2e", "fixed-rate end to end")):
    runs = {side: sorted(results.glob(f"{mode}-{side}-*.json")) for side in sides}
    if not runs.get("quiet"):
        continue
    loaded = {side: [json.loads(f.read_text()) for f in files] for side, files in runs.items()}
    print(f"## {title}: median of {len(loaded['quiet'])} runs each")
    others = [s for s in sides if s != "quiet"]
    print("| figure | " + " | ".join(sides) + " | " + " | ".join(f"{s}/quiet" for s in others) + " |")
    print("|---|" + "---:|" * (len(sides) + len(others)))
    for key, name in figures:
        med = {s: statistics.median(r[key] for r in loaded[s]) for s in sides}
        ratios = [f"{med[s] / med['quiet']:.2f}" if med["quiet"] else "" for s in others]
        print(f"| {name} | " + " | ".join(f"{med[s]:,.2f}" for s in sides) + " | " + " | ".join(ratios) + " |")
    print()
    for side in sides:
        for f in runs[side]:
            m, r = meta(f), json.loads(f.read_text())
            worst = max(r["timeline_latency_ms"], key=lambda p: p[2], default=[0, 0, 0, 0])
            start, end = (float(t) for t in m["window"].split(","))
            ended = [f"{t - start:.1f}" for t, _ in passes if start <= t <= end]
            if side == "whole-pass" and not ended:
                ended_note = "no pass ended in the window: its stall is not in these figures"
            elif side == "cleaning" and ended:
                ended_note = "a pass ended in the window"
            else:
                ended_note = ""
            print(f"  {f.stem}: p99 {r['p99_ms']:.2f} ms, max {r['max_ms']:.2f} ms; worst second {worst[0]} "
                  f"(p99 {worst[2]:.2f} ms); disk reads {m['window_read_mb_per_s']} MB/s; "
                  f"big {int(m['big_bytes']) / 1e9:.1f} GB; "
                  + (f"a pass ended at second {', '.join(ended)}" if ended else "no pass ended")
                  + (f" (note: {ended_note})" if ended_note else ""))
    print()
print("## cleaning passes of big-0 (broker log)")
print("| bytes before | after | read | seconds | read MB/s | log MB/s |")
print("|---:|---:|---:|---:|---:|---:|")
for _, v in passes:
    before, after, read, ms = (int(v[k]) for k in ("before", "after", "read", "ms"))
    print(f"| {before / 1e9:.2f} GB | {after / 1e6:.0f} MB | {read / 1e9:.2f} GB | {ms / 1000:.1f} | "
          f"{read / ms / 1e3:.0f} | {before / ms / 1e3:.0f} |")
solo = results / "solo-pass.txt"
if solo.exists() and solo.read_text().strip():
    print(f"(the last row is the pass with no load)")
PY
