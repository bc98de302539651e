//! `samsa-broker`: parses flags, starts the broker, stops it cleanly on SIGINT or SIGTERM.

use clap::Parser;
use samsa_broker::config::BrokerConfig;
use tracing_subscriber::EnvFilter;

fn main() -> std::process::ExitCode {
    let config = match BrokerConfig::parse().resolve_node_id() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("samsa-broker: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let filter = EnvFilter::try_new(&config.log).unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(ansi)
        .init();
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if config.worker_threads > 0 {
        builder.worker_threads(usize::from(config.worker_threads));
    }
    let runtime = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("samsa-broker: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(config)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("samsa-broker: {e:#}");
            eprintln!("samsa-broker: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(config: BrokerConfig) -> anyhow::Result<()> {
    let broker = samsa_broker::server::start(config).await?;
    wait_for_signal().await?;
    tracing::info!("shutting down (a second SIGINT or SIGTERM stops at once)");
    tokio::select! {
        () = broker.shutdown() => Ok(()),
        r = wait_for_signal() => {
            r?;
            anyhow::bail!("stopped before the shutdown completed (second signal)")
        }
    }
}

async fn wait_for_signal() -> anyhow::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r?,
        _ = term.recv() => {}
    }
    Ok(())
}
