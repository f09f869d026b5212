//! `invite-http`: the REST API, with the engine in-process (embedded mode) or publishing work
//! to RabbitMQ for `invite-worker` (platform mode, `AMQP_URL` set). Parses the command line and
//! the configuration, installs logging and metrics, wires the parts and serves until SIGTERM —
//! or runs an `accounts` command (`invite-http --help`).

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser as _;
use invite_core::clock::SystemClock;
use invite_http::cli::{Cli, Command};
use invite_http::config::Config;
use invite_http::runtime::{self, Runtime, RuntimeOptions};
use invite_http::{auth, init_tracing, observe, shutdown_signal};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("invite-http: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    init_tracing(config.log_format);
    match cli.command {
        Some(Command::Accounts { command }) => {
            return invite_http::cli::accounts(&config, command).await;
        }
        Some(Command::AccountManager {
            bind,
            hold_ttl_seconds,
        }) => {
            let hold_ttl = Duration::from_secs(hold_ttl_seconds);
            return invite_http::cli::account_manager(&config, bind, hold_ttl).await;
        }
        Some(Command::Serve) | None => {}
    }
    for warning in config.warnings() {
        tracing::warn!("{warning}");
    }
    let clock = Arc::new(SystemClock);
    let secrets = match runtime::secret_source(&config, clock.clone()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("invite-http: start-up failed: {e}");
            return ExitCode::FAILURE;
        }
    };
    let options = RuntimeOptions {
        clock,
        secrets: secrets.store,
        secret_generated: secrets.generated.is_some(),
        metrics: Some(observe::install_recorder()),
    };
    let runtime = match Runtime::build(&config, options).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("invite-http: start-up failed: {e}");
            return ExitCode::FAILURE;
        }
    };
    let listener = match tokio::net::TcpListener::bind(config.bind_addr).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!(
                "invite-http: BIND_ADDR: cannot listen on {}: {e}",
                config.bind_addr
            );
            return ExitCode::FAILURE;
        }
    };
    if let Some(secret) = &secrets.generated {
        let (iss, aud) = (config.jwt.issuer.as_deref(), config.jwt.audience.as_deref());
        let addr = listener.local_addr().unwrap_or(config.bind_addr);
        println!(
            "{}",
            auth::development_banner(secret, chrono::Utc::now(), iss, aud, addr)
        );
    }
    let (addr, store) = (config.bind_addr, runtime.store_kind());
    let scale = config.sandbox.time_scale;
    let mode = if runtime.platform_mode() {
        "platform (work published to RabbitMQ for invite-worker)"
    } else {
        "embedded (engine in this process)"
    };
    tracing::info!(%addr, store, mode, time_scale = scale, "invite-http listening on http://{addr}");
    match runtime
        .run(listener, shutdown_signal(), Duration::from_secs(10))
        .await
    {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("invite-http: server error: {e}");
            ExitCode::FAILURE
        }
    }
}
