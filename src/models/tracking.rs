//! Live performance: every forecast served for a symbol is kept (bounded)
//! until the data layer delivers the close it forecast, then scored.
//!
//! A forecast made from the close of day `d` with horizon `h` is scored
//! against the `h`-th daily bar after `d`: actual return = that close /
//! the forecast's current price - 1; a hit when forecast and actual have
//! the same sign (a zero is a miss), error = |forecast - actual|. The same
//! model version, symbol, day and horizon are tracked once, however often
//! asked.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Mutex;

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use super::interval::{AdaptiveConformal, DEFAULT_LEVEL};

/// A forecast the service answered with.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Forecast {
    pub model: String,
    pub model_version: String,
    pub symbol: String,
    pub made_at: DateTime<Utc>,
    /// Date of the last close the forecast was made from.
    pub as_of: NaiveDate,
    pub horizon: usize,
    pub current_price: f64,
    pub predicted_return: f64,
    pub confidence: f64,
    /// The forecast's bounded prediction interval, if it had one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interval: Option<ReturnInterval>,
}

/// A prediction interval of a return, as served.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ReturnInterval {
    pub level: f64,
    pub lower_return: f64,
    pub upper_return: f64,
}

/// A forecast with its outcome.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Scored {
    #[serde(flatten)]
    pub forecast: Forecast,
    pub target_date: NaiveDate,
    pub actual_return: f64,
    pub hit: bool,
    pub abs_error: f64,
    /// Whether the actual return fell inside the forecast's interval.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub covered: Option<bool>,
    pub scored_at: DateTime<Utc>,
}

/// One model's rolling record: the recent scored forecasts and their
/// running sums, so the rolling figures cost nothing to read.
#[derive(Debug, Default)]
struct Record {
    recent: VecDeque<Scored>,
    recent_hits: u64,
    recent_abs_error: f64,
    scored: u64,
    hits: u64,
    abs_error_sum: f64,
    last_updated: Option<DateTime<Utc>>,
    /// Scored forecasts that had an interval, and those it covered.
    with_interval: u64,
    covered: u64,
    /// Adaptive conformal inference over the forecasts at the default
    /// level: the level it would now build intervals at. Reported only;
    /// answers never change with it.
    aci: Option<AdaptiveConformal>,
}

/// Step size of the live adaptive conformal level (Gibbs & Candès).
const ACI_GAMMA: f64 = 0.005;

impl Record {
    fn add(&mut self, s: Scored, window: usize, now: DateTime<Utc>) {
        if let (Some(covered), Some(i)) = (s.covered, s.forecast.interval) {
            self.with_interval += 1;
            self.covered += u64::from(covered);
            if (i.level - DEFAULT_LEVEL).abs() < 1e-12 {
                let aci = self.aci.get_or_insert_with(|| {
                    AdaptiveConformal::new(1.0 - DEFAULT_LEVEL, ACI_GAMMA).expect("a valid level")
                });
                aci.observe(covered);
            }
        }
        self.scored += 1;
        self.hits += u64::from(s.hit);
        self.abs_error_sum += s.abs_error;
        self.last_updated = Some(now);
        self.recent_hits += u64::from(s.hit);
        self.recent_abs_error += s.abs_error;
        self.recent.push_back(s);
        while self.recent.len() > window {
            if let Some(old) = self.recent.pop_front() {
                self.recent_hits -= u64::from(old.hit);
                self.recent_abs_error -= old.abs_error;
            }
        }
    }

    /// Hit rate and mean absolute error over the recent window (0 when empty).
    fn rolling(&self) -> (f64, f64) {
        let n = self.recent.len().max(1) as f64;
        (
            self.recent_hits as f64 / n,
            self.recent_abs_error.max(0.0) / n,
        )
    }
}

/// Running sums of one model version's scored forecasts: enough for its
/// hit rate, MAE and RMSE ratio against the no-change forecast, and for
/// their confidence intervals, in constant memory.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct ScoreSums {
    pub n: u64,
    pub hits: u64,
    /// Sums of |error| and error^2 (error = predicted - actual return).
    pub abs_error: f64,
    pub sq_error: f64,
    /// Sum of error^4, of actual^2 (the no-change forecast's squared
    /// error), of actual^4 and of error^2 * actual^2.
    pub sq_error_sq: f64,
    pub sq_actual: f64,
    pub sq_actual_sq: f64,
    pub sq_error_sq_actual: f64,
}

impl ScoreSums {
    pub fn add(&mut self, predicted: f64, actual: f64) {
        let e = predicted - actual;
        let (e2, a2) = (e * e, actual * actual);
        self.n += 1;
        self.hits += u64::from(predicted * actual > 0.0);
        self.abs_error += e.abs();
        self.sq_error += e2;
        self.sq_error_sq += e2 * e2;
        self.sq_actual += a2;
        self.sq_actual_sq += a2 * a2;
        self.sq_error_sq_actual += e2 * a2;
    }
}

/// The ensemble's weights as served for one forecast.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WeightsSnapshot {
    pub symbol: String,
    pub at: DateTime<Utc>,
    pub weights: BTreeMap<String, f64>,
}

/// What makes a forecast the same as another: tracked once. Versions of a
/// model (the arms of an A/B test) are tracked apart.
type Identity = (String, String, NaiveDate, usize);

/// A symbol's waiting forecasts, ordered by the day they were made from.
#[derive(Debug, Default)]
struct Waiting {
    by_day: BTreeMap<(NaiveDate, u64), Forecast>,
    identities: HashSet<Identity>,
}

#[derive(Default)]
struct State {
    pending: HashMap<String, Waiting>,
    /// Arrival order of every forecast still (or once) waiting, for
    /// dropping the oldest: entries already scored are skipped when reached.
    arrivals: VecDeque<(u64, String, NaiveDate)>,
    next_seq: u64,
    pending_count: usize,
    pending_by_model: BTreeMap<String, usize>,
    dropped: u64,
    records: BTreeMap<String, Record>,
    /// Every version's scores since start, by model then version.
    versions: BTreeMap<String, BTreeMap<String, ScoreSums>>,
    weights: VecDeque<WeightsSnapshot>,
}

impl State {
    fn remove(&mut self, symbol: &str, key: (NaiveDate, u64)) -> Option<Forecast> {
        let waiting = self.pending.get_mut(symbol)?;
        let forecast = waiting.by_day.remove(&key)?;
        waiting.identities.remove(&(
            forecast.model.clone(),
            forecast.model_version.clone(),
            forecast.as_of,
            forecast.horizon,
        ));
        if waiting.by_day.is_empty() {
            self.pending.remove(symbol);
        }
        self.pending_count -= 1;
        if let Some(n) = self.pending_by_model.get_mut(&forecast.model) {
            *n -= 1;
            if *n == 0 {
                self.pending_by_model.remove(&forecast.model);
            }
        }
        Some(forecast)
    }
}

/// Bounded store of served forecasts and their scores. Recording costs
/// O(1) amortised plus a lookup among the symbol's own waiting forecasts;
/// a served history costs that lookup unless forecasts are due.
pub struct Tracker {
    state: Mutex<State>,
    capacity: usize,
    window: usize,
    weights_kept: usize,
}

/// One model's live figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelPerformance {
    /// Forecasts scored since start.
    pub scored: u64,
    /// Forecasts waiting for their target close.
    pub pending: usize,
    /// Over the last `window` scored forecasts.
    pub hit_rate: Option<f64>,
    pub mae: Option<f64>,
    pub window: usize,
    pub window_count: usize,
    /// Since start.
    pub hit_rate_all: Option<f64>,
    pub mae_all: Option<f64>,
    pub last_updated: Option<DateTime<Utc>>,
    /// Share of scored forecasts with an interval whose actual return fell
    /// inside it, since start.
    pub interval_coverage: Option<f64>,
    pub intervals_scored: u64,
    /// The level adaptive conformal inference would now use to keep
    /// coverage of the default-level (0.9) intervals on target.
    pub aci_level: Option<f64>,
    /// The newest scored forecasts, newest first (at most 10).
    pub latest: Vec<Scored>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub models: BTreeMap<String, ModelPerformance>,
    pub pending: usize,
    /// Forecasts dropped unscored because the store was full.
    pub dropped: u64,
    pub capacity: usize,
    /// The newest ensemble weights first.
    pub ensemble_weights: Vec<WeightsSnapshot>,
}

impl Tracker {
    /// Keeps at most `capacity` waiting forecasts (dropping the oldest) and
    /// rolling figures over the last `window` scored per model.
    pub fn new(capacity: usize, window: usize) -> Self {
        Tracker {
            state: Mutex::default(),
            capacity: capacity.max(1),
            window: window.max(1),
            weights_kept: 100,
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Keeps `forecast` until its target close arrives.
    pub fn record(&self, forecast: Forecast) {
        if !forecast.predicted_return.is_finite() || forecast.current_price <= 0.0 {
            return;
        }
        let mut state = self.state();
        let identity = (
            forecast.model.clone(),
            forecast.model_version.clone(),
            forecast.as_of,
            forecast.horizon,
        );
        let waiting = state.pending.entry(forecast.symbol.clone()).or_default();
        if !waiting.identities.insert(identity) {
            return;
        }
        metrics::counter!("tickcast_predictions_tracked_total", "model" => forecast.model.clone())
            .increment(1);
        let state = &mut *state;
        let seq = state.next_seq;
        state.next_seq += 1;
        state
            .arrivals
            .push_back((seq, forecast.symbol.clone(), forecast.as_of));
        *state
            .pending_by_model
            .entry(forecast.model.clone())
            .or_default() += 1;
        state.pending_count += 1;
        if let Some(waiting) = state.pending.get_mut(&forecast.symbol) {
            waiting.by_day.insert((forecast.as_of, seq), forecast);
        }
        // Drop the oldest forecasts of all; arrivals already scored are
        // skipped (each is passed over once, so this is O(1) amortised).
        while state.pending_count > self.capacity {
            let Some((seq, symbol, as_of)) = state.arrivals.pop_front() else {
                break;
            };
            if state.remove(&symbol, (as_of, seq)).is_some() {
                state.dropped += 1;
            }
        }
        // Scored forecasts leave their arrival behind; once those are half
        // the queue, sweep them out (after as many removals: amortised O(1)).
        if state.arrivals.len() > 2 * state.pending_count + 64 {
            let pending = &state.pending;
            state.arrivals.retain(|(seq, symbol, as_of)| {
                pending
                    .get(symbol)
                    .is_some_and(|w| w.by_day.contains_key(&(*as_of, *seq)))
            });
        }
        metrics::gauge!("tickcast_predictions_pending").set(state.pending_count as f64);
    }

    /// Keeps the ensemble's weights as served (the newest 100).
    pub fn record_weights(&self, snapshot: WeightsSnapshot) {
        for (learner, w) in &snapshot.weights {
            metrics::gauge!("tickcast_ensemble_weight", "learner" => learner.clone()).set(*w);
        }
        let mut state = self.state();
        state.weights.push_back(snapshot);
        while state.weights.len() > self.weights_kept {
            state.weights.pop_front();
        }
    }

    /// Scores the waiting forecasts for `symbol` that `bars` (daily
    /// closes, oldest first) now reach.
    pub fn observe(&self, symbol: &str, bars: &[(NaiveDate, f64)]) {
        self.score(symbol, bars.len(), |i| bars[i]);
    }

    /// Scores against `n` daily bars read through `bar(i)` (oldest first);
    /// only the forecasts made before the newest bar are looked at.
    fn score(&self, symbol: &str, n: usize, bar: impl Fn(usize) -> (NaiveDate, f64)) {
        let Some(newest) = n.checked_sub(1).map(|i| bar(i).0) else {
            return;
        };
        let mut state = self.state();
        let Some(waiting) = state.pending.get(symbol) else {
            return;
        };
        // Forecasts made from days before the newest bar may be due.
        let candidates: Vec<(NaiveDate, u64)> = waiting
            .by_day
            .range(..(newest, 0))
            .map(|(key, _)| *key)
            .collect();
        let now = Utc::now();
        let first_day = bar(0).0;
        let mut scored = Vec::new();
        for key in candidates {
            let Some(f) = state.pending.get(symbol).and_then(|w| w.by_day.get(&key)) else {
                continue;
            };
            // The bars must reach back to the forecast day, or bars in
            // between could be missing from them.
            if first_day > f.as_of {
                continue;
            }
            let after = partition_point(n, |i| bar(i).0 <= f.as_of);
            let target = after + f.horizon - 1;
            if target >= n {
                continue;
            }
            let (target_date, close) = bar(target);
            let Some(f) = state.remove(symbol, key) else {
                continue;
            };
            let actual = close / f.current_price - 1.0;
            scored.push(Scored {
                hit: f.predicted_return * actual > 0.0,
                abs_error: (f.predicted_return - actual).abs(),
                covered: f
                    .interval
                    .map(|i| i.lower_return <= actual && actual <= i.upper_return),
                forecast: f,
                target_date,
                actual_return: actual,
                scored_at: now,
            });
        }
        metrics::gauge!("tickcast_predictions_pending").set(state.pending_count as f64);
        for s in scored {
            let model = s.forecast.model.clone();
            state
                .versions
                .entry(model.clone())
                .or_default()
                .entry(s.forecast.model_version.clone())
                .or_default()
                .add(s.forecast.predicted_return, s.actual_return);
            let record = state.records.entry(model.clone()).or_default();
            record.add(s, self.window, now);
            let (hit_rate, mae) = record.rolling();
            metrics::counter!("tickcast_predictions_scored_total", "model" => model.clone())
                .increment(1);
            metrics::gauge!("tickcast_prediction_hit_rate", "model" => model.clone()).set(hit_rate);
            if record.with_interval > 0 {
                let coverage = record.covered as f64 / record.with_interval as f64;
                metrics::gauge!("tickcast_prediction_interval_coverage", "model" => model.clone())
                    .set(coverage);
            }
            metrics::gauge!("tickcast_prediction_mae", "model" => model).set(mae);
        }
    }

    /// The scores of each version of `model` since start.
    pub fn version_scores(&self, model: &str) -> BTreeMap<String, ScoreSums> {
        self.state()
            .versions
            .get(model)
            .cloned()
            .unwrap_or_default()
    }

    pub fn report(&self) -> Report {
        let state = self.state();
        let mut names: Vec<&str> = state.records.keys().map(String::as_str).collect();
        names.extend(state.pending_by_model.keys().map(String::as_str));
        names.sort_unstable();
        names.dedup();
        let models = names
            .into_iter()
            .map(|name| {
                let empty = Record::default();
                let r = state.records.get(name).unwrap_or(&empty);
                let (hit_rate, mae) = r.rolling();
                let has_recent = !r.recent.is_empty();
                let all = (r.scored > 0).then_some(r.scored as f64);
                let perf = ModelPerformance {
                    scored: r.scored,
                    pending: state.pending_by_model.get(name).copied().unwrap_or(0),
                    hit_rate: has_recent.then_some(hit_rate),
                    mae: has_recent.then_some(mae),
                    window: self.window,
                    window_count: r.recent.len(),
                    hit_rate_all: all.map(|n| r.hits as f64 / n),
                    mae_all: all.map(|n| r.abs_error_sum / n),
                    last_updated: r.last_updated,
                    interval_coverage: (r.with_interval > 0)
                        .then(|| r.covered as f64 / r.with_interval as f64),
                    intervals_scored: r.with_interval,
                    aci_level: r.aci.map(|a| a.level()),
                    latest: r.recent.iter().rev().take(10).cloned().collect(),
                };
                (name.to_string(), perf)
            })
            .collect();
        Report {
            models,
            pending: state.pending_count,
            dropped: state.dropped,
            capacity: self.capacity,
            ensemble_weights: state.weights.iter().rev().cloned().collect(),
        }
    }
}

impl crate::market::HistoryObserver for Tracker {
    fn observe(&self, symbol: &str, history: &crate::market::History) {
        let candles = history.candles();
        self.score(symbol, candles.len(), |i| {
            (candles[i].date(), candles[i].close)
        });
    }
}

/// The first index in `0..n` where `before` turns false (it must be true,
/// then false, along the range).
fn partition_point(n: usize, before: impl Fn(usize) -> bool) -> usize {
    let (mut lo, mut hi) = (0, n);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if before(mid) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2024, 3, d).unwrap()
    }

    fn forecast(model: &str, as_of: u32, predicted: f64) -> Forecast {
        Forecast {
            model: model.into(),
            model_version: "v1".into(),
            symbol: "ABC".into(),
            made_at: Utc::now(),
            as_of: day(as_of),
            horizon: 1,
            current_price: 100.0,
            predicted_return: predicted,
            confidence: 0.5,
            interval: None,
        }
    }

    #[test]
    fn live_interval_coverage_and_the_adaptive_level_follow_the_outcomes() {
        let t = Tracker::new(100, 50);
        let bars: Vec<(NaiveDate, f64)> = (1..=11).map(|d| (day(d), 100.0 + d as f64)).collect();
        // Ten forecasts whose next close rises about 1 %: intervals of
        // +-0.5 % around 0 miss; the one around 1 % covers.
        for d in 1..=10 {
            let centre = if d == 10 { 0.01 } else { 0.0 };
            t.record(Forecast {
                interval: Some(ReturnInterval {
                    level: 0.9,
                    lower_return: centre - 0.005,
                    upper_return: centre + 0.005,
                }),
                current_price: 100.0 + d as f64,
                ..forecast("m", d, centre)
            });
        }
        t.record(forecast("plain", 3, 0.01));
        t.observe("ABC", &bars);
        let r = t.report();
        let m = &r.models["m"];
        assert_eq!((m.intervals_scored, m.interval_coverage), (10, Some(0.1)));
        // Nine misses in ten: ACI widens (its level rises above 0.9).
        let aci = m.aci_level.unwrap();
        assert!(
            (aci - (0.9 + 0.005 * (9.0 * 0.9 - 0.1))).abs() < 1e-12,
            "{aci}"
        );
        let plain = &r.models["plain"];
        assert_eq!(
            (
                plain.intervals_scored,
                plain.interval_coverage,
                plain.aci_level
            ),
            (0, None, None)
        );
    }

    #[test]
    fn a_forecast_is_scored_once_its_next_close_arrives() {
        let t = Tracker::new(100, 50);
        t.record(forecast("m", 4, 0.01));
        t.record(forecast("m", 4, 0.02)); // same day again: tracked once
        t.record(forecast("n", 4, -0.01));
        // Data up to the forecast day: nothing to score yet.
        t.observe("ABC", &[(day(1), 99.0), (day(4), 100.0)]);
        let r = t.report();
        assert_eq!((r.pending, r.models["m"].scored), (2, 0));
        // The next close rises 2 %.
        t.observe("ABC", &[(day(4), 100.0), (day(5), 102.0), (day(6), 90.0)]);
        let r = t.report();
        assert_eq!(r.pending, 0);
        let m = &r.models["m"];
        assert_eq!((m.scored, m.hit_rate, m.window_count), (1, Some(1.0), 1));
        assert!((m.mae.unwrap() - 0.01).abs() < 1e-12);
        assert_eq!(m.latest[0].target_date, day(5));
        let n = &r.models["n"];
        assert_eq!(n.hit_rate, Some(0.0));
        assert!((n.mae_all.unwrap() - 0.03).abs() < 1e-12);
    }

    #[test]
    fn other_symbols_and_older_data_leave_forecasts_waiting() {
        let t = Tracker::new(100, 50);
        t.record(forecast("m", 4, 0.01));
        t.observe("XYZ", &[(day(4), 1.0), (day(5), 2.0)]);
        t.observe("ABC", &[(day(1), 1.0), (day(2), 2.0)]);
        assert_eq!(t.report().pending, 1);
    }

    #[test]
    fn the_store_is_bounded_and_drops_the_oldest() {
        let t = Tracker::new(2, 50);
        for d in 1..=3 {
            t.record(forecast("m", d, 0.01));
        }
        let r = t.report();
        assert_eq!((r.pending, r.dropped), (2, 1));
        // The forecast of day 1 was dropped: day 2's next close scores day 2 only.
        t.observe("ABC", &[(day(2), 100.0), (day(3), 101.0)]);
        assert_eq!(t.report().models["m"].scored, 1);
    }

    #[test]
    fn rolling_figures_cover_the_window_only() {
        let t = Tracker::new(100, 2);
        let bars: Vec<(NaiveDate, f64)> = (1..=5).map(|d| (day(d), 100.0 + d as f64)).collect();
        // Three misses then... all forecasts say down while prices rise.
        for d in 1..=3 {
            t.record(forecast("m", d, -0.01));
        }
        t.record(forecast("m", 4, 0.5));
        t.observe("ABC", &bars);
        let m = &t.report().models["m"];
        assert_eq!((m.scored, m.window_count), (4, 2));
        assert_eq!(m.hit_rate, Some(0.5));
        assert_eq!(m.hit_rate_all, Some(0.25));
    }

    #[test]
    fn each_version_is_tracked_and_scored_apart() {
        let t = Tracker::new(100, 10);
        let bars: Vec<(NaiveDate, f64)> = (1..=3).map(|d| (day(d), 100.0 + d as f64)).collect();
        let mut champion = forecast("m", 1, 0.02);
        champion.model_version = "v1".into();
        let mut challenger = forecast("m", 1, -0.01);
        challenger.model_version = "v2".into();
        t.record(champion.clone());
        t.record(challenger);
        t.record(champion); // the same version, day and horizon: once
        t.observe("ABC", &bars);
        let scores = t.version_scores("m");
        let actual = 102.0 / 100.0 - 1.0;
        assert_eq!(scores["v1"].n, 1);
        assert_eq!(scores["v1"].hits, 1);
        assert_eq!(scores["v2"].hits, 0);
        assert!((scores["v2"].abs_error - (actual + 0.01)).abs() < 1e-12);
        assert!((scores["v1"].sq_actual - actual * actual).abs() < 1e-15);
        assert_eq!(t.report().models["m"].scored, 2);
    }
}
