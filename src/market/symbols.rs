//! Translation between Yahoo (`RELIANCE.NS`, `BTC-USD`), Fyers
//! (`NSE:RELIANCE-EQ`) and Binance (`BTCUSDT`) symbol forms, from the
//! mapping file and by rule.

use std::collections::HashMap;
use std::io::Read;

use serde::Serialize;

/// The mapping shipped in the binary.
const BUILT_IN_MAPPING: &str = include_str!("../../data/fyers_yfinance_mapping.csv");

/// The symbol spelling a provider expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SymbolForm {
    /// `AAPL`, `RELIANCE.NS`, `^GSPC`.
    Yahoo,
    /// `NSE:RELIANCE-EQ`.
    Fyers,
    /// `BTCUSDT`: crypto spot pairs only.
    Binance,
}

/// Currencies a Yahoo crypto pair is quoted in (`BTC-USD`, `ETH-EUR`).
const CRYPTO_QUOTES: [&str; 9] = [
    "USD", "USDT", "USDC", "EUR", "GBP", "JPY", "INR", "BTC", "ETH",
];

/// Stablecoins that end a bare Binance pair (`BTCUSDT`), read as USD.
const STABLE_QUOTES: [&str; 2] = ["USDT", "USDC"];

/// A crypto pair: the coin and the currency it is priced in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CryptoPair<'a> {
    pub base: &'a str,
    pub quote: &'a str,
}

/// The pair a normalized symbol names, in Yahoo form (`BTC-USD`) or as a
/// bare stablecoin pair (`BTCUSDT`); `None` for anything else (a stock
/// such as `BRK-B` is not a pair: `B` is no currency).
pub fn crypto_pair(symbol: &str) -> Option<CryptoPair<'_>> {
    let coin = |base: &str| {
        (2..=10).contains(&base.len()) && base.bytes().all(|b| b.is_ascii_alphanumeric())
    };
    if let Some((base, quote)) = symbol.split_once('-') {
        return (coin(base) && CRYPTO_QUOTES.contains(&quote))
            .then_some(CryptoPair { base, quote });
    }
    STABLE_QUOTES.iter().find_map(|quote| {
        symbol
            .strip_suffix(quote)
            .filter(|base| coin(base))
            .map(|base| CryptoPair { base, quote })
    })
}

/// One row of the mapping file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Stock {
    pub yfinance_symbol: String,
    pub fyers_symbol: String,
    pub name: String,
}

#[derive(Debug, thiserror::Error)]
pub enum MappingError {
    #[error("symbol mapping: {0}")]
    Read(#[from] csv::Error),
    #[error("symbol mapping line {line}: {reason}")]
    Invalid { line: u64, reason: String },
}

#[derive(Debug, Clone, Default)]
pub struct SymbolMapper {
    stocks: Vec<Stock>,
    yahoo_by_fyers: HashMap<String, String>,
    fyers_by_yahoo: HashMap<String, String>,
}

/// Trims and upper-cases a symbol as callers may write it.
pub fn normalize(symbol: &str) -> String {
    symbol.trim().to_ascii_uppercase()
}

impl SymbolMapper {
    pub fn built_in() -> Result<Self, MappingError> {
        Self::from_reader(BUILT_IN_MAPPING.as_bytes())
    }

    /// Reads `fyers_symbol,yfinance_symbol,name` rows.
    pub fn from_reader(reader: impl Read) -> Result<Self, MappingError> {
        let mut csv = csv::ReaderBuilder::new()
            .trim(csv::Trim::All)
            .from_reader(reader);
        let headers = csv.headers()?.clone();
        if headers.iter().collect::<Vec<_>>() != ["fyers_symbol", "yfinance_symbol", "name"] {
            return Err(MappingError::Invalid {
                line: 1,
                reason: format!(
                    "header must be fyers_symbol,yfinance_symbol,name, found {}",
                    headers.iter().collect::<Vec<_>>().join(",")
                ),
            });
        }
        let mut mapper = SymbolMapper::default();
        for record in csv.records() {
            let record = record?;
            let line = record.position().map_or(0, |p| p.line());
            let invalid = |reason: &str| MappingError::Invalid {
                line,
                reason: reason.to_string(),
            };
            let fyers = normalize(record.get(0).unwrap_or_default());
            let yahoo = normalize(record.get(1).unwrap_or_default());
            let name = record.get(2).unwrap_or_default().to_string();
            if fyers.is_empty() || yahoo.is_empty() {
                return Err(invalid("both symbols are required"));
            }
            if !fyers.contains(':') {
                return Err(invalid(
                    "a Fyers symbol has the form EXCHANGE:SYMBOL-SERIES",
                ));
            }
            if mapper.yahoo_by_fyers.contains_key(&fyers)
                || mapper.fyers_by_yahoo.contains_key(&yahoo)
            {
                return Err(invalid("symbol listed twice"));
            }
            mapper.yahoo_by_fyers.insert(fyers.clone(), yahoo.clone());
            mapper.fyers_by_yahoo.insert(yahoo.clone(), fyers.clone());
            mapper.stocks.push(Stock {
                yfinance_symbol: yahoo,
                fyers_symbol: fyers,
                name,
            });
        }
        Ok(mapper)
    }

    pub fn stocks(&self) -> &[Stock] {
        &self.stocks
    }

    pub fn len(&self) -> usize {
        self.stocks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.stocks.is_empty()
    }

    /// The Yahoo form of any symbol: mapped, by rule, or as written. A
    /// bare stablecoin pair (`BTCUSDT`) is Yahoo's USD pair (`BTC-USD`).
    pub fn to_yahoo(&self, symbol: &str) -> String {
        let symbol = normalize(symbol);
        if let Some(yahoo) = self.yahoo_by_fyers.get(&symbol) {
            return yahoo.clone();
        }
        if let Some(pair) = crypto_pair(&symbol).filter(|_| !symbol.contains('-')) {
            return format!("{}-USD", pair.base);
        }
        for (exchange, suffix) in [("NSE:", ".NS"), ("BSE:", ".BO")] {
            if let Some(base) = symbol
                .strip_prefix(exchange)
                .and_then(|rest| rest.strip_suffix("-EQ"))
            {
                return format!("{base}{suffix}");
            }
        }
        symbol
    }

    /// The Fyers form of a symbol, or `None` for one Fyers does not list
    /// (e.g. a US stock).
    pub fn to_fyers(&self, symbol: &str) -> Option<String> {
        let symbol = normalize(symbol);
        if let Some(fyers) = self.fyers_by_yahoo.get(&symbol) {
            return Some(fyers.clone());
        }
        if symbol.contains(':') {
            return Some(symbol);
        }
        for (suffix, exchange) in [(".NS", "NSE:"), (".BO", "BSE:")] {
            if let Some(base) = symbol.strip_suffix(suffix).filter(|b| !b.is_empty()) {
                return Some(format!("{exchange}{base}-EQ"));
            }
        }
        None
    }

    /// The Binance spot pair of a crypto symbol (`BTC-USD` is `BTCUSDT`:
    /// Binance lists no USD pairs, and tether trades within a fraction of
    /// a percent of the dollar), or `None` for anything else.
    pub fn to_binance(&self, symbol: &str) -> Option<String> {
        let symbol = normalize(symbol);
        let pair = crypto_pair(&symbol)?;
        let quote = if pair.quote == "USD" {
            "USDT"
        } else {
            pair.quote
        };
        Some(format!("{}{quote}", pair.base))
    }

    pub fn to_form(&self, symbol: &str, form: SymbolForm) -> Option<String> {
        match form {
            SymbolForm::Yahoo => Some(self.to_yahoo(symbol)),
            SymbolForm::Fyers => self.to_fyers(symbol),
            SymbolForm::Binance => self.to_binance(symbol),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mapper() -> SymbolMapper {
        SymbolMapper::built_in().expect("built-in mapping parses")
    }

    #[test]
    fn built_in_mapping_covers_the_nifty_50() {
        let m = mapper();
        assert!(m.len() >= 50, "only {} rows", m.len());
        assert_eq!(
            m.to_fyers("RELIANCE.NS").as_deref(),
            Some("NSE:RELIANCE-EQ")
        );
        assert_eq!(m.to_yahoo("NSE:M&M-EQ"), "M&M.NS");
        assert_eq!(m.to_yahoo("NSE:NIFTY50-INDEX"), "^NSEI");
    }

    #[test]
    fn unmapped_symbols_translate_by_rule() {
        let m = mapper();
        assert_eq!(m.to_fyers("ZZTOP.NS").as_deref(), Some("NSE:ZZTOP-EQ"));
        assert_eq!(m.to_fyers("ZZTOP.BO").as_deref(), Some("BSE:ZZTOP-EQ"));
        assert_eq!(m.to_yahoo("NSE:ZZTOP-EQ"), "ZZTOP.NS");
        assert_eq!(m.to_yahoo("BSE:ZZTOP-EQ"), "ZZTOP.BO");
    }

    #[test]
    fn symbols_are_trimmed_and_upper_cased() {
        let m = mapper();
        assert_eq!(
            m.to_fyers("  reliance.ns ").as_deref(),
            Some("NSE:RELIANCE-EQ")
        );
        assert_eq!(m.to_yahoo(" aapl"), "AAPL");
    }

    #[test]
    fn us_stocks_have_no_fyers_form() {
        assert_eq!(mapper().to_fyers("AAPL"), None);
        assert_eq!(mapper().to_fyers(".NS"), None);
    }

    #[test]
    fn crypto_pairs_translate_between_yahoo_and_binance() {
        let m = mapper();
        assert_eq!(m.to_binance("BTC-USD").as_deref(), Some("BTCUSDT"));
        assert_eq!(m.to_binance(" eth-usd").as_deref(), Some("ETHUSDT"));
        assert_eq!(m.to_binance("ETH-BTC").as_deref(), Some("ETHBTC"));
        assert_eq!(m.to_binance("BTCUSDT").as_deref(), Some("BTCUSDT"));
        assert_eq!(m.to_yahoo("BTCUSDT"), "BTC-USD");
        assert_eq!(m.to_yahoo("BTC-USD"), "BTC-USD");
        assert_eq!(m.to_fyers("BTC-USD"), None);
        for stock in [
            "AAPL",
            "BRK-B",
            "RELIANCE.NS",
            "^GSPC",
            "NSE:SBIN-EQ",
            "USDT",
            "-USD",
        ] {
            assert_eq!(m.to_binance(stock), None, "{stock}");
            assert_eq!(crypto_pair(stock), None, "{stock}");
        }
    }

    #[test]
    fn malformed_mapping_names_the_line() {
        let bad = "fyers_symbol,yfinance_symbol,name\nNSE:A-EQ,A.NS,A\nB.NS,,B\n";
        let err = SymbolMapper::from_reader(bad.as_bytes()).unwrap_err();
        assert!(err.to_string().contains("line 3"), "{err}");
        let err = SymbolMapper::from_reader("a,b\n".as_bytes()).unwrap_err();
        assert!(err.to_string().contains("header"), "{err}");
        let dup = "fyers_symbol,yfinance_symbol,name\nNSE:A-EQ,A.NS,A\nNSE:A-EQ,A2.NS,A\n";
        assert!(SymbolMapper::from_reader(dup.as_bytes()).is_err());
    }
}
