"""Prints perf/compare.sh's results as Markdown: one row per figure, Kafka, Sluice
and the ratio; links to each run's chart; the output of Kafka's own tools.

Usage: report.py RESULTS [CHART_PREFIX]   (CHART_PREFIX: how RESULTS.md reaches the charts, default "results")
"""
import json
import pathlib
import sys

results = pathlib.Path(sys.argv[1])
chart_prefix = sys.argv[2] if len(sys.argv) > 2 else "results"
runs = {}
for f in sorted(results.glob("*.json")):
    if f.name in ("fio.json", "kafka-max.json"):
        continue
    tag, broker = f.stem.rsplit("-", 1)
    runs.setdefault(tag, {})[broker] = json.loads(f.read_text())

fio = results / "fio.json"
if fio.exists():
    bw = json.loads(fio.read_text())["jobs"][0]["write"]["bw_bytes"] / 1e6
    print(f"fio O_DIRECT sequential write: {bw:.0f} MB/s\n")

half = results / "half-rate.txt"
if half.exists():
    kafka_max, half_rate = half.read_text().split()
    print(f"Kafka's maximum produce rate ({int(kafka_max):,} records/s, max-rate-16p-1k, default durability) "
          f"measured first; `half-kafka-max` runs send {int(half_rate):,} records/s to both brokers.\n")

figures = [
    ("records_per_sec", "records/s", False),
    ("mb_per_sec", "MB/s", False),
    ("mb_per_broker_cpu_s", "MB per broker CPU-second", False),
] + [
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
    print(f"| errors | {kafka['errors']} | {sluice['errors']} | |")
    charts = [f"[{b}]({chart_prefix}/{tag}-{b.lower()}.png)" for b in ("Kafka", "Sluice")
              if (results / f"{tag}-{b.lower()}.png").exists()]
    print(f"\ncharts: {', '.join(charts) if charts else 'none'}\n")


def tool_output(name, broker):
    f = results / f"{name}-{broker}.txt"
    return f.read_text().strip() if f.exists() else None


for broker in ("kafka", "sluice"):
    text = tool_output("producer-performance", broker)
    if text is not None:
        print(f"ProducerPerformance vs {broker}: {text or 'no output'}")


def consumer_performance(broker):
    """ConsumerPerformance's CSV header and values as a dict, or None."""
    text = tool_output("consumer-performance", broker)
    lines = text.splitlines() if text else []
    header = next((i for i, line in enumerate(lines) if line.startswith("start.time")), None)
    if header is None or header + 1 >= len(lines):
        return None
    keys = [k.strip() for k in lines[header].split(",")]
    values = [v.strip() for v in lines[header + 1].split(",")]
    return dict(zip(keys, values)) if len(keys) == len(values) else None


def consumer_performance_warnings(broker):
    text = tool_output("consumer-performance", broker) or ""
    return [line.strip() for line in text.splitlines() if "WARN" in line]


kafka_cp, sluice_cp = consumer_performance("kafka"), consumer_performance("sluice")
if kafka_cp and sluice_cp:
    print("\n## ConsumerPerformance (reads ProducerPerformance's records from the beginning)")
    print("| figure | Kafka | Sluice | Sluice/Kafka |")
    print("|---|---:|---:|---:|")
    for key in ("data.consumed.in.nMsg", "MB.sec", "nMsg.sec", "fetch.MB.sec", "fetch.nMsg.sec"):
        try:
            k, s = float(kafka_cp[key]), float(sluice_cp[key])
        except (KeyError, ValueError):
            continue
        print(f"| {key} | {k:,.2f} | {s:,.2f} | {s / k if k else float('nan'):.2f} |")
    for broker in ("kafka", "sluice"):
        for warning in consumer_performance_warnings(broker):
            print(f"\nConsumerPerformance vs {broker}: {warning}")
else:
    for broker in ("kafka", "sluice"):
        text = tool_output("consumer-performance", broker)
        if text is not None:
            print(f"ConsumerPerformance vs {broker} (unparsed): {text or 'no output'}")

print()
for broker in ("kafka", "sluice"):
    text = tool_output("end-to-end-latency", broker)
    if text is not None:
        print(f"EndToEndLatency vs {broker}: {' '.join(text.split()) or 'no output'}")
