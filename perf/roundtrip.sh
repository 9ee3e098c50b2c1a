#!/usr/bin/env bash
# One record's round trip, Apache Kafka 4.1 and Sluice side by side on this
# machine: `sluice-perf --mode roundtrip` (librdkafka) sends one 1 KiB record
# with acks=all to a one-partition topic, waits until its consumer (long-polling
# that partition) has it, and only then sends the next.
#
# Configurations, ROUNDS rounds each, alternating:
#  - kafka: Kafka's default (acknowledged from the page cache, fsynced later);
#  - sluice: Sluice's default (fdatasync before the acknowledgement);
#  - sluice-write-caching: the topic sets flush.ms=100 (acknowledged once
#    written, synced within 100 ms): Kafka's terms.
# After each Sluice run its /metrics are kept, and the report breaks the round
# trip into the broker's stages (request queue, handler, response send, one
# cross-shard hop, the O_DIRECT write, the fdatasync) from the last round's.
#
# Usage: perf/roundtrip.sh
# Env: DATA (default /tmp/sluice-roundtrip), RESULTS_DIR (default perf/results),
#      ROUNDS (default 3), DURATION and WARMUP (seconds per run, default 15 and 3).
set -euo pipefail
cd "$(dirname "$0")/.."
DATA="${DATA:-/tmp/sluice-roundtrip}"
RESULTS_DIR="${RESULTS_DIR:-perf/results}"
ROUNDS="${ROUNDS:-3}"
DURATION="${DURATION:-15}"
WARMUP="${WARMUP:-3}"

cargo build --release -q -p sluice
cargo build --release -q -p sluice-perf
(cd perf/kafka && mvn -q dependency:copy-dependencies)
CP="perf/kafka/target/dependency/*"
rm -rf "$DATA" && mkdir -p "$DATA/results"
SLUICE_FLAGS=()
KAFKA_NUM_PARTITIONS=1
# shellcheck source=perf/brokers.sh
. perf/brokers.sh

probe() { # name round topic-config...
    local name=$1 round=$2
    shift 2
    local extra=()
    for c in "$@"; do extra+=(--topic-config "$c"); done
    target/release/sluice-perf --bootstrap "127.0.0.1:$PORT" --mode roundtrip --topic roundtrip --partitions 1 \
        --duration "$DURATION" --warmup "$WARMUP" --label "$name" --json "$DATA/results/roundtrip-$name-$round.json" \
        "${extra[@]}" >/dev/null
}

for round in $(seq 1 "$ROUNDS"); do
    start kafka yes
    probe kafka "$round"
    stop
    for config in sluice sluice-write-caching; do
        start sluice yes
        if [ "$config" = sluice ]; then probe "$config" "$round"; else probe "$config" "$round" flush.ms=100; fi
        curl -s "127.0.0.1:$SLUICE_ADMIN_PORT/metrics" >"$DATA/results/roundtrip-$config-$round.metrics"
        stop
    done
    rm -rf "$DATA/kafka" "$DATA/sluice"
done

python3 - "$DATA/results" "$ROUNDS" <<'PY' | tee "$DATA/results/roundtrip-report.md"
import json, re, statistics, sys
results, rounds = sys.argv[1], int(sys.argv[2])
configs = ("kafka", "sluice", "sluice-write-caching")

def run(config, r):
    try:
        return json.load(open(f"{results}/roundtrip-{config}-{r}.json"))
    except (OSError, ValueError):
        return None

print("| round trip (ms) | round | " + " | ".join(configs) + " |")
print("|---|---|" + "---|" * len(configs))
medians = {}
for p in ("p50", "p99", "p99.9"):
    for r in range(1, rounds + 1):
        row = [run(c, r) for c in configs]
        cells = [f"{x[p + '_ms']:.3f}" if x else "failed" for x in row]
        print(f"| {p} | {r} | " + " | ".join(cells) + " |")
    for c in configs:
        values = [x[p + "_ms"] for x in (run(c, r) for r in range(1, rounds + 1)) if x]
        medians[(c, p)] = statistics.median(values) if values else None
    cells = [f"**{medians[(c, p)]:.3f}**" if medians[(c, p)] else "-" for c in configs]
    print(f"| {p} | median | " + " | ".join(cells) + " |")
print()
for c in configs[1:]:
    ratios = [f"{p} {medians[(c, p)] / medians[('kafka', p)]:.2f}×" for p in ("p50", "p99", "p99.9")
              if medians[(c, p)] and medians[("kafka", p)]]
    print(f"- {c} / kafka: {', '.join(ratios)}")
print()

def histograms(path):
    """name -> (buckets [(le, cumulative count)], sum, count), shards added up."""
    out = {}
    for line in open(path):
        m = re.match(r'^(sluice_\w+?)_(bucket|sum|count)\{([^}]*)\} (\S+)$', line.strip())
        if not m:
            continue
        name, kind, labels, value = m.group(1), m.group(2), m.group(3), float(m.group(4))
        request = re.search(r'request="(\w+)"', labels)
        key = name + (f"[{request.group(1)}]" if request else "")
        h = out.setdefault(key, {"buckets": {}, "sum": 0.0, "count": 0.0})
        if kind == "bucket":
            le = re.search(r'le="([^"]+)"', labels).group(1)
            h["buckets"][le] = h["buckets"].get(le, 0.0) + value
        else:
            h[kind] += value
    return out

def quantile(h, q):
    """Linear interpolation within the bucket holding quantile q, in µs."""
    finite = sorted((float(le), c) for le, c in h["buckets"].items() if le != "+Inf")
    total = h["count"]
    if not total:
        return None
    previous_le, previous_count = 0.0, 0.0
    for le, count in finite:
        if count >= q * total:
            share = (q * total - previous_count) / max(count - previous_count, 1e-9)
            return (previous_le + share * (le - previous_le)) * 1e6
        previous_le, previous_count = le, count
    return finite[-1][0] * 1e6 if finite else None

stages = [
    ("Produce: queued before its handler", "sluice_request_queue_time_seconds[Produce]"),
    ("Produce: handler (hop to the owner, append, write, fdatasync, hop back)", "sluice_request_local_time_seconds[Produce]"),
    ("Produce: response queued", "sluice_response_queue_time_seconds[Produce]"),
    ("Produce: response written to the socket", "sluice_response_send_time_seconds[Produce]"),
    ("O_DIRECT write (one per run of appends)", "sluice_log_write_time_seconds"),
    ("fdatasync", "sluice_log_flush_time_seconds"),
    ("one cross-shard hop (calls and answers)", "sluice_mesh_hop_time_seconds"),
    ("Fetch: handler (long poll until the record came)", "sluice_request_local_time_seconds[Fetch]"),
    ("Fetch: response written to the socket", "sluice_response_send_time_seconds[Fetch]"),
]
for config in configs[1:]:
    path = f"{results}/roundtrip-{config}-{rounds}.metrics"
    try:
        hs = histograms(path)
    except OSError:
        continue
    print(f"### Where the time goes: {config} (round {rounds}, from the broker's histograms)")
    print("| stage | count | mean µs | p50 µs | p99 µs |")
    print("|---|---:|---:|---:|---:|")
    for label, key in stages:
        h = hs.get(key)
        if not h or not h["count"]:
            print(f"| {label} | 0 | | | |")
            continue
        mean = h["sum"] / h["count"] * 1e6
        p50, p99 = quantile(h, 0.5), quantile(h, 0.99)
        print(f"| {label} | {h['count']:,.0f} | {mean:,.0f} | {p50:,.0f} | {p99:,.0f} |")
    print()
PY
mkdir -p "$RESULTS_DIR"
cp "$DATA"/results/roundtrip-* "$RESULTS_DIR"/
