//! The seam every market data source plugs into.

use async_trait::async_trait;

use super::prices::{Candle, Interval, Quote, Span};
use super::symbols::SymbolForm;

#[derive(Debug, Clone, thiserror::Error)]
pub enum ProviderError {
    /// The provider does not know the symbol; asking again will not help,
    /// and it says nothing about the provider's health.
    #[error("{symbol}: not found")]
    NotFound { symbol: String },
    /// The provider cannot serve this kind of request (e.g. intraday bars).
    #[error("{0}")]
    Unsupported(String),
    /// Anything that says the provider itself is failing.
    #[error("{0}")]
    Unavailable(String),
}

impl ProviderError {
    /// Whether this error says the provider is unhealthy (for fallback,
    /// metrics and circuit breaking), as opposed to a property of the request.
    pub fn is_provider_failure(&self) -> bool {
        matches!(self, ProviderError::Unavailable(_))
    }
}

/// What a provider answers for one symbol of a quote request.
pub type QuoteAnswer = (String, Result<Quote, ProviderError>);

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
}
