//! `invite-http`: the REST API with the engine in-process (embedded mode). Parses the
//! configuration, installs logging and metrics, wires the parts and serves until SIGTERM.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeDelta, Utc};
use invite_core::clock::SystemClock;
use invite_core::domain::UserId;
use invite_http::config::Config;
use invite_http::runtime::{Runtime, RuntimeOptions};
use invite_http::{auth, init_tracing, observe, serve, shutdown_signal};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

#[tokio::main]
async fn main() -> ExitCode {
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("invite-http: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    init_tracing(config.log_format);
    let (secret, generated) = match config.jwt.secret.clone() {
        Some(s) => (s, false),
        None => (auth::random_secret(), true),
    };
    let options = RuntimeOptions {
        clock: Arc::new(SystemClock),
        jwt_secret: secret.clone(),
        secret_generated: generated,
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
    if generated {
        let (iss, aud) = (config.jwt.issuer.as_deref(), config.jwt.audience.as_deref());
        let token = auth::issue_token(
            &secret,
            UserId::new(1),
            Utc::now(),
            TimeDelta::days(30),
            iss,
            aud,
        );
        println!(
            "DEVELOPMENT ONLY: no INVITE_JWT_SECRET set; a random secret was generated for this run."
        );
        println!(
            "Token for user 1 (valid 30 days, until this process stops):\n\n  export TOKEN={token}\n"
        );
    }
    let store = runtime.store_kind();
    tracing::info!(addr = %config.bind_addr, store, time_scale = config.sandbox.time_scale, "invite-http listening on http://{}", config.bind_addr);
    let cancel = CancellationToken::new();
    let tracker = TaskTracker::new();
    runtime.spawn(&tracker, cancel.clone());
    let served = serve(listener, runtime.state.clone(), shutdown_signal()).await;
    cancel.cancel();
    tracker.close();
    if tokio::time::timeout(Duration::from_secs(10), tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!("background work did not stop within 10 s");
    }
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("invite-http: server error: {e}");
            ExitCode::FAILURE
        }
    }
}
