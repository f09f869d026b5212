#![doc = include_str!("../README.md")]

pub mod accounts;
pub mod api;
pub mod auth;
pub mod cli;
pub mod config;
pub mod console;
pub mod contract;
pub mod edge;
pub mod error;
pub mod observe;
pub mod runtime;
pub mod wire;

use std::future::Future;
use std::sync::{Arc, OnceLock};

use axum::Router;
use invite_core::service::Campaigns;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;

use crate::auth::JwtAuth;
use crate::config::LogFormat;
use crate::runtime::Health;

#[derive(Debug)]
struct Inner {
    campaigns: Arc<Campaigns>,
    auth: JwtAuth,
    health: Health,
    metrics: Option<PrometheusHandle>,
    accounts: OnceLock<Arc<accounts::Accounts>>,
}

/// What every handler sees: the use cases, the token checker, health probes and metrics.
#[derive(Debug, Clone)]
pub struct AppState(Arc<Inner>);

impl AppState {
    /// Assembles the state.
    pub fn new(
        campaigns: Arc<Campaigns>,
        auth: JwtAuth,
        health: Health,
        metrics: Option<PrometheusHandle>,
    ) -> Self {
        Self(Arc::new(Inner {
            campaigns,
            auth,
            health,
            metrics,
            accounts: OnceLock::new(),
        }))
    }

    /// Enables the account routes with `accounts` (once; later calls change nothing).
    pub fn set_accounts(&self, accounts: Arc<accounts::Accounts>) {
        let _ = self.0.accounts.set(accounts);
    }

    /// The accounts use case, when enabled.
    pub fn accounts(&self) -> Option<&accounts::Accounts> {
        self.0.accounts.get().map(Arc::as_ref)
    }

    /// The use cases.
    pub fn campaigns(&self) -> &Campaigns {
        &self.0.campaigns
    }

    /// The token checker.
    pub fn auth(&self) -> &JwtAuth {
        &self.0.auth
    }

    /// Health probes.
    pub fn health(&self) -> &Health {
        &self.0.health
    }

    /// The Prometheus handle, when metrics are served.
    pub fn metrics(&self) -> Option<&PrometheusHandle> {
        self.0.metrics.as_ref()
    }
}

/// The whole HTTP application: the API's routes, the web console ([`console`]), fallbacks, the
/// edge's guards ([`edge::harden`]), request metrics, state.
pub fn app(state: AppState) -> Router {
    edge::harden(api::router().merge(console::router()))
        .layer(axum::middleware::from_fn(observe::track_http))
        .with_state(state)
}

/// Serves the API on `listener` until `shutdown` completes, then finishes the requests in
/// flight.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app(state))
        .with_graceful_shutdown(shutdown)
        .await
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
    tracing::info!("shutdown requested");
}

/// Installs the process's log subscriber: JSON lines or human-readable, filtered by
/// `RUST_LOG` (default `info`); colours only when standard output is a terminal.
pub fn init_tracing(format: LogFormat) {
    use std::io::IsTerminal as _;
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // Colour codes only on a terminal: a file or a pipe gets plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stdout().is_terminal());
    match format {
        LogFormat::Json => builder.json().flatten_event(true).init(),
        LogFormat::Pretty => builder.init(),
    }
}
