//! Task events on a topic exchange (`<prefix>invite.events`) for other services to subscribe
//! to: routing keys `invite.task.started`, `.paused`, `.resumed`, `.completed`, `.failed`,
//! `.cancelled`; a small JSON body ([`TaskEventMessage`]).
//!
//! [`AmqpQueue`] implements `invite-core`'s [`TaskEvents`] port with it; the types are the
//! port's, re-exported here.

use invite_core::async_trait;
use invite_core::ports::{EventError, QueueError, TaskEvents};
pub use invite_core::ports::{TaskEventKind, TaskEventMessage};

use crate::queue::AmqpQueue;

impl AmqpQueue {
    /// Publishes a task event to the events exchange with routing key
    /// `invite.task.<event>`, persistent and confirmed. No subscriber is needed: an event
    /// nobody listens to is dropped by the broker, not an error.
    ///
    /// # Errors
    /// [`QueueError::Unavailable`] when the broker cannot be reached or refuses the message.
    #[tracing::instrument(skip_all, fields(task.id = %event.task_id, user.id = %event.user_id, event = event.event.as_str()))]
    pub async fn publish_task_event(&self, event: &TaskEventMessage) -> Result<(), QueueError> {
        let body = serde_json::to_vec(event).map_err(|e| QueueError::Malformed(e.to_string()))?;
        self.publish_confirmed(
            &self.config().events_exchange(),
            &event.event.routing_key(),
            &body,
            false,
        )
        .await
    }
}

#[async_trait]
impl TaskEvents for AmqpQueue {
    async fn publish_event(&self, event: &TaskEventMessage) -> Result<(), EventError> {
        self.publish_task_event(event)
            .await
            .map_err(|e| EventError::Unavailable(e.to_string()))
    }
}
