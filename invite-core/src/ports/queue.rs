//! `JobQueue`: small commands between the API and the workers, by priority. Implementations:
//! `crate::memory::InProcessQueue` (in core, the embedded default) and RabbitMQ
//! (`invite-amqp`).
//!
//! Durable state lives in the store, never only in a message: a job only says "look at this
//! now"; losing one delays work until the engine's next pass, it never loses a result.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::domain::{AccountId, Priority, TaskId};

/// A command for a worker (the seed's Celery tasks).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Job {
    /// A task was started or resumed: schedule its lanes.
    ExecuteTask {
        /// The task.
        task_id: TaskId,
    },
    /// Process one lane now.
    ProcessLane {
        /// The task.
        task_id: TaskId,
        /// The account.
        account_id: AccountId,
    },
    /// An account's cooldown ended.
    ReactivateAccount {
        /// The account.
        account_id: AccountId,
    },
    /// Remove old logs and finished tasks.
    Cleanup,
}

/// A job taken from the queue, to be acknowledged once handled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The job.
    pub job: Job,
    /// Queue it came from.
    pub priority: Priority,
    /// Queue-specific delivery tag.
    pub tag: u64,
}

/// Errors of a queue.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueueError {
    /// The broker cannot be reached.
    #[error("queue unavailable: {0}")]
    Unavailable(String),
    /// The queue is closed.
    #[error("queue closed")]
    Closed,
    /// A message could not be read.
    #[error("malformed job: {0}")]
    Malformed(String),
}

/// Publish and consume jobs, higher priorities first.
#[cfg_attr(feature = "testing", mockall::automock)]
#[async_trait]
pub trait JobQueue: Send + Sync + std::fmt::Debug {
    /// Publishes a job (confirmed by the broker before returning).
    async fn publish(&self, job: &Job, priority: Priority) -> Result<(), QueueError>;

    /// Waits for the next job, highest priority first; `None` once `cancel` fires.
    async fn next(&self, cancel: &CancellationToken) -> Result<Option<Delivery>, QueueError>;

    /// Acknowledges a handled delivery.
    async fn ack(&self, delivery: &Delivery) -> Result<(), QueueError>;
}
