#!/usr/bin/env python3
"""Abuse against a running tickcast (stdlib only): idle connections, slow
headers, hostile bodies. Prints what happened and the server's peak RSS.
Usage: tests/load/abuse.py PORT PID   (see tests/load/abuse.sh)"""
import http.client
import json
import resource
import socket
import sys
import time

port, pid = int(sys.argv[1]), int(sys.argv[2])
failures = []


def rss_mib():
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def request(method, path, body=b"", content_type="application/json"):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request(method, path, body=body, headers={"Content-Type": content_type})
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, data


def expect(name, status, data, wanted):
    ok = status == wanted
    if 400 <= status < 500:
        try:
            body = json.loads(data)
            ok = ok and body.get("success") is False and "error" in body and "code" in body
        except ValueError:
            ok = False
    print(f"{'ok ' if ok else 'BAD'} {name}: {status}")
    if not ok:
        failures.append(name)


# 1. Idle connections.
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
wanted = min(5000, hard - 200)
idle = []
for _ in range(wanted):
    s = socket.create_connection(("127.0.0.1", port))
    idle.append(s)
status, _ = request("GET", "/healthz")
expect(f"health while {len(idle)} connections sit idle", status, b"", 200)
print(f"   server peak RSS with {len(idle)} idle connections: {rss_mib():.0f} MiB")
time.sleep(3)  # past the 2 s header read timeout the script starts with
closed = 0
for s in idle:
    s.settimeout(5)
    try:
        closed += s.recv(1) == b""
    except OSError:
        closed += 1
    s.close()
print(f"{'ok ' if closed == len(idle) else 'BAD'} idle connections closed by the server: {closed}/{len(idle)}")
if closed != len(idle):
    failures.append("idle connections closed")

# 2. Slow clients: 100 sending one header byte every 250 ms.
slow = [socket.create_connection(("127.0.0.1", port)) for _ in range(100)]
head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Padding: " + b"a" * 40 + b"\r\n\r\n"
cut = set()
for i, byte in enumerate(head):
    for k, s in enumerate(slow):
        if k in cut:
            continue
        try:
            s.send(bytes([byte]))
        except OSError:
            cut.add(k)
    time.sleep(0.25)
for k, s in enumerate(slow):
    s.settimeout(1)
    try:
        data = s.recv(64)
        if data == b"" or not data.startswith(b"HTTP/1.1 200"):
            cut.add(k)
    except OSError:
        cut.add(k)
    s.close()
print(f"{'ok ' if len(cut) == len(slow) else 'BAD'} slow clients cut off: {len(cut)}/{len(slow)}")
if len(cut) != len(slow):
    failures.append("slow clients")

# 3. Hostile bodies (default 1 MiB limit).
predict = "/api/enhanced_ml_models/predict/lstm_predictor"
prices = ",".join(["100.0"] * 100_000)
cases = [
    ("body just over 1 MiB", predict, b'{"price_data": [' + b"1.0," * 262_144 + b"1.0]}", "application/json", 413),
    ("100 000-deep nested JSON", predict, b"[" * 100_000 + b"]" * 100_000, "application/json", 400),
    ("invalid UTF-8", predict, b'{"symbol": "\xff\xfe"}', "application/json", 400),
    ("100 000 symbols", "/api/production_api/portfolio_data",
     json.dumps({"symbols": ["AAPL"] * 100_000}).encode(), "application/json", 400),
    ("100 000 models", "/api/enhanced_ml_models/batch_predict",
     json.dumps({"models": [f"m{i}" for i in range(100_000)]}).encode(), "application/json", 400),
    ("100 000 prices (valid)", predict, ('{"price_data": [%s]}' % prices).encode(), "application/json", 200),
    ("unknown fields", predict, b'{"price_data": [1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22], "x": {"y": 1}}',
     "application/json", 200),
    ("text/plain body", predict, b'{"symbol": "AAPL"}', "text/plain", 415),
    ("form body", predict, b"symbol=AAPL", "application/x-www-form-urlencoded", 415),
]
for name, path, body, ctype, wanted in cases:
    status, data = request("POST", path, body, ctype)
    expect(name, status, data, wanted)

status, _ = request("GET", "/healthz")
expect("health afterwards", status, b"", 200)
print(f"server peak RSS over the run: {rss_mib():.0f} MiB")
sys.exit(1 if failures else 0)
