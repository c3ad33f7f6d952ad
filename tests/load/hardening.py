#!/usr/bin/env python3
"""The hardening attacks at full size against a running tickcast (stdlib
only), printing the figures docs/performance.md records:

1. lookback flood: 300 optimiser requests over 10 stocks with lookback_days
   9000+i; the server's peak RSS during them;
2. a batch naming 125 000 distinct models (about 930 KB): time to the 400,
   and /healthz latency while it is being refused;
3. 2 000 requests with made-up methods: /metrics size before and after;
4. subscriptions for 2 000 invented callers: how many the store accepted.

Usage: tests/load/hardening.py PORT PID   (see tests/load/hardening.sh)"""
import http.client
import json
import statistics
import sys
import threading
import time

port, pid = int(sys.argv[1]), int(sys.argv[2])
STOCKS = ["AAPL", "MSFT", "JNJ", "KO", "XOM", "JPM", "PG", "WMT", "PEP", "MRK"]


def rss_mib(field="VmRSS:"):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(field):
            return int(line.split()[1]) / 1024
    return 0.0


def request(method, path, body=None, headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    data = json.dumps(body, separators=(",", ":")).encode() if body is not None else None
    conn.request(method, path, body=data, headers={"Content-Type": "application/json", **(headers or {})})
    resp = conn.getresponse()
    payload = resp.read()
    conn.close()
    return resp.status, payload


print(f"start: RSS {rss_mib():.1f} MiB")

# 1. Lookback flood.
started = time.perf_counter()
statuses = set()
for i in range(1, 301):
    status, _ = request("POST", "/api/enhanced_ml_models/predict/realtime_portfolio_optimizer",
                        {"params": {"symbols": STOCKS, "lookback_days": 9000 + i, "method": "equal_weight"}})
    statuses.add(status)
flood_seconds = time.perf_counter() - started
_, health = request("GET", "/api/production_api/health")
cache = json.loads(health)["health"]["history_cache"]
print(f"1. lookback flood: 300 requests in {flood_seconds:.1f} s, statuses {sorted(statuses)}; "
      f"peak RSS {rss_mib('VmHWM:'):.1f} MiB; history cache {cache['entries']} entries, "
      f"{cache.get('bytes', 0) / 2**20:.1f} MiB, {cache['misses']} misses")

# 2. The huge batch, with /healthz polled meanwhile.
names = [format(i, "x") for i in range(125_000)]
body = {"models": names}
size = len(json.dumps(body, separators=(",", ":")))
latencies = []
done = threading.Event()


def poll():
    while not done.is_set():
        t = time.perf_counter()
        request("GET", "/healthz")
        latencies.append((time.perf_counter() - t) * 1000)
        time.sleep(0.002)


poller = threading.Thread(target=poll)
poller.start()
time.sleep(0.05)
refusals = []
for _ in range(5):
    t = time.perf_counter()
    status, payload = request("POST", "/api/enhanced_ml_models/batch_predict", body)
    refusals.append((time.perf_counter() - t) * 1000)
    assert status == 400, payload[:200]
done.set()
poller.join()
print(f"2. batch of 125 000 names ({size / 1000:.0f} KB): 400 in median {statistics.median(refusals):.1f} ms "
      f"(max {max(refusals):.1f} ms over 5, client-side, upload included); /healthz meanwhile: "
      f"median {statistics.median(latencies):.2f} ms, max {max(latencies):.2f} ms over {len(latencies)} polls")

# 3. Made-up methods. The first one adds its label set (method "other",
# status 405) once; the size after it is the baseline.


def made_up(i):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request(f"M{i}X", "/api/catalog/stocks")
    conn.getresponse().read()
    conn.close()


made_up(0)
request("GET", "/metrics")
_, before = request("GET", "/metrics")
for i in range(1, 2000):
    made_up(i)
_, after = request("GET", "/metrics")
print(f"3. /metrics after the first and after 2 000 made-up methods: {len(before) / 1000:.1f} KB -> "
      f"{len(after) / 1000:.1f} KB ({100 * (len(after) - len(before)) / len(before):+.1f} %)")

# 4. Invented callers.
accepted, refused = 0, {}
for i in range(2000):
    status, payload = request("POST", "/api/catalog/subscribe", {"type": "agent", "id": "risk_monitor"},
                              {"X-User-Id": f"caller-{i}"})
    if status == 200:
        accepted += 1
    else:
        code = json.loads(payload).get("code")
        refused[(status, code)] = refused.get((status, code), 0) + 1
print(f"4. subscriptions for 2 000 invented callers: {accepted} accepted, refused {refused}")
print(f"end: RSS {rss_mib():.1f} MiB, peak {rss_mib('VmHWM:'):.1f} MiB")
