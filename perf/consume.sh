#!/usr/bin/env bash
# Consume throughput, Apache Kafka 4.1 and Sluice side by side on this machine,
# with Kafka's own tools (acks=all, 1 KiB records, 16 partitions):
#
#  - hot:  ConsumerPerformance reads back what ProducerPerformance just wrote;
#  - cold: the broker is restarted and the page cache dropped first (as root),
#          so neither broker holds the data in memory.
#
# ROUNDS rounds alternate the brokers; the report gives each figure per round
# and the median ratio. Results go to RESULTS_DIR/consume-*.txt and
# RESULTS_DIR/consume-report.md.
#
# Usage: perf/consume.sh
# Env: DATA (scratch dir, default /tmp/sluice-consume), RESULTS_DIR (default
#      perf/results), RECORDS (default 1000000), ROUNDS (default 2).
set -euo pipefail
cd "$(dirname "$0")/.."
DATA="${DATA:-/tmp/sluice-consume}"
RESULTS_DIR="${RESULTS_DIR:-perf/results}"
RECORDS="${RECORDS:-1000000}"
ROUNDS="${ROUNDS:-2}"

cargo build --release -q -p sluice
(cd perf/kafka && mvn -q dependency:copy-dependencies)
CP="perf/kafka/target/dependency/*"
rm -rf "$DATA" && mkdir -p "$DATA/results"
SLUICE_FLAGS=(--num-partitions 16)
# shellcheck source=perf/brokers.sh
. perf/brokers.sh

drop_caches() {
    sync
    if [ -w /proc/sys/vm/drop_caches ]; then echo 3 >/proc/sys/vm/drop_caches; else echo "cannot drop the page cache (not root): cold reads may hit it" >&2; fi
}

consume() { # broker round temperature
    java -cp "$CP" org.apache.kafka.tools.ConsumerPerformance --bootstrap-server 127.0.0.1:$PORT --topic consume \
        --messages "$RECORDS" --timeout 60000 --group "consume-$3-$2" 2>/dev/null \
        >"$DATA/results/consume-$3-$1-$2.txt" || true
}

for round in $(seq 1 "$ROUNDS"); do
    for broker in kafka sluice; do
        start "$broker" yes
        java -cp "$CP" org.apache.kafka.tools.ProducerPerformance --topic consume --num-records "$RECORDS" \
            --record-size 1024 --throughput -1 --producer-props bootstrap.servers=127.0.0.1:$PORT acks=all \
            linger.ms=1 batch.size=131072 2>/dev/null | tail -1 >"$DATA/results/consume-produce-$broker-$round.txt" || true
        consume "$broker" "$round" hot
        stop
        drop_caches
        start "$broker" no
        consume "$broker" "$round" cold
        stop
        rm -rf "$DATA/kafka" "$DATA/sluice"
    done
done

python3 - "$DATA/results" "$ROUNDS" <<'PY' | tee "$DATA/results/consume-report.md"
import statistics, sys
results, rounds = sys.argv[1], int(sys.argv[2])

def rate(path):
    # ConsumerPerformance: header line, then one CSV line; nMsg.sec is the 6th field.
    try:
        lines = [l for l in open(path) if l.strip()]
        return float(lines[-1].split(",")[5])
    except (OSError, IndexError, ValueError):
        return None

print("| consume (records/s) | round | Kafka | Sluice | Sluice/Kafka |")
print("|---|---|---|---|---|")
for temperature in ("hot", "cold"):
    ratios = []
    for r in range(1, rounds + 1):
        k = rate(f"{results}/consume-{temperature}-kafka-{r}.txt")
        s = rate(f"{results}/consume-{temperature}-sluice-{r}.txt")
        ratio = s / k if k and s else None
        if ratio:
            ratios.append(ratio)
        fmt = lambda v: f"{v:,.0f}" if v else "failed"
        print(f"| {temperature} | {r} | {fmt(k)} | {fmt(s)} | {f'{ratio:.2f}×' if ratio else '-'} |")
    if ratios:
        print(f"| {temperature} | median | | | **{statistics.median(ratios):.2f}×** |")
PY
mkdir -p "$RESULTS_DIR"
cp "$DATA"/results/consume-* "$RESULTS_DIR"/
