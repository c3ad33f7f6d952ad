"""PyTorch CPU reference for the LSTM and Transformer training benchmarks.

    pip install torch numpy
    python3 benches/reference/torch_train.py [--layers N] [--epochs 20] [--threads 2] [--json]

Data: AAPL's last 1000 adjusted closes from data/sp500_dataset.csv.gz, turned
into 999 log returns, z-scored with their own mean and std (ddof=0), and cut
into sliding windows: 20 returns -> next return for the LSTM (979 windows),
30 -> next for the Transformer (969 windows).

For each model it measures, in float32 on 2 threads (or --threads):
  - training: AdamW(lr=1e-3, weight_decay=0.01), batch 64, reshuffled every
    epoch, MSE loss, gradient norm clipped to 1.0; seconds per epoch (median)
    and in total, plus the mean training loss of the first and last epoch;
  - inference: one window (batch 1) under torch.no_grad(), median of 1000
    calls, in microseconds.
Data preparation is outside every timed region.
"""
import argparse
import csv
import gzip
import json
import math
import pathlib
import statistics
import time

import numpy as np
import torch
from torch import nn

ROOT = pathlib.Path(__file__).resolve().parents[2]
SEED = 7
THREADS = 2
BATCH = 64


def load_returns(symbol="AAPL", closes=1000):
    """Z-scored log returns of the last `closes` closes (float64 until the end)."""
    with gzip.open(ROOT / "data" / "sp500_dataset.csv.gz", "rt", newline="") as f:
        rows = csv.DictReader(f)
        prices = [float(r[symbol]) for r in rows if r[symbol] not in ("", "nan", "NaN")]
    prices = np.array(prices[-closes:], dtype=np.float64)
    r = np.diff(np.log(prices))
    return (r - r.mean()) / r.std()  # np.std defaults to ddof=0


def windows(z, w):
    """x[i] = z[i:i+w] as [w, 1], y[i] = z[i+w]; len(z) - w pairs."""
    n = len(z) - w
    x = np.stack([z[i:i + w] for i in range(n)])[:, :, None]
    y = z[w:w + n]
    return torch.tensor(x, dtype=torch.float32), torch.tensor(y, dtype=torch.float32)


class Lstm(nn.Module):
    def __init__(self, hidden=50):
        super().__init__()
        self.lstm = nn.LSTM(input_size=1, hidden_size=hidden, num_layers=1, batch_first=True)
        self.head = nn.Linear(hidden, 1)

    def forward(self, x):
        _, (h, _) = self.lstm(x)
        return self.head(h[-1]).squeeze(-1)  # h[-1]: last layer's final hidden state


def sinusoidal(length, d_model):
    """Fixed Vaswani et al. encoding: sin on even channels, cos on odd ones."""
    pos = torch.arange(length, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float32) * (-math.log(10000.0) / d_model))
    pe = torch.zeros(length, d_model)
    pe[:, 0::2] = torch.sin(pos * freq)
    pe[:, 1::2] = torch.cos(pos * freq)
    return pe


class Transformer(nn.Module):
    def __init__(self, window, layers, d_model=64):
        super().__init__()
        self.proj = nn.Linear(1, d_model)
        # A buffer, not a parameter: the encoding is fixed and must not be trained.
        self.register_buffer("pe", sinusoidal(window, d_model))
        layer = nn.TransformerEncoderLayer(d_model=d_model, nhead=4, dim_feedforward=128, dropout=0.0,
                                           batch_first=True, activation="relu", norm_first=False)
        # Nested tensors only help with padding masks, which fixed-length windows never have.
        self.encoder = nn.TransformerEncoder(layer, num_layers=layers, enable_nested_tensor=False)
        self.head = nn.Linear(d_model, 1)

    def forward(self, x):
        h = self.encoder(self.proj(x) + self.pe)
        return self.head(h[:, -1]).squeeze(-1)


def train(model, x, y, epochs):
    """Returns (per-epoch seconds, total seconds, per-epoch mean loss)."""
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
    loss_fn = nn.MSELoss()
    gen = torch.Generator().manual_seed(SEED)  # own generator: shuffles don't depend on model init
    n = len(x)
    times, losses = [], []
    model.train()
    start = time.perf_counter()
    for _ in range(epochs):
        t0 = time.perf_counter()
        total = 0.0
        for idx in torch.randperm(n, generator=gen).split(BATCH):
            opt.zero_grad()
            loss = loss_fn(model(x[idx]), y[idx])
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            total += loss.item() * len(idx)  # weight by batch size: the last batch is short
        times.append(time.perf_counter() - t0)
        losses.append(total / n)
    return times, time.perf_counter() - start, losses


def infer_us(model, x, calls=1000, warmup=50):
    """Median latency of a batch-1 forward pass, in microseconds."""
    model.eval()
    one = x[:1]
    with torch.no_grad():
        for _ in range(warmup):  # first calls pay for allocator and kernel setup
            model(one)
        times = []
        for _ in range(calls):
            t0 = time.perf_counter()
            model(one)
            times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e6


def bench(make, x, y, epochs):
    torch.manual_seed(SEED)  # reseed per model so each result is independent of run order
    model = make()
    times, total, losses = train(model, x, y, epochs)
    return {"windows": len(x), "sec_per_epoch": statistics.median(times), "total_sec": total,
            "loss_first": losses[0], "loss_last": losses[-1], "infer_us": infer_us(model, x)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--layers", type=int, default=2, help="Transformer encoder layers")
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--threads", type=int, default=THREADS, help="torch.set_num_threads")
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    z = load_returns()
    x20, y20 = windows(z, 20)
    x30, y30 = windows(z, 30)

    lstm = bench(Lstm, x20, y20, args.epochs)
    tf = {"layers": args.layers, **bench(lambda: Transformer(30, args.layers), x30, y30, args.epochs)}
    out = {"torch_version": torch.__version__, "threads": torch.get_num_threads(), "lstm": lstm, "transformer": tf}

    if args.json:
        print(json.dumps(out, indent=2))
        return
    print(f"torch {out['torch_version']}, {out['threads']} threads, {args.epochs} epochs, batch {BATCH}")
    print(f"{'model':<16}{'windows':>8}{'s/epoch':>10}{'total s':>10}{'loss first':>12}{'loss last':>12}{'infer us':>10}")
    for name, r in [("lstm h50", lstm), (f"transformer L{args.layers}", tf)]:
        print(f"{name:<16}{r['windows']:>8}{r['sec_per_epoch']:>10.4f}{r['total_sec']:>10.3f}"
              f"{r['loss_first']:>12.5f}{r['loss_last']:>12.5f}{r['infer_us']:>10.1f}")


if __name__ == "__main__":
    main()
