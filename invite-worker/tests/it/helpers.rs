//! A platform deployment in one test process: the API runtime in platform mode and workers,
//! on a fresh database and a private corner of the broker.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use invite_core::clock::SystemClock;
use invite_core::domain::Priority;
use invite_core::ports::{Secret, TaskEventMessage};
use invite_http::runtime::{Runtime, RuntimeOptions, embedded_secrets};
use invite_store::test_util::{PostgresDatabase, random_suffix, services_required};
use invite_worker::WorkerConfig;
use lapin::options::{BasicConsumeOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::{Connection, ConnectionProperties};

/// Upper bound for any single wait: a hang guard, not a measurement.
pub const HANG_GUARD: Duration = Duration::from_secs(90);

/// The broker tests use (`AMQP_TEST_URL`, default the local one).
pub fn amqp_test_url() -> String {
    std::env::var("AMQP_TEST_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned())
}

/// A database and a queue prefix of one test.
pub struct Platform {
    pub db: PostgresDatabase,
    pub config: WorkerConfig,
    pub events: lapin::Consumer,
    events_connection: Connection,
}

impl Platform {
    /// `None` (after a `SKIP` line) when a service is unreachable and services are not
    /// required. `extra` variables are added to the platform's.
    pub async fn start(extra: &[(&str, &str)]) -> Option<(Self, Runtime)> {
        Self::start_with_telegram(
            extra,
            Arc::new(invite_telegram::GrammersConnector::default()),
        )
        .await
    }

    /// [`Platform::start`] with the API reaching Telegram through `telegram`.
    pub async fn start_with_telegram(
        extra: &[(&str, &str)],
        telegram: Arc<dyn invite_telegram::Connector>,
    ) -> Option<(Self, Runtime)> {
        let db = PostgresDatabase::create().await?;
        let url = amqp_test_url();
        let probe = Connection::connect(&url, ConnectionProperties::default()).await;
        if let Err(e) = probe {
            assert!(
                !services_required(),
                "RabbitMQ at AMQP_TEST_URL is unreachable and INVITE_REQUIRE_SERVICES=1: {e}"
            );
            println!("SKIP rabbitmq: unreachable ({e})");
            db.drop_database().await;
            return None;
        }
        let prefix = format!("wt-{}-", random_suffix());
        let mut vars: Vec<(String, String)> = [
            ("DATABASE_URL", db.url.as_str()),
            ("AMQP_URL", url.as_str()),
            ("AMQP_QUEUE_PREFIX", prefix.as_str()),
            ("INVITE_SANDBOX_TIME_SCALE", "86400"),
            ("INVITE_SANDBOX_ACCOUNTS", "3"),
            ("INVITE_HEARTBEAT_SECONDS", "1"),
            ("INVITE_HOLDER_TIMEOUT_SECONDS", "3"),
            ("INVITE_LEASE_TTL_SECONDS", "2"),
            // Nothing is found by polling within a test: only a job wakes a worker.
            ("INVITE_IDLE_POLL_SECONDS", "3600"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        vars.extend(
            extra
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        let config = WorkerConfig::from_vars(vars).expect("test configuration");
        let runtime = Runtime::build_with_telegram(
            &config.shared,
            RuntimeOptions {
                clock: Arc::new(SystemClock),
                secrets: embedded_secrets(&Secret::new("t".repeat(40))),
                secret_generated: false,
                metrics: None,
            },
            telegram,
        )
        .await
        .expect("the API in platform mode");
        // The API declared the exchange; a private queue hears every task event.
        let connection = Connection::connect(&url, ConnectionProperties::default())
            .await
            .expect("events connection");
        let channel = connection.create_channel().await.expect("channel");
        let queue = channel
            .queue_declare(
                "".into(),
                QueueDeclareOptions {
                    exclusive: true,
                    auto_delete: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .expect("events queue");
        channel
            .queue_bind(
                queue.name().as_str().into(),
                format!("{prefix}invite.events").as_str().into(),
                "invite.task.#".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .expect("bind");
        let events = channel
            .basic_consume(
                queue.name().as_str().into(),
                "test-events".into(),
                BasicConsumeOptions {
                    no_ack: true,
                    ..BasicConsumeOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .expect("consume events");
        Some((
            Self {
                db,
                config,
                events,
                events_connection: connection,
            },
            runtime,
        ))
    }

    /// Drops the database and deletes the test's queues and exchange.
    pub async fn finish(self) {
        use lapin::options::{ExchangeDeleteOptions, QueueDeleteOptions};
        let amqp = self.config.shared.amqp.as_ref().expect("platform mode");
        let channel = self
            .events_connection
            .create_channel()
            .await
            .expect("channel");
        for priority in [Priority::High, Priority::Medium, Priority::Low] {
            let _ = channel
                .queue_delete(
                    amqp.queue_name(priority).as_str().into(),
                    QueueDeleteOptions::default(),
                )
                .await;
        }
        let _ = channel
            .exchange_delete(
                amqp.events_exchange().as_str().into(),
                ExchangeDeleteOptions::default(),
            )
            .await;
        self.db.drop_database().await;
    }

    /// Waits for the next task event.
    pub async fn next_event(&mut self) -> TaskEventMessage {
        let delivery = tokio::time::timeout(HANG_GUARD, self.events.next())
            .await
            .expect("a task event within the hang guard")
            .expect("events stream open")
            .expect("event delivery");
        serde_json::from_slice(&delivery.data).expect("an event body")
    }
}
