//! The always-available provider: the embedded dataset plus the user's price
//! files, held in memory. It needs no network and no credentials.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use chrono::NaiveDate;

use super::dataset::{self, PriceFileError};
use super::prices::{Candle, Interval, Quote, Span};
use super::provider::{Holding, Provider, ProviderError, QuoteAnswer};
use super::symbols::SymbolForm;

pub const NAME: &str = "local";

pub struct LocalProvider {
    embedded: BTreeMap<String, Arc<[Candle]>>,
    /// The user's price files, over the embedded series of the same symbol.
    user: RwLock<BTreeMap<String, Arc<[Candle]>>>,
    /// Watches the user's price directory for new, changed and removed files.
    watch: Option<Watch>,
}

struct Watch {
    dir: PathBuf,
    every: Duration,
    state: Mutex<WatchState>,
}

#[derive(Default)]
struct WatchState {
    scanned: Option<Instant>,
    /// Modification time and length of each file when it was last read.
    stamps: BTreeMap<PathBuf, (Option<SystemTime>, u64)>,
}

impl LocalProvider {
    /// The embedded dataset, overlaid with `<SYMBOL>.csv` files from `prices_dir`
    /// (a user file replaces an embedded series of the same symbol).
    pub fn load(prices_dir: &Path) -> Result<Self, PriceFileError> {
        let provider = Self::from_table(dataset::embedded_all()?);
        let watch = Watch {
            dir: prices_dir.to_path_buf(),
            every: Duration::ZERO,
            state: Mutex::default(),
        };
        provider.rescan(&watch);
        Ok(LocalProvider {
            watch: Some(watch),
            ..provider
        })
    }

    /// Looks for changed user files at most once every `every` (on the
    /// first request after it), so a file that grows is served as it grows.
    pub fn rescanning_every(mut self, every: Duration) -> Self {
        if let Some(watch) = &mut self.watch {
            watch.every = every;
        }
        self
    }

    pub fn from_table(table: dataset::PriceTable) -> Self {
        let embedded = table
            .into_iter()
            .filter(|(_, bars)| !bars.is_empty())
            .map(|(symbol, bars)| (symbol, Arc::from(bars)))
            .collect();
        LocalProvider {
            embedded,
            user: RwLock::default(),
            watch: None,
        }
    }

    /// Every symbol served, sorted.
    pub fn symbols(&self) -> Vec<String> {
        let user = self.user.read().unwrap_or_else(|p| p.into_inner());
        let mut all: Vec<String> = self.embedded.keys().chain(user.keys()).cloned().collect();
        all.sort();
        all.dedup();
        all
    }

    /// The newest bar date across all series.
    pub fn as_of(&self) -> Option<NaiveDate> {
        let user = self.user.read().unwrap_or_else(|p| p.into_inner());
        self.embedded
            .values()
            .chain(user.values())
            .filter_map(|s| s.last())
            .map(Candle::date)
            .max()
    }

    /// Re-reads user files that are new or changed since the last scan.
    fn rescan(&self, watch: &Watch) {
        let mut state = watch.state.lock().unwrap_or_else(|p| p.into_inner());
        if state.scanned.is_some_and(|at| at.elapsed() < watch.every) {
            return;
        }
        state.scanned = Some(Instant::now());
        let files = dataset::price_files(&watch.dir);
        let mut seen = BTreeMap::new();
        for (symbol, path) in files {
            let stamp = std::fs::metadata(&path)
                .map(|m| (m.modified().ok(), m.len()))
                .unwrap_or((None, 0));
            if state.stamps.get(&path) != Some(&stamp) {
                match dataset::load_price_file(&symbol, &path).filter(|b| !b.is_empty()) {
                    Some(bars) => {
                        self.user
                            .write()
                            .unwrap_or_else(|p| p.into_inner())
                            .insert(symbol.clone(), Arc::from(bars));
                    }
                    // A file being written may be half there: keep serving
                    // the last good read and try again next scan.
                    None => {
                        if let Some(old) = state.stamps.get(&path) {
                            seen.insert(path.clone(), (symbol, *old));
                        }
                        continue;
                    }
                }
            }
            seen.insert(path, (symbol, stamp));
        }
        let mut user = self.user.write().unwrap_or_else(|p| p.into_inner());
        user.retain(|symbol, _| seen.values().any(|(s, _)| s == symbol));
        state.stamps = seen
            .into_iter()
            .map(|(path, (_, stamp))| (path, stamp))
            .collect();
    }

    fn bars(&self, symbol: &str) -> Result<Arc<[Candle]>, ProviderError> {
        if let Some(watch) = &self.watch {
            self.rescan(watch);
        }
        let user = self.user.read().unwrap_or_else(|p| p.into_inner());
        user.get(symbol)
            .or_else(|| self.embedded.get(symbol))
            .cloned()
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

    /// The embedded series, then the user's files of other symbols (each
    /// sorted); a user file's name is its symbol.
    fn holdings(&self) -> Option<Vec<Holding>> {
        if let Some(watch) = &self.watch {
            self.rescan(watch);
        }
        let user = self.user.read().unwrap_or_else(|p| p.into_inner());
        let embedded = self.embedded.keys();
        let extra = user.keys().filter(|s| !self.embedded.contains_key(*s));
        Some(
            embedded
                .chain(extra)
                .map(|symbol| Holding {
                    name: dataset::embedded_name(symbol).unwrap_or(symbol).to_string(),
                    symbol: symbol.clone(),
                })
                .collect(),
        )
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
        self.symbols().len() as u64
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
    async fn a_user_file_that_grows_is_served_as_it_grows() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("zzz.csv");
        let header = "Date,Open,High,Low,Close,Adj Close,Volume\n";
        std::fs::write(&file, format!("{header}2024-01-02,1,1,1,10,10,5\n")).unwrap();
        let p = LocalProvider::load(dir.path()).unwrap();
        let bars = |p: &LocalProvider| {
            futures::executor::block_on(p.history("ZZZ", Span::LastBars(9), Interval::Daily))
                .map(|b| b.len())
        };
        assert_eq!(bars(&p).unwrap(), 1);
        std::fs::write(
            &file,
            format!("{header}2024-01-02,1,1,1,10,10,5\n2024-01-03,1,1,1,11,11,5\n"),
        )
        .unwrap();
        assert_eq!(bars(&p).unwrap(), 2);
        // Half-written: the last good read is kept.
        std::fs::write(&file, format!("{header}2024-01-0")).unwrap();
        assert_eq!(bars(&p).unwrap(), 2);
        std::fs::remove_file(&file).unwrap();
        assert!(bars(&p).is_err());
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
