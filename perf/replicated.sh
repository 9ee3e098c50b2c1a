#!/usr/bin/env bash
# Replication factor 3 side by side: three Apache Kafka 4.1 brokers against
# three Sluice brokers, each cluster on this machine's loopback (KRaft combined
# mode: every node a broker and a voter of the metadata quorum), one cluster
# at a time. The load is sluice-perf with acks=all to a topic of 16
# partitions, replication factor 3 and min.insync.replicas=2:
#
#  1. each cluster's maximum produce rate (perf/workloads/max-rate-16p-1k.conf);
#  2. both at half of Kafka's maximum, for latency at a fixed rate.
#
# Both run with their defaults: Kafka acknowledges acks=all once every
# in-sync replica has the records in its page cache; Sluice once every in-sync
# replica has fsynced them.
#
# Usage: perf/replicated.sh
# Needs: Java 17, Maven (fetches Kafka from Maven Central), python3.
# Env: DATA (scratch dir on the disk under test, default /tmp/sluice-replicated),
#      RESULTS_DIR (where results are kept, default perf/results),
#      DURATION and WARMUP (seconds per sluice-perf run, default 20 and 5),
#      KAFKA_HEAP (each Kafka broker's heap, default 1g).
set -euo pipefail
cd "$(dirname "$0")/.."
DATA="${DATA:-/tmp/sluice-replicated}"
RESULTS_DIR="${RESULTS_DIR:-perf/results}"
DURATION="${DURATION:-20}"
WARMUP="${WARMUP:-5}"
KAFKA_HEAP="${KAFKA_HEAP:-1g}"
WORKLOAD=perf/workloads/max-rate-16p-1k.conf
# Node i listens for clients on BASE+i and for the quorum on BASE+10+i.
KAFKA_BASE=19400
SLUICE_BASE=19500

source perf/prepare.sh
prepare_bench
PIDS=()
trap 'stop_cluster' EXIT

voters() { # base
    echo "1@127.0.0.1:$(($1 + 11)),2@127.0.0.1:$(($1 + 12)),3@127.0.0.1:$(($1 + 13))"
}

bootstrap() { # base
    echo "127.0.0.1:$(($1 + 1)),127.0.0.1:$(($1 + 2)),127.0.0.1:$(($1 + 3))"
}

node_props() { # base id dir
    local base=$1 id=$2 dir=$3
    cat <<PROPS
process.roles=broker,controller
node.id=$id
controller.quorum.voters=$(voters "$base")
listeners=PLAINTEXT://127.0.0.1:$((base + id)),CONTROLLER://127.0.0.1:$((base + 10 + id))
advertised.listeners=PLAINTEXT://127.0.0.1:$((base + id))
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$dir/data
default.replication.factor=3
min.insync.replicas=2
offsets.topic.replication.factor=3
transaction.state.log.replication.factor=3
transaction.state.log.min.isr=2
group.initial.rebalance.delay.ms=0
PROPS
}

wait_port() { # port
    for _ in $(seq 1 300); do
        (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0
        sleep 0.2
    done
    echo "nothing listens on port $1" >&2
    exit 1
}

start_cluster() { # kafka|sluice
    local broker=$1 base=$KAFKA_BASE
    [ "$broker" = sluice ] && base=$SLUICE_BASE
    local cluster_id
    [ "$broker" = kafka ] && cluster_id=$(java -cp "$CP" kafka.tools.StorageTool random-uuid)
    for id in 1 2 3; do
        local dir="$DATA/$broker-$id"
        mkdir -p "$dir/data"
        node_props "$base" "$id" "$dir" >"$dir/server.properties"
        if [ "$broker" = kafka ]; then
            java -cp "$CP" kafka.tools.StorageTool format -t "$cluster_id" -c "$dir/server.properties" >/dev/null
            java "-Xms$KAFKA_HEAP" "-Xmx$KAFKA_HEAP" -cp "$CP" kafka.Kafka "$dir/server.properties" >"$dir/out.log" 2>&1 &
        else
            {
                echo "admin.listeners=127.0.0.1:$((base + 20 + id))"
                echo "schema.registry.listeners=none"
            } >>"$dir/server.properties"
            target/release/sluice serve --config "$dir/server.properties" >"$dir/out.log" 2>&1 &
        fi
        PIDS+=($!)
    done
    for id in 1 2 3; do wait_port $((base + id)); done
    # The brokers register with the quorum after their listeners open.
    sleep 5
}

stop_cluster() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    PIDS=()
    # A max-rate run writes tens of GB on each node: free the disk (the logs stay).
    rm -rf "$DATA"/*/data
}

run() { # broker tag extra...
    local broker=$1 tag=$2 base=$KAFKA_BASE
    shift 2
    [ "$broker" = sluice ] && base=$SLUICE_BASE
    "$PERF" --workload "$WORKLOAD" --bootstrap "$(bootstrap "$base")" --mode produce --label "$broker" \
        --topic "rf3-$tag" --replication-factor 3 --topic-config min.insync.replicas=2 \
        --duration "$DURATION" --warmup "$WARMUP" \
        --json "$DATA/results/rf3-$tag-$broker.json" --png "$DATA/results/rf3-$tag-$broker.png" "$@" >/dev/null
}

rate_of() { # json
    python3 -c 'import json,sys; print(int(json.load(open(sys.argv[1]))["records_per_sec"]))' "$1"
}

start_cluster kafka
run kafka max
KAFKA_MAX=$(rate_of "$DATA/results/rf3-max-kafka.json")
HALF_RATE=$((KAFKA_MAX / 2))
[ "$HALF_RATE" -gt 0 ] || { echo "Kafka's maximum rate measured as $KAFKA_MAX records/s: nothing to halve" >&2; exit 1; }
run kafka half --rate "$HALF_RATE"
stop_cluster

start_cluster sluice
run sluice max
run sluice half --rate "$HALF_RATE"
stop_cluster

python3 - "$DATA/results" "$HALF_RATE" <<'REPORT'
import json, sys
results, half = sys.argv[1], sys.argv[2]
print("| replication factor 3, acks=all, 16 partitions, 1 KiB | broker | records/s | MB/s | p50 ms | p99 ms | p99.9 ms | errors |")
print("|---|---|---|---|---|---|---|---|")
for tag, what in [("max", "max rate"), ("half", f"{half} records/s (half of Kafka's max)")]:
    for broker in ["kafka", "sluice"]:
        r = json.load(open(f"{results}/rf3-{tag}-{broker}.json"))
        print(f"| {what} | {broker} | {r['records_per_sec']:,.0f} | {r['mb_per_sec']:.1f} | {r['p50_ms']:.2f} | "
              f"{r['p99_ms']:.2f} | {r['p99.9_ms']:.2f} | {r['errors']} |")
REPORT
mkdir -p "$RESULTS_DIR"
cp "$DATA"/results/rf3-* "$RESULTS_DIR"/
