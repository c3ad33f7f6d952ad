use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tickcast::config::{CliOverrides, Settings};
use tickcast::Application;

/// Stock price predictions and portfolio optimisation over real market data.
#[derive(Parser)]
#[command(name = "tickcast", version, about)]
struct Cli {
    /// Config directory (holding default.toml and <environment>.toml) or a single TOML file.
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Address to listen on (server.bind).
    #[arg(long, global = true)]
    bind: Option<String>,
    /// Port to listen on (server.port).
    #[arg(long, global = true)]
    port: Option<u16>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the HTTP API (the default).
    Serve,
    /// Train the LSTM and Transformer on the embedded dataset and write
    /// their weights and model cards; with --register, retrain them on the
    /// newest closes into the model registry instead.
    Train {
        /// Where to write `<model>.safetensors` and `<model>.json`.
        #[arg(long, default_value = "models")]
        out: PathBuf,
        /// Train only this model (lstm_predictor or transformer_predictor).
        #[arg(long)]
        model: Option<String>,
        /// Retrain on the newest closes of the data layer (lifecycle.*
        /// settings), gate against the registry's champion and register the
        /// version, as POST /api/admin/models/{model}/retrain does.
        #[arg(long)]
        register: bool,
    },
    /// Run the legacy demo's scenarios against a service and print a report.
    Demo {
        /// The service to call.
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        url: String,
        /// Start a service in this process on the local data instead.
        #[arg(long)]
        in_process: bool,
    },
    /// Exit 0 if the service on this machine's server.port answers /healthz
    /// (the container's HEALTHCHECK).
    Healthcheck,
    /// Measure every pretrained model on the held-out years and write the report.
    Evaluate {
        /// Where to write the Markdown report.
        #[arg(long, default_value = "docs/model-performance.md")]
        out: PathBuf,
        /// Where to write the measurements the catalog scores (read at startup
        /// from models.dir).
        #[arg(long, default_value = "models/evaluation.json")]
        measurements: PathBuf,
    },
}

/// mimalloc: a request makes dozens of small allocations across both
/// workers, where glibc's arenas lock and consolidate.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // candle splits every matmul across rayon threads; for these small
    // networks that costs more than it saves (a forecast takes ~5x longer on
    // 2 threads), and requests already run in parallel. Set before any
    // thread starts; an explicit RAYON_NUM_THREADS wins.
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        std::env::set_var("RAYON_NUM_THREADS", "1");
    }
    let cli = Cli::parse();
    let overrides = CliOverrides {
        bind: cli.bind.clone(),
        port: cli.port,
    };
    let explicit = cli.config.is_some();
    let config_path = cli
        .config
        .clone()
        .unwrap_or_else(|| PathBuf::from("config"));
    let settings = match Settings::load(&config_path, explicit, &overrides) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("tickcast: {e}");
            return ExitCode::from(2);
        }
    };
    tickcast::telemetry::init(&settings.log);

    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tickcast: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => runtime.block_on(serve(settings)),
        Command::Healthcheck => runtime.block_on(healthcheck(&settings)),
        Command::Demo { url, in_process } => runtime.block_on(demo(settings, url, in_process)),
        Command::Train {
            register: true,
            model,
            ..
        } => runtime.block_on(register(settings, model)),
        Command::Train { out, model, .. } => train(&out, model.as_deref()),
        Command::Evaluate { out, measurements } => evaluate(&settings, &out, &measurements),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "tickcast stopped");
            eprintln!("tickcast: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn train(out: &std::path::Path, only: Option<&str>) -> anyhow::Result<()> {
    use tickcast::models::neural::pretrain;
    let table = tickcast::market::dataset::embedded()?;
    let plans: Vec<_> = pretrain::plans()
        .into_iter()
        .filter(|p| only.is_none_or(|m| m == p.model))
        .collect();
    if plans.is_empty() {
        anyhow::bail!(
            "unknown model {:?}: expected lstm_predictor or transformer_predictor",
            only
        );
    }
    for plan in &plans {
        pretrain::pretrain(&table, plan, out, &|line| eprintln!("{line}"))?;
    }
    Ok(())
}

/// Retrains `only` (or both networks) into the model registry, one run
/// after the other, printing each run's outcome.
async fn register(settings: Settings, only: Option<String>) -> anyhow::Result<()> {
    use tickcast::models::lifecycle::{runs::RunState, MODELS};
    let models: Vec<&str> = match only.as_deref() {
        Some(m) => vec![m],
        None => MODELS.to_vec(),
    };
    let lifecycle = tickcast::startup::lifecycle(&settings).await?;
    let mut failed = false;
    for model in models {
        let run = lifecycle.retrain(model, "cli")?;
        let run = loop {
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            let now = lifecycle
                .training_run(&run.run_id)
                .ok_or_else(|| anyhow::anyhow!("run {} vanished", run.run_id))?;
            if !matches!(now.state, RunState::Queued | RunState::Running) {
                break now;
            }
        };
        failed |= run.state != RunState::Succeeded;
        println!("{}", serde_json::to_string_pretty(&run)?);
    }
    if failed {
        anyhow::bail!("a training run failed");
    }
    Ok(())
}

/// Every how many test days the ensemble is refitted and scored (each
/// forecast is a fresh fit of five learners).
const ENSEMBLE_STRIDE: usize = 5;

fn evaluate(
    settings: &Settings,
    out: &std::path::Path,
    measurements_out: &std::path::Path,
) -> anyhow::Result<()> {
    use tickcast::models::evaluation;
    use tickcast::models::neural::predictor::NeuralPredictor;
    use tickcast::models::neural::{LSTM, TRANSFORMER};
    let table = tickcast::market::dataset::embedded()?;
    let mut evaluations = Vec::new();
    for model in [LSTM, TRANSFORMER] {
        let predictor = NeuralPredictor::load(&settings.models.dir, model)?;
        let e = evaluation::evaluate_network(&table, &predictor)?;
        eprintln!(
            "{model}: {} held-out forecasts, directional accuracy {:.4}, RMSE ratio {:.4}",
            e.pooled.samples,
            e.pooled.directional_accuracy,
            e.pooled.rmse_ratio()
        );
        evaluations.push(e);
    }
    let ensemble =
        evaluation::evaluate_ensemble(&table, ENSEMBLE_STRIDE, &|line| eprintln!("{line}"))?;
    for e in &ensemble {
        eprintln!(
            "{}: {} held-out forecasts, directional accuracy {:.4}, RMSE ratio {:.4}",
            e.model,
            e.pooled.samples,
            e.pooled.directional_accuracy,
            e.pooled.rmse_ratio()
        );
    }
    evaluations.extend(ensemble);

    // The volatility models: the served default, and the asymmetric, fat-tailed variant.
    use tickcast::models::volatility::{Distribution, GarchSpec, Mean, Model};
    let mut volatility = Vec::new();
    for spec in [
        GarchSpec::default(),
        GarchSpec::new(Model::Gjr, Distribution::StudentT, Mean::Constant),
    ] {
        let per_stock =
            evaluation::volatility::evaluate_stocks(&table, spec, &|line| eprintln!("{line}"))?;
        let summary = evaluation::volatility::VolatilitySummary::of(spec, &per_stock);
        eprintln!(
            "{}: QLIKE {:.4} vs EWMA {:.4} vs 21-day {:.4}",
            summary.spec, summary.qlike.model, summary.qlike.ewma, summary.qlike.realised_21d
        );
        volatility.push((summary, per_stock));
    }
    std::fs::write(out, evaluation::report(&evaluations, &volatility))
        .map_err(|e| anyhow::anyhow!("writing {}: {e}", out.display()))?;
    eprintln!("wrote {}", out.display());

    // Backtests of every served model on the held-out years, for the catalog.
    let registry = tickcast::models::served_from(
        &settings.models.dir,
        tickcast::startup::settings::fit_policy(settings),
    )?;
    let mut models = std::collections::BTreeMap::new();
    for e in &evaluations {
        let Some(model) = registry.get(&e.model) else {
            continue; // a learner inside the ensemble, not served alone
        };
        let backtest =
            evaluation::backtest_forecaster(&table, model.as_ref(), &|line| eprintln!("{line}"))?;
        eprintln!(
            "{}: backtest Sharpe {:.3} vs buy-and-hold {:.3}",
            e.model, backtest.sharpe_ratio, backtest.benchmark_sharpe_ratio
        );
        models.insert(
            e.model.clone(),
            evaluation::ModelMeasurement {
                version: e.version.clone(),
                held_out: Some(evaluation::held_out_summary(e)),
                backtest: Some(backtest),
                intervals: evaluation::intervals::IntervalSummary::of(
                    &e.intervals,
                    tickcast::models::interval::DEFAULT_LEVEL,
                ),
                volatility: None,
            },
        );
    }
    let optimizer = registry
        .get(tickcast::models::optimizer::NAME)
        .ok_or_else(|| anyhow::anyhow!("the optimiser is not served"))?;
    let backtest = evaluation::backtest_allocator(&table, optimizer.as_ref(), "max_sharpe")?;
    eprintln!(
        "{}: max_sharpe Sharpe {:.3} vs equal weight {:.3}",
        tickcast::models::optimizer::NAME,
        backtest.sharpe_ratio,
        backtest.benchmark_sharpe_ratio
    );
    models.insert(
        tickcast::models::optimizer::NAME.to_string(),
        evaluation::ModelMeasurement {
            version: env!("CARGO_PKG_VERSION").to_string(),
            held_out: None,
            backtest: Some(backtest),
            intervals: None,
            volatility: None,
        },
    );
    let (served_volatility, _) = &volatility[0];
    models.insert(
        tickcast::models::volatility::predictor::NAME.to_string(),
        evaluation::ModelMeasurement {
            version: env!("CARGO_PKG_VERSION").to_string(),
            held_out: None,
            backtest: None,
            intervals: None,
            volatility: Some(served_volatility.clone()),
        },
    );
    let measurements = evaluation::Measurements {
        schema_version: evaluation::MEASUREMENTS_SCHEMA,
        measured_at: chrono::Utc::now().date_naive().to_string(),
        command: "cargo run --release -- evaluate".into(),
        period: format!(
            "{}..{}",
            tickcast::models::neural::pretrain::TEST.0,
            tickcast::models::neural::pretrain::TEST.1
        ),
        models,
    };
    let json = serde_json::to_string_pretty(&measurements)? + "\n";
    std::fs::write(measurements_out, json)
        .map_err(|e| anyhow::anyhow!("writing {}: {e}", measurements_out.display()))?;
    eprintln!("wrote {}", measurements_out.display());
    Ok(())
}

async fn demo(mut settings: Settings, url: String, in_process: bool) -> anyhow::Result<()> {
    use std::io::IsTerminal;
    // Local data only, a free port, state in a directory removed on exit.
    let scratch = in_process.then(tempfile::tempdir).transpose()?;
    let url = if let Some(scratch) = &scratch {
        settings.server.bind = "127.0.0.1".into();
        settings.server.port = 0;
        settings.market.providers = vec![tickcast::config::ProviderName::Local];
        settings.catalog.subscriptions_db = scratch.path().join("subscriptions.sqlite3");
        settings.lifecycle.registry_dir = scratch.path().join("registry");
        let app = Application::build(settings).await?;
        let address = app.local_addr()?;
        tokio::spawn(app.run_until_stopped(std::future::pending()));
        format!("http://{address}")
    } else {
        url
    };
    let progress = std::io::stderr().is_terminal();
    let outcome = tickcast::demo::run(&url, &mut std::io::stdout(), progress).await?;
    anyhow::ensure!(
        outcome.failed.is_empty(),
        "{} of {} scenarios failed",
        outcome.failed.len(),
        outcome.failed.len() + outcome.passed.len()
    );
    Ok(())
}

async fn healthcheck(settings: &Settings) -> anyhow::Result<()> {
    let url = format!("http://127.0.0.1:{}/healthz", settings.server.port);
    let response = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(2))
        .build()?
        .get(&url)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("{url}: {e}"))?;
    anyhow::ensure!(
        response.status().is_success(),
        "{url} answered {}",
        response.status()
    );
    Ok(())
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    let app = Application::build(settings).await?;
    tracing::info!(address = %app.local_addr()?, "tickcast listening");
    app.run_until_stopped(shutdown_signal()).await?;
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}
