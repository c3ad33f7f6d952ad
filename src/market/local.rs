//! The always-available provider: the embedded dataset plus the user's price
//! files, held in memory. It needs no network and no credentials.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::NaiveDate;

use super::dataset::{self, PriceFileError};
use super::prices::{Candle, Interval, Quote, Span};
use super::provider::{Provider, ProviderError, QuoteAnswer};
use super::symbols::SymbolForm;

pub const NAME: &str = "local";

pub struct LocalProvider {
    series: BTreeMap<String, Arc<[Candle]>>,
}

impl LocalProvider {
    /// The embedded dataset, overlaid with `<SYMBOL>.csv` files from `prices_dir`
    /// (a user file replaces an embedded series of the same symbol).
    pub fn load(prices_dir: &Path) -> Result<Self, PriceFileError> {
        let mut table = dataset::embedded()?;
        table.extend(dataset::load_price_dir(prices_dir));
        Ok(Self::from_table(table))
    }

    pub fn from_table(table: dataset::PriceTable) -> Self {
        let series = table
            .into_iter()
            .filter(|(_, bars)| !bars.is_empty())
            .map(|(symbol, bars)| (symbol, Arc::from(bars)))
            .collect();
        LocalProvider { series }
    }

    pub fn symbols(&self) -> impl Iterator<Item = &str> {
        self.series.keys().map(String::as_str)
    }

    /// The newest bar date across all series.
    pub fn as_of(&self) -> Option<NaiveDate> {
        self.series
            .values()
            .filter_map(|s| s.last())
            .map(Candle::date)
            .max()
    }

    fn bars(&self, symbol: &str) -> Result<&Arc<[Candle]>, ProviderError> {
        self.series
            .get(symbol)
            .ok_or_else(|| ProviderError::NotFound {
                symbol: symbol.to_string(),
            })
    }
}

#[async_trait]
impl Provider for LocalProvider {
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
        if interval != Interval::Daily {
            return Err(ProviderError::Unsupported(
                "local data has daily bars only".to_string(),
            ));
        }
        let bars = self.bars(symbol)?;
        let selected = match span {
            Span::LastBars(n) => &bars[bars.len().saturating_sub(n)..],
            Span::Dates { start, end } => {
                let from = bars.partition_point(|b| b.date() < start);
                let to = bars.partition_point(|b| b.date() <= end);
                &bars[from..to.max(from)]
            }
        };
        Ok(selected.to_vec())
    }

    async fn quotes(&self, symbols: &[String]) -> Result<Vec<QuoteAnswer>, ProviderError> {
        Ok(symbols
            .iter()
            .map(|symbol| {
                let quote = self.bars(symbol).and_then(|bars| {
                    let (last, earlier) =
                        bars.split_last().ok_or_else(|| ProviderError::NotFound {
                            symbol: symbol.clone(),
                        })?;
                    Ok(Quote::from_bars(last, earlier.last(), NAME))
                });
                (symbol.clone(), quote)
            })
            .collect())
    }

    fn cached_entries(&self) -> u64 {
        self.series.len() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provider() -> LocalProvider {
        let d = |day| NaiveDate::from_ymd_opt(2024, 1, day).unwrap();
        let mut table = dataset::PriceTable::new();
        table.insert(
            "ABC".into(),
            vec![
                Candle::daily_close(d(2), 10.0),
                Candle::daily_close(d(3), 11.0),
                Candle::daily_close(d(4), 12.1),
            ],
        );
        LocalProvider::from_table(table)
    }

    #[tokio::test]
    async fn history_by_bar_count_and_by_dates() {
        let p = provider();
        let last2 = p
            .history("ABC", Span::LastBars(2), Interval::Daily)
            .await
            .unwrap();
        assert_eq!(
            last2.iter().map(|c| c.close).collect::<Vec<_>>(),
            [11.0, 12.1]
        );
        let all = p
            .history("ABC", Span::LastBars(99), Interval::Daily)
            .await
            .unwrap();
        assert_eq!(all.len(), 3);
        let d = |day| NaiveDate::from_ymd_opt(2024, 1, day).unwrap();
        let span = Span::Dates {
            start: d(3),
            end: d(3),
        };
        assert_eq!(
            p.history("ABC", span, Interval::Daily).await.unwrap().len(),
            1
        );
        let backwards = Span::Dates {
            start: d(4),
            end: d(2),
        };
        assert!(p
            .history("ABC", backwards, Interval::Daily)
            .await
            .unwrap()
            .is_empty());
    }

    #[tokio::test]
    async fn unknown_symbols_and_intraday_are_refused() {
        let p = provider();
        let err = p
            .history("XYZ", Span::LastBars(5), Interval::Daily)
            .await
            .unwrap_err();
        assert!(matches!(err, ProviderError::NotFound { .. }));
        assert!(!err.is_provider_failure());
        let err = p
            .history("ABC", Span::LastBars(5), Interval::Minutes(5))
            .await
            .unwrap_err();
        assert!(matches!(err, ProviderError::Unsupported(_)));
    }

    #[tokio::test]
    async fn quotes_use_the_last_two_closes() {
        let answers = provider()
            .quotes(&["ABC".to_string(), "XYZ".to_string()])
            .await
            .unwrap();
        let q = answers[0].1.as_ref().unwrap();
        assert_eq!(q.price, 12.1);
        assert!((q.change.unwrap() - 1.1).abs() < 1e-12);
        assert_eq!(q.provider, "local");
        assert!(answers[1].1.is_err());
    }
}
