//! [`ReconnectingQueue`]: an [`AmqpQueue`] that survives a broker restart.
//!
//! It holds one connection at a time. An `Unavailable` error (the broker went away, a channel
//! closed) drops that connection; the next call connects afresh. [`JobQueue::next`] waits
//! through an outage, trying again with a bounded backoff, until the broker is back or it is
//! cancelled; [`JobQueue::publish`] and events fail at once while the broker is down (their
//! callers keep the durable state in the database and treat a lost nudge as a delay).
//!
//! Deliveries the old connection held but had not acknowledged are redelivered by the broker
//! (to this or another consumer): a job is a nudge, so a second delivery is harmless.

use std::sync::Arc;
use std::time::Duration;

use invite_core::async_trait;
use invite_core::domain::Priority;
use invite_core::ports::{
    Delivery, EventError, Job, JobQueue, QueueError, TaskEventMessage, TaskEvents,
};
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

use crate::config::AmqpConfig;
use crate::queue::AmqpQueue;

/// First wait before connecting again after a failure (doubles up to [`MAX_BACKOFF`]).
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
/// Longest wait between two connection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// A RabbitMQ job queue that reconnects after the broker restarts.
#[derive(Debug)]
pub struct ReconnectingQueue {
    config: AmqpConfig,
    current: Mutex<Option<Arc<AmqpQueue>>>,
}

impl ReconnectingQueue {
    /// Connects once (so a wrong `AMQP_URL` fails the start) and keeps the settings to
    /// reconnect later.
    pub async fn connect(config: AmqpConfig) -> Result<Self, QueueError> {
        let queue = AmqpQueue::connect(config.clone()).await?;
        Ok(Self {
            config,
            current: Mutex::new(Some(Arc::new(queue))),
        })
    }

    /// The settings.
    pub fn config(&self) -> &AmqpConfig {
        &self.config
    }

    /// Whether a connection is held now (it may still have been lost since its last use).
    pub async fn is_connected(&self) -> bool {
        self.current.lock().await.is_some()
    }

    /// The current connection, or a new one.
    async fn queue(&self) -> Result<Arc<AmqpQueue>, QueueError> {
        let mut current = self.current.lock().await;
        if let Some(q) = current.as_ref() {
            return Ok(q.clone());
        }
        let q = Arc::new(AmqpQueue::connect(self.config.clone()).await?);
        tracing::info!(broker = %self.config.redacted_url(), "connected to the job queue broker again");
        *current = Some(q.clone());
        Ok(q)
    }

    /// Forgets `failed` (if it is still the current connection) after an error that means
    /// the connection is gone.
    async fn forget(&self, failed: &Arc<AmqpQueue>, error: &QueueError) {
        if !matches!(error, QueueError::Unavailable(_) | QueueError::Closed) {
            return;
        }
        let mut current = self.current.lock().await;
        if current.as_ref().is_some_and(|q| Arc::ptr_eq(q, failed)) {
            tracing::warn!(error = %error, "job queue connection lost; reconnecting");
            *current = None;
            let _ = failed.close().await;
        }
    }

    /// Closes the current connection (prefetched, unacknowledged deliveries go back to the
    /// broker).
    pub async fn close(&self) {
        if let Some(q) = self.current.lock().await.take() {
            let _ = q.close().await;
        }
    }
}

#[async_trait]
impl JobQueue for ReconnectingQueue {
    async fn publish(&self, job: &Job, priority: Priority) -> Result<(), QueueError> {
        let q = self.queue().await?;
        let result = q.publish(job, priority).await;
        if let Err(e) = &result {
            self.forget(&q, e).await;
        }
        result
    }

    async fn next(&self, cancel: &CancellationToken) -> Result<Option<Delivery>, QueueError> {
        let mut backoff = FIRST_BACKOFF;
        loop {
            let error = match self.queue().await {
                Ok(q) => match q.next(cancel).await {
                    Ok(d) => return Ok(d),
                    Err(e @ QueueError::Malformed(_)) => return Err(e),
                    Err(e) => {
                        self.forget(&q, &e).await;
                        e
                    }
                },
                Err(e) => e,
            };
            tracing::debug!(error = %error, ?backoff, "job queue unavailable; waiting");
            tokio::select! {
                () = cancel.cancelled() => return Ok(None),
                () = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    async fn ack(&self, delivery: &Delivery) -> Result<(), QueueError> {
        let q = self.queue().await?;
        let result = q.ack(delivery).await;
        if let Err(e) = &result {
            self.forget(&q, e).await;
        }
        result
    }
}

#[async_trait]
impl TaskEvents for ReconnectingQueue {
    async fn publish_event(&self, event: &TaskEventMessage) -> Result<(), EventError> {
        let q = self
            .queue()
            .await
            .map_err(|e| EventError::Unavailable(e.to_string()))?;
        let result = q.publish_task_event(event).await;
        if let Err(e) = &result {
            self.forget(&q, e).await;
        }
        result.map_err(|e| EventError::Unavailable(e.to_string()))
    }
}
