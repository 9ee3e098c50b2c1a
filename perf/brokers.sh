# Starts and stops a single-node Apache Kafka 4.1 (KRaft, from Maven's jars)
# or Sluice for the perf scripts, each with its data under $DATA. Sourced;
# needs CP (Kafka's classpath) and DATA; SLUICE_FLAGS adds broker flags.
# start BROKER FRESH sets BROKER_PID and PORT; FRESH=yes starts from empty data.
# It returns SETTLE_S seconds (default 2) after the port takes connections,
# and gives up after START_TRIES tries 0.2 s apart (default 300).

KAFKA_PORT=19192
SLUICE_PORT=19292
SLUICE_ADMIN_PORT=19293

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
num.partitions=${KAFKA_NUM_PARTITIONS:-16}
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
PROPS
}

start() { # broker fresh
    local broker=$1 fresh=$2
    local port=$SLUICE_PORT
    [ "$broker" = kafka ] && port=$KAFKA_PORT
    # A broker left running from an earlier run would answer in place of this one.
    if (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null; then
        echo "port $port is taken (a broker left running?): stop it first" >&2
        exit 1
    fi
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
            --admin-listen 127.0.0.1:$SLUICE_ADMIN_PORT --group-initial-rebalance-delay-ms 0 \
            "${SLUICE_FLAGS[@]}" >>"$DATA/sluice.out" 2>&1 &
        BROKER_PID=$!
        PORT=$SLUICE_PORT
    fi
    for _ in $(seq 1 "${START_TRIES:-300}"); do
        (exec 3<>/dev/tcp/127.0.0.1/"$PORT") 2>/dev/null && { sleep "${SETTLE_S:-2}"; return 0; }
        sleep 0.2
    done
    echo "$broker did not start" >&2
    exit 1
}

stop() {
    kill "$BROKER_PID" 2>/dev/null || true
    wait "$BROKER_PID" 2>/dev/null || true
}

