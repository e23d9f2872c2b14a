//! `supervisor`: runs the self-healing supervisor (default), or evaluates
//! its detectors on public data (`supervisor eval ...`).

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use supervisor::config::{Config, ENV_VARS};
use supervisor::startup::{Application, Stopped};

#[derive(Parser)]
#[command(
    name = "supervisor",
    version,
    about = "Self-healing incident supervisor: ingests logs and metrics, detects and triages incidents.",
    after_help = env_help()
)]
struct Cli {
    /// TOML config file (unknown keys are errors). Defaults apply without one.
    #[arg(long, env = "SELFHEAL_CONFIG")]
    config: Option<PathBuf>,
    /// Listen address (overrides file and SELFHEAL_LISTEN).
    #[arg(long)]
    listen: Option<std::net::SocketAddr>,
    /// Store directory (overrides file and SELFHEAL_DATA_DIR).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    cmd: Option<Cmd>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the supervisor (the default).
    Run,
    /// Score the detectors on public labelled data.
    Eval {
        #[command(subcommand)]
        cmd: supervisor::eval::EvalCmd,
    },
}

fn env_help() -> String {
    let mut s = String::from("Environment (overrides the config file):\n");
    for (k, v) in ENV_VARS {
        s.push_str(&format!("  {k:<26} {v}\n"));
    }
    s.push_str("  OTEL_EXPORTER_OTLP_ENDPOINT export spans over OTLP (see README)\n");
    s.push_str("  RUST_LOG                   log filter (default info)");
    s
}

fn load_config(cli: &Cli) -> anyhow::Result<Config> {
    let mut cfg = Config::from_file(cli.config.as_deref())?;
    cfg.apply_env(|k| std::env::var(k).ok())
        .map_err(|e| anyhow::anyhow!("environment: {}", e.join("; ")))?;
    // Notification channels from TELEGRAM_*, SLACK_WEBHOOK_URL, ...
    cfg.notify.apply_env(|k| std::env::var(k).ok());
    if let Some(l) = cli.listen {
        cfg.listen = l;
    }
    if let Some(d) = &cli.data_dir {
        cfg.data_dir = d.clone();
    }
    cfg.validate()
        .map_err(|e| anyhow::anyhow!("invalid configuration: {}", e.join("; ")))?;
    Ok(cfg)
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    if let Some(Cmd::Eval { cmd }) = cli.cmd {
        return match supervisor::eval::run(cmd) {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e:#}");
                std::process::ExitCode::from(2)
            }
        };
    }
    let cfg = match load_config(&cli) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e:#}");
            return std::process::ExitCode::from(2);
        }
    };
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: starting the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let code = runtime.block_on(run(cfg));
    // Spans are flushed inside `run`; nothing may block the runtime drop.
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));
    code
}

async fn run(cfg: Config) -> std::process::ExitCode {
    let telemetry = match supervisor::telemetry::init(cfg.log_format) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: telemetry: {e:#}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let shutdown = shutdown_signal();
    let outcome = async {
        let app = Application::build(cfg).await?;
        println!(
            "selfheal supervisor listening on http://{}",
            app.local_addr()
        );
        tracing::info!(addr = %app.local_addr(), "listening");
        app.run_until_stopped(shutdown).await
    }
    .await;
    let code = match outcome {
        Ok(Stopped::Graceful) => {
            tracing::info!("stopped cleanly");
            std::process::ExitCode::SUCCESS
        }
        Ok(Stopped::GaveUp(reason)) => {
            tracing::error!(%reason, "supervision tree gave up; exiting so the service manager restarts us");
            std::process::ExitCode::from(3)
        }
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "supervisor failed");
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    };
    let _ = tokio::task::spawn_blocking(move || telemetry.shutdown()).await;
    code
}

/// Register SIGINT/SIGTERM handlers now (before the address is printed,
/// so a signal sent right after start-up is never missed) and return a
/// future that resolves on the first of them.
fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let term = signal(SignalKind::terminate());
        let int = signal(SignalKind::interrupt());
        async move {
            match (term, int) {
                (Ok(mut t), Ok(mut i)) => {
                    tokio::select! { _ = t.recv() => {}, _ = i.recv() => {} }
                }
                _ => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
            tracing::info!("shutdown signal received");
        }
    }
    #[cfg(not(unix))]
    async move {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutdown signal received");
    }
}
