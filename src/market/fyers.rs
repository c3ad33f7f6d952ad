//! Fyers API v3 market data (Indian markets): daily and intraday history
//! and batched quotes. Credentials can be replaced at runtime; the access
//! token never appears in errors, logs or `Debug` output.

use std::sync::RwLock;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Days, NaiveDate, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use super::http;
use super::limiter::{ProviderRateLimiter, QuotaConfig};
use super::prices::{Candle, Interval, Quote, Span};
use super::provider::{newest_bars, spend, Provider, ProviderError, QuoteAnswer};
use super::symbols::SymbolForm;

pub const NAME: &str = "fyers";

/// Most symbols per quotes call.
const QUOTE_BATCH: usize = 50;
/// Longest span per history call, in days.
const DAILY_CHUNK_DAYS: u64 = 366;
const INTRADAY_CHUNK_DAYS: u64 = 100;
/// Fyers error codes meaning the token or app id is not accepted.
const AUTH_CODES: [i64; 4] = [-8, -15, -16, -17];

/// Where Fyers' data API is, and how long a call may take.
#[derive(Debug, Clone)]
pub struct FyersEndpoint {
    /// e.g. `https://api-t1.fyers.in/data`.
    pub base_url: String,
    pub timeout_ms: u64,
}

impl Default for FyersEndpoint {
    fn default() -> Self {
        FyersEndpoint {
            base_url: "https://api-t1.fyers.in/data".into(),
            timeout_ms: 5000,
        }
    }
}

struct Credentials {
    app_id: String,
    access_token: SecretString,
}

pub struct FyersProvider {
    client: reqwest::Client,
    base_url: String,
    credentials: RwLock<Credentials>,
    quota: Option<ProviderRateLimiter>,
}

impl std::fmt::Debug for FyersProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FyersProvider")
            .field("base_url", &self.base_url)
            .field("access_token", &"[redacted]")
            .finish()
    }
}

impl FyersProvider {
    pub fn new(
        endpoint: &FyersEndpoint,
        app_id: &str,
        access_token: SecretString,
    ) -> Result<Self, ProviderError> {
        Ok(FyersProvider {
            client: http::client(Duration::from_millis(endpoint.timeout_ms))?,
            base_url: endpoint.base_url.trim_end_matches('/').to_string(),
            credentials: RwLock::new(Credentials {
                app_id: app_id.trim().to_string(),
                access_token,
            }),
            quota: None,
        })
    }

    /// Spends a permit of `quota` on every request to Fyers (a history
    /// call is one request per 366-day chunk), waiting at most `max_wait`.
    pub fn with_quota(mut self, quota: &QuotaConfig, max_wait: Duration) -> Self {
        self.quota = Some(ProviderRateLimiter::new(quota, max_wait));
        self
    }

    fn authorization(&self) -> String {
        let creds = self.credentials.read().unwrap_or_else(|p| p.into_inner());
        format!("{}:{}", creds.app_id, creds.access_token.expose_secret())
    }

    async fn get(&self, endpoint: &str, query: &[(&str, String)]) -> Result<Value, ProviderError> {
        spend(self.quota.as_ref()).await?;
        let response = self
            .client
            .get(format!("{}/{endpoint}", self.base_url))
            .header("Authorization", self.authorization())
            .header("version", "3")
            .query(query)
            .send()
            .await
            .map_err(http::from_transport)?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.text().await.map_err(http::from_transport)?;
        let parsed: Option<Value> = serde_json::from_str(&body).ok();
        if let Some(err) = parsed.as_ref().and_then(fyers_error) {
            return Err(err);
        }
        if !status.is_success() {
            return Err(http::from_status(status, &headers, &body));
        }
        parsed.ok_or_else(|| {
            ProviderError::Malformed(format!("{endpoint}: not JSON: {:?}", http::snippet(&body)))
        })
    }

    async fn history_chunk(
        &self,
        symbol: &str,
        resolution: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<Candle>, ProviderError> {
        let query = [
            ("symbol", symbol.to_string()),
            ("resolution", resolution.to_string()),
            ("date_format", "1".to_string()),
            ("range_from", from.to_string()),
            ("range_to", to.to_string()),
            ("cont_flag", "1".to_string()),
        ];
        let body = match self.get("history", &query).await {
            // Fyers answers an unknown symbol as invalid input.
            Err(ProviderError::Upstream { status: 400, .. }) => {
                return Err(ProviderError::NotFound {
                    symbol: symbol.to_string(),
                })
            }
            other => other?,
        };
        let rows = body
            .get("candles")
            .and_then(Value::as_array)
            .ok_or_else(|| ProviderError::Malformed("history without candles".into()))?;
        let mut candles = Vec::with_capacity(rows.len());
        for row in rows {
            let field = |i: usize| row.get(i).and_then(Value::as_f64);
            let (Some(ts), Some(o), Some(h), Some(l), Some(c)) =
                (field(0), field(1), field(2), field(3), field(4))
            else {
                return Err(ProviderError::Malformed(format!("history row {row}")));
            };
            if ![o, h, l, c].iter().all(|p| p.is_finite() && *p > 0.0) {
                continue;
            }
            let Some(time) = DateTime::<Utc>::from_timestamp(ts as i64, 0) else {
                continue;
            };
            candles.push(Candle {
                time,
                open: Some(o),
                high: Some(h),
                low: Some(l),
                close: c,
                volume: field(5).filter(|v| v.is_finite() && *v >= 0.0),
            });
        }
        Ok(candles)
    }
}

/// `{"s": "error", "code": -16, "message": ...}` as a typed error.
fn fyers_error(body: &Value) -> Option<ProviderError> {
    if body.get("s").and_then(Value::as_str) != Some("error") {
        return None;
    }
    let code = body.get("code").and_then(Value::as_i64).unwrap_or(0);
    let message = body
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    Some(if AUTH_CODES.contains(&code) {
        ProviderError::Unauthorized(format!("Fyers code {code}: {message}"))
    } else if code == 429 || message.to_ascii_lowercase().contains("limit") {
        ProviderError::RateLimited { retry_after: None }
    } else {
        ProviderError::Upstream {
            status: 400,
            message: format!("Fyers code {code}: {message}"),
        }
    })
}

#[async_trait]
impl Provider for FyersProvider {
    fn name(&self) -> &'static str {
        NAME
    }

    /// Replaces the credentials; the next call uses them.
    fn set_credentials(&self, app_id: &str, access_token: SecretString) -> bool {
        let mut creds = self.credentials.write().unwrap_or_else(|p| p.into_inner());
        *creds = Credentials {
            app_id: app_id.trim().to_string(),
            access_token,
        };
        true
    }

    fn symbol_form(&self) -> SymbolForm {
        SymbolForm::Fyers
    }

    async fn history(
        &self,
        symbol: &str,
        span: Span,
        interval: Interval,
    ) -> Result<Vec<Candle>, ProviderError> {
        let (resolution, chunk) = match interval {
            Interval::Daily => ("D".to_string(), DAILY_CHUNK_DAYS),
            Interval::Minutes(m @ (1 | 2 | 3 | 5 | 10 | 15 | 20 | 30 | 60 | 120 | 240)) => {
                (m.to_string(), INTRADAY_CHUNK_DAYS)
            }
            Interval::Minutes(m) => {
                return Err(ProviderError::Unsupported(format!(
                    "Fyers has no {m}-minute bars"
                )))
            }
        };
        let (start, end) = match span {
            Span::Dates { start, end } => (start, end),
            Span::LastBars(n) => {
                let today = Utc::now().date_naive();
                // About 250 sessions a year, plus a margin for holidays.
                let days = if interval == Interval::Daily {
                    (n as u64) * 7 / 4 + 10
                } else {
                    7
                };
                (
                    today.checked_sub_days(Days::new(days)).unwrap_or(today),
                    today,
                )
            }
        };
        let mut candles: Vec<Candle> = Vec::new();
        let mut from = start;
        while from <= end {
            let to = from
                .checked_add_days(Days::new(chunk - 1))
                .unwrap_or(end)
                .min(end);
            for c in self.history_chunk(symbol, &resolution, from, to).await? {
                if candles.last().is_none_or(|last| last.time < c.time) {
                    candles.push(c);
                }
            }
            match to.succ_opt() {
                Some(next) => from = next,
                None => break,
            }
        }
        newest_bars(symbol, candles, span)
    }

    async fn quotes(&self, symbols: &[String]) -> Result<Vec<QuoteAnswer>, ProviderError> {
        let mut answers = Vec::with_capacity(symbols.len());
        for batch in symbols.chunks(QUOTE_BATCH) {
            let body = self.get("quotes", &[("symbols", batch.join(","))]).await?;
            let entries = body
                .get("d")
                .and_then(Value::as_array)
                .ok_or_else(|| ProviderError::Malformed("quotes without d".into()))?;
            for symbol in batch {
                let entry = entries
                    .iter()
                    .find(|e| e.get("n").and_then(Value::as_str) == Some(symbol));
                answers.push((
                    symbol.clone(),
                    entry.map_or_else(|| Err(not_found(symbol)), |e| parse_quote(symbol, e)),
                ));
            }
        }
        Ok(answers)
    }

    fn cached_entries(&self) -> u64 {
        0
    }

    fn quota(&self) -> Option<&ProviderRateLimiter> {
        self.quota.as_ref()
    }
}

fn not_found(symbol: &str) -> ProviderError {
    ProviderError::NotFound {
        symbol: symbol.to_string(),
    }
}

fn parse_quote(symbol: &str, entry: &Value) -> Result<Quote, ProviderError> {
    if entry.get("s").and_then(Value::as_str) != Some("ok") {
        return Err(not_found(symbol));
    }
    let v = entry
        .get("v")
        .ok_or_else(|| ProviderError::Malformed(format!("quote for {symbol} without v")))?;
    let num = |k: &str| v.get(k).and_then(Value::as_f64).filter(|x| x.is_finite());
    let price = num("lp").filter(|p| *p > 0.0).ok_or_else(|| {
        ProviderError::Malformed(format!("quote for {symbol} without a last price"))
    })?;
    // `tt` comes as a number or a string of epoch seconds.
    let tt = v.get("tt").and_then(|t| {
        t.as_i64()
            .or_else(|| t.as_str().and_then(|s| s.parse().ok()))
    });
    let previous = num("prev_close_price").filter(|p| *p > 0.0);
    Ok(Quote {
        price,
        change: num("ch").or(previous.map(|p| price - p)),
        change_pct: num("chp").or(previous.map(|p| (price / p - 1.0) * 100.0)),
        volume: num("volume"),
        high: num("high_price"),
        low: num("low_price"),
        open: num("open_price"),
        timestamp: tt
            .and_then(|t| DateTime::<Utc>::from_timestamp(t, 0))
            .unwrap_or_else(Utc::now),
        provider: NAME.to_string(),
        stale_age_secs: None,
        stale: false,
    })
}
