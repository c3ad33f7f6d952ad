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
}

fn main() -> ExitCode {
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
