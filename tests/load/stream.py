#!/usr/bin/env python3
"""Live feeds under load: CLIENTS WebSocket clients on loopback, spread
over SYMBOLS quote channels, for SECONDS. Prints messages delivered per
second, fan-out latency from the poll (the message's `time`) to the
client, the server's RSS and the upstream polls per channel and interval.
Needs `pip install websockets`. Usage (see tests/load/stream.sh):
tests/load/stream.py PORT PID YAHOO_PORT [CLIENTS SYMBOLS SECONDS POLL_MS]"""
import asyncio
import json
import sys
import time
import urllib.request
from datetime import datetime

from websockets.asyncio.client import connect

port, pid, yahoo = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
clients, symbols, seconds, poll_ms = (int(x) for x in (sys.argv[4:8] + ["1000", "20", "20", "1000"][len(sys.argv[4:8]):]))
latencies, counts, lagged, errors = [], [0], [0], []


def rss_mib(field):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(field):
            return int(line.split()[1]) / 1024
    return 0.0


def upstream_requests():
    with urllib.request.urlopen(f"http://127.0.0.1:{yahoo}/count") as r:
        return sum(json.loads(r.read()).values())


async def client(i, started, stop):
    channel = f"quotes:S{i % symbols}"
    async with connect(f"ws://127.0.0.1:{port}/api/stream", max_queue=None) as ws:
        await ws.send(json.dumps({"action": "subscribe", "channels": [channel]}))
        await started.wait()
        while not stop.is_set():
            try:
                raw = await asyncio.wait_for(ws.recv(), 2)
            except asyncio.TimeoutError:
                continue
            now = time.time()
            m = json.loads(raw)
            if m["type"] == "quote":
                if stop.is_set():
                    break
                if started.measuring:
                    counts[0] += 1
                    sent = datetime.fromisoformat(m["time"].replace("Z", "+00:00")).timestamp()
                    latencies.append(now - sent)
            elif m["type"] == "lagged":
                lagged[0] += m["missed"]
            elif m["type"] == "error":
                errors.append(m)


async def main():
    started, stop = asyncio.Event(), asyncio.Event()
    started.measuring = False
    tasks = []
    for i in range(clients):
        tasks.append(asyncio.create_task(client(i, started, stop)))
        if i % 100 == 99:
            await asyncio.sleep(0.05)
    started.set()
    await asyncio.sleep(3)  # every client connected and past its first quote
    started.measuring = True
    before, t0 = upstream_requests(), time.time()
    await asyncio.sleep(seconds)
    started.measuring = False
    elapsed, polls = time.time() - t0, upstream_requests() - before
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    latencies.sort()
    pct = lambda p: latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000
    intervals = elapsed / (poll_ms / 1000)
    print(f"{clients} clients over {symbols} symbols for {elapsed:.1f} s, poll every {poll_ms} ms")
    print(f"messages delivered: {counts[0]} ({counts[0] / elapsed:.0f}/s), lagged (skipped): {lagged[0]}, errors: {len(errors)}")
    print(f"fan-out latency poll -> client: p50 {pct(0.5):.1f} ms, p99 {pct(0.99):.1f} ms, max {latencies[-1] * 1000:.1f} ms")
    print(f"server RSS: {rss_mib('VmRSS:'):.0f} MiB now, {rss_mib('VmHWM:'):.0f} MiB peak")
    print(f"upstream requests: {polls} in {intervals:.1f} intervals = {polls / intervals / symbols:.2f} per symbol per interval")


asyncio.run(main())
