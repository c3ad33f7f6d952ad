//! Binance spot market data (public, no credentials): daily and intraday
//! klines (`/api/v3/klines`) and 24-hour tickers (`/api/v3/ticker/24hr`),
//! for crypto pairs only (`BTCUSDT`; the data manager maps `BTC-USD`).

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use futures::StreamExt;
use serde::Deserialize;
use serde_json::Value;

use super::http;
use super::limiter::{ProviderRateLimiter, QuotaConfig};
use super::prices::{Candle, Interval, Quote, Span};
use super::provider::{newest_bars, per_symbol, spend, Provider, ProviderError, QuoteAnswer};
use super::symbols::SymbolForm;

pub const NAME: &str = "binance";

/// Most klines one call returns.
const KLINES_PER_CALL: usize = 1000;
/// Symbols whose tickers are fetched at once for a quote request.
const QUOTE_CONCURRENCY: usize = 8;
/// Binance's error code for a symbol it does not list.
const INVALID_SYMBOL: i64 = -1121;
const DAY_MS: i64 = 86_400_000;

/// Where Binance's REST API is, and how long a call may take.
#[derive(Debug, Clone)]
pub struct BinanceEndpoint {
    /// e.g. `https://api.binance.com` (no trailing slash needed).
    pub base_url: String,
    pub timeout_ms: u64,
}

impl Default for BinanceEndpoint {
    fn default() -> Self {
        BinanceEndpoint {
            base_url: "https://api.binance.com".into(),
            timeout_ms: 5000,
        }
    }
}

pub struct BinanceProvider {
    client: reqwest::Client,
    base_url: String,
    quota: Option<ProviderRateLimiter>,
}

impl BinanceProvider {
    pub fn new(endpoint: &BinanceEndpoint) -> Result<Self, ProviderError> {
        Ok(BinanceProvider {
            client: http::client(Duration::from_millis(endpoint.timeout_ms))?,
            base_url: endpoint.base_url.trim_end_matches('/').to_string(),
            quota: None,
        })
    }

    /// Spends a permit of `quota` on every request to Binance, waiting at
    /// most `max_wait` for one.
    pub fn with_quota(mut self, quota: &QuotaConfig, max_wait: Duration) -> Self {
        self.quota = Some(ProviderRateLimiter::new(quota, max_wait));
        self
    }

    /// One GET of a public endpoint, its body parsed.
    async fn get(
        &self,
        symbol: &str,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<Value, ProviderError> {
        spend(self.quota.as_ref()).await?;
        let response = self
            .client
            .get(format!("{}{path}", self.base_url))
            .query(query)
            .send()
            .await
            .map_err(http::from_transport)?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.text().await.map_err(http::from_transport)?;
        let parsed: Result<Value, _> = serde_json::from_str(&body);
        if let Ok(Value::Object(error)) = &parsed {
            if error.get("code").and_then(Value::as_i64) == Some(INVALID_SYMBOL) {
                return Err(ProviderError::NotFound {
                    symbol: symbol.to_string(),
                });
            }
        }
        // 418: the address is banned for ignoring 429s; both say when to retry.
        if status == reqwest::StatusCode::IM_A_TEAPOT {
            return Err(ProviderError::RateLimited {
                retry_after: http::retry_after(&headers),
            });
        }
        if !status.is_success() {
            return Err(http::from_status(status, &headers, &body));
        }
        parsed.map_err(|e| {
            ProviderError::Malformed(format!(
                "{path} for {symbol}: {e}; body starts {:?}",
                http::snippet(&body)
            ))
        })
    }

    /// Klines of one call, oldest first: at most `limit` ending at `end_ms`
    /// or starting at `start_ms`.
    async fn klines(
        &self,
        symbol: &str,
        interval: &str,
        limit: usize,
        start_ms: Option<i64>,
        end_ms: Option<i64>,
    ) -> Result<Vec<Kline>, ProviderError> {
        let mut query = vec![
            ("symbol", symbol.to_string()),
            ("interval", interval.to_string()),
            ("limit", limit.to_string()),
        ];
        if let Some(start) = start_ms {
            query.push(("startTime", start.to_string()));
        }
        if let Some(end) = end_ms {
            query.push(("endTime", end.to_string()));
        }
        let body = self.get(symbol, "/api/v3/klines", &query).await?;
        let Value::Array(rows) = body else {
            return Err(ProviderError::Malformed(format!(
                "klines for {symbol}: not an array; body starts {:?}",
                http::snippet(&body.to_string())
            )));
        };
        rows.iter()
            .map(|row| Kline::parse(row).ok_or_else(|| malformed_row(symbol, row)))
            .collect()
    }
}

fn malformed_row(symbol: &str, row: &Value) -> ProviderError {
    ProviderError::Malformed(format!(
        "kline of {symbol} is not [open time, open, high, low, close, volume, close time, ...]: {}",
        http::snippet(&row.to_string())
    ))
}

/// One kline as Binance sends it: times in milliseconds, prices as strings.
#[derive(Debug, Clone, PartialEq)]
struct Kline {
    open_time: i64,
    close_time: i64,
    candle: Candle,
}

impl Kline {
    fn parse(row: &Value) -> Option<Kline> {
        let row = row.as_array()?;
        let price = |i: usize| -> Option<f64> {
            let v: f64 = row.get(i)?.as_str()?.parse().ok()?;
            v.is_finite().then_some(v)
        };
        let open_time = row.first()?.as_i64()?;
        let close_time = row.get(6)?.as_i64()?;
        let (open, high, low, close) = (price(1)?, price(2)?, price(3)?, price(4)?);
        let volume = price(5).filter(|v| *v >= 0.0);
        Some(Kline {
            open_time,
            close_time,
            candle: Candle {
                time: DateTime::<Utc>::from_timestamp_millis(open_time)?,
                open: Some(open),
                high: Some(high),
                low: Some(low),
                close,
                volume,
            },
        })
    }

    /// A bar with a missing or non-positive price says nothing true.
    fn usable(&self) -> bool {
        let c = &self.candle;
        [c.open, c.high, c.low, Some(c.close)]
            .iter()
            .all(|p| p.is_some_and(|p| p > 0.0))
    }
}

/// Binance's name of a bar size.
fn interval_name(interval: Interval) -> Result<&'static str, ProviderError> {
    Ok(match interval {
        Interval::Daily => "1d",
        Interval::Minutes(1) => "1m",
        Interval::Minutes(3) => "3m",
        Interval::Minutes(5) => "5m",
        Interval::Minutes(15) => "15m",
        Interval::Minutes(30) => "30m",
        Interval::Minutes(60) => "1h",
        Interval::Minutes(120) => "2h",
        Interval::Minutes(240) => "4h",
        Interval::Minutes(m) => {
            return Err(ProviderError::Unsupported(format!(
                "Binance has no {m}-minute klines (1, 3, 5, 15, 30, 60, 120, 240)"
            )))
        }
    })
}

fn day_start_ms(date: NaiveDate) -> i64 {
    date.and_time(chrono::NaiveTime::MIN)
        .and_utc()
        .timestamp_millis()
}

/// The 24-hour ticker's fields tickcast reads (prices as strings).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Ticker {
    last_price: String,
    price_change: Option<String>,
    price_change_percent: Option<String>,
    open_price: Option<String>,
    high_price: Option<String>,
    low_price: Option<String>,
    volume: Option<String>,
    close_time: i64,
}

impl Ticker {
    fn quote(&self, symbol: &str) -> Result<Quote, ProviderError> {
        let number = |s: &Option<String>| {
            s.as_deref()
                .and_then(|s| s.parse::<f64>().ok())
                .filter(|v| v.is_finite())
        };
        let positive = |s: &Option<String>| number(s).filter(|v| *v > 0.0);
        let price = positive(&Some(self.last_price.clone())).ok_or_else(|| {
            ProviderError::Malformed(format!(
                "ticker of {symbol}: lastPrice {:?} is not a price",
                self.last_price
            ))
        })?;
        let timestamp =
            DateTime::<Utc>::from_timestamp_millis(self.close_time).ok_or_else(|| {
                ProviderError::Malformed(format!("ticker of {symbol}: closeTime out of range"))
            })?;
        Ok(Quote {
            price,
            change: number(&self.price_change),
            change_pct: number(&self.price_change_percent),
            volume: number(&self.volume).filter(|v| *v >= 0.0),
            high: positive(&self.high_price),
            low: positive(&self.low_price),
            open: positive(&self.open_price),
            timestamp,
            provider: NAME.to_string(),
            stale_age_secs: None,
            stale: false,
        })
    }
}

#[async_trait]
impl Provider for BinanceProvider {
    fn name(&self) -> &'static str {
        NAME
    }

    fn symbol_form(&self) -> SymbolForm {
        SymbolForm::Binance
    }

    /// Closed bars only: the kline still open (today's, for daily bars)
    /// would be a return of part of a day.
    async fn history(
        &self,
        symbol: &str,
        span: Span,
        interval: Interval,
    ) -> Result<Vec<Candle>, ProviderError> {
        let name = interval_name(interval)?;
        let now = Utc::now().timestamp_millis();
        let mut klines: Vec<Kline> = Vec::new();
        match span {
            Span::LastBars(n) => {
                // Newest first, one page of at most 1000 at a time; one bar
                // more than asked, as the newest may still be open.
                let mut wanted = n.saturating_add(1);
                let mut end = None;
                while wanted > 0 {
                    let limit = wanted.min(KLINES_PER_CALL);
                    let page = self.klines(symbol, name, limit, None, end).await?;
                    let Some(first) = page.first() else { break };
                    end = Some(first.open_time - 1);
                    wanted = wanted.saturating_sub(page.len());
                    let short = page.len() < limit;
                    klines.splice(0..0, page);
                    if short {
                        break;
                    }
                }
            }
            Span::Dates { start, end } => {
                let end_ms = day_start_ms(end) + DAY_MS - 1;
                let mut from = day_start_ms(start);
                while from <= end_ms {
                    let page = self
                        .klines(symbol, name, KLINES_PER_CALL, Some(from), Some(end_ms))
                        .await?;
                    let Some(last) = page.last() else { break };
                    from = last.open_time + 1;
                    let full = page.len() == KLINES_PER_CALL;
                    klines.extend(page);
                    if !full {
                        break;
                    }
                }
            }
        }
        let mut candles: Vec<Candle> = Vec::with_capacity(klines.len());
        for kline in klines {
            if kline.close_time > now || !kline.usable() {
                continue;
            }
            if candles.last().is_some_and(|c| c.time >= kline.candle.time) {
                continue;
            }
            candles.push(kline.candle);
        }
        newest_bars(symbol, candles, span)
    }

    /// From the 24-hour tickers: `change` is over the last 24 hours, as
    /// the exchange reports it (crypto has no daily close to compare with).
    async fn quotes(&self, symbols: &[String]) -> Result<Vec<QuoteAnswer>, ProviderError> {
        let answers: Vec<QuoteAnswer> = futures::stream::iter(symbols.iter().cloned())
            .map(|symbol| async move {
                let quote = self
                    .get(
                        &symbol,
                        "/api/v3/ticker/24hr",
                        &[("symbol", symbol.clone())],
                    )
                    .await
                    .and_then(|body| {
                        serde_json::from_value::<Ticker>(body).map_err(|e| {
                            ProviderError::Malformed(format!("ticker of {symbol}: {e}"))
                        })
                    })
                    .and_then(|ticker| ticker.quote(&symbol));
                (symbol, quote)
            })
            .buffered(QUOTE_CONCURRENCY)
            .collect()
            .await;
        per_symbol(answers)
    }

    fn cached_entries(&self) -> u64 {
        0
    }

    fn quota(&self) -> Option<&ProviderRateLimiter> {
        self.quota.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn klines_parse_from_binance_rows() {
        let row = json!([
            1_704_067_200_000_i64,
            "42283.58",
            "44184.10",
            "42180.77",
            "44179.55",
            "27174.29903",
            1_704_153_599_999_i64,
            "1169995682.99",
            1_182_457,
            "13855.55",
            "596723618.57",
            "0"
        ]);
        let k = Kline::parse(&row).unwrap();
        assert_eq!(k.candle.close, 44179.55);
        assert_eq!(k.candle.date().to_string(), "2024-01-01");
        assert_eq!(k.close_time, 1_704_153_599_999);
        assert!(k.usable());
        assert_eq!(Kline::parse(&json!([1, "a", "1", "1", "1"])), None);
        assert_eq!(Kline::parse(&json!({"open": 1})), None);
    }

    #[test]
    fn intervals_binance_has_and_has_not() {
        assert_eq!(interval_name(Interval::Daily).unwrap(), "1d");
        assert_eq!(interval_name(Interval::Minutes(60)).unwrap(), "1h");
        assert!(matches!(
            interval_name(Interval::Minutes(7)),
            Err(ProviderError::Unsupported(_))
        ));
    }
}
