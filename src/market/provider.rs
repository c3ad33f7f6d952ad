//! The seam every market data source plugs into.

use async_trait::async_trait;

use super::limiter::ProviderRateLimiter;
use super::prices::{Candle, Interval, Quote, Span};
use super::symbols::SymbolForm;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProviderError {
    /// The provider does not know the symbol; asking again will not help,
    /// and it says nothing about the provider's health.
    #[error("{symbol}: not found")]
    NotFound { symbol: String },
    /// The provider cannot serve this kind of request (e.g. intraday bars).
    #[error("{0}")]
    Unsupported(String),
    /// Credentials missing, wrong or expired (never includes them).
    #[error("not authorised: {0}")]
    Unauthorized(String),
    /// HTTP 429 from upstream.
    #[error("rate limited{}", retry_after.map(|d| format!(" (retry after {}s)", d.as_secs())).unwrap_or_default())]
    RateLimited {
        retry_after: Option<std::time::Duration>,
    },
    /// Our own quota for the provider is spent: no request was sent.
    #[error("rate limited (quota spent)")]
    QuotaSpent,
    #[error("timed out")]
    Timeout,
    /// A non-success status that is not one of the above.
    #[error("HTTP {status}: {message}")]
    Upstream { status: u16, message: String },
    /// A body that is not what the API documents (bad JSON, an HTML page).
    #[error("malformed response: {0}")]
    Malformed(String),
    /// Connection-level failure (DNS, refused, reset, TLS).
    #[error("connection failed: {0}")]
    Transport(String),
    /// Any other failure of the provider itself.
    #[error("{0}")]
    Unavailable(String),
}

impl ProviderError {
    /// Whether this error says the provider is unhealthy (for fallback,
    /// metrics and circuit breaking), as opposed to a property of the request.
    pub fn is_provider_failure(&self) -> bool {
        !matches!(
            self,
            ProviderError::NotFound { .. }
                | ProviderError::Unsupported(_)
                | ProviderError::QuotaSpent
        )
    }

    /// Whether the provider could not answer now (so another provider, or
    /// the last good answer, should), as opposed to not having the symbol.
    /// A spent quota is that, without saying anything of its health.
    pub fn is_unavailable(&self) -> bool {
        self.is_provider_failure() || *self == ProviderError::QuotaSpent
    }
}

/// What a provider answers for one symbol of a quote request.
pub type QuoteAnswer = (String, Result<Quote, ProviderError>);

/// Spends a permit of a provider's own quota (when it has one) before an
/// upstream request; a spent quota is no request sent.
pub async fn spend(quota: Option<&ProviderRateLimiter>) -> Result<(), ProviderError> {
    match quota {
        Some(quota) => quota.acquire().await.map_err(|_| ProviderError::QuotaSpent),
        None => Ok(()),
    }
}

/// The newest bars a span of the last `n` asks for (all of them for a date
/// span); none at all is the symbol not found.
pub fn newest_bars(
    symbol: &str,
    mut candles: Vec<Candle>,
    span: Span,
) -> Result<Vec<Candle>, ProviderError> {
    if let Span::LastBars(n) = span {
        let extra = candles.len().saturating_sub(n);
        candles.drain(..extra);
    }
    if candles.is_empty() {
        return Err(ProviderError::NotFound {
            symbol: symbol.to_string(),
        });
    }
    Ok(candles)
}

/// Answers fetched symbol by symbol, as the whole call's outcome: a
/// provider that failed for every symbol is down, not missing them.
pub fn per_symbol(answers: Vec<QuoteAnswer>) -> Result<Vec<QuoteAnswer>, ProviderError> {
    let all_failed = answers
        .iter()
        .all(|(_, a)| a.as_ref().is_err_and(ProviderError::is_provider_failure));
    if !all_failed {
        return Ok(answers);
    }
    match answers.into_iter().next() {
        Some((_, Err(e))) => Err(e),
        _ => Ok(Vec::new()),
    }
}

/// A series a provider holds itself, and its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holding {
    pub symbol: String,
    pub name: String,
}

#[async_trait]
pub trait Provider: Send + Sync {
    /// The name used in health, metrics and responses (`local`, `yfinance`, `fyers`).
    fn name(&self) -> &'static str;

    /// The symbol spelling this provider expects.
    fn symbol_form(&self) -> SymbolForm;

    /// Bars for one symbol (in this provider's form), oldest first.
    async fn history(
        &self,
        symbol: &str,
        span: Span,
        interval: Interval,
    ) -> Result<Vec<Candle>, ProviderError>;

    /// Latest quotes for many symbols (in this provider's form). `Err` means
    /// the whole call failed; per-symbol failures are inside the answers.
    async fn quotes(&self, symbols: &[String]) -> Result<Vec<QuoteAnswer>, ProviderError>;

    /// Entries held in memory, for health's `cache_stats`.
    fn cached_entries(&self) -> u64;

    /// Our own quota for this provider, when it has one (for health).
    fn quota(&self) -> Option<&ProviderRateLimiter> {
        None
    }

    /// The series a provider holds itself (local data), in listing order;
    /// `None` for a live source that may have any symbol of its form.
    fn holdings(&self) -> Option<Vec<Holding>> {
        None
    }

    /// Takes new credentials for the next call; `false` from a provider
    /// that uses none.
    fn set_credentials(&self, _app_id: &str, _access_token: secrecy::SecretString) -> bool {
        false
    }
}
