"""The optimiser over HTTP against PyPortfolioOpt in-process, side by side.

    cargo build --release
    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 \
        python benches/optimizer_http.py [--runs 15] [--binary target/release/tickcast]

Starts the release binary offline (local data only) with a body limit large
enough for 500 series of 1260 closes (about 6 MB of JSON), then for each
case (100 x 756 and 500 x 1260, the closes of benches/optimizer.rs) and
method (min_variance, max_sharpe) alternates: one POST of the closes to
/api/enhanced_ml_models/predict/realtime_portfolio_optimizer on a kept-alive
connection (the body encoded once beforehand; the time covers sending it,
the service parsing and optimising, and reading the answer), then one
PyPortfolioOpt run from the same closes (returns, mean, sample covariance,
solve) with its default solver, then one with cvxpy's Clarabel. Prints the
medians, the ratios (reference / tickcast) and the largest weight
difference between the answers.
"""
import argparse
import http.client
import json
import os
import pathlib
import socket
import statistics
import subprocess
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent / "reference"))
import pypfopt_bench as ref  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]
URL = "/api/enhanced_ml_models/predict/realtime_portfolio_optimizer"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(binary, port):
    env = dict(os.environ)
    env.update(
        {
            "TICKCAST_SERVER__PORT": str(port),
            "TICKCAST_SERVER__BODY_LIMIT_BYTES": str(16 * 1024 * 1024),
            "TICKCAST_MARKET__PROVIDERS": '["local"]',
        }
    )
    proc = subprocess.Popen([binary], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(300):
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", "/readyz")
            if conn.getresponse().status == 200:
                return proc
        except OSError:
            pass
        time.sleep(0.1)
    proc.kill()
    sys.exit("tickcast did not become ready")


def post(conn, body):
    start = time.perf_counter()
    conn.request("POST", URL, body=body, headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    data = resp.read()
    elapsed = time.perf_counter() - start
    if resp.status != 200:
        sys.exit(f"HTTP {resp.status}: {data[:300]!r}")
    return elapsed, json.loads(data)


def timed(fn, *args):
    start = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - start, out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--binary", default=str(ROOT / "target" / "release" / "tickcast"))
    args = parser.parse_args()
    port = free_port()
    proc = start(args.binary, port)
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        for assets, days in [(100, 756), (500, 1260)]:
            df = ref.synthetic(assets, days)
            closes = {sym: df[sym].tolist() for sym in df.columns}
            for method, fn in [("min_variance", ref.min_variance), ("max_sharpe", ref.max_sharpe)]:
                body = json.dumps({"price_data": closes, "params": {"method": method}}, separators=(",", ":")).encode()
                post(conn, body)  # warm-up
                http_t, default_t, clarabel_t = [], [], []
                default_failed = None
                answer, weights = None, None
                for _ in range(args.runs):
                    t, answer = post(conn, body)
                    http_t.append(t)
                    if default_failed is None:
                        try:
                            t, _ = timed(fn, df)
                            default_t.append(t)
                        except Exception as exc:  # noqa: BLE001
                            default_failed = str(exc).replace("\n", " ")[:120]
                    t, weights = timed(fn, df, "CLARABEL")
                    clarabel_t.append(t)
                ours = statistics.median(http_t)
                diff = max(abs(answer["allocation"][s] - weights.get(s, 0.0)) for s in answer["allocation"])
                line = f"{assets}x{days} {method}: tickcast HTTP {ours * 1e3:.2f} ms ({len(body) / 1e6:.1f} MB body)"
                if default_t:
                    d = statistics.median(default_t)
                    line += f"; PyPortfolioOpt default {d * 1e3:.2f} ms ({d / ours:.2f}x)"
                else:
                    line += f"; PyPortfolioOpt default failed: {default_failed}"
                c = statistics.median(clarabel_t)
                line += f"; PyPortfolioOpt CLARABEL {c * 1e3:.2f} ms ({c / ours:.2f}x)"
                line += f"; max |dw| vs CLARABEL {diff:.1e}; median of {args.runs}"
                print(line, flush=True)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


if __name__ == "__main__":
    main()
