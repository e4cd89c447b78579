//! `website`: serve the site; `website healthcheck`: probe a running one (Docker healthcheck).

use std::process::ExitCode;

use website::config::Config;
use website::startup::Application;
use website::{healthcheck, telemetry};

#[tokio::main]
async fn main() -> ExitCode {
    if std::env::args().nth(1).as_deref() == Some("healthcheck") {
        return healthcheck::run();
    }
    telemetry::init();
    match start().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("website failed: {error:#}");
            eprintln!("website: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn start() -> anyhow::Result<()> {
    let config = Config::from_env()?;
    config.jwt_secret.warn_if_public_example();
    let app = Application::build(config).await?;
    tracing::info!(addr = %app.local_addr(), "website listening");
    app.run_until(contract::shutdown::signal()).await
}
