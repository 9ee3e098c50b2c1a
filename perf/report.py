"""Prints perf/compare.sh's results: one row per figure, Kafka, Sluice and the ratio."""
import json
import pathlib
import sys

results = pathlib.Path(sys.argv[1])
runs = {}
for f in sorted(results.glob("*.json")):
    if f.name == "fio.json":
        continue
    tag, broker = f.stem.rsplit("-", 1)
    runs.setdefault(tag, {})[broker] = json.loads(f.read_text())

fio = results / "fio.json"
if fio.exists():
    bw = json.loads(fio.read_text())["jobs"][0]["write"]["bw_bytes"] / 1e6
    print(f"fio O_DIRECT sequential write: {bw:.0f} MB/s\n")

figures = [("records_per_sec", "records/s", False), ("mb_per_sec", "MB/s", False)] + [
    (f"{p}_ms", f"{p} ms", True) for p in ("p50", "p90", "p99", "p99.9", "p99.99", "max")
]
for tag, by_broker in sorted(runs.items()):
    kafka, sluice = by_broker.get("kafka"), by_broker.get("sluice")
    if not kafka or not sluice:
        continue
    print(f"## {tag}")
    print(f"| figure | Kafka | Sluice | Sluice/Kafka |")
    print("|---|---:|---:|---:|")
    for key, name, latency in figures:
        k, s = kafka.get(key), sluice.get(key)
        if k is None or s is None or (latency and k == 0):
            continue
        ratio = s / k if k else float("nan")
        print(f"| {name} | {k:,.2f} | {s:,.2f} | {ratio:.2f} |")
    print(f"| errors | {kafka['errors']} | {sluice['errors']} | |\n")

for broker in ("kafka", "sluice"):
    f = results / f"producer-performance-{broker}.txt"
    if f.exists():
        print(f"ProducerPerformance vs {broker}: {f.read_text().strip()}")
