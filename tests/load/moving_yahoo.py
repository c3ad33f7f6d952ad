#!/usr/bin/env python3
"""A stand-in for Yahoo's chart API on loopback (stdlib only): every
request for /v8/finance/chart/<SYMBOL> answers two daily bars whose last
price rises by one cent per request for that symbol, so every poll is a
change. GET /count answers the requests served per symbol as JSON.
Usage: tests/load/moving_yahoo.py PORT"""
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

counts = {}
lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        if self.path.startswith("/count"):
            with lock:
                body = json.dumps(counts).encode()
        else:
            symbol = self.path.split("?")[0].rsplit("/", 1)[-1]
            with lock:
                counts[symbol] = counts.get(symbol, 0) + 1
                n = counts[symbol]
            price = 100.0 + n / 100.0
            now = int(time.time())
            body = json.dumps({"chart": {"result": [{
                "meta": {"currency": "USD", "symbol": symbol, "regularMarketPrice": price},
                "timestamp": [now - 86400, now],
                "indicators": {
                    "quote": [{"open": [100.0, price], "high": [100.0, price], "low": [100.0, price],
                               "close": [100.0, price], "volume": [1000, 1000]}],
                    "adjclose": [{"adjclose": [100.0, price]}],
                },
            }], "error": None}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
