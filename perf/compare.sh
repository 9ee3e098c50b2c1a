#!/usr/bin/env bash
# Apache Kafka 4.1 and Sluice side by side on this machine: same workload, same
# disk, one run.
#
#  1. Kafka's maximum produce rate (perf/workloads/max-rate-16p-1k.conf, default durability).
#  2. For each durability mode (default, flush-every-write, write-caching) and
#     broker: every workload (produce and e2e), and the max-rate workload
#     throttled to half of Kafka's maximum (produce and e2e).
#  3. Kafka's own tools against both brokers: ProducerPerformance,
#     ConsumerPerformance (reading what ProducerPerformance wrote) and EndToEndLatency.
#  4. perf/consume.sh: consume throughput alone, hot and cold; perf/roundtrip.sh:
#     one record's round trip, with where the broker's time goes; perf/scale.sh:
#     1,000 and 10,000 partitions, 1,000 connections, memory per idle
#     partition, start-up after a clean stop and after kill -9.
#
# Every sluice-perf run also reports the broker's CPU time over its measured
# window and the MB moved per broker CPU-second (--broker-pid).
#
# Prints one table per run with each figure for both brokers and their ratio
# (perf/report.py). Each sluice-perf run also leaves a PNG chart (latency
# percentiles and throughput per second) next to its JSON. Everything is
# copied to RESULTS_DIR at the end.
#
# Usage: perf/compare.sh [workload.conf ...]   (default: the fixed-rate and max-rate 16-partition workloads)
# Needs: Java 17, Maven (fetches Kafka from Maven Central), python3; fio if present.
# Env: DATA (scratch dir on the disk under test, default /tmp/sluice-compare),
#      RESULTS_DIR (where results are kept, default perf/results),
#      DURATION and WARMUP (seconds per sluice-perf run, default 20 and 5),
#      PP_RECORDS (ProducerPerformance and ConsumerPerformance records, default 2000000),
#      E2E_MESSAGES (EndToEndLatency round trips, default 10000),
#      MODES (durability modes of step 2, default "default flush-every-write write-caching"),
#      EXTRAS (steps 3 and 4: yes, the default, or no).
set -euo pipefail
cd "$(dirname "$0")/.."
DATA="${DATA:-/tmp/sluice-compare}"
RESULTS_DIR="${RESULTS_DIR:-perf/results}"
DURATION="${DURATION:-20}"
WARMUP="${WARMUP:-5}"
PP_RECORDS="${PP_RECORDS:-2000000}"
E2E_MESSAGES="${E2E_MESSAGES:-10000}"
read -r -a MODES <<<"${MODES:-default flush-every-write write-caching}"
EXTRAS="${EXTRAS:-yes}"
MAX_WORKLOAD=perf/workloads/max-rate-16p-1k.conf
WORKLOADS=("$@")
[ ${#WORKLOADS[@]} -gt 0 ] || WORKLOADS=(perf/workloads/fixed-rate-16p-1k.conf perf/workloads/max-rate-16p-1k.conf)
KAFKA_PORT=19192
SLUICE_PORT=19292

source perf/prepare.sh
prepare_bench

start_kafka() {
    local dir="$DATA/kafka"
    rm -rf "$dir" && mkdir -p "$dir/logs"
    cat > "$dir/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$((KAFKA_PORT + 1))
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$((KAFKA_PORT + 1))
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$dir/logs
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
log.segment.delete.delay.ms=0
PROPS
    java -cp "$CP" kafka.tools.StorageTool format -t "$(java -cp "$CP" kafka.tools.StorageTool random-uuid)" \
        -c "$dir/server.properties" >/dev/null
    java -Xms1g -Xmx1g -cp "$CP" kafka.Kafka "$dir/server.properties" >"$dir/kafka.out" 2>&1 &
    BROKER_PID=$!
    wait_port $KAFKA_PORT
}

start_sluice() {
    rm -rf "$DATA/sluice"
    # group.initial.rebalance.delay.ms=0 as for Kafka above: consumer tools start at once on both.
    target/release/sluice serve --listen 127.0.0.1:$SLUICE_PORT --data-dir "$DATA/sluice" \
        --group-initial-rebalance-delay-ms 0 >"$DATA/sluice.out" 2>&1 &
    BROKER_PID=$!
    wait_port $SLUICE_PORT
}

wait_port() {
    for _ in $(seq 1 300); do
        (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && { sleep 2; return 0; }
        sleep 0.2
    done
    echo "broker on port $1 did not start" >&2
    exit 1
}

stop_broker() {
    kill "$BROKER_PID" 2>/dev/null || true
    wait "$BROKER_PID" 2>/dev/null || true
    # A max-rate session writes tens of GB: free the disk before the next one.
    rm -rf "$DATA/kafka/logs" "$DATA/sluice"
}

run() { # broker port mode workload tag extra...
    local broker=$1 port=$2 mode=$3 workload=$4 tag=$5
    shift 5
    local out="$DATA/results/$tag-$mode-$broker"
    "$PERF" --workload "$workload" --bootstrap "127.0.0.1:$port" --mode "$mode" --label "$broker" \
        --topic "$tag-$mode" --duration "$DURATION" --warmup "$WARMUP" \
        --json "$out.json" --png "$out.png" --broker-pid "$BROKER_PID" "$@" >/dev/null
    # A max-rate run writes tens of GB: delete its topic before the next run.
    java -cp "$CP" org.apache.kafka.tools.TopicCommand --bootstrap-server "127.0.0.1:$port" --delete \
        --topic "$tag-$mode" >/dev/null 2>&1 || true
    sleep 2
}

if command -v fio >/dev/null; then
    fio --name=seqwrite --filename="$DATA/fio.tmp" --rw=write --bs=1M --size=2G --direct=1 --ioengine=io_uring \
        --output-format=json >"$DATA/results/fio.json" && rm -f "$DATA/fio.tmp"
fi

# Kafka's maximum produce rate, measured first; the fixed-rate comparison runs at half of it.
start_kafka
run kafka $KAFKA_PORT produce "$MAX_WORKLOAD" kafka-max
stop_broker
mv "$DATA/results/kafka-max-produce-kafka.json" "$DATA/results/kafka-max.json"
mv "$DATA/results/kafka-max-produce-kafka.png" "$DATA/results/kafka-max.png"
KAFKA_MAX=$(python3 -c 'import json,sys; print(int(json.load(open(sys.argv[1]))["records_per_sec"]))' "$DATA/results/kafka-max.json")
HALF_RATE=$((KAFKA_MAX / 2))
[ "$HALF_RATE" -gt 0 ] || { echo "Kafka's maximum rate measured as $KAFKA_MAX records/s: nothing to halve" >&2; exit 1; }
echo "$KAFKA_MAX $HALF_RATE" >"$DATA/results/half-rate.txt"

# Durability modes: each broker's default (Kafka does not sync, Sluice syncs
# before every ack); both syncing every write; and Kafka's default against
# Sluice with write caching (acknowledged once written, synced within 1 s).
for durability in "${MODES[@]}"; do
    for broker in kafka sluice; do
        extra=()
        [ "$durability" = flush-every-write ] && extra=(--topic-config flush.messages=1)
        [ "$durability" = write-caching ] && [ "$broker" = sluice ] && extra=(--topic-config flush.ms=1000)
        if [ "$broker" = kafka ]; then start_kafka; port=$KAFKA_PORT; else start_sluice; port=$SLUICE_PORT; fi
        for workload in "${WORKLOADS[@]}"; do
            tag="$(basename "$workload" .conf)-$durability"
            run "$broker" "$port" produce "$workload" "$tag" "${extra[@]}"
            # End to end at the workload's rate (half of Kafka's maximum is set in the workload files).
            run "$broker" "$port" e2e "$workload" "$tag" "${extra[@]}"
        done
        # The max-rate workload throttled to half of Kafka's maximum: both brokers have headroom.
        tag="half-kafka-max-16p-1k-$durability"
        run "$broker" "$port" produce "$MAX_WORKLOAD" "$tag" --rate "$HALF_RATE" "${extra[@]}"
        run "$broker" "$port" e2e "$MAX_WORKLOAD" "$tag" --rate "$HALF_RATE" "${extra[@]}"
        stop_broker
    done
done

if [ "$EXTRAS" = yes ]; then
# Kafka's own tools against both, acks=all, 1 KiB records: ProducerPerformance
# writes PP_RECORDS records, ConsumerPerformance reads them back from the
# beginning, EndToEndLatency sends one record at a time and waits for a consumer
# to receive it. A tool that fails leaves its output (or none) in the report.
for broker in kafka sluice; do
    if [ "$broker" = kafka ]; then start_kafka; port=$KAFKA_PORT; else start_sluice; port=$SLUICE_PORT; fi
    java -cp "$CP" org.apache.kafka.tools.ProducerPerformance --topic pp --num-records "$PP_RECORDS" --record-size 1024 \
        --throughput -1 --producer-props bootstrap.servers=127.0.0.1:$port acks=all linger.ms=1 batch.size=131072 \
        2>/dev/null | tail -1 >"$DATA/results/producer-performance-$broker.txt" || true
    java -cp "$CP" org.apache.kafka.tools.ConsumerPerformance --bootstrap-server 127.0.0.1:$port --topic pp \
        --messages "$PP_RECORDS" --timeout 60000 --group "consumer-performance-$broker" \
        2>/dev/null >"$DATA/results/consumer-performance-$broker.txt" || true
    java -cp "$CP" org.apache.kafka.tools.EndToEndLatency 127.0.0.1:$port e2e-latency "$E2E_MESSAGES" all 1024 \
        2>/dev/null | tail -2 >"$DATA/results/end-to-end-latency-$broker.txt" || true
    stop_broker
done

# Reads alone, hot and cold, and one record's round trip (each with its own
# brokers and its data in its own directory under DATA; results beside these).
# A step that fails says so and leaves the others' results (and the report) standing.
DATA="$DATA/consume" RESULTS_DIR="$RESULTS_DIR" perf/consume.sh || echo "perf/consume.sh failed" >&2
DATA="$DATA/roundtrip" RESULTS_DIR="$RESULTS_DIR" perf/roundtrip.sh || echo "perf/roundtrip.sh failed" >&2
# Many partitions and connections, idle partition memory, start-up time.
DATA="$DATA/scale" RESULTS_DIR="$RESULTS_DIR" DURATION="$DURATION" WARMUP="$WARMUP" perf/scale.sh \
    || echo "perf/scale.sh failed" >&2
fi

python3 perf/report.py "$DATA/results" | tee "$DATA/results/report.md"
mkdir -p "$RESULTS_DIR"
cp "$DATA"/results/*.json "$DATA"/results/*.png "$DATA"/results/*.txt "$DATA"/results/report.md "$RESULTS_DIR"/
echo "results, charts and report.md in $RESULTS_DIR"
