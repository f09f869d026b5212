//! The broker tests talk to (`AMQP_TEST_URL`), a random queue prefix per test, and an admin
//! channel to look at and clean up the queues.
//!
//! When the broker is unreachable a test prints a `SKIP` line and returns — unless
//! `INVITE_REQUIRE_SERVICES=1` (set by CI), where it fails.

use std::future::Future;
use std::time::Duration;

use invite_amqp::{AmqpConfig, AmqpQueue};
use invite_core::domain::{Priority, TaskId};
use invite_core::ports::{Delivery, Job, JobQueue, QueueError};
use lapin::options::{
    BasicPublishOptions, ConfirmSelectOptions, ExchangeDeleteOptions, QueueDeclareOptions,
    QueueDeleteOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};
use tokio_util::sync::CancellationToken;

/// Upper bound for any single await: a hang guard, not a measurement.
pub const HANG_GUARD: Duration = Duration::from_secs(30);

/// The broker tests use (`AMQP_TEST_URL`, default the local one).
pub fn amqp_test_url() -> String {
    std::env::var("AMQP_TEST_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned())
}

/// Whether a missing service fails the run (CI) instead of skipping.
pub fn services_required() -> bool {
    std::env::var("INVITE_REQUIRE_SERVICES").is_ok_and(|v| v == "1")
}

/// A name part no other test (or test process) uses.
pub fn random_suffix() -> String {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_u32(std::process::id());
    format!("{:016x}", h.finish())
}

/// Awaits `fut`, failing the test (instead of hanging) after [`HANG_GUARD`].
pub async fn guarded<T>(what: &str, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(HANG_GUARD, fut)
        .await
        .unwrap_or_else(|_| panic!("{what}: no answer within {HANG_GUARD:?}"))
}

/// A job told apart by its number.
pub fn job(n: i64) -> Job {
    Job::ExecuteTask {
        task_id: TaskId::new(n),
    }
}

/// One test's corner of the broker: its own queue prefix, and an admin connection.
#[derive(Debug)]
pub struct TestBroker {
    /// Configuration of the queues under test (unique prefix, default prefetch).
    pub config: AmqpConfig,
    admin_connection: Connection,
    /// A channel with publisher confirms, for raw messages and inspection.
    pub admin: Channel,
    extra_queues: std::sync::Mutex<Vec<String>>,
}

impl TestBroker {
    /// Connects; `None` (after a `SKIP` line) when the broker is unreachable and services are
    /// not required.
    ///
    /// # Panics
    /// When the broker is unreachable and `INVITE_REQUIRE_SERVICES=1`.
    pub async fn start() -> Option<Self> {
        let url = amqp_test_url();
        let shown = AmqpConfig::new(url.clone())
            .map(|c| c.redacted_url())
            .unwrap_or_else(|e| panic!("AMQP_TEST_URL is not usable: {e}"));
        let attempt = tokio::time::timeout(
            Duration::from_secs(5),
            Connection::connect(&url, ConnectionProperties::default()),
        )
        .await;
        let admin_connection = match attempt {
            Ok(Ok(connection)) => connection,
            failure => {
                let why = match failure {
                    Ok(Err(e)) => e.to_string(),
                    _ => "timed out".to_owned(),
                };
                assert!(
                    !services_required(),
                    "RabbitMQ at AMQP_TEST_URL ({shown}) is unreachable and \
                     INVITE_REQUIRE_SERVICES=1: {why}"
                );
                println!("SKIP rabbitmq: AMQP_TEST_URL ({shown}) is unreachable ({why})");
                return None;
            }
        };
        let admin = admin_connection
            .create_channel()
            .await
            .expect("admin channel");
        admin
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .expect("confirms on the admin channel");
        let config = AmqpConfig::new(url)
            .expect("AMQP_TEST_URL")
            .with_queue_prefix(format!("test-{}-", random_suffix()))
            .with_connection_name("invite-amqp-tests");
        Some(Self {
            config,
            admin_connection,
            admin,
            extra_queues: std::sync::Mutex::new(Vec::new()),
        })
    }

    /// A new [`AmqpQueue`] (its own connection) on this test's queues.
    pub async fn queue(&self) -> AmqpQueue {
        guarded("connect", AmqpQueue::connect(self.config.clone()))
            .await
            .expect("connect to the test broker")
    }

    /// Publishes raw bytes into a priority queue, confirmed.
    pub async fn publish_raw(&self, priority: Priority, body: &[u8]) {
        let confirm = self
            .admin
            .basic_publish(
                "".into(),
                self.config.queue_name(priority).as_str().into(),
                BasicPublishOptions::default(),
                body,
                BasicProperties::default().with_content_type("application/json".into()),
            )
            .await
            .expect("raw publish")
            .await
            .expect("raw publish confirm");
        assert!(confirm.is_ack(), "raw publish not confirmed: {confirm:?}");
    }

    /// Messages ready (not delivered to any consumer) in a priority queue.
    pub async fn ready(&self, priority: Priority) -> u32 {
        self.admin
            .queue_declare(
                self.config.queue_name(priority).as_str().into(),
                QueueDeclareOptions {
                    passive: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .expect("passive declare")
            .message_count()
    }

    /// Declares a queue removed at [`TestBroker::cleanup`].
    pub async fn declare_extra_queue(&self, name: &str) {
        self.admin
            .queue_declare(
                name.into(),
                QueueDeclareOptions::default(),
                FieldTable::default(),
            )
            .await
            .expect("declare extra queue");
        self.extra_queues
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(name.to_owned());
    }

    /// Deletes this test's queues and exchange.
    pub async fn cleanup(self) {
        let mut queues: Vec<String> = Priority::ALL
            .iter()
            .map(|p| self.config.queue_name(*p))
            .collect();
        queues.extend(
            self.extra_queues
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .drain(..),
        );
        for queue in queues {
            if let Err(e) = self
                .admin
                .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
                .await
            {
                println!("could not delete queue {queue}: {e}");
            }
        }
        let exchange = self.config.events_exchange();
        if let Err(e) = self
            .admin
            .exchange_delete(exchange.as_str().into(), ExchangeDeleteOptions::default())
            .await
        {
            println!("could not delete exchange {exchange}: {e}");
        }
        let _ = self.admin_connection.close(200, "done".into()).await;
    }
}

/// Takes the next delivery (hang-guarded), failing on an error or a `None`.
pub async fn take(queue: &dyn JobQueue) -> Delivery {
    let cancel = CancellationToken::new();
    guarded("next", queue.next(&cancel))
        .await
        .expect("next")
        .expect("a delivery, not a cancel")
}

/// Takes the next result as is (hang-guarded).
pub async fn take_result(queue: &dyn JobQueue) -> Result<Option<Delivery>, QueueError> {
    let cancel = CancellationToken::new();
    guarded("next", queue.next(&cancel)).await
}
