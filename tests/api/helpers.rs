//! Starts the real application on a free port, with its state in a temp dir.

use std::path::PathBuf;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Map, Value};
use tempfile::TempDir;
use tickcast::config::{CliOverrides, Settings};
use tickcast::models::prediction::Reported;
use tickcast::models::{
    Allocation, Budget, Forecast, ForecastDetails, Horizon, InputType, Model, ModelError,
    ModelInfo, ModelInput, Prediction, Registry,
};
use tickcast::Application;
use tokio::sync::oneshot;

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    /// Keeps the state directory alive as long as the app.
    pub _dir: Arc<TempDir>,
    shutdown: Option<oneshot::Sender<()>>,
    pub server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let resp = self
            .client
            .get(self.url(path))
            .send()
            .await
            .expect("request sent");
        read(resp).await
    }

    /// A GET answered with text (metrics, scripts), read whole.
    pub async fn get_text(&self, path: &str) -> String {
        let resp = self
            .client
            .get(self.url(path))
            .send()
            .await
            .expect("request sent");
        resp.text().await.expect("body read")
    }

    pub async fn get_as(&self, user: &str, path: &str) -> (u16, Value) {
        let resp = self
            .client
            .get(self.url(path))
            .header("x-user-id", user)
            .send()
            .await
            .expect("request sent");
        read(resp).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let resp = self
            .client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .expect("request sent");
        read(resp).await
    }

    pub async fn post_raw(&self, path: &str, content_type: &str, body: Vec<u8>) -> (u16, Value) {
        let resp = self
            .client
            .post(self.url(path))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("request sent");
        read(resp).await
    }

    /// Stops accepting connections; in-flight requests finish.
    pub fn begin_shutdown(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

pub async fn read(resp: reqwest::Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    let text = resp.text().await.expect("body read");
    let body = serde_json::from_str(&text)
        .unwrap_or_else(|_| panic!("not JSON (status {status}): {text:?}"));
    (status, body)
}

/// `n` daily rows of a wavy series from 2024-01-01 in Yahoo's download
/// format (a user price file), and their closes.
pub fn wavy_prices(n: usize) -> (String, Vec<f64>) {
    use std::fmt::Write as _;
    let start = chrono::NaiveDate::from_ymd_opt(2024, 1, 1).unwrap();
    let mut text = String::from("Date,Open,High,Low,Close,Adj Close,Volume\n");
    let mut closes = Vec::new();
    for i in 0..n {
        let close = 100.0 * (1.0 + 0.05 * (i as f64 * 0.37).sin() + 0.001 * i as f64);
        let day = start + chrono::Days::new(i as u64);
        writeln!(text, "{day},{close},{close},{close},{close},{close},1000").unwrap();
        closes.push(close);
    }
    (text, closes)
}

/// Settings as a fresh machine has them, with state and user files in `dir`.
pub fn test_settings(dir: &std::path::Path) -> Settings {
    let cli = CliOverrides {
        bind: Some("127.0.0.1".into()),
        port: Some(0),
    };
    let mut s = Settings::load_from(&PathBuf::from("/nonexistent"), false, &cli, |_| None)
        .expect("built-in settings load");
    s.catalog.subscriptions_db = dir.join("state/subscriptions.sqlite3");
    s.lifecycle.registry_dir = dir.join("state/registry");
    s.data.prices_dir = dir.join("prices");
    // Tests never leave loopback: live providers only where a test mocks them,
    // and no startup probe (tests count the requests a mock receives).
    s.market.providers = vec![tickcast::config::ProviderName::Local];
    s.market.probe_on_start = false;
    s
}

/// The app as the binary builds it, with the models it serves.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}, tickcast::models::served()).await
}

pub async fn spawn_app_with(configure: impl FnOnce(&mut Settings), registry: Registry) -> TestApp {
    spawn_app_in(Arc::new(tempfile::tempdir().unwrap()), configure, registry).await
}

/// Starts an app whose state lives in `dir` (reuse it to simulate a restart).
pub async fn spawn_app_in(
    dir: Arc<TempDir>,
    configure: impl FnOnce(&mut Settings),
    registry: Registry,
) -> TestApp {
    let mut settings = test_settings(dir.path());
    configure(&mut settings);
    let app = Application::build_with(settings, registry)
        .await
        .expect("app builds");
    let address = format!("http://{}", app.local_addr().unwrap());
    let (tx, rx) = oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async {
        let _ = rx.await;
    }));
    TestApp {
        address,
        client: reqwest::Client::new(),
        _dir: dir,
        shutdown: Some(tx),
        server,
    }
}

/// A simple real predictor for exercising the HTTP seam: the next return is
/// the mean of the last five returns. Optional `params.sleep_ms` and
/// `params.panic` simulate slow and buggy models.
pub struct MeanDrift {
    info: ModelInfo,
}

impl MeanDrift {
    pub const NAME: &'static str = "mean_drift";
}

impl Default for MeanDrift {
    fn default() -> Self {
        MeanDrift {
            info: ModelInfo {
                name: Self::NAME,
                category: "test",
                description: "mean of the last five returns",
                input_type: InputType::PriceSeries,
                output_type: "price_prediction",
                complexity: "low",
                latency: "<1ms",
            },
        }
    }
}

/// What [`MeanDrift`] accepts.
#[derive(Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DriftParams {
    lookback: Option<usize>,
    sleep_ms: Option<u64>,
    panic: Option<bool>,
}

impl Model for MeanDrift {
    type Params = DriftParams;

    fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn lookback(&self, params: &DriftParams) -> usize {
        params.lookback.unwrap_or(30)
    }

    fn predict(
        &self,
        input: &ModelInput,
        params: &DriftParams,
        _: &Budget,
    ) -> Result<Prediction, ModelError> {
        if let Some(ms) = params.sleep_ms {
            std::thread::sleep(std::time::Duration::from_millis(ms));
        }
        if params.panic == Some(true) {
            panic!("deliberate test panic");
        }
        let ModelInput::Series(series) = input else {
            return Err(ModelError::InvalidInput("expects one series".into()));
        };
        let closes = series.closes();
        if closes.len() < 6 {
            return Err(ModelError::InsufficientData(format!(
                "needs at least 6 prices, got {}",
                closes.len()
            )));
        }
        let tail = &closes[closes.len() - 6..];
        let mean = tail.windows(2).map(|w| w[1] / w[0] - 1.0).sum::<f64>() / 5.0;
        let mut extra = Map::new();
        extra.insert("observations".into(), closes.len().into());
        let details = ForecastDetails::Reported(Reported(extra));
        // The share of the five returns with the mean's sign.
        let agreeing = tail
            .windows(2)
            .filter(|w| (w[1] / w[0] - 1.0) * mean > 0.0)
            .count();
        let confidence = agreeing as f64 / 5.0;
        Ok(Prediction::Forecast(Forecast::new(
            mean,
            series.last(),
            confidence,
            Horizon::ONE,
            details,
        )))
    }
}

/// A multi-series model: weights proportional to each series' last close.
pub struct PriceWeighted {
    info: ModelInfo,
}

impl Default for PriceWeighted {
    fn default() -> Self {
        PriceWeighted {
            info: ModelInfo {
                name: "price_weighted",
                category: "test",
                description: "weights by last close",
                input_type: InputType::MultiSeries,
                output_type: "allocation",
                complexity: "low",
                latency: "<1ms",
            },
        }
    }
}

/// What [`PriceWeighted`] accepts.
#[derive(Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WeightedParams {
    symbols: Option<Vec<String>>,
}

impl Model for PriceWeighted {
    type Params = WeightedParams;

    fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn lookback(&self, _: &WeightedParams) -> usize {
        10
    }

    fn assets<'p>(&self, params: &'p WeightedParams) -> Option<&'p [String]> {
        params.symbols.as_deref()
    }

    fn predict(
        &self,
        input: &ModelInput,
        _: &WeightedParams,
        _: &Budget,
    ) -> Result<Prediction, ModelError> {
        let ModelInput::Assets(assets) = input else {
            return Err(ModelError::InvalidInput("expects several series".into()));
        };
        let total: f64 = assets.iter().map(|(_, s)| s.last()).sum();
        let allocation: Map<String, Value> = assets
            .iter()
            .map(|(name, s)| (name.clone(), (s.last() / total).into()))
            .collect();
        let lengths: Map<String, Value> = assets
            .iter()
            .map(|(name, s)| (name.clone(), s.len().into()))
            .collect();
        let mut out = Map::new();
        out.insert("allocation".into(), allocation.into());
        out.insert("lengths".into(), lengths.into());
        Ok(Prediction::Allocation(Allocation::Reported(Reported(out))))
    }
}

pub fn test_registry() -> Registry {
    let mut r = Registry::default();
    r.register(MeanDrift::default());
    r.register(PriceWeighted::default());
    r
}

/// The embedded dataset's closes for one symbol, read independently of the app.
pub fn embedded_closes(symbol: &str) -> Vec<f64> {
    let file = std::fs::File::open(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/data/sp500_dataset.csv.gz"
    ))
    .unwrap();
    let mut csv = csv::Reader::from_reader(flate2::read::GzDecoder::new(file));
    let col = csv
        .headers()
        .unwrap()
        .iter()
        .position(|h| h == symbol)
        .unwrap();
    csv.records()
        .map(|r| r.unwrap()[col].parse::<f64>().unwrap())
        .collect()
}

/// Yahoo's chart answer for AAPL (daily), as the mock upstream replays it.
pub fn yahoo_chart() -> String {
    std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/yahoo/chart_AAPL_daily.json"
    ))
    .expect("fixture")
}

/// A Yahoo chart body holding `symbol`'s newest `n` embedded closes (as
/// open, high, low, close and adjusted close), in the format Yahoo sends.
pub fn yahoo_chart_of(symbol: &str, n: usize) -> String {
    let table = tickcast::market::dataset::embedded_all().expect("embedded data");
    let bars = &table[symbol];
    let bars = &bars[bars.len().saturating_sub(n)..];
    let stamps: Vec<i64> = bars
        .iter()
        .map(|b| b.time.timestamp() + 14 * 3600 + 1800)
        .collect();
    let closes: Vec<f64> = bars.iter().map(|b| b.close).collect();
    let volume = vec![1_000_000u64; bars.len()];
    serde_json::json!({"chart": {"result": [{
        "meta": {"currency": "USD", "symbol": symbol, "regularMarketPrice": closes.last()},
        "timestamp": stamps,
        "indicators": {
            "quote": [{"open": closes, "high": closes, "low": closes, "close": closes, "volume": volume}],
            "adjclose": [{"adjclose": closes}],
        },
    }], "error": null}})
    .to_string()
}

/// A Yahoo mock answering every chart request with AAPL's newest `n`
/// embedded closes.
pub async fn yahoo_answering(n: usize) -> wiremock::MockServer {
    let yahoo = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::path_regex("^/v8/finance/chart/"))
        .respond_with(
            wiremock::ResponseTemplate::new(200)
                .set_body_raw(yahoo_chart_of("AAPL", n), "application/json"),
        )
        .mount(&yahoo)
        .await;
    yahoo
}

/// Settings that try Yahoo at `uri` first, then `rest`; rate-based breaker
/// opening off, so tests decide failures.
pub fn yahoo_first(s: &mut Settings, uri: String, rest: &[tickcast::config::ProviderName]) {
    s.market.providers = std::iter::once(tickcast::config::ProviderName::Yfinance)
        .chain(rest.iter().copied())
        .collect();
    s.yahoo.base_url = uri;
    s.market.breaker_failure_rate = 0.0;
}
