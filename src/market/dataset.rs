//! Price files: the embedded daily closes (wide CSV, one column per symbol)
//! and user files in Yahoo's download format.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use chrono::NaiveDate;
use flate2::read::GzDecoder;

use super::prices::Candle;

/// Daily adjusted closes of 20 US large caps, 1990-01-02..2022-12-28.
const EMBEDDED_STOCKS: &[u8] = include_bytes!("../../data/sp500_dataset.csv.gz");
/// The S&P 500 index over the same dates, served as `^GSPC`.
const EMBEDDED_INDEX: &[u8] = include_bytes!("../../data/sp500_index.csv.gz");
/// Daily closes of Bitcoin and Ethereum in tether (Binance's USDT-margined
/// perpetuals), every day 2021-01-01..2026-09-09, served as `BTC-USD` and
/// `ETH-USD`.
const EMBEDDED_CRYPTO: &[u8] = include_bytes!("../../data/crypto_dataset.csv.gz");

/// Bars per symbol, oldest first.
pub type PriceTable = BTreeMap<String, Vec<Candle>>;

/// A file that could not be read, naming where.
#[derive(Debug, thiserror::Error)]
#[error("{file} line {line}: {reason}")]
pub struct PriceFileError {
    pub file: String,
    pub line: u64,
    pub reason: String,
}

/// The names of the embedded series, for listings.
const EMBEDDED_NAMES: [(&str, &str); 23] = [
    ("AAPL", "Apple Inc."),
    ("AMD", "Advanced Micro Devices, Inc."),
    ("BAC", "Bank of America Corporation"),
    ("BBY", "Best Buy Co., Inc."),
    ("CVX", "Chevron Corporation"),
    ("GE", "General Electric Company"),
    ("HD", "The Home Depot, Inc."),
    ("JNJ", "Johnson & Johnson"),
    ("JPM", "JPMorgan Chase & Co."),
    ("KO", "The Coca-Cola Company"),
    ("LLY", "Eli Lilly and Company"),
    ("MRK", "Merck & Co., Inc."),
    ("MSFT", "Microsoft Corporation"),
    ("PEP", "PepsiCo, Inc."),
    ("PFE", "Pfizer Inc."),
    ("PG", "The Procter & Gamble Company"),
    ("RRC", "Range Resources Corporation"),
    ("UNH", "UnitedHealth Group Incorporated"),
    ("WMT", "Walmart Inc."),
    ("XOM", "Exxon Mobil Corporation"),
    ("^GSPC", "S&P 500"),
    ("BTC-USD", "Bitcoin USD"),
    ("ETH-USD", "Ethereum USD"),
];

/// The name of an embedded series.
pub fn embedded_name(symbol: &str) -> Option<&'static str> {
    EMBEDDED_NAMES
        .iter()
        .find(|(s, _)| *s == symbol)
        .map(|(_, name)| *name)
}

/// The stocks and the index built into the binary: what the networks are
/// pretrained on and the catalog's evaluation measures.
pub fn embedded() -> Result<PriceTable, PriceFileError> {
    let mut table = parse_wide_closes(GzDecoder::new(EMBEDDED_STOCKS), "sp500_dataset.csv.gz")?;
    let index = parse_wide_closes(GzDecoder::new(EMBEDDED_INDEX), "sp500_index.csv.gz")?;
    for (column, bars) in index {
        // The index file names its column SP500; Yahoo calls it ^GSPC.
        let symbol = if column == "SP500" {
            "^GSPC".to_string()
        } else {
            column
        };
        table.insert(symbol, bars);
    }
    Ok(table)
}

/// The crypto pairs built into the binary (`BTC-USD`, `ETH-USD`).
pub fn embedded_crypto() -> Result<PriceTable, PriceFileError> {
    parse_wide_closes(GzDecoder::new(EMBEDDED_CRYPTO), "crypto_dataset.csv.gz")
}

/// Every series built into the binary, as the local provider serves them.
pub fn embedded_all() -> Result<PriceTable, PriceFileError> {
    let mut table = embedded()?;
    table.extend(embedded_crypto()?);
    Ok(table)
}

/// `Date,SYM1,SYM2,...` with one close per cell; an empty cell means no bar.
pub fn parse_wide_closes(reader: impl Read, file: &str) -> Result<PriceTable, PriceFileError> {
    let mut csv = csv::ReaderBuilder::new().from_reader(reader);
    let err = |line: u64, reason: String| PriceFileError {
        file: file.to_string(),
        line,
        reason,
    };
    let headers = csv.headers().map_err(|e| err(1, e.to_string()))?.clone();
    if headers.get(0) != Some("Date") || headers.len() < 2 {
        return Err(err(1, "expected a header Date,<symbol>,...".into()));
    }
    let symbols: Vec<String> = headers.iter().skip(1).map(str::to_string).collect();
    let mut table: PriceTable = symbols.iter().map(|s| (s.clone(), Vec::new())).collect();
    let mut last_date: Option<NaiveDate> = None;
    for record in csv.records() {
        let record =
            record.map_err(|e| err(e.position().map_or(0, |p| p.line()), e.to_string()))?;
        let line = record.position().map_or(0, |p| p.line());
        let date = parse_date(record.get(0).unwrap_or_default()).map_err(|r| err(line, r))?;
        if last_date.is_some_and(|d| d >= date) {
            return Err(err(
                line,
                format!("date {date} is not after the previous row"),
            ));
        }
        last_date = Some(date);
        for (symbol, cell) in symbols.iter().zip(record.iter().skip(1)) {
            if cell.trim().is_empty() {
                continue;
            }
            let close = parse_price(cell).map_err(|r| err(line, format!("{symbol}: {r}")))?;
            if let Some(bars) = table.get_mut(symbol) {
                bars.push(Candle::daily_close(date, close));
            }
        }
    }
    Ok(table)
}

/// A file in Yahoo's download format: `Date,Open,High,Low,Close,Adj Close,Volume`.
/// Rows of `null`s (days Yahoo has no bar for) are skipped; anything else
/// malformed rejects the file.
pub fn parse_yahoo_csv(reader: impl Read, file: &str) -> Result<Vec<Candle>, PriceFileError> {
    const HEADER: [&str; 7] = [
        "Date",
        "Open",
        "High",
        "Low",
        "Close",
        "Adj Close",
        "Volume",
    ];
    let mut csv = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(reader);
    let err = |line: u64, reason: String| PriceFileError {
        file: file.to_string(),
        line,
        reason,
    };
    let headers = csv.headers().map_err(|e| err(1, e.to_string()))?.clone();
    if headers.iter().collect::<Vec<_>>() != HEADER {
        return Err(err(1, format!("expected the header {}", HEADER.join(","))));
    }
    let mut bars: Vec<Candle> = Vec::new();
    for record in csv.records() {
        let record =
            record.map_err(|e| err(e.position().map_or(0, |p| p.line()), e.to_string()))?;
        let line = record.position().map_or(0, |p| p.line());
        if record
            .iter()
            .skip(1)
            .any(|cell| cell.eq_ignore_ascii_case("null"))
        {
            continue;
        }
        let field = |i: usize| record.get(i).unwrap_or_default();
        let date = parse_date(field(0)).map_err(|r| err(line, r))?;
        if bars.last().is_some_and(|b| b.date() >= date) {
            return Err(err(
                line,
                format!("date {date} is not after the previous row"),
            ));
        }
        let price =
            |i: usize| parse_price(field(i)).map_err(|r| err(line, format!("{}: {r}", HEADER[i])));
        let volume: f64 = field(6)
            .parse()
            .ok()
            .filter(|v: &f64| v.is_finite() && *v >= 0.0)
            .ok_or_else(|| err(line, format!("Volume: {:?} is not a count", field(6))))?;
        let mut bar = Candle::daily_close(date, price(5)?);
        bar.open = Some(price(1)?);
        bar.high = Some(price(2)?);
        bar.low = Some(price(3)?);
        bar.volume = Some(volume);
        bars.push(bar);
    }
    if bars.is_empty() {
        return Err(err(2, "no price rows".into()));
    }
    Ok(bars)
}

/// Reads every `<SYMBOL>.csv` in `dir`. A missing directory yields nothing;
/// a malformed file is skipped with a warning naming file and line.
pub fn load_price_dir(dir: &Path) -> PriceTable {
    price_files(dir)
        .into_iter()
        .filter_map(|(symbol, path)| load_price_file(&symbol, &path).map(|bars| (symbol, bars)))
        .collect()
}

/// The `<SYMBOL>.csv` files in `dir` with their (normalised) symbols, sorted
/// by path.
pub fn price_files(dir: &Path) -> Vec<(String, std::path::PathBuf)> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
        Err(e) => {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot read the price directory; skipped");
            return Vec::new();
        }
    };
    let mut paths: Vec<_> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    paths
        .into_iter()
        .filter(|path| path.extension().and_then(|e| e.to_str()) == Some("csv"))
        .filter_map(|path| {
            let symbol = path
                .file_stem()
                .and_then(|s| s.to_str())
                .map(super::symbols::normalize)?;
            Some((symbol, path))
        })
        .collect()
}

/// One user price file; `None` (with a warning) when it cannot be read.
pub fn load_price_file(symbol: &str, path: &Path) -> Option<Vec<Candle>> {
    let name = path.display().to_string();
    let parsed = std::fs::File::open(path)
        .map_err(|e| PriceFileError {
            file: name.clone(),
            line: 0,
            reason: e.to_string(),
        })
        .and_then(|f| parse_yahoo_csv(std::io::BufReader::new(f), &name));
    match parsed {
        Ok(bars) => {
            tracing::info!(file = %name, symbol = %symbol, bars = bars.len(), "loaded price file");
            Some(bars)
        }
        Err(e) => {
            tracing::warn!(error = %e, "skipped malformed price file");
            None
        }
    }
}

fn parse_date(raw: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(raw.trim(), "%Y-%m-%d")
        .map_err(|_| format!("{raw:?} is not a YYYY-MM-DD date"))
}

fn parse_price(raw: &str) -> Result<f64, String> {
    match raw.trim().parse::<f64>() {
        Ok(p) if p.is_finite() && p > 0.0 => Ok(p),
        _ => Err(format!("{raw:?} is not a positive price")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_dataset_has_20_stocks_and_the_index() {
        let table = embedded().unwrap();
        assert_eq!(table.len(), 21);
        let aapl = &table["AAPL"];
        assert_eq!(aapl.len(), 8313);
        assert_eq!(aapl[0].date().to_string(), "1990-01-02");
        assert_eq!(aapl[0].close, 0.264);
        assert_eq!(aapl.last().unwrap().date().to_string(), "2022-12-28");
        assert_eq!(aapl.last().unwrap().close, 125.674);
        assert_eq!(table["^GSPC"].last().unwrap().close, 3783.22);
    }

    #[test]
    fn embedded_crypto_trades_every_day() {
        let table = embedded_crypto().unwrap();
        assert_eq!(table.keys().collect::<Vec<_>>(), ["BTC-USD", "ETH-USD"]);
        for bars in table.values() {
            assert_eq!(bars.len(), 2078);
            assert_eq!(bars[0].date().to_string(), "2021-01-01");
            assert_eq!(bars[2077].date().to_string(), "2026-09-09");
            assert!(bars
                .windows(2)
                .all(|w| (w[1].date() - w[0].date()).num_days() == 1));
        }
        assert_eq!(table["BTC-USD"][0].close, 29337.16);
        assert_eq!(embedded_all().unwrap().len(), 23);
    }

    const YAHOO: &str = "Date,Open,High,Low,Close,Adj Close,Volume\n\
        2024-01-02,100,105,99,104,103.5,1000\n\
        2024-01-03,null,null,null,null,null,null\n\
        2024-01-04,104,106,103,105,104.5,1200\n";

    #[test]
    fn yahoo_files_parse_with_adjusted_close_and_skip_null_rows() {
        let bars = parse_yahoo_csv(YAHOO.as_bytes(), "X.csv").unwrap();
        assert_eq!(bars.len(), 2);
        assert_eq!(bars[0].close, 103.5);
        assert_eq!(bars[0].open, Some(100.0));
        assert_eq!(bars[1].volume, Some(1200.0));
    }

    #[test]
    fn malformed_yahoo_files_name_file_and_line() {
        let bad = "Date,Open,High,Low,Close,Adj Close,Volume\n2024-01-02,1,1,1,1,1,1\n2024-01-03,1,1,1,1,-5,1\n";
        let err = parse_yahoo_csv(bad.as_bytes(), "BAD.csv").unwrap_err();
        assert_eq!((err.file.as_str(), err.line), ("BAD.csv", 3));
        assert!(err.to_string().contains("Adj Close"), "{err}");

        let unordered = "Date,Open,High,Low,Close,Adj Close,Volume\n2024-01-03,1,1,1,1,1,1\n2024-01-02,1,1,1,1,1,1\n";
        assert_eq!(
            parse_yahoo_csv(unordered.as_bytes(), "U.csv")
                .unwrap_err()
                .line,
            3
        );

        let ragged = "Date,Open,High,Low,Close,Adj Close,Volume\n2024-01-02,1,1\n";
        assert!(parse_yahoo_csv(ragged.as_bytes(), "R.csv").is_err());
        assert!(parse_yahoo_csv("Date,Close\n".as_bytes(), "H.csv").is_err());
        assert!(parse_yahoo_csv(&[0xff, 0xfe, 0x00][..], "B.csv").is_err());
    }

    #[test]
    fn price_directory_skips_bad_files_and_keeps_good_ones() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("good.ns.csv"), YAHOO).unwrap();
        std::fs::write(dir.path().join("BAD.csv"), "garbage\n1,2\n").unwrap();
        std::fs::write(dir.path().join("notes.txt"), "ignored").unwrap();
        let table = load_price_dir(dir.path());
        assert_eq!(table.keys().collect::<Vec<_>>(), ["GOOD.NS"]);
        assert!(load_price_dir(&dir.path().join("absent")).is_empty());
    }
}
