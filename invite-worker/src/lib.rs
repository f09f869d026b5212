#![doc = include_str!("../README.md")]

pub mod config;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use invite_core::clock::Clock;
use invite_core::engine::{Engine, unique_worker_id};
use invite_core::ports::{InviteStrategy, Job, JobQueue, SecretStore};
use invite_core::retention::{Retention, RetentionPolicy};
use invite_http::runtime::{
    BuildError, EngineWiring, Health, connect_backends, sandbox_strategy, secret_source,
    wire_engine, wire_telegram,
};
use invite_http::wire::HealthView;
use invite_telegram::{Connector, GrammersConnector};
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use crate::config::WorkerConfig;

/// What the caller chooses beside the configuration.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// Time (the system clock in production).
    pub clock: Arc<dyn Clock>,
    /// The Prometheus handle, when `/metrics` is served.
    pub metrics: Option<PrometheusHandle>,
    /// The platforms the engine drives; `None` is what the binary runs: the sandbox platform
    /// over the shared sandbox world and Telegram (over [`WorkerOptions::telegram`]).
    pub strategies: Option<Vec<Arc<dyn InviteStrategy>>>,
    /// How Telegram is reached; `None` is grammers (tests pass a fake Telegram).
    pub telegram: Option<Arc<dyn Connector>>,
    /// The secret store (Vault's key and, with `INTEGRATION_SERVICE_URL`, the sessions); `None`
    /// is Vault when `VAULT_*` is set, else none.
    pub secrets: Option<Arc<dyn SecretStore>>,
    /// Prefix of this process's worker id (`invite-worker-<random>`).
    pub worker_name: String,
}

impl WorkerOptions {
    /// The system's defaults over `clock`: the sandbox platform, no metrics.
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self {
            clock,
            metrics: None,
            strategies: None,
            telegram: None,
            secrets: None,
            worker_name: "invite-worker".to_owned(),
        }
    }
}

/// One worker process: the engine on the shared database, woken by jobs from RabbitMQ, the
/// retention job, and the admin endpoints.
#[derive(Debug)]
pub struct Worker {
    engine: Arc<Engine>,
    queue: Arc<invite_amqp::ReconnectingQueue>,
    retention: Retention,
    health: Health,
    running: Arc<AtomicBool>,
    metrics: Option<PrometheusHandle>,
    pool: Option<invite_store::DbPool>,
    drain: Duration,
}

#[derive(Debug, Clone)]
struct AdminState {
    health: Health,
    metrics: Option<PrometheusHandle>,
}

impl Worker {
    /// Connects to PostgreSQL (migrating it) and RabbitMQ and wires the engine.
    pub async fn build(config: &WorkerConfig, options: WorkerOptions) -> Result<Self, BuildError> {
        let shared = &config.shared;
        let backends = connect_backends(shared, options.clock.clone()).await?;
        let Some(queue) = backends.amqp.clone() else {
            return Err(BuildError::Backend {
                what: "AMQP_URL",
                message: "required: the worker takes its jobs from RabbitMQ".to_owned(),
            });
        };
        let worker_id = unique_worker_id(&options.worker_name);
        let strategies = match options.strategies {
            Some(strategies) => strategies,
            None => {
                let secrets = match options.secrets {
                    Some(secrets) => secrets,
                    None => secret_source(shared, options.clock.clone())?.store,
                };
                let connector = options
                    .telegram
                    .unwrap_or_else(|| Arc::new(GrammersConnector::default()));
                let telegram = wire_telegram(
                    shared,
                    &backends,
                    &secrets,
                    connector,
                    &worker_id,
                    options.clock.clone(),
                )
                .await?;
                vec![sandbox_strategy(shared, &backends), telegram.strategy]
            }
        };
        let EngineWiring {
            engine,
            store,
            directory,
            ..
        } = wire_engine(
            shared,
            &backends,
            options.clock.clone(),
            strategies,
            config.timers.engine_config(worker_id),
        );
        let retention = Retention::new(
            store,
            options.clock,
            RetentionPolicy::days(shared.retention_days),
        );
        let running = Arc::new(AtomicBool::new(false));
        let health = Health::for_worker(&backends, directory, engine.clone(), running.clone());
        Ok(Self {
            engine,
            queue,
            retention,
            health,
            running,
            metrics: options.metrics,
            pool: backends.pool,
            drain: config.drain,
        })
    }

    /// This worker's id in claims, heartbeats and leases.
    pub fn worker_id(&self) -> &str {
        &self.engine.config().worker_id
    }

    /// The engine.
    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// The admin endpoints: `GET /health` (200, or 503 when a dependency is down) and
    /// `GET /metrics` (Prometheus).
    pub fn admin_router(&self) -> Router {
        Router::new()
            .route("/health", get(health))
            .route("/metrics", get(metrics))
            .with_state(AdminState {
                health: self.health.clone(),
                metrics: self.metrics.clone(),
            })
    }

    /// Runs until `shutdown` completes: the engine loop, the job consumer, the retention job
    /// and the admin endpoints on `admin`. Then stops taking jobs (those the broker pushed
    /// but this worker did not start go back to the queue when the connection closes), lets
    /// the engine finish its pass in flight, release its account leases and retire its
    /// heartbeat — waiting at most the drain time — and closes the connections.
    pub async fn run(
        self,
        admin: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let cancel = CancellationToken::new();
        let tracker = TaskTracker::new();
        self.spawn(&tracker, cancel.clone());
        let served = axum::serve(admin, self.admin_router()).with_graceful_shutdown({
            let cancel = cancel.clone();
            async move {
                tokio::select! {
                    () = shutdown => {}
                    () = cancel.cancelled() => {}
                }
            }
        });
        let served = served.await;
        cancel.cancel();
        tracker.close();
        if tokio::time::timeout(self.drain, tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(drain = ?self.drain, "the step in flight did not finish in time; its claims and leases expire");
        }
        self.close().await;
        tracing::info!(worker = %self.worker_id(), "invite-worker stopped");
        served
    }

    /// Starts the engine, the job consumer and the retention job; all stop when `cancel`
    /// fires and are tracked by `tracker`.
    pub fn spawn(&self, tracker: &TaskTracker, cancel: CancellationToken) {
        let (engine, running, token) = (self.engine.clone(), self.running.clone(), cancel.clone());
        tracker.spawn(async move {
            running.store(true, Ordering::Relaxed);
            engine.run(token).await;
            running.store(false, Ordering::Relaxed);
        });
        let (retention, token) = (self.retention.clone(), cancel.clone());
        tracker.spawn(async move { retention.run(token).await });
        let (engine, queue, retention) = (
            self.engine.clone(),
            self.queue.clone(),
            self.retention.clone(),
        );
        tracker.spawn(async move { consume(&engine, queue.as_ref(), &retention, &cancel).await });
    }

    /// Closes the broker connection and the database pool.
    pub async fn close(&self) {
        self.queue.close().await;
        if let Some(pool) = &self.pool {
            pool.close().await;
        }
    }
}

/// Takes jobs until `cancel` fires. A job is a nudge: it is acknowledged as soon as it is
/// handled (the engine woken, or a cleanup run), never held while the work it names waits.
async fn consume(
    engine: &Engine,
    queue: &dyn JobQueue,
    retention: &Retention,
    cancel: &CancellationToken,
) {
    loop {
        let delivery = match queue.next(cancel).await {
            Ok(Some(d)) => d,
            Ok(None) => return,
            Err(e) => {
                // A message that is not a job was rejected; the next one is taken.
                tracing::warn!(error = %e, "job not taken");
                continue;
            }
        };
        let kind = match &delivery.job {
            Job::ExecuteTask { task_id } => {
                tracing::debug!(task.id = %task_id, "job: execute task {task_id}");
                engine.wake();
                "execute_task"
            }
            Job::ProcessLane {
                task_id,
                account_id,
            } => {
                tracing::debug!(task.id = %task_id, account.id = %account_id, "job: process lane");
                engine.wake();
                "process_lane"
            }
            Job::ReactivateAccount { account_id } => {
                tracing::debug!(account.id = %account_id, "job: reactivate account");
                engine.wake();
                "reactivate_account"
            }
            Job::Cleanup => {
                if let Err(e) = retention.once().await {
                    tracing::warn!(error = %e, "cleanup job failed; the schedule tries again");
                }
                "cleanup"
            }
        };
        metrics::counter!("invite_worker_jobs_total", "job" => kind).increment(1);
        if let Err(e) = queue.ack(&delivery).await {
            // Redelivered later: a second nudge is harmless.
            tracing::warn!(error = %e, "job not acknowledged");
        }
    }
}

async fn health(State(state): State<AdminState>) -> (StatusCode, axum::Json<HealthView>) {
    let checks = state.health.check().await;
    let ok = checks.iter().all(|c| c.status == "ok");
    let view = HealthView {
        status: if ok { "ok" } else { "degraded" }.to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        checks,
    };
    let code = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, axum::Json(view))
}

async fn metrics(State(state): State<AdminState>) -> Response {
    match state.metrics {
        Some(handle) => (
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            handle.render(),
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "metrics are not enabled").into_response(),
    }
}
