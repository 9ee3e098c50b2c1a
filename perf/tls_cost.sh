#!/usr/bin/env bash
# What TLS costs: the same broker serves a PLAINTEXT and an SSL listener, and
# the max-rate produce, the catch-up consume and the fixed-rate end-to-end
# workloads run against each in A B B A order; prints the median of each
# figure and the SSL/PLAINTEXT ratio. The plaintext fetch path hands record
# bytes to the socket without copying them; over TLS they are encrypted
# into TLS records (one copy), which is the cost measured here.
#
#   perf/tls_cost.sh
#
# Settings (environment): ROUNDS (2), DURATION (15), WARMUP (5) seconds per
# run, DATA (/tmp/sluice-tls-cost) for the broker's data, certificates and
# results. Each round keeps what its max-rate produce runs wrote (they are
# read back): about 10 GB per round on this machine, so make room for
# ROUNDS times that under DATA.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-2}
DURATION=${DURATION:-15}
WARMUP=${WARMUP:-5}
DATA=${DATA:-/tmp/sluice-tls-cost}
PLAIN_PORT=${PLAIN_PORT:-19092}
TLS_PORT=${TLS_PORT:-19093}

cargo build --release -q -p sluice-perf --bin sluice-perf
cargo build --release -q --bin sluice
PERF=target/release/sluice-perf
rm -rf "$DATA"
mkdir -p "$DATA/results" "$DATA/pki"

# A throwaway CA and broker certificate for 127.0.0.1.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj "/CN=perf CA" \
    -keyout "$DATA/pki/ca.key" -out "$DATA/pki/ca.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=localhost" \
    -keyout "$DATA/pki/broker.key" -out "$DATA/pki/broker.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' > "$DATA/pki/san.ext"
openssl x509 -req -in "$DATA/pki/broker.csr" -CA "$DATA/pki/ca.pem" -CAkey "$DATA/pki/ca.key" -CAcreateserial \
    -days 2 -extfile "$DATA/pki/san.ext" -out "$DATA/pki/broker.crt" 2>/dev/null
cat "$DATA/pki/broker.key" "$DATA/pki/broker.crt" > "$DATA/pki/broker.pem"
cat > "$DATA/server.properties" <<PROPS
listeners=PLAINTEXT://127.0.0.1:$PLAIN_PORT,SSL://127.0.0.1:$TLS_PORT
ssl.keystore.type=PEM
ssl.keystore.location=$DATA/pki/broker.pem
PROPS

target/release/sluice serve --config "$DATA/server.properties" --data-dir "$DATA/data" --admin-listen none --schema-registry-listen none \
    > "$DATA/broker.log" 2>&1 &
BROKER=$!
trap 'kill $BROKER 2>/dev/null || true' EXIT
for _ in $(seq 1 300); do
    (exec 3<>/dev/tcp/127.0.0.1/"$TLS_PORT") 2>/dev/null && break
    kill -0 "$BROKER" || { cat "$DATA/broker.log"; exit 1; }
    sleep 0.2
done

run() { # listener workload round
    local listener=$1 workload=$2 round=$3 port=$PLAIN_PORT extra=()
    if [ "$listener" = ssl ]; then
        port=$TLS_PORT
        extra=(-X security.protocol=SSL -X "ssl.ca.location=$DATA/pki/ca.pem")
    fi
    local topic="tls-cost-$workload"
    case $workload in
        produce) $PERF --bootstrap "127.0.0.1:$port" --mode produce --topic "$topic-$listener-$round" \
                     --duration "$DURATION" --warmup "$WARMUP" "${extra[@]}" \
                     --json "$DATA/results/$listener-produce-$round.json" > /dev/null ;;
        # Reads back what the produce run of this listener and round wrote.
        consume) $PERF --bootstrap "127.0.0.1:$port" --mode consume --topic "tls-cost-produce-$listener-$round" \
                     --duration "$DURATION" --warmup 0 "${extra[@]}" \
                     --json "$DATA/results/$listener-consume-$round.json" > /dev/null ;;
        e2e) $PERF --bootstrap "127.0.0.1:$port" --mode e2e --topic "$topic-$listener-$round" --rate 10000 \
                 --duration "$DURATION" --warmup "$WARMUP" "${extra[@]}" \
                 --json "$DATA/results/$listener-e2e-$round.json" > /dev/null ;;
    esac
}

for round in $(seq 1 "$ROUNDS"); do
    if [ $((round % 2)) = 1 ]; then order="plain ssl"; else order="ssl plain"; fi
    for listener in $order; do
        for workload in produce consume e2e; do
            echo "round $round: $listener $workload"
            run "$listener" "$workload" "$round"
        done
    done
done

python3 - "$DATA/results" <<'PY'
import glob, json, os, statistics, sys
results = sys.argv[1]
def figures(listener, workload):
    runs = [json.load(open(f)) for f in sorted(glob.glob(os.path.join(results, f"{listener}-{workload}-*.json")))]
    out = {}
    for run in runs:
        for key, value in run.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                out.setdefault(key, []).append(value)
    return {k: statistics.median(v) for k, v in out.items()}
print(f"{'workload':<9} {'figure':<24} {'PLAINTEXT':>14} {'SSL':>14} {'SSL/PLAIN':>10}")
for workload in ("produce", "consume", "e2e"):
    plain, ssl = figures("plain", workload), figures("ssl", workload)
    for key in sorted(plain):
        if key in ssl and plain[key]:
            print(f"{workload:<9} {key:<24} {plain[key]:>14.1f} {ssl[key]:>14.1f} {ssl[key] / plain[key]:>10.2f}")
PY
