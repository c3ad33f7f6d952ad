//! Yahoo Finance through its public chart endpoint
//! (`/v8/finance/chart/{symbol}`), which needs no cookie or crumb. Quotes
//! come from the same endpoint over the last few days.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use futures::StreamExt;
use serde::Deserialize;

use super::http;
use super::limiter::{ProviderRateLimiter, QuotaConfig};
use super::prices::{Candle, Interval, Quote, Span};
use super::provider::{newest_bars, per_symbol, spend, Provider, ProviderError, QuoteAnswer};
use super::symbols::SymbolForm;

pub const NAME: &str = "yfinance";

/// Symbols fetched at once for a quote request.
const QUOTE_CONCURRENCY: usize = 8;

/// Where Yahoo's chart API is, and how long a call may take.
#[derive(Debug, Clone)]
pub struct YahooEndpoint {
    /// e.g. `https://query1.finance.yahoo.com` (no trailing slash needed).
    pub base_url: String,
    pub timeout_ms: u64,
}

impl Default for YahooEndpoint {
    fn default() -> Self {
        YahooEndpoint {
            base_url: "https://query1.finance.yahoo.com".into(),
            timeout_ms: 5000,
        }
    }
}

pub struct YahooProvider {
    client: reqwest::Client,
    base_url: String,
    quota: Option<ProviderRateLimiter>,
}

impl YahooProvider {
    pub fn new(endpoint: &YahooEndpoint) -> Result<Self, ProviderError> {
        Ok(YahooProvider {
            client: http::client(Duration::from_millis(endpoint.timeout_ms))?,
            base_url: endpoint.base_url.trim_end_matches('/').to_string(),
            quota: None,
        })
    }

    /// Spends a permit of `quota` on every request to Yahoo, waiting at
    /// most `max_wait` for one.
    pub fn with_quota(mut self, quota: &QuotaConfig, max_wait: Duration) -> Self {
        self.quota = Some(ProviderRateLimiter::new(quota, max_wait));
        self
    }

    async fn chart(
        &self,
        symbol: &str,
        query: &[(&str, String)],
    ) -> Result<ChartResult, ProviderError> {
        spend(self.quota.as_ref()).await?;
        let url = format!("{}/v8/finance/chart/{}", self.base_url, urlencode(symbol));
        let response = self
            .client
            .get(&url)
            .query(query)
            .query(&[("events", "div|split"), ("includePrePost", "false")])
            .send()
            .await
            .map_err(http::from_transport)?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.text().await.map_err(http::from_transport)?;
        // Yahoo reports unknown symbols as a chart error, with 404 or 200.
        let parsed: Result<ChartEnvelope, _> = serde_json::from_str(&body);
        if let Ok(ChartEnvelope { chart }) = &parsed {
            if let Some(err) = &chart.error {
                if err.code.eq_ignore_ascii_case("Not Found")
                    || status == reqwest::StatusCode::NOT_FOUND
                {
                    return Err(ProviderError::NotFound {
                        symbol: symbol.to_string(),
                    });
                }
                if status.is_success() {
                    return Err(ProviderError::Upstream {
                        status: status.as_u16(),
                        message: format!("{}: {}", err.code, err.description),
                    });
                }
            }
        }
        if !status.is_success() {
            return Err(http::from_status(status, &headers, &body));
        }
        let envelope = parsed.map_err(|e| {
            ProviderError::Malformed(format!(
                "chart for {symbol}: {e}; body starts {:?}",
                http::snippet(&body)
            ))
        })?;
        envelope
            .chart
            .result
            .and_then(|mut r| {
                if r.is_empty() {
                    None
                } else {
                    Some(r.swap_remove(0))
                }
            })
            .ok_or(ProviderError::NotFound {
                symbol: symbol.to_string(),
            })
    }
}

#[async_trait]
impl Provider for YahooProvider {
    fn name(&self) -> &'static str {
        NAME
    }

    fn symbol_form(&self) -> SymbolForm {
        SymbolForm::Yahoo
    }

    async fn history(
        &self,
        symbol: &str,
        span: Span,
        interval: Interval,
    ) -> Result<Vec<Candle>, ProviderError> {
        let interval_param = match interval {
            Interval::Daily => "1d".to_string(),
            Interval::Minutes(m @ (1 | 2 | 5 | 15 | 30 | 60 | 90)) => format!("{m}m"),
            Interval::Minutes(m) => {
                return Err(ProviderError::Unsupported(format!(
                    "Yahoo has no {m}-minute bars (1, 2, 5, 15, 30, 60, 90)"
                )))
            }
        };
        let mut query = vec![("interval", interval_param)];
        match span {
            Span::Dates { start, end } => {
                query.push(("period1", day_start(start).to_string()));
                query.push((
                    "period2",
                    day_start(end.succ_opt().unwrap_or(end)).to_string(),
                ));
            }
            Span::LastBars(n) => query.push(("range", range_for(n, interval).to_string())),
        }
        let result = self.chart(symbol, &query).await?;
        let candles = result.candles(interval == Interval::Daily)?;
        newest_bars(symbol, candles, span)
    }

    async fn quotes(&self, symbols: &[String]) -> Result<Vec<QuoteAnswer>, ProviderError> {
        let answers: Vec<QuoteAnswer> = futures::stream::iter(symbols.iter().cloned())
            .map(|symbol| async move {
                let quote = self
                    .chart(
                        &symbol,
                        &[("interval", "1d".into()), ("range", "5d".into())],
                    )
                    .await
                    .and_then(|r| r.quote(&symbol));
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

/// The smallest chart range holding `n` bars, with a margin for holidays.
fn range_for(n: usize, interval: Interval) -> &'static str {
    if interval != Interval::Daily {
        return if n <= 390 { "5d" } else { "1mo" };
    }
    const RANGES: [(usize, &str); 8] = [
        (4, "5d"),
        (19, "1mo"),
        (60, "3mo"),
        (122, "6mo"),
        (248, "1y"),
        (500, "2y"),
        (1255, "5y"),
        (2510, "10y"),
    ];
    RANGES
        .iter()
        .find(|(bars, _)| n <= *bars)
        .map_or("max", |(_, range)| range)
}

fn day_start(date: NaiveDate) -> i64 {
    date.and_time(chrono::NaiveTime::MIN).and_utc().timestamp()
}

/// Symbols like `^GSPC` or `M&M.NS` must be escaped in the path.
fn urlencode(symbol: &str) -> String {
    symbol
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'.' | b'-' | b'_' | b'=' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

#[derive(Deserialize)]
struct ChartEnvelope {
    chart: Chart,
}

#[derive(Deserialize)]
struct Chart {
    result: Option<Vec<ChartResult>>,
    error: Option<ChartError>,
}

#[derive(Deserialize)]
struct ChartError {
    #[serde(default)]
    code: String,
    #[serde(default)]
    description: String,
}

#[derive(Deserialize)]
struct ChartResult {
    meta: Meta,
    #[serde(default)]
    timestamp: Vec<i64>,
    indicators: Indicators,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Meta {
    regular_market_price: Option<f64>,
    regular_market_time: Option<i64>,
    chart_previous_close: Option<f64>,
    previous_close: Option<f64>,
}

#[derive(Deserialize)]
struct Indicators {
    #[serde(default)]
    quote: Vec<Ohlcv>,
    #[serde(default)]
    adjclose: Vec<AdjClose>,
}

#[derive(Deserialize, Default)]
struct Ohlcv {
    #[serde(default)]
    open: Vec<Option<f64>>,
    #[serde(default)]
    high: Vec<Option<f64>>,
    #[serde(default)]
    low: Vec<Option<f64>>,
    #[serde(default)]
    close: Vec<Option<f64>>,
    #[serde(default)]
    volume: Vec<Option<f64>>,
}

#[derive(Deserialize)]
struct AdjClose {
    #[serde(default)]
    adjclose: Vec<Option<f64>>,
}

impl ChartResult {
    /// Bars in time order; a bar with any missing or non-positive price is skipped.
    fn candles(&self, adjusted: bool) -> Result<Vec<Candle>, ProviderError> {
        let q = self.indicators.quote.first().ok_or_else(|| {
            ProviderError::Malformed("chart has timestamps but no quote arrays".into())
        })?;
        let adj = self.indicators.adjclose.first().map(|a| &a.adjclose);
        let at = |v: &Vec<Option<f64>>, i: usize| {
            v.get(i)
                .copied()
                .flatten()
                .filter(|p| p.is_finite() && *p > 0.0)
        };
        let mut candles = Vec::with_capacity(self.timestamp.len());
        for (i, &ts) in self.timestamp.iter().enumerate() {
            let close = if adjusted {
                adj.and_then(|a| at(a, i)).or_else(|| at(&q.close, i))
            } else {
                at(&q.close, i)
            };
            let (Some(open), Some(high), Some(low), Some(close)) =
                (at(&q.open, i), at(&q.high, i), at(&q.low, i), close)
            else {
                continue;
            };
            let Some(time) = DateTime::<Utc>::from_timestamp(ts, 0) else {
                continue;
            };
            if candles.last().is_some_and(|c: &Candle| c.time >= time) {
                continue;
            }
            candles.push(Candle {
                time,
                open: Some(open),
                high: Some(high),
                low: Some(low),
                close,
                volume: q
                    .volume
                    .get(i)
                    .copied()
                    .flatten()
                    .filter(|v| v.is_finite() && *v >= 0.0),
            });
        }
        Ok(candles)
    }

    fn quote(&self, symbol: &str) -> Result<Quote, ProviderError> {
        // Unadjusted closes: a quote is about today's traded price.
        let bars = self.candles(false)?;
        let last = bars.last().ok_or_else(|| ProviderError::NotFound {
            symbol: symbol.to_string(),
        })?;
        let mut quote = Quote::from_bars(last, bars.iter().rev().nth(1), NAME);
        if let Some(price) = self
            .meta
            .regular_market_price
            .filter(|p| p.is_finite() && *p > 0.0)
        {
            quote.price = price;
            let previous = bars
                .iter()
                .rev()
                .nth(1)
                .map(|c| c.close)
                .or(self.meta.chart_previous_close)
                .or(self.meta.previous_close);
            quote.change = previous.map(|p| price - p);
            quote.change_pct = previous.map(|p| (price / p - 1.0) * 100.0);
        }
        if let Some(t) = self
            .meta
            .regular_market_time
            .and_then(|t| DateTime::<Utc>::from_timestamp(t, 0))
        {
            quote.timestamp = t;
        }
        Ok(quote)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_cover_the_bars_asked_for() {
        assert_eq!(range_for(1, Interval::Daily), "5d");
        assert_eq!(range_for(22, Interval::Daily), "3mo");
        assert_eq!(range_for(252, Interval::Daily), "2y");
        assert_eq!(range_for(5000, Interval::Daily), "max");
    }

    #[test]
    fn symbols_are_escaped_in_the_path() {
        assert_eq!(urlencode("^GSPC"), "%5EGSPC");
        assert_eq!(urlencode("M&M.NS"), "M%26M.NS");
        assert_eq!(urlencode("EURUSD=X"), "EURUSD=X");
    }
}
