"""Many idle client connections against one broker: what they cost it.

Usage: connections.py HOST:PORT COUNT PID

Opens COUNT TCP connections to the broker, each asking ApiVersions (v0) and
then Metadata (v1, no topics) as a client does on connecting, and keeps them
all open. Then every connection asks Metadata again at once and the time until
all are answered is taken. Prints one JSON object: connections opened, errors,
seconds to open and greet them all, seconds for the round on all at once, and
the broker's resident memory (VmRSS of PID) before and with them open.
"""
import json
import socket
import struct
import sys
import time


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def request(api_key, version, correlation_id, body=b""):
    client_id = b"connections"
    header = struct.pack(">hhih", api_key, version, correlation_id, len(client_id)) + client_id
    payload = header + body
    return struct.pack(">i", len(payload)) + payload


def read_exact(sock, n):
    data = bytearray()
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("closed by the broker")
        data += chunk
    return bytes(data)


def answer(sock, correlation_id):
    (size,) = struct.unpack(">i", read_exact(sock, 4))
    frame = read_exact(sock, size)
    (got,) = struct.unpack(">i", frame[:4])
    if got != correlation_id:
        raise ValueError(f"correlation id {got}, expected {correlation_id}")
    return frame


API_VERSIONS = 18
METADATA = 3
NO_TOPICS = struct.pack(">i", 0)  # Metadata v1: an empty array asks for no topics


def main(address, count, pid):
    host, port = address.rsplit(":", 1)
    before = rss_kib(pid)
    sockets = []
    errors = 0
    started = time.monotonic()
    for i in range(count):
        try:
            s = socket.create_connection((host, int(port)), timeout=30)
            s.sendall(request(API_VERSIONS, 0, 1))
            answer(s, 1)
            s.sendall(request(METADATA, 1, 2, NO_TOPICS))
            answer(s, 2)
            sockets.append(s)
        except (OSError, ValueError) as e:
            errors += 1
            if errors == 1:
                print(f"connection {i}: {e}", file=sys.stderr)
    opened_s = time.monotonic() - started
    with_them = rss_kib(pid)
    started = time.monotonic()
    for s in sockets:
        s.sendall(request(METADATA, 1, 3, NO_TOPICS))
    for s in sockets:
        try:
            answer(s, 3)
        except (OSError, ValueError):
            errors += 1
    round_s = time.monotonic() - started
    for s in sockets:
        s.close()
    print(
        json.dumps(
            {
                "connections": len(sockets),
                "errors": errors,
                "open_and_greet_s": round(opened_s, 3),
                "metadata_round_on_all_s": round(round_s, 4),
                "rss_before_kib": before,
                "rss_with_connections_kib": with_them,
                "rss_per_connection_kib": round((with_them - before) / max(len(sockets), 1), 2),
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
