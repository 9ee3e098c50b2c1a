"""Prints perf/scale.sh's results as Markdown: Kafka, Sluice and their ratio.

Usage: scale_report.py RESULTS
"""
import json
import pathlib
import sys

results = pathlib.Path(sys.argv[1])


def load(name):
    f = results / name
    if not f.exists():
        return None
    return json.loads(f.read_text()) if f.suffix == ".json" else f.read_text().split()


rows = []


def row(figure, kafka, sluice, fmt="{:,.1f}"):
    if kafka is None or sluice is None:
        shown = [fmt.format(v) if v is not None else "not measured" for v in (kafka, sluice)]
        rows.append(f"| {figure} | {shown[0]} | {shown[1]} | |")
        return
    ratio = f"{sluice / kafka:.2f}" if kafka else ""
    rows.append(f"| {figure} | {fmt.format(kafka)} | {fmt.format(sluice)} | {ratio} |")


def per_broker(f):
    return f("kafka"), f("sluice")


def figure(name, key):
    return per_broker(lambda b: (load(f"scale-{name}-{b}.json") or {}).get(key))


for partitions in ("p16", "p1000"):
    row(f"produce {partitions[1:]} partitions, records/s", *figure(f"{partitions}-produce", "records_per_sec"))
    row(f"produce {partitions[1:]} partitions, MB per broker CPU-second",
        *figure(f"{partitions}-produce", "mb_per_broker_cpu_s"))


def share(broker):
    p16 = (load(f"scale-p16-produce-{broker}.json") or {}).get("records_per_sec")
    p1000 = (load(f"scale-p1000-produce-{broker}.json") or {}).get("records_per_sec")
    return p1000 / p16 if p16 and p1000 is not None else None


row("1,000 partitions' rate as a share of 16's", *per_broker(share), "{:.2f}")


def idle(broker):
    m = load(f"scale-idle-memory-{broker}.txt")
    return (int(m[1]) - int(m[0])) / int(m[2]) if m else None


row("resident memory per idle partition, KiB", *per_broker(idle), "{:.1f}")
for mode in ("produce", "consume"):
    row(f"10,000 partitions {mode}, records/s", *figure(f"big-{mode}", "records_per_sec"))
    row(f"10,000 partitions {mode}, errors", *figure(f"big-{mode}", "errors"), "{:.0f}")
for key, name, fmt in [
    ("connections", "connections open", "{:.0f}"),
    ("errors", "connection errors", "{:.0f}"),
    ("open_and_greet_s", "seconds to open and greet them", "{:.2f}"),
    ("metadata_round_on_all_s", "seconds for one Metadata on each at once", "{:.3f}"),
    ("rss_per_connection_kib", "resident memory per connection, KiB", "{:.1f}"),
]:
    row(name, *per_broker(lambda b: (load(f"scale-connections-{b}.json") or {}).get(key)), fmt)


def startup(broker, which):
    s = load(f"scale-startup-{broker}.txt")
    return int(s[which]) / 1000 if s else None


row("start-up to readable, clean stop, s", *per_broker(lambda b: startup(b, 0)), "{:.1f}")
row("start-up to readable, after kill -9, s", *per_broker(lambda b: startup(b, 1)), "{:.1f}")
for skipped in sorted(results.glob("scale-startup-*-skipped.txt")):
    rows.append("")
    rows.append(skipped.read_text().strip())

print("| figure | Kafka | Sluice | Sluice/Kafka |")
print("|---|---:|---:|---:|")
print("\n".join(rows))
