//! The one door to market data: asks providers in priority order, keeps
//! per-provider counters, and keys answers by the symbol as the caller wrote it.

use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;

use super::prices::{History, Interval, Quote, Span};
use super::provider::{Provider, ProviderError};
use super::stats::{ProviderMetrics, ProviderStats};
use super::symbols::{normalize, SymbolMapper};
use crate::config::Environment;

/// Longest symbol accepted; real ones are far shorter.
const MAX_SYMBOL_LEN: usize = 40;

#[derive(Debug, thiserror::Error)]
pub enum MarketError {
    #[error("invalid symbol {symbol:?}: {reason}")]
    InvalidSymbol { symbol: String, reason: String },
    #[error("no data for {symbol} ({reason})")]
    NotFound { symbol: String, reason: String },
    #[error("no provider could supply {symbol}: {details}")]
    Unavailable { symbol: String, details: String },
}

/// Quotes keyed by the caller's symbols, and the ones nobody had, with why.
#[derive(Debug, Default)]
pub struct QuoteReport {
    pub found: Vec<(String, Quote)>,
    pub missing: Vec<(String, String)>,
}

#[derive(Debug, Clone, Serialize)]
pub struct MarketHealth {
    pub status: &'static str,
    pub environment: &'static str,
    pub providers: Vec<&'static str>,
    pub provider_priority: Vec<&'static str>,
    pub performance_metrics: std::collections::BTreeMap<&'static str, ProviderMetrics>,
    pub cache_stats: std::collections::BTreeMap<&'static str, u64>,
    pub symbol_mappings_loaded: usize,
}

struct Source {
    provider: Arc<dyn Provider>,
    stats: ProviderStats,
}

pub struct DataManager {
    sources: Vec<Source>,
    mapper: Arc<SymbolMapper>,
    environment: Environment,
}

impl DataManager {
    /// `providers` in the order they are tried.
    pub fn new(
        providers: Vec<Arc<dyn Provider>>,
        mapper: Arc<SymbolMapper>,
        environment: Environment,
    ) -> Self {
        let sources = providers
            .into_iter()
            .map(|provider| Source {
                provider,
                stats: ProviderStats::default(),
            })
            .collect();
        DataManager {
            sources,
            mapper,
            environment,
        }
    }

    pub fn mapper(&self) -> &SymbolMapper {
        &self.mapper
    }

    /// Bars for `symbol` from the first provider that has them.
    pub async fn history(
        &self,
        symbol: &str,
        span: Span,
        interval: Interval,
    ) -> Result<History, MarketError> {
        let key = validate_symbol(symbol)?;
        let mut not_found = Vec::new();
        let mut failures = Vec::new();
        for source in &self.sources {
            let name = source.provider.name();
            let Some(native) = self.mapper.to_form(&key, source.provider.symbol_form()) else {
                not_found.push(format!("{name}: not listed"));
                continue;
            };
            let started = Instant::now();
            let answer = source.provider.history(&native, span, interval).await;
            source.stats.record(
                started.elapsed(),
                answer
                    .as_ref()
                    .is_err_and(ProviderError::is_provider_failure),
            );
            match answer {
                Ok(candles) if !candles.is_empty() => {
                    return Ok(History {
                        candles,
                        provider: name.to_string(),
                    })
                }
                Ok(_) => not_found.push(format!("{name}: no bars in range")),
                Err(e) if e.is_provider_failure() => failures.push(format!("{name}: {e}")),
                Err(e) => not_found.push(format!("{name}: {e}")),
            }
        }
        if failures.is_empty() {
            Err(MarketError::NotFound {
                symbol: symbol.trim().to_string(),
                reason: not_found.join("; "),
            })
        } else {
            Err(MarketError::Unavailable {
                symbol: symbol.trim().to_string(),
                details: failures.join("; "),
            })
        }
    }

    /// Latest quotes; each symbol comes from the first provider that has it.
    pub async fn quotes(&self, symbols: &[String]) -> QuoteReport {
        let mut report = QuoteReport::default();
        // (caller's symbol, normalized symbol, last reason it is missing)
        let mut pending: Vec<(String, String, String)> = Vec::new();
        for symbol in symbols {
            match validate_symbol(symbol) {
                Ok(key) => pending.push((symbol.clone(), key, "no provider".to_string())),
                Err(e) => report.missing.push((symbol.clone(), e.to_string())),
            }
        }
        for source in &self.sources {
            if pending.is_empty() {
                break;
            }
            let name = source.provider.name();
            let form = source.provider.symbol_form();
            let mut asked: Vec<(usize, String)> = Vec::new();
            for (i, (_, key, reason)) in pending.iter_mut().enumerate() {
                match self.mapper.to_form(key, form) {
                    Some(native) => asked.push((i, native)),
                    None => *reason = format!("{name}: not listed"),
                }
            }
            if asked.is_empty() {
                continue;
            }
            let natives: Vec<String> = asked.iter().map(|(_, n)| n.clone()).collect();
            let started = Instant::now();
            let answer = source.provider.quotes(&natives).await;
            source.stats.record(
                started.elapsed(),
                answer
                    .as_ref()
                    .is_err_and(ProviderError::is_provider_failure),
            );
            let mut served = vec![false; pending.len()];
            match answer {
                Ok(answers) => {
                    for ((i, _), (_, result)) in asked.iter().zip(answers) {
                        match result {
                            Ok(quote) => {
                                served[*i] = true;
                                report.found.push((pending[*i].0.clone(), quote));
                            }
                            Err(e) => pending[*i].2 = format!("{name}: {e}"),
                        }
                    }
                }
                Err(e) => {
                    for (i, _) in &asked {
                        pending[*i].2 = format!("{name}: {e}");
                    }
                }
            }
            let mut index = 0;
            pending.retain(|_| {
                index += 1;
                !served[index - 1]
            });
        }
        report.missing.extend(
            pending
                .into_iter()
                .map(|(symbol, _, reason)| (symbol, reason)),
        );
        report
    }

    /// Counters only: never calls a provider.
    pub fn health(&self) -> MarketHealth {
        let names: Vec<&'static str> = self.sources.iter().map(|s| s.provider.name()).collect();
        let performance_metrics = self
            .sources
            .iter()
            .map(|s| (s.provider.name(), s.stats.snapshot("closed")))
            .collect();
        let cache_stats = self
            .sources
            .iter()
            .map(|s| (s.provider.name(), s.provider.cached_entries()))
            .collect();
        let status = if self.sources.is_empty() {
            "unhealthy"
        } else {
            "healthy"
        };
        MarketHealth {
            status,
            environment: self.environment.as_str(),
            providers: names.clone(),
            provider_priority: names,
            performance_metrics,
            cache_stats,
            symbol_mappings_loaded: self.mapper.len(),
        }
    }
}

/// Trims, upper-cases and checks a caller's symbol.
pub fn validate_symbol(raw: &str) -> Result<String, MarketError> {
    let symbol = normalize(raw);
    let invalid = |reason: &str| MarketError::InvalidSymbol {
        symbol: raw.to_string(),
        reason: reason.to_string(),
    };
    if symbol.is_empty() {
        return Err(invalid("empty"));
    }
    if symbol.len() > MAX_SYMBOL_LEN {
        return Err(invalid("longer than 40 characters"));
    }
    if !symbol
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || ".^:-&_=".contains(c))
    {
        return Err(invalid(
            "only letters, digits and . ^ : - & _ = are allowed",
        ));
    }
    Ok(symbol)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::market::dataset::PriceTable;
    use crate::market::local::LocalProvider;
    use crate::market::prices::Candle;
    use crate::market::provider::QuoteAnswer;
    use crate::market::symbols::SymbolForm;
    use async_trait::async_trait;
    use chrono::NaiveDate;

    /// A provider that always fails, to exercise fallback.
    struct Broken;

    #[async_trait]
    impl Provider for Broken {
        fn name(&self) -> &'static str {
            "broken"
        }
        fn symbol_form(&self) -> SymbolForm {
            SymbolForm::Fyers
        }
        async fn history(
            &self,
            _: &str,
            _: Span,
            _: Interval,
        ) -> Result<Vec<Candle>, ProviderError> {
            Err(ProviderError::Unavailable("connection refused".into()))
        }
        async fn quotes(&self, _: &[String]) -> Result<Vec<QuoteAnswer>, ProviderError> {
            Err(ProviderError::Unavailable("connection refused".into()))
        }
        fn cached_entries(&self) -> u64 {
            0
        }
    }

    fn local() -> Arc<dyn Provider> {
        let d = NaiveDate::from_ymd_opt(2024, 1, 2).unwrap();
        let mut table = PriceTable::new();
        table.insert(
            "RELIANCE.NS".into(),
            vec![
                Candle::daily_close(d, 2500.0),
                Candle::daily_close(d.succ_opt().unwrap(), 2550.0),
            ],
        );
        Arc::new(LocalProvider::from_table(table))
    }

    fn manager(providers: Vec<Arc<dyn Provider>>) -> DataManager {
        let mapper = Arc::new(SymbolMapper::built_in().unwrap());
        DataManager::new(providers, mapper, Environment::Development)
    }

    #[tokio::test]
    async fn falls_back_past_a_failing_provider_and_counts_it() {
        let dm = manager(vec![Arc::new(Broken), local()]);
        let h = dm
            .history("NSE:RELIANCE-EQ", Span::LastBars(10), Interval::Daily)
            .await
            .unwrap();
        assert_eq!(h.provider, "local");
        assert_eq!(h.closes(), [2500.0, 2550.0]);
        let health = dm.health();
        assert_eq!(health.performance_metrics["broken"].success_rate, 0.0);
        assert_eq!(health.performance_metrics["local"].total_calls, 1);
    }

    #[tokio::test]
    async fn quotes_are_keyed_by_the_callers_spelling() {
        let dm = manager(vec![Arc::new(Broken), local()]);
        let symbols = vec![
            " reliance.ns".to_string(),
            "NSE:RELIANCE-EQ".into(),
            "NOPE".into(),
            "".into(),
        ];
        let report = dm.quotes(&symbols).await;
        let found: Vec<&str> = report.found.iter().map(|(s, _)| s.as_str()).collect();
        assert_eq!(found, [" reliance.ns", "NSE:RELIANCE-EQ"]);
        let missing: Vec<&str> = report.missing.iter().map(|(s, _)| s.as_str()).collect();
        assert_eq!(missing, ["", "NOPE"]);
    }

    #[tokio::test]
    async fn unknown_symbols_are_not_found_but_failures_are_unavailable() {
        let dm = manager(vec![local()]);
        let err = dm
            .history("ZZZ", Span::LastBars(5), Interval::Daily)
            .await
            .unwrap_err();
        assert!(matches!(err, MarketError::NotFound { .. }), "{err}");
        let dm = manager(vec![Arc::new(Broken)]);
        let err = dm
            .history("RELIANCE.NS", Span::LastBars(5), Interval::Daily)
            .await
            .unwrap_err();
        assert!(matches!(err, MarketError::Unavailable { .. }), "{err}");
    }

    #[test]
    fn symbols_are_checked_at_the_edge() {
        assert_eq!(validate_symbol(" aapl ").unwrap(), "AAPL");
        assert!(validate_symbol("   ").is_err());
        assert!(validate_symbol("AA PL").is_err());
        assert!(validate_symbol(&"A".repeat(41)).is_err());
        assert!(validate_symbol("EURUSD=X").is_ok());
    }
}
