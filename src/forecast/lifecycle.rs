//! The networks' lifecycle as a service: every trained version kept in
//! the registry, retraining on the newest closes in the background, the
//! promotion gates on held-out data and on live A/B scores, and hand
//! promotion and rollback (the pure parts: `crate::models::lifecycle`).
//!
//! States: a retraining run registers its version as
//! - `retired` when the held-out gate refuses it (the reason is kept);
//! - `champion` when it passes and no A/B share is configured;
//! - `challenger` when it passes and `ab.share` > 0: it then answers that
//!   share of (caller, symbol) pairs until the live gate, once its arm has
//!   `ab.min_scored` scored forecasts, promotes or retires it.
//!
//! A newer challenger supersedes an older one; a champion replaced by
//! promotion retires and can be brought back by rollback.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::Utc;
use serde::Serialize;

use crate::config::{AbSettings, LifecycleSettings};
use crate::market::dataset::PriceTable;
use crate::market::{DataManager, Interval, Span};
use crate::models::lifecycle::experiment::{self, ArmScores, LiveVerdict};
use crate::models::lifecycle::gate::Margins;
use crate::models::lifecycle::runs::{RunState, Runs, TrainingRun};
use crate::models::lifecycle::serving::{LiveModel, Loaded};
use crate::models::lifecycle::store::{Provenance, State, Store, VersionRecord};
use crate::models::lifecycle::{compare_on, data_end, load, load_arms, seed, MODELS};
use crate::models::neural::card::fingerprint;
use crate::models::neural::fit::SeriesFitter;
use crate::models::neural::predictor::NeuralPredictor;
use crate::models::neural::pretrain::{self, Period, Split, Trained};
use crate::models::tracking::{ScoreSums, Tracker};
use crate::models::Budget;
/// What can go wrong asking the lifecycle for something.
#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    #[error("{0:?} is not a model with versions; expected one of: lstm_predictor, transformer_predictor")]
    UnknownModel(String),
    #[error("{model} has no version {version:?}")]
    UnknownVersion { model: String, version: String },
    #[error("{0}")]
    Conflict(String),
    #[error("{0} training runs are waiting already; try again later")]
    Busy(usize),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// A version as listed: its index entry and card.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Version {
    #[serde(flatten)]
    pub record: VersionRecord,
    #[schema(value_type = Object)]
    pub card: serde_json::Value,
}

/// A running A/B test.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Experiment {
    pub model: String,
    pub champion: String,
    pub challenger: String,
    pub share: f64,
    pub arms: Arms,
    /// Whether the arms' hit rates or RMSE ratios differ at 5 % overall.
    pub significant: bool,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Arms {
    pub champion: ArmScores,
    pub challenger: ArmScores,
}

struct Job {
    run_id: String,
    model: &'static str,
}

pub struct Lifecycle {
    store: Mutex<Store>,
    runs: Mutex<Runs>,
    live: BTreeMap<&'static str, Arc<LiveModel>>,
    fitter: Arc<SeriesFitter>,
    settings: LifecycleSettings,
    ab: AbSettings,
    margins: Margins,
    symbols: Vec<String>,
    market: Arc<DataManager>,
    tracker: Arc<Tracker>,
    jobs: SyncSender<Job>,
    /// Jobs sent and not yet finished.
    waiting: std::sync::atomic::AtomicUsize,
}

fn lowered_priority() {
    // Linux nice values are per thread: this one only.
    // SAFETY: setpriority and gettid have no memory-safety preconditions.
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, 10);
    }
}

impl Lifecycle {
    /// Opens the registry at `root` (seeding each network's champion from
    /// the pretrained files in `models_dir` on first use) and starts the
    /// training thread.
    pub fn open(
        root: &Path,
        models_dir: &Path,
        settings: LifecycleSettings,
        ab: AbSettings,
        fitter: Arc<SeriesFitter>,
        market: Arc<DataManager>,
        tracker: Arc<Tracker>,
    ) -> anyhow::Result<Arc<Self>> {
        let mut store = Store::open(root)?;
        for model in MODELS {
            seed(&mut store, models_dir, model)?;
        }
        let runs = Runs::open(root.join("runs.json"))?;
        let mut live = BTreeMap::new();
        for model in MODELS {
            let (champion, challenger) = load_arms(&store, model, &fitter)?;
            live.insert(
                model,
                Arc::new(LiveModel::new(champion, challenger, ab.share)),
            );
        }
        let symbols = if settings.symbols.is_empty() {
            pretrain::stocks(&crate::market::dataset::embedded()?)
        } else {
            settings.symbols.clone()
        };
        let margins = Margins {
            rmse_ratio: settings.max_rmse_ratio_increase,
            directional_accuracy: settings.max_accuracy_drop,
            resamples: settings.bootstrap_resamples,
            ..Margins::default()
        };
        let (jobs, received) = sync_channel::<Job>(settings.queue + 1);
        let lifecycle = Arc::new(Lifecycle {
            store: Mutex::new(store),
            runs: Mutex::new(runs),
            live,
            fitter,
            settings,
            ab,
            margins,
            symbols,
            market,
            tracker,
            jobs,
            waiting: Default::default(),
        });
        lifecycle.count_versions();
        let weak = Arc::downgrade(&lifecycle);
        let handle = tokio::runtime::Handle::try_current().ok();
        std::thread::Builder::new()
            .name("tickcast-train".into())
            .spawn(move || train_jobs(weak, received, handle))
            .context("starting the training thread")?;
        Ok(lifecycle)
    }

    fn store(&self) -> std::sync::MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn runs(&self) -> std::sync::MutexGuard<'_, Runs> {
        self.runs.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn model(&self, name: &str) -> Result<(&'static str, &Arc<LiveModel>), LifecycleError> {
        self.live
            .get_key_value(name)
            .map(|(k, v)| (*k, v))
            .ok_or_else(|| LifecycleError::UnknownModel(name.to_string()))
    }

    /// The served networks, to put in the model registry.
    pub fn served(&self) -> impl Iterator<Item = Arc<LiveModel>> + '_ {
        self.live.values().cloned()
    }

    /// Every version of `model` (of every network when `None`), oldest first.
    pub fn versions(&self, model: Option<&str>) -> Result<Vec<Version>, LifecycleError> {
        if let Some(m) = model {
            self.model(m)?;
        }
        self.sync();
        let store = self.store();
        store
            .versions(model)
            .into_iter()
            .map(|record| {
                let (card, provenance) = store.card(&record.model, &record.version)?;
                let mut card = serde_json::to_value(card).map_err(anyhow::Error::from)?;
                if let (Some(p), Some(obj)) = (provenance, card.as_object_mut()) {
                    obj.insert("build".into(), p.build.into());
                    if let Some(gate) = p.gate {
                        obj.insert(
                            "gate".into(),
                            serde_json::to_value(gate).map_err(anyhow::Error::from)?,
                        );
                    }
                }
                Ok(Version { record, card })
            })
            .collect()
    }

    pub fn training_runs(&self) -> Vec<TrainingRun> {
        self.runs().list()
    }

    pub fn training_run(&self, run_id: &str) -> Option<TrainingRun> {
        self.runs().get(run_id)
    }

    /// Queues a retraining run of `model`; its id.
    pub fn retrain(&self, model: &str, requested_by: &str) -> Result<TrainingRun, LifecycleError> {
        let (model, _) = self.model(model)?;
        let run = TrainingRun::queued(model, requested_by);
        // One training plus `queue` waiting; taken in one step, so two
        // requests cannot both take the last place.
        let limit = self.settings.queue + 1;
        let taken = self.waiting.fetch_update(
            std::sync::atomic::Ordering::SeqCst,
            std::sync::atomic::Ordering::SeqCst,
            |n| (n < limit).then_some(n + 1),
        );
        if taken.is_err() {
            return Err(LifecycleError::Busy(self.settings.queue));
        }
        if let Err(e) = self.runs().add(run.clone()) {
            self.waiting
                .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
            return Err(e.into());
        }
        let job = Job {
            run_id: run.run_id.clone(),
            model,
        };
        match self.jobs.try_send(job) {
            Ok(()) => {
                tracing::info!(
                    model,
                    run_id = run.run_id,
                    requested_by,
                    "training run queued"
                );
                Ok(run)
            }
            Err(e) => {
                self.waiting
                    .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                let why = match e {
                    TrySendError::Full(_) => "the training queue is full",
                    TrySendError::Disconnected(_) => "the training thread has stopped",
                };
                self.runs().update(&run.run_id, |r| {
                    r.state = RunState::Failed;
                    r.reason = Some(why.into());
                });
                Err(LifecycleError::Busy(self.settings.queue))
            }
        }
    }

    /// Trains, gates and registers one run (on the training thread).
    fn run(&self, job: Job, handle: Option<&tokio::runtime::Handle>) {
        let started = Instant::now();
        self.runs().update(&job.run_id, |r| {
            r.state = RunState::Running;
            r.started_at = Some(Utc::now());
        });
        tracing::info!(
            model = job.model,
            run_id = job.run_id,
            "training run started"
        );
        let result = self.train_and_register(&job, handle);
        let seconds = started.elapsed().as_secs_f64();
        let outcome = match &result {
            Ok((record, _)) => match record.state {
                State::Champion => "champion",
                State::Challenger => "challenger",
                State::Retired => "retired",
            },
            Err(_) => "failed",
        };
        metrics::counter!("tickcast_training_runs_total", "model" => job.model, "outcome" => outcome)
            .increment(1);
        metrics::histogram!("tickcast_training_run_seconds", "model" => job.model).record(seconds);
        match result {
            Ok((record, epochs)) => {
                tracing::info!(
                    model = job.model,
                    run_id = job.run_id,
                    version = record.version,
                    state = outcome,
                    seconds,
                    reason = record.reason,
                    "training run finished"
                );
                self.runs().update(&job.run_id, |r| {
                    r.state = RunState::Succeeded;
                    r.finished_at = Some(Utc::now());
                    r.seconds = Some(seconds);
                    r.version = Some(record.version.clone());
                    r.outcome = Some(record.state);
                    r.reason = Some(record.reason.clone());
                    r.epochs_run = Some(epochs);
                });
            }
            Err(e) => {
                let error = format!("{e:#}");
                tracing::error!(
                    model = job.model,
                    run_id = job.run_id,
                    error,
                    "training run failed"
                );
                self.runs().update(&job.run_id, |r| {
                    r.state = RunState::Failed;
                    r.finished_at = Some(Utc::now());
                    r.seconds = Some(seconds);
                    r.reason = Some(error);
                });
            }
        }
    }

    fn plan(&self, model: &str) -> anyhow::Result<pretrain::Plan> {
        let mut plan = pretrain::plans()
            .into_iter()
            .find(|p| p.model == model)
            .with_context(|| format!("no training plan for {model}"))?;
        if self.settings.max_epochs > 0 {
            plan.training.max_epochs = self.settings.max_epochs;
        }
        if self.settings.stride > 0 {
            plan.stride = self.settings.stride;
        }
        Ok(plan)
    }

    /// The newest daily closes of the training stocks, from the data layer.
    async fn newest_closes(&self) -> anyhow::Result<PriceTable> {
        let years =
            self.settings.train_years + self.settings.validation_years + self.settings.test_years;
        let bars = years as usize * 262 + 300;
        let mut table = PriceTable::new();
        for symbol in &self.symbols {
            match self
                .market
                .history(symbol, Span::LastBars(bars), Interval::Daily)
                .await
            {
                Ok(history) => {
                    table.insert(symbol.clone(), history.candles().to_vec());
                }
                Err(e) => tracing::warn!(symbol, error = %e, "no closes for retraining; left out"),
            }
        }
        if table.is_empty() {
            anyhow::bail!(
                "no closes for any of the {} training stocks",
                self.symbols.len()
            );
        }
        Ok(table)
    }

    fn split_of(&self, table: &PriceTable) -> anyhow::Result<Split> {
        let last = table
            .values()
            .filter_map(|bars| bars.last().map(|c| c.date()))
            .max()
            .context("no closes to split")?;
        Ok(Split::newest(
            last,
            self.settings.train_years,
            self.settings.validation_years,
            self.settings.test_years,
        ))
    }

    fn train_and_register(
        &self,
        job: &Job,
        handle: Option<&tokio::runtime::Handle>,
    ) -> anyhow::Result<(VersionRecord, usize)> {
        let handle = handle.context("no async runtime to fetch closes on")?;
        let table = handle.block_on(self.newest_closes())?;
        let split = self.split_of(&table)?;
        let plan = self.plan(job.model)?;
        let symbols: Vec<String> = table.keys().cloned().collect();
        let budget =
            Budget::unlimited().within(Duration::from_secs(self.settings.time_budget_secs));
        let run_id = job.run_id.clone();
        let log = |line: &str| tracing::info!(run_id, "{line}");
        let trained = pretrain::fit(&table, &symbols, &plan, &split, &budget, &log)?;
        let epochs = trained.card.report.epochs_run;
        let record = self.submit(trained, &table, split.test, Some(&job.run_id), "gate")?;
        Ok((record, epochs))
    }

    /// Gates `trained` against the champion on `test` of `table` and
    /// registers it in the state the gate gives it (see the module docs);
    /// `by` is recorded if it becomes champion.
    pub fn submit(
        &self,
        trained: Trained,
        table: &PriceTable,
        test: Period,
        run_id: Option<&str>,
        by: &str,
    ) -> anyhow::Result<VersionRecord> {
        self.sync();
        let Trained { network, mut card } = trained;
        let (model, live) = self.model(&card.model).map_err(anyhow::Error::from)?;
        let champion = live.champion();
        let verdict = compare_on(
            table,
            test,
            (champion.network.network(), champion.version()),
            &network,
            &self.margins,
        )?;
        let state = match (verdict.passed, self.ab.share > 0.0) {
            (false, _) => State::Retired,
            (true, false) => State::Champion,
            (true, true) => State::Challenger,
        };
        let reason = match state {
            State::Retired => format!("refused by the gate: {}", verdict.reason),
            State::Champion => format!("promoted by the gate: {}", verdict.reason),
            State::Challenger => format!(
                "passed the held-out gate: {}; serving {} of traffic until the live gate decides",
                verdict.reason, self.ab.share
            ),
        };
        let mut store = self.store();
        let staging = store.stage()?;
        let weights_path = staging.dir.join(format!("{model}.safetensors"));
        network.save(&weights_path)?;
        let weights = std::fs::read(&weights_path)?;
        let now = Utc::now();
        card.version = format!(
            "{model}-{}-{}",
            now.format("%Y%m%d%H%M%S"),
            fingerprint(&weights)
        );
        std::fs::write(
            staging.dir.join(format!("{model}.json")),
            serde_json::to_string_pretty(&card)? + "\n",
        )?;
        let provenance = Provenance {
            build: concat!(env!("CARGO_PKG_NAME"), " ", env!("CARGO_PKG_VERSION")).to_string(),
            run_id: run_id.map(str::to_string),
            gate: Some(verdict),
        };
        std::fs::write(
            staging.dir.join("lifecycle.json"),
            serde_json::to_string_pretty(&provenance)? + "\n",
        )?;
        let record = VersionRecord {
            model: model.to_string(),
            version: card.version.clone(),
            state,
            created_at: now,
            reason,
            promoted_by: (state == State::Champion).then(|| by.to_string()),
            promoted_at: (state == State::Champion).then_some(now),
            run_id: run_id.map(str::to_string),
        };
        // A version that cannot be loaded is never registered.
        NeuralPredictor::load(&staging.dir, model)
            .with_context(|| format!("the new version of {model} does not load"))?;
        store.commit(staging, record.clone())?;
        self.reload(&store, model)?;
        drop(store);
        self.count_versions();
        Ok(record)
    }

    /// Serves what the registry now says for `model`.
    fn reload(&self, store: &Store, model: &'static str) -> anyhow::Result<()> {
        let (champion, challenger) = load_arms(store, model, &self.fitter)?;
        self.live[model].replace(champion, challenger);
        Ok(())
    }

    /// Makes `version` the champion of `model`, by hand.
    pub fn promote(
        &self,
        model: &str,
        version: &str,
        by: &str,
    ) -> Result<VersionRecord, LifecycleError> {
        let (model, _) = self.model(model)?;
        self.sync();
        let mut store = self.store();
        let record = store.record(model, version).cloned().ok_or_else(|| {
            LifecycleError::UnknownVersion {
                model: model.to_string(),
                version: version.to_string(),
            }
        })?;
        if record.state == State::Champion {
            return Err(LifecycleError::Conflict(format!(
                "{version} is already the champion of {model}"
            )));
        }
        // It must load before the registry says it serves.
        load(&store, model, version, &self.fitter)?;
        store.promote(model, version, None, by, &format!("promoted by {by}"))?;
        self.reload(&store, model)?;
        let record = store
            .record(model, version)
            .cloned()
            .expect("just promoted");
        drop(store);
        tracing::info!(model, version, by, "version promoted by hand");
        self.count_versions();
        Ok(record)
    }

    /// Restores the champion before the current one of `model`.
    pub fn roll_back(&self, model: &str, by: &str) -> Result<VersionRecord, LifecycleError> {
        let (model, _) = self.model(model)?;
        self.sync();
        let mut store = self.store();
        if let Some(previous) = store.previous_champion(model).map(str::to_string) {
            // It must load before the registry says it serves.
            load(&store, model, &previous, &self.fitter)?;
        }
        let restored = store.roll_back(model, by)?.ok_or_else(|| {
            LifecycleError::Conflict(format!("{model} has no earlier champion to roll back to"))
        })?;
        self.reload(&store, model)?;
        let record = store
            .record(model, &restored)
            .cloned()
            .expect("just restored");
        drop(store);
        tracing::info!(model, version = restored, by, "champion rolled back");
        self.count_versions();
        Ok(record)
    }

    /// The champion and challenger of `model` with their tracked scores;
    /// `None` without a challenger.
    fn arms_of(
        &self,
        model: &str,
        live: &LiveModel,
    ) -> Option<(Loaded, Loaded, ScoreSums, ScoreSums)> {
        let challenger = live.challenger()?;
        let champion = live.champion();
        let scores = self.tracker.version_scores(model);
        let of = |v: &str| scores.get(v).copied().unwrap_or_default();
        let (c, h) = (of(champion.version()), of(challenger.version()));
        Some((champion, challenger, c, h))
    }

    /// The A/B tests running now, with each arm's live scores.
    pub fn experiments(&self) -> Vec<Experiment> {
        self.live
            .iter()
            .filter(|_| self.ab.share > 0.0)
            .filter_map(|(model, live)| {
                let (champion, challenger, c, h) = self.arms_of(model, live)?;
                Some(Experiment {
                    model: model.to_string(),
                    champion: champion.version().to_string(),
                    challenger: challenger.version().to_string(),
                    share: self.ab.share,
                    arms: Arms {
                        champion: ArmScores::of(champion.version(), &c),
                        challenger: ArmScores::of(challenger.version(), &h),
                    },
                    significant: experiment::significant(&c, &h),
                })
            })
            .collect()
    }

    /// The live gate: promotes or retires each challenger whose arm has
    /// enough scored forecasts.
    pub fn judge_live(&self) {
        self.sync();
        for (model, live) in &self.live {
            let Some((_, challenger, c, h)) = self.arms_of(model, live) else {
                continue;
            };
            let verdict = experiment::live_verdict(&c, &h, &self.margins, self.ab.min_scored);
            let mut store = self.store();
            let result = match verdict {
                LiveVerdict::Wait(why) => {
                    tracing::debug!(
                        model,
                        challenger = challenger.version(),
                        why,
                        "live gate waits"
                    );
                    continue;
                }
                LiveVerdict::Promote(why) => store.promote(
                    model,
                    challenger.version(),
                    Some(State::Challenger),
                    "gate",
                    &format!("promoted by the live gate: {why}"),
                ),
                LiveVerdict::Retire(why) => store.set_state(
                    model,
                    challenger.version(),
                    State::Challenger,
                    State::Retired,
                    &format!("refused by the live gate: {why}"),
                ),
            };
            if let Err(e) = result.and_then(|()| self.reload(&store, model)) {
                tracing::error!(
                    model,
                    error = format!("{e:#}"),
                    "could not apply the live gate"
                );
            } else {
                tracing::info!(
                    model,
                    challenger = challenger.version(),
                    "live gate decided"
                );
            }
            drop(store);
            self.count_versions();
        }
    }

    /// Closes newer than any version of `model` has seen, for the stock
    /// with the most (a refused run counts: the same data would only train
    /// the same network again).
    fn new_closes(&self, model: &str, table: &PriceTable) -> anyhow::Result<usize> {
        let end = {
            let store = self.store();
            let mut end = None;
            for r in store.versions(Some(model)) {
                let (card, _) = store.card(model, &r.version)?;
                end = end.max(Some(data_end(&card)?));
            }
            end.with_context(|| format!("{model} has no versions"))?
        };
        Ok(table
            .values()
            .map(|bars| bars.iter().filter(|c| c.date() > end).count())
            .max()
            .unwrap_or(0))
    }

    /// One look of the retraining schedule: queues a run for each network
    /// with enough new closes and none waiting.
    pub async fn scheduled_retrain(&self) {
        // One fetch of the newest closes serves every network's count.
        let table = match self.newest_closes().await {
            Ok(table) => table,
            Err(e) => {
                tracing::warn!(
                    error = format!("{e:#}"),
                    "no closes to count for retraining"
                );
                return;
            }
        };
        for model in MODELS {
            // A challenger under test is left to its test.
            let testing = self.live[model].challenger().is_some() && self.ab.share > 0.0;
            if testing || self.runs().active(model) {
                continue;
            }
            match self.new_closes(model, &table) {
                Ok(n) if n >= self.settings.retrain_min_new_closes => {
                    tracing::info!(model, new_closes = n, "scheduled retraining");
                    if let Err(e) = self.retrain(model, "scheduler") {
                        tracing::warn!(model, error = %e, "scheduled retraining not queued");
                    }
                }
                Ok(n) => tracing::debug!(model, new_closes = n, "too few new closes to retrain"),
                Err(e) => tracing::warn!(
                    model,
                    error = format!("{e:#}"),
                    "could not count new closes"
                ),
            }
        }
    }

    /// Serves what the registry says if another process (`tickcast train
    /// --register`, a replica sharing the directory) changed it.
    pub fn sync(&self) {
        let mut store = self.store();
        match store.refresh() {
            Ok(false) => {}
            Ok(true) => {
                for model in MODELS {
                    if let Err(e) = self.reload(&store, model) {
                        tracing::error!(
                            model,
                            error = format!("{e:#}"),
                            "could not serve the registry's change"
                        );
                    }
                }
                drop(store);
                tracing::info!("model registry changed on disk; now serving its versions");
                self.count_versions();
            }
            Err(e) => tracing::error!(
                error = format!("{e:#}"),
                "could not reread the model registry"
            ),
        }
    }

    /// Starts the retraining schedule and the live gate, as configured,
    /// and a look at the registry on disk every 10 seconds.
    pub fn spawn_background(self: &Arc<Self>) {
        // Reading the index touches the disk: off the async workers.
        self.every(Duration::from_secs(10), |l| async move {
            let _ = tokio::task::spawn_blocking(move || l.sync()).await;
        });
        if self.settings.retrain_every_hours > 0 {
            let period = Duration::from_secs(self.settings.retrain_every_hours * 3600);
            self.every(period, |l| async move { l.scheduled_retrain().await });
        }
        if self.ab.share > 0.0 {
            let period = Duration::from_secs(self.ab.check_secs);
            self.every(period, |l| async move {
                let _ = tokio::task::spawn_blocking(move || l.judge_live()).await;
            });
        }
    }

    /// Runs `job` every `period` (first after one period) while the
    /// lifecycle lives.
    fn every<F, Fut>(self: &Arc<Self>, period: Duration, job: F)
    where
        F: Fn(Arc<Self>) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send,
    {
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
            loop {
                ticks.tick().await;
                let Some(lifecycle) = weak.upgrade() else {
                    break;
                };
                job(lifecycle).await;
            }
        });
    }

    fn count_versions(&self) {
        let store = self.store();
        for model in MODELS {
            let mut counts: HashMap<State, usize> = HashMap::new();
            for r in store.versions(Some(model)) {
                *counts.entry(r.state).or_default() += 1;
            }
            for (state, name) in [
                (State::Champion, "champion"),
                (State::Challenger, "challenger"),
                (State::Retired, "retired"),
            ] {
                metrics::gauge!("tickcast_model_versions", "model" => model, "state" => name)
                    .set(counts.get(&state).copied().unwrap_or(0) as f64);
            }
        }
    }
}

/// Takes jobs until the lifecycle is gone, one at a time, on this thread
/// and a one-thread pool for the tensor work, both below the server's
/// priority.
fn train_jobs(
    lifecycle: Weak<Lifecycle>,
    jobs: std::sync::mpsc::Receiver<Job>,
    handle: Option<tokio::runtime::Handle>,
) {
    lowered_priority();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .thread_name(|_| "tickcast-train-pool".into())
        .start_handler(|_| lowered_priority())
        .build();
    for job in jobs {
        let Some(lifecycle) = lifecycle.upgrade() else {
            break;
        };
        let run_id = job.run_id.clone();
        let work = std::panic::AssertUnwindSafe(|| match &pool {
            Ok(pool) => pool.install(|| lifecycle.run(job, handle.as_ref())),
            Err(_) => lifecycle.run(job, handle.as_ref()),
        });
        // A panic fails the run, not the thread (which would leave every
        // later run queued for ever).
        if let Err(panic) = std::panic::catch_unwind(work) {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic".into());
            tracing::error!(run_id, panic = what, "training run panicked");
            lifecycle.runs().update(&run_id, |r| {
                r.state = RunState::Failed;
                r.finished_at = Some(Utc::now());
                r.reason = Some(format!("the run panicked: {what}"));
            });
        }
        lifecycle
            .waiting
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}
