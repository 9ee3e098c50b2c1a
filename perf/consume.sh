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
KAFKA_PORT=19192
SLUICE_PORT=19292

cargo build --release -q -p sluice
(cd perf/kafka && mvn -q dependency:copy-dependencies)
CP="perf/kafka/target/dependency/*"
rm -rf "$DATA" && mkdir -p "$DATA/results"

kafka_props() {
    local dir=$1
    cat <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$((KAFKA_PORT + 1))
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$((KAFKA_PORT + 1))
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$dir/logs
num.partitions=16
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
PROPS
}

start() { # broker fresh
    local broker=$1 fresh=$2
    if [ "$broker" = kafka ]; then
        local dir="$DATA/kafka"
        if [ "$fresh" = yes ]; then
            rm -rf "$dir" && mkdir -p "$dir/logs"
            kafka_props "$dir" >"$dir/server.properties"
            java -cp "$CP" kafka.tools.StorageTool format -t "$(java -cp "$CP" kafka.tools.StorageTool random-uuid)" \
                -c "$dir/server.properties" >/dev/null
        fi
        java -Xms1g -Xmx1g -cp "$CP" kafka.Kafka "$dir/server.properties" >>"$dir/kafka.out" 2>&1 &
        BROKER_PID=$!
        PORT=$KAFKA_PORT
    else
        [ "$fresh" = yes ] && rm -rf "$DATA/sluice"
        target/release/sluice serve --listen 127.0.0.1:$SLUICE_PORT --data-dir "$DATA/sluice" \
            --num-partitions 16 --group-initial-rebalance-delay-ms 0 >>"$DATA/sluice.out" 2>&1 &
        BROKER_PID=$!
        PORT=$SLUICE_PORT
    fi
    for _ in $(seq 1 300); do
        (exec 3<>/dev/tcp/127.0.0.1/"$PORT") 2>/dev/null && { sleep 2; return 0; }
        sleep 0.2
    done
    echo "$broker did not start" >&2
    exit 1
}

stop() {
    kill "$BROKER_PID" 2>/dev/null || true
    wait "$BROKER_PID" 2>/dev/null || true
}

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
