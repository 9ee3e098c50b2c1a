#!/usr/bin/env bash
# What watching the broker costs: the fixed-rate end-to-end and the max-rate
# produce workloads, each run quiet and while a scraper asks for /metrics
# and the console's /api/overview every SCRAPE_INTERVAL seconds (Prometheus
# scrapes every 15 s by default; an open console polls the overview once a
# second), alternating in A B B A order, printing the median of each figure
# and the ratio.
#
#   perf/scrape_cost.sh
#
# Settings (environment): ROUNDS (4), DURATION (15), WARMUP (5) seconds per
# run, SCRAPE_INTERVAL (1) seconds, DATA (/tmp/sluice-scrape-cost) for the
# broker's data and results.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-4}
DURATION=${DURATION:-15}
WARMUP=${WARMUP:-5}
DATA=${DATA:-/tmp/sluice-scrape-cost}
PORT=${PORT:-19092}
ADMIN_PORT=${ADMIN_PORT:-19644}
SCRAPE_INTERVAL=${SCRAPE_INTERVAL:-1}

cargo build --release -q -p sluice-perf --bin sluice-perf
cargo build --release -q --bin sluice
PERF=target/release/sluice-perf
rm -rf "$DATA"
mkdir -p "$DATA/results"

# Waits until the broker started as $1 listens (a broker of another run on the port does not count).
wait_port() {
    for _ in $(seq 1 300); do
        kill -0 "$1" 2>/dev/null || { echo "broker exited; see $DATA/*.log" >&2; exit 1; }
        (exec 3<>/dev/tcp/127.0.0.1/"$PORT") 2>/dev/null && { sleep 1; kill -0 "$1" && return 0; }
        sleep 0.2
    done
    echo "broker on port $PORT did not start" >&2
    exit 1
}

# Scrapes until killed, over one kept-alive connection (as Prometheus does),
# so that the scraper's own process start-up does not load the machine;
# appends each /metrics scrape's seconds to $1.
scraper() {
    exec python3 - "$ADMIN_PORT" "$SCRAPE_INTERVAL" "$1" <<'PY'
import http.client, sys, time
port, interval, out = int(sys.argv[1]), float(sys.argv[2]), open(sys.argv[3], "a")
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
while True:
    try:
        started = time.monotonic()
        conn.request("GET", "/metrics")
        conn.getresponse().read()
        out.write(f"{time.monotonic() - started}\n")
        out.flush()
        conn.request("GET", "/api/overview")
        conn.getresponse().read()
    except (OSError, http.client.HTTPException):
        conn.close()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    time.sleep(interval)
PY
}

for round in $(seq 1 "$ROUNDS"); do
    order="quiet scraped"
    [ $((round % 2)) -eq 0 ] && order="scraped quiet"
    for side in $order; do
        rm -rf "$DATA/data"
        sync
        sleep 2
        target/release/sluice serve --listen 127.0.0.1:$PORT --admin-listen 127.0.0.1:$ADMIN_PORT \
            --data-dir "$DATA/data" >"$DATA/$side-$round.log" 2>&1 &
        pid=$!
        wait_port "$pid"
        for mode in e2e produce; do
            workload=perf/workloads/max-rate-16p-1k.conf
            [ "$mode" = e2e ] && workload=perf/workloads/fixed-rate-16p-1k.conf
            scraping=""
            if [ "$side" = scraped ]; then
                scraper "$DATA/results/scrape-seconds.txt" &
                scraping=$!
            fi
            "$PERF" --workload "$workload" --bootstrap "127.0.0.1:$PORT" --mode "$mode" --label "$side" \
                --topic "$mode-$round" --duration "$DURATION" --warmup "$WARMUP" \
                --json "$DATA/results/$mode-$side-$round.json" >/dev/null
            if [ -n "$scraping" ]; then
                kill "$scraping"
                wait "$scraping" 2>/dev/null || true
            fi
        done
        curl -s "http://127.0.0.1:$ADMIN_PORT/metrics" >"$DATA/results/last-scrape-$side-$round.txt"
        kill "$pid"
        wait "$pid" || true
    done
done

python3 - "$DATA/results" <<'PY'
import json, pathlib, statistics, sys
results = pathlib.Path(sys.argv[1])
figures = [("records_per_sec", "records/s"), ("p50_ms", "p50 ms"), ("p99_ms", "p99 ms"), ("p99.9_ms", "p99.9 ms"),
           ("max_ms", "max ms"), ("errors", "errors")]
for mode, title in (("produce", "max-rate-16p-1k produce (acks=all)"), ("e2e", "fixed-rate-16p-1k end to end (20,000 records/s)")):
    runs = {side: [json.loads(f.read_text()) for f in sorted(results.glob(f"{mode}-{side}-*.json"))]
            for side in ("quiet", "scraped")}
    print(f"## {title}: median of {len(runs['quiet'])} runs each")
    print("| figure | quiet | scraped | scraped/quiet |")
    print("|---|---:|---:|---:|")
    for key, name in figures:
        q = statistics.median(r[key] for r in runs["quiet"])
        s = statistics.median(r[key] for r in runs["scraped"])
        ratio = f"{s / q:.2f}" if q else ""
        print(f"| {name} | {q:,.2f} | {s:,.2f} | {ratio} |")
    print()
times = sorted(float(t) for t in (results / "scrape-seconds.txt").read_text().split())
if times:
    pick = lambda q: times[min(len(times) - 1, int(q * len(times)))] * 1000
    size = max(len(f.read_bytes()) for f in results.glob("last-scrape-*.txt"))
    print(f"/metrics under load: {len(times)} scrapes, p50 {pick(0.5):.1f} ms, p99 {pick(0.99):.1f} ms, "
          f"largest body {size:,} bytes")
PY
