#!/usr/bin/env python3
"""Mock of the Sluice admin HTTP API (/api/...) plus the console files, for console work.

Usage: python3 tests/console_mock.py PORT      (Python 3 stdlib only)
A background thread produces to "orders" so the overview charts and group lag move.
"""
import json, os, random, re, sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlparse

CONSOLE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src", "admin", "console")
STATIC = {"/": ("index.html", "text/html"), "/console/app.js": ("app.js", "text/javascript"),
          "/console/style.css": ("style.css", "text/css")}
START = time.time()
LOCK = threading.RLock()
DEFAULTS = {"cleanup.policy": "delete", "retention.ms": "604800000", "retention.bytes": "-1",
            "segment.bytes": "1073741824", "max.message.bytes": "1048588", "min.insync.replicas": "1"}
TOTALS = dict(messages_in=0, bytes_in=0, bytes_out=0, produce_requests=0, fetch_requests=0,
              failed_produce_requests=0, failed_fetch_requests=0)
NO_LATENCY = {"count": 0, "p50": None, "p99": None, "p999": None}
LATENCY = {"produce": NO_LATENCY, "fetch": NO_LATENCY}
TOPICS, GROUPS = {}, {}

class ApiErr(Exception):
    """args: (http status, error body)"""

def need(ok, status, code, name, message):
    if not ok:
        raise ApiErr(status, {"error_code": code, "error": name, "message": message})

def now_ms():
    return int(time.time() * 1000)

def blob(b):
    """Bytes as the API shows them: {"text": utf-8 text or None if binary, "hex": ...}."""
    try:
        return None if b is None else {"text": b.decode("utf-8"), "hex": b.hex()}
    except UnicodeDecodeError:
        return {"text": None, "hex": b.hex()}

def append(topic, p, key, value, headers=(), pid=-1, txn=False, control=None, ts=None):
    recs = TOPICS[topic]["parts"][p]["records"]
    recs.append({"offset": len(recs), "timestamp": ts or now_ms(), "timestamp_type": "CreateTime",
                 "key": blob(key), "value": blob(value),
                 "headers": [{"key": k, "value": blob(v)} for k, v in headers],
                 "producer_id": pid, "producer_epoch": 0 if pid >= 0 else -1,
                 "transactional": txn, "control": control})

def new_topic(name, partitions, configs=None, internal=False):
    TOPICS[name] = {"internal": internal, "configs": dict(configs or {}),
                    "parts": [{"log_start": 0, "records": []} for _ in range(partitions)]}

def seed():
    for name, n, cfg in (("orders", 3, {"retention.ms": "86400000"}), ("binary", 1, {}), ("payments", 2, {})):
        new_topic(name, n, cfg)
    new_topic("__consumer_offsets", 3, internal=True)
    t0 = now_ms() - 3_600_000
    for i in range(60):
        body = json.dumps({"id": i, "item": "widget <b>&", "qty": i % 7}).encode()
        append("orders", i % 3, f"order-{i}".encode(), body, [("source", b"web"), ("trace", b"\x00\xff")], ts=t0 + i * 1000)
    append("orders", 0, None, b"plain text value <script>alert(1)</script>")
    append("orders", 0, b"k", None)
    for i in range(30):
        append("binary", 0, None if i % 2 else bytes([i, 0, 255]), os.urandom(12), ts=t0 + i * 5000)
    for i in range(8):
        append("payments", 0, f"pay-{i}".encode(), json.dumps({"amount": i * 10}).encode(), pid=1234, txn=True)
        if i % 4 == 3:
            append("payments", 0, None, b"\x00\x00\x00\x00\x00\x00", pid=1234, txn=True,
                   control="ABORT" if i == 3 else "COMMIT")
    members = [{"member_id": f"consumer-{i}-0a1b", "group_instance_id": None, "client_id": f"consumer-{i}",
                "client_host": "/127.0.0.1", "assignments": [{"topic": "orders", "partitions": ps}]}
               for i, ps in enumerate([[0, 1], [2]])]
    GROUPS["order-service"] = {"state": "Stable", "protocol": "range", "members": members,
                               "offsets": {("orders", p): 15 for p in range(3)}}
    GROUPS["billing"] = {"state": "Empty", "protocol": "", "members": [],
                         "offsets": {("payments", 0): 4, ("payments", 1): 0}}

def traffic():
    """Produce to "orders" every 100ms; the order-service group consumes most of it."""
    lat = []
    tick = time.time()
    while True:
        time.sleep(0.1)
        with LOCK:
            n = random.randint(0, 12)
            for _ in range(n):
                p = random.randrange(3)
                v = json.dumps({"id": random.randint(1, 10**6), "ts": now_ms()}).encode()
                append("orders", p, b"live", v)
                TOTALS["bytes_in"] += len(v) + 4
            for k, d in (("messages_in", n), ("produce_requests", 1), ("fetch_requests", 3),
                         ("bytes_out", n * 60 * random.randint(1, 3))):
                TOTALS[k] += d
            lat.append(random.lognormvariate(-1, 0.6))
            g = GROUPS.get("order-service")
            if g and g["members"]:
                for (t, p), off in g["offsets"].items():
                    hw = len(TOPICS[t]["parts"][p]["records"]) if t in TOPICS else off
                    g["offsets"][(t, p)] = max(off, hw - random.randint(0, 40))
            if time.time() - tick >= 1:  # latency over the last complete second
                tick = time.time()
                lat.sort()
                pick = lambda q: round(lat[min(len(lat) - 1, int(q * len(lat)))], 3)
                LATENCY["produce"] = {"count": len(lat), "p50": pick(.5), "p99": pick(.99), "p999": pick(.999)}
                LATENCY["fetch"] = NO_LATENCY if random.random() < 0.3 else {  # idle seconds have no samples
                    "count": 30, "p50": 0.2, "p99": round(random.uniform(1, 3), 2), "p999": round(random.uniform(3, 6), 2)}
                lat = []

def check_configs(keys):
    for k in keys:
        need(k in DEFAULTS, 400, 40, "INVALID_CONFIG", f"unknown topic config {k}")

def topic_of(name):
    need(name in TOPICS, 404, 3, "UNKNOWN_TOPIC_OR_PARTITION", f"topic {name} does not exist")
    return TOPICS[name]

def part_json(t):
    return [{"partition": i, "shard": i % 2, "log_start_offset": p["log_start"], "high_watermark": len(p["records"]),
             "log_end_offset": len(p["records"]), "last_stable_offset": len(p["records"]),
             "size_bytes": 90 * (len(p["records"]) - p["log_start"]), "segments": 1 + len(p["records"]) // 500}
            for i, p in enumerate(t["parts"])]

def group_json(gid, g):
    offsets = []
    for (t, p), off in sorted(g["offsets"].items()):
        end = len(TOPICS[t]["parts"][p]["records"]) if t in TOPICS and p < len(TOPICS[t]["parts"]) else off
        offsets.append({"topic": t, "partition": p, "committed_offset": off, "log_end_offset": end,
                        "lag": max(0, end - off), "metadata": ""})
    return {"group_id": gid, "state": g["state"], "protocol_type": "consumer", "protocol": g["protocol"],
            "members": g["members"], "offsets": offsets, "total_lag": sum(o["lag"] for o in offsets)}

def handle(method, path, q, body):
    parts = [unquote(s) for s in path.strip("/").split("/")][1:]  # drop "api"
    if method == "GET" and parts == ["overview"]:
        tops = list(TOPICS.values())
        nparts = sum(len(t["parts"]) for t in tops)
        log = sum(p["size_bytes"] for t in tops for p in part_json(t))
        return {"version": "0.1.0-mock", "cluster_id": "mock-cluster-7Qz", "node_id": 0,
                "uptime_ms": int((time.time() - START) * 1000), "data_dir": "./data",
                "listeners": [{"name": "PLAINTEXT", "address": "127.0.0.1:9092"}], "admin_address": "127.0.0.1:9644",
                "shards": [{"id": s, "partitions": (nparts + 1 - s) // 2, "connections": 2 + s,
                            "busy_ratio": round(random.uniform(0.02, 0.4), 3), "log_bytes": log // 2} for s in range(2)],
                "topics": len(tops), "partitions": nparts, "log_bytes": log,
                "disk": {"total_bytes": 500 * 2**30, "available_bytes": 312 * 2**30},
                "totals": dict(TOTALS), "latency_ms": json.loads(json.dumps(LATENCY))}
    if parts == ["topics"] and method == "GET":
        return {"topics": [{"name": n, "partitions": len(t["parts"]), "internal": t["internal"],
                            "messages": sum(p["high_watermark"] - p["log_start_offset"] for p in part_json(t)),
                            "size_bytes": sum(p["size_bytes"] for p in part_json(t))} for n, t in TOPICS.items()]}
    if parts == ["topics"] and method == "POST":
        name, n = body.get("name", ""), body.get("partitions")
        need(re.fullmatch(r"[A-Za-z0-9._-]{1,249}", name or ""), 400, 17, "INVALID_TOPIC_EXCEPTION",
             f"invalid topic name '{name}'")
        need(name not in TOPICS, 400, 36, "TOPIC_ALREADY_EXISTS", f"topic '{name}' already exists")
        need(isinstance(n, int) and n >= 1, 400, 37, "INVALID_PARTITIONS", "partitions must be >= 1")
        check_configs(body.get("configs") or {})
        new_topic(name, n, body.get("configs"))
        return {"ok": True, "name": name}
    if len(parts) >= 2 and parts[0] == "topics":
        t = topic_of(parts[1])
        if len(parts) == 2 and method == "GET":
            cfgs = [{"name": k, "value": t["configs"].get(k, v), "read_only": False, "sensitive": False,
                     "source": "DYNAMIC_TOPIC_CONFIG" if k in t["configs"] else "DEFAULT_CONFIG"}
                    for k, v in DEFAULTS.items()]
            return {"name": parts[1], "partitions": part_json(t), "configs": cfgs}
        if len(parts) == 2 and method == "DELETE":
            del TOPICS[parts[1]]
            return {"ok": True}
        if parts[2:] == ["configs"] and method == "POST":
            check_configs(list(body.get("set") or {}) + list(body.get("delete") or []))
            t["configs"].update(body.get("set") or {})
            for k in body.get("delete") or []:
                t["configs"].pop(k, None)
            return {"ok": True}
        if parts[2:] == ["delete-records"] and method == "POST":
            p = body.get("partition")
            need(isinstance(p, int) and 0 <= p < len(t["parts"]), 400, 3, "UNKNOWN_TOPIC_OR_PARTITION", f"no partition {p}")
            part, off = t["parts"][p], body.get("offset", -1)
            hw = len(part["records"])
            off = hw if off == -1 else off
            need(0 <= off <= hw, 400, 1, "OFFSET_OUT_OF_RANGE", f"offset {off} is beyond the high watermark {hw}")
            part["log_start"] = max(part["log_start"], off)
            return {"ok": True, "low_watermark": part["log_start"]}
        if len(parts) == 5 and parts[2] == "partitions" and parts[4] == "records" and method == "GET":
            need(parts[3].isdigit() and int(parts[3]) < len(t["parts"]), 404, 3, "UNKNOWN_TOPIC_OR_PARTITION",
                 f"no partition {parts[3]}")
            part = t["parts"][int(parts[3])]
            ls, hw = part["log_start"], len(part["records"])
            limit = max(1, min(1000, int(q.get("limit", ["50"])[0])))
            if "offset" in q:
                start = int(q["offset"][0])
                need(ls <= start <= hw, 400, 1, "OFFSET_OUT_OF_RANGE", f"offset {start} not in [{ls}, {hw}]")
            elif "timestamp" in q:
                ts = int(q["timestamp"][0])
                start = next((r["offset"] for r in part["records"][ls:] if r["timestamp"] >= ts), hw)
            else:
                start = max(ls, hw - limit) if q.get("from", ["earliest"])[0] == "latest" else ls
            recs = part["records"][start:start + limit]
            return {"topic": parts[1], "partition": int(parts[3]), "log_start_offset": ls, "high_watermark": hw,
                    "last_stable_offset": hw, "next_offset": start + len(recs), "records": recs}
    if parts == ["groups"] and method == "GET":
        return {"groups": [{k: v for k, v in group_json(gid, g).items() if k not in ("offsets",)}
                           | {"members": len(g["members"])} for gid, g in GROUPS.items()]}
    if len(parts) >= 2 and parts[0] == "groups":
        gid = parts[1]
        need(gid in GROUPS, 404, 69, "GROUP_ID_NOT_FOUND", f"group {gid} does not exist")
        g = GROUPS[gid]
        if len(parts) == 2 and method == "GET":
            return group_json(gid, g)
        if len(parts) == 2 and method == "DELETE":
            need(not g["members"], 400, 68, "NON_EMPTY_GROUP", f"group {gid} has {len(g['members'])} active members")
            del GROUPS[gid]
            return {"ok": True}
        if parts[2:] == ["reset-offsets"] and method == "POST":
            need(not g["members"], 400, 25, "UNKNOWN_MEMBER_ID", "stop the group's consumers before resetting offsets")
            mode, val, out = body.get("mode"), body.get("value"), []
            for (t, p), off in sorted(g["offsets"].items()):
                if body.get("topic") not in (None, t) or (body.get("partitions") and p not in body["partitions"]):
                    continue
                part = topic_of(t)["parts"][p]
                ls, hw = part["log_start"], len(part["records"])
                new = {"earliest": ls, "latest": hw, "offset": val, "shift": off + (val or 0),
                       "timestamp": next((r["offset"] for r in part["records"][ls:] if r["timestamp"] >= (val or 0)), hw)
                       }.get(mode)
                need(new is not None, 400, 42, "INVALID_REQUEST", f"bad mode {mode} or missing value")
                g["offsets"][(t, p)] = max(ls, min(hw, new))
                out.append({"topic": t, "partition": p, "offset": g["offsets"][(t, p)]})
            return {"ok": True, "offsets": out}
    if parts == ["transactions"] and method == "GET":
        txn = lambda tid, state, pid, epoch, timeout, parts: {"transactional_id": tid, "state": state, "producer_id": pid,
            "producer_epoch": epoch, "timeout_ms": timeout, "partitions": [{"topic": t, "partition": p} for t, p in parts]}
        prod = lambda t, p, pid, seq, age, start: {"topic": t, "partition": p, "producer_id": pid, "producer_epoch": 0,
            "last_sequence": seq, "last_timestamp": now_ms() - age, "current_txn_start_offset": start}
        return {"transactions": [txn("payments-tx", "Ongoing", 1234, 0, 60000, [("payments", 0), ("payments", 1)]),
                                 txn("idle-tx", "Empty", 77, 3, 900000, [])],
                "producers": [prod("payments", 0, 1234, 9, 5000, 10), prod("orders", 1, 88, 41, 60000, -1)]}
    need(False, 404, -1, "NOT_FOUND", f"no route {method} {path}")

class Handler(BaseHTTPRequestHandler):
    def send(self, status, ctype, data):
        self.send_response(status)
        self.send_header("Content-Type", ctype + "; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(data)

    def route(self, method):
        url = urlparse(self.path)
        if method == "GET" and url.path in STATIC:
            name, ctype = STATIC[url.path]
            with open(os.path.join(CONSOLE, name), "rb") as f:
                return self.send(200, ctype, f.read())
        try:
            need(url.path.startswith("/api/"), 404, -1, "NOT_FOUND", "not found")
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}"
            try:
                body = json.loads(raw)
            except ValueError:
                body = None
            need(isinstance(body, dict), 400, 42, "INVALID_REQUEST", "request body must be a JSON object")
            with LOCK:
                status, out = 200, handle(method, url.path, parse_qs(url.query), body)
        except ApiErr as e:
            status, out = e.args
        self.send(status, "application/json", json.dumps(out).encode())

    do_GET = do_POST = do_DELETE = lambda self: self.route(self.command)
    log_message = lambda self, *args: None

if __name__ == "__main__":
    seed()
    threading.Thread(target=traffic, daemon=True).start()
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 18080
    print(f"console mock on http://127.0.0.1:{port}/", flush=True)
    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
